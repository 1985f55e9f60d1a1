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
    use serde_json::json;

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
