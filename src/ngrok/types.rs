//! Wire types of the ngrok API as the client reads and writes them.
//!
//! Lenient on purpose: every field the reference calls optional may be absent or null, and unknown
//! fields are ignored, so a new field or an omitted `description` never breaks a sync. Only what a
//! resource cannot exist without (`id`, a certificate's validity, a domain's name) is required.
//! The simulator does not use these types for its responses, so a misspelt field here cannot be
//! hidden by the same misspelling there.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// `Ref`: a reference to another resource.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Ref {
    pub id: String,
    #[serde(default)]
    pub uri: Option<String>,
}

/// `TLSCertificateSANs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct TlsCertificateSans {
    #[serde(default, deserialize_with = "null_as_default")]
    pub dns_names: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ips: Vec<String>,
}

/// `TLSCertificate`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TlsCertificate {
    pub id: String,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: Option<String>,
    #[serde(default)]
    pub certificate_pem: Option<String>,
    #[serde(default)]
    pub subject_common_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub subject_alternative_names: TlsCertificateSans,
    /// Set when ngrok issued the certificate (managed); null for uploaded ones.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub issued_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    #[serde(default, deserialize_with = "null_as_default")]
    pub key_usages: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub extended_key_usages: Vec<String>,
    #[serde(default)]
    pub private_key_type: Option<String>,
    #[serde(default)]
    pub issuer_common_name: Option<String>,
    #[serde(default)]
    pub serial_number: Option<String>,
    #[serde(default)]
    pub subject_organization: Option<String>,
    #[serde(default)]
    pub subject_organizational_unit: Option<String>,
    #[serde(default)]
    pub subject_locality: Option<String>,
    #[serde(default)]
    pub subject_province: Option<String>,
    #[serde(default)]
    pub subject_country: Option<String>,
}

impl TlsCertificate {
    /// ngrok issued it (a managed certificate) rather than a user uploading it.
    pub fn is_managed(&self) -> bool {
        self.issued_at.is_some()
    }
}

/// `ReservedDomainCertPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CertPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_type: Option<String>,
}

/// `ReservedDomainCertJob`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ProvisioningJob {
    /// `DNS_ERROR` (permanent: the user must fix DNS) or `INTERNAL_ERROR` (temporary).
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retries_at: Option<OffsetDateTime>,
}

/// `ReservedDomainCertStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct CertStatus {
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub renews_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub provisioning_job: Option<ProvisioningJob>,
}

/// `ReservedDomain`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReservedDomain {
    pub id: String,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: Option<String>,
    pub domain: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub cname_target: Option<String>,
    #[serde(default)]
    pub certificate: Option<Ref>,
    #[serde(default)]
    pub certificate_management_policy: Option<CertPolicy>,
    #[serde(default)]
    pub certificate_management_status: Option<CertStatus>,
    #[serde(default)]
    pub acme_challenge_cname_target: Option<String>,
    #[serde(default)]
    pub http_endpoint_configuration: Option<Ref>,
    #[serde(default)]
    pub https_endpoint_configuration: Option<Ref>,
}

impl ReservedDomain {
    pub fn certificate_id(&self) -> Option<&str> {
        self.certificate.as_ref().map(|r| r.id.as_str())
    }
    pub fn is_managed(&self) -> bool {
        self.certificate_management_policy.is_some()
    }
    pub fn provisioning_job(&self) -> Option<&ProvisioningJob> {
        self.certificate_management_status
            .as_ref()
            .and_then(|s| s.provisioning_job.as_ref())
    }
    pub fn renews_at(&self) -> Option<OffsetDateTime> {
        self.certificate_management_status
            .as_ref()
            .and_then(|s| s.renews_at)
    }
}

/// `Credential` (a tunnel authtoken credential).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TunnelCredential {
    pub id: String,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: Option<String>,
    /// Only ever set in the response to a create; a secret: never logged or printed.
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub acl: Vec<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
}

impl TunnelCredential {
    /// An empty ACL or a `*` rule permits binding anything.
    pub fn is_restricted(&self) -> bool {
        !self.acl.is_empty() && !self.acl.iter().any(|rule| rule.trim() == "*")
    }
}

/// One page of a list response; `items` is the resource-named array.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_uri: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TlsCertificateList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub tls_certificates: Vec<TlsCertificate>,
    #[serde(default)]
    pub next_page_uri: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReservedDomainList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub reserved_domains: Vec<ReservedDomain>,
    #[serde(default)]
    pub next_page_uri: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TunnelCredentialList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub credentials: Vec<TunnelCredential>,
    #[serde(default)]
    pub next_page_uri: Option<String>,
}

/// Body of `POST /tls_certificates`. The private key is a secret: this type has no Debug.
#[derive(Serialize)]
pub struct TlsCertificateCreate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    pub certificate_pem: String,
    pub private_key_pem: String,
}

/// Body of `PATCH /tls_certificates/{id}`.
#[derive(Debug, Default, Serialize)]
pub struct TlsCertificateUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

/// Body of `POST /reserved_domains`.
#[derive(Debug, Default, Serialize)]
pub struct ReservedDomainCreate {
    pub domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_management_policy: Option<CertPolicy>,
}

/// Body of `PATCH /reserved_domains/{id}`: only the fields that are set are sent, so a rotation
/// sends `certificate_id` alone.
#[derive(Debug, Default, Serialize)]
pub struct ReservedDomainUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_management_policy: Option<CertPolicy>,
}

/// Body of `POST /credentials`.
#[derive(Debug, Default, Serialize)]
pub struct TunnelCredentialCreate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}

/// Body of `PATCH /credentials/{id}`.
#[derive(Debug, Default, Serialize)]
pub struct TunnelCredentialUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<String>>,
}

/// The documented error body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub details: Option<ErrorDetails>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorDetails {
    #[serde(default)]
    pub operation_id: Option<String>,
}

/// `null` where a list or object is expected reads as empty.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
