//! The small sections: `[schedule]` (cron and the interval it implies), `[expiry]`, `[metrics]`,
//! `[state]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::expiry::Threshold;
use crate::model::ExpiryPolicy;

use super::problems::Problems;
use super::raw::{RawExpiry, RawMetrics, RawSchedule, RawState};
use super::{
    Environment, MetricsSettings, ScheduleSettings, StaleAfter, DEFAULT_METRICS_LISTEN,
    DEFAULT_STATE_DIR, DEFAULT_SYNC,
};

impl RawSchedule {
    pub(super) fn validate(self, p: &mut Problems) -> ScheduleSettings {
        let sync = self.sync.unwrap_or_else(|| DEFAULT_SYNC.to_string());
        let (cron, interval) = match parse_cron(&sync) {
            Ok(found) => found,
            Err(why) => {
                p.push("schedule.sync", why);
                parse_cron(DEFAULT_SYNC).expect("the default schedule parses")
            }
        };
        let (stale_after, stale_after_from) = match self.stale_after.as_deref() {
            Some(text) => (
                p.duration("schedule.stale_after", Some(text), "15m"),
                StaleAfter::File,
            ),
            None => (interval.saturating_mul(3), StaleAfter::Default),
        };
        ScheduleSettings {
            sync,
            cron,
            interval,
            stale_after,
            stale_after_from,
        }
    }
}

impl RawExpiry {
    pub(super) fn validate(self, p: &mut Problems) -> ExpiryPolicy {
        let defaults = ExpiryPolicy::default();
        let mut threshold = |key: &str, value: Option<String>, default: Threshold| match value {
            None => default,
            Some(text) => text.parse::<Threshold>().unwrap_or_else(|why| {
                p.push(key, why);
                default
            }),
        };
        let warning = threshold("expiry.warning", self.warning, defaults.warning);
        let critical = threshold("expiry.critical", self.critical, defaults.critical);
        let expiry = ExpiryPolicy {
            warning,
            critical,
            renewal_grace: p.duration("expiry.renewal_grace", self.renewal_grace.as_deref(), "24h"),
        };
        if let Some(why) = expiry.critical.looser_than(&expiry.warning) {
            p.push(
                "expiry.critical",
                format!(
                    "\"{}\" is looser than expiry.warning (\"{}\"): {why}; critical must come no earlier than warning",
                    expiry.critical, expiry.warning
                ),
            );
        }
        expiry
    }
}

impl RawMetrics {
    pub(super) fn validate(self, p: &mut Problems) -> MetricsSettings {
        let text = self.listen.as_deref().unwrap_or(DEFAULT_METRICS_LISTEN);
        let listen = match text.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                p.push(
                    "metrics.listen",
                    format!("\"{text}\" is not an address:port such as \"127.0.0.1:10742\""),
                );
                DEFAULT_METRICS_LISTEN.parse().expect("the default parses")
            }
        };
        let mut allowed_hosts = Vec::new();
        for host in self.allowed_hosts.unwrap_or_default() {
            match allowed_host(&host) {
                Ok(h) => allowed_hosts.push(h),
                Err(why) => p.push("metrics.allowed_hosts", why),
            }
        }
        MetricsSettings {
            listen,
            status_page: self.status_page.unwrap_or(true),
            allowed_hosts,
        }
    }
}

/// A host name as a Host header carries it, without the port: letters, digits, `-`, `.`.
fn allowed_host(text: &str) -> Result<String, String> {
    let host = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(host)
    } else {
        Err(format!(
            "\"{text}\" is not a host name such as \"watchdog.internal\" (no port, no scheme)"
        ))
    }
}

impl RawState {
    /// `state.dir`, else systemd's `$STATE_DIRECTORY`, else the default.
    pub(super) fn validate(self, env: &Environment) -> PathBuf {
        match (self.dir, &env.state_directory) {
            (Some(dir), _) => dir,
            (None, Some(dir)) => dir.clone(),
            (None, None) => PathBuf::from(DEFAULT_STATE_DIR),
        }
    }
}

/// A cron expression with a seconds field (as tokio-cron-scheduler parses it) and its interval.
pub fn parse_cron(text: &str) -> Result<(croner::Cron, Duration), String> {
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(text)
        .map_err(|e| {
            format!("\"{text}\" is not a cron expression with a seconds field ({e}); e.g. \"0 */5 * * * *\" for every five minutes")
        })?;
    // The longest gap over the next occurrences: stale_after and Alertmanager's endsAt must
    // outlast the longest wait between two syncs ("0 0,5 * * * *" waits 55 minutes once an hour).
    let never = |e: croner::errors::CronError| format!("\"{text}\" never fires ({e})");
    let mut at = cron
        .find_next_occurrence(&chrono::Utc::now(), false)
        .map_err(never)?;
    let mut longest: Option<Duration> = None;
    for _ in 0..256 {
        let next = cron.find_next_occurrence(&at, false).map_err(never)?;
        let gap = (next - at).to_std().unwrap_or(Duration::ZERO);
        if !gap.is_zero() {
            longest = Some(longest.map_or(gap, |s| s.max(gap)));
        }
        at = next;
    }
    let interval = longest.ok_or_else(|| format!("\"{text}\" never fires twice"))?;
    Ok((cron, interval))
}
