//! The edge probe against a real TLS server on 127.0.0.1:0 serving a chain per SNI name: what it
//! records, how it fails, and that it stays within its bounds (one timeout per hanging peer,
//! never more sockets than `edge.concurrency`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ngrok_cert_watchdog::model::certs::{self, generate::Signer};
use ngrok_cert_watchdog::sim::edge::EdgeServer;
use ngrok_cert_watchdog::sources::edge::{
    probe_all, InFlight, Probe, ProbeError, ProbeOptions, Target,
};

mod common;

fn options(resolve: BTreeMap<String, SocketAddr>, concurrency: usize) -> ProbeOptions {
    ProbeOptions {
        timeout: Duration::from_secs(2),
        concurrency,
        port: 443,
        resolve,
        in_flight: None,
        resolver: None,
    }
}

fn target(name: &str) -> Target {
    Target {
        domain: name.to_string(),
        sni: name.to_string(),
    }
}

fn fingerprint(probe: &Probe) -> Option<String> {
    match probe {
        Probe::Served { chain, .. } => Some(certs::fingerprint(chain[0].as_ref())),
        Probe::Failed(_) => None,
    }
}

#[tokio::test]
async fn records_the_chain_served_for_each_name_and_names_each_failure() {
    let signer = Signer::new("Edge Test CA").unwrap();
    let app = common::generate(&signer, &["app.example.com"], -1, 30);
    let other = common::generate(&signer, &["other.example.net"], -1, 30);
    let edge = EdgeServer::local().await.unwrap();
    edge.serve("app.example.com", &app.chain_pem, &app.key_pem)
        .unwrap();
    // A name served someone else's certificate: recorded all the same (judging comes later).
    edge.serve("wrong.example.com", &other.chain_pem, &other.key_pem)
        .unwrap();
    // A port nobody listens on.
    let closed_addr = SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let resolve: BTreeMap<String, SocketAddr> = [
        ("app.example.com", edge.addr()),
        ("wrong.example.com", edge.addr()),
        ("unknown.example.com", edge.addr()),
        ("closed.example.com", closed_addr),
    ]
    .into_iter()
    .map(|(n, a)| (n.to_string(), a))
    .collect();
    let names = [
        "app.example.com",
        "wrong.example.com",
        "unknown.example.com",
        "closed.example.com",
    ];
    let targets: Vec<Target> = names.iter().map(|n| target(n)).collect();
    let probes = probe_all(&targets, &options(resolve, 8)).await;

    let leaf = |pem: &str| certs::leaf_fingerprint(pem.as_bytes()).unwrap();
    assert_eq!(fingerprint(&probes[0]), Some(leaf(&app.chain_pem)));
    match &probes[0] {
        Probe::Served { chain, address } => {
            assert_eq!(chain.len(), 2, "leaf and its CA, as served");
            assert_eq!(*address, edge.addr());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fingerprint(&probes[1]), Some(leaf(&other.chain_pem)));
    match &probes[2] {
        Probe::Failed(e @ ProbeError::Tls(_)) => {
            assert!(e.to_string().contains("closed the connection"), "{e}")
        }
        other => panic!("an unknown name is broken off: {other:?}"),
    }
    assert_eq!(
        probes[3],
        Probe::Failed(ProbeError::Refused(closed_addr)),
        "a closed port is refused"
    );
    edge.stop().await;
}

#[tokio::test]
async fn a_hanging_peer_costs_one_timeout_and_blocks_no_other_probe() {
    let signer = Signer::new("Edge Test CA").unwrap();
    let edge = EdgeServer::local().await.unwrap();
    let mut resolve = BTreeMap::new();
    let mut targets = Vec::new();
    for n in 0..20 {
        let name = format!("h{n}.example.com");
        let g = common::generate(&signer, &[&name], -1, 30);
        edge.serve(&name, &g.chain_pem, &g.key_pem).unwrap();
        resolve.insert(name.clone(), edge.addr());
        targets.push(target(&name));
    }
    edge.hang("h3.example.com");
    let options = options(resolve, 2);
    let started = Instant::now();
    let pass = tokio::spawn(async move { probe_all(&targets, &options).await });
    // While the hanging peer holds its slot, the other slot has gone through the other 19: a
    // pass that waited for it (one probe at a time, or batch by batch) would be at 4 by now.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        edge.accepted(),
        20,
        "accepted before the hanging peer's timeout"
    );
    let probes = pass.await.unwrap();
    let took = started.elapsed();
    assert_eq!(
        probes[3],
        Probe::Failed(ProbeError::Timeout(Duration::from_secs(2)))
    );
    for (i, p) in probes.iter().enumerate().filter(|(i, _)| *i != 3) {
        assert!(fingerprint(p).is_some(), "probe {i}: {p:?}");
    }
    // One slot was held for one timeout; the other went through the other 19 meanwhile.
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_millis(3500), "{took:?}");
    edge.stop().await;
}

#[tokio::test]
async fn five_hundred_domains_never_open_more_sockets_than_the_concurrency() {
    let signer = Signer::with_shared_leaf_key("Edge Test CA").unwrap();
    let edge = EdgeServer::local().await.unwrap();
    // Every connection waits a little for its ServerHello, so that probes overlap visibly.
    edge.set_hello_delay(Duration::from_millis(5));
    let wildcard = common::generate(&signer, &["*.example.com"], -1, 30);
    edge.serve("*.example.com", &wildcard.chain_pem, &wildcard.key_pem)
        .unwrap();
    let targets: Vec<Target> = (0..500)
        .map(|n| target(&format!("d{n}.example.com")))
        .collect();
    let resolve = targets
        .iter()
        .map(|t| (t.sni.clone(), edge.addr()))
        .collect();
    let concurrency = 8; // the default of edge.concurrency
    let in_flight = std::sync::Arc::new(InFlight::default());
    let options = ProbeOptions {
        in_flight: Some(in_flight.clone()),
        ..options(resolve, concurrency)
    };
    let probes = probe_all(&targets, &options).await;
    assert!(probes.iter().all(|p| fingerprint(p).is_some()));
    assert_eq!(edge.accepted(), 500);
    // Measured at the prober: probes from before the name lookup until the socket is closed.
    assert_eq!(in_flight.most(), concurrency);
    // Measured at the server: connections waiting for their ServerHello at once, each an open
    // socket of the prober. The bound holds, and is reached (the probes do run side by side).
    assert_eq!(edge.most_at_once(), concurrency);
    edge.stop().await;
}

#[tokio::test]
async fn names_not_in_edge_resolve_are_resolved_through_the_dns_nameservers() {
    use ngrok_cert_watchdog::sim::dns::{Responder, Zone};
    let signer = Signer::new("Edge Test CA").unwrap();
    let app = common::generate(&signer, &["app.example.com"], -1, 30);
    let edge = EdgeServer::local().await.unwrap();
    edge.serve("app.example.com", &app.chain_pem, &app.key_pem)
        .unwrap();
    // The loopback DNS server knows app.example.com; nothing else does (no /etc/hosts entry).
    let mut zone = Zone::default().with_apex("example.com");
    zone.address("app.example.com", edge.addr().ip());
    let dns = Responder::start("127.0.0.1:0".parse().unwrap(), zone)
        .await
        .unwrap();
    let resolver =
        ngrok_cert_watchdog::sources::dns::Resolver::new(&[dns.addr()], Duration::from_secs(2))
            .unwrap();
    let options = ProbeOptions {
        port: edge.addr().port(),
        resolver: Some(std::sync::Arc::new(resolver)),
        ..options(BTreeMap::new(), 2)
    };
    let probes = probe_all(
        &[target("app.example.com"), target("nx.example.com")],
        &options,
    )
    .await;
    assert_eq!(
        fingerprint(&probes[0]),
        certs::leaf_fingerprint(app.chain_pem.as_bytes())
    );
    match &probes[1] {
        Probe::Failed(ProbeError::Dns(why)) => assert!(why.contains("nx.example.com"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// A TLS server that sends one certificate's chain but signs the handshake with another key:
/// someone who has the chain (it is public) but not its key.
#[derive(Debug)]
struct Impostor(std::sync::Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Impostor {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[tokio::test]
async fn a_chain_sent_without_its_key_is_not_recorded_as_served() {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let signer = Signer::new("Edge Test CA").unwrap();
    let app = common::generate(&signer, &["app.example.com"], -1, 30);
    let other = common::generate(&signer, &["app.example.com"], -1, 30);
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(app.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(other.key_pem.as_bytes()).unwrap();
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    let certified = rustls::sign::CertifiedKey::new(chain, signing);
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_cert_resolver(std::sync::Arc::new(Impostor(std::sync::Arc::new(
        certified,
    ))));
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = acceptor.accept(stream).await;
    });
    let resolve = [("app.example.com".to_string(), addr)].into();
    let probes = probe_all(&[target("app.example.com")], &options(resolve, 1)).await;
    assert!(
        matches!(&probes[0], Probe::Failed(_)),
        "recorded as served: {:?}",
        fingerprint(&probes[0])
    );
    server.await.unwrap();
}
