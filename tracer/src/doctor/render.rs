//! `tracer doctor`'s two forms of one [`Report`]: the text for people and one
//! JSON object for scripts. Pure: no I/O.

use std::fmt::Write as _;

use super::report::Report;

/// The report as people read it, one fact per line.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };

    line("tracer doctor".into());
    line(format!("  kernel        {}", report.kernel.release));
    if report.kernel.too_old {
        line("  kernel        too old: tracer needs 5.8+ (BPF ring buffer)".into());
    }
    if report.missing_capabilities.is_empty() {
        line("  privileges    ok (root or CAP_BPF + CAP_PERFMON)".into());
    } else {
        line(format!(
            "  privileges    missing {} — run with sudo",
            report.missing_capabilities.join(", ")
        ));
    }
    match &report.tracefs {
        Ok(t) if t.mounted_now => line(format!(
            "  tracefs       was not mounted; mounted it at {}",
            t.path
        )),
        Ok(t) => line(format!("  tracefs       mounted at {}", t.path)),
        Err(e) => line(format!("  tracefs       {e}")),
    }
    line(format!(
        "  BTF           {}",
        report.btf.as_deref().unwrap_or("absent (fentry needs it)")
    ));
    line(format!(
        "  lockdown      {}",
        report.lockdown.as_deref().unwrap_or("not reported")
    ));
    line(match &report.sock_diag {
        Ok(d) => format!(
            "  sock_diag     yes ({} TCP sockets here): RTT, bytes and backlogs",
            d.sockets
        ),
        Err(e) => format!(
            "  sock_diag     no: {e}; sockets are read from /proc, without RTT, bytes or backlogs"
        ),
    });

    line("tracepoints".into());
    for tp in &report.tracepoints {
        match &tp.result {
            Ok(()) => line(format!("  {:<32} ok", tp.name)),
            Err(e) => line(format!("  {:<32} {e}", tp.name)),
        }
    }

    line("program kinds (loaded and attached here, then detached)".into());
    for p in &report.program_kinds {
        match &p.result {
            Ok(a) => line(format!("  {:<15} yes ({})", p.kind, a.detail)),
            Err(e) => line(format!("  {:<15} no: {e}", p.kind)),
        }
    }

    line("hook plans (--hooks; state changes and retransmits, the rest is tracepoints)".into());
    for plan in &report.hook_plans {
        match &plan.result {
            Ok(l) => line(format!(
                "  {:<15} loads ({} programs attached)",
                plan.hooks, l.programs
            )),
            Err(e) => line(format!("  {:<15} does not load: {e}", plan.hooks)),
        }
    }
    if let Some(offsets) = &report.sock_offsets {
        let mut text = format!("  {:<15} struct sock offsets from BTF: ", "");
        for (i, (name, offset)) in offsets.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            // Writing to a String cannot fail.
            let _ = write!(text, "{sep}{name} {offset}");
        }
        line(text);
    }

    match &report.plan {
        Ok(plan) => {
            line(format!("plan (--hooks auto): {}", plan.description));
            for program in &plan.programs {
                line(format!("  {program}"));
            }
            line(format!("  {}", plan.connect_errors));
            line(format!("  {}", plan.optional_sources));
        }
        Err(e) => line(format!("plan (--hooks auto): none: {e}")),
    }

    if report.can_run() {
        line("missing: nothing — tracer can run here".into());
    } else {
        line(format!("missing: {}", report.missing.join("; ")));
    }
    out
}

/// The report as one JSON object (pretty-printed, ending in a newline).
pub fn render_json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot render the report: {e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::doctor::report::{
        Attached, ChosenPlan, HookPlan, Kernel, Loads, ProgramKind, SockDiag, SockOffsets, Tracefs,
        Tracepoint,
    };

    /// A host like the development VM: everything but kprobes and fentry.
    fn healthy() -> Report {
        Report {
            kernel: Kernel {
                release: "6.18.44".into(),
                too_old: false,
            },
            missing_capabilities: vec![],
            tracefs: Ok(Tracefs {
                path: "/sys/kernel/tracing".into(),
                mounted_now: false,
            }),
            btf: Some("/sys/kernel/btf/vmlinux".into()),
            lockdown: Some("integrity".into()),
            sock_diag: Ok(SockDiag { sockets: 12 }),
            tracepoints: vec![
                Tracepoint {
                    name: "sock:inet_sock_set_state".into(),
                    result: Ok(()),
                },
                Tracepoint {
                    name: "tcp:tcp_retransmit_skb".into(),
                    result: Ok(()),
                },
            ],
            program_kinds: vec![
                ProgramKind {
                    kind: "tracepoint".into(),
                    result: Ok(Attached {
                        detail: "11 programs attached".into(),
                    }),
                },
                ProgramKind {
                    kind: "kprobe".into(),
                    result: Err("this kernel has no kprobes (CONFIG_KPROBES is not set)".into()),
                },
            ],
            hook_plans: vec![
                HookPlan {
                    hooks: "raw-tracepoint".into(),
                    result: Ok(Loads { programs: 11 }),
                },
                HookPlan {
                    hooks: "kprobe".into(),
                    result: Err("no kprobes".into()),
                },
            ],
            sock_offsets: Some(SockOffsets(vec![("state", 18), ("family", 16)])),
            plan: Ok(ChosenPlan {
                name: "raw-tracepoint".into(),
                description: "the raw-tracepoint plan (state changes and retransmits from raw \
                              tracepoints, the rest from tracepoints)"
                    .into(),
                programs: vec![
                    "raw tracepoint tcp:tcp_destroy_sock".into(),
                    "raw tracepoint sock:inet_sock_set_state".into(),
                ],
                connect_errors: "connect errors from sk_err at offset 284 (BTF)".into(),
                optional_sources: "syscall errors from fexits".into(),
            }),
            missing: vec![],
        }
    }

    #[test]
    fn text_of_a_healthy_host() {
        let expected = "\
tracer doctor
  kernel        6.18.44
  privileges    ok (root or CAP_BPF + CAP_PERFMON)
  tracefs       mounted at /sys/kernel/tracing
  BTF           /sys/kernel/btf/vmlinux
  lockdown      integrity
  sock_diag     yes (12 TCP sockets here): RTT, bytes and backlogs
tracepoints
  sock:inet_sock_set_state         ok
  tcp:tcp_retransmit_skb           ok
program kinds (loaded and attached here, then detached)
  tracepoint      yes (11 programs attached)
  kprobe          no: this kernel has no kprobes (CONFIG_KPROBES is not set)
hook plans (--hooks; state changes and retransmits, the rest is tracepoints)
  raw-tracepoint  loads (11 programs attached)
  kprobe          does not load: no kprobes
                  struct sock offsets from BTF: state 18, family 16
plan (--hooks auto): the raw-tracepoint plan (state changes and retransmits from raw tracepoints, the rest from tracepoints)
  raw tracepoint tcp:tcp_destroy_sock
  raw tracepoint sock:inet_sock_set_state
  connect errors from sk_err at offset 284 (BTF)
  syscall errors from fexits
missing: nothing — tracer can run here
";
        assert_eq!(render_text(&healthy()), expected);
    }

    #[test]
    fn text_of_a_host_that_cannot_run_tracer() {
        let mut report = healthy();
        report.kernel.too_old = true;
        report.missing_capabilities = vec!["CAP_BPF".into(), "CAP_PERFMON".into()];
        report.tracefs = Err("cannot mount tracefs: EPERM".into());
        report.btf = None;
        report.lockdown = None;
        report.tracepoints[1].result = Err("no field `err`".into());
        report.sock_offsets = None;
        report.plan = Err("permission denied".into());
        report.missing = vec!["Linux 5.8 or newer".into(), "tracefs".into()];
        let text = render_text(&report);
        for expected in [
            "  kernel        too old: tracer needs 5.8+ (BPF ring buffer)\n",
            "  privileges    missing CAP_BPF, CAP_PERFMON — run with sudo\n",
            "  tracefs       cannot mount tracefs: EPERM\n",
            "  BTF           absent (fentry needs it)\n",
            "  lockdown      not reported\n",
            "  tcp:tcp_retransmit_skb           no field `err`\n",
            "plan (--hooks auto): none: permission denied\n",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        assert!(!text.contains("struct sock offsets"), "{text}");
        assert!(
            text.ends_with("\nmissing: Linux 5.8 or newer; tracefs\n"),
            "{text}"
        );

        report.tracefs = Ok(Tracefs {
            path: "/sys/kernel/tracing".into(),
            mounted_now: true,
        });
        assert!(
            render_text(&report)
                .contains("  tracefs       was not mounted; mounted it at /sys/kernel/tracing\n")
        );
    }

    #[test]
    fn json_has_the_same_facts() {
        let json: Value =
            serde_json::from_str(&render_json(&healthy())).expect("doctor JSON parses");
        assert_eq!(
            json,
            json!({
                "kernel": {"release": "6.18.44", "too_old": false},
                "missing_capabilities": [],
                "tracefs": {"ok": true, "path": "/sys/kernel/tracing", "mounted_now": false},
                "btf": "/sys/kernel/btf/vmlinux",
                "lockdown": "integrity",
                "sock_diag": {"ok": true, "sockets": 12},
                "tracepoints": [
                    {"name": "sock:inet_sock_set_state", "ok": true},
                    {"name": "tcp:tcp_retransmit_skb", "ok": true},
                ],
                "program_kinds": [
                    {"kind": "tracepoint", "ok": true, "detail": "11 programs attached"},
                    {
                        "kind": "kprobe",
                        "ok": false,
                        "error": "this kernel has no kprobes (CONFIG_KPROBES is not set)",
                    },
                ],
                "hook_plans": [
                    {"hooks": "raw-tracepoint", "ok": true, "programs": 11},
                    {"hooks": "kprobe", "ok": false, "error": "no kprobes"},
                ],
                "sock_offsets": {"state": 18, "family": 16},
                "plan": {
                    "ok": true,
                    "name": "raw-tracepoint",
                    "description": "the raw-tracepoint plan (state changes and retransmits \
                                    from raw tracepoints, the rest from tracepoints)",
                    "programs": [
                        "raw tracepoint tcp:tcp_destroy_sock",
                        "raw tracepoint sock:inet_sock_set_state",
                    ],
                    "connect_errors": "connect errors from sk_err at offset 284 (BTF)",
                    "optional_sources": "syscall errors from fexits",
                },
                "missing": [],
            })
        );
    }

    #[test]
    fn json_of_failures() {
        let mut report = healthy();
        report.tracefs = Err("cannot mount tracefs".into());
        report.btf = None;
        report.sock_offsets = None;
        report.plan = Err("permission denied".into());
        report.missing = vec!["a working hook plan".into()];
        let text = render_json(&report);
        assert!(text.ends_with("}\n"), "{text}");
        let json: Value = serde_json::from_str(&text).expect("doctor JSON parses");
        assert_eq!(
            json["tracefs"],
            json!({"ok": false, "error": "cannot mount tracefs"})
        );
        assert_eq!(json["btf"], Value::Null);
        assert_eq!(json["sock_offsets"], Value::Null);
        assert_eq!(
            json["plan"],
            json!({"ok": false, "error": "permission denied"})
        );
        assert_eq!(json["missing"], json!(["a working hook plan"]));
    }
}
