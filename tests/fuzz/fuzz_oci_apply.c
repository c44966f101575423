/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the layer tar reader and changeset applier
 * (tsr_oci_apply_layer, imagefmt/src/oci_apply.c).  Runs as root.
 *
 * Layout, in a private tmpfs mounted nodev,nosuid in a mount namespace of
 * its own (so a device node a layer creates can never be opened, and
 * nothing outlives the process); when that cannot be had, in a temp dir:
 *
 *   T/layer.tar     the input
 *   T/root/         a fresh tree per input, pre-populated: etc/hostname,
 *                   data/{a,d/b}, keep/, and two symlinks out of the root,
 *                   esc -> ../sentinel and esc2 -> T/sentinel
 *   T/sentinel/     beside the root: keep (a file), sub/f, lnk -> keep
 *
 * After each input the sentinel must be unchanged (every entry's type,
 * mode, owner, size, link count, mtime and contents, the directories'
 * mtimes) and T must hold nothing but those three names; then the root is
 * removed.  Any violation aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tessera/oci_image.h>

static char dir[256], blob[320], root[320], sentinel[320];
static bool own_tmpfs;
static char *fingerprint; /* of the sentinel, taken once */
static size_t fp_len;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_oci_apply: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st, (void)type, (void)f;
	if (remove(path) && errno != ENOENT)
		die("remove %s: %s", path, strerror(errno));
	return 0;
}

static void rm_tree(const char *path)
{
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
		die("nftw %s: %s", path, strerror(errno));
}

static void cleanup(void)
{
	if (!*dir)
		return;
	if (own_tmpfs)
		umount2(dir, MNT_DETACH);
	rm_tree(dir);
}

/* ---- the sentinel's fingerprint ------------------------------------------ */

static FILE *fp_out;

static int fp_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)type, (void)f;
	fprintf(fp_out, "%s|%o|%u:%u|%lld|%lu|%lld.%09ld|", path + strlen(sentinel),
		(unsigned)st->st_mode, (unsigned)st->st_uid, (unsigned)st->st_gid,
		(long long)st->st_size, (unsigned long)st->st_nlink,
		(long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	if (S_ISREG(st->st_mode)) {
		char buf[256];
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));

		if (n > 0)
			fwrite(buf, 1, (size_t)n, fp_out);
		if (fd >= 0)
			close(fd);
	} else if (S_ISLNK(st->st_mode)) {
		char buf[256];
		ssize_t n = readlink(path, buf, sizeof(buf));

		if (n > 0)
			fwrite(buf, 1, (size_t)n, fp_out);
	}
	fputc('\n', fp_out);
	return 0;
}

static char *take_fingerprint(size_t *len)
{
	char *s = NULL;

	fp_out = open_memstream(&s, len);
	if (!fp_out)
		die("open_memstream: %s", strerror(errno));
	if (nftw(sentinel, fp_one, 32, FTW_PHYS))
		fprintf(fp_out, "nftw failed: %s\n", strerror(errno));
	fclose(fp_out);
	return s;
}

/* ---- setup ----------------------------------------------------------------- */

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd))
		die("%s: %s", path, strerror(errno));
}

static void mk(const char *fmt, const char *a, const char *b)
{
	char p[512];

	snprintf(p, sizeof(p), fmt, a, b);
	if (mkdir(p, 0755))
		die("mkdir %s: %s", p, strerror(errno));
}

static void make_root(void)
{
	char p[512];

	mk("%s%s", root, "");
	mk("%s/%s", root, "etc");
	mk("%s/%s", root, "data");
	mk("%s/%s", root, "data/d");
	mk("%s/%s", root, "keep");
	snprintf(p, sizeof(p), "%s/etc/hostname", root);
	put(p, "host\n");
	snprintf(p, sizeof(p), "%s/data/a", root);
	put(p, "a\n");
	snprintf(p, sizeof(p), "%s/data/d/b", root);
	put(p, "b\n");
	snprintf(p, sizeof(p), "%s/esc", root);
	if (symlink("../sentinel", p))
		die("symlink: %s", strerror(errno));
	snprintf(p, sizeof(p), "%s/esc2", root);
	if (symlink(sentinel, p))
		die("symlink: %s", strerror(errno));
}

/* Where temp dirs go: $TSR_FUZZ_TMP (fuzz.sh's scratch dir, removed even
 * after a crash), else a tmpfs when there is one. */
static const char *scratch(void)
{
	const char *t = getenv("TSR_FUZZ_TMP");

	if (t && *t)
		return t;
	return access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm";
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[512];

	(void)argc, (void)argv;
	if (geteuid() != 0) {
		fprintf(stderr, "fuzz_oci_apply: SKIP: needs root\n");
		exit(77);
	}
	snprintf(dir, sizeof(dir), "%s/tsr-fuzz-apply.XXXXXX", scratch());
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	atexit(cleanup);
	if (!unshare(CLONE_NEWNS) && !mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) &&
	    !mount("tsr-fuzz", dir, "tmpfs", MS_NODEV | MS_NOSUID, "size=256m,mode=0700"))
		own_tmpfs = true;
	else
		fprintf(stderr, "fuzz_oci_apply: no private tmpfs (%s): using %s as is\n",
			strerror(errno), dir);
	snprintf(blob, sizeof(blob), "%s/layer.tar", dir);
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(sentinel, sizeof(sentinel), "%s/sentinel", dir);
	mk("%s%s", sentinel, "");
	mk("%s/%s", sentinel, "sub");
	snprintf(p, sizeof(p), "%s/keep", sentinel);
	put(p, "keep me\n");
	snprintf(p, sizeof(p), "%s/sub/f", sentinel);
	put(p, "f\n");
	snprintf(p, sizeof(p), "%s/lnk", sentinel);
	if (symlink("keep", p))
		die("symlink: %s", strerror(errno));
	fingerprint = take_fingerprint(&fp_len);
	return 0;
}

/* ---- one input --------------------------------------------------------------- */

static void check_outside(void)
{
	size_t len;
	char *now = take_fingerprint(&len);
	DIR *d;
	struct dirent *e;

	if (len != fp_len || memcmp(now, fingerprint, len))
		die("the sentinel beside the root changed:\n--- before\n%s--- after\n%s",
		    fingerprint, now);
	free(now);
	d = opendir(dir);
	if (!d)
		die("%s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, "layer.tar") && strcmp(e->d_name, "root") &&
		    strcmp(e->d_name, "sentinel"))
			die("%s/%s appeared beside the root", dir, e->d_name);
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsr_oci_apply_stats st;
	char err[512];
	int fd, r;

	fd = open(blob, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd))
		die("%s: %s", blob, strerror(errno));
	make_root();
	*err = 0;
	r = tsr_oci_apply_layer(blob, root, &st, err, sizeof(err));
	if (r > 0)
		die("tsr_oci_apply_layer returned %d", r);
	if (r && (!*err || strchr(err, '\n')))
		die("failure %d without a one-line message ('%s')", r, err);
	check_outside();
	rm_tree(root);
	return 0;
}
