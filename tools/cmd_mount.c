/* SPDX-License-Identifier: MIT */
/*
 * tessera mount, tessera umount: serving a store over FUSE, and the
 * --rootfs stack (FUSE daemon, loop device, filesystem mount) on top of it.
 *
 * A mount daemon is this process, forked: the child opens the store, mounts,
 * records itself (mount_stack.h), tells the parent over a pipe that the
 * mount is live, and serves until the filesystem is unmounted or it gets
 * SIGINT/SIGTERM; then it flushes everything (tsr_fuse_destroy) and closes
 * the store.  Until the report the child prints its errors on the caller's
 * stderr, so a failed mount says why and exits 1.  The daemon also serves
 * the store's control socket, so that other `tessera` commands work while
 * it owns the store.
 *
 * Both commands run locally (never forwarded to a daemon): they are about
 * owning the store, or do not use it.
 */
#include "cli.h"
#include "mount_stack.h"

#include <tessera/fuse_server.h>
#include <tessera/volume_fs.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MOUNT_LOG_NAME "tessera-mount.log"
#define UMOUNT_TIMEOUT_DEFAULT 120  /* seconds a daemon gets to flush and exit */
#define FUSE_BUSY_RETRY_MS 5000     /* a loop device's autoclear may lag */

/*
 * Direct I/O on the loop device over the FUSE image file: on, because it
 * measured better on every row.  Buffered, the loop driver sends requests
 * through its worker one at a time and caches the image's pages a second
 * time under the filesystem's own cache; with direct I/O it issues them
 * asynchronously to the FUSE file.
 *
 * Measured 2026-11-27 on the development machine (2 cores, kernel 6.18),
 * 64K-chunk zstd store, 4G volume, `tessera mount` + losetup
 * --direct-io=on|off + mkfs.ext4, fio io_uring direct=1 on a 1G file in the
 * ext4, caches dropped before each job, 10 s, one run:
 *
 *   job                      loop direct I/O     loop buffered
 *   4K randread  iodepth 32  33801 IOPS          20880 IOPS
 *   4K randwrite iodepth 32  16371 IOPS          11417 IOPS
 *   4K randread  iodepth 1    2530 IOPS           2179 IOPS
 *   1M read      iodepth 4     503 MiB/s           431 MiB/s
 *   1M write     iodepth 4     731 MiB/s           682 MiB/s
 */
#define LOOP_DIRECT_IO true

/* ---- the daemon -------------------------------------------------------------- */

/* The filesystem being served, for the signal handler. */
static struct tsr_fuse *volatile serving;

static void on_stop_signal(int sig)
{
	(void)sig;
	if (serving)
		tsr_fuse_exit(serving);
}

struct serve_args {
	const char *store;       /* absolute */
	const char *mountpoint;  /* absolute */
	unsigned threads;
	int report_fd;           /* daemon: told when the mount is live; -1 in foreground */
};

/* The daemon's stdio after its report: stdin from /dev/null, stdout and
 * stderr (the store's damage reports among them) appended to the log. */
static void detach_stdio(const char *store)
{
	char log[PATH_MAX];
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), fd;

	snprintf(log, sizeof(log), "%s/" MOUNT_LOG_NAME, store);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	fflush(stdout);
	fflush(stderr);
	if (null >= 0)
		dup2(null, STDIN_FILENO);
	if (fd < 0)
		fd = null;
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	if (fd >= 0 && fd != null)
		close(fd);
	if (null >= 0)
		close(null);
}

/* A time-stamped line in the daemon's log (its stderr). */
static void log_line(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
	char when[CLI_TIME_BUF];
	va_list ap;

	fprintf(stderr, "%s " CLI_PROG " mount[%d]: ",
		cli_fmt_time((uint64_t)time(NULL), when), (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* Opens the store, mounts, serves; returns the exit status.  Errors before
 * the mount is live are printed on the caller's stderr. */
static int serve(struct cli *cli, const struct serve_args *a)
{
	struct tsr_fuse_options opts = {
		.mountpoint = a->mountpoint,
		.max_threads = a->threads,
	};
	struct sigaction sa = { .sa_handler = on_stop_signal };
	struct mount_daemon rec = { .pid = getpid() };
	struct cli_control *ctl = NULL;
	struct tsr_fuse *fuse;
	sigset_t stop, old;
	int r, status = CLI_OK;
	char ok = 0;

	cli->store_dir = a->store;
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	r = tsr_fuse_mount(cli->store, &opts, &fuse);
	if (r < 0) {
		if (r == -ENOTCONN)
			cli_err("mount: %s: the mount of a dead daemon is still "
				"there and could not be cleaned", a->mountpoint);
		else
			cli_errno(r, "mount: %s", a->mountpoint);
		cli_close_store(cli);
		return CLI_FAIL;
	}
	snprintf(rec.store, sizeof(rec.store), "%s", a->store);
	snprintf(rec.mountpoint, sizeof(rec.mountpoint), "%s", a->mountpoint);
	r = mount_daemon_write(&rec);
	if (r < 0) {
		cli_errno(r, "mount: recording the daemon in " MOUNT_RUN_DIR
			  "/mounts");
		goto fail;
	}

	/* The control thread must not take the stop signals: libfuse's
	 * threads notice the exit when a signal interrupts their read. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	r = cli_control_start(a->store, cli->store, &ctl);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		cli_errno(r, "mount: the control socket of store %s", a->store);
		mount_daemon_remove(a->mountpoint, rec.pid);
		goto fail;
	}
	serving = fuse;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;  /* no SA_RESTART: interrupt the /dev/fuse reads */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	if (a->report_fd >= 0) {
		detach_stdio(a->store);
		log_line("serving store %s at %s", a->store, a->mountpoint);
		if (write(a->report_fd, &ok, 1) != 1) {
			/* The parent is gone; serve anyway, it was asked for. */
		}
		close(a->report_fd);
	} else {
		cli_printf("serving store %s at %s (pid %d); stop with Ctrl-C "
			   "or '" CLI_PROG " umount %s'\n", a->store,
			   a->mountpoint, (int)rec.pid, a->mountpoint);
		fflush(cli_out());
	}
	/* PR_SET_IO_FLUSHER is the FUSE front-end's (tsr_fuse_serve). */
	r = tsr_fuse_serve(fuse);
	if (r < 0) {
		cli_errno(r, "mount: serving %s", a->mountpoint);
		status = CLI_FAIL;
	}
	cli_control_stop(ctl);
	serving = NULL;
	tsr_fuse_destroy(fuse);  /* flushes every open volume */
	cli_close_store(cli);
	mount_daemon_remove(a->mountpoint, rec.pid);
	if (a->report_fd >= 0)
		log_line("stopped serving store %s at %s", a->store,
			 a->mountpoint);
	return status;

fail:
	tsr_fuse_destroy(fuse);
	cli_close_store(cli);
	return CLI_FAIL;
}

/*
 * Forks a daemon serving a->store at a->mountpoint and waits until its mount
 * is live.  close_fd (or -1) is closed in the child.  0 and the daemon's pid,
 * or -1 when it failed (the child printed why).
 */
static int start_daemon(struct cli *cli, struct serve_args *a, int close_fd,
			pid_t *ret_pid)
{
	int p[2], status;
	ssize_t n;
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0) {
		cli_errno(-errno, "mount: pipe");
		return -1;
	}
	fflush(cli_out());
	fflush(cli_errf());
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		cli_errno(-errno, "mount: fork");
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		if (close_fd >= 0)
			close(close_fd);
		/* Out of the caller's session (no SIGHUP, no terminal
		 * signals) and of its working directory. */
		setsid();
		if (chdir("/") < 0) {
			/* Paths are absolute; nothing depends on it. */
		}
		a->report_fd = p[1];
		status = serve(cli, a);
		fflush(NULL);
		_exit(status);
	}
	close(p[1]);
	do
		n = read(p[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == 1) {
		*ret_pid = pid;
		return 0;
	}
	waitpid(pid, &status, 0);
	return -1;
}

/* ---- plain mount ------------------------------------------------------------- */

static int check_dir(const char *what, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			cli_err("%s: %s does not exist", what, path);
		else
			cli_errno(-errno, "%s: %s", what, path);
		return CLI_FAIL;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_err("%s: %s is not a directory", what, path);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* Cleans a dead daemon's mount at path, saying so.  CLI_OK or CLI_FAIL. */
static int clean_stale(const char *what, const char *path)
{
	int r = tsr_fuse_clean_stale(path);

	if (r == 1) {
		cli_printf("%s: cleaned a stale mount at %s (its daemon had "
			   "died)\n", what, path);
		mount_daemon_remove(path, 0);
		return CLI_OK;
	}
	if (r < 0 && r != -ENOENT && r != -ENOTDIR) {
		cli_errno(r, "%s: %s: cleaning a stale mount", what, path);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* The store directory as an absolute path (the daemon leaves the working
 * directory).  A missing store is reported by cli_open_store. */
static void store_abs_path(struct cli *cli, char buf[PATH_MAX])
{
	if (!realpath(cli->store_dir, buf))
		snprintf(buf, PATH_MAX, "%s", cli->store_dir);
}

static int mount_plain(struct cli *cli, const char *arg, bool foreground,
		       unsigned threads)
{
	char mnt[PATH_MAX], store[PATH_MAX];
	struct serve_args a = { .threads = threads, .report_fd = -1 };
	struct mount_daemon rec;
	pid_t pid;
	int r;

	r = mount_abs_path(arg, mnt, sizeof(mnt));
	if (r == -ENOENT) {
		cli_err("mount: %s does not exist", arg);
		return CLI_FAIL;
	}
	if (r < 0) {
		cli_errno(r, "mount: %s", arg);
		return CLI_FAIL;
	}
	if (clean_stale("mount", mnt) != CLI_OK ||
	    check_dir("mount", mnt) != CLI_OK)
		return CLI_FAIL;
	if (mount_daemon_read(mnt, &rec) == 0) {
		if (mount_pid_alive(rec.pid)) {
			cli_err("mount: %s is already mounted by " CLI_PROG
				" (pid %d, store %s)", mnt, (int)rec.pid,
				rec.store);
			return CLI_FAIL;
		}
		mount_daemon_remove(mnt, rec.pid);
	}
	store_abs_path(cli, store);
	a.store = store;
	a.mountpoint = mnt;
	if (foreground)
		return serve(cli, &a);
	if (start_daemon(cli, &a, -1, &pid) < 0)
		return CLI_FAIL;
	cli_printf("mounted store %s at %s (daemon pid %d, log %s/"
		   MOUNT_LOG_NAME ")\n", store, mnt, (int)pid, store);
	return CLI_OK;
}

/* ---- taking mounts down ------------------------------------------------------ */

/*
 * Unmounts the FUSE filesystem at fuse_mnt and waits for its daemon to
 * flush and exit.  busy_retry: keep retrying EBUSY for a while (a loop
 * device we just released may still hold an image).  CLI_OK or CLI_FAIL.
 */
static int stop_daemon(const char *fuse_mnt, pid_t pid, int timeout_s,
		       bool busy_retry)
{
	struct mount_daemon rec;
	int waited = 0;

	if (mount_daemon_read(fuse_mnt, &rec) == 0)
		pid = rec.pid;
	for (;;) {
		if (umount2(fuse_mnt, UMOUNT_NOFOLLOW) == 0 || errno == EINVAL ||
		    errno == ENOENT)
			break;  /* EINVAL: not (or no longer) a mountpoint */
		if (errno == ENOTCONN) {
			/* Its daemon died: nothing to flush. */
			tsr_fuse_clean_stale(fuse_mnt);
			break;
		}
		if (errno != EBUSY) {
			cli_errno(-errno, "umount: %s", fuse_mnt);
			return CLI_FAIL;
		}
		if (!busy_retry || waited >= FUSE_BUSY_RETRY_MS) {
			cli_err("umount: %s is busy: an image file on it is "
				"open (see 'losetup -a' and 'fuser -vm %s')",
				fuse_mnt, fuse_mnt);
			return CLI_FAIL;
		}
		usleep(50 * 1000);
		waited += 50;
	}
	if (pid > 0 && mount_wait_pid(pid, timeout_s * 1000) < 0) {
		cli_err("umount: the daemon of %s (pid %d) has not exited %d s "
			"after the unmount; it may still be flushing", fuse_mnt,
			(int)pid, timeout_s);
		return CLI_FAIL;
	}
	mount_daemon_remove(fuse_mnt, pid);
	return CLI_OK;
}

/*
 * Takes a --rootfs stack down in the order it went up: the filesystem, the
 * loop device, the FUSE mount (unless another stack uses it) and its
 * daemon, the record.  Stops at the first step that fails, so that running
 * it again continues from there.  CLI_OK or CLI_FAIL.
 */
static int stack_down(const struct mount_stack *s, int timeout_s)
{
	int r;

	if (umount2(s->mountpoint, UMOUNT_NOFOLLOW) < 0 && errno != EINVAL &&
	    errno != ENOENT) {
		if (errno == EBUSY)
			cli_err("umount: %s is busy: a process uses files on "
				"it or has its working directory there (see "
				"'fuser -vm %s')", s->mountpoint,
				s->mountpoint);
		else
			cli_errno(-errno, "umount: %s", s->mountpoint);
		return CLI_FAIL;
	}
	r = mount_loop_detach(s->loop_dev, s->image);
	if (r < 0) {
		cli_errno(r, "umount: detaching %s", s->loop_dev);
		return CLI_FAIL;
	}
	/* Someone's `tessera mount` stays; a private one goes with its last
	 * stack. */
	if (!mount_fuse_dir_is_private(s->fuse_mnt))
		goto done;
	r = mount_stack_users(s->fuse_mnt, s->mountpoint);
	if (r < 0) {
		cli_errno(r, "umount: " MOUNT_RUN_DIR "/rootfs");
		return CLI_FAIL;
	}
	if (r == 0) {
		if (stop_daemon(s->fuse_mnt, s->daemon_pid, timeout_s, true) !=
		    CLI_OK)
			return CLI_FAIL;
		rmdir(s->fuse_mnt);
	}
done:
	r = mount_stack_remove(s->mountpoint);
	if (r < 0) {
		cli_errno(r, "umount: removing the record of %s",
			  s->mountpoint);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* ---- --rootfs ------------------------------------------------------------------ */

static bool is_regular(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_hex(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return false;
	return true;
}

/*
 * Finds a layer through the FUSE tree at fuse_mnt as tsr_layer_resolve
 * does: a name first, then a full id or a unique id prefix.  1 and the id
 * (64 hex digits), 0 when none matches, or CLI_FAIL-worthy -ENOTUNIQ with
 * the candidates in *ret_list.
 */
static int find_layer(const char *fuse_mnt, const char *spec,
		      char ret_id[TSR_ID_HEX_LEN + 1], struct cli_str *ret_list)
{
	char path[PATH_MAX], target[PATH_MAX], prefix[TSR_ID_HEX_LEN + 1];
	const char *base;
	struct dirent *e;
	ssize_t n;
	int count = 0;
	DIR *d;

	if ((size_t)snprintf(path, sizeof(path), "%s/layers/by-name/%s",
			     fuse_mnt, spec) >= sizeof(path))
		return 0;
	n = readlink(path, target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = '\0';
		base = strrchr(target, '/');
		base = base ? base + 1 : target;
		if (is_hex(base, TSR_ID_HEX_LEN, TSR_ID_HEX_LEN)) {
			memcpy(ret_id, base, TSR_ID_HEX_LEN + 1);
			return 1;
		}
	}
	if (!is_hex(spec, 4, TSR_ID_HEX_LEN))
		return 0;
	for (size_t i = 0; spec[i]; i++)
		prefix[i] = (char)tolower((unsigned char)spec[i]);
	prefix[strlen(spec)] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/layers", fuse_mnt) >=
	    sizeof(path))
		return 0;
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (!is_hex(e->d_name, TSR_ID_HEX_LEN, TSR_ID_HEX_LEN) ||
		    strncmp(e->d_name, prefix, strlen(prefix)) != 0)
			continue;
		if (count < 8) {
			char item[CLI_SHORT_ID + 8];

			snprintf(item, sizeof(item), "%s%.*s...",
				 count ? ", " : "", CLI_SHORT_ID, e->d_name);
			cli_str_add(ret_list, item);
		}
		if (count++ == 0)
			memcpy(ret_id, e->d_name, TSR_ID_HEX_LEN + 1);
	}
	closedir(d);
	if (count > 1)
		return -ENOTUNIQ;
	return count;
}

/* The top layer id of image name, through MNT/images (where '/' in a name
 * is "%2F" and '%' is "%25"): 1 and the id, or 0. */
static int find_image(const char *fuse_mnt, const char *name, char id[TSR_ID_HEX_LEN + 1])
{
	char path[PATH_MAX], target[128];
	size_t o;
	ssize_t n;

	o = (size_t)snprintf(path, sizeof(path), "%s/images/", fuse_mnt);
	for (; *name && o + 4 < sizeof(path); name++) {
		if (*name == '/' || *name == '%') {
			o += (size_t)snprintf(path + o, sizeof(path) - o, "%%%02X", *name);
		} else {
			path[o++] = *name;
		}
	}
	if (*name)
		return 0;
	path[o] = '\0';
	n = readlink(path, target, sizeof(target) - 1);
	if (n != 10 + TSR_ID_HEX_LEN)
		return 0;
	target[n] = '\0';
	if (strncmp(target, "../layers/", 10))
		return 0;
	memcpy(id, target + 10, TSR_ID_HEX_LEN + 1);
	return 1;
}

/*
 * Resolves NAME of --rootfs through the FUSE tree: an image, then a volume,
 * then a layer (DESIGN, "Names"); "image:", "volume:" and "layer:" force
 * one, and two matches without a prefix are an error naming both.  Fills
 * s->image and s->source and says whether it is read-only content (an
 * image or a layer).  CLI_OK or CLI_FAIL (printed).
 */
static int resolve_rootfs(const char *fuse_mnt, const char *spec,
			  struct mount_stack *s, bool *ret_layer)
{
	char vol_path[PATH_MAX], id[TSR_ID_HEX_LEN + 1], image_id[TSR_ID_HEX_LEN + 1];
	struct cli_str list = { 0 };
	bool want_vol = true, want_layer = true, want_image = true, vol = false;
	const char *name = spec, *kinds[3];
	int layer = 0, image = 0, found = 0;

	if (strncmp(spec, "volume:", 7) == 0) {
		name = spec + 7;
		want_layer = want_image = false;
	} else if (strncmp(spec, "layer:", 6) == 0) {
		name = spec + 6;
		want_vol = want_image = false;
	} else if (strncmp(spec, "image:", 6) == 0) {
		name = spec + 6;
		want_vol = want_layer = false;
	}
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    (strchr(name, '/') && !want_image)) {
		cli_err("mount: '%s' is not an image, volume or layer name", spec);
		return CLI_FAIL;
	}
	if (want_image)
		image = find_image(fuse_mnt, name, image_id);
	if (!strchr(name, '/')) {
		if ((size_t)snprintf(vol_path, sizeof(vol_path), "%s/volumes/%s",
				     fuse_mnt, name) >= sizeof(vol_path)) {
			cli_err("mount: '%s': the name is too long", spec);
			return CLI_FAIL;
		}
		if (want_vol)
			vol = is_regular(vol_path);
		if (want_layer)
			layer = find_layer(fuse_mnt, name, id, &list);
	}
	if (layer == -ENOTUNIQ && !vol && !image) {
		cli_err("mount: layer '%s': ambiguous, matches %s", name,
			cli_str_get(&list, "more than one layer"));
		cli_str_free(&list);
		return CLI_FAIL;
	}
	cli_str_free(&list);
	if (image)
		kinds[found++] = "image";
	if (vol)
		kinds[found++] = "volume";
	if (layer == 1)
		kinds[found++] = "layer";
	if (found > 1) {
		cli_err("mount: '%s' names both %s '%s' and %s '%s'; say %s:%s or %s:%s", spec,
			kinds[0], name, kinds[1], name, kinds[0], name, kinds[1], name);
		return CLI_FAIL;
	}
	if (image) {
		if ((size_t)snprintf(s->image, sizeof(s->image), "%s/layers/%s", fuse_mnt,
				     image_id) >= sizeof(s->image))
			return CLI_FAIL;
		snprintf(s->source, sizeof(s->source), "image:%.300s", name);
		*ret_layer = true;
		return CLI_OK;
	}
	if (vol) {
		snprintf(s->image, sizeof(s->image), "%s", vol_path);
		snprintf(s->source, sizeof(s->source), "volume:%s", name);
		*ret_layer = false;
		return CLI_OK;
	}
	if (layer == 1) {
		if ((size_t)snprintf(s->image, sizeof(s->image), "%s/layers/%s",
				     fuse_mnt, id) >= sizeof(s->image))
			return CLI_FAIL;
		snprintf(s->source, sizeof(s->source), "layer:%s", id);
		*ret_layer = true;
		return CLI_OK;
	}
	if (!want_layer && !want_image)
		cli_err("mount: volume '%s': no such volume", name);
	else if (!want_vol && !want_image)
		cli_err("mount: layer '%s': no such layer", name);
	else if (!want_vol && !want_layer)
		cli_err("mount: image '%s': no such image", name);
	else
		cli_err("mount: '%s': no such image, volume or layer", name);
	return CLI_FAIL;
}

static bool is_fuse_mount(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC;
}

/* Checks what the loop device holds: CLI_OK and its type, or CLI_FAIL. */
static int detect_fs(const char *spec, const char *dev, struct tsr_fs_info *fs)
{
	int r = tsr_volume_fs_detect(dev, fs);

	switch (r) {
	case 0:
		break;
	case -ENOMEDIUM:
		cli_err("mount: %s holds no filesystem", spec);
		return CLI_FAIL;
	case -ENOTUNIQ:
		cli_err("mount: %s holds more than one filesystem signature "
			"(see 'wipefs %s')", spec, dev);
		return CLI_FAIL;
	default:
		cli_errno(r, "mount: %s: probing %s", spec, dev);
		return CLI_FAIL;
	}
	if (strcmp(fs->usage, "filesystem") != 0) {
		cli_err("mount: %s holds %s (%s), not a filesystem", spec,
			fs->type, fs->usage);
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int mount_rootfs(struct cli *cli, const char *spec, const char *arg,
			bool rw, unsigned threads)
{
	struct serve_args a = { .threads = threads, .report_fd = -1 };
	struct mount_stack s = { 0 }, old;
	struct mount_daemon rec;
	struct tsr_fs_info fs;
	bool started = false, layer = false, mounted = false, dio = false;
	int lock, loop_fd = -1, r, status = CLI_FAIL;

	r = mount_abs_path(arg, s.mountpoint, sizeof(s.mountpoint));
	if (r == -ENOENT) {
		cli_err("mount: %s does not exist", arg);
		return CLI_FAIL;
	}
	if (r < 0) {
		cli_errno(r, "mount: %s", arg);
		return CLI_FAIL;
	}
	if (check_dir("mount", s.mountpoint) != CLI_OK)
		return CLI_FAIL;
	store_abs_path(cli, s.store);
	lock = mount_stack_lock();
	if (lock < 0) {
		cli_errno(lock, "mount: " MOUNT_RUN_DIR);
		return CLI_FAIL;
	}
	if (mount_stack_read(s.mountpoint, &old) == 0) {
		cli_err("mount: %s already has a rootfs mounted (%s); '" CLI_PROG
			" umount %s' first", s.mountpoint, old.source,
			s.mountpoint);
		goto out;
	}
	/* 1. The store's FUSE daemon: the one serving it already (on the
	 * private mountpoint, or a `tessera mount` of the store elsewhere),
	 * or a new one on the private mountpoint. */
	if (mount_daemon_find(s.store, &rec) == 0 &&
	    is_fuse_mount(rec.mountpoint)) {
		snprintf(s.fuse_mnt, sizeof(s.fuse_mnt), "%s", rec.mountpoint);
		s.daemon_pid = rec.pid;
	} else {
		r = mount_fuse_dir(s.store, s.fuse_mnt, sizeof(s.fuse_mnt));
		if (r < 0) {
			cli_errno(r, "mount: " MOUNT_RUN_DIR "/fuse");
			goto out;
		}
		if (clean_stale("mount", s.fuse_mnt) != CLI_OK)
			goto out;
		a.store = s.store;
		a.mountpoint = s.fuse_mnt;
		if (start_daemon(cli, &a, lock, &s.daemon_pid) < 0) {
			rmdir(s.fuse_mnt);
			goto out;
		}
		started = true;
	}

	/* 2. The image, on a loop device. */
	if (resolve_rootfs(s.fuse_mnt, spec, &s, &layer) != CLI_OK)
		goto undo;
	if (rw && layer) {
		cli_err("mount: %s is a layer, which is read-only; --rw needs a "
			"volume (" CLI_PROG " volume create NAME --parent %s)",
			spec, s.source + 6);
		goto undo;
	}
	s.read_only = layer || !rw;
	r = mount_loop_attach(s.image, s.read_only, LOOP_DIRECT_IO,
			      s.loop_dev, sizeof(s.loop_dev), &loop_fd, &dio);
	if (r < 0) {
		cli_errno(r, "mount: attaching %s to a loop device", s.image);
		goto undo;
	}
	s.direct_io = dio;

	/* 3. Its filesystem. */
	if (detect_fs(spec, s.loop_dev, &fs) != CLI_OK)
		goto undo;
	snprintf(s.fs_type, sizeof(s.fs_type), "%s", fs.type);
	r = mount_fs(s.loop_dev, s.mountpoint, s.fs_type, s.read_only);
	if (r < 0) {
		cli_errno(r, "mount: mounting %s (%s on %s) at %s (see dmesg)",
			  spec, s.fs_type, s.loop_dev, s.mountpoint);
		goto undo;
	}
	mounted = true;
	/* The mount holds the device now: autoclear frees it at umount. */
	close(loop_fd);
	loop_fd = -1;

	/* 4. The record `tessera umount` works from. */
	r = mount_stack_write(&s);
	if (r < 0) {
		cli_errno(r, "mount: recording the stack in " MOUNT_RUN_DIR
			  "/rootfs");
		goto undo;
	}
	cli_printf("mounted %s (%s, %s) at %s: %s%s over %s\n", s.source,
		   s.fs_type, s.read_only ? "read-only" : "read-write",
		   s.mountpoint, s.loop_dev, s.direct_io ? " (direct I/O)" : "",
		   s.image);
	status = CLI_OK;
	goto out;

undo:
	/* In reverse order; each step's error was printed already. */
	if (mounted && umount2(s.mountpoint, UMOUNT_NOFOLLOW) < 0)
		cli_errno(-errno, "mount: undo: unmounting %s", s.mountpoint);
	if (loop_fd >= 0 || mounted)
		mount_loop_detach(s.loop_dev, s.image);
	if (loop_fd >= 0)
		close(loop_fd);  /* the last opener: autoclear detaches */
	if (started) {
		stop_daemon(s.fuse_mnt, s.daemon_pid, UMOUNT_TIMEOUT_DEFAULT,
			    true);
		rmdir(s.fuse_mnt);
	}
out:
	close(lock);
	return status;
}

/* ---- commands ------------------------------------------------------------------ */

static int run_mount(struct cli *cli, const struct cli_cmd *cmd, int argc,
		     char **argv)
{
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "threads", required_argument, NULL, 't' },
		{ "rootfs", required_argument, NULL, 'r' },
		{ "rw", no_argument, NULL, 'w' },
		CLI_LONGOPT_END,
	};
	const char *rootfs = NULL;
	bool foreground = false, rw = false;
	unsigned threads = 0;
	char *end;
	long v;
	int c;

	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "ft:", longopts, first);
		if (c == CLI_OPT_END)
			break;
		switch (c) {
		case 'f':
			foreground = true;
			break;
		case 't':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 1 || v > 1024)
				return cli_usage_err(cmd, "--threads must be a "
						     "number from 1 to 1024, "
						     "not '%s'", optarg);
			threads = (unsigned)v;
			break;
		case 'r':
			rootfs = optarg;
			break;
		case 'w':
			rw = true;
			break;
		default:
			return cli_opt_status(c);
		}
	}
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	if (rw && !rootfs)
		return cli_usage_err(cmd, "--rw goes with --rootfs");
	if (foreground && rootfs)
		return cli_usage_err(cmd, "--foreground does not go with "
				     "--rootfs");
	if (rootfs)
		return mount_rootfs(cli, rootfs, argv[optind], rw, threads);
	return mount_plain(cli, argv[optind], foreground, threads);
}

static int run_umount(struct cli *cli, const struct cli_cmd *cmd, int argc,
		      char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 'T' },
		CLI_LONGOPT_END,
	};
	int timeout = UMOUNT_TIMEOUT_DEFAULT, c, r, lock, status;
	struct mount_daemon rec;
	struct mount_stack s;
	char mnt[PATH_MAX], *end;
	long v;

	(void)cli;
	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "", longopts, first);
		if (c == CLI_OPT_END)
			break;
		if (c != 'T')
			return cli_opt_status(c);
		errno = 0;
		v = strtol(optarg, &end, 10);
		if (errno || end == optarg || *end || v < 1 || v > 86400)
			return cli_usage_err(cmd, "--timeout must be a number "
					     "of seconds from 1 to 86400, not "
					     "'%s'", optarg);
		timeout = (int)v;
	}
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	r = mount_abs_path(argv[optind], mnt, sizeof(mnt));
	if (r == -ENOENT) {
		cli_err("umount: %s does not exist", argv[optind]);
		return CLI_FAIL;
	}
	if (r < 0) {
		cli_errno(r, "umount: %s", argv[optind]);
		return CLI_FAIL;
	}

	/* A --rootfs stack. */
	r = mount_stack_read(mnt, &s);
	if (r == 0 || (r < 0 && r != -ENOENT)) {
		if (r < 0) {
			cli_errno(r, "umount: the record of %s", mnt);
			return CLI_FAIL;
		}
		lock = mount_stack_lock();
		if (lock < 0) {
			cli_errno(lock, "umount: " MOUNT_RUN_DIR);
			return CLI_FAIL;
		}
		/* Read again under the lock: it may have gone meanwhile. */
		r = mount_stack_read(mnt, &s);
		status = r == 0 ? stack_down(&s, timeout) : CLI_OK;
		close(lock);
		return status;
	}

	/* A plain FUSE mount. */
	if (mount_daemon_read(mnt, &rec) == 0) {
		if (!mount_pid_alive(rec.pid)) {
			tsr_fuse_clean_stale(mnt);
			umount2(mnt, UMOUNT_NOFOLLOW);
			mount_daemon_remove(mnt, rec.pid);
			cli_printf("umount: cleaned %s (its daemon, pid %d, had "
				   "died)\n", mnt, (int)rec.pid);
			return CLI_OK;
		}
		return stop_daemon(mnt, rec.pid, timeout, false);
	}
	r = tsr_fuse_clean_stale(mnt);
	if (r == 1) {
		cli_printf("umount: cleaned a stale mount at %s (its daemon had "
			   "died)\n", mnt);
		return CLI_OK;
	}
	cli_err("umount: %s is not mounted by " CLI_PROG, mnt);
	return CLI_FAIL;
}

const struct cli_cmd cli_cmd_mount = {
	.name = "mount",
	.path = "mount",
	.args = "MNT [-f] [--threads N] | --rootfs NAME MNT [--rw]",
	.summary = "Serves the store over FUSE at MNT (volumes and layers as "
		   "raw disk images), or mounts the filesystem of a volume or "
		   "layer at MNT.",
	.details =
		"tessera mount MNT\n"
		"  MNT/volumes/NAME are read-write raw images of the volumes, "
		"MNT/layers/ID\n"
		"  read-only ones of the layers (MNT/layers/by-name/NAME links "
		"to them).  The\n"
		"  daemon owns the store while it runs; other tessera commands "
		"are run by it.\n"
		"  Without -f it runs in the background once the mount is "
		"live, with its\n"
		"  output (and any damage the store reports) appended to "
		"STORE/" MOUNT_LOG_NAME ".\n"
		"  A mount left by a killed daemon is cleaned first.\n"
		"\n"
		"tessera mount --rootfs NAME MNT\n"
		"  Serves the store on a private FUSE mount under "
		MOUNT_RUN_DIR "/fuse (shared\n"
		"  by every rootfs of the store), attaches the image to a loop "
		"device and mounts\n"
		"  the filesystem on it (ext4, xfs, or any the kernel knows) at "
		"MNT.  NAME is a\n"
		"  volume, else a layer (name, full id or unique id prefix); "
		"'volume:NAME' or\n"
		"  'layer:NAME' forces one.  Layers are mounted read-only, "
		"without replaying a\n"
		"  journal; volumes read-only unless --rw.  'tessera umount "
		"MNT' takes it down.\n"
		"\n"
		"Options:\n"
		"  -f, --foreground   stay in the foreground; Ctrl-C (SIGINT) "
		"or SIGTERM unmounts\n"
		"  -t, --threads N    FUSE request threads (default: the FUSE "
		"front-end's)\n"
		"  --rootfs NAME      mount the filesystem of volume or layer "
		"NAME at MNT\n"
		"  --rw               with --rootfs on a volume: mount it "
		"read-write\n",
	.run = run_mount,
	.local = true,
};

const struct cli_cmd cli_cmd_umount = {
	.name = "umount",
	.path = "umount",
	.args = "MNT [--timeout SECS]",
	.summary = "Unmounts what 'tessera mount' mounted at MNT, flushing "
		   "everything, and waits for its daemon to exit.",
	.details =
		"A --rootfs mount is taken down in order: the filesystem, the "
		"loop device, the\nFUSE mount (unless another rootfs of the "
		"store uses it) and its daemon.  If a\nstep fails (busy), the "
		"steps after it are not taken; run it again later.\n"
		"\nOptions:\n"
		"  --timeout SECS   how long the daemon may take to flush and "
		"exit (default 120)\n",
	.run = run_umount,
	.local = true,
};

/* ---- filesystem lines of volume stat / layer stat ------------------------------ */

static int read_volume(void *arg, void *buf, size_t len, uint64_t off)
{
	return tsr_volume_read(arg, buf, len, off);
}

static int read_layer(void *arg, void *buf, size_t len, uint64_t off)
{
	return tsr_layer_read(arg, buf, len, off);
}

static int print_fs(int width, const char *what, int r,
		    const struct tsr_fs_info *fs)
{
	const char *type = "-", *uuid = "-", *label = "-";
	char buf[64];

	if (r == 0) {
		type = fs->type;
		if (strcmp(fs->usage, "filesystem") != 0) {
			snprintf(buf, sizeof(buf), "%s (%s)", fs->type,
				 fs->usage);
			type = buf;
		}
		uuid = fs->uuid[0] ? fs->uuid : "-";
		label = fs->label[0] ? fs->label : "-";
	} else if (r == -ENOTUNIQ) {
		type = "ambiguous (more than one signature)";
	} else if (r != -ENOMEDIUM) {
		type = "?";
	}
	cli_printf("%-*s %s\n", width, "filesystem:", type);
	cli_printf("%-*s %s\n", width, "fs uuid:", uuid);
	cli_printf("%-*s %s\n", width, "fs label:", label);
	if (r < 0 && r != -ENOMEDIUM && r != -ENOTUNIQ) {
		cli_errno(r, "%s: probing its filesystem", what);
		return CLI_FAIL;
	}
	return CLI_OK;
}

int cli_print_volume_fs(struct cli *cli, const char *name, int width)
{
	struct tsr_volume *vol;
	struct tsr_fs_info fs;
	char what[TSR_NAME_MAX + 16];
	int r = tsr_volume_open(cli->store, name, &vol);

	snprintf(what, sizeof(what), "volume '%s'", name);
	if (r == 0) {
		r = tsr_volume_fs_detect_read(tsr_volume_size(vol), read_volume,
					      vol, &fs);
		tsr_volume_close(vol);
	}
	return print_fs(width, what, r, &fs);
}

int cli_print_layer_fs(struct cli *cli, const struct tsr_layer_id *id,
		       int width)
{
	struct tsr_layer *layer;
	struct tsr_fs_info fs;
	char what[TSR_ID_HEX_LEN + 16], hex[TSR_ID_HEX_LEN + 1];
	int r = tsr_layer_open(cli->store, id, &layer);

	snprintf(what, sizeof(what), "layer %s", cli_fmt_short_id(id, hex));
	if (r == 0) {
		r = tsr_volume_fs_detect_read(tsr_layer_size(layer), read_layer,
					      layer, &fs);
		tsr_layer_close(layer);
	}
	return print_fs(width, what, r, &fs);
}
