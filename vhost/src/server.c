/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user-blk server: the listening socket, one front-end
 * connection at a time, and the backing volume or layer.
 *
 * Threads: the thread in tsr_vhost_run() accepts connections and handles
 * their messages (vhost_dev.c); each started virtqueue has a thread of its
 * own (queue.c).  tsr_vhost_stop() only writes to an eventfd.
 */
#include "vhost_user.h"
#include "guest_fault.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <tessera/unix_socket.h>

/* A front-end that stops in the middle of a message is dropped after
 * this long. */
#define RECV_TIMEOUT_S 10

struct tsr_vhost {
	struct tsr_store *store;
	struct tsr_volume *vol;    /* exactly one of vol and layer */
	struct tsr_layer *layer;
	struct tsr_blk blk;
	unsigned queues;
	char *socket_path;
	int listen_fd;
	int stop_fd;               /* eventfd written by tsr_vhost_stop() */
	int fault_fd;              /* eventfd written by the SIGBUS handler */
	struct tsr_unix_policy peers;      /* who may connect */
	void (*log)(void *arg, const char *line);
	void *log_arg;
	struct tsr_vu_counters counters;   /* atomics */
	uint64_t connections;              /* atomic */
	uint64_t refused;                  /* atomic */
	uint64_t memory_faults;            /* atomic */
	struct tsr_vu_dev dev;
};

/* ---- backing operations ------------------------------------------------ */

static int vol_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	return tsr_volume_read(ctx, buf, len, off);
}

static int vol_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	return tsr_volume_write(ctx, buf, len, off);
}

static int vol_discard(void *ctx, uint64_t off, uint64_t len)
{
	return tsr_volume_discard(ctx, off, len);
}

static int vol_write_zeroes(void *ctx, uint64_t off, uint64_t len)
{
	return tsr_volume_write_zeroes(ctx, off, len);
}

static int vol_flush(void *ctx)
{
	return tsr_volume_flush(ctx);
}

static int vol_map(void *ctx, uint64_t off, uint64_t len, bool for_write,
		   struct tsr_volume_extent *ext, unsigned max, unsigned *ret_n)
{
	return tsr_volume_map(ctx, off, len, for_write, ext, max, ret_n);
}

static int layer_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	return tsr_layer_read(ctx, buf, len, off);
}

static const struct tsr_blk_ops volume_ops = {
	.read = vol_read,
	.write = vol_write,
	.discard = vol_discard,
	.write_zeroes = vol_write_zeroes,
	.flush = vol_flush,
	.map = vol_map,
};

static const struct tsr_blk_ops volume_ro_ops = {
	.read = vol_read,
	.flush = vol_flush,
	.map = vol_map,
};

/* No map: every data chunk of a layer is a compressed, verified object. */

static const struct tsr_blk_ops layer_ops = {
	.read = layer_read,
};

/* ---- logging -------------------------------------------------------------- */

static void default_log(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "tessera: vhost: %s\n", line);
}

/* ---- socket --------------------------------------------------------------- */

static int send_all(void *arg, const void *buf, size_t len)
{
	int fd = *(int *)arg;
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- public API ----------------------------------------------------------- */

int tsr_vhost_new(struct tsr_store *store, const struct tsr_vhost_options *opts,
		  struct tsr_vhost **ret_srv)
{
	struct tsr_store_stats st;
	struct tsr_vhost *srv;
	char hex[TSR_ID_HEX_LEN + 1];
	const char *what;
	int r;

	if (!opts || !opts->socket_path || !!opts->volume == !!opts->layer ||
	    opts->socket_mode > 0777 ||
	    opts->queues > TSR_VHOST_MAX_QUEUES ||
	    opts->store_threads > TSR_VHOST_MAX_STORE_THREADS)
		return -EINVAL;
	r = tsr_store_stat(store, &st);
	if (r < 0)
		return r;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->store = store;
	srv->listen_fd = -1;
	srv->stop_fd = -1;
	srv->fault_fd = -1;
	srv->queues = opts->queues ? opts->queues : 1;
	srv->log = opts->log ? opts->log : default_log;
	srv->log_arg = opts->log_arg;
	srv->socket_path = strdup(opts->socket_path);
	if (!srv->socket_path) {
		r = -ENOMEM;
		goto fail;
	}
	if (opts->volume) {
		r = tsr_volume_open(store, opts->volume, &srv->vol);
		if (r < 0)
			goto fail;
		srv->blk.ctx = srv->vol;
		srv->blk.size = tsr_volume_size(srv->vol);
		srv->blk.read_only = opts->read_only;
		srv->blk.ops = opts->read_only ? &volume_ro_ops : &volume_ops;
		what = opts->volume;
	} else {
		r = tsr_layer_open(store, opts->layer, &srv->layer);
		if (r < 0)
			goto fail;
		srv->blk.ctx = srv->layer;
		srv->blk.size = tsr_layer_size(srv->layer);
		srv->blk.read_only = true;
		srv->blk.ops = &layer_ops;
		tsr_layer_id_to_hex(opts->layer, hex);
		what = hex;
	}
	srv->blk.blk_size = srv->blk.size % 4096 == 0 ? 4096 : 512;
	srv->blk.discard_align = st.chunk_size;
	/* The serial the guest sees (/sys/block/vdX/serial). */
	memcpy(srv->blk.id, what, strnlen(what, sizeof(srv->blk.id)));
	srv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	srv->fault_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->stop_fd < 0 || srv->fault_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = tsr_guest_fault_init();
	if (r < 0)
		goto fail;
	{
		struct tsr_unix_listen_options lo = {
			.mode = opts->socket_mode ? opts->socket_mode :
				opts->socket_has_gid ? 0660 : 0600,
			.has_gid = opts->socket_has_gid,
			.gid = opts->socket_gid,
			.backlog = 4,
		};

		r = tsr_unix_listen(srv->socket_path, &lo, &srv->listen_fd);
		if (r < 0)
			goto fail;
	}
	srv->peers.has_gid = opts->socket_has_gid;
	srv->peers.gid = opts->socket_gid;
	tsr_vu_dev_init(&srv->dev, &srv->blk, srv->queues);
	srv->dev.log = srv->log;
	srv->dev.log_arg = srv->log_arg;
	srv->dev.counters = &srv->counters;
	srv->dev.fault_fd = srv->fault_fd;
	srv->dev.store_threads = opts->store_threads < 0 ? 0u :
				 opts->store_threads == 0 ?
				 TSR_VHOST_STORE_THREADS_DEFAULT :
				 (unsigned)opts->store_threads;
	*ret_srv = srv;
	return 0;
fail:
	if (srv->vol)
		tsr_volume_close(srv->vol);
	if (srv->layer)
		tsr_layer_close(srv->layer);
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	if (srv->fault_fd >= 0)
		close(srv->fault_fd);
	free(srv->socket_path);
	free(srv);
	return r;
}

void tsr_vhost_stop(struct tsr_vhost *srv)
{
	/* write(2) on an eventfd: async-signal-safe. */
	uint64_t one = 1;
	ssize_t n = write(srv->stop_fd, &one, sizeof(one));

	(void)n;
}

static int flush_backing(struct tsr_vhost *srv)
{
	return srv->vol ? tsr_volume_flush(srv->vol) : 0;
}

/* Serves one connection until it closes or stop is requested.  Returns 1
 * when stop was requested. */
static int serve(struct tsr_vhost *srv, int conn)
{
	struct tsr_vu_msg *msg = malloc(sizeof(*msg));
	struct timeval tv = { .tv_sec = RECV_TIMEOUT_S };
	struct pollfd pfd[3] = {
		{ .fd = conn, .events = POLLIN },
		{ .fd = srv->stop_fd, .events = POLLIN },
		{ .fd = srv->fault_fd, .events = POLLIN },
	};
	int stop = 0, r;
	uint64_t v;

	if (!msg) {
		srv->log(srv->log_arg, "out of memory: connection dropped");
		return 0;
	}
	(void)setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	srv->dev.send = send_all;
	srv->dev.send_arg = &conn;
	for (;;) {
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents) {
			stop = 1;
			break;
		}
		if (pfd[2].revents) {
			/* Nothing more is answered on this connection: the
			 * front-end gets EOF and may connect again. */
			__atomic_fetch_add(&srv->memory_faults, 1,
					   __ATOMIC_RELAXED);
			tsr_vu_log(&srv->dev, "guest memory went away under "
				   "its mapping (the front-end shrank its "
				   "memory file): device reset, connection "
				   "closed");
			break;
		}
		r = tsr_vu_msg_recv(conn, msg);
		if (r == -ECONNRESET)
			break;
		if (r < 0) {
			tsr_vu_log(&srv->dev, "connection dropped: %s",
				   strerror(-r));
			break;
		}
		if (tsr_vu_dev_handle(&srv->dev, msg) < 0)
			break;
	}
	tsr_vu_dev_reset(&srv->dev);
	/* Every thread that touched guest memory was joined: a fault
	 * signalled now belonged to this connection. */
	while (read(srv->fault_fd, &v, sizeof(v)) > 0)
		;
	free(msg);
	r = flush_backing(srv);
	if (r < 0)
		tsr_vu_log(&srv->dev, "flush after disconnect: %s",
			   tsr_strerror(r));
	tsr_vu_log(&srv->dev, "front-end disconnected");
	return stop;
}

/* SO_PEERCRED against the socket's policy; a refusal is logged and
 * counted. */
static bool peer_allowed(struct tsr_vhost *srv, int conn)
{
	uid_t uid = (uid_t)-1;
	int r = tsr_unix_peer_check(conn, &srv->peers, &uid);
	char why[128];

	if (r == 0)
		return true;
	__atomic_fetch_add(&srv->refused, 1, __ATOMIC_RELAXED);
	tsr_vu_log(&srv->dev, "refused a front-end: %s",
		   tsr_unix_refusal(r, uid, &srv->peers, why, sizeof(why)));
	return false;
}

int tsr_vhost_run(struct tsr_vhost *srv)
{
	struct pollfd pfd[2] = {
		{ .fd = srv->listen_fd, .events = POLLIN },
		{ .fd = srv->stop_fd, .events = POLLIN },
	};
	int r = 0;

	for (;;) {
		int conn;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (pfd[1].revents)
			break;
		conn = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EAGAIN)
				continue;
			r = -errno;
			break;
		}
		if (!peer_allowed(srv, conn)) {
			close(conn);
			continue;
		}
		__atomic_fetch_add(&srv->connections, 1, __ATOMIC_RELAXED);
		tsr_vu_log(&srv->dev, "front-end connected");
		r = serve(srv, conn);
		close(conn);
		if (r)
			break;
	}
	if (r > 0)
		r = 0;
	{
		int f = flush_backing(srv);

		if (r == 0)
			r = f;
	}
	return r;
}

void tsr_vhost_get_stats(struct tsr_vhost *srv, struct tsr_vhost_stats *ret)
{
	ret->connections = __atomic_load_n(&srv->connections, __ATOMIC_RELAXED);
	ret->requests = __atomic_load_n(&srv->counters.requests,
					__ATOMIC_RELAXED);
	ret->errors = __atomic_load_n(&srv->counters.errors, __ATOMIC_RELAXED);
	ret->broken_rings = __atomic_load_n(&srv->counters.broken_rings,
					    __ATOMIC_RELAXED);
	ret->refused = __atomic_load_n(&srv->refused, __ATOMIC_RELAXED);
	ret->memory_faults = __atomic_load_n(&srv->memory_faults,
					     __ATOMIC_RELAXED);
}

void tsr_vhost_free(struct tsr_vhost *srv)
{
	if (!srv)
		return;
	tsr_vu_dev_reset(&srv->dev);
	tsr_vu_dev_free(&srv->dev);
	if (srv->listen_fd >= 0) {
		close(srv->listen_fd);
		unlink(srv->socket_path);
	}
	if (srv->vol)
		tsr_volume_close(srv->vol);
	if (srv->layer)
		tsr_layer_close(srv->layer);
	close(srv->stop_fd);
	close(srv->fault_fd);
	free(srv->socket_path);
	free(srv);
}
