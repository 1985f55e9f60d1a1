//! Well-known label keys, taints and annotations (Karpenter's and Kubernetes').

use crate::sym::Sym;

pub const HOSTNAME: &str = "kubernetes.io/hostname";
pub const ZONE: &str = "topology.kubernetes.io/zone";
pub const REGION: &str = "topology.kubernetes.io/region";
pub const INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
pub const ARCH: &str = "kubernetes.io/arch";
pub const OS: &str = "kubernetes.io/os";
pub const WINDOWS_BUILD: &str = "node.kubernetes.io/windows-build";
pub const CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
pub const NODE_POOL: &str = "karpenter.sh/nodepool";
pub const INSTANCE_CATEGORY: &str = "karpenter.k8s.aws/instance-category";
pub const INSTANCE_FAMILY: &str = "karpenter.k8s.aws/instance-family";
pub const INSTANCE_GENERATION: &str = "karpenter.k8s.aws/instance-generation";
pub const INSTANCE_SIZE: &str = "karpenter.k8s.aws/instance-size";
pub const INSTANCE_CPU: &str = "karpenter.k8s.aws/instance-cpu";
pub const INSTANCE_MEMORY: &str = "karpenter.k8s.aws/instance-memory";
pub const INSTANCE_GPU_COUNT: &str = "karpenter.k8s.aws/instance-gpu-count";

pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";

/// Labels a NodePool may leave undefined and a pod may still require: the
/// cloud fills them in at launch. Karpenter core's set plus the AWS
/// provider's.
pub const WELL_KNOWN: &[&str] = &[
    NODE_POOL,
    ZONE,
    REGION,
    INSTANCE_TYPE,
    ARCH,
    OS,
    CAPACITY_TYPE,
    WINDOWS_BUILD,
    "topology.k8s.aws/zone-id",
    "karpenter.k8s.aws/ec2nodeclass",
    INSTANCE_CATEGORY,
    INSTANCE_FAMILY,
    INSTANCE_GENERATION,
    INSTANCE_SIZE,
    INSTANCE_CPU,
    "karpenter.k8s.aws/instance-cpu-manufacturer",
    "karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz",
    INSTANCE_MEMORY,
    "karpenter.k8s.aws/instance-hypervisor",
    "karpenter.k8s.aws/instance-encryption-in-transit-supported",
    "karpenter.k8s.aws/instance-local-nvme",
    "karpenter.k8s.aws/instance-ebs-bandwidth",
    "karpenter.k8s.aws/instance-network-bandwidth",
    "karpenter.k8s.aws/instance-gpu-name",
    "karpenter.k8s.aws/instance-gpu-manufacturer",
    INSTANCE_GPU_COUNT,
    "karpenter.k8s.aws/instance-gpu-memory",
    "karpenter.k8s.aws/instance-accelerator-name",
    "karpenter.k8s.aws/instance-accelerator-manufacturer",
    "karpenter.k8s.aws/instance-accelerator-count",
    "karpenter.k8s.aws/instance-tenancy",
    "karpenter.k8s.aws/instance-capability-flex",
    "karpenter.k8s.aws/capacity-reservation-id",
    "karpenter.k8s.aws/capacity-reservation-type",
    "karpenter.k8s.aws/capacity-reservation-interruptible",
];

pub fn is_well_known(key: &str) -> bool {
    WELL_KNOWN.contains(&key)
}

/// The labels a NodeClaim may leave undefined while a pod still requires
/// them, because the launch fills them in: [`WELL_KNOWN`] and those the
/// catalog declares its own (a custom catalog's accelerator model, say).
#[derive(Debug, Clone, Copy)]
pub struct WellKnown<'a> {
    /// The catalog's own keys, sorted.
    catalog: &'a [Sym],
}

impl<'a> WellKnown<'a> {
    /// Karpenter's and the AWS provider's well-known labels only.
    pub const BUILT_IN: WellKnown<'static> = WellKnown { catalog: &[] };

    /// The built-in labels and `catalog` (sorted).
    pub fn with(catalog: &'a [Sym]) -> Self {
        Self { catalog }
    }

    pub fn contains(&self, key: Sym) -> bool {
        is_well_known(key.as_str()) || self.catalog.binary_search(&key).is_ok()
    }
}

/// Taints that come and go during a node's start-up; scheduling ignores them
/// as Karpenter does.
pub fn is_ephemeral_taint(key: &str) -> bool {
    matches!(
        key,
        "node.kubernetes.io/not-ready"
            | "node.kubernetes.io/unreachable"
            | "node.cloudprovider.kubernetes.io/uninitialized"
            | "karpenter.sh/unregistered"
    ) || key.starts_with("readiness.k8s.io/")
}
