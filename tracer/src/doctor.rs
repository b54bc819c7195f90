//! `tracer doctor`: what this kernel supports, found by trying: each program
//! kind, each hook plan (`--hooks`), and the plan tracer will use.
//!
//! [`gather`] finds the facts once into a [`Report`] (this file: the only
//! part that touches the system); [`render`] turns it into text or JSON.

mod render;
mod report;

use std::io::Write as _;

use aya::{
    Btf, Ebpf, EbpfLoader,
    programs::{FEntry, KProbe, RawTracePoint},
};

use self::report::{
    Attached, ChosenPlan, HookPlan, Kernel, Loads, ProgramKind, Report, SockDiag, SockOffsets,
    Tracefs, Tracepoint,
};
use crate::{
    ebpf::{
        self, OBJECT,
        attach::permission_hint,
        format::{Format, TRACEFS},
        hooks::{self, HookKind},
        loader::{self, Filters, Settings},
        plan::{Optional, Plan},
    },
    proc::{netns, sock_diag},
    system,
};

/// Result of trying one program kind.
struct Probe {
    kind: &'static str,
    result: Result<String, String>,
}

/// Prints the report, as text or (`json`) as one JSON object. Fails (exit 1)
/// when tracer could not run here.
pub fn run(json: bool) -> anyhow::Result<()> {
    let report = gather();
    let text = if json {
        render::render_json(&report)
    } else {
        render::render_text(&report)
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    if report.can_run() {
        Ok(())
    } else {
        anyhow::bail!("tracer cannot run on this system as it is (see above)")
    }
}

/// Finds out what this system supports: reads it, and loads and attaches each
/// program kind and hook plan (then detaches them).
fn gather() -> Report {
    let mut missing: Vec<String> = Vec::new();
    let release = system::kernel_release();
    let too_old = matches!(system::parse_release(&release), Some(v) if v < (5, 8));
    if too_old {
        missing.push("Linux 5.8 or newer".into());
    }
    let caps = system::missing_capabilities();
    if !caps.is_empty() {
        missing.push(format!("privileges ({}): run with sudo", caps.join(", ")));
    }
    let tracefs = match system::ensure_tracefs() {
        Ok(mount) => Ok(Tracefs {
            path: TRACEFS.into(),
            mounted_now: matches!(mount, system::Tracefs::MountedNow),
        }),
        Err(e) => {
            missing.push("tracefs".into());
            Err(e.to_string())
        }
    };
    let btf_path = system::has_btf().then(|| "/sys/kernel/btf/vmlinux".to_owned());
    let lockdown = system::lockdown();
    let sock_diag = netns::sock_diag_here()
        .and_then(sock_diag::prepare)
        .and_then(|socket| {
            let mut sockets = 0;
            sock_diag::dump(&socket, 0, |_| sockets += 1)?;
            Ok(SockDiag { sockets })
        })
        .map_err(|e| e.to_string());

    let mut tracepoints = Vec::new();
    for hook in hooks::tracepoints() {
        let status = Format::read(hook.category, hook.name)
            .and_then(|f| f.offsets(hook.required, hook.optional).map(|_| ()));
        let name = format!("{}:{}", hook.category, hook.name);
        if status.is_err() {
            missing.push(format!("tracepoint {name}"));
        }
        tracepoints.push(Tracepoint {
            name,
            result: status.map_err(|e| e.to_string()),
        });
    }

    // Each plan, loaded and attached for real, then detached.
    let settings = |hooks| Settings {
        filters: Filters::default(),
        ring_bytes: tracer_common::maps::DEFAULT_RING_BYTES,
        owner_map_size: tracer_common::maps::OWNERS_CAPACITY,
        hooks,
        syscall_errors: Optional::Auto,
        socket_tables: crate::proc::sockets::Source::Proc,
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
    let program_kinds = probes
        .into_iter()
        .map(|p| ProgramKind {
            kind: p.kind.into(),
            result: p.result.map(|detail| Attached { detail }),
        })
        .collect();

    let hook_plans = tried
        .iter()
        .map(|(kind, plan)| HookPlan {
            hooks: kind.name().into(),
            result: match plan {
                Ok(plan) => Ok(Loads {
                    programs: plan.hooks.len(),
                }),
                Err(e) => Err(e.clone()),
            },
        })
        .collect();
    let btf = ebpf::btf::Btf::kernel();
    let sock_offsets = loader::sock_support(btf.as_ref(), "raw tracepoints")
        .ok()
        .map(SockOffsets::from);
    drop(tried);

    let auto = loader::load(&settings(None));
    let plan = match &auto {
        Ok(l) => Ok(ChosenPlan {
            name: l.plan.name().into(),
            description: l.plan.to_string(),
            programs: l.plan.hooks.clone(),
            connect_errors: l.connect_errors.clone(),
            optional_sources: l.plan.optional_text(),
        }),
        Err(e) => {
            missing.push("a working hook plan".into());
            Err(e.to_string())
        }
    };
    drop(auto);

    Report {
        kernel: Kernel { release, too_old },
        missing_capabilities: caps.into_iter().map(str::to_owned).collect(),
        tracefs,
        btf: btf_path,
        lockdown,
        sock_diag,
        tracepoints,
        program_kinds,
        hook_plans,
        sock_offsets,
        plan,
        missing,
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
