//! The kernel programs' per-CPU counters, summed.

use aya::maps::{MapData, PerCpuArray};
use tracer_common::Counter;

/// Totals of the kernel counters since load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub submitted: u64,
    pub dropped: u64,
    pub filtered: u64,
    pub unattributed: u64,
}

impl Counters {
    /// Sums every CPU's slots.
    pub fn read(map: &PerCpuArray<MapData, u64>) -> Result<Self, aya::maps::MapError> {
        let mut c = Self::default();
        for counter in Counter::ALL {
            let total: u64 = map.get(&(counter as u32), 0)?.iter().sum();
            match counter {
                Counter::Submitted => c.submitted = total,
                Counter::Dropped => c.dropped = total,
                Counter::Filtered => c.filtered = total,
                Counter::Unattributed => c.unattributed = total,
            }
        }
        Ok(c)
    }
}
