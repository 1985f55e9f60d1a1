//! Several runs of one scenario on one page: the comparison table, every
//! run's curves overlaid, the cost split per run and disruptions by kind.

use std::fmt::Write;

use super::chart::{
    DISRUPTION_KINDS, Line, Unit, bucket_for, overlay_chart, pending_steps, points,
};
use super::unschedulable::unschedulable_section;
use super::{PALETTE, cost_rows, escape, nodes_total, page_end, page_start};
use crate::format::{self, count, money};
use crate::report::{CostShare, Sample};
use crate::text::{Metric, Run, Value, metrics};

/// A chart's points from a run's timeline.
type Series<'a> = dyn Fn(&[Sample]) -> Vec<(u64, f64)> + 'a;

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
    page.push_str("</div>");
    let rows: Vec<(&str, _)> = runs
        .iter()
        .flat_map(|r| r.report.unschedulable.iter().map(|u| (r.label.as_str(), u)))
        .collect();
    unschedulable_section(&mut page, &rows, true);
    page.push_str("<h2>Over time</h2><div class=\"grid\">");
    let end = runs
        .iter()
        .map(|r| r.report.duration_seconds)
        .max()
        .unwrap_or(0);
    // One line per run, in the run's colour.
    let lines = |series: &Series| -> Vec<Line> {
        runs.iter()
            .enumerate()
            .map(|(i, r)| Line {
                label: r.label.clone(),
                colour: PALETTE[i % PALETTE.len()],
                points: series(&r.report.timeline),
                fill: false,
            })
            .collect()
    };
    let overlay = |title: &str, unit: Unit, f: &dyn Fn(&Sample) -> f64| {
        overlay_chart(title, unit, end, &lines(&|t| points(t, f)))
    };
    page.push_str(&overlay("Cumulative cost", Unit::Money, &|s| s.cost_usd));
    page.push_str(&overlay("Nodes", Unit::Count, &nodes_total));
    let bucket = bucket_for(end);
    let pending = lines(&|t| pending_steps(t, bucket, end));
    page.push_str(&overlay_chart(
        &format!(
            "Pending pods (most at once per {})",
            format::seconds(bucket as f64)
        ),
        Unit::Count,
        end,
        &pending,
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
