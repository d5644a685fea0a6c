//! # ngrok-cert-watchdog
//!
//! Keeps the TLS certificates behind an ngrok account from expiring or failing silently.
//!
//! Data flows one way: config → sources → pure evaluation → actions → outputs.
//!
//! - [`config`]: the TOML file → validated [`config::Settings`]
//! - [`config`]: the TOML file → validated [`config::Settings`]
//! - [`ngrok`]: the ngrok API client (source of the account's actual state)
//! - [`inventory`]: one sync of the account → [`inventory::Inventory`]
//! - [`certs`]: PEM chains and keys (used by the simulator and rotation)
//! - [`evaluate`]: pure (inventory, policy, now) → findings
//! - [`report`]: the `check` report, text or JSON
//! - [`sim`]: the ngrok API simulator

pub mod certs;
pub mod config;
pub mod evaluate;
pub mod inventory;
pub mod ngrok;
pub mod report;
pub mod sim;
