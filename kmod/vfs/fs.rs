// SPDX-License-Identifier: GPL-2.0

//! The filesystem type: its registration, mounting through `fs_context`
//! (the C glue parses options with `fs_parse()` and hands each to
//! [`FileSystem::parse_param`]), superblock setup and teardown, and the
//! superblock as filesystem code sees it.

use core::ffi::{c_void, CStr};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::alloc::flags::GFP_KERNEL;
use kernel::bindings;
use kernel::error::to_result;
use kernel::ffi::{c_char, c_int, c_uint};
use kernel::prelude::*;
use kernel::types::Opaque;

use super::dentry::{Dentry, LoadingDir};
use super::errno;
use super::glue;
use super::inode::{Kgid, Kuid, NewInode};
use super::super_ops::SuperOpsVTable;
use super::xattr::XattrVTable;
use crate::pool::PoolBox;

/// A filesystem type: what it keeps per mount and per inode, and how it
/// mounts. Its operation tables are separate traits, as in C.
pub(crate) trait FileSystem: Sized + 'static {
    /// The name `mount -t` takes.
    const NAME: &'static CStr;
    /// Per-mount state, owned by the superblock (`s_fs_info`).
    type SbData: Send + Sync;
    /// Per-inode state, owned by the inode (`i_private`).
    type InodeData: Send + Sync;
    /// The options of one mount or remount.
    type Options: Default;

    /// Checks and stores one option.
    fn parse_param(opts: &mut Self::Options, param: Param<'_>) -> Result;

    /// Sets up a new superblock.
    fn fill_super(sb: NewSuperBlock<'_>, opts: &Self::Options) -> Result<Rooted>;

    /// Applies a remount's options (and `read_only`, if it sets or clears
    /// read-only), or leaves them all and says why not.
    fn reconfigure(
        sb: &SuperBlock,
        opts: &Self::Options,
        read_only: Option<bool>,
    ) -> core::result::Result<(), &'static CStr>;

    /// At unmount, before anything is torn down: the whole filesystem is
    /// still there (a disk filesystem writes it back here).
    fn shutdown(sb: &SuperBlock);

    /// The periodic callback of a [`Ticker`](super::sync::Ticker) of `sb`.
    fn tick(sb: &SuperBlock);

    /// After unmount: every inode is evicted; the mount's state goes.
    fn kill_sb(data: PoolBox<Self::SbData>);
}

/// The filesystem this module registers: the C glue's option table and
/// callbacks are written for it.
pub(crate) type Fs = crate::super_block::VexFs;

type SbData = <Fs as FileSystem>::SbData;
type Options = <Fs as FileSystem>::Options;

/// One mount option, as the glue's `fs_parse()` table identified it.
pub(crate) enum Param<'a> {
    /// `size=`: the string value.
    Size(&'a [u8]),
    /// `nr_inodes=`: the string value.
    NrInodes(&'a [u8]),
    /// `mode=`: an octal number.
    Mode(u32),
    /// `uid=`: mapped and checked by the glue.
    Uid(Kuid),
    /// `gid=`: mapped and checked by the glue.
    Gid(Kgid),
    /// `commit=`: seconds.
    Commit(u32),
}

/// A mounted VexFS superblock, borrowed.
///
/// # Invariants
///
/// The superblock is live and set up: `s_fs_info` points to its
/// [`FileSystem::SbData`] (set by [`NewSuperBlock::init`], freed in
/// `kill_sb`).
#[repr(transparent)]
pub(crate) struct SuperBlock(Opaque<bindings::super_block>);

impl SuperBlock {
    /// # Safety
    ///
    /// `ptr` is a VexFS superblock past [`NewSuperBlock::init`] and before
    /// `kill_sb`, for `'a` (as any live inode, dentry or open file of it
    /// guarantees).
    #[inline]
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::super_block) -> &'a Self {
        // SAFETY: A transparent wrapper; validity as guaranteed.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    pub(super) fn as_raw(&self) -> *mut bindings::super_block {
        // A transparent wrapper: its address is the C object\'s (no call
        // to `Opaque::get`, which the compiler may keep out of line).
        core::ptr::from_ref(self).cast_mut().cast()
    }

    /// The mount's state.
    #[inline]
    pub(crate) fn data(&self) -> &SbData {
        // SAFETY: Set up (type invariant): `s_fs_info` is our data, which
        // lives until `kill_sb`.
        unsafe { &*(*self.as_raw()).s_fs_info.cast::<SbData>() }
    }

    /// Whether the mount is read-only (`SB_RDONLY`).
    pub(crate) fn read_only(&self) -> bool {
        // SAFETY: The superblock is live; `s_flags` is read as `sb_rdonly()`
        // reads it.
        unsafe { (*self.as_raw()).s_flags & SB_RDONLY != 0 }
    }

    /// Whether writes are synchronous (`SB_SYNCHRONOUS`, the `sync` mount
    /// option).
    pub(crate) fn synchronous(&self) -> bool {
        // SAFETY: The superblock is live; `s_flags` is read as
        // `sb_rdonly()` reads it.
        unsafe { (*self.as_raw()).s_flags & SB_SYNCHRONOUS != 0 }
    }

    /// The root dentry.
    pub(crate) fn root(&self) -> &Dentry {
        // SAFETY: Set up (type invariant): `s_root` is set by `fill_super`
        // and kept until the superblock is killed.
        unsafe { Dentry::from_raw((*self.as_raw()).s_root) }
    }

    /// The device number (`s_dev`, anonymous for a nodev mount).
    pub(crate) fn dev(&self) -> u32 {
        // SAFETY: Set at mount, never changed.
        unsafe { (*self.as_raw()).s_dev }
    }
}

/// What a new superblock is set up with.
pub(crate) struct SuperParams {
    pub(crate) magic: u32,
    /// log2 of the block size.
    pub(crate) blocksize_bits: u8,
    /// Enforce POSIX ACLs and apply the umask (`SB_POSIXACL`).
    pub(crate) posix_acl: bool,
    pub(crate) ops: SuperOpsVTable,
    pub(crate) xattr: XattrVTable,
}

/// `SB_POSIXACL` (the kernel's `SB_*` flags equal uapi `MS_*`, but its
/// `BIT()` macro hides them from bindgen).
const SB_POSIXACL: usize = 1 << 16;
/// `SB_RDONLY`, as [`SB_POSIXACL`].
const SB_RDONLY: usize = 1 << 0;
/// `SB_SYNCHRONOUS`, as [`SB_POSIXACL`].
const SB_SYNCHRONOUS: usize = 1 << 4;

/// A superblock being filled by [`FileSystem::fill_super`].
pub(crate) struct NewSuperBlock<'a>(&'a Opaque<bindings::super_block>);

impl<'a> NewSuperBlock<'a> {
    #[inline]
    pub(super) fn as_raw(&self) -> *mut bindings::super_block {
        self.0.get()
    }

    /// Whether the mount is to be read-only.
    pub(crate) fn read_only(&self) -> bool {
        // SAFETY: A new superblock the VFS handed us; `s_flags` is set.
        unsafe { (*self.as_raw()).s_flags & SB_RDONLY != 0 }
    }

    /// Sets the superblock up with `data` and `p`; from here on it is a
    /// [`SuperBlock`] (on a later error, `kill_sb` frees `data`).
    pub(crate) fn init(self, data: PoolBox<SbData>, p: SuperParams) -> SuperBlockRoot<'a> {
        let sb = self.0.get();
        // SAFETY: A new superblock the VFS handed us alone (fill_super).
        unsafe {
            (*sb).s_fs_info = data.into_raw().cast();
            // MAX_LFS_FILESIZE on 64-bit.
            (*sb).s_maxbytes = i64::MAX;
            (*sb).s_blocksize = 1 << p.blocksize_bits;
            (*sb).s_blocksize_bits = p.blocksize_bits;
            (*sb).s_magic = p.magic as usize;
            (*sb).s_op = p.ops.0;
            (*sb).s_xattr = p.xattr.0;
            if p.posix_acl {
                (*sb).s_flags |= SB_POSIXACL;
            }
            (*sb).s_time_gran = 1;
        }
        // SAFETY: Set up now, and the VFS keeps it until `kill_sb`.
        SuperBlockRoot(unsafe { SuperBlock::from_raw(sb) })
    }
}

/// A set-up superblock still without its root.
pub(crate) struct SuperBlockRoot<'a>(&'a SuperBlock);

impl<'a> SuperBlockRoot<'a> {
    #[inline]
    pub(crate) fn super_block(&self) -> &'a SuperBlock {
        self.0
    }

    /// Makes `root` the root dentry, then has `load` add the names read
    /// from disk under it (on an error the VFS kills the superblock, which
    /// lets go of every name added).
    pub(crate) fn set_root_loading(
        self,
        root: NewInode,
        load: impl FnOnce(LoadingDir<'_>) -> Result,
    ) -> Result<Rooted> {
        let sb = self.0;
        let rooted = self.set_root(root)?;
        // SAFETY: Set just now by `set_root`; the superblock is still being
        // filled, so nothing else reaches the root.
        let root = unsafe { LoadingDir::from_root(NonNull::new_unchecked((*sb.as_raw()).s_root)) };
        load(root)?;
        Ok(rooted)
    }

    /// Makes `root` the root dentry.
    pub(crate) fn set_root(self, root: NewInode) -> Result<Rooted> {
        // SAFETY: `d_make_root` consumes our reference (and drops it on
        // failure); the superblock is being filled.
        unsafe {
            let root = bindings::d_make_root(root.into_hashed());
            if root.is_null() {
                return Err(ENOMEM);
            }
            (*self.0.as_raw()).s_root = root;
        }
        Ok(Rooted(()))
    }
}

/// Proof that `fill_super` gave the superblock its root.
pub(crate) struct Rooted(());

/// Logs `msg` to the mount's `fs_context` (shown by `mount`) and returns
/// `-EINVAL`.
///
/// # Safety
///
/// `fc` is the context of a mount or remount in progress.
unsafe fn invalfc(fc: *mut bindings::fs_context, msg: &'static CStr) -> c_int {
    // SAFETY: `fc` as guaranteed; `msg` is static.
    unsafe { glue::vexfs_invalfc(fc, msg.as_char_ptr()) }
}

/// Allocates the options of a new mount context (from the glue's
/// `init_fs_context`).
#[no_mangle]
extern "C" fn vexfs_opts_new() -> *mut c_void {
    match KBox::new(Options::default(), GFP_KERNEL) {
        Ok(b) => KBox::into_raw(b).cast(),
        Err(_) => core::ptr::null_mut(),
    }
}

/// Frees the options of a mount context (`fs_context_operations.free`).
///
/// # Safety
///
/// `opts` is null or came from [`vexfs_opts_new`] and is not used again.
#[no_mangle]
unsafe extern "C" fn vexfs_opts_free(opts: *mut c_void) {
    if !opts.is_null() {
        // SAFETY: Guaranteed by the caller.
        drop(unsafe { KBox::from_raw(opts.cast::<Options>()) });
    }
}

/// Hands one option to the filesystem.
///
/// # Safety
///
/// `opts` came from [`vexfs_opts_new`] and is only used by this call (the
/// VFS parses one option at a time of a context it owns).
unsafe fn parse(opts: *mut c_void, param: Param<'_>) -> c_int {
    // SAFETY: Guaranteed by the caller.
    let opts = unsafe { &mut *opts.cast::<Options>() };
    errno(Fs::parse_param(opts, param))
}

/// `size=VALUE`.
///
/// # Safety
///
/// As for [`parse`]; `value` a NUL-terminated string.
#[no_mangle]
unsafe extern "C" fn vexfs_opt_size(opts: *mut c_void, value: *const c_char) -> c_int {
    // SAFETY: Guaranteed by the caller.
    unsafe { parse(opts, Param::Size(CStr::from_char_ptr(value).to_bytes())) }
}

/// `nr_inodes=VALUE`.
///
/// # Safety
///
/// As for [`vexfs_opt_size`].
#[no_mangle]
unsafe extern "C" fn vexfs_opt_nr_inodes(opts: *mut c_void, value: *const c_char) -> c_int {
    // SAFETY: Guaranteed by the caller.
    unsafe { parse(opts, Param::NrInodes(CStr::from_char_ptr(value).to_bytes())) }
}

/// `mode=OCTAL`.
///
/// # Safety
///
/// As for [`parse`].
#[no_mangle]
unsafe extern "C" fn vexfs_opt_mode(opts: *mut c_void, mode: c_uint) -> c_int {
    // SAFETY: Guaranteed by the caller.
    unsafe { parse(opts, Param::Mode(mode)) }
}

/// `uid=N`, already mapped and checked by the glue.
///
/// # Safety
///
/// As for [`parse`].
#[no_mangle]
unsafe extern "C" fn vexfs_opt_uid(opts: *mut c_void, uid: bindings::kuid_t) -> c_int {
    // SAFETY: Guaranteed by the caller.
    unsafe { parse(opts, Param::Uid(Kuid(uid))) }
}

/// `gid=N`, already mapped and checked by the glue.
///
/// # Safety
///
/// As for [`parse`].
#[no_mangle]
unsafe extern "C" fn vexfs_opt_gid(opts: *mut c_void, gid: bindings::kgid_t) -> c_int {
    // SAFETY: Guaranteed by the caller.
    unsafe { parse(opts, Param::Gid(Kgid(gid))) }
}

/// `commit=SECONDS`.
///
/// # Safety
///
/// As for [`parse`].
#[no_mangle]
unsafe extern "C" fn vexfs_opt_commit(opts: *mut c_void, secs: c_uint) -> c_int {
    // SAFETY: Guaranteed by the caller.
    unsafe { parse(opts, Param::Commit(secs)) }
}

/// Fills a new superblock: called by `get_tree_nodev()` from the glue with
/// the parsed options.
///
/// # Safety
///
/// Called only by the VFS (through the glue), with a new superblock and the
/// options of its mount context.
#[no_mangle]
unsafe extern "C" fn vexfs_fill_super(sb: *mut bindings::super_block, opts: *mut c_void) -> c_int {
    // SAFETY: The glue passes the context's options, alive for the call,
    // and a new superblock the VFS hands us alone.
    let (opts, sb) = unsafe { (&*opts.cast::<Options>(), &*sb.cast::<Opaque<_>>()) };
    errno(Fs::fill_super(NewSuperBlock(sb), opts))
}

/// `fs_context_operations.reconfigure` (remount), through the glue.
///
/// # Safety
///
/// Called only by the VFS (through the glue) for a mounted VexFS `sb`.
#[no_mangle]
unsafe extern "C" fn vexfs_reconfigure(
    fc: *mut bindings::fs_context,
    sb: *mut bindings::super_block,
    opts: *mut c_void,
    read_only: c_int,
) -> c_int {
    // SAFETY: The glue passes the context's options and the mounted
    // superblock being reconfigured (the VFS holds `s_umount`).
    let (opts, sb) = unsafe { (&*opts.cast::<Options>(), SuperBlock::from_raw(sb)) };
    let read_only = match read_only {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    };
    match Fs::reconfigure(sb, opts, read_only) {
        Ok(()) => 0,
        // SAFETY: `fc` is the context being applied.
        Err(why) => unsafe { invalfc(fc, why) },
    }
}

/// `file_system_type.kill_sb`.
///
/// # Safety
///
/// Called only by the VFS, once, for a superblock of this type.
unsafe extern "C" fn kill_sb(sb: *mut bindings::super_block) {
    // SAFETY: Called once by the VFS for a superblock of ours: still
    // whole (s_root, if `fill_super` got that far, and every inode).
    unsafe {
        let data = (*sb).s_fs_info.cast::<SbData>();
        if !data.is_null() && !(*sb).s_root.is_null() {
            Fs::shutdown(SuperBlock::from_raw(sb));
        }
    }
    // SAFETY: After `kill_block_super` or `kill_anon_super` every inode is
    // evicted, so nothing uses `s_fs_info` any more; it is null or our data
    // (fill_super). A superblock on a device (`get_tree_bdev()`) lets go of
    // it in `kill_block_super`.
    unsafe {
        let data = (*sb).s_fs_info.cast::<SbData>();
        if (*sb).s_bdev.is_null() {
            bindings::kill_anon_super(sb);
        } else {
            bindings::kill_block_super(sb);
        }
        if !data.is_null() {
            Fs::kill_sb(PoolBox::from_raw(data));
        }
    }
}

/// The registered `file_system_type`. A static, as the VFS requires: its
/// lock-class keys (`s_umount_key`, `i_mutex_key`, ...) must be static
/// for lockdep.
struct FsType(Opaque<bindings::file_system_type>);

// SAFETY: Before registration only `FsRegistration::new` writes it (once,
// see `REGISTERED`); after, only the VFS touches it, under its own locking.
unsafe impl Sync for FsType {}

static FS_TYPE: FsType = FsType(Opaque::uninit());

/// Whether [`FS_TYPE`] is registered (or being registered).
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// The registration of [`Fs`], unregistered on drop.
pub(crate) struct FsRegistration(());

impl FsRegistration {
    /// Registers [`Fs`] as owned by `module`, so a mounted filesystem pins
    /// the module (and `rmmod` waits for `umount`); `EBUSY` if it is
    /// registered already.
    pub(crate) fn new(module: &'static ThisModule) -> Result<Self> {
        if REGISTERED.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let fs = FS_TYPE.0.get();
        // SAFETY: Not registered, and we alone got past `REGISTERED`: no one
        // else reads or writes `FS_TYPE`. It is static, so it outlives the
        // registration.
        let r = unsafe {
            fs.write(bindings::file_system_type {
                name: Fs::NAME.as_char_ptr(),
                init_fs_context: Some(glue::vexfs_init_fs_context),
                // `dentry::simple_rename` moves the names.
                fs_flags: bindings::FS_RENAME_DOES_D_MOVE as i32,
                kill_sb: Some(kill_sb),
                owner: module.as_ptr(),
                ..pin_init::zeroed()
            });
            to_result(bindings::register_filesystem(fs))
        };
        if let Err(e) = r {
            REGISTERED.store(false, Ordering::Release);
            return Err(e);
        }
        Ok(Self(()))
    }
}

impl Drop for FsRegistration {
    fn drop(&mut self) {
        // SAFETY: Registered in `new`. A mount pins the module that owns
        // the registration (`owner`), so the owner cannot drop it while a
        // superblock of this type remains.
        unsafe { bindings::unregister_filesystem(FS_TYPE.0.get()) };
        // Evicted inodes are freed by RCU callbacks that run our
        // `free_inode`: they must all have run before the module's code
        // goes (as ext4 and FUSE do at exit).
        // SAFETY: Process context (module exit), no lock held.
        unsafe { bindings::rcu_barrier() };
        REGISTERED.store(false, Ordering::Release);
    }
}
