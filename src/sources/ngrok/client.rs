//! The transport: authentication, the version header, the request budget, retries, paging.
//!
//! Retry rules: any request is retried on 429 (ERR_NGROK_226) or a refused connection — the API
//! did not process it; a 429 is waited out as its `Retry-After` says, or, without one, over the
//! account's 60 s window. GET, PATCH and DELETE are also retried on 5xx and broken connections; a
//! retried DELETE that then finds 404 succeeded. A POST whose outcome is unknown is never
//! retried: for a certificate upload that could create a duplicate.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::url::is_loopback_url;
use url::Url;

use super::budget::RollingWindow;
use super::error::{ApiError, ErrorKind};
use super::types::*;

/// A listed resource: its id orders the pages.
pub trait Listed {
    fn id(&self) -> &str;
}

impl Listed for TlsCertificate {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Listed for ReservedDomain {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Listed for TunnelCredential {
    fn id(&self) -> &str {
        &self.id
    }
}

/// A page that links onwards must bring items each older (a smaller id) than the last item
/// before it: otherwise the server is not paging forward.
fn check_progress<T: Listed>(
    last: Option<&str>,
    page: &[T],
    operation: &str,
) -> Result<(), ApiError> {
    let fail = |why: String| Err(ApiError::new(ErrorKind::InvalidResponse, operation, why));
    if let Some(last) = last {
        if let Some(newer) = page.iter().find(|item| item.id() >= last) {
            return fail(format!(
                "a page repeats or goes back ({} after {last}): paging would never end",
                newer.id(),
            ));
        }
    }
    Ok(())
}

/// The most one response may hold: a page of 100 certificates with their PEMs is well under
/// 1 MiB; an endless or huge body is cut off here instead of filling the memory.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The most pages one list may take: 1,000,000 items at 100 a page.
pub const MAX_PAGES: usize = 10_000;

/// Why a body was not read whole.
enum Body {
    Broken(reqwest::Error),
    TooLarge,
}

/// The body, read as a stream and cut off past `limit` bytes.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<bytes::Bytes, Body> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Body::TooLarge);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(Body::Broken)? {
        if body.len() + chunk.len() > limit {
            return Err(Body::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A request that got no (whole) answer: retried when repeating it is safe, else an unknown
/// outcome that is never repeated (an upload could be made twice).
fn broken_off(error: ApiError, safe_to_repeat: bool) -> Attempt {
    if safe_to_repeat {
        Attempt::Retry(Transient {
            error,
            retry_after: None,
        })
    } else {
        Attempt::Fail(ApiError {
            kind: ErrorKind::OutcomeUnknown,
            msg: format!("{} — outcome unknown, not retried", error.msg),
            ..error
        })
    }
}

/// The documented maximum page size; lists always ask for it, so N items cost ceil(N/100) requests.
pub const PAGE_LIMIT: u32 = 100;

/// How hard to try before giving up with a typed error.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; it doubles after each attempt, with full jitter.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for: the call fails instead.
    pub max_retry_after: Duration,
    /// The account's rate-limit window (60 s). A 429 ERR_NGROK_226 without `Retry-After`
    /// (the record does not say it has one) is retried at intervals that together span it,
    /// so that the requests which filled the window have left it by the last attempt.
    pub rate_limit_window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(120),
            rate_limit_window: super::budget::WINDOW,
        }
    }
}

/// Everything the client needs to know.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub base_url: Url,
    pub api_key: SecretString,
    pub requests_per_minute: NonZeroU32,
    /// Requests in flight at once (the account limits this too: ERR_NGROK_225).
    pub max_concurrent_requests: NonZeroU32,
    /// Where the times of recent requests are kept across restarts (in `state.dir`).
    pub budget_file: Option<std::path::PathBuf>,
    /// Total time for one attempt, connect included.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

/// Told about every attempt, for the `api_requests_total` metric.
pub trait RequestObserver: Send + Sync {
    /// `code` is the HTTP status, or `error` when no response came.
    fn observe(&self, method: &str, resource: &str, code: &str);

    /// A request waits for the budget's window (up to a minute): slow, but not stuck.
    fn waiting_for_budget(&self) {}
}

/// A client of the ngrok API. Cheap to clone; clones share the request budget.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    api_key: SecretString,
    budget: RollingWindow,
    /// One permit per request in flight; clones share it.
    in_flight: tokio::sync::Semaphore,
    retry: RetryPolicy,
    observer: Option<Arc<dyn RequestObserver>>,
}

/// One transient failure: what to report if it is the last, and how long the server asked to wait.
struct Transient {
    error: ApiError,
    retry_after: Option<Duration>,
}

enum Attempt {
    Done(u16, bytes::Bytes),
    Retry(Transient),
    Fail(ApiError),
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Self, ApiError> {
        Self::build(options, None)
    }

    /// A client that reports every attempt to `observer` (metrics).
    pub fn with_observer(
        options: ClientOptions,
        observer: Arc<dyn RequestObserver>,
    ) -> Result<Self, ApiError> {
        Self::build(options, Some(observer))
    }

    fn build(
        options: ClientOptions,
        observer: Option<Arc<dyn RequestObserver>>,
    ) -> Result<Self, ApiError> {
        let mut base = options.base_url.clone();
        let scheme_ok =
            base.scheme() == "https" || (base.scheme() == "http" && is_loopback_url(&base));
        if !scheme_ok {
            return Err(ApiError::new(
                ErrorKind::BadRequest,
                "client setup",
                format!(
                    "api.url {}://{} must use https (plain http only for a loopback address)",
                    base.scheme(),
                    base.host_str().unwrap_or("")
                ),
            ));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        // rustls with ring: one crypto backend for the whole binary. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = HeaderMap::new();
        headers.insert("Ngrok-Version", HeaderValue::from_static("2"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .user_agent(concat!("ngrok-cert-watchdog/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .timeout(options.timeout)
            // The key travels in a header: never follow a redirect anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                ApiError::new(
                    ErrorKind::Unreachable,
                    "client setup",
                    format!("cannot build the HTTP client: {}", error_chain(&e)),
                )
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                api_key: options.api_key,
                budget: RollingWindow::per_minute(
                    options.requests_per_minute,
                    options.budget_file.clone(),
                ),
                in_flight: tokio::sync::Semaphore::new(
                    options.max_concurrent_requests.get() as usize
                ),
                retry: options.retry,
                observer,
            }),
        })
    }

    /// Writes the budget's record of recent requests to `state.dir` now.
    pub async fn save_budget(&self) {
        self.inner.budget.save().await;
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    // ---- TLS certificates ----

    pub async fn list_tls_certificates(&self) -> Result<Vec<TlsCertificate>, ApiError> {
        self.list_tls_certificates_with(|page| page).await
    }

    /// Every certificate, each page passed through `reduce` while it is at hand: a page's JSON
    /// and the PEMs in it need not outlive the page (and a page's certificates can be reduced
    /// in parallel).
    pub async fn list_tls_certificates_with<R>(
        &self,
        reduce: impl FnMut(Vec<TlsCertificate>) -> Vec<R>,
    ) -> Result<Vec<R>, ApiError> {
        self.list_all(
            "tls_certificates",
            |l: TlsCertificateList| (l.tls_certificates, l.next_page_uri),
            reduce,
        )
        .await
    }

    pub async fn get_tls_certificate(&self, id: &str) -> Result<TlsCertificate, ApiError> {
        self.call(Method::GET, &["tls_certificates", id], None::<&()>)
            .await
    }

    /// Uploads a certificate. Never retried once the request may have reached the API.
    pub async fn create_tls_certificate(
        &self,
        body: &TlsCertificateCreate,
    ) -> Result<TlsCertificate, ApiError> {
        self.call(Method::POST, &["tls_certificates"], Some(body))
            .await
    }

    pub async fn update_tls_certificate(
        &self,
        id: &str,
        body: &TlsCertificateUpdate,
    ) -> Result<TlsCertificate, ApiError> {
        self.call(Method::PATCH, &["tls_certificates", id], Some(body))
            .await
    }

    pub async fn delete_tls_certificate(&self, id: &str) -> Result<(), ApiError> {
        self.call_empty(Method::DELETE, &["tls_certificates", id])
            .await
    }

    // ---- reserved domains ----

    pub async fn list_reserved_domains(&self) -> Result<Vec<ReservedDomain>, ApiError> {
        self.list_reserved_domains_with(|d| d).await
    }

    /// Every reserved domain, each passed through `reduce` while its page is at hand.
    pub async fn list_reserved_domains_with<R>(
        &self,
        mut reduce: impl FnMut(ReservedDomain) -> R,
    ) -> Result<Vec<R>, ApiError> {
        self.list_all(
            "reserved_domains",
            |l: ReservedDomainList| (l.reserved_domains, l.next_page_uri),
            |page| page.into_iter().map(&mut reduce).collect(),
        )
        .await
    }

    pub async fn get_reserved_domain(&self, id: &str) -> Result<ReservedDomain, ApiError> {
        self.call(Method::GET, &["reserved_domains", id], None::<&()>)
            .await
    }

    pub async fn create_reserved_domain(
        &self,
        body: &ReservedDomainCreate,
    ) -> Result<ReservedDomain, ApiError> {
        self.call(Method::POST, &["reserved_domains"], Some(body))
            .await
    }

    pub async fn update_reserved_domain(
        &self,
        id: &str,
        body: &ReservedDomainUpdate,
    ) -> Result<ReservedDomain, ApiError> {
        self.call(Method::PATCH, &["reserved_domains", id], Some(body))
            .await
    }

    pub async fn delete_reserved_domain(&self, id: &str) -> Result<(), ApiError> {
        self.call_empty(Method::DELETE, &["reserved_domains", id])
            .await
    }

    /// `DELETE /reserved_domains/{id}/certificate`.
    pub async fn detach_certificate(&self, domain_id: &str) -> Result<(), ApiError> {
        self.call_empty(
            Method::DELETE,
            &["reserved_domains", domain_id, "certificate"],
        )
        .await
    }

    /// `DELETE /reserved_domains/{id}/certificate_management_policy`.
    pub async fn detach_certificate_management_policy(
        &self,
        domain_id: &str,
    ) -> Result<(), ApiError> {
        self.call_empty(
            Method::DELETE,
            &[
                "reserved_domains",
                domain_id,
                "certificate_management_policy",
            ],
        )
        .await
    }

    // ---- tunnel credentials ----

    pub async fn list_credentials(&self) -> Result<Vec<TunnelCredential>, ApiError> {
        self.list_all(
            "credentials",
            |l: TunnelCredentialList| (l.credentials, l.next_page_uri),
            |page| page,
        )
        .await
    }

    pub async fn get_credential(&self, id: &str) -> Result<TunnelCredential, ApiError> {
        self.call(Method::GET, &["credentials", id], None::<&()>)
            .await
    }

    /// Creates a credential; the response's `token` is its only copy and a secret.
    pub async fn create_credential(
        &self,
        body: &TunnelCredentialCreate,
    ) -> Result<TunnelCredential, ApiError> {
        self.call(Method::POST, &["credentials"], Some(body)).await
    }

    pub async fn update_credential(
        &self,
        id: &str,
        body: &TunnelCredentialUpdate,
    ) -> Result<TunnelCredential, ApiError> {
        self.call(Method::PATCH, &["credentials", id], Some(body))
            .await
    }

    pub async fn delete_credential(&self, id: &str) -> Result<(), ApiError> {
        self.call_empty(Method::DELETE, &["credentials", id]).await
    }

    // ---- plumbing ----

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let url = self.url(segments);
        let operation = operation_name(&method, &url);
        let body = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| {
                ApiError::new(
                    ErrorKind::BadRequest,
                    operation.clone(),
                    format!("cannot encode the request: {e}"),
                )
            })?),
            None => None,
        };
        let (_, bytes) = self.send(method, url, body, &operation).await?;
        decode(&bytes, &operation)
    }

    async fn call_empty(&self, method: Method, segments: &[&str]) -> Result<(), ApiError> {
        let url = self.url(segments);
        let operation = operation_name(&method, &url);
        self.send(method, url, None, &operation).await.map(|_| ())
    }

    /// Every page of a list, following `next_page_uri` on this origin only, and only while the
    /// paging makes progress: a page whose items are not older than the last page's (ids are
    /// time-sortable, newest first), a repeated link or more than [`MAX_PAGES`] pages end it
    /// with an error instead of following the server forever. An empty page ends the list even
    /// if it links onwards, as in ngrok's Go client: whether the API answers a full last page
    /// with `next_page_uri: null` or with a link to an empty page is not documented.
    /// Each page goes through `reduce` before the next page is fetched.
    async fn list_all<L: DeserializeOwned, T: Listed, R>(
        &self,
        resource: &str,
        split: fn(L) -> (Vec<T>, Option<String>),
        mut reduce: impl FnMut(Vec<T>) -> Vec<R>,
    ) -> Result<Vec<R>, ApiError> {
        let mut url = self.url(&[resource]);
        url.query_pairs_mut()
            .append_pair("limit", &PAGE_LIMIT.to_string());
        let operation = operation_name(&Method::GET, &url);
        let mut seen = HashSet::new();
        let mut items: Vec<R> = Vec::new();
        let mut last_id: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let (_, bytes) = self
                .send(Method::GET, url.clone(), None, &operation)
                .await?;
            let (page, next) = split(decode(&bytes, &operation)?);
            drop(bytes);
            let Some(next) = next.filter(|n| !n.is_empty() && !page.is_empty()) else {
                items.extend(reduce(page));
                // Kept until the next sync: without the slack of doubling.
                items.shrink_to_fit();
                return Ok(items);
            };
            check_progress(last_id.as_deref(), &page, &operation)?;
            last_id = page.last().map(|item| item.id().to_string());
            items.extend(reduce(page));
            url = self.next_page(&next, &operation)?;
            if !seen.insert(url.clone()) {
                return Err(ApiError::new(
                    ErrorKind::InvalidResponse,
                    operation.clone(),
                    "next_page_uri repeats an earlier page: paging would never end",
                ));
            }
        }
        Err(ApiError::new(
            ErrorKind::InvalidResponse,
            operation,
            format!("more than {MAX_PAGES} pages: paging stopped"),
        ))
    }

    /// The URL of `next_page_uri`, on the configured origin only (the key travels with it).
    fn next_page(&self, next: &str, operation: &str) -> Result<Url, ApiError> {
        let next_url = self.inner.base.join(next).map_err(|e| {
            ApiError::new(
                ErrorKind::InvalidResponse,
                operation,
                format!("next_page_uri is not a URL: {e}"),
            )
        })?;
        if next_url.origin() != self.inner.base.origin() {
            return Err(ApiError::new(
                ErrorKind::InvalidResponse,
                operation,
                format!(
                    "next_page_uri points at another origin ({}), not followed: the API key would travel with it",
                    next_url.origin().ascii_serialization()
                ),
            ));
        }
        Ok(next_url)
    }

    /// One call with budget and retries; the status and body of a 2xx answer.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        operation: &str,
    ) -> Result<(u16, bytes::Bytes), ApiError> {
        let retry = self.inner.retry;
        let mut outcome_unknown_before = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let observer = self.inner.observer.as_deref();
            self.inner
                .budget
                .acquire_telling(|| {
                    if let Some(o) = observer {
                        o.waiting_for_budget();
                    }
                })
                .await;
            // Held for the whole attempt, the response body included; never closed.
            let permit = self.inner.in_flight.acquire().await;
            let result = self
                .attempt(
                    &method,
                    &url,
                    body.as_deref(),
                    operation,
                    outcome_unknown_before,
                )
                .await;
            drop(permit);
            let transient = match result {
                Attempt::Done(status, bytes) => return Ok((status, bytes)),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry(t) => t,
            };
            if matches!(
                transient.error.kind,
                ErrorKind::Server | ErrorKind::Unreachable
            ) {
                outcome_unknown_before = true;
            }
            if attempt >= retry.max_attempts {
                return Err(transient.error);
            }
            let backoff = jittered_backoff(&retry, attempt);
            let delay = match transient.retry_after {
                Some(after) if after > retry.max_retry_after => return Err(transient.error),
                Some(after) => after.max(backoff),
                None if transient.error.kind == ErrorKind::RateLimited
                    && transient.error.error_code.as_deref() != Some("ERR_NGROK_225") =>
                {
                    // The account's window, not a moment's congestion (225 is the number of
                    // requests in flight, which the next attempt may well be within).
                    let spread =
                        retry.rate_limit_window / retry.max_attempts.saturating_sub(1).max(1);
                    if let Some(o) = observer {
                        o.waiting_for_budget();
                    }
                    backoff.max(spread)
                }
                None => backoff,
            };
            tracing::debug!(
                operation,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %transient.error,
                "retrying ngrok API call"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        operation: &str,
        outcome_unknown_before: bool,
    ) -> Attempt {
        let idempotent = *method != Method::POST;
        let resource = self.resource_label(url);
        let mut request = self.inner.http.request(method.clone(), url.clone()).header(
            AUTHORIZATION,
            format!("Bearer {}", self.inner.api_key.expose_secret()),
        );
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                self.observe(method, &resource, "error");
                let refused = e.is_connect();
                let error = ApiError::new(
                    ErrorKind::Unreachable,
                    operation,
                    format!(
                        "cannot reach the ngrok API at {}: {}",
                        url.origin().ascii_serialization(),
                        error_chain(&e)
                    ),
                );
                // A refused connection was not processed; anything later may have been.
                return broken_off(error, refused || idempotent);
            }
        };
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(response.headers().get(RETRY_AFTER));
        // What ngrok support asks for about an error; also on answers whose body is not the
        // documented one (a proxy's error page), as ngrok's Go client reads it.
        let operation_id = response
            .headers()
            .get("ngrok-operation-id")
            .filter(|_| !(200..300).contains(&status))
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 64)
            .map(str::to_string);
        let bytes = match read_capped(response, MAX_RESPONSE_BYTES).await {
            Ok(b) => b,
            Err(Body::Broken(e)) => {
                self.observe(method, &resource, "error");
                let error = ApiError::new(
                    ErrorKind::Unreachable,
                    operation,
                    format!("the response broke off: {}", error_chain(&e)),
                );
                return broken_off(error, idempotent);
            }
            Err(Body::TooLarge) => {
                self.observe(method, &resource, &status.to_string());
                return Attempt::Fail(ApiError::new(
                    ErrorKind::InvalidResponse,
                    operation,
                    format!(
                        "the response is larger than {} MiB; not read further",
                        MAX_RESPONSE_BYTES / (1024 * 1024)
                    ),
                ));
            }
        };
        self.observe(method, &resource, &status.to_string());
        if (200..300).contains(&status) {
            return Attempt::Done(status, bytes);
        }
        if status == 404 && *method == Method::DELETE && outcome_unknown_before {
            // An earlier attempt that broke off did delete it.
            return Attempt::Done(204, bytes::Bytes::new());
        }
        let mut error = error_from_body(status, &bytes, operation);
        error.operation_id = error.operation_id.or(operation_id);
        match status {
            429 => Attempt::Retry(Transient { error, retry_after }),
            500..=599 if idempotent => Attempt::Retry(Transient { error, retry_after }),
            500..=599 => Attempt::Fail(ApiError {
                kind: ErrorKind::OutcomeUnknown,
                ..error
            }),
            _ => Attempt::Fail(error),
        }
    }

    fn resource_label(&self, url: &Url) -> String {
        // The first path segment after the base path: tls_certificates, reserved_domains, credentials.
        let base_len = self.inner.base.path().len();
        url.path()
            .get(base_len..)
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    }

    fn observe(&self, method: &Method, resource: &str, code: &str) {
        if let Some(o) = &self.inner.observer {
            o.observe(method.as_str(), resource, code);
        }
    }
}

fn operation_name(method: &Method, url: &Url) -> String {
    format!("{method} {}", url.path())
}

/// A 2xx body as `T`, or an error that never quotes the body. Public so that `fuzz/` reaches the
/// client's own decoding without a network.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], operation: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        // Only the position: the serde message can quote response values (a credential token).
        let what = match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "JSON of an unexpected shape",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        ApiError::new(
            ErrorKind::InvalidResponse,
            operation,
            format!(
                "the response is {what} (line {} column {}){}",
                e.line(),
                e.column(),
                missing_field_hint(&e)
            ),
        )
    })
}

/// serde names a missing field without quoting data; that part is safe and useful.
fn missing_field_hint(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.find("missing field `") {
        Some(start) => {
            let rest = &text[start + "missing field `".len()..];
            match rest.find('`') {
                Some(end) => format!(": missing field `{}`", &rest[..end]),
                None => String::new(),
            }
        }
        None => String::new(),
    }
}

/// The error for a non-2xx answer, from its documented error body if it has one. Public so that
/// `fuzz/` reaches it without a network.
pub fn error_from_body(status: u16, bytes: &[u8], operation: &str) -> ApiError {
    let body: Option<ErrorBody> = serde_json::from_slice(bytes).ok();
    let body = body.unwrap_or_default();
    ApiError {
        kind: ErrorKind::from_status(status),
        operation: operation.to_string(),
        status: Some(status),
        error_code: body.error_code,
        msg: body
            .msg
            .unwrap_or_else(|| "no documented error body".to_string()),
        operation_id: body.details.and_then(|d| d.operation_id),
    }
}

fn parse_retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let value = value?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate_to_unix(value)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Some(Duration::from_secs(when.saturating_sub(now).max(0) as u64))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as Unix seconds.
fn httpdate_to_unix(value: &str) -> Option<i64> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let dt = time::PrimitiveDateTime::parse(value, &format).ok()?;
    Some(dt.assume_utc().unix_timestamp())
}

fn jittered_backoff(retry: &RetryPolicy, attempt: u32) -> Duration {
    let exp = retry
        .initial_backoff
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(retry.max_backoff);
    // "Equal jitter": at least half the backoff, so retries never hammer, never in lockstep.
    let half = exp / 2;
    half + rand::rng().random_range(Duration::ZERO..=half)
}

/// An error and its causes on one line, without the URL (it is named separately).
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    if e.is_timeout() {
        parts.push("timed out".to_string());
    } else if e.is_connect() {
        parts.push("connection failed".to_string());
    }
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        parts.push("request failed".to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let retry = RetryPolicy::default();
        for attempt in 1..10 {
            let d = jittered_backoff(&retry, attempt);
            let exp = retry
                .initial_backoff
                .saturating_mul(1 << (attempt - 1))
                .min(retry.max_backoff);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d:?} vs {exp:?}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("7"))),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static(
                "Sun, 06 Nov 1994 08:49:37 GMT"
            ))),
            Some(Duration::ZERO)
        );
        assert_eq!(
            httpdate_to_unix("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("soon"))),
            None
        );
    }

    #[test]
    fn loopback_only_for_plain_http() {
        for ok in [
            "http://127.0.0.1:1/",
            "http://[::1]:1/",
            "http://localhost/",
            "http://127.9.9.9/",
        ] {
            assert!(is_loopback_url(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/",
            "http://api.ngrok.com/",
            "http://localhost.evil.com/",
        ] {
            assert!(!is_loopback_url(&Url::parse(bad).unwrap()), "{bad}");
        }
        let options = |url: &str| ClientOptions {
            base_url: Url::parse(url).unwrap(),
            api_key: SecretString::from("k"),
            requests_per_minute: NonZeroU32::new(60).unwrap(),
            max_concurrent_requests: NonZeroU32::new(2).unwrap(),
            budget_file: None,
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
        };
        assert!(Client::new(options("http://api.ngrok.com")).is_err());
        assert!(Client::new(options("https://api.ngrok.com")).is_ok());
        assert!(Client::new(options("http://127.0.0.1:9")).is_ok());
    }

    #[test]
    fn decode_errors_never_quote_the_body() {
        let err =
            decode::<TunnelCredential>(br#"{"id": 5, "token": "SECRET"}"#, "GET /x").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidResponse);
        assert!(!err.to_string().contains("SECRET"));
        let err = decode::<TlsCertificate>(br#"{"id": "cert_1"}"#, "GET /x").unwrap_err();
        assert!(
            err.to_string().contains("missing field `not_before`"),
            "{err}"
        );
        let err = decode::<TlsCertificate>(br#"{"id": "cert"#, "GET /x").unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn urls_escape_ids_and_keep_a_base_path() {
        let client = Client::new(ClientOptions {
            base_url: Url::parse("http://127.0.0.1:9/prefix").unwrap(),
            api_key: SecretString::from("k"),
            requests_per_minute: NonZeroU32::new(60).unwrap(),
            max_concurrent_requests: NonZeroU32::new(2).unwrap(),
            budget_file: None,
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
        })
        .unwrap();
        assert_eq!(
            client.url(&["tls_certificates", "a/b?c"]).as_str(),
            "http://127.0.0.1:9/prefix/tls_certificates/a%2Fb%3Fc"
        );
        assert_eq!(
            client.resource_label(&client.url(&["reserved_domains", "rd_1", "certificate"])),
            "reserved_domains"
        );
    }
}
