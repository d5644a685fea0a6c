//! The ngrok API simulator: an in-memory account served over HTTP the way the reference
//! describes (auth, `Ngrok-Version`, rate limit, pagination, validation, error bodies), plus
//! fault injection and a request log for tests, also reachable over HTTP under `/_sim/`.
//!
//! Used by `simulate`, `demo` and the test suite. It never touches the network beyond the
//! listener it is given.

pub mod account;
pub mod dns;
pub mod edge;
pub mod errors;
pub mod routes;
pub mod seed;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
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

pub use account::{Account, Violation, ViolationKind};
pub use errors::{Code, SimError};

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
    /// The answer was a fault injected on purpose (`/_sim/faults`), not the simulator's own.
    pub injected: bool,
}

/// Marks a response whose status came from an injected fault, for the request log.
#[derive(Debug, Clone, Copy)]
struct Injected;

/// The account's limit of simultaneous API requests (ERR_NGROK_225), unless told otherwise.
pub const DEFAULT_MAX_CONCURRENT: usize = 8;

/// Options of a simulator instance.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub rate_limit: Option<RateLimit>,
    /// Simultaneous API requests allowed (`/_sim/` is exempt); `None` for no limit.
    pub max_concurrent: Option<usize>,
}

impl Default for SimOptions {
    /// No rate limit; the default concurrency limit.
    fn default() -> Self {
        Self {
            rate_limit: None,
            max_concurrent: Some(DEFAULT_MAX_CONCURRENT),
        }
    }
}

struct Shared {
    api_key: SecretString,
    rate_limit: Mutex<Option<RateLimit>>,
    account: Mutex<Account>,
    faults: Mutex<Vec<Fault>>,
    requests: Mutex<Vec<LoggedRequest>>,
    accepted: Mutex<VecDeque<Instant>>,
    max_concurrent: Option<usize>,
    in_flight: AtomicUsize,
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
            max_concurrent: options.max_concurrent,
            in_flight: AtomicUsize::new(0),
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

    /// Removes every fault not yet used up.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Safety violations seen so far (a certificate deleted while attached, a domain left
    /// without a certificate outside a managed take-over's window), oldest first.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.shared.account).violations.clone()
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

    /// The root CA (PEM) every certificate the seeds generate chains to: the trust anchor for
    /// probes of an edge that serves them (`simulate --write-ca`).
    pub fn ca_pem(&self) -> Result<String, SimulateError> {
        self.with_account(|a| a.seed_ca().map(|ca| ca.root_pem().to_string()))
            .map_err(|e| SimulateError::Usage(e.to_string()))
    }

    /// What the edge serves for a name, live from the account: for [`edge::EdgeServer::follow`],
    /// so that a loopback edge picks up every change the API makes at once.
    pub fn edge_lookup(&self) -> edge::Lookup {
        let shared = Arc::clone(&self.shared);
        Arc::new(move |name: &str| lock(&shared.account).served_for(name))
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

/// What `simulate` serves.
#[derive(Debug, Clone)]
pub struct SimulateArgs {
    pub listen: SocketAddr,
    pub api_key: SecretString,
    /// Without one, an account with only its dev domain.
    pub seed_file: Option<PathBuf>,
    /// `N/DURATION` or `off`; default 120/60s.
    pub rate_limit: Option<String>,
    /// Simultaneous API requests; 0 for no limit.
    pub max_concurrent: usize,
    /// Where to write the root CA the seeds' certificates chain to (for `edge.trust_anchors`).
    pub write_ca: Option<PathBuf>,
}

/// `simulate`: serve in the foreground until `shutdown` resolves.
pub async fn simulate(
    args: SimulateArgs,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimulateError> {
    if args.api_key.expose_secret().is_empty() {
        return Err(SimulateError::Usage("--api-key must not be empty".into()));
    }
    let rate_limit = match &args.rate_limit {
        Some(s) => parse_rate_limit(s).map_err(SimulateError::Usage)?,
        None => Some(RateLimit::default()),
    };
    let (seed, file) = match &args.seed_file {
        Some(path) => (seed::load(path)?, path.display().to_string()),
        None => (seed::Seed::default(), "default seed".to_string()),
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| SimulateError::Bind {
            addr: args.listen,
            reason: e.to_string(),
        })?;
    let options = SimOptions {
        rate_limit,
        max_concurrent: (args.max_concurrent > 0).then_some(args.max_concurrent),
    };
    let sim = Sim::start_seeded(listener, args.api_key, options, &seed, &file)?;
    if let Some(path) = &args.write_ca {
        let pem = sim.ca_pem()?;
        if let Err(e) = std::fs::write(path, pem) {
            sim.stop().await;
            return Err(SimulateError::Usage(format!(
                "--write-ca {}: {e}",
                path.display()
            )));
        }
    }
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
        max_concurrent = args.max_concurrent,
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
        injected: response.extensions().get::<Injected>().is_some(),
    });
    response
}

async fn respond(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> (u16, Response) {
    if let Err(e) = authorize(shared, headers) {
        return error(&e);
    }
    if let Some(control) = path.strip_prefix("/_sim") {
        return control_request(shared, method, control, body);
    }
    if let Err(e) = check_version(headers) {
        return error(&e);
    }
    if !body.is_empty() && !headers.contains_key(axum::http::header::CONTENT_TYPE) {
        return error(&Code::MissingContentType.with(
            "The request has a body but no Content-Type header; send Content-Type: application/json.",
        ));
    }
    let Some(_in_flight) = enter(shared) else {
        return error(&Code::Concurrency.with(format!(
            "Your account is limited to {} simultaneous API requests.",
            shared.max_concurrent.unwrap_or_default()
        )));
    };
    if let Some(retry_after) = rate_limited(shared) {
        let (status, mut response) = error(&Code::RateLimited.with(RATE_LIMITED_MSG));
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(retry_after));
        return (status, response);
    }
    let Some(fault) = take_fault(shared, method, path) else {
        return api(shared, method, path, query, body);
    };
    // A latency fault delays the simulator's own answer; the others replace it.
    let replaced = !matches!(fault, FaultKind::Latency { .. });
    let (status, mut response) = with_fault(shared, method, path, query, body, Some(fault)).await;
    if replaced {
        response.extensions_mut().insert(Injected);
    }
    (status, response)
}

/// The answer, as changed by an injected fault (or not, for a latency fault that passes).
async fn with_fault(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    body: &Bytes,
    fault: Option<FaultKind>,
) -> (u16, Response) {
    match &fault {
        Some(FaultKind::Status {
            status,
            retry_after,
        }) => return injected_status(*status, *retry_after),
        Some(FaultKind::Latency { millis }) => {
            tokio::time::sleep(Duration::from_millis(*millis)).await;
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

/// ERR_NGROK_200 without an `Authorization` header, 203 with one that is not the API key.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), SimError> {
    let Some(value) = headers.get("authorization") else {
        return Err(Code::NoCredential
            .with("You must specify an API key in the Authorization header as a Bearer token."));
    };
    let valid = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .is_some_and(|k| constant_time_eq(k.as_bytes(), shared.api_key.expose_secret().as_bytes()));
    if valid {
        Ok(())
    } else {
        Err(Code::BadCredential.with(
            "The API key you specified is not valid or was not sent as a Bearer token in the Authorization header.",
        ))
    }
}

/// ERR_NGROK_218 without `Ngrok-Version`, 217 for a version other than 2.
fn check_version(headers: &HeaderMap) -> Result<(), SimError> {
    match headers.get("ngrok-version").map(HeaderValue::to_str) {
        Some(Ok("2")) => Ok(()),
        None => Err(Code::MissingVersion.with(MISSING_VERSION_MSG)),
        Some(_) => Err(Code::UnsupportedVersion
            .with("The API version you requested is not supported. Supported versions: 2.")),
    }
}

/// Counts a request in flight until the guard drops; `None` past `max_concurrent`.
fn enter(shared: &Shared) -> Option<InFlight<'_>> {
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let guard = InFlight(&shared.in_flight);
    match shared.max_concurrent {
        Some(max) if now > max => None,
        _ => Some(guard),
    }
}

/// One request in flight.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The one real 429 body on record (UPSTREAM-NOTES), whatever the account's own limit.
const RATE_LIMITED_MSG: &str = "Your account is rate limited to 120 API requests per minute.";

/// An injected status: a 429 is the account's rate limit as the API answers it (ERR_NGROK_226,
/// with `Retry-After` only if the fault says so), anything else a plain fault.
fn injected_status(status: u16, retry_after: Option<u64>) -> (u16, Response) {
    let e = if status == 429 {
        Code::RateLimited.with(RATE_LIMITED_MSG)
    } else {
        SimError {
            status,
            ..Code::Fault.with(format!("Injected fault: HTTP {status}."))
        }
    };
    let (status, mut response) = error(&e);
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    (status, response)
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
        ("GET", "/violations") => ok(
            200,
            &json!({ "violations": lock(&shared.account).violations }),
        ),
        _ => error(&Code::NotFound.with(format!("No simulator control endpoint {path}."))),
    }
}

fn api(shared: &Shared, method: &Method, path: &str, query: &str, body: &Bytes) -> (u16, Response) {
    let result = apply_request(
        &mut lock(&shared.account),
        method.as_str(),
        path,
        query,
        body,
        OffsetDateTime::now_utc(),
    );
    match result {
        Ok((status, Some(v))) => ok(status, &v),
        Ok((status, None)) => (status, empty(status)),
        Err(e) => error(&e),
    }
}

/// One API request applied to `account`, everything but HTTP itself (auth, version, rate limit,
/// faults): the route, its query and its body. Public so that `fuzz/` can drive it.
pub fn apply_request(
    account: &mut Account,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<routes::Answer, SimError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let route = routes::Route::parse(method, &segments)
        .ok_or_else(|| Code::NotFound.with(format!("No API endpoint {method} {path}.")))?;
    let object = prepare(route, query, body)?;
    routes::run(account, route, &account::Body(&object), query, now)
}

/// Refuses unknown query parameters and body fields, and a body where none is taken; the body
/// of a request that takes one.
fn prepare(route: routes::Route, query: &str, body: &[u8]) -> Result<Map<String, Value>, SimError> {
    routes::check_query(route, query)?;
    let Some(fields) = route.body_fields() else {
        if !body.iter().all(u8::is_ascii_whitespace) {
            return Err(Code::BodyNotAllowed.with("This request does not take a body."));
        }
        return Ok(Map::new());
    };
    let object = parse_body(body)?;
    account::Body(&object).only(fields)?;
    Ok(object)
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, SimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(Code::BadJson.with("The request body must be a JSON object.")),
        Err(_) => Err(Code::BadJson.with("The request body is not valid JSON.")),
    }
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
