//! Wire types of the ngrok API as the client reads and writes them.
//!
//! Lenient on purpose: every field the reference calls optional may be absent or null, and unknown
//! fields are ignored, so a new field or an omitted `description` never breaks a sync. Only what a
//! resource cannot exist without (`id`, a certificate's validity, a domain's name) is required.
//! The simulator does not use these types for its responses, so a misspelt field here cannot be
//! hidden by the same misspelling there.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// `Ref`: a reference to another resource, by id (its `uri` is not read).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Ref {
    pub id: String,
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

/// `ReservedDomain`, with the fields the watchdog reads: an account's every domain is kept in
/// memory between syncs, so its `uri`, `description`, `metadata`, `region` and endpoint
/// configurations are not (at 100,000 domains they were ~14 MB).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReservedDomain {
    pub id: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    pub domain: String,
    #[serde(default)]
    pub cname_target: Option<String>,
    #[serde(default)]
    pub certificate: Option<Ref>,
    // Boxed: absent on uploaded-certificate domains, and a box is 8 bytes where the value
    // inline is 48 or 96.
    #[serde(default)]
    pub certificate_management_policy: Option<Box<CertPolicy>>,
    #[serde(default)]
    pub certificate_management_status: Option<Box<CertStatus>>,
    #[serde(default)]
    pub acme_challenge_cname_target: Option<String>,
    /// The account's dev domain (newer API responses; absent or null means false).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub is_dev: bool,
}

impl ReservedDomain {
    /// A domain under ngrok's own names (the dev domain, `*.ngrok.app`, …): ngrok's wildcard
    /// certificate serves it. Decided from what the API says — no `cname_target`, or `is_dev` —
    /// never from a list of suffixes.
    pub fn is_ngrok_owned(&self) -> bool {
        self.is_dev || self.cname_target.is_none()
    }
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

/// One page of `GET /tls_certificates`. Public so that `fuzz/` can decode it.
#[derive(Debug, Deserialize)]
pub struct TlsCertificateList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub tls_certificates: Vec<TlsCertificate>,
    #[serde(default)]
    pub next_page_uri: Option<String>,
}

/// One page of `GET /reserved_domains`. Public so that `fuzz/` can decode it.
#[derive(Debug, Deserialize)]
pub struct ReservedDomainList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub reserved_domains: Vec<ReservedDomain>,
    #[serde(default)]
    pub next_page_uri: Option<String>,
}

/// One page of `GET /credentials`. Public so that `fuzz/` can decode it.
#[derive(Debug, Deserialize)]
pub struct TunnelCredentialList {
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

#[cfg(test)]
mod tests {
    //! Every documented example parses, with the documented values.
    use super::*;
    use std::path::PathBuf;
    use time::macros::datetime;

    fn examples_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ngrok-api-examples")
    }

    fn read(name: &str) -> String {
        let path = examples_dir().join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (shared/ must sit beside the repository)",
                path.display()
            )
        })
    }

    fn parse<T: serde::de::DeserializeOwned>(name: &str) -> T {
        serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn check_example_certificate(c: &TlsCertificate, id: &str) {
        assert_eq!(c.id, id);
        assert_eq!(
            c.uri.as_deref(),
            Some(format!("https://api.ngrok.com/tls_certificates/{id}").as_str())
        );
        assert_eq!(c.subject_common_name.as_deref(), Some("example.com"));
        assert_eq!(c.issuer_common_name.as_deref(), Some("example.com"));
        assert_eq!(c.not_before, datetime!(2020-03-24 18:18:19 UTC));
        assert_eq!(c.not_after, datetime!(2020-04-23 18:18:19 UTC));
        assert_eq!(c.issued_at, None);
        assert!(!c.is_managed());
        assert_eq!(c.private_key_type.as_deref(), Some("rsa"));
        assert_eq!(
            c.serial_number.as_deref(),
            Some("054ba70dd03882382d11b640f30f4b8e1be5ddb1")
        );
        assert!(c.subject_alternative_names.dns_names.is_empty());
        assert!(c.subject_alternative_names.ips.is_empty());
        assert_eq!(c.subject_country.as_deref(), Some(""));
        let pem = c.certificate_pem.as_deref().unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\nMIIDDTCC"));
        assert!(pem.ends_with("-----END CERTIFICATE-----\n"));
    }

    fn check_example_domain_with_policy(d: &ReservedDomain) {
        assert_eq!(d.id, "rd_2cSjwJQR1ZzXgCTiSSiXDJgxygI");
        assert_eq!(d.domain, "myapp.mydomain.com");
        assert_eq!(d.certificate, None);
        assert_eq!(
            d.certificate_management_policy.as_deref(),
            Some(&CertPolicy {
                authority: Some("letsencrypt".into()),
                private_key_type: Some("ecdsa".into())
            })
        );
        assert_eq!(d.certificate_management_status, None);
        assert_eq!(d.created_at, Some(datetime!(2024-02-16 19:35:10 UTC)));
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one assertion block per documented example"
    )]
    #[test]
    fn every_documented_example_parses_with_its_values() {
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(examples_dir()).expect("tests/fixtures/ngrok-api-examples") {
            let name = entry.unwrap().file_name().into_string().unwrap();
            match name.as_str() {
                "create_tls_certificate.response.json" => {
                    let c: TlsCertificate = parse(&name);
                    check_example_certificate(&c, "cert_2rwwl6y1UCOM1WjSQhSj2VPegVh");
                    assert_eq!(c.description, None);
                    assert_eq!(c.metadata, None);
                    assert_eq!(c.created_at, Some(datetime!(2025-01-21 18:19:52 UTC)));
                }
                "get_tls_certificate.response.json" | "update_tls_certificate.response.json" => {
                    let c: TlsCertificate = parse(&name);
                    check_example_certificate(&c, "cert_2rwwl6y1UCOM1WjSQhSj2VPegVh");
                    assert_eq!(c.metadata.as_deref(), Some("{\"example\": true}"));
                }
                "list_tls_certificates.response.json" => {
                    let l: TlsCertificateList = parse(&name);
                    assert_eq!(l.next_page_uri, None);
                    assert_eq!(l.tls_certificates.len(), 2);
                    check_example_certificate(
                        &l.tls_certificates[0],
                        "cert_2rwwiJpwl6XDu1WKzHVQuLm5oPo",
                    );
                    check_example_certificate(
                        &l.tls_certificates[1],
                        "cert_2rwwl6y1UCOM1WjSQhSj2VPegVh",
                    );
                    assert_eq!(
                        l.tls_certificates[0].created_at,
                        Some(datetime!(2025-01-21 18:19:30 UTC))
                    );
                    assert!(l.tls_certificates.iter().all(|c| c.description.is_none()));
                }
                "create_tls_certificate.request.json" => {
                    let v: serde_json::Value = parse(&name);
                    assert!(v["certificate_pem"]
                        .as_str()
                        .unwrap()
                        .starts_with("-----BEGIN CERTIFICATE-----"));
                    assert!(v["private_key_pem"]
                        .as_str()
                        .unwrap()
                        .starts_with("-----BEGIN PRIVATE KEY-----"));
                }
                "update_tls_certificate.request.json" => {
                    let v: serde_json::Value = parse(&name);
                    assert_eq!(v["metadata"], "{\"example\": true}");
                }
                "create_reserved_domain.response.json" => {
                    let d: ReservedDomain = parse(&name);
                    assert_eq!(d.id, "rd_2cSjwJQR1ZzXgCTiSSiXDJgxygI");
                    assert_eq!(d.domain, "myapp.mydomain.com");
                    assert_eq!(d.certificate_id(), Some("cert_2cSjwGgYrGJdXQKfDJGdmj7ajCT"));
                    assert!(!d.is_managed());
                    assert_eq!(d.certificate_management_status, None);
                    assert_eq!(
                        d.cname_target.as_deref(),
                        Some("2udamkamcl8pjmrff.2sqweveb4ays7xoj4.local-ngrok-cname.com")
                    );
                    assert_eq!(d.acme_challenge_cname_target, None);
                }
                "get_reserved_domain.response.json" | "update_reserved_domain.response.json" => {
                    let d: ReservedDomain = parse(&name);
                    check_example_domain_with_policy(&d);
                }
                "list_reserved_domains.response.json" => {
                    let l: ReservedDomainList = parse(&name);
                    assert_eq!(l.next_page_uri, None);
                    assert_eq!(l.reserved_domains.len(), 2);
                    let managed = &l.reserved_domains[0];
                    assert_eq!(managed.id, "rd_2cSjwKpNfxN5VHdSXGQd1nSaOYq");
                    assert_eq!(managed.domain, "manage-0002.app.example.com");
                    assert!(managed.is_managed());
                    assert_eq!(managed.certificate_id(), None);
                    assert_eq!(managed.renews_at(), None);
                    let job = managed.provisioning_job().unwrap();
                    assert_eq!(job.error_code, None);
                    assert_eq!(
                        job.msg.as_deref(),
                        Some("Managed certificate provisioning in progress.")
                    );
                    assert_eq!(job.started_at, Some(datetime!(2024-02-16 19:35:10 UTC)));
                    assert_eq!(job.retries_at, None);
                    let uploaded = &l.reserved_domains[1];
                    assert_eq!(
                        uploaded.certificate_id(),
                        Some("cert_2cSjwGgYrGJdXQKfDJGdmj7ajCT")
                    );
                    assert!(!uploaded.is_managed());
                }
                "create_reserved_domain.request.json" => {
                    let v: serde_json::Value = parse(&name);
                    assert_eq!(v["certificate_id"], "cert_2cSjwGgYrGJdXQKfDJGdmj7ajCT");
                    assert_eq!(v["domain"], "myapp.mydomain.com");
                }
                "update_reserved_domain.request.json" => {
                    let v: serde_json::Value = parse(&name);
                    assert_eq!(
                        v["certificate_management_policy"]["authority"],
                        "letsencrypt"
                    );
                }
                "create_tunnel_credential.response.json" => {
                    let c: TunnelCredential = parse(&name);
                    assert_eq!(c.id, "cr_2TMGGL7UOvE5IkjdLwjKrOlUJm3");
                    assert_eq!(
                        c.token.as_deref(),
                        Some("2TMGGL7UOvE5IkjdLwjKrOlUJm3_5JsFk4rfMHdTH7B96qRVD")
                    );
                    assert_eq!(
                        c.description.as_deref(),
                        Some("development cred for alan@example.com")
                    );
                    assert!(c.acl.is_empty() && !c.is_restricted());
                    assert_eq!(
                        c.owner_id.as_deref(),
                        Some("usr_2TMGG635o87KDP13PBjUDx2rzJY")
                    );
                    assert_eq!(c.created_at, Some(datetime!(2023-07-31 23:17:18 UTC)));
                }
                "get_tunnel_credential.response.json"
                | "update_tunnel_credential.response.json" => {
                    let c: TunnelCredential = parse(&name);
                    assert_eq!(c.id, "cr_2TMGGL7UOvE5IkjdLwjKrOlUJm3");
                    assert_eq!(c.token, None);
                    assert_eq!(c.description.as_deref(), Some("device alpha-2"));
                    assert_eq!(
                        c.metadata.as_deref(),
                        Some("{\"device_id\": \"d5111ba7-0cc5-4ba3-8398-e6c79e4e89c2\"}")
                    );
                }
                "list_tunnel_credentials.response.json" => {
                    let l: TunnelCredentialList = parse(&name);
                    assert_eq!(l.next_page_uri, None);
                    let ids: Vec<&str> = l.credentials.iter().map(|c| c.id.as_str()).collect();
                    assert_eq!(
                        ids,
                        [
                            "cr_2TMGGL7UOvE5IkjdLwjKrOlUJm3",
                            "cr_2TMGGIw07ve6R3DQzMrN3964IKQ",
                            "cr_2TMGG9nG76NdxNAb6B33fiqs1DL"
                        ]
                    );
                    assert_eq!(
                        l.credentials[1].acl,
                        ["bind:1.tcp.ngrok.io:20002", "bind:132.devices.company.com"]
                    );
                    assert!(l.credentials[1].is_restricted());
                    assert!(!l.credentials[0].is_restricted());
                    assert_eq!(
                        l.credentials[2].created_at,
                        Some(datetime!(2023-07-31 23:17:17 UTC))
                    );
                }
                "create_tunnel_credential.request.json"
                | "update_tunnel_credential.request.json" => {
                    let v: serde_json::Value = parse(&name);
                    assert!(v["description"].is_string());
                }
                "error.response.json" => {
                    let e: ErrorBody = parse(&name);
                    assert_eq!(e.error_code.as_deref(), Some("ERR_NGROK_218"));
                    assert_eq!(e.status_code, Some(400));
                    assert!(e
                        .msg
                        .as_deref()
                        .unwrap()
                        .starts_with("Your request has not specified an API version."));
                    assert_eq!(
                        e.details.and_then(|d| d.operation_id).as_deref(),
                        Some("op_2RfSBcv0nsy71XCHWOegjx1OoKh")
                    );
                }
                other => panic!("example {other} is not covered by this test: add it"),
            }
            seen.push(name);
        }
        assert_eq!(seen.len(), 19, "every documented example: {seen:?}");
    }

    #[test]
    fn absent_null_and_unknown_fields_are_accepted() {
        let c: TlsCertificate = serde_json::from_value(serde_json::json!({
            "id": "cert_1",
            "not_before": "2026-01-01T00:00:00Z",
            "not_after": "2026-04-01T00:00:00Z",
            "subject_alternative_names": null,
            "key_usages": null,
            "issued_at": null,
            "a_new_field": {"nested": [1, 2]}
        }))
        .unwrap();
        assert!(c.subject_alternative_names.dns_names.is_empty());
        let d: ReservedDomain = serde_json::from_value(serde_json::json!({
            "id": "rd_1", "domain": "a.example.com",
            "certificate_management_status": {"provisioning_job": null},
            "surprise": true
        }))
        .unwrap();
        assert_eq!(d.provisioning_job(), None);
        // A new optional field may come as null (UPSTREAM-NOTES: `is_dev`): false, as absent.
        let d: ReservedDomain = serde_json::from_value(serde_json::json!({
            "id": "rd_2", "domain": "b.example.com", "cname_target": "x.ngrok-cname.test",
            "is_dev": null
        }))
        .unwrap();
        assert!(!d.is_dev && !d.is_ngrok_owned());
        let cr: TunnelCredential =
            serde_json::from_value(serde_json::json!({"id": "cr_1", "acl": null})).unwrap();
        assert!(!cr.is_restricted());
        let star: TunnelCredential = serde_json::from_value(
            serde_json::json!({"id": "cr_2", "acl": ["bind:x.example.com", "*"]}),
        )
        .unwrap();
        assert!(!star.is_restricted());
    }
}
