//! What the daemon tells the service manager: READY, STATUS, the keep-alive (systemd's
//! `WATCHDOG=1`), STOPPING.

/// The service manager's side. systemd's `sd_notify` in production; a recorder in tests.
pub trait Notifier: Send + Sync {
    fn ready(&self);
    fn status(&self, status: &str);
    /// The keep-alive ping (`WATCHDOG=1`): sent by the supervisor only while the loop is alive.
    fn keepalive(&self);
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
    fn keepalive(&self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
    }
    fn stopping(&self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    }
}
