//! Seeding the owner maps with the sockets that existed before tracer
//! started, found in /proc.

use aya::{Ebpf, maps::HashMap};
use tracer_common::{
    Owner, maps,
    maps::{Listener, SocketKey},
    tcp,
};

use crate::proc::{process, sockets};

use super::loader::{LoadError, map_error};

/// Records the owners of sockets that existed before tracer started: listeners
/// by namespace, port and address (connections they accept inherit the
/// owner), other connections by namespace and addresses. `netns_known`: the
/// programs read sockets' namespaces (else every socket is in namespace 0).
pub fn seed_owners(
    ebpf: &mut Ebpf,
    existing: Vec<(u32, sockets::SocketRow)>,
    netns_known: bool,
) -> Result<(), LoadError> {
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
        HashMap::<_, u64, Listener>::try_from(map).map_err(map_error(maps::LISTENERS))?;
    let mut slots = std::collections::HashMap::<(u32, u16), u16>::new();
    for (row, owner) in &listening {
        let netns = if netns_known { row.netns } else { 0 };
        let slot = slots.entry((netns, row.local_port)).or_default();
        if *slot == maps::LISTENER_SLOTS {
            continue;
        }
        let (family, addr) = address(row.local);
        let listener = Listener {
            owner: *owner,
            sk: 0,
            family,
            _pad: [0; 3],
            addr,
        };
        listeners
            .insert(
                &maps::listener_key(netns, row.local_port, *slot),
                &listener,
                0,
            )
            .map_err(map_error(maps::LISTENERS))?;
        *slot += 1;
    }
    let map = ebpf
        .map_mut(maps::PREEXISTING)
        .ok_or(LoadError::NoMap(maps::PREEXISTING))?;
    let mut preexisting =
        HashMap::<_, SocketKey, Owner>::try_from(map).map_err(map_error(maps::PREEXISTING))?;
    for (row, owner) in &connected {
        let netns = if netns_known { row.netns } else { 0 };
        preexisting
            .insert(&socket_key(row, netns), owner, 0)
            .map_err(map_error(maps::PREEXISTING))?;
    }
    Ok(())
}

/// An address as events carry it: family, and IPv4 in the first 4 bytes.
fn address(ip: std::net::IpAddr) -> (u16, [u8; 16]) {
    let mut b = [0u8; 16];
    match ip {
        std::net::IpAddr::V4(v4) => {
            b[..4].copy_from_slice(&v4.octets());
            (tcp::AF_INET, b)
        }
        std::net::IpAddr::V6(v6) => (tcp::AF_INET6, v6.octets()),
    }
}

/// The key events of this connection, in namespace `netns`, will carry.
fn socket_key(row: &sockets::SocketRow, netns: u32) -> SocketKey {
    let (family, saddr) = address(row.local);
    let (_, daddr) = address(row.remote);
    SocketKey {
        family,
        sport: row.local_port,
        dport: row.remote_port,
        _pad: 0,
        netns,
        saddr,
        daddr,
    }
}
