/* SPDX-License-Identifier: MIT */
/*
 * One thread per virtqueue: wait for a kick or a completion, take every
 * request the ring holds (while there is room), serve them, return them,
 * signal the guest.  This thread alone touches the ring.
 *
 * Asynchronous, io_uring: IN and OUT whose whole range the store maps to
 * plain ranges of the volume's data file (tsr_volume_map: chunks written
 * locally, and zeros) go to the queue's io_uring (blk_uring.c): readv /
 * writev straight on the guest's buffers, up to the virtqueue size of
 * them in flight, finished in the order they complete.
 *
 * Asynchronous, worker pool: the other IN and OUT (a part only the store
 * can serve: a chunk inherited from the parent layer needs decompression
 * and a digest check, a first write to a chunk copies it up and changes
 * its state; every request of a layer; everything when the kernel refuses
 * io_uring) run tsr_blk_handle on the queue's store workers (blk_pool.c,
 * store_threads of them), several at a time; the library's stripe locks
 * order two of them in the same chunk.  Jobs are queued while the ring is
 * walked and started when it is empty (or every NOTIFY_BATCH requests):
 * a lone one, with nothing else in flight, runs on this thread at once,
 * so a queue-depth-1 guest pays no thread hand-off.  Their completions
 * come back through the pool's eventfd, polled beside the kick and the
 * io_uring's.
 *
 * Synchronous, on this thread: FLUSH, DISCARD, WRITE_ZEROES, GET_ID,
 * malformed or refused requests, a request too big for a pool slot, and
 * every request when store_threads is 0 or the pool cannot start.
 *
 * Ordering: FLUSH, DISCARD and WRITE_ZEROES wait until every request this
 * queue has in flight finished, in the io_uring and in the pool.  So a
 * FLUSH runs after every write the guest already saw complete (on this
 * queue; one completed on another queue is already in the data file, and
 * tsr_volume_flush always syncs it), and a discard never races a read or
 * write of the same range still in progress.  Requests of other queues
 * are the guest's to order, as on any disk.
 *
 * The thread owns the ring and every request slot; it finishes every
 * request in flight (io_uring and pool) before it returns, so the control
 * thread may unmap guest memory once it has joined it.
 */
#include "vhost_user.h"
#include "blk_pool.h"
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

_Static_assert(TSR_VHOST_MAX_STORE_THREADS <= TSR_BLK_POOL_MAX_THREADS,
	       "every store_threads the server accepts fits a pool");

/* Signal the guest at least every this many completions of a batch. */
#define NOTIFY_BATCH 16

/* The asynchronous engines of a running queue; either may be NULL. */
struct engines {
	struct tsr_blk_uring *u;
	struct tsr_blk_pool *p;
};

/* Returns a finished request to the guest (not to a broken ring: it is
 * not touched again) and counts it.  Runs on the queue thread only. */
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

static bool has_room(const struct engines *e)
{
	return (!e->u || tsr_blk_uring_has_room(e->u)) &&
	       (!e->p || tsr_blk_pool_has_room(e->p));
}

/* Hands what is queued to the kernel and to the workers.  A lone pool job
 * may run right here when the io_uring has nothing in flight either
 * (inline: then its completion would not wait behind it). */
static void start_queued(struct tsr_vu_queue *q, const struct engines *e,
			 bool inline_ok)
{
	if (e->u)
		tsr_blk_uring_submit(e->u);
	if (e->p)
		tsr_blk_pool_kick(e->p, inline_ok && (!e->u ||
			tsr_blk_uring_inflight(e->u) == 0) ? q->bounce : NULL);
}

static void reap(const struct engines *e)
{
	if (e->u)
		(void)tsr_blk_uring_reap(e->u, false);
	if (e->p)
		(void)tsr_blk_pool_reap(e->p, false);
}

/* Serves one request taken from the ring. */
static void serve_one(struct tsr_vu_queue *q, const struct engines *e)
{
	const struct tsr_blk *blk = q->dev->blk;
	struct tsr_blk_rw rw;
	enum tsr_blk_class c = tsr_blk_classify(blk, q->req, &rw);
	uint32_t used;
	int status;

	if (c == TSR_BLK_RW) {
		if (e->u && tsr_blk_uring_start(e->u, &rw, q->req->head))
			return;
		if (e->p && tsr_blk_pool_add(e->p, q->req))
			return;
	}
	/* What is queued runs while this one is served. */
	start_queued(q, e, false);
	if (c == TSR_BLK_ORDERED &&
	    ((e->u && tsr_blk_uring_inflight(e->u)) ||
	     (e->p && tsr_blk_pool_inflight(e->p)))) {
		if (e->u)
			tsr_blk_uring_drain(e->u);
		if (e->p)
			tsr_blk_pool_drain(e->p);
		/* The guest need not wait for the flush to hear of
		 * those. */
		tsr_vring_notify(q->vr);
	}
	used = tsr_blk_handle(blk, q->req, q->bounce, &status);
	complete(q, q->req->head, used, status);
}

/* Whether the device's guest memory went away under its mapping (the
 * SIGBUS handler replaced it with zero pages: guest_fault.h).  The ring is
 * then broken: nothing more is read from it or returned to it (requests
 * in flight finish into the zero pages); the server resets the device. */
static bool memory_lost(struct tsr_vu_queue *q)
{
	if (!__atomic_load_n(&q->dev->mem_faulted, __ATOMIC_ACQUIRE))
		return false;
	q->vr->broken = true;
	q->vr->why = "guest memory went away (the front-end shrank its "
		     "memory file)";
	return true;
}

/* Takes and serves requests until the ring is empty (and the driver was
 * asked to kick), broken, or this queue has no room for more in flight;
 * returns completions and signals the guest.  Without engines every
 * request is served synchronously. */
static void serve(struct tsr_vu_queue *q, const struct engines *e)
{
	struct tsr_vring *vr = q->vr;
	unsigned batch = 0;

	if (memory_lost(q))
		return;
	reap(e);
	while (!vr->broken && !memory_lost(q) && has_room(e)) {
		int r = tsr_vring_pop(vr, q->req);

		if (r < 0 && memory_lost(q))
			break;  /* the ring read zero pages: not its fault */
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
			start_queued(q, e, true);
			tsr_vring_notify(vr);
			if (tsr_vring_idle(vr))
				break;
			continue;
		}
		serve_one(q, e);
		if (++batch % NOTIFY_BATCH == 0) {
			start_queued(q, e, false);
			reap(e);
			tsr_vring_notify(vr);
		}
	}
	/* Out of room or broken: what was queued must still start. */
	start_queued(q, e, false);
	reap(e);
	tsr_vring_notify(vr);
}

static void *queue_thread(void *arg)
{
	struct tsr_vu_queue *q = arg;
	const struct tsr_blk *blk = q->dev->blk;
	struct engines e = { NULL, NULL };
	struct pollfd pfd[4];
	int r;

	/* Created here: a ring set up with SINGLE_ISSUER belongs to the
	 * thread that creates it. */
	if (blk->ops->map) {
		r = tsr_blk_uring_new(blk, q->num, complete, q, &e.u);
		if (r < 0) {
			tsr_vu_log(q->dev, "queue %u: no io_uring (%s): "
				   "plain I/O goes through the store", q->index,
				   strerror(-r));
			e.u = NULL;
		}
	}
	if (q->dev->store_threads > 0) {
		r = tsr_blk_pool_new(blk, q->dev->store_threads, q->num,
				     complete, q, &e.p);
		if (r < 0) {
			tsr_vu_log(q->dev, "queue %u: no store workers (%s): "
				   "store requests served one at a time",
				   q->index, strerror(-r));
			e.p = NULL;
		}
	}
	pfd[0] = (struct pollfd){ .fd = q->kick_fd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = q->stop_fd, .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = e.u ? tsr_blk_uring_fd(e.u) : -1,
				  .events = POLLIN };
	pfd[3] = (struct pollfd){ .fd = e.p ? tsr_blk_pool_fd(e.p) : -1,
				  .events = POLLIN };
	/* The driver may have added requests before the ring started (a
	 * reconnect after a back-end restart). */
	serve(q, &e);
	for (;;) {
		eventfd_t v;

		/* Without room, kicks wait: only completions make room. */
		pfd[0].fd = has_room(&e) ? q->kick_fd : -1;
		if (poll(pfd, 4, -1) < 0) {
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
		if (pfd[3].revents & POLLIN)
			(void)eventfd_read(pfd[3].fd, &v);
		serve(q, &e);
	}
	/* Every request in flight finishes and is returned before the
	 * thread does. */
	tsr_blk_pool_free(e.p);
	tsr_blk_uring_free(e.u);
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
	 * caller's threads, and no store call sees EINTR.  But SIGBUS: a
	 * fault in guest memory must reach its handler (guest_fault.h; a
	 * blocked fault signal kills the process). */
	sigfillset(&all);
	sigdelset(&all, SIGBUS);
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
