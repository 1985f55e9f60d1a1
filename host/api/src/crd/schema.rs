//! Field schemas the derive cannot express, written to match Karpenter's
//! CRDs (used through `#[schemars(schema_with = ...)]`).

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::json;

use super::cel;
use crate::requirement::{
    MAX_KEY_LENGTH, MAX_LABEL_VALUE_LENGTH, MAX_REQUIREMENTS, MIN_VALUES_RANGE, Operator,
};
use crate::rules;

/// `metadata`: the API server owns its schema.
pub fn metadata(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object" })
}

fn quantity() -> serde_json::Value {
    json!({
        "anyOf": [{ "type": "integer" }, { "type": "string" }],
        "pattern": rules::QUANTITY.source(),
        "x-kubernetes-int-or-string": true,
    })
}

/// A resource list (`limits`, `resources`, `capacity`, ...).
pub fn quantities(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "additionalProperties": quantity() })
}

/// An EBS volume size.
pub fn volume_size(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": rules::VOLUME_SIZE.source() })
}

pub fn template_labels(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "type": "string",
            "maxLength": MAX_LABEL_VALUE_LENGTH,
            "pattern": rules::LABEL_VALUE.source(),
        },
        "maxProperties": crate::nodepool::MAX_TEMPLATE_LABELS,
        "x-kubernetes-map-type": "atomic",
        "x-kubernetes-validations": cel::template_labels(),
    })
}

fn requirements(node_pool: bool) -> Schema {
    let (min, max) = MIN_VALUES_RANGE;
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "description": "A node selector requirement with minValues: at least that many distinct values of the key among the instance types a launch may use.",
            "properties": {
                "key": {
                    "type": "string",
                    "maxLength": MAX_KEY_LENGTH,
                    "pattern": rules::QUALIFIED_KEY.source(),
                    "x-kubernetes-validations": cel::requirement_key(node_pool),
                },
                "operator": { "type": "string", "enum": Operator::NAMES },
                "values": {
                    "type": "array",
                    "items": { "type": "string" },
                    "x-kubernetes-list-type": "atomic",
                    // As in Karpenter's CRD, on the list: the values are
                    // checked when the pool is validated.
                    "maxLength": MAX_LABEL_VALUE_LENGTH,
                    "pattern": rules::LABEL_VALUE.source(),
                },
                "minValues": { "type": "integer", "minimum": min, "maximum": max },
            },
            "required": ["key", "operator"],
        },
        "maxItems": MAX_REQUIREMENTS,
        "x-kubernetes-list-type": "atomic",
        "x-kubernetes-validations": cel::requirements(),
    })
}

pub fn node_pool_requirements(_: &mut SchemaGenerator) -> Schema {
    requirements(true)
}

pub fn node_claim_requirements(_: &mut SchemaGenerator) -> Schema {
    requirements(false)
}

/// Tags of an EC2NodeClass selector term.
pub fn selector_tags(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "type": "string" },
        "maxProperties": crate::ec2nodeclass::MAX_SELECTOR_TAGS,
        "x-kubernetes-validations": cel::selector_tags(),
    })
}

fn reserved(field: &str) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "type": "string", "pattern": rules::QUANTITY.source() },
        "x-kubernetes-validations": cel::reserved(field),
    })
}

pub fn system_reserved(_: &mut SchemaGenerator) -> Schema {
    reserved("systemReserved")
}

pub fn kube_reserved(_: &mut SchemaGenerator) -> Schema {
    reserved("kubeReserved")
}

fn eviction(field: &str) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "type": "string", "pattern": rules::EVICTION_VALUE.source() },
        "x-kubernetes-validations": cel::eviction_keys(field),
    })
}

pub fn eviction_hard(_: &mut SchemaGenerator) -> Schema {
    eviction("evictionHard")
}

pub fn eviction_soft(_: &mut SchemaGenerator) -> Schema {
    eviction("evictionSoft")
}

pub fn eviction_soft_grace_period(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "type": "string" },
        "x-kubernetes-validations": cel::eviction_keys("evictionSoftGracePeriod"),
    })
}

/// A condition list. NodeClaims allow an empty reason and message; NodePool
/// and NodeClaim lists are maps keyed by `type`.
fn conditions(g: &mut SchemaGenerator, reason_required: bool, list_map: bool) -> Schema {
    let mut item = g.subschema_for::<crate::condition::Condition>().to_value();
    let reason = &mut item["properties"]["reason"];
    if reason_required {
        reason["minLength"] = json!(1);
        reason["pattern"] = json!(rules::CONDITION_REASON.source());
        reason["x-dovetail-required"] = json!(true);
        item["properties"]["message"]["x-dovetail-required"] = json!(true);
    } else {
        reason["pattern"] = json!(rules::CONDITION_REASON_OR_EMPTY.source());
    }
    let mut list = json!({ "type": "array", "items": item });
    if list_map {
        list["x-kubernetes-list-type"] = json!("map");
        list["x-kubernetes-list-map-keys"] = json!(["type"]);
    }
    Schema::try_from(list).expect("an object is a schema")
}

pub fn node_pool_conditions(g: &mut SchemaGenerator) -> Schema {
    conditions(g, true, true)
}

pub fn node_claim_conditions(g: &mut SchemaGenerator) -> Schema {
    conditions(g, false, true)
}

pub fn ec2_node_class_conditions(g: &mut SchemaGenerator) -> Schema {
    conditions(g, true, false)
}
