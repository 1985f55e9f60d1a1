//! Karpenter's v1 API as Rust types: `karpenter.sh/v1` [`NodePool`] and
//! [`NodeClaim`], `karpenter.k8s.aws/v1` [`EC2NodeClass`].
//!
//! - Every field of spec and status, with Kubernetes' JSON names; reading
//!   applies the CRDs' defaults, as the API server does, and writing emits
//!   what was read (durations and unknown enum values as written).
//! - `validate()` on each kind checks the CRD's OpenAPI and CEL rules and the
//!   checks Karpenter's controllers make, and returns every problem with its
//!   field path and the fix ([`ValidationErrors`]).
//! - [`NodePool::to_core`] and [`EC2NodeClass::catalog_settings`] convert to
//!   `dovetail-core` values once, for the engines.
//! - [`k8s`]: Kubernetes objects (Pods, Nodes, DaemonSets, workloads'
//!   pod templates, PodDisruptionBudgets, Namespaces) to core values, with
//!   a warning for anything not carried over exactly.
//! - With the `kube` feature: `kube::Resource` impls, JSON schemas and the
//!   CRDs ([`crd::crds`]), which match Karpenter's so its manifests apply
//!   unchanged. Without it the crate needs no Kubernetes client crates.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// `new`, `name` and the `apiVersion`/`kind`/`metadata.name` checks of a
/// top-level kind whose module defines `API_VERSION` and `KIND`.
macro_rules! top_level {
    ($ty:ident, $spec:ident) => {
        impl $ty {
            /// An object named `name` with `spec`.
            pub fn new(name: &str, spec: $spec) -> Self {
                Self {
                    api_version: API_VERSION.into(),
                    kind: KIND.into(),
                    metadata: ObjectMeta {
                        name: Some(name.into()),
                        ..ObjectMeta::default()
                    },
                    spec,
                    status: None,
                }
            }

            pub fn name(&self) -> &str {
                self.metadata.name.as_deref().unwrap_or("")
            }

            /// Errors in `apiVersion`, `kind` and `metadata.name`, to start from.
            fn type_errors(&self) -> $crate::error::Errors {
                let mut errors = $crate::error::Errors::default();
                $crate::check_type(
                    &self.api_version,
                    &self.kind,
                    API_VERSION,
                    KIND,
                    self.metadata.name.as_deref(),
                    &mut errors,
                );
                errors
            }
        }
    };
}

pub mod condition;
mod convert;
pub mod duration;
pub mod ec2nodeclass;
mod enums;
pub mod error;
mod from_core;
pub mod k8s;
pub mod node_class_ref;
pub mod nodeclaim;
pub mod nodepool;
pub mod requirement;
pub mod rules;
pub mod taint;

#[cfg(feature = "kube")]
pub mod crd;

pub use condition::{Condition, ConditionStatus};
pub use convert::ConversionError;
pub use duration::{GoDuration, NillableDuration};
pub use ec2nodeclass::{EC2NodeClass, EC2NodeClassSpec};
pub use error::{ErrorKind, FieldError, ValidationErrors};
pub use node_class_ref::NodeClassReference;
pub use nodeclaim::{NodeClaim, NodeClaimSpec};
pub use nodepool::{NodePool, NodePoolSpec};
pub use requirement::{NodeSelectorRequirementWithMinValues, Operator};
pub use taint::{Taint, TaintEffect};

use error::{ErrorKind as Kind, Errors, Path};

/// `apiVersion`, `kind` and `metadata.name`.
fn check_type(
    api_version: &str,
    kind: &str,
    want_version: &str,
    want_kind: &str,
    name: Option<&str>,
    errors: &mut Errors,
) {
    if api_version != want_version {
        errors.push(
            &Path::root("apiVersion"),
            Kind::NotSupported,
            format!("`{api_version}` is not supported"),
            format!("use {want_version}"),
        );
    }
    if kind != want_kind {
        errors.push(
            &Path::root("kind"),
            Kind::NotSupported,
            format!("`{kind}` is not supported"),
            format!("use {want_kind}"),
        );
    }
    if name.is_none_or(str::is_empty) {
        errors.required(
            &Path::root("metadata").field("name"),
            "give the object a name",
        );
    }
}

/// Quantities in a resource map.
fn validate_quantities(map: &BTreeMap<String, Quantity>, path: &Path, errors: &mut Errors) {
    for (k, v) in map {
        errors.pattern(&path.key(k), &v.0, &rules::QUANTITY);
    }
}
