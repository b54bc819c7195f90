//! The columns of the process table: heading, width, which to drop first on a
//! narrow terminal, the text of a cell and the value it sorts by; and the
//! trend column after them, the first to go.

use std::cmp::Ordering;

use crate::{human, snapshot::ProcessSnapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Pid,
    Comm,
    Container,
    Connects,
    ConnectRate,
    Failures,
    FailureRate,
    Retransmits,
    RetransmitRate,
    RstSent,
    RstReceived,
    RstRate,
    HandshakeP50,
    HandshakeP99,
    Established,
    CloseWait,
    TimeWait,
    Fds,
    Dns,
}

/// Table order (left to right); sorting steps through it too.
pub const ALL: [Column; 19] = [
    Column::Pid,
    Column::Comm,
    Column::Container,
    Column::Connects,
    Column::ConnectRate,
    Column::Failures,
    Column::FailureRate,
    Column::Retransmits,
    Column::RetransmitRate,
    Column::RstSent,
    Column::RstReceived,
    Column::RstRate,
    Column::HandshakeP50,
    Column::HandshakeP99,
    Column::Established,
    Column::CloseWait,
    Column::TimeWait,
    Column::Fds,
    Column::Dns,
];

/// A value to sort by.
#[derive(Debug, PartialEq, PartialOrd)]
enum SortKey<'a> {
    Number(f64),
    Text(&'a str),
}

impl Column {
    pub const fn heading(self) -> &'static str {
        match self {
            Self::Pid => "PID",
            Self::Comm => "COMMAND",
            Self::Container => "CONTAINER",
            Self::Connects => "CONN",
            Self::ConnectRate => "CONN/s",
            Self::Failures => "FAIL",
            Self::FailureRate => "FAIL/s",
            Self::Retransmits => "RETX",
            Self::RetransmitRate => "RETX/s",
            Self::RstSent => "RST TX",
            Self::RstReceived => "RST RX",
            Self::RstRate => "RST/s",
            Self::HandshakeP50 => "HS p50",
            Self::HandshakeP99 => "HS p99",
            Self::Established => "ESTAB",
            Self::CloseWait => "CLOSE_W",
            Self::TimeWait => "TIME_W",
            Self::Fds => "FDS",
            Self::Dns => "DNS BAD",
        }
    }

    /// What the heading means, for the help popup.
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::Pid => "process id",
            Self::Comm => "command name",
            Self::Container => "container id, else pod uid or systemd unit",
            Self::Connects => "connects started",
            Self::ConnectRate => "connects per second",
            Self::Failures => "connects refused, timed out or failed",
            Self::FailureRate => "failed connects per second",
            Self::Retransmits => "data retransmits",
            Self::RetransmitRate => "retransmits per second (data, SYN, SYN-ACK)",
            Self::RstSent => "RSTs sent",
            Self::RstReceived => "RSTs received",
            Self::RstRate => "RSTs per second, both ways",
            Self::HandshakeP50 => "median connect handshake",
            Self::HandshakeP99 => "99th percentile handshake",
            Self::Established => "sockets ESTABLISHED now",
            Self::CloseWait => "sockets in CLOSE_WAIT now",
            Self::TimeWait => "sockets in TIME_WAIT now",
            Self::Fds => "open file descriptors / limit",
            Self::Dns => "DNS lookups failed or timed out / queries",
        }
    }

    /// Cell width in characters; 80 columns fit the always-shown ones and
    /// those of priority 1.
    pub const fn width(self) -> u16 {
        match self {
            Self::Pid | Self::CloseWait | Self::Dns => 7,
            Self::Comm => 11,
            Self::Container => 14,
            Self::Fds => 10,
            _ => 6,
        }
    }

    /// 0 is always shown; higher numbers are dropped first when the terminal
    /// is narrow.
    pub const fn priority(self) -> u8 {
        match self {
            Self::Pid | Self::Comm => 0,
            Self::Connects
            | Self::ConnectRate
            | Self::Failures
            | Self::Retransmits
            | Self::RstReceived
            | Self::HandshakeP99
            | Self::CloseWait
            | Self::Fds => 1,
            Self::Established
            | Self::TimeWait
            | Self::RstSent
            | Self::RetransmitRate
            | Self::HandshakeP50 => 2,
            Self::FailureRate | Self::RstRate | Self::Dns => 3,
            Self::Container => 4,
        }
    }

    /// Text columns sort A→Z first, numbers largest first.
    pub const fn descending_by_default(self) -> bool {
        !matches!(self, Self::Pid | Self::Comm | Self::Container)
    }

    pub fn cell(self, p: &ProcessSnapshot) -> String {
        let c = &p.counts;
        let latency = |v: u64| {
            if p.handshake_us.is_empty() {
                "-".to_owned()
            } else {
                human::micros(v)
            }
        };
        match self {
            Self::Pid => p.id.pid.to_string(),
            Self::Comm => p.comm.clone(),
            Self::Container => workload(p).unwrap_or("-").to_owned(),
            Self::Connects => human::count(c.connects),
            Self::ConnectRate => human::rate(p.rates.connects),
            Self::Failures => human::count(c.connect_failures()),
            Self::FailureRate => human::rate(p.rates.connect_failures),
            Self::Retransmits => human::count(c.retransmits),
            Self::RetransmitRate => human::rate(p.rates.retransmits),
            Self::RstSent => human::count(c.rst_sent),
            Self::RstReceived => human::count(c.rst_received),
            Self::RstRate => human::rate(p.rates.rsts),
            Self::HandshakeP50 => latency(p.handshake_us.p50),
            Self::HandshakeP99 => latency(p.handshake_us.p99),
            Self::Established => human::count(p.gauges.established),
            Self::CloseWait => human::count(p.gauges.close_wait),
            Self::TimeWait => human::count(p.gauges.time_wait),
            Self::Fds => match p.fds {
                None => "-".to_owned(),
                Some(f) => match f.limit {
                    Some(l) => format!("{}/{}", human::count(f.open), human::count(l)),
                    None => human::count(f.open),
                },
            },
            Self::Dns if c.dns_queries == 0 => "-".to_owned(),
            Self::Dns => format!(
                "{}/{}",
                human::count(c.dns_failures + c.dns_timeouts),
                human::count(c.dns_queries)
            ),
        }
    }

    fn key(self, p: &ProcessSnapshot) -> SortKey<'_> {
        let c = &p.counts;
        let n = |v: u64| SortKey::Number(v as f64);
        match self {
            Self::Pid => n(u64::from(p.id.pid)),
            Self::Comm => SortKey::Text(&p.comm),
            Self::Container => SortKey::Text(workload(p).unwrap_or_default()),
            Self::Connects => n(c.connects),
            Self::ConnectRate => SortKey::Number(p.rates.connects),
            Self::Failures => n(c.connect_failures()),
            Self::FailureRate => SortKey::Number(p.rates.connect_failures),
            Self::Retransmits => n(c.retransmits),
            Self::RetransmitRate => SortKey::Number(p.rates.retransmits),
            Self::RstSent => n(c.rst_sent),
            Self::RstReceived => n(c.rst_received),
            Self::RstRate => SortKey::Number(p.rates.rsts),
            Self::HandshakeP50 => n(p.handshake_us.p50),
            Self::HandshakeP99 => n(p.handshake_us.p99),
            Self::Established => n(p.gauges.established),
            Self::CloseWait => n(p.gauges.close_wait),
            Self::TimeWait => n(p.gauges.time_wait),
            // Closest to its limit first; unlimited sorts as 0 %.
            Self::Fds => SortKey::Number(p.fds.map_or(0.0, |f| match f.limit {
                Some(l) if l > 0 => f.open as f64 / l as f64,
                _ => 0.0,
            })),
            Self::Dns => n(c.dns_failures + c.dns_timeouts),
        }
    }

    /// Orders two processes by this column; ties go by pid so rows do not jump.
    pub fn compare(self, a: &ProcessSnapshot, b: &ProcessSnapshot, descending: bool) -> Ordering {
        let by_column = self
            .key(a)
            .partial_cmp(&self.key(b))
            .unwrap_or(Ordering::Equal);
        let by_column = if descending {
            by_column.reverse()
        } else {
            by_column
        };
        by_column.then(a.id.cmp(&b.id))
    }

    /// Numbers are right-aligned.
    pub const fn numeric(self) -> bool {
        !matches!(self, Self::Comm | Self::Container)
    }

    pub fn next(self) -> Self {
        let i = ALL.iter().position(|&c| c == self).unwrap_or(0);
        ALL[(i + 1) % ALL.len()]
    }

    pub fn prev(self) -> Self {
        let i = ALL.iter().position(|&c| c == self).unwrap_or(0);
        ALL[(i + ALL.len() - 1) % ALL.len()]
    }
}

/// Where a process runs, in a few characters: its container's short id, else
/// its pod's uid, else its systemd unit.
fn workload(p: &ProcessSnapshot) -> Option<&str> {
    let cgroup = p.cgroup.as_deref()?;
    cgroup
        .short_container()
        .or(cgroup.pod.as_deref())
        .or(cgroup.unit.as_deref())
}

/// The trend column: a sparkline of the sorted-by number over the history.
pub const TREND_HEADING: &str = "TREND";
pub const TREND_MEANING: &str = "the sorted-by number over the last 10 minutes";
pub const TREND_WIDTH: u16 = 12;
/// Below every other column's: the trend is the first to go.
const TREND_PRIORITY: u8 = 5;

/// What the process table shows at a width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// In table order.
    pub columns: Vec<Column>,
    /// The trend column, after them.
    pub trend: bool,
}

/// The columns that fit in `width`, in table order, dropping the highest
/// priority numbers first (the trend before all); the sort column counts as
/// priority 1 so it stays visible whenever the most important ones do. The
/// DNS column is there only when some process looked a name up (`dns`), or
/// the table is sorted by it.
pub fn fitting(width: u16, sort: Column, dns: bool) -> Fitted {
    let shown: Vec<Column> = ALL
        .into_iter()
        .filter(|&c| c != Column::Dns || dns || sort == Column::Dns)
        .collect();
    let mut spec: Vec<(u16, u8)> = shown
        .iter()
        .map(|&c| {
            let p = if c == sort {
                c.priority().min(1)
            } else {
                c.priority()
            };
            (c.width(), p)
        })
        .collect();
    spec.push((TREND_WIDTH, TREND_PRIORITY));
    let keep = fit(&spec, width);
    Fitted {
        trend: keep.contains(&shown.len()),
        columns: keep
            .into_iter()
            .filter_map(|i| shown.get(i).copied())
            .collect(),
    }
}

/// Indices of the columns that fit in `width` (one space between columns),
/// in their original order. Priority-0 columns are always kept.
pub fn fit(widths_priorities: &[(u16, u8)], width: u16) -> Vec<usize> {
    let mut order: Vec<usize> = (0..widths_priorities.len()).collect();
    order.sort_by_key(|&i| widths_priorities[i].1);
    let mut used = 0u16;
    let mut keep = Vec::new();
    for i in order {
        let (w, priority) = widths_priorities[i];
        let need = w + u16::from(!keep.is_empty());
        if priority == 0 || used + need <= width {
            used += need;
            keep.push(i);
        }
    }
    keep.sort_unstable();
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn drops_least_important_first() {
        let cols = [(10, 0), (5, 2), (5, 1), (5, 3)];
        assert_eq!(fit(&cols, 100), vec![0, 1, 2, 3]);
        assert_eq!(fit(&cols, 22), vec![0, 1, 2]);
        assert_eq!(fit(&cols, 16), vec![0, 2]);
        assert_eq!(fit(&cols, 3), vec![0], "priority 0 stays");
    }

    #[test]
    fn narrow_terminals_keep_the_important_columns() {
        let at80 = fitting(80, Column::Connects, true);
        assert!(!at80.trend, "the trend goes first");
        let at80 = at80.columns;
        assert!(at80.contains(&Column::Pid) && at80.contains(&Column::Comm));
        for c in [
            Column::Connects,
            Column::ConnectRate,
            Column::Failures,
            Column::Retransmits,
            Column::RstReceived,
            Column::HandshakeP99,
            Column::CloseWait,
            Column::Fds,
        ] {
            assert!(at80.contains(&c), "{c:?} missing at 80 columns");
        }
        let total: u16 = at80.iter().map(|c| c.width() + 1).sum();
        assert!(total <= 81, "{total}");
        let wide = fitting(400, Column::Pid, true);
        assert_eq!(wide.columns.len(), ALL.len());
        assert!(wide.trend);
        // The sort column stays visible.
        assert!(
            fitting(80, Column::RstRate, true)
                .columns
                .contains(&Column::RstRate)
        );
        // The trend shows only once every other column is there.
        let all: u16 = ALL.iter().map(|c| c.width() + 1).sum::<u16>() - 1;
        let just = fitting(all + 1 + TREND_WIDTH, Column::Connects, true);
        assert!(just.trend && just.columns.len() == ALL.len());
        let short = fitting(all + TREND_WIDTH, Column::Connects, true);
        assert!(!short.trend && short.columns.len() == ALL.len());
        // No DNS column where no process looked a name up, unless sorted by it.
        let quiet = fitting(400, Column::Pid, false);
        assert!(quiet.trend && !quiet.columns.contains(&Column::Dns));
        assert!(
            fitting(400, Column::Dns, false)
                .columns
                .contains(&Column::Dns)
        );
    }

    #[test]
    fn sorting_is_total_and_stable() {
        let s = fixtures::misbehaving();
        let mut rows: Vec<_> = s.processes.iter().collect();
        rows.sort_by(|a, b| Column::Retransmits.compare(a, b, true));
        let pids: Vec<u32> = rows.iter().map(|p| p.id.pid).collect();
        assert_eq!(pids, vec![1187, 2044, 2050, 2990], "ties by pid");
        rows.sort_by(|a, b| Column::Comm.compare(a, b, false));
        let names: Vec<&str> = rows.iter().map(|p| p.comm.as_str()).collect();
        assert_eq!(names, vec!["billing", "cron-job", "fetcher", "proxy"]);
        rows.sort_by(|a, b| Column::Fds.compare(a, b, true));
        assert_eq!(rows[0].comm, "fetcher", "64/64 is closest to its limit");
    }

    #[test]
    fn sort_columns_cycle() {
        assert_eq!(Column::Pid.prev(), Column::Dns);
        assert_eq!(Column::Dns.next(), Column::Pid);
        let mut c = Column::Pid;
        for _ in 0..ALL.len() {
            c = c.next();
        }
        assert_eq!(c, Column::Pid);
    }
}
