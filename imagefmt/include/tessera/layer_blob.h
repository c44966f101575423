/* SPDX-License-Identifier: MIT */
/*
 * Layer blobs (imagefmt/FORMAT.md): one layer, its parent's id and the
 * chunk objects it adds, in a single streamable file.  Written and read
 * over <tessera/store.h>.  Functions return 0 or a negative errno.
 */
#ifndef TESSERA_LAYER_BLOB_H
#define TESSERA_LAYER_BLOB_H

#include <stdbool.h>
#include <stdint.h>

#include <tessera/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a blob holds; filled from the header as soon as it is read, so a
 * caller can name a missing parent even when the import fails. */
struct tsr_layer_blob_info {
	struct tsr_layer_id id;
	bool has_parent;
	struct tsr_layer_id parent;
	uint32_t chunk_size;
	uint64_t size;
	uint64_t entries;
	uint64_t objects;
	uint64_t bytes;            /* the blob's length */
	uint8_t blob_digest[TSR_DIGEST_LEN]; /* SHA-256 of the whole blob */
};

/* Writes layer id to fd as a blob.  progress (may be NULL) counts objects. */
int tsr_layer_blob_write(struct tsr_store *store, const struct tsr_layer_id *id, int fd,
			 const struct tsr_progress *progress, struct tsr_layer_blob_info *ret_info);

/* The largest layer (its size in bytes) tsr_layer_blob_read accepts when
 * the caller names no limit.  A blob's entry and object counts are bounded
 * by its chunk count, so this also bounds what reading it allocates (32
 * bytes a data entry: 128 MiB at 256 GiB of 64 KiB chunks). */
#define TSR_LAYER_BLOB_MAX_SIZE_DEFAULT (256ull << 30)

/* Reads a blob from fd and imports its layer (named name when not NULL).
 * max_size: the largest layer size accepted (0: the default above); it is
 * checked against the header before anything is allocated.
 * -EBADMSG: the blob is malformed or does not verify; -EFBIG: it claims a
 * layer larger than max_size (info->size says how large); -ENOENT: its
 * parent is not in the store (info->parent names it); -EINVAL: another
 * chunk size.  info (may be NULL) is filled as far as the blob was read. */
int tsr_layer_blob_read(struct tsr_store *store, int fd, const char *name, uint64_t max_size,
			const struct tsr_progress *progress, struct tsr_layer_blob_info *info,
			struct tsr_layer_id *ret_id);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_LAYER_BLOB_H */
