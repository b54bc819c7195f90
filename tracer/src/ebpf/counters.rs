//! The kernel programs' counters: the per-CPU counters, summed, and the
//! number of entries in the owner map. They are read straight into the
//! snapshot's [`KernelCounts`], which holds them beside what userspace read.
//! Also the events the ring buffer had no room for (`LOST`), by what the
//! counts need of them, as increments since the previous read.

use std::collections::HashMap;

use aya::maps::{Array, MapData, MapError, PerCpuArray, PerCpuHashMap};
use tracer_common::{Counter, maps::LostKey};

use crate::snapshot::KernelCounts;

/// The maps the counters live in.
pub struct CounterMaps {
    pub per_cpu: PerCpuArray<MapData, u64>,
    /// One slot: entries in the owner map.
    pub owners: Array<MapData, u64>,
    /// Events lost for want of room, by [`LostKey`], per CPU.
    pub lost: PerCpuHashMap<MapData, LostKey, u64>,
    /// Each key's total at the previous read, and how many reads since it
    /// last grew.
    pub lost_seen: HashMap<LostKey, (u64, u8)>,
}

/// Reads after which a key that stopped growing is removed from the map,
/// making room for others.
const LOST_IDLE_READS: u8 = 3;

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

    /// The events lost since the previous call, by key. A key that stayed
    /// the same for a few reads is removed from the map (an increment
    /// between that read and the removal is the one thing that can be
    /// missed, for a key idle until then).
    pub fn lost_since(&mut self) -> Result<Vec<(LostKey, u64)>, MapError> {
        let mut out = Vec::new();
        let mut idle = Vec::new();
        for entry in self.lost.iter() {
            let (key, values) = entry?;
            let total: u64 = values.iter().sum();
            let (before, reads) = self.lost_seen.get(&key).copied().unwrap_or((0, 0));
            if total > before {
                out.push((key, total - before));
                self.lost_seen.insert(key, (total, 0));
            } else if reads + 1 >= LOST_IDLE_READS {
                idle.push(key);
            } else {
                self.lost_seen.insert(key, (total, reads + 1));
            }
        }
        for key in idle {
            // Gone already is as good.
            let _ = self.lost.remove(&key);
            self.lost_seen.remove(&key);
        }
        Ok(out)
    }
}
