/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The queue between vtier's blk-mq intake and its worker (rq_queue.c).
 */
#ifndef VTIER_RQ_QUEUE_H
#define VTIER_RQ_QUEUE_H

#include <linux/blk-mq.h>

struct vtier_rq_queue;

/* Processes @rq and ends it; called in process context, one at a time. */
typedef void (*vtier_rq_fn)(struct request *rq);

/* One step of background work; returns whether more is wanted. */
typedef bool (*vtier_bg_fn)(void *data);

struct vtier_rq_queue *vtier_rq_queue_create(const char *name, vtier_rq_fn fn);
void vtier_rq_queue_set_background(struct vtier_rq_queue *q, vtier_bg_fn fn,
				   void *data);
void vtier_rq_queue_kick(struct vtier_rq_queue *q);
void vtier_rq_queue_stop_background(struct vtier_rq_queue *q);
void vtier_rq_queue_add(struct vtier_rq_queue *q, struct request *rq);
void vtier_rq_queue_destroy(struct vtier_rq_queue *q);

void vtier_call_on_fresh_stack(void (*fn)(void *data), void *data);

unsigned int vtier_rq_copy(struct request *rq, void *buf, unsigned int len,
			   bool to_rq);

#endif /* VTIER_RQ_QUEUE_H */
