//! The status page at `GET /`: pure rendering, facts in, HTML out. No I/O, no clock (`now` is a
//! fact), nothing beyond what `check` prints plus the `[[watch]]` entries' files and state.
//!
//! The page is one self-contained document: an inline style and an inline script, allowed by
//! their hashes in [`content_security_policy`] (no inline handlers, no style attributes). It comes
//! in parts so that the daemon can render the account's part once per sync and the header (age,
//! health) on every request: [`HEAD`], [`header`], [`body`], [`TAIL`].

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::model::expiry::Threshold;
use crate::model::text::{format_time, human};
use crate::model::{ExpiryPolicy, Finding, FindingKind, Severity};
use crate::outputs::report::{CertificateRow, DomainRow, Report, Summary};

const STYLE: &str = include_str!("status_page.css");
const SCRIPT: &str = include_str!("status_page.js");

/// The document up to `<body>`, with the inline style.
pub static HEAD: &str = concat!(
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    "<meta name=\"referrer\" content=\"no-referrer\">",
    "<title>ngrok-cert-watchdog</title><style>",
    include_str!("status_page.css"),
    "</style></head><body>\n"
);

/// The inline script and the end of the document.
pub static TAIL: &str = concat!(
    "<script>",
    include_str!("status_page.js"),
    "</script></body></html>\n"
);

/// Rows shown per page of a table; the script pages through the rest without a round trip.
pub const PAGE_SIZE: usize = 100;

/// `default-src 'none'`, the inline style and script by hash, and `connect-src 'self'` for the
/// script's refresh (it fetches this page again every sync interval).
pub fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = |text: &str| {
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
        };
        format!(
            "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; connect-src 'self'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash(STYLE),
            hash(SCRIPT)
        )
    })
}

/// The daemon's health, as `/readyz` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ready,
    /// `/readyz` says 503: the last successful sync is older than `stale_after`.
    Stale {
        stale_after: Duration,
    },
    /// No sync has succeeded since the daemon started.
    NoSyncYet,
}

/// What the header says; rendered on every request.
#[derive(Debug, Clone)]
pub struct HeaderFacts {
    pub summary: Option<Summary>,
    pub last_success: Option<OffsetDateTime>,
    /// The latest sync failed (the figures below are from the last one that did not).
    pub last_sync_failed: bool,
    pub health: Health,
    /// Why syncs take longer than the schedule, when the request budget makes them so.
    pub budget_note: Option<String>,
    /// The schedule's interval: the page refreshes its data this often.
    pub refresh: Duration,
    pub now: OffsetDateTime,
}

/// The `<header>`: the account summary, the last successful sync and its age, the health.
pub fn header(h: &HeaderFacts) -> String {
    let mut out = String::with_capacity(2048);
    let last = h.last_success.map_or(0, OffsetDateTime::unix_timestamp);
    let _ = write!(
        out,
        "<header id=\"status\" data-refresh=\"{}\" data-last-success=\"{last}\"><h1>ngrok-cert-watchdog</h1>",
        h.refresh.as_secs().max(5)
    );
    let (class, words) = health_words(h);
    let _ = write!(
        out,
        "<p id=\"health\" class=\"health {class}\">{}</p>",
        esc(&words)
    );
    if let Some(s) = &h.summary {
        out.push_str("<dl class=\"summary\">");
        for (label, n, class) in [
            ("critical", s.critical, "sev-critical"),
            ("warning", s.warning, "sev-warning"),
            ("info", s.info, "sev-info"),
            ("certificates", s.certificates, ""),
            ("domains", s.domains, ""),
            ("credentials", s.credentials, ""),
        ] {
            let _ = write!(
                out,
                "<div class=\"{class}\"><dt>{label}</dt><dd id=\"count-{label}\">{n}</dd></div>"
            );
        }
        out.push_str("</dl>");
    }
    match h.last_success {
        Some(at) => {
            let _ = write!(
                out,
                "<p class=\"sync\">Last successful sync <time datetime=\"{t}\">{t}</time>, <span id=\"age\">{}</span> ago; the page refreshes every {}.</p>",
                human(h.now - at),
                humantime::format_duration(h.refresh),
                t = format_time(at),
            );
        }
        None => out.push_str(
            "<p class=\"sync\">No successful sync yet; this page refreshes until there is one.</p>",
        ),
    }
    out.push_str("</header>\n");
    out
}

fn health_words(h: &HeaderFacts) -> (&'static str, String) {
    let note = h
        .budget_note
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let failed = if h.last_sync_failed {
        " The latest sync failed: the figures are from the last one that succeeded."
    } else {
        ""
    };
    match (&h.health, h.last_success) {
        (Health::Ready, _) => ("ok", format!("Healthy: syncs are up to date{note}.{failed}")),
        (Health::Stale { stale_after }, Some(at)) => (
            "bad",
            format!(
                "Stale: the last successful sync was {} ago, longer than schedule.stale_after ({}){note}; /readyz answers 503.{failed}",
                human(h.now - at),
                humantime::format_duration(*stale_after)
            ),
        ),
        _ => (
            "bad",
            format!("Not ready: no successful sync yet{note}; /readyz answers 503.{failed}"),
        ),
    }
}

/// One `[[watch]]` as the last pass saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRow {
    pub name: String,
    pub certificate: String,
    pub private_key: String,
    pub domains: Vec<String>,
    /// The expiry of the leaf on disk, once read.
    pub not_after: Option<OffsetDateTime>,
    pub state: WatchStatus,
    pub last_rotation: Option<LastRotation>,
}

/// Where a watch's last pass ended, in words for the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchStatus {
    /// A valid pair; the account matches it or was brought to.
    Ok,
    /// Half-way through a swap or issued for later: the reason.
    Waiting(String),
    /// Not a usable pair or refused: its findings say why.
    Invalid,
    /// Another process held its rotation lock.
    Skipped,
}

/// The last pass of a watch that changed the account (since the daemon started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRotation {
    pub at: OffsetDateTime,
    /// `success` or `failure` (the `rotations_total` label).
    pub result: &'static str,
}

/// The timeline's bands: `expiry.warning` and `expiry.critical` by their duration parts, or for a
/// share alone, that share of a 90-day certificate. (The marks, like the findings, apply each
/// threshold to each certificate's own lifetime: one band cannot show a share for all.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bands {
    warning: Duration,
    critical: Duration,
}

impl Bands {
    fn of(expiry: &ExpiryPolicy) -> Self {
        let ninety_days = time::Duration::days(90);
        let band = |t: Threshold| {
            t.duration_part().unwrap_or_else(|| {
                let at = OffsetDateTime::UNIX_EPOCH;
                t.before_expiry(at, at + ninety_days)
                    .try_into()
                    .unwrap_or_default()
            })
        };
        Self {
            warning: band(expiry.warning),
            critical: band(expiry.critical),
        }
    }
}

/// What the account's part of the page shows; rendered once per successful sync.
pub struct BodyFacts<'a> {
    pub report: &'a Report<'a>,
    pub watches: &'a [WatchRow],
    /// `[expiry]`: the timeline's bands, and the stage each mark is coloured by.
    pub expiry: ExpiryPolicy,
    /// Whether edge TLS probes and DNS checks ran: with none, the column says "not probed"
    /// rather than "ok" for a domain without `edge_*` / `dns_misconfigured` findings.
    pub edge_probed: bool,
    pub now: OffsetDateTime,
}

/// The findings, the timeline, and the domain and watch tables, written to `out` as they are
/// produced: the daemon writes them straight into a gzip stream, so that at 10,000 domains no
/// copy of the whole (megabytes) is ever made. Fails only when `out` does.
pub fn write_body(out: &mut dyn fmt::Write, f: &BodyFacts<'_>) -> fmt::Result {
    out.write_str("<main id=\"account\">")?;
    findings(out, f.report.findings)?;
    timeline(out, f)?;
    domains(out, f)?;
    watches(out, f.watches, f.report.findings, f.now)?;
    out.write_str("</main>\n")
}

/// [`write_body`] into one string (for tests: the daemon never holds the whole body).
pub fn body(f: &BodyFacts<'_>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_body(&mut out, f);
    out
}

/// Most urgent first, then in the report's order.
fn by_urgency(findings: &[Finding]) -> Vec<&Finding> {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    sorted
}

fn findings(out: &mut dyn fmt::Write, list: &[Finding]) -> fmt::Result {
    write!(
        out,
        "<section id=\"findings\"><h2>Findings <span class=\"n\">{}</span></h2>",
        list.len()
    )?;
    if list.is_empty() {
        return out.write_str("<p>Nothing to report.</p></section>\n");
    }
    table_start(
        out,
        "finding",
        "Filter findings",
        &["Severity", "Finding", "About", "What to do"],
    )?;
    let sorted = by_urgency(list);
    table_end(out, "finding", sorted.len(), &mut |i, row| {
        finding_row(row, sorted[i])
    })?;
    out.write_str("</section>\n")
}

fn finding_row(out: &mut String, f: &Finding) -> fmt::Result {
    let sev = f.severity.as_str();
    let rank = f.severity as u8;
    write!(
        out,
        "<tr class=\"sev-{sev}\"><td data-sort=\"{rank}\"><span class=\"badge\">{sev}</span></td><td><code>{kind}</code><p>{msg}</p></td><td>",
        kind = f.kind.as_str(),
        msg = esc(&f.message),
    )?;
    match &f.domain {
        Some(d) => write!(out, "{}<br><code>{}</code>", esc(d), esc(&f.resource_id))?,
        None => write!(out, "<code>{}</code>", esc(&f.resource_id))?,
    }
    write!(
        out,
        "</td><td class=\"todo\">{}</td></tr>",
        esc(crate::core::alerts::advice(f.kind))
    )
}

/// Timeline geometry: the expired zone left of `X0`, now at `X0`, the furthest expiry at `X1`.
const X0: f64 = 120.0;
const X1: f64 = 985.0;
const LANES: usize = 8;

fn timeline(out: &mut dyn fmt::Write, f: &BodyFacts<'_>) -> fmt::Result {
    let bands = Bands::of(&f.expiry);
    let now = f.now;
    let mut attached: Vec<_> = f
        .report
        .certificates
        .iter()
        .filter(|c| !c.domains.is_empty())
        .collect();
    // Soonest first, spread over the lanes.
    attached.sort_by_key(|c| c.not_after);
    let secs = |d: Duration| d.as_secs_f64();
    let furthest = attached
        .iter()
        .map(|c| (c.not_after - now).as_seconds_f64())
        .fold(secs(bands.warning).max(86_400.0), f64::max);
    let x = |t: OffsetDateTime| {
        X0 + ((t - now).as_seconds_f64() / furthest).clamp(0.0, 1.0) * (X1 - X0)
    };
    let height = 40 + LANES * 14 + 30;
    write!(
        out,
        "<section id=\"timeline\"><h2>Expiry timeline <span class=\"n\">{}</span></h2>\
         <p id=\"mark-info\" aria-live=\"polite\">Every certificate a domain uses, at its expiry. Hover over or focus a mark to name it.</p>\
         <div class=\"scroll\"><svg class=\"timeline\" viewBox=\"0 0 1000 {height}\" role=\"group\" aria-label=\"certificates by expiry\">",
        attached.len()
    )?;
    let band_end = |d: Duration| x(now + crate::model::text::signed(d));
    let bottom = height - 30;
    write!(
        out,
        "<rect class=\"band-expired\" x=\"0\" y=\"20\" width=\"{X0}\" height=\"{h}\"/>\
         <rect class=\"band-warning\" x=\"{X0}\" y=\"20\" width=\"{w}\" height=\"{h}\"/>\
         <rect class=\"band-critical\" x=\"{X0}\" y=\"20\" width=\"{c}\" height=\"{h}\"/>\
         <text x=\"{tx}\" y=\"14\" class=\"label\">expired</text>",
        h = bottom - 20,
        w = band_end(bands.warning) - X0,
        c = band_end(bands.critical) - X0,
        tx = X0 / 2.0,
    )?;
    for i in 0..=4 {
        let t = now + time::Duration::seconds_f64(furthest * f64::from(i) / 4.0);
        let tx = x(t);
        let date = format_time(t);
        write!(
            out,
            "<line class=\"tick\" x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"20\" y2=\"{bottom}\"/><text class=\"label{}\" x=\"{tx:.1}\" y=\"{}\">{}</text>",
            if i == 4 { " end" } else { "" },
            bottom + 18,
            if i == 0 { "now" } else { &date[..10] }
        )?;
    }
    for (i, c) in attached.iter().enumerate() {
        mark(out, i, c, f, &x)?;
    }
    // The names come as data, shown on hover and focus: 10,000 <title> elements would cost
    // the browser more than the marks themselves.
    out.write_str("</svg></div><script type=\"application/json\" id=\"mark-labels\">")?;
    json_strings(out, attached.len(), &mut |i, label| {
        let c = attached[i];
        write!(
            label,
            "{} ({}) {}, {}: ",
            c.subject_common_name,
            c.id,
            expires(c.not_after - now),
            format_time(c.not_after),
        )?;
        comma_separated(label, &c.domains)
    })?;
    out.write_str("</script></section>\n")
}

/// The `i`th mark (of the certificates soonest first): its class by its certificate's stage
/// under the expiry policy, its place by its expiry (expired ones spread left of now).
fn mark(
    out: &mut dyn fmt::Write,
    i: usize,
    c: &CertificateRow<'_>,
    f: &BodyFacts<'_>,
    x: &dyn Fn(OffsetDateTime) -> f64,
) -> fmt::Result {
    use crate::model::expiry::Stage;
    let class = match f.expiry.stage(c.not_before, c.not_after, f.now) {
        Stage::Expired => "expired",
        Stage::Critical => "critical",
        Stage::Warning => "warning",
        Stage::Fine => "ok",
    };
    let cx = if class == "expired" {
        X0 / 2.0 + ((i % 5) as f64 - 2.0) * 14.0
    } else {
        x(c.not_after)
    };
    let cy = 34 + (i % LANES) * 14;
    write!(
        out,
        "<circle class=\"mark {class}\" tabindex=\"0\" data-i=\"{i}\" cx=\"{cx:.1}\" cy=\"{cy}\" r=\"6\"/>"
    )
}

/// A mark's words for the time `left` until its expiry.
fn expires(left: time::Duration) -> String {
    if left <= time::Duration::ZERO {
        relative(left)
    } else {
        format!("expires {}", relative(left))
    }
}

/// `items` joined by ", ", without joining them into a new string first.
fn comma_separated(out: &mut String, items: &[&str]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.write_str(", ")?;
        }
        out.write_str(item)?;
    }
    Ok(())
}

fn table_start(
    out: &mut dyn fmt::Write,
    name: &str,
    placeholder: &str,
    columns: &[&str],
) -> fmt::Result {
    write!(
        out,
        "<div class=\"tools\"><input type=\"search\" id=\"{name}-filter\" class=\"filter\" data-table=\"{name}-table\" placeholder=\"{placeholder}\" aria-label=\"{placeholder}\"><span class=\"shown\" id=\"{name}-shown\"></span></div>\
         <div class=\"scroll\"><table id=\"{name}-table\" class=\"data\" data-page-size=\"{PAGE_SIZE}\"><thead><tr>"
    )?;
    for (i, c) in columns.iter().enumerate() {
        write!(
            out,
            "<th><button type=\"button\" data-col=\"{i}\">{c}</button></th>"
        )?;
    }
    out.write_str("</tr></thead><tbody>")
}

/// Writes the `i`th of some items into the (cleared) string it is given.
type Item<'a> = dyn FnMut(usize, &mut String) -> fmt::Result + 'a;

/// The first page of the `n` rows as HTML (what a browser without the script shows), then every
/// row's HTML as data for the script, which filters, sorts and pages through them. 10,000
/// strings of JSON cost a browser far less than 10,000 rows of table it would have to build and
/// hide. Each row is rendered when it is written (twice for the first page), never all at once.
fn table_end(out: &mut dyn fmt::Write, name: &str, n: usize, row: &mut Item<'_>) -> fmt::Result {
    let mut html = String::new();
    for i in 0..n.min(PAGE_SIZE) {
        html.clear();
        row(i, &mut html)?;
        out.write_str(&html)?;
    }
    write!(
        out,
        "</tbody></table></div><nav class=\"pager\"></nav><script type=\"application/json\" id=\"{name}-rows\">"
    )?;
    json_strings(out, n, row)?;
    out.write_str("</script>")
}

/// The `n` items as a JSON array of strings that can sit inside `<script
/// type="application/json">`, one item at a time.
fn json_strings(out: &mut dyn fmt::Write, n: usize, item: &mut Item<'_>) -> fmt::Result {
    let (mut text, mut json) = (String::new(), Vec::new());
    out.write_str("[")?;
    for i in 0..n {
        text.clear();
        item(i, &mut text)?;
        json.clear();
        serde_json::to_writer(&mut json, text.as_str()).map_err(|_| fmt::Error)?;
        if i > 0 {
            out.write_str(",")?;
        }
        script_safe(out, std::str::from_utf8(&json).map_err(|_| fmt::Error)?)?;
    }
    out.write_str("]")
}

/// `json` without `</` (which could end the script block; `<\/` means the same in JSON) and
/// without `<!--` (`\u003c!--`). Neither can span two items of an array (they are separated by
/// `","`), so items are made safe one by one.
fn script_safe(out: &mut dyn fmt::Write, json: &str) -> fmt::Result {
    let mut rest = json;
    while let Some(at) = rest.find('<') {
        out.write_str(&rest[..at])?;
        let tag = &rest[at..];
        let (safe, len) = if tag.starts_with("</") {
            ("<\\/", 2)
        } else if tag.starts_with("<!--") {
            ("\\u003c!--", 4)
        } else {
            ("<", 1)
        };
        out.write_str(safe)?;
        rest = &tag[len..];
    }
    out.write_str(rest)
}

fn domains(out: &mut dyn fmt::Write, f: &BodyFacts<'_>) -> fmt::Result {
    let r = f.report;
    write!(
        out,
        "<section id=\"domains\"><h2>Domains <span class=\"n\">{}</span></h2>",
        r.domains.len()
    )?;
    table_start(
        out,
        "domain",
        "Filter domains",
        &[
            "Domain",
            "Source",
            "Certificate",
            "Expires",
            "Provisioning",
            "Edge and DNS",
        ],
    )?;
    let certs: BTreeMap<&str, _> = r.certificates.iter().map(|c| (c.id, c)).collect();
    let mut by_domain: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for finding in r.findings {
        if let Some(d) = &finding.domain {
            by_domain.entry(d.as_str()).or_default().push(finding);
        }
    }
    table_end(out, "domain", r.domains.len(), &mut |i, row| {
        let d = &r.domains[i];
        let mine = by_domain
            .get(d.domain)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let cert = d.certificate_id.and_then(|id| certs.get(id)).copied();
        domain_row(row, d, cert, mine, f)
    })?;
    out.write_str("</section>\n")
}

/// One domain's row: marked with its worst finding, its certificate (`cert`, when the account
/// has it) and its findings (`mine`).
fn domain_row(
    out: &mut String,
    d: &DomainRow<'_>,
    cert: Option<&CertificateRow<'_>>,
    mine: &[&Finding],
    f: &BodyFacts<'_>,
) -> fmt::Result {
    let worst = mine.iter().map(|f| f.severity).max();
    let class = worst.map_or("", |s| match s {
        Severity::Critical => " class=\"sev-critical\"",
        Severity::Warning => " class=\"sev-warning\"",
        Severity::Info => "",
    });
    write!(
        out,
        "<tr{class}><td>{}</td><td>{}</td><td>",
        esc(d.domain),
        d.certificate_source
    )?;
    match cert {
        Some(c) => write!(
            out,
            "{}<br><code>{}</code></td><td data-sort=\"{}\">{}<br><span class=\"dim\">{}</span></td>",
            esc(c.subject_common_name),
            esc(c.id),
            c.not_after.unix_timestamp(),
            &format_time(c.not_after)[..10],
            relative(c.not_after - f.now)
        )?,
        None => {
            match d.certificate_id {
                Some(id) => write!(out, "<code>{}</code>", esc(id))?,
                None => out.write_str("—")?,
            }
            out.write_str("</td><td data-sort=\"0\">—</td>")?;
        }
    }
    write!(
        out,
        "<td>{}</td><td>{}</td></tr>",
        provisioning(d),
        edge_and_dns(mine, f.edge_probed),
    )
}

fn relative(left: time::Duration) -> String {
    if left <= time::Duration::ZERO {
        format!("expired {} ago", human(-left))
    } else {
        format!("in {}", human(left))
    }
}

fn provisioning(d: &DomainRow<'_>) -> String {
    match (d.provisioning_job, d.renews_at) {
        (Some(job), _) => match &job.error_code {
            Some(code) => format!("<span class=\"badge\">{}</span>", esc(code)),
            None => "in progress".to_string(),
        },
        (None, Some(at)) => format!("renews {}", &format_time(at)[..10]),
        (None, None) => "—".to_string(),
    }
}

/// The domain's `edge_*` and `dns_misconfigured` findings by kind, else what is known.
fn edge_and_dns(mine: &[&Finding], probed: bool) -> String {
    let edge: Vec<String> = mine
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                FindingKind::EdgeCertificateMismatch
                    | FindingKind::EdgeCertificateInvalid
                    | FindingKind::EdgeUnreachable
                    | FindingKind::DnsMisconfigured
            )
        })
        .map(|f| {
            format!(
                "<span class=\"badge sev-{}\">{}</span>",
                f.severity.as_str(),
                f.kind.as_str()
            )
        })
        .collect();
    match (edge.is_empty(), probed) {
        (false, _) => edge.join(" "),
        (true, true) => "ok".to_string(),
        (true, false) => "<span class=\"dim\">not probed</span>".to_string(),
    }
}

fn watches(
    out: &mut dyn fmt::Write,
    rows: &[WatchRow],
    findings: &[Finding],
    now: OffsetDateTime,
) -> fmt::Result {
    write!(
        out,
        "<section id=\"watches\"><h2>Watches <span class=\"n\">{}</span></h2>",
        rows.len()
    )?;
    if rows.is_empty() {
        return out.write_str("<p>No <code>[[watch]]</code> entries: certificate files on this host are not watched.</p></section>\n");
    }
    table_start(
        out,
        "watch",
        "Filter watches",
        &[
            "Watch",
            "Files",
            "Domains",
            "Expires on disk",
            "Last rotation",
            "State",
        ],
    )?;
    table_end(out, "watch", rows.len(), &mut |i, row| {
        watch_row(row, &rows[i], findings, now)
    })?;
    out.write_str("</section>\n")
}

/// One watch's row: marked with its worst finding (or as invalid).
fn watch_row(
    out: &mut String,
    w: &WatchRow,
    findings: &[Finding],
    now: OffsetDateTime,
) -> fmt::Result {
    let worst = findings
        .iter()
        .filter(|f| f.resource_id == w.name)
        .map(|f| f.severity)
        .max();
    let class = match (worst, &w.state) {
        (Some(Severity::Critical), _) => " class=\"sev-critical\"",
        (Some(Severity::Warning), _) | (_, WatchStatus::Invalid) => " class=\"sev-warning\"",
        _ => "",
    };
    let expiry = w
        .not_after
        .map_or("<td data-sort=\"0\">—</td>".to_string(), |t| {
            format!(
                "<td data-sort=\"{}\">{}<br><span class=\"dim\">{}</span></td>",
                t.unix_timestamp(),
                &format_time(t)[..10],
                relative(t - now)
            )
        });
    let rotation = w
        .last_rotation
        .map_or("none since the daemon started".to_string(), |r| {
            format!("{} ({} ago)", r.result, human(now - r.at))
        });
    let state = match &w.state {
        WatchStatus::Ok => "ok".to_string(),
        WatchStatus::Waiting(why) => format!("waiting: {}", esc(why)),
        WatchStatus::Invalid => "invalid (see its findings)".to_string(),
        WatchStatus::Skipped => "skipped: another process holds its rotation lock".to_string(),
    };
    write!(
        out,
        "<tr{class}><td>{}</td><td><code>{}</code><br><code>{}</code></td><td>{}</td>{expiry}<td>{rotation}</td><td>{state}</td></tr>",
        esc(&w.name),
        esc(&w.certificate),
        esc(&w.private_key),
        esc(&w.domains.join(", ")),
    )
}

/// HTML-escaped text, for element content and quoted attribute values alike.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FindingKind;
    use crate::outputs::report::{CertificateRow, DomainRow};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn cert<'a>(id: &'a str, days: i64, domains: Vec<&'a str>) -> CertificateRow<'a> {
        CertificateRow {
            id,
            subject_common_name: id,
            dns_names: &[],
            issuer_common_name: "CA",
            not_before: NOW - time::Duration::days(60),
            not_after: NOW + time::Duration::days(days),
            managed: false,
            domains,
        }
    }

    fn domain<'a>(id: &'a str, name: &'a str, cert: Option<&'a str>) -> DomainRow<'a> {
        DomainRow {
            id,
            domain: name,
            certificate_id: cert,
            certificate_source: if cert.is_some() { "uploaded" } else { "none" },
            renews_at: None,
            provisioning_job: None,
        }
    }

    fn render(findings: &[Finding]) -> String {
        render_probed(findings, false)
    }

    fn render_probed(findings: &[Finding], edge_probed: bool) -> String {
        let report = Report {
            checked_at: NOW,
            summary: Summary {
                certificates: 3,
                domains: 3,
                credentials: 0,
                critical: 1,
                warning: 0,
                info: 0,
            },
            findings,
            certificates: vec![
                cert("cert_old", -2, vec!["old.example.com"]),
                cert("cert_ok", 60, vec!["ok.example.com", "<b>.example.com"]),
                cert("cert_unused", 5, vec![]),
            ],
            domains: vec![
                domain("rd_1", "old.example.com", Some("cert_old")),
                domain("rd_2", "ok.example.com", Some("cert_ok")),
                domain("rd_3", "<b>.example.com", Some("cert_ok")),
            ],
            credentials: vec![],
        };
        body(&BodyFacts {
            report: &report,
            watches: &[],
            expiry: ExpiryPolicy::default(),
            edge_probed,
            now: NOW,
        })
    }

    fn finding(severity: Severity, kind: FindingKind, message: &str) -> Finding {
        Finding {
            severity,
            kind,
            resource_id: "cert_old".into(),
            domain: Some("old.example.com".into()),
            message: message.into(),
            not_after: None,
        }
    }

    #[test]
    fn one_mark_per_attached_certificate_expired_ones_left_of_now() {
        let html = render(&[]);
        assert_eq!(html.matches("class=\"mark ").count(), 2);
        assert!(
            !html.contains("cert_unused)"),
            "an unattached certificate has no mark"
        );
        let expired = html.split("class=\"mark expired\"").nth(1).unwrap();
        let cx: f64 = between(expired, "cx=\"", "\"").parse().unwrap();
        assert!(cx < X0, "{cx}");
        let ok = html.split("class=\"mark ok\"").nth(1).unwrap();
        let cx: f64 = between(ok, "cx=\"", "\"").parse().unwrap();
        assert!(
            (cx - X1).abs() < 0.5,
            "the furthest expiry is at the right edge: {cx}"
        );
    }

    #[test]
    fn a_mark_is_coloured_by_its_own_certificates_thresholds() {
        // The default warning is "30d or 33%", the earlier of the two: a 10-day certificate
        // warns 3.3 days before its end (as its finding does), well inside the 30-day band.
        let html = render(&[]);
        assert!(html.contains("class=\"mark ok\""), "60 days left: fine");
        let mut short = cert("cert_short", 5, vec!["ok.example.com"]);
        short.not_before = NOW - time::Duration::days(5);
        let policy = crate::model::ExpiryPolicy::default();
        assert_eq!(
            policy.stage(short.not_before, short.not_after, NOW),
            crate::model::expiry::Stage::Fine
        );
        let f = BodyFacts {
            report: &Report {
                checked_at: NOW,
                summary: Summary {
                    certificates: 1,
                    domains: 1,
                    credentials: 0,
                    critical: 0,
                    warning: 0,
                    info: 0,
                },
                findings: &[],
                // Two 90-day certificates: 20 days left is a warning, 5 critical.
                certificates: vec![
                    short,
                    ninety_day("cert_warn", 20, "warn.example.com"),
                    ninety_day("cert_crit", 5, "crit.example.com"),
                ],
                domains: vec![
                    domain("rd_2", "ok.example.com", Some("cert_short")),
                    domain("rd_3", "warn.example.com", Some("cert_warn")),
                    domain("rd_4", "crit.example.com", Some("cert_crit")),
                ],
                credentials: vec![],
            },
            watches: &[],
            expiry: policy,
            edge_probed: false,
            now: NOW,
        };
        let html = body(&f);
        let class = |i: usize| {
            between(
                html.split(&format!("data-i=\"{i}\""))
                    .next()
                    .unwrap()
                    .rsplit("<circle")
                    .next()
                    .unwrap(),
                "class=\"mark ",
                "\"",
            )
            .to_string()
        };
        // Soonest first (the two 5-day ones in the report's order): 5 days of a 10-day life
        // (fine), 5 days of 90 (critical), 20 days of 90 (warning).
        assert_eq!(
            [class(0), class(1), class(2)],
            ["ok", "critical", "warning"]
        );
    }

    fn ninety_day<'a>(id: &'a str, days_left: i64, name: &'a str) -> CertificateRow<'a> {
        let mut c = cert(id, days_left, vec![name]);
        c.not_before = c.not_after - time::Duration::days(90);
        c
    }

    fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
        let start = text.find(open).unwrap() + open.len();
        &text[start..start + text[start..].find(close).unwrap()]
    }

    #[test]
    fn findings_come_critical_first_with_advice_and_everything_is_escaped() {
        let html = render(&[
            finding(Severity::Info, FindingKind::CertificateUnattached, "unused"),
            finding(
                Severity::Critical,
                FindingKind::CertificateExpired,
                "expired <script>alert(1)</script>",
            ),
        ]);
        let critical = html.find("expired &lt;script&gt;").unwrap();
        assert!(critical < html.find("unused").unwrap());
        // Markup outside the data blocks is escaped; inside them, nothing can end the block.
        let markup: String = html
            .split("<script type=\"application/json\"")
            .map(|part| {
                part.split_once("</script>")
                    .map_or(part, |(_, after)| after)
            })
            .collect();
        assert!(!markup.contains("<script>"), "{markup}");
        assert!(!markup.contains("<b>"), "{markup}");
        assert!(!html.contains("</script>alert"));
        assert!(html.contains(&esc(crate::core::alerts::advice(
            FindingKind::CertificateExpired
        ))));
        // The domain's row is marked with its worst finding; edge and DNS are "not probed".
        let row = between(
            &html,
            "<tr class=\"sev-critical\"><td>old.example.com",
            "</tr>",
        );
        assert!(row.contains("not probed"), "{row}");
    }

    #[test]
    fn the_policy_hashes_the_style_and_script_that_are_sent() {
        let csp = content_security_policy();
        let hash = |t: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(t));
        assert!(csp.starts_with("default-src 'none';"));
        assert!(csp.contains(&format!("'sha256-{}'", hash(STYLE))));
        assert!(csp.contains(&format!("'sha256-{}'", hash(SCRIPT))));
        assert!(HEAD.contains(&format!("<style>{STYLE}</style>")));
        assert!(TAIL.contains(&format!("<script>{SCRIPT}</script>")));
    }

    #[test]
    fn the_edge_column_says_ok_only_once_probes_ran() {
        let edge = |html: &str, domain: &str| {
            let row = between(html, &format!("<td>{domain}</td>"), "</tr>");
            row.rsplit("<td>")
                .next()
                .unwrap()
                .trim_end_matches("</td>")
                .to_string()
        };
        let unreachable = finding(
            Severity::Warning,
            FindingKind::EdgeUnreachable,
            "no handshake",
        );
        for probed in [false, true] {
            let html = render_probed(std::slice::from_ref(&unreachable), probed);
            let healthy = edge(&html, "ok.example.com");
            let expected = if probed {
                "ok"
            } else {
                "<span class=\"dim\">not probed</span>"
            };
            assert_eq!(healthy, expected, "probed: {probed}");
            // A domain with an edge finding shows it either way.
            assert_eq!(
                edge(&html, "old.example.com"),
                "<span class=\"badge sev-warning\">edge_unreachable</span>"
            );
        }
    }

    #[test]
    fn the_data_blocks_hold_every_row_and_cannot_end_their_script() {
        let list: Vec<Finding> = (0..PAGE_SIZE + 50)
            .map(|i| {
                let message = format!("{i} </script><!-- \"quoted\" \\ \u{1}");
                finding(
                    Severity::Critical,
                    FindingKind::CertificateExpired,
                    &message,
                )
            })
            .collect();
        let html = render(&list);
        let data = between(
            &html,
            "<script type=\"application/json\" id=\"finding-rows\">",
            "</script>",
        );
        assert!(!data.contains("</") && !data.contains("<!--"), "{data}");
        let rows: Vec<String> = serde_json::from_str(data).unwrap();
        assert_eq!(rows.len(), list.len());
        assert!(rows[PAGE_SIZE + 49].contains("149 &lt;/script&gt;&lt;!-- &quot;quoted&quot;"));
        // The first page is in the table as HTML, the rest only as data.
        let table = between(&html, "<table id=\"finding-table\"", "</table>");
        let tbody = between(table, "<tbody>", "</tbody>");
        assert_eq!(tbody, rows[..PAGE_SIZE].concat());
        // The marks' names likewise.
        let labels = between(&html, "id=\"mark-labels\">", "</script>");
        let labels: Vec<String> = serde_json::from_str(labels).unwrap();
        assert_eq!(
            labels,
            [
                "cert_old (cert_old) expired 2 days ago, 2026-11-23T12:00:00Z: old.example.com",
                "cert_ok (cert_ok) expires in 60 days, 2027-01-24T12:00:00Z: ok.example.com, <b>.example.com",
            ]
        );
    }
}
