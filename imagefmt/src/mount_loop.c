/* SPDX-License-Identifier: MIT */
/*
 * Loop devices over volume images (see <tessera/mount_stack.h>): attached
 * with LOOP_CONFIGURE, one ioctl (kernel 5.8+).  The older LOOP_SET_FD +
 * LOOP_SET_STATUS64 pair, which containerd 1.6 uses, freezes the device's
 * queue in the second call: 14-18 ms an attach where LOOP_CONFIGURE takes
 * 0.2-1.2 ms (docs/snapshotter.md).
 */
#include <tessera/mount_stack.h>

#include "mount_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef LOOP_MAJOR
#define LOOP_MAJOR 7
#endif
#define ATTACH_TRIES 32  /* free devices taken by someone else first */

/* Opens /dev/loopN, creating the node when nothing (udev) made it. */
static int open_loop(int n, int flags, char *dev, size_t size)
{
	int fd;

	snprintf(dev, size, "/dev/loop%d", n);
	fd = open(dev, flags);
	if (fd < 0 && errno == ENOENT) {
		if (mknod(dev, S_IFBLK | 0660, makedev(LOOP_MAJOR, n)) < 0 &&
		    errno != EEXIST)
			return -errno;
		fd = open(dev, flags);
	}
	return fd < 0 ? -errno : fd;
}

int tsr_mount_loop_attach(const char *image, bool read_only, bool direct_io, char *ret_dev,
			  size_t dev_size, int *ret_fd, bool *ret_dio)
{
	int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct loop_config cfg;
	struct loop_info64 info;
	char dev[32];
	int ctl, file, fd = -1, r = -EBUSY;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	file = open(image, flags);
	if (file < 0) {
		r = -errno;
		close(ctl);
		return r;
	}
	/* Another process may take the free device between GET_FREE and
	 * CONFIGURE (-EBUSY): ask again. */
	for (int tries = 0; tries < ATTACH_TRIES; tries++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);

		if (n < 0) {
			r = -errno;
			break;
		}
		fd = open_loop(n, flags, dev, sizeof(dev));
		if (fd < 0) {
			r = fd;
			break;
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = (uint32_t)file;
		cfg.block_size = 0;  /* 512: any filesystem block size fits */
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR |
				    (read_only ? LO_FLAGS_READ_ONLY : 0) |
				    (direct_io ? LO_FLAGS_DIRECT_IO : 0);
		snprintf((char *)cfg.info.lo_file_name, LO_NAME_SIZE, "%s", image);
		if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
			r = 0;
			break;
		}
		r = -errno;
		close(fd);
		fd = -1;
		if (r != -EBUSY)
			break;
	}
	close(file);  /* the loop device holds its own reference */
	close(ctl);
	if (r)
		return r;
	if (ret_dio) {
		*ret_dio = false;
		if (ioctl(fd, LOOP_GET_STATUS64, &info) == 0)
			*ret_dio = (info.lo_flags & LO_FLAGS_DIRECT_IO) != 0;
	}
	if (!read_only) {
		/* Hold the device read-only: an open for writing counts as a
		 * writer, and kernels that refuse to mount a block device
		 * with writers (CONFIG_BLK_DEV_WRITE_MOUNTED=n) would refuse
		 * the mount this device is for.  Not the last close: no
		 * autoclear. */
		int ro = open(dev, O_RDONLY | O_CLOEXEC);

		if (ro >= 0) {
			close(fd);
			fd = ro;
		}
	}
	if ((size_t)snprintf(ret_dev, dev_size, "%s", dev) >= dev_size) {
		ioctl(fd, LOOP_CLR_FD, 0);
		close(fd);
		return -ENAMETOOLONG;
	}
	*ret_fd = fd;
	return 0;
}

/* 1 when dev is attached to image, 0 when not (or not attached at all). */
static int loop_backs(const char *dev, const char *image)
{
	char path[96], file[PATH_MAX + 16];
	size_t len = strlen(image);
	const char *name = strrchr(dev, '/');
	int r;

	snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file",
		 name ? name + 1 : dev);
	r = mount_read_small(path, file, sizeof(file));
	if (r == -ENOENT)
		return 0;  /* not attached */
	if (r)
		return r;
	/* "PATH\n", or "PATH (deleted)\n" once the volume is gone. */
	return strncmp(file, image, len) == 0 &&
	       (file[len] == '\n' || file[len] == ' ' || file[len] == '\0');
}

int tsr_mount_loop_detach(const char *dev, const char *image)
{
	int fd, r = loop_backs(dev, image);

	if (r <= 0)
		return r;
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENXIO ? 0 : -errno;
	/* With other openers the kernel only marks it for autoclear. */
	if (ioctl(fd, LOOP_CLR_FD, 0) < 0 && errno != ENXIO) {
		r = -errno;
		close(fd);
		return r;
	}
	close(fd);
	return 0;
}
