// SPDX-License-Identifier: GPL-2.0

//! The allocator trait and [`FVec`], a growable array whose every
//! allocation is fallible. This is the only file with `unsafe` code.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use super::Error;

/// Where the index gets its memory. In the kernel, `kvmalloc`/`kvfree`
/// (the arrays grow to megabytes); in userland, [`StdAlloc`](crate::StdAlloc).
///
/// The index clones the allocator into each of its arrays, so it should be
/// a cheap handle (a zero-sized type or a reference).
pub trait Alloc: Clone {
    /// A block for `layout` (`layout.size() > 0`), or `None` when out of
    /// memory.
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>>;

    /// Frees a block.
    ///
    /// # Safety
    ///
    /// `ptr` was returned by `alloc` of this allocator or a clone of it,
    /// with this `layout`, and has not been freed since.
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout);
}

/// A growable array of `Copy` values on an [`Alloc`]; growing returns
/// [`Error::OutOfMemory`] instead of panicking or aborting.
pub struct FVec<T: Copy, A: Alloc> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
    alloc: A,
    _own: PhantomData<T>,
}

// SAFETY: `FVec` owns its elements like a `Vec<T>` does; the raw pointer
// is not shared with anything else, so sending it is sending `T`s and `A`.
unsafe impl<T: Copy + Send, A: Alloc + Send> Send for FVec<T, A> {}
// SAFETY: `&FVec` only gives out `&[T]` and `&A`.
unsafe impl<T: Copy + Sync, A: Alloc + Sync> Sync for FVec<T, A> {}

impl<T: Copy, A: Alloc> FVec<T, A> {
    const NOT_ZST: () = assert!(core::mem::size_of::<T>() > 0);

    /// An empty array; allocates nothing.
    pub fn new(alloc: A) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::NOT_ZST;
        Self {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
            alloc,
            _own: PhantomData,
        }
    }

    /// The allocator.
    pub fn allocator(&self) -> &A {
        &self.alloc
    }

    /// Elements it can hold without allocating.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        self.cap * core::mem::size_of::<T>()
    }

    /// Makes room for `additional` more elements (at least doubling).
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), Error> {
        let need = self.len.checked_add(additional).ok_or(Error::OutOfMemory)?;
        if need <= self.cap {
            return Ok(());
        }
        let cap = need.max(self.cap.saturating_mul(2)).max(4);
        // Doubling keeps pushes amortized O(1); near a memory limit, where
        // the doubled block does not fit but the exact one may, take that.
        if self.realloc(cap).is_ok() || cap == need {
            return if self.cap >= need {
                Ok(())
            } else {
                Err(Error::OutOfMemory)
            };
        }
        self.realloc(need)
    }

    /// Shrinks or grows the allocation to exactly `cap >= len` elements.
    fn realloc(&mut self, cap: usize) -> Result<(), Error> {
        let layout = Layout::array::<T>(cap).map_err(|_| Error::OutOfMemory)?;
        let new = self.alloc.alloc(layout).ok_or(Error::OutOfMemory)?;
        let new = new.cast::<T>();
        if self.cap > 0 {
            // SAFETY: the old block holds `len` initialised elements, the new
            // one has room for `cap >= len`; distinct blocks do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(self.ptr.as_ptr(), new.as_ptr(), self.len) };
            self.free_block();
        }
        self.ptr = new;
        self.cap = cap;
        Ok(())
    }

    fn free_block(&mut self) {
        if self.cap == 0 {
            return;
        }
        if let Ok(layout) = Layout::array::<T>(self.cap) {
            // SAFETY: `ptr` came from `alloc` with this layout (same `cap`)
            // and is freed only here, after which `cap` is reset or replaced.
            unsafe { self.alloc.free(self.ptr.cast(), layout) };
        }
        self.cap = 0;
        self.ptr = NonNull::dangling();
    }

    /// Appends `v`, growing if needed.
    pub fn try_push(&mut self, v: T) -> Result<(), Error> {
        self.try_reserve(1)?;
        self.push_within_capacity(v).map_err(|_| Error::OutOfMemory)
    }

    /// Appends `v` if there is room without allocating; gives it back
    /// otherwise. Used by commit steps whose room was reserved beforehand.
    pub fn push_within_capacity(&mut self, v: T) -> Result<(), T> {
        if self.len >= self.cap {
            return Err(v);
        }
        // SAFETY: `len < cap`, so the slot is inside the allocation.
        unsafe { self.ptr.as_ptr().add(self.len).write(v) };
        self.len += 1;
        Ok(())
    }

    /// Sets the length to `len`, filling new elements with `v`.
    pub fn try_resize(&mut self, len: usize, v: T) -> Result<(), Error> {
        if len > self.len {
            self.try_reserve(len - self.len)?;
            while self.len < len {
                // SAFETY: `len <= cap` after the reservation.
                unsafe { self.ptr.as_ptr().add(self.len).write(v) };
                self.len += 1;
            }
        } else {
            self.len = len;
        }
        Ok(())
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: element `len` was initialised and is now past the end.
        Some(unsafe { self.ptr.as_ptr().add(self.len).read() })
    }

    /// Removes every element (keeps the allocation).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Shortens to `len` elements (no-op if already shorter).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Shrinks the allocation to `cap` elements, at least the length (an
    /// empty vector frees it); a larger `cap` changes nothing. On an error
    /// the vector is unchanged.
    pub fn try_shrink_to(&mut self, cap: usize) -> Result<(), Error> {
        let cap = cap.max(self.len);
        if cap >= self.cap {
            return Ok(());
        }
        if cap == 0 {
            self.free_block();
            return Ok(());
        }
        self.realloc(cap)
    }

    /// Swaps contents (and allocators) with `other`.
    pub fn swap_with(&mut self, other: &mut Self) {
        core::mem::swap(self, other);
    }
}

impl<T: Copy, A: Alloc> Deref for FVec<T, A> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` is valid for `len` initialised elements (or is
        // dangling and aligned with `len == 0`).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy, A: Alloc> DerefMut for FVec<T, A> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy, A: Alloc> Drop for FVec<T, A> {
    fn drop(&mut self) {
        self.free_block();
    }
}

impl<T: Copy + core::fmt::Debug, A: Alloc> core::fmt::Debug for FVec<T, A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Hints the CPU to bring the cache line of `p` into all cache levels. A
/// hint only: `p` may be any address (it is never dereferenced, and a
/// prefetch does not fault). `prefetcht0` in inline assembly rather than
/// `_mm_prefetch`, whose `sse` target feature the kernel's soft-float
/// target does not enable; it touches no FPU or SSE state.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` has no architectural effect (no load, no fault,
    // whatever the address, flags kept) and exists on every x86-64 CPU.
    unsafe {
        core::arch::asm!(
            "prefetcht0 [{p}]",
            p = in(reg) p,
            options(nostack, readonly, preserves_flags)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
