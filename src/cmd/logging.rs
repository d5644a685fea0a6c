//! Logs through tracing: readable on a terminal, plain under systemd's journal, JSON on request.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber; level from `RUST_LOG` (default `info`). Logs go to stderr so
/// that `check --format json` keeps stdout for the report.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        // The scheduler narrates its own start-up at info; only its warnings matter here.
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_cron_scheduler=warn"));
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        // journald stamps each line itself and shows no colours.
        LogFormat::Text if under_journal => builder
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .try_init(),
    };
}
