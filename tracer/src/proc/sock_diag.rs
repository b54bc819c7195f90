//! One network namespace's TCP sockets through netlink sock_diag
//! (`INET_DIAG_INFO`): the rows `/proc/net/tcp{,6}` would give, plus each
//! connection's `tcp_info` (smoothed RTT, bytes sent and received) and each
//! listener's backlog.

use std::io;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags, Timer, nlas::Nla},
};
use netlink_sys::{Socket, SocketAddr};

use super::sockets::SocketRow;

/// What `tcp_info` says of one connection (a full socket: not TIME_WAIT,
/// not a handshake still in the listener's queue). Only what tracer shows
/// is kept: a sample of a busy host holds one per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    /// Smoothed round-trip time, µs.
    pub srtt_us: u32,
    /// Data bytes sent, each counted once (retransmissions left out).
    pub bytes_sent: u64,
    /// Data bytes received.
    pub bytes_received: u64,
}

/// A sock_diag socket bound and connected to the kernel, ready to dump.
pub fn prepare(mut socket: Socket) -> io::Result<Socket> {
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

/// Calls `f` with every TCP socket (IPv4, then IPv6) of the namespace
/// `socket` was created in. `netns` is written into each row.
pub fn dump(socket: &Socket, netns: u32, mut f: impl FnMut(SocketRow)) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    for family in [AF_INET, AF_INET6] {
        request(socket, family)?;
        'messages: loop {
            let size = socket.recv(&mut &mut buf[..], 0)?;
            let mut rest = &buf[..size];
            while !rest.is_empty() {
                let Some(len) = message_len(rest) else {
                    break;
                };
                match NetlinkMessage::<SockDiagMessage>::deserialize(&rest[..len]) {
                    Ok(message) => match message.payload {
                        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                            f(row_of(&r, netns));
                        }
                        NetlinkPayload::Done(_) => break 'messages,
                        NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                        _ => {}
                    },
                    // One socket the crate cannot read is skipped, not the table.
                    Err(e) => tracing::debug!("a sock_diag message was not understood: {e}"),
                }
                rest = &rest[len..];
            }
        }
    }
    Ok(())
}

/// The length of the first netlink message in `bytes` (aligned to 4), if
/// whole.
fn message_len(bytes: &[u8]) -> Option<usize> {
    let len = u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    if len < 16 || len > bytes.len() {
        return None;
    }
    Some(len.next_multiple_of(4).min(bytes.len()))
}

fn request(socket: &Socket, family: u8) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let socket_id = if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::INFO,
            states: StateFlags::all(),
            socket_id,
        })
        .into(),
    );
    packet.finalize();
    let mut bytes = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut bytes);
    socket.send(&bytes, 0)?;
    Ok(())
}

fn row_of(r: &InetResponse, netns: u32) -> SocketRow {
    let h = &r.header;
    let listening = h.state == tracer_common::tcp::LISTEN;
    let timer = match h.timer {
        None => 0,
        Some(Timer::Retransmit(..)) => 1,
        Some(Timer::KeepAlive(_)) => 2,
        Some(Timer::TimeWait) => 3,
        Some(Timer::Probe(_)) => 4,
    };
    let health = r.nlas.iter().find_map(|nla| match nla {
        Nla::TcpInfo(i) if !listening => Some(Health {
            srtt_us: i.rtt,
            bytes_sent: i.bytes_sent.saturating_sub(i.bytes_retrans),
            bytes_received: i.bytes_received,
        }),
        _ => None,
    });
    SocketRow {
        local: h.socket_id.source_address,
        local_port: h.socket_id.source_port,
        remote: h.socket_id.destination_address,
        remote_port: h.socket_id.destination_port,
        state: h.state,
        inode: u64::from(h.inode),
        netns,
        // A listener's accept queue and backlog; a connection's Recv-Q and
        // Send-Q, as in /proc/net/tcp.
        rx_queue: h.recv_queue,
        tx_queue: if listening { 0 } else { h.send_queue },
        backlog: listening.then_some(h.send_queue),
        timer,
        health,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_connection_has_its_bytes_and_rtt() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(&[7u8; 5000]).unwrap();
        let mut got = [0u8; 5000];
        server.read_exact(&mut got).unwrap();
        server.write_all(&[8u8; 300]).unwrap();
        client.read_exact(&mut got[..300]).unwrap();
        let local = client.local_addr().unwrap().port();

        let socket = prepare(Socket::new(netlink_sys::protocols::NETLINK_SOCK_DIAG).unwrap())
            .expect("a sock_diag socket in our own namespace");
        let mut rows = Vec::new();
        dump(&socket, 42, |r| rows.push(r)).unwrap();
        let listen = rows
            .iter()
            .find(|r| r.local_port == port && r.state == tracer_common::tcp::LISTEN)
            .expect("the listener");
        // std listens with a backlog of 128, capped by somaxconn (4096 by default).
        assert!(listen.backlog.is_some_and(|b| b >= 128), "{listen:?}");
        assert_eq!(listen.netns, 42);
        let conn = rows
            .iter()
            .find(|r| r.local_port == local && r.remote_port == port)
            .expect("the client side");
        let health = conn.health.expect("tcp_info of an established connection");
        assert_eq!(
            (health.bytes_sent, health.bytes_received),
            (5000, 300),
            "{health:?}"
        );
        assert!(health.srtt_us > 0);
        assert_eq!(conn.backlog, None);
    }

    #[test]
    fn message_lengths() {
        let mut bytes = vec![0u8; 40];
        bytes[..4].copy_from_slice(&20u32.to_ne_bytes());
        assert_eq!(message_len(&bytes), Some(20));
        bytes[..4].copy_from_slice(&18u32.to_ne_bytes());
        assert_eq!(message_len(&bytes), Some(20), "aligned to 4");
        bytes[..4].copy_from_slice(&80u32.to_ne_bytes());
        assert_eq!(message_len(&bytes), None, "cut short");
        assert_eq!(message_len(&bytes[..2]), None);
    }
}
