//! The daemon (`run`): triggers start idempotent sync passes; a supervisor tells systemd the
//! loop is alive only while it is.
//!
//! Triggers (the cron schedule, startup, SIGHUP) carry no work: they wake the sync loop, which
//! runs one pass at a time — a slow sync delays the next, never overlaps it, and triggers that
//! arrive meanwhile coalesce into one more pass. The supervisor knows when the next tick is due
//! and whether a running sync is making progress (any API response is progress, a failed sync
//! too); only while both hold does it send WATCHDOG=1, so a scheduler that stops firing or a
//! sync that hangs ends in a restart by systemd instead of a quiet death.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{self, Environment, Settings};
use crate::evaluate::{evaluate, Finding, Severity};
use crate::inventory::{self, Inventory};
use crate::metrics::Metrics;
use crate::ngrok::{ApiError, Client, ClientOptions, RequestObserver, RetryPolicy};

/// What the daemon tells the service manager. systemd's `sd_notify` in production; a recorder in tests.
pub trait Notifier: Send + Sync {
    fn ready(&self);
    fn status(&self, status: &str);
    fn watchdog(&self);
    fn stopping(&self);
}

/// `sd_notify` (a no-op when `NOTIFY_SOCKET` is unset).
pub struct SystemdNotifier;

impl Notifier for SystemdNotifier {
    fn ready(&self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
    fn status(&self, status: &str) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(status)]);
    }
    fn watchdog(&self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
    }
    fn stopping(&self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    }
}

/// Where scheduled ticks come from.
pub enum Ticks {
    /// tokio-cron-scheduler runs `schedule.sync` (UTC).
    Cron,
    /// A test sends ticks itself (and can stall them on purpose).
    Manual(mpsc::Receiver<()>),
}

/// How the supervisor judges liveness.
#[derive(Debug, Clone, Copy)]
pub struct Supervision {
    /// How often it looks (and pings when healthy).
    pub check_every: Duration,
    /// A tick this much later than due is late.
    pub tick_grace: Duration,
    /// A running sync with no API progress for this long is stuck.
    pub stuck_after: Duration,
}

impl Supervision {
    /// Pings at a quarter of systemd's `WatchdogSec=` when it is set.
    pub fn from_environment() -> Self {
        let check_every = sd_notify::watchdog_enabled()
            .map(|d| (d / 4).max(Duration::from_millis(100)))
            .unwrap_or(Duration::from_secs(10));
        Self {
            check_every,
            tick_grace: Duration::from_secs(60),
            stuck_after: Duration::from_secs(300),
        }
    }
}

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
    pub result: Result<(Arc<Inventory>, Arc<Vec<Finding>>), ApiError>,
}

/// The settings in force and the client built from them; swapped whole on reload.
struct Active {
    settings: Arc<Settings>,
    client: Client,
}

/// State shared by the sync loop, the supervisor, the HTTP handlers and the reload task.
pub struct Shared {
    metrics: Arc<Metrics>,
    active: RwLock<Arc<Active>>,
    last_success: Mutex<Option<OffsetDateTime>>,
    progress: Arc<Progress>,
    expected_tick: Mutex<Option<DateTime<Utc>>>,
    outcomes: watch::Sender<Option<Arc<SyncOutcome>>>,
    alerting: crate::alerts::delivery::Alerting,
    /// Per watch: rotation passes that failed in a row.
    rotation_failures: Mutex<std::collections::HashMap<String, u32>>,
    /// Per watch: the findings of its last pass, for a pass that skips it (lock held elsewhere):
    /// skipping is not knowing, and must not resolve its alerts.
    last_watch_findings: Mutex<std::collections::HashMap<String, Vec<Finding>>>,
    /// Syncs failed in a row; a `sync_failed` finding from the third on.
    failures_in_a_row: std::sync::atomic::AtomicU32,
}

/// Liveness of the sync loop, updated lock-free from the API client's observer.
struct Progress {
    epoch: Instant,
    last_ms: AtomicU64,
    running: AtomicBool,
}

impl Progress {
    fn touch(&self) {
        self.last_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// Counts API requests in the metrics and records them as progress.
struct Observer {
    metrics: Arc<Metrics>,
    progress: Arc<Progress>,
}

impl RequestObserver for Observer {
    fn observe(&self, method: &str, resource: &str, code: &str) {
        self.progress.touch();
        self.metrics.observe(method, resource, code);
    }
}

impl Shared {
    /// Counts this pass's result for its watch; returns the failures in a row so far.
    fn rotation_failures_in_a_row(&self, report: &crate::rotation::WatchReport) -> u32 {
        let Ok(mut counts) = self.rotation_failures.lock() else {
            return 0;
        };
        let count = counts.entry(report.watch.clone()).or_default();
        match report.result() {
            Some("failure") => *count += 1,
            Some(_) => *count = 0,
            None => {}
        }
        *count
    }

    fn active(&self) -> Arc<Active> {
        match self.active.read() {
            Ok(a) => Arc::clone(&a),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Outcomes of syncs as they finish.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<SyncOutcome>>> {
        self.outcomes.subscribe()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start the scheduler: {0}")]
    Scheduler(String),
    #[error("cannot serve metrics on {addr}: {reason}")]
    Listen { addr: String, reason: String },
}

/// A client for `settings`, reporting to `observer`.
fn build_client(
    settings: &Settings,
    observer: Arc<dyn RequestObserver>,
) -> Result<Client, ApiError> {
    Client::with_observer(
        ClientOptions {
            base_url: settings.api.url.clone(),
            api_key: settings.api.key.clone(),
            requests_per_minute: settings.api.requests_per_minute,
            timeout: settings.api.timeout,
            retry: RetryPolicy::default(),
        },
        observer,
    )
}

/// Runs until `shutdown` is cancelled, then drains within a deadline and returns.
pub async fn run(ctx: RunContext, shutdown: CancellationToken) -> Result<(), RunError> {
    let (_shared, running) = start(ctx, shutdown.clone()).await?;
    running.wait_and_drain(shutdown).await;
    Ok(())
}

/// A running daemon: its shared state, and its tasks to drain.
pub struct Running {
    tracker: TaskTracker,
    scheduler: Arc<tokio::sync::Mutex<Option<tokio_cron_scheduler::JobScheduler>>>,
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
        mut reload,
        notifier,
        supervision,
    } = ctx;
    let metrics = Arc::new(Metrics::new(&settings.expiry));
    metrics.set_stale_after(settings.schedule.stale_after);
    let progress = Arc::new(Progress {
        epoch: Instant::now(),
        last_ms: AtomicU64::new(0),
        running: AtomicBool::new(false),
    });
    let observer: Arc<dyn RequestObserver> = Arc::new(Observer {
        metrics: Arc::clone(&metrics),
        progress: Arc::clone(&progress),
    });
    let client = build_client(&settings, Arc::clone(&observer)).map_err(|e| RunError::Listen {
        addr: settings.api.url.to_string(),
        reason: e.to_string(),
    })?;
    let settings = Arc::new(settings);
    let (outcomes, _) = watch::channel(None);
    let tracker = TaskTracker::new();
    let alerting = crate::alerts::delivery::start(
        &settings.webhooks,
        &settings.state_dir,
        Arc::clone(&metrics),
        crate::alerts::delivery::DeliveryOptions::default(),
        &tracker,
        shutdown.clone(),
    );
    let shared = Arc::new(Shared {
        metrics,
        active: RwLock::new(Arc::new(Active {
            settings: Arc::clone(&settings),
            client,
        })),
        last_success: Mutex::new(None),
        progress,
        expected_tick: Mutex::new(next_tick(&settings, Utc::now())),
        outcomes,
        alerting,
        rotation_failures: Mutex::new(Default::default()),
        last_watch_findings: Mutex::new(Default::default()),
        failures_in_a_row: std::sync::atomic::AtomicU32::new(0),
    });
    let wake = Arc::new(Notify::new());
    let local_addr = listener.local_addr().map_err(|e| RunError::Listen {
        addr: settings.metrics.listen.to_string(),
        reason: e.to_string(),
    })?;

    // HTTP: /metrics, /healthz, /readyz.
    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(serve_readyz))
        .with_state(Arc::clone(&shared));
    {
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

    // Ticks → expected next tick + a wake-up of the sync loop.
    let (tick_tx, mut tick_rx) = mpsc::channel::<()>(16);
    let scheduler = match ticks {
        Ticks::Manual(mut rx) => {
            let tx = tick_tx.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        t = rx.recv() => match t {
                            Some(()) => { let _ = tx.try_send(()); }
                            None => std::future::pending::<()>().await,
                        },
                    }
                }
            });
            None
        }
        Ticks::Cron => Some(start_scheduler(&settings.schedule.sync, tick_tx.clone()).await?),
    };
    let scheduler = Arc::new(tokio::sync::Mutex::new(scheduler));
    {
        let shared = Arc::clone(&shared);
        let wake = Arc::clone(&wake);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    t = tick_rx.recv() => {
                        if t.is_none() { break; }
                        let settings = shared.active().settings.clone();
                        if let Ok(mut e) = shared.expected_tick.lock() {
                            *e = next_tick(&settings, Utc::now());
                        }
                        wake.notify_one();
                    }
                }
            }
        });
    }

    // The sync loop: one pass at a time.
    {
        let shared = Arc::clone(&shared);
        let wake = Arc::clone(&wake);
        let shutdown = shutdown.clone();
        let notifier = Arc::clone(&notifier);
        tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = wake.notified() => {}
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    status = sync_pass(&shared) => notifier.status(&status),
                }
            }
        });
    }

    // The supervisor.
    {
        let shared = Arc::clone(&shared);
        let shutdown = shutdown.clone();
        let notifier = Arc::clone(&notifier);
        tracker.spawn(async move {
            supervise(&shared, supervision, notifier.as_ref(), shutdown).await;
        });
    }

    // Reloads (SIGHUP).
    {
        let shared = Arc::clone(&shared);
        let wake = Arc::clone(&wake);
        let shutdown = shutdown.clone();
        let scheduler = Arc::clone(&scheduler);
        tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = reload.recv() => {
                        if r.is_none() { break; }
                        let Some(path) = &config_path else {
                            tracing::info!("reload requested, but the settings were not read from a file");
                            continue;
                        };
                        if reload_config(&shared, path, &env, &observer, &scheduler, &tick_tx).await {
                            wake.notify_one();
                        }
                    }
                }
            }
        });
    }

    crate::watcher::spawn(
        &settings.watches,
        Arc::clone(&wake),
        shutdown.clone(),
        &tracker,
    );

    notifier.ready();
    tracing::info!(
        metrics = %format!("http://{local_addr}/metrics"),
        api = %config::redacted_url(&settings.api.url),
        schedule = %settings.schedule.sync,
        "ngrok-cert-watchdog running"
    );
    // The first sync, right away.
    wake.notify_one();
    Ok((
        shared,
        Running {
            tracker,
            scheduler,
            local_addr,
            notifier,
        },
    ))
}

async fn start_scheduler(
    cron: &str,
    tick_tx: mpsc::Sender<()>,
) -> Result<tokio_cron_scheduler::JobScheduler, RunError> {
    let scheduler = tokio_cron_scheduler::JobScheduler::new()
        .await
        .map_err(|e| RunError::Scheduler(e.to_string()))?;
    add_cron_job(&scheduler, cron, tick_tx).await?;
    scheduler
        .start()
        .await
        .map_err(|e| RunError::Scheduler(e.to_string()))?;
    Ok(scheduler)
}

async fn add_cron_job(
    scheduler: &tokio_cron_scheduler::JobScheduler,
    cron: &str,
    tick_tx: mpsc::Sender<()>,
) -> Result<uuid::Uuid, RunError> {
    let job = tokio_cron_scheduler::Job::new_async(cron, move |_id, _lock| {
        let tx = tick_tx.clone();
        Box::pin(async move {
            // A full channel means ticks are already pending: coalesce.
            let _ = tx.try_send(());
        })
    })
    .map_err(|e| RunError::Scheduler(format!("schedule.sync \"{cron}\": {e}")))?;
    scheduler
        .add(job)
        .await
        .map_err(|e| RunError::Scheduler(e.to_string()))
}

/// The next scheduled tick after `now`.
fn next_tick(settings: &Settings, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    settings
        .schedule
        .cron
        .find_next_occurrence(&now, false)
        .ok()
}

/// Failed rotation passes in a row before `rotation_failed` is critical.
const ROTATION_FAILURES_BEFORE_CRITICAL: u32 = 3;

/// Failed syncs in a row before the watchdog alerts about itself.
const SYNC_FAILURES_BEFORE_ALERT: u32 = 3;

/// One sync pass; returns the one-line STATUS= summary.
async fn sync_pass(shared: &Shared) -> String {
    let active = shared.active();
    let settings = &active.settings;
    shared.progress.touch();
    shared.progress.running.store(true, Ordering::Relaxed);
    let started = Instant::now();
    // The rotation locks before the listing: a `rotate` running now finishes first, and this
    // pass then plans from an account that shows its work.
    let locks = lock_watches(settings).await;
    let now = OffsetDateTime::now_utc();
    let result = inventory::sync(&active.client, now).await;
    let duration = started.elapsed();
    shared.progress.touch();
    let finished_at = OffsetDateTime::now_utc();
    // Rotation below is part of the pass: the supervisor watches it for progress too.
    let (status, outcome) = match result {
        Ok(mut inventory) => {
            let reports = rotate_all(&active, &locks, &inventory, now).await;
            if reports
                .iter()
                .any(|r| r.outcome.as_ref().is_some_and(|o| o.acted()))
            {
                // The account changed under this sync: report what it is now.
                match inventory::sync(&active.client, OffsetDateTime::now_utc()).await {
                    Ok(fresh) => inventory = fresh,
                    Err(e) => tracing::warn!("re-reading the account after a rotation failed: {e}"),
                }
            }
            let mut findings = evaluate(&inventory, &settings.expiry, now);
            for report in &reports {
                shared.metrics.record_watch(report);
                let failing = shared.rotation_failures_in_a_row(report);
                findings.extend(report.findings.iter().cloned().map(|mut f| {
                    // A rotation that keeps failing: the old certificate is running out.
                    if f.kind == crate::evaluate::FindingKind::RotationFailed
                        && failing >= ROTATION_FAILURES_BEFORE_CRITICAL
                    {
                        f.severity = Severity::Critical;
                        f.message = format!("{} ({failing} passes in a row)", f.message);
                    }
                    f
                }));
            }
            if let Ok(mut last) = shared.last_watch_findings.lock() {
                for watch in &settings.watches {
                    if reports.iter().any(|r| r.watch == watch.name) {
                        let own = findings
                            .iter()
                            .filter(|f| f.resource_id == watch.name)
                            .cloned()
                            .collect();
                        last.insert(watch.name.clone(), own);
                    } else {
                        findings.extend(last.get(&watch.name).cloned().unwrap_or_default());
                    }
                }
            }
            crate::evaluate::sort(&mut findings);
            shared.metrics.record_sync_success(
                &inventory,
                &findings,
                started.elapsed(),
                OffsetDateTime::now_utc(),
            );
            if let Ok(mut last) = shared.last_success.lock() {
                *last = Some(finished_at);
            }
            shared.failures_in_a_row.store(0, Ordering::Relaxed);
            shared.alerting.observe(crate::alerts::Observation {
                at: now,
                known: true,
                findings: findings.clone(),
                sync_interval: settings.schedule.interval,
            });
            // Kept until the next sync: without the PEMs (~15 MB at 10,000 certificates), which
            // only this pass's rotation and evaluation needed.
            for c in &mut inventory.certificates {
                c.certificate_pem = None;
            }
            let status = summary(&inventory, &findings);
            tracing::info!(duration_ms = duration.as_millis() as u64, "sync: {status}");
            (status, Ok((Arc::new(inventory), Arc::new(findings))))
        }
        Err(e) => {
            shared.metrics.record_sync_failure(duration);
            tracing::warn!(kind = e.kind().as_str(), "sync failed: {e}");
            let in_a_row = shared.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
            // Unknown, not resolved: the account's alerts stay as they are; after a few
            // failures in a row the watchdog's own health alerts.
            let findings = if in_a_row >= SYNC_FAILURES_BEFORE_ALERT {
                vec![Finding {
                    severity: Severity::Warning,
                    kind: crate::evaluate::FindingKind::SyncFailed,
                    resource_id: "sync".to_string(),
                    domain: None,
                    message: format!("the last {in_a_row} syncs of the ngrok account failed ({}): the watchdog cannot see the account", e.kind().as_str()),
                    not_after: None,
                }]
            } else {
                Vec::new()
            };
            shared.alerting.observe(crate::alerts::Observation {
                at: now,
                known: false,
                findings,
                sync_interval: settings.schedule.interval,
            });
            (format!("last sync failed: {}", e.kind().as_str()), Err(e))
        }
    };
    shared.progress.running.store(false, Ordering::Relaxed);
    shared.progress.touch();
    shared.outcomes.send_replace(Some(Arc::new(SyncOutcome {
        finished_at,
        result: outcome,
    })));
    status
}

/// The rotation lock of every watch, waiting a little for a running `rotate`; `None` for a
/// watch whose lock another process keeps.
async fn lock_watches(settings: &Settings) -> Vec<Option<crate::rotation::WatchLock>> {
    let mut locks = Vec::new();
    for watch in &settings.watches {
        let lock = crate::rotation::WatchLock::acquire_within(
            &settings.state_dir,
            &watch.name,
            Duration::from_secs(10),
        )
        .await;
        locks.push(match lock {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => {
                tracing::info!(watch = %watch.name, "another process holds the rotation lock; next pass");
                None
            }
            Err(e) => {
                tracing::warn!(watch = %watch.name, "cannot take the rotation lock: {e}");
                None
            }
        });
    }
    locks
}

/// One rotation pass per watch whose lock is held; logs each rotation once with its outcome.
async fn rotate_all(
    active: &Active,
    locks: &[Option<crate::rotation::WatchLock>],
    inventory: &Inventory,
    now: OffsetDateTime,
) -> Vec<crate::rotation::WatchReport> {
    let settings = &active.settings;
    let mut reports = Vec::new();
    for (watch, lock) in settings.watches.iter().zip(locks) {
        if lock.is_none() {
            continue;
        }
        let options = crate::rotation::PassOptions {
            dry_run: false,
            backoff: Duration::from_secs(2),
        };
        let report = crate::rotation::pass(&active.client, watch, inventory, options, now).await;
        match (report.result(), &report.outcome) {
            (Some("success"), Some(o)) => tracing::info!(
                watch = %watch.name,
                certificate = o.target.as_deref().unwrap_or(""),
                uploaded = o.uploaded,
                moved = o.moved.len(),
                deleted = o.deleted.len(),
                "rotation done"
            ),
            (Some(_), Some(o)) => tracing::warn!(
                watch = %watch.name,
                "rotation incomplete, the domains keep their certificate: {}",
                o.failures.join("; ")
            ),
            _ => {}
        }
        for f in report
            .findings
            .iter()
            .filter(|f| f.kind == crate::evaluate::FindingKind::WatchInvalid)
        {
            tracing::warn!(watch = %watch.name, "{}", f.message);
        }
        reports.push(report);
    }
    reports
}

/// "12 certificates, 9 domains, 3 credentials: 1 critical, 2 warning".
pub fn summary(inventory: &Inventory, findings: &[Finding]) -> String {
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    format!(
        "{} certificates, {} domains, {} credentials: {} critical, {} warning, {} info",
        inventory.certificates.len(),
        inventory.domains.len(),
        inventory.credentials.len(),
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info)
    )
}

/// Pings systemd while the next tick is not late and no sync is stuck; logs and counts when not.
async fn supervise(
    shared: &Shared,
    timing: Supervision,
    notifier: &dyn Notifier,
    shutdown: CancellationToken,
) {
    let mut alarm: Option<&'static str> = None;
    let mut interval = tokio::time::interval(timing.check_every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        let now = Utc::now();
        let late = shared
            .expected_tick
            .lock()
            .ok()
            .and_then(|e| *e)
            .and_then(|due| (now - due).to_std().ok())
            .filter(|late_by| *late_by > timing.tick_grace);
        let stuck = shared.progress.running.load(Ordering::Relaxed)
            && shared.progress.idle_for() > timing.stuck_after;
        let problem = match (late, stuck) {
            (Some(_), _) => Some("tick_late"),
            (None, true) => Some("sync_stuck"),
            (None, false) => None,
        };
        match problem {
            None => {
                if alarm.take().is_some() {
                    tracing::info!("supervisor: the sync loop is alive again");
                }
                notifier.watchdog();
            }
            Some(reason) if alarm != Some(reason) => {
                alarm = Some(reason);
                shared.metrics.record_supervisor_alarm(reason);
                match reason {
                    "tick_late" => tracing::error!(
                        "supervisor: the scheduled sync is overdue by more than {}; not pinging the systemd watchdog (systemd restarts the service)",
                        humantime::format_duration(timing.tick_grace)
                    ),
                    _ => tracing::error!(
                        "supervisor: the running sync made no progress for {}; not pinging the systemd watchdog (systemd restarts the service)",
                        humantime::format_duration(shared.progress.idle_for())
                    ),
                }
            }
            Some(_) => {}
        }
    }
}

/// Re-reads the configuration; an invalid one is logged and the old one kept. True when applied.
async fn reload_config(
    shared: &Shared,
    path: &std::path::Path,
    env: &Environment,
    observer: &Arc<dyn RequestObserver>,
    scheduler: &tokio::sync::Mutex<Option<tokio_cron_scheduler::JobScheduler>>,
    tick_tx: &mpsc::Sender<()>,
) -> bool {
    let new = match config::load(path, env) {
        Ok(s) => s,
        Err(e) => {
            for problem in &e.problems {
                tracing::error!("reload: {problem}");
            }
            tracing::error!("reload: the configuration is invalid; keeping the one in force");
            return false;
        }
    };
    let client = match build_client(&new, Arc::clone(observer)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload: {e}; keeping the configuration in force");
            return false;
        }
    };
    let old = shared.active().settings.clone();
    if new.metrics.listen != old.metrics.listen {
        tracing::warn!("reload: metrics.listen changed; it takes effect after a restart");
    }
    // Debug output of webhooks is redacted: comparing it compares everything but the secrets.
    if format!("{:?}", new.webhooks) != format!("{:?}", old.webhooks) {
        tracing::warn!("reload: [[webhook]] entries changed; they take effect after a restart");
    }
    if crate::watcher::directories(&new.watches) != crate::watcher::directories(&old.watches) {
        tracing::warn!("reload: [[watch]] files changed; scheduled syncs use them now, file events after a restart");
    }
    if new.schedule.sync != old.schedule.sync {
        let mut guard = scheduler.lock().await;
        if let Some(s) = guard.as_mut() {
            let _ = s.shutdown().await;
        }
        match start_scheduler(&new.schedule.sync, tick_tx.clone()).await {
            Ok(s) => *guard = Some(s),
            Err(e) => tracing::error!("reload: {e}"),
        }
    }
    shared.metrics.set_policy(&new.expiry);
    shared.metrics.set_stale_after(new.schedule.stale_after);
    let new = Arc::new(new);
    if let Ok(mut e) = shared.expected_tick.lock() {
        *e = next_tick(&new, Utc::now());
    }
    if let Ok(mut active) = shared.active.write() {
        *active = Arc::new(Active {
            settings: new,
            client,
        });
    }
    tracing::info!("reload: configuration applied");
    true
}

async fn serve_metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render(),
    )
}

async fn serve_readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let stale_after = shared.active().settings.schedule.stale_after;
    let last = shared.last_success.lock().ok().and_then(|l| *l);
    let now = OffsetDateTime::now_utc();
    match last {
        Some(at) if (now - at).unsigned_abs() <= stale_after => {
            (StatusCode::OK, "ready\n".to_string())
        }
        Some(at) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stale: the last successful sync was {} ago (schedule.stale_after is {})\n",
                humantime::format_duration(Duration::from_secs(
                    (now - at).whole_seconds().max(0) as u64
                )),
                humantime::format_duration(stale_after)
            ),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no successful sync yet\n".to_string(),
        ),
    }
}
