//! `docs/writing-policies.md` as a policy author follows it: every command
//! in its `sh` blocks is run. The loop (new, build and test, judge, push in
//! shadow, promote, larger than a ConfigMap) runs in order in one shell
//! against `dovetail dev`; the blocks under "Other languages" run from the
//! checkout's root. A command that fails fails the test with its output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dovetail_tests::{kubectl_binary, path_with, start_dev, workspace_root};

/// The `sh` blocks of the doc, each with the heading (`## …`) it is under.
fn sh_blocks(doc: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match &mut current {
            Some(block) if line.trim_start() == "```" => {
                blocks.push((section.clone(), std::mem::take(block)));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if line.trim_start() == "```sh" => current = Some(String::new()),
            None if line.starts_with("## ") => section = line[3..].to_string(),
            None => {}
        }
    }
    assert!(current.is_none(), "an sh block is not closed");
    blocks
}

/// Runs `script` in bash (stopping at the first failing command, echoing
/// each) in `dir` with `env`; panics with the transcript when it fails.
fn bash(what: &str, script: &str, dir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("set -euxo pipefail\n{script}"))
        .current_dir(dir)
        .env("PATH", path_with(Path::new(env!("CARGO_BIN_EXE_dovetail"))))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run bash");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what}: a command in docs/writing-policies.md failed:\n{transcript}"
    );
    transcript
}

/// Generated projects build here, shared with the `policy new` tests, so
/// only the first build is slow.
fn project_target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("policy-new"))
        .unwrap_or_else(|| workspace_root().join("target/policy-new"))
}

#[test]
fn every_command_in_writing_policies_runs() {
    kubectl_binary();
    let root = workspace_root();
    let doc = std::fs::read_to_string(root.join("docs/writing-policies.md")).unwrap();
    let blocks = sh_blocks(&doc);
    let (looped, others): (Vec<_>, Vec<_>) = blocks
        .into_iter()
        .partition(|(section, _)| section.starts_with("The loop"));
    assert!(looped.len() >= 6, "the loop's steps: {looped:?}");
    assert!(others.len() >= 2, "the other languages' blocks: {others:?}");
    for step in [
        "dovetail policy new ",
        "dovetail policy test \"$wasm\" --cases",
        "dovetail policy judge ",
        "--shadow --wait",
        "kubectl delete configmap -n kube-system dovetail-instance-selection-shadow",
        "--url ",
    ] {
        assert!(
            looped.iter().any(|(_, b)| b.contains(step)),
            "the loop shows `{step}`"
        );
    }

    // The project goes inside this checkout (git ignores `target/`), so it
    // builds against this SDK by path.
    let base = root.join("target");
    std::fs::create_dir_all(&base).unwrap();
    let scratch = tempfile::Builder::new()
        .prefix("writing-policies-")
        .tempdir_in(&base)
        .unwrap();
    let (_dev, kubeconfig) = start_dev(Path::new(env!("CARGO_BIN_EXE_dovetail")), scratch.path());
    let script: String = looped.iter().map(|(_, b)| b.as_str()).collect();
    let target = project_target_dir();
    let transcript = bash(
        "the loop",
        &script,
        scratch.path(),
        &[
            ("KUBECONFIG", kubeconfig.as_os_str()),
            ("CARGO_TARGET_DIR", target.as_os_str()),
        ],
    );
    // What the author reads on the way: the cases pass, the judge passes,
    // the controller accepts the shadow and then the live version.
    for seen in [
        " passed, 0 failed",
        "pushed instance-selection policy spot-first 0.1.0",
        "in shadow mode",
        "accepted: ",
        "\"outcome\":\"accepted\"",
        "configmap \"dovetail-instance-selection-shadow\" deleted",
        "instance-selection.url: https://policies.example.com/spot-first-0.1.0.wasm",
    ] {
        assert!(transcript.contains(seen), "`{seen}` in:\n{transcript}");
    }

    for (section, block) in &others {
        bash(section, block, &root, &[]);
    }
}
