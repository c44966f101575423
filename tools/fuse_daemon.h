/* SPDX-License-Identifier: MIT */
/*
 * What cmd_mount.c (the plain FUSE mount, its daemon, the command table)
 * and cmd_rootfs.c (the --rootfs stack) share.  Private to those two
 * files.  Functions print their errors (cli_err) and return CLI_OK or
 * CLI_FAIL unless they say otherwise.
 */
#ifndef TESSERA_CMD_MOUNT_H
#define TESSERA_CMD_MOUNT_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cli.h"
#include "mount_stack.h"

#define UMOUNT_TIMEOUT_DEFAULT 120  /* seconds a daemon gets to flush and exit */

/* ---- cmd_mount.c --------------------------------------------------------- */

struct serve_args {
	const char *store;       /* absolute */
	const char *mountpoint;  /* absolute */
	unsigned threads;
	int report_fd;           /* daemon: told when the mount is live; -1 in foreground */
};

/* Forks a daemon serving a->store at a->mountpoint and waits until its
 * mount is live.  close_fd (or -1) is closed in the child.  0 and the
 * daemon's pid, or -1 when it failed (the child printed why). */
int cli_mount_start_daemon(struct cli *cli, struct serve_args *a, int close_fd,
			   pid_t *ret_pid);
/* path exists and is a directory; what prefixes the message. */
int cli_mount_check_dir(const char *what, const char *path);
/* Cleans a dead daemon's mount at path, saying so. */
int cli_mount_clean_stale(const char *what, const char *path);
/* The store directory as an absolute path (the daemon leaves the working
 * directory).  A missing store is reported by cli_open_store. */
void cli_mount_store_path(struct cli *cli, char buf[PATH_MAX]);
/* Unmounts the FUSE filesystem at fuse_mnt and waits for its daemon to
 * flush and exit; busy_retry: keep retrying EBUSY for a while. */
int cli_mount_stop_daemon(const char *fuse_mnt, pid_t pid, int timeout_s,
			  bool busy_retry);

/* ---- cmd_rootfs.c -------------------------------------------------------- */

/* `tessera mount --rootfs spec arg [--rw]`: puts the stack up. */
int cli_rootfs_up(struct cli *cli, const char *spec, const char *arg, bool rw,
		  unsigned threads);
/* Takes the stack s down in the order it went up (`tessera umount`). */
int cli_rootfs_down(const struct mount_stack *s, int timeout_s);

#endif /* TESSERA_CMD_MOUNT_H */
