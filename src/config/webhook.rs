//! `[[webhook]]`: where alerts go, in which format, signed with which secret.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use secrecy::SecretString;
use url::Url;

use crate::model::fs;
use crate::model::url::redacted_url;
use crate::model::Severity;

use super::problems::{entry_name, resolve, Problems};
use super::raw::RawWebhook;
use super::{WebhookFormat, WebhookSettings};

/// Headers the watchdog sets on webhook requests; a second copy would break receivers.
const RESERVED_HEADERS: [&str; 6] = [
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Every valid webhook.
pub(super) fn validate_webhooks(
    raw: Vec<RawWebhook>,
    base_dir: &Path,
    p: &mut Problems,
) -> Vec<WebhookSettings> {
    let mut names = HashMap::new();
    let mut out = Vec::new();
    for (i, w) in raw.into_iter().enumerate() {
        let Some((label, name)) = entry_name("webhook", i, w.name.as_deref(), p) else {
            continue;
        };
        if names.insert(name.clone(), i).is_some() {
            p.push(
                &format!("{label}.name"),
                "appears in two [[webhook]] entries",
            );
        }
        let Some(url) = validate_url(w.url.as_deref(), &label, p) else {
            continue;
        };
        let format = match w.format.as_deref().unwrap_or("json") {
            "json" => WebhookFormat::Json,
            "slack" => WebhookFormat::Slack,
            "alertmanager" => WebhookFormat::Alertmanager,
            other => {
                p.push(
                    &format!("{label}.format"),
                    format!("\"{other}\" is not one of json, slack, alertmanager"),
                );
                WebhookFormat::Json
            }
        };
        let secret = match &w.secret_file {
            None => None,
            Some(_) if format != WebhookFormat::Json => {
                p.push(
                    &format!("{label}.secret_file"),
                    "signing applies to format = \"json\" only",
                );
                None
            }
            Some(path) => read_secret(&resolve(base_dir, path), &label, p),
        };
        let headers = validate_headers(w.headers, &label, p);
        let min_severity = match w.min_severity.as_deref().unwrap_or("warning") {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "critical" => Severity::Critical,
            other => {
                p.push(
                    &format!("{label}.min_severity"),
                    format!("\"{other}\" is not one of info, warning, critical"),
                );
                Severity::Warning
            }
        };
        let repeat_interval = p.duration(
            &format!("{label}.repeat_interval"),
            w.repeat_interval.as_deref(),
            "4h",
        );
        out.push(WebhookSettings {
            name,
            url,
            format,
            secret,
            headers,
            min_severity,
            repeat_interval,
        });
    }
    out
}

/// An http(s) URL. It may hold a token: problems say what is wrong without repeating it.
fn validate_url(text: Option<&str>, label: &str, p: &mut Problems) -> Option<Url> {
    let key = format!("{label}.url");
    match text.map(Url::parse) {
        Some(Ok(u)) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        Some(Ok(u)) => {
            p.push(&key, format!("{} is not an http(s) URL", redacted_url(&u)));
            None
        }
        Some(Err(e)) => {
            p.push(&key, format!("not a URL ({e})"));
            None
        }
        None => {
            p.push(&key, "missing");
            None
        }
    }
}

/// A Standard Webhooks secret: `whsec_` followed by base64.
fn read_secret(path: &Path, label: &str, p: &mut Problems) -> Option<SecretString> {
    let key = format!("{label}.secret_file");
    match fs::read_text(path, fs::MAX_FILE_BYTES) {
        Ok(text) => {
            let text = text.trim();
            let valid = text.strip_prefix("whsec_").is_some_and(|b64| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .is_ok_and(|key| !key.is_empty())
            });
            if !valid {
                p.push(
                    &key,
                    format!("{} must hold whsec_ followed by base64", path.display()),
                );
            }
            Some(SecretString::from(text.to_string()))
        }
        Err(e) => {
            p.push(&key, format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

/// Extra headers: valid names, none the watchdog sets itself, printable values (kept secret).
fn validate_headers(
    raw: BTreeMap<String, String>,
    label: &str,
    p: &mut Problems,
) -> Vec<(String, SecretString)> {
    let mut headers = Vec::new();
    for (k, v) in raw {
        let name_ok = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        if !name_ok {
            p.push(
                &format!("{label}.headers"),
                format!("\"{k}\" is not a header name"),
            );
        } else if RESERVED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
            p.push(
                &format!("{label}.headers"),
                format!("\"{k}\" is set by the watchdog itself"),
            );
        } else if !v.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
            p.push(
                &format!("{label}.headers.{k}"),
                "the value must be printable ASCII",
            );
        } else {
            headers.push((k, SecretString::from(v)));
        }
    }
    headers
}
