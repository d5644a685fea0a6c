//! The sync loop: one pass at a time, woken by any trigger. A pass locks the watches, lists the
//! account, rotates, evaluates, and hands what it saw to [`crate::core::pass::conclude`]; the
//! loop owns the [`PassMemory`] that carries from one pass to the next.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::actions::lock::WatchLock;
use crate::actions::replaced;
use crate::actions::rotation::{self, PassOptions};
use crate::config::Settings;
use crate::core::edge::{interrupted_rotation, EdgeMemory, RotationCheck, RotationState};
use crate::core::evaluate::evaluate;
use crate::core::pass::{conclude, PassMemory, PassPolicy, Seen, WatchSeen};
use crate::core::rotation::{RotationResult, WatchReport};
use crate::model::{Finding, FindingKind, Severity};
use crate::outputs::report::Summary;
use crate::outputs::status_page::WatchRow;
use crate::sources::inventory::{self, Certificate, Inventory};
use crate::sources::ngrok::ApiError;
use crate::sources::state::{self, LastSync};

use super::notify::Notifier;
use super::probes;
use super::{Active, Shared, SyncOutcome};

/// Runs passes until shutdown: each wake-up starts one pass once the previous has finished, so
/// triggers that arrive meanwhile coalesce into one more pass.
pub async fn run_loop(
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    notifier: Arc<dyn Notifier>,
    shutdown: CancellationToken,
) {
    let mut memory = PassMemory::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            (status, next, outcome) = pass(&shared, &memory) => {
                memory = next;
                // STATUS first: whoever sees the outcome may rely on it.
                notifier.status(&status);
                shared.publish(outcome);
                release_freed_memory();
            }
        }
    }
}

/// Hands the memory a pass freed (its pages of JSON, the previous inventory and exposition)
/// back to the system. glibc's allocator keeps freed memory for reuse, so without this a daemon
/// would stay at its peak between syncs (measured: 92 MiB after a 10,000-domain sync instead of
/// the ~20 MiB it holds).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's own heaps to the system;
    // it takes no pointer and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One pass; returns the one-line STATUS= summary, the memory for the next pass and the outcome
/// for subscribers.
async fn pass(shared: &Shared, memory: &PassMemory) -> (String, PassMemory, SyncOutcome) {
    let active = shared.active();
    let settings = &active.settings;
    shared.progress.set_running(true);
    let started = Instant::now();
    let requests_before = shared.progress.requests();
    // The rotation locks before the listing: a `rotate` running now finishes first, and this
    // pass then plans from an account that shows its work.
    let locks = lock_watches(settings).await;
    let now = OffsetDateTime::now_utc();
    let result = inventory::sync(&active.client, &settings.edge.trust, now).await;
    let listed_in = started.elapsed();
    shared.progress.touch();
    let finished_at = OffsetDateTime::now_utc();
    let policy = PassPolicy::new(settings.schedule.interval);
    // Whether the findings below include the edge's (a probe pass was recorded before them).
    let edge_included = shared.edge_probed();
    // Rotation below is part of the pass: the supervisor watches it for progress too.
    let (status, memory, result) = match result {
        Ok(inventory) => {
            let (inventory, account, watches, rows) =
                rotate_and_evaluate(shared, &active, &locks, inventory, memory, now).await;
            let seen = Seen::Synced { account, watches };
            let conclusion = conclude(memory, seen, &policy, now);
            let findings = conclusion.observation.findings.clone();
            let took = started.elapsed();
            shared.record_success(
                &inventory,
                &findings,
                &rows,
                edge_included,
                took,
                finished_at,
            );
            shared.alert(&conclusion.memory, conclusion.observation);
            let requests = shared.progress.requests() - requests_before;
            state::write_last_sync(&settings.state_dir, LastSync { requests });
            shared.record_sync_requests(requests);
            let status = Summary::of(&inventory, &findings).line();
            tracing::info!(duration_ms = listed_in.as_millis() as u64, "sync: {status}");
            let result = Ok((Arc::new(inventory), Arc::new(findings)));
            (status, conclusion.memory, result)
        }
        Err(e) => {
            shared.record_failure();
            tracing::warn!(kind = e.kind().as_str(), "sync failed: {e}");
            let seen = Seen::Failed {
                kind: e.kind().as_str(),
            };
            let conclusion = conclude(memory, seen, &policy, now);
            shared
                .metrics
                .record_sync_failure(listed_in, &conclusion.observation.findings);
            shared.alert(&conclusion.memory, conclusion.observation);
            let status = format!("last sync failed: {}", e.kind().as_str());
            (status, conclusion.memory, Err(e))
        }
    };
    shared.progress.set_running(false);
    let outcome = SyncOutcome {
        finished_at,
        result,
        edge_included,
    };
    (status, memory, outcome)
}

/// Rotates every locked watch against `inventory`, re-lists the account when a rotation changed
/// it, and evaluates. Returns the inventory to report (without PEMs), the account's findings,
/// what each watch saw, and the watches as the status page shows them.
async fn rotate_and_evaluate(
    shared: &Shared,
    active: &Active,
    locks: &[Option<WatchLock>],
    mut inventory: Inventory,
    memory: &PassMemory,
    now: OffsetDateTime,
) -> (Inventory, Vec<Finding>, Vec<WatchSeen>, Vec<WatchRow>) {
    let settings = &active.settings;
    let edge_on = settings.edge.enabled;
    // With the edge on, what a rotation replaced is deleted once the edge serves the new
    // certificate (or the grace passed): held until then.
    let held = if edge_on {
        follow_interrupted_rotations(shared, settings, memory, &inventory, now);
        shared.edge().held()
    } else {
        *shared.edge() = EdgeMemory::default();
        Default::default()
    };
    let deletion = if edge_on {
        rotation::Deletion::AfterEdge { held: &held }
    } else {
        rotation::Deletion::Confirmed
    };
    let reports = rotate_all(active, locks, &inventory, memory, now, deletion).await;
    let rows = shared.watch_rows(&active.settings.watches, &reports, now);
    // The account changed under this sync: report what it is now, from the API's answers to
    // the rotations (no new listing; the next sync lists it all again anyway).
    for o in reports.iter().filter_map(WatchReport::outcome) {
        // Judged like the listed ones, so an upload whose chain is incomplete is reported in
        // this pass already.
        let trust = &active.settings.edge.trust;
        let created = o
            .created
            .iter()
            .cloned()
            .map(|c| Certificate::judged(c, trust, now));
        inventory = inventory.with_changes(created, o.updated.clone(), &o.deleted);
    }
    if edge_on {
        follow_rotations(shared, &reports, &inventory, now);
    }
    let mut account = evaluate(&inventory, &settings.expiry, now);
    {
        let edge = shared.edge();
        let policy = probes::policy(settings, false);
        probes::add_findings(&mut account, &inventory, &edge, &policy, now);
        shared
            .metrics
            .set_edge_rows(crate::core::edge::rows(&inventory, &edge));
    }
    super::dns::evaluate_with_dns(shared, settings, &inventory, &mut account).await;
    let mut watches = Vec::new();
    for (watch, lock) in active.settings.watches.iter().zip(locks) {
        if lock.is_none() {
            let watch = watch.name.clone();
            watches.push(WatchSeen::Skipped { watch });
        }
    }
    for report in reports {
        shared.metrics.record_watch(&report);
        watches.push(WatchSeen::Ran {
            result: report.result(),
            refusal: report.refusal().cloned(),
            watch: report.watch,
            findings: report.findings,
        });
    }
    (inventory, account, watches, rows)
}

/// The rotation lock of every watch, waiting a little for a running `rotate`; `None` for a
/// watch whose lock another process keeps.
async fn lock_watches(settings: &Settings) -> Vec<Option<WatchLock>> {
    let mut locks = Vec::new();
    for watch in &settings.watches {
        let lock =
            WatchLock::acquire_within(&settings.state_dir, &watch.name, Duration::from_secs(10))
                .await;
        locks.push(match lock {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => {
                tracing::info!(watch = %watch.name, "another process holds the rotation lock; next pass");
                None
            }
            Err(e) => {
                tracing::warn!(watch = %watch.name, "cannot take the rotation lock: {e}");
                None
            }
        });
    }
    locks
}

/// One rotation pass per watch whose lock is held; logs each rotation once with its outcome.
async fn rotate_all(
    active: &Active,
    locks: &[Option<WatchLock>],
    inventory: &Inventory,
    memory: &PassMemory,
    now: OffsetDateTime,
    deletion: rotation::Deletion<'_>,
) -> Vec<WatchReport> {
    let mut reports = Vec::new();
    for (watch, lock) in active.settings.watches.iter().zip(locks) {
        if lock.is_none() {
            continue;
        }
        let options = PassOptions {
            dry_run: false,
            backoff: Duration::from_secs(2),
        };
        let remembered = rotation::Remembered {
            refusal: memory.refusal(&watch.name),
            state_dir: Some(&active.settings.state_dir),
            deletion,
            trust: Some(&active.settings.edge.trust),
        };
        let report =
            rotation::pass_remembering(&active.client, watch, inventory, options, now, remembered)
                .await;
        log_rotation(&report);
        reports.push(report);
    }
    reports
}

/// At a watch's first pass in this process (after a restart), follows again at the edge the
/// rotation whose replaced certificates `state.dir` still records: they are held until the
/// edge serves what replaced them or the grace passes, as if the rotation had just happened.
/// (Later, a record outlives a rotation only while its deletion is due or failed: the edge
/// confirmed it, or the grace passed.)
fn follow_interrupted_rotations(
    shared: &Shared,
    settings: &Settings,
    memory: &PassMemory,
    inventory: &Inventory,
    now: OffsetDateTime,
) {
    for watch in &settings.watches {
        if memory.has_seen(&watch.name) || shared.edge().follows(&watch.name) {
            continue;
        }
        let replaced = replaced::load(&settings.state_dir, &watch.name);
        if replaced.is_empty() {
            continue;
        }
        let Some(check) =
            interrupted_rotation(&watch.name, &watch.domains, &replaced, inventory, now)
        else {
            continue;
        };
        tracing::info!(watch = %watch.name, certificate = %check.certificate_id, "replaced certificates are recorded but not deleted: probing the watch's domains at the edge before deleting them");
        shared.request_probes(check.domains.iter().cloned());
        shared.edge().follow(check);
    }
}

/// Follows each rotation of this pass at the edge: its domains are probed at once, and what it
/// replaced is held until they serve the new certificate or the grace passes.
fn follow_rotations(
    shared: &Shared,
    reports: &[WatchReport],
    inventory: &Inventory,
    now: OffsetDateTime,
) {
    for report in reports {
        let (Some(plan), Some(outcome)) = (report.plan(), report.outcome()) else {
            continue;
        };
        let Some(target) = outcome.target.clone() else {
            continue;
        };
        if outcome.moved.is_empty() {
            continue;
        }
        let fingerprint = inventory
            .leaf_fingerprint(&target)
            .unwrap_or(&plan.fingerprint)
            .to_string();
        let replaced = plan
            .deletes
            .iter()
            .filter(|id| !outcome.deleted.contains(id))
            .cloned()
            .collect();
        tracing::info!(watch = %report.watch, certificate = %target, "probing the rotated domains at the edge until they serve the new certificate");
        shared.edge().follow(RotationCheck {
            watch: report.watch.clone(),
            domains: outcome.moved.clone(),
            certificate_id: target,
            fingerprint,
            replaced,
            patched_at: now,
            state: RotationState::Pending,
        });
        shared.request_probes(outcome.moved.iter().cloned());
    }
}

fn log_rotation(report: &WatchReport) {
    let watch = &report.watch;
    match (report.result(), report.outcome()) {
        (RotationResult::Success, Some(o)) => tracing::info!(
            watch = %watch,
            certificate = o.target.as_deref().unwrap_or(""),
            uploaded = o.uploaded,
            moved = o.moved.len(),
            deleted = o.deleted.len(),
            "rotation done"
        ),
        (RotationResult::Failure, Some(o)) => tracing::warn!(
            watch = %watch,
            "rotation incomplete: {}",
            o.failures.join("; ")
        ),
        _ => {}
    }
    for f in report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::WatchInvalid)
    {
        tracing::warn!(watch = %watch, "{}", f.message);
    }
}

/// Counts for the alerts that fire, by severity.
pub(super) fn firing_counts(memory: &PassMemory) -> [(Severity, usize); 2] {
    [
        (Severity::Warning, memory.firing(Severity::Warning)),
        (Severity::Critical, memory.firing(Severity::Critical)),
    ]
}

/// What a pass leaves for subscribers: the inventory and findings, or why the listing failed.
pub type SyncResult = Result<(Arc<Inventory>, Arc<Vec<Finding>>), ApiError>;
