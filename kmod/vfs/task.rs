// SPDX-License-Identifier: GPL-2.0

//! The current task: signals, rescheduling, capabilities, and the memory
//! cgroup its allocations are charged to.

use kernel::bindings;
use kernel::ffi::c_int;

use super::glue;

/// Whether the current task has been killed (SIGKILL pending): long work
/// that cannot be cut short for ordinary signals stops for this one.
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: Reads the current task's pending signals; process context.
    unsafe { glue::vexfs_fatal_signal_pending() }
}

/// Whether any signal is pending for the current task.
pub(crate) fn signal_pending() -> bool {
    kernel::current!().signal_pending()
}

/// Gives the CPU away if something else should run (a no-op on fully
/// preemptible kernels, where preemption happens by itself).
pub(crate) fn cond_resched() {
    // SAFETY: Called from process context without spinlocks held.
    unsafe { glue::vexfs_cond_resched() };
}

/// A capability (`CAP_*`).
#[derive(Clone, Copy)]
pub(crate) struct Capability(u32);

impl Capability {
    pub(crate) const SYS_ADMIN: Self = Self(bindings::CAP_SYS_ADMIN);

    /// Whether the current task has it in the initial user namespace,
    /// without an audit record for a refusal (a probe, as tmpfs' listing
    /// of `trusted.*` attributes is).
    pub(crate) fn capable_noaudit(self) -> bool {
        // SAFETY: Checks the current task's credentials; `init_user_ns` is
        // static.
        unsafe { bindings::ns_capable_noaudit(&raw mut bindings::init_user_ns, self.0 as c_int) }
    }
}

/// A reference to the memory cgroup of the task that made it, so that
/// work done later on its behalf (by a kernel worker) is charged to it.
/// A css reference: a removed cgroup stays (dying) until it is dropped.
/// (An `obj_cgroup` reference, which follows reparenting, has no exported
/// way to get it.)
pub(crate) struct MemcgRef(*mut bindings::mem_cgroup);

// SAFETY: A counted reference to a cgroup, usable from any task.
unsafe impl Send for MemcgRef {}
// SAFETY: As above; `activate` only reads the pointer.
unsafe impl Sync for MemcgRef {}

impl MemcgRef {
    /// The current task's memory cgroup (null if memcg is disabled).
    pub(crate) fn current() -> Self {
        // SAFETY: Process context; returns a counted reference to the
        // current task's (or its active remote) memcg, or null.
        Self(unsafe { glue::vexfs_memcg_current() })
    }

    /// Runs `f` with the `__GFP_ACCOUNT` allocations of the current task
    /// charged to this cgroup (scoped, so that nested scopes end in order).
    pub(crate) fn charge_within<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: We hold a reference for longer than the scope lasts.
        let old = unsafe { glue::vexfs_memcg_activate(self.0) };
        let _restore = ActiveMemcg(old);
        f()
    }
}

impl Drop for MemcgRef {
    fn drop(&mut self) {
        // SAFETY: Our reference, from `current` (null is allowed).
        unsafe { glue::vexfs_memcg_put(self.0) };
    }
}

/// Restores the charging scope [`MemcgRef::charge_within`] replaced (also
/// if `f` unwinds).
struct ActiveMemcg(*mut bindings::mem_cgroup);

impl Drop for ActiveMemcg {
    fn drop(&mut self) {
        // SAFETY: Restores what `charge_within` replaced, on the same task,
        // in scope order.
        unsafe { glue::vexfs_memcg_activate(self.0) };
    }
}

/// A random number from the kernel's CSPRNG (`get_random_u64()`).
pub(crate) fn random_u64() -> u64 {
    // SAFETY: No preconditions; may be called from any context.
    unsafe { bindings::get_random_u64() }
}

/// Seconds since the epoch (`ktime_get_real_seconds()`).
pub(crate) fn real_seconds() -> i64 {
    // SAFETY: No preconditions.
    unsafe { bindings::ktime_get_real_seconds() }
}
