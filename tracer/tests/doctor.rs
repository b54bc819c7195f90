//! `tracer doctor` on the running kernel: it must find by trying which program
//! kinds load, and end with a plan.

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
    assert!(text.contains("plan\n  tracepoint "), "{text}");
    assert!(text.contains("missing: nothing"), "{text}");
    // Inside the 6.1 test VM (`cargo xtask test --vm`) kprobes and fentry exist.
    if std::env::var("TRACER_TEST_KERNEL").is_ok_and(|v| v == "vm") {
        assert!(text.contains("kprobe          yes"), "{text}");
        assert!(text.contains("fentry          yes"), "{text}");
    }
}
