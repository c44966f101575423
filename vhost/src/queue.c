/* SPDX-License-Identifier: MIT */
/*
 * One thread per virtqueue: wait for a kick, take requests from the ring,
 * serve them against the backing disk, return them, signal the guest.
 *
 * The store's I/O calls are synchronous, so a queue serves one request at
 * a time, and the guest's queue depth turns into parallelism only across
 * queues.  See vhost/README.md for what an asynchronous store API (io_uring
 * underneath) would change here.
 */
#include "vhost_user.h"

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

void tsr_vu_queue_drain(struct tsr_vu_queue *q)
{
	struct tsr_vu_dev *dev = q->dev;
	struct tsr_vring *vr = q->vr;
	unsigned batch = 0;

	if (vr->broken)
		return;
	for (;;) {
		uint32_t len;
		int status, r;

		r = tsr_vring_pop(vr, q->req);
		if (r < 0) {
			/* Logged once: the ring stays broken until the
			 * front-end sets it up again. */
			tsr_vu_log(dev, "queue %u: malformed ring (%s); queue "
				   "stopped", q->index, vr->why);
			if (dev->counters)
				__atomic_fetch_add(&dev->counters->broken_rings,
						   1, __ATOMIC_RELAXED);
			return;
		}
		if (r == 0) {
			tsr_vring_notify(vr);
			if (tsr_vring_idle(vr))
				return;
			continue;
		}
		len = tsr_blk_handle(dev->blk, q->req, q->bounce, &status);
		tsr_vring_push(vr, q->req->head, len);
		if (dev->counters) {
			__atomic_fetch_add(&dev->counters->requests, 1,
					   __ATOMIC_RELAXED);
			if (status != VIRTIO_BLK_S_OK)
				__atomic_fetch_add(&dev->counters->errors, 1,
						   __ATOMIC_RELAXED);
		}
		if (++batch % NOTIFY_BATCH == 0)
			tsr_vring_notify(vr);
	}
}

static void *queue_thread(void *arg)
{
	struct tsr_vu_queue *q = arg;
	struct pollfd pfd[2] = {
		{ .fd = q->kick_fd, .events = POLLIN },
		{ .fd = q->stop_fd, .events = POLLIN },
	};

	/* The driver may have added requests before the ring started (a
	 * reconnect after a back-end restart). */
	tsr_vu_queue_drain(q);
	for (;;) {
		eventfd_t v;

		if (poll(pfd, 2, -1) < 0) {
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
		tsr_vu_queue_drain(q);
	}
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
	 * continues from it. */
	q->base = q->vr->last_avail;
	tsr_vring_notify(q->vr);
}
