//! Delivery: one worker per webhook, fed the latest observation (a slow or dead receiver delays
//! only its own worker, never another or the sync loop), retries with backoff and jitter up to a
//! maximum age under one `webhook-id`, and the receiver's state kept durably in `state.dir`
//! (write, fsync, rename) so that a restart neither re-sends what was sent nor loses what was owed.
//!
//! Logs name a webhook by its name and the scheme and host of its URL only: URLs hold tokens.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{WebhookFormat, WebhookSettings};
use crate::core::alerts::{self, delivered, step, Notice, Observation, Policy, ReceiverState};
use crate::model::url::redacted_url;
use crate::outputs::alert_format as format;
use crate::outputs::metrics::Metrics;

/// How hard a worker tries.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryOptions {
    /// A message not delivered this long after its first attempt is given up (it is owed again
    /// at the next observation).
    pub max_age: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Per attempt.
    pub timeout: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 60),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The alerting side of the daemon: hand it each pass's observation.
pub struct Alerting {
    senders: Vec<watch::Sender<Option<Arc<Observation>>>>,
}

impl Alerting {
    /// Queues `obs` for every webhook, replacing one not yet picked up.
    pub fn observe(&self, obs: Observation) {
        let obs = Arc::new(obs);
        for s in &self.senders {
            s.send_replace(Some(Arc::clone(&obs)));
        }
    }
}

/// Starts one worker per webhook.
pub fn start(
    webhooks: &[WebhookSettings],
    state_dir: &Path,
    metrics: Arc<Metrics>,
    options: DeliveryOptions,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Alerting {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(options.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ngrok-cert-watchdog/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.without_url().to_string());
    let mut senders = Vec::new();
    for webhook in webhooks {
        let (tx, rx) = watch::channel(None);
        senders.push(tx);
        let http = match &http {
            Ok(h) => h.clone(),
            Err(e) => {
                tracing::error!(webhook = %webhook.name, "cannot build an HTTP client ({e}); this webhook is disabled");
                continue;
            }
        };
        let worker = Worker {
            webhook: webhook.clone(),
            state_path: state_dir.join(format!("alerts-{}.json", webhook.name)),
            metrics: Arc::clone(&metrics),
            options,
            http,
        };
        let shutdown = shutdown.clone();
        tracker.spawn(async move { worker.run(rx, shutdown).await });
    }
    Alerting { senders }
}

struct Worker {
    webhook: WebhookSettings,
    state_path: PathBuf,
    metrics: Arc<Metrics>,
    options: DeliveryOptions,
    http: reqwest::Client,
}

impl Worker {
    async fn run(
        self,
        mut rx: watch::Receiver<Option<Arc<Observation>>>,
        shutdown: CancellationToken,
    ) {
        let (mut state, corrupt) = load_state(&self.state_path);
        if corrupt {
            // Replace it now, or the warning would come back at every start.
            if let Err(e) = save_state(&self.state_path, &state) {
                tracing::error!(webhook = %self.webhook.name, "cannot save the alert state: {e}");
            }
        }
        let policy = Policy {
            format: self.webhook.format,
            min_severity: self.webhook.min_severity,
            repeat_interval: self.webhook.repeat_interval,
        };
        // Alertmanager forgets an alert once its endsAt passes: while no observation comes (a
        // slow sync), every firing alert is pushed again each sync interval (a third of endsAt).
        let mut keepalive_every: Option<Duration> = None;
        loop {
            let keepalive = async {
                match keepalive_every.filter(|_| policy.format == WebhookFormat::Alertmanager) {
                    Some(every) => tokio::time::sleep(every).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = keepalive => {
                    let notices = alerts::keepalive(&state);
                    let every = keepalive_every.unwrap_or_default();
                    self.deliver(&mut state, &notices, every, &rx, &shutdown, false).await;
                    continue;
                }
                changed = rx.changed() => if changed.is_err() { break },
            }
            let Some(obs) = rx.borrow_and_update().clone() else {
                continue;
            };
            keepalive_every = Some(obs.sync_interval);
            let (firing, notices) = step(&state, &obs, &policy);
            let changed = firing != state.firing;
            state.firing = firing;
            self.deliver(
                &mut state,
                &notices,
                obs.sync_interval,
                &rx,
                &shutdown,
                changed,
            )
            .await;
        }
    }

    /// Sends `notices` (if any) and records what the receiver was told; saves the state when
    /// anything changed.
    async fn deliver(
        &self,
        state: &mut ReceiverState,
        notices: &[Notice],
        sync_interval: Duration,
        rx: &watch::Receiver<Option<Arc<Observation>>>,
        shutdown: &CancellationToken,
        firing_changed: bool,
    ) {
        if !notices.is_empty() {
            let sent = tokio::select! {
                _ = shutdown.cancelled() => false,
                ok = self.send(notices, sync_interval * 3, rx) => ok,
            };
            if sent {
                delivered(state, notices, OffsetDateTime::now_utc());
            }
        }
        if firing_changed || !notices.is_empty() {
            if let Err(e) = save_state(&self.state_path, state) {
                tracing::error!(webhook = %self.webhook.name, "cannot save the alert state: {e}");
            }
        }
    }

    /// One message with retries; true once the receiver accepted it. Retrying stops when a newer
    /// observation is waiting: it recomputes what is owed (an Alertmanager `endsAt` computed
    /// long ago could already be past and would resolve the alert there).
    async fn send(
        &self,
        notices: &[Notice],
        ends_in: Duration,
        newer: &watch::Receiver<Option<Arc<Observation>>>,
    ) -> bool {
        let w = &self.webhook;
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let started = Instant::now();
        let mut backoff = self.options.initial_backoff;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // Built for each attempt: Alertmanager's endsAt counts from the sending.
            let (url, body) = self.message(notices, ends_in);
            let outcome = self.attempt(&url, &id, &body).await;
            match outcome {
                Ok(()) => {
                    self.metrics.record_delivery(&w.name, "success");
                    tracing::info!(webhook = %w.name, url = %redacted_url(&w.url), alerts = notices.len(), attempt, "webhook delivered");
                    return true;
                }
                Err(Failure::Permanent(reason)) => {
                    self.metrics.record_delivery(&w.name, "failure");
                    tracing::error!(webhook = %w.name, url = %redacted_url(&w.url), attempt, "webhook refused the message ({reason}); not retrying it, it is owed again at the next sync");
                    return false;
                }
                Err(Failure::Transient(reason)) => {
                    self.metrics.record_delivery(&w.name, "failure");
                    tracing::warn!(webhook = %w.name, url = %redacted_url(&w.url), attempt, "webhook delivery failed: {reason}");
                }
            }
            if newer.has_changed().unwrap_or(true) {
                tracing::info!(webhook = %w.name, "a newer sync supersedes this message");
                return false;
            }
            let jitter = rand::random::<f64>() * 0.5 + 0.75;
            let wait = backoff.mul_f64(jitter);
            if started.elapsed() + wait > self.options.max_age {
                self.metrics.record_delivery(&w.name, "expired");
                tracing::error!(webhook = %w.name, url = %redacted_url(&w.url), attempts = attempt, "giving up on this message; it is owed again at the next sync");
                return false;
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(self.options.max_backoff);
        }
    }

    /// The URL and body of one attempt, as of now.
    fn message(&self, notices: &[Notice], ends_in: Duration) -> (String, Vec<u8>) {
        let w = &self.webhook;
        let (url, body) = match w.format {
            WebhookFormat::Json => (w.url.to_string(), format::json_body(&w.name, notices)),
            WebhookFormat::Slack => (w.url.to_string(), format::slack_body(notices)),
            WebhookFormat::Alertmanager => {
                let now = OffsetDateTime::now_utc();
                (
                    format!("{}/api/v2/alerts", w.url.as_str().trim_end_matches('/')),
                    format::alertmanager_body(&alerts::stamped(notices, now, ends_in)),
                )
            }
        };
        (url, serde_json::to_vec(&body).unwrap_or_default())
    }

    async fn attempt(&self, url: &str, id: &str, body: &[u8]) -> Result<(), Failure> {
        let w = &self.webhook;
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in &w.headers {
            request = request.header(name.as_str(), value.expose_secret());
        }
        if w.format == WebhookFormat::Json {
            let timestamp = format::timestamp(OffsetDateTime::now_utc());
            request = request
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string());
            if let Some(secret) = &w.secret {
                if let Some(signature) = format::sign(secret.expose_secret(), id, timestamp, body) {
                    request = request.header("webhook-signature", signature);
                }
            }
        }
        match request.send().await {
            Ok(res) if res.status().is_success() => Ok(()),
            Ok(res) => {
                let status = res.status().as_u16();
                let reason = format!("HTTP {status}");
                // A client error other than a timeout or rate limit will not change on retry.
                if (400..500).contains(&status) && status != 408 && status != 429 {
                    Err(Failure::Permanent(reason))
                } else {
                    Err(Failure::Transient(reason))
                }
            }
            // Without the URL: it can hold a token.
            Err(e) => Err(Failure::Transient(if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else {
                e.without_url().to_string()
            })),
        }
    }
}

/// Why an attempt failed, and whether trying again can help.
enum Failure {
    /// The receiver refused the message: the same message will be refused again.
    Permanent(String),
    /// Timed out, could not connect, 5xx, 408, 429: worth another try.
    Transient(String),
}

/// The receiver state from `path`, and whether the file was corrupt; a missing file is a fresh
/// start, a corrupt or unreadable one is logged and replaced.
pub fn load_state(path: &Path) -> (ReceiverState, bool) {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(state) => (ReceiverState::with_current_ids(state), false),
            Err(e) => {
                tracing::warn!(file = %path.display(), "the alert state is corrupt ({e}); starting afresh (alerts may be sent again)");
                (ReceiverState::default(), true)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (ReceiverState::default(), false),
        Err(e) => {
            tracing::warn!(file = %path.display(), "cannot read the alert state ({}); starting afresh", crate::model::text::io_reason(&e));
            (ReceiverState::default(), true)
        }
    }
}

/// Atomically: a temporary file beside it, fsync, rename, fsync the directory.
pub fn save_state(path: &Path, state: &ReceiverState) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
