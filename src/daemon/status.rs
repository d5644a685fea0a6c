//! The last successful sync as `GET /` and `GET /api/v1/status` serve it: the account's part of
//! the page and the `check --format json` document, rendered once per sync (at 10,000 domains
//! that is megabytes: no request renders it again), compressed as they are rendered (neither is
//! ever whole in memory uncompressed) and kept gzip-compressed (~6 MB each become ~0.5 MB; a
//! request inflates them as it sends them); each request only adds what moves with the clock
//! (the header, `stale`).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write as _};
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::config::{Settings, WatchSettings};
use crate::core::rotation::{RotationResult, WatchReport, WatchState};
use crate::model::text::format_time;
use crate::model::{ExpiryPolicy, Finding};
use crate::outputs::metrics::inflate_chunks;
use crate::outputs::report::{self, Report, Summary};
use crate::outputs::status_page::{self, BodyFacts, LastRotation, WatchRow, WatchStatus};
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

/// A gzip stream (fast: once per sync, and only to be kept small) written as it is rendered,
/// through a 64 KiB buffer: neither the page nor the document is ever whole in memory
/// uncompressed.
struct Gzip {
    buffer: Vec<u8>,
    encoder: flate2::write::GzEncoder<Vec<u8>>,
}

impl Gzip {
    const BUFFER: usize = 64 * 1024;

    fn new() -> Self {
        Self {
            buffer: Vec::with_capacity(Self::BUFFER),
            encoder: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()),
        }
    }

    /// Compresses what is buffered but the last byte, which [`finish_open`](Self::finish_open)
    /// may take back.
    fn put(&mut self, data: &[u8]) -> io::Result<()> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= Self::BUFFER {
            let keep = self.buffer.len() - 1;
            self.encoder.write_all(&self.buffer[..keep])?;
            self.buffer.drain(..keep);
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<Bytes> {
        self.encoder.write_all(&self.buffer)?;
        let mut gzip = self.encoder.finish()?;
        gzip.shrink_to_fit();
        Ok(Bytes::from(gzip))
    }

    /// The stream of a JSON object without its closing brace (the per-request fields go
    /// before it).
    fn finish_open(mut self) -> io::Result<Bytes> {
        if self.buffer.pop() != Some(b'}') {
            return Err(io::Error::other("not a JSON object"));
        }
        self.finish()
    }
}

impl io::Write for Gzip {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.put(data)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Write for Gzip {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.put(text.as_bytes()).map_err(|_| fmt::Error)
    }
}

impl Snapshot {
    /// Renders the page and the document of a sync; `edge_probed` says whether its findings
    /// include what edge probes or the DNS diagnosis found (else the page says "not probed"
    /// rather than "ok").
    pub fn build(
        inventory: &Inventory,
        findings: &[Finding],
        watches: &[WatchRow],
        expiry: ExpiryPolicy,
        edge_probed: bool,
        checked_at: OffsetDateTime,
    ) -> Self {
        let doc = report::to_json(inventory, findings, checked_at);
        Self::of_report(&doc, watches, expiry, edge_probed)
    }

    fn of_report(
        doc: &Report<'_>,
        watches: &[WatchRow],
        expiry: ExpiryPolicy,
        edge_probed: bool,
    ) -> Self {
        let mut body = Gzip::new();
        let facts = BodyFacts {
            report: doc,
            watches,
            expiry,
            edge_probed,
            now: doc.checked_at,
        };
        // Writing into a Vec (compressed) cannot fail; were it to, the log would say so and the
        // page would show no account.
        let body = status_page::write_body(&mut body, &facts)
            .map_err(io::Error::other)
            .and_then(|()| body.finish())
            .unwrap_or_else(|e| {
                tracing::error!("status page: rendering failed: {e}");
                Bytes::new()
            });
        Self {
            checked_at: doc.checked_at,
            summary: doc.summary,
            document_open: document_open(doc),
            body,
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

/// The `check --format json` document without its closing brace, gzip-compressed as it is
/// serialized.
fn document_open(doc: &Report<'_>) -> Bytes {
    let mut gzip = Gzip::new();
    serde_json::to_writer(&mut gzip, doc)
        .map_err(io::Error::from)
        .and_then(|()| gzip.finish_open())
        .unwrap_or_else(|e| {
            tracing::error!("status document: rendering failed: {e}");
            let mut gzip = Gzip::new();
            let _ = gzip.put(br#"{"error":"the document could not be rendered"}"#);
            gzip.finish_open().unwrap_or_default()
        })
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

/// Whether the page may call a domain without `edge_*` or `dns_misconfigured` findings "ok"
/// (rather than "not probed"): the sync's findings include a probe pass's (`edge_included`,
/// with the edge on) or a DNS diagnosis's (`dns_diagnosed`, with DNS on).
pub fn edge_checked(settings: &Settings, edge_included: bool, dns_diagnosed: bool) -> bool {
    (settings.edge.enabled && edge_included) || (settings.dns.enabled && dns_diagnosed)
}

/// The refresh interval of the page: the schedule's, within reason.
pub fn refresh(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(5), Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FindingKind, Severity};
    use crate::outputs::report::DomainRow;
    use time::macros::datetime;

    #[test]
    fn the_page_and_document_inflate_to_what_was_rendered() {
        let now = datetime!(2026-11-25 12:00 UTC);
        let names: Vec<String> = (0..3_000)
            .map(|i| format!("customer-{i}</script>.example.com"))
            .collect();
        let findings: Vec<Finding> = names
            .iter()
            .step_by(7)
            .map(|name| Finding {
                severity: Severity::Warning,
                kind: FindingKind::DomainWithoutCertificate,
                resource_id: "rd".into(),
                domain: Some(name.clone()),
                message: format!("{name} has no certificate"),
                not_after: None,
            })
            .collect();
        let doc = Report {
            checked_at: now,
            summary: Summary {
                certificates: 0,
                domains: names.len(),
                credentials: 0,
                critical: 0,
                warning: findings.len(),
                info: 0,
            },
            findings: &findings,
            certificates: Vec::new(),
            domains: names
                .iter()
                .map(|name| DomainRow {
                    id: "rd",
                    domain: name,
                    certificate_id: None,
                    certificate_source: "none",
                    renews_at: None,
                    provisioning_job: None,
                })
                .collect(),
            credentials: Vec::new(),
        };
        let expiry = ExpiryPolicy::default();
        let snapshot = Snapshot::of_report(&doc, &[], expiry, true);

        let page: Vec<u8> = snapshot.body().flat_map(|b| b.to_vec()).collect();
        let expected = status_page::body(&BodyFacts {
            report: &doc,
            watches: &[],
            expiry,
            edge_probed: true,
            now,
        });
        // Several times the writer's buffer: the 64 KiB seams are crossed.
        assert!(expected.len() > 10 * Gzip::BUFFER, "{}", expected.len());
        assert!(String::from_utf8(page).unwrap() == expected);

        let served: Vec<u8> = snapshot.document(true).flat_map(|b| b.to_vec()).collect();
        // The document as `serde_json` writes it whole, with the per-request fields before its
        // brace.
        let mut expected = serde_json::to_vec(&doc).unwrap();
        expected.pop();
        expected.extend_from_slice(br#","stale":true,"last_success":"2026-11-25T12:00:00Z"}"#);
        assert!(served == expected);
        let served: serde_json::Value = serde_json::from_slice(&served).unwrap();
        assert_eq!(served["domains"].as_array().unwrap().len(), names.len());
    }
}
