//! `status.instanceProfile`: `spec.instanceProfile` as is, or a profile
//! Dovetail creates for `spec.role` (named from the cluster and a hash of
//! the region and class, under Karpenter's IAM path so its collector
//! recognises it) with the role added and the class's tags.

use std::collections::BTreeMap;

use dovetail_api::ec2nodeclass::EC2NodeClass;
use sha2::{Digest, Sha256};

use super::ClusterInfo;
use crate::api_error::{ApiError, ApiErrorKind};

/// IAM's longest instance profile name.
const MAX_NAME: usize = 128;

/// `<cluster>_<hash of region, class name and UID>`, within IAM's 128
/// characters. Stable, so a lost status finds the same profile again.
pub fn profile_name(cluster: &str, region: &str, class: &str, uid: &str) -> String {
    let digest = Sha256::digest(format!("{region}/{class}/{uid}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let hash = u64::from_be_bytes(first).to_string();
    let room = MAX_NAME - 1 - hash.len();
    let cluster: String = cluster.chars().take(room).collect();
    format!("{cluster}_{hash}")
}

/// `/karpenter/<region>/<cluster>/<class UID>/`.
pub fn profile_path(cluster: &str, region: &str, uid: &str) -> String {
    format!("/karpenter/{region}/{cluster}/{uid}/")
}

/// The role name in `spec.role`, which may be written as a path or ARN.
pub fn role_name(role: &str) -> &str {
    role.rsplit('/').next().unwrap_or(role)
}

/// `spec.tags` with the cluster, class and region tags over them.
pub fn profile_tags(class: &EC2NodeClass, cluster: &ClusterInfo) -> BTreeMap<String, String> {
    let mut tags = class.spec.tags.clone();
    tags.insert(
        format!("kubernetes.io/cluster/{}", cluster.name),
        "owned".into(),
    );
    tags.insert("eks:eks-cluster-name".into(), cluster.name.clone());
    tags.insert(
        "karpenter.k8s.aws/ec2nodeclass".into(),
        class.metadata.name.clone().unwrap_or_default(),
    );
    tags.insert(
        "topology.kubernetes.io/region".into(),
        cluster.region.clone(),
    );
    tags
}

/// Why no instance profile could be made ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileFailure {
    /// `spec.role` names a role IAM does not have.
    RoleNotFound(String),
    /// Neither `role` nor `instanceProfile` is set.
    Unset,
    Api(ApiError),
}

/// The profile name for the status.
pub async fn resolve(
    iam: &aws_sdk_iam::Client,
    class: &EC2NodeClass,
    cluster: &ClusterInfo,
    previous: Option<&str>,
) -> Result<String, ProfileFailure> {
    if let Some(profile) = &class.spec.instance_profile {
        return Ok(profile.clone());
    }
    let Some(role) = class.spec.role.as_deref() else {
        return Err(ProfileFailure::Unset);
    };
    let role = role_name(role);
    // A profile already in the status (Karpenter's own included) is kept
    // while it carries the role.
    if let Some(name) = previous
        && let Some(roles) = roles_of(iam, name).await.map_err(ProfileFailure::Api)?
        && roles.iter().any(|r| r == role)
    {
        return Ok(name.to_owned());
    }
    let class_name = class.metadata.name.clone().unwrap_or_default();
    let uid = class.metadata.uid.clone().unwrap_or_default();
    let name = profile_name(&cluster.name, &cluster.region, &class_name, &uid);
    let tags = profile_tags(class, cluster);
    let roles = match get(iam, &name).await.map_err(ProfileFailure::Api)? {
        Some(profile) => {
            let have = super::selector::tag_map(
                profile
                    .tags()
                    .iter()
                    .map(|t| (Some(t.key()), Some(t.value()))),
            );
            if tags.iter().any(|(k, v)| have.get(k) != Some(v)) {
                iam.tag_instance_profile()
                    .instance_profile_name(&name)
                    .set_tags(Some(sdk_tags(&tags)?))
                    .send()
                    .await
                    .map_err(|e| {
                        ProfileFailure::Api(ApiError::from_sdk("iam:TagInstanceProfile", &e))
                    })?;
            }
            profile
                .roles()
                .iter()
                .map(|r| r.role_name().to_owned())
                .collect()
        }
        None => {
            let created = iam
                .create_instance_profile()
                .instance_profile_name(&name)
                .path(profile_path(&cluster.name, &cluster.region, &uid))
                .set_tags(Some(sdk_tags(&tags)?))
                .send()
                .await;
            match created {
                Ok(_) => Vec::new(),
                // Made meanwhile by another writer: read what it holds.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_entity_already_exists_exception()) =>
                {
                    roles_of(iam, &name)
                        .await
                        .map_err(ProfileFailure::Api)?
                        .unwrap_or_default()
                }
                Err(e) => {
                    return Err(ProfileFailure::Api(ApiError::from_sdk(
                        "iam:CreateInstanceProfile",
                        &e,
                    )));
                }
            }
        }
    };
    if roles.iter().any(|r| r == role) {
        return Ok(name);
    }
    // A profile holds one role: another one is taken out first.
    for other in &roles {
        iam.remove_role_from_instance_profile()
            .instance_profile_name(&name)
            .role_name(other)
            .send()
            .await
            .map_err(|e| {
                ProfileFailure::Api(ApiError::from_sdk("iam:RemoveRoleFromInstanceProfile", &e))
            })?;
    }
    match iam
        .add_role_to_instance_profile()
        .instance_profile_name(&name)
        .role_name(role)
        .send()
        .await
    {
        Ok(_) => Ok(name),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Err(ProfileFailure::RoleNotFound(role.to_owned()))
        }
        Err(e) => Err(ProfileFailure::Api(ApiError::from_sdk(
            "iam:AddRoleToInstanceProfile",
            &e,
        ))),
    }
}

async fn get(
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<Option<aws_sdk_iam::types::InstanceProfile>, ApiError> {
    match iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
    {
        Ok(answer) => Ok(answer.instance_profile),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(ApiError::from_sdk("iam:GetInstanceProfile", &e)),
    }
}

/// The role names a profile holds; `None` when it does not exist.
async fn roles_of(iam: &aws_sdk_iam::Client, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    Ok(get(iam, name)
        .await?
        .map(|p| p.roles().iter().map(|r| r.role_name().to_owned()).collect()))
}

fn sdk_tags(
    tags: &BTreeMap<String, String>,
) -> Result<Vec<aws_sdk_iam::types::Tag>, ProfileFailure> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| {
                    ProfileFailure::Api(ApiError {
                        action: "iam:TagInstanceProfile",
                        kind: ApiErrorKind::Rejected,
                        code: None,
                        message: format!("tag `{k}` cannot be sent: {e}"),
                    })
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_cluster_and_a_stable_hash() {
        let a = profile_name("prod", "us-east-1", "default", "uid-1");
        assert_eq!(a, profile_name("prod", "us-east-1", "default", "uid-1"));
        let (cluster, hash) = a.split_once('_').expect("cluster_hash");
        assert_eq!(cluster, "prod");
        assert!(hash.parse::<u64>().is_ok(), "{hash}");
        assert_ne!(a, profile_name("prod", "us-east-1", "other", "uid-1"));
        assert_ne!(a, profile_name("prod", "us-west-2", "default", "uid-1"));
    }

    #[test]
    fn a_long_cluster_name_is_cut_to_fit_iam() {
        let name = profile_name(&"c".repeat(300), "us-east-1", "default", "uid");
        assert!(name.len() <= MAX_NAME, "{}", name.len());
        assert!(name.starts_with("ccc"));
    }

    #[test]
    fn the_path_and_role_name_follow_karpenter() {
        assert_eq!(
            profile_path("prod", "us-east-1", "uid-1"),
            "/karpenter/us-east-1/prod/uid-1/"
        );
        assert_eq!(
            role_name("KarpenterNodeRole-prod"),
            "KarpenterNodeRole-prod"
        );
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/team/KarpenterNodeRole"),
            "KarpenterNodeRole"
        );
    }

    #[test]
    fn tags_add_the_cluster_class_and_region_over_the_spec() {
        let mut class: EC2NodeClass = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "default"},
            "spec": {"tags": {"team": "a", "topology.kubernetes.io/region": "mine"}}
        }))
        .expect("a class");
        class.spec.tags.insert("team".into(), "a".into());
        let cluster = ClusterInfo {
            name: "prod".into(),
            kubernetes_version: "1.33".into(),
            region: "us-east-1".into(),
        };
        let tags = profile_tags(&class, &cluster);
        assert_eq!(tags["team"], "a");
        assert_eq!(tags["kubernetes.io/cluster/prod"], "owned");
        assert_eq!(tags["eks:eks-cluster-name"], "prod");
        assert_eq!(tags["karpenter.k8s.aws/ec2nodeclass"], "default");
        assert_eq!(tags["topology.kubernetes.io/region"], "us-east-1");
    }
}
