//! Errors as Kubernetes `Status` bodies.
//!
//! Clients decide what happened from `reason` alone (kube-rs' `is_already_exists`, client-go's
//! `IsConflict`), so every variant maps to the exact reason and code a real API server uses.

use serde_json::{Value, json};

/// The object a request was about, for `Status.details`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// API group, empty for core.
    pub group: String,
    /// Resource name (plural), e.g. `pods`.
    pub resource: String,
    /// Object name, empty for collections.
    pub name: String,
}

impl Target {
    pub fn new(group: &str, resource: &str, name: &str) -> Self {
        Self {
            group: group.to_string(),
            resource: resource.to_string(),
            name: name.to_string(),
        }
    }

    /// `pods` or `deployments.apps`, as real servers name a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// Why a request failed; each variant is one `Status.reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("{} \"{}\" not found", .0.qualified(), .0.name)]
    NotFound(Target),
    #[error("{} \"{}\" already exists", .0.qualified(), .0.name)]
    AlreadyExists(Target),
    /// Optimistic concurrency failure (stale resourceVersion).
    #[error("Operation cannot be fulfilled on {} \"{}\": {message}", .target.qualified(), .target.name)]
    Conflict { target: Target, message: String },
    /// Refused by policy, e.g. creating in a terminating namespace (403).
    #[error("{} \"{}\" is forbidden: {message}", .target.qualified(), .target.name)]
    Forbidden { target: Target, message: String },
    /// No valid credentials (401), when access control is on.
    #[error("Unauthorized")]
    Unauthorized,
    /// Refused by the authoriser (403); `message` is upstream's whole message.
    #[error("{message}")]
    Denied {
        group: String,
        resource: String,
        name: String,
        message: String,
    },
    /// Semantic validation failure (422).
    #[error("{} \"{}\" is invalid: {message}", .target.qualified(), .target.name)]
    Invalid { target: Target, message: String },
    #[error("{0}")]
    BadRequest(String),
    /// Unknown path or resource: 404 with reason NotFound and a plain message.
    #[error("{0}")]
    UnknownPath(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    RequestEntityTooLarge(String),
    /// A resourceVersion or continue token older than the retained history.
    #[error("{0}")]
    Expired(String),
    /// Watch-stream form of a compacted resourceVersion.
    #[error("{0}")]
    Gone(String),
    /// A list asked for a resourceVersion the server has not reached yet.
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion { requested: u64, current: u64 },
    #[error("{0}")]
    TooManyRequests(String),
    /// Server-side apply would change fields other managers own (409 Conflict), with one
    /// `FieldManagerConflict` cause (field path, message) per field.
    #[error("{message}")]
    ApplyConflict {
        message: String,
        causes: Vec<(String, String)>,
    },
    #[error("{0}")]
    Internal(String),
    /// A failure upstream reports as a bare 500 with no reason (e.g. server-side apply of a
    /// field the schema does not declare).
    #[error("{0}")]
    Unclassified(String),
}

impl ApiError {
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound(_) | Self::UnknownPath(_) => 404,
            Self::AlreadyExists(_) | Self::Conflict { .. } | Self::ApplyConflict { .. } => 409,
            Self::Invalid { .. } => 422,
            Self::Forbidden { .. } | Self::Denied { .. } => 403,
            Self::Unauthorized => 401,
            Self::BadRequest(_) => 400,
            Self::MethodNotAllowed(_) => 405,
            Self::UnsupportedMediaType(_) => 415,
            Self::RequestEntityTooLarge(_) => 413,
            Self::Expired(_) | Self::Gone(_) => 410,
            Self::TooLargeResourceVersion { .. } => 504,
            Self::TooManyRequests(_) => 429,
            Self::Internal(_) | Self::Unclassified(_) => 500,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound(_) | Self::UnknownPath(_) => "NotFound",
            Self::AlreadyExists(_) => "AlreadyExists",
            Self::Conflict { .. } | Self::ApplyConflict { .. } => "Conflict",
            Self::Invalid { .. } => "Invalid",
            Self::Forbidden { .. } | Self::Denied { .. } => "Forbidden",
            Self::Unauthorized => "Unauthorized",
            Self::BadRequest(_) => "BadRequest",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::RequestEntityTooLarge(_) => "RequestEntityTooLarge",
            Self::Expired(_) => "Expired",
            Self::Gone(_) => "Gone",
            Self::TooLargeResourceVersion { .. } => "Timeout",
            Self::TooManyRequests(_) => "TooManyRequests",
            Self::Internal(_) => "InternalError",
            Self::Unclassified(_) => "",
        }
    }

    /// The `Status` object a real API server would send for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if let Self::Unclassified(_) = self
            && let Some(m) = status.as_object_mut()
        {
            m.remove("reason");
        }
        let target = match self {
            Self::NotFound(t) | Self::AlreadyExists(t) => Some(t),
            Self::Conflict { target, .. }
            | Self::Invalid { target, .. }
            | Self::Forbidden { target, .. } => Some(target),
            _ => None,
        };
        if let Some(t) = target {
            let mut details = json!({ "name": t.name, "kind": t.resource });
            if !t.group.is_empty() {
                details["group"] = json!(t.group);
            }
            status["details"] = details;
        }
        if let Self::Denied {
            group,
            resource,
            name,
            ..
        } = self
        {
            // Upstream's StatusDetails leaves empty fields out: `{}` for a path.
            let mut details = serde_json::Map::new();
            for (key, value) in [("name", name), ("group", group), ("kind", resource)] {
                if !value.is_empty() {
                    details.insert(key.into(), json!(value));
                }
            }
            status["details"] = Value::Object(details);
        }
        if let Self::ApplyConflict { causes, .. } = self {
            status["details"] = json!({
                "causes": causes
                    .iter()
                    .map(|(field, message)| json!({ "reason": "FieldManagerConflict", "message": message, "field": field }))
                    .collect::<Vec<_>>(),
            });
        }
        if let Self::TooLargeResourceVersion { .. } = self {
            status["details"] = json!({
                "causes": [{ "reason": "ResourceVersionTooLarge", "message": "Too large resource version" }],
                "retryAfterSeconds": 1,
            });
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn already_exists_has_the_exact_reason_code_and_message() {
        let s = ApiError::AlreadyExists(Target::new("", "configmaps", "a")).to_status();
        assert_eq!(s["kind"], "Status");
        assert_eq!(s["reason"], "AlreadyExists");
        assert_eq!(s["code"], 409);
        assert_eq!(s["message"], "configmaps \"a\" already exists");
        assert_eq!(s["details"]["name"], "a");
    }

    #[test]
    fn grouped_resources_are_qualified_in_messages() {
        let e = ApiError::Conflict {
            target: Target::new("apps", "deployments", "web"),
            message: "the object has been modified".into(),
        };
        assert_eq!(
            e.to_string(),
            "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified"
        );
        assert_eq!(e.to_status()["details"]["group"], "apps");
        assert_eq!(e.code(), 409);
    }

    #[test]
    fn gone_and_expired_are_410() {
        assert_eq!(ApiError::Gone("x".into()).to_status()["code"], 410);
        assert_eq!(ApiError::Expired("x".into()).reason(), "Expired");
    }
}
