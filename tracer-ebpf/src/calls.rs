//! Pairing a kretprobe with the kprobe of the same call. A return probe sees
//! only the return value, so the entry probe leaves what the return needs in
//! `CALLS`, under a key both can compute: the stack address that holds the
//! call's return address. No two calls in flight share it — nested calls,
//! other tasks, other CPUs and interrupts all use other stack slots — and the
//! slot is reused only after the call has returned.

use aya_ebpf::{
    bindings::pt_regs,
    macros::map,
    maps::LruHashMap,
    programs::{ProbeContext, RetProbeContext},
};

/// Calls in flight: stack key → value from the entry probe. An LRU, so entries
/// of calls whose return was never probed (the kernel's kretprobe instances
/// ran out) age out instead of filling the map.
#[map]
static CALLS: LruHashMap<u64, u64> = LruHashMap::with_max_entries(8192, 0);

/// Remembers `value` for the return probe of the call `ctx` entered.
#[inline(always)]
pub fn enter(ctx: &ProbeContext, value: u64) {
    let _ = CALLS.insert(&entry_key(ctx.regs), &value, 0);
}

/// What the entry probe of this call remembered, if anything.
#[inline(always)]
pub fn leave(ctx: &RetProbeContext) -> Option<u64> {
    let key = return_key(ctx.regs);
    // SAFETY: the value is copied out immediately.
    let value = unsafe { CALLS.get(&key) }.copied();
    if value.is_some() {
        let _ = CALLS.remove(&key);
    }
    value
}

// x86-64: on entry the stack pointer points at the return address, which
// `ret` pops, so the return probe sees it 8 bytes higher.
#[cfg(bpf_target_arch = "x86_64")]
#[inline(always)]
fn entry_key(regs: *mut pt_regs) -> u64 {
    // SAFETY: kprobe context is the probed task's pt_regs.
    unsafe { (*regs).rsp }
}

#[cfg(bpf_target_arch = "x86_64")]
#[inline(always)]
fn return_key(regs: *mut pt_regs) -> u64 {
    // SAFETY: as above.
    unsafe { (*regs).rsp }.wrapping_sub(8)
}

// arm64: the return address is in a register; the stack pointer is the same
// on entry and after the return.
#[cfg(bpf_target_arch = "aarch64")]
#[inline(always)]
fn entry_key(regs: *mut pt_regs) -> u64 {
    // SAFETY: kprobe context is the probed task's pt_regs.
    unsafe { (*regs).sp }
}

#[cfg(bpf_target_arch = "aarch64")]
#[inline(always)]
fn return_key(regs: *mut pt_regs) -> u64 {
    // SAFETY: as above.
    unsafe { (*regs).sp }
}

#[cfg(not(any(bpf_target_arch = "x86_64", bpf_target_arch = "aarch64")))]
compile_error!("calls.rs: pairing kprobes with kretprobes is written for x86_64 and aarch64");
