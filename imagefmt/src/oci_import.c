/* SPDX-License-Identifier: MIT */
/*
 * The OCI import pipeline (oci_import.h): an opened image archive becomes
 * a chain of committed layers and an image record.
 *
 * Invariant: every layer in im->ids[0..held) carries one hold taken by this
 * import; a failure drops them, top first, so nothing of the import stays
 * in the store.  The volume a layer is built on exists only between its
 * creation and its commit (or removal on failure).
 */
#include <tessera/oci_import.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tessera/image_store.h>
#include <tessera/mount_stack.h>
#include <tessera/volume_fs.h>

#define COMMIT_BUSY_RETRIES 200 /* x 50 ms: the kernel releases the image late */

struct import {
	struct tsr_store *store;
	const struct tsr_oci_image *img;
	const struct tsr_oci_import_opts *o;
	struct tsr_oci_import_fail *fail;
	char *err;
	size_t errlen;
	struct tsr_layer_id *ids;   /* layers held for the image so far */
	bool *reused;
	char (*chains)[TSR_OCI_DIGEST_MAX];
	size_t held;
};

/* Records the failure of step (layer i) with a message; returns r. */
static int failed(struct import *im, int r, enum tsr_oci_import_step step, size_t i,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int failed(struct import *im, int r, enum tsr_oci_import_step step, size_t i,
		  const char *fmt, ...)
{
	va_list ap;

	im->fail->step = step;
	im->fail->layer = i;
	if (im->err && im->errlen) {
		va_start(ap, fmt);
		vsnprintf(im->err, im->errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

static void report(struct import *im, size_t i, const struct tsr_oci_apply_stats *st)
{
	struct tsr_oci_import_progress p = {
		.layer = i, .n_layers = im->img->n_layers,
		.digest = im->img->layers[i].digest, .reused = st == NULL, .stats = st,
	};

	if (im->o->progress)
		im->o->progress(im->o->progress_arg, &p);
}

/* Applies layer i to the filesystem of the volume whose image file is
 * image (made first when fresh), mounted through a loop device, then
 * trims it. */
static int apply_on_volume(struct import *im, size_t i, const char *image, bool fresh,
			   struct tsr_oci_apply_stats *st)
{
	const struct tsr_oci_layer *l = &im->img->layers[i];
	const char *root = im->o->mount_dir;
	char msg[512];
	struct tsr_image_mount m;
	enum tsr_mount_step step;
	int r, r2;

	if (fresh) {
		r = tsr_volume_fs_make(image, tsr_store_chunk_size(im->store), NULL, msg,
				       sizeof(msg));
		if (r)
			return failed(im, r, TSR_OCI_IMPORT_LAYER, i, "making the filesystem: %s",
				      msg);
	}
	r = tsr_mount_image(image, root, "ext4", 0, &m, &step);
	if (r) {
		if (step == TSR_MOUNT_STEP_ATTACH)
			return failed(im, r, TSR_OCI_IMPORT_LAYER, i,
				      "attaching %s to a loop device: %s", image, tsr_strerror(r));
		return failed(im, r, TSR_OCI_IMPORT_LAYER, i, "mounting %s: %s", m.loop_dev,
			      tsr_strerror(r));
	}
	r = tsr_oci_apply_layer(l->path, root, st, msg, sizeof(msg));
	if (r)
		failed(im, r, TSR_OCI_IMPORT_LAYER, i, "layer %zu (%s): %s", i + 1, l->digest,
		       msg);
	else if ((r = tsr_volume_fs_trim(root, NULL)) < 0)
		failed(im, r, TSR_OCI_IMPORT_LAYER, i, "trimming layer %zu: %s", i + 1,
		       tsr_strerror(r));
	r2 = tsr_unmount_image(root, m.loop_dev, image, &step);
	if (r2 && !r && step == TSR_MOUNT_STEP_UNMOUNT)
		r = failed(im, r2, TSR_OCI_IMPORT_LAYER, i, "unmounting layer %zu: %s", i + 1,
			   tsr_strerror(r2));
	return r;
}

/* Commits vname; the kernel may still hold the image file open for a
 * moment after the loop device let go of it. */
static int commit_volume(struct import *im, const char *vname, struct tsr_layer_id *ret_id)
{
	for (int tries = 0;; tries++) {
		struct tsr_volume *vol;
		int r = tsr_volume_open(im->store, vname, &vol);

		if (!r)
			r = tsr_volume_commit(vol, NULL, NULL, ret_id);
		if (r != -EBUSY || tries == COMMIT_BUSY_RETRIES)
			return r;
		usleep(50 * 1000);
	}
}

/* Whether the layer chain names (*id) can stand for layer i over parent. */
static bool reusable(struct import *im, size_t i, const struct tsr_layer_id *parent,
		     const struct tsr_layer_id *id)
{
	struct tsr_layer_info li;

	if (tsr_layer_stat(im->store, id, &li))
		return false;
	return i == 0 ? !li.has_parent
		      : li.has_parent && !memcmp(li.parent.bytes, parent->bytes, TSR_DIGEST_LEN);
}

/* Imports layer i on parent (NULL for the base); im->ids[i] gets a layer
 * holding one hold for the image. */
static int import_layer(struct import *im, size_t i, const struct tsr_layer_id *parent)
{
	struct tsr_layer_id *id = &im->ids[i];
	struct tsr_oci_apply_stats st;
	char vname[64], image[PATH_MAX + 300];
	int r;

	if (tsr_oci_chain_get(im->store, im->chains[i], id) == 0 &&
	    reusable(im, i, parent, id)) {
		im->reused[i] = true;
		report(im, i, NULL);
		r = tsr_layer_hold(im->store, id);
		return r ? failed(im, r, TSR_OCI_IMPORT_LAYER, i, "holding layer %zu: %s", i + 1,
				  tsr_strerror(r))
			 : 0;
	}
	snprintf(vname, sizeof(vname), "image-import.%ld.%zu", (long)getpid(), i);
	r = tsr_volume_create(im->store, vname, parent ? 0 : im->o->size, parent);
	if (r)
		return failed(im, r, TSR_OCI_IMPORT_LAYER, i, "creating volume %s: %s", vname,
			      tsr_strerror(r));
	r = im->o->volume_file(im->o->volume_file_arg, vname, image, sizeof(image));
	if (r)
		failed(im, r, TSR_OCI_IMPORT_LAYER, i, "the image file of volume %s: %s", vname,
		       tsr_strerror(r));
	else
		r = apply_on_volume(im, i, image, parent == NULL, &st);
	if (!r) {
		r = commit_volume(im, vname, id);
		if (r)
			failed(im, r, TSR_OCI_IMPORT_LAYER, i, "committing layer %zu: %s", i + 1,
			       tsr_strerror(r));
	}
	if (r) {
		tsr_volume_remove(im->store, vname);
		return r;
	}
	report(im, i, &st);
	/* The chain id names this layer from now on (a later import of an
	 * image sharing the base finds it). */
	tsr_oci_chain_put(im->store, im->chains[i], id);
	return 0;
}

/* The image's name: opts->name, else its ref name, else its manifest
 * digest; it must name an image and no image may have it yet. */
static int choose_name(struct import *im, char *name, size_t len)
{
	const struct tsr_oci_image *img = im->img;

	snprintf(name, len, "%s",
		 im->o->name ? im->o->name : img->ref_name ? img->ref_name : img->manifest_digest);
	if (!tsr_image_name_ok(name))
		return failed(im, -EINVAL, TSR_OCI_IMPORT_NAME, 0,
			      "'%s' cannot name an image", name);
	if (tsr_image_get(im->store, name, NULL, NULL, NULL) == 0)
		return failed(im, -EEXIST, TSR_OCI_IMPORT_NAME, 0,
			      "an image named '%s' exists", name);
	return 0;
}

static int import_layers(struct import *im)
{
	const struct tsr_oci_image *img = im->img;
	int r;

	im->ids = calloc(img->n_layers, sizeof(*im->ids));
	im->reused = calloc(img->n_layers, sizeof(*im->reused));
	im->chains = calloc(img->n_layers, sizeof(*im->chains));
	if (!im->ids || !im->reused || !im->chains)
		return failed(im, -ENOMEM, TSR_OCI_IMPORT_LAYER, 0, "out of memory");
	for (size_t i = 0; i < img->n_layers; i++) {
		r = tsr_oci_chain_id(i ? im->chains[i - 1] : NULL, img->layers[i].diff_id,
				     im->chains[i]);
		if (r)
			return failed(im, r, TSR_OCI_IMPORT_LAYER, i, "layer %zu: chain id: %s",
				      i + 1, tsr_strerror(r));
		r = import_layer(im, i, i ? &im->ids[i - 1] : NULL);
		if (r)
			return r;
		im->held++;
	}
	return 0;
}

int tsr_oci_import(struct tsr_store *store, const struct tsr_oci_image *img,
		   const struct tsr_oci_import_opts *opts, char *name_out, size_t name_len,
		   struct tsr_layer_id *ret_top, struct tsr_oci_import_fail *ret_fail,
		   char *err, size_t errlen)
{
	struct tsr_oci_import_fail ignored;
	struct import im = { .store = store, .img = img, .o = opts,
			     .fail = ret_fail ? ret_fail : &ignored, .err = err,
			     .errlen = errlen };
	char name[TSR_NAME_MAX + 1];
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (name_len)
		name_out[0] = '\0';
	if (!img->n_layers)
		return failed(&im, -EINVAL, TSR_OCI_IMPORT_LAYER, 0, "the image has no layers");
	r = choose_name(&im, name, sizeof(name));
	snprintf(name_out, name_len, "%s", name);
	if (!r)
		r = import_layers(&im);
	if (!r) {
		r = tsr_image_record_write(store, name, img, im.ids, im.reused, im.chains);
		if (r)
			failed(&im, r, TSR_OCI_IMPORT_RECORD, 0, "recording image '%s': %s", name,
			       tsr_strerror(r));
	}
	if (!r)
		*ret_top = im.ids[img->n_layers - 1];
	/* Drop what this import held, top first. */
	while (r && im.held > 0) {
		im.held--;
		tsr_layer_remove(store, &im.ids[im.held], NULL);
	}
	free(im.ids);
	free(im.reused);
	free(im.chains);
	return r;
}
