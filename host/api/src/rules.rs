//! The CRDs' patterns and label rules, shared by `validate()` and (with the
//! `kube` feature) the generated schemas, so the two cannot disagree.

use std::sync::OnceLock;

use regex::Regex;

/// A CRD `pattern`, compiled on first use, with what to write instead.
#[derive(Debug)]
pub struct Pattern {
    source: &'static str,
    hint: &'static str,
    compiled: OnceLock<Regex>,
}

impl Pattern {
    pub const fn new(source: &'static str, hint: &'static str) -> Self {
        Self {
            source,
            hint,
            compiled: OnceLock::new(),
        }
    }

    /// The pattern as it appears in the CRD.
    pub fn source(&self) -> &'static str {
        self.source
    }

    pub fn hint(&self) -> &'static str {
        self.hint
    }

    /// Unanchored, as OpenAPI patterns are; the anchors are in the source.
    pub fn is_match(&self, value: &str) -> bool {
        self.compiled
            .get_or_init(|| Regex::new(self.source).expect("CRD patterns compile"))
            .is_match(value)
    }
}

pub static NILLABLE_DURATION: Pattern = Pattern::new(
    r"^(([0-9]+(s|m|h))+|Never)$",
    "write whole hours, minutes and seconds such as `30s`, `10m` or `1h30m`, or `Never`",
);

pub static DURATION: Pattern = Pattern::new(
    r"^([0-9]+(s|m|h))+$",
    "write whole hours, minutes and seconds such as `30s`, `10m` or `1h30m`",
);

pub static BUDGET_DURATION: Pattern = Pattern::new(
    r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$",
    "write hours and minutes such as `8h`, `30m` or `1h30m` (cron has minute resolution)",
);

pub static BUDGET_NODES: Pattern = Pattern::new(
    r"^((100|[0-9]{1,2})%|[0-9]+)$",
    "write a node count such as `5` or a percentage from `0%` to `100%` such as `10%`",
);

pub static BUDGET_SCHEDULE: Pattern = Pattern::new(
    r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly))|((.+)\s(.+)\s(.+)\s(.+)\s(.+))$",
    "write a 5-field cron expression in UTC such as `0 9 * * mon-fri`, or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
);

/// Requirement and taint keys.
pub static QUALIFIED_KEY: Pattern = Pattern::new(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(\/))?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$",
    "use an optional DNS subdomain prefix and `/`, then alphanumerics, `-`, `_` or `.`, starting and ending alphanumeric, such as `example.com/team`",
);

/// Label values (and requirement values, which Karpenter's CRD checks the
/// same way at run time).
pub static LABEL_VALUE: Pattern = Pattern::new(
    r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
    "use alphanumerics, `-`, `_` or `.`, starting and ending alphanumeric",
);

pub static NODE_CLASS_GROUP: Pattern = Pattern::new(
    r"^[^/]*$",
    "give the API group without a version, such as `karpenter.k8s.aws`",
);

pub static QUANTITY: Pattern = Pattern::new(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
    "write a Kubernetes quantity such as `500m`, `2`, `1536Mi` or `20Gi`",
);

pub static CONDITION_TYPE: Pattern = Pattern::new(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    "use a CamelCase type such as `Ready`, optionally with a DNS prefix",
);

pub static CONDITION_REASON: Pattern = Pattern::new(
    r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    "use a CamelCase reason such as `AwaitingReconciliation`",
);

/// NodeClaim conditions may have an empty reason.
pub static CONDITION_REASON_OR_EMPTY: Pattern = Pattern::new(
    r"^([A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?|)$",
    "use a CamelCase reason such as `AwaitingReconciliation`, or leave it empty",
);

pub static SUBNET_ID: Pattern = Pattern::new(
    "subnet-[0-9a-z]+",
    "write a subnet ID such as `subnet-0a1b2c3d`",
);
pub static SECURITY_GROUP_ID: Pattern = Pattern::new(
    "sg-[0-9a-z]+",
    "write a security group ID such as `sg-0a1b2c3d`",
);
pub static AMI_ID: Pattern =
    Pattern::new("ami-[0-9a-z]+", "write an AMI ID such as `ami-0a1b2c3d`");
pub static CAPACITY_RESERVATION_ID: Pattern = Pattern::new(
    "^cr-[0-9a-z]+$",
    "write a capacity reservation ID such as `cr-0a1b2c3d`",
);
pub static OWNER_ID: Pattern = Pattern::new("^[0-9]{12}$", "write a 12-digit AWS account ID");
pub static PLACEMENT_GROUP_ID: Pattern = Pattern::new(
    "^pg-[0-9a-z]+$",
    "write a placement group ID such as `pg-0a1b2c3d`",
);

pub static VOLUME_SIZE: Pattern = Pattern::new(
    r"^((?:[1-9][0-9]{0,3}|[1-4][0-9]{4}|[5][0-8][0-9]{3}|59000)Gi|(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|[6][0-3][0-9]{3}|64000)G|([1-9]||[1-5][0-7]|58)Ti|([1-9]||[1-5][0-9]|6[0-3]|64)T)$",
    "write a size in Gi, G, Ti or T such as `100Gi`, at most 59000Gi (64000G, 58Ti, 64T)",
);

/// Kubelet eviction thresholds: a percentage or a quantity.
pub static EVICTION_VALUE: Pattern = Pattern::new(
    r"^((\d{1,2}(\.\d{1,2})?|100(\.0{1,2})?)%||(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?)$",
    "write a percentage such as `10%` or a quantity such as `500Mi`",
);

/// The well-known `karpenter.k8s.aws/*` labels a NodePool may name: the
/// only keys of that domain its CEL rules let through.
pub const AWS_WELL_KNOWN_LABELS: &[&str] = &[
    "karpenter.k8s.aws/instance-tenancy",
    "karpenter.k8s.aws/capacity-reservation-type",
    "karpenter.k8s.aws/capacity-reservation-id",
    "karpenter.k8s.aws/capacity-reservation-interruptible",
    "karpenter.k8s.aws/ec2nodeclass",
    "karpenter.k8s.aws/instance-encryption-in-transit-supported",
    "karpenter.k8s.aws/instance-category",
    "karpenter.k8s.aws/instance-hypervisor",
    "karpenter.k8s.aws/instance-family",
    "karpenter.k8s.aws/instance-generation",
    "karpenter.k8s.aws/instance-local-nvme",
    "karpenter.k8s.aws/instance-size",
    "karpenter.k8s.aws/instance-cpu",
    "karpenter.k8s.aws/instance-cpu-manufacturer",
    "karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz",
    "karpenter.k8s.aws/instance-memory",
    "karpenter.k8s.aws/instance-ebs-bandwidth",
    "karpenter.k8s.aws/instance-network-bandwidth",
    "karpenter.k8s.aws/instance-gpu-name",
    "karpenter.k8s.aws/instance-gpu-manufacturer",
    "karpenter.k8s.aws/instance-gpu-count",
    "karpenter.k8s.aws/instance-gpu-memory",
    "karpenter.k8s.aws/instance-accelerator-name",
    "karpenter.k8s.aws/instance-accelerator-manufacturer",
    "karpenter.k8s.aws/instance-accelerator-count",
    "karpenter.k8s.aws/instance-capability-flex",
    "karpenter.k8s.aws/placement-group-id",
    "karpenter.k8s.aws/placement-group-partition",
];

/// The `karpenter.sh/*` labels that are not restricted.
pub const KARPENTER_SH_ALLOWED: &[&str] = &["karpenter.sh/capacity-type", "karpenter.sh/nodepool"];

pub const NODE_POOL_LABEL: &str = "karpenter.sh/nodepool";
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The text before the first `/`, or the whole key: what the CEL rules call
/// the domain (`x.find("^([^/]+)")`).
fn domain(key: &str) -> &str {
    key.split('/').next().unwrap_or(key)
}

/// Where a label key is used, which decides whether `karpenter.sh/nodepool`
/// is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// NodePool template labels and requirements: the pool sets it itself.
    NodePool,
    /// NodeClaim requirements, which carry the pool's name.
    NodeClaim,
}

/// Why the CRD's CEL rules refuse `key`, with the fix; `None` when allowed.
pub fn restricted_key(key: &str, used: KeyUse) -> Option<(String, String)> {
    let d = domain(key);
    if key == HOSTNAME_LABEL {
        return Some((
            format!("label `{HOSTNAME_LABEL}` is restricted"),
            "remove it: every node gets its own hostname".into(),
        ));
    }
    if used == KeyUse::NodePool && key == NODE_POOL_LABEL {
        return Some((
            format!("label `{NODE_POOL_LABEL}` is restricted"),
            "remove it: Dovetail sets it to the NodePool's name".into(),
        ));
    }
    if d.ends_with("karpenter.sh") && !KARPENTER_SH_ALLOWED.contains(&key) {
        return Some((
            "label domain `karpenter.sh` is restricted".into(),
            format!(
                "use a domain of your own; of karpenter.sh only {} may be named",
                KARPENTER_SH_ALLOWED.join(" and ")
            ),
        ));
    }
    if d.ends_with("karpenter.k8s.aws") && !AWS_WELL_KNOWN_LABELS.contains(&key) {
        return Some((
            "label domain `karpenter.k8s.aws` is restricted".into(),
            "use a domain of your own, or one of the well-known karpenter.k8s.aws labels such as `karpenter.k8s.aws/instance-family`".into(),
        ));
    }
    None
}

/// Kubernetes' `IsQualifiedName` (label keys): an optional DNS subdomain
/// prefix of at most 253 characters, then a name of at most 63.
pub fn qualified_name_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() || p.len() > 253 {
            return Some("its prefix must be a DNS subdomain of 1 to 253 characters".into());
        }
        let label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !p.split('.').all(label) {
            return Some(format!("prefix `{p}` is not a lowercase DNS subdomain"));
        }
    }
    if name.is_empty() || name.len() > 63 {
        return Some("its name must be 1 to 63 characters".into());
    }
    let ok_inner = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let bytes = name.as_bytes();
    if !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
        || !bytes.iter().all(|&b| ok_inner(b))
    {
        return Some(format!(
            "name `{name}` must be alphanumerics, `-`, `_` or `.`, starting and ending alphanumeric"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for p in [
            &NILLABLE_DURATION,
            &DURATION,
            &BUDGET_DURATION,
            &BUDGET_NODES,
            &BUDGET_SCHEDULE,
            &QUALIFIED_KEY,
            &LABEL_VALUE,
            &NODE_CLASS_GROUP,
            &QUANTITY,
            &CONDITION_TYPE,
            &CONDITION_REASON,
            &CONDITION_REASON_OR_EMPTY,
            &SUBNET_ID,
            &SECURITY_GROUP_ID,
            &AMI_ID,
            &CAPACITY_RESERVATION_ID,
            &OWNER_ID,
            &PLACEMENT_GROUP_ID,
            &VOLUME_SIZE,
            &EVICTION_VALUE,
        ] {
            p.is_match("");
        }
    }

    #[test]
    fn restricted_keys_follow_the_cel_rules() {
        let restricted = |k| restricted_key(k, KeyUse::NodePool).is_some();
        assert!(restricted("karpenter.sh/foo"));
        assert!(restricted("sub.karpenter.sh/foo"));
        assert!(!restricted("karpenter.sh/capacity-type"));
        assert!(restricted("karpenter.sh/nodepool"));
        assert!(restricted_key("karpenter.sh/nodepool", KeyUse::NodeClaim).is_none());
        assert!(restricted("kubernetes.io/hostname"));
        assert!(restricted("karpenter.k8s.aws/foo"));
        assert!(!restricted("karpenter.k8s.aws/instance-family"));
        assert!(!restricted("example.com/team"));
        assert!(!restricted("node.kubernetes.io/instance-type"));
    }

    #[test]
    fn qualified_names() {
        assert_eq!(qualified_name_problem("example.com/team"), None);
        assert_eq!(qualified_name_problem("team"), None);
        assert!(qualified_name_problem("Example.com/team").is_some());
        assert!(qualified_name_problem("-team").is_some());
        assert!(qualified_name_problem(&"a".repeat(64)).is_some());
        assert!(qualified_name_problem("/team").is_some());
    }

    #[test]
    fn volume_sizes() {
        for ok in ["20Gi", "59000Gi", "64000G", "58Ti", "64T", "1Ti"] {
            assert!(VOLUME_SIZE.is_match(ok), "{ok}");
        }
        for bad in ["0Gi", "59001Gi", "59Ti", "20", "20Mi"] {
            assert!(!VOLUME_SIZE.is_match(bad), "{bad}");
        }
    }
}
