//! The values exchanged with decision policies.
//!
//! These mirror the `dovetail:policy@0.1.0` WIT types field by field, so the
//! host lowers them without reshaping and a guest lifts them into the same
//! structs without copying. Numbers are columns; strings live in dictionaries.

use serde::{Deserialize, Serialize};

/// Capacity type codes of the `capacity-type` columns.
pub mod capacity {
    pub const ON_DEMAND: u8 = 0;
    pub const SPOT: u8 = 1;
    pub const RESERVED: u8 = 2;

    pub fn name(code: u8) -> &'static str {
        match code {
            ON_DEMAND => "on-demand",
            SPOT => "spot",
            RESERVED => "reserved",
            _ => "unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<u8> {
        match name {
            "on-demand" => Some(ON_DEMAND),
            "spot" => Some(SPOT),
            "reserved" => Some(RESERVED),
            _ => None,
        }
    }
}

/// Disruption reason codes of the `reason` columns.
pub mod reason {
    pub const EMPTY: u8 = 0;
    pub const UNDERUTILIZED: u8 = 1;
    pub const DRIFTED: u8 = 2;

    pub fn name(code: u8) -> &'static str {
        match code {
            EMPTY => "Empty",
            UNDERUTILIZED => "Underutilized",
            DRIFTED => "Drifted",
            _ => "Unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<u8> {
        match name {
            "Empty" => Some(EMPTY),
            "Underutilized" => Some(UNDERUTILIZED),
            "Drifted" => Some(DRIFTED),
            _ => None,
        }
    }
}

/// Strings packed into one buffer; entry `i` is `text[ends[i-1]..ends[i]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dictionary {
    pub text: String,
    pub ends: Vec<u32>,
}

impl Dictionary {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Entry `i`, or `""` when out of range or not on a char boundary (a guest
    /// must never panic on a malformed dictionary).
    pub fn get(&self, i: usize) -> &str {
        let Some(&end) = self.ends.get(i) else {
            return "";
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    /// Appends `s`, returning its index.
    pub fn push(&mut self, s: &str) -> u32 {
        self.text.push_str(s);
        self.ends.push(self.text.len() as u32);
        (self.ends.len() - 1) as u32
    }

    /// Index of `s`, if present (linear: dictionaries are small).
    pub fn position(&self, s: &str) -> Option<u32> {
        (0..self.len())
            .find(|&i| self.get(i) == s)
            .map(|i| i as u32)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl<'a> FromIterator<&'a str> for Dictionary {
    fn from_iter<T: IntoIterator<Item = &'a str>>(iter: T) -> Self {
        let mut d = Dictionary::default();
        for s in iter {
            d.push(s);
        }
        d
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dictionaries {
    pub instance_types: Dictionary,
    pub families: Dictionary,
    pub categories: Dictionary,
    pub zones: Dictionary,
    pub architectures: Dictionary,
    pub node_pools: Dictionary,
    pub type_family: Vec<u16>,
    pub type_category: Vec<u16>,
    pub type_architecture: Vec<u8>,
}

impl Dictionaries {
    pub fn instance_type(&self, id: u32) -> &str {
        self.instance_types.get(id as usize)
    }

    pub fn family_of(&self, type_id: u32) -> &str {
        self.type_family
            .get(type_id as usize)
            .map_or("", |&f| self.families.get(f as usize))
    }

    pub fn category_of(&self, type_id: u32) -> &str {
        self.type_category
            .get(type_id as usize)
            .map_or("", |&c| self.categories.get(c as usize))
    }

    pub fn architecture_of(&self, type_id: u32) -> &str {
        self.type_architecture
            .get(type_id as usize)
            .map_or("", |&a| self.architectures.get(a as usize))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferingTable {
    pub instance_type: Vec<u32>,
    pub vcpu: Vec<u32>,
    pub memory_mib: Vec<u64>,
    pub gpus: Vec<u32>,
    pub alloc_cpu_milli: Vec<u64>,
    pub alloc_memory_mib: Vec<u64>,
    pub alloc_pods: Vec<u32>,
    pub zone: Vec<u16>,
    pub capacity_type: Vec<u8>,
    pub price_per_hour: Vec<f64>,
    pub available: Vec<bool>,
}

impl OfferingTable {
    pub fn len(&self) -> usize {
        self.instance_type.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instance_type.is_empty()
    }

    /// Whether every column has the same length; a table that fails this is
    /// rejected before any policy sees it.
    pub fn is_rectangular(&self) -> bool {
        let n = self.len();
        [
            self.vcpu.len(),
            self.memory_mib.len(),
            self.gpus.len(),
            self.alloc_cpu_milli.len(),
            self.alloc_memory_mib.len(),
            self.alloc_pods.len(),
            self.zone.len(),
            self.capacity_type.len(),
            self.price_per_hour.len(),
            self.available.len(),
        ]
        .iter()
        .all(|&l| l == n)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attribute {
    InstanceType,
    Family,
    Category,
    Zone,
    CapacityType,
    Architecture,
}

impl Attribute {
    pub const ALL: [Attribute; 6] = [
        Attribute::InstanceType,
        Attribute::Family,
        Attribute::Category,
        Attribute::Zone,
        Attribute::CapacityType,
        Attribute::Architecture,
    ];

    /// The Kubernetes label a NodePool's `minValues` names for this attribute.
    pub fn label(self) -> &'static str {
        match self {
            Attribute::InstanceType => "node.kubernetes.io/instance-type",
            Attribute::Family => "karpenter.k8s.aws/instance-family",
            Attribute::Category => "karpenter.k8s.aws/instance-category",
            Attribute::Zone => "topology.kubernetes.io/zone",
            Attribute::CapacityType => "karpenter.sh/capacity-type",
            Attribute::Architecture => "kubernetes.io/arch",
        }
    }

    pub fn from_label(label: &str) -> Option<Attribute> {
        Attribute::ALL.into_iter().find(|a| a.label() == label)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinValues {
    pub attribute: Attribute,
    pub min: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demand {
    pub cpu_milli: u64,
    pub memory_mib: u64,
    pub pods: u32,
    pub gpus: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchRequest {
    pub node_pool: u16,
    pub demand: Demand,
    pub compatible: Vec<u32>,
    pub min_values: Vec<MinValues>,
    pub picks: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SelectionRequest {
    pub now_ms: u64,
    pub seed: u64,
    pub dictionaries: Dictionaries,
    pub offerings: OfferingTable,
    pub requests: Vec<LaunchRequest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    InvalidInput,
    NoAcceptableOffering,
    Unsatisfiable,
    Internal,
}

/// An error a policy returns on purpose (as opposed to a trap or timeout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct PolicyError {
    pub kind: ErrorKind,
    pub message: String,
}

impl PolicyError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// One result per launch request: offering rows in order of preference.
pub type Selection = Vec<Result<Vec<u32>, PolicyError>>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CandidateTable {
    pub node: Vec<u32>,
    pub node_pool: Vec<u16>,
    pub instance_type: Vec<u32>,
    pub capacity_type: Vec<u8>,
    pub zone: Vec<u16>,
    pub price_per_hour: Vec<f64>,
    pub age_seconds: Vec<u64>,
    pub expire_after_seconds: Vec<u64>,
    pub cpu_utilisation: Vec<f32>,
    pub memory_utilisation: Vec<f32>,
    pub pods: Vec<u32>,
    pub disruption_cost: Vec<f64>,
    pub reason: Vec<u8>,
}

impl CandidateTable {
    pub fn len(&self) -> usize {
        self.node.len()
    }

    pub fn is_empty(&self) -> bool {
        self.node.is_empty()
    }

    pub fn is_rectangular(&self) -> bool {
        let n = self.len();
        [
            self.node_pool.len(),
            self.instance_type.len(),
            self.capacity_type.len(),
            self.zone.len(),
            self.price_per_hour.len(),
            self.age_seconds.len(),
            self.expire_after_seconds.len(),
            self.cpu_utilisation.len(),
            self.memory_utilisation.len(),
            self.pods.len(),
            self.disruption_cost.len(),
            self.reason.len(),
        ]
        .iter()
        .all(|&l| l == n)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodePoolStats {
    pub nodes: Vec<u32>,
    pub cost_per_hour: Vec<f64>,
    pub disruption_cost: Vec<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationContext {
    pub now_ms: u64,
    pub seed: u64,
    pub dictionaries: Dictionaries,
    pub node_names: Dictionary,
    pub candidates: CandidateTable,
    pub node_pools: NodePoolStats,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProposedMove {
    pub reason: u8,
    pub removed: Vec<u32>,
    pub replacement_price_per_hour: Option<f64>,
    pub savings_per_hour: f64,
    pub pods_evicted: u32,
    pub disruption_cost: f64,
}

/// Moves in columns, as they cross the wire; see [`MoveTable::from_moves`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MoveTable {
    pub reason: Vec<u8>,
    pub removed: Vec<u32>,
    pub removed_ends: Vec<u32>,
    pub replaces: Vec<bool>,
    pub replacement_price_per_hour: Vec<f64>,
    pub savings_per_hour: Vec<f64>,
    pub pods_evicted: Vec<u32>,
    pub disruption_cost: Vec<f64>,
}

impl MoveTable {
    pub fn from_moves(moves: &[ProposedMove]) -> Self {
        let mut t = MoveTable::default();
        for m in moves {
            t.reason.push(m.reason);
            t.removed.extend_from_slice(&m.removed);
            t.removed_ends.push(t.removed.len() as u32);
            t.replaces.push(m.replacement_price_per_hour.is_some());
            t.replacement_price_per_hour
                .push(m.replacement_price_per_hour.unwrap_or(0.0));
            t.savings_per_hour.push(m.savings_per_hour);
            t.pods_evicted.push(m.pods_evicted);
            t.disruption_cost.push(m.disruption_cost);
        }
        t
    }

    /// Back to rows; `None` when the columns do not line up.
    pub fn to_moves(&self) -> Option<Vec<ProposedMove>> {
        let n = self.reason.len();
        let same = [
            self.removed_ends.len(),
            self.replaces.len(),
            self.replacement_price_per_hour.len(),
            self.savings_per_hour.len(),
            self.pods_evicted.len(),
            self.disruption_cost.len(),
        ]
        .iter()
        .all(|&l| l == n);
        if !same {
            return None;
        }
        let mut start = 0usize;
        let mut moves = Vec::with_capacity(n);
        for i in 0..n {
            let end = self.removed_ends[i] as usize;
            let removed = self.removed.get(start..end)?.to_vec();
            start = end;
            moves.push(ProposedMove {
                reason: self.reason[i],
                removed,
                replacement_price_per_hour: self.replaces[i]
                    .then_some(self.replacement_price_per_hour[i]),
                savings_per_hour: self.savings_per_hour[i],
                pods_evicted: self.pods_evicted[i],
                disruption_cost: self.disruption_cost[i],
            });
        }
        Some(moves)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub approve: bool,
    pub reason: String,
}

impl Verdict {
    pub fn approve(reason: impl Into<String>) -> Self {
        Self {
            approve: true,
            reason: reason.into(),
        }
    }

    pub fn reject(reason: impl Into<String>) -> Self {
        Self {
            approve: false,
            reason: reason.into(),
        }
    }
}

/// Scores per candidate; `None` excludes it. Lower goes first.
pub type Ranking = Vec<Option<f64>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    InstanceSelection,
    ConsolidationScoring,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::InstanceSelection => "instance-selection",
            Decision::ConsolidationScoring => "consolidation-scoring",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub decisions: Vec<Decision>,
}

/// A configuration a policy refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("config field `{field}`: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_round_trips_and_tolerates_bad_offsets() {
        let d: Dictionary = ["m7g.large", "", "c7i.xlarge"].into_iter().collect();
        assert_eq!(d.len(), 3);
        assert_eq!(d.get(0), "m7g.large");
        assert_eq!(d.get(1), "");
        assert_eq!(d.get(2), "c7i.xlarge");
        assert_eq!(d.get(3), "");
        assert_eq!(d.position("c7i.xlarge"), Some(2));
        let broken = Dictionary {
            text: "abc".into(),
            ends: vec![2, 1, 99],
        };
        assert_eq!(broken.get(0), "ab");
        assert_eq!(broken.get(1), "");
        assert_eq!(broken.get(2), "");
    }

    #[test]
    fn moves_round_trip_through_columns() {
        let moves = vec![
            ProposedMove {
                reason: reason::EMPTY,
                removed: vec![3],
                replacement_price_per_hour: None,
                savings_per_hour: 0.2,
                pods_evicted: 0,
                disruption_cost: 0.0,
            },
            ProposedMove {
                reason: reason::UNDERUTILIZED,
                removed: vec![0, 1, 2],
                replacement_price_per_hour: Some(0.3),
                savings_per_hour: 0.1,
                pods_evicted: 9,
                disruption_cost: 9.5,
            },
        ];
        let t = MoveTable::from_moves(&moves);
        assert_eq!(t.removed_ends, [1, 4]);
        assert_eq!(t.to_moves().unwrap(), moves);
        let mut broken = t.clone();
        broken.removed_ends[1] = 99;
        assert_eq!(broken.to_moves(), None);
    }

    #[test]
    fn attributes_map_to_karpenter_labels() {
        for a in Attribute::ALL {
            assert_eq!(Attribute::from_label(a.label()), Some(a));
        }
        assert_eq!(Attribute::from_label("example.com/team"), None);
    }
}
