//! Candidates by domain: which existing nodes, or which planned NodeClaims,
//! are in each domain of a label key, in the order they are tried. A pod
//! whose topology admits only a few domains (a free hostname for
//! anti-affinity, the zone its affinity points at) then walks only the
//! candidates there, still in order, instead of every one.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::ops::Bound;

// Domains are interned pointers: a fast non-cryptographic hash is enough.
use rustc_hash::FxHashMap as HashMap;

use crate::requirements::Requirements;
use crate::sym::Sym;

/// Candidates by their domain of one key. Each candidate has a position
/// (its index among existing nodes or planned NodeClaims) and an order key
/// `K`, the order the scheduler tries candidates in.
#[derive(Debug, Clone)]
pub(crate) struct KeyIndex<K> {
    key: Sym,
    /// Each candidate's domain, by position: its one allowed value of the
    /// key, if exactly one.
    of: Vec<Option<Sym>>,
    by_domain: HashMap<Sym, BTreeSet<K>>,
    /// Candidates without a single domain: any domain may still be theirs.
    open: BTreeSet<K>,
}

/// A candidate's domain of `key` in `requirements`.
fn domain_of(requirements: &Requirements, key: Sym) -> Option<Sym> {
    requirements.get(key).and_then(|r| r.single_value())
}

impl<K: Ord + Copy> KeyIndex<K> {
    pub fn new(key: Sym) -> Self {
        Self {
            key,
            of: Vec::new(),
            by_domain: HashMap::default(),
            open: BTreeSet::new(),
        }
    }

    /// Adds the candidate at the next position.
    pub fn push(&mut self, order: K, requirements: &Requirements) {
        let d = domain_of(requirements, self.key);
        self.of.push(d);
        self.file(order, d);
    }

    fn file(&mut self, order: K, d: Option<Sym>) {
        match d {
            Some(d) => self.by_domain.entry(d).or_default().insert(order),
            None => self.open.insert(order),
        };
    }

    /// The candidate at `position`, filed under `old`, is now ordered by
    /// `new` and has `requirements`.
    pub fn update(&mut self, position: usize, old: K, new: K, requirements: &Requirements) {
        let d = domain_of(requirements, self.key);
        match self.of[position] {
            Some(o) => {
                if let Some(set) = self.by_domain.get_mut(&o) {
                    set.remove(&old);
                }
            }
            None => {
                self.open.remove(&old);
            }
        }
        self.of[position] = d;
        self.file(new, d);
    }

    pub fn domain(&self, position: usize) -> Option<Sym> {
        self.of[position]
    }

    /// The candidates in `domains` and those without a domain, in order,
    /// after `after`.
    pub fn listed<'a>(&'a self, domains: &[Sym], after: Option<K>) -> Listed<'a, K> {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut streams: Vec<std::collections::btree_set::Range<'a, K>> = domains
            .iter()
            .filter_map(|d| self.by_domain.get(d))
            .chain(std::iter::once(&self.open))
            .map(|set| set.range((from, Bound::Unbounded)))
            .collect();
        let mut heads = BinaryHeap::with_capacity(streams.len());
        for (i, s) in streams.iter_mut().enumerate() {
            if let Some(&k) = s.next() {
                heads.push(Reverse((k, i)));
            }
        }
        Listed { streams, heads }
    }
}

/// [`KeyIndex::listed`]: ordered sets merged in order.
pub(crate) struct Listed<'a, K> {
    streams: Vec<std::collections::btree_set::Range<'a, K>>,
    heads: BinaryHeap<Reverse<(K, usize)>>,
}

impl<K: Ord + Copy> Iterator for Listed<'_, K> {
    type Item = K;

    fn next(&mut self) -> Option<K> {
        let Reverse((k, i)) = self.heads.pop()?;
        if let Some(&next) = self.streams[i].next() {
            self.heads.push(Reverse((next, i)));
        }
        Some(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requirements::Requirement;

    fn reqs(zone: Option<&str>) -> Requirements {
        let mut r = Requirements::new();
        if let Some(z) = zone {
            r.add(Requirement::single(Sym::new("zone"), Sym::new(z)));
        }
        r
    }

    #[test]
    fn candidates_in_listed_domains_and_open_ones_come_in_order() {
        let key = Sym::new("zone");
        let mut index: KeyIndex<u32> = KeyIndex::new(key);
        for (i, z) in [Some("a"), None, Some("b"), Some("a"), Some("c")]
            .into_iter()
            .enumerate()
        {
            index.push(i as u32, &reqs(z));
        }
        let a = [Sym::new("a")];
        assert_eq!(index.listed(&a, None).collect::<Vec<_>>(), vec![0, 1, 3]);
        assert_eq!(index.listed(&a, Some(1)).collect::<Vec<_>>(), vec![3]);

        // The open candidate narrows to `b` and moves to the back.
        index.update(1, 1, 9, &reqs(Some("b")));
        assert_eq!(index.domain(1), Some(Sym::new("b")));
        assert_eq!(index.listed(&a, None).collect::<Vec<_>>(), vec![0, 3]);
        let bc = [Sym::new("b"), Sym::new("c")];
        assert_eq!(index.listed(&bc, None).collect::<Vec<_>>(), vec![2, 4, 9]);
    }
}
