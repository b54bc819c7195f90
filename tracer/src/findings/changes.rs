//! Findings over time: which started and which ended between two
//! consecutive snapshots, for the `finding` lines of `--events`.
//!
//! A finding is the same one while its process, kind, remote and severity
//! stay the same; its evidence (the numbers) may change from snapshot to
//! snapshot without making it a new one. A finding whose severity changes
//! ends and starts again at the new severity.

use super::{Finding, Kind, Severity};
use crate::snapshot::Remote;

/// Whether a finding started or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Start,
    End,
}

impl Transition {
    /// As the `state` field of a `finding` line says it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::End => "end",
        }
    }
}

/// What makes two findings of consecutive snapshots the same one. The
/// headline tells apart findings that name what they are about (a DNS
/// name); for the others it follows from the rest.
type Key = (u32, Kind, Option<Remote>, Severity, String);

fn key(f: &Finding) -> Key {
    (f.pid, f.kind, f.remote, f.severity, f.headline.clone())
}

/// The findings of the previous snapshot, to compare the next one with.
#[derive(Debug, Default)]
pub struct Changes {
    previous: Vec<Finding>,
}

impl Changes {
    /// Takes the findings of the next snapshot; returns those that ended
    /// (with the words they last had), then those that started, each in the
    /// order of [`super::findings`].
    pub fn next(&mut self, now: Vec<Finding>) -> Vec<(Transition, Finding)> {
        let mut out = Vec::new();
        let now_keys: std::collections::BTreeSet<Key> = now.iter().map(key).collect();
        let before_keys: std::collections::BTreeSet<Key> = self.previous.iter().map(key).collect();
        for f in self.previous.drain(..) {
            if !now_keys.contains(&key(&f)) {
                out.push((Transition::End, f));
            }
        }
        out.extend(
            now.iter()
                .filter(|f| !before_keys.contains(&key(f)))
                .map(|f| (Transition::Start, f.clone())),
        );
        self.previous = now;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        findings::{CLOSE_WAIT_SOCKETS, REFUSED_CONNECTS, findings},
        fixtures::{self, process, server},
    };

    fn changes(c: &mut Changes, p: &crate::snapshot::ProcessSnapshot) -> Vec<(Transition, Kind)> {
        c.next(findings(&fixtures::snapshot(vec![p.clone()])))
            .into_iter()
            .map(|(t, f)| (t, f.kind))
            .collect()
    }

    #[test]
    fn a_finding_starts_once_holds_quietly_and_ends_once() {
        let mut c = Changes::default();
        let mut p = process(10, "app");
        assert!(changes(&mut c, &p).is_empty());
        p.gauges.close_wait = CLOSE_WAIT_SOCKETS;
        assert_eq!(
            changes(&mut c, &p),
            [(Transition::Start, Kind::CloseWaitLeak)]
        );
        p.gauges.close_wait += 5;
        assert!(changes(&mut c, &p).is_empty(), "new numbers, same finding");
        p.gauges.close_wait = 0;
        assert_eq!(
            changes(&mut c, &p),
            [(Transition::End, Kind::CloseWaitLeak)]
        );
        assert!(changes(&mut c, &p).is_empty());
    }

    #[test]
    fn per_remote_findings_are_told_apart_and_a_new_severity_is_a_new_finding() {
        let mut c = Changes::default();
        let mut p = process(10, "app");
        let mut a = server("10.0.0.1:80");
        a.counts.connect_refused = REFUSED_CONNECTS;
        p.remotes = vec![a.clone()];
        let started = c.next(findings(&fixtures::snapshot(vec![p.clone()])));
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].1.severity, Severity::Critical);
        let mut b = server("10.0.0.2:80");
        b.counts.connect_refused = REFUSED_CONNECTS;
        p.remotes = vec![a.clone(), b];
        let more = c.next(findings(&fixtures::snapshot(vec![p.clone()])));
        assert_eq!(more.len(), 1, "{more:#?}");
        assert_eq!(
            (more[0].0, more[0].1.remote),
            (
                Transition::Start,
                Some(Remote::Server("10.0.0.2:80".parse().unwrap()))
            )
        );
        // One connect to the first succeeds: critical becomes a warning.
        a.counts.connect_ok = 1;
        p.remotes[0] = a;
        let moved: Vec<(Transition, Severity)> = c
            .next(findings(&fixtures::snapshot(vec![p])))
            .into_iter()
            .map(|(t, f)| (t, f.severity))
            .collect();
        assert_eq!(
            moved,
            [
                (Transition::End, Severity::Critical),
                (Transition::Start, Severity::Warning)
            ]
        );
    }
}
