//! The `dryRun` option of writes: `All` (validate and admit, store nothing) is the only value
//! Kubernetes defines; anything else is refused as upstream `ValidateDryRun` does (422).

use axum::http::Method;
use serde_json::Value;

use crate::status::{ApiError, Target};

/// The options kind a real server names when it refuses a write's options.
fn options_kind(method: &Method) -> &'static str {
    match *method {
        Method::PUT => "UpdateOptions",
        Method::PATCH => "PatchOptions",
        Method::DELETE => "DeleteOptions",
        _ => "CreateOptions",
    }
}

fn refuse(method: &Method, values: &[&str]) -> ApiError {
    ApiError::Invalid {
        target: Target::new("meta.k8s.io", options_kind(method), ""),
        message: format!(
            "dryRun: Unsupported value: []string{{{}}}: supported values: \"All\"",
            values
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Whether the write is a dry run, from the `dryRun` query parameter (absent: no).
pub fn from_query(method: &Method, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(refuse(method, &[other])),
    }
}

/// Whether a `dryRun` list in a body (DeleteOptions, an Eviction's deleteOptions) asks for a
/// dry run; `null` or absent means no.
pub fn from_body(method: &Method, value: Option<&Value>) -> Result<bool, ApiError> {
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return Ok(false);
    };
    let Some(list) = v.as_array() else {
        return Err(ApiError::BadRequest(format!(
            "dryRun must be a list of strings such as [\"All\"], got {v}"
        )));
    };
    let values: Vec<&str> = list.iter().map(|x| x.as_str().unwrap_or("")).collect();
    if values.iter().all(|x| *x == "All") {
        Ok(!values.is_empty())
    } else {
        Err(refuse(method, &values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DeleteOptions, Store, Subresource, WriteOptions};
    use serde_json::json;

    const DRY: WriteOptions = WriteOptions { dry_run: true };

    #[test]
    fn dry_runs_answer_like_writes_but_keep_the_store_unchanged() {
        let s = Store::default();
        let pods = s.resource("", "v1", "pods").unwrap();
        let pod = json!({ "metadata": { "name": "p" }, "spec": { "containers": [{ "name": "c", "image": "i" }] } });
        let start = s.revision();
        let would = s
            .create_with(&pods, "default", pod.clone(), DRY, |_, _| Ok(()))
            .unwrap();
        assert_eq!(would["spec"]["dnsPolicy"], "ClusterFirst", "defaults apply");
        assert!(would["metadata"]["uid"].is_string());
        assert!(would["metadata"].get("resourceVersion").is_none());
        assert_eq!(s.revision(), start);
        assert_eq!(s.get(&pods, "default", "p").unwrap_err().code(), 404);
        let e = s
            .create_with(&pods, "nope", pod.clone(), DRY, |_, _| Ok(()))
            .unwrap_err();
        assert_eq!(e.code(), 404, "validation still runs");

        let created = s.create(&pods, "default", pod).unwrap();
        let start = s.revision();
        let mut relabelled = created.clone();
        relabelled["metadata"]["labels"] = json!({ "a": "b" });
        let would = s
            .update_with(
                &pods,
                "default",
                "p",
                relabelled,
                Subresource::Main,
                DRY,
                |_, _| Ok(()),
            )
            .unwrap();
        assert_eq!(would["metadata"]["labels"]["a"], "b");
        assert_eq!(
            would["metadata"]["resourceVersion"],
            created["metadata"]["resourceVersion"]
        );
        let mut stale = created.clone();
        stale["metadata"]["resourceVersion"] = json!("1");
        assert_eq!(
            s.update_with(
                &pods,
                "default",
                "p",
                stale,
                Subresource::Main,
                DRY,
                |_, _| Ok(())
            )
            .unwrap_err()
            .code(),
            409
        );
        let binding =
            json!({ "metadata": { "name": "p" }, "target": { "kind": "Node", "name": "n1" } });
        crate::pod::bind(&s, &pods, "default", "p", &binding, true).unwrap();
        assert_eq!(
            s.get(&pods, "default", "p").unwrap(),
            created,
            "a dry-run binding binds nothing"
        );
        let dry_delete = DeleteOptions {
            dry_run: true,
            ..DeleteOptions::default()
        };
        s.delete(&pods, "default", "p", &dry_delete).unwrap();
        assert_eq!(s.get(&pods, "default", "p").unwrap(), created);
        let nss = s.resource("", "v1", "namespaces").unwrap();
        s.create(&nss, "", json!({ "metadata": { "name": "team" } }))
            .unwrap();
        let start_ns = s.revision();
        let would = s.delete(&nss, "", "team", &dry_delete).unwrap();
        assert_eq!(would["status"]["phase"], "Terminating");
        assert_eq!(
            s.get(&nss, "", "team").unwrap()["status"]["phase"],
            "Active"
        );
        assert_eq!(s.revision(), start_ns);
        assert_eq!(
            s.events_since(&pods, "", start).unwrap().1.len(),
            0,
            "no events"
        );
    }

    #[test]
    fn only_all_is_accepted() {
        assert!(!from_query(&Method::POST, None).unwrap());
        assert!(from_query(&Method::POST, Some("All")).unwrap());
        let e = from_query(&Method::POST, Some("Yes")).unwrap_err();
        assert_eq!((e.code(), e.reason()), (422, "Invalid"));
        assert_eq!(
            e.to_string(),
            "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Yes\"}: supported values: \"All\""
        );
        assert!(from_body(&Method::DELETE, Some(&json!(["All"]))).unwrap());
        assert!(!from_body(&Method::DELETE, Some(&json!([]))).unwrap());
        assert!(!from_body(&Method::DELETE, None).unwrap());
        let e = from_body(&Method::DELETE, Some(&json!(["x"]))).unwrap_err();
        assert!(
            e.to_string().starts_with("DeleteOptions.meta.k8s.io"),
            "{e}"
        );
    }
}
