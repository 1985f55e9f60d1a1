//! Test support: builds the guest components the tests load, once per
//! process, into their own target directory (nested cargo calls on the
//! outer target directory would wait on its lock). The AWS test server is
//! its own crate, `dovetail-moto`, so adapters can use it without the policy
//! runtime.

pub mod bounded;
pub mod c_policy;
pub mod js;
pub mod same_as_builtin;

pub use js::js_policy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Shipped policies, by package name.
pub const SHIPPED: [&str; 4] = [
    "dovetail-policy-default",
    "dovetail-policy-savings-threshold",
    "dovetail-policy-balanced",
    "dovetail-policy-graviton-first",
];

/// Test-only guests.
pub const TEST_GUESTS: [&str; 4] = [
    "dovetail-guest-hostile",
    "dovetail-guest-wrong-version",
    "dovetail-guest-forbidden-import",
    "dovetail-guest-wrong-world",
];

/// The seed that makes the hostile guest misbehave.
pub const TRIGGER_SEED: u64 = 666;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

fn guest_target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DOVETAIL_GUEST_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // Test executables live in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("guests"))
        .unwrap_or_else(|| workspace_root().join("target").join("guests"))
}

fn build_all() -> PathBuf {
    let target = guest_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        // Settings meant for the outer build must not leak into the guests.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    for p in SHIPPED.iter().chain(TEST_GUESTS.iter()) {
        cmd.args(["-p", p]);
    }
    let out = cmd.output().expect("run cargo to build guest components");
    assert!(
        out.status.success(),
        "building guest components failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("wasm32-wasip2").join("release")
}

/// Path of the built component for `package` (e.g. `dovetail-policy-default`).
pub fn guest(package: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(build_all);
    let file = package.replace('-', "_");
    let wasm = dir.join(format!("{file}.wasm"));
    assert!(wasm.exists(), "{} was not built", wasm.display());
    wasm
}

/// Bytes of the built component for `package`.
pub fn guest_bytes(package: &str) -> Vec<u8> {
    std::fs::read(guest(package)).expect("read guest")
}

/// A file under `examples/`.
pub fn example(path: &str) -> PathBuf {
    workspace_root().join("examples").join(path)
}

/// The `kubectl` on `PATH`. A test that needs it fails with an install hint
/// when there is none, rather than being skipped.
pub fn kubectl_binary() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "kubectl not found on PATH: install it (https://kubernetes.io/docs/tasks/tools/#kubectl) to run this test"
            )
        })
}

/// `dovetail dev` started from `dovetail` (the binary under test) with
/// every port chosen free, its kubeconfig written into `dir`; returned once
/// the kubeconfig is there, with its path. Killed when dropped.
pub fn start_dev(dovetail: &Path, dir: &Path) -> (Running, PathBuf) {
    start_dev_with(dovetail, dir, &[])
}

/// [`start_dev`] with more arguments for `dovetail dev`.
pub fn start_dev_with(dovetail: &Path, dir: &Path, extra: &[&str]) -> (Running, PathBuf) {
    let kubeconfig = dir.join("kubeconfig");
    let dev = Running(
        Command::new(dovetail)
            .args([
                "dev",
                "--port",
                "0",
                "--metrics-port",
                "0",
                "--health-probe-port",
                "0",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run dovetail dev"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !kubeconfig.is_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "dovetail dev wrote no kubeconfig"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (dev, kubeconfig)
}

/// `PATH` with the directory of `program` first, so scripts and tools a
/// test runs find the binary under test by its name.
pub fn path_with(program: &Path) -> std::ffi::OsString {
    let dir = program.parent().expect("a program path has a directory");
    std::env::join_paths(
        std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .expect("PATH entries join")
}

/// A child process, killed when dropped, so a failing test leaves none
/// behind.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
