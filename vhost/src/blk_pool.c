/* SPDX-License-Identifier: MIT */
/*
 * Worker threads for the store part of a queue's requests (blk_pool.h).
 *
 * A job is a copy of a request's iovecs (they point into guest memory)
 * in a slot allocated at queue start.  The queue thread queues jobs in a
 * FIFO (todo); a worker takes one, runs tsr_blk_handle with its own
 * bounce buffer (which writes the status byte), and appends it to the
 * finished list (fin).  The queue thread takes that list and returns the
 * requests to the used ring, which no worker touches.
 *
 * Wake-ups: the eventfd is written only when fin goes from empty to not
 * empty; the queue thread reads the eventfd before it takes fin, so a job
 * finished after the take signals again, and one finished between the
 * read and the take is in the take.  Idle workers are woken by
 * tsr_blk_pool_kick only (a busy worker takes the next job itself), so
 * the queue thread can still run a lone job inline.
 *
 * The lock is never held while guest memory is touched (jobs run, and
 * requests go back to the used ring, outside it): a fault there is
 * handled by guest_fault.c, which takes no lock either.
 *
 * Invariants (under lock): every slot is in exactly one of free_slots
 * (queue thread's), todo, running on a worker (counted in busy), or fin.
 * The queue thread's in-flight count, depth - nfree, is todo + busy + fin.
 */
#include "blk_pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* iovecs of one job: a Linux guest sends at most seg_max (queue size - 2)
 * data segments plus header and status; an iovec splits where the guest
 * memory spans regions.  A bigger request is served synchronously. */
#define JOB_IOV 264

struct job {
	uint16_t head;
	unsigned n_out, n_in;
	uint32_t used;             /* tsr_blk_handle's results */
	int status;
	struct iovec iov[JOB_IOV];
};

struct worker {
	struct tsr_blk_pool *p;
	pthread_t thread;
	void *bounce;              /* TSR_BLK_BOUNCE bytes, this worker's */
};

struct tsr_blk_pool {
	const struct tsr_blk *blk;
	tsr_blk_done_fn *done;
	void *done_arg;
	unsigned depth;
	struct job *jobs;
	int efd;
	/* The queue thread's. */
	unsigned *free_slots;      /* stack of indexes into jobs */
	unsigned nfree;
	unsigned *taken;           /* scratch: fin copied out by reap */
	bool queued;               /* jobs added since the last kick */
	unsigned nworkers;
	struct worker workers[TSR_BLK_POOL_MAX_THREADS];

	pthread_mutex_t lock;      /* protects everything below */
	pthread_cond_t work;       /* a job was queued, or stop */
	pthread_cond_t finished;   /* a job reached fin (reaper_waiting) */
	unsigned *todo;            /* FIFO ring of depth indexes */
	unsigned todo_first, todo_n;
	unsigned *fin;             /* finished, not yet taken */
	unsigned fin_n;
	unsigned busy;             /* jobs running on workers */
	unsigned idle;             /* workers waiting on work */
	bool reaper_waiting;
	bool stop;
};

/* Takes the oldest queued job (lock held, todo_n > 0). */
static unsigned todo_pop(struct tsr_blk_pool *p)
{
	unsigned j = p->todo[p->todo_first];

	p->todo_first = (p->todo_first + 1) % p->depth;
	p->todo_n--;
	return j;
}

static void run_job(const struct tsr_blk *blk, struct job *jb, void *bounce)
{
	jb->used = tsr_blk_handle_iov(blk, jb->iov, jb->n_out, jb->n_in,
				      bounce, &jb->status);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct tsr_blk_pool *p = w->p;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		unsigned j;
		bool signal;

		while (p->todo_n == 0 && !p->stop) {
			p->idle++;
			pthread_cond_wait(&p->work, &p->lock);
			p->idle--;
		}
		/* stop is set only once nothing is in flight (free drains
		 * first), so no job is left behind. */
		if (p->todo_n == 0)
			break;
		j = todo_pop(p);
		p->busy++;
		pthread_mutex_unlock(&p->lock);

		run_job(p->blk, &p->jobs[j], w->bounce);

		pthread_mutex_lock(&p->lock);
		p->busy--;
		signal = p->fin_n == 0;
		p->fin[p->fin_n++] = j;
		if (p->reaper_waiting)
			pthread_cond_signal(&p->finished);
		if (signal) {
			/* Outside the lock: the queue thread may be
			 * taking fin meanwhile; a spare signal only costs
			 * an empty reap. */
			pthread_mutex_unlock(&p->lock);
			(void)eventfd_write(p->efd, 1);
			pthread_mutex_lock(&p->lock);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Stops and joins the workers started so far. */
static void stop_workers(struct tsr_blk_pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nworkers; i++)
		pthread_join(p->workers[i].thread, NULL);
	p->nworkers = 0;
}

static void destroy(struct tsr_blk_pool *p)
{
	for (unsigned i = 0; i < TSR_BLK_POOL_MAX_THREADS; i++)
		free(p->workers[i].bounce);
	if (p->efd >= 0)
		close(p->efd);
	pthread_cond_destroy(&p->finished);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p->jobs);
	free(p->free_slots);
	free(p->taken);
	free(p->todo);
	free(p->fin);
	free(p);
}

int tsr_blk_pool_new(const struct tsr_blk *blk, unsigned threads,
		     unsigned depth, tsr_blk_done_fn *done, void *done_arg,
		     struct tsr_blk_pool **ret_p)
{
	struct tsr_blk_pool *p;
	sigset_t all, old;
	int r = 0;

	if (threads == 0 || threads > TSR_BLK_POOL_MAX_THREADS || depth == 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->finished, NULL);
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->jobs = calloc(depth, sizeof(*p->jobs));
	p->free_slots = calloc(depth, sizeof(*p->free_slots));
	p->taken = calloc(depth, sizeof(*p->taken));
	p->todo = calloc(depth, sizeof(*p->todo));
	p->fin = calloc(depth, sizeof(*p->fin));
	for (unsigned i = 0; i < threads; i++)
		p->workers[i].bounce = malloc(TSR_BLK_BOUNCE);
	if (p->efd < 0) {
		r = -errno;
		goto fail;
	}
	if (!p->jobs || !p->free_slots || !p->taken || !p->todo || !p->fin)
		r = -ENOMEM;
	for (unsigned i = 0; i < threads; i++)
		if (!p->workers[i].bounce)
			r = -ENOMEM;
	if (r < 0)
		goto fail;
	p->blk = blk;
	p->done = done;
	p->done_arg = done_arg;
	p->depth = depth;
	for (unsigned i = 0; i < depth; i++)
		p->free_slots[i] = depth - 1 - i;
	p->nfree = depth;

	/* Workers take no signals: the process's handlers run on its own
	 * threads, and no store call sees EINTR.  But SIGBUS: they copy into
	 * guest memory, and a fault there must reach guest_fault.c's
	 * handler (a blocked fault signal kills the process). */
	sigfillset(&all);
	sigdelset(&all, SIGBUS);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < threads; i++) {
		p->workers[i].p = p;
		r = -pthread_create(&p->workers[i].thread, NULL, worker_main,
				    &p->workers[i]);
		if (r < 0)
			break;
		p->nworkers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		stop_workers(p);
		goto fail;
	}
	*ret_p = p;
	return 0;
fail:
	destroy(p);
	return r;
}

void tsr_blk_pool_free(struct tsr_blk_pool *p)
{
	if (!p)
		return;
	/* Workers may still be writing into guest memory: no return (and
	 * no unmapping by the caller) before every job finished. */
	tsr_blk_pool_drain(p);
	stop_workers(p);
	destroy(p);
}

int tsr_blk_pool_fd(const struct tsr_blk_pool *p)
{
	return p->efd;
}

bool tsr_blk_pool_has_room(const struct tsr_blk_pool *p)
{
	return p->nfree > 0;
}

unsigned tsr_blk_pool_inflight(const struct tsr_blk_pool *p)
{
	return p->depth - p->nfree;
}

int tsr_blk_pool_add(struct tsr_blk_pool *p, const struct tsr_vreq *req)
{
	unsigned n = req->n_out + req->n_in, j;
	struct job *jb;

	if (p->nfree == 0 || n > JOB_IOV)
		return 0;
	j = p->free_slots[--p->nfree];
	jb = &p->jobs[j];
	jb->head = req->head;
	jb->n_out = req->n_out;
	jb->n_in = req->n_in;
	memcpy(jb->iov, req->iov, n * sizeof(req->iov[0]));
	pthread_mutex_lock(&p->lock);
	p->todo[(p->todo_first + p->todo_n) % p->depth] = j;
	p->todo_n++;
	pthread_mutex_unlock(&p->lock);
	p->queued = true;
	return 1;
}

/* Gives slot j back and returns its request. */
static void finish(struct tsr_blk_pool *p, unsigned j)
{
	struct job *jb = &p->jobs[j];

	p->free_slots[p->nfree++] = j;
	p->done(p->done_arg, jb->head, jb->used, jb->status);
}

void tsr_blk_pool_kick(struct tsr_blk_pool *p, void *bounce)
{
	unsigned wake, j;

	if (!p->queued)
		return;
	p->queued = false;
	pthread_mutex_lock(&p->lock);
	if (bounce && p->todo_n == 1 && p->busy == 0) {
		/* The only request around: waking a worker and being
		 * woken back would cost more than it saves. */
		j = todo_pop(p);
		pthread_mutex_unlock(&p->lock);
		run_job(p->blk, &p->jobs[j], bounce);
		finish(p, j);
		return;
	}
	/* Each signal wakes at least one waiter; busy workers take the
	 * rest when they finish. */
	wake = p->todo_n < p->idle ? p->todo_n : p->idle;
	for (unsigned i = 0; i < wake; i++)
		pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

unsigned tsr_blk_pool_reap(struct tsr_blk_pool *p, bool wait)
{
	unsigned n;

	if (tsr_blk_pool_inflight(p) == 0)
		return 0;
	pthread_mutex_lock(&p->lock);
	if (wait) {
		while (p->fin_n == 0) {
			/* Queued jobs nobody was woken for yet. */
			if (p->todo_n > 0 && p->idle > 0)
				pthread_cond_broadcast(&p->work);
			p->reaper_waiting = true;
			pthread_cond_wait(&p->finished, &p->lock);
			p->reaper_waiting = false;
		}
	}
	n = p->fin_n;
	memcpy(p->taken, p->fin, n * sizeof(p->fin[0]));
	p->fin_n = 0;
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < n; i++)
		finish(p, p->taken[i]);
	return n;
}

void tsr_blk_pool_drain(struct tsr_blk_pool *p)
{
	while (tsr_blk_pool_inflight(p) > 0)
		(void)tsr_blk_pool_reap(p, true);
}
