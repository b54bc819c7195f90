//! Aggregator tests with synthetic event sequences and /proc samples.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, SystemTime},
};

use tracer_common::{
    EventKind,
    event::Syscall,
    tcp::{
        AF_INET, AF_INET6, CLOSE, CLOSE_WAIT, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, LISTEN, SYN_RECV,
        SYN_SENT, TIME_WAIT,
    },
};

use super::*;
use crate::{
    proc::{FdUsage, ProcessSample, Sample, sockets::SocketRow},
    snapshot::{ConnectionSnapshot, ProcessSnapshot},
};

const CLIENT: ProcessId = ProcessId {
    pid: 100,
    start_ticks: 5,
};
const SERVER: ProcessId = ProcessId {
    pid: 200,
    start_ticks: 6,
};
const MS: u64 = 1_000_000;
const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn ev(kind: EventKind, sk: u64, at_ms: u64) -> TraceEvent {
    TraceEvent {
        ts_ns: at_ms * MS,
        mono_ns: at_ms * MS,
        kind,
        pid: 100,
        comm: "client".into(),
        unattributed: false,
        no_socket: false,
        sk,
        netns: NETNS,
        family: AF_INET,
        saddr: HOME,
        sport: 40_000 + sk as u16,
        daddr: PEER,
        dport: 8080,
        old_state: 0,
        new_state: 0,
        errno: 0,
        value: 0,
        by_tuple: false,
        reason: None,
    }
}

fn state(sk: u64, at_ms: u64, old: u8, new: u8) -> TraceEvent {
    let mut e = ev(EventKind::State, sk, at_ms);
    e.old_state = old;
    e.new_state = new;
    if old == CLOSE && new == SYN_SENT {
        e.sport = 0;
    }
    e
}

/// A connect from CLIENT that completes after `handshake_ms`.
fn connect_ok(agg: &mut Aggregator, sk: u64, at_ms: u64, handshake_ms: u64) {
    agg.observe(Some(CLIENT), &state(sk, at_ms, CLOSE, SYN_SENT));
    let mut done = state(sk, at_ms + handshake_ms, SYN_SENT, ESTABLISHED);
    done.value = handshake_ms * MS;
    agg.observe(Some(CLIENT), &done);
}

fn connect_failed(agg: &mut Aggregator, sk: u64, at_ms: u64, errno: i32) {
    agg.observe(Some(CLIENT), &state(sk, at_ms, CLOSE, SYN_SENT));
    let mut failed = state(sk, at_ms + 1, SYN_SENT, CLOSE);
    failed.errno = errno;
    agg.observe(Some(CLIENT), &failed);
}

fn snap(agg: &mut Aggregator, at_ms: u64) -> Snapshot {
    agg.snapshot(
        SystemTime::UNIX_EPOCH + Duration::from_millis(at_ms),
        at_ms * MS,
        KernelCounts::default(),
    )
}

fn find(s: &Snapshot, id: ProcessId) -> &ProcessSnapshot {
    s.processes
        .iter()
        .find(|p| p.id == id)
        .expect("process in snapshot")
}

fn row(local_port: u16, remote: IpAddr, remote_port: u16, state: u8, inode: u64) -> SocketRow {
    SocketRow {
        local: HOME,
        local_port,
        remote,
        remote_port,
        state,
        inode,
        netns: NETNS,
        rx_queue: 0,
        tx_queue: 0,
        timer: 0,
        backlog: None,
        health: None,
    }
}

/// The network namespace of the rows [`row`] makes.
const NETNS: u32 = 4_026_531_840;

fn sample(at_ms: u64, processes: Vec<(ProcessId, Vec<SocketRow>)>) -> Sample {
    Sample {
        at_ns: at_ms * MS,
        processes: processes
            .into_iter()
            .map(|(id, sockets)| ProcessSample {
                id,
                comm: format!("p{}", id.pid),
                fds: Some(FdUsage {
                    open: 10,
                    limit: Some(1024),
                    sockets: sockets.len() as u64,
                }),
                cgroup: None,
                sockets,
            })
            .collect(),
        time_wait: Vec::new(),
        listen_overflows: Vec::new(),
    }
}

#[test]
fn connect_outcomes_and_handshake_percentiles() {
    let mut agg = Aggregator::new(0);
    for (i, ms) in [1, 2, 3, 4, 100].into_iter().enumerate() {
        connect_ok(&mut agg, i as u64 + 1, 10, ms);
    }
    connect_failed(&mut agg, 10, 20, libc::ECONNREFUSED);
    connect_failed(&mut agg, 11, 20, libc::ETIMEDOUT);
    connect_failed(&mut agg, 12, 20, libc::EHOSTUNREACH);
    connect_failed(&mut agg, 13, 20, 0);
    let s = snap(&mut agg, 1000);
    let p = find(&s, CLIENT);
    let c = p.counts;
    assert_eq!(
        (
            c.connects,
            c.connect_ok,
            c.connect_refused,
            c.connect_timeout,
            c.connect_failed_other,
            c.connect_abandoned
        ),
        (9, 5, 1, 1, 1, 1)
    );
    assert_eq!(c.connect_failures(), 4);
    assert_eq!(p.handshake_us.count, 5);
    assert!(
        p.handshake_us.p50.abs_diff(3000) <= 30,
        "{:?}",
        p.handshake_us
    );
    assert!(p.handshake_us.max.abs_diff(100_000) <= 1000);
    assert!(p.handshake_us.p99 >= p.handshake_us.p50);
    assert_eq!(p.comm, "client");
    assert!((p.rates.connects - 9.0).abs() < 1e-9, "9 connects in 1 s");
    let remote = &p.remotes[0];
    assert_eq!(remote.remote, Remote::Server(SocketAddr::new(PEER, 8080)));
    assert_eq!(remote.counts.connects, 9);
    assert_eq!(remote.handshake_us.count, 5);
}

#[test]
fn retransmits_and_resets_count_per_process_remote_and_connection() {
    let mut agg = Aggregator::new(0);
    connect_ok(&mut agg, 1, 0, 1);
    for _ in 0..3 {
        agg.observe(Some(CLIENT), &ev(EventKind::Retransmit, 1, 5));
    }
    agg.observe(Some(CLIENT), &state(2, 6, CLOSE, SYN_SENT));
    agg.observe(Some(CLIENT), &ev(EventKind::SynRetransmit, 2, 7));
    let reset_at = agg
        .observe(Some(CLIENT), &ev(EventKind::RstReceived, 2, 8))
        .state_at;
    assert_eq!(reset_at, SYN_SENT, "the RST hit the handshake");
    agg.observe(Some(CLIENT), &ev(EventKind::RstSent, 1, 9));
    agg.apply(&sample(
        10,
        vec![(CLIENT, vec![row(40_001, PEER, 8080, ESTABLISHED, 11)])],
    ));
    let s = snap(&mut agg, 10);
    let p = find(&s, CLIENT);
    assert_eq!((p.counts.retransmits, p.counts.syn_retransmits), (3, 1));
    assert_eq!(
        (
            p.counts.rst_received,
            p.counts.rst_received_handshake,
            p.counts.rst_sent
        ),
        (1, 1, 1)
    );
    assert_eq!(p.remotes[0].counts.retransmits, 3);
    assert_eq!(p.connections.len(), 1);
    assert_eq!(p.connections[0].retransmits, 3);
    assert!(!p.connections[0].preexisting);
    assert_eq!(p.connections[0].age, Duration::from_millis(10));
}

#[test]
fn accepted_sockets_count_under_the_server_and_its_client() {
    let mut agg = Aggregator::new(0);
    let mut listen = state(50, 0, CLOSE, LISTEN);
    listen.sport = 8080;
    agg.observe(Some(SERVER), &listen);
    let mut child = state(51, 1, SYN_RECV, ESTABLISHED);
    child.sport = 8080;
    child.daddr = PEER;
    child.dport = 51_000;
    agg.observe(Some(SERVER), &child);
    let s = snap(&mut agg, 2);
    let p = find(&s, SERVER);
    assert_eq!(p.counts.accepted, 1);
    assert_eq!(p.counts.connects, 0);
    assert_eq!(p.remotes[0].remote, Remote::Client(PEER));
}

#[test]
fn unattributed_events_are_kept_apart() {
    let mut agg = Aggregator::new(0);
    let mut e = ev(EventKind::RstSent, 9, 1);
    e.pid = 0;
    e.unattributed = true;
    agg.observe(None, &e);
    let s = snap(&mut agg, 2);
    assert!(s.processes.is_empty());
    assert_eq!(s.unattributed.rst_sent, 1);
}

#[test]
fn syscall_errors_by_errno_and_emfile() {
    let mut agg = Aggregator::new(0);
    for errno in [libc::EMFILE, libc::EMFILE, libc::ENFILE, libc::EADDRINUSE] {
        let mut e = ev(EventKind::SyscallError, 0, 1);
        e.family = 0;
        e.errno = errno;
        e.value = if errno == libc::EADDRINUSE {
            Syscall::Bind as u64
        } else {
            Syscall::Socket as u64
        };
        agg.observe(Some(CLIENT), &e);
    }
    let s = snap(&mut agg, 2);
    let p = find(&s, CLIENT);
    assert_eq!((p.counts.syscall_errors, p.counts.emfile_errors), (4, 3));
    assert_eq!(p.syscall_errors[0].syscall, "socket");
    assert_eq!(
        (p.syscall_errors[0].errno, p.syscall_errors[0].count),
        (libc::EMFILE, 2)
    );
    assert!(p.remotes.is_empty(), "syscall errors have no remote");
}

#[test]
fn preexisting_sockets_are_counted_from_the_first_sample() {
    let mut agg = Aggregator::new(0);
    let mut rows = vec![row(8080, HOME, 0, LISTEN, 1)];
    for i in 0..5 {
        rows.push(row(8080, PEER, 50_000 + i, CLOSE_WAIT, 10 + u64::from(i)));
    }
    rows.push(row(8080, PEER, 50_100, ESTABLISHED, 30));
    rows.push(row(41_000, PEER, 9000, SYN_SENT, 31));
    agg.apply(&sample(1_000, vec![(SERVER, rows.clone())]));
    let first = snap(&mut agg, 1_000);
    let g = find(&first, SERVER).gauges;
    assert_eq!(
        (g.close_wait, g.established, g.syn_sent, g.listen),
        (5, 1, 1, 1)
    );
    assert_eq!(g.oldest_close_wait, Some(Duration::ZERO));
    // Later the CLOSE_WAIT sockets have aged since first seen.
    agg.apply(&sample(6_000, vec![(SERVER, rows)]));
    let later = snap(&mut agg, 6_000);
    let p = find(&later, SERVER);
    assert_eq!(p.gauges.oldest_close_wait, Some(Duration::from_secs(5)));
    assert!(p.connections.iter().all(|c| c.preexisting));
    assert_eq!(p.connections_total, 7);
    let clients = p
        .remotes
        .iter()
        .find(|r| r.remote == Remote::Client(PEER))
        .expect("clients of the listener counted together");
    assert_eq!((clients.close_wait, clients.established), (5, 1));
}

#[test]
fn close_wait_age_comes_from_the_event_when_seen() {
    let mut agg = Aggregator::new(0);
    connect_ok(&mut agg, 1, 0, 1);
    agg.observe(Some(CLIENT), &state(1, 2_000, ESTABLISHED, CLOSE_WAIT));
    agg.apply(&sample(
        9_000,
        vec![(CLIENT, vec![row(40_001, PEER, 8080, CLOSE_WAIT, 5)])],
    ));
    let s = snap(&mut agg, 9_000);
    let p = find(&s, CLIENT);
    assert_eq!(p.gauges.oldest_close_wait, Some(Duration::from_secs(7)));
    assert_eq!(p.connections[0].age, Duration::from_secs(9));
}

#[test]
fn time_wait_goes_to_the_process_that_closed_first() {
    let mut agg = Aggregator::new(0);
    connect_ok(&mut agg, 1, 0, 1);
    agg.observe(Some(CLIENT), &state(1, 10, ESTABLISHED, FIN_WAIT1));
    agg.observe(Some(CLIENT), &state(1, 11, FIN_WAIT1, FIN_WAIT2));
    agg.observe(Some(CLIENT), &state(1, 12, FIN_WAIT2, CLOSE));
    // A TIME_WAIT left by a server's listener port is the server's.
    let mut s = sample(
        20,
        vec![
            (CLIENT, vec![]),
            (SERVER, vec![row(9090, HOME, 0, LISTEN, 7)]),
        ],
    );
    s.time_wait = vec![
        row(40_001, PEER, 8080, TIME_WAIT, 0),
        row(9090, PEER, 33_000, TIME_WAIT, 0),
        row(9090, PEER, 33_001, TIME_WAIT, 0),
        row(1234, PEER, 4321, TIME_WAIT, 0),
    ];
    agg.apply(&s);
    let snapshot = snap(&mut agg, 20);
    let client = find(&snapshot, CLIENT);
    assert_eq!(client.gauges.time_wait, 1);
    assert_eq!(client.counts.closed, 1);
    assert_eq!(client.lifetime_ms.count, 1);
    assert_eq!(client.remotes[0].time_wait, 1);
    assert_eq!(find(&snapshot, SERVER).gauges.time_wait, 2);
}

/// A connect that fails says how long it waited and how many SYNs it sent.
#[test]
fn a_failed_connect_says_how_long_it_waited() {
    let mut agg = Aggregator::new(0);
    agg.observe(Some(CLIENT), &state(5, 100, CLOSE, SYN_SENT));
    agg.observe(Some(CLIENT), &ev(EventKind::SynRetransmit, 5, 1100));
    let gave_up = agg.observe(Some(CLIENT), &state(5, 1_900, SYN_SENT, CLOSE));
    assert_eq!(
        gave_up.waited,
        Some(ConnectEnd {
            after_us: 1_800_000,
            syns: 2,
            race_lost: false,
        })
    );
    let ok = agg.observe(Some(CLIENT), &state(6, 2_000, CLOSE, SYN_SENT));
    assert_eq!(ok.waited, None);
    let s = snap(&mut agg, 3_000);
    let client = find(&s, CLIENT);
    let c = client.counts;
    assert_eq!((c.connect_abandoned, c.connect_failed_other), (1, 0));
    // The server remembers how long the application waited: its deadline.
    assert_eq!(
        client.remotes[0].abandoned_after,
        Some(Duration::from_millis(1_800))
    );
}

/// Happy Eyeballs (RFC 8305): a dial to a port over IPv6 and IPv4 at once;
/// the IPv4 one connects and the IPv6 one is abandoned at once. The loser is
/// no failure. An abandoned connect with no sibling that won, or one whose
/// sibling was on the same family, still is.
#[test]
fn the_loser_of_a_dual_stack_race_is_no_failure() {
    let mut agg = Aggregator::new(0);
    let v6 = |mut e: TraceEvent| {
        e.family = AF_INET6;
        e.saddr = "::1".parse().unwrap();
        e.daddr = "::2".parse().unwrap();
        e
    };
    agg.observe(Some(CLIENT), &v6(state(1, 0, CLOSE, SYN_SENT)));
    connect_ok(&mut agg, 2, 250, 1);
    let lost = agg.observe(Some(CLIENT), &v6(state(1, 252, SYN_SENT, CLOSE)));
    assert!(lost.waited.is_some_and(|w| w.race_lost), "{lost:?}");
    // The same, later than the race window: a failure.
    agg.observe(Some(CLIENT), &v6(state(3, 3_000, CLOSE, SYN_SENT)));
    let given_up = agg.observe(Some(CLIENT), &v6(state(3, 3_300, SYN_SENT, CLOSE)));
    assert!(given_up.waited.is_some_and(|w| !w.race_lost));
    // Same family as the winner: not a race.
    connect_ok(&mut agg, 4, 4_000, 1);
    agg.observe(Some(CLIENT), &state(5, 4_000, CLOSE, SYN_SENT));
    agg.observe(Some(CLIENT), &state(5, 4_002, SYN_SENT, CLOSE));
    let c = find(&snap(&mut agg, 5_000), CLIENT).counts;
    assert_eq!(
        (
            c.connects,
            c.connect_ok,
            c.connect_abandoned,
            c.connect_failures()
        ),
        (5, 2, 2, 2)
    );
}

/// A server's own listener (0.0.0.0:0 as a peer) is not one of its remotes.
#[test]
fn a_listener_is_not_a_remote() {
    let mut agg = Aggregator::new(0);
    let mut listen = state(9, 1, CLOSE, LISTEN);
    listen.daddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    listen.dport = 0;
    agg.observe(Some(SERVER), &listen);
    let snapshot = snap(&mut agg, 2);
    let server = find(&snapshot, SERVER);
    assert!(server.remotes.is_empty(), "{:?}", server.remotes);
}

/// Two servers on port 8080 in two network namespaces (two pods): each
/// TIME_WAIT left on a listener's port goes to the server of its namespace.
#[test]
fn time_wait_on_a_listener_port_goes_to_the_server_of_its_namespace() {
    let mut agg = Aggregator::new(0);
    let other_netns = NETNS + 1;
    let in_other = |mut r: SocketRow| {
        r.netns = other_netns;
        r
    };
    let mut s = sample(
        20,
        vec![
            (SERVER, vec![row(8080, HOME, 0, LISTEN, 7)]),
            (CLIENT, vec![in_other(row(8080, HOME, 0, LISTEN, 8))]),
        ],
    );
    s.time_wait = vec![
        row(8080, PEER, 33_000, TIME_WAIT, 0),
        in_other(row(8080, PEER, 33_000, TIME_WAIT, 0)),
        in_other(row(8080, PEER, 33_001, TIME_WAIT, 0)),
        in_other(row(8080, PEER, 33_002, TIME_WAIT, 0)),
    ];
    agg.apply(&s);
    let snapshot = snap(&mut agg, 20);
    assert_eq!(find(&snapshot, SERVER).gauges.time_wait, 1);
    assert_eq!(find(&snapshot, CLIENT).gauges.time_wait, 3);
}

/// Two clients in two network namespaces (two pods' loopback connections)
/// with the same addresses and ports, both closed into TIME_WAIT: each
/// TIME_WAIT goes to the client of its namespace.
#[test]
fn time_wait_with_the_same_addresses_in_two_namespaces_goes_to_each_client() {
    let mut agg = Aggregator::new(0);
    let other = ProcessId {
        pid: 300,
        start_ticks: 1,
    };
    for (owner, sk, netns) in [(CLIENT, 1, NETNS), (other, 2, NETNS + 1)] {
        for (old, new) in [
            (CLOSE, SYN_SENT),
            (SYN_SENT, ESTABLISHED),
            (ESTABLISHED, FIN_WAIT1),
            (FIN_WAIT1, FIN_WAIT2),
            (FIN_WAIT2, CLOSE),
        ] {
            let mut e = state(sk, 10, old, new);
            e.netns = netns;
            e.sport = 40_000;
            agg.observe(Some(owner), &e);
        }
    }
    let mut s = sample(20, vec![(CLIENT, vec![]), (other, vec![])]);
    let mut theirs = row(40_000, PEER, 8080, TIME_WAIT, 0);
    theirs.netns = NETNS + 1;
    s.time_wait = vec![row(40_000, PEER, 8080, TIME_WAIT, 0), theirs];
    agg.apply(&s);
    let snapshot = snap(&mut agg, 20);
    assert_eq!(find(&snapshot, CLIENT).gauges.time_wait, 1);
    assert_eq!(find(&snapshot, other).gauges.time_wait, 1);
}

/// A firewall drops a connect's SYN before the connect's next state change
/// tells its local port: the drop, found by the packet's addresses, is still
/// the connecting process's, and a drop in another namespace is not.
#[test]
fn a_dropped_syn_of_a_connect_goes_to_the_connecting_process() {
    let mut agg = Aggregator::new(0);
    agg.observe(Some(CLIENT), &state(1, 0, CLOSE, SYN_SENT));
    let syn = |netns: u32| {
        // From the port connection 1 took.
        let mut e = ev(EventKind::Drop, 0, 1);
        e.sport = 40_001;
        e.netns = netns;
        e.by_tuple = true;
        e.unattributed = true;
        e.pid = 0;
        e
    };
    let ours = agg.observe(None, &syn(NETNS));
    let theirs = agg.observe(None, &syn(NETNS + 1));
    assert_eq!(ours.owner, Some(CLIENT));
    assert_eq!(theirs.owner, None);
    let snapshot = snap(&mut agg, 2);
    assert_eq!(find(&snapshot, CLIENT).counts.drops, 1);

    // Another process connects from the same address to the same server:
    // a first SYN's drop could be either's, until a retransmitted SYN tells
    // which port is whose.
    let mut other = state(2, 3, CLOSE, SYN_SENT);
    other.pid = SERVER.pid;
    agg.observe(Some(SERVER), &other);
    assert_eq!(agg.observe(None, &syn(NETNS)).owner, None);
    let mut again = ev(EventKind::SynRetransmit, 1, 4);
    again.old_state = SYN_SENT;
    again.new_state = SYN_SENT;
    agg.observe(Some(CLIENT), &again);
    assert_eq!(agg.observe(None, &syn(NETNS)).owner, Some(CLIENT));
}

/// A client that closed and exited leaves a TIME_WAIT socket behind: it is
/// counted once in every sample that lists it, not once more each time.
#[test]
fn an_exited_clients_time_wait_is_counted_once_per_sample() {
    let mut agg = Aggregator::new(0);
    connect_ok(&mut agg, 1, 0, 1);
    agg.observe(Some(CLIENT), &state(1, 10, ESTABLISHED, FIN_WAIT1));
    agg.observe(Some(CLIENT), &state(1, 11, FIN_WAIT1, CLOSE));
    agg.apply(&sample(15, vec![(CLIENT, vec![])]));
    snap(&mut agg, 15);
    for at in [20, 30, 40] {
        let mut s = sample(at, vec![]);
        s.time_wait = vec![row(40_001, PEER, 8080, TIME_WAIT, 0)];
        agg.apply(&s);
        let snapshot = snap(&mut agg, at);
        let client = find(&snapshot, CLIENT);
        assert!(client.exited);
        assert_eq!(client.gauges.time_wait, 1, "sample at {at} ms");
    }
}

/// Where the kernel programs cannot read namespaces (events say 0), /proc's
/// sockets are matched with events regardless of theirs.
#[test]
fn without_namespaces_in_events_time_wait_still_finds_its_client() {
    let mut agg = Aggregator::new(0);
    agg.set_netns_known(false);
    for (old, new) in [
        (CLOSE, SYN_SENT),
        (SYN_SENT, ESTABLISHED),
        (ESTABLISHED, FIN_WAIT1),
        (FIN_WAIT1, CLOSE),
    ] {
        let mut e = state(1, 10, old, new);
        e.netns = 0;
        agg.observe(Some(CLIENT), &e);
    }
    let mut s = sample(20, vec![(CLIENT, vec![])]);
    s.time_wait = vec![row(40_001, PEER, 8080, TIME_WAIT, 0)];
    agg.apply(&s);
    assert_eq!(find(&snap(&mut agg, 20), CLIENT).gauges.time_wait, 1);
}

#[test]
fn an_exited_process_keeps_its_numbers_and_a_reused_pid_is_new() {
    let mut agg = Aggregator::new(0);
    connect_failed(&mut agg, 1, 0, libc::ECONNREFUSED);
    agg.apply(&sample(1_000, vec![(CLIENT, vec![])]));
    assert!(!find(&snap(&mut agg, 1_000), CLIENT).exited);
    let reborn = ProcessId {
        pid: CLIENT.pid,
        start_ticks: 99,
    };
    agg.apply(&sample(2_000, vec![(reborn, vec![])]));
    let s = snap(&mut agg, 2_000);
    let old = find(&s, CLIENT);
    assert!(old.exited);
    assert_eq!(old.counts.connect_refused, 1);
    assert!(old.fds.is_none());
    let new = find(&s, reborn);
    assert!(!new.exited);
    assert_eq!(new.counts.connects, 0);
    assert_eq!(agg.alive(), vec![reborn]);
}

#[test]
fn closed_connections_are_evicted() {
    let mut agg = Aggregator::new(0);
    for sk in 1..=1000 {
        connect_ok(&mut agg, sk, 0, 1);
        agg.observe(Some(CLIENT), &state(sk, 5, ESTABLISHED, CLOSE));
    }
    assert_eq!(agg.live.len(), 0);
    let s = snap(&mut agg, 10);
    let p = find(&s, CLIENT);
    assert_eq!(p.counts.closed, 1000);
    assert_eq!(p.lifetime_ms.count, 1000);
}

#[test]
fn recent_events_are_bounded_and_described() {
    let mut agg = Aggregator::new(0);
    for sk in 0..100 {
        connect_failed(&mut agg, sk, sk, libc::ECONNREFUSED);
    }
    let s = snap(&mut agg, 1_000);
    let recent = &find(&s, CLIENT).recent;
    assert_eq!(recent.len(), process::RECENT_MAX);
    let last = recent.last().expect("recent");
    assert_eq!(last.event, "state");
    assert_eq!(last.detail, "SYN_SENT→CLOSE ECONNREFUSED");
    assert_eq!(last.remote, Some(SocketAddr::new(PEER, 8080)));
}

#[test]
fn events_on_sockets_that_predate_tracing_go_to_their_holder() {
    let mut agg = Aggregator::new(0);
    agg.apply(&sample(
        1,
        vec![(SERVER, vec![row(40_001, PEER, 8080, ESTABLISHED, 11)])],
    ));
    let mut e = ev(EventKind::Retransmit, 77, 2);
    e.sport = 40_001;
    e.pid = 0;
    e.unattributed = true;
    assert_eq!(agg.observe(None, &e).owner, Some(SERVER));
    let mut other = e;
    other.sport = 1;
    assert_eq!(agg.observe(None, &other).owner, None);
    let s = snap(&mut agg, 3);
    assert_eq!(find(&s, SERVER).counts.retransmits, 1);
    assert_eq!(s.unattributed.retransmits, 1);
}

#[test]
fn only_the_connections_most_worth_listing_are_kept() {
    use super::gauges::{keep_listed, listing_order};
    let conn = |i: u64| ConnectionSnapshot {
        local: "127.0.0.1:1".parse().unwrap(),
        remote: "127.0.0.1:2".parse().unwrap(),
        state: ESTABLISHED,
        age: Duration::from_millis(i * 7919 % 1000),
        preexisting: false,
        retransmits: if i.is_multiple_of(13) { i } else { 0 },
        recv_q: 0,
        send_q: 0,
        health: None,
    };
    let mut all: Vec<ConnectionSnapshot> = (0..1000).map(conn).collect();
    let mut kept = Vec::new();
    for c in all.iter().cloned() {
        if kept.len() == 2 * 10 {
            keep_listed(&mut kept, 10);
        }
        kept.push(c);
    }
    keep_listed(&mut kept, 10);
    kept.sort_by(listing_order);
    all.sort_by(listing_order);
    all.truncate(10);
    assert_eq!(kept, all);
    assert_eq!(kept[0].retransmits, 988);
}

/// A listener's queue comes from the socket table, its backlog from the
/// event of it starting to listen; overflows counted by its namespace after
/// the first sample go to the fullest listener there.
#[test]
fn listeners_have_their_queue_backlog_and_overflows() {
    let mut agg = Aggregator::new(0);
    let mut listen = state(50, 0, CLOSE, LISTEN);
    listen.sport = 8080;
    listen.value = 1;
    agg.observe(Some(SERVER), &listen);
    let mut full = row(8080, HOME, 0, LISTEN, 7);
    full.rx_queue = 2;
    let mut idle = row(9090, HOME, 0, LISTEN, 8);
    idle.rx_queue = 1;
    let with = |full: &SocketRow, overflows: u64, at_ms: u64| {
        let mut s = sample(at_ms, vec![(SERVER, vec![idle.clone(), full.clone()])]);
        s.listen_overflows = vec![(NETNS, overflows)];
        s
    };
    agg.apply(&with(&full, 40, 1));
    let s = snap(&mut agg, 2);
    let p = find(&s, SERVER);
    assert_eq!(p.counts.listen_overflows, 0, "before tracing: not counted");
    assert_eq!(p.listeners.len(), 2);
    let first = p.listeners[0];
    assert_eq!(
        (first.local.port(), first.queue, first.backlog),
        (8080, 2, Some(1))
    );
    assert!(first.full());
    assert_eq!(p.listeners[1].backlog, None, "listening before tracing");
    agg.apply(&with(&full, 52, 3));
    let s = snap(&mut agg, 4);
    let p = find(&s, SERVER);
    assert_eq!(p.counts.listen_overflows, 12);
    assert_eq!(p.listeners[0].overflows, 12);
    assert_eq!(p.listeners[1].overflows, 0);
    // Kept while the queue drains.
    full.rx_queue = 0;
    agg.apply(&with(&full, 52, 5));
    let s = snap(&mut agg, 6);
    let p = find(&s, SERVER);
    assert_eq!(p.listeners.iter().map(|l| l.overflows).sum::<u64>(), 12);
}

/// Events the ring buffer had no room for count like the others, under
/// their process (or unattributed), by kind and outcome.
#[test]
fn lost_events_still_count() {
    use tracer_common::maps::LostKey;
    let mut agg = Aggregator::new(0);
    let key = |kind: EventKind, old, new, errno| LostKey {
        pid: CLIENT.pid,
        errno,
        kind: kind as u8,
        old_state: old,
        new_state: new,
        extra: 0,
    };
    for (k, n) in [
        (key(EventKind::State, CLOSE, SYN_SENT, 0), 5),
        (key(EventKind::State, SYN_SENT, ESTABLISHED, 0), 4),
        (
            key(EventKind::State, SYN_SENT, CLOSE, libc::ECONNREFUSED),
            1,
        ),
        (key(EventKind::Retransmit, ESTABLISHED, ESTABLISHED, 0), 7),
    ] {
        let ev = TraceEvent::lost(&k).expect("a known kind");
        agg.observe_lost(Some(CLIENT), &ev, n);
    }
    let ev = TraceEvent::lost(&LostKey {
        pid: 0,
        ..key(EventKind::RstSent, ESTABLISHED, ESTABLISHED, 0)
    })
    .unwrap();
    agg.observe_lost(None, &ev, 2);
    let s = snap(&mut agg, 2);
    let c = find(&s, CLIENT).counts;
    assert_eq!(
        (c.connects, c.connect_ok, c.connect_refused, c.retransmits),
        (5, 4, 1, 7)
    );
    assert_eq!(s.unattributed.rst_sent, 2);
    assert!(
        TraceEvent::lost(&LostKey {
            kind: 200,
            ..key(EventKind::State, 0, 0, 0)
        })
        .is_none()
    );
}

/// Resets for connects to closed ports are told apart by port, bounded.
#[test]
fn closed_ports_are_listed_by_port() {
    let mut agg = Aggregator::new(0);
    let reset = |port: u16| {
        let mut e = ev(EventKind::RstSent, 0, 1);
        e.pid = 0;
        e.no_socket = true;
        e.sport = port;
        e
    };
    for _ in 0..3 {
        agg.observe(None, &reset(18099));
    }
    agg.observe(None, &reset(9));
    let s = snap(&mut agg, 2);
    assert_eq!(s.closed_ports, vec![(18099, 3), (9, 1)]);
    assert_eq!(s.unattributed.rst_sent, 4);
    for port in 0..super::CLOSED_PORTS_MAX as u16 + 10 {
        agg.observe(None, &reset(20_000 + port));
    }
    let s = snap(&mut agg, 3);
    assert_eq!(s.closed_ports.len(), super::CLOSED_PORTS_LISTED);
    assert_eq!(s.closed_ports[0], (18099, 3));
}

#[test]
fn each_server_has_its_connections_lifetimes_and_connect_span() {
    let mut agg = Aggregator::new(0);
    // 150 connections to PEER:8080, one every 10 ms, each closed 3 ms after
    // it connected (1 ms handshake): a connection per request.
    for sk in 1..=150 {
        let at = sk * 10;
        connect_ok(&mut agg, sk, at, 1);
        agg.observe(Some(CLIENT), &state(sk, at + 3, ESTABLISHED, FIN_WAIT1));
        agg.observe(Some(CLIENT), &state(sk, at + 3, FIN_WAIT1, CLOSE));
    }
    // One long-lived connection elsewhere.
    let mut other = state(1_000, 0, CLOSE, SYN_SENT);
    other.dport = 5432;
    agg.observe(Some(CLIENT), &other);
    let s = snap(&mut agg, 2_000);
    let p = find(&s, CLIENT);
    let server = Remote::Server(SocketAddr::new(PEER, 8080));
    let r = p.remotes.iter().find(|r| r.remote == server).unwrap();
    assert_eq!(r.counts.connects, 150);
    assert_eq!(r.churn.lifetime_ms.count, 150);
    assert_eq!(r.churn.lifetime_ms.p50, 3);
    assert_eq!(r.churn.connecting_for, Duration::from_millis(1_490));
    assert!((r.churn.connects_per_sec(150) - 150.0 / 1.49).abs() < 1e-9);
    let pg = p
        .remotes
        .iter()
        .find(|r| r.remote == Remote::Server(SocketAddr::new(PEER, 5432)))
        .unwrap();
    assert_eq!(
        (pg.churn.lifetime_ms.count, pg.churn.connecting_for),
        (0, Duration::ZERO),
        "one connect, still open"
    );
    assert_eq!(
        pg.churn.connects_per_sec(1),
        1.0,
        "a single connect is no rate"
    );
}

#[test]
fn each_remote_keeps_a_bounded_spaced_history_of_its_open_connections() {
    let spacing_ms = process::HISTORY_SPACING_NS / MS;
    let mut agg = Aggregator::new(0);
    let mut rows = Vec::new();
    // One more connection to PEER:8080 at each of 12 samples, a second apart:
    // only every fifth is kept (5 s spacing).
    for i in 0..60u64 {
        let inode = 1_000 + i;
        rows.push(row(30_000 + i as u16, PEER, 8080, ESTABLISHED, inode));
        agg.apply(&sample(i * 1_000, vec![(CLIENT, rows.clone())]));
    }
    let s = snap(&mut agg, 60_000);
    let r = &find(&s, CLIENT).remotes[0];
    assert_eq!(r.remote, Remote::Server(SocketAddr::new(PEER, 8080)));
    let kept: Vec<(u64, u64)> = r
        .churn
        .open_history
        .iter()
        .map(|&(at, n)| (at.as_millis() as u64, n))
        .collect();
    assert_eq!(kept.len(), HISTORY_SAMPLES, "{kept:?}");
    let expected: Vec<(u64, u64)> = (4..12).map(|k| (k * spacing_ms, k * 5 + 1)).collect();
    assert_eq!(kept, expected);
    // All closed: the history goes on with zeros, then is dropped once all
    // of it is zeros.
    for k in 0..=HISTORY_SAMPLES as u64 {
        agg.apply(&sample(60_000 + k * spacing_ms, vec![(CLIENT, vec![])]));
    }
    let s = snap(&mut agg, 200_000);
    let r = &find(&s, CLIENT).remotes[0];
    assert!(r.churn.open_history.iter().all(|&(_, n)| n == 0));
    agg.apply(&sample(300_000, vec![(CLIENT, vec![])]));
    let s = snap(&mut agg, 300_000);
    assert!(find(&s, CLIENT).remotes[0].churn.open_history.is_empty());
}

#[test]
fn bytes_and_rtts_come_from_tcp_info_and_outlive_their_connections() {
    use crate::proc::sock_diag::Health;
    let with = |mut r: SocketRow, srtt_us: u32, sent: u64, received: u64| {
        r.health = Some(Health {
            srtt_us,
            bytes_sent: sent,
            bytes_received: received,
        });
        r
    };
    let mut agg = Aggregator::new(0);
    // Without tcp_info (socket tables from /proc): unknown, not zero.
    agg.apply(&sample(
        500,
        vec![(SERVER, vec![row(8080, PEER, 50_000, ESTABLISHED, 1)])],
    ));
    let g = find(&snap(&mut agg, 500), SERVER).gauges;
    assert_eq!((g.bytes_sent, g.srtt_p50_us), (None, None));

    let rows = vec![
        with(row(8080, PEER, 50_000, ESTABLISHED, 1), 100, 1_000, 10),
        with(row(8080, PEER, 50_001, ESTABLISHED, 2), 300, 2_000, 20),
        with(row(8080, PEER, 50_002, CLOSE_WAIT, 3), 200, 4_000, 40),
    ];
    agg.apply(&sample(1_000, vec![(SERVER, rows.clone())]));
    let first = snap(&mut agg, 1_000);
    let p = find(&first, SERVER);
    let g = p.gauges;
    assert_eq!((g.srtt_p50_us, g.srtt_p99_us), (Some(200), Some(300)));
    assert_eq!((g.bytes_sent, g.bytes_received), (Some(7_000), Some(70)));
    assert!(p.connections.iter().all(|c| c.health.is_some()));

    // Two close; one sends more. The closed keep what they had moved.
    let mut rows = vec![rows[0].clone()];
    rows[0].health.as_mut().unwrap().bytes_sent = 1_500;
    agg.apply(&sample(2_000, vec![(SERVER, rows)]));
    let g = find(&snap(&mut agg, 2_000), SERVER).gauges;
    assert_eq!((g.bytes_sent, g.bytes_received), (Some(7_500), Some(70)));
    assert_eq!((g.srtt_p50_us, g.srtt_p99_us), (Some(100), Some(100)));

    // The process exits: its bytes stay with its row.
    agg.apply(&sample(3_000, vec![]));
    let g = find(&snap(&mut agg, 3_000), SERVER).gauges;
    assert_eq!((g.bytes_sent, g.bytes_received), (Some(7_500), Some(70)));
    assert_eq!(g.srtt_p50_us, None);
}
