//! Alert delivery against local receivers: signed firing → escalation → resolved; retries under
//! one webhook-id; a hanging receiver delays no other; restarts send nothing new and lose nothing
//! owed; an API outage resolves nothing; a corrupt state file is survived.

mod common;

use common::http;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use base64::Engine;
use hmac::{Hmac, Mac};
use ngrok_cert_watchdog::config::{WebhookFormat, WebhookSettings};
use ngrok_cert_watchdog::core::alerts::{Knowledge, Observation};
use ngrok_cert_watchdog::model::{Finding, FindingKind, Severity};
use ngrok_cert_watchdog::outputs::delivery::{self, Alerting, DeliveryOptions};
use ngrok_cert_watchdog::outputs::metrics::Metrics;
use secrecy::SecretString;
use sha2::Sha256;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: serde_json::Value,
    raw: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<Mutex<usize>>,
    hang: bool,
}

impl Receiver {
    async fn serve(self) -> (String, Receiver) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let me = self.clone();
        let app = Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move {
                    if me.hang {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    me.got.lock().unwrap().push(Received {
                        path: uri.path().to_string(),
                        headers,
                        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                        raw: body,
                    });
                    let mut fail = me.fail_first.lock().unwrap();
                    if *fail > 0 {
                        *fail -= 1;
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            },
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, self)
    }
    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let start = Instant::now();
        while self.got().len() < n {
            assert!(
                start.elapsed() < within,
                "expected {n} requests, got {}",
                self.got().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.got()
    }
}

const SECRET: &str = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHMtMTIzNDU2Nzg5MA==";

fn webhook(name: &str, url: &str, format: WebhookFormat) -> WebhookSettings {
    WebhookSettings {
        name: name.into(),
        url: url.parse().unwrap(),
        format,
        secret: (format == WebhookFormat::Json).then(|| SecretString::from(SECRET.to_string())),
        headers: vec![(
            "X-Team".into(),
            SecretString::from("edge-header-s3cr3t".to_string()),
        )],
        min_severity: Severity::Warning,
        repeat_interval: Duration::from_secs(4 * 3600),
    }
}

fn fast() -> DeliveryOptions {
    DeliveryOptions {
        max_age: Duration::from_secs(5),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
    }
}

struct Running {
    alerting: Alerting,
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Running {
    fn start(
        webhooks: &[WebhookSettings],
        state: &std::path::Path,
        options: DeliveryOptions,
    ) -> Running {
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let metrics = Arc::new(Metrics::new(&Default::default()));
        let alerting = delivery::start(webhooks, state, metrics, options, &tracker, stop.clone());
        Running {
            alerting,
            tracker,
            stop,
        }
    }
    async fn stop(self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

fn finding(kind: FindingKind, severity: Severity) -> Finding {
    Finding {
        severity,
        kind,
        resource_id: "cert_1".into(),
        domain: Some("app.example.com".into()),
        message: "certificate cert_1 for app.example.com expires soon".into(),
        not_after: Some(OffsetDateTime::now_utc() + time::Duration::days(3)),
    }
}

fn obs(known: bool, findings: Vec<Finding>) -> Observation {
    Observation {
        at: OffsetDateTime::now_utc(),
        knowledge: if known {
            Knowledge::Known
        } else {
            Knowledge::Unknown
        },
        findings,
        sync_interval: Duration::from_secs(300),
    }
}

/// An independent Standard Webhooks verification.
fn verify(r: &Received) {
    let h = |n: &str| {
        r.headers
            .get(n)
            .unwrap_or_else(|| panic!("no {n} header"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let (id, ts, sig) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.raw);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(sig, format!("v1,{expected}"));
    assert!((OffsetDateTime::now_utc().unix_timestamp() - ts.parse::<i64>().unwrap()).abs() < 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_firing_escalation_and_resolved() {
    let (url, rx) = Receiver::default().serve().await;
    let state = tempfile::tempdir().unwrap();
    let r = Running::start(
        &[webhook("ops", &url, WebhookFormat::Json)],
        state.path(),
        fast(),
    );
    r.alerting.observe(obs(
        true,
        vec![finding(FindingKind::CertificateExpiring, Severity::Warning)],
    ));
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    verify(&got[0]);
    assert_eq!(got[0].headers["x-team"], "edge-header-s3cr3t");
    let body = &got[0].body;
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "NgrokCertificateExpiring");
    assert_eq!(alert["labels"]["severity"], "warning");
    assert_eq!(alert["labels"]["domain"], "app.example.com");
    assert!(alert["annotations"]["description"]
        .as_str()
        .unwrap()
        .contains("expires soon"));
    assert!(alert["fingerprint"].as_str().is_some_and(|f| !f.is_empty()));
    // Escalation: the same alert, critical now.
    r.alerting.observe(obs(
        true,
        vec![finding(
            FindingKind::CertificateExpiring,
            Severity::Critical,
        )],
    ));
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    verify(&got[1]);
    // One message: the superseded warning label set resolved, the same alert firing critical.
    let alerts = got[1].body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["status"], "resolved");
    assert_eq!(alerts[0]["labels"]["severity"], "warning");
    assert_eq!(
        alerts[0]["fingerprint"],
        got[0].body["alerts"][0]["fingerprint"]
    );
    assert_eq!(alerts[1]["status"], "firing");
    assert_eq!(alerts[1]["labels"]["severity"], "critical");
    assert_eq!(alerts[1]["startsAt"], got[0].body["alerts"][0]["startsAt"]);
    assert_eq!(got[1].body["status"], "firing");
    assert_ne!(got[1].headers["webhook-id"], got[0].headers["webhook-id"]);
    // Same state again: nothing.
    r.alerting.observe(obs(
        true,
        vec![finding(
            FindingKind::CertificateExpiring,
            Severity::Critical,
        )],
    ));
    // Fixed: resolved, once.
    r.alerting.observe(obs(true, vec![]));
    let got = rx.wait_for(3, Duration::from_secs(5)).await;
    verify(&got[2]);
    assert_eq!(got[2].body["status"], "resolved");
    assert_eq!(got[2].body["alerts"][0]["status"], "resolved");
    r.alerting.observe(obs(true, vec![]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.got().len(), 3);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_receiver_gets_the_alert_on_a_retry_with_the_same_id() {
    let receiver = Receiver::default();
    *receiver.fail_first.lock().unwrap() = 2;
    let (url, rx) = receiver.serve().await;
    let state = tempfile::tempdir().unwrap();
    let r = Running::start(
        &[webhook("ops", &url, WebhookFormat::Json)],
        state.path(),
        fast(),
    );
    r.alerting.observe(obs(
        true,
        vec![finding(FindingKind::ProvisioningFailed, Severity::Critical)],
    ));
    let got = rx.wait_for(3, Duration::from_secs(5)).await;
    let ids: Vec<_> = got
        .iter()
        .map(|g| g.headers["webhook-id"].clone())
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2]);
    for g in &got {
        verify(g);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 3, "no more once accepted");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_does_not_delay_the_other() {
    let (hang_url, _hang) = Receiver {
        hang: true,
        ..Default::default()
    }
    .serve()
    .await;
    let (url, rx) = Receiver::default().serve().await;
    let state = tempfile::tempdir().unwrap();
    let options = DeliveryOptions {
        timeout: Duration::from_secs(30),
        max_age: Duration::from_secs(60),
        ..fast()
    };
    let r = Running::start(
        &[
            webhook("stuck", &hang_url, WebhookFormat::Json),
            webhook("ops", &url, WebhookFormat::Slack),
        ],
        state.path(),
        options,
    );
    let started = Instant::now();
    r.alerting.observe(obs(
        true,
        vec![finding(FindingKind::CertificateExpired, Severity::Critical)],
    ));
    let got = rx.wait_for(1, Duration::from_secs(3)).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(got[0].body["text"].as_str().unwrap().contains("firing"));
    assert!(got[0].body["blocks"].as_array().unwrap().len() >= 2);
    // The next observation also goes through while the other is still hanging.
    r.alerting.observe(obs(true, vec![]));
    rx.wait_for(2, Duration::from_secs(3)).await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_sends_nothing_new_and_loses_nothing_owed() {
    let (url, rx) = Receiver::default().serve().await;
    let state = tempfile::tempdir().unwrap();
    let hooks = [webhook("ops", &url, WebhookFormat::Json)];
    let r = Running::start(&hooks, state.path(), fast());
    let f = finding(FindingKind::CertificateExpiring, Severity::Warning);
    r.alerting.observe(obs(true, vec![f.clone()]));
    rx.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    r.stop().await;
    // Restart inside repeat_interval: the same finding sends nothing.
    let r = Running::start(&hooks, state.path(), fast());
    r.alerting.observe(obs(true, vec![f.clone()]));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rx.got().len(), 1);
    r.stop().await;

    // Owed: a receiver that is down when the alert first fires; the process restarts; the
    // firing is still delivered.
    let (down_url, down) = Receiver {
        fail_first: Arc::new(Mutex::new(1000)),
        ..Default::default()
    }
    .serve()
    .await;
    let state = tempfile::tempdir().unwrap();
    let hooks = [webhook("ops", &down_url, WebhookFormat::Json)];
    let quick = DeliveryOptions {
        max_age: Duration::from_millis(300),
        ..fast()
    };
    let r = Running::start(&hooks, state.path(), quick);
    r.alerting.observe(obs(true, vec![f.clone()]));
    down.wait_for(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.stop().await;
    *down.fail_first.lock().unwrap() = 0;
    let before = down.got().len();
    let r = Running::start(&hooks, state.path(), fast());
    r.alerting.observe(obs(true, vec![f]));
    let got = down.wait_for(before + 1, Duration::from_secs(5)).await;
    assert_eq!(
        got.last().unwrap().body["status"],
        "firing",
        "the firing owed is delivered after the restart"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_outage_resolves_nothing_in_any_format() {
    let (url, rx) = Receiver::default().serve().await;
    let state = tempfile::tempdir().unwrap();
    let hooks = [
        webhook("json", &format!("{url}/json"), WebhookFormat::Json),
        webhook("slack", &format!("{url}/slack"), WebhookFormat::Slack),
        webhook("am", &format!("{url}/am"), WebhookFormat::Alertmanager),
    ];
    let r = Running::start(&hooks, state.path(), fast());
    r.alerting.observe(obs(
        true,
        vec![finding(FindingKind::ProvisioningFailed, Severity::Critical)],
    ));
    rx.wait_for(3, Duration::from_secs(5)).await;
    for _ in 0..3 {
        r.alerting.observe(obs(false, vec![]));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let got = rx.got();
    for g in &got {
        let text = g.body.to_string();
        assert!(
            !text.contains("\"resolved\"") && !text.contains("RESOLVED"),
            "{}: {text}",
            g.path
        );
    }
    // Alertmanager heard of the alert on every failed sync too, with endsAt in the future.
    let am: Vec<&Received> = got
        .iter()
        .filter(|g| g.path == "/am/api/v2/alerts")
        .collect();
    assert_eq!(
        am.len(),
        4,
        "{:?}",
        got.iter().map(|g| &g.path).collect::<Vec<_>>()
    );
    let ends = am.last().unwrap().body[0]["endsAt"]
        .as_str()
        .unwrap()
        .to_string();
    let ends =
        OffsetDateTime::parse(&ends, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(ends > OffsetDateTime::now_utc() + time::Duration::minutes(10));
    assert_eq!(got.iter().filter(|g| g.path == "/json").count(), 1);
    assert_eq!(got.iter().filter(|g| g.path == "/slack").count(), 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_state_file_is_survived() {
    let (url, rx) = Receiver::default().serve().await;
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("alerts-ops.json");
    std::fs::write(&file, b"{ this is not json \x00\xff").unwrap();
    let r = Running::start(
        &[webhook("ops", &url, WebhookFormat::Json)],
        state.path(),
        fast(),
    );
    r.alerting.observe(obs(
        true,
        vec![finding(FindingKind::CertificateExpiring, Severity::Warning)],
    ));
    rx.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).expect("replaced by a valid state");
    assert_eq!(saved["told"].as_object().unwrap().len(), 1);
    r.stop().await;
}

fn alertmanager_binary() -> std::path::PathBuf {
    ["prometheus-alertmanager", "alertmanager"]
        .iter()
        .flat_map(|name| {
            std::env::var_os("PATH").into_iter().flat_map(move |p| {
                std::env::split_paths(&p)
                    .map(move |d| d.join(name))
                    .collect::<Vec<_>>()
            })
        })
        .find(|p| p.is_file())
        .expect(
            "Alertmanager is not installed: apt-get install prometheus-alertmanager (.ci/run does)",
        )
}

struct Alertmanager {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn alertmanager(resolve_timeout: &str) -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!("global:\n  resolve_timeout: {resolve_timeout}\nroute:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(alertmanager_binary())
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let am = Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let start = Instant::now();
    while !http()
        .get(format!("{}/-/ready", am.url))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Alertmanager did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    am
}

/// The alerts Alertmanager holds as active.
async fn active(am: &Alertmanager) -> Vec<serde_json::Value> {
    let res = http()
        .get(format!(
            "{}/api/v2/alerts?active=true&silenced=false&inhibited=false",
            am.url
        ))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"]["state"] == "active")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_alertmanager_keeps_the_alert_past_resolve_timeout_and_resolves_it_when_cleared() {
    let am = alertmanager("2s").await;
    let state = tempfile::tempdir().unwrap();
    let r = Running::start(
        &[webhook("am", &am.url, WebhookFormat::Alertmanager)],
        state.path(),
        fast(),
    );
    let sync = |known: bool, findings: Vec<Finding>| Observation {
        at: OffsetDateTime::now_utc(),
        knowledge: if known {
            Knowledge::Known
        } else {
            Knowledge::Unknown
        },
        findings,
        sync_interval: Duration::from_secs(1),
    };
    let dns = finding(FindingKind::ProvisioningFailed, Severity::Critical);
    // Syncs every second for 8 s (four times resolve_timeout), the API failing for half of them.
    for i in 0..8 {
        let known = i % 2 == 0;
        r.alerting
            .observe(sync(known, if known { vec![dns.clone()] } else { vec![] }));
        tokio::time::sleep(Duration::from_secs(1)).await;
        if i >= 2 {
            let alerts = active(&am).await;
            assert_eq!(alerts.len(), 1, "after {}s: {alerts:?}", i + 1);
            assert_eq!(alerts[0]["labels"]["alertname"], "NgrokProvisioningFailed");
            assert_eq!(alerts[0]["labels"]["domain"], "app.example.com");
        }
    }
    // The condition clears: resolved at once, not after a timeout.
    r.alerting.observe(sync(true, vec![]));
    let start = Instant::now();
    while !active(&am).await.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "still active after the clear"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_sync_never_lets_alertmanager_resolve_a_firing_alert() {
    let am = alertmanager("2s").await;
    let state = tempfile::tempdir().unwrap();
    let r = Running::start(
        &[webhook("am", &am.url, WebhookFormat::Alertmanager)],
        state.path(),
        fast(),
    );
    // One observation from a sync that started long ago (it took 10 minutes under 429s): an
    // endsAt counted from its start would already be past.
    r.alerting.observe(Observation {
        at: OffsetDateTime::now_utc() - time::Duration::minutes(10),
        knowledge: Knowledge::Known,
        findings: vec![finding(FindingKind::ProvisioningFailed, Severity::Critical)],
        sync_interval: Duration::from_secs(1),
    });
    // Then nothing for 6 s, three times endsAt's 3 s: the next sync is still running.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if start.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let alerts = active(&am).await;
        assert_eq!(
            alerts.len(),
            1,
            "after {:?} without a sync: {alerts:?}",
            start.elapsed()
        );
    }
    r.stop().await;
}
