//! Where the watchdog's facts come from: the ngrok API (actual state), the certificate files
//! on disk (desired state), and what the edge serves (TLS probes).

pub mod edge;
pub mod inventory;
pub mod local;
pub mod ngrok;
pub mod state;
