//! The `check` report: the JSON document (README, "check --format json"), text tables, the summary
//! counts and the findings lines the daemon and the demo print too. Pure functions of
//! (inventory, findings, checked_at); no PEM is ever printed.

use serde::Serialize;
use time::OffsetDateTime;

use crate::model::text::format_time;
use crate::model::{Finding, Severity};
use crate::sources::inventory::Inventory;
use crate::sources::ngrok::ProvisioningJob;

#[derive(Debug, Serialize)]
pub struct Report<'a> {
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    pub summary: Summary,
    pub findings: &'a [Finding],
    pub certificates: Vec<CertificateRow<'a>>,
    pub domains: Vec<DomainRow<'a>>,
    pub credentials: Vec<CredentialRow<'a>>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub certificates: usize,
    pub domains: usize,
    pub credentials: usize,
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
}

impl Summary {
    /// The counts of the account's resources and of the findings by severity.
    pub fn of(inventory: &Inventory, findings: &[Finding]) -> Self {
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        Self {
            certificates: inventory.certificates().len(),
            domains: inventory.domains().len(),
            credentials: inventory.credentials().len(),
            critical: count(Severity::Critical),
            warning: count(Severity::Warning),
            info: count(Severity::Info),
        }
    }

    /// "12 certificates, 9 domains, 3 credentials: 1 critical, 2 warning, 0 info" (the daemon's
    /// STATUS= line and log).
    pub fn line(&self) -> String {
        format!(
            "{} certificates, {} domains, {} credentials: {} critical, {} warning, {} info",
            self.certificates,
            self.domains,
            self.credentials,
            self.critical,
            self.warning,
            self.info
        )
    }
}

/// One line per finding, most urgent first: `  CRITICAL provisioning_failed       message`.
pub fn findings_text(findings: &[Finding]) -> String {
    findings.iter().map(finding_line).collect()
}

fn finding_line(f: &Finding) -> String {
    format!(
        "  {:<8} {:<28} {}\n",
        f.severity.as_str().to_uppercase(),
        f.kind.as_str(),
        f.message
    )
}

#[derive(Debug, Serialize)]
pub struct CertificateRow<'a> {
    pub id: &'a str,
    pub subject_common_name: &'a str,
    pub dns_names: &'a [String],
    pub issuer_common_name: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub managed: bool,
    pub domains: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct DomainRow<'a> {
    pub id: &'a str,
    pub domain: &'a str,
    pub certificate_id: Option<&'a str>,
    pub certificate_source: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    pub renews_at: Option<OffsetDateTime>,
    pub provisioning_job: Option<&'a ProvisioningJob>,
}

#[derive(Debug, Serialize)]
pub struct CredentialRow<'a> {
    pub id: &'a str,
    pub description: &'a str,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    pub acl: &'a [String],
    pub restricted: bool,
}

/// The `check --format json` document.
pub fn to_json<'a>(
    inventory: &'a Inventory,
    findings: &'a [Finding],
    checked_at: OffsetDateTime,
) -> Report<'a> {
    Report {
        checked_at: checked_at.replace_nanosecond(0).unwrap_or(checked_at),
        summary: Summary::of(inventory, findings),
        findings,
        certificates: certificate_rows(inventory).collect(),
        domains: domain_rows(inventory).collect(),
        credentials: credential_rows(inventory).collect(),
    }
}

/// The `check --format json` document, written to `out` row by row as it is serialised: the
/// same JSON as [`to_json`] gives, without holding its rows (at 100,000 domains they are
/// ~25 MB, and the written document ~75 MB).
pub fn write_json(
    out: impl std::io::Write,
    inventory: &Inventory,
    findings: &[Finding],
    checked_at: OffsetDateTime,
    pretty: bool,
) -> serde_json::Result<()> {
    let doc = Streamed {
        checked_at: checked_at.replace_nanosecond(0).unwrap_or(checked_at),
        summary: Summary::of(inventory, findings),
        findings,
        certificates: Rows(|| certificate_rows(inventory)),
        domains: Rows(|| domain_rows(inventory)),
        credentials: Rows(|| credential_rows(inventory)),
    };
    if pretty {
        serde_json::to_writer_pretty(out, &doc)
    } else {
        serde_json::to_writer(out, &doc)
    }
}

/// [`Report`] with rows made as they are written.
#[derive(Serialize)]
struct Streamed<'a, C, D, K> {
    #[serde(with = "time::serde::rfc3339")]
    checked_at: OffsetDateTime,
    summary: Summary,
    findings: &'a [Finding],
    certificates: C,
    domains: D,
    credentials: K,
}

/// A JSON array of the rows the closure's iterator yields, made one at a time.
struct Rows<F>(F);

impl<F, I> Serialize for Rows<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

fn certificate_rows(inventory: &Inventory) -> impl Iterator<Item = CertificateRow<'_>> {
    inventory.certificates().iter().map(|c| CertificateRow {
        id: &c.id,
        subject_common_name: c.subject_common_name.as_deref().unwrap_or_default(),
        dns_names: c.dns_names(),
        issuer_common_name: c.issuer_common_name.as_deref().unwrap_or_default(),
        not_before: c.not_before,
        not_after: c.not_after,
        managed: c.is_managed(),
        domains: inventory
            .domains_using(&c.id)
            .map(|d| d.domain.as_str())
            .collect(),
    })
}

fn domain_rows(inventory: &Inventory) -> impl Iterator<Item = DomainRow<'_>> {
    inventory.domains().iter().map(|d| DomainRow {
        id: &d.id,
        domain: &d.domain,
        certificate_id: d.certificate_id(),
        certificate_source: inventory.certificate_source(d),
        renews_at: d.renews_at(),
        provisioning_job: d.provisioning_job(),
    })
}

fn credential_rows(inventory: &Inventory) -> impl Iterator<Item = CredentialRow<'_>> {
    inventory.credentials().iter().map(|c| CredentialRow {
        id: &c.id,
        description: c.description.as_deref().unwrap_or_default(),
        created_at: c.created_at,
        acl: &c.acl,
        restricted: c.is_restricted(),
    })
}

/// The `check --format text` report: a summary line, the findings (most urgent first), then one
/// table per resource.
pub fn to_text(inventory: &Inventory, findings: &[Finding], checked_at: OffsetDateTime) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_text(&mut out, inventory, findings, checked_at);
    String::from_utf8_lossy(&out).into_owned()
}

/// [`to_text`], written to `out` a row at a time (each table is gone through twice: for its
/// column widths, then to write it), so that 100,000 rows are never held as text at once.
pub fn write_text(
    mut out: impl std::io::Write,
    inventory: &Inventory,
    findings: &[Finding],
    checked_at: OffsetDateTime,
) -> std::io::Result<()> {
    let checked_at = checked_at.replace_nanosecond(0).unwrap_or(checked_at);
    let s = Summary::of(inventory, findings);
    writeln!(
        out,
        "ngrok account checked at {}: {} certificates, {} domains, {} credentials; {} critical, {} warning, {} info",
        format_time(checked_at),
        s.certificates,
        s.domains,
        s.credentials,
        s.critical,
        s.warning,
        s.info
    )?;
    out.write_all(b"\nFINDINGS\n")?;
    if findings.is_empty() {
        out.write_all(b"  none\n")?;
    }
    for f in findings {
        out.write_all(finding_line(f).as_bytes())?;
    }
    write_table(
        &mut out,
        "CERTIFICATES",
        &["ID", "COMMON NAME", "NOT AFTER", "SOURCE", "DOMAINS"],
        || certificate_rows(inventory).map(|c| certificate_cells(&c)),
    )?;
    write_table(
        &mut out,
        "DOMAINS",
        &["ID", "DOMAIN", "CERTIFICATE", "SOURCE", "PROVISIONING"],
        || domain_rows(inventory).map(|d| domain_cells(&d)),
    )?;
    write_table(
        &mut out,
        "CREDENTIALS",
        &["ID", "DESCRIPTION", "RESTRICTED", "ACL"],
        || credential_rows(inventory).map(|c| credential_cells(&c)),
    )
}

/// A titled table with columns as wide as their widest cell; `rows` is called twice.
fn write_table<I: Iterator<Item = Vec<String>>>(
    out: &mut impl std::io::Write,
    title: &str,
    header: &[&str],
    rows: impl Fn() -> I,
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    let mut any = false;
    for row in rows() {
        any = true;
        for (w, cell) in widths.iter_mut().zip(&row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn std::io::Write, cells: &[String]| -> std::io::Result<()> {
        let joined: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect();
        writeln!(out, "  {}", joined.join("  ").trim_end())
    };
    writeln!(out, "\n{title}")?;
    line(
        out,
        &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    )?;
    if !any {
        writeln!(out, "  none")?;
    }
    for row in rows() {
        line(out, &row)?;
    }
    Ok(())
}

fn list_or_dash(items: &[impl AsRef<str>]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn certificate_cells(c: &CertificateRow<'_>) -> Vec<String> {
    vec![
        c.id.to_string(),
        c.subject_common_name.to_string(),
        format_time(c.not_after),
        if c.managed { "managed" } else { "uploaded" }.to_string(),
        list_or_dash(&c.domains),
    ]
}

fn domain_cells(d: &DomainRow<'_>) -> Vec<String> {
    let job = match d.provisioning_job {
        Some(j) => j
            .error_code
            .clone()
            .unwrap_or_else(|| "in progress".to_string()),
        None => "-".to_string(),
    };
    vec![
        d.id.to_string(),
        d.domain.to_string(),
        d.certificate_id.unwrap_or("-").to_string(),
        d.certificate_source.to_string(),
        job,
    ]
}

fn credential_cells(c: &CredentialRow<'_>) -> Vec<String> {
    vec![
        c.id.to_string(),
        c.description.to_string(),
        c.restricted.to_string(),
        list_or_dash(c.acl),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FindingKind;
    use serde_json::json;
    use std::collections::BTreeSet;
    use time::macros::datetime;

    fn account() -> Inventory {
        let cert = |id: &str, managed: bool| {
            serde_json::from_value::<crate::sources::ngrok::TlsCertificate>(json!({
                "id": id, "subject_common_name": "a.example.com",
                "subject_alternative_names": {"dns_names": ["a.example.com", "b.example.com"]},
                "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z",
                "issued_at": if managed { json!("2026-01-01T00:00:00Z") } else { json!(null) },
            }))
            .unwrap()
        };
        let domain = |id: &str, name: &str, cert: Option<&str>, extra: serde_json::Value| {
            let mut d =
                json!({"id": id, "domain": name, "certificate": cert.map(|c| json!({"id": c}))});
            if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
                d.extend(extra.clone());
            }
            serde_json::from_value(d).unwrap()
        };
        let job = json!({"certificate_management_policy": {"authority": "letsencrypt"},
            "certificate_management_status": {"renews_at": "2026-12-01T00:00:00Z",
                "provisioning_job": {"error_code": "DNS_ERROR", "msg": "no CNAME"}}});
        Inventory::new(
            datetime!(2026-11-25 10:00 UTC),
            vec![
                cert("cert_1", false),
                cert("cert_2", true),
                cert("cert_3", false),
            ],
            vec![
                domain("rd_1", "a.example.com", Some("cert_1"), json!({})),
                domain("rd_2", "b.example.com", Some("cert_1"), json!({})),
                domain("rd_3", "c.example.com", Some("cert_2"), job),
                domain("rd_4", "d.example.com", None, json!({})),
            ],
            vec![
                serde_json::from_value(json!({"id": "cr_1", "acl": ["bind:*.example.com"]}))
                    .unwrap(),
            ],
            BTreeSet::new(),
        )
    }

    #[test]
    fn the_streamed_document_is_the_built_one_compact_and_pretty() {
        let inventory = account();
        let findings = vec![Finding {
            severity: Severity::Warning,
            kind: FindingKind::CertificateUnattached,
            resource_id: "cert_3".into(),
            domain: None,
            message: "certificate cert_3 is not attached".into(),
            not_after: None,
        }];
        let at = datetime!(2026-11-25 10:00:00.5 UTC);
        let built = serde_json::to_value(to_json(&inventory, &findings, at)).unwrap();
        assert_eq!(
            built["certificates"][0]["domains"],
            json!(["a.example.com", "b.example.com"])
        );
        assert_eq!(
            built["domains"][2]["provisioning_job"]["error_code"],
            "DNS_ERROR"
        );
        assert_eq!(built["checked_at"], "2026-11-25T10:00:00Z");
        for pretty in [false, true] {
            let mut out = Vec::new();
            write_json(&mut out, &inventory, &findings, at, pretty).unwrap();
            let streamed: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(streamed, built, "pretty = {pretty}");
            assert_eq!(out.contains(&b'\n'), pretty);
        }
    }

    #[test]
    fn the_text_report_has_a_table_per_resource_in_aligned_columns() {
        let inventory = account();
        let text = to_text(&inventory, &[], datetime!(2026-11-25 10:00:00.5 UTC));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ngrok account checked at 2026-11-25T10:00:00Z: 3 certificates, 4 domains, 1 credentials; 0 critical, 0 warning, 0 info"
        );
        assert_eq!(&lines[1..4], ["", "FINDINGS", "  none"]);
        let at = |title: &str| lines.iter().position(|l| *l == title).unwrap();
        let domains = &lines[at("DOMAINS") + 1..at("CREDENTIALS") - 1];
        assert_eq!(
            domains,
            [
                "  ID    DOMAIN         CERTIFICATE  SOURCE    PROVISIONING",
                "  rd_1  a.example.com  cert_1       uploaded  -",
                "  rd_2  b.example.com  cert_1       uploaded  -",
                "  rd_3  c.example.com  cert_2       managed   DNS_ERROR",
                "  rd_4  d.example.com  -            none      -",
            ]
        );
        let certificates = &lines[at("CERTIFICATES") + 1..at("DOMAINS") - 1];
        assert_eq!(certificates.len(), 4);
        assert!(certificates[1].ends_with("uploaded  a.example.com,b.example.com"));
        assert!(
            certificates[3].ends_with("uploaded  -"),
            "{}",
            certificates[3]
        );
    }
}
