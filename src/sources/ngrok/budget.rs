//! The client-side request budget: at most `requests_per_minute` requests in any rolling 60 s,
//! like the account's own limit (120 per rolling 60 s, shared with every tool using the key).
//!
//! A token bucket whose burst is the whole minute lets twice the rate through in a rolling
//! minute (a full burst, then the refill); a window does not. The times of recent requests are
//! written to `state.dir` at most every second, and when the window is dropped (a command
//! ending, the daemon stopping), and read at start, so that a process restarted in a loop, or
//! `check` run back to back, counts the requests of the one before and cannot drain the account.
//! Only a crash loses the requests of its last second.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The account's window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// How often the request times are written to the state file at most.
const SAVE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct RollingWindow {
    limit: usize,
    state: Mutex<WindowState>,
    file: Option<PathBuf>,
}

#[derive(Debug)]
struct WindowState {
    /// When each request of the last 60 s was let through, oldest first.
    sent: VecDeque<Instant>,
    saved_at: Option<Instant>,
    /// A request was let through since the last write of the file.
    unsaved: bool,
}

/// The state file: Unix milliseconds of the requests let through in the last 60 s.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    sent_unix_ms: Vec<u64>,
}

impl RollingWindow {
    /// At most `per_minute` requests in any 60 s; with `file`, counting the requests an earlier
    /// process recorded there, and recording this one's.
    pub fn per_minute(per_minute: NonZeroU32, file: Option<PathBuf>) -> Self {
        let sent = file.as_deref().map(load).unwrap_or_default();
        Self {
            limit: per_minute.get() as usize,
            state: Mutex::new(WindowState {
                sent,
                saved_at: None,
                unsaved: false,
            }),
            file,
        }
    }

    /// Lets one request through, waiting until fewer than the limit were let through in the
    /// last 60 s.
    pub async fn acquire(&self) {
        self.acquire_telling(|| {}).await;
    }

    /// [`acquire`](Self::acquire), calling `waiting` before each wait for the window: waiting
    /// for the budget is progress, not a stuck sync.
    pub async fn acquire_telling(&self, waiting: impl Fn()) {
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let now = Instant::now();
                while state
                    .sent
                    .front()
                    .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
                {
                    state.sent.pop_front();
                }
                if state.sent.len() < self.limit {
                    state.sent.push_back(now);
                    state.unsaved = true;
                    save_now_and_then(self.file.as_deref(), &mut state, now);
                    return;
                }
                // The oldest request leaves the window first.
                let oldest = state.sent.front().copied().unwrap_or(now);
                (oldest + WINDOW).saturating_duration_since(now)
            };
            waiting();
            tokio::time::sleep(wait).await;
        }
    }

    /// Writes the window to the state file now (also done by `acquire`, at most every second).
    pub async fn save(&self) {
        let mut state = self.state.lock().await;
        state.saved_at = None;
        save_now_and_then(self.file.as_deref(), &mut state, Instant::now());
    }

    /// Requests let through in the last 60 s (for tests and diagnostics).
    pub async fn in_window(&self) -> usize {
        let state = self.state.lock().await;
        let now = Instant::now();
        state
            .sent
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < WINDOW)
            .count()
    }
}

/// The last requests reach the file however the process ends normally: the writes while it ran
/// were at most one a second.
impl Drop for RollingWindow {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        if state.unsaved {
            state.saved_at = None;
            save_now_and_then(self.file.as_deref(), state, Instant::now());
        }
    }
}

/// Writes the window to `file`, at most every [`SAVE_EVERY`]. A state directory that cannot be
/// written (a `check` by a user without access) only loses the memory.
fn save_now_and_then(file: Option<&Path>, state: &mut WindowState, now: Instant) {
    let Some(file) = file else { return };
    if state
        .saved_at
        .is_some_and(|at| now.saturating_duration_since(at) < SAVE_EVERY)
    {
        return;
    }
    state.saved_at = Some(now);
    state.unsaved = false;
    let now_ms = unix_ms(SystemTime::now());
    let sent_unix_ms = state
        .sent
        .iter()
        .map(|t| now_ms.saturating_sub(now.saturating_duration_since(*t).as_millis() as u64))
        .collect();
    if let Err(e) = write_atomically(file, &Saved { sent_unix_ms }) {
        tracing::debug!(file = %file.display(), "cannot record the request budget: {e}");
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The requests an earlier process let through in the last 60 s, as instants of this one.
fn load(file: &Path) -> VecDeque<Instant> {
    let Ok(bytes) = crate::model::fs::read_regular(file, crate::model::fs::MAX_FILE_BYTES) else {
        return VecDeque::new();
    };
    let Ok(saved) = serde_json::from_slice::<Saved>(&bytes) else {
        return VecDeque::new();
    };
    let now_ms = unix_ms(SystemTime::now());
    let now = Instant::now();
    let mut sent: Vec<Instant> = saved
        .sent_unix_ms
        .into_iter()
        // A clock that went back leaves times in the future: count them as now.
        .map(|ms| Duration::from_millis(now_ms.saturating_sub(ms)))
        .filter(|age| *age < WINDOW)
        .filter_map(|age| now.checked_sub(age))
        .collect();
    sent.sort();
    sent.into()
}

fn write_atomically(file: &Path, saved: &Saved) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(saved).unwrap_or_default())?;
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most requests let through in any 60 s window, from their times.
    fn max_in_any_window(times: &[Instant]) -> usize {
        times
            .iter()
            .map(|start| {
                times
                    .iter()
                    .filter(|t| **t >= *start && t.duration_since(*start) < WINDOW)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_any_rolling_minute() {
        let window = RollingWindow::per_minute(NonZeroU32::new(30).unwrap(), None);
        let start = Instant::now();
        let mut times = Vec::new();
        // A steady stream of requests for three minutes: a token bucket with a burst of a
        // minute let 61 through in the first 60 s.
        while start.elapsed() < Duration::from_secs(180) {
            window.acquire().await;
            times.push(Instant::now());
        }
        assert_eq!(max_in_any_window(&times), 30);
        // The first 30 at once, then the 31st when the first leaves the window.
        assert_eq!(times[29] - start, Duration::ZERO);
        assert_eq!(times[30] - start, WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_for_the_window_is_told() {
        let window = RollingWindow::per_minute(NonZeroU32::new(2).unwrap(), None);
        let told = std::sync::atomic::AtomicUsize::new(0);
        let tell = || {
            told.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        window.acquire_telling(tell).await;
        window.acquire_telling(tell).await;
        assert_eq!(told.load(std::sync::atomic::Ordering::Relaxed), 0);
        window.acquire_telling(tell).await;
        assert_eq!(told.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_process_that_ends_leaves_every_request_in_the_file() {
        // Three requests within a second (a `check`): the writes while it runs are one a
        // second, so only the first was written; dropping the window writes the rest.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("api-budget.json");
        let window = RollingWindow::per_minute(NonZeroU32::new(60).unwrap(), Some(file.clone()));
        for _ in 0..3 {
            window.acquire().await;
        }
        assert!(load(&file).len() < 3);
        drop(window);
        assert_eq!(load(&file).len(), 3);
        let next = RollingWindow::per_minute(NonZeroU32::new(60).unwrap(), Some(file));
        assert_eq!(next.in_window().await, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_process_counts_the_requests_of_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("api-budget.json");
        let first = RollingWindow::per_minute(NonZeroU32::new(10).unwrap(), Some(file.clone()));
        for _ in 0..10 {
            first.acquire().await;
        }
        first.save().await;
        drop(first);
        // A crash and a restart right away: the window is still full.
        let second = RollingWindow::per_minute(NonZeroU32::new(10).unwrap(), Some(file.clone()));
        assert_eq!(second.in_window().await, 10);
        let start = Instant::now();
        second.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(59),
            "{:?}",
            start.elapsed()
        );
        // A file that is not ours is ignored.
        std::fs::write(&file, "garbage").unwrap();
        let third = RollingWindow::per_minute(NonZeroU32::new(10).unwrap(), Some(file));
        assert_eq!(third.in_window().await, 0);
    }
}
