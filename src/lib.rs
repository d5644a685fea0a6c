//! # ngrok-cert-watchdog
//!
//! Keeps the TLS certificates behind an ngrok account from expiring or failing silently.
//!
//! Data flows one way: config → sources → pure evaluation → actions → outputs.
//!
//! - [`config`]: the TOML file → validated [`config::Settings`]
//! - [`ngrok`]: the ngrok API client (source of the account's actual state)
//! - [`inventory`]: one sync of the account → [`inventory::Inventory`]
//! - [`certs`]: PEM chains and keys (used by the simulator and rotation)
//! - [`local`]: watched certificate files on disk (desired state), validated
//! - [`evaluate`]: pure (inventory, policy, now) → findings
//! - [`rotation`]: pure rotation plan (desired vs actual) and the executor applying it
//! - [`report`]: the `check` report, text or JSON
//! - [`alerts`]: findings → alerts with a firing/resolved lifecycle, delivered to webhooks
//! - [`metrics`]: Prometheus metrics (owned, passed in)
//! - [`daemon`]: `run` — triggers, the sync loop, the supervisor, health endpoints
//! - [`sim`]: the ngrok API simulator
//! - [`watcher`]: file events on watched certificate files → a pass
//! - [`demo`]: the simulator and the daemon in one process, for a first look
//! - [`check`], [`cli`], [`logging`]: the one-shot commands and the process edge

pub mod alerts;
pub mod certs;
pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod evaluate;
pub mod inventory;
pub mod local;
pub mod logging;
pub mod metrics;
pub mod ngrok;
pub mod report;
pub mod rotation;
pub mod sim;
pub mod watcher;

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// One message per SIGHUP, for configuration reloads.
pub fn reload_signal() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            if tx.send(()).await.is_err() {
                break;
            }
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
}
