//! Field paths and field sets as server-side apply tracks them, and their `FieldsV1` encoding
//! in `metadata.managedFields` (sigs.k8s.io/structured-merge-diff `fieldpath`).
//!
//! A path is a sequence of elements: a struct or map field (`f:name`), a keyed list item
//! (`k:{"name":"web"}`), a set item (`v:"value"`) or a positional item (`i:0`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// `v` with every object's keys in order, as upstream encodes keys and values, whether or not
/// the build's JSON maps keep insertion order (a dependency may turn that on).
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// One step of a field path. The derived order (fields, keys, values, indices) is the order
/// upstream serialises them in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A struct field or map key.
    Field(String),
    /// A keyed list item: its key fields as a JSON object, keys sorted.
    Key(String),
    /// An item of a set, as JSON.
    Value(String),
    /// A list item by position.
    Index(usize),
}

impl PathElement {
    /// The element for a keyed list item from its key fields and their values.
    pub fn key(fields: &[(String, Value)]) -> Self {
        let map: Map<String, Value> = fields.iter().cloned().collect();
        Self::Key(sorted(&Value::Object(map)).to_string())
    }

    /// The element for a set item.
    pub fn value(v: &Value) -> Self {
        Self::Value(sorted(v).to_string())
    }

    fn encode(&self) -> String {
        match self {
            Self::Field(f) => format!("f:{f}"),
            Self::Key(k) => format!("k:{k}"),
            Self::Value(v) => format!("v:{v}"),
            Self::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<Self> {
        let (prefix, rest) = s.split_at_checked(2)?;
        match prefix {
            "f:" => Some(Self::Field(rest.to_string())),
            "k:" => {
                // Re-serialise so that equal keys compare equal whatever their spacing.
                let v: Value = serde_json::from_str(rest).ok()?;
                v.is_object().then(|| Self::Key(sorted(&v).to_string()))
            }
            "v:" => serde_json::from_str::<Value>(rest)
                .ok()
                .map(|v| Self::Value(sorted(&v).to_string())),
            "i:" => rest.parse().ok().map(Self::Index),
            _ => None,
        }
    }
}

impl fmt::Display for PathElement {
    /// As upstream prints paths in conflict messages: `.spec`, `[name="web"]`, `[="a"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(name) => write!(f, ".{name}"),
            Self::Key(k) => {
                let map: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            Self::Value(v) => write!(f, "[={v}]"),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object's root.
pub type Path = Vec<PathElement>;

/// Upstream's text form of a path, e.g. `.spec.containers[name="web"].image`.
pub fn display(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of field paths. A path's ancestors are not implied members: a manager may own
/// `.spec.replicas` without owning `.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    paths: BTreeSet<Path>,
}

impl FieldSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, path: Path) {
        self.paths.insert(path);
    }

    pub fn remove(&mut self, path: &[PathElement]) {
        self.paths.remove(path);
    }

    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.paths.contains(path)
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.paths.iter()
    }

    /// Whether `path` or anything below it is a member.
    pub fn covers(&self, path: &[PathElement]) -> bool {
        self.paths
            .range(path.to_vec()..)
            .next()
            .is_some_and(|p| p.starts_with(path))
    }

    pub fn union(&self, other: &Self) -> Self {
        Self {
            paths: self.paths.union(&other.paths).cloned().collect(),
        }
    }

    pub fn difference(&self, other: &Self) -> Self {
        Self {
            paths: self.paths.difference(&other.paths).cloned().collect(),
        }
    }

    pub fn intersection(&self, other: &Self) -> Self {
        Self {
            paths: self.paths.intersection(&other.paths).cloned().collect(),
        }
    }

    /// The `FieldsV1` JSON: nested `f:`/`k:`/`v:`/`i:` keys, with `.` marking a member that
    /// also has members below it.
    pub fn to_fields_v1(&self) -> Value {
        #[derive(Default)]
        struct Node {
            member: bool,
            children: BTreeMap<PathElement, Node>,
        }
        fn encode(node: &Node) -> Value {
            let mut m = Map::new();
            if node.member && !node.children.is_empty() {
                m.insert(".".into(), Value::Object(Map::new()));
            }
            for (pe, child) in &node.children {
                m.insert(pe.encode(), encode(child));
            }
            Value::Object(m)
        }
        let mut root = Node::default();
        for path in &self.paths {
            let mut node = &mut root;
            for pe in path {
                node = node.children.entry(pe.clone()).or_default();
            }
            node.member = true;
        }
        encode(&root)
    }

    /// Reads a `FieldsV1` object; `None` when it is malformed.
    pub fn from_fields_v1(v: &Value) -> Option<Self> {
        fn walk(v: &Value, prefix: &mut Path, out: &mut FieldSet) -> Option<()> {
            let m = v.as_object()?;
            if m.is_empty() && !prefix.is_empty() {
                out.insert(prefix.clone());
                return Some(());
            }
            for (k, child) in m {
                if k == "." {
                    if !prefix.is_empty() {
                        out.insert(prefix.clone());
                    }
                    continue;
                }
                prefix.push(PathElement::decode(k)?);
                walk(child, prefix, out)?;
                prefix.pop();
            }
            Some(())
        }
        let mut out = Self::new();
        walk(v, &mut Vec::new(), &mut out)?;
        Some(out)
    }
}

impl FromIterator<Path> for FieldSet {
    fn from_iter<T: IntoIterator<Item = Path>>(iter: T) -> Self {
        Self {
            paths: iter.into_iter().collect(),
        }
    }
}

/// Shorthand for a path of field names, e.g. `fields(&["spec", "replicas"])`.
pub fn fields(names: &[&str]) -> Path {
    names
        .iter()
        .map(|n| PathElement::Field((*n).to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips_with_dot_for_members_that_have_children() {
        let item = PathElement::key(&[("name".into(), json!("web"))]);
        let mut set = FieldSet::new();
        let containers = fields(&["spec", "containers"]);
        let mut item_path = containers.clone();
        item_path.push(item.clone());
        set.insert(item_path.clone());
        let mut image = item_path.clone();
        image.push(PathElement::Field("image".into()));
        set.insert(image.clone());
        set.insert(fields(&["spec", "replicas"]));
        let v = set.to_fields_v1();
        assert_eq!(
            v,
            json!({ "f:spec": { "f:containers": { "k:{\"name\":\"web\"}": { ".": {}, "f:image": {} } }, "f:replicas": {} } })
        );
        assert_eq!(FieldSet::from_fields_v1(&v).unwrap(), set);
        assert_eq!(display(&image), ".spec.containers[name=\"web\"].image");
        assert!(set.covers(&containers));
        assert!(!set.contains(&containers));
    }

    #[test]
    fn keys_values_and_indices_print_as_upstream() {
        let k = PathElement::key(&[
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
        ]);
        assert_eq!(k.to_string(), "[containerPort=80,protocol=\"TCP\"]");
        assert_eq!(k.encode(), "k:{\"containerPort\":80,\"protocol\":\"TCP\"}");
        assert_eq!(PathElement::value(&json!("a")).to_string(), "[=\"a\"]");
        assert_eq!(PathElement::Index(2).to_string(), "[2]");
        assert!(FieldSet::from_fields_v1(&json!({ "x:y": {} })).is_none());
    }
}
