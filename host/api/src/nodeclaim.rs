//! `karpenter.sh/v1` NodeClaim: one node being launched or running, made
//! from a NodePool's template. Its spec is immutable.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};

use crate::condition::{Condition, Reasons, validate_conditions};
use crate::duration::{GoDuration, NillableDuration};
use crate::error::{Path, ValidationErrors};
use crate::node_class_ref::{NodeClassReference, validate_node_class_ref};
use crate::nodepool::default_expire_after;
use crate::requirement::{NodeSelectorRequirementWithMinValues, validate_requirements};
use crate::rules::{self, KeyUse};
use crate::taint::{Taint, validate_taints};
use crate::validate_quantities;

pub const API_VERSION: &str = "karpenter.sh/v1";
pub const KIND: &str = "NodeClaim";

/// A `karpenter.sh/v1` NodeClaim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodeClaim {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::metadata")
    )]
    pub metadata: ObjectMeta,
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub spec: NodeClaimSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeClaimStatus>,
}

/// What to launch: requirements the instance must meet, the resources its
/// pods request, taints and the node class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-validations" = [{"message": "spec is immutable", "rule": "self == oldSelf"}])))]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-list-type" = "atomic")))]
    pub taints: Vec<Taint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-list-type" = "atomic")))]
    pub startup_taints: Vec<Taint>,
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), schema_with = "crate::crd::schema::node_claim_requirements"))]
    pub requirements: Vec<NodeSelectorRequirementWithMinValues>,
    #[serde(default, skip_serializing_if = "ResourceRequirements::is_empty")]
    pub resources: ResourceRequirements,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub node_class_ref: Option<NodeClassReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(rules::DURATION.source())))]
    pub termination_grace_period: Option<GoDuration>,
    #[serde(default = "default_expire_after")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-default" = crate::nodepool::DEFAULT_EXPIRE_AFTER)))]
    pub expire_after: NillableDuration,
}

impl Default for NodeClaimSpec {
    fn default() -> Self {
        Self {
            taints: Vec::new(),
            startup_taints: Vec::new(),
            requirements: Vec::new(),
            resources: ResourceRequirements::default(),
            node_class_ref: None,
            termination_grace_period: None,
            expire_after: default_expire_after(),
        }
    }
}

/// The resources the NodeClaim's pods request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::quantities")
    )]
    pub requests: BTreeMap<String, Quantity>,
}

impl ResourceRequirements {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

/// `status`, as Karpenter's lifecycle controllers write it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// `aws:///<zone>/<instance-id>` on AWS.
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,
    #[serde(rename = "imageID", default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::quantities")
    )]
    pub capacity: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::quantities")
    )]
    pub allocatable: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::node_claim_conditions")
    )]
    pub conditions: Vec<Condition>,
    /// When a pod was last bound to or removed from the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pod_event_time: Option<Time>,
}

top_level!(NodeClaim, NodeClaimSpec);

impl NodeClaim {
    /// Every OpenAPI and CEL rule of Karpenter's CRD but immutability, which
    /// needs the previous object.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = self.type_errors();
        let spec = Path::root("spec");
        let s = &self.spec;
        validate_requirements(
            &s.requirements,
            &spec.field("requirements"),
            KeyUse::NodeClaim,
            &mut errors,
        );
        validate_taints(
            &s.taints,
            &spec.field("taints"),
            &s.startup_taints,
            &spec.field("startupTaints"),
            &mut errors,
        );
        validate_quantities(
            &s.resources.requests,
            &spec.field("resources").field("requests"),
            &mut errors,
        );
        validate_node_class_ref(
            s.node_class_ref.as_ref(),
            &spec.field("nodeClassRef"),
            &mut errors,
        );
        errors.pattern(
            &spec.field("expireAfter"),
            s.expire_after.as_str(),
            &rules::NILLABLE_DURATION,
        );
        if let Some(d) = &s.termination_grace_period {
            errors.pattern(
                &spec.field("terminationGracePeriod"),
                d.as_str(),
                &rules::DURATION,
            );
        }
        if let Some(status) = &self.status {
            let at = Path::root("status");
            validate_quantities(&status.capacity, &at.field("capacity"), &mut errors);
            validate_quantities(&status.allocatable, &at.field("allocatable"), &mut errors);
            validate_conditions(
                &status.conditions,
                &at.field("conditions"),
                Reasons::MayBeEmpty,
                &mut errors,
            );
        }
        errors.into_result(KIND, self.name())
    }
}
