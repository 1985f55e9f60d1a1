//! Gathers what `dovetail policy new` embeds into `$OUT_DIR/policy-new/`:
//! the project templates (`policies/templates/<lang>/`), the WIT contract
//! (`wit/`) and the C SDK (`policies/c/sdk/`). A source directory that does
//! not exist is embedded empty, and the generator refuses the language that
//! needs it.

use std::fs;
use std::path::{Path, PathBuf};

const SOURCES: [(&str, &str); 3] = [
    ("policies/templates", "templates"),
    ("wit", "wit"),
    ("policies/c/sdk", "c-sdk"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.join("../..");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("policy-new");
    if out.exists() {
        fs::remove_dir_all(&out).expect("clear the embedded policy templates");
    }
    println!("cargo::rerun-if-changed=build.rs");
    for (from, to) in SOURCES {
        let from = root.join(from);
        let to = out.join(to);
        fs::create_dir_all(&to).expect("create the embedded policy templates' directory");
        // Only existing paths: a missing one would make cargo rerun this
        // script, and rebuild the binary, on every build.
        if from.is_dir() {
            println!("cargo::rerun-if-changed={}", from.display());
            copy_tree(&from, &to);
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("read a policy template directory") {
        let entry = entry.expect("read a policy template directory entry");
        let kind = entry.file_type().expect("stat a policy template file");
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            fs::create_dir_all(&target).expect("create a policy template directory");
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            fs::copy(entry.path(), &target).expect("copy a policy template file");
        }
    }
}
