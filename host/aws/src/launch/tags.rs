//! The tags Dovetail puts on what it launches, as Karpenter tags them.
//!
//! Two sets. Launch tags go on the fleet, instance, volumes and launch
//! template at launch: the EC2NodeClass's own tags overlaid with the
//! cluster, NodePool and EC2NodeClass tags. They are the same for every
//! NodeClaim of a NodePool and class, which is what lets identical
//! `CreateFleet` requests be merged into one call. Claim tags (`Name`,
//! `karpenter.sh/nodeclaim`) name one instance, so they are added once the
//! instance is known to belong to its NodeClaim.

use std::collections::BTreeMap;

pub const NODE_POOL: &str = "karpenter.sh/nodepool";
pub const NODE_CLAIM: &str = "karpenter.sh/nodeclaim";
pub const NODE_CLASS: &str = "karpenter.k8s.aws/ec2nodeclass";
pub const EKS_CLUSTER_NAME: &str = "eks:eks-cluster-name";
pub const NAME: &str = "Name";
/// `kubernetes.io/cluster/<cluster>`, valued `owned`.
pub const CLUSTER_PREFIX: &str = "kubernetes.io/cluster/";

/// EC2's limits: tags per resource, key and value length (in characters).
pub const MAX_TAGS: usize = 50;
pub const MAX_KEY_CHARS: usize = 128;
pub const MAX_VALUE_CHARS: usize = 256;

/// A tag set EC2 would refuse, or that would take over a tag Dovetail
/// relies on to find its instances.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("EC2NodeClass tag `{0}` is set by Dovetail itself: remove it from spec.tags")]
    Restricted(String),
    #[error("tag key `{0}` starts with `aws:`, which AWS reserves: use another prefix")]
    AwsPrefix(String),
    #[error("tag key {0:?} is empty or longer than {MAX_KEY_CHARS} characters")]
    KeyLength(String),
    #[error("tag `{key}` has a value longer than {MAX_VALUE_CHARS} characters")]
    ValueLength { key: String },
    #[error(
        "{0} tags is more than the {MAX_TAGS} EC2 allows on a resource: remove some from spec.tags"
    )]
    TooMany(usize),
    #[error(
        "cluster name {0:?} cannot name a tag: it must start with a letter or digit and hold only letters, digits, `-` and `_`"
    )]
    ClusterName(String),
}

/// Whether Karpenter's controller refuses `key` in `spec.tags`.
pub fn is_restricted(key: &str) -> bool {
    if [NODE_POOL, NODE_CLAIM, NODE_CLASS, EKS_CLUSTER_NAME].contains(&key) {
        return true;
    }
    key.strip_prefix(CLUSTER_PREFIX)
        .is_some_and(is_cluster_name)
}

/// `[0-9A-Za-z][A-Za-z0-9\-_]*`.
fn is_cluster_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What the launch tags are made of.
#[derive(Debug, Clone, Copy)]
pub struct TagInputs<'a> {
    pub cluster_name: &'a str,
    pub node_pool: &'a str,
    pub node_class: &'a str,
    /// The EC2NodeClass's `spec.tags`.
    pub class_tags: &'a BTreeMap<String, String>,
}

/// The tags of the fleet, instance, volumes and launch template.
pub fn launch_tags(inputs: TagInputs<'_>) -> Result<BTreeMap<String, String>, TagError> {
    if !is_cluster_name(inputs.cluster_name) {
        return Err(TagError::ClusterName(inputs.cluster_name.to_string()));
    }
    if let Some(key) = inputs.class_tags.keys().find(|k| is_restricted(k)) {
        return Err(TagError::Restricted(key.clone()));
    }
    let mut tags = inputs.class_tags.clone();
    tags.insert(
        format!("{CLUSTER_PREFIX}{}", inputs.cluster_name),
        "owned".to_string(),
    );
    tags.insert(NODE_POOL.to_string(), inputs.node_pool.to_string());
    tags.insert(
        EKS_CLUSTER_NAME.to_string(),
        inputs.cluster_name.to_string(),
    );
    tags.insert(NODE_CLASS.to_string(), inputs.node_class.to_string());
    // Room for the claim tags added after launch.
    check(&tags, 2)?;
    Ok(tags)
}

/// The tags that tie an instance to its NodeClaim and node, added after
/// launch.
pub fn claim_tags(
    cluster_name: &str,
    node_claim: &str,
    node_name: &str,
) -> Result<BTreeMap<String, String>, TagError> {
    let tags = BTreeMap::from([
        (NAME.to_string(), node_name.to_string()),
        (NODE_CLAIM.to_string(), node_claim.to_string()),
        (EKS_CLUSTER_NAME.to_string(), cluster_name.to_string()),
    ]);
    check(&tags, 0)?;
    Ok(tags)
}

fn check(tags: &BTreeMap<String, String>, room: usize) -> Result<(), TagError> {
    if tags.len() + room > MAX_TAGS {
        return Err(TagError::TooMany(tags.len() + room));
    }
    for (key, value) in tags {
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_KEY_CHARS {
            return Err(TagError::KeyLength(key.clone()));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(TagError::AwsPrefix(key.clone()));
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(TagError::ValueLength { key: key.clone() });
        }
    }
    Ok(())
}

/// The EC2 filters that find this cluster's instances: both Dovetail tag
/// keys present and the cluster's name.
pub fn instance_filters(cluster_name: &str) -> Vec<(String, Vec<String>)> {
    vec![
        ("tag-key".to_string(), vec![NODE_POOL.to_string()]),
        ("tag-key".to_string(), vec![NODE_CLASS.to_string()]),
        (
            format!("tag:{EKS_CLUSTER_NAME}"),
            vec![cluster_name.to_string()],
        ),
        (
            "instance-state-name".to_string(),
            ["pending", "running", "stopping", "stopped", "shutting-down"]
                .map(String::from)
                .to_vec(),
        ),
    ]
}
