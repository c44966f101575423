/* SPDX-License-Identifier: MIT */
/*
 * tessera mount, tessera umount: the command table, serving a store over
 * FUSE (the plain mount and its daemon), and unmounting.  The --rootfs
 * stack on top of it (name resolution, loop device, filesystem mount) is
 * cmd_rootfs.c; cmd_mount.h is what the two share.
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
#include "cmd_mount.h"
#include "mount_stack.h"

#include <tessera/fuse_server.h>
#include <tessera/volume_fs.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MOUNT_LOG_NAME "tessera-mount.log"
#define FUSE_BUSY_RETRY_MS 5000     /* a loop device's autoclear may lag */

/* ---- the daemon -------------------------------------------------------------- */

/* The filesystem being served, for the signal handler. */
static struct tsr_fuse *volatile serving;

static void on_stop_signal(int sig)
{
	(void)sig;
	if (serving)
		tsr_fuse_exit(serving);
}

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
int cli_mount_start_daemon(struct cli *cli, struct serve_args *a, int close_fd,
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

int cli_mount_check_dir(const char *what, const char *path)
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
int cli_mount_clean_stale(const char *what, const char *path)
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
void cli_mount_store_path(struct cli *cli, char buf[PATH_MAX])
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
	if (cli_mount_clean_stale("mount", mnt) != CLI_OK ||
	    cli_mount_check_dir("mount", mnt) != CLI_OK)
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
	cli_mount_store_path(cli, store);
	a.store = store;
	a.mountpoint = mnt;
	if (foreground)
		return serve(cli, &a);
	if (cli_mount_start_daemon(cli, &a, -1, &pid) < 0)
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
int cli_mount_stop_daemon(const char *fuse_mnt, pid_t pid, int timeout_s,
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
		return cli_rootfs_up(cli, rootfs, argv[optind], rw, threads);
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
		status = r == 0 ? cli_rootfs_down(&s, timeout) : CLI_OK;
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
		return cli_mount_stop_daemon(mnt, rec.pid, timeout, false);
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
	} else if (r == TSR_ERR_AMBIGUOUS) {
		type = "ambiguous (more than one signature)";
	} else if (r != -ENOMEDIUM) {
		type = "?";
	}
	cli_printf("%-*s %s\n", width, "filesystem:", type);
	cli_printf("%-*s %s\n", width, "fs uuid:", uuid);
	cli_printf("%-*s %s\n", width, "fs label:", label);
	if (r < 0 && r != -ENOMEDIUM && r != TSR_ERR_AMBIGUOUS) {
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
