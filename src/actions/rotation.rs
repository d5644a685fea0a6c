//! The rotation executor: applies a [`crate::core::rotation::Plan`] step by step (upload once,
//! move each domain, confirm, delete the replaced) and never leaves a domain without a certificate.

use std::collections::BTreeSet;
use std::time::Duration;

use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::config::WatchSettings;
use crate::core::rotation::{
    plan, Move, Outcome, Plan, Target, UploadMetadata, WatchReport, WatchState, UPLOADED_BY,
};
use crate::model::{Finding, FindingKind, Severity};
use crate::sources::inventory::Inventory;
use crate::sources::local::{self, LocalPair, RefusalKind};
use crate::sources::ngrok::{Client, ErrorKind, ReservedDomainUpdate, TlsCertificateCreate};

/// How many times a failed PATCH is tried again within one pass (on top of the client's own
/// retries of transient errors).
const PATCH_ATTEMPTS: u32 = 3;

/// Applies `plan`: upload (once), move each domain (`certificate_id` alone), confirm by listing,
/// and only then delete. Stops before deleting anything when a domain did not move.
pub async fn execute(
    client: &Client,
    watch: &WatchSettings,
    local: &LocalPair,
    plan: &Plan,
    backoff: Duration,
) -> Outcome {
    let mut outcome = Outcome::default();
    let target = match &plan.target {
        Target::Existing(id) => Some(id.clone()),
        Target::Nothing => None,
        Target::Upload => match upload(client, watch, local, plan).await {
            Ok(id) => {
                outcome.uploaded = true;
                Some(id)
            }
            Err(failure) => {
                outcome.failures.push(failure);
                return outcome;
            }
        },
    };
    outcome.target = target.clone();
    // The plan has moves only when it has a target.
    if let Some(target) = &target {
        for m in &plan.moves {
            match move_domain(client, m, target, backoff).await {
                Ok(()) => outcome.moved.push(m.domain.clone()),
                Err(failure) => outcome.failures.push(failure),
            }
        }
    }
    if outcome.failures.is_empty() {
        confirm_and_delete(client, plan, target.as_deref(), &mut outcome).await;
    }
    outcome
}

/// Uploads the pair on disk once; the new certificate's id. An unknown outcome is not retried:
/// the next pass finds the upload by its fingerprint if it went through.
async fn upload(
    client: &Client,
    watch: &WatchSettings,
    local: &LocalPair,
    plan: &Plan,
) -> Result<String, String> {
    let metadata = UploadMetadata {
        uploaded_by: UPLOADED_BY.into(),
        watch: watch.name.clone(),
        sha256: plan.fingerprint.clone(),
    };
    let body = TlsCertificateCreate {
        description: Some(format!("ngrok-cert-watchdog watch {}", watch.name)),
        metadata: serde_json::to_string(&metadata).ok(),
        certificate_pem: local.chain_pem.clone(),
        private_key_pem: local.key_pem.expose_secret().to_string(),
    };
    match client.create_tls_certificate(&body).await {
        Ok(created) => Ok(created.id),
        Err(e) => Err(format!("upload: {e}")),
    }
}

/// Points one domain at `target`, trying a failed PATCH again a few times with backoff.
async fn move_domain(
    client: &Client,
    m: &Move,
    target: &str,
    backoff: Duration,
) -> Result<(), String> {
    let mut last_error = String::new();
    for attempt in 0..PATCH_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff * 2u32.pow(attempt - 1)).await;
        }
        let update = ReservedDomainUpdate {
            certificate_id: Some(target.to_string()),
            ..Default::default()
        };
        match client.update_reserved_domain(&m.domain_id, &update).await {
            Ok(d) if d.certificate_id() == Some(target) => return Ok(()),
            Ok(d) => {
                last_error = format!(
                    "{}: the update answered certificate {} instead of {target}",
                    m.domain,
                    d.certificate_id().unwrap_or("none")
                )
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(format!("{}: the domain no longer exists", m.domain));
            }
            Err(e) => last_error = format!("{}: {e}", m.domain),
        }
    }
    Err(last_error)
}

/// Confirms every move from a fresh listing, then deletes what the plan replaced — never a
/// certificate that a domain references.
async fn confirm_and_delete(
    client: &Client,
    plan: &Plan,
    target: Option<&str>,
    outcome: &mut Outcome,
) {
    let domains = match client.list_reserved_domains().await {
        Ok(d) => d,
        Err(e) => {
            outcome.failures.push(format!("confirming the move: {e}"));
            return;
        }
    };
    let not_moved: Vec<&str> = plan
        .moves
        .iter()
        .filter(|m| {
            !domains
                .iter()
                .any(|d| d.id == m.domain_id && d.certificate_id() == target)
        })
        .map(|m| m.domain.as_str())
        .collect();
    if !not_moved.is_empty() {
        outcome.failures.push(format!(
            "the listing does not show {} on {} yet",
            not_moved.join(", "),
            target.unwrap_or("its certificate")
        ));
        return;
    }
    let referenced: BTreeSet<&str> = domains.iter().filter_map(|d| d.certificate_id()).collect();
    for id in &plan.deletes {
        if referenced.contains(id.as_str()) || Some(id.as_str()) == target {
            continue; // never while attached
        }
        match client.delete_tls_certificate(id).await {
            Ok(()) => outcome.deleted.push(id.clone()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => outcome
                .failures
                .push(format!("deleting the replaced {id}: {e}")),
        }
    }
}

/// Options of one pass.
#[derive(Debug, Clone, Copy)]
pub struct PassOptions {
    pub dry_run: bool,
    /// The first wait between PATCH attempts.
    pub backoff: Duration,
}

/// One pass for one watch: read and validate the files, plan against `inventory`, and (unless a
/// dry run) execute. Never fails: what went wrong is in the report.
pub async fn pass(
    client: &Client,
    watch: &WatchSettings,
    inventory: &Inventory,
    options: PassOptions,
    now: OffsetDateTime,
) -> WatchReport {
    let files = local::read(watch);
    let report = |state, findings| WatchReport {
        watch: watch.name.clone(),
        state,
        findings,
    };
    let local = match local::validate(watch, &files, now) {
        Ok(l) => l,
        Err(refusal) => return refused(watch, &files, refusal, now),
    };
    let not_after = local.chain.leaf.not_after;
    let plan = match plan(watch, &local, inventory) {
        Ok(p) => p,
        Err(reason) => {
            let not_after = Some(not_after);
            return report(
                WatchState::Invalid { not_after },
                vec![invalid(watch, reason)],
            );
        }
    };
    let mut findings = plan.problems.clone();
    let mut outcome = None;
    if !options.dry_run && !plan.is_noop() {
        let done = execute(client, watch, &local, &plan, options.backoff).await;
        if !done.failures.is_empty() {
            findings.push(Finding {
                severity: Severity::Warning,
                kind: FindingKind::RotationFailed,
                resource_id: watch.name.clone(),
                domain: watch.domains.first().cloned(),
                message: format!(
                    "watch {}: rotation incomplete, the domains keep their current certificate: {}",
                    watch.name,
                    done.failures.join("; ")
                ),
                not_after: None,
            });
        }
        outcome = Some(done);
    }
    let state = WatchState::Planned {
        not_after,
        plan: Box::new(plan),
        outcome,
    };
    report(state, findings)
}

/// The report for files that cannot be used: waiting (issued for later, or caught mid-swap and
/// not yet settled) or invalid.
fn refused(
    watch: &WatchSettings,
    files: &local::Files,
    refusal: local::Refusal,
    now: OffsetDateTime,
) -> WatchReport {
    let (state, findings) = match refusal.kind {
        RefusalKind::Early => {
            // Issued for later: uploaded once valid (the scheduled syncs re-check), and visible
            // meanwhile without paging anyone.
            tracing::info!(watch = %watch.name, "waiting: {}", refusal.reason);
            let finding = Finding {
                severity: Severity::Info,
                ..invalid(watch, refusal.reason.clone())
            };
            let reason = refusal.reason;
            (WatchState::Waiting { reason }, vec![finding])
        }
        RefusalKind::Transient if !local::settled(files, watch.settle_timeout, now) => {
            tracing::info!(watch = %watch.name, "files not usable yet, waiting for them to settle: {}", refusal.reason);
            let reason = refusal.reason;
            (WatchState::Waiting { reason }, Vec::new())
        }
        RefusalKind::Transient | RefusalKind::Permanent => {
            let not_after = None;
            let finding = invalid(watch, refusal.reason);
            (WatchState::Invalid { not_after }, vec![finding])
        }
    };
    WatchReport {
        watch: watch.name.clone(),
        state,
        findings,
    }
}

/// A `watch_invalid` warning: nothing was uploaded, and why.
fn invalid(watch: &WatchSettings, reason: String) -> Finding {
    Finding {
        severity: Severity::Warning,
        kind: FindingKind::WatchInvalid,
        resource_id: watch.name.clone(),
        domain: watch.domains.first().cloned(),
        message: format!("watch {}: {reason}; nothing uploaded", watch.name),
        not_after: None,
    }
}
