//! The fake cloud's wire format: JSON under [`PREFIX`] on the API server's
//! own listener, so a controller in another process reaches the same
//! instances the cluster's kubelet model registers Nodes for.
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /catalog` | | [`CatalogInfo`] |
//! | `GET /instances` | | `[`[`InstanceDto`]`]`, the instances tagged for a NodeClaim |
//! | `POST /instances` | [`NodeClaimDto`] | 201 [`LaunchDto`] |
//! | `GET /instance?providerID=…` | | [`InstanceDto`] |
//! | `DELETE /instance?providerID=…` | | `{}` |
//! | `POST /drift` | [`NodeClaimDto`] | [`DriftDto`] |
//!
//! A failure answers with an [`ErrorDto`] and a 4xx or 5xx code that no
//! client retries on its own (no 429, 503 or 504).

use std::collections::BTreeMap;

use dovetail_control::cloud::{
    CloudDrift, CloudError, CreateError, Instance, InstanceState, Launch, OfferingKey,
};
use dovetail_core::catalog::{CapacityType, Catalog};
use dovetail_core::nodeclaim::NodeClaim;
use dovetail_core::requirements::NodeSelectorRequirement;
use dovetail_core::resources::Resources;
use dovetail_core::scheduler::OfferingRef;
use dovetail_core::sym::Sym;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where the fake cloud is served; outside every Kubernetes API path.
pub const PREFIX: &str = "/dovetail.dev/fake-cloud/v1";

pub(crate) const CATALOG_PATH: &str = "/catalog";
pub(crate) const INSTANCES_PATH: &str = "/instances";
pub(crate) const INSTANCE_PATH: &str = "/instance";
pub(crate) const DRIFT_PATH: &str = "/drift";

/// Which catalog the fake cloud launches from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogInfo {
    pub region: String,
    pub instance_types: usize,
    /// [`catalog_digest`] of it.
    pub digest: String,
}

impl CatalogInfo {
    pub fn of(catalog: &Catalog) -> Self {
        Self {
            region: catalog.region.to_string(),
            instance_types: catalog.instance_types.len(),
            digest: catalog_digest(catalog),
        }
    }
}

/// `sha256:<hex>` of the catalog's instance types, offerings and prices:
/// equal digests mean both sides decide on the same catalog.
pub fn catalog_digest(catalog: &Catalog) -> String {
    let specs = serde_json::to_vec(&(catalog.region.as_str(), catalog.to_specs()))
        .expect("instance type specs serialise");
    let hash = Sha256::digest(&specs);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The `providerID` query of `/instance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderIdQuery {
    #[serde(rename = "providerID")]
    pub provider_id: String,
}

/// What the cloud needs of a NodeClaim to launch for it or judge its drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimDto {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_pool: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<NodeSelectorRequirement>,
    /// The offerings to try, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub launch: Vec<OfferingDto>,
    #[serde(
        default,
        rename = "providerID",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,
}

impl From<&NodeClaim> for NodeClaimDto {
    fn from(c: &NodeClaim) -> Self {
        Self {
            name: c.name.to_string(),
            node_pool: c.node_pool.map(|p| p.to_string()),
            labels: c
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            requirements: c.requirements.clone(),
            launch: c.launch.iter().map(OfferingDto::from).collect(),
            provider_id: c.status.provider_id.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferingDto {
    pub instance_type: Sym,
    pub zone: Sym,
    pub capacity_type: CapacityType,
    pub price: f64,
}

impl From<&OfferingRef> for OfferingDto {
    fn from(o: &OfferingRef) -> Self {
        Self {
            instance_type: o.instance_type,
            zone: o.zone,
            capacity_type: o.capacity_type,
            price: o.price,
        }
    }
}

impl From<OfferingDto> for OfferingRef {
    fn from(o: OfferingDto) -> Self {
        Self {
            instance_type: o.instance_type,
            zone: o.zone,
            capacity_type: o.capacity_type,
            price: o.price,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferingKeyDto {
    pub instance_type: Sym,
    pub zone: Sym,
    pub capacity_type: CapacityType,
}

impl From<OfferingKey> for OfferingKeyDto {
    fn from(k: OfferingKey) -> Self {
        Self {
            instance_type: k.instance_type,
            zone: k.zone,
            capacity_type: k.capacity_type,
        }
    }
}

impl From<OfferingKeyDto> for OfferingKey {
    fn from(k: OfferingKeyDto) -> Self {
        Self {
            instance_type: k.instance_type,
            zone: k.zone,
            capacity_type: k.capacity_type,
        }
    }
}

/// Resource amounts exactly: millicores, bytes and counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesDto {
    pub cpu_milli: i64,
    pub memory_bytes: i64,
    pub pods: i64,
    pub ephemeral_storage_bytes: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extended: BTreeMap<String, i64>,
}

impl From<&Resources> for ResourcesDto {
    fn from(r: &Resources) -> Self {
        Self {
            cpu_milli: r.cpu,
            memory_bytes: r.memory,
            pods: r.pods,
            ephemeral_storage_bytes: r.ephemeral,
            extended: r
                .extended
                .iter()
                .map(|(n, v)| (n.to_string(), *v))
                .collect(),
        }
    }
}

impl From<ResourcesDto> for Resources {
    fn from(r: ResourcesDto) -> Self {
        let mut out = Resources {
            cpu: r.cpu_milli,
            memory: r.memory_bytes,
            pods: r.pods,
            ephemeral: r.ephemeral_storage_bytes,
            extended: Vec::new(),
        };
        for (name, v) in &r.extended {
            out.set(name, *v);
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceStateDto {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
}

impl From<InstanceState> for InstanceStateDto {
    fn from(s: InstanceState) -> Self {
        match s {
            InstanceState::Pending => Self::Pending,
            InstanceState::Running => Self::Running,
            InstanceState::ShuttingDown => Self::ShuttingDown,
            InstanceState::Terminated => Self::Terminated,
        }
    }
}

impl From<InstanceStateDto> for InstanceState {
    fn from(s: InstanceStateDto) -> Self {
        match s {
            InstanceStateDto::Pending => Self::Pending,
            InstanceStateDto::Running => Self::Running,
            InstanceStateDto::ShuttingDown => Self::ShuttingDown,
            InstanceStateDto::Terminated => Self::Terminated,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDto {
    #[serde(rename = "providerID")]
    pub provider_id: String,
    pub instance_type: Sym,
    pub zone: Sym,
    pub capacity_type: CapacityType,
    pub price: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub capacity: ResourcesDto,
    pub allocatable: ResourcesDto,
    pub state: InstanceStateDto,
    /// Unix ms.
    pub launched_ms: u64,
    /// The NodeClaim it was launched for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_claim: Option<Sym>,
}

impl From<&Instance> for InstanceDto {
    fn from(i: &Instance) -> Self {
        Self {
            provider_id: i.provider_id.clone(),
            instance_type: i.instance_type,
            zone: i.zone,
            capacity_type: i.capacity_type,
            price: i.price,
            image_id: i.image_id.clone(),
            labels: i
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            capacity: (&i.capacity).into(),
            allocatable: (&i.allocatable).into(),
            state: i.state.into(),
            launched_ms: i.launched_ms,
            node_claim: i.node_claim,
        }
    }
}

impl From<InstanceDto> for Instance {
    fn from(i: InstanceDto) -> Self {
        Self {
            provider_id: i.provider_id,
            instance_type: i.instance_type,
            zone: i.zone,
            capacity_type: i.capacity_type,
            price: i.price,
            image_id: i.image_id,
            // A map iterates in key order: the labels come back sorted.
            labels: i
                .labels
                .iter()
                .map(|(k, v)| (Sym::new(k), Sym::new(v)))
                .collect(),
            capacity: i.capacity.into(),
            allocatable: i.allocatable.into(),
            state: i.state.into(),
            launched_ms: i.launched_ms,
            node_claim: i.node_claim,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchDto {
    pub instance: InstanceDto,
    /// Offerings that failed with insufficient capacity first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<OfferingKeyDto>,
}

impl From<&Launch> for LaunchDto {
    fn from(l: &Launch) -> Self {
        Self {
            instance: (&l.instance).into(),
            unavailable: l.unavailable.iter().map(|&k| k.into()).collect(),
        }
    }
}

impl From<LaunchDto> for Launch {
    fn from(l: LaunchDto) -> Self {
        Self {
            instance: l.instance.into(),
            unavailable: l.unavailable.into_iter().map(Into::into).collect(),
        }
    }
}

/// Why the cloud considers an instance drifted, by Karpenter's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriftReason {
    NodeClassDrift,
    #[serde(rename = "AMIDrift")]
    AmiDrift,
    SecurityGroupDrift,
    SubnetDrift,
    CapacityReservationDrift,
    PlacementGroupDrift,
}

impl From<CloudDrift> for DriftReason {
    fn from(d: CloudDrift) -> Self {
        match d {
            CloudDrift::NodeClass => Self::NodeClassDrift,
            CloudDrift::Ami => Self::AmiDrift,
            CloudDrift::SecurityGroup => Self::SecurityGroupDrift,
            CloudDrift::Subnet => Self::SubnetDrift,
            CloudDrift::CapacityReservation => Self::CapacityReservationDrift,
            CloudDrift::PlacementGroup => Self::PlacementGroupDrift,
        }
    }
}

impl From<DriftReason> for CloudDrift {
    fn from(d: DriftReason) -> Self {
        match d {
            DriftReason::NodeClassDrift => Self::NodeClass,
            DriftReason::AmiDrift => Self::Ami,
            DriftReason::SecurityGroupDrift => Self::SecurityGroup,
            DriftReason::SubnetDrift => Self::Subnet,
            DriftReason::CapacityReservationDrift => Self::CapacityReservation,
            DriftReason::PlacementGroupDrift => Self::PlacementGroup,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftDto {
    pub drift: Option<DriftReason>,
}

/// A failure, as the fake cloud answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(
    tag = "error",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ErrorDto {
    #[error("insufficient capacity: {message}")]
    InsufficientCapacity {
        offerings: Vec<OfferingKeyDto>,
        message: String,
    },
    #[error("node class not ready: {message}")]
    NodeClassNotReady { message: String },
    #[error("{reason}: {message}")]
    Failed { reason: String, message: String },
    #[error("instance {provider_id} not found")]
    NotFound {
        #[serde(rename = "providerID")]
        provider_id: String,
    },
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{message}")]
    Other { message: String },
}

impl ErrorDto {
    /// The HTTP status it is answered with.
    pub fn code(&self) -> http::StatusCode {
        use http::StatusCode as C;
        match self {
            Self::InsufficientCapacity { .. } | Self::NodeClassNotReady { .. } => C::CONFLICT,
            Self::NotFound { .. } => C::NOT_FOUND,
            Self::BadRequest { .. } => C::BAD_REQUEST,
            Self::Failed { .. } | Self::Other { .. } => C::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<CreateError> for ErrorDto {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::InsufficientCapacity { offerings, message } => {
                Self::InsufficientCapacity {
                    offerings: offerings.into_iter().map(Into::into).collect(),
                    message,
                }
            }
            CreateError::NodeClassNotReady(message) => Self::NodeClassNotReady { message },
            CreateError::Failed { reason, message } => Self::Failed { reason, message },
        }
    }
}

impl From<CloudError> for ErrorDto {
    fn from(e: CloudError) -> Self {
        match e {
            CloudError::NotFound(provider_id) => Self::NotFound { provider_id },
            CloudError::Other(message) => Self::Other { message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_survives_the_round_trip() {
        let catalog = Catalog::aws_us_east_1();
        let it = catalog.get("g4dn.xlarge").unwrap();
        let instance = Instance {
            provider_id: "aws:///us-east-1a/i-0a00000000000001".into(),
            instance_type: it.name,
            zone: Sym::new("us-east-1a"),
            capacity_type: CapacityType::Spot,
            price: 0.918,
            image_id: Some("ami-1".into()),
            labels: vec![
                (Sym::new("a"), Sym::new("1")),
                (Sym::new("b"), Sym::new("2")),
            ],
            capacity: it.capacity.clone(),
            allocatable: it.allocatable(),
            state: InstanceState::ShuttingDown,
            launched_ms: 1_800_000_000_123,
            node_claim: Some(Sym::new("default-abcde")),
        };
        assert!(!instance.capacity.extended.is_empty(), "a GPU type");
        let json = serde_json::to_string(&InstanceDto::from(&instance)).unwrap();
        let back: InstanceDto = serde_json::from_str(&json).unwrap();
        assert_eq!(Instance::from(back), instance);
    }

    #[test]
    fn errors_are_tagged_and_keep_their_offerings() {
        let e = CreateError::InsufficientCapacity {
            offerings: vec![OfferingKey {
                capacity_type: CapacityType::OnDemand,
                instance_type: Sym::new("m5.large"),
                zone: Sym::new("us-east-1a"),
            }],
            message: "no capacity".into(),
        };
        let json = serde_json::to_value(ErrorDto::from(e)).unwrap();
        assert_eq!(json["error"], "insufficientCapacity");
        assert_eq!(json["offerings"][0]["instanceType"], "m5.large");
        assert_eq!(json["offerings"][0]["capacityType"], "on-demand");
        let not_found = serde_json::to_value(ErrorDto::NotFound {
            provider_id: "aws:///x/i-1".into(),
        })
        .unwrap();
        assert_eq!(not_found["providerID"], "aws:///x/i-1");
        // A Kubernetes Status is not mistaken for one.
        let status = r#"{"kind":"Status","status":"Failure","code":404,"reason":"NotFound"}"#;
        assert!(serde_json::from_str::<ErrorDto>(status).is_err());
    }

    #[test]
    fn the_digest_changes_with_a_price() {
        let a = Catalog::aws_us_east_1();
        let mut b = Catalog::aws_us_east_1();
        assert_eq!(catalog_digest(&a), catalog_digest(&b));
        assert!(catalog_digest(&a).starts_with("sha256:"));
        assert!(b.set_spot_price("m5.large", "us-east-1a", 0.001));
        assert_ne!(catalog_digest(&a), catalog_digest(&b));
    }
}
