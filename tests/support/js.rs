//! The JavaScript example policy (`policies/js/cheapest-spot`), built with
//! componentize-js once per process into the target directory, for tests
//! that load or serve it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::workspace_root;

/// Where the pinned JavaScript build tools live (`tests/js/install.sh`).
pub fn js_tools_dir() -> PathBuf {
    std::env::var_os("DOVETAIL_JS_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/dovetail-tools/js"))
}

/// A built JavaScript policy component and what building it cost.
#[derive(Debug, Clone)]
pub struct JsBuild {
    pub path: PathBuf,
    pub bytes: u64,
    pub build_time: Duration,
}

/// Panics with the install hint unless componentize-js and jco are installed.
pub fn require_js_tools() -> PathBuf {
    let bin = js_tools_dir().join("node_modules").join(".bin");
    for tool in ["componentize-js", "jco"] {
        assert!(
            bin.join(tool).is_file(),
            "{tool} not found in {}: run tests/js/install.sh (needs Node 20+ and npm) to install the pinned JavaScript policy tools",
            bin.display()
        );
    }
    bin
}

fn js_target_dir() -> PathBuf {
    // Test executables live in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("js-policies"))
        .unwrap_or_else(|| workspace_root().join("target").join("js-policies"))
}

/// Builds the policy in `policies/js/<name>` with `policies/js/build.sh`
/// into the target directory (never the source tree).
pub fn build_js_policy(name: &str) -> JsBuild {
    require_js_tools();
    let root = workspace_root();
    let src = root.join("policies/js").join(name);
    let out = js_target_dir().join(format!("{name}.wasm"));
    let start = Instant::now();
    let run = Command::new(root.join("policies/js/build.sh"))
        .arg(&src)
        .arg(&out)
        .env("DOVETAIL_JS_TOOLS", js_tools_dir())
        .output()
        .expect("run policies/js/build.sh");
    let build_time = start.elapsed();
    assert!(
        run.status.success(),
        "building the JavaScript policy {} failed (run tests/js/install.sh if the tools are missing):\n{}{}",
        src.display(),
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let bytes = std::fs::metadata(&out)
        .unwrap_or_else(|e| panic!("{} was not written: {e}", out.display()))
        .len();
    JsBuild {
        path: out,
        bytes,
        build_time,
    }
}

/// The `cheapest-spot` JavaScript policy, built once per process.
pub fn js_policy_build() -> &'static JsBuild {
    static BUILD: OnceLock<JsBuild> = OnceLock::new();
    BUILD.get_or_init(|| build_js_policy("cheapest-spot"))
}

/// Path of the built `cheapest-spot` JavaScript policy component (about
/// 12 MB: too big for a ConfigMap, so it is what URL delivery is tested with).
pub fn js_policy() -> &'static Path {
    &js_policy_build().path
}

/// The WIT world a component amounts to, as `jco wit` prints it.
pub fn component_wit(component: &Path) -> String {
    let out = Command::new(require_js_tools().join("jco"))
        .arg("wit")
        .arg(component)
        .output()
        .expect("run jco wit");
    assert!(
        out.status.success(),
        "jco wit {} failed:\n{}",
        component.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("jco wit prints UTF-8")
}
