/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VexFS's tracepoints: one event per file operation class, emitted by the
 * Rust side of the operation's probe point (kmod/vfs/entry.rs) when the
 * operation returns, with its duration. The duration is measured only
 * while the event is enabled, so a disabled event costs one test of its
 * static key per operation.
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

#endif /* _VEXFS_TRACE_H */

/* An out-of-tree header: define_trace.h finds it through -I$(src). */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE vexfs_trace
#include <trace/define_trace.h>
