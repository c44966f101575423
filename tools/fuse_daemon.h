/* SPDX-License-Identifier: MIT */
/*
 * The store's FUSE daemon as `tessera mount` and `tessera mount --rootfs`
 * run it (fuse_daemon.c): serving in the foreground or in the background,
 * stopping it, and the checks before a mount.  Used by cmd_mount.c and
 * cmd_rootfs.c.  Every function prints its errors (cli_err) and returns
 * CLI_OK or CLI_FAIL.
 */
#ifndef TESSERA_FUSE_DAEMON_H
#define TESSERA_FUSE_DAEMON_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include <tessera/mount_stack.h>

#include "cli.h"

#define MOUNT_LOG_NAME "tessera-mount.log"  /* in the store: a daemon's log */
#define UMOUNT_TIMEOUT_DEFAULT 120  /* seconds a daemon gets to flush and exit */

struct serve_args {
	const char *store;       /* absolute */
	const char *mountpoint;  /* absolute */
	unsigned threads;
	int report_fd;           /* daemon: told when the mount is live; -1 in foreground */
};

/* Serves a->store at a->mountpoint in this process until the filesystem is
 * unmounted or SIGINT/SIGTERM arrives; then flushes everything.  Errors
 * before the mount is live go to the caller's stderr. */
int cli_mount_serve(struct cli *cli, const struct serve_args *a);
/* Forks a daemon serving a->store at a->mountpoint and waits until its
 * mount is live: *ret_pid.  close_fd (or -1) is closed in the child. */
int cli_mount_start_daemon(struct cli *cli, struct serve_args *a, int close_fd,
			   pid_t *ret_pid);
/* arg as an absolute path (tsr_mount_abs_path) in buf; what prefixes the
 * message. */
int cli_mount_abs_path(const char *what, const char *arg, char buf[PATH_MAX]);
/* Unmounts the FUSE filesystem at fuse_mnt and waits for its daemon to
 * flush and exit; busy_retry: keep retrying EBUSY for a while. */
int cli_mount_stop_daemon(const char *fuse_mnt, pid_t pid, int timeout_s,
			  bool busy_retry);

/* path exists and is a directory; what prefixes the message. */
int cli_mount_check_dir(const char *what, const char *path);
/* Cleans a dead daemon's mount at path, saying so. */
int cli_mount_clean_stale(const char *what, const char *path);
/* The store directory as an absolute path (the daemon leaves the working
 * directory).  Cannot fail: a missing store is reported by cli_open_store,
 * so buf is then the path as given. */
void cli_mount_store_path(struct cli *cli, char buf[PATH_MAX]);

#endif /* TESSERA_FUSE_DAEMON_H */
