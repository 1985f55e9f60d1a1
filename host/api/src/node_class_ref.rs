//! `nodeClassRef`: which provider node class a NodePool or NodeClaim uses.

use serde::{Deserialize, Serialize};

use crate::error::{Errors, Path};
use crate::rules;

/// A reference to a node class such as an EC2NodeClass.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct NodeClassReference {
    /// The API group, without a version.
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), pattern(rules::NODE_CLASS_GROUP.source()), extend("x-kubernetes-validations" = [{"message": "group may not be empty", "rule": "self != ''"}])))]
    pub group: String,
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), extend("x-kubernetes-validations" = [{"message": "kind may not be empty", "rule": "self != ''"}])))]
    pub kind: String,
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), extend("x-kubernetes-validations" = [{"message": "name may not be empty", "rule": "self != ''"}])))]
    pub name: String,
}

/// The AWS provider's node class.
pub const EC2_NODE_CLASS_GROUP: &str = "karpenter.k8s.aws";
pub const EC2_NODE_CLASS_KIND: &str = "EC2NodeClass";

impl NodeClassReference {
    /// An EC2NodeClass named `name`.
    pub fn ec2(name: &str) -> Self {
        Self {
            group: EC2_NODE_CLASS_GROUP.into(),
            kind: EC2_NODE_CLASS_KIND.into(),
            name: name.into(),
        }
    }
}

pub(crate) fn validate_node_class_ref(
    r: Option<&NodeClassReference>,
    path: &Path,
    errors: &mut Errors,
) {
    let Some(r) = r else {
        errors.required(
            path,
            "name the node class: `{group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}`",
        );
        return;
    };
    for (field, value, example) in [
        ("group", &r.group, EC2_NODE_CLASS_GROUP),
        ("kind", &r.kind, EC2_NODE_CLASS_KIND),
        ("name", &r.name, "default"),
    ] {
        if value.is_empty() {
            errors.required(&path.field(field), format!("set it, such as `{example}`"));
        }
    }
    if !r.group.is_empty() {
        errors.pattern(&path.field("group"), &r.group, &rules::NODE_CLASS_GROUP);
    }
}
