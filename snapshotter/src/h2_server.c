/* SPDX-License-Identifier: MIT */
/*
 * The transport: a unix socket, HTTP/2 with prior knowledge (h2c) through
 * nghttp2, and the gRPC shape of requests and responses on it.
 *
 * Threads: one accepts; one per connection runs its nghttp2 session (all
 * session calls happen there); each request runs on a short-lived thread
 * of its own (so that a long Commit does not hold up a Stat on the same
 * connection), which hands its finished reply back to the connection
 * thread through the connection's done list and eventfd.
 *
 * What a peer can make us hold is bounded: MAX_STREAMS concurrent streams
 * (SETTINGS), MAX_RUNNING requests running per connection, headers per
 * stream (count and bytes), a request body of TSR_SNAPSHOTTER_MSG_MAX plus
 * its prefix; beyond a bound the stream gets an error status or a
 * RST_STREAM.  Frames nghttp2 finds malformed end the connection with a
 * GOAWAY; other connections are not affected.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
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

#define MAX_STREAMS 128           /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define MAX_RUNNING 32            /* requests running per connection */
#define MAX_HEADERS 64            /* header fields per stream */
#define MAX_HEADER_BYTES (16u << 10)
#define BODY_MAX ((size_t)TSR_SNAPSHOTTER_MSG_MAX + GRPC_PREFIX_LEN)
#define WINDOW (1 << 20)          /* stream and connection receive window */
#define MAX_CONNECTIONS_DEFAULT 64

struct tsr_snapshotter;

struct h2_stream {
	struct h2_conn *conn;
	int32_t id;
	struct h2_stream *prev, *next;  /* conn->streams; connection thread only */
	struct h2_stream *done_next;    /* conn->done; protected by conn->lock */
	char path[160];
	bool have_path, post, grpc_type;
	unsigned headers;
	size_t header_bytes;
	uint8_t *body;
	size_t len, cap;
	bool responded;  /* a response was submitted: the rest is ignored */
	bool running;    /* a request thread has it */
	bool closed;     /* the stream closed while running: freed when done */
	int method;
	struct grpc_reply reply;
	size_t sent;     /* of reply.body */
};

struct h2_conn {
	int fd;                     /* -1: the fuzz target (output discarded) */
	struct snaps *snaps;
	bool threaded;
	nghttp2_session *session;
	struct h2_stream *streams;  /* connection thread only */
	int efd;                    /* request threads -> connection thread */
	pthread_mutex_t lock;       /* protects done, running */
	pthread_cond_t idle;        /* signalled when running drops */
	struct h2_stream *done;
	unsigned running;
	/* The server's, when it runs this connection. */
	struct tsr_snapshotter *srv;
	struct h2_conn *srv_prev, *srv_next;  /* protected by srv->lock */
};

struct tsr_snapshotter {
	struct snaps snaps;
	char *socket_path;
	int listen_fd;
	int stop_fd;       /* eventfd: readable once stopping */
	struct tsr_unix_policy peers;  /* who may connect (SO_PEERCRED) */
	unsigned max_conns;
	pthread_t acceptor;
	pthread_mutex_t lock;  /* protects conns, n_conns */
	pthread_cond_t gone;   /* signalled when n_conns drops */
	struct h2_conn *conns;
	unsigned n_conns;
};

/* ---- streams ------------------------------------------------------------ */

static void stream_free(struct h2_stream *s)
{
	free(s->body);
	grpc_reply_free(&s->reply);
	free(s);
}

static void stream_unlink(struct h2_stream *s)
{
	struct h2_conn *c = s->conn;

	if (s->prev)
		s->prev->next = s->next;
	else if (c->streams == s)
		c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), \
		   NGHTTP2_NV_FLAG_NONE }

static ssize_t body_read(nghttp2_session *session, int32_t id, uint8_t *buf,
			 size_t length, uint32_t *flags, nghttp2_data_source *source,
			 void *user)
{
	struct h2_stream *s = source->ptr;
	size_t n = s->reply.len - s->sent;
	nghttp2_nv trailer[] = { NV("grpc-status", "0") };

	(void)user;
	if (n > length)
		n = length;
	if (n)
		memcpy(buf, s->reply.body + s->sent, n);
	s->sent += n;
	if (s->sent == s->reply.len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(session, id, trailer, 1) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

/* Submits s->reply: headers, the framed messages and the trailers, or a
 * trailers-only response for an error. */
static void stream_respond(struct h2_stream *s)
{
	nghttp2_session *session = s->conn->session;
	char code[16], msg[GRPC_MSG_TEXT_MAX * 3 + 1];
	nghttp2_data_provider body = { .source.ptr = s, .read_callback = body_read };
	int r;

	s->responded = true;
	if (s->reply.code == GRPC_OK) {
		nghttp2_nv nva[] = { NV(":status", "200"),
				     NV("content-type", "application/grpc") };
		r = nghttp2_submit_response(session, s->id, nva, 2, &body);
	} else {
		snprintf(code, sizeof(code), "%d", s->reply.code);
		grpc_percent_encode(s->reply.msg, msg, sizeof(msg));
		nghttp2_nv nva[] = { NV(":status", "200"),
				     NV("content-type", "application/grpc"),
				     NV("grpc-status", code), NV("grpc-message", msg) };
		r = nghttp2_submit_response(session, s->id, nva, msg[0] ? 4 : 3, NULL);
	}
	if (r != 0)
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id,
					  NGHTTP2_INTERNAL_ERROR);
}

/* A plain HTTP error, for what is not gRPC at all. */
static void stream_respond_http(struct h2_stream *s, const char *status)
{
	nghttp2_nv nva[] = { NV(":status", status) };

	s->responded = true;
	if (nghttp2_submit_response(s->conn->session, s->id, nva, 1, NULL) != 0)
		nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id,
					  NGHTTP2_INTERNAL_ERROR);
}

static void stream_error(struct h2_stream *s, int code, const char *text)
{
	grpc_reply_error(&s->reply, code, "%s", text);
	stream_respond(s);
}

static void *request_main(void *arg)
{
	struct h2_stream *s = arg;
	struct h2_conn *c = s->conn;
	uint64_t one = 1;

	snap_service_call(c->snaps, s->method, s->body, s->len, &s->reply);
	pthread_mutex_lock(&c->lock);
	s->done_next = c->done;
	c->done = s;
	pthread_cond_broadcast(&c->idle);  /* h2_conn_free may wait for it */
	pthread_mutex_unlock(&c->lock);
	if (write(c->efd, &one, sizeof(one)) < 0) {
		/* the counter is full: a wake-up is pending anyway */
	}
	return NULL;
}

/* The whole request is in: check it and run it. */
static void stream_request(struct h2_stream *s)
{
	struct h2_conn *c = s->conn;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (!s->post) {
		stream_respond_http(s, "405");
		return;
	}
	if (!s->grpc_type) {
		stream_respond_http(s, "415");
		return;
	}
	s->method = s->have_path ? snap_method_find(s->path) : -1;
	if (s->method < 0) {
		stream_error(s, GRPC_UNIMPLEMENTED, "unknown method");
		return;
	}
	if (!c->threaded) {
		snap_service_call(c->snaps, s->method, s->body, s->len, &s->reply);
		stream_respond(s);
		return;
	}
	pthread_mutex_lock(&c->lock);
	if (c->running >= MAX_RUNNING) {
		pthread_mutex_unlock(&c->lock);
		stream_error(s, GRPC_RESOURCE_EXHAUSTED,
				    "too many requests running on this connection");
		return;
	}
	c->running++;
	pthread_mutex_unlock(&c->lock);
	s->running = true;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, request_main, s);
	pthread_attr_destroy(&attr);
	if (r) {
		s->running = false;
		pthread_mutex_lock(&c->lock);
		c->running--;
		pthread_mutex_unlock(&c->lock);
		stream_error(s, GRPC_RESOURCE_EXHAUSTED, "no thread for the request");
	}
}

/* Takes the finished requests back from their threads and answers them. */
static void conn_drain_done(struct h2_conn *c)
{
	struct h2_stream *s, *next;
	uint64_t v;

	if (c->efd >= 0 && read(c->efd, &v, sizeof(v)) < 0) {
		/* nothing pending */
	}
	pthread_mutex_lock(&c->lock);
	s = c->done;
	c->done = NULL;
	pthread_mutex_unlock(&c->lock);
	for (; s; s = next) {
		next = s->done_next;
		s->running = false;
		pthread_mutex_lock(&c->lock);
		c->running--;
		pthread_cond_broadcast(&c->idle);
		pthread_mutex_unlock(&c->lock);
		if (s->closed)
			stream_free(s);  /* the peer went away meanwhile */
		else
			stream_respond(s);
	}
}

/* ---- nghttp2 callbacks --------------------------------------------------- */

static ssize_t on_send(nghttp2_session *session, const uint8_t *data, size_t len,
		       int flags, void *user)
{
	struct h2_conn *c = user;
	ssize_t n;

	(void)session;
	(void)flags;
	if (c->fd < 0)
		return (ssize_t)len;
	n = send(c->fd, data, len, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
			       ? NGHTTP2_ERR_WOULDBLOCK
			       : NGHTTP2_ERR_CALLBACK_FAILURE;
	return n;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
			    void *user)
{
	struct h2_conn *c = user;
	struct h2_stream *s;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s->conn = c;
	s->id = frame->hd.stream_id;
	s->method = -1;
	grpc_reply_init(&s->reply);
	if (nghttp2_session_set_stream_user_data(session, s->id, s) != 0) {
		stream_free(s);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	s->next = c->streams;
	if (c->streams)
		c->streams->prev = s;
	c->streams = s;
	return 0;
}

static bool has_prefix(const uint8_t *v, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(v, prefix, n) == 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame,
		     const uint8_t *name, size_t namelen, const uint8_t *value,
		     size_t valuelen, uint8_t flags, void *user)
{
	struct h2_stream *s = nghttp2_session_get_stream_user_data(session,
								   frame->hd.stream_id);

	(void)flags;
	(void)user;
	if (!s)
		return 0;
	s->headers++;
	s->header_bytes += namelen + valuelen;
	if (s->headers > MAX_HEADERS || s->header_bytes > MAX_HEADER_BYTES)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  /* RST_STREAM */
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;  /* trailers of the request: not used */
	if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
		if (valuelen < sizeof(s->path) && !memchr(value, 0, valuelen)) {
			memcpy(s->path, value, valuelen);
			s->path[valuelen] = 0;
			s->have_path = true;
		}
	} else if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
		s->post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
	} else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
		s->grpc_type = has_prefix(value, valuelen, "application/grpc") &&
			       (valuelen == 16 || value[16] == '+' || value[16] == ';');
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id,
			 const uint8_t *data, size_t len, void *user)
{
	struct h2_stream *s = nghttp2_session_get_stream_user_data(session, id);
	uint8_t *p;

	(void)flags;
	(void)user;
	if (!s || s->responded || s->running)
		return 0;
	if (len > BODY_MAX - s->len) {
		free(s->body);
		s->body = NULL;
		s->len = s->cap = 0;
		stream_error(s, GRPC_RESOURCE_EXHAUSTED, "request larger than 16 MiB");
		return 0;
	}
	if (len > s->cap - s->len) {
		size_t cap = s->cap ? s->cap : 1024;

		while (cap - s->len < len)
			cap = cap > BODY_MAX / 2 ? BODY_MAX : cap * 2;
		p = realloc(s->body, cap);
		if (!p) {
			stream_error(s, GRPC_RESOURCE_EXHAUSTED, "out of memory");
			return 0;
		}
		s->body = p;
		s->cap = cap;
	}
	memcpy(s->body + s->len, data, len);
	s->len += len;
	return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
			 void *user)
{
	struct h2_stream *s;

	(void)user;
	if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (s && !s->responded && !s->running)
		stream_request(s);
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error,
			   void *user)
{
	struct h2_stream *s = nghttp2_session_get_stream_user_data(session, id);

	(void)error;
	(void)user;
	if (!s)
		return 0;
	nghttp2_session_set_stream_user_data(session, id, NULL);
	stream_unlink(s);
	if (s->running)
		s->closed = true;  /* its thread still has it */
	else
		stream_free(s);
	return 0;
}

/* ---- connections ---------------------------------------------------------------- */

int h2_conn_new(int fd, struct snaps *snaps, bool threaded, struct h2_conn **ret)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES },
	};
	struct h2_conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->snaps = snaps;
	c->threaded = threaded;
	c->efd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	if (threaded) {
		c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->efd < 0) {
			r = -errno;
			goto fail;
		}
	}
	if (nghttp2_session_callbacks_new(&cb) != 0) {
		r = -ENOMEM;
		goto fail;
	}
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cb);
		r = -ENOMEM;
		goto fail;
	}
	/* Streams a peer reset or never finished still count against it. */
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	r = nghttp2_session_server_new2(&c->session, cb, c, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	if (r != 0) {
		r = -ENOMEM;
		goto fail;
	}
	nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 3);
	nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 4 * WINDOW);
	*ret = c;
	return 0;
fail:
	if (c->efd >= 0)
		close(c->efd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	free(c);
	return r;
}

int h2_conn_feed(struct h2_conn *c, const uint8_t *data, size_t len)
{
	ssize_t n = nghttp2_session_mem_recv(c->session, data, len);

	if (n < 0)
		return -EPROTO;
	if (nghttp2_session_send(c->session) != 0)
		return -EPIPE;
	return 0;
}

void h2_conn_free(struct h2_conn *c)
{
	struct h2_stream *s, *next;

	/* Requests still running use the streams: wait for them. */
	pthread_mutex_lock(&c->lock);
	while (c->running) {
		pthread_mutex_unlock(&c->lock);
		conn_drain_done(c);  /* answers go nowhere: the session ends */
		pthread_mutex_lock(&c->lock);
		if (c->running && !c->done)
			pthread_cond_wait(&c->idle, &c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	for (s = c->streams; s; s = next) {
		next = s->next;
		nghttp2_session_set_stream_user_data(c->session, s->id, NULL);
		stream_free(s);
	}
	nghttp2_session_del(c->session);
	if (c->fd >= 0)
		close(c->fd);
	if (c->efd >= 0)
		close(c->efd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	free(c);
}

/* ---- the server ------------------------------------------------------------------ */

static void *conn_main(void *arg)
{
	struct h2_conn *c = arg;
	struct tsr_snapshotter *srv = c->srv;
	uint8_t buf[16384];
	struct pollfd pfd[3];
	bool eof = false;
	ssize_t n;

	while (!eof && (nghttp2_session_want_read(c->session) ||
			nghttp2_session_want_write(c->session))) {
		if (nghttp2_session_send(c->session) != 0)
			break;
		pfd[0] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
		if (nghttp2_session_want_write(c->session))
			pfd[0].events |= POLLOUT;
		pfd[1] = (struct pollfd){ .fd = c->efd, .events = POLLIN };
		pfd[2] = (struct pollfd){ .fd = srv->stop_fd, .events = POLLIN };
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[2].revents)
			break;
		if (pfd[1].revents)
			conn_drain_done(c);
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			for (;;) {
				n = recv(c->fd, buf, sizeof(buf), 0);
				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
					break;
				if (n <= 0) {
					eof = true;
					break;
				}
				if (nghttp2_session_mem_recv(c->session, buf, (size_t)n) < 0) {
					eof = true;  /* fatal (nghttp2 sent GOAWAY if it could) */
					nghttp2_session_send(c->session);
					break;
				}
			}
		}
	}
	pthread_mutex_lock(&srv->lock);
	if (c->srv_prev)
		c->srv_prev->srv_next = c->srv_next;
	else
		srv->conns = c->srv_next;
	if (c->srv_next)
		c->srv_next->srv_prev = c->srv_prev;
	pthread_mutex_unlock(&srv->lock);
	h2_conn_free(c);
	pthread_mutex_lock(&srv->lock);
	srv->n_conns--;
	pthread_cond_broadcast(&srv->gone);
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

static void accept_one(struct tsr_snapshotter *srv)
{
	pthread_attr_t attr;
	struct h2_conn *c;
	pthread_t t;
	uid_t uid = (uid_t)-1;
	char why[128];
	int r, fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	r = tsr_unix_peer_check(fd, &srv->peers, &uid);
	if (r < 0) {
		snaps_log(&srv->snaps, "refusing a client: %s",
			  tsr_unix_refusal(r, uid, &srv->peers, why, sizeof(why)));
		close(fd);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	if (srv->n_conns >= srv->max_conns) {
		pthread_mutex_unlock(&srv->lock);
		snaps_log(&srv->snaps, "refusing a connection: %u open already",
			  srv->n_conns);
		close(fd);
		return;
	}
	pthread_mutex_unlock(&srv->lock);
	if (h2_conn_new(fd, &srv->snaps, true, &c) < 0) {
		close(fd);
		return;
	}
	c->srv = srv;
	pthread_mutex_lock(&srv->lock);
	c->srv_next = srv->conns;
	if (srv->conns)
		srv->conns->srv_prev = c;
	srv->conns = c;
	srv->n_conns++;
	pthread_mutex_unlock(&srv->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, conn_main, c) != 0) {
		pthread_mutex_lock(&srv->lock);
		srv->conns = c->srv_next;
		if (c->srv_next)
			c->srv_next->srv_prev = NULL;
		srv->n_conns--;
		pthread_mutex_unlock(&srv->lock);
		h2_conn_free(c);
	}
	pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg)
{
	struct tsr_snapshotter *srv = arg;
	struct pollfd pfd[2] = {
		{ .fd = srv->listen_fd, .events = POLLIN },
		{ .fd = srv->stop_fd, .events = POLLIN },
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents)
			accept_one(srv);
	}
	return NULL;
}

int tsr_snapshotter_start(struct tsr_store *store,
			  const struct tsr_snapshotter_options *opts,
			  struct tsr_snapshotter **ret_snap)
{
	struct tsr_snapshotter *srv;
	int r;

	if (!opts->socket_path || !opts->fuse_mount)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->listen_fd = srv->stop_fd = -1;
	srv->max_conns = opts->max_connections ? opts->max_connections
					       : MAX_CONNECTIONS_DEFAULT;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->gone, NULL);
	r = snaps_init(&srv->snaps, store, opts);
	if (r < 0) {
		free(srv);
		return r;
	}
	srv->socket_path = strdup(opts->socket_path);
	if (!srv->socket_path) {
		r = -ENOMEM;
		goto fail;
	}
	r = snaps_recover(&srv->snaps);
	if (r < 0)
		goto fail;
	r = orphans_start(&srv->snaps);
	if (r < 0)
		goto fail;
	srv->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (srv->stop_fd < 0) {
		r = -errno;
		goto fail;
	}
	{
		struct tsr_unix_listen_options lo = {
			.mode = opts->socket_has_gid ? 0660 : 0600,
			.has_gid = opts->socket_has_gid,
			.gid = opts->socket_gid,
			.backlog = 64,
			.sock_flags = SOCK_NONBLOCK,
		};

		r = tsr_unix_listen(srv->socket_path, &lo, &srv->listen_fd);
		if (r < 0)
			goto fail;
	}
	srv->peers.has_gid = opts->socket_has_gid;
	srv->peers.gid = opts->socket_gid;
	r = -pthread_create(&srv->acceptor, NULL, accept_main, srv);
	if (r < 0) {
		unlink(srv->socket_path);
		goto fail;
	}
	*ret_snap = srv;
	return 0;
fail:
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	snaps_fini(&srv->snaps);
	free(srv->socket_path);
	free(srv);
	return r;
}

void tsr_snapshotter_stop(struct tsr_snapshotter *srv)
{
	uint64_t one = 1;

	if (!srv)
		return;
	/* Readable from now on: the acceptor and every connection end. */
	if (write(srv->stop_fd, &one, sizeof(one)) < 0) {
		/* cannot fail for an eventfd below its maximum */
	}
	pthread_join(srv->acceptor, NULL);
	close(srv->listen_fd);
	unlink(srv->socket_path);
	pthread_mutex_lock(&srv->lock);
	while (srv->n_conns)
		pthread_cond_wait(&srv->gone, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	close(srv->stop_fd);
	snaps_fini(&srv->snaps);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->gone);
	free(srv->socket_path);
	free(srv);
}
