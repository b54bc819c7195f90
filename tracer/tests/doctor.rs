//! `tracer doctor` on the running kernel: it must find by trying which program
//! kinds and which hook plans load, and end with the plan auto picks.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{TRACER, kernel_tests_enabled};

/// Runs `tracer doctor ARGS`, checks that it succeeds, returns its stdout.
fn doctor(args: &[&str]) -> String {
    let out = Command::new(TRACER)
        .arg("doctor")
        .args(args)
        .output()
        .expect("run doctor");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn doctor_reports_kinds_and_plan() {
    if !kernel_tests_enabled() {
        return;
    }
    let text = doctor(&[]);
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

    // `--json`: the same facts as one JSON object.
    let json: Value = serde_json::from_str(&doctor(&["--json"])).expect("doctor --json is JSON");
    assert_eq!(json["missing"], serde_json::json!([]), "{json:#}");
    let plan = &json["plan"];
    assert_eq!(plan["ok"], true, "{json:#}");
    assert_eq!(plan["name"], "raw-tracepoint", "{json:#}");
    let programs: Vec<&str> = plan["programs"]
        .as_array()
        .expect("plan.programs")
        .iter()
        .map(|p| p.as_str().expect("program"))
        .collect();
    assert!(programs.len() > 2, "{json:#}");
    // The text shows the same plan, program for program.
    let mut block = format!(
        "plan (--hooks auto): {}\n",
        plan["description"].as_str().expect("plan.description")
    );
    for program in &programs {
        block.push_str(&format!("  {program}\n"));
    }
    block.push_str(&format!(
        "  {}\n",
        plan["connect_errors"]
            .as_str()
            .expect("plan.connect_errors")
    ));
    assert!(text.contains(&block), "{block}\nnot in\n{text}");
    for hook_plan in json["hook_plans"].as_array().expect("hook_plans") {
        let hooks = hook_plan["hooks"].as_str().expect("hooks");
        if hook_plan["ok"] == true {
            assert!(
                text.contains(&format!(
                    "\n  {hooks:<15} loads ({} programs attached)\n",
                    hook_plan["programs"]
                )),
                "{hook_plan}\n{text}"
            );
        } else {
            assert!(
                text.contains(&format!("\n  {hooks:<15} does not load: ")),
                "{hook_plan}\n{text}"
            );
        }
    }
    assert_eq!(json["program_kinds"][0]["kind"], "tracepoint", "{json:#}");
    assert_eq!(json["program_kinds"][0]["ok"], true, "{json:#}");
}
