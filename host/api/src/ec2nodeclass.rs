//! `karpenter.k8s.aws/v1` EC2NodeClass: how the AWS provider launches
//! instances (subnets, security groups, AMIs, kubelet, volumes, metadata).
//! The kubelet block is the typed one of Karpenter's v1.14.1 release.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};

use crate::condition::{Condition, Reasons, validate_conditions};
use crate::duration::GoDuration;
use crate::enums::string_enum;
use crate::error::{ErrorKind, Errors, Path, ValidationErrors};
use crate::rules;

pub const GROUP: &str = "karpenter.k8s.aws";
pub const VERSION: &str = "v1";
pub const API_VERSION: &str = "karpenter.k8s.aws/v1";
pub const KIND: &str = "EC2NodeClass";

pub const MAX_SELECTOR_TERMS: usize = 30;
pub const MAX_SELECTOR_TAGS: usize = 20;
pub const MAX_BLOCK_DEVICE_MAPPINGS: usize = 50;
pub const MAX_NETWORK_INTERFACES: usize = 150;

/// The keys `evictionHard`, `evictionSoft` and `evictionSoftGracePeriod` take.
pub const EVICTION_SIGNALS: &[&str] = &[
    "memory.available",
    "nodefs.available",
    "nodefs.inodesFree",
    "imagefs.available",
    "imagefs.inodesFree",
    "pid.available",
];
/// The keys `kubeReserved` and `systemReserved` take.
pub const RESERVED_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage", "pid"];
/// `spec.tags` keys the controller sets itself.
pub const RESTRICTED_TAGS: &[&str] = &[
    "eks:eks-cluster-name",
    "karpenter.sh/nodepool",
    "karpenter.sh/nodeclaim",
    "karpenter.k8s.aws/ec2nodeclass",
];
/// Alias families, lower case as written in `alias`.
pub const ALIAS_FAMILIES: &[&str] = &[
    "al2",
    "al2023",
    "bottlerocket",
    "windows2019",
    "windows2022",
    "windows2025",
];

/// A `karpenter.k8s.aws/v1` EC2NodeClass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct EC2NodeClass {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::metadata")
    )]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: EC2NodeClassSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EC2NodeClassStatus>,
}

string_enum! {
    pub enum AmiFamily {
        AL2 = "AL2",
        AL2023 = "AL2023",
        Bottlerocket = "Bottlerocket",
        Custom = "Custom",
        Windows2019 = "Windows2019",
        Windows2022 = "Windows2022",
        Windows2025 = "Windows2025",
    }
}

string_enum! {
    pub enum InstanceStorePolicy {
        RAID0 = "RAID0",
    }
}

string_enum! {
    pub enum InterfaceType {
        Interface = "interface",
        EfaOnly = "efa-only",
    }
}

string_enum! {
    pub enum InstanceMatchCriteria {
        Open = "open",
        Targeted = "targeted",
    }
}

string_enum! {
    pub enum VolumeType {
        Standard = "standard",
        Io1 = "io1",
        Io2 = "io2",
        Gp2 = "gp2",
        Sc1 = "sc1",
        St1 = "st1",
        Gp3 = "gp3",
    }
}

string_enum! {
    pub enum EnabledDisabled {
        Enabled = "enabled",
        Disabled = "disabled",
    }
}

string_enum! {
    pub enum HttpTokens {
        Required = "required",
        Optional = "optional",
    }
}

string_enum! {
    pub enum CapacityReservationType {
        Default = "default",
        CapacityBlock = "capacity-block",
    }
}

string_enum! {
    pub enum CapacityReservationState {
        Active = "active",
        Expiring = "expiring",
    }
}

/// `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-validations" = crate::crd::cel::ec2_node_class_spec())))]
#[serde(rename_all = "camelCase")]
pub struct EC2NodeClassSpec {
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), length(max = MAX_SELECTOR_TERMS), extend("x-kubernetes-validations" = crate::crd::cel::subnet_terms())))]
    pub subnet_selector_terms: Vec<SubnetSelectorTerm>,
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), length(max = MAX_SELECTOR_TERMS), extend("x-kubernetes-validations" = crate::crd::cel::security_group_terms())))]
    pub security_group_selector_terms: Vec<SecurityGroupSelectorTerm>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(length(max = MAX_SELECTOR_TERMS), extend("x-kubernetes-validations" = crate::crd::cel::capacity_reservation_terms())))]
    pub capacity_reservation_selector_terms: Vec<CapacityReservationSelectorTerm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_group_selector: Option<PlacementGroupSelector>,
    #[serde(
        rename = "associatePublicIPAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub associate_public_ip_address: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 0)))]
    pub ip_prefix_count: Option<i32>,
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), length(min = 1, max = MAX_SELECTOR_TERMS), extend("x-kubernetes-validations" = crate::crd::cel::ami_terms())))]
    pub ami_selector_terms: Vec<AmiSelectorTerm>,
    /// Required unless an `alias` term gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami_family: Option<AmiFamily>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// The IAM role for an instance profile Karpenter manages; exactly one of
    /// `role` and `instanceProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-validations" = [{"message": "role cannot be empty", "rule": "self != ''"}])))]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-validations" = [{"message": "instanceProfile cannot be empty", "rule": "self != ''"}])))]
    pub instance_profile: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-validations" = crate::crd::cel::tags())))]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<KubeletConfiguration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(length(max = MAX_BLOCK_DEVICE_MAPPINGS), extend("x-kubernetes-validations" = [{"message": "must have only one blockDeviceMappings with rootVolume", "rule": "self.filter(x, has(x.rootVolume)?x.rootVolume==true:false).size() <= 1"}])))]
    pub block_device_mappings: Vec<BlockDeviceMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_store_policy: Option<InstanceStorePolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(length(max = MAX_NETWORK_INTERFACES), extend("x-kubernetes-validations" = crate::crd::cel::network_interfaces())))]
    pub network_interfaces: Vec<NetworkInterface>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detailed_monitoring: Option<bool>,
    #[serde(
        default = "default_metadata_options",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-default" = {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled", "httpPutResponseHopLimit": 1, "httpTokens": "required"})))]
    pub metadata_options: Option<MetadataOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-validations" = [{"message": "at least one of tcpEstablishedTimeout, udpStreamTimeout, or udpTimeout must be set", "rule": "has(self.tcpEstablishedTimeout) || has(self.udpStreamTimeout) || has(self.udpTimeout)"}])))]
    pub connection_tracking: Option<ConnectionTracking>,
    /// The CreateFleet `Context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(
        rename = "cpuOptions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_options: Option<CpuOptions>,
}

/// A subnet selector term: tags (ANDed) or an ID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct SubnetSelectorTerm {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::selector_tags")
    )]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(rules::SUBNET_ID.source())))]
    pub id: Option<String>,
}

/// A security group selector term: tags, an ID or a name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct SecurityGroupSelectorTerm {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::selector_tags")
    )]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(rules::SECURITY_GROUP_ID.source())))]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A capacity reservation selector term.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CapacityReservationSelectorTerm {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::selector_tags")
    )]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(rules::CAPACITY_RESERVATION_ID.source())))]
    pub id: Option<String>,
    #[serde(rename = "ownerID", default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(rules::OWNER_ID.source())))]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_match_criteria: Option<InstanceMatchCriteria>,
}

/// A placement group, by name or ID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-validations" = [{"message": "expected at least one, got none, ['name', 'id']", "rule": "has(self.name) || has(self.id)"}, {"message": "'name' and 'id' are mutually exclusive", "rule": "!(has(self.name) && has(self.id))"}])))]
pub struct PlacementGroupSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(min = 1)))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(rules::PLACEMENT_GROUP_ID.source())))]
    pub id: Option<String>,
}

/// An AMI selector term: an alias (`al2023@latest`) alone, or tags, an ID,
/// a name (with an owner) or an SSM parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AmiSelectorTerm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(max = 30), extend("x-kubernetes-validations" = crate::crd::cel::alias())))]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::selector_tags")
    )]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(rules::AMI_ID.source())))]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssm_parameter: Option<String>,
}

/// Kubelet settings Karpenter passes to the node (v1.14.1's typed set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-validations" = crate::crd::cel::kubelet())))]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfiguration {
    #[serde(rename = "clusterDNS", default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 0)))]
    pub max_pods: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 0)))]
    pub pods_per_core: Option<i32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::system_reserved")
    )]
    pub system_reserved: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::kube_reserved")
    )]
    pub kube_reserved: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::eviction_hard")
    )]
    pub eviction_hard: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::eviction_soft")
    )]
    pub eviction_soft: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::eviction_soft_grace_period")
    )]
    pub eviction_soft_grace_period: BTreeMap<String, GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction_max_pod_grace_period: Option<i32>,
    #[serde(
        rename = "imageGCHighThresholdPercent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "kube", schemars(range(min = 0, max = 100)))]
    pub image_gc_high_threshold_percent: Option<i32>,
    #[serde(
        rename = "imageGCLowThresholdPercent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "kube", schemars(range(min = 0, max = 100)))]
    pub image_gc_low_threshold_percent: Option<i32>,
    #[serde(
        rename = "cpuCFSQuota",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_cfs_quota: Option<bool>,
}

/// A block device: the root volume or another EBS volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct BlockDeviceMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-validations" = [{"message": "snapshotID or volumeSize must be defined", "rule": "has(self.snapshotID) || has(self.volumeSize)"}, {"message": "snapshotID must be set when volumeInitializationRate is set", "rule": "!has(self.volumeInitializationRate) || (has(self.snapshotID) && self.snapshotID != '')"}])))]
    pub ebs: Option<BlockDevice>,
    /// The node's ephemeral storage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub root_volume: bool,
}

/// An EBS volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct BlockDevice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_on_termination: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i64>,
    #[serde(rename = "kmsKeyID", default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(
        rename = "snapshotID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 100, max = 300)))]
    pub volume_initialization_rate: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::volume_size")
    )]
    pub volume_size: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<VolumeType>,
}

/// A network interface of the launched instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    #[cfg_attr(feature = "kube", schemars(range(min = 0)))]
    pub network_card_index: i32,
    #[cfg_attr(feature = "kube", schemars(range(min = 0)))]
    pub device_index: i32,
    pub interface_type: InterfaceType,
}

/// Instance metadata service options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MetadataOptions {
    #[serde(default = "enabled", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-default" = "enabled")))]
    pub http_endpoint: Option<EnabledDisabled>,
    #[serde(
        rename = "httpProtocolIPv6",
        default = "disabled",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-default" = "disabled")))]
    pub http_protocol_ipv6: Option<EnabledDisabled>,
    #[serde(default = "hop_limit", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 1, max = 64), extend("x-dovetail-default" = 1)))]
    pub http_put_response_hop_limit: Option<i64>,
    #[serde(default = "tokens_required", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-default" = "required")))]
    pub http_tokens: Option<HttpTokens>,
}

impl Default for MetadataOptions {
    /// Karpenter's CRD default.
    fn default() -> Self {
        Self {
            http_endpoint: enabled(),
            http_protocol_ipv6: disabled(),
            http_put_response_hop_limit: hop_limit(),
            http_tokens: tokens_required(),
        }
    }
}

fn enabled() -> Option<EnabledDisabled> {
    Some(EnabledDisabled::Enabled)
}

fn disabled() -> Option<EnabledDisabled> {
    Some(EnabledDisabled::Disabled)
}

fn hop_limit() -> Option<i64> {
    Some(1)
}

fn tokens_required() -> Option<HttpTokens> {
    Some(HttpTokens::Required)
}

fn default_metadata_options() -> Option<MetadataOptions> {
    Some(MetadataOptions::default())
}

/// Connection tracking timeouts, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConnectionTracking {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 60, max = 432000)))]
    pub tcp_established_timeout: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 60, max = 180)))]
    pub udp_stream_timeout: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 30, max = 60)))]
    pub udp_timeout: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CpuOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested_virtualization: Option<EnabledDisabled>,
}

/// `status`, as the AWS provider's controllers write it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct EC2NodeClassStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<Subnet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<SecurityGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity_reservations: Vec<CapacityReservation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amis: Vec<Ami>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::ec2_node_class_conditions")
    )]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct Subnet {
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    #[serde(default)]
    pub id: String,
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    #[serde(default)]
    pub zone: String,
    #[serde(rename = "zoneID", default, skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct SecurityGroup {
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CapacityReservation {
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    #[serde(default)]
    pub availability_zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), pattern(rules::CAPACITY_RESERVATION_ID.source())))]
    #[serde(default)]
    pub id: String,
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub instance_match_criteria: InstanceMatchCriteria,
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    #[serde(default)]
    pub instance_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interruptible: Option<bool>,
    #[serde(rename = "ownerID", default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), pattern(rules::OWNER_ID.source())))]
    pub owner_id: String,
    #[serde(default = "default_reservation_type")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-default" = "default")))]
    pub reservation_type: CapacityReservationType,
    #[serde(default = "default_reservation_state")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-default" = "active")))]
    pub state: CapacityReservationState,
}

fn default_reservation_type() -> CapacityReservationType {
    CapacityReservationType::Default
}

fn default_reservation_state() -> CapacityReservationState {
    CapacityReservationState::Active
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct Ami {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<bool>,
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which instance types the AMI is for.
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    #[serde(default)]
    pub requirements: Vec<AmiRequirement>,
}

/// A plain node selector requirement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct AmiRequirement {
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    #[serde(default)]
    pub key: String,
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    #[serde(default)]
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-list-type" = "atomic")))]
    pub values: Vec<String>,
}

top_level!(EC2NodeClass, EC2NodeClassSpec);

impl EC2NodeClass {
    /// The AMI family: `amiFamily`, or the alias's.
    pub fn ami_family(&self) -> Option<AmiFamily> {
        if let Some(f) = &self.spec.ami_family {
            return Some(f.clone());
        }
        self.spec
            .ami_selector_terms
            .iter()
            .find_map(|t| t.alias.as_deref())
            .and_then(alias_family)
    }

    /// Every OpenAPI and CEL rule of Karpenter's CRD (v1.14.1), and the
    /// controller's tag and kubelet checks.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = self.type_errors();
        validate_spec(&self.spec, &Path::root("spec"), &mut errors);
        if let Some(status) = &self.status {
            let at = Path::root("status");
            for (i, r) in status.capacity_reservations.iter().enumerate() {
                let at = at.field("capacityReservations").index(i);
                errors.pattern(&at.field("id"), &r.id, &rules::CAPACITY_RESERVATION_ID);
                errors.pattern(&at.field("ownerID"), &r.owner_id, &rules::OWNER_ID);
                r.instance_match_criteria
                    .check(&at.field("instanceMatchCriteria"), &mut errors);
                r.reservation_type
                    .check(&at.field("reservationType"), &mut errors);
                r.state.check(&at.field("state"), &mut errors);
            }
            validate_conditions(
                &status.conditions,
                &at.field("conditions"),
                Reasons::Required,
                &mut errors,
            );
        }
        errors.into_result(KIND, self.name())
    }
}

/// The family an alias names (`al2023@latest` → AL2023).
pub fn alias_family(alias: &str) -> Option<AmiFamily> {
    let family = alias.split('@').next()?;
    Some(match family {
        "al2" => AmiFamily::AL2,
        "al2023" => AmiFamily::AL2023,
        "bottlerocket" => AmiFamily::Bottlerocket,
        "windows2019" => AmiFamily::Windows2019,
        "windows2022" => AmiFamily::Windows2022,
        "windows2025" => AmiFamily::Windows2025,
        _ => return None,
    })
}

fn validate_spec(s: &EC2NodeClassSpec, path: &Path, errors: &mut Errors) {
    validate_subnet_terms(
        &s.subnet_selector_terms,
        &path.field("subnetSelectorTerms"),
        errors,
    );
    validate_security_group_terms(
        &s.security_group_selector_terms,
        &path.field("securityGroupSelectorTerms"),
        errors,
    );
    validate_capacity_reservation_terms(
        &s.capacity_reservation_selector_terms,
        &path.field("capacityReservationSelectorTerms"),
        errors,
    );
    if let Some(pg) = &s.placement_group_selector {
        let at = path.field("placementGroupSelector");
        match (&pg.name, &pg.id) {
            (None, None) => errors.required(&at, "give `name` or `id`"),
            (Some(_), Some(_)) => errors.forbidden(
                &at,
                "`name` and `id` are mutually exclusive",
                "give only one of them",
            ),
            _ => {}
        }
        if pg.name.as_deref() == Some("") {
            errors.required(&at.field("name"), "give the placement group's name");
        }
        if let Some(id) = &pg.id {
            errors.pattern(&at.field("id"), id, &rules::PLACEMENT_GROUP_ID);
        }
    }
    if let Some(n) = s.ip_prefix_count {
        errors.range(&path.field("ipPrefixCount"), i64::from(n), Some(0), None);
    }
    validate_ami(s, path, errors);
    match (&s.role, &s.instance_profile) {
        (Some(_), Some(_)) => errors.forbidden(
            &path.field("instanceProfile"),
            "must specify exactly one of ['role', 'instanceProfile'], not both",
            "keep `role` to let Dovetail manage the instance profile, or `instanceProfile` to use your own",
        ),
        (None, None) => errors.required(
            &path.field("role"),
            "must specify exactly one of ['role', 'instanceProfile']: give the node IAM role's name, or an existing instance profile",
        ),
        _ => {}
    }
    if s.role.as_deref() == Some("") {
        errors.required(&path.field("role"), "give the node IAM role's name");
    }
    if s.instance_profile.as_deref() == Some("") {
        errors.required(
            &path.field("instanceProfile"),
            "give the instance profile's name",
        );
    }
    for k in s.tags.keys() {
        let at = path.field("tags").key(k);
        if k.is_empty() {
            errors.required(&at, "tag keys may not be empty");
        } else if RESTRICTED_TAGS.contains(&k.as_str()) || k.starts_with("kubernetes.io/cluster") {
            errors.forbidden(
                &at,
                format!("tag `{k}` is restricted: Dovetail sets it on every instance"),
                "remove it",
            );
        }
    }
    if let Some(k) = &s.kubelet {
        validate_kubelet(k, &path.field("kubelet"), errors);
    }
    validate_block_devices(
        &s.block_device_mappings,
        &path.field("blockDeviceMappings"),
        errors,
    );
    if let Some(p) = &s.instance_store_policy {
        p.check(&path.field("instanceStorePolicy"), errors);
    }
    validate_network_interfaces(
        &s.network_interfaces,
        &path.field("networkInterfaces"),
        errors,
    );
    if let Some(m) = &s.metadata_options {
        let at = path.field("metadataOptions");
        if let Some(v) = &m.http_endpoint {
            v.check(&at.field("httpEndpoint"), errors);
        }
        if let Some(v) = &m.http_protocol_ipv6 {
            v.check(&at.field("httpProtocolIPv6"), errors);
        }
        if let Some(v) = m.http_put_response_hop_limit {
            errors.range(&at.field("httpPutResponseHopLimit"), v, Some(1), Some(64));
        }
        if let Some(v) = &m.http_tokens {
            v.check(&at.field("httpTokens"), errors);
        }
    }
    if let Some(c) = &s.connection_tracking {
        let at = path.field("connectionTracking");
        if c.tcp_established_timeout.is_none()
            && c.udp_stream_timeout.is_none()
            && c.udp_timeout.is_none()
        {
            errors.required(
                &at,
                "set at least one of tcpEstablishedTimeout, udpStreamTimeout or udpTimeout, or remove connectionTracking",
            );
        }
        for (field, v, lo, hi) in [
            (
                "tcpEstablishedTimeout",
                c.tcp_established_timeout,
                60,
                432_000,
            ),
            ("udpStreamTimeout", c.udp_stream_timeout, 60, 180),
            ("udpTimeout", c.udp_timeout, 30, 60),
        ] {
            if let Some(v) = v {
                errors.range(&at.field(field), i64::from(v), Some(lo), Some(hi));
            }
        }
    }
    if let Some(c) = &s.cpu_options
        && let Some(v) = &c.nested_virtualization
    {
        v.check(
            &path.field("cpuOptions").field("nestedVirtualization"),
            errors,
        );
    }
}

fn validate_tags(tags: &BTreeMap<String, String>, path: &Path, errors: &mut Errors) {
    errors.max_items(path, tags.len(), MAX_SELECTOR_TAGS, "tags");
    for (k, v) in tags {
        if k.is_empty() || v.is_empty() {
            errors.invalid(
                &path.key(k),
                "empty tag keys or values aren't supported",
                "give a key and a value; use `*` as the value to match any",
            );
        }
    }
}

fn term_count(n: usize, path: &Path, min: usize, errors: &mut Errors, what: &str) {
    if n < min {
        errors.required(path, format!("give at least one {what} selector term"));
    }
    errors.max_items(path, n, MAX_SELECTOR_TERMS, "terms");
}

fn validate_subnet_terms(terms: &[SubnetSelectorTerm], path: &Path, errors: &mut Errors) {
    term_count(terms.len(), path, 1, errors, "subnet");
    for (i, t) in terms.iter().enumerate() {
        let at = path.index(i);
        validate_tags(&t.tags, &at.field("tags"), errors);
        if t.tags.is_empty() && t.id.is_none() {
            errors.required(&at, "expected at least one, got none, ['tags', 'id']");
        }
        if let Some(id) = &t.id {
            errors.pattern(&at.field("id"), id, &rules::SUBNET_ID);
        }
    }
    // The CRD's rule is written with all(): it refuses only when every term
    // mixes an ID with tags.
    if !terms.is_empty() && terms.iter().all(|t| t.id.is_some() && !t.tags.is_empty()) {
        errors.forbidden(
            path,
            "'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term",
            "select a subnet by `id` or by `tags`, not both",
        );
    }
}

fn validate_security_group_terms(
    terms: &[SecurityGroupSelectorTerm],
    path: &Path,
    errors: &mut Errors,
) {
    term_count(terms.len(), path, 1, errors, "security group");
    for (i, t) in terms.iter().enumerate() {
        let at = path.index(i);
        validate_tags(&t.tags, &at.field("tags"), errors);
        if t.tags.is_empty() && t.id.is_none() && t.name.is_none() {
            errors.required(
                &at,
                "expected at least one, got none, ['tags', 'id', 'name']",
            );
        }
        if let Some(id) = &t.id {
            errors.pattern(&at.field("id"), id, &rules::SECURITY_GROUP_ID);
        }
    }
    let every =
        |f: &dyn Fn(&SecurityGroupSelectorTerm) -> bool| !terms.is_empty() && terms.iter().all(f);
    if every(&|t| t.id.is_some() && (!t.tags.is_empty() || t.name.is_some())) {
        errors.forbidden(
            path,
            "'id' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
            "select a security group by `id`, `name` or `tags`, one of them",
        );
    }
    if every(&|t| t.name.is_some() && (!t.tags.is_empty() || t.id.is_some())) {
        errors.forbidden(
            path,
            "'name' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
            "select a security group by `id`, `name` or `tags`, one of them",
        );
    }
}

fn validate_capacity_reservation_terms(
    terms: &[CapacityReservationSelectorTerm],
    path: &Path,
    errors: &mut Errors,
) {
    errors.max_items(path, terms.len(), MAX_SELECTOR_TERMS, "terms");
    for (i, t) in terms.iter().enumerate() {
        let at = path.index(i);
        validate_tags(&t.tags, &at.field("tags"), errors);
        if t.tags.is_empty() && t.id.is_none() && t.instance_match_criteria.is_none() {
            errors.required(
                &at,
                "expected at least one, got none, ['tags', 'id', 'instanceMatchCriteria']",
            );
        }
        if let Some(id) = &t.id {
            errors.pattern(&at.field("id"), id, &rules::CAPACITY_RESERVATION_ID);
        }
        if let Some(o) = &t.owner_id {
            errors.pattern(&at.field("ownerID"), o, &rules::OWNER_ID);
        }
        if let Some(c) = &t.instance_match_criteria {
            c.check(&at.field("instanceMatchCriteria"), errors);
        }
    }
    if !terms.is_empty()
        && terms.iter().all(|t| {
            t.id.is_some()
                && (!t.tags.is_empty()
                    || t.owner_id.is_some()
                    || t.instance_match_criteria.is_some())
        })
    {
        errors.forbidden(
            path,
            "'id' is mutually exclusive, cannot be set along with other fields in a capacity reservation selector term",
            "select a reservation by `id` alone, or by the other fields",
        );
    }
}

fn validate_ami(s: &EC2NodeClassSpec, path: &Path, errors: &mut Errors) {
    let terms_path = path.field("amiSelectorTerms");
    let terms = &s.ami_selector_terms;
    term_count(terms.len(), &terms_path, 1, errors, "AMI");
    for (i, t) in terms.iter().enumerate() {
        let at = terms_path.index(i);
        validate_tags(&t.tags, &at.field("tags"), errors);
        let has_tags = !t.tags.is_empty();
        if !has_tags
            && t.id.is_none()
            && t.name.is_none()
            && t.alias.is_none()
            && t.ssm_parameter.is_none()
        {
            errors.required(
                &at,
                "expected at least one, got none, ['tags', 'id', 'name', 'alias', 'ssmParameter']",
            );
        }
        if let Some(id) = &t.id {
            errors.pattern(&at.field("id"), id, &rules::AMI_ID);
            if t.alias.is_some() || has_tags || t.name.is_some() || t.owner.is_some() {
                errors.forbidden(
                    &at.field("id"),
                    "'id' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
                    "select the AMI by `id` alone",
                );
            }
        }
        if let Some(alias) = &t.alias {
            let a = at.field("alias");
            errors.max_len(&a, alias, 30);
            if t.id.is_some() || has_tags || t.name.is_some() || t.owner.is_some() {
                errors.forbidden(
                    &a,
                    "'alias' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
                    "give the alias alone in its term",
                );
            }
            if terms.len() != 1 {
                errors.forbidden(
                    &a,
                    "'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms",
                    "keep only the alias term",
                );
            }
            validate_alias(alias, &a, errors);
        }
    }
    let alias = terms.iter().find_map(|t| t.alias.as_deref());
    match (&s.ami_family, alias.and_then(alias_family)) {
        (None, None) if alias.is_none() => errors.required(
            &path.field("amiFamily"),
            "must specify amiFamily if amiSelectorTerms does not contain an alias: give one of AL2, AL2023, Bottlerocket, Custom, Windows2019, Windows2022, Windows2025",
        ),
        (Some(f), Some(from_alias)) if *f != AmiFamily::Custom && *f != from_alias => errors.forbidden(
            &path.field("amiFamily"),
            format!("if set, amiFamily must be '{from_alias}' or 'Custom' when using an {from_alias} alias"),
            format!("set it to {from_alias} or Custom, or remove it"),
        ),
        _ => {}
    }
    if let Some(f) = &s.ami_family {
        f.check(&path.field("amiFamily"), errors);
    }
}

fn validate_alias(alias: &str, path: &Path, errors: &mut Errors) {
    let Some((family, version)) = alias.split_once('@') else {
        errors.invalid(
            path,
            "'alias' is improperly formatted, must match the format 'family@version'",
            "write it like `al2023@latest`",
        );
        return;
    };
    if family.is_empty() || !family.bytes().all(|b| b.is_ascii_alphanumeric()) || version.is_empty()
    {
        errors.invalid(
            path,
            "'alias' is improperly formatted, must match the format 'family@version'",
            "write it like `al2023@latest`",
        );
        return;
    }
    if !ALIAS_FAMILIES.contains(&family) {
        errors.push(
            path,
            ErrorKind::NotSupported,
            format!("family `{family}` is not supported"),
            format!("use one of {}", ALIAS_FAMILIES.join(", ")),
        );
    } else if family.starts_with("windows") && version != "latest" {
        errors.invalid(
            path,
            "windows families may only specify version 'latest'",
            format!("write `{family}@latest`"),
        );
    }
}

fn validate_kubelet(k: &KubeletConfiguration, path: &Path, errors: &mut Errors) {
    for (field, v) in [("maxPods", k.max_pods), ("podsPerCore", k.pods_per_core)] {
        if let Some(v) = v {
            errors.range(&path.field(field), i64::from(v), Some(0), None);
        }
    }
    for (field, map) in [
        ("systemReserved", &k.system_reserved),
        ("kubeReserved", &k.kube_reserved),
    ] {
        for (key, v) in map {
            let at = path.field(field).key(key);
            if !RESERVED_RESOURCES.contains(&key.as_str()) {
                errors.not_supported(&at, key, RESERVED_RESOURCES);
            }
            if v.starts_with('-') {
                errors.invalid(
                    &at,
                    format!("{field} value cannot be a negative resource quantity"),
                    "give a quantity of 0 or more",
                );
            } else {
                errors.pattern(&at, v, &rules::QUANTITY);
            }
        }
    }
    for (field, map) in [
        ("evictionHard", &k.eviction_hard),
        ("evictionSoft", &k.eviction_soft),
    ] {
        for (key, v) in map {
            let at = path.field(field).key(key);
            if !EVICTION_SIGNALS.contains(&key.as_str()) {
                errors.not_supported(&at, key, EVICTION_SIGNALS);
            }
            errors.pattern(&at, v, &rules::EVICTION_VALUE);
        }
    }
    for (key, d) in &k.eviction_soft_grace_period {
        let at = path.field("evictionSoftGracePeriod").key(key);
        if !EVICTION_SIGNALS.contains(&key.as_str()) {
            errors.not_supported(&at, key, EVICTION_SIGNALS);
        }
        if d.duration().is_none() {
            errors.invalid(
                &at,
                format!("`{d}` is not a duration"),
                "write a duration such as `1m30s`",
            );
        }
    }
    for key in k.eviction_soft.keys() {
        if !k.eviction_soft_grace_period.contains_key(key) {
            errors.required(
                &path.field("evictionSoftGracePeriod").key(key),
                format!("evictionSoft `{key}` has no matching evictionSoftGracePeriod: give how long the signal may last"),
            );
        }
    }
    for key in k.eviction_soft_grace_period.keys() {
        if !k.eviction_soft.contains_key(key) {
            errors.required(
                &path.field("evictionSoft").key(key),
                format!("evictionSoftGracePeriod `{key}` has no matching evictionSoft: give the threshold, or remove the grace period"),
            );
        }
    }
    for (field, v) in [
        (
            "imageGCHighThresholdPercent",
            k.image_gc_high_threshold_percent,
        ),
        (
            "imageGCLowThresholdPercent",
            k.image_gc_low_threshold_percent,
        ),
    ] {
        if let Some(v) = v {
            errors.range(&path.field(field), i64::from(v), Some(0), Some(100));
        }
    }
    if let (Some(high), Some(low)) = (
        k.image_gc_high_threshold_percent,
        k.image_gc_low_threshold_percent,
    ) && high <= low
    {
        errors.invalid(
            &path.field("imageGCHighThresholdPercent"),
            format!("imageGCHighThresholdPercent ({high}) must be greater than imageGCLowThresholdPercent ({low})"),
            "raise the high threshold or lower the low one",
        );
    }
}

fn validate_block_devices(mappings: &[BlockDeviceMapping], path: &Path, errors: &mut Errors) {
    errors.max_items(path, mappings.len(), MAX_BLOCK_DEVICE_MAPPINGS, "mappings");
    let mut root = None;
    for (i, m) in mappings.iter().enumerate() {
        let at = path.index(i);
        if m.root_volume {
            if let Some(first) = root {
                errors.push(
                    &at.field("rootVolume"),
                    ErrorKind::Duplicate,
                    format!(
                        "must have only one blockDeviceMappings with rootVolume; {} has it too",
                        path.index(first)
                    ),
                    "mark one mapping as the root volume",
                );
            } else {
                root = Some(i);
            }
        }
        let Some(ebs) = &m.ebs else { continue };
        let e = at.field("ebs");
        if ebs.snapshot_id.is_none() && ebs.volume_size.is_none() {
            errors.required(
                &e,
                "snapshotID or volumeSize must be defined: give the volume's size, such as `100Gi`",
            );
        }
        if ebs.volume_initialization_rate.is_some()
            && ebs.snapshot_id.as_deref().is_none_or(str::is_empty)
        {
            errors.required(
                &e.field("snapshotID"),
                "snapshotID must be set when volumeInitializationRate is set",
            );
        }
        if let Some(r) = ebs.volume_initialization_rate {
            errors.range(
                &e.field("volumeInitializationRate"),
                i64::from(r),
                Some(100),
                Some(300),
            );
        }
        if let Some(size) = &ebs.volume_size {
            errors.pattern(&e.field("volumeSize"), &size.0, &rules::VOLUME_SIZE);
        }
        if let Some(t) = &ebs.volume_type {
            t.check(&e.field("volumeType"), errors);
        }
    }
}

fn validate_network_interfaces(nics: &[NetworkInterface], path: &Path, errors: &mut Errors) {
    errors.max_items(path, nics.len(), MAX_NETWORK_INTERFACES, "interfaces");
    for (i, n) in nics.iter().enumerate() {
        let at = path.index(i);
        errors.range(
            &at.field("networkCardIndex"),
            i64::from(n.network_card_index),
            Some(0),
            None,
        );
        errors.range(
            &at.field("deviceIndex"),
            i64::from(n.device_index),
            Some(0),
            None,
        );
        n.interface_type.check(&at.field("interfaceType"), errors);
        let same_slot = nics[..i].iter().any(|o| {
            o.network_card_index == n.network_card_index && o.device_index == n.device_index
        });
        let second_efa = n.interface_type == InterfaceType::EfaOnly
            && nics[..i].iter().any(|o| {
                o.network_card_index == n.network_card_index
                    && o.interface_type == InterfaceType::EfaOnly
            });
        if same_slot || second_efa {
            errors.push(
                &at,
                ErrorKind::Duplicate,
                "networkInterfaces must not have duplicate networkCardIndex and deviceIndex pairs, and can have at most one efa device per network card",
                "give each card and device index once, and at most one efa-only interface per card",
            );
        }
    }
    let primary = nics.iter().any(|n| {
        n.network_card_index == 0
            && n.device_index == 0
            && n.interface_type == InterfaceType::Interface
    });
    if !nics.is_empty() && !primary {
        errors.required(
            path,
            "networkInterfaces must include a primary interface with interfaceType='interface': add `{networkCardIndex: 0, deviceIndex: 0, interfaceType: interface}`",
        );
    }
}

/// For the CRD's `evictionSoftGracePeriod` and similar maps.
#[cfg(feature = "kube")]
pub(crate) fn eviction_signal_list() -> String {
    EVICTION_SIGNALS
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",")
}
