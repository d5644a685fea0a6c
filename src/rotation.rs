//! Rotation as a reconcile: desired = every watched domain on the certificate whose leaf is on
//! disk; actual = the account. [`plan`] is pure (what to upload, move, delete); [`execute`] applies
//! a plan step by step and never leaves a domain without a certificate.
//!
//! Idempotent by construction: the leaf's SHA-256 fingerprint identifies the certificate in the
//! account (computed from every listed certificate's PEM, so a copy uploaded by hand counts too),
//! so a restart or a crash after an upload finds the upload instead of repeating it.

use std::collections::BTreeSet;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::WatchSettings;
use crate::evaluate::{Finding, FindingKind, Severity};
use crate::inventory::Inventory;
use crate::local::LocalPair;
use crate::ngrok::{ApiError, Client, ErrorKind, ReservedDomainUpdate, TlsCertificateCreate};

/// Written into the metadata of every certificate the watchdog uploads.
pub const UPLOADED_BY: &str = "ngrok-cert-watchdog";

/// The metadata of an uploaded certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadMetadata {
    pub uploaded_by: String,
    pub watch: String,
    pub sha256: String,
}

impl UploadMetadata {
    pub fn parse(metadata: Option<&str>) -> Option<Self> {
        serde_json::from_str::<Self>(metadata?)
            .ok()
            .filter(|m| m.uploaded_by == UPLOADED_BY)
    }
}

/// Where the watched domains should end up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A certificate with the same leaf is already in the account.
    Existing(String),
    /// The pair must be uploaded first.
    Upload,
    /// No watched domain can take it (all missing or managed): nothing to upload.
    Nothing,
}

/// One domain to move onto the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub domain_id: String,
    pub domain: String,
    pub from: Option<String>,
}

/// What one pass would do for one watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub watch: String,
    pub fingerprint: String,
    pub target: Target,
    pub moves: Vec<Move>,
    /// Deleted only once every watched domain is confirmed on the target, and only if still
    /// unreferenced then.
    pub deletes: Vec<String>,
    /// Watched domains that cannot be rotated (missing, managed): reported, not fatal.
    pub problems: Vec<Finding>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.target != Target::Upload && self.moves.is_empty() && self.deletes.is_empty()
    }

    /// One line per step, for `rotate --dry-run` and the log.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.target {
            Target::Upload => lines.push(format!(
                "upload the certificate on disk (sha256 {})",
                &self.fingerprint[..16]
            )),
            Target::Existing(id) => {
                lines.push(format!("use {id}, already in the account (same leaf)"))
            }
            Target::Nothing => {}
        }
        for m in &self.moves {
            lines.push(format!(
                "move {} from {} to the new certificate",
                m.domain,
                m.from.as_deref().unwrap_or("no certificate")
            ));
        }
        for id in &self.deletes {
            lines.push(format!("delete {id} once every domain has moved"));
        }
        for p in &self.problems {
            lines.push(format!("skip: {}", p.message));
        }
        if self.is_noop() && self.problems.is_empty() {
            lines.push("nothing to do: every domain is on the certificate on disk".into());
        }
        lines
    }
}

fn watch_finding(
    watch: &str,
    domain: &str,
    severity: Severity,
    kind: FindingKind,
    message: String,
) -> Finding {
    Finding {
        severity,
        kind,
        resource_id: watch.to_string(),
        domain: Some(domain.to_string()),
        message,
        not_after: None,
    }
}

/// The plan for `watch`, whose validated pair is `local`, against `inventory`. `Err` is a refusal
/// of the whole watch (a rollback), as one line.
pub fn plan(
    watch: &WatchSettings,
    local: &LocalPair,
    inventory: &Inventory,
) -> Result<Plan, String> {
    let leaf = &local.chain.leaf;
    let mut same_leaf: Vec<&str> = inventory
        .with_leaf(&leaf.fingerprint)
        .map(|c| c.id.as_str())
        .collect();
    same_leaf.sort_unstable();

    // The watched domains as the account has them.
    let mut eligible = Vec::new();
    let mut problems = Vec::new();
    for name in &watch.domains {
        match inventory.domains.iter().find(|d| d.domain.eq_ignore_ascii_case(name)) {
            None => problems.push(watch_finding(
                &watch.name,
                name,
                Severity::Warning,
                FindingKind::WatchInvalid,
                format!("watch {}: {name} is not a reserved domain of the account; reserve it or remove it from the watch", watch.name),
            )),
            Some(d) if d.is_managed() && !watch.take_over_managed => problems.push(watch_finding(
                &watch.name,
                name,
                Severity::Warning,
                FindingKind::WatchInvalid,
                format!(
                    "watch {}: {name} uses ngrok-managed certificates; left alone (set take_over_managed = true to replace them with the files on disk)",
                    watch.name
                ),
            )),
            Some(d) => eligible.push(d),
        }
    }

    // Prefer a copy a watched domain already uses, then the oldest.
    let target_id = same_leaf
        .iter()
        .find(|id| eligible.iter().any(|d| d.certificate_id() == Some(**id)))
        .or(same_leaf.first())
        .map(|id| id.to_string());

    let moves: Vec<Move> = eligible
        .iter()
        .filter(|d| target_id.is_none() || d.certificate_id() != target_id.as_deref())
        .map(|d| Move {
            domain_id: d.id.clone(),
            domain: d.domain.clone(),
            from: d.certificate_id().map(str::to_string),
        })
        .collect();

    // No rollbacks: the new leaf must be issued no earlier than what the domains have now.
    // (ngrok renews managed certificates on its own schedule: taking those over is opted into.)
    for m in &moves {
        if let Some(current) = m.from.as_deref().and_then(|id| inventory.certificate(id)) {
            if !current.is_managed() && current.not_before > leaf.not_before {
                return Err(format!(
                    "{}: issued {}, earlier than the certificate {} has ({}, issued {}); refusing to roll back",
                    watch.certificate.display(),
                    crate::evaluate::format_time(leaf.not_before),
                    m.domain,
                    current.id,
                    crate::evaluate::format_time(current.not_before)
                ));
            }
        }
    }

    // After the moves, which certificates does any domain still reference?
    let moved: BTreeSet<&str> = moves.iter().map(|m| m.domain_id.as_str()).collect();
    let referenced: BTreeSet<&str> = inventory
        .domains
        .iter()
        .filter(|d| !moved.contains(d.id.as_str()))
        .filter_map(|d| d.certificate_id())
        .collect();
    let deletable = |id: &str| {
        Some(id) != target_id.as_deref()
            && !referenced.contains(id)
            && inventory.certificate(id).is_some_and(|c| !c.is_managed())
    };
    let mut deletes = BTreeSet::new();
    // Extra copies of the same leaf that the watchdog uploaded (two hosts racing), once they
    // are old enough that no other host can still be moving domains onto them.
    for id in &same_leaf {
        let settled_copy = inventory.certificate(id).is_some_and(|c| {
            UploadMetadata::parse(c.metadata.as_deref()).is_some()
                && c.created_at
                    .is_none_or(|t| inventory.fetched_at - t >= RACE_GRACE)
        });
        if settled_copy && deletable(id) {
            deletes.insert(id.to_string());
        }
    }
    // Replaced certificates only once every watched domain can be on the new one.
    if watch.delete_replaced && problems.is_empty() {
        // What the moves replace, and earlier uploads of this watch left behind.
        for id in moves.iter().filter_map(|m| m.from.as_deref()) {
            if deletable(id) {
                deletes.insert(id.to_string());
            }
        }
        for c in &inventory.certificates {
            // Copies of the current leaf are left to the grace rule above.
            let this_watch = UploadMetadata::parse(c.metadata.as_deref())
                .is_some_and(|m| m.watch == watch.name)
                && !same_leaf.contains(&c.id.as_str());
            if this_watch && deletable(&c.id) {
                deletes.insert(c.id.clone());
            }
        }
    }
    // Nothing to move and no copy in the account: no upload either (it would only be orphaned).
    let target = match target_id {
        Some(id) => Target::Existing(id),
        None if moves.is_empty() => Target::Nothing,
        None => Target::Upload,
    };
    Ok(Plan {
        watch: watch.name.clone(),
        fingerprint: leaf.fingerprint.clone(),
        target,
        moves,
        deletes: deletes.into_iter().collect(),
        problems,
    })
}

/// How old an extra copy of the same leaf must be before it is deleted: another host racing
/// with the same files may still be moving domains onto it.
pub const RACE_GRACE: time::Duration = time::Duration::minutes(10);

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub target: Option<String>,
    pub uploaded: bool,
    pub moved: Vec<String>,
    pub deleted: Vec<String>,
    /// Why the pass stopped short, one line each; empty on success.
    pub failures: Vec<String>,
}

impl Outcome {
    pub fn acted(&self) -> bool {
        self.uploaded || !self.moved.is_empty() || !self.deleted.is_empty()
    }
}

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
        Target::Existing(id) => id.clone(),
        Target::Nothing => String::new(),
        Target::Upload => {
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
                Ok(created) => {
                    outcome.uploaded = true;
                    created.id
                }
                Err(e) => {
                    // An unknown outcome is not retried: the next pass finds the upload by its
                    // fingerprint if it went through.
                    outcome.failures.push(format!("upload: {e}"));
                    return outcome;
                }
            }
        }
    };
    outcome.target = (!target.is_empty()).then(|| target.clone());
    for m in &plan.moves {
        let mut last_error = None;
        for attempt in 0..PATCH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff * 2u32.pow(attempt - 1)).await;
            }
            let update = ReservedDomainUpdate {
                certificate_id: Some(target.clone()),
                ..Default::default()
            };
            match client.update_reserved_domain(&m.domain_id, &update).await {
                Ok(d) if d.certificate_id() == Some(target.as_str()) => {
                    last_error = None;
                    break;
                }
                Ok(d) => {
                    last_error = Some(format!(
                        "{}: the update answered certificate {} instead of {target}",
                        m.domain,
                        d.certificate_id().unwrap_or("none")
                    ))
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    last_error = Some(format!("{}: the domain no longer exists", m.domain));
                    break;
                }
                Err(e) => last_error = Some(format!("{}: {e}", m.domain)),
            }
        }
        match last_error {
            None => outcome.moved.push(m.domain.clone()),
            Some(e) => outcome.failures.push(e),
        }
    }
    if !outcome.failures.is_empty() {
        return outcome;
    }
    // Confirm from a fresh listing before deleting anything.
    let domains = match client.list_reserved_domains().await {
        Ok(d) => d,
        Err(e) => {
            outcome.failures.push(format!("confirming the move: {e}"));
            return outcome;
        }
    };
    let not_moved: Vec<&str> = plan
        .moves
        .iter()
        .filter(|m| {
            !domains
                .iter()
                .any(|d| d.id == m.domain_id && d.certificate_id() == Some(target.as_str()))
        })
        .map(|m| m.domain.as_str())
        .collect();
    if !not_moved.is_empty() {
        outcome.failures.push(format!(
            "the listing does not show {} on {target} yet",
            not_moved.join(", ")
        ));
        return outcome;
    }
    let referenced: BTreeSet<&str> = domains.iter().filter_map(|d| d.certificate_id()).collect();
    for id in &plan.deletes {
        if referenced.contains(id.as_str()) || *id == target {
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
    outcome
}

/// The result of one pass over one watch, for the daemon, `rotate`, metrics and findings.
#[derive(Debug, Clone)]
pub struct WatchReport {
    pub watch: String,
    /// The files on disk are a valid pair (or only transiently not).
    pub up: bool,
    pub not_after: Option<OffsetDateTime>,
    pub plan: Option<Plan>,
    pub outcome: Option<Outcome>,
    pub findings: Vec<Finding>,
    /// The files are not usable yet but may be soon (half-way through a swap, not yet valid).
    pub waiting: Option<String>,
}

impl WatchReport {
    /// `success`/`failure` when the pass acted or tried to; `None` when there was nothing to do.
    pub fn result(&self) -> Option<&'static str> {
        let outcome = self.outcome.as_ref()?;
        if !outcome.failures.is_empty() {
            Some("failure")
        } else if outcome.acted() {
            Some("success")
        } else {
            None
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
    let files = crate::local::read(watch);
    let mut report = WatchReport {
        watch: watch.name.clone(),
        up: false,
        not_after: None,
        plan: None,
        outcome: None,
        findings: Vec::new(),
        waiting: None,
    };
    let invalid = |reason: String| Finding {
        severity: Severity::Warning,
        kind: FindingKind::WatchInvalid,
        resource_id: watch.name.clone(),
        domain: watch.domains.first().cloned(),
        message: format!("watch {}: {reason}; nothing uploaded", watch.name),
        not_after: None,
    };
    let local = match crate::local::validate(watch, &files, now) {
        Ok(l) => l,
        Err(refusal) => {
            if refusal.early {
                // Issued for later: uploaded once valid (the scheduled syncs re-check), and
                // visible meanwhile without paging anyone.
                tracing::info!(watch = %watch.name, "waiting: {}", refusal.reason);
                report.up = true;
                report.findings.push(Finding {
                    severity: Severity::Info,
                    ..invalid(refusal.reason.clone())
                });
                report.waiting = Some(refusal.reason);
            } else if refusal.transient && !crate::local::settled(&files, watch.settle_timeout, now)
            {
                tracing::info!(watch = %watch.name, "files not usable yet, waiting for them to settle: {}", refusal.reason);
                report.up = true;
                report.waiting = Some(refusal.reason);
            } else {
                report.findings.push(invalid(refusal.reason));
            }
            return report;
        }
    };
    report.not_after = Some(local.chain.leaf.not_after);
    let plan = match plan(watch, &local, inventory) {
        Ok(p) => p,
        Err(reason) => {
            report.findings.push(invalid(reason));
            return report;
        }
    };
    report.up = true;
    report.findings.extend(plan.problems.iter().cloned());
    if !options.dry_run && !plan.is_noop() {
        let outcome = execute(client, watch, &local, &plan, options.backoff).await;
        if !outcome.failures.is_empty() {
            report.findings.push(Finding {
                severity: Severity::Warning,
                kind: FindingKind::RotationFailed,
                resource_id: watch.name.clone(),
                domain: watch.domains.first().cloned(),
                message: format!(
                    "watch {}: rotation incomplete, the domains keep their current certificate: {}",
                    watch.name,
                    outcome.failures.join("; ")
                ),
                not_after: None,
            });
        }
        report.outcome = Some(outcome);
    }
    report.plan = Some(plan);
    report
}

/// Keeps a `rotate` and a running daemon from acting on the same watch at once: an exclusive
/// lock on `STATE_DIR/rotate-WATCH.lock`, released when dropped.
pub struct WatchLock {
    _file: std::fs::File,
}

/// How long `rotate` waits for a running daemon's pass to finish.
const LOCK_WAIT: Duration = Duration::from_secs(60);

impl WatchLock {
    /// Tries for up to `wait`; `Ok(None)` when still held by then.
    pub async fn acquire_within(
        state_dir: &std::path::Path,
        watch: &str,
        wait: Duration,
    ) -> Result<Option<Self>, String> {
        let started = std::time::Instant::now();
        loop {
            if let Some(lock) = Self::try_acquire(state_dir, watch)? {
                return Ok(Some(lock));
            }
            if started.elapsed() >= wait {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `Ok(None)` when another process holds it.
    pub fn try_acquire(state_dir: &std::path::Path, watch: &str) -> Result<Option<Self>, String> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| format!("{}: {}", state_dir.display(), crate::config::io_reason(&e)))?;
        let path = state_dir.join(format!("rotate-{watch}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {}", path.display(), crate::config::io_reason(&e)))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(format!(
                "{}: {}",
                path.display(),
                crate::config::io_reason(&e)
            )),
        }
    }
}

/// Errors of the `rotate` command that stop it before any watch is looked at.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("no [[watch]] named {0:?} in the configuration")]
    UnknownWatch(String),
}

/// `rotate [--watch NAME] [--dry-run]`: one pass, a report on stdout; the exit code of INTERFACE.md.
pub async fn rotate_command(
    settings: &crate::config::Settings,
    only: Option<&str>,
    dry_run: bool,
) -> i32 {
    let watches: Vec<&WatchSettings> = settings
        .watches
        .iter()
        .filter(|w| only.is_none_or(|n| w.name == n))
        .collect();
    if let Some(name) = only {
        if watches.is_empty() {
            eprintln!(
                "ngrok-cert-watchdog: rotate: {}",
                RotateError::UnknownWatch(name.to_string())
            );
            return crate::cli::EXIT_CONFIG;
        }
    }
    if watches.is_empty() {
        println!("no [[watch]] entries in the configuration: nothing to rotate");
        return 0;
    }
    let client = match crate::check::client(settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: rotate: {e}");
            return crate::check::EXIT_UNKNOWN;
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
    let inventory = match crate::inventory::sync(&client, now).await {
        Ok(i) => i,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: rotate: {e}");
            return crate::check::EXIT_UNKNOWN;
        }
    };
    for (watch, _lock) in &locked {
        let watch = *watch;
        let options = PassOptions {
            dry_run,
            backoff: Duration::from_secs(1),
        };
        let report = pass(&client, watch, &inventory, options, now).await;
        if let Some(reason) = &report.waiting {
            println!(
                "watch {}: waiting: {reason} (not reported before settle_timeout)",
                watch.name
            );
        }
        if let Some(plan) = &report.plan {
            let verb = if dry_run { "plan" } else { "steps" };
            for line in plan.describe() {
                println!("watch {}: {verb}: {line}", watch.name);
            }
        }
        if let Some(outcome) = &report.outcome {
            println!(
                "watch {}: {}: {} uploaded, {} moved, {} deleted",
                watch.name,
                if outcome.failures.is_empty() {
                    "done"
                } else {
                    "incomplete"
                },
                if outcome.uploaded {
                    outcome.target.as_deref().unwrap_or("1")
                } else {
                    "nothing"
                },
                outcome.moved.len(),
                outcome.deleted.len()
            );
        }
        for f in &report.findings {
            println!("watch {}: {}: {}", watch.name, f.kind.as_str(), f.message);
            if matches!(f.kind, FindingKind::RotationFailed)
                || (f.kind == FindingKind::WatchInvalid && report.plan.is_none())
            {
                failed = true;
            }
        }
    }
    if failed {
        2
    } else {
        0
    }
}
