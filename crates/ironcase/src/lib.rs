//! The Ironcase server as a library: configuration and start-up, shared by the
//! binary and by the integration tests (which start the real server on port 0).
#![forbid(unsafe_code)]

pub mod config;
pub mod server;
