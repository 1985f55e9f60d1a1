//! A Kubernetes client from the user's kubeconfig, for the commands that talk to a cluster.

use std::path::Path;

use anyhow::{Context, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// From `kubeconfig` (or `$KUBECONFIG`, then `~/.kube/config`) and `context` (or its current one).
pub async fn from_kubeconfig(kubeconfig: Option<&Path>, context: Option<String>) -> Result<Client> {
    let options = KubeConfigOptions {
        context,
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        None => Config::from_kubeconfig(&options)
            .await
            .context("no kubeconfig found: pass --kubeconfig or set KUBECONFIG")?,
    };
    Ok(Client::try_from(config)?)
}
