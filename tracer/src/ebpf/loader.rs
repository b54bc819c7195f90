//! Loading the eBPF object with the running kernel's field offsets and the
//! user's filters, then attaching the programs.

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
    programs::TracePoint,
};
use tracer_common::{FieldOffsets, Owner, maps, maps::SocketKey, tcp};

use crate::proc::sockets;

use super::{
    OBJECT, btf,
    format::{Format, FormatError},
    hooks::{TRACEPOINTS, TracepointHook},
};

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
}

/// The loaded and attached programs plus the maps userspace reads.
pub struct Loaded {
    /// Keeps programs and links alive.
    pub ebpf: Ebpf,
    pub events: RingBuf<MapData>,
    pub counters: PerCpuArray<MapData, u64>,
    /// One line per attached hook, e.g. `tracepoint sock:inet_sock_set_state`.
    pub plan: Vec<String>,
    /// Where connect errors come from (or why they are unavailable).
    pub connect_errors: String,
}

/// Reads the field offsets every tracepoint program needs from the running kernel.
pub fn layouts() -> Result<Vec<(TracepointHook, FieldOffsets)>, FormatError> {
    TRACEPOINTS
        .iter()
        .map(|hook| {
            let format = Format::read(hook.category, hook.name)?;
            Ok((*hook, format.offsets(hook.required, hook.optional)?))
        })
        .collect()
}

/// Loads the object, applies the filters and attaches every program.
pub fn load(settings: &Settings) -> Result<Loaded, LoadError> {
    if !settings.ring_bytes.is_power_of_two() || settings.ring_bytes < 4096 {
        return Err(LoadError::RingSize(settings.ring_bytes));
    }
    let layouts = layouts()?;
    let filter_pids: u32 = u32::from(!settings.filters.pids.is_empty());

    let mut loader = EbpfLoader::new();
    loader
        .map_max_entries(maps::EVENTS, settings.ring_bytes)
        .override_global(maps::GLOBAL_FILTER_PIDS, &filter_pids, true);
    let mut globals: Vec<(&TracepointHook, &FieldOffsets)> = Vec::new();
    for (hook, offsets) in &layouts {
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
    // Where the kernel keeps a socket's pending error, for connect outcomes.
    let sk_err = btf::member_offset("sock", "sk_err");
    let sk_err_offset = *sk_err.as_ref().unwrap_or(&u32::MAX);
    loader.override_global("SOCK_SK_ERR_OFFSET", &sk_err_offset, true);
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
                .insert(pid, 1, 0)
                .map_err(map_error(maps::TRACED_PIDS))?;
        }
    }

    seed_owners(&mut ebpf, &settings.filters.pids)?;

    let mut plan = Vec::new();
    for (hook, _) in &layouts {
        attach_tracepoint(&mut ebpf, hook)?;
        plan.push(format!("tracepoint {}:{}", hook.category, hook.name));
    }
    let connect_errors = match sk_err {
        Ok(offset) => format!("connect errors from struct sock.sk_err (BTF offset {offset})"),
        Err(e) => format!("connect errors unavailable: {e}"),
    };

    let events = take_map(&mut ebpf, maps::EVENTS)?;
    let events = RingBuf::try_from(events).map_err(map_error(maps::EVENTS))?;
    let counters = take_map(&mut ebpf, maps::COUNTERS)?;
    let counters = PerCpuArray::try_from(counters).map_err(map_error(maps::COUNTERS))?;
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
fn seed_owners(ebpf: &mut Ebpf, pids: &[u32]) -> Result<(), LoadError> {
    let mut comms = std::collections::HashMap::new();
    let (listening, connected): (Vec<_>, Vec<_>) = sockets::sockets_of(pids)
        .into_iter()
        .map(|(pid, row)| {
            let name = comms.entry(pid).or_insert_with(|| sockets::comm(pid));
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
            .insert(u32::from(row.local_port), owner, 0)
            .map_err(map_error(maps::LISTENERS))?;
    }
    let map = ebpf
        .map_mut(maps::PREEXISTING)
        .ok_or(LoadError::NoMap(maps::PREEXISTING))?;
    let mut preexisting =
        HashMap::<_, SocketKey, Owner>::try_from(map).map_err(map_error(maps::PREEXISTING))?;
    for (row, owner) in &connected {
        preexisting
            .insert(socket_key(row), owner, 0)
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

fn attach_tracepoint(ebpf: &mut Ebpf, hook: &TracepointHook) -> Result<(), LoadError> {
    let refused = |source: aya::programs::ProgramError| LoadError::Program {
        program: hook.program,
        hook: format!("tracepoint {}:{}", hook.category, hook.name),
        hint: permission_hint(&source),
        source: Box::new(source),
    };
    let program: &mut TracePoint = ebpf
        .program_mut(hook.program)
        .ok_or(LoadError::NoProgram(hook.program))?
        .try_into()
        .map_err(refused)?;
    program.load().map_err(refused)?;
    program.attach(hook.category, hook.name).map_err(refused)?;
    Ok(())
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
