//! Launch templates: one per distinct set of launch options, named by a
//! hash of the options so the same options always find the same template
//! and different options never share one.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    ConnectionTrackingSpecificationRequest, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceMetadataProtocolIpv6, LaunchTemplateInstanceMetadataTagsState,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
    LaunchTemplateTagSpecificationRequest, LaunchTemplatesMonitoringRequest,
    RequestLaunchTemplateData, ResourceType, Tag, TagSpecification, VolumeType,
};
use dovetail_api::ec2nodeclass::{
    AmiFamily, EC2NodeClass, EnabledDisabled, HttpTokens, MetadataOptions,
};
use dovetail_core::catalog::CapacityType;
use dovetail_core::resources::{self, GIB};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Every launch template Dovetail makes is named with this prefix (and
/// Karpenter's, so IAM policies written for Karpenter keep matching).
pub const NAME_PREFIX: &str = "karpenter.k8s.aws/";

/// Bumped when the options or their encoding change, so templates made by
/// an older Dovetail are not mistaken for current ones.
const HASH_VERSION: &str = "dovetail-lt-v2";

/// Regions whose metadata service has no IPv6 endpoint setting.
const NO_IPV6_METADATA_REGIONS: [&str; 6] = [
    "us-iso-east-1",
    "us-iso-west-1",
    "us-isob-east-1",
    "us-isob-west-1",
    "us-isof-south-1",
    "us-isof-east-1",
];

/// Everything a launch template holds. Two launches with equal options
/// share a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct LaunchTemplateOptions {
    pub image_id: String,
    /// Base64, as EC2 takes it.
    pub user_data: String,
    pub instance_profile: String,
    /// Sorted, without duplicates.
    pub security_group_ids: Vec<String>,
    pub metadata: Metadata,
    pub block_devices: Vec<BlockDevice>,
    pub detailed_monitoring: bool,
    pub associate_public_ip_address: Option<bool>,
    /// IPv4 prefixes (/28) to assign the primary interface
    /// (`spec.ipPrefixCount`), for the VPC CNI's prefix delegation.
    pub ipv4_prefix_count: Option<i32>,
    /// The primary interface's connection tracking timeouts
    /// (`spec.connectionTracking`).
    pub connection_tracking: Option<ConnectionTimeouts>,
    /// Spot launches also tag their spot request.
    pub spot: bool,
    pub tags: BTreeMap<String, String>,
}

/// Instance metadata service options.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Metadata {
    pub http_endpoint_enabled: bool,
    /// `None` in regions without the setting.
    pub http_protocol_ipv6_enabled: Option<bool>,
    pub http_put_response_hop_limit: i32,
    pub http_tokens_required: bool,
}

/// Connection tracking timeouts, in seconds; unset ones keep EC2's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ConnectionTimeouts {
    pub tcp_established_timeout: Option<i32>,
    pub udp_stream_timeout: Option<i32>,
    pub udp_timeout: Option<i32>,
}

/// One EBS volume.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BlockDevice {
    pub device_name: String,
    pub volume_size_gib: Option<i32>,
    pub volume_type: Option<String>,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub encrypted: Option<bool>,
    pub delete_on_termination: Option<bool>,
    pub kms_key_id: Option<String>,
    pub snapshot_id: Option<String>,
    pub volume_initialization_rate: Option<i32>,
}

impl BlockDevice {
    /// Karpenter's default volume: encrypted gp3.
    fn default_gp3(device_name: &str, gib: i32) -> Self {
        Self {
            device_name: device_name.to_string(),
            volume_size_gib: Some(gib),
            volume_type: Some("gp3".to_string()),
            iops: None,
            throughput: None,
            encrypted: Some(true),
            delete_on_termination: None,
            kms_key_id: None,
            snapshot_id: None,
            volume_initialization_rate: None,
        }
    }
}

/// An EC2NodeClass that cannot make a launch template yet, or at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("EC2NodeClass {0} has no resolved instance profile in its status yet")]
    NoInstanceProfile(String),
    #[error("EC2NodeClass {0} has no resolved security group in its status yet")]
    NoSecurityGroups(String),
    #[error("EC2NodeClass {class}: spec.blockDeviceMappings[{index}]: {problem}")]
    BlockDevice {
        class: String,
        index: usize,
        problem: String,
    },
}

/// The per-launch inputs that are not in the EC2NodeClass.
#[derive(Debug, Clone)]
pub struct LaunchInputs<'a> {
    pub region: &'a str,
    pub family: &'a AmiFamily,
    pub image_id: &'a str,
    /// Base64.
    pub user_data: &'a str,
    pub capacity_type: CapacityType,
    pub tags: &'a BTreeMap<String, String>,
}

impl LaunchTemplateOptions {
    /// The options for launching with `class` (its spec and resolved
    /// status) and `inputs`.
    pub fn new(class: &EC2NodeClass, inputs: &LaunchInputs<'_>) -> Result<Self, TemplateError> {
        let name = class.metadata.name.clone().unwrap_or_default();
        let status = class.status.clone().unwrap_or_default();
        let instance_profile = status
            .instance_profile
            .filter(|p| !p.is_empty())
            .ok_or_else(|| TemplateError::NoInstanceProfile(name.clone()))?;
        let mut security_group_ids: Vec<String> = status
            .security_groups
            .iter()
            .map(|g| g.id.clone())
            .collect();
        security_group_ids.sort();
        security_group_ids.dedup();
        if security_group_ids.is_empty() {
            return Err(TemplateError::NoSecurityGroups(name));
        }
        let spec = &class.spec;
        let block_devices = if spec.block_device_mappings.is_empty() {
            default_block_devices(inputs.family)
        } else {
            spec.block_device_mappings
                .iter()
                .enumerate()
                .map(|(index, m)| {
                    block_device(m).map_err(|problem| TemplateError::BlockDevice {
                        class: name.clone(),
                        index,
                        problem,
                    })
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Self {
            image_id: inputs.image_id.to_string(),
            user_data: inputs.user_data.to_string(),
            instance_profile,
            security_group_ids,
            metadata: metadata(
                &spec.metadata_options.clone().unwrap_or_default(),
                inputs.region,
            ),
            block_devices,
            detailed_monitoring: spec.detailed_monitoring.unwrap_or(false),
            associate_public_ip_address: spec.associate_public_ip_address,
            ipv4_prefix_count: spec.ip_prefix_count,
            connection_tracking: spec
                .connection_tracking
                .as_ref()
                .map(|c| ConnectionTimeouts {
                    tcp_established_timeout: c.tcp_established_timeout,
                    udp_stream_timeout: c.udp_stream_timeout,
                    udp_timeout: c.udp_timeout,
                }),
            spot: inputs.capacity_type == CapacityType::Spot,
            tags: inputs.tags.clone(),
        })
    }

    /// `karpenter.k8s.aws/<hash>`: the same options always give the same
    /// name, in any process and on any machine.
    pub fn name(&self) -> String {
        let json =
            serde_json::to_vec(&(HASH_VERSION, self)).expect("launch template options serialise");
        let digest = Sha256::digest(&json);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        format!("{NAME_PREFIX}{}", u64::from_be_bytes(first))
    }

    /// The template's contents for `CreateLaunchTemplate`.
    pub fn request_data(&self) -> RequestLaunchTemplateData {
        let tags = to_tags(&self.tags);
        let mut tag_resources = vec![ResourceType::NetworkInterface];
        if self.spot {
            tag_resources.push(ResourceType::SpotInstancesRequest);
        }
        let tag_specifications = tag_resources
            .into_iter()
            .map(|r| {
                LaunchTemplateTagSpecificationRequest::builder()
                    .resource_type(r)
                    .set_tags(Some(tags.clone()))
                    .build()
            })
            .collect();
        let m = &self.metadata;
        let metadata = LaunchTemplateInstanceMetadataOptionsRequest::builder()
            .http_endpoint(if m.http_endpoint_enabled {
                LaunchTemplateInstanceMetadataEndpointState::Enabled
            } else {
                LaunchTemplateInstanceMetadataEndpointState::Disabled
            })
            .set_http_protocol_ipv6(m.http_protocol_ipv6_enabled.map(|on| {
                if on {
                    LaunchTemplateInstanceMetadataProtocolIpv6::Enabled
                } else {
                    LaunchTemplateInstanceMetadataProtocolIpv6::Disabled
                }
            }))
            .http_put_response_hop_limit(m.http_put_response_hop_limit)
            .http_tokens(if m.http_tokens_required {
                LaunchTemplateHttpTokensState::Required
            } else {
                LaunchTemplateHttpTokensState::Optional
            })
            .instance_metadata_tags(LaunchTemplateInstanceMetadataTagsState::Disabled)
            .build();
        // Security groups go on the primary interface, as the subnet comes
        // from the fleet's override.
        let interface = LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
            .device_index(0)
            .set_associate_public_ip_address(self.associate_public_ip_address)
            .set_groups(Some(self.security_group_ids.clone()))
            .set_ipv4_prefix_count(self.ipv4_prefix_count)
            .set_connection_tracking_specification(self.connection_tracking.as_ref().map(|c| {
                ConnectionTrackingSpecificationRequest::builder()
                    .set_tcp_established_timeout(c.tcp_established_timeout)
                    .set_udp_stream_timeout(c.udp_stream_timeout)
                    .set_udp_timeout(c.udp_timeout)
                    .build()
            }))
            .build();
        RequestLaunchTemplateData::builder()
            .image_id(&self.image_id)
            .user_data(&self.user_data)
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name(&self.instance_profile)
                    .build(),
            )
            .monitoring(
                LaunchTemplatesMonitoringRequest::builder()
                    .enabled(self.detailed_monitoring)
                    .build(),
            )
            .metadata_options(metadata)
            .set_block_device_mappings(Some(
                self.block_devices
                    .iter()
                    .map(block_device_request)
                    .collect(),
            ))
            .network_interfaces(interface)
            .set_tag_specifications(Some(tag_specifications))
            .build()
    }

    /// The tags of the template itself, which find it again (and clean it
    /// up once its EC2NodeClass is gone).
    pub fn template_tag_specification(&self, name: &str) -> TagSpecification {
        let mut tags = self.tags.clone();
        tags.insert("Name".to_string(), name.to_string());
        TagSpecification::builder()
            .resource_type(ResourceType::LaunchTemplate)
            .set_tags(Some(to_tags(&tags)))
            .build()
    }
}

pub(crate) fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn metadata(m: &MetadataOptions, region: &str) -> Metadata {
    let defaults = MetadataOptions::default();
    let enabled = |v: &Option<EnabledDisabled>, d: &Option<EnabledDisabled>| {
        v.as_ref().or(d.as_ref()) == Some(&EnabledDisabled::Enabled)
    };
    Metadata {
        http_endpoint_enabled: enabled(&m.http_endpoint, &defaults.http_endpoint),
        http_protocol_ipv6_enabled: (!NO_IPV6_METADATA_REGIONS.contains(&region))
            .then(|| enabled(&m.http_protocol_ipv6, &defaults.http_protocol_ipv6)),
        http_put_response_hop_limit: m
            .http_put_response_hop_limit
            .or(defaults.http_put_response_hop_limit)
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(1),
        http_tokens_required: m.http_tokens.as_ref().or(defaults.http_tokens.as_ref())
            != Some(&HttpTokens::Optional),
    }
}

/// Karpenter's volumes for a family when the class names none.
pub fn default_block_devices(family: &AmiFamily) -> Vec<BlockDevice> {
    match family {
        AmiFamily::AL2 | AmiFamily::AL2023 => vec![BlockDevice::default_gp3("/dev/xvda", 20)],
        AmiFamily::Bottlerocket => vec![
            BlockDevice::default_gp3("/dev/xvda", 4),
            BlockDevice::default_gp3("/dev/xvdb", 20),
        ],
        AmiFamily::Windows2019 | AmiFamily::Windows2022 | AmiFamily::Windows2025 => {
            vec![BlockDevice::default_gp3("/dev/sda1", 50)]
        }
        AmiFamily::Custom | AmiFamily::Other(_) => Vec::new(),
    }
}

fn block_device(m: &dovetail_api::ec2nodeclass::BlockDeviceMapping) -> Result<BlockDevice, String> {
    let device_name = m
        .device_name
        .clone()
        .ok_or_else(|| "deviceName is required".to_string())?;
    let ebs = m.ebs.clone().unwrap_or_default();
    let volume_size_gib = match &ebs.volume_size {
        None => None,
        Some(q) => {
            let bytes = resources::parse_units(&q.0)
                .map_err(|e| format!("ebs.volumeSize `{}`: {e}", q.0))?;
            // EC2 takes whole GiB; round up so the volume is never smaller.
            let gib = (bytes + GIB - 1) / GIB;
            Some(i32::try_from(gib).map_err(|_| format!("ebs.volumeSize `{}` is too large", q.0))?)
        }
    };
    let small = |v: Option<i64>, field: &str| -> Result<Option<i32>, String> {
        v.map(|n| i32::try_from(n).map_err(|_| format!("ebs.{field} {n} is out of range")))
            .transpose()
    };
    Ok(BlockDevice {
        device_name,
        volume_size_gib,
        volume_type: ebs.volume_type.map(|t| t.as_str().to_string()),
        iops: small(ebs.iops, "iops")?,
        throughput: small(ebs.throughput, "throughput")?,
        encrypted: ebs.encrypted,
        delete_on_termination: ebs.delete_on_termination,
        kms_key_id: ebs.kms_key_id,
        snapshot_id: ebs.snapshot_id,
        volume_initialization_rate: ebs.volume_initialization_rate,
    })
}

fn block_device_request(d: &BlockDevice) -> LaunchTemplateBlockDeviceMappingRequest {
    let ebs = LaunchTemplateEbsBlockDeviceRequest::builder()
        .set_volume_size(d.volume_size_gib)
        .set_volume_type(d.volume_type.as_deref().map(VolumeType::from))
        .set_iops(d.iops)
        .set_throughput(d.throughput)
        .set_encrypted(d.encrypted)
        .set_delete_on_termination(d.delete_on_termination)
        .set_kms_key_id(d.kms_key_id.clone())
        .set_snapshot_id(d.snapshot_id.clone())
        .set_volume_initialization_rate(d.volume_initialization_rate)
        .build();
    LaunchTemplateBlockDeviceMappingRequest::builder()
        .device_name(&d.device_name)
        .ebs(ebs)
        .build()
}
