//! Seeding the owner maps with the sockets that existed before tracer
//! started, found in /proc.

use aya::{Ebpf, maps::HashMap};
use tracer_common::{Owner, maps, maps::SocketKey, tcp};

use crate::proc::{process, sockets};

use super::loader::{LoadError, map_error};

/// Records the owners of sockets that existed before tracer started: listeners
/// by namespace and port (connections they accept inherit the owner from the
/// first event), other connections by their addresses. `netns_known`: the
/// programs read sockets' namespaces (else they key listeners by port alone).
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
        HashMap::<_, u64, Owner>::try_from(map).map_err(map_error(maps::LISTENERS))?;
    for (row, owner) in &listening {
        let netns = if netns_known { row.netns } else { 0 };
        listeners
            .insert(&maps::listener_key(netns, row.local_port), owner, 0)
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
