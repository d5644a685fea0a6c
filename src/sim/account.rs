//! The simulated account: certificates, reserved domains and credentials in memory, the
//! operations of the reference on them, and their JSON as the reference documents it.
//!
//! Deliberately independent of the client's wire types (`crate::sources::ngrok::types`): a misspelt field
//! on one side is then caught by the other and by the official client test.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::model::certs;

pub use super::errors::{Code, SimError};

/// The longest `description` the reference allows, in bytes.
pub const MAX_DESCRIPTION: usize = 255;
/// The longest `metadata` the reference allows, in bytes.
pub const MAX_METADATA: usize = 4096;
/// The common name of the root CA the seeds' certificates chain to.
pub const SEED_ROOT_CA: &str = "Watchdog Simulator Root CA";
/// The largest page.
pub const MAX_LIMIT: usize = 100;
/// Domains under these suffixes are ngrok's: no CNAME target, no policy, no uploaded certificate.
/// `ngrok.io` covers its regional forms (`eu.ngrok.io`, …).
pub const NGROK_SUFFIXES: [&str; 8] = [
    "ngrok.app",
    "ngrok.dev",
    "ngrok.pizza",
    "ngrok.pro",
    "ngrok-free.app",
    "ngrok-free.dev",
    "ngrok-free.pizza",
    "ngrok.io",
];

/// Whether `name` is a domain under one of ngrok's own suffixes.
pub fn ngrok_owned(name: &str) -> bool {
    NGROK_SUFFIXES.iter().any(|s| {
        name.strip_suffix(s)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1)
    })
}

/// RFC 3339 in whole seconds, as the API sends its timestamps.
mod whole_seconds {
    use serde::Serializer;
    use time::OffsetDateTime;

    fn truncate(t: OffsetDateTime) -> OffsetDateTime {
        t.replace_nanosecond(0).unwrap_or(t)
    }

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::serialize(&truncate(*t), s)
    }

    pub mod option {
        use serde::Serializer;
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            time::serde::rfc3339::option::serialize(&t.map(super::truncate), s)
        }
    }
}

/// `TLSCertificate` as the simulator stores it; the private key is checked and then dropped.
#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    pub id: String,
    pub uri: String,
    #[serde(with = "whole_seconds")]
    pub created_at: OffsetDateTime,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    pub certificate_pem: String,
    pub subject_common_name: String,
    pub subject_alternative_names: Sans,
    #[serde(with = "whole_seconds::option")]
    pub issued_at: Option<OffsetDateTime>,
    #[serde(with = "whole_seconds")]
    pub not_before: OffsetDateTime,
    #[serde(with = "whole_seconds")]
    pub not_after: OffsetDateTime,
    pub key_usages: Vec<String>,
    pub extended_key_usages: Vec<String>,
    pub private_key_type: String,
    pub issuer_common_name: String,
    pub serial_number: String,
    pub subject_organization: String,
    pub subject_organizational_unit: String,
    pub subject_locality: String,
    pub subject_province: String,
    pub subject_country: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sans {
    pub dns_names: Vec<String>,
    pub ips: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ref {
    pub id: String,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub authority: String,
    pub private_key_type: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Job {
    pub error_code: Option<String>,
    pub msg: Option<String>,
    #[serde(with = "whole_seconds::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "whole_seconds::option")]
    pub retries_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    #[serde(with = "whole_seconds::option")]
    pub renews_at: Option<OffsetDateTime>,
    pub provisioning_job: Option<Job>,
}

/// `ReservedDomain`.
#[derive(Debug, Clone, Serialize)]
pub struct Domain {
    pub id: String,
    pub uri: String,
    #[serde(with = "whole_seconds")]
    pub created_at: OffsetDateTime,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    pub domain: String,
    pub region: String,
    pub cname_target: Option<String>,
    pub certificate: Option<Ref>,
    pub certificate_management_policy: Option<Policy>,
    pub certificate_management_status: Option<Status>,
    pub acme_challenge_cname_target: Option<String>,
    pub http_endpoint_configuration: Option<Ref>,
    pub https_endpoint_configuration: Option<Ref>,
    /// The account's dev domain (newer API versions send this field).
    pub is_dev: bool,
}

/// `Credential`. The token is only in the create response.
#[derive(Debug, Clone, Serialize)]
pub struct Credential {
    pub id: String,
    pub uri: String,
    #[serde(with = "whole_seconds")]
    pub created_at: OffsetDateTime,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    pub token: Option<String>,
    pub acl: Vec<String>,
    pub owner_id: String,
}

/// Time-sortable ids with the documented prefixes: 27 base62 characters like a KSUID (seconds
/// since the KSUID epoch, then a sequence so that ids made within one second still sort in
/// creation order, then random bytes).
#[derive(Debug, Default)]
pub struct Ids {
    sequence: u64,
}

impl Ids {
    pub fn next(&mut self, prefix: &str, now: OffsetDateTime) -> String {
        self.sequence += 1;
        let seconds = (now.unix_timestamp() - 1_400_000_000).clamp(0, u32::MAX as i64) as u32;
        let mut bytes = [0u8; 20];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..12].copy_from_slice(&self.sequence.to_be_bytes());
        let random: [u8; 8] = rand::random();
        bytes[12..].copy_from_slice(&random);
        format!("{prefix}_{}", base62(&bytes))
    }
}

fn base62(bytes: &[u8; 20]) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = bytes.to_vec();
    let mut out = Vec::with_capacity(27);
    for _ in 0..27 {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let acc = (rem << 8) | u32::from(*b);
            *b = (acc / 62) as u8;
            rem = acc % 62;
        }
        out.push(ALPHABET[rem as usize]);
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// What the watchdog promises never to do to an account, seen happening (tests and the crash
/// harness read these through `Sim::violations` or `GET /_sim/violations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// A certificate was deleted while a domain still referenced it.
    CertificateDeletedWhileAttached,
    /// A domain that had a certificate was left without one, outside a managed take-over's
    /// window (from `DELETE …/certificate_management_policy` until the next attach).
    DomainLeftWithoutCertificate,
}

/// One safety violation, when and where it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    #[serde(with = "whole_seconds")]
    pub at: OffsetDateTime,
    pub kind: ViolationKind,
    pub domain_id: String,
    pub domain: String,
    pub certificate_id: String,
}

/// One page of a list.
pub struct Page {
    pub items: Vec<Value>,
    /// The id of the last item, when more remain after it.
    pub next_before: Option<String>,
}

/// The account.
#[derive(Debug, Default)]
pub struct Account {
    /// The scheme and authority every `uri` and `next_page_uri` starts with.
    pub base_url: String,
    pub certificates: BTreeMap<String, Certificate>,
    pub domains: BTreeMap<String, Domain>,
    pub credentials: BTreeMap<String, Credential>,
    pub ids: Ids,
    pub owner_id: String,
    /// Safety violations so far, oldest first.
    pub violations: Vec<Violation>,
    /// Domains in a managed take-over's window: their policy was removed and nothing has been
    /// attached since, so having no certificate is expected.
    pub taking_over: BTreeSet<String>,
    /// The root CA the seeds' generated certificates chain to (made on first use).
    seed_ca: Option<std::sync::Arc<certs::generate::Signer>>,
}

/// What a certificate upload carries besides the PEM.
#[derive(Debug, Default, Clone)]
pub struct NewCertificate {
    pub description: String,
    pub metadata: String,
    /// Set for certificates ngrok issued (seeds only: uploads are never "issued").
    pub issued_at: Option<OffsetDateTime>,
}

/// The fields of a domain create or update.
#[derive(Debug, Default, Clone)]
pub struct DomainFields {
    pub domain: Option<String>,
    pub region: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<String>,
    pub certificate_id: Option<String>,
    pub policy: Option<Policy>,
}

impl Account {
    pub fn new(base_url: String, now: OffsetDateTime) -> Self {
        let mut ids = Ids::default();
        let owner_id = ids.next("usr", now);
        Self {
            base_url,
            owner_id,
            ids,
            ..Default::default()
        }
    }

    /// The root CA the seeds' generated certificates chain to: one per account, so one file
    /// (`simulate --write-ca`) is the trust anchor for all of them.
    pub fn seed_ca(
        &mut self,
    ) -> Result<std::sync::Arc<certs::generate::Signer>, certs::generate::GenerateError> {
        if let Some(ca) = &self.seed_ca {
            return Ok(ca.clone());
        }
        let ca = std::sync::Arc::new(certs::generate::Signer::new(SEED_ROOT_CA)?);
        self.seed_ca = Some(ca.clone());
        Ok(ca)
    }

    fn uri(&self, collection: &str, id: &str) -> String {
        format!("{}/{collection}/{id}", self.base_url)
    }

    /// Uploads a certificate: the chain must parse and the key must match its leaf; every field
    /// of the resource comes from the PEM.
    pub fn create_certificate(
        &mut self,
        certificate_pem: &str,
        private_key_pem: &str,
        extra: NewCertificate,
        now: OffsetDateTime,
    ) -> Result<Certificate, SimError> {
        check_lengths(Some(&extra.description), Some(&extra.metadata))?;
        let chain = certs::parse_chain(certificate_pem.as_bytes())
            .map_err(|e| Code::BadPem.with(format!("certificate_pem: {e}")))?;
        let key = certs::parse_private_key(private_key_pem.as_bytes())
            .map_err(|e| Code::BadPem.with(format!("private_key_pem: {e}")))?;
        certs::check_key_matches(&chain, &key).map_err(|_| {
            Code::KeyMismatch.with("The private key does not match the certificate's public key.")
        })?;
        let leaf = chain.leaf;
        let id = self.ids.next("cert", now);
        let certificate = Certificate {
            uri: self.uri("tls_certificates", &id),
            id: id.clone(),
            created_at: now,
            description: extra.description,
            metadata: extra.metadata,
            certificate_pem: certificate_pem.to_string(),
            subject_common_name: leaf.subject_common_name,
            subject_alternative_names: Sans {
                dns_names: leaf.dns_names,
                ips: leaf.ips,
            },
            issued_at: extra.issued_at,
            not_before: leaf.not_before,
            not_after: leaf.not_after,
            key_usages: leaf.key_usages,
            extended_key_usages: leaf.extended_key_usages,
            private_key_type: leaf.private_key_type,
            issuer_common_name: leaf.issuer_common_name,
            serial_number: leaf.serial_number,
            subject_organization: leaf.subject_organization,
            subject_organizational_unit: leaf.subject_organizational_unit,
            subject_locality: leaf.subject_locality,
            subject_province: leaf.subject_province,
            subject_country: leaf.subject_country,
        };
        self.certificates.insert(id, certificate.clone());
        Ok(certificate)
    }

    pub fn update_certificate(
        &mut self,
        id: &str,
        description: Option<String>,
        metadata: Option<String>,
    ) -> Result<Certificate, SimError> {
        check_lengths(description.as_deref(), metadata.as_deref())?;
        let c = self
            .certificates
            .get_mut(id)
            .ok_or_else(|| SimError::not_found("TLS certificate", id))?;
        set_text(&mut c.description, &mut c.metadata, description, metadata);
        Ok(c.clone())
    }

    /// Assumption: deleting an uploaded certificate that a domain still references is allowed and
    /// leaves the domain pointing at an id that no longer exists (no code forbids it). A
    /// certificate ngrok issued is refused (ERR_NGROK_1966).
    pub fn delete_certificate(&mut self, id: &str) -> Result<(), SimError> {
        if self
            .certificates
            .get(id)
            .is_some_and(|c| c.issued_at.is_some())
        {
            return Err(Code::ManagedCertificate.with(format!(
                "The certificate ID '{id}' could not be deleted because it has an attached Managed Certificate Policy."
            )));
        }
        remove(&mut self.certificates, "TLS certificate", id)?;
        let attached: Vec<(String, String)> = self
            .domains
            .values()
            .filter(|d| d.certificate.as_ref().is_some_and(|c| c.id == id))
            .map(|d| (d.id.clone(), d.domain.clone()))
            .collect();
        for (domain_id, domain) in attached {
            self.violate(
                ViolationKind::CertificateDeletedWhileAttached,
                domain_id,
                domain,
                id,
            );
        }
        Ok(())
    }

    fn violate(&mut self, kind: ViolationKind, domain_id: String, domain: String, cert: &str) {
        self.violations.push(Violation {
            at: OffsetDateTime::now_utc(),
            kind,
            domain_id,
            domain,
            certificate_id: cert.to_string(),
        });
    }

    /// Reserves a domain. A custom domain given neither certificate nor policy gets a managed
    /// policy (Let's Encrypt, ECDSA), as the current docs describe.
    pub fn create_domain(
        &mut self,
        fields: DomainFields,
        now: OffsetDateTime,
    ) -> Result<Domain, SimError> {
        check_lengths(fields.description.as_deref(), fields.metadata.as_deref())?;
        let name = fields
            .domain
            .clone()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| SimError::bad_request("domain: required"))?;
        if self
            .domains
            .values()
            .any(|d| d.domain.eq_ignore_ascii_case(&name))
        {
            return Err(SimError::bad_request(format!(
                "The domain '{name}' is already reserved."
            )));
        }
        check_certificate_fields(&name, &fields)?;
        let certificate = self.certificate_ref(fields.certificate_id.as_deref())?;
        let custom = !ngrok_owned(&name);
        let policy = fields
            .policy
            .or_else(|| (custom && certificate.is_none()).then(default_policy));
        let id = self.ids.next("rd", now);
        let (cname_target, acme_challenge_cname_target) = self.cname_targets(&name, now);
        let domain = Domain {
            uri: self.uri("reserved_domains", &id),
            id: id.clone(),
            created_at: now,
            description: fields.description.unwrap_or_default(),
            metadata: fields.metadata.unwrap_or_default(),
            domain: name,
            region: fields.region.unwrap_or_default(),
            cname_target,
            certificate,
            certificate_management_status: policy.as_ref().map(|_| provisioning(now)),
            certificate_management_policy: policy,
            acme_challenge_cname_target,
            http_endpoint_configuration: None,
            https_endpoint_configuration: None,
            is_dev: false,
        };
        self.domains.insert(id, domain.clone());
        Ok(domain)
    }

    /// Custom domains (not under an ngrok-owned suffix) get a CNAME target; wildcards also an
    /// ACME challenge target.
    fn cname_targets(
        &mut self,
        name: &str,
        now: OffsetDateTime,
    ) -> (Option<String>, Option<String>) {
        if ngrok_owned(name) {
            return (None, None);
        }
        let mut token = || self.ids.next("x", now)[2..19].to_ascii_lowercase();
        let cname = format!("{}.{}.ngrok-cname.com", token(), token());
        let acme = name
            .starts_with("*.")
            .then(|| format!("{}.acme.ngrok-cname.com", token()));
        (Some(cname), acme)
    }

    /// Adds the account's dev domain: an `ngrok-free.dev` name, no CNAME target, no policy.
    pub fn add_dev_domain(&mut self, now: OffsetDateTime) -> Domain {
        let id = self.ids.next("rd", now);
        let word = self.ids.next("x", now)[20..29].to_ascii_lowercase();
        let domain = Domain {
            uri: self.uri("reserved_domains", &id),
            id: id.clone(),
            created_at: now,
            description: String::new(),
            metadata: String::new(),
            domain: format!("{word}.ngrok-free.dev"),
            region: String::new(),
            cname_target: None,
            certificate: None,
            certificate_management_policy: None,
            certificate_management_status: None,
            acme_challenge_cname_target: None,
            http_endpoint_configuration: None,
            https_endpoint_configuration: None,
            is_dev: true,
        };
        self.domains.insert(id, domain.clone());
        domain
    }

    /// Updates a domain. Its certificate cannot be replaced while it has a management policy
    /// (ERR_NGROK_436): the policy is detached first.
    pub fn update_domain(
        &mut self,
        id: &str,
        fields: DomainFields,
        now: OffsetDateTime,
    ) -> Result<Domain, SimError> {
        check_lengths(fields.description.as_deref(), fields.metadata.as_deref())?;
        let d = self
            .domains
            .get(id)
            .ok_or_else(|| SimError::not_found("reserved domain", id))?;
        check_certificate_fields(&d.domain, &fields)?;
        if fields.certificate_id.is_some() && d.certificate_management_policy.is_some() {
            return Err(detach_policy_first(&d.domain));
        }
        let certificate = self.certificate_ref(fields.certificate_id.as_deref())?;
        let d = self
            .domains
            .get_mut(id)
            .ok_or_else(|| SimError::not_found("reserved domain", id))?;
        set_text(
            &mut d.description,
            &mut d.metadata,
            fields.description,
            fields.metadata,
        );
        if certificate.is_some() {
            d.certificate = certificate;
            self.taking_over.remove(id);
        }
        if let Some(policy) = fields.policy {
            if d.certificate_management_policy.as_ref() != Some(&policy) {
                d.certificate_management_policy = Some(policy);
                d.certificate_management_status = Some(provisioning(now));
            }
        }
        Ok(d.clone())
    }

    /// The dev domain cannot be deleted (ERR_NGROK_458).
    pub fn delete_domain(&mut self, id: &str) -> Result<(), SimError> {
        if self.domains.get(id).is_some_and(|d| d.is_dev) {
            return Err(Code::DevDomain.with("The dev domain of an account cannot be deleted."));
        }
        self.taking_over.remove(id);
        remove(&mut self.domains, "reserved domain", id)
    }

    pub fn detach_certificate(&mut self, id: &str) -> Result<(), SimError> {
        let d = self
            .domains
            .get_mut(id)
            .ok_or_else(|| SimError::not_found("reserved domain", id))?;
        if d.certificate_management_policy.is_some() {
            return Err(detach_policy_first(&d.domain));
        }
        let (domain_id, domain) = (d.id.clone(), d.domain.clone());
        if let Some(old) = d.certificate.take() {
            if !self.taking_over.contains(id) {
                let kind = ViolationKind::DomainLeftWithoutCertificate;
                self.violate(kind, domain_id, domain, &old.id);
            }
        }
        Ok(())
    }

    /// Assumption: the managed certificate goes with the policy (deleted; the domain is left
    /// with no certificate). An uploaded certificate stays attached. Removing a policy opens a
    /// managed take-over's window: no certificate until the next attach is no violation.
    pub fn detach_policy(&mut self, id: &str) -> Result<(), SimError> {
        let d = self
            .domains
            .get_mut(id)
            .ok_or_else(|| SimError::not_found("reserved domain", id))?;
        if d.certificate_management_policy.is_some() {
            self.taking_over.insert(id.to_string());
        }
        let (domain_id, domain) = (d.id.clone(), d.domain.clone());
        d.certificate_management_policy = None;
        d.certificate_management_status = None;
        let managed = d
            .certificate
            .as_ref()
            .filter(|c| {
                self.certificates
                    .get(&c.id)
                    .is_some_and(|c| c.issued_at.is_some())
            })
            .map(|c| c.id.clone());
        if let Some(cert) = managed {
            d.certificate = None;
            self.certificates.remove(&cert);
            if !self.taking_over.contains(id) {
                let kind = ViolationKind::DomainLeftWithoutCertificate;
                self.violate(kind, domain_id, domain, &cert);
            }
        }
        Ok(())
    }
    pub fn create_credential(
        &mut self,
        description: Option<String>,
        metadata: Option<String>,
        acl: Option<Vec<String>>,
        now: OffsetDateTime,
    ) -> Result<Credential, SimError> {
        check_lengths(description.as_deref(), metadata.as_deref())?;
        let acl = acl.unwrap_or_default();
        check_acl(&acl)?;
        let id = self.ids.next("cr", now);
        let secret: [u8; 16] = rand::random();
        let credential = Credential {
            uri: self.uri("credentials", &id),
            token: Some(format!("{}_{}", &id[3..], hex::encode(secret))),
            id: id.clone(),
            created_at: now,
            description: description.unwrap_or_default(),
            metadata: metadata.unwrap_or_default(),
            acl,
            owner_id: self.owner_id.clone(),
        };
        let mut stored = credential.clone();
        stored.token = None;
        self.credentials.insert(id, stored);
        Ok(credential)
    }

    pub fn update_credential(
        &mut self,
        id: &str,
        description: Option<String>,
        metadata: Option<String>,
        acl: Option<Vec<String>>,
    ) -> Result<Credential, SimError> {
        check_lengths(description.as_deref(), metadata.as_deref())?;
        if let Some(acl) = &acl {
            check_acl(acl)?;
        }
        let c = self
            .credentials
            .get_mut(id)
            .ok_or_else(|| SimError::not_found("credential", id))?;
        set_text(&mut c.description, &mut c.metadata, description, metadata);
        if let Some(v) = acl {
            c.acl = v;
        }
        Ok(c.clone())
    }

    pub fn delete_credential(&mut self, id: &str) -> Result<(), SimError> {
        remove(&mut self.credentials, "credential", id)
    }

    fn certificate_ref(&self, id: Option<&str>) -> Result<Option<Ref>, SimError> {
        match id {
            None => Ok(None),
            Some(id) if self.certificates.contains_key(id) => Ok(Some(Ref {
                id: id.to_string(),
                uri: self.uri("tls_certificates", id),
            })),
            Some(id) => {
                Err(Code::UnknownCertificate
                    .with(format!("The certificate ID '{id}' does not exist.")))
            }
        }
    }
}

/// Newest first, from before `before_id` (exclusive), at most `limit`.
pub fn page<T: Serialize>(
    items: &BTreeMap<String, T>,
    before_id: Option<&str>,
    limit: usize,
) -> Page {
    let mut iter: Box<dyn Iterator<Item = (&String, &T)>> = match before_id {
        Some(before) => Box::new(items.range::<String, _>(..before.to_string()).rev()),
        None => Box::new(items.iter().rev()),
    };
    let mut out = Vec::with_capacity(limit.min(items.len()));
    let mut last = None;
    for (id, item) in iter.by_ref().take(limit) {
        out.push(serde_json::to_value(item).unwrap_or(Value::Null));
        last = Some(id.clone());
    }
    let more = iter.next().is_some();
    Page {
        items: out,
        next_before: if more { last } else { None },
    }
}

fn remove<T>(items: &mut BTreeMap<String, T>, kind: &str, id: &str) -> Result<(), SimError> {
    items
        .remove(id)
        .map(|_| ())
        .ok_or_else(|| SimError::not_found(kind, id))
}

/// An update's `description` and `metadata`: absent or null leaves them as they are.
fn set_text(
    description: &mut String,
    metadata: &mut String,
    new_description: Option<String>,
    new_metadata: Option<String>,
) {
    if let Some(d) = new_description {
        *description = d;
    }
    if let Some(m) = new_metadata {
        *metadata = m;
    }
}

fn provisioning(now: OffsetDateTime) -> Status {
    Status {
        renews_at: None,
        provisioning_job: Some(Job {
            error_code: None,
            msg: Some("Managed certificate provisioning in progress.".to_string()),
            started_at: Some(now.replace_nanosecond(0).unwrap_or(now)),
            retries_at: None,
        }),
    }
}

/// The managed policy a bare custom domain gets.
fn default_policy() -> Policy {
    Policy {
        authority: "letsencrypt".into(),
        private_key_type: "ecdsa".into(),
    }
}

/// ERR_NGROK_434, 439 and 440: what a request may say about `domain`'s certificate.
fn check_certificate_fields(domain: &str, fields: &DomainFields) -> Result<(), SimError> {
    if fields.certificate_id.is_some() && fields.policy.is_some() {
        return Err(Code::CertificateAndPolicy
            .with("certificate_id and certificate_management_policy are mutually exclusive."));
    }
    if ngrok_owned(domain) && fields.policy.is_some() {
        return Err(Code::PolicyOnNgrokDomain.with(format!(
            "The domain '{domain}' is owned by ngrok: it cannot have a certificate management policy."
        )));
    }
    if ngrok_owned(domain) && fields.certificate_id.is_some() {
        return Err(Code::CertificateOnNgrokDomain.with(format!(
            "The domain '{domain}' is owned by ngrok: it cannot use an uploaded certificate."
        )));
    }
    Ok(())
}

fn detach_policy_first(domain: &str) -> SimError {
    Code::DetachPolicyFirst.with(format!(
        "The certificate of '{domain}' is managed by its certificate management policy: detach the policy first."
    ))
}

fn check_lengths(description: Option<&str>, metadata: Option<&str>) -> Result<(), SimError> {
    if description.is_some_and(|d| d.len() > MAX_DESCRIPTION) {
        return Err(SimError::bad_request(format!(
            "description: must be at most {MAX_DESCRIPTION} bytes."
        )));
    }
    if metadata.is_some_and(|m| m.len() > MAX_METADATA) {
        return Err(SimError::bad_request(format!(
            "metadata: must be at most {MAX_METADATA} bytes."
        )));
    }
    Ok(())
}

fn check_acl(acl: &[String]) -> Result<(), SimError> {
    match acl
        .iter()
        .find(|rule| rule.as_str() != "*" && !rule.starts_with("bind:"))
    {
        Some(rule) => Err(SimError::bad_request(format!(
            "acl: '{rule}' is not a bind rule; the only allowed ACL rule is bind."
        ))),
        None => Ok(()),
    }
}

/// Reads the fields of a JSON body.
pub struct Body<'a>(pub &'a Map<String, Value>);

/// The fields of a management policy.
const POLICY_FIELDS: [&str; 2] = ["authority", "private_key_type"];

impl Body<'_> {
    /// ERR_NGROK_214 for the first field not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), SimError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(field) => Err(SimError::unknown_field(field)),
            None => Ok(()),
        }
    }

    /// A string field: absent or null is `None`; another type is a 400.
    pub fn string(&self, key: &str) -> Result<Option<String>, SimError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(SimError::bad_request(format!("{key}: must be a string."))),
        }
    }

    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, SimError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        SimError::bad_request(format!("{key}: must be a list of strings."))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(SimError::bad_request(format!(
                "{key}: must be a list of strings."
            ))),
        }
    }

    pub fn policy(&self) -> Result<Option<Policy>, SimError> {
        match self.0.get("certificate_management_policy") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(p)) => {
                let p = Body(p);
                p.only(&POLICY_FIELDS)?;
                let authority = p
                    .string("authority")?
                    .unwrap_or_else(|| "letsencrypt".into());
                if authority != "letsencrypt" {
                    return Err(SimError::bad_request(
                        "certificate_management_policy.authority: the only supported value is letsencrypt.",
                    ));
                }
                let private_key_type = p
                    .string("private_key_type")?
                    .unwrap_or_else(|| "ecdsa".into());
                if private_key_type != "rsa" && private_key_type != "ecdsa" {
                    return Err(SimError::bad_request(
                        "certificate_management_policy.private_key_type: must be rsa or ecdsa.",
                    ));
                }
                Ok(Some(Policy {
                    authority,
                    private_key_type,
                }))
            }
            Some(_) => Err(SimError::bad_request(
                "certificate_management_policy: must be an object.",
            )),
        }
    }

    pub fn domain_fields(&self) -> Result<DomainFields, SimError> {
        Ok(DomainFields {
            domain: self.string("domain")?,
            region: self.string("region")?,
            description: self.string("description")?,
            metadata: self.string("metadata")?,
            certificate_id: self.string("certificate_id")?.filter(|s| !s.is_empty()),
            policy: self.policy()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order_with_the_prefix() {
        let mut ids = Ids::default();
        let now = OffsetDateTime::now_utc();
        let a = ids.next("cert", now);
        let b = ids.next("cert", now);
        assert!(a < b, "{a} {b}");
        assert!(a.starts_with("cert_"));
        assert_eq!(a.len(), "cert_".len() + 27);
        let later = ids.next("cert", now + time::Duration::seconds(1));
        assert!(b < later);
    }

    #[test]
    fn ngrok_owned_domains_by_suffix() {
        for owned in [
            "a.ngrok.app",
            "b.ngrok-free.dev",
            "c.eu.ngrok.io",
            "d.ngrok.pro",
        ] {
            assert!(ngrok_owned(owned), "{owned}");
        }
        for custom in [
            "ngrok.app",
            "a.notngrok.app",
            "ngrok.app.example.com",
            "x.example.com",
        ] {
            assert!(!ngrok_owned(custom), "{custom}");
        }
    }

    #[test]
    fn pages_newest_first_and_end_with_none() {
        let mut items = BTreeMap::new();
        for i in 0..5 {
            items.insert(format!("id{i}"), i);
        }
        let first = page(&items, None, 2);
        assert_eq!(first.items, vec![Value::from(4), Value::from(3)]);
        assert_eq!(first.next_before.as_deref(), Some("id3"));
        let second = page(&items, Some("id3"), 2);
        assert_eq!(second.items, vec![Value::from(2), Value::from(1)]);
        let last = page(&items, Some("id1"), 2);
        assert_eq!(last.items, vec![Value::from(0)]);
        assert_eq!(last.next_before, None);
        // A full last page ends the listing too (an assumption the request counts rely on).
        let exact = page(&items, Some("id2"), 2);
        assert_eq!(exact.items.len(), 2);
        assert_eq!(exact.next_before, None);
    }
}
