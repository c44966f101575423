/* SPDX-License-Identifier: MIT */
/*
 * tessera mount --rootfs NAME MNT, and its `tessera umount`: the stack of
 * the store's FUSE daemon (shared by every rootfs of the store, on a
 * private mountpoint; fuse_daemon.c starts it), a loop device over the
 * image file of NAME, and the filesystem on it mounted at MNT.  NAME is
 * resolved by the daemon that owns the store (imagefmt's names.h; DESIGN,
 * "Names").  The stack itself (loop
 * device, mount, the record that lets `tessera umount MNT` take it down in
 * order) is <tessera/mount_stack.h>'s; this file composes and prints.
 */
#include "cli.h"
#include "cmd_rootfs.h"
#include "fuse_daemon.h"

#include <tessera/fuse_server.h>
#include <tessera/mount_stack.h>
#include <tessera/names.h>
#include <tessera/volume_fs.h>

#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- taking a stack down ----------------------------------------------------- */

/* tsr_mount_stack_down's stop of a private FUSE mount: its daemon, waited
 * for timeout_s (arg) seconds. */
static int stop_fuse(void *arg, const char *fuse_mnt, pid_t pid)
{
	const int *timeout_s = arg;

	return cli_mount_stop_daemon(fuse_mnt, pid, *timeout_s, true) == CLI_OK ? 0 : -ECANCELED;
}

/*
 * Takes a --rootfs stack down in the order it went up: the filesystem, the
 * loop device, the FUSE mount (unless another stack uses it) and its
 * daemon, the record.  Stops at the first step that fails, so that running
 * it again continues from there.  CLI_OK or CLI_FAIL.
 */
int cli_rootfs_down(const struct tsr_mount_stack *s, int timeout_s)
{
	enum tsr_mount_step step;
	int r = tsr_mount_stack_down(s, stop_fuse, &timeout_s, &step);

	switch (r ? step : TSR_MOUNT_STEP_NONE) {
	case TSR_MOUNT_STEP_NONE:
		return CLI_OK;
	case TSR_MOUNT_STEP_UNMOUNT:
		if (r == -EBUSY)
			cli_err("umount: %s is busy: a process uses files on "
				"it or has its working directory there (see "
				"'fuser -vm %s')", s->mountpoint,
				s->mountpoint);
		else
			cli_errno(r, "umount: %s", s->mountpoint);
		break;
	case TSR_MOUNT_STEP_DETACH:
		cli_errno(r, "umount: detaching %s", s->loop_dev);
		break;
	case TSR_MOUNT_STEP_STACKS:
		cli_errno(r, "umount: " TSR_MOUNT_RUN_DIR "/rootfs");
		break;
	case TSR_MOUNT_STEP_FUSE:
		break;  /* cli_mount_stop_daemon said why */
	default:
		cli_errno(r, "umount: removing the record of %s", s->mountpoint);
		break;
	}
	return CLI_FAIL;
}

/* ---- name resolution, putting a stack up --------------------------------------- */

/*
 * `tessera rootfs-resolve -- SPEC`: not listed in the help; resolve_rootfs
 * runs it on the daemon that owns the store (through its control socket:
 * no other process can open the store).  Resolves SPEC (names.h) and
 * prints "KIND ID NAME" (ID "-" for a volume), or says why not, in the
 * words of `mount`.
 */
static void print_ambiguous(const char *spec, const struct tsr_name_match *m)
{
	struct cli_str list = { 0 };
	char hex[TSR_ID_HEX_LEN + 1], item[CLI_SHORT_ID + 8];
	const char *k0 = tsr_name_kind_str(m->both[0]), *k1 = tsr_name_kind_str(m->both[1]);
	const char *name = m->name;

	if (m->both[0] != TSR_NAME_ANY) {
		cli_err("mount: '%s' names both %s '%s' and %s '%s'; say %s:%s or %s:%s", spec, k0,
			name, k1, name, k0, name, k1, name);
		return;
	}
	for (size_t i = 0; i < m->n_layers && i < TSR_NAME_CANDIDATES; i++) {
		tsr_layer_id_to_hex(&m->layers[i], hex);
		snprintf(item, sizeof(item), "%s%.*s...", i ? ", " : "", CLI_SHORT_ID, hex);
		cli_str_add(&list, item);
	}
	cli_err("mount: layer '%s': ambiguous, matches %s", name,
		cli_str_get(&list, "more than one layer"));
	cli_str_free(&list);
}

static int run_resolve(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct tsr_name_match m;
	char hex[TSR_ID_HEX_LEN + 1] = "-";
	const char *spec = argc == 3 && !strcmp(argv[1], "--") ? argv[2] : NULL;
	int r;

	/* Run by resolve_rootfs only, always as "rootfs-resolve -- SPEC". */
	if (!spec)
		return cli_usage_err(cmd, "expects -- NAME");
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	r = tsr_name_resolve(cli->store, spec, &m);
	if (r == 0) {
		if (m.kind != TSR_NAME_VOLUME)
			tsr_layer_id_to_hex(&m.id, hex);
		cli_printf("%s %s %s\n", tsr_name_kind_str(m.kind), hex, m.name);
		return CLI_OK;
	}
	if (r == -EINVAL)
		cli_err("mount: '%s' is not an image, volume or layer name", spec);
	else if (r == TSR_ERR_AMBIGUOUS)
		print_ambiguous(spec, &m);
	else if (r == -ENOENT && m.forced != TSR_NAME_ANY)
		cli_err("mount: %s '%s': no such %s", tsr_name_kind_str(m.forced), m.name,
			tsr_name_kind_str(m.forced));
	else if (r == -ENOENT)
		cli_err("mount: '%s': no such image, volume or layer", m.name);
	else
		cli_errno(r, "mount: resolving '%s'", spec);
	return CLI_FAIL;
}

const struct cli_cmd cli_cmd_rootfs_resolve = {
	.name = "rootfs-resolve",
	.path = "rootfs-resolve",
	.hidden = true,
	.args = "-- NAME",
	.summary = "Says what mount --rootfs NAME names (run by mount --rootfs).",
	.run = run_resolve,
};

/*
 * Runs `rootfs-resolve -- spec` on the daemon that owns store, its output
 * to a pipe instead of this process's stdout, into out.  CLI_OK, or
 * CLI_FAIL (printed: by the daemon when the name does not resolve).
 */
static int forward_resolve(const char *store, const char *spec, char *out, size_t len)
{
	char *argv[] = { CLI_PROG, "rootfs-resolve", "--", (char *)spec, NULL };
	int p[2], saved, status = CLI_FAIL, r;
	ssize_t n;

	fflush(stdout);
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		cli_errno(-errno, "mount: resolving '%s'", spec);
		return CLI_FAIL;
	}
	saved = dup(STDOUT_FILENO);
	if (saved < 0 || dup2(p[1], STDOUT_FILENO) < 0) {
		r = -errno;
	} else {
		r = cli_control_forward(store, 4, argv, &status);
		dup2(saved, STDOUT_FILENO);
	}
	if (saved >= 0)
		close(saved);
	close(p[1]);
	/* The daemon flushed the command's output before it sent the status. */
	n = r == 1 && status == CLI_OK ? read(p[0], out, len - 1) : -1;
	close(p[0]);
	if (r == 0)
		r = -ECONNREFUSED; /* no daemon answered on the control socket */
	if (r < 0) {
		cli_errno(r, "mount: resolving '%s': the daemon that owns the store", spec);
		return CLI_FAIL;
	}
	if (status != CLI_OK)
		return CLI_FAIL;
	if (n <= 0 || out[n - 1] != '\n') {
		cli_err("mount: resolving '%s': no answer from the daemon that owns the store",
			spec);
		return CLI_FAIL;
	}
	out[n - 1] = '\0';
	return CLI_OK;
}

/*
 * Resolves NAME of --rootfs on the store's daemon: an image, then a volume,
 * then a layer (DESIGN, "Names"; names.h).  Fills s->image (its file in
 * the FUSE tree at s->fuse_mnt) and s->source and says whether it is
 * read-only content (an image or a layer).  CLI_OK or CLI_FAIL (printed).
 */
static int resolve_rootfs(const char *spec, struct tsr_mount_stack *s, bool *ret_layer)
{
	char line[32 + TSR_ID_HEX_LEN + TSR_NAME_MAX], *kind = line, *id, *name;
	bool volume;

	if (forward_resolve(s->store, spec, line, sizeof(line)) != CLI_OK)
		return CLI_FAIL;
	/* "KIND ID NAME": the name is the rest of the line, spaces and all. */
	id = strchr(line, ' ');
	name = id ? strchr(id + 1, ' ') : NULL;
	if (!name) {
		cli_err("mount: resolving '%s': a garbled answer from the store's daemon", spec);
		return CLI_FAIL;
	}
	*id++ = '\0';
	*name++ = '\0';
	volume = !strcmp(kind, "volume");
	if (tsr_fuse_path(s->fuse_mnt, volume ? TSR_FUSE_VOLUME : TSR_FUSE_LAYER,
			  volume ? name : id, s->image, sizeof(s->image))) {
		cli_err("mount: '%s': the name is too long", spec);
		return CLI_FAIL;
	}
	/* A layer is named by its id, the others by their name. */
	snprintf(s->source, sizeof(s->source), "%.8s:%.300s", kind,
		 strcmp(kind, "layer") ? name : id);
	*ret_layer = !volume;
	return CLI_OK;
}

/* Says why tsr_mount_stack_up failed. */
static void print_up_err(const char *spec, const struct tsr_mount_stack *s,
			 const struct tsr_fs_info *fs, enum tsr_mount_step step, int r)
{
	switch (step) {
	case TSR_MOUNT_STEP_ATTACH:
		cli_errno(r, "mount: attaching %s to a loop device", s->image);
		break;
	case TSR_MOUNT_STEP_PROBE:
		if (r == -ENOMEDIUM)
			cli_err("mount: %s holds no filesystem", spec);
		else if (r == TSR_ERR_AMBIGUOUS)
			cli_err("mount: %s holds more than one filesystem signature "
				"(see 'wipefs %s')", spec, s->loop_dev);
		else if (r == -EMEDIUMTYPE)
			cli_err("mount: %s holds %s (%s), not a filesystem", spec,
				fs->type, fs->usage);
		else if (r == TSR_ERR_FS_NOT_ALLOWED)
			cli_err("mount: %s holds a %s filesystem; tessera mounts "
				TSR_MOUNT_FS_ALLOWED " from images (--any-fs mounts "
				"it anyway, for an image you trust)", spec, fs->type);
		else
			cli_errno(r, "mount: %s: probing %s", spec, s->loop_dev);
		break;
	case TSR_MOUNT_STEP_MOUNT:
		cli_errno(r, "mount: mounting %s (%s on %s) at %s (see dmesg)",
			  spec, s->fs_type, s->loop_dev, s->mountpoint);
		break;
	default:
		cli_errno(r, "mount: recording the stack in " TSR_MOUNT_RUN_DIR
			  "/rootfs");
		break;
	}
}

/*
 * Puts a --rootfs stack up: the store's FUSE daemon (a running one, or a
 * new one on the private mountpoint), then NAME's image on a loop device,
 * its filesystem at arg and the record (tsr_mount_stack_up).  A step that
 * fails undoes the ones before it.  CLI_OK or CLI_FAIL (printed).
 */
int cli_rootfs_up(struct cli *cli, const char *spec, const char *arg, bool rw,
		  unsigned mount_flags, unsigned threads)
{
	struct serve_args a = { .threads = threads, .report_fd = -1 };
	struct tsr_mount_stack s = { 0 }, old;
	struct tsr_mount_daemon rec;
	struct tsr_fs_info fs;
	enum tsr_mount_step step;
	bool started = false, layer = false;
	int lock, r, status = CLI_FAIL;

	if (cli_mount_abs_path("mount", arg, s.mountpoint) != CLI_OK)
		return CLI_FAIL;
	if (cli_mount_check_dir("mount", s.mountpoint) != CLI_OK)
		return CLI_FAIL;
	cli_mount_store_path(cli, s.store);
	lock = tsr_mount_stack_lock();
	if (lock < 0) {
		cli_errno(lock, "mount: " TSR_MOUNT_RUN_DIR);
		return CLI_FAIL;
	}
	if (tsr_mount_stack_read(s.mountpoint, &old) == 0) {
		cli_err("mount: %s already has a rootfs mounted (%s); '" CLI_PROG
			" umount %s' first", s.mountpoint, old.source,
			s.mountpoint);
		goto out;
	}
	/* 1. The store's FUSE daemon: the one serving it already (on the
	 * private mountpoint, or a `tessera mount` of the store elsewhere),
	 * or a new one on the private mountpoint. */
	if (tsr_mount_daemon_find(s.store, &rec) == 0) {
		snprintf(s.fuse_mnt, sizeof(s.fuse_mnt), "%s", rec.mountpoint);
		s.daemon_pid = rec.pid;
	} else {
		r = tsr_mount_fuse_dir(s.store, s.fuse_mnt, sizeof(s.fuse_mnt));
		if (r < 0) {
			cli_errno(r, "mount: " TSR_MOUNT_RUN_DIR "/fuse");
			goto out;
		}
		if (cli_mount_clean_stale("mount", s.fuse_mnt) != CLI_OK)
			goto out;
		a.store = s.store;
		a.mountpoint = s.fuse_mnt;
		if (cli_mount_start_daemon(cli, &a, lock, &s.daemon_pid) != CLI_OK) {
			rmdir(s.fuse_mnt);
			goto out;
		}
		started = true;
	}

	/* 2. NAME's image, its filesystem mounted over a loop device,
	 * recorded for `tessera umount`. */
	if (resolve_rootfs(spec, &s, &layer) != CLI_OK)
		goto undo;
	if (rw && layer) {
		cli_err("mount: %s is a layer, which is read-only; --rw needs a "
			"volume (" CLI_PROG " volume create NAME --parent %s)",
			spec, s.source + 6);
		goto undo;
	}
	s.read_only = layer || !rw;
	r = tsr_mount_stack_up(&s, mount_flags, &fs, &step);
	if (r < 0) {
		print_up_err(spec, &s, &fs, step, r);
		goto undo;
	}
	cli_printf("mounted %s (%s, %s%s) at %s: %s%s over %s\n", s.source,
		   s.fs_type, s.read_only ? "read-only" : "read-write",
		   mount_flags & TSR_MOUNT_SUID_DEV ? ", setuid and devices honoured" : "",
		   s.mountpoint, s.loop_dev, s.direct_io ? " (direct I/O)" : "",
		   s.image);
	status = CLI_OK;
	goto out;

undo:
	/* The FUSE daemon, if this started it; tsr_mount_stack_up undid its
	 * own steps. */
	if (started) {
		cli_mount_stop_daemon(s.fuse_mnt, s.daemon_pid,
				      UMOUNT_TIMEOUT_DEFAULT, true);
		rmdir(s.fuse_mnt);
	}
out:
	close(lock);
	return status;
}
