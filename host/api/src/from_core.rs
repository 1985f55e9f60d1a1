//! From `dovetail-core` back to the API: the `karpenter.sh/v1` NodeClaim
//! the controller creates and updates, and the resource lists of a
//! NodePool's status. [`NodeClaim::to_core`] reads back every field written
//! here.

use std::collections::BTreeMap;

use dovetail_core::model;
use dovetail_core::nodeclaim;
use dovetail_core::requirements::{self, NodeSelectorRequirement};
use dovetail_core::resources::{self, Resources, format_bytes, format_cpu};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

use crate::condition::{Condition, ConditionStatus};
use crate::duration::{GoDuration, NillableDuration};
use crate::node_class_ref::NodeClassReference;
use crate::nodeclaim::{
    API_VERSION, KIND, NodeClaim, NodeClaimSpec, NodeClaimStatus, ResourceRequirements,
};
use crate::nodepool::{self, NodePoolStatus};
use crate::requirement::{NodeSelectorRequirementWithMinValues, Operator};
use crate::taint::{Taint, TaintEffect};

impl NodeClaim {
    /// The object for a core NodeClaim: its labels with the
    /// `karpenter.sh/nodepool` label, its annotations with the NodePool hash
    /// (`karpenter.sh/nodepool-hash`; the template also writes
    /// `karpenter.sh/nodepool-hash-version`), the `karpenter.sh/termination`
    /// finalizer while the claim holds it, and, given the NodePool's uid, an
    /// owner reference to the NodePool as Karpenter sets it (so deleting the
    /// pool deletes its claims). The spec carries requirements, requests,
    /// taints, start-up taints, the node class, `expireAfter` and
    /// `terminationGracePeriod`; the status, when there is one, the
    /// conditions, provider ID, node name, image, capacity and allocatable.
    ///
    /// Creation and deletion times are carried for a faithful round trip;
    /// the API server sets its own on create.
    pub fn from_core(claim: &nodeclaim::NodeClaim, node_pool_uid: Option<&str>) -> Self {
        let mut labels = string_map(&claim.labels);
        let mut annotations = string_map(&claim.annotations);
        let mut owner_references = Vec::new();
        if let Some(pool) = claim.node_pool {
            labels.insert(
                dovetail_core::labels::NODE_POOL.to_owned(),
                pool.as_str().to_owned(),
            );
            if let Some(uid) = node_pool_uid {
                owner_references.push(OwnerReference {
                    api_version: nodepool::API_VERSION.into(),
                    kind: nodepool::KIND.into(),
                    name: pool.as_str().to_owned(),
                    uid: uid.to_owned(),
                    block_owner_deletion: Some(true),
                    controller: None,
                });
            }
        }
        if let Some(hash) = claim.node_pool_hash {
            annotations.insert(
                nodeclaim::NODEPOOL_HASH_ANNOTATION.to_owned(),
                hash.to_string(),
            );
        }
        let finalizers = claim
            .finalizer
            .then(|| vec![nodeclaim::TERMINATION_FINALIZER.to_owned()]);
        let metadata = ObjectMeta {
            name: Some(claim.name.as_str().to_owned()),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers,
            owner_references: (!owner_references.is_empty()).then_some(owner_references),
            creation_timestamp: (claim.created_ms > 0).then(|| time(claim.created_ms)),
            deletion_timestamp: claim.deletion_ms.map(time),
            ..ObjectMeta::default()
        };
        let c = &claim.node_class_ref;
        let spec = NodeClaimSpec {
            taints: claim.taints.iter().map(Taint::from_core).collect(),
            startup_taints: claim.startup_taints.iter().map(Taint::from_core).collect(),
            requirements: claim.requirements.iter().map(requirement).collect(),
            resources: ResourceRequirements {
                requests: quantities(&claim.requests),
            },
            node_class_ref: Some(NodeClassReference {
                group: c.group.clone(),
                kind: c.kind.clone(),
                name: c.name.clone(),
            }),
            termination_grace_period: claim
                .termination_grace_period
                .map(GoDuration::from_duration),
            expire_after: NillableDuration::from_duration(claim.expire_after),
        };
        let status = NodeClaimStatus::from_core(&claim.status);
        Self {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            metadata,
            spec,
            status: (status != NodeClaimStatus::default()).then_some(status),
        }
    }
}

impl NodeClaimStatus {
    /// The status Karpenter's lifecycle writes: conditions with their
    /// reason, message and transition time (the root `Ready` included),
    /// provider ID, node name, image, capacity, allocatable and the last pod
    /// event. The launched offering is the cloud provider's and is not
    /// written.
    pub fn from_core(status: &nodeclaim::NodeClaimStatus) -> Self {
        Self {
            node_name: status.node_name.map(|n| n.as_str().to_owned()),
            provider_id: status.provider_id.clone(),
            image_id: status.image_id.clone(),
            capacity: quantities(&status.capacity),
            allocatable: quantities(&status.allocatable),
            conditions: status.conditions.iter().map(Condition::from_core).collect(),
            last_pod_event_time: status.last_pod_event_ms.map(time),
        }
    }
}

impl Condition {
    /// A NodeClaim condition as the API carries it. A condition set True
    /// has its own type as the reason, as Karpenter's condition sets write it.
    pub fn from_core(c: &nodeclaim::Condition) -> Self {
        Self {
            type_: c.kind.name().to_owned(),
            status: match c.status {
                nodeclaim::ConditionStatus::True => ConditionStatus::True,
                nodeclaim::ConditionStatus::False => ConditionStatus::False,
                nodeclaim::ConditionStatus::Unknown => ConditionStatus::Unknown,
            },
            observed_generation: None,
            last_transition_time: Some(time(c.last_transition_ms)),
            reason: c.reason.to_string(),
            message: c.message.clone(),
        }
    }
}

impl Taint {
    pub fn from_core(t: &model::Taint) -> Self {
        Self {
            key: t.key.as_str().to_owned(),
            value: t.value.map(|v| v.as_str().to_owned()),
            effect: match t.effect {
                model::TaintEffect::NoSchedule => TaintEffect::NoSchedule,
                model::TaintEffect::PreferNoSchedule => TaintEffect::PreferNoSchedule,
                model::TaintEffect::NoExecute => TaintEffect::NoExecute,
            },
            time_added: None,
        }
    }
}

/// The resources Karpenter's NodePool counter always reports, zero or not.
const BASE_RESOURCES: [&str; 4] = [
    resources::CPU,
    resources::MEMORY,
    resources::PODS,
    resources::EPHEMERAL_STORAGE,
];

/// The `nodes` entry of a NodePool's `status.resources`.
pub const NODES_RESOURCE: &str = "nodes";

impl NodePoolStatus {
    /// `status.resources` as Karpenter's counter writes it: the summed
    /// capacity of the pool's nodes, always with `cpu`, `memory`, `pods`,
    /// `ephemeral-storage` and `nodes`.
    pub fn resources_from_core(capacity: &Resources, nodes: i64) -> BTreeMap<String, Quantity> {
        let mut list = quantities(capacity);
        for name in BASE_RESOURCES {
            list.entry(name.to_owned())
                .or_insert_with(|| Quantity("0".into()));
        }
        list.insert(NODES_RESOURCE.to_owned(), Quantity(nodes.to_string()));
        list
    }
}

/// A resource list: CPU in cores or millicores, memory and storage in
/// binary units when exact, counts as integers. Zero amounts are left out.
fn quantities(r: &Resources) -> BTreeMap<String, Quantity> {
    let mut list = BTreeMap::new();
    let mut put = |name: &str, text: String| {
        list.insert(name.to_owned(), Quantity(text));
    };
    if r.cpu != 0 {
        put(resources::CPU, format_cpu(r.cpu));
    }
    if r.memory != 0 {
        put(resources::MEMORY, format_bytes(r.memory));
    }
    if r.pods != 0 {
        put(resources::PODS, r.pods.to_string());
    }
    if r.ephemeral != 0 {
        put(resources::EPHEMERAL_STORAGE, format_bytes(r.ephemeral));
    }
    for (name, v) in &r.extended {
        put(name.as_str(), v.to_string());
    }
    list
}

fn string_map(labels: &model::Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
        .collect()
}

/// Unix milliseconds as an API time (the API writes whole seconds).
fn time(ms: u64) -> Time {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    Time(Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn requirement(r: &NodeSelectorRequirement) -> NodeSelectorRequirementWithMinValues {
    use requirements::Operator as Op;
    NodeSelectorRequirementWithMinValues {
        key: r.key.clone(),
        operator: match r.operator {
            Op::In => Operator::In,
            Op::NotIn => Operator::NotIn,
            Op::Exists => Operator::Exists,
            Op::DoesNotExist => Operator::DoesNotExist,
            Op::Gt => Operator::Gt,
            Op::Lt => Operator::Lt,
            Op::Gte => Operator::Gte,
            Op::Lte => Operator::Lte,
        },
        values: r.values.clone(),
        min_values: r.min_values.map(i64::from),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dovetail_core::model::{NodeClassRef, Taint as CoreTaint, TaintEffect as CoreEffect};
    use dovetail_core::nodeclaim::{
        Condition as CoreCondition, ConditionReason, ConditionStatus as CoreStatus, ConditionType,
        NodeClaim as CoreClaim, NodeClaimStatus as CoreStatusBlock,
    };
    use dovetail_core::requirements::{NodeSelectorRequirement, Operator as CoreOp};
    use dovetail_core::resources::{GIB, MIB, Resources};
    use dovetail_core::sym::Sym;

    use super::*;

    fn claim() -> CoreClaim {
        let mut requests = Resources::new(1500, 3 * GIB);
        requests.pods = 4;
        requests.set("nvidia.com/gpu", 1);
        let mut capacity = Resources::new(4000, 16 * GIB);
        capacity.pods = 58;
        capacity.ephemeral = 20 * GIB;
        let mut allocatable = Resources::new(3920, 15 * GIB + 512 * MIB);
        allocatable.pods = 58;
        let mut min = NodeSelectorRequirement::new(
            "node.kubernetes.io/instance-type",
            CoreOp::In,
            &["m5.large", "m5.xlarge"],
        );
        min.min_values = Some(2);
        CoreClaim {
            name: Sym::new("default-x7k2p"),
            node_pool: Some(Sym::new("default")),
            labels: model::sorted_labels([("team", "ml"), ("karpenter.sh/capacity-type", "spot")]),
            annotations: model::sorted_labels([
                ("karpenter.sh/nodepool-hash-version", "v3"),
                ("example.com/owner", "platform"),
            ]),
            requirements: vec![
                min,
                NodeSelectorRequirement::new("karpenter.k8s.aws/instance-cpu", CoreOp::Gt, &["2"]),
                NodeSelectorRequirement::new("example.com/x", CoreOp::DoesNotExist, &[]),
            ],
            requests,
            taints: vec![CoreTaint::new(
                "nvidia.com/gpu",
                "true",
                CoreEffect::NoSchedule,
            )],
            startup_taints: vec![CoreTaint::new(
                "example.com/agent-not-ready",
                "",
                CoreEffect::NoExecute,
            )],
            node_class_ref: NodeClassRef {
                group: "karpenter.k8s.aws".into(),
                kind: "EC2NodeClass".into(),
                name: "gpu".into(),
            },
            expire_after: Some(Duration::from_secs(720 * 3600)),
            termination_grace_period: Some(Duration::from_secs(90)),
            launch: Vec::new(),
            node_pool_hash: Some(1_234_567_890_123),
            created_ms: 1_700_000_000_000,
            deletion_ms: Some(1_700_000_100_000),
            finalizer: true,
            status: CoreStatusBlock {
                provider_id: Some("aws:///us-east-1a/i-0123456789abcdef0".into()),
                image_id: Some("ami-0abc".into()),
                node_name: Some(Sym::new("ip-10-0-0-1.ec2.internal")),
                capacity,
                allocatable,
                launched: None,
                last_pod_event_ms: Some(1_700_000_050_000),
                conditions: vec![
                    CoreCondition {
                        kind: ConditionType::Launched,
                        status: CoreStatus::True,
                        reason: ConditionReason::Succeeded(ConditionType::Launched),
                        message: String::new(),
                        last_transition_ms: 1_700_000_010_000,
                    },
                    CoreCondition {
                        kind: ConditionType::Initialized,
                        status: CoreStatus::Unknown,
                        reason: ConditionReason::NodeNotReady,
                        message: "Node status is NotReady".into(),
                        last_transition_ms: 1_700_000_020_000,
                    },
                    CoreCondition {
                        kind: ConditionType::Drifted,
                        status: CoreStatus::False,
                        reason: ConditionReason::Other("AMIDrift".into()),
                        message: "AMIDrift".into(),
                        last_transition_ms: 1_700_000_030_000,
                    },
                ],
            },
        }
    }

    #[test]
    fn a_node_claim_round_trips_through_the_api_object() {
        let c = claim();
        let object = NodeClaim::from_core(&c, Some("pool-uid"));
        object
            .validate()
            .expect("the object passes Karpenter's rules");
        let back = object.to_core().expect("converts back");
        assert_eq!(back.name, c.name);
        assert_eq!(back.node_pool, c.node_pool);
        assert_eq!(back.requirements, c.requirements);
        assert_eq!(back.requests, c.requests);
        assert_eq!(back.taints, c.taints);
        assert_eq!(back.startup_taints, c.startup_taints);
        assert_eq!(back.node_class_ref, c.node_class_ref);
        assert_eq!(back.expire_after, c.expire_after);
        assert_eq!(back.termination_grace_period, c.termination_grace_period);
        assert_eq!(back.node_pool_hash, c.node_pool_hash);
        assert_eq!(back.created_ms, c.created_ms);
        assert_eq!(back.deletion_ms, c.deletion_ms);
        assert_eq!(back.finalizer, c.finalizer);
        let mut want_labels = c.labels.clone();
        want_labels.push((Sym::new("karpenter.sh/nodepool"), Sym::new("default")));
        want_labels.sort_by_key(|&(k, _)| k);
        assert_eq!(back.labels, want_labels);
        let mut want_annotations = c.annotations.clone();
        want_annotations.push((
            Sym::new("karpenter.sh/nodepool-hash"),
            Sym::new("1234567890123"),
        ));
        want_annotations.sort_by_key(|&(k, _)| k);
        assert_eq!(back.annotations, want_annotations);
        let (s, b) = (&c.status, &back.status);
        assert_eq!(b.provider_id, s.provider_id);
        assert_eq!(b.image_id, s.image_id);
        assert_eq!(b.node_name, s.node_name);
        assert_eq!(b.capacity, s.capacity);
        assert_eq!(b.allocatable, s.allocatable);
        assert_eq!(b.last_pod_event_ms, s.last_pod_event_ms);
        assert_eq!(b.conditions.len(), s.conditions.len());
        for (got, want) in b.conditions.iter().zip(&s.conditions) {
            assert_eq!(got.kind, want.kind);
            assert_eq!(got.status, want.status);
            // The API keeps reasons as text: typed reasons other than
            // success come back as their text.
            assert_eq!(got.reason.to_string(), want.reason.to_string());
            assert_eq!(got.message, want.message);
            assert_eq!(got.last_transition_ms, want.last_transition_ms);
        }
        // What the API object carries beyond what the core value reads.
        let owner = &object.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.api_version.as_str(), owner.kind.as_str()),
            ("karpenter.sh/v1", "NodePool")
        );
        assert_eq!(
            (owner.name.as_str(), owner.uid.as_str()),
            ("default", "pool-uid")
        );
        assert_eq!(owner.block_owner_deletion, Some(true));
    }

    #[test]
    fn the_json_form_reads_back_the_same() {
        let c = claim();
        let json = serde_json::to_value(NodeClaim::from_core(&c, Some("u"))).unwrap();
        assert_eq!(json["spec"]["expireAfter"], "720h");
        assert_eq!(json["spec"]["terminationGracePeriod"], "1m30s");
        assert_eq!(json["spec"]["resources"]["requests"]["cpu"], "1500m");
        assert_eq!(json["spec"]["resources"]["requests"]["memory"], "3Gi");
        assert_eq!(json["status"]["conditions"][0]["reason"], "Launched");
        assert_eq!(
            json["status"]["conditions"][0]["lastTransitionTime"],
            "2023-11-14T22:13:30Z"
        );
        assert_eq!(
            json["metadata"]["finalizers"][0],
            "karpenter.sh/termination"
        );
        let read: NodeClaim = serde_json::from_value(json).unwrap();
        let back = read.to_core().unwrap();
        assert_eq!(back.requests, c.requests);
        assert_eq!(back.status.capacity, c.status.capacity);
        assert_eq!(back.expire_after, c.expire_after);
    }

    #[test]
    fn a_claim_outside_node_pools_has_no_owner_and_never_expires() {
        let mut c = claim();
        c.node_pool = None;
        c.node_pool_hash = None;
        c.expire_after = None;
        c.finalizer = false;
        c.status = CoreStatusBlock::default();
        let object = NodeClaim::from_core(&c, Some("ignored"));
        assert!(object.metadata.owner_references.is_none());
        assert!(object.metadata.finalizers.is_none());
        assert!(object.status.is_none());
        assert_eq!(object.spec.expire_after.as_str(), "Never");
        let back = object.to_core().unwrap();
        assert_eq!(back.node_pool, None);
        assert_eq!(back.expire_after, None);
        assert!(!back.finalizer);
    }

    #[test]
    fn node_pool_resources_always_list_the_base_resources() {
        let mut r = Resources::new(2500, 8 * GIB);
        r.set("nvidia.com/gpu", 2);
        let list = NodePoolStatus::resources_from_core(&r, 3);
        let text: Vec<(&str, &str)> = list
            .iter()
            .map(|(k, v)| (k.as_str(), v.0.as_str()))
            .collect();
        assert_eq!(
            text,
            [
                ("cpu", "2500m"),
                ("ephemeral-storage", "0"),
                ("memory", "8Gi"),
                ("nodes", "3"),
                ("nvidia.com/gpu", "2"),
                ("pods", "0"),
            ]
        );
    }
}
