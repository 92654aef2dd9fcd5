/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Layout shared by the BPF side (vexfs_profile.bpf.c) and the Rust side
 * (userland/vexfs-profiler, which gets these types through the generated
 * skeleton and mirrors the constants in src/ops.rs and src/histogram.rs).
 */
#ifndef VEXFS_PROFILE_H
#define VEXFS_PROFILE_H

/* Operation classes, in the order of `ops::OPS` on the Rust side. */
enum vexfs_op {
	VEXFS_OP_LOOKUP,
	VEXFS_OP_CREATE,
	VEXFS_OP_UNLINK,
	VEXFS_OP_READ,
	VEXFS_OP_WRITE,
	VEXFS_OP_FSYNC,
	VEXFS_OP_INSERT,
	VEXFS_OP_DELETE,
	VEXFS_OP_SEARCH,
	VEXFS_OP_SIMD,
	VEXFS_NR_OPS,
};

/*
 * Log-linear latency histogram (nanoseconds): values below 16 have a bucket
 * each; above, every power of two [2^e, 2^(e+1)) is split into 16 equal
 * sub-buckets, so a bucket is at most 1/16 (6.25 %) of its lower bound wide.
 * Bucket of v >= 16: (e - 3) * 16 + ((v >> (e - 4)) & 15), e = log2(v).
 * Values from 2^48 ns (3.3 days) up share the last bucket.
 */
#define VEXFS_SUB_BITS 4
#define VEXFS_SUB_BUCKETS (1 << VEXFS_SUB_BITS)
#define VEXFS_MAX_LOG2 47
#define VEXFS_NR_BUCKETS ((VEXFS_MAX_LOG2 - VEXFS_SUB_BITS + 2) * VEXFS_SUB_BUCKETS)

/* Per-CPU slots for minima and maxima (no atomics needed): CPU ids are
 * folded into this many slots. */
#define VEXFS_MAX_CPUS 64
/* Nesting of VexFS operations within one task (search -> simd batch). */
#define VEXFS_MAX_NEST 4
/* Frames kept per sampled kernel stack (PERF_MAX_STACK_DEPTH). */
#define VEXFS_STACK_DEPTH 127

/* Histogram of one operation class in one interval buffer (its count is
 * the sum of the buckets). */
struct vexfs_op_hist {
	__u64 sum_ns;
	__u64 buckets[VEXFS_NR_BUCKETS];
};

/* Extremes of one operation class seen on one CPU in one interval buffer;
 * min_ns == 0 means "none yet". */
struct vexfs_op_extremes {
	__u64 min_ns;
	__u64 max_ns;
	__u32 entry_stack;
	__u32 max_stack;
};

/* Key of the sampled-stack counts: outermost VexFS operation of the task and
 * the id of its kernel stack in the stack-trace map. */
struct vexfs_sample_key {
	__u32 op;
	__s32 kstack;
};

#endif /* VEXFS_PROFILE_H */
