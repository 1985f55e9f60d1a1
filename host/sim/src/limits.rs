//! The most a scenario may ask of the simulator, checked before it runs
//! (docs/limits.md, "Scenario"). The simulator keeps every pod in memory
//! (about 3 KB each) and steps its clock a second at a time, so replica
//! counts bound memory and pods × simulated time bound the wall time. The
//! limits sit far above real clusters (Kubernetes supports 150,000 pods per
//! cluster) and far below what would exhaust a 24 GiB machine.

use std::collections::BTreeMap;

pub use crate::format::count;
use crate::scenario::{ScenarioError, invalid};
use crate::types::{EventKind, Manifest, Scenario};

/// One replica count: a workload's `replicas`, a `diurnal` curve's `min`
/// and `max`, a `scale` event, a Job's `completions` and `parallelism`.
pub const MAX_REPLICAS: usize = 150_000;
/// Every replica count of the scenario summed: the pods it may create.
pub const MAX_TOTAL_REPLICAS: u64 = 1_000_000;
/// The pods that may run at once (every workload at its largest count, the
/// Jobs at their parallelism, and the cluster's own pods).
pub const MAX_PEAK_PODS: u64 = 300_000;
/// Simulated time.
pub const MAX_DURATION_MS: u64 = 31 * 24 * HOUR_MS;
/// Peak pods × simulated hours: the reference day (20,000 pods, 24 h) is
/// 480,000 and takes about 30 s in a release build.
pub const MAX_POD_HOURS: u64 = 10_000_000;
/// Samples of the cluster kept for the report (`duration / sampleEvery`).
pub const MAX_SAMPLES: u64 = 300_000;
/// Above this many pod-hours, `dovetail sim` says up front that the run is
/// long.
pub const LARGE_POD_HOURS: u64 = 1_000_000;

const HOUR_MS: u64 = 3_600_000;
const REFERENCE_POD_HOURS: u64 = 480_000;

/// How much a scenario asks of the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// An upper bound on the pods running at once.
    pub peak_pods: u64,
    /// Every replica count summed.
    pub total_replicas: u64,
    pub duration_ms: u64,
}

impl Size {
    /// Peak pods × simulated hours, rounded up.
    pub fn pod_hours(&self) -> u64 {
        self.peak_pods
            .saturating_mul(self.duration_ms)
            .div_ceil(HOUR_MS)
    }

    /// A line saying what a long run will take, when it is long.
    pub fn estimate(&self) -> Option<String> {
        let pod_hours = self.pod_hours();
        (pod_hours > LARGE_POD_HOURS).then(|| {
            format!(
                "a large run: up to {} pods for {} simulated ({} pod-hours, {}× the 24-hour \
                 reference scenario, which takes about 30 s in a release build)",
                count(self.peak_pods),
                crate::format::seconds(self.duration_ms as f64 / 1000.0),
                count(pod_hours),
                pod_hours.div_ceil(REFERENCE_POD_HOURS)
            )
        })
    }
}

impl Scenario {
    /// How much the scenario asks of the simulator (see [`check`]).
    pub fn size(&self) -> Size {
        // The largest count each workload is given, by name (`scale` names
        // workloads by name alone).
        let mut largest: BTreeMap<&str, usize> = BTreeMap::new();
        let mut jobs: BTreeMap<&str, usize> = BTreeMap::new();
        let mut total: u64 = 0;
        for d in &self.deployments {
            let n = d.replicas.max(d.diurnal.as_ref().map_or(0, |c| c.max));
            bump(&mut largest, &d.name, n);
            total = total.saturating_add(n as u64);
        }
        for j in &self.jobs {
            bump(&mut jobs, &j.name, j.parallelism.min(j.completions));
            total = total.saturating_add(j.completions as u64);
        }
        for e in &self.events {
            match &e.kind {
                EventKind::Scale {
                    deployment,
                    replicas,
                } => {
                    bump(&mut largest, deployment, *replicas);
                    total = total.saturating_add(*replicas as u64);
                }
                EventKind::Apply(m) => match &**m {
                    Manifest::Workload(d) => {
                        let n = d.replicas.max(d.diurnal.as_ref().map_or(0, |c| c.max));
                        bump(&mut largest, &d.name, n);
                        total = total.saturating_add(n as u64);
                    }
                    Manifest::Job(j) => {
                        bump(&mut jobs, &j.name, j.parallelism.min(j.completions));
                        total = total.saturating_add(j.completions as u64);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let peak = largest
            .values()
            .chain(jobs.values())
            .fold(self.initial_pods.len() as u64, |a, n| {
                a.saturating_add(*n as u64)
            });
        Size {
            peak_pods: peak,
            total_replicas: total,
            duration_ms: self.duration_ms,
        }
    }
}

fn bump<'a>(map: &mut BTreeMap<&'a str, usize>, name: &'a str, n: usize) {
    let e = map.entry(name).or_default();
    *e = (*e).max(n);
}

/// `at` (a field path) holds a replica count within [`MAX_REPLICAS`].
pub(crate) fn replicas(at: impl Into<String>, n: usize) -> Result<(), ScenarioError> {
    if n > MAX_REPLICAS {
        return Err(invalid(
            at,
            format!(
                "{} is above the limit of {} (docs/limits.md): the simulator holds every pod \
                 in memory, and Kubernetes itself supports {} pods per cluster; give at most {}",
                count(n as u64),
                count(MAX_REPLICAS as u64),
                count(150_000),
                count(MAX_REPLICAS as u64)
            ),
        ));
    }
    Ok(())
}

/// The scenario's `duration` is within [`MAX_DURATION_MS`].
pub(crate) fn duration(ms: u64) -> Result<(), ScenarioError> {
    if ms > MAX_DURATION_MS {
        return Err(invalid(
            "duration",
            format!(
                "{} is above the limit of {} ({} days; docs/limits.md): the simulator steps \
                 through every simulated second; simulate a day or a week, which show the \
                 daily and weekly patterns",
                go_hours(ms),
                go_hours(MAX_DURATION_MS),
                MAX_DURATION_MS / (24 * HOUR_MS)
            ),
        ));
    }
    Ok(())
}

/// `100000h`, `1h30m`: a duration as a scenario writes it.
fn go_hours(ms: u64) -> String {
    let h = ms / HOUR_MS;
    let m = ms % HOUR_MS / 60_000;
    let s = ms % 60_000 / 1000;
    match (h, m, s) {
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m}m"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// Every count and duration of the scenario, including those of manifests
/// and events, and their totals, within the limits above.
pub(crate) fn check(s: &Scenario) -> Result<(), ScenarioError> {
    duration(s.duration_ms)?;
    let sample_ms = s.models.sample_every_ms.max(1000);
    let samples = s.duration_ms / sample_ms;
    if samples > MAX_SAMPLES {
        let needed = s.duration_ms.div_ceil(MAX_SAMPLES).div_ceil(1000);
        return Err(invalid(
            "models.sampleEvery",
            format!(
                "a sample every {} over {} is {} samples, above the limit of {} \
                 (docs/limits.md); sample every {needed}s or more, or shorten `duration`",
                crate::format::seconds(sample_ms as f64 / 1000.0),
                go_hours(s.duration_ms),
                count(samples),
                count(MAX_SAMPLES)
            ),
        ));
    }
    for d in &s.deployments {
        let what = format!("{} `{}`", d.kind.name(), d.name);
        replicas(format!("{what} replicas"), d.replicas)?;
        if let Some(c) = &d.diurnal {
            replicas(format!("{what} diurnal.max"), c.max)?;
        }
    }
    for j in &s.jobs {
        replicas(format!("Job `{}` completions", j.name), j.completions)?;
        replicas(format!("Job `{}` parallelism", j.name), j.parallelism)?;
    }
    for e in &s.events {
        let at = crate::format::seconds(e.at_ms as f64 / 1000.0);
        match &e.kind {
            EventKind::Apply(m) => match &**m {
                Manifest::Workload(d) => replicas(
                    format!("the event at {at}: {} `{}` replicas", d.kind.name(), d.name),
                    d.replicas,
                )?,
                Manifest::Job(j) => {
                    replicas(
                        format!("the event at {at}: Job `{}` completions", j.name),
                        j.completions,
                    )?;
                    replicas(
                        format!("the event at {at}: Job `{}` parallelism", j.name),
                        j.parallelism,
                    )?;
                }
                _ => {}
            },
            EventKind::Scale {
                deployment,
                replicas: n,
            } => replicas(format!("the event at {at}: scale `{deployment}`"), *n)?,
            _ => {}
        }
    }
    let size = s.size();
    if size.total_replicas > MAX_TOTAL_REPLICAS {
        return Err(invalid(
            "workloads",
            format!(
                "the replica counts of the workloads, `scale` events and Jobs sum to {}, above \
                 the limit of {} pods created by one scenario (docs/limits.md); lower them or \
                 split the scenario",
                count(size.total_replicas),
                count(MAX_TOTAL_REPLICAS)
            ),
        ));
    }
    if size.peak_pods > MAX_PEAK_PODS {
        return Err(invalid(
            "workloads",
            format!(
                "up to {} pods may run at once (each workload at its largest count, plus the \
                 Jobs' parallelism and the cluster's pods), above the limit of {} \
                 (docs/limits.md); lower the largest counts",
                count(size.peak_pods),
                count(MAX_PEAK_PODS)
            ),
        ));
    }
    if size.pod_hours() > MAX_POD_HOURS {
        return Err(invalid(
            "duration",
            format!(
                "up to {} pods for {} is {} pod-hours, above the limit of {} (docs/limits.md; \
                 about {}× the 24-hour reference scenario, which takes 30 s); shorten \
                 `duration` to {} or less, or lower the replica counts",
                count(size.peak_pods),
                go_hours(s.duration_ms),
                count(size.pod_hours()),
                count(MAX_POD_HOURS),
                MAX_POD_HOURS / REFERENCE_POD_HOURS,
                go_hours(MAX_POD_HOURS / size.peak_pods.max(1) * HOUR_MS)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_scenario;

    fn scenario(duration: &str, workloads: &str, events: &str) -> String {
        format!(
            "duration: {duration}\n\
             nodePools:\n\
             - apiVersion: karpenter.sh/v1\n  kind: NodePool\n  metadata: {{ name: default }}\n  \
             spec: {{ template: {{ spec: {{ requirements: [] }} }} }}\n\
             workloads:\n{workloads}\n\
             events: [{events}]\n"
        )
    }

    fn app(replicas: &str) -> String {
        format!("- {{ deployment: app, replicas: {replicas}, cpu: 100m, memory: 128Mi }}")
    }

    fn error(text: &str) -> String {
        parse_scenario(text).unwrap_err().to_string()
    }

    #[test]
    fn counts_and_durations_at_the_limit_parse() {
        let max = MAX_REPLICAS.to_string();
        let s = parse_scenario(&scenario("1h", &app(&max), "")).unwrap();
        assert_eq!(s.size().peak_pods, MAX_REPLICAS as u64);
        parse_scenario(&scenario("744h", &app("5"), "")).unwrap();
    }

    #[test]
    fn replicas_above_the_limit_are_refused_with_the_field_value_and_limit() {
        let e = error(&scenario("1h", &app("1000000000"), ""));
        assert!(e.starts_with("workloads[0].replicas: 1,000,000,000"), "{e}");
        assert!(e.contains("limit of 150,000"), "{e}");
        assert!(e.contains("docs/limits.md"), "{e}");
    }

    #[test]
    fn scale_events_above_the_limit_are_refused() {
        let e = error(&scenario(
            "1h",
            &app("5"),
            "{ at: 10m, scale: { deployment: app, replicas: 200000 } }",
        ));
        assert!(e.starts_with("events[0].scale.replicas: 200,000"), "{e}");
        assert!(e.contains("150,000"), "{e}");
    }

    #[test]
    fn a_long_duration_is_refused_naming_the_limit() {
        let e = error(&scenario("100000h", &app("5"), ""));
        assert!(
            e.starts_with("duration: 100000h is above the limit of 744h"),
            "{e}"
        );
        assert!(e.contains("31 days"), "{e}");
    }

    #[test]
    fn totals_count_every_scale_event() {
        // Each event is within the limit; together they create too many pods.
        let events: String = (0..8)
            .map(|i| {
                format!(
                    "{{ at: {}m, scale: {{ deployment: app, replicas: 140000 }} }},",
                    i + 1
                )
            })
            .collect();
        let e = error(&scenario("1h", &app("5"), &events));
        assert!(e.starts_with("workloads: "), "{e}");
        assert!(e.contains("sum to 1,120,005"), "{e}");
        assert!(e.contains("limit of 1,000,000"), "{e}");
    }

    #[test]
    fn pods_times_hours_is_bounded() {
        let e = error(&scenario("744h", &app("100000"), ""));
        assert!(
            e.starts_with("duration: up to 100,000 pods for 744h"),
            "{e}"
        );
        assert!(e.contains("74,400,000 pod-hours"), "{e}");
        assert!(e.contains("shorten `duration` to 100h or less"), "{e}");
        let ok = parse_scenario(&scenario("100h", &app("100000"), "")).unwrap();
        assert_eq!(ok.size().pod_hours(), MAX_POD_HOURS);
        assert!(
            ok.size()
                .estimate()
                .unwrap()
                .contains("10,000,000 pod-hours")
        );
        let small = parse_scenario(&scenario("24h", &app("20000"), "")).unwrap();
        assert_eq!(small.size().estimate(), None);
    }

    #[test]
    fn samples_are_bounded() {
        let text = scenario("744h", &app("5"), "") + "models: { sampleEvery: 1s }\n";
        let e = error(&text);
        assert!(e.starts_with("models.sampleEvery: "), "{e}");
        assert!(e.contains("2,678,400 samples"), "{e}");
        assert!(e.contains("every 9s or more"), "{e}");
    }

    #[test]
    fn jobs_and_diurnal_curves_are_bounded() {
        let e = error(&scenario(
            "1h",
            "- { job: j, completions: 2000000, duration: 1m, cpu: 100m, memory: 128Mi }",
            "",
        ));
        assert!(e.starts_with("workloads[0].completions: 2,000,000"), "{e}");
        let e = error(&scenario(
            "1h",
            "- { deployment: d, diurnal: { min: 1, max: 999999, peakAt: 1h }, cpu: 100m, memory: 128Mi }",
            "",
        ));
        assert!(e.starts_with("workloads[0].diurnal.max: 999,999"), "{e}");
    }
}
