/* SPDX-License-Identifier: MIT */
/*
 * tessera mount, tessera umount: the command table, the plain FUSE mount,
 * and unmounting.  The FUSE daemon both kinds of mount run is
 * fuse_daemon.c; the --rootfs stack on top of it (name resolution, loop
 * device, filesystem mount) is cmd_rootfs.c.
 *
 * Both commands run locally (never forwarded to a daemon): they are about
 * owning the store, or do not use it.
 */
#include "cli.h"
#include "cmd_rootfs.h"
#include "fuse_daemon.h"

#include <tessera/fuse_server.h>
#include <tessera/mount_stack.h>
#include <tessera/volume_fs.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- plain mount ------------------------------------------------------------- */

static int mount_plain(struct cli *cli, const char *arg, bool foreground,
		       unsigned threads)
{
	char mnt[PATH_MAX], store[PATH_MAX];
	struct serve_args a = { .threads = threads, .report_fd = -1 };
	struct tsr_mount_daemon rec;
	pid_t pid;

	if (cli_mount_abs_path("mount", arg, mnt) != CLI_OK)
		return CLI_FAIL;
	if (cli_mount_clean_stale("mount", mnt) != CLI_OK ||
	    cli_mount_check_dir("mount", mnt) != CLI_OK)
		return CLI_FAIL;
	if (tsr_mount_daemon_read(mnt, &rec) == 0) {
		if (tsr_mount_pid_alive(rec.pid)) {
			cli_err("mount: %s is already mounted by " CLI_PROG
				" (pid %d, store %s)", mnt, (int)rec.pid,
				rec.store);
			return CLI_FAIL;
		}
		tsr_mount_daemon_remove(mnt, rec.pid);
	}
	cli_mount_store_path(cli, store);
	a.store = store;
	a.mountpoint = mnt;
	if (foreground)
		return cli_mount_serve(cli, &a);
	if (cli_mount_start_daemon(cli, &a, -1, &pid) != CLI_OK)
		return CLI_FAIL;
	cli_printf("mounted store %s at %s (daemon pid %d, log %s/"
		   MOUNT_LOG_NAME ")\n", store, mnt, (int)pid, store);
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
		{ "suid-dev", no_argument, NULL, 'S' },
		{ "any-fs", no_argument, NULL, 'A' },
		CLI_LONGOPT_END,
	};
	const char *rootfs = NULL;
	bool foreground = false, rw = false;
	unsigned threads = 0, mount_flags = 0;
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
		case 'S':
			mount_flags |= TSR_MOUNT_SUID_DEV;
			break;
		case 'A':
			mount_flags |= TSR_MOUNT_ANY_FS;
			break;
		default:
			return cli_opt_status(c);
		}
	}
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	if ((rw || mount_flags) && !rootfs)
		return cli_usage_err(cmd, "%s goes with --rootfs",
				     rw ? "--rw" : mount_flags & TSR_MOUNT_SUID_DEV ?
				     "--suid-dev" : "--any-fs");
	if (foreground && rootfs)
		return cli_usage_err(cmd, "--foreground does not go with "
				     "--rootfs");
	if (rootfs)
		return cli_rootfs_up(cli, rootfs, argv[optind], rw, mount_flags, threads);
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
	struct tsr_mount_daemon rec;
	struct tsr_mount_stack s;
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
	if (cli_mount_abs_path("umount", argv[optind], mnt) != CLI_OK)
		return CLI_FAIL;

	/* A --rootfs stack. */
	r = tsr_mount_stack_read(mnt, &s);
	if (r == 0 || (r < 0 && r != -ENOENT)) {
		if (r < 0) {
			cli_errno(r, "umount: the record of %s", mnt);
			return CLI_FAIL;
		}
		lock = tsr_mount_stack_lock();
		if (lock < 0) {
			cli_errno(lock, "umount: " TSR_MOUNT_RUN_DIR);
			return CLI_FAIL;
		}
		/* Read again under the lock: it may have gone meanwhile. */
		r = tsr_mount_stack_read(mnt, &s);
		status = r == 0 ? cli_rootfs_down(&s, timeout) : CLI_OK;
		close(lock);
		return status;
	}

	/* A plain FUSE mount. */
	if (tsr_mount_daemon_read(mnt, &rec) == 0) {
		if (!tsr_mount_pid_alive(rec.pid)) {
			tsr_fuse_clean_stale(mnt);
			tsr_mount_unmount(mnt, 0);
			tsr_mount_daemon_remove(mnt, rec.pid);
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
	.args = "MNT [-f] [--threads N] | --rootfs NAME MNT [--rw] [--suid-dev] "
		"[--any-fs]",
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
		TSR_MOUNT_RUN_DIR "/fuse (shared\n"
		"  by every rootfs of the store), attaches the image to a loop "
		"device and mounts\n"
		"  the filesystem on it (ext4 or xfs) at MNT, nosuid,nodev.  "
		"NAME is an\n"
		"  image, else a volume, else a layer (name, full id or unique "
		"id prefix);\n"
		"  'image:NAME', 'volume:NAME' or 'layer:NAME' forces one; a "
		"NAME of two kinds\n"
		"  needs the prefix.  Images and layers are mounted read-only, "
		"without replaying\n"
		"  a journal; volumes read-only unless --rw.  'tessera umount "
		"MNT' takes it down.\n"
		"\n"
		"Options:\n"
		"  -f, --foreground   stay in the foreground; Ctrl-C (SIGINT) "
		"or SIGTERM unmounts\n"
		"  -t, --threads N    FUSE request threads (default: the FUSE "
		"front-end's)\n"
		"  --rootfs NAME      mount the filesystem of image, volume or "
		"layer NAME at MNT\n"
		"  --rw               with --rootfs on a volume: mount it "
		"read-write\n"
		"  --suid-dev         with --rootfs: without nosuid,nodev, so "
		"the image's setuid\n"
		"                     binaries and device nodes take effect "
		"(images you trust\n"
		"                     only: anyone who can run them gains what "
		"they grant)\n"
		"  --any-fs           with --rootfs: mount any filesystem type "
		"the kernel knows,\n"
		"                     not only " TSR_MOUNT_FS_ALLOWED " (the "
		"image's bytes then reach\n"
		"                     that driver's parser: images you trust "
		"only)\n",
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
