//! A kubeconfig for the server, for kubectl and any other client.

/// A kubeconfig with one cluster, context and user for `url`. The server
/// has no authentication, so the user carries no credentials.
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: dovetail-dev
  cluster:
    server: {url}
contexts:
- name: dovetail-dev
  context:
    cluster: dovetail-dev
    user: dovetail-dev
    namespace: default
current-context: dovetail-dev
users:
- name: dovetail-dev
  user: {{}}
preferences: {{}}
"
    )
}
