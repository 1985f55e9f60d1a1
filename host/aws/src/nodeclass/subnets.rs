//! `subnetSelectorTerms` → `status.subnets` through DescribeSubnets.

use std::collections::BTreeMap;

use dovetail_api::ec2nodeclass::{Subnet, SubnetSelectorTerm};

use super::selector::{Filter, Query, describe_tags, tag_filters, tag_map};
use crate::api_error::ApiError;

/// EC2's largest page for DescribeSubnets.
const PAGE: i32 = 500;

/// A subnet as DescribeSubnets answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundSubnet {
    pub id: String,
    pub zone: String,
    pub zone_id: Option<String>,
    pub free_ips: i32,
    pub tags: BTreeMap<String, String>,
}

/// The queries for the terms: all IDs in one, each tag term its own.
pub fn queries(terms: &[SubnetSelectorTerm]) -> Vec<Query> {
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for term in terms {
        // An ID wins over tags in the same term, as in Karpenter.
        if let Some(id) = &term.id {
            ids.push(id.clone());
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
            filters: vec![Filter::new("subnet-id", ids)],
            ..Query::default()
        });
    }
    out
}

/// The status list: each subnet once, most free addresses first, then by ID.
pub fn status(found: Vec<FoundSubnet>) -> Vec<Subnet> {
    let mut by_id: BTreeMap<String, FoundSubnet> = BTreeMap::new();
    for s in found {
        by_id.entry(s.id.clone()).or_insert(s);
    }
    let mut list: Vec<FoundSubnet> = by_id.into_values().collect();
    list.sort_by(|a, b| b.free_ips.cmp(&a.free_ips).then_with(|| a.id.cmp(&b.id)));
    list.into_iter()
        .map(|s| Subnet {
            id: s.id,
            zone: s.zone,
            zone_id: s.zone_id,
        })
        .collect()
}

/// The terms as the user wrote them, for a message.
pub fn describe_terms(terms: &[SubnetSelectorTerm]) -> String {
    let parts: Vec<String> = terms
        .iter()
        .map(|t| match &t.id {
            Some(id) if t.tags.is_empty() => format!("{{id: {id}}}"),
            Some(id) => format!("{{id: {id}, tags: {}}}", describe_tags(&t.tags)),
            None => format!("{{tags: {}}}", describe_tags(&t.tags)),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Runs the queries, every page of each.
pub async fn describe(
    ec2: &aws_sdk_ec2::Client,
    terms: &[SubnetSelectorTerm],
) -> Result<Vec<Subnet>, ApiError> {
    let mut found = Vec::new();
    for query in queries(terms) {
        let mut pages = ec2
            .describe_subnets()
            .set_filters(Some(query.filters.iter().map(Filter::to_sdk).collect()))
            .max_results(PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ApiError::from_sdk("ec2:DescribeSubnets", &e))?;
            for s in page.subnets() {
                let tags = tag_map(s.tags().iter().map(|t| (t.key(), t.value())));
                let Some(id) = s.subnet_id() else { continue };
                if !query.admits(&tags) {
                    continue;
                }
                found.push(FoundSubnet {
                    id: id.to_owned(),
                    zone: s.availability_zone().unwrap_or_default().to_owned(),
                    zone_id: s.availability_zone_id().map(str::to_owned),
                    free_ips: s.available_ip_address_count().unwrap_or(0),
                    tags,
                });
            }
        }
    }
    Ok(status(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(id: Option<&str>, tags: &[(&str, &str)]) -> SubnetSelectorTerm {
        SubnetSelectorTerm {
            id: id.map(str::to_owned),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn ids_merge_into_one_query_and_each_tag_term_is_its_own() {
        let q = queries(&[
            term(Some("subnet-1"), &[]),
            term(None, &[("Name", "private-*")]),
            term(Some("subnet-2"), &[]),
            term(None, &[("discovery", "*")]),
        ]);
        assert_eq!(q.len(), 3);
        assert_eq!(
            q[0].filters,
            vec![Filter::new("tag:Name", vec!["private-*".into()])]
        );
        assert_eq!(
            q[1].filters,
            vec![Filter::new("tag-key", vec!["discovery".into()])]
        );
        assert_eq!(
            q[2].filters,
            vec![Filter::new(
                "subnet-id",
                vec!["subnet-1".into(), "subnet-2".into()]
            )]
        );
    }

    #[test]
    fn status_lists_each_subnet_once_most_free_addresses_first() {
        let s = |id: &str, free| FoundSubnet {
            id: id.into(),
            zone: "us-east-1a".into(),
            free_ips: free,
            ..FoundSubnet::default()
        };
        let list = status(vec![
            s("subnet-b", 10),
            s("subnet-a", 10),
            s("subnet-c", 99),
            s("subnet-b", 10),
        ]);
        let ids: Vec<&str> = list.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["subnet-c", "subnet-a", "subnet-b"]);
    }

    #[test]
    fn terms_are_described_as_written() {
        assert_eq!(
            describe_terms(&[term(None, &[("Name", "x*")]), term(Some("subnet-1"), &[])]),
            "[{tags: {Name: \"x*\"}}, {id: subnet-1}]"
        );
    }
}
