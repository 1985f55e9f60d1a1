//! `securityGroupSelectorTerms` → `status.securityGroups` through
//! DescribeSecurityGroups.

use std::collections::BTreeMap;

use dovetail_api::ec2nodeclass::{SecurityGroup, SecurityGroupSelectorTerm};

use super::selector::{Filter, Query, describe_tags, tag_filters, tag_map};
use crate::api_error::ApiError;

/// EC2's largest page for DescribeSecurityGroups.
const PAGE: i32 = 1000;

/// The queries for the terms: all IDs in one, all names in one, each tag
/// term its own.
pub fn queries(terms: &[SecurityGroupSelectorTerm]) -> Vec<Query> {
    let mut out = Vec::new();
    let mut ids = Vec::new();
    let mut names = Vec::new();
    for term in terms {
        // An ID wins over a name, a name over tags, as in Karpenter.
        if let Some(id) = &term.id {
            ids.push(id.clone());
        } else if let Some(name) = &term.name {
            names.push(name.clone());
        } else if !term.tags.is_empty() {
            out.push(Query {
                filters: tag_filters(&term.tags),
                owners: Vec::new(),
                tags: term.tags.clone(),
            });
        }
    }
    if !ids.is_empty() {
        out.push(Query {
            filters: vec![Filter::new("group-id", ids)],
            ..Query::default()
        });
    }
    if !names.is_empty() {
        out.push(Query {
            filters: vec![Filter::new("group-name", names)],
            ..Query::default()
        });
    }
    out
}

/// The status list: each group once, by ID.
pub fn status(found: Vec<SecurityGroup>) -> Vec<SecurityGroup> {
    let by_id: BTreeMap<String, SecurityGroup> =
        found.into_iter().map(|g| (g.id.clone(), g)).collect();
    by_id.into_values().collect()
}

/// The terms as the user wrote them, for a message.
pub fn describe_terms(terms: &[SecurityGroupSelectorTerm]) -> String {
    let parts: Vec<String> = terms
        .iter()
        .map(|t| {
            let mut fields = Vec::new();
            if let Some(id) = &t.id {
                fields.push(format!("id: {id}"));
            }
            if let Some(name) = &t.name {
                fields.push(format!("name: {name}"));
            }
            if !t.tags.is_empty() {
                fields.push(format!("tags: {}", describe_tags(&t.tags)));
            }
            format!("{{{}}}", fields.join(", "))
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Runs the queries, every page of each.
pub async fn describe(
    ec2: &aws_sdk_ec2::Client,
    terms: &[SecurityGroupSelectorTerm],
) -> Result<Vec<SecurityGroup>, ApiError> {
    let mut found = Vec::new();
    for query in queries(terms) {
        let mut pages = ec2
            .describe_security_groups()
            .set_filters(Some(query.filters.iter().map(Filter::to_sdk).collect()))
            .max_results(PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ApiError::from_sdk("ec2:DescribeSecurityGroups", &e))?;
            for g in page.security_groups() {
                let tags = tag_map(g.tags().iter().map(|t| (t.key(), t.value())));
                let Some(id) = g.group_id() else { continue };
                if !query.admits(&tags) {
                    continue;
                }
                found.push(SecurityGroup {
                    id: id.to_owned(),
                    name: g.group_name().map(str::to_owned),
                });
            }
        }
    }
    Ok(status(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_merge_and_tag_terms_stay_apart() {
        let q = queries(&[
            SecurityGroupSelectorTerm {
                id: Some("sg-1".into()),
                ..Default::default()
            },
            SecurityGroupSelectorTerm {
                name: Some("nodes".into()),
                ..Default::default()
            },
            SecurityGroupSelectorTerm {
                tags: [("team".to_string(), "a*".to_string())].into(),
                ..Default::default()
            },
            SecurityGroupSelectorTerm {
                id: Some("sg-2".into()),
                ..Default::default()
            },
        ]);
        assert_eq!(
            q.iter().map(|q| q.filters.clone()).collect::<Vec<_>>(),
            vec![
                vec![Filter::new("tag:team", vec!["a*".into()])],
                vec![Filter::new("group-id", vec!["sg-1".into(), "sg-2".into()])],
                vec![Filter::new("group-name", vec!["nodes".into()])],
            ]
        );
    }

    #[test]
    fn status_is_each_group_once_by_id() {
        let g = |id: &str| SecurityGroup {
            id: id.into(),
            name: None,
        };
        assert_eq!(
            status(vec![g("sg-b"), g("sg-a"), g("sg-b")]),
            vec![g("sg-a"), g("sg-b")]
        );
    }
}
