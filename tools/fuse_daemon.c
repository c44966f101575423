/* SPDX-License-Identifier: MIT */
/*
 * The store's FUSE daemon of `tessera mount` and `tessera mount --rootfs`,
 * on the daemon skeleton (<tessera/daemon.h>).
 *
 * A mount daemon is this process, forked: the child opens the store, mounts,
 * records itself (<tessera/mount_stack.h>), tells the parent that the mount is live,
 * and serves until the filesystem is unmounted or it gets SIGINT/SIGTERM;
 * then it flushes everything (tsr_fuse_destroy) and closes the store.
 * Until the report the child prints its errors on the caller's stderr, so a
 * failed mount says why and exits 1.  The daemon also serves the store's
 * control socket, so that other `tessera` commands work while it owns the
 * store.
 */
#include "fuse_daemon.h"
#include <tessera/mount_stack.h>

#include <tessera/daemon.h>
#include <tessera/fuse_server.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUSE_BUSY_RETRY_MS 5000     /* a loop device's autoclear may lag */

/* ---- the daemon -------------------------------------------------------------- */

static int fuse_serve(void *fuse)
{
	/* PR_SET_IO_FLUSHER is the FUSE front-end's (tsr_fuse_serve). */
	return tsr_fuse_serve(fuse);
}

static void fuse_exit(void *fuse)
{
	tsr_fuse_exit(fuse);
}

/* Serves until the end (*ret_served once it served); the caller takes the
 * mount down.  The mount and its record are up, the store open. */
static int serve_mounted(struct cli *cli, const struct serve_args *a,
			 struct tsr_daemon *d, struct tsr_fuse *fuse,
			 bool *ret_served)
{
	char log[PATH_MAX];
	int r;

	r = tsr_daemon_control_start(d, a->store, cli_control_run, cli);
	if (r < 0) {
		cli_errno(r, "mount: the control socket of store %s", a->store);
		return CLI_FAIL;
	}
	/* The mount is live: requests queue until the loop runs. */
	*ret_served = true;
	if (a->report_fd >= 0) {
		snprintf(log, sizeof(log), "%s/" MOUNT_LOG_NAME, a->store);
		tsr_daemon_detach_stdio(log);
		tsr_daemon_log(d, "serving store %s at %s", a->store,
			       a->mountpoint);
		tsr_daemon_report_ready(a->report_fd);
	} else {
		cli_printf("serving store %s at %s (pid %d); stop with Ctrl-C "
			   "or '" CLI_PROG " umount %s'\n", a->store,
			   a->mountpoint, (int)getpid(), a->mountpoint);
		fflush(cli_out());
	}
	r = tsr_daemon_serve(d, fuse_serve, fuse_exit, fuse);
	if (r < 0) {
		cli_errno(r, "mount: serving %s", a->mountpoint);
		return CLI_FAIL;
	}
	return CLI_OK;
}

int cli_mount_serve(struct cli *cli, const struct serve_args *a)
{
	struct tsr_fuse_options opts = {
		.mountpoint = a->mountpoint,
		.max_threads = a->threads,
	};
	struct tsr_mount_daemon rec = { .pid = getpid() };
	struct tsr_daemon *d;
	struct tsr_fuse *fuse;
	bool served = false;
	int r, status = CLI_FAIL;

	/* First: no thread (the store's neither) may take the stop signals. */
	r = tsr_daemon_new(CLI_PROG " mount", &d);
	if (r < 0) {
		cli_errno(r, "mount: starting the daemon");
		return CLI_FAIL;
	}
	cli->store_dir = a->store;
	if (cli_open_store(cli) != CLI_OK)
		goto out;
	r = tsr_fuse_mount(cli->store, &opts, &fuse);
	if (r < 0) {
		if (r == -ENOTCONN)
			cli_err("mount: %s: the mount of a dead daemon is still "
				"there and could not be cleaned", a->mountpoint);
		else
			cli_errno(r, "mount: %s", a->mountpoint);
		goto out;
	}
	snprintf(rec.store, sizeof(rec.store), "%s", a->store);
	snprintf(rec.mountpoint, sizeof(rec.mountpoint), "%s", a->mountpoint);
	r = tsr_mount_daemon_write(&rec);
	if (r < 0) {
		cli_errno(r, "mount: recording the daemon in " TSR_MOUNT_RUN_DIR
			  "/mounts");
		tsr_fuse_destroy(fuse);
		goto out;
	}
	status = serve_mounted(cli, a, d, fuse, &served);
	/* Before the store closes: no forwarded command runs on. */
	tsr_daemon_control_stop(d);
	tsr_fuse_destroy(fuse);  /* flushes every open volume */
	cli_close_store(cli);
	tsr_mount_daemon_remove(a->mountpoint, rec.pid);
	if (served && a->report_fd >= 0)
		tsr_daemon_log(d, "stopped serving store %s at %s", a->store,
			       a->mountpoint);
out:
	cli_close_store(cli);
	tsr_daemon_free(d);
	return status;
}

struct spawn_args {
	struct cli *cli;
	struct serve_args *a;
};

static int daemon_main(void *arg, int ready_fd)
{
	struct spawn_args *s = arg;

	s->a->report_fd = ready_fd;
	return cli_mount_serve(s->cli, s->a);
}

int cli_mount_start_daemon(struct cli *cli, struct serve_args *a, int close_fd,
			   pid_t *ret_pid)
{
	struct spawn_args s = { .cli = cli, .a = a };
	int r = tsr_daemon_spawn(daemon_main, &s, close_fd, ret_pid);

	if (r == -ECHILD)
		return CLI_FAIL;  /* the daemon said why */
	if (r < 0) {
		cli_errno(r, "mount: starting the daemon");
		return CLI_FAIL;
	}
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
	struct tsr_mount_daemon rec;
	int r;

	if (tsr_mount_daemon_read(fuse_mnt, &rec) == 0)
		pid = rec.pid;
	r = tsr_mount_unmount(fuse_mnt, busy_retry ? FUSE_BUSY_RETRY_MS : 0);
	if (r == -ENOTCONN) {
		/* Its daemon died: nothing to flush. */
		tsr_fuse_clean_stale(fuse_mnt);
	} else if (r == -EBUSY) {
		cli_err("umount: %s is busy: an image file on it is "
			"open (see 'losetup -a' and 'fuser -vm %s')",
			fuse_mnt, fuse_mnt);
		return CLI_FAIL;
	} else if (r < 0) {
		cli_errno(r, "umount: %s", fuse_mnt);
		return CLI_FAIL;
	}
	if (pid > 0 && tsr_mount_wait_pid(pid, timeout_s * 1000) < 0) {
		cli_err("umount: the daemon of %s (pid %d) has not exited %d s "
			"after the unmount; it may still be flushing", fuse_mnt,
			(int)pid, timeout_s);
		return CLI_FAIL;
	}
	tsr_mount_daemon_remove(fuse_mnt, pid);
	return CLI_OK;
}

/* ---- before a mount ------------------------------------------------------- */

int cli_mount_abs_path(const char *what, const char *arg, char buf[PATH_MAX])
{
	int r = tsr_mount_abs_path(arg, buf, PATH_MAX);

	if (r == -ENOENT) {
		cli_err("%s: %s does not exist", what, arg);
		return CLI_FAIL;
	}
	if (r < 0) {
		cli_errno(r, "%s: %s", what, arg);
		return CLI_FAIL;
	}
	return CLI_OK;
}

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
		tsr_mount_daemon_remove(path, 0);
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

