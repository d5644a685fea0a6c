//! A small TLS "edge" on loopback for the demo and the tests: serves a chain per SNI name (like
//! ngrok's edge serves each domain's certificate), and can be told to hang on a name. Counts the
//! connections waiting for their `ServerHello`, so a test can measure how many probes were open
//! at once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::account::ServedPair;
use crate::model::certs::{self, CertError};

/// What the account attaches to a name (see `Sim::edge_lookup`).
pub type Lookup = Arc<dyn Fn(&str) -> Option<ServedPair> + Send + Sync>;

#[derive(Default)]
struct Names {
    /// Lowercase name (or `*.suffix`) → what is served for it, whatever the account says.
    configs: BTreeMap<String, Arc<ServerConfig>>,
    /// Names whose connections are accepted and then never answered.
    hanging: BTreeSet<String>,
    /// Names without an entry above are served what the account attaches to them.
    account: Option<Lookup>,
    /// Server configs of account certificates, by certificate id.
    cached: BTreeMap<String, Arc<ServerConfig>>,
    /// Served for a name nothing else covers (ngrok's edge serves its own certificate then).
    fallback: Option<Arc<ServerConfig>>,
}

struct Shared {
    names: Mutex<Names>,
    /// How long each connection waits before its `ServerHello` (to make concurrency visible).
    hello_delay: Mutex<Duration>,
    waiting: AtomicUsize,
    most_waiting: AtomicUsize,
    accepted: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running loopback edge.
pub struct EdgeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl EdgeServer {
    /// Serves on `listener` until [`EdgeServer::stop`]; serves nothing until told.
    pub fn start(listener: TcpListener) -> std::io::Result<EdgeServer> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            names: Mutex::new(Names::default()),
            hello_delay: Mutex::new(Duration::ZERO),
            waiting: AtomicUsize::new(0),
            most_waiting: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stop.clone()));
        Ok(EdgeServer {
            addr,
            shared,
            stop,
            task,
        })
    }

    /// Binds `127.0.0.1:0`.
    pub async fn local() -> std::io::Result<EdgeServer> {
        Self::start(TcpListener::bind("127.0.0.1:0").await?)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `chain_pem` (leaf first) with `key_pem` for `name` (`*.example.com` serves every
    /// name one label under it that has nothing of its own).
    pub fn serve(&self, name: &str, chain_pem: &str, key_pem: &str) -> Result<(), CertError> {
        let chain = certs::parse_chain(chain_pem.as_bytes())?;
        let key = certs::parse_private_key(key_pem.as_bytes())?;
        let config = server_config(chain.certificates, key)?;
        let mut names = lock(&self.shared.names);
        names.hanging.remove(&name.to_ascii_lowercase());
        names.configs.insert(name.to_ascii_lowercase(), config);
        Ok(())
    }

    /// Serves every name without an entry of its own what the account attaches to it, live:
    /// a rotation through the API is served at once (an entry set with [`EdgeServer::serve`]
    /// stands for an edge that has not picked it up yet).
    pub fn follow(&self, lookup: Lookup) {
        lock(&self.shared.names).account = Some(lookup);
    }

    /// Serves this chain for names that have nothing else (instead of breaking the handshake
    /// off), as ngrok's edge serves its own certificate while a domain has none.
    pub fn set_fallback(&self, chain_pem: &str, key_pem: &str) -> Result<(), CertError> {
        let chain = certs::parse_chain(chain_pem.as_bytes())?;
        let key = certs::parse_private_key(key_pem.as_bytes())?;
        lock(&self.shared.names).fallback = Some(server_config(chain.certificates, key)?);
        Ok(())
    }

    /// Accepts connections for `name` and never answers them.
    pub fn hang(&self, name: &str) {
        lock(&self.shared.names)
            .hanging
            .insert(name.to_ascii_lowercase());
    }

    /// Stops serving `name`: its handshakes are broken off.
    pub fn forget(&self, name: &str) {
        let mut names = lock(&self.shared.names);
        names.configs.remove(&name.to_ascii_lowercase());
        names.hanging.remove(&name.to_ascii_lowercase());
    }

    /// Every connection waits this long before its `ServerHello`.
    pub fn set_hello_delay(&self, delay: Duration) {
        *lock(&self.shared.hello_delay) = delay;
    }

    /// The most connections that were waiting for their `ServerHello` at once: each of them
    /// was an open socket of a client at that moment.
    pub fn most_at_once(&self) -> usize {
        self.shared.most_waiting.load(Ordering::SeqCst)
    }

    /// Starts counting [`EdgeServer::most_at_once`] and [`EdgeServer::accepted`] afresh.
    pub fn reset_counts(&self) {
        self.shared.most_waiting.store(0, Ordering::SeqCst);
        self.shared.accepted.store(0, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, CertError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| CertError::BadKey)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map(Arc::new)
        .map_err(|_| CertError::KeyMismatch)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let (shared, stop) = (Arc::clone(&shared), stop.clone());
        connections.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = serve_one(stream, &shared) => {}
            }
        });
    }
    connections.close();
    connections.wait().await;
}

/// What to do for a connection to `name`: an entry of its own first, then the account's.
fn choose(names: &mut Names, name: &str) -> Choice {
    let wildcard = name.split_once('.').map(|(_, rest)| format!("*.{rest}"));
    if names.hanging.contains(name) {
        return Choice::Hang;
    }
    if let Some(config) = names
        .configs
        .get(name)
        .or_else(|| wildcard.and_then(|w| names.configs.get(&w)))
    {
        return Choice::Serve(Arc::clone(config));
    }
    let Some(pair) = names.account.as_ref().and_then(|lookup| lookup(name)) else {
        return match &names.fallback {
            Some(config) => Choice::Serve(Arc::clone(config)),
            None => Choice::Refuse,
        };
    };
    if let Some(config) = names.cached.get(&pair.certificate_id) {
        return Choice::Serve(Arc::clone(config));
    }
    let config = certs::parse_chain(pair.chain_pem.as_bytes())
        .ok()
        .zip(certs::parse_private_key(pair.key_pem.as_bytes()).ok())
        .and_then(|(chain, key)| server_config(chain.certificates, key).ok());
    match config {
        Some(config) => {
            names
                .cached
                .insert(pair.certificate_id, Arc::clone(&config));
            Choice::Serve(config)
        }
        None => Choice::Refuse,
    }
}

enum Choice {
    Serve(Arc<ServerConfig>),
    Hang,
    Refuse,
}

/// One connection: read the ClientHello, pick what to serve by its SNI, finish the handshake,
/// then wait for the client to close.
async fn serve_one(stream: tokio::net::TcpStream, shared: &Shared) {
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let Ok(start) = acceptor.await else { return };
    let name = start
        .client_hello()
        .server_name()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let chosen = choose(&mut lock(&shared.names), &name);
    let config = match chosen {
        Choice::Serve(config) => config,
        // Nothing for this name: the handshake is broken off.
        Choice::Refuse => return,
        Choice::Hang => {
            // Hold the socket, answer nothing, until the client gives up.
            let mut stream = start.io;
            let mut buf = [0u8; 512];
            use tokio::io::AsyncReadExt;
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            return;
        }
    };
    let waiting = shared.waiting.fetch_add(1, Ordering::SeqCst) + 1;
    shared.most_waiting.fetch_max(waiting, Ordering::SeqCst);
    let delay = *lock(&shared.hello_delay);
    tokio::time::sleep(delay).await;
    shared.waiting.fetch_sub(1, Ordering::SeqCst);
    if let Ok(mut tls) = start.into_stream(config).await {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await;
    }
}
