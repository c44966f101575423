/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous half of a queue: IN and OUT requests whose whole range
 * lies in plain file ranges of the backing (tsr_blk_ops.map says FILE or,
 * for reads, ZERO) are served with io_uring readv/writev straight on the
 * guest's buffers, many at a time.  Everything else stays with
 * tsr_blk_handle.
 *
 * One per queue, used only by the queue's thread (the ring is created
 * with IORING_SETUP_SINGLE_ISSUER where the kernel has it).  Every
 * request slot is allocated when the queue starts: nothing is allocated
 * on the I/O path.
 */
#ifndef TSR_VHOST_BLK_URING_H
#define TSR_VHOST_BLK_URING_H

#include <stdbool.h>
#include <stdint.h>

#include "blk.h"

struct tsr_blk_uring;

/* Called once per finished request with the used length and the virtio
 * status already written to the guest's status byte. */
typedef void tsr_blk_done_fn(void *arg, uint16_t head, uint32_t used,
			     int status);

/* Sets up a ring and depth request slots (depth: the virtqueue size, so
 * that every request the guest can have in flight fits).  -EINVAL when
 * blk has no map operation; -ENOSYS, -EPERM... when the kernel refuses
 * io_uring (the caller then serves everything with tsr_blk_handle);
 * -ENOMEM. */
int tsr_blk_uring_new(const struct tsr_blk *blk, unsigned depth,
		      tsr_blk_done_fn *done, void *done_arg,
		      struct tsr_blk_uring **ret_u);
/* Waits for every request in flight, then frees everything. */
void tsr_blk_uring_free(struct tsr_blk_uring *u);

/* An eventfd that becomes readable when completions arrive: poll it, read
 * it, then call tsr_blk_uring_reap(). */
int tsr_blk_uring_fd(const struct tsr_blk_uring *u);
/* Whether one more request can be started (a free slot, and room for its
 * completions). */
bool tsr_blk_uring_has_room(const struct tsr_blk_uring *u);
/* Requests started and not yet finished. */
unsigned tsr_blk_uring_inflight(const struct tsr_blk_uring *u);

/* Tries to start a request classified TSR_BLK_RW.  1: it is in flight
 * and finishes through done (its SQEs go to the kernel at the next
 * tsr_blk_uring_submit or reap); 0: it is not for this path (a STORE part,
 * an all-zero read, too many pieces, no room, a failed mapping): serve it
 * with tsr_blk_handle.  A read may have had zeros written to its buffers
 * when 0 is returned; tsr_blk_handle overwrites them. */
int tsr_blk_uring_start(struct tsr_blk_uring *u, const struct tsr_blk_rw *rw,
			uint16_t head);
/* Hands queued SQEs to the kernel. */
void tsr_blk_uring_submit(struct tsr_blk_uring *u);
/* Processes the completions that arrived (with wait, first blocks until
 * at least one does, unless nothing is in flight): finished requests go
 * to done; short transfers are resubmitted.  Returns the number of
 * requests finished. */
unsigned tsr_blk_uring_reap(struct tsr_blk_uring *u, bool wait);
/* Reaps until nothing is in flight. */
void tsr_blk_uring_drain(struct tsr_blk_uring *u);

#endif /* TSR_VHOST_BLK_URING_H */
