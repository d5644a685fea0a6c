//! What the edge serves, judged: the served chain against the certificate attached to the
//! domain (same leaf?), against the trust store (would a browser accept it?), and the probe's
//! failures in a row; and a rotation followed until the edge serves its new leaf. Pure: the
//! probes' results come in as values, `now` is a parameter.
//!
//! The memory ([`EdgeMemory`]) is owned by whoever runs the probes (the daemon's probe task, or
//! `check` for one probe each); the rules over it are the functions here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::core::pass::Streak;
use crate::model::certs;
use crate::model::expiry::Threshold;
use crate::model::text::{format_time, human, signed};
use crate::model::trust::Trust;
use crate::model::{Finding, FindingKind, Severity};
use crate::sources::edge::{Probe, Target};
use crate::sources::inventory::Inventory;
use crate::sources::ngrok::ReservedDomain;

/// The rules' thresholds (from `[edge]` and `[expiry]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgePolicy {
    /// Failed probes in a row before `edge_unreachable` (1 for `check`, which probes once).
    pub failures_before_finding: u32,
    /// How long after a rotation's PATCH, or a managed certificate's issuance, the edge may
    /// still serve the certificate before.
    pub propagation_grace: Duration,
    /// `expiry.critical`: a served certificate this close to its end makes a mismatch critical.
    /// `expiry.critical`, applied to the served certificate's own lifetime.
    pub expiry_critical: Threshold,
}

/// The certificate the edge served, as judged when it was probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// SHA-256 of the served leaf, lowercase hex.
    pub fingerprint: String,
    pub subject_common_name: String,
    pub issuer_common_name: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The leaf's SANs cover the probed name.
    pub covers_name: bool,
    /// Why the chain does not verify for the name, in words; `None` when it does.
    pub problem: Option<String>,
}

impl Served {
    /// "CN=app.example.com issued by R11, expires 2026-…"
    fn describe(&self) -> String {
        format!(
            "CN={} issued by {}, expires {}",
            self.subject_common_name,
            self.issuer_common_name,
            format_time(self.not_after)
        )
    }
}

/// Judges a served chain for `name` at `at`; `verify` is the project's trust (webpki roots and
/// `edge.trust_anchors`), answering why a chain does not verify, in words.
pub fn judge(
    chain: &[CertificateDer<'_>],
    name: &str,
    at: OffsetDateTime,
    verify: impl Fn(&[CertificateDer<'_>], &str, OffsetDateTime) -> Result<(), String>,
) -> Seen {
    let Some(leaf) = chain.first() else {
        return Seen::Failed("the edge sent no certificate".into());
    };
    let pem = certs::to_pem(&chain[..1]);
    let info = match certs::parse_chain(pem.as_bytes()) {
        Ok(c) => c.leaf,
        Err(e) => return Seen::Failed(format!("the served certificate does not parse: {e}")),
    };
    Seen::Served(Served {
        fingerprint: certs::fingerprint(leaf.as_ref()),
        subject_common_name: info.subject_common_name,
        issuer_common_name: info.issuer_common_name,
        not_before: info.not_before,
        not_after: info.not_after,
        covers_name: info.dns_names.iter().any(|n| certs::name_matches(n, name)),
        problem: verify(chain, name, at).err(),
    })
}

/// The outcome of one probe of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Served(Served),
    /// No usable certificate: why, in words (refused, timeout, TLS alert, DNS).
    Failed(String),
}

/// What the last probe of a domain showed, and its failures in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEdge {
    /// The name probed (a wildcard's probe name).
    pub probe_name: String,
    pub at: OffsetDateTime,
    pub seen: Seen,
    pub failures: Streak,
    /// When it last served a certificate (kept across failures).
    pub last_served: Option<Served>,
}

/// A rotation followed until the edge serves its new leaf on every domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationCheck {
    pub watch: String,
    pub domains: Vec<String>,
    /// The new certificate's id and leaf.
    pub certificate_id: String,
    pub fingerprint: String,
    /// The certificates the rotation replaced, held back from deletion while pending.
    pub replaced: BTreeSet<String>,
    pub patched_at: OffsetDateTime,
    pub state: RotationState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationState {
    /// Not every domain serves the new leaf yet, within the grace.
    Pending,
    /// Every domain served the new leaf after the PATCH.
    Confirmed,
    /// The grace passed with some domain not serving the new leaf.
    GraceOver,
}

/// The probes' memory: the last result per domain, rotations being followed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeMemory {
    domains: BTreeMap<String, DomainEdge>,
    rotations: BTreeMap<String, RotationCheck>,
    /// A probe pass has been recorded (even one with nothing to probe).
    probed: bool,
}

impl EdgeMemory {
    /// Records one probe of `domain` (the streak of failures counts on, or clears).
    pub fn record(&mut self, domain: &str, probe_name: &str, seen: Seen, at: OffsetDateTime) {
        let before = self.domains.remove(domain);
        let (failures, last_served) = match (&seen, before) {
            (Seen::Served(s), _) => (Streak::Clear, Some(s.clone())),
            (Seen::Failed(_), Some(b)) => (b.failures.failed(), b.last_served),
            (Seen::Failed(_), None) => (Streak::Clear.failed(), None),
        };
        let probe_name = probe_name.to_string();
        let edge = DomainEdge {
            probe_name,
            at,
            seen,
            failures,
            last_served,
        };
        self.domains.insert(domain.to_string(), edge);
    }

    /// Records a probe pass's results (see [`judge_probes`]).
    pub fn record_all(&mut self, results: &[(Target, Seen)], at: OffsetDateTime) {
        self.probed = true;
        for (target, seen) in results {
            self.record(&target.domain, &target.sni, seen.clone(), at);
        }
    }

    /// Forgets domains the account no longer has.
    pub fn retain_domains(&mut self, inventory: &Inventory) {
        let names: BTreeSet<&str> = inventory
            .domains()
            .iter()
            .map(|d| d.domain.as_str())
            .collect();
        self.domains.retain(|d, _| names.contains(d.as_str()));
    }

    /// Whether a probe pass has been recorded.
    pub fn probed(&self) -> bool {
        self.probed
    }

    pub fn domain(&self, domain: &str) -> Option<&DomainEdge> {
        self.domains.get(domain)
    }

    /// Follows a new rotation of `check.watch` (replacing an older one of the same watch).
    pub fn follow(&mut self, check: RotationCheck) {
        self.rotations.insert(check.watch.clone(), check);
    }

    /// Certificates held back from deletion: replaced by a rotation still pending at the edge.
    pub fn held(&self) -> BTreeSet<String> {
        self.rotations
            .values()
            .filter(|r| r.state == RotationState::Pending)
            .flat_map(|r| r.replaced.iter().cloned())
            .collect()
    }

    /// Domains of rotations still pending: probed again until they settle.
    pub fn pending_domains(&self) -> BTreeSet<String> {
        self.rotations
            .values()
            .filter(|r| r.state == RotationState::Pending)
            .flat_map(|r| r.domains.iter().cloned())
            .collect()
    }

    /// Moves pending rotations on: confirmed when every domain served the new leaf after the
    /// PATCH, over the grace otherwise. Returns those that settled now, each once. A confirmed
    /// rotation is then forgotten; one over its grace is kept while a domain still serves
    /// another leaf (its mismatch names the rotation).
    pub fn settle(&mut self, grace: Duration, now: OffsetDateTime) -> Vec<RotationCheck> {
        let mut settled = Vec::new();
        for r in self.rotations.values_mut() {
            if r.state != RotationState::Pending {
                continue;
            }
            let confirmed = r.domains.iter().all(|d| {
                self.domains.get(d).is_some_and(|e| {
                    e.at >= r.patched_at
                        && matches!(&e.seen, Seen::Served(s) if s.fingerprint == r.fingerprint)
                })
            });
            if confirmed {
                r.state = RotationState::Confirmed;
            } else if now - r.patched_at >= signed(grace) {
                r.state = RotationState::GraceOver;
            } else {
                continue;
            }
            settled.push(r.clone());
        }
        let domains = &self.domains;
        self.rotations.retain(|_, r| match r.state {
            RotationState::Pending => true,
            RotationState::Confirmed => false,
            RotationState::GraceOver => r.domains.iter().any(|d| {
                domains.get(d).is_some_and(
                    |e| matches!(&e.seen, Seen::Served(s) if s.fingerprint != r.fingerprint),
                )
            }),
        });
        settled
    }

    /// Whether a rotation of `watch` is followed (pending, or past its grace and still served
    /// another leaf somewhere).
    pub fn follows(&self, watch: &str) -> bool {
        self.rotations.contains_key(watch)
    }

    /// The rotation a domain is in, if any.
    fn rotation_of(&self, domain: &str) -> Option<&RotationCheck> {
        self.rotations
            .values()
            .find(|r| r.domains.iter().any(|d| d == domain))
    }
}

/// A rotation found interrupted, to follow again: `replaced` (the certificates the watch's
/// record in `state.dir` says a rotation replaced, still undeleted) with no rotation of the
/// watch followed in memory, after a restart. The
/// watch's domains that are no longer on a replaced certificate are checked at the edge for
/// the certificate they are on now, and the grace counts from `now`, so nothing is deleted
/// before the edge serves what replaced it (or the grace passed). `None` while no domain has
/// moved (the pass moves them, and follows that rotation).
pub fn interrupted_rotation(
    watch: &str,
    domains: &[String],
    replaced: &BTreeSet<String>,
    inventory: &Inventory,
    now: OffsetDateTime,
) -> Option<RotationCheck> {
    let moved: Vec<&ReservedDomain> = domains
        .iter()
        .filter_map(|name| inventory.domain_named(name))
        .filter(|d| d.certificate_id().is_some_and(|id| !replaced.contains(id)))
        .collect();
    let certificate_id = moved.first()?.certificate_id()?.to_string();
    let fingerprint = inventory.leaf_fingerprint(&certificate_id)?.to_string();
    Some(RotationCheck {
        watch: watch.to_string(),
        domains: moved
            .iter()
            .filter(|d| d.certificate_id() == Some(certificate_id.as_str()))
            .map(|d| d.domain.clone())
            .collect(),
        certificate_id,
        fingerprint,
        replaced: replaced.clone(),
        patched_at: now,
        state: RotationState::Pending,
    })
}

/// What to probe: every reserved domain that is not ngrok's own, a wildcard at its configured
/// probe name. Returns the targets and the wildcards skipped for want of one.
pub fn targets(
    inventory: &Inventory,
    wildcard_probe_names: &BTreeMap<String, String>,
) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    for d in inventory.domains().iter().filter(|d| !d.is_ngrok_owned()) {
        let sni = if d.domain.starts_with("*.") {
            match wildcard_probe_names.get(&d.domain) {
                Some(name) => name.clone(),
                None => {
                    skipped.push(d.domain.clone());
                    continue;
                }
            }
        } else {
            d.domain.clone()
        };
        targets.push(Target {
            domain: d.domain.clone(),
            sni,
        });
    }
    (targets, skipped)
}

/// A probe pass's results, each served chain judged at `now` against `trust`.
pub fn judge_probes(
    targets: Vec<Target>,
    probes: Vec<Probe>,
    now: OffsetDateTime,
    trust: &Trust,
) -> Vec<(Target, Seen)> {
    let verify = |chain: &[CertificateDer<'_>], name: &str, at| {
        trust
            .verify(chain, Some(name), at)
            .map_err(|p| p.to_string())
    };
    targets
        .into_iter()
        .zip(probes)
        .map(|(target, probe)| {
            let seen = match probe {
                Probe::Served { chain, .. } => judge(&chain, &target.sni, now, verify),
                Probe::Failed(e) => Seen::Failed(e.to_string()),
            };
            (target, seen)
        })
        .collect()
}

/// The edge's findings for the account in `inventory`.
pub fn findings(
    inventory: &Inventory,
    memory: &EdgeMemory,
    policy: &EdgePolicy,
    now: OffsetDateTime,
) -> Vec<Finding> {
    let mut out = Vec::new();
    // A domain without a certificate has its own finding (provisioning, or none attached);
    // what the edge serves meanwhile goes into that finding's message ([`annotate`]).
    for d in inventory
        .domains()
        .iter()
        .filter(|d| d.certificate_id().is_some())
    {
        let Some(edge) = memory.domain(&d.domain) else {
            continue;
        };
        match &edge.seen {
            Seen::Failed(error) => {
                let n = edge.failures.count();
                if n >= policy.failures_before_finding.max(1) {
                    out.push(unreachable(d, edge, error, n));
                }
            }
            Seen::Served(served) => {
                out.extend(mismatch(inventory, memory, d, edge, served, policy, now));
                if let Some(problem) = &served.problem {
                    out.push(finding(
                        d,
                        Severity::Critical,
                        FindingKind::EdgeCertificateInvalid,
                        format!(
                            "{}: browsers reject the certificate the edge serves for {} ({}): {problem}",
                            d.domain,
                            edge.probe_name,
                            served.describe()
                        ),
                        Some(served.not_after),
                    ));
                }
            }
        }
    }
    out
}

fn unreachable(d: &ReservedDomain, edge: &DomainEdge, error: &str, n: u32) -> Finding {
    let times = if n == 1 {
        "failed".to_string()
    } else {
        format!("failed {n} times in a row")
    };
    finding(
        d,
        Severity::Warning,
        FindingKind::EdgeUnreachable,
        format!(
            "{}: the TLS handshake with the edge for {} {times}: {error}",
            d.domain, edge.probe_name
        ),
        None,
    )
}

/// `edge_certificate_mismatch`, unless the served leaf is the attached one or a change is still
/// within its propagation grace.
fn mismatch(
    inventory: &Inventory,
    memory: &EdgeMemory,
    d: &ReservedDomain,
    edge: &DomainEdge,
    served: &Served,
    policy: &EdgePolicy,
    now: OffsetDateTime,
) -> Option<Finding> {
    let attached_id = d.certificate_id()?;
    let attached = inventory.leaf_fingerprint(attached_id)?;
    if attached == served.fingerprint {
        return None;
    }
    let grace = signed(policy.propagation_grace);
    let reissued = inventory
        .certificate(attached_id)
        .and_then(|c| c.issued_at)
        .is_some_and(|issued| now - issued < grace);
    if reissued {
        return None; // ngrok just issued it: the edge is still picking it up
    }
    let left = served.not_after - now;
    let critical = policy
        .expiry_critical
        .before_expiry(served.not_before, served.not_after);
    let severity = if left <= critical || !served.covers_name {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let covers = if served.covers_name {
        String::new()
    } else {
        format!(", which does not cover {}", edge.probe_name)
    };
    let expired = if left <= time::Duration::ZERO {
        " (expired)".to_string()
    } else {
        format!(" ({} left)", human(left))
    };
    let served_text = format!("{}{expired}{covers}", served.describe());
    match memory.rotation_of(&d.domain) {
        Some(r) if r.state == RotationState::Pending && attached_id == r.certificate_id => None,
        Some(r) if r.state == RotationState::GraceOver && attached_id == r.certificate_id => {
            Some(Finding {
                resource_id: r.watch.clone(),
                message: format!(
                    "watch {}: {} still serves another certificate {} after the rotation to {} ({}), past edge.propagation_grace: {served_text}",
                    r.watch,
                    d.domain,
                    human(now - r.patched_at),
                    r.certificate_id,
                    format_time(r.patched_at)
                ),
                ..finding(d, severity, FindingKind::EdgeCertificateMismatch, String::new(), Some(served.not_after))
            })
        }
        _ => Some(finding(
            d,
            severity,
            FindingKind::EdgeCertificateMismatch,
            format!(
                "{}: the edge serves another certificate than the attached {attached_id}: {served_text}",
                d.domain
            ),
            Some(served.not_after),
        )),
    }
}

fn finding(
    d: &ReservedDomain,
    severity: Severity,
    kind: FindingKind,
    message: String,
    not_after: Option<OffsetDateTime>,
) -> Finding {
    Finding {
        severity,
        kind,
        resource_id: d.id.clone(),
        domain: Some(d.domain.clone()),
        message,
        not_after,
    }
}

/// Adds what the edge serves meanwhile to the finding of a domain that has no certificate yet
/// (provisioning, or none attached): often a fallback `*.ngrok` certificate.
pub fn annotate(findings: &mut [Finding], inventory: &Inventory, memory: &EdgeMemory) {
    for f in findings.iter_mut().filter(|f| {
        matches!(
            f.kind,
            FindingKind::ProvisioningFailed
                | FindingKind::ProvisioningStuck
                | FindingKind::DomainWithoutCertificate
        )
    }) {
        let Some(d) = f.domain.as_deref().and_then(|n| inventory.domain_named(n)) else {
            continue;
        };
        if d.certificate_id().is_some() {
            continue;
        }
        match memory.domain(&d.domain).map(|e| &e.seen) {
            Some(Seen::Served(s)) => {
                f.message
                    .push_str(&format!("; meanwhile the edge serves {}", s.describe()));
            }
            Some(Seen::Failed(e)) => {
                f.message.push_str(&format!(
                    "; meanwhile the edge answers no TLS handshake: {e}"
                ));
            }
            None => {}
        }
    }
}

/// One domain's edge metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeRow {
    pub domain: String,
    pub success: bool,
    /// The served leaf's `not_after` (the last one served, across failures).
    pub not_after: Option<OffsetDateTime>,
    /// Whether the served leaf is the attached one; `None` without an attached certificate.
    pub matches: Option<bool>,
    /// Whether the served chain verifies for the name (the last one served).
    pub valid: Option<bool>,
}

/// The metrics of every probed domain of the account.
pub fn rows(inventory: &Inventory, memory: &EdgeMemory) -> Vec<EdgeRow> {
    inventory
        .domains()
        .iter()
        .filter_map(|d| {
            let edge = memory.domain(&d.domain)?;
            let attached = d
                .certificate_id()
                .and_then(|id| inventory.leaf_fingerprint(id));
            let served = edge.last_served.as_ref();
            Some(EdgeRow {
                domain: d.domain.clone(),
                success: matches!(edge.seen, Seen::Served(_)),
                not_after: served.map(|s| s.not_after),
                matches: attached.zip(served).map(|(a, s)| a == s.fingerprint),
                valid: served.map(|s| s.problem.is_none()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::ngrok::{Ref, TlsCertificate};
    use rustls::pki_types::pem::PemObject as _;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);
    const POLICY: EdgePolicy = EdgePolicy {
        failures_before_finding: 3,
        propagation_grace: Duration::from_secs(600),
        expiry_critical: Threshold::duration(Duration::from_secs(7 * 86_400)),
    };

    /// A certificate whose PEM is a real leaf (so it has a fingerprint); `issued_at` makes it
    /// managed.
    fn cert(id: &str, pem: &str, issued_at: Option<OffsetDateTime>) -> TlsCertificate {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "certificate_pem": pem,
            "not_before": "2026-01-01T00:00:00Z",
            "not_after": "2027-01-01T00:00:00Z",
            "issued_at": issued_at.map(format_time),
        }))
        .unwrap()
    }

    fn domain(id: &str, name: &str, certificate: Option<&str>) -> ReservedDomain {
        let mut d: ReservedDomain = serde_json::from_value(serde_json::json!({
            "id": id, "domain": name, "cname_target": "x.ngrok-cname.test"
        }))
        .unwrap();
        d.certificate = certificate.map(|c| Ref { id: c.into() });
        d
    }

    fn inventory(certificates: Vec<TlsCertificate>, domains: Vec<ReservedDomain>) -> Inventory {
        Inventory::new(NOW, certificates, domains, vec![], Default::default())
    }

    fn served(fingerprint: &str, covers_name: bool, days_left: i64) -> Seen {
        Seen::Served(Served {
            fingerprint: fingerprint.into(),
            subject_common_name: "app.example.com".into(),
            issuer_common_name: "R11".into(),
            not_before: NOW - time::Duration::days(30),
            not_after: NOW + time::Duration::days(days_left),
            covers_name,
            problem: None,
        })
    }

    fn leaf_pem(name: &str) -> String {
        let signer = certs::generate::Signer::new("R11").unwrap();
        let names = vec![name.to_string()];
        signer
            .generate(&certs::generate::Spec {
                common_name: name,
                dns_names: &names,
                not_before: NOW - time::Duration::days(1),
                not_after: NOW + time::Duration::days(60),
            })
            .unwrap()
            .chain_pem
    }

    fn fp(pem: &str) -> String {
        certs::leaf_fingerprint(pem.as_bytes()).unwrap()
    }

    fn kinds(findings: &[Finding]) -> Vec<(Severity, FindingKind, &str)> {
        findings
            .iter()
            .map(|f| (f.severity, f.kind, f.resource_id.as_str()))
            .collect()
    }

    #[test]
    fn the_attached_leaf_served_is_no_finding_another_is_a_mismatch() {
        let (a, b) = (leaf_pem("app.example.com"), leaf_pem("app.example.com"));
        let inv = inventory(
            vec![cert("cert_a", &a, None)],
            vec![domain("rd_app", "app.example.com", Some("cert_a"))],
        );
        let mut memory = EdgeMemory::default();
        memory.record(
            "app.example.com",
            "app.example.com",
            served(&fp(&a), true, 60),
            NOW,
        );
        assert!(findings(&inv, &memory, &POLICY, NOW).is_empty());
        assert_eq!(rows(&inv, &memory)[0].matches, Some(true));

        memory.record(
            "app.example.com",
            "app.example.com",
            served(&fp(&b), true, 60),
            NOW,
        );
        let f = findings(&inv, &memory, &POLICY, NOW);
        assert_eq!(
            kinds(&f),
            [(
                Severity::Warning,
                FindingKind::EdgeCertificateMismatch,
                "rd_app"
            )]
        );
        assert!(f[0].message.contains("cert_a"), "{}", f[0].message);
        assert_eq!(rows(&inv, &memory)[0].matches, Some(false));
        // Critical when the served one is about to end, or does not cover the name.
        for seen in [served(&fp(&b), true, 3), served(&fp(&b), false, 60)] {
            memory.record("app.example.com", "app.example.com", seen, NOW);
            let f = findings(&inv, &memory, &POLICY, NOW);
            assert_eq!(f[0].severity, Severity::Critical, "{}", f[0].message);
        }
    }

    #[test]
    fn a_freshly_issued_managed_certificate_has_the_grace_to_propagate() {
        let (a, old) = (leaf_pem("m.example.com"), leaf_pem("m.example.com"));
        let issued = NOW - time::Duration::minutes(2);
        let inv = inventory(
            vec![cert("cert_m", &a, Some(issued))],
            vec![domain("rd_m", "m.example.com", Some("cert_m"))],
        );
        let mut memory = EdgeMemory::default();
        memory.record(
            "m.example.com",
            "m.example.com",
            served(&fp(&old), true, 60),
            NOW,
        );
        assert!(findings(&inv, &memory, &POLICY, NOW).is_empty());
        let later = issued + time::Duration::minutes(11);
        assert_eq!(findings(&inv, &memory, &POLICY, later).len(), 1);
    }

    #[test]
    fn failures_count_in_a_row_and_clear_on_success() {
        let a = leaf_pem("app.example.com");
        let inv = inventory(
            vec![cert("cert_a", &a, None)],
            vec![domain("rd_app", "app.example.com", Some("cert_a"))],
        );
        let mut memory = EdgeMemory::default();
        let fail = || Seen::Failed("connection refused by 127.0.0.1:1".into());
        for n in 1..=3 {
            memory.record("app.example.com", "app.example.com", fail(), NOW);
            let f = findings(&inv, &memory, &POLICY, NOW);
            assert_eq!(f.len(), usize::from(n == 3), "after {n}");
        }
        let f = findings(&inv, &memory, &POLICY, NOW);
        assert_eq!(f[0].kind, FindingKind::EdgeUnreachable);
        assert!(f[0]
            .message
            .contains("3 times in a row: connection refused"));
        let once = EdgePolicy {
            failures_before_finding: 1,
            ..POLICY
        };
        memory.record(
            "app.example.com",
            "app.example.com",
            served(&fp(&a), true, 60),
            NOW,
        );
        assert!(findings(&inv, &memory, &once, NOW).is_empty());
        memory.record("app.example.com", "app.example.com", fail(), NOW);
        assert!(
            findings(&inv, &memory, &POLICY, NOW).is_empty(),
            "the success cleared the streak: one failure in a row now, not four"
        );
        assert_eq!(
            findings(&inv, &memory, &once, NOW).len(),
            1,
            "check probes once"
        );
        let row = &rows(&inv, &memory)[0];
        assert!(!row.success && row.not_after.is_some(), "{row:?}");
    }

    #[test]
    fn a_chain_that_does_not_verify_is_invalid_with_its_reason() {
        let a = leaf_pem("app.example.com");
        let inv = inventory(
            vec![cert("cert_a", &a, None)],
            vec![domain("rd_app", "app.example.com", Some("cert_a"))],
        );
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(a.as_bytes())
            .map(Result::unwrap)
            .collect();
        let untrusted = |_: &[CertificateDer<'_>], _: &str, _| Err("unknown issuer".to_string());
        let seen = judge(&chain, "app.example.com", NOW, untrusted);
        let mut memory = EdgeMemory::default();
        memory.record("app.example.com", "app.example.com", seen, NOW);
        let f = findings(&inv, &memory, &POLICY, NOW);
        assert_eq!(
            kinds(&f),
            [(
                Severity::Critical,
                FindingKind::EdgeCertificateInvalid,
                "rd_app"
            )]
        );
        assert!(f[0].message.ends_with("unknown issuer"), "{}", f[0].message);
        // The real trust: the test CA is no public root.
        let trust = crate::model::trust::Trust::public();
        let verify = |c: &[CertificateDer<'_>], n: &str, at| {
            trust.verify(c, Some(n), at).map_err(|p| p.to_string())
        };
        match judge(&chain, "app.example.com", NOW, verify) {
            Seen::Served(s) => assert!(s.problem.unwrap().contains("unknown issuer")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_rotation_is_confirmed_once_every_domain_serves_the_new_leaf() {
        let (new, old) = (leaf_pem("app.example.com"), leaf_pem("app.example.com"));
        let check = RotationCheck {
            watch: "app".into(),
            domains: vec!["app.example.com".into(), "api.example.com".into()],
            certificate_id: "cert_new".into(),
            fingerprint: fp(&new),
            replaced: ["cert_old".to_string()].into(),
            patched_at: NOW,
            state: RotationState::Pending,
        };
        let mut memory = EdgeMemory::default();
        memory.follow(check);
        assert_eq!(memory.held(), ["cert_old".to_string()].into());
        // Probes from before the PATCH confirm nothing, whatever they saw.
        let before = NOW - time::Duration::seconds(1);
        for name in ["app.example.com", "api.example.com"] {
            memory.record(name, name, served(&fp(&new), true, 60), before);
        }
        assert!(memory.settle(POLICY.propagation_grace, NOW).is_empty());
        let later = NOW + time::Duration::seconds(30);
        memory.record(
            "app.example.com",
            "app.example.com",
            served(&fp(&new), true, 60),
            later,
        );
        memory.record(
            "api.example.com",
            "api.example.com",
            served(&fp(&old), true, 60),
            later,
        );
        assert!(memory.settle(POLICY.propagation_grace, later).is_empty());
        assert_eq!(memory.pending_domains().len(), 2);
        memory.record(
            "api.example.com",
            "api.example.com",
            served(&fp(&new), true, 60),
            later,
        );
        let settled = memory.settle(POLICY.propagation_grace, later);
        assert_eq!(settled.len(), 1);
        assert_eq!(settled[0].state, RotationState::Confirmed);
        assert!(memory.held().is_empty());
        assert!(
            memory.settle(POLICY.propagation_grace, later).is_empty(),
            "once"
        );
    }

    #[test]
    fn a_recorded_replacement_is_followed_again_from_the_domains_that_moved() {
        let (new, old) = (leaf_pem("app.example.com"), leaf_pem("app.example.com"));
        let replaced: BTreeSet<String> = ["cert_old".to_string()].into();
        let watch_domains = ["app.example.com", "api.example.com", "gone.example.com"]
            .map(String::from)
            .to_vec();
        let inv = |api_on: &str| {
            inventory(
                vec![cert("cert_new", &new, None), cert("cert_old", &old, None)],
                vec![
                    domain("rd_app", "app.example.com", Some("cert_new")),
                    domain("rd_api", "api.example.com", Some(api_on)),
                ],
            )
        };
        // Both moved (a restart after the last PATCH): both checked for the new leaf, the grace
        // from now, the replaced certificate held.
        let check =
            interrupted_rotation("app", &watch_domains, &replaced, &inv("cert_new"), NOW).unwrap();
        assert_eq!(check.domains, ["app.example.com", "api.example.com"]);
        assert_eq!(
            (check.certificate_id.as_str(), check.fingerprint.clone()),
            ("cert_new", fp(&new))
        );
        assert_eq!(
            (check.patched_at, check.state),
            (NOW, RotationState::Pending)
        );
        let mut memory = EdgeMemory::default();
        memory.follow(check);
        assert!(memory.follows("app") && !memory.follows("other"));
        assert_eq!(memory.held(), replaced);
        // Half moved (a crash between the PATCHes): the moved one is checked.
        let check =
            interrupted_rotation("app", &watch_domains, &replaced, &inv("cert_old"), NOW).unwrap();
        assert_eq!(check.domains, ["app.example.com"]);
        // None moved: nothing to follow yet (the pass moves them and follows that).
        let none_moved = ["api.example.com".to_string()];
        assert_eq!(
            interrupted_rotation("app", &none_moved, &replaced, &inv("cert_old"), NOW),
            None
        );
    }

    #[test]
    fn past_the_grace_the_replaced_leaf_is_a_mismatch_on_the_watch() {
        let (new, old) = (leaf_pem("app.example.com"), leaf_pem("app.example.com"));
        let inv = inventory(
            vec![cert("cert_new", &new, None), cert("cert_old", &old, None)],
            vec![domain("rd_app", "app.example.com", Some("cert_new"))],
        );
        let mut memory = EdgeMemory::default();
        memory.follow(RotationCheck {
            watch: "app".into(),
            domains: vec!["app.example.com".into()],
            certificate_id: "cert_new".into(),
            fingerprint: fp(&new),
            replaced: ["cert_old".to_string()].into(),
            patched_at: NOW,
            state: RotationState::Pending,
        });
        memory.record(
            "app.example.com",
            "app.example.com",
            served(&fp(&old), true, 60),
            NOW,
        );
        // Within the grace: propagation, no finding; the replaced certificate is held.
        assert!(findings(&inv, &memory, &POLICY, NOW).is_empty());
        let late = NOW + time::Duration::minutes(11);
        let settled = memory.settle(POLICY.propagation_grace, late);
        assert_eq!(settled[0].state, RotationState::GraceOver);
        assert!(memory.held().is_empty(), "released: the grace passed");
        let f = findings(&inv, &memory, &POLICY, late);
        assert_eq!(
            kinds(&f),
            [(
                Severity::Warning,
                FindingKind::EdgeCertificateMismatch,
                "app"
            )]
        );
        assert!(
            f[0].message.contains("rotation to cert_new"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn targets_skip_ngrok_domains_and_wildcards_without_a_probe_name() {
        let mut dev = domain("rd_dev", "x.ngrok-free.dev", None);
        dev.cname_target = None;
        let inv = Inventory::new(
            NOW,
            Vec::<TlsCertificate>::new(),
            vec![
                dev,
                domain("rd_a", "app.example.com", None),
                domain("rd_w", "*.example.com", None),
                domain("rd_v", "*.example.net", None),
            ],
            vec![],
            Default::default(),
        );
        let names = [("*.example.com".to_string(), "www.example.com".to_string())].into();
        let (t, skipped) = targets(&inv, &names);
        let t: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.domain.as_str(), t.sni.as_str()))
            .collect();
        assert_eq!(
            t,
            [
                ("app.example.com", "app.example.com"),
                ("*.example.com", "www.example.com")
            ]
        );
        assert_eq!(skipped, ["*.example.net"]);
    }

    #[test]
    fn a_domain_waiting_for_its_certificate_says_what_the_edge_serves_meanwhile() {
        let inv = Inventory::new(
            NOW,
            Vec::<TlsCertificate>::new(),
            vec![domain("rd_p", "new.example.com", None)],
            vec![],
            Default::default(),
        );
        let mut f = vec![Finding {
            severity: Severity::Warning,
            kind: FindingKind::DomainWithoutCertificate,
            resource_id: "rd_p".into(),
            domain: Some("new.example.com".into()),
            message: "new.example.com has no certificate".into(),
            not_after: None,
        }];
        let mut memory = EdgeMemory::default();
        memory.record(
            "new.example.com",
            "new.example.com",
            served("ab", false, 60),
            NOW,
        );
        annotate(&mut f, &inv, &memory);
        assert!(
            f[0].message
                .contains("meanwhile the edge serves CN=app.example.com issued by R11"),
            "{}",
            f[0].message
        );
        assert!(
            findings(&inv, &memory, &POLICY, NOW).is_empty(),
            "no new finding"
        );
    }
}
