//! Human-writable requests and readable decisions.
//!
//! The wire format is columnar; people write rows. A [`RequestDocument`] is
//! the JSON that `dovetail policy test --input` reads (see
//! `docs/policy-requests.md`), and [`explain_selection`] / [`explain_consolidation`]
//! turn decisions back into rows with names.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::limits;
use super::types::{
    Attribute, CandidateTable, ConsolidationContext, Demand, Dictionaries, Dictionary,
    LaunchRequest, MinValues, NodePoolStats, OfferingTable, PolicyError, ProposedMove, Ranking,
    Selection, SelectionRequest, Verdict, capacity, reason,
};
use crate::catalog::{Number, check_price};

/// Why a document could not be read or turned into a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct DocumentError {
    /// Where in the document, e.g. `offerings[3].capacity_type`; empty when
    /// the text is not JSON at all (the message then gives line and column).
    pub path: String,
    pub message: String,
}

fn doc_err(path: impl Into<String>, message: impl Into<String>) -> DocumentError {
    DocumentError {
        path: path.into(),
        message: message.into(),
    }
}

/// A request in row form, tagged by the decision it is for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum RequestDocument {
    InstanceSelection(SelectionDocument),
    ConsolidationScoring(ConsolidationDocument),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionDocument {
    #[serde(default)]
    pub now_ms: u64,
    #[serde(default)]
    pub seed: u64,
    pub offerings: Vec<OfferingRow>,
    pub requests: Vec<LaunchRow>,
}

/// An instance type's attributes; family, category and architecture default
/// from the name (`m7g.large` → `m7g`, `m`, `arm64` for a `g` family).
#[derive(Debug, Clone, Copy, Default)]
pub struct InstanceTypeRef<'a> {
    pub instance_type: &'a str,
    pub family: Option<&'a str>,
    pub category: Option<&'a str>,
    pub architecture: Option<&'a str>,
}

// The instance type's fields are spelled out in each row, not flattened:
// serde buffers flattened fields, which loses the field path of an error.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferingRow {
    pub instance_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    pub vcpu: u32,
    pub memory_mib: u64,
    #[serde(default)]
    pub gpus: u32,
    /// Defaults to the full vCPU count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alloc_cpu_milli: Option<u64>,
    /// Defaults to the full memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alloc_memory_mib: Option<u64>,
    #[serde(default = "default_pods")]
    pub alloc_pods: u32,
    pub zone: String,
    pub capacity_type: String,
    pub price_per_hour: f64,
    #[serde(default = "yes")]
    pub available: bool,
}

fn default_pods() -> u32 {
    110
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchRow {
    pub node_pool: String,
    #[serde(default)]
    pub demand: Demand,
    /// Offering rows compatible with the node; all of them when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatible: Option<Vec<u32>>,
    /// Keyed by Kubernetes label, e.g. `karpenter.k8s.aws/instance-family: 3`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub min_values: Vec<MinValuesRow>,
    #[serde(default)]
    pub picks: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinValuesRow {
    pub key: String,
    pub min: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsolidationDocument {
    #[serde(default)]
    pub now_ms: u64,
    #[serde(default)]
    pub seed: u64,
    pub candidates: Vec<CandidateRow>,
    /// Totals per NodePool; computed from the candidates when omitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_pools: Vec<NodePoolRow>,
    #[serde(default)]
    pub moves: Vec<MoveRow>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateRow {
    pub node: String,
    pub node_pool: String,
    pub instance_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    pub capacity_type: String,
    pub zone: String,
    pub price_per_hour: f64,
    #[serde(default)]
    pub age_seconds: u64,
    #[serde(default)]
    pub expire_after_seconds: u64,
    #[serde(default)]
    pub cpu_utilisation: f32,
    #[serde(default)]
    pub memory_utilisation: f32,
    #[serde(default)]
    pub pods: u32,
    /// Defaults to one per pod (Karpenter's cost of a plain pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption_cost: Option<f64>,
    /// `Empty`, `Underutilized` or `Drifted`.
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodePoolRow {
    pub name: String,
    pub nodes: u32,
    pub cost_per_hour: f64,
    pub disruption_cost: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveRow {
    /// Node names removed.
    pub removed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_price_per_hour: Option<f64>,
    /// The following default from the removed candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savings_per_hour: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_evicted: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption_cost: Option<f64>,
}

impl OfferingRow {
    pub fn instance(&self) -> InstanceTypeRef<'_> {
        InstanceTypeRef {
            instance_type: &self.instance_type,
            family: self.family.as_deref(),
            category: self.category.as_deref(),
            architecture: self.architecture.as_deref(),
        }
    }
}

impl CandidateRow {
    pub fn instance(&self) -> InstanceTypeRef<'_> {
        InstanceTypeRef {
            instance_type: &self.instance_type,
            family: self.family.as_deref(),
            category: self.category.as_deref(),
            architecture: self.architecture.as_deref(),
        }
    }
}

/// More distinct names than a dictionary's wire column can number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a request holds at most {limit} distinct {what}; this one is one too many")]
pub struct DictionaryFull {
    pub what: &'static str,
    pub limit: usize,
}

/// One dictionary and a hash index of it, so interning is O(1) per row.
#[derive(Debug, Default)]
struct Interner(FxHashMap<Box<str>, u32>);

impl Interner {
    fn get(&self, s: &str) -> Option<u32> {
        self.0.get(s).copied()
    }

    /// The id of `s` in `dict`, adding it on first sight; ids stay below
    /// `limit`, the size of the column type that holds them.
    fn intern(
        &mut self,
        dict: &mut Dictionary,
        s: &str,
        what: &'static str,
        limit: usize,
    ) -> Result<u32, DictionaryFull> {
        if let Some(id) = self.get(s) {
            return Ok(id);
        }
        if dict.len() >= limit {
            return Err(DictionaryFull { what, limit });
        }
        let id = dict.push(s);
        self.0.insert(s.into(), id);
        Ok(id)
    }
}

const U8_IDS: usize = u8::MAX as usize + 1;
const U16_IDS: usize = u16::MAX as usize + 1;
const U32_IDS: usize = u32::MAX as usize;

/// Interns instance types and their attributes into dictionaries.
#[derive(Debug, Default)]
pub struct DictionaryBuilder {
    dicts: Dictionaries,
    types: Interner,
    families: Interner,
    categories: Interner,
    architectures: Interner,
    zones: Interner,
    node_pools: Interner,
}

impl DictionaryBuilder {
    /// The id of `row`'s instance type, adding it on first sight.
    pub fn instance_type(&mut self, row: InstanceTypeRef<'_>) -> Result<u32, DictionaryFull> {
        let name = row.instance_type;
        if let Some(id) = self.types.get(name) {
            return Ok(id);
        }
        if self.dicts.instance_types.len() >= U32_IDS {
            return Err(DictionaryFull {
                what: "instance types",
                limit: U32_IDS,
            });
        }
        let family = row
            .family
            .unwrap_or_else(|| name.split('.').next().unwrap_or(name));
        let category = row.category.unwrap_or_else(|| {
            let letters = family
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(family.len());
            &family[..letters]
        });
        let architecture = row
            .architecture
            .unwrap_or_else(|| guess_architecture(family));
        let d = &mut self.dicts;
        let f = self
            .families
            .intern(&mut d.families, family, "families", U16_IDS)?;
        let c = self
            .categories
            .intern(&mut d.categories, category, "categories", U16_IDS)?;
        let a = self.architectures.intern(
            &mut d.architectures,
            architecture,
            "architectures",
            U8_IDS,
        )?;
        d.type_family.push(f as u16);
        d.type_category.push(c as u16);
        d.type_architecture.push(a as u8);
        self.types
            .intern(&mut d.instance_types, name, "instance types", U32_IDS)
    }

    pub fn zone(&mut self, zone: &str) -> Result<u16, DictionaryFull> {
        let id = self
            .zones
            .intern(&mut self.dicts.zones, zone, "zones", U16_IDS)?;
        Ok(id as u16)
    }

    pub fn node_pool(&mut self, name: &str) -> Result<u16, DictionaryFull> {
        let id = self
            .node_pools
            .intern(&mut self.dicts.node_pools, name, "NodePools", U16_IDS)?;
        Ok(id as u16)
    }

    /// The id of NodePool `name`, if it was added.
    pub fn node_pool_id(&self, name: &str) -> Option<u16> {
        self.node_pools.get(name).map(|id| id as u16)
    }

    pub fn node_pool_count(&self) -> usize {
        self.dicts.node_pools.len()
    }

    pub fn finish(self) -> Dictionaries {
        self.dicts
    }
}

/// AWS names Graviton families with a `g` after the generation digit
/// (`m7g`, `c6gn`, `t4g`); everything else in the catalog is x86-64.
pub fn guess_architecture(family: &str) -> &'static str {
    let after_digit = family
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .trim_start_matches(|c: char| c.is_ascii_digit());
    if after_digit.starts_with('g') {
        "arm64"
    } else {
        "amd64"
    }
}

fn capacity_code(name: &str, path: String) -> Result<u8, DocumentError> {
    capacity::from_name(name).ok_or_else(|| {
        doc_err(
            path,
            format!("unknown capacity type `{name}`; use on-demand, spot or reserved"),
        )
    })
}

fn reason_code(name: &str, path: String) -> Result<u8, DocumentError> {
    reason::from_name(name).ok_or_else(|| {
        doc_err(
            path,
            format!("unknown reason `{name}`; use Empty, Underutilized or Drifted"),
        )
    })
}

/// Refuses an array longer than `limit`, naming it, its length and the limit.
fn at_most(len: usize, limit: usize, path: impl FnOnce() -> String) -> Result<(), DocumentError> {
    if len <= limit {
        return Ok(());
    }
    Err(doc_err(
        path(),
        format!(
            "{len} rows, more than the limit of {limit}; split the request into smaller ones (see docs/limits.md)"
        ),
    ))
}

fn price(value: f64, path: impl FnOnce() -> String) -> Result<f64, DocumentError> {
    check_price(value).map_err(|e| doc_err(path(), e.to_string()))
}

fn finite(value: f64, path: impl FnOnce() -> String) -> Result<f64, DocumentError> {
    if value.is_finite() {
        return Ok(value);
    }
    Err(doc_err(path(), format!("{value} is not a finite number")))
}

fn non_negative(value: f64, path: impl FnOnce() -> String) -> Result<f64, DocumentError> {
    if value.is_finite() && value >= 0.0 {
        return Ok(value);
    }
    let why = if value.is_finite() {
        format!("{} is negative; give 0 or more", Number(value))
    } else {
        format!("{value} is not a finite number")
    };
    Err(doc_err(path(), why))
}

/// Requested ÷ allocatable: a fraction from 0 to 1.
fn utilisation(value: f32, path: impl FnOnce() -> String) -> Result<f32, DocumentError> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        return Ok(value);
    }
    Err(doc_err(
        path(),
        format!("{value} is not a utilisation; give requested ÷ allocatable, from 0 to 1"),
    ))
}

fn full(path: String) -> impl FnOnce(DictionaryFull) -> DocumentError {
    move |e| doc_err(path, e.to_string())
}

impl SelectionDocument {
    /// Refuses a document with more rows than [`limits`] allow, before any
    /// work is spent on it.
    pub fn check_limits(&self) -> Result<(), DocumentError> {
        at_most(self.offerings.len(), limits::MAX_OFFERINGS, || {
            "offerings".to_string()
        })?;
        at_most(self.requests.len(), limits::MAX_LAUNCH_REQUESTS, || {
            "requests".to_string()
        })?;
        let mut compatible = 0usize;
        for (i, r) in self.requests.iter().enumerate() {
            at_most(r.min_values.len(), limits::MAX_MIN_VALUES, || {
                format!("requests[{i}].min_values")
            })?;
            compatible += r.compatible.as_ref().map_or(self.offerings.len(), Vec::len);
        }
        if compatible > limits::MAX_COMPATIBLE_ROWS {
            return Err(doc_err(
                "requests",
                format!(
                    "the launch requests list {compatible} compatible offering rows in all \
                     (an omitted `compatible` counts all {} offerings), more than the limit of {}; \
                     list fewer `compatible` rows or split the request (see docs/limits.md)",
                    self.offerings.len(),
                    limits::MAX_COMPATIBLE_ROWS
                ),
            ));
        }
        Ok(())
    }

    pub fn to_request(&self) -> Result<SelectionRequest, DocumentError> {
        self.check_limits()?;
        let mut dicts = DictionaryBuilder::default();
        let mut o = OfferingTable::default();
        for (i, row) in self.offerings.iter().enumerate() {
            let price_per_hour = price(row.price_per_hour, || {
                format!("offerings[{i}].price_per_hour")
            })?;
            o.instance_type.push(
                dicts
                    .instance_type(row.instance())
                    .map_err(full(format!("offerings[{i}].instance_type")))?,
            );
            o.vcpu.push(row.vcpu);
            o.memory_mib.push(row.memory_mib);
            o.gpus.push(row.gpus);
            o.alloc_cpu_milli
                .push(row.alloc_cpu_milli.unwrap_or(u64::from(row.vcpu) * 1000));
            o.alloc_memory_mib
                .push(row.alloc_memory_mib.unwrap_or(row.memory_mib));
            o.alloc_pods.push(row.alloc_pods);
            o.zone.push(
                dicts
                    .zone(&row.zone)
                    .map_err(full(format!("offerings[{i}].zone")))?,
            );
            o.capacity_type.push(capacity_code(
                &row.capacity_type,
                format!("offerings[{i}].capacity_type"),
            )?);
            o.price_per_hour.push(price_per_hour);
            o.available.push(row.available);
        }
        let mut requests = Vec::with_capacity(self.requests.len());
        for (i, r) in self.requests.iter().enumerate() {
            let compatible = match &r.compatible {
                Some(rows) => {
                    if let Some(bad) = rows.iter().find(|&&x| x as usize >= o.len()) {
                        return Err(doc_err(
                            format!("requests[{i}].compatible"),
                            format!("row {bad} is past the {} offerings", o.len()),
                        ));
                    }
                    let mut sorted = rows.clone();
                    sorted.sort_unstable();
                    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                        return Err(doc_err(
                            format!("requests[{i}].compatible"),
                            format!("row {} is listed twice", w[0]),
                        ));
                    }
                    rows.clone()
                }
                None => (0..o.len() as u32).collect(),
            };
            let mut min_values = Vec::new();
            for (j, mv) in r.min_values.iter().enumerate() {
                let attribute = Attribute::from_label(&mv.key).ok_or_else(|| {
                    doc_err(
                        format!("requests[{i}].min_values[{j}].key"),
                        format!(
                            "`{}` is not a label minValues can count here; use one of {}",
                            mv.key,
                            Attribute::ALL.map(|a| a.label()).join(", ")
                        ),
                    )
                })?;
                min_values.push(MinValues {
                    attribute,
                    min: mv.min,
                });
            }
            requests.push(LaunchRequest {
                node_pool: dicts
                    .node_pool(&r.node_pool)
                    .map_err(full(format!("requests[{i}].node_pool")))?,
                demand: r.demand,
                compatible,
                min_values,
                picks: r.picks,
            });
        }
        Ok(SelectionRequest {
            now_ms: self.now_ms,
            seed: self.seed,
            dictionaries: dicts.finish(),
            offerings: o,
            requests,
        })
    }
}

impl ConsolidationDocument {
    /// Refuses a document with more rows than [`limits`] allow, before any
    /// work is spent on it.
    pub fn check_limits(&self) -> Result<(), DocumentError> {
        at_most(self.candidates.len(), limits::MAX_CANDIDATES, || {
            "candidates".to_string()
        })?;
        at_most(self.node_pools.len(), limits::MAX_NODE_POOLS, || {
            "node_pools".to_string()
        })?;
        at_most(self.moves.len(), limits::MAX_MOVES, || "moves".to_string())?;
        let removed: usize = self.moves.iter().map(|m| m.removed.len()).sum();
        if removed > limits::MAX_REMOVED_ROWS {
            return Err(doc_err(
                "moves",
                format!(
                    "the moves remove {removed} nodes in all, more than the limit of {}; \
                     split the request (see docs/limits.md)",
                    limits::MAX_REMOVED_ROWS
                ),
            ));
        }
        Ok(())
    }

    pub fn to_request(&self) -> Result<(ConsolidationContext, Vec<ProposedMove>), DocumentError> {
        self.check_limits()?;
        let mut dicts = DictionaryBuilder::default();
        let mut names = Dictionary::default();
        let mut rows: FxHashMap<&str, u32> = FxHashMap::default();
        let mut c = CandidateTable::default();
        for (i, row) in self.candidates.iter().enumerate() {
            let at = |field: &str| format!("candidates[{i}].{field}");
            if rows.insert(&row.node, i as u32).is_some() {
                return Err(doc_err(
                    at("node"),
                    format!("node `{}` is listed twice", row.node),
                ));
            }
            c.node.push(names.push(&row.node));
            c.node_pool.push(
                dicts
                    .node_pool(&row.node_pool)
                    .map_err(full(at("node_pool")))?,
            );
            c.instance_type.push(
                dicts
                    .instance_type(row.instance())
                    .map_err(full(at("instance_type")))?,
            );
            c.capacity_type
                .push(capacity_code(&row.capacity_type, at("capacity_type"))?);
            c.zone
                .push(dicts.zone(&row.zone).map_err(full(at("zone")))?);
            c.price_per_hour
                .push(price(row.price_per_hour, || at("price_per_hour"))?);
            c.age_seconds.push(row.age_seconds);
            c.expire_after_seconds.push(row.expire_after_seconds);
            c.cpu_utilisation
                .push(utilisation(row.cpu_utilisation, || at("cpu_utilisation"))?);
            c.memory_utilisation
                .push(utilisation(row.memory_utilisation, || {
                    at("memory_utilisation")
                })?);
            c.pods.push(row.pods);
            let disruption = match row.disruption_cost {
                Some(cost) => finite(cost, || at("disruption_cost"))?,
                None => f64::from(row.pods),
            };
            c.disruption_cost.push(disruption);
            c.reason.push(reason_code(&row.reason, at("reason"))?);
        }
        let n = dicts.node_pool_count();
        let mut pools = NodePoolStats {
            nodes: vec![0; n],
            cost_per_hour: vec![0.0; n],
            disruption_cost: vec![0.0; n],
        };
        if self.node_pools.is_empty() {
            for i in 0..c.len() {
                let p = c.node_pool[i] as usize;
                pools.nodes[p] += 1;
                pools.cost_per_hour[p] += c.price_per_hour[i];
                pools.disruption_cost[p] += c.disruption_cost[i];
            }
        } else {
            let mut given = vec![false; n];
            for (i, row) in self.node_pools.iter().enumerate() {
                let at = |field: &str| format!("node_pools[{i}].{field}");
                let p = match dicts.node_pool_id(&row.name) {
                    Some(p) => p as usize,
                    None => {
                        dicts.node_pool(&row.name).map_err(full(at("name")))?;
                        pools.nodes.push(0);
                        pools.cost_per_hour.push(0.0);
                        pools.disruption_cost.push(0.0);
                        given.push(false);
                        pools.nodes.len() - 1
                    }
                };
                if std::mem::replace(&mut given[p], true) {
                    return Err(doc_err(
                        at("name"),
                        format!("NodePool `{}` is listed twice", row.name),
                    ));
                }
                pools.nodes[p] = row.nodes;
                pools.cost_per_hour[p] = non_negative(row.cost_per_hour, || at("cost_per_hour"))?;
                pools.disruption_cost[p] = finite(row.disruption_cost, || at("disruption_cost"))?;
            }
        }
        let mut moves = Vec::with_capacity(self.moves.len());
        for (i, m) in self.moves.iter().enumerate() {
            let at = |field: &str| format!("moves[{i}].{field}");
            let mut removed = Vec::with_capacity(m.removed.len());
            for (j, name) in m.removed.iter().enumerate() {
                let row = rows.get(name.as_str()).copied().ok_or_else(|| {
                    doc_err(
                        format!("moves[{i}].removed[{j}]"),
                        format!("`{name}` is not a candidate"),
                    )
                })?;
                removed.push(row);
            }
            if removed.is_empty() {
                return Err(doc_err(at("removed"), "a move removes at least one node"));
            }
            let mut sorted = removed.clone();
            sorted.sort_unstable();
            if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                return Err(doc_err(
                    at("removed"),
                    format!("`{}` is removed twice", names.get(w[0] as usize)),
                ));
            }
            let sum = |col: &dyn Fn(usize) -> f64| -> f64 {
                removed.iter().map(|&r| col(r as usize)).sum()
            };
            let removed_price = sum(&|r| c.price_per_hour[r]);
            let replacement = match m.replacement_price_per_hour {
                Some(p) => Some(price(p, || at("replacement_price_per_hour"))?),
                None => None,
            };
            let reason = match &m.reason {
                Some(name) => reason_code(name, at("reason"))?,
                None => removed
                    .iter()
                    .map(|&r| c.reason[r as usize])
                    .max()
                    .unwrap_or(reason::UNDERUTILIZED),
            };
            let savings_per_hour = match m.savings_per_hour {
                Some(s) => finite(s, || at("savings_per_hour"))?,
                None => removed_price - replacement.unwrap_or(0.0),
            };
            let pods_evicted = match m.pods_evicted {
                Some(p) => p,
                None => {
                    let pods: u64 = removed.iter().map(|&r| u64::from(c.pods[r as usize])).sum();
                    u32::try_from(pods).map_err(|_| {
                        doc_err(
                            at("removed"),
                            format!(
                                "the removed nodes hold {pods} pods in all, more than {}; give `pods_evicted`",
                                u32::MAX
                            ),
                        )
                    })?
                }
            };
            let disruption_cost = match m.disruption_cost {
                Some(d) => finite(d, || at("disruption_cost"))?,
                None => sum(&|r| c.disruption_cost[r]),
            };
            moves.push(ProposedMove {
                reason,
                replacement_price_per_hour: replacement,
                savings_per_hour,
                pods_evicted,
                disruption_cost,
                removed,
            });
        }
        Ok((
            ConsolidationContext {
                now_ms: self.now_ms,
                seed: self.seed,
                dictionaries: dicts.finish(),
                node_names: names,
                candidates: c,
                node_pools: pools,
            },
            moves,
        ))
    }
}

/// One picked offering, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PickRow {
    pub offering: u32,
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: String,
    pub price_per_hour: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaunchOutcome {
    Picks(Vec<PickRow>),
    Error(PolicyError),
}

/// A selection with names, for people.
pub fn explain_selection(request: &SelectionRequest, selection: &Selection) -> Vec<LaunchOutcome> {
    let o = &request.offerings;
    let d = &request.dictionaries;
    selection
        .iter()
        .map(|r| match r {
            Ok(picks) => LaunchOutcome::Picks(
                picks
                    .iter()
                    .map(|&p| {
                        let i = p as usize;
                        PickRow {
                            offering: p,
                            instance_type: d.instance_type(o.instance_type[i]).to_string(),
                            zone: d.zones.get(o.zone[i] as usize).to_string(),
                            capacity_type: capacity::name(o.capacity_type[i]).to_string(),
                            price_per_hour: o.price_per_hour[i],
                        }
                    })
                    .collect(),
            ),
            Err(e) => LaunchOutcome::Error(e.clone()),
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankRow {
    pub node: String,
    /// `null` when the policy excluded the node.
    pub score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRow {
    pub removed: Vec<String>,
    pub approve: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationExplanation {
    /// Candidates in the order the policy would consolidate them; excluded last.
    pub ranking: Vec<RankRow>,
    pub verdicts: Vec<VerdictRow>,
}

/// A ranking and verdicts with names, for people.
pub fn explain_consolidation(
    ctx: &ConsolidationContext,
    ranking: &Ranking,
    moves: &[ProposedMove],
    verdicts: &[Verdict],
) -> ConsolidationExplanation {
    let name = |row: u32| {
        ctx.node_names
            .get(ctx.candidates.node[row as usize] as usize)
            .to_string()
    };
    let mut order: Vec<u32> = (0..ranking.len() as u32).collect();
    order.sort_by(|&a, &b| {
        let key = |i: u32| ranking[i as usize].unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b)).then(a.cmp(&b))
    });
    ConsolidationExplanation {
        ranking: order
            .into_iter()
            .map(|i| RankRow {
                node: name(i),
                score: ranking[i as usize],
            })
            .collect(),
        verdicts: moves
            .iter()
            .zip(verdicts)
            .map(|(m, v)| VerdictRow {
                removed: m.removed.iter().map(|&r| name(r)).collect(),
                approve: v.approve,
                reason: v.reason.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_follows_aws_naming() {
        assert_eq!(guess_architecture("m7g"), "arm64");
        assert_eq!(guess_architecture("c6gn"), "arm64");
        assert_eq!(guess_architecture("t4g"), "arm64");
        assert_eq!(guess_architecture("m7i"), "amd64");
        assert_eq!(guess_architecture("g5"), "amd64");
        assert_eq!(guess_architecture("r8g"), "arm64");
    }

    fn offering(i: usize, zone: &str) -> OfferingRow {
        OfferingRow {
            // Every type distinct, families fewer than a u16 numbers.
            instance_type: format!("m{}.{}xlarge", i % 1000, i / 1000),
            vcpu: 2,
            memory_mib: 8192,
            alloc_pods: 110,
            zone: zone.to_string(),
            capacity_type: "on-demand".into(),
            price_per_hour: 0.1,
            available: true,
            ..OfferingRow::default()
        }
    }

    fn candidate(i: usize) -> CandidateRow {
        CandidateRow {
            node: format!("ip-10-0-{i}"),
            node_pool: "default".into(),
            instance_type: format!("m{}.large", i % 500),
            capacity_type: "spot".into(),
            zone: format!("us-east-1{}", i % 3),
            price_per_hour: 0.1,
            cpu_utilisation: 0.5,
            memory_utilisation: 0.25,
            pods: 3,
            reason: "Underutilized".into(),
            ..CandidateRow::default()
        }
    }

    fn selection(n: usize) -> SelectionDocument {
        SelectionDocument {
            offerings: (0..n).map(|i| offering(i, "us-east-1a")).collect(),
            requests: vec![LaunchRow {
                node_pool: "default".into(),
                ..LaunchRow::default()
            }],
            ..SelectionDocument::default()
        }
    }

    fn consolidation(n: usize) -> ConsolidationDocument {
        ConsolidationDocument {
            candidates: (0..n).map(candidate).collect(),
            moves: (0..n)
                .map(|i| MoveRow {
                    removed: vec![format!("ip-10-0-{i}")],
                    ..MoveRow::default()
                })
                .collect(),
            ..ConsolidationDocument::default()
        }
    }

    #[test]
    fn dictionaries_intern_each_name_once() {
        let mut doc = selection(4);
        doc.offerings.push(offering(1, "us-east-1b"));
        doc.offerings[0].instance_type = "m7g.xlarge".into();
        let req = doc.to_request().unwrap();
        let d = &req.dictionaries;
        assert_eq!(d.instance_types.len(), 4);
        assert_eq!(req.offerings.instance_type, [0, 1, 2, 3, 1]);
        assert_eq!(req.offerings.zone, [0, 0, 0, 0, 1]);
        assert_eq!(d.family_of(0), "m7g");
        assert_eq!(d.category_of(0), "m");
        assert_eq!(d.architecture_of(0), "arm64");
        assert_eq!(d.architecture_of(1), "amd64");
        assert_eq!(d.families.len(), 4, "m7g, m1, m2, m3");
        assert_eq!(d.categories.len(), 1);
        assert_eq!(req.requests[0].compatible, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn too_many_distinct_zones_are_refused_not_wrapped() {
        let n = u16::MAX as usize + 2;
        let doc = SelectionDocument {
            offerings: (0..n).map(|i| offering(0, &format!("zone-{i}"))).collect(),
            ..SelectionDocument::default()
        };
        let err = doc.to_request().unwrap_err();
        assert_eq!(err.path, format!("offerings[{}].zone", n - 1));
        assert!(
            err.message.contains("at most 65536 distinct zones"),
            "{err}"
        );
    }

    #[test]
    fn selection_prices_are_bounded() {
        for (price, says) in [
            (1e308, "above the limit of 10000 USD per hour"),
            (-1.0, "-1 is negative"),
            (f64::NAN, "not a price"),
        ] {
            let mut doc = selection(3);
            doc.offerings[2].price_per_hour = price;
            let err = doc.to_request().unwrap_err();
            assert_eq!(err.path, "offerings[2].price_per_hour");
            assert!(err.message.contains(says), "{err}");
        }
    }

    #[test]
    fn consolidation_refuses_negative_prices_and_utilisation() {
        type Edit = dyn Fn(&mut ConsolidationDocument);
        let cases: [(&Edit, &str, &str); 8] = [
            (
                &|d| d.candidates[1].price_per_hour = -0.4,
                "candidates[1].price_per_hour",
                "-0.4 is negative",
            ),
            (
                &|d| d.candidates[1].price_per_hour = 1e308,
                "candidates[1].price_per_hour",
                "above the limit",
            ),
            (
                &|d| d.candidates[0].cpu_utilisation = -0.5,
                "candidates[0].cpu_utilisation",
                "-0.5 is not a utilisation",
            ),
            (
                &|d| d.candidates[0].memory_utilisation = f32::INFINITY,
                "candidates[0].memory_utilisation",
                "inf is not a utilisation",
            ),
            (
                &|d| d.moves[1].replacement_price_per_hour = Some(-1.0),
                "moves[1].replacement_price_per_hour",
                "-1 is negative",
            ),
            (
                &|d| d.moves[0].removed.push("ip-10-0-0".into()),
                "moves[0].removed",
                "`ip-10-0-0` is removed twice",
            ),
            (
                &|d| {
                    d.node_pools = vec![
                        NodePoolRow {
                            name: "default".into(),
                            ..NodePoolRow::default()
                        };
                        2
                    ]
                },
                "node_pools[1].name",
                "listed twice",
            ),
            (
                &|d| {
                    d.node_pools = vec![NodePoolRow {
                        name: "default".into(),
                        cost_per_hour: -3.0,
                        ..NodePoolRow::default()
                    }]
                },
                "node_pools[0].cost_per_hour",
                "-3 is negative",
            ),
        ];
        for (edit, path, says) in cases {
            let mut doc = consolidation(3);
            doc.to_request().expect("the unedited document is valid");
            edit(&mut doc);
            let err = doc.to_request().unwrap_err();
            assert_eq!(err.path, path, "{err}");
            assert!(err.message.contains(says), "{err}");
        }
    }

    #[test]
    fn too_many_rows_are_refused_naming_the_array_and_limit() {
        let err = selection(limits::MAX_OFFERINGS + 1)
            .to_request()
            .unwrap_err();
        assert_eq!(err.path, "offerings");
        assert!(
            err.message
                .starts_with("200001 rows, more than the limit of 200000"),
            "{err}"
        );
        let mut doc = selection(limits::MAX_OFFERINGS);
        doc.requests = vec![LaunchRow::default(); 101];
        let err = doc.to_request().unwrap_err();
        assert_eq!(err.path, "requests");
        assert!(
            err.message
                .contains("20200000 compatible offering rows in all"),
            "{err}"
        );
        let mut doc = selection(1);
        doc.requests = vec![LaunchRow::default(); limits::MAX_LAUNCH_REQUESTS + 1];
        assert_eq!(doc.to_request().unwrap_err().path, "requests");
        let mut doc = consolidation(1);
        doc.moves = vec![doc.moves[0].clone(); limits::MAX_MOVES + 1];
        let err = doc.to_request().unwrap_err();
        assert_eq!(err.path, "moves");
        assert!(err.message.contains("limit of 100000"), "{err}");
    }

    /// Building a request is linear in its rows: four times the rows may
    /// take about four times as long (up to 10× allows for a busy machine),
    /// never the sixteen and more a quadratic path (a linear dictionary scan
    /// per row) takes. Runs alternate and the fastest of five counts, so
    /// other work on the machine mostly cancels.
    #[test]
    fn building_four_times_the_rows_takes_about_four_times_as_long() {
        fn ratio(small: impl Fn(), large: impl Fn()) -> f64 {
            let time = |f: &dyn Fn()| {
                let t = std::time::Instant::now();
                f();
                t.elapsed().as_secs_f64()
            };
            let (mut s, mut l) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..5 {
                s = s.min(time(&small));
                l = l.min(time(&large));
            }
            l / s
        }
        let n = 20_000;
        let (small, large) = (selection(n), selection(4 * n));
        let r = ratio(
            || drop(small.to_request().unwrap()),
            || drop(large.to_request().unwrap()),
        );
        eprintln!("selection: 4x the offerings took {r:.1}x as long");
        assert!(r < 10.0, "selection: 4x the offerings took {r:.1}x as long");
        let (small, large) = (consolidation(n), consolidation(4 * n));
        let r = ratio(
            || drop(small.to_request().unwrap()),
            || drop(large.to_request().unwrap()),
        );
        eprintln!("consolidation: 4x the nodes took {r:.1}x as long");
        assert!(r < 10.0, "consolidation: 4x the nodes took {r:.1}x as long");
        // The built-in choice with a minValues as large as the table.
        let min_values = |mut doc: SelectionDocument| {
            // Dearer rows first: the cheapest-first ranking then meets the
            // instance types in reverse, the worst order for a sorted list.
            let rows = doc.offerings.len();
            for (i, o) in doc.offerings.iter_mut().enumerate() {
                o.price_per_hour = 0.01 + (rows - i) as f64 * 1e-6;
            }
            doc.requests[0].min_values = vec![MinValuesRow {
                key: Attribute::InstanceType.label().to_string(),
                min: rows as u32,
            }];
            doc.to_request().unwrap()
        };
        let (small, large) = (min_values(selection(n)), min_values(selection(4 * n)));
        let r = ratio(
            || drop(crate::policy::select::default_select(&small)),
            || drop(crate::policy::select::default_select(&large)),
        );
        eprintln!("minValues: 4x the offerings took {r:.1}x as long");
        assert!(r < 10.0, "minValues: 4x the offerings took {r:.1}x as long");
    }

    #[test]
    fn bad_capacity_type_names_the_field() {
        let doc: SelectionDocument = serde_json::from_value(serde_json::json!({
            "offerings": [{"instance_type": "m5.large", "vcpu": 2, "memory_mib": 8192,
                "zone": "us-east-1a", "capacity_type": "preemptible", "price_per_hour": 0.1}],
            "requests": []
        }))
        .unwrap();
        let err = doc.to_request().unwrap_err();
        assert_eq!(err.path, "offerings[0].capacity_type");
        assert!(err.message.contains("on-demand, spot or reserved"));
    }
}
