/* SPDX-License-Identifier: MIT */
/*
 * io_uring for the plain part of a queue's requests (see blk_uring.h).
 *
 * A request on this path is a slot: the guest's data buffers cut at the
 * extents the backing's map gave (FILE pieces become one readv/writev op
 * each, ZERO pieces of a read are zero-filled at once), its head, and its
 * status byte.  The request finishes when every op of its slot has moved
 * all its bytes: a short transfer is resubmitted for the rest, a read that
 * meets the end of the file reads zeros there (as the store's own pread
 * does), and a write that moves nothing or an error makes the request
 * IOERR.  Nothing is accepted short.
 *
 * Bounds: at most depth slots (the virtqueue size) and at most
 * cq_entries ops in flight, so the completion queue cannot overflow; a
 * request needing more than SLOT_EXTENTS pieces or SLOT_IOV iovecs goes
 * to the synchronous path instead.
 */
#include "blk_uring.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_blk.h>

/* Extents of one request served here (requests of up to 1 MiB cover at
 * most 17 chunks; a mix of FILE and ZERO pieces beyond this is rare). */
#define SLOT_EXTENTS 8
/* iovecs of one request's FILE pieces: a Linux guest sends at most
 * seg_max (queue size - 2) segments; each extent boundary may split one. */
#define SLOT_IOV 264

struct slot;

/* One readv/writev in flight; its CQE's user_data points here. */
struct op {
	struct slot *slot;
	struct iovec *iov;      /* into slot->iov; advanced past bytes moved */
	unsigned niov;
	int fd;
	uint64_t file_off;
	uint64_t left;          /* bytes still to move: the sum of iov[] */
};

struct slot {
	bool write;
	uint16_t head;
	uint8_t *status;        /* guest memory */
	uint32_t used;          /* used length when every op succeeded */
	unsigned pending;       /* ops not finished */
	int err;                /* first error of an op, or 0 */
	struct op ops[SLOT_EXTENTS];
	struct iovec iov[SLOT_IOV];
};

struct tsr_blk_uring {
	const struct tsr_blk *blk;
	struct io_uring ring;
	int efd;                /* registered: signalled per completion */
	tsr_blk_done_fn *done;
	void *done_arg;
	unsigned nslots;
	struct slot *slots;
	unsigned *free_slots;   /* stack of indexes into slots */
	unsigned nfree;
	unsigned ops_inflight;  /* SQEs queued or submitted, CQE not seen */
	unsigned ops_max;       /* the completion queue's size */
	bool to_submit;         /* SQEs queued since the last submit */
};

/* ---- guest buffers ---------------------------------------------------- */

/* A position in a request's data iovecs.  The classifier checked that the
 * data fit in them; the checks here only keep a bug from walking off. */
struct cursor {
	const struct iovec *iov;
	unsigned n, i;
	size_t at;              /* bytes of iov[i] already passed */
};

/* The next piece of at most len bytes under the cursor, at *ret_p; moves
 * over it.  0 when the iovecs are used up. */
static size_t cur_step(struct cursor *c, size_t len, uint8_t **ret_p)
{
	size_t take;

	if (c->i >= c->n)
		return 0;
	take = c->iov[c->i].iov_len - c->at;
	if (take > len)
		take = len;
	*ret_p = (uint8_t *)c->iov[c->i].iov_base + c->at;
	c->at += take;
	if (c->at == c->iov[c->i].iov_len) {
		c->i++;
		c->at = 0;
	}
	return take;
}

/* Moves over len bytes; with out, appends iovecs for them at
 * out[*count..max) (false when that is too few). */
static bool cur_take(struct cursor *c, size_t len, struct iovec *out,
		     unsigned max, unsigned *count)
{
	while (len > 0) {
		uint8_t *p;
		size_t take;

		if (c->i >= c->n)
			return false;
		take = cur_step(c, len, &p);
		if (take > 0 && out) {
			if (*count >= max)
				return false;
			out[(*count)++] = (struct iovec){ .iov_base = p, .iov_len = take };
		}
		len -= take;
	}
	return true;
}

/* Zero-fills the next len bytes. */
static bool cur_zero(struct cursor *c, size_t len)
{
	while (len > 0) {
		uint8_t *p;
		size_t take;

		if (c->i >= c->n)
			return false;
		take = cur_step(c, len, &p);
		memset(p, 0, take);
		len -= take;
	}
	return true;
}

/* ---- setup -------------------------------------------------------------- */

int tsr_blk_uring_new(const struct tsr_blk *blk, unsigned depth,
		      tsr_blk_done_fn *done, void *done_arg,
		      struct tsr_blk_uring **ret_u)
{
	struct io_uring_params p;
	struct tsr_blk_uring *u;
	unsigned entries = depth < SLOT_EXTENTS ? SLOT_EXTENTS : depth;
	int r;

	if (!blk->ops->map || depth == 0)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->efd = -1;
	u->slots = calloc(depth, sizeof(*u->slots));
	u->free_slots = calloc(depth, sizeof(*u->free_slots));
	if (!u->slots || !u->free_slots) {
		r = -ENOMEM;
		goto fail_alloc;
	}
	/* Only this queue's thread submits, and it reaps on its own
	 * schedule: tell the kernel so (no IPIs to run completions).
	 * Kernels before 6.0 refuse these flags: then a plain ring. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
	r = io_uring_queue_init_params(entries, &u->ring, &p);
	if (r == -EINVAL) {
		memset(&p, 0, sizeof(p));
		r = io_uring_queue_init_params(entries, &u->ring, &p);
	}
	if (r < 0)
		goto fail_alloc;
	u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->efd < 0) {
		r = -errno;
		goto fail_ring;
	}
	r = io_uring_register_eventfd(&u->ring, u->efd);
	if (r < 0)
		goto fail_ring;
	u->blk = blk;
	u->done = done;
	u->done_arg = done_arg;
	u->nslots = depth;
	for (unsigned i = 0; i < depth; i++)
		u->free_slots[i] = depth - 1 - i;
	u->nfree = depth;
	u->ops_max = p.cq_entries;
	*ret_u = u;
	return 0;
fail_ring:
	if (u->efd >= 0)
		close(u->efd);
	io_uring_queue_exit(&u->ring);
fail_alloc:
	free(u->slots);
	free(u->free_slots);
	free(u);
	return r;
}

void tsr_blk_uring_free(struct tsr_blk_uring *u)
{
	if (!u)
		return;
	/* The kernel may still be writing into guest memory: no return
	 * (and no unmapping by the caller) before every op finished. */
	tsr_blk_uring_drain(u);
	io_uring_queue_exit(&u->ring);
	close(u->efd);
	free(u->slots);
	free(u->free_slots);
	free(u);
}

int tsr_blk_uring_fd(const struct tsr_blk_uring *u)
{
	return u->efd;
}

bool tsr_blk_uring_has_room(const struct tsr_blk_uring *u)
{
	return u->nfree > 0 && u->ops_max - u->ops_inflight >= SLOT_EXTENTS;
}

unsigned tsr_blk_uring_inflight(const struct tsr_blk_uring *u)
{
	return u->nslots - u->nfree;
}

/* ---- submission ---------------------------------------------------------- */

void tsr_blk_uring_submit(struct tsr_blk_uring *u)
{
	if (!u->to_submit)
		return;
	/* A failed submit leaves the SQEs queued: the next one retries. */
	if (io_uring_submit(&u->ring) >= 0)
		u->to_submit = false;
}

/* An SQE, submitting what is queued when the submission queue is full.
 * NULL only if the kernel takes none of them. */
static struct io_uring_sqe *get_sqe(struct tsr_blk_uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		(void)io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

/* Queues the transfer of what op has left.  false without an SQE. */
static bool queue_op(struct tsr_blk_uring *u, struct op *op)
{
	struct io_uring_sqe *sqe = get_sqe(u);

	if (!sqe)
		return false;
	if (op->slot->write)
		io_uring_prep_writev(sqe, op->fd, op->iov, op->niov,
				     op->file_off);
	else
		io_uring_prep_readv(sqe, op->fd, op->iov, op->niov,
				    op->file_off);
	io_uring_sqe_set_data(sqe, op);
	u->to_submit = true;
	return true;
}

int tsr_blk_uring_start(struct tsr_blk_uring *u, const struct tsr_blk_rw *rw,
			uint16_t head)
{
	struct tsr_volume_extent ext[SLOT_EXTENTS];
	struct cursor cur = { .iov = rw->iov, .n = rw->n_iov };
	struct slot *s;
	uint64_t covered = 0;
	unsigned n, nops = 0, niov = 0;

	if (!tsr_blk_uring_has_room(u))
		return 0;
	if (u->blk->ops->map(u->blk->ctx, rw->off, rw->len, rw->write, ext,
			     SLOT_EXTENTS, &n) < 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		if (ext[i].kind == TSR_EXTENT_STORE ||
		    (ext[i].kind == TSR_EXTENT_ZERO && rw->write) ||
		    (ext[i].kind == TSR_EXTENT_FILE && ext[i].fd < 0))
			return 0;
		nops += ext[i].kind == TSR_EXTENT_FILE;
		covered += ext[i].len;
	}
	/* Not all of it mapped (more extents than a slot holds), or nothing
	 * to read from a file: the synchronous path is as good. */
	if (covered != rw->len || nops == 0)
		return 0;

	/* Fill the next free slot; it is taken only once all is ready. */
	s = &u->slots[u->free_slots[u->nfree - 1]];
	if (!cur_take(&cur, rw->skip, NULL, 0, NULL))
		return 0;
	nops = 0;
	for (unsigned i = 0; i < n; i++) {
		struct op *op;
		unsigned first = niov;

		if (ext[i].kind == TSR_EXTENT_ZERO) {
			if (!cur_zero(&cur, ext[i].len))
				return 0;
			continue;
		}
		op = &s->ops[nops++];
		if (!cur_take(&cur, ext[i].len, s->iov, SLOT_IOV, &niov))
			return 0;
		*op = (struct op){
			.slot = s, .iov = s->iov + first, .niov = niov - first,
			.fd = ext[i].fd, .file_off = ext[i].file_off,
			.left = ext[i].len,
		};
	}
	/* Every op of the request gets its SQE, or none does. */
	if (io_uring_sq_space_left(&u->ring) < nops) {
		tsr_blk_uring_submit(u);
		if (io_uring_sq_space_left(&u->ring) < nops)
			return 0;
	}
	s->write = rw->write;
	s->head = head;
	s->status = rw->status;
	s->used = rw->used;
	s->pending = nops;
	s->err = 0;
	u->nfree--;
	for (unsigned i = 0; i < nops; i++)
		(void)queue_op(u, &s->ops[i]);  /* the space was checked */
	u->ops_inflight += nops;
	return 1;
}

/* ---- completion ---------------------------------------------------------- */

static void finish_slot(struct tsr_blk_uring *u, struct slot *s)
{
	int status = s->err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;

	*s->status = (uint8_t)status;
	u->free_slots[u->nfree++] = (unsigned)(s - u->slots);
	/* The used length counts the data only when all of it is there. */
	u->done(u->done_arg, s->head, s->err ? 1 : s->used, status);
}

/* Moves op past n bytes it transferred. */
static void advance(struct op *op, uint64_t n)
{
	op->file_off += n;
	op->left -= n;
	while (n > 0) {
		if (n >= op->iov->iov_len) {
			n -= op->iov->iov_len;
			op->iov++;
			op->niov--;
		} else {
			op->iov->iov_base = (uint8_t *)op->iov->iov_base + n;
			op->iov->iov_len -= n;
			n = 0;
		}
	}
}

/* Handles the CQE of op.  Returns 1 when it finished its request. */
static unsigned op_result(struct tsr_blk_uring *u, struct op *op, int res)
{
	struct slot *s = op->slot;

	if (res == -EAGAIN || res == -EINTR) {
		if (queue_op(u, op))
			return 0;
		res = -EIO;
	} else if (res > 0 && (uint64_t)res < op->left) {
		advance(op, (uint64_t)res);
		if (queue_op(u, op))
			return 0;
		res = -EIO;
	} else if (res == 0 && op->left > 0) {
		if (s->write) {
			res = -EIO;   /* a write that moves nothing */
		} else {
			/* End of file: the rest reads as zeros. */
			for (unsigned i = 0; i < op->niov; i++)
				memset(op->iov[i].iov_base, 0,
				       op->iov[i].iov_len);
		}
	}
	if (res < 0 && !s->err)
		s->err = res;
	u->ops_inflight--;
	if (--s->pending > 0)
		return 0;
	finish_slot(u, s);
	return 1;
}

unsigned tsr_blk_uring_reap(struct tsr_blk_uring *u, bool wait)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, finished = 0;

	tsr_blk_uring_submit(u);
	if (wait && u->ops_inflight > 0) {
		int r;

		do
			r = io_uring_wait_cqe(&u->ring, &cqe);
		while (r == -EINTR);
	}
	io_uring_for_each_cqe(&u->ring, head, cqe) {
		finished += op_result(u, io_uring_cqe_get_data(cqe), cqe->res);
		seen++;
	}
	io_uring_cq_advance(&u->ring, seen);
	/* Resubmissions of short transfers. */
	tsr_blk_uring_submit(u);
	return finished;
}

void tsr_blk_uring_drain(struct tsr_blk_uring *u)
{
	while (u->ops_inflight > 0)
		(void)tsr_blk_uring_reap(u, true);
}
