//! `dovetail policy new`: the project it writes builds, passes its own unit
//! tests, compiles to a component that `policy validate` accepts and that
//! makes exactly the decisions asked for; bad names, taken directories and
//! unknown languages are refused clearly, with nothing written.
//!
//! Projects are generated inside this checkout's `target/`, so they depend
//! on this repository's SDK by path, and built into `<target>/policy-new`
//! (shared between the projects, so only the first build is slow).

use std::path::{Path, PathBuf};
use std::process::Command;

use dovetail_tests::bounded::{Bounded, Caps, run};

fn dovetail(args: &[&str]) -> Bounded {
    run(
        Path::new(env!("CARGO_BIN_EXE_dovetail")),
        args,
        None,
        Caps::default(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scratch directory inside this checkout (its `target/`, which git
/// ignores), removed when dropped.
fn scratch_in_repo() -> tempfile::TempDir {
    let base = repo_root().join("target");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix("policy-new-")
        .tempdir_in(base)
        .unwrap()
}

/// Where generated projects are built: beside the test's own target dir.
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("policy-new"))
        .unwrap_or_else(|| repo_root().join("target/policy-new"))
}

/// Runs cargo in `project`, the way a policy author would, with warnings
/// as errors: a template that makes its user's build warn is a bug.
fn cargo(project: &Path, args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(project)
        .args(args)
        .env("CARGO_TARGET_DIR", build_dir())
        .env("CARGO_INCREMENTAL", "0")
        .env("RUSTFLAGS", "-D warnings")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .expect("run cargo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "cargo {} in {} failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`):\n{text}",
        args.join(" "),
        project.display()
    );
    text
}

/// Generates `name` with `decision` inside the checkout and builds its
/// component; returns the project directory and the component.
/// `requests` names the example requests the project must have (and no
/// others).
fn generate_and_build(
    scratch: &Path,
    name: &str,
    decision: &str,
    requests: &[&str],
) -> (PathBuf, PathBuf) {
    let project = scratch.join(name);
    let out = dovetail(&[
        "policy",
        "new",
        name,
        "--decision",
        decision,
        "--dir",
        s(&project),
    ]);
    out.expect_code(0);
    assert!(out.stdout.contains("README.md"), "{}", out.stdout);
    assert_eq!(files(&project), common_files(requests));
    // scratch = <repo>/target/policy-new-XXXX: three levels below the root.
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"dovetail-policy-sdk = { path = "../../../policies/sdk" }"#),
        "inside the repository the SDK is used by path:\n{manifest}"
    );
    cargo(&project, &["fmt", "--check"]);
    let tests = cargo(&project, &["test"]);
    // The unit tests' summary comes first (the doc tests' follows).
    let passed: u32 = tests
        .split("test result: ok. ")
        .nth(1)
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= 3,
        "the project's unit tests did not run:\n{tests}"
    );
    cargo(
        &project,
        &["build", "--release", "--target", "wasm32-wasip2"],
    );
    let wasm = build_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    (project, wasm)
}

/// `policy validate --json` of the component with the project's example
/// config: (name, world, decisions).
fn validate(project: &Path, wasm: &Path) -> (String, String, Vec<String>) {
    let config = project.join("config.json");
    let out = dovetail(&[
        "policy",
        "validate",
        s(wasm),
        "--config",
        s(&config),
        "--json",
    ]);
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let decisions = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    (
        report["name"].as_str().unwrap().to_string(),
        report["world"].as_str().unwrap().to_string(),
        decisions,
    )
}

/// Relative paths of every file in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(s(path.strip_prefix(base).unwrap()).to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

const BOTH: [&str; 2] = ["requests/consolidation.json", "requests/selection.json"];

fn common_files(extra: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = [
        ".github/workflows/policy.yml",
        ".gitignore",
        "Cargo.toml",
        "README.md",
        "cases.yaml",
        "config.json",
        "src/lib.rs",
    ]
    .iter()
    .chain(extra)
    .map(|f| f.to_string())
    .collect();
    all.sort();
    all
}

#[test]
fn a_rust_instance_selector_builds_tests_and_validates() {
    let scratch = scratch_in_repo();
    let (project, wasm) = generate_and_build(
        scratch.path(),
        "pick-first",
        "instance-selection",
        &["requests/selection.json"],
    );
    let (name, world, decisions) = validate(&project, &wasm);
    assert_eq!(name, "pick-first");
    assert_eq!(world, "instance-selector");
    assert_eq!(decisions, ["instance-selection"]);
}

#[test]
fn a_rust_consolidation_scorer_builds_tests_and_validates() {
    let scratch = scratch_in_repo();
    let (project, wasm) = generate_and_build(
        scratch.path(),
        "keep-steady",
        "consolidation-scoring",
        &["requests/consolidation.json"],
    );
    let (name, world, decisions) = validate(&project, &wasm);
    assert_eq!(name, "keep-steady");
    assert_eq!(world, "consolidation-scorer");
    assert_eq!(decisions, ["consolidation-scoring"]);
}

#[test]
fn a_rust_policy_making_both_decisions_builds_tests_and_validates() {
    let scratch = scratch_in_repo();
    let (project, wasm) = generate_and_build(scratch.path(), "all-in-one", "both", &BOTH);
    let (name, world, decisions) = validate(&project, &wasm);
    assert_eq!(name, "all-in-one");
    assert_eq!(world, "policy");
    assert_eq!(decisions, ["instance-selection", "consolidation-scoring"]);
    // The config its README pushes is refused when it has a typo.
    let typo = project.join("typo.json");
    std::fs::write(&typo, r#"{"max-price-per-hr": 1}"#).unwrap();
    dovetail(&["policy", "validate", s(&wasm), "--config", s(&typo)])
        .expect_code(1)
        .expect_stderr(&["max-price-per-hr"]);
}

/// The golden cases every new project ships pass on the policy as
/// generated, through `dovetail policy test --cases`.
#[test]
fn generated_golden_cases_pass_with_policy_test_cases() {
    let scratch = scratch_in_repo();
    let (project, wasm) = generate_and_build(scratch.path(), "golden-start", "both", &BOTH);
    let cases = project.join("cases.yaml");
    let out = dovetail(&["policy", "test", s(&wasm), "--cases", s(&cases)]);
    out.expect_code(0);
    for name in [
        "spot first, then on-demand cheapest first",
        "max-price-per-hour leaves out dearer offerings",
        "nothing under max-price-per-hour is an error",
        "deletes the empty node first and approves cheaper moves",
        "min-savings-percent holds back a small saving",
    ] {
        assert!(
            out.stdout.contains(&format!("PASS {name}")),
            "{name}: {}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
}

#[test]
fn outside_a_checkout_the_sdk_is_a_crates_io_version() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("elsewhere");
    dovetail(&[
        "policy",
        "new",
        "elsewhere",
        "--decision",
        "consolidation-scoring",
        "--dir",
        s(&project),
    ])
    .expect_code(0);
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("dovetail-policy-sdk = \"0.1\""),
        "{manifest}"
    );
    assert!(manifest.contains("[workspace]"), "{manifest}");
}

#[test]
fn an_empty_directory_is_filled() {
    let dir = tempfile::tempdir().unwrap();
    dovetail(&[
        "policy",
        "new",
        "fill-me",
        "--decision",
        "instance-selection",
        "--dir",
        s(dir.path()),
    ])
    .expect_code(0);
    assert!(dir.path().join("src/lib.rs").is_file());
    let lib = std::fs::read_to_string(dir.path().join("src/lib.rs")).unwrap();
    assert!(
        lib.contains("const NAME: &'static str = \"fill-me\";"),
        "{lib}"
    );
    assert!(!lib.contains("{%") && !lib.contains("{{"), "{lib}");
}

#[test]
fn bad_names_are_refused_with_a_kebab_case_fix() {
    let dir = tempfile::tempdir().unwrap();
    let long = "a".repeat(64);
    for (name, why, fix) in [
        (
            "MyPolicy",
            "must start with a lowercase letter",
            "\"my-policy\"",
        ),
        ("my_policy", "holds '_'", "\"my-policy\""),
        ("my--policy", "two in a row", "\"my-policy\""),
        ("policy-", "at the end", "\"policy\""),
        ("9lives", "must start with a lowercase letter", "\"lives\""),
        ("fn", "is reserved", "kebab-case"),
        (long.as_str(), "is 64 characters, over 63", "kebab-case"),
    ] {
        let target = dir.path().join("out");
        let out = dovetail(&[
            "policy",
            "new",
            name,
            "--decision",
            "both",
            "--dir",
            s(&target),
        ]);
        out.expect_code(2).expect_stderr(&[
            &format!("policy name {name:?}"),
            why,
            "fix: use kebab-case",
            fix,
        ]);
        assert!(!target.exists(), "{name}: something was written");
    }
}

#[test]
fn a_directory_in_use_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let out = dovetail(&[
        "policy",
        "new",
        "taken",
        "--decision",
        "both",
        "--dir",
        s(&taken),
    ]);
    out.expect_code(1).expect_stderr(&[
        s(&taken),
        "already exists and is not empty",
        "nothing was written",
        "choose another NAME or --dir",
    ]);
    assert_eq!(files(&taken), ["notes.txt"]);
    assert_eq!(
        files(dir.path()),
        ["taken/notes.txt"],
        "no staging left over"
    );

    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    dovetail(&[
        "policy",
        "new",
        "a-file",
        "--decision",
        "both",
        "--dir",
        s(&file),
    ])
    .expect_code(1)
    .expect_stderr(&["a-file", "already exists and is not a directory"]);
}

#[test]
fn an_unknown_language_is_refused_naming_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("go-policy");
    let out = dovetail(&[
        "policy",
        "new",
        "go-policy",
        "--decision",
        "both",
        "--lang",
        "go",
        "--dir",
        s(&target),
    ]);
    out.expect_code(2).expect_stderr(&[
        "no template for language \"go\"",
        "fix: use --lang c or --lang js or --lang rust",
    ]);
    assert!(!target.exists());
}

#[test]
fn every_decision_must_be_one_of_the_three() {
    let out = dovetail(&["policy", "new", "x-policy", "--decision", "scheduling"]);
    out.expect_code(2).expect_stderr(&[
        "scheduling",
        "instance-selection",
        "consolidation-scoring",
        "both",
    ]);
}

/// Runs `program args` in `dir` with the `dovetail` under test first on
/// `PATH`, failing with its output.
fn run_in(dir: &Path, program: &str, args: &[&str], hint: &str) -> String {
    let path = dovetail_tests::path_with(Path::new(env!("CARGO_BIN_EXE_dovetail")));
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({hint}): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`{program} {}` in {} failed ({hint}):\n{text}",
        args.join(" "),
        dir.display()
    );
    text
}

/// A C project, for each decision, builds with its Makefile (the SDK and the
/// WIT come with it) and passes its own validate and golden cases.
#[test]
fn a_c_policy_project_builds_and_passes_its_cases() {
    let scratch = tempfile::tempdir().unwrap();
    for (decision, cases) in [
        ("instance-selection", 2),
        ("consolidation-scoring", 1),
        ("both", 3),
    ] {
        let name = format!("c-{decision}");
        let project = scratch.path().join(&name);
        dovetail(&[
            "policy",
            "new",
            &name,
            "--decision",
            decision,
            "--lang",
            "c",
            "--dir",
            s(&project),
        ])
        .expect_code(0);
        for f in [
            "sdk/dovetail_policy.h",
            "wit/policy.wit",
            "Makefile",
            "cases.yaml",
        ] {
            assert!(project.join(f).is_file(), "{name}: {f} missing");
        }
        let out = run_in(
            &project,
            "make",
            &["test"],
            "install the tools with tests/c/install.sh",
        );
        assert!(
            out.contains(&format!("{cases} passed, 0 failed")),
            "{name}: {out}"
        );
        let size = std::fs::metadata(project.join(format!("{name}.wasm")))
            .unwrap()
            .len();
        assert!(size < 1 << 20, "{name}: {size} bytes fits a ConfigMap");
    }
}

/// A JavaScript project builds with its own package.json (the pinned
/// componentize-js) and passes its own validate and golden cases.
#[test]
fn a_javascript_policy_project_builds_and_passes_its_cases() {
    dovetail_tests::js::require_js_tools();
    let scratch = tempfile::tempdir().unwrap();
    let project = scratch.path().join("js-both");
    dovetail(&[
        "policy",
        "new",
        "js-both",
        "--decision",
        "both",
        "--lang",
        "js",
        "--dir",
        s(&project),
    ])
    .expect_code(0);
    let hint =
        "Node.js 20 and npm, with the npm registry reachable (tests/js/install.sh fills the cache)";
    run_in(
        &project,
        "npm",
        &["install", "--no-audit", "--no-fund", "--prefer-offline"],
        hint,
    );
    run_in(&project, "npm", &["run", "build"], hint);
    run_in(&project, "npm", &["run", "validate"], hint);
    let out = run_in(&project, "npm", &["test"], hint);
    assert!(out.contains(" passed, 0 failed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

// Bad input, as every command takes it (docs/limits.md): a destination that
// cannot be a directory is refused with a fix and nothing written; a full
// disk fails the summary, a closed pipe ends it quietly.

#[test]
fn bad_input_a_destination_that_cannot_be_made_is_refused_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    for dest in [file.join("p"), PathBuf::from("/proc/dovetail-policy-new")] {
        let r = dovetail(&[
            "policy",
            "new",
            "p",
            "--decision",
            "instance-selection",
            "--dir",
            s(&dest),
        ]);
        r.expect_no_panic().expect_code(1).expect_stderr(&[
            "nothing was written",
            "fix: give NAME or --dir a path inside a directory you can write",
        ]);
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "not a directory",
        "left alone"
    );
}

#[test]
fn bad_input_the_summary_on_a_full_disk_or_a_closed_pipe() {
    use dovetail_tests::bounded::{Io, Stdout, run_with};
    let dir = tempfile::tempdir().unwrap();
    let with = |name: &str, stdout| {
        let dest = dir.path().join(name);
        let r = run_with(
            Path::new(env!("CARGO_BIN_EXE_dovetail")),
            &[
                "policy",
                "new",
                name,
                "--decision",
                "both",
                "--lang",
                "c",
                "--dir",
                s(&dest),
            ],
            Io {
                stdout,
                ..Default::default()
            },
            Caps::default(),
        );
        (r, dest)
    };
    let (full, dest) = with("on-a-full-disk", Stdout::Full);
    full.expect_failed_write("the new project's summary");
    assert!(
        dest.join("Makefile").is_file(),
        "the project is written before its summary"
    );
    let (closed, dest) = with("behind-head", Stdout::Closed);
    closed.expect_quiet_end();
    assert!(dest.join("Makefile").is_file());
}
