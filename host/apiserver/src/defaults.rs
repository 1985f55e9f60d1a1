//! The defaults a real API server fills in on built-in kinds, so clients read back what they
//! would read from a cluster: upstream's `SetDefaults_*` functions (k8s.io/kubernetes
//! pkg/apis/*/v1/defaults.go), applied on create and update, and what the admission plugins and
//! registries add on create (DefaultTolerationSeconds, Priority, the pod's status, a Service's
//! cluster IP, a Namespace's finalizer).

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use crate::resource::ResourceInfo;
use crate::status::{ApiError, Target};

/// The Service cluster IP range, as kubeadm and kind configure it.
pub const SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 96, 0, 0), 12);

/// Seconds a pod tolerates a not-ready or unreachable node (DefaultTolerationSeconds plugin).
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Priority classes every cluster has.
const SYSTEM_PRIORITY_CLASSES: [(&str, i64); 2] = [
    ("system-cluster-critical", 2_000_000_000),
    ("system-node-critical", 2_000_001_000),
];

fn kind_of(res: &ResourceInfo) -> Option<&'static str> {
    if !res.builtin {
        return None;
    }
    Some(match (res.group.as_str(), res.plural.as_str()) {
        ("", "pods") => "Pod",
        ("", "services") => "Service",
        ("", "namespaces") => "Namespace",
        ("", "secrets") => "Secret",
        ("apps", "deployments") => "Deployment",
        ("apps", "replicasets") => "ReplicaSet",
        ("apps", "daemonsets") => "DaemonSet",
        ("policy", "poddisruptionbudgets") => "PodDisruptionBudget",
        _ => return None,
    })
}

/// Defaults on create: the kind's `SetDefaults_*`, then what admission and the registry add.
/// `services` are the stored Services, for cluster IP allocation.
pub fn on_create<'a>(
    res: &ResourceInfo,
    obj: &mut Value,
    services: impl Iterator<Item = &'a Value>,
) -> Result<(), ApiError> {
    let Some(kind) = kind_of(res) else {
        return Ok(());
    };
    set_defaults(kind, obj);
    match kind {
        "Pod" => pod_admission(obj)?,
        "Service" => {
            let services: Vec<&Value> = services.collect();
            allocate_cluster_ip(obj, services.iter().copied())?;
            allocate_node_ports(obj, &services)?;
            obj["status"] = json!({ "loadBalancer": {} });
        }
        "Namespace" => namespace_on_create(obj),
        "PodDisruptionBudget" => {
            // Non-optional counters read as 0 until the disruption controller computes them.
            obj["status"] = json!({
                "currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0,
            });
        }
        _ => {}
    }
    Ok(())
}

/// Defaults on update through the main endpoint: the kind's `SetDefaults_*`, and values the
/// registry allocated (a Service's cluster IPs and node ports) carried over when the update
/// omits them; `services` are the stored Services, for node ports of new ports.
pub fn on_update<'a>(
    res: &ResourceInfo,
    obj: &mut Value,
    old: &Value,
    services: impl Iterator<Item = &'a Value>,
) -> Result<(), ApiError> {
    let Some(kind) = kind_of(res) else {
        return Ok(());
    };
    set_defaults(kind, obj);
    if kind == "Service" {
        keep_cluster_ip(obj, old)?;
        keep_node_ports(obj, old);
        // The object's own stored ports are not taken by another service.
        let uid = old.pointer("/metadata/uid");
        let others: Vec<&Value> = services
            .filter(|s| s.pointer("/metadata/uid") != uid)
            .collect();
        allocate_node_ports(obj, &others)?;
    }
    Ok(())
}

/// The node port range, as kube-apiserver's `--service-node-port-range` default.
pub const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

/// Gives every port of a NodePort or LoadBalancer Service a node port, or checks the one it
/// asks for against the range and the ports other Services hold.
fn allocate_node_ports(obj: &mut Value, services: &[&Value]) -> Result<(), ApiError> {
    let svc_name = name(obj);
    let spec = object(obj, "spec");
    if !matches!(
        spec.get("type").and_then(Value::as_str),
        Some("NodePort" | "LoadBalancer")
    ) {
        return Ok(());
    }
    let mut used: HashSet<i64> = services
        .iter()
        .flat_map(|s| {
            s.pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
        .collect();
    let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let invalid = |i: usize, port: i64, why: String| ApiError::Invalid {
        target: Target::new("", "services", &svc_name),
        message: format!("spec.ports[{i}].nodePort: Invalid value: {port}: {why}"),
    };
    // Requested ports first, so a dynamic one never takes a port asked for later in the list.
    for (i, p) in ports.iter().enumerate() {
        if let Some(port) = p
            .get("nodePort")
            .and_then(Value::as_i64)
            .filter(|n| *n != 0)
        {
            if !NODE_PORTS.contains(&port) {
                return Err(invalid(
                    i,
                    port,
                    format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        NODE_PORTS.start(),
                        NODE_PORTS.end()
                    ),
                ));
            }
            if !used.insert(port) {
                return Err(invalid(
                    i,
                    port,
                    "provided port is already allocated".into(),
                ));
            }
        }
    }
    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
        if p.get("nodePort")
            .and_then(Value::as_i64)
            .is_some_and(|n| n != 0)
        {
            continue;
        }
        let free = NODE_PORTS
            .clone()
            .find(|n| !used.contains(n))
            .ok_or_else(|| {
                ApiError::Internal("failed to allocate a nodePort: range is full".into())
            })?;
        used.insert(free);
        p.insert("nodePort".into(), json!(free));
    }
    Ok(())
}

/// A port an update sends without a node port keeps the one allocated to the same port
/// (by name, or by port and protocol when unnamed).
fn keep_node_ports(obj: &mut Value, old: &Value) {
    let old_ports = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
        return;
    };
    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
        if p.get("nodePort")
            .and_then(Value::as_i64)
            .is_some_and(|n| n != 0)
        {
            continue;
        }
        let same = |o: &&Value| {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                o.get("port") == p.get("port") && o.get("protocol") == p.get("protocol")
            } else {
                o.get("name").and_then(Value::as_str) == Some(name)
            }
        };
        if let Some(n) = old_ports.iter().find(same).and_then(|o| o.get("nodePort")) {
            p.insert("nodePort".into(), n.clone());
        }
    }
}

/// Upstream's `SetDefaults_<Kind>` for one kind.
fn set_defaults(kind: &str, obj: &mut Value) {
    match kind {
        "Pod" => pod(obj),
        "Service" => service(obj),
        "Namespace" => namespace(obj),
        "Secret" => secret(obj),
        "Deployment" => deployment(obj),
        "ReplicaSet" => replica_set(obj),
        "DaemonSet" => daemon_set(obj),
        _ => {}
    }
}

/// `obj[key]`, made an object first if it is missing or not one.
fn object<'a>(obj: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !obj.get(key).is_some_and(Value::is_object) {
        obj[key] = json!({});
    }
    obj[key].as_object_mut().expect("just made an object")
}

fn default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(|v| v.is_null() || v == "") {
        m.insert(key.to_string(), value);
    }
}

fn name(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Always for `:latest` or no tag, else IfNotPresent (a digest pins the image).
pub fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else {
        return;
    };
    default(m, "terminationMessagePath", json!("/dev/termination-log"));
    default(m, "terminationMessagePolicy", json!("File"));
    let image = m.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = image_pull_policy(image);
    default(m, "imagePullPolicy", json!(policy));
    if !m.get("resources").is_some_and(Value::is_object) {
        m.insert("resources".into(), json!({}));
    }
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(p, "protocol", json!("TCP"));
        }
    }
}

fn containers(spec: &mut Map<String, Value>, each: impl Fn(&mut Value)) {
    for list in ["initContainers", "containers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(&each);
        }
    }
}

/// `SetDefaults_PodSpec` and the containers', shared by pods and pod templates.
fn pod_spec(spec: &mut Value) {
    let s = match spec.as_object_mut() {
        Some(s) => s,
        None => return,
    };
    default(s, "dnsPolicy", json!("ClusterFirst"));
    default(s, "restartPolicy", json!("Always"));
    if !s.get("securityContext").is_some_and(Value::is_object) {
        s.insert("securityContext".into(), json!({}));
    }
    default(s, "terminationGracePeriodSeconds", json!(30));
    default(s, "schedulerName", json!("default-scheduler"));
    containers(s, container);
}

fn pod_template(obj: &mut Value) {
    if let Some(spec) = obj.pointer_mut("/spec/template/spec") {
        pod_spec(spec);
    }
}

/// `SetDefaults_Pod`: the spec's defaults, requests from limits, service links.
fn pod(obj: &mut Value) {
    if !obj.get("spec").is_some_and(Value::is_object) {
        return;
    }
    pod_spec(&mut obj["spec"]);
    let spec = object(obj, "spec");
    containers(spec, |c| {
        let Some(limits) = c
            .pointer("/resources/limits")
            .and_then(Value::as_object)
            .cloned()
        else {
            return;
        };
        let requests = object(object_at(c, "resources"), "requests");
        for (k, v) in limits {
            requests.entry(k).or_insert(v);
        }
    });
    default(spec, "enableServiceLinks", json!(true));
}

fn object_at<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    object(v, key);
    &mut v[key]
}

/// What the admission plugins add to a new pod, and the status it starts with.
fn pod_admission(obj: &mut Value) -> Result<(), ApiError> {
    let pod_name = name(obj);
    let spec = object(obj, "spec");
    // Priority: the class's value, 0 without one; PreemptLowerPriority unless set.
    let class = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let priority = if class.is_empty() {
        0
    } else {
        SYSTEM_PRIORITY_CLASSES
            .iter()
            .find(|(n, _)| *n == class)
            .map(|(_, p)| *p)
            .ok_or_else(|| ApiError::Forbidden {
                target: Target::new("", "pods", &pod_name),
                message: format!("no PriorityClass with name {class} was found"),
            })?
    };
    default(spec, "priority", json!(priority));
    default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    // DefaultTolerationSeconds: tolerate a not-ready or unreachable node for 5 minutes.
    let mut tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let before = tolerations.len();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = tolerations.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        });
        if !tolerated {
            tolerations.push(json!({
                "key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }));
        }
    }
    if tolerations.len() != before {
        spec.insert("tolerations".into(), Value::Array(tolerations));
    }
    let qos = qos_class(&obj["spec"]);
    let status = object(obj, "status");
    default(status, "phase", json!("Pending"));
    status.insert("qosClass".into(), json!(qos));
    Ok(())
}

/// A quantity's value (`100m`, `1Gi`, `2e3`); `None` when malformed.
pub fn quantity(q: &Value) -> Option<f64> {
    let s = match q {
        Value::String(s) => s.trim(),
        Value::Number(n) => return n.as_f64(),
        _ => return None,
    };
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    for (suffix, factor) in [("P", 1e15), ("E", 1e18)] {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    s.parse::<f64>().ok()
}

/// The pod's QoS class from its containers' cpu and memory requests and limits (upstream
/// `GetPodQOS`).
pub fn qos_class(spec: &Value) -> &'static str {
    let mut requests: BTreeMap<String, f64> = BTreeMap::new();
    let mut limits: BTreeMap<String, f64> = BTreeMap::new();
    let mut guaranteed = true;
    let all = ["initContainers", "containers"]
        .into_iter()
        .flat_map(|l| spec.get(l).and_then(Value::as_array).into_iter().flatten());
    for c in all {
        let compute = |which: &str| -> Vec<(String, f64)> {
            c.pointer(&format!("/resources/{which}"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter(|(k, _)| matches!(k.as_str(), "cpu" | "memory"))
                .filter_map(|(k, v)| quantity(v).map(|q| (k.clone(), q)))
                .filter(|(_, q)| *q != 0.0)
                .collect()
        };
        for (k, q) in compute("requests") {
            *requests.entry(k).or_default() += q;
        }
        let found = compute("limits");
        if !["cpu", "memory"]
            .iter()
            .all(|r| found.iter().any(|(k, _)| k == r))
        {
            guaranteed = false;
        }
        for (k, q) in found {
            *limits.entry(k).or_default() += q;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.len() == limits.len()
        && requests
            .iter()
            .all(|(k, r)| limits.get(k).is_some_and(|l| (l - r).abs() < 1e-9))
    {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// `SetDefaults_Deployment`.
fn deployment(obj: &mut Value) {
    let spec = object(obj, "spec");
    default(spec, "replicas", json!(1));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    if let Some(st) = strategy.as_object_mut() {
        default(st, "type", json!("RollingUpdate"));
        if st.get("type") == Some(&json!("RollingUpdate")) {
            let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Some(ru) = ru.as_object_mut() {
                default(ru, "maxUnavailable", json!("25%"));
                default(ru, "maxSurge", json!("25%"));
            }
        }
    }
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    pod_template(obj);
}

/// `SetDefaults_ReplicaSet`.
fn replica_set(obj: &mut Value) {
    default(object(obj, "spec"), "replicas", json!(1));
    pod_template(obj);
}

/// `SetDefaults_DaemonSet`.
fn daemon_set(obj: &mut Value) {
    let spec = object(obj, "spec");
    let strategy = spec.entry("updateStrategy").or_insert_with(|| json!({}));
    if let Some(st) = strategy.as_object_mut() {
        default(st, "type", json!("RollingUpdate"));
        if st.get("type") == Some(&json!("RollingUpdate")) {
            let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Some(ru) = ru.as_object_mut() {
                default(ru, "maxUnavailable", json!(1));
                default(ru, "maxSurge", json!(0));
            }
        }
    }
    default(spec, "revisionHistoryLimit", json!(10));
    pod_template(obj);
}

/// `SetDefaults_Service`.
fn service(obj: &mut Value) {
    let spec = object(obj, "spec");
    default(spec, "sessionAffinity", json!("None"));
    if spec.get("sessionAffinity") == Some(&json!("ClientIP")) {
        let cfg = spec
            .entry("sessionAffinityConfig")
            .or_insert_with(|| json!({}));
        if let Some(cfg) = cfg.as_object_mut() {
            let ip = cfg.entry("clientIP").or_insert_with(|| json!({}));
            if let Some(ip) = ip.as_object_mut() {
                default(ip, "timeoutSeconds", json!(10800));
            }
        }
    }
    default(spec, "type", json!("ClusterIP"));
    let service_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(p, "protocol", json!("TCP"));
            if p.get("targetPort")
                .is_none_or(|t| t.is_null() || *t == 0 || t == "")
                && let Some(port) = p.get("port").cloned()
            {
                p.insert("targetPort".into(), port);
            }
        }
    }
    if matches!(service_type.as_str(), "NodePort" | "LoadBalancer") {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if service_type != "ExternalName" {
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
}

fn service_range() -> (u32, u32) {
    let (base, bits) = SERVICE_CIDR;
    let base = u32::from(base);
    (base, base + (1u32 << (32 - bits)) - 1)
}

fn cidr_text() -> String {
    format!("{}/{}", SERVICE_CIDR.0, SERVICE_CIDR.1)
}

/// Gives a new ClusterIP, NodePort or LoadBalancer Service a cluster IP from
/// [`SERVICE_CIDR`], or checks the one it asks for; headless (`None`) and ExternalName
/// Services get none.
fn allocate_cluster_ip<'a>(
    obj: &mut Value,
    services: impl Iterator<Item = &'a Value>,
) -> Result<(), ApiError> {
    let svc_name = name(obj);
    let spec = object(obj, "spec");
    if spec.get("type") == Some(&json!("ExternalName")) {
        return Ok(());
    }
    let requested = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("clusterIPs")
                .and_then(|ips| ips.get(0))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .map(str::to_string);
    let invalid = |ip: &str, why: String| ApiError::Invalid {
        target: Target::new("", "services", &svc_name),
        message: format!("spec.clusterIPs: Invalid value: []string{{{ip:?}}}: {why}"),
    };
    let (first, last) = service_range();
    let used: HashSet<u32> = services
        .filter_map(|s| s.pointer("/spec/clusterIP").and_then(Value::as_str))
        .filter_map(|ip| ip.parse::<Ipv4Addr>().ok())
        .map(u32::from)
        .collect();
    let ip = match requested.as_deref() {
        Some("None") => {
            spec.insert("clusterIP".into(), json!("None"));
            spec.insert("clusterIPs".into(), json!(["None"]));
            default(spec, "ipFamilyPolicy", json!("SingleStack"));
            spec.insert("ipFamilies".into(), json!(["IPv4"]));
            return Ok(());
        }
        Some(text) => {
            let ip: Ipv4Addr = text.parse().map_err(|_| {
                invalid(
                    text,
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into(),
                )
            })?;
            let n = u32::from(ip);
            if n <= first || n >= last {
                return Err(invalid(
                    text,
                    format!(
                        "failed to allocate IP {text}: the provided IP ({text}) is not in the valid range. The range of valid IPs is {}",
                        cidr_text()
                    ),
                ));
            }
            if used.contains(&n) {
                return Err(invalid(
                    text,
                    format!("failed to allocate IP {text}: provided IP is already allocated"),
                ));
            }
            ip
        }
        None => {
            // Dynamic addresses come from above the band kept for static ones, as upstream's
            // allocator prefers.
            let static_band = 256u32;
            let free = (first + static_band..last)
                .chain(first + 1..first + static_band)
                .find(|n| !used.contains(n))
                .ok_or_else(|| {
                    ApiError::Internal(format!(
                        "failed to allocate a serviceIP: range is full ({})",
                        cidr_text()
                    ))
                })?;
            Ipv4Addr::from(free)
        }
    };
    spec.insert("clusterIP".into(), json!(ip.to_string()));
    spec.insert("clusterIPs".into(), json!([ip.to_string()]));
    default(spec, "ipFamilyPolicy", json!("SingleStack"));
    spec.insert("ipFamilies".into(), json!(["IPv4"]));
    Ok(())
}

/// An update that omits the cluster IPs keeps the allocated ones; one that changes them is
/// refused (they are immutable).
fn keep_cluster_ip(obj: &mut Value, old: &Value) -> Result<(), ApiError> {
    let svc_name = name(obj);
    let Some(old_spec) = old.get("spec").and_then(Value::as_object) else {
        return Ok(());
    };
    let spec = object(obj, "spec");
    for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        let Some(was) = old_spec.get(field) else {
            continue;
        };
        match spec.get(field) {
            None | Some(Value::Null) => {
                spec.insert(field.into(), was.clone());
            }
            Some(Value::String(s)) if s.is_empty() => {
                spec.insert(field.into(), was.clone());
            }
            Some(now) if field == "clusterIP" && now != was => {
                return Err(ApiError::Invalid {
                    target: Target::new("", "services", &svc_name),
                    message: format!(
                        "spec.clusterIPs[0]: Invalid value: {now}: may not change once set"
                    ),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `SetDefaults_Namespace`: the name label.
fn namespace(obj: &mut Value) {
    let n = name(obj);
    if n.is_empty() {
        return;
    }
    let meta = object(obj, "metadata");
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        l.insert("kubernetes.io/metadata.name".into(), json!(n));
    }
}

/// A new namespace is Active and carries the `kubernetes` finalizer, kept with any others.
fn namespace_on_create(obj: &mut Value) {
    obj["status"] = json!({ "phase": "Active" });
    let spec = object(obj, "spec");
    let finalizers = spec.entry("finalizers").or_insert_with(|| json!([]));
    if !finalizers.is_array() {
        *finalizers = json!([]);
    }
    let list = finalizers.as_array_mut().expect("just made an array");
    if !list.iter().any(|f| f == "kubernetes") {
        list.push(json!("kubernetes"));
    }
}

/// `stringData` is write-only: merged into `data` (base64), then dropped; type Opaque.
fn secret(obj: &mut Value) {
    use base64::Engine;
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    default(m, "type", json!("Opaque"));
    if let Some(Value::Object(string_data)) = m.remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        let data = data.as_object_mut().expect("just made an object");
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or("").as_bytes().to_vec();
            data.insert(
                k,
                json!(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Registry;

    fn res(group: &str, plural: &str) -> ResourceInfo {
        Registry::default()
            .find(group, "v1", plural)
            .unwrap()
            .clone()
    }

    fn created(group: &str, plural: &str, mut obj: Value) -> Value {
        on_create(&res(group, plural), &mut obj, std::iter::empty()).unwrap();
        obj
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        for (image, want) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("registry:5000/team/app", "Always"),
            ("registry:5000/team/app:v2", "IfNotPresent"),
            ("nginx@sha256:abcd", "IfNotPresent"),
        ] {
            assert_eq!(image_pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn qos_class_from_requests_and_limits() {
        let c =
            |resources: Value| json!({ "containers": [{ "name": "a", "resources": resources }] });
        for (resources, want) in [
            (json!({}), "BestEffort"),
            (json!({ "requests": { "cpu": "100m" } }), "Burstable"),
            (
                json!({ "requests": { "cpu": "1", "memory": "1Gi" }, "limits": { "cpu": "1000m", "memory": "1024Mi" } }),
                "Guaranteed",
            ),
            (
                json!({ "requests": { "cpu": "1", "memory": "1Gi" }, "limits": { "cpu": "2", "memory": "1Gi" } }),
                "Burstable",
            ),
            (
                json!({ "requests": { "ephemeral-storage": "1Gi" } }),
                "BestEffort",
            ),
        ] {
            assert_eq!(qos_class(&c(resources.clone())), want, "{resources}");
        }
    }

    #[test]
    fn a_new_pod_reads_back_as_from_a_real_server() {
        let p = created(
            "",
            "pods",
            json!({ "metadata": { "name": "p" }, "spec": { "containers": [
                { "name": "a", "image": "nginx", "ports": [{ "containerPort": 80 }],
                  "resources": { "limits": { "cpu": "1", "memory": "1Gi" } } }
            ] } }),
        );
        let spec = &p["spec"];
        for (pointer, want) in [
            ("/restartPolicy", json!("Always")),
            ("/dnsPolicy", json!("ClusterFirst")),
            ("/schedulerName", json!("default-scheduler")),
            ("/terminationGracePeriodSeconds", json!(30)),
            ("/securityContext", json!({})),
            ("/enableServiceLinks", json!(true)),
            ("/preemptionPolicy", json!("PreemptLowerPriority")),
            ("/priority", json!(0)),
            (
                "/containers/0/terminationMessagePath",
                json!("/dev/termination-log"),
            ),
            ("/containers/0/terminationMessagePolicy", json!("File")),
            ("/containers/0/imagePullPolicy", json!("Always")),
            ("/containers/0/ports/0/protocol", json!("TCP")),
            (
                "/containers/0/resources/requests",
                json!({ "cpu": "1", "memory": "1Gi" }),
            ),
            (
                "/tolerations",
                json!([
                    { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
                    { "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
                ]),
            ),
        ] {
            assert_eq!(spec.pointer(pointer), Some(&want), "spec{pointer}");
        }
        assert_eq!(
            p["status"],
            json!({ "phase": "Pending", "qosClass": "Guaranteed" })
        );
    }

    #[test]
    fn pod_defaults_keep_what_the_client_set() {
        let p = created(
            "",
            "pods",
            json!({ "metadata": { "name": "p" }, "spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                "priorityClassName": "system-node-critical",
                "tolerations": [{ "operator": "Exists" }],
                "containers": [{ "name": "a", "image": "x:1", "imagePullPolicy": "Never" }],
            } }),
        );
        assert_eq!(p["spec"]["restartPolicy"], "Never");
        assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 0);
        assert_eq!(p["spec"]["priority"], 2_000_001_000);
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Never");
        assert_eq!(
            p["spec"]["tolerations"],
            json!([{ "operator": "Exists" }]),
            "a blanket toleration covers both"
        );
        let mut unknown = json!({ "metadata": { "name": "p" }, "spec": { "priorityClassName": "gold", "containers": [] } });
        let e = on_create(&res("", "pods"), &mut unknown, std::iter::empty()).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string()),
            (
                403,
                "pods \"p\" is forbidden: no PriorityClass with name gold was found".into()
            )
        );
    }

    #[test]
    fn workloads_get_replicas_history_strategy_and_template_defaults() {
        let template = json!({ "metadata": { "labels": { "app": "w" } }, "spec": { "containers": [{ "name": "a", "image": "x:1" }] } });
        for (plural, pointer, want) in [
            ("deployments", "/spec/replicas", json!(1)),
            ("deployments", "/spec/revisionHistoryLimit", json!(10)),
            ("deployments", "/spec/progressDeadlineSeconds", json!(600)),
            (
                "deployments",
                "/spec/strategy",
                json!({ "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": "25%", "maxSurge": "25%" } }),
            ),
            (
                "deployments",
                "/spec/template/spec/dnsPolicy",
                json!("ClusterFirst"),
            ),
            ("replicasets", "/spec/replicas", json!(1)),
            (
                "replicasets",
                "/spec/template/spec/containers/0/imagePullPolicy",
                json!("IfNotPresent"),
            ),
            ("daemonsets", "/spec/revisionHistoryLimit", json!(10)),
            (
                "daemonsets",
                "/spec/updateStrategy",
                json!({ "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 1, "maxSurge": 0 } }),
            ),
            (
                "daemonsets",
                "/spec/template/spec/schedulerName",
                json!("default-scheduler"),
            ),
        ] {
            let obj = created(
                "apps",
                plural,
                json!({ "metadata": { "name": "w" }, "spec": { "template": template } }),
            );
            assert_eq!(obj.pointer(pointer), Some(&want), "{plural}{pointer}");
        }
        let d = created(
            "apps",
            "deployments",
            json!({ "metadata": { "name": "w" }, "spec": { "replicas": 0, "strategy": { "type": "Recreate" }, "template": template } }),
        );
        assert_eq!(d["spec"]["replicas"], 0);
        assert_eq!(d["spec"]["strategy"], json!({ "type": "Recreate" }));
        assert!(
            d["spec"]["template"]["spec"]
                .get("enableServiceLinks")
                .is_none(),
            "pod-only default"
        );
    }

    #[test]
    fn services_get_a_cluster_ip_and_port_defaults() {
        let existing = [json!({ "spec": { "clusterIP": "10.96.1.0" } })];
        let mut s = json!({ "metadata": { "name": "web" }, "spec": { "ports": [{ "port": 80 }, { "port": 53, "protocol": "UDP", "targetPort": "dns" }] } });
        on_create(&res("", "services"), &mut s, existing.iter()).unwrap();
        for (pointer, want) in [
            ("/spec/type", json!("ClusterIP")),
            ("/spec/sessionAffinity", json!("None")),
            ("/spec/clusterIP", json!("10.96.1.1")),
            ("/spec/clusterIPs", json!(["10.96.1.1"])),
            ("/spec/ipFamilies", json!(["IPv4"])),
            ("/spec/ipFamilyPolicy", json!("SingleStack")),
            ("/spec/internalTrafficPolicy", json!("Cluster")),
            (
                "/spec/ports/0",
                json!({ "port": 80, "protocol": "TCP", "targetPort": 80 }),
            ),
            (
                "/spec/ports/1",
                json!({ "port": 53, "protocol": "UDP", "targetPort": "dns" }),
            ),
            ("/status", json!({ "loadBalancer": {} })),
        ] {
            assert_eq!(s.pointer(pointer), Some(&want), "{pointer}");
        }
        for (ip, fragment) in [
            ("10.96.1.0", "provided IP is already allocated"),
            (
                "10.0.0.1",
                "is not in the valid range. The range of valid IPs is 10.96.0.0/12",
            ),
        ] {
            let mut s = json!({ "metadata": { "name": "x" }, "spec": { "clusterIP": ip } });
            let e = on_create(&res("", "services"), &mut s, existing.iter()).unwrap_err();
            assert!(e.code() == 422 && e.to_string().contains(fragment), "{e}");
        }
        let mut headless = json!({ "metadata": { "name": "h" }, "spec": { "clusterIP": "None" } });
        on_create(&res("", "services"), &mut headless, existing.iter()).unwrap();
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));

        let mut update =
            json!({ "metadata": { "name": "web" }, "spec": { "ports": [{ "port": 81 }] } });
        on_update(&res("", "services"), &mut update, &s, std::iter::empty()).unwrap();
        assert_eq!(
            update["spec"]["clusterIP"], "10.96.1.1",
            "kept from the stored object"
        );
        let mut node_ports = json!({ "metadata": { "name": "np" }, "spec": { "type": "NodePort", "ports": [{ "port": 80 }, { "port": 443, "nodePort": 30000 }] } });
        on_create(&res("", "services"), &mut node_ports, existing.iter()).unwrap();
        assert_eq!(
            node_ports["spec"]["ports"][0]["nodePort"], 30001,
            "30000 was asked for"
        );
        assert_eq!(node_ports["spec"]["ports"][1]["nodePort"], 30000);
        let taken = [node_ports.clone()];
        let mut clash = json!({ "metadata": { "name": "c" }, "spec": { "type": "NodePort", "ports": [{ "port": 1, "nodePort": 30001 }] } });
        let e = on_create(&res("", "services"), &mut clash, taken.iter()).unwrap_err();
        assert!(
            e.to_string().contains(
                "spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated"
            ),
            "{e}"
        );
        let mut update = json!({ "metadata": { "name": "np" }, "spec": { "type": "NodePort", "ports": [{ "port": 80 }, { "port": 8080 }] } });
        on_update(&res("", "services"), &mut update, &node_ports, taken.iter()).unwrap();
        assert_eq!(update["spec"]["ports"][0]["nodePort"], 30001, "kept");
        assert_eq!(
            update["spec"]["ports"][1]["nodePort"], 30000,
            "freed by this service"
        );

        let mut moved =
            json!({ "metadata": { "name": "web" }, "spec": { "clusterIP": "10.96.9.9" } });
        assert_eq!(
            on_update(&res("", "services"), &mut moved, &s, std::iter::empty())
                .unwrap_err()
                .code(),
            422
        );
    }

    #[test]
    fn stored_services_get_distinct_addresses() {
        let s = crate::store::Store::default();
        let svcs = s.resource("", "v1", "services").unwrap();
        let ip = |name: &str| {
            s.create(
                &svcs,
                "default",
                json!({ "metadata": { "name": name }, "spec": { "ports": [{ "port": 80 }] } }),
            )
            .unwrap()["spec"]["clusterIP"]
                .clone()
        };
        let (a, b) = (ip("a"), ip("b"));
        assert_ne!(a, b);
        assert_eq!((a, b), (json!("10.96.1.0"), json!("10.96.1.1")));
    }

    #[test]
    fn namespaces_secrets_and_budgets() {
        let ns = created(
            "",
            "namespaces",
            json!({ "metadata": { "name": "team" }, "spec": { "finalizers": ["example.com/x"] } }),
        );
        assert_eq!(
            ns["spec"]["finalizers"],
            json!(["example.com/x", "kubernetes"])
        );
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team"
        );
        let s = created(
            "",
            "secrets",
            json!({ "metadata": { "name": "s" }, "data": { "a": "eA==" }, "stringData": { "b": "y" } }),
        );
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"], json!({ "a": "eA==", "b": "eQ==" }));
        assert!(s.get("stringData").is_none());
        let p = created(
            "policy",
            "poddisruptionbudgets",
            json!({ "metadata": { "name": "b" }, "spec": {} }),
        );
        assert_eq!(p["status"]["disruptionsAllowed"], 0);
        assert!(p["status"].get("observedGeneration").is_none());
    }
}
