//! Human-writable requests and readable decisions.
//!
//! The wire format is columnar; people write rows. A [`RequestDocument`] is
//! the JSON that `dovetail policy test --input` reads (see
//! `docs/policy-requests.md`), and [`explain_selection`] / [`explain_consolidation`]
//! turn decisions back into rows with names.

use serde::{Deserialize, Serialize};

use super::types::{
    Attribute, CandidateTable, ConsolidationContext, Demand, Dictionaries, Dictionary,
    LaunchRequest, MinValues, NodePoolStats, OfferingTable, PolicyError, ProposedMove, Ranking,
    Selection, SelectionRequest, Verdict, capacity, reason,
};

/// Why a document could not be turned into a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DocumentError {
    /// Where in the document, e.g. `offerings[3].capacity_type`.
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceTypeRow {
    pub instance_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferingRow {
    #[serde(flatten)]
    pub instance: InstanceTypeRow,
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
    #[serde(flatten)]
    pub instance: InstanceTypeRow,
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

/// Interns instance types and their attributes into dictionaries.
#[derive(Debug, Default)]
pub struct DictionaryBuilder {
    dicts: Dictionaries,
}

impl DictionaryBuilder {
    fn intern(dict: &mut Dictionary, s: &str) -> u32 {
        dict.position(s).unwrap_or_else(|| dict.push(s))
    }

    /// The id of `row`'s instance type, adding it on first sight.
    pub fn instance_type(&mut self, row: &InstanceTypeRow) -> u32 {
        if let Some(id) = self.dicts.instance_types.position(&row.instance_type) {
            return id;
        }
        let name = row.instance_type.as_str();
        let family = row
            .family
            .clone()
            .unwrap_or_else(|| name.split('.').next().unwrap_or(name).to_string());
        let category = row.category.clone().unwrap_or_else(|| {
            family
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect()
        });
        let architecture = row
            .architecture
            .clone()
            .unwrap_or_else(|| guess_architecture(&family).to_string());
        let d = &mut self.dicts;
        let f = Self::intern(&mut d.families, &family) as u16;
        let c = Self::intern(&mut d.categories, &category) as u16;
        let a = Self::intern(&mut d.architectures, &architecture) as u8;
        d.type_family.push(f);
        d.type_category.push(c);
        d.type_architecture.push(a);
        d.instance_types.push(name)
    }

    pub fn zone(&mut self, zone: &str) -> u16 {
        Self::intern(&mut self.dicts.zones, zone) as u16
    }

    pub fn node_pool(&mut self, name: &str) -> u16 {
        Self::intern(&mut self.dicts.node_pools, name) as u16
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

impl SelectionDocument {
    pub fn to_request(&self) -> Result<SelectionRequest, DocumentError> {
        let mut dicts = DictionaryBuilder::default();
        let mut o = OfferingTable::default();
        for (i, row) in self.offerings.iter().enumerate() {
            if !(row.price_per_hour.is_finite() && row.price_per_hour >= 0.0) {
                return Err(doc_err(
                    format!("offerings[{i}].price_per_hour"),
                    "must be a non-negative number",
                ));
            }
            o.instance_type.push(dicts.instance_type(&row.instance));
            o.vcpu.push(row.vcpu);
            o.memory_mib.push(row.memory_mib);
            o.gpus.push(row.gpus);
            o.alloc_cpu_milli
                .push(row.alloc_cpu_milli.unwrap_or(u64::from(row.vcpu) * 1000));
            o.alloc_memory_mib
                .push(row.alloc_memory_mib.unwrap_or(row.memory_mib));
            o.alloc_pods.push(row.alloc_pods);
            o.zone.push(dicts.zone(&row.zone));
            o.capacity_type.push(capacity_code(
                &row.capacity_type,
                format!("offerings[{i}].capacity_type"),
            )?);
            o.price_per_hour.push(row.price_per_hour);
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
                node_pool: dicts.node_pool(&r.node_pool),
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
    pub fn to_request(&self) -> Result<(ConsolidationContext, Vec<ProposedMove>), DocumentError> {
        let mut dicts = DictionaryBuilder::default();
        let mut names = Dictionary::default();
        let mut c = CandidateTable::default();
        for (i, row) in self.candidates.iter().enumerate() {
            if names.position(&row.node).is_some() {
                return Err(doc_err(
                    format!("candidates[{i}].node"),
                    format!("node `{}` is listed twice", row.node),
                ));
            }
            c.node.push(names.push(&row.node));
            c.node_pool.push(dicts.node_pool(&row.node_pool));
            c.instance_type.push(dicts.instance_type(&row.instance));
            c.capacity_type.push(capacity_code(
                &row.capacity_type,
                format!("candidates[{i}].capacity_type"),
            )?);
            c.zone.push(dicts.zone(&row.zone));
            c.price_per_hour.push(row.price_per_hour);
            c.age_seconds.push(row.age_seconds);
            c.expire_after_seconds.push(row.expire_after_seconds);
            c.cpu_utilisation.push(row.cpu_utilisation);
            c.memory_utilisation.push(row.memory_utilisation);
            c.pods.push(row.pods);
            c.disruption_cost
                .push(row.disruption_cost.unwrap_or(f64::from(row.pods)));
            c.reason
                .push(reason_code(&row.reason, format!("candidates[{i}].reason"))?);
        }
        let mut dictionaries = dicts.finish();
        let pools = if self.node_pools.is_empty() {
            let n = dictionaries.node_pools.len();
            let mut s = NodePoolStats {
                nodes: vec![0; n],
                cost_per_hour: vec![0.0; n],
                disruption_cost: vec![0.0; n],
            };
            for i in 0..c.len() {
                let p = c.node_pool[i] as usize;
                s.nodes[p] += 1;
                s.cost_per_hour[p] += c.price_per_hour[i];
                s.disruption_cost[p] += c.disruption_cost[i];
            }
            s
        } else {
            let mut s = NodePoolStats {
                nodes: vec![0; dictionaries.node_pools.len()],
                cost_per_hour: vec![0.0; dictionaries.node_pools.len()],
                disruption_cost: vec![0.0; dictionaries.node_pools.len()],
            };
            for row in &self.node_pools {
                let p = match dictionaries.node_pools.position(&row.name) {
                    Some(p) => p as usize,
                    None => {
                        dictionaries.node_pools.push(&row.name);
                        s.nodes.push(0);
                        s.cost_per_hour.push(0.0);
                        s.disruption_cost.push(0.0);
                        s.nodes.len() - 1
                    }
                };
                s.nodes[p] = row.nodes;
                s.cost_per_hour[p] = row.cost_per_hour;
                s.disruption_cost[p] = row.disruption_cost;
            }
            s
        };
        let mut moves = Vec::with_capacity(self.moves.len());
        for (i, m) in self.moves.iter().enumerate() {
            let mut removed = Vec::with_capacity(m.removed.len());
            for (j, name) in m.removed.iter().enumerate() {
                let row = names.position(name).ok_or_else(|| {
                    doc_err(
                        format!("moves[{i}].removed[{j}]"),
                        format!("`{name}` is not a candidate"),
                    )
                })?;
                removed.push(row);
            }
            if removed.is_empty() {
                return Err(doc_err(
                    format!("moves[{i}].removed"),
                    "a move removes at least one node",
                ));
            }
            let sum = |col: &dyn Fn(usize) -> f64| -> f64 {
                removed.iter().map(|&r| col(r as usize)).sum()
            };
            let price = sum(&|r| c.price_per_hour[r]);
            let reason = match &m.reason {
                Some(name) => reason_code(name, format!("moves[{i}].reason"))?,
                None => removed
                    .iter()
                    .map(|&r| c.reason[r as usize])
                    .max()
                    .unwrap_or(reason::UNDERUTILIZED),
            };
            moves.push(ProposedMove {
                reason,
                replacement_price_per_hour: m.replacement_price_per_hour,
                savings_per_hour: m
                    .savings_per_hour
                    .unwrap_or(price - m.replacement_price_per_hour.unwrap_or(0.0)),
                pods_evicted: m
                    .pods_evicted
                    .unwrap_or_else(|| removed.iter().map(|&r| c.pods[r as usize]).sum()),
                disruption_cost: m
                    .disruption_cost
                    .unwrap_or_else(|| sum(&|r| c.disruption_cost[r])),
                removed,
            });
        }
        Ok((
            ConsolidationContext {
                now_ms: self.now_ms,
                seed: self.seed,
                dictionaries,
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
