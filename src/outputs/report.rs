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
    findings
        .iter()
        .map(|f| {
            format!(
                "  {:<8} {:<28} {}\n",
                f.severity.as_str().to_uppercase(),
                f.kind.as_str(),
                f.message
            )
        })
        .collect()
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
        certificates: inventory
            .certificates()
            .iter()
            .map(|c| CertificateRow {
                id: &c.id,
                subject_common_name: c.subject_common_name.as_deref().unwrap_or_default(),
                dns_names: &c.subject_alternative_names.dns_names,
                issuer_common_name: c.issuer_common_name.as_deref().unwrap_or_default(),
                not_before: c.not_before,
                not_after: c.not_after,
                managed: c.is_managed(),
                domains: inventory
                    .domains_using(&c.id)
                    .map(|d| d.domain.as_str())
                    .collect(),
            })
            .collect(),
        domains: inventory
            .domains()
            .iter()
            .map(|d| DomainRow {
                id: &d.id,
                domain: &d.domain,
                certificate_id: d.certificate_id(),
                certificate_source: inventory.certificate_source(d),
                renews_at: d.renews_at(),
                provisioning_job: d.provisioning_job(),
            })
            .collect(),
        credentials: inventory
            .credentials()
            .iter()
            .map(|c| CredentialRow {
                id: &c.id,
                description: c.description.as_deref().unwrap_or_default(),
                created_at: c.created_at,
                acl: &c.acl,
                restricted: c.is_restricted(),
            })
            .collect(),
    }
}

/// The `check --format text` report: a summary line, the findings (most urgent first), then one
/// table per resource.
pub fn to_text(inventory: &Inventory, findings: &[Finding], checked_at: OffsetDateTime) -> String {
    let report = to_json(inventory, findings, checked_at);
    let s = &report.summary;
    let mut out = format!(
        "ngrok account checked at {}: {} certificates, {} domains, {} credentials; {} critical, {} warning, {} info\n",
        format_time(report.checked_at),
        s.certificates,
        s.domains,
        s.credentials,
        s.critical,
        s.warning,
        s.info
    );
    out.push_str("\nFINDINGS\n");
    if findings.is_empty() {
        out.push_str("  none\n");
    }
    out.push_str(&findings_text(findings));
    out.push_str(&table(
        "CERTIFICATES",
        &["ID", "COMMON NAME", "NOT AFTER", "SOURCE", "DOMAINS"],
        report.certificates.iter().map(certificate_cells).collect(),
    ));
    out.push_str(&table(
        "DOMAINS",
        &["ID", "DOMAIN", "CERTIFICATE", "SOURCE", "PROVISIONING"],
        report.domains.iter().map(domain_cells).collect(),
    ));
    out.push_str(&table(
        "CREDENTIALS",
        &["ID", "DESCRIPTION", "RESTRICTED", "ACL"],
        report.credentials.iter().map(credential_cells).collect(),
    ));
    out
}

/// A titled table with columns as wide as their widest cell.
fn table(title: &str, header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let joined: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect();
        format!("  {}\n", joined.join("  ").trim_end())
    };
    let mut t = format!("\n{title}\n");
    t.push_str(&line(header.iter().map(|h| h.to_string()).collect()));
    if rows.is_empty() {
        t.push_str("  none\n");
    }
    for row in rows {
        t.push_str(&line(row));
    }
    t
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
