//! What the watchdog tells: Prometheus metrics, the `check` report, alert delivery and payloads.

pub mod alert_format;
pub mod delivery;
pub mod metrics;
pub mod report;
