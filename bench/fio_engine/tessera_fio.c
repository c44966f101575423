/* SPDX-License-Identifier: MIT */
/*
 * libtessera-fio.so: a fio external ioengine that drives libtessera
 * directly, without FUSE or virtio in between (as SPDK's fio plugin drives
 * its bdev layer).  It measures the store's own speed.
 *
 *   fio --ioengine=external:/path/libtessera-fio.so \
 *       --store=DIR --volume=NAME ...          read-write run of a volume
 *       --store=DIR --layer=NAME|ID ...        read-only run of a layer
 *
 * Mapping of fio operations (see README.md beside this file):
 *   read   -> tsr_volume_read / tsr_layer_read
 *   write  -> tsr_volume_write
 *   trim   -> tsr_volume_discard
 *   fsync, fdatasync, sync_file_range -> tsr_volume_flush
 *   close of a written file -> tsr_volume_flush, then tsr_volume_close
 *
 * The store's calls are synchronous and thread-safe, so requests are
 * asynchronous the way SPDK's and fio's own thread-pool engines make them:
 * at iodepth > 1 each job has worker threads (workers=, default one less
 * than the online CPUs) that run queued requests on the store and hand
 * them back through ->getevents, where the job's own thread runs queued
 * requests too instead of sleeping.  At iodepth=1 a request runs inside ->queue
 * (no thread hand-off in its latency).  A flush waits until the job has
 * nothing in flight (FIO_Q_BUSY, as fio's libaio engine does for fsync),
 * so it covers every write fio saw complete.
 *
 * One store per process.  A tessera store is owned by one process at a
 * time (an OFD lock): fio jobs that share a store must be threads of one
 * fio process (thread=1), or run one at a time.  Two forked jobs running at
 * once get -EBUSY and a message naming the lock's owner.  Within a process
 * the store handle is opened once and shared by every job, refcounted.
 *
 * Compiled against the headers of the installed fio's source (Debian ships
 * none; fetch_fio_source.sh) with -include config-host.h, and resolved
 * against the symbols the fio binary exports (log_err, ...).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fio.h"
#include "optgroup.h"

#include <tessera/store.h>

/* ---- options ------------------------------------------------------------ */

struct tfio_options {
	/* fio keeps the job's thread_data pointer in the first word of the
	 * option struct (for option callbacks), so no option may live at
	 * offset 0. */
	void *pad;
	char *store;   /* store directory; default $TESSERA_STORE */
	char *volume;  /* volume name (read-write) */
	char *layer;   /* layer name, id or unique id prefix (read-only) */
	unsigned long long cache; /* chunk cache bytes; 0 = the library's default */
	unsigned int workers;     /* threads per job at iodepth > 1; 0 = default */
};

#define TFIO_WORKERS_DEFAULT_MAX 8
#define TFIO_WORKERS_MAX 64

static struct fio_option tfio_options[] = {
	{
		.name = "store",
		.lname = "tessera store directory",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct tfio_options, store),
		.help = "Directory of the tessera store (default: $TESSERA_STORE)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "volume",
		.lname = "tessera volume",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct tfio_options, volume),
		.help = "Name of the volume to run I/O against (read-write)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "layer",
		.lname = "tessera layer",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct tfio_options, layer),
		.help = "Committed layer (name, id or id prefix) to read (read-only)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "cache",
		.lname = "tessera chunk cache size",
		.type = FIO_OPT_STR_VAL,
		.off1 = offsetof(struct tfio_options, cache),
		.help = "Cache of verified chunks of the process's store (default 256M; "
			"the first job to open the store sets it)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "workers",
		.lname = "tessera worker threads",
		.type = FIO_OPT_INT,
		.off1 = offsetof(struct tfio_options, workers),
		.minval = 0,
		.maxval = TFIO_WORKERS_MAX,
		.help = "Threads per job that run requests at iodepth > 1 (default: "
			"online CPUs - 1, at least 1, at most 8 and iodepth)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = NULL,
	},
};

/* ---- the process's open stores --------------------------------------------- */

/* One open store of this process. */
struct tfio_store {
	struct tfio_store *next;
	char *dir;               /* realpath of the store directory */
	pid_t pid;               /* the process that opened it */
	unsigned refs;           /* jobs (and size probes) using it */
	struct tsr_store *store;
};

/*
 * Global mutable state, forced by fio's engine ABI: the engine gets no
 * per-process context of its own (only per-job thread_data), yet the store
 * lock allows one open handle per process, shared by every job thread.
 * Both are protected by tfio_lock; fio calls the hooks below from its main
 * thread (size probes) and from each job's thread.
 */
static pthread_mutex_t tfio_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tfio_store *tfio_stores; /* protected by tfio_lock */

/* Where the store reports damage it meets during I/O: fio's error log. */
static void tfio_store_log(void *arg, const char *line)
{
	(void)arg;
	log_err("fio: tessera: %s\n", line);
}

/*
 * Takes a reference on the store in dir, opening it when this process has
 * none (with a cache of cache_bytes, 0 = default).  On success *ret_s
 * holds the reference (drop it with
 * tfio_store_put).  Returns 0 or a negative errno; -EBUSY when another
 * process holds the store's lock.
 */
static int tfio_store_get(const char *dir, uint64_t cache_bytes, struct tfio_store **ret_s)
{
	struct tsr_open_options opts = {
		.log = tfio_store_log,
		.cache_bytes = cache_bytes,
	};
	struct tfio_store *s, **pp;
	char *real;
	pid_t self = getpid();
	int r;

	real = realpath(dir, NULL);
	if (!real)
		return -errno;

	pthread_mutex_lock(&tfio_lock);
	/*
	 * A forked job inherits its parent's list.  Handles opened by another
	 * process belong to it (their LMDB environment must not be used across
	 * fork): forget them here without closing, and open our own.  fio
	 * closes its probes before it forks, so the list is normally empty.
	 */
	for (pp = &tfio_stores; (s = *pp);) {
		if (s->pid != self) {
			*pp = s->next;
			free(s->dir);
			free(s);
			continue;
		}
		if (!strcmp(s->dir, real))
			break;
		pp = &s->next;
	}
	if (s) {
		s->refs++;
		free(real);
		pthread_mutex_unlock(&tfio_lock);
		*ret_s = s;
		return 0;
	}

	s = calloc(1, sizeof(*s));
	if (!s) {
		r = -ENOMEM;
		goto fail;
	}
	/* Opened under the lock so that two job threads starting at once
	 * cannot both open the store (the second would meet our own lock). */
	r = tsr_store_open(real, &opts, &s->store);
	if (r < 0)
		goto fail;
	s->dir = real;
	s->pid = self;
	s->refs = 1;
	s->next = tfio_stores;
	tfio_stores = s;
	pthread_mutex_unlock(&tfio_lock);
	*ret_s = s;
	return 0;

fail:
	pthread_mutex_unlock(&tfio_lock);
	free(s);
	free(real);
	return r;
}

/* Drops a reference; the last one closes the store and releases its lock. */
static void tfio_store_put(struct tfio_store *s)
{
	struct tfio_store **pp;

	pthread_mutex_lock(&tfio_lock);
	if (--s->refs > 0) {
		pthread_mutex_unlock(&tfio_lock);
		return;
	}
	for (pp = &tfio_stores; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	/* Closed under the lock: a job starting now must not try to open the
	 * store while this handle still holds its lock. */
	tsr_store_close(s->store);
	pthread_mutex_unlock(&tfio_lock);
	free(s->dir);
	free(s);
}

/* ---- per job and per file state ------------------------------------------- */

/*
 * td->io_ops_data: set by ->init, freed by ->cleanup.  At iodepth > 1 the
 * job's requests move queued -> running (a worker has it) -> completed ->
 * events (handed to fio by ->getevents, read back by ->event).  Each list
 * holds at most iodepth requests: fio never has more io_us in flight.
 */
struct tfio_job {
	struct tfio_store *store;  /* our reference */

	pthread_mutex_t lock;      /* guards everything below */
	pthread_cond_t work;       /* queued requests, or stop */
	pthread_cond_t done;       /* completed requests */
	bool error_logged;         /* one tessera-worded I/O error per job */
	bool stop;
	unsigned depth;            /* capacity of each list: td->o.iodepth */
	struct io_u **queued;      /* ring: head, n_queued */
	unsigned head, n_queued;
	unsigned n_running;
	struct io_u **completed;
	unsigned n_completed;
	struct io_u **events;      /* the last ->getevents' requests */
	pthread_t *workers;
	unsigned n_workers;
};

static void *tfio_worker(void *arg);

/* f->engine_data while the file is open: exactly one of vol, layer. */
struct tfio_file {
	struct tsr_volume *vol;
	struct tsr_layer *layer;
	/* Writes or discards since the last successful flush: close flushes
	 * them so that a flush error reaches fio (tsr_volume_close cannot
	 * report one).  Only the owning job's thread touches it. */
	bool unflushed;
};

/* Logs "fio: tessera: <what>: <tessera's words for err>" and fails the job
 * with err (negative errno).  Returns 1, what fio's hooks return on error. */
static int tfio_fail(struct thread_data *td, int err, const char *what)
{
	log_err("fio: tessera: %s: %s\n", what, tsr_strerror(err));
	td_vmsg(td, -err, tsr_strerror(err), what);
	return 1;
}

/* tfio_fail for an object of the store: "<kind> <name>: <words>". */
static int tfio_fail_on(struct thread_data *td, int err, const char *kind,
			const char *name)
{
	char what[64 + TSR_NAME_MAX];

	snprintf(what, sizeof(what), "%s %s", kind, name);
	return tfio_fail(td, err, what);
}

/* Logs a usage error and fails the job with EINVAL.  Returns 1. */
static int tfio_usage(struct thread_data *td, const char *msg)
{
	log_err("fio: tessera: %s\n", msg);
	td_vmsg(td, EINVAL, msg, "tessera options");
	return 1;
}

static const char *tfio_store_dir(const struct tfio_options *o)
{
	if (o->store && o->store[0])
		return o->store;
	return getenv("TESSERA_STORE");
}

/* Checks the options and the job's shape.  Returns 0 or what tfio_usage
 * returns. */
static int tfio_check(struct thread_data *td)
{
	const struct tfio_options *o = td->eo;
	const char *dir = tfio_store_dir(o);
	bool has_vol = o->volume && o->volume[0];
	bool has_layer = o->layer && o->layer[0];

	if (!dir || !dir[0])
		return tfio_usage(td, "no store: set store=DIR (or $TESSERA_STORE)");
	if (!has_vol && !has_layer)
		return tfio_usage(td, "no volume: set volume=NAME "
				      "(or layer=NAME|ID for a read-only run)");
	if (has_vol && has_layer)
		return tfio_usage(td, "volume= and layer= are exclusive: set one");
	/* Every fio file of the job maps onto the one volume: two of them
	 * would overlap on it and break verify, so refuse. */
	if (td->o.nr_files > 1 || td->files_index > 1)
		return tfio_usage(td, "one volume per job: use nrfiles=1 and a "
				      "single filename (the filename is only a label)");
	if (has_layer && !td->o.verify_only && (td_write(td) || td_trim(td)))
		return tfio_usage(td, "a layer is read-only: use a read workload "
				      "(rw=read/randread) or verify_only=1");
	/* fio would fsync(2) its own placeholder descriptor (-1) on close;
	 * closing a written file flushes the volume anyway. */
	if (td->o.fsync_on_close)
		return tfio_usage(td, "fsync_on_close is not supported: closing "
				      "flushes already; use end_fsync=1 to time it");
	return 0;
}

/* Reports a failed tfio_store_get.  -EBUSY is the one a user can cause
 * with fio's own options (forked jobs running at once), so it gets the
 * owner's pid and the way out.  Returns 1. */
static int tfio_open_failed(struct thread_data *td, int err)
{
	const char *dir = tfio_store_dir(td->eo);

	if (err == -EBUSY) {
		/* The owner writes its pid after it takes the lock: a job that
		 * lost the race by microseconds may find no pid yet. */
		int owner = tsr_store_owner(dir);
		char who[32] = "another process";

		if (owner > 0)
			snprintf(who, sizeof(who), "pid %d", owner);
		log_err("fio: tessera: store %s is locked by %s.  A store is "
			"open in one process at a time: run the jobs that "
			"share it as threads of one fio (thread=1), or one at "
			"a time (numjobs=1 per fio process, stonewall)\n",
			dir, who);
	}
	/* The store maps a directory that is not a store to TSR_ERR_NOT_STORE, so
	 * -ENOENT here is the directory itself (realpath). */
	if (err == -ENOENT) {
		log_err("fio: tessera: store %s: no such directory\n", dir);
		td_vmsg(td, ENOENT, "no such store directory", "open store");
		return 1;
	}
	return tfio_fail_on(td, err, "open store", dir);
}

/* ---- hooks ------------------------------------------------------------------- */

/*
 * Sets the size fio sees: the volume's or the layer's.  fio calls this from
 * its main process before it forks the jobs (create_serialize, the
 * default), so the store is opened for the probe and closed again here:
 * a handle kept open would be inherited by the forked jobs.
 */
static int tfio_get_file_size(struct thread_data *td, struct fio_file *f)
{
	const struct tfio_options *o = td->eo;
	struct tfio_store *s;
	uint64_t size = 0;
	bool opened;
	int r;

	if (fio_file_size_known(f))
		return 0;
	if (tfio_check(td))
		return 1;
	r = tfio_store_get(tfio_store_dir(o), o->cache, &s);
	opened = r == 0;
	if (opened) {
		if (o->volume && o->volume[0]) {
			struct tsr_volume_info info;

			r = tsr_volume_stat(s->store, o->volume, &info);
			if (r == 0)
				size = info.size;
		} else {
			struct tsr_layer_id id;
			struct tsr_layer_info info;

			r = tsr_layer_resolve(s->store, o->layer, &id);
			if (r == 0)
				r = tsr_layer_stat(s->store, &id, &info);
			if (r == 0)
				size = info.size;
		}
		tfio_store_put(s);
	}
	/* fio takes ENOENT from a size probe for "a file to be created" and
	 * goes on (then ->open_file says it again); without size= it stops
	 * with "you need to specify size=", so the cause must be said here. */
	if (r < 0) {
		if (!opened)
			return tfio_open_failed(td, r);
		if (o->volume && o->volume[0])
			return tfio_fail_on(td, r, "volume", o->volume);
		return tfio_fail_on(td, r, "layer", o->layer);
	}

	f->real_file_size = size;
	fio_file_set_size_known(f);
	return 0;
}

/* Stops and joins the job's workers and frees its lists. */
static void tfio_job_free(struct tfio_job *job)
{
	pthread_mutex_lock(&job->lock);
	job->stop = true;
	pthread_cond_broadcast(&job->work);
	pthread_mutex_unlock(&job->lock);
	for (unsigned i = 0; i < job->n_workers; i++)
		pthread_join(job->workers[i], NULL);
	pthread_cond_destroy(&job->work);
	pthread_cond_destroy(&job->done);
	pthread_mutex_destroy(&job->lock);
	free(job->workers);
	free(job->queued);
	free(job->completed);
	free(job->events);
	free(job);
}

/* The job's lists and, at iodepth > 1, its workers. */
static int tfio_job_start(struct thread_data *td, struct tfio_job *job)
{
	const struct tfio_options *o = td->eo;
	unsigned depth = td->o.iodepth ? td->o.iodepth : 1;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	/* The job's own thread runs requests too (->getevents). */
	unsigned n = o->workers ? o->workers
				: cpus > 2 ? (unsigned)(cpus - 1) : 1;
	pthread_condattr_t ca;
	int r;

	pthread_mutex_init(&job->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);  /* getevents' timeout */
	pthread_cond_init(&job->done, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&job->work, NULL);
	job->depth = depth;
	if (depth == 1)
		return 0;
	if (!o->workers && n > TFIO_WORKERS_DEFAULT_MAX)
		n = TFIO_WORKERS_DEFAULT_MAX;
	if (n > depth)
		n = depth;
	job->queued = calloc(depth, sizeof(*job->queued));
	job->completed = calloc(depth, sizeof(*job->completed));
	job->events = calloc(depth, sizeof(*job->events));
	job->workers = calloc(n, sizeof(*job->workers));
	if (!job->queued || !job->completed || !job->events || !job->workers)
		return -ENOMEM;
	for (; job->n_workers < n; job->n_workers++) {
		r = pthread_create(&job->workers[job->n_workers], NULL, tfio_worker, job);
		if (r)
			return -r;
	}
	return 0;
}

/* Runs in the job's own thread or process: takes the job's reference on
 * the store, which it keeps until ->cleanup, and starts its workers. */
static int tfio_init(struct thread_data *td)
{
	const struct tfio_options *o = td->eo;
	struct tfio_job *job;
	int r;

	if (tfio_check(td))
		return 1;
	job = calloc(1, sizeof(*job));
	if (!job)
		return tfio_fail(td, -ENOMEM, "init");
	r = tfio_job_start(td, job);
	if (r < 0) {
		tfio_job_free(job);
		return tfio_fail(td, r, "starting the job's workers");
	}
	r = tfio_store_get(tfio_store_dir(o), o->cache, &job->store);
	if (r < 0) {
		tfio_job_free(job);
		return tfio_open_failed(td, r);
	}
	td->io_ops_data = job;
	return 0;
}

static void tfio_cleanup(struct thread_data *td)
{
	struct tfio_job *job = td->io_ops_data;
	struct tfio_store *store;

	if (!job)
		return;
	td->io_ops_data = NULL;
	store = job->store;
	tfio_job_free(job);  /* joins the workers: none is in the store now */
	tfio_store_put(store);
}

static int tfio_open_file(struct thread_data *td, struct fio_file *f)
{
	const struct tfio_options *o = td->eo;
	struct tfio_job *job = td->io_ops_data;
	struct tfio_file *tf;
	uint64_t size;
	int r;

	tf = calloc(1, sizeof(*tf));
	if (!tf)
		return tfio_fail(td, -ENOMEM, "open");
	if (o->volume && o->volume[0]) {
		r = tsr_volume_open(job->store->store, o->volume, &tf->vol);
		if (r < 0)
			goto fail;
		size = tsr_volume_size(tf->vol);
	} else {
		struct tsr_layer_id id;

		r = tsr_layer_resolve(job->store->store, o->layer, &id);
		if (r == 0)
			r = tsr_layer_open(job->store->store, &id, &tf->layer);
		if (r < 0)
			goto fail;
		size = tsr_layer_size(tf->layer);
	}
	/* The size fio planned with came from the probe; it cannot grow
	 * under us (volumes are not resized) but say so if it differs. */
	if (fio_file_size_known(f) && f->real_file_size != size)
		log_info("fio: tessera: %s is %llu bytes now, was %llu\n",
			 f->file_name, (unsigned long long)size,
			 (unsigned long long)f->real_file_size);
	f->real_file_size = size;
	fio_file_set_size_known(f);
	f->engine_data = tf;
	return 0;

fail:
	free(tf);
	if (o->volume && o->volume[0])
		return tfio_fail_on(td, r, "open volume", o->volume);
	return tfio_fail_on(td, r, "open layer", o->layer);
}

/* Flushes what this job wrote, then drops its handle: fio closes a file at
 * the end of each pass, and a verify pass in another process must find
 * the data durable. */
static int tfio_close_file(struct thread_data *td, struct fio_file *f)
{
	struct tfio_file *tf = f->engine_data;
	int r = 0;

	if (!tf)
		return 0;
	f->engine_data = NULL;
	if (tf->vol) {
		if (tf->unflushed)
			r = tsr_volume_flush(tf->vol);
		tsr_volume_close(tf->vol);
	} else {
		tsr_layer_close(tf->layer);
	}
	free(tf);
	if (r < 0)
		return tfio_fail(td, r, "flush on close");
	return 0;
}

/* Runs one request on the store; sets io_u->error.  Called by the job's
 * thread (iodepth 1, flushes) or by one of its workers. */
static void tfio_run(struct tfio_job *job, struct io_u *io_u)
{
	struct tfio_file *tf = io_u->file->engine_data;
	const char *op;
	bool first_error;
	int r;

	switch (io_u->ddir) {
	case DDIR_READ:
		op = "read";
		if (tf->vol)
			r = tsr_volume_read(tf->vol, io_u->xfer_buf,
					    io_u->xfer_buflen, io_u->offset);
		else
			r = tsr_layer_read(tf->layer, io_u->xfer_buf,
					   io_u->xfer_buflen, io_u->offset);
		break;
	case DDIR_WRITE:
		op = "write";
		r = tf->vol ? tsr_volume_write(tf->vol, io_u->xfer_buf,
					       io_u->xfer_buflen, io_u->offset)
			    : -EROFS;
		break;
	case DDIR_TRIM:
		op = "trim";
		r = tf->vol ? tsr_volume_discard(tf->vol, io_u->offset,
						 io_u->xfer_buflen)
			    : -EROFS;
		break;
	case DDIR_SYNC:
	case DDIR_DATASYNC:
	case DDIR_SYNC_FILE_RANGE:
		/* The store has one durability point for a volume: a flush
		 * makes everything before it durable, data and map alike, so
		 * fsync, fdatasync and sync_file_range are the same.  A
		 * layer is immutable and durable already. */
		op = "flush";
		r = tf->vol ? tsr_volume_flush(tf->vol) : 0;
		break;
	default:
		op = "request";
		r = -EINVAL;
		break;
	}

	if (r < 0) {
		/* fio logs the failed request with strerror(); the first one of
		 * a job also gets tessera's meaning of the code (-ESTALE: the
		 * volume was committed, -EIO: a damaged chunk object...). */
		pthread_mutex_lock(&job->lock);
		first_error = !job->error_logged;
		job->error_logged = true;
		pthread_mutex_unlock(&job->lock);
		if (first_error)
			log_err("fio: tessera: %s of %llu bytes at %llu: %s\n",
				op, io_u->xfer_buflen, io_u->offset,
				tsr_strerror(r));
		io_u->error = -r;
	} else {
		io_u->error = 0;
		io_u->resid = 0;
	}
}

/* The oldest queued request, now running.  Under job->lock. */
static struct io_u *tfio_take(struct tfio_job *job)
{
	struct io_u *io_u = job->queued[job->head];

	job->head = (job->head + 1) % job->depth;
	job->n_queued--;
	job->n_running++;
	return io_u;
}

/* A request ran: ready for ->getevents.  Under job->lock. */
static void tfio_complete(struct tfio_job *job, struct io_u *io_u)
{
	job->n_running--;
	job->completed[job->n_completed++] = io_u;
	pthread_cond_signal(&job->done);
}

static void *tfio_worker(void *arg)
{
	struct tfio_job *job = arg;
	struct io_u *io_u;

	pthread_mutex_lock(&job->lock);
	for (;;) {
		while (!job->n_queued && !job->stop)
			pthread_cond_wait(&job->work, &job->lock);
		if (job->stop)
			break;
		io_u = tfio_take(job);
		pthread_mutex_unlock(&job->lock);
		tfio_run(job, io_u);
		pthread_mutex_lock(&job->lock);
		tfio_complete(job, io_u);
	}
	pthread_mutex_unlock(&job->lock);
	return NULL;
}

static enum fio_q_status tfio_queue(struct thread_data *td, struct io_u *io_u)
{
	struct tfio_job *job = td->io_ops_data;
	struct tfio_file *tf = io_u->file->engine_data;
	bool in_flight;

	fio_ro_check(td, io_u);

	if (ddir_sync(io_u->ddir)) {
		/* Covers what fio saw complete: wait for what is in flight. */
		pthread_mutex_lock(&job->lock);
		in_flight = job->n_queued || job->n_running || job->n_completed;
		pthread_mutex_unlock(&job->lock);
		if (in_flight)
			return FIO_Q_BUSY;
		tfio_run(job, io_u);
		if (!io_u->error)
			tf->unflushed = false;
		return FIO_Q_COMPLETED;
	}
	/* Written by the job's thread only: set when queued, so a close
	 * (after fio reaped everything) sees it. */
	if (io_u->ddir == DDIR_WRITE || io_u->ddir == DDIR_TRIM)
		tf->unflushed = true;
	if (!job->n_workers) {
		tfio_run(job, io_u);
		return FIO_Q_COMPLETED;
	}
	pthread_mutex_lock(&job->lock);
	job->queued[(job->head + job->n_queued) % job->depth] = io_u;
	job->n_queued++;
	pthread_cond_signal(&job->work);
	pthread_mutex_unlock(&job->lock);
	return FIO_Q_QUEUED;
}

/* ->queue already woke a worker per request. */
static int tfio_commit(struct thread_data *td)
{
	(void)td;
	return 0;
}

static int tfio_getevents(struct thread_data *td, unsigned int min, unsigned int max,
			  const struct timespec *t)
{
	struct tfio_job *job = td->io_ops_data;
	struct timespec deadline;
	unsigned n;

	if (t) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += t->tv_sec;
		deadline.tv_nsec += t->tv_nsec;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&job->lock);
	while (job->n_completed < min) {
		/* Rather than sleep while requests wait for a worker, the
		 * job's thread runs one itself. */
		if (job->n_queued) {
			struct io_u *io_u = tfio_take(job);

			pthread_mutex_unlock(&job->lock);
			tfio_run(job, io_u);
			pthread_mutex_lock(&job->lock);
			tfio_complete(job, io_u);
		} else if (!t) {
			pthread_cond_wait(&job->done, &job->lock);
		} else if (pthread_cond_timedwait(&job->done, &job->lock, &deadline) == ETIMEDOUT) {
			break;
		}
	}
	n = job->n_completed < max ? job->n_completed : max;
	memcpy(job->events, job->completed, n * sizeof(*job->events));
	job->n_completed -= n;
	memmove(job->completed, job->completed + n, job->n_completed * sizeof(*job->completed));
	pthread_mutex_unlock(&job->lock);
	return (int)n;
}

static struct io_u *tfio_event(struct thread_data *td, int event)
{
	struct tfio_job *job = td->io_ops_data;

	return job->events[event];
}

/* Resolved by fio with dlsym(handle, "ioengine"): the one exported name. */
struct ioengine_ops ioengine = {
	.name = "tessera",
	.version = FIO_IOOPS_VERSION,
	/* DISKLESSIO: fio's file is a label, not a path to create, stat or
	 * invalidate.  NOEXTEND: a volume has a fixed size.  NODISKUTIL: no
	 * block device to sample. */
	.flags = FIO_DISKLESSIO | FIO_NOEXTEND | FIO_NODISKUTIL,
	.init = tfio_init,
	.cleanup = tfio_cleanup,
	.queue = tfio_queue,
	.commit = tfio_commit,
	.getevents = tfio_getevents,
	.event = tfio_event,
	.open_file = tfio_open_file,
	.close_file = tfio_close_file,
	.get_file_size = tfio_get_file_size,
	.options = tfio_options,
	.option_struct_size = sizeof(struct tfio_options),
};
