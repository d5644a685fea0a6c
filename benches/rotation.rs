//! Rotation latency: from the moment certbot-style renewed files are complete (the second link
//! re-pointed) to every domain on the new certificate, for 1 and 50 domains, with the default
//! request budget and debounce, against the simulator; the requests it took against the lower
//! bound 1 + N; and a curl deploy hook (benches/curl-deploy-hook.sh) doing the same move side by
//! side. `cargo bench --bench rotation`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ngrok_cert_watchdog::config::{self, Environment};
use ngrok_cert_watchdog::daemon::{self, Notifier, RunContext, Supervision, Ticks};
use ngrok_cert_watchdog::model::certs::generate::{Generated, Signer, Spec};
use ngrok_cert_watchdog::sim::{seed, Sim};
use time::OffsetDateTime;

const KEY: &str = "bench-key";

struct Quiet;
impl Notifier for Quiet {
    fn ready(&self) {}
    fn status(&self, _: &str) {}
    fn keepalive(&self) {}
    fn stopping(&self) {}
}

fn generate(signer: &Signer, names: &[String], from_days: i64, to_days: i64) -> Generated {
    let now = OffsetDateTime::now_utc();
    signer
        .generate(&Spec {
            common_name: &names[0],
            dns_names: names,
            not_before: now + time::Duration::days(from_days),
            not_after: now + time::Duration::days(to_days),
        })
        .unwrap()
}

/// certbot's re-pointing of live/ links: unlink + symlink, certificate first.
fn renew(dir: &Path, n: u32, g: &Generated) {
    let archive = dir.join("archive");
    std::fs::write(archive.join(format!("fullchain{n}.pem")), &g.chain_pem).unwrap();
    std::fs::write(archive.join(format!("privkey{n}.pem")), &g.key_pem).unwrap();
    for (link, target) in [
        ("fullchain.pem", format!("fullchain{n}.pem")),
        ("privkey.pem", format!("privkey{n}.pem")),
    ] {
        let path = dir.join("live").join(link);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(Path::new("../archive").join(target), &path).unwrap();
    }
}

async fn account(dir: &Path, old: &Generated, names: &[String]) -> Sim {
    std::fs::write(dir.join("old-chain.pem"), &old.chain_pem).unwrap();
    std::fs::write(dir.join("old-key.pem"), &old.key_pem).unwrap();
    // No dev domain: every domain of the account is one the rotation moves.
    let mut text = format!(
        "dev_domain = false\n[[certificate]]\nname = \"old\"\ncertificate_file = \"{}\"\nprivate_key_file = \"{}\"\n",
        dir.join("old-chain.pem").display(),
        dir.join("old-key.pem").display()
    );
    for n in names {
        text.push_str(&format!(
            "[[domain]]\ndomain = \"{n}\"\ncertificate = \"old\"\n"
        ));
    }
    let sim = Sim::local(KEY).await.unwrap();
    sim.seed(&seed::parse(&text).unwrap(), "bench").unwrap();
    sim
}

fn all_on_one_new_certificate(sim: &Sim, old_id: &str) -> bool {
    sim.with_account(|a| {
        let ids: Vec<Option<&str>> = a
            .domains
            .values()
            .map(|d| d.certificate.as_ref().map(|c| c.id.as_str()))
            .collect();
        ids.iter().all(|id| id.is_some() && *id != Some(old_id))
            && ids.windows(2).all(|w| w[0] == w[1])
    })
}

async fn watchdog_run(domains: usize) -> (Duration, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["archive", "live", "state"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let names: Vec<String> = (0..domains).map(|i| format!("d{i}.example.com")).collect();
    let signer = Signer::new("R11").unwrap();
    let old = generate(&signer, &names, -80, 10);
    renew(dir.path(), 1, &old);
    let sim = account(dir.path(), &old, &names).await;
    let old_id = sim.with_account(|a| a.certificates.keys().next().unwrap().clone());
    let domain_list = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    // Defaults everywhere but the addresses: budget 60/min, debounce 2 s.
    let text = format!(
        "[api]\nurl = \"{}\"\n[schedule]\nsync = \"0 0 0 1 1 *\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[state]\ndir = \"{}\"\n[dns]\nenabled = false\n[[watch]]\nname = \"bench\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\ndomains = [{domain_list}]\ndelete_replaced = true\n",
        sim.url(),
        dir.path().join("state").display(),
        dir.path().join("live/fullchain.pem").display(),
        dir.path().join("live/privkey.pem").display(),
    );
    let env = Environment {
        ngrok_api_key: Some(KEY.into()),
        credentials_directory: None,
        state_directory: None,
    };
    let settings = config::parse(&text, Path::new("bench.toml"), &env).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let (shared, running) = daemon::start(
        RunContext {
            config_path: None,
            env,
            settings,
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            ticks: Ticks::Manual(rx),
            reload: tokio::sync::mpsc::channel(1).1,
            notifier: Arc::new(Quiet),
            supervision: Supervision::from_environment(),
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let mut outcomes = shared.subscribe();
    outcomes.changed().await.unwrap(); // the start-up sync
                                       // Let the budget refill to full, as between two syncs.
    tokio::time::sleep(Duration::from_secs(6)).await;
    sim.clear_requests();
    renew(dir.path(), 2, &generate(&signer, &names, 0, 90));
    let complete = Instant::now();
    while !all_on_one_new_certificate(&sim, &old_id) {
        assert!(complete.elapsed() < Duration::from_secs(120), "no rotation");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = complete.elapsed();
    // Let the pass finish (confirm, delete, re-read) and count everything it sent.
    outcomes.changed().await.unwrap();
    let log = sim.requests();
    let requests_total = log.len();
    // Up to the last PATCH: what moving the domains took.
    let requests_to_move = log
        .iter()
        .rposition(|r| r.method == "PATCH")
        .map_or(0, |i| i + 1);
    stop.cancel();
    running.wait_and_drain(stop).await;
    (elapsed, requests_to_move, requests_total)
}

async fn curl_run(domains: usize) -> (Duration, usize) {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..domains).map(|i| format!("d{i}.example.com")).collect();
    let signer = Signer::new("R11").unwrap();
    let old = generate(&signer, &names, -80, 10);
    let sim = account(dir.path(), &old, &names).await;
    let old_id = sim.with_account(|a| a.certificates.keys().next().unwrap().clone());
    let new = generate(&signer, &names, 0, 90);
    std::fs::write(dir.path().join("fullchain.pem"), &new.chain_pem).unwrap();
    std::fs::write(dir.path().join("privkey.pem"), &new.key_pem).unwrap();
    let ids: Vec<String> = sim.with_account(|a| a.domains.keys().cloned().collect());
    sim.clear_requests();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/curl-deploy-hook.sh");
    let url = sim.url();
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(script)
            .arg(url)
            .arg(KEY)
            .arg(dir.path().join("fullchain.pem"))
            .arg(dir.path().join("privkey.pem"))
            .args(&ids)
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert!(status.success(), "the curl deploy hook failed");
    assert!(all_on_one_new_certificate(&sim, &old_id));
    (elapsed, sim.requests().len())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("| domains | watchdog: files complete → all moved | requests until moved (lower bound 1 + N) | requests for the whole pass | curl deploy hook: time | curl requests |");
    println!("|---|---|---|---|---|---|");
    for n in [1usize, 50] {
        let (t, moved, total) = watchdog_run(n).await;
        let (ct, creq) = curl_run(n).await;
        println!(
            "| {n} | {:.2} s (debounce 2 s + {:.2} s) | {moved} ({}) | {total} | {:.2} s | {creq} |",
            t.as_secs_f64(),
            t.as_secs_f64() - 2.0,
            1 + n,
            ct.as_secs_f64()
        );
    }
}
