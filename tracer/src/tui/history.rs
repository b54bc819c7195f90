//! The recent past of the live view: the last 10 minutes of each process's
//! key numbers and of the host's events/s, one sample per snapshot, in rings
//! of fixed size, and when each finding started. Built from the successive
//! snapshots the view receives ([`History::record`]); read by the renderer.
//!
//! Memory is bounded whatever the uptime: each ring holds at most
//! [`MAX_SLOTS`] samples, at most [`MAX_PROCESSES`] processes are followed,
//! and a process absent from a whole window of snapshots is forgotten.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::Duration,
};

use super::columns::Column;
use crate::{
    findings::{self, Kind},
    human,
    snapshot::{ProcessId, ProcessSnapshot, Remote, Snapshot},
};

/// How far back the history reaches.
pub const WINDOW: Duration = Duration::from_secs(600);
/// Samples per ring at most: at a refresh faster than one second the history
/// reaches back this many snapshots, less than [`WINDOW`].
pub const MAX_SLOTS: usize = 600;
/// Processes followed at once; a new one beyond this replaces the one absent
/// longest, or is not followed while every followed one is still present.
pub const MAX_PROCESSES: usize = 512;
/// Finding starts remembered per process, newest kept.
const MAX_STARTS: usize = 16;

/// A ring of at most `capacity` values: pushing onto a full ring overwrites
/// the oldest. Its storage is allocated once, at its full size.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    slots: Vec<T>,
    capacity: usize,
    /// Where the next value goes; equal to `slots.len()` until the ring is full.
    next: usize,
}

impl<T: Copy> Ring<T> {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            slots: Vec::with_capacity(capacity),
            capacity,
            next: 0,
        }
    }

    pub fn push(&mut self, value: T) {
        if self.slots.len() < self.capacity {
            self.slots.push(value);
        } else {
            self.slots[self.next] = value;
        }
        self.next = (self.next + 1) % self.capacity;
    }

    #[cfg(test)]
    pub const fn len(&self) -> usize {
        self.slots.len()
    }

    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = T> + '_ {
        // Before the ring is full `next` is its length, so the first part is empty.
        self.slots[self.next.min(self.slots.len())..]
            .iter()
            .chain(&self.slots[..self.next.min(self.slots.len())])
            .copied()
    }

    pub fn newest(&self) -> Option<T> {
        self.iter().next_back()
    }
}

/// One snapshot's numbers of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub connects: f32,
    pub failures: f32,
    pub retransmits: f32,
    pub rsts: f32,
    pub established: f32,
    pub close_wait: f32,
    pub time_wait: f32,
    pub fds: f32,
    /// Microseconds; 0 before the first completed handshake.
    pub handshake_p99: f32,
}

impl Sample {
    pub fn of(p: &ProcessSnapshot) -> Self {
        Self {
            connects: p.rates.connects as f32,
            failures: p.rates.connect_failures as f32,
            retransmits: p.rates.retransmits as f32,
            rsts: p.rates.rsts as f32,
            established: p.gauges.established as f32,
            close_wait: p.gauges.close_wait as f32,
            time_wait: p.gauges.time_wait as f32,
            fds: p.fds.map_or(0.0, |f| f.open as f32),
            handshake_p99: p.handshake_us.p99 as f32,
        }
    }
}

/// A number the history keeps, most telling first (the detail chart shows
/// them in this order, as many as fit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    Connects,
    Failures,
    Retransmits,
    Rsts,
    CloseWait,
    Established,
    TimeWait,
    Fds,
    HandshakeP99,
}

impl Series {
    pub const ALL: [Self; 9] = [
        Self::Connects,
        Self::Failures,
        Self::Retransmits,
        Self::Rsts,
        Self::CloseWait,
        Self::Established,
        Self::TimeWait,
        Self::Fds,
        Self::HandshakeP99,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Connects => "connects/s",
            Self::Failures => "failed/s",
            Self::Retransmits => "retransmits/s",
            Self::Rsts => "RSTs/s",
            Self::CloseWait => "CLOSE_WAIT",
            Self::Established => "established",
            Self::TimeWait => "TIME_WAIT",
            Self::Fds => "open FDs",
            Self::HandshakeP99 => "handshake p99",
        }
    }

    pub const fn value(self, s: &Sample) -> f32 {
        match self {
            Self::Connects => s.connects,
            Self::Failures => s.failures,
            Self::Retransmits => s.retransmits,
            Self::Rsts => s.rsts,
            Self::CloseWait => s.close_wait,
            Self::Established => s.established,
            Self::TimeWait => s.time_wait,
            Self::Fds => s.fds,
            Self::HandshakeP99 => s.handshake_p99,
        }
    }

    /// A value as the table writes it.
    pub fn format(self, v: f32) -> String {
        match self {
            Self::Connects | Self::Failures | Self::Retransmits | Self::Rsts => {
                human::rate(f64::from(v))
            }
            Self::HandshakeP99 if v <= 0.0 => "-".to_owned(),
            Self::HandshakeP99 => human::micros(v as u64),
            _ => human::count(v as u64),
        }
    }

    /// The series the trend column shows when the table is sorted by `column`:
    /// its own, or its rate for a total; connects/s for the text columns.
    pub const fn for_column(column: Column) -> Self {
        match column {
            Column::Pid
            | Column::Comm
            | Column::Container
            | Column::Connects
            | Column::ConnectRate
            | Column::Dns => Self::Connects,
            Column::Failures | Column::FailureRate => Self::Failures,
            Column::Retransmits | Column::RetransmitRate => Self::Retransmits,
            Column::RstSent | Column::RstReceived | Column::RstRate => Self::Rsts,
            Column::HandshakeP50 | Column::HandshakeP99 => Self::HandshakeP99,
            Column::Established => Self::Established,
            Column::CloseWait => Self::CloseWait,
            Column::TimeWait => Self::TimeWait,
            Column::Fds => Self::Fds,
        }
    }
}

/// A finding that started while the view ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// The uptime of the first snapshot it was in.
    pub at: Duration,
    pub kind: Kind,
    pub remote: Option<Remote>,
}

/// One process's past.
#[derive(Debug, Clone)]
struct ProcessHistory {
    /// One per snapshot recorded since it was first seen; `None` where it was
    /// absent from a snapshot.
    samples: Ring<Option<Sample>>,
    /// Snapshots in a row it has been absent from.
    absent_for: usize,
    /// Its findings' starts, oldest first.
    starts: VecDeque<Start>,
}

/// A finding, as told apart from the others over time.
type FindingKey = (u32, Kind, Option<Remote>);

#[derive(Debug, Clone)]
pub struct History {
    /// How often snapshots arrive.
    refresh: Duration,
    /// Uptime of each snapshot recorded; the slots of every ring line up with it.
    uptimes: Ring<Duration>,
    /// The host's events per second.
    events: Ring<f32>,
    processes: HashMap<ProcessId, ProcessHistory>,
    /// The findings of the last snapshot recorded, and when each started.
    active: BTreeMap<FindingKey, Duration>,
}

impl Default for History {
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

impl History {
    /// A history for snapshots that arrive every `refresh`: [`WINDOW`] of
    /// them, [`MAX_SLOTS`] at most.
    pub fn new(refresh: Duration) -> Self {
        let refresh = refresh.max(Duration::from_millis(1));
        let slots = WINDOW.as_nanos().div_ceil(refresh.as_nanos());
        let slots = usize::try_from(slots)
            .unwrap_or(MAX_SLOTS)
            .clamp(2, MAX_SLOTS);
        Self {
            refresh,
            uptimes: Ring::new(slots),
            events: Ring::new(slots),
            processes: HashMap::new(),
            active: BTreeMap::new(),
        }
    }

    /// Samples per ring.
    pub const fn slots(&self) -> usize {
        self.uptimes.capacity()
    }

    /// How far back a full ring reaches.
    pub fn span(&self) -> Duration {
        self.refresh * self.slots() as u32
    }

    /// Adds a snapshot; one already recorded (or older) is ignored, so the
    /// caller may offer the same one at every redraw.
    pub fn record(&mut self, snapshot: &Snapshot) {
        if self.uptimes.newest().is_some_and(|u| snapshot.uptime <= u) {
            return;
        }
        let now = snapshot.uptime;
        self.uptimes.push(now);
        self.events.push(snapshot.events_per_sec as f32);

        let slots = self.slots();
        for h in self.processes.values_mut() {
            h.absent_for += 1;
        }
        // Those followed already first, so that a newcomer only ever
        // replaces a process absent from this snapshot.
        let mut new = Vec::new();
        for p in &snapshot.processes {
            match self.processes.get_mut(&p.id) {
                Some(h) => {
                    h.samples.push(Some(Sample::of(p)));
                    h.absent_for = 0;
                }
                None => new.push(p),
            }
        }
        for p in new {
            if !self.make_room() {
                break;
            }
            let mut samples = Ring::new(slots);
            samples.push(Some(Sample::of(p)));
            self.processes.insert(
                p.id,
                ProcessHistory {
                    samples,
                    absent_for: 0,
                    starts: VecDeque::new(),
                },
            );
        }
        // Absent this time: a gap, so every ring's newest slot is this snapshot.
        for h in self.processes.values_mut() {
            if h.absent_for > 0 {
                h.samples.push(None);
            }
        }
        self.processes.retain(|_, h| h.absent_for < slots);

        self.record_findings(snapshot);
    }

    /// Makes room for one more process: forgets the one absent longest when
    /// the table is full. False when every followed process is present.
    fn make_room(&mut self) -> bool {
        if self.processes.len() < MAX_PROCESSES {
            return true;
        }
        let longest = self
            .processes
            .iter()
            .filter(|(_, h)| h.absent_for > 0)
            .max_by_key(|(id, h)| (h.absent_for, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id);
        match longest {
            Some(id) => {
                self.processes.remove(&id);
                true
            }
            None => false,
        }
    }

    /// Notes the findings that were not in the previous snapshot as started now.
    fn record_findings(&mut self, snapshot: &Snapshot) {
        let now = snapshot.uptime;
        let oldest = self.uptimes.iter().next().unwrap_or(now);
        let mut active = BTreeMap::new();
        for f in findings::findings(snapshot) {
            let key = (f.pid, f.kind, f.remote);
            let started = self.active.get(&key).copied();
            active.insert(key, started.unwrap_or(now));
            if started.is_some() {
                continue;
            }
            let Some(p) = snapshot.processes.iter().find(|p| p.id.pid == f.pid) else {
                continue;
            };
            if let Some(h) = self.processes.get_mut(&p.id) {
                if h.starts.len() == MAX_STARTS {
                    h.starts.pop_front();
                }
                h.starts.push_back(Start {
                    at: now,
                    kind: f.kind,
                    remote: f.remote,
                });
            }
        }
        self.active = active;
        for h in self.processes.values_mut() {
            h.starts.retain(|s| s.at >= oldest);
        }
    }

    /// How many of the newest slots are newer than `until` (the shown
    /// snapshot, when paused): the view ends before them.
    fn newer_than(&self, until: Duration) -> usize {
        self.uptimes.iter().rev().take_while(|&u| u > until).count()
    }

    /// The host's events/s over the window ending at `until`, oldest first,
    /// one per slot (`None` before the first snapshot).
    pub fn events(&self, until: Duration) -> Vec<Option<f32>> {
        self.window(self.events.iter().map(Some), until)
    }

    /// One series of process `id` over the window ending at `until`, oldest
    /// first, one per slot: `None` where it was not seen.
    pub fn series(&self, id: ProcessId, series: Series, until: Duration) -> Vec<Option<f32>> {
        match self.processes.get(&id) {
            Some(h) => self.window(h.samples.iter().map(|s| s.map(|s| series.value(&s))), until),
            None => vec![None; self.slots()],
        }
    }

    /// The findings of process `id` that started in the window ending at
    /// `until`, each with its slot (0 is the oldest of the window).
    pub fn starts(&self, id: ProcessId, until: Duration) -> Vec<(usize, Start)> {
        let Some(h) = self.processes.get(&id) else {
            return Vec::new();
        };
        let uptimes = self.window(self.uptimes.iter().map(Some), until);
        h.starts
            .iter()
            .filter_map(|s| {
                let slot = uptimes.iter().position(|&u| u == Some(s.at))?;
                Some((slot, *s))
            })
            .collect()
    }

    /// When the finding `(pid, kind, remote)` of the last snapshot recorded
    /// started.
    #[cfg(test)]
    pub fn started(&self, pid: u32, kind: Kind, remote: Option<Remote>) -> Option<Duration> {
        self.active.get(&(pid, kind, remote)).copied()
    }

    /// `values` (newest last, aligned with the newest slot) cut to end at
    /// `until` and padded in front to a full window.
    fn window<T: Copy>(
        &self,
        values: impl DoubleEndedIterator<Item = Option<T>>,
        until: Duration,
    ) -> Vec<Option<T>> {
        let skip = self.newer_than(until);
        let kept: Vec<Option<T>> = values.rev().skip(skip).collect();
        let mut out = vec![None; self.slots().saturating_sub(kept.len())];
        out.extend(kept.into_iter().rev());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn at(snapshot: &Snapshot, secs: u64) -> Snapshot {
        let mut s = snapshot.clone();
        s.uptime = Duration::from_secs(secs);
        s
    }

    #[test]
    fn a_ring_keeps_the_newest_values_in_order() {
        let mut r = Ring::new(3);
        assert_eq!(r.iter().count(), 0);
        assert_eq!(r.newest(), None);
        r.push(1);
        r.push(2);
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![1, 2]);
        r.push(3);
        r.push(4);
        r.push(5);
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(r.newest(), Some(5));
        assert_eq!(r.len(), 3);
        for i in 0..1000 {
            r.push(i);
        }
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![997, 998, 999]);
        assert_eq!(r.len(), 3, "never grows past its capacity");
        assert!(r.slots.capacity() >= 3 && r.slots.capacity() < 8);
    }

    #[test]
    fn slots_come_from_the_refresh_and_are_capped() {
        assert_eq!(History::new(Duration::from_secs(1)).slots(), 600);
        assert_eq!(History::new(Duration::from_secs(5)).slots(), 120);
        assert_eq!(History::new(Duration::from_secs(7)).slots(), 86);
        assert_eq!(History::new(Duration::from_millis(100)).slots(), MAX_SLOTS);
        assert_eq!(History::new(Duration::from_secs(86_400)).slots(), 2);
        assert_eq!(History::new(Duration::ZERO).slots(), MAX_SLOTS);
        assert_eq!(
            History::new(Duration::from_secs(5)).span(),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn memory_does_not_grow_with_uptime() {
        let base = fixtures::misbehaving();
        let mut h = History::new(Duration::from_secs(5));
        for i in 1..=1_000 {
            h.record(&at(&base, i));
        }
        assert_eq!(h.uptimes.len(), 120);
        assert_eq!(h.events.len(), 120);
        assert_eq!(h.processes.len(), 4);
        assert!(h.processes.values().all(|p| p.samples.len() == 120));
        let id = base.processes[0].id;
        let connects = h.series(id, Series::Connects, Duration::MAX);
        assert_eq!(connects.len(), 120);
        assert!(connects.iter().all(|&v| v == Some(14.0)));
    }

    #[test]
    fn a_snapshot_is_recorded_once() {
        let base = fixtures::misbehaving();
        let mut h = History::new(Duration::from_secs(1));
        h.record(&at(&base, 1));
        h.record(&at(&base, 1));
        h.record(&at(&base, 0));
        assert_eq!(h.uptimes.len(), 1);
    }

    #[test]
    fn series_line_up_with_gaps_where_a_process_was_absent() {
        let base = fixtures::misbehaving();
        let proxy = base.processes[0].id;
        let billing = base.processes[1].id;
        let mut h = History::new(Duration::from_secs(60)); // 10 slots
        h.record(&at(&base, 1));
        let mut without = at(&base, 2);
        without.processes.remove(1);
        h.record(&without);
        h.record(&at(&base, 3));
        let connects = h.series(billing, Series::Connects, Duration::MAX);
        assert_eq!(&connects[7..], &[Some(2.0), None, Some(2.0)]);
        assert_eq!(connects[..7], [None; 7]);
        let proxy_connects = h.series(proxy, Series::Connects, Duration::MAX);
        assert_eq!(&proxy_connects[7..], &[Some(14.0); 3]);
        // Paused at the second snapshot: the window ends there.
        let paused = h.series(billing, Series::Connects, Duration::from_secs(2));
        assert_eq!(&paused[8..], &[Some(2.0), None]);
        assert_eq!(h.events(Duration::from_secs(2))[9], Some(1_312.0));
    }

    #[test]
    fn processes_gone_for_a_whole_window_are_forgotten() {
        let base = fixtures::misbehaving();
        let billing = base.processes[1].id;
        let mut h = History::new(Duration::from_secs(120)); // 5 slots
        h.record(&at(&base, 1));
        let mut without = base.clone();
        without.processes.remove(1);
        for i in 2..=5 {
            h.record(&at(&without, i));
            assert!(h.processes.contains_key(&billing), "absent {} times", i - 1);
        }
        h.record(&at(&without, 6));
        assert!(!h.processes.contains_key(&billing));
        assert_eq!(
            h.series(billing, Series::Connects, Duration::MAX),
            vec![None; 5]
        );
        assert_eq!(h.processes.len(), 3);
    }

    #[test]
    fn the_number_of_processes_is_bounded() {
        let many = |from: u32| {
            fixtures::snapshot(
                (from..from + MAX_PROCESSES as u32)
                    .map(|pid| fixtures::process(pid, "p"))
                    .collect(),
            )
        };
        let mut h = History::new(Duration::from_secs(1));
        let mut first = many(1);
        first.uptime = Duration::from_secs(1);
        h.record(&first);
        assert_eq!(h.processes.len(), MAX_PROCESSES);
        // All still present: a newcomer is not followed.
        let mut more = first.clone();
        more.uptime = Duration::from_secs(2);
        more.processes.push(fixtures::process(100_000, "new"));
        h.record(&more);
        assert_eq!(h.processes.len(), MAX_PROCESSES);
        assert!(h.processes.keys().all(|id| id.pid != 100_000));
        // A whole new set: each replaces one that is gone.
        let mut next = many(10_001);
        next.uptime = Duration::from_secs(3);
        h.record(&next);
        assert_eq!(h.processes.len(), MAX_PROCESSES);
        assert!(h.processes.keys().all(|id| id.pid > 10_000));
    }

    #[test]
    fn findings_are_marked_when_they_start() {
        let base = fixtures::misbehaving();
        let proxy = base.processes[0].id;
        let mut calm = base.clone();
        calm.processes[0].gauges.close_wait = 0;
        calm.processes[0].gauges.oldest_close_wait = None;
        let mut h = History::new(Duration::from_secs(60)); // 10 slots
        h.record(&at(&calm, 1));
        h.record(&at(&base, 2));
        h.record(&at(&base, 3));
        let starts = h.starts(proxy, Duration::MAX);
        let leak: Vec<usize> = starts
            .iter()
            .filter(|(_, s)| s.kind == Kind::CloseWaitLeak)
            .map(|&(slot, _)| slot)
            .collect();
        assert_eq!(leak, vec![8], "the second of three snapshots");
        assert!(
            starts.iter().any(|&(slot, _)| slot == 7),
            "those from the start"
        );
        assert_eq!(
            h.started(1187, Kind::CloseWaitLeak, None),
            Some(Duration::from_secs(2))
        );
        // Over, then back: a new start.
        h.record(&at(&calm, 4));
        assert_eq!(h.started(1187, Kind::CloseWaitLeak, None), None);
        h.record(&at(&base, 5));
        assert_eq!(
            h.started(1187, Kind::CloseWaitLeak, None),
            Some(Duration::from_secs(5))
        );
        // Paused before it started again: that start is not in the window.
        let paused = h.starts(proxy, Duration::from_secs(3));
        assert_eq!(
            paused
                .iter()
                .filter(|(_, s)| s.kind == Kind::CloseWaitLeak)
                .count(),
            1
        );
        // Starts leave with the window.
        for i in 6..=20 {
            h.record(&at(&base, i));
        }
        assert!(h.starts(proxy, Duration::MAX).is_empty());
    }
}
