//! # ngrok-cert-watchdog
//!
//! Keeps the TLS certificates behind an ngrok account from expiring or failing silently.
//!
//! # Layout
//!
//! Data flows one way: config → sources → pure core → actions → outputs. Each folder imports only
//! from the folders after it in this list (`scripts/module-graph` checks it):
//!
//! - [`cmd`]: the command line, one module per command, every exit code ([`cmd::Exit`])
//! - [`daemon`]: `run` — start and drain, triggers, the sync loop, the supervisor, HTTP, reload
//! - [`outputs`]: Prometheus metrics, the `check` report, alert delivery and payloads
//! - [`actions`]: the rotation executor and its locks (the only writes to the account)
//! - [`core`]: pure — findings, the pass's rules over its memory, alert lifecycle, rotation plan
//! - [`sources`]: the ngrok API client and the inventory (actual state), files on disk (desired)
//! - [`config`]: the TOML file → validated [`config::Settings`]
//! - [`model`]: plain value types shared by all: severity, findings, expiry policy, certificates
//! - [`sim`]: the ngrok API simulator (imported only by `cmd`, for `simulate` and `demo`)

#![warn(clippy::too_many_lines)]

pub mod actions;
pub mod cmd;
pub mod config;
pub mod core;
pub mod daemon;
pub mod model;
pub mod outputs;
pub mod sim;
pub mod sources;
