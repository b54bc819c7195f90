//! The hooks tracer attaches, and the tracepoint fields each program reads.
//!
//! Two data sources can come from raw tracepoints, classic tracepoints or
//! kprobes: state changes and retransmits ([`SOURCES`]). Each plan uses one
//! kind per source. Teardown comes from a raw tracepoint when the state
//! changes do ([`DESTROY_RAW`]), else from the classic one; everything else
//! (resets, SYN-ACK retransmits, syscall errors) is a classic tracepoint in
//! every plan ([`SHARED`]).
//!
//! A raw tracepoint gets the tracepoint's arguments (the `struct sock`
//! pointer) without the kernel first filling a trace record, so it is the
//! cheapest; it reads the socket at offsets from the kernel's BTF.

/// A program attached to a classic tracepoint, whose field offsets come from
/// the running kernel's format file.
#[derive(Debug, Clone, Copy)]
pub struct TracepointHook {
    /// Program name in the eBPF object.
    pub program: &'static str,
    pub category: &'static str,
    pub name: &'static str,
    /// The load-time global that receives the field offsets.
    pub global: &'static str,
    /// Fields the program cannot work without.
    pub required: &'static [&'static str],
    /// Fields read when the kernel has them.
    pub optional: &'static [&'static str],
}

const SPLIT_TUPLE: &[&str] = &[
    "sport", "dport", "family", "saddr", "daddr", "saddr_v6", "daddr_v6",
];

pub const STATE: TracepointHook = TracepointHook {
    program: "inet_sock_set_state",
    category: "sock",
    name: "inet_sock_set_state",
    global: "LAYOUT_INET_SOCK_SET_STATE",
    required: &[
        "skaddr", "oldstate", "newstate", "protocol", "sport", "dport", "family", "saddr", "daddr",
        "saddr_v6", "daddr_v6",
    ],
    optional: &[],
};

pub const DESTROY: TracepointHook = TracepointHook {
    program: "tcp_destroy_sock",
    category: "tcp",
    name: "tcp_destroy_sock",
    global: "LAYOUT_TCP_DESTROY_SOCK",
    required: &["skaddr"],
    optional: SPLIT_TUPLE,
};

pub const RETRANSMIT: TracepointHook = TracepointHook {
    program: "tcp_retransmit_skb",
    category: "tcp",
    name: "tcp_retransmit_skb",
    global: "LAYOUT_TCP_RETRANSMIT_SKB",
    required: &[
        "skaddr", "state", "sport", "dport", "family", "saddr", "daddr", "saddr_v6", "daddr_v6",
    ],
    // 6.18 also fires for a retransmit that failed (e.g. -EBUSY), with `err`.
    optional: &["err"],
};

pub const RETRANSMIT_SYNACK: TracepointHook = TracepointHook {
    program: "tcp_retransmit_synack",
    category: "tcp",
    name: "tcp_retransmit_synack",
    global: "LAYOUT_TCP_RETRANSMIT_SYNACK",
    required: &[
        "skaddr", "sport", "dport", "family", "saddr", "daddr", "saddr_v6", "daddr_v6",
    ],
    optional: &[],
};

pub const SEND_RESET: TracepointHook = TracepointHook {
    program: "tcp_send_reset",
    category: "tcp",
    name: "tcp_send_reset",
    global: "LAYOUT_TCP_SEND_RESET",
    // 6.1: split tuple; 6.18: sockaddr buffers and a reason.
    required: &["skaddr", "saddr", "daddr"],
    optional: &[
        "state", "reason", "sport", "dport", "family", "saddr_v6", "daddr_v6",
    ],
};

pub const RECEIVE_RESET: TracepointHook = TracepointHook {
    program: "tcp_receive_reset",
    category: "tcp",
    name: "tcp_receive_reset",
    global: "LAYOUT_TCP_RECEIVE_RESET",
    required: &[
        "skaddr", "sport", "dport", "family", "saddr", "daddr", "saddr_v6", "daddr_v6",
    ],
    optional: &[],
};

const fn sys_exit(program: &'static str) -> TracepointHook {
    TracepointHook {
        program,
        category: "syscalls",
        name: program,
        // One global for all six: the loader checks that their layouts agree.
        global: "LAYOUT_SYS_EXIT",
        required: &["ret"],
        optional: &[],
    }
}

/// Every tracepoint program: teardown first, then the owner-recording state
/// program, then the consumers of owners.
pub const TRACEPOINTS: &[TracepointHook] = &[
    DESTROY,
    STATE,
    RETRANSMIT,
    RETRANSMIT_SYNACK,
    SEND_RESET,
    RECEIVE_RESET,
    sys_exit("sys_exit_socket"),
    sys_exit("sys_exit_connect"),
    sys_exit("sys_exit_accept"),
    sys_exit("sys_exit_accept4"),
    sys_exit("sys_exit_bind"),
    sys_exit("sys_exit_listen"),
];

/// The tracepoints of every plan, after [`DESTROY`] (attached first, so that
/// no owner outlives its socket while the rest attaches) and the sources.
pub const SHARED: &[TracepointHook] = &[
    RETRANSMIT_SYNACK,
    SEND_RESET,
    RECEIVE_RESET,
    sys_exit("sys_exit_socket"),
    sys_exit("sys_exit_connect"),
    sys_exit("sys_exit_accept"),
    sys_exit("sys_exit_accept4"),
    sys_exit("sys_exit_bind"),
    sys_exit("sys_exit_listen"),
];

/// The kinds of hook a source can use, cheapest and most stable first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Raw tracepoints: the stable tracepoints' arguments, `struct sock` read
    /// at offsets from BTF.
    RawTracepoint,
    /// Classic tracepoints: fields described by their format files.
    Tracepoint,
    /// kprobes on kernel functions, reading `struct sock` at offsets from BTF:
    /// for kernels that lack (or refuse) the tracepoints.
    Kprobe,
}

impl HookKind {
    pub const ALL: [Self; 3] = [Self::RawTracepoint, Self::Tracepoint, Self::Kprobe];

    /// As `--hooks` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RawTracepoint => "raw-tracepoint",
            Self::Tracepoint => "tracepoint",
            Self::Kprobe => "kprobe",
        }
    }

    /// In a sentence, e.g. `raw tracepoint`.
    pub const fn noun(self) -> &'static str {
        match self {
            Self::RawTracepoint => "raw tracepoint",
            Self::Tracepoint => "tracepoint",
            Self::Kprobe => "kprobe",
        }
    }
}

/// A kprobe or kretprobe program.
#[derive(Debug, Clone, Copy)]
pub struct KprobeHook {
    /// Program name in the eBPF object.
    pub program: &'static str,
    /// The kernel function it is attached to.
    pub function: &'static str,
    /// A kretprobe (on the function's return) rather than a kprobe.
    pub ret: bool,
}

impl KprobeHook {
    const fn entry(program: &'static str, function: &'static str) -> Self {
        Self {
            program,
            function,
            ret: false,
        }
    }

    const fn exit(program: &'static str, function: &'static str) -> Self {
        Self {
            program,
            function,
            ret: true,
        }
    }

    /// How the plan shows it, e.g. `kretprobe tcp_retransmit_skb`.
    pub fn describe(&self) -> String {
        let kind = if self.ret { "kretprobe" } else { "kprobe" };
        format!("{kind} {}", self.function)
    }
}

/// A program attached to the raw form of a classic tracepoint.
#[derive(Debug, Clone, Copy)]
pub struct RawHook {
    /// Program name in the eBPF object.
    pub program: &'static str,
    /// The tracepoint whose raw form it attaches to (by name: a raw
    /// tracepoint has no category, and no format is read).
    pub of: &'static TracepointHook,
}

impl RawHook {
    /// The name a raw tracepoint is attached by.
    pub fn name(&self) -> &'static str {
        self.of.name
    }

    /// How the plan shows it, e.g. `raw tracepoint sock:inet_sock_set_state`.
    pub fn describe(&self) -> String {
        format!("raw tracepoint {}:{}", self.of.category, self.of.name)
    }
}

/// Teardown when the state changes come from raw tracepoints.
pub const DESTROY_RAW: RawHook = RawHook {
    program: "raw_tcp_destroy_sock",
    of: &DESTROY,
};

/// A data source with raw tracepoint, tracepoint and kprobe alternatives.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// What it provides, for messages.
    pub name: &'static str,
    pub raw: RawHook,
    pub tracepoint: TracepointHook,
    /// The kprobe alternative, in attach order: return probes before their
    /// entry probes, so that no entry is left waiting for a return.
    pub kprobes: &'static [KprobeHook],
}

/// State changes. The connect probes record owners that `tcp_set_state` finds;
/// `inet_csk_listen_start` covers CLOSE→LISTEN, which `tcp_set_state` never sees.
pub const STATE_SOURCE: Source = Source {
    name: "state changes",
    raw: RawHook {
        program: "raw_inet_sock_set_state",
        of: &STATE,
    },
    tracepoint: STATE,
    kprobes: &[
        KprobeHook::entry("kprobe_tcp_v4_connect", "tcp_v4_connect"),
        KprobeHook::entry("kprobe_tcp_v6_connect", "tcp_v6_connect"),
        KprobeHook::exit("kretprobe_inet_csk_listen_start", "inet_csk_listen_start"),
        KprobeHook::entry("kprobe_inet_csk_listen_start", "inet_csk_listen_start"),
        KprobeHook::entry("kprobe_tcp_set_state", "tcp_set_state"),
    ],
};

/// Retransmits of data and SYNs. Both functions, at entry and return: see
/// `tracer-ebpf/src/probes/kprobe_retransmit.rs`.
pub const RETRANSMIT_SOURCE: Source = Source {
    name: "retransmits",
    raw: RawHook {
        program: "raw_tcp_retransmit_skb",
        of: &RETRANSMIT,
    },
    tracepoint: RETRANSMIT,
    kprobes: &[
        KprobeHook::exit("kretprobe_tcp_retransmit_skb", "tcp_retransmit_skb"),
        KprobeHook::exit("kretprobe_tcp_retransmit_skb_inner", "__tcp_retransmit_skb"),
        KprobeHook::entry("kprobe_tcp_retransmit_skb", "tcp_retransmit_skb"),
        KprobeHook::entry("kprobe_tcp_retransmit_skb_inner", "__tcp_retransmit_skb"),
    ],
};

/// The sources with a choice of hook, in attach order (owners are recorded by
/// the state source before anything looks them up).
pub const SOURCES: &[Source] = &[STATE_SOURCE, RETRANSMIT_SOURCE];
