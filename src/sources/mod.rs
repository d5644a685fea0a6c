//! Where the watchdog's facts come from: the ngrok API (actual state) and the certificate files
//! on disk (desired state), and DNS lookups about the account's custom domains.

pub mod dns;
pub mod inventory;
pub mod local;
pub mod ngrok;
pub mod state;
