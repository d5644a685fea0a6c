//! Reloads (SIGHUP): re-read the configuration; apply it whole, or keep the one in force.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Environment, Settings};
use crate::sources::ngrok::{self, RequestObserver};

use super::file_events;
use super::triggers::{self, Scheduler};
use super::{Active, Shared};

/// What a reload needs besides the shared state.
pub struct Reloader {
    pub config_path: Option<std::path::PathBuf>,
    pub env: Environment,
    pub observer: Arc<dyn RequestObserver>,
    pub scheduler: Scheduler,
    pub tick_tx: mpsc::Sender<()>,
}

impl Reloader {
    /// One reload per message; a pass follows each applied one.
    pub async fn run(
        self,
        mut requests: mpsc::Receiver<()>,
        shared: Arc<Shared>,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = requests.recv() => {
                    if r.is_none() { break; }
                    let Some(path) = &self.config_path else {
                        tracing::info!("reload requested, but the settings were not read from a file");
                        continue;
                    };
                    if self.reload(&shared, path).await {
                        wake.notify_one();
                    }
                }
            }
        }
    }

    /// Re-reads the configuration; an invalid one is logged and the old one kept. True when applied.
    async fn reload(&self, shared: &Shared, path: &Path) -> bool {
        let new = match config::load(path, &self.env) {
            Ok(s) => s,
            Err(e) => {
                for problem in &e.problems {
                    tracing::error!("reload: {problem}");
                }
                tracing::error!("reload: the configuration is invalid; keeping the one in force");
                return false;
            }
        };
        // The new client's budget starts from the old one's record of recent requests.
        shared.active().client.save_budget().await;
        let observer = Some(Arc::clone(&self.observer));
        let client = match ngrok::client_for(&new.api, &new.state_dir, observer) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reload: {e}; keeping the configuration in force");
                return false;
            }
        };
        let old = shared.active().settings.clone();
        warn_about_restart_only_changes(&old, &new);
        if new.schedule.sync != old.schedule.sync {
            self.restart_scheduler(&new.schedule.sync).await;
        }
        shared.metrics.set_policy(&new.expiry);
        shared.metrics.set_stale_after(super::effective_stale_after(
            &new,
            shared.last_sync_requests(),
        ));
        let new = Arc::new(new);
        shared.set_expected_tick(triggers::next_tick(&new, Utc::now()));
        shared.set_active(Active {
            settings: new,
            client,
        });
        tracing::info!("reload: configuration applied");
        true
    }

    async fn restart_scheduler(&self, cron: &str) {
        let mut guard = self.scheduler.lock().await;
        if let Some(s) = guard.as_mut() {
            let _ = s.shutdown().await;
        }
        match triggers::start_scheduler(cron, self.tick_tx.clone()).await {
            Ok(s) => *guard = Some(s),
            Err(e) => tracing::error!("reload: {e}"),
        }
    }
}

/// Settings that a reload cannot apply to running tasks: say so.
fn warn_about_restart_only_changes(old: &Settings, new: &Settings) {
    if new.metrics.listen != old.metrics.listen {
        tracing::warn!("reload: metrics.listen changed; it takes effect after a restart");
    }
    if new.metrics.status_page != old.metrics.status_page {
        tracing::warn!("reload: metrics.status_page changed; it takes effect after a restart");
    }
    if new.webhooks != old.webhooks {
        tracing::warn!("reload: [[webhook]] entries changed; they take effect after a restart");
    }
    if file_events::directories(&new.watches) != file_events::directories(&old.watches) {
        tracing::warn!("reload: [[watch]] files changed; scheduled syncs use them now, file events after a restart");
    }
}
