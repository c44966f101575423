/* SPDX-License-Identifier: MIT */
/*
 * vhost-user messages: reading them from the socket with their file
 * descriptors, and checking each payload against what its request type
 * needs before anything uses it.  The front-end is a separate process and
 * may be buggy or hostile: nothing here trusts a length it sent.
 */
#include "vhost_user.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int tsr_vu_msg_header(const uint8_t *hdr, struct tsr_vu_msg *msg)
{
	memcpy(&msg->request, hdr, 4);
	memcpy(&msg->flags, hdr + 4, 4);
	memcpy(&msg->size, hdr + 8, 4);
	if ((msg->flags & VU_FLAG_VERSION_MASK) != VU_VERSION)
		return -EPROTO;
	if (msg->size > VU_MAX_PAYLOAD)
		return -EPROTO;
	return 0;
}

/* Payload size a request needs exactly, or 0 for "none", or SIZE_MAX for
 * a variable size checked separately. */
static size_t expected_size(uint32_t request)
{
	switch (request) {
	case VU_GET_FEATURES:
	case VU_GET_PROTOCOL_FEATURES:
	case VU_GET_QUEUE_NUM:
	case VU_SET_OWNER:
	case VU_RESET_OWNER:
		return 0;
	case VU_SET_FEATURES:
	case VU_SET_PROTOCOL_FEATURES:
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		return sizeof(uint64_t);
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
		return 2 * sizeof(uint32_t);
	case VU_SET_VRING_ADDR:
		return 2 * sizeof(uint32_t) + 4 * sizeof(uint64_t);
	default:
		return SIZE_MAX;
	}
}

int tsr_vu_msg_check(const struct tsr_vu_msg *msg)
{
	size_t want = expected_size(msg->request);

	if (want != SIZE_MAX) {
		/* QEMU sends an 8-byte payload with GET_FEATURES-style
		 * requests in some versions: accept a payload for requests
		 * that take none, but never a short one. */
		if (want == 0)
			return 0;
		return msg->size == want ? 0 : -EPROTO;
	}
	switch (msg->request) {
	case VU_SET_MEM_TABLE: {
		uint32_t n;

		if (msg->size < 8)
			return -EPROTO;
		n = msg->p.mem.nregions;
		if (n == 0 || n > TSR_VU_MAX_REGIONS)
			return -EPROTO;
		if (msg->size < 8 + n * sizeof(struct vu_region))
			return -EPROTO;
		return msg->nfds == n ? 0 : -EPROTO;
	}
	case VU_GET_CONFIG:
	case VU_SET_CONFIG:
		if (msg->size < 12)
			return -EPROTO;
		if (msg->p.config.size > VU_MAX_CONFIG ||
		    msg->size - 12 < msg->p.config.size)
			return -EPROTO;
		return 0;
	default:
		return 0;  /* unknown: the device answers it */
	}
}

int tsr_vu_msg_parse(const uint8_t *buf, size_t len, struct tsr_vu_msg *msg,
		     size_t *ret_used)
{
	int r;

	if (len < VU_HDR_SIZE)
		return -EAGAIN;
	r = tsr_vu_msg_header(buf, msg);
	if (r < 0)
		return r;
	if (msg->size > len - VU_HDR_SIZE)
		return -EAGAIN;
	memset(&msg->p, 0, sizeof(msg->p));
	memcpy(msg->p.raw, buf + VU_HDR_SIZE, msg->size);
	*ret_used = VU_HDR_SIZE + msg->size;
	return 0;
}

void tsr_vu_msg_close_fds(struct tsr_vu_msg *msg)
{
	for (unsigned i = 0; i < msg->nfds; i++)
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
	msg->nfds = 0;
}

int tsr_vu_msg_take_fd(struct tsr_vu_msg *msg, unsigned i)
{
	int fd;

	if (i >= msg->nfds)
		return -1;
	fd = msg->fds[i];
	msg->fds[i] = -1;
	return fd;
}

/* Reads exactly len bytes (the rest of a message: no descriptors). */
static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, MSG_CMSG_CLOEXEC);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int tsr_vu_msg_recv(int fd, struct tsr_vu_msg *msg)
{
	union {
		char buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} control;
	uint8_t hdr[VU_HDR_SIZE];
	struct iovec iov = { .iov_base = hdr, .iov_len = sizeof(hdr) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n;
	int r;

	msg->nfds = 0;
	do {
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	/* Collect every descriptor first, so that none leaks whatever
	 * happens next. */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int cfd;

			memcpy(&cfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (msg->nfds < VU_MAX_FDS)
				msg->fds[msg->nfds++] = cfd;
			else
				close(cfd);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		tsr_vu_msg_close_fds(msg);
		return -EPROTO;
	}
	if ((size_t)n < sizeof(hdr)) {
		r = read_full(fd, hdr + n, sizeof(hdr) - (size_t)n);
		if (r < 0)
			goto fail;
	}
	r = tsr_vu_msg_header(hdr, msg);
	if (r < 0)
		goto fail;
	memset(&msg->p, 0, sizeof(msg->p));
	r = read_full(fd, msg->p.raw, msg->size);
	if (r < 0)
		goto fail;
	return 0;
fail:
	tsr_vu_msg_close_fds(msg);
	return r;
}
