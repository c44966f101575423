/* SPDX-License-Identifier: MIT */
/*
 * Output paths a user names (`layer export L PATH`, `volume export V
 * PATH`): a regular file, a new file, a character or block device, a FIFO.
 *
 * What may be removed on failure: only a regular file this run created
 * (O_CREAT | O_EXCL succeeded), and only while the path still names it.
 * An existing file is truncated (when regular) and written but never
 * removed; a device or a FIFO is only written.  fsync on what is not a
 * regular file may say EINVAL or EROFS (/dev/null, a pipe): that is not a
 * failure of the export.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Times an O_EXCL create and a plain open may race with another process
 * creating or removing the path before giving up. */
#define OPEN_TRIES 4

int cli_output_open(struct cli *cli, const char *path, struct cli_output *o)
{
	int r = -EEXIST;

	o->fd = -1;
	o->path = path;
	o->dirfd = cli->cwd_fd;
	o->created = false;
	for (int i = 0; i < OPEN_TRIES && o->fd < 0; i++) {
		o->fd = openat(o->dirfd, path,
			       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (o->fd >= 0) {
			o->created = true;
			break;
		}
		if (errno != EEXIST)
			return -errno;
		/* Someone's file, a device, a FIFO: written, never
		 * removed. */
		o->fd = openat(o->dirfd, path, O_WRONLY | O_CLOEXEC);
		if (o->fd < 0 && errno != ENOENT)
			return -errno;
		r = -errno;
	}
	if (o->fd < 0)
		return r;
	if (fstat(o->fd, &o->st) < 0) {
		r = -errno;
		close(o->fd);
		o->fd = -1;
		return r;
	}
	o->regular = S_ISREG(o->st.st_mode);
	if (o->regular && !o->created && ftruncate(o->fd, 0) < 0) {
		r = -errno;
		close(o->fd);
		o->fd = -1;
		return r;
	}
	return 0;
}

/* Removes the file this run created, if the path still names it. */
static void remove_created(const struct cli_output *o)
{
	struct stat now;

	if (!o->created)
		return;
	if (fstatat(o->dirfd, o->path, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
	    now.st_dev == o->st.st_dev && now.st_ino == o->st.st_ino)
		unlinkat(o->dirfd, o->path, 0);
}

int cli_output_close(struct cli_output *o, bool ok)
{
	int r = 0;

	if (o->fd < 0)
		return 0;
	/* Late write-back errors are reported rather than lost. */
	if (ok && fsync(o->fd) < 0 &&
	    (o->regular || (errno != EINVAL && errno != EROFS)))
		r = -errno;
	if (close(o->fd) < 0 && r == 0 && errno != EINTR)
		r = -errno;
	o->fd = -1;
	if (!ok || r < 0)
		remove_created(o);
	return r;
}
