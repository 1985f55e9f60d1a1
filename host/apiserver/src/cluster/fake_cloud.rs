//! The fake cloud: the simulator's EC2 model on the wall clock, shared
//! between the kubelet model (which registers a node for each instance) and
//! whoever launches instances, through the same [`CloudProvider`] port the
//! AWS adapter implements.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use dovetail_control::cloud::{
    CloudDrift, CloudError, CloudProvider, CreateError, Instance, InstanceState, Launch,
};
use dovetail_core::catalog::{CapacityType, Catalog};
use dovetail_core::model::{Labels, NodeClassRef};
use dovetail_core::nodeclaim::{NodeClaim, NodeClaimStatus};
use dovetail_core::requirements::NodeSelectorRequirement;
use dovetail_core::scheduler::OfferingRef;
use dovetail_core::sym::Sym;
use dovetail_sim::cloud::Ec2;
use tokio::sync::watch;

use super::now_ms;

/// A handle on the fake cloud; clones share the same instances. Launches
/// are `running` at once; the node's readiness is the kubelet model's.
#[derive(Debug, Clone)]
pub struct FakeCloud {
    model: Arc<Mutex<Model>>,
    /// Bumped on every launch and termination, to wake the kubelet model.
    changes: Arc<watch::Sender<u64>>,
}

#[derive(Debug)]
struct Model {
    ec2: Ec2,
    /// The instance last launched for each NodeClaim, by provider ID.
    by_claim: HashMap<Sym, String>,
}

impl FakeCloud {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        // Launch and readiness delays are the simulator's; here the
        // instance runs at once and the kubelet model times readiness.
        let ec2 = Ec2::new(catalog, 0, 0, now_ms());
        Self {
            model: Arc::new(Mutex::new(Model {
                ec2,
                by_claim: HashMap::new(),
            })),
            changes: Arc::new(watch::channel(0).0),
        }
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        // A panic while holding the lock leaves the model as consistent as
        // any single call leaves it.
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Notified on every launch and termination.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Launches one instance of `instance_type` in `zone` for the NodeClaim
    /// `claim` (its `karpenter.sh/nodeclaim` tag), as a controller's
    /// [`CloudProvider::create`] would with a one-offering launch list.
    pub fn launch(
        &self,
        claim: &str,
        instance_type: &str,
        zone: &str,
        capacity_type: CapacityType,
    ) -> Result<Launch, CreateError> {
        let price = self
            .instance_types()
            .get(instance_type)
            .and_then(|t| t.offering(zone, capacity_type))
            .map(|o| o.price)
            .ok_or_else(|| CreateError::Failed {
                reason: "InvalidParameterValue".into(),
                message: format!(
                    "the catalog has no {capacity_type:?} offering of {instance_type} in {zone}"
                ),
            })?;
        let now = now_ms();
        let launch = vec![OfferingRef {
            instance_type: Sym::new(instance_type),
            zone: Sym::new(zone),
            capacity_type,
            price,
        }];
        let claim = node_claim(Sym::new(claim), None, Vec::new(), Vec::new(), launch, now);
        self.clone().create(&claim, now)
    }

    /// Matching launches fail with insufficient capacity until `until_ms`
    /// (Unix ms); an empty list matches any instance type or zone, `None`
    /// any capacity type.
    pub fn add_shortage(
        &self,
        until_ms: u64,
        instance_types: &[&str],
        zones: &[&str],
        capacity_type: Option<CapacityType>,
    ) {
        self.model().ec2.add_shortage(
            until_ms,
            instance_types.iter().map(|s| Sym::new(s)).collect(),
            zones.iter().map(|s| Sym::new(s)).collect(),
            capacity_type,
        );
    }

    /// Every instance not yet terminated, tagged for a NodeClaim or not.
    pub fn instances(&self) -> Vec<Instance> {
        self.model().ec2.instances()
    }

    /// Terminates an instance, as a spot interruption or an operator would.
    pub fn terminate(&self, provider_id: &str) {
        let _ = self.clone().delete(provider_id, now_ms());
    }
}

/// A NodeClaim with what the fake cloud reads of one: its name, NodePool,
/// labels, requirements and launch list.
pub(crate) fn node_claim(
    name: Sym,
    node_pool: Option<Sym>,
    labels: Labels,
    requirements: Vec<NodeSelectorRequirement>,
    launch: Vec<OfferingRef>,
    now_ms: u64,
) -> NodeClaim {
    NodeClaim {
        name,
        node_pool,
        labels,
        annotations: Vec::new(),
        requirements,
        requests: Default::default(),
        taints: Vec::new(),
        startup_taints: Vec::new(),
        node_class_ref: NodeClassRef {
            group: "karpenter.k8s.aws".into(),
            kind: "EC2NodeClass".into(),
            name: "default".into(),
        },
        expire_after: None,
        termination_grace_period: None,
        launch,
        node_pool_hash: None,
        created_ms: now_ms,
        deletion_ms: None,
        finalizer: false,
        status: NodeClaimStatus::default(),
    }
}

impl CloudProvider for FakeCloud {
    /// Idempotent per NodeClaim: an instance already tagged for `claim`
    /// (launched before a controller crashed, its status never written) is
    /// returned instead of launching a second.
    fn create(&mut self, claim: &NodeClaim, now_ms: u64) -> Result<Launch, CreateError> {
        let mut launch = {
            let mut model = self.model();
            let Model { ec2, by_claim } = &mut *model;
            // A terminated instance is not found: the claim launches anew.
            if let Some(instance) = by_claim.get(&claim.name).and_then(|p| ec2.get(p).ok()) {
                return Ok(Launch {
                    instance,
                    unavailable: Vec::new(),
                });
            }
            let launch = ec2.create(claim, now_ms)?;
            ec2.mark_running(&launch.instance.provider_id);
            by_claim.insert(claim.name, launch.instance.provider_id.clone());
            launch
        };
        launch.instance.state = InstanceState::Running;
        self.changed();
        Ok(launch)
    }

    fn delete(&mut self, provider_id: &str, now_ms: u64) -> Result<(), CloudError> {
        {
            let mut model = self.model();
            let Model { ec2, by_claim } = &mut *model;
            if let Some(claim) = ec2.get(provider_id).ok().and_then(|i| i.node_claim)
                && by_claim.get(&claim).is_some_and(|p| p == provider_id)
            {
                by_claim.remove(&claim);
            }
            ec2.delete(provider_id, now_ms)?;
        }
        self.changed();
        Ok(())
    }

    fn get(&self, provider_id: &str) -> Result<Instance, CloudError> {
        self.model().ec2.get(provider_id)
    }

    fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.model().ec2.list()
    }

    fn instance_types(&self) -> Arc<Catalog> {
        self.model().ec2.instance_types()
    }

    fn is_drifted(&self, claim: &NodeClaim) -> Result<Option<CloudDrift>, CloudError> {
        self.model().ec2.is_drifted(claim)
    }
}
