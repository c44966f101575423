/* SPDX-License-Identifier: MIT */
/* Records of the front-ends: opaque values under "namespace NUL key". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

#define NS_MAX 63
#define VALUE_MAX (16u << 20)

/* Builds the LMDB key; returns its length or -EINVAL. */
static int record_key(const char *ns, const char *key, uint8_t *out)
{
	size_t nl = strlen(ns), kl = strlen(key);

	if (nl == 0 || nl > NS_MAX || kl > TSR_RECORD_KEY_MAX)
		return -EINVAL;
	memcpy(out, ns, nl);
	out[nl] = '\0';
	memcpy(out + nl + 1, key, kl);
	return (int)(nl + 1 + kl);
}

int tsr_record_put(struct tsr_store *store, const char *ns, const char *key,
		   const void *val, size_t len)
{
	uint8_t k[NS_MAX + 1 + TSR_RECORD_KEY_MAX];
	int klen = record_key(ns, key, k), r;
	MDB_txn *txn;

	if (klen < 0 || !*key)
		return -EINVAL;
	if (len > VALUE_MAX)
		return -EFBIG;
	r = meta_txn_begin(store, true, &txn);
	if (r)
		return r;
	r = meta_put(store, txn, DB_RECORDS, k, (size_t)klen, val, len);
	if (r) {
		mdb_txn_abort(txn);
		return r;
	}
	return meta_txn_commit(txn);
}

int tsr_record_get(struct tsr_store *store, const char *ns, const char *key,
		   void **ret_val, size_t *ret_len)
{
	uint8_t k[NS_MAX + 1 + TSR_RECORD_KEY_MAX];
	int klen = record_key(ns, key, k), r;
	MDB_txn *txn;
	MDB_val v;
	void *copy;

	if (klen < 0)
		return -EINVAL;
	r = meta_txn_begin(store, false, &txn);
	if (r)
		return r;
	r = meta_get(store, txn, DB_RECORDS, k, (size_t)klen, &v);
	if (!r) {
		copy = malloc(v.mv_size ? v.mv_size : 1);
		if (copy) {
			memcpy(copy, v.mv_data, v.mv_size);
			*ret_val = copy;
			*ret_len = v.mv_size;
		} else {
			r = -ENOMEM;
		}
	}
	mdb_txn_abort(txn);
	return r;
}

int tsr_record_del(struct tsr_store *store, const char *ns, const char *key)
{
	uint8_t k[NS_MAX + 1 + TSR_RECORD_KEY_MAX];
	int klen = record_key(ns, key, k), r;
	MDB_txn *txn;

	if (klen < 0)
		return -EINVAL;
	r = meta_txn_begin(store, true, &txn);
	if (r)
		return r;
	r = meta_del(store, txn, DB_RECORDS, k, (size_t)klen);
	if (r) {
		mdb_txn_abort(txn);
		return r;
	}
	return meta_txn_commit(txn);
}

struct record_walk {
	size_t nsl;
	int (*fn)(const char *key, const void *val, size_t len, void *arg);
	void *arg;
};

static int record_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct record_walk *w = arg;
	char key[TSR_RECORD_KEY_MAX + 1];
	size_t kl = k->mv_size - w->nsl;

	if (kl > TSR_RECORD_KEY_MAX)
		return 0;
	memcpy(key, (const char *)k->mv_data + w->nsl, kl);
	key[kl] = '\0';
	return w->fn(key, v->mv_data, v->mv_size, w->arg);
}

int tsr_record_list(struct tsr_store *store, const char *ns, const char *prefix,
		    int (*fn)(const char *key, const void *val, size_t len, void *arg), void *arg)
{
	uint8_t k[NS_MAX + 1 + TSR_RECORD_KEY_MAX];
	struct record_walk w = { .nsl = strlen(ns) + 1, .fn = fn, .arg = arg };
	int plen = record_key(ns, prefix, k), r;
	MDB_txn *txn;

	if (plen < 0)
		return -EINVAL;
	r = meta_txn_begin(store, false, &txn);
	if (r)
		return r;
	r = meta_walk(store, txn, DB_RECORDS, k, (size_t)plen, record_one, &w);
	mdb_txn_abort(txn);
	return r;
}
