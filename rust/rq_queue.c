// SPDX-License-Identifier: GPL-2.0
/*
 * The queue between vtier's blk-mq intake and its worker.
 *
 * vtier serves a request with synchronous I/O to its member devices (the
 * engine reads and writes through submit_bio_wait()). blk-mq may call
 * ->queue_rq() from inside another submit_bio(), where current->bio_list
 * is set and a bio we submit is only issued after we return: waiting for
 * it there would wait forever. So ->queue_rq() only queues the request
 * here, and an ordered workqueue serves requests one at a time in process
 * context, as the loop driver does. The worker runs with memalloc_noio
 * set, so no allocation it makes recurses into I/O on the device it is
 * serving; the workqueue has a rescuer (WQ_MEM_RECLAIM) for the same
 * reason.
 *
 * The same ordered workqueue runs the volume's background work (destaging
 * above the high watermark) one bounded step at a time: a step that wants
 * more queues itself again behind the requests that came meanwhile, so
 * requests wait for one step at most, never for the whole of it.
 *
 * The queue's spinlock is the last lock of a vtier device's lock order
 * (volume.rs states it): it guards only the list, nothing is taken under
 * it, and the worker drops it before it serves a request.
 */

#include <linux/blk-mq.h>
#include <linux/list.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "rq_queue.h"

struct vtier_rq_queue {
	/*
	 * Protects @list. Taken by vtier_rq_queue_add() (from ->queue_rq(),
	 * which may not sleep, so irqsave) and by the worker to take the next
	 * request; never held while anything else is taken.
	 */
	spinlock_t lock;
	struct list_head list;	/* of request.queuelist, oldest first */
	struct work_struct work;
	struct workqueue_struct *wq;
	vtier_rq_fn fn;
	/* Background work: one step per run, @bg_fn says if more is wanted. */
	struct delayed_work bg;
	vtier_bg_fn bg_fn;
	void *bg_data;
	/* Set once by vtier_rq_queue_stop_background(): no step runs again. */
	bool bg_off;
};

static void vtier_bg_work(struct work_struct *work)
{
	struct vtier_rq_queue *q = container_of(to_delayed_work(work),
						 struct vtier_rq_queue, bg);
	unsigned int noio = memalloc_noio_save();
	bool more = false;

	if (q->bg_fn && !READ_ONCE(q->bg_off))
		more = q->bg_fn(q->bg_data);
	memalloc_noio_restore(noio);
	if (more && !READ_ONCE(q->bg_off))
		queue_delayed_work(q->wq, &q->bg, 0);
}

static void vtier_rq_work(struct work_struct *work)
{
	struct vtier_rq_queue *q = container_of(work, struct vtier_rq_queue,
						 work);
	unsigned int noio = memalloc_noio_save();
	struct request *rq;

	for (;;) {
		spin_lock_irq(&q->lock);
		rq = list_first_entry_or_null(&q->list, struct request,
					      queuelist);
		if (rq)
			list_del_init(&rq->queuelist);
		spin_unlock_irq(&q->lock);
		if (!rq)
			break;
		q->fn(rq);
		cond_resched();
	}
	memalloc_noio_restore(noio);
}

/* A queue whose worker calls @fn for every request; NULL without memory. */
struct vtier_rq_queue *vtier_rq_queue_create(const char *name, vtier_rq_fn fn)
{
	struct vtier_rq_queue *q = kzalloc(sizeof(*q), GFP_KERNEL);

	if (!q)
		return NULL;
	q->wq = alloc_ordered_workqueue("%s", WQ_MEM_RECLAIM, name);
	if (!q->wq) {
		kfree(q);
		return NULL;
	}
	spin_lock_init(&q->lock);
	INIT_LIST_HEAD(&q->list);
	INIT_WORK(&q->work, vtier_rq_work);
	INIT_DELAYED_WORK(&q->bg, vtier_bg_work);
	q->fn = fn;
	return q;
}

/*
 * Sets the background step @fn(@data), before the first kick. @data must
 * stay valid until vtier_rq_queue_stop_background() has returned.
 */
void vtier_rq_queue_set_background(struct vtier_rq_queue *q, vtier_bg_fn fn,
				   void *data)
{
	q->bg_data = data;
	q->bg_fn = fn;
}

/* Runs a background step soon, unless one is queued or it was stopped. */
void vtier_rq_queue_kick(struct vtier_rq_queue *q)
{
	if (q->bg_fn && !READ_ONCE(q->bg_off))
		queue_delayed_work(q->wq, &q->bg, 0);
}

/*
 * Stops background work for good and waits for a running step; a step
 * that wanted more does not queue itself again. Idempotent.
 */
void vtier_rq_queue_stop_background(struct vtier_rq_queue *q)
{
	WRITE_ONCE(q->bg_off, true);
	cancel_delayed_work_sync(&q->bg);
}

/* Hands a started request to the worker; never sleeps. */
void vtier_rq_queue_add(struct vtier_rq_queue *q, struct request *rq)
{
	unsigned long flags;

	spin_lock_irqsave(&q->lock, flags);
	list_add_tail(&rq->queuelist, &q->list);
	spin_unlock_irqrestore(&q->lock, flags);
	queue_work(q->wq, &q->work);
}

/* Waits for the worker to finish and frees the queue. */
void vtier_rq_queue_destroy(struct vtier_rq_queue *q)
{
	vtier_rq_queue_stop_background(q);
	destroy_workqueue(q->wq);
	WARN_ON(!list_empty(&q->list));
	kfree(q);
}

struct vtier_fresh_work {
	struct work_struct work;
	void (*fn)(void *data);
	void *data;
};

static void vtier_fresh_work_fn(struct work_struct *work)
{
	struct vtier_fresh_work *f = container_of(work, struct vtier_fresh_work,
						  work);
	unsigned int noio = memalloc_noio_save();

	f->fn(f->data);
	memalloc_noio_restore(noio);
}

/*
 * Runs @fn(@data) in a kworker and waits for it. Opening and closing a
 * volume run the engine's recovery and checkpoint, whose call chains are
 * deep; a worker starts them on an empty stack instead of below the
 * configfs write that asked for them. @fn may hold the lock the request
 * worker needs (destage, scrub, rebuild), so, like that worker, it
 * allocates without recursing into I/O.
 */
void vtier_call_on_fresh_stack(void (*fn)(void *data), void *data)
{
	struct vtier_fresh_work f = { .fn = fn, .data = data };

	INIT_WORK_ONSTACK(&f.work, vtier_fresh_work_fn);
	queue_work(system_dfl_wq, &f.work);
	flush_work(&f.work);
	destroy_work_on_stack(&f.work);
}

/*
 * Copies the data of @rq into @buf (@to_rq false) or from @buf into @rq's
 * pages; returns the bytes copied, less than blk_rq_bytes() only if @len
 * is too short.
 */
unsigned int vtier_rq_copy(struct request *rq, void *buf, unsigned int len,
			   bool to_rq)
{
	struct req_iterator iter;
	struct bio_vec bv;
	unsigned int done = 0;

	rq_for_each_segment(bv, rq, iter) {
		if (bv.bv_len > len - done)
			break;
		if (to_rq)
			memcpy_to_bvec(&bv, buf + done);
		else
			memcpy_from_bvec(buf + done, &bv);
		done += bv.bv_len;
	}
	return done;
}
