//! Reading `struct sock` directly, at member offsets userspace found in the
//! running kernel's BTF and handed over as load-time globals.

use aya_ebpf::{Global, helpers::bpf_probe_read_kernel};

/// Byte offset of `sk_err` in `struct sock`, from the kernel's BTF; `u32::MAX`
/// when unknown (connect failures then carry no errno).
#[unsafe(no_mangle)]
static SOCK_SK_ERR_OFFSET: Global<u32> = Global::new(u32::MAX);

/// The error the kernel stored on the socket (`sk_err`, e.g. ECONNREFUSED);
/// 0 when there is none or its offset is unknown.
#[inline(always)]
pub fn error(sk: u64) -> i32 {
    let offset = SOCK_SK_ERR_OFFSET.load();
    if offset == u32::MAX {
        return 0;
    }
    // SAFETY: reads kernel memory through bpf_probe_read_kernel.
    unsafe { bpf_probe_read_kernel((sk as *const u8).wrapping_add(offset as usize) as *const i32) }
        .unwrap_or(0)
}
