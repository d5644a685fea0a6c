//! Edge probes: a TLS handshake with a reserved domain as its visitors make it (the domain's name
//! as SNI), recording the chain the edge serves whether or not it verifies. Judging that chain
//! is pure code elsewhere (`core::edge`): the verifier here accepts anything and is used for
//! nothing but recording — no probe connection ever carries data.
//!
//! Bounded: at most `concurrency` probes at once (each holds its socket only while it holds a
//! permit), each within `timeout` from name resolution to the end of the handshake, so a peer
//! that hangs costs one timeout and blocks no other probe.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// One domain to probe: connect to `name` (or its `edge.resolve` address), send `sni`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The reserved domain (for a wildcard, `*.example.com`).
    pub domain: String,
    /// The name sent as SNI and resolved to connect: the domain, or a wildcard's probe name.
    pub sni: String,
}

/// How probes are made (from `[edge]`).
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub timeout: Duration,
    pub concurrency: usize,
    pub port: u16,
    /// Names connected to at a fixed address instead of being resolved (like curl --resolve).
    pub resolve: BTreeMap<String, SocketAddr>,
    /// Counts the probes under way (each holds at most one socket), when given.
    pub in_flight: Option<Arc<InFlight>>,
    /// The DNS diagnosis's resolver (`dns.nameservers`), for names not in `resolve`; `None`: the
    /// system's resolver.
    pub resolver: Option<Arc<crate::sources::dns::Resolver>>,
}

/// Probes under way now, and the most there were at once: a probe counts from before its name
/// is resolved until its socket is closed.
#[derive(Debug, Default)]
pub struct InFlight {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl InFlight {
    pub fn most(&self) -> usize {
        self.most.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn enter(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The handshake got as far as the edge's certificate: the chain it served, leaf first.
    Served {
        chain: Vec<CertificateDer<'static>>,
        address: SocketAddr,
    },
    /// No certificate was seen.
    Failed(ProbeError),
}

/// Why a probe saw no certificate, in words for the finding's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("DNS: {0}")]
    Dns(String),
    #[error("connection refused by {0}")]
    Refused(SocketAddr),
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("TLS alert from the edge: {0}")]
    TlsAlert(String),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("{0:?} is not a name a TLS client can send")]
    BadName(String),
}

/// Probes every target, at most `options.concurrency` at once; results in the targets' order.
pub async fn probe_all(targets: &[Target], options: &ProbeOptions) -> Vec<Probe> {
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let config = Arc::new(ProbeConfig::new());
    // Shared, not copied per target: `edge.resolve` may name every domain.
    let options = Arc::new(options.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for (i, target) in targets.iter().enumerate() {
        let (permits, config) = (Arc::clone(&permits), Arc::clone(&config));
        let (target, options) = (target.clone(), Arc::clone(&options));
        tasks.spawn(async move {
            // No socket before the permit: concurrency bounds open connections, not just work.
            let Ok(_permit) = permits.acquire_owned().await else {
                return (
                    i,
                    Probe::Failed(ProbeError::Connect("shutting down".into())),
                );
            };
            (i, probe(&target, &options, &config).await)
        });
    }
    let mut results = vec![None; targets.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, probe)) = joined {
            results[i] = Some(probe);
        }
    }
    results
        .into_iter()
        .map(|p| {
            p.unwrap_or(Probe::Failed(ProbeError::Connect(
                "probe task failed".into(),
            )))
        })
        .collect()
}

/// One probe within `options.timeout`.
async fn probe(target: &Target, options: &ProbeOptions, config: &ProbeConfig) -> Probe {
    if let Some(counter) = &options.in_flight {
        counter.enter();
    }
    // The handshake's future owns the socket: on return or timeout it is dropped, and closed.
    let probe =
        match tokio::time::timeout(options.timeout, handshake(target, options, config)).await {
            Ok(probe) => probe,
            Err(_) => Probe::Failed(ProbeError::Timeout(options.timeout)),
        };
    if let Some(counter) = &options.in_flight {
        counter.leave();
    }
    probe
}

async fn handshake(target: &Target, options: &ProbeOptions, config: &ProbeConfig) -> Probe {
    let name = match ServerName::try_from(target.sni.clone()) {
        Ok(n) => n,
        Err(_) => return Probe::Failed(ProbeError::BadName(target.sni.clone())),
    };
    let addresses = match options.resolve.get(&target.sni.to_ascii_lowercase()) {
        Some(addr) => vec![*addr],
        None => match resolve(&target.sni, options.port, options.resolver.as_deref()).await {
            Ok(a) => a,
            Err(e) => return Probe::Failed(e),
        },
    };
    let (stream, address) = match connect(&addresses).await {
        Ok(s) => s,
        Err(e) => return Probe::Failed(e),
    };
    let recorded = Arc::new(Recorder::new(config));
    let client = rustls::ClientConfig::builder_with_provider(Arc::clone(&config.provider))
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(recorded.clone())
                .with_no_client_auth()
        });
    let client = match client {
        Ok(c) => c,
        Err(e) => return Probe::Failed(ProbeError::Tls(e.to_string())),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let result = connector.connect(name, stream).await;
    // A chain seen is what the edge serves, even if the handshake broke off after it.
    match (recorded.take(), result) {
        (Some(chain), _) => Probe::Served { chain, address },
        (None, Err(e)) => Probe::Failed(handshake_error(&e)),
        (None, Ok(_)) => Probe::Failed(ProbeError::Tls("no certificate was sent".into())),
    }
}

/// The addresses of `name`. The one place names are resolved: the DNS diagnosis's resolver
/// (`sources::dns`, with `dns.nameservers`) replaces the system's here.
async fn resolve(
    name: &str,
    port: u16,
    resolver: Option<&crate::sources::dns::Resolver>,
) -> Result<Vec<SocketAddr>, ProbeError> {
    if let Some(resolver) = resolver {
        return match resolver.addresses(name).await {
            Ok(ips) if !ips.is_empty() => Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()),
            Ok(_) => Err(ProbeError::Dns(format!("{name} has no address"))),
            Err(e) => Err(ProbeError::Dns(format!("cannot resolve {name}: {e}"))),
        };
    }
    match tokio::net::lookup_host((name, port)).await {
        Ok(found) => {
            let found: Vec<SocketAddr> = found.collect();
            if found.is_empty() {
                Err(ProbeError::Dns(format!("{name} has no address")))
            } else {
                Ok(found)
            }
        }
        Err(e) => Err(ProbeError::Dns(format!("cannot resolve {name}: {e}"))),
    }
}

/// The first address that accepts a connection, in order.
async fn connect(addresses: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), ProbeError> {
    let mut last = ProbeError::Dns("no address to connect to".into());
    for &addr in addresses {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok((s, addr)),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = ProbeError::Refused(addr)
            }
            Err(e) => last = ProbeError::Connect(format!("{addr}: {e}")),
        }
    }
    Err(last)
}

fn handshake_error(e: &std::io::Error) -> ProbeError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::AlertReceived(alert)) => {
            ProbeError::TlsAlert(format!("{alert:?}").to_ascii_lowercase())
        }
        Some(other) => ProbeError::Tls(other.to_string()),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            ProbeError::Tls("the edge closed the connection during the handshake".into())
        }
        None => ProbeError::Tls(e.to_string()),
    }
}

/// What every probe shares: the crypto provider and its signature algorithms.
#[derive(Debug)]
struct ProbeConfig {
    provider: Arc<CryptoProvider>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ProbeConfig {
    fn new() -> Self {
        let provider = rustls::crypto::ring::default_provider();
        let algorithms = provider.signature_verification_algorithms;
        Self {
            provider: Arc::new(provider),
            algorithms,
        }
    }
}

/// A verifier that records the served chain and accepts it, whatever it is: the chain is judged
/// afterwards, with the project's one `Trust`. It still checks the handshake signatures, so what
/// is recorded is a chain whose key the edge holds.
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Option<Vec<CertificateDer<'static>>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Recorder {
    fn new(config: &ProbeConfig) -> Self {
        Self {
            chain: Mutex::new(None),
            algorithms: config.algorithms,
        }
    }

    fn take(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.chain.lock().ok().and_then(|mut c| c.take())
    }

    /// A handshake signature that does not verify: the peer does not hold the key of the chain
    /// it sent, which is then not what the edge serves (the handshake fails instead).
    fn forget_unless(
        &self,
        verified: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if verified.is_err() {
            self.take();
        }
        verified
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        if let Ok(mut slot) = self.chain.lock() {
            *slot = Some(chain);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.forget_unless(rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.forget_unless(rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
