//! The cloud port: what the orchestration needs from a cloud provider. The
//! AWS adapter implements it with EC2; the simulator with its EC2 model.
//!
//! Calls are synchronous: the orchestration is plain clock-driven code, and
//! an asynchronous adapter blocks on its runtime inside the call.

use std::fmt;
use std::sync::Arc;

use dovetail_core::catalog::{CapacityType, Catalog};
use dovetail_core::model::Labels;
use dovetail_core::nodeclaim::NodeClaim;
use dovetail_core::resources::Resources;
use dovetail_core::sym::Sym;

/// One offering: what the unavailable-offerings cache is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferingKey {
    pub capacity_type: CapacityType,
    pub instance_type: Sym,
    pub zone: Sym,
}

impl fmt::Display for OfferingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.instance_type, self.zone, self.capacity_type
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
}

/// An instance as the cloud reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// `aws:///<zone>/<instance-id>` for EC2.
    pub provider_id: String,
    pub instance_type: Sym,
    pub zone: Sym,
    pub capacity_type: CapacityType,
    pub price: f64,
    pub image_id: Option<String>,
    /// Labels the provider knows for the node: the instance type's, zone,
    /// capacity type, region.
    pub labels: Labels,
    pub capacity: Resources,
    pub allocatable: Resources,
    pub state: InstanceState,
    /// Unix ms.
    pub launched_ms: u64,
    /// The NodeClaim it was launched for (the `karpenter.sh/nodeclaim` tag).
    pub node_claim: Option<Sym>,
}

/// A successful create: the instance, and the offerings that failed with
/// insufficient capacity before one succeeded (CreateFleet reports an error
/// per override it could not fill).
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub instance: Instance,
    pub unavailable: Vec<OfferingKey>,
}

/// Why a create failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CreateError {
    /// No offering had capacity. The NodeClaim is deleted and its pods are
    /// provisioned again without these offerings.
    #[error("insufficient capacity for every offering tried ({}): {message}", list(.offerings))]
    InsufficientCapacity {
        offerings: Vec<OfferingKey>,
        message: String,
    },
    /// The NodeClass cannot launch yet (missing, or not Ready). The
    /// NodeClaim is deleted, as for insufficient capacity.
    #[error("node class not ready: {0}")]
    NodeClassNotReady(String),
    /// Anything else. The NodeClaim stays, `Launched=Unknown` with this
    /// reason, and the launch is retried until the launch timeout.
    #[error("{reason}: {message}")]
    Failed { reason: String, message: String },
}

fn list(offerings: &[OfferingKey]) -> String {
    offerings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    #[error("instance {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

/// Why the cloud considers an instance drifted from its NodeClass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloudDrift {
    NodeClass,
    Ami,
    SecurityGroup,
    Subnet,
    CapacityReservation,
    PlacementGroup,
}

impl CloudDrift {
    pub fn reason(self) -> &'static str {
        match self {
            Self::NodeClass => "NodeClassDrift",
            Self::Ami => "AMIDrift",
            Self::SecurityGroup => "SecurityGroupDrift",
            Self::Subnet => "SubnetDrift",
            Self::CapacityReservation => "CapacityReservationDrift",
            Self::PlacementGroup => "PlacementGroupDrift",
        }
    }
}

/// What the orchestration needs from a cloud.
pub trait CloudProvider {
    /// Launches an instance for `claim`, trying `claim.launch` in order.
    fn create(&mut self, claim: &NodeClaim, now_ms: u64) -> Result<Launch, CreateError>;

    /// Launches for several claims at once, answering in their order. A
    /// cloud that batches its calls (EC2's `CreateFleet`) sends alike
    /// requests as one; by default each claim is launched in turn.
    fn create_all(
        &mut self,
        claims: &[&NodeClaim],
        now_ms: u64,
    ) -> Vec<Result<Launch, CreateError>> {
        claims.iter().map(|c| self.create(c, now_ms)).collect()
    }

    /// Terminates an instance. Idempotent: an instance already gone is not
    /// an error.
    fn delete(&mut self, provider_id: &str, now_ms: u64) -> Result<(), CloudError>;

    /// The instance, or [`CloudError::NotFound`] once it is terminated.
    fn get(&self, provider_id: &str) -> Result<Instance, CloudError>;

    /// Every instance this cluster launched that is not yet terminated.
    fn list(&self) -> Result<Vec<Instance>, CloudError>;

    /// Instance types and their offerings, before the unavailable-offerings
    /// cache is applied. The same `Arc` until something changes.
    fn instance_types(&self) -> Arc<Catalog>;

    /// Whether the instance behind `claim` has drifted from its NodeClass.
    fn is_drifted(&self, claim: &NodeClaim) -> Result<Option<CloudDrift>, CloudError>;
}
