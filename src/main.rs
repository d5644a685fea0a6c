//! The `ngrok-cert-watchdog` binary: everything happens in [`ngrok_cert_watchdog::cmd`].

fn main() {
    std::process::exit(ngrok_cert_watchdog::cmd::main_with_args(std::env::args_os()));
}
