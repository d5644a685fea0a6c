//! A hostile API on 127.0.0.1:0: endless bodies and paging that never ends are cut off with a
//! clear error instead of exhausting the watchdog; paging the record leaves open still works.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use ngrok_cert_watchdog::sources::ngrok::{ApiError, Client, ErrorKind, RetryPolicy};

/// Serves `router` on 127.0.0.1:0; a client for it.
async fn serve(router: Router) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let url = format!("http://{addr}");
    common::client_for_url(&url, RetryPolicy::default())
}

fn credentials_page(ids: &[String], next: Option<String>) -> serde_json::Value {
    let items: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "acl": []}))
        .collect();
    serde_json::json!({"credentials": items, "next_page_uri": next})
}

async fn list(client: &Client) -> (Result<usize, ApiError>, Duration) {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), client.list_credentials())
        .await
        .expect("the list ends within 30 s");
    (result.map(|l| l.len()), started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_body_is_cut_off_with_a_clear_error() {
    let endless = || async {
        let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
        let stream = futures_util::stream::repeat(Ok::<_, std::convert::Infallible>(chunk));
        (
            [("content-type", "application/json")],
            Body::from_stream(stream),
        )
    };
    let client = serve(Router::new().route("/credentials", get(endless))).await;
    let (result, _) = list(&client).await;
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{e}");
    assert!(e.to_string().contains("larger than 8 MiB"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_declared_body_is_not_read_at_all() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A raw server: an HTTP server library would not send a length it does not mean.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 600000000\r\n\r\n{}";
                let _ = socket.write_all(head.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(20)).await;
            });
        }
    });
    let client = common::client_for_url(&format!("http://{addr}"), RetryPolicy::default());
    let (result, elapsed) = list(&client).await;
    let e = result.unwrap_err();
    assert!(e.to_string().contains("larger than 8 MiB"), "{e}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[derive(serde::Deserialize)]
struct Paging {
    before_id: Option<String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_page_ends_the_list_even_if_it_links_onwards() {
    // A full last page may link to an empty one (undocumented either way; ngrok's Go client
    // stops at an empty page): the items are all there, and the list ends without an error.
    let served = Arc::new(AtomicUsize::new(0));
    let handler = |State(n): State<Arc<AtomicUsize>>, Query(p): Query<Paging>| async move {
        n.fetch_add(1, Ordering::SeqCst);
        let (ids, next): (&[&str], String) = match p.before_id.as_deref() {
            None => (&["cr_4", "cr_3"], "/credentials?before_id=cr_3".into()),
            Some("cr_3") => (&["cr_2", "cr_1"], "/credentials?before_id=cr_1".into()),
            Some(other) => (&[], format!("/credentials?before_id={other}x")),
        };
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        axum::Json(credentials_page(&ids, Some(next)))
    };
    let router = Router::new()
        .route("/credentials", get(handler))
        .with_state(Arc::clone(&served));
    let client = serve(router).await;
    let (result, _) = list(&client).await;
    assert_eq!(result.unwrap(), 4);
    assert_eq!(served.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_that_do_not_go_back_in_time_end_the_list() {
    // Every page answers the same items with a new link: the ids never get older.
    let handler = |Query(p): Query<Paging>| async move {
        let next = format!(
            "/credentials?before_id={}",
            p.before_id.unwrap_or_default() + "x"
        );
        axum::Json(credentials_page(
            &["cr_2".to_string(), "cr_1".to_string()],
            Some(next),
        ))
    };
    let client = serve(Router::new().route("/credentials", get(handler))).await;
    let (result, _) = list(&client).await;
    let e = result.unwrap_err();
    assert!(e.to_string().contains("repeats or goes back"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn honest_paging_still_reads_every_page() {
    // Three pages of two, newest first, the last without a link.
    let handler = |Query(p): Query<Paging>| async move {
        let (ids, next) = match p.before_id.as_deref() {
            None => (["cr_6", "cr_5"], Some("/credentials?before_id=cr_5")),
            Some("cr_5") => (["cr_4", "cr_3"], Some("/credentials?before_id=cr_3")),
            _ => (["cr_2", "cr_1"], None),
        };
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        axum::Json(credentials_page(&ids, next.map(str::to_string)))
    };
    let client = serve(Router::new().route("/credentials", get(handler))).await;
    let (result, _) = list(&client).await;
    assert_eq!(result.unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operation_id_of_an_undocumented_error_body_comes_from_its_header() {
    // A proxy's error page instead of the documented body: ngrok support still needs the id.
    let page = || async {
        (
            axum::http::StatusCode::BAD_REQUEST,
            [("ngrok-operation-id", "op_2x8Yh3")],
            "<html>bad gateway</html>",
        )
    };
    let client = serve(Router::new().route("/credentials", get(page))).await;
    let (result, _) = list(&client).await;
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadRequest, "{e}");
    assert!(e.to_string().contains("op_2x8Yh3"), "{e}");
    assert!(!e.to_string().contains("<html>"), "{e}");
}
