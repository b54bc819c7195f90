//! `tracer doctor`: what this kernel supports, found by trying: each program
//! kind, each hook plan (`--hooks`), and the plan tracer will use.

use aya::{
    Btf, Ebpf, EbpfLoader,
    programs::{FEntry, KProbe, RawTracePoint},
};

use crate::{
    ebpf::{
        self, OBJECT,
        format::{Format, TRACEFS},
        hooks::{HookKind, TRACEPOINTS},
        loader::{self, Filters, Plan, Settings, permission_hint},
    },
    system,
};

/// Result of trying one program kind.
struct Probe {
    kind: &'static str,
    result: Result<String, String>,
}

/// Prints the report. Fails (exit 1) when tracer could not run here.
pub fn run() -> anyhow::Result<()> {
    let mut missing: Vec<String> = Vec::new();
    let release = system::kernel_release();
    println!("tracer doctor");
    println!("  kernel        {release}");
    match system::parse_release(&release) {
        Some(v) if v < (5, 8) => {
            println!("  kernel        too old: tracer needs 5.8+ (BPF ring buffer)");
            missing.push("Linux 5.8 or newer".into());
        }
        _ => {}
    }
    let caps = system::missing_capabilities();
    if caps.is_empty() {
        println!("  privileges    ok (root or CAP_BPF + CAP_PERFMON)");
    } else {
        println!(
            "  privileges    missing {} — run with sudo",
            caps.join(", ")
        );
        missing.push(format!("privileges ({}): run with sudo", caps.join(", ")));
    }
    match system::ensure_tracefs() {
        Ok(system::Tracefs::AlreadyMounted) => println!("  tracefs       mounted at {TRACEFS}"),
        Ok(system::Tracefs::MountedNow) => {
            println!("  tracefs       was not mounted; mounted it at {TRACEFS}")
        }
        Err(e) => {
            println!("  tracefs       {e}");
            missing.push("tracefs".into());
        }
    }
    println!(
        "  BTF           {}",
        if system::has_btf() {
            "/sys/kernel/btf/vmlinux"
        } else {
            "absent (fentry needs it)"
        }
    );
    println!(
        "  lockdown      {}",
        system::lockdown().unwrap_or_else(|| "not reported".into())
    );

    println!("tracepoints");
    for hook in TRACEPOINTS {
        let status = Format::read(hook.category, hook.name)
            .and_then(|f| f.offsets(hook.required, hook.optional).map(|_| ()));
        match status {
            Ok(()) => println!("  {:<32} ok", format!("{}:{}", hook.category, hook.name)),
            Err(e) => {
                println!("  {:<32} {e}", format!("{}:{}", hook.category, hook.name));
                missing.push(format!("tracepoint {}:{}", hook.category, hook.name));
            }
        }
    }

    // Each plan, loaded and attached for real, then detached.
    let settings = |hooks| Settings {
        filters: Filters::default(),
        ring_bytes: tracer_common::maps::DEFAULT_RING_BYTES,
        owner_map_size: tracer_common::maps::OWNERS_CAPACITY,
        hooks,
    };
    let tried: Vec<(HookKind, Result<Plan, String>)> = HookKind::ALL
        .into_iter()
        .map(|kind| {
            let plan = loader::load(&settings(Some(kind)))
                .map(|l| l.plan)
                .map_err(|e| e.to_string());
            (kind, plan)
        })
        .collect();

    println!("program kinds (loaded and attached here, then detached)");
    let tracepoint = match tried.iter().find(|(kind, _)| *kind == HookKind::Tracepoint) {
        Some((_, Ok(plan))) => Ok(format!("{} programs attached", plan.hooks.len())),
        Some((_, Err(e))) => Err(e.clone()),
        None => Err("not tried".to_owned()),
    };
    let mut probes = vec![Probe {
        kind: "tracepoint",
        result: tracepoint,
    }];
    probes.extend(try_other_kinds());
    for p in &probes {
        match &p.result {
            Ok(detail) => println!("  {:<15} yes ({detail})", p.kind),
            Err(e) => println!("  {:<15} no: {e}", p.kind),
        }
    }

    println!("hook plans (--hooks; state changes and retransmits, the rest is tracepoints)");
    for (kind, plan) in &tried {
        match plan {
            Ok(plan) => println!(
                "  {:<15} loads ({} programs attached)",
                kind.name(),
                plan.hooks.len()
            ),
            Err(e) => println!("  {:<15} does not load: {e}", kind.name()),
        }
    }
    let btf = ebpf::btf::Btf::kernel();
    if let Ok(o) = loader::sock_support(btf.as_ref(), "raw tracepoints") {
        println!(
            "  {:<15} struct sock offsets from BTF: state {}, family {}, protocol {}, \
             sport {}, dport {}, saddr {}, daddr {}, saddr_v6 {}, daddr_v6 {}",
            "",
            o.state,
            o.family,
            o.protocol,
            o.sport,
            o.dport,
            o.saddr,
            o.daddr,
            o.saddr_v6,
            o.daddr_v6
        );
    }
    drop(tried);

    let auto = loader::load(&settings(None));
    match &auto {
        Ok(l) => {
            println!("plan (--hooks auto): {}", l.plan);
            for line in &l.plan.hooks {
                println!("  {line}");
            }
            println!("  {}", l.connect_errors);
        }
        Err(e) => {
            println!("plan (--hooks auto): none: {e}");
            missing.push("a working hook plan".into());
        }
    }
    drop(auto);

    if missing.is_empty() {
        println!("missing: nothing — tracer can run here");
        Ok(())
    } else {
        println!("missing: {}", missing.join("; "));
        anyhow::bail!("tracer cannot run on this system as it is (see above)")
    }
}

/// Loads and attaches the `support_*` programs of each other kind.
fn try_other_kinds() -> Vec<Probe> {
    let mut ebpf = match EbpfLoader::new().load(OBJECT) {
        Ok(e) => e,
        Err(e) => {
            let msg = format!("cannot load the eBPF object: {e}");
            return ["raw tracepoint", "kprobe", "fentry"]
                .into_iter()
                .map(|kind| Probe {
                    kind,
                    result: Err(msg.clone()),
                })
                .collect();
        }
    };
    vec![
        Probe {
            kind: "raw tracepoint",
            result: try_raw_tracepoint(&mut ebpf),
        },
        Probe {
            kind: "kprobe",
            result: try_kprobe(&mut ebpf),
        },
        Probe {
            kind: "fentry",
            result: try_fentry(&mut ebpf),
        },
    ]
}

fn describe(e: aya::programs::ProgramError) -> String {
    let hint = permission_hint(&e);
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    format!("{text}{hint}")
}

fn try_raw_tracepoint(ebpf: &mut Ebpf) -> Result<String, String> {
    let p: &mut RawTracePoint = ebpf
        .program_mut("support_raw_tracepoint")
        .ok_or("program missing from object")?
        .try_into()
        .map_err(describe)?;
    p.load().map_err(describe)?;
    p.attach("inet_sock_set_state").map_err(describe)?;
    Ok("inet_sock_set_state".into())
}

fn try_kprobe(ebpf: &mut Ebpf) -> Result<String, String> {
    let p: &mut KProbe = ebpf
        .program_mut("support_kprobe")
        .ok_or("program missing from object")?
        .try_into()
        .map_err(describe)?;
    system::kprobes_available()?;
    p.load().map_err(describe)?;
    p.attach("tcp_v4_connect", 0).map_err(describe)?;
    Ok("tcp_v4_connect".into())
}

fn try_fentry(ebpf: &mut Ebpf) -> Result<String, String> {
    let btf = Btf::from_sys_fs().map_err(|e| format!("no kernel BTF: {e}"))?;
    let p: &mut FEntry = ebpf
        .program_mut("support_fentry")
        .ok_or("program missing from object")?
        .try_into()
        .map_err(describe)?;
    p.load("tcp_v4_connect", &btf).map_err(describe)?;
    p.attach().map_err(describe)?;
    Ok("tcp_v4_connect".into())
}
