//! Topology: pod affinity, pod anti-affinity and topology spread.
//!
//! Pods that share a constraint share one group; a group counts, per domain
//! (zone, hostname, any label), the pods its selector matches. Asking a group
//! for the domains a pod may use turns the constraint into one more
//! requirement on the node's label, which the requirement algebra then
//! intersects with everything else. Anti-affinity is symmetric, so each
//! required anti-affinity term also gets an "inverse" group that keeps other
//! pods out of the domains its owners occupy.

use std::collections::BTreeSet;
use std::sync::Arc;

// Keys are interned pointers: a fast non-cryptographic hash is enough.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::labels::{self, WellKnown};
use crate::model::{
    InclusionPolicy, LabelSelector, Labels, Namespace, Pod, PodAffinityTerm, SelectorOperator,
    SelectorRequirement, Taint, Toleration, WhenUnsatisfiable, label, untolerated,
};
use crate::requirements::{Requirement, Requirements};
use crate::sym::Sym;

use super::index::{NodeIndex, PodIndex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Spread,
    Affinity,
    AntiAffinity,
}

/// Which nodes a spread constraint counts (`nodeAffinityPolicy`,
/// `nodeTaintsPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct NodeFilter {
    /// OR of the owner's node-selector terms; empty = every node.
    terms: Vec<Requirements>,
    /// Set when taints are honoured.
    tolerations: Option<Vec<Toleration>>,
}

impl NodeFilter {
    fn matches(
        &self,
        requirements: &Requirements,
        taints: &[Taint],
        well_known: Option<WellKnown<'_>>,
    ) -> bool {
        (self.terms.is_empty()
            || self
                .terms
                .iter()
                .any(|t| requirements.compatible_with(t, well_known, "").is_ok()))
            && self
                .tolerations
                .as_ref()
                .is_none_or(|tol| untolerated(taints, tol).is_none())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    kind: Kind,
    key: Sym,
    namespaces: Vec<Sym>,
    selector: LabelSelector,
    max_skew: i32,
    min_domains: Option<i32>,
    filter: NodeFilter,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    id: GroupKey,
    /// `key Exists`, for pods and nodes that leave the key open.
    exists: Requirement,
    counts: HashMap<Sym, i32>,
    /// Domains with a count above zero.
    occupied: BTreeSet<Sym>,
    /// Domains with a count of zero: where anti-affinity and tight spread
    /// still allow a pod, listed so that candidates need not be scanned.
    vacant: HashSet<Sym>,
    /// The minimum count over all domains, while no count has changed.
    min_open: std::cell::Cell<Option<i32>>,
    owners: usize,
}

impl Group {
    fn new(id: GroupKey) -> Self {
        Self {
            exists: Requirement::exists(id.key),
            id,
            counts: HashMap::default(),
            occupied: BTreeSet::new(),
            vacant: HashSet::default(),
            min_open: std::cell::Cell::new(None),
            owners: 0,
        }
    }

    pub(crate) fn key(&self) -> Sym {
        self.id.key
    }

    fn selects(&self, pod: &Pod) -> bool {
        self.id.namespaces.contains(&pod.namespace) && self.id.selector.matches(&pod.labels)
    }

    fn register(&mut self, domain: Sym) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.counts.entry(domain) {
            e.insert(0);
            self.vacant.insert(domain);
            self.min_open.set(None);
        }
    }

    fn record(&mut self, domain: Sym) {
        self.min_open.set(None);
        let c = self.counts.entry(domain).or_insert(0);
        *c += 1;
        if *c == 1 {
            self.occupied.insert(domain);
            self.vacant.remove(&domain);
        }
    }

    fn unrecord(&mut self, domain: Sym) {
        self.min_open.set(None);
        if let Some(c) = self.counts.get_mut(&domain) {
            *c -= 1;
            if *c == 0 {
                self.occupied.remove(&domain);
                self.vacant.insert(domain);
            }
        }
    }

    fn count(&self, domain: Sym) -> Option<i32> {
        self.counts.get(&domain).copied()
    }

    fn describe(&self) -> String {
        let what = match self.id.kind {
            Kind::Spread => format!(
                "topology spread on `{}` (maxSkew {})",
                self.id.key, self.id.max_skew
            ),
            Kind::Affinity => format!("pod affinity on `{}`", self.id.key),
            Kind::AntiAffinity => format!("pod anti-affinity on `{}`", self.id.key),
        };
        format!(
            "{what} for pods matching {}",
            describe_selector(&self.id.selector)
        )
    }

    /// The domains `pod` may use under this group, as a requirement on the
    /// group's key; empty when none.
    fn allowed(
        &self,
        pod: &Pod,
        pod_domains: &Requirement,
        node_domains: &Requirement,
        inverse: bool,
    ) -> Requirement {
        match self.id.kind {
            Kind::Spread => self.next_spread(pod, pod_domains, node_domains),
            Kind::Affinity => self.next_affinity(pod, pod_domains, node_domains),
            Kind::AntiAffinity if inverse => self.next_inverse_anti_affinity(node_domains),
            Kind::AntiAffinity => self.next_anti_affinity(pod_domains, node_domains),
        }
    }

    /// Domains the node may be in, each with its count: the node's own
    /// values when it names them, else every registered domain.
    fn candidates<'a>(&'a self, node_domains: &'a Requirement) -> Candidates<'a> {
        if node_domains.is_complement() {
            Candidates::All(self.counts.iter(), node_domains)
        } else {
            Candidates::Listed(node_domains.values().iter(), self)
        }
    }

    fn min_count(&self, pod_domains: &Requirement) -> i32 {
        // A new node is always an empty hostname.
        if self.id.key.as_str() == labels::HOSTNAME {
            return 0;
        }
        // Pods that leave the key open all see the same minimum: keep it
        // until a count changes.
        let open = pod_domains == &self.exists;
        if open && let Some(min) = self.min_open.get() {
            return min;
        }
        let mut min = i32::MAX;
        let mut supported = 0;
        for (d, &c) in &self.counts {
            if pod_domains.has(*d) {
                supported += 1;
                min = min.min(c);
            }
        }
        if self.id.min_domains.is_some_and(|m| supported < m) || min == i32::MAX {
            min = 0;
        }
        if open {
            self.min_open.set(Some(min));
        }
        min
    }

    fn next_spread(
        &self,
        pod: &Pod,
        pod_domains: &Requirement,
        node_domains: &Requirement,
    ) -> Requirement {
        let min = self.min_count(pod_domains);
        let own = i32::from(self.selects(pod));
        let mut best: Option<(i32, Sym)> = None;
        for (d, c) in self.candidates(node_domains) {
            let c = c + own;
            if c - min <= self.id.max_skew && best.is_none_or(|(bc, bd)| (c, d) < (bc, bd)) {
                best = Some((c, d));
            }
        }
        match best {
            Some((_, d)) => Requirement::single(self.id.key, d),
            None => Requirement::does_not_exist(self.id.key),
        }
    }

    fn next_affinity(
        &self,
        pod: &Pod,
        pod_domains: &Requirement,
        node_domains: &Requirement,
    ) -> Requirement {
        let mut options: Vec<Sym> = self
            .occupied
            .iter()
            .copied()
            .filter(|d| pod_domains.has(*d))
            .collect();
        if options.is_empty() && self.selects(pod) {
            // The first pod of a self-affine set picks its domain, preferring
            // one the node can be in.
            let mut domains: Vec<Sym> = self
                .counts
                .keys()
                .copied()
                .filter(|d| pod_domains.has(*d))
                .collect();
            domains.sort_unstable();
            if let Some(d) = domains
                .iter()
                .find(|d| node_domains.has(**d))
                .or(domains.first())
            {
                options.push(*d);
            }
        }
        Requirement::is_in(self.id.key, options)
    }

    fn next_anti_affinity(
        &self,
        pod_domains: &Requirement,
        node_domains: &Requirement,
    ) -> Requirement {
        if self.counts.len() == self.occupied.len() {
            return Requirement::does_not_exist(self.id.key);
        }
        Requirement::is_in(
            self.id.key,
            self.candidates(node_domains)
                .filter(|&(d, c)| c == 0 && pod_domains.has(d))
                .map(|(d, _)| d),
        )
    }

    /// Other pods' anti-affinity: anywhere but where they are.
    fn next_inverse_anti_affinity(&self, node_domains: &Requirement) -> Requirement {
        if node_domains.is_complement() {
            let mut r = node_domains.clone();
            for &d in &self.occupied {
                r.remove(d);
            }
            r
        } else {
            Requirement::is_in(
                self.id.key,
                node_domains
                    .values()
                    .iter()
                    .copied()
                    .filter(|&d| !self.is_occupied(d)),
            )
        }
    }

    fn is_occupied(&self, d: Sym) -> bool {
        self.count(d).is_some_and(|c| c > 0)
    }

    /// For a node in exactly one domain `d`: whether `pod` may go there.
    /// The same answer as intersecting [`Group::allowed`] with `{d}`,
    /// without building any set (most attempts on a busy node end here).
    /// `None` for affinity, whose first pod picks among all domains.
    fn allows_single(
        &self,
        pod: &Pod,
        pod_domains: &Requirement,
        d: Sym,
        inverse: bool,
    ) -> Option<bool> {
        Some(match self.id.kind {
            Kind::Affinity => return None,
            Kind::AntiAffinity if inverse => !self.is_occupied(d),
            Kind::AntiAffinity => {
                self.counts.len() != self.occupied.len()
                    && self.count(d) == Some(0)
                    && pod_domains.has(d)
            }
            Kind::Spread => self.count(d).is_some_and(|c| {
                c + i32::from(self.selects(pod)) - self.min_count(pod_domains) <= self.id.max_skew
            }),
        })
    }

    /// How this group judges nodes in exactly one domain for `pod`, while
    /// no count changes: [`Group::allows_single`] (and, for affinity,
    /// [`Group::allowed`] narrowed to that domain) worked out once.
    fn rule(&self, pod: &Pod, pod_domains: &Requirement, inverse: bool) -> Rule {
        match self.id.kind {
            Kind::AntiAffinity if inverse => Rule::Unoccupied,
            Kind::AntiAffinity if self.counts.len() == self.occupied.len() => Rule::Nowhere,
            Kind::AntiAffinity => Rule::Empty,
            Kind::Spread => Rule::AtMost(
                i64::from(self.min_count(pod_domains)) + i64::from(self.id.max_skew)
                    - i64::from(self.selects(pod)),
            ),
            Kind::Affinity if self.occupied.iter().any(|d| pod_domains.has(*d)) => Rule::Occupied,
            // The first pod of a self-affine set picks its domain, the
            // node's own when it may.
            Kind::Affinity if self.selects(pod) => Rule::Registered,
            Kind::Affinity => Rule::Nowhere,
        }
    }

    fn admits(&self, rule: Rule, pod_domains: &Requirement, d: Sym) -> bool {
        match rule {
            Rule::AtMost(max) => self.count(d).is_some_and(|c| i64::from(c) <= max),
            Rule::Empty => self.count(d) == Some(0) && pod_domains.has(d),
            Rule::Unoccupied => !self.is_occupied(d),
            Rule::Occupied => self.is_occupied(d) && pod_domains.has(d),
            Rule::Registered => self.count(d).is_some() && pod_domains.has(d),
            Rule::Nowhere => false,
        }
    }

    /// How many domains [`Group::admissible`] would list; `None` when the
    /// rule admits domains it cannot list (unregistered ones).
    fn admissible_len(&self, rule: Rule) -> Option<usize> {
        match rule {
            Rule::Nowhere => Some(0),
            Rule::Unoccupied => None,
            // Counts are never negative: nothing is at most a negative number,
            // and at most zero is vacant.
            Rule::AtMost(max) if max < 0 => Some(0),
            Rule::AtMost(0) | Rule::Empty => Some(self.vacant.len()),
            Rule::AtMost(_) | Rule::Registered => Some(self.counts.len()),
            Rule::Occupied => Some(self.occupied.len()),
        }
    }

    /// Every domain `rule` admits (and perhaps a few it does not).
    fn admissible(&self, rule: Rule, pod_domains: &Requirement) -> Vec<Sym> {
        match rule {
            Rule::Nowhere | Rule::Unoccupied => Vec::new(),
            Rule::AtMost(max) if max < 0 => Vec::new(),
            Rule::AtMost(0) => self.vacant.iter().copied().collect(),
            Rule::Empty => self
                .vacant
                .iter()
                .copied()
                .filter(|d| pod_domains.has(*d))
                .collect(),
            Rule::AtMost(max) => self
                .counts
                .iter()
                .filter(|&(_, &c)| i64::from(c) <= max)
                .map(|(&d, _)| d)
                .collect(),
            Rule::Registered => self
                .counts
                .keys()
                .copied()
                .filter(|d| pod_domains.has(*d))
                .collect(),
            Rule::Occupied => self
                .occupied
                .iter()
                .copied()
                .filter(|d| pod_domains.has(*d))
                .collect(),
        }
    }
}

/// What a group allows a pod on a node in exactly one domain `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// `d` is registered with at most this many pods (spread).
    AtMost(i64),
    /// `d` is registered, holds no pod and the pod allows it (anti-affinity).
    Empty,
    /// `d` holds no pod (another pod's anti-affinity).
    Unoccupied,
    /// `d` holds a pod and the pod allows it (affinity).
    Occupied,
    /// `d` is registered and the pod allows it (the first of a self-affine set).
    Registered,
    Nowhere,
}

/// One topology constraint of a pending pod, judged once so that nodes and
/// NodeClaims can be screened by their domain of its key before they are
/// tried: a screen never turns away a node [`Topology::add_requirements`]
/// would accept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Screen {
    group: usize,
    inverse: bool,
    pub key: Sym,
    rule: Rule,
}

enum Candidates<'a> {
    All(
        std::collections::hash_map::Iter<'a, Sym, i32>,
        &'a Requirement,
    ),
    Listed(std::slice::Iter<'a, Sym>, &'a Group),
}

impl Iterator for Candidates<'_> {
    type Item = (Sym, i32);

    fn next(&mut self) -> Option<(Sym, i32)> {
        match self {
            Candidates::All(it, node) => it.find(|(d, _)| node.has(**d)).map(|(d, c)| (*d, *c)),
            Candidates::Listed(it, group) => it.find_map(|d| group.count(*d).map(|c| (*d, c))),
        }
    }
}

fn describe_selector(s: &LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in &s.match_expressions {
        let vals: Vec<&str> = e.values.iter().map(|v| v.as_str()).collect();
        parts.push(format!("{} {:?} [{}]", e.key, e.operator, vals.join(",")));
    }
    if parts.is_empty() {
        "everything".into()
    } else {
        format!("{{{}}}", parts.join(", "))
    }
}

/// A domain value and the taints of the NodePools (or nodes) offering it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Universe {
    domains: HashMap<Sym, Vec<(Sym, Vec<Taint>)>>,
}

impl Universe {
    pub(crate) fn insert(&mut self, key: Sym, domain: Sym, taints: &[Taint]) {
        let entry = self.domains.entry(key).or_default();
        if !entry
            .iter()
            .any(|(d, t)| *d == domain && t.as_slice() == taints)
        {
            entry.push((domain, taints.to_vec()));
        }
    }
}

/// Groups counted over every bound pod of a snapshot, shared by the
/// what-if solves over it: counting is the costly part of a group, and a
/// what-if only has to take its removed nodes' pods back out.
#[derive(Debug, Default)]
pub(crate) struct GroupCache {
    groups: std::sync::Mutex<HashMap<GroupKey, Group>>,
    /// Per snapshot node: its pods' range in the bound list.
    by_node: Vec<std::ops::Range<usize>>,
}

impl GroupCache {
    pub(crate) fn new(bound: &[BoundPod], nodes: usize) -> Self {
        let mut by_node = vec![0..0; nodes];
        let mut i = 0;
        while i < bound.len() {
            let n = bound[i].node;
            let start = i;
            while i < bound.len() && bound[i].node == n {
                i += 1;
            }
            by_node[n.0] = start..i;
        }
        Self {
            groups: Default::default(),
            by_node,
        }
    }
}

/// Which topology constraint refuses a node; described only when reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TopologyError {
    group: usize,
    inverse: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Topology {
    groups: Vec<Group>,
    index: HashMap<GroupKey, usize>,
    inverse: Vec<Group>,
    inverse_index: HashMap<GroupKey, usize>,
    universe: Arc<Universe>,
    /// Domains registered after the universe was built (hostnames of nodes
    /// and planned NodeClaims), by key.
    registered: HashMap<Sym, Vec<Sym>>,
    namespaces: Vec<Namespace>,
    /// Pods already bound, with their node's labels, requirements and taints.
    bound: Arc<Vec<BoundPod>>,
    /// Per snapshot node: left out of this solve (a what-if without it).
    removed: Vec<bool>,
    removed_list: Vec<NodeIndex>,
    cache: Option<Arc<GroupCache>>,
    /// Per pending pod: the groups it owns and the inverse groups selecting it.
    owned: Vec<Vec<usize>>,
    matching_inverse: Vec<Vec<usize>>,
}

#[derive(Debug)]
pub(crate) struct BoundPod {
    pub pod: Arc<Pod>,
    pub node: NodeIndex,
    /// Shared by every pod of the node.
    pub node_labels: Arc<Labels>,
    pub node_requirements: Arc<Requirements>,
    pub node_taints: Arc<Vec<Taint>>,
    pub node_name: Sym,
}

impl Topology {
    pub(crate) fn new(
        universe: Arc<Universe>,
        namespaces: Vec<Namespace>,
        bound: Arc<Vec<BoundPod>>,
        anti: &[usize],
        cache: Option<Arc<GroupCache>>,
        removed: &[NodeIndex],
        pending: usize,
    ) -> Self {
        let mut mask = Vec::new();
        for &NodeIndex(r) in removed {
            if mask.len() <= r {
                mask.resize(r + 1, false);
            }
            mask[r] = true;
        }
        let mut t = Topology {
            universe,
            namespaces,
            owned: vec![Vec::new(); pending],
            matching_inverse: vec![Vec::new(); pending],
            removed: mask,
            removed_list: removed.to_vec(),
            cache,
            ..Topology::default()
        };
        // Anti-affinity of pods already running keeps new pods away.
        for b in anti.iter().map(|&i| &bound[i]) {
            if t.is_removed(b.node) {
                continue;
            }
            for term in &b.pod.pod_anti_affinity {
                let id = t.inverse_id(&b.pod, term);
                let g = t.inverse_group(id);
                if let Some(d) = domain_of(&b.node_labels, b.node_name, t.inverse[g].key()) {
                    t.inverse[g].record(d);
                }
            }
        }
        t.bound = bound;
        t
    }

    fn is_removed(&self, node: NodeIndex) -> bool {
        self.removed.get(node.0).copied().unwrap_or(false)
    }

    fn namespaces_for(&self, pod: &Pod, term: &PodAffinityTerm) -> Vec<Sym> {
        let mut ns: Vec<Sym> = term.namespaces.clone();
        if let Some(sel) = &term.namespace_selector {
            ns.extend(
                self.namespaces
                    .iter()
                    .filter(|n| sel.matches(&n.labels))
                    .map(|n| n.name),
            );
        } else if ns.is_empty() {
            ns.push(pod.namespace);
        }
        ns.sort_unstable();
        ns.dedup();
        ns
    }

    fn inverse_id(&self, pod: &Pod, term: &PodAffinityTerm) -> GroupKey {
        GroupKey {
            kind: Kind::AntiAffinity,
            key: term.topology_key,
            namespaces: self.namespaces_for(pod, term),
            selector: term.selector.clone(),
            max_skew: i32::MAX,
            min_domains: None,
            filter: NodeFilter::default(),
        }
    }

    fn inverse_group(&mut self, id: GroupKey) -> usize {
        if let Some(&g) = self.inverse_index.get(&id) {
            return g;
        }
        let mut group = Group::new(id.clone());
        self.register_universe(&mut group, None);
        self.inverse.push(group);
        self.inverse_index.insert(id, self.inverse.len() - 1);
        self.inverse.len() - 1
    }

    fn register_universe(&self, group: &mut Group, tolerations: Option<&[Toleration]>) {
        let key = group.key();
        if let Some(domains) = self.universe.domains.get(&key) {
            for (d, taints) in domains {
                if tolerations.is_none_or(|tol| untolerated(taints, tol).is_none()) {
                    group.register(*d);
                }
            }
        }
        if let Some(extra) = self.registered.get(&key) {
            for d in extra {
                group.register(*d);
            }
        }
    }

    /// Makes `domains` of `key` known to every group (existing nodes'
    /// hostnames).
    pub(crate) fn register_all(&mut self, key: Sym, domains: impl IntoIterator<Item = Sym>) {
        let known = self.registered.entry(key).or_default();
        let from = known.len();
        known.extend(domains);
        for g in self.groups.iter_mut().chain(self.inverse.iter_mut()) {
            if g.key() == key {
                for &d in &self.registered[&key][from..] {
                    g.register(d);
                }
            }
        }
    }

    /// Makes `domain` of `key` known to every group (a node or a planned
    /// NodeClaim's hostname).
    pub(crate) fn register(&mut self, key: Sym, domain: Sym) {
        self.registered.entry(key).or_default().push(domain);
        for g in self.groups.iter_mut().chain(self.inverse.iter_mut()) {
            if g.key() == key {
                g.register(domain);
            }
        }
    }

    /// (Re)builds the groups pending pod `p` owns from its current
    /// constraints (after a relaxation, some are gone).
    pub(crate) fn update(&mut self, p: PodIndex, pod: &Pod, strict: &[Requirements]) {
        for &g in &self.owned[p] {
            self.groups[g].owners -= 1;
        }
        let mut ids = Vec::new();
        for c in &pod.topology_spread {
            let mut selector = c.selector.clone();
            for &k in &c.match_label_keys {
                if let Some(v) = label(&pod.labels, k) {
                    selector.match_expressions.push(SelectorRequirement {
                        key: k,
                        operator: SelectorOperator::In,
                        values: vec![v],
                    });
                }
            }
            let filter = NodeFilter {
                terms: if c.node_affinity_policy == InclusionPolicy::Honor {
                    strict.iter().filter(|r| !r.is_empty()).cloned().collect()
                } else {
                    Vec::new()
                },
                tolerations: (c.node_taints_policy == InclusionPolicy::Honor)
                    .then(|| pod.tolerations.clone()),
            };
            ids.push(GroupKey {
                kind: Kind::Spread,
                key: c.topology_key,
                namespaces: vec![pod.namespace],
                selector,
                max_skew: c.max_skew,
                min_domains: (c.when_unsatisfiable == WhenUnsatisfiable::DoNotSchedule)
                    .then_some(c.min_domains)
                    .flatten(),
                filter,
            });
        }
        let affinity = pod
            .pod_affinity
            .iter()
            .chain(pod.preferred_pod_affinity.iter().map(|w| &w.term))
            .map(|t| (Kind::Affinity, t));
        let anti = pod
            .pod_anti_affinity
            .iter()
            .chain(pod.preferred_pod_anti_affinity.iter().map(|w| &w.term))
            .map(|t| (Kind::AntiAffinity, t));
        for (kind, term) in affinity.chain(anti) {
            ids.push(GroupKey {
                kind,
                key: term.topology_key,
                namespaces: self.namespaces_for(pod, term),
                selector: term.selector.clone(),
                max_skew: i32::MAX,
                min_domains: None,
                filter: NodeFilter::default(),
            });
        }
        let mut owned = Vec::with_capacity(ids.len());
        for id in ids {
            let g = match self.index.get(&id) {
                Some(&g) => g,
                None => {
                    let group = self.counted_group(&id);
                    self.groups.push(group);
                    self.index.insert(id, self.groups.len() - 1);
                    self.groups.len() - 1
                }
            };
            self.groups[g].owners += 1;
            owned.push(g);
        }
        self.owned[p] = owned;
        for term in &pod.pod_anti_affinity {
            let id = self.inverse_id(pod, term);
            let g = self.inverse_group(id);
            self.inverse[g].owners += 1;
        }
    }

    /// Once every pending pod is known: which inverse groups select each.
    pub(crate) fn index_inverse(&mut self, pods: &[&Pod]) {
        for (p, pod) in pods.iter().enumerate() {
            self.matching_inverse[p] = (0..self.inverse.len())
                .filter(|&g| self.inverse[g].selects(pod))
                .collect();
        }
    }

    /// A new group for `id`, registered and counted over the bound pods of
    /// the nodes this solve keeps.
    fn counted_group(&self, id: &GroupKey) -> Group {
        let fresh = || {
            let mut g = Group::new(id.clone());
            self.register_universe(&mut g, id.filter.tolerations.as_deref());
            g
        };
        let Some(cache) = &self.cache else {
            let mut g = fresh();
            for b in self.bound.iter().filter(|b| !self.is_removed(b.node)) {
                if let Some(d) = counted_domain(&g, b) {
                    g.record(d);
                }
            }
            return g;
        };
        let mut g = {
            let mut groups = cache.groups.lock().unwrap_or_else(|p| p.into_inner());
            groups
                .entry(id.clone())
                .or_insert_with(|| {
                    let mut g = fresh();
                    for b in self.bound.iter() {
                        if let Some(d) = counted_domain(&g, b) {
                            g.record(d);
                        }
                    }
                    g
                })
                .clone()
        };
        if let Some(extra) = self.registered.get(&g.key()) {
            for &d in extra {
                g.register(d);
            }
        }
        for &n in &self.removed_list {
            for b in &self.bound[cache.by_node.get(n.0).cloned().unwrap_or(0..0)] {
                if let Some(d) = counted_domain(&g, b) {
                    g.unrecord(d);
                }
            }
        }
        g
    }

    /// Whether pod `p` has any topology constraint to check.
    pub(crate) fn constrains(&self, p: PodIndex) -> bool {
        !self.owned[p].is_empty() || !self.matching_inverse[p].is_empty()
    }

    /// The extra requirements pod `p` puts on a node with `node`
    /// requirements, or why it cannot go there.
    pub(crate) fn add_requirements(
        &self,
        p: PodIndex,
        pod: &Pod,
        strict: &Requirements,
        node: &Requirements,
    ) -> Result<Requirements, TopologyError> {
        let mut out = Requirements::new();
        let forward = self.owned[p].iter().map(|&g| (g, &self.groups[g], false));
        let inverse = self.matching_inverse[p]
            .iter()
            .map(|&g| (g, &self.inverse[g], true));
        for (index, group, is_inverse) in forward.chain(inverse) {
            let key = group.key();
            let pod_domains = strict.get(key).unwrap_or(&group.exists);
            let node_domains = node.get(key).unwrap_or(&group.exists);
            let error = TopologyError {
                group: index,
                inverse: is_inverse,
            };
            if let Some(d) = node_domains.single_value()
                && let Some(ok) = group.allows_single(pod, pod_domains, d, is_inverse)
            {
                if !ok {
                    return Err(error);
                }
                out.add(Requirement::single(key, d));
                continue;
            }
            let allowed = group.allowed(pod, pod_domains, node_domains, is_inverse);
            if allowed.is_empty() || !allowed.has_intersection(node_domains) {
                return Err(error);
            }
            out.add(allowed);
        }
        Ok(out)
    }

    /// Pod `p`'s constraints as screens, valid until a count changes.
    pub(crate) fn screens(&self, p: PodIndex, pod: &Pod, strict: &Requirements) -> Vec<Screen> {
        let forward = self.owned[p].iter().map(|&g| (g, false));
        let inverse = self.matching_inverse[p].iter().map(|&g| (g, true));
        forward
            .chain(inverse)
            .map(|(g, inverse)| {
                let group = self.group(g, inverse);
                let key = group.key();
                let pod_domains = strict.get(key).unwrap_or(&group.exists);
                Screen {
                    group: g,
                    inverse,
                    key,
                    rule: group.rule(pod, pod_domains, inverse),
                }
            })
            .collect()
    }

    fn group(&self, g: usize, inverse: bool) -> &Group {
        if inverse {
            &self.inverse[g]
        } else {
            &self.groups[g]
        }
    }

    /// Whether a node whose only domain of `s.key` is `d` may take the pod
    /// as far as `s` goes. False only if [`Topology::add_requirements`] would
    /// refuse it.
    pub(crate) fn admits(&self, s: &Screen, strict: &Requirements, d: Sym) -> bool {
        let group = self.group(s.group, s.inverse);
        let pod_domains = strict.get(s.key).unwrap_or(&group.exists);
        group.admits(s.rule, pod_domains, d)
    }

    /// How many domains [`Topology::admissible`] would list for `s`; `None`
    /// when it cannot list them.
    pub(crate) fn admissible_len(&self, s: &Screen) -> Option<usize> {
        self.group(s.group, s.inverse).admissible_len(s.rule)
    }

    /// Domains of `s.key` that include every one `s` admits.
    pub(crate) fn admissible(&self, s: &Screen, strict: &Requirements) -> Vec<Sym> {
        let group = self.group(s.group, s.inverse);
        let pod_domains = strict.get(s.key).unwrap_or(&group.exists);
        group.admissible(s.rule, pod_domains)
    }

    pub(crate) fn describe(&self, e: TopologyError) -> String {
        let (group, whose) = if e.inverse {
            (&self.inverse[e.group], "another pod's ")
        } else {
            (&self.groups[e.group], "")
        };
        format!(
            "{whose}{} leaves no allowed `{}` here",
            group.describe(),
            group.key()
        )
    }

    /// Counts `pod` in every group that cares, now that it is placed on a
    /// node with `requirements` and `taints`.
    pub(crate) fn record(
        &mut self,
        pod: &Pod,
        taints: &[Taint],
        requirements: &Requirements,
        well_known: Option<WellKnown<'_>>,
    ) {
        for g in &mut self.groups {
            if !g.selects(pod) {
                continue;
            }
            if g.id.kind == Kind::Spread && !g.id.filter.matches(requirements, taints, well_known) {
                continue;
            }
            let Some(domains) = requirements.get(g.key()) else {
                continue;
            };
            if domains.is_complement() {
                continue;
            }
            if g.id.kind == Kind::AntiAffinity {
                for &d in domains.values() {
                    g.record(d);
                }
            } else if let Some(d) = domains.single_value() {
                g.record(d);
            }
        }
        for term in &pod.pod_anti_affinity {
            let id = self.inverse_id(pod, term);
            if let Some(&g) = self.inverse_index.get(&id)
                && let Some(domains) = requirements.get(self.inverse[g].key())
                && !domains.is_complement()
            {
                for &d in domains.values() {
                    self.inverse[g].record(d);
                }
            }
        }
    }
}

/// The domain bound pod `b` counts in for group `g`, if it counts.
fn counted_domain(g: &Group, b: &BoundPod) -> Option<Sym> {
    if !g.selects(&b.pod) {
        return None;
    }
    let domain = domain_of(&b.node_labels, b.node_name, g.key())?;
    if g.id.kind == Kind::Spread
        && !g
            .id
            .filter
            .matches(&b.node_requirements, &b.node_taints, None)
    {
        return None;
    }
    Some(domain)
}

/// A node's domain for `key`; the hostname falls back to the node name.
fn domain_of(labels: &Labels, name: Sym, key: Sym) -> Option<Sym> {
    label(labels, key).or_else(|| (key.as_str() == labels::HOSTNAME).then_some(name))
}
