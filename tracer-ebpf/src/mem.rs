//! Zeroing and copying the plain structs the hooks build (`Event`, `Owner`)
//! eight bytes at a time, and copying the start of a kernel object in one read
//! (`Prefix`).
//!
//! The BPF target has no `memset`/`memcpy`: for a struct-sized fill or copy
//! LLVM calls versions built from byte loops, a few instructions per byte,
//! which cost a hook more than the rest of its work.
//! Volatile 8-byte accesses are never turned back into such calls.

use core::{
    ffi::c_void,
    mem::{MaybeUninit, align_of, size_of},
    ptr::{read_unaligned, read_volatile, write_volatile},
};

use aya_ebpf::helpers::generated;
use tracer_common::layout::ABSENT;

/// Zeroes `slot` in place and returns it as a `T`. In place because
/// returning the value would copy it, and LLVM turns that copy of known zeros
/// back into a `memset` call. `T` must be plain data of a size that is a
/// multiple of 8, aligned to 8 (checked at build time).
#[inline(always)]
pub fn zero<T>(slot: &mut MaybeUninit<T>) -> &mut T {
    const { assert!(size_of::<T>() % 8 == 0 && align_of::<T>() >= 8) };
    let words = slot.as_mut_ptr().cast::<u64>();
    for i in 0..size_of::<T>() / 8 {
        // SAFETY: in bounds and aligned (checked above).
        unsafe { write_volatile(words.add(i), 0) };
    }
    // SAFETY: every byte written; T is plain data, for which zero is valid.
    unsafe { slot.assume_init_mut() }
}

/// A copy of `*src` (map values: the pointer a lookup returned), with the
/// same requirements on `T` as [`zero`].
#[inline(always)]
pub fn copy<T>(src: &T) -> T {
    const { assert!(size_of::<T>() % 8 == 0 && align_of::<T>() >= 8) };
    let mut v = MaybeUninit::<T>::uninit();
    let to = v.as_mut_ptr().cast::<u64>();
    let from = (src as *const T).cast::<u64>();
    for i in 0..size_of::<T>() / 8 {
        // SAFETY: both in bounds and aligned (checked above).
        unsafe { write_volatile(to.add(i), read_volatile(from.add(i))) };
    }
    // SAFETY: every byte copied from a valid T.
    unsafe { v.assume_init() }
}

/// The first `N` bytes of a kernel object (a socket, a tracepoint record),
/// copied by one `bpf_probe_read_kernel`. One read of them costs about what
/// the read of a single member does, and a hook needs several members.
#[repr(C, align(8))]
pub struct Prefix<const N: usize>([u8; N]);

impl<const N: usize> Prefix<N> {
    /// Copies the first `N` bytes at `src` into `slot`; `Err` when the read
    /// faults. In place, as the stack has no room for a second copy.
    #[inline(always)]
    pub fn read(slot: &mut MaybeUninit<Self>, src: *const u8) -> Result<&Self, u32> {
        // SAFETY: the helper checks the source and writes exactly N bytes
        // into `slot` (zeroes on failure). Called directly: aya's wrapper
        // wants initialised memory, which would cost a zeroing first.
        let r = unsafe {
            generated::bpf_probe_read_kernel(
                slot.as_mut_ptr().cast::<c_void>(),
                N as u32,
                src.cast::<c_void>(),
            )
        };
        if r < 0 {
            return Err(0);
        }
        // SAFETY: every byte written by the helper.
        Ok(unsafe { slot.assume_init_ref() })
    }

    /// The `T` at byte `offset`, when the offset is known and the member
    /// lies inside the copy.
    #[inline(always)]
    pub fn get<T: Copy>(&self, offset: u16) -> Option<T> {
        let at = offset as usize;
        if offset == ABSENT || at + size_of::<T>() > N {
            return None;
        }
        // SAFETY: in bounds (checked above); T is plain data, read unaligned.
        Some(unsafe { read_unaligned(self.0.as_ptr().add(at).cast::<T>()) })
    }
}
