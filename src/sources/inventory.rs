//! One sync of the account: every certificate, reserved domain and tunnel credential, as plain values.
//!
//! The only I/O here is through [`crate::sources::ngrok::Client`]; what the values mean is decided in
//! the pure core (`core::evaluate`).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use time::OffsetDateTime;

use crate::model::judge::{CertFacts, Judge};
use crate::model::trust::Trust;
use crate::sources::ngrok::{
    ApiError, Client, ErrorKind, ReservedDomain, TlsCertificate, TunnelCredential,
};

/// A certificate of the account as the watchdog keeps it: the fields it reads, and what the PEM
/// said, computed while its page was at hand (the PEMs of a 10,000-certificate account are
/// ~15 MB; none outlives its page, and neither do the fields nothing reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub id: String,
    pub created_at: Option<OffsetDateTime>,
    /// The watchdog's own uploads say which watch made them here.
    pub metadata: Option<String>,
    pub subject_common_name: Option<String>,
    pub issuer_common_name: Option<String>,
    /// Set when ngrok issued the certificate (managed).
    pub issued_at: Option<OffsetDateTime>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// What the PEM said.
    pem: PemFacts,
}

/// A listed certificate's DNS names and what its PEM said, kept while the PEM itself is not.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PemFacts {
    /// Missing or unreadable: the names are the API's list.
    Unreadable { dns_names: Vec<String> },
    /// Not judged (or the chain did not parse): the API's names, and the SHA-256 of the leaf's
    /// DER, lowercase hex.
    Read {
        dns_names: Vec<String>,
        fingerprint: String,
    },
    /// Judged as a browser would: the facts hold the leaf's own names and fingerprint (one copy
    /// of each: the API's list is what ngrok read from the same leaf).
    Judged(CertFacts),
}

impl Certificate {
    /// The API's answer reduced to what the watchdog keeps, without judging the chain.
    pub fn from_listed(mut listed: TlsCertificate) -> Self {
        let pem = listed.certificate_pem.take().unwrap_or_default();
        let facts = Self::fingerprint_of(&pem, &mut listed);
        Self::kept(listed, facts)
    }

    /// The API's answer reduced to what the watchdog keeps, with its chain judged against
    /// `trust` as of `now` while the PEM is at hand.
    pub fn judged(listed: TlsCertificate, trust: &Trust, now: OffsetDateTime) -> Self {
        Self::judged_by(listed, &Judge::new(trust, now))
    }

    /// [`Certificate::judged`] by a judge shared with the other certificates of the listing.
    pub fn judged_by(mut listed: TlsCertificate, judge: &Judge<'_>) -> Self {
        let pem = listed.certificate_pem.take().unwrap_or_default();
        match judge.judge_material(pem.as_bytes()) {
            Ok(facts) => Self::kept(listed, PemFacts::Judged(facts)),
            Err(_) => {
                let facts = Self::fingerprint_of(&pem, &mut listed);
                Self::kept(listed, facts)
            }
        }
    }

    /// The leaf's fingerprint, with the names the API listed for it.
    fn fingerprint_of(pem: &str, listed: &mut TlsCertificate) -> PemFacts {
        let mut dns_names = std::mem::take(&mut listed.subject_alternative_names.dns_names);
        // serde grows a list to 4 entries at its first; most certificates name one or two.
        dns_names.shrink_to_fit();
        match crate::model::certs::leaf_fingerprint(pem.as_bytes()) {
            Some(fingerprint) => PemFacts::Read {
                dns_names,
                fingerprint,
            },
            None => PemFacts::Unreadable { dns_names },
        }
    }

    fn kept(listed: TlsCertificate, pem: PemFacts) -> Self {
        Self {
            pem,
            id: listed.id,
            created_at: listed.created_at,
            metadata: listed.metadata,
            subject_common_name: listed.subject_common_name,
            issuer_common_name: listed.issuer_common_name,
            issued_at: listed.issued_at,
            not_before: listed.not_before,
            not_after: listed.not_after,
        }
    }

    /// The SHA-256 fingerprint of the leaf, lowercase hex, when the PEM was readable.
    pub fn leaf_fingerprint(&self) -> Option<&str> {
        match &self.pem {
            PemFacts::Unreadable { .. } => None,
            PemFacts::Read { fingerprint, .. } => Some(fingerprint),
            PemFacts::Judged(facts) => Some(&facts.fingerprint),
        }
    }

    /// The leaf's DNS names: read from the leaf when its chain was judged (what browsers
    /// match), else as the API listed them (`subject_alternative_names.dns_names`).
    pub fn dns_names(&self) -> &[String] {
        match &self.pem {
            PemFacts::Unreadable { dns_names } | PemFacts::Read { dns_names, .. } => dns_names,
            PemFacts::Judged(facts) => &facts.dns_names,
        }
    }

    /// What judging the chain found, if it was judged.
    pub fn facts(&self) -> Option<&CertFacts> {
        match &self.pem {
            PemFacts::Judged(facts) => Some(facts),
            _ => None,
        }
    }

    /// ngrok issued it (a managed certificate) rather than a user uploading it.
    pub fn is_managed(&self) -> bool {
        self.issued_at.is_some()
    }
}

impl From<TlsCertificate> for Certificate {
    fn from(listed: TlsCertificate) -> Self {
        Self::from_listed(listed)
    }
}

/// The positions in `sorted` (sorted by `key`) whose key is `wanted`.
fn equal_range<'a, K: Ord + 'a>(
    sorted: &[u32],
    key: impl Fn(&u32) -> K,
    wanted: K,
) -> std::ops::Range<usize> {
    let start = sorted.partition_point(|i| key(i) < wanted);
    let end = sorted.partition_point(|i| key(i) <= wanted);
    start..end
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
    /// Positions of the certificates sorted by id, of those with a leaf fingerprint sorted by
    /// it, and of the domains that reference a certificate sorted by that id: binary-searched
    /// indexes (a 10,000-domain account would make linear searches quadratic) of 4 bytes an
    /// entry, where maps keyed by copies of the ids took ~100.
    by_id: Vec<u32>,
    by_leaf: Vec<u32>,
    users: Vec<u32>,
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
        let positions = |n: usize| (0..n).filter_map(|i| u32::try_from(i).ok());
        let mut by_id: Vec<u32> = positions(certificates.len()).collect();
        by_id.sort_by(|&a, &b| {
            certificates[a as usize]
                .id
                .cmp(&certificates[b as usize].id)
        });
        let mut by_leaf: Vec<u32> = positions(certificates.len())
            .filter(|&i| certificates[i as usize].leaf_fingerprint().is_some())
            .collect();
        by_leaf.sort_by_key(|&i| certificates[i as usize].leaf_fingerprint());
        let mut users: Vec<u32> = positions(domains.len())
            .filter(|&i| domains[i as usize].certificate_id().is_some())
            .collect();
        users.sort_by_key(|&i| domains[i as usize].certificate_id());
        Self {
            fetched_at,
            certificates,
            domains,
            credentials,
            missing_certificates,
            by_id,
            by_leaf,
            users,
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
        let certificates = &self.certificates;
        let at = self
            .by_id
            .partition_point(|&i| certificates[i as usize].id.as_str() < id);
        let found = &certificates[*self.by_id.get(at)? as usize];
        (found.id == id).then_some(found)
    }

    /// The SHA-256 fingerprint of the leaf of certificate `id`, when its PEM parsed.
    pub fn leaf_fingerprint(&self, id: &str) -> Option<&str> {
        self.certificate(id)?.leaf_fingerprint()
    }

    /// The certificates whose leaf has this SHA-256 fingerprint (from their `certificate_pem`), so
    /// a copy uploaded by hand is found as well as the watchdog's own.
    pub fn with_leaf<'a>(
        &'a self,
        fingerprint: &str,
    ) -> impl Iterator<Item = &'a Certificate> + 'a {
        let key = |&i: &u32| self.certificates[i as usize].leaf_fingerprint();
        let range = equal_range(&self.by_leaf, key, Some(fingerprint));
        self.by_leaf[range]
            .iter()
            .map(|&i| &self.certificates[i as usize])
    }

    /// The domains that reference the certificate `id`.
    pub fn domains_using<'a>(&'a self, id: &str) -> impl Iterator<Item = &'a ReservedDomain> + 'a {
        let key = |&i: &u32| self.domains[i as usize].certificate_id();
        let range = equal_range(&self.users, key, Some(id));
        self.users[range].iter().map(|&i| &self.domains[i as usize])
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

/// A page of listed certificates judged in parallel: judging is mostly one signature check a
/// chain (~60 µs for ECDSA P-256), six seconds on one core for 100,000 certificates. The page's
/// order is kept.
fn judged_page(page: Vec<TlsCertificate>, judge: &Judge<'_>) -> Vec<Certificate> {
    judged_on(judging_pool(), page, judge)
}

/// At most this many threads judge: a watchdog's burst at each sync should not take every core
/// of a large host.
const MAX_JUDGING_THREADS: usize = 4;

/// The threads that judge, started at the first sync and kept (idle between syncs). `None` when
/// they cannot be started (a tasks limit): then one thread judges, the sync's own.
fn judging_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_JUDGING_THREADS);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("judge-{i}"))
            .build()
            .inspect_err(|e| {
                tracing::warn!(
                    "certificates are judged on one thread: cannot start {threads} threads: {e}"
                )
            })
            .ok()
    })
    .as_ref()
}

fn judged_on(
    pool: Option<&rayon::ThreadPool>,
    page: Vec<TlsCertificate>,
    judge: &Judge<'_>,
) -> Vec<Certificate> {
    use rayon::prelude::*;
    match pool {
        Some(pool) => pool.install(|| {
            page.into_par_iter()
                .map(|c| Certificate::judged_by(c, judge))
                .collect()
        }),
        None => page
            .into_iter()
            .map(|c| Certificate::judged_by(c, judge))
            .collect(),
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
    let judge = Judge::new(trust, now);
    let (mut certificates, domains, credentials) = tokio::try_join!(
        client.list_tls_certificates_with(|page| judged_page(page, &judge)),
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
            Ok(certificate) => certificates.push(Certificate::judged_by(certificate, &judge)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::certs::generate::{Signer, Spec};
    use crate::model::judge::ChainVerdict;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    #[test]
    fn a_page_is_judged_alike_and_in_order_on_a_pool_or_on_one_thread() {
        let root = Signer::new("Page Root").unwrap();
        let int = root.intermediate("Page Intermediate", false).unwrap();
        let trust = Trust::with_anchors(
            &crate::model::certs::parse_chain(root.root_pem().as_bytes())
                .unwrap()
                .certificates,
        )
        .unwrap();
        // Every third one a leaf alone: its issuer missing.
        let pems: Vec<String> = (0..24)
            .map(|i| {
                let name = format!("app{i}.example.com");
                let names = [name.clone()];
                let g = int
                    .generate(&Spec {
                        common_name: &name,
                        dns_names: &names,
                        not_before: NOW - time::Duration::days(1),
                        not_after: NOW + time::Duration::days(60),
                    })
                    .unwrap();
                if i % 3 == 0 {
                    g.leaf_pem
                } else {
                    g.chain_pem
                }
            })
            .collect();
        let page = || -> Vec<TlsCertificate> {
            pems.iter()
                .enumerate()
                .map(|(i, pem)| {
                    serde_json::from_value(serde_json::json!({
                        "id": format!("cert_{i}"),
                        "certificate_pem": pem,
                        "not_before": "2026-11-24T10:00:00Z",
                        "not_after": "2027-01-24T10:00:00Z",
                    }))
                    .unwrap()
                })
                .collect()
        };
        let judge = Judge::new(&trust, NOW);
        let one_thread = judged_on(None, page(), &judge);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let pooled = judged_on(Some(&pool), page(), &judge);
        assert_eq!(pooled, one_thread);
        let ids: Vec<&str> = pooled.iter().map(|c| c.id.as_str()).collect();
        let expected: Vec<String> = (0..24).map(|i| format!("cert_{i}")).collect();
        assert_eq!(ids, expected);
        for (i, c) in pooled.iter().enumerate() {
            let PemFacts::Judged(facts) = &c.pem else {
                panic!("{} was not judged: {:?}", c.id, c.pem)
            };
            assert_eq!(facts.dns_names, [format!("app{i}.example.com")]);
            let alone = matches!(
                facts.chain,
                ChainVerdict::Untrusted {
                    leaf_alone: true,
                    ..
                }
            );
            assert_eq!(alone, i % 3 == 0, "{}: {:?}", c.id, facts.chain);
        }
    }
}
