//! The hooks of tracer's plan, as `tracer doctor` lists them, and what the
//! peers attach for them: the probes of a bpftrace script counting events per
//! pid, and the arguments of `noop-hooks`; and where cgroup programs attach.

use std::path::PathBuf;

/// One hook of the plan `tracer doctor` lists (`  raw tracepoint tcp:tcp_destroy_sock`,
/// `  tracepoint sock:...`, `  kprobe tcp_set_state`, `  cgroup ingress on
/// /sys/fs/cgroup/unified`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// `raw tracepoint`, `tracepoint`, `kprobe`, `kretprobe` or `cgroup`.
    pub kind: &'static str,
    /// `CATEGORY:NAME` for tracepoints, the function for probes, where in
    /// the cgroup for cgroup programs (`ingress`, `connect4`, …).
    pub target: String,
}

/// Where in a cgroup a cgroup program of tracer's plan attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupHook {
    /// As `tracer doctor` names it (`cgroup ingress`) and `noop-hooks`
    /// takes it (`cgroup:ingress`).
    pub name: &'static str,
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// `enum bpf_attach_type`.
    pub attach_type: u32,
}

const BPF_PROG_TYPE_CGROUP_SKB: u32 = 8;
const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;

/// Every place tracer's plan may attach a cgroup program.
pub const CGROUP_HOOKS: [CgroupHook; 6] = [
    cgroup("ingress", BPF_PROG_TYPE_CGROUP_SKB, 0),
    cgroup("egress", BPF_PROG_TYPE_CGROUP_SKB, 1),
    cgroup("connect4", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 10),
    cgroup("connect6", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 11),
    cgroup("sendmsg4", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 14),
    cgroup("sendmsg6", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 15),
];

const fn cgroup(name: &'static str, prog_type: u32, attach_type: u32) -> CgroupHook {
    CgroupHook {
        name,
        prog_type,
        attach_type,
    }
}

impl CgroupHook {
    /// The one called `name`.
    pub fn named(name: &str) -> Option<Self> {
        CGROUP_HOOKS.iter().copied().find(|h| h.name == name)
    }
}

impl Hook {
    /// The bpftrace probe for it; `None` for cgroup programs, which bpftrace
    /// has no probe for. The peer counts on classic tracepoints, as a
    /// bpftrace user would write it, where tracer uses their raw form.
    pub fn bpftrace_probe(&self) -> Option<String> {
        let kind = match self.kind {
            "raw tracepoint" => "tracepoint",
            "cgroup" => return None,
            kind => kind,
        };
        Some(format!("{kind}:{}", self.target))
    }

    /// The `noop-hooks` argument for it; `None` for probes, which it does not attach.
    pub fn noop_arg(&self) -> Option<String> {
        match self.kind {
            "raw tracepoint" => Some(format!(
                "raw:{}",
                self.target.rsplit(':').next().unwrap_or_default()
            )),
            "tracepoint" => Some(format!("tracepoint:{}", self.target)),
            "cgroup" => Some(format!("cgroup:{}", self.target)),
            _ => None,
        }
    }

    /// What it is and where: `cgroup ingress`, `raw tracepoint tcp:tcp_destroy_sock`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.kind, self.target)
    }
}

/// Where the cgroup v2 hierarchy is mounted, from the text of /proc/mounts:
/// `/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid host. Programs
/// attached to its root see every process of the host.
pub fn cgroup_v2_root_in(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, dir, kind) = (fields.next()?, fields.next()?, fields.next()?);
        (kind == "cgroup2").then(|| PathBuf::from(dir))
    })
}

/// The hooks of the plan `tracer doctor` lists, and the plan lines that name a
/// hook of another kind (fentry and the like).
pub fn hooks_from_doctor(text: &str) -> (Vec<Hook>, Vec<String>) {
    let mut hooks = Vec::new();
    let mut other = Vec::new();
    let plan = text
        .lines()
        .skip_while(|l| !l.starts_with("plan ("))
        .skip(1)
        .take_while(|l| l.starts_with("  "));
    for line in plan.map(str::trim) {
        // Lines such as `connect errors from ...` describe, not attach.
        let first = line.split(' ').next().unwrap_or_default();
        if !matches!(
            first,
            "raw" | "tracepoint" | "kprobe" | "kretprobe" | "fentry" | "fexit" | "cgroup"
        ) {
            continue;
        }
        if first == "cgroup" {
            // `cgroup ingress on /sys/fs/cgroup/unified` (or `on N cgroups`).
            match line.split(' ').nth(1).and_then(CgroupHook::named) {
                Some(at) => hooks.push(Hook {
                    kind: "cgroup",
                    target: at.name.to_owned(),
                }),
                None => other.push(line.to_owned()),
            }
            continue;
        }
        let kind = match line.rsplit_once(' ') {
            Some(("raw tracepoint", _)) => "raw tracepoint",
            Some(("tracepoint", _)) => "tracepoint",
            Some(("kprobe", _)) => "kprobe",
            Some(("kretprobe", _)) => "kretprobe",
            _ => {
                other.push(line.to_owned());
                continue;
            }
        };
        let target = line.rsplit(' ').next().unwrap_or_default().to_owned();
        hooks.push(Hook { kind, target });
    }
    (hooks, other)
}

/// What the bpftrace script and `noop-hooks` print once every probe is attached
/// (the script's BEGIN probe runs after attaching).
pub const READY: &str = "bench: attached";

/// A bpftrace script counting events per pid on `probes`, and nothing else.
pub fn bpftrace_script(probes: &[String]) -> String {
    format!(
        "BEGIN {{ printf(\"{READY}\\n\"); }}\n\n{}\n{{ @[pid] = count(); }}\n",
        probes.join(",\n")
    )
}

/// The sum of the `@[pid]: count` lines bpftrace prints at exit.
pub fn bpftrace_total<'a>(lines: impl IntoIterator<Item = &'a str>) -> u64 {
    lines
        .into_iter()
        .filter(|line| line.starts_with("@["))
        .filter_map(|line| line.rsplit_once(": ")?.1.trim().parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_from_the_doctor_plan() {
        let text = "hook plans (--hooks; ...)\n  tracepoint      loads\n\
                    plan (--hooks auto): the raw-tracepoint plan (...)\n\
                    \x20 raw tracepoint tcp:tcp_destroy_sock\n\
                    \x20 tracepoint sock:inet_sock_set_state\n\
                    \x20 kretprobe tcp_retransmit_skb\n\
                    \x20 fentry tcp_connect\n\
                    \x20 cgroup ingress on /sys/fs/cgroup/unified\n\
                    \x20 cgroup connect4 on 2 cgroups\n\
                    \x20 cgroup v1\n\
                    \x20 connect errors from struct sock.sk_err (BTF offset 284)\n\
                    missing: nothing\n";
        let (hooks, other) = hooks_from_doctor(text);
        let probes: Vec<String> = hooks.iter().filter_map(Hook::bpftrace_probe).collect();
        assert_eq!(
            probes,
            vec![
                "tracepoint:tcp:tcp_destroy_sock",
                "tracepoint:sock:inet_sock_set_state",
                "kretprobe:tcp_retransmit_skb"
            ]
        );
        let noop: Vec<Option<String>> = hooks.iter().map(Hook::noop_arg).collect();
        assert_eq!(
            noop,
            vec![
                Some("raw:tcp_destroy_sock".to_owned()),
                Some("tracepoint:sock:inet_sock_set_state".to_owned()),
                None,
                Some("cgroup:ingress".to_owned()),
                Some("cgroup:connect4".to_owned()),
            ]
        );
        assert_eq!(other, vec!["fentry tcp_connect", "cgroup v1"]);
        assert_eq!(hooks_from_doctor("tracer: 3 events read"), (vec![], vec![]));
    }

    #[test]
    fn the_cgroup_v2_root_of_a_hybrid_host() {
        let hybrid = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nsdelegate 0 0\n";
        assert_eq!(
            cgroup_v2_root_in(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified = "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n";
        assert_eq!(
            cgroup_v2_root_in(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            cgroup_v2_root_in("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"),
            None
        );
    }

    #[test]
    fn script_counts_per_pid() {
        let script = bpftrace_script(&["tracepoint:a:b".into(), "tracepoint:c:d".into()]);
        assert_eq!(
            script,
            "BEGIN { printf(\"bench: attached\\n\"); }\n\ntracepoint:a:b,\ntracepoint:c:d\n\
             { @[pid] = count(); }\n"
        );
    }

    #[test]
    fn bpftrace_map_total() {
        let out = [
            "Attaching 13 probes...",
            "bench: attached",
            "",
            "@[1]: 5",
            "@[4242]: 120000",
        ];
        assert_eq!(bpftrace_total(out), 120_005);
    }
}
