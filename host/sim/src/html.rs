//! The HTML report: one self-contained page that reads like a dashboard —
//! headline figures, inline SVG charts on a simulated-clock axis, the cost
//! split, launches with their launch lists, disruption budgets and why nodes
//! stayed, and the decisions. No scripts, no network: expanding a launch
//! list is a `<details>` element.

use std::collections::BTreeMap;
use std::fmt::Write;

use dovetail_core::catalog::CapacityType;

use crate::format::{self, count, hhmm, money};
use crate::report::{
    CostShare, DecisionRecord, LaunchRecord, OfferingRecord, Outcome, Report, Sample,
};
use crate::text::{Metric, Run, Value, metrics};

/// A day can hold thousands of decisions and launches; the JSON report has
/// them all.
const MAX_DECISIONS: usize = 1_000;
const MAX_LAUNCHES: usize = 250;
const MAX_PASSES: usize = 200;
const MAX_REASONS: usize = 50;
const MAX_PODS: usize = 200;

/// The chart's drawing area, in SVG units (the page scales it).
const W: f64 = 640.0;
const H: f64 = 230.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 28.0;

/// Colours of the runs on a comparison page, and of series.
const PALETTE: [&str; 8] = [
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d",
];
const ON_DEMAND: &str = "#2563eb";
const SPOT: &str = "#f59e0b";
const PENDING: &str = "#ea580c";

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f3f4f6;color:#111827;font-size:14px}\
header{background:#111827;color:#f9fafb;padding:20px 32px}\
header h1{margin:0 0 4px;font-size:22px;font-weight:600}\
header p{margin:0;color:#d1d5db}\
main{padding:20px 32px;max-width:1500px}\
h2{font-size:16px;margin:28px 0 10px;font-weight:600}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}\
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}\
.card .v{font-size:22px;font-weight:600;margin-top:2px;font-variant-numeric:tabular-nums}\
.card .k{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.04em}\
.card .s{color:#6b7280;font-size:12px;margin-top:2px}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:12px}\
.panel{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08);overflow-x:auto}\
.panel h3{margin:0 0 6px;font-size:14px;font-weight:600}\
svg{width:100%;height:auto;display:block}\
table{border-collapse:collapse;width:100%;font-size:13px}\
th{text-align:left;color:#6b7280;font-weight:600;border-bottom:1px solid #e5e7eb;padding:6px 8px;white-space:nowrap}\
td{padding:5px 8px;border-bottom:1px solid #f3f4f6;vertical-align:top}\
tr:nth-child(even) td{background:#fafafa}\
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.muted{color:#6b7280}\
.nw{white-space:nowrap}\
.scroll{max-height:600px;overflow-y:auto}\
.scroll th{position:sticky;top:0;background:#fff;z-index:1}\
.bar{display:inline-block;height:10px;border-radius:2px;vertical-align:middle}\
.chip{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:middle}\
details summary{cursor:pointer;color:#1d4ed8}\
details ul{margin:4px 0 0;padding-left:18px}\
ul.types{columns:2 220px;column-gap:20px}\
code{font-size:12px;background:#f3f4f6;padding:1px 4px;border-radius:3px}\
footer{padding:8px 32px 32px;color:#6b7280;font-size:12px}";

/// `HH:MM:SS` of simulated time (hours may pass 24).
pub fn clock(seconds: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page_start(title: &str, subtitle: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\
         <header><h1>{t}</h1><p>{s}</p></header><main>",
        t = escape(title),
        s = escape(subtitle)
    )
}

fn page_end(out: &mut String, note: &str) {
    let _ = writeln!(
        out,
        "</main><footer>{}</footer></body></html>",
        escape(note)
    );
}

// ---- charts ---------------------------------------------------------------

/// What a chart's values are.
#[derive(Clone, Copy, PartialEq)]
enum Unit {
    Count,
    Money,
}

/// One line of a chart; `fill` makes it an area down to zero.
struct Line {
    label: String,
    colour: &'static str,
    points: Vec<(u64, f64)>,
    fill: bool,
}

/// The step of an axis with at most about `ticks` ticks up to `max`.
fn nice_step(max: f64, ticks: f64, unit: Unit) -> f64 {
    let raw = (max / ticks).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    if unit == Unit::Count {
        step.max(1.0)
    } else {
        step
    }
}

/// A y-axis label: `1,000`, `$2,000`, `$0.05`.
fn y_label(v: f64, step: f64, unit: Unit) -> String {
    match unit {
        Unit::Count => count(v.round() as u64),
        Unit::Money if step >= 1.0 => format!("${}", count(v.round() as u64)),
        Unit::Money => {
            let decimals = (-step.log10()).ceil().max(0.0) as usize;
            format!("${v:.decimals$}")
        }
    }
}

/// Seconds between time ticks: a round clock step giving at most 8 ticks.
fn time_step(t_max: u64) -> u64 {
    [
        60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600, 43200, 86400,
    ]
    .into_iter()
    .find(|s| t_max / s <= 8)
    .unwrap_or(86400 * (t_max / 86400 / 8).max(1))
}

/// The frame of a chart: title, legend, axes with hh:mm and value ticks.
/// Returns the SVG so far and the two scales.
fn frame(
    title: &str,
    legend: &[(String, &str)],
    t_max: u64,
    y_max: f64,
    unit: Unit,
) -> (String, impl Fn(u64) -> f64, impl Fn(f64) -> f64, f64) {
    let t_max = t_max.max(1);
    let step = nice_step(
        y_max.max(if unit == Unit::Count { 1.0 } else { 0.01 }),
        4.0,
        unit,
    );
    let y_top = (y_max / step).ceil().max(1.0) * step;
    let x = move |t: u64| LEFT + (t as f64 / t_max as f64) * (W - LEFT - RIGHT);
    let y = move |v: f64| H - BOTTOM - (v / y_top) * (H - TOP - BOTTOM);
    let mut svg = format!(
        "<div class=\"panel\"><h3>{}</h3><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        escape(title),
        escape(title)
    );
    let mut lx = LEFT;
    for (label, colour) in legend {
        let _ = write!(
            svg,
            "<rect x=\"{lx:.1}\" y=\"8\" width=\"10\" height=\"10\" rx=\"2\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"17\" font-size=\"11\" fill=\"#374151\">{}</text>",
            lx + 14.0,
            escape(label)
        );
        lx += 24.0 + 6.5 * label.chars().count() as f64;
    }
    let mut v = 0.0;
    while v <= y_top + step / 2.0 {
        let yy = y(v);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#6b7280\">{}</text>",
            W - RIGHT,
            if v == 0.0 { "#9ca3af" } else { "#eef0f3" },
            LEFT - 6.0,
            yy + 4.0,
            y_label(v, step, unit)
        );
        v += step;
    }
    let ts = time_step(t_max);
    let mut t = 0;
    while t <= t_max {
        let xx = x(t);
        let _ = write!(
            svg,
            "<line x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#9ca3af\"/>\
             <text x=\"{xx:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#6b7280\">{}</text>",
            H - BOTTOM,
            H - BOTTOM + 4.0,
            H - BOTTOM + 17.0,
            hhmm(t)
        );
        t += ts;
    }
    (svg, x, y, y_top)
}

/// Lines (or areas) over simulated time.
fn line_chart(title: &str, unit: Unit, t_max: u64, lines: &[Line]) -> String {
    let widths = vec![2.0; lines.len()];
    chart_of_lines(title, unit, t_max, lines, &widths)
}

/// Runs' lines over each other: each drawn thinner than the one before, so
/// runs that agree show as stripes instead of hiding each other.
fn overlay_chart(title: &str, unit: Unit, t_max: u64, lines: &[Line]) -> String {
    let n = lines.len();
    let widths: Vec<f64> = (0..n).map(|i| 1.5 + (n - 1 - i) as f64).collect();
    chart_of_lines(title, unit, t_max, lines, &widths)
}

fn chart_of_lines(title: &str, unit: Unit, t_max: u64, lines: &[Line], widths: &[f64]) -> String {
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let legend: Vec<(String, &str)> = lines.iter().map(|l| (l.label.clone(), l.colour)).collect();
    let (mut svg, x, y, _) = frame(title, &legend, t_max, y_max, unit);
    for (l, width) in lines.iter().zip(widths) {
        if l.points.is_empty() {
            continue;
        }
        let path: Vec<String> = l
            .points
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
            .collect();
        if l.fill {
            let (first, last) = (l.points[0].0, l.points[l.points.len() - 1].0);
            let _ = write!(
                svg,
                "<polygon fill=\"{}\" fill-opacity=\"0.85\" stroke=\"none\" points=\"{:.1},{:.1} {} {:.1},{:.1}\"/>",
                l.colour,
                x(first),
                y(0.0),
                path.join(" "),
                x(last),
                y(0.0)
            );
        } else {
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\" stroke-linejoin=\"round\" points=\"{}\"/>",
                l.colour,
                path.join(" ")
            );
        }
    }
    svg.push_str("</svg></div>");
    svg
}

/// Stacked bars per time bucket: `series` names and colours, and for each
/// bucket its start and one value per series.
fn bar_chart(
    title: &str,
    t_max: u64,
    bucket: u64,
    series: &[(String, &'static str)],
    buckets: &[(u64, Vec<f64>)],
) -> String {
    let y_max = buckets
        .iter()
        .map(|(_, v)| v.iter().sum::<f64>())
        .fold(0.0f64, f64::max);
    let (mut svg, x, y, _) = frame(title, series, t_max, y_max, Unit::Count);
    for (start, values) in buckets {
        let x0 = x(*start) + 0.5;
        let width = (x((*start + bucket).min(t_max.max(1))) - x(*start) - 1.0).max(1.0);
        let mut base = 0.0;
        for (v, (_, colour)) in values.iter().zip(series) {
            if *v <= 0.0 {
                continue;
            }
            let _ = write!(
                svg,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>",
                y(base + v),
                y(base) - y(base + v)
            );
            base += v;
        }
    }
    svg.push_str("</svg></div>");
    svg
}

/// Bucket length for at most about 48 bars over `t_max`.
fn bucket_for(t_max: u64) -> u64 {
    [60, 120, 300, 600, 900, 1800, 3600, 7200]
        .into_iter()
        .find(|b| t_max / b <= 48)
        .unwrap_or(14400)
}

fn points(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> Vec<(u64, f64)> {
    samples.iter().map(|s| (s.at_seconds, f(s))).collect()
}

/// Pods evicted per bucket, from the timeline's running total.
fn evictions_per_bucket(samples: &[Sample], bucket: u64) -> Vec<(u64, f64)> {
    let mut out: BTreeMap<u64, f64> = BTreeMap::new();
    let mut before = 0;
    for s in samples {
        let at = s.at_seconds.saturating_sub(1) / bucket * bucket;
        *out.entry(at).or_default() += s.pods_evicted.saturating_sub(before) as f64;
        before = s.pods_evicted;
    }
    out.into_iter().collect()
}

/// Kinds of decisions that disrupt, with their colours.
const DISRUPTION_KINDS: [(&str, &str); 7] = [
    ("Emptiness", "#16a34a"),
    ("SingleNodeConsolidation", "#2563eb"),
    ("MultiNodeConsolidation", "#9333ea"),
    ("Drift", "#ea580c"),
    ("Expiration", "#6b7280"),
    ("interruption", "#dc2626"),
    ("scale-down", "#0891b2"),
];

fn disruption_chart(decisions: &[DecisionRecord], t_max: u64) -> String {
    let bucket = bucket_for(t_max);
    let kinds: Vec<(&'static str, &'static str)> = DISRUPTION_KINDS
        .iter()
        .copied()
        .filter(|(k, _)| decisions.iter().any(|d| d.kind == *k))
        .collect();
    let mut buckets: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for d in decisions {
        let Some(i) = kinds.iter().position(|(k, _)| *k == d.kind) else {
            continue;
        };
        buckets
            .entry(d.at_seconds / bucket * bucket)
            .or_insert_with(|| vec![0.0; kinds.len()])[i] += 1.0;
    }
    let series: Vec<(String, &'static str)> =
        kinds.iter().map(|(k, c)| (k.to_string(), *c)).collect();
    bar_chart(
        &format!(
            "Disruptions and interruptions per {}",
            format::seconds(bucket as f64)
        ),
        t_max,
        bucket,
        &series,
        &buckets.into_iter().collect::<Vec<_>>(),
    )
}

/// The most pods pending at once in each bucket: short bursts stay
/// visible on a long run, where a line would be thinner than a pixel.
fn most_pending_per_bucket(samples: &[Sample], bucket: u64) -> Vec<(u64, f64)> {
    let mut out: BTreeMap<u64, f64> = BTreeMap::new();
    for s in samples {
        let v = out.entry(s.at_seconds / bucket * bucket).or_default();
        *v = v.max(s.pending_pods as f64);
    }
    out.into_iter().collect()
}

fn pending_chart(samples: &[Sample], t_max: u64) -> String {
    let bucket = bucket_for(t_max);
    let buckets: Vec<(u64, Vec<f64>)> = most_pending_per_bucket(samples, bucket)
        .into_iter()
        .map(|(t, v)| (t, vec![v]))
        .collect();
    bar_chart(
        &format!(
            "Pending pods (most at once per {})",
            format::seconds(bucket as f64)
        ),
        t_max,
        bucket,
        &[("pending".to_string(), PENDING)],
        &buckets,
    )
}

/// The same as steps, for overlaying runs.
fn pending_steps(samples: &[Sample], bucket: u64, t_max: u64) -> Vec<(u64, f64)> {
    most_pending_per_bucket(samples, bucket)
        .into_iter()
        .flat_map(|(t, v)| [(t, v), ((t + bucket).min(t_max), v)])
        .collect()
}

fn evictions_chart(samples: &[Sample], t_max: u64) -> String {
    let bucket = bucket_for(t_max);
    let buckets: Vec<(u64, Vec<f64>)> = evictions_per_bucket(samples, bucket)
        .into_iter()
        .map(|(t, v)| (t, vec![v]))
        .collect();
    bar_chart(
        &format!("Pods evicted per {}", format::seconds(bucket as f64)),
        t_max,
        bucket,
        &[("evicted".to_string(), "#dc2626")],
        &buckets,
    )
}

// ---- tables -----------------------------------------------------------------

fn card(out: &mut String, key: &str, value: &str, sub: &str) {
    let _ = write!(
        out,
        "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"s\">{}</div></div>",
        escape(key),
        escape(value),
        escape(sub)
    );
}

fn nodes_cell(nodes: &[String]) -> String {
    nodes_cell_up_to(nodes, 3)
}

/// The first `up_to` names, and how many more.
fn nodes_cell_up_to(nodes: &[String], up_to: usize) -> String {
    let names = |nodes: &[String]| {
        nodes
            .iter()
            .map(|n| nowrap(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if nodes.len() <= up_to {
        return names(nodes);
    }
    format!(
        "{} <span class=\"muted\">+{} more</span>",
        names(&nodes[..up_to]),
        count((nodes.len() - up_to) as u64)
    )
}

/// A name that must not break at its hyphens.
fn nowrap(name: &str) -> String {
    format!("<span class=\"nw\">{}</span>", escape(name))
}

/// Cost rows, each with the run it belongs to when `runs` is set.
fn cost_table(out: &mut String, rows: &[(String, &CostShare)], total: f64) {
    out.push_str(
        "<table><tr><th>NodePool</th><th>capacity type</th><th class=\"num\">cost</th>\
         <th class=\"num\">share</th><th class=\"num\">node-hours</th><th></th></tr>",
    );
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"6\" class=\"muted\">No nodes ran.</td></tr>");
    }
    let decimals = format::money_decimals(rows.iter().map(|(_, c)| c.cost_usd));
    cost_rows(out, rows, total, false, decimals);
    out.push_str("</table>");
}

/// Rows of cost shares of `total`, with their run when `runs` is set.
fn cost_rows(
    out: &mut String,
    rows: &[(String, &CostShare)],
    total: f64,
    runs: bool,
    decimals: usize,
) {
    for (run, c) in rows {
        let share = if total > 0.0 {
            c.cost_usd / total * 100.0
        } else {
            0.0
        };
        let colour = match c.capacity_type {
            CapacityType::Spot => SPOT,
            _ => ON_DEMAND,
        };
        let _ = write!(
            out,
            "<tr>{}<td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{share:.1} %</td>\
             <td class=\"num\">{}</td><td style=\"width:30%\"><span class=\"bar\" style=\"width:{:.1}%;background:{colour}\"></span></td></tr>",
            if runs {
                format!("<td>{}</td>", escape(run))
            } else {
                String::new()
            },
            escape(c.node_pool.as_deref().unwrap_or("(node groups)")),
            c.capacity_type,
            format::money_to(c.cost_usd, decimals),
            format::hours(c.node_hours),
            share.clamp(0.0, 100.0)
        );
    }
}

fn requirement(r: &dovetail_core::requirements::NodeSelectorRequirement) -> String {
    let mut s = format!("{} {}", r.key, r.operator.as_str());
    if !r.values.is_empty() {
        let _ = write!(s, " {}", r.values.join(", "));
    }
    if let Some(m) = r.min_values {
        let _ = write!(s, " (minValues {m})");
    }
    s
}

/// One round's launches for one NodePool and purpose.
struct LaunchGroup<'a> {
    launches: Vec<&'a LaunchRecord>,
}

impl LaunchGroup<'_> {
    fn first(&self) -> &LaunchRecord {
        self.launches[0]
    }

    /// Its launches by launch list and requirements, in first-seen order.
    fn lists(&self) -> Vec<Vec<&LaunchRecord>> {
        let mut lists: Vec<Vec<&LaunchRecord>> = Vec::new();
        for &l in &self.launches {
            match lists.iter_mut().find(|v| {
                (v[0].launch_list_index, &v[0].requirements)
                    == (l.launch_list_index, &l.requirements)
            }) {
                Some(v) => v.push(l),
                None => lists.push(vec![l]),
            }
        }
        lists
    }
}

fn launch_groups(launches: &[LaunchRecord]) -> Vec<LaunchGroup<'_>> {
    let mut groups: Vec<LaunchGroup<'_>> = Vec::new();
    for l in launches {
        match groups.last_mut() {
            Some(g)
                if (
                    g.first().at_seconds,
                    &g.first().purpose,
                    &g.first().node_pool,
                ) == (l.at_seconds, &l.purpose, &l.node_pool) =>
            {
                g.launches.push(l)
            }
            _ => groups.push(LaunchGroup { launches: vec![l] }),
        }
    }
    groups
}

/// A launch list by instance type, and the requirements of the NodeClaims
/// that sent it.
fn launch_list_details(out: &mut String, list: &[OfferingRecord], l: &LaunchRecord) {
    out.push_str("<ul class=\"types\">");
    for (t, how) in format::launch_list_by_type(list) {
        let _ = write!(out, "<li><code>{}</code> {}</li>", escape(&t), escape(&how));
    }
    out.push_str("</ul><div class=\"muted\">requirements</div><ul>");
    for r in &l.requirements {
        let _ = write!(out, "<li><code>{}</code></li>", escape(&requirement(r)));
    }
    out.push_str("</ul>");
}

fn node_names(launches: &[&LaunchRecord]) -> Vec<String> {
    launches
        .iter()
        .map(|l| l.node.clone().unwrap_or_else(|| l.node_claim.clone()))
        .collect()
}

fn launch_row(out: &mut String, r: &Report, g: &LaunchGroup<'_>) {
    let l = g.first();
    let launched: Vec<OfferingRecord> = g
        .launches
        .iter()
        .filter_map(|l| l.launched.clone())
        .collect();
    let failed: Vec<&str> = g
        .launches
        .iter()
        .filter(|l| l.launched.is_none())
        .filter_map(|l| l.failed.as_deref())
        .collect();
    let mut what = escape(&format::offering_groups(&launched));
    if !failed.is_empty() {
        if !what.is_empty() {
            what.push_str("<br>");
        }
        let _ = write!(
            what,
            "<span class=\"muted\">{} given up: {}</span>",
            count(failed.len() as u64),
            escape(failed[0])
        );
    }
    let claims = match &g.launches[..] {
        [one] => nowrap(one.node.as_deref().unwrap_or(&one.node_claim)),
        many => count(many.len() as u64),
    };
    let _ = write!(
        out,
        "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{claims}</td><td class=\"num\">{}</td><td>{what}</td><td>",
        clock(l.at_seconds),
        escape(l.node_pool.as_deref().unwrap_or("-")),
        escape(&l.purpose),
        count(g.launches.iter().map(|l| l.pods as u64).sum()),
    );
    match &g.lists()[..] {
        [one] => {
            let list = r.launch_list(one[0]);
            let _ = write!(
                out,
                "<details><summary>{}</summary>",
                escape(&format::launch_list_summary(list))
            );
            launch_list_details(out, list, one[0]);
            if one.len() > 1 {
                let _ = write!(
                    out,
                    "<div class=\"muted\">nodes</div><div>{}</div>",
                    nodes_cell_up_to(&node_names(one), 24)
                );
            }
        }
        lists => {
            let sizes: Vec<usize> = lists.iter().map(|v| r.launch_list(v[0]).len()).collect();
            let (lo, hi) = (
                sizes.iter().min().copied().unwrap_or(0),
                sizes.iter().max().copied().unwrap_or(0),
            );
            let _ = write!(
                out,
                "<details><summary>{} launch lists of {} offerings</summary>",
                lists.len(),
                if lo == hi {
                    count(lo as u64)
                } else {
                    format!("{}–{}", count(lo as u64), count(hi as u64))
                }
            );
            for v in lists {
                let list = r.launch_list(v[0]);
                let _ = write!(
                    out,
                    "<div style=\"margin-top:6px\"><b>{}</b>: {}</div>",
                    nodes_cell_up_to(&node_names(v), 3),
                    escape(&format::launch_list_summary(list))
                );
                launch_list_details(out, list, v[0]);
            }
        }
    }
    out.push_str("</details></td></tr>");
}

fn launches_section(out: &mut String, r: &Report) {
    let launches = &r.launches;
    let groups = launch_groups(launches);
    let shown = groups.len().min(MAX_LAUNCHES);
    let failed = launches.iter().filter(|l| l.failed.is_some()).count();
    let _ = write!(
        out,
        "<h2>Launches <span class=\"muted\">({} NodeClaims{}{})</span></h2><div class=\"panel scroll\">",
        count(launches.len() as u64),
        if failed > 0 {
            format!(", {} given up", count(failed as u64))
        } else {
            String::new()
        },
        if shown < groups.len() {
            format!(
                "; the first {} of {} rounds shown",
                count(shown as u64),
                count(groups.len() as u64)
            )
        } else {
            String::new()
        }
    );
    if launches.is_empty() {
        out.push_str("<p class=\"muted\">No NodeClaims were created.</p></div>");
        return;
    }
    out.push_str(
        "<table><tr><th class=\"num\">time</th><th>NodePool</th><th>for</th><th>NodeClaims</th>\
         <th class=\"num\">pods</th><th>launched</th><th>launch list and requirements</th></tr>",
    );
    for g in &groups[..shown] {
        launch_row(out, r, g);
    }
    out.push_str("</table></div>");
}

/// A reason with the pod it names left out (`pod default/web-1 has …` reads
/// `a pod has …`), so nodes held back the same way group together; the JSON
/// report keeps each pod.
fn any_pod(reason: &str) -> String {
    let mut out = Vec::new();
    let mut words = reason.split(' ').peekable();
    while let Some(w) = words.next() {
        if w == "pod" && words.peek().is_some_and(|n| n.contains('/')) {
            words.next();
            out.push("a pod");
        } else {
            out.push(w);
        }
    }
    out.join(" ")
}

fn passes_section(out: &mut String, r: &Report) {
    let Some(last) = r.passes.last() else {
        return;
    };
    let proposed: Vec<_> = r.passes.iter().filter(|p| p.proposed.is_some()).collect();
    let carried_out = proposed
        .iter()
        .filter(|p| matches!(&p.proposed, Some(c) if c.outcome == Outcome::Disrupted))
        .count();
    let _ = write!(
        out,
        "<h2>Disruption passes <span class=\"muted\">({} passes, {} proposed a command, {} carried out)</span></h2><div class=\"grid\">",
        count(r.passes.len() as u64),
        count(proposed.len() as u64),
        count(carried_out as u64)
    );
    // Budgets: at the last pass, and the fewest allowed during the run.
    let _ = write!(
        out,
        "<div class=\"panel\"><h3>Allowed disruptions by NodePool and reason</h3>\
         <table><tr><th>NodePool</th><th class=\"num\">nodes</th><th class=\"num\">disrupting</th>\
         <th class=\"num\">Empty</th><th class=\"num\">Underutilized</th><th class=\"num\">Drifted</th></tr>"
    );
    let allowed = |n: u32| {
        if n >= dovetail_core::disruption::budgets::UNBOUNDED {
            "no limit".to_string()
        } else {
            count(u64::from(n))
        }
    };
    for b in &last.budgets {
        let fewest = |reason: &str| {
            r.passes
                .iter()
                .flat_map(|p| p.budgets.iter().filter(|x| x.node_pool == b.node_pool))
                .filter_map(|x| x.allowed.get(reason).copied())
                .min()
                .unwrap_or(0)
        };
        let _ = write!(
            out,
            "<tr><td>{}{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            escape(&b.node_pool),
            b.error
                .as_ref()
                .map(|e| format!(" <span class=\"muted\">({})</span>", escape(e)))
                .unwrap_or_default(),
            count(u64::from(b.nodes)),
            count(u64::from(b.consuming))
        );
        for reason in ["Empty", "Underutilized", "Drifted"] {
            let _ = write!(
                out,
                "<td class=\"num\">{} <span class=\"muted\">(fewest {})</span></td>",
                allowed(b.allowed.get(reason).copied().unwrap_or(0)),
                allowed(fewest(reason))
            );
        }
        out.push_str("</tr>");
    }
    let _ = write!(
        out,
        "</table><p class=\"muted\">At the last pass, {}; in brackets the fewest any pass allowed.</p></div>",
        hhmm(last.at_seconds)
    );
    // Why nodes stayed: each node's latest reason, grouped; not for nodes
    // a decision removed after it.
    let mut latest: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    for p in &r.passes {
        for n in &p.not_consolidated {
            latest.insert(&n.node, (&n.reason, p.at_seconds));
        }
    }
    for d in &r.decisions {
        for n in &d.nodes {
            if latest
                .get(n.as_str())
                .is_some_and(|(_, at)| *at <= d.at_seconds)
            {
                latest.remove(n.as_str());
            }
        }
    }
    let mut groups: BTreeMap<String, (Vec<&str>, u64)> = BTreeMap::new();
    for (node, (reason, at)) in &latest {
        let g = groups.entry(any_pod(reason)).or_default();
        g.0.push(node);
        g.1 = g.1.max(*at);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.0.len().cmp(&a.1.0.len()).then(a.0.cmp(&b.0)));
    let _ = write!(
        out,
        "<div class=\"panel\"><h3>Why nodes were not consolidated <span class=\"muted\">(each node's latest reason)</span></h3>"
    );
    if groups.is_empty() {
        out.push_str("<p class=\"muted\">Every candidate was consolidated or never looked at.</p>");
    } else {
        out.push_str(
            "<table><tr><th>reason</th><th class=\"num\">nodes</th><th>e.g.</th><th class=\"num\">last</th></tr>",
        );
        for (reason, (nodes, at)) in groups.iter().take(MAX_REASONS) {
            let names: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                escape(reason),
                count(nodes.len() as u64),
                nodes_cell(&names),
                hhmm(*at)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</div></div>");
    if proposed.is_empty() {
        return;
    }
    let shown = proposed.len().min(MAX_PASSES);
    let _ = write!(
        out,
        "<div class=\"panel scroll\" style=\"margin-top:12px\"><h3>Passes that proposed a command{}</h3>\
         <table><tr><th class=\"num\">time</th><th>method</th><th>nodes</th><th class=\"num\">evaluated</th>\
         <th>allowed (Empty / Underutilized / Drifted)</th><th>what came of it</th></tr>",
        if shown < proposed.len() {
            format!(
                " <span class=\"muted\">(the first {} of {})</span>",
                shown,
                count(proposed.len() as u64)
            )
        } else {
            String::new()
        }
    );
    for p in &proposed[..shown] {
        let Some(c) = &p.proposed else { continue };
        let budgets: Vec<String> = p
            .budgets
            .iter()
            .map(|b| {
                format!(
                    "{}: {} / {} / {}",
                    b.node_pool,
                    allowed(b.allowed.get("Empty").copied().unwrap_or(0)),
                    allowed(b.allowed.get("Underutilized").copied().unwrap_or(0)),
                    allowed(b.allowed.get("Drifted").copied().unwrap_or(0))
                )
            })
            .collect();
        let outcome = match &c.outcome {
            Outcome::Disrupted => escape(&c.outcome.to_string()),
            o => format!("<span class=\"muted\">{}</span>", escape(&o.to_string())),
        };
        let _ = write!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{outcome}</td></tr>",
            clock(p.at_seconds),
            escape(&c.method),
            nodes_cell(&c.nodes),
            count(p.candidates_evaluated as u64),
            escape(&budgets.join("; "))
        );
    }
    out.push_str("</table></div>");
}

/// Where pods ran: those placed more than once first (by when they first
/// moved), then the rest, each with every binding.
fn pods_section(out: &mut String, r: &Report) {
    let mut pods: Vec<(&String, &Vec<(u64, String)>)> = r.pods.iter().collect();
    let moved = pods.iter().filter(|(_, b)| b.len() > 1).count();
    pods.sort_by_key(|(name, b)| (b.get(1).map_or(u64::MAX, |m| m.0), b.len() == 1, *name));
    let shown = pods.len().min(MAX_PODS);
    let _ = write!(
        out,
        "<h2>Pod placements <span class=\"muted\">({} pods, {} placed more than once{})</span></h2><div class=\"panel scroll\">",
        count(pods.len() as u64),
        count(moved as u64),
        if shown < pods.len() {
            format!(
                "; the first {} shown, those that moved first",
                count(shown as u64)
            )
        } else {
            String::new()
        }
    );
    if pods.is_empty() {
        out.push_str("<p class=\"muted\">No pod was bound.</p></div>");
        return;
    }
    out.push_str(
        "<table><tr><th>pod</th><th class=\"num\">bindings</th><th>bound (simulated time → node)</th></tr>",
    );
    for (name, bindings) in &pods[..shown] {
        let binding = |(at, node): &(u64, String)| {
            format!(
                "<span class=\"nw\">{} → {}</span>",
                clock(*at),
                escape(node)
            )
        };
        let cells: Vec<String> = if bindings.len() <= 6 {
            bindings.iter().map(binding).collect()
        } else {
            let n = bindings.len();
            bindings[..3]
                .iter()
                .map(binding)
                .chain(std::iter::once(format!(
                    "<span class=\"muted\">… {} more …</span>",
                    count((n - 5) as u64)
                )))
                .chain(bindings[n - 2..].iter().map(binding))
                .collect()
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            nowrap(name),
            count(bindings.len() as u64),
            cells.join(", ")
        );
    }
    out.push_str("</table></div>");
}

fn decisions_section(out: &mut String, decisions: &[DecisionRecord]) {
    let shown = decisions.len().min(MAX_DECISIONS);
    let _ = write!(
        out,
        "<h2>Decisions <span class=\"muted\">({}{})</span></h2><div class=\"panel scroll\">",
        count(decisions.len() as u64),
        if shown < decisions.len() {
            format!("; the first {} shown", count(shown as u64))
        } else {
            String::new()
        }
    );
    if decisions.is_empty() {
        out.push_str("<p class=\"muted\">No decisions.</p></div>");
        return;
    }
    out.push_str(
        "<table><tr><th class=\"num\">time</th><th>kind</th><th>nodes</th><th>launched</th>\
         <th class=\"num\">saves</th><th class=\"num\">pods</th><th>decided by</th><th style=\"min-width:260px\">reason</th></tr>",
    );
    for d in &decisions[..shown] {
        let _ = write!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            clock(d.at_seconds),
            escape(&d.kind),
            nodes_cell(&d.nodes),
            escape(&format::offering_groups(&d.launched)),
            if d.savings_per_hour > 0.0 {
                format!("{}/h", money(d.savings_per_hour))
            } else {
                String::new()
            },
            if d.pods > 0 {
                count(d.pods as u64)
            } else {
                String::new()
            },
            nowrap(&d.decided_by),
            escape(&d.reason)
        );
    }
    out.push_str("</table></div>");
}

fn hours_section(out: &mut String, hours: &BTreeMap<String, f64>) {
    let mut top: Vec<(&String, &f64)> = hours.iter().collect();
    top.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    let max = top.first().map_or(1.0, |t| t.1.max(1e-9));
    let _ = write!(
        out,
        "<div class=\"panel\"><h3>Node-hours by instance type <span class=\"muted\">(top {} of {})</span></h3>\
         <table><tr><th>instance type</th><th class=\"num\">node-hours</th><th></th></tr>",
        top.len().min(10),
        top.len()
    );
    for (t, h) in top.iter().take(10) {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td style=\"width:40%\">\
             <span class=\"bar\" style=\"width:{:.1}%;background:#64748b\"></span></td></tr>",
            escape(t),
            format::hours(**h),
            *h / max * 100.0
        );
    }
    out.push_str("</table></div>");
}

/// A metric's value on the page.
fn value_cell(v: &Value) -> String {
    match v {
        Value::Text(t) => escape(t),
        Value::Money(m) => money(*m),
        Value::Count(n) => count(*n),
        Value::Seconds(s) => format::seconds(*s),
        Value::Percent(p) => p.map_or("–".into(), |p| format!("{p:.1} %")),
        Value::Until(s) => s.map_or("never".into(), format::seconds),
        Value::Wall(s) => format!("{s:.2} s"),
    }
}

fn metric_table(out: &mut String, runs: &[Run], rows: &[Metric]) {
    out.push_str("<table style=\"width:auto;min-width:50%\"><tr><th></th>");
    for (i, r) in runs.iter().enumerate() {
        let _ = write!(
            out,
            "<th class=\"num\"><span class=\"chip\" style=\"background:{}\"></span>{}</th>",
            PALETTE[i % PALETTE.len()],
            escape(&r.label)
        );
    }
    out.push_str("</tr>");
    for m in rows {
        let _ = write!(out, "<tr><td>{}</td>", escape(&m.name));
        let decimals = format::money_decimals(m.values.iter().filter_map(|v| match v {
            Value::Money(m) => Some(*m),
            _ => None,
        }));
        for v in &m.values {
            let cell = match v {
                Value::Money(m) => format::money_to(*m, decimals),
                v => value_cell(v),
            };
            let _ = write!(out, "<td class=\"num\">{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn nodes_total(s: &Sample) -> f64 {
    (s.nodes_on_demand + s.nodes_spot) as f64
}

impl Report {
    /// The report as one HTML page that opens without a network.
    pub fn to_html(&self, title: &str) -> String {
        let t = &self.totals;
        let subtitle = format!(
            "{} · {} simulated · seed {}",
            self.autoscaler,
            format::seconds(self.duration_seconds as f64),
            self.seed
        );
        let mut page = page_start(title, &subtitle);
        page.push_str("<div class=\"cards\">");
        let spot_share = t
            .cost_by_node_pool
            .iter()
            .filter(|c| c.capacity_type == CapacityType::Spot)
            .map(|c| c.cost_usd)
            .sum::<f64>();
        card(
            &mut page,
            "cost",
            &money(t.cost_usd),
            &if t.cost_usd > 0.0 {
                format!("{:.0} % on spot", spot_share / t.cost_usd * 100.0)
            } else {
                String::new()
            },
        );
        card(&mut page, "peak nodes", &count(t.peak_nodes as u64), "");
        card(
            &mut page,
            "nodes launched",
            &count(t.nodes_launched as u64),
            &format!("{} terminated", count(t.nodes_terminated as u64)),
        );
        card(
            &mut page,
            "disruptions",
            &count(t.disruptions as u64),
            &format!("{} interruptions", count(t.interruptions as u64)),
        );
        card(&mut page, "pods evicted", &count(t.pods_evicted as u64), "");
        card(
            &mut page,
            "pending p99",
            &format::seconds(t.pending_p99_seconds),
            &format!(
                "p50 {} · p95 {} · max {}",
                format::seconds(t.pending_p50_seconds),
                format::seconds(t.pending_p95_seconds),
                format::seconds(t.pending_max_seconds)
            ),
        );
        card(
            &mut page,
            "all running after",
            &t.all_running_after_seconds
                .map_or("never".into(), format::seconds),
            &format!("{} pending at the end", count(t.pending_at_end as u64)),
        );
        if t.insufficient_capacity_errors > 0 {
            card(
                &mut page,
                "insufficient capacity",
                &count(t.insufficient_capacity_errors as u64),
                "offerings that failed",
            );
        }
        if t.jobs_completed > 0 {
            card(
                &mut page,
                "jobs completed",
                &count(t.jobs_completed as u64),
                "",
            );
        }
        if t.policy_failures > 0 {
            card(
                &mut page,
                "policy failures",
                &count(t.policy_failures),
                "the built-in decided instead",
            );
        }
        page.push_str("</div><h2>Over time</h2><div class=\"grid\">");
        let end = self.duration_seconds;
        let s = &self.timeline;
        page.push_str(&line_chart(
            "Nodes by capacity type",
            Unit::Count,
            end,
            &[
                Line {
                    label: "spot".into(),
                    colour: SPOT,
                    points: points(s, nodes_total),
                    fill: true,
                },
                Line {
                    label: "on-demand".into(),
                    colour: ON_DEMAND,
                    points: points(s, |s| s.nodes_on_demand as f64),
                    fill: true,
                },
            ],
        ));
        page.push_str(&pending_chart(s, end));
        page.push_str(&line_chart(
            "Cumulative cost",
            Unit::Money,
            end,
            &[Line {
                label: "cost".into(),
                colour: "#16a34a",
                points: points(s, |s| s.cost_usd),
                fill: false,
            }],
        ));
        page.push_str(&evictions_chart(s, end));
        page.push_str(&disruption_chart(&self.decisions, end));
        page.push_str(&line_chart(
            "Running pods",
            Unit::Count,
            end,
            &[Line {
                label: "running".into(),
                colour: "#0891b2",
                points: points(s, |s| s.running_pods as f64),
                fill: false,
            }],
        ));
        page.push_str("</div><h2>Cost</h2><div class=\"grid\"><div class=\"panel\"><h3>By NodePool and capacity type</h3>");
        let rows: Vec<(String, &CostShare)> = t
            .cost_by_node_pool
            .iter()
            .map(|c| (String::new(), c))
            .collect();
        cost_table(&mut page, &rows, t.cost_usd);
        page.push_str("</div>");
        hours_section(&mut page, &t.node_hours_by_instance_type);
        page.push_str("</div>");
        launches_section(&mut page, self);
        passes_section(&mut page, self);
        decisions_section(&mut page, &self.decisions);
        pods_section(&mut page, self);
        page_end(
            &mut page,
            "Every pod's bindings, launch, launch list and disruption pass are in the JSON \
             report (--json).",
        );
        page
    }
}

/// Every run's cost split in one table, shares of the run's own cost.
fn runs_cost_table(out: &mut String, runs: &[Run]) {
    let _ = write!(
        out,
        "<table><tr><th>run</th><th>NodePool</th><th>capacity type</th><th class=\"num\">cost</th>\
         <th class=\"num\">share</th><th class=\"num\">node-hours</th><th></th></tr>"
    );
    let decimals = format::money_decimals(
        runs.iter()
            .flat_map(|r| &r.report.totals.cost_by_node_pool)
            .map(|c| c.cost_usd),
    );
    for r in runs {
        let total = r.report.totals.cost_usd;
        let rows: Vec<(String, &CostShare)> = r
            .report
            .totals
            .cost_by_node_pool
            .iter()
            .map(|c| (r.label.clone(), c))
            .collect();
        cost_rows(out, &rows, total, true, decimals);
    }
    out.push_str("</table>");
}

/// Several runs of one scenario on one page: the comparison table and every
/// run's curves overlaid.
pub fn compare_html(title: &str, runs: &[Run]) -> String {
    let subtitle = match runs.first() {
        Some(r) => format!(
            "{} runs · {} simulated · seed {}",
            runs.len(),
            format::seconds(r.report.duration_seconds as f64),
            r.report.seed
        ),
        None => "no runs".into(),
    };
    let mut page = page_start(title, &subtitle);
    page.push_str("<div class=\"cards\">");
    let decimals = format::money_decimals(runs.iter().map(|r| r.report.totals.cost_usd));
    let first = runs.first().map_or(0.0, |r| r.report.totals.cost_usd);
    for (i, r) in runs.iter().enumerate() {
        let t = &r.report.totals;
        let against = match i {
            0 => "cost".to_string(),
            _ if first > 0.0 && t.cost_usd != first => format!(
                "{:.1} % {} than {}",
                (t.cost_usd - first).abs() / first * 100.0,
                if t.cost_usd < first { "less" } else { "more" },
                runs[0].label
            ),
            _ => format!("the same as {}", runs[0].label),
        };
        let _ = write!(
            page,
            "<div class=\"card\"><div class=\"k\"><span class=\"chip\" style=\"background:{}\"></span>{}</div>\
             <div class=\"v\">{}</div><div class=\"s\">{}<br>{} evicted · {} disruptions</div></div>",
            PALETTE[i % PALETTE.len()],
            escape(&r.label),
            format::money_to(t.cost_usd, decimals),
            escape(&against),
            count(t.pods_evicted as u64),
            count(t.disruptions as u64)
        );
    }
    page.push_str("</div><h2>Comparison</h2><div class=\"panel\">");
    metric_table(&mut page, runs, &metrics(runs, true));
    for r in runs.iter().filter(|r| r.is_baseline()) {
        let groups = r.report.autoscaler.trim_start_matches("static-node-groups");
        let _ = write!(
            page,
            "<p class=\"muted\"><b>{}</b> runs Cluster-Autoscaler-like node groups of {}.</p>",
            escape(&r.label),
            escape(groups.trim().trim_start_matches('(').trim_end_matches(')'))
        );
    }
    for base in runs.iter().filter(|r| r.is_baseline()) {
        let y = base.report.totals.cost_usd;
        page.push_str("<p>");
        for r in runs.iter().filter(|r| !r.is_baseline()) {
            let x = r.report.totals.cost_usd;
            let how = if y <= 0.0 || (x - y).abs() < 0.00005 {
                "the same as".to_string()
            } else if x < y {
                format!("{:.1} % less than", (y - x) / y * 100.0)
            } else {
                format!("{:.1} % more than", (x - y) / y * 100.0)
            };
            let _ = write!(
                page,
                "<b>{}</b> costs {how} <b>{}</b> ({} vs {}).<br>",
                escape(&r.label),
                escape(&base.label),
                format::money_to(x, decimals),
                format::money_to(y, decimals)
            );
        }
        page.push_str("</p>");
    }
    page.push_str("</div><h2>Over time</h2><div class=\"grid\">");
    let end = runs
        .iter()
        .map(|r| r.report.duration_seconds)
        .max()
        .unwrap_or(0);
    let overlay = |title: &str, unit: Unit, f: &dyn Fn(&Sample) -> f64| {
        let lines: Vec<Line> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| Line {
                label: r.label.clone(),
                colour: PALETTE[i % PALETTE.len()],
                points: points(&r.report.timeline, f),
                fill: false,
            })
            .collect();
        overlay_chart(title, unit, end, &lines)
    };
    page.push_str(&overlay("Cumulative cost", Unit::Money, &|s| s.cost_usd));
    page.push_str(&overlay("Nodes", Unit::Count, &nodes_total));
    let bucket = bucket_for(end);
    let lines: Vec<Line> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| Line {
            label: r.label.clone(),
            colour: PALETTE[i % PALETTE.len()],
            points: pending_steps(&r.report.timeline, bucket, end),
            fill: false,
        })
        .collect();
    page.push_str(&overlay_chart(
        &format!(
            "Pending pods (most at once per {})",
            format::seconds(bucket as f64)
        ),
        Unit::Count,
        end,
        &lines,
    ));
    page.push_str(&overlay("Pods evicted (cumulative)", Unit::Count, &|s| {
        s.pods_evicted as f64
    }));
    page.push_str(&overlay("Disruptions (cumulative)", Unit::Count, &|s| {
        s.disruptions as f64
    }));
    page.push_str(&overlay("Running pods", Unit::Count, &|s| {
        s.running_pods as f64
    }));
    page.push_str("</div><h2>Cost by NodePool and capacity type</h2><div class=\"panel\">");
    runs_cost_table(&mut page, runs);
    page.push_str("</div><h2>Disruptions and interruptions by kind</h2><div class=\"panel\">");
    let kinds: Vec<&str> = DISRUPTION_KINDS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| {
            runs.iter()
                .any(|r| r.report.decisions.iter().any(|d| d.kind == *k))
        })
        .collect();
    if kinds.is_empty() {
        page.push_str("<p class=\"muted\">No run disrupted a node.</p>");
    } else {
        let rows: Vec<Metric> = kinds
            .iter()
            .map(|k| Metric {
                name: k.to_string(),
                values: runs
                    .iter()
                    .map(|r| {
                        Value::Count(
                            r.report.decisions.iter().filter(|d| d.kind == *k).count() as u64
                        )
                    })
                    .collect(),
            })
            .collect();
        metric_table(&mut page, runs, &rows);
    }
    page.push_str("</div>");
    for r in runs {
        for note in &r.notes {
            let _ = write!(page, "<p class=\"muted\">note: {}</p>", escape(note));
        }
    }
    page_end(
        &mut page,
        "Each run's decisions, launches, disruption passes and pod placements are in the JSON \
         report (--json).",
    );
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_step_in_round_numbers() {
        assert_eq!(nice_step(1047.0, 4.0, Unit::Count), 500.0);
        assert_eq!(nice_step(3.0, 4.0, Unit::Count), 1.0);
        assert_eq!(nice_step(0.14, 4.0, Unit::Money), 0.05);
        assert_eq!(y_label(0.05, 0.05, Unit::Money), "$0.05");
        assert_eq!(y_label(2000.0, 500.0, Unit::Money), "$2,000");
        assert_eq!(time_step(1800), 300);
        assert_eq!(time_step(86400), 10800);
    }

    #[test]
    fn nodes_held_by_different_pods_group_under_one_reason() {
        assert_eq!(
            any_pod("pod default/render-00040 has annotation karpenter.sh/do-not-disrupt"),
            "a pod has annotation karpenter.sh/do-not-disrupt"
        );
        assert_eq!(
            any_pod("PodDisruptionBudget default/web prevents evicting pod default/web-1"),
            "PodDisruptionBudget default/web prevents evicting a pod"
        );
        assert_eq!(
            any_pod("no replacement is cheaper"),
            "no replacement is cheaper"
        );
    }

    #[test]
    fn a_rounds_launches_share_one_row_grouped_by_type_and_count() {
        let offering = |zone: &str| OfferingRecord {
            instance_type: "m7g.2xlarge".into(),
            zone: zone.into(),
            capacity_type: CapacityType::Spot,
            price: 0.1234,
        };
        let mut report = Report {
            duration_seconds: 3600,
            launch_lists: vec![vec![offering("us-east-1a"), offering("us-east-1b")]],
            ..Report::default()
        };
        for (i, zone) in ["us-east-1a", "us-east-1b", "us-east-1c"]
            .iter()
            .enumerate()
        {
            report.launches.push(LaunchRecord {
                at_seconds: 61,
                node_claim: format!("default-{i}"),
                node: None,
                node_pool: Some("default".into()),
                purpose: "provisioning".into(),
                pods: 4,
                requirements: Vec::new(),
                launch_list_index: 0,
                launched: Some(offering(zone)),
                failed: None,
            });
        }
        let page = report.to_html("t");
        assert!(page.contains("3 × m7g.2xlarge (3 zones, spot)"), "{page}");
        assert!(page.contains("2 offerings of 1 type in 2 zones, spot, $0.1234/h"));
        assert_eq!(page.matches("<details>").count(), 1, "one row");
        assert!(
            page.contains("<td class=\"num\">12</td>"),
            "their pods summed"
        );
    }
}
