//! The ngrok API client: transport (auth, version header, budget, retries), paging, wire types.

mod types;

pub use types::*;
