//! The last successful sync as `GET /` and `GET /api/v1/status` serve it: the account's part of
//! the page and the `check --format json` document, rendered once per sync (at 10,000 domains
//! that is megabytes: no request renders it again) and kept gzip-compressed (~6 MB each become
//! ~0.5 MB; a request inflates them as it sends them); each request only adds what moves with
//! the clock (the header, `stale`).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::config::WatchSettings;
use crate::core::rotation::{RotationResult, WatchReport, WatchState};
use crate::model::text::format_time;
use crate::model::Finding;
use crate::outputs::metrics::inflate_chunks;
use crate::outputs::report::{self, Summary};
use crate::outputs::status_page::{self, Bands, BodyFacts, LastRotation, WatchRow, WatchStatus};
use crate::sources::inventory::Inventory;

/// One successful sync, ready to serve.
pub struct Snapshot {
    pub checked_at: OffsetDateTime,
    pub summary: Summary,
    /// The `check --format json` document without its closing brace, gzip-compressed.
    document_open: Bytes,
    /// The account's part of the status page, gzip-compressed.
    body: Bytes,
}

/// `data` gzip-compressed, fast: once per sync, and only to be kept small.
fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(data);
    Bytes::from(encoder.finish().unwrap_or_default())
}

impl Snapshot {
    pub fn build(
        inventory: &Inventory,
        findings: &[Finding],
        watches: &[WatchRow],
        bands: Bands,
        checked_at: OffsetDateTime,
    ) -> Self {
        let doc = report::to_json(inventory, findings, checked_at);
        let mut json = serde_json::to_vec(&doc).unwrap_or_else(|_| b"{}".to_vec());
        // A JSON object ends with its brace; the per-request fields go before it.
        json.pop();
        let body = status_page::body(&BodyFacts {
            report: &doc,
            watches,
            bands,
            edge_probed: false,
            now: checked_at,
        });
        Self {
            checked_at: doc.checked_at,
            summary: doc.summary,
            document_open: gzip(&json),
            body: gzip(body.as_bytes()),
        }
    }

    /// The document with `stale` and `last_success`, as `/api/v1/status` serves it, chunk by
    /// chunk.
    pub fn document(&self, stale: bool) -> impl Iterator<Item = Bytes> + Send {
        let close = format!(
            ",\"stale\":{stale},\"last_success\":\"{}\"}}",
            format_time(self.checked_at)
        );
        inflate_chunks(self.document_open.clone()).chain(std::iter::once(Bytes::from(close)))
    }

    /// The account's part of the page, chunk by chunk.
    pub fn body(&self) -> impl Iterator<Item = Bytes> + Send {
        inflate_chunks(self.body.clone())
    }
}

/// The table rows of the `[[watch]]` entries: each as its pass this sync left it (`reports`),
/// or skipped; `last` keeps the time of each watch's last rotation across syncs.
pub fn watch_rows(
    watches: &[WatchSettings],
    reports: &[WatchReport],
    last: &mut BTreeMap<String, LastRotation>,
    now: OffsetDateTime,
) -> Vec<WatchRow> {
    watches
        .iter()
        .map(|w| {
            let report = reports.iter().find(|r| r.watch == w.name);
            if let Some(result) = report.and_then(|r| r.result().as_str()) {
                last.insert(w.name.clone(), LastRotation { at: now, result });
            }
            let state = match report.map(|r| (&r.state, r.result())) {
                None => WatchStatus::Skipped,
                Some((WatchState::Invalid { .. }, _)) => WatchStatus::Invalid,
                Some((WatchState::Waiting { reason }, _)) => WatchStatus::Waiting(reason.clone()),
                Some((WatchState::Planned { .. }, RotationResult::Failure)) => {
                    WatchStatus::Waiting(
                        "the last rotation failed; the next pass tries again".into(),
                    )
                }
                Some((WatchState::Planned { .. }, _)) => WatchStatus::Ok,
            };
            WatchRow {
                name: w.name.clone(),
                certificate: w.certificate.display().to_string(),
                private_key: w.private_key.display().to_string(),
                domains: w.domains.clone(),
                not_after: report.and_then(WatchReport::not_after),
                state,
                last_rotation: last.get(&w.name).copied(),
            }
        })
        .collect()
}

/// `expiry.warning` and `expiry.critical` as the timeline's bands: their duration parts, or for
/// a share alone, that share of a 90-day certificate. (The findings themselves apply each
/// threshold to each certificate's own lifetime.)
pub fn bands(expiry: &crate::model::ExpiryPolicy) -> Bands {
    let ninety_days = time::Duration::days(90);
    let band = |t: crate::model::expiry::Threshold| {
        t.duration_part().unwrap_or_else(|| {
            let at = time::OffsetDateTime::UNIX_EPOCH;
            t.before_expiry(at, at + ninety_days)
                .try_into()
                .unwrap_or_default()
        })
    };
    Bands {
        warning: band(expiry.warning),
        critical: band(expiry.critical),
    }
}

/// The refresh interval of the page: the schedule's, within reason.
pub fn refresh(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(5), Duration::from_secs(3600))
}
