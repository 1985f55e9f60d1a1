//! The CRDs' `x-kubernetes-validations` rules (CEL), as Karpenter's CRDs
//! carry them; `validate()` implements the same rules in Rust.

use serde_json::{Value, json};

use crate::ec2nodeclass::{ALIAS_FAMILIES, eviction_signal_list};
use crate::rules::{AWS_WELL_KNOWN_LABELS, KARPENTER_SH_ALLOWED};

fn rule(message: &str, rule: &str) -> Value {
    json!({ "message": message, "rule": rule })
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rules on one label key named `x` (`self` for a requirement's key, `x`
/// inside `self.all(x, ...)` for a label map).
fn key_rules(x: &str, node_pool: bool, wrap: impl Fn(String) -> String) -> Vec<Value> {
    let domain = |d: &str| format!("{x}.find(\"^([^/]+)\").endsWith(\"{d}\")");
    let mut rules = vec![rule(
        "label domain \"karpenter.sh\" is restricted",
        &wrap(format!(
            "{x} in [{}] || !{}",
            quoted(KARPENTER_SH_ALLOWED),
            domain("karpenter.sh")
        )),
    )];
    if node_pool {
        rules.push(rule(
            "label \"karpenter.sh/nodepool\" is restricted",
            &wrap(format!("{x} != \"karpenter.sh/nodepool\"")),
        ));
    }
    rules.push(rule(
        "label \"kubernetes.io/hostname\" is restricted",
        &wrap(format!("{x} != \"kubernetes.io/hostname\"")),
    ));
    rules.push(rule(
        "label domain \"karpenter.k8s.aws\" is restricted",
        &wrap(format!(
            "{x} in [{}] || !{}",
            quoted(AWS_WELL_KNOWN_LABELS),
            domain("karpenter.k8s.aws")
        )),
    ));
    rules
}

/// A requirement's `key`.
pub fn requirement_key(node_pool: bool) -> Vec<Value> {
    key_rules("self", node_pool, |r| r)
}

/// `spec.template.metadata.labels`.
pub fn template_labels() -> Vec<Value> {
    key_rules("x", true, |r| format!("self.all(x, {r})"))
}

/// A requirements list.
pub fn requirements() -> Vec<Value> {
    vec![
        rule(
            "requirements with operator 'In' must have a value defined",
            "self.all(x, x.operator == 'In' ? x.values.size() != 0 : true)",
        ),
        rule(
            "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value",
            "self.all(x, (x.operator == 'Gt' || x.operator == 'Lt' || x.operator == 'Gte' || x.operator == 'Lte') ? (x.values.size() == 1 && int(x.values[0]) >= 0) : true)",
        ),
        rule(
            "requirements with 'minValues' must have at least that many values specified in the 'values' field",
            "self.all(x, (x.operator == 'In' && has(x.minValues)) ? x.values.size() >= x.minValues : true)",
        ),
    ]
}

pub fn node_class_ref_immutable() -> Vec<Value> {
    vec![
        rule(
            "nodeClassRef.group is immutable",
            "self.group == oldSelf.group",
        ),
        rule(
            "nodeClassRef.kind is immutable",
            "self.kind == oldSelf.kind",
        ),
    ]
}

pub fn budgets() -> Vec<Value> {
    vec![rule(
        "'schedule' must be set with 'duration'",
        "self.all(x, has(x.schedule) == has(x.duration))",
    )]
}

pub fn node_pool_spec() -> Vec<Value> {
    vec![
        rule(
            "Cannot transition NodePool between static (replicas set) and dynamic (replicas unset) provisioning modes",
            "has(self.replicas) == has(oldSelf.replicas)",
        ),
        rule(
            "only 'limits.nodes' is supported on static NodePools",
            "!has(self.replicas) || (!has(self.limits) || size(self.limits) == 0 || (size(self.limits) == 1 && 'nodes' in self.limits))",
        ),
        rule(
            "'weight' is not supported on static NodePools",
            "!has(self.replicas) || !has(self.weight)",
        ),
    ]
}

pub fn selector_tags() -> Vec<Value> {
    vec![rule(
        "empty tag keys or values aren't supported",
        "self.all(k, k != '' && self[k] != '')",
    )]
}

pub fn subnet_terms() -> Vec<Value> {
    vec![
        rule("subnetSelectorTerms cannot be empty", "self.size() != 0"),
        rule(
            "expected at least one, got none, ['tags', 'id']",
            "self.all(x, has(x.tags) || has(x.id))",
        ),
        rule(
            "'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term",
            "!self.all(x, has(x.id) && has(x.tags))",
        ),
    ]
}

pub fn security_group_terms() -> Vec<Value> {
    vec![
        rule(
            "securityGroupSelectorTerms cannot be empty",
            "self.size() != 0",
        ),
        rule(
            "expected at least one, got none, ['tags', 'id', 'name']",
            "self.all(x, has(x.tags) || has(x.id) || has(x.name))",
        ),
        rule(
            "'id' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
            "!self.all(x, has(x.id) && (has(x.tags) || has(x.name)))",
        ),
        rule(
            "'name' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
            "!self.all(x, has(x.name) && (has(x.tags) || has(x.id)))",
        ),
    ]
}

pub fn capacity_reservation_terms() -> Vec<Value> {
    vec![
        rule(
            "expected at least one, got none, ['tags', 'id', 'instanceMatchCriteria']",
            "self.all(x, has(x.tags) || has(x.id) || has(x.instanceMatchCriteria))",
        ),
        rule(
            "'id' is mutually exclusive, cannot be set along with other fields in a capacity reservation selector term",
            "!self.all(x, has(x.id) && (has(x.tags) || has(x.ownerID) || has(x.instanceMatchCriteria)))",
        ),
    ]
}

pub fn ami_terms() -> Vec<Value> {
    vec![
        rule(
            "expected at least one, got none, ['tags', 'id', 'name', 'alias', 'ssmParameter']",
            "self.all(x, has(x.tags) || has(x.id) || has(x.name) || has(x.alias) || has(x.ssmParameter))",
        ),
        rule(
            "'id' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
            "!self.exists(x, has(x.id) && (has(x.alias) || has(x.tags) || has(x.name) || has(x.owner)))",
        ),
        rule(
            "'alias' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
            "!self.exists(x, has(x.alias) && (has(x.id) || has(x.tags) || has(x.name) || has(x.owner)))",
        ),
        rule(
            "'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms",
            "!(self.exists(x, has(x.alias)) && self.size() != 1)",
        ),
    ]
}

pub fn alias() -> Vec<Value> {
    let families = ALIAS_FAMILIES
        .iter()
        .map(|f| format!("'{f}'"))
        .collect::<Vec<_>>();
    vec![
        rule(
            "'alias' is improperly formatted, must match the format 'family@version'",
            "self.matches('^[a-zA-Z0-9]+@.+$')",
        ),
        rule(
            &format!(
                "family is not supported, must be one of the following: {}",
                families.join(", ")
            ),
            &format!("self.split('@')[0] in [{}]", families.join(",")),
        ),
        rule(
            "windows families may only specify version 'latest'",
            "self.split('@')[0] in ['windows2019','windows2022','windows2025'] ? self.split('@')[1] == 'latest' : true",
        ),
    ]
}

pub fn ec2_node_class_spec() -> Vec<Value> {
    let mut rules = vec![rule(
        "must specify exactly one of ['role', 'instanceProfile']",
        "(has(self.role) && !has(self.instanceProfile)) || (!has(self.role) && has(self.instanceProfile))",
    )];
    for (alias, family, article) in [
        ("al2", "AL2", "an"),
        ("al2023", "AL2023", "an"),
        ("bottlerocket", "Bottlerocket", "a"),
        ("windows2019", "Windows2019", "a"),
        ("windows2022", "Windows2022", "a"),
        ("windows2025", "Windows2025", "a"),
    ] {
        rules.push(rule(
            &format!(
                "if set, amiFamily must be '{family}' or 'Custom' when using {article} {family} alias"
            ),
            &format!(
                "!has(self.amiFamily) || (self.amiSelectorTerms.exists(x, has(x.alias) && x.alias.find('^[^@]+') == '{alias}') ? (self.amiFamily == 'Custom' || self.amiFamily == '{family}') : true)"
            ),
        ));
    }
    rules.push(rule(
        "must specify amiFamily if amiSelectorTerms does not contain an alias",
        "self.amiSelectorTerms.exists(x, has(x.alias)) ? true : has(self.amiFamily)",
    ));
    rules
}

pub fn tags() -> Vec<Value> {
    vec![
        rule("empty tag keys aren't supported", "self.all(k, k != '')"),
        rule(
            "tag contains a restricted tag matching eks:eks-cluster-name",
            "self.all(k, k !='eks:eks-cluster-name')",
        ),
        rule(
            "tag contains a restricted tag matching kubernetes.io/cluster/",
            "self.all(k, !k.startsWith('kubernetes.io/cluster') )",
        ),
        rule(
            "tag contains a restricted tag matching karpenter.sh/nodepool",
            "self.all(k, k != 'karpenter.sh/nodepool')",
        ),
        rule(
            "tag contains a restricted tag matching karpenter.sh/nodeclaim",
            "self.all(k, k !='karpenter.sh/nodeclaim')",
        ),
        rule(
            "tag contains a restricted tag matching karpenter.k8s.aws/ec2nodeclass",
            "self.all(k, k !='karpenter.k8s.aws/ec2nodeclass')",
        ),
    ]
}

pub fn network_interfaces() -> Vec<Value> {
    vec![
        rule(
            "networkInterfaces must include a primary interface with interfaceType='interface'",
            "self.size() == 0 || self.exists(x, x.deviceIndex == 0 && x.networkCardIndex == 0 && x.interfaceType == 'interface')",
        ),
        rule(
            "networkInterfaces must not have duplicate networkCardIndex and deviceIndex pairs, and can have at most one efa device per network card",
            "self.all(x, self.filter(y, x.networkCardIndex == y.networkCardIndex && x.deviceIndex == y.deviceIndex).size() == 1 && (x.interfaceType != 'efa-only' || self.filter(y, x.networkCardIndex == y.networkCardIndex && y.interfaceType == 'efa-only').size() == 1))",
        ),
    ]
}

pub fn kubelet() -> Vec<Value> {
    vec![
        rule(
            "imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent",
            "has(self.imageGCHighThresholdPercent) && has(self.imageGCLowThresholdPercent) ?  self.imageGCHighThresholdPercent > self.imageGCLowThresholdPercent  : true",
        ),
        rule(
            "evictionSoft OwnerKey does not have a matching evictionSoftGracePeriod",
            "has(self.evictionSoft) ? self.evictionSoft.all(e, (e in self.evictionSoftGracePeriod)):true",
        ),
        rule(
            "evictionSoftGracePeriod OwnerKey does not have a matching evictionSoft",
            "has(self.evictionSoftGracePeriod) ? self.evictionSoftGracePeriod.all(e, (e in self.evictionSoft)):true",
        ),
    ]
}

/// Keys of an eviction map.
pub fn eviction_keys(field: &str) -> Vec<Value> {
    let list = eviction_signal_list();
    vec![rule(
        &format!("valid keys for {field} are [{list}]"),
        &format!("self.all(x, x in [{list}])"),
    )]
}

/// Keys and values of a reserved-resources map.
pub fn reserved(field: &str) -> Vec<Value> {
    vec![
        rule(
            &format!("valid keys for {field} are ['cpu','memory','ephemeral-storage','pid']"),
            "self.all(x, x=='cpu' || x=='memory' || x=='ephemeral-storage' || x=='pid')",
        ),
        rule(
            &format!("{field} value cannot be a negative resource quantity"),
            "self.all(x, !self[x].startsWith('-'))",
        ),
    ]
}
