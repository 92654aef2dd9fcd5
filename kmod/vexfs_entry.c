// SPDX-License-Identifier: GPL-2.0
/*
 * VexFS's probe points: the VFS and ioctl entry points that the profiler
 * measures, as one-line C functions that call straight into Rust.
 *
 * Why C: Kbuild gives Rust code no `__fentry__` call and pahole gives it
 * no BTF, so a BPF trampoline (fentry, fexit, fsession) cannot attach to a
 * Rust function, only a kprobe can, which costs a trap per call. A C
 * function of the module has both, costs one patched-out NOP when nothing
 * is attached, and its tail call leaves no frame of its own under Rust.
 * The names are the profiler's operation classes (ebpf/vexfs_profile.bpf.c)
 * and the argument lists are those of the VFS methods, so a kprobe on the
 * same name still works where BTF is missing.
 *
 * Built with VEXFS_STACK_WATERMARK (a test build, `scripts/build-module
 * stack`), each entry point also measures the deepest kernel stack its
 * operation reached, by painting the unused stack below it and reading the
 * paint back afterwards; /sys/module/vexfs/parameters/stack_watermark
 * reports it. The ordinary build has none of that code.
 */
#include <linux/fs.h>
#include <linux/uio.h>

/* The Rust side of each entry point (kmod/vfs/entry.rs). */
struct dentry *vexfs_lookup_rs(struct inode *dir, struct dentry *dentry, unsigned int flags);
int vexfs_create_rs(struct mnt_idmap *idmap, struct inode *dir, struct dentry *dentry,
		    umode_t mode);
int vexfs_unlink_rs(struct inode *dir, struct dentry *dentry);
ssize_t vexfs_read_iter_rs(struct kiocb *iocb, struct iov_iter *to);
ssize_t vexfs_write_iter_rs(struct kiocb *iocb, struct iov_iter *from);
int vexfs_fsync_rs(struct file *file, loff_t start, loff_t end, int datasync);
long vexfs_ioctl_insert_rs(struct file *file, unsigned long arg);
long vexfs_ioctl_delete_rs(struct file *file, unsigned long arg);
long vexfs_ioctl_search_rs(struct file *file, unsigned long arg);
void vexfs_simd_batch_rs(size_t floats, void *work);

/* The entry points, installed in VexFS's operation tables or called from
 * Rust (kmod/vfs/entry.rs). */
struct dentry *vexfs_lookup(struct inode *dir, struct dentry *dentry, unsigned int flags);
int vexfs_create(struct mnt_idmap *idmap, struct inode *dir, struct dentry *dentry,
		 umode_t mode);
int vexfs_unlink(struct inode *dir, struct dentry *dentry);
ssize_t vexfs_read_iter(struct kiocb *iocb, struct iov_iter *to);
ssize_t vexfs_write_iter(struct kiocb *iocb, struct iov_iter *from);
int vexfs_fsync(struct file *file, loff_t start, loff_t end, int datasync);
long vexfs_ioctl_insert(struct file *file, unsigned long arg);
long vexfs_ioctl_delete(struct file *file, unsigned long arg);
long vexfs_ioctl_search(struct file *file, unsigned long arg);
void vexfs_simd_batch(size_t floats, void *work);

/* The classes, in the order of `enum vexfs_op` (ebpf/vexfs_profile.h). */
enum vexfs_entry {
	VEXFS_ENTRY_LOOKUP,
	VEXFS_ENTRY_CREATE,
	VEXFS_ENTRY_UNLINK,
	VEXFS_ENTRY_READ,
	VEXFS_ENTRY_WRITE,
	VEXFS_ENTRY_FSYNC,
	VEXFS_ENTRY_INSERT,
	VEXFS_ENTRY_DELETE,
	VEXFS_ENTRY_SEARCH,
	VEXFS_ENTRY_SIMD,
	VEXFS_NR_ENTRIES,
};

#ifdef VEXFS_STACK_WATERMARK
#include <linux/moduleparam.h>
#include <linux/sched/task_stack.h>

static const char *const vexfs_entry_names[VEXFS_NR_ENTRIES] = {
	"lookup", "create", "unlink", "read", "write", "fsync",
	"insert", "delete", "search", "simd",
};

/* What one class reached: calls, and the most stack in use (bytes from
 * the top of the task's stack) at its entry and at its deepest point. */
struct vexfs_stack_mark {
	atomic_long_t calls;
	atomic_t entry;
	atomic_t deepest;
};

static struct vexfs_stack_mark vexfs_stack_marks[VEXFS_NR_ENTRIES];

#define VEXFS_PAINT 0x5645584653504e54UL	/* "VEXFSPNT" */

/* One call being measured: the deepest word of the stack in use before it
 * started (restored afterwards, so that an enclosing measurement still
 * sees it) and the stack pointer at its entry. */
struct vexfs_watch {
	unsigned long *before;
	unsigned long sp;
};

/* Lowest word of the current stack that is not paint: the deepest point
 * anything reached since the stack was last painted. Word 0 holds the
 * stack end magic and is never painted. */
static noinline unsigned long *vexfs_stack_lowest(void)
{
	unsigned long *p = (unsigned long *)task_stack_page(current) + 1;

	while (*p == VEXFS_PAINT)
		p++;
	return p;
}

/* Paints every word below this function's own frame: free stack, which the
 * operation about to run (and interrupts taken during it) will overwrite
 * as deep as they go. Volatile stores: a memset call would itself use the
 * stack being painted. */
static noinline void vexfs_stack_paint(void)
{
	volatile unsigned long *p = (unsigned long *)task_stack_page(current) + 1;
	volatile unsigned long *end = (unsigned long *)current_stack_pointer;

	while (p < end)
		*p++ = VEXFS_PAINT;
}

static __always_inline void vexfs_watch_begin(struct vexfs_watch *w)
{
	w->before = vexfs_stack_lowest();
	w->sp = current_stack_pointer;
	vexfs_stack_paint();
}

static void vexfs_max(atomic_t *v, int x)
{
	int old = atomic_read(v);

	while (old < x && !atomic_try_cmpxchg(v, &old, x))
		;
}

static noinline void vexfs_watch_end(struct vexfs_watch *w, enum vexfs_entry op)
{
	unsigned long top = (unsigned long)task_stack_page(current) + THREAD_SIZE;
	unsigned long *lowest = vexfs_stack_lowest();
	struct vexfs_stack_mark *m = &vexfs_stack_marks[op];

	atomic_long_inc(&m->calls);
	vexfs_max(&m->entry, top - w->sp);
	vexfs_max(&m->deepest, top - (unsigned long)lowest);
	/* An enclosing operation that had gone deeper than this one keeps
	 * its mark: one word of non-paint where its deepest point was. */
	if (w->before < lowest)
		*w->before = 0;
}

#define VEXFS_ENTRY_CALL(op, call) ({				\
	struct vexfs_watch w_;					\
	vexfs_watch_begin(&w_);					\
	__auto_type r_ = (call);				\
	vexfs_watch_end(&w_, op);				\
	r_;							\
})
#define VEXFS_ENTRY_VOID(op, call) do {				\
	struct vexfs_watch w_;					\
	vexfs_watch_begin(&w_);					\
	call;							\
	vexfs_watch_end(&w_, op);				\
} while (0)

/* One line per class: name, calls, bytes in use at entry, bytes at the
 * deepest point, and the difference (what VexFS itself used below its
 * entry point, interrupts taken meanwhile included). */
static int vexfs_stack_get(char *buf, const struct kernel_param *kp)
{
	int len = 0;

	for (int i = 0; i < VEXFS_NR_ENTRIES; i++) {
		struct vexfs_stack_mark *m = &vexfs_stack_marks[i];
		int entry = atomic_read(&m->entry), deepest = atomic_read(&m->deepest);

		len += sysfs_emit_at(buf, len, "%s %ld %d %d %d\n", vexfs_entry_names[i],
				     atomic_long_read(&m->calls), entry, deepest,
				     deepest > entry ? deepest - entry : 0);
	}
	return len;
}

static const struct kernel_param_ops vexfs_stack_ops = {
	.get = vexfs_stack_get,
};
module_param_cb(stack_watermark, &vexfs_stack_ops, NULL, 0444);
MODULE_PARM_DESC(stack_watermark,
		 "test build: per operation class, calls and the kernel stack in use at entry and at the deepest point (bytes)");
#else
#define VEXFS_ENTRY_CALL(op, call) (call)
#define VEXFS_ENTRY_VOID(op, call) call
#endif

struct dentry *vexfs_lookup(struct inode *dir, struct dentry *dentry, unsigned int flags)
{
	return VEXFS_ENTRY_CALL(VEXFS_ENTRY_LOOKUP, vexfs_lookup_rs(dir, dentry, flags));
}

int vexfs_create(struct mnt_idmap *idmap, struct inode *dir, struct dentry *dentry,
		 umode_t mode)
{
	return VEXFS_ENTRY_CALL(VEXFS_ENTRY_CREATE, vexfs_create_rs(idmap, dir, dentry, mode));
}

int vexfs_unlink(struct inode *dir, struct dentry *dentry)
{
	return VEXFS_ENTRY_CALL(VEXFS_ENTRY_UNLINK, vexfs_unlink_rs(dir, dentry));
}

ssize_t vexfs_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	return VEXFS_ENTRY_CALL(VEXFS_ENTRY_READ, vexfs_read_iter_rs(iocb, to));
}

ssize_t vexfs_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	return VEXFS_ENTRY_CALL(VEXFS_ENTRY_WRITE, vexfs_write_iter_rs(iocb, from));
}

int vexfs_fsync(struct file *file, loff_t start, loff_t end, int datasync)
{
	return VEXFS_ENTRY_CALL(VEXFS_ENTRY_FSYNC, vexfs_fsync_rs(file, start, end, datasync));
}

long vexfs_ioctl_insert(struct file *file, unsigned long arg)
{
	return VEXFS_ENTRY_CALL(VEXFS_ENTRY_INSERT, vexfs_ioctl_insert_rs(file, arg));
}

long vexfs_ioctl_delete(struct file *file, unsigned long arg)
{
	return VEXFS_ENTRY_CALL(VEXFS_ENTRY_DELETE, vexfs_ioctl_delete_rs(file, arg));
}

long vexfs_ioctl_search(struct file *file, unsigned long arg)
{
	return VEXFS_ENTRY_CALL(VEXFS_ENTRY_SEARCH, vexfs_ioctl_search_rs(file, arg));
}

/* One FPU section of SIMD work over `floats` values; `work` is the Rust
 * closure, passed through untouched. */
void vexfs_simd_batch(size_t floats, void *work)
{
	VEXFS_ENTRY_VOID(VEXFS_ENTRY_SIMD, vexfs_simd_batch_rs(floats, work));
}
