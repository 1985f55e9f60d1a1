//! EC2NodeClass resolution: the selector terms, AMI alias and role turned
//! into `status` (subnets, security groups, AMIs, instance profile) with
//! Karpenter's conditions, and drift of instances from that status.
//!
//! Each part is resolved on its own: one that fails leaves its condition
//! False (nothing matched, with a message naming the terms and the fix) or,
//! when a call failed, keeps the last resolved values and their condition,
//! as Karpenter does, so a passing API error does not stop launches.

pub mod amis;
pub mod conditions;
pub mod drift;
pub mod instance_profile;
pub mod security_groups;
pub mod selector;
pub mod subnets;

use dovetail_api::condition::{Condition, ConditionStatus};
use dovetail_api::ec2nodeclass::{EC2NodeClass, EC2NodeClassStatus, RESTRICTED_TAGS};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub use conditions::{ConditionType, EventKind, Outcome};
pub use drift::{InstanceFacts, drift};

/// The cluster the classes are resolved for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub name: String,
    /// `major.minor`, such as `1.33`: the alias SSM paths use it.
    pub kubernetes_version: String,
    pub region: String,
}

/// A resolved class status and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The status to write, conditions (with `Ready`) included.
    pub status: EC2NodeClassStatus,
    /// An event per condition transition, for the EC2NodeClass.
    pub events: Vec<(EventKind, String)>,
    /// Calls that failed; their parts kept the last resolved values.
    /// Resolving again soon is worthwhile.
    pub errors: Vec<ApiError>,
}

pub use crate::api_error::ApiError;

/// Reason of a part whose call failed with nothing resolved before.
pub const RESOLUTION_FAILED: &str = "ResolutionFailed";

/// Resolves every part of `class` for `cluster`. `previous` is the last
/// status written: a part whose call fails keeps its values from there.
/// Never panics.
pub async fn resolve(
    clients: &crate::clients::Clients,
    class: &EC2NodeClass,
    cluster: &ClusterInfo,
    previous: Option<&EC2NodeClassStatus>,
    now: &Time,
) -> Resolution {
    let prev = previous.cloned().unwrap_or_default();
    let mut status = prev.clone();
    let mut outcomes: Vec<(ConditionType, Outcome)> = Vec::new();
    let mut errors = Vec::new();
    let spec = &class.spec;

    let subnets = subnets::describe(&clients.ec2, &spec.subnet_selector_terms).await;
    let outcome = match subnets {
        Ok(list) if !list.is_empty() => {
            status.subnets = list;
            Outcome::ready(ConditionType::SubnetsReady)
        }
        Ok(_) => {
            status.subnets.clear();
            Outcome::not_ready(
                "SubnetsNotFound",
                format!(
                    "no subnet matches subnetSelectorTerms {}: fix the terms, or tag the subnets to match",
                    subnets::describe_terms(&spec.subnet_selector_terms)
                ),
            )
        }
        Err(e) => failed(
            &prev.conditions,
            ConditionType::SubnetsReady,
            !prev.subnets.is_empty(),
            e,
            &mut errors,
        ),
    };
    outcomes.push((ConditionType::SubnetsReady, outcome));

    let groups = security_groups::describe(&clients.ec2, &spec.security_group_selector_terms).await;
    let outcome = match groups {
        Ok(list) if !list.is_empty() => {
            status.security_groups = list;
            Outcome::ready(ConditionType::SecurityGroupsReady)
        }
        Ok(_) => {
            status.security_groups.clear();
            Outcome::not_ready(
                "SecurityGroupsNotFound",
                format!(
                    "no security group matches securityGroupSelectorTerms {}: fix the terms, or tag the security groups to match",
                    security_groups::describe_terms(&spec.security_group_selector_terms)
                ),
            )
        }
        Err(e) => failed(
            &prev.conditions,
            ConditionType::SecurityGroupsReady,
            !prev.security_groups.is_empty(),
            e,
            &mut errors,
        ),
    };
    outcomes.push((ConditionType::SecurityGroupsReady, outcome));

    let resolved = amis::resolve(
        clients,
        &spec.ami_selector_terms,
        &cluster.kubernetes_version,
        now.0,
    )
    .await;
    let outcome = match resolved {
        Ok(list) if !list.is_empty() => {
            status.amis = list;
            Outcome::ready(ConditionType::AmisReady)
        }
        Ok(_) => {
            status.amis.clear();
            Outcome::not_ready("AMINotFound", ami_not_found(class, cluster))
        }
        Err(amis::AmiFailure::UnsupportedAlias(e)) => {
            status.amis.clear();
            Outcome::not_ready("UnsupportedAlias", e.to_string())
        }
        Err(amis::AmiFailure::Api(e)) => failed(
            &prev.conditions,
            ConditionType::AmisReady,
            !prev.amis.is_empty(),
            e,
            &mut errors,
        ),
    };
    outcomes.push((ConditionType::AmisReady, outcome));

    let profile = instance_profile::resolve(
        &clients.iam,
        class,
        cluster,
        prev.instance_profile.as_deref(),
    )
    .await;
    let outcome = match profile {
        Ok(name) => {
            status.instance_profile = Some(name);
            Outcome::ready(ConditionType::InstanceProfileReady)
        }
        Err(instance_profile::ProfileFailure::RoleNotFound(role)) => Outcome::not_ready(
            "RoleNotFound",
            format!(
                "the IAM role `{role}` (spec.role) does not exist: create it with an EC2 trust policy and the EKS node policies, or fix spec.role"
            ),
        ),
        Err(instance_profile::ProfileFailure::Unset) => Outcome::not_ready(
            "InstanceProfileUnset",
            "neither spec.role nor spec.instanceProfile is set: set one of them",
        ),
        Err(instance_profile::ProfileFailure::Api(e)) => failed(
            &prev.conditions,
            ConditionType::InstanceProfileReady,
            prev.instance_profile.is_some(),
            e,
            &mut errors,
        ),
    };
    outcomes.push((ConditionType::InstanceProfileReady, outcome));

    let dependencies: Vec<ConditionStatus> =
        outcomes.iter().map(|(_, o)| o.status.clone()).collect();
    outcomes.push((
        ConditionType::ValidationSucceeded,
        validation(class, &dependencies),
    ));

    let (conditions, events) =
        conditions::apply(&prev.conditions, &outcomes, class.metadata.generation, now);
    status.conditions = conditions;
    Resolution {
        status,
        events,
        errors,
    }
}

/// The outcome of a part whose call failed: its last condition when its
/// last values were kept, else Unknown with the error.
fn failed(
    previous: &[Condition],
    type_: ConditionType,
    kept: bool,
    error: ApiError,
    errors: &mut Vec<ApiError>,
) -> Outcome {
    let stored = previous.iter().find(|c| c.type_ == type_.name());
    let outcome = match stored {
        Some(c) if kept => Outcome::of(c),
        _ => Outcome::unknown(RESOLUTION_FAILED, error.to_string()),
    };
    errors.push(error);
    outcome
}

fn ami_not_found(class: &EC2NodeClass, cluster: &ClusterInfo) -> String {
    let terms = &class.spec.ami_selector_terms;
    match terms.iter().find_map(|t| t.alias.as_deref()) {
        Some(alias) => {
            let example = amis::alias_parameters(alias, &cluster.kubernetes_version)
                .ok()
                .and_then(|p| p.into_iter().next())
                .map(|p| format!(" (such as {})", p.name))
                .unwrap_or_default();
            format!(
                "failed to discover any AMIs for alias `{alias}`: no SSM public parameter for Kubernetes {}{example} names an available AMI; check the alias's version and the cluster's Kubernetes version",
                cluster.kubernetes_version
            )
        }
        None => format!(
            "no available AMI matches amiSelectorTerms {}: fix the terms, or check the AMIs exist in {} and are shared with this account",
            amis::describe_terms(terms),
            cluster.region
        ),
    }
}

/// `ValidationSucceeded`: waits for the other parts, then checks the tags
/// Dovetail sets itself are not in `spec.tags`.
fn validation(class: &EC2NodeClass, dependencies: &[ConditionStatus]) -> Outcome {
    const AWAITING: &str = "Awaiting AMI, Instance Profile, Security Group, and Subnet resolution";
    if dependencies.contains(&ConditionStatus::False) {
        return Outcome::not_ready("DependenciesNotReady", AWAITING);
    }
    if dependencies.iter().any(|s| *s != ConditionStatus::True) {
        return Outcome::unknown("DependenciesNotReady", AWAITING);
    }
    if let Some(key) = class.spec.tags.keys().find(|k| restricted_tag(k)) {
        return Outcome::not_ready(
            "TagValidationFailed",
            format!(
                "spec.tags sets `{key}`, a tag Dovetail sets itself on what it launches: remove it from spec.tags"
            ),
        );
    }
    Outcome::ready(ConditionType::ValidationSucceeded)
}

/// `kubernetes.io/cluster/<name>` and the keys Karpenter reserves.
fn restricted_tag(key: &str) -> bool {
    if RESTRICTED_TAGS.contains(&key) {
        return true;
    }
    key.strip_prefix("kubernetes.io/cluster/")
        .is_some_and(|rest| {
            rest.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(tags: &[(&str, &str)]) -> EC2NodeClass {
        let mut class: EC2NodeClass =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "default"}}))
                .expect("a class");
        class.spec.tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        class
    }

    #[test]
    fn validation_waits_for_the_dependencies() {
        let t = ConditionStatus::True;
        let f = ConditionStatus::False;
        let u = ConditionStatus::Unknown;
        let v = validation(&class(&[]), &[t.clone(), f, u.clone()]);
        assert_eq!(
            (v.status, v.reason.as_str()),
            (ConditionStatus::False, "DependenciesNotReady")
        );
        let v = validation(&class(&[]), &[t.clone(), u]);
        assert_eq!(v.status, ConditionStatus::Unknown);
        let v = validation(&class(&[("team", "a")]), &[t.clone(), t.clone()]);
        assert_eq!(v, Outcome::ready(ConditionType::ValidationSucceeded));
    }

    #[test]
    fn restricted_tags_fail_validation() {
        let t = ConditionStatus::True;
        for key in [
            "kubernetes.io/cluster/prod",
            "karpenter.sh/nodepool",
            "eks:eks-cluster-name",
        ] {
            let v = validation(&class(&[(key, "x")]), std::slice::from_ref(&t));
            assert_eq!(v.reason, "TagValidationFailed", "{key}");
            assert!(v.message.contains(key));
        }
        assert!(!restricted_tag("kubernetes.io/cluster/"));
        assert!(!restricted_tag("kubernetes.io/role"));
    }

    #[test]
    fn a_failed_call_keeps_the_last_condition_only_when_values_were_kept() {
        let stored = Condition {
            type_: "SubnetsReady".into(),
            status: ConditionStatus::True,
            observed_generation: None,
            last_transition_time: None,
            reason: "SubnetsReady".into(),
            message: String::new(),
        };
        let error = ApiError {
            action: "ec2:DescribeSubnets",
            kind: crate::api_error::ApiErrorKind::Throttled,
            code: Some("RequestLimitExceeded".into()),
            message: "throttled".into(),
        };
        let mut errors = Vec::new();
        let kept = failed(
            std::slice::from_ref(&stored),
            ConditionType::SubnetsReady,
            true,
            error.clone(),
            &mut errors,
        );
        assert_eq!(kept.status, ConditionStatus::True);
        let lost = failed(
            &[stored],
            ConditionType::SubnetsReady,
            false,
            error,
            &mut errors,
        );
        assert_eq!(lost.status, ConditionStatus::Unknown);
        assert_eq!(lost.reason, RESOLUTION_FAILED);
        assert!(lost.message.contains("DescribeSubnets failed: throttled"));
        assert_eq!(errors.len(), 2);
    }
}
