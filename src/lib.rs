//! llm-orchestrator: an LLM API gateway on Cloudflare Pingora.
//!
//! The folder tree is the architecture: `config/` turns files and environment
//! into one immutable [`config::Snapshot`]; `routing/` chooses provider and key;
//! `proxy/` is the Pingora data plane that owns the upstream exchange;
//! `protocol/` holds wire formats; `health/` the key and provider state that
//! outlives snapshots; `telemetry/` logging.
// One audited exception (`proxy::listen::inherited`: a listening socket
// passed by a graceful upgrade arrives as a raw descriptor).
#![deny(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod control;
pub mod health;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod protocol;
pub mod providers;
pub mod proxy;
pub mod routing;
pub mod server;
pub mod store;
pub mod telemetry;
