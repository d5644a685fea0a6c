//! DNS diagnosis against a real DNS server on 127.0.0.1:0 (the project's responder, `sim::dns`):
//! each misconfiguration appears as `dns_misconfigured` with the record to create, and
//! disappears once the zone is fixed, through the same resolver; healthy domains have none; a
//! server that never answers gives "could not check", not a finding.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ngrok_cert_watchdog::core::dns::apply;
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
        json["certificate_management_status"] =
            serde_json::json!({"renews_at": null, "provisioning_job": null});
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
    Responder::start("127.0.0.1:0".parse().unwrap(), zone)
        .await
        .unwrap()
}

fn resolver(at: SocketAddr) -> Resolver {
    Resolver::new(&[at], Duration::from_secs(2)).unwrap()
}

async fn findings(
    resolver: &Resolver,
    domains: &[ReservedDomain],
) -> (Vec<Finding>, Vec<(String, bool)>) {
    let now = OffsetDateTime::now_utc();
    let inventory = Inventory::new(
        now,
        Vec::<ngrok_cert_watchdog::sources::ngrok::TlsCertificate>::new(),
        domains.to_vec(),
        Vec::new(),
        BTreeSet::new(),
    );
    let diagnosis = diagnose(resolver, inventory.domains()).await;
    let mut found = evaluate(&inventory, &ExpiryPolicy::default(), now);
    let ok = apply(&inventory, &diagnosis, &mut found);
    (found, ok)
}

fn dns_findings(found: &[Finding]) -> Vec<&Finding> {
    found
        .iter()
        .filter(|f| f.kind == FindingKind::DnsMisconfigured)
        .collect()
}

fn only_dns(found: &[Finding], id: &str) -> Finding {
    let dns: Vec<_> = dns_findings(found)
        .into_iter()
        .filter(|f| f.resource_id == id)
        .collect();
    assert_eq!(dns.len(), 1, "one dns finding for {id}: {found:#?}");
    dns[0].clone()
}

#[tokio::test]
async fn an_a_record_instead_of_the_cname_is_named_with_the_record_to_create_and_clears_when_fixed()
{
    let mut zone = base_zone();
    zone.address("blog.example.com", ip("203.0.113.7"));
    zone.cname("ok.example.com", &target("rd_ok"));
    let server = responder(zone).await;
    let resolver = resolver(server.addr());
    let domains = vec![
        domain("rd_blog", "blog.example.com", false),
        domain("rd_ok", "ok.example.com", false),
    ];

    let (found, ok) = findings(&resolver, &domains).await;
    let f = only_dns(&found, "rd_blog");
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.message.contains("blog.example.com has an A record 203.0.113.7; replace it with CNAME blog.example.com → rd_blog.cname.ngrok.test"),
        "{}",
        f.message
    );
    assert_eq!(
        dns_findings(&found).len(),
        1,
        "the healthy domain has none: {found:#?}"
    );
    assert!(ok.contains(&("blog.example.com".to_string(), false)));
    assert!(ok.contains(&("ok.example.com".to_string(), true)));

    server.zone().cname("blog.example.com", &target("rd_blog"));
    let (found, ok) = findings(&resolver, &domains).await;
    assert!(dns_findings(&found).is_empty(), "{found:#?}");
    assert!(ok.iter().all(|(_, ok)| *ok), "{ok:?}");
}

#[tokio::test]
async fn no_record_and_a_cname_elsewhere_each_say_what_to_create_and_clear_when_fixed() {
    let mut zone = base_zone();
    zone.cname("old.example.com", "old.example.net");
    let server = responder(zone).await;
    let resolver = resolver(server.addr());
    let domains = vec![
        domain("rd_none", "none.example.com", false),
        domain("rd_old", "old.example.com", false),
    ];

    let (found, _) = findings(&resolver, &domains).await;
    let none = only_dns(&found, "rd_none");
    assert!(
        none.message.contains("none.example.com has no record at all; create CNAME none.example.com → rd_none.cname.ngrok.test"),
        "{}",
        none.message
    );
    let old = only_dns(&found, "rd_old");
    assert!(
        old.message.contains("old.example.com: CNAME points at old.example.net (an A record 198.51.100.1); change it to CNAME old.example.com → rd_old.cname.ngrok.test"),
        "{}",
        old.message
    );

    server
        .zone()
        .cname("none.example.com", &target("rd_none"))
        .cname("old.example.com", &target("rd_old"));
    let (found, _) = findings(&resolver, &domains).await;
    assert!(dns_findings(&found).is_empty(), "{found:#?}");
}

#[tokio::test]
async fn an_apex_is_right_with_the_targets_addresses_and_is_told_to_use_an_alias_otherwise() {
    let mut zone = base_zone();
    zone.address("example.com", ip("203.0.113.9"));
    let server = responder(zone).await;
    let resolver = resolver(server.addr());
    let domains = vec![domain("rd_apex", "example.com", false)];

    let (found, ok) = findings(&resolver, &domains).await;
    let f = only_dns(&found, "rd_apex");
    assert!(
        f.message.contains("example.com has an A record 203.0.113.9; replace it with an ALIAS (or ANAME) record example.com → rd_apex.cname.ngrok.test, or your DNS provider's CNAME flattening"),
        "{}",
        f.message
    );
    assert_eq!(ok, vec![("example.com".to_string(), false)]);

    // Flattened: the apex shows the target's own address.
    server
        .zone()
        .remove_type("example.com", hickory_resolver::proto::rr::RecordType::A)
        .address("example.com", ip(NGROK_IP));
    let (found, ok) = findings(&resolver, &domains).await;
    assert!(dns_findings(&found).is_empty(), "{found:#?}");
    assert_eq!(ok, vec![("example.com".to_string(), true)]);
}

#[tokio::test]
async fn a_wildcard_without_its_acme_challenge_cname_is_critical_while_it_has_no_certificate() {
    let mut zone = base_zone();
    zone.cname("*.apps.example.com", &target("rd_wild"));
    let server = responder(zone).await;
    let resolver = resolver(server.addr());
    let mut wild = domain("rd_wild", "*.apps.example.com", true);
    wild.certificate = None;
    let domains = vec![wild];

    let (found, _) = findings(&resolver, &domains).await;
    let f = only_dns(&found, "rd_wild");
    assert_eq!(
        f.severity,
        Severity::Critical,
        "a managed domain without a certificate"
    );
    assert!(
        f.message.contains("_acme-challenge.apps.example.com has no CNAME record of its own (the wildcard *.apps.example.com answers for it, with rd_wild.cname.ngrok.test); create CNAME _acme-challenge.apps.example.com → apps.example.com.acme.ngrok.test"),
        "{}",
        f.message
    );

    server.zone().cname(
        "_acme-challenge.apps.example.com",
        "apps.example.com.acme.ngrok.test",
    );
    let (found, ok) = findings(&resolver, &domains).await;
    assert!(dns_findings(&found).is_empty(), "{found:#?}");
    assert_eq!(ok, vec![("*.apps.example.com".to_string(), true)]);
}

#[tokio::test]
async fn a_dns_error_finding_carries_the_diagnosis_and_the_dns_finding_is_critical() {
    let mut zone = base_zone();
    zone.address("shop.example.com", ip("203.0.113.7"));
    let server = responder(zone).await;
    let resolver = resolver(server.addr());
    let domains = vec![dns_error("rd_shop", "shop.example.com")];

    let (found, _) = findings(&resolver, &domains).await;
    let f = only_dns(&found, "rd_shop");
    assert_eq!(f.severity, Severity::Critical);
    let provisioning = found
        .iter()
        .find(|f| f.kind == FindingKind::ProvisioningFailed)
        .expect("DNS_ERROR finding");
    assert!(
        provisioning.message.contains("DNS as seen from here: shop.example.com has an A record 203.0.113.7; replace it with CNAME shop.example.com → rd_shop.cname.ngrok.test"),
        "{}",
        provisioning.message
    );

    server.zone().cname("shop.example.com", &target("rd_shop"));
    let (found, _) = findings(&resolver, &domains).await;
    assert!(dns_findings(&found).is_empty(), "{found:#?}");
    let provisioning = found
        .iter()
        .find(|f| f.kind == FindingKind::ProvisioningFailed)
        .unwrap();
    assert!(
        provisioning
            .message
            .contains("leads to rd_shop.cname.ngrok.test as it should"),
        "{}",
        provisioning.message
    );
}

#[tokio::test]
async fn caa_that_forbids_lets_encrypt_is_found_up_the_tree_and_clears_when_fixed() {
    let mut zone = base_zone();
    zone.cname("m.example.com", &target("rd_m"))
        .cname("*.w.example.com", &target("rd_w"))
        .cname(
            "_acme-challenge.w.example.com",
            "w.example.com.acme.ngrok.test",
        )
        .caa("example.com", false, "issue", "digicert.com");
    let server = responder(zone).await;
    let resolver = resolver(server.addr());
    let domains = vec![
        domain("rd_m", "m.example.com", true),
        domain("rd_w", "*.w.example.com", true),
        domain("rd_up", "up.example.com", false),
    ];
    server.zone().cname("up.example.com", &target("rd_up"));

    let (found, _) = findings(&resolver, &domains).await;
    let m = only_dns(&found, "rd_m");
    assert_eq!(
        m.severity,
        Severity::Warning,
        "it has a certificate: renewal is what fails"
    );
    assert!(
        m.message.contains("CAA on example.com allows only digicert.com (issue), not letsencrypt.org, which ngrok uses; add CAA example.com 0 issue \"letsencrypt.org\""),
        "{}",
        m.message
    );
    only_dns(&found, "rd_w");
    assert!(
        dns_findings(&found)
            .iter()
            .all(|f| f.resource_id != "rd_up"),
        "CAA matters for managed domains only"
    );

    // issuewild decides for the wildcard; `issue ";"` forbids every CA for the other.
    {
        let mut zone = server.zone();
        zone.remove("example.com");
        zone.caa("example.com", false, "issue", ";").caa(
            "example.com",
            false,
            "issuewild",
            "letsencrypt.org",
        );
    }
    let (found, _) = findings(&resolver, &domains).await;
    let m = only_dns(&found, "rd_m");
    assert!(m.message.contains("CAA on example.com forbids every CA (issue \";\"); add CAA example.com 0 issue \"letsencrypt.org\""), "{}", m.message);
    assert!(
        dns_findings(&found).iter().all(|f| f.resource_id != "rd_w"),
        "{found:#?}"
    );

    // Parameters cannot be judged from here: info, and the DNS counts as right.
    {
        let mut zone = server.zone();
        zone.remove("example.com");
        zone.caa(
            "example.com",
            false,
            "issue",
            "letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/1",
        );
    }
    let (found, ok) = findings(&resolver, &domains).await;
    let m = only_dns(&found, "rd_m");
    assert_eq!(m.severity, Severity::Info);
    assert!(m.message.contains("CAA on example.com limits letsencrypt.org to accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/1, which cannot be judged from here"), "{}", m.message);
    assert!(ok.iter().all(|(_, ok)| *ok), "{ok:?}");

    // The first non-empty set from the name upwards decides: one closer to the name that allows
    // Let's Encrypt wins over a forbidding one higher up.
    {
        let mut zone = server.zone();
        zone.remove("example.com");
        zone.caa("example.com", false, "issue", ";");
        zone.cname("m.sub.example.com", &target("rd_deep"));
        zone.caa("sub.example.com", false, "issue", "letsencrypt.org");
    }
    let deep = vec![
        domain("rd_deep", "m.sub.example.com", true),
        domain("rd_m", "m.example.com", true),
    ];
    let (found, _) = findings(&resolver, &deep).await;
    let only: Vec<_> = dns_findings(&found)
        .iter()
        .map(|f| f.resource_id.clone())
        .collect();
    assert_eq!(only, vec!["rd_m".to_string()], "{found:#?}");

    server.zone().remove("example.com");
    let (found, _) = findings(&resolver, &domains).await;
    assert!(
        dns_findings(&found).is_empty(),
        "no CAA anywhere: every CA may issue: {found:#?}"
    );
}

#[tokio::test]
async fn a_cname_loop_and_a_chain_longer_than_eight_are_findings_not_hangs() {
    let mut zone = base_zone();
    zone.cname("loop.example.com", "a.example.com")
        .cname("a.example.com", "b.example.com")
        .cname("b.example.com", "a.example.com");
    zone.cname("long.example.com", "h1.example.com");
    for i in 1..12 {
        zone.cname(
            &format!("h{i}.example.com"),
            &format!("h{}.example.com", i + 1),
        );
    }
    let server = responder(zone).await;
    let resolver = resolver(server.addr());
    let domains = vec![
        domain("rd_loop", "loop.example.com", false),
        domain("rd_long", "long.example.com", false),
    ];

    let started = Instant::now();
    let (found, ok) = findings(&resolver, &domains).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let lp = only_dns(&found, "rd_loop");
    assert!(
        lp.message.contains("the CNAME chain of loop.example.com loops (loop.example.com → a.example.com → b.example.com → a.example.com); replace the CNAME of loop.example.com with CNAME loop.example.com → rd_loop.cname.ngrok.test"),
        "{}",
        lp.message
    );
    let long = only_dns(&found, "rd_long");
    assert!(long.message.contains("the CNAME chain of long.example.com is longer than 8 (long.example.com → h1.example.com →"), "{}", long.message);
    assert!(ok.iter().all(|(_, ok)| !*ok), "{ok:?}");

    // A chain through the user's own names to the target is right.
    server
        .zone()
        .cname("b.example.com", &target("rd_loop"))
        .cname("h3.example.com", &target("rd_long"));
    let (found, _) = findings(&resolver, &domains).await;
    assert!(dns_findings(&found).is_empty(), "{found:#?}");
}

#[tokio::test]
async fn a_server_that_never_answers_gives_could_not_check_not_a_finding() {
    // Bound, never read: every query times out.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let resolver =
        Resolver::new(&[silent.local_addr().unwrap()], Duration::from_millis(400)).unwrap();
    let domains = vec![
        dns_error("rd_shop", "shop.example.com"),
        domain("rd_blog", "blog.example.com", true),
    ];

    let started = Instant::now();
    let (found, ok) = findings(&resolver, &domains).await;
    let took = started.elapsed();
    assert!(dns_findings(&found).is_empty(), "{found:#?}");
    assert!(
        ok.is_empty(),
        "no dns_ok value when it could not be checked: {ok:?}"
    );
    // Both domains at once, each stopping at its first timeout.
    assert!(took < Duration::from_millis(1500), "{took:?}");
    let provisioning = found
        .iter()
        .find(|f| f.kind == FindingKind::ProvisioningFailed)
        .unwrap();
    assert!(
        provisioning.message.contains("DNS could not be checked from here: could not check shop.example.com: the DNS server did not answer within 400ms"),
        "{}",
        provisioning.message
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_the_dns_problem_and_no_edge_skips_the_queries() {
    let sim = common::seeded(
        "dev_domain = false\n[[domain]]\ndomain = \"blog.example.com\"\nmanaged = true\njob = { error_code = \"DNS_ERROR\", msg = \"CNAME not found\", started_at = \"-3h\" }\n",
    )
    .await;
    let target = common::cname_target(&sim, "blog.example.com");
    let mut zone = base_zone();
    zone.address("blog.example.com", ip("203.0.113.7"));
    let server = responder(zone).await;
    let extra = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"2s\"\n",
        server.addr()
    );
    let (_dir, config) = common::config_for(&sim.url(), common::KEY, &extra);
    let json = |args: &[&str]| {
        let mut all = vec![
            "--config",
            config.to_str().unwrap(),
            "check",
            "--format",
            "json",
        ];
        all.extend_from_slice(args);
        let out = common::run(&all, Duration::from_secs(60));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let report = json(&[]);
    let findings = report["findings"].as_array().unwrap();
    let dns = findings
        .iter()
        .find(|f| f["kind"] == "dns_misconfigured")
        .expect("dns finding");
    assert_eq!(dns["severity"], "critical");
    assert_eq!(dns["domain"], "blog.example.com");
    assert!(
        dns["message"].as_str().unwrap().contains(&format!("blog.example.com has an A record 203.0.113.7; replace it with CNAME blog.example.com → {target}")),
        "{dns}"
    );
    let failed = findings
        .iter()
        .find(|f| f["kind"] == "provisioning_failed")
        .unwrap();
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("DNS as seen from here: blog.example.com has an A record 203.0.113.7"),
        "{failed}"
    );

    let report = json(&["--no-edge"]);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] != "dns_misconfigured"),
        "{report}"
    );
}
