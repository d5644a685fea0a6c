//! Alerts from findings, and their firing/resolved lifecycle per receiver — pure functions of
//! (what the receiver was told, what this sync observed, now).
//!
//! An alert's identity is its condition family and resource, not its severity: warning →
//! critical, or expiring → expired, updates one alert. A failed sync is "unknown", never
//! "resolved". Delivery (queues, retries, signing, durable state) lives in [`delivery`]; payloads
//! in [`format`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::WebhookFormat;
use crate::model::{Finding, FindingKind, Severity};

/// The condition family of a finding kind: the part of an alert's identity besides the resource.
pub fn family(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::CertificateExpired
        | FindingKind::CertificateExpiring
        | FindingKind::CertificateUnattached => "expiry",
        FindingKind::ProvisioningFailed | FindingKind::ProvisioningStuck => "provisioning",
        FindingKind::RenewalOverdue => "renewal",
        FindingKind::CertificateMissing | FindingKind::DomainWithoutCertificate => "certificate",
        FindingKind::CredentialUnrestricted => "credential",
        FindingKind::WatchInvalid => "watch",
        FindingKind::RotationFailed => "rotation",
        FindingKind::SyncFailed => "sync",
        FindingKind::EdgeCertificateMismatch
        | FindingKind::EdgeCertificateInvalid
        | FindingKind::EdgeUnreachable => "edge",
        FindingKind::DnsMisconfigured => "dns",
        // Three independent conditions (one certificate can be weak and incomplete at once), so
        // three families: in one, the second would replace the first alert.
        FindingKind::CertificateNameMismatch => "names",
        FindingKind::CertificateChainIncomplete => "chain",
        FindingKind::CertificateWeak => "strength",
    }
}

fn alertname(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::CertificateExpired => "NgrokCertificateExpired",
        FindingKind::CertificateExpiring => "NgrokCertificateExpiring",
        FindingKind::CertificateUnattached => "NgrokCertificateUnattached",
        FindingKind::ProvisioningFailed => "NgrokProvisioningFailed",
        FindingKind::ProvisioningStuck => "NgrokProvisioningStuck",
        FindingKind::RenewalOverdue => "NgrokRenewalOverdue",
        FindingKind::CertificateMissing => "NgrokCertificateMissing",
        FindingKind::DomainWithoutCertificate => "NgrokDomainWithoutCertificate",
        FindingKind::CredentialUnrestricted => "NgrokCredentialUnrestricted",
        FindingKind::WatchInvalid => "NgrokCertWatchdogWatchInvalid",
        FindingKind::RotationFailed => "NgrokCertWatchdogRotationFailed",
        FindingKind::SyncFailed => "NgrokCertWatchdogSyncFailing",
        FindingKind::EdgeCertificateMismatch => "NgrokEdgeCertificateMismatch",
        FindingKind::EdgeCertificateInvalid => "NgrokEdgeCertificateInvalid",
        FindingKind::EdgeUnreachable => "NgrokEdgeUnreachable",
        FindingKind::DnsMisconfigured => "NgrokDnsMisconfigured",
        FindingKind::CertificateNameMismatch => "NgrokCertificateNameMismatch",
        FindingKind::CertificateChainIncomplete => "NgrokCertificateChainIncomplete",
        FindingKind::CertificateWeak => "NgrokCertificateWeak",
    }
}

/// What to do about a finding, by kind: the alerts' `action` annotation and the status page's
/// "What to do" column.
pub fn advice(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::CertificateExpired | FindingKind::CertificateExpiring => {
            "Renew the certificate and attach it to the domain (a [[watch]] does it when the files on disk are renewed); for ngrok-managed certificates check the domain in the ngrok dashboard."
        }
        FindingKind::CertificateUnattached => "Delete the certificate if nothing needs it any more.",
        FindingKind::ProvisioningFailed | FindingKind::ProvisioningStuck => {
            "Check the domain's DNS records against what ngrok shows (the CNAME to its target and, for a wildcard, the ACME challenge CNAME); DNS_ERROR does not fix itself, INTERNAL_ERROR usually passes."
        }
        FindingKind::RenewalOverdue => "Check the domain's certificate management status in the ngrok dashboard.",
        FindingKind::CertificateMissing | FindingKind::DomainWithoutCertificate => {
            "Attach a valid certificate to the domain, or enable managed certificates."
        }
        FindingKind::CredentialUnrestricted => "Restrict the credential with bind: ACL rules, or delete it.",
        FindingKind::WatchInvalid => "Fix the files on disk (or the renewal that writes them); nothing is uploaded until then.",
        FindingKind::RotationFailed => "See the watchdog's log; `ngrok-cert-watchdog rotate --dry-run` shows the plan.",
        FindingKind::SyncFailed => "See the watchdog's log: the API key, the network, or ngrok's API; `ngrok-cert-watchdog check` runs one sync.",
        FindingKind::EdgeCertificateMismatch => "The edge serves another certificate than the one attached: wait for propagation after a change, else check the domain's certificate in the ngrok dashboard.",
        FindingKind::EdgeCertificateInvalid => "Visitors' browsers reject what the edge serves: upload the full chain (leaf first, then intermediates) of a certificate that covers the name.",
        FindingKind::EdgeUnreachable => "Check that the name resolves to ngrok and that port 443 answers from the watchdog's host.",
        FindingKind::DnsMisconfigured => "Create the DNS record the message names; ngrok cannot issue or serve a certificate for the domain until then.",
        FindingKind::CertificateNameMismatch => "Attach a certificate whose subject alternative names cover the domain.",
        FindingKind::CertificateChainIncomplete => "Upload the full chain: the leaf first, then every intermediate up to a trusted root.",
        FindingKind::CertificateWeak => "Reissue the certificate with an RSA key of 2048 bits or more (or ECDSA P-256) and a SHA-256 signature.",
    }
}

/// One alert as the watchdog sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// `family/resource_id/domain`: stable across severities.
    pub id: String,
    pub severity: Severity,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
}

impl Alert {
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.labels)
    }
}

/// Alertmanager-style: a hash of the sorted label set.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update([0xff]);
        h.update(v.as_bytes());
        h.update([0xfe]);
    }
    hex::encode(&h.finalize()[..8])
}

/// An alert's identity: `family/resource_id/domain`, the same whatever its severity. The domain
/// tells apart the findings of one resource that has one per domain (a certificate's uncovered
/// names, a watch's domains); a certificate's expiry, chain and strength findings only name its
/// first domain for the reader, which changes as domains move, so there it is left out.
pub fn alert_id(finding: &Finding) -> String {
    let family = family(finding.kind);
    let domain = if one_per_resource(family) {
        ""
    } else {
        finding.domain.as_deref().unwrap_or("")
    };
    format!("{family}/{}/{domain}", finding.resource_id)
}

/// Families whose identity leaves the domain out (see [`alert_id`]).
fn one_per_resource(family: &str) -> bool {
    matches!(family, "expiry" | "chain" | "strength")
}

/// An identity as [`alert_id`] makes it now, from one saved by an earlier version (which kept
/// the domain in every family).
fn current_id(id: &str) -> String {
    let mut parts = id.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(family), Some(resource), Some(domain))
            if one_per_resource(family) && !domain.is_empty() =>
        {
            format!("{family}/{resource}/")
        }
        _ => id.to_string(),
    }
}

impl ReceiverState {
    /// The state as saved by any version, keyed by today's identities: an alert firing before an
    /// upgrade goes on firing, from when it started, instead of resolving and firing anew.
    pub fn with_current_ids(self) -> Self {
        let firing = self
            .firing
            .into_values()
            .map(|mut a| {
                a.id = current_id(&a.id);
                (a.id.clone(), a)
            })
            .collect();
        let told = self
            .told
            .into_iter()
            .map(|(id, t)| (current_id(&id), t))
            .collect();
        Self { firing, told }
    }
}

/// The alert for a finding, first seen at `starts_at`.
pub fn alert(finding: &Finding, starts_at: OffsetDateTime) -> Alert {
    let id = alert_id(finding);
    let mut labels = BTreeMap::new();
    labels.insert("alertname".to_string(), alertname(finding.kind).to_string());
    labels.insert(
        "severity".to_string(),
        finding.severity.as_str().to_string(),
    );
    labels.insert("kind".to_string(), finding.kind.as_str().to_string());
    labels.insert("resource_id".to_string(), finding.resource_id.clone());
    if let Some(d) = &finding.domain {
        labels.insert("domain".to_string(), d.clone());
    }
    labels.insert("service".to_string(), "ngrok-cert-watchdog".to_string());
    let mut annotations = BTreeMap::new();
    let subject = finding.domain.as_deref().unwrap_or(&finding.resource_id);
    annotations.insert(
        "summary".to_string(),
        format!(
            "{} {}: {}",
            finding.severity.as_str(),
            finding.kind.as_str(),
            subject
        ),
    );
    annotations.insert("description".to_string(), finding.message.clone());
    annotations.insert("action".to_string(), advice(finding.kind).to_string());
    if let Some(t) = finding.not_after {
        annotations.insert("not_after".to_string(), crate::model::text::format_time(t));
    }
    Alert {
        id,
        severity: finding.severity,
        labels,
        annotations,
        starts_at,
    }
}

/// Whether a sync saw the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knowledge {
    /// The sync listed the account: what it does not show has cleared.
    Known,
    /// The sync failed: the account's state is unknown, so nothing about it resolves.
    Unknown,
}

/// What fires after an observation: what it shows and, when the account was not seen, whatever
/// fired before as well — unknown is not resolved. The one copy of that rule: each receiver's
/// lifecycle ([`step`]) and the daemon's `alerts_firing` ([`crate::core::pass`]) use it.
pub fn carry_over<V: Clone>(
    before: &BTreeMap<String, V>,
    mut shown: BTreeMap<String, V>,
    knowledge: Knowledge,
) -> BTreeMap<String, V> {
    if knowledge == Knowledge::Unknown {
        for (id, v) in before {
            shown.entry(id.clone()).or_insert_with(|| v.clone());
        }
    }
    shown
}

/// What a sync observed.
#[derive(Debug, Clone)]
pub struct Observation {
    pub at: OffsetDateTime,
    pub knowledge: Knowledge,
    /// Every finding (unfiltered); on a failed sync only the watchdog's own (sync, watch).
    pub findings: Vec<Finding>,
    /// The interval between scheduled syncs (for Alertmanager's `endsAt`).
    pub sync_interval: Duration,
}

/// What a receiver has been told about one alert (persisted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub severity: Severity,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

/// One receiver's durable state: the alerts firing as the watchdog last saw them, and what the
/// receiver was last told about each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverState {
    pub firing: BTreeMap<String, Alert>,
    pub told: BTreeMap<String, Told>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

/// One alert in an outgoing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: String,
    pub status: Status,
    pub severity: Severity,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: OffsetDateTime,
    pub ends_at: Option<OffsetDateTime>,
}

/// A receiver's settings that the lifecycle needs.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub format: WebhookFormat,
    pub min_severity: Severity,
    pub repeat_interval: Duration,
}

/// The next firing set and the notices owed to the receiver. Pure.
pub fn step(
    state: &ReceiverState,
    obs: &Observation,
    policy: &Policy,
) -> (BTreeMap<String, Alert>, Vec<Notice>) {
    let now = obs.at;
    let mut firing = BTreeMap::new();
    for f in obs
        .findings
        .iter()
        .filter(|f| f.severity >= policy.min_severity)
    {
        let id = alert_id(f);
        let starts_at = state.firing.get(&id).map_or(now, |a| a.starts_at);
        let a = alert(f, starts_at);
        // Two findings of one identity (rare): the more severe wins.
        match firing.get(&a.id) {
            Some(existing) if existing_wins(existing, &a) => {}
            _ => {
                firing.insert(a.id.clone(), a);
            }
        }
    }
    // Unknown is not resolved: keep what fired. The sync alert too: only a successful sync
    // clears it (after a restart the failure count starts again from zero).
    let firing = carry_over(&state.firing, firing, obs.knowledge);
    let mut notices = Vec::new();
    let ends_in = obs.sync_interval * 3;
    for a in firing.values() {
        let told = state.told.get(&a.id);
        let send = match policy.format {
            WebhookFormat::Alertmanager => true,
            WebhookFormat::Json | WebhookFormat::Slack => match told {
                None => true,
                Some(t) => {
                    t.labels != a.labels || now - t.sent_at >= signed(policy.repeat_interval)
                }
            },
        };
        // Alertmanager and receivers written for it track label sets (fingerprints): a changed
        // set resolves the superseded one. Slack shows one message per change instead.
        if let (WebhookFormat::Alertmanager | WebhookFormat::Json, Some(t)) = (policy.format, told)
        {
            if t.labels != a.labels {
                notices.push(resolved(&a.id, t, now));
            }
        }
        if send {
            let ends_at = match policy.format {
                WebhookFormat::Alertmanager => Some(now + signed(ends_in)),
                _ => None,
            };
            notices.push(firing_notice(a, ends_at));
        }
    }
    for (id, t) in &state.told {
        if !firing.contains_key(id) {
            notices.push(resolved(id, t, now));
        }
    }
    (firing, notices)
}

/// Every firing alert once more, for Alertmanager while no observation comes (a slow sync):
/// re-pushed before its `endsAt` passes, so that Alertmanager never resolves it by timeout.
pub fn keepalive(state: &ReceiverState) -> Vec<Notice> {
    state
        .firing
        .values()
        .map(|a| firing_notice(a, None))
        .collect()
}

fn firing_notice(a: &Alert, ends_at: Option<OffsetDateTime>) -> Notice {
    Notice {
        id: a.id.clone(),
        status: Status::Firing,
        severity: a.severity,
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: a.starts_at,
        ends_at,
    }
}

/// The notices as sent at `now`: a firing alert tells Alertmanager it ends `ends_in` after the
/// sending — not after the observation, which a slow sync or retries may have made old.
pub fn stamped(notices: &[Notice], now: OffsetDateTime, ends_in: Duration) -> Vec<Notice> {
    notices
        .iter()
        .map(|n| Notice {
            ends_at: match n.status {
                Status::Firing => Some(now + signed(ends_in)),
                Status::Resolved => n.ends_at,
            },
            ..n.clone()
        })
        .collect()
}

fn existing_wins(existing: &Alert, new: &Alert) -> bool {
    existing.severity >= new.severity
}

fn resolved(id: &str, told: &Told, now: OffsetDateTime) -> Notice {
    Notice {
        id: id.to_string(),
        status: Status::Resolved,
        severity: told.severity,
        labels: told.labels.clone(),
        annotations: told.annotations.clone(),
        starts_at: told.starts_at,
        ends_at: Some(now),
    }
}

/// Records that `notices` reached the receiver at `now`.
pub fn delivered(state: &mut ReceiverState, notices: &[Notice], now: OffsetDateTime) {
    for n in notices {
        match n.status {
            Status::Firing => {
                state.told.insert(
                    n.id.clone(),
                    Told {
                        labels: n.labels.clone(),
                        annotations: n.annotations.clone(),
                        severity: n.severity,
                        starts_at: n.starts_at,
                        sent_at: now,
                    },
                );
            }
            Status::Resolved => {
                // A superseded label set (Alertmanager) is resolved while the id fires on.
                if state.told.get(&n.id).is_some_and(|t| t.labels == n.labels) {
                    state.told.remove(&n.id);
                }
            }
        }
    }
}

fn signed(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn finding(kind: FindingKind, severity: Severity, resource: &str) -> Finding {
        Finding {
            severity,
            kind,
            resource_id: resource.into(),
            domain: Some("app.example.com".into()),
            message: "m".into(),
            not_after: None,
        }
    }

    fn obs(at: OffsetDateTime, known: bool, findings: Vec<Finding>) -> Observation {
        Observation {
            at,
            knowledge: if known {
                Knowledge::Known
            } else {
                Knowledge::Unknown
            },
            findings,
            sync_interval: Duration::from_secs(300),
        }
    }

    fn policy(format: WebhookFormat) -> Policy {
        Policy {
            format,
            min_severity: Severity::Warning,
            repeat_interval: Duration::from_secs(4 * 3600),
        }
    }

    /// Runs one step and marks everything delivered; returns the notices as (status, alertname).
    fn run(state: &mut ReceiverState, o: &Observation, p: &Policy) -> Vec<(Status, String)> {
        let (firing, notices) = step(state, o, p);
        state.firing = firing;
        delivered(state, &notices, o.at);
        notices
            .iter()
            .map(|n| (n.status, n.labels["alertname"].clone()))
            .collect()
    }

    #[test]
    fn a_state_saved_with_the_domain_in_every_identity_goes_on_firing() {
        let expiring = finding(
            FindingKind::CertificateExpiring,
            Severity::Warning,
            "cert_1",
        );
        let mismatch = finding(
            FindingKind::CertificateNameMismatch,
            Severity::Critical,
            "cert_1",
        );
        let p = policy(WebhookFormat::Json);
        let mut s = ReceiverState::default();
        run(
            &mut s,
            &obs(T0, true, vec![expiring.clone(), mismatch.clone()]),
            &p,
        );
        // As an earlier version saved it: every identity with its domain.
        let old = |id: &str| id.replace("expiry/cert_1/", "expiry/cert_1/app.example.com");
        let saved = ReceiverState {
            firing: s
                .firing
                .values()
                .map(|a| {
                    let id = old(&a.id);
                    (id.clone(), Alert { id, ..a.clone() })
                })
                .collect(),
            told: s.told.iter().map(|(id, t)| (old(id), t.clone())).collect(),
        };
        assert!(saved.firing.contains_key("expiry/cert_1/app.example.com"));
        let mut loaded = saved.with_current_ids();
        assert_eq!(loaded, s);
        // Nothing to tell a minute later: no resolve, no new firing.
        let later = T0 + time::Duration::minutes(1);
        assert!(run(&mut loaded, &obs(later, true, vec![expiring, mismatch]), &p).is_empty());
    }

    #[test]
    fn a_certificate_alert_keeps_its_identity_as_its_domains_change() {
        let on = |kind, domain: Option<&str>| Finding {
            domain: domain.map(str::to_string),
            ..finding(kind, Severity::Warning, "cert_1")
        };
        // Expiring on app., then also attached to an earlier name, then detached: one alert.
        let app = on(FindingKind::CertificateExpiring, Some("app.example.com"));
        let api = on(FindingKind::CertificateExpiring, Some("api.example.com"));
        let unattached = on(FindingKind::CertificateUnattached, None);
        assert_eq!(alert_id(&app), alert_id(&api));
        assert_eq!(alert_id(&app), alert_id(&unattached));
        for kind in [
            FindingKind::CertificateChainIncomplete,
            FindingKind::CertificateWeak,
        ] {
            assert_eq!(
                alert_id(&on(kind, Some("a.test"))),
                alert_id(&on(kind, Some("b.test")))
            );
        }
        // One certificate uncovering two domains: two alerts.
        assert_ne!(
            alert_id(&on(FindingKind::CertificateNameMismatch, Some("a.test"))),
            alert_id(&on(FindingKind::CertificateNameMismatch, Some("b.test")))
        );
        // The alert goes on from when it started. A receiver that tracks label sets hears the
        // superseded set resolved (as for a change of severity); Slack hears one message.
        let later = T0 + time::Duration::minutes(5);
        for (format, heard) in [
            (WebhookFormat::Json, vec![Status::Resolved, Status::Firing]),
            (WebhookFormat::Slack, vec![Status::Firing]),
        ] {
            let p = policy(format);
            let mut s = ReceiverState::default();
            run(&mut s, &obs(T0, true, vec![app.clone()]), &p);
            let notices = run(&mut s, &obs(later, true, vec![api.clone()]), &p);
            let statuses: Vec<Status> = notices.iter().map(|(st, _)| *st).collect();
            assert_eq!(statuses, heard, "{format:?}");
            assert_eq!(s.firing.len(), 1);
            assert!(s.firing.values().all(|a| a.starts_at == T0));
        }
    }

    #[allow(clippy::too_many_lines, reason = "one lifecycle told step by step")]
    #[test]
    fn fires_escalates_repeats_and_resolves_once() {
        let p = policy(WebhookFormat::Json);
        let mut s = ReceiverState::default();
        let warn = finding(
            FindingKind::CertificateExpiring,
            Severity::Warning,
            "cert_1",
        );
        assert_eq!(
            run(&mut s, &obs(T0, true, vec![warn.clone()]), &p),
            vec![(Status::Firing, "NgrokCertificateExpiring".into())]
        );
        // Same state five minutes later: nothing.
        assert!(run(
            &mut s,
            &obs(T0 + time::Duration::minutes(5), true, vec![warn.clone()]),
            &p
        )
        .is_empty());
        // Escalation to critical, then to expired: the same alert, re-sent each time, the
        // superseded label set resolved in the same message.
        let crit = finding(
            FindingKind::CertificateExpiring,
            Severity::Critical,
            "cert_1",
        );
        assert_eq!(
            run(
                &mut s,
                &obs(T0 + time::Duration::minutes(10), true, vec![crit.clone()]),
                &p
            ),
            vec![
                (Status::Resolved, "NgrokCertificateExpiring".into()),
                (Status::Firing, "NgrokCertificateExpiring".into())
            ]
        );
        let expired = finding(
            FindingKind::CertificateExpired,
            Severity::Critical,
            "cert_1",
        );
        let n = run(
            &mut s,
            &obs(
                T0 + time::Duration::minutes(15),
                true,
                vec![expired.clone()],
            ),
            &p,
        );
        assert_eq!(
            n,
            vec![
                (Status::Resolved, "NgrokCertificateExpiring".into()),
                (Status::Firing, "NgrokCertificateExpired".into())
            ]
        );
        assert_eq!(s.firing.len(), 1);
        assert_eq!(
            s.firing.values().next().unwrap().starts_at,
            T0,
            "one alert since T0"
        );
        // The repeat interval.
        assert!(run(
            &mut s,
            &obs(T0 + time::Duration::hours(4), true, vec![expired.clone()]),
            &p
        )
        .is_empty());
        assert_eq!(
            run(
                &mut s,
                &obs(
                    T0 + time::Duration::minutes(255),
                    true,
                    vec![expired.clone()]
                ),
                &p
            )
            .len(),
            1
        );
        // Resolved once.
        let at = T0 + time::Duration::hours(5);
        assert_eq!(
            run(&mut s, &obs(at, true, vec![]), &p),
            vec![(Status::Resolved, "NgrokCertificateExpired".into())]
        );
        assert!(run(
            &mut s,
            &obs(at + time::Duration::minutes(5), true, vec![]),
            &p
        )
        .is_empty());
    }

    #[test]
    fn a_failed_sync_resolves_nothing_in_any_format() {
        for format in [
            WebhookFormat::Json,
            WebhookFormat::Slack,
            WebhookFormat::Alertmanager,
        ] {
            let p = policy(format);
            let mut s = ReceiverState::default();
            let f = finding(FindingKind::ProvisioningFailed, Severity::Critical, "rd_1");
            run(&mut s, &obs(T0, true, vec![f]), &p);
            let sync = Finding {
                domain: None,
                ..finding(FindingKind::SyncFailed, Severity::Warning, "sync")
            };
            let n = run(
                &mut s,
                &obs(T0 + time::Duration::minutes(5), false, vec![sync]),
                &p,
            );
            assert!(
                !n.iter().any(|(st, _)| *st == Status::Resolved),
                "{format:?}: {n:?}"
            );
            assert_eq!(s.firing.len(), 2, "{format:?}");
            // The API is back and the sync alert clears; the provisioning alert still fires.
            let f = finding(FindingKind::ProvisioningFailed, Severity::Critical, "rd_1");
            let n = run(
                &mut s,
                &obs(T0 + time::Duration::minutes(10), true, vec![f]),
                &p,
            );
            assert!(
                n.contains(&(Status::Resolved, "NgrokCertWatchdogSyncFailing".into())),
                "{format:?}: {n:?}"
            );
            assert!(!n.contains(&(Status::Resolved, "NgrokProvisioningFailed".into())));
        }
    }

    #[test]
    fn alertmanager_gets_every_firing_alert_every_time_and_superseded_sets_resolved() {
        let p = policy(WebhookFormat::Alertmanager);
        let mut s = ReceiverState::default();
        let warn = finding(
            FindingKind::CertificateExpiring,
            Severity::Warning,
            "cert_1",
        );
        let (_, n) = step(&s, &obs(T0, true, vec![warn.clone()]), &p);
        assert_eq!(n[0].ends_at, Some(T0 + time::Duration::minutes(15)));
        run(&mut s, &obs(T0, true, vec![warn.clone()]), &p);
        assert_eq!(
            run(
                &mut s,
                &obs(T0 + time::Duration::minutes(5), true, vec![warn]),
                &p
            )
            .len(),
            1
        );
        let crit = finding(
            FindingKind::CertificateExpiring,
            Severity::Critical,
            "cert_1",
        );
        let (_, n) = step(
            &s,
            &obs(T0 + time::Duration::minutes(10), true, vec![crit]),
            &p,
        );
        assert_eq!(n.len(), 2);
        assert_eq!(
            (n[0].status, n[0].labels["severity"].as_str()),
            (Status::Resolved, "warning")
        );
        assert_eq!(
            (n[1].status, n[1].labels["severity"].as_str()),
            (Status::Firing, "critical")
        );
    }

    #[test]
    fn only_a_successful_sync_resolves_the_sync_alert() {
        let p = policy(WebhookFormat::Json);
        let mut s = ReceiverState::default();
        let sync = Finding {
            domain: None,
            ..finding(FindingKind::SyncFailed, Severity::Warning, "sync")
        };
        run(&mut s, &obs(T0, false, vec![sync]), &p);
        // After a restart the failure count starts from zero: the next failed syncs carry no
        // sync finding, and must not resolve the alert.
        let n = run(
            &mut s,
            &obs(T0 + time::Duration::minutes(5), false, vec![]),
            &p,
        );
        assert!(n.is_empty(), "{n:?}");
        let n = run(
            &mut s,
            &obs(T0 + time::Duration::minutes(10), true, vec![]),
            &p,
        );
        assert_eq!(
            n,
            vec![(Status::Resolved, "NgrokCertWatchdogSyncFailing".into())]
        );
    }

    #[test]
    fn below_min_severity_is_not_sent() {
        let p = policy(WebhookFormat::Json);
        let mut s = ReceiverState::default();
        let info = finding(FindingKind::CertificateUnattached, Severity::Info, "cert_9");
        assert!(run(&mut s, &obs(T0, true, vec![info]), &p).is_empty());
    }
}
