//! One sync of the account: every certificate, reserved domain and tunnel credential, as plain values.
//!
//! The only I/O here is through [`crate::ngrok::Client`]; what the values mean is decided in
//! [`crate::evaluate`].

use std::collections::BTreeSet;

use time::OffsetDateTime;

use crate::ngrok::{ReservedDomain, TlsCertificate, TunnelCredential};

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
