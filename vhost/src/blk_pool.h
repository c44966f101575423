/* SPDX-License-Identifier: MIT */
/*
 * The store half of a queue: IN and OUT requests the io_uring path does
 * not take (a chunk inherited from the parent layer to decompress and
 * verify, a first write to a chunk to copy up, every request of a layer)
 * run tsr_blk_handle on a few worker threads, several at a time, and come
 * back to the queue's thread, which alone returns them to the guest.
 *
 * One per queue.  Every function here is called by the queue's thread
 * only; the workers touch nothing but the jobs handed to them.  Every job
 * slot and every worker's bounce buffer is allocated when the queue
 * starts: nothing is allocated on the I/O path.
 */
#ifndef TSR_VHOST_BLK_POOL_H
#define TSR_VHOST_BLK_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "blk.h"
#include "blk_uring.h"   /* tsr_blk_done_fn */

struct tsr_blk_pool;

/* Starts threads workers (1..TSR_BLK_POOL_MAX_THREADS) and depth job slots
 * (the virtqueue size: every request the guest can have in flight fits).
 * Workers take no signals.  0, -EINVAL, -ENOMEM, or a pthread error. */
#define TSR_BLK_POOL_MAX_THREADS 16
int tsr_blk_pool_new(const struct tsr_blk *blk, unsigned threads,
		     unsigned depth, tsr_blk_done_fn *done, void *done_arg,
		     struct tsr_blk_pool **ret_p);
/* Waits for every job (finishing each through done), stops the workers,
 * frees everything. */
void tsr_blk_pool_free(struct tsr_blk_pool *p);

/* An eventfd that becomes readable when jobs finish: poll it, read it,
 * then call tsr_blk_pool_reap(). */
int tsr_blk_pool_fd(const struct tsr_blk_pool *p);
bool tsr_blk_pool_has_room(const struct tsr_blk_pool *p);
/* Jobs added and not yet returned through done. */
unsigned tsr_blk_pool_inflight(const struct tsr_blk_pool *p);

/* Copies the request (its iovecs point into guest memory, which stays
 * mapped while the queue runs) into a free slot and queues it.  1: queued;
 * it finishes through done.  0: no free slot, or more iovecs than a slot
 * holds: serve it with tsr_blk_handle.  Idle workers are woken only by
 * tsr_blk_pool_kick, so that a lone request can run without a hand-off. */
int tsr_blk_pool_add(struct tsr_blk_pool *p, const struct tsr_vreq *req);
/* Gets the queued jobs going.  With bounce (TSR_BLK_BOUNCE bytes, the
 * caller's), a lone job — the only one queued, no worker busy — runs on
 * the caller at once (and finishes through done before this returns):
 * a queue-depth-1 guest pays no thread hand-off.  Otherwise idle workers
 * are woken for them. */
void tsr_blk_pool_kick(struct tsr_blk_pool *p, void *bounce);
/* Returns finished jobs through done (with wait, first blocks until at
 * least one finishes, unless nothing is in flight).  Returns how many. */
unsigned tsr_blk_pool_reap(struct tsr_blk_pool *p, bool wait);
/* Reaps until nothing is in flight. */
void tsr_blk_pool_drain(struct tsr_blk_pool *p);

#endif /* TSR_VHOST_BLK_POOL_H */
