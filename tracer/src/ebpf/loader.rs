//! Loading the eBPF object with the running kernel's field offsets and the
//! user's filters, then attaching the programs.

use std::fmt;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{KProbe, Program, ProgramError, RawTracePoint, TracePoint},
};
use tracer_common::{FieldOffsets, Owner, SockOffsets, maps, maps::SocketKey, tcp};

use crate::{
    proc::{process, sockets},
    system,
};

use super::{
    OBJECT,
    btf::{self, Btf, BtfError},
    counters::CounterMaps,
    format::{Format, FormatError},
    hooks::{
        DESTROY, DESTROY_RAW, HookKind, KprobeHook, RETRANSMIT, RawHook, SHARED, SOURCES, Source,
        TracepointHook,
    },
};

/// The smallest owner map accepted (tests use tiny ones to fill them).
pub const MIN_OWNER_MAP_SIZE: u32 = 16;

/// Load-time global: [`SockOffsets`] for the raw tracepoints and kprobes.
const GLOBAL_SOCK_LAYOUT: &str = "SOCK_LAYOUT";
/// Load-time global (u32): offset of `sk_err` in `struct sock`.
const GLOBAL_SK_ERR_OFFSET: &str = "SOCK_SK_ERR_OFFSET";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("cannot load tracer's eBPF object: {0}")]
    Object(#[source] aya::EbpfError),
    #[error("the eBPF object has no program `{0}` (the build is inconsistent: rebuild tracer)")]
    NoProgram(&'static str),
    #[error("the eBPF object has no map `{0}` (the build is inconsistent: rebuild tracer)")]
    NoMap(&'static str),
    #[error("the kernel refused program `{program}` for {hook}: {source}{hint}")]
    Program {
        program: &'static str,
        hook: String,
        source: Box<aya::programs::ProgramError>,
        hint: &'static str,
    },
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        source: aya::maps::MapError,
    },
    #[error(
        "tracepoints sharing the global {global} have different layouts on this kernel ({a} vs {b})"
    )]
    LayoutConflict {
        global: &'static str,
        a: String,
        b: String,
    },
    #[error("--ring-buffer-size {0}: must be a power of two and at least 4096 bytes")]
    RingSize(u32),
    #[error("--owner-map-size {0}: must be at least {MIN_OWNER_MAP_SIZE}")]
    OwnerMapSize(u32),
    #[error("--hooks kprobe cannot work here: {0}; use --hooks auto or --hooks tracepoint")]
    KprobesUnavailable(String),
    #[error("--hooks raw-tracepoint cannot work here: {0}; use --hooks auto or --hooks tracepoint")]
    RawUnavailable(String),
    #[error("no hook for {data} on this kernel: {tracepoint}; and {kprobe}")]
    NoHook {
        data: &'static str,
        tracepoint: FormatError,
        kprobe: String,
    },
}

/// What the user asked to trace.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Processes to trace; empty traces every process.
    pub pids: Vec<u32>,
}

/// Loader settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub filters: Filters,
    pub ring_bytes: u32,
    /// Capacity of the owner map (sockets whose owner is remembered).
    pub owner_map_size: u32,
    /// The kind of hook for every source that has a choice; `None` picks, per
    /// source, the cheapest that works here (tracepoints where present).
    pub hooks: Option<HookKind>,
}

/// The hooks in use.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The kind serving each of [`SOURCES`], in that order.
    pub sources: Vec<HookKind>,
    /// Every attached program in attach order, e.g. `tracepoint
    /// sock:inet_sock_set_state` or `kretprobe tcp_retransmit_skb`.
    pub hooks: Vec<String>,
}

impl Plan {
    /// `raw-tracepoint`, `tracepoint` or `kprobe` when every source uses that
    /// kind, else `mixed`.
    pub fn name(&self) -> &'static str {
        match HookKind::ALL
            .into_iter()
            .find(|kind| self.sources.iter().all(|k| k == kind))
        {
            Some(kind) => kind.name(),
            None => "mixed",
        }
    }
}

impl fmt::Display for Plan {
    /// `the tracepoint plan (tracepoints only)`, `the kprobe plan (state
    /// changes and retransmits from kprobes, the rest from tracepoints)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} plan (", self.name())?;
        if self.sources.iter().all(|k| *k == HookKind::Tracepoint) {
            return write!(f, "tracepoints only)");
        }
        let mut by_kind: Vec<(HookKind, Vec<&str>)> = Vec::new();
        for (source, kind) in SOURCES.iter().zip(&self.sources) {
            match by_kind.iter_mut().find(|(k, _)| k == kind) {
                Some((_, names)) => names.push(source.name),
                None => by_kind.push((*kind, vec![source.name])),
            }
        }
        for (kind, names) in &by_kind {
            write!(f, "{} from {}s, ", names.join(" and "), kind.noun())?;
        }
        write!(f, "the rest from tracepoints)")
    }
}

/// The loaded and attached programs plus the maps userspace reads.
pub struct Loaded {
    /// Keeps programs and links alive.
    pub ebpf: Ebpf,
    pub events: RingBuf<MapData>,
    pub counters: CounterMaps,
    /// The hooks attached.
    pub plan: Plan,
    /// Where connect errors come from (or why they are unavailable).
    pub connect_errors: String,
}

/// The field offsets `hook`'s program needs, from the running kernel.
fn layout(hook: &TracepointHook) -> Result<FieldOffsets, FormatError> {
    Format::read(hook.category, hook.name)?.offsets(hook.required, hook.optional)
}

/// Whether the kprobe alternatives can run here: the kernel has kprobes and
/// its BTF places every `struct sock` member they read. Returns those offsets,
/// or why not.
pub fn kprobe_support(btf: Result<&Btf, &BtfError>) -> Result<SockOffsets, String> {
    system::kprobes_available()?;
    sock_support(btf, "kprobes")
}

/// The `struct sock` offsets from BTF that raw tracepoints and kprobes read
/// the socket with, or why they are unknown (`who` reads them, for messages).
pub fn sock_support(btf: Result<&Btf, &BtfError>, who: &str) -> Result<SockOffsets, String> {
    let btf = btf.map_err(|e| format!("{who} read struct sock through BTF: {e}"))?;
    btf::sock_offsets(btf).map_err(|e| format!("{who} cannot read struct sock here: {e}"))
}

/// A hook a source may use here, with what it needs.
#[derive(PartialEq)]
enum Candidate {
    Raw,
    Tracepoint(FieldOffsets),
    Kprobe,
}

/// Loads the object, applies the filters and attaches every program.
pub fn load(settings: &Settings) -> Result<Loaded, LoadError> {
    if !settings.ring_bytes.is_power_of_two() || settings.ring_bytes < 4096 {
        return Err(LoadError::RingSize(settings.ring_bytes));
    }
    if settings.owner_map_size < MIN_OWNER_MAP_SIZE {
        return Err(LoadError::OwnerMapSize(settings.owner_map_size));
    }
    let filter_pids: u32 = u32::from(!settings.filters.pids.is_empty());
    let owners_max = u64::from(settings.owner_map_size);
    // Tracepoints every plan uses.
    let destroy = layout(&DESTROY)?;
    let shared = SHARED
        .iter()
        .map(|hook| Ok((*hook, layout(hook)?)))
        .collect::<Result<Vec<_>, FormatError>>()?;
    // What each source can use here, in the order to try.
    let btf = Btf::kernel();
    let raw = sock_support(btf.as_ref(), "raw tracepoints");
    let kprobe = kprobe_support(btf.as_ref());
    let mut sources: Vec<(&Source, Vec<Candidate>)> = Vec::new();
    for source in SOURCES {
        let tracepoint = layout(&source.tracepoint);
        let candidates = match settings.hooks {
            Some(HookKind::RawTracepoint) => {
                raw.as_ref()
                    .map_err(|reason| LoadError::RawUnavailable(reason.clone()))?;
                vec![Candidate::Raw]
            }
            Some(HookKind::Tracepoint) => vec![Candidate::Tracepoint(tracepoint?)],
            Some(HookKind::Kprobe) => {
                kprobe
                    .as_ref()
                    .map_err(|reason| LoadError::KprobesUnavailable(reason.clone()))?;
                vec![Candidate::Kprobe]
            }
            None => match (&raw, tracepoint, &kprobe) {
                (Err(_), Err(tracepoint), Err(kprobe)) => {
                    return Err(LoadError::NoHook {
                        data: source.name,
                        tracepoint,
                        kprobe: kprobe.clone(),
                    });
                }
                (raw, tracepoint, kprobe) => [
                    raw.is_ok().then_some(Candidate::Raw),
                    tracepoint.ok().map(Candidate::Tracepoint),
                    kprobe.is_ok().then_some(Candidate::Kprobe),
                ]
                .into_iter()
                .flatten()
                .collect(),
            },
        };
        sources.push((source, candidates));
    }

    // Sockets that predate tracing, whose owners are seeded after loading.
    let existing = sockets::sockets_of(&settings.filters.pids);
    let seeded = u32::from(existing.iter().any(|(_, row)| row.state != tcp::LISTEN));
    let mut loader = EbpfLoader::new();
    loader
        .map_max_entries(maps::EVENTS, settings.ring_bytes)
        .map_max_entries(maps::OWNERS, settings.owner_map_size)
        .override_global(maps::GLOBAL_FILTER_PIDS, &filter_pids, true)
        .override_global(maps::GLOBAL_OWNERS_CAPACITY, &owners_max, true)
        .override_global(maps::GLOBAL_PREEXISTING_SEEDED, &seeded, true);
    let mut layouts: Vec<(&TracepointHook, &FieldOffsets)> = vec![(&DESTROY, &destroy)];
    layouts.extend(shared.iter().map(|(hook, offsets)| (hook, offsets)));
    for (source, candidates) in &sources {
        for candidate in candidates {
            if let Candidate::Tracepoint(offsets) = candidate {
                layouts.push((&source.tracepoint, offsets));
            }
        }
    }
    let mut globals: Vec<(&TracepointHook, &FieldOffsets)> = Vec::new();
    for (hook, offsets) in layouts {
        match globals.iter().find(|(h, _)| h.global == hook.global) {
            Some((h, o)) if *o != offsets => {
                return Err(LoadError::LayoutConflict {
                    global: hook.global,
                    a: format!("{}:{}", h.category, h.name),
                    b: format!("{}:{}", hook.category, hook.name),
                });
            }
            Some(_) => {}
            None => {
                loader.override_global(hook.global, offsets, true);
                globals.push((hook, offsets));
            }
        }
    }
    let retransmit_has_err =
        u32::from(layout(&RETRANSMIT).is_ok_and(|o| o.error != tracer_common::layout::ABSENT));
    loader.override_global(maps::GLOBAL_RETRANSMIT_HAS_ERR, &retransmit_has_err, true);
    let sock_layout = raw.as_ref().copied().unwrap_or(SockOffsets::NONE);
    loader.override_global(GLOBAL_SOCK_LAYOUT, &sock_layout, true);
    // Where the kernel keeps a socket's pending error, for connect outcomes.
    let sk_err = btf.as_ref().map_err(ToString::to_string).and_then(|btf| {
        btf.member_offset("sock", "sk_err")
            .map_err(|e| e.to_string())
    });
    let sk_err_offset = *sk_err.as_ref().unwrap_or(&u32::MAX);
    loader.override_global(GLOBAL_SK_ERR_OFFSET, &sk_err_offset, true);
    let mut ebpf = loader.load(OBJECT).map_err(LoadError::Object)?;

    // The filter must be complete before the first program runs.
    {
        let map = ebpf
            .map_mut(maps::TRACED_PIDS)
            .ok_or(LoadError::NoMap(maps::TRACED_PIDS))?;
        let mut traced =
            HashMap::<_, u32, u8>::try_from(map).map_err(map_error(maps::TRACED_PIDS))?;
        for &pid in &settings.filters.pids {
            traced
                .insert(&pid, &1, 0)
                .map_err(map_error(maps::TRACED_PIDS))?;
        }
    }

    seed_owners(&mut ebpf, existing)?;

    let mut plan = Plan {
        sources: Vec::new(),
        hooks: vec![attach_destroy(&mut ebpf, &mut sources, settings.hooks)?],
    };
    for (source, candidates) in &sources {
        // The first candidate that attaches wins; with none, the first error.
        let mut first_error = None;
        for candidate in candidates {
            let attached = match candidate {
                Candidate::Raw => attach_raw(&mut ebpf, &source.raw)
                    .map(|hook| (HookKind::RawTracepoint, vec![hook])),
                Candidate::Tracepoint(_) => attach_tracepoint(&mut ebpf, &source.tracepoint)
                    .map(|hook| (HookKind::Tracepoint, vec![hook])),
                Candidate::Kprobe => source
                    .kprobes
                    .iter()
                    .map(|hook| attach_kprobe(&mut ebpf, hook))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|hooks| (HookKind::Kprobe, hooks)),
            };
            match attached {
                Ok((kind, hooks)) => {
                    plan.sources.push(kind);
                    plan.hooks.extend(hooks);
                    first_error = None;
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    for (hook, _) in &shared {
        plan.hooks.push(attach_tracepoint(&mut ebpf, hook)?);
    }
    let connect_errors = match sk_err {
        Ok(offset) => format!("connect errors from struct sock.sk_err (BTF offset {offset})"),
        Err(e) => format!("connect errors unavailable: {e}"),
    };

    let events = take_map(&mut ebpf, maps::EVENTS)?;
    let events = RingBuf::try_from(events).map_err(map_error(maps::EVENTS))?;
    let per_cpu = take_map(&mut ebpf, maps::COUNTERS)?;
    let per_cpu = PerCpuArray::try_from(per_cpu).map_err(map_error(maps::COUNTERS))?;
    let owners = take_map(&mut ebpf, maps::OWNER_COUNT)?;
    let owners = Array::try_from(owners).map_err(map_error(maps::OWNER_COUNT))?;
    let counters = CounterMaps { per_cpu, owners };
    Ok(Loaded {
        ebpf,
        events,
        counters,
        plan,
        connect_errors,
    })
}

/// Records the owners of sockets that existed before tracer started: listeners
/// by port (connections they accept inherit the owner from the first event),
/// other connections by their addresses.
fn seed_owners(ebpf: &mut Ebpf, existing: Vec<(u32, sockets::SocketRow)>) -> Result<(), LoadError> {
    let mut comms = std::collections::HashMap::new();
    let (listening, connected): (Vec<_>, Vec<_>) = existing
        .into_iter()
        .map(|(pid, row)| {
            let name = comms.entry(pid).or_insert_with(|| process::comm(pid));
            let mut comm = [0u8; 16];
            let len = name.len().min(15);
            comm[..len].copy_from_slice(&name.as_bytes()[..len]);
            let owner = Owner {
                pid,
                _pad: 0,
                start_ns: 0,
                comm,
            };
            (row, owner)
        })
        .partition(|(row, _)| row.state == tcp::LISTEN);
    // The maps stay in `ebpf` (borrowed, not taken): programs loaded later
    // refer to them by descriptor.
    let map = ebpf
        .map_mut(maps::LISTENERS)
        .ok_or(LoadError::NoMap(maps::LISTENERS))?;
    let mut listeners =
        HashMap::<_, u32, Owner>::try_from(map).map_err(map_error(maps::LISTENERS))?;
    for (row, owner) in &listening {
        listeners
            .insert(&u32::from(row.local_port), owner, 0)
            .map_err(map_error(maps::LISTENERS))?;
    }
    let map = ebpf
        .map_mut(maps::PREEXISTING)
        .ok_or(LoadError::NoMap(maps::PREEXISTING))?;
    let mut preexisting =
        HashMap::<_, SocketKey, Owner>::try_from(map).map_err(map_error(maps::PREEXISTING))?;
    for (row, owner) in &connected {
        preexisting
            .insert(&socket_key(row), owner, 0)
            .map_err(map_error(maps::PREEXISTING))?;
    }
    Ok(())
}

/// The key events of this connection will carry.
fn socket_key(row: &sockets::SocketRow) -> SocketKey {
    fn bytes(ip: std::net::IpAddr) -> (u16, [u8; 16]) {
        let mut b = [0u8; 16];
        match ip {
            std::net::IpAddr::V4(v4) => {
                b[..4].copy_from_slice(&v4.octets());
                (tcp::AF_INET, b)
            }
            std::net::IpAddr::V6(v6) => (tcp::AF_INET6, v6.octets()),
        }
    }
    let (family, saddr) = bytes(row.local);
    let (_, daddr) = bytes(row.remote);
    SocketKey {
        family,
        sport: row.local_port,
        dport: row.remote_port,
        _pad: 0,
        saddr,
        daddr,
    }
}

fn map_error(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> LoadError {
    move |source| LoadError::Map { map, source }
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, LoadError> {
    ebpf.take_map(name).ok_or(LoadError::NoMap(name))
}

/// Attaches teardown: a raw tracepoint when state changes are to come from
/// one, else the classic tracepoint. When the raw one does not attach (and the
/// user did not insist on raw tracepoints), no source tries raw tracepoints.
fn attach_destroy(
    ebpf: &mut Ebpf,
    sources: &mut [(&Source, Vec<Candidate>)],
    hooks: Option<HookKind>,
) -> Result<String, LoadError> {
    let state_raw = sources
        .first()
        .is_some_and(|(_, candidates)| candidates.first() == Some(&Candidate::Raw));
    if state_raw {
        match attach_raw(ebpf, &DESTROY_RAW) {
            Ok(hook) => return Ok(hook),
            Err(e) if hooks == Some(HookKind::RawTracepoint) => return Err(e),
            Err(_) => {
                for (_, candidates) in sources.iter_mut() {
                    candidates.retain(|c| *c != Candidate::Raw);
                }
            }
        }
    }
    attach_tracepoint(ebpf, &DESTROY)
}

/// Loads and attaches a raw tracepoint program; returns how the plan shows it.
fn attach_raw(ebpf: &mut Ebpf, hook: &RawHook) -> Result<String, LoadError> {
    attach(
        ebpf,
        hook.program,
        hook.describe(),
        |p: &mut RawTracePoint| {
            p.load()?;
            p.attach(hook.name()).map(drop)
        },
    )
}

/// Loads and attaches a tracepoint program; returns how the plan shows it.
fn attach_tracepoint(ebpf: &mut Ebpf, hook: &TracepointHook) -> Result<String, LoadError> {
    let name = format!("tracepoint {}:{}", hook.category, hook.name);
    attach(ebpf, hook.program, name, |p: &mut TracePoint| {
        p.load()?;
        p.attach(hook.category, hook.name).map(drop)
    })
}

/// Loads and attaches a kprobe or kretprobe program; returns how the plan shows it.
fn attach_kprobe(ebpf: &mut Ebpf, hook: &KprobeHook) -> Result<String, LoadError> {
    attach(ebpf, hook.program, hook.describe(), |p: &mut KProbe| {
        p.load()?;
        p.attach(hook.function, 0).map(drop)
    })
}

/// Finds `program` in the object as a `P` and loads and attaches it with
/// `load_and_attach`; returns `name`, how the plan shows it. A refusal names
/// the program and the hook.
fn attach<P>(
    ebpf: &mut Ebpf,
    program: &'static str,
    name: String,
    load_and_attach: impl FnOnce(&mut P) -> Result<(), ProgramError>,
) -> Result<String, LoadError>
where
    for<'a> &'a mut P: TryFrom<&'a mut Program, Error = ProgramError>,
{
    let refused = |source: ProgramError| LoadError::Program {
        program,
        hook: name.clone(),
        hint: permission_hint(&source),
        source: Box::new(source),
    };
    let loaded: &mut P = ebpf
        .program_mut(program)
        .ok_or(LoadError::NoProgram(program))?
        .try_into()
        .map_err(refused)?;
    load_and_attach(loaded).map_err(refused)?;
    Ok(name)
}

/// A hint for the errors users can act on.
pub fn permission_hint(err: &aya::programs::ProgramError) -> &'static str {
    let text = format!("{err:?}");
    let denied = text.contains("PermissionDenied") || text.contains("os error 1)");
    if !denied {
        ""
    } else if crate::system::missing_capabilities().is_empty() {
        " (the kernel refuses this program kind even with full privileges: lockdown or missing kernel support)"
    } else {
        " (permission denied: run tracer as root, e.g. with sudo)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sources: &[HookKind]) -> Plan {
        Plan {
            sources: sources.to_vec(),
            hooks: Vec::new(),
        }
    }

    #[test]
    fn plans_say_what_they_use() {
        use HookKind::{Kprobe, RawTracepoint, Tracepoint};
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
