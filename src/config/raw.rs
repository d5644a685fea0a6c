//! The configuration file as written: serde structs that accept it, unknown keys rejected.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) api: RawApi,
    #[serde(default)]
    pub(super) schedule: RawSchedule,
    #[serde(default)]
    pub(super) expiry: RawExpiry,
    #[serde(default)]
    pub(super) metrics: RawMetrics,
    #[serde(default)]
    pub(super) state: RawState,
    #[serde(default)]
    pub(super) edge: RawEdge,
    #[serde(default)]
    pub(super) dns: RawDns,
    #[serde(default)]
    pub(super) watch: Vec<RawWatch>,
    #[serde(default)]
    pub(super) webhook: Vec<RawWebhook>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) url: Option<String>,
    pub(super) key_file: Option<PathBuf>,
    pub(super) requests_per_minute: Option<i64>,
    pub(super) max_concurrent_requests: Option<i64>,
    pub(super) timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub(super) sync: Option<String>,
    pub(super) stale_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpiry {
    pub(super) warning: Option<String>,
    pub(super) critical: Option<String>,
    pub(super) renewal_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: Option<String>,
    pub(super) status_page: Option<bool>,
    pub(super) allowed_hosts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    pub(super) dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEdge {
    pub(super) enabled: Option<bool>,
    pub(super) interval: Option<String>,
    pub(super) timeout: Option<String>,
    pub(super) concurrency: Option<i64>,
    pub(super) port: Option<i64>,
    pub(super) failures_before_finding: Option<i64>,
    pub(super) propagation_grace: Option<String>,
    #[serde(default)]
    pub(super) resolve: BTreeMap<String, String>,
    pub(super) trust_anchors: Option<PathBuf>,
    #[serde(default)]
    pub(super) wildcard_probe_names: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    pub(super) enabled: Option<bool>,
    pub(super) nameservers: Option<Vec<String>>,
    pub(super) timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatch {
    pub(super) name: Option<String>,
    pub(super) certificate: Option<PathBuf>,
    pub(super) private_key: Option<PathBuf>,
    #[serde(default)]
    pub(super) domains: Vec<String>,
    pub(super) delete_replaced: Option<bool>,
    pub(super) take_over_managed: Option<bool>,
    pub(super) debounce: Option<String>,
    pub(super) settle_timeout: Option<String>,
    pub(super) poll_interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) name: Option<String>,
    pub(super) url: Option<String>,
    pub(super) format: Option<String>,
    pub(super) secret_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    pub(super) min_severity: Option<String>,
    pub(super) repeat_interval: Option<String>,
}
