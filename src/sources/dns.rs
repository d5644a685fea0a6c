//! DNS lookups: one shared resolver built from `[dns]` (the system's resolver configuration
//! unless `dns.nameservers` names servers), the addresses of a name for the edge probes, and the
//! facts one diagnosis pass gathers about each custom domain. What the facts mean is decided in
//! `core::dns`; nothing here judges a record.
//!
//! CNAME chains are followed here, one `CNAME` query per hop, so that the facts say where each
//! step leads (the resolver would otherwise follow them silently). A chain stops at the expected
//! target, at a name without a CNAME, at a loop, or after [`MAX_CHAIN`] hops.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;

use crate::config::DnsSettings;
use crate::sources::ngrok::ReservedDomain;

/// The longest CNAME chain followed: a longer one is reported, never followed further.
pub const MAX_CHAIN: usize = 8;

/// Domains diagnosed at once.
const CONCURRENCY: usize = 8;

/// Answers are kept at most this long, so each pass (minutes apart) asks again, while the
/// parents and targets many domains share are asked once within a pass.
const CACHE_AT_MOST: Duration = Duration::from_secs(60);

/// Why the resolver could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read the system's resolver configuration: {0}")]
    SystemConfig(String),
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
}

/// A lookup that gave nothing to judge (a timeout, SERVFAIL, a refused or unreachable server):
/// "could not check", never "misconfigured".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked(pub String);

impl std::fmt::Display for Unchecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shared resolver. Cheap to clone (the cache is shared).
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    timeout: Duration,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// The resolver `[dns]` describes.
    pub fn from_settings(settings: &DnsSettings) -> Result<Self, SetupError> {
        Self::new(&settings.nameservers, settings.timeout)
    }

    /// `nameservers` empty: the system's configuration (`/etc/resolv.conf`). `timeout` bounds
    /// one lookup, its retries included.
    pub fn new(nameservers: &[SocketAddr], timeout: Duration) -> Result<Self, SetupError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| SetupError::SystemConfig(e.to_string()))?
        } else {
            let servers = nameservers
                .iter()
                .map(|addr| {
                    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                    for c in &mut server.connections {
                        c.port = addr.port();
                    }
                    server
                })
                .collect();
            let mut builder = TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                provider,
            );
            // Named servers are the whole truth: /etc/hosts would hide what they say.
            builder.options_mut().use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
            builder
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.attempts = 2;
        options.timeout = (timeout / 2).max(Duration::from_millis(50));
        options.positive_max_ttl = Some(CACHE_AT_MOST);
        options.negative_max_ttl = Some(CACHE_AT_MOST);
        let inner = builder
            .build()
            .map_err(|e| SetupError::Build(e.to_string()))?;
        Ok(Self { inner, timeout })
    }

    /// The addresses of `name` (A and AAAA, CNAMEs followed by the resolver), for connecting to it.
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, Unchecked> {
        let name = fqdn(name)?;
        let lookup = tokio::time::timeout(self.timeout, self.inner.lookup_ip(name)).await;
        match lookup {
            Err(_) => Err(self.timed_out()),
            Ok(Ok(ips)) => Ok(ips.iter().collect()),
            Ok(Err(e)) => match answer_of(e) {
                Ok(_) => Ok(Vec::new()),
                Err(e) => Err(e),
            },
        }
    }

    fn timed_out(&self) -> Unchecked {
        Unchecked(format!(
            "the DNS server did not answer within {}",
            humantime::format_duration(self.timeout)
        ))
    }

    /// The records of one type at `name` (the resolver follows CNAMEs for every type but CNAME).
    async fn query(&self, name: &Name, rtype: RecordType) -> Result<Answer, Unchecked> {
        let lookup = tokio::time::timeout(self.timeout, self.inner.lookup(name.clone(), rtype));
        match lookup.await {
            Err(_) => Err(self.timed_out()),
            Ok(Ok(found)) => Ok(Answer::Records(
                found
                    .answers()
                    .iter()
                    .map(|r| r.data.clone())
                    .filter(|d| d.record_type() == rtype)
                    .collect(),
            )),
            Ok(Err(e)) => answer_of(e),
        }
    }

    /// The CNAME held by `name` itself, if any.
    async fn cname(&self, name: &Name) -> Result<Option<Name>, Unchecked> {
        Ok(match self.query(name, RecordType::CNAME).await? {
            Answer::Records(records) => records.into_iter().find_map(|d| match d {
                RData::CNAME(c) => Some(c.0),
                _ => None,
            }),
            Answer::Empty { .. } => None,
        })
    }

    /// A and AAAA of a name without a CNAME.
    async fn own_addresses(&self, name: &Name) -> Result<Vec<IpAddr>, Unchecked> {
        let mut addresses = Vec::new();
        for rtype in [RecordType::A, RecordType::AAAA] {
            if let Answer::Records(records) = self.query(name, rtype).await? {
                addresses.extend(records.into_iter().filter_map(|d| match d {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                }));
            }
        }
        addresses.sort_unstable();
        addresses.dedup();
        Ok(addresses)
    }

    /// Whether `name` is the apex of a zone (it holds the zone's SOA).
    async fn is_apex(&self, name: &Name) -> Result<bool, Unchecked> {
        Ok(match self.query(name, RecordType::SOA).await? {
            Answer::Records(records) => !records.is_empty(),
            Answer::Empty { zone } => zone.is_some_and(|z| z == *name),
        })
    }
}

/// What a query found: records, or none (NXDOMAIN or no record of the type; `zone` is the apex
/// of the zone that said so, when it sent its SOA).
enum Answer {
    Records(Vec<RData>),
    Empty { zone: Option<Name> },
}

fn answer_of(e: NetError) -> Result<Answer, Unchecked> {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(none)) => match none.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(Answer::Empty {
                zone: none.soa.map(|soa| soa.name.clone()),
            }),
            code => Err(Unchecked(format!("the DNS server answered {code}"))),
        },
        NetError::Timeout => Err(Unchecked("the DNS server did not answer".to_string())),
        NetError::Dns(DnsError::ResponseCode(code)) => {
            Err(Unchecked(format!("the DNS server answered {code}")))
        }
        e => Err(Unchecked(format!("DNS lookup failed: {e}"))),
    }
}

fn fqdn(name: &str) -> Result<Name, Unchecked> {
    let mut parsed = Name::from_ascii(name.trim_end_matches('.'))
        .map_err(|e| Unchecked(format!("{name} is not a DNS name: {e}")))?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// A name as the facts show it: lower case, without the final dot.
fn shown(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn same(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Where a name's CNAME chain led.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The CNAME targets in order (the name itself is not in it).
    pub hops: Vec<String>,
    pub end: ChainEnd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEnd {
    /// The chain reached the expected target.
    Target,
    /// The last name holds no CNAME; these are its A/AAAA addresses (empty: no address record,
    /// or no record at all).
    Addresses(Vec<IpAddr>),
    /// The chain came back to a name it had passed (the last hop).
    Loop,
    /// More than [`MAX_CHAIN`] CNAMEs in a row.
    TooLong,
    Unchecked(Unchecked),
}

/// A name that must lead to `target`: the domain to its `cname_target`, or a wildcard's
/// `_acme-challenge` name to its `acme_challenge_cname_target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointing {
    pub name: String,
    pub target: String,
    pub chain: Chain,
    /// Whether the name is a zone apex (where a CNAME cannot be); asked only when the name holds
    /// no CNAME.
    pub apex: bool,
    /// The target's own addresses, asked only when the chain ends in addresses elsewhere (an
    /// ALIAS or a flattened CNAME shows the target's addresses).
    pub target_addresses: Option<Result<Vec<IpAddr>, Unchecked>>,
}

/// One CAA record, as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaRecord {
    pub critical: bool,
    pub tag: String,
    pub value: String,
}

/// The CAA set that decides (RFC 8659 §3): the first non-empty one from the name upwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caa {
    Found {
        at: String,
        records: Vec<CaaRecord>,
    },
    /// No CAA record on the name or any parent: every CA may issue.
    Nowhere,
    Unchecked(Unchecked),
}

/// What one pass found about one custom domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDns {
    pub domain_id: String,
    pub domain: String,
    /// The domain (a wildcard literally, `*.example.com`) → its `cname_target`.
    pub target: Pointing,
    /// For wildcards: `_acme-challenge.<base>` → its `acme_challenge_cname_target`.
    pub acme: Option<Pointing>,
    /// For managed domains: the CAA set that applies (for a wildcard, at its base name).
    pub caa: Option<Caa>,
}

/// The domains a diagnosis looks at: those with a `cname_target` (custom domains).
pub fn diagnosable(domain: &ReservedDomain) -> bool {
    !domain.is_dev && domain.cname_target.is_some()
}

/// Looks up every custom domain among `domains`, a few at a time.
pub async fn diagnose(resolver: &Resolver, domains: &[ReservedDomain]) -> Vec<DomainDns> {
    // The futures are built first: a stream of closures over borrowed domains would not be
    // `Send` for the daemon's task (rust-lang/rust#102211).
    let mut lookups = Vec::new();
    for domain in domains {
        if diagnosable(domain) {
            lookups.push(diagnose_one(resolver, domain));
        }
    }
    let found: Vec<Option<DomainDns>> = stream::iter(lookups).buffered(CONCURRENCY).collect().await;
    found.into_iter().flatten().collect()
}

/// The facts of one domain; `None` if it has no `cname_target`.
pub async fn diagnose_one(resolver: &Resolver, domain: &ReservedDomain) -> Option<DomainDns> {
    let target = domain.cname_target.as_deref()?;
    let name = domain.domain.to_ascii_lowercase();
    let base = name.strip_prefix("*.");
    let acme = match (base, domain.acme_challenge_cname_target.as_deref()) {
        (Some(base), Some(acme)) => {
            Some(pointing(resolver, &format!("_acme-challenge.{base}"), acme).await)
        }
        _ => None,
    };
    let caa = match domain.is_managed() {
        true => Some(caa(resolver, base.unwrap_or(&name)).await),
        false => None,
    };
    Some(DomainDns {
        domain_id: domain.id.clone(),
        domain: domain.domain.clone(),
        target: pointing(resolver, &name, target).await,
        acme,
        caa,
    })
}

/// Follows `name`'s CNAME chain towards `target`, then asks what the judgement may need.
pub async fn pointing(resolver: &Resolver, name: &str, target: &str) -> Pointing {
    let chain = follow(resolver, name, target).await;
    let mut apex = false;
    let mut target_addresses = None;
    if let ChainEnd::Addresses(found) = &chain.end {
        if chain.hops.is_empty() {
            apex = match fqdn(name) {
                Ok(n) => resolver.is_apex(&n).await.unwrap_or(false),
                Err(_) => false,
            };
        }
        if !found.is_empty() {
            let mut addresses = resolver.addresses(target).await;
            if let Ok(a) = &mut addresses {
                a.sort_unstable();
                a.dedup();
            }
            target_addresses = Some(addresses);
        }
    }
    Pointing {
        name: name.to_string(),
        target: target.trim_end_matches('.').to_ascii_lowercase(),
        chain,
        apex,
        target_addresses,
    }
}

/// One CNAME query per hop, until the target, a name without a CNAME, a loop or
/// [`MAX_CHAIN`] hops.
async fn follow(resolver: &Resolver, name: &str, target: &str) -> Chain {
    let mut hops: Vec<String> = Vec::new();
    let mut current = match fqdn(name) {
        Ok(n) => n,
        Err(e) => {
            return Chain {
                hops,
                end: ChainEnd::Unchecked(e),
            }
        }
    };
    let end = loop {
        let next = match resolver.cname(&current).await {
            Err(e) => break ChainEnd::Unchecked(e),
            Ok(next) => next,
        };
        let Some(next) = next else {
            break match resolver.own_addresses(&current).await {
                Ok(addresses) => ChainEnd::Addresses(addresses),
                Err(e) => ChainEnd::Unchecked(e),
            };
        };
        let step = shown(&next);
        let looped = same(&step, name) || hops.iter().any(|h| same(h, &step));
        hops.push(step.clone());
        if same(&step, target) {
            break ChainEnd::Target;
        }
        if looped {
            break ChainEnd::Loop;
        }
        if hops.len() >= MAX_CHAIN {
            break ChainEnd::TooLong;
        }
        current = next;
    };
    Chain { hops, end }
}

/// The first non-empty CAA set from `name` upwards (the resolver follows CNAMEs at each name).
async fn caa(resolver: &Resolver, name: &str) -> Caa {
    let mut current = match fqdn(name) {
        Ok(n) => n,
        Err(e) => return Caa::Unchecked(e),
    };
    while current.num_labels() > 0 {
        match resolver.query(&current, RecordType::CAA).await {
            Err(e) => return Caa::Unchecked(e),
            Ok(Answer::Records(records)) if !records.is_empty() => {
                let records = records
                    .into_iter()
                    .filter_map(|d| match d {
                        RData::CAA(c) => Some(CaaRecord {
                            critical: c.issuer_critical,
                            tag: c.tag.to_ascii_lowercase(),
                            value: String::from_utf8_lossy(&c.value).into_owned(),
                        }),
                        _ => None,
                    })
                    .collect();
                return Caa::Found {
                    at: shown(&current),
                    records,
                };
            }
            Ok(_) => current = current.base_name(),
        }
    }
    Caa::Nowhere
}
