/* SPDX-License-Identifier: MIT */
/*
 * The snapshotter's metadata: one record per snapshot key in the store's
 * records (namespace "snapshot"), a Record of tessera/snapshot_record.proto.
 * The library makes each put durable when it returns; what is written in
 * which order, and how a restart repairs a half-done method, is in
 * snapshots.c.
 */
#include "internal.h"
#include "tessera/snapshot_record.pb-c.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef Tessera__Snapshotter__V1__Record PbRecord;
typedef Tessera__Snapshotter__V1__Record__LabelsEntry PbLabel;

int64_t snap_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void snap_name_of(const char *key, char *buf)
{
	snap_name_gen(key, 0, buf);
}

void snap_name_gen(const char *key, unsigned gen, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t md[SHA256_DIGEST_LENGTH];
	size_t o = strlen(SNAP_NAME_PREFIX), len = strlen(key);
	char in[TSR_RECORD_KEY_MAX + 16];

	/* key, or key NUL gen: no other key (keys hold no NUL) hashes alike.
	 * Keys are at most TSR_RECORD_KEY_MAX bytes (checked before use). */
	if (gen && len <= TSR_RECORD_KEY_MAX) {
		memcpy(in, key, len + 1);
		len += 1 + (size_t)snprintf(in + len + 1, 15, "%u", gen);
		key = in;
	}
	SHA256((const uint8_t *)key, len, md);
	memcpy(buf, SNAP_NAME_PREFIX, o);
	for (int i = 0; i < 20; i++) {
		buf[o++] = hex[md[i] >> 4];
		buf[o++] = hex[md[i] & 15];
	}
	buf[o] = 0;
}

/* ---- the record in memory ------------------------------------------------------ */

struct snap_rec *snap_rec_new(int kind)
{
	struct snap_rec *rec = calloc(1, sizeof(*rec));

	if (!rec)
		return NULL;
	rec->kind = kind;
	rec->parent = strdup("");
	rec->volume = strdup("");
	rec->layer_name = strdup("");
	rec->from_key = strdup("");
	if (!rec->parent || !rec->volume || !rec->layer_name || !rec->from_key) {
		snap_rec_free(rec);
		return NULL;
	}
	return rec;
}

void snap_rec_labels_clear(struct snap_rec *rec)
{
	for (size_t i = 0; i < rec->n_labels; i++) {
		free(rec->labels[i].key);
		free(rec->labels[i].val);
	}
	free(rec->labels);
	rec->labels = NULL;
	rec->n_labels = 0;
}

void snap_rec_free(struct snap_rec *rec)
{
	if (!rec)
		return;
	free(rec->parent);
	free(rec->volume);
	free(rec->layer_name);
	free(rec->from_key);
	snap_rec_labels_clear(rec);
	free(rec);
}

int snap_rec_set(char **field, const char *value)
{
	char *copy = strdup(value ? value : "");

	if (!copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

const char *snap_rec_label_get(const struct snap_rec *rec, const char *key)
{
	for (size_t i = 0; i < rec->n_labels; i++)
		if (strcmp(rec->labels[i].key, key) == 0)
			return rec->labels[i].val;
	return NULL;
}

int snap_rec_label_set(struct snap_rec *rec, const char *key, const char *value)
{
	struct snap_label *l;
	size_t i;

	for (i = 0; i < rec->n_labels; i++)
		if (strcmp(rec->labels[i].key, key) == 0)
			break;
	if (!value || !*value) {
		if (i == rec->n_labels)
			return 0;
		free(rec->labels[i].key);
		free(rec->labels[i].val);
		rec->labels[i] = rec->labels[--rec->n_labels];
		return 0;
	}
	if (i < rec->n_labels)
		return snap_rec_set(&rec->labels[i].val, value);
	l = realloc(rec->labels, (rec->n_labels + 1) * sizeof(*l));
	if (!l)
		return -ENOMEM;
	rec->labels = l;
	l[i].key = strdup(key);
	l[i].val = strdup(value);
	if (!l[i].key || !l[i].val) {
		free(l[i].key);
		free(l[i].val);
		return -ENOMEM;
	}
	rec->n_labels++;
	return 0;
}

/* ---- serialization ---------------------------------------------------------------- */

int snap_rec_encode(const struct snap_rec *rec, uint8_t **ret_buf, size_t *ret_len)
{
	PbRecord pb = TESSERA__SNAPSHOTTER__V1__RECORD__INIT;
	PbLabel *entries = NULL, **ptrs = NULL;
	uint8_t *buf;
	size_t len;
	int r = 0;

	if (rec->n_labels) {
		entries = calloc(rec->n_labels, sizeof(*entries));
		ptrs = calloc(rec->n_labels, sizeof(*ptrs));
		if (!entries || !ptrs) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < rec->n_labels; i++) {
		tessera__snapshotter__v1__record__labels_entry__init(&entries[i]);
		entries[i].key = rec->labels[i].key;
		entries[i].value = rec->labels[i].val;
		ptrs[i] = &entries[i];
	}
	pb.kind = rec->kind;
	pb.parent = rec->parent;
	pb.volume = rec->volume;
	if (rec->has_layer) {
		pb.layer.data = (uint8_t *)rec->layer.bytes;
		pb.layer.len = TSR_DIGEST_LEN;
	}
	pb.layer_name = rec->layer_name;
	pb.n_labels = rec->n_labels;
	pb.labels = ptrs;
	pb.created_ns = rec->created_ns;
	pb.updated_ns = rec->updated_ns;
	pb.pending = rec->pending;
	pb.from_key = rec->from_key;
	pb.inodes = rec->inodes;
	len = tessera__snapshotter__v1__record__get_packed_size(&pb);
	buf = malloc(len ? len : 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	tessera__snapshotter__v1__record__pack(&pb, buf);
	*ret_buf = buf;
	*ret_len = len;
out:
	free(entries);
	free(ptrs);
	return r;
}

int snap_rec_decode(const void *buf, size_t len, struct snap_rec **ret_rec)
{
	PbRecord *pb = tessera__snapshotter__v1__record__unpack(NULL, len, buf);
	struct snap_rec *rec;
	int r = 0;

	if (!pb)
		return -EBADMSG;
	if ((pb->layer.len && pb->layer.len != TSR_DIGEST_LEN) ||
	    pb->kind < SNAP_VIEW || pb->kind > SNAP_COMMITTED) {
		tessera__snapshotter__v1__record__free_unpacked(pb, NULL);
		return -EBADMSG;
	}
	rec = snap_rec_new(pb->kind);
	if (!rec) {
		tessera__snapshotter__v1__record__free_unpacked(pb, NULL);
		return -ENOMEM;
	}
	r = snap_rec_set(&rec->parent, pb->parent);
	if (!r)
		r = snap_rec_set(&rec->volume, pb->volume);
	if (!r)
		r = snap_rec_set(&rec->layer_name, pb->layer_name);
	if (!r)
		r = snap_rec_set(&rec->from_key, pb->from_key);
	for (size_t i = 0; !r && i < pb->n_labels; i++)
		r = snap_rec_label_set(rec, pb->labels[i]->key, pb->labels[i]->value);
	if (pb->layer.len == TSR_DIGEST_LEN) {
		rec->has_layer = true;
		memcpy(rec->layer.bytes, pb->layer.data, TSR_DIGEST_LEN);
	}
	rec->created_ns = pb->created_ns;
	rec->updated_ns = pb->updated_ns;
	rec->pending = pb->pending;
	rec->inodes = pb->inodes;
	tessera__snapshotter__v1__record__free_unpacked(pb, NULL);
	if (r) {
		snap_rec_free(rec);
		return r;
	}
	*ret_rec = rec;
	return 0;
}

/* ---- in the store --------------------------------------------------------------------- */

int snap_rec_get(struct tsr_store *store, const char *key, struct snap_rec **ret_rec)
{
	void *val;
	size_t len;
	int r;

	if (!*key || strlen(key) > TSR_RECORD_KEY_MAX)
		return -ENOENT;
	r = tsr_record_get(store, TSR_SNAPSHOTTER_RECORD_NS, key, &val, &len);
	if (r < 0)
		return r;
	r = snap_rec_decode(val, len, ret_rec);
	free(val);
	return r;
}

int snap_rec_put(struct tsr_store *store, const char *key, const struct snap_rec *rec)
{
	uint8_t *buf;
	size_t len;
	int r = snap_rec_encode(rec, &buf, &len);

	if (r < 0)
		return r;
	r = tsr_record_put(store, TSR_SNAPSHOTTER_RECORD_NS, key, buf, len);
	free(buf);
	return r;
}

int snap_rec_del(struct tsr_store *store, const char *key)
{
	return tsr_record_del(store, TSR_SNAPSHOTTER_RECORD_NS, key);
}

struct list_ctx {
	int (*fn)(const char *key, const struct snap_rec *rec, void *arg);
	void *arg;
};

static int list_one(const char *key, const void *val, size_t len, void *arg)
{
	struct list_ctx *ctx = arg;
	struct snap_rec *rec = NULL;
	int r = snap_rec_decode(val, len, &rec);

	if (r == -ENOMEM)
		return r;
	r = ctx->fn(key, rec, ctx->arg);  /* rec NULL: damaged */
	snap_rec_free(rec);
	return r;
}

int snap_rec_list(struct tsr_store *store,
		  int (*fn)(const char *key, const struct snap_rec *rec, void *arg),
		  void *arg)
{
	struct list_ctx ctx = { fn, arg };

	return tsr_record_list(store, TSR_SNAPSHOTTER_RECORD_NS, "", list_one, &ctx);
}
