// SPDX-License-Identifier: GPL-2.0
/*
 * VexFS profiler, BPF side: per-operation counts, latency histograms and
 * kernel stack use, plus kernel-stack samples taken only while a task is
 * inside a VexFS operation. Loaded and read by userland/vexfs-profiler.
 *
 * Three sets of programs measure the operations; userland loads what it
 * uses (the others' programs are not loaded at all):
 *
 * - raw tracepoint (preferred for file operations when no stacks are
 *   sampled): vexfs.ko times each file operation itself while its event
 *   vexfs:vexfs_<op>_done is enabled and fires the event as the operation
 *   returns, so one program run per operation records it, with no entry
 *   run and no per-task state. Vector operations stay on fsession, whose
 *   frames follow the SIMD batches nested in them.
 * - fsession (preferred): one program per operation class, attached through
 *   a BPF trampoline to the probe point, a C function of vexfs.ko with an
 *   ftrace entry and BTF. The kernel runs it at the function's entry and at
 *   its return; the start time lives in the session cookie, so a file
 *   operation touches no map. Per-task frames (task-local storage) are kept
 *   only where something needs them: operations with nested probe points
 *   (insert and search, whose SIMD batches deepen their stack figure and,
 *   under a mount filter, belong to them) and every operation when sampling
 *   stacks for a flame graph.
 * - kprobe (fallback, for a vexfs.ko without those C entry points or a
 *   kernel without fsession): a kprobe and a kretprobe per class. Entry
 *   pushes a frame on a per-task stack in task-local storage (operations
 *   nest: a search runs SIMD batches); return pops it and records the
 *   latency.
 *
 * Results go into one of two buffers chosen by `epoch`, which userland
 * flips at every interval, so it reads a buffer no probe writes.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "vexfs_profile.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by userland before load. */
const volatile __u32 filter_tgid;	/* 0: every process */
const volatile __u32 filter_dev;	/* 0: every mount; else the kernel s_dev */
const volatile __u64 thread_size = 16384;
const volatile bool sample_stacks;
/* Address of arch_rethook_trampoline: a kretprobe replaces a probed
 * function's return address on the stack with it (kprobe set only). */
const volatile __u64 rethook_trampoline;
/* fsession set: bit `op` set if that class keeps a per-task frame (see
 * session_enter()); the kprobe set always does. */
const volatile __u32 frame_ops;

/* Written by userland (mmapped .bss); the low bit picks the buffer. */
__u32 epoch;

struct vexfs_op_hist hist[2][VEXFS_NR_OPS];
struct vexfs_op_extremes extremes[2][VEXFS_MAX_CPUS][VEXFS_NR_OPS];
/* Events that could not be recorded: frame stack full, no storage, no stack
 * (the kprobe set then loses the operation; the fsession set still counts
 * it, without its frame). */
__u64 dropped;

struct vexfs_frame {
	/* Entry time (kprobe set; the fsession set keeps it in the cookie). */
	__u64 start_ns;
	/* Stack position at entry: the stack pointer at the return address
	 * (kprobe set) or the program's context, the traced function's saved
	 * arguments in the BPF trampoline's frame (fsession set). Tells the
	 * frame's own return from those of frames whose return was missed. */
	__u64 entry_sp;
	/* The word stored there at entry (the return address, or the first
	 * argument): when a later call has overwritten it, the frame is dead
	 * even if its return was missed. */
	__u64 ret_addr;
	__u32 op;
	__u32 entry_stack;
	__u32 max_stack;
	__u32 pad;
};

struct vexfs_task {
	__u32 depth;
	__u32 pad;
	struct vexfs_frame frames[VEXFS_MAX_NEST];
};

/* Task-local storage: found from the task itself, no hashing, freed with
 * the task; the cheapest per-task state for probes that fire per operation. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vexfs_task);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, VEXFS_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vexfs_sample_key);
	__type(value, __u64);
} samples SEC(".maps");

/* Whether the current task is outside the process --pid selects. */
static __always_inline bool other_process(void)
{
	return filter_tgid && (bpf_get_current_pid_tgid() >> 32) != filter_tgid;
}

/* Bytes of the current task's kernel stack in use at `sp`; 0 if `sp` is not
 * on it (an interrupt stack). */
static __always_inline __u32 stack_used(__u64 sp)
{
	__u64 base = (__u64)bpf_get_current_task_btf()->stack;
	__u64 top = base + thread_size;

	if (sp < base || sp >= top)
		return 0;
	return top - sp;
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xffffffffULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xffff) << 4; v >>= shift; r |= shift;
	shift = (v > 0xff) << 3; v >>= shift; r |= shift;
	shift = (v > 0xf) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* Mirrors `histogram::bucket_of` on the Rust side. */
static __always_inline __u32 bucket_of(__u64 ns)
{
	__u32 e, b;

	if (ns < VEXFS_SUB_BUCKETS)
		return ns;
	e = log2_u64(ns);
	if (e > VEXFS_MAX_LOG2)
		return VEXFS_NR_BUCKETS - 1;
	b = (e - VEXFS_SUB_BITS + 1) * VEXFS_SUB_BUCKETS +
	    ((ns >> (e - VEXFS_SUB_BITS)) & (VEXFS_SUB_BUCKETS - 1));
	return b < VEXFS_NR_BUCKETS ? b : VEXFS_NR_BUCKETS - 1;
}

static __always_inline void deepen(struct vexfs_task *t, __u32 used)
{
	for (int i = 0; i < VEXFS_MAX_NEST; i++)
		if (i < t->depth && t->frames[i].max_stack < used)
			t->frames[i].max_stack = used;
}

static __always_inline struct vexfs_task *task_ops(__u64 flags)
{
	return bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), NULL, flags);
}

/*
 * Pops the frames whose entry stack pointer lies below `bound` and returns
 * how many. The stack grows down, so an operation still in progress has its
 * entry stack pointer above the current one; a frame below it has returned,
 * seen or not (the kernel drops returns when a kretprobe runs out of
 * instances).
 */
static __always_inline __u32 pop_below(struct vexfs_task *t, __u64 bound)
{
	__u32 popped = 0;

	for (int i = 0; i < VEXFS_MAX_NEST; i++) {
		__u32 top = t->depth - 1;

		/* (Also stops at depth 0, where `top` wraps.) */
		if (top >= VEXFS_MAX_NEST)
			break;
		/* Keep the mask the compiler would drop after the check above:
		 * the verifier needs it to bound the index. */
		barrier_var(top);
		if (t->frames[top & (VEXFS_MAX_NEST - 1)].entry_sp >= bound)
			break;
		t->depth = top;
		popped++;
	}
	return popped;
}

/*
 * `nested` operations (SIMD batches) only run inside another one and, under
 * a mount filter, count only inside a counted one. `sb` is the superblock
 * the operation works on, read only when a mount filter is set.
 */
static __always_inline int op_enter(struct pt_regs *ctx, __u32 op, bool nested,
				    struct super_block *sb)
{
	__u64 sp = PT_REGS_SP(ctx);
	struct vexfs_frame *f;
	struct vexfs_task *t;
	__u32 used, d;

	if (other_process())
		return 0;
	if (filter_dev && !nested && (!sb || BPF_CORE_READ(sb, s_dev) != filter_dev))
		return 0;
	t = task_ops(nested && filter_dev ? 0 : BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t) {
		if (!(nested && filter_dev))
			__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	/* Frames at or below this entry's stack pointer have returned. */
	pop_below(t, sp + 1);
	d = t->depth;
	if (nested && filter_dev && !d)
		return 0;
	if (d >= VEXFS_MAX_NEST) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	used = stack_used(sp);
	deepen(t, used);
	barrier_var(d);	/* see pop_below() */
	f = &t->frames[d & (VEXFS_MAX_NEST - 1)];
	f->op = op;
	f->entry_sp = sp;
	if (bpf_probe_read_kernel(&f->ret_addr, sizeof(f->ret_addr), (void *)sp))
		f->ret_addr = 0;
	f->entry_stack = used;
	f->max_stack = used;
	f->start_ns = bpf_ktime_get_ns();
	t->depth = d + 1;
	return 0;
}

/* Adds one returned operation to the current interval buffer. */
static __always_inline void record(__u32 op, __u64 lat, __u32 entry_stack, __u32 max_stack)
{
	struct vexfs_op_extremes *x;
	struct vexfs_op_hist *h;
	__u32 buf, cpu;

	if (!lat)
		lat = 1;
	buf = *(volatile __u32 *)&epoch & 1;
	h = &hist[buf][op];
	__sync_fetch_and_add(&h->sum_ns, lat);
	__sync_fetch_and_add(&h->buckets[bucket_of(lat)], 1);

	/* Probes run with preemption off (kprobes; trampolines and raw
	 * tracepoints under the non-preemptible RCU read lock) or at least
	 * migration off with this program marked active on the CPU (the same
	 * under preemptible RCU), and each class has one program, so no other
	 * run of the same class writes this CPU's slot meanwhile. */
	cpu = bpf_get_smp_processor_id() & (VEXFS_MAX_CPUS - 1);
	x = &extremes[buf][cpu][op];
	if (!x->min_ns || lat < x->min_ns)
		x->min_ns = lat;
	if (lat > x->max_ns)
		x->max_ns = lat;
	if (entry_stack > x->entry_stack)
		x->entry_stack = entry_stack;
	if (max_stack > x->max_stack)
		x->max_stack = max_stack;
}

static __always_inline int op_exit(struct pt_regs *ctx, __u32 op)
{
	__u64 sp = PT_REGS_SP(ctx);
	__u64 now = bpf_ktime_get_ns();
	struct vexfs_frame *f;
	struct vexfs_task *t;
	__u32 d;

	t = task_ops(0);
	if (!t)
		return 0;
	/* `sp` is just past the return address: the returning frame and any
	 * nested ones whose returns were missed lie below it. The outermost of
	 * them, left on top of the popped ones, is the returning operation; if
	 * nothing was popped its entry was not seen (attached mid-operation). */
	if (!pop_below(t, sp))
		return 0;
	d = t->depth;
	if (d >= VEXFS_MAX_NEST)
		return 0;
	barrier_var(d);	/* see pop_below() */
	f = &t->frames[d & (VEXFS_MAX_NEST - 1)];
	if (f->op != op)
		return 0;
	record(op, now - f->start_ns, f->entry_stack, f->max_stack);
	return 0;
}

static __always_inline struct super_block *file_sb(struct file *file)
{
	return BPF_CORE_READ(file, f_inode, i_sb);
}

/*
 * One kprobe/kretprobe pair per probe point; `sb` extracts the superblock
 * from the entry function's arguments (see Documentation/design.rst) and is
 * evaluated only under a mount filter.
 */
#define VEXFS_PROBE(name, op, nested, sb)				\
	SEC("kprobe")							\
	int enter_##name(struct pt_regs *ctx)				\
	{								\
		return op_enter(ctx, op, nested, filter_dev ? (sb) : NULL); \
	}								\
	SEC("kretprobe")						\
	int exit_##name(struct pt_regs *ctx)				\
	{								\
		return op_exit(ctx, op);				\
	}

#define ARG_INODE(n) BPF_CORE_READ((struct inode *)PT_REGS_PARM##n(ctx), i_sb)
#define ARG_FILE(n) file_sb((struct file *)PT_REGS_PARM##n(ctx))
#define ARG_IOCB(n) file_sb(BPF_CORE_READ((struct kiocb *)PT_REGS_PARM##n(ctx), ki_filp))

/* vexfs_lookup(dir, dentry, flags) */
VEXFS_PROBE(lookup, VEXFS_OP_LOOKUP, false, ARG_INODE(1))
/* vexfs_create(idmap, dir, dentry, mode) */
VEXFS_PROBE(create, VEXFS_OP_CREATE, false, ARG_INODE(2))
/* vexfs_unlink(dir, dentry) */
VEXFS_PROBE(unlink, VEXFS_OP_UNLINK, false, ARG_INODE(1))
/* vexfs_read_iter(iocb, to), vexfs_write_iter(iocb, from) */
VEXFS_PROBE(read, VEXFS_OP_READ, false, ARG_IOCB(1))
VEXFS_PROBE(write, VEXFS_OP_WRITE, false, ARG_IOCB(1))
/* vexfs_fsync(file, start, end, datasync) */
VEXFS_PROBE(fsync, VEXFS_OP_FSYNC, false, ARG_FILE(1))
/* vexfs_ioctl_{insert,delete,search}(file, arg) */
VEXFS_PROBE(insert, VEXFS_OP_INSERT, false, ARG_FILE(1))
VEXFS_PROBE(delete, VEXFS_OP_DELETE, false, ARG_FILE(1))
VEXFS_PROBE(search, VEXFS_OP_SEARCH, false, ARG_FILE(1))
/* vexfs_simd_batch(floats, work): only ever nested in insert or search. */
VEXFS_PROBE(simd, VEXFS_OP_SIMD, true, NULL)

/*
 * fsession set: one program per probe point, run by the BPF trampoline at
 * the function's entry and again at its return (bpf_session_is_return()),
 * with a per-call cookie that the trampoline zeroes before the entry run:
 * entry stores the start time there only for an operation that passes the
 * filters, so at return a zero cookie means "not counted". Both kfuncs are
 * inlined by the verifier. No return is ever dropped (there are no return
 * instances to run out of); a run the kernel skips because this program is
 * already running on the CPU is counted in its recursion_misses.
 *
 * There is no pt_regs: the stack position is that of the program's context,
 * the traced function's arguments saved in the trampoline's frame on the
 * task's stack, the same address at entry and return. It lies below the
 * function's return address by the upper part of that frame, and the
 * function body runs below the whole frame, so stack figures include the
 * trampoline's frame.
 */

/* The context's address as a number: the verifier forbids turning a pointer
 * into a scalar by arithmetic, but one stored into memory (the session
 * cookie, or a slot of the raw tracepoint set; allowed with CAP_PERFMON)
 * reads back as a scalar. */
static __always_inline __u64 ctx_addr(void *ctx, __u64 *slot)
{
	*(void *volatile *)slot = ctx;
	return *(volatile __u64 *)slot;
}

/* Whether class `op` keeps a per-task frame (bit set by userland):
 * insert and search when simd is selected, everything when sampling. */
static __always_inline bool keeps_frame(__u32 op)
{
	return frame_ops & (1U << op);
}

static __always_inline int session_enter(void *ctx, __u32 op, bool nested,
					 struct super_block *sb)
{
	__u64 *cookie = bpf_session_cookie(ctx);
	struct vexfs_frame *f;
	struct vexfs_task *t;
	__u32 used, d;
	__u64 sp;

	if (other_process())
		return 0;
	if (filter_dev && !nested && (!sb || sb->s_dev != filter_dev))
		return 0;
	/* A SIMD batch finds the frame of the insert or search it runs in: it
	 * deepens its stack figure and, under a mount filter, decides whether
	 * the batch counts. Anything else that keeps a frame pushes one. The
	 * common case (no frame) needs neither the stack position nor the
	 * task's storage: its return reads the position again. */
	if (keeps_frame(op) || (nested && frame_ops)) {
		bool push = keeps_frame(op);

		/* From here on the cookie holds the context's address until it
		 * is set below: every way out sets it. */
		sp = ctx_addr(ctx, cookie);
		used = stack_used(sp);
		t = task_ops(push ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
		if (t) {
			/* Frames at or below this entry's position have returned. */
			pop_below(t, sp + 1);
			deepen(t, used);
		} else if (push) {
			__sync_fetch_and_add(&dropped, 1);
		}
		if (nested && filter_dev && (!t || !t->depth))
			goto out;
		if (t && push) {
			d = t->depth;
			if (d >= VEXFS_MAX_NEST) {
				__sync_fetch_and_add(&dropped, 1);
			} else {
				barrier_var(d);	/* see pop_below() */
				f = &t->frames[d & (VEXFS_MAX_NEST - 1)];
				f->op = op;
				f->entry_sp = sp;
				/* The first argument, saved at the context. */
				f->ret_addr = ((__u64 *)ctx)[0];
				f->entry_stack = used;
				f->max_stack = used;
				t->depth = d + 1;
			}
		}
	} else if (nested && filter_dev) {
		/* Under a mount filter userland keeps insert and search frames
		 * whenever simd is selected; without them no batch counts. */
		return 0;
	}
	*cookie = bpf_ktime_get_ns();
	return 0;
out:
	*cookie = 0;
	return 0;
}

static __always_inline int session_exit(void *ctx, __u32 op)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *cookie = bpf_session_cookie(ctx);
	__u64 start = *cookie, sp;
	struct vexfs_frame *f;
	struct vexfs_task *t;
	__u32 used, max, d;

	if (!start)
		return 0;
	sp = ctx_addr(ctx, cookie);
	used = stack_used(sp);
	max = used;
	if (keeps_frame(op)) {
		t = task_ops(0);
		if (t) {
			/* Nested frames whose return was not seen lie below. */
			pop_below(t, sp);
			d = t->depth - 1;
			if (d < VEXFS_MAX_NEST) {
				barrier_var(d);	/* see pop_below() */
				f = &t->frames[d & (VEXFS_MAX_NEST - 1)];
				if (f->entry_sp == sp && f->op == op) {
					if (f->max_stack > max)
						max = f->max_stack;
					t->depth = d;
				}
			}
		}
	}
	record(op, now - start, used, max);
	return 0;
}

/*
 * One fsession program per probe point, named fs_<op>; `sb` reads the
 * superblock from the typed arguments (direct loads through BTF) and is
 * evaluated only under a mount filter.
 */
#define VEXFS_SESSION(name, fn, op, nested, sb, args...)		\
	SEC("fsession/" #fn)						\
	int BPF_PROG(fs_##name, args)					\
	{								\
		if (bpf_session_is_return(ctx))				\
			return session_exit(ctx, op);			\
		return session_enter(ctx, op, nested, filter_dev ? (sb) : NULL); \
	}

VEXFS_SESSION(lookup, vexfs_lookup, VEXFS_OP_LOOKUP, false, dir->i_sb,
	      struct inode *dir)
VEXFS_SESSION(create, vexfs_create, VEXFS_OP_CREATE, false, dir->i_sb,
	      struct mnt_idmap *idmap, struct inode *dir)
VEXFS_SESSION(unlink, vexfs_unlink, VEXFS_OP_UNLINK, false, dir->i_sb,
	      struct inode *dir)
VEXFS_SESSION(read, vexfs_read_iter, VEXFS_OP_READ, false,
	      iocb->ki_filp->f_inode->i_sb, struct kiocb *iocb)
VEXFS_SESSION(write, vexfs_write_iter, VEXFS_OP_WRITE, false,
	      iocb->ki_filp->f_inode->i_sb, struct kiocb *iocb)
VEXFS_SESSION(fsync, vexfs_fsync, VEXFS_OP_FSYNC, false, file->f_inode->i_sb,
	      struct file *file)
VEXFS_SESSION(insert, vexfs_ioctl_insert, VEXFS_OP_INSERT, false,
	      file->f_inode->i_sb, struct file *file)
VEXFS_SESSION(delete, vexfs_ioctl_delete, VEXFS_OP_DELETE, false,
	      file->f_inode->i_sb, struct file *file)
VEXFS_SESSION(search, vexfs_ioctl_search, VEXFS_OP_SEARCH, false,
	      file->f_inode->i_sb, struct file *file)
VEXFS_SESSION(simd, vexfs_simd_batch, VEXFS_OP_SIMD, true, NULL,
	      size_t floats)

/*
 * Raw tracepoint set: one program per file operation's event, named
 * tp_<op>. The event's arguments (kmod/vexfs_trace.h) are the mount's
 * device, the inode, the return value and the duration in nanoseconds.
 *
 * The stack figure is the stack in use at the program's context, the
 * event's arguments that the tracepoint's BPF glue keeps on the task's
 * stack, a few frames below the returning operation's probe point. The
 * context's address becomes a number through a slot per CPU and class
 * (the same verifier rule as ctx_addr()): a raw tracepoint program runs
 * with migration off and never twice at once on a CPU, but under
 * preemptible RCU another class's program may preempt it.
 */
__u64 ctx_slot[VEXFS_MAX_CPUS][VEXFS_NR_OPS];

static __always_inline int op_done(struct bpf_raw_tracepoint_args *ctx, __u32 op)
{
	__u32 dev = ctx->args[0], used, cpu;
	__u64 ns = ctx->args[3];

	if (other_process())
		return 0;
	if (filter_dev && dev != filter_dev)
		return 0;
	cpu = bpf_get_smp_processor_id() & (VEXFS_MAX_CPUS - 1);
	used = stack_used(ctx_addr(ctx, &ctx_slot[cpu][op]));
	record(op, ns, used, used);
	return 0;
}

#define VEXFS_TRACEPOINT(name, op)					\
	SEC("raw_tp")							\
	int tp_##name(struct bpf_raw_tracepoint_args *ctx)		\
	{								\
		return op_done(ctx, op);				\
	}

/* vexfs_<op>_done(dev, ino, ret, ns) */
VEXFS_TRACEPOINT(lookup, VEXFS_OP_LOOKUP)
VEXFS_TRACEPOINT(create, VEXFS_OP_CREATE)
VEXFS_TRACEPOINT(unlink, VEXFS_OP_UNLINK)
VEXFS_TRACEPOINT(read, VEXFS_OP_READ)
VEXFS_TRACEPOINT(write, VEXFS_OP_WRITE)
VEXFS_TRACEPOINT(fsync, VEXFS_OP_FSYNC)

/*
 * cpu-clock samples: the interrupted kernel stack of a task inside a VexFS
 * operation, counted per outermost operation. The interrupted stack pointer
 * also deepens the stack figures of the task's open operations.
 */
SEC("perf_event")
int sample(struct bpf_perf_event_data *ctx)
{
	struct vexfs_sample_key key = {};
	struct vexfs_task *t;
	__u64 one = 1, *n;

	__u64 sp = ctx->regs.sp, ret;
	__u32 used;

	t = task_ops(0);
	if (!t || !t->depth)
		return 0;
	/* Only a task interrupted on its kernel stack (not in user mode, not
	 * on an interrupt stack) below its outermost open operation's entry,
	 * whose return address is still in place, is inside VexFS; frames left
	 * by missed returns do not count. */
	used = stack_used(sp);
	if (!used || t->frames[0].entry_sp <= sp)
		return 0;
	if (bpf_probe_read_kernel(&ret, sizeof(ret), (void *)t->frames[0].entry_sp) ||
	    (ret != t->frames[0].ret_addr &&
	     !(rethook_trampoline && ret == rethook_trampoline)))
		return 0;
	deepen(t, used);
	if (!sample_stacks)
		return 0;
	key.op = t->frames[0].op;
	key.kstack = bpf_get_stackid(ctx, &stacks, 0);
	if (key.kstack < 0) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	n = bpf_map_lookup_elem(&samples, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else if (bpf_map_update_elem(&samples, &key, &one, BPF_NOEXIST))
		__sync_fetch_and_add(&dropped, 1);
	return 0;
}
