// SPDX-License-Identifier: GPL-2.0

//! VexFS's tracepoints (`kmod/vexfs_trace.h`), called from Rust.
//!
//! The C side defines each event and a `rust_do_trace_<event>` function
//! that fires it; Rust tests the tracepoint's static key first, so a
//! disabled event costs that test only. This is the pattern of the
//! kernel's `declare_trace!` (`rust/kernel/tracepoint.rs`), whose macro
//! names the kernel's own bindings for the tracepoint symbols: a module's
//! tracepoints are its own, so it declares them here. Each event is a
//! module of this one, with `enabled()` and `fire(..)`.

use kernel::bindings;
use kernel::time::{Instant, Monotonic};

use super::inode::Inode;

/// Declares events of `vexfs_trace.h` with their C prototypes.
macro_rules! declare_events {
    ($($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?);)*) => {$(
        $(#[$attr])*
        pub(crate) mod $name {
            #[allow(unused_imports)]
            use super::bindings;

            kernel::macros::paste! {
                // The tracepoint structure has members bindgen made opaque;
                // only its key is read, as the kernel's bindings do. `mut`:
                // C changes it (the key's count, the probe list), and Rust
                // only ever takes its address.
                #[allow(improper_ctypes)]
                unsafe extern "C" {
                    static mut [< __tracepoint_ $name >]: bindings::tracepoint;
                    fn [< rust_do_trace_ $name >]($($arg: $ty),*);
                }

                /// Whether the event is enabled (a probe is attached).
                #[inline(always)]
                pub(crate) fn enabled() -> bool {
                    // SAFETY: The key is that of a tracepoint C defines
                    // (vexfs_trace.c), which is always okay to query.
                    unsafe {
                        kernel::static_branch_unlikely!(
                            [< __tracepoint_ $name >],
                            bindings::tracepoint,
                            key
                        )
                    }
                }

                /// Fires the event. Called once [`enabled`] said so; an
                /// event disabled meanwhile reaches no probe.
                #[inline(always)]
                pub(crate) fn fire($($arg: $ty),*) {
                    // SAFETY: The event's C function takes plain values and
                    // may be called in any context a VexFS operation runs in.
                    unsafe { [< rust_do_trace_ $name >]($($arg),*) }
                }
            }
        }
    )*};
}

declare_events! {
    /// A directory lookup returned.
    fn vexfs_lookup_done(dev: bindings::dev_t, ino: u64, ret: i64, ns: u64);
    /// A regular file was created (or not).
    fn vexfs_create_done(dev: bindings::dev_t, ino: u64, ret: i64, ns: u64);
    /// An unlink returned.
    fn vexfs_unlink_done(dev: bindings::dev_t, ino: u64, ret: i64, ns: u64);
    /// A read returned.
    fn vexfs_read_done(dev: bindings::dev_t, ino: u64, ret: i64, ns: u64);
    /// A write returned.
    fn vexfs_write_done(dev: bindings::dev_t, ino: u64, ret: i64, ns: u64);
    /// An fsync or fdatasync returned.
    fn vexfs_fsync_done(dev: bindings::dev_t, ino: u64, ret: i64, ns: u64);
    /// A vector batch insert returned.
    fn vexfs_insert_done(dev: bindings::dev_t, ino: u64, count: u32, ret: i64, ns: u64);
    /// A vector batch delete returned.
    fn vexfs_delete_done(dev: bindings::dev_t, ino: u64, count: u32, ret: i64, ns: u64);
    /// A k-NN search returned.
    fn vexfs_search_done(
        dev: bindings::dev_t,
        ino: u64,
        nq: u32,
        k: u32,
        ef: u32,
        flags: u32,
        ret: i64,
        ns: u64,
    );
    /// An FPU section of SIMD work ended.
    fn vexfs_simd_batch_done(floats: u64, ns: u64);
    /// A commit to a durable mount's log returned.
    fn vexfs_commit_done(dev: bindings::dev_t, bytes: u64, inodes: u32, ret: i64, ns: u64);
    /// A checkpoint of a durable mount returned.
    fn vexfs_checkpoint_done(dev: bindings::dev_t, seq: u64, inodes: u64, ret: i64, ns: u64);
}

/// The start of something timed for an event: taken only while the event
/// is enabled, so a disabled one reads no clock.
pub(crate) struct Timer(Option<Instant<Monotonic>>);

impl Timer {
    /// Starts timing if `enabled` (the event's [`enabled`](vexfs_read_done::enabled)).
    #[inline(always)]
    pub(crate) fn start(enabled: bool) -> Timer {
        Timer(enabled.then(Instant::now))
    }

    /// Nanoseconds since the start, if timing started.
    #[inline]
    pub(crate) fn elapsed_ns(&self) -> Option<u64> {
        self.0.map(|start| start.elapsed().as_nanos() as u64)
    }
}

/// What an event names an inode by: its mount's device and its number.
#[inline]
pub(crate) fn inode_id(inode: &Inode) -> (u32, u64) {
    (inode.super_block().dev(), inode.ino())
}

/// What an operation returned, as an event's `ret`: 0 or a negative errno.
#[inline]
pub(crate) fn ret_of<T>(r: &kernel::error::Result<T>) -> i64 {
    match r {
        Ok(_) => 0,
        Err(e) => e.to_errno().into(),
    }
}
