//! Triggers that start a pass: the cron schedule (or a test's manual ticks). A tick carries no
//! work: it records when the next one is due (for the supervisor) and wakes the sync loop.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Notify};
use tokio_cron_scheduler::JobScheduler;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;

use super::{RunError, Shared};

/// Where scheduled ticks come from.
pub enum Ticks {
    /// tokio-cron-scheduler runs `schedule.sync` (UTC).
    Cron,
    /// A test sends ticks itself (and can stall them on purpose).
    Manual(mpsc::Receiver<()>),
}

/// The running scheduler, replaced when a reload changes `schedule.sync`.
pub type Scheduler = Arc<tokio::sync::Mutex<Option<JobScheduler>>>;

/// Starts the tick source and the task that turns ticks into wake-ups; returns the scheduler (for
/// reload and shutdown) and the sender the cron job ticks into.
pub async fn spawn(
    ticks: Ticks,
    shared: &Arc<Shared>,
    wake: &Arc<Notify>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(Scheduler, mpsc::Sender<()>), RunError> {
    let (tick_tx, tick_rx) = mpsc::channel::<()>(16);
    let scheduler = match ticks {
        Ticks::Manual(rx) => {
            tracker.spawn(forward_manual(rx, tick_tx.clone(), shutdown.clone()));
            None
        }
        Ticks::Cron => {
            let cron = shared.active().settings.schedule.sync.clone();
            Some(start_scheduler(&cron, tick_tx.clone()).await?)
        }
    };
    tracker.spawn(wake_on_ticks(
        tick_rx,
        Arc::clone(shared),
        Arc::clone(wake),
        shutdown.clone(),
    ));
    Ok((Arc::new(tokio::sync::Mutex::new(scheduler)), tick_tx))
}

/// A test's ticks, passed on; a closed sender stalls (like a scheduler that stopped firing).
async fn forward_manual(
    mut rx: mpsc::Receiver<()>,
    tx: mpsc::Sender<()>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            t = rx.recv() => match t {
                Some(()) => { let _ = tx.try_send(()); }
                None => std::future::pending::<()>().await,
            },
        }
    }
}

/// Each tick: note when the next is due, wake the sync loop.
async fn wake_on_ticks(
    mut tick_rx: mpsc::Receiver<()>,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            t = tick_rx.recv() => {
                if t.is_none() { break; }
                let settings = shared.active().settings.clone();
                shared.set_expected_tick(next_tick(&settings, Utc::now()));
                wake.notify_one();
            }
        }
    }
}

/// A started scheduler with one cron job ticking into `tick_tx`.
pub async fn start_scheduler(
    cron: &str,
    tick_tx: mpsc::Sender<()>,
) -> Result<JobScheduler, RunError> {
    let scheduler = JobScheduler::new()
        .await
        .map_err(|e| RunError::Scheduler(e.to_string()))?;
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
        .map_err(|e| RunError::Scheduler(e.to_string()))?;
    scheduler
        .start()
        .await
        .map_err(|e| RunError::Scheduler(e.to_string()))?;
    Ok(scheduler)
}

/// The next scheduled tick after `now`.
pub fn next_tick(settings: &Settings, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    settings
        .schedule
        .cron
        .find_next_occurrence(&now, false)
        .ok()
}
