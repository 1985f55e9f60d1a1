//! The unavailable-offerings cache: an offering that failed with
//! insufficient capacity, or whose spot instance was interrupted, leaves
//! launch plans for a while (Karpenter: 3 minutes; marking again extends it).

use std::collections::BTreeMap;
use std::sync::Arc;

use dovetail_core::catalog::Catalog;

use crate::cloud::OfferingKey;

/// Karpenter's TTL.
pub const DEFAULT_TTL_MS: u64 = 180_000;

#[derive(Debug, Clone)]
pub struct UnavailableOfferings {
    ttl_ms: u64,
    /// Offering → when it becomes available again (Unix ms).
    until: BTreeMap<OfferingKey, u64>,
    /// Bumped whenever the set of offerings changes.
    generation: u64,
}

impl Default for UnavailableOfferings {
    fn default() -> Self {
        Self::new(DEFAULT_TTL_MS)
    }
}

impl UnavailableOfferings {
    pub fn new(ttl_ms: u64) -> Self {
        Self {
            ttl_ms,
            until: BTreeMap::new(),
            generation: 0,
        }
    }

    /// Marks `key` unavailable for the TTL from `now_ms`; marking it again
    /// extends the window.
    pub fn mark(&mut self, key: OfferingKey, now_ms: u64) {
        if self.until.insert(key, now_ms + self.ttl_ms).is_none() {
            self.generation += 1;
        }
    }

    pub fn is_unavailable(&self, key: &OfferingKey, now_ms: u64) -> bool {
        self.until.get(key).is_some_and(|&t| t > now_ms)
    }

    /// Drops entries whose window has passed; true when any did.
    pub fn expire(&mut self, now_ms: u64) -> bool {
        let before = self.until.len();
        self.until.retain(|_, t| *t > now_ms);
        let changed = self.until.len() != before;
        if changed {
            self.generation += 1;
        }
        changed
    }

    /// Changes whenever the set of unavailable offerings does.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    /// `catalog` with every cached offering marked unavailable (the same
    /// `Arc` when the cache is empty).
    pub fn apply(&self, catalog: &Arc<Catalog>) -> Arc<Catalog> {
        if self.until.is_empty() {
            return catalog.clone();
        }
        let mut c = (**catalog).clone();
        for key in self.until.keys() {
            c.mark_unavailable(
                key.instance_type.as_str(),
                key.zone.as_str(),
                key.capacity_type,
            );
        }
        Arc::new(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dovetail_core::catalog::CapacityType;
    use dovetail_core::sym::Sym;

    fn key() -> OfferingKey {
        OfferingKey {
            capacity_type: CapacityType::Spot,
            instance_type: Sym::new("m5.large"),
            zone: Sym::new("us-east-1a"),
        }
    }

    #[test]
    fn an_entry_lasts_its_ttl_and_marking_again_extends_it() {
        let mut c = UnavailableOfferings::new(180_000);
        c.mark(key(), 0);
        assert!(c.is_unavailable(&key(), 179_999));
        c.mark(key(), 100_000);
        assert!(c.is_unavailable(&key(), 279_999), "extended");
        assert!(!c.expire(200_000));
        assert!(c.expire(280_000));
        assert!(!c.is_unavailable(&key(), 280_000));
        assert!(c.is_empty());
    }

    #[test]
    fn the_catalog_view_hides_cached_offerings() {
        let base = Arc::new(Catalog::aws_us_east_1());
        let mut c = UnavailableOfferings::default();
        assert!(Arc::ptr_eq(&c.apply(&base), &base));
        c.mark(key(), 0);
        let view = c.apply(&base);
        let o = view
            .get("m5.large")
            .unwrap()
            .offering("us-east-1a", CapacityType::Spot)
            .unwrap();
        assert!(!o.available);
        let before = base
            .get("m5.large")
            .unwrap()
            .offering("us-east-1a", CapacityType::Spot)
            .unwrap();
        assert!(before.available, "the provider's catalog is untouched");
    }
}
