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

use crate::model::{ExpiryPolicy, Finding, Severity};
use crate::sources::inventory::Inventory;
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
        let account = render_account(inventory);
        let rendered = Rendered::of(account);
        if let Ok(mut cached) = self.account.write() {
            *cached = rendered;
        }
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

    /// A failed sync: counted; the account's last values stay.
    pub fn record_sync_failure(&self, duration: Duration) {
        self.sync_duration.set(duration.as_secs_f64());
        self.syncs_total.with_label_values(&["failure"]).inc();
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
        match encoding {
            Encoding::Identity => Exposition {
                account: account.plain,
                own: Bytes::from(own),
                encoding,
            },
            Encoding::Gzip => Exposition {
                own: account.gzip_tail(&own),
                account: account.gzip_head,
                encoding,
            },
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
    plain: Bytes,
    /// A gzip header and the account's raw deflate blocks, sync-flushed: not final.
    gzip_head: Bytes,
    /// CRC-32 of `plain`, continued over the daemon's own part at each scrape.
    crc: u32,
}

impl Rendered {
    fn of(account: String) -> Self {
        // RFC 1952: magic, deflate, no flags, no time, no extra flags, unknown OS.
        let mut head = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        head.extend(deflate(account.as_bytes(), flate2::FlushCompress::Sync));
        Self {
            crc: crc32fast::hash(account.as_bytes()),
            gzip_head: Bytes::from(head),
            plain: Bytes::from(account),
        }
    }

    /// The rest of the gzip stream after `gzip_head`: `own`'s deflate blocks, the last one
    /// final, then the CRC-32 and the length of the whole page.
    fn gzip_tail(&self, own: &[u8]) -> Bytes {
        let mut tail = deflate(own, flate2::FlushCompress::Finish);
        let mut crc = crc32fast::Hasher::new_with_initial(self.crc);
        crc.update(own);
        tail.extend(crc.finalize().to_le_bytes());
        let size = (self.plain.len() + own.len()) as u32; // modulo 2^32, as RFC 1952 says
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
    loop {
        let consumed = compress.total_in() as usize;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let status = compress.compress_vec(&bytes[consumed..], &mut out, flush);
        let done = compress.total_in() as usize == bytes.len() && out.len() < out.capacity();
        match status {
            Ok(flate2::Status::StreamEnd) => return out,
            Ok(_) if done && flush != flate2::FlushCompress::Finish => return out,
            Ok(_) => {}
            Err(_) => return out,
        }
    }
}

/// One scrape's exposition in two parts, sent one after the other.
#[derive(Debug, Clone)]
pub struct Exposition {
    /// Shared with every other scrape until the next sync.
    pub account: Bytes,
    pub own: Bytes,
    pub encoding: Encoding,
}

impl Exposition {
    pub fn len(&self) -> usize {
        self.account.len() + self.own.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Both parts in one buffer (a copy: for tests and benchmarks, not for serving).
    pub fn to_vec(&self) -> Vec<u8> {
        [self.account.as_ref(), self.own.as_ref()].concat()
    }
}

/// The account's series, from one inventory, in the text format.
#[allow(
    clippy::too_many_lines,
    reason = "the account series: their definitions, then one loop per resource"
)]
pub fn render_account(inventory: &Inventory) -> String {
    let registry = Registry::new();
    let cert_labels = ["certificate_id", "subject_common_name", "managed"];
    let not_after = gauge_vec(
        &registry,
        "ngrok_tls_certificate_not_after_timestamp_seconds",
        "When a TLS certificate of the account expires, Unix seconds.",
        &cert_labels,
    );
    let not_before = gauge_vec(
        &registry,
        "ngrok_tls_certificate_not_before_timestamp_seconds",
        "When a TLS certificate of the account becomes valid, Unix seconds.",
        &cert_labels,
    );
    let domain_info = int_gauge_vec(
        &registry,
        "ngrok_reserved_domain_info",
        "Always 1; a reserved domain, its certificate and where the certificate comes from (uploaded, managed, none).",
        &["domain", "domain_id", "certificate_id", "certificate_source"],
    );
    let domain_not_after = gauge_vec(
        &registry,
        "ngrok_reserved_domain_certificate_not_after_timestamp_seconds",
        "When the certificate a reserved domain uses expires, Unix seconds.",
        &["domain"],
    );
    let domain_not_before = gauge_vec(
        &registry,
        "ngrok_reserved_domain_certificate_not_before_timestamp_seconds",
        "When the certificate a reserved domain uses became valid, Unix seconds (with not_after, its lifetime, which share-of-lifetime expiry thresholds need).",
        &["domain"],
    );
    let renews_at = gauge_vec(
        &registry,
        "ngrok_reserved_domain_renews_at_timestamp_seconds",
        "When ngrok will renew the managed certificate of a reserved domain, Unix seconds.",
        &["domain"],
    );
    let provisioning_failed = int_gauge_vec(
        &registry,
        "ngrok_reserved_domain_provisioning_failed",
        "1 while the certificate provisioning job of a reserved domain reports an error.",
        &["domain", "error_code"],
    );
    let credentials = int_gauge_vec(
        &registry,
        "ngrok_credentials",
        "Tunnel credentials of the account, by whether an ACL restricts what they may bind.",
        &["restricted"],
    );

    for c in inventory.certificates() {
        let managed = if c.is_managed() { "true" } else { "false" };
        let cn = c.subject_common_name.as_deref().unwrap_or("");
        let labels = [c.id.as_str(), cn, managed];
        not_after.with_label_values(&labels).set(unix(c.not_after));
        not_before
            .with_label_values(&labels)
            .set(unix(c.not_before));
    }
    for d in inventory.domains() {
        let certificate_id = d.certificate_id().unwrap_or("");
        domain_info
            .with_label_values(&[
                d.domain.as_str(),
                d.id.as_str(),
                certificate_id,
                inventory.certificate_source(d),
            ])
            .set(1);
        if let Some(c) = d.certificate_id().and_then(|id| inventory.certificate(id)) {
            domain_not_after
                .with_label_values(&[d.domain.as_str()])
                .set(unix(c.not_after));
            domain_not_before
                .with_label_values(&[d.domain.as_str()])
                .set(unix(c.not_before));
        }
        if let Some(at) = d.renews_at() {
            renews_at
                .with_label_values(&[d.domain.as_str()])
                .set(unix(at));
        }
        if let Some(code) = d
            .provisioning_job()
            .and_then(|j| j.error_code.as_deref())
            .filter(|c| !c.is_empty())
        {
            provisioning_failed
                .with_label_values(&[d.domain.as_str(), code])
                .set(1);
        }
    }
    let restricted = inventory
        .credentials()
        .iter()
        .filter(|c| c.is_restricted())
        .count() as i64;
    credentials.with_label_values(&["true"]).set(restricted);
    credentials
        .with_label_values(&["false"])
        .set(inventory.credentials().len() as i64 - restricted);

    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_default()
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
        assert!(!first.account.is_empty());
        // The same bytes, not a copy per scrape.
        assert_eq!(first.account.as_ptr(), second.account.as_ptr());
        assert!(String::from_utf8(second.to_vec())
            .unwrap()
            .contains("ngrok_cert_watchdog_build_info"));
        // Compressed once per sync, and the same bytes for every scrape too.
        let gz = metrics.render_as(Encoding::Gzip);
        assert_eq!(
            gz.account.as_ptr(),
            metrics.render_as(Encoding::Gzip).account.as_ptr()
        );
        let mut text = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&gz.to_vec()[..])
            .read_to_string(&mut text)
            .unwrap();
        // Identical but for the daemon's own counters between the two renders.
        assert!(text.starts_with(std::str::from_utf8(&first.account).unwrap()));
        assert!(text.contains("ngrok_cert_watchdog_build_info"));
    }
}
