/* SPDX-License-Identifier: MIT */
/*
 * The loop devices the snapshotter attaches for its snapshots' images.
 *
 * Why not let containerd attach them ({source: FILE, options: [loop]})?
 * containerd 1.6 sets a loop device up with LOOP_SET_FD then
 * LOOP_SET_STATUS64, and LOOP_SET_STATUS64 freezes the device's request
 * queue: 14-18 ms a call on the 6.x kernels measured, and `ctr run` mounts
 * the rootfs twice (once in ctr for /etc/group, once in the shim).
 * LOOP_CONFIGURE does the same in one call without the freeze: 0.2-1.2 ms.
 * docs/snapshotter.md has the measurement.
 *
 * Each attachment belongs to one snapshot key and holds the device open
 * with LO_FLAGS_AUTOCLEAR set.  Invariant: while a key has an entry, its
 * device is bound to that snapshot's image.  Closing the entry's fd
 * (detach) is all it takes to release it: the kernel clears the device on
 * the last close, i.e. at once when nothing has it mounted, else at the
 * unmount.  For the same reason a killed daemon leaks no device.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define LOOP_ATTACH_TRIES 16  /* a free device taken by someone else first */

struct loop_entry {
	char *key;
	int fd;      /* the open device: holds the binding */
	int number;  /* /dev/loop<number> */
};

void loop_table_init(struct loop_table *t)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);

	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	if (ctl < 0)
		t->unavailable = true;
	else
		close(ctl);
}

void loop_table_fini(struct loop_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		close(t->v[i].fd);
		free(t->v[i].key);
	}
	free(t->v);
	pthread_mutex_destroy(&t->lock);
	memset(t, 0, sizeof(*t));
}

/* Kernels before 5.8: the two-call setup (with its queue freeze). */
static int configure_legacy(int dev, const struct loop_config *c)
{
	if (ioctl(dev, LOOP_SET_FD, c->fd) < 0)
		return -errno;
	if (ioctl(dev, LOOP_SET_STATUS64, &c->info) < 0) {
		int r = -errno;

		ioctl(dev, LOOP_CLR_FD, 0);
		return r;
	}
	return 0;
}

static int no_permission_as_enodev(int r)
{
	return r == -EPERM || r == -EACCES || r == -ENOENT ? -ENODEV : r;
}

/* Binds a free loop device to image: its open fd and number. */
static int attach(const char *image, bool read_only, int *ret_fd, int *ret_number)
{
	int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct loop_config c;
	int ctl, back, r = -EBUSY;

	back = open(image, flags);
	if (back < 0)
		return -errno;
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		r = no_permission_as_enodev(-errno);
		close(back);
		return r;
	}
	memset(&c, 0, sizeof(c));
	c.fd = (uint32_t)back;
	c.info.lo_flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0);
	snprintf((char *)c.info.lo_file_name, sizeof(c.info.lo_file_name), "%s", image);
	for (int i = 0; i < LOOP_ATTACH_TRIES && r == -EBUSY; i++) {
		char path[32];
		int number = ioctl(ctl, LOOP_CTL_GET_FREE), dev;

		if (number < 0) {
			r = -errno;
			break;
		}
		snprintf(path, sizeof(path), "/dev/loop%d", number);
		dev = open(path, flags);
		if (dev < 0) {
			r = no_permission_as_enodev(-errno);
			break;
		}
		r = ioctl(dev, LOOP_CONFIGURE, &c) < 0 ? -errno : 0;
		if (r == -EINVAL || r == -ENOTTY)
			r = configure_legacy(dev, &c);
		if (r == -EPERM)
			r = -ENODEV;
		if (r) {
			close(dev);
			continue;  /* -EBUSY: raced for it; try the next free one */
		}
		*ret_fd = dev;
		*ret_number = number;
	}
	close(ctl);
	close(back);  /* the device holds its own reference */
	return r;
}

static struct loop_entry *find(struct loop_table *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].key, key) == 0)
			return &t->v[i];
	return NULL;
}

int loop_table_get(struct loop_table *t, const char *key, const char *image,
		   bool read_only, int *ret_number)
{
	struct loop_entry *e;
	int r = 0;

	pthread_mutex_lock(&t->lock);
	e = find(t, key);
	if (e) {
		*ret_number = e->number;
		goto out;
	}
	if (t->unavailable) {
		r = -ENODEV;
		goto out;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		struct loop_entry *v = realloc(t->v, cap * sizeof(*v));

		if (!v) {
			r = -ENOMEM;
			goto out;
		}
		t->v = v;
		t->cap = cap;
	}
	e = &t->v[t->n];
	e->key = strdup(key);
	if (!e->key) {
		r = -ENOMEM;
		goto out;
	}
	r = attach(image, read_only, &e->fd, &e->number);
	if (r) {
		free(e->key);
		t->unavailable = r == -ENODEV;
		goto out;
	}
	t->n++;
	*ret_number = e->number;
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

int loop_table_put(struct loop_table *t, const char *key, bool only_unused)
{
	struct loop_entry *e;
	int r = 0;

	pthread_mutex_lock(&t->lock);
	e = find(t, key);
	if (e && only_unused) {
		/* A mounted filesystem claims its device exclusively. */
		char path[32];
		int fd;

		snprintf(path, sizeof(path), "/dev/loop%d", e->number);
		fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);
		if (fd < 0 && errno == EBUSY)
			r = -EBUSY;
		if (fd >= 0)
			close(fd);
	}
	if (e && !r) {
		close(e->fd);
		free(e->key);
		*e = t->v[--t->n];
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}
