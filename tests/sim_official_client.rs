//! The official Python client (PyPI `ngrok-api`, installed into `.venv` by `.ci/run`) drives the
//! simulator: if our simulator and the real API's published client disagree, this fails.

mod common;

use std::path::Path;
use std::process::Command;

use ngrok_cert_watchdog::model::certs::generate::{Signer, Spec};

#[tokio::test(flavor = "multi_thread")]
async fn the_official_python_client_works_against_the_simulator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run .ci/run, or `python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt`",
        python.display()
    );
    let sim = common::sim().await;
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::new("Python Test CA").unwrap();
    for n in 0..3 {
        let names = vec![format!("py{n}.example.com")];
        let g = signer
            .generate(&Spec {
                common_name: &names[0],
                dns_names: &names,
                not_before: time::OffsetDateTime::now_utc() - time::Duration::days(1),
                not_after: time::OffsetDateTime::now_utc() + time::Duration::days(90),
            })
            .unwrap();
        std::fs::write(dir.path().join(format!("chain-{n}.pem")), g.chain_pem).unwrap();
        std::fs::write(dir.path().join(format!("key-{n}.pem")), g.key_pem).unwrap();
    }
    let url = sim.url();
    let script = root.join("tests/python/official_client.py");
    let cert_dir = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(url)
            .arg(common::KEY)
            .arg(cert_dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("official client: ok"), "{stdout}");
    // It really went through the simulator, paging included.
    assert!(common::count(&sim, "GET", "/tls_certificates") >= 2);
    assert!(common::count(&sim, "POST", "/reserved_domains") == 3);
}
