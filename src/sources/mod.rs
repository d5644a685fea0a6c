//! Where the watchdog's facts come from: the ngrok API (actual state), the certificate files
//! on disk (desired state), what the edge serves (TLS probes), and DNS lookups about the
//! account's custom domains.

pub mod dns;
pub mod edge;
pub mod inventory;
pub mod local;
pub mod ngrok;
pub mod state;
