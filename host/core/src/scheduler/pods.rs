//! Pending pods as the scheduler works on them: compiled requirements and
//! Karpenter's preference relaxation.

use crate::labels;
use crate::model::{Pod, TaintEffect, Toleration, TolerationOperator, WhenUnsatisfiable};
use crate::requirements::{Requirement, RequirementError, Requirements};
use crate::resources::Resources;
use crate::sym::Sym;

#[derive(Debug, Clone)]
pub(crate) struct PodState {
    pub pod: Pod,
    /// Requests plus one pod slot.
    pub requests: Resources,
    /// Node selector, the first required node-affinity term and, while
    /// preferences are respected, the heaviest preferred term.
    pub requirements: Requirements,
    /// The same without preferences.
    pub strict: Requirements,
    /// Every required node-affinity term with the node selector: what a
    /// spread constraint's `nodeAffinityPolicy: Honor` filters nodes by.
    pub strict_terms: Vec<Requirements>,
    pub relaxations: Vec<String>,
}

impl PodState {
    pub fn new(pod: &Pod, respect_preferences: bool) -> Result<Self, RequirementError> {
        let mut pod = pod.clone();
        if !respect_preferences {
            pod.preferred_node_affinity.clear();
            pod.preferred_pod_affinity.clear();
            pod.preferred_pod_anti_affinity.clear();
            pod.topology_spread
                .retain(|c| c.when_unsatisfiable == WhenUnsatisfiable::DoNotSchedule);
        }
        let mut requests = pod.requests.clone();
        requests.pods += 1;
        let mut s = PodState {
            pod,
            requests,
            requirements: Requirements::new(),
            strict: Requirements::new(),
            strict_terms: Vec::new(),
            relaxations: Vec::new(),
        };
        s.compile()?;
        Ok(s)
    }

    fn compile(&mut self) -> Result<(), RequirementError> {
        let pod = &self.pod;
        let mut base = Requirements::from_labels(pod.node_selector.iter().map(|(k, v)| (k, v)));
        if !pod.volume_zones.is_empty() {
            base.add(Requirement::is_in(
                Sym::new(labels::ZONE),
                pod.volume_zones.iter().copied(),
            ));
        }
        let mut strict = base.clone();
        if let Some(first) = pod.required_node_affinity.first() {
            strict.add_all(&Requirements::from_terms(first)?);
        }
        let mut full = strict.clone();
        if let Some(heaviest) = heaviest(&pod.preferred_node_affinity, |t| t.weight) {
            // Preferred first so the required term's narrowing wins the order
            // of intersection; the result is the same set either way.
            full.add_all(&Requirements::from_terms(
                &pod.preferred_node_affinity[heaviest].requirements,
            )?);
        }
        let mut terms = Vec::new();
        for term in &pod.required_node_affinity {
            let mut r = base.clone();
            r.add_all(&Requirements::from_terms(term)?);
            terms.push(r);
        }
        if terms.is_empty() && !base.is_empty() {
            terms.push(base);
        }
        self.requirements = full;
        self.strict = strict;
        self.strict_terms = terms;
        Ok(())
    }

    /// Drops the next preference in Karpenter's order; false when nothing is
    /// left to relax.
    pub fn relax(&mut self, tolerate_prefer_no_schedule: bool) -> bool {
        let pod = &mut self.pod;
        let note = if pod.required_node_affinity.len() > 1 {
            pod.required_node_affinity.remove(0);
            Some("dropped a required node-affinity term (tried the next OR-term)".to_string())
        } else if let Some(i) = heaviest(&pod.preferred_pod_affinity, |t| t.weight) {
            let t = pod.preferred_pod_affinity.remove(i);
            Some(format!(
                "dropped preferred pod affinity on `{}`",
                t.term.topology_key
            ))
        } else if let Some(i) = heaviest(&pod.preferred_pod_anti_affinity, |t| t.weight) {
            let t = pod.preferred_pod_anti_affinity.remove(i);
            Some(format!(
                "dropped preferred pod anti-affinity on `{}`",
                t.term.topology_key
            ))
        } else if let Some(i) = heaviest(&pod.preferred_node_affinity, |t| t.weight) {
            pod.preferred_node_affinity.remove(i);
            Some("dropped preferred node affinity".to_string())
        } else if let Some(i) = pod
            .topology_spread
            .iter()
            .position(|c| c.when_unsatisfiable == WhenUnsatisfiable::ScheduleAnyway)
        {
            let c = pod.topology_spread.remove(i);
            Some(format!(
                "dropped ScheduleAnyway topology spread on `{}`",
                c.topology_key
            ))
        } else if tolerate_prefer_no_schedule && !tolerates_prefer_no_schedule(&pod.tolerations) {
            pod.tolerations.push(Toleration {
                key: None,
                operator: TolerationOperator::Exists,
                value: None,
                effect: Some(TaintEffect::PreferNoSchedule),
            });
            Some("tolerated PreferNoSchedule taints".to_string())
        } else {
            None
        };
        match note {
            Some(n) => {
                self.relaxations.push(n);
                // Terms were valid when first compiled; dropping one cannot break them.
                let _ = self.compile();
                true
            }
            None => false,
        }
    }
}

fn tolerates_prefer_no_schedule(tolerations: &[Toleration]) -> bool {
    tolerations.iter().any(|t| {
        t.key.is_none()
            && t.operator == TolerationOperator::Exists
            && t.effect == Some(TaintEffect::PreferNoSchedule)
    })
}

/// Index of the heaviest item; the first of equals, as a stable sort would give.
fn heaviest<T>(items: &[T], weight: impl Fn(&T) -> i32) -> Option<usize> {
    let mut best: Option<(i32, usize)> = None;
    for (i, t) in items.iter().enumerate() {
        let w = weight(t);
        if best.is_none_or(|(bw, _)| w > bw) {
            best = Some((w, i));
        }
    }
    best.map(|(_, i)| i)
}

/// Karpenter's queue order: CPU, then memory, descending; then creation
/// order and name so the order never depends on input order.
pub(crate) fn queue_order(a: &PodState, b: &PodState) -> std::cmp::Ordering {
    b.requests
        .cpu
        .cmp(&a.requests.cpu)
        .then(b.requests.memory.cmp(&a.requests.memory))
        .then(a.pod.created.cmp(&b.pod.created))
        .then(a.pod.key().cmp(&b.pod.key()))
}
