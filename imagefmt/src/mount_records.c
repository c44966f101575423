/* SPDX-License-Identifier: MIT */
/*
 * The records of the mount stack under TSR_MOUNT_RUN_DIR: FUSE daemons,
 * --rootfs stacks, the private FUSE mountpoints and the stacks' lock (see
 * <tessera/mount_stack.h> for the layout).
 */
#include <tessera/mount_stack.h>

#include "mount_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define DAEMONS_DIR TSR_MOUNT_RUN_DIR "/mounts"
#define FUSE_DIR TSR_MOUNT_RUN_DIR "/fuse"
#define STACKS_DIR TSR_MOUNT_RUN_DIR "/rootfs"
#define LOCK_FILE TSR_MOUNT_RUN_DIR "/rootfs.lock"

/* ---- paths and records ------------------------------------------------------- */

static uint64_t fnv1a64(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The file name of path's record: path without its leading '/', with '/'
 * as '-' and every byte other than [A-Za-z0-9._] as "\xNN" (so "-" in a
 * name cannot collide with a '/').  Names too long for a directory entry
 * become "hash-<16 hex digits>". */
static int record_name(const char *path, char *buf, size_t size)
{
	size_t n = 0;

	if (path[0] != '/' || size < 32)
		return -EINVAL;
	path++;
	if (!*path)
		return snprintf(buf, size, "-") < 0 ? -EINVAL : 0;
	for (const char *p = path; *p; p++) {
		unsigned char c = (unsigned char)*p;
		int w;

		if (c == '/')
			w = snprintf(buf + n, size - n, "-");
		else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '_' ||
			 (c == '.' && p != path))
			w = snprintf(buf + n, size - n, "%c", c);
		else
			w = snprintf(buf + n, size - n, "\\x%02x", c);
		if (w < 0 || (size_t)w >= size - n || n + (size_t)w > 200)
			return snprintf(buf, size, "hash-%016" PRIx64,
					fnv1a64(path - 1)) < 0 ? -EINVAL : 0;
		n += (size_t)w;
	}
	return 0;
}

static int record_path(const char *dir, const char *key, char *buf,
		       size_t size)
{
	char name[256];
	int r = record_name(key, name, sizeof(name));

	if (r)
		return r;
	if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* Writes text as the file path: temporary file, fsync, rename. */
static int write_atomic(const char *dir, const char *path, const char *text)
{
	char tmp[PATH_MAX + 16];
	size_t len = strlen(text);
	int fd, r = mount_mkdir_p(dir);

	if (r)
		return r;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%d", path,
			     (int)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

/* Finds "key=value\n" in text; copies value into buf. */
static int get_field(const char *text, const char *key, char *buf,
		     size_t size)
{
	size_t klen = strlen(key);

	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (len > klen && strncmp(line, key, klen) == 0 &&
		    line[klen] == '=') {
			if (len - klen - 1 >= size)
				return -EBADMSG;
			memcpy(buf, line + klen + 1, len - klen - 1);
			buf[len - klen - 1] = '\0';
			return 0;
		}
		if (!end)
			break;
		line = end + 1;
	}
	return -EBADMSG;
}

static int get_long(const char *text, const char *key, long *ret)
{
	char buf[32], *end;
	long v;
	int r = get_field(text, key, buf, sizeof(buf));

	if (r)
		return r;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || *end)
		return -EBADMSG;
	*ret = v;
	return 0;
}

/* Paths go into records as lines: no newline in them. */
static bool recordable(const char *s)
{
	return !strchr(s, '\n');
}

/* ---- FUSE daemon records ------------------------------------------------------ */

int tsr_mount_daemon_write(const struct tsr_mount_daemon *d)
{
	char path[PATH_MAX], text[2 * PATH_MAX + 64];
	int r;

	if (!recordable(d->store) || !recordable(d->mountpoint))
		return -EINVAL;
	r = record_path(DAEMONS_DIR, d->mountpoint, path, sizeof(path));
	if (r)
		return r;
	snprintf(text, sizeof(text), "pid=%d\nstore=%s\nmountpoint=%s\n",
		 (int)d->pid, d->store, d->mountpoint);
	return write_atomic(DAEMONS_DIR, path, text);
}

int tsr_mount_daemon_read(const char *mountpoint, struct tsr_mount_daemon *ret)
{
	char path[PATH_MAX], text[2 * PATH_MAX + 64];
	struct tsr_mount_daemon d;
	long pid = 0;
	int r = record_path(DAEMONS_DIR, mountpoint, path, sizeof(path));

	if (!r)
		r = mount_read_small(path, text, sizeof(text));
	if (!r)
		r = get_long(text, "pid", &pid);
	if (!r && (pid <= 0 || pid > INT_MAX))
		r = -EBADMSG;
	if (!r)
		r = get_field(text, "store", d.store, sizeof(d.store));
	if (!r)
		r = get_field(text, "mountpoint", d.mountpoint,
			      sizeof(d.mountpoint));
	if (r)
		return r;
	d.pid = (pid_t)pid;
	*ret = d;
	return 0;
}

int tsr_mount_daemon_remove(const char *mountpoint, pid_t pid)
{
	struct tsr_mount_daemon d;
	char path[PATH_MAX];
	int r = record_path(DAEMONS_DIR, mountpoint, path, sizeof(path));

	if (r)
		return r;
	if (pid && tsr_mount_daemon_read(mountpoint, &d) == 0 && d.pid != pid)
		return 0;  /* a newer daemon's record */
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* A daemon may live on after its mount was taken away (umount -l). */
static bool is_fuse_mount(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC;
}

int tsr_mount_daemon_find(const char *store_abs, struct tsr_mount_daemon *ret)
{
	char path[PATH_MAX], text[2 * PATH_MAX + 64];
	struct tsr_mount_daemon *d = malloc(sizeof(*d));
	struct dirent *e;
	long pid;
	int r = -ENOENT;
	DIR *dir;

	if (!d)
		return -ENOMEM;
	dir = opendir(DAEMONS_DIR);
	while (dir && (e = readdir(dir))) {
		if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp") ||
		    (size_t)snprintf(path, sizeof(path), DAEMONS_DIR "/%s",
				     e->d_name) >= sizeof(path) ||
		    mount_read_small(path, text, sizeof(text)) ||
		    get_long(text, "pid", &pid) || pid <= 0 || pid > INT_MAX ||
		    get_field(text, "store", d->store, sizeof(d->store)) ||
		    get_field(text, "mountpoint", d->mountpoint,
			      sizeof(d->mountpoint)))
			continue;
		d->pid = (pid_t)pid;
		if (strcmp(d->store, store_abs) == 0 && tsr_mount_pid_alive(d->pid) &&
		    is_fuse_mount(d->mountpoint)) {
			*ret = *d;
			r = 0;
			break;
		}
	}
	if (dir)
		closedir(dir);
	free(d);
	return r;
}

bool tsr_mount_fuse_dir_is_private(const char *path)
{
	return strncmp(path, FUSE_DIR "/", strlen(FUSE_DIR "/")) == 0;
}

int tsr_mount_fuse_dir(const char *store_abs, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, FUSE_DIR "/%016" PRIx64,
			     fnv1a64(store_abs)) >= size)
		return -ENAMETOOLONG;
	return mount_mkdir_p(buf);
}

/* ---- --rootfs stacks ---------------------------------------------------------- */

int tsr_mount_stack_write(const struct tsr_mount_stack *s)
{
	char path[PATH_MAX], *text;
	size_t size = 5 * PATH_MAX + 512;
	int r;

	if (!recordable(s->mountpoint) || !recordable(s->store) ||
	    !recordable(s->fuse_mnt) || !recordable(s->image) ||
	    !recordable(s->source))
		return -EINVAL;
	r = record_path(STACKS_DIR, s->mountpoint, path, sizeof(path));
	if (r)
		return r;
	text = malloc(size);
	if (!text)
		return -ENOMEM;
	snprintf(text, size,
		 "mountpoint=%s\nstore=%s\nfuse=%s\ndaemon_pid=%d\n"
		 "source=%s\nimage=%s\nloop=%s\nfstype=%s\nread_only=%d\n"
		 "direct_io=%d\n",
		 s->mountpoint, s->store, s->fuse_mnt, (int)s->daemon_pid,
		 s->source, s->image, s->loop_dev, s->fs_type, s->read_only,
		 s->direct_io);
	r = write_atomic(STACKS_DIR, path, text);
	free(text);
	return r;
}

static int parse_stack(const char *text, struct tsr_mount_stack *s)
{
	long pid, ro, dio;
	int r;

	r = get_field(text, "mountpoint", s->mountpoint, sizeof(s->mountpoint));
	if (!r)
		r = get_field(text, "store", s->store, sizeof(s->store));
	if (!r)
		r = get_field(text, "fuse", s->fuse_mnt, sizeof(s->fuse_mnt));
	if (!r)
		r = get_long(text, "daemon_pid", &pid);
	if (!r)
		r = get_field(text, "source", s->source, sizeof(s->source));
	if (!r)
		r = get_field(text, "image", s->image, sizeof(s->image));
	if (!r)
		r = get_field(text, "loop", s->loop_dev, sizeof(s->loop_dev));
	if (!r)
		r = get_field(text, "fstype", s->fs_type, sizeof(s->fs_type));
	if (!r)
		r = get_long(text, "read_only", &ro);
	if (!r)
		r = get_long(text, "direct_io", &dio);
	if (r)
		return r;
	if (pid <= 0 || pid > INT_MAX || s->mountpoint[0] != '/' ||
	    s->fuse_mnt[0] != '/' || strncmp(s->loop_dev, "/dev/loop", 9) != 0)
		return -EBADMSG;
	s->daemon_pid = (pid_t)pid;
	s->read_only = ro != 0;
	s->direct_io = dio != 0;
	return 0;
}

int tsr_mount_stack_read(const char *mountpoint, struct tsr_mount_stack *ret)
{
	char path[PATH_MAX], *text;
	size_t size = 5 * PATH_MAX + 512;
	struct tsr_mount_stack *s;
	int r = record_path(STACKS_DIR, mountpoint, path, sizeof(path));

	if (r)
		return r;
	text = malloc(size);
	s = malloc(sizeof(*s));
	if (!text || !s) {
		r = -ENOMEM;
		goto out;
	}
	r = mount_read_small(path, text, size);
	if (!r)
		r = parse_stack(text, s);
	if (!r)
		*ret = *s;
out:
	free(text);
	free(s);
	return r;
}

int tsr_mount_stack_remove(const char *mountpoint)
{
	char path[PATH_MAX];
	int r = record_path(STACKS_DIR, mountpoint, path, sizeof(path));

	if (r)
		return r;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int tsr_mount_stack_users(const char *fuse_mnt, const char *mountpoint)
{
	char path[PATH_MAX], *text;
	size_t size = 5 * PATH_MAX + 512;
	struct tsr_mount_stack *s;
	struct dirent *e;
	int n = 0;
	DIR *d;

	d = opendir(STACKS_DIR);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	text = malloc(size);
	s = malloc(sizeof(*s));
	if (!text || !s) {
		n = -ENOMEM;
		goto out;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp"))
			continue;
		if ((size_t)snprintf(path, sizeof(path), STACKS_DIR "/%s",
				     e->d_name) >= sizeof(path))
			continue;
		if (mount_read_small(path, text, size) || parse_stack(text, s))
			continue;
		if (strcmp(s->fuse_mnt, fuse_mnt) == 0 &&
		    strcmp(s->mountpoint, mountpoint) != 0)
			n++;
	}
out:
	closedir(d);
	free(text);
	free(s);
	return n;
}

int tsr_mount_stack_lock(void)
{
	int fd, r = mount_mkdir_p(TSR_MOUNT_RUN_DIR);

	if (r)
		return r;
	fd = open(LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			r = -errno;
			close(fd);
			return r;
		}
	}
	return fd;
}
