//! Test scaffolding (feature `testing`): objects the crate's tests and the
//! controller's tests build the same way.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// A ConfigMap `namespace/name` with these labels, `binaryData` and `data`:
/// the shape a policy is deployed in.
pub fn configmap(
    namespace: &str,
    name: &str,
    labels: &[(&str, &str)],
    binary: &[(&str, &[u8])],
    data: &[(&str, &str)],
) -> ConfigMap {
    let strings = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(strings(labels)),
            ..ObjectMeta::default()
        },
        binary_data: Some(
            binary
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                .collect(),
        ),
        data: Some(strings(data)),
        ..ConfigMap::default()
    }
}
