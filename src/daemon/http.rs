//! The daemon's HTTP endpoints on `metrics.listen`: `/metrics`, `/healthz`, `/readyz`, and (with
//! `metrics.status_page`) the status page `/` and its data `/api/v1/status`, which answer only
//! requests whose Host is the listen address, `localhost` or in `metrics.allowed_hosts`.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use time::OffsetDateTime;

use crate::outputs::metrics::Encoding;
use crate::outputs::status_page::{self, HeaderFacts, Health};

use super::Shared;

/// The routes, over the daemon's shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(serve_readyz));
    // Read once: a reload that turns the page on or off takes effect after a restart, like
    // `metrics.listen`.
    if shared.active().settings.metrics.status_page {
        router = router
            .route("/", get(serve_page))
            .route("/api/v1/status", get(serve_status));
    }
    router.with_state(shared)
}

/// The account's part goes out as the shared gzip buffer itself (a reference count, no copy)
/// when the scraper takes gzip, as Prometheus does, else inflated chunk by chunk as it is sent;
/// then the daemon's own series.
async fn serve_metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> impl IntoResponse {
    let accepts_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.trim().split(';').next() == Some("gzip"));
    let encoding = if accepts_gzip {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    let page = shared.metrics.render_as(encoding);
    let chunks = page.chunks().map(Ok::<_, std::convert::Infallible>);
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::VARY, "Accept-Encoding"),
        ],
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response();
    if encoding == Encoding::Gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

async fn serve_readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let stale_after = shared.stale_after();
    let (status, mut text) = readiness(
        shared.last_success(),
        stale_after,
        OffsetDateTime::now_utc(),
    );
    if let Some(note) = shared.budget_note() {
        text = format!("{}; {note}\n", text.trim_end());
    }
    (status, text)
}

/// Ready while the last successful sync is younger than `stale_after`.
fn health(
    last_success: Option<OffsetDateTime>,
    stale_after: Duration,
    now: OffsetDateTime,
) -> Health {
    match last_success {
        Some(at) if (now - at).unsigned_abs() <= stale_after => Health::Ready,
        Some(_) => Health::Stale { stale_after },
        None => Health::NoSyncYet,
    }
}

/// 200 while the last successful sync is younger than `stale_after`, else 503 with the reason.
fn readiness(
    last_success: Option<OffsetDateTime>,
    stale_after: Duration,
    now: OffsetDateTime,
) -> (StatusCode, String) {
    match (health(last_success, stale_after, now), last_success) {
        (Health::Ready, _) => (StatusCode::OK, "ready\n".to_string()),
        (Health::Stale { .. }, Some(at)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stale: the last successful sync was {} ago (schedule.stale_after is {})\n",
                humantime::format_duration(Duration::from_secs(
                    (now - at).whole_seconds().max(0) as u64
                )),
                humantime::format_duration(stale_after)
            ),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no successful sync yet\n".to_string(),
        ),
    }
}

/// Whether `host` (a Host header) names this server: the listen address (any address when it
/// listens on all of them: an address literal cannot be rebound), `localhost`, or an allowed
/// name. The port is not compared: DNS rebinding is about the name.
fn host_allowed(host: Option<&str>, listen: SocketAddr, allowed: &[String]) -> bool {
    let Some(host) = host else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || allowed.contains(&name) {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(ip) => ip == listen.ip() || listen.ip().is_unspecified(),
        Err(_) => false,
    }
}

/// `None` when the request's Host may see the status page, else the refusal.
fn refuse_host(shared: &Shared, headers: &HeaderMap) -> Option<axum::response::Response> {
    let settings = shared.active().settings.clone();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if host_allowed(
        host,
        settings.metrics.listen,
        &settings.metrics.allowed_hosts,
    ) {
        return None;
    }
    let shown: String = host.unwrap_or("(none)").chars().take(100).collect();
    Some(
        (
            StatusCode::FORBIDDEN,
            format!(
                "Host {shown:?} is not this server's address, localhost or in metrics.allowed_hosts; refused (DNS rebinding)\n"
            ),
        )
            .into_response(),
    )
}

/// Whether the snapshot is stale: the latest sync failed, or `/readyz` would say 503.
fn stale(shared: &Shared, now: OffsetDateTime) -> bool {
    shared.last_sync_failed.load(Ordering::Relaxed)
        || health(shared.last_success(), shared.stale_after(), now) != Health::Ready
}

async fn serve_status(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> axum::response::Response {
    if let Some(refusal) = refuse_host(&shared, &headers) {
        return refusal;
    }
    let json = [
        (header::CONTENT_TYPE, "application/json"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    let Some(snapshot) = shared.status() else {
        let body = r#"{"error":"no successful sync yet","stale":true,"last_success":null}"#;
        return (StatusCode::SERVICE_UNAVAILABLE, json, body).into_response();
    };
    let chunks = snapshot
        .document(stale(&shared, OffsetDateTime::now_utc()))
        .map(Ok::<_, std::convert::Infallible>);
    (json, Body::from_stream(futures_util::stream::iter(chunks))).into_response()
}

async fn serve_page(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> axum::response::Response {
    if let Some(refusal) = refuse_host(&shared, &headers) {
        return refusal;
    }
    let now = OffsetDateTime::now_utc();
    let snapshot = shared.status();
    let facts = HeaderFacts {
        summary: snapshot.as_ref().map(|s| s.summary),
        last_success: shared.last_success(),
        last_sync_failed: shared.last_sync_failed.load(Ordering::Relaxed),
        health: health(shared.last_success(), shared.stale_after(), now),
        budget_note: shared.budget_note(),
        refresh: super::status::refresh(shared.active().settings.schedule.interval),
        now,
    };
    let (status, body): (StatusCode, Box<dyn Iterator<Item = bytes::Bytes> + Send>) =
        match &snapshot {
            Some(s) => (StatusCode::OK, Box::new(s.body())),
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                Box::new(std::iter::once(bytes::Bytes::from_static(
                    b"<main id=\"account\"><p>Waiting for the first successful sync of the account.</p></main>\n",
                ))),
            ),
        };
    let chunks = std::iter::once(bytes::Bytes::from_static(status_page::HEAD.as_bytes()))
        .chain(std::iter::once(bytes::Bytes::from(status_page::header(
            &facts,
        ))))
        .chain(body)
        .chain(std::iter::once(bytes::Bytes::from_static(
            status_page::TAIL.as_bytes(),
        )))
        .map(Ok::<_, std::convert::Infallible>);
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                status_page::content_security_policy(),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_page_answers_its_own_names_only() {
        let loopback: SocketAddr = "127.0.0.1:10742".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:10742".parse().unwrap();
        let allowed = vec!["watchdog.internal".to_string()];
        for (host, listen, ok) in [
            ("127.0.0.1:10742", loopback, true),
            ("127.0.0.1", loopback, true),
            ("localhost:10742", loopback, true),
            ("LOCALHOST.", loopback, true),
            ("watchdog.internal:10742", loopback, true),
            ("Watchdog.Internal", loopback, true),
            ("evil.example.com:10742", loopback, false),
            ("localhost.evil.example.com", loopback, false),
            ("10.0.0.5:10742", loopback, false),
            ("10.0.0.5:10742", any, true),
            ("[::1]:10742", "[::1]:10742".parse().unwrap(), true),
            ("[::1]:10742", loopback, false),
            ("", loopback, false),
        ] {
            assert_eq!(
                host_allowed(Some(host), listen, &allowed),
                ok,
                "{host} on {listen}"
            );
        }
        assert!(!host_allowed(None, loopback, &allowed));
    }
}
