//! Hooks: cgroup programs, attached to the cgroup v2 root (or each
//! `--cgroup`), that see DNS over UDP and TCP port 53.
//!
//! - `cgroup/connect4|6` and `cgroup/sendmsg4|6` run in the process that
//!   connects or sends to port 53: they record its socket's cookie with the
//!   process as owner ([`DNS_SOCKETS`]).
//! - `cgroup_skb/egress|ingress` run for every packet of every socket: they
//!   leave at once unless the packet is UDP or TCP to (egress) or from
//!   (ingress) port 53, read straight from the packet. A DNS packet's owner
//!   is its socket's, by cookie; the header and the question are parsed
//!   (bounded) and only the id, rcode, question name and type are sent.
//!
//! Every program lets the packet or call through: they only watch.

use aya_ebpf::{
    EbpfContext as _, Global,
    bindings::BPF_ANY,
    helpers::{bpf_ktime_get_ns, generated},
    macros::{cgroup_skb, cgroup_sock_addr},
    programs::{SkBuffContext, SockAddrContext},
};
use network_types::{
    ip::{IpProto, Ipv4Hdr, Ipv6Hdr},
    tcp::TcpHdr,
    udp::UdpHdr,
};
use tracer_common::{
    Counter, Event, EventKind, Owner,
    dns::{self, DnsEvent, FLAG_ANSWER, FLAG_TCP, Message, NAME_MAX},
    event::FLAG_UNATTRIBUTED,
    tcp::{AF_INET, AF_INET6},
};

use crate::{
    emit,
    maps::{DNS_SOCKETS, FILTER_PIDS, TRACED_PIDS, bump},
    mem, owner,
};

/// 1 when only the sockets of `--pid` processes are recorded (see
/// `tracer_common::maps::GLOBAL_DNS_BY_PID`).
#[unsafe(no_mangle)]
static DNS_BY_PID: Global<u32> = Global::new(0);

/// What the cgroup programs return to let the call or packet through.
const PASS: i32 = 1;

/// Labels a name of at most [`NAME_MAX`] bytes can have.
const LABELS_MAX: usize = 128;

#[cgroup_sock_addr(connect4)]
pub fn dns_connect4(ctx: SockAddrContext) -> i32 {
    remember(&ctx);
    PASS
}

#[cgroup_sock_addr(connect6)]
pub fn dns_connect6(ctx: SockAddrContext) -> i32 {
    remember(&ctx);
    PASS
}

#[cgroup_sock_addr(sendmsg4)]
pub fn dns_sendmsg4(ctx: SockAddrContext) -> i32 {
    remember(&ctx);
    PASS
}

#[cgroup_sock_addr(sendmsg6)]
pub fn dns_sendmsg6(ctx: SockAddrContext) -> i32 {
    remember(&ctx);
    PASS
}

/// Records the calling process as the owner of a socket that connects or
/// sends to port 53. The in-kernel `--pid` filter applies here; `--cgroup`
/// alone needs no check, as the programs are then attached to those
/// cgroups (with `--pid` too, `TRACED_PIDS` also holds the processes that
/// were in them at start).
#[inline(always)]
fn remember(ctx: &SockAddrContext) {
    // SAFETY: the context the kernel passed; `user_port` is readable in
    // every sock_addr program (the port in network order, in the low half).
    let port = unsafe { (*ctx.sock_addr).user_port } as u16;
    if port != dns::PORT.to_be() {
        return;
    }
    let pid = owner::current_pid();
    if DNS_BY_PID.load() != 0 && unsafe { TRACED_PIDS.get(&pid) }.is_none() {
        return;
    }
    let mut slot = core::mem::MaybeUninit::<Owner>::uninit();
    let owner = mem::zero(&mut slot);
    owner.pid = pid;
    // SAFETY: helpers of every sock_addr program; the comm buffer is 16 bytes.
    unsafe {
        owner.start_ns = bpf_ktime_get_ns();
        generated::bpf_get_current_comm(owner.comm.as_mut_ptr().cast(), 16);
        let cookie = generated::bpf_get_socket_cookie(ctx.as_ptr());
        let _ = DNS_SOCKETS.insert(&cookie, owner, BPF_ANY.into());
    }
}

#[cgroup_skb(egress)]
pub fn dns_egress(ctx: SkBuffContext) -> i32 {
    let _ = message(&ctx, false);
    PASS
}

#[cgroup_skb(ingress)]
pub fn dns_ingress(ctx: SkBuffContext) -> i32 {
    let _ = message(&ctx, true);
    PASS
}

/// Where a packet's transport header is, and what it carries.
struct Packet {
    family: u16,
    tcp: bool,
    /// Offset of the UDP or TCP header.
    l4: usize,
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
}

/// The packet's IP and transport headers, when it is UDP or TCP to
/// (`ingress` false) or from (`ingress` true) port 53: read from the
/// packet's linear data, so that other packets cost a few loads.
#[inline(always)]
fn dns_packet(ctx: &SkBuffContext, ingress: bool) -> Option<Packet> {
    let data = ctx.data();
    let end = ctx.data_end();
    if data + Ipv4Hdr::LEN > end {
        return None;
    }
    // SAFETY: in bounds (checked against data_end just above or below).
    let first = unsafe { *(data as *const u8) };
    let mut p = Packet {
        family: 0,
        tcp: false,
        l4: 0,
        src: [0; 16],
        dst: [0; 16],
        sport: 0,
        dport: 0,
    };
    let proto = match first >> 4 {
        4 => {
            let ip = unsafe { &*(data as *const Ipv4Hdr) };
            // A later fragment has no transport header.
            if u16::from_be_bytes(ip.frags) & 0x1fff != 0 {
                return None;
            }
            p.family = AF_INET;
            p.l4 = usize::from(first & 0x0f) * 4;
            p.src[..4].copy_from_slice(&ip.src_addr);
            p.dst[..4].copy_from_slice(&ip.dst_addr);
            ip.proto
        }
        6 => {
            if data + Ipv6Hdr::LEN > end {
                return None;
            }
            let ip = unsafe { &*(data as *const Ipv6Hdr) };
            p.family = AF_INET6;
            p.l4 = Ipv6Hdr::LEN;
            p.src = ip.src_addr;
            p.dst = ip.dst_addr;
            ip.next_hdr
        }
        _ => return None,
    };
    p.tcp = match proto {
        x if x == IpProto::Udp as u8 => false,
        x if x == IpProto::Tcp as u8 => true,
        _ => return None,
    };
    let ports = data + (p.l4 & 0x3f);
    if ports + 4 > end {
        return None;
    }
    // SAFETY: in bounds (checked just above).
    let ports = unsafe { *(ports as *const [u8; 4]) };
    p.sport = u16::from_be_bytes([ports[0], ports[1]]);
    p.dport = u16::from_be_bytes([ports[2], ports[3]]);
    let server = if ingress { p.sport } else { p.dport };
    (server == dns::PORT).then_some(p)
}

#[inline(always)]
fn message(ctx: &SkBuffContext, ingress: bool) -> Result<(), i64> {
    let Some(p) = dns_packet(ctx, ingress) else {
        return Ok(());
    };
    // SAFETY: a helper of cgroup_skb programs, given their context.
    let cookie = unsafe { generated::bpf_get_socket_cookie(ctx.as_ptr()) };
    // SAFETY: the map value is copied out at once.
    let owner = unsafe { DNS_SOCKETS.get(&cookie) }.map(mem::copy);
    if owner.is_none() && FILTER_PIDS.load() != 0 {
        return Ok(());
    }
    // Where the DNS message starts: after the UDP header, or after the TCP
    // header and the message's two-byte length.
    let mut at = (p.l4 & 0x3f) + UdpHdr::LEN;
    if p.tcp {
        let offsets: u8 = ctx.load((p.l4 & 0x3f) + 12)?;
        at = (p.l4 & 0x3f) + usize::from(offsets >> 4) * 4 + 2;
        if at < (p.l4 & 0x3f) + TcpHdr::LEN + 2 {
            return Ok(());
        }
    }
    let header: [u8; 12] = ctx.load(at)?;
    let flags = u16::from_be_bytes([header[2], header[3]]);
    let answer = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0x0f;
    let questions = u16::from_be_bytes([header[4], header[5]]);
    if answer != ingress || opcode != 0 || questions != 1 {
        return Ok(());
    }
    // The question's name: labels up to the zero length.
    let name = at + 12;
    let mut end = name;
    for _ in 0..LABELS_MAX {
        let len: u8 = ctx.load(end)?;
        if len == 0 {
            break;
        }
        // A compression pointer has no place in a question.
        if len & 0xc0 != 0 {
            return Ok(());
        }
        end += usize::from(len) + 1;
        if end - name > NAME_MAX {
            return Ok(());
        }
    }
    let qtype: [u8; 2] = ctx.load(end + 1)?;

    let mut slot = core::mem::MaybeUninit::uninit();
    // SAFETY: a helper of every program.
    let ev = emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.kind = EventKind::Dns as u32;
    ev.sk = cookie;
    ev.family = p.family;
    // Local first, the server second.
    if ingress {
        (ev.saddr, ev.sport, ev.daddr, ev.dport) = (p.dst, p.dport, p.src, p.sport);
    } else {
        (ev.saddr, ev.sport, ev.daddr, ev.dport) = (p.src, p.sport, p.dst, p.dport);
    }
    ev.flags = if ingress { FLAG_ANSWER } else { 0 } | if p.tcp { FLAG_TCP } else { 0 };
    // So that a record lost to a full ring buffer still counts as a query.
    ev.old_state = u8::from(ingress);
    ev.new_state = ev.old_state;
    match owner {
        Some(o) => {
            ev.pid = o.pid;
            ev.comm = o.comm;
        }
        None => {
            bump(Counter::Unattributed);
            ev.flags |= FLAG_UNATTRIBUTED;
        }
    }
    let name_len = (end - name) as u8;
    ev.value = dns::pack(Message {
        id: u16::from_be_bytes([header[0], header[1]]),
        qtype: u16::from_be_bytes(qtype),
        rcode: (flags & 0x0f) as u8,
        name_len,
    });
    emit_with_name(ctx, ev, name, name_len);
    Ok(())
}

/// Writes `ev` and the `len` bytes of the name at `name` in the packet as
/// one [`DnsEvent`]; counts it as lost when the ring buffer is full.
#[inline(always)]
fn emit_with_name(ctx: &SkBuffContext, ev: &Event, name: usize, len: u8) {
    let Some(mut entry) = crate::maps::EVENTS.reserve::<DnsEvent>(0) else {
        bump(Counter::Dropped);
        emit::lost(ev);
        return;
    };
    let record = entry.as_mut_ptr();
    // SAFETY: the reserved record is ours until submitted; `len` is 1..=255,
    // within `name`'s 256 bytes. Bytes past `len` are never read.
    unsafe {
        core::ptr::addr_of_mut!((*record).header).write(mem::copy(ev));
        if len > 0 {
            // 1..=256 as the verifier sees it: 6.1's does not learn from
            // `len != 0` that the length is at least 1.
            // (Read back through memory, or LLVM folds the mask away.)
            let less = u32::from(len) - 1;
            let len = (core::ptr::read_volatile(&less) & 0xff) + 1;
            generated::bpf_skb_load_bytes(
                ctx.as_ptr(),
                name as u32,
                core::ptr::addr_of_mut!((*record).name).cast(),
                len,
            );
        }
    }
    bump(Counter::Submitted);
    entry.submit(emit::wakeup());
}
