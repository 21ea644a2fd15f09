//! Development tools, kept out of the server's crates: `ironcase bench` (the
//! load generator: starts a server, drives it, prints req/s, latency
//! percentiles and CPU per request) and `ironcase dev seed` (realistic data
//! for benchmarks and demos, written through the app's use cases), and
//! `ironcase bench --wire` (the store's PostgreSQL connection against
//! `tokio-postgres` on the writer's pattern). The
//! binary wires them in; nothing on a request's path uses them.
#![forbid(unsafe_code)]

pub mod bench;
pub mod seed;
pub mod wire;
