//! The AWS test server harness, spoken to over raw HTTP as an AWS SDK does:
//! EC2's query protocol (form-encoded POST, `Action`, `Version=2016-11-15`,
//! XML answers) and SQS's JSON protocol. moto checks no signature, but routes
//! by the credential scope in `Authorization`, as AWS does.

use std::collections::BTreeSet;
use std::time::Duration;

use dovetail_moto::{CapacityFault, CapacityType, Faults, Moto, Throttle};

const EC2_VERSION: &str = "2016-11-15";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

const REGION: &str = "us-east-1";

fn authorization(service: &str, region: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/{region}/{service}/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=0"
    )
}

struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn doc(&self) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(&self.body)
            .unwrap_or_else(|e| panic!("not XML ({e}): {}", self.body))
    }

    fn ok(self) -> Self {
        assert_eq!(self.status, 200, "{}", self.body);
        self
    }
}

/// A POST signed (in form only) for `service` in `region`.
fn post(
    url: &str,
    (service, region): (&str, &str),
    content_type: &str,
    extra: Option<(&str, &str)>,
    body: &str,
) -> Answer {
    let mut request = agent()
        .post(url)
        .header("Content-Type", content_type)
        .header("Authorization", authorization(service, region))
        .header("X-Amz-Date", "20260101T000000Z");
    if let Some((name, value)) = extra {
        request = request.header(name, value);
    }
    let mut response = request
        .send(body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    Answer {
        status: response.status().as_u16(),
        body: response.body_mut().read_to_string().expect("body"),
    }
}

/// One EC2 call: `params` after `Action` and `Version`.
fn ec2(moto: &Moto, action: &str, params: &[(&str, &str)]) -> Answer {
    let mut form = vec![("Action", action), ("Version", EC2_VERSION)];
    form.extend_from_slice(params);
    let body = serde_urlencoded::to_string(&form).expect("form encodes");
    post(
        moto.endpoint(),
        ("ec2", REGION),
        "application/x-www-form-urlencoded; charset=utf-8",
        None,
        &body,
    )
}

fn sqs(moto: &Moto, action: &str, body: serde_json::Value) -> serde_json::Value {
    let answer = post(
        moto.endpoint(),
        ("sqs", REGION),
        "application/x-amz-json-1.0",
        Some(("X-Amz-Target", &format!("AmazonSQS.{action}"))),
        &body.to_string(),
    )
    .ok();
    serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("{action}: not JSON ({e}): {}", answer.body))
}

fn element<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.descendants().find(|n| n.has_tag_name(name))
}

fn text(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    element(node, name)
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_owned()
}

/// The `item` children of the first `set` element.
fn items<'a, 'i>(node: roxmltree::Node<'a, 'i>, set: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    element(node, set)
        .map(|s| s.children().filter(|c| c.has_tag_name("item")).collect())
        .unwrap_or_default()
}

fn error_code(answer: &Answer) -> String {
    text(answer.doc().root(), "Code")
}

/// An Amazon Linux 2023 AMI moto ships.
fn an_ami(moto: &Moto) -> String {
    let answer = ec2(
        moto,
        "DescribeImages",
        &[
            ("Owner.1", "amazon"),
            ("Filter.1.Name", "name"),
            ("Filter.1.Value.1", "al2023-ami-2023*-x86_64"),
        ],
    )
    .ok();
    let id = text(answer.doc().root(), "imageId");
    assert!(
        id.starts_with("ami-"),
        "no AL2023 AMI in moto: {}",
        answer.body
    );
    id
}

/// The default VPC's subnet in `zone`.
fn subnet_in(moto: &Moto, zone: &str) -> String {
    let answer = ec2(
        moto,
        "DescribeSubnets",
        &[
            ("Filter.1.Name", "availability-zone"),
            ("Filter.1.Value.1", zone),
        ],
    )
    .ok();
    let id = text(answer.doc().root(), "subnetId");
    assert!(
        id.starts_with("subnet-"),
        "no subnet in {zone}: {}",
        answer.body
    );
    id
}

fn launch_template(moto: &Moto, name: &str) -> String {
    let ami = an_ami(moto);
    let answer = ec2(
        moto,
        "CreateLaunchTemplate",
        &[
            ("LaunchTemplateName", name),
            ("LaunchTemplateData.ImageId", &ami),
        ],
    )
    .ok();
    text(answer.doc().root(), "launchTemplateId")
}

/// An instant fleet of one instance over `overrides` of (type, zone), in that
/// order, as Karpenter sends it: one subnet per zone.
fn create_fleet(
    moto: &Moto,
    template: &str,
    capacity_type: &str,
    overrides: &[(&str, &str)],
) -> Answer {
    let mut params: Vec<(String, String)> = vec![
        ("Type".into(), "instant".into()),
        (
            "TargetCapacitySpecification.TotalTargetCapacity".into(),
            "1".into(),
        ),
        (
            "TargetCapacitySpecification.DefaultTargetCapacityType".into(),
            capacity_type.into(),
        ),
        (
            "LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId".into(),
            template.into(),
        ),
        (
            "LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version".into(),
            "$Latest".into(),
        ),
    ];
    for (i, (instance_type, zone)) in overrides.iter().enumerate() {
        let prefix = format!("LaunchTemplateConfigs.1.Overrides.{}", i + 1);
        params.push((format!("{prefix}.InstanceType"), (*instance_type).into()));
        params.push((format!("{prefix}.SubnetId"), subnet_in(moto, zone)));
        params.push((format!("{prefix}.AvailabilityZone"), (*zone).into()));
    }
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    ec2(moto, "CreateFleet", &params)
}

#[derive(Debug, PartialEq)]
struct FleetError {
    code: String,
    instance_type: String,
    zone: String,
    lifecycle: String,
}

#[derive(Debug, PartialEq)]
struct Launched {
    instance_type: String,
    zone: String,
    ids: Vec<String>,
}

fn fleet_outcome(answer: &Answer) -> (Vec<FleetError>, Vec<Launched>) {
    let doc = answer.doc();
    let errors = items(doc.root(), "errorSet")
        .into_iter()
        .map(|item| FleetError {
            code: text(item, "errorCode"),
            instance_type: text(item, "instanceType"),
            zone: text(item, "availabilityZone"),
            lifecycle: text(item, "lifecycle"),
        })
        .collect();
    let launched = items(doc.root(), "fleetInstanceSet")
        .into_iter()
        .map(|item| Launched {
            instance_type: text(item, "instanceType"),
            zone: text(item, "availabilityZone"),
            ids: items(item, "instanceIds")
                .into_iter()
                .filter_map(|i| i.text().map(str::to_owned))
                .collect(),
        })
        .collect();
    (errors, launched)
}

/// (type, zone, state) of an instance, from DescribeInstances.
fn describe_instance(moto: &Moto, id: &str) -> (String, String, String) {
    let answer = ec2(moto, "DescribeInstances", &[("InstanceId.1", id)]).ok();
    let doc = answer.doc();
    let instance = element(doc.root(), "instancesSet")
        .and_then(|s| s.children().find(|c| c.has_tag_name("item")))
        .unwrap_or_else(|| panic!("{id} not found: {}", answer.body));
    (
        text(instance, "instanceType"),
        text(instance, "availabilityZone"),
        text(element(instance, "instanceState").expect("state"), "name"),
    )
}

fn instances_in(moto: &Moto, instance_type: &str, zone: &str) -> usize {
    let answer = ec2(
        moto,
        "DescribeInstances",
        &[
            ("Filter.1.Name", "instance-type"),
            ("Filter.1.Value.1", instance_type),
            ("Filter.2.Name", "availability-zone"),
            ("Filter.2.Value.1", zone),
        ],
    )
    .ok();
    answer
        .doc()
        .descendants()
        .filter(|n| n.has_tag_name("instanceId"))
        .count()
}

#[test]
fn run_instances_then_describe_them_by_tag() {
    let moto = Moto::start();
    let ami = an_ami(&moto);
    let run = ec2(
        &moto,
        "RunInstances",
        &[
            ("ImageId", &ami),
            ("InstanceType", "m5.large"),
            ("MinCount", "2"),
            ("MaxCount", "2"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "karpenter.sh/nodepool"),
            ("TagSpecification.1.Tag.1.Value", "default"),
        ],
    )
    .ok();
    let launched: BTreeSet<String> = run
        .doc()
        .descendants()
        .filter(|n| n.has_tag_name("instanceId"))
        .filter_map(|n| n.text().map(str::to_owned))
        .collect();
    assert_eq!(launched.len(), 2, "{}", run.body);

    let described = ec2(
        &moto,
        "DescribeInstances",
        &[
            ("Filter.1.Name", "tag:karpenter.sh/nodepool"),
            ("Filter.1.Value.1", "default"),
        ],
    )
    .ok();
    let found: BTreeSet<String> = described
        .doc()
        .descendants()
        .filter(|n| n.has_tag_name("instanceId"))
        .filter_map(|n| n.text().map(str::to_owned))
        .collect();
    assert_eq!(found, launched);
    for id in &launched {
        let (instance_type, _, state) = describe_instance(&moto, id);
        assert_eq!(
            (instance_type.as_str(), state.as_str()),
            ("m5.large", "running")
        );
    }
    assert_eq!(moto.calls().of("ec2", "RunInstances"), 1);
}

#[test]
fn create_fleet_falls_through_an_insufficient_offering_to_the_next() {
    let moto = Moto::start_with(
        &Faults::none().capacity(CapacityFault::insufficient("m5.large", "us-east-1a")),
    );
    let template = launch_template(&moto, "fall-through");
    let overrides = [("m5.large", "us-east-1a"), ("c5.large", "us-east-1b")];

    let answer = create_fleet(&moto, &template, "on-demand", &overrides).ok();
    let (errors, launched) = fleet_outcome(&answer);
    assert_eq!(
        errors,
        vec![FleetError {
            code: "InsufficientInstanceCapacity".into(),
            instance_type: "m5.large".into(),
            zone: "us-east-1a".into(),
            lifecycle: "on-demand".into(),
        }],
        "{}",
        answer.body
    );
    let message = text(answer.doc().root(), "errorMessage");
    assert!(
        message.contains("We currently do not have sufficient m5.large capacity in the Availability Zone you requested (us-east-1a)"),
        "{message}"
    );
    assert_eq!(launched.len(), 1, "{}", answer.body);
    assert_eq!(
        (
            launched[0].instance_type.as_str(),
            launched[0].zone.as_str()
        ),
        ("c5.large", "us-east-1b")
    );
    let (instance_type, zone, state) = describe_instance(&moto, &launched[0].ids[0]);
    assert_eq!(
        (instance_type.as_str(), zone.as_str(), state.as_str()),
        ("c5.large", "us-east-1b", "running")
    );
    assert_eq!(
        instances_in(&moto, "m5.large", "us-east-1a"),
        0,
        "the failed offering launched nothing"
    );

    // Capacity back: moto's own choice, the first override, with no errors.
    moto.clear_faults();
    let answer = create_fleet(&moto, &template, "on-demand", &overrides).ok();
    let (errors, launched) = fleet_outcome(&answer);
    assert!(errors.is_empty(), "{}", answer.body);
    assert_eq!(
        (
            launched[0].instance_type.as_str(),
            launched[0].zone.as_str()
        ),
        ("m5.large", "us-east-1a")
    );
    assert_eq!(instances_in(&moto, "m5.large", "us-east-1a"), 1);

    let calls = moto.calls();
    assert_eq!(calls.of("ec2", "CreateFleet"), 2);
    assert_eq!(
        calls.capacity_errors.get("InsufficientInstanceCapacity"),
        Some(&1)
    );
}

#[test]
fn capacity_faults_apply_to_their_capacity_type_and_can_leave_nothing_to_launch() {
    let moto = Moto::start();
    moto.set_faults(
        &Faults::none()
            .capacity(
                CapacityFault::unfulfillable("m6g.large", "us-east-1c").only(CapacityType::Spot),
            )
            .capacity(
                CapacityFault::insufficient("m6g.xlarge", "us-east-1c").only(CapacityType::Spot),
            ),
    );
    let template = launch_template(&moto, "spot-only");
    let overrides = [("m6g.large", "us-east-1c"), ("m6g.xlarge", "us-east-1c")];

    // On-demand is unaffected.
    let (errors, launched) =
        fleet_outcome(&create_fleet(&moto, &template, "on-demand", &overrides).ok());
    assert!(errors.is_empty());
    assert_eq!(launched[0].instance_type, "m6g.large");

    // Spot: every override fails, each reported with its own code; nothing launches.
    let answer = create_fleet(&moto, &template, "spot", &overrides).ok();
    let (errors, launched) = fleet_outcome(&answer);
    let reported: Vec<(&str, &str, &str)> = errors
        .iter()
        .map(|e| {
            (
                e.code.as_str(),
                e.instance_type.as_str(),
                e.lifecycle.as_str(),
            )
        })
        .collect();
    assert_eq!(
        reported,
        vec![
            ("UnfulfillableCapacity", "m6g.large", "spot"),
            ("InsufficientInstanceCapacity", "m6g.xlarge", "spot"),
        ],
        "{}",
        answer.body
    );
    assert!(launched.is_empty(), "{}", answer.body);
    assert_eq!(instances_in(&moto, "m6g.xlarge", "us-east-1c"), 0);
    assert_eq!(
        instances_in(&moto, "m6g.large", "us-east-1c"),
        1,
        "only the on-demand one"
    );
}

#[test]
fn throttling_answers_request_limit_exceeded_for_the_configured_share_deterministically() {
    let moto = Moto::start();
    let throttle = Throttle::share(0.3, 42).only(&["DescribeAvailabilityZones"]);
    let run = |moto: &Moto| -> Vec<bool> {
        (0..200)
            .map(|_| {
                let answer = ec2(moto, "DescribeAvailabilityZones", &[]);
                match answer.status {
                    200 => false,
                    503 => {
                        assert_eq!(
                            error_code(&answer),
                            "RequestLimitExceeded",
                            "{}",
                            answer.body
                        );
                        true
                    }
                    other => panic!("HTTP {other}: {}", answer.body),
                }
            })
            .collect()
    };

    moto.set_faults(&Faults::none().throttle(throttle.clone()));
    let first = run(&moto);
    let throttled = first.iter().filter(|t| **t).count();
    assert!(
        (40..=80).contains(&throttled),
        "{throttled} of 200 throttled at a 0.3 share"
    );

    // Other actions pass untouched.
    for _ in 0..20 {
        ec2(&moto, "DescribeRegions", &[]).ok();
    }
    let calls = moto.calls();
    assert_eq!(calls.of("ec2", "DescribeAvailabilityZones"), 200);
    assert_eq!(
        calls.throttled_of("ec2", "DescribeAvailabilityZones"),
        throttled as u64
    );
    assert_eq!(calls.throttled_of("ec2", "DescribeRegions"), 0);

    // The same seed throttles the same calls again.
    moto.set_faults(&Faults::none().throttle(throttle));
    assert_eq!(run(&moto), first);

    moto.clear_faults();
    assert!(!run(&moto).contains(&true), "no throttling once cleared");
}

#[test]
fn sqs_messages_go_through_a_queue() {
    let moto = Moto::start();
    let queue = sqs(
        &moto,
        "CreateQueue",
        serde_json::json!({"QueueName": "interruptions"}),
    );
    let url = queue["QueueUrl"].as_str().expect("QueueUrl").to_owned();
    let event = r#"{"source":"aws.ec2","detail-type":"EC2 Spot Instance Interruption Warning"}"#;
    sqs(
        &moto,
        "SendMessage",
        serde_json::json!({"QueueUrl": url, "MessageBody": event}),
    );

    let received = sqs(
        &moto,
        "ReceiveMessage",
        serde_json::json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}),
    );
    let messages = received["Messages"].as_array().expect("Messages");
    assert_eq!(messages.len(), 1, "{received}");
    assert_eq!(messages[0]["Body"], event);
    let receipt = messages[0]["ReceiptHandle"]
        .as_str()
        .expect("ReceiptHandle");
    sqs(
        &moto,
        "DeleteMessage",
        serde_json::json!({"QueueUrl": url, "ReceiptHandle": receipt}),
    );

    let empty = sqs(
        &moto,
        "ReceiveMessage",
        serde_json::json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}),
    );
    assert!(
        empty["Messages"].as_array().is_none_or(Vec::is_empty),
        "{empty}"
    );
    assert_eq!(moto.calls().of("sqs", "ReceiveMessage"), 2);
}

fn ssm(moto: &Moto, action: &str, body: serde_json::Value) -> Answer {
    ssm_in(moto, REGION, action, body)
}

fn ssm_in(moto: &Moto, region: &str, action: &str, body: serde_json::Value) -> Answer {
    post(
        moto.endpoint(),
        ("ssm", region),
        "application/x-amz-json-1.1",
        Some(("X-Amz-Target", &format!("AmazonSSM.{action}"))),
        &body.to_string(),
    )
}

#[test]
fn ssm_public_parameters_moto_lacks_can_be_added() {
    let moto = Moto::start();
    let alias = "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id";
    let get = || ssm(&moto, "GetParameter", serde_json::json!({"Name": alias}));
    let missing = get();
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert!(
        missing.body.contains("ParameterNotFound"),
        "{}",
        missing.body
    );
    // The API refuses the reserved path, as AWS does: hence the control endpoint.
    let refused = ssm(
        &moto,
        "PutParameter",
        serde_json::json!({"Name": alias, "Value": "ami-1", "Type": "String"}),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);

    let ami = an_ami(&moto);
    moto.add_public_parameters(REGION, &[(alias, &ami)]);
    let found = get().ok();
    let found: serde_json::Value = serde_json::from_str(&found.body).expect("JSON");
    assert_eq!(found["Parameter"]["Value"], ami.as_str());
    assert_eq!(found["Parameter"]["Version"], 1);

    moto.add_public_parameters(REGION, &[(alias, "ami-0123456789abcdef0")]);
    let found: serde_json::Value = serde_json::from_str(&get().ok().body).expect("JSON");
    assert_eq!(found["Parameter"]["Value"], "ami-0123456789abcdef0");
    assert_eq!(found["Parameter"]["Version"], 2);

    // Only in the region they were added to.
    let elsewhere = ssm_in(
        &moto,
        "eu-west-1",
        "GetParameter",
        serde_json::json!({"Name": alias}),
    );
    assert!(
        elsewhere.body.contains("ParameterNotFound"),
        "{}",
        elsewhere.body
    );

    // Recursive listing, as alias resolution may use.
    let listed = ssm(
        &moto,
        "GetParametersByPath",
        serde_json::json!({"Path": "/aws/service/eks/optimized-ami/1.33", "Recursive": true}),
    )
    .ok();
    assert!(
        listed.body.contains("ami-0123456789abcdef0"),
        "{}",
        listed.body
    );
}

#[test]
fn reset_forgets_instances_faults_and_counts() {
    let moto = Moto::start_with(&Faults::none().throttle(Throttle::share(1.0, 0)));
    assert_eq!(
        error_code(&ec2(&moto, "DescribeRegions", &[])),
        "RequestLimitExceeded"
    );
    moto.reset();
    assert_eq!(moto.calls(), Default::default());
    let ami = an_ami(&moto);
    ec2(
        &moto,
        "RunInstances",
        &[
            ("ImageId", &ami),
            ("InstanceType", "t3.micro"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ],
    )
    .ok();
    let alias = "/aws/service/bottlerocket/aws-k8s-1.33/x86_64/latest/image_id";
    moto.add_public_parameters(REGION, &[(alias, &ami)]);
    ssm(&moto, "GetParameter", serde_json::json!({"Name": alias})).ok();
    moto.reset();
    assert_eq!(instances_in(&moto, "t3.micro", "us-east-1a"), 0);
    let gone = ssm(&moto, "GetParameter", serde_json::json!({"Name": alias}));
    assert!(gone.body.contains("ParameterNotFound"), "{}", gone.body);
}

#[test]
fn bad_faults_are_refused_with_the_field_and_the_fix() {
    let moto = Moto::start();
    let mut answer = agent()
        .post(&format!("{}/_dovetail/faults", moto.endpoint()))
        .send(r#"{"capacity": [{"zone": "us-east-1a"}]}"#)
        .expect("control endpoint answers");
    assert_eq!(answer.status(), 400);
    let body = answer.body_mut().read_to_string().expect("body");
    assert!(
        body.contains("capacity[0].instance_type is required"),
        "{body}"
    );

    let mut answer = agent()
        .post(&format!("{}/_dovetail/faults", moto.endpoint()))
        .send(r#"{"throttle": {"share": 2}}"#)
        .expect("control endpoint answers");
    assert_eq!(answer.status(), 400);
    let body = answer.body_mut().read_to_string().expect("body");
    assert!(
        body.contains("throttle.share is 2: use a number from 0 to 1"),
        "{body}"
    );
}

fn panic_message(result: std::thread::Result<Moto>) -> String {
    let payload = result.expect_err("starting must fail");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn a_missing_python_fails_with_the_install_command() {
    let message = panic_message(std::panic::catch_unwind(|| {
        Moto::start_using(
            std::path::Path::new("/nonexistent/moto-venv/bin/python"),
            &Faults::none(),
        )
    }));
    assert!(
        message.contains("/nonexistent/moto-venv/bin/python does not exist"),
        "{message}"
    );
    assert!(message.contains("tests/moto/install.sh"), "{message}");
}

#[test]
fn a_python_without_moto_fails_with_the_install_command() {
    // Python without its site-packages: no moto, whatever is installed.
    let dir = tempfile::tempdir().expect("temp dir");
    let python = dir.path().join("python");
    std::fs::write(&python, "#!/bin/sh\nexec python3 -S \"$@\"\n").expect("write wrapper");
    let mut perms = std::fs::metadata(&python).expect("metadata").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&python, perms).expect("chmod");

    let message = panic_message(std::panic::catch_unwind(|| {
        Moto::start_using(&python, &Faults::none())
    }));
    assert!(message.contains("exited before listening"), "{message}");
    assert!(message.contains("moto is not installed"), "{message}");
    assert!(message.contains("tests/moto/install.sh"), "{message}");
}
