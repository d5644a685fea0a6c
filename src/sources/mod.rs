//! Where the watchdog's facts come from: the ngrok API (actual state) and the certificate files
//! on disk (desired state).

pub mod inventory;
pub mod local;
pub mod ngrok;
pub mod state;
