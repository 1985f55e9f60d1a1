//! Bad input: counts, sizes and durations past their limits (docs/limits.md)
//! are refused before any work starts, quickly and in little memory, with an
//! error naming the value and the limit; nothing is silently changed; and
//! `policy bench-reload` leaves no temporary directory behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dovetail_tests::bounded::{Bounded, Caps, run};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dovetail"))
}

/// A refusal needs no more than starting up.
const REFUSAL: Caps = Caps {
    memory_mib: 256,
    timeout: Duration::from_secs(15),
};

fn dovetail(args: &[&str]) -> Bounded {
    run(exe(), args, None, REFUSAL)
}

/// Exits 1 with every part in stderr, and without clap's `-- -1` tip.
fn refused(args: &[&str], parts: &[&str]) -> Bounded {
    let r = dovetail(args);
    r.expect_code(1).expect_stderr(parts);
    assert!(!r.stderr.contains("-- -"), "{}", r.stderr);
    r
}

/// Clap's usage errors exit 2.
fn rejected(args: &[&str], parts: &[&str]) -> Bounded {
    let r = dovetail(args);
    r.expect_code(2).expect_stderr(parts);
    assert!(!r.stderr.contains("tip:"), "{}", r.stderr);
    r
}

fn demo_scenario(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(dovetail_tests::example("scenarios/demo.yaml"))
        .expect("read the demo scenario");
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

fn policy() -> String {
    dovetail_tests::guest("dovetail-policy-default")
        .display()
        .to_string()
}

#[test]
fn a_billion_replicas_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = demo_scenario(dir.path(), |t| {
        t.replacen("replicas: 50", "replicas: 1000000000", 1)
    });
    refused(
        &["sim", s.to_str().unwrap()],
        &[
            "workloads[0].replicas: 1,000,000,000 is above the limit of 150,000",
            "docs/limits.md",
        ],
    );
}

#[test]
fn a_scale_event_past_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = demo_scenario(dir.path(), |t| {
        t.replacen("replicas: 5\n", "replicas: 5000000\n", 1)
    });
    refused(
        &["sim", s.to_str().unwrap()],
        &["events[0].scale.replicas: 5,000,000 is above the limit of 150,000"],
    );
}

#[test]
fn a_hundred_thousand_hours_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = demo_scenario(dir.path(), |t| {
        t.replacen("duration: 30m", "duration: 100000h", 1)
    });
    refused(
        &["sim", s.to_str().unwrap()],
        &["duration: 100000h is above the limit of 744h (31 days"],
    );
}

#[test]
fn ten_million_pods_to_schedule_are_refused() {
    rejected(
        &["bench", "scheduling", "--pods", "10000000"],
        &[
            "--pods",
            "10,000,000 is above the limit of 200,000 pods (docs/limits.md)",
            "give 1 to 200,000 pods",
        ],
    );
}

#[test]
fn total_scheduling_work_is_bounded() {
    refused(
        &[
            "bench",
            "scheduling",
            "--pods",
            "200000",
            "--iterations",
            "100",
        ],
        &[
            "--pods 200,000 × --iterations 100 = 20,000,000 pods scheduled, above the limit of 2,000,000",
        ],
    );
}

#[test]
fn four_billion_policy_iterations_are_refused() {
    rejected(
        &["policy", "bench", &policy(), "--iterations", "4000000000"],
        &["4,000,000,000 is above the limit of 1,000,000 iterations"],
    );
}

#[test]
fn zero_iterations_are_refused_not_turned_into_one() {
    rejected(
        &["policy", "bench", &policy(), "--iterations", "0"],
        &[
            "--iterations",
            "must be ≥ 1: give 1 to 1,000,000 iterations",
        ],
    );
}

#[test]
fn negative_counts_say_the_range_not_the_double_dash_tip() {
    rejected(
        &["policy", "bench", &policy(), "--iterations", "-1"],
        &["'-1'", "must be ≥ 1: give 1 to 1,000,000 iterations"],
    );
    rejected(
        &["bench", "consolidation", "--pods", "-5"],
        &["must be ≥ 0: give 0 to 500,000 pods"],
    );
    rejected(
        &["sim", "x.yaml", "--memory-mib", "-1"],
        &["must be ≥ 1: give 1 to 4,096 MiB"],
    );
    rejected(
        &[
            "bench",
            "interruption",
            "--endpoint",
            "http://127.0.0.1:1",
            "--messages",
            "-1",
        ],
        &["must be ≥ 1: give 1 to 100,000 messages"],
    );
    rejected(&["dev", "--port", "-1"], &["-1 is not in 0..=65535"]);
    rejected(
        &["dev", "--node-ready-after", "-5s"],
        &["must be ≥ 0s: give 0s to 60m"],
    );
}

#[test]
fn request_size_of_policy_bench_is_bounded() {
    refused(
        &[
            "policy",
            "bench",
            &policy(),
            "--offerings",
            "100000",
            "--launches",
            "10000",
        ],
        &[
            "--offerings 100,000 × --launches 10,000 = 1,000,000,000 offering rows in one request, above the limit of 10,000,000",
        ],
    );
}

#[test]
fn pods_beyond_what_the_nodes_hold_are_refused_or_reported() {
    refused(
        &["bench", "consolidation", "--nodes", "1", "--pods", "100000"],
        &[
            "--pods 100000 do not fit on --nodes 1",
            "pass --nodes",
            "or more",
        ],
    );
    // Within reach: the pass runs with what fits, and says so.
    let r = dovetail(&["bench", "consolidation", "--nodes", "1", "--pods", "100"]);
    r.expect_code(0)
        .expect_stderr(&["of the 100 pods asked for", "the pass runs with"]);
    assert!(!r.stdout.contains("100 pods"), "{}", r.stdout);
}

#[test]
fn a_decision_given_twice_with_policy_is_refused_naming_both_files() {
    refused(
        &[
            "sim",
            dovetail_tests::example("scenarios/demo.yaml")
                .to_str()
                .unwrap(),
            "--policy",
            "instance-selection=first.wasm",
            "--policy",
            "instance-selection=second.wasm",
        ],
        &["instance-selection is given twice, as first.wasm and as second.wasm"],
    );
}

#[test]
fn node_ready_after_is_bounded() {
    rejected(
        &["dev", "--node-ready-after", "100h"],
        &["100h is above the limit of 60m"],
    );
}

#[test]
fn bench_reload_leaves_no_temporary_directory_after_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.wasm");
    std::fs::write(&bad, b"\0asm not really").unwrap();
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    // `env` execs dovetail, so the caps apply to it.
    let r = run(
        Path::new("env"),
        &[
            &format!("TMPDIR={}", scratch.display()),
            exe().to_str().unwrap(),
            "policy",
            "bench-reload",
            bad.to_str().unwrap(),
        ],
        None,
        REFUSAL,
    );
    r.expect_code(1)
        .expect_stderr(&["the watcher rejected the policy"]);
    assert!(r.elapsed < Duration::from_secs(10), "{r:#?}");
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn bench_reload_leaves_no_temporary_directory_when_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    // `timeout` sends SIGINT after two seconds, mid-run (200 rounds take
    // over a minute). The memory cap watches `timeout` here, not its child;
    // the timeout still bounds the test.
    let r = run(
        Path::new("env"),
        &[
            &format!("TMPDIR={}", scratch.display()),
            "timeout",
            "--preserve-status",
            "-s",
            "INT",
            "2",
            exe().to_str().unwrap(),
            "policy",
            "bench-reload",
            &policy(),
            "--rounds",
            "200",
        ],
        None,
        Caps {
            memory_mib: 1024,
            timeout: Duration::from_secs(30),
        },
    );
    r.expect_code(130).expect_stderr(&["interrupted"]);
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
