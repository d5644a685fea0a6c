//! `run`: the daemon under a service manager: bind, start, wait for SIGTERM/SIGINT, drain.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Environment;
use crate::daemon::{self, RunContext, Supervision, SystemdNotifier, Ticks};
use crate::model::text::io_reason;

use super::signals::{reload_signal, shutdown_signal};
use super::Exit;

/// 0 after SIGTERM/SIGINT; 78 bad configuration; 71 the metrics address cannot be bound.
pub async fn run(path: PathBuf, env: Environment) -> Exit {
    let settings = match super::load_settings(&path, &env, Exit::Config) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let listener = match tokio::net::TcpListener::bind(settings.metrics.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "{}ngrok-cert-watchdog: run: cannot listen on metrics.listen {}: {}",
                super::logging::error_prefix(),
                settings.metrics.listen,
                io_reason(&e)
            );
            return Exit::OsError;
        }
    };
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            shutdown.cancel();
        });
    }
    let ctx = RunContext {
        config_path: Some(path),
        env,
        settings,
        listener,
        ticks: Ticks::Cron,
        reload: reload_signal(),
        notifier: Arc::new(SystemdNotifier),
        supervision: Supervision::from_environment(),
    };
    match daemon::run(ctx, shutdown).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            let prefix = super::logging::error_prefix();
            eprintln!("{prefix}ngrok-cert-watchdog: run: {e}");
            Exit::Software
        }
    }
}
