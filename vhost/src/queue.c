/* SPDX-License-Identifier: MIT */
/*
 * One thread per virtqueue: wait for a kick or a completion, take every
 * request the ring holds (while there is room), serve them, return them,
 * signal the guest.
 *
 * Asynchronous: IN and OUT whose whole range the store maps to plain
 * ranges of the volume's data file (tsr_volume_map: chunks written
 * locally, and zeros) go to the queue's io_uring (blk_uring.c): readv /
 * writev straight on the guest's buffers, up to the virtqueue size of
 * them in flight, finished in the order they complete.
 *
 * Synchronous, on this thread (tsr_blk_handle): requests with any part
 * only the store can serve (a chunk inherited from the parent layer needs
 * decompression and a digest check; a first write to a chunk copies it up
 * and changes its state), FLUSH, DISCARD, WRITE_ZEROES, GET_ID, malformed
 * or refused requests, every request of a layer (no file ranges at all),
 * and everything when the kernel refuses io_uring.
 *
 * Ordering: FLUSH, DISCARD and WRITE_ZEROES wait until every request this
 * queue has in flight finished.  So a FLUSH runs after every write the
 * guest already saw complete (on this queue; one completed on another
 * queue is already in the data file, and tsr_volume_flush always syncs
 * it), and a discard never races a read or write of the same range the
 * kernel still has.  Requests of other queues are the guest's to order,
 * as on any disk.
 *
 * The thread owns the ring and every request slot; it finishes every
 * request in flight before it returns, so the control thread may unmap
 * guest memory once it has joined it.
 */
#include "vhost_user.h"
#include "blk_uring.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

/* Signal the guest at least every this many completions of a batch. */
#define NOTIFY_BATCH 16

/* Returns a finished request to the guest (not to a broken ring: it is
 * not touched again) and counts it. */
static void complete(void *arg, uint16_t head, uint32_t used, int status)
{
	struct tsr_vu_queue *q = arg;
	struct tsr_vu_dev *dev = q->dev;

	if (!q->vr->broken)
		tsr_vring_push(q->vr, head, used);
	if (dev->counters) {
		__atomic_fetch_add(&dev->counters->requests, 1,
				   __ATOMIC_RELAXED);
		if (status != VIRTIO_BLK_S_OK)
			__atomic_fetch_add(&dev->counters->errors, 1,
					   __ATOMIC_RELAXED);
	}
}

/* Serves one request taken from the ring. */
static void serve_one(struct tsr_vu_queue *q, struct tsr_blk_uring *u)
{
	const struct tsr_blk *blk = q->dev->blk;
	struct tsr_blk_rw rw;
	enum tsr_blk_class c = tsr_blk_classify(blk, q->req, &rw);
	uint32_t used;
	int status;

	if (u && c == TSR_BLK_RW && tsr_blk_uring_start(u, &rw, q->req->head))
		return;
	if (u) {
		/* What is queued runs while this one is served. */
		tsr_blk_uring_submit(u);
		if (c == TSR_BLK_ORDERED && tsr_blk_uring_inflight(u)) {
			tsr_blk_uring_drain(u);
			/* The guest need not wait for the flush to
			 * hear of those. */
			tsr_vring_notify(q->vr);
		}
	}
	used = tsr_blk_handle(blk, q->req, q->bounce, &status);
	complete(q, q->req->head, used, status);
}

/* Takes and serves requests until the ring is empty (and the driver was
 * asked to kick), broken, or this queue has no room for more in flight;
 * returns completions and signals the guest.  u may be NULL: every
 * request is then served synchronously. */
static void serve(struct tsr_vu_queue *q, struct tsr_blk_uring *u)
{
	struct tsr_vring *vr = q->vr;
	unsigned batch = 0;

	if (u)
		(void)tsr_blk_uring_reap(u, false);
	while (!vr->broken && (!u || tsr_blk_uring_has_room(u))) {
		int r = tsr_vring_pop(vr, q->req);

		if (r < 0) {
			/* Logged once: the ring stays broken until the
			 * front-end sets it up again. */
			tsr_vu_log(q->dev, "queue %u: malformed ring (%s); "
				   "queue stopped", q->index, vr->why);
			if (q->dev->counters)
				__atomic_fetch_add(
					&q->dev->counters->broken_rings, 1,
					__ATOMIC_RELAXED);
			break;
		}
		if (r == 0) {
			if (u)
				tsr_blk_uring_submit(u);
			tsr_vring_notify(vr);
			if (tsr_vring_idle(vr))
				break;
			continue;
		}
		serve_one(q, u);
		if (++batch % NOTIFY_BATCH == 0) {
			if (u) {
				tsr_blk_uring_submit(u);
				(void)tsr_blk_uring_reap(u, false);
			}
			tsr_vring_notify(vr);
		}
	}
	if (u)
		(void)tsr_blk_uring_reap(u, false);
	tsr_vring_notify(vr);
}

static void *queue_thread(void *arg)
{
	struct tsr_vu_queue *q = arg;
	const struct tsr_blk *blk = q->dev->blk;
	struct tsr_blk_uring *u = NULL;
	struct pollfd pfd[3];
	int r;

	/* Created here: a ring set up with SINGLE_ISSUER belongs to the
	 * thread that creates it. */
	if (blk->ops->map) {
		r = tsr_blk_uring_new(blk, q->num, complete, q, &u);
		if (r < 0) {
			tsr_vu_log(q->dev, "queue %u: no io_uring (%s): "
				   "requests served one at a time", q->index,
				   strerror(-r));
			u = NULL;
		}
	}
	pfd[0] = (struct pollfd){ .fd = q->kick_fd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = q->stop_fd, .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = u ? tsr_blk_uring_fd(u) : -1,
				  .events = POLLIN };
	/* The driver may have added requests before the ring started (a
	 * reconnect after a back-end restart). */
	serve(q, u);
	for (;;) {
		eventfd_t v;

		/* Without room, kicks wait: only completions make room. */
		pfd[0].fd = !u || tsr_blk_uring_has_room(u) ? q->kick_fd : -1;
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			tsr_vu_log(q->dev, "queue %u: poll: %s", q->index,
				   strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLNVAL)) {
			tsr_vu_log(q->dev, "queue %u: kick eventfd failed",
				   q->index);
			break;
		}
		if (pfd[0].revents & POLLIN)
			(void)eventfd_read(q->kick_fd, &v);
		/* Read before reaping: a completion after this read
		 * signals again. */
		if (pfd[2].revents & POLLIN)
			(void)eventfd_read(pfd[2].fd, &v);
		serve(q, u);
	}
	/* Every request in flight finishes and is returned before the
	 * thread does. */
	tsr_blk_uring_free(u);
	tsr_vring_notify(q->vr);
	return NULL;
}

int tsr_vu_queue_start(struct tsr_vu_queue *q)
{
	struct tsr_vu_dev *dev = q->dev;
	sigset_t all, old;
	int r;

	if (!q->vr)
		q->vr = calloc(1, sizeof(*q->vr));
	if (!q->req)
		q->req = calloc(1, sizeof(*q->req));
	if (!q->bounce)
		q->bounce = malloc(TSR_BLK_BOUNCE);
	if (!q->vr || !q->req || !q->bounce)
		return -ENOMEM;
	q->vr->call_fd = q->call_fd;
	r = tsr_vring_start(q->vr, &dev->mem, q->num,
			    dev->features & (1ull << VIRTIO_RING_F_EVENT_IDX),
			    q->desc_uva, q->avail_uva, q->used_uva, q->base);
	if (r < 0) {
		tsr_vu_log(dev, "queue %u: %s", q->index, q->vr->why);
		return r;
	}
	q->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (q->stop_fd < 0)
		return -errno;
	/* Queue threads take no signals: the caller's handlers run on the
	 * caller's threads, and no store call sees EINTR. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&q->thread, NULL, queue_thread, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		close(q->stop_fd);
		q->stop_fd = -1;
		return -r;
	}
	q->running = true;
	return 0;
}

void tsr_vu_queue_stop(struct tsr_vu_queue *q)
{
	if (!q->running)
		return;
	(void)eventfd_write(q->stop_fd, 1);
	pthread_join(q->thread, NULL);
	close(q->stop_fd);
	q->stop_fd = -1;
	q->running = false;
	/* Where the ring stopped: GET_VRING_BASE reports it, a restart
	 * continues from it.  Every request taken was returned. */
	q->base = q->vr->last_avail;
	tsr_vring_notify(q->vr);
}
