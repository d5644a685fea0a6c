//! What the watchdog tells: Prometheus metrics, the `check` report, the status page, alert
//! delivery and payloads.

pub mod account_metrics;
pub mod alert_format;
pub mod delivery;
pub mod metrics;
pub mod report;
pub mod status_page;
