/* SPDX-License-Identifier: MIT */
/*
 * The control server of a daemon: STORE/control.sock, a thread accepting
 * one connection at a time, and the run callback that executes each
 * request (the module does not know what a command is).
 */
#include "daemon_internal.h"

#include <tessera/unix_socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static void serve_one(struct tsr_control_server *srv, int conn)
{
	struct tsr_control_request req;

	/* Only the daemon's own user and root may run commands (the socket
	 * file is 0600 as well).  Closing the connection is the only answer
	 * to anyone else and to a malformed request. */
	if (tsr_unix_peer_check(conn, NULL, NULL) < 0 ||
	    tsr_control_receive(conn, &req) < 0)
		return;
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

/* Listens on dir_fd's control.sock: 0600 from the start (unixsock binds
 * it in a private directory and renames it into place). */
static int listen_in(struct tsr_control_server *srv)
{
	char path[64];

	/* Through /proc/self/fd: a store path may exceed sun_path. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d/" TSR_CONTROL_SOCKET, srv->dir_fd);
	/* The caller owns the store (its lock): a socket file there is a dead
	 * owner's, or was planted; either way it is not to be listened to. */
	unlinkat(srv->dir_fd, TSR_CONTROL_SOCKET, 0);
	return tsr_unix_listen(path, &(struct tsr_unix_listen_options){ .mode = 0600 },
			       &srv->listen_fd);
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
