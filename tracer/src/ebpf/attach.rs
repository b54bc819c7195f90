//! Attaching a chosen plan: each source's first candidate that the kernel
//! accepts, all of its hooks or none.

use aya::{
    Ebpf,
    programs::{KProbe, Program, ProgramError, RawTracePoint, TracePoint},
};

use super::{
    hooks::{Hook, HookKind, Pick},
    loader::LoadError,
    plan::{Choice, Plan, PlanError},
};

/// Attaches every source of `choices` in order. For each, the first
/// candidate whose hooks all attach wins; a kind the kernel refused once is
/// not tried again for later sources (unless the user insisted on it, which
/// makes the refusal the error).
pub fn attach_plan(
    ebpf: &mut Ebpf,
    choices: &[Choice],
    insist: Option<HookKind>,
) -> Result<Plan, LoadError> {
    let mut plan = Plan {
        sources: Vec::new(),
        hooks: Vec::new(),
    };
    let mut refused: Vec<HookKind> = Vec::new();
    for choice in choices {
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
            match attach_all(ebpf, alternative.hooks) {
                Ok(hooks) => {
                    attached = Some((alternative.kind, hooks));
                    break;
                }
                Err(e) => {
                    if insist == Some(alternative.kind) {
                        return Err(e);
                    }
                    refused.push(alternative.kind);
                    first_error.get_or_insert(e);
                }
            }
        }
        let Some((kind, hooks)) = attached else {
            return Err(first_error.unwrap_or(LoadError::Plan(PlanError::NoHook {
                data: choice.source.name,
                reasons: Vec::new(),
            })));
        };
        if choice.source.pick == Pick::User {
            plan.sources.push((choice.source.name, kind));
        }
        plan.hooks.extend(hooks);
    }
    Ok(plan)
}

/// Attaches `hooks` in order; when one fails, detaches those already
/// attached and returns its error. Returns how the plan shows each.
fn attach_all(ebpf: &mut Ebpf, hooks: &[Hook]) -> Result<Vec<String>, LoadError> {
    let mut done = Vec::new();
    for hook in hooks {
        match attach(ebpf, hook) {
            Ok(()) => done.push(hook),
            Err(e) => {
                for hook in done {
                    detach(ebpf, hook);
                }
                return Err(e);
            }
        }
    }
    Ok(done.iter().map(|hook| hook.describe()).collect())
}

/// Loads and attaches one hook's program.
fn attach(ebpf: &mut Ebpf, hook: &Hook) -> Result<(), LoadError> {
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
    }
}

/// Detaches and unloads one hook's program (best effort: it is being given
/// up for another alternative).
fn detach(ebpf: &mut Ebpf, hook: &Hook) {
    let _ = match hook {
        Hook::Tracepoint(_) => with(ebpf, hook, TracePoint::unload),
        Hook::RawTracepoint { .. } => with(ebpf, hook, RawTracePoint::unload),
        Hook::Kprobe { .. } | Hook::Kretprobe { .. } => with(ebpf, hook, KProbe::unload),
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
    action(loaded).map_err(refused)
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
