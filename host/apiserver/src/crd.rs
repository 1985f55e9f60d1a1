//! CustomResourceDefinitions: which resources a CRD serves, what makes one invalid, and the
//! status the apiextensions controllers give an accepted one.

use serde_json::{Value, json};

use crate::resource::{ResourceInfo, StatusOnCreate};

/// Storage key of CustomResourceDefinition objects.
pub const CRD_KEY: &str = "customresourcedefinitions.apiextensions.k8s.io";

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Why a CRD cannot be accepted, as `field: problem` for a 422.
pub fn validate(crd: &Value) -> Result<(), String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let group = str_at(spec, &["group"])
        .filter(|g| g.contains('.'))
        .ok_or("spec.group: Invalid value: should be a domain with at least one dot")?;
    let plural = str_at(spec, &["names", "plural"])
        .filter(|p| !p.is_empty())
        .ok_or("spec.names.plural: Required value")?;
    str_at(spec, &["names", "kind"])
        .filter(|k| !k.is_empty())
        .ok_or("spec.names.kind: Required value")?;
    match str_at(spec, &["scope"]) {
        Some("Namespaced" | "Cluster") => {}
        _ => {
            return Err(
                "spec.scope: Unsupported value: supported values: \"Cluster\", \"Namespaced\""
                    .into(),
            );
        }
    }
    let name = str_at(crd, &["metadata", "name"]).unwrap_or("");
    if name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
        ));
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or(
            "spec.versions: Invalid value: must have exactly one version marked as storage version",
        )?;
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if storage != 1 {
        return Err(
            "spec.versions: Invalid value: must have exactly one version marked as storage version"
                .into(),
        );
    }
    if versions
        .iter()
        .any(|v| str_at(v, &["name"]).is_none_or(str::is_empty))
    {
        return Err("spec.versions[].name: Required value".into());
    }
    Ok(())
}

/// The resources a (valid) CRD serves: one per served version.
pub fn resources(crd: &Value) -> Vec<ResourceInfo> {
    let Some(spec) = crd.get("spec") else {
        return Vec::new();
    };
    let group = str_at(spec, &["group"]).unwrap_or("");
    let plural = str_at(spec, &["names", "plural"]).unwrap_or("");
    let kind = str_at(spec, &["names", "kind"]).unwrap_or("");
    let singular = str_at(spec, &["names", "singular"])
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let short_names: Vec<String> = spec["names"]["shortNames"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let namespaced = str_at(spec, &["scope"]) == Some("Namespaced");
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .map(|v| {
            let status = v.pointer("/subresources/status").is_some();
            ResourceInfo {
                group: group.to_string(),
                version: str_at(v, &["name"]).unwrap_or("").to_string(),
                plural: plural.to_string(),
                singular: singular.clone(),
                kind: kind.to_string(),
                namespaced,
                status_subresource: status,
                generation: true,
                status_on_create: if status {
                    StatusOnCreate::Clear
                } else {
                    StatusOnCreate::Keep
                },
                builtin: false,
                require_resource_version_on_update: true,
                short_names: short_names.clone(),
                printer_columns: v
                    .get("additionalPrinterColumns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The status of an accepted CRD: names accepted, established, its storage version stored.
pub fn accepted_status(crd: &Value, now: &str) -> Value {
    let spec = &crd["spec"];
    let storage: Vec<&str> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| str_at(v, &["name"]))
        .collect();
    let condition = |t: &str, reason: &str, message: &str| json!({ "type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message });
    json!({
        "acceptedNames": spec["names"],
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": storage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget() -> Value {
        json!({
            "metadata": { "name": "widgets.example.com" },
            "spec": {
                "group": "example.com",
                "names": { "plural": "widgets", "kind": "Widget", "shortNames": ["wd"] },
                "scope": "Namespaced",
                "versions": [
                    { "name": "v1", "served": true, "storage": true, "subresources": { "status": {} } },
                    { "name": "v1beta1", "served": false, "storage": false },
                ],
            },
        })
    }

    #[test]
    fn served_versions_become_resources() {
        let r = resources(&widget());
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].api_version(), r[0].kind.as_str()),
            ("example.com/v1".to_string(), "Widget")
        );
        assert!(r[0].status_subresource && r[0].namespaced && !r[0].builtin);
        assert_eq!(r[0].singular, "widget");
        assert_eq!(r[0].storage_key(), "widgets.example.com");
    }

    #[test]
    fn invalid_definitions_name_the_field() {
        validate(&widget()).unwrap();
        let mut bad = widget();
        bad["metadata"]["name"] = json!("widgets");
        assert!(validate(&bad).unwrap_err().starts_with("metadata.name"));
        let mut bad = widget();
        bad["spec"]["versions"][0]["storage"] = json!(false);
        assert!(validate(&bad).unwrap_err().contains("storage version"));
        let mut bad = widget();
        bad["spec"]["scope"] = json!("Global");
        assert!(validate(&bad).unwrap_err().starts_with("spec.scope"));
    }

    #[test]
    fn accepted_status_is_established() {
        let s = accepted_status(&widget(), "2026-01-01T00:00:00Z");
        assert_eq!(s["conditions"][1]["type"], "Established");
        assert_eq!(s["storedVersions"], json!(["v1"]));
        assert_eq!(s["acceptedNames"]["kind"], "Widget");
    }
}
