//! EC2NodeClass status: what the AWS adapter resolved (subnets, security
//! groups, AMIs, instance profile) and its conditions, written through
//! `/status` only when it differs from the stored status.

use dovetail_api::EC2NodeClass;
use dovetail_api::ec2nodeclass::EC2NodeClassStatus;
use dovetail_control::actions::ActionError;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::error::{self, Target};
use super::merge;

/// Writes `status` to the EC2NodeClass `current` (as last read). The patch
/// carries `current`'s resourceVersion, so a status computed from an old
/// object loses to a newer write and is computed again. Returns the class
/// as stored after the write; `None` when nothing changed or it is gone.
pub async fn write_node_class_status(
    client: &kube::Client,
    field_manager: &str,
    current: &EC2NodeClass,
    status: &EC2NodeClassStatus,
) -> Result<Option<EC2NodeClass>, ActionError> {
    let name = current.metadata.name.as_deref().unwrap_or_default();
    let target = Target::new("patch", "ec2nodeclasses/status", name);
    let old = serde_json::to_value(current.status.clone().unwrap_or_default())
        .expect("a status serialises");
    let new = serde_json::to_value(status).expect("a status serialises");
    let Some(diff) = merge::diff(&old, &new) else {
        return Ok(None);
    };
    let api: Api<EC2NodeClass> = Api::all(client.clone());
    let params = PatchParams {
        field_manager: Some(field_manager.to_owned()),
        ..PatchParams::default()
    };
    let mut patch = json!({ "status": diff });
    if let Some(rv) = &current.metadata.resource_version {
        patch["metadata"] = json!({ "resourceVersion": rv });
    }
    match api.patch_status(name, &params, &Patch::Merge(patch)).await {
        Ok(class) => Ok(Some(class)),
        Err(e) if error::is(&e, 404) => Ok(None),
        Err(e) => Err(target.failed(&e)),
    }
}
