//! The plain value types every layer shares: severity, finding kinds and findings, the expiry
//! policy, and the small text helpers for times and I/O errors. Imports nothing of the crate but
//! its own submodules.

pub mod certs;
pub mod fs;
pub mod text;
pub mod trust;
pub mod url;

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

/// Thresholds from `[expiry]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    pub warning: Duration,
    pub critical: Duration,
    pub renewal_grace: Duration,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self {
            warning: Duration::from_secs(30 * 86_400),
            critical: Duration::from_secs(7 * 86_400),
            renewal_grace: Duration::from_secs(86_400),
        }
    }
}

/// Ordered: `Info < Warning < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The finding kinds (fixed names: checks outside the project match on them; the README lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    CertificateExpired,
    CertificateExpiring,
    CertificateUnattached,
    ProvisioningFailed,
    ProvisioningStuck,
    RenewalOverdue,
    CertificateMissing,
    DomainWithoutCertificate,
    CredentialUnrestricted,
    WatchInvalid,
    RotationFailed,
    SyncFailed,
    EdgeCertificateMismatch,
    EdgeCertificateInvalid,
    EdgeUnreachable,
    DnsMisconfigured,
    CertificateNameMismatch,
    CertificateChainIncomplete,
    CertificateWeak,
}

impl FindingKind {
    pub const ALL: [FindingKind; 19] = [
        FindingKind::CertificateExpired,
        FindingKind::CertificateExpiring,
        FindingKind::CertificateUnattached,
        FindingKind::ProvisioningFailed,
        FindingKind::ProvisioningStuck,
        FindingKind::RenewalOverdue,
        FindingKind::CertificateMissing,
        FindingKind::DomainWithoutCertificate,
        FindingKind::CredentialUnrestricted,
        FindingKind::WatchInvalid,
        FindingKind::RotationFailed,
        FindingKind::SyncFailed,
        FindingKind::EdgeCertificateMismatch,
        FindingKind::EdgeCertificateInvalid,
        FindingKind::EdgeUnreachable,
        FindingKind::DnsMisconfigured,
        FindingKind::CertificateNameMismatch,
        FindingKind::CertificateChainIncomplete,
        FindingKind::CertificateWeak,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::CertificateExpired => "certificate_expired",
            FindingKind::CertificateExpiring => "certificate_expiring",
            FindingKind::CertificateUnattached => "certificate_unattached",
            FindingKind::ProvisioningFailed => "provisioning_failed",
            FindingKind::ProvisioningStuck => "provisioning_stuck",
            FindingKind::RenewalOverdue => "renewal_overdue",
            FindingKind::CertificateMissing => "certificate_missing",
            FindingKind::DomainWithoutCertificate => "domain_without_certificate",
            FindingKind::CredentialUnrestricted => "credential_unrestricted",
            FindingKind::WatchInvalid => "watch_invalid",
            FindingKind::RotationFailed => "rotation_failed",
            FindingKind::SyncFailed => "sync_failed",
            FindingKind::EdgeCertificateMismatch => "edge_certificate_mismatch",
            FindingKind::EdgeCertificateInvalid => "edge_certificate_invalid",
            FindingKind::EdgeUnreachable => "edge_unreachable",
            FindingKind::DnsMisconfigured => "dns_misconfigured",
            FindingKind::CertificateNameMismatch => "certificate_name_mismatch",
            FindingKind::CertificateChainIncomplete => "certificate_chain_incomplete",
            FindingKind::CertificateWeak => "certificate_weak",
        }
    }
}

/// One thing worth telling a person about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub kind: FindingKind,
    /// The ngrok id the finding is about (`cert_…`, `rd_…`, `cr_…`) or a watch name.
    pub resource_id: String,
    /// The domain name where there is one.
    pub domain: Option<String>,
    pub message: String,
    /// The certificate's expiry, for expiry findings.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
}
