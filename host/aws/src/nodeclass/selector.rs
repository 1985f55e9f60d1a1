//! Selector terms as EC2 Describe queries: terms are ORed (one query each,
//! IDs merged into one), a term's tags ANDed; a tag value `*` means "has
//! the key", other values are EC2 wildcards (`*`, `?`).

use std::collections::BTreeMap;

/// One EC2 `Filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn new(name: &str, values: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            values,
        }
    }

    pub fn to_sdk(&self) -> aws_sdk_ec2::types::Filter {
        aws_sdk_ec2::types::Filter::builder()
            .name(&self.name)
            .set_values(Some(self.values.clone()))
            .build()
    }
}

/// One Describe call (paged) for one or more terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub filters: Vec<Filter>,
    /// `Owners` (DescribeImages only); empty means any.
    pub owners: Vec<String>,
    /// The term's tags, checked again on what EC2 answers, so a result
    /// always satisfies its term whatever the server's filter support.
    pub tags: BTreeMap<String, String>,
}

impl Query {
    /// Whether a resource EC2 answered with satisfies the query's tags.
    pub fn admits(&self, resource_tags: &BTreeMap<String, String>) -> bool {
        tags_match(&self.tags, resource_tags)
    }
}

/// The filters for a term's tags.
pub fn tag_filters(tags: &BTreeMap<String, String>) -> Vec<Filter> {
    tags.iter()
        .map(|(k, v)| {
            if v == "*" {
                Filter::new("tag-key", vec![k.clone()])
            } else {
                Filter::new(&format!("tag:{k}"), vec![v.clone()])
            }
        })
        .collect()
}

/// Whether a resource's tags satisfy every tag of a term (values are EC2
/// wildcards).
pub fn tags_match(term: &BTreeMap<String, String>, resource: &BTreeMap<String, String>) -> bool {
    term.iter().all(|(k, pattern)| {
        resource
            .get(k)
            .is_some_and(|value| pattern == "*" || wildcard_match(pattern, value))
    })
}

/// EC2's filter wildcards: `*` any run of characters, `?` exactly one.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    // Greedy matching with backtracking to the last `*`.
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// An SDK tag list as a map.
pub fn tag_map<'a>(
    tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    tags.into_iter()
        .filter_map(|(k, v)| Some((k?.to_owned(), v.unwrap_or_default().to_owned())))
        .collect()
}

/// A term's tags as the user wrote them, for messages: `{Name: "a*"}`.
pub fn describe_tags(tags: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = tags.iter().map(|(k, v)| format!("{k}: {v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_star_value_filters_on_the_key_alone() {
        assert_eq!(
            tag_filters(&tags(&[
                ("karpenter.sh/discovery", "*"),
                ("Name", "private-*")
            ])),
            vec![
                Filter::new("tag:Name", vec!["private-*".into()]),
                Filter::new("tag-key", vec!["karpenter.sh/discovery".into()]),
            ]
        );
    }

    #[test]
    fn wildcards_match_as_ec2_does() {
        assert!(wildcard_match("private-*", "private-a"));
        assert!(wildcard_match("private-*", "private-"));
        assert!(wildcard_match("*-a", "private-a"));
        assert!(wildcard_match("p?ivate", "private"));
        assert!(wildcard_match("*a*b*", "xxaxxbxx"));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("exact", "exactly"));
        assert!(!wildcard_match("private-*", "public-a"));
        assert!(!wildcard_match("p?", "p"));
        assert!(!wildcard_match("*a*b", "xxaxxbxc"));
    }

    #[test]
    fn every_tag_of_a_term_must_match() {
        let resource = tags(&[("Name", "private-a"), ("team", "x")]);
        assert!(tags_match(
            &tags(&[("Name", "private-*"), ("team", "*")]),
            &resource
        ));
        assert!(!tags_match(
            &tags(&[("Name", "private-*"), ("env", "*")]),
            &resource
        ));
        assert!(!tags_match(&tags(&[("team", "y")]), &resource));
        assert!(tags_match(&BTreeMap::new(), &resource));
    }
}
