//! The account's series, written straight from the inventory into the Prometheus text format
//! (version 0.0.4), once per successful sync.
//!
//! Not through a `prometheus::Registry`: a registry keeps every series as its own set of
//! label-pair objects and gathers a copy of them all to encode, about 1 KiB per series (~100 MB
//! held at once for a 100,000-domain account's ~500,000 series) for text of ~120 bytes a series.
//! Writing the text directly holds only the text. The daemon's own few dozen series stay in the
//! registry (`metrics`).

use std::fmt::Write as _;

use time::OffsetDateTime;

use crate::core::edge::EdgeRow;
use crate::sources::inventory::Inventory;

/// Where rendered text goes, piece by piece: a `String` keeps it whole; the daemon compresses
/// each piece as it comes (`metrics`), so the text of 500,000 series (~70 MB) never exists at
/// once.
pub trait Sink {
    fn take(&mut self, text: &str);
}

impl Sink for String {
    fn take(&mut self, text: &str) {
        self.push_str(text);
    }
}

/// Text-format output: one family at a time, its HELP and TYPE, then its samples. A family
/// without samples writes nothing (as a registry would not). Handed to the sink 64 KiB at a
/// time.
struct Text<'a> {
    out: String,
    sink: &'a mut dyn Sink,
    header: Option<String>,
}

const PIECE: usize = 64 * 1024;

impl<'a> Text<'a> {
    fn new(sink: &'a mut dyn Sink) -> Self {
        Self {
            out: String::with_capacity(PIECE + 1024),
            sink,
            header: None,
        }
    }

    /// Hands what is left to the sink.
    fn finish(mut self) {
        self.sink.take(&self.out);
        self.out.clear();
    }

    fn family(&mut self, name: &str, help: &str) {
        self.header = Some(format!(
            "# HELP {name} {}\n# TYPE {name} gauge\n",
            escape_help(help)
        ));
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        if let Some(header) = self.header.take() {
            self.out.push_str(&header);
        }
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape_label_value(&mut self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        if self.out.len() >= PIECE {
            self.sink.take(&self.out);
            self.out.clear();
        }
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn unix(t: OffsetDateTime) -> f64 {
    t.unix_timestamp() as f64
}

/// The edge's series (`ngrok_edge_*{domain}`), from the last probe of each domain, into `sink`.
pub fn render_edge_into(sink: &mut dyn Sink, rows: &[EdgeRow]) {
    let mut t = Text::new(sink);
    t.family(
        "ngrok_edge_probe_success",
        "1 when the last TLS handshake with the edge for a reserved domain showed a certificate, else 0.",
    );
    for r in rows {
        let value = if r.success { 1.0 } else { 0.0 };
        t.sample("ngrok_edge_probe_success", &[("domain", &r.domain)], value);
    }
    t.family(
        "ngrok_edge_certificate_not_after_timestamp_seconds",
        "When the certificate the edge serves for a reserved domain expires, Unix seconds.",
    );
    for r in rows {
        if let Some(at) = r.not_after {
            let name = "ngrok_edge_certificate_not_after_timestamp_seconds";
            t.sample(name, &[("domain", &r.domain)], unix(at));
        }
    }
    for (name, help, value) in [
        (
            "ngrok_edge_certificate_matches",
            "1 when the edge serves the certificate attached to the reserved domain, else 0.",
            (|r: &EdgeRow| r.matches) as fn(&EdgeRow) -> Option<bool>,
        ),
        (
            "ngrok_edge_certificate_valid",
            "1 when the chain the edge serves for a reserved domain verifies for its name (public roots and edge.trust_anchors), else 0.",
            |r: &EdgeRow| r.valid,
        ),
    ] {
        t.family(name, help);
        for r in rows {
            if let Some(v) = value(r) {
                t.sample(name, &[("domain", &r.domain)], if v { 1.0 } else { 0.0 });
            }
        }
    }
    t.finish();
}

/// The account's series, from one inventory, in the text format.
pub fn render_account(inventory: &Inventory) -> String {
    let mut out = String::new();
    render_account_into(&mut out, inventory);
    out
}

/// [`render_account`] into `sink`.
pub fn render_account_into(sink: &mut dyn Sink, inventory: &Inventory) {
    let mut t = Text::new(sink);
    certificate_series(&mut t, inventory);
    domain_series(&mut t, inventory);
    credential_series(&mut t, inventory);
    t.finish();
}

fn certificate_series(t: &mut Text<'_>, inventory: &Inventory) {
    for (name, help, when) in [
        (
            "ngrok_tls_certificate_not_after_timestamp_seconds",
            "When a TLS certificate of the account expires, Unix seconds.",
            true,
        ),
        (
            "ngrok_tls_certificate_not_before_timestamp_seconds",
            "When a TLS certificate of the account becomes valid, Unix seconds.",
            false,
        ),
    ] {
        t.family(name, help);
        for c in inventory.certificates() {
            let managed = if c.is_managed() { "true" } else { "false" };
            let cn = c.subject_common_name.as_deref().unwrap_or("");
            let at = if when { c.not_after } else { c.not_before };
            t.sample(
                name,
                &[
                    ("certificate_id", &c.id),
                    ("subject_common_name", cn),
                    ("managed", managed),
                ],
                unix(at),
            );
        }
    }
}

fn domain_series(t: &mut Text<'_>, inventory: &Inventory) {
    let name = "ngrok_reserved_domain_info";
    t.family(name, "Always 1; a reserved domain, its certificate and where the certificate comes from (uploaded, managed, none).");
    for d in inventory.domains() {
        let labels = [
            ("domain", d.domain.as_str()),
            ("domain_id", d.id.as_str()),
            ("certificate_id", d.certificate_id().unwrap_or("")),
            ("certificate_source", inventory.certificate_source(d)),
        ];
        t.sample(name, &labels, 1.0);
    }
    let name = "ngrok_reserved_domain_certificate_not_after_timestamp_seconds";
    t.family(
        name,
        "When the certificate a reserved domain uses expires, Unix seconds.",
    );
    for d in inventory.domains() {
        if let Some(c) = d.certificate_id().and_then(|id| inventory.certificate(id)) {
            t.sample(name, &[("domain", &d.domain)], unix(c.not_after));
        }
    }
    let name = "ngrok_reserved_domain_certificate_not_before_timestamp_seconds";
    t.family(
        name,
        "When the certificate a reserved domain uses became valid, Unix seconds (with not_after, its lifetime, which share-of-lifetime expiry thresholds need).",
    );
    for d in inventory.domains() {
        if let Some(c) = d.certificate_id().and_then(|id| inventory.certificate(id)) {
            t.sample(name, &[("domain", &d.domain)], unix(c.not_before));
        }
    }
    let name = "ngrok_reserved_domain_renews_at_timestamp_seconds";
    t.family(
        name,
        "When ngrok will renew the managed certificate of a reserved domain, Unix seconds.",
    );
    for d in inventory.domains() {
        if let Some(at) = d.renews_at() {
            t.sample(name, &[("domain", &d.domain)], unix(at));
        }
    }
    let name = "ngrok_reserved_domain_provisioning_failed";
    t.family(
        name,
        "1 while the certificate provisioning job of a reserved domain reports an error.",
    );
    for d in inventory.domains() {
        let code = d.provisioning_job().and_then(|j| j.error_code.as_deref());
        if let Some(code) = code.filter(|c| !c.is_empty()) {
            t.sample(name, &[("domain", &d.domain), ("error_code", code)], 1.0);
        }
    }
}

fn credential_series(t: &mut Text<'_>, inventory: &Inventory) {
    let name = "ngrok_credentials";
    t.family(
        name,
        "Tunnel credentials of the account, by whether an ACL restricts what they may bind.",
    );
    let all = inventory.credentials();
    let restricted = all.iter().filter(|c| c.is_restricted()).count();
    t.sample(
        name,
        &[("restricted", "false")],
        (all.len() - restricted) as f64,
    );
    t.sample(name, &[("restricted", "true")], restricted as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `write` puts in a `Text` over a `String`.
    fn text(write: impl FnOnce(&mut Text<'_>)) -> String {
        let mut out = String::new();
        let mut t = Text::new(&mut out);
        write(&mut t);
        t.finish();
        out
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let out = text(|t| {
            t.family("x", "a \\ b\nc");
            t.sample("x", &[("l", "q\"uo\\te\nd")], 1.5);
        });
        assert_eq!(
            out,
            "# HELP x a \\\\ b\\nc\n# TYPE x gauge\nx{l=\"q\\\"uo\\\\te\\nd\"} 1.5\n"
        );
    }

    #[test]
    fn a_family_without_samples_writes_nothing() {
        let out = text(|t| {
            t.family("x", "none");
            t.family("y", "one");
            t.sample("y", &[], 2.0);
        });
        assert_eq!(out, "# HELP y one\n# TYPE y gauge\ny 2\n");
    }

    #[test]
    fn whole_seconds_print_as_integers() {
        assert_eq!(
            text(|t| t.sample("x", &[], 1_764_000_000.0)),
            "x 1764000000\n"
        );
    }

    /// Counts the pieces a sink is handed.
    #[derive(Default)]
    struct Pieces {
        text: String,
        count: usize,
        largest: usize,
    }

    impl Sink for Pieces {
        fn take(&mut self, text: &str) {
            self.text.push_str(text);
            self.count += 1;
            self.largest = self.largest.max(text.len());
        }
    }

    #[test]
    fn long_text_reaches_the_sink_in_pieces_and_whole() {
        let mut pieces = Pieces::default();
        let mut t = Text::new(&mut pieces);
        t.family("x", "many");
        for i in 0..10_000 {
            t.sample("x", &[("domain", &format!("d{i}.example.com"))], 1.0);
        }
        t.finish();
        let whole = text(|t| {
            t.family("x", "many");
            for i in 0..10_000 {
                t.sample("x", &[("domain", &format!("d{i}.example.com"))], 1.0);
            }
        });
        assert_eq!(pieces.text, whole);
        assert!(pieces.count > 4, "{} pieces", pieces.count);
        assert!(pieces.largest < PIECE + 1024, "{}", pieces.largest);
    }
}
