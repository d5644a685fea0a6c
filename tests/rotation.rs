//! Rotation scenarios on the simulator: a certbot-style renewal, restarts and crashes that never
//! upload twice, PATCH failures and 429s that converge, deletion only once every domain moved,
//! and hostile files that upload nothing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use ngrok_cert_watchdog::actions::lock::WatchLock;
use ngrok_cert_watchdog::actions::rotation::PassOptions;
use ngrok_cert_watchdog::config::WatchSettings;
use ngrok_cert_watchdog::core::rotation::{self, Target};
use ngrok_cert_watchdog::model::certs::generate::{Generated, Signer};
use ngrok_cert_watchdog::model::trust::Trust;
use ngrok_cert_watchdog::model::FindingKind;
use ngrok_cert_watchdog::sim::{Fault, FaultKind, Sim};
use ngrok_cert_watchdog::sources::inventory;
use ngrok_cert_watchdog::sources::ngrok::Client;
use time::OffsetDateTime;

/// An account whose two watched domains (and one unwatched) are on `old`.
async fn account(old: &Generated, dir: &Path, third_on_old: bool) -> Sim {
    std::fs::write(dir.join("old-chain.pem"), &old.chain_pem).unwrap();
    std::fs::write(dir.join("old-key.pem"), &old.key_pem).unwrap();
    let mut seed = format!(
        "[[certificate]]\nname = \"old\"\ncertificate_file = \"{}\"\nprivate_key_file = \"{}\"\n[[domain]]\ndomain = \"app.example.com\"\ncertificate = \"old\"\n[[domain]]\ndomain = \"api.example.com\"\ncertificate = \"old\"\n",
        dir.join("old-chain.pem").display(),
        dir.join("old-key.pem").display()
    );
    if third_on_old {
        seed.push_str("[[domain]]\ndomain = \"other.example.com\"\ncertificate = \"old\"\n");
    }
    seeded(&seed).await
}

/// [`account`] on a certificate ending in 10 days, whose pair on disk certbot has just renewed;
/// the old certificate's id.
async fn renewed_account() -> (Certbot, Sim, String) {
    let signer = Signer::new("R11").unwrap();
    let old = generate(&signer, &DOMAINS, -80, 10);
    let mut certbot = Certbot::new(&old);
    let sim = account(&old, certbot.dir.path(), false).await;
    let old_id = on(&sim)[0].clone().unwrap();
    certbot.renew(&generate(&signer, &DOMAINS, 0, 90));
    (certbot, sim, old_id)
}

fn options() -> PassOptions {
    PassOptions {
        dry_run: false,
        backoff: Duration::from_millis(50),
    }
}

/// One pass on a fresh inventory; the simulator must refuse nothing it sent (faults aside).
async fn pass(sim: &Sim, watch: &WatchSettings) -> rotation::WatchReport {
    pass_remembering(sim, watch, None).await
}

async fn pass_remembering(
    sim: &Sim,
    watch: &WatchSettings,
    held: Option<&rotation::FinalRefusal>,
) -> rotation::WatchReport {
    let client = client(sim);
    let inv = inventory::sync(&client, &Trust::public(), OffsetDateTime::now_utc())
        .await
        .unwrap();
    let report = ngrok_cert_watchdog::actions::rotation::pass_remembering(
        &client,
        watch,
        &inv,
        options(),
        OffsetDateTime::now_utc(),
        ngrok_cert_watchdog::actions::rotation::Remembered {
            refusal: held,
            state_dir: None,
            ..Default::default()
        },
    )
    .await;
    if held.is_none() {
        assert_nothing_refused(sim);
    }
    report
}

/// The certificate id each watched domain is on.
fn on(sim: &Sim) -> Vec<Option<String>> {
    sim.with_account(|a| {
        DOMAINS
            .iter()
            .map(|n| {
                a.domains
                    .values()
                    .find(|d| d.domain == *n)
                    .and_then(|d| d.certificate.as_ref().map(|c| c.id.clone()))
            })
            .collect()
    })
}

fn uploads(sim: &Sim) -> usize {
    count(sim, "POST", "/tls_certificates")
}

#[tokio::test(flavor = "multi_thread")]
async fn certbot_renewal_moves_every_domain_uploads_once_and_restarts_change_nothing() {
    let signer = Signer::new("R11").unwrap();
    let old = generate(&signer, &DOMAINS, -80, 10);
    let mut certbot = Certbot::new(&old);
    let sim = account(&old, certbot.dir.path(), false).await;
    let old_id = on(&sim)[0].clone().unwrap();
    let watch = certbot.watch();

    // The files are what the account has: nothing to do.
    let first = pass(&sim, &watch).await;
    assert!(first.plan().unwrap().is_noop(), "{:?}", first.plan());
    assert_eq!(uploads(&sim), 0);

    certbot.renew(&generate(&signer, &DOMAINS, 0, 90));
    let report = pass(&sim, &watch).await;
    let outcome = report.outcome().cloned().unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    assert!(outcome.uploaded);
    let new_id = outcome.target.clone().unwrap();
    assert_eq!(on(&sim), vec![Some(new_id.clone()), Some(new_id.clone())]);
    assert_eq!(outcome.deleted, vec![old_id.clone()]);
    assert!(sim.with_account(|a| !a.certificates.contains_key(&old_id)));
    assert_eq!(uploads(&sim), 1);
    assert_eq!(report.result().as_str(), Some("success"));
    // The upload carries the fingerprint and the marker.
    let metadata = sim.with_account(|a| a.certificates[&new_id].metadata.clone());
    let parsed = rotation::UploadMetadata::parse(Some(&metadata)).unwrap();
    assert_eq!(parsed.watch, "app");

    // A restart: the next pass (a fresh inventory) uploads nothing and moves nothing.
    for _ in 0..2 {
        let again = pass(&sim, &watch).await;
        assert!(again.plan().unwrap().is_noop());
        assert!(again.outcome().is_none());
    }
    assert_eq!(uploads(&sim), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_upload_and_patch_converges_without_a_second_upload() {
    let (certbot, sim, old_id) = renewed_account().await;
    // Every PATCH fails: the upload happened, no domain moved — as if the process died there.
    sim.inject(Fault {
        path: "/reserved_domains".into(),
        method: Some("PATCH".into()),
        count: 1000,
        kind: FaultKind::Status {
            status: 500,
            retry_after: None,
        },
    });
    let report = pass(&sim, &certbot.watch()).await;
    assert_eq!(report.result().as_str(), Some("failure"));
    assert!(report
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::RotationFailed));
    assert_eq!(uploads(&sim), 1);
    assert_eq!(
        on(&sim),
        vec![Some(old_id.clone()), Some(old_id.clone())],
        "the old certificate is kept"
    );
    assert!(sim.with_account(|a| a.certificates.contains_key(&old_id)));

    // "Restart": faults gone, a new pass from what the account shows.
    http()
        .delete(format!("{}/_sim/faults", sim.url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let report = pass(&sim, &certbot.watch()).await;
    let plan = report.plan().unwrap();
    assert!(matches!(plan.target, Target::Existing(_)), "{plan:?}");
    assert!(report.outcome().cloned().unwrap().failures.is_empty());
    assert_eq!(uploads(&sim), 1, "no second upload");
    let new_ids = on(&sim);
    assert!(new_ids[0].is_some() && new_ids[0] != Some(old_id.clone()) && new_ids[0] == new_ids[1]);
    assert!(sim.with_account(|a| !a.certificates.contains_key(&old_id)));
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_failures_and_429s_converge_in_one_pass() {
    let (certbot, sim, _) = renewed_account().await;
    sim.inject(Fault {
        path: "/reserved_domains".into(),
        method: Some("PATCH".into()),
        count: 1,
        kind: FaultKind::Status {
            status: 429,
            retry_after: Some(1),
        },
    });
    sim.inject(Fault {
        path: "/reserved_domains".into(),
        method: Some("PATCH".into()),
        count: 2,
        kind: FaultKind::Status {
            status: 503,
            retry_after: None,
        },
    });
    sim.inject(Fault {
        path: "/tls_certificates".into(),
        method: Some("POST".into()),
        count: 1,
        kind: FaultKind::Status {
            status: 429,
            retry_after: Some(1),
        },
    });
    let report = pass(&sim, &certbot.watch()).await;
    let outcome = report.outcome().cloned().unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    assert_eq!(outcome.moved.len(), 2);
    assert_eq!(
        count(&sim, "POST", "/tls_certificates"),
        2,
        "one 429, then the upload"
    );
    assert_eq!(
        sim.with_account(|a| a.certificates.len()),
        1,
        "one upload, the old one deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_replaced_certificate_goes_only_when_nothing_uses_it() {
    let signer = Signer::new("R11").unwrap();
    let old = generate(
        &signer,
        &["app.example.com", "api.example.com", "other.example.com"],
        -80,
        10,
    );
    let mut certbot = Certbot::new(&old);
    // other.example.com is on the old certificate too, but not in the watch.
    let sim = account(&old, certbot.dir.path(), true).await;
    let old_id = on(&sim)[0].clone().unwrap();
    certbot.renew(&generate(&signer, &DOMAINS, 0, 90));
    // api.example.com cannot be moved for now.
    let api_id = sim.with_account(|a| {
        a.domains
            .values()
            .find(|d| d.domain == "api.example.com")
            .unwrap()
            .id
            .clone()
    });
    sim.inject(Fault {
        path: format!("/reserved_domains/{api_id}"),
        method: Some("PATCH".into()),
        count: 1000,
        kind: FaultKind::Status {
            status: 500,
            retry_after: None,
        },
    });
    let report = pass(&sim, &certbot.watch()).await;
    let outcome = report.outcome().cloned().unwrap();
    assert_eq!(outcome.moved, vec!["app.example.com"]);
    assert!(outcome.deleted.is_empty());
    assert!(
        count(&sim, "DELETE", &format!("/tls_certificates/{old_id}")) == 0,
        "never while a watched domain is on it"
    );
    // api moves on the next pass; the old certificate still serves other.example.com: kept.
    http()
        .delete(format!("{}/_sim/faults", sim.url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let report = pass(&sim, &certbot.watch()).await;
    let outcome = report.outcome().cloned().unwrap();
    assert_eq!(outcome.moved, vec!["api.example.com"]);
    assert!(outcome.deleted.is_empty(), "{:?}", outcome.deleted);
    assert!(sim.with_account(|a| a.certificates.contains_key(&old_id)));
    assert_eq!(
        count(&sim, "DELETE", &format!("/tls_certificates/{old_id}")),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_hosts_converge_to_one_copy() {
    let signer = Signer::new("R11").unwrap();
    let old = generate(&signer, &DOMAINS, -80, 10);
    let mut certbot = Certbot::new(&old);
    let sim = account(&old, certbot.dir.path(), false).await;
    let new = generate(&signer, &DOMAINS, 0, 90);
    certbot.renew(&new);
    // Another host uploaded the same pair twice (both marked as the watchdog's) and attached none.
    let client = client(&sim);
    for _ in 0..2 {
        client
            .create_tls_certificate(&ngrok_cert_watchdog::sources::ngrok::TlsCertificateCreate {
                description: None,
                metadata: Some(
                    r#"{"uploaded_by":"ngrok-cert-watchdog","watch":"app","sha256":"x"}"#.into(),
                ),
                certificate_pem: new.chain_pem.clone(),
                private_key_pem: new.key_pem.clone(),
            })
            .await
            .unwrap();
    }
    sim.clear_requests();
    let report = pass(&sim, &certbot.watch()).await;
    assert!(report.outcome().cloned().unwrap().failures.is_empty());
    assert_eq!(uploads(&sim), 0, "reused, not uploaded again");
    // The other copy is fresh: the other host may still be moving domains onto it. Kept.
    assert_eq!(
        sim.with_account(|a| a.certificates.len()),
        2,
        "both copies, the old one gone"
    );
    // Later, the unattached copy is deleted.
    sim.with_account(|a| {
        for c in a.certificates.values_mut() {
            c.created_at -= time::Duration::hours(1);
        }
    });
    let report = pass(&sim, &certbot.watch()).await;
    assert_eq!(report.outcome().cloned().unwrap().deleted.len(), 1);
    assert_eq!(
        sim.with_account(|a| a.certificates.len()),
        1,
        "one copy left"
    );
    let ids = on(&sim);
    assert!(ids[0].is_some() && ids[0] == ids[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_files_upload_nothing() {
    let signer = Signer::new("R11").unwrap();
    let old = generate(&signer, &DOMAINS, -80, 10);
    let good = generate(&signer, &DOMAINS, 0, 90);
    let other = generate(&signer, &DOMAINS, 0, 90);
    let certbot = Certbot::new(&old);
    let sim = account(&old, certbot.dir.path(), false).await;
    let leaf_der = rustls::pki_types::pem::PemObject::from_pem_slice(good.leaf_pem.as_bytes())
        .map(|d: rustls::pki_types::CertificateDer<'static>| d.to_vec())
        .unwrap();
    let reversed: String = {
        let parts: Vec<&str> = good
            .chain_pem
            .split_inclusive("-----END CERTIFICATE-----\n")
            .collect();
        parts.iter().rev().cloned().collect()
    };
    let random: Vec<u8> = (0..2048).map(|_| rand::random::<u8>()).collect();
    let expired = generate(&signer, &DOMAINS, -100, -1);
    let future = generate(&signer, &DOMAINS, 2, 90);
    let wrong = generate(&signer, &["www.example.org"], 0, 90);
    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let cases: Vec<(&str, Vec<u8>, Vec<u8>, &str)> = vec![
        (
            "key mismatch",
            good.chain_pem.clone().into(),
            other.key_pem.clone().into(),
            "does not match",
        ),
        (
            "expired",
            expired.chain_pem.clone().into(),
            expired.key_pem.clone().into(),
            "expired",
        ),
        (
            "not yet valid",
            future.chain_pem.clone().into(),
            future.key_pem.clone().into(),
            "not valid before",
        ),
        (
            "wrong domain",
            wrong.chain_pem.clone().into(),
            wrong.key_pem.clone().into(),
            "does not cover app.example.com, api.example.com",
        ),
        (
            "chain in the wrong order",
            reversed.into(),
            good.key_pem.clone().into(),
            "not in order",
        ),
        (
            "leaf only",
            good.leaf_pem.clone().into(),
            good.key_pem.clone().into(),
            "full chain",
        ),
        (
            "garbage",
            b"this is not a certificate".to_vec(),
            good.key_pem.clone().into(),
            "no `-----BEGIN CERTIFICATE-----`",
        ),
        ("empty", Vec::new(), good.key_pem.clone().into(), "empty"),
        (
            "truncated",
            good.chain_pem.as_bytes()[..good.chain_pem.len() / 2].to_vec(),
            good.key_pem.clone().into(),
            "PEM",
        ),
        (
            "DER instead of PEM",
            leaf_der,
            good.key_pem.clone().into(),
            "DER",
        ),
        (
            "encrypted key",
            good.chain_pem.clone().into(),
            encrypted.into(),
            "encrypted",
        ),
        (
            "key and certificate swapped",
            good.key_pem.clone().into(),
            good.chain_pem.clone().into(),
            "private key",
        ),
        ("random bytes", random.clone(), random, ""),
    ];
    let watch = WatchSettings {
        certificate: certbot.dir.path().join("hostile-chain.pem"),
        private_key: certbot.dir.path().join("hostile-key.pem"),
        ..certbot.watch()
    };
    for (name, chain, key, expect) in cases {
        std::fs::write(&watch.certificate, &chain).unwrap();
        std::fs::write(&watch.private_key, &key).unwrap();
        let report = pass(&sim, &watch).await;
        // A certificate issued for later is a wait, not an error: uploaded once valid.
        let early = name == "not yet valid";
        assert_eq!(report.up(), early, "{name}: watch_up");
        assert_eq!(report.waiting().is_some(), early, "{name}: waiting");
        let finding = report
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::WatchInvalid)
            .unwrap_or_else(|| panic!("{name}: no watch_invalid finding: {:?}", report.findings));
        assert_eq!(
            finding.severity == ngrok_cert_watchdog::model::Severity::Info,
            early,
            "{name}: only an early certificate is mere information"
        );
        assert!(
            finding.message.contains(expect),
            "{name}: {}",
            finding.message
        );
        assert!(
            !finding.message.contains("PRIVATE KEY-----"),
            "{name}: key material in the message"
        );
        assert_eq!(uploads(&sim), 0, "{name}: something was uploaded");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_mismatch_waits_for_the_settle_timeout() {
    let signer = Signer::new("R11").unwrap();
    let old = generate(&signer, &DOMAINS, -80, 10);
    let mut certbot = Certbot::new(&old);
    let sim = account(&old, certbot.dir.path(), false).await;
    let new = generate(&signer, &DOMAINS, 0, 90);
    // Half-way through certbot's swap: the new certificate beside the old key.
    certbot.generation += 1;
    let archive = certbot.dir.path().join("archive/app");
    std::fs::write(archive.join("fullchain9.pem"), &new.chain_pem).unwrap();
    let link = certbot.live("fullchain.pem");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("../../archive/app/fullchain9.pem", &link).unwrap();
    let watch = WatchSettings {
        settle_timeout: Duration::from_secs(60),
        ..certbot.watch()
    };
    let report = pass(&sim, &watch).await;
    assert!(
        report.findings.is_empty(),
        "reported before it settled: {:?}",
        report.findings
    );
    assert!(report.up());
    assert_eq!(uploads(&sim), 0);
    let settled = WatchSettings {
        settle_timeout: Duration::ZERO,
        ..watch
    };
    let report = pass(&sim, &settled).await;
    assert!(report
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::WatchInvalid && f.message.contains("does not match")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_missing_and_managed_domains_are_findings() {
    let signer = Signer::new("R11").unwrap();
    let current = generate(&signer, &DOMAINS, -1, 90);
    let certbot = Certbot::new(&generate(&signer, &DOMAINS, -30, 60));
    let sim = account(&current, certbot.dir.path(), false).await;
    let report = pass(&sim, &certbot.watch()).await;
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.message.contains("roll back")),
        "{:?}",
        report.findings
    );
    assert_eq!(uploads(&sim), 0);

    let fresh = Certbot::new(&generate(
        &signer,
        &[
            "app.example.com",
            "api.example.com",
            "gone.example.com",
            "m.example.com",
        ],
        0,
        90,
    ));
    let sim = seeded("[[domain]]\ndomain = \"app.example.com\"\n[[domain]]\ndomain = \"m.example.com\"\nmanaged = true\n").await;
    let watch = WatchSettings {
        domains: vec![
            "app.example.com".into(),
            "gone.example.com".into(),
            "m.example.com".into(),
        ],
        ..fresh.watch()
    };
    let report = pass(&sim, &watch).await;
    let messages: Vec<&str> = report.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("gone.example.com is not a reserved domain")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("m.example.com uses ngrok-managed")),
        "{messages:?}"
    );
    // app.example.com (no certificate before) is rotated all the same.
    assert_eq!(
        report.outcome().cloned().unwrap().moved,
        vec!["app.example.com"]
    );
    let managed_cert = sim.with_account(|a| {
        a.domains
            .values()
            .find(|d| d.domain == "m.example.com")
            .unwrap()
            .certificate
            .clone()
    });
    assert!(managed_cert.is_none(), "the managed domain was left alone");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_command_dry_run_changes_nothing_then_rotates() {
    let (certbot, sim, _) = renewed_account().await;
    let extra = format!(
        "[[watch]]\nname = \"app\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\ndomains = [\"app.example.com\", \"api.example.com\"]\ndelete_replaced = true\n",
        certbot.live("fullchain.pem").display(),
        certbot.live("privkey.pem").display()
    );
    let (_dir, config) = config_for(&sim.url(), KEY, &extra);
    let config = config.to_str().unwrap().to_string();
    let c = config.clone();
    let out = tokio::task::spawn_blocking(move || {
        run(
            &["--config", &c, "rotate", "--dry-run"],
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("plan: upload")
            && stdout.contains("move app.example.com")
            && stdout.contains("delete cert_"),
        "{stdout}"
    );
    assert_eq!(uploads(&sim), 0);
    assert_eq!(count(&sim, "PATCH", "/reserved_domains"), 0);
    // Its own root ("R11") is trusted nowhere, and no edge.trust_anchors are set: uploaded
    // anyway, with the reason in the log.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("would upload") && stderr.contains("anyway: certificate_chain_incomplete"),
        "{stderr}"
    );
    // Once anchors are set (ones that do not include R11), the same pair is refused.
    let (_anchored_dir, anchored) = config_trusting(&sim, KEY, &extra);
    let out = tokio::task::spawn_blocking(move || {
        run(
            &[
                "--config",
                anchored.to_str().unwrap(),
                "rotate",
                "--watch",
                "app",
            ],
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("edge.trust_anchors is set"), "{stdout}");
    assert_eq!(uploads(&sim), 0);
    let c = config.clone();
    let out = tokio::task::spawn_blocking(move || {
        run(
            &["--config", &c, "rotate", "--watch", "app"],
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("done"), "{stdout}");
    assert_eq!(uploads(&sim), 1);
    let c = config.clone();
    let out = tokio::task::spawn_blocking(move || {
        run(
            &["--config", &c, "rotate", "--watch", "nope"],
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn the_lock_keeps_two_rotations_apart() {
    let dir = tempfile::tempdir().unwrap();
    let held = WatchLock::try_acquire(dir.path(), "app").unwrap();
    assert!(held.is_some());
    assert!(WatchLock::try_acquire(dir.path(), "app").unwrap().is_none());
    assert!(WatchLock::try_acquire(dir.path(), "other")
        .unwrap()
        .is_some());
    drop(held);
    assert!(WatchLock::try_acquire(dir.path(), "app").unwrap().is_some());
}

/// A sim with `app.example.com` on an uploaded certificate and `m.example.com` on ngrok-managed
/// certificates (a policy and an ngrok-issued certificate).
async fn managed_account() -> Sim {
    seeded(
        "[[certificate]]\nname = \"up\"\ndns_names = [\"app.example.com\"]\n\
         [[certificate]]\nname = \"le\"\ndns_names = [\"m.example.com\"]\nmanaged = true\n\
         [[domain]]\ndomain = \"app.example.com\"\ncertificate = \"up\"\n\
         [[domain]]\ndomain = \"m.example.com\"\ncertificate = \"le\"\nmanaged = true\n",
    )
    .await
}

fn domain_id(sim: &Sim, name: &str) -> String {
    sim.with_account(|a| {
        a.domains
            .values()
            .find(|d| d.domain == name)
            .map(|d| d.id.clone())
            .unwrap()
    })
}

/// The certificate and whether a policy is set, of the domain `name`.
fn state_of(sim: &Sim, name: &str) -> (Option<String>, bool) {
    sim.with_account(|a| {
        let d = a.domains.values().find(|d| d.domain == name).unwrap();
        (
            d.certificate.as_ref().map(|c| c.id.clone()),
            d.certificate_management_policy.is_some(),
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn taking_over_a_managed_domain_is_two_requests_back_to_back() {
    let signer = Signer::new("R11").unwrap();
    let names = ["app.example.com", "m.example.com"];
    let certbot = Certbot::new(&generate(&signer, &names, 0, 90));
    let watch = WatchSettings {
        domains: names.iter().map(|n| n.to_string()).collect(),
        take_over_managed: true,
        ..certbot.watch()
    };
    let sim = managed_account().await;
    let m = domain_id(&sim, "m.example.com");
    sim.clear_requests();
    let report = pass(&sim, &watch).await;
    let outcome = report.outcome().cloned().unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    let target = outcome.target.clone().unwrap();
    assert_eq!(
        state_of(&sim, "m.example.com"),
        (Some(target.clone()), false)
    );
    assert_eq!(state_of(&sim, "app.example.com"), (Some(target), false));
    // The policy's removal and the attach are adjacent: nothing else between them.
    let log: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let detach = format!("DELETE /reserved_domains/{m}/certificate_management_policy");
    let at = log
        .iter()
        .position(|l| *l == detach)
        .expect("the policy removed");
    assert_eq!(
        log[at + 1],
        format!("PATCH /reserved_domains/{m}"),
        "{log:?}"
    );
    assert_eq!(log.iter().filter(|l| **l == detach).count(), 1);
    // Neither 436 (detaching a managed domain's certificate) nor 1966 (deleting a managed
    // certificate) was provoked: nothing was refused at all.
    assert_nothing_refused(&sim);
    // Converged: the next pass does nothing.
    let again = pass(&sim, &watch).await;
    assert!(again.plan().unwrap().is_noop(), "{:?}", again.plan());
}

/// A renewed pair for `m.example.com` (on ngrok-managed certificates in [`managed_account`]),
/// watched with `take_over_managed`; the domain's id.
async fn take_over_m() -> (Certbot, WatchSettings, Sim, String) {
    let signer = Signer::new("R11").unwrap();
    let names = ["m.example.com"];
    let certbot = Certbot::new(&generate(&signer, &names, 0, 90));
    let watch = WatchSettings {
        domains: vec!["m.example.com".into()],
        take_over_managed: true,
        ..certbot.watch()
    };
    let sim = managed_account().await;
    let m = domain_id(&sim, "m.example.com");
    (certbot, watch, sim, m)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_take_over_refused_for_good_puts_the_policy_back() {
    // The attach after the policy's removal is refused with a 4xx (final, UPSTREAM-NOTES): the
    // domain must not stay without certificate and policy; ngrok provisions it again.
    let (_certbot, watch, sim, m) = take_over_m().await;
    let policy = |sim: &Sim| {
        sim.with_account(|a| {
            a.domains[&m]
                .certificate_management_policy
                .clone()
                .map(|p| (p.authority, p.private_key_type))
        })
    };
    let policy_before = policy(&sim);
    assert!(policy_before.is_some());
    sim.inject(Fault {
        path: format!("/reserved_domains/{m}"),
        method: Some("PATCH".into()),
        count: 1,
        kind: FaultKind::Status {
            status: 400,
            retry_after: None,
        },
    });
    let report = pass(&sim, &watch).await;
    let outcome = report.outcome().cloned().unwrap();
    assert!(outcome.refusal.is_some(), "final: {outcome:?}");
    assert!(
        outcome
            .failures
            .iter()
            .any(|f| f.contains("m.example.com") && f.contains("policy was put back")),
        "{:?}",
        outcome.failures
    );
    // No certificate yet, but the policy again: ngrok is provisioning one.
    assert_eq!(state_of(&sim, "m.example.com"), (None, true));
    assert_eq!(policy(&sim), policy_before, "the same policy as before");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());

    // ngrok issues the domain a new certificate (a new id): the refused take-over is the same
    // attempt, not sent again — removing the policy again would undo the issuance, in a loop.
    let refusal = report.refusal().cloned().expect("remembered");
    // (Any other id stands for it: the simulator does not complete provisioning.)
    let issued = sim.with_account(|a| {
        let other = a.certificates.keys().next().cloned().unwrap();
        let d = a.domains.get_mut(&m).unwrap();
        d.certificate = Some(ngrok_cert_watchdog::sim::account::Ref {
            id: other.clone(),
            uri: String::new(),
        });
        Some(other)
    });
    sim.clear_requests();
    let again = pass_remembering(&sim, &watch, Some(&refusal)).await;
    assert_eq!(again.refusal(), Some(&refusal));
    // The listing only.
    assert!(
        sim.requests().iter().all(|r| r.method == "GET"),
        "{:?}",
        sim.requests()
    );
    assert_eq!(state_of(&sim, "m.example.com"), (issued, true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_the_two_steps_of_a_take_over_attaches_at_once() {
    let (_certbot, watch, sim, m) = take_over_m().await;
    // The first step went through before the process died: no policy, no certificate.
    client(&sim)
        .detach_certificate_management_policy(&m)
        .await
        .unwrap();
    assert_eq!(state_of(&sim, "m.example.com"), (None, false));
    sim.clear_requests();
    let report = pass(&sim, &watch).await;
    let outcome = report.outcome().cloned().unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    assert_eq!(
        state_of(&sim, "m.example.com"),
        (outcome.target.clone(), false)
    );
    // No second removal: an upload and the attach.
    assert_eq!(
        count(
            &sim,
            "DELETE",
            &format!("/reserved_domains/{m}/certificate_management_policy")
        ),
        0
    );
    assert_eq!(count(&sim, "PATCH", &format!("/reserved_domains/{m}")), 1);
    assert_eq!(uploads(&sim), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_final_refusal_is_not_sent_again_until_the_attempt_changes() {
    let signer = Signer::new("R11").unwrap();
    let old = generate(&signer, &DOMAINS, -80, 10);
    let mut certbot = Certbot::new(&old);
    let sim = account(&old, certbot.dir.path(), false).await;
    let watch = certbot.watch();
    certbot.renew(&generate(&signer, &DOMAINS, -1, 90));
    sim.inject(Fault {
        path: "/reserved_domains/".into(),
        method: Some("PATCH".into()),
        count: 1_000,
        kind: FaultKind::Status {
            status: 400,
            retry_after: None,
        },
    });
    let patches = |sim: &Sim| {
        sim.requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
    };
    let first = pass(&sim, &watch).await;
    let refusal = first.refusal().cloned().expect("a final refusal");
    // Final: one PATCH per domain, no retries within the pass.
    assert_eq!(patches(&sim), 2);
    assert_eq!(first.result().as_str(), Some("failure"));

    // The same attempt again: reported, nothing sent.
    let again = pass_remembering(&sim, &watch, Some(&refusal)).await;
    assert_eq!(patches(&sim), 2);
    assert_eq!(again.refusal(), Some(&refusal));
    assert!(again
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::RotationFailed && f.message.contains("not sent again")));

    // New files: a new attempt, sent.
    sim.clear_faults();
    certbot.renew(&generate(&signer, &DOMAINS, 0, 90));
    let renewed = pass_remembering(&sim, &watch, Some(&refusal)).await;
    assert!(renewed.refusal().is_none());
    assert_eq!(renewed.result().as_str(), Some("success"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_certificate_whose_delete_failed_is_deleted_by_a_later_pass() {
    let signer = Signer::new("R11").unwrap();
    let old = generate(&signer, &DOMAINS, -80, 10);
    let mut certbot = Certbot::new(&old);
    let sim = account(&old, certbot.dir.path(), false).await;
    let old_id = on(&sim)[0].clone().unwrap();
    let state = tempfile::tempdir().unwrap();
    let watch = certbot.watch();
    certbot.renew(&generate(&signer, &DOMAINS, 0, 90));
    // Every domain moves, then the DELETE fails for good this pass (as if the process died).
    sim.inject(Fault {
        path: format!("/tls_certificates/{old_id}"),
        method: Some("DELETE".into()),
        count: 100,
        kind: FaultKind::Status {
            status: 503,
            retry_after: None,
        },
    });
    let remembered = ngrok_cert_watchdog::actions::rotation::Remembered {
        refusal: None,
        state_dir: Some(state.path()),
        ..Default::default()
    };
    let client = client(&sim);
    let watch = &watch;
    let run = |client: Client| async move {
        let inv = inventory::sync(&client, &Trust::public(), OffsetDateTime::now_utc())
            .await
            .unwrap();
        ngrok_cert_watchdog::actions::rotation::pass_remembering(
            &client,
            watch,
            &inv,
            options(),
            OffsetDateTime::now_utc(),
            remembered,
        )
        .await
    };
    let first = run(client.clone()).await;
    let new_id = first.outcome().unwrap().target.clone().unwrap();
    assert_eq!(on(&sim), vec![Some(new_id.clone()), Some(new_id.clone())]);
    let failed = first
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::RotationFailed)
        .expect("rotation_failed");
    // The message says where the domains are: on the new certificate, not the old one.
    assert!(
        failed
            .message
            .contains(&format!("every domain is on {new_id}")),
        "{}",
        failed.message
    );
    assert!(sim.with_account(|a| a.certificates.contains_key(&old_id)));

    // The next pass has nothing to move, and deletes what the first one replaced.
    sim.clear_faults();
    let second = run(client.clone()).await;
    assert_eq!(second.outcome().unwrap().deleted, vec![old_id.clone()]);
    assert!(sim.with_account(|a| !a.certificates.contains_key(&old_id)));
    // Forgotten once gone: a third pass does nothing.
    let third = run(client).await;
    assert!(third.plan().unwrap().is_noop(), "{:?}", third.plan());
    assert_eq!(uploads(&sim), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_pass_of_three_domains_takes_n_plus_5_requests() {
    let signer = Signer::new("R11").unwrap();
    let names = ["app.example.com", "api.example.com", "other.example.com"];
    let old = generate(&signer, &names, -80, 10);
    let mut certbot = Certbot::new(&old);
    let sim = account(&old, certbot.dir.path(), true).await;
    let old_id = on(&sim)[0].clone().unwrap();
    let watch = WatchSettings {
        domains: names.iter().map(|n| n.to_string()).collect(),
        ..certbot.watch()
    };
    certbot.renew(&generate(&signer, &names, 0, 90));
    sim.clear_requests();
    let report = pass(&sim, &watch).await;
    assert_eq!(report.result().as_str(), Some("success"));
    let log: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| {
            let path = if r.path.starts_with("/reserved_domains/") {
                "/reserved_domains/ID"
            } else {
                r.path.as_str()
            };
            format!("{} {path}", r.method)
        })
        .collect();
    // The three listings (concurrent: in any order), then the writes in order.
    let mut listings = log[..3].to_vec();
    listings.sort();
    assert_eq!(
        listings,
        [
            "GET /credentials",
            "GET /reserved_domains",
            "GET /tls_certificates"
        ]
    );
    assert_eq!(
        log[3..],
        [
            "POST /tls_certificates".to_string(),
            "PATCH /reserved_domains/ID".to_string(),
            "PATCH /reserved_domains/ID".to_string(),
            "PATCH /reserved_domains/ID".to_string(),
            format!("DELETE /tls_certificates/{old_id}"),
        ]
    );
    assert_eq!(log.len(), names.len() + 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_deleted_between_upload_and_patch_is_uploaded_again_next_pass() {
    let (certbot, sim, old_id) = renewed_account().await;
    // The first PATCH waits, and meanwhile someone deletes the certificate just uploaded.
    sim.inject(Fault {
        path: "/reserved_domains".into(),
        method: Some("PATCH".into()),
        count: 1,
        kind: FaultKind::Latency { millis: 1000 },
    });
    let watch = certbot.watch();
    let delete_the_upload = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let uploaded =
                sim.with_account(|a| a.certificates.keys().find(|id| **id != old_id).cloned());
            if let Some(id) = uploaded {
                sim.with_account(|a| a.delete_certificate(&id)).unwrap();
                return id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let (report, deleted) = tokio::join!(pass(&sim, &watch), delete_the_upload);
    let deleted = deleted.expect("the pass uploads");
    let outcome = report.outcome().cloned().unwrap();
    assert!(outcome.moved.is_empty(), "{outcome:?}");
    assert!(outcome.refusal.is_none(), "not final: {outcome:?}");
    assert!(
        outcome
            .failures
            .iter()
            .any(|f| f.contains(&format!("certificate {deleted} no longer exists"))),
        "{:?}",
        outcome.failures
    );
    // The domains kept the old certificate; the next pass uploads again and moves them.
    assert!(on(&sim)
        .iter()
        .all(|id| id.as_deref() == Some(old_id.as_str())));
    let report = pass(&sim, &watch).await;
    let outcome = report.outcome().cloned().unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    assert_eq!(outcome.moved.len(), 2);
    assert_eq!(count(&sim, "POST", "/tls_certificates"), 2);
    assert_eq!(sim.with_account(|a| a.certificates.len()), 1);
}
