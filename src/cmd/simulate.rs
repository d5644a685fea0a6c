//! `simulate`: the ngrok API simulator in the foreground; reads no configuration file.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;

use super::signals::shutdown_signal;
use super::Exit;

/// 0 after SIGTERM/SIGINT; 64 for bad arguments, a bad seed or an address that cannot be bound.
pub async fn simulate(
    listen: SocketAddr,
    api_key: String,
    seed: Option<PathBuf>,
    rate_limit: Option<String>,
) -> Exit {
    let api_key = SecretString::from(api_key);
    match crate::sim::simulate(listen, api_key, seed, rate_limit, shutdown_signal()).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: simulate: {e}");
            Exit::Usage
        }
    }
}
