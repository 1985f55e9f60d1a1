//! The fake instance types of Karpenter's scheduling benchmark
//! (`fake.InstanceTypes` and `fake.NewInstanceType` in
//! `kubernetes-sigs/karpenter` `pkg/cloudprovider/fake/instancetype.go`), so
//! benchmark numbers compare with Karpenter's.

use super::{CapacityType, Catalog, InstanceType, Offering, Overhead, PriceSource};
use crate::labels;
use crate::resources::{GIB, MIB, Resources};
use crate::sym::Sym;

/// The fake provider's own label keys.
pub const SIZE_LABEL: &str = "size";
pub const EXOTIC_LABEL: &str = "special";
pub const INTEGER_LABEL: &str = "integer";

pub const ZONES: [&str; 3] = ["test-zone-1", "test-zone-2", "test-zone-3"];

/// Type i: i+1 vCPU, 2(i+1) GiB, 10(i+1) pods.
pub(super) fn benchmark(count: usize) -> Catalog {
    let types = (0..count)
        .map(|i| {
            let n = i as i64 + 1;
            fake_type(&format!("fake-it-{i}"), n * 1000, 2 * n * GIB, 10 * n)
        })
        .collect();
    Catalog::new(Sym::new("test-region"), types, PriceSource::Given)
}

/// `fake.NewInstanceType` with default options.
fn fake_type(name: &str, cpu: i64, memory: i64, pods: i64) -> InstanceType {
    // Karpenter's `PriceFromResources`: 0.1 per vCPU plus 0.1 per GB (10^9
    // bytes, not GiB); pods are free.
    let price = 0.1 * (cpu as f64 / 1000.0) + 0.1 * memory as f64 / 1e9;
    // Spot in zones 1–2 and on-demand in zones 1–3, all at one price.
    let offerings = [
        (0, CapacityType::Spot),
        (1, CapacityType::Spot),
        (0, CapacityType::OnDemand),
        (1, CapacityType::OnDemand),
        (2, CapacityType::OnDemand),
    ]
    .map(|(zone, capacity_type)| Offering {
        zone: Sym::new(ZONES[zone]),
        capacity_type,
        price,
        available: true,
    })
    .to_vec();
    let large = cpu > 4000 && memory > 8 * GIB;
    let mut labels = vec![
        (labels::INSTANCE_TYPE, name.to_string()),
        (labels::ARCH, "amd64".to_string()),
        // Karpenter's fake types allow linux, windows and darwin; a label
        // holds one value, and linux is what pods select.
        (labels::OS, "linux".to_string()),
        (
            SIZE_LABEL,
            if large { "large" } else { "small" }.to_string(),
        ),
        (INTEGER_LABEL, (cpu / 1000).to_string()),
    ];
    if large {
        labels.push((EXOTIC_LABEL, "optional".to_string()));
    }
    let mut labels: Vec<(Sym, Sym)> = labels
        .into_iter()
        .map(|(k, v)| (Sym::new(k), Sym::new(&v)))
        .collect();
    labels.sort_by_key(|a| a.0);
    let mut it = InstanceType {
        name: Sym::new(name),
        labels,
        label_values: Vec::new(),
        capacity: Resources {
            pods,
            ..Resources::new(cpu, memory)
        },
        overhead: Overhead {
            kube_reserved: Resources::new(100, 10 * MIB),
            ..Overhead::default()
        },
        offerings,
    };
    it.sort_offerings();
    it
}
