//! A kubeconfig for the server, for kubectl and any other client.

/// A kubeconfig with one cluster, context and user for `url`; the user
/// carries no credentials, as the server asks for none unless access control
/// is on.
pub fn kubeconfig(url: &str) -> String {
    config(url, "dovetail-dev", "{}")
}

/// A kubeconfig whose user authenticates with the bearer `token`, for a
/// server with access control on (see [`crate::AccessControl`]). For an
/// `https://` URL ([`crate::ApiServer::https_url`], which kubectl and helm
/// need: they send credentials only over https) it trusts the server's
/// certificate authority; kube-rs clients may use the plain `http://` URL.
pub fn kubeconfig_with_token(url: &str, token: &str) -> String {
    // Quoted, so YAML reads a token as a string whatever its characters.
    config(url, "dovetail-dev", &format!("\n    token: \"{token}\""))
}

fn config(url: &str, name: &str, user: &str) -> String {
    use base64::Engine;
    let ca = if url.starts_with("https://") {
        format!(
            "\n    certificate-authority-data: {}",
            base64::engine::general_purpose::STANDARD.encode(crate::tls::CA_PEM)
        )
    } else {
        String::new()
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {url}{ca}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
    namespace: default
current-context: {name}
users:
- name: {name}
  user: {user}
preferences: {{}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_kubeconfig_carries_the_token_and_trusts_the_server_over_https() {
        let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig_with_token(
            "https://127.0.0.1:6443",
            "t0ken",
        ))
        .unwrap();
        let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(serde_json::to_value(user).unwrap()["token"], "t0ken");
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert!(cluster.certificate_authority_data.is_some());
        let plain =
            kube::config::Kubeconfig::from_yaml(&kubeconfig_with_token("http://127.0.0.1:1", "t"))
                .unwrap();
        assert!(
            plain.clusters[0]
                .cluster
                .as_ref()
                .unwrap()
                .certificate_authority_data
                .is_none()
        );
    }
}
