//! The DNS diagnosis of 10,000 custom domains against the loopback responder (`sim::dns`):
//! the wall time of one pass (lookups and judgement), per 1,000 domains, and the queries it
//! sent. 90 % of the domains are right (one CNAME query each), 10 % have an A record instead
//! (CNAME, A, AAAA, SOA and the target's addresses), 5 % are managed (CAA walked up to the
//! TLD). `cargo bench --bench dns`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ngrok_cert_watchdog::core::dns::apply;
use ngrok_cert_watchdog::model::FindingKind;
use ngrok_cert_watchdog::sim::dns::{Responder, Zone};
use ngrok_cert_watchdog::sources::dns::{diagnose, Resolver};
use ngrok_cert_watchdog::sources::inventory::Inventory;
use ngrok_cert_watchdog::sources::ngrok::ReservedDomain;
use time::OffsetDateTime;

const DOMAINS: usize = 10_000;
const RUNS: usize = 3;

fn domain(i: usize) -> ReservedDomain {
    let mut json = serde_json::json!({
        "id": format!("rd_{i}"),
        "domain": format!("d{i}.example.com"),
        "cname_target": format!("t{i}.cname.ngrok.test"),
        "certificate": {"id": format!("cert_{i}")},
    });
    if i.is_multiple_of(20) {
        json["certificate_management_policy"] = serde_json::json!({"authority": "letsencrypt"});
    }
    serde_json::from_value(json).unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let domains: Vec<ReservedDomain> = (0..DOMAINS).map(domain).collect();
    let mut zone = Zone::default()
        .with_apex("example.com")
        .with_apex("ngrok.test");
    zone.address("*.cname.ngrok.test", "127.0.0.1".parse().unwrap())
        .caa("example.com", false, "issue", "letsencrypt.org");
    for (i, d) in domains.iter().enumerate() {
        if i % 10 == 5 {
            zone.address(&d.domain, "203.0.113.7".parse().unwrap());
        } else {
            zone.cname(&d.domain, d.cname_target.as_deref().unwrap());
        }
    }
    let server = Responder::start("127.0.0.1:0".parse().unwrap(), zone)
        .await
        .unwrap();
    let inventory = Inventory::new(
        OffsetDateTime::now_utc(),
        Vec::<ngrok_cert_watchdog::sources::ngrok::TlsCertificate>::new(),
        domains,
        Vec::new(),
        BTreeSet::new(),
    );
    println!(
        "| run | domains | wall (s) | per 1,000 (ms) | queries | dns_misconfigured | dns_ok = 1 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for run in 1..=RUNS {
        // A new resolver each run: nothing is answered from the last run's cache.
        let resolver = Resolver::new(&[server.addr()], Duration::from_secs(5)).unwrap();
        let queries_before = server.queries();
        let started = Instant::now();
        let diagnosis = diagnose(&resolver, inventory.domains()).await;
        let mut findings = Vec::new();
        let ok = apply(&inventory, &diagnosis, &mut findings);
        let wall = started.elapsed();
        let wrong = findings
            .iter()
            .filter(|f| f.kind == FindingKind::DnsMisconfigured)
            .count();
        assert_eq!(wrong, DOMAINS / 10, "every A record found, nothing else");
        println!(
            "| {run} | {DOMAINS} | {:.2} | {:.0} | {} | {wrong} | {} |",
            wall.as_secs_f64(),
            wall.as_secs_f64() * 1000.0 / (DOMAINS as f64 / 1000.0),
            server.queries() - queries_before,
            ok.iter().filter(|(_, ok)| *ok).count()
        );
    }
}
