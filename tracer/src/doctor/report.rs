//! What `tracer doctor` found, as plain data: gathered once by
//! [`super::gather`], then rendered as text or JSON by [`super::render`].
//!
//! A check that can fail is a `Result<T, String>` (the error is the message
//! the text form prints); in JSON it becomes `"ok": true` plus `T`'s fields,
//! or `"ok": false, "error": "…"`, inside the object that owns it.

use serde::{Serialize, Serializer, ser::SerializeMap as _};

/// Everything `tracer doctor` reports, in the order the text form shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub kernel: Kernel,
    /// Capabilities tracer needs and lacks (`CAP_BPF`, …); empty when root.
    pub missing_capabilities: Vec<String>,
    /// Whether tracefs was mounted (tracer mounts it when it is not).
    #[serde(serialize_with = "outcome")]
    pub tracefs: Result<Tracefs, String>,
    /// The kernel's BTF, when it has one.
    pub btf: Option<String>,
    /// Kernel lockdown mode (`none`, `integrity`, `confidentiality`), if reported.
    pub lockdown: Option<String>,
    /// Whether this namespace's TCP sockets can be read through sock_diag
    /// (else /proc text, without RTTs or bytes).
    #[serde(serialize_with = "outcome")]
    pub sock_diag: Result<SockDiag, String>,
    /// Each tracepoint tracer reads, and whether its format has the fields it needs.
    pub tracepoints: Vec<Tracepoint>,
    /// Each program kind, loaded and attached here, then detached.
    pub program_kinds: Vec<ProgramKind>,
    /// Each `--hooks` plan, loaded and attached here, then detached.
    pub hook_plans: Vec<HookPlan>,
    /// The `struct sock` member offsets read from BTF, when BTF places them all.
    pub sock_offsets: Option<SockOffsets>,
    /// The plan `--hooks auto` picks, or why none loads.
    #[serde(serialize_with = "outcome")]
    pub plan: Result<ChosenPlan, String>,
    /// What keeps tracer from running here; empty when it can run.
    pub missing: Vec<String>,
}

impl Report {
    /// Whether tracer can run on this system as it is.
    pub fn can_run(&self) -> bool {
        self.missing.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Kernel {
    /// `uname -r`.
    pub release: String,
    /// Older than 5.8, which brought the BPF ring buffer.
    pub too_old: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SockDiag {
    /// TCP sockets it listed in this network namespace.
    pub sockets: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tracefs {
    pub path: String,
    /// It was not mounted and tracer mounted it just now.
    pub mounted_now: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tracepoint {
    /// `category:name`, e.g. `tcp:tcp_retransmit_skb`.
    pub name: String,
    #[serde(flatten, serialize_with = "outcome")]
    pub result: Result<(), String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProgramKind {
    /// `tracepoint`, `raw tracepoint`, `kprobe` or `fentry`.
    pub kind: String,
    #[serde(flatten, serialize_with = "outcome")]
    pub result: Result<Attached, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attached {
    /// What was attached, e.g. `tcp_v4_connect` or `11 programs attached`.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HookPlan {
    /// As `--hooks` takes it: `raw-tracepoint`, `tracepoint` or `kprobe`.
    pub hooks: String,
    #[serde(flatten, serialize_with = "outcome")]
    pub result: Result<Loads, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Loads {
    /// How many programs the plan attached.
    pub programs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChosenPlan {
    /// `raw-tracepoint`, `tracepoint`, `kprobe` or `mixed`.
    pub name: String,
    /// In words, e.g. `the tracepoint plan (tracepoints only)`.
    pub description: String,
    /// Every attached program in attach order, e.g. `tracepoint sock:inet_sock_set_state`.
    pub programs: Vec<String>,
    /// Where connect errors come from (or why they are unavailable).
    pub connect_errors: String,
    /// Where the sources that may be off (socket errors, drops, syscall
    /// errors) come from by default, or why they are off.
    pub optional_sources: String,
}

/// `struct sock` member offsets by name (`state`, `family`, …), in the order
/// shown; a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockOffsets(pub Vec<(&'static str, u16)>);

impl From<tracer_common::SockOffsets> for SockOffsets {
    fn from(o: tracer_common::SockOffsets) -> Self {
        Self(vec![
            ("state", o.state),
            ("family", o.family),
            ("protocol", o.protocol),
            ("sport", o.sport),
            ("dport", o.dport),
            ("saddr", o.saddr),
            ("daddr", o.daddr),
            ("saddr_v6", o.saddr_v6),
            ("daddr_v6", o.daddr_v6),
        ])
    }
}

impl Serialize for SockOffsets {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, offset) in &self.0 {
            map.serialize_entry(name, offset)?;
        }
        map.end()
    }
}

/// A check's result as JSON: `"ok": true` and the value's fields, or
/// `"ok": false` and `"error"`.
fn outcome<T: Serialize, S: Serializer>(
    result: &Result<T, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Passed<'a, T> {
        ok: bool,
        #[serde(flatten)]
        value: &'a T,
    }
    #[derive(Serialize)]
    struct Failed<'a> {
        ok: bool,
        error: &'a str,
    }
    match result {
        Ok(value) => Passed { ok: true, value }.serialize(serializer),
        Err(error) => Failed { ok: false, error }.serialize(serializer),
    }
}
