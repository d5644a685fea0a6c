//! The sections for looking from outside the API: `[edge]` (TLS handshakes with each domain,
//! and the trust every chain check uses) and `[dns]` (the resolver of the DNS diagnosis).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::model::fs;
use crate::model::trust::Trust;

use super::problems::{resolve, Problems};
use super::raw::{RawDns, RawEdge};
use super::{DnsSettings, EdgeSettings};

impl RawEdge {
    pub(super) fn validate(self, base_dir: &Path, p: &mut Problems) -> EdgeSettings {
        let concurrency = p.whole_number(
            "edge.concurrency",
            self.concurrency,
            8,
            1024,
            "TLS handshakes at once",
        );
        let port = match self.port {
            None => 443,
            Some(n) => match u16::try_from(n).ok().filter(|n| *n > 0) {
                Some(n) => n,
                None => {
                    p.push("edge.port", format!("{n} is not a TCP port (1–65535)"));
                    443
                }
            },
        };
        let trust_anchors = self.trust_anchors.map(|f| resolve(base_dir, &f));
        let trust = match &trust_anchors {
            Some(file) => load_trust(file).unwrap_or_else(|why| {
                p.push("edge.trust_anchors", format!("{}: {why}", file.display()));
                Trust::public()
            }),
            None => Trust::public(),
        };
        EdgeSettings {
            enabled: self.enabled.unwrap_or(true),
            interval: p.duration("edge.interval", self.interval.as_deref(), "15m"),
            timeout: p.duration("edge.timeout", self.timeout.as_deref(), "10s"),
            concurrency: NonZeroUsize::new(concurrency.get() as usize).unwrap_or(NonZeroUsize::MIN),
            port,
            failures_before_finding: p.whole_number(
                "edge.failures_before_finding",
                self.failures_before_finding,
                3,
                1000,
                "failed probes in a row before edge_unreachable",
            ),
            propagation_grace: p.duration(
                "edge.propagation_grace",
                self.propagation_grace.as_deref(),
                "10m",
            ),
            resolve: resolve_table(self.resolve, p),
            wildcard_probe_names: wildcard_table(self.wildcard_probe_names, p),
            trust_anchors,
            trust,
        }
    }
}

impl RawDns {
    pub(super) fn validate(self, p: &mut Problems) -> DnsSettings {
        let mut nameservers = Vec::new();
        for (i, text) in self.nameservers.unwrap_or_default().iter().enumerate() {
            match nameserver(text) {
                Some(addr) => nameservers.push(addr),
                None => p.push(
                    &format!("dns.nameservers[{i}]"),
                    format!("\"{text}\" is not an IP address or address:port such as \"127.0.0.1:5353\""),
                ),
            }
        }
        DnsSettings {
            enabled: self.enabled.unwrap_or(true),
            nameservers,
            timeout: p.duration("dns.timeout", self.timeout.as_deref(), "5s"),
        }
    }
}

/// `"10.0.0.53"` (port 53) or `"10.0.0.53:5353"` or `"[::1]:53"`.
fn nameserver(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// A host name as the API writes it: lowercase, no trailing dot.
fn host_name(text: &str) -> Option<String> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .enumerate()
            .all(|(i, l)| (i == 0 && l == "*") || label_ok(l));
    ok.then_some(name)
}

fn resolve_table(raw: BTreeMap<String, String>, p: &mut Problems) -> BTreeMap<String, SocketAddr> {
    let mut table = BTreeMap::new();
    for (name, target) in raw {
        let key = format!("edge.resolve.\"{name}\"");
        let Some(host) = host_name(&name).filter(|h| !h.starts_with('*')) else {
            p.push(&key, "not a host name such as \"app.example.com\"");
            continue;
        };
        match target.trim().parse::<SocketAddr>() {
            Ok(addr) => {
                table.insert(host, addr);
            }
            Err(_) => p.push(
                &key,
                format!("\"{target}\" is not an address:port such as \"127.0.0.1:8443\""),
            ),
        }
    }
    table
}

fn wildcard_table(raw: BTreeMap<String, String>, p: &mut Problems) -> BTreeMap<String, String> {
    let mut table = BTreeMap::new();
    for (wildcard, probe) in raw {
        let key = format!("edge.wildcard_probe_names.\"{wildcard}\"");
        let Some(base) =
            host_name(&wildcard).and_then(|w| w.strip_prefix("*.").map(str::to_string))
        else {
            p.push(&key, "not a wildcard domain such as \"*.example.com\"");
            continue;
        };
        let covered = host_name(&probe).filter(|n| {
            n.strip_suffix(&base)
                .and_then(|label| label.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.') && label != "*")
        });
        match covered {
            Some(name) => {
                table.insert(format!("*.{base}"), name);
            }
            None => p.push(
                &key,
                format!(
                    "\"{probe}\" is not a name the wildcard covers (one label in place of the *)"
                ),
            ),
        }
    }
    table
}

/// The user's anchors: every certificate of a PEM file.
fn load_trust(file: &Path) -> Result<Trust, String> {
    let pem = fs::read_regular(file, fs::MAX_FILE_BYTES).map_err(|e| e.to_string())?;
    let mut ders = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        ders.push(cert.map_err(|_| "not a PEM file of certificates".to_string())?);
    }
    if ders.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Trust::with_anchors(&ders)
        .map_err(|(i, why)| format!("certificate {i} cannot be a trust anchor ({why})"))
}
