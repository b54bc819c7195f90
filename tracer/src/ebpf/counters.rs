//! The kernel programs' counters: the per-CPU counters, summed, and the
//! number of entries in the owner map.

use aya::maps::{Array, MapData, PerCpuArray};
use tracer_common::Counter;

/// The maps the counters live in.
pub struct CounterMaps {
    pub per_cpu: PerCpuArray<MapData, u64>,
    /// One slot: entries in the owner map.
    pub owners: Array<MapData, u64>,
}

/// Totals of the kernel counters since load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub submitted: u64,
    pub dropped: u64,
    pub filtered: u64,
    pub unattributed: u64,
    /// Owners recorded while the owner map was full, each evicting another.
    pub owners_evicted: u64,
    /// Sockets whose owner is in the owner map now (a gauge).
    pub owners: u64,
}

impl Counters {
    /// Sums every CPU's slots and reads the owner count.
    pub fn read(maps: &CounterMaps) -> Result<Self, aya::maps::MapError> {
        let mut c = Self::default();
        for counter in Counter::ALL {
            let total: u64 = maps.per_cpu.get(&(counter as u32), 0)?.iter().sum();
            match counter {
                Counter::Submitted => c.submitted = total,
                Counter::Dropped => c.dropped = total,
                Counter::Filtered => c.filtered = total,
                Counter::Unattributed => c.unattributed = total,
                Counter::OwnerEvicted => c.owners_evicted = total,
            }
        }
        c.owners = maps.owners.get(&0, 0)?;
        Ok(c)
    }
}
