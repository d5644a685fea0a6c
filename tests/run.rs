//! The `run` binary as systemd runs it: exit 78 on a bad config, SIGHUP reloads (a new threshold
//! changes the findings; an invalid file keeps the old config running), SIGTERM exits 0 within
//! 5 s. Also the shipped unit verified and scored by systemd-analyze.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn read_stderr(child: &mut Child) -> String {
    use std::io::Read;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).unwrap();
    }
    stderr
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// SIGTERM, then the exit status, which must come within `limit`.
fn terminate(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let asked = Instant::now();
    signal(child, "TERM");
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            asked.elapsed() < limit,
            "still running {limit:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn metrics(port: u16) -> Option<String> {
    let res = http()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?;
    res.text().await.ok()
}

/// Polls /metrics until `pred` holds (or 20 s pass).
async fn wait_for(port: u16, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        if let Some(m) = metrics(port).await {
            if pred(&m) {
                return m;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn findings(m: &str, kind: &str, severity: &str) -> Option<f64> {
    let prefix =
        format!("ngrok_cert_watchdog_findings{{kind=\"{kind}\",severity=\"{severity}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

fn successes(m: &str) -> f64 {
    m.lines()
        .find_map(|l| l.strip_prefix("ngrok_cert_watchdog_syncs_total{result=\"success\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_and_sigterm_exits_0_within_5_s() {
    let sim = seeded("[[certificate]]\nname = \"a\"\ndns_names = [\"a.example.com\"]\nnot_after = \"+20d\"\n[[domain]]\ndomain = \"a.example.com\"\ncertificate = \"a\"\n").await;
    let port = free_port();
    let schedule = "[schedule]\nsync = \"0 0 0 1 1 *\"\n"; // yearly: only start-up and reloads sync
    let (dir, config) = config_trusting(
        &sim,
        KEY,
        // Pinned: the default "30d or 33%" would not warn 20 days before the end of 50.
        &format!(
            "{schedule}[metrics]\nlisten = \"127.0.0.1:{port}\"\n[expiry]\nwarning = \"30d\"\n"
        ),
    );
    let mut child = Command::new(bin())
        .args(["--config", config.to_str().unwrap(), "run"])
        .env_remove("NGROK_API_KEY")
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // 20 days left: a warning at the 30 d threshold.
    let m = wait_for(port, "the first sync", |m| successes(m) >= 1.0).await;
    assert_eq!(
        findings(&m, "certificate_expiring", "warning"),
        Some(1.0),
        "{m}"
    );

    // A new threshold through SIGHUP: 10 d warning → nothing to report.
    let base = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        base.replace("warning = \"30d\"", "warning = \"10d\"\ncritical = \"2d\""),
    )
    .unwrap();
    signal(&child, "HUP");
    let m = wait_for(port, "the reload's sync", |m| successes(m) >= 2.0).await;
    assert_eq!(
        findings(&m, "certificate_expiring", "warning").unwrap_or(0.0),
        0.0,
        "{m}"
    );
    assert!(
        m.contains("ngrok_cert_watchdog_expiry_threshold_seconds{severity=\"warning\"} 864000"),
        "{m}"
    );

    // An invalid file: logged, the old config kept, still serving.
    std::fs::write(&config, "[api\nthis is not toml").unwrap();
    signal(&child, "HUP");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "an invalid reload stopped the daemon"
    );
    let m = metrics(port).await.expect("still serving");
    assert!(m.contains("ngrok_cert_watchdog_expiry_threshold_seconds{severity=\"warning\"} 864000"));

    // SIGTERM: drain and exit 0 within 5 s.
    let status = terminate(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    let stderr = read_stderr(&mut child);
    assert!(
        stderr.contains("reload") && stderr.contains("keeping"),
        "{stderr}"
    );
    assert!(!stderr.contains(KEY), "the key leaked into the log");
    drop(dir);
}

#[test]
fn run_exits_78_on_a_bad_config_and_71_on_a_taken_port() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[schedule]\nsync = \"every tuesday\"\n").unwrap();
    let out = run(
        &["--config", config.to_str().unwrap(), "run"],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("schedule.sync"), "{stderr}");
    assert!(!stderr.contains("panicked"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (_d, config) = config_for(
        "http://127.0.0.1:9",
        "k",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let out = run(
        &["--config", config.to_str().unwrap(), "run"],
        Duration::from_secs(20),
    );
    assert_one_line_error(&out, 71, "\u{0}");
}

#[test]
fn the_systemd_units_verify_and_score_at_most_1_5() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("systemd/verify-unit.sh"))
        .arg(bin())
        .env("MAX_EXPOSURE", "1.5")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(77),
        "systemd-analyze is not installed (apt-get install systemd; .ci/run does)"
    );
    assert!(out.status.success(), "{text}");
    for line in [
        "verify ngrok-cert-watchdog.service: OK",
        "verify ngrok-cert-watchdog@example.service: OK",
        "template ngrok-cert-watchdog@.service matches the service: OK",
    ] {
        assert!(text.contains(line), "{text}");
    }
}

#[test]
fn the_deploy_hook_copies_a_renewed_pair() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live/app.example.com");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(
        live.join("fullchain.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(
        live.join("privkey.pem"),
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let target = dir.path().join("certs");
    let out = Command::new("bash")
        .arg(root.join("systemd/certbot-deploy-hook.sh"))
        .env("RENEWED_LINEAGE", &live)
        .env("RENEWED_DOMAINS", "app.example.com")
        .env("NGROK_CERT_WATCHDOG_CERT_DIR", &target)
        .env("NGROK_CERT_WATCHDOG_CERT_GROUP", "")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied = target.join("app.example.com");
    assert_eq!(
        std::fs::read(copied.join("fullchain.pem")).unwrap(),
        std::fs::read(live.join("fullchain.pem")).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(copied.join("privkey.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode & 0o007, 0, "the key is not world-readable: {mode:o}");
    // No temporary files left behind.
    let names: Vec<String> = std::fs::read_dir(&copied)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_the_logs_or_the_metrics() {
    const API_KEY: &str = "api-key-s3cr3t-0001";
    const URL_TOKEN: &str = "T0KEN-in-the-path-s3cr3t";
    const QUERY_TOKEN: &str = "query-s3cr3t";
    const HEADER: &str = "header-value-s3cr3t";
    const SECRET_B64: &str = "c2lnbmluZy1zM2NyM3Qta2V5";
    let sim = ngrok_cert_watchdog::sim::Sim::local(API_KEY).await.unwrap();
    let seed =
        ngrok_cert_watchdog::sim::seed::parse(include_str!("../config/demo-seed.toml")).unwrap();
    sim.seed(&seed, "demo").unwrap();
    // A receiver that refuses everything, so failures are logged too.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!(
        "http://{}/hook/{URL_TOKEN}?token={QUERY_TOKEN}",
        listener.local_addr().unwrap()
    );
    let app =
        axum::Router::new().fallback(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let port = free_port();
    let (dir, config) = config_for(&sim.url(), API_KEY, "");
    std::fs::write(
        dir.path().join("webhook-secret"),
        format!("whsec_{SECRET_B64}\n"),
    )
    .unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[schedule]\nsync = \"*/2 * * * * *\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n[[webhook]]\nname = \"ops\"\nurl = \"{hook}\"\nformat = \"json\"\nsecret_file = \"{}\"\nheaders = {{ \"X-Auth\" = \"{HEADER}\" }}\n[[webhook]]\nname = \"chat\"\nurl = \"{hook}\"\nformat = \"slack\"\n",
        dir.path().join("webhook-secret").display()
    ));
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(bin())
        .args(["--config", config.to_str().unwrap(), "run"])
        .env_remove("NGROK_API_KEY")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let m = wait_for(port, "a failed delivery", |m| {
        m.contains(
            "ngrok_cert_watchdog_webhook_deliveries_total{result=\"failure\",webhook=\"ops\"}",
        )
    })
    .await;
    signal(&child, "TERM");
    let _ = child.wait();
    let stderr = read_stderr(&mut child);
    assert!(stderr.contains("webhook delivery failed"), "{stderr}");
    for secret in [
        API_KEY,
        URL_TOKEN,
        QUERY_TOKEN,
        HEADER,
        SECRET_B64,
        "/hook/",
    ] {
        assert!(!stderr.contains(secret), "{secret} in the log:\n{stderr}");
        assert!(!m.contains(secret), "{secret} in the metrics");
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_as_a_watched_file_freezes_nothing_and_sigterm_still_exits() {
    let sim = seeded("[[certificate]]\nname = \"a\"\ndns_names = [\"app.example.com\"]\n[[domain]]\ndomain = \"app.example.com\"\ncertificate = \"a\"\n").await;
    let port = free_port();
    let files = tempfile::tempdir().unwrap();
    let fifo = files.path().join("fullchain.pem");
    mkfifo(&fifo);
    std::fs::write(files.path().join("privkey.pem"), "not a key").unwrap();
    let (dir, config) = config_for(&sim.url(),
        KEY,
        &format!(
            "[schedule]\nsync = \"* * * * * *\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\
             [[watch]]\nname = \"app\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\ndomains = [\"app.example.com\"]\nsettle_timeout = \"1s\"\n",
            fifo.display(),
            files.path().join("privkey.pem").display()
        ),
    );
    let mut child = Command::new(bin())
        .args(["--config", config.to_str().unwrap(), "run"])
        .env_remove("NGROK_API_KEY")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The account is synced again and again meanwhile, and the FIFO is a finding.
    let m = wait_for(port, "three syncs", |m| successes(m) >= 3.0).await;
    assert!(
        m.contains("ngrok_cert_watchdog_watch_up{watch=\"app\"} 0"),
        "{m}"
    );
    let ready = http()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // systemd's TimeoutStopSec is 10 s.
    let status = terminate(&mut child, Duration::from_secs(8));
    assert_eq!(status.code(), Some(0));
    let stderr = read_stderr(&mut child);
    assert!(stderr.contains("not a regular file (a FIFO)"), "{stderr}");
    drop(dir);
}

#[test]
fn a_fifo_as_key_file_or_secret_file_is_a_config_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("api-key");
    mkfifo(&fifo);
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[api]\nkey_file = \"{}\"\n", fifo.display()),
    )
    .unwrap();
    let started = Instant::now();
    let out = run(
        &["--config", config.to_str().unwrap(), "check-config"],
        Duration::from_secs(20),
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let line = assert_one_line_error(&out, 78, "\u{0}");
    assert!(
        line.contains("a FIFO") && line.contains("api.key_file"),
        "{line}"
    );

    let secret = dir.path().join("secret");
    mkfifo(&secret);
    std::fs::write(dir.path().join("key"), "k3y\n").unwrap();
    std::fs::write(
        &config,
        format!(
            "[api]\nkey_file = \"{}\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://hooks.example.com/x\"\nsecret_file = \"{}\"\n",
            dir.path().join("key").display(),
            secret.display()
        ),
    )
    .unwrap();
    let out = run(
        &["--config", config.to_str().unwrap(), "run"],
        Duration::from_secs(20),
    );
    let line = assert_one_line_error(&out, 78, "k3y");
    assert!(
        line.contains("a FIFO") && line.contains("secret_file"),
        "{line}"
    );
}

#[test]
fn check_config_warns_of_a_schedule_the_budget_cannot_sustain() {
    let (dir, config) = config_for(
        "http://127.0.0.1:9",
        "k3y",
        "[schedule]\nsync = \"*/2 * * * * *\"\n",
    );
    // The shared helper raises the budget; the default of 60 is what users have.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("requests_per_minute = 6000", "requests_per_minute = 60");
    std::fs::write(&config, text).unwrap();
    let out = run(
        &["--config", config.to_str().unwrap(), "check-config"],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0), "a warning is not an error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("about 90 requests a minute"),
        "{stderr}"
    );
    // A large account: the last sync's recorded count, with an every-minute schedule.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("*/2 * * * * *", "0 * * * * *");
    std::fs::write(&config, text).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let out = run(
        &["--config", config.to_str().unwrap(), "check-config"],
        Duration::from_secs(20),
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
    std::fs::write(state.join("last-sync.json"), r#"{"requests": 201}"#).unwrap();
    let out = run(
        &["--config", config.to_str().unwrap(), "check-config"],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("201 requests (the last sync's count)"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_trusts_its_simulator_and_shows_a_chain_browsers_refuse() {
    let port = free_port();
    let mut child = Command::new(bin())
        .args(["demo", "--metrics-listen", &format!("127.0.0.1:{port}")])
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first sync rotated the watched pair, which is signed under the simulator's root.
    let m = wait_for(port, "the demo's first sync and rotation", |m| {
        successes(m) >= 1.0
            // 1, or 2 once the edge confirmed and the replaced certificate was deleted.
            && m.contains("ngrok_cert_watchdog_rotations_total{result=\"success\",watch=\"app\"} ")
    })
    .await;
    // The legacy certificate was uploaded without its intermediate; every other certificate of
    // the account chains to the trusted root, so it is the only one.
    assert_eq!(
        findings(&m, "certificate_chain_incomplete", "warning"),
        Some(1.0),
        "{m}"
    );
    // The findings are printed after the first sync that knows the edge (a second sync, after
    // the probes): read until they are, then stop.
    let (lines, printed) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if line.starts_with("Look at:") {
                let _ = lines.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let seen = printed.recv_timeout(Duration::from_secs(90)).is_ok();
    signal(&child, "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let stdout = reader.join().unwrap();
    assert!(seen, "the findings were never printed: {stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("certificate_chain_incomplete"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("legacy.example.com") && line.contains("without its intermediate"),
        "{line}"
    );
}
