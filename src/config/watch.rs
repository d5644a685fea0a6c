//! `[[watch]]`: certificate files that rotate on disk and the reserved domains they serve.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::problems::{entry_name, resolve, Problems};
use super::raw::RawWatch;
use super::WatchSettings;

/// Every valid watch; a domain may be in one watch only.
pub(super) fn validate_watches(
    raw: Vec<RawWatch>,
    base_dir: &Path,
    p: &mut Problems,
) -> Vec<WatchSettings> {
    let mut names = HashMap::new();
    let mut owners: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for (i, w) in raw.into_iter().enumerate() {
        let Some((label, name)) = entry_name("watch", i, w.name.as_deref(), p) else {
            continue;
        };
        if names.insert(name.clone(), i).is_some() {
            p.push(&format!("{label}.name"), "appears in two [[watch]] entries");
        }
        let mut path = |value: &Option<PathBuf>, key: &str, what: &str| match value {
            Some(v) => resolve(base_dir, v),
            None => {
                p.push(&format!("{label}.{key}"), format!("missing: {what}"));
                PathBuf::new()
            }
        };
        let certificate = path(
            &w.certificate,
            "certificate",
            "the path of the certificate chain (leaf first)",
        );
        let private_key = path(&w.private_key, "private_key", "the path of the private key");
        let domains = validate_domains(&w.domains, &label, &name, &mut owners, p);
        let debounce = p.duration(&format!("{label}.debounce"), w.debounce.as_deref(), "2s");
        let settle_timeout = p.duration(
            &format!("{label}.settle_timeout"),
            w.settle_timeout.as_deref(),
            "60s",
        );
        let poll_interval = w
            .poll_interval
            .as_deref()
            .map(|t| p.duration(&format!("{label}.poll_interval"), Some(t), "30s"));
        out.push(WatchSettings {
            name,
            certificate,
            private_key,
            domains,
            delete_replaced: w.delete_replaced.unwrap_or(false),
            take_over_managed: w.take_over_managed.unwrap_or(false),
            debounce,
            settle_timeout,
            poll_interval,
        });
    }
    out
}

/// The watch's domain names, normalised; `owners` maps each name to the watch that has it.
fn validate_domains(
    raw: &[String],
    label: &str,
    name: &str,
    owners: &mut HashMap<String, String>,
    p: &mut Problems,
) -> Vec<String> {
    let key = format!("{label}.domains");
    if raw.is_empty() {
        p.push(
            &key,
            "empty: name the reserved domains this certificate serves",
        );
    }
    let mut domains = Vec::new();
    for d in raw {
        let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
        if d.is_empty() || d.contains(char::is_whitespace) || d.contains('/') {
            p.push(&key, format!("\"{d}\" is not a domain name"));
            continue;
        }
        if let Some(other) = owners.insert(d.clone(), name.to_string()) {
            if other == name {
                p.push(&key, format!("\"{d}\" is listed twice"));
            } else {
                p.push(
                    &key,
                    format!(
                        "\"{d}\" is also in watch \"{other}\": a domain may be in one watch only"
                    ),
                );
            }
            continue;
        }
        domains.push(d);
    }
    domains
}

#[cfg(test)]
impl WatchSettings {
    /// A watch named `app` of `/certs/fullchain.pem` and `/certs/privkey.pem` for `domains`,
    /// with the defaults and `delete_replaced` on: the unit tests' watch.
    pub(crate) fn for_test(domains: &[&str]) -> Self {
        Self {
            name: "app".into(),
            certificate: PathBuf::from("/certs/fullchain.pem"),
            private_key: PathBuf::from("/certs/privkey.pem"),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            delete_replaced: true,
            take_over_managed: false,
            debounce: std::time::Duration::from_secs(2),
            settle_timeout: std::time::Duration::from_secs(60),
            poll_interval: None,
        }
    }
}
