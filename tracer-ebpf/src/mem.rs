//! Zeroing and copying the plain structs the hooks build (`Event`, `Owner`)
//! eight bytes at a time.
//!
//! The BPF target has no `memset`/`memcpy`: for a struct-sized fill or copy
//! LLVM calls versions built from byte loops, a few instructions per byte,
//! which cost a hook more than the rest of its work.
//! Volatile 8-byte accesses are never turned back into such calls.

use core::{
    mem::{MaybeUninit, align_of, size_of},
    ptr::{read_volatile, write_volatile},
};

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
