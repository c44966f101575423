/* SPDX-License-Identifier: MIT */
/*
 * A vhost-user-blk backend: serves one tessera volume (read-write or
 * read-only) or one committed layer (always read-only) as a virtio-blk
 * device to a VMM (QEMU, Cloud Hypervisor, Firecracker) that connects to a
 * unix socket.  The server keeps listening: when the front-end disconnects
 * (the VM powered off, the VMM restarted) the next one may connect.
 *
 * Uses <tessera/store.h> only.  Return values follow the store's
 * convention: 0 or a negative errno.
 */
#ifndef TESSERA_VHOST_SERVER_H
#define TESSERA_VHOST_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <tessera/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most virtqueues one device offers (VHOST_USER_GET_QUEUE_NUM). */
#define TSR_VHOST_MAX_QUEUES 16
/* Store worker threads per queue (tsr_vhost_options.store_threads). */
#define TSR_VHOST_STORE_THREADS_DEFAULT 2
#define TSR_VHOST_MAX_STORE_THREADS 16

struct tsr_vhost_options {
	const char *socket_path;          /* unix socket to listen on */
	/* Who may connect: the socket file is created with socket_mode (0:
	 * 0600, or 0660 with socket_has_gid; whatever the umask) owned by the euid and, with
	 * socket_has_gid, group socket_gid; each front-end is checked with
	 * SO_PEERCRED: root and the euid are allowed, and members of
	 * socket_gid when it is set (a VMM running as another user). */
	unsigned socket_mode;
	bool socket_has_gid;
	gid_t socket_gid;
	/* Exactly one of volume and layer is set. */
	const char *volume;               /* volume name */
	const struct tsr_layer_id *layer; /* layer: always read-only */
	/* Number of request queues, 1..TSR_VHOST_MAX_QUEUES; 0 means 1.  It
	 * must equal the front-end's num-queues (QEMU's vhost-user-blk
	 * refuses a backend offering fewer; a Linux guest fails to probe a
	 * device announcing more than the VMM created). */
	unsigned queues;
	bool read_only;                   /* VIRTIO_BLK_F_RO; writes fail */
	/* Worker threads per queue for the reads and writes only the store
	 * can serve (chunks inherited from the parent layer: decompression
	 * and digest checks; first writes to a chunk: copy-up; every read
	 * of a layer), so that several run at once.  0 means the default,
	 * TSR_VHOST_STORE_THREADS_DEFAULT; negative means none (each queue
	 * thread serves them itself, one at a time); at most
	 * TSR_VHOST_MAX_STORE_THREADS. */
	int store_threads;
	/* One line per event (connection, broken ring...), no newline.
	 * NULL: "tessera: vhost: ..." on stderr.  Called from any of the
	 * server's threads. */
	void (*log)(void *arg, const char *line);
	void *log_arg;
};

struct tsr_vhost;

/* Opens the volume or layer and binds the socket, and installs the
 * process's SIGBUS handler for guest memory (once; a SIGBUS outside
 * guest memory keeps the action it had) (a stale socket file is
 * replaced; one a live server listens on gives -EADDRINUSE; anything
 * that is not a socket, -EEXIST).  The store
 * must outlive the server.  -ENOENT for a missing volume or layer,
 * -EINVAL for bad options. */
int tsr_vhost_new(struct tsr_store *store, const struct tsr_vhost_options *opts,
		  struct tsr_vhost **ret_srv);

/* Serves front-ends, one connection at a time, until tsr_vhost_stop().
 * The calling thread must not block SIGBUS: it touches guest memory too
 * (ring indexes when a ring starts or stops), and a blocked fault signal
 * kills the process instead of reaching the handler.
 * Flushes the volume before returning.  0, or a negative errno when the
 * listening socket fails or the final flush fails. */
int tsr_vhost_run(struct tsr_vhost *srv);

/* Asks tsr_vhost_run() to return.  Async-signal-safe; may be called before
 * run() (which then returns at once) and from any thread. */
void tsr_vhost_stop(struct tsr_vhost *srv);

/* Counters since tsr_vhost_new(). */
struct tsr_vhost_stats {
	uint64_t connections;
	uint64_t requests;      /* virtio-blk requests completed */
	uint64_t errors;        /* requests answered IOERR or UNSUPP */
	uint64_t broken_rings;  /* rings stopped for a malformed guest ring */
	uint64_t refused;       /* connections refused by the peer check */
	/* Connections ended because the front-end's guest memory went away
	 * under our mapping (it shrank its memory file): the device was
	 * reset instead of the process dying of SIGBUS. */
	uint64_t memory_faults;
};
void tsr_vhost_get_stats(struct tsr_vhost *srv, struct tsr_vhost_stats *ret);

/* Closes the volume or layer (a volume is flushed) and removes the socket
 * file.  Must not be called while run() is running. */
void tsr_vhost_free(struct tsr_vhost *srv);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_VHOST_SERVER_H */
