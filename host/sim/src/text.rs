//! The text report `dovetail sim` prints: a heading, then one run's metrics,
//! notes, node-hours and last decisions, or several runs side by side.

use std::fmt::Write as _;

use crate::report::{Report, Totals, UnschedulableRecord};
use crate::types::Scenario;

/// One finished run as the text report shows it.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run's name and column header (`scenario`, `builtin`, a label).
    pub label: String,
    pub report: Report,
    /// Who decided instance selection and consolidation scoring; `None` for
    /// the static baseline.
    pub deciders: Option<[String; 2]>,
    /// Printed under the table (policy failures, fuel).
    pub notes: Vec<String>,
}

impl Run {
    pub fn is_baseline(&self) -> bool {
        self.deciders.is_none()
    }
}

/// The whole report for `runs` of `scenario` (named `name`): a heading, then
/// the [`summary`] of a single run or the [`comparison`] of several.
pub fn report(name: &str, scenario: &Scenario, runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{name}: {} simulated, seed {}",
        human_duration(scenario.duration_ms / 1000),
        scenario.seed
    );
    for run in runs {
        let t = &run.report.totals;
        if t.pods_never_ran == 0 {
            continue;
        }
        if runs.len() > 1 {
            let _ = write!(out, "{}: ", run.label);
        }
        let _ = write!(out, "{}", pods(t.pods_never_ran));
        out.push_str(" never ran");
        if !run.report.unschedulable.is_empty() {
            out.push_str(": see unschedulable pods below");
        }
        out.push('\n');
    }
    out.push('\n');
    match runs {
        [run] => write_summary(&mut out, run),
        _ => write_comparison(&mut out, runs),
    }
    out
}

/// One run alone: its metrics, notes, node-hours by instance type and its
/// last decisions.
pub fn summary(run: &Run) -> String {
    let mut out = String::new();
    write_summary(&mut out, run);
    out
}

/// Runs side by side: one column per run with savings against the first,
/// and how each Dovetail run compares with the static baseline if one ran.
pub fn comparison(runs: &[Run]) -> String {
    let mut out = String::new();
    write_comparison(&mut out, runs);
    out
}

/// `1 pod`, `30 pods`.
fn pods(n: usize) -> String {
    if n == 1 {
        "1 pod".into()
    } else {
        format!("{n} pods")
    }
}

/// The most unschedulable records the text shows per run; the JSON report
/// has them all.
const MAX_UNSCHEDULABLE: usize = 10;

/// Pods the autoscaler found no place for, one line per workload and reason
/// (those with pods that never ran first), each NodePool's reason below.
fn write_unschedulable(out: &mut String, run: Option<&str>, records: &[UnschedulableRecord]) {
    if records.is_empty() {
        return;
    }
    let never: usize = records.iter().map(|r| r.never_ran).sum();
    let _ = writeln!(
        out,
        "\nunschedulable pods{} ({}):",
        run.map(|l| format!(" in `{l}`")).unwrap_or_default(),
        if never > 0 {
            format!("{never} never ran")
        } else {
            "each ran later".into()
        }
    );
    let mut order: Vec<&UnschedulableRecord> = records.iter().collect();
    order.sort_by_key(|r| (std::cmp::Reverse(r.never_ran), r.first_at_seconds));
    for r in order.iter().take(MAX_UNSCHEDULABLE) {
        let ran = match r.never_ran {
            0 => "all ran later".to_string(),
            n => format!("{n} never ran"),
        };
        let _ = writeln!(
            out,
            "  {}: {}, {ran}, {} to {}",
            r.workload(),
            pods(r.pods),
            crate::html::clock(r.first_at_seconds),
            crate::html::clock(r.last_at_seconds)
        );
        for line in r.reason_lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    if order.len() > MAX_UNSCHEDULABLE {
        let _ = writeln!(
            out,
            "  … and {} more in the JSON report (--json)",
            order.len() - MAX_UNSCHEDULABLE
        );
    }
}

/// `30m`, `24h`, `1h30m`, `90s`.
fn human_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || out.is_empty() {
        let _ = write!(out, "{s}s");
    }
    out
}

/// One table row: a metric and its value per run.
type Row = (String, Vec<String>);

/// A metric's value for one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Text(String),
    Money(f64),
    Count(u64),
    Seconds(f64),
    /// `None`: nothing to compare with.
    Percent(Option<f64>),
    /// `None`: never.
    Until(Option<f64>),
    Wall(f64),
}

/// One metric of the runs.
#[derive(Debug, Clone)]
pub(crate) struct Metric {
    pub name: String,
    pub values: Vec<Value>,
}

fn money(values: &[f64]) -> Vec<String> {
    let big = values.iter().any(|v| v.abs() >= 10.0);
    values
        .iter()
        .map(|v| {
            if big {
                format!("{v:.2}")
            } else {
                format!("{v:.4}")
            }
        })
        .collect()
}

/// The metrics every report shows, one value per run; `compare` adds the
/// savings against the first run.
pub(crate) fn metrics(runs: &[Run], compare: bool) -> Vec<Metric> {
    let totals: Vec<_> = runs.iter().map(|r| &r.report.totals).collect();
    let metric = |name: &str, f: &dyn Fn(&Totals) -> Value| Metric {
        name: name.to_string(),
        values: totals.iter().map(|t| f(t)).collect(),
    };
    let count =
        |name: &str, f: &dyn Fn(&Totals) -> usize| metric(name, &|t| Value::Count(f(t) as u64));
    let secs = |name: &str, f: &dyn Fn(&Totals) -> f64| metric(name, &|t| Value::Seconds(f(t)));
    let mut rows = Vec::new();
    for (i, name) in ["instance selection", "consolidation scoring"]
        .into_iter()
        .enumerate()
    {
        rows.push(Metric {
            name: name.to_string(),
            values: runs
                .iter()
                .map(|r| Value::Text(r.deciders.as_ref().map_or("-".into(), |d| d[i].clone())))
                .collect(),
        });
    }
    rows.push(metric("cost", &|t| Value::Money(t.cost_usd)));
    if compare {
        let first = totals[0].cost_usd;
        rows.push(Metric {
            name: format!("savings vs {}", runs[0].label),
            values: totals
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    Value::Percent(
                        (i > 0 && first > 0.0).then(|| (first - t.cost_usd) / first * 100.0),
                    )
                })
                .collect(),
        });
    }
    rows.push(count("peak nodes", &|t| t.peak_nodes));
    rows.push(count("nodes launched", &|t| t.nodes_launched));
    rows.push(count("nodes terminated", &|t| t.nodes_terminated));
    rows.push(count("disruptions", &|t| t.disruptions));
    rows.push(count("pods evicted", &|t| t.pods_evicted));
    rows.push(count("interruptions", &|t| t.interruptions));
    if totals.iter().any(|t| t.insufficient_capacity_errors > 0) {
        rows.push(count("insufficient capacity errors", &|t| {
            t.insufficient_capacity_errors
        }));
    }
    if totals.iter().any(|t| t.jobs_completed > 0) {
        rows.push(count("jobs completed", &|t| t.jobs_completed));
    }
    rows.push(secs("pending p50", &|t| t.pending_p50_seconds));
    rows.push(secs("pending p95", &|t| t.pending_p95_seconds));
    rows.push(secs("pending p99", &|t| t.pending_p99_seconds));
    rows.push(secs("pending max", &|t| t.pending_max_seconds));
    rows.push(metric("all running after", &|t| {
        Value::Until(t.all_running_after_seconds)
    }));
    rows.push(count("pending at end", &|t| t.pending_at_end));
    if totals.iter().any(|t| t.pods_never_ran > 0) {
        rows.push(count("pods never ran", &|t| t.pods_never_ran));
    }
    rows.push(metric("policy failures", &|t| {
        Value::Count(t.policy_failures)
    }));
    if totals.iter().any(|t| t.policy_timeouts > 0) {
        rows.push(metric("policy timeouts", &|t| {
            Value::Count(t.policy_timeouts)
        }));
    }
    rows.push(Metric {
        name: "wall".into(),
        values: runs
            .iter()
            .map(|r| Value::Wall(r.report.wall_seconds.unwrap_or(0.0)))
            .collect(),
    });
    rows
}

/// The metrics as the text table writes them: units in the names, plain
/// numbers.
fn metric_rows(runs: &[Run], compare: bool) -> Vec<Row> {
    metrics(runs, compare)
        .into_iter()
        .map(|m| {
            let unit = match m.values.first() {
                Some(Value::Money(_)) => " (USD)",
                Some(Value::Seconds(_) | Value::Until(_) | Value::Wall(_)) => " (s)",
                Some(Value::Percent(_)) => " (%)",
                _ => "",
            };
            let costs: Vec<f64> = m
                .values
                .iter()
                .filter_map(|v| match v {
                    Value::Money(c) => Some(*c),
                    _ => None,
                })
                .collect();
            let costs = money(&costs);
            let mut costs = costs.into_iter();
            let values = m
                .values
                .iter()
                .map(|v| match v {
                    Value::Text(t) => t.clone(),
                    Value::Money(_) => costs.next().unwrap_or_default(),
                    Value::Count(n) => n.to_string(),
                    Value::Seconds(s) => format!("{s:.0}"),
                    Value::Percent(p) => p.map_or("-".into(), |p| format!("{p:.1}")),
                    Value::Until(s) => s.map_or("never".into(), |s| format!("{s:.0}")),
                    Value::Wall(s) => format!("{s:.2}"),
                })
                .collect();
            (format!("{}{unit}", m.name), values)
        })
        .collect()
}

/// Metric names left-aligned, values right-aligned, one column per run.
fn table(out: &mut String, header: Option<&[&str]>, rows: &[Row]) {
    let first = rows.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let columns = rows.first().map_or(0, |(_, v)| v.len());
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|(_, v)| v[c].len())
                .chain(header.map(|h| h[c].len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut line = |name: &str, cells: &[&str]| {
        let mut l = format!("{name:<first$}");
        for (cell, w) in cells.iter().zip(&widths) {
            let _ = write!(l, "  {cell:>w$}");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    if let Some(h) = header {
        line("", h);
    }
    for (name, cells) in rows {
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        line(name, &cells);
    }
}

fn write_summary(out: &mut String, run: &Run) {
    table(out, None, &metric_rows(std::slice::from_ref(run), false));
    for note in &run.notes {
        let _ = writeln!(out, "note: {note}");
    }
    write_unschedulable(out, None, &run.report.unschedulable);

    let hours = &run.report.totals.node_hours_by_instance_type;
    if !hours.is_empty() {
        let mut top: Vec<(&String, &f64)> = hours.iter().collect();
        top.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
        let shown = top.len().min(5);
        let _ = writeln!(
            out,
            "\nnode-hours by instance type (top {shown} of {}):",
            top.len()
        );
        let width = top[..shown].iter().map(|(t, _)| t.len()).max().unwrap_or(0);
        for (t, h) in &top[..shown] {
            let _ = writeln!(out, "  {t:<width$}  {h:>8.2}");
        }
    }

    let decisions = &run.report.decisions;
    let skip = decisions.len().saturating_sub(10);
    if decisions.is_empty() {
        out.push_str("\nno decisions\n");
    } else {
        let _ = writeln!(
            out,
            "\ndecisions (last {} of {}):",
            decisions.len() - skip,
            decisions.len()
        );
        for d in &decisions[skip..] {
            let _ = writeln!(out, "  {d}");
        }
    }
}

fn write_comparison(out: &mut String, runs: &[Run]) {
    let header: Vec<&str> = runs.iter().map(|r| r.label.as_str()).collect();
    table(out, Some(&header), &metric_rows(runs, true));
    for run in runs {
        for note in &run.notes {
            let _ = writeln!(out, "note: {note}");
        }
    }
    for run in runs {
        write_unschedulable(out, Some(&run.label), &run.report.unschedulable);
    }
    let baselines: Vec<&Run> = runs.iter().filter(|r| r.is_baseline()).collect();
    let dovetail: Vec<&Run> = runs.iter().filter(|r| !r.is_baseline()).collect();
    for base in &baselines {
        // With both on-demand and spot groups, each comparison names its run.
        let name = if baselines.len() == 1 {
            "static node groups".to_string()
        } else {
            format!("static node groups `{}`", base.label)
        };
        let groups = base
            .report
            .autoscaler
            .trim_start_matches("static-node-groups");
        let _ = writeln!(
            out,
            "\n{name}: {}",
            groups.trim().trim_start_matches('(').trim_end_matches(')')
        );
        let y = base.report.totals.cost_usd;
        for run in &dovetail {
            let who = if dovetail.len() == 1 {
                "Dovetail".to_string()
            } else {
                format!("Dovetail ({})", run.label)
            };
            let x = run.report.totals.cost_usd;
            let how = if y <= 0.0 || (x - y).abs() < 0.00005 {
                "the same as".to_string()
            } else if x < y {
                format!("{:.1}% less than", (y - x) / y * 100.0)
            } else {
                format!("{:.1}% more than", (x - y) / y * 100.0)
            };
            let decimals = crate::format::money_decimals([x, y]);
            let _ = writeln!(
                out,
                "{who} costs {how} {name} ({} vs {})",
                crate::format::money_to(x, decimals),
                crate::format::money_to(y, decimals)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(human_duration(1800), "30m");
        assert_eq!(human_duration(5400), "1h30m");
        assert_eq!(human_duration(0), "0s");
        assert_eq!(crate::clock(48 * 3600 + 61), "48:01:01");
    }

    fn run(label: &str, cost: f64, deciders: Option<[String; 2]>, autoscaler: &str) -> Run {
        let mut report = Report {
            autoscaler: autoscaler.into(),
            ..Report::default()
        };
        report.totals.cost_usd = cost;
        Run {
            label: label.into(),
            report,
            deciders,
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_comparison_has_a_column_per_run_and_names_the_cheaper() {
        let builtin = Some(["built-in".to_string(), "built-in".to_string()]);
        let runs = [
            run("scenario", 8.0, builtin, "dovetail"),
            run(
                "static-node-groups",
                10.0,
                None,
                "static-node-groups (m5.large)",
            ),
        ];
        let text = comparison(&runs);
        let header = text.lines().next().unwrap();
        assert!(header.contains("scenario") && header.contains("static-node-groups"));
        assert!(text.contains("\ncost (USD)  "), "{text}");
        assert!(text.contains("savings vs scenario (%)"), "{text}");
        assert!(text.contains("static node groups: m5.large"), "{text}");
        assert!(
            text.contains("Dovetail costs 20.0% less than static node groups ($8.00 vs $10.00)"),
            "{text}"
        );
    }

    #[test]
    fn a_comparison_with_on_demand_and_spot_groups_names_each() {
        let builtin = Some(["built-in".to_string(), "built-in".to_string()]);
        let runs = [
            run("builtin", 8.0, builtin, "dovetail"),
            run(
                "static-node-groups",
                10.0,
                None,
                "static-node-groups (m5.large on-demand)",
            ),
            run(
                "static-node-groups-spot",
                4.0,
                None,
                "static-node-groups (m5.large spot)",
            ),
        ];
        let text = comparison(&runs);
        assert!(
            text.contains("static node groups `static-node-groups-spot`: m5.large spot"),
            "{text}"
        );
        assert!(
            text.contains(
                "Dovetail costs 20.0% less than static node groups `static-node-groups` ($8.00 vs $10.00)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "Dovetail costs 100.0% more than static node groups `static-node-groups-spot` ($8.0000 vs $4.0000)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_summary_says_when_nothing_was_decided() {
        let builtin = Some(["built-in".to_string(), "default@0.1.0".to_string()]);
        let text = summary(&run("scenario", 1.5, builtin, "dovetail"));
        let row = |name: &str, value: &str| {
            text.lines()
                .any(|l| l.starts_with(name) && l.ends_with(&format!("  {value}")))
        };
        assert!(text.starts_with("instance selection "), "{text}");
        assert!(row("instance selection", "built-in"), "{text}");
        assert!(row("consolidation scoring", "default@0.1.0"), "{text}");
        assert!(row("cost (USD)", "1.5000"), "{text}");
        assert!(row("all running after (s)", "never"), "{text}");
        assert!(text.ends_with("\nno decisions\n"), "{text}");
    }
}
