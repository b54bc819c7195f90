//! Reading `struct sock` directly (raw tracepoints and kprobes get only the
//! pointer), at member offsets userspace found in the running kernel's BTF
//! and handed over as load-time globals.

use aya_ebpf::{Global, helpers::bpf_probe_read_kernel};
use tracer_common::{
    AcceptOffsets, Event, NetnsOffsets, SockOffsets, layout::ABSENT, tcp::AF_INET,
};

use crate::mem::Prefix;

#[unsafe(no_mangle)]
static SOCK_LAYOUT: Global<SockOffsets> = Global::new(SockOffsets::NONE);

/// Byte offset of `sk_err` in `struct sock`, from the kernel's BTF; `u32::MAX`
/// when unknown (connect failures then carry no errno). Both plans read it.
#[unsafe(no_mangle)]
static SOCK_SK_ERR_OFFSET: Global<u32> = Global::new(u32::MAX);

/// Byte offset of `sk_max_ack_backlog` in `struct sock`, from BTF;
/// `u32::MAX` when unknown (listeners then carry no backlog).
#[unsafe(no_mangle)]
static SOCK_SK_BACKLOG_OFFSET: Global<u32> = Global::new(u32::MAX);

#[unsafe(no_mangle)]
static NETNS_LAYOUT: Global<NetnsOffsets> = Global::new(NetnsOffsets::NONE);

#[unsafe(no_mangle)]
static ACCEPT_LAYOUT: Global<AcceptOffsets> = Global::new(AcceptOffsets::NONE);

/// The connection the listener `sk` queued last for accept(); 0 when its
/// queue is empty or the kernel's BTF did not say where it is.
#[inline(always)]
pub fn last_queued(sk: u64) -> u64 {
    let o = ACCEPT_LAYOUT.load();
    if o.accept_tail == u32::MAX || sk == 0 {
        return 0;
    }
    // SAFETY: bpf_probe_read_kernel checks both accesses; offsets from BTF.
    let req = unsafe {
        bpf_probe_read_kernel((sk as *const u8).wrapping_add(o.accept_tail as usize) as *const u64)
    }
    .unwrap_or(0);
    if req == 0 {
        return 0;
    }
    unsafe {
        bpf_probe_read_kernel((req as *const u8).wrapping_add(o.req_sk as usize) as *const u64)
    }
    .unwrap_or(0)
}

/// The inode number of the socket's network namespace (as `/proc/PID/ns/net`
/// names it); 0 when the kernel's BTF did not say where it is.
#[inline(always)]
pub fn netns(sk: u64) -> u32 {
    let o = NETNS_LAYOUT.load();
    if o.sk_net == u32::MAX {
        return 0;
    }
    // SAFETY: bpf_probe_read_kernel checks both accesses; offsets from BTF.
    let net = unsafe {
        bpf_probe_read_kernel((sk as *const u8).wrapping_add(o.sk_net as usize) as *const u64)
    }
    .unwrap_or(0);
    net_inum(net)
}

/// The inode number of the network namespace `net` (a `struct net *`); 0
/// when `net` is NULL or the kernel's BTF did not say where it is.
#[inline(always)]
pub fn net_inum(net: u64) -> u32 {
    let o = NETNS_LAYOUT.load();
    if net == 0 || o.net_inum == u32::MAX {
        return 0;
    }
    // SAFETY: bpf_probe_read_kernel checks the access; offset from BTF.
    unsafe {
        bpf_probe_read_kernel((net as *const u8).wrapping_add(o.net_inum as usize) as *const u32)
    }
    .unwrap_or(0)
}

/// Reads a `T` at byte `offset` of the socket at `sk`; `Err` when the offset
/// is unknown or the read faults.
#[inline(always)]
fn member<T>(sk: u64, offset: u16) -> Result<T, u32> {
    if offset == ABSENT {
        return Err(0);
    }
    // SAFETY: bpf_probe_read_kernel checks the access; the offset comes from BTF.
    unsafe { bpf_probe_read_kernel((sk as *const u8).wrapping_add(offset as usize) as *const T) }
        .map_err(|_| 0)
}

/// The socket's TCP state (`skc_state`).
#[inline(always)]
pub fn state(sk: u64) -> Result<u8, u32> {
    member::<u8>(sk, SOCK_LAYOUT.load().state)
}

/// The socket's local port (`skc_num`, host order; 0 once unhashed).
#[inline(always)]
pub fn local_port(sk: u64) -> Result<u16, u32> {
    member::<u16>(sk, SOCK_LAYOUT.load().sport)
}

/// The socket's protocol (`sk_protocol`), e.g. IPPROTO_TCP.
#[inline(always)]
pub fn protocol(sk: u64) -> Result<u16, u32> {
    member::<u16>(sk, SOCK_LAYOUT.load().protocol)
}

/// How many bytes from the start of `struct sock` [`tuple`] copies in one read:
/// the whole `struct sock_common` on the kernels tracer knows (its last tuple
/// member, `skc_v6_rcv_saddr`, ends at byte 88 on x86-64). A state change
/// needs nine members.
const HEAD: usize = 88;

/// The member at `offset`, from the copy `head` when it lies inside, else read
/// from the socket itself.
#[inline(always)]
fn get<T: Copy>(head: &Prefix<HEAD>, sk: u64, offset: u16) -> Result<T, u32> {
    match head.get::<T>(offset) {
        Some(value) => Ok(value),
        None => member(sk, offset),
    }
}

/// Fills family, ports and addresses of `ev` from the socket, as the
/// tracepoints do from theirs.
#[inline(always)]
pub fn tuple(sk: u64, ev: &mut Event) -> Result<(), u32> {
    let o = SOCK_LAYOUT.load();
    let mut slot = core::mem::MaybeUninit::uninit();
    let head = Prefix::<HEAD>::read(&mut slot, sk as *const u8)?;
    ev.family = get::<u16>(head, sk, o.family)?;
    ev.sport = get::<u16>(head, sk, o.sport)?;
    if ev.sport == 0 {
        // Unhashed on the way to CLOSE (or not bound yet, when this is 0 too).
        ev.sport = u16::from_be(member::<u16>(sk, o.inet_sport)?);
    }
    ev.dport = u16::from_be(get::<u16>(head, sk, o.dport)?);
    if ev.family == AF_INET {
        ev.saddr[..4].copy_from_slice(&get::<[u8; 4]>(head, sk, o.saddr)?);
        ev.daddr[..4].copy_from_slice(&get::<[u8; 4]>(head, sk, o.daddr)?);
    } else {
        ev.saddr = get::<[u8; 16]>(head, sk, o.saddr_v6)?;
        ev.daddr = get::<[u8; 16]>(head, sk, o.daddr_v6)?;
    }
    Ok(())
}

/// The `T` at `offset` (from BTF, `u32::MAX` when unknown) in the socket;
/// `None` when unknown or unreadable.
#[inline(always)]
fn member_at<T>(sk: u64, offset: u32) -> Option<T> {
    if offset == u32::MAX {
        return None;
    }
    // SAFETY: reads kernel memory through bpf_probe_read_kernel.
    unsafe { bpf_probe_read_kernel((sk as *const u8).wrapping_add(offset as usize) as *const T) }
        .ok()
}

/// A listener's backlog (`sk_max_ack_backlog`, the `listen()` argument as
/// the kernel capped it); 0 when unknown.
#[inline(always)]
pub fn backlog(sk: u64) -> u32 {
    member_at(sk, SOCK_SK_BACKLOG_OFFSET.load()).unwrap_or(0)
}

/// The error the kernel stored on the socket (`sk_err`, e.g. ECONNREFUSED);
/// 0 when there is none or its offset is unknown.
#[inline(always)]
pub fn error(sk: u64) -> i32 {
    member_at(sk, SOCK_SK_ERR_OFFSET.load()).unwrap_or(0)
}
