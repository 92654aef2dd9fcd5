// SPDX-License-Identifier: GPL-2.0

//! Locks and deferred work: a reader-writer semaphore guarding data, and
//! the module's workqueue.

use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::marker::PhantomPinned;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::LockClassKey;
use kernel::types::{NotThreadSafe, Opaque};

use kernel::ffi::c_void;

use super::fs::{FileSystem, Fs, SuperBlock};
use super::glue::{self, vexfs_down_write_killable_nested};

/// A reader-writer semaphore (`struct rw_semaphore`) guarding a `T`: any
/// number of readers, or one writer. Both sides may sleep while holding it
/// (allocate, fault in user memory, `cond_resched`).
#[pin_data]
pub(crate) struct RwSem<T> {
    #[pin]
    sem: Opaque<bindings::rw_semaphore>,
    data: UnsafeCell<T>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The semaphore hands out `&T` to several tasks only on the read
// side and `&mut T` to one task at a time; `T: Send + Sync` covers both.
unsafe impl<T: Send> Send for RwSem<T> {}
// SAFETY: As above.
unsafe impl<T: Send + Sync> Sync for RwSem<T> {}

impl<T> RwSem<T> {
    /// An initialiser of a semaphore holding `data`; `name` and `key` are
    /// its lockdep class.
    pub(crate) fn new(
        data: T,
        name: &'static CStr,
        key: Pin<&'static LockClassKey>,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            data: UnsafeCell::new(data),
            // SAFETY: `slot` is valid for the call; `name` and `key` are
            // static, as lockdep needs.
            sem <- Opaque::ffi_init(|slot| unsafe {
                bindings::__init_rwsem(slot, name.as_char_ptr(), key.as_ptr())
            }),
            _pin: PhantomPinned,
        })
    }

    /// The C semaphore (its address: `Opaque` is transparent).
    fn sem_ptr(&self) -> *mut bindings::rw_semaphore {
        core::ptr::from_ref(&self.sem).cast_mut().cast()
    }

    /// Shared access; waits while a writer holds it. A fatal signal ends
    /// the wait (`EINTR`).
    pub(crate) fn read_killable(&self) -> Result<ReadGuard<'_, T>> {
        // SAFETY: `sem` was initialised by `new`; released by the guard.
        if unsafe { bindings::down_read_killable(self.sem_ptr()) } != 0 {
            return Err(EINTR);
        }
        Ok(ReadGuard(self, NotThreadSafe))
    }

    /// Exclusive access; waits for current readers and writers. A fatal
    /// signal ends the wait (`EINTR`).
    pub(crate) fn write_killable(&self) -> Result<WriteGuard<'_, T>> {
        // SAFETY: As above.
        if unsafe { bindings::down_write_killable(self.sem_ptr()) } != 0 {
            return Err(EINTR);
        }
        Ok(WriteGuard(self, NotThreadSafe))
    }

    /// Shared access; waits while a writer holds it, whatever signals come
    /// (for work that must be done: a checkpoint at unmount).
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        // SAFETY: As above.
        unsafe { bindings::down_read(self.sem_ptr()) };
        ReadGuard(self, NotThreadSafe)
    }

    /// Exclusive access; waits for current readers and writers, whatever
    /// signals come (for work that must be done: a commit at unmount).
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        // SAFETY: As above.
        unsafe { bindings::down_write(self.sem_ptr()) };
        WriteGuard(self, NotThreadSafe)
    }

    /// Shared access if no writer holds it now.
    pub(crate) fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        // SAFETY: As above.
        (unsafe { bindings::down_read_trylock(self.sem_ptr()) } != 0)
            .then(|| ReadGuard(self, NotThreadSafe))
    }

    /// Exclusive access if no one holds it now.
    pub(crate) fn try_write(&self) -> Option<WriteGuard<'_, T>> {
        // SAFETY: As above.
        (unsafe { bindings::down_write_trylock(self.sem_ptr()) } != 0)
            .then(|| WriteGuard(self, NotThreadSafe))
    }

    /// [`Self::write_killable`] for a second semaphore of the same lock
    /// class held at once (lockdep subclass 1); the caller orders the two.
    pub(crate) fn write_killable_nested(&self) -> Result<WriteGuard<'_, T>> {
        // SAFETY: As above.
        if unsafe { vexfs_down_write_killable_nested(self.sem_ptr(), 1) } != 0 {
            return Err(EINTR);
        }
        Ok(WriteGuard(self, NotThreadSafe))
    }
}

/// The read side of an [`RwSem`], held until dropped.
pub(crate) struct ReadGuard<'a, T>(&'a RwSem<T>, NotThreadSafe);

impl<T> core::ops::Deref for ReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: Readers hold the semaphore: no writer has `&mut T`.
        unsafe { &*self.0.data.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: Taken for reading by `read`.
        unsafe { bindings::up_read(self.0.sem_ptr()) };
    }
}

/// The write side of an [`RwSem`], held until dropped.
pub(crate) struct WriteGuard<'a, T>(&'a RwSem<T>, NotThreadSafe);

impl<T> core::ops::Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The writer holds the semaphore exclusively.
        unsafe { &*self.0.data.get() }
    }
}

impl<T> core::ops::DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: As above, and the guard is borrowed exclusively.
        unsafe { &mut *self.0.data.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: Taken for writing by `write`.
        unsafe { bindings::up_write(self.0.sem_ptr()) };
    }
}

/// A workqueue owned by the module, destroyed (after running what is
/// queued) on drop.
struct OwnedQueue(NonNull<bindings::workqueue_struct>);

impl OwnedQueue {
    fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a static format string without conversions.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(name.as_char_ptr(), bindings::wq_flags_WQ_UNBOUND, 0)
        };
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: Ours; destroy_workqueue() runs what is queued first.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}

/// The module's workqueue, between module init and exit.
struct QueueCell(UnsafeCell<Option<OwnedQueue>>);

// SAFETY: Written only through `ModuleQueue` (created once in module init,
// before the filesystem exists; dropped in exit, after it is gone and the
// queue drained); read in between.
unsafe impl Sync for QueueCell {}

static QUEUE: QueueCell = QueueCell(UnsafeCell::new(None));

/// Whether a [`ModuleQueue`] exists: there is at most one.
static QUEUE_OWNED: AtomicBool = AtomicBool::new(false);

/// Ownership of the module's workqueue; dropping it (module exit) runs what
/// is queued and destroys the queue.
pub(crate) struct ModuleQueue(());

impl ModuleQueue {
    /// Creates the module's workqueue, from module init before the
    /// filesystem type is registered; `EBUSY` if it exists already.
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        if QUEUE_OWNED.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let queue = match OwnedQueue::new(name) {
            Ok(q) => q,
            Err(e) => {
                QUEUE_OWNED.store(false, Ordering::Release);
                return Err(e);
            }
        };
        // SAFETY: We alone got past `QUEUE_OWNED`, and no queue exists, so
        // nothing reads `QUEUE` (`workqueue()` is only called by filesystem
        // operations, which need the queue's owner, module init, to have
        // registered the filesystem after this).
        unsafe { *QUEUE.0.get() = Some(queue) };
        Ok(Self(()))
    }
}

impl Drop for ModuleQueue {
    fn drop(&mut self) {
        // SAFETY: The owner drops it at module exit, after the filesystem is
        // unregistered: no new work can be queued; dropping the queue runs
        // what is left.
        unsafe { *QUEUE.0.get() = None };
        QUEUE_OWNED.store(false, Ordering::Release);
    }
}

/// The workqueue for collection maintenance that namespace operations
/// defer.
pub(crate) fn workqueue() -> &'static kernel::workqueue::Queue {
    // SAFETY: Set by `ModuleQueue::new` before the filesystem is registered
    // and cleared when it drops, after it is unregistered: every caller (a
    // filesystem operation) runs in between.
    match unsafe { (*QUEUE.0.get()).as_ref() } {
        // SAFETY: Valid until the queue is destroyed (see above).
        Some(q) => unsafe { kernel::workqueue::Queue::from_raw(q.0.as_ptr()) },
        // Not reachable (see above); the system queue is a safe fallback.
        None => kernel::workqueue::system(),
    }
}

/// A callback that runs once per [`Ticker::arm`], on the system's unbound long
/// workqueue, for a mounted superblock: VexFS's periodic commit.
///
/// # Invariants
///
/// `raw` is the glue's ticker, calling [`FileSystem::tick`] with `sb`; it is
/// owned by the superblock's data (`s_fs_info`), and dropping it cancels it
/// and waits for a running callback, before that data is freed.
pub(crate) struct Ticker {
    raw: NonNull<c_void>,
}

// SAFETY: The glue's work item may be armed and cancelled from any task.
unsafe impl Send for Ticker {}
// SAFETY: `queue_delayed_work()` is safe to call concurrently.
unsafe impl Sync for Ticker {}

impl Ticker {
    /// A ticker of `sb`, to be kept in its data: it must not outlive them.
    pub(crate) fn new(sb: &SuperBlock) -> Result<Self> {
        // SAFETY: The glue only stores the pointer and hands it back to
        // `vexfs_ticker_run`, while the ticker lives (see the invariants).
        let raw = unsafe { glue::vexfs_ticker_new(sb.as_raw().cast()) };
        NonNull::new(raw).map(|raw| Self { raw }).ok_or(ENOMEM)
    }

    /// Runs the callback once, `msecs` from now, unless it is pending.
    pub(crate) fn arm(&self, msecs: u32) {
        // SAFETY: Live (type invariant).
        unsafe { glue::vexfs_ticker_arm(self.raw.as_ptr(), msecs) };
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        // SAFETY: Ours; cancelled and freed once.
        unsafe { glue::vexfs_ticker_free(self.raw.as_ptr()) };
    }
}

/// The glue's callback of a [`Ticker`].
///
/// # Safety
///
/// Called by the glue's work item with the superblock its ticker was made
/// for, which (see [`Ticker`]'s invariants) is still set up.
#[no_mangle]
unsafe extern "C" fn vexfs_ticker_run(owner: *mut c_void) {
    // SAFETY: As guaranteed by the caller.
    let sb = unsafe { SuperBlock::from_raw(owner.cast()) };
    Fs::tick(sb);
}
