//! `check`: one sync of the account, the evaluation, a report, a Nagios exit code.
//!
//! Reads the account only: `check` never writes to it.

use time::OffsetDateTime;

use crate::config::Settings;
use crate::evaluate::{evaluate, Finding};
use crate::inventory::{self, Inventory};
use crate::ngrok::{ApiError, Client, ClientOptions, RetryPolicy};

/// Nagios: the check itself could not be done.
pub const EXIT_UNKNOWN: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

/// A client for the configured account.
pub fn client(settings: &Settings) -> Result<Client, ApiError> {
    Client::new(ClientOptions {
        base_url: settings.api.url.clone(),
        api_key: settings.api.key.clone(),
        requests_per_minute: settings.api.requests_per_minute,
        timeout: settings.api.timeout,
        retry: RetryPolicy::default(),
    })
}

/// The outcome of one check.
pub struct CheckOutcome {
    pub inventory: Inventory,
    pub findings: Vec<Finding>,
}

/// Syncs and evaluates. `now` is read once, here, at the edge.
pub async fn check(settings: &Settings) -> Result<CheckOutcome, ApiError> {
    let client = client(settings)?;
    let now = OffsetDateTime::now_utc();
    let inventory = inventory::sync(&client, now).await?;
    let findings = evaluate(&inventory, &settings.expiry, now);
    Ok(CheckOutcome {
        inventory,
        findings,
    })
}
