//! Conversion to `dovetail-core`: NodePools to the engines' model, and
//! EC2NodeClasses to the capacity settings nodes are sized with.

use std::time::Duration;

use dovetail_api::{ConversionError, EC2NodeClass, NodePool};
use dovetail_core::catalog::{Catalog, CatalogSettings, EvictionThreshold};
use dovetail_core::disruption::budgets::{BudgetNodes, DisruptionReason};
use dovetail_core::model::{ConsolidationPolicy, TaintEffect};
use dovetail_core::requirements::Operator;
use dovetail_core::resources::{GIB, MIB};

fn fixture<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = format!(
        "{}/tests/manifests/valid/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const HOUR: u64 = 3600;

#[test]
fn a_full_node_pool_converts_field_by_field() {
    let pool: NodePool = fixture("nodepool-full.yaml");
    let core = pool.to_core().unwrap();
    assert_eq!(core.name.as_str(), "general");
    assert_eq!(core.weight, 50);
    let label =
        |k: &str| dovetail_core::model::label(&core.labels, dovetail_core::sym::Sym::new(k));
    assert_eq!(label("billing").map(|v| v.as_str()), Some("team-a"));
    assert_eq!(core.annotations.len(), 1);
    assert_eq!(core.requirements.len(), 7);
    let category = &core.requirements[0];
    assert_eq!(
        (category.operator, category.min_values),
        (Operator::In, Some(2))
    );
    assert_eq!(core.requirements[2].operator, Operator::Lte);
    assert_eq!(
        core.taints[0].to_string(),
        "example.com/special=true:NoSchedule"
    );
    assert_eq!(core.startup_taints[0].effect, TaintEffect::NoExecute);
    assert_eq!(core.startup_taints[0].value, None);
    assert_eq!(core.node_class_ref.name, "default");
    assert_eq!(core.expire_after, Some(Duration::from_secs(336 * HOUR)));
    assert_eq!(
        core.termination_grace_period,
        Some(Duration::from_secs(48 * HOUR))
    );
    let limit = |k: &str| {
        core.limits
            .iter()
            .find(|(r, _)| r.as_str() == k)
            .map(|&(_, v)| v)
    };
    assert_eq!(limit("cpu"), Some(1_000_000), "millicores");
    assert_eq!(limit("memory"), Some(1000 * GIB));
    assert_eq!(limit("nvidia.com/gpu"), Some(4));
    let d = &core.disruption;
    assert_eq!(
        d.consolidation_policy,
        ConsolidationPolicy::WhenEmptyOrUnderutilized
    );
    assert_eq!(d.consolidate_after, Some(Duration::from_secs(90)));
    assert_eq!(d.budgets.len(), 3);
    assert_eq!(d.budgets[0].nodes, BudgetNodes::Percent(10));
    assert!(d.budgets[0].window.is_none() && d.budgets[0].reasons.is_empty());
    let office = &d.budgets[1];
    assert_eq!(office.nodes, BudgetNodes::Count(0));
    assert_eq!(
        office.reasons,
        [DisruptionReason::Underutilized, DisruptionReason::Empty]
    );
    let window = office.window.as_ref().unwrap();
    assert_eq!(
        (window.schedule().as_str(), window.duration()),
        ("0 9 * * mon-fri", Duration::from_secs(8 * HOUR))
    );
    assert_eq!(d.budgets[2].reasons, [DisruptionReason::Drifted]);
}

#[test]
fn never_balanced_and_defaults_convert() {
    let gpu: NodePool = fixture("nodepool-gpu.yaml");
    let core = gpu.to_core().unwrap();
    assert_eq!(core.expire_after, None, "Never");
    assert_eq!(
        core.disruption.consolidation_policy,
        ConsolidationPolicy::WhenEmpty
    );
    let budgets: NodePool = fixture("nodepool-budgets.yaml");
    let core = budgets.to_core().unwrap();
    assert_eq!(
        core.disruption.consolidation_policy,
        ConsolidationPolicy::Balanced
    );
    assert_eq!(core.disruption.consolidate_after, Some(Duration::ZERO));
    let defaults: NodePool = fixture("nodepool-defaults.yaml");
    let core = defaults.to_core().unwrap();
    let plain = dovetail_core::model::NodePool::new("default");
    assert_eq!(core.expire_after, plain.expire_after);
    assert_eq!(core.disruption, plain.disruption);
    assert_eq!(core.weight, 0);
}

#[test]
fn invalid_and_unsupported_pools_do_not_convert() {
    let mut pool: NodePool = fixture("nodepool-defaults.yaml");
    pool.spec.weight = Some(0);
    let ConversionError::Invalid(err) = pool.to_core().unwrap_err();
    assert!(err.at("spec.weight").is_some(), "{err}");
    let mut pool: NodePool = fixture("nodepool-defaults.yaml");
    pool.spec.replicas = Some(3);
    let ConversionError::Invalid(err) = pool.to_core().unwrap_err();
    let e = err.at("spec.replicas").unwrap();
    assert!(e.message.contains("not supported"), "{e}");
}

#[test]
fn the_template_hash_follows_the_template_but_not_requirements() {
    let pool: NodePool = fixture("nodepool-full.yaml");
    let hash = pool.template_hash().unwrap();
    let mut relabelled = pool.clone();
    relabelled
        .spec
        .template
        .metadata
        .labels
        .insert("billing".into(), "team-b".into());
    assert_ne!(relabelled.template_hash().unwrap(), hash);
    let mut narrowed = pool.clone();
    narrowed.spec.template.spec.requirements.pop();
    narrowed.spec.weight = Some(1);
    assert_eq!(narrowed.template_hash().unwrap(), hash);
}

#[test]
fn an_ec2_node_class_shapes_node_capacity() {
    let class: EC2NodeClass = fixture("ec2nodeclass-full.yaml");
    let s = class.catalog_settings(&CatalogSettings::default()).unwrap();
    assert_eq!(s.max_pods, Some(58));
    assert_eq!(s.pods_per_core, None, "Bottlerocket ignores podsPerCore");
    assert!(
        !s.eni_limited_memory_overhead,
        "Bottlerocket sizes kube-reserved from its pods"
    );
    assert_eq!(s.kube_reserved.cpu, Some(200));
    assert_eq!(s.kube_reserved.memory, Some(512 * MIB));
    assert_eq!(s.kube_reserved.ephemeral_storage, Some(3 * GIB));
    assert_eq!(
        (s.system_reserved.cpu, s.system_reserved.memory),
        (100, 100 * MIB)
    );
    assert_eq!(s.eviction_memory, EvictionThreshold::Percent(5.0));
    assert_eq!(s.eviction_nodefs, EvictionThreshold::Percent(10.0));
    assert_eq!(s.ephemeral_storage, 100 * GIB, "the root volume");

    // The catalog built with them: m5.large's 8 GiB less 7.5 % VM overhead.
    let catalog = Catalog::aws_us_east_1_with(&s);
    let m5 = catalog.get("m5.large").unwrap();
    assert_eq!(m5.capacity.pods, 58);
    assert_eq!(m5.capacity.ephemeral, 100 * GIB);
    assert_eq!(m5.overhead.kube_reserved.cpu, 200);
    assert_eq!(m5.overhead.eviction_threshold.ephemeral, 10 * GIB);
    let five_percent = (m5.capacity.memory as f64 * 0.05).ceil() as i64;
    assert_eq!(m5.overhead.eviction_threshold.memory, five_percent);
}

#[test]
fn an_alias_class_keeps_karpenters_defaults() {
    let class: EC2NodeClass = fixture("ec2nodeclass-alias.yaml");
    let s = class.catalog_settings(&CatalogSettings::default()).unwrap();
    assert_eq!(
        s,
        CatalogSettings::default(),
        "al2023@latest with nothing set"
    );

    let mut windows = class.clone();
    windows.spec.ami_selector_terms[0].alias = Some("windows2022@latest".into());
    let s = windows
        .catalog_settings(&CatalogSettings::default())
        .unwrap();
    assert_eq!(s.max_pods, Some(110), "no ENI-limited density on Windows");
    assert_eq!(s.ephemeral_storage, 50 * GIB, "/dev/sda1");
}

#[test]
fn block_devices_give_the_ephemeral_storage_like_karpenter() {
    let mut class: EC2NodeClass = fixture("ec2nodeclass-alias.yaml");
    let device =
        |name: &str, size: &str, root: bool| dovetail_api::ec2nodeclass::BlockDeviceMapping {
            device_name: Some(name.into()),
            ebs: Some(dovetail_api::ec2nodeclass::BlockDevice {
                volume_size: Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
                    size.into(),
                )),
                ..Default::default()
            }),
            root_volume: root,
        };
    let storage = |c: &EC2NodeClass| {
        c.catalog_settings(&CatalogSettings::default())
            .unwrap()
            .ephemeral_storage
    };
    // Without a root volume the family's device (/dev/xvda for AL2023) counts.
    class.spec.block_device_mappings = vec![
        device("/dev/xvdb", "50Gi", false),
        device("/dev/xvda", "80Gi", false),
    ];
    assert_eq!(storage(&class), 80 * GIB);
    class.spec.block_device_mappings[0].root_volume = true;
    assert_eq!(storage(&class), 50 * GIB);
    class.spec.block_device_mappings = vec![device("/dev/xvdb", "1Ti", false)];
    assert_eq!(
        storage(&class),
        20 * GIB,
        "the family default when its device is not listed"
    );
    class.spec.ami_family = Some(dovetail_api::ec2nodeclass::AmiFamily::Custom);
    assert_eq!(storage(&class), 1024 * GIB, "Custom: the last mapping");
}

#[test]
fn raid0_instance_storage_is_refused_by_name() {
    let mut class: EC2NodeClass = fixture("ec2nodeclass-alias.yaml");
    class.spec.instance_store_policy = Some(dovetail_api::ec2nodeclass::InstanceStorePolicy::RAID0);
    let ConversionError::Invalid(err) = class
        .catalog_settings(&CatalogSettings::default())
        .unwrap_err();
    assert!(err.at("spec.instanceStorePolicy").is_some(), "{err}");
}

#[test]
fn a_launched_node_claim_converts_with_its_status() {
    use dovetail_api::NodeClaim;
    use dovetail_core::nodeclaim::{ConditionStatus, ConditionType};
    use dovetail_core::sym::Sym;

    let claim: NodeClaim = fixture("nodeclaim-status.yaml");
    let c = claim.to_core().unwrap();
    assert_eq!(c.name.as_str(), "default-x7k2p");
    assert_eq!(c.node_pool, Some(Sym::new("default")));
    assert_eq!(c.node_pool_hash, Some(6_821_555_240_594_823_858));
    assert_eq!(c.requirements.len(), 3);
    assert_eq!(c.requirements[1].values.len(), 3);
    assert_eq!((c.requests.cpu, c.requests.memory), (1150, 2 * GIB));
    assert_eq!(c.startup_taints.len(), 1);
    assert_eq!(c.startup_taints[0].effect, TaintEffect::NoExecute);
    assert_eq!(c.expire_after, Some(Duration::from_secs(720 * HOUR)));
    assert_eq!(
        c.termination_grace_period,
        Some(Duration::from_secs(24 * HOUR))
    );
    assert_eq!(c.node_class_ref.name, "default");
    let s = &c.status;
    assert_eq!(
        s.provider_id.as_deref(),
        Some("aws:///us-east-1a/i-0abc123def4567890")
    );
    assert_eq!(s.node_name, Some(Sym::new("ip-10-0-1-23.ec2.internal")));
    assert_eq!(s.allocatable.cpu, 1930);
    assert_eq!(s.capacity.memory, 7577 * MIB);
    assert!(c.launched() && c.registered() && !c.initialized());
    let registered = c.condition(ConditionType::Registered).unwrap();
    assert_eq!(registered.last_transition_ms, 1_704_067_240_000);
    assert_eq!(
        c.condition(ConditionType::Initialized).unwrap().status,
        ConditionStatus::Unknown
    );
    // Launched, not yet a NodeClaim being deleted, finalizer not written.
    assert_eq!(c.deletion_ms, None);
    assert!(!c.finalizer);

    let mut bad = claim.clone();
    bad.spec.expire_after = dovetail_api::NillableDuration::new("soon");
    let ConversionError::Invalid(e) = bad.to_core().unwrap_err();
    assert_eq!(e.errors[0].path, "spec.expireAfter");
}
