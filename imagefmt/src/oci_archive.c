/* SPDX-License-Identifier: MIT */
/*
 * Reading an image archive: an OCI image layout in a tar (skopeo's
 * oci-archive:, a tar of a umoci layout) or a `docker save` tar.
 *
 * The archive is untrusted.  It is read with libarchive in a few passes
 * (top-level JSON files; each level of index; config and layers); every
 * pass checks every member's name (relative, no "..", bounded) and type
 * (regular files and directories; symlinks and hard links are recorded as
 * aliases resolved by name inside the archive, never created on disk;
 * anything else is refused).  Only members the chosen image needs are
 * written, into files of our own naming under the caller's workdir, and
 * each is hashed while it is written and checked against the digest and
 * size its descriptor gives.  JSON is parsed with jansson (duplicate keys
 * refused) and is at most TSR_OCI_JSON_MAX bytes.
 *
 * This file is the entry point: it finds out the archive's format and
 * hands over to oci_index.c (OCI layouts) or oci_docker.c (docker save);
 * all three use the archive toolbox of oci_tar.c.
 *
 * Workdir layout (tsr_oci_workdir_clean removes it):
 *   meta/{oci-layout,index.json,manifest.json}  blobs/<alg>/<hex>  tmp/
 */
#include "oci_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tsr_oci_image_free(struct tsr_oci_image *img)
{
	if (!img)
		return;
	for (size_t i = 0; i < img->n_layers; i++) {
		free(img->layers[i].path);
		free(img->layers[i].media_type);
	}
	free(img->layers);
	free(img->manifest_json);
	free(img->config_json);
	free(img->ref_name);
	free(img);
}

int tsr_oci_image_open(const char *file, const char *workdir,
		       const struct tsr_oci_open_opts *opts,
		       struct tsr_oci_image **ret, char *err, size_t errlen)
{
	static const struct tsr_oci_open_opts none;
	struct ctx c = { .file = file, .workdir = workdir,
			 .o = opts ? opts : &none, .err = err,
			 .errlen = errlen };
	struct want w[3];
	struct tsr_oci_image *img;
	static const char *const top[] = { "oci-layout", "index.json",
					   "manifest.json" };
	int r = 0;

	if (err && errlen)
		err[0] = '\0';
	if (c.o->platform && !oci_platform_match(c.o->platform, "x", "x", NULL) &&
	    !strchr(c.o->platform, '/'))
		return oci_fail(&c, -EINVAL, "platform '%s': not os/arch[/variant]",
			    c.o->platform);
	img = calloc(1, sizeof(*img));
	if (!img)
		return oci_fail(&c, -ENOMEM, "out of memory");
	memset(w, 0, sizeof(w));
	r = oci_mkdir_work(&c, "meta");
	r = r ? r : oci_mkdir_work(&c, "tmp");
	r = r ? r : oci_mkdir_work(&c, "blobs");
	r = r ? r : oci_mkdir_work(&c, "blobs/sha256");
	r = r ? r : oci_mkdir_work(&c, "blobs/sha512");
	for (int i = 0; !r && i < 3; i++) {
		char *dest = oci_wpath(&c, "meta/%s", top[i]);

		r = oci_want_init(&c, &w[i], top[i], dest, TSR_OCI_JSON_MAX, -1,
			      NULL);
		if (!r && access(dest, F_OK) == 0)
			r = oci_fail(&c, -EEXIST, "%s: workdir is not empty",
				 workdir);
	}
	r = r ? r : oci_scan(&c, w, 3);
	if (!r && w[1].done) {
		img->format = TSR_OCI_FORMAT_OCI;
		r = oci_open_oci(&c, img);
	} else if (!r && w[2].done) {
		img->format = TSR_OCI_FORMAT_DOCKER;
		r = oci_open_docker(&c, img);
	} else if (!r) {
		r = oci_fail(&c, -EBADMSG, "%s: not an image archive (no "
			 "index.json or manifest.json at its top)", file);
	}
	for (int i = 0; i < 3; i++)
		free(w[i].dest);
	oci_ctx_release(&c);
	if (r) {
		tsr_oci_image_free(img);
		return r;
	}
	*ret = img;
	return 0;
}

/* Removes every entry of dir workdir/sub (files only), then the dir. */
static int clean_dir(const char *workdir, const char *sub)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int r = 0;

	snprintf(p, sizeof(p), "%s/%s", workdir, sub);
	d = opendir(p);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    unlinkat(dirfd(d), de->d_name, 0) && !r)
			r = -errno;
	closedir(d);
	if (rmdir(p) && !r)
		r = -errno;
	return r;
}

int tsr_oci_workdir_clean(const char *workdir)
{
	static const char *const subs[] = { "meta", "tmp", "blobs/sha256",
					    "blobs/sha512", "blobs" };
	int r = 0, q;

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		q = clean_dir(workdir, subs[i]);
		if (q && !r)
			r = q;
	}
	return r;
}
