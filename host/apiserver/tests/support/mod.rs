//! What several of this crate's test files share: the real `kubectl`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `kubectl` on `PATH`; a missing one fails the test with an install
/// hint rather than skipping it.
pub fn kubectl_binary() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "kubectl not found on PATH: install it (https://kubernetes.io/docs/tasks/tools/#kubectl) to run these tests"
            )
        })
}

/// Runs kubectl with the kubeconfig at `kubeconfig` and a cache under `dir`;
/// returns (success, stdout, stderr).
pub async fn kubectl(dir: &Path, kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(kubectl_binary());
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
