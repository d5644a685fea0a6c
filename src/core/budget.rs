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

/// The account's own limit: 120 requests in any rolling 60 s (overview.txt, ERR_NGROK_226).
pub const ACCOUNT_REQUESTS_PER_MINUTE: u32 = 120;

/// A warning when `api.requests_per_minute` is above the account's own limit, unless the API is
/// on loopback (the simulator, whose limit is its own).
pub fn rate_warning(per_minute: u32, api_on_loopback: bool) -> Option<String> {
    (per_minute > ACCOUNT_REQUESTS_PER_MINUTE && !api_on_loopback).then(|| {
        format!(
            "api.requests_per_minute = {per_minute} is above the account's own limit of {ACCOUNT_REQUESTS_PER_MINUTE} requests per 60 s: past it the API answers 429 (ERR_NGROK_226) and requests wait; keep it at most {ACCOUNT_REQUESTS_PER_MINUTE}, less if other tools use the account"
        )
    })
}

/// The least time the budget lets one sync of `per_sync` requests take: a rolling window of
/// `per_minute` lets that many through at once, then as many each minute after.
pub fn budget_bound_sync(per_sync: u64, per_minute: u32) -> Duration {
    let per_minute = u64::from(per_minute.max(1));
    Duration::from_secs(per_sync.saturating_sub(1) / per_minute * 60)
}

/// `schedule.stale_after` when the file does not set it: three intervals, or twice the time the
/// budget needs for one sync when that is longer — a sync that must wait for the budget is not
/// a stale one.
pub fn default_stale_after(interval: Duration, budget_bound: Duration) -> Duration {
    interval
        .saturating_mul(3)
        .max(budget_bound.saturating_mul(2))
}

/// What `/readyz` adds when the budget makes a sync longer than the schedule's interval.
pub fn budget_note(interval: Duration, per_sync: u64, per_minute: u32) -> Option<String> {
    let needs = budget_bound_sync(per_sync, per_minute);
    (needs > interval).then(|| {
        format!(
            "a sync needs at least {} of request budget ({per_sync} requests at api.requests_per_minute = {per_minute}), longer than the schedule's interval of {}",
            humantime::format_duration(needs),
            humantime::format_duration(interval)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_bound_sync_stays_ready_and_says_why() {
        let min = |m: u64| Duration::from_secs(60 * m);
        // 201 requests (10,000 + 10,000) at 60 a minute: 3 more minutes after the first 60.
        assert_eq!(budget_bound_sync(201, 60), min(3));
        assert_eq!(budget_bound_sync(60, 60), Duration::ZERO);
        assert_eq!(budget_bound_sync(61, 60), min(1));
        // 100,000 + 100,000 domains: 2,001 requests take 33 minutes at 60 a minute.
        assert_eq!(budget_bound_sync(2_001, 60), min(33));
        // The default: the larger of three 5-minute intervals and twice the sync.
        assert_eq!(default_stale_after(min(5), min(3)), min(15));
        assert_eq!(default_stale_after(min(5), min(33)), min(66));
        let note = budget_note(min(5), 2_001, 60).unwrap();
        assert!(
            note.contains("at least 33m") && note.contains("2001 requests"),
            "{note}"
        );
        assert!(budget_note(min(5), 201, 60).is_none());
    }

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

    #[test]
    fn a_budget_above_the_accounts_limit_is_named_unless_the_api_is_on_loopback() {
        let w = rate_warning(600, false).unwrap();
        assert!(
            w.contains("api.requests_per_minute = 600") && w.contains("120"),
            "{w}"
        );
        assert!(rate_warning(120, false).is_none());
        assert!(
            rate_warning(600, true).is_none(),
            "the simulator has its own limit"
        );
    }
}
