//! The daemon (`run`): triggers start idempotent sync passes; a supervisor tells systemd the
//! loop is alive only while it is.
//!
//! Triggers (the cron schedule, startup, SIGHUP, file events) carry no work: they wake the sync
//! loop, which runs one pass at a time — a slow sync delays the next, never overlaps it, and
//! triggers that arrive meanwhile coalesce into one more pass. The supervisor knows when the
//! next tick is due and whether a running sync is making progress (any API response is
//! progress, a failed sync too); only while both hold does it send the keep-alive, so a
//! scheduler that stops firing or a sync that hangs ends in a restart by systemd.
//!
//! Its parts:
//! - [`triggers`] — the cron schedule and a test's manual ticks
//! - [`sync`] — the sync loop and one pass
//! - [`supervisor`] — liveness and the keep-alive
//! - [`probes`] — the probe pass (edge TLS probes, DNS diagnosis) on the edge schedule
//! - [`http`] — `/metrics`, `/healthz`, `/readyz`, the status page and `/api/v1/status`
//! - [`status`] — the last successful sync, rendered once for the status page and its API
//! - [`reload`] — SIGHUP
//! - `dns` — the DNS diagnosis of custom domains, on the edge schedule, inside the sync pass
//! - [`file_events`] — changes to `[[watch]]` files start a pass
//! - [`notify`] — READY, STATUS, keep-alive, STOPPING to the service manager

mod dns;
pub mod file_events;
pub mod http;
pub mod notify;
pub mod probes;
pub mod reload;
pub mod status;
pub mod supervisor;
pub mod sync;
pub mod triggers;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use time::OffsetDateTime;
use tokio::net::TcpListener;
// `latest`: a channel that keeps only the newest value (tokio calls it `watch`).
use tokio::sync::watch as latest;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Environment, Settings, StaleAfter};
use crate::core::alerts::Observation;
use crate::core::edge::EdgeMemory;
use crate::core::pass::PassMemory;
use crate::model::url::redacted_url;
use crate::model::Finding;
use crate::outputs::delivery::{self, Alerting, DeliveryOptions};
use crate::outputs::metrics::Metrics;
use crate::sources::inventory::Inventory;
use crate::sources::ngrok::{self, Client, RequestObserver};

pub use notify::{Notifier, SystemdNotifier};
pub use supervisor::Supervision;
pub use sync::SyncResult;
pub use triggers::Ticks;

use supervisor::Progress;

/// Everything `run` needs; built by the CLI, the demo, or a test.
pub struct RunContext {
    /// Re-read on reload; `None` when the settings were built in code (the demo).
    pub config_path: Option<PathBuf>,
    pub env: Environment,
    pub settings: Settings,
    /// Bound by the caller, so READY=1 follows a successful bind and tests can use port 0.
    pub listener: TcpListener,
    pub ticks: Ticks,
    /// One message per reload request (SIGHUP).
    pub reload: mpsc::Receiver<()>,
    pub notifier: Arc<dyn Notifier>,
    pub supervision: Supervision,
}

/// The outcome of the last sync, for the demo and tests.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    pub finished_at: OffsetDateTime,
    pub result: SyncResult,
    /// Its findings include what the edge serves (a probe pass had been recorded).
    pub edge_included: bool,
}

/// The settings in force and the client built from them; swapped whole on reload.
struct Active {
    settings: Arc<Settings>,
    client: Client,
}

/// State shared by the sync loop, the supervisor, the HTTP handlers and the reload task. The
/// pass's own memory is not here: the sync loop owns it.
pub struct Shared {
    metrics: Arc<Metrics>,
    active: RwLock<Arc<Active>>,
    last_success: Mutex<Option<OffsetDateTime>>,
    progress: Arc<Progress>,
    expected_tick: Mutex<Option<DateTime<Utc>>>,
    outcomes: latest::Sender<Option<Arc<SyncOutcome>>>,
    alerting: Alerting,
    /// Requests the last successful sync took (from `state.dir` at start): how long the budget
    /// makes a sync last.
    last_sync_requests: AtomicU64,
    /// What the probes saw at the edge, and the rotations followed there (see [`probes`]).
    edge: Mutex<EdgeMemory>,
    /// Domains to probe at once (a rotation moved them), and the wake-up of the probe loop.
    probe_requests: Mutex<BTreeSet<String>>,
    probe_now: Notify,
    /// The last DNS diagnosis, for every sync's evaluation.
    dns: dns::DnsMemory,
    /// The last successful sync, rendered for the status page (when it is on).
    status: RwLock<Option<Arc<status::Snapshot>>>,
    /// Whether the latest sync failed (the snapshot is then stale).
    last_sync_failed: AtomicBool,
    /// Each watch's last rotation since the daemon started, for the status page.
    rotations: Mutex<BTreeMap<String, crate::outputs::status_page::LastRotation>>,
}

impl Shared {
    fn active(&self) -> Arc<Active> {
        match self.active.read() {
            Ok(a) => Arc::clone(&a),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set_active(&self, active: Active) {
        if let Ok(mut a) = self.active.write() {
            *a = Arc::new(active);
        }
    }

    fn expected_tick(&self) -> Option<DateTime<Utc>> {
        self.expected_tick.lock().ok().and_then(|e| *e)
    }

    fn set_expected_tick(&self, next: Option<DateTime<Utc>>) {
        if let Ok(mut e) = self.expected_tick.lock() {
            *e = next;
        }
    }

    /// The requests the last sync took, as known (none before a first sync of any run).
    fn last_sync_requests(&self) -> Option<u64> {
        Some(self.last_sync_requests.load(Ordering::Relaxed)).filter(|n| *n > 0)
    }

    /// `schedule.stale_after` in force: as set, or the default that a budget-bound sync widens.
    fn stale_after(&self) -> Duration {
        effective_stale_after(&self.active().settings, self.last_sync_requests())
    }

    /// Why a sync takes longer than the schedule's interval, when the budget makes it so.
    fn budget_note(&self) -> Option<String> {
        let settings = self.active().settings.clone();
        crate::core::budget::budget_note(
            settings.schedule.interval,
            self.last_sync_requests()?,
            settings.api.requests_per_minute.get(),
        )
    }

    fn last_success(&self) -> Option<OffsetDateTime> {
        self.last_success.lock().ok().and_then(|l| *l)
    }

    /// A successful sync: the account's metrics, the time `/readyz` goes by, and the status
    /// page's snapshot. `edge_included`: the findings include a probe pass's (see
    /// [`SyncOutcome`]).
    fn record_success(
        &self,
        inventory: &Inventory,
        findings: &[Finding],
        watches: &[crate::outputs::status_page::WatchRow],
        edge_included: bool,
        duration: Duration,
        finished_at: OffsetDateTime,
    ) {
        self.metrics
            .record_sync_success(inventory, findings, duration, OffsetDateTime::now_utc());
        let settings = self.active().settings.clone();
        if settings.metrics.status_page {
            let snapshot = status::Snapshot::build(
                inventory,
                findings,
                watches,
                settings.expiry,
                status::edge_checked(&settings, edge_included, self.dns.diagnosed()),
                finished_at,
            );
            if let Ok(mut s) = self.status.write() {
                *s = Some(Arc::new(snapshot));
            }
        }
        self.last_sync_failed.store(false, Ordering::Relaxed);
        if let Ok(mut last) = self.last_success.lock() {
            *last = Some(finished_at);
        }
    }

    fn record_failure(&self) {
        self.last_sync_failed.store(true, Ordering::Relaxed);
    }

    /// The last successful sync as the status page serves it.
    fn status(&self) -> Option<Arc<status::Snapshot>> {
        self.status.read().ok().and_then(|s| s.clone())
    }

    /// The watch table's rows for this pass's reports, remembering rotations.
    fn watch_rows(
        &self,
        watches: &[crate::config::WatchSettings],
        reports: &[crate::core::rotation::WatchReport],
        now: OffsetDateTime,
    ) -> Vec<crate::outputs::status_page::WatchRow> {
        match self.rotations.lock() {
            Ok(mut last) => status::watch_rows(watches, reports, &mut last, now),
            Err(_) => Vec::new(),
        }
    }

    /// A successful sync's request count: the budget-bound sync time, and the `stale_after`
    /// that follows from it, are now known.
    fn record_sync_requests(&self, requests: u64) {
        self.last_sync_requests.store(requests, Ordering::Relaxed);
        self.metrics.set_stale_after(self.stale_after());
    }

    /// Hands a pass's observation to the webhooks and updates `alerts_firing`.
    fn alert(&self, memory: &PassMemory, observation: Observation) {
        for (severity, n) in sync::firing_counts(memory) {
            self.metrics.set_alerts_firing(severity, n as i64);
        }
        self.alerting.observe(observation);
    }

    /// The probes' memory; a poisoned lock still holds the last results.
    fn edge(&self) -> MutexGuard<'_, EdgeMemory> {
        self.edge.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the edge has been probed since start (its findings are in the syncs' since).
    pub fn edge_probed(&self) -> bool {
        self.edge().probed()
    }

    /// Asks the probe loop to probe these domains now (after a rotation).
    fn request_probes(&self, domains: impl IntoIterator<Item = String>) {
        let mut requests = self
            .probe_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        requests.extend(domains);
        if !requests.is_empty() {
            self.probe_now.notify_one();
        }
    }

    fn take_probe_requests(&self) -> BTreeSet<String> {
        std::mem::take(
            &mut *self
                .probe_requests
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    fn publish(&self, outcome: SyncOutcome) {
        self.outcomes.send_replace(Some(Arc::new(outcome)));
    }

    /// Outcomes of syncs as they finish.
    pub fn subscribe(&self) -> latest::Receiver<Option<Arc<SyncOutcome>>> {
        self.outcomes.subscribe()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// Counts API requests in the metrics and records them as progress.
struct Observer {
    metrics: Arc<Metrics>,
    progress: Arc<Progress>,
}

impl RequestObserver for Observer {
    fn observe(&self, method: &str, resource: &str, code: &str) {
        self.progress.request();
        self.metrics.observe(method, resource, code);
    }

    fn waiting_for_budget(&self) {
        self.progress.touch();
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start the scheduler: {0}")]
    Scheduler(String),
    #[error("cannot serve metrics on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    /// E.g. no TLS roots on the host (Debian: package ca-certificates).
    #[error("cannot set up the ngrok API client for {url}: {reason}")]
    Client { url: String, reason: String },
}

/// Runs until `shutdown` is cancelled, then drains within a deadline and returns.
pub async fn run(ctx: RunContext, shutdown: CancellationToken) -> Result<(), RunError> {
    let (_shared, running) = start(ctx, shutdown.clone()).await?;
    running.wait_and_drain(shutdown).await;
    Ok(())
}

/// A running daemon: its tasks to drain.
pub struct Running {
    tracker: TaskTracker,
    scheduler: triggers::Scheduler,
    pub local_addr: SocketAddr,
    notifier: Arc<dyn Notifier>,
}

impl Running {
    /// Waits for shutdown, then stops everything within 4 s (systemd's stop timeout is longer).
    pub async fn wait_and_drain(self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
        self.notifier.stopping();
        tracing::info!("stopping");
        let scheduler = self.scheduler.lock().await.take();
        if let Some(mut s) = scheduler {
            let _ = tokio::time::timeout(Duration::from_secs(1), s.shutdown()).await;
        }
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(4), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop within 4 s; exiting anyway");
        }
    }
}

/// Starts every task; returns once the listener serves and READY=1 was sent.
pub async fn start(
    ctx: RunContext,
    shutdown: CancellationToken,
) -> Result<(Arc<Shared>, Running), RunError> {
    let RunContext {
        config_path,
        env,
        settings,
        listener,
        ticks,
        reload,
        notifier,
        supervision,
    } = ctx;
    let tracker = TaskTracker::new();
    let (shared, observer) = build_shared(settings, &tracker, &shutdown)?;
    let settings = shared.active().settings.clone();
    let wake = Arc::new(Notify::new());
    let local_addr = listener.local_addr().map_err(|e| RunError::Listen {
        addr: settings.metrics.listen.to_string(),
        reason: e.to_string(),
    })?;
    spawn_http(listener, Arc::clone(&shared), &tracker, &shutdown);
    let (scheduler, tick_tx) = triggers::spawn(ticks, &shared, &wake, &tracker, &shutdown).await?;
    let sync_loop = sync::run_loop(
        Arc::clone(&shared),
        Arc::clone(&wake),
        Arc::clone(&notifier),
        shutdown.clone(),
    );
    tracker.spawn(sync_loop);
    tracker.spawn(probes::run_probe_loop(
        Arc::clone(&shared),
        Arc::clone(&wake),
        shutdown.clone(),
    ));
    {
        let (shared, shutdown, notifier) =
            (Arc::clone(&shared), shutdown.clone(), Arc::clone(&notifier));
        tracker.spawn(async move {
            supervisor::supervise(&shared, supervision, notifier.as_ref(), shutdown).await;
        });
    }
    let reloader = reload::Reloader {
        config_path,
        env,
        observer,
        scheduler: Arc::clone(&scheduler),
        tick_tx,
    };
    tracker.spawn(reloader.run(
        reload,
        Arc::clone(&shared),
        Arc::clone(&wake),
        shutdown.clone(),
    ));
    file_events::spawn(
        &settings.watches,
        Arc::clone(&wake),
        shutdown.clone(),
        &tracker,
    );

    for warning in budget_warnings(&settings) {
        tracing::warn!("{warning}");
    }
    notifier.ready();
    tracing::info!(
        metrics = %format!("http://{local_addr}/metrics"),
        api = %redacted_url(&settings.api.url),
        schedule = %settings.schedule.sync,
        "ngrok-cert-watchdog running"
    );
    // The first sync, right away.
    wake.notify_one();
    let running = Running {
        tracker,
        scheduler,
        local_addr,
        notifier,
    };
    Ok((shared, running))
}

/// `schedule.stale_after` as the daemon applies it: what the file sets, else the larger of
/// three intervals and twice the time the budget needs for a sync of `per_sync` requests.
pub fn effective_stale_after(settings: &Settings, per_sync: Option<u64>) -> Duration {
    match settings.schedule.stale_after_from {
        StaleAfter::File => settings.schedule.stale_after,
        StaleAfter::Default => {
            let per_sync = per_sync.unwrap_or(crate::core::budget::MIN_REQUESTS_PER_SYNC);
            let budget_bound = crate::core::budget::budget_bound_sync(
                per_sync,
                settings.api.requests_per_minute.get(),
            );
            crate::core::budget::default_stale_after(settings.schedule.interval, budget_bound)
        }
    }
}

/// Warnings about the request budget: a budget above the account's own limit, and a schedule
/// that needs more requests a minute than the budget allows, estimated from the last sync's
/// request count recorded in `state.dir` (or the least a sync takes).
pub fn budget_warnings(settings: &Settings) -> Vec<String> {
    let per_minute = settings.api.requests_per_minute.get();
    let last = crate::sources::state::read_last_sync(&settings.state_dir);
    let rate = crate::core::budget::rate_warning(
        per_minute,
        crate::model::url::is_loopback_url(&settings.api.url),
    );
    let schedule = crate::core::budget::schedule_warning(
        &settings.schedule.sync,
        settings.schedule.interval,
        last.map(|l| l.requests),
        per_minute,
    );
    rate.into_iter().chain(schedule).collect()
}

/// The shared state for `settings`: metrics, the API client reporting to them, the webhook
/// workers. Returns the client's observer too, for clients built on reload.
fn build_shared(
    settings: Settings,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(Arc<Shared>, Arc<dyn RequestObserver>), RunError> {
    let metrics = Arc::new(Metrics::new(&settings.expiry));
    let last_sync = crate::sources::state::read_last_sync(&settings.state_dir).map(|l| l.requests);
    metrics.set_stale_after(effective_stale_after(&settings, last_sync));
    let progress = Arc::new(Progress::new());
    let observer: Arc<dyn RequestObserver> = Arc::new(Observer {
        metrics: Arc::clone(&metrics),
        progress: Arc::clone(&progress),
    });
    let client = ngrok::client_for(
        &settings.api,
        &settings.state_dir,
        Some(Arc::clone(&observer)),
    )
    .map_err(|e| RunError::Client {
        url: settings.api.url.to_string(),
        reason: e.to_string(),
    })?;
    let alerting = delivery::start(
        &settings.webhooks,
        &settings.state_dir,
        Arc::clone(&metrics),
        DeliveryOptions::default(),
        tracker,
        shutdown.clone(),
    );
    let expected_tick = triggers::next_tick(&settings, Utc::now());
    let settings = Arc::new(settings);
    let (outcomes, _) = latest::channel(None);
    let shared = Arc::new(Shared {
        metrics,
        active: RwLock::new(Arc::new(Active { settings, client })),
        last_success: Mutex::new(None),
        progress,
        expected_tick: Mutex::new(expected_tick),
        outcomes,
        alerting,
        last_sync_requests: AtomicU64::new(last_sync.unwrap_or(0)),
        edge: Mutex::new(EdgeMemory::default()),
        probe_requests: Mutex::new(BTreeSet::new()),
        probe_now: Notify::new(),
        dns: dns::DnsMemory::default(),
        status: RwLock::new(None),
        last_sync_failed: AtomicBool::new(false),
        rotations: Mutex::new(BTreeMap::new()),
    });
    Ok((shared, observer))
}

/// Serves the HTTP endpoints until shutdown.
fn spawn_http(
    listener: TcpListener,
    shared: Arc<Shared>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    let app = http::router(shared);
    let shutdown = shutdown.clone();
    tracker.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn settings(text: &str) -> Settings {
        let env = Environment {
            ngrok_api_key: Some("k".into()),
            ..Environment::default()
        };
        crate::config::parse(text, Path::new("/etc/w/config.toml"), &env).unwrap()
    }

    #[test]
    fn stale_after_widens_for_a_budget_bound_sync_unless_set() {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        let default = settings("");
        // Before a first sync, and for a small account: three 5-minute intervals.
        assert_eq!(effective_stale_after(&default, None), minutes(15));
        assert_eq!(effective_stale_after(&default, Some(201)), minutes(15));
        // 100,000 + 100,000 domains at 60 a minute: a sync takes 33 minutes; twice that.
        assert_eq!(effective_stale_after(&default, Some(2_001)), minutes(66));
        // Set in the file: as set.
        let set = settings("[schedule]\nstale_after = \"20m\"\n");
        assert_eq!(effective_stale_after(&set, Some(2_001)), minutes(20));
    }

    #[test]
    fn the_page_says_ok_for_the_edge_only_when_probes_or_dns_are_in_the_findings() {
        let both = settings("");
        assert!(both.edge.enabled && both.dns.enabled, "on by default");
        // Neither a probe pass nor a diagnosis recorded yet (the first sync): not probed.
        assert!(!status::edge_checked(&both, false, false));
        assert!(status::edge_checked(&both, true, false));
        assert!(status::edge_checked(&both, false, true));
        // What is left of probes or lookups turned off since (a reload) does not count.
        let edge_only = settings("[dns]\nenabled = false\n");
        assert!(!status::edge_checked(&edge_only, false, true));
        assert!(status::edge_checked(&edge_only, true, true));
        let dns_only = settings("[edge]\nenabled = false\n");
        assert!(!status::edge_checked(&dns_only, true, false));
        assert!(status::edge_checked(&dns_only, true, true));
        let neither = settings("[edge]\nenabled = false\n[dns]\nenabled = false\n");
        assert!(!status::edge_checked(&neither, true, true));
    }
}
