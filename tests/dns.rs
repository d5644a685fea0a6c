//! DNS diagnosis against a real DNS server on 127.0.0.1:0 (the project's responder, `sim::dns`):
//! each misconfiguration appears as `dns_misconfigured` with the record to create, and
//! disappears once the zone is fixed, through the same resolver; healthy domains have none; a
//! server that never answers gives "could not check", not a finding.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ngrok_cert_watchdog::core::dns::{apply, dns_ok};
use ngrok_cert_watchdog::core::evaluate::evaluate;
use ngrok_cert_watchdog::model::{ExpiryPolicy, Finding, FindingKind, Severity};
use ngrok_cert_watchdog::sim::dns::{Responder, Zone};
use ngrok_cert_watchdog::sources::dns::{diagnose, Resolver};
use ngrok_cert_watchdog::sources::inventory::Inventory;
use ngrok_cert_watchdog::sources::ngrok::ReservedDomain;
use time::OffsetDateTime;

const NGROK_IP: &str = "192.0.2.10";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn target(id: &str) -> String {
    format!("{id}.cname.ngrok.test")
}

/// A custom domain with an uploaded certificate (`managed`: a managed one that has its
/// certificate).
fn domain(id: &str, name: &str, managed: bool) -> ReservedDomain {
    let mut json = serde_json::json!({
        "id": id,
        "domain": name,
        "cname_target": target(id),
        "certificate": {"id": format!("cert_{id}")},
    });
    if managed {
        json["certificate_management_policy"] = serde_json::json!({"authority": "letsencrypt"});
        json["certificate_management_status"] = serde_json::json!({"renews_at": null, "provisioning_job": null});
    }
    if let Some(base) = name.strip_prefix("*.") {
        json["acme_challenge_cname_target"] = serde_json::json!(format!("{base}.acme.ngrok.test"));
    }
    serde_json::from_value(json).unwrap()
}

/// A managed domain whose provisioning failed with DNS_ERROR and that has no certificate.
fn dns_error(id: &str, name: &str) -> ReservedDomain {
    let mut d = domain(id, name, true);
    d.certificate = None;
    d.certificate_management_status = serde_json::from_value(serde_json::json!({
        "renews_at": null,
        "provisioning_job": {"error_code": "DNS_ERROR", "msg": "CNAME not found", "started_at": "2026-11-20T10:00:00Z"}
    }))
    .unwrap();
    d
}

/// The ngrok side: every target resolves to NGROK_IP.
fn base_zone() -> Zone {
    let mut zone = Zone::default()
        .with_apex("example.com")
        .with_apex("example.net")
        .with_apex("ngrok.test");
    zone.address("*.cname.ngrok.test", ip(NGROK_IP))
        .address("old.example.net", ip("198.51.100.1"));
    zone
}

async fn responder(zone: Zone) -> Responder {
    Responder::start("127.0.0.1:0".parse().unwrap(), zone).await.unwrap()
}

fn resolver(at: SocketAddr) -> Resolver {
    Resolver::new(&[at], Duration::from_secs(2)).unwrap()
}

async fn findings(resolver: &Resolver, domains: &[ReservedDomain]) -> (Vec<Finding>, Vec<(String, bool)>) {
    let now = OffsetDateTime::now_utc();
    let inventory = Inventory::new(now, Vec::new(), domains.to_vec(), Vec::new(), BTreeSet::new());
    let diagnosis = diagnose(resolver, inventory.domains()).await;
    let mut found = evaluate(&inventory, &ExpiryPolicy::default(), now);
    apply(&inventory, &diagnosis, &mut found);
    (found, dns_ok(&inventory, &diagnosis))
}

fn dns_findings(found: &[Finding]) -> Vec<&Finding> {
    found.iter().filter(|f| f.kind == FindingKind::DnsMisconfigured).collect()
}

fn only_dns(found: &[Finding], id: &str) -> Finding {
    let dns: Vec<_> = dns_findings(found).into_iter().filter(|f| f.resource_id == id).collect();
    assert_eq!(dns.len(), 1, "one dns finding for {id}: {found:#?}");
    dns[0].clone()
}

#[tokio::test]
async fn an_a_record_instead_of_the_cname_is_named_with_the_record_to_create_and_clears_when_fixed() {
    let mut zone = base_zone();
    zone.address("blog.example.com", ip("203.0.113.7"));
    zone.cname("ok.example.com", &target("rd_ok"));
    let server = responder(zone).await;
    let resolver = resolver(server.addr());
    let domains = vec![domain("rd_blog", "blog.example.com", false), domain("rd_ok", "ok.example.com", false)];

    let (found, ok) = findings(&resolver, &domains).await;
    let f = only_dns(&found, "rd_blog");
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.message.contains("blog.example.com has an A record 203.0.113.7; replace it with CNAME blog.example.com → rd_blog.cname.ngrok.test"),
        "{}",
        f.message
    );
    assert_eq!(dns_findings(&found).len(), 1, "the healthy domain has none: {found:#?}");
    assert!(ok.contains(&("blog.example.com".to_string(), false)));
    assert!(ok.contains(&("ok.example.com".to_string(), true)));

    server.zone().cname("blog.example.com", &target("rd_blog"));
    let (found, ok) = findings(&resolver, &domains).await;
    assert!(dns_findings(&found).is_empty(), "{found:#?}");
    assert!(ok.iter().all(|(_, ok)| *ok), "{ok:?}");
}
