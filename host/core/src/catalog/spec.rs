//! User-supplied instance types, as written in scenario files.
//!
//! Quantities are Kubernetes strings (`"4"`, `"500m"`, `"16Gi"`), labels a
//! plain map, and every error names the instance type and the field.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::price::check_price;
use super::{CapacityType, Catalog, InstanceType, Offering, Overhead, PriceSource};
use crate::labels;
use crate::resources::{
    self, CPU, EPHEMERAL_STORAGE, MEMORY, PODS, ResourceList, Resources, format_bytes, format_cpu,
};
use crate::sym::Sym;

/// One instance type as a user writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceTypeSpec {
    pub name: String,
    /// Node labels. `node.kubernetes.io/instance-type` and
    /// `topology.kubernetes.io/region` are added when missing; zone and
    /// capacity type belong to offerings, not here. A label may list
    /// several values (`kubernetes.io/os: [linux, windows]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, LabelValue>,
    /// Needs `cpu` and `memory`; `pods` defaults to kubelet's 110.
    pub capacity: ResourceList,
    /// Empty by default: capacity is then all allocatable.
    #[serde(default, skip_serializing_if = "OverheadSpec::is_empty")]
    pub overhead: OverheadSpec,
    pub offerings: Vec<OfferingSpec>,
}

/// A label's value as a catalog writes it: one value, or a list of them
/// for a label a type offers several of (an os list). A requirement matches
/// if it allows any of them; a node gets the one its NodeClaim allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelValue {
    One(String),
    Many(Vec<String>),
}

impl LabelValue {
    pub fn values(&self) -> &[String] {
        match self {
            LabelValue::One(v) => std::slice::from_ref(v),
            LabelValue::Many(v) => v,
        }
    }
}

impl From<&str> for LabelValue {
    fn from(v: &str) -> Self {
        LabelValue::One(v.to_string())
    }
}

impl From<String> for LabelValue {
    fn from(v: String) -> Self {
        LabelValue::One(v)
    }
}

impl Serialize for LabelValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LabelValue::One(v) => s.serialize_str(v),
            LabelValue::Many(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for LabelValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LabelValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a label value, or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LabelValue, E> {
                Ok(LabelValue::One(v.to_string()))
            }
            // Unquoted numbers and booleans are label values as written.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LabelValue, E> {
                Ok(LabelValue::One(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LabelValue, E> {
                Ok(LabelValue::One(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LabelValue, E> {
                Ok(LabelValue::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LabelValue, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<LabelValue>()? {
                    match v {
                        LabelValue::One(v) => values.push(v),
                        LabelValue::Many(_) => {
                            return Err(de::Error::custom(
                                "a label value list holds values, not lists",
                            ));
                        }
                    }
                }
                Ok(LabelValue::Many(values))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverheadSpec {
    #[serde(default, skip_serializing_if = "is_empty_list")]
    pub kube_reserved: ResourceList,
    #[serde(default, skip_serializing_if = "is_empty_list")]
    pub system_reserved: ResourceList,
    #[serde(default, skip_serializing_if = "is_empty_list")]
    pub eviction_threshold: ResourceList,
}

impl OverheadSpec {
    pub fn is_empty(&self) -> bool {
        is_empty_list(&self.kube_reserved)
            && is_empty_list(&self.system_reserved)
            && is_empty_list(&self.eviction_threshold)
    }
}

fn is_empty_list(list: &ResourceList) -> bool {
    list.0.is_empty()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OfferingSpec {
    pub zone: String,
    pub capacity_type: CapacityType,
    /// USD per hour.
    pub price: f64,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub available: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A user-supplied instance type that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("instance type `{instance_type}`, {field}: {message}")]
pub struct SpecError {
    pub instance_type: String,
    /// The path within the spec, e.g. `capacity.memory` or `offerings[2].price`.
    pub field: String,
    pub message: String,
}

impl InstanceTypeSpec {
    /// The instance type, with labels sorted and offerings sorted.
    pub fn to_instance_type(&self) -> Result<InstanceType, SpecError> {
        let fail = |field: &str, message: String| SpecError {
            instance_type: self.name.clone(),
            field: field.to_string(),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(fail("name", "must not be empty".to_string()));
        }
        let mut labels: Vec<(Sym, Sym)> = Vec::with_capacity(self.labels.len() + 1);
        let mut label_values: Vec<(Sym, Vec<Sym>)> = Vec::new();
        for (key, value) in &self.labels {
            let field = format!("labels.{key}");
            if key.is_empty() {
                return Err(fail("labels", "a label key is empty".to_string()));
            }
            if key == labels::ZONE || key == labels::CAPACITY_TYPE {
                return Err(fail(
                    &field,
                    "zone and capacity type come from the offerings; list them there".to_string(),
                ));
            }
            let values = value.values();
            let Some(first) = values.first() else {
                return Err(fail(
                    &field,
                    "lists no value; give one, or a list of them".to_string(),
                ));
            };
            if let Some(twice) = values
                .iter()
                .enumerate()
                .find_map(|(i, v)| values[..i].contains(v).then_some(v))
            {
                return Err(fail(&field, format!("`{twice}` is listed twice")));
            }
            if values.len() > 1 && (key == labels::INSTANCE_TYPE || key == labels::REGION) {
                return Err(fail(
                    &field,
                    "takes one value: a type has one name and one region".to_string(),
                ));
            }
            if key == labels::INSTANCE_TYPE && *first != self.name {
                return Err(fail(&field, format!("`{first}` differs from the name")));
            }
            labels.push((Sym::new(key), Sym::new(first)));
            if values.len() > 1 {
                label_values.push((Sym::new(key), values.iter().map(|v| Sym::new(v)).collect()));
            }
        }
        label_values.sort_by_key(|a| a.0);
        if !self.labels.contains_key(labels::INSTANCE_TYPE) {
            labels.push((Sym::new(labels::INSTANCE_TYPE), Sym::new(&self.name)));
        }
        labels.sort_by_key(|a| a.0);

        let mut capacity = parse_list(&self.capacity, "capacity", &fail)?;
        for (resource, value) in [(CPU, capacity.cpu), (MEMORY, capacity.memory)] {
            if value <= 0 {
                return Err(fail(
                    &format!("capacity.{resource}"),
                    "is required and must be positive".to_string(),
                ));
            }
        }
        if !self.capacity.0.contains_key(PODS) {
            capacity.pods = 110;
        }
        let overhead = Overhead {
            kube_reserved: parse_list(
                &self.overhead.kube_reserved,
                "overhead.kubeReserved",
                &fail,
            )?,
            system_reserved: parse_list(
                &self.overhead.system_reserved,
                "overhead.systemReserved",
                &fail,
            )?,
            eviction_threshold: parse_list(
                &self.overhead.eviction_threshold,
                "overhead.evictionThreshold",
                &fail,
            )?,
        };

        if self.offerings.is_empty() {
            return Err(fail(
                "offerings",
                "at least one offering is needed".to_string(),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut offerings = Vec::with_capacity(self.offerings.len());
        for (i, o) in self.offerings.iter().enumerate() {
            if o.zone.trim().is_empty() {
                return Err(fail(
                    &format!("offerings[{i}].zone"),
                    "must not be empty".to_string(),
                ));
            }
            if let Err(e) = check_price(o.price) {
                return Err(fail(&format!("offerings[{i}].price"), e.to_string()));
            }
            if !seen.insert((o.zone.as_str(), o.capacity_type)) {
                return Err(fail(
                    &format!("offerings[{i}]"),
                    format!("{} in {} is listed twice", o.capacity_type, o.zone),
                ));
            }
            offerings.push(Offering {
                zone: Sym::new(&o.zone),
                capacity_type: o.capacity_type,
                price: o.price,
                available: o.available,
            });
        }

        let mut it = InstanceType {
            name: Sym::new(&self.name),
            labels,
            label_values,
            capacity,
            overhead,
            offerings,
        };
        it.sort_offerings();
        Ok(it)
    }
}

/// Reads a resource list, naming `prefix.<resource>` on failure.
fn parse_list(
    list: &ResourceList,
    prefix: &str,
    fail: &impl Fn(&str, String) -> SpecError,
) -> Result<Resources, SpecError> {
    let mut r = Resources::default();
    for (name, quantity) in &list.0 {
        let field = format!("{prefix}.{name}");
        let value = if name == CPU {
            resources::parse_milli(quantity)
        } else {
            resources::parse_units(quantity)
        }
        .map_err(|e| fail(&field, e.to_string()))?;
        if value < 0 {
            return Err(fail(&field, format!("`{quantity}` is negative")));
        }
        r.set(name, value);
    }
    Ok(r)
}

/// A resource list as Kubernetes writes it, leaving out zeros.
fn to_list(r: &Resources) -> ResourceList {
    let mut list = BTreeMap::new();
    let mut put = |name: &str, value: String| {
        list.insert(name.to_string(), value);
    };
    if r.cpu != 0 {
        put(CPU, format_cpu(r.cpu));
    }
    if r.memory != 0 {
        put(MEMORY, format_bytes(r.memory));
    }
    if r.pods != 0 {
        put(PODS, r.pods.to_string());
    }
    if r.ephemeral != 0 {
        put(EPHEMERAL_STORAGE, format_bytes(r.ephemeral));
    }
    for (name, value) in &r.extended {
        put(name.as_str(), value.to_string());
    }
    ResourceList(list)
}

impl From<&InstanceType> for InstanceTypeSpec {
    fn from(it: &InstanceType) -> Self {
        Self {
            name: it.name.as_str().to_string(),
            labels: it
                .labels
                .iter()
                .map(|&(k, v)| {
                    let value = match it.label_values(k) {
                        many @ [_, _, ..] => {
                            LabelValue::Many(many.iter().map(|v| v.as_str().to_string()).collect())
                        }
                        _ => LabelValue::One(v.as_str().to_string()),
                    };
                    (k.as_str().to_string(), value)
                })
                .collect(),
            capacity: to_list(&it.capacity),
            overhead: OverheadSpec {
                kube_reserved: to_list(&it.overhead.kube_reserved),
                system_reserved: to_list(&it.overhead.system_reserved),
                eviction_threshold: to_list(&it.overhead.eviction_threshold),
            },
            offerings: it
                .offerings
                .iter()
                .map(|o| OfferingSpec {
                    zone: o.zone.as_str().to_string(),
                    capacity_type: o.capacity_type,
                    price: o.price,
                    available: o.available,
                })
                .collect(),
        }
    }
}

/// [`Catalog::from_specs`].
pub(super) fn catalog(region: &str, specs: &[InstanceTypeSpec]) -> Result<Catalog, SpecError> {
    let region_sym = Sym::new(region);
    let region_key = Sym::new(labels::REGION);
    let mut names = BTreeSet::new();
    let mut types = Vec::with_capacity(specs.len());
    for spec in specs {
        let mut it = spec.to_instance_type()?;
        if !names.insert(spec.name.as_str()) {
            return Err(SpecError {
                instance_type: spec.name.clone(),
                field: "name".to_string(),
                message: "is listed twice".to_string(),
            });
        }
        match it.label(labels::REGION) {
            Some(r) if r != region_sym => {
                return Err(SpecError {
                    instance_type: spec.name.clone(),
                    field: format!("labels.{}", labels::REGION),
                    message: format!("`{r}` differs from the catalog's region `{region}`"),
                });
            }
            Some(_) => {}
            None => {
                let at = it.labels.partition_point(|(k, _)| *k < region_key);
                it.labels.insert(at, (region_key, region_sym));
            }
        }
        types.push(it);
    }
    Ok(Catalog::new(region_sym, types, PriceSource::Given))
}
