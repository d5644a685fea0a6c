//! Rotation as a reconcile: desired = every watched domain on the certificate whose leaf is on
//! disk; actual = the account. [`plan`] is pure (what to upload, move, delete); [`execute`] applies
//! a plan step by step and never leaves a domain without a certificate.
//!
//! Idempotent by construction: the leaf's SHA-256 fingerprint identifies the certificate in the
//! account (computed from every listed certificate's PEM, so a copy uploaded by hand counts too),
//! so a restart or a crash after an upload finds the upload instead of repeating it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::WatchSettings;
use crate::model::text::format_time;
use crate::model::{Finding, FindingKind, Severity};
use crate::sources::inventory::Inventory;
use crate::sources::local::LocalPair;
use crate::sources::ngrok::{CertPolicy, ReservedDomain, TlsCertificate};

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
    /// The domain's certificate management policy, when it has one (`take_over_managed`): the
    /// real API refuses a certificate beside a policy (ERR_NGROK_434/436), so the policy is
    /// removed first and the certificate attached at once after — the one moment a domain is
    /// without a certificate. Put back if the API refuses the attach for good.
    pub take_over: Option<CertPolicy>,
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
            if m.take_over.is_some() {
                lines.push(format!(
                    "take {} over from ngrok-managed certificates: remove its policy, then attach the new certificate at once",
                    m.domain
                ));
            } else {
                lines.push(format!(
                    "move {} from {} to the new certificate",
                    m.domain,
                    m.from.as_deref().unwrap_or("no certificate")
                ));
            }
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
    plan_remembering(watch, local, inventory, &BTreeSet::new())
}

/// [`plan`], with the certificates earlier passes replaced and have yet to delete (remembered
/// in `state.dir`): deleted once nothing references them, whatever this pass moves.
pub fn plan_remembering(
    watch: &WatchSettings,
    local: &LocalPair,
    inventory: &Inventory,
    replaced_before: &BTreeSet<String>,
) -> Result<Plan, String> {
    let leaf = &local.chain.leaf;
    let mut same_leaf: Vec<&str> = inventory
        .with_leaf(&leaf.fingerprint)
        .map(|c| c.id.as_str())
        .collect();
    same_leaf.sort_unstable();
    let (eligible, problems) = watched_domains(watch, inventory);

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
            take_over: d.certificate_management_policy.as_deref().cloned(),
        })
        .collect();
    refuse_rollback(watch, local, &moves, inventory)?;
    let replaced = Replaced {
        watch,
        inventory,
        target: target_id.as_deref(),
        same_leaf: &same_leaf,
        moves: &moves,
        before: replaced_before,
    };
    let deletes = replaced.deletable(problems.is_empty());
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
        deletes,
        problems,
    })
}

/// The watched domains that can be rotated, and a finding for each that cannot (not reserved,
/// one of ngrok's own, or on ngrok-managed certificates without `take_over_managed`).
fn watched_domains<'a>(
    watch: &WatchSettings,
    inventory: &'a Inventory,
) -> (Vec<&'a ReservedDomain>, Vec<Finding>) {
    let mut eligible = Vec::new();
    let mut problems = Vec::new();
    for name in &watch.domains {
        let problem = match inventory.domain_named(name) {
            None => format!("watch {}: {name} is not a reserved domain of the account; reserve it or remove it from the watch", watch.name),
            // ngrok refuses an uploaded certificate there (ERR_NGROK_440): uploading one first
            // would leave it behind, unused.
            Some(d) if d.is_ngrok_owned() => format!(
                "watch {}: {name} is one of ngrok's own domains (the dev domain or a name under an ngrok domain), served with ngrok's certificate; ngrok refuses an uploaded one there (ERR_NGROK_440): remove it from the watch",
                watch.name
            ),
            Some(d) if d.is_managed() && !watch.take_over_managed => format!(
                "watch {}: {name} uses ngrok-managed certificates; left alone (set take_over_managed = true to replace them with the files on disk)",
                watch.name
            ),
            Some(d) => {
                eligible.push(d);
                continue;
            }
        };
        problems.push(watch_finding(
            &watch.name,
            name,
            Severity::Warning,
            FindingKind::WatchInvalid,
            problem,
        ));
    }
    (eligible, problems)
}

/// No rollbacks: the new leaf must be issued no earlier than what the domains have now. (ngrok
/// renews managed certificates on its own schedule: taking those over is opted into.)
fn refuse_rollback(
    watch: &WatchSettings,
    local: &LocalPair,
    moves: &[Move],
    inventory: &Inventory,
) -> Result<(), String> {
    let leaf = &local.chain.leaf;
    for m in moves {
        let Some(current) = m.from.as_deref().and_then(|id| inventory.certificate(id)) else {
            continue;
        };
        if !current.is_managed() && current.not_before > leaf.not_before {
            return Err(format!(
                "{}: issued {}, earlier than the certificate {} has ({}, issued {}); refusing to roll back",
                watch.certificate.display(),
                format_time(leaf.not_before),
                m.domain,
                current.id,
                format_time(current.not_before)
            ));
        }
    }
    Ok(())
}

/// What a plan may delete once its moves are done.
struct Replaced<'a> {
    watch: &'a WatchSettings,
    inventory: &'a Inventory,
    target: Option<&'a str>,
    same_leaf: &'a [&'a str],
    moves: &'a [Move],
    /// Replaced by an earlier pass, not deleted yet.
    before: &'a BTreeSet<String>,
}

impl Replaced<'_> {
    /// Extra copies of the leaf the watchdog uploaded (once past the race grace) and, with
    /// `delete_replaced` and every watched domain rotatable, what the moves replace and earlier
    /// uploads of this watch left behind — never a managed certificate or one still referenced.
    fn deletable(&self, all_rotatable: bool) -> Vec<String> {
        let inventory = self.inventory;
        // After the moves, which certificates does any domain still reference?
        let moved: BTreeSet<&str> = self.moves.iter().map(|m| m.domain_id.as_str()).collect();
        let referenced: BTreeSet<&str> = inventory
            .domains()
            .iter()
            .filter(|d| !moved.contains(d.id.as_str()))
            .filter_map(|d| d.certificate_id())
            .collect();
        let deletable = |id: &str| {
            Some(id) != self.target
                && !referenced.contains(id)
                && inventory.certificate(id).is_some_and(|c| !c.is_managed())
        };
        let mut deletes: BTreeSet<String> = self
            .before
            .iter()
            .filter(|id| deletable(id))
            .cloned()
            .collect();
        // Extra copies of the same leaf (two hosts racing), once old enough that no other host
        // can still be moving domains onto them.
        for id in self.same_leaf {
            let settled_copy = inventory.certificate(id).is_some_and(|c| {
                UploadMetadata::parse(c.metadata.as_deref()).is_some()
                    && c.created_at
                        .is_none_or(|t| inventory.fetched_at() - t >= RACE_GRACE)
            });
            if settled_copy && deletable(id) {
                deletes.insert(id.to_string());
            }
        }
        if self.watch.delete_replaced && all_rotatable {
            for id in self.moves.iter().filter_map(|m| m.from.as_deref()) {
                if deletable(id) {
                    deletes.insert(id.to_string());
                }
            }
            for c in inventory.certificates() {
                // Copies of the current leaf are left to the grace rule above.
                let this_watch = UploadMetadata::parse(c.metadata.as_deref())
                    .is_some_and(|m| m.watch == self.watch.name)
                    && !self.same_leaf.contains(&c.id.as_str());
                if this_watch && deletable(&c.id) {
                    deletes.insert(c.id.clone());
                }
            }
        }
        deletes.into_iter().collect()
    }
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
    /// The API refused a step for good (a 4xx other than 404/408/409/429): not tried again
    /// until the attempt would differ.
    pub refusal: Option<FinalRefusal>,
    /// The uploaded certificate as the API answered it.
    pub created: Option<TlsCertificate>,
    /// The moved domains as the API answered their PATCH.
    pub updated: Vec<ReservedDomain>,
}

/// A step the ngrok API refused for good, and the attempt it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalRefusal {
    /// [`attempt_key`] of the refused attempt.
    pub key: String,
    /// The refusal, one line.
    pub message: String,
}

/// What identifies an attempt: the leaf on disk, the watch's configuration and the state of
/// every domain the plan moves. A refused attempt is tried again only when one of them changed.
/// A managed domain's certificate is not part of it: ngrok changes its id at every issuance,
/// and a refused take-over puts the policy back, so ngrok issues one — which must not make the
/// refused take-over (removing that policy again) a new attempt.
pub fn attempt_key(watch: &WatchSettings, plan: &Plan) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(plan.fingerprint.as_bytes());
    h.update(format!("{watch:?}").as_bytes());
    for m in &plan.moves {
        let from = m.from.as_deref().filter(|_| m.take_over.is_none());
        h.update(format!("|{}:{from:?}:{}", m.domain_id, m.take_over.is_some()).as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

impl Outcome {
    pub fn acted(&self) -> bool {
        self.uploaded || !self.moved.is_empty() || !self.deleted.is_empty()
    }
}

/// The result of one pass over one watch, for the daemon, `rotate`, metrics and findings.
#[derive(Debug, Clone)]
pub struct WatchReport {
    pub watch: String,
    pub state: WatchState,
    pub findings: Vec<Finding>,
}

/// Where one watch's pass ended.
#[derive(Debug, Clone)]
pub enum WatchState {
    /// The files are not a usable pair, or the plan was refused; `findings` says why.
    Invalid {
        /// The leaf's expiry, when the pair itself was valid (a refused plan).
        not_after: Option<OffsetDateTime>,
    },
    /// Not usable yet but may be soon (half-way through a swap, issued for later).
    Waiting { reason: String },
    /// A plan was made, and carried out unless it was a dry run or had nothing to do.
    Planned {
        not_after: OffsetDateTime,
        plan: Box<Plan>,
        outcome: Option<Box<Outcome>>,
    },
}

/// What a pass did to the account, for `rotations_total{result}` and the failure streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationResult {
    /// Nothing was tried: nothing to do, a dry run, or files not usable.
    Idle,
    /// Acted, and every step went through.
    Success,
    /// Tried and stopped short.
    Failure,
}

impl RotationResult {
    /// The metric label; `None` for a pass that tried nothing.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            RotationResult::Idle => None,
            RotationResult::Success => Some("success"),
            RotationResult::Failure => Some("failure"),
        }
    }
}

impl WatchReport {
    /// `watch_up`: the files are a valid pair (or only transiently not).
    pub fn up(&self) -> bool {
        !matches!(self.state, WatchState::Invalid { .. })
    }

    /// The expiry of the leaf on disk, once it was read.
    pub fn not_after(&self) -> Option<OffsetDateTime> {
        match &self.state {
            WatchState::Invalid { not_after } => *not_after,
            WatchState::Waiting { .. } => None,
            WatchState::Planned { not_after, .. } => Some(*not_after),
        }
    }

    pub fn plan(&self) -> Option<&Plan> {
        match &self.state {
            WatchState::Planned { plan, .. } => Some(plan),
            _ => None,
        }
    }

    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.state {
            WatchState::Planned { outcome, .. } => outcome.as_deref(),
            _ => None,
        }
    }

    pub fn waiting(&self) -> Option<&str> {
        match &self.state {
            WatchState::Waiting { reason } => Some(reason),
            _ => None,
        }
    }

    /// A final refusal by the API, this pass or remembered from an earlier one.
    pub fn refusal(&self) -> Option<&FinalRefusal> {
        self.outcome().and_then(|o| o.refusal.as_ref())
    }

    pub fn result(&self) -> RotationResult {
        match self.outcome() {
            Some(o) if !o.failures.is_empty() => RotationResult::Failure,
            Some(o) if o.acted() => RotationResult::Success,
            _ => RotationResult::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::certs::generate::{Signer, Spec};
    use crate::model::trust::Trust;
    use crate::sources::local::{validate, Files, RefusalKind};
    use crate::sources::ngrok::{CertPolicy, Ref, TlsCertificate};
    use std::collections::BTreeSet;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn watch(domains: &[&str]) -> WatchSettings {
        WatchSettings::for_test(domains)
    }

    /// A chain and key for `names`, issued at `issued`, as files read just now.
    fn files(names: &[&str], issued: OffsetDateTime) -> (Files, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let g = Signer::new("Test CA")
            .and_then(|s| {
                s.generate(&Spec {
                    common_name: &names[0],
                    dns_names: &names,
                    not_before: issued,
                    not_after: issued + time::Duration::days(90),
                })
            })
            .unwrap();
        let files = Files {
            certificate: Ok(g.chain_pem.clone().into_bytes()),
            private_key: Ok(g.key_pem.into_bytes()),
            changed_at: None,
        };
        (files, g.chain_pem)
    }

    fn cert(id: &str, pem: Option<&str>, not_before: OffsetDateTime) -> TlsCertificate {
        let mut c: TlsCertificate = serde_json::from_value(serde_json::json!({
            "id": id,
            "not_before": crate::model::text::format_time(not_before),
            "not_after": "2027-06-01T00:00:00Z",
        }))
        .unwrap();
        c.certificate_pem = pem.map(str::to_string);
        c
    }

    /// A custom domain (it has a `cname_target`).
    fn domain(id: &str, name: &str, certificate: Option<&str>) -> ReservedDomain {
        let mut d: ReservedDomain = serde_json::from_value(serde_json::json!({
            "id": id, "domain": name, "cname_target": format!("{id}.ngrok-cname.test")
        }))
        .unwrap();
        d.certificate = certificate.map(|c| Ref { id: c.into() });
        d
    }

    fn inventory(certificates: Vec<TlsCertificate>, domains: Vec<ReservedDomain>) -> Inventory {
        Inventory::new(NOW, certificates, domains, Vec::new(), BTreeSet::new())
    }

    #[test]
    fn a_renewed_pair_is_uploaded_once_moved_and_the_old_one_deleted() {
        let w = watch(&["app.example.com", "api.example.com"]);
        let (files, _) = files(
            &["app.example.com", "api.example.com"],
            NOW - time::Duration::hours(1),
        );
        let local = validate(&w, &files, &Trust::public(), NOW).unwrap();
        let inv = inventory(
            vec![cert("cert_old", None, NOW - time::Duration::days(60))],
            vec![
                domain("rd_1", "app.example.com", Some("cert_old")),
                domain("rd_2", "api.example.com", Some("cert_old")),
            ],
        );
        let p = plan(&w, &local, &inv).unwrap();
        assert_eq!(p.target, Target::Upload);
        let moved: Vec<&str> = p.moves.iter().map(|m| m.domain.as_str()).collect();
        assert_eq!(moved, ["app.example.com", "api.example.com"]);
        assert_eq!(p.deletes, ["cert_old"]);
        assert!(p.problems.is_empty());
    }

    #[test]
    fn the_leaf_already_in_the_account_is_reused_and_nothing_to_do_is_a_noop() {
        let w = watch(&["app.example.com"]);
        let (files, chain) = files(&["app.example.com"], NOW - time::Duration::hours(1));
        let local = validate(&w, &files, &Trust::public(), NOW).unwrap();
        let inv = inventory(
            vec![cert(
                "cert_new",
                Some(&chain),
                NOW - time::Duration::hours(1),
            )],
            vec![domain("rd_1", "app.example.com", Some("cert_new"))],
        );
        let p = plan(&w, &local, &inv).unwrap();
        assert_eq!(p.target, Target::Existing("cert_new".into()));
        assert!(p.is_noop(), "{p:?}");
    }

    #[test]
    fn an_older_pair_is_a_refused_rollback() {
        let w = watch(&["app.example.com"]);
        let (files, _) = files(&["app.example.com"], NOW - time::Duration::days(30));
        let local = validate(&w, &files, &Trust::public(), NOW).unwrap();
        let inv = inventory(
            vec![cert("cert_newer", None, NOW - time::Duration::days(1))],
            vec![domain("rd_1", "app.example.com", Some("cert_newer"))],
        );
        let err = plan(&w, &local, &inv).unwrap_err();
        assert!(err.contains("refusing to roll back"), "{err}");
    }

    #[test]
    fn ngrok_owned_domains_are_problems_and_nothing_is_uploaded_for_them() {
        let w = watch(&["me.ngrok.app", "dev.ngrok-free.dev"]);
        let (files, _) = files(
            &["me.ngrok.app", "dev.ngrok-free.dev"],
            NOW - time::Duration::hours(1),
        );
        let local = validate(&w, &files, &Trust::public(), NOW).unwrap();
        // As the API lists them: no cname_target, or is_dev.
        let owned: ReservedDomain =
            serde_json::from_value(serde_json::json!({"id": "rd_1", "domain": "me.ngrok.app"}))
                .unwrap();
        let mut dev = domain("rd_2", "dev.ngrok-free.dev", None);
        dev.is_dev = true;
        let p = plan(&w, &local, &inventory(vec![], vec![owned, dev])).unwrap();
        assert_eq!(p.target, Target::Nothing, "{p:?}");
        assert!(p.moves.is_empty());
        assert_eq!(p.problems.len(), 2);
        for f in &p.problems {
            assert_eq!(f.kind, FindingKind::WatchInvalid);
            assert!(f.message.contains("ERR_NGROK_440"), "{}", f.message);
        }
    }

    #[test]
    fn managed_and_unknown_domains_are_problems_and_block_deletion() {
        let w = watch(&["app.example.com", "managed.example.com", "gone.example.com"]);
        let (files, _) = files(
            &["app.example.com", "managed.example.com", "gone.example.com"],
            NOW - time::Duration::hours(1),
        );
        let local = validate(&w, &files, &Trust::public(), NOW).unwrap();
        let mut managed = domain("rd_2", "managed.example.com", Some("cert_le"));
        managed.certificate_management_policy = Some(Box::new(CertPolicy {
            authority: Some("letsencrypt".into()),
            private_key_type: Some("ecdsa".into()),
        }));
        let inv = inventory(
            vec![cert("cert_old", None, NOW - time::Duration::days(60))],
            vec![domain("rd_1", "app.example.com", Some("cert_old")), managed],
        );
        let p = plan(&w, &local, &inv).unwrap();
        assert_eq!(p.moves.len(), 1);
        assert_eq!(p.problems.len(), 2);
        assert!(p
            .problems
            .iter()
            .all(|f| f.kind == FindingKind::WatchInvalid));
        // Not every watched domain can move: the replaced certificate stays.
        assert!(p.deletes.is_empty());
    }

    #[test]
    fn local_validation_refuses_what_must_not_be_uploaded() {
        let w = watch(&["app.example.com"]);
        let (good, _) = files(&["app.example.com"], NOW - time::Duration::hours(1));
        assert!(validate(&w, &good, &Trust::public(), NOW).is_ok());
        // A name the certificate does not cover.
        let (other, _) = files(&["other.example.com"], NOW - time::Duration::hours(1));
        let refusal = validate(&w, &other, &Trust::public(), NOW).unwrap_err();
        assert_eq!(refusal.kind, RefusalKind::Permanent);
        assert!(
            refusal.reason.contains("does not cover app.example.com"),
            "{refusal:?}"
        );
        // Issued for later: a wait, not an error.
        let (later, _) = files(&["app.example.com"], NOW + time::Duration::hours(1));
        assert_eq!(
            validate(&w, &later, &Trust::public(), NOW)
                .unwrap_err()
                .kind,
            RefusalKind::Early
        );
        // The new certificate beside the old key (half-way through a certbot swap).
        let (new, _) = files(&["app.example.com"], NOW - time::Duration::hours(1));
        let swapped = Files {
            certificate: new.certificate,
            private_key: good.private_key,
            changed_at: None,
        };
        assert_eq!(
            validate(&w, &swapped, &Trust::public(), NOW)
                .unwrap_err()
                .kind,
            RefusalKind::Transient
        );
        // Expired.
        let (old, _) = files(&["app.example.com"], NOW - time::Duration::days(100));
        let refusal = validate(&w, &old, &Trust::public(), NOW).unwrap_err();
        assert!(refusal.reason.contains("expired"), "{refusal:?}");
        // A key where the certificate should be, or a half-written file: what a renewal caught
        // mid-write looks like, reported only once the files have settled.
        let (pair, _) = files(&["app.example.com"], NOW - time::Duration::hours(1));
        let mixed = Files {
            certificate: pair.private_key.clone(),
            private_key: pair.private_key,
            changed_at: None,
        };
        assert_eq!(
            validate(&w, &mixed, &Trust::public(), NOW)
                .unwrap_err()
                .kind,
            RefusalKind::Transient
        );
        for cut in [3, 2] {
            let (pair, _) = files(&["app.example.com"], NOW - time::Duration::hours(1));
            let mut half = pair.certificate.unwrap();
            half.truncate(half.len() / cut);
            let half_written = Files {
                certificate: Ok(half),
                private_key: pair.private_key,
                changed_at: None,
            };
            let refusal = validate(&w, &half_written, &Trust::public(), NOW).unwrap_err();
            assert_eq!(refusal.kind, RefusalKind::Transient, "{refusal:?}");
        }
    }
}
