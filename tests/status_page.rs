//! The status page and `/api/v1/status`: over HTTP against daemons on the simulator (the JSON
//! document, 503 before a first sync, stale after failed ones, the Host check, the CSP hashes),
//! and end to end in Debian's headless Chromium driven by playwright-core
//! (`tests/browser/status_page.mjs`) on the demo account.

mod common;

use common::{bin, config_for, free_port, http, Killed, KEY};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn daemon(config: &Path) -> Killed {
    Killed(
        Command::new(bin())
            .args(["--config", config.to_str().unwrap(), "run"])
            .env_remove("NGROK_API_KEY")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn get(url: &str, host: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = http().get(url);
    if let Some(h) = host {
        request = request.header("Host", h);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// Polls `url` until `pred` holds for (status, body); returns the body.
async fn wait_until(url: &str, what: &str, pred: impl Fn(u16, &str) -> bool) -> String {
    let start = Instant::now();
    loop {
        if let Ok(r) = http().get(url).send().await {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            if pred(status, &body) {
                return body;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what} at {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text
        .find(open)
        .unwrap_or_else(|| panic!("{open} not in {text}"))
        + open.len();
    let end = start + text[start..].find(close).expect(close);
    &text[start..end]
}

fn sha256_b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// Attribute names of the form `on…=` (inline event handlers) and `style=`, anywhere in a tag.
fn inline_handlers_or_styles(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for tag in html.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        for word in tag.split_whitespace().skip(1) {
            let name = word
                .split('=')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if word.contains('=') && (name == "style" || (name.starts_with("on") && name.len() > 2))
            {
                found.push(word.to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_api_and_page_over_http() {
    let sim = ngrok_cert_watchdog::sim::Sim::local(KEY).await.unwrap();
    let seed =
        ngrok_cert_watchdog::sim::seed::parse(include_str!("../config/demo-seed.toml")).unwrap();
    sim.seed(&seed, "demo").unwrap();

    // Before a first successful sync (the API cannot be reached): 503 with a JSON error.
    let closed = free_port();
    let port = free_port();
    let (_dir_a, config_a) = config_for(
        &format!("http://127.0.0.1:{closed}"),
        KEY,
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let _a = daemon(&config_a);
    let base_a = format!("http://127.0.0.1:{port}");
    wait_until(&format!("{base_a}/healthz"), "the daemon", |s, _| s == 200).await;
    let (status, headers, body) = get(&format!("{base_a}/api/v1/status"), None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"], "no successful sync yet");
    let (status, _, page) = get(&format!("{base_a}/"), None).await;
    assert_eq!(status, 503);
    assert!(page.contains("no successful sync yet"), "{page}");

    // On the demo account: the `check --format json` document plus stale and last_success.
    let port = free_port();
    let (dir, config) = config_for(
        &sim.url(),
        KEY,
        &format!(
            "[schedule]\nsync = \"*/1 * * * * *\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\nallowed_hosts = [\"watchdog.internal\"]\n"
        ),
    );
    let _b = daemon(&config);
    let base = format!("http://127.0.0.1:{port}");
    let body = wait_until(&format!("{base}/api/v1/status"), "a first sync", |s, _| {
        s == 200
    })
    .await;
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["stale"], false, "{body}");
    assert_eq!(doc["last_success"], doc["checked_at"]);
    let check = std::process::Command::new(bin())
        .args([
            "--config",
            config.to_str().unwrap(),
            "check",
            "--format",
            "json",
        ])
        .env_remove("NGROK_API_KEY")
        .output()
        .unwrap();
    let checked: Value = serde_json::from_slice(&check.stdout).unwrap();
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let mut expected_keys = keys(&checked);
    expected_keys.extend(["stale".to_string(), "last_success".to_string()]);
    assert_eq!(keys(&doc), expected_keys);
    for part in ["summary", "certificates", "domains", "credentials"] {
        assert_eq!(
            doc[part], checked[part],
            "{part} differs from check --format json"
        );
    }
    assert!(!doc["findings"].as_array().unwrap().is_empty());
    drop(dir);

    // The page: its CSP allows exactly its own inline style and script, and nothing else.
    let (status, headers, page) = get(&format!("{base}/"), None).await;
    assert_eq!(status, 200);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    let style = between(&page, "<style>", "</style>");
    let script = between(&page, "<script>", "</script>");
    assert!(
        csp.contains(&format!("style-src 'sha256-{}'", sha256_b64(style))),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("script-src 'sha256-{}'", sha256_b64(script))),
        "{csp}"
    );
    // One script runs; the others are the tables' rows as data (not run, and without "<").
    assert_eq!(page.matches("<script>").count(), 1);
    assert_eq!(
        page.matches("<script").count(),
        1 + page.matches("<script type=\"application/json\"").count()
    );
    let rows = between(
        &page,
        "<script type=\"application/json\" id=\"domain-rows\">",
        "</script>",
    );
    assert!(!rows.contains("</") && !rows.contains("<!--"));
    let rows: Value = serde_json::from_str(rows).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        doc["domains"].as_array().unwrap().len()
    );
    // The edge and DNS are off here: no domain is said to be fine there.
    for row in rows.as_array().unwrap() {
        let row = row.as_str().unwrap();
        assert!(
            row.ends_with("<td><span class=\"dim\">not probed</span></td></tr>"),
            "{row}"
        );
    }
    assert_eq!(page.matches("<style").count(), 1);
    assert_eq!(inline_handlers_or_styles(&page), Vec::<String>::new());
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external asset"
    );
    for secret in [KEY, "PRIVATE KEY", "BEGIN CERTIFICATE"] {
        assert!(!page.contains(secret) && !body.contains(secret), "{secret}");
    }

    // DNS rebinding: a name that is not ours is refused; ours and localhost are served.
    for (host, code) in [
        ("evil.example.com", 403),
        ("watchdog.internal:80", 200),
        ("localhost", 200),
        ("127.0.0.1", 200),
    ] {
        for path in ["/", "/api/v1/status"] {
            let (status, _, _) = get(&format!("{base}{path}"), Some(host)).await;
            assert_eq!(status, code, "Host {host} on {path}");
        }
    }
    // /metrics keeps answering any Host (a Prometheus scraping by another name).
    let (status, _, _) = get(&format!("{base}/metrics"), Some("evil.example.com")).await;
    assert_eq!(status, 200);

    // The API goes away: the last successful document, marked stale.
    sim.stop().await;
    wait_until(&format!("{base}/metrics"), "a failed sync", |_, m| {
        m.lines().any(|l| {
            l.strip_prefix("ngrok_cert_watchdog_syncs_total{result=\"failure\"} ")
                .is_some_and(|n| n.trim() != "0")
        })
    })
    .await;
    let stale = wait_until(
        &format!("{base}/api/v1/status"),
        "a stale document",
        |s, b| s == 200 && b.contains("\"stale\":true"),
    )
    .await;
    let stale: Value = serde_json::from_str(&stale).unwrap();
    assert_eq!(stale["domains"], doc["domains"]);
    let (_, _, page) = get(&format!("{base}/"), None).await;
    assert!(
        page.contains("The latest sync failed"),
        "the page says so: {}",
        between(&page, "<header", "</header>")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_page_false_turns_both_off() {
    let port = free_port();
    let (_dir, config) = config_for(
        "http://127.0.0.1:9",
        KEY,
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\nstatus_page = false\n"),
    );
    let _d = daemon(&config);
    let base = format!("http://127.0.0.1:{port}");
    wait_until(&format!("{base}/healthz"), "the daemon", |s, _| s == 200).await;
    for path in ["/", "/api/v1/status"] {
        let (status, _, _) = get(&format!("{base}{path}"), None).await;
        assert_eq!(status, 404, "{path}");
    }
}

/// `node` with playwright-core from `tests/browser` (installed by `npm ci` there; `.ci/run` does).
fn browser_script() -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci` in {} (.ci/run does)",
        dir.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: apt-get install chromium (.ci/run does)"
    );
    (dir.clone(), dir.join("status_page.mjs"))
}

/// The domains whose table row contains `filter`: by name, or by their certificate's name or id.
fn rows_matching(doc: &Value, filter: &str) -> BTreeSet<String> {
    let certs = doc["certificates"].as_array().unwrap();
    doc["domains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            let cert = certs.iter().find(|c| c["id"] == d["certificate_id"]);
            let cert_text = cert.map_or(String::new(), |c| {
                format!("{} {}", c["subject_common_name"], c["id"])
            });
            d["domain"].as_str().unwrap().contains(filter) || cert_text.contains(filter)
        })
        .map(|d| d["domain"].as_str().unwrap().to_string())
        .collect()
}

/// The "Edge and DNS" column of `domain` as `doc`'s findings make it, the edge probed: the kinds
/// of its `edge_*` and `dns_misconfigured` findings, else "ok".
fn edge_words(doc: &Value, domain: &str) -> String {
    let kinds: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["domain"] == domain)
        .filter_map(|f| f["kind"].as_str())
        .filter(|k| k.starts_with("edge_") || *k == "dns_misconfigured")
        .collect();
    if kinds.is_empty() {
        "ok".to_string()
    } else {
        kinds.join(" ")
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_in_chromium_on_the_demo_account() {
    let (cwd, script) = browser_script();
    let port = free_port();
    let _demo = Killed(
        Command::new(bin())
            .args(["demo", "--metrics-listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    // The first sync with the edge probed (the demo probes after its first sync and syncs again
    // at once): the page the browser loads shows the same findings.
    let body = wait_until(
        &format!("{base}/api/v1/status"),
        "the demo's first sync with the edge probed",
        |s, b| s == 200 && b.contains("\"kind\":\"edge_"),
    )
    .await;
    let doc: Value = serde_json::from_str(&body).unwrap();
    let findings = doc["findings"].as_array().unwrap();
    let critical: Vec<&Value> = findings
        .iter()
        .filter(|f| f["severity"] == "critical")
        .collect();
    assert!(
        critical.len() >= 2,
        "the demo account has critical findings"
    );
    let attached: Vec<&Value> = doc["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["domains"].as_array().unwrap().is_empty())
        .collect();
    // Filter on the domain of a critical expiry finding.
    let filter = critical
        .iter()
        .find(|f| f["kind"] == "certificate_expiring")
        .and_then(|f| f["domain"].as_str())
        .expect("a critical certificate_expiring finding with a domain")
        .to_string();
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    // The demo syncs every 15 s: within 40 s the page has refreshed itself at least once.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(&cwd)
            .arg(&script)
            .args([
                "check",
                &format!("{base}/"),
                shot.to_str().unwrap(),
                &filter,
                "40",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the browser script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    let filter = critical
        .iter()
        .find(|f| f["kind"] == "certificate_expiring")
        .and_then(|f| f["domain"].as_str())
        .unwrap();

    assert_eq!(seen["status"], 200);
    assert_eq!(
        seen["csp_violations"],
        Value::Array(vec![]),
        "the page caused CSP violations"
    );

    // The critical findings are visible, each with its message.
    let rows = strings(&seen["critical_rows"]);
    assert_eq!(rows.len(), critical.len(), "{rows:#?}");
    for f in &critical {
        let message = f["message"].as_str().unwrap();
        assert!(
            rows.iter().any(|r| r.contains(message)),
            "critical finding not visible: {message}"
        );
    }

    // One mark per attached certificate, named on focus; expired ones at the left edge, red.
    let marks = strings(&seen["marks"]);
    assert_eq!(marks.len(), attached.len(), "{marks:#?}");
    for c in &attached {
        let id = c["id"].as_str().unwrap();
        assert_eq!(marks.iter().filter(|m| m.contains(id)).count(), 1, "{id}");
    }
    assert_eq!(seen["focused_mark_info"].as_str().unwrap(), marks[0]);
    let checked_at = time::OffsetDateTime::parse(
        doc["checked_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expired = attached
        .iter()
        .filter(|c| {
            let t = time::OffsetDateTime::parse(
                c["not_after"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            t < checked_at
        })
        .count();
    let expired_marks = seen["expired_marks"].as_array().unwrap();
    assert!(
        expired >= 1,
        "the demo account has an expired certificate in use"
    );
    assert_eq!(expired_marks.len(), expired);
    for m in expired_marks {
        assert!(m["cx"].as_f64().unwrap() < 120.0, "left of now: {m}");
        assert_eq!(m["fill"], "rgb(198, 40, 40)", "red: {m}");
    }

    // Every domain listed; the filter leaves the matching ones; sorting by expiry sorts.
    let all: BTreeSet<String> = doc["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap().to_string())
        .collect();
    let before: BTreeSet<String> = strings(&seen["domains_before"]).into_iter().collect();
    assert_eq!(before, all);
    let filtered: BTreeSet<String> = strings(&seen["domains_filtered"]).into_iter().collect();
    assert_eq!(filtered, rows_matching(&doc, filter));
    assert!(!filtered.is_empty() && filtered.len() < all.len());
    // The demo probes the edge and checks DNS: a domain without such findings is "ok", one with
    // them shows their kinds.
    let edge_column = strings(&seen["domain_edge_column"]);
    assert_eq!(edge_column.len(), filtered.len());
    for (domain, edge) in strings(&seen["domains_filtered"]).iter().zip(&edge_column) {
        assert_eq!(edge, &edge_words(&doc, domain), "{domain}");
    }
    assert!(edge_column.iter().any(|e| e == "ok"), "{edge_column:?}");
    let expiry_of = |domain: &str| -> i64 {
        let d = doc["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["domain"] == domain)
            .unwrap();
        doc["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == d["certificate_id"])
            .map_or(0, |c| {
                time::OffsetDateTime::parse(
                    c["not_after"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap()
                .unix_timestamp()
            })
    };
    let order: Vec<i64> = strings(&seen["domains_by_expiry"])
        .iter()
        .map(|d| expiry_of(d))
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");

    // The demo's one watch, with its files and state.
    let watches = seen["watch_rows"].as_array().unwrap();
    assert_eq!(watches.len(), 1);
    assert_eq!(watches[0][0], "app");
    assert!(watches[0][1].as_str().unwrap().ends_with("privkey.pem"));

    // Refreshed every sync interval without losing the filter.
    assert_eq!(seen["refreshed"], true);
    assert_eq!(seen["filter_after_refresh"], filter);
    assert_eq!(seen["domains_after_refresh"], seen["domains_filtered"]);

    // Readable on a phone: nothing wider than the screen but the scrolling tables.
    assert!(seen["phone_overflow"].as_i64().unwrap() <= 0, "{seen}");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    eprintln!("screenshot: {}", shot.display());
}
