//! Attaching a chosen plan: each source's first candidate that the kernel
//! accepts, all of its hooks or none.

use std::path::{Path, PathBuf};

use aya::{
    Btf, Ebpf,
    programs::{
        CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSockAddr, FExit, KProbe, Program,
        ProgramError, RawTracePoint, TracePoint,
    },
};

use super::{
    hooks::{CgroupHook, Hook, HookKind, Pick},
    loader::LoadError,
    plan::{Choice, Plan, PlanError},
};

/// Attaches every source of `choices` in order. For each, the first
/// candidate whose hooks all attach wins; a kind the kernel refused once is
/// not tried again for later sources (unless the user insisted on it, which
/// makes the refusal the error). cgroup programs attach to each of `cgroups`.
pub fn attach_plan(
    ebpf: &mut Ebpf,
    choices: &[Choice],
    insist: Option<HookKind>,
    cgroups: &[PathBuf],
) -> Result<Plan, LoadError> {
    let mut plan = Plan {
        sources: Vec::new(),
        hooks: Vec::new(),
        optional: Vec::new(),
    };
    let mut kernel = Kernel {
        ebpf,
        btf: None,
        cgroups,
    };
    let mut refused: Vec<HookKind> = Vec::new();
    for choice in choices {
        let optional = matches!(choice.source.pick, Pick::Optional { .. } | Pick::BestEffort);
        let mut first_error = None;
        let mut attached = None;
        let mut candidates: Vec<_> = choice
            .candidates
            .iter()
            .filter(|a| !refused.contains(&a.kind))
            .collect();
        if candidates.is_empty() {
            candidates = choice.candidates.iter().collect();
        }
        for alternative in candidates {
            match attach_all(&mut kernel, alternative.hooks) {
                Ok(hooks) => {
                    attached = Some((*alternative, hooks));
                    break;
                }
                Err(e) => {
                    if insist == Some(alternative.kind) && !optional {
                        return Err(e);
                    }
                    refused.push(alternative.kind);
                    first_error.get_or_insert(e);
                }
            }
        }
        if optional {
            // An optional source that cannot be had is off, and says why.
            let used = attached
                .as_ref()
                .and_then(|(alternative, _)| alternative.hooks.first().copied())
                .ok_or_else(|| off_reason(choice, first_error.as_ref()));
            plan.optional.push((choice.source.name, used));
        }
        let Some((alternative, hooks)) = attached else {
            if optional {
                continue;
            }
            return Err(first_error.unwrap_or(LoadError::Plan(PlanError::NoHook {
                data: choice.source.name,
                reasons: Vec::new(),
            })));
        };
        if choice.source.pick == Pick::User {
            plan.sources.push((choice.source.name, alternative.kind));
        }
        plan.hooks.extend(hooks);
    }
    Ok(plan)
}

/// Why an optional source is off: the alternatives passed over, then the
/// first refusal.
fn off_reason(choice: &Choice, refusal: Option<&LoadError>) -> String {
    let mut reasons = choice.passed_over.clone();
    if let Some(e) = refusal {
        let brief = match e {
            LoadError::Program { hook, source, .. } => match source.as_ref() {
                ProgramError::LoadError { io_error, .. } => {
                    format!("the kernel refused {hook} ({io_error})")
                }
                ProgramError::SyscallError(e) => {
                    format!("the kernel refused {hook} ({}: {})", e.call, e.io_error)
                }
                other => format!("the kernel refused {hook} ({other})"),
            },
            other => other.to_string(),
        };
        reasons.insert(0, brief);
    }
    if reasons.is_empty() {
        reasons.push("no hook for them here".to_owned());
    }
    reasons.join("; ")
}

/// The loaded object, the kernel's BTF once an fexit program needed it, and
/// the cgroups cgroup programs attach to.
struct Kernel<'a> {
    ebpf: &'a mut Ebpf,
    btf: Option<Btf>,
    cgroups: &'a [PathBuf],
}

/// Attaches `hooks` in order; when one fails, detaches those already
/// attached and returns its error. Returns how the plan shows each.
fn attach_all(kernel: &mut Kernel<'_>, hooks: &[Hook]) -> Result<Vec<String>, LoadError> {
    let mut done = Vec::new();
    for hook in hooks {
        match attach(kernel, hook) {
            Ok(()) => done.push(hook),
            Err(e) => {
                for hook in done {
                    detach(kernel.ebpf, hook);
                }
                return Err(e);
            }
        }
    }
    let on = match kernel.cgroups {
        [one] => format!(" on {}", one.display()),
        many => format!(" on {} cgroups", many.len()),
    };
    Ok(done
        .iter()
        .map(|hook| match hook {
            Hook::Cgroup { .. } => hook.describe() + &on,
            _ => hook.describe(),
        })
        .collect())
}

/// Loads and attaches one hook's program.
fn attach(kernel: &mut Kernel<'_>, hook: &Hook) -> Result<(), LoadError> {
    let ebpf = &mut *kernel.ebpf;
    match *hook {
        Hook::Tracepoint(tracepoint) => with(ebpf, hook, |p: &mut TracePoint| {
            p.load()?;
            p.attach(tracepoint.category, tracepoint.name).map(drop)
        }),
        Hook::RawTracepoint { of, .. } => with(ebpf, hook, |p: &mut RawTracePoint| {
            p.load()?;
            p.attach(of.name).map(drop)
        }),
        Hook::Kprobe { function, .. } | Hook::Kretprobe { function, .. } => {
            with(ebpf, hook, |p: &mut KProbe| {
                p.load()?;
                p.attach(function, 0).map(drop)
            })
        }
        Hook::Fexit { function, .. } => {
            let btf = match kernel.btf.take() {
                Some(btf) => btf,
                None => Btf::from_sys_fs().map_err(|e| LoadError::Program {
                    program: hook.program(),
                    hook: hook.describe(),
                    source: Box::new(ProgramError::Btf(e)),
                    hint: "",
                })?,
            };
            let btf = &*kernel.btf.insert(btf);
            with(ebpf, hook, |p: &mut FExit| {
                p.load(function, btf)?;
                p.attach().map(drop)
            })
        }
        Hook::Cgroup { attach, .. } => {
            let cgroups = kernel.cgroups;
            let open = |dir: &Path| std::fs::File::open(dir).map_err(ProgramError::IOError);
            // Attached as links (5.7 and later), which never displace
            // another program and take no flags: the kernel refuses
            // `AllowMultiple` on a link with EINVAL.
            let mode = CgroupAttachMode::Single;
            match attach {
                CgroupHook::Ingress | CgroupHook::Egress => {
                    let kind = if attach == CgroupHook::Ingress {
                        CgroupSkbAttachType::Ingress
                    } else {
                        CgroupSkbAttachType::Egress
                    };
                    with(ebpf, hook, |p: &mut CgroupSkb| {
                        p.load()?;
                        cgroups
                            .iter()
                            .try_for_each(|dir| p.attach(open(dir)?, kind, mode).map(drop))
                    })
                }
                _ => with(ebpf, hook, |p: &mut CgroupSockAddr| {
                    p.load()?;
                    cgroups
                        .iter()
                        .try_for_each(|dir| p.attach(open(dir)?, mode).map(drop))
                }),
            }
        }
    }
}

/// Detaches and unloads one hook's program (best effort: it is being given
/// up for another alternative).
fn detach(ebpf: &mut Ebpf, hook: &Hook) {
    let _ = match hook {
        Hook::Tracepoint(_) => with(ebpf, hook, TracePoint::unload),
        Hook::RawTracepoint { .. } => with(ebpf, hook, RawTracePoint::unload),
        Hook::Kprobe { .. } | Hook::Kretprobe { .. } => with(ebpf, hook, KProbe::unload),
        Hook::Fexit { .. } => with(ebpf, hook, FExit::unload),
        Hook::Cgroup {
            attach: CgroupHook::Ingress | CgroupHook::Egress,
            ..
        } => with(ebpf, hook, CgroupSkb::unload),
        Hook::Cgroup { .. } => with(ebpf, hook, CgroupSockAddr::unload),
    };
}

/// Finds the hook's program in the object as a `P` and applies `action`. A
/// refusal names the program and the hook.
fn with<P>(
    ebpf: &mut Ebpf,
    hook: &Hook,
    action: impl FnOnce(&mut P) -> Result<(), ProgramError>,
) -> Result<(), LoadError>
where
    for<'a> &'a mut P: TryFrom<&'a mut Program, Error = ProgramError>,
{
    let program = hook.program();
    let refused = |source: ProgramError| LoadError::Program {
        program,
        hook: hook.describe(),
        hint: permission_hint(&source),
        source: Box::new(source),
    };
    let loaded: &mut P = ebpf
        .program_mut(program)
        .ok_or(LoadError::NoProgram(program))?
        .try_into()
        .map_err(refused)?;
    action(loaded).map_err(|e| {
        if let ProgramError::LoadError { verifier_log, .. } = &e {
            tracing::debug!("{program}: the verifier's log:\n{verifier_log}");
        }
        refused(e)
    })
}

/// A hint for the errors users can act on.
pub fn permission_hint(err: &ProgramError) -> &'static str {
    let text = format!("{err:?}");
    let denied = text.contains("PermissionDenied") || text.contains("os error 1)");
    let paranoid = crate::system::perf_event_paranoid().is_some_and(|level| level >= 3);
    if !denied {
        ""
    } else if paranoid && !crate::system::has_sys_admin() {
        " (kernel.perf_event_paranoid is 3, a Debian setting under which only CAP_SYS_ADMIN \
         may open tracepoints: `sysctl kernel.perf_event_paranoid=2` lets CAP_PERFMON do it, \
         or run tracer as root)"
    } else if crate::system::missing_capabilities().is_empty() {
        " (the kernel refuses this program kind even with full privileges: lockdown or missing kernel support)"
    } else {
        " (permission denied: run tracer as root, e.g. with sudo)"
    }
}
