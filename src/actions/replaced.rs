//! Certificates a rotation replaced and has yet to delete, remembered in `state.dir`
//! (`replaced-WATCH.json`) from before the first move until they are gone: a DELETE that fails,
//! or a process that dies after the last move, must not orphan them — the next pass has nothing
//! to move and would not find them otherwise (a certificate uploaded by hand carries no marker).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn file(state_dir: &Path, watch: &str) -> PathBuf {
    state_dir.join(format!("replaced-{watch}.json"))
}

/// The ids remembered for `watch`; none when there is no (readable) record.
pub fn load(state_dir: &Path, watch: &str) -> BTreeSet<String> {
    crate::model::fs::read_regular(&file(state_dir, watch), crate::model::fs::MAX_FILE_BYTES)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Replaces the record for `watch` (removing it when empty). Errors are logged: a record that
/// cannot be written only loses the memory, never a certificate.
pub fn save(state_dir: &Path, watch: &str, ids: &BTreeSet<String>) {
    let path = file(state_dir, watch);
    let result = if ids.is_empty() {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    } else {
        let tmp = path.with_extension("tmp");
        std::fs::create_dir_all(state_dir)
            .and_then(|()| std::fs::write(&tmp, serde_json::to_vec(ids).unwrap_or_default()))
            .and_then(|()| std::fs::rename(&tmp, &path))
    };
    if let Err(e) = result {
        tracing::warn!(file = %path.display(), "cannot record the certificates to delete: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), "app").is_empty());
        let ids: BTreeSet<String> = ["cert_a".to_string(), "cert_b".to_string()].into();
        save(dir.path(), "app", &ids);
        assert_eq!(load(dir.path(), "app"), ids);
        assert!(load(dir.path(), "other").is_empty());
        save(dir.path(), "app", &BTreeSet::new());
        assert!(!dir.path().join("replaced-app.json").exists());
    }
}
