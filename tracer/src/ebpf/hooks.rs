//! The hooks tracer attaches, and the tracepoint fields each program reads.

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

/// Every tracepoint program, in attach order: teardown before state so that no
/// owner outlives its socket while the rest attaches.
pub const TRACEPOINTS: &[TracepointHook] = &[DESTROY, STATE];
