//! `--events`: one JSON object per line for every event, plus periodic `stats`
//! objects. Field names are a contract (see README, "Events").

use std::{io::Write, net::IpAddr, os::unix::fs::OpenOptionsExt as _};

use serde_json::{Value, json};
use tracer_common::{EventKind, tcp::state_name};

use super::pipe::Pipe;
use crate::{
    aggregate::{ConnectEnd, Phase},
    dns::{Lookup, Outcome},
    errno,
    event::TraceEvent,
    findings::{Finding, Transition},
    proc::Cgroup,
    snapshot::{KernelCounts, Remote},
};

/// One JSON object being written into a line buffer: the event path writes
/// fields straight into bytes (no intermediate value, no allocation once the
/// buffer has grown), so `--events` keeps up with the ring buffer.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn num(&mut self, key: &str, n: impl Into<u64>) {
        self.key(key);
        decimal(n.into(), self.out);
    }

    /// An address; IPv4 written directly (most events carry one).
    fn ip(&mut self, key: &str, ip: IpAddr) {
        self.key(key);
        self.out.push(b'"');
        let IpAddr::V4(v4) = ip else {
            // Digits, letters and colons: nothing to escape.
            let _ = write!(self.out, "{ip}");
            self.out.push(b'"');
            return;
        };
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                self.out.push(b'.');
            }
            decimal(octet.into(), self.out);
        }
        self.out.push(b'"');
    }

    fn yes(&mut self, key: &str) {
        self.key(key);
        self.out.extend_from_slice(b"true");
    }

    /// A string value, escaped as JSON requires.
    fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        self.out.push(b'"');
        if value.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            escape(value.as_bytes(), self.out);
        } else {
            self.out.extend_from_slice(value.as_bytes());
        }
        self.out.push(b'"');
    }

    fn state(&mut self, key: &str, n: u8) {
        match state_name(n) {
            Some(name) => self.text(key, name),
            None => self.num(key, n),
        }
    }

    fn close(self) {
        self.out.extend_from_slice(b"}\n");
    }
}

/// Appends `n` in decimal (what `write!` does, without its formatting machinery).
fn decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn escape(raw: &[u8], out: &mut Vec<u8>) {
    for &b in raw {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..0x20 => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
}

/// Writes the line for one event, and a `connect` line after a state event
/// that ends a handshake. `cgroup` is the owner's (container, pod, unit and
/// path, each when known). `state_at` is the socket's state when it happened
/// (see `Aggregator::observe`), which gives RSTs their phase; `waited`, for a
/// connect that failed, how long it waited (`after_us`) and how many SYNs it
/// sent (`syns`).
pub fn render(
    ev: &TraceEvent,
    cgroup: Option<&Cgroup>,
    state_at: u8,
    waited: Option<ConnectEnd>,
    out: &mut Vec<u8>,
) {
    let name = TraceEvent::name_of(ev.kind);
    let mut o = head(ev, cgroup, name, out);
    match ev.kind {
        EventKind::State => {
            o.state("old_state", ev.old_state);
            o.state("new_state", ev.new_state);
        }
        EventKind::SyscallError => {
            if let Some(call) = ev.syscall() {
                o.text("syscall", call.name());
            }
        }
        EventKind::Drop => {
            match ev.reason {
                Some(name) => o.text("reason", name),
                None => o.num("reason", ev.value),
            }
            if ev.by_tuple {
                o.yes("by_tuple");
            } else if state_at != 0 {
                o.state("state", state_at);
            }
        }
        _ => {
            if state_at != 0 {
                o.state("state", state_at);
            }
            if matches!(
                ev.kind,
                EventKind::RstSent | EventKind::RstReceived | EventKind::SocketError
            ) {
                o.text("phase", Phase::of_state(state_at).name());
                if let Some(reason) = ev.reason {
                    o.text("reason", reason);
                }
                if ev.no_socket {
                    o.yes("no_socket");
                }
            }
        }
    }
    tail(ev, o);
    if let Some(result) = ev.connect_result() {
        let mut o = head(ev, cgroup, "connect", out);
        o.text("result", result.name());
        if let Some(w) = waited {
            o.num("after_us", w.after_us);
            o.num("syns", w.syns);
            if w.race_lost {
                o.yes("race_lost");
            }
        }
        tail(ev, o);
    }
}

/// Writes the `dns` line of a lookup that ended: answered (`rcode`,
/// `latency_us`) or timed out (`timeout`). Its owner and time are the
/// query's; `daddr`/`dport` are the server's.
pub fn render_lookup(lookup: &Lookup, cgroup: Option<&Cgroup>, out: &mut Vec<u8>) {
    let ev = lookup_event(lookup);
    let mut o = head(&ev, cgroup, "dns", out);
    o.text("qname", &lookup.name);
    o.text("qtype", &crate::dns::wire::qtype(lookup.qtype));
    o.text("server", &lookup.server.to_string());
    o.text("transport", if lookup.tcp { "tcp" } else { "udp" });
    match lookup.outcome {
        Outcome::Answered { rcode, latency_us } => {
            o.text("rcode", &crate::dns::wire::rcode(rcode));
            o.num("latency_us", latency_us);
        }
        Outcome::TimedOut => o.yes("timeout"),
    }
    o.close();
}

/// The event fields [`head`] writes, for a lookup.
fn lookup_event(lookup: &Lookup) -> TraceEvent {
    TraceEvent {
        ts_ns: lookup.ts_ns,
        mono_ns: 0,
        kind: EventKind::Dns,
        pid: lookup.pid,
        comm: lookup.comm,
        unattributed: lookup.unattributed,
        no_socket: false,
        sk: 0,
        netns: 0,
        family: 0,
        saddr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        sport: 0,
        daddr: lookup.server.ip(),
        dport: lookup.server.port(),
        old_state: 0,
        new_state: 0,
        errno: 0,
        value: 0,
        by_tuple: false,
        reason: None,
    }
}

/// Time, event name, owner and addresses: the fields every event line starts with.
fn head<'a>(
    ev: &TraceEvent,
    cgroup: Option<&Cgroup>,
    name: &str,
    out: &'a mut Vec<u8>,
) -> Object<'a> {
    let mut o = Object::open(out);
    o.num("ts_ns", ev.ts_ns);
    o.text("event", name);
    o.num("pid", ev.pid);
    o.text("comm", ev.comm.as_str());
    if let Some(cgroup) = cgroup {
        if let Some(id) = cgroup.short_container() {
            o.text("container", id);
        }
        o.text("cgroup", &cgroup.path);
        if let Some(pod) = &cgroup.pod {
            o.text("pod", pod);
        }
        if let Some(unit) = &cgroup.unit {
            o.text("unit", unit);
        }
    }
    if ev.unattributed {
        o.yes("unattributed");
    }
    // A lookup names its server instead.
    if ev.family != 0 && ev.kind != EventKind::Dns {
        o.text("family", if ev.family == 10 { "ipv6" } else { "ipv4" });
        o.ip("saddr", ev.saddr);
        o.num("sport", ev.sport);
        o.ip("daddr", ev.daddr);
        o.num("dport", ev.dport);
        if ev.netns != 0 {
            o.num("netns", ev.netns);
        }
    }
    o
}

fn tail(ev: &TraceEvent, mut o: Object<'_>) {
    if ev.errno != 0 {
        o.text("errno", &errno::name(ev.errno));
    }
    if let Some(us) = ev.handshake_us() {
        o.num("handshake_us", us);
    }
    o.close();
}

/// The periodic `stats` object: kernel counters, the owner map's fill and
/// evictions, and userspace decode errors.
pub fn render_stats(ts_ns: u64, kernel: &KernelCounts) -> Value {
    let mut v = json!({
        "ts_ns": ts_ns,
        "event": "stats",
        "pid": 0,
        "comm": "",
    });
    // `read` is the exit summary's; stats lines have never carried it.
    for (name, n) in kernel
        .named()
        .into_iter()
        .filter(|&(name, _)| name != "read")
    {
        v[name] = n.into();
    }
    v
}

/// What a run is, for the first line of `--events`: where it ran and how.
#[derive(Debug, Clone)]
pub struct Start<'a> {
    pub host: &'a str,
    pub kernel: &'a str,
    /// What is traced: `all processes`, `pid 1234`, `cgroup …`.
    pub scope: &'a str,
    /// The hooks in use, as the start-up line says them.
    pub hooks: &'a str,
    pub interval_ms: u64,
}

/// The `start` line: written once, when tracing starts.
pub fn render_start(ts_ns: u64, start: &Start<'_>) -> Value {
    json!({
        "ts_ns": ts_ns,
        "event": "start",
        "pid": 0,
        "comm": "",
        "host": start.host,
        "kernel": start.kernel,
        "scope": start.scope,
        "hooks": start.hooks,
        "interval_ms": start.interval_ms,
    })
}

/// A `finding` object: a finding started or ended (`state`) at the snapshot
/// taken at `ts_ns`. `cgroup` is its process's, when known. `remote` is a
/// server's `address:port` or a client's address (`remote_role` says which).
pub fn render_finding(
    ts_ns: u64,
    transition: Transition,
    finding: &Finding,
    cgroup: Option<&Cgroup>,
) -> Value {
    let mut v = json!({
        "ts_ns": ts_ns,
        "event": "finding",
        "pid": finding.pid,
        "comm": finding.comm,
    });
    if let Some(cgroup) = cgroup {
        if let Some(id) = cgroup.short_container() {
            v["container"] = id.into();
        }
        v["cgroup"] = cgroup.path.clone().into();
        if let Some(pod) = &cgroup.pod {
            v["pod"] = pod.clone().into();
        }
        if let Some(unit) = &cgroup.unit {
            v["unit"] = unit.clone().into();
        }
    }
    v["state"] = transition.name().into();
    v["finding"] = finding.kind.id().into();
    v["severity"] = finding.severity.name().into();
    match finding.remote {
        Some(Remote::Server(addr)) => {
            v["remote"] = addr.to_string().into();
            v["remote_role"] = "server".into();
        }
        Some(Remote::Client(ip)) => {
            v["remote"] = ip.to_string().into();
            v["remote_role"] = "client".into();
        }
        Some(Remote::Other) => v["remote"] = "other".into(),
        None => {}
    }
    v["message"] = finding.headline.clone().into();
    v["evidence"] = finding.evidence.clone().into();
    v
}

/// Writes JSON lines to a file or stdout, through a [`Pipe`]: a reader that
/// does not keep up costs lines (counted), never the caller's time.
pub struct JsonSink {
    out: Pipe,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open --events file {path} for writing: {source}")]
pub struct OpenError {
    path: std::path::PathBuf,
    source: std::io::Error,
}

impl JsonSink {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Pipe::new(out),
        }
    }

    /// Opens `--events PATH` for appending (`-` is standard output).
    pub fn open(path: &std::path::Path) -> Result<Self, OpenError> {
        let out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::stdout())
        } else {
            // Owner-only when new: it names every traced process and address.
            let file = std::fs::File::options()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| OpenError {
                    path: path.to_owned(),
                    source,
                })?;
            Box::new(file)
        };
        Ok(Self::new(out))
    }

    /// Writes one event's lines (see [`render`]).
    pub fn event(
        &mut self,
        ev: &TraceEvent,
        cgroup: Option<&Cgroup>,
        state_at: u8,
        waited: Option<ConnectEnd>,
    ) {
        render(ev, cgroup, state_at, waited, self.out.buffer());
        self.out.lines_added();
    }

    /// Writes a DNS lookup's line (see [`render_lookup`]).
    pub fn lookup(&mut self, lookup: &Lookup, cgroup: Option<&Cgroup>) {
        render_lookup(lookup, cgroup, self.out.buffer());
        self.out.lines_added();
    }

    /// Writes one JSON object as a line.
    pub fn write(&mut self, value: &Value) {
        let buffer = self.out.buffer();
        // Into memory, a JSON value cannot fail to serialize.
        if serde_json::to_writer(&mut *buffer, value).is_ok() {
            buffer.push(b'\n');
        }
        self.out.lines_added();
    }

    /// Hands what is buffered to the writer, without waiting.
    pub fn flush(&mut self) {
        self.out.flush();
    }

    /// Lines dropped because the output did not keep up.
    pub const fn unwritten(&self) -> u64 {
        self.out.unwritten()
    }

    /// The first write that failed, once.
    pub fn take_error(&mut self) -> Option<std::io::Error> {
        self.out.take_error()
    }

    /// Writes the rest, waiting up to `patience`; whether all was written.
    pub fn finish(&mut self, patience: std::time::Duration) -> bool {
        self.out.finish(patience)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use tracer_common::tcp::{AF_INET, CLOSE, ESTABLISHED, SYN_SENT};

    use super::*;

    fn state_event() -> TraceEvent {
        TraceEvent {
            ts_ns: 1_700_000_000_000_000_000,
            mono_ns: 5,
            kind: EventKind::State,
            pid: 77,
            comm: "curl".into(),
            unattributed: false,
            no_socket: false,
            sk: 1,
            netns: 0,
            family: AF_INET,
            saddr: "127.0.0.1".parse::<IpAddr>().unwrap(),
            sport: 0,
            daddr: "127.0.0.1".parse::<IpAddr>().unwrap(),
            dport: 80,
            old_state: CLOSE,
            new_state: SYN_SENT,
            errno: 0,
            value: 0,
            by_tuple: false,
            reason: None,
        }
    }

    /// The lines written for `ev`, parsed back.
    fn lines(ev: &TraceEvent, state_at: u8) -> Vec<Value> {
        let mut out = Vec::new();
        render(ev, None, state_at, None, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn state_event_has_the_contract_fields() {
        let mut out = Vec::new();
        render(&state_event(), None, 0, None, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"ts_ns\":1700000000000000000,\"event\":\"state\",\"pid\":77,\"comm\":\"curl\",\"family\":\"ipv4\",\"saddr\":\"127.0.0.1\",\"sport\":0,\"daddr\":\"127.0.0.1\",\"dport\":80,\"old_state\":\"CLOSE\",\"new_state\":\"SYN_SENT\"}\n"
        );
    }

    #[test]
    fn errors_are_symbolic_and_unattributed_is_flagged() {
        let mut ev = state_event();
        ev.kind = EventKind::RstReceived;
        ev.errno = 111;
        ev.unattributed = true;
        ev.pid = 0;
        let v = &lines(&ev, SYN_SENT)[0];
        assert_eq!(v["event"], "rst_received");
        assert_eq!(v["errno"], "ECONNREFUSED");
        assert_eq!(v["unattributed"], true);
        assert_eq!(v["state"], "SYN_SENT");
        assert_eq!(v["phase"], "handshake");
    }

    #[test]
    fn the_owners_container_pod_unit_and_cgroup() {
        let id = "4f1d9b2a7c3e8d6f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";
        let cgroup = crate::proc::cgroup::parse(&format!(
            "0::/kubepods/burstable/pod0b8f3c1e-5a7d-4e2b-9c6f-1d2e3f4a5b6c/{id}"
        ))
        .unwrap();
        let mut ev = state_event();
        ev.old_state = SYN_SENT;
        ev.new_state = ESTABLISHED;
        let mut out = Vec::new();
        render(&ev, Some(&cgroup), 0, None, &mut out);
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "the state line and the connect line");
        for v in &lines {
            assert_eq!(v["container"], "4f1d9b2a7c3e");
            assert_eq!(
                v["cgroup"],
                format!("/kubepods/burstable/pod0b8f3c1e-5a7d-4e2b-9c6f-1d2e3f4a5b6c/{id}")
            );
            assert_eq!(v["pod"], "0b8f3c1e-5a7d-4e2b-9c6f-1d2e3f4a5b6c");
            assert!(v.get("unit").is_none());
        }
        let unit = crate::proc::cgroup::parse("0::/system.slice/api.service").unwrap();
        let mut out = Vec::new();
        render(&state_event(), Some(&unit), 0, None, &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (v["unit"].as_str(), v.get("container")),
            (Some("api.service"), None)
        );
    }

    #[test]
    fn command_names_are_escaped() {
        let mut ev = state_event();
        ev.comm = "a\"b\\c\td\u{1}".into();
        assert_eq!(lines(&ev, 0)[0]["comm"], "a\"b\\c\td\u{1}");
    }

    #[test]
    fn connect_outcomes() {
        let mut ev = state_event();
        assert_eq!(lines(&ev, 0).len(), 1, "CLOSE→SYN_SENT starts a connect");
        ev.old_state = SYN_SENT;
        ev.new_state = ESTABLISHED;
        ev.value = 42_000;
        let both = lines(&ev, 0);
        assert_eq!(both[0]["event"], "state");
        let ok = &both[1];
        assert_eq!(
            (ok["event"].as_str(), ok["result"].as_str()),
            (Some("connect"), Some("ok"))
        );
        assert_eq!(ok["handshake_us"], 42);
        assert!(ok.get("old_state").is_none());
        ev.new_state = CLOSE;
        ev.value = 0;
        for (errno, result) in [
            (111, "refused"),
            (110, "timeout"),
            (113, "unreachable"),
            (0, "abandoned"),
            (104, "failed"),
        ] {
            ev.errno = errno;
            assert_eq!(lines(&ev, 0)[1]["result"], result, "errno {errno}");
        }
    }

    #[test]
    fn finding_lines() {
        use crate::{
            findings::{self, Kind, REFUSED_CONNECTS, Severity},
            fixtures,
        };
        let mut p = fixtures::process(42, "api");
        let mut r = fixtures::server("10.0.0.5:5432");
        r.counts.connect_refused = REFUSED_CONNECTS;
        p.remotes = vec![r];
        let found = findings::findings(&fixtures::snapshot(vec![p]));
        assert_eq!(found[0].kind, Kind::NothingListening);
        let unit = crate::proc::cgroup::parse("0::/system.slice/api.service").unwrap();
        let v = render_finding(7, Transition::Start, &found[0], Some(&unit));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "ts_ns",
                "event",
                "pid",
                "comm",
                "cgroup",
                "unit",
                "state",
                "finding",
                "severity",
                "remote",
                "remote_role",
                "message",
                "evidence"
            ]
        );
        assert_eq!(
            v,
            json!({
                "ts_ns": 7,
                "event": "finding",
                "pid": 42,
                "comm": "api",
                "cgroup": "/system.slice/api.service",
                "unit": "api.service",
                "state": "start",
                "finding": "connect_refused",
                "severity": "critical",
                "remote": "10.0.0.5:5432",
                "remote_role": "server",
                "message": "connects to 10.0.0.5:5432 are refused: nothing listening there",
                "evidence": "3 connects refused (RST during the handshake), 0 succeeded",
            })
        );
        // A process finding, ended, without a cgroup: no remote, no cgroup fields.
        let mut p = fixtures::process(43, "leaky");
        p.gauges.close_wait = findings::CLOSE_WAIT_SOCKETS;
        let found = findings::findings(&fixtures::snapshot(vec![p]));
        let v = render_finding(8, Transition::End, &found[0], None);
        assert_eq!(
            (
                v["state"].as_str(),
                v["finding"].as_str(),
                v["severity"].as_str()
            ),
            (
                Some("end"),
                Some("close_wait_leak"),
                Some(Severity::Warning.name())
            )
        );
        assert!(v.get("remote").is_none() && v.get("cgroup").is_none());
        // A client of the process's listeners is named by its address alone.
        let mut f = found[0].clone();
        f.remote = Some(Remote::Client("10.0.0.7".parse().unwrap()));
        let v = render_finding(9, Transition::Start, &f, None);
        assert_eq!(
            (v["remote"].as_str(), v["remote_role"].as_str()),
            (Some("10.0.0.7"), Some("client"))
        );
    }

    #[test]
    fn stats_line() {
        let c = KernelCounts {
            submitted: 10,
            dropped: 1,
            filtered: 2,
            unattributed: 3,
            owners_evicted: 4,
            owners: 5,
            read: 6,
            decode_errors: 0,
            closed_port_resets: 7,
        };
        let v = render_stats(9, &c);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "ts_ns",
                "event",
                "pid",
                "comm",
                "submitted",
                "dropped",
                "filtered",
                "unattributed",
                "owners",
                "owners_evicted",
                "decode_errors",
                "closed_port_resets"
            ]
        );
        assert_eq!(v["event"], "stats");
        assert_eq!(v["dropped"], 1);
        assert_eq!(
            (v["owners"].as_u64(), v["owners_evicted"].as_u64()),
            (Some(5), Some(4))
        );
    }
}
