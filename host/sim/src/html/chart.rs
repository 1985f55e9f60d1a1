//! Inline SVG charts over simulated time: lines, areas and stacked bars on
//! an `hh:mm` axis with round value ticks.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::escape;
use crate::format::{self, count, hhmm};
use crate::report::{DecisionRecord, Sample};

/// The chart's drawing area, in SVG units (the page scales it).
const W: f64 = 640.0;

const H: f64 = 230.0;

const LEFT: f64 = 64.0;

const RIGHT: f64 = 16.0;

const TOP: f64 = 30.0;

const BOTTOM: f64 = 28.0;

const PENDING: &str = "#ea580c";

/// What a chart's values are.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Unit {
    Count,
    Money,
}

/// One line of a chart; `fill` makes it an area down to zero.
pub(super) struct Line {
    pub(super) label: String,
    pub(super) colour: &'static str,
    pub(super) points: Vec<(u64, f64)>,
    pub(super) fill: bool,
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
pub(super) fn line_chart(title: &str, unit: Unit, t_max: u64, lines: &[Line]) -> String {
    let widths = vec![2.0; lines.len()];
    chart_of_lines(title, unit, t_max, lines, &widths)
}

/// Runs' lines over each other: each drawn thinner than the one before, so
/// runs that agree show as stripes instead of hiding each other.
pub(super) fn overlay_chart(title: &str, unit: Unit, t_max: u64, lines: &[Line]) -> String {
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
pub(super) fn bucket_for(t_max: u64) -> u64 {
    [60, 120, 300, 600, 900, 1800, 3600, 7200]
        .into_iter()
        .find(|b| t_max / b <= 48)
        .unwrap_or(14400)
}

pub(super) fn points(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> Vec<(u64, f64)> {
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
pub(super) const DISRUPTION_KINDS: [(&str, &str); 7] = [
    ("Emptiness", "#16a34a"),
    ("SingleNodeConsolidation", "#2563eb"),
    ("MultiNodeConsolidation", "#9333ea"),
    ("Drift", "#ea580c"),
    ("Expiration", "#6b7280"),
    ("interruption", "#dc2626"),
    ("scale-down", "#0891b2"),
];

pub(super) fn disruption_chart(decisions: &[DecisionRecord], t_max: u64) -> String {
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

pub(super) fn pending_chart(samples: &[Sample], t_max: u64) -> String {
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
pub(super) fn pending_steps(samples: &[Sample], bucket: u64, t_max: u64) -> Vec<(u64, f64)> {
    most_pending_per_bucket(samples, bucket)
        .into_iter()
        .flat_map(|(t, v)| [(t, v), ((t + bucket).min(t_max), v)])
        .collect()
}

pub(super) fn evictions_chart(samples: &[Sample], t_max: u64) -> String {
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
}
