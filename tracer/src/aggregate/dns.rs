//! A process's DNS lookups: latency, and counts by name and by server, bounded.

use std::{collections::BTreeMap, net::SocketAddr};

use rustc_hash::FxHashMap as HashMap;

use super::latency::{Distribution, PRECISE};
use crate::{
    dns::{Lookup, Outcome, wire},
    snapshot::{DnsNameSnapshot, DnsServerSnapshot, DnsSnapshot},
};

/// Names tracked per process; the rest are counted under [`OTHER`].
pub const NAMES_MAX: usize = 64;
/// Servers tracked per process; lookups to more go uncounted by server.
pub const SERVERS_MAX: usize = 32;
/// The entry that counts the names past [`NAMES_MAX`].
pub const OTHER: &str = "other";
/// Lookup latencies above this are clamped (µs): a minute.
const LATENCY_MAX_US: u64 = 60_000_000;

#[derive(Debug, Default)]
struct NameAgg {
    lookups: u64,
    failures: BTreeMap<u8, u64>,
    timeouts: u64,
}

#[derive(Debug, Default)]
struct ServerAgg {
    lookups: u64,
    failures: u64,
    timeouts: u64,
}

#[derive(Debug, Default)]
pub struct DnsAgg {
    latency_us: Option<Distribution>,
    names: HashMap<String, NameAgg>,
    servers: HashMap<SocketAddr, ServerAgg>,
}

impl DnsAgg {
    /// Takes in a lookup that ended.
    pub fn record(&mut self, lookup: &Lookup) {
        let name = if self.names.len() < NAMES_MAX || self.names.contains_key(&lookup.name) {
            lookup.name.as_str()
        } else {
            OTHER
        };
        let by_name = self.names.entry(name.to_owned()).or_default();
        by_name.lookups += 1;
        let server =
            if self.servers.len() < SERVERS_MAX || self.servers.contains_key(&lookup.server) {
                Some(self.servers.entry(lookup.server).or_default())
            } else {
                None
            };
        let mut server_slot = ServerAgg::default();
        let by_server = server.unwrap_or(&mut server_slot);
        by_server.lookups += 1;
        match lookup.outcome {
            Outcome::Answered { rcode, latency_us } => {
                self.latency_us
                    .get_or_insert_with(|| Distribution::new(LATENCY_MAX_US, PRECISE))
                    .record(latency_us);
                if rcode != 0 {
                    *by_name.failures.entry(rcode).or_default() += 1;
                    by_server.failures += 1;
                }
            }
            Outcome::TimedOut => {
                by_name.timeouts += 1;
                by_server.timeouts += 1;
            }
        }
    }

    pub fn snapshot(&self) -> DnsSnapshot {
        let mut names: Vec<DnsNameSnapshot> = self
            .names
            .iter()
            .map(|(name, n)| {
                let mut failures: Vec<(String, u64)> = n
                    .failures
                    .iter()
                    .map(|(&rcode, &count)| (wire::rcode(rcode).into_owned(), count))
                    .collect();
                failures.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                DnsNameSnapshot {
                    name: name.clone(),
                    lookups: n.lookups,
                    failures,
                    timeouts: n.timeouts,
                }
            })
            .collect();
        names.sort_by(|a, b| {
            (b.failed() + b.timeouts)
                .cmp(&(a.failed() + a.timeouts))
                .then(b.lookups.cmp(&a.lookups))
                .then_with(|| a.name.cmp(&b.name))
        });
        let mut servers: Vec<DnsServerSnapshot> = self
            .servers
            .iter()
            .map(|(&server, s)| DnsServerSnapshot {
                server,
                lookups: s.lookups,
                failures: s.failures,
                timeouts: s.timeouts,
            })
            .collect();
        servers.sort_by(|a, b| {
            b.timeouts
                .cmp(&a.timeouts)
                .then(b.lookups.cmp(&a.lookups))
                .then(a.server.cmp(&b.server))
        });
        DnsSnapshot {
            latency_us: self
                .latency_us
                .as_ref()
                .map(Distribution::summary)
                .unwrap_or_default(),
            names,
            servers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Comm;

    fn lookup(name: &str, outcome: Outcome) -> Lookup {
        Lookup {
            owner: None,
            pid: 1,
            comm: Comm::from("app"),
            unattributed: false,
            name: name.to_owned(),
            qtype: 1,
            server: "10.0.0.53:53".parse().unwrap(),
            tcp: false,
            ts_ns: 0,
            outcome,
        }
    }

    #[test]
    fn counts_by_name_and_server() {
        let mut d = DnsAgg::default();
        let ok = Outcome::Answered {
            rcode: 0,
            latency_us: 300,
        };
        let nx = Outcome::Answered {
            rcode: 3,
            latency_us: 500,
        };
        d.record(&lookup("ok.test", ok));
        d.record(&lookup("nx.test", nx));
        d.record(&lookup("nx.test", nx));
        d.record(&lookup("silent.test", Outcome::TimedOut));
        let s = d.snapshot();
        assert_eq!(s.latency_us.count, 3);
        let names: Vec<(&str, u64, u64, u64)> = s
            .names
            .iter()
            .map(|n| (n.name.as_str(), n.lookups, n.failed(), n.timeouts))
            .collect();
        assert_eq!(
            names,
            [
                ("nx.test", 2, 2, 0),
                ("silent.test", 1, 0, 1),
                ("ok.test", 1, 0, 0)
            ]
        );
        assert_eq!(s.names[0].failures, [("NXDOMAIN".to_owned(), 2)]);
        assert_eq!(s.servers.len(), 1);
        assert_eq!(
            (
                s.servers[0].lookups,
                s.servers[0].failures,
                s.servers[0].timeouts
            ),
            (4, 2, 1)
        );
    }

    #[test]
    fn names_past_the_bound_are_other() {
        let mut d = DnsAgg::default();
        for i in 0..NAMES_MAX + 10 {
            d.record(&lookup(&format!("n{i}.test"), Outcome::TimedOut));
        }
        let s = d.snapshot();
        assert_eq!(s.names.len(), NAMES_MAX + 1);
        let other = s.names.iter().find(|n| n.name == OTHER).unwrap();
        assert_eq!(other.lookups, 10);
    }
}
