/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user protocol, back-end side (QEMU docs/interop/vhost-user.rst):
 * messages (vhost_msg.c), the device they configure (vhost_dev.c) and its
 * queue threads (queue.c).
 */
#ifndef TSR_VHOST_USER_H
#define TSR_VHOST_USER_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blk.h"
#include "vring.h"
#include <tessera/vhost_server.h>

/* ---- messages (vhost_msg.c) -------------------------------------------- */

enum {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
};

#define VU_F_PROTOCOL_FEATURES 30   /* VHOST_USER_F_PROTOCOL_FEATURES */
#define VU_PF_MQ 0
#define VU_PF_REPLY_ACK 3
#define VU_PF_CONFIG 9

#define VU_VERSION 0x1
#define VU_FLAG_VERSION_MASK 0x3u
#define VU_FLAG_REPLY (1u << 2)
#define VU_FLAG_NEED_REPLY (1u << 3)
#define VU_VRING_IDX_MASK 0xffu
#define VU_VRING_NOFD (1u << 8)

#define VU_HDR_SIZE 12
#define VU_MAX_FDS 8
#define VU_MAX_CONFIG 256
/* Longest payload read; a longer one ends the connection. */
#define VU_MAX_PAYLOAD 4096

struct vu_region {
	uint64_t gpa, size, uva, mmap_offset;
};

/* A message as received: header, payload (copied into the union, whose
 * layout is the wire layout) and the descriptors that came with it.  The
 * typed members are valid only after tsr_vu_msg_check() accepted the
 * request's payload size. */
struct tsr_vu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct {
			uint32_t index, num;
		} state;
		struct {
			uint32_t index, flags;
			uint64_t desc, used, avail, log;
		} addr;
		struct {
			uint32_t nregions, padding;
			struct vu_region regions[TSR_VU_MAX_REGIONS];
		} mem;
		struct {
			uint32_t offset, size, flags;
			uint8_t payload[VU_MAX_CONFIG];
		} config;
		uint8_t raw[VU_MAX_PAYLOAD];
	} p;
	int fds[VU_MAX_FDS];
	unsigned nfds;
};

/* Parses a header from hdr[0..VU_HDR_SIZE): 0, or -EPROTO for a bad
 * version or a payload longer than VU_MAX_PAYLOAD. */
int tsr_vu_msg_header(const uint8_t *hdr, struct tsr_vu_msg *msg);
/* Checks the payload of a known request against its expected size and
 * shape (and the number of descriptors): 0, -EPROTO.  Unknown requests
 * pass (the device answers them). */
int tsr_vu_msg_check(const struct tsr_vu_msg *msg);
/* Parses one message from buf[0..len): on success (0) *ret_used bytes were
 * consumed.  -EAGAIN when buf holds less than a whole message; -EPROTO
 * when it is malformed.  fds are attached by the caller.  For fuzzing and
 * tests; the server reads with tsr_vu_msg_recv(). */
int tsr_vu_msg_parse(const uint8_t *buf, size_t len, struct tsr_vu_msg *msg,
		     size_t *ret_used);
/* Reads one message and its descriptors from a stream socket.  0;
 * -ECONNRESET at end of stream; -EPROTO for a malformed message (the
 * connection must be closed); another -errno from recvmsg. */
int tsr_vu_msg_recv(int fd, struct tsr_vu_msg *msg);
/* Closes the descriptors still attached to msg (those not taken). */
void tsr_vu_msg_close_fds(struct tsr_vu_msg *msg);
/* Takes descriptor i out of msg (-1 when there is none). */
int tsr_vu_msg_take_fd(struct tsr_vu_msg *msg, unsigned i);

/* ---- the device (vhost_dev.c) and its queues (queue.c) ------------------- */

struct tsr_vu_dev;

/* Counters shared with the server (updated atomically). */
struct tsr_vu_counters {
	uint64_t requests, errors, broken_rings;
};

struct tsr_vu_queue {
	struct tsr_vu_dev *dev;
	unsigned index;
	/* Set by messages; read by the queue thread only while it runs,
	 * and changed only while it is stopped (the control thread joins
	 * it first). */
	uint16_t num;
	uint16_t base;            /* SET_VRING_BASE / where the ring stopped */
	bool addr_set;
	uint64_t desc_uva, avail_uva, used_uva;
	int kick_fd, call_fd, err_fd;
	bool enabled;
	/* The queue thread. */
	bool running;
	pthread_t thread;
	int stop_fd;              /* eventfd: asks the thread to return */
	struct tsr_vring *vr;     /* allocated on first start */
	struct tsr_vreq *req;     /* the request just taken from the ring */
	void *bounce;             /* for the synchronous path */
};

struct tsr_vu_dev {
	const struct tsr_blk *blk;
	unsigned nq;
	uint64_t features;            /* acked by SET_FEATURES */
	uint64_t protocol_features;   /* acked by SET_PROTOCOL_FEATURES */
	struct tsr_vu_mem mem;
	struct tsr_vu_queue q[TSR_VHOST_MAX_QUEUES];
	/* Sends a reply: 0 or -errno. */
	int (*send)(void *arg, const void *buf, size_t len);
	void *send_arg;
	/* Logs one line. */
	void (*log)(void *arg, const char *line);
	void *log_arg;
	struct tsr_vu_counters *counters;
	bool no_threads;              /* fuzzing: never start queue threads */
	/* Worker threads per queue for requests only the store can serve
	 * (blk_pool.c); 0: the queue thread serves them itself. */
	unsigned store_threads;
	/* Set (to 1) by the SIGBUS handler when guest memory went away under
	 * a mapping (guest_fault.h), which also writes fault_fd (an eventfd
	 * of the server's, or -1).  The rings stop answering; the server
	 * resets the device.  Cleared by tsr_vu_dev_reset. */
	uint32_t mem_faulted;
	int fault_fd;
};

/* Sets up a device for a new connection (rings stopped, nothing mapped,
 * no fault_fd). */
void tsr_vu_dev_init(struct tsr_vu_dev *dev, const struct tsr_blk *blk,
		     unsigned nq);
/* Handles one message, replying through dev->send.  0, or a negative
 * errno when the connection must be closed.  Takes or closes msg's
 * descriptors. */
int tsr_vu_dev_handle(struct tsr_vu_dev *dev, struct tsr_vu_msg *msg);
/* Stops every queue thread, unmaps guest memory and closes every
 * descriptor: the state after a disconnect. */
void tsr_vu_dev_reset(struct tsr_vu_dev *dev);
/* Frees the queues' buffers (after reset). */
void tsr_vu_dev_free(struct tsr_vu_dev *dev);

void tsr_vu_log(struct tsr_vu_dev *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* queue.c: starts the thread of a queue whose ring is fully set up
 * (0, or -errno with the ring left stopped), and stops it (joining: every
 * request in flight completes and is returned first). */
int tsr_vu_queue_start(struct tsr_vu_queue *q);
void tsr_vu_queue_stop(struct tsr_vu_queue *q);

#endif /* TSR_VHOST_USER_H */
