/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for vtier's Rust code (rust/helpers.c). Rust declares the same
 * functions in `unsafe extern "C"` blocks next to their users.
 */
#ifndef VTIER_HELPERS_H
#define VTIER_HELPERS_H

#include <linux/blk_types.h>
#include <linux/blkdev.h>

struct file *vtier_bdev_open(const char *path, void *holder);
sector_t vtier_bdev_nr_sectors(struct block_device *bdev);
unsigned int vtier_bdev_logical_block_size(struct block_device *bdev);
dev_t vtier_bdev_dev(struct block_device *bdev);
bool vtier_bdev_dead(struct block_device *bdev);
blk_features_t vtier_blk_feat_write_cache_fua(void);
unsigned int vtier_num_online_cpus(void);
unsigned int vtier_disk_openers(struct gendisk *disk);
sector_t vtier_rq_pos(struct request *rq);
unsigned int vtier_rq_bytes(struct request *rq);
int vtier_disk_index_alloc(unsigned int max);
void vtier_disk_index_free(unsigned int index);
u32 vtier_crc32c(u32 crc, const void *p, size_t len);

#endif /* VTIER_HELPERS_H */
