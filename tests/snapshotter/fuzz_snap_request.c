/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: request decoding of the snapshotter, everything a peer
 * on the socket controls before a method runs.
 *
 * Input byte 0 chooses the layer:
 *   even  HTTP/2: the rest, after the client preface, is fed to a server
 *         connection (h2_server.c: nghttp2 session, our callbacks, header
 *         and body bounds, gRPC framing, protobuf decoding, List filters),
 *         split into two reads at the offset in byte 1.  Responses are
 *         produced and discarded.
 *   odd   one gRPC request body (byte 1 picks the method): grpc_unframe,
 *         protobuf-c decoding, filter parsing.
 * Requests are decoded only (no store): the snapshot methods below are
 * stubs that must never be reached.
 *
 * Built by fuzz.sh with clang-14 -fsanitize=fuzzer,address,undefined.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct grpc_reply reply;
	struct h2_conn *c;
	size_t split;

	if (size < 2)
		return 0;
	if (data[0] & 1) {
		grpc_reply_init(&reply);
		snap_service_call(NULL, data[1] % 10, data + 2, size - 2, &reply);
		grpc_reply_free(&reply);
		return 0;
	}
	if (h2_conn_new(-1, NULL, false, &c) < 0)
		return 0;
	split = data[1] < size - 2 ? data[1] : size - 2;
	if (h2_conn_feed(c, (const uint8_t *)preface, sizeof(preface) - 1) == 0 &&
	    h2_conn_feed(c, data + 2, split) == 0)
		h2_conn_feed(c, data + 2 + split, size - 2 - split);
	h2_conn_free(c);
	return 0;
}

/* ---- stubs: the store side, never reached when decoding only ---------------- */

#define UNREACHED abort()

int snaps_init(struct snaps *s, struct tsr_store *store,
	       const struct tsr_snapshotter_options *opts)
{
	(void)s, (void)store, (void)opts;
	UNREACHED;
}
void snaps_fini(struct snaps *s) { (void)s; }
int snaps_recover(struct snaps *s) { (void)s; UNREACHED; }
int orphans_start(struct snaps *s) { (void)s; UNREACHED; }
void snaps_log(struct snaps *s, const char *fmt, ...) { (void)s, (void)fmt; }
int snaps_prepare(struct snaps *s, const struct snap_args *a, bool view,
		  struct snap_mount *ret_mount, char *err, size_t errlen)
{
	(void)s, (void)a, (void)view, (void)ret_mount, (void)err, (void)errlen;
	UNREACHED;
}
int snaps_commit(struct snaps *s, const char *name, const struct snap_args *a,
		 char *err, size_t errlen)
{
	(void)s, (void)name, (void)a, (void)err, (void)errlen;
	UNREACHED;
}
int snaps_remove(struct snaps *s, const char *key, char *err, size_t errlen)
{
	(void)s, (void)key, (void)err, (void)errlen;
	UNREACHED;
}
int snaps_stat_locked(struct snaps *s, const char *key, struct snap_rec **ret_rec,
		      char *err, size_t errlen)
{
	(void)s, (void)key, (void)ret_rec, (void)err, (void)errlen;
	UNREACHED;
}
int snaps_update(struct snaps *s, const char *key, const struct snap_label *labels,
		 size_t n_labels, char *const *paths, size_t n_paths,
		 struct snap_rec **ret_rec, char *err, size_t errlen)
{
	(void)s, (void)key, (void)labels, (void)n_labels, (void)paths, (void)n_paths;
	(void)ret_rec, (void)err, (void)errlen;
	UNREACHED;
}
int snaps_usage(struct snaps *s, const char *key, int64_t *ret_size, int64_t *ret_inodes,
		char *err, size_t errlen)
{
	(void)s, (void)key, (void)ret_size, (void)ret_inodes, (void)err, (void)errlen;
	UNREACHED;
}
int snaps_cleanup(struct snaps *s, char *err, size_t errlen)
{
	(void)s, (void)err, (void)errlen;
	UNREACHED;
}
int snaps_mount_of(struct snaps *s, const char *key, const struct snap_rec *rec,
		   struct snap_mount *ret)
{
	(void)s, (void)key, (void)rec, (void)ret;
	UNREACHED;
}
void snap_rec_free(struct snap_rec *rec) { (void)rec; }
const char *snap_rec_label_get(const struct snap_rec *rec, const char *key)
{
	(void)rec, (void)key;
	UNREACHED;
}
int snap_rec_list(struct tsr_store *store,
		  int (*fn)(const char *key, const struct snap_rec *rec, void *arg), void *arg)
{
	(void)store, (void)fn, (void)arg;
	UNREACHED;
}
const char *tsr_strerror(int err) { (void)err; return "error"; }
