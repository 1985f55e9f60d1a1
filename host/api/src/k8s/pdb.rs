//! PodDisruptionBudgets: the pods they cover and how many may go.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use dovetail_core::model;
use dovetail_core::sym::Sym;

use crate::error::{ErrorKind, Path};

use super::object::namespace_of;
use super::report::Report;
use super::selectors::{label_selector, nothing};
use super::{ConvertError, Converted, ObjectRef, WarningReason};

const KIND: &str = "PodDisruptionBudget";

/// A PodDisruptionBudget with the `disruptionsAllowed` its status reports
/// (0, with a warning, when it has no status: see [`pdb_rule`] to compute
/// it). A budget without a selector covers no pod, as in `policy/v1`.
pub fn pdb(
    pdb: &PodDisruptionBudget,
) -> Result<Converted<model::PodDisruptionBudget>, ConvertError> {
    let meta = &pdb.metadata;
    let mut report = Report::new(ObjectRef::namespaced(KIND, meta));
    let root = Path::root("");
    let name = meta.name.clone().unwrap_or_default();
    if name.is_empty() {
        report.required(
            &root.field("metadata").field("name"),
            "give the budget a name",
        );
    }
    let spec_path = root.field("spec");
    let spec = pdb.spec.as_ref();
    let selector = match spec.and_then(|s| s.selector.as_ref()) {
        Some(s) => label_selector(Some(s), &spec_path.field("selector"), &mut report),
        None => nothing(),
    };
    rule(pdb, &mut report);
    if spec.and_then(|s| s.unhealthy_pod_eviction_policy.as_deref()) == Some("AlwaysAllow") {
        report.warn(
            &spec_path.field("unhealthyPodEvictionPolicy"),
            WarningReason::AlwaysAllowUnhealthy,
        );
    }
    let disruptions_allowed = match &pdb.status {
        Some(s) => s.disruptions_allowed,
        None => {
            report.warn(
                &root.field("status").field("disruptionsAllowed"),
                WarningReason::MissingDisruptionStatus,
            );
            0
        }
    };
    report.finish(model::PodDisruptionBudget {
        namespace: Sym::new(namespace_of(meta)),
        name: Sym::new(&name),
        selector,
        disruptions_allowed,
    })
}

/// A number of pods, or a share of the pods a budget expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdbAmount {
    Count(u32),
    Percent(u32),
}

impl PdbAmount {
    /// Pods out of `expected`, rounded up as the disruption controller does.
    pub fn of(self, expected: u32) -> u32 {
        match self {
            Self::Count(n) => n,
            Self::Percent(p) => (u64::from(p) * u64::from(expected)).div_ceil(100) as u32,
        }
    }
}

/// `minAvailable` or `maxUnavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdbRule {
    MinAvailable(PdbAmount),
    MaxUnavailable(PdbAmount),
}

impl PdbRule {
    /// How many of the covered pods may be disrupted now, as the disruption
    /// controller computes `disruptionsAllowed`: `expected` pods (the
    /// workloads' replicas), `healthy` of them ready.
    pub fn disruptions_allowed(self, expected: u32, healthy: u32) -> u32 {
        let desired = match self {
            Self::MinAvailable(a) => a.of(expected),
            Self::MaxUnavailable(a) => expected.saturating_sub(a.of(expected)),
        };
        healthy.saturating_sub(desired)
    }
}

/// The budget's rule; `None` when it gives neither (it then never blocks).
pub fn pdb_rule(pdb: &PodDisruptionBudget) -> Result<Option<PdbRule>, ConvertError> {
    let mut report = Report::new(ObjectRef::namespaced(KIND, &pdb.metadata));
    let rule = rule(pdb, &mut report);
    report.finish(rule).map(|c| c.value)
}

fn rule(pdb: &PodDisruptionBudget, report: &mut Report) -> Option<PdbRule> {
    let spec = pdb.spec.as_ref()?;
    let at = Path::root("spec");
    match (&spec.min_available, &spec.max_unavailable) {
        (Some(_), Some(_)) => {
            report.error(
                &at.field("maxUnavailable"),
                ErrorKind::Forbidden,
                "is given with minAvailable",
                "give one of minAvailable and maxUnavailable",
            );
            None
        }
        (Some(v), None) => amount(v, &at.field("minAvailable"), report).map(PdbRule::MinAvailable),
        (None, Some(v)) => {
            amount(v, &at.field("maxUnavailable"), report).map(PdbRule::MaxUnavailable)
        }
        (None, None) => None,
    }
}

fn amount(v: &IntOrString, path: &Path, report: &mut Report) -> Option<PdbAmount> {
    let bad = |report: &mut Report, what: String| {
        report.error(
            path,
            ErrorKind::Invalid,
            what,
            "give a number of pods such as `1` or a percentage such as `50%`",
        );
        None
    };
    match v {
        IntOrString::Int(n) => match u32::try_from(*n) {
            Ok(n) => Some(PdbAmount::Count(n)),
            Err(_) => bad(report, format!("{n} is negative")),
        },
        IntOrString::String(s) => match s.strip_suffix('%').map(str::parse::<u32>) {
            Some(Ok(p)) if p <= 100 => Some(PdbAmount::Percent(p)),
            _ => bad(
                report,
                format!("`{s}` is not a number of pods or a percentage"),
            ),
        },
    }
}
