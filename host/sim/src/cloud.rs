//! The EC2 model, as a [`CloudProvider`]: instances launched from a
//! NodeClaim's launch list (tried in order, as CreateFleet tries a
//! prioritised list), capacity shortages that fail matching offerings with
//! insufficient capacity, spot interruptions that terminate an instance at
//! the end of its notice, and the cost of what runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use dovetail_control::cloud::{
    CloudDrift, CloudError, CloudProvider, CreateError, Instance, InstanceState, Launch,
    OfferingKey,
};
use dovetail_control::snapshot::{instance_labels, sort_labels};
use dovetail_core::catalog::{CapacityType, Catalog};
use dovetail_core::labels;
use dovetail_core::nodeclaim::NodeClaim;
use dovetail_core::requirements::NodeSelectorRequirement;
use dovetail_core::sym::Sym;

use crate::engine::SimEvent;

/// A window in which matching launches fail for lack of capacity.
#[derive(Debug, Clone)]
pub(crate) struct Shortage {
    /// Relative ms.
    pub until: u64,
    pub instance_types: Vec<Sym>,
    pub zones: Vec<Sym>,
    pub capacity_type: Option<CapacityType>,
}

#[derive(Debug, Clone)]
pub(crate) struct SimInstance {
    pub instance: Instance,
    /// When the kubelet registers its node, and when the node is Ready
    /// (relative ms).
    pub running_at: u64,
    pub ready_at: u64,
    /// Termination scheduled by a spot interruption (relative ms).
    pub reclaim_at: Option<u64>,
    /// Relative ms.
    pub launched_at: u64,
    pub terminated_at: Option<u64>,
    /// The NodePool of the NodeClaim it was launched for.
    pub node_pool: Option<Sym>,
}

/// The EC2 model. The simulator drives it on its virtual clock; the
/// in-process cluster (`dovetail-apiserver`) uses it as a fake cloud.
#[derive(Debug)]
pub struct Ec2 {
    catalog: Arc<Catalog>,
    region: Sym,
    /// By instance ID, in launch order (IDs are sequential).
    pub(crate) instances: BTreeMap<u64, SimInstance>,
    /// Instances still to register, become Ready or be reclaimed.
    pub(crate) busy: std::collections::BTreeSet<u64>,
    next_id: u64,
    launch_ms: u64,
    ready_ms: u64,
    /// Unix ms of simulated time 0.
    start_ms: u64,
    pub(crate) shortages: Vec<Shortage>,
    /// Hourly price of the running instances.
    pub(crate) live_price: f64,
    /// The same by NodePool and capacity type.
    pub(crate) live_price_by: BTreeMap<(Option<Sym>, CapacityType), f64>,
    pub(crate) launched: usize,
    pub(crate) insufficient_capacity_errors: usize,
    pub(crate) peak: usize,
    live: usize,
    pub(crate) events: Vec<SimEvent>,
    /// Hours per instance type of terminated instances.
    pub(crate) hours: BTreeMap<String, f64>,
}

pub(crate) fn instance_id(provider_id: &str) -> Option<u64> {
    provider_id
        .rsplit('/')
        .next()?
        .strip_prefix("i-")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
}

impl Ec2 {
    pub fn new(catalog: Arc<Catalog>, launch_ms: u64, ready_ms: u64, start_ms: u64) -> Self {
        Self {
            region: catalog.region,
            catalog,
            instances: BTreeMap::new(),
            busy: std::collections::BTreeSet::new(),
            next_id: 0x0a00_0000_0000_0000,
            launch_ms,
            ready_ms,
            start_ms,
            shortages: Vec::new(),
            live_price: 0.0,
            live_price_by: BTreeMap::new(),
            launched: 0,
            insufficient_capacity_errors: 0,
            peak: 0,
            live: 0,
            events: Vec::new(),
            hours: BTreeMap::new(),
        }
    }

    /// Matching launches fail with insufficient capacity until `until_ms`
    /// (Unix ms); an empty list matches every instance type or zone, `None`
    /// every capacity type.
    pub fn add_shortage(
        &mut self,
        until_ms: u64,
        instance_types: Vec<Sym>,
        zones: Vec<Sym>,
        capacity_type: Option<CapacityType>,
    ) {
        let until = self.rel(until_ms);
        self.shortages.push(Shortage {
            until,
            instance_types,
            zones,
            capacity_type,
        });
    }

    /// The instance is up (EC2 `running`), as it is moments after a launch.
    pub fn mark_running(&mut self, provider_id: &str) {
        if let Some(i) = instance_id(provider_id).and_then(|id| self.instances.get_mut(&id))
            && i.terminated_at.is_none()
        {
            i.instance.state = InstanceState::Running;
        }
    }

    /// Every instance not yet terminated, whoever launched it, in launch
    /// order.
    pub fn instances(&self) -> Vec<Instance> {
        self.live().map(|i| i.instance.clone()).collect()
    }

    fn rel(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.start_ms)
    }

    fn short(&self, o: &OfferingKey, now: u64) -> bool {
        self.shortages.iter().any(|s| {
            s.until > now
                && (s.instance_types.is_empty() || s.instance_types.contains(&o.instance_type))
                && (s.zones.is_empty() || s.zones.contains(&o.zone))
                && s.capacity_type.is_none_or(|c| c == o.capacity_type)
        })
    }

    /// Starts an instance of `offering` for `claim` of `node_pool`, sized
    /// as its EC2NodeClass `node_class` sizes it (the catalog's own sizing
    /// without one); `started` back-dates it (a start state) and says if it
    /// is Ready at once.
    pub(crate) fn start(
        &mut self,
        offering: OfferingKey,
        (claim, node_pool): (Sym, Option<Sym>),
        node_class: Option<&str>,
        requirements: &[NodeSelectorRequirement],
        now: u64,
        started: Option<(u64, bool)>,
    ) -> Option<Instance> {
        let OfferingKey {
            instance_type,
            zone,
            capacity_type,
        } = offering;
        let it = self.catalog.get(instance_type.as_str())?;
        let size = match node_class {
            Some(class) => self.catalog.sizing(instance_type.as_str(), class)?,
            None => it.own_sizing(),
        };
        let price = it.offering(zone.as_str(), capacity_type)?.price;
        self.next_id += 1;
        let id = self.next_id;
        let mut labels = instance_labels(it, zone, capacity_type, requirements);
        // The type's labels may carry the region already: one key once.
        labels.push((Sym::new(labels::REGION), self.region));
        let labels = sort_labels(labels);
        let (launched_ms, running_at, ready_at) = match started {
            Some((unix_ms, ready)) => (
                unix_ms,
                now,
                if ready {
                    now
                } else {
                    now + self.launch_ms + self.ready_ms
                },
            ),
            None => (
                self.start_ms + now,
                now + self.launch_ms,
                now + self.launch_ms + self.ready_ms,
            ),
        };
        let instance = Instance {
            provider_id: format!("aws:///{zone}/i-{id:016x}"),
            instance_type,
            zone,
            capacity_type,
            price,
            image_id: Some("ami-0dovetail0sim".into()),
            labels,
            capacity: size.capacity.clone(),
            allocatable: size.allocatable(),
            state: InstanceState::Pending,
            launched_ms,
            node_claim: Some(claim),
        };
        self.instances.insert(
            id,
            SimInstance {
                instance: instance.clone(),
                running_at,
                ready_at,
                reclaim_at: None,
                launched_at: now,
                terminated_at: None,
                node_pool,
            },
        );
        self.busy.insert(id);
        self.live_price += price;
        *self
            .live_price_by
            .entry((node_pool, capacity_type))
            .or_default() += price;
        self.launched += 1;
        self.live += 1;
        self.peak = self.peak.max(self.live);
        Some(instance)
    }

    /// An instance running at the start for a node Dovetail does not manage
    /// (an EKS managed node group's, say): billed like the others, but not
    /// tagged as Dovetail's, so Dovetail neither lists nor collects it.
    pub(crate) fn start_unmanaged(
        &mut self,
        offering: OfferingKey,
        name: Sym,
        now: u64,
        started: (u64, bool),
    ) -> Option<Instance> {
        let mut instance = self.start(offering, (name, None), None, &[], now, Some(started))?;
        instance.node_claim = None;
        if let Some(i) =
            instance_id(&instance.provider_id).and_then(|id| self.instances.get_mut(&id))
        {
            i.instance.node_claim = None;
        }
        Some(instance)
    }

    /// Instances alive (not terminated).
    pub(crate) fn live(&self) -> impl Iterator<Item = &SimInstance> {
        self.instances
            .values()
            .filter(|i| i.terminated_at.is_none())
    }

    /// Terminates an instance at relative time `now`.
    pub(crate) fn terminate(&mut self, id: u64, now: u64) {
        let Some(i) = self.instances.get_mut(&id) else {
            return;
        };
        if i.terminated_at.is_some() {
            return;
        }
        i.terminated_at = Some(now);
        self.busy.remove(&id);
        i.instance.state = InstanceState::Terminated;
        self.live_price -= i.instance.price;
        if let Some(p) = self
            .live_price_by
            .get_mut(&(i.node_pool, i.instance.capacity_type))
        {
            *p -= i.instance.price;
        }
        self.live -= 1;
        let hours = (now - i.launched_at.min(now)) as f64 / 3_600_000.0;
        *self
            .hours
            .entry(i.instance.instance_type.to_string())
            .or_default() += hours;
    }

    /// A spot interruption: the instance terminates at `at`.
    pub(crate) fn reclaim(&mut self, id: u64, at: u64) {
        if let Some(i) = self.instances.get_mut(&id) {
            i.reclaim_at = Some(at);
            self.busy.insert(id);
        }
    }

    /// Node-hours by NodePool and capacity type, counting live instances up
    /// to `end`.
    pub(crate) fn node_hours_by_pool(
        &self,
        end: u64,
    ) -> BTreeMap<(Option<Sym>, CapacityType), f64> {
        let mut h = BTreeMap::new();
        for i in self.instances.values() {
            let until = i.terminated_at.unwrap_or(end).min(end);
            *h.entry((i.node_pool, i.instance.capacity_type))
                .or_default() += until.saturating_sub(i.launched_at) as f64 / 3_600_000.0;
        }
        h
    }

    /// Node-hours by instance type, counting live instances up to `end`.
    pub(crate) fn node_hours(&self, end: u64) -> BTreeMap<String, f64> {
        let mut h = self.hours.clone();
        for i in self.live() {
            *h.entry(i.instance.instance_type.to_string()).or_default() +=
                (end - i.launched_at.min(end)) as f64 / 3_600_000.0;
        }
        h
    }
}

impl CloudProvider for Ec2 {
    fn create(&mut self, claim: &NodeClaim, now_ms: u64) -> Result<Launch, CreateError> {
        let now = self.rel(now_ms);
        let mut failed = Vec::new();
        for o in &claim.launch {
            let key = OfferingKey {
                capacity_type: o.capacity_type,
                instance_type: o.instance_type,
                zone: o.zone,
            };
            if self.short(&key, now) {
                self.insufficient_capacity_errors += 1;
                self.events.push(SimEvent::InsufficientCapacity {
                    at_ms: now,
                    instance_type: o.instance_type,
                    zone: o.zone,
                    capacity_type: o.capacity_type,
                });
                failed.push(key);
                continue;
            }
            let Some(instance) = self.start(
                OfferingKey {
                    instance_type: o.instance_type,
                    zone: o.zone,
                    capacity_type: o.capacity_type,
                },
                (claim.name, claim.node_pool),
                Some(&claim.node_class_ref.name),
                &claim.requirements,
                now,
                None,
            ) else {
                continue;
            };
            self.events.push(SimEvent::NodeLaunched {
                at_ms: now,
                name: claim.name,
                instance_type: o.instance_type,
                zone: o.zone,
                capacity_type: o.capacity_type,
                price: instance.price,
            });
            return Ok(Launch {
                instance,
                unavailable: failed,
            });
        }
        Err(CreateError::InsufficientCapacity {
            message: format!(
                "InsufficientInstanceCapacity: no capacity for NodeClaim {}",
                claim.name
            ),
            offerings: failed,
        })
    }

    fn delete(&mut self, provider_id: &str, now_ms: u64) -> Result<(), CloudError> {
        let now = self.rel(now_ms);
        if let Some(id) = instance_id(provider_id) {
            self.terminate(id, now);
        }
        Ok(())
    }

    fn get(&self, provider_id: &str) -> Result<Instance, CloudError> {
        instance_id(provider_id)
            .and_then(|id| self.instances.get(&id))
            .filter(|i| i.terminated_at.is_none())
            .map(|i| i.instance.clone())
            .ok_or_else(|| CloudError::NotFound(provider_id.to_string()))
    }

    fn list(&self) -> Result<Vec<Instance>, CloudError> {
        // Karpenter lists only the instances tagged as its own.
        Ok(self
            .live()
            .filter(|i| i.instance.node_claim.is_some())
            .map(|i| i.instance.clone())
            .collect())
    }

    fn instance_types(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    fn is_drifted(&self, _claim: &NodeClaim) -> Result<Option<CloudDrift>, CloudError> {
        // The model has no AMIs, subnets or security groups to drift.
        Ok(None)
    }
}
