//! The probe pass: the TLS probes of every domain, looked at from outside the API on the edge
//! schedule. `check` runs one pass; the daemon runs them on `edge.interval`, and probes a
//! watch's domains again after a rotation until the edge confirms it (see [`run_probe_loop`]).
//! (The DNS diagnosis runs inside the sync, at most once per `edge.interval`: `daemon::dns`.)
//!
//! Probes never use the API budget: they read the account from the last sync's inventory.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::core::edge::{self, EdgeMemory, EdgePolicy, RotationState, Seen};
use crate::model::Finding;
use crate::sources::edge::{probe_all, ProbeOptions, Target};
use crate::sources::inventory::Inventory;

use super::Shared;

/// The rules' thresholds; `check` probes once, so one failure is a finding there.
pub fn policy(settings: &Settings, probes_once: bool) -> EdgePolicy {
    EdgePolicy {
        failures_before_finding: if probes_once {
            1
        } else {
            settings.edge.failures_before_finding.get()
        },
        propagation_grace: settings.edge.propagation_grace,
        expiry_critical: settings.expiry.critical,
    }
}

/// Names not in `edge.resolve` are resolved through `dns.nameservers` when they are set (the
/// same servers as the DNS diagnosis), else through the system's resolver, which is what an
/// empty `dns.nameservers` means for the diagnosis too.
fn options(settings: &Settings) -> ProbeOptions {
    let resolver = if settings.dns.nameservers.is_empty() {
        None
    } else {
        match crate::sources::dns::Resolver::from_settings(&settings.dns) {
            Ok(r) => Some(std::sync::Arc::new(r)),
            Err(e) => {
                tracing::warn!(error = %e, "edge probes resolve names through the system's resolver");
                None
            }
        }
    };
    ProbeOptions {
        timeout: settings.edge.timeout,
        concurrency: settings.edge.concurrency.get(),
        port: settings.edge.port,
        resolve: settings.edge.resolve.clone(),
        in_flight: None,
        resolver,
    }
}

/// What one probe pass saw.
#[derive(Debug, Clone, Default)]
pub struct ProbeResults {
    /// Each probed domain and what it served, judged.
    pub seen: Vec<(Target, Seen)>,
    /// Wildcard domains without an `edge.wildcard_probe_names` entry.
    pub skipped_wildcards: Vec<String>,
}

/// One probe pass over the domains of `inventory` (only those in `only`, when given): the edge
/// probes, each chain judged against `edge.trust`.
pub async fn probe_pass(
    settings: &Settings,
    inventory: &Inventory,
    only: Option<&BTreeSet<String>>,
) -> ProbeResults {
    let mut results = ProbeResults::default();
    if settings.edge.enabled {
        let (mut targets, skipped) = edge::targets(inventory, &settings.edge.wildcard_probe_names);
        if let Some(only) = only {
            targets.retain(|t| only.contains(&t.domain));
        }
        let probes = probe_all(&targets, &options(settings)).await;
        let now = OffsetDateTime::now_utc();
        results.seen = edge::judge_probes(targets, probes, now, &settings.edge.trust);
        results.skipped_wildcards = skipped;
    }
    results
}

/// The edge's findings for `inventory`, added to the account's `findings` (and what the edge
/// serves meanwhile added to the messages of domains still waiting for a certificate).
pub fn add_findings(
    findings: &mut Vec<Finding>,
    inventory: &Inventory,
    memory: &EdgeMemory,
    policy: &EdgePolicy,
    now: OffsetDateTime,
) {
    edge::annotate(findings, inventory, memory);
    findings.extend(edge::findings(inventory, memory, policy, now));
    crate::core::evaluate::sort(findings);
}

/// How often the domains of a rotation still pending at the edge are probed again.
pub fn recheck_interval(settings: &Settings) -> Duration {
    (settings.edge.propagation_grace / 10)
        .clamp(Duration::from_secs(1), Duration::from_secs(60))
        .min(settings.edge.interval)
}

/// The daemon's probe schedule (with `edge.enabled`): a full pass every `edge.interval` (the
/// first after the first successful sync, and followed by one more sync), the domains of a
/// rotation at once when the sync loop asks, and those of rotations still pending again every
/// [`recheck_interval`]. A rotation that settles is logged
/// and counted once; then the sync loop is woken to delete what it replaced.
pub(super) async fn run_probe_loop(
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut outcomes = shared.subscribe();
    let mut next_full: Option<Instant> = None;
    let mut told = BTreeSet::new();
    loop {
        let settings = shared.active().settings.clone();
        let pending = shared.edge().pending_domains();
        let far = Instant::now() + Duration::from_secs(86_400);
        let mut until = next_full.unwrap_or(far);
        if !pending.is_empty() {
            until = until.min(Instant::now() + recheck_interval(&settings));
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = outcomes.changed() => {
                if changed.is_err() {
                    return;
                }
                if next_full.is_none() && last_inventory(&outcomes).is_some() {
                    next_full = Some(Instant::now());
                }
                continue;
            }
            _ = shared.probe_now.notified() => {}
            _ = tokio::time::sleep_until(until) => {}
        }
        let Some(inventory) = last_inventory(&outcomes) else {
            continue;
        };
        let full = next_full.is_some_and(|t| t <= Instant::now());
        let mut only = shared.take_probe_requests();
        only.extend(pending);
        if full {
            next_full = Some(Instant::now() + settings.edge.interval);
        }
        if !settings.edge.enabled || (!full && only.is_empty()) {
            continue;
        }
        let first = full && !shared.edge().probed();
        // Shutdown does not wait for a pass: its probes are dropped (each one's socket closed).
        let results = tokio::select! {
            _ = shutdown.cancelled() => return,
            results = probe_pass(&settings, &inventory, (!full).then_some(&only)) => results,
        };
        for wildcard in results.skipped_wildcards.iter() {
            if told.insert(wildcard.clone()) {
                tracing::info!(domain = %wildcard, "not probed at the edge: a wildcard needs a name in edge.wildcard_probe_names");
            }
        }
        record(&shared, &wake, &settings, &inventory, &results);
        if first && !results.seen.is_empty() {
            // The first look at the edge: one sync now puts its findings in the alerts and the
            // report, instead of at the next scheduled sync.
            wake.notify_one();
        }
    }
}

/// The inventory of the last successful sync, if any.
fn last_inventory(
    outcomes: &tokio::sync::watch::Receiver<Option<Arc<super::SyncOutcome>>>,
) -> Option<Arc<Inventory>> {
    match outcomes.borrow().as_deref().map(|o| &o.result) {
        Some(Ok((inventory, _))) => Some(Arc::clone(inventory)),
        _ => None,
    }
}

/// Records a probe pass: into the memory, the metrics and the log; settles rotations.
fn record(
    shared: &Shared,
    wake: &Notify,
    settings: &Settings,
    inventory: &Inventory,
    results: &ProbeResults,
) {
    let now = OffsetDateTime::now_utc();
    for (target, seen) in &results.seen {
        if let Seen::Failed(error) = seen {
            tracing::debug!(domain = %target.domain, "edge probe failed: {error}");
        }
    }
    let (settled, rows) = {
        let mut memory = shared.edge();
        memory.retain_domains(inventory);
        memory.record_all(&results.seen, now);
        let settled = memory.settle(settings.edge.propagation_grace, now);
        (settled, edge::rows(inventory, &memory))
    };
    shared.metrics.record_edge(inventory, rows);
    let mut delete = false;
    for r in &settled {
        let replaced: Vec<&str> = r.replaced.iter().map(String::as_str).collect();
        match r.state {
            RotationState::Confirmed => {
                tracing::info!(
                    watch = %r.watch,
                    certificate = %r.certificate_id,
                    "rotation confirmed at the edge: every domain serves the new certificate{}",
                    deleting(&replaced, "now that the edge confirmed")
                );
                shared.metrics.record_edge_rotation(&r.watch, "confirmed");
            }
            RotationState::GraceOver => {
                tracing::warn!(
                    watch = %r.watch,
                    certificate = %r.certificate_id,
                    "rotation not confirmed at the edge within edge.propagation_grace ({}): some domain still serves another certificate{}",
                    humantime::format_duration(settings.edge.propagation_grace),
                    deleting(&replaced, "because the grace passed")
                );
                shared
                    .metrics
                    .record_edge_rotation(&r.watch, "grace_passed");
            }
            RotationState::Pending => {}
        }
        delete |= !r.replaced.is_empty();
    }
    if delete {
        wake.notify_one();
    }
}

fn deleting(replaced: &[&str], why: &str) -> String {
    if replaced.is_empty() {
        String::new()
    } else {
        format!("; deleting the replaced {} {why}", replaced.join(", "))
    }
}
