//! Positions that a solve and its callers pass around, typed so that one kind
//! cannot stand in for another: a node of the snapshot, a pending pod of the
//! solve and a NodeClaim it plans are all `usize` underneath.

use std::ops::{Index, IndexMut};

use crate::model::Node;

use super::claims::Claim;

/// Indexes `Vec<$t>` by the position type `$i` (a tuple struct over
/// `usize`); `mut` adds `IndexMut`.
macro_rules! index_by {
    ($i:ty => $t:ty) => {
        impl std::ops::Index<$i> for Vec<$t> {
            type Output = $t;

            fn index(&self, i: $i) -> &$t {
                &self[i.0]
            }
        }
    };
    ($i:ty => mut $t:ty) => {
        $crate::scheduler::index_by!($i => $t);

        impl std::ops::IndexMut<$i> for Vec<$t> {
            fn index_mut(&mut self, i: $i) -> &mut $t {
                &mut self[i.0]
            }
        }
    };
}
pub(crate) use index_by;

/// A node's position in [`super::Snapshot::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeIndex(pub usize);

impl Index<NodeIndex> for [Node] {
    type Output = Node;

    fn index(&self, i: NodeIndex) -> &Node {
        &self[i.0]
    }
}

index_by!(NodeIndex => Node);

/// A pending pod's position in the pods a solve was given. Every per-pod
/// table of a solve has one entry per pending pod, in that order, and is
/// indexed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PodIndex(pub usize);

impl<T> Index<PodIndex> for Vec<T> {
    type Output = T;

    fn index(&self, i: PodIndex) -> &T {
        &self[i.0]
    }
}

impl<T> IndexMut<PodIndex> for Vec<T> {
    fn index_mut(&mut self, i: PodIndex) -> &mut T {
        &mut self[i.0]
    }
}

/// A planned NodeClaim's position among the claims a solve creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ClaimIndex(pub usize);

index_by!(ClaimIndex => mut Claim);
