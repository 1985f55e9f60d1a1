//! The disruption passes: each NodePool's allowed disruptions per reason,
//! why nodes were not consolidated, and what came of each proposed command.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{clock, escape, nodes_cell};
use crate::format::{count, hhmm};
use crate::report::{Outcome, Report};

const MAX_PASSES: usize = 200;

const MAX_REASONS: usize = 50;

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

pub(super) fn passes_section(out: &mut String, r: &Report) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
