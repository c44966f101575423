/* SPDX-License-Identifier: MIT */
/*
 * Images in a store: named chains of layers, and the records an OCI import
 * keeps about them.  All of it is kept in blockstore's front-end records
 * (tsr_record_*), so blockstore knows layers and volumes only:
 *
 *   image/NAME        top layer id (32 bytes) | the image record (JSON)
 *   oci-chain/CHAIN   the layer id (32 bytes) an OCI chain id was
 *                     imported as
 *
 * The image record is one JSON object: name, manifest and config digests,
 * platform, import time, its layers base first (tessera layer id, blob
 * digest, diff id, chain id, whether an earlier import's layer was reused)
 * and the image config.
 *
 * Functions return 0 or a negative errno (the codes of <tessera/store.h>)
 * and print nothing.
 */
#ifndef TESSERA_IMAGE_STORE_H
#define TESSERA_IMAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera/oci_image.h>
#include <tessera/store.h>

/* ---- images: named chains of layers ---------------------------------------- */
/* An image names its top layer (the chain is the top's ancestry) and keeps
 * its importer's metadata (opaque here).  Names are 1..255 printable bytes;
 * '/' is allowed ("docker.io/library/busybox:1.36").  The holds an image
 * keeps on its layers are its importer's to take and drop. */

/* Whether name can name an image. */
bool tsr_image_name_ok(const char *name);
/* -EINVAL for a bad name, -EFBIG for metadata beyond a record's size. */
int tsr_image_put(struct tsr_store *store, const char *name, const struct tsr_layer_id *top,
		  const void *meta, size_t len);
/* ret_meta (malloc'd, NUL-terminated after len bytes) and ret_len may be
 * NULL.  -ENOENT when absent (or name cannot name an image), -EBADMSG for
 * a record too short to hold a top layer id. */
int tsr_image_get(struct tsr_store *store, const char *name, struct tsr_layer_id *ret_top,
		  void **ret_meta, size_t *ret_len);
int tsr_image_remove(struct tsr_store *store, const char *name);
/* In name order; a non-zero return from fn stops the walk and is returned.
 * Records too short to hold a top layer id are skipped. */
int tsr_image_list(struct tsr_store *store,
		   int (*fn)(const char *name, const struct tsr_layer_id *top,
			     const void *meta, size_t len, void *arg),
		   void *arg);

/* ---- the image record of an OCI import ------------------------------------- */

/* A parsed image record.  The strings point into it: valid until
 * tsr_image_record_free. */
struct tsr_image_record {
	const char *name, *manifest;
	const char *platform;   /* NULL when the record has none */
	size_t n_layers;        /* > 0 */
	int64_t imported;       /* seconds since the epoch */
	void *json;             /* private: the parsed JSON */
};

/*
 * Records image name over layers ids[0..img->n_layers) (base first, the
 * last one its top): the image record built from img, the chain ids
 * chains[] and which layers were reused.  -EEXIST is not checked here:
 * an existing record of that name is replaced.
 */
int tsr_image_record_write(struct tsr_store *store, const char *name,
			   const struct tsr_oci_image *img, const struct tsr_layer_id *ids,
			   const bool *reused, char chains[][TSR_OCI_DIGEST_MAX]);
/* Parses an image record (the meta of tsr_image_get / tsr_image_list).
 * -EBADMSG when it is not one. */
int tsr_image_record_parse(const void *meta, size_t len, struct tsr_image_record *ret);
/* tsr_image_get + tsr_image_record_parse. */
int tsr_image_record_load(struct tsr_store *store, const char *name,
			  struct tsr_image_record *ret);
/* The tessera layer id of layer i (base first).  -EBADMSG when damaged. */
int tsr_image_record_layer(const struct tsr_image_record *rec, size_t i,
			   struct tsr_layer_id *ret_id);
/* The record as JSON text, indented, keys sorted; malloc'd (free it), or
 * NULL when out of memory. */
char *tsr_image_record_text(const struct tsr_image_record *rec);
void tsr_image_record_free(struct tsr_image_record *rec);

/* ---- OCI chain ids ---------------------------------------------------------- */

/* ChainID(L0) = DiffID(L0), ChainID(Ln) = SHA256(ChainID(Ln-1) + " " +
 * DiffID(Ln)).  prev is NULL for the base layer.  Equal chain ids mean
 * equal filesystem content. */
int tsr_oci_chain_id(const char *prev, const char *diff_id, char out[TSR_OCI_DIGEST_MAX]);
/* The layer a chain id was imported as: -ENOENT when never, -EBADMSG for a
 * damaged record.  The layer itself may be gone since. */
int tsr_oci_chain_get(struct tsr_store *store, const char *chain, struct tsr_layer_id *ret_id);
int tsr_oci_chain_put(struct tsr_store *store, const char *chain, const struct tsr_layer_id *id);
/* Drops the chain-id record of layer i of rec when its layer is gone
 * (after tsr_layer_remove dropped the last hold). */
void tsr_oci_chain_forget(struct tsr_store *store, const struct tsr_image_record *rec, size_t i);

#endif /* TESSERA_IMAGE_STORE_H */
