//! Configuration: the TOML file as written (`raw`, unknown keys rejected) → validated [`Settings`].
//!
//! Every problem is reported, one per line, naming the file, the key and what is wrong; nothing
//! here prints a secret (the API key is read into a [`SecretString`] and never formatted).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::model::text::io_reason;
use crate::model::url::{is_loopback_url, redacted_url};
use crate::model::{ExpiryPolicy, Severity};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/ngrok-cert-watchdog/config.toml";
pub const DEFAULT_API_URL: &str = "https://api.ngrok.com";
/// Outside 9100–9999, the range the Prometheus project hands out to exporters (now full).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:10742";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/ngrok-cert-watchdog";
pub const DEFAULT_SYNC: &str = "0 */5 * * * *";
/// The key file systemd's `LoadCredential=ngrok-api-key:…` provides.
pub const CREDENTIAL_NAME: &str = "ngrok-api-key";

/// Every problem found in one configuration, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.problems.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------- raw: the file as written

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(default)]
    expiry: RawExpiry,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    watch: Vec<RawWatch>,
    #[serde(default)]
    webhook: Vec<RawWebhook>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    url: Option<String>,
    key_file: Option<PathBuf>,
    requests_per_minute: Option<i64>,
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    sync: Option<String>,
    stale_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpiry {
    warning: Option<String>,
    critical: Option<String>,
    renewal_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    name: Option<String>,
    certificate: Option<PathBuf>,
    private_key: Option<PathBuf>,
    #[serde(default)]
    domains: Vec<String>,
    delete_replaced: Option<bool>,
    take_over_managed: Option<bool>,
    debounce: Option<String>,
    settle_timeout: Option<String>,
    poll_interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: Option<String>,
    url: Option<String>,
    format: Option<String>,
    secret_file: Option<PathBuf>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    min_severity: Option<String>,
    repeat_interval: Option<String>,
}

// ---------------------------------------------------------------- validated settings

/// The validated configuration. Its types rule out the bad states the file could express.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file this came from, for messages.
    pub source: PathBuf,
    pub api: ApiSettings,
    pub schedule: ScheduleSettings,
    pub expiry: ExpiryPolicy,
    pub metrics: MetricsSettings,
    pub state_dir: PathBuf,
    pub watches: Vec<WatchSettings>,
    pub webhooks: Vec<WebhookSettings>,
}

#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub url: Url,
    pub key: SecretString,
    /// Where the key came from, for messages (never the key itself).
    pub key_source: String,
    pub requests_per_minute: NonZeroU32,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    /// The cron expression as written (seconds field, UTC).
    pub sync: String,
    pub cron: croner::Cron,
    /// The interval between two scheduled syncs (the shortest seen over the next few).
    pub interval: Duration,
    pub stale_after: Duration,
}

#[derive(Debug, Clone)]
pub struct MetricsSettings {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
    pub name: String,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub domains: Vec<String>,
    pub delete_replaced: bool,
    pub take_over_managed: bool,
    pub debounce: Duration,
    pub settle_timeout: Duration,
    /// Poll the files at this interval instead of relying on inotify (NFS and the like).
    pub poll_interval: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Json,
    Slack,
    Alertmanager,
}

#[derive(Clone)]
pub struct WebhookSettings {
    pub name: String,
    /// Can hold a token (Slack's do): log only [`redacted_url`].
    pub url: Url,
    pub format: WebhookFormat,
    pub secret: Option<SecretString>,
    pub headers: Vec<(String, SecretString)>,
    pub min_severity: Severity,
    pub repeat_interval: Duration,
}

/// By value, secrets included (a reload must notice a changed token), without ever formatting them.
impl PartialEq for WebhookSettings {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret;
        let secret = |s: &Option<SecretString>| s.as_ref().map(|s| s.expose_secret().to_string());
        let headers = |h: &[(String, SecretString)]| -> Vec<(String, String)> {
            h.iter()
                .map(|(k, v)| (k.clone(), v.expose_secret().to_string()))
                .collect()
        };
        self.name == other.name
            && self.url == other.url
            && self.format == other.format
            && secret(&self.secret) == secret(&other.secret)
            && headers(&self.headers) == headers(&other.headers)
            && self.min_severity == other.min_severity
            && self.repeat_interval == other.repeat_interval
    }
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("name", &self.name)
            .field("url", &redacted_url(&self.url))
            .field("format", &self.format)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("min_severity", &self.min_severity)
            .field("repeat_interval", &self.repeat_interval)
            .finish()
    }
}

/// Where the process finds things outside the file: environment variables.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub ngrok_api_key: Option<String>,
    pub credentials_directory: Option<PathBuf>,
    pub state_directory: Option<PathBuf>,
}

impl Environment {
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            ngrok_api_key: var("NGROK_API_KEY"),
            credentials_directory: var("CREDENTIALS_DIRECTORY").map(PathBuf::from),
            // systemd may pass several, colon-separated; the first is ours.
            state_directory: var("STATE_DIRECTORY")
                .and_then(|v| v.split(':').next().map(PathBuf::from)),
        }
    }
}

/// Reads and validates the file at `path`.
pub fn load(path: &Path, env: &Environment) -> Result<Settings, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        problems: vec![format!(
            "{file}: cannot read the configuration: {}",
            io_reason(&e)
        )],
    })?;
    parse(&text, path, env)
}

/// Validates configuration text; `path` names it in messages and anchors nothing else.
pub fn parse(text: &str, path: &Path, env: &Environment) -> Result<Settings, ConfigError> {
    let file = path.display().to_string();
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
        problems: vec![toml_problem(&file, text, &e)],
    })?;
    validate(raw, path, env)
}

fn toml_problem(file: &str, text: &str, e: &toml::de::Error) -> String {
    // Our own line: toml's Display quotes the offending source line, which could be a header value.
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            // Up to the end of the offending line: the error may sit inside a `[table]` header.
            let start = span.start.min(text.len());
            let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            let table = text[..line_end]
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('['))
                .map(|l| format!(" in {l}"))
                .unwrap_or_default();
            format!("{file}: line {line}{table}: {message}")
        }
        None => format!("{file}: {message}"),
    }
}

struct Problems {
    file: String,
    list: Vec<String>,
}

impl Problems {
    fn push(&mut self, key: &str, what: impl fmt::Display) {
        self.list.push(format!("{}: {key}: {what}", self.file));
    }

    fn duration(&mut self, key: &str, value: Option<&str>, default: &str) -> Duration {
        let text = value.unwrap_or(default);
        match humantime::parse_duration(text) {
            Ok(d) if d.is_zero() => {
                self.push(key, format!("\"{text}\" must be longer than zero"));
                humantime::parse_duration(default).unwrap_or(Duration::from_secs(1))
            }
            Ok(d) => d,
            Err(e) => {
                self.push(
                    key,
                    format!(
                        "\"{text}\" is not a duration ({e}); write e.g. \"90s\", \"15m\", \"7d\""
                    ),
                );
                humantime::parse_duration(default).unwrap_or(Duration::from_secs(1))
            }
        }
    }
}

fn validate(raw: RawConfig, path: &Path, env: &Environment) -> Result<Settings, ConfigError> {
    let mut p = Problems {
        file: path.display().to_string(),
        list: Vec::new(),
    };
    let base_dir = path.parent().unwrap_or(Path::new("."));

    // [api]
    let url_text = raw.api.url.as_deref().unwrap_or(DEFAULT_API_URL);
    let url = match Url::parse(url_text) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => u,
        Ok(u) if u.scheme() == "http" && is_loopback_url(&u) => u,
        Ok(u) if u.scheme() == "http" => {
            p.push(
                "api.url",
                format!(
                    "plain http to {} would send the API key in clear text; use https (http is accepted only for a loopback address)",
                    u.host_str().unwrap_or("")
                ),
            );
            u
        }
        Ok(u) => {
            p.push("api.url", format!("scheme \"{}\" is not https", u.scheme()));
            u
        }
        Err(e) => {
            p.push("api.url", format!("\"{url_text}\" is not a URL ({e})"));
            Url::parse(DEFAULT_API_URL).expect("the default URL parses")
        }
    };
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        p.push("api.url", "must not carry credentials or a query");
    }
    let (key, key_source) = match read_api_key(raw.api.key_file.as_deref(), base_dir, env) {
        Ok(found) => found,
        Err((key, why)) => {
            p.push(key, why);
            (SecretString::from(String::new()), String::new())
        }
    };
    let requests_per_minute = match raw.api.requests_per_minute {
        None => NonZeroU32::new(60).expect("60 is not zero"),
        Some(n) if (1..=100_000).contains(&n) => {
            NonZeroU32::new(n as u32).expect("checked to be at least one")
        }
        Some(n) => {
            p.push(
                "api.requests_per_minute",
                format!("{n} is out of range: give a whole number from 1 (the account allows 120 per 60 s, shared with other tools)"),
            );
            NonZeroU32::new(60).expect("60 is not zero")
        }
    };
    let timeout = p.duration("api.timeout", raw.api.timeout.as_deref(), "10s");
    if timeout > Duration::from_secs(300) {
        p.push("api.timeout", "must be at most 5m");
    }

    // [schedule]
    let sync = raw
        .schedule
        .sync
        .clone()
        .unwrap_or_else(|| DEFAULT_SYNC.to_string());
    let (cron, interval) = match parse_cron(&sync) {
        Ok(found) => found,
        Err(why) => {
            p.push("schedule.sync", why);
            parse_cron(DEFAULT_SYNC).expect("the default schedule parses")
        }
    };
    let stale_after = match raw.schedule.stale_after.as_deref() {
        Some(text) => p.duration("schedule.stale_after", Some(text), "15m"),
        None => interval.saturating_mul(3),
    };

    // [expiry]
    let expiry = ExpiryPolicy {
        warning: p.duration("expiry.warning", raw.expiry.warning.as_deref(), "30d"),
        critical: p.duration("expiry.critical", raw.expiry.critical.as_deref(), "7d"),
        renewal_grace: p.duration(
            "expiry.renewal_grace",
            raw.expiry.renewal_grace.as_deref(),
            "24h",
        ),
    };
    if expiry.critical > expiry.warning {
        p.push(
            "expiry.critical",
            format!(
                "{} is longer than expiry.warning ({}): critical must come no earlier than warning",
                humantime::format_duration(expiry.critical),
                humantime::format_duration(expiry.warning)
            ),
        );
    }

    // [metrics]
    let listen_text = raw
        .metrics
        .listen
        .as_deref()
        .unwrap_or(DEFAULT_METRICS_LISTEN);
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            p.push(
                "metrics.listen",
                format!("\"{listen_text}\" is not an address:port such as \"127.0.0.1:10742\""),
            );
            DEFAULT_METRICS_LISTEN.parse().expect("the default parses")
        }
    };

    // [state]
    let state_dir = match (raw.state.dir, &env.state_directory) {
        (Some(dir), _) => dir,
        (None, Some(dir)) => dir.clone(),
        (None, None) => PathBuf::from(DEFAULT_STATE_DIR),
    };

    let watches = validate_watches(raw.watch, base_dir, &mut p);
    let webhooks = validate_webhooks(raw.webhook, base_dir, &mut p);

    if !p.list.is_empty() {
        return Err(ConfigError { problems: p.list });
    }
    Ok(Settings {
        source: path.to_path_buf(),
        api: ApiSettings {
            url,
            key,
            key_source,
            requests_per_minute,
            timeout,
        },
        schedule: ScheduleSettings {
            sync,
            cron,
            interval,
            stale_after,
        },
        expiry,
        metrics: MetricsSettings { listen },
        state_dir,
        watches,
        webhooks,
    })
}

/// The API key: `api.key_file`, else `NGROK_API_KEY`, else `$CREDENTIALS_DIRECTORY/ngrok-api-key`.
fn read_api_key(
    key_file: Option<&Path>,
    base_dir: &Path,
    env: &Environment,
) -> Result<(SecretString, String), (&'static str, String)> {
    let from_file = |path: &Path, key: &'static str| {
        let text = std::fs::read_to_string(path).map_err(|e| {
            (
                key,
                format!(
                    "cannot read the API key from {}: {}",
                    path.display(),
                    io_reason(&e)
                ),
            )
        })?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err((key, format!("the API key file {} is empty", path.display())));
        }
        if !valid_key(trimmed) {
            return Err((
                key,
                format!(
                    "the API key file {} holds more than one token (whitespace or control characters inside)",
                    path.display()
                ),
            ));
        }
        Ok((
            SecretString::from(trimmed.to_string()),
            path.display().to_string(),
        ))
    };
    if let Some(path) = key_file {
        return from_file(&resolve(base_dir, path), "api.key_file");
    }
    if let Some(key) = &env.ngrok_api_key {
        let trimmed = key.trim();
        if !valid_key(trimmed) {
            return Err((
                "api.key_file",
                "NGROK_API_KEY holds whitespace or control characters inside the key".to_string(),
            ));
        }
        return Ok((
            SecretString::from(trimmed.to_string()),
            "the NGROK_API_KEY environment variable".to_string(),
        ));
    }
    if let Some(dir) = &env.credentials_directory {
        return from_file(&dir.join(CREDENTIAL_NAME), "api.key_file");
    }
    Err((
        "api.key_file",
        "no API key: set api.key_file, or the NGROK_API_KEY environment variable, or provide the systemd credential ngrok-api-key (LoadCredential=)".to_string(),
    ))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_graphic())
}

/// Relative paths in the file are relative to the file.
fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

/// A cron expression with a seconds field (as tokio-cron-scheduler parses it) and its interval.
pub fn parse_cron(text: &str) -> Result<(croner::Cron, Duration), String> {
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(text)
        .map_err(|e| {
            format!("\"{text}\" is not a cron expression with a seconds field ({e}); e.g. \"0 */5 * * * *\" for every five minutes")
        })?;
    // The longest gap over the next occurrences: stale_after and Alertmanager's endsAt must
    // outlast the longest wait between two syncs ("0 0,5 * * * *" waits 55 minutes once an hour).
    let never = |e: croner::errors::CronError| format!("\"{text}\" never fires ({e})");
    let mut at = cron
        .find_next_occurrence(&chrono::Utc::now(), false)
        .map_err(never)?;
    let mut longest: Option<Duration> = None;
    for _ in 0..256 {
        let next = cron.find_next_occurrence(&at, false).map_err(never)?;
        let gap = (next - at).to_std().unwrap_or(Duration::ZERO);
        if !gap.is_zero() {
            longest = Some(longest.map_or(gap, |s| s.max(gap)));
        }
        at = next;
    }
    let interval = longest.ok_or_else(|| format!("\"{text}\" never fires twice"))?;
    Ok((cron, interval))
}

fn validate_watches(raw: Vec<RawWatch>, base_dir: &Path, p: &mut Problems) -> Vec<WatchSettings> {
    let mut names = HashMap::new();
    let mut owners: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for (i, w) in raw.into_iter().enumerate() {
        let label = match &w.name {
            Some(n) => format!("watch \"{n}\""),
            None => format!("watch[{i}]"),
        };
        let name = match w.name.as_deref().map(str::trim) {
            Some(n) if valid_name(n) => n.to_string(),
            Some(n) => {
                p.push(
                    &format!("{label}.name"),
                    format!("\"{n}\" must be 1–64 letters, digits, '-', '_' or '.'"),
                );
                continue;
            }
            None => {
                p.push(
                    &format!("{label}.name"),
                    "missing: every [[watch]] needs a name",
                );
                continue;
            }
        };
        if names.insert(name.clone(), i).is_some() {
            p.push(&format!("{label}.name"), "appears in two [[watch]] entries");
        }
        let certificate = match &w.certificate {
            Some(c) => resolve(base_dir, c),
            None => {
                p.push(
                    &format!("{label}.certificate"),
                    "missing: the path of the certificate chain (leaf first)",
                );
                PathBuf::new()
            }
        };
        let private_key = match &w.private_key {
            Some(k) => resolve(base_dir, k),
            None => {
                p.push(
                    &format!("{label}.private_key"),
                    "missing: the path of the private key",
                );
                PathBuf::new()
            }
        };
        if w.domains.is_empty() {
            p.push(
                &format!("{label}.domains"),
                "empty: name the reserved domains this certificate serves",
            );
        }
        let mut domains = Vec::new();
        for d in &w.domains {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() || d.contains(char::is_whitespace) || d.contains('/') {
                p.push(
                    &format!("{label}.domains"),
                    format!("\"{d}\" is not a domain name"),
                );
                continue;
            }
            if let Some(other) = owners.insert(d.clone(), name.clone()) {
                if other == name {
                    p.push(
                        &format!("{label}.domains"),
                        format!("\"{d}\" is listed twice"),
                    );
                } else {
                    p.push(
                        &format!("{label}.domains"),
                        format!("\"{d}\" is also in watch \"{other}\": a domain may be in one watch only"),
                    );
                }
                continue;
            }
            domains.push(d);
        }
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

fn validate_webhooks(
    raw: Vec<RawWebhook>,
    base_dir: &Path,
    p: &mut Problems,
) -> Vec<WebhookSettings> {
    let mut names = HashMap::new();
    let mut out = Vec::new();
    for (i, w) in raw.into_iter().enumerate() {
        let label = match &w.name {
            Some(n) => format!("webhook \"{n}\""),
            None => format!("webhook[{i}]"),
        };
        let name = match w.name.as_deref().map(str::trim) {
            Some(n) if valid_name(n) => n.to_string(),
            Some(n) => {
                p.push(
                    &format!("{label}.name"),
                    format!("\"{n}\" must be 1–64 letters, digits, '-', '_' or '.'"),
                );
                continue;
            }
            None => {
                p.push(
                    &format!("{label}.name"),
                    "missing: every [[webhook]] needs a name",
                );
                continue;
            }
        };
        if names.insert(name.clone(), i).is_some() {
            p.push(
                &format!("{label}.name"),
                "appears in two [[webhook]] entries",
            );
        }
        let url = match w.url.as_deref().map(Url::parse) {
            Some(Ok(u)) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            Some(Ok(u)) => {
                p.push(
                    &format!("{label}.url"),
                    format!("{} is not an http(s) URL", redacted_url(&u)),
                );
                continue;
            }
            // The URL may hold a token: say what is wrong without repeating it.
            Some(Err(e)) => {
                p.push(&format!("{label}.url"), format!("not a URL ({e})"));
                continue;
            }
            None => {
                p.push(&format!("{label}.url"), "missing");
                continue;
            }
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
            Some(path) => {
                let path = resolve(base_dir, path);
                match std::fs::read_to_string(&path) {
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
                                &format!("{label}.secret_file"),
                                format!("{} must hold whsec_ followed by base64", path.display()),
                            );
                        }
                        Some(SecretString::from(text.to_string()))
                    }
                    Err(e) => {
                        p.push(
                            &format!("{label}.secret_file"),
                            format!("cannot read {}: {}", path.display(), io_reason(&e)),
                        );
                        None
                    }
                }
            }
        };
        let mut headers = Vec::new();
        for (k, v) in w.headers {
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

/// Headers the watchdog sets on webhook requests; a second copy would break receivers.
const RESERVED_HEADERS: [&str; 6] = [
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// An I/O error without the path (the caller names it) and without Rust's `(os error N)` noise.
#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env_with_key() -> Environment {
        Environment {
            ngrok_api_key: Some("k3y".into()),
            ..Environment::default()
        }
    }

    fn parse_str(text: &str) -> Result<Settings, ConfigError> {
        parse(text, Path::new("/etc/w/config.toml"), &env_with_key())
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let s = parse_str("").unwrap();
        assert_eq!(s.api.url.as_str(), "https://api.ngrok.com/");
        assert_eq!(s.api.requests_per_minute.get(), 60);
        assert_eq!(s.api.timeout, Duration::from_secs(10));
        assert_eq!(s.schedule.interval, Duration::from_secs(300));
        assert_eq!(s.schedule.stale_after, Duration::from_secs(900));
        assert_eq!(s.expiry, ExpiryPolicy::default());
        assert_eq!(s.metrics.listen.to_string(), DEFAULT_METRICS_LISTEN);
        assert_eq!(s.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(s.api.key.expose_secret(), "k3y");
    }

    #[test]
    fn unknown_keys_name_the_file_line_and_table() {
        let err =
            parse_str("[api]\nurl = \"https://api.ngrok.com\"\nkeyfile = \"x\"\n").unwrap_err();
        assert_eq!(err.problems.len(), 1);
        let line = &err.problems[0];
        assert!(
            line.starts_with("/etc/w/config.toml: line 3 in [api]: unknown field `keyfile`"),
            "{line}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = r#"
[api]
url = "http://api.ngrok.com"
requests_per_minute = 0
timeout = "soon"
[schedule]
sync = "every five minutes"
[expiry]
warning = "7d"
critical = "30d"
[metrics]
listen = "localhost"
"#;
        let err = parse_str(text).unwrap_err();
        let keys: Vec<&str> = err
            .problems
            .iter()
            .map(|l| l.split(": ").nth(1).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "api.url",
                "api.requests_per_minute",
                "api.timeout",
                "schedule.sync",
                "expiry.critical",
                "metrics.listen"
            ]
        );
        assert!(err
            .problems
            .iter()
            .all(|l| l.starts_with("/etc/w/config.toml: ")));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(parse_str("[api]\nurl = \"http://127.0.0.1:4040\"").is_ok());
        assert!(parse_str("[api]\nurl = \"http://[::1]:4040\"").is_ok());
        assert!(parse_str("[api]\nurl = \"http://192.168.1.5:4040\"").is_err());
    }

    #[test]
    fn api_key_sources_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "from-file\n").unwrap();
        std::fs::write(dir.path().join(CREDENTIAL_NAME), "from-credential").unwrap();
        let path = dir.path().join("config.toml");
        let all = Environment {
            ngrok_api_key: Some("from-env".into()),
            credentials_directory: Some(dir.path().to_path_buf()),
            state_directory: None,
        };
        let s = parse("[api]\nkey_file = \"key\"", &path, &all).unwrap();
        assert_eq!(s.api.key.expose_secret(), "from-file");
        let s = parse("", &path, &all).unwrap();
        assert_eq!(s.api.key.expose_secret(), "from-env");
        let cred_only = Environment {
            ngrok_api_key: None,
            ..all.clone()
        };
        let s = parse("", &path, &cred_only).unwrap();
        assert_eq!(s.api.key.expose_secret(), "from-credential");
        let err = parse("", &path, &Environment::default()).unwrap_err();
        assert!(
            err.problems[0].contains("api.key_file: no API key"),
            "{err}"
        );
        let err = parse("[api]\nkey_file = \"missing\"", &path, &all).unwrap_err();
        assert!(err.problems[0].ends_with("missing: no such file"), "{err}");
    }

    #[test]
    fn errors_never_print_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "two words").unwrap();
        let err = parse(
            "[api]\nkey_file = \"key\"",
            &dir.path().join("c.toml"),
            &Environment::default(),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("two words"), "{err}");
    }

    #[test]
    fn watches_domain_in_one_watch_only() {
        let text = r#"
[[watch]]
name = "a"
certificate = "a.pem"
private_key = "a.key"
domains = ["App.example.com"]
[[watch]]
name = "b"
certificate = "/x/b.pem"
private_key = "/x/b.key"
domains = ["app.example.com"]
"#;
        let err = parse_str(text).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(err.problems[0]
            .contains("watch \"b\".domains: \"app.example.com\" is also in watch \"a\""));
        let ok = parse_str(&text.replace(
            "domains = [\"app.example.com\"]",
            "domains = [\"api.example.com\"]",
        ))
        .unwrap();
        assert_eq!(ok.watches[0].certificate, PathBuf::from("/etc/w/a.pem"));
        assert_eq!(ok.watches[0].debounce, Duration::from_secs(2));
        assert!(!ok.watches[0].delete_replaced && !ok.watches[0].take_over_managed);
    }

    #[test]
    fn webhooks_validate_and_redact() {
        let text = r#"
[[webhook]]
name = "ops"
url = "https://hooks.slack.com/services/T000/B000/SECRETTOKEN"
format = "slack"
headers = { "X-Team" = "edge" }
min_severity = "critical"
"#;
        let s = parse_str(text).unwrap();
        let w = &s.webhooks[0];
        assert_eq!(w.format, WebhookFormat::Slack);
        assert_eq!(w.min_severity, Severity::Critical);
        assert_eq!(w.repeat_interval, Duration::from_secs(4 * 3600));
        let debug = format!("{w:?}");
        assert!(
            !debug.contains("SECRETTOKEN") && !debug.contains("edge"),
            "{debug}"
        );
        let err = parse_str(&text.replace("slack", "teams")).unwrap_err();
        assert!(err.problems[0].contains("webhook \"ops\".format: \"teams\""));
    }

    #[test]
    fn stale_after_defaults_to_three_intervals() {
        let s = parse_str("[schedule]\nsync = \"*/20 * * * * *\"").unwrap();
        assert_eq!(s.schedule.interval, Duration::from_secs(20));
        assert_eq!(s.schedule.stale_after, Duration::from_secs(60));
        let s = parse_str("[schedule]\nsync = \"0 0 * * * *\"\nstale_after = \"5h\"").unwrap();
        assert_eq!(s.schedule.stale_after, Duration::from_secs(5 * 3600));
    }
}

#[cfg(test)]
mod shipped_example {
    use super::*;

    #[test]
    fn the_shipped_example_is_valid_and_shows_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ngrok-cert-watchdog.toml");
        let env = Environment {
            ngrok_api_key: Some("k".into()),
            ..Environment::default()
        };
        let s = load(&path, &env).unwrap();
        let defaults = parse("", &path, &env).unwrap();
        assert_eq!(s.api.url, defaults.api.url);
        assert_eq!(s.api.requests_per_minute, defaults.api.requests_per_minute);
        assert_eq!(s.api.timeout, defaults.api.timeout);
        assert_eq!(s.schedule.sync, defaults.schedule.sync);
        assert_eq!(s.expiry, defaults.expiry);
        assert_eq!(s.metrics.listen, defaults.metrics.listen);
        assert_eq!(s.state_dir, defaults.state_dir);
        assert_eq!(s.watches.len(), 1);
        assert_eq!(s.webhooks.len(), 1);
    }
}
