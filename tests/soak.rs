//! The soak harness (benches/soak.py) at 100 syncs with a fixed seed: the `run` binary on a 1 s
//! schedule against the simulator with random faults (5xx, 429, drops, latency near the timeout,
//! garbage, truncated bodies), a json webhook receiver and a real Alertmanager behind a recording
//! proxy. benches/soak.sh runs the same harness for 1,000 syncs.
//!
//! Needs python3 and Alertmanager (Debian prometheus-alertmanager; .ci/run installs it).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The seed of the faults: the same run every time (`SOAK_SEED` to try another).
const SEED: u64 = 20_261_125;
const SYNCS: u32 = 100;

/// Runs the harness and returns its JSON report.
fn soak() -> Value {
    let seed = std::env::var("SOAK_SEED").unwrap_or_else(|_| SEED.to_string());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/soak.py");
    let syncs = SYNCS.to_string();
    let args = [
        script.to_str().unwrap(),
        "--bin",
        common::bin(),
        "--syncs",
        &syncs,
        "--seed",
        &seed,
        "--max-minutes",
        "4",
    ];
    let child = Command::new("python3")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs benches/soak.py");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "benches/soak.py failed: {stdout}");
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON report");
    println!("{report:#}");
    report
}

fn number(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {report}"))
}

/// One soak run, all its goals: no crash, no resolve and no flap at either receiver, no push
/// after the previous push's `endsAt` (Alertmanager's `endsAt` counts from each push, and firing
/// alerts are re-pushed while a sync runs long), no 429 from the simulator's own limits.
#[test]
fn soak_100_syncs_under_random_faults() {
    let r = soak();
    assert_eq!(r["completed"], true, "{SYNCS} syncs within 4 minutes: {r}");
    assert_eq!(number(&r, "crashes"), 0, "{r}");
    // The json receiver: every alert fired once and nothing resolved (the account never
    // changes; a failed sync resolves nothing).
    assert_eq!(r["flaps_json"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["json_resolves"].as_array().unwrap().len(), 0, "{r}");
    assert!(
        number(&r, "json_alerts") > 0,
        "the json receiver got nothing: {r}"
    );
    assert_eq!(number(&r, "flaps"), 0, "{r}");
    assert_eq!(number(&r, "late_pushes"), 0, "{r}");
    // The client's budget keeps the simulator's own limits from ever answering 429.
    assert_eq!(number(&r, "own_429s"), 0, "{r}");
    assert!(
        number(&r, "injected_answers") > 0,
        "no fault was injected: {r}"
    );
}
