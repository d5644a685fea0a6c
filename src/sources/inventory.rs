//! One sync of the account: every certificate, reserved domain and tunnel credential, as plain values.
//!
//! The only I/O here is through [`crate::sources::ngrok::Client`]; what the values mean is decided in
//! the pure core (`core::evaluate`).

use std::collections::{BTreeSet, HashMap};
use std::ops::Deref;

use time::OffsetDateTime;

use crate::model::judge::{CertFacts, Judge};
use crate::model::trust::Trust;
use crate::sources::ngrok::{
    ApiError, Client, ErrorKind, ReservedDomain, TlsCertificate, TunnelCredential,
};

/// A certificate of the account as the watchdog keeps it: the API's fields without the PEM,
/// and what the PEM said, computed while its page was at hand (the PEMs of a 10,000-certificate
/// account are ~15 MB; none outlives its page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    listed: TlsCertificate,
    /// SHA-256 of the leaf's DER, lowercase hex; `None` when the PEM is missing or unreadable.
    leaf_fingerprint: Option<String>,
    /// How a browser would judge the chain; `None` when it was not judged or does not parse.
    facts: Option<CertFacts>,
}

impl Certificate {
    /// The API's answer reduced to what the watchdog keeps, without judging the chain.
    pub fn from_listed(mut listed: TlsCertificate) -> Self {
        let pem = listed.certificate_pem.take().unwrap_or_default();
        Self {
            leaf_fingerprint: crate::model::certs::leaf_fingerprint(pem.as_bytes()),
            listed,
            facts: None,
        }
    }

    /// The API's answer reduced to what the watchdog keeps, with its chain judged against
    /// `trust` as of `now` while the PEM is at hand.
    pub fn judged(listed: TlsCertificate, trust: &Trust, now: OffsetDateTime) -> Self {
        Self::judged_by(listed, &mut Judge::new(trust, now))
    }

    /// [`Certificate::judged`] by a judge shared with the other certificates of the listing.
    pub fn judged_by(mut listed: TlsCertificate, judge: &mut Judge<'_>) -> Self {
        let pem = listed.certificate_pem.take().unwrap_or_default();
        match judge.judge_material(pem.as_bytes()) {
            Ok(facts) => Self {
                leaf_fingerprint: Some(facts.fingerprint.clone()),
                listed,
                facts: Some(facts),
            },
            Err(_) => Self {
                leaf_fingerprint: crate::model::certs::leaf_fingerprint(pem.as_bytes()),
                listed,
                facts: None,
            },
        }
    }

    pub fn leaf_fingerprint(&self) -> Option<&str> {
        self.leaf_fingerprint.as_deref()
    }

    /// What judging the chain found, if it was judged.
    pub fn facts(&self) -> Option<&CertFacts> {
        self.facts.as_ref()
    }
}

impl From<TlsCertificate> for Certificate {
    fn from(listed: TlsCertificate) -> Self {
        Self::from_listed(listed)
    }
}

/// The API's fields (without `certificate_pem`, always `None` here).
impl Deref for Certificate {
    type Target = TlsCertificate;

    fn deref(&self) -> &TlsCertificate {
        &self.listed
    }
}

/// The account as one sync saw it. Built once; its indexes are built with it, so lookups by id
/// and by leaf fingerprint stay consistent with the lists (which cannot change afterwards).
#[derive(Debug, Clone)]
pub struct Inventory {
    fetched_at: OffsetDateTime,
    certificates: Vec<Certificate>,
    domains: Vec<ReservedDomain>,
    credentials: Vec<TunnelCredential>,
    missing_certificates: BTreeSet<String>,
    /// Certificate id → position: a 10,000-domain account would make linear searches quadratic.
    by_id: HashMap<String, usize>,
    /// Certificate id → positions of the domains that reference it.
    users: HashMap<String, Vec<usize>>,
    /// Each certificate's leaf fingerprint → its positions, computed once for every watch.
    leaves: HashMap<String, Vec<usize>>,
}

impl Inventory {
    /// `missing_certificates`: ids that a domain references but that a GET confirmed are gone.
    pub fn new(
        fetched_at: OffsetDateTime,
        certificates: impl IntoIterator<Item = impl Into<Certificate>>,
        domains: Vec<ReservedDomain>,
        credentials: Vec<TunnelCredential>,
        missing_certificates: BTreeSet<String>,
    ) -> Self {
        let certificates: Vec<Certificate> = certificates.into_iter().map(Into::into).collect();
        let mut by_id = HashMap::new();
        let mut leaves: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in certificates.iter().enumerate() {
            by_id.entry(c.id.clone()).or_insert(i);
            if let Some(fp) = c.leaf_fingerprint() {
                leaves.entry(fp.to_string()).or_default().push(i);
            }
        }
        let mut users: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, d) in domains.iter().enumerate() {
            if let Some(id) = d.certificate_id() {
                users.entry(id.to_string()).or_default().push(i);
            }
        }
        Self {
            fetched_at,
            certificates,
            domains,
            credentials,
            missing_certificates,
            by_id,
            users,
            leaves,
        }
    }

    /// The account after changes the watchdog made, from the API's own answers instead of a
    /// new listing: `created` certificates added, `updated` domains replaced by their answer,
    /// `deleted` certificates removed.
    pub fn with_changes(
        self,
        created: impl IntoIterator<Item = Certificate>,
        updated: impl IntoIterator<Item = ReservedDomain>,
        deleted: &[String],
    ) -> Self {
        let mut certificates = self.certificates;
        certificates.retain(|c| !deleted.contains(&c.id));
        certificates.extend(created);
        let mut domains = self.domains;
        for d in updated {
            match domains.iter_mut().find(|old| old.id == d.id) {
                Some(old) => *old = d,
                None => domains.push(d),
            }
        }
        Self::new(
            self.fetched_at,
            certificates,
            domains,
            self.credentials,
            self.missing_certificates,
        )
    }

    /// When the sync started.
    pub fn fetched_at(&self) -> OffsetDateTime {
        self.fetched_at
    }

    pub fn certificates(&self) -> &[Certificate] {
        &self.certificates
    }

    pub fn domains(&self) -> &[ReservedDomain] {
        &self.domains
    }

    pub fn credentials(&self) -> &[TunnelCredential] {
        &self.credentials
    }

    /// Whether a domain references this certificate id although a GET confirmed it is gone.
    pub fn is_missing(&self, certificate_id: &str) -> bool {
        self.missing_certificates.contains(certificate_id)
    }

    pub fn certificate(&self, id: &str) -> Option<&Certificate> {
        self.by_id.get(id).map(|&i| &self.certificates[i])
    }

    /// The certificates whose leaf has this SHA-256 fingerprint (from their `certificate_pem`), so
    /// a copy uploaded by hand is found as well as the watchdog's own.
    pub fn with_leaf<'a>(
        &'a self,
        fingerprint: &str,
    ) -> impl Iterator<Item = &'a Certificate> + 'a {
        self.leaves
            .get(fingerprint)
            .map(|v| v.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|&i| &self.certificates[i])
    }

    /// The domains that reference the certificate `id`.
    pub fn domains_using<'a>(&'a self, id: &str) -> impl Iterator<Item = &'a ReservedDomain> + 'a {
        self.users
            .get(id)
            .map(|v| v.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|&i| &self.domains[i])
    }

    /// The reserved domain with this name (case-insensitive).
    pub fn domain_named(&self, name: &str) -> Option<&ReservedDomain> {
        self.domains
            .iter()
            .find(|d| d.domain.eq_ignore_ascii_case(name))
    }

    /// `uploaded`, `managed` or `none`: where a domain's certificate comes from.
    pub fn certificate_source(&self, domain: &ReservedDomain) -> &'static str {
        match domain.certificate_id() {
            None => "none",
            Some(id) => {
                let issued_by_ngrok = self.certificate(id).is_some_and(|c| c.is_managed());
                if issued_by_ngrok || domain.is_managed() {
                    "managed"
                } else {
                    "uploaded"
                }
            }
        }
    }
}

/// One sync: the three lists (concurrently, sharing the client's budget), then a GET for each
/// certificate a domain references that the list did not show, to tell a deleted certificate
/// (404 → `missing_certificates`) from one created after the list was read.
///
/// Each certificate's chain is judged against `trust` while its page is at hand.
pub async fn sync(
    client: &Client,
    trust: &Trust,
    now: OffsetDateTime,
) -> Result<Inventory, ApiError> {
    let mut judge = Judge::new(trust, now);
    let (mut certificates, domains, credentials) = tokio::try_join!(
        client.list_tls_certificates_with(|c| Certificate::judged_by(c, &mut judge)),
        client.list_reserved_domains(),
        client.list_credentials(),
    )?;
    let listed: BTreeSet<String> = certificates.iter().map(|c| c.id.clone()).collect();
    let unlisted: BTreeSet<String> = domains
        .iter()
        .filter_map(|d| d.certificate_id())
        .filter(|id| !listed.contains(*id))
        .map(str::to_string)
        .collect();
    let mut missing_certificates = BTreeSet::new();
    for id in unlisted {
        match client.get_tls_certificate(&id).await {
            Ok(certificate) => certificates.push(Certificate::judged_by(certificate, &mut judge)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                missing_certificates.insert(id);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Inventory::new(
        now,
        certificates,
        domains,
        credentials,
        missing_certificates,
    ))
}
