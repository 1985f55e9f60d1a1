//! What a user may ask about themselves when access control is on, as upstream answers it:
//! SelfSubjectAccessReview (`kubectl auth can-i`), SelfSubjectRulesReview (`kubectl auth can-i
//! --list`) and SelfSubjectReview (`kubectl auth whoami`). Each is a create that stores nothing
//! and answers with the review and its status (201).

use serde_json::{Value, json};

use crate::authn::UserInfo;
use crate::rbac;
use crate::request_info::RequestAttributes;
use crate::status::{ApiError, Target};
use crate::store::Store;

/// A review kind, by the path it is created at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    Access,
    Rules,
    Identity,
}

impl Review {
    /// The review created at `path`, if any.
    pub fn at(path: &str) -> Option<Self> {
        match path.trim_end_matches('/') {
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" => Some(Self::Access),
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews" => Some(Self::Rules),
            "/apis/authentication.k8s.io/v1/selfsubjectreviews" => Some(Self::Identity),
            _ => None,
        }
    }

    fn kind(self) -> (&'static str, &'static str) {
        match self {
            Self::Access => ("authorization.k8s.io", "SelfSubjectAccessReview"),
            Self::Rules => ("authorization.k8s.io", "SelfSubjectRulesReview"),
            Self::Identity => ("authentication.k8s.io", "SelfSubjectReview"),
        }
    }
}

/// The review `body` answered for `user`.
pub fn answer(
    store: &Store,
    user: &UserInfo,
    review: Review,
    body: &Value,
) -> Result<Value, ApiError> {
    let (group, kind) = review.kind();
    let invalid = |message: String| ApiError::Invalid {
        target: Target::new(group, kind, ""),
        message,
    };
    let spec = &body["spec"];
    let status = match review {
        Review::Access => {
            let attrs = match (
                spec.get("resourceAttributes"),
                spec.get("nonResourceAttributes"),
            ) {
                (Some(r), None) => {
                    let field =
                        |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    RequestAttributes {
                        resource_request: true,
                        verb: field("verb"),
                        path: String::new(),
                        api_group: field("group"),
                        api_version: field("version"),
                        namespace: field("namespace"),
                        resource: field("resource"),
                        subresource: field("subresource"),
                        name: field("name"),
                    }
                }
                (None, Some(n)) => {
                    let field = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or("");
                    RequestAttributes::non_resource(field("verb"), field("path"))
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "spec.nonResourceAttributes: Invalid value: \"object\": cannot be specified in combination with resourceAttributes".into(),
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        "spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
                    ));
                }
            };
            let decision = rbac::authorize(store, user, &attrs);
            let mut status = json!({ "allowed": decision.allowed });
            if !decision.reason.is_empty() {
                status["reason"] = json!(decision.reason);
            }
            status
        }
        Review::Rules => {
            let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
            let mut resource_rules = Vec::new();
            let mut non_resource_rules = Vec::new();
            for rule in rbac::rules_for(store, user, namespace) {
                if rule.resources.as_ref().is_some_and(|r| !r.is_empty()) {
                    let mut r = json!({
                        "verbs": rule.verbs,
                        "apiGroups": rule.api_groups.unwrap_or_default(),
                        "resources": rule.resources,
                    });
                    if let Some(names) = rule.resource_names.filter(|n| !n.is_empty()) {
                        r["resourceNames"] = json!(names);
                    }
                    resource_rules.push(r);
                }
                if let Some(urls) = rule.non_resource_urls.filter(|u| !u.is_empty()) {
                    non_resource_rules
                        .push(json!({ "verbs": rule.verbs, "nonResourceURLs": urls }));
                }
            }
            json!({
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                "incomplete": false,
            })
        }
        Review::Identity => json!({
            "userInfo": { "username": user.name, "uid": user.uid, "groups": user.groups },
        }),
    };
    let mut answer = json!({
        "kind": kind,
        "apiVersion": format!("{group}/v1"),
        "metadata": { "creationTimestamp": null },
        "status": status,
    });
    if !spec.is_null() {
        answer["spec"] = spec.clone();
    } else if review != Review::Identity {
        answer["spec"] = json!({});
    }
    Ok(answer)
}
