//! The provisioning simulation: where pending pods fit, on existing nodes,
//! on NodeClaims being launched, or on new NodeClaims from NodePools.
//!
//! This follows Karpenter's scheduler: pods are taken largest first (CPU,
//! then memory); each goes to the first existing node that takes it
//! (initialized nodes first, then in-flight ones), else to the planned
//! NodeClaim with the fewest pods that takes it, else to a new NodeClaim from
//! the heaviest NodePool that can host it. A NodeClaim keeps every instance
//! type that still fits, narrowing as pods join. A pod that fits nowhere has
//! its preferences relaxed one at a time and goes to the back of the queue;
//! the queue stops when a full pass places nothing.

mod claims;
mod domains;
#[cfg(feature = "testing")]
pub mod fixtures;
mod index;
mod launch;
mod offerings;
mod plan;
mod pods;
mod topology;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap as HashMap;

pub(crate) use claims::check_min_values;
pub use claims::daemon_schedules_on;
pub use index::NodeIndex;
pub(crate) use index::index_by;
pub(crate) use launch::DictionaryIndex;
pub use launch::{LaunchChoice, LaunchDecision, Provisioning, choose_launches, provision};
pub use offerings::compatible_offerings;
pub use plan::{Binding, NodeClaimPlan, OfferingRef, Placement, Plan, Unschedulable};

use crate::catalog::Catalog;
use crate::catalog::compiled::Types;
use crate::model::{DaemonSet, Namespace, Node, NodePool, Pod, PodDisruptionBudget, TaintEffect};

use claims::{Claim, Existing, Template};
use domains::KeyIndex;
use index::{ClaimIndex, PodIndex};
use pods::{PodState, queue_order};
use topology::{BoundPod, GroupCache, Screen, Topology, Universe};

/// Karpenter caps a NodeClaim's instance types at this many, cheapest first.
pub const MAX_INSTANCE_TYPES: usize = 600;

/// How preferences are treated (Karpenter's `--preference-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreferencePolicy {
    /// Preferences are treated as requirements until relaxed.
    #[default]
    Respect,
    /// Preferences are dropped up front.
    Ignore,
}

/// What happens when a NodeClaim's instance types cannot meet a
/// `minValues` (Karpenter's `--min-values-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MinValuesPolicy {
    /// The pod cannot go there.
    #[default]
    Strict,
    /// The requirement relaxes to what the types can meet, and the NodeClaim
    /// says so (`karpenter.sh/nodeclaim-min-values-relaxed: "true"`).
    BestEffort,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub max_instance_types: usize,
    pub preference_policy: PreferencePolicy,
    pub min_values_policy: MinValuesPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_instance_types: MAX_INSTANCE_TYPES,
            preference_policy: PreferencePolicy::Respect,
            min_values_policy: MinValuesPolicy::Strict,
        }
    }
}

/// Everything a scheduling decision reads.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub node_pools: Vec<NodePool>,
    /// Instance types every NodePool may launch (one EC2NodeClass).
    pub catalog: Arc<Catalog>,
    /// Existing nodes and in-flight NodeClaims, with their bound pods.
    pub nodes: Vec<Node>,
    pub daemon_sets: Vec<DaemonSet>,
    pub namespaces: Vec<Namespace>,
    /// PodDisruptionBudgets, for disruption decisions.
    pub pdbs: Vec<PodDisruptionBudget>,
    pub settings: Settings,
}

impl Snapshot {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            node_pools: Vec::new(),
            catalog,
            nodes: Vec::new(),
            daemon_sets: Vec::new(),
            namespaces: Vec::new(),
            pdbs: Vec::new(),
            settings: Settings::default(),
        }
    }
}

/// Simulates scheduling `pending` onto the cluster in `snapshot`.
pub fn solve(snapshot: &Snapshot, pending: &[Pod]) -> Plan {
    let prepared = Prepared::new(snapshot);
    Scheduler::new(snapshot, &prepared, pending, &[], Search::Indexed).run(None)
}

/// What-if: schedules `pending` onto the cluster as if the nodes `removed`
/// were gone, reusing `prepared`. This is
/// how disruption proves a node's pods fit elsewhere. With `price_cap`,
/// new NodeClaims keep only offerings cheaper than it.
pub fn solve_without(
    snapshot: &Snapshot,
    prepared: &Prepared,
    pending: &[Pod],
    removed: &[NodeIndex],
    price_cap: Option<f64>,
) -> Plan {
    let what_if = WhatIf {
        removed,
        price_cap,
        ..WhatIf::default()
    };
    solve_what_if(snapshot, prepared, pending, &what_if)
}

/// How a what-if solve sees the cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct WhatIf<'a> {
    /// Nodes treated as gone.
    pub removed: &'a [NodeIndex],
    /// Existing nodes that take none of the moved pods, in order:
    /// consolidation does not fill a node still settling after its last pod
    /// event.
    pub closed: &'a [NodeIndex],
    /// How many pods, from the front of the list, are being moved; the rest
    /// (pods of nodes already leaving) may go to a closed node too.
    pub moved: usize,
    /// New NodeClaims keep only offerings cheaper than this.
    pub price_cap: Option<f64>,
}

/// What-if: schedules `pending` onto the cluster as `what_if` changes it,
/// reusing `prepared`.
pub fn solve_what_if(
    snapshot: &Snapshot,
    prepared: &Prepared,
    pending: &[Pod],
    what_if: &WhatIf<'_>,
) -> Plan {
    debug_assert!(what_if.closed.is_sorted(), "closed nodes in order");
    let mut s = Scheduler::new(
        snapshot,
        prepared,
        pending,
        what_if.removed,
        Search::Indexed,
    );
    if what_if.moved > 0 && !what_if.closed.is_empty() {
        s.closed = prepared
            .existing
            .iter()
            .map(|e| what_if.closed.binary_search(&e.node).is_ok())
            .collect();
        s.moved = what_if.moved;
    }
    s.run(what_if.price_cap)
}

/// [`solve_without`] trying every existing node and planned NodeClaim in
/// order, without screening them by domain: the plain search the indexed
/// one must always agree with, for tests.
#[cfg(feature = "testing")]
pub fn solve_by_scan(
    snapshot: &Snapshot,
    prepared: &Prepared,
    pending: &[Pod],
    removed: &[NodeIndex],
    price_cap: Option<f64>,
) -> Plan {
    Scheduler::new(snapshot, prepared, pending, removed, Search::Scan).run(price_cap)
}

/// How a pod looks for a place among existing nodes and planned NodeClaims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Search {
    /// Candidates screened by their topology domains, and listed by domain
    /// when a constraint admits few: the same answer, without visiting
    /// every candidate.
    Indexed,
    /// Every candidate tried in order.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    Scan,
}

/// What a solve compiles from a snapshot, once: instance types, NodePool
/// templates, topology domains, existing nodes and bound pods. What-if
/// solves over the same snapshot share it.
#[derive(Debug)]
pub struct Prepared {
    types: Arc<Types>,
    templates: Vec<Template>,
    template_errors: Vec<String>,
    universe: Arc<Universe>,
    existing: Vec<Existing>,
    /// Each existing node's hostname domain, in `existing` order.
    hostnames: Vec<crate::sym::Sym>,
    bound: Arc<Vec<BoundPod>>,
    /// Bound pods with required anti-affinity (indices into `bound`).
    anti: Vec<usize>,
    /// Shared group counts, for snapshots solved more than once.
    groups: Option<Arc<GroupCache>>,
    /// Existing nodes by domain, per key, made when a solve first asks.
    /// A node's labels are single values that pods never change, so every
    /// solve over the snapshot shares them.
    existing_domains: Mutex<HashMap<crate::sym::Sym, Arc<KeyIndex<u32>>>>,
    tolerate_prefer_no_schedule: bool,
}

impl Prepared {
    /// For solving `snapshot` more than once (what-ifs): topology group
    /// counts are kept and shared.
    pub fn reusable(snapshot: &Snapshot) -> Self {
        let mut p = Self::new(snapshot);
        p.groups = Some(Arc::new(GroupCache::new(&p.bound, snapshot.nodes.len())));
        p
    }

    pub fn new(snapshot: &Snapshot) -> Self {
        let types = snapshot.catalog.compiled();
        let mut universe = Universe::default();
        let mut templates: Vec<Template> = Vec::new();
        let mut template_errors = Vec::new();
        for pool in &snapshot.node_pools {
            let sized = snapshot.catalog.compiled_for(&pool.node_class_ref.name);
            match Template::new(pool, &sized, &snapshot.daemon_sets, &snapshot.nodes) {
                Ok(t) => {
                    t.add_domains(&sized, &mut universe);
                    templates.push(t);
                }
                Err(e) => template_errors.push(e),
            }
        }
        // Heavier NodePools first; by name among equals.
        templates.sort_by(|a, b| b.weight.cmp(&a.weight).then(a.name.cmp(&b.name)));
        let tolerate_prefer_no_schedule = snapshot.node_pools.iter().any(|p| {
            p.taints
                .iter()
                .any(|t| t.effect == TaintEffect::PreferNoSchedule)
        });
        // Each node's labels as requirements, once: existing nodes and the
        // pods bound to them share them.
        let node_requirements: Vec<Arc<crate::requirements::Requirements>> = snapshot
            .nodes
            .iter()
            .map(|n| {
                Arc::new(crate::requirements::Requirements::from_labels(
                    n.labels.iter().map(|(k, v)| (k, v)),
                ))
            })
            .collect();
        let mut existing: Vec<Existing> = snapshot
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.marked_for_deletion)
            .map(|(i, n)| {
                Existing::new(
                    NodeIndex(i),
                    n,
                    &node_requirements[i],
                    &snapshot.daemon_sets,
                )
            })
            .collect();
        // Initialized nodes first, in-flight ones after, each by name.
        existing.sort_by(|a, b| b.initialized.cmp(&a.initialized).then(a.name.cmp(&b.name)));
        // Sized at once: an entry per bound pod (the pod itself is shared
        // with the snapshot), grown by doubling, would hold up to twice the
        // room while it grows.
        let mut bound: Vec<BoundPod> =
            Vec::with_capacity(snapshot.nodes.iter().map(|n| n.pods.len()).sum());
        bound.extend(snapshot.nodes.iter().enumerate().flat_map(|(i, n)| {
            let reqs = node_requirements[i].clone();
            let labels = Arc::new(n.labels.clone());
            let taints = Arc::new(n.taints.clone());
            n.pods.iter().map(move |p| BoundPod {
                pod: p.clone(),
                node: NodeIndex(i),
                node_labels: labels.clone(),
                node_requirements: reqs.clone(),
                node_taints: taints.clone(),
                node_name: n.name,
            })
        }));
        let anti: Vec<usize> = (0..bound.len())
            .filter(|&i| !bound[i].pod.pod_anti_affinity.is_empty())
            .collect();
        let hostname = crate::sym::Sym::new(crate::labels::HOSTNAME);
        let hostnames = existing.iter().map(|e| e.hostname(hostname)).collect();
        for n in &snapshot.nodes {
            for &(k, v) in &n.labels {
                universe.insert(k, v, &n.taints);
            }
        }
        Prepared {
            types,
            templates,
            template_errors,
            universe: Arc::new(universe),
            existing,
            hostnames,
            bound: Arc::new(bound),
            anti,
            groups: None,
            existing_domains: Mutex::default(),
            tolerate_prefer_no_schedule,
        }
    }

    /// Existing nodes (by position in `existing`) by their domain of `key`.
    fn existing_index(&self, key: crate::sym::Sym) -> Arc<KeyIndex<u32>> {
        let mut map = self
            .existing_domains
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(key)
            .or_insert_with(|| {
                let mut index = KeyIndex::new(key);
                for (i, e) in self.existing.iter().enumerate() {
                    index.push(i as u32, &e.requirements);
                }
                Arc::new(index)
            })
            .clone()
    }
}

struct Scheduler<'a> {
    snapshot: &'a Snapshot,
    prepared: &'a Prepared,
    search: Search,
    pods: Vec<PodState>,
    /// Pods whose constraints could not be compiled, with the error.
    invalid: Vec<(PodIndex, String)>,
    types: Arc<Types>,
    templates: Vec<Template>,
    /// Per existing node of `prepared`: (cpu, memory) still free; never
    /// enough for a node this solve leaves out.
    headroom: Vec<(i64, i64)>,
    /// Existing nodes that took pods in this solve; the others are read
    /// from `prepared` (what-if solves would otherwise copy every node).
    changed: HashMap<usize, Existing>,
    /// Existing nodes by domain, per key asked about so far.
    existing_domains: HashMap<crate::sym::Sym, Arc<KeyIndex<u32>>>,
    claims: Vec<Claim>,
    /// (pod count, claim): the order planned NodeClaims are tried in.
    claim_order: BTreeSet<(usize, ClaimIndex)>,
    /// Planned NodeClaims by domain, per key asked about so far.
    claim_domains: HashMap<crate::sym::Sym, ClaimDomains>,
    topology: Topology,
    tolerate_prefer_no_schedule: bool,
    /// Placeholder hostnames already known to the topology.
    registered_placeholders: usize,
    /// Per existing node: closed to the first `moved` pods (empty when no
    /// node is).
    closed: Vec<bool>,
    moved: usize,
    /// Where each pod went: `Some(Place)` once placed.
    placed: Vec<Option<Place>>,
    errors: Vec<Option<String>>,
}

#[derive(Debug, Clone, Copy)]
enum Place {
    /// A position in [`Prepared::existing`] (not a [`NodeIndex`]: deleting
    /// nodes are not there).
    Existing(usize),
    Claim,
}

/// Planned NodeClaims by domain of one key, ordered as `claim_order`.
type ClaimDomains = KeyIndex<(usize, ClaimIndex)>;

/// Never room for anything: a node this solve leaves out.
const NO_ROOM: (i64, i64) = (i64::MIN, i64::MIN);

impl<'a> Scheduler<'a> {
    fn new(
        snapshot: &'a Snapshot,
        prepared: &'a Prepared,
        pending: &[Pod],
        removed: &[NodeIndex],
        search: Search,
    ) -> Self {
        let respect = snapshot.settings.preference_policy == PreferencePolicy::Respect;
        let mut pods = Vec::with_capacity(pending.len());
        let mut invalid = Vec::new();
        for (i, p) in pending.iter().enumerate() {
            match PodState::new(p, respect) {
                Ok(s) => pods.push(s),
                Err(e) => {
                    invalid.push((PodIndex(i), e.to_string()));
                    let mut bare = p.clone();
                    bare.required_node_affinity.clear();
                    bare.preferred_node_affinity.clear();
                    pods.push(PodState::new(&bare, respect).expect("no terms left to fail"));
                }
            }
        }
        let Prepared {
            types,
            templates,
            template_errors,
            universe,
            existing,
            hostnames,
            bound,
            anti,
            groups,
            existing_domains: _,
            tolerate_prefer_no_schedule,
        } = prepared;
        let headroom: Vec<(i64, i64)> = existing
            .iter()
            .map(|e| {
                if removed.contains(&e.node) {
                    NO_ROOM
                } else {
                    e.headroom()
                }
            })
            .collect();
        let templates = templates.clone();
        let mut topology = Topology::new(
            universe.clone(),
            snapshot.namespaces.clone(),
            bound.clone(),
            anti,
            groups.clone(),
            removed,
            pods.len(),
        );
        let hostname = crate::sym::Sym::new(crate::labels::HOSTNAME);
        topology.register_all(
            hostname,
            existing
                .iter()
                .zip(hostnames)
                .filter(|(e, _)| !removed.contains(&e.node))
                .map(|(_, &h)| h),
        );
        for (i, p) in pods.iter().enumerate() {
            topology.update(PodIndex(i), &p.pod, &p.strict_terms);
        }
        let pod_refs: Vec<&Pod> = pods.iter().map(|p| &p.pod).collect();
        topology.index_inverse(&pod_refs);
        let tolerate_prefer_no_schedule = *tolerate_prefer_no_schedule;

        let n = pods.len();
        let mut s = Scheduler {
            snapshot,
            prepared,
            search,
            pods,
            invalid,
            types: types.clone(),
            templates,
            headroom,
            changed: HashMap::default(),
            existing_domains: HashMap::default(),
            claims: Vec::new(),
            claim_order: BTreeSet::new(),
            claim_domains: HashMap::default(),
            topology,
            tolerate_prefer_no_schedule,
            registered_placeholders: 0,
            closed: Vec::new(),
            moved: 0,
            placed: vec![None; n],
            errors: vec![None; n],
        };
        if s.templates.is_empty() {
            let why = if snapshot.node_pools.is_empty() {
                "no NodePool exists; create one".to_string()
            } else {
                format!(
                    "no NodePool can launch anything: {}",
                    template_errors.join("; ")
                )
            };
            for e in s.errors.iter_mut() {
                *e = Some(why.clone());
            }
        }
        s
    }

    /// Existing node `i` as this solve has it.
    fn existing(&self, i: usize) -> &Existing {
        self.changed.get(&i).unwrap_or(&self.prepared.existing[i])
    }

    fn run(mut self, price_cap: Option<f64>) -> Plan {
        let mut order: Vec<PodIndex> = (0..self.pods.len()).map(PodIndex).collect();
        order.sort_by(|&a, &b| queue_order(&self.pods[a], &self.pods[b]));
        let invalid: Vec<PodIndex> = self.invalid.iter().map(|(i, _)| *i).collect();
        let mut queue: std::collections::VecDeque<PodIndex> =
            order.into_iter().filter(|i| !invalid.contains(i)).collect();
        // Queue length when each pod was last pushed back unchanged: seeing
        // the same length again means a whole pass placed nothing. A
        // relaxation starts a new epoch, which forgets every length at once.
        let mut epoch = 0usize;
        let mut last_len: Vec<Option<(usize, usize)>> = vec![None; self.pods.len()];
        while let Some(&p) = queue.front() {
            if last_len[p] == Some((epoch, queue.len())) {
                break;
            }
            queue.pop_front();
            match self.add(p) {
                Ok(place) => {
                    self.placed[p] = Some(place);
                    self.errors[p] = None;
                }
                Err(e) => {
                    self.errors[p] = Some(e);
                    let relaxed = self.pods[p].relax(self.tolerate_prefer_no_schedule);
                    queue.push_back(p);
                    if relaxed {
                        epoch += 1;
                        let ps = &self.pods[p];
                        self.topology.update(p, &ps.pod, &ps.strict_terms);
                    } else {
                        last_len[p] = Some((epoch, queue.len()));
                    }
                }
            }
        }
        plan::build(self, price_cap)
    }

    fn add(&mut self, p: PodIndex) -> Result<Place, String> {
        let screens = match self.search {
            Search::Indexed => {
                let pod = &self.pods[p];
                self.topology.screens(p, &pod.pod, &pod.strict)
            }
            Search::Scan => Vec::new(),
        };
        if let Some(i) = self.place_on_existing(p, &screens) {
            return Ok(Place::Existing(i));
        }
        if self.place_on_claim(p, &screens) {
            return Ok(Place::Claim);
        }
        if self.templates.is_empty() {
            return Err(self.errors[p]
                .clone()
                .unwrap_or_else(|| "no NodePool can launch anything".into()));
        }
        let mut why = Vec::new();
        for t in 0..self.templates.len() {
            let template = &self.templates[t];
            let hostname =
                crate::sym::Sym::new(&format!("hostname-placeholder-{:04}", self.claims.len()));
            let options = match template.types_within_limits() {
                Ok(o) => o,
                Err(e) => {
                    why.push(format!("NodePool `{}`: {e}", template.name));
                    continue;
                }
            };
            let mut claim = Claim::new(t, template, hostname, options, &template.sized);
            // One placeholder per planned NodeClaim; failed attempts reuse it.
            if self.registered_placeholders <= self.claims.len() {
                self.registered_placeholders = self.claims.len() + 1;
                self.topology
                    .register(crate::sym::Sym::new(crate::labels::HOSTNAME), hostname);
            }
            let relax = self.snapshot.settings.min_values_policy == MinValuesPolicy::BestEffort;
            match claim.try_add(
                p,
                &self.pods[p],
                &self.templates[t].sized,
                &self.templates,
                &mut self.topology,
                relax,
            ) {
                Ok(()) => {
                    self.templates[t].reserve(&claim);
                    let c = ClaimIndex(self.claims.len());
                    for index in self.claim_domains.values_mut() {
                        index.push((1, c), &claim.requirements);
                    }
                    self.claims.push(claim);
                    self.claim_order.insert((1, c));
                    return Ok(Place::Claim);
                }
                Err(e) => {
                    let e = e.describe(&self.topology);
                    let daemons = self.templates[t]
                        .daemons
                        .describe()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default();
                    why.push(format!(
                        "NodePool `{}`{daemons}: {e}",
                        self.templates[t].name
                    ));
                }
            }
        }
        Err(why.join("; "))
    }

    /// The screen admitting the fewest domains, and how many: listing its
    /// candidates starts by looking up each of them.
    fn cheapest_listing(&self, screens: &[Screen]) -> Option<(usize, usize)> {
        screens
            .iter()
            .enumerate()
            .filter_map(|(k, s)| Some((k, self.topology.admissible_len(s)?)))
            .min_by_key(|&(_, domains)| domains)
    }

    /// The first existing node, in order, that takes pod `p`. See
    /// [`Search::Indexed`]: nodes are tried in order for as long as setting
    /// up a listing would take, then only those in the domains a screen
    /// admits (and those without a domain) are, still in order. Nodes
    /// skipped would refuse the pod.
    fn place_on_existing(&mut self, p: PodIndex, screens: &[Screen]) -> Option<usize> {
        let n = self.headroom.len();
        if n == 0 {
            return None;
        }
        let indexes: Vec<Arc<KeyIndex<u32>>> = screens
            .iter()
            .map(|s| {
                self.existing_domains
                    .entry(s.key)
                    .or_insert_with(|| self.prepared.existing_index(s.key))
                    .clone()
            })
            .collect();
        let listing = self.cheapest_listing(screens);
        let budget = listing.map_or(n, |(_, domains)| domains);
        for i in 0..n {
            if i >= budget {
                let (s, _) = listing.expect("a budget comes from a listing");
                let domains = self.topology.admissible(&screens[s], &self.pods[p].strict);
                let after = i.checked_sub(1).map(|last| last as u32);
                return indexes[s]
                    .listed(&domains, after)
                    .map(|i| i as usize)
                    .find(|&i| self.try_existing(i, p, screens, &indexes));
            }
            if self.try_existing(i, p, screens, &indexes) {
                return Some(i);
            }
        }
        None
    }

    /// Places pod `p` on existing node `i` if it takes it.
    fn try_existing(
        &mut self,
        i: usize,
        p: PodIndex,
        screens: &[Screen],
        indexes: &[Arc<KeyIndex<u32>>],
    ) -> bool {
        // Consolidation moves no pod onto a node still settling.
        if p.0 < self.moved && self.closed[i] {
            return false;
        }
        let pod = &self.pods[p];
        // Most nodes of a busy cluster are full: a compact headroom table
        // rules them out without touching the node.
        let (free_cpu, free_memory) = self.headroom[i];
        if pod.requests.cpu > free_cpu || pod.requests.memory > free_memory {
            return false;
        }
        for (s, index) in screens.iter().zip(indexes) {
            if let Some(d) = index.domain(i)
                && !self.topology.admits(s, &pod.strict, d)
            {
                return false;
            }
        }
        let Some(admitted) = self.existing(i).admit(p, pod, &self.topology) else {
            return false;
        };
        let node = self
            .changed
            .entry(i)
            .or_insert_with(|| self.prepared.existing[i].clone());
        node.add(p, pod, admitted, &mut self.topology);
        self.headroom[i] = node.headroom();
        true
    }

    /// The planned NodeClaim with the fewest pods (the first of equals)
    /// that takes pod `p`, searched for as [`Scheduler::place_on_existing`]
    /// searches nodes.
    fn place_on_claim(&mut self, p: PodIndex, screens: &[Screen]) -> bool {
        for s in screens {
            if !self.claim_domains.contains_key(&s.key) {
                let mut index = KeyIndex::new(s.key);
                for (c, claim) in self.claims.iter().enumerate() {
                    index.push((claim.pods.len(), ClaimIndex(c)), &claim.requirements);
                }
                self.claim_domains.insert(s.key, index);
            }
        }
        let listing = self.cheapest_listing(screens);
        let budget = listing.map_or(usize::MAX, |(_, domains)| domains);
        // Out of `self` while claims are tried, which only reads them.
        let order = std::mem::take(&mut self.claim_order);
        let indexes = std::mem::take(&mut self.claim_domains);
        let mut accepted = None;
        let mut last = None;
        let mut list = false;
        for (tried, &key) in order.iter().enumerate() {
            if tried >= budget {
                list = true;
                break;
            }
            last = Some(key);
            if self.try_claim(&indexes, key.1, p, screens) {
                accepted = Some(key);
                break;
            }
        }
        if list && let Some((s, _)) = listing {
            let domains = self.topology.admissible(&screens[s], &self.pods[p].strict);
            accepted = indexes[&screens[s].key]
                .listed(&domains, last)
                .find(|k| self.try_claim(&indexes, k.1, p, screens));
        }
        self.claim_order = order;
        self.claim_domains = indexes;
        let Some((count, c)) = accepted else {
            return false;
        };
        self.claim_order.remove(&(count, c));
        self.claim_order.insert((count + 1, c));
        for index in self.claim_domains.values_mut() {
            index.update(
                c.0,
                (count, c),
                (count + 1, c),
                &self.claims[c].requirements,
            );
        }
        true
    }

    /// Adds pod `p` to planned NodeClaim `c` if it takes it.
    fn try_claim(
        &mut self,
        indexes: &HashMap<crate::sym::Sym, ClaimDomains>,
        c: ClaimIndex,
        p: PodIndex,
        screens: &[Screen],
    ) -> bool {
        let pod = &self.pods[p];
        for s in screens {
            if let Some(d) = indexes[&s.key].domain(c.0)
                && !self.topology.admits(s, &pod.strict, d)
            {
                return false;
            }
        }
        let sized = &self.templates[self.claims[c].template].sized;
        self.claims[c]
            .try_add(p, pod, sized, &self.templates, &mut self.topology, false)
            .is_ok()
    }
}
