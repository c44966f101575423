/* SPDX-License-Identifier: MIT */
/*
 * libtessera: a store of content-addressed chunks backing immutable layers and
 * writable volumes.  This is the only public header of blockstore/; every
 * front-end (fuse/, vhost/, snapshotter/, imagefmt/, tools/) uses this and
 * nothing else of the library.
 *
 * Conventions
 *  - Every function that can fail returns 0 (or a documented non-negative
 *    value) on success and a negative code on failure: a negative errno, or
 *    one of the TSR_ERR_* codes below.  tsr_strerror() turns any of them
 *    into text.
 *  - Out-parameters are named ret_*; they are written only on success.
 *  - A store handle is safe to use from many threads.  A volume or layer
 *    handle is safe to use from many threads for I/O.
 *  - Pointers passed to callbacks (names, keys, values, infos, digests) are
 *    valid during the call only: copy what you keep.  Handles returned
 *    through ret_* are the caller's until the matching close; memory
 *    returned through ret_* is malloc'd and the caller's to free (each
 *    function says which).
 *
 * Error codes
 * Tessera's own conditions have codes outside the errno range (any errno
 * is at most 4095), as LMDB's MDB_* codes do, so that an errno that comes
 * from the kernel (say ENOTCONN from a dead FUSE mountpoint) is never
 * mistaken for one of them:
 *  TSR_ERR_NOT_STORE  the directory is not a tessera store
 *  TSR_ERR_AMBIGUOUS  a name or id prefix matches more than one candidate
 *                     (a layer here; a manifest or a filesystem signature
 *                     in imagefmt/)
 *  TSR_ERR_VERSION    a format version this tessera does not read: the
 *                     store's (or its LMDB file's); a layer blob's in
 *                     imagefmt/
 * errno values keep their usual meaning; these are the ones the library
 * returns itself, with what they mean here:
 *  -ENOENT     no such volume / layer / name / record / object
 *  -EEXIST     a volume, store or name of that name exists
 *  -EBUSY      the store is locked by another process (tsr_store_owner()
 *              names it), or a layer/volume is in use (has children, is open)
 *  -EINVAL     an argument is out of range (offset beyond size, bad size,
 *              bad name...)
 *  -EIO        a chunk object failed its digest or header check, or could
 *              not be read, or is missing from the index: data is never
 *              returned; the store logs the digest once and fsck names the
 *              object and the layers that use it.  Also any I/O error of the
 *              filesystem below.
 *  -EBADMSG    a metadata record is malformed (fsck finds it); also input
 *              that does not match its digest (layer import)
 *  -EXFULL     the store's metadata map (LMDB) is full.  An errno, not a
 *              TSR_ERR_* code, because front-ends hand write errors to the
 *              kernel (FUSE, virtio), which takes errno values only, and no
 *              system call the store makes returns EXFULL itself.
 *  -ENOSPC     the filesystem holding the store is full
 *  -ENOMEM     out of memory
 *  -EAGAIN     LMDB ran out of reader slots or transaction space
 * Any function that reads the store may return -EIO, -EBADMSG, -EAGAIN and
 * -ENOMEM, and any that writes it -EXFULL and -ENOSPC too (and other errno
 * values of the filesystem below); the lists at each function name the
 * codes that have a meaning of their own there.
 */
#ifndef TESSERA_STORE_H
#define TESSERA_STORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Tessera's own error codes (see "Error codes" above): below -4095, so
 * distinct from every negative errno. */
#define TSR_ERR_NOT_STORE (-4097)
#define TSR_ERR_AMBIGUOUS (-4098)
#define TSR_ERR_VERSION   (-4099)

/* The file whose presence (and format version inside) makes a directory a
 * store (blockstore/FORMAT.md).  A client of a store's daemon checks it
 * before it talks to whatever listens there. */
#define TSR_STORE_MARKER_FILE "TESSERA"

#define TSR_DIGEST_LEN 32
#define TSR_ID_HEX_LEN (2 * TSR_DIGEST_LEN)

#define TSR_CHUNK_SIZE_MIN (4u << 10)
#define TSR_CHUNK_SIZE_MAX (1u << 20)
#define TSR_CHUNK_SIZE_DEFAULT (64u << 10)

/* Longest volume / layer name, without the terminating NUL. */
#define TSR_NAME_MAX 255

enum tsr_codec {
	TSR_CODEC_NONE = 0,
	TSR_CODEC_ZLIB = 1,
	TSR_CODEC_ZSTD = 2,
};

/* A layer id: SHA-256 of the layer's canonical serialization (FORMAT.md). */
struct tsr_layer_id {
	uint8_t bytes[TSR_DIGEST_LEN];
};

struct tsr_store;
struct tsr_volume;
struct tsr_layer;

/* Progress of long work (commit).  Called from the calling thread only. */
struct tsr_progress {
	void (*update)(void *arg, uint64_t done, uint64_t total);
	void *arg;
};

/* ---- errors and ids ---------------------------------------------------- */

/* Text for a TSR_ERR_* code or a negative errno (with tessera's meaning
 * where the list above gives one).  A static string: never free it. */
const char *tsr_strerror(int err);

/* buf must hold TSR_ID_HEX_LEN + 1 bytes. */
void tsr_layer_id_to_hex(const struct tsr_layer_id *id, char *buf);
/* 0, or -EINVAL when hex is not exactly 64 hex digits. */
int tsr_layer_id_from_hex(const char *hex, struct tsr_layer_id *ret_id);
bool tsr_layer_id_is_zero(const struct tsr_layer_id *id);

/* Parses "123", "64K", "1M", "8G", "1T" (binary multiples).  -EINVAL on
 * garbage, -ERANGE on overflow. */
int tsr_parse_size(const char *text, uint64_t *ret_size);

/* ---- store ------------------------------------------------------------- */

struct tsr_init_options {
	uint32_t chunk_size;   /* power of two, TSR_CHUNK_SIZE_MIN..MAX; 0 = default */
	enum tsr_codec codec;  /* codec for new chunk objects */
};

/* Creates a store in dir (created if missing; must be empty otherwise).
 * -EEXIST when dir already holds a store, -ENOTEMPTY when it holds other
 * files, -EINVAL for a bad chunk size or codec; errno of mkdir/open. */
int tsr_store_init(const char *dir, const struct tsr_init_options *opts);

/* ---- log lines ------------------------------------------------------------ */

/* Where a library reports what it meets outside a call's result (one line
 * per event, no newline): the store, the vhost and snapshotter servers and
 * the daemon skeleton all take one. */
typedef void (*tsr_log_fn)(void *arg, const char *line);

/* Formats one line (cut at 1023 bytes) and hands it to fn(arg); when fn is
 * NULL, prints it on stderr after prefix ("tessera: "), or drops it when
 * prefix is NULL too. */
void tsr_log_vprintf(tsr_log_fn fn, void *arg, const char *prefix, const char *fmt,
		     va_list ap) __attribute__((format(printf, 4, 0)));

struct tsr_open_options {
	uint64_t cache_bytes;  /* decompressed chunk cache; 0 = default (256 MiB) */
	uint64_t map_bytes;    /* LMDB map size; 0 = default (1 TiB, sparse) */
	unsigned workers;      /* commit threads; 0 = number of online CPUs */
	/* Where the store reports damage it meets outside fsck (one line per
	 * event, no newline).  NULL: "tessera: ..." on stderr. */
	tsr_log_fn log;
	void *log_arg;
};

/* Opens a store and takes its lock.  A lock left by a killed process is
 * taken over.  opts may be NULL.  *ret_store is the caller's until
 * tsr_store_close().
 *  TSR_ERR_NOT_STORE  dir has no store marker, or its metadata lacks the
 *                     store's databases or settings
 *  TSR_ERR_VERSION    the store's format version is not this library's
 *  -EBUSY             another live process holds the lock
 *  -ENOENT, ...       dir itself cannot be opened (errno of open(2): a
 *                     dead FUSE mountpoint gives -ENOTCONN)
 *  -EBADMSG           its settings (chunk size, codec) are malformed
 *  -ENOSYS            libcrypto offers no SHA-256 */
int tsr_store_open(const char *dir, const struct tsr_open_options *opts,
		   struct tsr_store **ret_store);
/* Flushes and closes every volume still open (their handles die with
 * it), then releases the lock and frees store.  NULL is a no-op. */
void tsr_store_close(struct tsr_store *store);

/* The pid recorded in dir's lock file (whether or not it still runs), or
 * -ENOENT when there is none, or the errno of opening the file. */
int tsr_store_owner(const char *dir);

struct tsr_store_stats {
	uint32_t chunk_size;
	enum tsr_codec codec;
	uint64_t objects;        /* chunk objects in the index */
	uint64_t object_bytes;   /* their uncompressed size */
	uint64_t stored_bytes;   /* their size in packs (compressed + headers) */
	uint64_t referenced;     /* layer map entries pointing at objects */
	uint64_t layers;
	uint64_t volumes;
	uint64_t pack_bytes;     /* allocated bytes of pack files */
	uint64_t volume_bytes;   /* allocated bytes of volume data files */
	uint64_t meta_bytes;     /* allocated bytes of the metadata map */
};
/* Totals; sizes of files that cannot be stat'ed count as 0. */
int tsr_store_stat(struct tsr_store *store, struct tsr_store_stats *ret_stats);

/* ---- volumes ------------------------------------------------------------ */

struct tsr_volume_info {
	char name[TSR_NAME_MAX + 1];
	uint64_t id;
	uint64_t size;
	bool has_parent;
	struct tsr_layer_id parent;
	uint64_t created;          /* seconds since the epoch */
	uint64_t chunks_written;   /* chunks holding local data (durable state) */
	uint64_t chunks_zeroed;    /* chunks discarded locally */
	uint64_t allocated_bytes;  /* allocated bytes of its data file */
};

/* size must be > 0.  With a parent, size 0 means the parent's size.
 *  -EINVAL  bad name, size 0 without a parent, a size smaller than the
 *           parent's, or more than 2^31 chunks
 *  -EEXIST  a volume of that name exists
 *  -ENOENT  parent is not in the store */
int tsr_volume_create(struct tsr_store *store, const char *name, uint64_t size,
		      const struct tsr_layer_id *parent);
/* -EBUSY while a handle on the volume is open; -ENOENT, -EINVAL (name). */
int tsr_volume_remove(struct tsr_store *store, const char *name);
/* -ENOENT, -EINVAL (name). */
int tsr_volume_stat(struct tsr_store *store, const char *name,
		    struct tsr_volume_info *ret_info);
/* Calls fn for each volume in name order; a non-zero return from fn stops
 * the walk and is returned.  info is valid during the call only. */
int tsr_volume_list(struct tsr_store *store,
		    int (*fn)(const struct tsr_volume_info *info, void *arg),
		    void *arg);

/* Handles on one volume share one state: opening twice gives two references
 * to it.  Closing the last reference flushes.  *ret_vol is valid until
 * tsr_volume_close(), a tsr_volume_commit() that consumes it, or
 * tsr_store_close().  -ENOENT, -EINVAL (name), -EBUSY while the volume is
 * being committed. */
int tsr_volume_open(struct tsr_store *store, const char *name,
		    struct tsr_volume **ret_vol);
void tsr_volume_close(struct tsr_volume *vol);
uint64_t tsr_volume_size(const struct tsr_volume *vol);
uint32_t tsr_volume_chunk_size(const struct tsr_volume *vol);

/* Byte-addressed I/O at any offset and length within the volume's size
 * (-EINVAL beyond it).  Reads and writes are whole: 0 means all len bytes.
 * A read of a chunk inherited from a damaged object is -EIO (buf then
 * holds no unverified bytes of it); a write that must first copy such a
 * chunk up is -EIO too.  A flush that failed makes every later flush of the
 * volume fail with the same code. */
int tsr_volume_read(struct tsr_volume *vol, void *buf, size_t len, uint64_t off);
int tsr_volume_write(struct tsr_volume *vol, const void *buf, size_t len,
		     uint64_t off);
/* Reads back as zeros afterwards; whole chunks become holes and free their
 * space. */
int tsr_volume_discard(struct tsr_volume *vol, uint64_t off, uint64_t len);
int tsr_volume_write_zeroes(struct tsr_volume *vol, uint64_t off, uint64_t len);
/* Every write, discard and write-zeroes that returned before this call
 * survives a crash once it returns.  Concurrent callers share one sync. */
int tsr_volume_flush(struct tsr_volume *vol);

/* Where the bytes of a volume range live, for a front-end that does its
 * own file I/O (io_uring) on the plain part of a request. */
enum tsr_extent_kind {
	/* The bytes are in place in fd at file_off: pread/pwrite them there
	 * (past the file's end reads as zeros). */
	TSR_EXTENT_FILE = 1,
	/* The range reads as zeros (reads only). */
	TSR_EXTENT_ZERO = 2,
	/* Only tsr_volume_read / tsr_volume_write can serve the range: it
	 * inherits parent data (decompressed and verified), or a write must
	 * first copy a chunk up or change its state. */
	TSR_EXTENT_STORE = 3,
};

struct tsr_volume_extent {
	uint64_t off;            /* volume byte offset */
	uint64_t len;            /* bytes, > 0 */
	enum tsr_extent_kind kind;
	int fd;                  /* FILE: the volume's data file (do not close
				  * it; valid while the handle is open); else -1 */
	uint64_t file_off;       /* FILE: offset in fd; else 0 */
};

/* Maps [off, off + len) for a read (for_write false) or a write: fills
 * ext[0..*ret_n) in ascending order, adjacent extents of one kind merged.
 * A write maps to FILE (chunks holding local data) and STORE only, never
 * ZERO.  When the range needs more than max extents, the first max are
 * returned and the last one ends before off + len: map the rest with
 * another call.  len 0 gives *ret_n 0.  -EINVAL beyond the size or for
 * max 0.
 *
 * A FILE extent stays valid until the caller's next discard,
 * write-zeroes or commit touching that range (nothing else takes a chunk's
 * bytes out of the data file; commit needs the only handle).  I/O through
 * it that overlaps such a call leaves that range's content undefined, as
 * for overlapping writes, but the volume consistent.  Writes through FILE
 * extents that completed before tsr_volume_flush() is called are durable
 * when it returns: flush always syncs the data file.
 *
 * Layers have no equivalent: every data chunk of a layer is a compressed,
 * digest-checked object, so all of it would map to STORE. */
int tsr_volume_map(struct tsr_volume *vol, uint64_t off, uint64_t len, bool for_write,
		   struct tsr_volume_extent *ext, unsigned max, unsigned *ret_n);

/* Turns the volume into a layer: hashes the chunks written since its
 * parent, stores new objects, publishes the layer atomically and removes
 * the volume.  The caller's handle must be the only reference (-EBUSY
 * otherwise) and is consumed whatever the result.  name may be NULL.  When
 * a layer of identical content exists, it gains a hold and its id is
 * returned.  progress may be NULL.
 *  -EBUSY   another reference to the volume is open
 *  -EINVAL  a bad name
 *  -EEXIST  a layer of that name exists
 * On failure the volume remains (the handle is closed all the same). */
int tsr_volume_commit(struct tsr_volume *vol, const char *name,
		      const struct tsr_progress *progress,
		      struct tsr_layer_id *ret_id);

/* Publishes the volume's content as a layer, as tsr_volume_commit does,
 * but keeps the volume: it goes on with its parent and its writes, other
 * handles stay open, and vol stays the caller's.  The layer holds the
 * chunks as they were when the call began; a write that races with it
 * lands in the volume and may or may not reach the layer (a caller that
 * wants a consistent image stops writers first: the snapshotter freezes
 * the filesystem on it).  Same errors as tsr_volume_commit, but never
 * -EBUSY for other handles. */
int tsr_volume_commit_copy(struct tsr_volume *vol, const char *name,
			   const struct tsr_progress *progress,
			   struct tsr_layer_id *ret_id);

/* ---- layers ------------------------------------------------------------- */

struct tsr_layer_info {
	struct tsr_layer_id id;
	bool has_parent;
	struct tsr_layer_id parent;
	uint64_t size;
	uint64_t created;
	uint32_t holds;         /* commits/imports holding it; rm drops one */
	uint32_t depth;         /* 1 for a layer without parent */
	uint64_t entries;       /* chunks in its own map (data or hole) */
	uint64_t data_chunks;   /* entries that hold data */
	uint64_t new_objects;   /* objects first stored by this layer */
	uint64_t new_stored_bytes;
};

/* Resolves a layer name, a full id or a unique id prefix (at least 4 hex
 * digits).  -ENOENT, or TSR_ERR_AMBIGUOUS for a prefix of more than one
 * layer (tsr_layer_matches lists them). */
int tsr_layer_resolve(struct tsr_store *store, const char *spec,
		      struct tsr_layer_id *ret_id);
/* Calls fn for the layer named spec (name != NULL) and for every layer whose
 * id starts with spec when spec is 4 to 64 hex digits (name == NULL);
 * returns the number of matches, or fn's non-zero return (which stops the
 * walk), or a negative errno.  id and name are valid during the call. */
int tsr_layer_matches(struct tsr_store *store, const char *spec,
		      int (*fn)(const struct tsr_layer_id *id, const char *name,
				void *arg),
		      void *arg);
/* -ENOENT when the store has no such layer. */
int tsr_layer_stat(struct tsr_store *store, const struct tsr_layer_id *id,
		   struct tsr_layer_info *ret_info);
/* In id order; a non-zero return from fn stops the walk and is returned.
 * info is valid during the call only. */
int tsr_layer_list(struct tsr_store *store,
		   int (*fn)(const struct tsr_layer_info *info, void *arg),
		   void *arg);
/* Names of a layer, through fn (name valid during the call); a non-zero
 * return from fn stops the walk and is returned. */
int tsr_layer_names(struct tsr_store *store, const struct tsr_layer_id *id,
		    int (*fn)(const char *name, void *arg), void *arg);
/* Points name at id: 0 also when it already does.  -EEXIST when the name
 * points elsewhere, -ENOENT when there is no layer id, -EINVAL (name). */
int tsr_layer_name_set(struct tsr_store *store, const char *name,
		       const struct tsr_layer_id *id);
/* Gives the layer named from the name to instead, in one step (its holds
 * unchanged).  -ENOENT when from names no layer, -EEXIST when to names
 * one, -EINVAL (names). */
int tsr_layer_name_move(struct tsr_store *store, const char *from, const char *to);
/* Drops one hold (and, when name is not NULL, that name).  The last hold
 * removes the layer.  -EBUSY while layers or volumes use it as their parent
 * (nothing dropped), -ENOENT when there is no such layer or name points
 * elsewhere. */
int tsr_layer_remove(struct tsr_store *store, const struct tsr_layer_id *id,
		     const char *name);

/* Read-only access to a layer's flattened content.  *ret_layer is the
 * caller's until tsr_layer_close(), which must come before
 * tsr_store_close().  -ENOENT when the store has no such layer. */
int tsr_layer_open(struct tsr_store *store, const struct tsr_layer_id *id,
		   struct tsr_layer **ret_layer);
void tsr_layer_close(struct tsr_layer *layer);
uint64_t tsr_layer_size(const struct tsr_layer *layer);
/* Whole reads within the size (-EINVAL beyond it); -EIO for a chunk whose
 * object is damaged or missing (buf then holds no unverified bytes of it). */
int tsr_layer_read(struct tsr_layer *layer, void *buf, size_t len, uint64_t off);

/* Adds a hold on a layer (an image or a snapshot that keeps it); dropped by
 * tsr_layer_remove.  -ENOENT, -EOVERFLOW at 2^32-1 holds. */
int tsr_layer_hold(struct tsr_store *store, const struct tsr_layer_id *id);

/* ---- records of the front-ends ------------------------------------------- */
/* Small records the front-ends keep in the store's metadata, each in a
 * namespace of its own ("image", "snapshot", ...: imagefmt's
 * image_store.h keeps images here): opaque bytes, durable when
 * the call returns.  ns is 1..63 bytes without NUL; key 1..400 bytes; a
 * value at most 16 MiB. */
#define TSR_RECORD_KEY_MAX 400
/* -EINVAL for a bad ns or key, -EFBIG for a value over 16 MiB. */
int tsr_record_put(struct tsr_store *store, const char *ns, const char *key,
		   const void *val, size_t len);
/* *ret_val is malloc'd (the caller frees it); -ENOENT when absent,
 * -EINVAL for a bad ns or key. */
int tsr_record_get(struct tsr_store *store, const char *ns, const char *key,
		   void **ret_val, size_t *ret_len);
/* -ENOENT when absent, -EINVAL for a bad ns or key. */
int tsr_record_del(struct tsr_store *store, const char *ns, const char *key);
/* Calls fn for each record of ns whose key starts with prefix (may be ""),
 * in key order; a non-zero return from fn stops the walk and is returned.
 * key and val are valid during the call only.  -EINVAL for a bad ns. */
int tsr_record_list(struct tsr_store *store, const char *ns, const char *prefix,
		    int (*fn)(const char *key, const void *val, size_t len, void *arg),
		    void *arg);

/* ---- moving layers between stores ------------------------------------------ */
/* The primitives a layer blob (imagefmt/FORMAT.md) is written and read with.
 * Equal content gives equal layer ids in every store of the same chunk
 * size, so a layer exported from one store and imported into another keeps
 * its id. */

uint32_t tsr_store_chunk_size(const struct tsr_store *store);

/* Calls fn for each entry of the layer's own map (the chunks that differ
 * from its parent), in ascending index order: digest is the chunk's, or
 * NULL for a hole (valid during the call).  A non-zero return from fn stops
 * the walk and is returned.  -ENOENT when there is no such layer. */
int tsr_layer_entries(struct tsr_store *store, const struct tsr_layer_id *id,
		      int (*fn)(uint64_t index, const uint8_t *digest, void *arg), void *arg);
/* Calls fn for the digest of every chunk of the layer's flattened content
 * that holds data (a digest may come more than once; valid during the
 * call).  A non-zero return from fn stops the walk and is returned. */
int tsr_layer_digests(struct tsr_layer *layer,
		      int (*fn)(const uint8_t *digest, void *arg), void *arg);

/* Largest stored (compressed) size of an object: the buffer size for
 * tsr_object_read_stored. */
size_t tsr_object_stored_max(const struct tsr_store *store);
/* Reads an object as stored, after verifying it against its digest:
 * *ret_codec and *ret_len bytes of payload in buf (cap bytes).  -ENOENT when
 * the store has no such object, -EIO when it is damaged, -ENOBUFS when cap
 * is too small. */
int tsr_object_read_stored(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
			   enum tsr_codec *ret_codec, void *buf, size_t cap, size_t *ret_len);

/* A layer being imported.  Holds the store's commit lock from begin to
 * commit or abort: imports and commits of one store run one at a time. */
struct tsr_layer_import;
/* -EINVAL when chunk_size is not the store's, size is 0 or over 2^31
 * chunks, or smaller than the parent's; -ENOENT when parent (not NULL) is
 * not in the store.  *ret_imp is the caller's until
 * tsr_layer_import_commit() or tsr_layer_import_abort(). */
int tsr_layer_import_begin(struct tsr_store *store, const struct tsr_layer_id *parent,
			   uint64_t size, uint32_t chunk_size,
			   struct tsr_layer_import **ret_imp);
/* Adds an object: decompressed and checked against digest (-EBADMSG when
 * it does not match, or is all zeros) unless the store already has it.
 * A failure other than -EBADMSG (the store could not append the object)
 * makes every later call on imp fail with the same code. */
int tsr_layer_import_object(struct tsr_layer_import *imp, const uint8_t digest[TSR_DIGEST_LEN],
			    enum tsr_codec codec, const void *payload, size_t len);
/* Adds a map entry (digest NULL: a hole); indexes must ascend and lie
 * within the size (-EINVAL). */
int tsr_layer_import_entry(struct tsr_layer_import *imp, uint64_t index,
			   const uint8_t *digest);
/* Publishes the layer; -EBADMSG when an entry names an object neither the
 * store nor the import has, or when expect (not NULL) is not the id of
 * what was imported.  Consumes imp whatever the result. */
int tsr_layer_import_commit(struct tsr_layer_import *imp, const char *name,
			    const struct tsr_layer_id *expect, struct tsr_layer_id *ret_id);
void tsr_layer_import_abort(struct tsr_layer_import *imp);

/* ---- garbage collection -------------------------------------------------- */

struct tsr_gc_stats {
	uint64_t objects_removed;     /* unreferenced objects dropped from the index */
	uint64_t object_bytes_removed;/* their stored bytes */
	uint64_t packs_compacted;     /* packs rewritten without their garbage */
	uint64_t packs_removed;       /* pack files deleted */
	uint64_t live_bytes_copied;   /* bytes moved by compaction */
	uint64_t volume_bytes_freed;  /* stale bytes punched out of volume files */
	uint64_t allocated_before;    /* allocated bytes of packs + volume files */
	uint64_t allocated_after;
};

/* Reclaims chunk objects no layer references (holes punched in packs; packs
 * whose garbage passes half their size are rewritten) and space in closed
 * volumes' data files that no chunk uses.  Safe to interrupt at any point:
 * every step commits metadata before it frees bytes.  progress may be
 * NULL. */
int tsr_store_gc(struct tsr_store *store, const struct tsr_progress *progress,
		 struct tsr_gc_stats *ret_stats);

/* ---- consistency check --------------------------------------------------- */

enum tsr_fsck_flags {
	TSR_FSCK_REPAIR = 1 << 0,  /* rebuild what can be rebuilt from the packs */
};

struct tsr_fsck_stats {
	uint64_t objects_checked;
	uint64_t bytes_checked;       /* uncompressed bytes verified */
	uint64_t damaged_objects;     /* bad digest, bad header, missing bytes */
	uint64_t refcount_errors;
	uint64_t damaged_layers;      /* layers that use a damaged object or are damaged */
	uint64_t damaged_volumes;
	uint64_t stale_readers;       /* LMDB reader slots of dead processes cleared */
	uint64_t repaired;            /* findings fixed by TSR_FSCK_REPAIR */
	uint64_t unrepairable;        /* findings it could not fix */
};

/* Checks every object against its digest, every refcount against the
 * layers, every layer map, every volume's states against its data file.
 * Each finding is passed to report as one line of text ("object <digest>:
 * digest mismatch (pack 00000001 offset 4160), used by layer <id> ...").
 * Returns 0 when the store is clean (or, with TSR_FSCK_REPAIR, when every
 * finding was repaired), 1 when damage remains, or a negative errno when
 * the check itself could not run. */
int tsr_store_fsck(struct tsr_store *store, unsigned flags,
		   void (*report)(void *arg, const char *line), void *arg,
		   const struct tsr_progress *progress, struct tsr_fsck_stats *ret_stats);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_STORE_H */
