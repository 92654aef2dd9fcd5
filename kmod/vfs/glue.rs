// SPDX-License-Identifier: GPL-2.0

//! The C glue (`vexfs_glue.c`) as Rust sees it: interfaces the bindings
//! cannot reach (macros, inlines, headers bindgen leaves out). Only the
//! layer calls these; each is wrapped once, next to its safe API.

use kernel::bindings;
use kernel::ffi::{c_char, c_int, c_uint, c_void};

// The glue's prototypes use kernel structures that bindgen made opaque;
// only pointers to them cross, as in the kernel's own bindings.
#[allow(improper_ctypes)]
unsafe extern "C" {
    pub(super) fn vexfs_init_fs_context(fc: *mut bindings::fs_context) -> c_int;
    pub(super) fn vexfs_invalfc(fc: *mut bindings::fs_context, msg: *const c_char) -> c_int;
    pub(super) fn vexfs_cond_resched();
    pub(super) fn vexfs_fatal_signal_pending() -> bool;
    pub(super) fn vexfs_totalram_pages() -> u64;
    pub(super) fn vexfs_down_write_killable_nested(
        sem: *mut bindings::rw_semaphore,
        subclass: c_int,
    ) -> c_int;
    pub(super) fn vexfs_memcg_current() -> *mut bindings::mem_cgroup;
    pub(super) fn vexfs_memcg_put(memcg: *mut bindings::mem_cgroup);
    pub(super) fn vexfs_memcg_activate(
        memcg: *mut bindings::mem_cgroup,
    ) -> *mut bindings::mem_cgroup;
    pub(super) fn vexfs_statfs_fill(
        buf: *mut bindings::kstatfs,
        mnt: *mut bindings::vfsmount,
        magic: u64,
        dev: u32,
        files: u64,
        ffree: u64,
    ) -> c_int;
    pub(super) fn vexfs_set_cached_link(inode: *mut bindings::inode, link: *mut c_char, len: c_int);
    pub(super) fn vexfs_data_mount(blocks: u64) -> *mut bindings::vfsmount;
    pub(super) fn vexfs_data_mount_resize(
        mnt: *mut bindings::vfsmount,
        blocks: u64,
        why: *mut *const c_char,
    ) -> c_int;
    pub(super) fn vexfs_data_file(mnt: *mut bindings::vfsmount) -> *mut bindings::file;
    pub(super) fn vexfs_data_next_present(file: *mut bindings::file, index: *mut u64) -> u64;
    pub(super) fn vexfs_allow_direct_io(file: *mut bindings::file);
    pub(super) fn vexfs_backing_open(
        user_file: *mut bindings::file,
        data: *mut bindings::file,
    ) -> *mut bindings::file;
    pub(super) fn vexfs_backing_read_iter(
        backing: *mut bindings::file,
        iocb: *mut bindings::kiocb,
        to: *mut bindings::iov_iter,
    ) -> isize;
    pub(super) fn vexfs_backing_write_iter(
        backing: *mut bindings::file,
        iocb: *mut bindings::kiocb,
        from: *mut bindings::iov_iter,
    ) -> isize;
    pub(super) fn vexfs_backing_splice_read(
        backing: *mut bindings::file,
        file: *mut bindings::file,
        ppos: *mut bindings::loff_t,
        pipe: *mut bindings::pipe_inode_info,
        len: usize,
        flags: c_uint,
    ) -> isize;
    pub(super) fn vexfs_backing_mmap(
        backing: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int;
    pub(super) fn vexfs_acl_create(dir: *mut bindings::inode, inode: *mut bindings::inode)
        -> c_int;
    pub(super) fn vexfs_acl_none(inode: *mut bindings::inode);
    pub(super) fn vexfs_acl_chmod(
        idmap: *mut bindings::mnt_idmap,
        dentry: *mut bindings::dentry,
    ) -> c_int;
    pub(super) fn vexfs_acl_names(inode: *mut bindings::inode) -> c_int;
    /// `inode_operations.set_acl` (tmpfs' `simple_set_acl`, which is not
    /// exported).
    pub(super) fn vexfs_set_acl(
        idmap: *mut bindings::mnt_idmap,
        dentry: *mut bindings::dentry,
        acl: *mut bindings::posix_acl,
        type_: c_int,
    ) -> c_int;
    pub(super) fn vexfs_dentry_children(
        dir: *mut bindings::dentry,
        out: *mut *mut bindings::dentry,
        max: c_uint,
    ) -> c_uint;
    pub(super) fn vexfs_dentry_name(dentry: *mut bindings::dentry, buf: *mut u8) -> c_uint;
    pub(super) fn vexfs_inode_names(
        inode: *mut bindings::inode,
        out: *mut *mut bindings::dentry,
        max: c_uint,
    ) -> c_uint;
    pub(super) fn vexfs_dentry_add_persistent(
        dir: *mut bindings::dentry,
        name: *const u8,
        len: c_uint,
        inode: *mut bindings::inode,
    ) -> *mut bindings::dentry;
    /// `struct vexfs_ticker` is the glue's own: only pointers cross.
    pub(super) fn vexfs_ticker_new(owner: *mut c_void) -> *mut c_void;
    pub(super) fn vexfs_ticker_arm(ticker: *mut c_void, msecs: c_uint);
    pub(super) fn vexfs_ticker_free(ticker: *mut c_void);
    pub(super) fn vexfs_iocb_is_dsync(iocb: *const bindings::kiocb) -> bool;
    pub(super) fn vexfs_vma_shared_writable(vma: *mut bindings::vm_area_struct) -> bool;
    /// `generic_setlease()` of `linux/filelock.h`, which is not among the
    /// Rust bindings' headers: file leases as on any local filesystem.
    pub(super) fn generic_setlease(
        file: *mut bindings::file,
        arg: c_int,
        lease: *mut *mut bindings::file_lease,
        priv_: *mut *mut c_void,
    ) -> c_int;
}

// In `vexfs_block_glue.c`: inlines and macros of the block layer.
// `struct block_device` and `struct bio` hold members that bindgen left
// opaque; only pointers to them cross, as in the kernel's own bindings.
#[allow(improper_ctypes)]
unsafe extern "C" {
    pub(super) fn vexfs_blk_open_mode(write: bool) -> bindings::blk_mode_t;
    pub(super) fn vexfs_bdev_logical_block_size(bdev: *mut bindings::block_device) -> c_uint;
    pub(super) fn vexfs_bdev_nr_bytes(bdev: *mut bindings::block_device) -> bindings::loff_t;
    pub(super) fn vexfs_bdev_read_only(bdev: *mut bindings::block_device) -> bool;
    pub(super) fn vexfs_bdev_write_cache(bdev: *mut bindings::block_device) -> bool;
    pub(super) fn vexfs_bdev_fua(bdev: *mut bindings::block_device) -> bool;
    pub(super) fn vexfs_write_opf(fua: bool) -> bindings::blk_opf_t;
    pub(super) fn vexfs_bio_alloc(
        bdev: *mut bindings::block_device,
        opf: bindings::blk_opf_t,
    ) -> *mut bindings::bio;
    pub(super) fn vexfs_block_buf_alloc(order: c_uint) -> *mut c_void;
}
