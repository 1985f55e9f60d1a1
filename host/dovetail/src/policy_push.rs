//! `dovetail policy push`: validate a policy here, then put it in the cluster as the ConfigMap
//! the controller watches, in one step through the user's kubeconfig.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::Args;
use dovetail_core::policy::types::Decision;
use dovetail_kube::policy_configmaps::{MODE_LABEL, POLICY_LABEL};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::output::{self, outln};
use crate::policy_cmd::{DecisionArg, RunOpts};

const FIELD_MANAGER: &str = "dovetail-policy-push";

#[derive(Args)]
pub struct PushArgs {
    /// The policy component (`.wasm`).
    file: PathBuf,
    /// Which decision it makes in the cluster.
    #[arg(long, value_enum)]
    decision: DecisionArg,
    /// Run it in shadow mode: beside the live policy, logged and counted, never acting.
    #[arg(long)]
    shadow: bool,
    /// ConfigMap name; default `dovetail-<decision>` (`-shadow` appended in shadow mode).
    #[arg(long)]
    name: Option<String>,
    /// The controller's namespace.
    #[arg(long, default_value = "kube-system")]
    namespace: String,
    /// Kubeconfig; default `$KUBECONFIG` or `~/.kube/config`.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig; default its current context.
    #[arg(long)]
    context: Option<String>,
    #[command(flatten)]
    opts: RunOpts,
}

pub fn run(args: &PushArgs) -> Result<()> {
    let decision = Decision::from(args.decision);
    let key = decision.as_str();
    let bytes = dovetail_input::read_bytes(&args.file, "policy", dovetail_input::caps::POLICY)?;
    // The same checks the controller makes before swapping, so a broken policy never
    // reaches the cluster.
    let policy = args.opts.load(&args.file)?.1;
    if !policy.info.decisions.contains(&decision) {
        bail!(
            "{} ({} {}) does not implement {key}; it implements {}. Push it with --decision {}",
            args.file.display(),
            policy.info.name,
            policy.info.version,
            policy
                .info
                .decisions
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            policy.info.decisions.first().map_or("…", |d| d.as_str())
        );
    }
    let config = args.opts.config()?;
    let name = args.name.clone().unwrap_or_else(|| {
        if args.shadow {
            format!("dovetail-{key}-shadow")
        } else {
            format!("dovetail-{key}")
        }
    });
    let mut labels = json!({ POLICY_LABEL: key });
    if args.shadow {
        labels[MODE_LABEL] = json!("shadow");
    }
    let mut cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": args.namespace,
            "labels": labels,
            "annotations": {
                "dovetail.dev/policy-name": policy.info.name,
                "dovetail.dev/policy-version": policy.info.version,
                "dovetail.dev/policy-digest": policy.digest,
            },
        },
        "binaryData": {
            format!("{key}.wasm"): base64::engine::general_purpose::STANDARD.encode(&bytes),
        },
    });
    if let Some(config) = &config {
        cm["data"] = json!({ format!("{key}.json"): config });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let client =
            crate::kube_client::from_kubeconfig(args.kubeconfig.as_deref(), args.context.clone())
                .await?;
        let api: Api<ConfigMap> = Api::namespaced(client, &args.namespace);
        // Server-side apply as one manager: pushing again replaces what the last push set,
        // including a config it no longer carries.
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await
        .with_context(|| format!("writing configmap {}/{name}", args.namespace))
    })?;
    let out = output::stdout("the push result");
    outln!(
        out,
        "pushed {key} policy {} {} ({}) to configmap {}/{name}{}",
        policy.info.name,
        policy.info.version,
        policy.digest,
        args.namespace,
        if args.shadow { " in shadow mode" } else { "" }
    )?;
    Ok(())
}
