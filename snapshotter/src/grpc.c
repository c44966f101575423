/* SPDX-License-Identifier: MIT */
/*
 * gRPC framing over HTTP/2 bodies: each message is a 5-byte prefix (a
 * compressed flag byte, then the length, big-endian) and its bytes.  A
 * unary request body holds exactly one message.  Statuses travel in the
 * trailers (grpc-status, grpc-message), see h2_server.c.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void grpc_reply_init(struct grpc_reply *r)
{
	memset(r, 0, sizeof(*r));
}

void grpc_reply_free(struct grpc_reply *r)
{
	free(r->body);
	grpc_reply_init(r);
}

int grpc_reply_add(struct grpc_reply *r, const void *msg, size_t len)
{
	size_t need;
	uint8_t *p;

	if (len > TSR_SNAPSHOTTER_MSG_MAX)
		return -EMSGSIZE;
	need = GRPC_PREFIX_LEN + len;
	if (need > r->cap - r->len) {
		size_t cap = r->cap ? r->cap : 4096;

		while (cap - r->len < need)
			cap *= 2;
		p = realloc(r->body, cap);
		if (!p)
			return -ENOMEM;
		r->body = p;
		r->cap = cap;
	}
	p = r->body + r->len;
	p[0] = 0;  /* not compressed */
	p[1] = (uint8_t)(len >> 24);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 8);
	p[4] = (uint8_t)len;
	if (len)
		memcpy(p + GRPC_PREFIX_LEN, msg, len);
	r->len += need;
	return 0;
}

void grpc_reply_error(struct grpc_reply *r, int code, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	r->len = 0;  /* an error carries no message */
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
}

int grpc_code_from_errno(int err)
{
	switch (err) {
	case 0:
		return GRPC_OK;
	case -ENOENT:
		return GRPC_NOT_FOUND;
	case -EEXIST:
		return GRPC_ALREADY_EXISTS;
	case -EINVAL:
	case -ENAMETOOLONG:
	case -EMSGSIZE:
		return GRPC_INVALID_ARGUMENT;
	case -ENOTEMPTY:
	case -EBUSY:
		return GRPC_FAILED_PRECONDITION;
	case -ENOSPC:
	case -EXFULL:
	case -ENOMEM:
		return GRPC_RESOURCE_EXHAUSTED;
	case -ENOSYS:
	case -EOPNOTSUPP:
		return GRPC_UNIMPLEMENTED;
	case -ETIMEDOUT:
		return GRPC_DEADLINE_EXCEEDED;
	default:
		return GRPC_INTERNAL;
	}
}

int grpc_unframe(const uint8_t *body, size_t len, const uint8_t **ret_msg,
		 size_t *ret_len, struct grpc_reply *reply)
{
	uint32_t n;

	if (len < GRPC_PREFIX_LEN) {
		grpc_reply_error(reply, GRPC_INVALID_ARGUMENT,
				 "request body of %zu bytes holds no gRPC message", len);
		return reply->code;
	}
	if (body[0] > 1) {
		grpc_reply_error(reply, GRPC_INTERNAL,
				 "bad gRPC compressed flag %u", body[0]);
		return reply->code;
	}
	if (body[0] == 1) {
		grpc_reply_error(reply, GRPC_UNIMPLEMENTED,
				 "compressed gRPC messages are not supported");
		return reply->code;
	}
	n = (uint32_t)body[1] << 24 | (uint32_t)body[2] << 16 |
	    (uint32_t)body[3] << 8 | body[4];
	if (n > TSR_SNAPSHOTTER_MSG_MAX) {
		grpc_reply_error(reply, GRPC_RESOURCE_EXHAUSTED,
				 "gRPC message of %u bytes exceeds the limit (%u)", n,
				 TSR_SNAPSHOTTER_MSG_MAX);
		return reply->code;
	}
	if (n != len - GRPC_PREFIX_LEN) {
		grpc_reply_error(reply, GRPC_INVALID_ARGUMENT,
				 "gRPC message of %u bytes in a body of %zu: %s", n,
				 len - GRPC_PREFIX_LEN,
				 n > len - GRPC_PREFIX_LEN ? "truncated"
							   : "more than one message");
		return reply->code;
	}
	*ret_msg = body + GRPC_PREFIX_LEN;
	*ret_len = n;
	return GRPC_OK;
}

void grpc_percent_encode(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (!size)
		return;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
			if (size - o < 2)
				break;
			out[o++] = (char)*p;
		} else {
			if (size - o < 4)
				break;
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = 0;
}
