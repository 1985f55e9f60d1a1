//! `dovetail crds`: Karpenter's three CRDs as Dovetail reads them, for
//! `kubectl apply -f -`.

use anyhow::{Context, Result};

/// The CRDs as multi-document YAML.
pub fn yaml() -> Result<String> {
    let mut out = String::new();
    for crd in dovetail_api::crd::crds() {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd).context("writing a CRD as YAML")?);
    }
    Ok(out)
}

pub fn run() -> Result<()> {
    crate::output::stdout("the CRDs").text(&yaml()?)?;
    Ok(())
}
