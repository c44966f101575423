/* SPDX-License-Identifier: MIT */
/*
 * The control socket: how `tessera COMMAND` works while a daemon (`tessera
 * mount`, `tessera serve`) owns the store.  A store has one owner process
 * (its lock), so a second process cannot open it; instead the command line
 * is sent to the owner over STORE/control.sock together with the client's
 * stdin, stdout, stderr and working directory (SCM_RIGHTS), and the owner
 * runs the same command table on its open store, on a thread of its own,
 * one command at a time.  The client prints nothing itself and exits with
 * the status the owner sends back.
 *
 * Request:  "TSRC" | le32 version (1) | le32 argc | argc x (le32 len | bytes)
 *           with 4 descriptors attached: stdin, stdout, stderr, cwd.
 * Response: le32 exit status, sent when the command has finished.
 * Requests come from local processes of the same user only (SO_PEERCRED),
 * and are still parsed as untrusted: bounded counts and lengths.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_SOCKET "control.sock"
#define CONTROL_MAGIC "TSRC"
#define CONTROL_VERSION 1u
#define CONTROL_MAX_ARGS 256
#define CONTROL_MAX_ARG 4096
#define CONTROL_NFDS 4

struct cli_control {
	struct tsr_store *store;
	char *store_dir;
	int listen_fd;
	int stop_pipe[2];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pthread_t thread;
};

/* The socket's address.  Bound and connected through /proc/self/fd so that
 * a store path longer than sun_path still works; dir_fd stays open for as
 * long as the address is used. */
static int control_addr(const char *store_dir, int *ret_dir_fd, struct sockaddr_un *ret_addr)
{
	int fd = open(store_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	memset(ret_addr, 0, sizeof(*ret_addr));
	ret_addr->sun_family = AF_UNIX;
	snprintf(ret_addr->sun_path, sizeof(ret_addr->sun_path), "/proc/self/fd/%d/" CONTROL_SOCKET,
		 fd);
	*ret_dir_fd = fd;
	return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int read_exact(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- client ---------------------------------------------------------------- */

int cli_control_forward(const char *store_dir, int argc, char **argv, int *ret_status)
{
	struct sockaddr_un addr;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(CONTROL_NFDS * sizeof(int))];
	} ctl;
	struct msghdr msg = { 0 };
	struct cmsghdr *cm;
	struct iovec iov;
	uint8_t *req, status[4];
	size_t len = 12, off;
	int fds[CONTROL_NFDS], dir_fd = -1, sock, r;

	if (argc > CONTROL_MAX_ARGS)
		return 0;
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);

		if (n > CONTROL_MAX_ARG)
			return 0;
		len += 4 + n;
	}
	r = control_addr(store_dir, &dir_fd, &addr);
	if (r)
		return 0; /* no store there: the local run reports it */
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		close(dir_fd);
		return -errno;
	}
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		/* No socket, or one left by a daemon that died: run locally,
		 * where the store lock says who (if anyone) owns the store. */
		close(sock);
		close(dir_fd);
		return 0;
	}
	close(dir_fd);

	req = malloc(len);
	fds[3] = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!req || fds[3] < 0) {
		r = req ? -errno : -ENOMEM;
		goto out;
	}
	fds[0] = STDIN_FILENO;
	fds[1] = STDOUT_FILENO;
	fds[2] = STDERR_FILENO;
	memcpy(req, CONTROL_MAGIC, 4);
	put32(req + 4, CONTROL_VERSION);
	put32(req + 8, (uint32_t)argc);
	off = 12;
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);

		put32(req + off, (uint32_t)n);
		memcpy(req + off + 4, argv[i], n);
		off += 4 + n;
	}
	iov = (struct iovec){ .iov_base = req, .iov_len = len };
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	/* One sendmsg carries the descriptors with the first byte; the rest
	 * of a long request follows as plain stream data. */
	{
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);

		if (n < 0) {
			r = -errno;
			goto out;
		}
		for (off = (size_t)n; off < len;) {
			n = send(sock, req + off, len - off, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				r = -errno;
				goto out;
			}
			off += (size_t)n;
		}
	}
	r = read_exact(sock, status, sizeof(status));
	if (r == 0) {
		*ret_status = (int)get32(status);
		r = 1;
	} else if (r == -ECONNRESET) {
		r = -EPIPE; /* the daemon went away while running the command */
	}
out:
	if (fds[3] >= 0)
		close(fds[3]);
	free(req);
	close(sock);
	return r;
}

/* ---- server ---------------------------------------------------------------- */

/* Receives one request: argv (NULL-terminated, one allocation) and its
 * descriptors.  Anything malformed is refused with -EPROTO. */
static int receive_request(int conn, char ***ret_argv, int *ret_argc, int fds[CONTROL_NFDS])
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(CONTROL_NFDS * sizeof(int))];
	} ctl;
	uint8_t head[12];
	struct msghdr msg = { 0 };
	struct iovec iov = { .iov_base = head, .iov_len = sizeof(head) };
	struct cmsghdr *cm;
	uint32_t argc;
	char **argv;
	ssize_t n;
	int r, got = 0;

	for (int i = 0; i < CONTROL_NFDS; i++)
		fds[i] = -1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int) * CONTROL_NFDS)) {
			memcpy(fds, CMSG_DATA(cm), sizeof(int) * CONTROL_NFDS);
			got = 1;
		} else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			/* Wrong count: close what came, refuse the request. */
			int *p = (int *)CMSG_DATA(cm);

			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
				close(p[i]);
		}
	}
	if (!got || (msg.msg_flags & MSG_CTRUNC))
		return -EPROTO;
	if ((size_t)n < sizeof(head)) {
		r = read_exact(conn, head + n, sizeof(head) - (size_t)n);
		if (r)
			return r;
	}
	argc = get32(head + 8);
	if (memcmp(head, CONTROL_MAGIC, 4) || get32(head + 4) != CONTROL_VERSION || argc == 0 ||
	    argc > CONTROL_MAX_ARGS)
		return -EPROTO;
	argv = calloc(argc + 1, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	for (uint32_t i = 0; i < argc; i++) {
		uint8_t lenb[4];
		uint32_t len;

		r = read_exact(conn, lenb, sizeof(lenb));
		len = get32(lenb);
		if (!r && len > CONTROL_MAX_ARG)
			r = -EPROTO;
		if (!r && !(argv[i] = malloc(len + 1)))
			r = -ENOMEM;
		if (!r)
			r = read_exact(conn, argv[i], len);
		if (r) {
			for (uint32_t j = 0; j <= i; j++)
				free(argv[j]);
			free(argv);
			return r;
		}
		argv[i][len] = '\0';
		if (strlen(argv[i]) != len) {
			for (uint32_t j = 0; j <= i; j++)
				free(argv[j]);
			free(argv);
			return -EPROTO;
		}
	}
	*ret_argv = argv;
	*ret_argc = (int)argc;
	return 0;
}

static void serve_one(struct cli_control *ctl, int conn)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char **argv = NULL;
	int argc = 0, fds[CONTROL_NFDS], status = CLI_FAIL;
	uint8_t out[4];
	struct cli cli;

	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid()))
		return;
	if (receive_request(conn, &argv, &argc, fds))
		goto out;
	cli = (struct cli){
		.store_dir = ctl->store_dir,
		.store = ctl->store,
		.store_borrowed = true,
		.in_fd = fds[0],
		.out_fd = fds[1],
		.err_fd = fds[2],
		.cwd_fd = fds[3],
		.out = fdopen(dup(fds[1]), "w"),
		.err = fdopen(dup(fds[2]), "w"),
		.progress = isatty(fds[2]) == 1,
	};
	if (cli.out && cli.err) {
		status = cli_main(&cli, argc, argv);
		fflush(cli.out);
		fflush(cli.err);
	}
	if (cli.out)
		fclose(cli.out);
	if (cli.err)
		fclose(cli.err);
	put32(out, (uint32_t)status);
	if (send(conn, out, sizeof(out), MSG_NOSIGNAL) < 0) {
		/* The client is gone; nothing to tell it. */
	}
out:
	for (int i = 0; i < CONTROL_NFDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (argv) {
		for (int i = 0; i < argc; i++)
			free(argv[i]);
		free(argv);
	}
}

static void *control_thread(void *arg)
{
	struct cli_control *ctl = arg;
	struct pollfd pfd[2] = {
		{ .fd = ctl->listen_fd, .events = POLLIN },
		{ .fd = ctl->stop_pipe[0], .events = POLLIN },
	};

	for (;;) {
		int conn;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		conn = accept4(ctl->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0)
			continue;
		serve_one(ctl, conn);
		close(conn);
	}
	return NULL;
}

int cli_control_start(const char *store_dir, struct tsr_store *store,
		      struct cli_control **ret_ctl)
{
	struct cli_control *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un addr;
	int dir_fd = -1, r;

	if (!ctl)
		return -ENOMEM;
	ctl->listen_fd = -1;
	ctl->stop_pipe[0] = ctl->stop_pipe[1] = -1;
	ctl->store = store;
	ctl->store_dir = strdup(store_dir);
	r = ctl->store_dir ? control_addr(store_dir, &dir_fd, &addr) : -ENOMEM;
	if (r)
		goto fail;
	/* We hold the store lock: a socket file there is a dead owner's. */
	unlinkat(dir_fd, CONTROL_SOCKET, 0);
	ctl->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl->listen_fd < 0 || bind(ctl->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    fchmodat(dir_fd, CONTROL_SOCKET, 0600, 0) < 0 || listen(ctl->listen_fd, 16) < 0 ||
	    pipe2(ctl->stop_pipe, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&ctl->thread, NULL, control_thread, ctl);
	if (r)
		goto fail;
	close(dir_fd);
	*ret_ctl = ctl;
	return 0;
fail:
	if (dir_fd >= 0) {
		if (ctl->listen_fd >= 0)
			unlinkat(dir_fd, CONTROL_SOCKET, 0);
		close(dir_fd);
	}
	if (ctl->listen_fd >= 0)
		close(ctl->listen_fd);
	if (ctl->stop_pipe[0] >= 0) {
		close(ctl->stop_pipe[0]);
		close(ctl->stop_pipe[1]);
	}
	free(ctl->store_dir);
	free(ctl);
	return r;
}

void cli_control_stop(struct cli_control *ctl)
{
	char path[4096];

	if (!ctl)
		return;
	/* Waits for a command in progress to finish. */
	if (write(ctl->stop_pipe[1], "x", 1) < 0) {
		/* The pipe cannot be full: one byte, written once. */
	}
	pthread_join(ctl->thread, NULL);
	close(ctl->listen_fd);
	close(ctl->stop_pipe[0]);
	close(ctl->stop_pipe[1]);
	snprintf(path, sizeof(path), "%s/" CONTROL_SOCKET, ctl->store_dir);
	unlink(path);
	free(ctl->store_dir);
	free(ctl);
}
