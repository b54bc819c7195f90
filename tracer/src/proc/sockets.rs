//! The kernel's TCP socket tables (one per network namespace), walked once
//! per namespace and matched to the socket inodes processes hold: for each
//! /proc sample, and for the owners seeded at load (sockets that existed
//! before tracer started). Read through netlink sock_diag (`sock_diag`),
//! which adds each connection's `tcp_info`; a namespace sock_diag cannot
//! reach is read from `/proc/<pid>/net/tcp{,6}` text instead.

use std::{
    collections::{HashMap, HashSet},
    io::{BufRead as _, BufReader},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

use netlink_sys::Socket;

use super::{
    netns, process,
    sock_diag::{self, Health},
};

/// Where the socket tables are read from (`--socket-tables`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Source {
    /// Netlink sock_diag, with each connection's RTT and bytes and each
    /// listener's backlog; /proc text for a namespace it cannot reach.
    #[default]
    SockDiag,
    /// `/proc/<pid>/net/tcp{,6}` text only.
    Proc,
}

/// One socket of a namespace's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketRow {
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    /// Kernel TCP state number.
    pub state: u8,
    pub inode: u64,
    /// The inode number of the network namespace whose table lists it.
    pub netns: u32,
    /// `rx_queue`: for a listener, the connections waiting in its accept
    /// queue; for a connection, bytes received and not yet read (Recv-Q).
    pub rx_queue: u32,
    /// `tx_queue`: for a connection, bytes sent and not yet acknowledged,
    /// or not yet sent (Send-Q).
    pub tx_queue: u32,
    /// The pending timer (`tr`): 1 retransmit, 2 keepalive, 3 TIME_WAIT,
    /// 4 zero-window probe (the peer's receive window is closed).
    pub timer: u8,
    /// A listener's backlog (`listen()`'s argument, capped by somaxconn);
    /// `None` for connections and where read from /proc.
    pub backlog: Option<u32>,
    /// A connection's `tcp_info`; `None` for listeners, TIME_WAIT and
    /// handshakes, and where read from /proc.
    pub health: Option<Health>,
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
    let (tx_queue, rx_queue) = cols.next()?.split_once(':')?;
    let tx_queue = u32::from_str_radix(tx_queue, 16).ok()?;
    let rx_queue = u32::from_str_radix(rx_queue, 16).ok()?;
    let (timer, _) = cols.next()?.split_once(':')?;
    let timer = u8::from_str_radix(timer, 16).unwrap_or(0);
    let inode = cols.nth(3)?.parse().ok()?;
    Some(SocketRow {
        local,
        local_port,
        remote,
        remote_port,
        state,
        inode,
        // Filled in by the walk, which knows whose table this is.
        netns: 0,
        rx_queue,
        tx_queue,
        timer,
        backlog: None,
        health: None,
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

/// Calls `f` for every row of `dir/tcp` and `dir/tcp6`, reading line by line:
/// a busy host's tables run to tens of megabytes of text.
fn for_each_row(dir: &Path, mut f: impl FnMut(SocketRow)) {
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

/// The one walk of the kernel's socket tables, with the sock_diag sockets it
/// keeps between walks (one per network namespace).
#[derive(Debug, Default)]
pub struct Tables {
    source: Source,
    /// Each namespace's sock_diag socket; `None` where none could be opened
    /// (that namespace is read from /proc). Dropped with the namespace's
    /// last holder: a socket would keep its namespace alive.
    diag: HashMap<u32, Option<Socket>>,
    own_netns: Option<Option<u32>>,
    warned: bool,
}

impl Tables {
    pub fn new(source: Source) -> Self {
        Self {
            source,
            ..Self::default()
        }
    }

    /// Reads the table of each network namespace that `holders` (pids) live
    /// in, once per namespace, and calls `f` with every row and what `held`
    /// maps its inode to (`None` for a socket no one in `held` holds, such
    /// as a TIME_WAIT socket).
    pub fn walk<T: Copy>(
        &mut self,
        holders: impl IntoIterator<Item = u32>,
        held: &HashMap<u64, T>,
        mut f: impl FnMut(SocketRow, Option<T>),
    ) {
        let mut seen_netns = HashSet::new();
        let mut with_holder = |row: SocketRow| {
            let holder = held.get(&row.inode).copied();
            f(row, holder);
        };
        for pid in holders {
            // A namespace that cannot be named is still read, once, as 0.
            let netns = process::netns_inum(pid);
            if !seen_netns.insert(netns) {
                continue;
            }
            let inum = netns.unwrap_or(0);
            if let Some(socket) = netns.and_then(|inum| self.diag_socket(pid, inum)) {
                let mut given = 0usize;
                let dumped = sock_diag::dump(socket, inum, |row| {
                    given += 1;
                    with_holder(row);
                });
                match dumped {
                    Ok(()) => continue,
                    Err(e) => {
                        self.warn_once(&format!(
                            "cannot read network namespace {inum} through sock_diag ({e})"
                        ));
                        // The namespace is read from /proc from now on. Rows
                        // given before the failure are kept, not read twice.
                        self.diag.insert(inum, None);
                        if given > 0 {
                            continue;
                        }
                    }
                }
            }
            for_each_row(Path::new(&format!("/proc/{pid}/net")), |mut row| {
                row.netns = inum;
                with_holder(row);
            });
        }
        self.diag
            .retain(|inum, _| seen_netns.contains(&Some(*inum)));
    }

    /// The sock_diag socket of namespace `inum`, which `pid` lives in.
    fn diag_socket(&mut self, pid: u32, inum: u32) -> Option<&Socket> {
        if self.source == Source::Proc {
            return None;
        }
        let own = *self
            .own_netns
            .get_or_insert_with(|| process::netns_inum(std::process::id()));
        if !self.diag.contains_key(&inum) {
            let opened = if own == Some(inum) {
                netns::sock_diag_here()
            } else {
                netns::sock_diag_of(pid)
            }
            .and_then(sock_diag::prepare);
            let opened = match opened {
                Ok(socket) => Some(socket),
                Err(e) => {
                    self.warn_once(&format!(
                        "cannot open sock_diag in network namespace {inum} ({e})"
                    ));
                    None
                }
            };
            self.diag.insert(inum, opened);
        }
        self.diag.get(&inum)?.as_ref()
    }

    fn warn_once(&mut self, what: &str) {
        if !std::mem::replace(&mut self.warned, true) {
            tracing::warn!(
                "{what}: its sockets are read from /proc/<pid>/net/tcp, without RTT, bytes or listener backlogs"
            );
        }
    }
}

/// Sockets of the given processes (every process when `pids` is empty), from
/// the tables of each network namespace they live in: (holding pid, row).
pub fn sockets_of(pids: &[u32], source: Source) -> Vec<(u32, SocketRow)> {
    let owners = socket_owners(pids);
    let mut holders: Vec<u32> = owners.values().copied().collect();
    holders.sort_unstable();
    holders.dedup();
    let mut out = Vec::new();
    Tables::new(source).walk(holders, &owners, |row, owner| {
        if let Some(pid) = owner {
            out.push((pid, row));
        }
    });
    out
}

/// Socket inode → owning pid, for the given processes (every process when `pids` is empty).
fn socket_owners(pids: &[u32]) -> HashMap<u64, u32> {
    let mut owners = HashMap::new();
    let all: Vec<u32>;
    let pids = if pids.is_empty() {
        all = process::all_pids();
        &all
    } else {
        pids
    };
    for &pid in pids {
        let Some(fds) = process::fds(pid) else {
            continue;
        };
        for inode in fds.socket_inodes {
            owners.entry(inode).or_insert(pid);
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9DBB 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 57542 2 00000000b3ffb171 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D2F0 01 00010000:00000200 04:00000040 00000000  1000        0 99 1 0000000000000000 20 4 30 10 -1
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
        // A listener's accept queue; a connection's queues and its pending
        // zero-window probe.
        assert_eq!(
            (rows[0].rx_queue, rows[0].tx_queue, rows[0].timer),
            (1, 0, 0)
        );
        assert_eq!(
            (rows[1].rx_queue, rows[1].tx_queue, rows[1].timer),
            (0x200, 0x10000, 4)
        );
        assert_eq!(rows[1].inode, 99);
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
    fn own_sockets_are_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        let (pid, _) = sockets_of(&[me], Source::Proc)
            .into_iter()
            .find(|(_, r)| r.local_port == port && r.state == 0x0A)
            .expect("listener in /proc/net/tcp");
        assert_eq!(pid, me);
    }
}
