//! Matching DNS answers to their queries: by socket (cookie) and id, and
//! the question's name. A query unanswered after [`TIMEOUT`] timed out.

use std::{net::SocketAddr, time::Duration};

use rustc_hash::FxHashMap as HashMap;

use super::DnsMessage;
use crate::{event::Comm, proc::ProcessId};

/// A query with no answer this long after it was sent has timed out. Five
/// seconds is the first-try timeout of glibc's and Go's resolvers; a
/// resolver that gives up sooner has given up by then too.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Queries waiting for an answer at once; beyond it new ones are not matched
/// (counted in [`Lookups::unmatched`]).
pub const PENDING_MAX: usize = 65_536;

/// A query and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The process that sent the query, as the aggregator knows it.
    pub owner: Option<ProcessId>,
    pub pid: u32,
    pub comm: Comm,
    pub unattributed: bool,
    pub name: String,
    pub qtype: u16,
    pub server: SocketAddr,
    pub tcp: bool,
    /// When the query was sent (ns since the Unix epoch).
    pub ts_ns: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered { rcode: u8, latency_us: u64 },
    TimedOut,
}

/// Queries waiting for their answers.
#[derive(Debug, Default)]
pub struct Lookups {
    pending: HashMap<(u64, u16), (DnsMessage, Option<ProcessId>)>,
    /// Queries not tracked because [`PENDING_MAX`] were waiting.
    pub unmatched: u64,
}

impl Lookups {
    /// Takes in a query. Returns whether it is a new one: a resolver that
    /// sends the same query again on the same socket is still waiting on
    /// its first.
    pub fn query(&mut self, m: DnsMessage, owner: Option<ProcessId>) -> bool {
        let key = (m.ev.sk, m.id);
        if let Some((first, _)) = self.pending.get(&key)
            && first.name.eq_ignore_ascii_case(&m.name)
        {
            return false;
        }
        if self.pending.len() >= PENDING_MAX {
            self.unmatched += 1;
            return true;
        }
        self.pending.insert(key, (m, owner));
        true
    }

    /// The lookup an answer ends, if its query was seen.
    pub fn answer(&mut self, m: &DnsMessage) -> Option<Lookup> {
        let key = (m.ev.sk, m.id);
        let (query, _) = self.pending.get(&key)?;
        if !query.name.eq_ignore_ascii_case(&m.name) {
            return None;
        }
        let (query, owner) = self.pending.remove(&key)?;
        let latency_us = m.ev.mono_ns.saturating_sub(query.ev.mono_ns) / 1000;
        Some(lookup(
            query,
            owner,
            Outcome::Answered {
                rcode: m.rcode,
                latency_us,
            },
        ))
    }

    /// The queries older than [`TIMEOUT`] at `now_mono_ns`, as timed out.
    pub fn expire(&mut self, now_mono_ns: u64) -> Vec<Lookup> {
        let timeout = TIMEOUT.as_nanos() as u64;
        let expired: Vec<(u64, u16)> = self
            .pending
            .iter()
            .filter(|(_, (query, _))| now_mono_ns.saturating_sub(query.ev.mono_ns) >= timeout)
            .map(|(key, _)| *key)
            .collect();
        let mut out: Vec<Lookup> = expired
            .into_iter()
            .filter_map(|key| self.pending.remove(&key))
            .map(|(query, owner)| lookup(query, owner, Outcome::TimedOut))
            .collect();
        out.sort_by_key(|l| l.ts_ns);
        out
    }

    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

fn lookup(query: DnsMessage, owner: Option<ProcessId>, outcome: Outcome) -> Lookup {
    let server = query.server();
    Lookup {
        owner,
        pid: query.ev.pid,
        comm: query.ev.comm,
        unattributed: query.ev.unattributed,
        name: query.name,
        qtype: query.qtype,
        server,
        tcp: query.tcp,
        ts_ns: query.ev.ts_ns,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Clock;

    fn message(answer: bool, id: u16, rcode: u8, name: &[u8], at_ns: u64) -> DnsMessage {
        let bytes = super::super::tests::record(answer, id, rcode, name);
        let mut m = DnsMessage::decode(&bytes, &Clock::with_offset(0)).unwrap();
        m.ev.mono_ns = at_ns;
        m
    }

    #[test]
    fn answers_end_their_queries() {
        let mut l = Lookups::default();
        assert!(l.query(message(false, 1, 0, b"\x02ok", 1_000_000), None));
        // The same query again is the same lookup.
        assert!(!l.query(message(false, 1, 0, b"\x02ok", 2_000_000), None));
        // An answer for another name or id ends nothing.
        assert_eq!(l.answer(&message(true, 1, 0, b"\x02no", 3_000_000)), None);
        assert_eq!(l.answer(&message(true, 2, 0, b"\x02ok", 3_000_000)), None);
        let done = l
            .answer(&message(true, 1, 3, b"\x02OK", 5_000_000))
            .unwrap();
        assert_eq!(
            done.outcome,
            Outcome::Answered {
                rcode: 3,
                latency_us: 4_000
            }
        );
        assert_eq!(l.pending(), 0);
    }

    #[test]
    fn unanswered_queries_time_out() {
        let mut l = Lookups::default();
        l.query(message(false, 1, 0, b"\x06silent", 0), None);
        l.query(message(false, 2, 0, b"\x02ok", 4_000_000_000), None);
        assert!(l.expire(4_999_999_999).is_empty());
        let out = l.expire(5_000_000_000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "silent");
        assert_eq!(out[0].outcome, Outcome::TimedOut);
        assert_eq!(l.pending(), 1);
    }
}
