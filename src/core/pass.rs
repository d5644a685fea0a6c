//! The sync pass's memory and its rules: what one pass concludes from what it saw and from what
//! the passes before it saw. Pure: the sync loop owns the [`PassMemory`] and gets the next one
//! back from [`conclude`], with `now` a parameter (zincati's state machine, without I/O).
//!
//! The rules, each in one place:
//! - `rotation_failed` turns critical after three failed rotation passes of a watch in a row;
//! - a watch skipped for its lock (another process is rotating it) keeps the findings of its
//!   last pass: skipping is not knowing, and must not resolve its alerts;
//! - `sync_failed` is raised from the third failed sync in a row;
//! - a failed sync resolves nothing: what fired keeps firing (the set behind `alerts_firing`,
//!   through [`alerts::carry_over`], the rule `alerts::step` uses for each receiver).

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use crate::core::alerts::{self, Knowledge, Observation};
use crate::core::evaluate;
use crate::core::rotation::{FinalRefusal, RotationResult};
use crate::model::{Finding, FindingKind, Severity};

/// Failures in a row of something that is tried once a pass; the count lives in the variant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Streak {
    /// The last attempt went through (or there has been none).
    #[default]
    Clear,
    /// The last N attempts failed (N ≥ 1).
    Failing(u32),
}

impl Streak {
    /// After one more failure.
    pub fn failed(self) -> Self {
        match self {
            Streak::Clear => Streak::Failing(1),
            Streak::Failing(n) => Streak::Failing(n.saturating_add(1)),
        }
    }

    /// Failures in a row.
    pub fn count(self) -> u32 {
        match self {
            Streak::Clear => 0,
            Streak::Failing(n) => n,
        }
    }
}

/// What the sync loop remembers between passes. Owned by the loop; never shared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassMemory {
    syncs: Streak,
    watches: BTreeMap<String, WatchMemory>,
    /// Alert id → severity of every alert at warning or above that is firing.
    firing: BTreeMap<String, Severity>,
}

/// What is remembered of one `[[watch]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct WatchMemory {
    rotations: Streak,
    /// The findings of its last pass, for a pass that has to skip it.
    findings: Vec<Finding>,
    /// The API's last final refusal of a rotation step, so that the same attempt is not sent
    /// again every pass.
    refusal: Option<FinalRefusal>,
}

impl PassMemory {
    /// Failed syncs in a row.
    pub fn sync_failures(&self) -> u32 {
        self.syncs.count()
    }

    /// Whether a successful sync of this process has looked at `watch` (ran or skipped it).
    pub fn has_seen(&self, watch: &str) -> bool {
        self.watches.contains_key(watch)
    }

    /// Failed rotation passes of `watch` in a row.
    pub fn rotation_failures(&self, watch: &str) -> u32 {
        self.watches.get(watch).map_or(0, |w| w.rotations.count())
    }

    /// The API's last final refusal of `watch`'s rotation, if the last pass that ran it ended so.
    pub fn refusal(&self, watch: &str) -> Option<&FinalRefusal> {
        self.watches.get(watch).and_then(|w| w.refusal.as_ref())
    }

    /// Alerts of this severity firing (`ngrok_cert_watchdog_alerts_firing{severity}`).
    pub fn firing(&self, severity: Severity) -> usize {
        self.firing.values().filter(|s| **s == severity).count()
    }
}

/// What one pass saw.
#[derive(Debug, Clone)]
pub enum Seen {
    /// The account was listed and evaluated; each watch had its pass or was skipped.
    Synced {
        account: Vec<Finding>,
        watches: Vec<WatchSeen>,
    },
    /// The account could not be listed; `kind` names why (an `ApiError` kind).
    Failed { kind: &'static str },
}

/// One `[[watch]]` in one pass.
#[derive(Debug, Clone)]
pub enum WatchSeen {
    /// Its rotation lock was held by another process: nothing was learned about it.
    Skipped { watch: String },
    /// Its pass ran: the rotation's result, the findings it reported, and a final refusal by
    /// the API if there was one.
    Ran {
        watch: String,
        result: RotationResult,
        findings: Vec<Finding>,
        refusal: Option<FinalRefusal>,
    },
}

/// The thresholds of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassPolicy {
    /// Failed rotation passes of a watch in a row before `rotation_failed` is critical.
    pub rotation_failures_before_critical: u32,
    /// Failed syncs in a row before `sync_failed` is raised.
    pub sync_failures_before_alert: u32,
    /// The interval between scheduled syncs (Alertmanager's `endsAt` follows it).
    pub sync_interval: Duration,
}

impl PassPolicy {
    /// The daemon's thresholds for a schedule with this interval.
    pub fn new(sync_interval: Duration) -> Self {
        Self {
            rotation_failures_before_critical: 3,
            sync_failures_before_alert: 3,
            sync_interval,
        }
    }
}

/// What a pass concludes: the memory for the next pass, and what to tell the receivers.
#[derive(Debug, Clone)]
pub struct Conclusion {
    pub memory: PassMemory,
    /// Every finding of this pass, sorted, with whether the account was seen.
    pub observation: Observation,
}

/// The rules of the module doc, applied to one pass.
pub fn conclude(
    memory: &PassMemory,
    seen: Seen,
    policy: &PassPolicy,
    now: OffsetDateTime,
) -> Conclusion {
    let mut next = PassMemory {
        syncs: memory.syncs,
        watches: BTreeMap::new(),
        firing: BTreeMap::new(),
    };
    let (knowledge, mut findings) = match seen {
        Seen::Synced { account, watches } => {
            next.syncs = Streak::Clear;
            let mut findings = account;
            for watch in watches {
                let (name, state, own) = remember_watch(memory, watch, policy);
                findings.extend(own);
                next.watches.insert(name, state);
            }
            (Knowledge::Known, findings)
        }
        Seen::Failed { kind } => {
            next.syncs = memory.syncs.failed();
            // The watches were not looked at either: they keep what they had.
            next.watches = memory.watches.clone();
            (Knowledge::Unknown, sync_failed(next.syncs, kind, policy))
        }
    };
    evaluate::sort(&mut findings);
    let shown: BTreeMap<String, Severity> = findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| (alerts::alert_id(f), f.severity))
        .collect();
    next.firing = alerts::carry_over(&memory.firing, shown, knowledge);
    Conclusion {
        memory: next,
        observation: Observation {
            at: now,
            knowledge,
            findings,
            sync_interval: policy.sync_interval,
        },
    }
}

/// One watch's memory after this pass, and the findings it contributes.
fn remember_watch(
    memory: &PassMemory,
    seen: WatchSeen,
    policy: &PassPolicy,
) -> (String, WatchMemory, Vec<Finding>) {
    match seen {
        WatchSeen::Skipped { watch } => {
            let kept = memory.watches.get(&watch).cloned().unwrap_or_default();
            let findings = kept.findings.clone();
            (watch, kept, findings)
        }
        WatchSeen::Ran {
            watch,
            result,
            findings,
            refusal,
        } => {
            let before = memory.watches.get(&watch).map(|w| w.rotations);
            let rotations = match result {
                RotationResult::Failure => before.unwrap_or_default().failed(),
                RotationResult::Success => Streak::Clear,
                RotationResult::Idle => before.unwrap_or_default(),
            };
            let failing = rotations.count();
            let findings: Vec<Finding> = findings
                .into_iter()
                .map(|f| escalate(f, failing, policy))
                .collect();
            let state = WatchMemory {
                rotations,
                findings: findings.clone(),
                refusal,
            };
            (watch, state, findings)
        }
    }
}

/// A rotation that keeps failing: the old certificate is running out.
fn escalate(mut f: Finding, failing: u32, policy: &PassPolicy) -> Finding {
    if f.kind == FindingKind::RotationFailed && failing >= policy.rotation_failures_before_critical
    {
        f.severity = Severity::Critical;
        f.message = format!("{} ({failing} passes in a row)", f.message);
    }
    f
}

/// The watchdog's own finding once syncs have failed often enough in a row.
fn sync_failed(syncs: Streak, kind: &str, policy: &PassPolicy) -> Vec<Finding> {
    let in_a_row = syncs.count();
    if in_a_row < policy.sync_failures_before_alert {
        return Vec::new();
    }
    vec![Finding {
        severity: Severity::Warning,
        kind: FindingKind::SyncFailed,
        resource_id: "sync".to_string(),
        domain: None,
        message: format!(
            "the last {in_a_row} syncs of the ngrok account failed ({kind}): the watchdog cannot see the account"
        ),
        not_after: None,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn policy() -> PassPolicy {
        PassPolicy::new(Duration::from_secs(300))
    }

    fn finding(kind: FindingKind, severity: Severity, resource: &str) -> Finding {
        Finding {
            severity,
            kind,
            resource_id: resource.to_string(),
            domain: Some("app.example.com".to_string()),
            message: format!("{} {resource}", kind.as_str()),
            not_after: None,
        }
    }

    fn rotation_failed() -> Finding {
        finding(FindingKind::RotationFailed, Severity::Warning, "app")
    }

    fn ran(result: RotationResult, findings: Vec<Finding>) -> WatchSeen {
        WatchSeen::Ran {
            watch: "app".into(),
            result,
            findings,
            refusal: None,
        }
    }

    fn synced(account: Vec<Finding>, watches: Vec<WatchSeen>) -> Seen {
        Seen::Synced { account, watches }
    }

    /// Runs `passes` from an empty memory; the last conclusion.
    fn run(passes: Vec<Seen>) -> Conclusion {
        let mut memory = PassMemory::default();
        let mut last = None;
        for seen in passes {
            let c = conclude(&memory, seen, &policy(), NOW);
            memory = c.memory.clone();
            last = Some(c);
        }
        last.expect("at least one pass")
    }

    fn kinds(c: &Conclusion) -> Vec<(FindingKind, Severity)> {
        c.observation
            .findings
            .iter()
            .map(|f| (f.kind, f.severity))
            .collect()
    }

    #[test]
    fn rotation_failed_turns_critical_on_the_third_failure_in_a_row() {
        let fail = || {
            synced(
                vec![],
                vec![ran(RotationResult::Failure, vec![rotation_failed()])],
            )
        };
        let second = run(vec![fail(), fail()]);
        assert_eq!(
            kinds(&second),
            vec![(FindingKind::RotationFailed, Severity::Warning)]
        );
        assert_eq!(second.memory.rotation_failures("app"), 2);
        let third = run(vec![fail(), fail(), fail()]);
        assert_eq!(
            kinds(&third),
            vec![(FindingKind::RotationFailed, Severity::Critical)]
        );
        assert!(third.observation.findings[0]
            .message
            .ends_with("(3 passes in a row)"));
    }

    #[test]
    fn a_success_clears_the_streak_and_an_idle_pass_keeps_it() {
        let fail = || {
            synced(
                vec![],
                vec![ran(RotationResult::Failure, vec![rotation_failed()])],
            )
        };
        let idle = || synced(vec![], vec![ran(RotationResult::Idle, vec![])]);
        let ok = || synced(vec![], vec![ran(RotationResult::Success, vec![])]);
        assert_eq!(
            run(vec![fail(), fail(), idle()])
                .memory
                .rotation_failures("app"),
            2
        );
        let after_idle = run(vec![fail(), fail(), idle(), fail()]);
        assert_eq!(
            after_idle.observation.findings[0].severity,
            Severity::Critical
        );
        let after_success = run(vec![fail(), fail(), ok(), fail()]);
        assert_eq!(after_success.memory.rotation_failures("app"), 1);
        assert_eq!(
            after_success.observation.findings[0].severity,
            Severity::Warning
        );
    }

    #[test]
    fn a_failed_sync_keeps_the_rotation_streak() {
        let fail = || {
            synced(
                vec![],
                vec![ran(RotationResult::Failure, vec![rotation_failed()])],
            )
        };
        let down = || Seen::Failed { kind: "server" };
        let c = run(vec![fail(), fail(), down(), fail()]);
        assert_eq!(c.memory.rotation_failures("app"), 3);
        assert_eq!(c.observation.findings[0].severity, Severity::Critical);
    }

    #[test]
    fn a_skipped_watch_keeps_its_last_findings_and_streak() {
        let invalid = finding(FindingKind::WatchInvalid, Severity::Warning, "app");
        let skipped = || {
            synced(
                vec![],
                vec![WatchSeen::Skipped {
                    watch: "app".into(),
                }],
            )
        };
        let c = run(vec![
            synced(
                vec![],
                vec![ran(RotationResult::Failure, vec![invalid.clone()])],
            ),
            skipped(),
            skipped(),
        ]);
        assert_eq!(c.observation.findings, vec![invalid]);
        assert_eq!(c.observation.knowledge, Knowledge::Known);
        assert_eq!(c.memory.rotation_failures("app"), 1);
        // A watch never seen before and skipped: nothing to carry.
        assert!(run(vec![skipped()]).observation.findings.is_empty());
    }

    #[test]
    fn a_watch_that_left_the_configuration_is_forgotten() {
        let c = run(vec![
            synced(
                vec![],
                vec![ran(RotationResult::Failure, vec![rotation_failed()])],
            ),
            synced(vec![], vec![]),
        ]);
        assert_eq!(c.memory.rotation_failures("app"), 0);
        assert!(c.observation.findings.is_empty());
    }

    #[test]
    fn sync_failed_from_the_third_failure_in_a_row_and_cleared_by_a_success() {
        let down = || Seen::Failed {
            kind: "unreachable",
        };
        let two = run(vec![down(), down()]);
        assert!(two.observation.findings.is_empty());
        assert_eq!(two.observation.knowledge, Knowledge::Unknown);
        let three = run(vec![down(), down(), down()]);
        assert_eq!(
            kinds(&three),
            vec![(FindingKind::SyncFailed, Severity::Warning)]
        );
        assert!(three.observation.findings[0]
            .message
            .contains("the last 3 syncs of the ngrok account failed (unreachable)"));
        let back = run(vec![down(), down(), down(), synced(vec![], vec![])]);
        assert_eq!(back.memory.sync_failures(), 0);
        assert!(back.observation.findings.is_empty());
        // The count starts again after a success.
        let again = run(vec![down(), down(), synced(vec![], vec![]), down(), down()]);
        assert!(again.observation.findings.is_empty());
    }

    #[test]
    fn a_failed_sync_resolves_nothing_and_a_successful_one_resolves() {
        let dns = finding(FindingKind::ProvisioningFailed, Severity::Critical, "rd_1");
        let expiring = finding(
            FindingKind::CertificateExpiring,
            Severity::Warning,
            "cert_1",
        );
        let info = finding(FindingKind::CertificateUnattached, Severity::Info, "cert_2");
        let first = synced(vec![dns.clone(), expiring, info], vec![]);
        let down = run(vec![first.clone(), Seen::Failed { kind: "server" }]);
        assert_eq!(down.memory.firing(Severity::Critical), 1);
        assert_eq!(down.memory.firing(Severity::Warning), 1);
        assert_eq!(down.memory.firing(Severity::Info), 0);
        let cleared = run(vec![first.clone(), synced(vec![dns], vec![])]);
        assert_eq!(cleared.memory.firing(Severity::Critical), 1);
        assert_eq!(cleared.memory.firing(Severity::Warning), 0);
        // The third failure adds the watchdog's own alert to what keeps firing.
        let f = || Seen::Failed { kind: "server" };
        let long = run(vec![first, f(), f(), f()]);
        assert_eq!(long.memory.firing(Severity::Warning), 2);
    }

    #[test]
    fn a_final_refusal_is_remembered_until_a_pass_ends_otherwise() {
        let refusal = FinalRefusal {
            key: "k1".into(),
            message: "HTTP 400 ERR_NGROK_436".into(),
        };
        let refused = || {
            synced(
                vec![],
                vec![WatchSeen::Ran {
                    watch: "app".into(),
                    result: RotationResult::Failure,
                    findings: vec![rotation_failed()],
                    refusal: Some(refusal.clone()),
                }],
            )
        };
        let skipped = || {
            synced(
                vec![],
                vec![WatchSeen::Skipped {
                    watch: "app".into(),
                }],
            )
        };
        let ok = || synced(vec![], vec![ran(RotationResult::Success, vec![])]);
        assert_eq!(run(vec![refused()]).memory.refusal("app"), Some(&refusal));
        let kept = run(vec![refused(), skipped(), Seen::Failed { kind: "server" }]);
        assert_eq!(kept.memory.refusal("app"), Some(&refusal));
        assert_eq!(run(vec![refused(), ok()]).memory.refusal("app"), None);
        // Reported again each pass: the streak grows to critical.
        let third = run(vec![refused(), refused(), refused()]);
        assert_eq!(third.observation.findings[0].severity, Severity::Critical);
    }

    #[test]
    fn findings_are_sorted_critical_first() {
        let c = run(vec![synced(
            vec![finding(
                FindingKind::CertificateUnattached,
                Severity::Info,
                "cert_2",
            )],
            vec![ran(
                RotationResult::Failure,
                vec![finding(
                    FindingKind::RotationFailed,
                    Severity::Warning,
                    "app",
                )],
            )],
        )]);
        let severities: Vec<Severity> = c.observation.findings.iter().map(|f| f.severity).collect();
        assert_eq!(severities, vec![Severity::Warning, Severity::Info]);
        assert_eq!(c.observation.at, NOW);
    }
}
