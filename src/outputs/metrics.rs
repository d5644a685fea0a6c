//! Prometheus metrics: the account's series, rebuilt and rendered once per successful sync, and
//! the daemon's own, kept in a registry that this struct owns (passed in, never global).
//!
//! The account only changes once per sync, so its ~45,000 series for a 10,000-certificate account
//! are encoded then, and a scrape serves the cached text plus the few dozen series of the daemon.
//! Rebuilding from scratch means a deleted resource or a changed label leaves no stale series; a
//! failed sync does not touch them, so the last values stay (stale values, not zeros).

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::Duration;

use bytes::Bytes;
use prometheus::{
    Encoder, Gauge, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use time::OffsetDateTime;

use crate::core::edge::EdgeRow;
use crate::model::{ExpiryPolicy, Finding, FindingKind, Severity};
use crate::sources::inventory::Inventory;

pub use super::account_metrics::render_account;
use super::account_metrics::{render_account_into, render_edge_into, Sink};
use crate::sources::ngrok::RequestObserver;

/// The metrics of one daemon.
pub struct Metrics {
    registry: Registry,
    expiry_threshold: GaugeVec,
    expiry_threshold_ratio: GaugeVec,
    renewal_grace: Gauge,
    stale_after: Gauge,
    sync_last_success: Gauge,
    sync_duration: Gauge,
    syncs_total: IntCounterVec,
    api_requests_total: IntCounterVec,
    findings: IntGaugeVec,
    pub rotations_total: IntCounterVec,
    pub watch_not_after: GaugeVec,
    pub watch_up: IntGaugeVec,
    pub webhook_deliveries_total: IntCounterVec,
    alerts_firing: IntGaugeVec,
    supervisor_alarms_total: IntCounterVec,
    edge_rotations_total: IntCounterVec,
    /// The edge's per-domain series of the last probe (rendered with the account's part).
    edge_rows: RwLock<Vec<EdgeRow>>,
    /// Per custom domain, from the last DNS diagnosis applied to the last sync.
    dns_ok: IntGaugeVec,
    /// The account's part of the exposition, rendered (and gzip-compressed) once per sync and
    /// shared by every scrape.
    account: RwLock<Rendered>,
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let v = GaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
    registry
        .register(Box::new(v.clone()))
        .expect("each metric registered once");
    v
}

fn int_gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let v = IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
    registry
        .register(Box::new(v.clone()))
        .expect("each metric registered once");
    v
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let v = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition");
    registry
        .register(Box::new(v.clone()))
        .expect("each metric registered once");
    v
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::with_opts(Opts::new(name, help)).expect("static metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("each metric registered once");
    g
}

impl Metrics {
    #[allow(
        clippy::too_many_lines,
        reason = "one definition per metric: a table, not logic"
    )]
    pub fn new(policy: &ExpiryPolicy) -> Self {
        let registry = Registry::new();
        let build_info = int_gauge_vec(
            &registry,
            "ngrok_cert_watchdog_build_info",
            "Always 1; the version of the running ngrok-cert-watchdog.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let metrics = Self {
            expiry_threshold: gauge_vec(
                &registry,
                "ngrok_cert_watchdog_expiry_threshold_seconds",
                "The duration part of the configured expiry thresholds (expiry.warning, expiry.critical), for alert rules to follow; absent for a threshold without one.",
                &["severity"],
            ),
            expiry_threshold_ratio: gauge_vec(
                &registry,
                "ngrok_cert_watchdog_expiry_threshold_ratio",
                "The share of a certificate's lifetime in the configured expiry thresholds (0.33 for \"33%\"), for alert rules to follow; absent for a threshold without one.",
                &["severity"],
            ),
            renewal_grace: gauge(
                &registry,
                "ngrok_cert_watchdog_renewal_grace_seconds",
                "The configured expiry.renewal_grace, for alert rules to follow.",
            ),
            stale_after: gauge(
                &registry,
                "ngrok_cert_watchdog_sync_stale_after_seconds",
                "The configured schedule.stale_after: /readyz fails once the last successful sync is older.",
            ),
            sync_last_success: gauge(
                &registry,
                "ngrok_cert_watchdog_sync_last_success_timestamp_seconds",
                "When the last successful sync of the account finished, Unix seconds.",
            ),
            sync_duration: gauge(
                &registry,
                "ngrok_cert_watchdog_sync_duration_seconds",
                "How long the last sync of the account took.",
            ),
            syncs_total: counter_vec(
                &registry,
                "ngrok_cert_watchdog_syncs_total",
                "Syncs of the account, by result.",
                &["result"],
            ),
            api_requests_total: counter_vec(
                &registry,
                "ngrok_cert_watchdog_api_requests_total",
                "Requests to the ngrok API, by method, resource and HTTP status (error: no response).",
                &["method", "resource", "code"],
            ),
            findings: int_gauge_vec(
                &registry,
                "ngrok_cert_watchdog_findings",
                "Findings of the last successful evaluation, by severity and kind.",
                &["severity", "kind"],
            ),
            rotations_total: counter_vec(
                &registry,
                "ngrok_cert_watchdog_rotations_total",
                "Certificate rotations of a watch, by result.",
                &["watch", "result"],
            ),
            watch_not_after: gauge_vec(
                &registry,
                "ngrok_cert_watchdog_watch_certificate_not_after_timestamp_seconds",
                "Expiry of the certificate on disk of a watch, Unix seconds.",
                &["watch"],
            ),
            watch_up: int_gauge_vec(
                &registry,
                "ngrok_cert_watchdog_watch_up",
                "1 when the files of a watch are a valid certificate and key, else 0.",
                &["watch"],
            ),
            webhook_deliveries_total: counter_vec(
                &registry,
                "ngrok_cert_watchdog_webhook_deliveries_total",
                "Webhook delivery attempts, by webhook and result.",
                &["webhook", "result"],
            ),
            alerts_firing: int_gauge_vec(
                &registry,
                "ngrok_cert_watchdog_alerts_firing",
                "Alerts firing now, by severity.",
                &["severity"],
            ),
            supervisor_alarms_total: counter_vec(
                &registry,
                "ngrok_cert_watchdog_supervisor_alarms_total",
                "Times the supervisor found the sync loop dead (tick_late: the scheduler stopped firing; sync_stuck: a sync made no progress) and stopped pinging the systemd watchdog.",
                &["reason"],
            ),
            edge_rotations_total: counter_vec(
                &registry,
                "ngrok_cert_watchdog_edge_rotations_total",
                "Rotations followed at the edge, by watch and how they settled (confirmed: every domain serves the new certificate; grace_passed: edge.propagation_grace passed first).",
                &["watch", "result"],
            ),
            edge_rows: RwLock::new(Vec::new()),
            dns_ok: int_gauge_vec(
                &registry,
                "ngrok_reserved_domain_dns_ok",
                "1 when a custom domain's DNS leads to its CNAME target (and its ACME challenge CNAME and CAA allow ngrok's certificates), 0 when it does not; absent when it could not be checked or DNS diagnosis is off.",
                &["domain"],
            ),
            account: RwLock::new(Rendered::default()),
            registry,
        };
        for result in ["success", "failure"] {
            metrics.syncs_total.with_label_values(&[result]).inc_by(0);
        }
        for severity in [Severity::Info, Severity::Warning, Severity::Critical] {
            metrics
                .alerts_firing
                .with_label_values(&[severity.as_str()])
                .set(0);
        }
        metrics.set_policy(policy);
        metrics
    }

    /// `schedule.stale_after` after a (re)load of the configuration.
    pub fn set_stale_after(&self, stale_after: Duration) {
        self.stale_after.set(stale_after.as_secs_f64());
    }

    /// The thresholds after a (re)load of the configuration. A threshold is the smaller of its
    /// parts; a part it does not have is no series at all.
    pub fn set_policy(&self, policy: &ExpiryPolicy) {
        self.renewal_grace.set(policy.renewal_grace.as_secs_f64());
        for (severity, threshold) in [("warning", policy.warning), ("critical", policy.critical)] {
            match threshold.duration_part() {
                Some(d) => self
                    .expiry_threshold
                    .with_label_values(&[severity])
                    .set(d.as_secs_f64()),
                None => {
                    let _ = self.expiry_threshold.remove_label_values(&[severity]);
                }
            }
            match threshold.share_part() {
                Some(s) => self
                    .expiry_threshold_ratio
                    .with_label_values(&[severity])
                    .set(s.ratio()),
                None => {
                    let _ = self.expiry_threshold_ratio.remove_label_values(&[severity]);
                }
            }
        }
    }

    /// A successful sync: the account's series are rebuilt from it, the findings replaced.
    pub fn record_sync_success(
        &self,
        inventory: &Inventory,
        findings: &[Finding],
        duration: Duration,
        finished_at: OffsetDateTime,
    ) {
        self.render_account_part(inventory);
        self.findings.reset();
        let mut counts: BTreeMap<(Severity, &str), i64> = BTreeMap::new();
        for f in findings {
            *counts.entry((f.severity, f.kind.as_str())).or_default() += 1;
        }
        for ((severity, kind), n) in counts {
            self.findings
                .with_label_values(&[severity.as_str(), kind])
                .set(n);
        }
        self.sync_duration.set(duration.as_secs_f64());
        self.sync_last_success
            .set(finished_at.unix_timestamp_nanos() as f64 / 1e9);
        self.syncs_total.with_label_values(&["success"]).inc();
    }

    /// What the edge served, per domain: kept, and the account's part rendered again with it.
    pub fn record_edge(&self, inventory: &Inventory, rows: Vec<EdgeRow>) {
        self.set_edge_rows(rows);
        self.render_account_part(inventory);
    }

    /// What the edge served, per domain, for the next rendering (a sync's).
    pub fn set_edge_rows(&self, rows: Vec<EdgeRow>) {
        if let Ok(mut r) = self.edge_rows.write() {
            *r = rows;
        }
    }

    /// A rotation followed at the edge settled (`confirmed` or `grace_passed`).
    pub fn record_edge_rotation(&self, watch: &str, result: &str) {
        self.edge_rotations_total
            .with_label_values(&[watch, result])
            .inc();
    }

    /// The account's series and the edge's, rendered once for every scrape until the next.
    fn render_account_part(&self, inventory: &Inventory) {
        let mut account = Deflating::new();
        render_account_into(&mut account, inventory);
        if let Ok(rows) = self.edge_rows.read() {
            render_edge_into(&mut account, &rows);
        }
        let rendered = account.finish();
        if let Ok(mut cached) = self.account.write() {
            *cached = rendered;
        }
    }

    /// A failed sync: counted; the account's last values stay, and the findings gauge shows the
    /// `sync_failed` finding once syncs have failed often enough in a row (it is among the
    /// pass's `findings` then).
    pub fn record_sync_failure(&self, duration: Duration, findings: &[Finding]) {
        self.sync_duration.set(duration.as_secs_f64());
        self.syncs_total.with_label_values(&["failure"]).inc();
        let kind = FindingKind::SyncFailed.as_str();
        for severity in [Severity::Critical, Severity::Warning, Severity::Info] {
            let _ = self
                .findings
                .remove_label_values(&[severity.as_str(), kind]);
        }
        for f in findings
            .iter()
            .filter(|f| f.kind == FindingKind::SyncFailed)
        {
            self.findings
                .with_label_values(&[f.severity.as_str(), kind])
                .inc();
        }
    }

    /// One watch's pass: whether its files are usable, their expiry, and a rotation's result.
    pub fn record_watch(&self, report: &crate::core::rotation::WatchReport) {
        self.watch_up
            .with_label_values(&[report.watch.as_str()])
            .set(i64::from(report.up()));
        if let Some(t) = report.not_after() {
            self.watch_not_after
                .with_label_values(&[report.watch.as_str()])
                .set(unix(t));
        }
        if let Some(result) = report.result().as_str() {
            self.rotations_total
                .with_label_values(&[report.watch.as_str(), result])
                .inc();
        }
    }

    /// `ngrok_reserved_domain_dns_ok`: exactly these domains (the others disappear).
    pub fn record_dns_ok(&self, values: &[(String, bool)]) {
        self.dns_ok.reset();
        for (domain, ok) in values {
            self.dns_ok
                .with_label_values(&[domain.as_str()])
                .set(i64::from(*ok));
        }
    }

    pub fn record_supervisor_alarm(&self, reason: &str) {
        self.supervisor_alarms_total
            .with_label_values(&[reason])
            .inc();
    }

    pub fn record_delivery(&self, webhook: &str, result: &str) {
        self.webhook_deliveries_total
            .with_label_values(&[webhook, result])
            .inc();
    }

    pub fn set_alerts_firing(&self, severity: Severity, n: i64) {
        self.alerts_firing
            .with_label_values(&[severity.as_str()])
            .set(n);
    }

    /// The whole exposition: the cached account part (the same reference-counted bytes for
    /// every scrape: at 10,000 domains it is ~6 MB, and concurrent scrapers must not each get a
    /// copy), then the daemon's own few dozen series, encoded now.
    pub fn render(&self) -> Exposition {
        self.render_as(Encoding::Identity)
    }

    /// [`render`](Self::render) in `encoding`. Compressed, it is one gzip stream whose first
    /// part — the header and the account's deflate blocks, flushed to a byte boundary — was
    /// compressed once per sync; each scrape only compresses the daemon's own few dozen series
    /// and appends them with the trailer. (Two gzip members would be valid too, but `curl
    /// --compressed` reads only the first.)
    pub fn render_as(&self, encoding: Encoding) -> Exposition {
        let account = self.account.read().map(|a| a.clone()).unwrap_or_default();
        let mut own = Vec::with_capacity(8192);
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut own);
        let own = match encoding {
            Encoding::Identity => Bytes::from(own),
            Encoding::Gzip => account.gzip_tail(&own),
        };
        Exposition {
            account: account.gzip_head,
            account_plain_len: account.plain_len,
            own,
            encoding,
        }
    }
}

impl RequestObserver for Metrics {
    fn observe(&self, method: &str, resource: &str, code: &str) {
        self.api_requests_total
            .with_label_values(&[method, resource, code])
            .inc();
    }
}

fn unix(t: OffsetDateTime) -> f64 {
    t.unix_timestamp() as f64
}

/// The account's part, as sent to scrapers that ask for each encoding.
#[derive(Debug, Clone, Default)]
struct Rendered {
    /// A gzip header and the account's raw deflate blocks, sync-flushed: not final. The only
    /// copy of the account's part kept: a scrape without gzip inflates it as it is sent.
    gzip_head: Bytes,
    plain_len: usize,
    /// CRC-32 of `plain`, continued over the daemon's own part at each scrape.
    crc: u32,
}

/// The account's part as it is rendered: each piece of text compressed as it comes, into a
/// gzip header and raw deflate blocks, with the CRC-32 and length gzip's trailer needs.
struct Deflating {
    compress: flate2::Compress,
    out: Vec<u8>,
    crc: crc32fast::Hasher,
    len: usize,
}

impl Deflating {
    fn new() -> Self {
        // RFC 1952: magic, deflate, no flags, no time, no extra flags, unknown OS.
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        Self {
            compress: flate2::Compress::new(flate2::Compression::fast(), false),
            out,
            crc: crc32fast::Hasher::new(),
            len: 0,
        }
    }

    /// Compresses `input` onto `out`; a sync flush ends on a byte boundary, so more blocks can
    /// follow (each scrape's own series).
    fn run(&mut self, input: &[u8], flush: flate2::FlushCompress) {
        compress_into(&mut self.compress, input, &mut self.out, flush);
    }

    fn finish(mut self) -> Rendered {
        self.run(&[], flate2::FlushCompress::Sync);
        // Kept until the next sync: without the slack of its growth.
        self.out.shrink_to_fit();
        Rendered {
            crc: self.crc.finalize(),
            gzip_head: Bytes::from(self.out),
            plain_len: self.len,
        }
    }
}

impl Sink for Deflating {
    fn take(&mut self, text: &str) {
        self.crc.update(text.as_bytes());
        self.len += text.len();
        self.run(text.as_bytes(), flate2::FlushCompress::None);
    }
}

impl Rendered {
    /// The rest of the gzip stream after `gzip_head`: `own`'s deflate blocks, the last one
    /// final, then the CRC-32 and the length of the whole page.
    fn gzip_tail(&self, own: &[u8]) -> Bytes {
        let mut tail = deflate(own, flate2::FlushCompress::Finish);
        let mut crc = crc32fast::Hasher::new_with_initial(self.crc);
        crc.update(own);
        tail.extend(crc.finalize().to_le_bytes());
        let size = (self.plain_len + own.len()) as u32; // modulo 2^32, as RFC 1952 says
        tail.extend(size.to_le_bytes());
        Bytes::from(tail)
    }
}

/// How an exposition is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// Raw deflate blocks of `bytes`, ending as `flush` says (a byte boundary, or the final block).
fn deflate(bytes: &[u8], flush: flate2::FlushCompress) -> Vec<u8> {
    let mut compress = flate2::Compress::new(flate2::Compression::fast(), false);
    let mut out = Vec::with_capacity(bytes.len() / 4 + 64);
    compress_into(&mut compress, bytes, &mut out, flush);
    out
}

/// Compresses all of `input` onto `out` (growing it as needed) and flushes as `flush` says:
/// until the stream ends for `Finish`, else until zlib leaves room in the output.
fn compress_into(
    compress: &mut flate2::Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: flate2::FlushCompress,
) {
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let before = compress.total_in();
        let status = compress.compress_vec(input, out, flush);
        input = &input[(compress.total_in() - before) as usize..];
        // Done when the input is taken and the output did not fill up (zlib's rule).
        let done = input.is_empty() && out.len() < out.capacity();
        match status {
            Ok(flate2::Status::StreamEnd) | Err(_) => return,
            Ok(_) if done && flush != flate2::FlushCompress::Finish => return,
            Ok(_) => {}
        }
    }
}

/// One scrape's exposition: the account's part, then the daemon's own series.
#[derive(Debug, Clone)]
pub struct Exposition {
    /// The gzip header and the account's deflate blocks, shared with every other scrape until
    /// the next sync.
    account: Bytes,
    account_plain_len: usize,
    /// The daemon's own series: as text, or (gzip) their deflate blocks and the trailer.
    pub own: Bytes,
    pub encoding: Encoding,
}

/// What one body chunk of an uncompressed scrape holds at most.
const PLAIN_CHUNK: usize = 64 * 1024;

impl Exposition {
    /// The bytes shared by every scrape until the next sync.
    pub fn shared(&self) -> &Bytes {
        &self.account
    }

    /// The length of the body on the wire.
    pub fn len(&self) -> usize {
        let account = match self.encoding {
            Encoding::Identity => self.account_plain_len,
            Encoding::Gzip => self.account.len(),
        };
        account + self.own.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body, chunk by chunk: compressed, the shared head then the tail; uncompressed, the
    /// account's part inflated 64 KiB at a time as the body is sent (no copy of the whole text
    /// is kept or made), then the daemon's own series.
    pub fn chunks(self) -> impl Iterator<Item = Bytes> + Send {
        let (shared, inflating) = match self.encoding {
            Encoding::Gzip => (Some(self.account), None),
            Encoding::Identity => (None, Some(Inflating::new(self.account))),
        };
        shared
            .into_iter()
            .chain(inflating.into_iter().flatten())
            .chain(std::iter::once(self.own))
    }

    /// The whole body in one buffer (a copy: for tests and benchmarks, not for serving).
    pub fn to_vec(&self) -> Vec<u8> {
        self.clone().chunks().collect::<Vec<_>>().concat()
    }
}

/// A gzip stream (its trailer optional) inflated a chunk of at most 64 KiB at a time: a large
/// document kept compressed is sent without ever being whole in memory.
pub fn inflate_chunks(gzip: Bytes) -> impl Iterator<Item = Bytes> + Send {
    Inflating::new(gzip)
}

/// The account's text, inflated from its shared gzip head a chunk at a time.
struct Inflating {
    head: Bytes,
    /// How far into `head` the inflater has read (the 10-byte gzip header comes first).
    at: usize,
    inflater: flate2::Decompress,
}

impl Inflating {
    fn new(head: Bytes) -> Self {
        Self {
            at: 10.min(head.len()),
            head,
            inflater: flate2::Decompress::new(false),
        }
    }
}

impl Iterator for Inflating {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let mut out = Vec::with_capacity(PLAIN_CHUNK);
        while out.len() < out.capacity() && self.at < self.head.len() {
            let (read, wrote) = (self.inflater.total_in(), out.len());
            let status = self.inflater.decompress_vec(
                &self.head[self.at..],
                &mut out,
                flate2::FlushDecompress::Sync,
            );
            self.at += (self.inflater.total_in() - read) as usize;
            let stuck = self.inflater.total_in() == read && out.len() == wrote;
            if status.is_err() || stuck {
                // Our own compressor's output: cannot happen; end the part rather than loop.
                self.at = self.head.len();
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn thresholds_export_each_part_they_have_and_no_other() {
        let own = |m: &Metrics| String::from_utf8(m.render().own.to_vec()).unwrap();
        let metrics = Metrics::new(&ExpiryPolicy::default());
        let text = own(&metrics);
        for line in [
            "ngrok_cert_watchdog_expiry_threshold_seconds{severity=\"warning\"} 2592000",
            "ngrok_cert_watchdog_expiry_threshold_seconds{severity=\"critical\"} 604800",
            "ngrok_cert_watchdog_expiry_threshold_ratio{severity=\"warning\"} 0.33",
            "ngrok_cert_watchdog_expiry_threshold_ratio{severity=\"critical\"} 0.1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        // A reload to a share-only warning and a duration-only critical drops the other parts.
        metrics.set_policy(&ExpiryPolicy {
            warning: "50%".parse().unwrap(),
            critical: "2d".parse().unwrap(),
            ..ExpiryPolicy::default()
        });
        let text = own(&metrics);
        assert!(
            text.contains("ngrok_cert_watchdog_expiry_threshold_ratio{severity=\"warning\"} 0.5")
        );
        assert!(text.contains(
            "ngrok_cert_watchdog_expiry_threshold_seconds{severity=\"critical\"} 172800"
        ));
        assert!(
            !text.contains("ngrok_cert_watchdog_expiry_threshold_seconds{severity=\"warning\"}"),
            "{text}"
        );
        assert!(
            !text.contains("ngrok_cert_watchdog_expiry_threshold_ratio{severity=\"critical\"}"),
            "{text}"
        );
    }

    #[test]
    fn every_scrape_shares_one_rendered_account_buffer() {
        let metrics = Metrics::new(&ExpiryPolicy::default());
        let inventory = Inventory::new(
            OffsetDateTime::now_utc(),
            Vec::<crate::sources::ngrok::TlsCertificate>::new(),
            Vec::new(),
            Vec::new(),
            BTreeSet::new(),
        );
        metrics.record_sync_success(
            &inventory,
            &[],
            Duration::from_millis(1),
            OffsetDateTime::now_utc(),
        );
        let first = metrics.render();
        let second = metrics.render();
        assert!(!first.shared().is_empty());
        // The same bytes, not a copy per scrape.
        assert_eq!(first.shared().as_ptr(), second.shared().as_ptr());
        assert!(String::from_utf8(second.to_vec())
            .unwrap()
            .contains("ngrok_cert_watchdog_build_info"));
        // Compressed once per sync, and the same bytes for every scrape too.
        let gz = metrics.render_as(Encoding::Gzip);
        assert_eq!(
            gz.shared().as_ptr(),
            metrics.render_as(Encoding::Gzip).shared().as_ptr()
        );
        let mut text = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&gz.to_vec()[..])
            .read_to_string(&mut text)
            .unwrap();
        // Identical but for the daemon's own counters between the two renders.
        let plain = String::from_utf8(first.to_vec()).unwrap();
        assert_eq!(first.len(), plain.len());
        let account_part = &plain[..plain.find("# HELP ngrok_cert_watchdog_").unwrap()];
        assert!(text.starts_with(account_part));
        assert!(text.contains("ngrok_cert_watchdog_build_info"));
    }

    #[test]
    fn an_account_compressed_piece_by_piece_inflates_to_its_plain_text() {
        let metrics = Metrics::new(&ExpiryPolicy::default());
        let n = 3_000;
        let certificates = (0..n).map(|i| {
            serde_json::from_value::<crate::sources::ngrok::TlsCertificate>(serde_json::json!({
                "id": format!("cert_{i:05}"), "subject_common_name": format!("h{i}.example.com"),
                "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z",
            }))
            .unwrap()
        });
        let domains = (0..n)
            .map(|i| {
                serde_json::from_value(serde_json::json!({
                    "id": format!("rd_{i:05}"), "domain": format!("h{i}.example.com"),
                    "certificate": {"id": format!("cert_{i:05}")}, "cname_target": "x.ngrok.test",
                }))
                .unwrap()
            })
            .collect();
        let now = OffsetDateTime::now_utc();
        let inventory = Inventory::new(now, certificates, domains, Vec::new(), BTreeSet::new());
        metrics.record_sync_success(&inventory, &[], Duration::from_millis(1), now);
        let plain = String::from_utf8(metrics.render().to_vec()).unwrap();
        let account_part = &plain[..plain.find("# HELP ngrok_cert_watchdog_").unwrap()];
        assert!(account_part.len() > 8 * 64 * 1024, "{}", account_part.len());
        assert_eq!(account_part, render_account(&inventory));
        let mut text = String::new();
        use std::io::Read;
        let gz = metrics.render_as(Encoding::Gzip).to_vec();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .unwrap();
        assert!(text.starts_with(account_part));
        assert!(text.contains("ngrok_cert_watchdog_build_info"));
    }
}
