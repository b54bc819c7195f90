//! Hook: raw tracepoint `kfree_skb(skb, location, reason[, rx_sk])`, fired
//! for every packet the kernel drops (consumed packets go to `consume_skb`).
//! It runs for every dropped packet on the host, so it leaves at once for
//! what is not TCP over IP.
//!
//! The owner comes from the packet's socket: `rx_sk` (6.12 and later: the
//! receiving socket) or `skb->sk`, looked up in the owner map. A packet with
//! no socket (an input firewall drop happens before the socket lookup) has
//! its addresses read from its IP and TCP headers (`network-types`), and
//! userspace finds the owner by them ([`FLAG_BY_TUPLE`]) in the namespace of
//! the packet's device. Such a drop for a
//! port nobody listens on (`NO_SOCKET`) is skipped: it belongs to no process,
//! and the closed-port resets already count those.

use aya_ebpf::{
    Global,
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use network_types::{
    ip::{IpProto, Ipv4Hdr, Ipv6Hdr},
    tcp::TcpHdr,
};
use tracer_common::{
    EventKind, SkbOffsets,
    event::{FLAG_BY_TUPLE, FLAG_UNATTRIBUTED},
    layout::ABSENT,
    tcp::{AF_INET, AF_INET6, IPPROTO_TCP},
};

use crate::{emit::emit, owner, sock};

#[unsafe(no_mangle)]
static SKB_LAYOUT: Global<SkbOffsets> = Global::new(SkbOffsets::NONE);

/// `ETH_P_IP` and `ETH_P_IPV6` as `skb->protocol` holds them (big-endian),
/// read as a little-endian `u16`.
const ETH_P_IP_BE: u16 = 0x0800u16.to_be();
const ETH_P_IPV6_BE: u16 = 0x86DDu16.to_be();

#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn raw_kfree_skb(ctx: RawTracePointContext) -> i32 {
    match try_kfree_skb(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

/// Reads a `T` at `addr + offset` in kernel memory.
#[inline(always)]
fn at<T>(addr: u64, offset: u16) -> Result<T, u32> {
    if offset == ABSENT {
        return Err(0);
    }
    // SAFETY: bpf_probe_read_kernel checks the access; offsets from BTF.
    unsafe { bpf_probe_read_kernel((addr + u64::from(offset)) as *const T) }.map_err(|_| 0)
}

fn try_kfree_skb(ctx: &RawTracePointContext) -> Result<(), u32> {
    let o = SKB_LAYOUT.load();
    let skb: u64 = ctx.arg(0);
    let protocol: u16 = at(skb, o.protocol)?;
    let v6 = match protocol {
        ETH_P_IP_BE => false,
        ETH_P_IPV6_BE => true,
        _ => return Ok(()),
    };
    let reason = ctx.arg::<u64>(2) as u32;
    let mut sk: u64 = if o.has_rx_sk != 0 { ctx.arg(3) } else { 0 };
    if sk == 0 {
        sk = at(skb, o.sk)?;
    }
    if sk != 0 {
        return by_socket(sk, reason);
    }
    if reason == u32::from(o.no_socket) {
        return Ok(());
    }
    by_packet(skb, &o, v6, reason)
}

/// A drop of a packet of a known socket: its owner and addresses.
#[inline(always)]
fn by_socket(sk: u64, reason: u32) -> Result<(), u32> {
    if sock::protocol(sk)? != IPPROTO_TCP {
        return Ok(());
    }
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.kind = EventKind::Drop as u32;
    ev.sk = sk;
    ev.value = u64::from(reason);
    let state = sock::state(sk)?;
    ev.old_state = state;
    ev.new_state = state;
    sock::tuple(sk, ev)?;
    let owner = owner::lookup(ev.sk);
    if owner::attribute(ev, owner) {
        emit(ev);
    }
    Ok(())
}

/// A drop of a packet with no socket: its addresses from its headers.
#[inline(always)]
fn by_packet(skb: u64, o: &SkbOffsets, v6: bool, reason: u32) -> Result<(), u32> {
    let head: u64 = at(skb, o.head)?;
    let network: u16 = at(skb, o.network_header)?;
    if network == u16::MAX {
        return Ok(());
    }
    let ip = head + u64::from(network);
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    let tcp = if v6 {
        let h: Ipv6Hdr = at(ip, 0)?;
        if h.next_hdr != IpProto::Tcp as u8 {
            return Ok(());
        }
        ev.family = AF_INET6;
        ev.saddr = h.src_addr;
        ev.daddr = h.dst_addr;
        ip + Ipv6Hdr::LEN as u64
    } else {
        let h: Ipv4Hdr = at(ip, 0)?;
        if h.proto != IpProto::Tcp as u8 {
            return Ok(());
        }
        ev.family = AF_INET;
        ev.saddr[..4].copy_from_slice(&h.src_addr);
        ev.daddr[..4].copy_from_slice(&h.dst_addr);
        ip + u64::from(h.ihl())
    };
    let t: TcpHdr = at(tcp, 0)?;
    ev.sport = u16::from_be_bytes(t.source);
    ev.dport = u16::from_be_bytes(t.dest);
    ev.kind = EventKind::Drop as u32;
    ev.value = u64::from(reason);
    ev.flags = FLAG_BY_TUPLE | FLAG_UNATTRIBUTED;
    // The namespace of the device it came by, where its addresses are meant.
    if let Ok(dev) = at::<u64>(skb, o.dev)
        && dev != 0
    {
        ev.netns = sock::net_inum(at::<u64>(dev, o.dev_net).unwrap_or(0));
    }
    emit(ev);
    Ok(())
}
