//! Findings from how a browser would judge each attached certificate (the facts taken from its
//! PEM while its page was listed): a domain its SANs do not cover, a chain that does not reach a
//! trusted root or is out of order, weak keys or signatures. Pure; no clock, no I/O.
//!
//! Managed certificates are ngrok's to issue: only a name they do not cover is reported for
//! them (their expiry is `evaluate`'s).

use crate::model::judge::ChainVerdict;
use crate::model::{Finding, FindingKind, Severity};
use crate::sources::inventory::{Certificate, Inventory};

/// The judgement findings of one certificate, for the domains that use it.
pub fn findings(inventory: &Inventory, certificate: &Certificate, out: &mut Vec<Finding>) {
    let Some(facts) = certificate.facts() else {
        return;
    };
    let mut domains: Vec<&str> = inventory
        .domains_using(&certificate.id)
        .map(|d| d.domain.as_str())
        .collect();
    if domains.is_empty() {
        return;
    }
    domains.sort_unstable();
    domains.dedup();
    let name = super::evaluate::certificate_name(certificate);
    let finding = |severity, kind, domain: &str, message: String| Finding {
        severity,
        kind,
        resource_id: certificate.id.clone(),
        domain: Some(domain.to_string()),
        message,
        not_after: None,
    };
    let sans = if facts.dns_names.is_empty() {
        "it has no DNS names (browsers ignore the subject's CN)".to_string()
    } else {
        format!("its DNS names are {}", facts.dns_names.join(", "))
    };
    for domain in facts.uncovered(domains.iter().copied()) {
        let fix = if certificate.is_managed() {
            "ngrok issued it for other names: remove and re-add the domain's certificate management policy"
        } else {
            "attach a certificate whose subjectAltName covers it"
        };
        out.push(finding(
            Severity::Critical,
            FindingKind::CertificateNameMismatch,
            domain,
            format!("certificate {name} is attached to {domain} but does not cover it: {sans}; browsers refuse the connection; {fix}"),
        ));
    }
    if certificate.is_managed() {
        return;
    }
    let used_by = domains.join(", ");
    let problems = facts.chain_problems();
    if !problems.is_empty() {
        out.push(finding(
            Severity::Warning,
            FindingKind::CertificateChainIncomplete,
            domains[0],
            format!(
                "uploaded certificate {name} for {used_by}: {}; clients that cannot build the chain refuse the connection",
                problems.join("; and ")
            ),
        ));
    }
    if !facts.weak.is_empty() {
        let refused = if facts.chain == ChainVerdict::Weak {
            "browsers refuse it"
        } else {
            "browsers warn about or refuse it"
        };
        out.push(finding(
            Severity::Warning,
            FindingKind::CertificateWeak,
            domains[0],
            format!(
                "uploaded certificate {name} for {used_by} is weak: {}; {refused}: re-issue it with an ECDSA P-256 or a 2048-bit RSA key, signed with SHA-256",
                facts
                    .weak
                    .iter()
                    .map(|w| w.words.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::evaluate::evaluate;
    use crate::model::certs::generate::{Signer, Spec};
    use crate::model::trust::Trust;
    use crate::model::ExpiryPolicy;
    use crate::sources::ngrok::{ReservedDomain, TlsCertificate};
    use std::collections::BTreeSet;
    use time::macros::datetime;
    use time::OffsetDateTime;

    const NOW: OffsetDateTime = datetime!(2027-01-01 12:00 UTC);

    /// The API's answer for a certificate with this chain.
    fn listed(id: &str, pem: &str, managed: bool) -> TlsCertificate {
        let chain = crate::model::certs::parse_chain(pem.as_bytes()).unwrap();
        let mut c: TlsCertificate = serde_json::from_value(serde_json::json!({
            "id": id,
            "subject_common_name": chain.leaf.subject_common_name,
            "not_before": crate::model::text::format_time(chain.leaf.not_before),
            "not_after": crate::model::text::format_time(chain.leaf.not_after),
            "issued_at": if managed { serde_json::json!("2026-12-01T00:00:00Z") } else { serde_json::Value::Null },
        }))
        .unwrap();
        c.certificate_pem = Some(pem.to_string());
        c
    }

    fn domain(id: &str, name: &str, certificate: &str) -> ReservedDomain {
        serde_json::from_value(serde_json::json!({
            "id": id, "domain": name, "certificate": {"id": certificate},
        }))
        .unwrap()
    }

    fn pem(signer: &Signer, names: &[&str]) -> String {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        signer
            .generate(&Spec {
                common_name: &names[0],
                dns_names: &names,
                not_before: NOW - time::Duration::days(10),
                not_after: NOW + time::Duration::days(80),
            })
            .unwrap()
            .chain_pem
    }

    fn leaf_only(chain_pem: &str) -> String {
        chain_pem
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap()
            .to_string()
    }

    fn fixture(name: &str) -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/weak");
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    /// One certificate of each kind, judged against the seed root and the weak fixtures' root.
    fn account() -> Inventory {
        let root = Signer::new("Test Root").unwrap();
        let int = root.intermediate("Test Intermediate", false).unwrap();
        let stranger = Signer::new("Private Root").unwrap();
        let anchors = format!("{}{}", root.root_pem(), fixture("root.pem"));
        let anchors = crate::model::certs::parse_chain(anchors.as_bytes()).unwrap();
        let trust = Trust::with_anchors(&anchors.certificates).unwrap();
        let judged =
            |id, pem: &str, managed| Certificate::judged(listed(id, pem, managed), &trust, NOW);
        let certificates = vec![
            judged("cert_good", &pem(&int, &["good.example.com"]), false),
            judged("cert_name", &pem(&int, &["other.example.com"]), false),
            judged(
                "cert_alone",
                &leaf_only(&pem(&int, &["alone.example.com"])),
                false,
            ),
            judged(
                "cert_private",
                &pem(&stranger, &["private.example.com"]),
                false,
            ),
            judged("cert_rsa", &fixture("rsa1024.pem"), false),
            judged("cert_sha1", &fixture("sha1.pem"), false),
            // Managed by ngrok with an unknown issuer and a name it does not cover: only the name.
            judged(
                "cert_managed",
                &pem(&stranger, &["elsewhere.example.com"]),
                true,
            ),
            // Not attached: not judged.
            judged(
                "cert_spare",
                &leaf_only(&pem(&stranger, &["x.example.com"])),
                false,
            ),
        ];
        let domains = vec![
            domain("rd_good", "good.example.com", "cert_good"),
            domain("rd_name", "name.example.com", "cert_name"),
            domain("rd_alone", "alone.example.com", "cert_alone"),
            domain("rd_private", "private.example.com", "cert_private"),
            domain("rd_rsa", "weak-rsa1024.example.com", "cert_rsa"),
            domain("rd_sha1", "weak-sha1.example.com", "cert_sha1"),
            domain("rd_managed", "managed.example.com", "cert_managed"),
        ];
        Inventory::new(NOW, certificates, domains, Vec::new(), BTreeSet::new())
    }

    #[test]
    fn each_kind_of_certificate_gives_its_finding_once() {
        let inventory = account();
        let findings = evaluate(&inventory, &ExpiryPolicy::default(), NOW);
        let mut got: Vec<(&str, &str, &str)> = findings
            .iter()
            .filter(|f| f.kind != FindingKind::CertificateUnattached)
            .map(|f| {
                (
                    f.kind.as_str(),
                    f.resource_id.as_str(),
                    f.domain.as_deref().unwrap_or(""),
                )
            })
            .collect();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                (
                    "certificate_chain_incomplete",
                    "cert_alone",
                    "alone.example.com"
                ),
                (
                    "certificate_chain_incomplete",
                    "cert_private",
                    "private.example.com"
                ),
                (
                    "certificate_name_mismatch",
                    "cert_managed",
                    "managed.example.com"
                ),
                ("certificate_name_mismatch", "cert_name", "name.example.com"),
                ("certificate_weak", "cert_rsa", "weak-rsa1024.example.com"),
                ("certificate_weak", "cert_sha1", "weak-sha1.example.com"),
            ],
            "{findings:#?}"
        );
        let message = |id: &str| {
            findings
                .iter()
                .find(|f| f.resource_id == id && f.kind != FindingKind::CertificateUnattached)
                .map(|f| (f.severity, f.message.as_str()))
                .unwrap()
        };
        let (severity, m) = message("cert_name");
        assert_eq!(severity, Severity::Critical);
        assert!(
            m.contains("does not cover it: its DNS names are other.example.com"),
            "{m}"
        );
        let (severity, m) = message("cert_alone");
        assert_eq!(severity, Severity::Warning);
        assert!(m.contains("without its intermediate certificates"), "{m}");
        assert!(message("cert_private").1.contains("edge.trust_anchors"));
        assert!(message("cert_rsa").1.contains("1024-bit RSA key"));
        assert!(message("cert_sha1").1.contains("signed with SHA-1"));
    }

    #[test]
    fn unjudged_certificates_give_no_judgement() {
        let root = Signer::new("Test Root").unwrap();
        let listed = listed("cert_x", &leaf_only(&pem(&root, &["x.example.com"])), false);
        let inventory = Inventory::new(
            NOW,
            vec![Certificate::from_listed(listed)],
            vec![domain("rd_y", "y.example.com", "cert_x")],
            Vec::new(),
            BTreeSet::new(),
        );
        assert!(evaluate(&inventory, &ExpiryPolicy::default(), NOW).is_empty());
    }
}
