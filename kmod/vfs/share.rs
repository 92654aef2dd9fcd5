// SPDX-License-Identifier: GPL-2.0

//! One request's work on several CPUs: the caller and up to
//! [`MAX_HELPERS`] workers of the module's workqueue take numbered pieces
//! of it in turn, each into a slot of its own.
//!
//! The caller's data stays on the caller's stack: a helper reaches it only
//! once it has marked itself running, and the caller, when its own pieces
//! are done, either takes back each helper that has not started (it will
//! do nothing when it runs) or waits for the running ones. Pieces are
//! handed out one at a time, so a helper that starts late (a busy machine)
//! takes fewer and costs the caller no wait. On an error or a signal the
//! caller raises a stop flag, which every piece checks between its FPU
//! sections: a wait for a helper is then one section long.
//!
//! Helpers run with kernel credentials, so the work must not depend on the
//! caller's: the search shares only scans that need no permission check
//! (see `Collection::search`).

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use kernel::alloc::flags::GFP_KERNEL_ACCOUNT;
use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::{Arc, Completion};
use kernel::workqueue::{Work, WorkItem};

use super::sync::workqueue;

/// Most helpers of one request (so at most four CPUs).
pub(crate) const MAX_HELPERS: usize = 3;

/// Bytes a request allocates per helper for its work item (the `Arc`
/// with its header), for callers' in-flight budgets.
pub(crate) const HELPER_BYTES: usize =
    core::mem::size_of::<Helper>() + 2 * core::mem::size_of::<usize>();

/// CPUs online now (a hint: CPUs may come and go).
pub(crate) fn online_cpus() -> usize {
    // SAFETY: `__num_online_cpus` is an `atomic_t` the kernel keeps for
    // the whole run; a volatile read of its counter is an atomic_read().
    let n = unsafe { core::ptr::read_volatile(&raw const bindings::__num_online_cpus.counter) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Helpers worth starting for work of `cost` (any unit) when `min_cost`
/// is worth one CPU: none below it, then one more per `min_cost`, at most
/// one fewer than the CPUs online or than `max_cpus`, and at most
/// [`MAX_HELPERS`].
pub(crate) fn helpers_for(cost: usize, min_cost: usize, max_cpus: usize) -> usize {
    (cost / min_cost.max(1))
        .min(online_cpus() - 1)
        .min(max_cpus.saturating_sub(1))
        .min(MAX_HELPERS)
}

/// A piece of work: `work(piece, slot, stop)` does piece number `piece`
/// into `slot`, and returns early with `EINTR` once `stop` is raised.
pub(crate) type PieceFn<'a, S> = dyn Fn(usize, &mut S, &AtomicBool) -> Result + Sync + 'a;

/// What the caller and its helpers share: the work and the next piece.
struct Pieces<'a, S> {
    work: &'a PieceFn<'a, S>,
    count: usize,
    next: AtomicUsize,
    stop: AtomicBool,
}

impl<S> Pieces<'_, S> {
    /// Takes pieces until none is left or `stop` is raised; raises `stop`
    /// on an error.
    fn take(&self, slot: &mut S) -> Result {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err(EINTR);
            }
            let piece = self.next.fetch_add(1, Ordering::Relaxed);
            if piece >= self.count {
                return Ok(());
            }
            if let Err(e) = (self.work)(piece, slot, &self.stop) {
                self.stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
    }
}

/// Runs `pieces` pieces of `work`: `slots[0]` is the caller's, each other
/// slot a helper's on the module's workqueue (fewer helpers if one cannot
/// be allocated: the caller then does more). Returns the caller's result
/// (an error of a helper raised `stop`, so the caller's is an error too);
/// a slot may then hold part of its pieces. On return no helper touches
/// `slots` or `work` any more.
pub(crate) fn run<S: Send>(slots: &mut [S], pieces: usize, work: &PieceFn<'_, S>) -> Result {
    let shared = Pieces {
        work,
        count: pieces,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    };
    let Some((mine, others)) = slots.split_first_mut() else {
        return Err(EINVAL);
    };
    let mut helpers = KVec::with_capacity(others.len(), GFP_KERNEL_ACCOUNT)?;
    for slot in others.iter_mut() {
        let helper = Helper::new(
            take_pieces::<S>,
            (&raw const shared).cast(),
            (slot as *mut S).cast(),
        );
        let Ok(helper) = helper else {
            break;
        };
        if helpers.push(helper.clone(), GFP_KERNEL_ACCOUNT).is_err() {
            break;
        }
        // A new item is in no queue, so this queues it.
        let _ = workqueue().enqueue(helper);
    }
    let mut result = shared.take(mine);
    for helper in &helpers {
        if !helper.abandon() {
            // It is running: it stops after its piece (or its section, if
            // `stop` was raised).
            helper.done.wait_for_completion();
        }
    }
    if result.is_ok() && shared.stop.load(Ordering::Relaxed) {
        result = Err(EINTR);
    }
    result
}

/// The output of one piece of [`run_each`].
pub(crate) type EachFn<'a, S, T> = dyn Fn(usize, &mut S, &mut T, &AtomicBool) -> Result + Sync + 'a;

/// [`run`] with one piece per element of `outs`: piece `i` runs
/// `work(i, slot, &mut outs[i], stop)`, so each CPU writes the outputs of
/// the pieces it took and no other.
pub(crate) fn run_each<S: Send, T: Send>(
    slots: &mut [S],
    outs: &mut [T],
    work: &EachFn<'_, S, T>,
) -> Result {
    let len = outs.len();
    let base = Outs(outs.as_mut_ptr());
    let piece = |i: usize, slot: &mut S, stop: &AtomicBool| -> Result {
        if i >= len {
            return Err(EINVAL);
        }
        // SAFETY: `run` hands each piece number to one CPU, once, so no
        // two calls reach the same element; `i < len` keeps it inside
        // `outs`, which `run_each` borrows mutably until every helper is
        // done (`run` returns only then).
        let out = unsafe { &mut *base.at(i) };
        work(i, slot, out, stop)
    };
    run(slots, len, &piece)
}

/// The outputs of a [`run_each`], reached by piece number.
struct Outs<T>(*mut T);

impl<T> Outs<T> {
    /// Element `i` (not checked; see `run_each`).
    fn at(&self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
}

// SAFETY: Each element is used by the one CPU that took its piece (see
// `run_each`); `T: Send` lets it be written on another CPU.
unsafe impl<T: Send> Send for Outs<T> {}
// SAFETY: As above: shared only to hand out distinct elements.
unsafe impl<T: Send> Sync for Outs<T> {}

/// Takes pieces from the [`Pieces`] at `shared` into the slot at `slot`.
///
/// # Safety
///
/// `shared` points to a live `Pieces<'_, S>` and `slot` to a live `S` that
/// nothing else uses until this returns.
unsafe fn take_pieces<S>(shared: *const (), slot: *mut ()) {
    // SAFETY: As the caller guarantees.
    let (shared, slot) = unsafe { (&*shared.cast::<Pieces<'_, S>>(), &mut *slot.cast::<S>()) };
    // An error raised `stop`; the requester reports it.
    let _ = shared.take(slot);
}

/// A helper has not started.
const WAITING: u8 = 0;
/// A helper is running: the requester waits for `done`.
const RUNNING: u8 = 1;
/// The requester took the helper back before it started.
const ABANDONED: u8 = 2;

/// One helper's work item.
#[pin_data]
struct Helper {
    state: AtomicU8,
    /// `take_pieces::<S>` for the request's slot type.
    call: unsafe fn(*const (), *mut ()),
    /// The request's [`Pieces`] and this helper's slot (`part`); dereferenced only
    /// in state [`RUNNING`].
    pieces: *const (),
    part: *mut (),
    #[pin]
    done: Completion,
    #[pin]
    work: Work<Helper>,
}

// SAFETY: The raw pointers are used only by the one task that moved the
// helper to `RUNNING`, while the requester waits for it (see `run`); the
// rest is atomics and kernel objects made for sharing.
unsafe impl Send for Helper {}
// SAFETY: As above.
unsafe impl Sync for Helper {}

kernel::impl_has_work! {
    impl HasWork<Self> for Helper { self.work }
}

impl Helper {
    fn new(
        call: unsafe fn(*const (), *mut ()),
        pieces: *const (),
        part: *mut (),
    ) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                state: AtomicU8::new(WAITING),
                call,
                pieces,
                part,
                done <- Completion::new(),
                work <- kernel::new_work!("vexfs_share::work"),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// For the requester: takes the helper back if it has not started
    /// (true), or leaves it running (false).
    fn abandon(&self) -> bool {
        self.state
            .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl WorkItem for Helper {
    type Pointer = Arc<Helper>;

    fn run(this: Arc<Helper>) {
        if this
            .state
            .compare_exchange(WAITING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Abandoned: the request may be gone; touch nothing of it.
            return;
        }
        // SAFETY: `RUNNING`: the requester does not return (so its pieces
        // and this slot live, and only we use the slot) until `done`.
        unsafe { (this.call)(this.pieces, this.part) };
        this.done.complete_all();
    }
}
