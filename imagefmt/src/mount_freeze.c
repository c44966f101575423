/* SPDX-License-Identifier: MIT */
/*
 * Freezing the filesystem on a loop device (see <tessera/mount_stack.h>):
 * which loop device holds an image, where a device is mounted, FIFREEZE /
 * FITHAW, and thawing what a process that died mid-freeze left frozen.
 *
 * There is no freeze of a bare block device from userspace: the kernel
 * freezes a mounted filesystem (its superblock), so a device is frozen
 * through one of its mountpoints, found in /proc/self/mountinfo.  A freeze
 * outlives the process that made it, hence tsr_mount_thaw_image.
 */
#include <tessera/mount_stack.h>

#include "mount_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Whether the backing_file text of a loop device ("PATH\n", or "PATH
 * (deleted)\n" once the file is gone) names image. */
static bool backing_matches(const char *file, const char *image)
{
	size_t len = strlen(image);

	if (strncmp(file, image, len) != 0)
		return false;
	return file[len] == '\n' || file[len] == '\0' || strcmp(file + len, " (deleted)\n") == 0;
}

int tsr_mount_loop_find(const char *image, char *ret_dev, size_t dev_size)
{
	char path[300], file[PATH_MAX + 16];
	struct dirent *de;
	DIR *d = opendir("/sys/block");
	int r = -ENOENT;

	if (!d)
		return -errno;
	while (r == -ENOENT && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", de->d_name);
		if (mount_read_small(path, file, sizeof(file)) != 0)
			continue;  /* not attached (no file), or detached meanwhile */
		if (!backing_matches(file, image))
			continue;
		r = (size_t)snprintf(ret_dev, dev_size, "/dev/%s", de->d_name) >= dev_size
			    ? -ENAMETOOLONG : 0;
	}
	closedir(d);
	return r;
}

/* Decodes mountinfo's octal escapes (\040 for a space, \011, \012, \134)
 * in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

/* One line of mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT ...".  0 and
 * the fields (pointing into line, unescaped), or -EBADMSG. */
static int parse_line(char *line, unsigned *ret_major, unsigned *ret_minor, char **ret_root,
		      char **ret_mnt)
{
	char *save = NULL, *f[5];

	for (int i = 0; i < 5; i++) {
		f[i] = strtok_r(i ? NULL : line, " ", &save);
		if (!f[i])
			return -EBADMSG;
	}
	if (sscanf(f[2], "%u:%u", ret_major, ret_minor) != 2)
		return -EBADMSG;
	unescape(f[3]);
	unescape(f[4]);
	*ret_root = f[3];
	*ret_mnt = f[4];
	return 0;
}

/* Calls fn for each mount of this mount namespace, in mountinfo's order;
 * a non-zero return stops the walk and is returned. */
static int mountinfo_walk(int (*fn)(unsigned major, unsigned minor, const char *root,
				    const char *mnt, void *arg),
			  void *arg)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *root, *mnt;
	unsigned major, minor;
	size_t cap = 0;
	int r = 0;

	if (!f)
		return -errno;
	while (!r && getline(&line, &cap, f) > 0)
		if (parse_line(line, &major, &minor, &root, &mnt) == 0)
			r = fn(major, minor, root, mnt, arg);
	free(line);
	fclose(f);
	return r;
}

struct point_find {
	dev_t dev;
	char *buf;
	size_t size;
};

static int point_match(unsigned major, unsigned minor, const char *root, const char *mnt,
		       void *arg)
{
	struct point_find *p = arg;

	/* A mount of the filesystem's root (not a bind of a subtree):
	 * any one freezes the whole superblock, this one is plain. */
	if (makedev(major, minor) != p->dev || strcmp(root, "/") != 0)
		return 0;
	return (size_t)snprintf(p->buf, p->size, "%s", mnt) >= p->size ? -ENAMETOOLONG : 1;
}

int tsr_mount_point_of(dev_t dev, char *buf, size_t size)
{
	struct point_find p = { dev, buf, size };
	int r = mountinfo_walk(point_match, &p);

	return r == 1 ? 0 : r < 0 ? r : -ENOENT;
}

int tsr_mount_freeze(const char *mountpoint, int *ret_fd)
{
	int fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, FIFREEZE, 0) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int tsr_mount_thaw(int fd)
{
	int r = ioctl(fd, FITHAW, 0) < 0 ? -errno : 0;

	close(fd);
	return r;
}

struct thaw_image {
	const char *image;
	int thawed;
};

static int thaw_match(unsigned major, unsigned minor, const char *root, const char *mnt,
		      void *arg)
{
	struct thaw_image *t = arg;
	char path[96], file[PATH_MAX + 16];
	int fd;

	(void)root;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/backing_file", major, minor);
	if (mount_read_small(path, file, sizeof(file)) != 0 ||
	    !backing_matches(file, t->image))
		return 0;  /* not a loop device, or not over image */
	fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* EINVAL: not frozen, the usual case. */
	if (ioctl(fd, FITHAW, 0) == 0)
		t->thawed++;
	close(fd);
	return 0;
}

int tsr_mount_thaw_image(const char *image)
{
	struct thaw_image t = { image, 0 };
	int r = mountinfo_walk(thaw_match, &t);

	return r < 0 ? r : t.thawed;
}
