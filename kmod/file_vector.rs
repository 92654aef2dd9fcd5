// SPDX-License-Identifier: GPL-2.0

//! A file's vectors belong to the file, and are as private as the file.
//!
//! A regular file anywhere in a collection's tree (the collection
//! directory and the directories below it, down to collections nested in
//! it, whose trees are their own) can carry vectors (the first one's id is
//! the file's inode number). Which collection a name belongs to is its
//! directory's *owner*: the nearest collection directory at or above it.
//! An embedding is derived from the file's content, so:
//!
//! * reading it (GET, or a search returning it) needs read permission on
//!   the file and, as reaching the file by name would, search (execute)
//!   permission on the collection and on every directory between it and
//!   one of the file's names there, checked at the time of the call with
//!   the caller's credentials through the mount of the file descriptor
//!   used;
//! * changing it (ATTACH on the open file, or DELETE by id, which also
//!   needs to reach the file) needs write permission on the file and, in a
//!   sticky directory, what removing the file would need: owning the file
//!   or the directory, or `CAP_FOWNER`;
//! * it lives as long as the file has a name in the collection's tree:
//!   unlinking or moving away the file's last name there deletes it. Hard
//!   links are allowed; the vectors stay while one name in the tree
//!   remains. A directory (other than a collection) cannot move between
//!   trees (`EXDEV`, so `mv` copies it), which keeps every name's owner
//!   fixed while it has one.
//!
//! Every change of a file's names holds the file's inode lock (the VFS
//! takes it for link, unlink and rename), so the names a removal looks at
//! are stable; an unlinked name is unhashed before that lock is released
//! (see `inode.rs`), so none lingers for the next one to count.

use kernel::alloc::KVec;
use kernel::prelude::*;
use kernel::sync::Arc;

use crate::abi::Op;
use crate::collection::{Collection, Store};
use crate::disk::{self, OpExt};
use crate::disk_format as fmt;
use crate::super_block::SbInfo;
use crate::vfs::dentry::{names_of, DentryRef};
use crate::vfs::inode::Access;
use crate::vfs::sync::WriteGuard;
use crate::vfs::{Child, Dentry, File, Inode, InodeRef, MntIdmap, SuperBlock};

/// The collection directory a directory's names belong to: the nearest
/// collection directory at or above it.
pub(crate) enum Owner<'a> {
    /// The directory itself (held by the caller for `'a`).
    Here(&'a Dentry),
    /// A directory above it, held.
    Above(DentryRef),
}

impl<'a> Owner<'a> {
    /// The owner of the names in the directory `dir`, if it is in a
    /// collection's tree.
    pub(crate) fn of(dir: &'a Dentry) -> Option<Self> {
        if is_collection(dir) {
            return Some(Owner::Here(dir));
        }
        if dir.is_root() {
            return None;
        }
        let mut d = dir.parent();
        loop {
            if is_collection(d.dentry()) {
                return Some(Owner::Above(d));
            }
            if d.dentry().is_root() {
                return None;
            }
            d = d.dentry().parent();
        }
    }

    /// The collection directory.
    pub(crate) fn dentry(&self) -> &Dentry {
        match self {
            Owner::Here(d) => d,
            Owner::Above(d) => d.dentry(),
        }
    }

    /// The collection directory's inode.
    pub(crate) fn dir(&self) -> &Inode {
        // A collection directory is positive (`is_collection`).
        self.dentry()
            .inode()
            .expect("a collection directory has an inode")
    }

    /// The collection.
    pub(crate) fn collection(&self) -> &Arc<Collection> {
        self.dir()
            .data()
            .collection()
            .expect("an owner directory holds a collection")
    }

    /// Whether `other` is the same collection directory.
    pub(crate) fn is(&self, other: &Owner<'_>) -> bool {
        self.dentry().is(other.dentry())
    }
}

/// Whether the dentry is a collection directory.
pub(crate) fn is_collection(d: &Dentry) -> bool {
    d.inode()
        .is_some_and(|i| i.is_dir() && i.data().collection().is_some())
}

/// Whether two optional owners are the same collection (or both none).
pub(crate) fn same_owner(a: &Option<Owner<'_>>, b: &Option<Owner<'_>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.is(b),
        (None, None) => true,
        _ => false,
    }
}

/// Whether `file` has a name other than `except` whose owner is `owner`
/// (the caller holds the file's inode lock, so its names do not change).
fn has_other_name_in(file: &Inode, except: &Dentry, owner: &Owner<'_>) -> Result<bool> {
    // One link, one name: the common case needs no walk.
    if file.nlink() <= 1 {
        return Ok(false);
    }
    for name in names_of(file)?.iter() {
        if name.dentry().is(except) {
            continue;
        }
        let parent = name.dentry().parent();
        if Owner::of(parent.dentry()).is_some_and(|o| o.is(owner)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How a caller is checked: its credentials (current) as seen through the
/// mount of the file descriptor it used.
#[derive(Clone, Copy)]
pub(crate) struct Caller<'a> {
    idmap: &'a MntIdmap,
    sb: &'a SuperBlock,
    /// The collection directory whose files it reaches by name (`None`:
    /// the file itself is the one open).
    collection: Option<&'a Dentry>,
    /// Whether it may search the collection directory.
    reaches_files: bool,
}

impl<'a> Caller<'a> {
    /// The caller of an ioctl on `file` (an open file of a VexFS mount),
    /// about that file.
    pub(crate) fn of_file(file: &'a File) -> Self {
        Self {
            idmap: file.idmap(),
            sb: file.inode().super_block(),
            collection: None,
            reaches_files: true,
        }
    }

    /// The caller of an ioctl on the collection directory open as `file`:
    /// it reaches the files in its tree only with search permission on the
    /// directories down to one of their names, as a path lookup would.
    pub(crate) fn of_collection(file: &'a File) -> Self {
        let caller = Self::of_file(file);
        Self {
            collection: Some(file.dentry()),
            reaches_files: file.inode().permission(caller.idmap, Access::EXEC).is_ok(),
            ..caller
        }
    }

    /// The live inode of the file with number `ino`, if it still exists.
    fn file(&self, ino: u64) -> Option<InodeRef> {
        InodeRef::lookup(self.sb, ino).filter(|i| i.inode().is_reg())
    }

    /// Whether the caller reaches `file` by one of its names in the
    /// collection's tree: search permission on every directory from that
    /// name's up to the collection (which [`Self::of_collection`] checked).
    fn reaches(&self, file: &Inode) -> bool {
        if !self.reaches_files {
            return false;
        }
        let Some(coll) = self.collection else {
            return true;
        };
        let Ok(names) = names_of(file) else {
            return false;
        };
        names.iter().any(|name| {
            let mut dir = name.dentry().parent();
            loop {
                let d = dir.dentry();
                if d.is(coll) {
                    return true;
                }
                // Above the collection, in another collection's tree, or
                // a directory the caller may not search: not this way.
                if d.is_root()
                    || is_collection(d)
                    || !d
                        .inode()
                        .is_some_and(|i| i.permission(self.idmap, Access::EXEC).is_ok())
                {
                    return false;
                }
                dir = d.parent();
            }
        })
    }

    /// The file with inode number `ino`, if the caller may read it.
    pub(crate) fn readable(&self, ino: u64) -> Option<InodeRef> {
        if !self.reaches_files {
            return None;
        }
        self.file(ino).filter(|f| {
            f.inode().permission(self.idmap, Access::READ).is_ok() && self.reaches(f.inode())
        })
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

    /// Whether the caller may change the vectors of `file`, which has a
    /// name in the directory `dir`: `EACCES` without write permission on
    /// the file, `EPERM` where the sticky bit forbids it.
    pub(crate) fn check_change(&self, dir: &Inode, file: &Inode) -> Result {
        file.permission(self.idmap, Access::WRITE)?;
        if dir.sticky_forbids(self.idmap, file) {
            return Err(EPERM);
        }
        Ok(())
    }

    /// [`Self::check_change`] for the file with inode number `ino`, by id
    /// through the collection directory `dir` (its sticky bit counts): the
    /// caller must also reach the file.
    pub(crate) fn check_change_ino(&self, dir: &Inode, ino: u64) -> Result {
        if !self.reaches_files {
            return Err(EACCES);
        }
        match self.file(ino) {
            Some(f) if self.reaches(f.inode()) => self.check_change(dir, f.inode()),
            Some(_) => Err(EACCES),
            // The file is gone; its vectors go with its last unlink.
            None => Err(ENOENT),
        }
    }
}

/// A file whose vectors a namespace change removes: it loses its last
/// name in its owner's tree.
pub(crate) struct Loss<'a> {
    owner: Owner<'a>,
    file: u64,
}

impl<'a> Loss<'a> {
    /// What happens to the file named `name` (a positive child of a locked
    /// directory, the file's inode locked) when the name is unlinked
    /// (`to: None`) or moved into the directory `to`: the loss of its
    /// vectors, if it had some in the owner of `name`'s directory and no
    /// other name there, and `to` is not in the same tree.
    pub(crate) fn of(name: &Child<'a>, to: Option<&'a Dentry>) -> Result<Option<Self>> {
        let file = name.inode().ok_or(ENOENT)?;
        if !file.is_reg() {
            return Ok(None);
        }
        let Some(owner) = Owner::of(name.parent()) else {
            return Ok(None);
        };
        if let Some(to) = to {
            if Owner::of(to).is_some_and(|o| o.is(&owner)) {
                return Ok(None);
            }
        }
        if !owner.collection().has_file_vector(file.ino())? {
            return Ok(None);
        }
        if has_other_name_in(file, name.dentry(), &owner)? {
            return Ok(None);
        }
        Ok(Some(Self {
            owner,
            file: file.ino(),
        }))
    }
}

/// The write locks of the collections whose file vectors a namespace
/// change removes, taken (killably) before the change, so that it either
/// fails with nothing done or removes names and vectors together.
pub(crate) struct VectorRemoval<'b> {
    /// Each collection, its lock, its directory's inode number and the
    /// files whose vectors go (one lock per collection).
    held: KVec<(&'b Arc<Collection>, WriteGuard<'b, Store>, u64, KVec<u64>)>,
}

impl<'b> VectorRemoval<'b> {
    /// Locks what `losses` need, in address order (two collections at
    /// most, for a rename between two trees).
    pub(crate) fn prepare(losses: &'b [Option<Loss<'_>>]) -> Result<Self> {
        let mut todo = KVec::new();
        for l in losses.iter().flatten() {
            todo.push(
                (l.owner.collection(), l.owner.dir().ino(), l.file),
                GFP_KERNEL,
            )?;
        }
        todo.sort_unstable_by_key(|(c, _, _)| core::ptr::from_ref::<Collection>(c) as usize);
        let mut held: KVec<(&Arc<Collection>, WriteGuard<'_, Store>, u64, KVec<u64>)> =
            KVec::with_capacity(todo.len(), GFP_KERNEL)?;
        for (coll, dir, ino) in todo {
            if let Some(last) = held.last_mut().filter(|h| Arc::ptr_eq(h.0, coll)) {
                last.3.push(ino, GFP_KERNEL)?;
                continue;
            }
            let mut files = KVec::new();
            files.push(ino, GFP_KERNEL)?;
            let guard = coll.lock_for_removal(!held.is_empty())?;
            held.push((coll, guard, dir, files), GFP_KERNEL)?;
        }
        Ok(Self { held })
    }

    /// After the namespace change succeeded: removes the vectors, releases
    /// the locks and queues the collections' maintenance (repair and
    /// compaction must not run while the VFS holds directory locks).
    /// On a disk mount, `op` logs each removal.
    pub(crate) fn finish(self, sbi: &SbInfo, op: &mut Option<disk::Op<'_>>) {
        for (coll, mut guard, dir, files) in self.held {
            for ino in files {
                if coll.remove_file_vector(&mut guard, ino) {
                    sbi.count(Op::VecDelete);
                    op.log(&fmt::Record::RowsDelete {
                        coll: dir,
                        ids: &ino.to_le_bytes(),
                    });
                }
            }
            drop(guard);
            coll.schedule_maintenance();
        }
    }
}
