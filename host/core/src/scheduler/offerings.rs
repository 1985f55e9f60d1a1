//! The offerings a NodeClaim's requirements and requests admit, in the
//! order a cloud provider tries them when nothing else ranked them: what
//! Karpenter's cloud provider launches from a NodeClaim alone.

use crate::catalog::Catalog;
use crate::policy::select::MAX_PICKS;
use crate::requirements::Requirements;
use crate::resources::Resources;

use super::plan::OfferingRef;

/// Every available offering whose instance type meets `requirements` (the
/// scheduler's match: keys both define must intersect) and whose
/// allocatable holds `requests`, cheapest first (equal prices by type name,
/// then zone), as Karpenter's cloud provider resolves a NodeClaim's instance
/// types before CreateFleet. Accelerated types are dropped when the requests
/// need no accelerator and anything else fits, and at most the
/// [`MAX_PICKS`] cheapest instance types are kept (CreateFleet's limit).
///
/// Offerings marked unavailable in `catalog` (an unavailable-offerings
/// cache applied to it) are left out. Types are sized as node class
/// `node_class` sizes them.
pub fn compatible_offerings(
    catalog: &Catalog,
    node_class: &str,
    requirements: &Requirements,
    requests: &Resources,
) -> Vec<OfferingRef> {
    let types = catalog.compiled_for(node_class);
    let keys = types.keys;
    let zone = requirements.get(keys.zone);
    let capacity_type = requirements.get(keys.capacity_type);
    let fits: Vec<bool> = types
        .list
        .iter()
        .map(|t| {
            t.requirements.intersects(requirements).is_ok() && requests.fits_in(&t.allocatable)
        })
        .collect();
    let mut found: Vec<(u32, u32)> = types
        .by_rank
        .iter()
        .copied()
        .filter(|&(t, o)| {
            let o = &types.list[t as usize].offerings[o as usize];
            fits[t as usize]
                && o.available
                && zone.is_none_or(|r| r.has(o.zone))
                && capacity_type.is_none_or(|r| r.has(o.capacity_label))
        })
        .collect();
    let accelerated = |t: u32| types.list[t as usize].capacity.gpus() > 0;
    if requests.gpus() == 0 && found.iter().any(|&(t, _)| !accelerated(t)) {
        found.retain(|&(t, _)| !accelerated(t));
    }
    let mut kept_types: Vec<u32> = Vec::new();
    found.retain(|&(t, _)| {
        if kept_types.contains(&t) {
            return true;
        }
        if kept_types.len() >= MAX_PICKS as usize {
            return false;
        }
        kept_types.push(t);
        true
    });
    found
        .into_iter()
        .map(|(t, o)| {
            let it = &types.list[t as usize];
            let o = &it.offerings[o as usize];
            OfferingRef {
                instance_type: it.name,
                zone: o.zone,
                capacity_type: o.capacity_type,
                price: o.price,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CapacityType;
    use crate::labels;
    use crate::requirements::{NodeSelectorRequirement, Operator};
    use crate::resources::{GIB, NVIDIA_GPU};

    fn reqs(terms: &[(&str, Operator, &[&str])]) -> Requirements {
        let terms: Vec<NodeSelectorRequirement> = terms
            .iter()
            .map(|(k, op, v)| NodeSelectorRequirement::new(k, *op, v))
            .collect();
        Requirements::from_terms(&terms).unwrap()
    }

    #[test]
    fn offerings_meet_the_requirements_and_fit_cheapest_first() {
        let catalog = Catalog::aws_us_east_1();
        let r = reqs(&[
            (labels::INSTANCE_FAMILY, Operator::In, &["m5", "c5"]),
            (labels::CAPACITY_TYPE, Operator::In, &["on-demand"]),
            (labels::ZONE, Operator::In, &["us-east-1a", "us-east-1b"]),
        ]);
        let got = compatible_offerings(&catalog, "default", &r, &Resources::new(3_000, 6 * GIB));
        assert!(!got.is_empty());
        for o in &got {
            let it = catalog.get(o.instance_type.as_str()).unwrap();
            let family = it.label(labels::INSTANCE_FAMILY).unwrap();
            assert!(
                ["m5", "c5"].contains(&family.as_str()),
                "{}",
                o.instance_type
            );
            assert_eq!(o.capacity_type, CapacityType::OnDemand);
            assert!(["us-east-1a", "us-east-1b"].contains(&o.zone.as_str()));
            assert!(
                it.allocatable().cpu >= 3_000,
                "{} is too small",
                o.instance_type
            );
        }
        assert!(
            got.windows(2).all(|w| w[0].price <= w[1].price),
            "cheapest first"
        );
        assert!(
            !got.iter().any(|o| o.instance_type.as_str() == "m5.large"),
            "2 vCPUs cannot hold 3"
        );
        assert_eq!(got[0].instance_type.as_str(), "c5.xlarge");
    }

    #[test]
    fn unavailable_offerings_and_needless_accelerators_are_left_out() {
        let mut catalog = Catalog::aws_us_east_1();
        let r = reqs(&[
            (
                labels::INSTANCE_TYPE,
                Operator::In,
                &["m5.large", "g4dn.xlarge"],
            ),
            (labels::CAPACITY_TYPE, Operator::In, &["on-demand"]),
            (labels::ZONE, Operator::In, &["us-east-1a"]),
        ]);
        let small = Resources::new(500, GIB);
        let got = compatible_offerings(&catalog, "default", &r, &small);
        let names: Vec<&str> = got.iter().map(|o| o.instance_type.as_str()).collect();
        assert_eq!(names, ["m5.large"], "no GPU node for CPU pods");

        catalog.mark_unavailable("m5.large", "us-east-1a", CapacityType::OnDemand);
        let got = compatible_offerings(&catalog, "default", &r, &small);
        let names: Vec<&str> = got.iter().map(|o| o.instance_type.as_str()).collect();
        assert_eq!(names, ["g4dn.xlarge"], "only the accelerated type is left");

        let mut gpu = small.clone();
        gpu.set(NVIDIA_GPU, 1);
        let got = compatible_offerings(&Catalog::aws_us_east_1(), "default", &r, &gpu);
        let names: Vec<&str> = got.iter().map(|o| o.instance_type.as_str()).collect();
        assert_eq!(names, ["g4dn.xlarge"]);
    }

    #[test]
    fn at_most_the_fleet_limit_of_instance_types() {
        let catalog = Catalog::aws_us_east_1();
        let got = compatible_offerings(
            &catalog,
            "default",
            &Requirements::new(),
            &Resources::default(),
        );
        let mut types: Vec<_> = got.iter().map(|o| o.instance_type).collect();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), MAX_PICKS as usize);
    }
}
