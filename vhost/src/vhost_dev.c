/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user device: what each front-end message does to it.
 *
 * Runs on the connection's thread.  Queue threads (queue.c) only run on a
 * fully set-up ring; before a message changes anything a running queue
 * uses (the memory table, a ring's size, addresses, base, eventfds,
 * features), that queue's thread is stopped and joined, and started again
 * afterwards if the ring should run.  So no lock protects the queue state:
 * it has one owner at a time, the control thread or the queue thread.
 */
#include "vhost_user.h"
#include "guest_fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#define OFFERED_PROTOCOL_FEATURES \
	((1ull << VU_PF_MQ) | (1ull << VU_PF_REPLY_ACK) | (1ull << VU_PF_CONFIG))

/* Queue size assumed for seg_max before any ring is set up: QEMU's
 * default for vhost-user-blk. */
#define CONFIG_QUEUE_SIZE 128

static uint64_t offered_features(const struct tsr_vu_dev *dev)
{
	return tsr_blk_features(dev->blk, dev->nq) |
	       (1ull << VU_F_PROTOCOL_FEATURES);
}

void tsr_vu_dev_init(struct tsr_vu_dev *dev, const struct tsr_blk *blk,
		     unsigned nq)
{
	dev->blk = blk;
	dev->nq = nq;
	dev->features = 0;
	dev->protocol_features = 0;
	dev->store_threads = 0;
	dev->mem_faulted = 0;
	dev->fault_fd = -1;
	memset(&dev->mem, 0, sizeof(dev->mem));
	for (unsigned i = 0; i < TSR_VHOST_MAX_QUEUES; i++) {
		struct tsr_vu_queue *q = &dev->q[i];

		q->dev = dev;
		q->index = i;
		q->num = 0;
		q->base = 0;
		q->addr_set = false;
		q->kick_fd = q->call_fd = q->err_fd = -1;
		q->enabled = false;
		q->running = false;
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Whether a stopped ring has everything it needs to run. */
static bool should_run(const struct tsr_vu_dev *dev,
		       const struct tsr_vu_queue *q)
{
	return !dev->no_threads && dev->mem.n > 0 && q->num > 0 &&
	       q->addr_set && q->kick_fd >= 0 && q->enabled;
}

static void maybe_start(struct tsr_vu_queue *q)
{
	int r;

	if (q->running || !should_run(q->dev, q))
		return;
	r = tsr_vu_queue_start(q);
	if (r < 0)
		tsr_vu_log(q->dev, "queue %u not started: %s", q->index,
			   strerror(-r));
}

void tsr_vu_dev_reset(struct tsr_vu_dev *dev)
{
	for (unsigned i = 0; i < TSR_VHOST_MAX_QUEUES; i++) {
		struct tsr_vu_queue *q = &dev->q[i];

		tsr_vu_queue_stop(q);
		close_fd(&q->kick_fd);
		close_fd(&q->call_fd);
		close_fd(&q->err_fd);
		q->num = 0;
		q->base = 0;
		q->addr_set = false;
		q->enabled = false;
	}
	tsr_vu_mem_clear(&dev->mem);
	__atomic_store_n(&dev->mem_faulted, 0, __ATOMIC_RELAXED);
	dev->features = 0;
	dev->protocol_features = 0;
}

void tsr_vu_dev_free(struct tsr_vu_dev *dev)
{
	for (unsigned i = 0; i < TSR_VHOST_MAX_QUEUES; i++) {
		free(dev->q[i].vr);
		free(dev->q[i].req);
		free(dev->q[i].bounce);
		dev->q[i].vr = NULL;
		dev->q[i].req = NULL;
		dev->q[i].bounce = NULL;
	}
}

/* ---- replies ------------------------------------------------------------ */

static int reply(struct tsr_vu_dev *dev, const struct tsr_vu_msg *msg,
		 const void *payload, uint32_t size)
{
	uint8_t buf[VU_HDR_SIZE + VU_HDR_SIZE + VU_MAX_CONFIG];
	uint32_t flags = VU_VERSION | VU_FLAG_REPLY;

	if (size > sizeof(buf) - VU_HDR_SIZE)
		return -EINVAL;
	memcpy(buf, &msg->request, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	memcpy(buf + VU_HDR_SIZE, payload, size);
	return dev->send(dev->send_arg, buf, VU_HDR_SIZE + size);
}

static int reply_u64(struct tsr_vu_dev *dev, const struct tsr_vu_msg *msg,
		     uint64_t v)
{
	return reply(dev, msg, &v, sizeof(v));
}

/* ---- memory table ------------------------------------------------------- */

static void stop_all(struct tsr_vu_dev *dev)
{
	for (unsigned i = 0; i < dev->nq; i++)
		tsr_vu_queue_stop(&dev->q[i]);
}

static void start_all(struct tsr_vu_dev *dev)
{
	for (unsigned i = 0; i < dev->nq; i++)
		maybe_start(&dev->q[i]);
}

/* Maps one region from fd and watches it for faults (a front-end may
 * shrink the file later: guest_fault.h); takes fd. */
static int map_region(struct tsr_vu_dev *dev, const struct vu_region *w,
		      int fd, struct tsr_vu_region *ret)
{
	struct stat st;
	uint64_t map_len;
	void *p;
	int r = 0;

	if (w->size == 0 || w->gpa > UINT64_MAX - w->size ||
	    w->uva > UINT64_MAX - w->size ||
	    w->mmap_offset > UINT64_MAX - w->size) {
		r = -EINVAL;
		goto out;
	}
	map_len = w->mmap_offset + w->size;
	if (map_len > SIZE_MAX) {
		r = -EINVAL;
		goto out;
	}
	/* A mapping past the end of the file would raise SIGBUS on the
	 * first access: check the size first where the file has one. */
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < map_len) {
		r = -EINVAL;
		goto out;
	}
	p = mmap(NULL, (size_t)map_len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	ret->gpa = w->gpa;
	ret->size = w->size;
	ret->uva = w->uva;
	ret->host = (uint8_t *)p + w->mmap_offset;
	ret->map_base = p;
	ret->map_len = (size_t)map_len;
	/* Even a sealed memfd is watched: one slot is cheap, and the
	 * handler then covers hugetlbfs and tmpfs files alike. */
	r = tsr_guest_fault_watch(p, (size_t)map_len, &dev->mem_faulted,
				  dev->fault_fd);
	if (r < 0) {
		munmap(p, (size_t)map_len);
		ret->map_base = NULL;
		goto out;
	}
	ret->fault_watch = r;
	r = 0;
out:
	close(fd);
	return r;
}

static int set_mem_table(struct tsr_vu_dev *dev, struct tsr_vu_msg *msg)
{
	struct tsr_vu_mem mem;
	int r = 0;

	memset(&mem, 0, sizeof(mem));
	for (unsigned i = 0; i < msg->p.mem.nregions; i++) {
		int fd = tsr_vu_msg_take_fd(msg, i);

		if (fd < 0) {
			r = -EINVAL;
			break;
		}
		r = map_region(dev, &msg->p.mem.regions[i], fd, &mem.r[i]);
		if (r < 0)
			break;
		mem.n = i + 1;
	}
	if (r < 0) {
		tsr_vu_mem_clear(&mem);
		return r;
	}
	stop_all(dev);
	tsr_vu_mem_clear(&dev->mem);
	dev->mem = mem;
	start_all(dev);
	return 0;
}

/* ---- rings -------------------------------------------------------------- */

/* The queue a message names, stopped; NULL for a bad index. */
static struct tsr_vu_queue *stopped_queue(struct tsr_vu_dev *dev, uint32_t idx)
{
	if (idx >= dev->nq)
		return NULL;
	tsr_vu_queue_stop(&dev->q[idx]);
	return &dev->q[idx];
}

/* SET_VRING_KICK / CALL / ERR: u64 = index | NOFD flag; the descriptor
 * comes with the message unless NOFD is set. */
static int set_vring_fd(struct tsr_vu_dev *dev, struct tsr_vu_msg *msg)
{
	uint64_t v = msg->p.u64;
	bool nofd = v & VU_VRING_NOFD;
	struct tsr_vu_queue *q;
	int fd, *slot;

	if (v & ~(uint64_t)(VU_VRING_IDX_MASK | VU_VRING_NOFD))
		return -EINVAL;
	if (nofd ? msg->nfds != 0 : msg->nfds != 1)
		return -EINVAL;
	q = stopped_queue(dev, v & VU_VRING_IDX_MASK);
	if (!q)
		return -EINVAL;
	fd = nofd ? -1 : tsr_vu_msg_take_fd(msg, 0);
	slot = msg->request == VU_SET_VRING_KICK ? &q->kick_fd :
	       msg->request == VU_SET_VRING_CALL ? &q->call_fd : &q->err_fd;
	close_fd(slot);
	*slot = fd;
	if (msg->request == VU_SET_VRING_KICK && nofd)
		tsr_vu_log(dev, "queue %u: polling mode (no kick eventfd) is "
			   "not supported", q->index);
	/* Without VHOST_USER_F_PROTOCOL_FEATURES, rings start enabled. */
	if (msg->request == VU_SET_VRING_KICK &&
	    !(dev->features & (1ull << VU_F_PROTOCOL_FEATURES)))
		q->enabled = true;
	maybe_start(q);
	return 0;
}

static int set_vring_addr(struct tsr_vu_dev *dev, struct tsr_vu_msg *msg)
{
	struct tsr_vu_queue *q = stopped_queue(dev, msg->p.addr.index);

	if (!q)
		return -EINVAL;
	q->desc_uva = msg->p.addr.desc;
	q->avail_uva = msg->p.addr.avail;
	q->used_uva = msg->p.addr.used;
	q->addr_set = true;
	maybe_start(q);
	return 0;
}

static int set_vring_state(struct tsr_vu_dev *dev, struct tsr_vu_msg *msg)
{
	uint32_t num = msg->p.state.num;
	struct tsr_vu_queue *q = stopped_queue(dev, msg->p.state.index);

	if (!q)
		return -EINVAL;
	switch (msg->request) {
	case VU_SET_VRING_NUM:
		if (num == 0 || num > TSR_VU_MAX_QUEUE_SIZE ||
		    (num & (num - 1))) {
			maybe_start(q);
			return -EINVAL;
		}
		q->num = (uint16_t)num;
		break;
	case VU_SET_VRING_BASE:
		if (num > UINT16_MAX) {
			maybe_start(q);
			return -EINVAL;
		}
		q->base = (uint16_t)num;
		break;
	case VU_SET_VRING_ENABLE:
		if (num > 1) {
			maybe_start(q);
			return -EINVAL;
		}
		q->enabled = num == 1;
		break;
	}
	maybe_start(q);
	return 0;
}

/* GET_VRING_BASE stops the ring (until the next SET_VRING_KICK) and says
 * where it stopped. */
static int get_vring_base(struct tsr_vu_dev *dev, struct tsr_vu_msg *msg)
{
	struct tsr_vu_queue *q = stopped_queue(dev, msg->p.state.index);
	struct {
		uint32_t index, num;
	} st;

	if (!q)
		return -EINVAL;
	close_fd(&q->kick_fd);
	st.index = q->index;
	st.num = q->base;
	return reply(dev, msg, &st, sizeof(st));
}

/* ---- features and config -------------------------------------------------- */

static int set_features(struct tsr_vu_dev *dev, uint64_t f)
{
	if (f & ~offered_features(dev))
		return -EINVAL;
	stop_all(dev);
	dev->features = f;
	start_all(dev);
	return 0;
}

static int get_config(struct tsr_vu_dev *dev, const struct tsr_vu_msg *msg)
{
	struct {
		uint32_t offset, size, flags;
		uint8_t payload[VU_MAX_CONFIG];
	} c;
	uint16_t qs = dev->q[0].num ? dev->q[0].num : CONFIG_QUEUE_SIZE;

	c.offset = msg->p.config.offset;
	c.size = msg->p.config.size;
	c.flags = msg->p.config.flags;
	/* A zero-size payload tells the front-end the request failed. */
	if (tsr_blk_config(dev->blk, dev->nq, qs, c.offset, c.payload,
			   c.size) < 0)
		return reply(dev, msg, &c, 0);
	return reply(dev, msg, &c, 12 + c.size);
}

/* ---- dispatch ------------------------------------------------------------- */

int tsr_vu_dev_handle(struct tsr_vu_dev *dev, struct tsr_vu_msg *msg)
{
	bool acked = false;  /* the request has a reply of its own */
	int r;

	r = tsr_vu_msg_check(msg);
	if (r < 0) {
		tsr_vu_log(dev, "malformed message %u (payload %u bytes, %u "
			   "descriptors)", msg->request, msg->size, msg->nfds);
		tsr_vu_msg_close_fds(msg);
		return r;
	}
	switch (msg->request) {
	case VU_GET_FEATURES:
		r = reply_u64(dev, msg, offered_features(dev));
		acked = true;
		break;
	case VU_SET_FEATURES:
		r = set_features(dev, msg->p.u64);
		break;
	case VU_GET_PROTOCOL_FEATURES:
		r = reply_u64(dev, msg, OFFERED_PROTOCOL_FEATURES);
		acked = true;
		break;
	case VU_SET_PROTOCOL_FEATURES:
		if (msg->p.u64 & ~OFFERED_PROTOCOL_FEATURES)
			r = -EINVAL;
		else
			dev->protocol_features = msg->p.u64;
		break;
	case VU_SET_OWNER:
		r = 0;
		break;
	case VU_RESET_OWNER:
		/* Deprecated; the spec suggests disabling the rings. */
		stop_all(dev);
		for (unsigned i = 0; i < dev->nq; i++)
			dev->q[i].enabled = false;
		r = 0;
		break;
	case VU_GET_QUEUE_NUM:
		r = reply_u64(dev, msg, dev->nq);
		acked = true;
		break;
	case VU_SET_MEM_TABLE:
		r = set_mem_table(dev, msg);
		break;
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
		r = set_vring_state(dev, msg);
		break;
	case VU_SET_VRING_ADDR:
		r = set_vring_addr(dev, msg);
		break;
	case VU_GET_VRING_BASE:
		r = get_vring_base(dev, msg);
		acked = true;
		break;
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		r = set_vring_fd(dev, msg);
		break;
	case VU_GET_CONFIG:
		r = get_config(dev, msg);
		acked = true;
		break;
	case VU_SET_CONFIG:
		/* No writable field is offered (no CONFIG_WCE). */
		r = 0;
		break;
	default:
		tsr_vu_log(dev, "unsupported message %u ignored", msg->request);
		r = -EOPNOTSUPP;
		break;
	}
	tsr_vu_msg_close_fds(msg);
	if (acked)
		return r;  /* a failed reply ends the connection */
	if ((msg->flags & VU_FLAG_NEED_REPLY) &&
	    (dev->protocol_features & (1ull << VU_PF_REPLY_ACK))) {
		/* REPLY_ACK: the front-end learns the result and decides. */
		if (r < 0 && r != -EOPNOTSUPP)
			tsr_vu_log(dev, "message %u failed: %s", msg->request,
				   strerror(-r));
		return reply_u64(dev, msg, r < 0 ? 1 : 0);
	}
	if (r == -EOPNOTSUPP)
		return 0;
	if (r < 0)
		tsr_vu_log(dev, "message %u failed: %s", msg->request,
			   strerror(-r));
	return r;
}
