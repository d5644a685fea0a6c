//! The Grafana dashboard `config/grafana-dashboard.json`: its JSON (schema version, the
//! datasource and instance variables, a query on every panel), and every panel's query run
//! through a real Prometheus (Debian's `prometheus`, on a free loopback port) that scrapes a
//! daemon on the demo account with a watch and a webhook, so that every kind of series exists.

mod common;

use common::{bin, config_for, free_port, generate, http, Killed, KEY};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ngrok_cert_watchdog::model::certs::generate::Signer;
use serde_json::Value;

/// Panels allowed to return no data: none (the daemon probes a loopback edge and asks a
/// loopback DNS server, so the edge and DNS series exist too). The test fails while a listed
/// panel returns data, to say so.
const NO_DATA_YET: &[&str] = &[];

fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana-dashboard.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every panel that is not a row, with its title and its queries.
fn panels(d: &Value) -> Vec<(String, Vec<String>)> {
    d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
        .map(|p| {
            let exprs = p["targets"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|t| t["expr"].as_str())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            (p["title"].as_str().unwrap_or_default().to_string(), exprs)
        })
        .collect()
}

#[test]
fn the_dashboard_json_has_its_variables_and_a_query_on_every_panel() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_u64().unwrap() >= 38,
        "Grafana 10 or later"
    );
    let vars = d["templating"]["list"].as_array().unwrap();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).expect(name);
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    assert_eq!(var("instance")["type"], "query");
    assert_eq!(var("instance")["datasource"]["uid"], "${datasource}");
    let panels = panels(&d);
    assert!(panels.len() >= 10);
    for p in d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
    {
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
    }
    for (title, exprs) in &panels {
        assert!(!exprs.is_empty(), "{title} has no query");
        for e in exprs {
            assert!(e.contains("instance=~\"$instance\""), "{title}: {e}");
        }
    }
    // The issue's list: each subject has a panel.
    for needle in [
        "time to expiry",
        "certificate source",
        "provisioning",
        "Edge certificate mismatches",
        "DNS problems",
        "sync",
        "API requests by code",
        "Webhook deliveries",
    ] {
        assert!(
            panels.iter().any(|(t, _)| t.contains(needle)),
            "no panel on {needle}"
        );
    }
    for title in NO_DATA_YET {
        assert!(panels.iter().any(|(t, _)| t == title), "{title}");
    }
}

fn query_url(prometheus: &str, query: &str) -> url::Url {
    url::Url::parse_with_params(&format!("{prometheus}/api/v1/query"), [("query", query)]).unwrap()
}

/// The result of an instant query: the number of samples it returned.
async fn samples(prometheus: &str, query: &str) -> Result<usize, String> {
    let r = http()
        .get(query_url(prometheus, query))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = r.json().await.map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(format!("{query}: {body}"));
    }
    Ok(match body["data"]["resultType"].as_str() {
        Some("scalar") | Some("string") => 1,
        _ => body["data"]["result"].as_array().map_or(0, Vec::len),
    })
}

/// The first sample's value of an instant query.
async fn value(prometheus: &str, query: &str) -> f64 {
    let Ok(r) = http().get(query_url(prometheus, query)).send().await else {
        return 0.0; // not listening yet
    };
    let body: Value = r.json().await.unwrap_or_default();
    body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A daemon and everything it talks to, kept for the test's life.
struct DemoDaemon {
    port: u16,
    _process: Killed,
    _sim: ngrok_cert_watchdog::sim::Sim,
    _edge: ngrok_cert_watchdog::sim::edge::EdgeServer,
    _dns: ngrok_cert_watchdog::sim::dns::Responder,
    _config: tempfile::TempDir,
}

/// A daemon on the demo account with a `[[watch]]` (it rotates `app.example.com` on its first
/// sync), a webhook to a local receiver, and a loopback edge and DNS server to probe.
async fn daemon_on_the_demo_account(dir: &Path) -> DemoDaemon {
    let sim = ngrok_cert_watchdog::sim::Sim::local(KEY).await.unwrap();
    let seed =
        ngrok_cert_watchdog::sim::seed::parse(include_str!("../config/demo-seed.toml")).unwrap();
    sim.seed(&seed, "demo").unwrap();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", receiver.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::OK });
        axum::serve(receiver, app).await.unwrap()
    });
    let pair = generate(
        &Signer::new("Dashboard Test CA").unwrap(),
        &["app.example.com"],
        -1,
        90,
    );
    std::fs::write(dir.join("fullchain.pem"), &pair.chain_pem).unwrap();
    std::fs::write(dir.join("privkey.pem"), &pair.key_pem).unwrap();
    // What visitors would see, on loopback: an edge serving the account's certificates by SNI,
    // and a DNS server where every custom domain has an A record instead of its CNAME.
    let edge = ngrok_cert_watchdog::sim::edge::EdgeServer::local()
        .await
        .unwrap();
    edge.follow(sim.edge_lookup());
    let names: Vec<(String, bool)> = sim.with_account(|a| {
        a.domains
            .values()
            .map(|d| (d.domain.clone(), d.cname_target.is_some()))
            .collect()
    });
    let mut zone = ngrok_cert_watchdog::sim::dns::Zone::default().with_apex("example.com");
    for (name, _) in names
        .iter()
        .filter(|(n, custom)| *custom && !n.starts_with('*'))
    {
        zone.address(name, "203.0.113.7".parse().unwrap());
    }
    let dns = ngrok_cert_watchdog::sim::dns::Responder::start("127.0.0.1:0".parse().unwrap(), zone)
        .await
        .unwrap();
    let resolve: Vec<String> = names
        .iter()
        .filter(|(n, _)| !n.starts_with('*'))
        .map(|(n, _)| format!("\"{n}\" = \"{}\"", edge.addr()))
        .collect();
    let probes = format!(
        "[edge]\ninterval = \"2s\"\ntimeout = \"2s\"\nresolve = {{ {} }}\n[dns]\nnameservers = [\"{}\"]\ntimeout = \"2s\"\n",
        resolve.join(", "),
        dns.addr()
    );
    let port = free_port();
    let (keep, config) = config_for(
        &sim.url(),
        KEY,
        &format!(
            r#"{probes}[schedule]
sync = "*/1 * * * * *"
[metrics]
listen = "127.0.0.1:{port}"
[[watch]]
name = "app"
certificate = "{d}/fullchain.pem"
private_key = "{d}/privkey.pem"
domains = ["app.example.com"]
[[webhook]]
name = "ops"
url = "{hook}"
format = "json"
"#,
            d = dir.display()
        ),
    );
    let child = Command::new(bin())
        .args(["--config", config.to_str().unwrap(), "run"])
        .env_remove("NGROK_API_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    DemoDaemon {
        port,
        _process: Killed(child),
        _sim: sim,
        _edge: edge,
        _dns: dns,
        _config: keep,
    }
}

fn start_prometheus(dir: &Path, target: u16) -> (String, Killed) {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ngrok-cert-watchdog\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package prometheus; .ci/run installs it)");
    (format!("http://127.0.0.1:{port}"), Killed(child))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_panel_returns_data_from_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_on_the_demo_account(dir.path()).await;
    let (prometheus, _prom) = start_prometheus(dir.path(), daemon.port);
    let instance = format!("127.0.0.1:{}", daemon.port);

    // At least two scrapes of a daemon that has synced.
    let start = Instant::now();
    let scrapes = format!(
        "count_over_time(ngrok_cert_watchdog_sync_last_success_timestamp_seconds{{instance=\"{instance}\"}}[10m])"
    );
    while value(&prometheus, &scrapes).await < 2.0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Prometheus did not scrape the daemon twice"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Grafana's substitutions: the selected instance, a rate interval of four scrapes and
    // more, the dashboard's range.
    let substitute = |e: &str| {
        e.replace("$instance", &instance)
            .replace("$__rate_interval", "30s")
            .replace("$__range", "10m")
            .replace("$__interval", "15s")
    };
    let panels = panels(&dashboard());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut empty = Vec::new();
        let mut early = Vec::new();
        for (title, exprs) in &panels {
            for e in exprs {
                let n = samples(&prometheus, &substitute(e)).await.unwrap();
                match (n, NO_DATA_YET.contains(&title.as_str())) {
                    (0, false) => empty.push(format!("{title}: {e}")),
                    (1.., true) => early.push(title.clone()),
                    _ => {}
                }
            }
        }
        assert!(
            early.is_empty(),
            "these panels return data now: remove them from NO_DATA_YET: {early:?}"
        );
        if empty.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "panels without data:\n{}",
            empty.join("\n")
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
