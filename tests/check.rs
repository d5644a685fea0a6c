//! `check` and the client against the simulator: paging and its exact request counts, retries,
//! every finding kind, and bad input of every sort ending in one clear line and exit 3.

mod common;

use std::time::Duration;

use common::*;
use ngrok_cert_watchdog::model::trust::Trust;
use ngrok_cert_watchdog::sim::{Fault, FaultKind, Sim, SimOptions};
use ngrok_cert_watchdog::sources::ngrok::{ErrorKind, RetryPolicy};

#[tokio::test(flavor = "multi_thread")]
async fn paging_costs_exactly_one_request_per_hundred() {
    for n in [0usize, 1, 100, 101, 250] {
        let sim = seeded(&format!(
            "dev_domain = false\n[bulk]\ncertificates = {n}\ndomains = {n}\ncredentials = {n}\n"
        ))
        .await;
        let client = client(&sim);
        let certificates = client.list_tls_certificates().await.unwrap();
        let domains = client.list_reserved_domains().await.unwrap();
        let credentials = client.list_credentials().await.unwrap();
        assert_eq!(
            (certificates.len(), domains.len(), credentials.len()),
            (n, n, n)
        );
        let expected = n.div_ceil(100).max(1);
        for path in ["/tls_certificates", "/reserved_domains", "/credentials"] {
            assert_eq!(count(&sim, "GET", path), expected, "{n} items on {path}");
        }
        // Newest first, each item once.
        let mut ids: Vec<&str> = certificates.iter().map(|c| c.id.as_str()).collect();
        let listed = ids.clone();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(ids, listed);
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert_nothing_refused(&sim);
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_waited_out_and_retried() {
    let sim = seeded("[bulk]\ncertificates = 3\n").await;
    sim.inject(Fault {
        path: "/tls_certificates".into(),
        method: Some("GET".into()),
        count: 1,
        kind: FaultKind::Status {
            status: 429,
            retry_after: Some(1),
        },
    });
    let started = std::time::Instant::now();
    let list = client(&sim).list_tls_certificates().await.unwrap();
    assert_eq!(list.len(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After was not honoured"
    );
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);
    assert_nothing_refused(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_without_retry_after_is_waited_out_over_the_window() {
    // The record does not say a 429 carries Retry-After: without one, the retries are spread
    // over the account's window (here 2 s for the test: 0.5 s apart over 4 retries), not
    // fired within a few hundred milliseconds of backoff.
    let sim = seeded("[bulk]\ncertificates = 3\n").await;
    sim.inject(Fault {
        path: "/tls_certificates".into(),
        method: Some("GET".into()),
        count: 2,
        kind: FaultKind::Status {
            status: 429,
            retry_after: None,
        },
    });
    let retry = RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        rate_limit_window: Duration::from_secs(2),
        ..RetryPolicy::default()
    };
    let started = std::time::Instant::now();
    let list = common::client_with(&sim, KEY, retry)
        .list_tls_certificates()
        .await
        .unwrap();
    assert_eq!(list.len(), 3);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 429, 200]);
    // The injected 429 is the account's: ERR_NGROK_226 with the real message.
    sim.inject(Fault {
        path: "/tls_certificates".into(),
        method: Some("GET".into()),
        count: 9,
        kind: FaultKind::Status {
            status: 429,
            retry_after: None,
        },
    });
    let retry = RetryPolicy {
        max_attempts: 2,
        rate_limit_window: Duration::from_millis(100),
        ..retry
    };
    let e = common::client_with(&sim, KEY, retry)
        .list_tls_certificates()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(
        e.to_string().contains("ERR_NGROK_226")
            && e.to_string()
                .contains("rate limited to 120 API requests per minute"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulators_own_rate_limit_answers_429_err_ngrok_226() {
    let sim = sim().await;
    sim.set_rate_limit(Some(ngrok_cert_watchdog::sim::RateLimit {
        requests: 2,
        window: Duration::from_secs(60),
    }));
    let http = http();
    let mut last = None;
    for _ in 0..3 {
        last = Some(
            http.get(format!("{}/credentials", sim.url()))
                .bearer_auth(KEY)
                .header("Ngrok-Version", "2")
                .send()
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    assert_eq!(last.status(), 429);
    assert!(last.headers().get("retry-after").is_some());
    let body: serde_json::Value = last.json().await.unwrap();
    assert_eq!(body["error_code"], "ERR_NGROK_226");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_500s_then_success() {
    let sim = seeded("dev_domain = false\n[bulk]\ndomains = 2\n").await;
    sim.inject(Fault {
        path: "/reserved_domains".into(),
        method: None,
        count: 2,
        kind: FaultKind::Status {
            status: 500,
            retry_after: None,
        },
    });
    let list = client(&sim).list_reserved_domains().await.unwrap();
    assert_eq!(list.len(), 2);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 500, 200]);
    assert_nothing_refused(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_whose_outcome_is_unknown_is_never_repeated() {
    let sim = sim().await;
    let names = vec!["up.example.com".to_string()];
    let g = ngrok_cert_watchdog::model::certs::generate::Signer::new("CA")
        .unwrap()
        .generate(&ngrok_cert_watchdog::model::certs::generate::Spec {
            common_name: &names[0],
            dns_names: &names,
            not_before: time::OffsetDateTime::now_utc() - time::Duration::days(1),
            not_after: time::OffsetDateTime::now_utc() + time::Duration::days(60),
        })
        .unwrap();
    sim.inject(Fault {
        path: "/tls_certificates".into(),
        method: Some("POST".into()),
        count: 1,
        kind: FaultKind::Drop,
    });
    let err = client(&sim)
        .create_tls_certificate(&ngrok_cert_watchdog::sources::ngrok::TlsCertificateCreate {
            description: None,
            metadata: None,
            certificate_pem: g.chain_pem.clone(),
            private_key_pem: g.key_pem.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err}");
    assert_eq!(count(&sim, "POST", "/tls_certificates"), 1);
    // The simulator processed it: this is exactly why it must not be sent again blindly.
    assert_eq!(sim.with_account(|a| a.certificates.len()), 1);
    assert!(!err.to_string().contains("PRIVATE KEY"));
    assert_nothing_refused(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_key_is_unauthorized_and_not_retried() {
    let sim = sim().await;
    let err = client_with(&sim, "wrong-key", RetryPolicy::default())
        .list_credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(sim.requests().len(), 1);
    assert!(!err.to_string().contains("wrong-key"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_enforces_the_documented_version_header() {
    let sim = sim().await;
    let res = http()
        .get(format!("{}/tls_certificates", sim.url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    let documented: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/ngrok-api-examples/error.response.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(body["error_code"], documented["error_code"]);
    assert_eq!(body["msg"], documented["msg"]);
    assert!(body["details"]["operation_id"]
        .as_str()
        .unwrap()
        .starts_with("op_"));
}

/// The demo account without its dev domain, so that the summary counts exactly the seed.
const EVERY_KIND_SEED: &str = concat!(
    "dev_domain = false\n",
    include_str!("../config/demo-seed.toml")
);

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_every_account_finding_kind_with_nagios_exit_2() {
    let sim = seeded(EVERY_KIND_SEED).await;
    // A domain pointing at a certificate that was deleted (the simulator allows it).
    let gone = sim.with_account(|a| {
        let legacy = a
            .domains
            .values()
            .find(|d| d.domain == "api.example.com")
            .unwrap();
        let id = legacy.certificate.as_ref().unwrap().id.clone();
        a.certificates.remove(&id);
        id
    });
    let (_dir, config) = config_trusting(&sim, KEY, "");
    let out = run(
        &[
            "--config",
            config.to_str().unwrap(),
            "check",
            "--format",
            "json",
        ],
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let kinds: std::collections::BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "certificate_expired",
        "certificate_expiring",
        "certificate_unattached",
        "provisioning_failed",
        "provisioning_stuck",
        "renewal_overdue",
        "certificate_missing",
        "domain_without_certificate",
        "credential_unrestricted",
    ] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
    let missing = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "certificate_missing")
        .unwrap();
    assert_eq!(missing["severity"], "critical");
    assert_eq!(missing["domain"], "api.example.com");
    assert!(missing["message"].as_str().unwrap().contains(&gone));
    let dns = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "provisioning_failed" && f["domain"] == "blog.example.com")
        .unwrap();
    assert_eq!(dns["severity"], "critical");
    let summary = &report["summary"];
    assert_eq!(
        summary["certificates"],
        sim.with_account(|a| a.certificates.len())
    );
    // The demo seed's 12 domains and its null-status managed domain.
    assert_eq!(summary["domains"], 13);
    assert_eq!(summary["credentials"], 2);
    // The report is the account: a certificate's expiry to the second, and no PEM anywhere.
    let shop = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject_common_name"] == "shop.example.com")
        .unwrap();
    let expected = sim.with_account(|a| {
        a.certificates
            .values()
            .find(|c| c.subject_common_name == "shop.example.com")
            .unwrap()
            .not_after
    });
    assert_eq!(
        shop["not_after"],
        ngrok_cert_watchdog::model::text::format_time(expected)
    );
    assert_eq!(shop["domains"], serde_json::json!(["shop.example.com"]));
    assert!(!stdout.contains("BEGIN CERTIFICATE"));
    // The same account in text form.
    let text = run(
        &["--config", config.to_str().unwrap(), "check"],
        Duration::from_secs(60),
    );
    let text_out = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(2));
    assert!(
        text_out.contains("CRITICAL certificate_missing"),
        "{text_out}"
    );
    assert!(text_out.contains("DOMAINS"));
    assert_nothing_refused(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_exit_codes_follow_the_worst_finding() {
    let ok = seeded("[[certificate]]\nname = \"a\"\ndns_names = [\"a.example.com\"]\nnot_after = \"+90d\"\n[[domain]]\ndomain = \"a.example.com\"\ncertificate = \"a\"\n[[credential]]\nacl = [\"bind:a.example.com\"]\n").await;
    let (_d1, c1) = config_trusting(&ok, KEY, "");
    assert_eq!(
        run(
            &["--config", c1.to_str().unwrap(), "check"],
            Duration::from_secs(60)
        )
        .status
        .code(),
        Some(0)
    );
    let warn = seeded("[[certificate]]\nname = \"a\"\ndns_names = [\"a.example.com\"]\nnot_after = \"+20d\"\n[[domain]]\ndomain = \"a.example.com\"\ncertificate = \"a\"\n").await;
    // 20 days left of a 50-day lifetime: a warning at a fixed 30d (pinned: the default
    // "30d or 33%" would start at 16.5 days).
    let (_d2, c2) = config_trusting(&warn, KEY, "[expiry]\nwarning = \"30d\"\n");
    assert_eq!(
        run(
            &["--config", c2.to_str().unwrap(), "check"],
            Duration::from_secs(60)
        )
        .status
        .code(),
        Some(1)
    );
    // The threshold is the config's: with a 10-day warning the same account is OK.
    let (_d3, c3) = config_trusting(
        &warn,
        KEY,
        "[expiry]\nwarning = \"10d\"\ncritical = \"2d\"\n",
    );
    assert_eq!(
        run(
            &["--config", c3.to_str().unwrap(), "check"],
            Duration::from_secs(60)
        )
        .status
        .code(),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_key_exits_3_with_one_line() {
    let sim = sim().await;
    let (_dir, config) = config_trusting(&sim, "not-the-key-s3cr3t", "");
    let out = run(
        &["--config", config.to_str().unwrap(), "check"],
        Duration::from_secs(30),
    );
    let line = assert_one_line_error(&out, 3, "not-the-key-s3cr3t");
    assert!(
        line.contains("401") || line.to_lowercase().contains("key"),
        "{line}"
    );
}

#[test]
fn check_config_warns_of_a_budget_above_the_accounts_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(dir.path().join("key"), "k").unwrap();
    std::fs::write(
        &config,
        "[api]\nkey_file = \"key\"\nrequests_per_minute = 600\n[state]\ndir = \"state\"\n",
    )
    .unwrap();
    let out = run(
        &["--config", config.to_str().unwrap(), "check-config"],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "a warning, not an error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: api.requests_per_minute = 600 is above the account's own limit of 120"
        ),
        "{stderr}"
    );
}

#[test]
fn a_malformed_config_exits_3_for_check_and_78_for_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(dir.path().join("key"), "k").unwrap();
    std::fs::write(&config, "[api]\nkey_file = \"key\"\ntimeout = \"soon\"\n").unwrap();
    let out = run(
        &["--config", config.to_str().unwrap(), "check"],
        Duration::from_secs(30),
    );
    let line = assert_one_line_error(&out, 3, "\u{0}");
    assert!(
        line.contains("config.toml") && line.contains("timeout"),
        "{line}"
    );
    let out = run(
        &["--config", config.to_str().unwrap(), "check-config"],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(78));
    std::fs::write(&config, "[api\nurl = ").unwrap();
    let out = run(
        &["--config", config.to_str().unwrap(), "check"],
        Duration::from_secs(30),
    );
    let line = assert_one_line_error(&out, 3, "\u{0}");
    assert!(line.contains("config.toml"), "{line}");
}

#[test]
fn a_missing_key_file_exits_3_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[api]\nkey_file = \"/nonexistent/ngrok-api-key\"\n",
    )
    .unwrap();
    let out = run(
        &["--config", config.to_str().unwrap(), "check"],
        Duration::from_secs(30),
    );
    let line = assert_one_line_error(&out, 3, "\u{0}");
    assert!(
        line.contains("/nonexistent/ngrok-api-key") && line.contains("key_file"),
        "{line}"
    );
}

#[test]
fn an_unreachable_api_exits_3() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_dir, config) = config_for(
        &format!("http://127.0.0.1:{port}"),
        "unreachable-s3cr3t",
        "",
    );
    let out = run(
        &["--config", config.to_str().unwrap(), "check"],
        Duration::from_secs(90),
    );
    let line = assert_one_line_error(&out, 3, "unreachable-s3cr3t");
    assert!(line.contains("127.0.0.1"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_and_truncated_responses_exit_3() {
    for kind in [FaultKind::Garbage, FaultKind::Truncated] {
        let sim = seeded("[bulk]\ncertificates = 2\n").await;
        sim.inject(Fault {
            path: "/tls_certificates".into(),
            method: None,
            count: 100,
            kind: kind.clone(),
        });
        let (_dir, config) = config_trusting(&sim, KEY, "");
        let config = config.to_str().unwrap().to_string();
        let out = tokio::task::spawn_blocking(move || {
            run(&["--config", &config, "check"], Duration::from_secs(90))
        })
        .await
        .unwrap();
        let line = assert_one_line_error(&out, 3, KEY);
        assert!(!line.contains("<html>"), "the body is quoted: {line}");
        assert_nothing_refused(&sim);
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_on_the_demo_seed_shows_the_null_status_domain_and_not_the_dev_domain() {
    let sim = seeded(include_str!("../config/demo-seed.toml")).await;
    let dev = sim.with_account(|a| {
        a.domains
            .values()
            .find(|d| d.is_dev)
            .map(|d| d.domain.clone())
            .expect("a seeded account has a dev domain")
    });
    let (_dir, config) = config_trusting(&sim, KEY, "");
    let out = run(
        &[
            "--config",
            config.to_str().unwrap(),
            "check",
            "--format",
            "json",
        ],
        Duration::from_secs(60),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["domain"] == dev.as_str()));
    assert!(
        !findings.iter().any(|f| f["domain"] == dev.as_str()),
        "the dev domain {dev} has a finding: {findings:?}"
    );
    let stuck: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["domain"] == "old.example.com")
        .collect();
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!(stuck[0]["kind"], "provisioning_stuck");
    assert!(stuck[0]["message"]
        .as_str()
        .unwrap()
        .contains("no provisioning job at all"));
    assert_nothing_refused(&sim);
}

/// A simulator whose account allows `n` simultaneous requests, each list answered slowly enough
/// that the three lists of a sync overlap.
async fn slow_account_limited_to(n: usize) -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Sim::start(
        listener,
        secrecy::SecretString::from(KEY.to_string()),
        SimOptions {
            max_concurrent: Some(n),
            ..SimOptions::default()
        },
    )
    .unwrap();
    let seed =
        ngrok_cert_watchdog::sim::seed::parse("[bulk]\ncertificates = 3\ndomains = 3\n").unwrap();
    sim.seed(&seed, "test seed").unwrap();
    for path in ["/tls_certificates", "/reserved_domains", "/credentials"] {
        sim.inject(Fault {
            path: path.into(),
            method: Some("GET".into()),
            count: 1,
            kind: FaultKind::Latency { millis: 400 },
        });
    }
    sim
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_keeps_within_the_accounts_concurrency_limit_and_retries_225() {
    use ngrok_cert_watchdog::sources::inventory;
    let now = time::OffsetDateTime::now_utc();
    // Two in flight at most (the default): the account's limit of two is never hit.
    let sim = slow_account_limited_to(2).await;
    let client = client_in_flight(&sim, KEY, RetryPolicy::default(), 2);
    inventory::sync(&client, &Trust::public(), now)
        .await
        .unwrap();
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert!(!statuses.contains(&429), "{statuses:?}");
    assert_nothing_refused(&sim);
    // Three in flight against a limit of two: one 225, retried like a 429, and the sync succeeds.
    let sim = slow_account_limited_to(2).await;
    let client = client_in_flight(&sim, KEY, RetryPolicy::default(), 3);
    let inventory = inventory::sync(&client, &Trust::public(), now)
        .await
        .unwrap();
    assert_eq!(inventory.certificates().len(), 3);
    let refused = refused(&sim);
    assert!(
        refused.iter().all(|r| r.ends_with("→ 429")) && !refused.is_empty(),
        "{refused:?}"
    );
}

/// One certificate of each kind that browsers refuse, beside a healthy one.
fn judged_seed() -> String {
    let weak = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/weak");
    let cert = |name: &str, dns: &str, extra: &str| {
        format!("[[certificate]]\nname = \"{name}\"\ndns_names = [\"{dns}\"]\nnot_before = \"-10d\"\nnot_after = \"+80d\"\n{extra}\n")
    };
    let domain = |domain: &str, cert: &str| {
        format!("[[domain]]\ndomain = \"{domain}\"\ncertificate = \"{cert}\"\n")
    };
    [
        "dev_domain = false\n".to_string(),
        cert("good", "good.example.com", ""),
        domain("good.example.com", "good"),
        cert("name", "other.example.com", ""),
        domain("name.example.com", "name"),
        cert("alone", "alone.example.com", "chain = \"leaf_only\""),
        domain("alone.example.com", "alone"),
        cert("private", "private.example.com", "chain = \"unknown_issuer\""),
        domain("private.example.com", "private"),
        cert("order", "order.example.com", "chain = \"wrong_order\""),
        domain("order.example.com", "order"),
        format!("[[certificate]]\nname = \"sha1\"\ncertificate_file = \"{weak}/sha1.pem\"\nprivate_key_file = \"{weak}/sha1.key\"\n"),
        domain("weak-sha1.example.com", "sha1"),
        // ngrok's own: an unknown issuer is not reported for it, a name it lacks is.
        cert("managed", "elsewhere.example.com", "managed = true\nchain = \"unknown_issuer\""),
        "[[domain]]\ndomain = \"managed.example.com\"\ncertificate = \"managed\"\nmanaged = true\nrenews_at = \"+50d\"\n".to_string(),
    ]
    .concat()
}

#[tokio::test(flavor = "multi_thread")]
async fn check_judges_every_attached_certificate_as_a_browser_would() {
    let sim = seeded(&judged_seed()).await;
    let (dir, config) = config_for(&sim.url(), KEY, "");
    // The user trusts the simulator's root and the root of the weak fixtures.
    let anchors = dir.path().join("anchors.pem");
    let weak_root = include_str!("fixtures/weak/root.pem");
    std::fs::write(&anchors, format!("{}{weak_root}", sim.ca_pem().unwrap())).unwrap();
    trust_anchors_in(&config, &anchors);
    let out = run(
        &[
            "--config",
            config.to_str().unwrap(),
            "check",
            "--format",
            "json",
        ],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let mut got: Vec<(&str, &str, &str)> = findings
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap(),
                f["severity"].as_str().unwrap(),
                f["domain"].as_str().unwrap_or(""),
            )
        })
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            (
                "certificate_chain_incomplete",
                "warning",
                "alone.example.com"
            ),
            (
                "certificate_chain_incomplete",
                "warning",
                "order.example.com"
            ),
            (
                "certificate_chain_incomplete",
                "warning",
                "private.example.com"
            ),
            (
                "certificate_name_mismatch",
                "critical",
                "managed.example.com"
            ),
            ("certificate_name_mismatch", "critical", "name.example.com"),
            ("certificate_weak", "warning", "weak-sha1.example.com"),
        ],
        "{findings:#?}"
    );
    let message = |domain: &str| {
        findings
            .iter()
            .find(|f| f["domain"] == domain)
            .and_then(|f| f["message"].as_str())
            .unwrap()
    };
    assert!(message("alone.example.com").contains("without its intermediate"));
    assert!(message("private.example.com").contains("does not lead to a trusted root"));
    assert!(message("order.example.com").contains("not in order"));
    assert!(message("weak-sha1.example.com").contains("SHA-1"));
    assert!(message("name.example.com").contains("its DNS names are other.example.com"));
    // Without the anchors, the simulator's own chains do not verify either: the good one too.
    let (_d, plain) = config_for(&sim.url(), KEY, "");
    let out = run(
        &[
            "--config",
            plain.to_str().unwrap(),
            "check",
            "--format",
            "json",
        ],
        Duration::from_secs(60),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["findings"].as_array().unwrap().iter().any(|f| {
        f["kind"] == "certificate_chain_incomplete" && f["domain"] == "good.example.com"
    }));
    assert_nothing_refused(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn back_to_back_checks_count_each_others_requests() {
    // The budget's record is written at most once a second while a process runs; a `check`
    // (three requests in a few milliseconds) must still leave all of them for the next one.
    let sim = sim().await;
    let (dir, config) = config_for(&sim.url(), KEY, "");
    for _ in 0..2 {
        let out = run(
            &["--config", config.to_str().unwrap(), "check"],
            Duration::from_secs(60),
        );
        assert!(out.status.code().is_some_and(|c| c < 3), "{out:?}");
    }
    let served = common::count(&sim, "GET", "/tls_certificates")
        + common::count(&sim, "GET", "/reserved_domains")
        + common::count(&sim, "GET", "/credentials");
    assert_eq!(served, 6);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state/api-budget.json")).unwrap())
            .unwrap();
    assert_eq!(record["sent_unix_ms"].as_array().unwrap().len(), served);
}
