//! `dovetail policy push`: validate a policy here, then put it in the cluster as the ConfigMap
//! the controller watches, in one step through the user's kubeconfig.
//!
//! With `--url` the ConfigMap names the component (and pins its sha256) instead of holding it,
//! for components larger than a ConfigMap: nothing is uploaded, the component must already be
//! there. `--print` prints the ConfigMap instead of applying it.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::Args;
use dovetail_core::policy::types::Decision;
use dovetail_kube::policy_configmaps::{
    MODE_LABEL, OutcomeKind, POLICY_LABEL, PolicyStatus, STATUS_ANNOTATION, content_digest,
};
use dovetail_kube::policy_remote::{self, UrlError};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::output::{self, outln};
use crate::policy_cmd::{DecisionArg, RunOpts};

const FIELD_MANAGER: &str = "dovetail-policy-push";

#[derive(Args)]
pub struct PushArgs {
    /// The policy component (`.wasm`); with `--url` and `--sha256` it may be left out.
    file: Option<PathBuf>,
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
    /// Name the component by URL instead of putting it in the ConfigMap (for one larger than a
    /// ConfigMap's 1 MiB): `https://…`, `http://…` or `oci://host/repository:tag`. Nothing is
    /// uploaded: the component must already be there.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The sha256 of the component at `--url` (64 hex digits) [default: FILE's]
    #[arg(long, value_name = "HEX", requires = "url")]
    sha256: Option<String>,
    /// Print the ConfigMap as YAML instead of applying it (e.g. for `kubectl apply -f -` or a
    /// GitOps repository).
    #[arg(long)]
    print: bool,
    /// Wait until the controller reports on this version (accepted, or refused with why), at
    /// most SECONDS; exit 1 when it is refused or nothing reports in time.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "180",
          conflicts_with = "print", value_parser = crate::limits::PUSH_WAIT_SECONDS.number(),
          allow_negative_numbers = true)]
    wait: Option<u64>,
    /// Kubeconfig; default `$KUBECONFIG` or `~/.kube/config`.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig; default its current context.
    #[arg(long)]
    context: Option<String>,
    #[command(flatten)]
    opts: RunOpts,
}

/// What the ConfigMap says of the policy, when there is a file to read it from.
struct Checked {
    name: String,
    version: String,
    digest: String,
    bytes: Vec<u8>,
}

/// Reads and validates FILE as the controller would, so a broken policy never reaches the
/// cluster.
fn check(args: &PushArgs, file: &std::path::Path, decision: Decision) -> Result<Checked> {
    let key = decision.as_str();
    let bytes = dovetail_input::read_bytes(file, "policy", dovetail_input::caps::POLICY)?;
    let policy = args.opts.load(file)?.1;
    if !policy.info.decisions.contains(&decision) {
        bail!(
            "{} ({} {}) does not implement {key}; it implements {}. Push it with --decision {}",
            file.display(),
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
    Ok(Checked {
        name: policy.info.name.clone(),
        version: policy.info.version.clone(),
        digest: policy.digest.clone(),
        bytes,
    })
}

/// The `--url` and `--sha256` to write, checked as the controller will read them.
fn remote(args: &PushArgs, url: &str, checked: Option<&Checked>) -> Result<(String, String)> {
    match policy_remote::parse_url(url) {
        Ok(_) => {}
        Err(UrlError::UnknownScheme) => bail!(
            "--url `{url}` is not an https://, http:// or oci:// URL: give the address the controller fetches the component from, e.g. https://example.com/policy.wasm or oci://ghcr.io/acme/policy:1.0"
        ),
        Err(UrlError::Malformed(why)) => bail!(
            "--url `{url}` names no component: {why}; e.g. https://example.com/policy.wasm or oci://ghcr.io/acme/policy:1.0"
        ),
    }
    let of_file = checked.map(|c| crate::policy_fetch::sha256_hex(&c.bytes));
    let sha256 = match (&args.sha256, of_file) {
        (Some(given), of_file) => {
            let Some(given) = policy_remote::parse_sha256(given) else {
                bail!(
                    "--sha256 `{given}` is not 64 lowercase hex digits: give it as `sha256sum policy.wasm | cut -d' ' -f1` prints it, or leave it out to compute it from FILE"
                );
            };
            if let Some(actual) = of_file
                && actual != given
            {
                bail!(
                    "--sha256 {given} is not the sha256 of {} ({actual}): the controller would refuse the component; leave --sha256 out to use FILE's, or give the FILE that is at the URL",
                    args.file
                        .as_deref()
                        .unwrap_or_else(|| std::path::Path::new("FILE"))
                        .display()
                );
            }
            given
        }
        (None, Some(actual)) => actual,
        (None, None) => unreachable!("FILE or --sha256 is checked first"),
    };
    Ok((url.trim().to_string(), sha256))
}

pub fn run(args: &PushArgs) -> Result<()> {
    let decision = Decision::from(args.decision);
    let key = decision.as_str();
    let checked = match (&args.file, &args.url, &args.sha256) {
        (Some(file), _, _) => Some(check(args, file, decision)?),
        (None, Some(_), Some(_)) => None,
        (None, Some(_), None) => bail!(
            "--url needs the component's digest: give the component FILE (validated here, and its sha256 computed), or --sha256 HEX"
        ),
        (None, None, _) => bail!(
            "give the policy component FILE to push (or --url URL with --sha256 HEX to name one already published)"
        ),
    };
    let remote = match &args.url {
        Some(url) => Some(remote(args, url, checked.as_ref())?),
        None => None,
    };
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
        },
    });
    if let Some(c) = &checked {
        cm["metadata"]["annotations"] = json!({
            "dovetail.dev/policy-name": c.name,
            "dovetail.dev/policy-version": c.version,
            "dovetail.dev/policy-digest": c.digest,
        });
    }
    let mut data = serde_json::Map::new();
    match (&remote, &checked) {
        (Some((url, sha256)), _) => {
            data.insert(format!("{key}.url"), json!(url));
            data.insert(format!("{key}.sha256"), json!(sha256));
        }
        (None, Some(c)) => {
            cm["binaryData"] = json!({
                format!("{key}.wasm"): base64::engine::general_purpose::STANDARD.encode(&c.bytes),
            });
        }
        (None, None) => unreachable!("without --url there is a FILE"),
    }
    if let Some(config) = &config {
        data.insert(format!("{key}.json"), json!(config));
    }
    if !data.is_empty() {
        cm["data"] = serde_json::Value::Object(data);
    }
    let out = output::stdout("the push result");
    if args.print {
        let yaml = serde_norway::to_string(&cm).context("writing the configmap as YAML")?;
        outln!(out, "{}", yaml.trim_end())?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (api, applied) = runtime.block_on(async {
        let client =
            crate::kube_client::from_kubeconfig(args.kubeconfig.as_deref(), args.context.clone())
                .await?;
        let api: Api<ConfigMap> = Api::namespaced(client, &args.namespace);
        // Server-side apply as one manager: pushing again replaces what the last push set,
        // including a config it no longer carries.
        let applied = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&cm),
            )
            .await
            .with_context(|| format!("writing configmap {}/{name}", args.namespace))?;
        anyhow::Ok((api, applied))
    })?;
    let what = match &checked {
        Some(c) => format!("{key} policy {} {} ({})", c.name, c.version, c.digest),
        None => format!("{key} policy"),
    };
    let source = match &remote {
        Some((url, sha256)) => format!(", to be fetched from {url} (sha256 {sha256})"),
        None => String::new(),
    };
    outln!(
        out,
        "pushed {what} to configmap {}/{name}{}{source}",
        args.namespace,
        if args.shadow { " in shadow mode" } else { "" }
    )?;
    if let Some(seconds) = args.wait {
        let status = runtime.block_on(wait_for_report(
            &api,
            &applied,
            std::time::Duration::from_secs(seconds),
        ))?;
        match status.outcome {
            OutcomeKind::Accepted => outln!(out, "accepted: {}", status.message)?,
            OutcomeKind::Refused => bail!(
                "the controller refused configmap {}/{name}: {}",
                args.namespace,
                status.message
            ),
        }
    }
    Ok(())
}

/// Polls the ConfigMap until the controller's status annotation is about
/// the content just applied (an older version's status does not count).
async fn wait_for_report(
    api: &Api<ConfigMap>,
    applied: &ConfigMap,
    limit: std::time::Duration,
) -> Result<PolicyStatus> {
    let name = applied.metadata.name.clone().unwrap_or_default();
    let content = content_digest(applied);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let cm = api
            .get(&name)
            .await
            .with_context(|| format!("reading configmap {name}"))?;
        let status = cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(STATUS_ANNOTATION))
            .and_then(|s| serde_json::from_str::<PolicyStatus>(s).ok());
        if let Some(status) = status.filter(|s| s.content == content) {
            return Ok(status);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "no controller reported on configmap {name} within {}s: is `dovetail controller` running and watching this namespace (POLICY_NAMESPACE)? A large component takes longer to compile: raise --wait",
                limit.as_secs()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
