//! How server-side apply sees each field: which lists are keyed, sets or atomic, which maps
//! merge key by key and which are replaced whole.
//!
//! Built-in kinds follow the `+listType`/`+listMapKey`/`+mapType`/`+structType` markers of
//! k8s.io/api for the kinds Dovetail serves (lists without a marker are atomic). Custom
//! resources follow their CRD's structural schema: `x-kubernetes-list-type` (atomic unless
//! said otherwise), `x-kubernetes-list-map-keys` and `x-kubernetes-map-type` (granular unless
//! `atomic`). Fields outside any schema (`x-kubernetes-preserve-unknown-fields`) are untyped:
//! objects merge key by key, lists are atomic, as upstream deduces them.

use serde_json::Value;

/// How a list merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced whole.
    Atomic,
    /// Scalars merged as a set.
    Set,
    /// Objects merged by the values of these key fields.
    Map(Vec<String>),
}

/// A built-in type, as far as apply needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// The object of a kind.
    Root(RootKind),
    ObjectMeta,
    /// A struct whose lists are atomic and whose fields are plain.
    Struct,
    /// A map of scalars merged key by key (labels, resource quantities, ConfigMap data).
    Map,
    /// A struct or map replaced whole (label selectors, node selectors).
    Atomic,
    PodTemplateSpec,
    PodSpec,
    Container,
    ResourceRequirements,
    /// A status whose `conditions` are keyed by `type`.
    Status,
    PodStatus,
    NodeSpec,
    NodeStatus,
    ServiceSpec,
    /// Deployments, ReplicaSets and DaemonSets.
    WorkloadSpec,
    PodDisruptionBudgetSpec,
    PodDisruptionBudgetStatus,
    /// A keyed list of structs.
    KeyedList(&'static [&'static str], &'static Builtin),
    /// A set of scalars.
    SetList,
}

/// The built-in kinds with fields apply must know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKind {
    Pod,
    Node,
    Service,
    Workload,
    PodDisruptionBudget,
    /// A kind with a `status.conditions` keyed by `type` and nothing else special.
    WithConditions,
    Plain,
}

impl RootKind {
    pub fn of(group: &str, kind: &str) -> Self {
        match (group, kind) {
            ("", "Pod") => Self::Pod,
            ("", "Node") => Self::Node,
            ("", "Service") => Self::Service,
            ("apps", "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet") => Self::Workload,
            ("policy", "PodDisruptionBudget") => Self::PodDisruptionBudget,
            ("", "Namespace") | ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                Self::WithConditions
            }
            _ => Self::Plain,
        }
    }
}

const STRUCT: Builtin = Builtin::Struct;
const CONTAINER: Builtin = Builtin::Container;
const NAME: &[&str] = &["name"];
const TYPE: &[&str] = &["type"];

/// The type of a value somewhere in an object.
#[derive(Debug, Clone, Copy)]
pub enum Ty<'s> {
    Builtin(Builtin),
    /// A node of a CRD's `openAPIV3Schema`.
    Schema(&'s Value),
    /// The root of a custom resource: `metadata` is ObjectMeta, the rest follows the schema.
    CustomRoot(&'s Value),
    /// Outside any schema.
    Untyped,
}

/// A type apply cannot handle faithfully, named for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

impl<'s> Ty<'s> {
    /// The root type of an object of a built-in kind.
    pub fn builtin(group: &str, kind: &str) -> Self {
        Self::Builtin(Builtin::Root(RootKind::of(group, kind)))
    }

    /// Whether upstream's empty object of a built-in kind already holds field `name` of this
    /// type (Go structs, and a pod's `containers`, the one list Go serialises when empty), so
    /// creating it records no ownership of the field itself, only of what is inside.
    pub fn is_always_present(&self, name: &str) -> bool {
        match self {
            Self::Builtin(Builtin::KeyedList(_, elem)) => {
                **elem == Builtin::Container && name == "containers"
            }
            Self::Builtin(b) => !matches!(b, Builtin::Map | Builtin::Atomic | Builtin::SetList),
            _ => false,
        }
    }

    /// Whether objects of this type are replaced whole.
    pub fn is_atomic_map(&self) -> bool {
        match self {
            Self::Builtin(b) => *b == Builtin::Atomic,
            Self::Schema(s) => {
                s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
            }
            Self::CustomRoot(_) | Self::Untyped => false,
        }
    }

    /// Whether `name` is a declared field (rather than a key of a map).
    pub fn is_named_field(&self, name: &str) -> bool {
        match self {
            Self::Builtin(b) => !matches!(b, Builtin::Map),
            Self::Schema(s) => s.get("properties").is_some_and(|p| p.get(name).is_some()),
            Self::CustomRoot(s) => {
                matches!(name, "apiVersion" | "kind" | "metadata")
                    || s.get("properties").is_some_and(|p| p.get(name).is_some())
            }
            Self::Untyped => false,
        }
    }

    /// How a list of this type merges.
    pub fn list_type(&self) -> Result<ListType, Unsupported> {
        match self {
            Self::Builtin(Builtin::KeyedList(keys, _)) => {
                Ok(ListType::Map(keys.iter().map(|k| k.to_string()).collect()))
            }
            Self::Builtin(Builtin::SetList) => Ok(ListType::Set),
            Self::Schema(s) => match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                None | Some("atomic") => Ok(ListType::Atomic),
                Some("set") => {
                    let items = s.get("items");
                    let scalar = items
                        .and_then(|i| i.get("type"))
                        .and_then(Value::as_str)
                        .is_some_and(|t| !matches!(t, "object" | "array"));
                    if scalar {
                        Ok(ListType::Set)
                    } else {
                        Err(Unsupported(
                            "x-kubernetes-list-type: set of non-scalar items is not supported by this server's server-side apply".into(),
                        ))
                    }
                }
                Some("map") => {
                    let keys: Vec<String> = s
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|k| k.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    if keys.is_empty() {
                        Err(Unsupported(
                            "x-kubernetes-list-type: map without x-kubernetes-list-map-keys".into(),
                        ))
                    } else {
                        Ok(ListType::Map(keys))
                    }
                }
                Some(other) => Err(Unsupported(format!(
                    "x-kubernetes-list-type: {other} is not one of atomic, set, map"
                ))),
            },
            _ => Ok(ListType::Atomic),
        }
    }

    /// The type of a list's items.
    pub fn item(&self) -> Ty<'s> {
        match self {
            Self::Builtin(Builtin::KeyedList(_, elem)) => Self::Builtin(**elem),
            Self::Builtin(_) => Self::Builtin(Builtin::Struct),
            Self::Schema(s) => s.get("items").map_or(Self::Untyped, Self::Schema),
            Self::CustomRoot(_) | Self::Untyped => Self::Untyped,
        }
    }

    /// The type of field (or map key) `name` of an object of this type.
    pub fn field(&self, name: &str) -> Ty<'s> {
        match self {
            Self::Builtin(b) => Self::Builtin(builtin_field(*b, name)),
            Self::CustomRoot(_) if name == "metadata" => Self::Builtin(Builtin::ObjectMeta),
            Self::CustomRoot(s) | Self::Schema(s) => schema_field(s, name),
            Self::Untyped => Self::Untyped,
        }
    }
}

fn schema_field<'s>(s: &'s Value, name: &str) -> Ty<'s> {
    if let Some(p) = s.get("properties").and_then(|p| p.get(name)) {
        return Ty::Schema(p);
    }
    match s.get("additionalProperties") {
        Some(a) if a.is_object() => Ty::Schema(a),
        _ => Ty::Untyped,
    }
}

fn builtin_field(b: Builtin, name: &str) -> Builtin {
    use Builtin as B;
    match (b, name) {
        (B::Map, _) | (B::Atomic, _) => B::Struct,
        (B::Root(_), "metadata") => B::ObjectMeta,
        (B::Root(RootKind::Pod), "spec") => B::PodSpec,
        (B::Root(RootKind::Pod), "status") => B::PodStatus,
        (B::Root(RootKind::Node), "spec") => B::NodeSpec,
        (B::Root(RootKind::Node), "status") => B::NodeStatus,
        (B::Root(RootKind::Service), "spec") => B::ServiceSpec,
        (B::Root(RootKind::Workload), "spec") => B::WorkloadSpec,
        (B::Root(RootKind::PodDisruptionBudget), "spec") => B::PodDisruptionBudgetSpec,
        (B::Root(RootKind::PodDisruptionBudget), "status") => B::PodDisruptionBudgetStatus,
        (B::Root(RootKind::Plain), "status") => B::Struct,
        (B::Root(_), "status") => B::Status,
        (B::Root(_), "data" | "binaryData" | "stringData") => B::Map,
        (B::ObjectMeta, "labels" | "annotations") => B::Map,
        (B::ObjectMeta, "finalizers") => B::SetList,
        (B::ObjectMeta, "ownerReferences") => B::KeyedList(&["uid"], &STRUCT),
        (B::PodTemplateSpec, "metadata") => B::ObjectMeta,
        (B::PodTemplateSpec, "spec") => B::PodSpec,
        (B::WorkloadSpec, "template") => B::PodTemplateSpec,
        (B::WorkloadSpec | B::PodDisruptionBudgetSpec, "selector") => B::Atomic,
        (B::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
            B::KeyedList(NAME, &CONTAINER)
        }
        (B::PodSpec, "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates") => {
            B::KeyedList(NAME, &STRUCT)
        }
        (B::PodSpec, "hostAliases") => B::KeyedList(&["ip"], &STRUCT),
        (B::PodSpec, "topologySpreadConstraints") => {
            B::KeyedList(&["topologyKey", "whenUnsatisfiable"], &STRUCT)
        }
        (B::PodSpec, "nodeSelector") => B::Atomic,
        (B::PodSpec, "overhead") => B::Map,
        (B::Container, "ports") => B::KeyedList(&["containerPort", "protocol"], &STRUCT),
        (B::Container, "env") => B::KeyedList(NAME, &STRUCT),
        (B::Container, "volumeMounts") => B::KeyedList(&["mountPath"], &STRUCT),
        (B::Container, "volumeDevices") => B::KeyedList(&["devicePath"], &STRUCT),
        (B::Container, "resources") => B::ResourceRequirements,
        (B::ResourceRequirements, "limits" | "requests") => B::Map,
        (B::ResourceRequirements, "claims") => B::KeyedList(NAME, &STRUCT),
        (B::Status | B::PodStatus | B::NodeStatus | B::PodDisruptionBudgetStatus, "conditions") => {
            B::KeyedList(TYPE, &STRUCT)
        }
        (B::PodStatus, "podIPs" | "hostIPs") => B::KeyedList(&["ip"], &STRUCT),
        (B::NodeStatus, "addresses") => B::KeyedList(TYPE, &STRUCT),
        (B::NodeStatus, "capacity" | "allocatable") => B::Map,
        (B::NodeSpec, "podCIDRs") => B::SetList,
        (B::ServiceSpec, "ports") => B::KeyedList(&["port", "protocol"], &STRUCT),
        (B::ServiceSpec, "selector") => B::Atomic,
        (B::PodDisruptionBudgetStatus, "disruptedPods") => B::Map,
        // Label selectors (`+structType=atomic`) and node selectors are replaced whole
        // wherever they appear; a required node affinity is an atomic NodeSelector.
        (
            _,
            "selector"
            | "labelSelector"
            | "namespaceSelector"
            | "nodeSelector"
            | "requiredDuringSchedulingIgnoredDuringExecution",
        ) => B::Atomic,
        _ => B::Struct,
    }
}

/// Defaults upstream's schemas give list-map key fields, used when an item omits them.
pub fn key_default(key: &str) -> Option<Value> {
    (key == "protocol").then(|| Value::String("TCP".into()))
}

/// The `openAPIV3Schema` of a CRD's version, if it has one.
pub fn crd_version_schema<'c>(crd: &'c Value, version: &str) -> Option<&'c Value> {
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))?
        .pointer("/schema/openAPIV3Schema")
}

/// The structural schema of a custom resource's version, from its stored CRD.
pub fn custom_schema(
    store: &crate::store::Store,
    res: &crate::resource::ResourceInfo,
) -> Option<Value> {
    if res.builtin {
        return None;
    }
    let crds = store.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")?;
    let crd = store
        .get(&crds, "", &format!("{}.{}", res.plural, res.group))
        .ok()?;
    crd_version_schema(&crd, &res.version).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_in_lists_follow_upstream_markers() {
        let d = Ty::builtin("apps", "Deployment");
        let containers = d
            .field("spec")
            .field("template")
            .field("spec")
            .field("containers");
        assert_eq!(
            containers.list_type().unwrap(),
            ListType::Map(vec!["name".into()])
        );
        let ports = containers.item().field("ports");
        assert_eq!(
            ports.list_type().unwrap(),
            ListType::Map(vec!["containerPort".into(), "protocol".into()])
        );
        let tolerations = d
            .field("spec")
            .field("template")
            .field("spec")
            .field("tolerations");
        assert_eq!(tolerations.list_type().unwrap(), ListType::Atomic);
        assert!(d.field("spec").field("selector").is_atomic_map());
        let pod_spec = d.field("spec").field("template").field("spec");
        let spread = pod_spec.field("topologySpreadConstraints");
        assert!(spread.item().field("labelSelector").is_atomic_map());
        assert!(
            pod_spec
                .field("affinity")
                .field("nodeAffinity")
                .field("requiredDuringSchedulingIgnoredDuringExecution")
                .is_atomic_map()
        );
        assert_eq!(
            d.field("metadata").field("finalizers").list_type().unwrap(),
            ListType::Set
        );
        assert!(!d.field("metadata").field("labels").is_named_field("app"));
    }

    #[test]
    fn custom_resources_follow_their_schema_and_refuse_sets_of_objects() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": { "type": "object", "properties": {
                    "items": { "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key"], "items": { "type": "object" } },
                    "tags": { "type": "array", "x-kubernetes-list-type": "set", "items": { "type": "string" } },
                    "objs": { "type": "array", "x-kubernetes-list-type": "set", "items": { "type": "object" } },
                    "plain": { "type": "array", "items": { "type": "string" } },
                    "labels": { "type": "object", "additionalProperties": { "type": "string" } },
                } },
            },
        });
        let spec = Ty::CustomRoot(&schema).field("spec");
        assert_eq!(
            spec.field("items").list_type().unwrap(),
            ListType::Map(vec!["key".into()])
        );
        assert_eq!(spec.field("tags").list_type().unwrap(), ListType::Set);
        assert_eq!(spec.field("plain").list_type().unwrap(), ListType::Atomic);
        assert!(
            spec.field("objs")
                .list_type()
                .unwrap_err()
                .0
                .contains("set of non-scalar")
        );
        assert!(!spec.field("labels").is_named_field("a"));
        assert!(spec.is_named_field("labels"));
    }
}
