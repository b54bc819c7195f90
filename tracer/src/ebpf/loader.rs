//! Loading the eBPF object with the running kernel's field offsets and the
//! user's filters, then attaching the programs.

use std::path::PathBuf;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
};
use tracer_common::{
    AcceptOffsets, FieldOffsets, NetnsOffsets, SkbOffsets, SockOffsets, maps, tcp,
};

use crate::{proc::sockets, system};

use super::{
    OBJECT, attach,
    btf::{self, Btf, BtfError},
    counters::CounterMaps,
    format::{Format, FormatError},
    hooks::{Alternative, Hook, HookKind, RETRANSMIT, TracepointHook},
    plan::{self, Optional, Plan, PlanError},
    reasons, seed,
};

/// The smallest owner map accepted (tests use tiny ones to fill them).
pub const MIN_OWNER_MAP_SIZE: u32 = 16;
/// The largest owner map accepted: about 416 MiB of kernel memory (104 bytes
/// an entry, measured on 6.18).
pub const MAX_OWNER_MAP_SIZE: u32 = 4_194_304;

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
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("--cgroup {}: cannot open it: {source}", .dir.display())]
    Cgroup {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// What the user asked to trace.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Processes to trace; with `cgroups` empty too, every process.
    pub pids: Vec<u32>,
    /// cgroup v2 directories whose processes (and those below) are traced.
    pub cgroups: Vec<std::path::PathBuf>,
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
    /// Whether syscall errors are traced, and at what cost to the host.
    pub syscall_errors: Optional,
    /// Where the sockets that predate tracing are read from.
    pub socket_tables: sockets::Source,
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
    /// The programs read sockets' network namespaces (events carry them).
    pub netns_known: bool,
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

/// Where cgroup programs attach: each `--cgroup` (given alone), else the
/// cgroup v2 root (from /proc/mounts), or why there is none.
pub fn cgroup_attach_points(filters: &Filters) -> Result<Vec<PathBuf>, String> {
    let mounts = std::fs::read_to_string("/proc/mounts")
        .map_err(|e| format!("cannot read /proc/mounts: {e}"))?;
    attach_points_in(filters, &mounts)
}

fn attach_points_in(filters: &Filters, mounts: &str) -> Result<Vec<PathBuf>, String> {
    if filters.pids.is_empty() && !filters.cgroups.is_empty() {
        return Ok(filters.cgroups.clone());
    }
    crate::proc::cgroup_filter::v2_root_in(mounts)
        .map(|root| vec![root])
        .ok_or_else(|| {
            "no cgroup v2 file system is mounted (mount -t cgroup2 none DIR mounts one)".to_owned()
        })
}

/// Loads the object, applies the filters and attaches every program.
pub fn load(settings: &Settings) -> Result<Loaded, LoadError> {
    if !settings.ring_bytes.is_power_of_two() || settings.ring_bytes < 4096 {
        return Err(LoadError::RingSize(settings.ring_bytes));
    }
    if settings.owner_map_size < MIN_OWNER_MAP_SIZE {
        return Err(LoadError::OwnerMapSize(settings.owner_map_size));
    }
    let filtered = !settings.filters.pids.is_empty() || !settings.filters.cgroups.is_empty();
    let filter_pids: u32 = u32::from(filtered);
    let filter_cgroups = u32::try_from(settings.filters.cgroups.len()).unwrap_or(u32::MAX);
    let owners_max = u64::from(settings.owner_map_size);

    // What this kernel supports, and the plan it allows.
    let btf = Btf::kernel();
    let raw = sock_support(btf.as_ref(), "raw tracepoints");
    let kprobe = kprobe_support(btf.as_ref());
    let cgroups = cgroup_attach_points(&settings.filters);
    let dns_by_pid = u32::from(!settings.filters.pids.is_empty());
    let available = |alternative: &Alternative| match alternative.kind {
        HookKind::Cgroup => cgroups.as_ref().map(drop).map_err(Clone::clone),
        HookKind::RawTracepoint => raw.as_ref().map(drop).map_err(Clone::clone),
        HookKind::Kprobe => kprobe.as_ref().map(drop).map_err(Clone::clone),
        // Whether the kernel allows tracing programs is known only by trying.
        HookKind::Fexit => btf
            .as_ref()
            .map(drop)
            .map_err(|e| format!("fexit needs the kernel's BTF: {e}")),
        HookKind::Tracepoint => alternative
            .hooks
            .iter()
            .try_for_each(|hook| match hook {
                Hook::Tracepoint(tracepoint) => layout(tracepoint).map(drop),
                _ => Ok(()),
            })
            .map_err(|e| e.to_string()),
    };
    let choices = plan::choose(available, settings.hooks, settings.syscall_errors)?;

    // Sockets that predate tracing, whose owners are seeded after loading:
    // of the processes traced (`sockets_of` takes no pids as every process).
    let mut traced = settings.filters.pids.clone();
    for dir in &settings.filters.cgroups {
        traced.extend(crate::proc::cgroup_filter::processes_under(dir));
    }
    let existing = if filtered && traced.is_empty() {
        Vec::new()
    } else {
        sockets::sockets_of(&traced, settings.socket_tables)
    };
    let seeded = u32::from(existing.iter().any(|(_, row)| row.state != tcp::LISTEN));
    let mut loader = EbpfLoader::new();
    loader
        .map_max_entries(maps::EVENTS, settings.ring_bytes)
        .map_max_entries(maps::OWNERS, settings.owner_map_size)
        .override_global(maps::GLOBAL_FILTER_PIDS, &filter_pids, true)
        .override_global(maps::GLOBAL_FILTER_CGROUPS, &filter_cgroups, true)
        .override_global(maps::GLOBAL_DNS_BY_PID, &dns_by_pid, true)
        .override_global(maps::GLOBAL_OWNERS_CAPACITY, &owners_max, true)
        .override_global(maps::GLOBAL_PREEXISTING_SEEDED, &seeded, true);
    // The field offsets of every tracepoint the plan may attach.
    let mut globals: Vec<(&TracepointHook, FieldOffsets)> = Vec::new();
    let tracepoints = choices
        .iter()
        .flat_map(|choice| &choice.candidates)
        .flat_map(|alternative| alternative.hooks)
        .filter_map(|hook| match hook {
            Hook::Tracepoint(tracepoint) => Some(*tracepoint),
            _ => None,
        });
    for hook in tracepoints {
        let offsets = layout(hook)?;
        match globals.iter().find(|(h, _)| h.global == hook.global) {
            Some((h, o)) if *o != offsets => {
                return Err(LoadError::LayoutConflict {
                    global: hook.global,
                    a: format!("{}:{}", h.category, h.name),
                    b: format!("{}:{}", hook.category, hook.name),
                });
            }
            Some(_) => {}
            None => globals.push((hook, offsets)),
        }
    }
    for (hook, offsets) in &globals {
        loader.override_global(hook.global, offsets, true);
    }
    let retransmit_has_err =
        u32::from(layout(&RETRANSMIT).is_ok_and(|o| o.error != tracer_common::layout::ABSENT));
    loader.override_global(maps::GLOBAL_RETRANSMIT_HAS_ERR, &retransmit_has_err, true);
    let sock_layout = raw.as_ref().copied().unwrap_or(SockOffsets::NONE);
    loader.override_global(maps::GLOBAL_SOCK_LAYOUT, &sock_layout, true);
    // Where the kernel keeps a socket's pending error, for connect outcomes.
    let sk_err = btf.as_ref().map_err(ToString::to_string).and_then(|btf| {
        btf.member_offset("sock", "sk_err")
            .map_err(|e| e.to_string())
    });
    let sk_err_offset = *sk_err.as_ref().unwrap_or(&u32::MAX);
    // Where a socket's network namespace is: without it every listener is
    // taken to be in namespace 0 (keyed by port alone).
    let netns = btf
        .as_ref()
        .ok()
        .and_then(|btf| btf::netns_offsets(btf).ok())
        .unwrap_or(NetnsOffsets::NONE);
    loader.override_global(maps::GLOBAL_NETNS_LAYOUT, &netns, true);
    // Where a listener's accept queue ends: without it an accepted connection
    // goes to the listener on its port that best matches its local address.
    let accept = btf
        .as_ref()
        .ok()
        .and_then(|btf| btf::accept_offsets(btf).ok())
        .unwrap_or(AcceptOffsets::NONE);
    loader.override_global(maps::GLOBAL_ACCEPT_LAYOUT, &accept, true);
    loader.override_global(maps::GLOBAL_SK_ERR_OFFSET, &sk_err_offset, true);
    // Where a listener's backlog is, for the accept queue's capacity.
    let backlog_offset = btf
        .as_ref()
        .ok()
        .and_then(|btf| btf.member_offset("sock", "sk_max_ack_backlog").ok())
        .unwrap_or(u32::MAX);
    loader.override_global(maps::GLOBAL_SK_BACKLOG_OFFSET, &backlog_offset, true);
    // What the drop program reads of a packet, and this kernel's drop
    // reasons (names for userspace, NO_SOCKET's number for the program).
    let kfree = Format::read("skb", "kfree_skb").ok();
    let has_rx_sk = kfree.as_ref().is_some_and(|f| f.field("rx_sk").is_some());
    reasons::load();
    reasons::load_resets();
    let no_socket = reasons::drop_reason_value("NO_SOCKET")
        .and_then(|v| u16::try_from(v).ok())
        .unwrap_or(tracer_common::layout::ABSENT);
    let skb = btf
        .as_ref()
        .ok()
        .and_then(|btf| btf::skb_offsets(btf, has_rx_sk, no_socket).ok())
        .unwrap_or(SkbOffsets::NONE);
    loader.override_global(maps::GLOBAL_SKB_LAYOUT, &skb, true);
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
    // The cgroups, by an open directory each (the map holds the cgroup).
    {
        let map = ebpf
            .map_mut(maps::CGROUPS)
            .ok_or(LoadError::NoMap(maps::CGROUPS))?;
        let mut array = aya::maps::CgroupArray::try_from(map).map_err(map_error(maps::CGROUPS))?;
        for (index, dir) in settings.filters.cgroups.iter().enumerate() {
            let file = std::fs::File::open(dir).map_err(|source| LoadError::Cgroup {
                dir: dir.clone(),
                source,
            })?;
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            array
                .set(index, file, 0)
                .map_err(map_error(maps::CGROUPS))?;
        }
    }
    seed::seed_owners(&mut ebpf, existing, netns != NetnsOffsets::NONE)?;
    let plan = attach::attach_plan(
        &mut ebpf,
        &choices,
        settings.hooks,
        cgroups.as_deref().unwrap_or_default(),
    )?;
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
    let lost = take_map(&mut ebpf, maps::LOST)?;
    let lost = aya::maps::PerCpuHashMap::try_from(lost).map_err(map_error(maps::LOST))?;
    let counters = CounterMaps {
        per_cpu,
        owners,
        lost,
        lost_seen: std::collections::HashMap::new(),
    };
    Ok(Loaded {
        ebpf,
        events,
        counters,
        plan,
        connect_errors,
        netns_known: netns != NetnsOffsets::NONE,
    })
}

pub(super) fn map_error(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> LoadError {
    move |source| LoadError::Map { map, source }
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, LoadError> {
    ebpf.take_map(name).ok_or(LoadError::NoMap(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n\
                          cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";

    #[test]
    fn cgroup_programs_attach_to_the_root_or_each_cgroup_given_alone() {
        let all = Filters::default();
        assert_eq!(
            attach_points_in(&all, HYBRID),
            Ok(vec![PathBuf::from("/sys/fs/cgroup/unified")])
        );
        let cgroups = Filters {
            pids: Vec::new(),
            cgroups: vec![PathBuf::from("/sys/fs/cgroup/unified/a")],
        };
        assert_eq!(
            attach_points_in(&cgroups, HYBRID),
            Ok(cgroups.cgroups.clone())
        );
        // With --pid too, the root: the pid filter then decides.
        let both = Filters {
            pids: vec![1],
            ..cgroups
        };
        assert_eq!(
            attach_points_in(&both, HYBRID),
            Ok(vec![PathBuf::from("/sys/fs/cgroup/unified")])
        );
        let why = attach_points_in(&all, "cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n");
        assert!(
            why.unwrap_err()
                .contains("no cgroup v2 file system is mounted")
        );
    }
}
