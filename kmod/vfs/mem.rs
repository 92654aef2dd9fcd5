// SPDX-License-Identifier: GPL-2.0

//! Memory: slab caches for the module's pools, and the page facts the
//! mount limits are computed from.

use core::ffi::CStr;
use core::ptr::NonNull;

use kernel::bindings;
use kernel::prelude::*;

use super::glue;

/// Bytes in a page.
pub(crate) const PAGE_SIZE: usize = bindings::PAGE_SIZE;
/// log2 of [`PAGE_SIZE`].
pub(crate) const PAGE_SHIFT: u32 = bindings::PAGE_SHIFT;

/// Pages of RAM (`totalram_pages()`).
pub(crate) fn totalram_pages() -> u64 {
    // SAFETY: Reads a counter; any context.
    unsafe { glue::vexfs_totalram_pages() }
}

/// A `kmem_cache` of fixed-size objects.
pub(crate) struct KmemCache {
    cache: NonNull<bindings::kmem_cache>,
    object_size: usize,
}

// SAFETY: kmem_cache allocation and free are thread-safe in the kernel; the
// pointer is only destroyed in `drop`, which has exclusive access.
unsafe impl Send for KmemCache {}
// SAFETY: See `Send`; `alloc` and `free` may be called concurrently.
unsafe impl Sync for KmemCache {}

impl KmemCache {
    /// Creates a cache named `name` (shown in /proc/slabinfo) of objects of
    /// `object_size` bytes aligned to `align`.
    pub(crate) fn new(name: &'static CStr, object_size: usize, align: usize) -> Result<Self> {
        // SAFETY: `kmem_cache_args` is a plain C struct for which all-zero
        // means "no constructor, no usercopy region, default freelist".
        let mut args: bindings::kmem_cache_args = unsafe { core::mem::zeroed() };
        args.align = u32::try_from(align)?;
        // The whole object may be copied to and from user space (ioctl
        // staging): declare it, or hardened usercopy refuses the copy.
        args.useroffset = 0;
        args.usersize = u32::try_from(object_size)?;
        // SAFETY: `name` is a NUL-terminated string that lives for the whole
        // module lifetime, as the slab allocator keeps the pointer; `args`
        // is valid for the duration of the call.
        let cache = unsafe {
            bindings::__kmem_cache_create_args(
                name.as_char_ptr(),
                u32::try_from(object_size)?,
                &mut args,
                // Unmerged, so each tier shows in /proc/slabinfo under its own
                // name and a leaked object is reported against it; accounted,
                // so each object is charged to the allocating task's memory
                // cgroup.
                (1 << bindings::_slab_flag_bits__SLAB_NO_MERGE)
                    | (1 << bindings::_slab_flag_bits__SLAB_ACCOUNT),
            )
        };
        let cache = NonNull::new(cache).ok_or(ENOMEM)?;
        Ok(Self { cache, object_size })
    }

    /// Object size in bytes.
    pub(crate) fn object_size(&self) -> usize {
        self.object_size
    }

    /// Allocates one object, or `None` when memory is exhausted.
    pub(crate) fn alloc(&self) -> Option<NonNull<u8>> {
        // SAFETY: `self.cache` is a live cache until `drop`.
        let p = unsafe {
            bindings::kmem_cache_alloc_noprof(self.cache.as_ptr(), bindings::GFP_KERNEL_ACCOUNT)
        };
        NonNull::new(p.cast())
    }

    /// Returns an object to the cache.
    ///
    /// # Safety
    ///
    /// `obj` must come from [`Self::alloc`] of this cache and not be used
    /// after this call.
    pub(crate) unsafe fn free(&self, obj: NonNull<u8>) {
        // SAFETY: Guaranteed by the caller.
        unsafe { bindings::kmem_cache_free(self.cache.as_ptr(), obj.as_ptr().cast()) };
    }
}

impl Drop for KmemCache {
    fn drop(&mut self) {
        // SAFETY: The cache is live and, by the pool's accounting, empty; it
        // is never used again. A leak would be reported by the slab allocator.
        unsafe { bindings::kmem_cache_destroy(self.cache.as_ptr()) };
    }
}

/// The bytes of `v` (the kernel's `AsBytes` has no float impls): f32 has no
/// padding, so every byte is initialised.
#[inline]
pub(crate) fn f32_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: The byte view covers exactly `v`, borrowed shared; u8 has no
    // alignment requirement.
    unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), core::mem::size_of_val(v)) }
}

/// The bytes of `v`, to fill: every bit pattern is a valid f32.
#[inline]
pub(crate) fn f32_bytes_mut(v: &mut [f32]) -> &mut [u8] {
    // SAFETY: The byte view covers exactly `v`, borrowed exclusively; any
    // bytes written form valid f32 values.
    unsafe {
        core::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), core::mem::size_of_val(v))
    }
}

/// `bits` as f32 values (the distance kernels write f32 results into
/// buffers kept as their bit patterns): same size and alignment, and every
/// bit pattern is valid for both.
#[inline]
pub(crate) fn u32_as_f32_mut(bits: &mut [u32]) -> &mut [f32] {
    // SAFETY: As above; the view covers exactly `bits`, borrowed
    // exclusively.
    unsafe { core::slice::from_raw_parts_mut(bits.as_mut_ptr().cast::<f32>(), bits.len()) }
}

/// Copies the values of `src` into `dst` (as many as the shorter holds): a
/// `memcpy`, with no panic path.
#[inline]
pub(crate) fn copy_f32(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    // SAFETY: `n` values are in bounds of both; `dst` is borrowed
    // exclusively, so the two do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr(), n) };
}
