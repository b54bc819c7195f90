//! `--events`: one JSON object per line for every event, plus periodic `stats`
//! objects. Field names are a contract (see README, "Events").

use std::io::Write;

use serde_json::{Map, Value, json};
use tracer_common::{EventKind, tcp::state_name};

use crate::{aggregate::Phase, ebpf::counters::Counters, errno, event::TraceEvent};

fn state(n: u8) -> Value {
    state_name(n).map_or_else(|| Value::from(n), Value::from)
}

/// The `connect` object derived from a state event that ends a handshake.
pub fn render_connect(ev: &TraceEvent) -> Option<Value> {
    let result = ev.connect_result()?.name();
    let mut v = render(ev, ev.old_state);
    let o = v.as_object_mut()?;
    o.insert("event".into(), "connect".into());
    o.shift_remove("old_state");
    o.shift_remove("new_state");
    o.insert("result".into(), result.into());
    Some(v)
}

/// Renders one event as a JSON object; `state_at` is the socket's state when
/// it happened (see `Connections::observe`), which gives RSTs their phase.
pub fn render(ev: &TraceEvent, state_at: u8) -> Value {
    let mut o = Map::new();
    o.insert("ts_ns".into(), ev.ts_ns.into());
    o.insert("event".into(), TraceEvent::name_of(ev.kind).into());
    o.insert("pid".into(), ev.pid.into());
    o.insert("comm".into(), ev.comm.as_str().into());
    if ev.unattributed {
        o.insert("unattributed".into(), true.into());
    }
    if ev.family != 0 {
        o.insert(
            "family".into(),
            if ev.family == 10 { "ipv6" } else { "ipv4" }.into(),
        );
        o.insert("saddr".into(), ev.saddr.to_string().into());
        o.insert("sport".into(), ev.sport.into());
        o.insert("daddr".into(), ev.daddr.to_string().into());
        o.insert("dport".into(), ev.dport.into());
    }
    match ev.kind {
        EventKind::State => {
            o.insert("old_state".into(), state(ev.old_state));
            o.insert("new_state".into(), state(ev.new_state));
        }
        EventKind::SyscallError => {
            if let Some(call) = ev.syscall() {
                o.insert("syscall".into(), call.name().into());
            }
        }
        _ => {
            if state_at != 0 {
                o.insert("state".into(), state(state_at));
            }
            if matches!(ev.kind, EventKind::RstSent | EventKind::RstReceived) {
                o.insert("phase".into(), Phase::of_state(state_at).name().into());
                if ev.no_socket {
                    o.insert("no_socket".into(), true.into());
                }
            }
        }
    }
    if ev.errno != 0 {
        o.insert("errno".into(), errno::name(ev.errno).into());
    }
    if let Some(us) = ev.handshake_us() {
        o.insert("handshake_us".into(), us.into());
    }
    Value::Object(o)
}

/// The periodic `stats` object: kernel counters, the owner map's fill and
/// evictions, and userspace decode errors.
pub fn render_stats(ts_ns: u64, c: &Counters, decode_errors: u64) -> Value {
    json!({
        "ts_ns": ts_ns,
        "event": "stats",
        "pid": 0,
        "comm": "",
        "submitted": c.submitted,
        "dropped": c.dropped,
        "filtered": c.filtered,
        "unattributed": c.unattributed,
        "owners": c.owners,
        "owners_evicted": c.owners_evicted,
        "decode_errors": decode_errors,
    })
}

/// Writes JSON lines to a file or stdout.
pub struct JsonSink {
    out: Box<dyn Write + Send>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open --events file {path} for writing: {source}")]
pub struct OpenError {
    path: std::path::PathBuf,
    source: std::io::Error,
}

impl JsonSink {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out }
    }

    /// Opens `--events PATH` for appending (`-` is standard output).
    pub fn open(path: &std::path::Path) -> Result<Self, OpenError> {
        let out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::BufWriter::new(std::io::stdout()))
        } else {
            let file = std::fs::File::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| OpenError {
                    path: path.to_owned(),
                    source,
                })?;
            Box::new(std::io::BufWriter::new(file))
        };
        Ok(Self::new(out))
    }

    pub fn write(&mut self, value: &Value) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
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
            family: AF_INET,
            saddr: "127.0.0.1".parse::<IpAddr>().unwrap(),
            sport: 0,
            daddr: "127.0.0.1".parse::<IpAddr>().unwrap(),
            dport: 80,
            old_state: CLOSE,
            new_state: SYN_SENT,
            errno: 0,
            value: 0,
        }
    }

    #[test]
    fn state_event_has_the_contract_fields() {
        let v = render(&state_event(), 0);
        assert_eq!(
            v.to_string(),
            r#"{"ts_ns":1700000000000000000,"event":"state","pid":77,"comm":"curl","family":"ipv4","saddr":"127.0.0.1","sport":0,"daddr":"127.0.0.1","dport":80,"old_state":"CLOSE","new_state":"SYN_SENT"}"#
        );
    }

    #[test]
    fn errors_are_symbolic_and_unattributed_is_flagged() {
        let mut ev = state_event();
        ev.kind = EventKind::RstReceived;
        ev.errno = 111;
        ev.unattributed = true;
        ev.pid = 0;
        let v = render(&ev, SYN_SENT);
        assert_eq!(v["event"], "rst_received");
        assert_eq!(v["errno"], "ECONNREFUSED");
        assert_eq!(v["unattributed"], true);
        assert_eq!(v["state"], "SYN_SENT");
        assert_eq!(v["phase"], "handshake");
    }

    #[test]
    fn connect_outcomes() {
        let mut ev = state_event();
        assert!(
            render_connect(&ev).is_none(),
            "CLOSE→SYN_SENT starts a connect"
        );
        ev.old_state = SYN_SENT;
        ev.new_state = ESTABLISHED;
        ev.value = 42_000;
        let ok = render_connect(&ev).unwrap();
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
            (0, "aborted"),
            (104, "failed"),
        ] {
            ev.errno = errno;
            assert_eq!(
                render_connect(&ev).unwrap()["result"],
                result,
                "errno {errno}"
            );
        }
    }

    #[test]
    fn stats_line() {
        let c = Counters {
            submitted: 10,
            dropped: 1,
            filtered: 2,
            unattributed: 3,
            owners_evicted: 4,
            owners: 5,
        };
        let v = render_stats(9, &c, 0);
        assert_eq!(v["event"], "stats");
        assert_eq!(v["dropped"], 1);
        assert_eq!(
            (v["owners"].as_u64(), v["owners_evicted"].as_u64()),
            (Some(5), Some(4))
        );
    }
}
