//! `amiSelectorTerms` → `status.amis`: an alias through the SSM public
//! parameters the EKS and Bottlerocket teams publish, other terms through
//! DescribeImages; one AMI per requirement set (architecture and GPU or
//! Neuron variant), not deprecated first, then newest.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use dovetail_api::ec2nodeclass::{Ami, AmiRequirement, AmiSelectorTerm};
use k8s_openapi::jiff::Timestamp;

use super::selector::{Filter, Query, describe_tags, tag_filters, tag_map};
use crate::api_error::ApiError;

pub const ARCH_LABEL: &str = "kubernetes.io/arch";
pub const GPU_COUNT_LABEL: &str = "karpenter.k8s.aws/instance-gpu-count";
pub const ACCELERATOR_COUNT_LABEL: &str = "karpenter.k8s.aws/instance-accelerator-count";

/// EC2's largest page for DescribeImages.
const PAGE: i32 = 1000;
/// GetParameters takes at most ten names.
const SSM_BATCH: usize = 10;

/// Which accelerators an AMI is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    Standard,
    Nvidia,
    Neuron,
}

/// An SSM public parameter an alias reads, and what its AMI is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasParameter {
    pub name: String,
    /// `amd64` or `arm64`.
    pub arch: &'static str,
    pub variants: Vec<Variant>,
}

/// Why an alias names no parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    #[error("alias `{0}` is not `family@version`: write it like `al2023@latest`")]
    Malformed(String),
    #[error(
        "alias family `{0}` is not supported: use one of al2, al2023, bottlerocket, windows2019, windows2022, windows2025"
    )]
    UnknownFamily(String),
    #[error("alias `{alias}` is not supported on Kubernetes {kubernetes}: {fix}")]
    Unsupported {
        alias: String,
        kubernetes: String,
        fix: &'static str,
    },
    #[error("the cluster's Kubernetes version `{0}` is not `major.minor`: give it like `1.33`")]
    KubernetesVersion(String),
}

fn minor_version(kubernetes: &str) -> Result<(u32, u32), AliasError> {
    let bad = || AliasError::KubernetesVersion(kubernetes.to_owned());
    let (major, rest) = kubernetes.split_once('.').ok_or_else(bad)?;
    let minor = rest.split('.').next().ok_or_else(bad)?;
    Ok((
        major.parse().map_err(|_| bad())?,
        minor.parse().map_err(|_| bad())?,
    ))
}

/// The parameters an alias reads for a cluster's `major.minor` version.
pub fn alias_parameters(alias: &str, kubernetes: &str) -> Result<Vec<AliasParameter>, AliasError> {
    let (family, version) = alias
        .split_once('@')
        .filter(|(f, v)| !f.is_empty() && !v.is_empty())
        .ok_or_else(|| AliasError::Malformed(alias.to_owned()))?;
    let (major, minor) = minor_version(kubernetes)?;
    let k8s = format!("{major}.{minor}");
    let p = |name: String, arch, variants: &[Variant]| AliasParameter {
        name,
        arch,
        variants: variants.to_vec(),
    };
    use Variant::*;
    let unsupported = |fix| AliasError::Unsupported {
        alias: alias.to_owned(),
        kubernetes: k8s.clone(),
        fix,
    };
    Ok(match family {
        "al2023" => {
            let base = format!("/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2023");
            let mut out = Vec::new();
            for (ssm_arch, arch, variants) in [
                ("x86_64", "amd64", &[Standard, Nvidia, Neuron][..]),
                ("arm64", "arm64", &[Standard, Nvidia][..]),
            ] {
                for variant in variants {
                    let v = match variant {
                        Standard => "standard",
                        Nvidia => "nvidia",
                        Neuron => "neuron",
                    };
                    let leaf = if version == "latest" {
                        "recommended".to_owned()
                    } else {
                        format!("amazon-eks-node-al2023-{ssm_arch}-{v}-{k8s}-{version}")
                    };
                    out.push(p(
                        format!("{base}/{ssm_arch}/{v}/{leaf}/image_id"),
                        arch,
                        &[*variant],
                    ));
                }
            }
            out
        }
        "al2" => {
            if (major, minor) >= (1, 33) {
                return Err(unsupported(
                    "Amazon Linux 2 AMIs are not published for Kubernetes 1.33 and later; use `al2023@latest`",
                ));
            }
            let base = format!("/aws/service/eks/optimized-ami/{k8s}");
            let leaf = |name: &str| {
                if version == "latest" {
                    "recommended".to_owned()
                } else {
                    format!("{name}-{k8s}-{version}")
                }
            };
            vec![
                p(
                    format!("{base}/amazon-linux-2/{}/image_id", leaf("amazon-eks-node")),
                    "amd64",
                    &[Standard],
                ),
                p(
                    format!(
                        "{base}/amazon-linux-2-arm64/{}/image_id",
                        leaf("amazon-eks-arm64-node")
                    ),
                    "arm64",
                    &[Standard],
                ),
                p(
                    format!(
                        "{base}/amazon-linux-2-gpu/{}/image_id",
                        leaf("amazon-eks-gpu-node")
                    ),
                    "amd64",
                    &[Nvidia, Neuron],
                ),
            ]
        }
        "bottlerocket" => {
            let v = if version == "latest" {
                version
            } else {
                version.strip_prefix('v').unwrap_or(version)
            };
            let base = "/aws/service/bottlerocket";
            vec![
                p(
                    format!("{base}/aws-k8s-{k8s}/x86_64/{v}/image_id"),
                    "amd64",
                    &[Standard, Neuron],
                ),
                p(
                    format!("{base}/aws-k8s-{k8s}/arm64/{v}/image_id"),
                    "arm64",
                    &[Standard],
                ),
                p(
                    format!("{base}/aws-k8s-{k8s}-nvidia/x86_64/{v}/image_id"),
                    "amd64",
                    &[Nvidia],
                ),
                p(
                    format!("{base}/aws-k8s-{k8s}-nvidia/arm64/{v}/image_id"),
                    "arm64",
                    &[Nvidia],
                ),
            ]
        }
        "windows2019" | "windows2022" | "windows2025" => {
            if version != "latest" {
                return Err(unsupported("Windows aliases take only `latest`"));
            }
            if family == "windows2025" && (major, minor) < (1, 35) {
                return Err(unsupported(
                    "Windows Server 2025 AMIs are published from Kubernetes 1.35; use `windows2022@latest`",
                ));
            }
            let year = &family["windows".len()..];
            vec![p(
                format!(
                    "/aws/service/ami-windows-latest/Windows_Server-{year}-English-Core-EKS_Optimized-{k8s}/image_id"
                ),
                "amd64",
                &[Standard],
            )]
        }
        other => return Err(AliasError::UnknownFamily(other.to_owned())),
    })
}

/// What an AMI of `variant` for `arch` may run on, sorted by key.
pub fn requirements(arch: &str, variant: Option<Variant>) -> Vec<AmiRequirement> {
    let r = |key: &str, operator: &str, values: &[&str]| AmiRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let mut out = vec![r(ARCH_LABEL, "In", &[arch])];
    match variant {
        None => {}
        Some(Variant::Standard) => {
            out.push(r(GPU_COUNT_LABEL, "DoesNotExist", &[]));
            out.push(r(ACCELERATOR_COUNT_LABEL, "DoesNotExist", &[]));
        }
        Some(Variant::Nvidia) => out.push(r(GPU_COUNT_LABEL, "Exists", &[])),
        Some(Variant::Neuron) => out.push(r(ACCELERATOR_COUNT_LABEL, "Exists", &[])),
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// The Kubernetes architecture of an EC2 image architecture.
pub fn image_arch(architecture: &str) -> Option<&'static str> {
    match architecture {
        "x86_64" | "x86_64_mac" => Some("amd64"),
        "arm64" | "arm64_mac" => Some("arm64"),
        _ => None,
    }
}

/// The DescribeImages queries for terms other than an alias: every ID (and
/// every AMI an `ssmParameter` named, given in `ssm_ids`) in one query; a
/// name with its owner (else `self` and `amazon`, so another account's
/// AMI is used only when asked for); tags with the owner if given.
pub fn queries(terms: &[AmiSelectorTerm], ssm_ids: &[String]) -> Vec<Query> {
    let mut out = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for term in terms {
        if let Some(id) = &term.id {
            ids.push(id.clone());
            continue;
        }
        if term.alias.is_some() || term.ssm_parameter.is_some() {
            continue;
        }
        let mut query = Query {
            owners: term.owner.iter().cloned().collect(),
            tags: term.tags.clone(),
            ..Query::default()
        };
        if let Some(name) = &term.name {
            if query.owners.is_empty() {
                query.owners = vec!["self".into(), "amazon".into()];
            }
            query.filters.push(Filter::new("name", vec![name.clone()]));
        }
        query.filters.extend(tag_filters(&term.tags));
        if !query.filters.is_empty() {
            out.push(query);
        }
    }
    ids.extend(ssm_ids.iter().cloned());
    if !ids.is_empty() {
        out.push(Query {
            filters: vec![Filter::new("image-id", ids)],
            ..Query::default()
        });
    }
    out
}

/// An image as DescribeImages answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundImage {
    pub id: String,
    pub name: Option<String>,
    /// EC2's architecture (`x86_64`, `arm64`).
    pub architecture: String,
    pub creation_date: Option<String>,
    pub deprecation_time: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl FoundImage {
    pub fn deprecated(&self, now: Timestamp) -> bool {
        self.deprecation_time
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .is_some_and(|t| t <= now)
    }

    fn created(&self) -> Option<Timestamp> {
        self.creation_date.as_deref()?.parse().ok()
    }
}

/// Better first: not deprecated, newest creation, then name descending
/// (and ID, so the order is total).
fn better(a: &FoundImage, b: &FoundImage, now: Timestamp) -> Ordering {
    a.deprecated(now)
        .cmp(&b.deprecated(now))
        .then_with(|| b.created().cmp(&a.created()))
        .then_with(|| b.creation_date.cmp(&a.creation_date))
        .then_with(|| b.name.cmp(&a.name))
        .then_with(|| a.id.cmp(&b.id))
}

/// One AMI per requirement set, the best of each (see [`better`]); the
/// list is ordered best first.
pub fn choose(candidates: Vec<(FoundImage, Vec<AmiRequirement>)>, now: Timestamp) -> Vec<Ami> {
    let mut best: Vec<(FoundImage, Vec<AmiRequirement>)> = Vec::new();
    for (image, reqs) in candidates {
        match best.iter_mut().find(|(_, r)| *r == reqs) {
            Some(slot) => {
                if better(&image, &slot.0, now) == Ordering::Less {
                    slot.0 = image;
                }
            }
            None => best.push((image, reqs)),
        }
    }
    best.sort_by(|(a, ra), (b, rb)| {
        better(a, b, now).then_with(|| {
            let key = |r: &[AmiRequirement]| {
                r.iter()
                    .map(|q| format!("{}{}{:?}", q.key, q.operator, q.values))
                    .collect::<Vec<_>>()
            };
            key(ra).cmp(&key(rb))
        })
    });
    best.into_iter()
        .map(|(image, requirements)| Ami {
            deprecated: image.deprecated(now).then_some(true),
            id: image.id,
            name: image.name,
            requirements,
        })
        .collect()
}

/// The candidates for custom terms: each image once, for its architecture.
pub fn custom_candidates(found: Vec<FoundImage>) -> Vec<(FoundImage, Vec<AmiRequirement>)> {
    let mut seen = std::collections::BTreeSet::new();
    found
        .into_iter()
        .filter(|i| seen.insert(i.id.clone()))
        .filter_map(|i| {
            let arch = image_arch(&i.architecture)?;
            Some((i, requirements(arch, None)))
        })
        .collect()
}

/// The candidates for an alias: each image for every variant its
/// parameters name. `values` maps parameter names to the AMI IDs read.
pub fn alias_candidates(
    parameters: &[AliasParameter],
    values: &BTreeMap<String, String>,
    found: &[FoundImage],
) -> Vec<(FoundImage, Vec<AmiRequirement>)> {
    let mut out = Vec::new();
    for p in parameters {
        let Some(id) = values.get(&p.name) else {
            continue;
        };
        let Some(image) = found.iter().find(|i| &i.id == id) else {
            continue;
        };
        for v in &p.variants {
            out.push((image.clone(), requirements(p.arch, Some(*v))));
        }
    }
    out
}

/// The terms as the user wrote them, for a message.
pub fn describe_terms(terms: &[AmiSelectorTerm]) -> String {
    let parts: Vec<String> = terms
        .iter()
        .map(|t| {
            let mut fields = Vec::new();
            for (k, v) in [
                ("alias", &t.alias),
                ("id", &t.id),
                ("name", &t.name),
                ("owner", &t.owner),
                ("ssmParameter", &t.ssm_parameter),
            ] {
                if let Some(v) = v {
                    fields.push(format!("{k}: {v}"));
                }
            }
            if !t.tags.is_empty() {
                fields.push(format!("tags: {}", describe_tags(&t.tags)));
            }
            format!("{{{}}}", fields.join(", "))
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Why no AMI was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmiFailure {
    /// The alias cannot be used on this cluster (terminal until changed).
    UnsupportedAlias(AliasError),
    /// A call failed; the last resolved AMIs stand.
    Api(ApiError),
}

/// Resolves the terms (an alias for `kubernetes`, `major.minor`). An empty
/// list means nothing matched.
pub async fn resolve(
    clients: &crate::clients::Clients,
    terms: &[AmiSelectorTerm],
    kubernetes: &str,
    now: Timestamp,
) -> Result<Vec<Ami>, AmiFailure> {
    if let Some(alias) = terms.iter().find_map(|t| t.alias.as_deref()) {
        let parameters =
            alias_parameters(alias, kubernetes).map_err(AmiFailure::UnsupportedAlias)?;
        let names: Vec<String> = parameters.iter().map(|p| p.name.clone()).collect();
        let values = read_parameters(&clients.ssm, &names)
            .await
            .map_err(AmiFailure::Api)?;
        let ids: Vec<String> = values.values().cloned().collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let query = Query {
            filters: vec![Filter::new("image-id", ids)],
            ..Query::default()
        };
        let found = describe_images(&clients.ec2, &[query])
            .await
            .map_err(AmiFailure::Api)?;
        return Ok(choose(alias_candidates(&parameters, &values, &found), now));
    }
    let names: Vec<String> = terms
        .iter()
        .filter_map(|t| t.ssm_parameter.clone())
        .collect();
    let ssm_ids: Vec<String> = read_parameters(&clients.ssm, &names)
        .await
        .map_err(AmiFailure::Api)?
        .into_values()
        .collect();
    let found = describe_images(&clients.ec2, &queries(terms, &ssm_ids))
        .await
        .map_err(AmiFailure::Api)?;
    Ok(choose(custom_candidates(found), now))
}

/// Parameter name → AMI ID for the parameters that exist and hold one.
async fn read_parameters(
    ssm: &aws_sdk_ssm::Client,
    names: &[String],
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for batch in names.chunks(SSM_BATCH) {
        let answer = ssm
            .get_parameters()
            .set_names(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("ssm:GetParameters", &e))?;
        // Names that do not exist come back in InvalidParameters: skipped,
        // as a variant not published for a version is normal.
        for p in answer.parameters() {
            if let (Some(name), Some(value)) = (p.name(), p.value())
                && value.starts_with("ami-")
            {
                out.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    Ok(out)
}

async fn describe_images(
    ec2: &aws_sdk_ec2::Client,
    queries: &[Query],
) -> Result<Vec<FoundImage>, ApiError> {
    let mut found = Vec::new();
    for query in queries {
        let mut filters: Vec<_> = query.filters.iter().map(Filter::to_sdk).collect();
        filters.push(Filter::new("state", vec!["available".into()]).to_sdk());
        let mut pages = ec2
            .describe_images()
            .set_filters(Some(filters))
            .set_owners((!query.owners.is_empty()).then(|| query.owners.clone()))
            .include_deprecated(true)
            .max_results(PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ApiError::from_sdk("ec2:DescribeImages", &e))?;
            for i in page.images() {
                let tags = tag_map(i.tags().iter().map(|t| (t.key(), t.value())));
                let Some(id) = i.image_id() else { continue };
                if !query.admits(&tags) {
                    continue;
                }
                found.push(FoundImage {
                    id: id.to_owned(),
                    name: i.name().map(str::to_owned),
                    architecture: i
                        .architecture()
                        .map(|a| a.as_str().to_owned())
                        .unwrap_or_default(),
                    creation_date: i.creation_date().map(str::to_owned),
                    deprecation_time: i.deprecation_time().map(str::to_owned),
                    tags,
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2025-06-01T00:00:00Z".parse().expect("a time")
    }

    fn image(id: &str, arch: &str, created: &str) -> FoundImage {
        FoundImage {
            id: id.into(),
            name: Some(format!("name-{id}")),
            architecture: arch.into(),
            creation_date: Some(created.into()),
            ..FoundImage::default()
        }
    }

    #[test]
    fn al2023_latest_reads_the_recommended_parameters_of_every_variant() {
        let p = alias_parameters("al2023@latest", "1.33").expect("supported");
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id",
                "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/nvidia/recommended/image_id",
                "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/neuron/recommended/image_id",
                "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/arm64/standard/recommended/image_id",
                "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/arm64/nvidia/recommended/image_id",
            ]
        );
        assert_eq!(p[3].arch, "arm64");
        assert_eq!(p[1].variants, [Variant::Nvidia]);
    }

    #[test]
    fn a_pinned_al2023_version_names_the_release() {
        let p = alias_parameters("al2023@v20240807", "1.30.2").expect("supported");
        assert_eq!(
            p[0].name,
            "/aws/service/eks/optimized-ami/1.30/amazon-linux-2023/x86_64/standard/amazon-eks-node-al2023-x86_64-standard-1.30-v20240807/image_id"
        );
    }

    #[test]
    fn bottlerocket_strips_the_leading_v_and_shares_the_x86_parameter() {
        let p = alias_parameters("bottlerocket@v1.20.3", "1.31").expect("supported");
        assert_eq!(
            p[0].name,
            "/aws/service/bottlerocket/aws-k8s-1.31/x86_64/1.20.3/image_id"
        );
        assert_eq!(p[0].variants, [Variant::Standard, Variant::Neuron]);
        assert_eq!(
            p[3].name,
            "/aws/service/bottlerocket/aws-k8s-1.31-nvidia/arm64/1.20.3/image_id"
        );
        let latest = alias_parameters("bottlerocket@latest", "1.31").expect("supported");
        assert_eq!(
            latest[1].name,
            "/aws/service/bottlerocket/aws-k8s-1.31/arm64/latest/image_id"
        );
    }

    #[test]
    fn al2_and_windows2025_are_refused_where_not_published() {
        assert!(matches!(
            alias_parameters("al2@latest", "1.33"),
            Err(AliasError::Unsupported { .. })
        ));
        let al2 = alias_parameters("al2@latest", "1.32").expect("supported");
        assert_eq!(
            al2[2].name,
            "/aws/service/eks/optimized-ami/1.32/amazon-linux-2-gpu/recommended/image_id"
        );
        assert!(matches!(
            alias_parameters("windows2025@latest", "1.34"),
            Err(AliasError::Unsupported { .. })
        ));
        assert_eq!(
            alias_parameters("windows2022@latest", "1.34").expect("supported")[0].name,
            "/aws/service/ami-windows-latest/Windows_Server-2022-English-Core-EKS_Optimized-1.34/image_id"
        );
        assert!(matches!(
            alias_parameters("al2023", "1.33"),
            Err(AliasError::Malformed(_))
        ));
        assert!(matches!(
            alias_parameters("al2023@latest", "latest"),
            Err(AliasError::KubernetesVersion(_))
        ));
    }

    #[test]
    fn variants_become_requirements() {
        let standard = requirements("amd64", Some(Variant::Standard));
        let keys: Vec<(&str, &str)> = standard
            .iter()
            .map(|r| (r.key.as_str(), r.operator.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (ACCELERATOR_COUNT_LABEL, "DoesNotExist"),
                (GPU_COUNT_LABEL, "DoesNotExist"),
                (ARCH_LABEL, "In"),
            ]
        );
        assert_eq!(standard[2].values, ["amd64"]);
        let nvidia = requirements("arm64", Some(Variant::Nvidia));
        assert_eq!(nvidia[0].key, GPU_COUNT_LABEL);
        assert_eq!(nvidia[0].operator, "Exists");
        assert_eq!(requirements("arm64", None).len(), 1);
    }

    #[test]
    fn the_newest_image_per_architecture_wins_and_deprecated_ones_lose() {
        let mut old_deprecated_new = image("ami-3", "x86_64", "2025-05-01T00:00:00.000Z");
        old_deprecated_new.deprecation_time = Some("2025-05-15T00:00:00.000Z".into());
        let found = vec![
            image("ami-1", "x86_64", "2025-01-01T00:00:00.000Z"),
            image("ami-2", "x86_64", "2025-03-01T00:00:00.000Z"),
            old_deprecated_new,
            image("ami-4", "arm64", "2024-01-01T00:00:00.000Z"),
            image("ami-5", "i386", "2025-05-01T00:00:00.000Z"),
        ];
        let amis = choose(custom_candidates(found), now());
        let ids: Vec<&str> = amis.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["ami-2", "ami-4"]);
        assert_eq!(amis[0].requirements, requirements("amd64", None));
        assert_eq!(amis[0].deprecated, None);
    }

    #[test]
    fn a_deprecated_image_is_used_when_nothing_else_matches() {
        let mut only = image("ami-1", "arm64", "2024-01-01T00:00:00.000Z");
        only.deprecation_time = Some("2025-01-01T00:00:00.000Z".into());
        let amis = choose(custom_candidates(vec![only]), now());
        assert_eq!(amis.len(), 1);
        assert_eq!(amis[0].deprecated, Some(true));
    }

    #[test]
    fn same_date_images_order_by_name_descending() {
        let mut a = image("ami-a", "x86_64", "2025-01-01T00:00:00.000Z");
        a.name = Some("node-v1".into());
        let mut b = image("ami-b", "x86_64", "2025-01-01T00:00:00.000Z");
        b.name = Some("node-v2".into());
        let amis = choose(custom_candidates(vec![a, b]), now());
        assert_eq!(amis[0].id, "ami-b");
    }

    #[test]
    fn alias_images_get_one_entry_per_variant() {
        let parameters = alias_parameters("bottlerocket@latest", "1.33").expect("supported");
        let values: BTreeMap<String, String> =
            [(parameters[0].name.clone(), "ami-x".to_string())].into();
        let found = vec![image("ami-x", "x86_64", "2025-01-01T00:00:00Z")];
        let amis = choose(alias_candidates(&parameters, &values, &found), now());
        assert_eq!(amis.len(), 2);
        assert!(amis.iter().all(|a| a.id == "ami-x"));
        assert_ne!(amis[0].requirements, amis[1].requirements);
    }

    #[test]
    fn image_queries_merge_ids_and_default_name_owners() {
        let terms = vec![
            AmiSelectorTerm {
                id: Some("ami-1".into()),
                ..Default::default()
            },
            AmiSelectorTerm {
                name: Some("my-ami-*".into()),
                ..Default::default()
            },
            AmiSelectorTerm {
                tags: [("team".to_string(), "*".to_string())].into(),
                owner: Some("123456789012".into()),
                ..Default::default()
            },
            AmiSelectorTerm {
                ssm_parameter: Some("/my/ami".into()),
                ..Default::default()
            },
        ];
        let q = queries(&terms, &["ami-from-ssm".to_string()]);
        assert_eq!(q.len(), 3);
        assert_eq!(q[0].owners, ["self", "amazon"]);
        assert_eq!(
            q[0].filters,
            vec![Filter::new("name", vec!["my-ami-*".into()])]
        );
        assert_eq!(q[1].owners, ["123456789012"]);
        assert_eq!(
            q[1].filters,
            vec![Filter::new("tag-key", vec!["team".into()])]
        );
        assert_eq!(
            q[2].filters,
            vec![Filter::new(
                "image-id",
                vec!["ami-1".into(), "ami-from-ssm".into()]
            )]
        );
    }
}
