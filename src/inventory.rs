//! One sync of the account: every certificate, reserved domain and tunnel credential, as plain values.
//!
//! The only I/O here is through [`crate::ngrok::Client`]; what the values mean is decided in
//! [`crate::evaluate`].

use std::collections::BTreeSet;

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
}

impl Inventory {
    pub fn certificate(&self, id: &str) -> Option<&TlsCertificate> {
        self.certificates.iter().find(|c| c.id == id)
    }

    /// The domains that reference the certificate `id`.
    pub fn domains_using<'a>(
        &'a self,
        id: &'a str,
    ) -> impl Iterator<Item = &'a ReservedDomain> + 'a {
        self.domains
            .iter()
            .filter(move |d| d.certificate_id() == Some(id))
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
    Ok(Inventory {
        fetched_at: now,
        certificates,
        domains,
        credentials,
        missing_certificates,
    })
}
