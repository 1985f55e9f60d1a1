//! Which launch template each instance type of a launch uses.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use dovetail_api::ec2nodeclass::EC2NodeClass;
use dovetail_aws::launch::fleet;
use dovetail_aws::launch::options::{Claim, Cluster, OptionsError, ami_for, option_sets};
use dovetail_aws::launch::tags::TagError;
use dovetail_core::catalog::{CapacityType, InstanceType, aws_catalog};
use dovetail_core::model::{Taint, TaintEffect};
use dovetail_core::scheduler::OfferingRef;
use dovetail_core::sym::Sym;

fn class() -> EC2NodeClass {
    let mut c: EC2NodeClass =
        serde_norway::from_str(&support::fixture("ec2nodeclass.yaml")).unwrap();
    c.status.as_mut().unwrap().amis = serde_norway::from_str(
        r#"
- id: ami-amd64-standard
  requirements:
    - {key: kubernetes.io/arch, operator: In, values: [amd64]}
    - {key: karpenter.k8s.aws/instance-gpu-count, operator: DoesNotExist}
    - {key: karpenter.k8s.aws/instance-accelerator-count, operator: DoesNotExist}
- id: ami-arm64-standard
  requirements:
    - {key: kubernetes.io/arch, operator: In, values: [arm64]}
    - {key: karpenter.k8s.aws/instance-gpu-count, operator: DoesNotExist}
    - {key: karpenter.k8s.aws/instance-accelerator-count, operator: DoesNotExist}
- id: ami-amd64-nvidia
  requirements:
    - {key: kubernetes.io/arch, operator: In, values: [amd64]}
    - {key: karpenter.k8s.aws/instance-gpu-count, operator: Exists}
- id: ami-unreadable
  requirements:
    - {key: kubernetes.io/arch, operator: Sometimes, values: [amd64]}
"#,
    )
    .unwrap();
    c
}

fn cluster() -> Cluster {
    Cluster {
        name: "demo".into(),
        endpoint: "https://example.eks.amazonaws.com".into(),
        ca_bundle: Some("Y2E=".into()),
        service_cidr: Some("10.100.0.0/16".into()),
        dns_ip: Some("10.100.0.10".into()),
    }
}

fn types(names: &[&str]) -> Vec<InstanceType> {
    let catalog = aws_catalog();
    names
        .iter()
        .map(|n| catalog.get(n).unwrap().clone())
        .collect()
}

const TAINTS: &[Taint] = &[];

fn claim() -> Claim<'static> {
    Claim {
        node_pool: "general",
        labels: &[],
        taints: TAINTS,
        startup_taints: TAINTS,
        capacity_type: CapacityType::OnDemand,
    }
}

#[test]
fn amis_are_picked_by_their_requirements() {
    let c = class();
    let amis = &c.status.as_ref().unwrap().amis;
    let pick = |t: &str| ami_for(amis, aws_catalog().get(t).unwrap()).map(|a| a.id.as_str());
    assert_eq!(pick("m5.large"), Some("ami-amd64-standard"));
    assert_eq!(pick("m7g.xlarge"), Some("ami-arm64-standard"));
    assert_eq!(pick("g5.xlarge"), Some("ami-amd64-nvidia"));
    // A Neuron type has no AMI here: the standard ones exclude it, and the
    // one with an unreadable operator is never picked.
    assert_eq!(pick("inf2.xlarge"), None);
}

#[test]
fn types_that_agree_on_ami_and_user_data_share_a_template() {
    let its = types(&[
        "m5.large",
        "c5.large",
        "m5.xlarge",
        "m7g.xlarge",
        "g5.xlarge",
        "inf2.xlarge",
    ]);
    let refs: Vec<_> = its.iter().map(|it| (it, it.own_sizing())).collect();
    let sets = option_sets(&class(), &cluster(), "us-east-1", claim(), &refs).unwrap();
    let t = |n: &str| sets.by_type[&Sym::new(n)].clone();
    // m5.large and c5.large: same AMI, 29 pods and the same reserved.
    assert_eq!(t("m5.large"), t("c5.large"));
    assert_ne!(t("m5.large").name, t("m5.xlarge").name);
    assert_eq!(t("m7g.xlarge").image_id, "ami-arm64-standard");
    assert_eq!(t("g5.xlarge").image_id, "ami-amd64-nvidia");
    assert_eq!(sets.templates.len(), 4);
    assert_eq!(sets.without_ami, [Sym::new("inf2.xlarge")]);
    // Each template's user data carries its types' pod capacity.
    let user_data = |n: &str| {
        let o = &sets.templates[&t(n).name];
        String::from_utf8(BASE64.decode(&o.user_data).unwrap()).unwrap()
    };
    assert!(user_data("m5.large").contains("maxPods: 29"));
    assert!(user_data("m5.xlarge").contains("maxPods: 58"));
    let o = &sets.templates[&t("m5.large").name];
    assert_eq!(o.tags["karpenter.sh/nodepool"], "general");
    assert_eq!(o.image_id, "ami-amd64-standard");

    // The plan's overrides follow the templates.
    let launch: Vec<OfferingRef> = ["m5.large", "c5.large", "m7g.xlarge", "inf2.xlarge"]
        .iter()
        .map(|n| OfferingRef {
            instance_type: Sym::new(n),
            zone: Sym::new("us-east-1a"),
            capacity_type: CapacityType::OnDemand,
            price: 0.1,
        })
        .collect();
    let subnets = [("us-east-1a".to_string(), "subnet-0aa".to_string())].into();
    let plan = fleet::plan(&launch, &subnets, |ty| sets.by_type.get(&ty).cloned()).unwrap();
    assert_eq!(plan.configs.len(), 2);
    assert_eq!(plan.configs[&t("m5.large").name].len(), 2);
    assert!(!plan.instance_types().contains(&Sym::new("inf2.xlarge")));
}

#[test]
fn claim_taints_and_labels_reach_the_user_data() {
    let taints = [Taint::new(
        "example.com/gpu",
        "true",
        TaintEffect::NoSchedule,
    )];
    let labels = [(Sym::new("team"), Sym::new("ml"))];
    let its = types(&["m5.large"]);
    let claim = Claim {
        labels: &labels,
        taints: &taints,
        capacity_type: CapacityType::Spot,
        ..claim()
    };
    let sets = option_sets(
        &class(),
        &cluster(),
        "us-east-1",
        claim,
        &[(&its[0], its[0].own_sizing())],
    )
    .unwrap();
    let o = sets.templates.values().next().unwrap();
    assert!(o.spot);
    let text = String::from_utf8(BASE64.decode(&o.user_data).unwrap()).unwrap();
    assert!(text.contains("key: example.com/gpu"), "{text}");
    assert!(text.contains("karpenter.sh/capacity-type=spot,"), "{text}");
    assert!(text.contains("team=ml"), "{text}");
}

#[test]
fn classes_that_cannot_launch_say_why() {
    let its = types(&["m5.large"]);
    let mut no_family = class();
    no_family.spec.ami_selector_terms = serde_norway::from_str("[{id: ami-0123}]").unwrap();
    assert_eq!(
        option_sets(
            &no_family,
            &cluster(),
            "us-east-1",
            claim(),
            &[(&its[0], its[0].own_sizing())]
        )
        .unwrap_err(),
        OptionsError::NoAmiFamily("default".into())
    );
    let mut restricted = class();
    restricted
        .spec
        .tags
        .insert("karpenter.sh/nodepool".into(), "x".into());
    assert_eq!(
        option_sets(
            &restricted,
            &cluster(),
            "us-east-1",
            claim(),
            &[(&its[0], its[0].own_sizing())]
        )
        .unwrap_err(),
        OptionsError::Tags(TagError::Restricted("karpenter.sh/nodepool".into()))
    );
    let mut no_cidr = cluster();
    no_cidr.service_cidr = None;
    assert!(matches!(
        option_sets(
            &class(),
            &no_cidr,
            "us-east-1",
            claim(),
            &[(&its[0], its[0].own_sizing())]
        ),
        Err(OptionsError::UserData(_))
    ));
}
