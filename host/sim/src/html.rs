//! A self-contained HTML report: inline SVG charts, no scripts, no network.

use std::fmt::Write;

use crate::report::{Report, Sample};

const W: f64 = 760.0;
const H: f64 = 180.0;
const PAD: f64 = 40.0;
/// A day can hold thousands of decisions; the JSON report has them all.
const MAX_DECISIONS: usize = 1_000;

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
}

/// A line: label, colour, and its value at each sample.
type Series<'a> = (&'a str, &'a str, &'a dyn Fn(&Sample) -> f64);

/// One chart of `series` over the timeline.
fn chart(title: &str, samples: &[Sample], series: &[Series<'_>]) -> String {
    let t_max = samples.last().map_or(1, |s| s.at_seconds.max(1)) as f64;
    let y_max = samples
        .iter()
        .flat_map(|s| series.iter().map(move |(_, _, f)| f(s)))
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let x = |t: u64| PAD + (t as f64 / t_max) * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD / 2.0 - (v / y_max) * (H - PAD);
    let mut svg = format!(
        "<h2>{}</h2><svg width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\">",
        escape(title),
        escape(title)
    );
    let _ = write!(
        svg,
        "<line x1=\"{PAD}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>",
        y(0.0),
        W - PAD,
        y(0.0)
    );
    let _ = write!(
        svg,
        "<text x=\"2\" y=\"{:.1}\" font-size=\"11\">{:.4}</text><text x=\"2\" y=\"{:.1}\" font-size=\"11\">0</text>",
        y(y_max) + 4.0,
        y_max,
        y(0.0)
    );
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{H}\" font-size=\"11\" text-anchor=\"end\">{} min</text>",
        W - PAD,
        (t_max / 60.0).round()
    );
    for (i, (label, colour, f)) in series.iter().enumerate() {
        let points: Vec<String> = samples
            .iter()
            .map(|s| format!("{:.1},{:.1}", x(s.at_seconds), y(f(s))))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"14\" font-size=\"12\" fill=\"{colour}\">{}</text>",
            PAD + 140.0 * i as f64,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

impl Report {
    /// The report as one HTML page that opens without a network.
    pub fn to_html(&self, title: &str) -> String {
        let t = &self.totals;
        let mut page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0}</title>\
             <style>body{{font-family:sans-serif;margin:2em}}td{{padding:2px 12px}}</style></head><body><h1>{0}</h1>",
            escape(title)
        );
        let _ = write!(
            page,
            "<table><tr><td>simulated</td><td>{} min</td></tr><tr><td>cost</td><td>${:.4}</td></tr>\
             <tr><td>nodes launched / terminated</td><td>{} / {}</td></tr><tr><td>pods evicted</td><td>{}</td></tr>\
             <tr><td>pending p50 / p95 / p99 / max</td><td>{:.0} / {:.0} / {:.0} / {:.0} s</td></tr></table>",
            self.duration_seconds / 60,
            t.cost_usd,
            t.nodes_launched,
            t.nodes_terminated,
            t.pods_evicted,
            t.pending_p50_seconds,
            t.pending_p95_seconds,
            t.pending_p99_seconds,
            t.pending_max_seconds
        );
        page.push_str(&chart(
            "Nodes by capacity type",
            &self.timeline,
            &[
                ("on-demand", "#1f77b4", &|s: &Sample| {
                    s.nodes_on_demand as f64
                }),
                ("spot", "#ff7f0e", &|s: &Sample| s.nodes_spot as f64),
            ],
        ));
        page.push_str(&chart(
            "Pending pods",
            &self.timeline,
            &[("pending", "#d62728", &|s: &Sample| s.pending_pods as f64)],
        ));
        page.push_str(&chart(
            "Cumulative cost (USD)",
            &self.timeline,
            &[("cost", "#2ca02c", &|s: &Sample| s.cost_usd)],
        ));
        let shown = self.decisions.len().min(MAX_DECISIONS);
        let _ = write!(
            page,
            "<h2>Decisions ({} of {})</h2><table><tr><th>time</th><th>kind</th>\
             <th>nodes</th><th>launched</th><th>saves $/h</th><th>decided by</th>\
             <th>reason</th></tr>",
            shown,
            self.decisions.len()
        );
        for d in &self.decisions[..shown] {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                clock(d.at_seconds),
                escape(&d.kind),
                escape(&d.nodes.join(", ")),
                escape(&d.launched.join(", ")),
                if d.savings_per_hour > 0.0 {
                    format!("{:.4}", d.savings_per_hour)
                } else {
                    String::new()
                },
                escape(&d.decided_by),
                escape(&d.reason)
            );
        }
        page.push_str("</table></body></html>\n");
        page
    }
}
