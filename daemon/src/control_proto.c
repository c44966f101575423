/* SPDX-License-Identifier: MIT */
/*
 * The control protocol (<tessera/daemon.h> has the framing), both sides:
 * the client's connect and call, the server's receive and reply, and the
 * request parser they share the format with.  Requests come from local
 * processes of the same user only (the server checks SO_PEERCRED) and are
 * still parsed as untrusted: bounded counts and lengths, through a cursor
 * that checks what is left before it reads.
 */
#include "daemon_internal.h"

#include <tessera/store.h>
#include <tessera/unix_socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_MAGIC "TSRC"
#define CONTROL_VERSION 1u
#define CONTROL_HEAD 12  /* magic, version, argc */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Reads exactly len bytes: 0, -ECONNRESET at end of stream, or -errno. */
static int read_exact(int fd, void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = read(fd, (uint8_t *)buf + off, len - off);

		if (n > 0)
			off += (size_t)n;
		else if (n == 0)
			return -ECONNRESET;
		else if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* ---- the request ---------------------------------------------------------------- */

int tsr_control_parse_request(const void *buf, size_t len, const int *fds,
			      size_t nfds, struct tsr_control_request *ret_req,
			      size_t *ret_need)
{
	const uint8_t *p = buf;
	size_t off = CONTROL_HEAD, strings = 0;
	uint32_t argc, n;
	char **argv, *s;

	if (nfds != TSR_CONTROL_NFDS)
		return -EPROTO;
	if (len < CONTROL_HEAD) {
		*ret_need = CONTROL_HEAD;
		return -EAGAIN;
	}
	argc = get32(p + 8);
	if (memcmp(p, CONTROL_MAGIC, 4) || get32(p + 4) != CONTROL_VERSION ||
	    argc == 0 || argc > TSR_CONTROL_MAX_ARGS)
		return -EPROTO;
	/* Invariant: off <= len.  Each argument: its length, then its bytes. */
	for (uint32_t i = 0; i < argc; i++) {
		if (len - off < 4) {
			*ret_need = off + 4;
			return -EAGAIN;
		}
		n = get32(p + off);
		if (n > TSR_CONTROL_MAX_ARG)
			return -EPROTO;
		if (len - off - 4 < n) {
			*ret_need = off + 4 + n;
			return -EAGAIN;
		}
		if (memchr(p + off + 4, '\0', n))
			return -EPROTO;
		off += 4 + n;
		strings += n + 1;
	}
	if (off != len)
		return -EPROTO;  /* a client sends nothing after its request */

	argv = malloc((argc + 1) * sizeof(*argv) + strings);
	if (!argv)
		return -ENOMEM;
	s = (char *)(argv + argc + 1);
	off = CONTROL_HEAD;
	for (uint32_t i = 0; i < argc; i++) {
		n = get32(p + off);
		memcpy(s, p + off + 4, n);
		s[n] = '\0';
		argv[i] = s;
		s += n + 1;
		off += 4 + n;
	}
	argv[argc] = NULL;
	ret_req->argc = (int)argc;
	ret_req->argv = argv;
	memcpy(ret_req->fds, fds, sizeof(ret_req->fds));
	return 0;
}

/* Encodes argv[0..argc) as a request: 0 and a malloc'd buffer, -E2BIG
 * beyond the protocol's bounds, -EINVAL without arguments, -ENOMEM. */
static int encode_request(int argc, char *const *argv, uint8_t **ret_buf,
			  size_t *ret_len)
{
	size_t len = CONTROL_HEAD, off = CONTROL_HEAD, n;
	uint8_t *buf;

	if (argc < 1)
		return -EINVAL;
	if (argc > TSR_CONTROL_MAX_ARGS)
		return -E2BIG;
	for (int i = 0; i < argc; i++) {
		n = strlen(argv[i]);
		if (n > TSR_CONTROL_MAX_ARG)
			return -E2BIG;
		len += 4 + n;
	}
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, CONTROL_MAGIC, 4);
	put32(buf + 4, CONTROL_VERSION);
	put32(buf + 8, (uint32_t)argc);
	for (int i = 0; i < argc; i++) {
		n = strlen(argv[i]);
		put32(buf + off, (uint32_t)n);
		memcpy(buf + off + 4, argv[i], n);
		off += 4 + n;
	}
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

void tsr_control_request_close(struct tsr_control_request *req)
{
	for (int i = 0; i < TSR_CONTROL_NFDS; i++)
		if (req->fds[i] >= 0)
			close(req->fds[i]);
	free(req->argv);
	req->argv = NULL;
}

/* ---- client ------------------------------------------------------------------------ */

int tsr_control_connect(const char *store_dir, int *ret_sock)
{
	char path[64];
	struct stat st;
	int dir_fd, r;

	/* Connected through /proc/self/fd so that a store path longer than
	 * sun_path works, and so that the directory checked is the one
	 * connected in; dir_fd stays open while the path is used. */
	dir_fd = open(store_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return -errno;
	/* Whoever owns the directory decides what listens in it; and a
	 * directory that is no store has no daemon to talk to. */
	if (fstat(dir_fd, &st) < 0)
		r = -errno;
	else if (st.st_uid != 0 && st.st_uid != geteuid())
		r = -EPERM;
	else if (fstatat(dir_fd, TSR_STORE_MARKER_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		 !S_ISREG(st.st_mode))
		r = -ENOENT;
	else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d/" TSR_CONTROL_SOCKET, dir_fd);
		r = tsr_unix_connect_verified(path, 0, ret_sock);
	}
	close(dir_fd);
	return r;
}

/* Sends buf with fds attached to its first byte. */
static int send_request(int sock, const uint8_t *buf, size_t len,
			const int fds[TSR_CONTROL_NFDS])
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(TSR_CONTROL_NFDS * sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(TSR_CONTROL_NFDS * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, TSR_CONTROL_NFDS * sizeof(int));
	for (size_t off = 0; off < len; off += (size_t)n) {
		iov.iov_base = (void *)(buf + off);
		iov.iov_len = len - off;
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n < 0)
			return -errno;
		/* The descriptors went with the first byte; the rest of a
		 * long request follows as plain stream data. */
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
	}
	return 0;
}

int tsr_control_call(int sock, int argc, char *const *argv,
		     const int fds[TSR_CONTROL_NFDS], int *ret_status)
{
	uint8_t *buf, status[4];
	size_t len;
	int r = encode_request(argc, argv, &buf, &len);

	if (r)
		return r;
	r = send_request(sock, buf, len, fds);
	free(buf);
	if (!r)
		r = read_exact(sock, status, sizeof(status));
	if (r == -ECONNRESET)
		return -EPIPE;  /* the daemon went away while running it */
	if (r)
		return r;
	*ret_status = (int)get32(status);
	return 0;
}

/* ---- server ------------------------------------------------------------------------ */

/* Receives the first bytes of a request (up to len) with its descriptors:
 * the byte count, with *ret_nfds descriptors in fds when exactly
 * TSR_CONTROL_NFDS came (any other count is closed: *ret_nfds 0), or
 * -errno. */
static ssize_t receive_first(int conn, uint8_t *buf, size_t len, int *fds,
			     size_t *ret_nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(TSR_CONTROL_NFDS * sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *cm;
	ssize_t n;

	*ret_nfds = 0;
	n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t count;
		int *p;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		p = (int *)CMSG_DATA(cm);
		if (count == TSR_CONTROL_NFDS && *ret_nfds == 0) {
			memcpy(fds, p, count * sizeof(int));
			*ret_nfds = count;
			continue;
		}
		for (size_t i = 0; i < count; i++)
			close(p[i]);
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		for (size_t i = 0; i < *ret_nfds; i++)
			close(fds[i]);
		*ret_nfds = 0;
	}
	return n;
}

int tsr_control_receive(int conn, struct tsr_control_request *ret_req)
{
	int fds[TSR_CONTROL_NFDS];
	size_t nfds, len, need;
	uint8_t *buf, *grown;
	ssize_t n;
	int r;

	buf = malloc(CONTROL_HEAD);
	if (!buf)
		return -ENOMEM;
	n = receive_first(conn, buf, CONTROL_HEAD, fds, &nfds);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	len = (size_t)n;
	/* Each round reads what the parser asks for next; the parser bounds
	 * it (TSR_CONTROL_MAX_ARGS arguments of TSR_CONTROL_MAX_ARG). */
	while ((r = tsr_control_parse_request(buf, len, fds, nfds, ret_req,
					      &need)) == -EAGAIN) {
		grown = realloc(buf, need);
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		buf = grown;
		r = read_exact(conn, buf + len, need - len);
		if (r)
			break;
		len = need;
	}
	free(buf);
	if (r)
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
	return r;
}

int tsr_control_reply(int conn, int status)
{
	uint8_t out[4];

	put32(out, (uint32_t)status);
	if (send(conn, out, sizeof(out), MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}
