//! One sync of the account: every certificate, reserved domain and tunnel credential, as plain values.
//!
//! The only I/O here is through [`crate::ngrok::Client`]; what the values mean is decided in
//! [`crate::evaluate`].

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use time::OffsetDateTime;

use crate::ngrok::{ApiError, Client, ErrorKind, ReservedDomain, TlsCertificate, TunnelCredential};

/// The account as one sync saw it.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// When the sync started.
    pub fetched_at: OffsetDateTime,
    pub certificates: Vec<TlsCertificate>,
    pub domains: Vec<ReservedDomain>,
    pub credentials: Vec<TunnelCredential>,
    /// Certificate ids that a domain references but that a GET confirmed are gone (404).
    pub missing_certificates: BTreeSet<String>,
    /// Lookups by id, built on first use: a 10,000-domain account would make linear searches
    /// quadratic. An inventory is not changed after it is built.
    index: OnceLock<Index>,
    /// Each certificate's leaf fingerprint → its positions, computed once for every watch.
    leaves: OnceLock<HashMap<String, Vec<usize>>>,
}

#[derive(Debug, Clone, Default)]
struct Index {
    certificate: HashMap<String, usize>,
    users: HashMap<String, Vec<usize>>,
}

impl Inventory {
    pub fn new(
        fetched_at: OffsetDateTime,
        certificates: Vec<TlsCertificate>,
        domains: Vec<ReservedDomain>,
        credentials: Vec<TunnelCredential>,
        missing_certificates: BTreeSet<String>,
    ) -> Self {
        Self {
            fetched_at,
            certificates,
            domains,
            credentials,
            missing_certificates,
            index: OnceLock::new(),
            leaves: OnceLock::new(),
        }
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let mut index = Index::default();
            for (i, c) in self.certificates.iter().enumerate() {
                index.certificate.entry(c.id.clone()).or_insert(i);
            }
            for (i, d) in self.domains.iter().enumerate() {
                if let Some(id) = d.certificate_id() {
                    index.users.entry(id.to_string()).or_default().push(i);
                }
            }
            index
        })
    }

    pub fn certificate(&self, id: &str) -> Option<&TlsCertificate> {
        self.index()
            .certificate
            .get(id)
            .map(|&i| &self.certificates[i])
    }

    /// The certificates whose leaf has this SHA-256 fingerprint (from their `certificate_pem`), so
    /// a copy uploaded by hand is found as well as the watchdog's own.
    pub fn with_leaf<'a>(
        &'a self,
        fingerprint: &str,
    ) -> impl Iterator<Item = &'a TlsCertificate> + 'a {
        let leaves = self.leaves.get_or_init(|| {
            let mut leaves: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, c) in self.certificates.iter().enumerate() {
                let pem = c.certificate_pem.as_deref().unwrap_or_default();
                if let Some(fp) = crate::certs::leaf_fingerprint(pem.as_bytes()) {
                    leaves.entry(fp).or_default().push(i);
                }
            }
            leaves
        });
        leaves
            .get(fingerprint)
            .map(|v| v.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|&i| &self.certificates[i])
    }

    /// The domains that reference the certificate `id`.
    pub fn domains_using<'a>(&'a self, id: &str) -> impl Iterator<Item = &'a ReservedDomain> + 'a {
        self.index()
            .users
            .get(id)
            .map(|v| v.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|&i| &self.domains[i])
    }
}

/// One sync: the three lists (concurrently, sharing the client's budget), then a GET for each
/// certificate a domain references that the list did not show, to tell a deleted certificate
/// (404 → `missing_certificates`) from one created after the list was read.
pub async fn sync(client: &Client, now: OffsetDateTime) -> Result<Inventory, ApiError> {
    let (mut certificates, domains, credentials) = tokio::try_join!(
        client.list_tls_certificates(),
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
            Ok(certificate) => certificates.push(certificate),
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
