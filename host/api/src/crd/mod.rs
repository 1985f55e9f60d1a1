//! The three CRDs, generated from the Rust types (`schemars`) and shaped
//! to match Karpenter's: schemas with its defaults, patterns, limits, CEL
//! rules and list markers; status and scale subresources; printer columns;
//! short names and categories. Also `kube::Resource` for each kind.

use std::borrow::Cow;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceScale,
    CustomResourceSubresourceStatus, CustomResourceSubresources, CustomResourceValidation,
    JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, ClusterResourceScope};
use kube::{CustomResourceExt, Resource};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::ec2nodeclass::{self, EC2NodeClass};
use crate::nodeclaim::{self, NodeClaim};
use crate::nodepool::{self, NodePool};

pub(crate) mod cel;
pub(crate) mod schema;

/// Marks the CRD default of a field in the derived schema; schemars' own
/// defaults (from serde) are dropped, since a lenient `#[serde(default)]` is
/// not a CRD default.
const DEFAULT_MARKER: &str = "x-dovetail-default";
/// Marks a field the CRD requires that the Rust type reads leniently (so
/// `validate()` can report it missing, with the others).
const REQUIRED_MARKER: &str = "x-dovetail-required";

/// What differs between the three CRDs.
struct Kind {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    columns: &'static [Column],
    /// `(spec replicas, status replicas)` for a scale subresource.
    scale: Option<(&'static str, &'static str)>,
}

struct Column {
    name: &'static str,
    type_: &'static str,
    json_path: &'static str,
    /// 1: only with `-o wide`.
    priority: i32,
}

const fn col(
    name: &'static str,
    type_: &'static str,
    json_path: &'static str,
    priority: i32,
) -> Column {
    Column {
        name,
        type_,
        json_path,
        priority,
    }
}

const READY: &str = ".status.conditions[?(@.type==\"Ready\")].status";
const AGE: &str = ".metadata.creationTimestamp";

const NODE_POOL: Kind = Kind {
    group: nodepool::GROUP,
    kind: nodepool::KIND,
    plural: "nodepools",
    singular: "nodepool",
    short_names: &[],
    columns: &[
        col(
            "NodeClass",
            "string",
            ".spec.template.spec.nodeClassRef.name",
            0,
        ),
        col("Nodes", "string", ".status.nodes", 0),
        col("Ready", "string", READY, 0),
        col("Age", "date", AGE, 0),
        col("Weight", "integer", ".spec.weight", 1),
        col("CPU", "string", ".status.resources.cpu", 1),
        col("Memory", "string", ".status.resources.memory", 1),
    ],
    scale: Some((".spec.replicas", ".status.nodes")),
};

const NODE_CLAIM: Kind = Kind {
    group: nodepool::GROUP,
    kind: nodeclaim::KIND,
    plural: "nodeclaims",
    singular: "nodeclaim",
    short_names: &[],
    columns: &[
        col(
            "Type",
            "string",
            ".metadata.labels.node\\.kubernetes\\.io/instance-type",
            0,
        ),
        col(
            "Capacity",
            "string",
            ".metadata.labels.karpenter\\.sh/capacity-type",
            0,
        ),
        col(
            "Zone",
            "string",
            ".metadata.labels.topology\\.kubernetes\\.io/zone",
            0,
        ),
        col("Node", "string", ".status.nodeName", 0),
        col("Ready", "string", READY, 0),
        col("Age", "date", AGE, 0),
        col("ImageID", "string", ".status.imageID", 1),
        col("ID", "string", ".status.providerID", 1),
        col(
            "NodePool",
            "string",
            ".metadata.labels.karpenter\\.sh/nodepool",
            1,
        ),
        col("NodeClass", "string", ".spec.nodeClassRef.name", 1),
        col(
            "Drifted",
            "string",
            ".status.conditions[?(@.type==\"Drifted\")].status",
            1,
        ),
    ],
    scale: None,
};

const EC2_NODE_CLASS: Kind = Kind {
    group: ec2nodeclass::GROUP,
    kind: ec2nodeclass::KIND,
    plural: "ec2nodeclasses",
    singular: "ec2nodeclass",
    short_names: &["ec2nc", "ec2ncs"],
    columns: &[
        col("Ready", "string", READY, 0),
        col("Age", "date", AGE, 0),
        col("Role", "string", ".spec.role", 1),
    ],
    scale: None,
};

/// The openAPIV3Schema of `T`: schemars' OpenAPI 3 output, inlined, then
/// made structural (no `nullable`, explicit CRD defaults only).
fn open_api_schema<T: JsonSchema>() -> JSONSchemaProps {
    let generator = SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut value = generator.into_root_schema_for::<T>().to_value();
    structural(&mut value);
    serde_json::from_value(value).expect("the derived schema is a valid JSONSchemaProps")
}

/// Drops what Karpenter's schemas do not have and turns default markers into
/// defaults, recursively.
fn structural(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("nullable");
            map.remove("$schema");
            map.remove("title");
            map.remove("default");
            if let Some(d) = map.remove(DEFAULT_MARKER) {
                map.insert("default".into(), d);
            }
            // Option<enum> gains a `null` value; Karpenter's enums have none.
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            mark_required(map);
            for v in map.values_mut() {
                structural(v);
            }
            drop_empty_required(map);
        }
        Value::Array(items) => items.iter_mut().for_each(structural),
        _ => {}
    }
}

/// Moves required markers from properties to the object's `required`.
fn mark_required(map: &mut Map<String, Value>) {
    let Some(Value::Object(props)) = map.get_mut("properties") else {
        return;
    };
    let mut marked: Vec<String> = props
        .iter_mut()
        .filter_map(|(name, p)| {
            let p = p.as_object_mut()?;
            p.remove(REQUIRED_MARKER).map(|_| name.clone())
        })
        .collect();
    if marked.is_empty() {
        return;
    }
    let required = map
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = required {
        for r in list.iter().filter_map(Value::as_str) {
            marked.retain(|m| m != r);
        }
        list.extend(marked.into_iter().map(Value::String));
    }
}

fn drop_empty_required(map: &mut Map<String, Value>) {
    if map
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        map.remove("required");
    }
}

fn crd_for<T: JsonSchema>(k: &Kind) -> CustomResourceDefinition {
    let columns = k
        .columns
        .iter()
        .map(|c| CustomResourceColumnDefinition {
            name: c.name.into(),
            type_: c.type_.into(),
            json_path: c.json_path.into(),
            priority: (c.priority != 0).then_some(c.priority),
            description: None,
            format: None,
        })
        .collect();
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{}.{}", k.plural, k.group)),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: k.group.into(),
            names: CustomResourceDefinitionNames {
                categories: Some(vec!["karpenter".into()]),
                kind: k.kind.into(),
                list_kind: Some(format!("{}List", k.kind)),
                plural: k.plural.into(),
                short_names: (!k.short_names.is_empty())
                    .then(|| k.short_names.iter().map(|s| (*s).into()).collect()),
                singular: Some(k.singular.into()),
            },
            scope: "Cluster".into(),
            versions: vec![CustomResourceDefinitionVersion {
                additional_printer_columns: Some(columns),
                name: nodepool::VERSION.into(),
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(open_api_schema::<T>()),
                }),
                served: true,
                storage: true,
                subresources: Some(CustomResourceSubresources {
                    scale: k
                        .scale
                        .map(|(spec, status)| CustomResourceSubresourceScale {
                            label_selector_path: None,
                            spec_replicas_path: spec.into(),
                            status_replicas_path: status.into(),
                        }),
                    status: Some(CustomResourceSubresourceStatus(Value::Object(Map::new()))),
                }),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        status: None,
    }
}

/// NodePool, NodeClaim and EC2NodeClass, in that order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![NodePool::crd(), NodeClaim::crd(), EC2NodeClass::crd()]
}

macro_rules! resource {
    ($ty:ty, $k:expr, $crd_name:literal) => {
        impl Resource for $ty {
            type DynamicType = ();
            type Scope = ClusterResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                $k.kind.into()
            }

            fn group(_: &()) -> Cow<'_, str> {
                $k.group.into()
            }

            fn version(_: &()) -> Cow<'_, str> {
                nodepool::VERSION.into()
            }

            fn plural(_: &()) -> Cow<'_, str> {
                $k.plural.into()
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl CustomResourceExt for $ty {
            fn crd() -> CustomResourceDefinition {
                crd_for::<$ty>(&$k)
            }

            fn crd_name() -> &'static str {
                $crd_name
            }

            fn api_resource() -> ApiResource {
                ApiResource::erase::<Self>(&())
            }

            fn shortnames() -> &'static [&'static str] {
                $k.short_names
            }
        }
    };
}

resource!(NodePool, NODE_POOL, "nodepools.karpenter.sh");
resource!(NodeClaim, NODE_CLAIM, "nodeclaims.karpenter.sh");
resource!(
    EC2NodeClass,
    EC2_NODE_CLASS,
    "ec2nodeclasses.karpenter.k8s.aws"
);
