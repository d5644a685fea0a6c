//! `/metrics` rendering at 10,000 certificates and 10,000 domains (~45,000 series): the cached
//! account part served per scrape, side by side with the alternative of encoding the account's
//! series with the prometheus crate on every scrape. `cargo bench --bench metrics`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ngrok_cert_watchdog::core::evaluate::evaluate;
use ngrok_cert_watchdog::model::ExpiryPolicy;
use ngrok_cert_watchdog::outputs::metrics::{render_account, Encoding, Metrics};
use ngrok_cert_watchdog::sources::inventory::Inventory;
use ngrok_cert_watchdog::sources::ngrok::{ReservedDomain, TlsCertificate};
use time::OffsetDateTime;

fn inventory(n: usize) -> Inventory {
    let now = OffsetDateTime::now_utc();
    let mut certificates = Vec::with_capacity(n);
    let mut domains = Vec::with_capacity(n);
    for i in 0..n {
        let c: TlsCertificate = serde_json::from_value(serde_json::json!({
            "id": format!("cert_{i:027}"),
            "subject_common_name": format!("h{i}.example.test"),
            "not_before": "2026-01-01T00:00:00Z",
            "not_after": "2027-01-01T00:00:00Z",
        }))
        .unwrap();
        let d: ReservedDomain = serde_json::from_value(serde_json::json!({
            "id": format!("rd_{i:027}"),
            "domain": format!("h{i}.example.test"),
            "certificate": {"id": format!("cert_{i:027}")},
            "certificate_management_policy": if i % 10 == 0 { serde_json::json!({"authority": "letsencrypt"}) } else { serde_json::Value::Null },
            "certificate_management_status": if i % 10 == 0 { serde_json::json!({"renews_at": "2026-12-01T00:00:00Z", "provisioning_job": if i % 20 == 0 { serde_json::json!({"error_code": "DNS_ERROR"}) } else { serde_json::Value::Null }}) } else { serde_json::Value::Null },
        }))
        .unwrap();
        certificates.push(c);
        domains.push(d);
    }
    Inventory::new(now, certificates, domains, Vec::new(), BTreeSet::new())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs = 31;
    let inv = inventory(10_000);
    let policy = ExpiryPolicy::default();
    let findings = evaluate(&inv, &policy, OffsetDateTime::now_utc());
    let metrics = Metrics::new(&policy);
    let t = Instant::now();
    metrics.record_sync_success(
        &inv,
        &findings,
        Duration::from_millis(1),
        OffsetDateTime::now_utc(),
    );
    let per_sync = t.elapsed();
    let body = metrics.render().to_vec();
    let series = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();

    let cached: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            // Every chunk a plain scrape sends (the account's part inflated as it goes).
            let sent: usize = metrics.render().chunks().map(|c| c.len()).sum();
            std::hint::black_box(sent);
            t.elapsed()
        })
        .collect();
    let uncached: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let mut account = render_account(&inv).into_bytes();
            account.extend_from_slice(&metrics.render().own);
            std::hint::black_box(account);
            t.elapsed()
        })
        .collect();
    let gzipped: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let sent: usize = metrics
                .render_as(Encoding::Gzip)
                .chunks()
                .map(|c| c.len())
                .sum();
            std::hint::black_box(sent);
            t.elapsed()
        })
        .collect();
    let gz_bytes = metrics.render_as(Encoding::Gzip).len();
    let whole_gzip: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut encoder, &metrics.render().to_vec()).unwrap();
            std::hint::black_box(encoder.finish().unwrap());
            t.elapsed()
        })
        .collect();
    println!("series in one scrape: {series} ({} bytes)", body.len());
    println!(
        "gzip: {gz_bytes} bytes; per scrape, account compressed once per sync (what /metrics does): median {:.2} ms; compressing the whole page per scrape (the alternative): median {:.1} ms",
        median(gzipped).as_secs_f64() * 1e3,
        median(whole_gzip).as_secs_f64() * 1e3
    );
    println!(
        "account rendered once per sync: {:.1} ms",
        per_sync.as_secs_f64() * 1e3
    );
    println!(
        "per scrape, cached account part (what /metrics does): median {:.2} ms over {runs} runs",
        median(cached).as_secs_f64() * 1e3
    );
    println!(
        "per scrape, encoding the account with the prometheus crate each time (the alternative): median {:.1} ms over {runs} runs",
        median(uncached).as_secs_f64() * 1e3
    );
}
