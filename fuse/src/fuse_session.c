/* SPDX-License-Identifier: MIT */
/*
 * Mount, serve, exit, destroy, and stale mounts: the libfuse session around
 * the operations of fuse_ns.c and fuse_io.c.  Options and the reasons for
 * them are in fuse/README.md.
 */
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fuse_internal.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

/* Request threads when the caller does not say (README.md: measured). */
#define TSR_FUSE_DEFAULT_THREADS 16
/* Kernel limits on background requests (async direct I/O, readahead):
 * libfuse's default of 12 would cap an iodepth-32 job at 12. */
#define TSR_FUSE_MAX_BACKGROUND 64
#define TSR_FUSE_CONGESTION 48

static void tsr_fuse_init_conn(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* 1 MiB requests: libfuse derives the kernel's max_pages from
	 * max_write (and always sets FUSE_BIG_WRITES). */
	conn->max_write = TSR_FUSE_MAX_IO;
	conn->max_read = TSR_FUSE_MAX_IO;  /* must equal the mount option */
	conn->max_readahead = TSR_FUSE_MAX_IO;
	conn->max_background = TSR_FUSE_MAX_BACKGROUND;
	conn->congestion_threshold = TSR_FUSE_CONGESTION;
	/* Every op is thread-safe; lookups in one directory may run
	 * together. */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* Data always passes through memory (the store reads into and writes
	 * from buffers), so splicing would only add syscalls. */
	conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
				  FUSE_CAP_SPLICE_MOVE);
}

static const struct fuse_lowlevel_ops tsr_fuse_ops = {
	.init = tsr_fuse_init_conn,
	.lookup = tsr_fuse_lookup,
	.forget = tsr_fuse_forget,
	.forget_multi = tsr_fuse_forget_multi,
	.getattr = tsr_fuse_getattr,
	.setattr = tsr_fuse_setattr,
	.readlink = tsr_fuse_readlink,
	.opendir = tsr_fuse_opendir,
	.readdir = tsr_fuse_readdir,
	.releasedir = tsr_fuse_releasedir,
	.statfs = tsr_fuse_statfs,
	.open = tsr_fuse_open,
	.read = tsr_fuse_read,
	.write = tsr_fuse_write,
	.flush = tsr_fuse_flush,
	.fsync = tsr_fuse_fsync,
	.fallocate = tsr_fuse_fallocate,
	.release = tsr_fuse_release,
};

/* 0 when path is a directory we can mount on; -ENOTCONN for a dead FUSE
 * mount, -EBUSY for a live one, -ENOTDIR, or stat's error. */
static int check_mountpoint(const char *path)
{
	struct stat st, parent;
	struct statfs sfs;
	char *up;
	int r = 0;

	/* statfs first: on a FUSE mount it always asks the daemon, so a dead
	 * one answers ENOTCONN; stat may still be served from the kernel's
	 * attribute cache for up to TSR_FUSE_ATTR_TIMEOUT after the daemon
	 * died, and a mount stacked on the dead one would hide it. */
	if (statfs(path, &sfs) || stat(path, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (sfs.f_type != FUSE_SUPER_MAGIC)
		return 0;
	if (asprintf(&up, "%s/..", path) < 0)
		return -ENOMEM;
	/* The root of a FUSE mount (not a directory inside one). */
	if (!stat(up, &parent) && parent.st_dev != st.st_dev)
		r = -EBUSY;
	free(up);
	return r;
}

static void fuse_free(struct tsr_fuse *fuse)
{
	if (fuse->exit_fd >= 0)
		close(fuse->exit_fd);
	tsr_inode_table_fini(&fuse->inodes);
	pthread_mutex_destroy(&fuse->files_lock);
	free(fuse->mountpoint);
	free(fuse);
}

int tsr_fuse_mount(struct tsr_store *store, const struct tsr_fuse_options *opts,
		   struct tsr_fuse **ret_fuse)
{
	struct tsr_store_stats stats;
	struct tsr_fuse *fuse;
	char mount_opts[160];
	char *argv[4];
	int argc = 0, r;

	if (!store || !opts || !opts->mountpoint || !*opts->mountpoint)
		return -EINVAL;
	r = tsr_fuse_io_init();
	if (r)
		return r;
	r = check_mountpoint(opts->mountpoint);
	if (r)
		return r;
	r = tsr_store_stat(store, &stats);
	if (r)
		return r;

	fuse = calloc(1, sizeof(*fuse));
	if (!fuse)
		return -ENOMEM;
	fuse->exit_fd = -1;
	fuse->store = store;
	fuse->chunk_size = stats.chunk_size;
	fuse->mounted_at = time(NULL);
	fuse->uid = getuid();
	fuse->gid = getgid();
	fuse->max_threads = opts->max_threads ? opts->max_threads
					      : TSR_FUSE_DEFAULT_THREADS;
	fuse->files.next = fuse->files.prev = &fuse->files;
	r = tsr_inode_table_init(&fuse->inodes);
	if (r) {
		free(fuse);
		return r;
	}
	pthread_mutex_init(&fuse->files_lock, NULL);
	fuse->mountpoint = strdup(opts->mountpoint);
	fuse->exit_fd = eventfd(0, EFD_CLOEXEC);
	if (!fuse->mountpoint || fuse->exit_fd < 0) {
		r = fuse->mountpoint ? -errno : -ENOMEM;
		fuse_free(fuse);
		return r;
	}

	/* default_permissions: the kernel checks the modes (0644 volumes,
	 * 0444 layers); max_read bounds a read to the per-thread buffer. */
	snprintf(mount_opts, sizeof(mount_opts),
		 "fsname=tessera,subtype=tessera,default_permissions,"
		 "max_read=%u%s", TSR_FUSE_MAX_IO,
		 opts->allow_other ? ",allow_other" : "");
	argv[argc++] = "tessera";
	argv[argc++] = "-o";
	argv[argc++] = mount_opts;
	if (opts->debug)
		argv[argc++] = "-d";
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);

	fuse->se = fuse_session_new(&args, &tsr_fuse_ops, sizeof(tsr_fuse_ops),
				    fuse);
	if (!fuse->se) {
		fuse_free(fuse);
		return -EINVAL;
	}
	errno = 0;
	if (fuse_session_mount(fuse->se, fuse->mountpoint)) {
		r = errno ? -errno : -EIO;
		fuse_session_destroy(fuse->se);
		fuse_free(fuse);
		return r;
	}
	fuse->mounted = true;
	*ret_fuse = fuse;
	return 0;
}

/*
 * Waking the session loop on tsr_fuse_exit().
 *
 * libfuse's loop sleeps in sem_wait() in the serving thread and looks at
 * its exit flag only when that is interrupted by a signal or when a worker
 * finishes a request.  A signal may land on any thread of the process that
 * does not block it (the store's, the caller's), so exit also wakes the
 * waker thread through an eventfd, and it sends the loop a request: a
 * statfs of the mountpoint.  A worker answers it, sees the flag and ends
 * the loop.  (A NOTIFY_RETRIEVE of the root would not block, but the
 * kernel refuses it for a directory: EINVAL.)  When the loop has ended
 * already, the statfs stays pending until tsr_fuse_destroy closes the
 * device, which aborts the connection; the waker is joined there.
 */
static void *waker_main(void *arg)
{
	struct tsr_fuse *fuse = arg;
	struct statfs sfs;
	uint64_t v;

	for (;;) {
		if (read(fuse->exit_fd, &v, sizeof(v)) < 0 && errno == EINTR)
			continue;
		if (fuse->waker_stop)
			return NULL;
		statfs(fuse->mountpoint, &sfs);
	}
}

static void waker_stop(struct tsr_fuse *fuse)
{
	uint64_t one = 1;

	if (!fuse->waker_started)
		return;
	fuse->waker_stop = true;
	while (write(fuse->exit_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(fuse->waker, NULL);
	fuse->waker_started = false;
}

int tsr_fuse_serve(struct tsr_fuse *fuse)
{
	struct fuse_loop_config *cfg;
	int r;

	/* We write back for the kernel (loop over our files): our
	 * allocations must not recurse into I/O, and we must not be
	 * throttled as a dirtier.  Threads started below inherit it. */
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) && errno != EINVAL)
		fprintf(stderr, "tessera: fuse: PR_SET_IO_FLUSHER: %s "
			"(serving without it)\n", strerror(errno));

	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_max_threads(cfg, fuse->max_threads);
	/* Keep every thread once started: no thread creation (and its
	 * allocations) on a later burst of writeback. */
	fuse_loop_cfg_set_idle_threads(cfg, fuse->max_threads);
	/* One /dev/fuse descriptor per thread (README.md: measured). */
	fuse_loop_cfg_set_clone_fd(cfg, 1);

	if (!fuse->waker_started) {
		r = -pthread_create(&fuse->waker, NULL, waker_main, fuse);
		if (r) {
			fuse_loop_cfg_destroy(cfg);
			return r;
		}
		fuse->waker_started = true;
	}
	r = fuse_session_loop_mt(fuse->se, cfg);
	/* libfuse returns a negative errno, a positive one, or -1. */
	if (r > 0)
		r = -r;
	else if (r == -1)
		r = -EIO;
	fuse_loop_cfg_destroy(cfg);
	return r;
}

/* Async-signal-safe: a flag and a write(2). */
void tsr_fuse_exit(struct tsr_fuse *fuse)
{
	uint64_t one = 1;
	int saved = errno;

	fuse_session_exit(fuse->se);
	if (write(fuse->exit_fd, &one, sizeof(one)) < 0) {
		/* eventfd counter full: a wake-up is pending anyway */
	}
	errno = saved;
}

void tsr_fuse_destroy(struct tsr_fuse *fuse)
{
	if (!fuse)
		return;
	/* No request is served any more: closing flushes each volume. */
	tsr_fuse_close_all(fuse);
	if (fuse->mounted)
		fuse_session_unmount(fuse->se);  /* lazy; a no-op when the
						  * kernel ended the mount */
	fuse_session_destroy(fuse->se);  /* aborts a pending wake-up */
	waker_stop(fuse);
	fuse_free(fuse);
}

int tsr_fuse_clean_stale(const char *path)
{
	struct statfs sfs;

	/* statfs, not stat: see check_mountpoint. */
	if (!statfs(path, &sfs))
		return 0;
	if (errno != ENOTCONN)
		return -errno;
	if (umount2(path, MNT_DETACH))
		return -errno;
	return 1;
}
