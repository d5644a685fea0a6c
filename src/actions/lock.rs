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
        // Opened for reading when it exists (a lock needs no more): a lock file that `rotate`
        // run as root created is not writable by the service's user, and must not keep the
        // daemon from rotating.
        let file = match std::fs::File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path),
            opened => opened,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_lock_file_root_created_is_taken_by_the_service_user() {
        // As `sudo ngrok-cert-watchdog rotate` leaves it: created by root, mode 0644, in a
        // state directory the service's user may write.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!("this test runs as root (as CI does), to create the file as root and take it as another user");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        drop(WatchLock::try_acquire(dir.path(), "app").unwrap().unwrap());
        let lock = dir.path().join("rotate-app.lock");
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
        // The same test binary, as nobody, runs the half below.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "actions::lock::tests::taken_as_another_user",
                "--ignored",
            ])
            .env("LOCK_TEST_DIR", dir.path())
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "{text}");
        // Released when that process ended.
        assert!(WatchLock::try_acquire(dir.path(), "app").unwrap().is_some());
    }

    #[test]
    #[ignore = "the half of a_lock_file_root_created_is_taken_by_the_service_user run as nobody"]
    fn taken_as_another_user() {
        let dir = std::path::PathBuf::from(std::env::var_os("LOCK_TEST_DIR").unwrap());
        // SAFETY: geteuid has no preconditions.
        assert_ne!(unsafe { libc::geteuid() }, 0);
        let lock = WatchLock::try_acquire(&dir, "app").unwrap();
        assert!(lock.is_some());
        assert!(
            WatchLock::try_acquire(&dir, "app").unwrap().is_none(),
            "exclusive"
        );
    }
}
