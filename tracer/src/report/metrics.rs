//! The CSV columns the report reads: one entry per column in [`METRICS`],
//! with what kind of number it holds. A test checks every name against the
//! header the CSV sink writes, so a renamed column fails here first.

/// How a column's numbers behave over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Cumulative since tracer started: the report charts its increase.
    Counter,
    /// A value at snapshot time: the report charts its peak per time step.
    Gauge,
}

/// A column the report reads; its position in [`METRICS`] is its index in
/// [`Values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Connects,
    ConnectOk,
    ConnectRefused,
    ConnectTimeout,
    ConnectFailedOther,
    ConnectAbandoned,
    Accepted,
    Retransmits,
    SynRetransmits,
    SynackRetransmits,
    RstSent,
    RstReceived,
    RstReceivedHandshake,
    Closed,
    SyscallErrors,
    EmfileErrors,
    SocketErrors,
    ListenOverflows,
    AcceptQueue,
    AcceptBacklog,
    Drops,
    Established,
    SynSent,
    SynRecv,
    CloseWait,
    CloseWaitOldestS,
    TimeWait,
    Listen,
    FdsOpen,
    FdLimit,
    SocketFds,
    HandshakeP50Us,
    HandshakeP99Us,
    HandshakeMaxUs,
    Exited,
}

/// Every column the report reads, in the order of [`Metric`].
pub const METRICS: [(Metric, &str, Kind); COUNT] = [
    (Metric::Connects, "connects", Kind::Counter),
    (Metric::ConnectOk, "connect_ok", Kind::Counter),
    (Metric::ConnectRefused, "connect_refused", Kind::Counter),
    (Metric::ConnectTimeout, "connect_timeout", Kind::Counter),
    (
        Metric::ConnectFailedOther,
        "connect_failed_other",
        Kind::Counter,
    ),
    (Metric::ConnectAbandoned, "connect_abandoned", Kind::Counter),
    (Metric::Accepted, "accepted", Kind::Counter),
    (Metric::Retransmits, "retransmits", Kind::Counter),
    (Metric::SynRetransmits, "syn_retransmits", Kind::Counter),
    (
        Metric::SynackRetransmits,
        "synack_retransmits",
        Kind::Counter,
    ),
    (Metric::RstSent, "rst_sent", Kind::Counter),
    (Metric::RstReceived, "rst_received", Kind::Counter),
    (
        Metric::RstReceivedHandshake,
        "rst_received_handshake",
        Kind::Counter,
    ),
    (Metric::Closed, "closed", Kind::Counter),
    (Metric::SyscallErrors, "syscall_errors", Kind::Counter),
    (Metric::EmfileErrors, "emfile_errors", Kind::Counter),
    (Metric::SocketErrors, "socket_errors", Kind::Counter),
    (Metric::ListenOverflows, "listen_overflows", Kind::Counter),
    (Metric::AcceptQueue, "accept_queue", Kind::Gauge),
    (Metric::AcceptBacklog, "accept_backlog", Kind::Gauge),
    (Metric::Drops, "drops", Kind::Counter),
    (Metric::Established, "established", Kind::Gauge),
    (Metric::SynSent, "syn_sent", Kind::Gauge),
    (Metric::SynRecv, "syn_recv", Kind::Gauge),
    (Metric::CloseWait, "close_wait", Kind::Gauge),
    (Metric::CloseWaitOldestS, "close_wait_oldest_s", Kind::Gauge),
    (Metric::TimeWait, "time_wait", Kind::Gauge),
    (Metric::Listen, "listen", Kind::Gauge),
    (Metric::FdsOpen, "fds_open", Kind::Gauge),
    (Metric::FdLimit, "fd_limit", Kind::Gauge),
    (Metric::SocketFds, "socket_fds", Kind::Gauge),
    (Metric::HandshakeP50Us, "handshake_p50_us", Kind::Gauge),
    (Metric::HandshakeP99Us, "handshake_p99_us", Kind::Gauge),
    (Metric::HandshakeMaxUs, "handshake_max_us", Kind::Gauge),
    (Metric::Exited, "exited", Kind::Gauge),
];

/// How many columns the report reads.
pub const COUNT: usize = 35;

/// The columns that identify a row; a file without them is not a tracer CSV.
pub const TIMESTAMP: &str = "timestamp";
pub const PID: &str = "pid";
pub const COMM: &str = "comm";
/// Added later: tells a reused pid from the process that had it before.
pub const START_TIME: &str = "start_time";

/// One row's numbers, indexed by [`Metric`]; `None` for an empty cell or a
/// column the file does not have.
pub type Values = [Option<u64>; COUNT];

impl Metric {
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The value of `metric` in `values`.
pub const fn get(values: &Values, metric: Metric) -> Option<u64> {
    values[metric.index()]
}

/// The sum of the metrics that are present; `None` when none is.
pub fn sum(values: &Values, metrics: &[Metric]) -> Option<u64> {
    metrics
        .iter()
        .filter_map(|&m| get(values, m))
        .reduce(u64::saturating_add)
}

/// Connects that failed, however they ended.
pub const FAILED_CONNECTS: &[Metric] = &[
    Metric::ConnectRefused,
    Metric::ConnectTimeout,
    Metric::ConnectFailedOther,
    Metric::ConnectAbandoned,
];
/// Retransmits of every kind.
pub const RETRANSMITS: &[Metric] = &[
    Metric::Retransmits,
    Metric::SynRetransmits,
    Metric::SynackRetransmits,
];
/// Resets both ways.
pub const RSTS: &[Metric] = &[Metric::RstSent, Metric::RstReceived];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_the_order_of_the_enum() {
        for (i, (metric, _, _)) in METRICS.iter().enumerate() {
            assert_eq!(metric.index(), i, "{metric:?}");
        }
    }

    #[test]
    fn every_column_read_is_one_the_csv_sink_writes() {
        let header: Vec<&str> = crate::sink::csv::header().split(',').collect();
        for name in METRICS
            .iter()
            .map(|(_, name, _)| *name)
            .chain([TIMESTAMP, PID, COMM, START_TIME])
        {
            assert!(header.contains(&name), "`{name}` is not in {header:?}");
        }
    }
}
