//! Whether a schedule fits the request budget: a sync every `interval` needing `per_sync`
//! requests uses `per_sync × 60 s / interval` requests a minute.

use std::time::Duration;

/// Requests one sync needs at the least: one page of each of the three lists.
pub const MIN_REQUESTS_PER_SYNC: u64 = 3;

/// A warning when syncs every `interval`, each taking `per_sync` requests (the last sync's count,
/// or [`MIN_REQUESTS_PER_SYNC`] when unknown), need more than `per_minute` requests a minute.
pub fn schedule_warning(
    schedule: &str,
    interval: Duration,
    per_sync: Option<u64>,
    per_minute: u32,
) -> Option<String> {
    let per_sync = per_sync
        .unwrap_or(MIN_REQUESTS_PER_SYNC)
        .max(MIN_REQUESTS_PER_SYNC);
    let interval_s = interval.as_secs_f64().max(1.0);
    let needed = per_sync as f64 * 60.0 / interval_s;
    if needed <= f64::from(per_minute) {
        return None;
    }
    let basis = if per_sync > MIN_REQUESTS_PER_SYNC {
        "the last sync's count"
    } else {
        "at least"
    };
    Some(format!(
        "schedule.sync \"{schedule}\" starts a sync every {} needing {per_sync} requests ({basis}): about {:.0} requests a minute, more than api.requests_per_minute = {per_minute}; syncs will wait for the budget and run late (space them out, or raise the budget if the account's 120 a minute allow it)",
        humantime::format_duration(interval),
        needed.ceil()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_the_budget_cannot_sustain_is_named() {
        let every = |s| Duration::from_secs(s);
        // Every 2 s with 3 requests: 90 a minute against 60.
        let w = schedule_warning("*/2 * * * * *", every(2), None, 60).unwrap();
        assert!(w.contains("about 90 requests a minute"), "{w}");
        assert!(w.contains("api.requests_per_minute = 60"), "{w}");
        // The default: every 5 minutes.
        assert!(schedule_warning("0 */5 * * * *", every(300), None, 60).is_none());
        // A large account: 201 requests every minute.
        let w = schedule_warning("0 * * * * *", every(60), Some(201), 60).unwrap();
        assert!(w.contains("201 requests (the last sync's count)"), "{w}");
        assert!(schedule_warning("0 */5 * * * *", every(300), Some(201), 60).is_none());
    }
}
