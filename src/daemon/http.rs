//! The daemon's HTTP endpoints on `metrics.listen`: `/metrics`, `/healthz`, `/readyz`.

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

use super::Shared;

/// The routes, over the daemon's shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(serve_readyz))
        .with_state(shared)
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

/// 200 while the last successful sync is younger than `stale_after`, else 503 with the reason.
fn readiness(
    last_success: Option<OffsetDateTime>,
    stale_after: Duration,
    now: OffsetDateTime,
) -> (StatusCode, String) {
    match last_success {
        Some(at) if (now - at).unsigned_abs() <= stale_after => {
            (StatusCode::OK, "ready\n".to_string())
        }
        Some(at) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stale: the last successful sync was {} ago (schedule.stale_after is {})\n",
                humantime::format_duration(Duration::from_secs(
                    (now - at).whole_seconds().max(0) as u64
                )),
                humantime::format_duration(stale_after)
            ),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no successful sync yet\n".to_string(),
        ),
    }
}
