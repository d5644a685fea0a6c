//! The supervisor: sends the keep-alive (`WATCHDOG=1`) only while the next tick is not late and
//! a running sync is making progress, so a scheduler that stops firing or a sync that hangs ends
//! in a restart by systemd instead of a quiet death.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::notify::Notifier;
use super::Shared;

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

/// Liveness of the sync loop, updated lock-free from the API client's observer.
pub struct Progress {
    epoch: Instant,
    last_ms: AtomicU64,
    running: AtomicBool,
    /// API requests answered (or failed) since start.
    requests: AtomicU64,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            running: AtomicBool::new(false),
            requests: AtomicU64::new(0),
        }
    }

    /// An API request was answered (or failed): progress, and one more for the count.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    /// API requests since start.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Something happened: an API response, a pass starting or ending.
    pub fn touch(&self) {
        self.last_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
        self.touch();
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// Why the supervisor withholds the keep-alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alarm {
    /// The scheduled tick is overdue by more than `tick_grace`.
    TickLate,
    /// The running sync made no progress for `stuck_after`.
    SyncStuck,
}

impl Alarm {
    /// The `reason` label of `supervisor_alarms_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Alarm::TickLate => "tick_late",
            Alarm::SyncStuck => "sync_stuck",
        }
    }
}

/// Pings the service manager while the loop is alive; logs and counts each new alarm once.
pub async fn supervise(
    shared: &Shared,
    timing: Supervision,
    notifier: &dyn Notifier,
    shutdown: CancellationToken,
) {
    let mut alarm: Option<Alarm> = None;
    let mut interval = tokio::time::interval(timing.check_every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        match check(shared, &timing) {
            None => {
                if alarm.take().is_some() {
                    tracing::info!("supervisor: the sync loop is alive again");
                }
                notifier.keepalive();
            }
            Some(now) if alarm != Some(now) => {
                alarm = Some(now);
                shared.metrics.record_supervisor_alarm(now.as_str());
                log_alarm(now, shared, &timing);
            }
            Some(_) => {}
        }
    }
}

/// What is wrong now, if anything.
fn check(shared: &Shared, timing: &Supervision) -> Option<Alarm> {
    let late = shared
        .expected_tick()
        .and_then(|due| (Utc::now() - due).to_std().ok())
        .is_some_and(|late_by| late_by > timing.tick_grace);
    let stuck = shared.progress.running() && shared.progress.idle_for() > timing.stuck_after;
    match (late, stuck) {
        (true, _) => Some(Alarm::TickLate),
        (false, true) => Some(Alarm::SyncStuck),
        (false, false) => None,
    }
}

fn log_alarm(alarm: Alarm, shared: &Shared, timing: &Supervision) {
    match alarm {
        Alarm::TickLate => tracing::error!(
            "supervisor: the scheduled sync is overdue by more than {}; not pinging the systemd watchdog (systemd restarts the service)",
            humantime::format_duration(timing.tick_grace)
        ),
        Alarm::SyncStuck => tracing::error!(
            "supervisor: the running sync made no progress for {}; not pinging the systemd watchdog (systemd restarts the service)",
            humantime::format_duration(shared.progress.idle_for())
        ),
    }
}
