//! Typed row views over the columnar tables, so policy code reads like it
//! works on records: `request.offering(i).price()`.

use super::types::{
    CandidateTable, ConsolidationContext, Dictionaries, OfferingTable, SelectionRequest, capacity,
    reason,
};

/// Capacity type of an offering or node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CapacityType {
    OnDemand,
    Spot,
    Reserved,
}

impl CapacityType {
    pub fn from_code(code: u8) -> Self {
        match code {
            capacity::SPOT => CapacityType::Spot,
            capacity::RESERVED => CapacityType::Reserved,
            _ => CapacityType::OnDemand,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CapacityType::OnDemand => "on-demand",
            CapacityType::Spot => "spot",
            CapacityType::Reserved => "reserved",
        }
    }
}

/// Why a node is a consolidation candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Empty,
    Underutilized,
    Drifted,
}

impl Reason {
    pub fn from_code(code: u8) -> Self {
        match code {
            reason::EMPTY => Reason::Empty,
            reason::DRIFTED => Reason::Drifted,
            _ => Reason::Underutilized,
        }
    }
}

/// One row of the offering table.
#[derive(Debug, Clone, Copy)]
pub struct Offering<'a> {
    table: &'a OfferingTable,
    dicts: &'a Dictionaries,
    row: u32,
}

impl<'a> Offering<'a> {
    fn r(&self) -> usize {
        self.row as usize
    }
    pub fn row(&self) -> u32 {
        self.row
    }
    pub fn instance_type(&self) -> &'a str {
        self.dicts.instance_type(self.table.instance_type[self.r()])
    }
    pub fn family(&self) -> &'a str {
        self.dicts.family_of(self.table.instance_type[self.r()])
    }
    pub fn category(&self) -> &'a str {
        self.dicts.category_of(self.table.instance_type[self.r()])
    }
    pub fn architecture(&self) -> &'a str {
        self.dicts
            .architecture_of(self.table.instance_type[self.r()])
    }
    pub fn zone(&self) -> &'a str {
        self.dicts.zones.get(self.table.zone[self.r()] as usize)
    }
    pub fn capacity_type(&self) -> CapacityType {
        CapacityType::from_code(self.table.capacity_type[self.r()])
    }
    pub fn price(&self) -> f64 {
        self.table.price_per_hour[self.r()]
    }
    pub fn vcpu(&self) -> u32 {
        self.table.vcpu[self.r()]
    }
    pub fn memory_mib(&self) -> u64 {
        self.table.memory_mib[self.r()]
    }
    pub fn gpus(&self) -> u32 {
        self.table.gpus[self.r()]
    }
    pub fn alloc_cpu_milli(&self) -> u64 {
        self.table.alloc_cpu_milli[self.r()]
    }
    pub fn alloc_memory_mib(&self) -> u64 {
        self.table.alloc_memory_mib[self.r()]
    }
    pub fn alloc_pods(&self) -> u32 {
        self.table.alloc_pods[self.r()]
    }
    pub fn available(&self) -> bool {
        self.table.available[self.r()]
    }
}

impl SelectionRequest {
    /// Row `row` of the offering table. Panics when out of range: check rows
    /// with [`super::select::check_launch`] first.
    pub fn offering(&self, row: u32) -> Offering<'_> {
        assert!(
            (row as usize) < self.offerings.len(),
            "offering {row} out of range"
        );
        Offering {
            table: &self.offerings,
            dicts: &self.dictionaries,
            row,
        }
    }

    pub fn node_pool_name(&self, id: u16) -> &str {
        self.dictionaries.node_pools.get(id as usize)
    }
}

/// One consolidation candidate.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    ctx: &'a ConsolidationContext,
    row: u32,
}

impl<'a> Candidate<'a> {
    fn t(&self) -> &'a CandidateTable {
        &self.ctx.candidates
    }
    fn r(&self) -> usize {
        self.row as usize
    }
    pub fn row(&self) -> u32 {
        self.row
    }
    pub fn name(&self) -> &'a str {
        self.ctx.node_names.get(self.t().node[self.r()] as usize)
    }
    pub fn node_pool(&self) -> &'a str {
        self.ctx
            .dictionaries
            .node_pools
            .get(self.t().node_pool[self.r()] as usize)
    }
    pub fn node_pool_id(&self) -> u16 {
        self.t().node_pool[self.r()]
    }
    pub fn instance_type(&self) -> &'a str {
        self.ctx
            .dictionaries
            .instance_type(self.t().instance_type[self.r()])
    }
    pub fn architecture(&self) -> &'a str {
        self.ctx
            .dictionaries
            .architecture_of(self.t().instance_type[self.r()])
    }
    pub fn capacity_type(&self) -> CapacityType {
        CapacityType::from_code(self.t().capacity_type[self.r()])
    }
    pub fn zone(&self) -> &'a str {
        self.ctx
            .dictionaries
            .zones
            .get(self.t().zone[self.r()] as usize)
    }
    pub fn price(&self) -> f64 {
        self.t().price_per_hour[self.r()]
    }
    pub fn age_seconds(&self) -> u64 {
        self.t().age_seconds[self.r()]
    }
    pub fn expire_after_seconds(&self) -> u64 {
        self.t().expire_after_seconds[self.r()]
    }
    pub fn cpu_utilisation(&self) -> f32 {
        self.t().cpu_utilisation[self.r()]
    }
    pub fn memory_utilisation(&self) -> f32 {
        self.t().memory_utilisation[self.r()]
    }
    pub fn pods(&self) -> u32 {
        self.t().pods[self.r()]
    }
    pub fn disruption_cost(&self) -> f64 {
        self.t().disruption_cost[self.r()]
    }
    pub fn reason(&self) -> Reason {
        Reason::from_code(self.t().reason[self.r()])
    }
}

impl ConsolidationContext {
    /// Candidate `row`. Panics when out of range.
    pub fn candidate(&self, row: u32) -> Candidate<'_> {
        assert!(
            (row as usize) < self.candidates.len(),
            "candidate {row} out of range"
        );
        Candidate { ctx: self, row }
    }

    /// All candidates, in table order.
    pub fn candidate_rows(&self) -> impl Iterator<Item = Candidate<'_>> {
        (0..self.candidates.len() as u32).map(|row| Candidate { ctx: self, row })
    }
}
