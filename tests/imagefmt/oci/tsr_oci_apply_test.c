/* SPDX-License-Identifier: MIT */
/*
 * Test driver for <tessera/oci_image.h>: opens an image archive and applies
 * its layers, in order, into a directory.
 *
 *   tsr_oci_apply_test [--platform P] [--ref R] [--verify-diff-ids]
 *                      IMAGE.tar OUTDIR
 *   tsr_oci_apply_test --layer BLOB OUTDIR     (one layer tar, no archive)
 *
 * Prints what it read and the time each step took; errors go to stderr as
 * one line ("layer 2: entry '../x': path escapes the root").  Exit 0 on
 * success, 1 on failure, 2 on usage errors.
 */
#include <tessera/oci_image.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print_stats(const struct tsr_oci_apply_stats *s, double secs)
{
	printf("  %llu entries: %llu files (%llu bytes), %llu dirs, "
	       "%llu symlinks, %llu hard links, %llu special; %llu whiteouts, "
	       "%llu opaque; %llu xattrs skipped; %.2f s\n",
	       (unsigned long long)s->entries, (unsigned long long)s->files,
	       (unsigned long long)s->bytes, (unsigned long long)s->dirs,
	       (unsigned long long)s->symlinks,
	       (unsigned long long)s->hardlinks,
	       (unsigned long long)s->specials,
	       (unsigned long long)s->whiteouts,
	       (unsigned long long)s->opaques,
	       (unsigned long long)s->xattrs_skipped, secs);
}

static int usage(void)
{
	fprintf(stderr, "usage: tsr_oci_apply_test [--platform P] [--ref R] "
		"[--verify-diff-ids] IMAGE.tar OUTDIR\n"
		"       tsr_oci_apply_test --layer BLOB OUTDIR\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const char *const comp[] = { "plain", "gzip", "zstd" };
	struct tsr_oci_open_opts o = { 0 };
	struct tsr_oci_apply_stats st;
	struct tsr_oci_image *img = NULL;
	const char *layer = NULL, *tmp = getenv("TMPDIR");
	char err[1024], work[4096];
	double t0;
	int i, r;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--platform") && i + 1 < argc)
			o.platform = argv[++i];
		else if (!strcmp(argv[i], "--ref") && i + 1 < argc)
			o.ref = argv[++i];
		else if (!strcmp(argv[i], "--verify-diff-ids"))
			o.flags |= TSR_OCI_VERIFY_DIFF_IDS;
		else if (!strcmp(argv[i], "--layer") && i + 1 < argc)
			layer = argv[++i];
		else
			return usage();
	}
	if (argc - i != (layer ? 1 : 2))
		return usage();
	if (layer) {
		t0 = now();
		r = tsr_oci_apply_layer(layer, argv[i], &st, err, sizeof(err));
		if (r) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		print_stats(&st, now() - t0);
		return 0;
	}
	snprintf(work, sizeof(work), "%s/tsr-oci-XXXXXX",
		 tmp && *tmp ? tmp : "/var/tmp");
	if (!mkdtemp(work)) {
		perror(work);
		return 1;
	}
	t0 = now();
	r = tsr_oci_image_open(argv[i], work, &o, &img, err, sizeof(err));
	if (r) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	printf("%s image %s%s%s, manifest %s\n  config %s (%zu bytes)\n",
	       img->format == TSR_OCI_FORMAT_OCI ? "OCI" : "docker",
	       img->platform, img->ref_name ? " " : "",
	       img->ref_name ? img->ref_name : "", img->manifest_digest,
	       img->config_digest, img->config_len);
	printf("  opened in %.2f s\n", now() - t0);
	for (size_t l = 0; l < img->n_layers; l++) {
		const struct tsr_oci_layer *ly = &img->layers[l];

		printf("layer %zu: %s %s %llu bytes, diff_id %s\n", l + 1,
		       ly->digest, comp[ly->compression],
		       (unsigned long long)ly->size, ly->diff_id);
		t0 = now();
		r = tsr_oci_apply_layer(ly->path, argv[i + 1], &st, err,
					sizeof(err));
		if (r) {
			fprintf(stderr, "layer %zu: %s\n", l + 1, err);
			goto out;
		}
		print_stats(&st, now() - t0);
	}
out:
	tsr_oci_image_free(img);
	if (tsr_oci_workdir_clean(work) || rmdir(work))
		fprintf(stderr, "%s: not cleaned\n", work);
	return r ? 1 : 0;
}
