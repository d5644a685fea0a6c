//! `check`: one sync of the account, the evaluation, a report, a Nagios exit code.
//!
//! Reads the account only: `check` never writes to it.

use std::io::Write as _;
use std::path::Path;

use time::OffsetDateTime;

use crate::config::{Environment, Settings};
use crate::core::dns as core_dns;
use crate::core::edge::EdgeMemory;
use crate::core::evaluate::evaluate;
use crate::daemon::probes;
use crate::model::Finding;
use crate::outputs::report;
use crate::sources::dns;
use crate::sources::inventory::{self, Inventory};
use crate::sources::ngrok::{self, ApiError};

use super::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

/// The outcome of one check.
pub struct CheckOutcome {
    pub inventory: Inventory,
    pub findings: Vec<Finding>,
}

/// `check [--format text|json] [--no-edge]`: exit 0/1/2 by the worst finding, 3 when it could
/// not check. Probes the edge once (and diagnoses DNS) unless `no_edge`.
pub async fn check(path: &Path, env: &Environment, format: ReportFormat, no_edge: bool) -> Exit {
    let settings = match super::load_settings(path, env, Exit::Unknown) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let outcome = match sync_and_evaluate(&settings, !no_edge).await {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: check: {e}");
            return Exit::Unknown;
        }
    };
    let checked_at = OffsetDateTime::now_utc();
    match format {
        ReportFormat::Json => {
            // Written as it is serialised: at 100,000 domains the document is ~75 MB.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let (inventory, findings) = (&outcome.inventory, &outcome.findings);
            let written = report::write_json(&mut out, inventory, findings, checked_at, true)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
                .and_then(|()| out.flush());
            if let Err(e) = written {
                eprintln!("ngrok-cert-watchdog: check: cannot write the report: {e}");
                return Exit::Unknown;
            }
        }
        ReportFormat::Text => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let (inventory, findings) = (&outcome.inventory, &outcome.findings);
            let written = report::write_text(&mut out, inventory, findings, checked_at)
                .and_then(|()| out.flush());
            if let Err(e) = written {
                eprintln!("ngrok-cert-watchdog: check: cannot write the report: {e}");
                return Exit::Unknown;
            }
        }
    }
    exit_for(&outcome.findings)
}

/// Nagios: 2 when anything is critical, 1 for a warning, 0 otherwise (info never raises it).
pub fn exit_for(findings: &[Finding]) -> Exit {
    use crate::model::Severity;
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Critical) => Exit::Critical,
        Some(Severity::Warning) => Exit::Warning,
        _ => Exit::Ok,
    }
}

/// Syncs and evaluates, then (with `probe`) looks from outside the API once: the edge probes
/// (unless `edge.enabled = false`) and the DNS diagnosis (unless `dns.enabled = false`). `now`
/// is read once for the account, here, at the edge.
pub async fn sync_and_evaluate(settings: &Settings, probe: bool) -> Result<CheckOutcome, ApiError> {
    let client = ngrok::client_for(&settings.api, &settings.state_dir, None)?;
    let now = OffsetDateTime::now_utc();
    let inventory = inventory::sync(&client, &settings.edge.trust, now).await?;
    let mut findings = evaluate(&inventory, &settings.expiry, now);
    if probe && settings.edge.enabled {
        let results = probes::probe_pass(settings, &inventory, None).await;
        let mut memory = EdgeMemory::default();
        let now = OffsetDateTime::now_utc();
        memory.record_all(&results.seen, now);
        for wildcard in &results.skipped_wildcards {
            tracing::info!(domain = %wildcard, "not probed at the edge: a wildcard needs a name in edge.wildcard_probe_names");
        }
        let policy = probes::policy(settings, true);
        probes::add_findings(&mut findings, &inventory, &memory, &policy, now);
    }
    if probe && settings.dns.enabled {
        dns_diagnosis(settings, &inventory, &mut findings).await;
    }
    Ok(CheckOutcome {
        inventory,
        findings,
    })
}

/// The DNS diagnosis of the account's custom domains, into `findings`; what could not be
/// checked goes to stderr (it is no finding).
async fn dns_diagnosis(settings: &Settings, inventory: &Inventory, findings: &mut Vec<Finding>) {
    let resolver = match dns::Resolver::from_settings(&settings.dns) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: check: DNS not checked: {e}");
            return;
        }
    };
    let diagnosis = dns::diagnose(&resolver, inventory.domains()).await;
    for (domain, verdict) in core_dns::verdicts(inventory, &diagnosis) {
        if let core_dns::Verdict::Unchecked { reason } = verdict {
            eprintln!(
                "ngrok-cert-watchdog: check: DNS of {} not checked: {reason}",
                domain.domain
            );
        }
    }
    core_dns::apply(inventory, &diagnosis, findings);
}
