/* SPDX-License-Identifier: MIT */
/*
 * The archive toolbox of the image readers (oci_internal.h, "oci_tar.c"):
 * digests, the members of the outer tar (names checked,
 * links kept as aliases), one-pass extraction of the wanted members into
 * the workdir with their digests checked, and reading workdir files back.
 * oci_archive.c (the entry point), oci_index.c and oci_docker.c call it;
 * it calls none of them, so the files call each other in no circle.
 */
#include "oci_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tsr_oci_digest_check(const char *d)
{
	size_t hexlen, i;
	const char *hex;

	if (!d)
		return -EBADMSG;
	if (!strncmp(d, "sha256:", 7))
		hexlen = 64;
	else if (!strncmp(d, "sha512:", 7))
		hexlen = 128;
	else
		return strchr(d, ':') ? -ENOTSUP : -EBADMSG;
	hex = d + 7;
	for (i = 0; i < hexlen; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		      (hex[i] >= 'a' && hex[i] <= 'f')))
			return -EBADMSG;
	return hex[hexlen] == '\0' ? 0 : -EBADMSG;
}

/* Short form for messages: "sha256:0123456789ab.." */
const char *oci_shortd(const char *d, char buf[32])
{
	snprintf(buf, 32, "%.19s%s", d, strlen(d) > 19 ? ".." : "");
	return buf;
}

int oci_mkdir_work(struct ctx *c, const char *sub)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", c->workdir, sub);
	if (mkdir(p, 0700) && errno != EEXIST)
		return oci_fail(c, -errno, "%s: %s", p, strerror(errno));
	return 0;
}

static const char *resolve_alias(struct ctx *c, const char *name)
{
	for (int hop = 0; hop < MAX_ALIAS_HOPS; hop++) {
		size_t i;

		for (i = 0; i < c->n_aliases; i++)
			if (!strcmp(c->aliases[i].name, name))
				break;
		if (i == c->n_aliases)
			return name;
		name = c->aliases[i].target;
	}
	return NULL;
}

static int add_alias(struct ctx *c, const char *name, const char *target)
{
	struct alias *na;

	if (c->n_aliases >= TSR_OCI_MAX_MEMBERS)
		return oci_fail(c, -E2BIG, "%s: too many links", c->file);
	na = realloc(c->aliases, (c->n_aliases + 1) * sizeof(*na));
	if (!na)
		return oci_fail(c, -ENOMEM, "out of memory");
	c->aliases = na;
	na[c->n_aliases].name = strdup(name);
	na[c->n_aliases].target = strdup(target);
	if (!na[c->n_aliases].name || !na[c->n_aliases].target) {
		free(na[c->n_aliases].name);
		free(na[c->n_aliases].target);
		return oci_fail(c, -ENOMEM, "out of memory");
	}
	c->n_aliases++;
	return 0;
}

/* Resolves ".." in a link target lexically inside the archive's namespace
 * (nothing on disk is looked at).  -EXDEV if it climbs above the top. */
static int resolve_dots(const char *in, char *out, size_t outsz)
{
	size_t o = 0;
	const char *p = in;

	if (*p == '/')
		return -EXDEV;
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);

		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (!o)
				return -EXDEV;
			while (o && out[o - 1] != '/')
				o--;
			if (o)
				o--;
		} else if (len && !(len == 1 && p[0] == '.')) {
			if (len + 2 > outsz - o)
				return -E2BIG;
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p = *end ? end + 1 : end;
	}
	out[o] = '\0';
	return o ? 0 : -EXDEV;
}

/* Records an outer-tar symlink or hard link as an alias, resolved to stay
 * in the archive's namespace.  Nothing is created on disk. */
static int record_link(struct ctx *c, const char *name,
		       struct archive_entry *e)
{
	char joined[2 * TSR_OCI_PATH_MAX + 2], norm[TSR_OCI_PATH_MAX + 1];
	const char *t = archive_entry_hardlink(e);

	if (t) { /* hard link targets are archive-relative */
		snprintf(joined, sizeof(joined), "%s", t);
	} else {
		const char *slash = strrchr(name, '/');

		t = archive_entry_symlink(e);
		if (!t)
			t = "";
		/* an absolute target is refused by resolve_dots */
		snprintf(joined, sizeof(joined), "%.*s%s%s",
			 t[0] == '/' ? 0 : slash ? (int)(slash - name) : 0,
			 name, t[0] != '/' && slash ? "/" : "", t);
	}
	if (resolve_dots(joined, norm, sizeof(norm)))
		return oci_fail(c, -EXDEV, "member '%s': link target '%s' "
				"leaves the archive", name, t);
	return c->aliases_done ? 0 : add_alias(c, name, norm);
}

const EVP_MD *oci_digest_md(const char *d)
{
	return !strncmp(d, "sha512:", 7) ? EVP_sha512() : EVP_sha256();
}

void oci_hex_digest(const EVP_MD *md, const unsigned char *h,
		       unsigned len, char out[TSR_OCI_DIGEST_MAX])
{
	int n = snprintf(out, TSR_OCI_DIGEST_MAX, "%s:",
			 md == EVP_sha512() ? "sha512" : "sha256");

	for (unsigned i = 0; i < len; i++)
		n += snprintf(out + n, TSR_OCI_DIGEST_MAX - n, "%02x", h[i]);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Streams the current member into w->dest, hashing it; checks size and
 * digest.  The file is removed on failure. */
static int extract_member(struct ctx *c, struct archive *a,
			  struct archive_entry *e, struct want *w, char *buf)
{
	const EVP_MD *md = oci_digest_md(w->expect);
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned hlen = 0;
	int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1, claimed;
	uint64_t total = 0;
	EVP_MD_CTX *mdc;
	char sd[32], what[256];
	int fd, r = 0;

	if (size >= 0 && (uint64_t)size > w->max_size)
		return oci_fail(c, -E2BIG, "member '%s': %lld bytes, more than the "
			    "limit of %llu", w->member, (long long)size,
			    (unsigned long long)w->max_size);
	if (w->exact_size >= 0 && size >= 0 && size != w->exact_size)
		return oci_fail(c, -EBADMSG, "blob %s: %lld bytes in the archive, "
			    "%lld in its descriptor", oci_shortd(w->expect, sd),
			    (long long)size, (long long)w->exact_size);
	if (w->expect[0])
		snprintf(what, sizeof(what), "blob %s", oci_shortd(w->expect, sd));
	else
		snprintf(what, sizeof(what), "member '%.200s'", w->member);
	claimed = size >= 0 ? size : w->exact_size;
	if (claimed >= 0 && (r = oci_charge(c, what, 0, (uint64_t)claimed, false)))
		return r;
	mdc = EVP_MD_CTX_new();
	if (!mdc || !EVP_DigestInit_ex(mdc, md, NULL)) {
		EVP_MD_CTX_free(mdc);
		return oci_fail(c, -ENOMEM, "EVP_DigestInit failed");
	}
	fd = open(w->dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		r = oci_fail(c, -errno, "%s: %s", w->dest, strerror(errno));
		goto out;
	}
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, IOBUF);

		if (n == 0)
			break;
		if (n < 0) {
			r = oci_fail(c, -EBADMSG, "member '%s': %s", w->member,
				 archive_error_string(a));
			goto out;
		}
		if ((uint64_t)n > w->max_size - total) {
			r = oci_fail(c, -E2BIG, "member '%s': more than %llu bytes",
				 w->member, (unsigned long long)w->max_size);
			goto out;
		}
		r = oci_charge(c, what, total, (uint64_t)n, true);
		if (r)
			goto out;
		total += (uint64_t)n;
		EVP_DigestUpdate(mdc, buf, (size_t)n);
		r = write_all(fd, buf, (size_t)n);
		if (r) {
			r = oci_fail(c, r, "%s: %s", w->dest, strerror(-r));
			goto out;
		}
	}
	if ((size >= 0 && total != (uint64_t)size) ||
	    (w->exact_size >= 0 && total != (uint64_t)w->exact_size)) {
		r = oci_fail(c, -EBADMSG, "member '%s': truncated (%llu bytes)",
			 w->member, (unsigned long long)total);
		goto out;
	}
	EVP_DigestFinal_ex(mdc, h, &hlen);
	oci_hex_digest(md, h, hlen, w->got);
	if (w->expect[0] && strcmp(w->expect, w->got)) {
		char sg[32];

		r = oci_fail(c, -EBADMSG, "blob %s: digest mismatch (got %s)",
			 oci_shortd(w->expect, sd), oci_shortd(w->got, sg));
		goto out;
	}
	w->done = true;
out:
	EVP_MD_CTX_free(mdc);
	if (fd >= 0) {
		if (close(fd) && !r)
			r = oci_fail(c, -errno, "%s: %s", w->dest, strerror(errno));
		if (r)
			unlink(w->dest);
	}
	return r;
}

/* One pass over the archive: checks every member, records links (first
 * pass), extracts the members of w[] (already alias-resolved). */
int oci_scan(struct ctx *c, struct want *w, size_t n)
{
	char norm[TSR_OCI_PATH_MAX + 1];
	struct archive_entry *e;
	struct archive *a;
	size_t members = 0;
	char *buf;
	int r = 0;

	buf = malloc(IOBUF);
	a = archive_read_new();
	if (!buf || !a) {
		free(buf);
		archive_read_free(a);
		return oci_fail(c, -ENOMEM, "out of memory");
	}
	/* built-in decompressors only: no external programs */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, c->file, 1 << 16) != ARCHIVE_OK) {
		r = oci_fail(c, archive_errno(a) > 0 ? -archive_errno(a) : -EBADMSG,
			 "%s: %s", c->file, archive_error_string(a));
		goto out;
	}
	for (;;) {
		const char *name;
		int ar = archive_read_next_header(a, &e);

		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			r = oci_fail(c, -EBADMSG, "%s: %s", c->file,
				 archive_error_string(a));
			goto out;
		}
		if (++members > TSR_OCI_MAX_MEMBERS) {
			r = oci_fail(c, -E2BIG, "%s: more than %u members", c->file,
				 TSR_OCI_MAX_MEMBERS);
			goto out;
		}
		name = archive_entry_pathname(e);
		if (!name || strlen(name) > TSR_OCI_PATH_MAX) {
			r = oci_fail(c, -EBADMSG, "%s: member without a usable name",
				 c->file);
			goto out;
		}
		r = tsr_oci_path_normalize(name, norm, sizeof(norm));
		if (r) {
			r = oci_fail(c, r, "member '%s': %s", name, r == -EXDEV ?
				 "path escapes the archive" : "bad path");
			goto out;
		}
		if (archive_entry_hardlink(e) ||
		    archive_entry_filetype(e) == AE_IFLNK) {
			r = record_link(c, norm, e);
			if (r)
				goto out;
			continue;
		}
		if (archive_entry_filetype(e) == AE_IFDIR)
			continue;
		if (archive_entry_filetype(e) != AE_IFREG) {
			r = oci_fail(c, -ENOTSUP, "member '%s': not a file, "
				 "directory or link", name);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			if (strcmp(w[i].member, norm))
				continue;
			if (w[i].done) {
				r = oci_fail(c, -EBADMSG, "member '%s' appears "
					 "twice", norm);
				goto out;
			}
			r = extract_member(c, a, e, &w[i], buf);
			if (r)
				goto out;
			break;
		}
	}
	c->aliases_done = true;
out:
	archive_read_free(a);
	free(buf);
	return r;
}

/* Sets up w for MEMBER (resolved through aliases) written to DEST. */
int oci_want_init(struct ctx *c, struct want *w, const char *member,
		     char *dest, uint64_t max, int64_t exact,
		     const char *expect)
{
	char norm[TSR_OCI_PATH_MAX + 1];
	const char *m;

	memset(w, 0, sizeof(*w));
	w->dest = dest;
	w->max_size = max;
	w->exact_size = exact;
	if (expect)
		snprintf(w->expect, sizeof(w->expect), "%s", expect);
	if (!dest)
		return oci_fail(c, -ENOMEM, "out of memory");
	if (tsr_oci_path_normalize(member, norm, sizeof(norm)) || !*norm)
		return oci_fail(c, -EXDEV, "'%s': not a member name", member);
	m = resolve_alias(c, norm);
	if (!m)
		return oci_fail(c, -ELOOP, "member '%s': too many links", member);
	snprintf(w->member, sizeof(w->member), "%s", m);
	return 0;
}

char *oci_wpath(struct ctx *c, const char *fmt, const char *arg)
{
	char rel[TSR_OCI_PATH_MAX + 1], *p;

	snprintf(rel, sizeof(rel), fmt, arg);
	if (asprintf(&p, "%s/%s", c->workdir, rel) < 0)
		return NULL;
	return p;
}

int oci_read_file(struct ctx *c, const char *path, char **ret,
		     size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return oci_fail(c, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) || st.st_size > TSR_OCI_JSON_MAX) {
		close(fd);
		return oci_fail(c, -E2BIG, "%s: too large", path);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return oci_fail(c, -ENOMEM, "out of memory");
	}
	n = pread(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		return oci_fail(c, -EIO, "%s: short read", path);
	}
	buf[n] = '\0';
	*ret = buf;
	*len = (size_t)n;
	return 0;
}

/* Extracts the blobs of descriptors d[0..n) in one pass, verified; paths[i]
 * (allocated) name them under workdir.  A blob fetched before (the file
 * exists: it was verified when written) is not read again. */
int oci_fetch_blobs(struct ctx *c, const struct desc *d, size_t n,
		       uint64_t max, char **paths)
{
	struct want *w = calloc(n ? n : 1, sizeof(*w));
	size_t nw = 0, i, j;
	char sd[32];
	int r = 0;

	if (!w)
		return oci_fail(c, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		char member[TSR_OCI_PATH_MAX + 1];

		/* "sha256:hex" -> "blobs/sha256/hex" (both algorithms have
		 * six-letter names) */
		snprintf(member, sizeof(member), "blobs/%.6s/%s", d[i].digest,
			 d[i].digest + 7);
		paths[i] = oci_wpath(c, "%s", member);
		if (!paths[i]) {
			r = oci_fail(c, -ENOMEM, "out of memory");
			goto out;
		}
		if (access(paths[i], F_OK) == 0)
			continue;
		for (j = 0; j < nw; j++)
			if (!strcmp(w[j].expect, d[i].digest))
				break;
		if (j < nw)
			continue;
		r = oci_want_init(c, &w[nw], member, paths[i], max, d[i].size,
			      d[i].digest);
		if (r)
			goto out;
		nw++;
	}
	if (nw)
		r = oci_scan(c, w, nw);
	for (j = 0; !r && j < nw; j++)
		if (!w[j].done)
			r = oci_fail(c, -ENOENT, "blob %s: not in the archive",
				 oci_shortd(w[j].expect, sd));
out:
	free(w);
	if (r)
		for (i = 0; i < n; i++) {
			free(paths[i]);
			paths[i] = NULL;
		}
	return r;
}

/* Appends ", s" (or "s") to list, truncating with "..." when full. */
void oci_list_add(char *list, size_t size, const char *s)
{
	size_t len = strlen(list);

	if (len + 8 >= size)
		return;
	snprintf(list + len, size - len, "%s%s", len ? ", " : "", s);
	if (strlen(list) + 8 >= size)
		snprintf(list + size - 8, 8, "...");
}

void oci_ctx_release(struct ctx *c)
{
	for (size_t i = 0; i < c->n_aliases; i++) {
		free(c->aliases[i].name);
		free(c->aliases[i].target);
	}
	free(c->aliases);
}
