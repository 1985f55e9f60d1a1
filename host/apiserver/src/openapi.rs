//! `/openapi/v3`: the root listing every served group-version, and one OpenAPI 3 document per
//! group-version.
//!
//! kubectl reads these to decide that the server validates fields itself (a PATCH operation
//! tagged with the kind's `x-kubernetes-group-version-kind` and taking `fieldValidation`), so
//! `apply`/`create` send `fieldValidation=Strict`; and `kubectl explain` reads a custom
//! resource's schema from `components.schemas`. Built-in kinds carry no field schemas here, and
//! their PATCH operations declare no request body, so kubectl computes their strategic merge
//! patches from its own compiled-in types as it does without OpenAPI.

use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::resource::{Registry, ResourceInfo};

/// `api/v1` or `apis/apps/v1`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash(doc: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    doc.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// The `/openapi/v3` root. `schema_of` gives a custom resource's schema.
pub fn root(registry: &Registry, schema_of: &dyn Fn(&ResourceInfo) -> Option<Value>) -> Value {
    let mut paths = Map::new();
    for (g, v) in registry.group_versions() {
        let doc = group_version(registry, &g, &v, schema_of).unwrap_or(Value::Null);
        let path = gv_path(&g, &v);
        paths.insert(
            path.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash(&doc)) }),
        );
    }
    json!({ "paths": paths })
}

/// The group-version a `/openapi/v3/...` path names, if any.
pub fn parse_path(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/openapi/v3/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["api", v] => Some((String::new(), (*v).to_string())),
        ["apis", g, v] => Some(((*g).to_string(), (*v).to_string())),
        _ => None,
    }
}

/// Upstream's schema name: reversed group, version, kind (`sh.karpenter.v1.NodePool`).
fn schema_name(res: &ResourceInfo) -> String {
    if res.builtin {
        let group = match res.group.as_str() {
            "" => "core".to_string(),
            "apiextensions.k8s.io" => {
                return format!(
                    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{}.{}",
                    res.version, res.kind
                );
            }
            g => g.trim_end_matches(".k8s.io").to_string(),
        };
        return format!("io.k8s.api.{group}.{}.{}", res.version, res.kind);
    }
    let mut parts: Vec<&str> = res.group.split('.').collect();
    parts.reverse();
    format!("{}.{}.{}", parts.join("."), res.version, res.kind)
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn param(name: &str, location: &str, description: &str) -> Value {
    let mut p = json!({
        "name": name,
        "in": location,
        "description": description,
        "schema": { "type": "string", "uniqueItems": true },
    });
    if location == "path" {
        p["required"] = json!(true);
    }
    p
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut v = vec![
        param(
            "dryRun",
            "query",
            "When present, indicates that modifications should not be persisted.",
        ),
        param(
            "fieldManager",
            "query",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        param(
            "fieldValidation",
            "query",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (the default) and Strict.",
        ),
    ];
    if patch {
        v.push(json!({
            "name": "force",
            "in": "query",
            "description": "Force is going to \"force\" Apply requests. It must be unset for non-apply patch requests.",
            "schema": { "type": "boolean", "uniqueItems": true },
        }));
    }
    v
}

fn operation(res: &ResourceInfo, action: &str, id: &str, params: Vec<Value>) -> Value {
    let reference = json!({ "$ref": format!("#/components/schemas/{}", schema_name(res)) });
    json!({
        "description": format!("{action} {}", res.kind),
        "operationId": id,
        "parameters": params,
        "responses": {
            "200": {
                "description": "OK",
                "content": { "application/json": { "schema": reference } },
            },
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": { "group": res.group, "version": res.version, "kind": res.kind },
    })
}

fn paths_of(res: &ResourceInfo, paths: &mut Map<String, Value>) {
    let base = if res.group.is_empty() {
        format!("/api/{}", res.version)
    } else {
        format!("/apis/{}/{}", res.group, res.version)
    };
    let collection = if res.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", res.plural)
    } else {
        format!("{base}/{}", res.plural)
    };
    let scope_params = || {
        let mut v = Vec::new();
        if res.namespaced {
            v.push(param(
                "namespace",
                "path",
                "object name and auth scope, such as for teams and projects",
            ));
        }
        v
    };
    let named = || {
        let mut v = scope_params();
        v.push(param(
            "name",
            "path",
            format!("name of the {}", res.kind).as_str(),
        ));
        v
    };
    let id = |verb: &str, suffix: &str| {
        format!(
            "{verb}{}{}{suffix}",
            res.kind,
            if res.namespaced { "Namespaced" } else { "" }
        )
    };
    let with = |mut base: Vec<Value>, more: Vec<Value>| {
        base.extend(more);
        base
    };
    paths.insert(
        collection.clone(),
        json!({
            "get": operation(res, "list", &id("list", ""), scope_params()),
            "post": operation(res, "post", &id("create", ""), with(scope_params(), write_params(false))),
        }),
    );
    paths.insert(
        format!("{collection}/{{name}}"),
        json!({
            "get": operation(res, "get", &id("read", ""), named()),
            "put": operation(res, "put", &id("replace", ""), with(named(), write_params(false))),
            "patch": operation(res, "patch", &id("patch", ""), with(named(), write_params(true))),
            "delete": operation(res, "delete", &id("delete", ""), named()),
        }),
    );
    if res.status_subresource {
        paths.insert(
            format!("{collection}/{{name}}/status"),
            json!({
                "get": operation(res, "get", &id("read", "Status"), named()),
                "put": operation(res, "put", &id("replace", "Status"), with(named(), write_params(false))),
                "patch": operation(res, "patch", &id("patch", "Status"), with(named(), write_params(true))),
            }),
        );
    }
}

/// A custom resource's schema as upstream publishes it: the CRD's `openAPIV3Schema` with
/// `apiVersion`, `kind` and `metadata` described.
fn custom_schema(res: &ResourceInfo, schema: Option<Value>) -> Value {
    let mut s = schema.unwrap_or_else(
        || json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true }),
    );
    let props = s
        .as_object_mut()
        .map(|m| m.entry("properties").or_insert_with(|| json!({})));
    if let Some(Value::Object(p)) = props {
        p.insert("apiVersion".into(), json!({
            "type": "string",
            "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.",
        }));
        p.insert("kind".into(), json!({
            "type": "string",
            "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. In CamelCase.",
        }));
        p.insert(
            "metadata".into(),
            json!({
                "description": "Standard object's metadata.",
                "allOf": [{ "$ref": format!("#/components/schemas/{OBJECT_META}") }],
            }),
        );
    }
    s["x-kubernetes-group-version-kind"] =
        json!([{ "group": res.group, "version": res.version, "kind": res.kind }]);
    s
}

fn object_meta() -> Value {
    let string = |d: &str| json!({ "type": "string", "description": d });
    let map = |d: &str| json!({ "type": "object", "additionalProperties": { "type": "string" }, "description": d });
    json!({
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "properties": {
            "name": string("Name must be unique within a namespace."),
            "namespace": string("Namespace defines the space within which each name must be unique."),
            "generateName": string("GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided."),
            "labels": map("Map of string keys and values that can be used to organize and categorize (scope and select) objects."),
            "annotations": map("Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata."),
            "finalizers": { "type": "array", "items": { "type": "string" }, "x-kubernetes-list-type": "set", "description": "Must be empty before the object is deleted from the registry." },
            "resourceVersion": string("An opaque value that represents the internal version of this object."),
            "uid": string("UID is the unique in time and space value for this object."),
            "creationTimestamp": { "type": "string", "format": "date-time", "description": "CreationTimestamp is a timestamp representing the server time when this object was created." },
            "deletionTimestamp": { "type": "string", "format": "date-time", "description": "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted." },
            "generation": { "type": "integer", "format": "int64", "description": "A sequence number representing a specific generation of the desired state." },
        },
    })
}

/// The document of one group-version, or `None` when it is not served.
pub fn group_version(
    registry: &Registry,
    group: &str,
    version: &str,
    schema_of: &dyn Fn(&ResourceInfo) -> Option<Value>,
) -> Option<Value> {
    let resources: Vec<&ResourceInfo> = registry.in_group_version(group, version).collect();
    if resources.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for res in resources {
        paths_of(res, &mut paths);
        let schema = if res.builtin {
            json!({
                "type": "object",
                "description": format!("{} (field schemas of built-in kinds are not published by this server)", res.kind),
                "x-kubernetes-group-version-kind": [{ "group": res.group, "version": res.version, "kind": res.kind }],
            })
        } else {
            custom_schema(res, schema_of(res))
        };
        schemas.insert(schema_name(res), schema);
    }
    schemas.insert(OBJECT_META.into(), object_meta());
    Some(json!({
        "openapi": "3.0.0",
        "info": {
            "title": "Kubernetes",
            "version": format!("v{}.{}.0", crate::discovery::KUBERNETES_MAJOR, crate::discovery::KUBERNETES_MINOR),
        },
        "paths": paths,
        "components": { "schemas": schemas },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_lists_every_group_version_and_patch_takes_field_validation() {
        let r = Registry::default();
        let none = |_: &ResourceInfo| None;
        let root = root(&r, &none);
        let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
        assert!(root["paths"]["api/v1"].is_object());
        assert_eq!(
            parse_path("/openapi/v3/apis/apps/v1"),
            Some(("apps".into(), "v1".into()))
        );
        let doc = group_version(&r, "apps", "v1", &none).unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(patch.get("requestBody").is_none());
        assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());
    }
}
