//! The daemon against the simulator: metrics that match the account and leave no stale series,
//! /readyz following `schedule.stale_after`, the supervisor stopping watchdog pings when the
//! trigger stalls, STATUS= lines, and promtool's linter on the real output.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ngrok_cert_watchdog::config::{self, Environment};
use ngrok_cert_watchdog::daemon::{self, Notifier, RunContext, Supervision, Ticks};
use ngrok_cert_watchdog::sim::{Fault, FaultKind, Sim};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(Instant, String)>>,
}

impl Recorder {
    fn push(&self, e: String) {
        self.events.lock().unwrap().push((Instant::now(), e));
    }
    fn count(&self, prefix: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| e.starts_with(prefix))
            .count()
    }
    fn pings_since(&self, t: Instant) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, e)| *at >= t && e == "WATCHDOG=1")
            .count()
    }
    fn last_status(&self) -> Option<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(_, e)| e.starts_with("STATUS="))
            .map(|(_, e)| e.clone())
    }
}

impl Notifier for Recorder {
    fn ready(&self) {
        self.push("READY=1".into())
    }
    fn status(&self, status: &str) {
        self.push(format!("STATUS={status}"))
    }
    fn keepalive(&self) {
        self.push("WATCHDOG=1".into())
    }
    fn stopping(&self) {
        self.push("STOPPING=1".into())
    }
}

struct Daemon {
    url: String,
    ticks: mpsc::Sender<()>,
    notifier: Arc<Recorder>,
    shared: Arc<daemon::Shared>,
    stop: CancellationToken,
    running: Option<daemon::Running>,
    _state: tempfile::TempDir,
}

impl Daemon {
    async fn start(sim: &Sim, extra: &str, supervision: Supervision) -> Daemon {
        // Probes off: nothing may leave the machine (a test that brings its own loopback DNS
        // server or edge sets that section itself; start_probing turns DNS off otherwise).
        let edge_off = if extra.contains("[edge]") {
            ""
        } else {
            "[edge]\nenabled = false\n"
        };
        Self::start_probing(sim, &format!("{edge_off}{extra}"), supervision).await
    }

    /// [`Daemon::start`] with `[edge]` and `[dns]` as `extra` sets them.
    async fn start_probing(sim: &Sim, extra: &str, supervision: Supervision) -> Daemon {
        Self::start_in(sim, extra, supervision, tempfile::tempdir().unwrap()).await
    }

    /// Stops this daemon and starts another on the same state directory (a restart).
    async fn restart(mut self, sim: &Sim, extra: &str, supervision: Supervision) -> Daemon {
        self.stop.cancel();
        if let Some(r) = self.running.take() {
            r.wait_and_drain(self.stop.clone()).await;
        }
        Self::start_in(sim, extra, supervision, self._state).await
    }

    async fn start_in(
        sim: &Sim,
        extra: &str,
        supervision: Supervision,
        state: tempfile::TempDir,
    ) -> Daemon {
        let text = format!(
            "[api]\nurl = \"{}\"\nrequests_per_minute = 6000\ntimeout = \"5s\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[state]\ndir = \"{}\"\n{}{extra}",
            sim.url(),
            state.path().display(),
            // No DNS query leaves the machine: off unless the test brings its own server.
            if extra.contains("[dns]") { "" } else { "[dns]\nenabled = false\n" },
        );
        let env = Environment {
            ngrok_api_key: Some(KEY.to_string()),
            credentials_directory: None,
            state_directory: None,
        };
        let settings = config::parse(&text, Path::new("test.toml"), &env).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (tx, rx) = mpsc::channel(8);
        let notifier = Arc::new(Recorder::default());
        let stop = CancellationToken::new();
        let (shared, running) = daemon::start(
            RunContext {
                config_path: None,
                env,
                settings,
                listener,
                ticks: Ticks::Manual(rx),
                reload: mpsc::channel(1).1,
                notifier: notifier.clone(),
                supervision,
            },
            stop.clone(),
        )
        .await
        .unwrap();
        Daemon {
            url: format!("http://{}", running.local_addr),
            ticks: tx,
            notifier,
            shared,
            stop,
            running: Some(running),
            _state: state,
        }
    }

    /// Ticks and waits for the next sync outcome; without a tick, the first sync's outcome
    /// (which may have finished before the test subscribed: under load, it often has).
    async fn sync(&self, tick: bool) -> Arc<daemon::SyncOutcome> {
        let mut rx = self.shared.subscribe();
        if let Some(first) = rx.borrow_and_update().clone().filter(|_| !tick) {
            return first;
        }
        if tick {
            self.ticks.send(()).await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(30), rx.changed())
            .await
            .expect("a sync within 30 s")
            .unwrap();
        let outcome = rx.borrow().clone().unwrap();
        outcome
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let res = http()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    async fn stop(mut self) {
        self.stop.cancel();
        if let Some(r) = self.running.take() {
            r.wait_and_drain(self.stop.clone()).await;
        }
    }
}

fn quiet() -> Supervision {
    Supervision {
        check_every: Duration::from_millis(100),
        tick_grace: Duration::from_secs(3600),
        stuck_after: Duration::from_secs(3600),
    }
}

/// The value of the one series whose line starts with `prefix` (name and labels).
fn value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_match_the_account_and_leave_no_stale_series() {
    // The demo account without its dev domain, so that the counts are exactly the seed's.
    let sim = seeded(concat!(
        "dev_domain = false\n",
        include_str!("../config/demo-seed.toml")
    ))
    .await;
    // The daemon syncs at start without being ticked.
    let d = Daemon::start(&sim, "", quiet()).await;
    let first = d.sync(false).await;
    assert!(first.result.is_ok());
    assert_eq!(d.notifier.count("READY=1"), 1);
    // The sync's request count is recorded for the schedule check of the next start.
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d._state.path().join("last-sync.json")).unwrap())
            .unwrap();
    assert!(last["requests"].as_u64().unwrap() >= 3, "{last}");
    assert!(d
        .notifier
        .last_status()
        .unwrap()
        .contains("8 certificates, 13 domains, 2 credentials"));
    let (status, metrics) = d.get("/metrics").await;
    // Asked for gzip (as Prometheus asks), the same page compressed: one gzip member, which
    // every client reads whole (curl --compressed reads only the first of several).
    let res = http()
        .get(format!("{}/metrics", d.url))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let compressed = res.bytes().await.unwrap();
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut unzipped,
    )
    .unwrap();
    assert!(compressed.len() * 3 < unzipped.len(), "not compressed");
    let account = |page: &str| -> Vec<String> {
        page.lines()
            .filter(|l| l.starts_with("ngrok_") && !l.starts_with("ngrok_cert_watchdog_"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(account(&unzipped), account(&metrics));
    assert_eq!(status, 200);
    let (shop_id, shop_not_after, api_id) = sim.with_account(|a| {
        let shop = a
            .certificates
            .values()
            .find(|c| c.subject_common_name == "shop.example.com")
            .unwrap();
        let api = a
            .certificates
            .values()
            .find(|c| c.subject_common_name == "api.example.com")
            .unwrap();
        (shop.id.clone(), shop.not_after, api.id.clone())
    });
    // A certificate's not_after, to the second.
    assert_eq!(
        value(
            &metrics,
            &format!(
                "ngrok_tls_certificate_not_after_timestamp_seconds{{certificate_id=\"{shop_id}\""
            )
        ),
        Some(shop_not_after.unix_timestamp() as f64),
        "{metrics}"
    );
    assert_eq!(
        value(&metrics, "ngrok_reserved_domain_certificate_not_after_timestamp_seconds{domain=\"shop.example.com\"}"),
        Some(shop_not_after.unix_timestamp() as f64)
    );
    // The DNS_ERROR domain.
    assert_eq!(
        value(&metrics, "ngrok_reserved_domain_provisioning_failed{domain=\"blog.example.com\",error_code=\"DNS_ERROR\"}"),
        Some(1.0),
        "{metrics}"
    );
    // Counts.
    assert_eq!(
        value(&metrics, "ngrok_credentials{restricted=\"false\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&metrics, "ngrok_credentials{restricted=\"true\"}"),
        Some(1.0)
    );
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("ngrok_reserved_domain_info{"))
            .count(),
        // The demo seed's 12 domains and its null-status managed domain.
        13
    );
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("ngrok_tls_certificate_not_after_timestamp_seconds{"))
            .count(),
        8
    );
    assert_eq!(
        value(
            &metrics,
            "ngrok_cert_watchdog_findings{kind=\"provisioning_failed\",severity=\"critical\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &metrics,
            "ngrok_cert_watchdog_syncs_total{result=\"success\"}"
        ),
        Some(1.0)
    );
    let is_shop = |l: &&str| {
        l.starts_with("ngrok_reserved_domain_info{") && l.contains("domain=\"shop.example.com\"")
    };
    let shop_line = metrics.lines().find(is_shop).unwrap().to_string();
    assert!(
        shop_line.contains(&shop_id) && shop_line.contains("certificate_source=\"uploaded\""),
        "{shop_line}"
    );

    // The domain moves to another certificate: its old series must go, not linger.
    sim.with_account(|a| {
        let id = a
            .domains
            .values()
            .find(|d| d.domain == "shop.example.com")
            .unwrap()
            .id
            .clone();
        a.update_domain(
            &id,
            ngrok_cert_watchdog::sim::account::DomainFields {
                certificate_id: Some(api_id.clone()),
                ..Default::default()
            },
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    });
    assert!(d.sync(true).await.result.is_ok());
    let (_, metrics) = d.get("/metrics").await;
    let shop_lines: Vec<&str> = metrics.lines().filter(is_shop).collect();
    assert_eq!(shop_lines.len(), 1, "{shop_lines:?}");
    assert!(shop_lines[0].contains(&api_id) && !shop_lines[0].contains(&shop_id));
    // The now unused certificate is still exported (it exists), but no domain series names it.
    assert!(!metrics
        .lines()
        .any(|l| l.starts_with("ngrok_reserved_domain_info") && l.contains(&shop_id)));

    // A failed sync keeps the last values and counts the failure.
    sim.inject(Fault {
        path: "/".into(),
        method: None,
        count: 1000,
        kind: FaultKind::Status {
            status: 401,
            retry_after: None,
        },
    });
    assert!(d.sync(true).await.result.is_err());
    let (_, after_failure) = d.get("/metrics").await;
    assert_eq!(
        value(
            &after_failure,
            "ngrok_cert_watchdog_syncs_total{result=\"failure\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        after_failure
            .lines()
            .filter(|l| l.starts_with("ngrok_reserved_domain_info{"))
            .count(),
        13,
        "stale values, not zeros"
    );
    assert!(d.notifier.last_status().unwrap().contains("failed"));
    // Three failures in a row are the sync_failed finding, in the findings gauge too (an alert
    // rule on `kind="sync_failed"` fires); the next successful sync clears it.
    let sync_failed = "ngrok_cert_watchdog_findings{kind=\"sync_failed\",severity=\"warning\"}";
    assert_eq!(value(&after_failure, sync_failed), None);
    for _ in 0..2 {
        assert!(d.sync(true).await.result.is_err());
    }
    assert_eq!(value(&d.get("/metrics").await.1, sync_failed), Some(1.0));
    sim.clear_faults();
    assert!(d.sync(true).await.result.is_ok());
    let (_, recovered) = d.get("/metrics").await;
    assert!(!recovered.contains("sync_failed"), "{recovered}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_follows_stale_after() {
    let sim = seeded("[bulk]\ncertificates = 1\ndomains = 1\n").await;
    let d = Daemon::start(
        &sim,
        "[schedule]\nsync = \"0 0 * * * *\"\nstale_after = \"2s\"\n",
        quiet(),
    )
    .await;
    assert!(d.sync(false).await.result.is_ok());
    assert_eq!(d.get("/readyz").await.0, 200);
    assert_eq!(d.get("/healthz").await.0, 200);
    sim.inject(Fault {
        path: "/".into(),
        method: None,
        count: 100_000,
        kind: FaultKind::Status {
            status: 401,
            retry_after: None,
        },
    });
    assert!(d.sync(true).await.result.is_err());
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(d.sync(true).await.result.is_err());
    let (status, body) = d.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("stale"), "{body}");
    assert_eq!(d.get("/healthz").await.0, 200, "alive while not ready");
    // Clear the faults: the next sync succeeds and /readyz recovers.
    let http = http();
    http.delete(format!("{}/_sim/faults", sim.url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert!(d.sync(true).await.result.is_ok());
    assert_eq!(d.get("/readyz").await.0, 200);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_trigger_stops_the_watchdog_pings() {
    let sim = seeded("[bulk]\ncertificates = 1\n").await;
    // Due every second; late after 1 s more.
    let d = Daemon::start(
        &sim,
        "[schedule]\nsync = \"* * * * * *\"\n",
        Supervision {
            check_every: Duration::from_millis(100),
            tick_grace: Duration::from_secs(1),
            stuck_after: Duration::from_secs(60),
        },
    )
    .await;
    // A live trigger: ticks keep coming, pings keep coming.
    let live = Instant::now();
    for _ in 0..10 {
        d.ticks.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        d.notifier.pings_since(live) >= 20,
        "pings while alive: {}",
        d.notifier.pings_since(live)
    );
    // The trigger stalls: no tick for 4 s. Within tick + grace (~2 s) the pings must stop.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stalled = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        d.notifier.pings_since(stalled),
        0,
        "pinged although no tick came"
    );
    let (_, metrics) = d.get("/metrics").await;
    assert_eq!(
        value(
            &metrics,
            "ngrok_cert_watchdog_supervisor_alarms_total{reason=\"tick_late\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    // The trigger recovers: pings resume.
    d.ticks.send(()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let recovered = Instant::now();
    for _ in 0..4 {
        d.ticks.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(d.notifier.pings_since(recovered) > 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_without_progress_stops_the_pings() {
    let sim = seeded("[bulk]\ncertificates = 1\n").await;
    let d = Daemon::start(
        &sim,
        "[schedule]\nsync = \"0 0 * * * *\"\n",
        Supervision {
            check_every: Duration::from_millis(100),
            tick_grace: Duration::from_secs(3600),
            stuck_after: Duration::from_millis(700),
        },
    )
    .await;
    let _ = d.sync(false).await;
    // The next sync hangs on a 4 s response: no API progress for longer than stuck_after.
    sim.inject(Fault {
        path: "/tls_certificates".into(),
        method: None,
        count: 1,
        kind: FaultKind::Latency { millis: 4000 },
    });
    d.ticks.send(()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stuck = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        d.notifier.pings_since(stuck),
        0,
        "pinged during a stuck sync"
    );
    let (_, metrics) = d.get("/metrics").await;
    assert_eq!(
        value(
            &metrics,
            "ngrok_cert_watchdog_supervisor_alarms_total{reason=\"sync_stuck\"}"
        ),
        Some(1.0)
    );
    d.stop().await;
}

/// `promtool check metrics` on `metrics`: no problem, no lint.
fn assert_promtool_finds_nothing(promtool: &Path, metrics: &str) {
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lint = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && lint.trim().is_empty(),
        "promtool check metrics:\n{lint}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn promtool_finds_nothing_to_lint_in_the_metrics() {
    let promtool = which("promtool")
        .expect("promtool is not installed: apt-get install prometheus (.ci/run does)");
    let sim = seeded(include_str!("../config/demo-seed.toml")).await;
    let d = Daemon::start(&sim, "", quiet()).await;
    assert!(d.sync(false).await.result.is_ok());
    let (_, metrics) = d.get("/metrics").await;
    d.stop().await;
    assert_promtool_finds_nothing(&promtool, &metrics);
    // Every metric of INTERFACE.md is there with HELP.
    for name in [
        "ngrok_tls_certificate_not_after_timestamp_seconds",
        "ngrok_tls_certificate_not_before_timestamp_seconds",
        "ngrok_reserved_domain_info",
        "ngrok_reserved_domain_certificate_not_after_timestamp_seconds",
        "ngrok_reserved_domain_renews_at_timestamp_seconds",
        "ngrok_reserved_domain_provisioning_failed",
        "ngrok_credentials",
        "ngrok_cert_watchdog_build_info",
        "ngrok_cert_watchdog_expiry_threshold_seconds",
        "ngrok_cert_watchdog_sync_last_success_timestamp_seconds",
        "ngrok_cert_watchdog_sync_duration_seconds",
        "ngrok_cert_watchdog_syncs_total",
        "ngrok_cert_watchdog_api_requests_total",
        "ngrok_cert_watchdog_findings",
    ] {
        assert!(
            metrics.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(name) && !l.starts_with('#')),
            "no series for {name}"
        );
    }
}

#[test]
fn promtool_rule_tests_pass() {
    let promtool = which("promtool")
        .expect("promtool is not installed: apt-get install prometheus (.ci/run does)");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = std::process::Command::new(&promtool)
        .args(["check", "rules", "config/prometheus-alerts.yml"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let test = std::process::Command::new(&promtool)
        .args(["test", "rules", "tests/prometheus/alerts_test.yml"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certbot_renewal_on_disk_is_rotated_by_the_daemon_and_bad_files_do_not_stop_it() {
    use ngrok_cert_watchdog::model::certs::generate::Signer;
    let signer = Signer::new("R11").unwrap();
    let old = generate(&signer, &DOMAINS, -80, 10);
    let mut certbot = Certbot::new(&old);
    let dir = certbot.dir.path().to_path_buf();
    std::fs::write(dir.join("old-chain.pem"), &old.chain_pem).unwrap();
    std::fs::write(dir.join("old-key.pem"), &old.key_pem).unwrap();
    let sim = seeded(&format!(
        "[[certificate]]\nname = \"old\"\ncertificate_file = \"{}\"\nprivate_key_file = \"{}\"\n[[domain]]\ndomain = \"app.example.com\"\ncertificate = \"old\"\n[[domain]]\ndomain = \"api.example.com\"\ncertificate = \"old\"\n",
        dir.join("old-chain.pem").display(),
        dir.join("old-key.pem").display()
    ))
    .await;
    // A yearly schedule: only start-up and file events start a pass here.
    let extra = format!(
        "[schedule]\nsync = \"0 0 0 1 1 *\"\n[[watch]]\nname = \"app\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\ndomains = [\"app.example.com\", \"api.example.com\"]\ndelete_replaced = true\ndebounce = \"300ms\"\nsettle_timeout = \"1s\"\n",
        certbot.live("fullchain.pem").display(),
        certbot.live("privkey.pem").display()
    );
    let d = Daemon::start(&sim, &extra, quiet()).await;
    assert!(d.sync(false).await.result.is_ok());
    let (_, m) = d.get("/metrics").await;
    assert_eq!(
        value(&m, "ngrok_cert_watchdog_watch_up{watch=\"app\"}"),
        Some(1.0),
        "{m}"
    );

    // certbot renews: new archive files, links re-pointed one at a time. No tick is sent.
    let mut outcomes = d.shared.subscribe();
    outcomes.borrow_and_update();
    certbot.renew(&generate(&signer, &DOMAINS, 0, 90));
    tokio::time::timeout(Duration::from_secs(20), outcomes.changed())
        .await
        .expect("a pass after the file event")
        .unwrap();
    let ids: Vec<Option<String>> = sim.with_account(|a| {
        DOMAINS
            .iter()
            .map(|n| {
                a.domains
                    .values()
                    .find(|x| x.domain == *n)
                    .and_then(|x| x.certificate.as_ref().map(|c| c.id.clone()))
            })
            .collect()
    });
    assert!(ids[0].is_some() && ids[0] == ids[1], "{ids:?}");
    assert_eq!(count(&sim, "POST", "/tls_certificates"), 1, "uploaded once");
    assert_eq!(
        sim.with_account(|a| a.certificates.len()),
        1,
        "the replaced one deleted"
    );
    let (_, m) = d.get("/metrics").await;
    assert_eq!(
        value(
            &m,
            "ngrok_cert_watchdog_rotations_total{result=\"success\",watch=\"app\"}"
        ),
        Some(1.0),
        "{m}"
    );

    // Its own reads of the files start no further passes: the loop is quiet until a change.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, before) = d.get("/metrics").await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (_, after) = d.get("/metrics").await;
    let syncs = |m: &str| value(m, "ngrok_cert_watchdog_syncs_total{result=\"success\"}");
    assert_eq!(
        syncs(&before),
        syncs(&after),
        "passes without a file change"
    );

    // Garbage on disk: a finding, watch_up 0, nothing uploaded, the daemon carries on.
    let mut outcomes = d.shared.subscribe();
    outcomes.borrow_and_update();
    certbot.generation += 1;
    let archive = dir.join("archive/app");
    std::fs::write(archive.join("fullchain99.pem"), "garbage").unwrap();
    let link = certbot.live("fullchain.pem");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("../../archive/app/fullchain99.pem", &link).unwrap();
    tokio::time::timeout(Duration::from_secs(20), outcomes.changed())
        .await
        .expect("a pass after the file event")
        .unwrap();
    // Just written: it may be a renewal caught half-way, so it is not reported yet ...
    let outcome = outcomes.borrow().clone().unwrap();
    let (_, findings) = outcome.result.as_ref().unwrap();
    let invalid = |findings: &[ngrok_cert_watchdog::model::Finding]| {
        findings
            .iter()
            .any(|f| f.kind == ngrok_cert_watchdog::model::FindingKind::WatchInvalid)
    };
    assert!(!invalid(findings), "reported at once: {findings:?}");
    // ... but once the files have been still for settle_timeout (1 s), the next pass reports it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let outcome = d.sync(true).await;
    let (_, findings) = outcome.result.as_ref().unwrap();
    assert!(invalid(findings), "{findings:?}");
    let (status, m) = d.get("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        value(&m, "ngrok_cert_watchdog_watch_up{watch=\"app\"}"),
        Some(0.0)
    );
    assert_eq!(count(&sim, "POST", "/tls_certificates"), 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_notices_files_replaced_in_place() {
    use ngrok_cert_watchdog::model::certs::generate::Signer;
    let signer = Signer::new("R11").unwrap();
    let old = generate(&signer, &DOMAINS[..1], -80, 10);
    let dir = tempfile::tempdir().unwrap();
    let (chain, key) = (dir.path().join("chain.pem"), dir.path().join("key.pem"));
    std::fs::write(&chain, &old.chain_pem).unwrap();
    std::fs::write(&key, &old.key_pem).unwrap();
    let sim = seeded(&format!(
        "[[certificate]]\nname = \"old\"\ncertificate_file = \"{}\"\nprivate_key_file = \"{}\"\n[[domain]]\ndomain = \"app.example.com\"\ncertificate = \"old\"\n",
        chain.display(),
        key.display()
    ))
    .await;
    let extra = format!(
        "[schedule]\nsync = \"0 0 0 1 1 *\"\n[[watch]]\nname = \"nfs\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\ndomains = [\"app.example.com\"]\ndebounce = \"100ms\"\npoll_interval = \"300ms\"\n",
        chain.display(),
        key.display()
    );
    let d = Daemon::start(&sim, &extra, quiet()).await;
    assert!(d.sync(false).await.result.is_ok());
    let mut outcomes = d.shared.subscribe();
    outcomes.borrow_and_update();
    // Rewritten in place (as on NFS, no rename): the poller compares contents.
    let new = generate(&signer, &DOMAINS[..1], 0, 90);
    std::fs::write(&key, &new.key_pem).unwrap();
    std::fs::write(&chain, &new.chain_pem).unwrap();
    tokio::time::timeout(Duration::from_secs(15), outcomes.changed())
        .await
        .expect("a pass after polling saw the change")
        .unwrap();
    // One file may have been seen before the other (a pass that waits); the next poll
    // completes the pair.
    let start = Instant::now();
    while count(&sim, "POST", "/tls_certificates") == 0 {
        assert!(start.elapsed() < Duration::from_secs(15), "not uploaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&sim, "POST", "/tls_certificates"), 1);
    d.stop().await;
}

/// A rotation followed at the edge: the simulator's account, a loopback edge following it, the
/// watched domains pinned to the old certificate at first (an edge that has not picked up the
/// change yet), and the daemon with `delete_replaced`.
struct EdgeRotation {
    sim: Sim,
    edge: ngrok_cert_watchdog::sim::edge::EdgeServer,
    certbot: Certbot,
    signer: ngrok_cert_watchdog::model::certs::generate::Signer,
    _ca: tempfile::TempDir,
    extra: String,
}

impl EdgeRotation {
    async fn new(grace: &str) -> EdgeRotation {
        let sim = seeded(
            "dev_domain = false\n[[certificate]]\nname = \"old\"\ndns_names = [\"app.example.com\", \"api.example.com\"]\nnot_before = \"-80d\"\nnot_after = \"+10d\"\n[[domain]]\ndomain = \"app.example.com\"\ncertificate = \"old\"\n[[domain]]\ndomain = \"api.example.com\"\ncertificate = \"old\"\n",
        )
        .await;
        let signer = sim
            .with_account(|a| a.seed_ca())
            .unwrap()
            .intermediate("R11", false)
            .unwrap();
        let ca = tempfile::tempdir().unwrap();
        std::fs::write(ca.path().join("ca.pem"), sim.ca_pem().unwrap()).unwrap();
        let edge = ngrok_cert_watchdog::sim::edge::EdgeServer::local()
            .await
            .unwrap();
        edge.follow(sim.edge_lookup());
        for name in DOMAINS {
            let old = sim.with_account(|a| a.served_for(name)).unwrap();
            edge.serve(name, &old.chain_pem, &old.key_pem).unwrap();
        }
        // The files on disk start as the certificate in the account.
        let old = sim.with_account(|a| a.served_for(DOMAINS[0])).unwrap();
        let certbot = Certbot::new(&ngrok_cert_watchdog::model::certs::generate::Generated {
            leaf_pem: old.chain_pem.clone(),
            chain_pem: old.chain_pem,
            key_pem: old.key_pem,
        });
        let extra = format!(
            "[schedule]\nsync = \"0 0 0 1 1 *\"\n\
             [edge]\ninterval = \"1h\"\ntimeout = \"2s\"\npropagation_grace = \"{grace}\"\ntrust_anchors = \"{}\"\n\
             resolve = {{ \"app.example.com\" = \"{edge}\", \"api.example.com\" = \"{edge}\" }}\n\
             [dns]\nenabled = false\n\
             [[watch]]\nname = \"app\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\ndomains = [\"app.example.com\", \"api.example.com\"]\ndelete_replaced = true\ndebounce = \"300ms\"\n",
            ca.path().join("ca.pem").display(),
            certbot.live("fullchain.pem").display(),
            certbot.live("privkey.pem").display(),
            edge = edge.addr(),
        );
        EdgeRotation {
            sim,
            edge,
            certbot,
            signer,
            _ca: ca,
            extra,
        }
    }

    fn certificates(&self) -> usize {
        self.sim.with_account(|a| a.certificates.len())
    }

    fn attached(&self) -> String {
        self.sim
            .with_account(|a| a.served_for(DOMAINS[0]))
            .unwrap()
            .certificate_id
    }

    /// certbot renews; returns the outcome of the daemon's pass that rotated (a pass already
    /// under way when the files changed, such as the one after the first probes, may come
    /// first).
    async fn renew(&mut self, d: &Daemon) -> Arc<daemon::SyncOutcome> {
        let before = self.attached();
        let mut outcomes = d.shared.subscribe();
        outcomes.borrow_and_update();
        self.certbot.renew(&generate(&self.signer, &DOMAINS, 0, 90));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            tokio::time::timeout_at(deadline.into(), outcomes.changed())
                .await
                .expect("a pass that rotates after the file event")
                .unwrap();
            if self.attached() != before {
                let outcome = outcomes.borrow().clone().unwrap();
                return outcome;
            }
        }
    }

    /// The edge picks the new certificate up: the rotation is confirmed (counted once), then
    /// the replaced certificate is deleted.
    async fn confirm_at_the_edge(&self, d: &Daemon) {
        for name in DOMAINS {
            self.edge.forget(name);
        }
        metric_becomes(
            d,
            "ngrok_cert_watchdog_edge_rotations_total{result=\"confirmed\",watch=\"app\"}",
            1.0,
            Duration::from_secs(15),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.certificates() != 1 {
            assert!(
                Instant::now() < deadline,
                "the replaced certificate was never deleted"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Polls `/metrics` until the series starting with `prefix` has `want`, within `within`.
async fn metric_becomes(d: &Daemon, prefix: &str, want: f64, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (_, m) = d.get("/metrics").await;
        if value(&m, prefix) == Some(want) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{prefix} never became {want}: {m}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_is_confirmed_at_the_edge_before_the_replaced_certificate_is_deleted() {
    let mut r = EdgeRotation::new("30s").await;
    let d = Daemon::start_probing(&r.sim, &r.extra, quiet()).await;
    assert!(d.sync(false).await.result.is_ok());
    // The first probe pass follows the first sync: the edge serves what is attached.
    metric_becomes(
        &d,
        "ngrok_edge_certificate_matches{domain=\"app.example.com\"}",
        1.0,
        Duration::from_secs(10),
    )
    .await;
    let old_id = r
        .sim
        .with_account(|a| a.served_for("app.example.com"))
        .unwrap()
        .certificate_id;

    // certbot renews; the daemon rotates. The edge still serves the old certificate.
    let outcome = r.renew(&d).await;
    let new_id = r
        .sim
        .with_account(|a| a.served_for("app.example.com"))
        .unwrap()
        .certificate_id;
    assert_ne!(new_id, old_id, "rotated");
    let (_, findings) = outcome.result.as_ref().unwrap();
    assert!(
        !findings
            .iter()
            .any(|f| f.kind.as_str().starts_with("edge_")),
        "propagating within the grace is no finding: {findings:?}"
    );
    // Probed again until confirmed; meanwhile the replaced certificate stays.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(r.certificates(), 2, "deleted before the edge confirmed");
    let (_, m) = d.get("/metrics").await;
    assert_eq!(
        value(
            &m,
            "ngrok_edge_certificate_matches{domain=\"app.example.com\"}"
        ),
        Some(0.0),
        "{m}"
    );

    // The edge picks the new certificate up: confirmed, counted once, then the old one goes.
    r.confirm_at_the_edge(&d).await;
    assert!(r
        .sim
        .with_account(|a| !a.certificates.contains_key(&old_id)));
    let m = metric_becomes(
        &d,
        "ngrok_edge_certificate_matches{domain=\"api.example.com\"}",
        1.0,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        value(
            &m,
            "ngrok_cert_watchdog_edge_rotations_total{result=\"grace_passed\",watch=\"app\"}"
        ),
        None
    );
    assert!(r.sim.violations().is_empty(), "{:?}", r.sim.violations());
    // The edge's series, and the whole page, lint clean.
    for name in [
        "ngrok_edge_probe_success",
        "ngrok_edge_certificate_not_after_timestamp_seconds",
        "ngrok_edge_certificate_matches",
        "ngrok_edge_certificate_valid",
    ] {
        assert!(
            value(&m, &format!("{name}{{domain=\"app.example.com\"}}")).is_some(),
            "{name}: {m}"
        );
    }
    let promtool = which("promtool")
        .expect("promtool is not installed: apt-get install prometheus (.ci/run does)");
    assert_promtool_finds_nothing(&promtool, &m);
    d.stop().await;
    r.edge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_restart_the_replaced_certificate_still_waits_for_the_edge() {
    let mut r = EdgeRotation::new("30s").await;
    let d = Daemon::start_probing(&r.sim, &r.extra, quiet()).await;
    assert!(d.sync(false).await.result.is_ok());
    r.renew(&d).await;
    assert_eq!(r.certificates(), 2, "rotated, the replaced one held");

    // Restarted while the edge still serves the old certificate: the new daemon's passes do
    // not delete it (the record in state.dir is followed at the edge again).
    let d = d.restart(&r.sim, &r.extra, quiet()).await;
    assert!(d.sync(false).await.result.is_ok());
    assert!(d.sync(true).await.result.is_ok());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(d.sync(true).await.result.is_ok());
    assert_eq!(
        r.certificates(),
        2,
        "deleted after a restart before the edge confirmed"
    );

    // The edge picks the new certificate up: confirmed, then the old one goes.
    r.confirm_at_the_edge(&d).await;
    assert!(r.sim.violations().is_empty(), "{:?}", r.sim.violations());
    d.stop().await;
    r.edge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_grace_the_replaced_certificate_is_deleted_and_the_edge_is_a_finding_on_the_watch()
{
    let mut r = EdgeRotation::new("3s").await;
    let d = Daemon::start_probing(&r.sim, &r.extra, quiet()).await;
    assert!(d.sync(false).await.result.is_ok());
    r.renew(&d).await;
    assert_eq!(r.certificates(), 2);
    // The edge never picks the new one up: past the grace, the replaced one is deleted anyway.
    metric_becomes(
        &d,
        "ngrok_cert_watchdog_edge_rotations_total{result=\"grace_passed\",watch=\"app\"}",
        1.0,
        Duration::from_secs(15),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while r.certificates() != 1 {
        assert!(Instant::now() < deadline, "never deleted after the grace");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ... and the edge still serving another leaf is a mismatch on the watch, naming the rotation.
    let outcome = d.sync(true).await;
    let (_, findings) = outcome.result.as_ref().unwrap();
    let on_watch: Vec<_> = findings
        .iter()
        .filter(|f| f.kind.as_str() == "edge_certificate_mismatch" && f.resource_id == "app")
        .collect();
    assert_eq!(on_watch.len(), 2, "{findings:?}");
    assert!(
        on_watch[0].message.contains("after the rotation to cert_"),
        "{}",
        on_watch[0].message
    );
    d.stop().await;
    r.edge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn edge_unreachable_needs_its_failures_in_a_row_and_clears_once_the_edge_answers() {
    let sim = seeded(
        "dev_domain = false\n[[certificate]]\nname = \"a\"\ndns_names = [\"app.example.com\"]\n[[domain]]\ndomain = \"app.example.com\"\ncertificate = \"a\"\n",
    )
    .await;
    let ca = tempfile::tempdir().unwrap();
    std::fs::write(ca.path().join("ca.pem"), sim.ca_pem().unwrap()).unwrap();
    // Nothing listens at the edge's address yet.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let extra = format!(
        "[schedule]\nsync = \"0 0 0 1 1 *\"\n[edge]\ninterval = \"2s\"\ntimeout = \"1s\"\nfailures_before_finding = 3\ntrust_anchors = \"{}\"\nresolve = {{ \"app.example.com\" = \"{addr}\" }}\n[dns]\nenabled = false\n",
        ca.path().join("ca.pem").display()
    );
    let d = Daemon::start_probing(&sim, &extra, quiet()).await;
    assert!(d.sync(false).await.result.is_ok());
    let unreachable = |o: &daemon::SyncOutcome| {
        let (_, findings) = o.result.as_ref().unwrap();
        findings
            .iter()
            .filter(|f| f.kind.as_str() == "edge_unreachable")
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
    };
    // One failed probe (the next is 2 s away): not yet a finding.
    metric_becomes(
        &d,
        "ngrok_edge_probe_success{domain=\"app.example.com\"}",
        0.0,
        Duration::from_secs(10),
    )
    .await;
    let o = d.sync(true).await;
    assert!(o.edge_included);
    assert!(unreachable(&o).is_empty(), "a single failure is no finding");
    // Three in a row: the finding, with the error.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let found = unreachable(&*d.sync(true).await);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("times in a row: connection refused"),
        "{}",
        found[0]
    );
    // The edge answers: the next probe clears it.
    let edge = ngrok_cert_watchdog::sim::edge::EdgeServer::start(
        tokio::net::TcpListener::bind(addr).await.unwrap(),
    )
    .unwrap();
    edge.follow(sim.edge_lookup());
    metric_becomes(
        &d,
        "ngrok_edge_probe_success{domain=\"app.example.com\"}",
        1.0,
        Duration::from_secs(10),
    )
    .await;
    let o = d.sync(true).await;
    assert!(unreachable(&o).is_empty());
    let (_, findings) = o.result.as_ref().unwrap();
    assert!(
        !findings
            .iter()
            .any(|f| f.kind.as_str().starts_with("edge_")),
        "{findings:?}"
    );
    d.stop().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_reports_dns_from_its_first_sync_and_clears_it_once_fixed() {
    use ngrok_cert_watchdog::model::FindingKind;
    use ngrok_cert_watchdog::sim::dns::{Responder, Zone};
    let sim = seeded(
        "dev_domain = false\n[[certificate]]\nname = \"a\"\ndns_names = [\"a.example.com\"]\nnot_after = \"+90d\"\n[[domain]]\ndomain = \"a.example.com\"\ncertificate = \"a\"\n",
    )
    .await;
    let target = cname_target(&sim, "a.example.com");
    let mut zone = Zone::default().with_apex("example.com");
    zone.address("a.example.com", "203.0.113.7".parse().unwrap());
    let dns = Responder::start("127.0.0.1:0".parse().unwrap(), zone)
        .await
        .unwrap();
    let extra = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"2s\"\n[edge]\nenabled = false\ninterval = \"1s\"\n",
        dns.addr()
    );
    let d = Daemon::start(&sim, &extra, quiet()).await;
    let first = d.sync(false).await;
    let (_, findings) = first.result.as_ref().unwrap();
    let f = findings
        .iter()
        .find(|f| f.kind == FindingKind::DnsMisconfigured)
        .expect("dns finding");
    assert!(
        f.message
            .contains(&format!("replace it with CNAME a.example.com → {target}")),
        "{}",
        f.message
    );
    let (_, metrics) = d.get("/metrics").await;
    assert_eq!(
        value(
            &metrics,
            "ngrok_reserved_domain_dns_ok{domain=\"a.example.com\"}"
        ),
        Some(0.0),
        "{metrics}"
    );

    dns.zone().cname("a.example.com", &target);
    // The next sync within edge.interval keeps the last diagnosis; one after it looks again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let next = d.sync(true).await;
    let (_, findings) = next.result.as_ref().unwrap();
    assert!(
        findings
            .iter()
            .all(|f| f.kind != FindingKind::DnsMisconfigured),
        "{findings:#?}"
    );
    let (_, metrics) = d.get("/metrics").await;
    assert_eq!(
        value(
            &metrics,
            "ngrok_reserved_domain_dns_ok{domain=\"a.example.com\"}"
        ),
        Some(1.0)
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_says_when_the_last_sync_was_bound_by_the_budget_until_a_sync_says_otherwise() {
    // The previous run's sync took 200,001 requests: at the harness's 6,000 a minute that is 33
    // minutes of budget (as 2,001 requests of a 100,000-domain account at the default 60),
    // longer than the 5-minute interval.
    let state = tempfile::tempdir().unwrap();
    std::fs::write(
        state.path().join("last-sync.json"),
        r#"{"requests": 200001}"#,
    )
    .unwrap();
    let sim = seeded("dev_domain = false\n[bulk]\ncertificates = 3\ndomains = 3\n").await;
    // The first sync takes a few seconds (its first listing is slow), long enough to ask.
    sim.inject(Fault {
        path: "/tls_certificates".into(),
        method: Some("GET".into()),
        count: 1,
        kind: FaultKind::Latency { millis: 3000 },
    });
    let extra = "[edge]\nenabled = false\n";
    let d = Daemon::start_in(&sim, extra, quiet(), state).await;
    let (status, body) = d.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("a sync needs at least 33m of request budget (200001 requests at api.requests_per_minute = 6000), longer than the schedule's interval of 5m"),
        "{body}"
    );
    let (_, m) = d.get("/metrics").await;
    // stale_after: the larger of 3 × 5 minutes and twice the 33 budget-bound minutes.
    assert_eq!(
        value(&m, "ngrok_cert_watchdog_sync_stale_after_seconds"),
        Some(3960.0),
        "{m}"
    );
    // The sync itself takes a few requests: ready, and no note any more.
    assert!(d.sync(false).await.result.is_ok());
    let (status, body) = d.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("request budget"), "{body}");
    let text = std::fs::read_to_string(d._state.path().join("last-sync.json")).unwrap();
    assert!(!text.contains("200001"), "{text}");
    d.stop().await;
}
