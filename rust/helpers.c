// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for vtier's Rust code: the static inline block-layer functions
 * and flag macros that bindgen cannot bind. Each is a one-line wrapper, in
 * the manner of the kernel's own rust/helpers/; keep them that way and keep
 * the logic in Rust.
 */

#include <linux/bio.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/cpumask.h>
#include <linux/idr.h>
#include <linux/crc32.h>

#include "helpers.h"

/* Open @path for reading and writing, exclusively for @holder. */
struct file *vtier_bdev_open(const char *path, void *holder)
{
	return bdev_file_open_by_path(path, BLK_OPEN_READ | BLK_OPEN_WRITE,
				      holder, NULL);
}

sector_t vtier_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

unsigned int vtier_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}



/* Whether @bdev's disk has been removed (hot-unplugged) since it was opened. */
bool vtier_bdev_dead(struct block_device *bdev)
{
	return test_bit(GD_DEAD, &bdev->bd_disk->state);
}

dev_t vtier_bdev_dev(struct block_device *bdev)
{
	return bdev->bd_dev;
}

blk_features_t vtier_blk_feat_write_cache_fua(void)
{
	return BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA;
}

unsigned int vtier_num_online_cpus(void)
{
	return num_online_cpus();
}

unsigned int vtier_disk_openers(struct gendisk *disk)
{
	return disk_openers(disk);
}

sector_t vtier_rq_pos(struct request *rq)
{
	return blk_rq_pos(rq);
}

unsigned int vtier_rq_bytes(struct request *rq)
{
	return blk_rq_bytes(rq);
}

/*
 * Indexes N of /dev/vtierN in use (DiskIndex in volume.rs). The IDA lives
 * here because its initialiser (DEFINE_IDA: the xarray's spinlock and
 * flags) is a C macro; it does its own locking. Every index is freed
 * before the module can be unloaded (a volume exists only inside its
 * configfs directory, which pins the module), and an IDA frees its memory
 * as it empties, so it needs no teardown.
 */
static DEFINE_IDA(vtier_disk_ida);

int vtier_disk_index_alloc(unsigned int max)
{
	return ida_alloc_max(&vtier_disk_ida, max, GFP_KERNEL);
}

void vtier_disk_index_free(unsigned int index)
{
	ida_free(&vtier_disk_ida, index);
}

/*
 * CRC32C: crc32c() is exported but not in the kernel's Rust bindings. It
 * takes and returns the raw register (no inversion at either end).
 */
u32 vtier_crc32c(u32 crc, const void *p, size_t len)
{
	return crc32c(crc, p, len);
}
