//! `rotate [--watch NAME] [--dry-run]`: one rotation pass over the `[[watch]]` entries, a report.

use std::path::Path;
use std::time::Duration;

use time::OffsetDateTime;

use crate::actions::lock::{WatchLock, LOCK_WAIT};
use crate::actions::rotation::{pass_remembering, Deletion, PassOptions, Remembered};
use crate::config::{Environment, Settings, WatchSettings};
use crate::core::rotation::WatchReport;
use crate::model::FindingKind;
use crate::sources::inventory;
use crate::sources::ngrok;

use super::Exit;

/// `rotate [--watch NAME] [--dry-run]`: one pass, a report on stdout; 0 done or nothing to do,
/// 2 a rotation failed, 3 the account could not be reached, 78 a bad configuration.
pub async fn rotate(path: &Path, env: &Environment, only: Option<&str>, dry_run: bool) -> Exit {
    match super::load_settings(path, env, Exit::Config) {
        Ok(settings) => rotate_with(&settings, only, dry_run).await,
        Err(exit) => exit,
    }
}

async fn rotate_with(settings: &Settings, only: Option<&str>, dry_run: bool) -> Exit {
    let watches: Vec<&WatchSettings> = settings
        .watches
        .iter()
        .filter(|w| only.is_none_or(|n| w.name == n))
        .collect();
    if let Some(name) = only {
        if watches.is_empty() {
            eprintln!(
                "ngrok-cert-watchdog: rotate: no [[watch]] named {name:?} in the configuration"
            );
            return Exit::Config;
        }
    }
    if watches.is_empty() {
        println!("no [[watch]] entries in the configuration: nothing to rotate");
        return Exit::Ok;
    }
    let client = match ngrok::client_for(&settings.api, &settings.state_dir, None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: rotate: {e}");
            return Exit::Unknown;
        }
    };
    let mut failed = false;
    // Locks first, then the account: a plan is never made from a listing older than another
    // process's rotation of the same watch.
    let mut locked = Vec::new();
    for watch in watches {
        match WatchLock::acquire_within(&settings.state_dir, &watch.name, LOCK_WAIT).await {
            Ok(Some(lock)) => locked.push((watch, lock)),
            Ok(None) => {
                println!(
                    "watch {}: skipped: another process (the daemon?) held the rotation lock for {}s",
                    watch.name,
                    LOCK_WAIT.as_secs()
                );
                failed = true;
            }
            Err(e) => {
                println!("watch {}: skipped: cannot take the lock: {e}", watch.name);
                failed = true;
            }
        }
    }
    let now = OffsetDateTime::now_utc();
    let inventory = match inventory::sync(&client, &settings.edge.trust, now).await {
        Ok(i) => i,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: rotate: {e}");
            return Exit::Unknown;
        }
    };
    for (watch, _lock) in &locked {
        let options = PassOptions {
            dry_run,
            backoff: Duration::from_secs(1),
        };
        // The daemon's record of replaced certificates is shared: what it could not delete,
        // this pass deletes, and the other way round. `rotate` deletes as soon as the PATCHes
        // confirm: it does not wait for the edge.
        let remembered = Remembered {
            refusal: None,
            state_dir: Some(&settings.state_dir),
            deletion: Deletion::Confirmed,
            trust: Some(&settings.edge.trust),
        };
        let report = pass_remembering(&client, watch, &inventory, options, now, remembered).await;
        failed |= print_report(&report, dry_run);
    }
    if failed {
        Exit::RotationFailed
    } else {
        Exit::Ok
    }
}

/// Prints one watch's pass; true when it failed (a rotation that stopped short, or files or a
/// plan that were refused).
fn print_report(report: &WatchReport, dry_run: bool) -> bool {
    let name = &report.watch;
    if let Some(reason) = report.waiting() {
        println!("watch {name}: waiting: {reason} (not reported before settle_timeout)");
    }
    if let Some(plan) = report.plan() {
        let verb = if dry_run { "plan" } else { "steps" };
        for line in plan.describe() {
            println!("watch {name}: {verb}: {line}");
        }
    }
    if let Some(outcome) = report.outcome() {
        let state = if outcome.failures.is_empty() {
            "done"
        } else {
            "incomplete"
        };
        let uploaded = if outcome.uploaded {
            outcome.target.as_deref().unwrap_or("1")
        } else {
            "nothing"
        };
        println!(
            "watch {name}: {state}: {uploaded} uploaded, {} moved, {} deleted",
            outcome.moved.len(),
            outcome.deleted.len()
        );
    }
    let mut failed = false;
    for f in &report.findings {
        println!("watch {name}: {}: {}", f.kind.as_str(), f.message);
        if f.kind == FindingKind::RotationFailed
            || (f.kind == FindingKind::WatchInvalid && report.plan().is_none())
        {
            failed = true;
        }
    }
    failed
}
