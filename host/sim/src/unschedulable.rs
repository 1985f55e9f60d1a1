//! Pods the autoscaler found no place for, grouped by workload and reason as
//! the run goes: the controller retries every few seconds, and a reason
//! given to 10,000 identical pods at every retry stays one record.

use std::collections::{HashMap, HashSet};

use dovetail_core::model::PodKey;
use dovetail_core::sym::Sym;

use crate::report::UnschedulableRecord;

/// Who a pod belongs to, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Workload {
    pub kind: &'static str,
    pub namespace: Sym,
    pub name: Sym,
}

#[derive(Debug, Default)]
pub(crate) struct Unschedulable {
    records: Vec<UnschedulableRecord>,
    /// Each distinct reason's id.
    reasons: HashMap<String, u32>,
    /// The last reason looked up, to skip hashing the same text again (a
    /// round gives a workload's pods one reason, in a row).
    last_reason: Option<(String, u32)>,
    /// Records by workload and reason.
    groups: HashMap<(Workload, u32), usize>,
    /// The record of each pod's latest reason.
    latest: HashMap<PodKey, usize>,
    /// Pods each record has counted.
    counted: HashSet<(PodKey, usize)>,
}

impl Unschedulable {
    /// `pod` of `workload` found no place at `at_seconds`, for `reason`.
    pub fn add(&mut self, workload: Workload, pod: PodKey, reason: &str, at_seconds: u64) {
        let reason_id = match &self.last_reason {
            Some((text, id)) if text == reason => *id,
            _ => {
                let next = self.reasons.len() as u32;
                let id = *self.reasons.entry(reason.to_string()).or_insert(next);
                self.last_reason = Some((reason.to_string(), id));
                id
            }
        };
        let records = &mut self.records;
        let r = *self.groups.entry((workload, reason_id)).or_insert_with(|| {
            records.push(UnschedulableRecord {
                kind: workload.kind.to_string(),
                namespace: workload.namespace.to_string(),
                name: workload.name.to_string(),
                reason: reason.to_string(),
                pods: 0,
                never_ran: 0,
                first_at_seconds: at_seconds,
                last_at_seconds: at_seconds,
            });
            records.len() - 1
        });
        let record = &mut self.records[r];
        record.last_at_seconds = at_seconds;
        if self.latest.insert(pod, r) != Some(r) && self.counted.insert((pod, r)) {
            record.pods += 1;
        }
    }

    /// `pod` was still pending at the end and never ran: it counts against
    /// the last reason it was given, if any.
    pub fn never_ran(&mut self, pod: &PodKey) {
        if let Some(&r) = self.latest.get(pod) {
            self.records[r].never_ran += 1;
        }
    }

    pub fn into_records(self) -> Vec<UnschedulableRecord> {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> PodKey {
        PodKey {
            namespace: Sym::new("default"),
            name: Sym::new(name),
        }
    }

    #[test]
    fn identical_pods_retried_make_one_record_per_workload_and_reason() {
        let web = Workload {
            kind: "Deployment",
            namespace: Sym::new("default"),
            name: Sym::new("web"),
        };
        let mut u = Unschedulable::default();
        for at in [1, 11, 21] {
            for i in 0..1000 {
                u.add(web, key(&format!("web-{i}")), "NodePool `a`: no", at);
            }
        }
        u.add(web, key("web-0"), "NodePool `a`: full", 31);
        u.never_ran(&key("web-0"));
        u.never_ran(&key("web-1"));
        let r = u.into_records();
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(
            (
                r[0].pods,
                r[0].never_ran,
                r[0].first_at_seconds,
                r[0].last_at_seconds
            ),
            (1000, 1, 1, 21)
        );
        assert_eq!(
            (r[1].pods, r[1].never_ran, r[1].reason.as_str()),
            (1, 1, "NodePool `a`: full")
        );
    }
}
