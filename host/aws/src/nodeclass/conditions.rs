//! The EC2NodeClass status conditions, kept the way Karpenter's condition
//! set keeps them: the root `Ready` follows its dependents, a transition
//! time moves only when a status changes, and every transition is an event.

use dovetail_api::condition::{Condition, ConditionStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The condition types the node-class resolution writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConditionType {
    Ready,
    AmisReady,
    SubnetsReady,
    SecurityGroupsReady,
    InstanceProfileReady,
    ValidationSucceeded,
}

impl ConditionType {
    /// The dependents of `Ready`, in the order they are written.
    pub const DEPENDENTS: [ConditionType; 5] = [
        ConditionType::AmisReady,
        ConditionType::SubnetsReady,
        ConditionType::SecurityGroupsReady,
        ConditionType::InstanceProfileReady,
        ConditionType::ValidationSucceeded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::AmisReady => "AMIsReady",
            Self::SubnetsReady => "SubnetsReady",
            Self::SecurityGroupsReady => "SecurityGroupsReady",
            Self::InstanceProfileReady => "InstanceProfileReady",
            Self::ValidationSucceeded => "ValidationSucceeded",
        }
    }
}

impl std::fmt::Display for ConditionType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What one dependent condition becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

impl Outcome {
    /// True, with the type as its reason and no message (as `SetTrue`).
    pub fn ready(type_: ConditionType) -> Self {
        Self {
            status: ConditionStatus::True,
            reason: type_.name().to_owned(),
            message: String::new(),
        }
    }

    pub fn not_ready(reason: &str, message: impl Into<String>) -> Self {
        Self {
            status: ConditionStatus::False,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    pub fn unknown(reason: &str, message: impl Into<String>) -> Self {
        Self {
            status: ConditionStatus::Unknown,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    /// The outcome a stored condition records.
    pub fn of(condition: &Condition) -> Self {
        Self {
            status: condition.status.clone(),
            reason: condition.reason.clone(),
            message: condition.message.clone(),
        }
    }
}

/// The events node-class resolution emits on the EC2NodeClass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A condition changed status (a `Normal` event whose reason is the
    /// condition type).
    ConditionTransitioned(ConditionType),
}

impl EventKind {
    /// The event's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::ConditionTransitioned(t) => t.name(),
        }
    }

    /// Whether it is a `Warning` event rather than a `Normal` one.
    pub fn is_warning(self) -> bool {
        match self {
            Self::ConditionTransitioned(_) => false,
        }
    }
}

const AWAITING_REASON: &str = "AwaitingReconciliation";
const AWAITING_MESSAGE: &str = "object is awaiting reconciliation";
/// Kubernetes caps a condition message at 32768 bytes.
const MAX_MESSAGE_CHARS: usize = 32_768 / 4;

/// The conditions after `outcomes` (dependents without one keep theirs, or
/// start Unknown), with `Ready` recomputed, and an event per status change.
/// Conditions of other types in `previous` are kept after these.
pub fn apply(
    previous: &[Condition],
    outcomes: &[(ConditionType, Outcome)],
    generation: Option<i64>,
    now: &Time,
) -> (Vec<Condition>, Vec<(EventKind, String)>) {
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut set = |type_: ConditionType, outcome: Outcome| {
        let stored = previous.iter().find(|c| c.type_ == type_.name());
        let before = stored.map_or(ConditionStatus::Unknown, |c| c.status.clone());
        let changed = stored.is_none_or(|c| c.status != outcome.status);
        let last_transition_time = match stored {
            Some(c) if !changed => c.last_transition_time.clone().or_else(|| Some(now.clone())),
            _ => Some(now.clone()),
        };
        if before != outcome.status {
            let mut message = format!(
                "Status condition transitioned, Type: {type_}, Status: {before} -> {}, Reason: {}",
                outcome.status, outcome.reason
            );
            if !outcome.message.is_empty() {
                message.push_str(", Message: ");
                message.push_str(&outcome.message);
            }
            events.push((EventKind::ConditionTransitioned(type_), message));
        }
        let condition = Condition {
            type_: type_.name().to_owned(),
            status: outcome.status,
            observed_generation: generation,
            last_transition_time,
            reason: outcome.reason,
            message: outcome.message.chars().take(MAX_MESSAGE_CHARS).collect(),
        };
        out.push(condition);
    };
    let mut statuses = Vec::new();
    for type_ in ConditionType::DEPENDENTS {
        let outcome = outcomes
            .iter()
            .rev()
            .find(|(t, _)| *t == type_)
            .map(|(_, o)| o.clone())
            .or_else(|| {
                previous
                    .iter()
                    .find(|c| c.type_ == type_.name())
                    .map(Outcome::of)
            })
            .unwrap_or_else(|| Outcome::unknown(AWAITING_REASON, AWAITING_MESSAGE));
        statuses.push((type_, outcome.status.clone()));
        set(type_, outcome);
    }
    set(ConditionType::Ready, ready(&statuses));
    // Ready first, as Karpenter lists the root before its dependents.
    out.rotate_right(1);
    let ours = |c: &&Condition| {
        c.type_ == ConditionType::Ready.name()
            || ConditionType::DEPENDENTS
                .iter()
                .any(|t| t.name() == c.type_)
    };
    out.extend(previous.iter().filter(|c| !ours(c)).cloned());
    (out, events)
}

/// The root condition from its dependents: all True ⇒ True; any False ⇒
/// False (`UnhealthyDependents`); else Unknown (`ReconcilingDependents`).
/// The message names the dependents that are not True.
pub fn ready(dependents: &[(ConditionType, ConditionStatus)]) -> Outcome {
    let not_true: Vec<String> = dependents
        .iter()
        .filter(|(_, s)| *s != ConditionStatus::True)
        .map(|(t, s)| format!("{t}={s}"))
        .collect();
    if not_true.is_empty() {
        Outcome::ready(ConditionType::Ready)
    } else if dependents.iter().any(|(_, s)| *s == ConditionStatus::False) {
        Outcome::not_ready("UnhealthyDependents", not_true.join(", "))
    } else {
        Outcome::unknown("ReconcilingDependents", not_true.join(", "))
    }
}

/// The status a condition has in `conditions`, if present.
pub fn status_of(conditions: &[Condition], type_: ConditionType) -> Option<&ConditionStatus> {
    conditions
        .iter()
        .find(|c| c.type_ == type_.name())
        .map(|c| &c.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("a valid time"))
    }

    fn all_ready() -> Vec<(ConditionType, Outcome)> {
        ConditionType::DEPENDENTS
            .iter()
            .map(|t| (*t, Outcome::ready(*t)))
            .collect()
    }

    fn find(conditions: &[Condition], t: ConditionType) -> &Condition {
        conditions
            .iter()
            .find(|c| c.type_ == t.name())
            .expect("the condition is present")
    }

    #[test]
    fn all_dependents_true_make_ready_true_with_an_event_each() {
        let (conditions, events) = apply(&[], &all_ready(), Some(3), &at(10));
        assert_eq!(conditions.len(), 6);
        assert_eq!(conditions[0].type_, "Ready");
        let ready = find(&conditions, ConditionType::Ready);
        assert_eq!(ready.status, ConditionStatus::True);
        assert_eq!(ready.reason, "Ready");
        assert_eq!(ready.observed_generation, Some(3));
        assert_eq!(ready.last_transition_time, Some(at(10)));
        assert_eq!(events.len(), 6);
        assert!(events.iter().any(|(k, m)| *k
            == EventKind::ConditionTransitioned(ConditionType::SubnetsReady)
            && m == "Status condition transitioned, Type: SubnetsReady, Status: Unknown -> True, Reason: SubnetsReady"));
    }

    #[test]
    fn one_false_dependent_makes_ready_false_naming_it() {
        let mut outcomes = all_ready();
        outcomes.push((
            ConditionType::SubnetsReady,
            Outcome::not_ready("SubnetsNotFound", "no subnet matches"),
        ));
        let (conditions, events) = apply(&[], &outcomes, None, &at(10));
        let ready = find(&conditions, ConditionType::Ready);
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(ready.reason, "UnhealthyDependents");
        assert_eq!(ready.message, "SubnetsReady=False");
        let subnets = find(&conditions, ConditionType::SubnetsReady);
        assert_eq!(subnets.message, "no subnet matches");
        assert!(
            events
                .iter()
                .any(|(_, m)| m.ends_with("Message: no subnet matches"))
        );
    }

    #[test]
    fn missing_dependents_start_unknown_and_ready_is_unknown() {
        let (conditions, _) = apply(
            &[],
            &[(
                ConditionType::AmisReady,
                Outcome::ready(ConditionType::AmisReady),
            )],
            None,
            &at(1),
        );
        let subnets = find(&conditions, ConditionType::SubnetsReady);
        assert_eq!(subnets.status, ConditionStatus::Unknown);
        assert_eq!(subnets.reason, "AwaitingReconciliation");
        let ready = find(&conditions, ConditionType::Ready);
        assert_eq!(ready.status, ConditionStatus::Unknown);
        assert_eq!(ready.reason, "ReconcilingDependents");
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let (first, _) = apply(&[], &all_ready(), None, &at(10));
        let (same, events) = apply(&first, &all_ready(), None, &at(20));
        assert!(events.is_empty());
        assert_eq!(
            find(&same, ConditionType::Ready).last_transition_time,
            Some(at(10))
        );
        let mut outcomes = all_ready();
        outcomes.push((
            ConditionType::AmisReady,
            Outcome::not_ready("AMINotFound", "none"),
        ));
        let (changed, events) = apply(&same, &outcomes, None, &at(30));
        assert_eq!(
            find(&changed, ConditionType::AmisReady).last_transition_time,
            Some(at(30))
        );
        assert_eq!(
            find(&changed, ConditionType::SubnetsReady).last_transition_time,
            Some(at(10))
        );
        assert_eq!(events.len(), 2, "AMIsReady and Ready changed: {events:?}");
    }

    #[test]
    fn other_condition_types_are_kept() {
        let other = Condition {
            type_: "PlacementGroupReady".into(),
            status: ConditionStatus::True,
            observed_generation: None,
            last_transition_time: Some(at(1)),
            reason: "PlacementGroupReady".into(),
            message: String::new(),
        };
        let (conditions, _) = apply(std::slice::from_ref(&other), &all_ready(), None, &at(2));
        assert_eq!(conditions.last(), Some(&other));
    }
}
