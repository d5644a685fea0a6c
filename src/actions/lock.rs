//! The per-watch rotation lock that keeps `rotate` and a running daemon from acting at once.

use std::time::Duration;

use crate::model::text::io_reason;

/// Keeps a `rotate` and a running daemon from acting on the same watch at once: an exclusive
/// lock on `STATE_DIR/rotate-WATCH.lock`, released when dropped.
pub struct WatchLock {
    _file: std::fs::File,
}

/// How long `rotate` waits for a running daemon's pass to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

impl WatchLock {
    /// Tries for up to `wait`; `Ok(None)` when still held by then.
    pub async fn acquire_within(
        state_dir: &std::path::Path,
        watch: &str,
        wait: Duration,
    ) -> Result<Option<Self>, String> {
        let started = std::time::Instant::now();
        loop {
            if let Some(lock) = Self::try_acquire(state_dir, watch)? {
                return Ok(Some(lock));
            }
            if started.elapsed() >= wait {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `Ok(None)` when another process holds it.
    pub fn try_acquire(state_dir: &std::path::Path, watch: &str) -> Result<Option<Self>, String> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| format!("{}: {}", state_dir.display(), io_reason(&e)))?;
        let path = state_dir.join(format!("rotate-{watch}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {}", path.display(), io_reason(&e)))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(format!("{}: {}", path.display(), io_reason(&e)))
            }
        }
    }
}
