//! C policies built with `policies/c/build.sh`, once per process, into the
//! target directory (never the source tree).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::workspace_root;

/// Where built C components go: beside the guest components.
fn out_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("c-policies"))
        .unwrap_or_else(|| workspace_root().join("target").join("c-policies"))
}

/// Builds the C policy in `src` (relative to the workspace root; its world
/// from its `world` file) and returns the component's path. A missing tool
/// fails the test with build.sh's message, which names `tests/c/install.sh`.
pub fn build(src: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(src) {
        return p.clone();
    }
    let root = workspace_root();
    let out = out_dir().join(format!("{}.wasm", src.replace('/', "_")));
    let result = Command::new("bash")
        .arg(root.join("policies/c/build.sh"))
        .arg(root.join(src))
        .arg(&out)
        .output()
        .expect("run policies/c/build.sh (is bash installed?)");
    assert!(
        result.status.success(),
        "building the C policy {src} failed; install the toolchain with tests/c/install.sh:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    built.insert(src.to_string(), out.clone());
    out
}

/// Bytes of the built C policy in `src`.
pub fn bytes(src: &str) -> Vec<u8> {
    std::fs::read(build(src)).expect("read the built C policy")
}
