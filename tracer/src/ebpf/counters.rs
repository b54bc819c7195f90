//! The kernel programs' counters: the per-CPU counters, summed, and the
//! number of entries in the owner map. They are read straight into the
//! snapshot's [`KernelCounts`], which holds them beside what userspace read.

use aya::maps::{Array, MapData, MapError, PerCpuArray};
use tracer_common::Counter;

use crate::snapshot::KernelCounts;

/// The maps the counters live in.
pub struct CounterMaps {
    pub per_cpu: PerCpuArray<MapData, u64>,
    /// One slot: entries in the owner map.
    pub owners: Array<MapData, u64>,
}

impl CounterMaps {
    /// Fills the kernel's side of `counts` (totals since load): sums every
    /// CPU's slots and reads the owner count. What userspace read is left as is.
    pub fn read_into(&self, counts: &mut KernelCounts) -> Result<(), MapError> {
        for counter in Counter::ALL {
            let total: u64 = self.per_cpu.get(&(counter as u32), 0)?.iter().sum();
            let slot = match counter {
                Counter::Submitted => &mut counts.submitted,
                Counter::Dropped => &mut counts.dropped,
                Counter::Filtered => &mut counts.filtered,
                Counter::Unattributed => &mut counts.unattributed,
                Counter::OwnerEvicted => &mut counts.owners_evicted,
                Counter::ClosedPort => &mut counts.closed_port_resets,
            };
            *slot = total;
        }
        counts.owners = self.owners.get(&0, 0)?;
        Ok(())
    }
}
