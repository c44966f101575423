/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: reading an image archive (imagefmt/src/oci_archive.c,
 * oci_index.c, oci_docker.c): the outer tar, index.json and nested
 * indexes, manifests, configs, docker-save manifest.json, blob digests.
 *
 * Each input is written to a file and opened with tsr_oci_image_open into
 * a fresh workdir (with TSR_OCI_VERIFY_DIFF_IDS when the input's length is
 * odd, so both paths are taken; with small extraction caps when its
 * length is 2 or 3 modulo 4, so the caps' refusals are taken too, and no
 * layer of an image opened may pass them).  On success the image must be coherent:
 * every layer file lies in the workdir and has the size the image reports;
 * the JSON it hands back is NUL-terminated at its length.  Then
 * tsr_oci_workdir_clean must leave the workdir empty (rmdir succeeds) and
 * nothing else may appear beside it.  Any violation aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tessera/oci_image.h>

static char dir[256], input[320], workdir[320];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_oci_image: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st, (void)type, (void)f;
	return remove(path);
}

static void cleanup(void)
{
	if (*dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
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
	(void)argc, (void)argv;
	snprintf(dir, sizeof(dir), "%s/tsr-fuzz-oci.XXXXXX", scratch());
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	atexit(cleanup);
	snprintf(input, sizeof(input), "%s/image.tar", dir);
	snprintf(workdir, sizeof(workdir), "%s/work", dir);
	return 0;
}

static void check_image(const struct tsr_oci_image *img)
{
	size_t wl = strlen(workdir);

	if (!img->manifest_json || strlen(img->manifest_json) != img->manifest_len ||
	    !img->config_json || strlen(img->config_json) != img->config_len)
		die("manifest or config not NUL-terminated at its length");
	if (img->n_layers > TSR_OCI_MAX_LAYERS || (img->n_layers && !img->layers))
		die("%zu layers", img->n_layers);
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct tsr_oci_layer *l = &img->layers[i];
		struct stat st;

		if (!l->path || strncmp(l->path, workdir, wl) || l->path[wl] != '/' ||
		    strstr(l->path + wl, "/../"))
			die("layer %zu: path '%s' outside the workdir", i,
			    l->path ? l->path : "(null)");
		if (lstat(l->path, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != l->size)
			die("layer %zu: %s is not a regular file of %llu bytes", i, l->path,
			    (unsigned long long)l->size);
		if (tsr_oci_digest_check(l->digest))
			die("layer %zu: bad digest '%s'", i, l->digest);
	}
}

/* The temp dir holds the input and nothing else once the workdir is gone. */
static void check_dir_clean(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		die("%s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, "image.tar"))
			die("%s/%s appeared", dir, e->d_name);
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsr_oci_open_opts opts = { .flags = size & 1 ? TSR_OCI_VERIFY_DIFF_IDS : 0 };
	struct tsr_oci_image *img = NULL;
	char err[512];
	int fd, r;

	if (size & 2) {
		opts.max_blob = 4096;
		opts.max_total = 16384;
	}
	fd = open(input, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd))
		die("%s: %s", input, strerror(errno));
	if (mkdir(workdir, 0700))
		die("%s: %s", workdir, strerror(errno));
	*err = 0;
	r = tsr_oci_image_open(input, workdir, &opts, &img, err, sizeof(err));
	if (r > 0)
		die("tsr_oci_image_open returned %d", r);
	if (!r) {
		check_image(img);
		for (size_t i = 0; opts.max_blob && i < img->n_layers; i++)
			if (img->layers[i].size > opts.max_blob)
				die("layer %zu: %llu bytes past the cap", i + 1,
				    (unsigned long long)img->layers[i].size);
		tsr_oci_image_free(img);
	} else if (img) {
		die("failure %d wrote *ret", r);
	} else if (!*err || strchr(err, '\n')) {
		die("failure %d without a one-line message ('%s')", r, err);
	}
	r = tsr_oci_workdir_clean(workdir);
	if (r)
		die("tsr_oci_workdir_clean: %s", strerror(-r));
	if (rmdir(workdir))
		die("workdir not empty after tsr_oci_workdir_clean: %s", strerror(errno));
	check_dir_clean();
	return 0;
}
