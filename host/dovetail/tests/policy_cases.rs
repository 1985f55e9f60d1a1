//! `dovetail policy test POLICY --cases FILE`: the shipped policies pass
//! their own golden cases, a wrong expectation fails naming the case and the
//! difference, and malformed cases files are refused naming the file, the
//! case and the field. Every run is bounded (memory and time).

use std::path::{Path, PathBuf};

use dovetail_tests::bounded::{Bounded, Caps, run};

fn dovetail(args: &[&str]) -> Bounded {
    run(
        Path::new(env!("CARGO_BIN_EXE_dovetail")),
        args,
        None,
        Caps::default(),
    )
}

fn root() -> PathBuf {
    dovetail_tests::workspace_root()
}

fn requests() -> PathBuf {
    root().join("examples/requests")
}

fn cases(policy: &str, file: &Path, extra: &[&str]) -> Bounded {
    let wasm = dovetail_tests::guest(&format!("dovetail-policy-{policy}"));
    let mut args = vec![
        "policy",
        "test",
        wasm.to_str().unwrap(),
        "--cases",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    dovetail(&args)
}

/// Writes a cases file whose `@` stands for the example requests directory.
fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.yaml");
    let text = text.replace('@', requests().to_str().unwrap());
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn every_shipped_policy_passes_its_own_cases() {
    for policy in ["default", "balanced", "graviton-first", "savings-threshold"] {
        let file = root().join("policies").join(policy).join("cases.yaml");
        let out = cases(policy, &file, &[]);
        out.expect_code(0);
        let passes = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("PASS "))
            .count();
        assert!(passes >= 4, "{policy}: {}", out.stdout);
        assert!(!out.stdout.contains("FAIL"), "{policy}: {}", out.stdout);
        assert!(
            out.stdout
                .ends_with(&format!("{passes} passed, 0 failed\n")),
            "{policy}: {}",
            out.stdout
        );
    }
}

/// The C and JavaScript policies are held to their cases through the same
/// command (each is built by its language's toolchain first).
#[test]
fn the_c_and_javascript_policies_pass_their_own_cases() {
    let c = dovetail_tests::c_policy::build("policies/c/cheapest-spot");
    let js = dovetail_tests::js_policy();
    for (wasm, dir) in [
        (c.as_path(), "policies/c/cheapest-spot"),
        (js, "policies/js/cheapest-spot"),
    ] {
        let file = root().join(dir).join("cases.yaml");
        // The JavaScript component embeds an engine: compiling it takes tens of seconds.
        let caps = Caps {
            memory_mib: 4096,
            timeout: std::time::Duration::from_secs(300),
        };
        let out = run(
            Path::new(env!("CARGO_BIN_EXE_dovetail")),
            &[
                "policy",
                "test",
                wasm.to_str().unwrap(),
                "--cases",
                file.to_str().unwrap(),
            ],
            None,
            caps,
        );
        out.expect_code(0);
        let passes = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("PASS "))
            .count();
        assert!(passes >= 3, "{dir}: {}", out.stdout);
        assert!(
            out.stdout
                .ends_with(&format!("{passes} passed, 0 failed\n")),
            "{dir}: {}",
            out.stdout
        );
    }
}

#[test]
fn the_cases_tell_the_policies_apart() {
    // graviton-first's cases are about arm64 first: the default policy,
    // which goes by price, fails the one where amd64 is cheaper.
    let file = root().join("policies/graviton-first/cases.yaml");
    let out = cases("default", &file, &[]);
    out.expect_code(1);
    assert!(
        out.stdout.contains(
            "FAIL arm64 first even when an amd64 offering is cheaper: expect[0].first-pick: launch 0's first pick is row 0 (m6a.xlarge us-east-1a on-demand): architecture is \"amd64\", expected \"arm64\""
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn a_wrong_expectation_fails_naming_the_case_and_the_difference() {
    let (_dir, file) = write(
        "cases:
  - name: right about the empty node
    request: @/consolidation.json
    expect:
      - approves: ip-10-0-1-12
  - name: wrong about the drifted replacement
    request: @/consolidation.json
    expect:
      - approves: ip-10-0-2-21
  - name: wrong picks
    request:
      decision: instance-selection
      offerings:
        - {instance_type: m7i.xlarge, vcpu: 4, memory_mib: 16384, zone: us-east-1a, capacity_type: on-demand, price_per_hour: 0.2}
        - {instance_type: m6a.xlarge, vcpu: 4, memory_mib: 16384, zone: us-east-1a, capacity_type: on-demand, price_per_hour: 0.17}
      requests: [{node_pool: default}]
    expect:
      - picks: [[0, 1]]
      - fails: nothing-like-this
",
    );
    let out = cases("default", &file, &[]);
    out.expect_code(1)
        .expect_stderr(&["2 of 3 cases failed for default@"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "PASS right about the empty node",
            "FAIL wrong about the drifted replacement: expect[0].approves: expected move 4 (removes ip-10-0-2-21) approved; it was rejected: \"replacement costs $0.3456/h, not less than the $0.3456/h it replaces\"",
            "FAIL wrong picks: expect[0].picks: launch 0: expected rows [0, 1], got [1, 0]; expect[1].fails: expected the policy to fail matching /nothing-like-this/; it picked offerings for every launch request",
            "1 passed, 2 failed",
        ],
        "{}",
        out.stdout
    );

    let out = cases("default", &file, &["--json"]);
    out.expect_code(1);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["passed"], 1);
    assert_eq!(report["failed"], 2);
    assert_eq!(
        report["cases"][1]["name"],
        "wrong about the drifted replacement"
    );
    assert_eq!(report["cases"][1]["passed"], false);
    assert_eq!(report["cases"][2]["failures"].as_array().unwrap().len(), 2);
}

#[test]
fn a_case_config_replaces_the_policys_config() {
    let (_dir, file) = write(
        "cases:
  - name: default threshold
    request: @/consolidation.json
    expect:
      - rejects: {node: ip-10-0-1-13, reason: 'below the 20% threshold'}
  - name: own threshold
    request: @/consolidation.json
    config: {min-savings-percent: 5}
    expect:
      - approves: {node: ip-10-0-1-13, reason: '8\\.0%'}
",
    );
    cases("savings-threshold", &file, &[]).expect_code(0);
    // --config sets the threshold of cases without their own.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"min-savings-percent": 5}"#).unwrap();
    let out = cases(
        "savings-threshold",
        &file,
        &["--config", config.to_str().unwrap()],
    );
    out.expect_code(1);
    assert!(
        out.stdout.contains("FAIL default threshold: expect[0].rejects: expected move 3 (removes ip-10-0-1-13) rejected; it was approved"),
        "{}",
        out.stdout
    );
}

/// Runs `text` as a cases file for the default policy; it must be refused
/// with exit 2, before any case runs, naming the file and `parts`.
fn refused(text: &str, parts: &[&str]) {
    refused_by("default", text, parts);
}

fn refused_by(policy: &str, text: &str, parts: &[&str]) {
    let (_dir, file) = write(text);
    let out = cases(policy, &file, &[]);
    out.expect_code(2)
        .expect_stderr(&[&format!("error: cases file {}: ", file.display())])
        .expect_stderr(parts);
    assert!(out.stdout.is_empty(), "ran cases: {}", out.stdout);
}

#[test]
fn malformed_cases_files_name_the_case_and_the_field() {
    refused(
        "cases:
  - name: typo
    request: @/consolidation.json
    expect:
      - aproves: ip-10-0-1-12
",
        &[
            "case 0 `typo`: expect[0].aproves: `aproves` is not a field here; the fields are picks, first-pick, approves, rejects, score-below, fails (line 5, column 9)",
        ],
    );
    refused(
        "cases:
  - name: ok
    request: @/consolidation.json
    expect: [{approves: ip-10-0-1-12}]
  - name: no request
    expect:
      - approves: ip-10-0-1-12
",
        &["case 1 `no request`: `request` is required"],
    );
    refused(
        "cases:
  - name: bad regex
    request: @/consolidation.json
    expect:
      - rejects: {node: ip-10-0-2-21, reason: 'not less (than'}
",
        &[
            "case 0 `bad regex`: expect[0].rejects.reason: `not less (than` is not a valid regular expression: unclosed group",
        ],
    );
    refused(
        "cases:
  - name: bad fails regex
    request: @/selection.json
    expect:
      - fails: '[a-'
",
        &["case 0 `bad fails regex`: expect[0].fails: `[a-` is not a valid regular expression"],
    );
    refused(
        "cases:
  - name: approves a selection
    request: @/selection.json
    expect:
      - approves: ip-10-0-1-12
",
        &[
            "case 0 `approves a selection`: expect[0].approves: the request is for instance-selection, and `approves` checks consolidation-scoring; use picks, first-pick or fails here",
        ],
    );
    refused(
        "cases:
  - name: picks of a consolidation
    request: @/consolidation.json
    expect:
      - picks: [[1]]
",
        &["expect[0].picks: the request is for consolidation-scoring"],
    );
    refused(
        "cases:
  - name: unknown offering field
    request: @/selection.json
    expect:
      - first-pick: {arch: arm64}
",
        &[
            "case 0 `unknown offering field`: expect[0].first-pick.arch: `arch` is not an offering field; the fields are launch (which launch request, 0 by default), instance_type, family, category, architecture,",
        ],
    );
    refused(
        "cases:
  - name: no such move
    request: @/consolidation.json
    expect:
      - approves: ip-10-0-1-15
",
        &[
            "expect[0].approves: no move removes exactly [ip-10-0-1-15]; the request's moves remove 0: [ip-10-0-1-12]; 1: [ip-10-0-1-11]; 2: [ip-10-0-1-11, ip-10-0-1-15]",
        ],
    );
    refused(
        "cases:
  - name: missing file
    request: nothere.json
    expect:
      - fails: x
",
        &[
            "case 0 `missing file`: request \"nothere.json\" (paths are relative to the cases file):",
            "does not exist",
        ],
    );
    refused(
        "cases:
  - name: bad inline request
    request: {decision: instance-selection, offerings: [{instance_type: m5.large, vcpu: -2}], requests: []}
    expect:
      - fails: x
",
        &[
            "case 0 `bad inline request`: request: not a valid request: offerings[0].vcpu: -2 is not a vCPU count",
        ],
    );
    refused(
        "cases:
  - name: two in one
    request: @/consolidation.json
    expect:
      - approves: ip-10-0-1-12
        fails: x
",
        &[
            "case 0 `two in one`: expect[0]: gives approves and fails; give one expectation per list item",
        ],
    );
    refused(
        "cases:
  - name: same
    request: @/consolidation.json
    expect: [{approves: ip-10-0-1-12}]
  - name: same
    request: @/consolidation.json
    expect: [{approves: ip-10-0-1-12}]
",
        &["case 1 `same`: the name is also case 0's"],
    );
    refused(
        "cases:
  - name: nothing to check
    request: @/consolidation.json
    expect: []
",
        &["case 0 `nothing to check`: `expect` is empty"],
    );
    refused("cases: []", &["`cases` is empty"]);
    // A case for a decision the policy does not implement.
    refused_by(
        "graviton-first",
        "cases:
  - name: consolidation for a selector
    request: @/consolidation.json
    expect: [{approves: ip-10-0-1-12}]
",
        &[
            "case 0 `consolidation for a selector`: the request is for consolidation-scoring, which policy graviton-first@",
        ],
    );
    refused_by(
        "savings-threshold",
        "cases:
  - name: bad config
    request: @/consolidation.json
    config: {min-savings: 5}
    expect: [{approves: ip-10-0-1-12}]
",
        &["case 0 `bad config`: config: the policy refuses it: config field `min-savings`"],
    );
}

#[test]
fn too_many_cases_are_refused_naming_the_limit() {
    let mut text = String::from("cases:\n");
    for i in 0..10_001 {
        text.push_str(&format!(
            "  - {{name: c{i}, request: @/consolidation.json, expect: [{{approves: ip-10-0-1-12}}]}}\n"
        ));
    }
    refused(
        &text,
        &["10,001 cases, more than the limit of 10,000 (docs/limits.md)"],
    );
}

#[test]
fn input_and_cases_exclude_each_other_and_one_is_required() {
    let wasm = dovetail_tests::guest("dovetail-policy-default");
    let request = requests().join("selection.json");
    let file = root().join("policies/default/cases.yaml");
    dovetail(&[
        "policy",
        "test",
        wasm.to_str().unwrap(),
        "--input",
        request.to_str().unwrap(),
        "--cases",
        file.to_str().unwrap(),
    ])
    .expect_code(2)
    .expect_stderr(&[
        "cannot be used with",
        "'--input <INPUT>'",
        "'--cases <CASES>'",
    ]);
    dovetail(&["policy", "test", wasm.to_str().unwrap()])
        .expect_code(2)
        .expect_stderr(&["<--input <INPUT>|--cases <CASES>>"]);
}

// Bad input, as every command takes it (docs/limits.md): a device is not
// read, a full disk fails the run naming its output, a closed pipe ends it
// quietly.

#[test]
fn bad_input_a_device_as_the_cases_file_is_refused_unread() {
    let r = cases("default", Path::new("/dev/zero"), &[]);
    r.expect_no_panic().expect_stderr(&[
        "cases file /dev/zero: is a character device, not a file",
        "fix: give a regular file",
    ]);
    assert_ne!(r.code, Some(0), "{r:#?}");
}

#[test]
fn bad_input_case_results_on_a_full_disk_or_a_closed_pipe() {
    let wasm = dovetail_tests::guest("dovetail-policy-default");
    let file = root().join("policies/default/cases.yaml");
    let args = [
        "policy",
        "test",
        wasm.to_str().unwrap(),
        "--cases",
        file.to_str().unwrap(),
    ];
    let with = |stdout| {
        dovetail_tests::bounded::run_with(
            Path::new(env!("CARGO_BIN_EXE_dovetail")),
            &args,
            dovetail_tests::bounded::Io {
                stdout,
                ..Default::default()
            },
            Caps::default(),
        )
    };
    with(dovetail_tests::bounded::Stdout::Full).expect_failed_write("the case results");
    with(dovetail_tests::bounded::Stdout::Closed).expect_quiet_end();
}
