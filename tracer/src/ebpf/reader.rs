//! Draining the ring buffer into decoded events.
//!
//! The programs wake the reader only once the ring is a quarter full (see
//! `tracer-ebpf/src/emit.rs`); below that, records are collected every
//! [`POLL_EVERY`], so a quiet host costs a few wakeups a second and a busy
//! one far fewer than one per event.

use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::{io::unix::AsyncFd, time::Interval};

/// How often the ring is drained without a wakeup.
pub const POLL_EVERY: Duration = Duration::from_millis(100);

use crate::event::{Clock, Record};

pub struct Reader {
    ring: AsyncFd<RingBuf<MapData>>,
    poll: Interval,
    clock: Clock,
    /// Records this build could not decode (a mismatched object or kind).
    pub decode_errors: u64,
    /// Records read so far.
    pub read: u64,
}

impl Reader {
    pub fn new(ring: RingBuf<MapData>, clock: Clock) -> std::io::Result<Self> {
        // SAFETY: the ring buffer owns its map fd for as long as the AsyncFd
        // holds it, and `as_raw_fd` always returns that same descriptor.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self {
            ring,
            poll,
            clock,
            decode_errors: 0,
            read: 0,
        })
    }

    /// Waits for a wakeup or the poll timer, then hands every available
    /// record to `sink`.
    pub async fn drain(&mut self, sink: impl FnMut(Record)) -> std::io::Result<usize> {
        let woken = tokio::select! {
            guard = self.ring.readable_mut() => Some(guard?),
            _ = self.poll.tick() => None,
        };
        let n = match woken {
            Some(mut guard) => {
                let n = Self::drain_ring(
                    guard.get_inner_mut(),
                    &self.clock,
                    &mut self.decode_errors,
                    sink,
                );
                guard.clear_ready();
                n
            }
            None => Self::drain_ring(
                self.ring.get_mut(),
                &self.clock,
                &mut self.decode_errors,
                sink,
            ),
        };
        self.read += n as u64;
        Ok(n)
    }

    /// Hands whatever is in the ring right now to `sink` without waiting (used at exit).
    pub fn drain_now(&mut self, sink: impl FnMut(Record)) -> usize {
        let n = Self::drain_ring(
            self.ring.get_mut(),
            &self.clock,
            &mut self.decode_errors,
            sink,
        );
        self.read += n as u64;
        n
    }

    fn drain_ring(
        ring: &mut RingBuf<MapData>,
        clock: &Clock,
        decode_errors: &mut u64,
        mut sink: impl FnMut(Record),
    ) -> usize {
        let mut n = 0;
        while let Some(item) = ring.next() {
            n += 1;
            match Record::decode(&item, clock) {
                Ok(ev) => sink(ev),
                Err(_) => *decode_errors += 1,
            }
        }
        n
    }
}
