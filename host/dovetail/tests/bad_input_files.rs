//! Bad files given to the CLI: devices, FIFOs, huge and sparse files,
//! directories, broken links, binary data, YAML nested too deep, empty and
//! broken configs. Each is refused quickly, within a memory cap, naming the
//! file and a fix that matches the cause. Every run is bounded.

use std::collections::HashSet;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use dovetail_tests::bounded::{Bounded, Caps, run};
use dovetail_tests::guest;

/// Refusing a file needs little: a runtime, a look at the file.
const SMALL: Caps = Caps {
    memory_mib: 100,
    timeout: Duration::from_secs(20),
};

fn dovetail(args: &[&str], caps: Caps) -> Bounded {
    run(Path::new(env!("CARGO_BIN_EXE_dovetail")), args, None, caps)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A refusal whose fix is about the file, not about building the policy.
fn refused(out: &Bounded, parts: &[&str]) -> String {
    out.expect_code(1).expect_stderr(parts);
    assert!(
        !out.stderr.contains("cargo build"),
        "a file problem is not fixed by rebuilding: {}",
        out.stderr
    );
    let fix = out.stderr.split("fix: ").nth(1).unwrap_or("").trim();
    assert!(!fix.is_empty(), "no fix: {}", out.stderr);
    fix.to_string()
}

#[test]
fn a_device_is_refused_without_reading_it() {
    let out = dovetail(&["policy", "validate", "/dev/zero"], SMALL);
    refused(
        &out,
        &[
            "/dev/zero",
            "is a character device, not a file",
            "give a regular file",
        ],
    );
}

#[test]
fn a_huge_sparse_policy_costs_no_more_than_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.wasm");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(200 << 20)
        .unwrap();
    let out = dovetail(&["policy", "validate", s(&big)], SMALL);
    refused(&out, &["big.wasm", "is 200 MiB, over the 32 MiB limit"]);
    assert!(out.peak_rss_mib < 100, "{out:#?}");
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("policy.wasm");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (GNU coreutils) must be installed to run this test");
    assert!(made.success());
    let out = dovetail(&["policy", "validate", s(&fifo)], SMALL);
    refused(&out, &["is a FIFO (named pipe), not a file"]);
    let out = dovetail(&["sim", s(&fifo)], SMALL);
    refused(&out, &["scenario", "is a FIFO (named pipe), not a file"]);
}

#[test]
fn each_path_problem_gets_its_own_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gone = d.join("gone.wasm");
    symlink(&gone, d.join("dangling.wasm")).unwrap();
    symlink(d.join("b.wasm"), d.join("a.wasm")).unwrap();
    symlink(d.join("a.wasm"), d.join("b.wasm")).unwrap();
    let dangling = format!("its target {} does not exist", gone.display());
    let cases: [(&Path, &str); 4] = [
        (&d.join("missing.wasm"), "does not exist"),
        (d, "is a directory, not a file"),
        (&d.join("a.wasm"), "is a symbolic link loop"),
        (&d.join("dangling.wasm"), &dangling),
    ];
    let mut fixes = HashSet::new();
    for (path, cause) in cases {
        let out = dovetail(&["policy", "validate", s(path)], SMALL);
        let fix = refused(&out, &[s(path), "[file]", cause]);
        assert!(fixes.insert(fix.clone()), "the same fix twice: {fix}");
    }
}

#[test]
fn a_scenarios_policy_path_is_named_by_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("folder.wasm")).unwrap();
    symlink(d.join("gone.wasm"), d.join("dangling.wasm")).unwrap();
    let demo = std::fs::read_to_string(dovetail_tests::example("scenarios/demo.yaml")).unwrap();
    for (file, cause) in [
        ("folder.wasm", "is a directory, not a file"),
        ("dangling.wasm", "is a dangling symbolic link"),
        ("missing.wasm", "policy file"),
    ] {
        let scenario = d.join("scenario.yaml");
        std::fs::write(
            &scenario,
            format!("{demo}\npolicies:\n  instanceSelection: {file}\n"),
        )
        .unwrap();
        let out = dovetail(&["sim", s(&scenario)], SMALL);
        refused(&out, &[file, cause]);
        assert_eq!(
            out.stderr.contains("not found"),
            file == "missing.wasm",
            "only a missing file is not found: {}",
            out.stderr
        );
    }
}

#[test]
fn a_memory_cap_of_zero_is_refused_as_a_flag() {
    let wasm = guest("dovetail-policy-default");
    let out = dovetail(
        &["policy", "validate", "--memory-mib", "0", s(&wasm)],
        SMALL,
    );
    // Refused as the flag is parsed (a usage error), naming its range: not
    // a file problem, and nothing about building the policy.
    out.expect_code(2)
        .expect_stderr(&["'0' for '--memory-mib", "must be ≥ 1: give 1 to 4,096 MiB"]);
    assert!(!out.stderr.contains("cargo build"), "{}", out.stderr);
}

#[test]
fn random_bytes_are_not_a_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.yaml");
    let mut x: u32 = 2_463_534_242;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(&path, bytes).unwrap();
    let out = dovetail(&["sim", s(&path)], SMALL);
    let fix = refused(&out, &["scenario", "scenario.yaml", "is not a text file"]);
    assert!(!fix.contains("check the path"), "{fix}");
}

#[test]
fn deep_yaml_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let deep = [
        ("brackets.yaml", "[".repeat(100_000)),
        ("maps.yaml", "{a: ".repeat(50_000)),
        ("dashes.yaml", format!("{}x\n", "- ".repeat(100_000))),
        (
            "nested-workloads.yaml",
            format!("duration: 1h\nworkloads:\n  {}x\n", "- ".repeat(100_000)),
        ),
    ];
    for (name, text) in deep {
        let path = d.join(name);
        std::fs::write(&path, text).unwrap();
        let out = dovetail(&["sim", s(&path)], SMALL);
        refused(
            &out,
            &[name, "line ", "column ", "more than 128 levels deep"],
        );
        assert!(out.elapsed < Duration::from_secs(2), "{name}: {out:#?}");
    }
    // A manifest file the scenario names is checked the same way.
    std::fs::write(
        d.join("scenario.yaml"),
        "duration: 1h\ncluster:\n  files: [brackets.yaml]\n",
    )
    .unwrap();
    let out = dovetail(&["sim", s(&d.join("scenario.yaml"))], SMALL);
    refused(&out, &["brackets.yaml", "more than 128 levels deep"]);
    assert!(out.elapsed < Duration::from_secs(2), "{out:#?}");
}

#[test]
fn empty_and_broken_configs_are_named() {
    let wasm = guest("dovetail-policy-default");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.json");
    let broken = dir.path().join("broken.json");
    std::fs::write(&empty, "\n").unwrap();
    std::fs::write(&broken, "{\"threshold\": ").unwrap();
    let out = dovetail(
        &["policy", "validate", "--config", s(&empty), s(&wasm)],
        SMALL,
    );
    refused(&out, &[&format!("config {}: is empty", empty.display())]);
    let out = dovetail(
        &["policy", "validate", "--config", s(&broken), s(&wasm)],
        SMALL,
    );
    refused(
        &out,
        &[&format!("config {}: not valid JSON", broken.display())],
    );
    let out = dovetail(
        &[
            "policy",
            "validate",
            "--config",
            s(&dir.path().join("nope.json")),
            s(&wasm),
        ],
        SMALL,
    );
    refused(&out, &["config ", "nope.json: does not exist"]);
}

#[test]
fn watching_a_missing_directory_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("policies");
    let out = dovetail(&["policy", "watch", s(&missing), "--seconds", "1"], SMALL);
    let fix = refused(&out, &[s(&missing), "the policy directory does not exist"]);
    assert!(!fix.contains("retry"), "{fix}");
}

/// A watched directory with a valid policy beside a link loop: the loop is
/// reported once, not on every look at the directory; a dangling link
/// added later is reported once too; an unrelated change reports nothing.
#[test]
fn a_watch_reports_each_unreadable_file_once_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    std::fs::copy(
        guest("dovetail-policy-default"),
        d.join("instance-selection.wasm"),
    )
    .unwrap();
    symlink(
        d.join("consolidation-scoring.wasm"),
        d.join("consolidation-scoring.wasm"),
    )
    .unwrap();
    let changer = {
        let d = d.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            symlink(
                d.join("gone.json"),
                d.join("instance-selection.config.json"),
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(700));
            std::fs::write(d.join("notes.txt"), "unrelated").unwrap();
        })
    };
    let out = dovetail(
        &["policy", "watch", s(&d), "--seconds", "3"],
        Caps {
            memory_mib: 300,
            timeout: Duration::from_secs(20),
        },
    );
    changer.join().unwrap();
    out.expect_code(0);
    let refusals: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("policy rejected"))
        .collect();
    assert_eq!(refusals.len(), 2, "{}", out.stderr);
    let reported = |file: &str, cause: &str| {
        refusals
            .iter()
            .any(|l| l.contains(file) && l.contains(cause))
    };
    assert!(
        reported("consolidation-scoring.wasm", "is a symbolic link loop"),
        "{refusals:#?}"
    );
    assert!(
        reported(
            "instance-selection.config.json",
            "is a dangling symbolic link"
        ),
        "{refusals:#?}"
    );
    // The valid policy kept serving throughout.
    let last = out.stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with("instance-selection: default@0.1.0")
            && last.contains("dangling symbolic link"),
        "{}",
        out.stdout
    );
}
