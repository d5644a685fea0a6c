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
    max_concurrent: usize,
    write_ca: Option<PathBuf>,
) -> Exit {
    let args = crate::sim::SimulateArgs {
        listen,
        api_key: SecretString::from(api_key),
        seed_file: seed,
        rate_limit,
        max_concurrent,
        write_ca,
    };
    match crate::sim::simulate(args, shutdown_signal()).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: simulate: {e}");
            Exit::Usage
        }
    }
}
