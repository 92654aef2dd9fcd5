/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VexFS's tracepoints: one event per operation class, emitted when the
 * operation returns, with its duration (file operations and SIMD batches
 * by kmod/vfs/entry.rs, vector ioctls by kmod/vector_ioctl.rs, commits and
 * checkpoints of durable mounts by kmod/disk.rs, all through
 * kmod/vfs/trace.rs). The duration is measured only while the event is
 * enabled, so a disabled event costs one test of its static key per
 * operation.
 *
 * ftrace shows them under events/vexfs/; the profiler reads them with raw
 * tracepoint BPF programs: one program run per operation, where a BPF
 * trampoline runs its program at the function's entry and again at its
 * return.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vexfs

#if !defined(_VEXFS_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _VEXFS_TRACE_H

#include <linux/tracepoint.h>

/*
 * A returned operation on inode `ino` of the mount `dev` (the directory
 * for lookup, create and unlink): `ret` is what it returned (bytes for
 * read and write, 0 or a negative errno otherwise), `ns` how long it took.
 * The argument order is the ABI of raw tracepoint programs (args[0..3]).
 */
DECLARE_EVENT_CLASS(vexfs_op_done,
	TP_PROTO(dev_t dev, u64 ino, s64 ret, u64 ns),
	TP_ARGS(dev, ino, ret, ns),
	TP_STRUCT__entry(
		__field(dev_t, dev)
		__field(u64, ino)
		__field(s64, ret)
		__field(u64, ns)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->ino = ino;
		__entry->ret = ret;
		__entry->ns = ns;
	),
	TP_printk("dev %d:%d ino %llu ret %lld ns %llu",
		  MAJOR(__entry->dev), MINOR(__entry->dev),
		  __entry->ino, __entry->ret, __entry->ns)
);

#define DEFINE_VEXFS_OP_DONE(name)					\
DEFINE_EVENT(vexfs_op_done, name,					\
	TP_PROTO(dev_t dev, u64 ino, s64 ret, u64 ns),			\
	TP_ARGS(dev, ino, ret, ns))

DEFINE_VEXFS_OP_DONE(vexfs_lookup_done);
DEFINE_VEXFS_OP_DONE(vexfs_create_done);
DEFINE_VEXFS_OP_DONE(vexfs_unlink_done);
DEFINE_VEXFS_OP_DONE(vexfs_read_done);
DEFINE_VEXFS_OP_DONE(vexfs_write_done);
DEFINE_VEXFS_OP_DONE(vexfs_fsync_done);

/* A vector batch insert or delete of `count` rows into the collection
 * `ino` returned `ret` (0 or a negative errno) after `ns`. */
DECLARE_EVENT_CLASS(vexfs_batch_done,
	TP_PROTO(dev_t dev, u64 ino, u32 count, s64 ret, u64 ns),
	TP_ARGS(dev, ino, count, ret, ns),
	TP_STRUCT__entry(
		__field(dev_t, dev)
		__field(u64, ino)
		__field(u32, count)
		__field(s64, ret)
		__field(u64, ns)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->ino = ino;
		__entry->count = count;
		__entry->ret = ret;
		__entry->ns = ns;
	),
	TP_printk("dev %d:%d ino %llu count %u ret %lld ns %llu",
		  MAJOR(__entry->dev), MINOR(__entry->dev),
		  __entry->ino, __entry->count, __entry->ret, __entry->ns)
);

DEFINE_EVENT(vexfs_batch_done, vexfs_insert_done,
	TP_PROTO(dev_t dev, u64 ino, u32 count, s64 ret, u64 ns),
	TP_ARGS(dev, ino, count, ret, ns));
DEFINE_EVENT(vexfs_batch_done, vexfs_delete_done,
	TP_PROTO(dev_t dev, u64 ino, u32 count, s64 ret, u64 ns),
	TP_ARGS(dev, ino, count, ret, ns));

/* A search of `nq` queries for the `k` nearest in the collection `ino`,
 * with a beam of `ef` (0 when the request left it to the collection) and
 * the request's flags (VEXFS_SEARCH_EXACT, _UNDER and _XATTR filters),
 * returned `ret` after `ns`. Values of a request refused before it was
 * read in full are 0. */
TRACE_EVENT(vexfs_search_done,
	TP_PROTO(dev_t dev, u64 ino, u32 nq, u32 k, u32 ef, u32 flags, s64 ret,
		 u64 ns),
	TP_ARGS(dev, ino, nq, k, ef, flags, ret, ns),
	TP_STRUCT__entry(
		__field(dev_t, dev)
		__field(u64, ino)
		__field(u32, nq)
		__field(u32, k)
		__field(u32, ef)
		__field(u32, flags)
		__field(s64, ret)
		__field(u64, ns)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->ino = ino;
		__entry->nq = nq;
		__entry->k = k;
		__entry->ef = ef;
		__entry->flags = flags;
		__entry->ret = ret;
		__entry->ns = ns;
	),
	TP_printk("dev %d:%d ino %llu nq %u k %u ef %u flags %#x ret %lld ns %llu",
		  MAJOR(__entry->dev), MINOR(__entry->dev), __entry->ino,
		  __entry->nq, __entry->k, __entry->ef, __entry->flags,
		  __entry->ret, __entry->ns)
);

/* One FPU section of SIMD work over `floats` values took `ns` (the time
 * with preemption off). */
TRACE_EVENT(vexfs_simd_batch_done,
	TP_PROTO(u64 floats, u64 ns),
	TP_ARGS(floats, ns),
	TP_STRUCT__entry(
		__field(u64, floats)
		__field(u64, ns)
	),
	TP_fast_assign(
		__entry->floats = floats;
		__entry->ns = ns;
	),
	TP_printk("floats %llu ns %llu", __entry->floats, __entry->ns)
);

/* A durable mount's commit to its log returned `ret` after `ns`: the
 * transaction's `bytes` of records (before framing) and the `inodes` it
 * dirtied (evicted ones included). A commit that does not fit in the log
 * writes a checkpoint instead and reports only as vexfs_checkpoint_done. */
TRACE_EVENT(vexfs_commit_done,
	TP_PROTO(dev_t dev, u64 bytes, u32 inodes, s64 ret, u64 ns),
	TP_ARGS(dev, bytes, inodes, ret, ns),
	TP_STRUCT__entry(
		__field(dev_t, dev)
		__field(u64, bytes)
		__field(u32, inodes)
		__field(s64, ret)
		__field(u64, ns)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->bytes = bytes;
		__entry->inodes = inodes;
		__entry->ret = ret;
		__entry->ns = ns;
	),
	TP_printk("dev %d:%d bytes %llu inodes %u ret %lld ns %llu",
		  MAJOR(__entry->dev), MINOR(__entry->dev), __entry->bytes,
		  __entry->inodes, __entry->ret, __entry->ns)
);

/* A durable mount's checkpoint returned `ret` after `ns`; on success
 * `seq` is its sequence number and `inodes` the inodes it holds. */
TRACE_EVENT(vexfs_checkpoint_done,
	TP_PROTO(dev_t dev, u64 seq, u64 inodes, s64 ret, u64 ns),
	TP_ARGS(dev, seq, inodes, ret, ns),
	TP_STRUCT__entry(
		__field(dev_t, dev)
		__field(u64, seq)
		__field(u64, inodes)
		__field(s64, ret)
		__field(u64, ns)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->seq = seq;
		__entry->inodes = inodes;
		__entry->ret = ret;
		__entry->ns = ns;
	),
	TP_printk("dev %d:%d seq %llu inodes %llu ret %lld ns %llu",
		  MAJOR(__entry->dev), MINOR(__entry->dev), __entry->seq,
		  __entry->inodes, __entry->ret, __entry->ns)
);

#endif /* _VEXFS_TRACE_H */

/* An out-of-tree header: define_trace.h finds it through -I$(src). */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE vexfs_trace
#include <trace/define_trace.h>
