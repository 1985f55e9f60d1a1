//! `dovetail policy judge` as a policy author and their CI run it: a policy
//! against the built-in over the reference scenarios or their own, a table
//! per scenario and a verdict that fails the build when the policy fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dovetail_tests::bounded::{self, Bounded, Caps};
use dovetail_tests::{example, guest};

/// The reference scenarios, in the order the judge runs them.
const REFERENCE: [&str; 5] = [
    "demo",
    "batch-burst",
    "start-state",
    "spot-storm",
    "churn-12h",
];

/// Every measure the table shows per scenario.
const MEASURES: [&str; 6] = [
    "cost (USD)",
    "disruptions",
    "pods evicted",
    "pending p99 (s)",
    "policy failures",
    "policy timeouts",
];

fn judge(args: &[&str], timeout: Duration) -> Bounded {
    let mut all = vec!["policy", "judge"];
    all.extend_from_slice(args);
    bounded::run(
        Path::new(env!("CARGO_BIN_EXE_dovetail")),
        &all,
        None,
        Caps {
            memory_mib: 2048,
            timeout,
        },
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A directory holding `demo.yaml` (provisioning, then consolidation after a
/// scale-down), the user's own scenario.
fn demo_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(example("scenarios/demo.yaml"), dir.path().join("demo.yaml")).unwrap();
    dir
}

/// A hostile policy's config: `mode` on every request but the load-time
/// smoke calls.
fn hostile_config(dir: &Path, mode: &str) -> PathBuf {
    let file = dir.join(format!("{mode}.json"));
    std::fs::write(
        &file,
        format!(r#"{{"mode": "{mode}", "trigger": "always"}}"#),
    )
    .unwrap();
    file
}

/// The table's rows for `scenario`: its first row names it, the rest
/// follow until the next scenario's.
fn rows<'a>(stdout: &'a str, scenario: &str) -> Vec<&'a str> {
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with(scenario));
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let mut rows = vec![first];
    rows.extend(lines.take_while(|l| l.starts_with(' ')));
    rows
}

#[test]
fn a_shipped_policy_passes_over_the_reference_scenarios() {
    let wasm = guest("dovetail-policy-savings-threshold");
    // Minutes in a debug build (seconds in release): five scenarios, twice.
    let run = judge(&[path(&wasm)], Duration::from_secs(1200));
    run.expect_code(0);
    let out = &run.stdout;
    assert!(
        out.starts_with(
            "savings-threshold@0.1.0 (consolidation-scoring) against the built-in, 5 scenarios"
        ),
        "{out}"
    );
    for scenario in REFERENCE {
        let rows = rows(out, scenario);
        assert_eq!(rows.len(), MEASURES.len(), "{scenario}: {out}");
        for (row, measure) in rows.iter().zip(MEASURES) {
            assert!(row.contains(measure), "{scenario} {measure}: {out}");
        }
        // No failures: the policy column of both failure rows is 0.
        for row in &rows[4..] {
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cells[cells.len() - 3..], ["-", "0", "-"], "{row}");
        }
    }
    let verdict = out.lines().last().unwrap();
    assert!(
        verdict.starts_with(
            "verdict: PASS: savings-threshold@0.1.0 never failed or timed out in 5 scenarios"
        ),
        "{out}"
    );
}

#[test]
fn a_failing_policy_fails_the_judge_naming_the_scenario_and_the_failures() {
    let dir = demo_dir();
    let config = hostile_config(dir.path(), "panic");
    let wasm = guest("dovetail-guest-hostile");
    let run = judge(
        &[
            path(&wasm),
            "--decision",
            "instance-selection",
            "--config",
            path(&config),
            "--scenarios",
            path(dir.path()),
        ],
        Duration::from_secs(120),
    );
    run.expect_code(1);
    let out = &run.stdout;
    let rows = rows(out, "demo");
    let failures = rows
        .iter()
        .find(|r| r.contains("policy failures"))
        .unwrap_or_else(|| panic!("{out}"));
    let n: u64 = failures
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{failures}"));
    assert!(n > 0, "{out}");
    assert!(
        out.contains("note: demo: instance-selection policy hostile@0.0.1")
            && out.contains("panicked on purpose"),
        "the note names the scenario and the failure: {out}"
    );
    assert!(
        out.contains(&format!("verdict: FAIL: hostile@0.0.1 failed {n} call")),
        "{out}"
    );
    assert!(out.contains("in 1 of 1 scenarios (demo)"), "{out}");
    run.expect_stderr(&["error: hostile@0.0.1 failed", "(demo)"]);
}

#[test]
fn a_policy_out_of_fuel_counts_as_a_timeout_and_fails_the_judge() {
    let dir = demo_dir();
    let config = hostile_config(dir.path(), "loop");
    let wasm = guest("dovetail-guest-hostile");
    let run = judge(
        &[
            path(&wasm),
            "--config",
            path(&config),
            "--scenarios",
            path(dir.path()),
            "--fuel",
            "50000000",
            "--json",
        ],
        Duration::from_secs(120),
    );
    run.expect_code(1);
    let v: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    let demo = &v["scenarios"][0];
    assert_eq!(demo["scenario"], "demo");
    let timeouts = demo["policy"]["policy_timeouts"].as_u64().unwrap();
    assert!(timeouts > 0, "{v:#}");
    assert_eq!(demo["policy"]["policy_failures"].as_u64(), Some(timeouts));
    assert_eq!(demo["builtin"]["policy_failures"], 0);
    assert_eq!(v["verdict"]["pass"], false);
    assert_eq!(v["verdict"]["failed_in"], serde_json::json!(["demo"]));
    run.expect_stderr(&["timed out", "(demo)"]);
}

#[test]
fn the_users_scenarios_are_judged_in_name_order() {
    let dir = demo_dir();
    std::fs::copy(
        example("scenarios/custom-catalog.yaml"),
        dir.path().join("a-catalog.yaml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "not a scenario").unwrap();
    let wasm = guest("dovetail-policy-default");
    let run = judge(
        &[path(&wasm), "--scenarios", path(dir.path()), "--json"],
        Duration::from_secs(300),
    );
    run.expect_code(0);
    let v: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    let names: Vec<&str> = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a-catalog", "demo"], "{v:#}");
    assert_eq!(
        v["decisions"],
        serde_json::json!(["instance-selection", "consolidation-scoring"])
    );
    assert_eq!(v["verdict"]["pass"], true);
    // The default policy decides as the built-in does.
    for s in v["scenarios"].as_array().unwrap() {
        assert_eq!(s["builtin"]["cost_usd"], s["policy"]["cost_usd"], "{s:#}");
    }
}

#[test]
fn an_empty_scenario_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "no scenarios").unwrap();
    let wasm = guest("dovetail-policy-default");
    judge(
        &[path(&wasm), "--scenarios", path(dir.path())],
        Duration::from_secs(60),
    )
    .expect_code(1)
    .expect_stderr(&[
        &format!("--scenarios {}", dir.path().display()),
        "no scenario files (*.yaml)",
        "drop --scenarios",
    ]);
}

#[test]
fn a_broken_scenario_is_refused_naming_its_file() {
    let dir = demo_dir();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "seed: 1\nduration: soon\n").unwrap();
    let wasm = guest("dovetail-policy-default");
    judge(
        &[path(&wasm), "--scenarios", path(dir.path())],
        Duration::from_secs(60),
    )
    .expect_code(1)
    .expect_stderr(&[&format!("scenario {} is not valid", broken.display())]);
}

#[test]
fn a_decision_the_policy_lacks_is_refused() {
    let wasm = guest("dovetail-policy-savings-threshold");
    judge(
        &[path(&wasm), "--decision", "instance-selection"],
        Duration::from_secs(60),
    )
    .expect_code(1)
    .expect_stderr(&[
        "--decision instance-selection",
        "savings-threshold@0.1.0 does not implement it",
        "it implements consolidation-scoring",
    ]);
}

// Bad input, as every command takes it (docs/limits.md): a device among the
// scenarios is not read, a full disk fails the judge naming its output, a
// closed pipe ends it quietly.

#[test]
fn bad_input_a_device_among_the_scenarios_is_refused_unread() {
    let dir = demo_dir();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.yaml")).unwrap();
    let wasm = guest("dovetail-policy-default");
    let r = judge(
        &[path(&wasm), "--scenarios", path(dir.path())],
        Duration::from_secs(60),
    );
    r.expect_no_panic()
        .expect_code(1)
        .expect_stderr(&["zero.yaml", "is a character device, not a file"]);
}

#[test]
fn bad_input_a_dangling_link_among_the_scenarios_is_named() {
    let dir = demo_dir();
    std::os::unix::fs::symlink("gone.yaml", dir.path().join("moved.yaml")).unwrap();
    let wasm = guest("dovetail-policy-default");
    judge(
        &[path(&wasm), "--scenarios", path(dir.path())],
        Duration::from_secs(60),
    )
    .expect_no_panic()
    .expect_code(1)
    .expect_stderr(&["moved.yaml", "dangling symbolic link"]);
}

#[test]
fn bad_input_the_table_on_a_full_disk_or_a_closed_pipe() {
    let dir = demo_dir();
    let wasm = guest("dovetail-policy-default");
    let args = [
        "policy",
        "judge",
        path(&wasm),
        "--scenarios",
        path(dir.path()),
    ];
    let with = |stdout| {
        bounded::run_with(
            Path::new(env!("CARGO_BIN_EXE_dovetail")),
            &args,
            bounded::Io {
                stdout,
                ..Default::default()
            },
            Caps {
                memory_mib: 2048,
                timeout: Duration::from_secs(120),
            },
        )
    };
    with(bounded::Stdout::Full).expect_failed_write("the judgement");
    // The run's note on stderr comes before the table; the end is quiet.
    let closed = with(bounded::Stdout::Closed);
    closed.expect_no_panic().expect_code(0);
    assert!(!closed.stderr.contains("error"), "{}", closed.stderr);
}
