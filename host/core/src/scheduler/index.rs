//! Positions that a solve and its callers pass around, typed so that one kind
//! cannot stand in for another: a node of the snapshot, a pending pod of the
//! solve and a NodeClaim it plans are all `usize` underneath.

use std::ops::{Index, IndexMut};

use crate::model::Node;

use super::claims::Claim;

/// A node's position in [`super::Snapshot::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeIndex(pub usize);

impl Index<NodeIndex> for [Node] {
    type Output = Node;

    fn index(&self, i: NodeIndex) -> &Node {
        &self[i.0]
    }
}

impl Index<NodeIndex> for Vec<Node> {
    type Output = Node;

    fn index(&self, i: NodeIndex) -> &Node {
        &self[i.0]
    }
}

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

impl Index<ClaimIndex> for Vec<Claim> {
    type Output = Claim;

    fn index(&self, i: ClaimIndex) -> &Claim {
        &self[i.0]
    }
}

impl IndexMut<ClaimIndex> for Vec<Claim> {
    fn index_mut(&mut self, i: ClaimIndex) -> &mut Claim {
        &mut self[i.0]
    }
}
