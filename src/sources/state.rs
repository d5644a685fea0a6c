//! What earlier runs left in `state.dir` besides the alert states and the budget: the request
//! count of the last successful sync, for the schedule check of `check-config` and start-up.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The file in `state.dir`.
pub const LAST_SYNC_FILE: &str = "last-sync.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSync {
    /// API requests the sync took, pages and rotations included.
    pub requests: u64,
}

/// The last sync's record, when there is a readable one.
pub fn read_last_sync(state_dir: &Path) -> Option<LastSync> {
    let path = state_dir.join(LAST_SYNC_FILE);
    let bytes = crate::model::fs::read_regular(&path, 4096).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Records a successful sync; a state directory that cannot be written only loses the record.
pub fn write_last_sync(state_dir: &Path, last: LastSync) {
    let path = state_dir.join(LAST_SYNC_FILE);
    let tmp = path.with_extension("tmp");
    let written = std::fs::create_dir_all(state_dir)
        .and_then(|()| std::fs::write(&tmp, serde_json::to_vec(&last).unwrap_or_default()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::debug!(file = %path.display(), "cannot record the last sync: {e}");
    }
}
