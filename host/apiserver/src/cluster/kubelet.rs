//! The kubelet model: registers a Node for each instance the fake cloud
//! runs, marks it Ready after a delay, renews its Lease, runs the pods
//! bound to it and confirms their graceful deletion. When the instance is
//! terminated the node stops reporting: Ready turns Unknown and the node is
//! tainted unreachable, as the node lifecycle controller does.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use dovetail_control::cloud::Instance;
use dovetail_core::labels;
use dovetail_core::nodeclaim::UNREGISTERED_TAINT;
use dovetail_core::resources::Resources;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

use super::Machines;
use super::informer::Informers;

pub(crate) const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
pub(crate) const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
const KUBELET_VERSION: &str = "v1.33.0";

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub ready_after: Duration,
    pub grace_period_scale: f64,
    pub lease_interval: Duration,
    pub resync: Duration,
}

/// A node this kubelet registered.
#[derive(Debug)]
struct Tracked {
    provider_id: String,
    registered: Instant,
    ready: bool,
    /// Its instance is terminated: nothing runs there any more.
    gone: bool,
    /// The last octets of its pods' IPs.
    next_pod_ip: u32,
    ip: String,
}

struct Kubelet {
    client: kube::Client,
    machines: Machines,
    settings: Settings,
    nodes: BTreeMap<String, Tracked>,
    /// Deleted pods by uid, and when their deletion is confirmed.
    terminating: HashMap<String, Instant>,
    last_lease: Option<Instant>,
}

pub(crate) async fn run(client: kube::Client, machines: Machines, settings: Settings) {
    let mut informers = Informers::new(settings.resync);
    let pods = informers.watch::<Pod>(&client);
    // Another cloud is looked at on each resync.
    let mut launches = match &machines {
        Machines::Fake(cloud) => cloud.subscribe(),
        Machines::External(_) => tokio::sync::watch::channel(0).1,
    };
    let _ = pods.wait_until_ready().await;
    let mut kubelet = Kubelet {
        client,
        machines,
        settings,
        nodes: BTreeMap::new(),
        terminating: HashMap::new(),
        last_lease: None,
    };
    loop {
        if let Err(e) = kubelet.sync(&pods.state()).await {
            tracing::warn!("kubelet model: {e}");
        }
        tokio::select! {
            () = informers.changed() => {}
            Ok(()) = launches.changed() => {}
        }
    }
}

impl Kubelet {
    async fn sync(&mut self, pods: &[std::sync::Arc<Pod>]) -> Result<(), kube::Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let Some(instances) = self.machines.instances().await else {
            return Ok(());
        };
        for instance in &instances {
            if !self
                .nodes
                .values()
                .any(|t| t.provider_id == instance.provider_id)
            {
                // One node failing to register must not hold up the others.
                if let Err(e) = self.register(&nodes, instance).await {
                    tracing::warn!("kubelet model: registering {}: {e}", instance.provider_id);
                }
            }
        }
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            let Some(t) = self.nodes.get(&name) else {
                continue;
            };
            if t.gone {
                continue;
            }
            let done = if !instances.iter().any(|i| i.provider_id == t.provider_id) {
                self.stop_reporting(&nodes, &name).await
            } else if !t.ready && t.registered.elapsed() >= self.settings.ready_after {
                self.mark_ready(&nodes, &name).await
            } else {
                Ok(())
            };
            if let Err(e) = done {
                tracing::warn!("kubelet model: node {name}: {e}");
            }
        }
        if self
            .last_lease
            .is_none_or(|t| t.elapsed() >= self.settings.lease_interval)
        {
            self.renew_leases().await?;
            self.last_lease = Some(Instant::now());
        }
        for pod in pods {
            if let Err(e) = self.run_pod(pod).await {
                let name = pod.metadata.name.as_deref().unwrap_or("");
                tracing::warn!("kubelet model: pod {name}: {e}");
            }
        }
        Ok(())
    }

    /// Registers the node for `instance`, as the kubelet does on start.
    async fn register(
        &mut self,
        nodes: &Api<Node>,
        instance: &Instance,
    ) -> Result<(), kube::Error> {
        let (name, ip) = private_dns(instance);
        let claim = match instance.node_claim {
            Some(c) => node_claim(&self.client, c.as_str()).await?,
            None => None,
        };
        let mut node_labels: BTreeMap<String, String> = instance
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        node_labels.insert(labels::HOSTNAME.into(), name.clone());
        let mut taints = Vec::new();
        if let Some(claim) = &claim {
            if let Some(l) = claim.pointer("/metadata/labels").and_then(Value::as_object) {
                for (k, v) in l {
                    if let Some(v) = v.as_str() {
                        node_labels.insert(k.clone(), v.into());
                    }
                }
            }
            for field in ["/spec/taints", "/spec/startupTaints"] {
                for t in claim
                    .pointer(field)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Ok(t) = serde_json::from_value::<Taint>(t.clone()) {
                        taints.push(t);
                    }
                }
            }
        }
        // Karpenter's launch template registers its nodes with this taint;
        // an instance launched outside a NodeClaim has no such template.
        if instance.node_claim.is_some() {
            taints.push(taint(UNREGISTERED_TAINT, "NoExecute"));
        }
        taints.push(taint(NOT_READY_TAINT, "NoSchedule"));
        let now = k8s_openapi::jiff::Timestamp::now();
        let node: Node = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": node_labels },
            "spec": { "providerID": instance.provider_id, "taints": taints },
            "status": {
                "capacity": quantities(&instance.capacity),
                "allocatable": quantities(&instance.allocatable),
                "conditions": [ready_condition("False", "KubeletNotReady", "container runtime network not ready", now)],
                "addresses": [
                    { "type": "InternalIP", "address": ip },
                    { "type": "InternalDNS", "address": name },
                    { "type": "Hostname", "address": name },
                ],
                "nodeInfo": node_info(instance),
                "phase": "Running",
            }
        }))
        .map_err(kube::Error::SerdeError)?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
        // Status is ignored on create (the status subresource's split), so
        // the kubelet reports it separately, as the real one does.
        nodes
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": node.status })),
            )
            .await?;
        self.nodes.insert(
            name,
            Tracked {
                provider_id: instance.provider_id.clone(),
                registered: Instant::now(),
                ready: false,
                gone: false,
                next_pod_ip: 0,
                ip,
            },
        );
        Ok(())
    }

    async fn mark_ready(&mut self, nodes: &Api<Node>, name: &str) -> Result<(), kube::Error> {
        let now = k8s_openapi::jiff::Timestamp::now();
        let status = json!({ "status": { "conditions": [ready_condition("True", "KubeletReady", "kubelet is posting ready status", now)] } });
        if !self
            .patch_node(
                nodes,
                name,
                |taints| taints.retain(|t| t.key != NOT_READY_TAINT),
                status,
            )
            .await?
        {
            return Ok(());
        }
        if let Some(t) = self.nodes.get_mut(name) {
            t.ready = true;
        }
        Ok(())
    }

    /// The instance is gone: the node lifecycle controller, hearing
    /// nothing more, marks the node Unknown and unreachable.
    async fn stop_reporting(&mut self, nodes: &Api<Node>, name: &str) -> Result<(), kube::Error> {
        let now = k8s_openapi::jiff::Timestamp::now();
        let status = json!({ "status": { "conditions": [ready_condition("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.", now)] } });
        self.patch_node(
            nodes,
            name,
            |taints| {
                taints.retain(|t| t.key != NOT_READY_TAINT && t.key != UNREACHABLE_TAINT);
                taints.push(taint(UNREACHABLE_TAINT, "NoSchedule"));
                taints.push(taint(UNREACHABLE_TAINT, "NoExecute"));
            },
            status,
        )
        .await?;
        if let Some(t) = self.nodes.get_mut(name) {
            t.gone = true;
        }
        Ok(())
    }

    /// Edits the node's taints (retrying on conflict) and patches its
    /// status. False when the node no longer exists, which stops tracking
    /// it: a deleted node is not registered again.
    async fn patch_node(
        &mut self,
        nodes: &Api<Node>,
        name: &str,
        edit: impl Fn(&mut Vec<Taint>),
        status: Value,
    ) -> Result<bool, kube::Error> {
        loop {
            let mut node = match nodes.get_opt(name).await? {
                Some(n) => n,
                None => {
                    if let Some(t) = self.nodes.get_mut(name) {
                        t.gone = true;
                    }
                    return Ok(false);
                }
            };
            let spec = node.spec.get_or_insert_default();
            let before = spec.taints.clone();
            let mut taints = spec.taints.take().unwrap_or_default();
            edit(&mut taints);
            spec.taints = (!taints.is_empty()).then_some(taints);
            if spec.taints != before {
                match nodes.replace(name, &PostParams::default(), &node).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) => return Err(e),
                }
            }
            break;
        }
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(status))
            .await?;
        Ok(true)
    }

    async fn renew_leases(&self) -> Result<(), kube::Error> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), NODE_LEASE_NAMESPACE);
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        for (name, t) in &self.nodes {
            if t.gone {
                continue;
            }
            match leases.get_opt(name).await? {
                Some(mut lease) => {
                    lease.spec.get_or_insert_default().renew_time = Some(now.clone());
                    match leases.replace(name, &PostParams::default(), &lease).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(e) => return Err(e),
                    }
                }
                None => {
                    let lease = Lease {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            namespace: Some(NODE_LEASE_NAMESPACE.into()),
                            ..ObjectMeta::default()
                        },
                        spec: Some(LeaseSpec {
                            holder_identity: Some(name.clone()),
                            lease_duration_seconds: Some(40),
                            renew_time: Some(now.clone()),
                            ..LeaseSpec::default()
                        }),
                    };
                    match leases.create(&PostParams::default(), &lease).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }

    /// Starts a pod bound here, or confirms its deletion once its grace
    /// period (scaled) has passed.
    async fn run_pod(&mut self, pod: &Pod) -> Result<(), kube::Error> {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
            return Ok(());
        };
        let Some(tracked) = self.nodes.get_mut(node) else {
            return Ok(());
        };
        if tracked.gone {
            return Ok(());
        }
        let (Some(name), Some(ns), Some(uid)) = (
            pod.metadata.name.as_deref(),
            pod.metadata.namespace.as_deref(),
            pod.metadata.uid.as_deref(),
        ) else {
            return Ok(());
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or(0)
                .max(0) as f64;
            let due = *self.terminating.entry(uid.to_string()).or_insert_with(|| {
                Instant::now()
                    + Duration::from_secs_f64(grace * self.settings.grace_period_scale.max(0.0))
            });
            if Instant::now() >= due {
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid.to_string()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(name, &params).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                    Err(e) => return Err(e),
                }
                self.terminating.remove(uid);
            }
            return Ok(());
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Running" | "Succeeded" | "Failed")) {
            return Ok(());
        }
        tracked.next_pod_ip += 1;
        let n = tracked.next_pod_ip;
        let host_ip = tracked.ip.clone();
        let pod_ip = pod_ip(&host_ip, n);
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let condition = |kind: &str| json!({ "type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": now });
        let containers: Vec<Value> = pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .enumerate()
            .map(|(i, c)| {
                json!({
                    "name": c.name,
                    "image": c.image.clone().unwrap_or_default(),
                    "imageID": format!("{}@sha256:{:064x}", c.image.clone().unwrap_or_default(), 0),
                    "containerID": format!("containerd://{:064x}", fnv(&format!("{uid}/{i}"))),
                    "ready": true,
                    "started": true,
                    "restartCount": 0,
                    "state": { "running": { "startedAt": now } },
                })
            })
            .collect();
        let status = json!({ "status": {
            "phase": "Running",
            "conditions": [
                condition("PodReadyToStartContainers"),
                condition("Initialized"),
                condition("Ready"),
                condition("ContainersReady"),
                condition("PodScheduled"),
            ],
            "hostIP": host_ip,
            "hostIPs": [{ "ip": host_ip }],
            "podIP": pod_ip,
            "podIPs": [{ "ip": pod_ip }],
            "startTime": now,
            "containerStatuses": containers,
        }});
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The NodeClaim named `name`, when the CRD is installed and it exists.
async fn node_claim(client: &kube::Client, name: &str) -> Result<Option<Value>, kube::Error> {
    let gvk = GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "nodeclaims");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    match api.get_opt(name).await {
        Ok(Some(o)) => Ok(Some(
            serde_json::to_value(o).map_err(kube::Error::SerdeError)?,
        )),
        Ok(None) => Ok(None),
        // No NodeClaim CRD installed: no NodeClaim to read.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        ..Taint::default()
    }
}

fn ready_condition(
    status: &str,
    reason: &str,
    message: &str,
    now: k8s_openapi::jiff::Timestamp,
) -> Value {
    json!({
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": Time(now),
        "lastTransitionTime": Time(now),
    })
}

fn node_info(instance: &Instance) -> Value {
    let label = |key: &str| {
        instance
            .labels
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    json!({
        "architecture": label(labels::ARCH),
        "operatingSystem": label(labels::OS),
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": KUBELET_VERSION,
        "containerRuntimeVersion": "containerd://1.7.27",
        "kernelVersion": "6.1.0",
        "osImage": "Amazon Linux 2023",
        "machineID": instance.provider_id.rsplit('/').next().unwrap_or(""),
        "systemUUID": instance.provider_id.rsplit('/').next().unwrap_or(""),
        "bootID": instance.provider_id.rsplit('/').next().unwrap_or(""),
    })
}

/// The instance's EC2 private DNS name and IP (`ip-10-0-0-7.ec2.internal`),
/// from its sequential instance ID.
fn private_dns(instance: &Instance) -> (String, String) {
    let id = instance
        .provider_id
        .rsplit('/')
        .next()
        .and_then(|i| i.strip_prefix("i-"))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| fnv(&instance.provider_id));
    let (a, b, c) = ((id >> 16) & 0xff, (id >> 8) & 0xff, id & 0xff);
    let ip = format!("10.{a}.{b}.{c}");
    let region = instance
        .labels
        .iter()
        .find(|(k, _)| k.as_str() == labels::REGION)
        .map_or("us-east-1".to_string(), |(_, v)| v.to_string());
    let domain = if region == "us-east-1" {
        "ec2.internal".to_string()
    } else {
        format!("{region}.compute.internal")
    };
    (format!("ip-10-{a}-{b}-{c}.{domain}"), ip)
}

/// The `n`th pod IP on the node at `host_ip`, from its own /24 range
/// (`10.a.b.c` → `100.c.b.n`), so pods of different nodes never share one.
fn pod_ip(host_ip: &str, n: u32) -> String {
    let octets: Vec<&str> = host_ip.split('.').collect();
    let (b, c) = (
        octets.get(2).copied().unwrap_or("0"),
        octets.get(3).copied().unwrap_or("0"),
    );
    format!("100.{c}.{b}.{}", n % 254 + 1)
}

/// A resource list as the kubelet reports it.
fn quantities(r: &Resources) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert(
        "cpu".into(),
        if r.cpu % 1000 == 0 {
            (r.cpu / 1000).to_string()
        } else {
            format!("{}m", r.cpu)
        },
    );
    m.insert("memory".into(), bytes(r.memory));
    m.insert("pods".into(), r.pods.to_string());
    if r.ephemeral > 0 {
        m.insert("ephemeral-storage".into(), bytes(r.ephemeral));
    }
    for (k, v) in &r.extended {
        m.insert(k.to_string(), v.to_string());
    }
    m
}

fn bytes(b: i64) -> String {
    if b % 1024 == 0 {
        format!("{}Ki", b / 1024)
    } else {
        b.to_string()
    }
}

/// FNV-1a: stable made-up IDs.
pub(crate) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists_are_kubernetes_quantities() {
        let mut r = Resources::new(1930, 7_918_472 * 1024);
        r.pods = 29;
        let q = quantities(&r);
        assert_eq!(q["cpu"], "1930m");
        assert_eq!(q["memory"], "7918472Ki");
        assert_eq!(q["pods"], "29");
        assert_eq!(quantities(&Resources::new(2000, 1000))["cpu"], "2");
        assert_eq!(quantities(&Resources::new(2000, 1000))["memory"], "1000");
    }

    #[test]
    fn pods_of_different_nodes_get_different_ips() {
        assert_ne!(pod_ip("10.0.0.1", 1), pod_ip("10.0.0.2", 1));
        assert_ne!(pod_ip("10.0.0.1", 1), pod_ip("10.0.0.1", 2));
    }
}
