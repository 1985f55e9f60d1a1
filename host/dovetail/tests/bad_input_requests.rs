//! Bad input for policy request files and catalog prices: every case runs
//! `dovetail` under a memory cap and a timeout, and must be refused with an
//! error that names the field, the value and the limit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dovetail_tests::bounded::{Bounded, Caps, run};

fn dovetail(args: &[&str]) -> Bounded {
    run(
        Path::new(env!("CARGO_BIN_EXE_dovetail")),
        args,
        None,
        Caps::default(),
    )
}

fn policy() -> PathBuf {
    dovetail_tests::guest("dovetail-policy-default")
}

/// Writes `text` to `name` in a fresh directory kept alive by the result.
fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn policy_test(request: &str) -> Bounded {
    let (_dir, input) = file("request.json", request);
    let wasm = policy();
    dovetail(&[
        "policy",
        "test",
        wasm.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ])
}

/// Offering `i`: every one a distinct instance type.
fn offering(i: usize, vcpu: i64) -> String {
    format!(
        r#"{{"instance_type":"m{}.{}xlarge","vcpu":{vcpu},"memory_mib":8192,"zone":"us-east-1a","capacity_type":"spot","price_per_hour":0.1}}"#,
        i % 1000,
        i / 1000
    )
}

fn selection(offerings: &[String], requests: &[&str]) -> String {
    format!(
        r#"{{"decision":"instance-selection","offerings":[{}],"requests":[{}]}}"#,
        offerings.join(","),
        requests.join(",")
    )
}

fn consolidation(price: f64, cpu_utilisation: f64) -> String {
    format!(
        r#"{{"decision":"consolidation-scoring","candidates":[
            {{"node":"a","node_pool":"default","instance_type":"m5.large","capacity_type":"on-demand",
              "zone":"us-east-1a","price_per_hour":0.1,"pods":2,"reason":"Underutilized"}},
            {{"node":"b","node_pool":"default","instance_type":"m5.large","capacity_type":"on-demand",
              "zone":"us-east-1a","price_per_hour":{price},"cpu_utilisation":{cpu_utilisation},
              "pods":2,"reason":"Underutilized"}}],
          "moves":[{{"removed":["b"]}}]}}"#
    )
}

#[test]
fn a_negative_vcpu_count_is_named_by_its_path() {
    let rows: Vec<String> = (0..5)
        .map(|i| offering(i, if i == 3 { -4 } else { 2 }))
        .collect();
    let out = policy_test(&selection(&rows, &[r#"{"node_pool":"default"}"#]));
    out.expect_code(1).expect_stderr(&[
        "offerings[3].vcpu: -4 is not a vCPU count; use a whole number, 0 or more",
    ]);
    assert!(!out.stderr.contains("expected u32"), "{}", out.stderr);
}

#[test]
fn an_unknown_field_is_named_with_the_ones_allowed() {
    let rows = [offering(0, 2).replace("\"vcpu\"", "\"vcpus\"")];
    policy_test(&selection(&rows, &[r#"{"node_pool":"default"}"#]))
        .expect_code(1)
        .expect_stderr(&["offerings[0].vcpus: `vcpus` is not a field here; the fields are"]);
}

#[test]
fn consolidation_requests_refuse_negative_prices_and_utilisation() {
    // The valid request passes, so the refusals below are about the numbers.
    let ok = policy_test(&consolidation(0.2, 0.5));
    ok.expect_code(0);
    assert!(ok.stdout.contains("\"ranking\""), "{}", ok.stdout);

    policy_test(&consolidation(-0.4, 0.5))
        .expect_code(1)
        .expect_stderr(&["candidates[1].price_per_hour: -0.4 is negative"]);
    policy_test(&consolidation(0.2, -0.5))
        .expect_code(1)
        .expect_stderr(&["candidates[1].cpu_utilisation: -0.5 is not a utilisation"]);
    policy_test(&consolidation(1e308, 0.5))
        .expect_code(1)
        .expect_stderr(&[
            "candidates[1].price_per_hour: 1e308 USD per hour is above the limit of 10000 USD per hour",
        ]);
}

#[test]
fn too_many_rows_are_refused_naming_the_array_and_the_limit() {
    let rows = [offering(0, 2)];
    let requests = vec![r#"{"node_pool":"default"}"#; 10_001];
    policy_test(&selection(&rows, &requests))
        .expect_code(1)
        .expect_stderr(&["requests: 10001 rows, more than the limit of 10000"]);

    // Every launch request compatible with every offering: 10,000 × 2,001.
    let rows: Vec<String> = (0..2_001).map(|i| offering(i, 2)).collect();
    let requests = vec![r#"{"node_pool":"default"}"#; 10_000];
    policy_test(&selection(&rows, &requests))
        .expect_code(1)
        .expect_stderr(&[
            "requests: the launch requests list 20010000 compatible offering rows in all",
            "more than the limit of 20000000",
        ]);

    let moves = vec![r#"{"removed":["a"]}"#; 100_001].join(",");
    let request = consolidation(0.2, 0.5).replace(
        r#""moves":[{"removed":["b"]}]"#,
        &format!(r#""moves":[{moves}]"#),
    );
    policy_test(&request)
        .expect_code(1)
        .expect_stderr(&["moves: 100001 rows, more than the limit of 100000"]);
}

/// 100,000 offerings once took 10 s to build (a linear scan per row); the
/// decision itself takes milliseconds. Bounded, not timed beyond the cap.
#[test]
fn a_request_of_100000_offerings_is_decided_within_the_cap() {
    let rows: Vec<String> = (0..100_000).map(|i| offering(i, 2)).collect();
    let (_dir, input) = file(
        "big.json",
        &selection(&rows, &[r#"{"node_pool":"default","picks":3}"#]),
    );
    let wasm = policy();
    let out = run(
        Path::new(env!("CARGO_BIN_EXE_dovetail")),
        &[
            "policy",
            "test",
            wasm.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ],
        None,
        Caps {
            memory_mib: 2048,
            timeout: Duration::from_secs(30),
        },
    );
    out.expect_code(0);
    assert_eq!(
        out.stdout.matches("\"instance_type\"").count(),
        3,
        "{}",
        out.stdout
    );
}

#[test]
fn a_scenario_catalog_price_of_1e308_is_refused_naming_the_type_and_bound() {
    let scenario =
        std::fs::read_to_string(dovetail_tests::example("scenarios/custom-catalog.yaml")).unwrap();
    let bad = scenario.replacen(
        "{ zone: lab-1a, capacityType: on-demand, price: 0.32 }",
        "{ zone: lab-1a, capacityType: on-demand, price: 1e308 }",
        1,
    );
    assert_ne!(bad, scenario, "the example changed: pick another offering");
    let (_dir, path) = file("scenario.yaml", &bad);
    let out = dovetail(&["sim", path.to_str().unwrap()]);
    out.expect_code(1).expect_stderr(&[
        "catalog[2].offerings[0].price",
        "instance type `large`",
        "1e308 USD per hour is above the limit of 10000 USD per hour",
    ]);
    assert!(!out.stdout.contains("inf"), "{}", out.stdout);

    let negative = scenario.replacen("price: 0.32 }", "price: -0.32 }", 1);
    let (_dir, path) = file("scenario.yaml", &negative);
    dovetail(&["sim", path.to_str().unwrap()])
        .expect_code(1)
        .expect_stderr(&["instance type `large`", "-0.32 is negative"]);
}
