//! Crash safety of a rotation: the `run` binary moving 30 domains onto renewed files, under
//! latency faults on every PATCH (and on the DELETE of the replaced certificate), killed with
//! SIGKILL at random points of the rotation and restarted on the same state directory. After the
//! last restart it must converge: one upload of the new leaf, every domain on it, no safety
//! violation recorded by the simulator (a certificate deleted while attached, a domain left
//! without one), and the replaced certificate deleted (that last check is a separate test,
//! the replaced certificate recorded in state.dir until deleted).
//!
//! 5 kills here; `CRASH_KILLS=20` (benches/crash.sh) for more. `CRASH_SEED=N` replays the kill
//! points and the latencies: the seed is printed at the start.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ngrok_cert_watchdog::model::certs::generate::{Generated, Signer};
use ngrok_cert_watchdog::sim::{Fault, FaultKind, Sim};
use rand::{Rng, SeedableRng};

const DOMAIN_COUNT: usize = 30;

fn names() -> Vec<String> {
    (0..DOMAIN_COUNT)
        .map(|i| format!("d{i:02}.example.com"))
        .collect()
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The account: every domain on `old`, loaded from files.
async fn account(old: &Generated, dir: &Path) -> Sim {
    std::fs::write(dir.join("old-chain.pem"), &old.chain_pem).unwrap();
    std::fs::write(dir.join("old-key.pem"), &old.key_pem).unwrap();
    let mut seed = format!(
        "dev_domain = false\n[[certificate]]\nname = \"old\"\ncertificate_file = \"{}\"\nprivate_key_file = \"{}\"\n",
        dir.join("old-chain.pem").display(),
        dir.join("old-key.pem").display()
    );
    for name in names() {
        seed.push_str(&format!(
            "[[domain]]\ndomain = \"{name}\"\ncertificate = \"old\"\n"
        ));
    }
    seeded(&seed).await
}

/// A config: the watch of all 30 domains, a 1 s schedule, a raised budget.
fn config(sim: &Sim, certbot: &Certbot) -> (tempfile::TempDir, PathBuf) {
    let domains: Vec<String> = names().iter().map(|n| format!("\"{n}\"")).collect();
    let extra = format!(
        "[schedule]\nsync = \"* * * * * *\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
         [[watch]]\nname = \"app\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\n\
         domains = [{}]\ndelete_replaced = true\ndebounce = \"200ms\"\n",
        certbot.live("fullchain.pem").display(),
        certbot.live("privkey.pem").display(),
        domains.join(", ")
    );
    config_for(&sim.url(), KEY, &extra)
}

/// Latency faults on the next PATCHes, 50 to 400 ms each, in a seeded order; and on the next
/// DELETE of a certificate, so that a kill can land between the last PATCH and the delete.
fn inject_latency(sim: &Sim, rng: &mut impl Rng) {
    sim.inject(Fault {
        path: "/tls_certificates".into(),
        method: Some("DELETE".into()),
        count: 1,
        kind: FaultKind::Latency {
            millis: rng.random_range(100..400),
        },
    });
    for _ in 0..4 * DOMAIN_COUNT {
        sim.inject(Fault {
            path: "/reserved_domains".into(),
            method: Some("PATCH".into()),
            count: 1,
            kind: FaultKind::Latency {
                millis: rng.random_range(50..400),
            },
        });
    }
}

fn spawn(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(bin())
        .args(["--config", config.to_str().unwrap(), "run"])
        .env_remove("NGROK_API_KEY")
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn the daemon")
}

/// Where the rotation stands: (domains on `old`, domains on another certificate, `old` exists).
fn progress(sim: &Sim, old_id: &str) -> (usize, usize, bool) {
    sim.with_account(|a| {
        let on_old = a
            .domains
            .values()
            .filter(|d| d.certificate.as_ref().is_some_and(|c| c.id == old_id))
            .count();
        (
            on_old,
            a.domains.len() - on_old,
            a.certificates.contains_key(old_id),
        )
    })
}

/// The ids of the certificates in the account whose chain is `chain_pem`.
fn copies_of(sim: &Sim, chain_pem: &str) -> Vec<String> {
    sim.with_account(|a| {
        a.certificates
            .values()
            .filter(|c| c.certificate_pem.trim() == chain_pem.trim())
            .map(|c| c.id.clone())
            .collect()
    })
}

/// A random moment of what is left of the rotation, spread over the `kills_left`: once `target`
/// domains have moved (30: the last PATCH is done, the delete may not be), then `extra` more.
fn kill_moment(sim: &Sim, old_id: &str, kills_left: u64, rng: &mut impl Rng) -> (usize, Duration) {
    let moved = progress(sim, old_id).1;
    let step = ((DOMAIN_COUNT - moved) * 2).div_ceil(kills_left.max(1) as usize);
    let target = (moved + rng.random_range(0..=step.max(1))).min(DOMAIN_COUNT);
    (target, Duration::from_millis(rng.random_range(0..50)))
}

/// Polls the account every 5 ms until `target` domains are off the old certificate.
async fn wait_for_moved(sim: &Sim, old_id: &str, target: usize, within: Duration) {
    let start = Instant::now();
    while progress(sim, old_id).1 < target && start.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Uploads the simulator accepted (POST /tls_certificates answered 201).
fn accepted_uploads(sim: &Sim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/tls_certificates" && r.status == 201)
        .count()
}

/// Waits until every domain is on one copy of `new` and `old` is gone, or `within` passes.
async fn converge(sim: &Sim, new: &Generated, old_id: &str, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        let copies = copies_of(sim, &new.chain_pem);
        let all_on_new = copies.len() == 1
            && sim.with_account(|a| {
                a.domains
                    .values()
                    .all(|d| d.certificate.as_ref().is_some_and(|c| c.id == copies[0]))
            });
        if all_on_new && !progress(sim, old_id).2 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The end state after the last restart.
struct Outcome {
    sim: Sim,
    new: Generated,
    old_id: String,
    old_deleted: bool,
    /// The seed and the daemon's last log lines, for failure messages.
    context: String,
}

/// Kills the daemon `CRASH_KILLS` times (default 5) at random points of the rotation, restarts
/// it once more and lets it converge (20 s at most).
async fn crash_and_restart() -> Outcome {
    let kills = env_number("CRASH_KILLS").unwrap_or(5);
    let seed = env_number("CRASH_SEED").unwrap_or_else(rand::random);
    println!("crash test: {kills} kills, seed {seed} (replay with CRASH_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let signer = Signer::new("R11").unwrap();
    let names = names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let old = generate(&signer, &names, -80, 10);
    let new = generate(&signer, &names, 0, 90);
    let mut certbot = Certbot::new(&old);
    let sim = account(&old, certbot.dir.path()).await;
    let old_id = copies_of(&sim, &old.chain_pem).pop().unwrap();
    certbot.renew(&new);
    let (dir, config) = config(&sim, &certbot);
    let log = dir.path().join("daemon.log");
    inject_latency(&sim, &mut rng);

    for kill in 1..=kills {
        let mut child = spawn(&config, &log);
        let (target, extra) = kill_moment(&sim, &old_id, kills - kill + 1, &mut rng);
        wait_for_moved(&sim, &old_id, target, Duration::from_secs(20)).await;
        tokio::time::sleep(extra).await;
        child.kill().unwrap();
        child.wait().unwrap();
        let (on_old, moved, old_exists) = progress(&sim, &old_id);
        println!(
            "kill {kill}/{kills} at {target} moved + {extra:?}: {on_old} domains on the old certificate, \
             {moved} moved, the old certificate {}, {} upload(s)",
            if old_exists { "present" } else { "deleted" },
            accepted_uploads(&sim)
        );
        inject_latency(&sim, &mut rng);
    }

    let mut child = spawn(&config, &log);
    let converged = converge(&sim, &new, &old_id, Duration::from_secs(20)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (on_old, moved, old_exists) = progress(&sim, &old_id);
    println!(
        "after the last restart: {on_old} on the old certificate, {moved} moved, the old certificate {}",
        if old_exists { "present" } else { "deleted" }
    );
    let daemon_log = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: Vec<&str> = daemon_log.lines().rev().take(40).collect();
    let context = format!(
        "seed {seed}; daemon log (last 40 lines, newest first):\n{}",
        tail.join("\n")
    );

    Outcome {
        sim,
        new,
        old_id,
        old_deleted: converged && !old_exists,
        context,
    }
}

/// One upload of the new leaf, every domain on it, no violation, nothing refused.
fn assert_converged_safely(o: &Outcome) {
    let (sim, context) = (&o.sim, &o.context);
    let copies = copies_of(sim, &o.new.chain_pem);
    assert_eq!(
        copies.len(),
        1,
        "copies of the new leaf: {copies:?}; {context}"
    );
    assert_eq!(accepted_uploads(sim), 1, "uploads accepted; {context}");
    let on_new = sim.with_account(|a| {
        a.domains
            .values()
            .filter(|d| d.certificate.as_ref().is_some_and(|c| c.id == copies[0]))
            .count()
    });
    assert_eq!(on_new, DOMAIN_COUNT, "domains on the new leaf; {context}");
    assert!(
        sim.violations().is_empty(),
        "{:?}; {context}",
        sim.violations()
    );
    assert_nothing_refused(sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_of_a_30_domain_rotation_converges_safely() {
    let outcome = crash_and_restart().await;
    assert_converged_safely(&outcome);
}

/// The same, and the replaced certificate deleted: a kill after the last PATCH (here, during the
/// DELETE's latency) leaves a next pass with nothing to move; the record in `state.dir` of what
/// the rotation replaced makes it delete the old certificate all the same.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_of_a_30_domain_rotation_deletes_the_replaced_certificate() {
    let o = crash_and_restart().await;
    assert_converged_safely(&o);
    assert!(
        o.old_deleted,
        "the replaced certificate {} was not deleted; {}",
        o.old_id, o.context
    );
}
