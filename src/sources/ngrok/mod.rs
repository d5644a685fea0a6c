//! The ngrok API client: transport (auth, version header, budget, retries), paging, wire types.

mod budget;
mod client;
mod error;
mod types;

use std::path::Path;
use std::sync::Arc;

pub use budget::RollingWindow;
pub use client::{
    decode, error_from_body, Client, ClientOptions, RequestObserver, RetryPolicy, PAGE_LIMIT,
};
pub use error::{ApiError, ErrorKind};
pub use types::*;

use crate::config::ApiSettings;

/// The file in `state.dir` where the budget keeps the times of recent requests.
pub const BUDGET_FILE: &str = "api-budget.json";

/// The one way the commands and the daemon build a client for the configured account;
/// `observer` (the daemon's metrics and liveness) is told of every attempt. The budget counts
/// the requests earlier processes recorded in `state_dir`.
pub fn client_for(
    api: &ApiSettings,
    state_dir: &Path,
    observer: Option<Arc<dyn RequestObserver>>,
) -> Result<Client, ApiError> {
    let options = ClientOptions {
        budget_file: Some(state_dir.join(BUDGET_FILE)),
        base_url: api.url.clone(),
        api_key: api.key.clone(),
        requests_per_minute: api.requests_per_minute,
        max_concurrent_requests: api.max_concurrent_requests,
        timeout: api.timeout,
        retry: RetryPolicy::default(),
    };
    match observer {
        Some(observer) => Client::with_observer(options, observer),
        None => Client::new(options),
    }
}
