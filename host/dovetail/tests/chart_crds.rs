//! The Helm chart installs the CRDs `dovetail crds` prints, unchanged.

use std::path::Path;
use std::process::Command;

/// Where the chart keeps them, from the workspace root.
const CHART_CRDS: &str = "charts/dovetail/crds/crds.yaml";

#[test]
fn the_charts_crds_are_the_ones_dovetail_crds_prints() {
    let out = Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .arg("crds")
        .output()
        .expect("run dovetail crds");
    assert!(
        out.status.success(),
        "dovetail crds failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).expect("dovetail crds prints UTF-8");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(CHART_CRDS);
    let fix = format!("regenerate it: cargo run -p dovetail -- crds > {CHART_CRDS}");
    let in_chart = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {CHART_CRDS} ({e}); {fix}"));
    if in_chart != generated {
        let line = in_chart
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| in_chart.lines().count().min(generated.lines().count()))
            + 1;
        panic!(
            "{CHART_CRDS} differs from what `dovetail crds` prints (first at line {line}): helm would install other CRDs than Dovetail's; {fix}"
        );
    }
    let others: Vec<String> = std::fs::read_dir(path.parent().expect("a parent"))
        .expect("read the chart's crds/")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n != "crds.yaml")
        .collect();
    assert!(
        others.is_empty(),
        "charts/dovetail/crds/ holds files besides crds.yaml ({}); helm installs every file there: remove them, the CRDs are all in crds.yaml",
        others.join(", ")
    );
}
