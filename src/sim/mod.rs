//! The ngrok API simulator: an in-memory account served over HTTP the way the reference
//! describes (auth, `Ngrok-Version`, rate limit, pagination, validation, error bodies), plus
//! fault injection and a request log for tests, also reachable over HTTP under `/_sim/`.
//!
//! Used by `simulate`, `demo` and the test suite. It never touches the network beyond the
//! listener it is given.

pub mod account;
pub mod seed;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use account::{Account, SimError};

/// The documented message of ERR_NGROK_218.
pub const MISSING_VERSION_MSG: &str = "Your request has not specified an API version. Please include the version you wish to use in the Ngrok-Version header. Supported versions: 2.";

/// Requests allowed per rolling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
}

impl Default for RateLimit {
    /// The account limit of the reference: 120 requests over a rolling 60 s.
    fn default() -> Self {
        Self {
            requests: 120,
            window: Duration::from_secs(60),
        }
    }
}

/// Parses `N/DURATION` (e.g. `120/60s`) or `off`.
pub fn parse_rate_limit(s: &str) -> Result<Option<RateLimit>, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (n, window) = s
        .split_once('/')
        .ok_or_else(|| format!("--rate-limit {s:?}: expected N/DURATION (e.g. 120/60s) or off"))?;
    let requests: u32 = n
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("--rate-limit {s:?}: {n:?} is not a positive number"))?;
    let window = humantime::parse_duration(window.trim())
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--rate-limit {s:?}: {window:?} is not a duration like 60s"))?;
    Ok(Some(RateLimit { requests, window }))
}

/// A fault to inject into the next `count` requests whose path starts with `path` (and whose
/// method matches, when given).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    pub path: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(flatten)]
    pub kind: FaultKind,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this status and an error body, without processing the request.
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Process the request after a delay.
    Latency { millis: u64 },
    /// Process the request, then break the connection instead of answering.
    Drop,
    /// Process the request, then answer 200 with a body that is not JSON.
    Garbage,
    /// Process the request, then send half of the answer and break the connection.
    Truncated,
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
}

/// Options of a simulator instance.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    pub rate_limit: Option<RateLimit>,
}

struct Shared {
    api_key: SecretString,
    rate_limit: Mutex<Option<RateLimit>>,
    account: Mutex<Account>,
    faults: Mutex<Vec<Fault>>,
    requests: Mutex<Vec<LoggedRequest>>,
    accepted: Mutex<VecDeque<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running simulator.
pub struct Sim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Sim {
    /// Serves on `listener` until [`Sim::stop`].
    pub fn start(
        listener: TcpListener,
        api_key: SecretString,
        options: SimOptions,
    ) -> std::io::Result<Sim> {
        let addr = listener.local_addr()?;
        let account = Account::new(format!("http://{addr}"), OffsetDateTime::now_utc());
        Ok(Self::serve(listener, addr, api_key, options, account))
    }

    /// Loads `seed` first, then serves: no request ever sees a half-seeded account.
    pub fn start_seeded(
        listener: TcpListener,
        api_key: SecretString,
        options: SimOptions,
        seed: &seed::Seed,
        file: &str,
    ) -> Result<Sim, SimulateError> {
        let addr = listener.local_addr().map_err(|e| SimulateError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            reason: e.to_string(),
        })?;
        let now = OffsetDateTime::now_utc();
        let mut account = Account::new(format!("http://{addr}"), now);
        seed::apply(seed, &mut account, now, file)?;
        Ok(Self::serve(listener, addr, api_key, options, account))
    }

    fn serve(
        listener: TcpListener,
        addr: SocketAddr,
        api_key: SecretString,
        options: SimOptions,
        account: Account,
    ) -> Sim {
        let shared = Arc::new(Shared {
            api_key,
            rate_limit: Mutex::new(options.rate_limit),
            account: Mutex::new(account),
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            accepted: Mutex::new(VecDeque::new()),
        });
        let stop = CancellationToken::new();
        let app = Router::new().fallback({
            let shared = shared.clone();
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = shared.clone();
                async move { handle(&shared, method, uri, headers, body).await }
            }
        });
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        Sim {
            addr,
            shared,
            stop,
            task,
        }
    }

    /// Binds `127.0.0.1:0` and serves with the given key and no rate limit.
    pub async fn local(api_key: &str) -> std::io::Result<Sim> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Sim::start(
            listener,
            SecretString::from(api_key.to_string()),
            SimOptions::default(),
        )
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        *lock(&self.shared.rate_limit) = limit;
        lock(&self.shared.accepted).clear();
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Reads or changes the account directly (tests and seeds).
    pub fn with_account<R>(&self, f: impl FnOnce(&mut Account) -> R) -> R {
        f(&mut lock(&self.shared.account))
    }

    /// Loads a seed into the account.
    pub fn seed(&self, seed: &seed::Seed, file: &str) -> Result<(), seed::SeedError> {
        let now = OffsetDateTime::now_utc();
        self.with_account(|a| seed::apply(seed, a, now, file))
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Why `simulate` could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("seed {0}")]
    Seed(#[from] seed::SeedError),
}

/// `simulate`: serve in the foreground until `shutdown` resolves.
pub async fn simulate(
    listen: SocketAddr,
    api_key: SecretString,
    seed_file: Option<PathBuf>,
    rate_limit: Option<String>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimulateError> {
    if api_key.expose_secret().is_empty() {
        return Err(SimulateError::Usage("--api-key must not be empty".into()));
    }
    let rate_limit = match rate_limit {
        Some(s) => parse_rate_limit(&s).map_err(SimulateError::Usage)?,
        None => Some(RateLimit::default()),
    };
    let seed = seed_file.as_deref().map(seed::load).transpose()?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| SimulateError::Bind {
            addr: listen,
            reason: e.to_string(),
        })?;
    let options = SimOptions { rate_limit };
    let sim = match (&seed, &seed_file) {
        (Some(seed), Some(file)) => Sim::start_seeded(
            listener,
            api_key,
            options,
            seed,
            &file.display().to_string(),
        )?,
        _ => Sim::start(listener, api_key, options).map_err(|e| SimulateError::Bind {
            addr: listen,
            reason: e.to_string(),
        })?,
    };
    let (c, d, r) =
        sim.with_account(|a| (a.certificates.len(), a.domains.len(), a.credentials.len()));
    let limit = match rate_limit {
        Some(l) => format!(
            "{} requests per {}",
            l.requests,
            humantime::format_duration(l.window)
        ),
        None => "off".to_string(),
    };
    tracing::info!(
        url = %sim.url(),
        certificates = c,
        domains = d,
        credentials = r,
        rate_limit = %limit,
        "ngrok API simulator listening; point api.url at it"
    );
    shutdown.await;
    sim.stop().await;
    Ok(())
}

async fn handle(
    shared: &Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_string();
    let query = uri.query().unwrap_or("").to_string();
    let (status, response) = respond(shared, &method, &path, &query, &headers, &body).await;
    lock(&shared.requests).push(LoggedRequest {
        method: method.to_string(),
        path,
        query,
        status,
    });
    response
}

#[allow(
    clippy::too_many_lines,
    reason = "the simulator's request pipeline; being rewritten with its refusals (issue 9)"
)]
async fn respond(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> (u16, Response) {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .is_some_and(|k| constant_time_eq(k.as_bytes(), shared.api_key.expose_secret().as_bytes()));
    if !authorized {
        return error(&SimError {
            status: 401,
            code: "ERR_NGROK_SIM_401",
            msg: "The API key you specified is not valid or was not sent as a Bearer token in the Authorization header.".into(),
        });
    }
    if let Some(control) = path.strip_prefix("/_sim") {
        return control_request(shared, method, control, body);
    }
    match headers.get("ngrok-version").and_then(|v| v.to_str().ok()) {
        Some("2") => {}
        None => {
            return error(&SimError {
                status: 400,
                code: "ERR_NGROK_218",
                msg: MISSING_VERSION_MSG.into(),
            })
        }
        Some(_) => {
            return error(&SimError {
                status: 400,
                code: "ERR_NGROK_219",
                msg: "The API version you requested is not supported. Supported versions: 2."
                    .into(),
            })
        }
    }
    if let Some(retry_after) = rate_limited(shared) {
        let (status, mut response) = error(&SimError {
            status: 429,
            code: "ERR_NGROK_226",
            msg: "You have exceeded the rate limit of your account. Please slow down your API requests.".into(),
        });
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(retry_after));
        return (status, response);
    }
    let fault = take_fault(shared, method, path);
    match &fault {
        Some(FaultKind::Status {
            status,
            retry_after,
        }) => {
            let (status, mut response) = error(&SimError {
                status: *status,
                code: "ERR_NGROK_SIM_FAULT",
                msg: format!("Injected fault: HTTP {status}."),
            });
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from(*secs));
            }
            return (status, response);
        }
        Some(FaultKind::Latency { millis }) => {
            tokio::time::sleep(Duration::from_millis(*millis)).await
        }
        _ => {}
    }
    let (status, response) = api(shared, method, path, query, body);
    match fault {
        Some(FaultKind::Garbage) => (
            200,
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from("<html><body>502 Bad Gateway</body></html>"))
                .unwrap_or_default(),
        ),
        Some(FaultKind::Drop) => (0, broken(Bytes::new())),
        Some(FaultKind::Truncated) => {
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            (0, broken(bytes.slice(..bytes.len() / 2)))
        }
        _ => (status, response),
    }
}

/// A 200 whose body breaks off after `prefix`: hyper aborts the connection.
fn broken(prefix: Bytes) -> Response {
    let stream = futures_util::stream::iter([
        Ok(prefix),
        Err(std::io::Error::other("injected connection drop")),
    ]);
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("content-length", "100000")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

fn rate_limited(shared: &Shared) -> Option<u64> {
    let limit = (*lock(&shared.rate_limit))?;
    let now = Instant::now();
    let mut accepted = lock(&shared.accepted);
    while accepted
        .front()
        .is_some_and(|t| now.duration_since(*t) >= limit.window)
    {
        accepted.pop_front();
    }
    if accepted.len() >= limit.requests as usize {
        let oldest = accepted.front().copied().unwrap_or(now);
        let wait = limit.window.saturating_sub(now.duration_since(oldest));
        return Some(wait.as_secs_f64().ceil().max(1.0) as u64);
    }
    accepted.push_back(now);
    None
}

fn take_fault(shared: &Shared, method: &Method, path: &str) -> Option<FaultKind> {
    let mut faults = lock(&shared.faults);
    let index = faults.iter().position(|f| {
        path.starts_with(&f.path)
            && f.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
    })?;
    let fault = &mut faults[index];
    let kind = fault.kind.clone();
    fault.count = fault.count.saturating_sub(1);
    if fault.count == 0 {
        faults.remove(index);
    }
    Some(kind)
}

fn control_request(shared: &Shared, method: &Method, path: &str, body: &Bytes) -> (u16, Response) {
    match (method.as_str(), path) {
        ("POST", "/faults") => match serde_json::from_slice::<Fault>(body) {
            Ok(fault) => {
                lock(&shared.faults).push(fault);
                (204, empty(204))
            }
            Err(e) => error(&SimError::bad_request(format!("fault: {e}"))),
        },
        ("DELETE", "/faults") => {
            lock(&shared.faults).clear();
            (204, empty(204))
        }
        ("GET", "/requests") => ok(200, &json!({ "requests": *lock(&shared.requests) })),
        ("DELETE", "/requests") => {
            lock(&shared.requests).clear();
            (204, empty(204))
        }
        _ => error(&SimError::not_found("simulator control endpoint", path)),
    }
}

#[allow(clippy::too_many_lines, reason = "the simulator's route table")]
fn api(shared: &Shared, method: &Method, path: &str, query: &str, body: &Bytes) -> (u16, Response) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let now = OffsetDateTime::now_utc();
    let needs_body = matches!(*method, Method::POST | Method::PATCH);
    let object = if needs_body {
        match parse_body(body) {
            Ok(o) => o,
            Err(e) => return error(&e),
        }
    } else {
        Map::new()
    };
    let b = account::Body(&object);
    let mut a = lock(&shared.account);
    let result: Result<(u16, Option<Value>), SimError> = (|| {
        Ok(match (method.as_str(), segments.as_slice()) {
            ("GET", ["tls_certificates"]) => (
                200,
                Some(list(&a, "tls_certificates", &a.certificates, query)?),
            ),
            ("POST", ["tls_certificates"]) => {
                let pem = b.string("certificate_pem")?.unwrap_or_default();
                let key = b.string("private_key_pem")?.unwrap_or_default();
                let extra = account::NewCertificate {
                    description: b.string("description")?.unwrap_or_default(),
                    metadata: b.string("metadata")?.unwrap_or_default(),
                    issued_at: None,
                };
                (
                    201,
                    Some(to_value(&a.create_certificate(&pem, &key, extra, now)?)),
                )
            }
            ("GET", ["tls_certificates", id]) => (
                200,
                Some(to_value(
                    a.certificates
                        .get(*id)
                        .ok_or_else(|| SimError::not_found("TLS certificate", id))?,
                )),
            ),
            ("PATCH", ["tls_certificates", id]) => (
                200,
                Some(to_value(&a.update_certificate(
                    id,
                    b.string("description")?,
                    b.string("metadata")?,
                )?)),
            ),
            ("DELETE", ["tls_certificates", id]) => {
                a.delete_certificate(id)?;
                (204, None)
            }
            ("GET", ["reserved_domains"]) => {
                (200, Some(list(&a, "reserved_domains", &a.domains, query)?))
            }
            ("POST", ["reserved_domains"]) => (
                201,
                Some(to_value(&a.create_domain(b.domain_fields()?, now)?)),
            ),
            ("GET", ["reserved_domains", id]) => (
                200,
                Some(to_value(
                    a.domains
                        .get(*id)
                        .ok_or_else(|| SimError::not_found("reserved domain", id))?,
                )),
            ),
            ("PATCH", ["reserved_domains", id]) => (
                200,
                Some(to_value(&a.update_domain(id, b.domain_fields()?, now)?)),
            ),
            ("DELETE", ["reserved_domains", id]) => {
                a.delete_domain(id)?;
                (204, None)
            }
            ("DELETE", ["reserved_domains", id, "certificate"]) => {
                a.detach_certificate(id)?;
                (204, None)
            }
            ("DELETE", ["reserved_domains", id, "certificate_management_policy"]) => {
                a.detach_policy(id)?;
                (204, None)
            }
            ("GET", ["credentials"]) => {
                (200, Some(list(&a, "credentials", &a.credentials, query)?))
            }
            ("POST", ["credentials"]) => (
                201,
                Some(to_value(&a.create_credential(
                    b.string("description")?,
                    b.string("metadata")?,
                    b.strings("acl")?,
                    now,
                )?)),
            ),
            ("GET", ["credentials", id]) => (
                200,
                Some(to_value(
                    a.credentials
                        .get(*id)
                        .ok_or_else(|| SimError::not_found("credential", id))?,
                )),
            ),
            ("PATCH", ["credentials", id]) => (
                200,
                Some(to_value(&a.update_credential(
                    id,
                    b.string("description")?,
                    b.string("metadata")?,
                    b.strings("acl")?,
                )?)),
            ),
            ("DELETE", ["credentials", id]) => {
                a.delete_credential(id)?;
                (204, None)
            }
            _ => {
                return Err(SimError {
                    status: 404,
                    code: "ERR_NGROK_SIM_404",
                    msg: format!("No API endpoint {method} {path}."),
                })
            }
        })
    })();
    drop(a);
    match result {
        Ok((status, Some(v))) => ok(status, &v),
        Ok((status, None)) => (status, empty(status)),
        Err(e) => error(&e),
    }
}

fn list<T: Serialize>(
    a: &Account,
    collection: &str,
    items: &std::collections::BTreeMap<String, T>,
    query: &str,
) -> Result<Value, SimError> {
    let mut limit = account::MAX_LIMIT;
    let mut before_id = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=account::MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        SimError::bad_request(format!(
                            "limit: must be between 1 and {}.",
                            account::MAX_LIMIT
                        ))
                    })?
            }
            "before_id" if !v.is_empty() => before_id = Some(v.into_owned()),
            _ => {}
        }
    }
    let page = account::page(items, before_id.as_deref(), limit);
    let next_page_uri = page.next_before.map(|last| {
        format!(
            "{}/{collection}?before_id={}&limit={limit}",
            a.base_url,
            url::form_urlencoded::byte_serialize(last.as_bytes()).collect::<String>()
        )
    });
    Ok(json!({
        collection: page.items,
        "uri": format!("{}/{collection}", a.base_url),
        "next_page_uri": next_page_uri,
    }))
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, SimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(SimError::bad_request(
            "The request body must be a JSON object.",
        )),
        Err(_) => Err(SimError::bad_request("The request body is not valid JSON.")),
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn ok(status: u16, v: &Value) -> (u16, Response) {
    (
        status,
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(v).unwrap_or_default()))
            .unwrap_or_default(),
    )
}

fn empty(status: u16) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT))
        .body(Body::empty())
        .unwrap_or_default()
}

fn error(e: &SimError) -> (u16, Response) {
    let mut ids = account::Ids::default();
    let body = json!({
        "error_code": e.code,
        "status_code": e.status,
        "msg": e.msg,
        "details": { "operation_id": ids.next("op", OffsetDateTime::now_utc()) },
    });
    ok(e.status, &body)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
