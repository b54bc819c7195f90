//! The kernel's TCP socket tables (`/proc/net/tcp`, `/proc/net/tcp6`) and the
//! socket inodes each process holds (`/proc/<pid>/fd`), so sockets that existed
//! before tracer started can be attributed.

use std::{
    collections::HashMap,
    io::{BufRead as _, BufReader},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

/// One row of `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketRow {
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    /// Kernel TCP state number.
    pub state: u8,
    pub inode: u64,
}

/// Parses the text of `/proc/net/tcp` or `/proc/net/tcp6`; malformed rows are skipped.
#[cfg(test)]
pub fn parse_table(text: &str) -> Vec<SocketRow> {
    text.lines().skip(1).filter_map(parse_row).collect()
}

fn parse_row(line: &str) -> Option<SocketRow> {
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    let mut cols = line.split_whitespace();
    let (local, local_port) = parse_endpoint(cols.nth(1)?)?;
    let (remote, remote_port) = parse_endpoint(cols.next()?)?;
    let state = u8::from_str_radix(cols.next()?, 16).ok()?;
    let inode = cols.nth(5)?.parse().ok()?;
    Some(SocketRow {
        local,
        local_port,
        remote,
        remote_port,
        state,
        inode,
    })
}

/// `0100007F:1F90` → 127.0.0.1:8080. Addresses are printed as 32-bit words in
/// host (little-endian) order.
fn parse_endpoint(text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_le_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Every TCP socket of the network namespace process `pid` lives in.
pub fn read_tables_of(pid: u32) -> Vec<SocketRow> {
    let mut rows = Vec::new();
    for_each_row(Path::new(&format!("/proc/{pid}/net")), |r| rows.push(r));
    rows
}

/// Calls `f` for every row of `dir/tcp` and `dir/tcp6`, reading line by line:
/// a busy host's tables run to tens of megabytes of text.
pub fn for_each_row(dir: &Path, mut f: impl FnMut(SocketRow)) {
    for name in ["tcp", "tcp6"] {
        let Ok(file) = std::fs::File::open(dir.join(name)) else {
            continue;
        };
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        let mut line = String::new();
        let mut header = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if std::mem::take(&mut header) {
                continue;
            }
            if let Some(row) = parse_row(&line) {
                f(row);
            }
        }
    }
}

/// Sockets of the given processes (every process when `pids` is empty), from
/// the tables of each network namespace they live in: inode → (pid, row).
pub fn sockets_of(pids: &[u32]) -> Vec<(u32, SocketRow)> {
    let owners = socket_owners(pids);
    let mut seen_netns = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut pids_with_sockets: Vec<u32> = owners.values().copied().collect();
    pids_with_sockets.sort_unstable();
    pids_with_sockets.dedup();
    for pid in pids_with_sockets {
        let netns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
        if !seen_netns.insert(netns) {
            continue;
        }
        for row in read_tables_of(pid) {
            if let Some(&owner) = owners.get(&row.inode) {
                out.push((owner, row));
            }
        }
    }
    out
}

/// Socket inode → owning pid, for the given processes (every process when `pids` is empty).
pub fn socket_owners(pids: &[u32]) -> HashMap<u64, u32> {
    let mut owners = HashMap::new();
    let all: Vec<u32>;
    let pids = if pids.is_empty() {
        all = all_pids();
        &all
    } else {
        pids
    };
    for &pid in pids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for entry in dir.flatten() {
            if let Some(inode) = std::fs::read_link(entry.path())
                .ok()
                .and_then(|t| socket_inode(&t.to_string_lossy()))
            {
                owners.entry(inode).or_insert(pid);
            }
        }
    }
    owners
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Every process id in /proc.
pub fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The command name of a process (empty if it is gone).
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9DBB 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 57542 2 00000000b3ffb171 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 99 1 0000000000000000 20 4 30 10 -1
garbage line
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn ipv4_rows() {
        let rows = parse_table(TCP);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].local.to_string(), "127.0.0.1");
        assert_eq!(rows[0].local_port, 0x9DBB);
        assert_eq!((rows[0].state, rows[0].inode), (0x0A, 57542));
        assert_eq!(rows[1].remote_port, 0xD2F0);
        assert_eq!(rows[1].state, 1);
    }

    #[test]
    fn ipv6_rows_including_v4_mapped() {
        let rows = parse_table(TCP6);
        assert_eq!(rows[0].local.to_string(), "::1");
        assert_eq!(rows[0].local_port, 8080);
        assert_eq!(rows[1].local.to_string(), "::ffff:127.0.0.1");
        assert_eq!(rows[1].inode, 4243);
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[1]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn own_sockets_are_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let owners = socket_owners(&[std::process::id()]);
        let row = read_tables_of(std::process::id())
            .into_iter()
            .find(|r| r.local_port == port && r.state == 0x0A)
            .expect("listener in /proc/net/tcp");
        assert_eq!(owners.get(&row.inode), Some(&std::process::id()));
    }
}
