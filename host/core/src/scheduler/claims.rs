//! Where pods can go: existing nodes, planned NodeClaims and the NodePool
//! templates new NodeClaims come from.

use crate::catalog::compiled::{CompiledType, Types};
use crate::labels;
use crate::model::{
    DaemonSet, HostPort, Node, NodePool, Pod, Taint, TaintEffect, Toleration, TolerationOperator,
    untolerated,
};
use crate::requirements::{Requirement, Requirements};
use crate::resources::Resources;
use crate::sym::Sym;

use super::index::{NodeIndex, PodIndex};
use super::pods::PodState;
use super::topology::{Topology, Universe};

/// Whether a DaemonSet's pods would run on nodes with these taints and
/// requirements (Karpenter tolerates PreferNoSchedule for daemons and tries
/// each required node-affinity term).
fn daemon_runs_on(
    pod: &Pod,
    taints: &[Taint],
    requirements: &Requirements,
    allow_well_known: bool,
) -> bool {
    let mut tolerations = pod.tolerations.clone();
    tolerations.push(Toleration {
        key: None,
        operator: TolerationOperator::Exists,
        value: None,
        effect: Some(TaintEffect::PreferNoSchedule),
    });
    if untolerated(taints, &tolerations).is_some() {
        return false;
    }
    let base = Requirements::from_labels(pod.node_selector.iter().map(|(k, v)| (k, v)));
    let terms: Vec<Requirements> = if pod.required_node_affinity.is_empty() {
        vec![base]
    } else {
        pod.required_node_affinity
            .iter()
            .filter_map(|t| Requirements::from_terms(t).ok())
            .map(|mut r| {
                r.add_all(&base);
                r
            })
            .collect()
    };
    terms
        .iter()
        .any(|t| requirements.compatible(t, allow_well_known, "").is_ok())
}

/// Whether a DaemonSet with pod template `pod` runs on `node`, by its
/// labels and taints: the rule the scheduler applies for DaemonSet overhead,
/// for whoever places DaemonSet pods.
pub fn daemon_schedules_on(pod: &Pod, node: &Node) -> bool {
    let requirements = Requirements::from_labels(node.labels.iter().map(|(k, v)| (k, v)));
    daemon_runs_on(pod, &node.taints, &requirements, false)
}

/// A NodePool compiled for launching.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub name: Sym,
    pub weight: i32,
    pub requirements: Requirements,
    pub taints: Vec<Taint>,
    /// Compatible instance types with an available offering (shared: what-if
    /// solves copy templates).
    pub types: std::sync::Arc<Vec<u32>>,
    pub daemon_overhead: Resources,
    pub daemon_ports: Vec<HostPort>,
    /// What the pool's limits still allow, per limited resource.
    pub remaining: Option<Vec<(Sym, i64)>>,
}

const NODES: &str = "nodes";

impl Template {
    pub fn new(
        pool: &NodePool,
        types: &Types,
        daemon_sets: &[DaemonSet],
        nodes: &[Node],
    ) -> Result<Self, String> {
        let mut requirements = Requirements::from_terms(&pool.requirements)
            .map_err(|e| format!("NodePool `{}`: {e}", pool.name))?;
        requirements.add_all(&Requirements::from_labels(
            pool.labels.iter().map(|(k, v)| (k, v)),
        ));
        requirements.add(Requirement::single(Sym::new(labels::NODE_POOL), pool.name));
        let keys = &types.keys;
        let list: Vec<u32> = types
            .list
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.requirements.intersects(&requirements).is_ok()
                    && t.has_offering(&requirements, keys)
            })
            .map(|(i, _)| i as u32)
            .collect();
        if list.is_empty() {
            return Err(format!(
                "NodePool `{}`: its requirements ({requirements}) leave no instance type with an available offering",
                pool.name
            ));
        }
        let startup: Vec<Taint> = pool
            .taints
            .iter()
            .chain(&pool.startup_taints)
            .copied()
            .collect();
        let mut daemon_overhead = Resources::default();
        let mut daemon_ports = Vec::new();
        for ds in daemon_sets {
            if daemon_runs_on(&ds.pod, &startup, &requirements, true) {
                daemon_overhead.add(&ds.pod.requests);
                daemon_overhead.pods += 1;
                daemon_ports.extend(ds.pod.host_ports.iter().copied());
            }
        }
        let remaining = (!pool.limits.is_empty()).then(|| {
            let mut left = pool.limits.clone();
            for n in nodes.iter().filter(|n| n.node_pool == Some(pool.name)) {
                for (name, v) in left.iter_mut() {
                    *v -= amount(&n.capacity, *name);
                }
            }
            left
        });
        Ok(Template {
            name: pool.name,
            weight: pool.weight,
            requirements,
            taints: pool.taints.clone(),
            types: std::sync::Arc::new(list),
            daemon_overhead,
            daemon_ports,
            remaining,
        })
    }

    /// Adds the domains this pool can launch into to the topology universe.
    pub fn add_domains(&self, types: &Types, universe: &mut Universe) {
        for &t in self.types.iter() {
            let mut reqs = self.requirements.clone();
            reqs.add_all(&types.list[t as usize].requirements);
            for r in reqs.iter().filter(|r| !r.is_complement()) {
                for &v in r.values() {
                    universe.insert(r.key, v, &self.taints);
                }
            }
        }
        for r in self.requirements.iter().filter(|r| !r.is_complement()) {
            for &v in r.values() {
                universe.insert(r.key, v, &self.taints);
            }
        }
    }

    /// The pool's types that still fit within its limits.
    pub fn types_within_limits(&self, types: &Types) -> Result<Vec<u32>, String> {
        let Some(remaining) = &self.remaining else {
            return Ok(self.types.to_vec());
        };
        let list: Vec<u32> = self
            .types
            .iter()
            .copied()
            .filter(|&t| {
                let cap = &types.list[t as usize].capacity;
                remaining
                    .iter()
                    .all(|&(name, left)| amount(cap, name) <= left)
            })
            .collect();
        if list.is_empty() {
            let left: Vec<String> = remaining
                .iter()
                .map(|&(name, v)| format!("{name} {}", describe_amount(name, v)))
                .collect();
            return Err(format!(
                "its limits are reached (remaining: {}); raise `spec.limits` to launch more",
                left.join(", ")
            ));
        }
        Ok(list)
    }

    /// Counts a new NodeClaim against the limits at its largest possible size.
    pub fn reserve(&mut self, claim: &Claim, types: &Types) {
        if let Some(remaining) = &mut self.remaining {
            for (name, left) in remaining.iter_mut() {
                let max = claim
                    .types
                    .iter()
                    .map(|&t| amount(&types.list[t as usize].capacity, *name))
                    .max()
                    .unwrap_or(0);
                *left -= max;
            }
        }
    }
}

/// A node's amount of a limited resource; every node is one `nodes`.
fn amount(capacity: &Resources, name: Sym) -> i64 {
    match name.as_str() {
        NODES => 1,
        n => capacity.get(n),
    }
}

fn describe_amount(name: Sym, v: i64) -> String {
    match name.as_str() {
        crate::resources::CPU => crate::resources::format_cpu(v),
        crate::resources::MEMORY | crate::resources::EPHEMERAL_STORAGE => {
            crate::resources::format_bytes(v)
        }
        _ => v.to_string(),
    }
}

fn port_conflict(ports: &[HostPort], pod: &Pod) -> Option<HostPort> {
    pod.host_ports
        .iter()
        .find(|p| ports.iter().any(|q| p.conflicts(q)))
        .copied()
}

/// Why a pod cannot go somewhere; turned into text only when reported,
/// since most attempts fail and only the last failure is shown.
#[derive(Debug, Clone)]
pub(crate) enum Reject {
    Room {
        total: Resources,
        largest: Resources,
    },
    Taint(Taint),
    HostPort(HostPort),
    Requirements(crate::requirements::Incompatible),
    Topology(super::topology::TopologyError),
    Types(String),
}

impl Reject {
    pub fn describe(&self, topology: &Topology) -> String {
        match self {
            Reject::Room { total, largest } => {
                format!("no instance type has room for {total} (the largest has {largest})")
            }
            Reject::Taint(t) => format!("the pod does not tolerate taint `{t}`"),
            Reject::HostPort(p) => format!("host port {}/{} is already taken", p.port, p.protocol),
            Reject::Requirements(e) => format!("incompatible requirements: {e}"),
            Reject::Topology(e) => topology.describe(*e),
            Reject::Types(s) => s.clone(),
        }
    }
}

/// A NodeClaim this plan will create.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub template: usize,
    pub hostname: Sym,
    pub requirements: Requirements,
    /// Pods' requests plus DaemonSet overhead.
    pub requests: Resources,
    pub pods: Vec<PodIndex>,
    /// Instance types that still fit, by index.
    pub types: Vec<u32>,
    /// Per-resource maximum allocatable over `types`: a quick "no" for pods
    /// that cannot fit any of them.
    max_alloc: Resources,
    host_ports: Vec<HostPort>,
}

fn max_allocatable(list: &[u32], types: &Types) -> Resources {
    let mut max = Resources::default();
    for &t in list {
        max.max_in_place(&types.list[t as usize].allocatable);
    }
    max
}

impl Claim {
    pub fn new(
        template_index: usize,
        template: &Template,
        hostname: Sym,
        options: Vec<u32>,
        types: &Types,
    ) -> Self {
        let mut requirements = template.requirements.clone();
        requirements.add(Requirement::single(types.keys.hostname, hostname));
        Claim {
            template: template_index,
            hostname,
            requirements,
            requests: template.daemon_overhead.clone(),
            pods: Vec::new(),
            max_alloc: max_allocatable(&options, types),
            types: options,
            host_ports: template.daemon_ports.clone(),
        }
    }

    pub fn try_add(
        &mut self,
        p: PodIndex,
        pod: &PodState,
        types: &Types,
        templates: &[Template],
        topology: &mut Topology,
    ) -> Result<(), Reject> {
        if !self.requests.fits_with(&pod.requests, &self.max_alloc) {
            return Err(Reject::Room {
                total: self.requests.plus(&pod.requests),
                largest: self.max_alloc.clone(),
            });
        }
        let template = &templates[self.template];
        if let Some(t) = untolerated(&template.taints, &pod.pod.tolerations) {
            return Err(Reject::Taint(*t));
        }
        if let Some(port) = port_conflict(&self.host_ports, &pod.pod) {
            return Err(Reject::HostPort(port));
        }
        self.requirements
            .compatible(&pod.requirements, true, "the NodePool")
            .map_err(Reject::Requirements)?;
        // Most attempts fail on topology: check it before copying anything.
        let merged;
        let base = if pod.requirements.is_empty() {
            &self.requirements
        } else {
            let mut r = self.requirements.clone();
            r.add_all(&pod.requirements);
            merged = r;
            &merged
        };
        let topo = if topology.constrains(p) {
            let topo = topology
                .add_requirements(p, &pod.pod, &pod.strict, base)
                .map_err(Reject::Topology)?;
            base.compatible(&topo, true, "the NodePool")
                .map_err(Reject::Requirements)?;
            Some(topo)
        } else {
            None
        };
        let total = self.requests.plus(&pod.requests);
        let mut reqs = base.clone();
        if let Some(topo) = &topo {
            reqs.add_all(topo);
        }
        let changed: Vec<&Requirement> = reqs
            .iter()
            .filter(|r| self.requirements.get(r.key) != Some(*r))
            .collect();
        let keys = &types.keys;
        let offerings_changed = changed
            .iter()
            .any(|r| r.key == keys.zone || r.key == keys.capacity_type);
        let matches = |t: &CompiledType| {
            changed.iter().all(|r| {
                t.requirements
                    .get(r.key)
                    .is_none_or(|existing| existing.admits(r))
            }) && (!offerings_changed || t.has_offering(&reqs, keys))
        };
        let remaining: Vec<u32> = self
            .types
            .iter()
            .copied()
            .filter(|&t| {
                let it = &types.list[t as usize];
                total.fits_in(&it.allocatable) && matches(it)
            })
            .collect();
        if remaining.is_empty() {
            let matching = self
                .types
                .iter()
                .filter(|&&t| matches(&types.list[t as usize]))
                .count();
            let roomy = self
                .types
                .iter()
                .filter(|&&t| total.fits_in(&types.list[t as usize].allocatable))
                .count();
            let wanted: Vec<String> = changed
                .iter()
                .filter(|r| r.key != keys.hostname)
                .map(|r| format!("`{r}`"))
                .collect();
            return Err(Reject::Types(if matching == 0 {
                format!("no instance type matches {}", wanted.join(" and "))
            } else if roomy == 0 {
                format!("no instance type has room for {total}")
            } else {
                format!(
                    "no instance type both matches {} and has room for {total} ({matching} match, {roomy} have room)",
                    wanted.join(" and ")
                )
            }));
        }
        check_min_values(&reqs, &remaining, types).map_err(Reject::Types)?;
        if remaining.len() != self.types.len() {
            self.max_alloc = max_allocatable(&remaining, types);
        }
        self.types = remaining;
        self.requests = total;
        self.requirements = reqs;
        self.pods.push(p);
        self.host_ports.extend(pod.pod.host_ports.iter().copied());
        topology.record(&pod.pod, &template.taints, &self.requirements, true);
        Ok(())
    }
}

/// Karpenter's `SatisfiesMinValues`: enough distinct values of each key
/// with `minValues` among the remaining types.
pub(crate) fn check_min_values(
    reqs: &Requirements,
    list: &[u32],
    types: &Types,
) -> Result<(), String> {
    for r in reqs.iter() {
        let Some(min) = r.min_values else { continue };
        let mut seen: Vec<Sym> = Vec::new();
        for &t in list {
            if let Some(tr) = types.list[t as usize].requirements.get(r.key)
                && !tr.is_complement()
            {
                seen.extend(tr.values().iter().copied().filter(|v| r.has(*v)));
            }
        }
        seen.sort_unstable();
        seen.dedup();
        if seen.len() < min as usize {
            return Err(format!(
                "minValues: `{}` needs at least {min} distinct values but the fitting instance types have {}",
                r.key,
                seen.len()
            ));
        }
    }
    Ok(())
}

/// A node that exists or is launching, as a place for pods.
#[derive(Debug, Clone)]
pub(crate) struct Existing {
    pub node: NodeIndex,
    pub name: Sym,
    pub initialized: bool,
    /// Shared until a pod narrows it: what-if solves clone every node.
    pub requirements: std::sync::Arc<Requirements>,
    taints: Vec<Taint>,
    available: Resources,
    requests: Resources,
    host_ports: Vec<HostPort>,
    pub pods: Vec<PodIndex>,
}

impl Existing {
    /// `labels` is the node's labels as requirements.
    pub fn new(
        index: NodeIndex,
        node: &Node,
        labels: &Requirements,
        daemon_sets: &[DaemonSet],
    ) -> Self {
        let mut requirements = labels.clone();
        let hostname = Sym::new(labels::HOSTNAME);
        if !requirements.has(hostname) {
            requirements.add(Requirement::single(hostname, node.name));
        }
        let taints: Vec<Taint> = node
            .taints
            .iter()
            .filter(|t| !labels::is_ephemeral_taint(t.key.as_str()))
            .filter(|t| node.initialized || !node.startup_taints.contains(t))
            .copied()
            .collect();
        let mut used = Resources::default();
        let mut host_ports = Vec::new();
        for p in &node.pods {
            used.add(&p.requests);
            used.pods += 1;
            host_ports.extend(p.host_ports.iter().copied());
        }
        // DaemonSet pods that will still arrive on a launching node.
        let mut requests = Resources::default();
        for ds in daemon_sets {
            let present = node.pods.iter().any(|p| p.daemon_set() == Some(ds.name));
            if !present && daemon_runs_on(&ds.pod, &node.taints, &requirements, false) {
                requests.add(&ds.pod.requests);
                requests.pods += 1;
                host_ports.extend(ds.pod.host_ports.iter().copied());
            }
        }
        Existing {
            node: index,
            name: node.name,
            initialized: node.initialized,
            requirements: std::sync::Arc::new(requirements),
            taints,
            available: node.allocatable.minus(&used),
            requests,
            host_ports,
            pods: Vec::new(),
        }
    }

    /// CPU and memory still free.
    pub fn headroom(&self) -> (i64, i64) {
        (
            self.available.cpu - self.requests.cpu,
            self.available.memory - self.requests.memory,
        )
    }

    pub fn hostname(&self, key: Sym) -> Sym {
        self.requirements
            .get(key)
            .and_then(|r| r.single_value())
            .unwrap_or(self.name)
    }

    /// Places pod `p` here if it fits; existing nodes are only ever
    /// accepted or skipped, so no reason is kept.
    pub fn try_add(&mut self, p: PodIndex, pod: &PodState, topology: &mut Topology) -> bool {
        if !self.requests.fits_with(&pod.requests, &self.available)
            || untolerated(&self.taints, &pod.pod.tolerations).is_some()
            || port_conflict(&self.host_ports, &pod.pod).is_some()
            || self
                .requirements
                .compatible(&pod.requirements, false, "the node")
                .is_err()
        {
            return false;
        }
        // Check topology against the node as it is before copying anything:
        // most attempts end here.
        let merged;
        let base: &Requirements = if pod.requirements.is_empty() {
            &self.requirements
        } else {
            let mut r = (*self.requirements).clone();
            r.add_all(&pod.requirements);
            merged = r;
            &merged
        };
        let mut topo = None;
        if topology.constrains(p) {
            let Ok(t) = topology.add_requirements(p, &pod.pod, &pod.strict, base) else {
                return false;
            };
            if base.compatible(&t, false, "the node").is_err() {
                return false;
            }
            topo = Some(t);
        }
        // A node's labels are single values: a requirement that admits them
        // changes nothing, so the shared copy is kept whenever possible.
        let narrows = !pod.requirements.is_empty()
            || topo
                .as_ref()
                .is_some_and(|t| t.iter().any(|r| self.requirements.get(r.key) != Some(r)));
        if narrows {
            let mut reqs = base.clone();
            if let Some(t) = &topo {
                reqs.add_all(t);
            }
            self.requirements = std::sync::Arc::new(reqs);
        }
        self.requests.add(&pod.requests);
        self.pods.push(p);
        self.host_ports.extend(pod.pod.host_ports.iter().copied());
        topology.record(&pod.pod, &self.taints, &self.requirements, false);
        true
    }
}
