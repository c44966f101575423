/* SPDX-License-Identifier: MIT */
/*
 * The containerd snapshotter: serves containerd.services.snapshots.v1.Snapshots
 * (gRPC over HTTP/2, h2c with prior knowledge) on a unix socket, over an open
 * store whose FUSE mount (<tessera/fuse_server.h>) the caller serves.
 *
 * A snapshot is a volume (active, view) or a layer (committed).  The mounts
 * handed to containerd are ext4 images under the FUSE mount, on loop
 * devices the snapshotter attaches (and releases at Commit and Remove):
 *   {type: "ext4", source: "/dev/loopN", options: [rw, ...]}
 * The snapshotter's own metadata (key -> kind, volume or layer, parent,
 * labels, times) lives in the store's records, namespace "snapshot".
 *
 * Functions return 0 or a negative errno, like the rest of tessera.
 */
#ifndef TESSERA_SNAPSHOTTER_H
#define TESSERA_SNAPSHOTTER_H

#include <stdint.h>
#include <sys/types.h>

#include <tessera/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The record namespace of the snapshotter's metadata. */
#define TSR_SNAPSHOTTER_RECORD_NS "snapshot"
/* Largest gRPC message accepted or sent (bytes, without its 5-byte prefix). */
#define TSR_SNAPSHOTTER_MSG_MAX (16u << 20)
/* Default size of the filesystem of a snapshot without a parent. */
#define TSR_SNAPSHOTTER_SIZE_DEFAULT (8ull << 30)

struct tsr_snapshotter;

struct tsr_snapshotter_options {
	/* Created mode 0600 whatever the umask (0660 with socket_has_gid); a
	 * socket file nobody listens on is replaced, a live one gives
	 * -EADDRINUSE. */
	const char *socket_path;
	/* Who may connect (SO_PEERCRED on every connection): root and the
	 * daemon's euid; with socket_has_gid also members of socket_gid (the
	 * socket is then group socket_gid, mode 0660). */
	bool socket_has_gid;
	gid_t socket_gid;
	const char *fuse_mount;   /* where the caller serves the store over FUSE */
	uint64_t volume_size;     /* of new filesystems; 0 = TSR_SNAPSHOTTER_SIZE_DEFAULT */
	unsigned max_connections; /* 0 = 64 */
	/* One line per event (no newline): requests that failed, recovery.
	 * NULL: "tessera: serve: ..." on stderr. */
	void (*log)(void *arg, const char *line);
	void *log_arg;
};

/* Checks the metadata against the store (finishing or undoing what a killed
 * daemon left half done: see docs/snapshotter.md), binds the socket and
 * serves it on threads of its own until tsr_snapshotter_stop(). */
int tsr_snapshotter_start(struct tsr_store *store,
			  const struct tsr_snapshotter_options *opts,
			  struct tsr_snapshotter **ret_snap);
/* Stops accepting, closes every connection (waiting for requests being
 * handled), removes the socket file and frees. */
void tsr_snapshotter_stop(struct tsr_snapshotter *snap);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_SNAPSHOTTER_H */
