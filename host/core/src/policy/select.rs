//! Instance selection: Karpenter's built-in launch choice, and the building
//! blocks policies compose their own from.

use rustc_hash::FxHashSet;

use super::types::{
    Attribute, ErrorKind, LaunchRequest, PolicyError, Selection, SelectionRequest, capacity,
};

/// Karpenter sends at most this many instance types to one CreateFleet call.
pub const MAX_PICKS: u32 = 60;

/// How many picks `launch` allows: its own `picks`, capped at [`MAX_PICKS`];
/// 0 means "the policy's default", which is [`MAX_PICKS`].
pub fn pick_limit(launch: &LaunchRequest) -> usize {
    match launch.picks {
        0 => MAX_PICKS as usize,
        n => n.min(MAX_PICKS) as usize,
    }
}

/// The value of `attribute` for offering row `row`, as a comparable id.
pub fn attribute_value(request: &SelectionRequest, row: u32, attribute: Attribute) -> u32 {
    let o = &request.offerings;
    let d = &request.dictionaries;
    let r = row as usize;
    let it = o.instance_type.get(r).copied().unwrap_or(u32::MAX);
    let per_type = |col: &[u16]| col.get(it as usize).map_or(u32::MAX, |&v| v as u32);
    match attribute {
        Attribute::InstanceType => it,
        Attribute::Family => per_type(&d.type_family),
        Attribute::Category => per_type(&d.type_category),
        Attribute::Zone => o.zone.get(r).map_or(u32::MAX, |&z| z as u32),
        Attribute::CapacityType => o.capacity_type.get(r).map_or(u32::MAX, |&c| c as u32),
        Attribute::Architecture => d
            .type_architecture
            .get(it as usize)
            .map_or(u32::MAX, |&a| a as u32),
    }
}

/// Whether offering `row` is available and its allocatable resources hold
/// the launch's demand.
pub fn fits(request: &SelectionRequest, launch: &LaunchRequest, row: u32) -> bool {
    let o = &request.offerings;
    let r = row as usize;
    let d = &launch.demand;
    // `get` rather than indexing: a malformed table must not panic a guest.
    o.available.get(r) == Some(&true)
        && o.alloc_cpu_milli.get(r).is_some_and(|&v| v >= d.cpu_milli)
        && o.alloc_memory_mib
            .get(r)
            .is_some_and(|&v| v >= d.memory_mib)
        && o.alloc_pods.get(r).is_some_and(|&v| v >= d.pods)
        && o.gpus.get(r).is_some_and(|&v| v >= d.gpus)
}

/// The launch's compatible rows that are in range, available and fit, minus
/// accelerator offerings when the pods ask for none and anything else fits
/// (Karpenter's "exotic" filter: never burn a GPU node on CPU pods).
pub fn acceptable(request: &SelectionRequest, launch: &LaunchRequest) -> Vec<u32> {
    let mut fitting: Vec<u32> = launch
        .compatible
        .iter()
        .copied()
        .filter(|&row| fits(request, launch, row))
        .collect();
    let gpus = &request.offerings.gpus;
    if launch.demand.gpus == 0 && fitting.iter().any(|&r| gpus[r as usize] == 0) {
        fitting.retain(|&r| gpus[r as usize] == 0);
    }
    fitting
}

/// Sorts rows by `key`, breaking ties by row so the order is the same on
/// every run. Each key is computed once.
pub fn rank_by<K: PartialOrd>(rows: &mut [u32], mut key: impl FnMut(u32) -> K) {
    let mut keyed: Vec<(K, u32)> = rows.iter().map(|&r| (key(r), r)).collect();
    keyed.sort_unstable_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
    });
    for (slot, (_, row)) in rows.iter_mut().zip(keyed) {
        *slot = row;
    }
}

/// Karpenter's capacity-type preference: reserved, then spot that is no
/// pricier than the cheapest on-demand offering, then on-demand. Spot pricier
/// than on-demand is dropped when on-demand exists. Cheapest first in each tier.
pub fn rank_cheapest(request: &SelectionRequest, rows: &mut Vec<u32>) {
    let o = &request.offerings;
    let cheapest_on_demand = rows
        .iter()
        .filter(|&&r| o.capacity_type[r as usize] == capacity::ON_DEMAND)
        .map(|&r| o.price_per_hour[r as usize])
        .fold(f64::INFINITY, f64::min);
    rows.retain(|&r| {
        o.capacity_type[r as usize] != capacity::SPOT
            || o.price_per_hour[r as usize] <= cheapest_on_demand
    });
    // One integer key per row — tier, then price, then row — so the sort
    // compares plain integers: this is the hot loop of a launch decision.
    let mut keys: Vec<u128> = rows
        .iter()
        .map(|&r| {
            let i = r as usize;
            (u128::from(capacity_tier(o.capacity_type[i])) << 96)
                | (u128::from(price_key(o.price_per_hour[i])) << 32)
                | u128::from(r)
        })
        .collect();
    keys.sort_unstable();
    for (slot, key) in rows.iter_mut().zip(keys) {
        *slot = key as u32;
    }
}

/// Maps a price to an integer with the same order (IEEE-754 total order).
pub(crate) fn price_key(price: f64) -> u64 {
    let bits = price.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn capacity_tier(code: u8) -> u8 {
    match code {
        capacity::RESERVED => 0,
        capacity::SPOT => 1,
        _ => 2,
    }
}

/// Takes up to the launch's pick limit from `ranked`, in order, while keeping
/// enough distinct values to satisfy every min-values requirement: the
/// best-ranked offering for each missing value is kept first, the rest of the
/// budget goes to the best-ranked remainder. The result keeps `ranked` order.
///
/// Linear in `ranked` per requirement: a `minValues` as large as the table
/// must not cost its square.
pub fn truncate(
    request: &SelectionRequest,
    launch: &LaunchRequest,
    ranked: &[u32],
) -> Result<Vec<u32>, PolicyError> {
    let limit = pick_limit(launch);
    // By position in `ranked`, not by row: sized by the launch, not the table.
    let mut chosen = vec![false; ranked.len()];
    let mut count = 0usize;
    for mv in &launch.min_values {
        let mut seen: FxHashSet<u32> = ranked
            .iter()
            .zip(&chosen)
            .filter(|&(_, &c)| c)
            .map(|(&r, _)| attribute_value(request, r, mv.attribute))
            .collect();
        for (at, &row) in ranked.iter().enumerate() {
            if seen.len() >= mv.min as usize {
                break;
            }
            if seen.insert(attribute_value(request, row, mv.attribute)) && !chosen[at] {
                chosen[at] = true;
                count += 1;
            }
        }
        if seen.len() < mv.min as usize {
            return Err(PolicyError::new(
                ErrorKind::Unsatisfiable,
                format!(
                    "minValues {} >= {} cannot be met: the {} acceptable offerings have only {} distinct values",
                    mv.attribute.label(),
                    mv.min,
                    ranked.len(),
                    seen.len()
                ),
            ));
        }
    }
    if count > limit {
        return Err(PolicyError::new(
            ErrorKind::Unsatisfiable,
            format!("minValues need {count} offerings but at most {limit} may be picked"),
        ));
    }
    for slot in &mut chosen {
        if count >= limit {
            break;
        }
        if !*slot {
            *slot = true;
            count += 1;
        }
    }
    Ok(ranked
        .iter()
        .zip(&chosen)
        .filter(|&(_, &c)| c)
        .map(|(&r, _)| r)
        .collect())
}

/// Checks what every policy must check first: the tables are well formed and
/// the launch's rows are in range.
pub fn check_launch(request: &SelectionRequest, launch: &LaunchRequest) -> Result<(), PolicyError> {
    if !request.offerings.is_rectangular() {
        return Err(PolicyError::new(
            ErrorKind::InvalidInput,
            "offering table columns differ in length",
        ));
    }
    if let Some(bad) = launch
        .compatible
        .iter()
        .find(|&&r| r as usize >= request.offerings.len())
    {
        return Err(PolicyError::new(
            ErrorKind::InvalidInput,
            format!(
                "compatible row {bad} is outside the offering table ({} rows)",
                request.offerings.len()
            ),
        ));
    }
    Ok(())
}

/// Acceptable offerings of `launch`, or an error naming why there are none.
pub fn acceptable_or_error(
    request: &SelectionRequest,
    launch: &LaunchRequest,
) -> Result<Vec<u32>, PolicyError> {
    check_launch(request, launch)?;
    let rows = acceptable(request, launch);
    if rows.is_empty() {
        let d = launch.demand;
        return Err(PolicyError::new(
            ErrorKind::NoAcceptableOffering,
            format!(
                "none of the {} compatible offerings is available with room for cpu {}m, memory {}Mi, {} pods, {} GPUs",
                launch.compatible.len(),
                d.cpu_milli,
                d.memory_mib,
                d.pods,
                d.gpus
            ),
        ));
    }
    Ok(rows)
}

/// Karpenter's built-in choice for one launch.
pub fn default_pick(
    request: &SelectionRequest,
    launch: &LaunchRequest,
) -> Result<Vec<u32>, PolicyError> {
    let mut rows = acceptable_or_error(request, launch)?;
    rank_cheapest(request, &mut rows);
    truncate(request, launch, &rows)
}

/// Karpenter's built-in choice for a whole round.
pub fn default_select(request: &SelectionRequest) -> Selection {
    request
        .requests
        .iter()
        .map(|launch| default_pick(request, launch))
        .collect()
}
