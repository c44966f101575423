/* SPDX-License-Identifier: MIT */
/*
 * Importing an opened OCI / docker image (oci_image.h) into a store as a
 * chain of layers, one per image layer, and recording it as an image
 * (image_store.h).
 *
 * For each layer, base first: a layer whose OCI chain id was imported
 * before (and has the same parent) is reused: a hold, no work.  Otherwise
 * a volume is created on the previous layer (the base gets a fresh ext4 of
 * opts->size: volume_fs.h), its image file attached to a loop device and
 * mounted on opts->mount_dir (mount_stack.h), the layer tar applied, the
 * free space trimmed, the filesystem unmounted and the volume committed
 * (retrying while the kernel still holds the image file).  The image's
 * record then names the layers and holds one hold on each.  On failure
 * every hold taken by this call is dropped and the volume being built is
 * removed: the store is as before.
 *
 * The volumes' image files are served by the caller (a FUSE mount of the
 * store: fuse_server.h, which depends on this module, so the path comes
 * through opts->volume_file).  Needs root (loop devices, mounts).
 *
 * Prints nothing: progress goes to opts->progress; a failure returns a
 * negative errno (the codes of <tessera/store.h>) with one line of context
 * in err (no newline) and what failed in *ret_fail.
 */
#ifndef TESSERA_OCI_IMPORT_H
#define TESSERA_OCI_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera/oci_image.h>
#include <tessera/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What an import was doing when it failed. */
enum tsr_oci_import_step {
	TSR_OCI_IMPORT_NAME = 1, /* choosing the name; -EEXIST: an image has it */
	TSR_OCI_IMPORT_LAYER,    /* building layer fail->layer */
	TSR_OCI_IMPORT_RECORD,   /* writing the image record */
};

struct tsr_oci_import_fail {
	enum tsr_oci_import_step step;
	size_t layer; /* 0-based, for TSR_OCI_IMPORT_LAYER */
};

/* One layer done (or found in the store). */
struct tsr_oci_import_progress {
	size_t layer, n_layers;   /* 0-based index, count */
	const char *digest;       /* the layer blob's */
	bool reused;              /* already in the store: stats is NULL */
	const struct tsr_oci_apply_stats *stats;
};

struct tsr_oci_import_opts {
	const char *name;      /* the image's name; NULL: its ref name, else its
				* manifest digest */
	uint64_t size;         /* size of the base layer's filesystem */
	const char *mount_dir; /* an empty directory each layer is mounted on */
	/* Writes the path of volume's image file into buf (len bytes): 0 or
	 * -errno.  Called once per layer built, after the volume exists. */
	int (*volume_file)(void *arg, const char *volume, char *buf, size_t len);
	void *volume_file_arg;
	/* Optional. */
	void (*progress)(void *arg, const struct tsr_oci_import_progress *p);
	void *progress_arg;
};

/*
 * Imports img (from tsr_oci_image_open, with at least one layer) into
 * store.  name_out (name_len bytes) gets the image's name once it is chosen
 * (also when it is refused); on success *ret_top is its top layer.  -EINVAL for an image without layers or a name
 * that cannot name an image, -EEXIST when an image of that name exists,
 * else what a step returned.
 */
int tsr_oci_import(struct tsr_store *store, const struct tsr_oci_image *img,
		   const struct tsr_oci_import_opts *opts, char *name_out, size_t name_len,
		   struct tsr_layer_id *ret_top, struct tsr_oci_import_fail *ret_fail,
		   char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
