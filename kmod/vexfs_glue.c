// SPDX-License-Identifier: GPL-2.0
/*
 * C glue for the one interface Rust cannot reach: struct fs_context is
 * opaque to the kernel's Rust bindings (linux/fs_context.h is not among
 * their headers), so installing fs_context operations and calling
 * get_tree_nodev() must happen here, and a few inline helpers get a
 * callable body. No filesystem logic lives in this file.
 */
#include <linux/fs_context.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>

/* In super_block.rs. */
int vexfs_fill_super(struct super_block *sb, struct fs_context *fc);
/* Called from Rust (super_block.rs, sys.rs). */
int vexfs_init_fs_context(struct fs_context *fc);
void vexfs_cond_resched(void);
bool vexfs_fatal_signal_pending(void);

/* Every mount gets a new, independent superblock (nodev: no backing device). */
static int vexfs_get_tree(struct fs_context *fc)
{
	return get_tree_nodev(fc, vexfs_fill_super);
}

static const struct fs_context_operations vexfs_context_ops = {
	.get_tree = vexfs_get_tree,
};

/* file_system_type.init_fs_context, referenced from super_block.rs. */
int vexfs_init_fs_context(struct fs_context *fc)
{
	fc->ops = &vexfs_context_ops;
	return 0;
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
