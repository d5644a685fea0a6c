//! `demo`: the simulator and the daemon in one process on loopback, seeded with a realistic
//! account and a watched certificate file in a temporary directory. Reads no config file.
//!
//! What a newcomer runs first: it prints what it does, the findings of the first sync, and the
//! URLs to look at, then runs until Ctrl-C.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Environment};
use crate::daemon::{self, RunContext, Supervision, Ticks};
use crate::model::certs::generate::{Signer, Spec};
use crate::model::text::format_time;
use crate::model::text::io_reason;
use crate::outputs::report::{findings_text, Summary};
use crate::sim::{seed, RateLimit, Sim, SimOptions};

use super::Exit;

/// The seeded account (also usable with `simulate --seed config/demo-seed.toml`).
pub const DEMO_SEED: &str = include_str!("../../config/demo-seed.toml");
const DEMO_KEY: &str = "demo-api-key";

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    #[error("{0}")]
    Setup(String),
}

/// `demo [--metrics-listen ADDR]`: runs until SIGINT/SIGTERM; 0 then, 71 when an address cannot be
/// bound, 70 when the demo cannot be set up.
pub async fn demo(metrics_listen: Option<SocketAddr>) -> Exit {
    match run_demo(metrics_listen, super::signals::shutdown_signal()).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: demo: {e}");
            match e {
                DemoError::Bind { .. } => Exit::OsError,
                DemoError::Setup(_) => Exit::Software,
            }
        }
    }
}

/// Runs the demo until `shutdown` resolves.
pub async fn run_demo(
    metrics_listen: Option<SocketAddr>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DemoError> {
    let sim_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| DemoError::Bind {
            addr: "127.0.0.1:0".into(),
            reason: e.to_string(),
        })?;
    let seed =
        seed::parse(DEMO_SEED).map_err(|e| DemoError::Setup(format!("embedded demo seed: {e}")))?;
    let sim = Sim::start_seeded(
        sim_listener,
        SecretString::from(DEMO_KEY.to_string()),
        SimOptions {
            rate_limit: Some(RateLimit::default()),
            ..SimOptions::default()
        },
        &seed,
        "demo seed",
    )
    .map_err(|e| DemoError::Setup(e.to_string()))?;

    let dir = tempfile_dir().map_err(|e| DemoError::Setup(format!("temporary directory: {e}")))?;
    write_watched_pair(dir.path()).map_err(DemoError::Setup)?;

    let listener = bind_metrics(metrics_listen).await?;
    let metrics_addr = listener
        .local_addr()
        .map_err(|e| DemoError::Setup(e.to_string()))?;
    let settings = demo_settings(&sim.url(), metrics_addr, dir.path())?;
    let env = demo_env();
    println!("ngrok-cert-watchdog demo — everything runs in this process, on loopback, with no ngrok account.");
    println!();
    let (certificates, domains, credentials) =
        sim.with_account(|a| (a.certificates.len(), a.domains.len(), a.credentials.len()));
    println!(
        "  simulated ngrok API   {}  (a seeded account: {certificates} certificates, {domains} domains, {credentials} credentials)",
        sim.url()
    );
    println!(
        "  watched files         {}/app/{{fullchain,privkey}}.pem",
        dir.path().display()
    );
    println!("  schedule              a sync every 15 seconds");
    println!();

    let stop = CancellationToken::new();
    let (_reload_tx, reload) = tokio::sync::mpsc::channel(1);
    let (shared, running) = daemon::start(
        RunContext {
            config_path: None,
            env,
            settings,
            listener,
            ticks: Ticks::Cron,
            reload,
            notifier: Arc::new(daemon::SystemdNotifier),
            supervision: Supervision::from_environment(),
        },
        stop.clone(),
    )
    .await
    .map_err(|e| DemoError::Setup(e.to_string()))?;

    let printer = print_outcomes(shared.subscribe(), metrics_addr);
    tokio::select! {
        _ = shutdown => {}
        _ = printer => {}
    }
    stop.cancel();
    running.wait_and_drain(stop).await;
    sim.stop().await;
    println!("demo stopped.");
    Ok(())
}

/// Our own metrics address: the requested one, else the default, else any free port.
async fn bind_metrics(metrics_listen: Option<SocketAddr>) -> Result<TcpListener, DemoError> {
    let listener = match metrics_listen {
        Some(addr) => TcpListener::bind(addr).await.map_err(|e| DemoError::Bind {
            addr: addr.to_string(),
            reason: io_reason(&e),
        })?,
        None => match TcpListener::bind(config::DEFAULT_METRICS_LISTEN).await {
            Ok(l) => l,
            Err(_) => TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| DemoError::Bind {
                    addr: "127.0.0.1:0".into(),
                    reason: e.to_string(),
                })?,
        },
    };
    Ok(listener)
}

fn demo_env() -> Environment {
    Environment {
        ngrok_api_key: Some(DEMO_KEY.to_string()),
        credentials_directory: None,
        state_directory: None,
    }
}

/// The daemon's settings: the simulator's account, a fast schedule, the watched pair in `dir`.
fn demo_settings(
    sim_url: &str,
    metrics_addr: SocketAddr,
    dir: &Path,
) -> Result<config::Settings, DemoError> {
    let config_text = format!(
        r#"[api]
url = "{url}"
requests_per_minute = 60

[schedule]
sync = "*/15 * * * * *"
stale_after = "1m"

[metrics]
listen = "{metrics_addr}"

[state]
dir = "{state}"

[[watch]]
name = "app"
certificate = "{cert}"
private_key = "{key}"
domains = ["app.example.com"]
delete_replaced = true
"#,
        url = sim_url,
        state = dir.join("state").display(),
        cert = dir.join("app/fullchain.pem").display(),
        key = dir.join("app/privkey.pem").display(),
    );
    config::parse(&config_text, Path::new("(demo)"), &demo_env())
        .map_err(|e| DemoError::Setup(e.to_string()))
}

/// Prints the first sync's findings and where to look, then failed syncs, until the daemon stops.
async fn print_outcomes(
    mut outcomes: tokio::sync::watch::Receiver<Option<Arc<daemon::SyncOutcome>>>,
    metrics_addr: SocketAddr,
) {
    let mut printed = false;
    while outcomes.changed().await.is_ok() {
        let Some(outcome) = outcomes.borrow_and_update().clone() else {
            continue;
        };
        match &outcome.result {
            Ok((inventory, findings)) if !printed => {
                printed = true;
                println!(
                    "First sync at {}: {}",
                    format_time(outcome.finished_at),
                    Summary::of(inventory, findings).line()
                );
                println!();
                print!("{}", findings_text(findings));
                println!();
                println!("Look at:");
                println!("  http://{metrics_addr}/          the status page (findings, expiry timeline, domains, watches)");
                println!("  http://{metrics_addr}/api/v1/status   the same as JSON (check --format json, plus stale and last_success)");
                println!("  http://{metrics_addr}/metrics   Prometheus metrics (the account's series and the watchdog's own)");
                println!("  http://{metrics_addr}/readyz    200 while the last successful sync is recent");
                println!("  http://{metrics_addr}/healthz   200 while the process runs");
                println!();
                println!("Also try, in another terminal:");
                println!("  curl -s http://{metrics_addr}/metrics | grep ngrok_reserved_domain_provisioning_failed");
                println!("Press Ctrl-C to stop.");
            }
            Ok(_) => {}
            Err(e) => println!("sync failed: {e}"),
        }
    }
}

fn tempfile_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("ngrok-cert-watchdog-demo-")
        .tempdir()
}

/// A certificate for app.example.com on disk, renewed relative to the one in the account.
fn write_watched_pair(dir: &Path) -> Result<(), String> {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).map_err(|e| format!("{}: {}", app.display(), io_reason(&e)))?;
    let names = vec!["app.example.com".to_string()];
    let now = time::OffsetDateTime::now_utc();
    let generated = Signer::new("Watchdog Demo CA")
        .and_then(|s| {
            s.generate(&Spec {
                common_name: &names[0],
                dns_names: &names,
                not_before: now - time::Duration::hours(1),
                not_after: now + time::Duration::days(90),
            })
        })
        .map_err(|e| e.to_string())?;
    for (name, text) in [
        ("fullchain.pem", &generated.chain_pem),
        ("privkey.pem", &generated.key_pem),
    ] {
        let path = app.join(name);
        std::fs::write(&path, text)
            .map_err(|e| format!("{}: {}", path.display(), io_reason(&e)))?;
    }
    Ok(())
}
