//! The hooks tracer can attach, as data: every program, the kernel hook it
//! attaches to, and the data sources with their alternatives.
//!
//! A [`Source`] is one kind of data (state changes, retransmits, resets …)
//! and lists the [`Alternative`]s that can provide it, cheapest first; each
//! alternative is the set of [`Hook`]s of one [`HookKind`]. The plan
//! (`plan.rs`) picks alternatives for the running kernel and `--hooks`; the
//! attacher (`attach.rs`) attaches them. A new hook kind is a [`Hook`] variant
//! and its arm in `attach.rs`; a new source is one more entry in [`SOURCES`].
//!
//! A raw tracepoint gets the tracepoint's arguments (the `struct sock`
//! pointer) without the kernel first filling a trace record, so it is the
//! cheapest; it reads the socket at offsets from the kernel's BTF. A classic
//! tracepoint's fields come from its format file.
//!
//! What a hook costs the rest of the host matters as much as what it costs
//! the traced process: a `syscalls:*` tracepoint slows every syscall of every
//! task, so the syscall-error source takes fexit or kretprobes, which fire
//! only for the syscalls they watch, and those tracepoints only when asked.

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

/// Attached in its raw form only: its classic form has no socket pointer to
/// find the owner with, so no global receives its layout.
pub const ERROR_REPORT: TracepointHook = TracepointHook {
    program: "raw_inet_sk_error_report",
    category: "sock",
    name: "inet_sk_error_report",
    global: "",
    required: &[],
    optional: &[],
};

/// Attached in its raw form only, for the packet's socket pointer (`rx_sk`,
/// `skb->sk`); the format file is read for the drop reasons' names.
pub const KFREE_SKB: TracepointHook = TracepointHook {
    program: "raw_kfree_skb",
    category: "skb",
    name: "kfree_skb",
    global: "",
    required: &[],
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

/// The network syscalls whose failures are counted.
pub const SYS_EXIT: [TracepointHook; 6] = [
    sys_exit("sys_exit_socket"),
    sys_exit("sys_exit_connect"),
    sys_exit("sys_exit_accept"),
    sys_exit("sys_exit_accept4"),
    sys_exit("sys_exit_bind"),
    sys_exit("sys_exit_listen"),
];

/// The kernel function of syscall `name` (arch-specific, as the kernel's
/// syscall wrappers are named).
macro_rules! syscall_function {
    ($name:literal) => {
        if cfg!(target_arch = "aarch64") {
            concat!("__arm64_sys_", $name)
        } else {
            concat!("__x64_sys_", $name)
        }
    };
}

/// The kinds of hook an alternative is made of, cheapest and most stable first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Raw tracepoints: the stable tracepoints' arguments, `struct sock` read
    /// at offsets from BTF.
    RawTracepoint,
    /// Classic tracepoints: fields described by their format files.
    Tracepoint,
    /// kprobes and kretprobes on kernel functions, reading `struct sock` at
    /// offsets from BTF: for kernels that lack (or refuse) the tracepoints.
    Kprobe,
    /// fexit programs (BPF trampolines) on kernel functions: they fire only
    /// for the functions they watch. Many kernels refuse them (lockdown).
    Fexit,
    /// cgroup programs (packets, connect and sendmsg calls of the sockets in
    /// a cgroup v2 tree), attached to its root or to each `--cgroup`.
    Cgroup,
}

impl HookKind {
    /// The kinds a whole plan can be made of (`--hooks`).
    pub const ALL: [Self; 3] = [Self::RawTracepoint, Self::Tracepoint, Self::Kprobe];

    /// As `--hooks` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RawTracepoint => "raw-tracepoint",
            Self::Tracepoint => "tracepoint",
            Self::Kprobe => "kprobe",
            Self::Fexit => "fexit",
            Self::Cgroup => "cgroup",
        }
    }

    /// In a sentence, e.g. `raw tracepoint`.
    pub const fn noun(self) -> &'static str {
        match self {
            Self::RawTracepoint => "raw tracepoint",
            Self::Tracepoint => "tracepoint",
            Self::Kprobe => "kprobe",
            Self::Fexit => "fexit",
            Self::Cgroup => "cgroup program",
        }
    }
}

/// Where in a cgroup a cgroup program attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupHook {
    /// `connect()` of an IPv4 socket (`cgroup/connect4`).
    Connect4,
    Connect6,
    /// `sendmsg()` with an address, on an IPv4 UDP socket (`cgroup/sendmsg4`).
    Sendmsg4,
    Sendmsg6,
    /// Every packet a socket receives (`cgroup_skb/ingress`).
    Ingress,
    /// Every packet a socket sends (`cgroup_skb/egress`).
    Egress,
}

impl CgroupHook {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect4 => "connect4",
            Self::Connect6 => "connect6",
            Self::Sendmsg4 => "sendmsg4",
            Self::Sendmsg6 => "sendmsg6",
            Self::Ingress => "ingress",
            Self::Egress => "egress",
        }
    }
}

/// One program and the kernel hook it attaches to.
#[derive(Debug, Clone, Copy)]
pub enum Hook {
    /// A classic tracepoint (the program and fields are in the hook).
    Tracepoint(&'static TracepointHook),
    /// The raw form of a classic tracepoint: attached by name, no format read.
    RawTracepoint {
        program: &'static str,
        of: &'static TracepointHook,
    },
    /// A kprobe on a kernel function's entry.
    Kprobe {
        program: &'static str,
        function: &'static str,
    },
    /// A kretprobe on a kernel function's return.
    Kretprobe {
        program: &'static str,
        function: &'static str,
    },
    /// An fexit program on a kernel function, found in the kernel's BTF.
    Fexit {
        program: &'static str,
        function: &'static str,
    },
    /// A cgroup program, attached to the cgroup v2 root or to each `--cgroup`.
    Cgroup {
        program: &'static str,
        attach: CgroupHook,
    },
}

impl Hook {
    /// The program's name in the eBPF object.
    pub const fn program(&self) -> &'static str {
        match self {
            Self::Tracepoint(hook) => hook.program,
            Self::RawTracepoint { program, .. }
            | Self::Kprobe { program, .. }
            | Self::Kretprobe { program, .. }
            | Self::Fexit { program, .. }
            | Self::Cgroup { program, .. } => program,
        }
    }

    pub const fn kind(&self) -> HookKind {
        match self {
            Self::Tracepoint(_) => HookKind::Tracepoint,
            Self::RawTracepoint { .. } => HookKind::RawTracepoint,
            Self::Kprobe { .. } | Self::Kretprobe { .. } => HookKind::Kprobe,
            Self::Fexit { .. } => HookKind::Fexit,
            Self::Cgroup { .. } => HookKind::Cgroup,
        }
    }

    /// What it is, in a sentence: `kretprobe`, `fexit`, `raw tracepoint` …
    pub const fn noun(&self) -> &'static str {
        match self {
            Self::Kretprobe { .. } => "kretprobe",
            _ => self.kind().noun(),
        }
    }

    /// How the plan shows it, e.g. `raw tracepoint sock:inet_sock_set_state`
    /// or `kretprobe tcp_retransmit_skb`.
    pub fn describe(&self) -> String {
        match self {
            Self::Tracepoint(hook) => format!("tracepoint {}:{}", hook.category, hook.name),
            Self::RawTracepoint { of, .. } => {
                format!("raw tracepoint {}:{}", of.category, of.name)
            }
            Self::Kprobe { function, .. } => format!("kprobe {function}"),
            Self::Kretprobe { function, .. } => format!("kretprobe {function}"),
            Self::Fexit { function, .. } => format!("fexit {function}"),
            Self::Cgroup { attach, .. } => format!("cgroup {}", attach.name()),
        }
    }
}

/// One way to provide a source: hooks of one kind, in attach order.
#[derive(Debug, Clone, Copy)]
pub struct Alternative {
    pub kind: HookKind,
    pub hooks: &'static [Hook],
}

/// How a source's alternative is picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// `--hooks KIND` picks it; `auto` takes the cheapest that works here.
    User,
    /// The same kind as the state source when it has that kind, else its
    /// last alternative (teardown follows state changes).
    LikeState,
    /// Its only alternative, in every plan.
    Fixed,
    /// The cheapest alternative that works, or none: the source is then off,
    /// and the plan says why. Alternatives of kind `costly` tax every
    /// process on the host and are used only when the user turns the source
    /// on (`--syscall-errors on`). `--hooks KIND` picks this source's cheap
    /// alternative of that kind, when it has one.
    Optional { costly: HookKind },
    /// The cheapest alternative that works, or none: the source is then off,
    /// and the plan says why. For data that is worth having where the
    /// kernel allows and costs nothing to the rest of the host.
    BestEffort,
}

/// One kind of data and the alternatives that can provide it.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// What it provides, for messages.
    pub name: &'static str,
    pub pick: Pick,
    /// Cheapest first.
    pub alternatives: &'static [Alternative],
}

impl Source {
    /// The alternative of this kind, if the source has one.
    pub fn alternative(&self, kind: HookKind) -> Option<&'static Alternative> {
        self.alternatives.iter().find(|a| a.kind == kind)
    }
}

const fn of_tracepoints(hooks: &'static [Hook]) -> Alternative {
    Alternative {
        kind: HookKind::Tracepoint,
        hooks,
    }
}

/// Socket teardown: forgets owners. Attached first, so that no owner outlives
/// its socket while the rest attaches.
pub const TEARDOWN: Source = Source {
    name: "teardown",
    pick: Pick::LikeState,
    alternatives: &[
        Alternative {
            kind: HookKind::RawTracepoint,
            hooks: &[Hook::RawTracepoint {
                program: "raw_tcp_destroy_sock",
                of: &DESTROY,
            }],
        },
        of_tracepoints(&[Hook::Tracepoint(&DESTROY)]),
    ],
};

/// State changes. They record the owners every later event is attributed
/// to. The connect probes record owners that `tcp_set_state` finds;
/// `inet_csk_listen_start` covers CLOSE→LISTEN, which `tcp_set_state` never
/// sees.
pub const STATE_SOURCE: Source = Source {
    name: "state changes",
    pick: Pick::User,
    alternatives: &[
        Alternative {
            kind: HookKind::RawTracepoint,
            hooks: &[Hook::RawTracepoint {
                program: "raw_inet_sock_set_state",
                of: &STATE,
            }],
        },
        of_tracepoints(&[Hook::Tracepoint(&STATE)]),
        Alternative {
            kind: HookKind::Kprobe,
            // Return probes before their entry probes, so that no entry is
            // left waiting for a return.
            hooks: &[
                Hook::Kprobe {
                    program: "kprobe_tcp_v4_connect",
                    function: "tcp_v4_connect",
                },
                Hook::Kprobe {
                    program: "kprobe_tcp_v6_connect",
                    function: "tcp_v6_connect",
                },
                Hook::Kretprobe {
                    program: "kretprobe_inet_csk_listen_start",
                    function: "inet_csk_listen_start",
                },
                Hook::Kprobe {
                    program: "kprobe_inet_csk_listen_start",
                    function: "inet_csk_listen_start",
                },
                Hook::Kprobe {
                    program: "kprobe_tcp_set_state",
                    function: "tcp_set_state",
                },
            ],
        },
    ],
};

/// Retransmits of data and SYNs. Both functions, at entry and return: see
/// `tracer-ebpf/src/probes/kprobe_retransmit.rs`.
pub const RETRANSMIT_SOURCE: Source = Source {
    name: "retransmits",
    pick: Pick::User,
    alternatives: &[
        Alternative {
            kind: HookKind::RawTracepoint,
            hooks: &[Hook::RawTracepoint {
                program: "raw_tcp_retransmit_skb",
                of: &RETRANSMIT,
            }],
        },
        of_tracepoints(&[Hook::Tracepoint(&RETRANSMIT)]),
        Alternative {
            kind: HookKind::Kprobe,
            hooks: &[
                Hook::Kretprobe {
                    program: "kretprobe_tcp_retransmit_skb",
                    function: "tcp_retransmit_skb",
                },
                Hook::Kretprobe {
                    program: "kretprobe_tcp_retransmit_skb_inner",
                    function: "__tcp_retransmit_skb",
                },
                Hook::Kprobe {
                    program: "kprobe_tcp_retransmit_skb",
                    function: "tcp_retransmit_skb",
                },
                Hook::Kprobe {
                    program: "kprobe_tcp_retransmit_skb_inner",
                    function: "__tcp_retransmit_skb",
                },
            ],
        },
    ],
};

/// SYN-ACK retransmits and resets sent and received.
pub const RESET_SOURCE: Source = Source {
    name: "SYN-ACK retransmits and resets",
    pick: Pick::Fixed,
    alternatives: &[of_tracepoints(&[
        Hook::Tracepoint(&RETRANSMIT_SYNACK),
        Hook::Tracepoint(&SEND_RESET),
        Hook::Tracepoint(&RECEIVE_RESET),
    ])],
};

/// Failed network syscalls, by errno: optional, as the tracepoints that see
/// them on every kernel tax every syscall on the host.
pub const SYSCALL_SOURCE: Source = Source {
    name: "syscall errors",
    pick: Pick::Optional {
        costly: HookKind::Tracepoint,
    },
    alternatives: &[
        Alternative {
            kind: HookKind::Fexit,
            hooks: &[
                Hook::Fexit {
                    program: "fexit_sys_socket",
                    function: syscall_function!("socket"),
                },
                Hook::Fexit {
                    program: "fexit_sys_connect",
                    function: syscall_function!("connect"),
                },
                Hook::Fexit {
                    program: "fexit_sys_accept",
                    function: syscall_function!("accept"),
                },
                Hook::Fexit {
                    program: "fexit_sys_accept4",
                    function: syscall_function!("accept4"),
                },
                Hook::Fexit {
                    program: "fexit_sys_bind",
                    function: syscall_function!("bind"),
                },
                Hook::Fexit {
                    program: "fexit_sys_listen",
                    function: syscall_function!("listen"),
                },
            ],
        },
        Alternative {
            kind: HookKind::Kprobe,
            hooks: &[
                Hook::Kretprobe {
                    program: "kretprobe_sys_socket",
                    function: syscall_function!("socket"),
                },
                Hook::Kretprobe {
                    program: "kretprobe_sys_connect",
                    function: syscall_function!("connect"),
                },
                Hook::Kretprobe {
                    program: "kretprobe_sys_accept",
                    function: syscall_function!("accept"),
                },
                Hook::Kretprobe {
                    program: "kretprobe_sys_accept4",
                    function: syscall_function!("accept4"),
                },
                Hook::Kretprobe {
                    program: "kretprobe_sys_bind",
                    function: syscall_function!("bind"),
                },
                Hook::Kretprobe {
                    program: "kretprobe_sys_listen",
                    function: syscall_function!("listen"),
                },
            ],
        },
        of_tracepoints(&[
            Hook::Tracepoint(&SYS_EXIT[0]),
            Hook::Tracepoint(&SYS_EXIT[1]),
            Hook::Tracepoint(&SYS_EXIT[2]),
            Hook::Tracepoint(&SYS_EXIT[3]),
            Hook::Tracepoint(&SYS_EXIT[4]),
            Hook::Tracepoint(&SYS_EXIT[5]),
        ]),
    ],
};

/// Errors the kernel reports on sockets: resets and timeouts of established
/// connections. Needs the raw tracepoint (the socket pointer, read through
/// BTF); without it, off.
pub const SOCKET_ERROR_SOURCE: Source = Source {
    name: "socket errors",
    pick: Pick::BestEffort,
    alternatives: &[Alternative {
        kind: HookKind::RawTracepoint,
        hooks: &[Hook::RawTracepoint {
            program: "raw_inet_sk_error_report",
            of: &ERROR_REPORT,
        }],
    }],
};

/// TCP packets the kernel dropped, with the reason. Needs the raw tracepoint
/// (the `sk_buff` read through BTF); without it, off.
pub const DROP_SOURCE: Source = Source {
    name: "drops",
    pick: Pick::BestEffort,
    alternatives: &[Alternative {
        kind: HookKind::RawTracepoint,
        hooks: &[Hook::RawTracepoint {
            program: "raw_kfree_skb",
            of: &KFREE_SKB,
        }],
    }],
};

const fn cgroup(program: &'static str, attach: CgroupHook) -> Hook {
    Hook::Cgroup { program, attach }
}

/// DNS queries and answers over port 53, by process. cgroup programs on the
/// cgroup v2 root (or each `--cgroup`): the connect and sendmsg programs
/// record which process owns a socket that talks to port 53, the packet
/// programs read its DNS messages. Without cgroup v2, off.
pub const DNS_SOURCE: Source = Source {
    name: "DNS",
    pick: Pick::BestEffort,
    alternatives: &[Alternative {
        kind: HookKind::Cgroup,
        // Owners first, so that no query goes out before its owner is known.
        hooks: &[
            cgroup("dns_connect4", CgroupHook::Connect4),
            cgroup("dns_connect6", CgroupHook::Connect6),
            cgroup("dns_sendmsg4", CgroupHook::Sendmsg4),
            cgroup("dns_sendmsg6", CgroupHook::Sendmsg6),
            cgroup("dns_egress", CgroupHook::Egress),
            cgroup("dns_ingress", CgroupHook::Ingress),
        ],
    }],
};

/// Every source, in attach order: teardown first, then the owner-recording
/// state changes, then the consumers of owners.
pub const SOURCES: &[Source] = &[
    TEARDOWN,
    STATE_SOURCE,
    RETRANSMIT_SOURCE,
    RESET_SOURCE,
    SOCKET_ERROR_SOURCE,
    DROP_SOURCE,
    DNS_SOURCE,
    SYSCALL_SOURCE,
];

/// Every classic tracepoint a plan may attach, in attach order (each once),
/// from [`SOURCES`].
pub fn tracepoints() -> impl Iterator<Item = &'static TracepointHook> {
    let all = SOURCES
        .iter()
        .flat_map(|s| s.alternatives)
        .flat_map(|a| a.hooks)
        .filter_map(|hook| match hook {
            Hook::Tracepoint(tracepoint) => Some(*tracepoint),
            _ => None,
        });
    let mut seen: Vec<&'static str> = Vec::new();
    all.filter(move |t| {
        let new = !seen.contains(&t.program);
        seen.push(t.program);
        new
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_are_of_their_kind() {
        for source in SOURCES {
            for alternative in source.alternatives {
                for hook in alternative.hooks {
                    assert_eq!(hook.kind(), alternative.kind, "{}", hook.program());
                }
            }
            if source.pick == Pick::Fixed {
                assert_eq!(source.alternatives.len(), 1, "{}", source.name);
            }
        }
    }

    /// Each program, map and global named here is in the eBPF object.
    #[test]
    fn names_exist_in_the_object() {
        let object = aya_obj::Object::parse(super::super::OBJECT).expect("the eBPF object parses");
        for hook in SOURCES
            .iter()
            .flat_map(|s| s.alternatives)
            .flat_map(|a| a.hooks)
        {
            assert!(
                object.programs.contains_key(hook.program()),
                "no program {}",
                hook.program()
            );
        }
        use tracer_common::maps;
        for map in [
            maps::EVENTS,
            maps::OWNERS,
            maps::LISTENERS,
            maps::PREEXISTING,
            maps::TRACED_PIDS,
            maps::COUNTERS,
            maps::OWNER_COUNT,
            maps::LOST,
            maps::DNS_SOCKETS,
        ] {
            assert!(object.maps.contains_key(map), "no map {map}");
        }
    }

    /// Each load-time global the loader sets is a symbol of the eBPF object.
    #[test]
    fn globals_exist_in_the_object() {
        use object::{Object as _, ObjectSymbol as _};
        use tracer_common::maps;
        let file = object::File::parse(super::super::OBJECT).expect("the eBPF object parses");
        let symbols: Vec<&str> = file.symbols().filter_map(|s| s.name().ok()).collect();
        let globals = [
            maps::GLOBAL_FILTER_PIDS,
            maps::GLOBAL_OWNERS_CAPACITY,
            maps::GLOBAL_RETRANSMIT_HAS_ERR,
            maps::GLOBAL_SOCK_LAYOUT,
            maps::GLOBAL_NETNS_LAYOUT,
            maps::GLOBAL_ACCEPT_LAYOUT,
            maps::GLOBAL_SK_ERR_OFFSET,
            maps::GLOBAL_SK_BACKLOG_OFFSET,
            maps::GLOBAL_SKB_LAYOUT,
            maps::GLOBAL_PREEXISTING_SEEDED,
            maps::GLOBAL_DNS_BY_PID,
        ];
        for global in globals.into_iter().chain(tracepoints().map(|t| t.global)) {
            assert!(symbols.contains(&global), "no global {global}");
        }
    }
}
