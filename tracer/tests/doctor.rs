//! `tracer doctor` on the running kernel: it must find by trying which program
//! kinds and which hook plans load, and end with the plan auto picks.

mod support;

use std::process::Command;

use support::{TRACER, kernel_tests_enabled};

#[test]
fn doctor_reports_kinds_and_plan() {
    if !kernel_tests_enabled() {
        return;
    }
    let out = Command::new(TRACER)
        .arg("doctor")
        .output()
        .expect("run doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("tracepoint      yes"), "{text}");
    // Every plan is tried; auto picks raw tracepoints where the kernel has BTF.
    assert!(
        text.contains("hook plans (--hooks;")
            && text.contains("\n  raw-tracepoint  loads (")
            && text.contains("\n  tracepoint      loads ("),
        "{text}"
    );
    assert!(
        text.contains(
            "plan (--hooks auto): the raw-tracepoint plan (state changes and retransmits from raw tracepoints, the rest from tracepoints)\n  raw tracepoint tcp:tcp_destroy_sock\n  raw tracepoint sock:inet_sock_set_state\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("struct sock offsets from BTF: state "),
        "{text}"
    );
    assert!(text.contains("missing: nothing"), "{text}");
    let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    if kprobes {
        assert!(text.contains("\n  kprobe          loads ("), "{text}");
    } else {
        assert!(
            text.contains("\n  kprobe          does not load: ") && text.contains("CONFIG_KPROBES"),
            "{text}"
        );
    }
    // Inside the 6.1 test VM (`cargo xtask test --vm`) kprobes and fentry exist.
    if std::env::var("TRACER_TEST_KERNEL").is_ok_and(|v| v == "vm") {
        assert!(kprobes, "no kprobes in the VM");
        assert!(text.contains("kprobe          yes"), "{text}");
        assert!(text.contains("fentry          yes"), "{text}");
    }
}
