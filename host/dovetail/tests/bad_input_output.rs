//! Output handling as a Unix tool's: a closed pipe ends a command quietly, a
//! failed write fails it with a message, a bad output path fails before the
//! work, and colour goes only to a terminal without `NO_COLOR`. Every run is
//! bounded by a memory cap and a timeout (`dovetail_tests::bounded`).

use std::path::Path;
use std::time::Duration;

use dovetail_tests::bounded::{Bounded, Caps, Io, Stdout, run, run_with};
use dovetail_tests::{example, guest};

fn dovetail() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dovetail"))
}

fn with_stdout(args: &[&str], stdout: Stdout) -> Bounded {
    run_with(
        dovetail(),
        args,
        Io {
            stdout,
            ..Io::default()
        },
        Caps::default(),
    )
}

fn demo_yaml() -> String {
    example("scenarios/demo.yaml").display().to_string()
}

#[test]
fn demo_into_a_closed_pipe_ends_quietly() {
    with_stdout(&["demo"], Stdout::Closed).expect_quiet_end();
}

#[test]
fn crds_into_a_closed_pipe_end_quietly() {
    with_stdout(&["crds"], Stdout::Closed).expect_quiet_end();
}

#[test]
fn demo_on_a_full_disk_fails_naming_its_output() {
    with_stdout(&["demo"], Stdout::Full).expect_failed_write("the demo's timeline");
}

#[test]
fn sim_on_a_full_disk_fails_naming_its_output() {
    with_stdout(&["sim", &demo_yaml()], Stdout::Full).expect_failed_write("the simulation report");
}

#[test]
fn policy_test_on_a_full_disk_fails_naming_its_output() {
    let wasm = guest("dovetail-policy-default");
    let request = example("requests/selection.json");
    let r = with_stdout(
        &[
            "policy",
            "test",
            wasm.to_str().unwrap(),
            "--input",
            request.to_str().unwrap(),
        ],
        Stdout::Full,
    );
    r.expect_failed_write("the decision's result");
}

#[test]
fn crds_on_a_full_disk_fail_naming_their_output() {
    with_stdout(&["crds"], Stdout::Full).expect_failed_write("the CRDs");
}

#[test]
fn a_report_into_a_missing_directory_fails_before_the_run() {
    let r = run(
        dovetail(),
        &["sim", &demo_yaml(), "--report", "/nonexistent-dir/x.json"],
        None,
        Caps::default(),
    );
    r.expect_code(1).expect_stderr(&[
        "--report /nonexistent-dir/x.json: cannot open the HTML report for writing",
        "the directory /nonexistent-dir does not exist: create it",
    ]);
    assert_eq!(r.stdout, "", "nothing ran");
    assert!(r.elapsed < Duration::from_secs(1), "took {:?}", r.elapsed);
}

#[test]
fn a_json_report_onto_a_directory_fails_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        dovetail(),
        &["sim", &demo_yaml(), "--json", dir.path().to_str().unwrap()],
        None,
        Caps::default(),
    );
    r.expect_code(1)
        .expect_stderr(&["cannot open the JSON report for writing", "is a directory"]);
    assert_eq!(r.stdout, "", "nothing ran");
}

#[test]
fn a_failed_run_leaves_no_empty_report_behind() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let r = run(
        dovetail(),
        &[
            "sim",
            &demo_yaml(),
            "--json",
            json.to_str().unwrap(),
            "--policy",
            "instance-selection=/nonexistent-dir/p.wasm",
        ],
        None,
        Caps::default(),
    );
    r.expect_code(1)
        .expect_stderr(&["the policy does not exist"]);
    assert!(!json.exists(), "{} was left behind", json.display());
}

#[test]
fn reports_are_written_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let html = dir.path().join("r.html");
    let r = run(
        dovetail(),
        &[
            "sim",
            &demo_yaml(),
            "--json",
            json.to_str().unwrap(),
            "--report",
            html.to_str().unwrap(),
        ],
        None,
        Caps::default(),
    );
    r.expect_code(0);
    assert!(
        r.stdout
            .contains(&format!("JSON report: {}", json.display())),
        "{}",
        r.stdout
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report["totals"].is_object(), "{report}");
    assert!(std::fs::read_to_string(&html).unwrap().contains("<html"));
}

const ESC: char = '\u{1b}';

/// `policy validate` with debug logs: tracing writes coloured levels when it may.
fn debug_logs() -> Vec<&'static str> {
    vec!["policy", "validate", "/nonexistent-dir/p.wasm"]
}

#[test]
fn output_to_pipes_has_no_escape_bytes_with_or_without_no_color() {
    for no_color in [Some("1"), None] {
        let r = run_with(
            dovetail(),
            &debug_logs(),
            Io {
                env: &[("NO_COLOR", no_color), ("DOVETAIL_LOG", Some("debug"))],
                ..Io::default()
            },
            Caps::default(),
        );
        r.expect_code(1);
        assert!(
            r.stderr.contains("DEBUG"),
            "logs were written: {}",
            r.stderr
        );
        assert!(
            !r.stderr.contains(ESC),
            "NO_COLOR={no_color:?}: {:?}",
            r.stderr
        );
        assert!(!r.stdout.contains(ESC), "{:?}", r.stdout);
    }
}

/// Runs `dovetail args` with stdout and stderr on a pseudo-terminal
/// (python3's `pty` module), returning what the terminal showed.
fn on_a_terminal(args: &[&str], no_color: Option<&str>) -> Bounded {
    const SCRIPT: &str = r#"
import os, subprocess, sys
main, side = os.openpty()
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=side, stderr=side)
os.close(side)
while True:
    try:
        chunk = os.read(main, 65536)
    except OSError:
        break
    if not chunk:
        break
    sys.stdout.buffer.write(chunk)
sys.exit(child.wait())
"#;
    let mut argv = vec!["-c", SCRIPT, env!("CARGO_BIN_EXE_dovetail")];
    argv.extend_from_slice(args);
    let python = Path::new("python3");
    if std::process::Command::new(python)
        .arg("--version")
        .output()
        .is_err()
    {
        panic!(
            "python3 not found on PATH: install it (e.g. `apt-get install python3`) to run this test"
        );
    }
    run_with(
        python,
        &argv,
        Io {
            env: &[("NO_COLOR", no_color), ("DOVETAIL_LOG", Some("debug"))],
            ..Io::default()
        },
        Caps::default(),
    )
}

#[test]
fn a_terminal_gets_colour_unless_no_color_is_set() {
    let coloured = on_a_terminal(&debug_logs(), None);
    coloured.expect_code(1);
    assert!(coloured.stdout.contains("DEBUG"), "{coloured:?}");
    assert!(
        coloured.stdout.contains(ESC),
        "a terminal without NO_COLOR gets colour: {:?}",
        coloured.stdout
    );

    for set in ["1", "true"] {
        let plain = on_a_terminal(&debug_logs(), Some(set));
        plain.expect_code(1);
        assert!(plain.stdout.contains("DEBUG"), "{plain:?}");
        assert!(
            !plain.stdout.contains(ESC),
            "NO_COLOR={set}: {:?}",
            plain.stdout
        );
    }
}
