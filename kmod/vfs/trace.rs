// SPDX-License-Identifier: GPL-2.0

//! VexFS's tracepoints (`kmod/vexfs_trace.h`), called from Rust.
//!
//! The C side defines each event and a `rust_do_trace_<event>` function
//! that fires it; Rust tests the tracepoint's static key first, so a
//! disabled event costs that test only. This is the pattern of the
//! kernel's `declare_trace!` (`rust/kernel/tracepoint.rs`), whose macro
//! names the kernel's own bindings for the tracepoint symbols: a module's
//! tracepoints are its own, so it declares them here.

use kernel::bindings;
use kernel::time::{Instant, Monotonic};

/// One "operation returned" event (`DEFINE_VEXFS_OP_DONE`).
pub(crate) struct OpDone {
    enabled: fn() -> bool,
    emit: unsafe extern "C" fn(dev: bindings::dev_t, ino: u64, ret: i64, ns: u64),
}

/// Declares the events of `vexfs_trace.h` by name.
macro_rules! op_done_events {
    ($($name:ident),* $(,)?) => {$(
        kernel::macros::paste! {
            #[doc = concat!("The `", stringify!($name), "` event.")]
            pub(crate) static [< $name:upper >]: OpDone = {
                // The tracepoint structure has members bindgen made opaque;
                // only its key is read, as the kernel's bindings do.
                #[allow(improper_ctypes)]
                unsafe extern "C" {
                    static [< __tracepoint_ $name >]: bindings::tracepoint;
                    fn [< rust_do_trace_ $name >](
                        dev: bindings::dev_t,
                        ino: u64,
                        ret: i64,
                        ns: u64,
                    );
                }
                fn enabled() -> bool {
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
                OpDone { enabled, emit: [< rust_do_trace_ $name >] }
            };
        }
    )*};
}

op_done_events!(
    vexfs_lookup_done,
    vexfs_create_done,
    vexfs_unlink_done,
    vexfs_read_done,
    vexfs_write_done,
    vexfs_fsync_done,
);

/// An operation being timed for its event: started only while the event
/// is enabled, so a disabled one reads no clock.
pub(crate) struct OpTimer {
    event: &'static OpDone,
    start: Option<Instant<Monotonic>>,
}

impl OpDone {
    /// Starts timing an operation for this event.
    #[inline]
    pub(crate) fn start(&'static self) -> OpTimer {
        OpTimer {
            event: self,
            start: (self.enabled)().then(Instant::now),
        }
    }
}

impl OpTimer {
    /// Ends the operation: emits the event if it was enabled at the start.
    /// `target` names the inode (`dev`, `ino`), read only then. An event
    /// disabled meanwhile reaches no probe: the C side finds none attached.
    #[inline]
    pub(crate) fn done(self, ret: i64, target: impl FnOnce() -> (u32, u64)) {
        let Some(start) = self.start else {
            return;
        };
        let ns = start.elapsed().as_nanos();
        let (dev, ino) = target();
        // SAFETY: The event's C function takes plain values and may be
        // called from any context where the operation itself ran.
        unsafe { (self.event.emit)(dev, ino, ret, ns as u64) };
    }
}
