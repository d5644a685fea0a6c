//! Pure evaluation: (Inventory, ExpiryPolicy, now) → findings. No clock, no I/O.

use time::OffsetDateTime;

use crate::model::expiry::{Stage, Threshold};
use crate::model::text::{format_time, human, signed};
use crate::model::{ExpiryPolicy, Finding, FindingKind, Severity};
use crate::sources::inventory::{Certificate, Inventory};
use crate::sources::ngrok::{ProvisioningJob, ReservedDomain};

/// Everything wrong with the account at `now`. Sorted by severity (critical first), then expiry
/// (soonest first), then resource id.
pub fn evaluate(inventory: &Inventory, policy: &ExpiryPolicy, now: OffsetDateTime) -> Vec<Finding> {
    let mut findings = Vec::new();
    for certificate in inventory.certificates() {
        findings.extend(certificate_finding(inventory, certificate, policy, now));
        super::judgement::findings(inventory, certificate, &mut findings);
    }
    for domain in inventory.domains() {
        domain_findings(inventory, domain, policy, now, &mut findings);
    }
    for credential in inventory.credentials() {
        if !credential.is_restricted() {
            let rule = if credential.acl.is_empty() {
                "an empty ACL"
            } else {
                "a `*` ACL rule"
            };
            findings.push(Finding {
                severity: Severity::Info,
                kind: FindingKind::CredentialUnrestricted,
                resource_id: credential.id.clone(),
                domain: None,
                message: format!(
                    "tunnel credential {}{} has {rule}: it can bind any domain of the account; restrict it with `bind:` rules",
                    credential.id,
                    described(credential.description.as_deref()),
                ),
                not_after: None,
            });
        }
    }
    sort(&mut findings);
    findings
}

/// Critical first, then the soonest expiry, then by resource id: a stable order for reports.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| match (a.not_after, b.not_after) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.resource_id.cmp(&b.resource_id))
            .then_with(|| a.domain.cmp(&b.domain))
            .then_with(|| a.kind.cmp(&b.kind))
    });
}

fn certificate_finding(
    inventory: &Inventory,
    certificate: &Certificate,
    policy: &ExpiryPolicy,
    now: OffsetDateTime,
) -> Option<Finding> {
    let mut domains: Vec<&str> = inventory
        .domains_using(&certificate.id)
        .map(|d| d.domain.as_str())
        .collect();
    domains.sort_unstable();
    let name = certificate_name(certificate);
    let left = certificate.not_after - now;
    let when = format_time(certificate.not_after);
    if domains.is_empty() {
        // Left behind by a rotation, or uploaded for later: never more than info, so that old
        // certificates never page anyone.
        if certificate.is_managed() {
            return None;
        }
        let state = if left <= time::Duration::ZERO {
            format!("expired {when}")
        } else {
            format!("expires {when} ({})", human(left))
        };
        return Some(Finding {
            severity: Severity::Info,
            kind: FindingKind::CertificateUnattached,
            resource_id: certificate.id.clone(),
            domain: None,
            message: format!("uploaded certificate {name} is used by no domain; it {state}; delete it if it is no longer needed"),
            not_after: Some(certificate.not_after),
        });
    }
    let used_by = domains.join(", ");
    let action = if certificate.is_managed() {
        "ngrok should renew it: check the domain's certificate management status"
    } else {
        "upload a renewed certificate and attach it to the domains"
    };
    let inside = |threshold: &Threshold, which: &str| {
        format!(
            "expires {when}, in {}, inside the {which} threshold \"{threshold}\" ({} for a certificate valid {})",
            human(left),
            human(threshold.before_expiry(certificate.not_before, certificate.not_after)),
            human(certificate.not_after - certificate.not_before),
        )
    };
    let (severity, kind, state) =
        match policy.stage(certificate.not_before, certificate.not_after, now) {
            Stage::Fine => return None,
            Stage::Expired => (
                Severity::Critical,
                FindingKind::CertificateExpired,
                format!("expired {when}"),
            ),
            Stage::Critical => (
                Severity::Critical,
                FindingKind::CertificateExpiring,
                inside(&policy.critical, "critical"),
            ),
            Stage::Warning => (
                Severity::Warning,
                FindingKind::CertificateExpiring,
                inside(&policy.warning, "warning"),
            ),
        };
    Some(Finding {
        severity,
        kind,
        resource_id: certificate.id.clone(),
        domain: domains.first().map(|d| d.to_string()),
        message: format!("certificate {name} for {used_by} {state}; {action}"),
        not_after: Some(certificate.not_after),
    })
}

fn domain_findings(
    inventory: &Inventory,
    domain: &ReservedDomain,
    policy: &ExpiryPolicy,
    now: OffsetDateTime,
    findings: &mut Vec<Finding>,
) {
    let grace = signed(policy.renewal_grace);
    let name = &domain.domain;
    let finding = |severity, kind, message: String, not_after| Finding {
        severity,
        kind,
        resource_id: domain.id.clone(),
        domain: Some(name.clone()),
        message,
        not_after,
    };
    if let Some(id) = domain.certificate_id() {
        if inventory.is_missing(id) {
            findings.push(finding(
                Severity::Critical,
                FindingKind::CertificateMissing,
                format!("domain {name} points at certificate {id}, which no longer exists; attach a valid certificate"),
                None,
            ));
        }
    }
    if domain.is_managed() {
        if let Some((severity, kind, message)) = provisioning(domain, now, grace) {
            findings.push(finding(severity, kind, message, None));
        }
        if let Some(renews_at) = domain.renews_at().filter(|at| now - *at > grace) {
            let not_after = domain
                .certificate_id()
                .and_then(|id| inventory.certificate(id))
                .map(|c| c.not_after);
            findings.push(finding(
                Severity::Warning,
                FindingKind::RenewalOverdue,
                format!(
                    "ngrok should have renewed the certificate of {name} at {} ({} ago); check its certificate management status",
                    format_time(renews_at),
                    human(now - renews_at)
                ),
                not_after,
            ));
        }
    } else if domain.certificate.is_none() && !domain.is_ngrok_owned() {
        findings.push(finding(
            Severity::Warning,
            FindingKind::DomainWithoutCertificate,
            format!(
                "custom domain {name} has neither a certificate nor a certificate management policy: HTTPS to it fails; attach a certificate or enable managed certificates"
            ),
            None,
        ));
    }
}

/// What a managed domain's provisioning job says: DNS_ERROR (critical, permanent), another error
/// (warning, ngrok retries), or a job without a certificate running past the grace.
fn provisioning(
    domain: &ReservedDomain,
    now: OffsetDateTime,
    grace: time::Duration,
) -> Option<(Severity, FindingKind, String)> {
    let name = &domain.domain;
    let job = domain.provisioning_job();
    match job.and_then(|j| j.error_code.as_deref()) {
        Some("DNS_ERROR") => Some((
            Severity::Critical,
            FindingKind::ProvisioningFailed,
            format!(
                "ngrok cannot issue a certificate for {name}: DNS_ERROR{}; this does not fix itself: {}",
                job_msg(job),
                dns_fix(domain)
            ),
        )),
        Some(code) => {
            let retry = match job.and_then(|j| j.retries_at) {
                Some(at) => format!("ngrok retries at {}", format_time(at)),
                None => "ngrok retries by itself".to_string(),
            };
            let kind = if code == "INTERNAL_ERROR" {
                "temporary"
            } else {
                "unrecognised error"
            };
            Some((
                Severity::Warning,
                FindingKind::ProvisioningFailed,
                format!("certificate provisioning for {name} failed with {code}{} ({kind}); {retry}", job_msg(job)),
            ))
        }
        None if job.is_none() => no_job(domain, now, grace),
        None => {
            let started = job.and_then(|j| j.started_at)?;
            (domain.certificate.is_none() && now - started > grace).then(|| {
                (
                    Severity::Warning,
                    FindingKind::ProvisioningStuck,
                    format!(
                        "domain {name} has no certificate and ngrok's provisioning job has run since {} ({}); check its DNS and the ngrok dashboard",
                        format_time(started),
                        human(now - started)
                    ),
                )
            })
        }
    }
}

/// A managed domain with no certificate and no provisioning job at all (a null
/// `certificate_management_status`, seen in real responses): stuck once it is older than the
/// grace.
fn no_job(
    domain: &ReservedDomain,
    now: OffsetDateTime,
    grace: time::Duration,
) -> Option<(Severity, FindingKind, String)> {
    let created = domain.created_at?;
    (domain.certificate.is_none() && now - created > grace).then(|| {
        (
            Severity::Warning,
            FindingKind::ProvisioningStuck,
            format!(
                "domain {} has a certificate management policy but no certificate, and ngrok reports no provisioning job at all (created {}, {} ago); remove and re-add the policy, or check the domain in the ngrok dashboard",
                domain.domain,
                format_time(created),
                human(now - created)
            ),
        )
    })
}

/// The DNS record that lets ngrok issue a certificate for the domain.
fn dns_fix(domain: &ReservedDomain) -> String {
    let name = &domain.domain;
    if name.starts_with("*.") {
        match &domain.acme_challenge_cname_target {
            Some(t) => format!(
                "create a CNAME record _acme-challenge.{} → {t}",
                name.trim_start_matches("*.")
            ),
            None => "create the _acme-challenge CNAME record ngrok shows for it".to_string(),
        }
    } else {
        match &domain.cname_target {
            Some(t) => format!("create a CNAME record {name} → {t}"),
            None => "point its DNS at the CNAME target ngrok shows for it".to_string(),
        }
    }
}

fn job_msg(job: Option<&ProvisioningJob>) -> String {
    match job.and_then(|j| j.msg.as_deref()).filter(|m| !m.is_empty()) {
        Some(msg) => format!(" ({msg})"),
        None => String::new(),
    }
}

/// "cert_… (CN=app.example.com)", for messages.
pub(super) fn certificate_name(certificate: &Certificate) -> String {
    match certificate
        .subject_common_name
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        Some(cn) => format!("{} (CN={cn})", certificate.id),
        None => certificate.id.clone(),
    }
}

fn described(description: Option<&str>) -> String {
    match description.filter(|d| !d.is_empty()) {
        Some(d) => format!(" ({d})"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::ngrok::TlsCertificate;
    use crate::sources::ngrok::{CertPolicy, CertStatus, Ref, TunnelCredential};
    use std::collections::BTreeSet;
    use std::time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn cert(id: &str, not_after: OffsetDateTime, managed: bool) -> TlsCertificate {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "subject_common_name": "app.example.com",
            "not_before": "2026-01-01T00:00:00Z",
            "not_after": format_time(not_after),
            "issued_at": if managed { serde_json::json!("2026-01-01T00:00:00Z") } else { serde_json::Value::Null },
        }))
        .unwrap()
    }

    fn domain(id: &str, name: &str, certificate: Option<&str>) -> ReservedDomain {
        let mut d: ReservedDomain =
            serde_json::from_value(serde_json::json!({"id": id, "domain": name})).unwrap();
        d.certificate = certificate.map(|c| Ref { id: c.into() });
        d.cname_target = Some(format!("{id}.cname.ngrok.test"));
        d
    }

    fn managed(
        mut d: ReservedDomain,
        job: Option<ProvisioningJob>,
        renews_at: Option<OffsetDateTime>,
    ) -> ReservedDomain {
        d.certificate_management_policy = Some(Box::new(CertPolicy {
            authority: Some("letsencrypt".into()),
            private_key_type: Some("ecdsa".into()),
        }));
        d.certificate_management_status = Some(Box::new(CertStatus {
            renews_at,
            provisioning_job: job,
        }));
        d
    }

    fn job(code: Option<&str>, started_at: OffsetDateTime) -> ProvisioningJob {
        ProvisioningJob {
            error_code: code.map(str::to_string),
            msg: Some("details".into()),
            started_at: Some(started_at),
            retries_at: Some(NOW + time::Duration::hours(1)),
        }
    }

    fn inventory(certificates: Vec<TlsCertificate>, domains: Vec<ReservedDomain>) -> Inventory {
        Inventory::new(NOW, certificates, domains, Vec::new(), BTreeSet::new())
    }

    fn kinds(findings: &[Finding]) -> Vec<(Severity, FindingKind, &str)> {
        findings
            .iter()
            .map(|f| (f.severity, f.kind, f.resource_id.as_str()))
            .collect()
    }

    #[test]
    fn expiry_of_attached_certificates_by_threshold() {
        let days = time::Duration::days;
        let inv = inventory(
            vec![
                cert("cert_ok", NOW + days(60), false),
                cert("cert_warn", NOW + days(20), false),
                cert("cert_crit", NOW + days(3), true),
                cert("cert_dead", NOW - days(1), false),
                cert("cert_edge", NOW + days(30), false),
            ],
            vec![
                domain("rd_1", "ok.example.com", Some("cert_ok")),
                domain("rd_2", "warn.example.com", Some("cert_warn")),
                domain("rd_3", "crit.example.com", Some("cert_crit")),
                domain("rd_4", "dead.example.com", Some("cert_dead")),
                domain("rd_5", "edge.example.com", Some("cert_edge")),
            ],
        );
        let findings = evaluate(&inv, &ExpiryPolicy::default(), NOW);
        assert_eq!(
            kinds(&findings),
            vec![
                (
                    Severity::Critical,
                    FindingKind::CertificateExpired,
                    "cert_dead"
                ),
                (
                    Severity::Critical,
                    FindingKind::CertificateExpiring,
                    "cert_crit"
                ),
                (
                    Severity::Warning,
                    FindingKind::CertificateExpiring,
                    "cert_warn"
                ),
                (
                    Severity::Warning,
                    FindingKind::CertificateExpiring,
                    "cert_edge"
                ),
            ]
        );
        assert_eq!(findings[1].domain.as_deref(), Some("crit.example.com"));
        assert_eq!(findings[1].not_after, Some(NOW + days(3)));
        assert!(
            findings[1].message.contains("in 3 days"),
            "{}",
            findings[1].message
        );
        // A tighter policy changes the outcome: thresholds are the policy's, not constants.
        let tight = ExpiryPolicy {
            warning: Threshold::duration(Duration::from_secs(10 * 86_400)),
            critical: Threshold::duration(Duration::from_secs(86_400)),
            renewal_grace: Duration::from_secs(3_600),
        };
        let findings = evaluate(&inv, &tight, NOW);
        assert_eq!(
            kinds(&findings),
            vec![
                (
                    Severity::Critical,
                    FindingKind::CertificateExpired,
                    "cert_dead"
                ),
                (
                    Severity::Warning,
                    FindingKind::CertificateExpiring,
                    "cert_crit"
                ),
            ]
        );
    }

    #[test]
    fn unattached_certificates_are_only_info_even_when_expired() {
        let inv = inventory(
            vec![
                cert("cert_old", NOW - time::Duration::days(100), false),
                cert("cert_managed", NOW - time::Duration::days(100), true),
            ],
            vec![],
        );
        let findings = evaluate(&inv, &ExpiryPolicy::default(), NOW);
        assert_eq!(
            kinds(&findings),
            vec![(
                Severity::Info,
                FindingKind::CertificateUnattached,
                "cert_old"
            )]
        );
        assert!(
            findings[0].message.contains("expired 2026-08-14T10:00:00Z"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn provisioning_errors_by_code() {
        let started = NOW - time::Duration::hours(2);
        let mut wildcard = managed(
            domain("rd_w", "*.wild.example.com", None),
            Some(job(Some("DNS_ERROR"), started)),
            None,
        );
        wildcard.acme_challenge_cname_target = Some("acme.ngrok.test".into());
        let inv = inventory(
            vec![],
            vec![
                managed(
                    domain("rd_dns", "dns.example.com", None),
                    Some(job(Some("DNS_ERROR"), started)),
                    None,
                ),
                managed(
                    domain("rd_int", "int.example.com", None),
                    Some(job(Some("INTERNAL_ERROR"), started)),
                    None,
                ),
                wildcard,
            ],
        );
        let findings = evaluate(&inv, &ExpiryPolicy::default(), NOW);
        assert_eq!(
            kinds(&findings),
            vec![
                (
                    Severity::Critical,
                    FindingKind::ProvisioningFailed,
                    "rd_dns"
                ),
                (Severity::Critical, FindingKind::ProvisioningFailed, "rd_w"),
                (Severity::Warning, FindingKind::ProvisioningFailed, "rd_int"),
            ]
        );
        assert!(
            findings[0]
                .message
                .contains("dns.example.com → rd_dns.cname.ngrok.test"),
            "{}",
            findings[0].message
        );
        assert!(
            findings[1]
                .message
                .contains("_acme-challenge.wild.example.com → acme.ngrok.test"),
            "{}",
            findings[1].message
        );
        assert!(
            findings[2]
                .message
                .contains("retries at 2026-11-22T11:00:00Z"),
            "{}",
            findings[2].message
        );
    }

    #[test]
    fn an_unknown_provisioning_error_is_a_warning_with_its_code_and_message() {
        let started = NOW - time::Duration::hours(2);
        let inv = inventory(
            vec![],
            vec![managed(
                domain("rd_x", "x.example.com", None),
                Some(job(Some("CAA_ERROR"), started)),
                None,
            )],
        );
        let findings = evaluate(&inv, &ExpiryPolicy::default(), NOW);
        assert_eq!(
            kinds(&findings),
            vec![(Severity::Warning, FindingKind::ProvisioningFailed, "rd_x")]
        );
        let msg = &findings[0].message;
        assert!(msg.contains("CAA_ERROR (details)"), "{msg}");
        assert!(msg.contains("unrecognised error"), "{msg}");
    }

    #[test]
    fn a_managed_domain_with_a_null_status_is_stuck_past_the_grace() {
        let null_status = |id: &str, age: time::Duration| {
            let mut d = managed(domain(id, &format!("{id}.example.com"), None), None, None);
            d.certificate_management_status = None;
            d.created_at = Some(NOW - age);
            d
        };
        let inv = inventory(
            vec![],
            vec![
                null_status("rd_new", time::Duration::hours(2)),
                null_status("rd_old", time::Duration::days(400)),
            ],
        );
        let findings = evaluate(&inv, &ExpiryPolicy::default(), NOW);
        assert_eq!(
            kinds(&findings),
            vec![(Severity::Warning, FindingKind::ProvisioningStuck, "rd_old")]
        );
        let msg = &findings[0].message;
        assert!(msg.contains("no provisioning job at all"), "{msg}");
    }

    #[test]
    fn ngrok_owned_domains_never_lack_a_certificate() {
        let mut dev = domain("rd_dev", "happy-fox.ngrok-free.dev", None);
        dev.cname_target = None;
        dev.is_dev = true;
        let mut app = domain("rd_app", "demo.ngrok.app", None);
        app.cname_target = None;
        // The dev domain even with a cname_target in some future response.
        let mut dev_cname = domain("rd_dev2", "other.ngrok-free.dev", None);
        dev_cname.is_dev = true;
        let inv = inventory(vec![], vec![dev, app, dev_cname]);
        assert!(evaluate(&inv, &ExpiryPolicy::default(), NOW).is_empty());
    }

    #[test]
    fn stuck_and_overdue_respect_the_grace() {
        let policy = ExpiryPolicy::default();
        let inv = inventory(
            vec![cert("cert_m", NOW + time::Duration::days(20), true)],
            vec![
                managed(
                    domain("rd_new", "new.example.com", None),
                    Some(job(None, NOW - time::Duration::hours(2))),
                    None,
                ),
                managed(
                    domain("rd_stuck", "stuck.example.com", None),
                    Some(job(None, NOW - time::Duration::hours(25))),
                    None,
                ),
                managed(
                    domain("rd_due", "due.example.com", Some("cert_m")),
                    None,
                    Some(NOW - time::Duration::hours(23)),
                ),
                managed(
                    domain("rd_late", "late.example.com", None),
                    None,
                    Some(NOW - time::Duration::hours(25)),
                ),
            ],
        );
        let findings = evaluate(&inv, &policy, NOW);
        assert_eq!(
            kinds(&findings),
            vec![
                (
                    Severity::Warning,
                    FindingKind::CertificateExpiring,
                    "cert_m"
                ),
                (Severity::Warning, FindingKind::RenewalOverdue, "rd_late"),
                (
                    Severity::Warning,
                    FindingKind::ProvisioningStuck,
                    "rd_stuck"
                ),
            ]
        );
    }

    #[test]
    fn missing_certificates_bare_domains_and_open_credentials() {
        let mut plain = domain("rd_ngrok", "x.ngrok.app", None);
        plain.cname_target = None; // an ngrok subdomain: ngrok's own certificate serves it
        let cred = |id: &str, acl: &[&str]| -> TunnelCredential {
            serde_json::from_value(serde_json::json!({"id": id, "acl": acl})).unwrap()
        };
        let inv = Inventory::new(
            NOW,
            Vec::<crate::sources::ngrok::TlsCertificate>::new(),
            vec![
                domain("rd_gone", "gone.example.com", Some("cert_gone")),
                domain("rd_bare", "bare.example.com", None),
                plain,
            ],
            vec![
                cred("cr_open", &[]),
                cred("cr_star", &["*"]),
                cred("cr_ok", &["bind:a.example.com"]),
            ],
            BTreeSet::from(["cert_gone".to_string()]),
        );
        let findings = evaluate(&inv, &ExpiryPolicy::default(), NOW);
        assert_eq!(
            kinds(&findings),
            vec![
                (
                    Severity::Critical,
                    FindingKind::CertificateMissing,
                    "rd_gone"
                ),
                (
                    Severity::Warning,
                    FindingKind::DomainWithoutCertificate,
                    "rd_bare"
                ),
                (
                    Severity::Info,
                    FindingKind::CredentialUnrestricted,
                    "cr_open"
                ),
                (
                    Severity::Info,
                    FindingKind::CredentialUnrestricted,
                    "cr_star"
                ),
            ]
        );
    }
}
