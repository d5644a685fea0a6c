//! The ngrok API client: transport (auth, version header, budget, retries), paging, wire types.

mod budget;
mod client;
mod error;
mod types;

pub use budget::TokenBucket;
pub use client::{
    is_loopback_url, Client, ClientOptions, RequestObserver, RetryPolicy, PAGE_LIMIT,
};
pub use error::{ApiError, ErrorKind};
pub use types::*;
