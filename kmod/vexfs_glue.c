// SPDX-License-Identifier: GPL-2.0
/*
 * C glue for what the kernel's Rust bindings cannot reach. Their headers
 * leave out linux/fs_context.h, linux/fs_parser.h, linux/backing-file.h
 * and the inline parts of linux/shmem_fs.h and linux/posix_acl.h, and a
 * few helpers are macros or inlines. Each function here adapts one such
 * interface and calls straight back into Rust; no filesystem decision is
 * made in this file.
 */
#include <linux/backing-file.h>
#include <linux/dcache.h>
#include <linux/slab.h>
#include <linux/stringhash.h>
#include <linux/workqueue.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/magic.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/folio_batch.h>
#include <linux/posix_acl.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/posix_acl_xattr.h>
#include <linux/shmem_fs.h>
#include <linux/statfs.h>

/* In super_block.rs and mount_opts.rs. */
int vexfs_fill_super(struct super_block *sb, void *opts);
int vexfs_reconfigure(struct fs_context *fc, struct super_block *sb, void *opts,
		      int read_only);
void *vexfs_opts_new(void);
void vexfs_opts_free(void *opts);
int vexfs_opt_size(void *opts, const char *value);
int vexfs_opt_nr_inodes(void *opts, const char *value);
int vexfs_opt_mode(void *opts, unsigned int mode);
int vexfs_opt_uid(void *opts, kuid_t uid);
int vexfs_opt_gid(void *opts, kgid_t gid);
int vexfs_opt_commit(void *opts, unsigned int secs);
/* In file.rs: backing-file callbacks. */
void vexfs_file_accessed(struct file *file);
void vexfs_end_write(struct kiocb *iocb, ssize_t ret);

/* In vfs/sync.rs: a periodic work item's callback. */
void vexfs_ticker_run(void *owner);

/* Called from Rust. */
int vexfs_init_fs_context(struct fs_context *fc);
unsigned int vexfs_dentry_children(struct dentry *dir, struct dentry **out,
				   unsigned int max);
unsigned int vexfs_dentry_name(struct dentry *dentry, unsigned char *buf);
unsigned int vexfs_inode_names(struct inode *inode, struct dentry **out,
			       unsigned int max);
struct dentry *vexfs_dentry_add_persistent(struct dentry *dir,
					   const unsigned char *name,
					   unsigned int len, struct inode *inode);
struct vexfs_ticker *vexfs_ticker_new(void *owner);
void vexfs_ticker_arm(struct vexfs_ticker *t, unsigned int msecs);
void vexfs_ticker_free(struct vexfs_ticker *t);
bool vexfs_iocb_is_dsync(const struct kiocb *iocb);
bool vexfs_vma_shared_writable(struct vm_area_struct *vma);
int vexfs_invalfc(struct fs_context *fc, const char *msg);
void vexfs_cond_resched(void);
bool vexfs_fatal_signal_pending(void);
unsigned long vexfs_totalram_pages(void);
struct vfsmount *vexfs_data_mount(unsigned long blocks);
struct file *vexfs_data_file(struct vfsmount *mnt);
void vexfs_allow_direct_io(struct file *file);
int vexfs_statfs_fill(struct kstatfs *buf, struct vfsmount *mnt,
		      unsigned long magic, dev_t dev, u64 files, u64 ffree);
void vexfs_set_cached_link(struct inode *inode, char *link, int len);
int vexfs_data_mount_resize(struct vfsmount *mnt, unsigned long blocks,
			    const char **why);
unsigned long vexfs_data_next_present(struct file *file, pgoff_t *index);
struct file *vexfs_backing_open(struct file *user_file, struct file *data);
ssize_t vexfs_backing_read_iter(struct file *backing, struct kiocb *iocb,
				struct iov_iter *to);
ssize_t vexfs_backing_write_iter(struct file *backing, struct kiocb *iocb,
				 struct iov_iter *from);
ssize_t vexfs_backing_splice_read(struct file *backing, struct file *in,
				  loff_t *ppos, struct pipe_inode_info *pipe,
				  size_t len, unsigned int flags);
int vexfs_backing_mmap(struct file *backing, struct vm_area_struct *vma);
int vexfs_acl_create(struct inode *dir, struct inode *inode);
void vexfs_acl_none(struct inode *inode);
int vexfs_set_acl(struct mnt_idmap *idmap, struct dentry *dentry,
		  struct posix_acl *acl, int type);
int vexfs_acl_chmod(struct mnt_idmap *idmap, struct dentry *dentry);
int vexfs_acl_names(struct inode *inode);
struct mem_cgroup *vexfs_memcg_current(void);
void vexfs_memcg_put(struct mem_cgroup *memcg);
int vexfs_down_write_killable_nested(struct rw_semaphore *sem, int subclass);
struct mem_cgroup *vexfs_memcg_activate(struct mem_cgroup *memcg);

/*
 * Mount options. The table needs the fsparam_*() macros; each value goes
 * to mount_opts.rs, which checks and stores it.
 */
enum { Opt_size, Opt_nr_inodes, Opt_mode, Opt_uid, Opt_gid, Opt_commit };

static const struct fs_parameter_spec vexfs_fs_parameters[] = {
	fsparam_string("size", Opt_size),
	fsparam_string("nr_inodes", Opt_nr_inodes),
	fsparam_u32oct("mode", Opt_mode),
	fsparam_uid("uid", Opt_uid),
	fsparam_gid("gid", Opt_gid),
	fsparam_u32("commit", Opt_commit),
	{}
};

static int vexfs_parse_param(struct fs_context *fc, struct fs_parameter *param)
{
	struct fs_parse_result result;
	int opt, err;

	opt = fs_parse(fc, vexfs_fs_parameters, param, &result);
	if (opt < 0)
		return opt;
	switch (opt) {
	case Opt_size:
		err = vexfs_opt_size(fc->fs_private, param->string);
		break;
	case Opt_nr_inodes:
		err = vexfs_opt_nr_inodes(fc->fs_private, param->string);
		break;
	case Opt_mode:
		err = vexfs_opt_mode(fc->fs_private, result.uint_32);
		break;
	case Opt_uid:
		/* The owner must be representable in the mount's user namespace. */
		if (!kuid_has_mapping(fc->user_ns, result.uid))
			return invalfc(fc, "Bad value for 'uid'");
		err = vexfs_opt_uid(fc->fs_private, result.uid);
		break;
	case Opt_gid:
		if (!kgid_has_mapping(fc->user_ns, result.gid))
			return invalfc(fc, "Bad value for 'gid'");
		err = vexfs_opt_gid(fc->fs_private, result.gid);
		break;
	case Opt_commit:
		err = vexfs_opt_commit(fc->fs_private, result.uint_32);
		break;
	default:
		return -EINVAL;
	}
	if (err)
		return invalfc(fc, "Bad value for '%s'", param->key);
	return 0;
}

static int vexfs_fill_super_fc(struct super_block *sb, struct fs_context *fc)
{
	return vexfs_fill_super(sb, fc->fs_private);
}

/*
 * A source that is a path ("/dev/vdb") names the block device of a durable
 * filesystem (get_tree_bdev() opens it exclusively and shares the
 * superblock between mounts of one device); any other ("none") gets a new,
 * independent in-memory superblock, as tmpfs.
 */
static int vexfs_get_tree(struct fs_context *fc)
{
	if (fc->source && fc->source[0] == '/')
		return get_tree_bdev(fc, vexfs_fill_super_fc);
	return get_tree_nodev(fc, vexfs_fill_super_fc);
}

/* @read_only: 1 or 0 if the remount sets or clears SB_RDONLY, -1 if not. */
static int vexfs_reconfigure_fc(struct fs_context *fc)
{
	int read_only = -1;

	if (fc->sb_flags_mask & SB_RDONLY)
		read_only = !!(fc->sb_flags & SB_RDONLY);
	return vexfs_reconfigure(fc, fc->root->d_sb, fc->fs_private, read_only);
}

static void vexfs_free_fc(struct fs_context *fc)
{
	vexfs_opts_free(fc->fs_private);
}

static const struct fs_context_operations vexfs_context_ops = {
	.parse_param = vexfs_parse_param,
	.get_tree = vexfs_get_tree,
	.reconfigure = vexfs_reconfigure_fc,
	.free = vexfs_free_fc,
};

/* file_system_type.init_fs_context, referenced from super_block.rs. */
int vexfs_init_fs_context(struct fs_context *fc)
{
	fc->fs_private = vexfs_opts_new();
	if (!fc->fs_private)
		return -ENOMEM;
	fc->ops = &vexfs_context_ops;
	return 0;
}

/* invalfc() is a macro that logs to the mount's fs_context. */
int vexfs_invalfc(struct fs_context *fc, const char *msg)
{
	return invalfc(fc, "%s", msg);
}

/* cond_resched() is a macro over an inline: give Rust a function to call. */
void vexfs_cond_resched(void)
{
	cond_resched();
}

/* fatal_signal_pending() is an inline over the current task. */
bool vexfs_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

/* totalram_pages() is an inline over an atomic. */
unsigned long vexfs_totalram_pages(void)
{
	return totalram_pages();
}

/*
 * The private tmpfs instance that holds a VexFS mount's file data, limited
 * to `blocks` pages (0: unlimited). A kernel-internal mount (SB_KERNMOUNT
 * is a macro), never visible in any namespace.
 */
struct vfsmount *vexfs_data_mount(unsigned long blocks)
{
	struct file_system_type *tmpfs = get_fs_type("tmpfs");
	struct vfsmount *mnt;
	char opts[48];

	if (!tmpfs)
		return ERR_PTR(-ENODEV);
	/* In pages: a byte count could overflow for a huge limit. */
	snprintf(opts, sizeof(opts), "nr_blocks=%lu", blocks);
	mnt = vfs_kern_mount(tmpfs, SB_KERNMOUNT, "vexfs-data", opts);
	/* put_filesystem() (not exported) is this: tmpfs is built in. */
	module_put(tmpfs->owner);
	/*
	 * vexfs_data_mount_resize() reaches into shmem's superblock: make
	 * sure "tmpfs" is shmem and not ramfs (a kernel without CONFIG_SHMEM).
	 */
	if (!IS_ERR(mnt) && mnt->mnt_sb->s_magic != TMPFS_MAGIC) {
		kern_unmount(mnt);
		return ERR_PTR(-ENODEV);
	}
	return mnt;
}

/*
 * statfs of a VexFS mount: struct kstatfs is opaque to the Rust bindings.
 * Blocks come from the private tmpfs, the rest from super_block.rs.
 */
int vexfs_statfs_fill(struct kstatfs *buf, struct vfsmount *mnt,
		      unsigned long magic, dev_t dev, u64 files, u64 ffree)
{
	struct path root = { .mnt = mnt, .dentry = mnt->mnt_root };
	int err = vfs_statfs(&root, buf);

	if (err)
		return err;
	buf->f_type = magic;
	buf->f_namelen = NAME_MAX;
	buf->f_files = files;
	buf->f_ffree = ffree;
	buf->f_fsid = u64_to_fsid(huge_encode_dev(dev));
	return 0;
}

/* FMODE_CAN_ODIRECT is a macro with a cast that bindgen cannot evaluate. */
void vexfs_allow_direct_io(struct file *file)
{
	file->f_mode |= FMODE_CAN_ODIRECT;
}

/* inode_set_cached_link() is an inline (i_link, i_linklen, IOP_CACHED_LINK). */
void vexfs_set_cached_link(struct inode *inode, char *link, int len)
{
	inode_set_cached_link(inode, link, len);
}

/*
 * A new, empty shmem file on the mount's private tmpfs: it holds one
 * regular file's data. mk_vma_flags() is a macro; NORESERVE, as tmpfs
 * files are, so space is taken page by page against the size limit.
 */
struct file *vexfs_data_file(struct vfsmount *mnt)
{
	return shmem_file_setup_with_mnt(mnt, "vexfs-data", 0,
					 mk_vma_flags(VMA_NORESERVE_BIT));
}

/*
 * The next run of pages present in a data file's page cache from page
 * *index on: written ones, and those fallocate() only allocated (tmpfs
 * keeps them, not uptodate, and SEEK_DATA calls them a hole). Sets *index
 * to the run's first page and returns its length in pages; 0 if no page
 * follows. Folio batches (linux/folio_batch.h) have only inline helpers.
 */
unsigned long vexfs_data_next_present(struct file *file, pgoff_t *index)
{
	struct address_space *mapping = file->f_mapping;
	struct folio_batch fbatch;
	pgoff_t from = *index, next = *index, first = 0, end = 0;
	bool found = false, gap = false;
	unsigned int i, n;

	folio_batch_init(&fbatch);
	while (!gap &&
	       (n = filemap_get_folios(mapping, &next, (pgoff_t)-1, &fbatch))) {
		for (i = 0; i < n; i++) {
			struct folio *folio = fbatch.folios[i];
			pgoff_t start = max(folio->index, from);

			if (found && start != end) {
				gap = true;
				break;
			}
			if (!found)
				first = start;
			found = true;
			end = folio_next_index(folio);
		}
		folio_batch_release(&fbatch);
		cond_resched();
	}
	if (!found)
		return 0;
	*index = first;
	return end - first;
}

/*
 * Changes the page limit of the private tmpfs on remount, with the checks
 * and locking of shmem_reconfigure(): the kernel exports no way to
 * reconfigure a kernel-internal mount, and the superblock info is in
 * linux/shmem_fs.h. 0 means unlimited; a limit cannot be added to an
 * unlimited mount, nor set below the pages in use.
 */
int vexfs_data_mount_resize(struct vfsmount *mnt, unsigned long blocks,
			    const char **why)
{
	/* What mm/shmem.c's SHMEM_SB() returns; the type is public. */
	struct shmem_sb_info *sbinfo = mnt->mnt_sb->s_fs_info;
	int err = 0;

	raw_spin_lock(&sbinfo->stat_lock);
	if (blocks && !sbinfo->max_blocks) {
		*why = "Cannot retroactively limit size";
		err = -EINVAL;
	} else if (blocks &&
		   percpu_counter_compare(&sbinfo->used_blocks, blocks) > 0) {
		*why = "Too small a size for current use";
		err = -EINVAL;
	} else {
		sbinfo->max_blocks = blocks;
	}
	raw_spin_unlock(&sbinfo->stat_lock);
	return err;
}

/*
 * The backing-file helpers (linux/backing-file.h, as overlayfs and FUSE
 * passthrough use them) move a VexFS file's I/O to its shmem data file
 * under the opener's credentials, and keep the user's path for mappings.
 */
struct file *vexfs_backing_open(struct file *user_file, struct file *data)
{
	/*
	 * Without O_APPEND: appending follows the user file's flags, which
	 * F_SETFL can change, through each write's IOCB_APPEND.
	 */
	return backing_file_open(user_file, user_file->f_flags & ~O_APPEND,
				 &data->f_path, user_file->f_cred);
}

ssize_t vexfs_backing_read_iter(struct file *backing, struct kiocb *iocb,
				struct iov_iter *to)
{
	struct backing_file_ctx ctx = {
		.cred = iocb->ki_filp->f_cred,
		.accessed = vexfs_file_accessed,
	};

	return backing_file_read_iter(backing, to, iocb, iocb->ki_flags, &ctx);
}

ssize_t vexfs_backing_write_iter(struct file *backing, struct kiocb *iocb,
				 struct iov_iter *from)
{
	struct backing_file_ctx ctx = {
		.cred = iocb->ki_filp->f_cred,
		.end_write = vexfs_end_write,
	};

	return backing_file_write_iter(backing, from, iocb, iocb->ki_flags, &ctx);
}

ssize_t vexfs_backing_splice_read(struct file *backing, struct file *in,
				  loff_t *ppos, struct pipe_inode_info *pipe,
				  size_t len, unsigned int flags)
{
	struct backing_file_ctx ctx = {
		.cred = in->f_cred,
		.accessed = vexfs_file_accessed,
	};
	struct kiocb iocb;
	ssize_t ret;

	init_sync_kiocb(&iocb, in);
	iocb.ki_pos = *ppos;
	ret = backing_file_splice_read(backing, &iocb, pipe, len, flags, &ctx);
	*ppos = iocb.ki_pos;
	return ret;
}

int vexfs_backing_mmap(struct file *backing, struct vm_area_struct *vma)
{
	struct backing_file_ctx ctx = {
		.cred = vma->vm_file->f_cred,
		.accessed = vexfs_file_accessed,
	};

	return backing_file_mmap(backing, vma, &ctx);
}

/*
 * POSIX ACLs in the inode's ACL cache, as tmpfs keeps them. linux/posix_acl.h
 * is not in the Rust bindings, and libfs's simple_acl_create() and
 * simple_set_acl(), which tmpfs uses, are not exported to modules: these
 * two do the same with the exported primitives.
 */
int vexfs_acl_create(struct inode *dir, struct inode *inode)
{
	struct posix_acl *default_acl, *acl;
	int error;

	error = posix_acl_create(dir, &inode->i_mode, &default_acl, &acl);
	if (error)
		return error;
	set_cached_acl(inode, ACL_TYPE_DEFAULT, default_acl);
	set_cached_acl(inode, ACL_TYPE_ACCESS, acl);
	if (default_acl)
		posix_acl_release(default_acl);
	if (acl)
		posix_acl_release(acl);
	return 0;
}

/* cache_no_acl() is an inline. */
void vexfs_acl_none(struct inode *inode)
{
	cache_no_acl(inode);
}

/* inode_operations.set_acl (see vexfs_acl_create). */
int vexfs_set_acl(struct mnt_idmap *idmap, struct dentry *dentry,
		  struct posix_acl *acl, int type)
{
	struct inode *inode = d_inode(dentry);
	int error;

	/*
	 * A disk mount does not write ACLs to its device yet: one set here
	 * would vanish (and grant what it denied) at the next mount.
	 * Documentation/durability.rst.
	 */
	if (inode->i_sb->s_bdev)
		return -EOPNOTSUPP;
	if (type == ACL_TYPE_ACCESS) {
		error = posix_acl_update_mode(idmap, inode, &inode->i_mode, &acl);
		if (error)
			return error;
	}
	inode_set_ctime_current(inode);
	set_cached_acl(inode, type, acl);
	return 0;
}

/* posix_acl_chmod() after a chmod: the access ACL follows the new mode. */
int vexfs_acl_chmod(struct mnt_idmap *idmap, struct dentry *dentry)
{
	return posix_acl_chmod(idmap, dentry, d_inode(dentry)->i_mode);
}

/* Which ACLs the inode has (bit 0: access, bit 1: default), for listxattr. */
int vexfs_acl_names(struct inode *inode)
{
	struct posix_acl *acl;
	int names = 0;

	acl = get_cached_acl(inode, ACL_TYPE_ACCESS);
	if (!IS_ERR_OR_NULL(acl) && acl != ACL_NOT_CACHED) {
		names |= 1;
		posix_acl_release(acl);
	}
	acl = get_cached_acl(inode, ACL_TYPE_DEFAULT);
	if (!IS_ERR_OR_NULL(acl) && acl != ACL_NOT_CACHED) {
		names |= 2;
		posix_acl_release(acl);
	}
	return names;
}

/*
 * The current task's memory cgroup, counted (NULL without memcg):
 * get_mem_cgroup_from_mm() is an inline when CONFIG_MEMCG is off.
 */
struct mem_cgroup *vexfs_memcg_current(void)
{
	return get_mem_cgroup_from_mm(NULL);
}

/* mem_cgroup_put() is an inline over css_put(). */
void vexfs_memcg_put(struct mem_cgroup *memcg)
{
	mem_cgroup_put(memcg);
}

/* set_active_memcg() is an inline that writes current->active_memcg. */
struct mem_cgroup *vexfs_memcg_activate(struct mem_cgroup *memcg)
{
	return set_active_memcg(memcg);
}

/* down_write_killable_nested() is a macro when lockdep is off. */
int vexfs_down_write_killable_nested(struct rw_semaphore *sem, int subclass)
{
	return down_write_killable_nested(sem, subclass);
}

/*
 * The positive children of a directory, each with a reference taken
 * (dget_dlock() under the child's d_lock, nested in the parent's, as
 * fs/dcache.c walks children): at most @max into @out. Returns how many
 * there are, which may exceed @max (call again with room for them). The
 * d_children list and its locking are not reachable from Rust.
 */
unsigned int vexfs_dentry_children(struct dentry *dir, struct dentry **out,
				   unsigned int max)
{
	struct dentry *child;
	unsigned int n = 0;

	spin_lock(&dir->d_lock);
	hlist_for_each_entry(child, &dir->d_children, d_sib) {
		spin_lock_nested(&child->d_lock, DENTRY_D_LOCK_NESTED);
		if (simple_positive(child) &&
		    (child->d_flags & DCACHE_PERSISTENT)) {
			if (n < max)
				out[n] = dget_dlock(child);
			n++;
		}
		spin_unlock(&child->d_lock);
	}
	spin_unlock(&dir->d_lock);
	return n;
}

/*
 * The names of a non-directory inode: its hashed dcache aliases (on VexFS
 * every name is a pinned dentry), each with a reference taken
 * (dget_dlock() under the alias's d_lock, nested in the inode's i_lock, as
 * d_find_alias() takes them): at most @max into @out. Returns how many
 * there are, which may exceed @max. The alias list and its locking are not
 * reachable from Rust.
 */
unsigned int vexfs_inode_names(struct inode *inode, struct dentry **out,
			       unsigned int max)
{
	struct dentry *alias;
	unsigned int n = 0;

	spin_lock(&inode->i_lock);
	hlist_for_each_entry(alias, &inode->i_dentry, d_alias) {
		spin_lock(&alias->d_lock);
		if (!d_unhashed(alias)) {
			if (n < max)
				out[n] = dget_dlock(alias);
			n++;
		}
		spin_unlock(&alias->d_lock);
	}
	spin_unlock(&inode->i_lock);
	return n;
}

/*
 * Copies the dentry's name (at most NAME_MAX bytes) into @buf under its
 * d_lock, which a rename takes to change it; returns its length.
 */
unsigned int vexfs_dentry_name(struct dentry *dentry, unsigned char *buf)
{
	unsigned int len;

	spin_lock(&dentry->d_lock);
	len = min_t(unsigned int, dentry->d_name.len, NAME_MAX);
	memcpy(buf, dentry->d_name.name, len);
	spin_unlock(&dentry->d_lock);
	return len;
}

/*
 * A new name @name in @dir for @inode, persistent as a created entry is
 * (d_make_persistent(), as NewEntry::instantiate() makes one): the
 * namespace of a filesystem read from disk at mount. Takes an inode
 * reference of its own. Returns the new dentry, which the persistent
 * reference keeps, or an ERR_PTR. QSTR_INIT and the name hash are a macro
 * and an inline.
 */
struct dentry *vexfs_dentry_add_persistent(struct dentry *dir,
					   const unsigned char *name,
					   unsigned int len, struct inode *inode)
{
	struct qstr q = QSTR_INIT(name, len);
	struct dentry *dentry;

	q.hash = full_name_hash(dir, name, len);
	dentry = d_alloc(dir, &q);
	if (!dentry)
		return ERR_PTR(-ENOMEM);
	ihold(inode);
	d_make_persistent(dentry, inode);
	dput(dentry);
	return dentry;
}

/*
 * A delayed work item that calls back vexfs_ticker_run(@owner). The Rust
 * workqueue API cannot cancel a work item, and one that outlives its
 * superblock (or the module) must not run: vexfs_ticker_free() cancels it
 * and waits for a running callback first.
 */
struct vexfs_ticker {
	struct delayed_work dwork;
	void *owner;
};

static void vexfs_ticker_fn(struct work_struct *work)
{
	struct vexfs_ticker *t = container_of(to_delayed_work(work),
					      struct vexfs_ticker, dwork);

	vexfs_ticker_run(t->owner);
}

struct vexfs_ticker *vexfs_ticker_new(void *owner)
{
	struct vexfs_ticker *t = kzalloc(sizeof(*t), GFP_KERNEL_ACCOUNT);

	if (!t)
		return NULL;
	INIT_DELAYED_WORK(&t->dwork, vexfs_ticker_fn);
	t->owner = owner;
	return t;
}

/* Runs the callback once, @msecs from now, unless it is pending already. */
void vexfs_ticker_arm(struct vexfs_ticker *t, unsigned int msecs)
{
	queue_delayed_work(system_dfl_long_wq, &t->dwork, msecs_to_jiffies(msecs));
}

void vexfs_ticker_free(struct vexfs_ticker *t)
{
	cancel_delayed_work_sync(&t->dwork);
	kfree(t);
}

/* iocb_is_dsync() is an inline: O_DSYNC, O_SYNC, RWF_DSYNC, a sync mount. */
bool vexfs_iocb_is_dsync(const struct kiocb *iocb)
{
	return iocb_is_dsync(iocb);
}

/*
 * vm_flags sits in an anonymous union of struct vm_area_struct: whether
 * the mapping is shared and may write, so stores through it change the
 * file without a write call.
 */
bool vexfs_vma_shared_writable(struct vm_area_struct *vma)
{
	return (vma->vm_flags & (VM_SHARED | VM_MAYWRITE)) ==
	       (VM_SHARED | VM_MAYWRITE);
}
