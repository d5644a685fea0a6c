//! The probe pass: what is looked at from outside the API, on the edge schedule — the TLS
//! probes of every domain, then the DNS diagnosis. `check` runs one pass; the daemon runs them
//! on `edge.interval`, and probes a watch's domains again after a rotation until the edge
//! confirms it (see [`run_probe_loop`]).
//!
//! Probes never use the API budget: they read the account from the last sync's inventory.

use std::collections::BTreeSet;
use std::time::Duration;

use time::OffsetDateTime;

use crate::config::Settings;
use crate::core::edge::{self, EdgeMemory, EdgePolicy};
use crate::model::{Finding, FindingKind};
use crate::sources::edge::{probe_all, ProbeOptions};
use crate::sources::inventory::Inventory;

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

fn options(settings: &Settings) -> ProbeOptions {
    ProbeOptions {
        timeout: settings.edge.timeout,
        concurrency: settings.edge.concurrency.get(),
        port: settings.edge.port,
        resolve: settings.edge.resolve.clone(),
    }
}

/// What one probe pass did.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    pub probed: usize,
    /// Wildcard domains without an `edge.wildcard_probe_names` entry.
    pub skipped_wildcards: Vec<String>,
}

/// One probe pass over the domains of `inventory` (only those in `only`, when given): the edge
/// probes into `memory`, then the DNS diagnosis.
pub async fn probe_pass(
    settings: &Settings,
    inventory: &Inventory,
    memory: &mut EdgeMemory,
    only: Option<&BTreeSet<String>>,
) -> PassReport {
    let mut report = PassReport::default();
    if settings.edge.enabled {
        let (mut targets, skipped) = edge::targets(inventory, &settings.edge.wildcard_probe_names);
        if let Some(only) = only {
            targets.retain(|t| only.contains(&t.domain));
        }
        let probes = probe_all(&targets, &options(settings)).await;
        let now = OffsetDateTime::now_utc();
        memory.retain_domains(inventory);
        edge::record_probes(memory, &targets, probes, now, &settings.edge.trust);
        report.probed = targets.len();
        report.skipped_wildcards = skipped;
    }
    // The DNS diagnosis (`dns.enabled`) runs here, on the same tick, after the probes.
    report
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

/// Whether any finding comes from the edge (for tests and logs).
pub fn is_edge_finding(f: &Finding) -> bool {
    matches!(
        f.kind,
        FindingKind::EdgeCertificateMismatch
            | FindingKind::EdgeCertificateInvalid
            | FindingKind::EdgeUnreachable
    )
}

/// How often the domains of a rotation still pending at the edge are probed again.
pub fn recheck_interval(settings: &Settings) -> Duration {
    (settings.edge.propagation_grace / 10)
        .clamp(Duration::from_secs(1), Duration::from_secs(60))
        .min(settings.edge.interval)
}
