// SPDX-License-Identifier: GPL-2.0
/*
 * C glue for vfs/block.rs: the block-device interfaces the Rust bindings
 * cannot reach because they are inlines or macros. Each function adapts one
 * of them; all I/O decisions are made in Rust.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/gfp.h>

/* Called from vfs/block.rs. */
blk_mode_t vexfs_blk_open_mode(bool write);
unsigned int vexfs_bdev_logical_block_size(struct block_device *bdev);
loff_t vexfs_bdev_nr_bytes(struct block_device *bdev);
bool vexfs_bdev_read_only(struct block_device *bdev);
bool vexfs_bdev_write_cache(struct block_device *bdev);
bool vexfs_bdev_fua(struct block_device *bdev);
blk_opf_t vexfs_write_opf(bool fua);
struct bio *vexfs_bio_alloc(struct block_device *bdev, blk_opf_t opf);
void *vexfs_block_buf_alloc(unsigned int order);

/*
 * sb_open_mode() and the BLK_OPEN_* flags are macros with __force casts,
 * which bindgen leaves out: a device is opened as a mount opens it (read,
 * write unless read-only, and no other writer while it is held).
 */
blk_mode_t vexfs_blk_open_mode(bool write)
{
	return sb_open_mode(write ? 0 : SB_RDONLY);
}

/* bdev_logical_block_size() is an inline over the request queue limits. */
unsigned int vexfs_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

/* bdev_nr_bytes() is an inline. */
loff_t vexfs_bdev_nr_bytes(struct block_device *bdev)
{
	return bdev_nr_bytes(bdev);
}

/* bdev_read_only() is an inline over the partition and disk flags. */
bool vexfs_bdev_read_only(struct block_device *bdev)
{
	return bdev_read_only(bdev);
}

/* bdev_write_cache() is an inline over the queue features and flags. */
bool vexfs_bdev_write_cache(struct block_device *bdev)
{
	return bdev_write_cache(bdev);
}

/* bdev_fua() is an inline over the queue features. */
bool vexfs_bdev_fua(struct block_device *bdev)
{
	return bdev_fua(bdev);
}

/* REQ_SYNC and REQ_FUA are macros with __force casts. */
blk_opf_t vexfs_write_opf(bool fua)
{
	return REQ_OP_WRITE | REQ_SYNC | (fua ? REQ_FUA : 0);
}

/*
 * bio_alloc() is an inline and GFP_NOIO a macro. One vector; from the
 * fs_bio_set mempool, so with GFP_NOIO (which may sleep) it does not fail.
 */
struct bio *vexfs_bio_alloc(struct block_device *bdev, blk_opf_t opf)
{
	return bio_alloc(bdev, 1, opf, GFP_NOIO);
}

/*
 * __get_free_pages() is a macro (allocation profiling) and GFP_NOFS one
 * too. Zeroed, directly mapped pages (no __GFP_HIGHMEM), NULL on failure.
 */
void *vexfs_block_buf_alloc(unsigned int order)
{
	return (void *)__get_free_pages(GFP_NOFS | __GFP_ZERO, order);
}
