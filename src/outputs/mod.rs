//! What the watchdog tells: Prometheus metrics, the `check` report, alert delivery and payloads.

pub mod account_metrics;
pub mod alert_format;
pub mod delivery;
pub mod metrics;
pub mod report;
