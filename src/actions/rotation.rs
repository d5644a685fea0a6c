//! The rotation executor: applies a [`crate::core::rotation::Plan`] step by step (upload once,
//! move each domain, confirm, delete the replaced) and never leaves a domain without a certificate.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::config::WatchSettings;
use crate::core::rotation::{
    attempt_key, plan_remembering, FinalRefusal, Move, Outcome, Plan, Target, UploadMetadata,
    WatchReport, WatchState, UPLOADED_BY,
};
use crate::model::trust::Trust;
use crate::model::{Finding, FindingKind, Severity};
use crate::sources::inventory::Inventory;
use crate::sources::local::{self, LocalPair, RefusalKind};

use super::replaced;
use crate::sources::ngrok::{
    ApiError, CertPolicy, Client, ErrorKind, ReservedDomain, ReservedDomainUpdate, TlsCertificate,
    TlsCertificateCreate,
};

/// How many times a failed PATCH is tried again within one pass (on top of the client's own
/// retries of transient errors).
const PATCH_ATTEMPTS: u32 = 3;

/// Applies `plan`: upload (once), move each domain (`certificate_id` alone; a managed one after
/// removing its policy; each answer confirms its move), and only then delete. Stops before deleting
/// anything when a domain did not move. A step the API refuses for good is recorded with `key`.
pub async fn execute(
    client: &Client,
    watch: &WatchSettings,
    local: &LocalPair,
    plan: &Plan,
    backoff: Duration,
    key: &str,
) -> Outcome {
    let mut outcome = Outcome::default();
    let fail = |outcome: &mut Outcome, failure: StepFailure| {
        if failure.final_refusal && outcome.refusal.is_none() {
            outcome.refusal = Some(FinalRefusal {
                key: key.to_string(),
                message: failure.message.clone(),
            });
        }
        outcome.failures.push(failure.message);
    };
    let target = match &plan.target {
        Target::Existing(id) => Some(id.clone()),
        Target::Nothing => None,
        Target::Upload => match upload(client, watch, local, plan).await {
            Ok(created) => {
                outcome.uploaded = true;
                let id = created.id.clone();
                outcome.created = Some(created);
                Some(id)
            }
            Err(failure) => {
                fail(&mut outcome, failure);
                return outcome;
            }
        },
    };
    outcome.target = target.clone();
    // The plan has moves only when it has a target.
    if let Some(target) = &target {
        for m in &plan.moves {
            match move_domain(client, m, target, backoff).await {
                Ok(updated) => {
                    outcome.moved.push(m.domain.clone());
                    outcome.updated.push(updated);
                }
                Err(failure) => fail(&mut outcome, failure),
            }
        }
    }
    // Each PATCH answer showed the domain on the target: that is the confirmation.
    if outcome.failures.is_empty() {
        delete_replaced(client, plan, target.as_deref(), &mut outcome).await;
    }
    outcome
}

/// Why a step failed, and whether the API refused it for good.
struct StepFailure {
    message: String,
    final_refusal: bool,
}

impl StepFailure {
    fn from_api(context: &str, e: &ApiError) -> Self {
        Self {
            message: format!("{context}: {e}"),
            final_refusal: e.is_final_refusal(),
        }
    }
}

/// Uploads the pair on disk once; the new certificate's id. An unknown outcome is not retried:
/// the next pass finds the upload by its fingerprint if it went through.
async fn upload(
    client: &Client,
    watch: &WatchSettings,
    local: &LocalPair,
    plan: &Plan,
) -> Result<TlsCertificate, StepFailure> {
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
        Ok(created) => Ok(created),
        Err(e) => Err(StepFailure::from_api("upload", &e)),
    }
}

/// Points one domain at `target`. A managed domain first loses its policy (the real API
/// refuses a certificate beside one), and the PATCH follows at once: the domain is without a
/// certificate only between those two requests. If the API then refuses the attach for good,
/// the policy is put back, so that ngrok issues the domain a certificate again instead of
/// leaving it without one.
async fn move_domain(
    client: &Client,
    m: &Move,
    target: &str,
    backoff: Duration,
) -> Result<ReservedDomain, StepFailure> {
    let Some(policy) = &m.take_over else {
        return attach(client, m, target, backoff).await;
    };
    tracing::warn!(
        domain = %m.domain,
        "taking the domain over from ngrok-managed certificates: removing its policy; it has no certificate until {target} is attached next"
    );
    match client
        .detach_certificate_management_policy(&m.domain_id)
        .await
    {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(StepFailure {
                message: format!("{}: the domain no longer exists", m.domain),
                final_refusal: false,
            });
        }
        Err(e) => {
            let context = format!("{}: removing the managed certificate policy", m.domain);
            return Err(StepFailure::from_api(&context, &e));
        }
    }
    match attach(client, m, target, backoff).await {
        Ok(d) => {
            tracing::info!(domain = %m.domain, certificate = %target, "taken over: the domain has its certificate again");
            Ok(d)
        }
        Err(failure) if failure.final_refusal => {
            Err(put_policy_back(client, m, policy, failure).await)
        }
        // Not final: the next pass attaches it (the domain has no policy any more), without
        // a new issuance by ngrok each time.
        Err(failure) => Err(failure),
    }
}

/// After a take-over's attach was refused for good: the domain's policy again, so that ngrok
/// provisions it a certificate; the failure says whether that worked.
async fn put_policy_back(
    client: &Client,
    m: &Move,
    policy: &CertPolicy,
    failure: StepFailure,
) -> StepFailure {
    let update = ReservedDomainUpdate {
        certificate_management_policy: Some(policy.clone()),
        ..Default::default()
    };
    let outcome = match client.update_reserved_domain(&m.domain_id, &update).await {
        Ok(_) => {
            tracing::warn!(domain = %m.domain, "take-over refused: its certificate management policy is back; ngrok provisions it a certificate again");
            "its certificate management policy was put back, so ngrok issues it a certificate again"
                .to_string()
        }
        Err(e) => {
            tracing::error!(domain = %m.domain, "take-over refused, and its policy could not be put back: the domain has no certificate: {e}");
            format!("putting its certificate management policy back failed too ({e}): it has NO certificate; attach one or re-add its policy now")
        }
    };
    StepFailure {
        message: format!("{}; {outcome}", failure.message),
        ..failure
    }
}

/// PATCHes the domain onto `target`, a few times with backoff unless the API refused it for
/// good.
async fn attach(
    client: &Client,
    m: &Move,
    target: &str,
    backoff: Duration,
) -> Result<ReservedDomain, StepFailure> {
    let mut last = None;
    for attempt in 0..PATCH_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff * 2u32.pow(attempt - 1)).await;
        }
        let update = ReservedDomainUpdate {
            certificate_id: Some(target.to_string()),
            ..Default::default()
        };
        match client.update_reserved_domain(&m.domain_id, &update).await {
            Ok(d) if d.certificate_id() == Some(target) => return Ok(d),
            Ok(d) => {
                last = Some(StepFailure {
                    message: format!(
                        "{}: the update answered certificate {} instead of {target}",
                        m.domain,
                        d.certificate_id().unwrap_or("none")
                    ),
                    final_refusal: false,
                })
            }
            // The certificate is gone (deleted meanwhile), whatever status the API gives it
            // (not on record): the next pass uploads it again, so it is not final.
            Err(e) if e.error_code.as_deref() == Some("ERR_NGROK_1965") => {
                return Err(StepFailure {
                    message: format!(
                        "{}: certificate {target} no longer exists (ERR_NGROK_1965); the next pass uploads it again",
                        m.domain
                    ),
                    final_refusal: false,
                });
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StepFailure {
                    message: format!("{}: the domain no longer exists", m.domain),
                    final_refusal: false,
                });
            }
            Err(e) if e.is_final_refusal() => return Err(StepFailure::from_api(&m.domain, &e)),
            Err(e) => last = Some(StepFailure::from_api(&m.domain, &e)),
        }
    }
    Err(last.unwrap_or(StepFailure {
        message: format!("{}: not moved", m.domain),
        final_refusal: false,
    }))
}

/// Deletes what the plan replaced, once every move went through. The plan only lists
/// certificates that no domain outside the moves referenced in the listing this pass made, that
/// ngrok did not issue, and that are not the target.
async fn delete_replaced(
    client: &Client,
    plan: &Plan,
    target: Option<&str>,
    outcome: &mut Outcome,
) {
    for id in &plan.deletes {
        if Some(id.as_str()) == target {
            continue; // never the certificate the domains are on
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
    pass_remembering(
        client,
        watch,
        inventory,
        options,
        now,
        Remembered::default(),
    )
    .await
}

/// What a pass knows from earlier ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct Remembered<'a> {
    /// The API's last final refusal for this watch: the same attempt is not sent again (and is
    /// reported as failed again) until the files, the watch or the domains change.
    pub refusal: Option<&'a FinalRefusal>,
    /// Where replaced certificates are remembered until deleted (`state.dir`).
    pub state_dir: Option<&'a Path>,
    /// What the chain of the files must verify to (`edge.trust`); `None`: the public roots only.
    pub trust: Option<&'a Trust>,
    /// When what the plan replaced may be deleted.
    pub deletion: Deletion<'a>,
}

/// When a rotation deletes the certificates it replaced.
#[derive(Debug, Clone, Copy, Default)]
pub enum Deletion<'a> {
    /// As soon as every PATCH confirmed its move (`rotate`, and the daemon with the edge off).
    #[default]
    Confirmed,
    /// Once the edge serves the new certificate (the daemon with the edge on): a pass that moves
    /// domains deletes nothing yet — what it replaced stays remembered in `state.dir`, like an
    /// interrupted deletion — and a later pass deletes what is no longer `held` (the edge
    /// confirmed, or `edge.propagation_grace` passed).
    AfterEdge { held: &'a BTreeSet<String> },
}

impl Deletion<'_> {
    /// `plan` as it may be carried out now.
    fn apply(self, plan: &Plan) -> Plan {
        let mut plan = plan.clone();
        if let Deletion::AfterEdge { held } = self {
            if plan.moves.is_empty() {
                plan.deletes.retain(|id| !held.contains(id));
            } else {
                plan.deletes.clear();
            }
        }
        plan
    }
}

/// [`pass`], with what earlier passes left behind.
pub async fn pass_remembering(
    client: &Client,
    watch: &WatchSettings,
    inventory: &Inventory,
    options: PassOptions,
    now: OffsetDateTime,
    remembered: Remembered<'_>,
) -> WatchReport {
    let held = remembered.refusal;
    let files = read_within(watch, FILE_READ_DEADLINE).await;
    let report = |state, findings| WatchReport {
        watch: watch.name.clone(),
        state,
        findings,
    };
    let public;
    let trust = match remembered.trust {
        Some(trust) => trust,
        None => {
            public = Trust::public();
            &public
        }
    };
    let local = match local::validate(watch, &files, trust, now) {
        Ok(l) => l,
        Err(refusal) => return refused(watch, &files, refusal, now),
    };
    let not_after = local.chain.leaf.not_after;
    let replaced_before = replaced_before(remembered.state_dir, watch, inventory);
    let plan = match plan_remembering(watch, &local, inventory, &replaced_before) {
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
    if !plan.is_noop() {
        let verb = if options.dry_run {
            "would upload"
        } else {
            "uploading"
        };
        for warning in &local.warnings {
            tracing::warn!(watch = %watch.name, "{verb} {} anyway: {warning}", watch.certificate.display());
        }
    }
    if !options.dry_run && !plan.is_noop() {
        let key = attempt_key(watch, &plan);
        let done = match held.filter(|r| r.key == key) {
            Some(r) => Outcome {
                failures: vec![format!(
                    "{} (refused by the ngrok API earlier; not sent again until the files, the watch or the domains change)",
                    r.message
                )],
                refusal: Some(r.clone()),
                ..Outcome::default()
            },
            None => {
                // Remembered before the first move: a crash after it must not orphan them.
                let mut to_delete = replaced_before.clone();
                to_delete.extend(plan.deletes.iter().cloned());
                remember(remembered.state_dir, watch, &to_delete);
                let now_plan = remembered.deletion.apply(&plan);
                let done = execute(client, watch, &local, &now_plan, options.backoff, &key).await;
                let left = to_delete.into_iter().filter(|id| !done.deleted.contains(id));
                remember(remembered.state_dir, watch, &left.collect());
                done
            }
        };
        if !done.failures.is_empty() {
            findings.push(rotation_failed(watch, &plan, &done));
        }
        outcome = Some(Box::new(done));
    }
    let state = WatchState::Planned {
        not_after,
        plan: Box::new(plan),
        outcome,
    };
    report(state, findings)
}

/// The certificates earlier passes replaced and have not deleted yet, still in the account (the
/// record forgets the ones that are gone).
fn replaced_before(
    state_dir: Option<&Path>,
    watch: &WatchSettings,
    inventory: &Inventory,
) -> BTreeSet<String> {
    let Some(dir) = state_dir else {
        return BTreeSet::new();
    };
    let recorded = replaced::load(dir, &watch.name);
    let present: BTreeSet<String> = recorded
        .iter()
        .filter(|id| inventory.certificate(id).is_some())
        .cloned()
        .collect();
    if present != recorded {
        replaced::save(dir, &watch.name, &present);
    }
    present
}

fn remember(state_dir: Option<&Path>, watch: &WatchSettings, ids: &BTreeSet<String>) {
    if let Some(dir) = state_dir {
        replaced::save(dir, &watch.name, ids);
    }
}

/// `rotation_failed`, saying truthfully where the domains are.
fn rotation_failed(watch: &WatchSettings, plan: &Plan, outcome: &Outcome) -> Finding {
    let target = outcome.target.as_deref().unwrap_or("the new certificate");
    let where_they_are = if outcome.moved.is_empty() {
        "the domains keep their current certificate".to_string()
    } else if outcome.moved.len() == plan.moves.len() {
        format!("every domain is on {target}")
    } else {
        format!(
            "{} moved to {target}, the others keep their current certificate",
            outcome.moved.join(", ")
        )
    };
    Finding {
        severity: Severity::Warning,
        kind: FindingKind::RotationFailed,
        resource_id: watch.name.clone(),
        domain: watch.domains.first().cloned(),
        message: format!(
            "watch {}: rotation incomplete, {where_they_are}: {}",
            watch.name,
            outcome.failures.join("; ")
        ),
        not_after: None,
    }
}

/// How long reading a watch's files may take: a hung network mount must not hold up the pass.
const FILE_READ_DEADLINE: Duration = Duration::from_secs(10);

/// The watch's files, read on a blocking thread; past `deadline` the pass goes on without them
/// (the thread is left to finish or hang on its own, and never holds up shutdown).
async fn read_within(watch: &WatchSettings, deadline: Duration) -> local::Files {
    let owned = watch.clone();
    match tokio::time::timeout(
        deadline,
        tokio::task::spawn_blocking(move || local::read(&owned)),
    )
    .await
    {
        Ok(Ok(files)) => files,
        Ok(Err(_)) => local::unread(watch, "reading failed"),
        Err(_) => local::unread(
            watch,
            &format!(
                "not readable within {} (a hung network mount?)",
                humantime::format_duration(deadline)
            ),
        ),
    }
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
