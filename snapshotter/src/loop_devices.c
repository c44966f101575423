/* SPDX-License-Identifier: MIT */
/*
 * The loop devices the snapshotter attaches for its snapshots' images.
 *
 * Why not let containerd attach them ({source: FILE, options: [loop]})?
 * containerd 1.6 sets a loop device up with LOOP_SET_FD then
 * LOOP_SET_STATUS64, and LOOP_SET_STATUS64 freezes the device's request
 * queue: 14-18 ms a call on the 6.x kernels measured, and `ctr run` mounts
 * the rootfs twice (once in ctr for /etc/group, once in the shim).
 * tsr_mount_loop_attach (LOOP_CONFIGURE) takes 0.2-1.2 ms.  And the
 * devices do direct I/O: the image files are not cached in the kernel
 * anyway (FUSE direct_io), and a direct-I/O loop device keeps many
 * requests in flight where a buffered one does one at a time (4 KiB
 * random reads at queue depth 32 in a snapshot: 1.8x).  docs/snapshotter.md
 * has the measurements.
 *
 * Each attachment belongs to one snapshot key and holds the device open
 * with LO_FLAGS_AUTOCLEAR set.  Invariant: while a key has an entry, its
 * device is bound to that snapshot's image.  Closing the entry's fd
 * (detach) is all it takes to release it: the kernel clears the device on
 * the last close, i.e. at once when nothing has it mounted, else at the
 * unmount.  For the same reason a killed daemon leaks no device.
 */
#include "internal.h"

#include <tessera/mount_stack.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct loop_entry {
	char *key;
	int fd;         /* the open device: holds the binding */
	char dev[32];   /* /dev/loopN */
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

static struct loop_entry *find(struct loop_table *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].key, key) == 0)
			return &t->v[i];
	return NULL;
}

int loop_table_get(struct loop_table *t, const char *key, const char *image,
		   bool read_only, char *ret_dev, size_t dev_size, int *ret_cause)
{
	struct loop_entry *e;
	int r = 0;

	*ret_cause = 0;
	pthread_mutex_lock(&t->lock);
	e = find(t, key);
	if (e)
		goto found;
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
	r = tsr_mount_loop_attach(image, read_only, true, e->dev, sizeof(e->dev), &e->fd,
				  NULL);
	if (r) {
		free(e->key);
		if (r == -EPERM || r == -EACCES || r == -ENOTTY || r == -EINVAL) {
			/* Not allowed (a container without CAP_SYS_ADMIN or
			 * CAP_MKNOD) or no LOOP_CONFIGURE (before 5.8): it
			 * will not work next time either. */
			t->unavailable = true;
			*ret_cause = r;
			r = -ENODEV;
		} else if (r == -ENODEV) {
			r = -ENXIO;  /* -ENODEV means "unavailable" here */
		}
		goto out;
	}
	t->n++;
found:
	if ((size_t)snprintf(ret_dev, dev_size, "%s", e->dev) >= dev_size)
		r = -ENAMETOOLONG;
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

int loop_table_dev(struct loop_table *t, const char *key, char *ret_dev, size_t dev_size)
{
	struct loop_entry *e;
	int r = -ENOENT;

	pthread_mutex_lock(&t->lock);
	e = find(t, key);
	if (e)
		r = (size_t)snprintf(ret_dev, dev_size, "%s", e->dev) >= dev_size
			    ? -ENAMETOOLONG : 0;
	pthread_mutex_unlock(&t->lock);
	return r;
}

int loop_table_put(struct loop_table *t, const char *key, bool only_unused)
{
	struct loop_entry *e;
	int excl = -1, r = 0;

	pthread_mutex_lock(&t->lock);
	e = find(t, key);
	if (e && only_unused) {
		/* A mounted filesystem holds its device exclusively: -EBUSY.
		 * Holding it exclusively ourselves until the end makes a
		 * mount attempted meanwhile fail, rather than land on a
		 * device about to be released.  Any other failure keeps the
		 * entry too: better busy than released under a mount. */
		excl = open(e->dev, O_RDONLY | O_EXCL | O_CLOEXEC);
		if (excl < 0)
			r = -errno;
	}
	if (e && !r) {
		close(e->fd);
		free(e->key);
		*e = t->v[--t->n];
	}
	if (excl >= 0)
		close(excl);  /* the last close: the kernel clears the device */
	pthread_mutex_unlock(&t->lock);
	return r;
}
