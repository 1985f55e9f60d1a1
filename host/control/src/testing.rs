//! Test doubles (feature `testing`): a cloud whose answers a test scripts,
//! and an in-memory cluster that applies actions at once and answers
//! evictions from PodDisruptionBudget status.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use dovetail_core::catalog::Catalog;
use dovetail_core::model::{Node, Pod};
use dovetail_core::nodeclaim::NodeClaim;
use dovetail_core::sym::Sym;

use crate::actions::{Action, ActionError, EvictionResult, Outcome};
use crate::cloud::{
    CloudDrift, CloudError, CloudProvider, CreateError, Instance, InstanceState, Launch,
    OfferingKey,
};
use crate::controller::Cluster;
use crate::snapshot::{instance_labels, sort_labels};
use crate::state::{ClusterState, NodeId, PodId};

/// A scripted cloud: creates succeed on the first offering not listed in
/// `insufficient`, unless `next_errors` holds an error for the next call.
/// With `slow_termination`, a deleted instance shuts down until
/// [`FakeCloud::finish_termination`] says it is gone.
#[derive(Debug)]
pub struct FakeCloud {
    pub catalog: Arc<Catalog>,
    pub instances: BTreeMap<String, Instance>,
    pub insufficient: HashSet<OfferingKey>,
    pub next_errors: VecDeque<CreateError>,
    pub create_calls: Vec<Sym>,
    /// When each of `create_calls` was made (Unix ms).
    pub create_times: Vec<u64>,
    pub delete_calls: Vec<String>,
    pub drifted: HashSet<Sym>,
    pub slow_termination: bool,
    next_id: u64,
}

impl FakeCloud {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            instances: BTreeMap::new(),
            insufficient: HashSet::new(),
            next_errors: VecDeque::new(),
            create_calls: Vec::new(),
            create_times: Vec::new(),
            delete_calls: Vec::new(),
            drifted: HashSet::new(),
            slow_termination: false,
            next_id: 0,
        }
    }

    /// A shutting-down instance is gone.
    pub fn finish_termination(&mut self, provider_id: &str) {
        self.instances.remove(provider_id);
    }

    /// An instance launched outside any NodeClaim.
    pub fn leak(&mut self, instance_type: &str, zone: &str, launched_ms: u64) -> String {
        self.next_id += 1;
        let pid = format!("aws:///{zone}/i-leak{:04}", self.next_id);
        let it = self.catalog.get(instance_type).expect("known type");
        self.instances.insert(
            pid.clone(),
            Instance {
                provider_id: pid.clone(),
                instance_type: it.name,
                zone: Sym::new(zone),
                capacity_type: dovetail_core::catalog::CapacityType::OnDemand,
                price: 0.1,
                image_id: None,
                labels: Vec::new(),
                capacity: it.capacity.clone(),
                allocatable: it.allocatable(),
                state: InstanceState::Running,
                launched_ms,
                node_claim: None,
            },
        );
        pid
    }
}

impl CloudProvider for FakeCloud {
    fn create(&mut self, claim: &NodeClaim, now_ms: u64) -> Result<Launch, CreateError> {
        self.create_calls.push(claim.name);
        self.create_times.push(now_ms);
        if let Some(e) = self.next_errors.pop_front() {
            return Err(e);
        }
        let mut failed = Vec::new();
        for o in &claim.launch {
            let key = OfferingKey {
                capacity_type: o.capacity_type,
                instance_type: o.instance_type,
                zone: o.zone,
            };
            if self.insufficient.contains(&key) {
                failed.push(key);
                continue;
            }
            let it = self
                .catalog
                .get(o.instance_type.as_str())
                .expect("launch lists name catalog types");
            let size = self
                .catalog
                .sizing(o.instance_type.as_str(), &claim.node_class_ref.name)
                .expect("launch lists name catalog types");
            self.next_id += 1;
            let pid = format!("aws:///{}/i-{:08}", o.zone, self.next_id);
            let instance = Instance {
                provider_id: pid.clone(),
                instance_type: o.instance_type,
                zone: o.zone,
                capacity_type: o.capacity_type,
                price: o.price,
                image_id: Some("ami-test".into()),
                labels: instance_labels(it, o.zone, o.capacity_type, &claim.requirements),
                capacity: size.capacity.clone(),
                allocatable: size.allocatable(),
                state: InstanceState::Running,
                launched_ms: now_ms,
                node_claim: Some(claim.name),
            };
            self.instances.insert(pid, instance.clone());
            return Ok(Launch {
                instance,
                unavailable: failed,
            });
        }
        Err(CreateError::InsufficientCapacity {
            offerings: failed,
            message: "InsufficientInstanceCapacity".into(),
        })
    }

    fn delete(&mut self, provider_id: &str, _now_ms: u64) -> Result<(), CloudError> {
        self.delete_calls.push(provider_id.to_string());
        if self.slow_termination {
            if let Some(i) = self.instances.get_mut(provider_id) {
                i.state = InstanceState::ShuttingDown;
            }
        } else {
            self.instances.remove(provider_id);
        }
        Ok(())
    }

    fn get(&self, provider_id: &str) -> Result<Instance, CloudError> {
        self.instances
            .get(provider_id)
            .cloned()
            .ok_or_else(|| CloudError::NotFound(provider_id.to_string()))
    }

    fn list(&self) -> Result<Vec<Instance>, CloudError> {
        Ok(self.instances.values().cloned().collect())
    }

    fn instance_types(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    fn is_drifted(&self, claim: &NodeClaim) -> Result<Option<CloudDrift>, CloudError> {
        Ok(self
            .drifted
            .contains(&claim.name)
            .then_some(CloudDrift::Ami))
    }
}

/// A cluster that applies actions to its state at once. Evictions are
/// answered from the PodDisruptionBudgets' `disruptionsAllowed`; an evicted
/// pod is deleted, or with `graceful_eviction` left terminating until the
/// test deletes it. Every action is kept in `log`.
#[derive(Debug, Default)]
pub struct MemoryCluster {
    pub state: ClusterState,
    pub log: Vec<Action>,
    /// Pods whose eviction the API answers with 404, whatever the budgets.
    pub refuse: HashSet<PodId>,
    pub graceful_eviction: bool,
}

impl MemoryCluster {
    pub fn new(state: ClusterState) -> Self {
        Self {
            state,
            ..Self::default()
        }
    }

    /// A kubelet registering the node of `claim`'s instance, NotReady and
    /// with the claim's taints and start-up taints plus
    /// `karpenter.sh/unregistered`.
    pub fn register(&mut self, cloud: &FakeCloud, claim: Sym, now_ms: u64) -> NodeId {
        self.register_with(cloud, claim, now_ms, |_| {})
    }

    /// [`MemoryCluster::register`], with the Node changed by `edit` before
    /// it appears.
    pub fn register_with(
        &mut self,
        cloud: &FakeCloud,
        claim: Sym,
        now_ms: u64,
        edit: impl FnOnce(&mut Node),
    ) -> NodeId {
        let c = self.state.claim_by_name(claim).expect("claim").clone();
        let pid = c.status.provider_id.clone().expect("launched");
        let i = cloud.instances.get(&pid).expect("instance");
        let mut labels = i.labels.clone();
        labels.extend(c.labels.iter().copied());
        let mut taints = c.taints.clone();
        taints.extend(c.startup_taints.iter().copied());
        taints.push(dovetail_core::model::Taint {
            key: Sym::new(dovetail_core::nodeclaim::UNREGISTERED_TAINT),
            value: None,
            effect: dovetail_core::model::TaintEffect::NoExecute,
        });
        let node = Node {
            name: Sym::new(&format!("ip-{}", claim)),
            labels: sort_labels(labels),
            taints,
            capacity: i.capacity.clone(),
            allocatable: i.allocatable.clone(),
            created_at: now_ms / 1000,
            ..Node::default()
        };
        let mut node = node;
        edit(&mut node);
        self.state.apply_node(node, Some(pid), false, now_ms)
    }

    /// Binds a new pod to a node.
    pub fn run_pod(&mut self, pod: Pod, node: NodeId, now_ms: u64) -> PodId {
        self.state.apply_pod(pod, Some(node), now_ms)
    }

    pub fn count(&self, f: impl Fn(&Action) -> bool) -> usize {
        self.log.iter().filter(|a| f(a)).count()
    }
}

impl Cluster for MemoryCluster {
    fn state(&self) -> &ClusterState {
        &self.state
    }

    fn execute(&mut self, action: Action, now_ms: u64) -> Result<Outcome, ActionError> {
        self.log.push(action.clone());
        let missing = |what: String| ActionError {
            action: what,
            message: "not found".into(),
        };
        match action {
            Action::CreateNodeClaim(c) | Action::UpdateNodeClaim(c) => {
                self.state.apply_claim(c, now_ms);
            }
            Action::DeleteNodeClaim { name } => {
                let mut c = self
                    .state
                    .claim_by_name(name)
                    .ok_or_else(|| missing(format!("nodeclaim {name}")))?
                    .clone();
                if c.deletion_ms.is_none() {
                    c.deletion_ms = Some(now_ms);
                    self.state.apply_claim(c, now_ms);
                }
            }
            Action::RemoveNodeClaimFinalizer { name } => {
                self.state.delete_claim(name, now_ms);
            }
            Action::Nominate { pods, target } => {
                self.state.nominate_all(&pods, target, now_ms);
            }
            Action::PatchNode { name, patch } => {
                let id = self
                    .state
                    .node_id(name)
                    .ok_or_else(|| missing(format!("node {name}")))?;
                self.state.update_node(id, |e| patch.apply(e));
            }
            Action::TaintNode { name, taint } => {
                let id = self
                    .state
                    .node_id(name)
                    .ok_or_else(|| missing(format!("node {name}")))?;
                self.state.add_node_taint(id, taint, now_ms);
            }
            Action::UntaintNode { name, key } => {
                let id = self
                    .state
                    .node_id(name)
                    .ok_or_else(|| missing(format!("node {name}")))?;
                self.state.remove_node_taint(id, key.as_str());
            }
            Action::DeleteNode { name } => {
                let id = self
                    .state
                    .node_id(name)
                    .ok_or_else(|| missing(format!("node {name}")))?;
                self.state.mark_node_deleting(id, now_ms);
                if !self.state.node(id).is_some_and(|n| n.finalizer) {
                    self.state.delete_node(id, now_ms);
                }
            }
            Action::RemoveNodeFinalizer { name } => {
                if let Some(id) = self.state.node_id(name) {
                    for p in self.state.delete_node(id, now_ms) {
                        self.state.delete_pod(p, now_ms);
                    }
                }
            }
            Action::EvictPod { pod } => {
                let Some(id) = self.state.pod_id(&pod) else {
                    return Ok(Outcome::Eviction(EvictionResult::Gone));
                };
                if self.refuse.contains(&id) {
                    return Ok(Outcome::Eviction(EvictionResult::Gone));
                }
                let e = self.state.pod(id).expect("indexed");
                if e.pdbs.len() > 1 {
                    return Ok(Outcome::Eviction(EvictionResult::MultiplePdbs));
                }
                let pdbs = e.pdbs.clone();
                if pdbs
                    .iter()
                    .any(|&b| self.state.pdbs()[b].disruptions_allowed <= 0)
                {
                    return Ok(Outcome::Eviction(EvictionResult::Blocked));
                }
                for b in pdbs {
                    let allowed = self.state.pdbs()[b].disruptions_allowed;
                    self.state.set_disruptions_allowed(b, allowed - 1);
                }
                if self.graceful_eviction {
                    self.state.mark_pod_deleting(id, now_ms);
                } else {
                    self.state.delete_pod(id, now_ms);
                }
                return Ok(Outcome::Eviction(EvictionResult::Evicted));
            }
            Action::DeletePod { pod } => {
                if let Some(id) = self.state.pod_id(&pod) {
                    self.state.delete_pod(id, now_ms);
                }
            }
            Action::Event(_) => {}
        }
        Ok(Outcome::Done)
    }
}
