//! Resource lists: Kubernetes quantities to core's exact integers.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use dovetail_core::resources::{self, QuantityError, Resources};

use crate::error::{ErrorKind, Path};

use super::report::Report;

/// `name`'s quantity: CPU in millicores, anything else in whole units
/// (rounded up, as Kubernetes rounds requests).
pub(crate) fn quantity(name: &str, q: &Quantity, path: &Path, report: &mut Report) -> Option<i64> {
    let parsed = if name == resources::CPU {
        resources::parse_milli(&q.0)
    } else {
        resources::parse_units(&q.0)
    };
    match parsed {
        Ok(v) if v < 0 => {
            report.error(
                path,
                ErrorKind::Invalid,
                format!("`{}` is negative", q.0),
                "give a quantity of 0 or more",
            );
            None
        }
        Ok(v) => Some(v),
        Err(QuantityError::Malformed(_)) => {
            report.error(
                path,
                ErrorKind::Invalid,
                format!("`{}` is not a Kubernetes quantity", q.0),
                "write a quantity such as `500m`, `2`, `512Mi` or `1Gi`",
            );
            None
        }
        Err(QuantityError::Overflow(_)) => {
            report.error(
                path,
                ErrorKind::Invalid,
                format!("`{}` is too large", q.0),
                "write a smaller quantity",
            );
            None
        }
    }
}

/// A resource list at `path` (entries at `path[name]`).
pub(crate) fn resource_list(
    list: Option<&BTreeMap<String, Quantity>>,
    path: &Path,
    report: &mut Report,
) -> Resources {
    let mut r = Resources::default();
    for (name, q) in list.into_iter().flatten() {
        if let Some(v) = quantity(name, q, &path.key(name), report) {
            r.set(name, v);
        }
    }
    r
}
