//! File events for the `[[watch]]` entries: the parent directories are followed (not the files: a
//! notify watch on a symlink misses certbot's swap, and rename-on-save can drop events), events are
//! debounced, and each burst only wakes the sync loop — the pass itself re-reads everything.
//!
//! A missed event only delays a rotation: every scheduled sync re-checks the files too.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WatchSettings;

/// The directories to watch: each file's parent, and the parent of where a symlink points
/// (certbot's live/ → archive/).
pub fn directories(watches: &[WatchSettings]) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    for w in watches {
        for file in [&w.certificate, &w.private_key] {
            if let Some(parent) = file.parent() {
                dirs.insert(parent.to_path_buf());
            }
            if let Ok(target) = std::fs::canonicalize(file) {
                if let Some(parent) = target.parent() {
                    dirs.insert(parent.to_path_buf());
                }
            }
        }
    }
    dirs
}

/// Whether an event can mean new content. Opening and reading are events too (inotify reports
/// them), and every pass reads the files: counting those would make each pass start the next.
/// Metadata changes are left out for the same reason: the first read after a write updates the
/// access time (relatime), which inotify reports as an attribute change. A permission fix alone
/// is picked up by the next scheduled sync.
pub fn changes_content(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind, MetadataKind, ModifyKind};
    match kind {
        // The poller reports a newer mtime this way: that is new content.
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::WriteTime)) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        _ => false,
    }
}

/// Starts following file events; a burst wakes `wake` after `debounce` of quiet. Where nothing
/// can be followed, the scheduled syncs still re-check the files.
pub fn spawn(
    watches: &[WatchSettings],
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    if watches.is_empty() {
        return;
    }
    let debounce = watches
        .iter()
        .map(|w| w.debounce)
        .min()
        .unwrap_or(Duration::from_secs(2));
    let poll = watches.iter().filter_map(|w| w.poll_interval).min();
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let handler = move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| changes_content(&e.kind)) {
            let _ = tx.send(());
        }
    };
    let watcher: notify::Result<Box<dyn Watcher + Send>> = match poll {
        Some(interval) => notify::PollWatcher::new(
            handler,
            notify::Config::default()
                .with_poll_interval(interval)
                .with_compare_contents(true),
        )
        .map(|w| Box::new(w) as Box<dyn Watcher + Send>),
        None => {
            notify::recommended_watcher(handler).map(|w| Box::new(w) as Box<dyn Watcher + Send>)
        }
    };
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("cannot follow file events ({e}); relying on the scheduled syncs");
            return;
        }
    };
    let mut followed = 0;
    for dir in directories(watches) {
        match watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
            Ok(()) => followed += 1,
            Err(e) => {
                tracing::warn!(directory = %dir.display(), "cannot follow file events ({e}); relying on the scheduled syncs")
            }
        }
    }
    tracing::info!(
        directories = followed,
        mode = if poll.is_some() { "polling" } else { "events" },
        "watching certificate files"
    );
    tracker.spawn(async move {
        let _watcher = watcher; // dropped, and so stopped, with this task
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                event = rx.recv() => {
                    if event.is_none() { break; }
                }
            }
            // Debounce: wait for `debounce` without events, then start one pass.
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    more = rx.recv() => if more.is_none() { return },
                    _ = tokio::time::sleep(debounce) => break,
                }
            }
            tracing::info!("certificate files changed: starting a pass");
            wake.notify_one();
        }
    });
}
