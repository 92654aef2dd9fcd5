// SPDX-License-Identifier: GPL-2.0

//! `struct super_operations` from the [`SuperOperations`] trait, each C
//! callback adapted once. The layer frees what it keeps per inode itself
//! (`free_inode`).

use core::marker::PhantomData;

use kernel::bindings;
use kernel::error::VTABLE_DEFAULT_ERROR;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::seq_file::SeqFile;

use super::backing::Kstatfs;
use super::dentry::Dentry;
use super::errno;
use super::fs::SuperBlock;
use super::inode::{Inode, InodeData};

/// The operations of a mounted superblock.
#[vtable]
pub(crate) trait SuperOperations: Sized + 'static {
    /// An inode whose last link and last user are gone is freed at once
    /// (`inode_just_drop`): in-memory inodes have nothing to write back.
    const DROP_AT_ONCE: bool = false;

    extern "C" fn statfs(_dentry: &Dentry, _buf: &mut Kstatfs) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    /// Shows the mount's options in `/proc/mounts`.
    extern "C" fn show_options(_m: &SeqFile, _root: &Dentry) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    /// The inode `ino` is being evicted (its pages are gone): release what
    /// its data holds; `deleted` if its last link is gone too (rather than
    /// the superblock going). No other user of it is left; the data itself
    /// is freed after an RCU grace period.
    extern "C" fn evict_inode(
        _sb: &SuperBlock,
        _ino: u64,
        _deleted: bool,
        _data: Pin<&mut InodeData>,
    ) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    /// Makes what the filesystem holds durable (`syncfs`, `sync`, umount;
    /// `wait` false is a first pass that may start work only).
    extern "C" fn sync_fs(_sb: &SuperBlock, _wait: bool) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// A built `super_operations` table.
#[derive(Clone, Copy)]
pub(crate) struct SuperOpsVTable(pub(super) &'static bindings::super_operations);

/// The table of `T`.
pub(crate) const fn vtable<T: SuperOperations>() -> SuperOpsVTable {
    SuperOpsVTable(&Adapter::<T>::TABLE)
}

/// The C callbacks of `T`, installed in VexFS superblocks only: the VFS
/// calls them with a mounted, set-up superblock's objects.
struct Adapter<T>(PhantomData<T>);

impl<T: SuperOperations> Adapter<T> {
    const TABLE: bindings::super_operations = bindings::super_operations {
        statfs: if T::HAS_STATFS {
            Some(Self::statfs)
        } else {
            None
        },
        show_options: if T::HAS_SHOW_OPTIONS {
            Some(Self::show_options)
        } else {
            None
        },
        drop_inode: if T::DROP_AT_ONCE {
            Some(bindings::inode_just_drop)
        } else {
            None
        },
        evict_inode: Some(Self::evict_inode),
        sync_fs: if T::HAS_SYNC_FS {
            Some(Self::sync_fs)
        } else {
            None
        },
        free_inode: Some(Self::free_inode),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// A VFS `statfs` (see [`Adapter`]).
    unsafe extern "C" fn statfs(
        dentry: *mut bindings::dentry,
        buf: *mut bindings::kstatfs,
    ) -> c_int {
        // SAFETY: See `Adapter`; `buf` is ours to fill for the call.
        errno(unsafe { T::statfs(Dentry::from_raw(dentry), Kstatfs::from_raw(buf)) })
    }

    /// # Safety
    ///
    /// A VFS `show_options` (see [`Adapter`]).
    unsafe extern "C" fn show_options(
        m: *mut bindings::seq_file,
        root: *mut bindings::dentry,
    ) -> c_int {
        // SAFETY: See `Adapter`; the VFS passes the seq_file it is filling,
        // used by us alone for this call.
        errno(unsafe { T::show_options(SeqFile::from_raw(m), Dentry::from_raw(root)) })
    }

    /// # Safety
    ///
    /// A VFS `evict_inode` (see [`Adapter`]): no other user of the inode
    /// is left.
    unsafe extern "C" fn evict_inode(inode: *mut bindings::inode) {
        // SAFETY: See `Adapter`; every VexFS inode has its data
        // (`NewInode::new`).
        let i = unsafe { Inode::from_raw(inode) };
        let (ino, deleted) = (i.ino(), i.nlink() == 0);
        i.truncate_pages_final();
        i.clear();
        if !T::HAS_EVICT_INODE {
            return;
        }
        // SAFETY: No other user of the inode, hence of its data, is left;
        // lockless path walks may still read a symlink's target, which the
        // layer keeps outside the data. The data stays pinned.
        let data = unsafe { Pin::new_unchecked(&mut *i.private().cast::<InodeData>()) };
        T::evict_inode(i.super_block(), ino, deleted, data);
    }

    /// # Safety
    ///
    /// A VFS `sync_fs` (see [`Adapter`]), with `s_umount` held.
    unsafe extern "C" fn sync_fs(sb: *mut bindings::super_block, wait: c_int) -> c_int {
        // SAFETY: See `Adapter`.
        errno(T::sync_fs(unsafe { SuperBlock::from_raw(sb) }, wait != 0))
    }

    /// # Safety
    ///
    /// A VFS `free_inode`: after an RCU grace period past eviction.
    unsafe extern "C" fn free_inode(inode: *mut bindings::inode) {
        // SAFETY: The inode is dead; nothing reads its data any more.
        unsafe { Inode::from_raw(inode).free_private() };
        // SAFETY: The inode came from new_inode() on our superblock, which
        // has no alloc_inode: it is freed the way the VFS frees it by
        // default.
        unsafe { bindings::free_inode_nonrcu(inode) };
    }
}
