/* SPDX-License-Identifier: MIT */
/*
 * The store's metadata in LMDB: opening the environment, the named
 * databases, and the byte encodings of every record (FORMAT.md, "Metadata").
 * Records are fixed little-endian layouts, never C structs cast onto bytes.
 */
#include <errno.h>
#include <string.h>

#include "meta.h"
#include "store_handle.h"
#include "util.h"

static const char *const db_names[DB_COUNT] = {
	[DB_META] = "meta",
	[DB_CHUNKS] = "chunks",
	[DB_PACKS] = "packs",
	[DB_LAYERS] = "layers",
	[DB_LAYER_CHUNKS] = "layer_chunks",
	[DB_LAYER_NAMES] = "layer_names",
	[DB_VOLUMES] = "volumes",
	[DB_VOLUME_NAMES] = "volume_names",
	[DB_VOLUME_CHUNKS] = "volume_chunks",
	[DB_RECORDS] = "records",
};

/* LMDB returns positive errno values or its own MDB_* codes; translate once,
 * here, into the library's negative errno space. */
int meta_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
		return -EXFULL;
	case MDB_READERS_FULL:
	case MDB_TXN_FULL:
	case MDB_DBS_FULL:
		return -EAGAIN;
	case MDB_VERSION_MISMATCH:
	case MDB_INVALID:
		return TSR_ERR_VERSION;
	default:
		if (rc > 0)
			return -rc;
		return -EIO;
	}
}

int meta_open(struct tsr_store *store, const char *path, uint64_t map_bytes, bool create)
{
	MDB_txn *txn;
	int rc, dead;

	rc = mdb_env_create(&store->env);
	if (rc)
		return meta_err(rc);
	mdb_env_set_maxdbs(store->env, DB_COUNT + 4);
	mdb_env_set_maxreaders(store->env, 512);
	rc = mdb_env_set_mapsize(store->env, (size_t)map_bytes);
	if (rc)
		goto fail;
	/* NOTLS: read transactions are not tied to threads (FUSE and vhost
	 * workers borrow them).  NORDAHEAD: lookups are random. */
	rc = mdb_env_open(store->env, path, MDB_NOTLS | MDB_NORDAHEAD, 0600);
	if (rc)
		goto fail;
	/* Clear reader slots left by killed processes. */
	mdb_reader_check(store->env, &dead);

	rc = mdb_txn_begin(store->env, NULL, 0, &txn);
	if (rc)
		goto fail;
	for (int i = 0; i < DB_COUNT; i++) {
		/* Databases added by later versions of format 1 (records)
		 * are created on first open. */
		rc = mdb_dbi_open(txn, db_names[i],
				  create || i == DB_RECORDS ? MDB_CREATE : 0,
				  &store->dbi[i]);
		if (rc) {
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		goto fail;
	return 0;
fail:
	mdb_env_close(store->env);
	store->env = NULL;
	return rc == MDB_NOTFOUND ? TSR_ERR_NOT_STORE : meta_err(rc);
}

void meta_close(struct tsr_store *store)
{
	if (store->env)
		mdb_env_close(store->env);
	store->env = NULL;
}

int meta_txn_begin(struct tsr_store *store, bool write, MDB_txn **ret_txn)
{
	return meta_err(mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, ret_txn));
}

int meta_txn_commit(MDB_txn *txn)
{
	return meta_err(mdb_txn_commit(txn));
}

int meta_get(struct tsr_store *store, MDB_txn *txn, enum meta_db db,
	     const void *key, size_t klen, MDB_val *ret_val)
{
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };

	return meta_err(mdb_get(txn, store->dbi[db], &k, ret_val));
}

int meta_put(struct tsr_store *store, MDB_txn *txn, enum meta_db db,
	     const void *key, size_t klen, const void *val, size_t vlen)
{
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val v = { .mv_size = vlen, .mv_data = (void *)val };

	return meta_err(mdb_put(txn, store->dbi[db], &k, &v, 0));
}

int meta_del(struct tsr_store *store, MDB_txn *txn, enum meta_db db,
	     const void *key, size_t klen)
{
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };

	return meta_err(mdb_del(txn, store->dbi[db], &k, NULL));
}

/* The one LMDB cursor loop of the library: every record of db whose key
 * starts with prefix, in key order.  With del, fn's META_WALK_DELETE
 * deletes the record, and the walk goes on from the first key after it by
 * a fresh seek: simpler than trusting where a cursor sits after
 * mdb_cursor_del, and O(log n) either way. */
static int walk(struct tsr_store *store, MDB_txn *txn, enum meta_db db, const void *prefix,
		size_t plen, bool del,
		int (*fn)(const MDB_val *key, const MDB_val *val, void *arg), void *arg)
{
	MDB_cursor *cur;
	MDB_val k = { .mv_size = plen, .mv_data = (void *)prefix }, v;
	uint8_t deleted[511]; /* LMDB's key size limit (mdb_env_get_maxkeysize) */
	int rc, r = 0;

	rc = mdb_cursor_open(txn, store->dbi[db], &cur);
	if (rc)
		return meta_err(rc);
	rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == 0) {
		if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen)))
			break;
		if (del) {
			/* k points into a page that fn's writes or the delete
			 * may change: keep a copy to seek from. */
			if (k.mv_size > sizeof(deleted)) {
				r = -EINVAL;
				break;
			}
			memcpy(deleted, k.mv_data, k.mv_size);
		}
		r = fn(&k, &v, arg);
		if (del && r == META_WALK_DELETE) {
			r = 0;
			k.mv_data = deleted;
			rc = mdb_cursor_del(cur, 0);
			if (!rc)
				rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
			continue;
		}
		if (r)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (r)
		return r;
	return (rc == 0 || rc == MDB_NOTFOUND) ? 0 : meta_err(rc);
}

int meta_walk(struct tsr_store *store, MDB_txn *txn, enum meta_db db, const void *prefix,
	      size_t plen, int (*fn)(const MDB_val *key, const MDB_val *val, void *arg), void *arg)
{
	MDB_txn *own = NULL;
	int r = txn ? 0 : meta_txn_begin(store, false, &own);

	if (r)
		return r;
	r = walk(store, txn ? txn : own, db, prefix, plen, false, fn, arg);
	if (own)
		mdb_txn_abort(own);
	return r;
}

int meta_walk_del(struct tsr_store *store, MDB_txn *txn, enum meta_db db, const void *prefix,
		  size_t plen, int (*fn)(const MDB_val *key, const MDB_val *val, void *arg),
		  void *arg)
{
	return walk(store, txn, db, prefix, plen, true, fn, arg);
}

static int delete_all(const MDB_val *key, const MDB_val *val, void *arg)
{
	(void)key, (void)val, (void)arg;
	return META_WALK_DELETE;
}

int meta_del_prefix(struct tsr_store *store, MDB_txn *txn, enum meta_db db,
		    const void *prefix, size_t plen)
{
	return meta_walk_del(store, txn, db, prefix, plen, delete_all, NULL);
}

int meta_get_u64(struct tsr_store *store, MDB_txn *txn, const char *key, uint64_t *ret)
{
	MDB_val v;
	int r = meta_get(store, txn, DB_META, key, strlen(key), &v);

	if (r)
		return r;
	if (v.mv_size != 8)
		return -EBADMSG;
	*ret = get_le64(v.mv_data);
	return 0;
}

int meta_put_u64(struct tsr_store *store, MDB_txn *txn, const char *key, uint64_t val)
{
	uint8_t b[8];

	put_le64(b, val);
	return meta_put(store, txn, DB_META, key, strlen(key), b, sizeof(b));
}

void chunk_record_encode(const struct chunk_record *r, uint8_t out[CHUNK_RECORD_LEN])
{
	memset(out, 0, CHUNK_RECORD_LEN);
	put_le32(out + 0, r->pack_id);
	out[4] = r->codec;
	put_le64(out + 8, r->offset);
	put_le32(out + 16, r->stored_len);
	put_le32(out + 20, r->raw_len);
	put_le64(out + 24, r->refcount);
}

int chunk_record_decode(const MDB_val *v, struct chunk_record *r)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size != CHUNK_RECORD_LEN)
		return -EBADMSG;
	r->pack_id = get_le32(p + 0);
	r->codec = p[4];
	r->offset = get_le64(p + 8);
	r->stored_len = get_le32(p + 16);
	r->raw_len = get_le32(p + 20);
	r->refcount = get_le64(p + 24);
	if (r->codec > TSR_CODEC_ZSTD || r->raw_len == 0 || r->raw_len > TSR_CHUNK_SIZE_MAX)
		return -EBADMSG;
	return 0;
}

void pack_record_encode(const struct pack_record *r, uint8_t out[PACK_RECORD_LEN])
{
	put_le64(out + 0, r->committed_len);
	put_le64(out + 8, r->objects);
}

int pack_record_decode(const MDB_val *v, struct pack_record *r)
{
	if (v->mv_size != PACK_RECORD_LEN)
		return -EBADMSG;
	r->committed_len = get_le64((const uint8_t *)v->mv_data);
	r->objects = get_le64((const uint8_t *)v->mv_data + 8);
	return 0;
}

void layer_record_encode(const struct layer_record *r, uint8_t out[LAYER_RECORD_LEN])
{
	memset(out, 0, LAYER_RECORD_LEN);
	put_le32(out + 0, 1); /* record version */
	put_le32(out + 4, r->has_parent ? 1 : 0);
	memcpy(out + 8, r->parent.bytes, TSR_DIGEST_LEN);
	put_le64(out + 40, r->size);
	put_le64(out + 48, r->created);
	put_le32(out + 56, r->holds);
	put_le32(out + 60, r->depth);
	put_le64(out + 64, r->entries);
	put_le64(out + 72, r->data_chunks);
	put_le64(out + 80, r->new_objects);
	put_le64(out + 88, r->new_stored_bytes);
}

int layer_record_decode(const MDB_val *v, struct layer_record *r)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size != LAYER_RECORD_LEN || get_le32(p) != 1)
		return -EBADMSG;
	r->has_parent = get_le32(p + 4) & 1;
	memcpy(r->parent.bytes, p + 8, TSR_DIGEST_LEN);
	r->size = get_le64(p + 40);
	r->created = get_le64(p + 48);
	r->holds = get_le32(p + 56);
	r->depth = get_le32(p + 60);
	r->entries = get_le64(p + 64);
	r->data_chunks = get_le64(p + 72);
	r->new_objects = get_le64(p + 80);
	r->new_stored_bytes = get_le64(p + 88);
	return 0;
}

size_t volume_record_encode(const struct volume_record *r, uint8_t *out)
{
	size_t nlen = strlen(r->name);

	put_le32(out + 0, 1); /* record version */
	put_le32(out + 4, r->has_parent ? 1 : 0);
	memcpy(out + 8, r->parent.bytes, TSR_DIGEST_LEN);
	put_le64(out + 40, r->size);
	put_le64(out + 48, r->created);
	put_le32(out + 56, (uint32_t)nlen);
	memset(out + 60, 0, 4);
	memcpy(out + 64, r->name, nlen);
	return 64 + nlen;
}

int volume_record_decode(const MDB_val *v, struct volume_record *r)
{
	const uint8_t *p = v->mv_data;
	uint32_t nlen;

	if (v->mv_size < 64 || get_le32(p) != 1)
		return -EBADMSG;
	nlen = get_le32(p + 56);
	if (nlen == 0 || nlen > TSR_NAME_MAX || v->mv_size != 64 + (size_t)nlen)
		return -EBADMSG;
	r->has_parent = get_le32(p + 4) & 1;
	memcpy(r->parent.bytes, p + 8, TSR_DIGEST_LEN);
	r->size = get_le64(p + 40);
	r->created = get_le64(p + 48);
	memcpy(r->name, p + 64, nlen);
	r->name[nlen] = '\0';
	return 0;
}

int chunk_record_get(struct tsr_store *store, MDB_txn *txn, const uint8_t *digest,
		     struct chunk_record *ret)
{
	MDB_txn *own = NULL;
	MDB_val v;
	int r = txn ? 0 : meta_txn_begin(store, false, &own);

	if (r)
		return r;
	r = meta_get(store, txn ? txn : own, DB_CHUNKS, digest, TSR_DIGEST_LEN, &v);
	if (!r)
		r = chunk_record_decode(&v, ret);
	if (own)
		mdb_txn_abort(own);
	return r;
}

int chunk_record_put(struct tsr_store *store, MDB_txn *txn, const uint8_t *digest,
		     const struct chunk_record *rec)
{
	uint8_t val[CHUNK_RECORD_LEN];

	chunk_record_encode(rec, val);
	return meta_put(store, txn, DB_CHUNKS, digest, TSR_DIGEST_LEN, val, sizeof(val));
}

int layer_record_get(struct tsr_store *store, MDB_txn *txn,
		     const struct tsr_layer_id *id, struct layer_record *ret)
{
	MDB_val v;
	int r = meta_get(store, txn, DB_LAYERS, id->bytes, TSR_DIGEST_LEN, &v);

	if (r)
		return r;
	return layer_record_decode(&v, ret);
}
