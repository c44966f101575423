/* SPDX-License-Identifier: MIT */
/* What the steps of fsck share: its report lines and its table of objects. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck.h"
#include "util.h"

static void vreport(struct fsck *f, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (f->report)
		f->report(f->arg, line);
}

void fsck_finding(struct fsck *f, const char *fmt, ...)
{
	va_list ap;

	f->findings++;
	va_start(ap, fmt);
	vreport(f, fmt, ap);
	va_end(ap);
}

void fsck_note(struct fsck *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(f, fmt, ap);
	va_end(ap);
}

void fsck_hex(const uint8_t *digest, char *out)
{
	struct tsr_layer_id id;

	memcpy(id.bytes, digest, TSR_DIGEST_LEN);
	tsr_layer_id_to_hex(&id, out);
}

struct obj_info *fsck_obj_get(struct obj_table *t, const uint8_t *digest)
{
	size_t i;

	if (2 * (t->count + 1) > t->cap) {
		struct obj_table n = { .cap = t->cap ? 2 * t->cap : 1024 };

		n.v = calloc(n.cap, sizeof(*n.v));
		if (!n.v)
			return NULL;
		for (size_t j = 0; j < t->cap; j++) {
			if (buf_is_zero(t->v[j].digest, TSR_DIGEST_LEN))
				continue;
			*fsck_obj_get(&n, t->v[j].digest) = t->v[j];
		}
		free(t->v);
		*t = n;
	}
	memcpy(&i, digest, sizeof(i));
	for (i &= t->cap - 1;; i = (i + 1) & (t->cap - 1)) {
		struct obj_info *o = &t->v[i];

		if (!memcmp(o->digest, digest, TSR_DIGEST_LEN))
			return o;
		if (buf_is_zero(o->digest, TSR_DIGEST_LEN)) {
			memcpy(o->digest, digest, TSR_DIGEST_LEN);
			t->count++;
			return o;
		}
	}
}
