/* SPDX-License-Identifier: MIT */
/*
 * Creating, opening and closing a store: its directory layout, its lock,
 * and totals for `tessera df`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "chunk_cache.h"
#include "meta.h"
#include "pack.h"
#include "store_handle.h"
#include "util.h"
#include "volume_internal.h"

#define DEFAULT_CACHE_BYTES (256ull << 20)
#define DEFAULT_MAP_BYTES (1ull << 40)

static int dir_is_empty(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d;
	struct dirent *e;
	int empty = 1;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

static int read_marker(int dirfd, unsigned *ret_version)
{
	char buf[128];
	int fd = openat(dirfd, TSR_MARKER_FILE, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	unsigned v;

	if (fd < 0)
		return errno == ENOENT ? TSR_ERR_NOT_STORE : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (sscanf(buf, "tessera store\nformat %u", &v) != 1)
		return TSR_ERR_NOT_STORE;
	*ret_version = v;
	return 0;
}

static int write_marker(int dirfd)
{
	char buf[64];
	int fd, r = 0, len;

	len = snprintf(buf, sizeof(buf), "tessera store\nformat %u\n", TSR_FORMAT_VERSION);
	fd = openat(dirfd, TSR_MARKER_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	r = pwrite_full(fd, buf, (size_t)len, 0);
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && renameat(dirfd, TSR_MARKER_FILE ".tmp", dirfd, TSR_MARKER_FILE) < 0)
		r = -errno;
	if (!r)
		r = fsync_dir(dirfd, ".");
	return r;
}

int tsr_store_init(const char *dir, const struct tsr_init_options *opts)
{
	struct tsr_init_options o = { 0 };
	struct tsr_store tmp = { 0 };
	MDB_txn *txn;
	char path[4096];
	unsigned version;
	int dirfd, r;

	if (opts)
		o = *opts;
	if (!o.chunk_size)
		o.chunk_size = TSR_CHUNK_SIZE_DEFAULT;
	if (o.chunk_size < TSR_CHUNK_SIZE_MIN || o.chunk_size > TSR_CHUNK_SIZE_MAX ||
	    (o.chunk_size & (o.chunk_size - 1)))
		return -EINVAL;
	if (o.codec != TSR_CODEC_NONE && o.codec != TSR_CODEC_ZLIB &&
	    o.codec != TSR_CODEC_ZSTD)
		return -EINVAL;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	if (read_marker(dirfd, &version) == 0) {
		r = -EEXIST;
		goto out;
	}
	r = dir_is_empty(dirfd);
	if (r <= 0) {
		r = r ? r : -ENOTEMPTY;
		goto out;
	}
	if (mkdirat(dirfd, TSR_META_DIR, 0700) < 0 ||
	    mkdirat(dirfd, TSR_PACK_DIR, 0700) < 0 ||
	    mkdirat(dirfd, TSR_VOLUME_DIR, 0700) < 0) {
		r = -errno;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/" TSR_META_DIR, dir);
	r = meta_open(&tmp, path, DEFAULT_MAP_BYTES, true);
	if (r)
		goto out;
	r = meta_txn_begin(&tmp, true, &txn);
	if (r)
		goto out_meta;
	r = meta_put_u64(&tmp, txn, "format", TSR_FORMAT_VERSION);
	if (!r)
		r = meta_put_u64(&tmp, txn, "chunk_size", o.chunk_size);
	if (!r)
		r = meta_put_u64(&tmp, txn, "codec", (uint64_t)o.codec);
	if (!r)
		r = meta_put_u64(&tmp, txn, "next_volume_id", 1);
	if (r) {
		mdb_txn_abort(txn);
		goto out_meta;
	}
	r = meta_txn_commit(txn);
	if (r)
		goto out_meta;
	/* The marker is written last: a directory without it is not a store,
	 * so an interrupted init never looks like one. */
	r = write_marker(dirfd);
out_meta:
	meta_close(&tmp);
out:
	close(dirfd);
	return r;
}

/* Takes the store lock: an OFD lock, released by the kernel when the
 * owner dies, so a killed owner's lock is taken over with no clean-up. */
static int lock_store(int dirfd, int *ret_fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char buf[32];
	int fd, len;

	fd = openat(dirfd, TSR_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		int e = errno;

		close(fd);
		return (e == EAGAIN || e == EACCES) ? -EBUSY : -e;
	}
	/* Fixed width, written over the previous owner's pid in place: a
	 * reader (tsr_store_owner) never sees an empty file, as it could
	 * between a truncate and the write. */
	len = snprintf(buf, sizeof(buf), "%10ld\n", (long)getpid());
	if (pwrite_full(fd, buf, (size_t)len, 0) || ftruncate(fd, len) < 0) {
		close(fd);
		return -EIO;
	}
	*ret_fd = fd;
	return 0;
}

int tsr_store_owner(const char *dir)
{
	char path[4096], buf[32];
	ssize_t n;
	long pid;
	int fd;

	snprintf(path, sizeof(path), "%s/" TSR_LOCK_FILE, dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	return pid > 0 ? (int)pid : -ENOENT;
}

static int load_settings(struct tsr_store *store)
{
	MDB_txn *txn;
	uint64_t format, chunk_size, codec;
	int r = meta_txn_begin(store, false, &txn);

	if (r)
		return r;
	r = meta_get_u64(store, txn, "format", &format);
	if (!r)
		r = meta_get_u64(store, txn, "chunk_size", &chunk_size);
	if (!r)
		r = meta_get_u64(store, txn, "codec", &codec);
	mdb_txn_abort(txn);
	if (r)
		return r == -ENOENT ? TSR_ERR_NOT_STORE : r;
	if (format != TSR_FORMAT_VERSION)
		return TSR_ERR_VERSION;
	if (chunk_size < TSR_CHUNK_SIZE_MIN || chunk_size > TSR_CHUNK_SIZE_MAX ||
	    (chunk_size & (chunk_size - 1)) || codec > TSR_CODEC_ZSTD)
		return -EBADMSG;
	store->chunk_size = (uint32_t)chunk_size;
	store->chunk_shift = (unsigned)__builtin_ctz((unsigned)chunk_size);
	store->codec = (enum tsr_codec)codec;
	return 0;
}

/* Removes volume data files whose volume is not in the metadata: left by
 * a create, commit or remove that was interrupted. */
static void volumes_remove_orphans(struct tsr_store *store)
{
	int fd = openat(store->dir_fd, TSR_VOLUME_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	MDB_txn *txn;
	DIR *d;
	struct dirent *e;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	if (meta_txn_begin(store, false, &txn)) {
		closedir(d);
		return;
	}
	while ((e = readdir(d))) {
		unsigned long long id;
		uint8_t key[8];
		MDB_val v;
		char tail;

		if (sscanf(e->d_name, "%16llx.dat%c", &id, &tail) != 2 || tail != 'a')
			continue;
		put_be64(key, id);
		if (meta_get(store, txn, DB_VOLUMES, key, sizeof(key), &v) == -ENOENT)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	mdb_txn_abort(txn);
	closedir(d);
}

int tsr_store_open(const char *dir, const struct tsr_open_options *opts,
		   struct tsr_store **ret_store)
{
	struct tsr_open_options o = { 0 };
	struct tsr_store *store;
	char path[4096];
	unsigned version;
	uint64_t map_bytes;
	long ncpu;
	int r;

	if (opts)
		o = *opts;
	store = calloc(1, sizeof(*store));
	if (!store)
		return -ENOMEM;
	store->lock_fd = -1;
	store->log = o.log;
	store->log_arg = o.log_arg;
	pthread_mutex_init(&store->lock, NULL);
	pthread_mutex_init(&store->volumes_lock, NULL);
	pthread_mutex_init(&store->damage_lock, NULL);
	pthread_rwlock_init(&store->pack_lock, NULL);
	pthread_mutex_init(&store->commit_lock, NULL);
	store->dir = strdup(dir);
	store->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!store->dir || store->dir_fd < 0) {
		r = store->dir ? -errno : -ENOMEM;
		goto fail;
	}
	r = read_marker(store->dir_fd, &version);
	if (r)
		goto fail;
	if (version != TSR_FORMAT_VERSION) {
		r = TSR_ERR_VERSION;
		goto fail;
	}
	r = lock_store(store->dir_fd, &store->lock_fd);
	if (r)
		goto fail;

	map_bytes = o.map_bytes;
	if (!map_bytes) {
		/* Documented for tests and small machines: TESSERA_MAP_BYTES. */
		const char *env = getenv("TESSERA_MAP_BYTES");

		if (!env || tsr_parse_size(env, &map_bytes) || map_bytes < (1u << 20))
			map_bytes = DEFAULT_MAP_BYTES;
	}
	store->pack_target = TSR_PACK_TARGET_BYTES;
	{
		const char *env = getenv("TESSERA_PACK_BYTES");
		uint64_t v;

		if (env && tsr_parse_size(env, &v) == 0 && v >= (1u << 20))
			store->pack_target = v;
	}
	snprintf(path, sizeof(path), "%s/" TSR_META_DIR, dir);
	r = meta_open(store, path, map_bytes, false);
	if (r)
		goto fail;
	r = load_settings(store);
	if (r)
		goto fail;
	store->sha256 = (const struct evp_md_st *)EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!store->sha256) {
		r = -ENOSYS;
		goto fail;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	store->workers = o.workers ? o.workers : (ncpu > 0 ? (unsigned)ncpu : 1);
	if (store->workers > 64)
		store->workers = 64;
	r = chunk_cache_new(o.cache_bytes ? o.cache_bytes : DEFAULT_CACHE_BYTES,
			    store->chunk_size, &store->cache);
	if (r)
		goto fail;
	r = packs_open(store);
	if (r)
		goto fail;
	volumes_remove_orphans(store);
	*ret_store = store;
	return 0;
fail:
	tsr_store_close(store);
	return r;
}

void tsr_store_close(struct tsr_store *store)
{
	if (!store)
		return;
	/* Volumes left open by the caller are flushed and released. */
	while (store->open_volumes) {
		struct tsr_volume *vol = store->open_volumes;

		vol->refs = 1;
		tsr_volume_close(vol);
	}
	packs_close(store);
	chunk_cache_free(store->cache);
	meta_close(store);
	if (store->sha256)
		EVP_MD_free((EVP_MD *)store->sha256);
	if (store->lock_fd >= 0)
		close(store->lock_fd);
	if (store->dir_fd >= 0)
		close(store->dir_fd);
	pthread_mutex_destroy(&store->lock);
	pthread_mutex_destroy(&store->volumes_lock);
	pthread_mutex_destroy(&store->damage_lock);
	free(store->damaged);
	pthread_rwlock_destroy(&store->pack_lock);
	pthread_mutex_destroy(&store->commit_lock);
	free(store->dir);
	free(store);
}

static uint64_t db_entries(struct tsr_store *store, MDB_txn *txn, enum meta_db db)
{
	MDB_stat st;

	if (mdb_stat(txn, store->dbi[db], &st))
		return 0;
	return st.ms_entries;
}

struct stat_walk {
	struct tsr_store *store;
	struct tsr_store_stats *s;
};

static int stat_object(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct tsr_store_stats *s = ((struct stat_walk *)arg)->s;
	struct chunk_record rec;

	(void)k;
	if (chunk_record_decode(v, &rec) == 0) {
		s->objects++;
		s->object_bytes += rec.raw_len;
		s->stored_bytes += rec.stored_len + OBJECT_HEADER_LEN;
		s->referenced += rec.refcount;
	}
	return 0;
}

static int stat_volume(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct stat_walk *w = arg;
	char path[64];

	(void)v;
	if (k->mv_size == 8) {
		volume_data_path(get_be64(k->mv_data), path, sizeof(path));
		w->s->volume_bytes += file_allocated_bytes(w->store->dir_fd, path);
	}
	return 0;
}

int tsr_store_stat(struct tsr_store *store, struct tsr_store_stats *ret)
{
	struct tsr_store_stats s = { .chunk_size = store->chunk_size, .codec = store->codec };
	struct stat_walk w = { .store = store, .s = &s };
	MDB_txn *txn;
	int r;

	r = meta_txn_begin(store, false, &txn);
	if (r)
		return r;
	r = meta_walk(store, txn, DB_CHUNKS, NULL, 0, stat_object, &w);
	if (!r)
		r = meta_walk(store, txn, DB_VOLUMES, NULL, 0, stat_volume, &w);
	s.layers = db_entries(store, txn, DB_LAYERS);
	s.volumes = db_entries(store, txn, DB_VOLUMES);
	mdb_txn_abort(txn);
	if (r)
		return r;
	s.pack_bytes = pack_allocated_bytes(store);
	s.meta_bytes = file_allocated_bytes(store->dir_fd, TSR_META_DIR "/data.mdb");
	*ret = s;
	return 0;
}
