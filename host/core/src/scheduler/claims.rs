//! Where pods can go: existing nodes, planned NodeClaims and the NodePool
//! templates new NodeClaims come from.

use std::collections::HashMap;
use std::sync::Arc;

use crate::catalog::compiled::{CompiledType, Types};
use crate::labels::{self, WellKnown};
use crate::model::{
    DaemonSet, HostPort, Node, NodePool, Pod, Taint, TaintEffect, Toleration, TolerationOperator,
    untolerated,
};
use crate::nodeclaim::{INITIALIZED_LABEL, REGISTERED_LABEL};
use crate::requirements::{Requirement, Requirements};
use crate::resources::Resources;
use crate::sym::Sym;

use super::index::{NodeIndex, PodIndex};
use super::pods::PodState;
use super::topology::{Topology, Universe};

/// A DaemonSet pod tolerates PreferNoSchedule taints: Karpenter adds the
/// toleration, since a daemon does not honour the preference.
fn daemon_tolerates(pod: &Pod, taints: &[Taint]) -> bool {
    let mut tolerations = pod.tolerations.clone();
    tolerations.push(Toleration {
        key: None,
        operator: TolerationOperator::Exists,
        value: None,
        effect: Some(TaintEffect::PreferNoSchedule),
    });
    untolerated(taints, &tolerations).is_none()
}

/// A DaemonSet pod's node requirements: its node selector and, when it has
/// required node affinity, each term with the selector (any may match).
fn daemon_terms(pod: &Pod) -> Vec<Requirements> {
    let base = Requirements::from_labels(pod.node_selector.iter().map(|(k, v)| (k, v)));
    if pod.required_node_affinity.is_empty() {
        return vec![base];
    }
    pod.required_node_affinity
        .iter()
        .filter_map(|t| Requirements::from_terms(t).ok())
        .map(|mut r| {
            r.add_all(&base);
            r
        })
        .collect()
}

/// Whether a DaemonSet's pods would run on nodes with these taints and
/// requirements (Karpenter tolerates PreferNoSchedule for daemons and tries
/// each required node-affinity term).
fn daemon_runs_on(
    pod: &Pod,
    taints: &[Taint],
    requirements: &Requirements,
    well_known: Option<WellKnown<'_>>,
) -> bool {
    daemon_tolerates(pod, taints)
        && daemon_terms(pod)
            .iter()
            .any(|t| requirements.compatible_with(t, well_known, "").is_ok())
}

/// Whether a DaemonSet with pod template `pod` runs on `node`, by its
/// labels and taints: the rule the scheduler applies for DaemonSet overhead,
/// for whoever places DaemonSet pods.
pub fn daemon_schedules_on(pod: &Pod, node: &Node) -> bool {
    let requirements = Requirements::from_labels(node.labels.iter().map(|(k, v)| (k, v)));
    daemon_runs_on(pod, &node.taints, &requirements, None)
}

/// The labels Karpenter puts on every node it launches once it registers
/// and initialises. Deciding which DaemonSets a node not yet initialised
/// will run, they count as set, as Karpenter adds them to the template for
/// this check: a DaemonSet that selects them will be there.
fn lifecycle_labels() -> [Requirement; 2] {
    let yes = Sym::new("true");
    [
        Requirement::single(Sym::new(REGISTERED_LABEL), yes),
        Requirement::single(Sym::new(INITIALIZED_LABEL), yes),
    ]
}

/// What the DaemonSets that run on some instance types of a NodePool add to
/// each of its nodes.
#[derive(Debug, Clone, Default)]
pub(crate) struct DaemonGroup {
    pub overhead: Resources,
    pub ports: Vec<HostPort>,
}

/// DaemonSet overhead and host ports per instance type, as Karpenter
/// computes them: which DaemonSets run on a node depends on its type (one
/// for arm64 nodes only, say), so a type gets only the overhead and ports
/// of the DaemonSets that run on it. Types that run the same DaemonSets
/// share a group; most NodePools have one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Daemons {
    /// Never empty.
    groups: Vec<DaemonGroup>,
    /// Each catalog type's group, by catalog index; empty when there is one
    /// group.
    group_of: Vec<u16>,
}

impl Daemons {
    /// For the types `list` of a template with `requirements` (lifecycle
    /// labels included) and `taints` (start-up taints included).
    fn new(
        daemon_sets: &[DaemonSet],
        taints: &[Taint],
        requirements: &Requirements,
        list: &[u32],
        types: &Types,
    ) -> Self {
        let well_known = types.well_known();
        let candidates: Vec<(&DaemonSet, Vec<Requirements>)> = daemon_sets
            .iter()
            .filter(|ds| daemon_tolerates(&ds.pod, taints))
            .map(|ds| (ds, daemon_terms(&ds.pod)))
            .collect();
        let group_for = |runs: &[bool], groups: &mut Vec<(Vec<bool>, DaemonGroup)>| -> u16 {
            if let Some(g) = groups.iter().position(|(r, _)| r == runs) {
                return g as u16;
            }
            let mut group = DaemonGroup::default();
            for ((ds, _), _) in candidates.iter().zip(runs).filter(|(_, r)| **r) {
                group.overhead.add(&ds.pod.requests);
                group.overhead.pods += 1;
                group.ports.extend(ds.pod.host_ports.iter().copied());
            }
            groups.push((runs.to_vec(), group));
            (groups.len() - 1) as u16
        };
        // Only the keys the DaemonSets ask about can tell types apart: types
        // alike on those keys share an answer, so each distinct answer is
        // worked out once.
        let mut keys: Vec<Sym> = candidates
            .iter()
            .flat_map(|(_, terms)| terms.iter().flat_map(|t| t.iter().map(|r| r.key)))
            .collect();
        keys.sort();
        keys.dedup();
        let mut groups: Vec<(Vec<bool>, DaemonGroup)> = Vec::new();
        let mut seen: HashMap<Vec<Option<&Requirement>>, u16> = HashMap::new();
        let mut group_of = vec![0u16; types.list.len()];
        for &t in list {
            let own = &types.list[t as usize].requirements;
            let signature: Vec<Option<&Requirement>> = keys.iter().map(|&k| own.get(k)).collect();
            let g = match seen.get(&signature) {
                Some(&g) => g,
                None => {
                    let runs: Vec<bool> = candidates
                        .iter()
                        .map(|(_, terms)| {
                            terms
                                .iter()
                                .any(|term| fits(term, requirements, own, well_known))
                        })
                        .collect();
                    let g = group_for(&runs, &mut groups);
                    seen.insert(signature, g);
                    g
                }
            };
            group_of[t as usize] = g;
        }
        if groups.is_empty() {
            groups.push((Vec::new(), DaemonGroup::default()));
        }
        if groups.len() == 1 {
            group_of = Vec::new();
        }
        Daemons {
            groups: groups.into_iter().map(|(_, g)| g).collect(),
            group_of,
        }
    }

    /// The group of catalog type `t`.
    pub fn group(&self, t: u32) -> usize {
        self.group_of.get(t as usize).map_or(0, |&g| g as usize)
    }

    pub fn groups(&self) -> &[DaemonGroup] {
        &self.groups
    }

    pub fn uniform(&self) -> bool {
        self.groups.len() == 1
    }

    /// Per-resource least overhead over `types`' groups: what any node of
    /// them will at least carry.
    pub fn least(&self, types: &[u32]) -> Resources {
        if self.uniform() {
            return self.groups[0].overhead.clone();
        }
        let mut used = vec![false; self.groups.len()];
        for &t in types {
            used[self.group(t)] = true;
        }
        let mut least: Option<Resources> = None;
        for (g, _) in used.iter().enumerate().filter(|(_, u)| **u) {
            let o = &self.groups[g].overhead;
            least = Some(match least {
                None => o.clone(),
                Some(l) => min_resources(&l, o),
            });
        }
        least.unwrap_or_default()
    }

    /// For messages: the overhead, or its range over instance types.
    pub fn describe(&self) -> Option<String> {
        let nonzero = |r: &Resources| r.cpu != 0 || r.memory != 0;
        if self.uniform() {
            let o = &self.groups[0].overhead;
            return nonzero(o).then(|| format!("DaemonSet overhead {o}"));
        }
        let mut by_size: Vec<&Resources> = self.groups.iter().map(|g| &g.overhead).collect();
        by_size.sort_by_key(|r| (r.cpu, r.memory));
        let (low, high) = (by_size[0], by_size[by_size.len() - 1]);
        nonzero(high).then(|| format!("DaemonSet overhead {low} to {high} by instance type"))
    }
}

/// Per-resource minimum.
fn min_resources(a: &Resources, b: &Resources) -> Resources {
    let mut r = Resources {
        cpu: a.cpu.min(b.cpu),
        memory: a.memory.min(b.memory),
        pods: a.pods.min(b.pods),
        ephemeral: a.ephemeral.min(b.ephemeral),
        extended: Vec::new(),
    };
    for &(name, v) in &a.extended {
        let m = v.min(b.extended(name));
        if m != 0 {
            r.set(name.as_str(), m);
        }
    }
    r
}

/// Whether `term` (a DaemonSet's) is compatible with a template's
/// `requirements` narrowed by an instance type's `own`, without building
/// the merged set: only the term's keys matter.
fn fits(
    term: &Requirements,
    requirements: &Requirements,
    own: &Requirements,
    well_known: WellKnown<'_>,
) -> bool {
    term.iter()
        .all(|r| match (requirements.get(r.key), own.get(r.key)) {
            (None, None) => r.is_negative() || well_known.contains(r.key),
            (Some(x), None) | (None, Some(x)) => x.admits(r),
            (Some(x), Some(y)) => x.intersection(y).admits(r),
        })
}

/// A NodePool compiled for launching.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub name: Sym,
    pub node_class: Sym,
    pub weight: i32,
    pub requirements: Requirements,
    pub taints: Vec<Taint>,
    /// Compatible instance types with an available offering (shared: what-if
    /// solves copy templates).
    pub types: Arc<Vec<u32>>,
    /// The catalog's types sized as the pool's node class sizes them (its
    /// kubelet settings): what this pool's NodeClaims fit pods against.
    pub sized: Arc<Types>,
    /// DaemonSet overhead and host ports, per instance type.
    pub daemons: Arc<Daemons>,
    /// What the pool's limits still allow, per limited resource.
    pub remaining: Option<Vec<(Sym, i64)>>,
}

const NODES: &str = "nodes";

impl Template {
    /// `types` is the catalog compiled for the pool's node class.
    pub fn new(
        pool: &NodePool,
        types: &Arc<Types>,
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
        let mut with_lifecycle = requirements.clone();
        for r in lifecycle_labels() {
            with_lifecycle.add(r);
        }
        let daemons = Daemons::new(daemon_sets, &startup, &with_lifecycle, &list, types);
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
            node_class: Sym::new(&pool.node_class_ref.name),
            weight: pool.weight,
            requirements,
            taints: pool.taints.clone(),
            types: Arc::new(list),
            sized: types.clone(),
            daemons: Arc::new(daemons),
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
    pub fn types_within_limits(&self) -> Result<Vec<u32>, String> {
        let types = &self.sized;
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
    pub fn reserve(&mut self, claim: &Claim) {
        let types = &self.sized;
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
    /// The pods' requests.
    pod_requests: Resources,
    /// The pods' requests plus the least DaemonSet overhead over `types`:
    /// what the node needs whichever of them it becomes.
    pub requests: Resources,
    pub pods: Vec<PodIndex>,
    /// Instance types that still fit, by index.
    pub types: Vec<u32>,
    /// Per-resource maximum allocatable over `types`: a quick "no" for pods
    /// that cannot fit any of them.
    max_alloc: Resources,
    /// The pods' host ports; the DaemonSets' are per instance type.
    host_ports: Vec<HostPort>,
    daemons: Arc<Daemons>,
    /// `minValuesPolicy: BestEffort` lowered a `minValues` to what the
    /// instance types can meet.
    pub min_values_relaxed: bool,
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
            pod_requests: Resources::default(),
            requests: template.daemons.least(&options),
            pods: Vec::new(),
            max_alloc: max_allocatable(&options, types),
            types: options,
            host_ports: Vec::new(),
            daemons: template.daemons.clone(),
            min_values_relaxed: false,
        }
    }

    /// Adds pod `p` if the NodeClaim can take it. With `relax_min_values`
    /// (`minValuesPolicy: BestEffort`, for the pod that starts the
    /// NodeClaim, as Karpenter does) a `minValues` the fitting types cannot
    /// meet is lowered to what they can.
    pub fn try_add(
        &mut self,
        p: PodIndex,
        pod: &PodState,
        types: &Types,
        templates: &[Template],
        topology: &mut Topology,
        relax_min_values: bool,
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
        // A type whose DaemonSets hold a port the pod wants is out.
        let daemons = &self.daemons;
        let blocked: Vec<Option<HostPort>> = if pod.pod.host_ports.is_empty() {
            Vec::new()
        } else {
            daemons
                .groups()
                .iter()
                .map(|g| port_conflict(&g.ports, &pod.pod))
                .collect()
        };
        let is_blocked = |t: u32| blocked.get(daemons.group(t)).is_some_and(Option::is_some);
        if !blocked.is_empty() && self.types.iter().all(|&t| is_blocked(t)) {
            let port = self
                .types
                .first()
                .and_then(|&t| blocked[daemons.group(t)])
                .expect("a blocked type");
            return Err(Reject::HostPort(port));
        }
        let well_known = Some(types.well_known());
        self.requirements
            .compatible_with(&pod.requirements, well_known, "the NodePool")
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
            base.compatible_with(&topo, well_known, "the NodePool")
                .map_err(Reject::Requirements)?;
            Some(topo)
        } else {
            None
        };
        // What a node of each DaemonSet group would need with this pod.
        let pod_requests = self.pod_requests.plus(&pod.requests);
        let totals: Vec<Resources> = if daemons.uniform() {
            vec![self.requests.plus(&pod.requests)]
        } else {
            daemons
                .groups()
                .iter()
                .map(|g| pod_requests.plus(&g.overhead))
                .collect()
        };
        let room = |t: u32| totals[daemons.group(t)].fits_in(&types.list[t as usize].allocatable);
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
            .filter(|&t| room(t) && !is_blocked(t) && matches(&types.list[t as usize]))
            .collect();
        if remaining.is_empty() {
            let total = if daemons.uniform() {
                totals[0].clone()
            } else {
                pod_requests.plus(&daemons.least(&self.types))
            };
            let matching = self
                .types
                .iter()
                .filter(|&&t| matches(&types.list[t as usize]))
                .count();
            let roomy = self.types.iter().filter(|&&t| room(t)).count();
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
        let mut relaxed = false;
        if let Err(e) = check_min_values(&reqs, &remaining, types) {
            if !(relax_min_values && self.pods.is_empty()) {
                return Err(Reject::Types(e));
            }
            relaxed = relax_min_values_to(&mut reqs, &remaining, types);
        }
        if remaining.len() != self.types.len() {
            self.max_alloc = max_allocatable(&remaining, types);
        }
        self.requests = if daemons.uniform() {
            totals.into_iter().next().expect("one group")
        } else {
            pod_requests.plus(&daemons.least(&remaining))
        };
        self.pod_requests = pod_requests;
        self.types = remaining;
        self.requirements = reqs;
        self.min_values_relaxed |= relaxed;
        self.pods.push(p);
        self.host_ports.extend(pod.pod.host_ports.iter().copied());
        topology.record(&pod.pod, &template.taints, &self.requirements, well_known);
        Ok(())
    }
}

/// The distinct values of `key` (allowed by `r`) over the types `list`.
fn distinct_values(r: &Requirement, list: &[u32], types: &Types) -> usize {
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
    seen.len()
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
        let have = distinct_values(r, list, types);
        if have < min as usize {
            return Err(format!(
                "minValues: `{}` needs at least {min} distinct values but the fitting instance types have {have}",
                r.key
            ));
        }
    }
    Ok(())
}

/// `minValuesPolicy: BestEffort`: lowers each `minValues` the types `list`
/// cannot meet to the distinct values they have, as Karpenter relaxes
/// them. True when one was lowered.
pub(crate) fn relax_min_values_to(reqs: &mut Requirements, list: &[u32], types: &Types) -> bool {
    let lowered: Vec<Requirement> = reqs
        .iter()
        .filter_map(|r| {
            let min = r.min_values?;
            let have = distinct_values(r, list, types);
            (have < min as usize).then(|| r.clone().with_min_values(Some(have as u32)))
        })
        .collect();
    let relaxed = !lowered.is_empty();
    for r in lowered {
        reqs.set(r);
    }
    relaxed
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
        // DaemonSet pods that will still arrive on a launching node, which
        // will carry the lifecycle labels by then.
        let mut requests = Resources::default();
        let mut launching = None;
        let daemon_requirements = if node.initialized {
            &requirements
        } else {
            launching.insert({
                let mut r = requirements.clone();
                for l in lifecycle_labels() {
                    if !r.has(l.key) {
                        r.add(l);
                    }
                }
                r
            })
        };
        for ds in daemon_sets {
            let present = node.pods.iter().any(|p| p.daemon_set() == Some(ds.name));
            if !present && daemon_runs_on(&ds.pod, &node.taints, daemon_requirements, None) {
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

    /// Whether pod `p` fits here, without placing it; existing nodes are
    /// only ever accepted or skipped, so no reason is kept.
    pub fn admit(&self, p: PodIndex, pod: &PodState, topology: &Topology) -> Option<Admitted> {
        if !self.requests.fits_with(&pod.requests, &self.available)
            || untolerated(&self.taints, &pod.pod.tolerations).is_some()
            || port_conflict(&self.host_ports, &pod.pod).is_some()
            || self
                .requirements
                .compatible(&pod.requirements, false, "the node")
                .is_err()
        {
            return None;
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
            let t = topology
                .add_requirements(p, &pod.pod, &pod.strict, base)
                .ok()?;
            if base.compatible(&t, false, "the node").is_err() {
                return None;
            }
            topo = Some(t);
        }
        // A node's labels are single values: a requirement that admits them
        // changes nothing, so the shared copy is kept whenever possible.
        let narrows = !pod.requirements.is_empty()
            || topo
                .as_ref()
                .is_some_and(|t| t.iter().any(|r| self.requirements.get(r.key) != Some(r)));
        let requirements = narrows.then(|| {
            let mut reqs = base.clone();
            if let Some(t) = &topo {
                reqs.add_all(t);
            }
            reqs
        });
        Some(Admitted { requirements })
    }

    /// Places pod `p`, which [`Existing::admit`] accepted.
    pub fn add(
        &mut self,
        p: PodIndex,
        pod: &PodState,
        admitted: Admitted,
        topology: &mut Topology,
    ) {
        if let Some(reqs) = admitted.requirements {
            self.requirements = std::sync::Arc::new(reqs);
        }
        self.requests.add(&pod.requests);
        self.pods.push(p);
        self.host_ports.extend(pod.pod.host_ports.iter().copied());
        topology.record(&pod.pod, &self.taints, &self.requirements, None);
    }
}

/// An existing node's answer to a pod it can take.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// The node's requirements with the pod, when they narrow.
    requirements: Option<Requirements>,
}
