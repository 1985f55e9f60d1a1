//! `dovetail snapshot`: a live cluster's scheduling state as a scenario `dovetail sim` runs.
//!
//! Read-only: it lists, never writes. Only what decisions depend on is kept; environment
//! values, commands, probes, secret and config volumes, EC2NodeClass user data and every
//! annotation Dovetail does not read are dropped, so the file can be shared.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams};
use serde_json::{Value, json};

use crate::output::OutputFile;

#[derive(Args)]
pub struct SnapshotArgs {
    /// Kubeconfig to read the cluster through; default `$KUBECONFIG` or `~/.kube/config`.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig; default its current context.
    #[arg(long)]
    context: Option<String>,
    /// Where to write the scenario; default stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// How long `dovetail sim` runs the scenario.
    #[arg(long, default_value = "1h")]
    duration: String,
}

/// The kinds decisions depend on: (group, version, kind, plural).
const KINDS: [(&str, &str, &str, &str); 8] = [
    ("", "v1", "Namespace", "namespaces"),
    ("karpenter.k8s.aws", "v1", "EC2NodeClass", "ec2nodeclasses"),
    ("karpenter.sh", "v1", "NodePool", "nodepools"),
    ("karpenter.sh", "v1", "NodeClaim", "nodeclaims"),
    ("", "v1", "Node", "nodes"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
    ),
    ("", "v1", "Pod", "pods"),
];

pub fn run(args: SnapshotArgs) -> Result<()> {
    // Before reading the cluster: a bad output path fails now.
    let output = (args.output.as_deref())
        .map(|p| OutputFile::open("--output", p, "the snapshot"))
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let objects = runtime.block_on(read(&args))?;
    let mut counts: Vec<String> = Vec::new();
    for (_, _, kind, plural) in KINDS {
        let n = objects.iter().filter(|o| o["kind"] == kind).count();
        counts.push(format!("{n} {plural}"));
    }
    let scenario = json!({
        "duration": args.duration,
        "cluster": { "manifests": objects },
    });
    let text = format!(
        "# A snapshot of a cluster's scheduling state, taken by `dovetail snapshot`:\n# {}.\n# Environment values, commands, probes, secret and config volumes, user data and\n# annotations Dovetail does not read were left out. Run it: dovetail sim <this file>\n{}",
        counts.join(", "),
        serde_norway::to_string(&scenario).context("writing the scenario as YAML")?
    );
    match output {
        Some(file) => file.write(text.as_bytes())?,
        None => crate::output::stdout("the snapshot").text(&text)?,
    }
    eprintln!("snapshot: {}", counts.join(", "));
    Ok(())
}

async fn read(args: &SnapshotArgs) -> Result<Vec<Value>> {
    let client =
        crate::kube_client::from_kubeconfig(args.kubeconfig.as_deref(), args.context.clone())
            .await?;
    let mut objects = Vec::new();
    for (group, version, kind, plural) in KINDS {
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: if group.is_empty() {
                version.into()
            } else {
                format!("{group}/{version}")
            },
            kind: kind.into(),
            plural: plural.into(),
        };
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let mut params = ListParams::default().limit(500);
        loop {
            let page = match api.list(&params).await {
                Ok(page) => page,
                Err(kube::Error::Api(e)) if e.code == 404 && !group.is_empty() => {
                    eprintln!(
                        "snapshot: the cluster serves no {kind}s ({group}/{version} is not installed); the scenario has none"
                    );
                    break;
                }
                Err(e) => return Err(e).with_context(|| format!("listing {plural}")),
            };
            for item in page.items {
                let mut v = serde_json::to_value(&item)?;
                v["apiVersion"] = json!(resource.api_version);
                v["kind"] = json!(kind);
                objects.push(keep_what_decisions_read(v));
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = ListParams::default().limit(500).continue_token(&token),
                None => break,
            }
        }
    }
    Ok(objects)
}

/// Annotations a decision reads; every other annotation is dropped.
fn annotation_kept(key: &str) -> bool {
    key.starts_with("karpenter.sh/")
        || key.starts_with("karpenter.k8s.aws/")
        || key.starts_with("dovetail.dev/")
        || key == "controller.kubernetes.io/pod-deletion-cost"
        || key == "cluster-autoscaler.kubernetes.io/safe-to-evict"
}

/// The object with only what scheduling and disruption decisions read.
fn keep_what_decisions_read(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, _| {
            matches!(
                k.as_str(),
                "name"
                    | "namespace"
                    | "uid"
                    | "labels"
                    | "annotations"
                    | "ownerReferences"
                    | "creationTimestamp"
                    | "deletionTimestamp"
                    | "finalizers"
                    | "generation"
            )
        });
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.retain(|k, _| annotation_kept(k));
        }
    }
    match v["kind"].as_str() {
        Some("Pod") => {
            if let Some(spec) = v.get_mut("spec") {
                keep_pod_spec(spec);
            }
            if let Some(status) = v.get_mut("status").and_then(Value::as_object_mut) {
                status.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "phase" | "conditions" | "nominatedNodeName" | "startTime"
                    )
                });
            }
        }
        Some("DaemonSet") => {
            if let Some(spec) = v.pointer_mut("/spec/template/spec") {
                keep_pod_spec(spec);
            }
            if let Some(meta) = v
                .pointer_mut("/spec/template/metadata")
                .and_then(Value::as_object_mut)
            {
                meta.retain(|k, _| k == "labels");
            }
            if let Some(o) = v.as_object_mut() {
                o.remove("status");
            }
        }
        Some("Node") => {
            if let Some(status) = v.get_mut("status").and_then(Value::as_object_mut) {
                status
                    .retain(|k, _| matches!(k.as_str(), "capacity" | "allocatable" | "conditions"));
            }
        }
        Some("EC2NodeClass") => {
            // User data may carry credentials; the simulator does not read it.
            if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("userData");
            }
        }
        _ => {}
    }
    v
}

/// A pod spec with only what placement reads: containers' names, images, requests, limits and
/// ports, and the pod's selectors, affinity, tolerations, spread, priority and claim volumes.
fn keep_pod_spec(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                c.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "name" | "image" | "resources" | "ports" | "restartPolicy"
                    )
                });
            }
        }
    }
    spec.remove("ephemeralContainers");
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        volumes.retain(|v| v.get("persistentVolumeClaim").is_some());
        for v in volumes.iter_mut().filter_map(Value::as_object_mut) {
            v.retain(|k, _| k == "name" || k == "persistentVolumeClaim");
        }
    }
    spec.retain(|k, _| {
        matches!(
            k.as_str(),
            "containers"
                | "initContainers"
                | "volumes"
                | "nodeName"
                | "nodeSelector"
                | "affinity"
                | "tolerations"
                | "topologySpreadConstraints"
                | "priority"
                | "priorityClassName"
                | "schedulerName"
                | "overhead"
                | "resources"
                | "hostNetwork"
                | "terminationGracePeriodSeconds"
                | "restartPolicy"
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_environment_and_unread_annotations_are_dropped() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web", "namespace": "shop", "resourceVersion": "7", "managedFields": [{}],
                "annotations": { "karpenter.sh/do-not-disrupt": "true", "vault.io/token": "s3cr3t" },
            },
            "spec": {
                "serviceAccountName": "web",
                "containers": [{
                    "name": "app", "image": "app:1",
                    "env": [{ "name": "PASSWORD", "value": "hunter2" }],
                    "envFrom": [{ "secretRef": { "name": "db" } }],
                    "command": ["run", "--token=abc"],
                    "resources": { "requests": { "cpu": "1" } },
                }],
                "volumes": [
                    { "name": "creds", "secret": { "secretName": "db" } },
                    { "name": "data", "persistentVolumeClaim": { "claimName": "data-0" } },
                ],
                "nodeSelector": { "kubernetes.io/arch": "arm64" },
            },
            "status": { "phase": "Pending", "podIP": "10.0.0.1" },
        });
        let kept = keep_what_decisions_read(pod);
        let text = kept.to_string();
        for secret in [
            "hunter2",
            "PASSWORD",
            "secretRef",
            "abc",
            "s3cr3t",
            "creds",
            "managedFields",
            "10.0.0.1",
        ] {
            assert!(!text.contains(secret), "{secret} survived: {text}");
        }
        assert_eq!(
            kept["metadata"]["annotations"],
            json!({ "karpenter.sh/do-not-disrupt": "true" })
        );
        assert_eq!(
            kept["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "1"
        );
        assert_eq!(
            kept["spec"]["volumes"],
            json!([{ "name": "data", "persistentVolumeClaim": { "claimName": "data-0" } }])
        );
        assert_eq!(kept["spec"]["nodeSelector"]["kubernetes.io/arch"], "arm64");
        assert_eq!(kept["status"], json!({ "phase": "Pending" }));
    }

    #[test]
    fn user_data_is_dropped_from_node_classes() {
        let class = json!({ "kind": "EC2NodeClass", "metadata": { "name": "default" }, "spec": { "role": "r", "userData": "TOKEN=1" } });
        let kept = keep_what_decisions_read(class);
        assert_eq!(kept["spec"], json!({ "role": "r" }));
    }
}
