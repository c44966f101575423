/* SPDX-License-Identifier: MIT */
/*
 * What the files of the daemon module share: the daemon object
 * (daemon.c) and the control protocol's receiving side (control_proto.c),
 * which the control server (control_server.c) uses.
 */
#ifndef TESSERA_DAEMON_INTERNAL_H
#define TESSERA_DAEMON_INTERNAL_H

#include <tessera/daemon.h>

struct tsr_control_server;

/* One daemon process.  Created and freed by its main thread; stop_fd is
 * written from any thread (tsr_daemon_stop). */
struct tsr_daemon {
	char *name;
	int signal_fd;       /* SIGINT, SIGTERM (blocked) */
	int stop_fd;         /* eventfd: tsr_daemon_stop() was called */
	struct tsr_control_server *control;  /* or NULL */
};

/* control_server.c: stops and frees a server (NULL: no-op). */
void tsr_control_server_free(struct tsr_control_server *srv);

/* control_proto.c: receives one request on conn (a connected stream
 * socket): 0 and *ret_req, whose descriptors the caller closes
 * (tsr_control_request_close); -EPROTO when it is malformed (the
 * descriptors that came with it are closed), or another negative errno. */
int tsr_control_receive(int conn, struct tsr_control_request *ret_req);
void tsr_control_request_close(struct tsr_control_request *req);
/* control_proto.c: sends the le32 exit status answering a request. */
int tsr_control_reply(int conn, int status);

#endif /* TESSERA_DAEMON_INTERNAL_H */
