// SPDX-License-Identifier: GPL-2.0

//! A file's vector is as private as the file.
//!
//! A regular file in a collection can carry a vector (its id is the file's
//! inode number). An embedding is derived from the file's content, so:
//!
//! * reading it (GET, or a search returning it) needs read permission on
//!   the file and, as reaching the file by name would, search (execute)
//!   permission on the collection, checked at the time of the call with
//!   the caller's credentials through the mount of the file descriptor
//!   used;
//! * changing it (ATTACH on the open file, or DELETE by id, which also
//!   needs search permission on the collection) needs write permission on
//!   the file and, in a sticky collection, what removing the file would
//!   need: owning the file or the collection, or `CAP_FOWNER`;
//! * it lives as long as the file has a name in the collection: unlinking
//!   or moving away the file's last name there deletes it. Hard links are
//!   allowed; the vector stays while one name in the collection remains.

use kernel::alloc::KVec;
use kernel::prelude::*;
use kernel::sync::Arc;

use crate::abi::Op;
use crate::collection::{Collection, Store};
use crate::disk::{self, OpExt};
use crate::disk_format as fmt;
use crate::super_block::SbInfo;
use crate::vfs::inode::Access;
use crate::vfs::sync::WriteGuard;
use crate::vfs::{Child, File, Inode, InodeRef, MntIdmap, SuperBlock};

/// How a caller is checked: its credentials (current) as seen through the
/// mount of the file descriptor it used.
#[derive(Clone, Copy)]
pub(crate) struct Caller<'a> {
    idmap: &'a MntIdmap,
    sb: &'a SuperBlock,
    /// Whether it may reach the collection's files (search permission on
    /// the collection, or the file itself is the one open).
    reaches_files: bool,
}

impl<'a> Caller<'a> {
    /// The caller of an ioctl on `file` (an open file of a VexFS mount),
    /// about that file.
    pub(crate) fn of_file(file: &'a File) -> Self {
        Self {
            idmap: file.idmap(),
            sb: file.inode().super_block(),
            reaches_files: true,
        }
    }

    /// The caller of an ioctl on the collection directory open as `file`:
    /// it reaches the files in it only with search permission on the
    /// directory, as a path lookup would.
    pub(crate) fn of_collection(file: &'a File) -> Self {
        let caller = Self::of_file(file);
        Self {
            reaches_files: file.inode().permission(caller.idmap, Access::EXEC).is_ok(),
            ..caller
        }
    }

    /// The live inode of the file with number `ino`, if it still exists.
    fn file(&self, ino: u64) -> Option<InodeRef> {
        InodeRef::lookup(self.sb, ino).filter(|i| i.inode().is_reg())
    }

    /// The file with inode number `ino`, if the caller may read it.
    pub(crate) fn readable(&self, ino: u64) -> Option<InodeRef> {
        if !self.reaches_files {
            return None;
        }
        self.file(ino)
            .filter(|f| f.inode().permission(self.idmap, Access::READ).is_ok())
    }

    /// Whether the caller may read the file with inode number `ino`.
    pub(crate) fn may_read(&self, ino: u64) -> bool {
        self.readable(ino).is_some()
    }

    /// `EACCES` unless the caller may read the file with inode number `ino`.
    pub(crate) fn check_read(&self, ino: u64) -> Result {
        if self.may_read(ino) {
            Ok(())
        } else {
            Err(EACCES)
        }
    }

    /// Whether the caller may change the vector of `file` in the
    /// collection directory `dir`: `EACCES` without write permission on the
    /// file, `EPERM` where the sticky bit forbids it.
    pub(crate) fn check_change(&self, dir: &Inode, file: &Inode) -> Result {
        file.permission(self.idmap, Access::WRITE)?;
        if dir.sticky_forbids(self.idmap, file) {
            return Err(EPERM);
        }
        Ok(())
    }

    /// [`Self::check_change`] for the file with inode number `ino`.
    pub(crate) fn check_change_ino(&self, dir: &Inode, ino: u64) -> Result {
        if !self.reaches_files {
            return Err(EACCES);
        }
        match self.file(ino) {
            Some(f) => self.check_change(dir, f.inode()),
            // The file is gone; its vector goes with its last unlink.
            None => Err(ENOENT),
        }
    }
}

/// A file about to lose a name in a directory (unlink, rename).
pub(crate) struct FileLeaving<'c, 'a> {
    dir: &'a Inode,
    name: &'c Child<'a>,
    file: &'a Inode,
}

impl<'c, 'a> FileLeaving<'c, 'a> {
    /// `name`, a positive child of the locked directory `dir`, is about to
    /// be unlinked or moved away.
    pub(crate) fn new(dir: &'a Inode, name: &'c Child<'a>) -> Result<Self> {
        Ok(Self {
            dir,
            name,
            file: name.inode().ok_or(ENOENT)?,
        })
    }

    /// The collection whose vector of this file goes with this name: the
    /// file has one there, and no other name in the directory.
    fn loses_vector(&self) -> Result<Option<&'a Arc<Collection>>> {
        if !self.file.is_reg() {
            return Ok(None);
        }
        let Some(coll) = self.dir.data().collection() else {
            return Ok(None);
        };
        if self.name.has_other_name_in_parent() {
            return Ok(None);
        }
        Ok(coll.has_file_vector(self.file.ino())?.then_some(coll))
    }
}

/// The write locks of the collections whose file vectors a namespace
/// change removes, taken (killably) before the change, so that it either
/// fails with nothing done or removes names and vectors together.
pub(crate) struct VectorRemoval<'a> {
    /// Each collection, its lock, its directory's and the file's inode
    /// numbers.
    held: KVec<(&'a Arc<Collection>, WriteGuard<'a, Store>, u64, u64)>,
}

impl<'a> VectorRemoval<'a> {
    /// Locks what `leaving` needs, in address order (two collections at
    /// most, for a rename between two directories).
    pub(crate) fn prepare<'b, 'c: 'b>(
        leaving: impl IntoIterator<Item = &'b FileLeaving<'c, 'a>>,
    ) -> Result<Self>
    where
        'a: 'c,
    {
        let mut todo = KVec::new();
        for l in leaving {
            if let Some(coll) = l.loses_vector()? {
                todo.push((coll, l.dir.ino(), l.file.ino()), GFP_KERNEL)?;
            }
        }
        todo.sort_unstable_by_key(|(c, _, _)| core::ptr::from_ref::<Collection>(c) as usize);
        let mut held = KVec::with_capacity(todo.len(), GFP_KERNEL)?;
        for (i, (coll, dir, ino)) in todo.into_iter().enumerate() {
            held.push((coll, coll.lock_for_removal(i > 0)?, dir, ino), GFP_KERNEL)?;
        }
        Ok(Self { held })
    }

    /// After the namespace change succeeded: removes the vectors, releases
    /// the locks and queues the collections' maintenance (repair and
    /// compaction must not run while the VFS holds directory locks).
    /// On a disk mount, `op` logs each removal.
    pub(crate) fn finish(self, sbi: &SbInfo, op: &mut Option<disk::Op<'_>>) {
        for (coll, mut guard, dir, ino) in self.held {
            if coll.remove_file_vector(&mut guard, ino) {
                sbi.count(Op::VecDelete);
                op.log(&fmt::Record::RowsDelete {
                    coll: dir,
                    ids: &ino.to_le_bytes(),
                });
            }
            drop(guard);
            coll.schedule_maintenance();
        }
    }
}
