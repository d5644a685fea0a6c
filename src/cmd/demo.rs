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
use crate::sim::dns::{Responder, Zone};
use crate::sim::edge::EdgeServer;
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

    add_wildcard(&sim)?;
    let dns = start_dns(&sim).await?;

    let dir = tempfile_dir().map_err(|e| DemoError::Setup(format!("temporary directory: {e}")))?;
    write_watched_pair(&sim, dir.path()).map_err(DemoError::Setup)?;
    let edge = start_edge(&sim, dir.path()).await?;

    let listener = bind_metrics(metrics_listen).await?;
    let metrics_addr = listener
        .local_addr()
        .map_err(|e| DemoError::Setup(e.to_string()))?;
    let settings = demo_settings(&sim, edge.addr(), metrics_addr, dns.addr(), dir.path())?;
    let env = demo_env();
    print_banner(&sim, dir.path(), edge.addr(), dns.addr());

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

    let printer = print_outcomes(Arc::clone(&shared), metrics_addr);
    tokio::select! {
        _ = shutdown => {}
        _ = printer => {}
    }
    stop.cancel();
    running.wait_and_drain(stop).await;
    edge.stop().await;
    sim.stop().await;
    drop(dns);
    println!("demo stopped.");
    Ok(())
}

/// What runs where, printed before the daemon starts.
fn print_banner(sim: &Sim, dir: &Path, edge: SocketAddr, dns: SocketAddr) {
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
        dir.display()
    );
    println!(
        "  TLS edge              {}  (on loopback: serves each domain's certificate by SNI; {STALE_DOMAIN} still serves its replaced certificate, {WRONG_DOMAIN} one for another name)",
        edge
    );
    println!(
        "  DNS server            {}  (the domains' records: {BAD_A} has an A record instead of its CNAME, {WILDCARD} lacks its _acme-challenge CNAME)",
        dns
    );
    println!("  schedule              a sync every 15 seconds, the edge probed and DNS checked every minute");
    println!();
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

/// The daemon's settings: the simulator's account, a fast schedule, the watched pair in `dir`,
/// every domain of the account resolved to the loopback edge, the simulator's CA trusted.
fn demo_settings(
    sim: &Sim,
    edge: SocketAddr,
    metrics_addr: SocketAddr,
    dns_addr: SocketAddr,
    dir: &Path,
) -> Result<config::Settings, DemoError> {
    let resolve: Vec<String> = sim.with_account(|a| {
        a.domains
            .values()
            .filter(|d| !d.domain.starts_with('*'))
            .map(|d| format!("\"{}\" = \"{edge}\"", d.domain))
            .collect()
    });
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

[edge]
interval = "1m"
timeout = "5s"
propagation_grace = "1m"
trust_anchors = "{ca}"
resolve = {{ {resolve} }}

[dns]
nameservers = ["{dns_addr}"]
timeout = "2s"

[[watch]]
name = "app"
certificate = "{cert}"
private_key = "{key}"
domains = ["app.example.com"]
delete_replaced = true
"#,
        url = sim.url(),
        ca = dir.join(CA_FILE).display(),
        resolve = resolve.join(", "),
        state = dir.join("state").display(),
        cert = dir.join("app/fullchain.pem").display(),
        key = dir.join("app/privkey.pem").display(),
    );
    config::parse(&config_text, Path::new("(demo)"), &demo_env())
        .map_err(|e| DemoError::Setup(e.to_string()))
}

/// The demo's DNS mistakes: a domain with an A record where its CNAME should be (the one whose
/// provisioning failed with DNS_ERROR), and a wildcard without its ACME challenge CNAME.
const BAD_A: &str = "blog.example.com";
const WILDCARD: &str = "*.preview.example.com";
/// Where every ngrok target and the flattened apex point: loopback, so nothing that follows
/// these records leaves the machine.
const NGROK_ADDRESS: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// A managed wildcard domain besides the seed's (the seed stays what tests count on).
fn add_wildcard(sim: &Sim) -> Result<(), DemoError> {
    let fields = crate::sim::account::DomainFields {
        domain: Some(WILDCARD.to_string()),
        ..Default::default()
    };
    sim.with_account(|a| a.create_domain(fields, time::OffsetDateTime::now_utc()))
        .map(|_| ())
        .map_err(|e| DemoError::Setup(format!("{WILDCARD}: {e:?}")))
}

/// A DNS server on loopback with the account's records as the user published them: right for
/// every custom domain but the two mistakes above; the apex flattened to its target's address;
/// CAA allowing Let's Encrypt.
async fn start_dns(sim: &Sim) -> Result<Responder, DemoError> {
    let domains: Vec<(String, String, Option<String>)> = sim.with_account(|a| {
        a.domains
            .values()
            .filter_map(|d| {
                let target = d.cname_target.clone()?;
                Some((
                    d.domain.clone(),
                    target,
                    d.acme_challenge_cname_target.clone(),
                ))
            })
            .collect()
    });
    let mut zone = Zone::default()
        .with_apex("example.com")
        .with_apex("ngrok-cname.com");
    zone.caa("example.com", false, "issue", "letsencrypt.org");
    for (name, target, acme) in &domains {
        zone.address(target, NGROK_ADDRESS);
        if let Some(acme) = acme {
            zone.address(acme, NGROK_ADDRESS);
        }
        match name.as_str() {
            "example.com" => zone.address(name, NGROK_ADDRESS),
            BAD_A => zone.address(name, "203.0.113.7".parse().expect("an address")),
            _ => zone.cname(name, target),
        };
    }
    Responder::start("127.0.0.1:0".parse().expect("an address"), zone)
        .await
        .map_err(|e| DemoError::Bind {
            addr: "127.0.0.1:0 (DNS)".into(),
            reason: io_reason(&e),
        })
}

/// Prints the findings of the first sync that knows what the edge serves, and where to look,
/// then failed syncs, until the daemon stops.
async fn print_outcomes(shared: Arc<daemon::Shared>, metrics_addr: SocketAddr) {
    let mut outcomes = shared.subscribe();
    let mut printed = false;
    while outcomes.changed().await.is_ok() {
        let Some(outcome) = outcomes.borrow_and_update().clone() else {
            continue;
        };
        // The edge is probed after the first sync, and one more sync follows at once.
        match &outcome.result {
            Ok((inventory, findings)) if !printed && outcome.edge_included => {
                printed = true;
                println!(
                    "First sync with the edge probed, at {}: {}",
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
                println!(
                    "  curl -s http://{metrics_addr}/metrics | grep ngrok_edge_certificate_matches"
                );
                println!(
                    "  curl -s http://{metrics_addr}/metrics | grep ngrok_reserved_domain_dns_ok"
                );
                println!("Press Ctrl-C to stop.");
            }
            Ok(_) => {}
            Err(e) => println!("sync failed: {e}"),
        }
    }
}

/// The demo domain whose edge still serves the certificate it replaced.
const STALE_DOMAIN: &str = "www.example.com";
/// The demo domain whose edge serves a certificate for another name.
const WRONG_DOMAIN: &str = "api.example.com";
/// The simulator's CA, for `edge.trust_anchors`.
const CA_FILE: &str = "simulator-ca.pem";

/// The loopback edge: the account's certificates by SNI, a fallback for domains without one,
/// and the two broken domains of the demo.
async fn start_edge(sim: &Sim, dir: &Path) -> Result<EdgeServer, DemoError> {
    let setup = |e: String| DemoError::Setup(format!("the demo edge: {e}"));
    let ca = sim.ca_pem().map_err(|e| setup(e.to_string()))?;
    std::fs::write(dir.join(CA_FILE), ca).map_err(|e| setup(io_reason(&e)))?;
    let edge = EdgeServer::local().await.map_err(|e| DemoError::Bind {
        addr: "127.0.0.1:0".into(),
        reason: e.to_string(),
    })?;
    edge.follow(sim.edge_lookup());
    let names = vec!["*.ngrok.dev".to_string()];
    let now = time::OffsetDateTime::now_utc();
    let fallback = Signer::new("ngrok edge fallback (demo)")
        .and_then(|s| {
            s.generate(&Spec {
                common_name: &names[0],
                dns_names: &names,
                not_before: now - time::Duration::days(1),
                not_after: now + time::Duration::days(90),
            })
        })
        .map_err(|e| setup(e.to_string()))?;
    edge.set_fallback(&fallback.chain_pem, &fallback.key_pem)
        .map_err(|e| setup(e.to_string()))?;
    let (stale, wrong) = sim.with_account(|a| {
        let replaced = a
            .certificates
            .values()
            .find(|c| c.description == "replaced by certbot www")
            .and_then(|c| a.pair_of(&c.id));
        (replaced, a.served_for(STALE_DOMAIN))
    });
    let (Some(stale), Some(wrong)) = (stale, wrong) else {
        return Err(setup("the demo seed lacks its www certificates".into()));
    };
    edge.serve(STALE_DOMAIN, &stale.chain_pem, &stale.key_pem)
        .map_err(|e| setup(e.to_string()))?;
    edge.serve(WRONG_DOMAIN, &wrong.chain_pem, &wrong.key_pem)
        .map_err(|e| setup(e.to_string()))?;
    Ok(edge)
}

fn tempfile_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("ngrok-cert-watchdog-demo-")
        .tempdir()
}

/// A certificate for app.example.com on disk, renewed relative to the one in the account, from
/// the simulator's CA (so that the edge's chain verifies once it serves it).
fn write_watched_pair(sim: &Sim, dir: &Path) -> Result<(), String> {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).map_err(|e| format!("{}: {}", app.display(), io_reason(&e)))?;
    let names = vec!["app.example.com".to_string()];
    let now = time::OffsetDateTime::now_utc();
    let generated = sim
        .with_account(|a| a.seed_ca())
        .and_then(|root| root.intermediate("Watchdog Demo CA", false))
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
