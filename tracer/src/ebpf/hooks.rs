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

pub const RETRANSMIT: TracepointHook = TracepointHook {
    program: "tcp_retransmit_skb",
    category: "tcp",
    name: "tcp_retransmit_skb",
    global: "LAYOUT_TCP_RETRANSMIT_SKB",
    required: &[
        "skaddr", "state", "sport", "dport", "family", "saddr", "daddr", "saddr_v6", "daddr_v6",
    ],
    optional: &[],
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

/// Every tracepoint program, in attach order: teardown first, so that no owner
/// outlives its socket while the rest attaches, then the owner-recording state
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
