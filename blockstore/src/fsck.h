/* SPDX-License-Identifier: MIT */
/*
 * What the steps of fsck share (fsck.c runs them): the state of one run,
 * its report lines (fsck_state.c) and the pack walk (fsck_packs.c).
 */
#ifndef TSR_FSCK_H
#define TSR_FSCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera/store.h>

#include "meta.h"

enum {
	OBJ_IN_INDEX = 1,      /* the index has a record for it */
	OBJ_RECORD_BAD = 2,    /* the record does not point at an intact copy */
	OBJ_COPY_FOUND = 4,    /* an intact copy was found walking the packs */
	OBJ_REFERENCED = 8,    /* some layer entry names it */
};

struct obj_info {
	uint8_t digest[TSR_DIGEST_LEN];
	uint8_t flags;
	uint64_t refs;               /* layer entries naming it */
	uint64_t stored_refs;        /* the refcount its index record holds */
	struct chunk_record good;    /* an intact copy (OBJ_COPY_FOUND) */
};

struct obj_table {
	struct obj_info *v;
	size_t cap, count;
};

struct layer_info {
	struct tsr_layer_id id;
	struct layer_record rec;
	bool damaged;                /* its own map or record is damaged */
};

struct fsck {
	struct tsr_store *store;
	unsigned flags;
	void (*report)(void *arg, const char *line);
	void *arg;
	struct tsr_fsck_stats st;
	uint64_t findings;           /* lines reported as damage */
	struct obj_table objs;
	struct layer_info *layers;
	size_t nlayers;
};

/* A line about damage (or its repair). */
void fsck_finding(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line about something fsck did that was not damage. */
void fsck_note(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* digest as 64 hex digits into out (TSR_ID_HEX_LEN + 1 bytes). */
void fsck_hex(const uint8_t *digest, char *out);
/* Finds or adds digest in t; NULL only when out of memory. */
struct obj_info *fsck_obj_get(struct obj_table *t, const uint8_t *digest);

/* Step 1: walks every recorded pack (chunk: chunk_size bytes of scratch),
 * marking each intact copy OBJ_COPY_FOUND in f->objs. */
int fsck_check_packs(struct fsck *f, uint8_t *chunk);

#endif /* TSR_FSCK_H */
