/* SPDX-License-Identifier: MIT */
/*
 * The control server of a daemon: STORE/control.sock, a thread accepting
 * one connection at a time, and the run callback that executes each
 * request (the module does not know what a command is).
 */
#include "daemon_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct tsr_control_server {
	tsr_control_run_fn run;
	void *arg;
	int listen_fd;
	int dir_fd;        /* the store directory, where the socket file is */
	int stop_pipe[2];  /* written once by tsr_control_server_free */
	pthread_t thread;
	bool started;
};

/* Whether the peer of conn may run commands: the daemon's own user, or
 * root.  (The socket file is 0600 as well.) */
static bool peer_allowed(int conn)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
	       (cred.uid == 0 || cred.uid == geteuid());
}

static void serve_one(struct tsr_control_server *srv, int conn)
{
	struct tsr_control_request req;

	if (!peer_allowed(conn) || tsr_control_receive(conn, &req) < 0)
		return;  /* closing the connection is the only answer */
	if (tsr_control_reply(conn, srv->run(srv->arg, &req)) < 0) {
		/* The client is gone; nothing to tell it. */
	}
	tsr_control_request_close(&req);
}

static void *control_thread(void *arg)
{
	struct tsr_control_server *srv = arg;
	struct pollfd pfd[2] = {
		{ .fd = srv->listen_fd, .events = POLLIN },
		{ .fd = srv->stop_pipe[0], .events = POLLIN },
	};

	for (;;) {
		int n = poll(pfd, 2, -1), conn;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || pfd[1].revents)
			break;  /* stopped (or poll cannot work: stop too) */
		conn = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0)
			continue;
		serve_one(srv, conn);
		close(conn);
	}
	return NULL;
}

/* Binds and listens on dir_fd's control.sock (0600). */
static int listen_in(struct tsr_control_server *srv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	/* Bound through /proc/self/fd: a store path may exceed sun_path. */
	snprintf(addr.sun_path, sizeof(addr.sun_path),
		 "/proc/self/fd/%d/" TSR_CONTROL_SOCKET, srv->dir_fd);
	/* The caller owns the store: a socket file there is a dead owner's. */
	unlinkat(srv->dir_fd, TSR_CONTROL_SOCKET, 0);
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0 ||
	    bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -errno;
	if (fchmodat(srv->dir_fd, TSR_CONTROL_SOCKET, 0600, 0) < 0 ||
	    listen(srv->listen_fd, 16) < 0) {
		int r = -errno;

		unlinkat(srv->dir_fd, TSR_CONTROL_SOCKET, 0);
		return r;
	}
	return 0;
}

void tsr_control_server_free(struct tsr_control_server *srv)
{
	if (!srv)
		return;
	if (srv->started) {
		/* Waits for a command in progress to finish. */
		if (write(srv->stop_pipe[1], "x", 1) < 0) {
			/* The pipe cannot be full: one byte, written once. */
		}
		pthread_join(srv->thread, NULL);
		unlinkat(srv->dir_fd, TSR_CONTROL_SOCKET, 0);
	}
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	for (int i = 0; i < 2; i++)
		if (srv->stop_pipe[i] >= 0)
			close(srv->stop_pipe[i]);
	if (srv->dir_fd >= 0)
		close(srv->dir_fd);
	free(srv);
}

int tsr_daemon_control_start(struct tsr_daemon *d, const char *store_dir,
			     tsr_control_run_fn run, void *arg)
{
	struct tsr_control_server *srv;
	int r;

	if (d->control)
		return -EBUSY;
	srv = malloc(sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	*srv = (struct tsr_control_server){
		.run = run, .arg = arg,
		.listen_fd = -1, .dir_fd = -1, .stop_pipe = { -1, -1 },
	};
	srv->dir_fd = open(store_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (srv->dir_fd < 0 || pipe2(srv->stop_pipe, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	r = listen_in(srv);
	if (r)
		goto fail;
	r = -pthread_create(&srv->thread, NULL, control_thread, srv);
	if (r) {
		unlinkat(srv->dir_fd, TSR_CONTROL_SOCKET, 0);
		goto fail;
	}
	srv->started = true;
	d->control = srv;
	return 0;
fail:
	tsr_control_server_free(srv);
	return r;
}

void tsr_daemon_control_stop(struct tsr_daemon *d)
{
	tsr_control_server_free(d->control);
	d->control = NULL;
}
