//! Edge probes at scale: 10,000 reserved domains (a bulk account in the simulator), each served
//! its own certificate by a loopback TLS edge following the account, probed at the default
//! `edge.concurrency` (8) and at 32; then judging the chains against the trust store and the
//! evaluation of the findings. Prints the time per 1,000 domains. `cargo bench --bench edge`.
//!
//! The edge runs in the same process on the same two cores, so each handshake is paid for twice
//! (client and server): the numbers are an upper bound for the prober's own cost.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use ngrok_cert_watchdog::core::edge::{self, EdgeMemory, EdgePolicy};
use ngrok_cert_watchdog::model::trust::Trust;
use ngrok_cert_watchdog::sim::edge::EdgeServer;
use ngrok_cert_watchdog::sim::{seed, Sim};
use ngrok_cert_watchdog::sources::edge::{probe_all, Probe, ProbeOptions};
use ngrok_cert_watchdog::sources::inventory;
use ngrok_cert_watchdog::sources::ngrok::{Client, ClientOptions, RetryPolicy};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use secrecy::SecretString;
use time::OffsetDateTime;

const KEY: &str = "bench-key";
const DOMAINS: usize = 10_000;

fn per_thousand(d: Duration, n: usize) -> String {
    format!("{:.2} s", d.as_secs_f64() * 1000.0 / n as f64)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sim = Sim::local(KEY).await.unwrap();
    let seeded = Instant::now();
    let bulk = seed::parse(&format!(
        "dev_domain = false\n[bulk]\ncertificates = {DOMAINS}\ndomains = {DOMAINS}\n"
    ))
    .unwrap();
    sim.seed(&bulk, "bench").unwrap();
    println!(
        "seeded {DOMAINS} certificates and domains in {:?}",
        seeded.elapsed()
    );
    let client = Client::new(ClientOptions {
        base_url: sim.url().parse().unwrap(),
        api_key: SecretString::from(KEY.to_string()),
        requests_per_minute: NonZeroU32::new(100_000).unwrap(),
        max_concurrent_requests: NonZeroU32::new(2).unwrap(),
        budget_file: None,
        timeout: Duration::from_secs(60),
        retry: RetryPolicy::default(),
    })
    .unwrap();
    let inventory = inventory::sync(
        &client,
        &ngrok_cert_watchdog::model::trust::Trust::public(),
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let edge = EdgeServer::local().await.unwrap();
    edge.follow(sim.edge_lookup());
    let (targets, _) = edge::targets(&inventory, &BTreeMap::new());
    assert_eq!(targets.len(), DOMAINS);
    let resolve: BTreeMap<_, _> = targets
        .iter()
        .map(|t| (t.sni.clone(), edge.addr()))
        .collect();
    let ca = sim.ca_pem().unwrap();
    let anchors: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca.as_bytes())
        .map(Result::unwrap)
        .collect();
    let trust = Trust::with_anchors(&anchors).unwrap();

    // A first pass warms the edge's cache of server configs (one per certificate), so the
    // measured passes time the probes, not the simulator parsing 10,000 keys.
    let options = |concurrency| ProbeOptions {
        timeout: Duration::from_secs(10),
        concurrency,
        port: 443,
        resolve: resolve.clone(),
        in_flight: None,
        resolver: None,
    };
    let warm = Instant::now();
    let probes = probe_all(&targets, &options(32)).await;
    println!(
        "warm-up pass (edge caching its configs): {:?}",
        warm.elapsed()
    );
    assert!(probes.iter().all(|p| matches!(p, Probe::Served { .. })));

    let mut last = Vec::new();
    for concurrency in [8, 32] {
        edge.reset_counts();
        let started = Instant::now();
        let probes = probe_all(&targets, &options(concurrency)).await;
        let took = started.elapsed();
        let served = probes
            .iter()
            .filter(|p| matches!(p, Probe::Served { .. }))
            .count();
        assert_eq!(served, DOMAINS);
        println!(
            "probe {DOMAINS} domains at concurrency {concurrency}: {took:.2?} ({} per 1,000); at most {} at once; {} connections",
            per_thousand(took, DOMAINS),
            edge.most_at_once(),
            edge.accepted()
        );
        last = probes;
    }

    let now = OffsetDateTime::now_utc();
    let started = Instant::now();
    let seen = edge::judge_probes(targets.clone(), last, now, &trust);
    let judged = started.elapsed();
    let mut memory = EdgeMemory::default();
    memory.record_all(&seen, now);
    let policy = EdgePolicy {
        failures_before_finding: 3,
        propagation_grace: Duration::from_secs(600),
        expiry_critical: ngrok_cert_watchdog::model::expiry::Threshold::duration(
            Duration::from_secs(7 * 86_400),
        ),
    };
    let started = Instant::now();
    let findings = edge::findings(&inventory, &memory, &policy, now);
    let rows = edge::rows(&inventory, &memory);
    let evaluated = started.elapsed();
    assert!(findings.is_empty(), "{:?}", findings.first());
    assert!(rows
        .iter()
        .all(|r| r.matches == Some(true) && r.valid == Some(true)));
    println!(
        "judge {DOMAINS} chains against the trust store: {judged:.2?} ({} per 1,000)",
        per_thousand(judged, DOMAINS)
    );
    println!(
        "findings and metric rows for {DOMAINS} domains: {evaluated:.2?} ({} per 1,000)",
        per_thousand(evaluated, DOMAINS)
    );
    edge.stop().await;
    sim.stop().await;
}
