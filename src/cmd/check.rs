//! `check`: one sync of the account, the evaluation, a report, a Nagios exit code.
//!
//! Reads the account only: `check` never writes to it.

use std::io::Write as _;
use std::path::Path;

use time::OffsetDateTime;

use crate::config::{Environment, Settings};
use crate::core::evaluate::evaluate;
use crate::model::Finding;
use crate::outputs::report;
use crate::sources::inventory::{self, Inventory};
use crate::sources::ngrok::{self, ApiError};

use super::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

/// The outcome of one check.
pub struct CheckOutcome {
    pub inventory: Inventory,
    pub findings: Vec<Finding>,
}

/// `check [--format text|json]`: exit 0/1/2 by the worst finding, 3 when it could not check.
pub async fn check(path: &Path, env: &Environment, format: ReportFormat) -> Exit {
    let settings = match super::load_settings(path, env, Exit::Unknown) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let outcome = match sync_and_evaluate(&settings).await {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: check: {e}");
            return Exit::Unknown;
        }
    };
    let checked_at = OffsetDateTime::now_utc();
    match format {
        ReportFormat::Json => {
            let doc = report::to_json(&outcome.inventory, &outcome.findings, checked_at);
            // Written as it is serialised: at 100,000 domains the document is ~60 MB.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written = serde_json::to_writer_pretty(&mut out, &doc)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
                .and_then(|()| out.flush());
            if let Err(e) = written {
                eprintln!("ngrok-cert-watchdog: check: cannot write the report: {e}");
                return Exit::Unknown;
            }
        }
        ReportFormat::Text => {
            print!(
                "{}",
                report::to_text(&outcome.inventory, &outcome.findings, checked_at)
            );
        }
    }
    exit_for(&outcome.findings)
}

/// Nagios: 2 when anything is critical, 1 for a warning, 0 otherwise (info never raises it).
pub fn exit_for(findings: &[Finding]) -> Exit {
    use crate::model::Severity;
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Critical) => Exit::Critical,
        Some(Severity::Warning) => Exit::Warning,
        _ => Exit::Ok,
    }
}

/// Syncs and evaluates. `now` is read once, here, at the edge.
pub async fn sync_and_evaluate(settings: &Settings) -> Result<CheckOutcome, ApiError> {
    let client = ngrok::client_for(&settings.api, &settings.state_dir, None)?;
    let now = OffsetDateTime::now_utc();
    let inventory = inventory::sync(&client, now).await?;
    let findings = evaluate(&inventory, &settings.expiry, now);
    Ok(CheckOutcome {
        inventory,
        findings,
    })
}
