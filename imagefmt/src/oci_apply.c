/* SPDX-License-Identifier: MIT */
/*
 * Applying one OCI layer tar to a directory tree (tsr_oci_apply_layer).
 *
 * The tar is untrusted, and so is the tree below root_dir (earlier layers
 * made it).  libarchive reads the tar (gzip, zstd or plain); the writing is
 * ours rather than archive_write_disk's, because the overlay semantics
 * need it: parents' times restored after their children change, a
 * directory replaced by a file removed recursively, old xattrs of a kept
 * directory cleared, whiteouts.  Containment does not rest on string
 * checks alone: every path is opened from a descriptor of root_dir one
 * component at a time with O_DIRECTORY | O_NOFOLLOW (what openat2's
 * RESOLVE_NO_SYMLINKS does), every final component is operated on with
 * the *at() calls relative to its parent's descriptor without following
 * it (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, unlinkat before create, O_EXCL),
 * so a symlink anywhere in the tree is never followed, wherever it points.
 *
 * Pass 1 reads every header, checks it, and collects whiteouts; nothing is
 * changed until the whole tar has been checked.  Then the whiteouts are
 * applied (they see only what earlier layers made).  Pass 2 creates the
 * entries.  Directory times go last (dirtime below).
 */
#include <tessera/oci_image.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define WH_META ".wh..wh."
#define MAX_FILE_SIZE (1ull << 40)  /* one entry's (possibly sparse) size */
#define XATTR_VALUE_MAX 65536
#define XATTR_NAME_LEN 255
#define BLOCK (1u << 20)

/* Directory times to set at the end.  Records with entry == false hold the
 * times a directory had before this layer first changed its children; they
 * are restored newest-first, so the oldest (the one before this layer)
 * wins.  Records with entry == true are directories of the layer, set
 * after all restores. */
struct dirtime {
	char *path;
	struct timespec ts[2];
	bool entry;
};

struct whiteout {
	char *dir;   /* normalized parent */
	char *name;  /* NULL: opaque */
};

struct apply {
	const char *blob;
	int root;
	char *err;
	size_t errlen;
	bool failed;
	struct tsr_oci_apply_stats st;
	char cache_path[TSR_OCI_PATH_MAX + 1]; /* the last parent opened */
	int cache_fd;                          /* -1: none */
	struct dirtime *dt;
	size_t n_dt, cap_dt;
	struct whiteout *wh;
	size_t n_wh, cap_wh;
};

static int fail(struct apply *ap, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct apply *ap, int r, const char *fmt, ...)
{
	va_list ap_;

	if (!ap->failed && ap->err && ap->errlen) {
		va_start(ap_, fmt);
		vsnprintf(ap->err, ap->errlen, fmt, ap_);
		va_end(ap_);
	}
	ap->failed = true;
	return r;
}

/* A tar name made printable for one-line messages. */
static const char *shown(const char *in, char out[256])
{
	size_t i;

	for (i = 0; in && in[i] && i < 200; i++)
		out[i] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? '?' : in[i];
	snprintf(out + i, 256 - i, "%s", in && in[i] ? "..." : "");
	return out;
}

int tsr_oci_path_normalize(const char *in, char *out, size_t outsz)
{
	size_t o = 0, depth = 0;
	const char *p = in;

	if (!in || !outsz)
		return -EBADMSG;
	if (*p == '/')
		return -EXDEV;
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return -EXDEV;
		if (len && !(len == 1 && p[0] == '.')) {
			if (++depth > TSR_OCI_MAX_DEPTH ||
			    len + 1 > outsz - o || o + len > TSR_OCI_PATH_MAX)
				return -E2BIG;
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p = *end ? end + 1 : end;
	}
	out[o] = '\0';
	return 0;
}

/* Splits normalized "a/b/c" in place: returns "c", *dir is "a/b" ("" for
 * a name without a slash). */
static const char *split(char *path, const char **dir)
{
	char *slash = strrchr(path, '/');

	if (!slash) {
		*dir = "";
		return path;
	}
	*slash = '\0';
	*dir = path;
	return slash + 1;
}

static int note_dir(struct apply *ap, const char *rel, int fd, bool entry,
		    const struct timespec *ts)
{
	struct dirtime *d;
	struct stat st;

	if (!entry && ap->n_dt && !ap->dt[ap->n_dt - 1].entry &&
	    !strcmp(ap->dt[ap->n_dt - 1].path, rel))
		return 0;
	if (!entry && fstat(fd, &st))
		return fail(ap, -errno, "'%s': %s", rel, strerror(errno));
	if (ap->n_dt == ap->cap_dt) {
		size_t cap = ap->cap_dt ? 2 * ap->cap_dt : 64;

		d = realloc(ap->dt, cap * sizeof(*d));
		if (!d)
			return fail(ap, -ENOMEM, "out of memory");
		ap->dt = d;
		ap->cap_dt = cap;
	}
	d = &ap->dt[ap->n_dt];
	d->path = strdup(rel);
	if (!d->path)
		return fail(ap, -ENOMEM, "out of memory");
	d->entry = entry;
	if (entry) {
		d->ts[0] = ts[0];
		d->ts[1] = ts[1];
	} else {
		d->ts[0] = st.st_atim;
		d->ts[1] = st.st_mtim;
	}
	ap->n_dt++;
	return 0;
}

/*
 * Opens directory REL ("" is the root) from the root, one component at a
 * time, never following a symlink.  create: missing components are made
 * (0755, owned by root; the layer's own entry, if any, fixes them).
 * Returns a new descriptor, or -ENOENT (missing), -EXDEV (a symlink in the
 * way), -ENOTDIR (something else in the way); culprit (TSR_OCI_PATH_MAX+1
 * bytes) then names the component's path.
 */
static int walk(struct apply *ap, const char *rel, bool create, char *culprit)
{
	char prefix[TSR_OCI_PATH_MAX + 1];
	const char *p = rel;
	size_t plen = 0;
	int fd = fcntl(ap->root, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return -errno;
	prefix[0] = '\0';
	while (*p) {
		const char *end = strchrnul(p, '/');
		char comp[TSR_OCI_PATH_MAX + 1];
		int nfd, e;
		struct stat st;

		size_t clen = (size_t)(end - p); /* rel is at most PATH_MAX */

		memcpy(comp, p, clen);
		comp[clen] = '\0';
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			     O_NONBLOCK | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && create) {
			e = note_dir(ap, prefix, fd, false, NULL);
			if (e) {
				close(fd);
				return e;
			}
			if (mkdirat(fd, comp, 0755) && errno != EEXIST) {
				e = -errno;
				close(fd);
				return e;
			}
			nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY |
				     O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		}
		if (plen)
			prefix[plen++] = '/';
		memcpy(prefix + plen, comp, clen + 1);
		plen += clen;
		if (nfd < 0) {
			e = errno;
			if (e == ELOOP || e == ENOTDIR)
				e = !fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) &&
				    S_ISLNK(st.st_mode) ? EXDEV : ENOTDIR;
			close(fd);
			snprintf(culprit, TSR_OCI_PATH_MAX + 1, "%s", prefix);
			return -e;
		}
		close(fd);
		fd = nfd;
		p = *end ? end + 1 : end;
	}
	return fd;
}

static void drop_cache(struct apply *ap)
{
	if (ap->cache_fd >= 0)
		close(ap->cache_fd);
	ap->cache_fd = -1;
}

/* The parent directory of entry NAME, created if missing: a borrowed
 * descriptor (cached; valid until the next call or drop_cache). */
static int parent_fd(struct apply *ap, const char *dir, const char *name,
		     int *fd)
{
	char culprit[TSR_OCI_PATH_MAX + 1], sn[256];
	int r;

	if (ap->cache_fd >= 0 && !strcmp(ap->cache_path, dir)) {
		*fd = ap->cache_fd;
		return 0;
	}
	drop_cache(ap);
	r = walk(ap, dir, true, culprit);
	if (r == -EXDEV)
		return fail(ap, r, "entry '%s': path goes through symlink '%s'",
			    shown(name, sn), culprit);
	if (r == -ENOTDIR)
		return fail(ap, r, "entry '%s': '%s' is not a directory",
			    shown(name, sn), culprit);
	if (r < 0)
		return fail(ap, r, "entry '%s': %s", shown(name, sn),
			    strerror(-r));
	snprintf(ap->cache_path, sizeof(ap->cache_path), "%s", dir);
	ap->cache_fd = r;
	*fd = r;
	return 0;
}

/* Removes every child of the open directory fd (recursively). */
static int empty_dir(struct apply *ap, int fd, unsigned depth);

/* Removes NAME in dirfd, whatever it is; a missing NAME is fine. */
static int remove_tree(struct apply *ap, int dirfd, const char *name,
		       unsigned depth)
{
	int fd, r;

	if (!unlinkat(dirfd, name, 0) || errno == ENOENT)
		return 0;
	if (errno != EISDIR)
		return -errno;
	if (depth > TSR_OCI_MAX_DEPTH)
		return -E2BIG;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = empty_dir(ap, fd, depth + 1);
	close(fd);
	if (!r && unlinkat(dirfd, name, AT_REMOVEDIR))
		r = -errno;
	return r;
}

static int empty_dir(struct apply *ap, int fd, unsigned depth)
{
	struct dirent *de;
	bool again = true;
	int r = 0, dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	DIR *d;

	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	/* Removing while reading may hide entries: read until a pass finds
	 * nothing. */
	while (!r && again) {
		again = false;
		rewinddir(d);
		while (!r && (de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			r = remove_tree(ap, fd, de->d_name, depth);
			again = true;
		}
	}
	closedir(d);
	return r;
}

static struct archive *open_tar(struct apply *ap)
{
	struct archive *a = archive_read_new();

	if (!a) {
		fail(ap, -ENOMEM, "out of memory");
		return NULL;
	}
	/* Only what OCI layers use: no external decompressor programs. */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, ap->blob, BLOCK) != ARCHIVE_OK) {
		fail(ap, -EBADMSG, "%s: %s", ap->blob, archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Next header; 1 at the end, 0 for an entry, -errno. */
static int next_entry(struct apply *ap, struct archive *a,
		      struct archive_entry **e)
{
	int r = archive_read_next_header(a, e);

	if (r == ARCHIVE_EOF)
		return 1;
	if (r < ARCHIVE_WARN)
		return fail(ap, -EBADMSG, "entry %llu: %s",
			    (unsigned long long)ap->st.entries + 1,
			    archive_error_string(a));
	if (++ap->st.entries > TSR_OCI_MAX_ENTRIES)
		return fail(ap, -E2BIG, "more than %u entries",
			    TSR_OCI_MAX_ENTRIES);
	return 0;
}

/* The entry's name, normalized into out. */
static int entry_path(struct apply *ap, struct archive_entry *e, char *out)
{
	const char *name = archive_entry_pathname(e);
	char sn[256];
	int r;

	if (!name)
		return fail(ap, -EBADMSG, "entry %llu: no name",
			    (unsigned long long)ap->st.entries);
	r = tsr_oci_path_normalize(name, out, TSR_OCI_PATH_MAX + 1);
	if (r == -EXDEV)
		return fail(ap, r, "entry '%s': path escapes the root",
			    shown(name, sn));
	if (r)
		return fail(ap, r, "entry '%s': path too long or too deep",
			    shown(name, sn));
	return 0;
}

static int add_whiteout(struct apply *ap, const char *dir, const char *name)
{
	struct whiteout *w;

	if (ap->n_wh == ap->cap_wh) {
		size_t cap = ap->cap_wh ? 2 * ap->cap_wh : 64;

		w = realloc(ap->wh, cap * sizeof(*w));
		if (!w)
			return fail(ap, -ENOMEM, "out of memory");
		ap->wh = w;
		ap->cap_wh = cap;
	}
	w = &ap->wh[ap->n_wh];
	w->dir = strdup(dir);
	w->name = name ? strdup(name) : NULL;
	if (!w->dir || (name && !w->name)) {
		free(w->dir);
		free(w->name);
		return fail(ap, -ENOMEM, "out of memory");
	}
	ap->n_wh++;
	return 0;
}

/* Pass 1: checks every header; collects whiteouts. */
static int check_entry(struct apply *ap, struct archive_entry *e)
{
	char path[TSR_OCI_PATH_MAX + 1], sn[256];
	const char *raw = archive_entry_pathname(e), *base, *dir, *val, *xn;
	mode_t type = archive_entry_filetype(e);
	size_t xsize;
	int r = entry_path(ap, e, path), nx = 0;

	if (r)
		return r;
	shown(raw, sn);
	if (archive_entry_uid(e) < 0 || archive_entry_uid(e) >= 0xffffffffLL ||
	    archive_entry_gid(e) < 0 || archive_entry_gid(e) >= 0xffffffffLL)
		return fail(ap, -EBADMSG, "entry '%s': bad owner", sn);
	if (archive_entry_hardlink(e)) {
		char t[TSR_OCI_PATH_MAX + 1];

		r = tsr_oci_path_normalize(archive_entry_hardlink(e), t,
					   sizeof(t));
		if (r || !*t)
			return fail(ap, r ? r : -EXDEV, "entry '%s': hard link "
				    "target escapes the root", sn);
	} else if (type == AE_IFLNK) {
		const char *t = archive_entry_symlink(e);

		if (!t || !*t || strlen(t) > TSR_OCI_PATH_MAX)
			return fail(ap, -EBADMSG, "entry '%s': bad symlink "
				    "target", sn);
	} else if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFCHR &&
		   type != AE_IFBLK && type != AE_IFIFO) {
		return fail(ap, -ENOTSUP, "entry '%s': unsupported type", sn);
	}
	if (type == AE_IFREG && (uint64_t)archive_entry_size(e) > MAX_FILE_SIZE)
		return fail(ap, -E2BIG, "entry '%s': absurd size", sn);
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &xn, (const void **)&val, &xsize) ==
	       ARCHIVE_OK) {
		if (++nx > (int)TSR_OCI_MAX_XATTRS || !xn ||
		    strlen(xn) > XATTR_NAME_LEN || xsize > XATTR_VALUE_MAX)
			return fail(ap, -E2BIG, "entry '%s': xattrs too many or "
				    "too large", sn);
	}
	if (!*path)
		return type == AE_IFDIR && !archive_entry_hardlink(e) ? 0 :
		       fail(ap, -EXDEV, "entry '%s': the root must stay a "
			    "directory", sn);
	base = split(path, &dir);
	if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)))
		return 0;
	if (!strcmp(base, WH_OPAQUE))
		return add_whiteout(ap, dir, NULL);
	if (!strncmp(base, WH_META, strlen(WH_META)))
		return 0; /* aufs metadata (.wh..wh.plnk ...): skipped */
	base += strlen(WH_PREFIX);
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return fail(ap, -EXDEV, "entry '%s': bad whiteout", sn);
	return add_whiteout(ap, dir, base);
}

static int apply_whiteouts(struct apply *ap)
{
	char culprit[TSR_OCI_PATH_MAX + 1];
	int r = 0;

	for (size_t i = 0; !r && i < ap->n_wh; i++) {
		struct whiteout *w = &ap->wh[i];
		const char *what = w->name ? w->name : WH_OPAQUE;
		char full[2 * TSR_OCI_PATH_MAX + 2];
		int fd;

		snprintf(full, sizeof(full), "%s%s%s", w->dir, *w->dir ? "/" : "",
			 what);
		fd = walk(ap, w->dir, false, culprit);
		if (fd == -ENOENT || fd == -ENOTDIR)
			continue; /* nothing below to delete */
		if (fd == -EXDEV)
			return fail(ap, fd, "whiteout '%s': path goes through "
				    "symlink '%s'", full, culprit);
		if (fd < 0)
			return fail(ap, fd, "whiteout '%s': %s", full,
				    strerror(-fd));
		/* Either way fd's children change: keep its times. */
		r = note_dir(ap, w->dir, fd, false, NULL);
		if (!r && w->name) {
			struct stat st;

			if (!fstatat(fd, w->name, &st, AT_SYMLINK_NOFOLLOW))
				ap->st.whiteouts++;
			r = remove_tree(ap, fd, w->name, 0);
		} else if (!r) {
			ap->st.opaques++;
			r = empty_dir(ap, fd, 0);
		}
		close(fd);
		if (r && !ap->failed)
			r = fail(ap, r, "whiteout '%s': %s", full, strerror(-r));
	}
	drop_cache(ap);
	return r;
}

/* Sets xattrs of the entry on fd (or, fd < 0, on dirfd/name without
 * following it); trusted.* is skipped, and user.* on what cannot hold it. */
static int set_xattrs(struct apply *ap, struct archive_entry *e, int fd,
		      int dirfd, const char *name, const char *sn)
{
	char proc[64 + TSR_OCI_PATH_MAX];
	const char *xn;
	const void *val;
	size_t size;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd, name);
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &xn, &val, &size) == ARCHIVE_OK) {
		int r;

		if (!strncmp(xn, "trusted.", 8)) {
			ap->st.xattrs_skipped++;
			continue;
		}
		r = fd >= 0 ? fsetxattr(fd, xn, val, size, 0)
			    : lsetxattr(proc, xn, val, size, 0);
		if (r && errno == EPERM && fd < 0 && !strncmp(xn, "user.", 5)) {
			ap->st.xattrs_skipped++;
			continue;
		}
		if (r)
			return fail(ap, -errno, "entry '%s': xattr %s: %s", sn,
				    xn, strerror(errno));
	}
	return 0;
}

/* A kept directory (or the root) takes only the layer's xattrs. */
static int clear_xattrs(struct apply *ap, int fd, const char *sn)
{
	char list[65536];
	ssize_t n = flistxattr(fd, list, sizeof(list));

	if (n < 0)
		return errno == ENOTSUP ? 0 : fail(ap, -errno, "entry '%s': "
						   "xattrs: %s", sn,
						   strerror(errno));
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
		if (strncmp(list + i, "trusted.", 8) &&
		    fremovexattr(fd, list + i) && errno != ENODATA)
			return fail(ap, -errno, "entry '%s': xattr %s: %s", sn,
				    list + i, strerror(errno));
	return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	if (archive_entry_mtime_is_set(e)) {
		ts[1].tv_sec = archive_entry_mtime(e);
		ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	} else {
		ts[1].tv_sec = 0;
		ts[1].tv_nsec = UTIME_NOW;
	}
	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	} else {
		ts[0] = ts[1];
	}
}

static int write_data(struct apply *ap, struct archive *a,
		      struct archive_entry *e, int fd, const char *sn)
{
	uint64_t esize = (uint64_t)archive_entry_size(e), end = 0;

	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(a, &buf, &len, &off);

		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return fail(ap, -EBADMSG, "entry '%s': %s", sn,
				    archive_error_string(a));
		if (off < 0 || (uint64_t)off > esize ||
		    len > esize - (uint64_t)off)
			return fail(ap, -EBADMSG, "entry '%s': data beyond its "
				    "size", sn);
		for (size_t done = 0; done < len;) {
			ssize_t n = pwrite(fd, (const char *)buf + done,
					   len - done, off + (off_t)done);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return fail(ap, -errno, "entry '%s': %s", sn,
					    strerror(errno));
			done += (size_t)n;
		}
		end = (uint64_t)off + len;
		ap->st.bytes += len;
	}
	if (end < esize && ftruncate(fd, (off_t)esize))
		return fail(ap, -errno, "entry '%s': %s", sn, strerror(errno));
	return 0;
}

/* Pass 2: one entry. */
static int create_entry(struct apply *ap, struct archive *a,
			struct archive_entry *e)
{
	char path[TSR_OCI_PATH_MAX + 1], sn[256];
	const char *base, *dir, *hl = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	uid_t uid = (uid_t)archive_entry_uid(e);
	gid_t gid = (gid_t)archive_entry_gid(e);
	mode_t mode = archive_entry_perm(e) & 07777;
	struct timespec ts[2];
	struct stat st;
	int r, pfd = -1, fd = -1;

	r = entry_path(ap, e, path);
	if (r)
		return r;
	shown(archive_entry_pathname(e), sn);
	entry_times(e, ts);
	if (!*path) { /* the root: a directory (checked in pass 1) */
		r = note_dir(ap, "", ap->root, true, ts);
		if (!r && (fchown(ap->root, uid, gid) ||
			   fchmod(ap->root, mode)))
			r = fail(ap, -errno, "entry '%s': %s", sn,
				 strerror(errno));
		r = r ? r : clear_xattrs(ap, ap->root, sn);
		return r ? r : set_xattrs(ap, e, ap->root, -1, "", sn);
	}
	base = split(path, &dir);
	if (!strncmp(base, WH_PREFIX, strlen(WH_PREFIX)))
		return 0; /* applied in pass 1 */
	r = parent_fd(ap, dir, archive_entry_pathname(e), &pfd);
	r = r ? r : note_dir(ap, dir, pfd, false, NULL);
	if (r)
		return r;
	if (!hl && type == AE_IFDIR && !fstatat(pfd, base, &st,
						AT_SYMLINK_NOFOLLOW) &&
	    S_ISDIR(st.st_mode)) {
		fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return fail(ap, -errno, "entry '%s': %s", sn,
				    strerror(errno));
		r = clear_xattrs(ap, fd, sn);
		goto meta;
	}
	r = remove_tree(ap, pfd, base, 0);
	if (r)
		return fail(ap, r, "entry '%s': removing what was there: %s",
			    sn, strerror(-r));
	if (hl) {
		char t[TSR_OCI_PATH_MAX + 1], culprit[TSR_OCI_PATH_MAX + 1];
		const char *tbase, *tdir;
		int tfd;

		tsr_oci_path_normalize(hl, t, sizeof(t)); /* checked in pass 1 */
		tbase = split(t, &tdir);
		tfd = walk(ap, tdir, false, culprit);
		if (tfd == -EXDEV)
			return fail(ap, tfd, "entry '%s': hard link target goes "
				    "through symlink '%s'", sn, culprit);
		if (tfd < 0)
			return fail(ap, tfd, "entry '%s': hard link target: %s",
				    sn, strerror(-tfd));
		r = linkat(tfd, tbase, pfd, base, 0) ? -errno : 0;
		close(tfd);
		if (r)
			return fail(ap, r, "entry '%s': hard link to '%s': %s",
				    sn, hl, strerror(-r));
		ap->st.hardlinks++;
		return 0; /* a hard link has no metadata of its own */
	}
	switch (type) {
	case AE_IFDIR:
		if (mkdirat(pfd, base, 0700))
			return fail(ap, -errno, "entry '%s': %s", sn,
				    strerror(errno));
		fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_NONBLOCK | O_CLOEXEC);
		break;
	case AE_IFREG:
		fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
			    O_CLOEXEC, 0600);
		if (fd >= 0) {
			ap->st.files++;
			r = write_data(ap, a, e, fd, sn);
		}
		break;
	case AE_IFLNK:
		if (symlinkat(archive_entry_symlink(e), pfd, base) ||
		    fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW))
			return fail(ap, -errno, "entry '%s': %s", sn,
				    strerror(errno));
		ap->st.symlinks++;
		r = set_xattrs(ap, e, -1, pfd, base, sn);
		if (!r && utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW))
			r = fail(ap, -errno, "entry '%s': %s", sn,
				 strerror(errno));
		return r;
	default: /* char, block, fifo (checked in pass 1) */
		/* We made it and it is no symlink: fchmodat may follow. */
		if (mknodat(pfd, base, type | 0600,
			    makedev(archive_entry_rdevmajor(e),
				    archive_entry_rdevminor(e))) ||
		    fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) ||
		    fchmodat(pfd, base, mode, 0))
			return fail(ap, -errno, "entry '%s': %s", sn,
				    strerror(errno));
		ap->st.specials++;
		r = set_xattrs(ap, e, -1, pfd, base, sn);
		if (!r && utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW))
			r = fail(ap, -errno, "entry '%s': %s", sn,
				 strerror(errno));
		return r;
	}
	if (fd < 0)
		return fail(ap, -errno, "entry '%s': %s", sn, strerror(errno));
meta:
	/* chown clears setuid/setgid and security.capability: it goes
	 * first, then the mode, then the xattrs. */
	if (!r && (fchown(fd, uid, gid) || fchmod(fd, mode)))
		r = fail(ap, -errno, "entry '%s': %s", sn, strerror(errno));
	r = r ? r : set_xattrs(ap, e, fd, -1, NULL, sn);
	if (!r && type == AE_IFDIR) {
		if (*dir) /* undo split(): path is the whole name again */
			path[base - path - 1] = '/';
		ap->st.dirs++;
		r = note_dir(ap, path, fd, true, ts);
	} else if (!r && futimens(fd, ts)) {
		r = fail(ap, -errno, "entry '%s': %s", sn, strerror(errno));
	}
	close(fd);
	return r;
}

/* Restores and sets directory times (struct dirtime); best effort for
 * directories a later entry removed. */
static void finish_dirtimes(struct apply *ap)
{
	char culprit[TSR_OCI_PATH_MAX + 1];

	drop_cache(ap);
	for (int pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < ap->n_dt; k++) {
			size_t i = pass ? k : ap->n_dt - 1 - k;
			int fd;

			if (ap->dt[i].entry != (pass == 1))
				continue;
			fd = walk(ap, ap->dt[i].path, false, culprit);
			if (fd < 0)
				continue;
			futimens(fd, ap->dt[i].ts);
			close(fd);
		}
}

int tsr_oci_apply_layer(const char *blob_path, const char *root_dir,
			struct tsr_oci_apply_stats *stats,
			char *err, size_t errlen)
{
	struct apply ap = { .blob = blob_path, .err = err, .errlen = errlen,
			    .cache_fd = -1 };
	struct archive_entry *e;
	struct archive *a;
	int r;

	if (err && errlen)
		err[0] = '\0';
	ap.root = open(root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ap.root < 0)
		return fail(&ap, -errno, "%s: %s", root_dir, strerror(errno));
	a = open_tar(&ap);
	r = a ? 0 : -EBADMSG;
	while (!r && !(r = next_entry(&ap, a, &e)))
		r = check_entry(&ap, e);
	archive_read_free(a);
	if (r == 1)
		r = apply_whiteouts(&ap);
	if (!r) {
		ap.st.entries = 0;
		a = open_tar(&ap);
		r = a ? 0 : -EBADMSG;
		while (!r && !(r = next_entry(&ap, a, &e)))
			r = create_entry(&ap, a, e);
		archive_read_free(a);
		if (r == 1)
			r = 0;
	}
	finish_dirtimes(&ap);
	close(ap.root);
	for (size_t i = 0; i < ap.n_dt; i++)
		free(ap.dt[i].path);
	free(ap.dt);
	for (size_t i = 0; i < ap.n_wh; i++) {
		free(ap.wh[i].dir);
		free(ap.wh[i].name);
	}
	free(ap.wh);
	if (stats)
		*stats = ap.st;
	return r;
}
