//! Configuration: the TOML file as written (`raw`, unknown keys rejected) → validated [`Settings`].
//!
//! Every problem is reported, one per line, naming the file, the key and what is wrong; nothing
//! here prints a secret (the API key is read into a [`SecretString`] and never formatted).

mod api;
mod probes;
mod problems;
mod raw;
mod sections;
mod watch;
mod webhook;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::model::fs;
use crate::model::trust::Trust;
use crate::model::url::redacted_url;
use crate::model::{ExpiryPolicy, Severity};

pub use sections::parse_cron;

use problems::Problems;
use raw::RawConfig;

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

/// The validated configuration. Its types rule out the bad states the file could express.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file this came from, for messages.
    pub source: PathBuf,
    pub api: ApiSettings,
    pub schedule: ScheduleSettings,
    pub expiry: ExpiryPolicy,
    pub metrics: MetricsSettings,
    pub edge: EdgeSettings,
    pub dns: DnsSettings,
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
    /// Requests in flight at once; the account limits this too (ERR_NGROK_225).
    pub max_concurrent_requests: NonZeroU32,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    /// The cron expression as written (seconds field, UTC).
    pub sync: String,
    pub cron: croner::Cron,
    /// The interval between two scheduled syncs (the shortest seen over the next few).
    pub interval: Duration,
    /// As set, or three intervals; see [`StaleAfter`] for what the daemon makes of a default.
    pub stale_after: Duration,
    pub stale_after_from: StaleAfter,
}

/// Where `schedule.stale_after` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleAfter {
    /// The file sets it: used as it is.
    File,
    /// Not set: three intervals, or twice the time the budget needs for one sync (known from
    /// the last sync) when that is longer.
    Default,
}

#[derive(Debug, Clone)]
pub struct MetricsSettings {
    pub listen: SocketAddr,
    /// `GET /` and `GET /api/v1/status` are served.
    pub status_page: bool,
    /// Host header values (lower case, without a port) the status page accepts besides the
    /// listen address and `localhost`.
    pub allowed_hosts: Vec<String>,
}

/// `[edge]`: TLS handshakes with each reserved domain, as visitors see it, and the trust every
/// chain check of the project uses.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    pub enabled: bool,
    pub interval: Duration,
    pub timeout: Duration,
    pub concurrency: NonZeroUsize,
    pub port: u16,
    pub failures_before_finding: NonZeroU32,
    /// After a rotation (or a re-issue of a managed certificate), how long the edge may still
    /// serve the replaced certificate.
    pub propagation_grace: Duration,
    /// Lowercase host name → where to connect instead of resolving it (like curl's --resolve).
    pub resolve: BTreeMap<String, SocketAddr>,
    /// `*.example.com` → the name to probe it at (`www.example.com`).
    pub wildcard_probe_names: BTreeMap<String, String>,
    /// The file `trust` was loaded from, for messages.
    pub trust_anchors: Option<PathBuf>,
    /// The public roots plus the anchors of `trust_anchors`.
    pub trust: Trust,
}

/// `[dns]`: the resolver of the DNS diagnosis (and of the edge probes' connections).
#[derive(Debug, Clone)]
pub struct DnsSettings {
    pub enabled: bool,
    /// Empty: the system's resolver configuration.
    pub nameservers: Vec<SocketAddr>,
    pub timeout: Duration,
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
    let text = fs::read_text(path, fs::MAX_FILE_BYTES).map_err(|e| ConfigError {
        problems: vec![format!("{file}: cannot read the configuration: {e}")],
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

/// Each section validates itself; every problem of the file is collected before failing.
fn validate(raw: RawConfig, path: &Path, env: &Environment) -> Result<Settings, ConfigError> {
    let mut p = Problems {
        file: path.display().to_string(),
        list: Vec::new(),
    };
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let api = raw.api.validate(base_dir, env, &mut p);
    let schedule = raw.schedule.validate(&mut p);
    let expiry = raw.expiry.validate(&mut p);
    let metrics = raw.metrics.validate(&mut p);
    let edge = raw.edge.validate(base_dir, &mut p);
    let dns = raw.dns.validate(&mut p);
    let state_dir = raw.state.validate(env);
    let watches = watch::validate_watches(raw.watch, base_dir, &mut p);
    let webhooks = webhook::validate_webhooks(raw.webhook, base_dir, &mut p);
    if !p.list.is_empty() {
        return Err(ConfigError { problems: p.list });
    }
    Ok(Settings {
        source: path.to_path_buf(),
        api,
        schedule,
        expiry,
        metrics,
        edge,
        dns,
        state_dir,
        watches,
        webhooks,
    })
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
        assert!(s.metrics.status_page);
        assert!(s.metrics.allowed_hosts.is_empty());
        assert_eq!(s.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(s.api.key.expose_secret(), "k3y");
        assert!(s.edge.enabled && s.dns.enabled);
        assert_eq!(s.edge.interval, Duration::from_secs(900));
        assert_eq!(s.edge.timeout, Duration::from_secs(10));
        assert_eq!(s.edge.concurrency.get(), 8);
        assert_eq!(s.edge.port, 443);
        assert_eq!(s.edge.failures_before_finding.get(), 3);
        assert_eq!(s.edge.propagation_grace, Duration::from_secs(600));
        assert_eq!(s.edge.trust.own_anchors(), 0);
        assert!(s.dns.nameservers.is_empty());
        assert_eq!(s.dns.timeout, Duration::from_secs(5));
    }

    #[test]
    fn edge_and_dns_keys_are_validated_with_their_names() {
        let ok = parse_str(
            r#"
[edge]
enabled = false
resolve = { "App.Example.com." = "127.0.0.1:8443" }
wildcard_probe_names = { "*.example.com" = "www.example.com" }
[dns]
nameservers = ["127.0.0.1:5353", "10.0.0.53"]
"#,
        )
        .unwrap();
        assert!(!ok.edge.enabled);
        assert_eq!(
            ok.edge.resolve["app.example.com"].to_string(),
            "127.0.0.1:8443"
        );
        assert_eq!(
            ok.edge.wildcard_probe_names["*.example.com"],
            "www.example.com"
        );
        assert_eq!(ok.dns.nameservers[1].to_string(), "10.0.0.53:53");

        let err = parse_str(
            r#"
[edge]
port = 70000
concurrency = 0
resolve = { "app.example.com" = "somewhere" }
wildcard_probe_names = { "*.example.com" = "a.b.example.com" }
trust_anchors = "/nonexistent/ca.pem"
[dns]
nameservers = ["resolver.local"]
"#,
        )
        .unwrap_err();
        let all = err.problems.join("\n");
        for key in [
            "edge.port",
            "edge.concurrency",
            "edge.resolve.\"app.example.com\"",
            "edge.wildcard_probe_names.\"*.example.com\"",
            "edge.trust_anchors: /nonexistent/ca.pem",
            "dns.nameservers[0]",
        ] {
            assert!(
                all.contains(&format!("config.toml: {key}")),
                "{key} in {all}"
            );
        }
    }

    #[test]
    fn trust_anchors_are_loaded_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let signer = crate::model::certs::generate::Signer::new("Test CA").unwrap();
        let names = ["app.example.com".to_string()];
        let now = time::OffsetDateTime::now_utc();
        let cert = signer
            .generate(&crate::model::certs::generate::Spec {
                common_name: "app.example.com",
                dns_names: &names,
                not_before: now - time::Duration::days(1),
                not_after: now + time::Duration::days(30),
            })
            .unwrap();
        // The CA is the chain's second certificate.
        let ca = &cert.chain_pem[cert.leaf_pem.len()..];
        std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
        std::fs::write(dir.path().join("junk.pem"), "hello").unwrap();
        let at = |file: &str| {
            parse(
                &format!("[edge]\ntrust_anchors = \"{file}\"\n"),
                &dir.path().join("config.toml"),
                &env_with_key(),
            )
        };
        assert_eq!(at("ca.pem").unwrap().edge.trust.own_anchors(), 1);
        let err = at("junk.pem").unwrap_err();
        assert!(err.problems[0].contains("edge.trust_anchors"), "{err}");
        assert!(err.problems[0].contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn the_status_page_can_be_turned_off_and_allowed_hosts_are_host_names() {
        let s = parse_str(
            "[metrics]\nstatus_page = false\nallowed_hosts = [\"Watchdog.Internal.\", \"w-1\"]\n",
        )
        .unwrap();
        assert!(!s.metrics.status_page);
        assert_eq!(s.metrics.allowed_hosts, ["watchdog.internal", "w-1"]);
        let err = parse_str("[metrics]\nallowed_hosts = [\"http://w:80\", \"\"]\n").unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.problems[0].contains("metrics.allowed_hosts"), "{err}");
        assert!(err.problems[0].contains("http://w:80"), "{err}");
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
    fn expiry_thresholds_take_durations_shares_or_both() {
        let s = parse_str("[expiry]\nwarning = \"33%\"\ncritical = \"2d or 5%\"\n").unwrap();
        assert_eq!(s.expiry.warning.to_string(), "33%");
        assert_eq!(s.expiry.critical.to_string(), "2d or 5%");
        for (warning, critical, key, why) in [
            ("0%", "7d", "expiry.warning", "more than 0%"),
            ("150%", "7d", "expiry.warning", "less than 100%"),
            ("30d or", "7d", "expiry.warning", "nothing after `or`"),
            ("30d", "or 33%", "expiry.critical", "nothing before `or`"),
            (
                "30d or 33%",
                "7d or 40%",
                "expiry.critical",
                "share 40% is more than",
            ),
            (
                "30d or 33%",
                "31d or 10%",
                "expiry.critical",
                "duration 31d is longer",
            ),
        ] {
            let text = format!("[expiry]\nwarning = \"{warning}\"\ncritical = \"{critical}\"\n");
            let err = parse_str(&text).unwrap_err();
            assert_eq!(err.problems.len(), 1, "{:?}", err.problems);
            let line = &err.problems[0];
            assert!(
                line.starts_with(&format!("/etc/w/config.toml: {key}: ")) && line.contains(why),
                "{warning:?}/{critical:?}: {line}"
            );
        }
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
    fn a_reload_tells_webhooks_apart_by_value_secrets_included() {
        let with = |header: &str| {
            parse_str(&format!(
                "[[webhook]]\nname = \"ops\"\nurl = \"https://hooks.example.com/T0/abc\"\nheaders = {{ \"X-Token\" = \"{header}\" }}\n"
            ))
            .unwrap()
            .webhooks
        };
        assert_eq!(with("one"), with("one"));
        // Their Debug text is the same (the value is redacted); the settings are not.
        assert_eq!(format!("{:?}", with("one")), format!("{:?}", with("two")));
        assert_ne!(with("one"), with("two"));
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
        assert_eq!(
            s.api.max_concurrent_requests,
            defaults.api.max_concurrent_requests
        );
        assert_eq!(s.api.max_concurrent_requests.get(), 2);
        assert_eq!(s.api.timeout, defaults.api.timeout);
        assert_eq!(s.schedule.sync, defaults.schedule.sync);
        assert_eq!(s.expiry, defaults.expiry);
        assert_eq!(s.metrics.listen, defaults.metrics.listen);
        assert_eq!(s.state_dir, defaults.state_dir);
        assert_eq!(s.edge.enabled, defaults.edge.enabled);
        assert_eq!(s.edge.interval, defaults.edge.interval);
        assert_eq!(s.edge.timeout, defaults.edge.timeout);
        assert_eq!(s.edge.concurrency, defaults.edge.concurrency);
        assert_eq!(s.edge.port, defaults.edge.port);
        assert_eq!(
            s.edge.failures_before_finding,
            defaults.edge.failures_before_finding
        );
        assert_eq!(s.edge.propagation_grace, defaults.edge.propagation_grace);
        // Safe as installed: no watch, no webhook, until the user uncomments one.
        assert_eq!(s.watches.len(), 0);
        assert_eq!(s.webhooks.len(), 0);
    }

    #[test]
    fn the_shipped_examples_of_watch_and_webhook_are_valid_when_uncommented() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ngrok-cert-watchdog.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text
            .find("# [[watch]]")
            .expect("a commented [[watch]] example");
        // "# key = ..." and "# [[table]]" lines are the example; "## ..." its explanations.
        let is_toml = |l: &&str| {
            l.starts_with("[[")
                || l.starts_with(|c: char| c.is_ascii_lowercase()) && l.contains(" = ")
        };
        let uncommented: String = text[start..]
            .lines()
            .map(|l| l.strip_prefix("# ").filter(is_toml).unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        let env = Environment {
            ngrok_api_key: Some("k".into()),
            ..Environment::default()
        };
        let s = parse(&format!("{}{uncommented}", &text[..start]), &path, &env).unwrap();
        assert_eq!(s.watches.len(), 1);
        assert_eq!(s.watches[0].name, "app");
        assert_eq!(s.webhooks.len(), 1);
    }
}
