//! Choosing the hooks: for each source, the alternatives to try on this
//! kernel, given what it supports and what `--hooks` insists on. Pure: the
//! kernel's support comes in as a function, so every rule is unit-tested.

use std::fmt;

use super::hooks::{Alternative, Hook, HookKind, Pick, SOURCES, STATE_SOURCE, Source};

/// For one source, the alternatives to try, in order: the first that
/// attaches is used.
#[derive(Debug, Clone)]
pub struct Choice {
    pub source: &'static Source,
    pub candidates: Vec<&'static Alternative>,
    /// For an optional or best-effort source, why the alternatives not among
    /// the candidates were left out: said when none of them attaches either.
    pub passed_over: Vec<String>,
}

/// Whether the optional sources ([`Pick::Optional`]: syscall errors) are
/// traced: `--syscall-errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Optional {
    /// When a hook that costs the rest of the host nothing works here.
    #[default]
    Auto,
    /// Also with hooks that tax every process on the host, if nothing cheaper works.
    On,
    /// Never.
    Off,
}

/// Why no plan can work here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `--hooks KIND` was asked for and cannot work here.
    #[error("--hooks {} cannot work here: {reason}; use {}", .kind.name(), instead(*.kind))]
    Insisted { kind: HookKind, reason: String },
    /// No alternative of a source works here; the reasons, one per alternative.
    #[error("no hook for {data} on this kernel: {}", .reasons.join("; and "))]
    NoHook {
        data: &'static str,
        reasons: Vec<String>,
    },
}

/// What to suggest when `--hooks kind` cannot work.
fn instead(kind: HookKind) -> &'static str {
    match kind {
        HookKind::Tracepoint => "--hooks auto",
        _ => "--hooks auto or --hooks tracepoint",
    }
}

/// Chooses the candidates of every source in [`SOURCES`], in attach order.
/// `available` says whether an alternative can work here (or why not);
/// `insist` is the kind `--hooks` asked for (`None`: auto); `optional` says
/// whether the optional sources are traced.
pub fn choose(
    available: impl Fn(&Alternative) -> Result<(), String>,
    insist: Option<HookKind>,
    optional: Optional,
) -> Result<Vec<Choice>, PlanError> {
    choose_among(SOURCES, available, insist, optional)
}

fn choose_among(
    sources: &'static [Source],
    available: impl Fn(&Alternative) -> Result<(), String>,
    insist: Option<HookKind>,
    optional: Optional,
) -> Result<Vec<Choice>, PlanError> {
    // The kind the state source leads with, which teardown follows.
    let state = sources
        .iter()
        .find(|s| s.name == STATE_SOURCE.name)
        .map(|s| candidates(s, &available, insist, None))
        .transpose()?;
    let lead = state
        .as_ref()
        .and_then(|c| c.first())
        .map(|alternative| alternative.kind);
    sources
        .iter()
        .map(|source| match source.pick {
            Pick::Optional { costly } => Ok(optional_choice(
                source,
                Some(costly),
                &available,
                insist,
                optional,
            )),
            Pick::BestEffort => Ok(optional_choice(
                source,
                None,
                &available,
                insist,
                Optional::Auto,
            )),
            _ => Ok(Choice {
                source,
                candidates: candidates(source, &available, insist, lead)?,
                passed_over: Vec::new(),
            }),
        })
        .collect()
}

/// The candidates of an optional or best-effort source: never an error,
/// since the source may be off. Insisting on a kind the source has (cheaply)
/// means that kind.
fn optional_choice(
    source: &'static Source,
    costly: Option<HookKind>,
    available: &impl Fn(&Alternative) -> Result<(), String>,
    insist: Option<HookKind>,
    optional: Optional,
) -> Choice {
    let mut choice = Choice {
        source,
        candidates: Vec::new(),
        passed_over: Vec::new(),
    };
    if optional == Optional::Off {
        choice.passed_over.push("turned off".to_owned());
        return choice;
    }
    let insisted = insist
        .filter(|&kind| Some(kind) != costly)
        .and_then(|kind| source.alternative(kind));
    let order: Vec<&'static Alternative> = match insisted {
        Some(alternative) => vec![alternative],
        None => source.alternatives.iter().collect(),
    };
    for alternative in order {
        if Some(alternative.kind) == costly && optional != Optional::On {
            choice.passed_over.push(format!(
                "{}s would slow every process's syscalls on the host (--syscall-errors on uses them)",
                alternative.kind.noun()
            ));
            continue;
        }
        match available(alternative) {
            Ok(()) => choice.candidates.push(alternative),
            Err(reason) => choice.passed_over.push(reason),
        }
    }
    choice
}

/// The alternatives of `source` worth trying, in order.
fn candidates(
    source: &'static Source,
    available: &impl Fn(&Alternative) -> Result<(), String>,
    insist: Option<HookKind>,
    lead: Option<HookKind>,
) -> Result<Vec<&'static Alternative>, PlanError> {
    let order: Vec<&'static Alternative> = match source.pick {
        Pick::Fixed | Pick::Optional { .. } | Pick::BestEffort => {
            source.alternatives.iter().collect()
        }
        Pick::User => match insist {
            Some(kind) => {
                let alternative = source
                    .alternative(kind)
                    .ok_or_else(|| PlanError::Insisted {
                        kind,
                        reason: format!("{} have no {} hook", source.name, kind.noun()),
                    })?;
                available(alternative).map_err(|reason| PlanError::Insisted { kind, reason })?;
                return Ok(vec![alternative]);
            }
            None => source.alternatives.iter().collect(),
        },
        Pick::LikeState => {
            // Insisting on a kind this source has means that kind only.
            if let Some(alternative) = insist.and_then(|k| source.alternative(k)) {
                available(alternative).map_err(|reason| PlanError::Insisted {
                    kind: alternative.kind,
                    reason,
                })?;
                return Ok(vec![alternative]);
            }
            let first = lead
                .and_then(|kind| source.alternative(kind))
                .or(source.alternatives.last());
            first
                .into_iter()
                .chain(
                    source
                        .alternatives
                        .iter()
                        .filter(|a| first.is_none_or(|f| f.kind != a.kind)),
                )
                .collect()
        }
    };
    let mut reasons = Vec::new();
    let usable: Vec<_> = order
        .into_iter()
        .filter(|alternative| match available(alternative) {
            Ok(()) => true,
            Err(reason) => {
                reasons.push(reason);
                false
            }
        })
        .collect();
    if usable.is_empty() {
        return Err(PlanError::NoHook {
            data: source.name,
            reasons,
        });
    }
    Ok(usable)
}

/// The hooks in use once attached.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The kind each source with a user's choice ([`Pick::User`]) was served
    /// by, in the order of [`SOURCES`].
    pub sources: Vec<(&'static str, HookKind)>,
    /// Every attached program in attach order, e.g. `tracepoint
    /// sock:inet_sock_set_state` or `kretprobe tcp_retransmit_skb`.
    pub hooks: Vec<String>,
    /// Each optional or best-effort source ([`Pick::Optional`],
    /// [`Pick::BestEffort`]): the first hook of the alternative that serves
    /// it, or why it is off.
    pub optional: Vec<(&'static str, Result<Hook, String>)>,
}

impl Plan {
    /// `raw-tracepoint`, `tracepoint` or `kprobe` when every source with a
    /// choice uses that kind, else `mixed`.
    pub fn name(&self) -> &'static str {
        match HookKind::ALL
            .into_iter()
            .find(|kind| self.sources.iter().all(|(_, k)| k == kind))
        {
            Some(kind) => kind.name(),
            None => "mixed",
        }
    }
}

impl Plan {
    /// Whether the optional source `name` is traced.
    pub fn has(&self, name: &str) -> bool {
        self.optional
            .iter()
            .any(|(source, used)| *source == name && used.is_ok())
    }

    /// The optional sources in words, e.g. `syscall errors from fexits` or
    /// `syscall errors off: …`, joined by `; `.
    pub fn optional_text(&self) -> String {
        self.optional
            .iter()
            .map(|(source, used)| {
                let costly = SOURCES.iter().any(|s| {
                    s.name == *source
                        && matches!((s.pick, used), (Pick::Optional { costly }, Ok(hook)) if costly == hook.kind())
                });
                match used {
                    Ok(hook) if costly => format!(
                        "{source} from {}s, which slow every process's syscalls on the host",
                        hook.noun()
                    ),
                    Ok(hook) => format!("{source} from {}s", hook.noun()),
                    Err(why) => format!("{source} off: {why}"),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl fmt::Display for Plan {
    /// `the tracepoint plan (tracepoints only)`, `the kprobe plan (state
    /// changes and retransmits from kprobes, the rest from tracepoints)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} plan (", self.name())?;
        if self.sources.iter().all(|(_, k)| *k == HookKind::Tracepoint) {
            return write!(f, "tracepoints only)");
        }
        let mut by_kind: Vec<(HookKind, Vec<&str>)> = Vec::new();
        for (source, kind) in &self.sources {
            match by_kind.iter_mut().find(|(k, _)| k == kind) {
                Some((_, names)) => names.push(source),
                None => by_kind.push((*kind, vec![source])),
            }
        }
        for (kind, names) in &by_kind {
            write!(f, "{} from {}s, ", names.join(" and "), kind.noun())?;
        }
        write!(f, "the rest from tracepoints)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HookKind::{Cgroup, Fexit, Kprobe, RawTracepoint, Tracepoint};

    /// Support where the kinds in `missing` do not work.
    fn without(missing: &'static [HookKind]) -> impl Fn(&Alternative) -> Result<(), String> {
        move |alternative| {
            if missing.contains(&alternative.kind) {
                Err(format!("no {}s", alternative.kind.noun()))
            } else {
                Ok(())
            }
        }
    }

    fn kinds(choices: &[Choice]) -> Vec<(&'static str, Vec<HookKind>)> {
        choices
            .iter()
            .map(|c| (c.source.name, c.candidates.iter().map(|a| a.kind).collect()))
            .collect()
    }

    #[test]
    fn auto_tries_the_cheapest_first_and_teardown_follows_state() {
        let choices = choose(without(&[]), None, Optional::Auto).unwrap();
        assert_eq!(
            kinds(&choices),
            [
                ("teardown", vec![RawTracepoint, Tracepoint]),
                ("state changes", vec![RawTracepoint, Tracepoint, Kprobe]),
                ("retransmits", vec![RawTracepoint, Tracepoint, Kprobe]),
                ("SYN-ACK retransmits and resets", vec![Tracepoint]),
                ("socket errors", vec![RawTracepoint]),
                ("drops", vec![RawTracepoint]),
                ("DNS", vec![Cgroup]),
                ("syscall errors", vec![Fexit, Kprobe]),
            ]
        );
    }

    fn syscall_errors(choices: &[Choice]) -> &Choice {
        choices
            .iter()
            .find(|c| c.source.name == "syscall errors")
            .expect("a choice for syscall errors")
    }

    /// The tracepoints that tax every syscall on the host are left out
    /// unless asked for, and the choice says so; with nothing else here,
    /// the source is off rather than the plan failing.
    #[test]
    fn syscall_errors_avoid_the_taxing_tracepoints_unless_turned_on() {
        let choices = choose(without(&[Fexit, Kprobe]), None, Optional::Auto).unwrap();
        let choice = syscall_errors(&choices);
        assert!(choice.candidates.is_empty());
        assert_eq!(
            choice.passed_over,
            [
                "no fexits",
                "no kprobes",
                "tracepoints would slow every process's syscalls on the host (--syscall-errors on uses them)"
            ]
        );
        let choices = choose(without(&[Fexit, Kprobe]), None, Optional::On).unwrap();
        let kinds: Vec<_> = syscall_errors(&choices)
            .candidates
            .iter()
            .map(|a| a.kind)
            .collect();
        assert_eq!(kinds, [Tracepoint]);
        // Cheaper hooks still come first when turned on.
        let choices = choose(without(&[]), None, Optional::On).unwrap();
        let kinds: Vec<_> = syscall_errors(&choices)
            .candidates
            .iter()
            .map(|a| a.kind)
            .collect();
        assert_eq!(kinds, [Fexit, Kprobe, Tracepoint]);
        let choices = choose(without(&[]), None, Optional::Off).unwrap();
        assert!(syscall_errors(&choices).candidates.is_empty());
        assert_eq!(syscall_errors(&choices).passed_over, ["turned off"]);
    }

    /// Socket errors and drops need raw tracepoints: without them they are
    /// off, and the rest of the plan stands.
    #[test]
    fn best_effort_sources_are_off_without_their_hook() {
        let choices = choose(without(&[RawTracepoint]), None, Optional::Auto).unwrap();
        for name in ["socket errors", "drops"] {
            let choice = choices.iter().find(|c| c.source.name == name).unwrap();
            assert!(choice.candidates.is_empty(), "{name}");
            assert_eq!(choice.passed_over, ["no raw tracepoints"], "{name}");
        }
    }

    /// `--hooks kprobe` takes syscall errors from kretprobes; insisting on
    /// tracepoints does not turn the taxing ones on.
    #[test]
    fn syscall_errors_follow_an_insisted_kind_they_have_cheaply() {
        let choices = choose(without(&[]), Some(Kprobe), Optional::Auto).unwrap();
        let kinds: Vec<_> = syscall_errors(&choices)
            .candidates
            .iter()
            .map(|a| a.kind)
            .collect();
        assert_eq!(kinds, [Kprobe]);
        let choices = choose(without(&[]), Some(Tracepoint), Optional::Auto).unwrap();
        let kinds: Vec<_> = syscall_errors(&choices)
            .candidates
            .iter()
            .map(|a| a.kind)
            .collect();
        assert_eq!(kinds, [Fexit, Kprobe]);
    }

    #[test]
    fn auto_skips_what_the_kernel_lacks() {
        let choices = choose(without(&[RawTracepoint, Kprobe]), None, Optional::Auto).unwrap();
        assert_eq!(
            kinds(&choices)[..3],
            [
                ("teardown", vec![Tracepoint]),
                ("state changes", vec![Tracepoint]),
                ("retransmits", vec![Tracepoint]),
            ]
        );
    }

    #[test]
    fn teardown_of_the_kprobe_plan_is_a_tracepoint() {
        let choices = choose(without(&[]), Some(Kprobe), Optional::Auto).unwrap();
        assert_eq!(
            kinds(&choices)[..3],
            [
                ("teardown", vec![Tracepoint, RawTracepoint]),
                ("state changes", vec![Kprobe]),
                ("retransmits", vec![Kprobe]),
            ]
        );
    }

    #[test]
    fn insisting_on_a_kind_uses_only_it() {
        let choices = choose(without(&[]), Some(RawTracepoint), Optional::Auto).unwrap();
        assert_eq!(
            kinds(&choices)[..3],
            [
                ("teardown", vec![RawTracepoint]),
                ("state changes", vec![RawTracepoint]),
                ("retransmits", vec![RawTracepoint]),
            ]
        );
    }

    #[test]
    fn insisting_on_a_missing_kind_says_why() {
        let err = choose(without(&[Kprobe]), Some(Kprobe), Optional::Auto).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--hooks kprobe cannot work here: no kprobes; use --hooks auto or --hooks tracepoint"
        );
    }

    #[test]
    fn no_alternative_names_the_source_and_every_reason() {
        let err = choose(
            without(&[RawTracepoint, Tracepoint, Kprobe]),
            None,
            Optional::Auto,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no hook for state changes on this kernel: no raw tracepoints; and no tracepoints; and no kprobes"
        );
    }

    fn plan(sources: &[HookKind]) -> Plan {
        Plan {
            sources: ["state changes", "retransmits"]
                .into_iter()
                .zip(sources.iter().copied())
                .collect(),
            hooks: Vec::new(),
            optional: Vec::new(),
        }
    }

    #[test]
    fn optional_sources_say_where_they_come_from_or_why_they_are_off() {
        let hooks = crate::ebpf::hooks::SYSCALL_SOURCE.alternatives;
        let mut p = plan(&[RawTracepoint, RawTracepoint]);
        p.optional = vec![("syscall errors", Ok(hooks[0].hooks[0]))];
        assert_eq!(p.optional_text(), "syscall errors from fexits");
        assert!(p.has("syscall errors"));
        p.optional = vec![("syscall errors", Ok(hooks[1].hooks[0]))];
        assert_eq!(p.optional_text(), "syscall errors from kretprobes");
        p.optional = vec![("syscall errors", Ok(hooks[2].hooks[0]))];
        assert_eq!(
            p.optional_text(),
            "syscall errors from tracepoints, which slow every process's syscalls on the host"
        );
        p.optional = vec![("syscall errors", Err("turned off".into()))];
        assert_eq!(p.optional_text(), "syscall errors off: turned off");
        assert!(!p.has("syscall errors"));
    }

    #[test]
    fn plans_say_what_they_use() {
        assert_eq!(
            plan(&[RawTracepoint, RawTracepoint]).to_string(),
            "the raw-tracepoint plan (state changes and retransmits from raw tracepoints, the rest from tracepoints)"
        );
        assert_eq!(
            plan(&[Tracepoint, Tracepoint]).to_string(),
            "the tracepoint plan (tracepoints only)"
        );
        assert_eq!(
            plan(&[Kprobe, Kprobe]).to_string(),
            "the kprobe plan (state changes and retransmits from kprobes, the rest from tracepoints)"
        );
        assert_eq!(
            plan(&[Tracepoint, Kprobe]).to_string(),
            "the mixed plan (state changes from tracepoints, retransmits from kprobes, the rest from tracepoints)"
        );
    }
}
