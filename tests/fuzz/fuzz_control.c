/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the control protocol's request parser
 * (daemon/src/control_proto.c, tsr_control_parse_request), which reads what
 * a local client sends to STORE/control.sock.
 *
 * Each input is parsed twice: whole, and fed the way the control server
 * reads a connection (the 12-byte head, then as many bytes as the parser
 * says it needs).  Both must agree on every whole request; fed parsing may
 * also accept a request that bytes follow (the server never reads them).  -EAGAIN must ask for more than it was
 * given and never more than the protocol's bound; a parsed request must
 * re-encode to exactly the input (argc within bounds, no argument longer
 * than the limit or holding a NUL, the descriptors as given).  Any
 * violation aborts.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/daemon.h>

#define HEAD 12
#define BOUND (HEAD + (size_t)TSR_CONTROL_MAX_ARGS * (4 + TSR_CONTROL_MAX_ARG))

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_control: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* The request re-encoded must be the input, byte for byte. */
static void check_request(const struct tsr_control_request *req, const int *fds,
			  const uint8_t *data, size_t size)
{
	uint8_t *buf;
	size_t len = HEAD, off = HEAD;

	if (req->argc < 1 || req->argc > (int)TSR_CONTROL_MAX_ARGS || req->argv[req->argc])
		die("argc %d out of bounds or argv not NULL-terminated", req->argc);
	for (int i = 0; i < TSR_CONTROL_NFDS; i++)
		if (req->fds[i] != fds[i])
			die("descriptor %d changed", i);
	for (int i = 0; i < req->argc; i++) {
		size_t n = strlen(req->argv[i]);

		if (n > TSR_CONTROL_MAX_ARG)
			die("argument %d is %zu bytes", i, n);
		len += 4 + n;
	}
	if (len != size)
		die("parsed %zu bytes of %zu", len, size);
	buf = malloc(len);
	if (!buf)
		die("out of memory");
	memcpy(buf, data, 8);  /* magic and version as sent (checked by the parser) */
	put32(buf + 8, (uint32_t)req->argc);
	for (int i = 0; i < req->argc; i++) {
		size_t n = strlen(req->argv[i]);

		put32(buf + off, (uint32_t)n);
		memcpy(buf + off + 4, req->argv[i], n);
		off += 4 + n;
	}
	if (memcmp(buf, data, len))
		die("the request does not re-encode to its input");
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int fds[TSR_CONTROL_NFDS] = { 10, 11, 12, 13 };
	struct tsr_control_request whole, fed;
	size_t need = 0, have;
	int rw, rf;

	/* Whole: what a client that sent exactly this would get. */
	rw = tsr_control_parse_request(data, size, fds, TSR_CONTROL_NFDS, &whole, &need);
	if (rw == -EAGAIN && (need <= size || need > BOUND))
		die("-EAGAIN asks for %zu bytes having %zu", need, size);
	if (rw != 0 && rw != -EAGAIN && rw != -EPROTO)
		die("unexpected result %d", rw);
	if (rw == 0) {
		check_request(&whole, fds, data, size);
		free(whole.argv);
	}
	/* A request needs its descriptors. */
	if (tsr_control_parse_request(data, size, fds, TSR_CONTROL_NFDS - 1, &fed, &need) != -EPROTO)
		die("a request with %d descriptors was not refused", TSR_CONTROL_NFDS - 1);

	/* Fed as the server reads: the head, then what the parser asks for. */
	have = size < HEAD ? size : HEAD;
	for (;;) {
		rf = tsr_control_parse_request(data, have, fds, TSR_CONTROL_NFDS, &fed, &need);
		if (rf != -EAGAIN)
			break;
		if (need <= have || need > BOUND)
			die("-EAGAIN asks for %zu bytes having %zu", need, have);
		if (need > size)
			break;  /* the server would wait for more: a client's EOF ends it */
		have = need;
	}
	if (rf == 0) {
		/* The server reads no further than the request: what follows
		 * it stays unread in the socket, and the connection ends with
		 * the reply.  The request is the prefix it consumed. */
		check_request(&fed, fds, data, have);
		if (rw == 0 && have != size)
			die("fed parsing took %zu of %zu bytes of a whole request", have, size);
		free(fed.argv);
	} else if (rw == 0) {
		die("whole parse succeeded, fed parse gave %d", rf);
	}
	return 0;
}
