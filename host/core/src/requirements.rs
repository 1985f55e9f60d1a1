//! Karpenter's requirement algebra.
//!
//! A requirement constrains one label key to a set of values: either the set
//! itself (`In`, `DoesNotExist` = the empty set) or its complement (`NotIn`,
//! `Exists` = the complement of the empty set), optionally bounded by
//! integers (`Gt`, `Lt`, `Gte`, `Lte`, kept as inclusive bounds). NodePools,
//! instance types, offerings, pods and topology decisions are all expressed
//! this way, and scheduling is the intersection of them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::labels::{self, WellKnown};
use crate::sym::Sym;

/// A node selector operator, as Kubernetes and Karpenter spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
    Gte,
    Lte,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
            Operator::Gt => "Gt",
            Operator::Lt => "Lt",
            Operator::Gte => "Gte",
            Operator::Lte => "Lte",
        }
    }
}

/// A requirement as written in a manifest (`nodeSelectorTerms`, NodePool
/// `requirements`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelectorRequirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_values: Option<u32>,
}

impl NodeSelectorRequirement {
    pub fn new(key: &str, operator: Operator, values: &[&str]) -> Self {
        Self {
            key: key.to_string(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
            min_values: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    #[error("requirement `{key} {op}` needs at least one value; list the values it allows")]
    InNeedsValues { key: String, op: &'static str },
    #[error("requirement `{key} {op}` takes no values; remove `values` or use In/NotIn")]
    NoValuesAllowed { key: String, op: &'static str },
    #[error(
        "requirement `{key} {op}` needs exactly one non-negative integer value, got {values:?}"
    )]
    NeedsInteger {
        key: String,
        op: &'static str,
        values: Vec<String>,
    },
    #[error(
        "requirement `{key}` has minValues {min} but lists only {values} values; lower minValues or add values"
    )]
    MinValuesTooLarge {
        key: String,
        min: u32,
        values: usize,
    },
    #[error("requirement key is empty; name a label such as `{}`", labels::ZONE)]
    EmptyKey,
}

/// One key's allowed values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    pub key: Sym,
    complement: bool,
    /// Sorted and without duplicates.
    values: Vec<Sym>,
    /// Inclusive integer bounds.
    gte: Option<i64>,
    lte: Option<i64>,
    pub min_values: Option<u32>,
}

fn sorted(mut v: Vec<Sym>) -> Vec<Sym> {
    v.sort_unstable();
    v.dedup();
    v
}

impl Requirement {
    pub fn is_in(key: Sym, values: impl IntoIterator<Item = Sym>) -> Self {
        Self {
            key,
            complement: false,
            values: sorted(values.into_iter().collect()),
            gte: None,
            lte: None,
            min_values: None,
        }
    }

    pub fn single(key: Sym, value: Sym) -> Self {
        Self {
            key,
            complement: false,
            values: vec![value],
            gte: None,
            lte: None,
            min_values: None,
        }
    }

    pub fn not_in(key: Sym, values: impl IntoIterator<Item = Sym>) -> Self {
        Self {
            complement: true,
            ..Self::is_in(key, values)
        }
    }

    pub fn exists(key: Sym) -> Self {
        Self::not_in(key, [])
    }

    pub fn does_not_exist(key: Sym) -> Self {
        Self::is_in(key, [])
    }

    /// Compiles a manifest requirement, checking it as Karpenter's validation does.
    pub fn from_term(term: &NodeSelectorRequirement) -> Result<Self, RequirementError> {
        if term.key.is_empty() {
            return Err(RequirementError::EmptyKey);
        }
        let key = Sym::new(&term.key);
        let op = term.operator.as_str();
        let values = || term.values.iter().map(|v| Sym::new(v));
        let integer = || -> Result<i64, RequirementError> {
            match term.values.as_slice() {
                [v] => v.parse::<i64>().ok().filter(|n| *n >= 0),
                _ => None,
            }
            .ok_or_else(|| RequirementError::NeedsInteger {
                key: term.key.clone(),
                op,
                values: term.values.clone(),
            })
        };
        let mut r = match term.operator {
            Operator::In => {
                if term.values.is_empty() {
                    return Err(RequirementError::InNeedsValues {
                        key: term.key.clone(),
                        op,
                    });
                }
                Self::is_in(key, values())
            }
            Operator::NotIn => Self::not_in(key, values()),
            Operator::Exists | Operator::DoesNotExist => {
                if !term.values.is_empty() {
                    return Err(RequirementError::NoValuesAllowed {
                        key: term.key.clone(),
                        op,
                    });
                }
                if term.operator == Operator::Exists {
                    Self::exists(key)
                } else {
                    Self::does_not_exist(key)
                }
            }
            Operator::Gt => Self::bounded(key, Some(integer()?.saturating_add(1)), None),
            Operator::Gte => Self::bounded(key, Some(integer()?), None),
            Operator::Lt => Self::bounded(key, None, Some(integer()?.saturating_sub(1))),
            Operator::Lte => Self::bounded(key, None, Some(integer()?)),
        };
        if let Some(min) = term.min_values {
            if term.operator == Operator::In && (min as usize) > term.values.len() {
                return Err(RequirementError::MinValuesTooLarge {
                    key: term.key.clone(),
                    min,
                    values: term.values.len(),
                });
            }
            r.min_values = Some(min);
        }
        Ok(r)
    }

    fn bounded(key: Sym, gte: Option<i64>, lte: Option<i64>) -> Self {
        Self {
            gte,
            lte,
            ..Self::exists(key)
        }
    }

    pub fn with_min_values(mut self, min: Option<u32>) -> Self {
        self.min_values = min;
        self
    }

    pub fn is_complement(&self) -> bool {
        self.complement
    }

    /// The listed values (the excluded ones for a complement).
    pub fn values(&self) -> &[Sym] {
        &self.values
    }

    fn within_bounds(&self, value: Sym) -> bool {
        within(value, self.gte, self.lte)
    }

    /// Whether `value` is allowed.
    pub fn has(&self, value: Sym) -> bool {
        let listed = if self.values.len() <= 8 {
            self.values.contains(&value)
        } else {
            self.values.binary_search(&value).is_ok()
        };
        listed != self.complement && self.within_bounds(value)
    }

    /// Number of allowed values; "unbounded" for a complement.
    pub fn len(&self) -> usize {
        if self.complement {
            usize::MAX - self.values.len()
        } else {
            self.values.len()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A value this requirement allows, as Karpenter's `Any` picks one for a
    /// NodeClaim label, but the same every time: the first listed value of
    /// an `In`; for `NotIn`, `Exists` and bounds, the smallest allowed
    /// non-negative integer. `None` for `DoesNotExist` (or nothing allowed).
    pub fn any(&self) -> Option<Sym> {
        if !self.complement {
            return self.values.first().copied();
        }
        let from = self.gte.unwrap_or(0).max(0);
        let to = self.lte.unwrap_or(i64::MAX);
        // Each excluded value rules out at most one integer.
        (from..=to)
            .take(self.values.len() + 1)
            .map(|n| Sym::new(&n.to_string()))
            .find(|&v| self.has(v))
    }

    /// The one allowed value, if exactly one.
    pub fn single_value(&self) -> Option<Sym> {
        match (self.complement, self.values.as_slice()) {
            (false, [v]) => Some(*v),
            _ => None,
        }
    }

    pub fn operator(&self) -> Operator {
        match (self.complement, self.values.is_empty()) {
            (true, true) if self.gte.is_some() => Operator::Gte,
            (true, true) if self.lte.is_some() => Operator::Lte,
            (true, true) => Operator::Exists,
            (true, false) => Operator::NotIn,
            (false, true) => Operator::DoesNotExist,
            (false, false) => Operator::In,
        }
    }

    /// Allows `value` too (it must be a concrete set to grow).
    pub fn insert(&mut self, value: Sym) {
        match self.values.binary_search(&value) {
            Ok(i) if self.complement => {
                self.values.remove(i);
            }
            Err(i) if !self.complement => self.values.insert(i, value),
            _ => {}
        }
    }

    /// Disallows `value`.
    pub fn remove(&mut self, value: Sym) {
        match self.values.binary_search(&value) {
            Ok(i) if !self.complement => {
                self.values.remove(i);
            }
            Err(i) if self.complement => self.values.insert(i, value),
            _ => {}
        }
    }

    /// The values allowed by both.
    pub fn intersection(&self, other: &Requirement) -> Requirement {
        let complement = self.complement && other.complement;
        let gte = max_opt(self.gte, other.gte);
        let lte = min_opt(self.lte, other.lte);
        let min_values = max_opt(self.min_values, other.min_values);
        if let (Some(g), Some(l)) = (gte, lte)
            && g > l
        {
            return Requirement::does_not_exist(self.key).with_min_values(min_values);
        }
        let mut values: Vec<Sym> = match (self.complement, other.complement) {
            (true, true) => sorted(self.values.iter().chain(&other.values).copied().collect()),
            (true, false) => difference(&other.values, &self.values),
            (false, true) => difference(&self.values, &other.values),
            (false, false) => self
                .values
                .iter()
                .copied()
                .filter(|v| other.values.binary_search(v).is_ok())
                .collect(),
        };
        values.retain(|&v| within(v, gte, lte));
        let (gte, lte) = if complement { (gte, lte) } else { (None, None) };
        Requirement {
            key: self.key,
            complement,
            values,
            gte,
            lte,
            min_values,
        }
    }

    /// Whether some value is allowed by both, without building the intersection.
    pub fn has_intersection(&self, other: &Requirement) -> bool {
        let gte = max_opt(self.gte, other.gte);
        let lte = min_opt(self.lte, other.lte);
        if let (Some(g), Some(l)) = (gte, lte)
            && g > l
        {
            return false;
        }
        match (self.complement, other.complement) {
            (true, true) => true,
            (true, false) => other
                .values
                .iter()
                .any(|&v| self.values.binary_search(&v).is_err() && within(v, gte, lte)),
            (false, true) => self
                .values
                .iter()
                .any(|&v| other.values.binary_search(&v).is_err() && within(v, gte, lte)),
            (false, false) => {
                // Both sorted: merge walk.
                let (mut i, mut j) = (0, 0);
                let (a, b) = (&self.values, &other.values);
                while i < a.len() && j < b.len() {
                    if a[i] == b[j] {
                        if within(a[i], gte, lte) {
                            return true;
                        }
                        i += 1;
                        j += 1;
                    } else if a[i] < b[j] {
                        i += 1;
                    } else {
                        j += 1;
                    }
                }
                false
            }
        }
    }

    /// Karpenter's per-key `Intersects` rule with `self` as the existing
    /// requirement: they share a value, or both are negative.
    pub fn admits(&self, incoming: &Requirement) -> bool {
        self.has_intersection(incoming) || self.is_negative() && incoming.is_negative()
    }

    pub(crate) fn is_negative(&self) -> bool {
        matches!(self.operator(), Operator::NotIn | Operator::DoesNotExist)
    }

    /// Back to manifest form.
    pub fn to_term(&self) -> NodeSelectorRequirement {
        let op = self.operator();
        let values = match op {
            Operator::Gte => vec![self.gte.unwrap_or_default().to_string()],
            Operator::Lte => vec![self.lte.unwrap_or_default().to_string()],
            _ => self.values.iter().map(|v| v.to_string()).collect(),
        };
        NodeSelectorRequirement {
            key: self.key.to_string(),
            operator: op,
            values,
            min_values: self.min_values,
        }
    }
}

fn within(value: Sym, gte: Option<i64>, lte: Option<i64>) -> bool {
    if gte.is_none() && lte.is_none() {
        return true;
    }
    let Some(n) = value.as_int() else {
        return false;
    };
    gte.is_none_or(|g| n >= g) && lte.is_none_or(|l| n <= l)
}

fn difference(a: &[Sym], b: &[Sym]) -> Vec<Sym> {
    a.iter()
        .copied()
        .filter(|v| b.binary_search(v).is_err())
        .collect()
}

fn max_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.operator();
        write!(f, "{} {}", self.key, op.as_str())?;
        match op {
            Operator::Exists | Operator::DoesNotExist => Ok(()),
            Operator::Gte => write!(f, " {}", self.gte.unwrap_or_default()),
            Operator::Lte => write!(f, " {}", self.lte.unwrap_or_default()),
            _ => {
                const SHOWN: usize = 6;
                let shown: Vec<&str> = self.values.iter().take(SHOWN).map(|v| v.as_str()).collect();
                write!(f, " [{}", shown.join(", "))?;
                if self.values.len() > SHOWN {
                    write!(f, " and {} more", self.values.len() - SHOWN)?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Why two sets of requirements cannot both hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incompatible {
    #[error("label `{key}` has no allowed values here; it is not defined by {what}")]
    Undefined { key: Sym, what: &'static str },
    #[error("`{wanted}` conflicts with `{offered}`")]
    Disjoint { wanted: String, offered: String },
}

/// Requirements on several keys, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Requirements(Vec<Requirement>);

impl Requirements {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compiles manifest requirements (the AND of them).
    pub fn from_terms<'a>(
        terms: impl IntoIterator<Item = &'a NodeSelectorRequirement>,
    ) -> Result<Self, RequirementError> {
        let mut r = Self::new();
        for t in terms {
            r.add(Requirement::from_term(t)?);
        }
        Ok(r)
    }

    /// One `In` requirement per label.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = (&'a Sym, &'a Sym)>) -> Self {
        let mut r = Self::new();
        for (&k, &v) in labels {
            r.add(Requirement::single(k, v));
        }
        r
    }

    pub fn iter(&self) -> impl Iterator<Item = &Requirement> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, key: Sym) -> Result<usize, usize> {
        self.0.binary_search_by(|r| r.key.cmp(&key))
    }

    pub fn get(&self, key: Sym) -> Option<&Requirement> {
        // Pointer comparisons beat an ordered search over a few keys; a
        // node's labels are many, and touching fewer of them wins there.
        if self.0.len() <= 8 {
            self.0.iter().find(|r| r.key == key)
        } else {
            self.position(key).ok().map(|i| &self.0[i])
        }
    }

    pub fn has(&self, key: Sym) -> bool {
        self.get(key).is_some()
    }

    /// The requirement for `key`, `Exists` when unconstrained.
    pub fn get_or_exists(&self, key: Sym) -> Requirement {
        self.get(key)
            .cloned()
            .unwrap_or_else(|| Requirement::exists(key))
    }

    /// Adds `r`, intersecting with any existing requirement on its key.
    pub fn add(&mut self, r: Requirement) {
        match self.position(r.key) {
            Ok(i) => {
                if self.0[i] != r {
                    self.0[i] = self.0[i].intersection(&r);
                }
            }
            Err(i) => self.0.insert(i, r),
        }
    }

    pub fn add_all(&mut self, other: &Requirements) {
        for r in &other.0 {
            self.add(r.clone());
        }
    }

    /// Replaces the requirement on `r.key`.
    pub fn set(&mut self, r: Requirement) {
        match self.position(r.key) {
            Ok(i) => self.0[i] = r,
            Err(i) => self.0.insert(i, r),
        }
    }

    pub fn remove(&mut self, key: Sym) {
        if let Ok(i) = self.position(key) {
            self.0.remove(i);
        }
    }

    /// Keys present in both must share a value, except that two negative
    /// requirements (`NotIn`, `DoesNotExist`) never conflict.
    pub fn intersects(&self, incoming: &Requirements) -> Result<(), Incompatible> {
        let (a, b) = (&self.0, &incoming.0);
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            if a[i].key == b[j].key {
                check_pair(&a[i], &b[j])?;
                i += 1;
                j += 1;
            } else if a[i].key < b[j].key {
                i += 1;
            } else {
                j += 1;
            }
        }
        Ok(())
    }

    /// Whether `incoming` (a pod's requirements) can be met here: keys both
    /// define must intersect; a key only `incoming` defines is allowed when
    /// its requirement is negative, or, with `allow_well_known`, when it is a
    /// well-known label the cloud fills in at launch.
    pub fn compatible(
        &self,
        incoming: &Requirements,
        allow_well_known: bool,
        what: &'static str,
    ) -> Result<(), Incompatible> {
        self.compatible_with(
            incoming,
            allow_well_known.then_some(WellKnown::BUILT_IN),
            what,
        )
    }

    /// [`Requirements::compatible`], with the well-known labels a catalog
    /// adds: `None` allows no undefined key but negative ones (a node that
    /// exists), `Some` also allows those labels (a NodeClaim to launch).
    pub fn compatible_with(
        &self,
        incoming: &Requirements,
        well_known: Option<WellKnown<'_>>,
        what: &'static str,
    ) -> Result<(), Incompatible> {
        for r in &incoming.0 {
            if self.has(r.key) || r.is_negative() {
                continue;
            }
            if !well_known.is_some_and(|w| w.contains(r.key)) {
                return Err(Incompatible::Undefined { key: r.key, what });
            }
        }
        self.intersects(incoming)
    }

    /// Labels with exactly one allowed value.
    pub fn single_values(&self) -> impl Iterator<Item = (Sym, Sym)> + '_ {
        self.0
            .iter()
            .filter_map(|r| r.single_value().map(|v| (r.key, v)))
    }

    pub fn to_terms(&self) -> Vec<NodeSelectorRequirement> {
        self.0.iter().map(Requirement::to_term).collect()
    }
}

fn check_pair(existing: &Requirement, incoming: &Requirement) -> Result<(), Incompatible> {
    if existing.admits(incoming) {
        return Ok(());
    }
    Err(Incompatible::Disjoint {
        wanted: incoming.to_string(),
        offered: existing.to_string(),
    })
}

impl fmt::Display for Requirements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(key: &str, op: Operator, values: &[&str]) -> Requirement {
        Requirement::from_term(&NodeSelectorRequirement::new(key, op, values)).unwrap()
    }

    fn s(v: &str) -> Sym {
        Sym::new(v)
    }

    #[test]
    fn operators_allow_what_kubernetes_says() {
        let zone = labels::ZONE;
        assert!(term(zone, Operator::In, &["a", "b"]).has(s("a")));
        assert!(!term(zone, Operator::In, &["a"]).has(s("c")));
        assert!(term(zone, Operator::NotIn, &["a"]).has(s("c")));
        assert!(!term(zone, Operator::NotIn, &["a"]).has(s("a")));
        assert!(term(zone, Operator::Exists, &[]).has(s("x")));
        assert!(!term(zone, Operator::DoesNotExist, &[]).has(s("x")));
        let cpu = labels::INSTANCE_CPU;
        assert!(term(cpu, Operator::Gt, &["4"]).has(s("8")));
        assert!(!term(cpu, Operator::Gt, &["4"]).has(s("4")));
        assert!(term(cpu, Operator::Gte, &["4"]).has(s("4")));
        assert!(!term(cpu, Operator::Lt, &["4"]).has(s("4")));
        assert!(term(cpu, Operator::Lte, &["4"]).has(s("4")));
        assert!(!term(cpu, Operator::Gt, &["4"]).has(s("big")));
    }

    #[test]
    fn intersections() {
        let k = labels::ZONE;
        let a = term(k, Operator::In, &["a", "b", "c"]);
        let b = term(k, Operator::NotIn, &["b"]);
        let i = a.intersection(&b);
        assert_eq!(i.values(), &[s("a"), s("c")]);
        assert_eq!(i.operator(), Operator::In);
        let gt = term(k, Operator::Gt, &["2"]);
        let lt = term(k, Operator::Lt, &["3"]);
        assert!(gt.intersection(&lt).is_empty(), "no integer is > 2 and < 3");
        assert!(!gt.has_intersection(&lt));
        let nums = term(k, Operator::In, &["1", "5", "x"]);
        assert_eq!(nums.intersection(&gt).values(), &[s("5")]);
        let exists = term(k, Operator::Exists, &[]);
        let dne = term(k, Operator::DoesNotExist, &[]);
        assert!(!exists.has_intersection(&dne));
    }

    #[test]
    fn well_known_labels_may_be_undefined_custom_ones_may_not() {
        let pool = Requirements::from_terms(&[NodeSelectorRequirement::new(
            labels::CAPACITY_TYPE,
            Operator::In,
            &["spot"],
        )])
        .unwrap();
        let arm = Requirements::from_terms(&[NodeSelectorRequirement::new(
            labels::ARCH,
            Operator::In,
            &["arm64"],
        )])
        .unwrap();
        assert!(pool.compatible(&arm, true, "the NodePool").is_ok());
        assert!(pool.compatible(&arm, false, "the node").is_err());
        let team =
            Requirements::from_terms(&[NodeSelectorRequirement::new("team", Operator::In, &["a"])])
                .unwrap();
        let err = pool.compatible(&team, true, "the NodePool").unwrap_err();
        assert!(err.to_string().contains("`team`"), "{err}");
        let not_team = Requirements::from_terms(&[NodeSelectorRequirement::new(
            "team",
            Operator::NotIn,
            &["a"],
        )])
        .unwrap();
        assert!(pool.compatible(&not_team, true, "the NodePool").is_ok());
        let on_demand = Requirements::from_terms(&[NodeSelectorRequirement::new(
            labels::CAPACITY_TYPE,
            Operator::In,
            &["on-demand"],
        )])
        .unwrap();
        let err = pool
            .compatible(&on_demand, true, "the NodePool")
            .unwrap_err();
        assert!(err.to_string().contains("on-demand"), "{err}");
    }

    #[test]
    fn bad_terms_are_named() {
        let err = Requirement::from_term(&NodeSelectorRequirement::new(
            labels::INSTANCE_CPU,
            Operator::Gt,
            &["four"],
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("karpenter.k8s.aws/instance-cpu Gt")
        );
        assert!(
            Requirement::from_term(&NodeSelectorRequirement::new("k", Operator::In, &[])).is_err()
        );
        let mut t = NodeSelectorRequirement::new("k", Operator::In, &["a"]);
        t.min_values = Some(2);
        assert!(Requirement::from_term(&t).is_err());
    }
}
