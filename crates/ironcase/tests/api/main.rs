//! The HTTP API, tested as a client would: every test starts the real server
//! on 127.0.0.1 port 0 over a fresh data directory and talks to it over HTTP.

mod helpers;

mod access;
mod account_sessions;
mod alerts;
mod analyzers;
mod apikeys;
mod audit;
mod audit_proofs;
mod auth;
mod breaches;
mod browser;
mod compliance;
mod console;
mod custom_roles;
mod email;
mod events;
mod evidence;
mod export;
mod hierarchy;
mod incidents;
mod iocs;
mod malformed;
mod members;
mod mfa;
mod notifications;
mod offboard;
mod ops;
mod pages;
mod privacy;
mod process;
mod quotas;
mod retention;
mod roles;
mod scaleout;
mod search;
mod signing;
mod sso;
mod tenancy;
mod tlp;
mod webhooks;
