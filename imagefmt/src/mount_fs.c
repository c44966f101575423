/* SPDX-License-Identifier: MIT */
/*
 * Filesystem mounts of the mount stack (see <tessera/mount_stack.h>): the
 * one table of mount options, mount(2), unmounting with busy retries, and
 * mountpoint paths.
 */
#include <tessera/mount_stack.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define BUSY_RETRY_STEP_MS 50

/* ---- options ------------------------------------------------------------------- */

/* Options of every filesystem, by flag: set when the flag is, else unset
 * (NULL: nothing), each with its mount(2) flag.  The first is always
 * there: "ro" or "rw". */
static const struct generic_option {
	unsigned flag;
	const char *set, *unset;
	unsigned long ms_set, ms_unset;  /* mount(2)'s flags for set, unset */
} generic_options[] = {
	{ TSR_MOUNT_READ_ONLY, "ro", "rw", MS_RDONLY, 0 },
	{ TSR_MOUNT_SUID_DEV, NULL, "nosuid", 0, MS_NOSUID },
	{ TSR_MOUNT_SUID_DEV, NULL, "nodev", 0, MS_NODEV },
};

/* TSR_MOUNT_FS_ALLOWED, as a list. */
static const char *const allowed_types[] = { "ext2", "ext3", "ext4", "xfs" };

/* Each filesystem's own options (mount(2) data), writable and read-only;
 * why each: tsr_mount_options. */
static const struct fs_options {
	const char *type;
	const char *writable[2];   /* NULL-terminated */
	const char *read_only[2];
} fs_options[] = {
	{ "ext4", { "noinit_itable", NULL }, { "noload", NULL } },
	{ "ext3", { NULL }, { "noload", NULL } },
	{ "xfs", { NULL }, { "norecovery", NULL } },
};

static int add_option(struct tsr_mount_options *o, const char *opt)
{
	if (o->n == TSR_MOUNT_OPTIONS_MAX)
		return -E2BIG;
	o->list[o->n++] = opt;
	return 0;
}

/* Appends opt to the mount(2) data, comma-separated. */
static int add_data(struct tsr_mount_options *o, const char *opt)
{
	size_t len = strlen(o->data);
	int n = snprintf(o->data + len, sizeof(o->data) - len, "%s%s", len ? "," : "", opt);

	if (n < 0 || (size_t)n >= sizeof(o->data) - len)
		return -E2BIG;
	return add_option(o, opt);
}

int tsr_mount_options(const char *fs_type, unsigned flags, struct tsr_mount_options *ret)
{
	const unsigned known = TSR_MOUNT_READ_ONLY | TSR_MOUNT_SUID_DEV | TSR_MOUNT_ANY_FS;
	struct tsr_mount_options o = { 0 };
	const char *const *own = NULL;
	bool allowed = flags & TSR_MOUNT_ANY_FS;
	int r = 0;

	if (flags & ~known)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(allowed_types) / sizeof(allowed_types[0]); i++)
		allowed |= strcmp(fs_type, allowed_types[i]) == 0;
	if (!allowed)
		return TSR_ERR_FS_NOT_ALLOWED;
	for (size_t i = 0; !r && i < sizeof(generic_options) / sizeof(generic_options[0]); i++) {
		const struct generic_option *g = &generic_options[i];
		bool set = flags & g->flag;
		const char *opt = set ? g->set : g->unset;

		o.ms_flags |= set ? g->ms_set : g->ms_unset;
		if (opt)
			r = add_option(&o, opt);
	}
	for (size_t i = 0; i < sizeof(fs_options) / sizeof(fs_options[0]); i++)
		if (strcmp(fs_type, fs_options[i].type) == 0)
			own = (flags & TSR_MOUNT_READ_ONLY) ? fs_options[i].read_only
							    : fs_options[i].writable;
	for (; !r && own && *own; own++)
		r = add_data(&o, *own);
	if (r)
		return r;
	*ret = o;
	return 0;
}

/* ---- mount, unmount ------------------------------------------------------------ */

int tsr_mount_fs(const char *dev, const char *mountpoint, const char *fs_type, unsigned flags)
{
	struct tsr_mount_options o;
	int r = tsr_mount_options(fs_type, flags, &o);

	if (r)
		return r;
	if (mount(dev, mountpoint, fs_type, o.ms_flags, o.data[0] ? o.data : NULL) < 0)
		return -errno;
	return 0;
}

int tsr_mount_unmount(const char *mountpoint, int busy_retry_ms)
{
	for (int waited = 0;; waited += BUSY_RETRY_STEP_MS) {
		if (umount2(mountpoint, UMOUNT_NOFOLLOW) == 0 || errno == EINVAL ||
		    errno == ENOENT)
			return 0;  /* EINVAL: not (or no longer) a mountpoint */
		if (errno != EBUSY || waited >= busy_retry_ms)
			return -errno;
		usleep(BUSY_RETRY_STEP_MS * 1000);
	}
}

/* ---- paths ----------------------------------------------------------------------- */

int tsr_mount_abs_path(const char *path, char *buf, size_t size)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *base;
	size_t len;

	if (realpath(path, tmp)) {
		if ((size_t)snprintf(buf, size, "%s", tmp) >= size)
			return -ENAMETOOLONG;
		return 0;
	}
	if (errno != ENOTCONN && errno != EIO && errno != EACCES)
		return -errno;
	/* A dead FUSE mount: resolve the directory it is in. */
	len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len);
	tmp[len] = '\0';
	base = strrchr(tmp, '/');
	if (!base) {
		if (!realpath(".", dir))
			return -errno;
		base = tmp;
	} else {
		tmp[base - tmp] = '\0';
		if (!realpath(base == tmp ? "/" : tmp, dir))
			return -errno;
		base++;
	}
	if (!strcmp(base, ".") || !strcmp(base, ".."))
		return -EINVAL;
	if ((size_t)snprintf(buf, size, "%s%s%s", dir,
			     strcmp(dir, "/") ? "/" : "", base) >= size)
		return -ENAMETOOLONG;
	return 0;
}
