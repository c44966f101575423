/* SPDX-License-Identifier: MIT */
/* Reading chunk objects by digest: cache, else index -> pack -> verify
 * (object.c). */
#ifndef TSR_OBJECT_H
#define TSR_OBJECT_H

#include <stdint.h>

#include <tessera/store.h>

struct tsr_store;
struct chunk_record;

/* Reports a damaged object through the store's log, once per digest
 * (rec NULL: it is missing from the index). */
void object_report_damage(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
			  const struct chunk_record *rec, int err);
/* Copies len bytes at off of the chunk named digest, verified.  -EIO when
 * the object is damaged or missing (reported once), -ENOMEM. */
int object_read(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		uint32_t off, uint32_t len, void *dst);
/* The whole chunk, verified, into chunk (chunk_size bytes of scratch: a
 * miss decodes straight into it, so after an error it holds garbage and
 * must not reach a reader).  For copy-up, which owns its buffer. */
int object_read_chunk(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		      uint8_t *chunk);

#endif /* TSR_OBJECT_H */
