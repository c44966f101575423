/* SPDX-License-Identifier: MIT */
/*
 * Internals of the snapshotter, by layer:
 *
 *   h2_server.c   the socket and HTTP/2 (nghttp2): connections, streams,
 *                 request headers and bodies, responses with trailers
 *   grpc.c        gRPC framing (5-byte prefix), status codes, replies
 *   service.c     the Snapshots methods: protobuf in and out (protobuf-c)
 *   snapshots.c   what each method does to the store
 *   recovery.c    restart recovery
 *   log.c         log lines
 *   records.c     the snapshotter's metadata records (store records, ns
 *                 "snapshot") and the names of its volumes and layers
 *   filters.c     containerd's filter syntax, for List
 *   loop_devices.c the loop devices the snapshots' mounts name
 *   orphans.c     volumes of snapshots committed while mounted, layers
 *                 whose removal waits for them; the thread that reaps them
 *
 * Functions return 0 or a negative errno unless they say otherwise.
 */
#ifndef TSR_SNAPSHOTTER_INTERNAL_H
#define TSR_SNAPSHOTTER_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera/mount_stack.h>
#include <tessera/snapshotter.h>
#include <tessera/store.h>

/* ---- gRPC (grpc.c) ------------------------------------------------------ */

enum grpc_code {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
};

#define GRPC_PREFIX_LEN 5
#define GRPC_MSG_TEXT_MAX 512

/* A response: its messages, each framed, then its status. */
struct grpc_reply {
	int code;                     /* enum grpc_code */
	char msg[GRPC_MSG_TEXT_MAX];  /* grpc-message, "" for none */
	uint8_t *body;                /* framed messages, malloc'd */
	size_t len, cap;
};

void grpc_reply_init(struct grpc_reply *r);
void grpc_reply_free(struct grpc_reply *r);
/* Appends one message (len bytes of protobuf) with its prefix: 0, -ENOMEM,
 * or -EMSGSIZE beyond TSR_SNAPSHOTTER_MSG_MAX. */
int grpc_reply_add(struct grpc_reply *r, const void *msg, size_t len);
/* Sets an error status (drops the messages): code and printf text. */
void grpc_reply_error(struct grpc_reply *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The status code of a negative errno of the snapshotter and the store. */
int grpc_code_from_errno(int err);
/*
 * Takes the single message out of a request body: *ret_msg and *ret_len
 * point into body.  Returns GRPC_OK, or an error code with its text in
 * reply (no message, several, truncated, compressed, too large).
 */
int grpc_unframe(const uint8_t *body, size_t len, const uint8_t **ret_msg,
		 size_t *ret_len, struct grpc_reply *reply);
/* grpc-message encoding (percent-encoding outside 0x20..0x7e and '%'):
 * writes a NUL-terminated string of at most size - 1 bytes. */
void grpc_percent_encode(const char *in, char *out, size_t size);

/* ---- records (records.c) -------------------------------------------------- */

enum snap_kind {
	SNAP_VIEW = 1,       /* containerd's Kind values */
	SNAP_ACTIVE = 2,
	SNAP_COMMITTED = 3,
};

struct snap_label {
	char *key, *val;
};

/* A snapshot's record, decoded.  Every string is malloc'd, never NULL. */
struct snap_rec {
	int kind;
	char *parent;                /* key, "" for none */
	char *volume;                /* views, active */
	bool has_layer;
	struct tsr_layer_id layer;   /* committed */
	char *layer_name;            /* committed: the name holding it */
	struct snap_label *labels;
	size_t n_labels;
	int64_t created_ns, updated_ns;
	bool pending;                /* commit in flight */
	char *from_key;              /* pending: the active key */
	int64_t inodes;
};

/* A record with empty strings: NULL on -ENOMEM. */
struct snap_rec *snap_rec_new(int kind);
void snap_rec_free(struct snap_rec *rec);
/* Replaces *field by a copy of value.  0 or -ENOMEM. */
int snap_rec_set(char **field, const char *value);
/* Sets a label (value NULL or "": removes it).  0 or -ENOMEM. */
int snap_rec_label_set(struct snap_rec *rec, const char *key, const char *value);
const char *snap_rec_label_get(const struct snap_rec *rec, const char *key);
void snap_rec_labels_clear(struct snap_rec *rec);

/* Serialization (Record of tessera/snapshot_record.proto).  decode:
 * -EBADMSG for bytes that are not a record. */
int snap_rec_encode(const struct snap_rec *rec, uint8_t **ret_buf, size_t *ret_len);
int snap_rec_decode(const void *buf, size_t len, struct snap_rec **ret_rec);

/* The store's records of namespace "snapshot".  get: -ENOENT when absent,
 * -EBADMSG when damaged. */
int snap_rec_get(struct tsr_store *store, const char *key, struct snap_rec **ret_rec);
int snap_rec_put(struct tsr_store *store, const char *key, const struct snap_rec *rec);
int snap_rec_del(struct tsr_store *store, const char *key);
/* Calls fn for each record in key order (damaged ones are skipped and
 * passed with rec NULL).  A non-zero return from fn stops the walk. */
int snap_rec_list(struct tsr_store *store,
		  int (*fn)(const char *key, const struct snap_rec *rec, void *arg),
		  void *arg);

/* The volume or layer name of a snapshot key: SNAP_NAME_PREFIX and 40 hex
 * digits of SHA-256(key).  buf holds SNAP_NAME_LEN + 1 bytes. */
#define SNAP_NAME_PREFIX "ctrd-"
#define SNAP_NAME_LEN (5 + 40)
void snap_name_of(const char *key, char *buf);
/* The same with a generation: gen 0 is snap_name_of's name; others hash
 * the key and gen, for a volume whose usual name an orphan still has. */
void snap_name_gen(const char *key, unsigned gen, char *buf);

int64_t snap_now_ns(void);

/* ---- loop devices (loop_devices.c) ------------------------------------------ */

/* Snapshot key -> the loop device attached to its image (held open,
 * autoclear).  Thread-safe. */
struct loop_entry;
struct loop_table {
	pthread_mutex_t lock;
	struct loop_entry *v;
	size_t n, cap;
	bool unavailable;  /* this process cannot attach loop devices */
};

/* unavailable is set if /dev/loop-control cannot be opened. */
void loop_table_init(struct loop_table *t);
/* Closes every device (the kernel clears each once nothing mounts it). */
void loop_table_fini(struct loop_table *t);
/* The device ("/dev/loopN") bound to image for key: the one attached
 * before, else a free device bound now (direct I/O; read-only if
 * read_only).  Errors: -ENODEV when this process cannot attach loop
 * devices (known at init, or learnt now: then *ret_cause is the error that
 * showed it, else 0), else the open of image or the kernel's setup. */
int loop_table_get(struct loop_table *t, const char *key, const char *image,
		   bool read_only, char *ret_dev, size_t dev_size, int *ret_cause);
/* The device attached for key: -ENOENT when it has none. */
int loop_table_dev(struct loop_table *t, const char *key, char *ret_dev, size_t dev_size);
/* Releases key's device, if it has one.  only_unused: not while a
 * filesystem on it is mounted (-EBUSY), nor when that cannot be checked
 * (the open's error); the entry stays. */
int loop_table_put(struct loop_table *t, const char *key, bool only_unused);

/* ---- orphans (orphans.c) --------------------------------------------------- */

/* The names a removed snapshot's layer waits under while an orphan uses
 * it: SNAP_REMOVED_PREFIX, the 40 hex digits of its old name, "-N". */
#define SNAP_REMOVED_PREFIX "ctrd-rm-"

struct snap_orphans {
	/* Under the snapshotter's lock (exclusive to change them). */
	char **volumes;          /* record-less volumes a loop device holds */
	size_t n_volumes;
	char **layers;           /* SNAP_REMOVED_PREFIX names */
	size_t n_layers;
	/* The reaper thread's. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop, started;
	pthread_t thread;
};

struct snaps;
void orphans_init(struct snap_orphans *o);
/* Stops the reaper (if started) and frees the lists. */
void orphans_fini(struct snap_orphans *o);
/* Starts the thread that reaps every REAP_INTERVAL_MS. */
int orphans_start(struct snaps *s);
/* The rest under s->lock, exclusive. */
int orphan_volume_add(struct snaps *s, const char *name);
bool orphan_volume_is(struct snaps *s, const char *name);
/* Whether the layer id is an ancestor of an orphan volume or of a layer
 * that waits (then its own removal must wait too). */
bool orphans_pin(struct snaps *s, const struct tsr_layer_id *id);
/* Moves layer_name to a SNAP_REMOVED_PREFIX name the reaper removes. */
int orphan_layer_defer(struct snaps *s, const char *layer_name);
/* Removes the orphan volumes no loop device holds any more and the
 * waiting layers nothing uses. */
void orphans_reap(struct snaps *s);
/* At start: the waiting layer names, from the store; then a reap. */
int orphans_recover(struct snaps *s);
/* Whether a loop device holds the image of volume name (under this
 * daemon's FUSE mount, or a killed daemon's detached one). */
int snap_volume_attached(struct snaps *s, const char *name, bool *ret_attached);
/* At start, for a record-less snapshot volume: kept as an orphan
 * (*ret_kept) when a loop device still holds its image. */
int orphan_volume_recover(struct snaps *s, const char *name, bool *ret_kept);

/* ---- snapshots (snapshots.c) ---------------------------------------------- */

struct snaps {
	struct tsr_store *store;
	char *fuse_mount;
	uint64_t volume_size;
	uint32_t chunk_size;
	/* Readers (Stat, List, Mounts, Usage) share it; every method that
	 * changes records or the store takes it exclusively. */
	pthread_rwlock_t lock;
	struct loop_table loops;
	struct snap_orphans orphans;
	/* Tests only (TESSERA_TEST_KILL_FROZEN=1 in the environment): the
	 * daemon kills itself in a commit of a mounted snapshot, after the
	 * layer is published and before the thaw, the worst moment to die. */
	bool kill_while_frozen;
	void (*log)(void *arg, const char *line);
	void *log_arg;
};

int snaps_init(struct snaps *s, struct tsr_store *store,
	       const struct tsr_snapshotter_options *opts);
void snaps_fini(struct snaps *s);
void snaps_log(struct snaps *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The mounts of a snapshot: type, source, options ("loop" when containerd
 * attaches the device, then tsr_mount_options's; static strings). */
struct snap_mount {
	const char *type;
	char source[4096];
	const char *options[1 + TSR_MOUNT_OPTIONS_MAX];
	size_t n_options;
};

/* Each takes the lock.  Errors: -ENOENT (key, parent), -EEXIST (key,
 * name), -EINVAL (bad argument, parent not committed), -ENOTEMPTY (has
 * children), -EBUSY (not active, or in use), else the store's; a sentence
 * for the client in err. */
struct snap_args {
	const char *key;
	const char *parent;
	const struct snap_label *labels;
	size_t n_labels;
};
/* Also attaches the new snapshot's loop device: its mount in *ret_mount. */
int snaps_prepare(struct snaps *s, const struct snap_args *a, bool view,
		  struct snap_mount *ret_mount, char *err, size_t errlen);
int snaps_commit(struct snaps *s, const char *name, const struct snap_args *a,
		 char *err, size_t errlen);
int snaps_remove(struct snaps *s, const char *key, char *err, size_t errlen);
/* Stat under the caller's lock: the record of key. */
int snaps_stat_locked(struct snaps *s, const char *key, struct snap_rec **ret_rec,
		      char *err, size_t errlen);
/* Update: paths are the field mask ("labels", "labels.KEY"); n_paths 0
 * means all mutable fields (labels). */
int snaps_update(struct snaps *s, const char *key, const struct snap_label *labels,
		 size_t n_labels, char *const *paths, size_t n_paths,
		 struct snap_rec **ret_rec, char *err, size_t errlen);
int snaps_usage(struct snaps *s, const char *key, int64_t *ret_size, int64_t *ret_inodes,
		char *err, size_t errlen);
int snaps_cleanup(struct snaps *s, char *err, size_t errlen);
/* Finishes or undoes what a killed daemon left (recovery.c,
 * docs/snapshotter.md). */
int snaps_recover(struct snaps *s);

/* The mount of snapshot key (record rec): ext4 on the loop device attached
 * to its image (attached now if it has none).  Called under s->lock, read
 * or write, so that no Commit or Remove of key runs meanwhile. */
int snaps_mount_of(struct snaps *s, const char *key, const struct snap_rec *rec,
		   struct snap_mount *ret);

/* ---- filters (filters.c) --------------------------------------------------- */

/* One filter string of containerd's syntax: selectors joined by ',' (all
 * must match).  A list of filters matches when any does (ListSnapshots). */
struct snap_filter;
/* -EINVAL with a message in err for a syntax error. */
int snap_filter_parse(const char *text, struct snap_filter **ret, char *err, size_t errlen);
void snap_filter_free(struct snap_filter *f);
/* Looks a field path up in a snapshot: the value, or NULL when absent. */
typedef const char *(*snap_field_fn)(void *arg, char *const *path, size_t n);
bool snap_filter_match(const struct snap_filter *f, snap_field_fn field, void *arg);

/* ---- service (service.c) ---------------------------------------------------- */

#define SNAP_SERVICE_PATH "/containerd.services.snapshots.v1.Snapshots/"

/* The index of the method a :path names, or -1. */
int snap_method_find(const char *path);
/* Decodes the request (one gRPC message in body) and, with s not NULL,
 * runs the method; the response or error goes to reply.  With s NULL only
 * decodes (the fuzz target): reply gets GRPC_OK or the decoding error. */
void snap_service_call(struct snaps *s, int method, const uint8_t *body, size_t len,
		       struct grpc_reply *reply);

/* ---- HTTP/2 (h2_server.c) ---------------------------------------------------- */

struct h2_conn;
/* A connection over fd (taken).  threaded: requests run on threads of
 * their own (the server); otherwise inline (the fuzz target, s NULL). */
int h2_conn_new(int fd, struct snaps *s, bool threaded, struct h2_conn **ret);
/* Feeds received bytes and sends what is due (the fuzz target's entry):
 * 0, or a negative errno when the connection is to be closed. */
int h2_conn_feed(struct h2_conn *c, const uint8_t *data, size_t len);
void h2_conn_free(struct h2_conn *c);

#endif /* TSR_SNAPSHOTTER_INTERNAL_H */
