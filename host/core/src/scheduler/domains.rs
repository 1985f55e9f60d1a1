//! Candidates by domain: which existing nodes, or which planned NodeClaims,
//! are in each domain of a label key. A pod whose topology admits only a few
//! domains (a free hostname for anti-affinity, the emptiest zones for a
//! spread) then tries only the candidates there instead of every one.

use std::collections::BTreeSet;

// Domains are interned pointers: a fast non-cryptographic hash is enough.
use rustc_hash::FxHashMap as HashMap;

use crate::requirements::Requirements;
use crate::sym::Sym;

/// Items (positions of existing nodes, or of planned NodeClaims) by their
/// domain of one key.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyIndex {
    key: Sym,
    /// Each item's domain: its one allowed value of the key, if exactly one.
    of: Vec<Option<Sym>>,
    by_domain: HashMap<Sym, Vec<u32>>,
    /// Items without a single domain: any domain may still be theirs.
    open: BTreeSet<u32>,
}

/// An item's domain of `key` in `requirements`.
pub(crate) fn domain_of(requirements: &Requirements, key: Sym) -> Option<Sym> {
    requirements.get(key).and_then(|r| r.single_value())
}

impl KeyIndex {
    pub fn new(key: Sym) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    /// Over items with these requirements, in position order.
    pub fn build<'r>(key: Sym, items: impl IntoIterator<Item = &'r Requirements>) -> Self {
        let mut index = Self::new(key);
        for r in items {
            index.push(r);
        }
        index
    }

    pub fn key(&self) -> Sym {
        self.key
    }

    /// Adds the next item.
    pub fn push(&mut self, requirements: &Requirements) {
        let item = self.of.len() as u32;
        let d = domain_of(requirements, self.key);
        self.of.push(d);
        self.file(item, d);
    }

    fn file(&mut self, item: u32, d: Option<Sym>) {
        match d {
            Some(d) => self.by_domain.entry(d).or_default().push(item),
            None => {
                self.open.insert(item);
            }
        }
    }

    /// Item `item` now has `requirements` (they only ever narrow).
    pub fn update(&mut self, item: usize, requirements: &Requirements) {
        let d = domain_of(requirements, self.key);
        let old = self.of[item];
        if old == d {
            return;
        }
        let i = item as u32;
        match old {
            Some(o) => {
                if let Some(list) = self.by_domain.get_mut(&o) {
                    list.retain(|&x| x != i);
                }
            }
            None => {
                self.open.remove(&i);
            }
        }
        self.of[item] = d;
        self.file(i, d);
    }

    pub fn domain(&self, item: usize) -> Option<Sym> {
        self.of[item]
    }

    pub fn open_len(&self) -> usize {
        self.open.len()
    }

    /// Appends the items in `domains` and those without a single domain,
    /// unordered and each once (as long as `domains` has no repeats).
    pub fn candidates(&self, domains: &[Sym], out: &mut Vec<u32>) {
        for d in domains {
            if let Some(list) = self.by_domain.get(d) {
                out.extend_from_slice(list);
            }
        }
        out.extend(self.open.iter().copied());
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
    fn candidates_are_the_listed_domains_and_the_open_items() {
        let key = Sym::new("zone");
        let items = [
            reqs(Some("a")),
            reqs(None),
            reqs(Some("b")),
            reqs(Some("a")),
        ];
        let mut index = KeyIndex::build(key, &items);
        let mut out = Vec::new();
        index.candidates(&[Sym::new("a")], &mut out);
        out.sort_unstable();
        assert_eq!(out, vec![0, 1, 3]);

        // The open item narrows to `b`: it leaves the open set.
        index.update(1, &reqs(Some("b")));
        assert_eq!(index.domain(1), Some(Sym::new("b")));
        assert_eq!(index.open_len(), 0);
        let mut out = Vec::new();
        index.candidates(&[Sym::new("a")], &mut out);
        out.sort_unstable();
        assert_eq!(out, vec![0, 3]);
        let mut out = Vec::new();
        index.candidates(&[Sym::new("b"), Sym::new("c")], &mut out);
        out.sort_unstable();
        assert_eq!(out, vec![1, 2]);
    }
}
