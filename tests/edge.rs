//! The edge findings end to end: `check` against the simulator, probing a TLS edge on
//! 127.0.0.1:0 that serves each domain per SNI (what the account attaches, unless the test says
//! otherwise). Each finding appears for its case and disappears once fixed; healthy domains
//! have none. Every name is resolved through `edge.resolve` to loopback, DNS is off: nothing
//! leaves the machine.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::*;
use ngrok_cert_watchdog::model::certs::generate::Signer;
use ngrok_cert_watchdog::sim::edge::EdgeServer;
use ngrok_cert_watchdog::sim::Sim;
use serde_json::Value;

const SEED: &str = r#"
dev_domain = false

[[certificate]]
name = "good"
dns_names = ["good.example.com"]

[[domain]]
domain = "good.example.com"
certificate = "good"

[[certificate]]
name = "stale"
dns_names = ["stale.example.com"]

[[domain]]
domain = "stale.example.com"
certificate = "stale"

[[certificate]]
name = "wrong"
dns_names = ["wrong.example.com"]

[[domain]]
domain = "wrong.example.com"
certificate = "wrong"

[[certificate]]
name = "down"
dns_names = ["down.example.com"]

[[domain]]
domain = "down.example.com"
certificate = "down"

[[certificate]]
name = "wild"
dns_names = ["*.example.org"]

[[domain]]
domain = "*.example.org"
certificate = "wild"

[[domain]]
domain = "new.example.com"
managed = true
job = { msg = "Managed certificate provisioning in progress.", started_at = "-2d" }
"#;

/// `check --format json` with the probes pointed at loopback; the report and the exit code.
async fn check(config: &Path, extra_args: &[&str]) -> (Value, i32) {
    let mut args = vec![
        "--config".to_string(),
        config.display().to_string(),
        "check".into(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(extra_args.iter().map(|s| s.to_string()));
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args, Duration::from_secs(30))
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code().unwrap_or(-1))
}

/// The edge findings of a report: (kind, domain or resource, severity).
fn edge_findings(report: &Value) -> BTreeSet<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"].as_str().unwrap().starts_with("edge_"))
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("kind"), s("domain"), s("severity"))
        })
        .collect()
}

fn finding<'a>(report: &'a Value, kind: &str, domain: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind && f["domain"] == domain)
        .unwrap_or_else(|| panic!("no {kind} for {domain}: {report:#}"))
}

/// The config: every name of the seed resolved to `edge` (down.example.com to `down`), the
/// simulator's CA trusted, DNS off.
fn config(
    sim: &Sim,
    edge: SocketAddr,
    down: SocketAddr,
    ca: &Path,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let names = [
        "good.example.com",
        "stale.example.com",
        "wrong.example.com",
        "www.example.org",
        "new.example.com",
    ];
    let mut resolve: Vec<String> = names
        .iter()
        .map(|n| format!("\"{n}\" = \"{edge}\""))
        .collect();
    resolve.push(format!("\"down.example.com\" = \"{down}\""));
    let extra = format!(
        "[edge]\ntimeout = \"2s\"\ntrust_anchors = \"{}\"\nresolve = {{ {} }}\nwildcard_probe_names = {{ \"*.example.org\" = \"www.example.org\" }}\n[dns]\nenabled = false\n",
        ca.display(),
        resolve.join(", ")
    );
    config_probing(&sim.url(), KEY, &extra)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_edge_finding_appears_for_its_case_and_disappears_once_fixed() {
    let sim = seeded(SEED).await;
    let root = sim.with_account(|a| a.seed_ca()).unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ca_dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_pem().unwrap()).unwrap();
    let edge = EdgeServer::local().await.unwrap();
    edge.follow(sim.edge_lookup());
    // stale: the edge still serves an older certificate of the name (trusted, 20 days left).
    let r10 = root.intermediate("R10", false).unwrap();
    let older = generate(&r10, &["stale.example.com"], -70, 20);
    edge.serve("stale.example.com", &older.chain_pem, &older.key_pem)
        .unwrap();
    // wrong: a certificate for another name (a shared edge's default).
    let other = generate(&r10, &["other.example.net"], -1, 60);
    edge.serve("wrong.example.com", &other.chain_pem, &other.key_pem)
        .unwrap();
    // new: no certificate yet; the edge serves a fallback meanwhile.
    let fallback = generate(
        &Signer::new("ngrok fallback").unwrap(),
        &["*.ngrok.dev"],
        -1,
        60,
    );
    edge.serve("new.example.com", &fallback.chain_pem, &fallback.key_pem)
        .unwrap();
    // down: nothing listens there.
    let down = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (_dir, config) = config(&sim, edge.addr(), down, &ca);

    let (report, code) = check(&config, &[]).await;
    let expected: BTreeSet<(String, String, String)> = [
        ("edge_certificate_mismatch", "stale.example.com", "warning"),
        ("edge_certificate_mismatch", "wrong.example.com", "critical"),
        ("edge_certificate_invalid", "wrong.example.com", "critical"),
        ("edge_unreachable", "down.example.com", "warning"),
    ]
    .iter()
    .map(|(k, d, s)| (k.to_string(), d.to_string(), s.to_string()))
    .collect();
    assert_eq!(edge_findings(&report), expected, "{report:#}");
    assert_eq!(code, 2);
    let msg = |kind, domain| {
        finding(&report, kind, domain)["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        msg("edge_certificate_invalid", "wrong.example.com").contains("does not cover the name")
    );
    assert!(msg("edge_certificate_mismatch", "wrong.example.com")
        .contains("does not cover wrong.example.com"));
    assert!(msg("edge_unreachable", "down.example.com").contains("connection refused"));
    assert!(
        msg("provisioning_stuck", "new.example.com")
            .contains("meanwhile the edge serves CN=*.ngrok.dev issued by ngrok fallback"),
        "{report:#}"
    );
    let probes_so_far = edge.accepted();
    assert_eq!(
        probes_so_far, 5,
        "every domain but the unreachable one, once"
    );

    // --no-edge: no handshake, no edge finding.
    let (report, _) = check(&config, &["--no-edge"]).await;
    assert!(edge_findings(&report).is_empty(), "{report:#}");
    assert_eq!(edge.accepted(), probes_so_far);

    // Fixed: the edge picks up the attached certificates, and down.example.com answers.
    edge.forget("stale.example.com");
    edge.forget("wrong.example.com");
    let listener = tokio::net::TcpListener::bind(down).await.unwrap();
    let edge_down = EdgeServer::start(listener).unwrap();
    edge_down.follow(sim.edge_lookup());
    let (report, _) = check(&config, &[]).await;
    assert!(edge_findings(&report).is_empty(), "{report:#}");
    edge.stop().await;
    edge_down.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_chain_is_invalid_and_trusting_its_root_fixes_it() {
    // The attached certificate itself, served as attached, from a CA the watchdog does not
    // trust: invalid (unknown issuer), never a mismatch.
    let private = Signer::new("Internal CA").unwrap();
    let pair = generate(&private, &["intranet.example.com"], -1, 60);
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("chain.pem"), &pair.chain_pem).unwrap();
    std::fs::write(files.path().join("key.pem"), &pair.key_pem).unwrap();
    let sim = seeded(&format!(
        "dev_domain = false\n[[certificate]]\nname = \"i\"\ncertificate_file = \"{}\"\nprivate_key_file = \"{}\"\n[[domain]]\ndomain = \"intranet.example.com\"\ncertificate = \"i\"\n",
        files.path().join("chain.pem").display(),
        files.path().join("key.pem").display()
    ))
    .await;
    let edge = EdgeServer::local().await.unwrap();
    edge.follow(sim.edge_lookup());
    let extra = |anchors: &str| {
        format!(
            "[edge]\ntimeout = \"2s\"\n{anchors}resolve = {{ \"intranet.example.com\" = \"{}\" }}\n[dns]\nenabled = false\n",
            edge.addr()
        )
    };
    let (_d, config) = config_probing(&sim.url(), KEY, &extra(""));
    let (report, code) = check(&config, &[]).await;
    let found = edge_findings(&report);
    assert_eq!(
        found,
        [(
            "edge_certificate_invalid".to_string(),
            "intranet.example.com".to_string(),
            "critical".to_string()
        )]
        .into(),
        "{report:#}"
    );
    assert_eq!(code, 2);
    let message = finding(&report, "edge_certificate_invalid", "intranet.example.com")["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("unknown issuer"), "{message}");
    // Its root in edge.trust_anchors: verified.
    let root = files.path().join("root.pem");
    let ca_pem: String = pair
        .chain_pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .nth(1)
        .unwrap()
        .to_string();
    std::fs::write(&root, ca_pem).unwrap();
    let (_d2, config) = config_probing(
        &sim.url(),
        KEY,
        &extra(&format!("trust_anchors = \"{}\"\n", root.display())),
    );
    let (report, code) = check(&config, &[]).await;
    assert!(edge_findings(&report).is_empty(), "{report:#}");
    assert_eq!(code, 0);
    edge.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_write_ca_writes_the_root_every_seeded_certificate_chains_to() {
    use ngrok_cert_watchdog::model::trust::Trust;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let port = free_port();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo-seed.toml");
    let simulator = Killed(
        std::process::Command::new(bin())
            .args([
                "simulate",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--api-key",
                KEY,
            ])
            .args([
                "--seed",
                seed.to_str().unwrap(),
                "--write-ca",
                ca.to_str().unwrap(),
            ])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/tls_certificates");
    let mut listed = None;
    for _ in 0..100 {
        if let Ok(r) = http()
            .get(&url)
            .bearer_auth(KEY)
            .header("Ngrok-Version", "2")
            .send()
            .await
        {
            listed = Some(r.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(simulator);
    let listed = listed.expect("the simulator answers");
    let anchors: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(anchors.len(), 1);
    let trust = Trust::with_anchors(&anchors).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut verified = 0;
    for c in listed["tls_certificates"].as_array().unwrap() {
        let pem = c["certificate_pem"].as_str().unwrap();
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(Result::unwrap)
            .collect();
        // Valid ones verify; expired ones fail for their dates only, never for their issuer.
        match trust.verify(&chain, None, now) {
            Ok(()) => verified += 1,
            Err(e) => assert_eq!(
                e,
                ngrok_cert_watchdog::model::trust::ChainProblem::Expired,
                "{}",
                c["subject_common_name"]
            ),
        }
    }
    assert!(verified >= 5, "{verified}");
    assert!(Trust::public()
        .verify(
            &CertificateDer::pem_slice_iter(
                listed["tls_certificates"][0]["certificate_pem"]
                    .as_str()
                    .unwrap()
                    .as_bytes()
            )
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
            None,
            now
        )
        .is_err());
}
