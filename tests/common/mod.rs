//! Shared helpers for the scenario tests: a simulator on 127.0.0.1:0, a client for it, a config
//! file for the binary, and running the binary with a deadline.
#![allow(dead_code)]

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use ngrok_cert_watchdog::config::WatchSettings;
use ngrok_cert_watchdog::model::certs::generate::{Generated, Signer, Spec};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ngrok_cert_watchdog::sim::{seed, Sim};
use ngrok_cert_watchdog::sources::ngrok::{Client, ClientOptions, RetryPolicy};
use secrecy::SecretString;

pub const KEY: &str = "sim-test-key-0123456789";

pub async fn sim() -> Sim {
    Sim::local(KEY).await.expect("bind the simulator")
}

pub async fn seeded(toml: &str) -> Sim {
    let sim = sim().await;
    let seed = seed::parse(toml).expect("seed parses");
    sim.seed(&seed, "test seed").expect("seed applies");
    sim
}

pub fn client(sim: &Sim) -> Client {
    client_with(sim, KEY, RetryPolicy::default())
}

pub fn client_with(sim: &Sim, key: &str, retry: RetryPolicy) -> Client {
    client_in_flight(sim, key, retry, 2)
}

/// A client for any API on loopback.
pub fn client_for_url(url: &str, retry: RetryPolicy) -> Client {
    client_options(url, KEY, retry, 2)
}

/// A client with at most `in_flight` requests at once.
pub fn client_in_flight(sim: &Sim, key: &str, retry: RetryPolicy, in_flight: u32) -> Client {
    client_options(&sim.url(), key, retry, in_flight)
}

fn client_options(url: &str, key: &str, retry: RetryPolicy, in_flight: u32) -> Client {
    Client::new(ClientOptions {
        base_url: url.parse().unwrap(),
        api_key: SecretString::from(key.to_string()),
        requests_per_minute: NonZeroU32::new(100_000).unwrap(),
        max_concurrent_requests: NonZeroU32::new(in_flight).unwrap(),
        budget_file: None,
        timeout: Duration::from_secs(10),
        retry,
    })
    .unwrap()
}

/// Requests the simulator logged for `method` on exactly `path`.
pub fn count(sim: &Sim, method: &str, path: &str) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

/// The CNAME target the simulator gave the domain `name`.
pub fn cname_target(sim: &Sim, name: &str) -> String {
    sim.with_account(|a| {
        a.domains
            .values()
            .find(|d| d.domain == name)
            .and_then(|d| d.cname_target.clone())
            .expect("a custom domain")
    })
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ngrok-cert-watchdog")
}

/// The probes from outside the API turned off: nothing in a test may send a DNS query or a TLS
/// handshake off the machine (tests of the probes turn them on with loopback addresses).
pub const NO_PROBES: &str = "[edge]\nenabled = false\n[dns]\nenabled = false\n";

/// A config for the binary with the key in a 0600 file, probes off unless `extra` has its own
/// `[edge]` or `[dns]` section; returns (dir, config path).
pub fn config_for(url: &str, key: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    // config_probing turns DNS off unless `extra` has a [dns] section.
    let edge_off = if extra.contains("[edge]") {
        ""
    } else {
        "[edge]\nenabled = false\n"
    };
    config_probing(url, key, &format!("{edge_off}{extra}"))
}

/// [`config_for`] with the probes as `extra` says (on by default: `extra` must set `[edge]`
/// and `[dns]` to loopback or off).
pub fn config_probing(url: &str, key: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("api-key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nurl = \"{url}\"\nkey_file = \"{}\"\nrequests_per_minute = 6000\ntimeout = \"5s\"\n\n[state]\ndir = \"{}\"\n{}{extra}",
            key_file.display(),
            dir.path().join("state").display(),
            // No DNS query leaves the machine: off unless the test brings its own server.
            if extra.contains("[dns]") { "" } else { "[dns]\nenabled = false\n" },
        ),
    )
    .unwrap();
    (dir, config)
}

/// [`config_for`] the simulator, trusting its seed root (`edge.trust_anchors`, as a user would
/// after `simulate --write-ca`), so that its healthy certificates have no finding.
pub fn config_trusting(sim: &Sim, key: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let (dir, config) = config_for(&sim.url(), key, extra);
    let ca = dir.path().join("sim-ca.pem");
    std::fs::write(&ca, sim.ca_pem().expect("the simulator's root")).unwrap();
    trust_anchors_in(&config, &ca);
    (dir, config)
}

/// Sets `edge.trust_anchors` in a config file: in its `[edge]` table, or in a new one.
pub fn trust_anchors_in(config: &Path, anchors: &Path) {
    let line = format!("trust_anchors = \"{}\"\n", anchors.display());
    let text = std::fs::read_to_string(config).unwrap();
    let text = match text.find("[edge]\n") {
        Some(at) => format!("{}{line}{}", &text[..at + 7], &text[at + 7..]),
        None => format!("{text}\n[edge]\n{line}"),
    };
    std::fs::write(config, text).unwrap();
}

/// Runs the binary with a deadline; the environment is cleared of variables that would change
/// its behaviour.
pub fn run(args: &[&str], deadline: Duration) -> Output {
    run_in(args, deadline, None)
}

pub fn run_in(args: &[&str], deadline: Duration, cwd: Option<&Path>) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("NGROK_API_KEY")
        .env_remove("NGROK_CERT_WATCHDOG_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("STATE_DIRECTORY")
        .env_remove("JOURNAL_STREAM")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().expect("spawn the binary");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} did not finish within {deadline:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts the error contract: the exit code, exactly one line on stderr, no panic, no secret.
pub fn assert_one_line_error(out: &Output, code: i32, secret: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {stderr}\nstdout: {stdout}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(secret) && !stdout.contains(secret),
        "secret leaked: {stderr}{stdout}"
    );
    stderr
}

/// A plain HTTP client for poking the simulator directly (rustls needs its provider first).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub const DOMAINS: [&str; 2] = ["app.example.com", "api.example.com"];

/// A certificate for `names`, valid from `not_before_days` to `not_after_days` from now.
pub fn generate(
    signer: &Signer,
    names: &[&str],
    not_before_days: i64,
    not_after_days: i64,
) -> Generated {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let now = time::OffsetDateTime::now_utc();
    signer
        .generate(&Spec {
            common_name: &names[0],
            dns_names: &names,
            not_before: now + time::Duration::days(not_before_days),
            not_after: now + time::Duration::days(not_after_days),
        })
        .unwrap()
}

/// certbot's layout: archive/app/{fullchainN,privkeyN}.pem and live/app/* symlinks into it.
pub struct Certbot {
    pub dir: tempfile::TempDir,
    pub generation: u32,
}

impl Certbot {
    pub fn new(first: &Generated) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("archive/app")).unwrap();
        std::fs::create_dir_all(dir.path().join("live/app")).unwrap();
        let mut c = Certbot { dir, generation: 0 };
        c.renew(first);
        c
    }
    pub fn live(&self, name: &str) -> PathBuf {
        self.dir.path().join("live/app").join(name)
    }
    /// New archive files, then the live links re-pointed one at a time (certificate first).
    pub fn renew(&mut self, g: &Generated) {
        self.generation += 1;
        let n = self.generation;
        let archive = self.dir.path().join("archive/app");
        std::fs::write(archive.join(format!("fullchain{n}.pem")), &g.chain_pem).unwrap();
        std::fs::write(archive.join(format!("privkey{n}.pem")), &g.key_pem).unwrap();
        for (link, target) in [
            ("fullchain.pem", format!("fullchain{n}.pem")),
            ("privkey.pem", format!("privkey{n}.pem")),
        ] {
            let path = self.live(link);
            let _ = std::fs::remove_file(&path);
            std::os::unix::fs::symlink(Path::new("../../archive/app").join(target), &path).unwrap();
        }
    }
    pub fn watch(&self) -> WatchSettings {
        WatchSettings {
            name: "app".into(),
            certificate: self.live("fullchain.pem"),
            private_key: self.live("privkey.pem"),
            domains: DOMAINS.iter().map(|s| s.to_string()).collect(),
            delete_replaced: true,
            take_over_managed: false,
            debounce: Duration::from_millis(200),
            settle_timeout: Duration::ZERO,
            poll_interval: None,
        }
    }
}

/// Requests the simulator answered with a 4xx other than 404 that no injected fault explains —
/// what the real API would have refused too — as `METHOD path → status`.
pub fn refused(sim: &Sim) -> Vec<String> {
    sim.requests()
        .iter()
        .filter(|r| (400..500).contains(&r.status) && r.status != 404 && !r.injected)
        .map(|r| format!("{} {} → {}", r.method, r.path, r.status))
        .collect()
}

/// Asserts that nothing the watchdog sent was refused (see [`refused`]).
pub fn assert_nothing_refused(sim: &Sim) {
    let refused = refused(sim);
    assert!(
        refused.is_empty(),
        "the simulator refused requests the real API would refuse too: {refused:?}"
    );
}

/// A free TCP port on loopback (for a process that must be told its port up front).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when the test ends, however it ends.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
