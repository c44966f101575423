/* SPDX-License-Identifier: MIT */
/* The daemon skeleton: the control request parser on good and bad bytes,
 * a forwarded command through a real control socket, the main wait. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tessera/daemon.h>

#include "testutil.h"

static const int fds4[TSR_CONTROL_NFDS] = { 10, 11, 12, 13 };

/* "TSRC" v1 with the given arguments, as a client sends it. */
static size_t make_request(uint8_t *buf, int argc, const char *const *argv)
{
	size_t off = 12;

	memcpy(buf, "TSRC\1\0\0\0", 8);
	buf[8] = (uint8_t)argc;
	buf[9] = buf[10] = buf[11] = 0;
	for (int i = 0; i < argc; i++) {
		uint32_t n = (uint32_t)strlen(argv[i]);

		buf[off] = (uint8_t)n;
		buf[off + 1] = (uint8_t)(n >> 8);
		buf[off + 2] = buf[off + 3] = 0;
		memcpy(buf + off + 4, argv[i], n);
		off += 4 + n;
	}
	return off;
}

START_TEST(test_parse_request_whole_and_piecewise)
{
	const char *args[] = { "volume", "ls", "" };
	struct tsr_control_request req;
	uint8_t buf[256];
	size_t len = make_request(buf, 3, args), have = 0, need = 0;
	int r;

	TSR_CK_OK(tsr_control_parse_request(buf, len, fds4, 4, &req, &need));
	ck_assert_int_eq(req.argc, 3);
	ck_assert_str_eq(req.argv[0], "volume");
	ck_assert_str_eq(req.argv[1], "ls");
	ck_assert_str_eq(req.argv[2], "");
	ck_assert_ptr_null(req.argv[3]);
	ck_assert_int_eq(req.fds[3], 13);
	free(req.argv);

	/* Fed as the server reads it: each -EAGAIN asks for more, within
	 * the request, until it parses. */
	while ((r = tsr_control_parse_request(buf, have, fds4, 4, &req,
					      &need)) == -EAGAIN) {
		ck_assert_uint_gt(need, have);
		ck_assert_uint_le(need, len);
		have = need;
	}
	TSR_CK_OK(r);
	ck_assert_uint_eq(have, len);
	free(req.argv);
}
END_TEST

START_TEST(test_parse_request_refuses_malformed)
{
	const char *args[] = { "fsck" };
	struct tsr_control_request req;
	uint8_t buf[TSR_CONTROL_MAX_ARG + 64];
	size_t len = make_request(buf, 1, args), need;

	/* Descriptors: exactly four. */
	TSR_CK_RET(tsr_control_parse_request(buf, len, fds4, 3, &req, &need), -EPROTO);
	TSR_CK_RET(tsr_control_parse_request(buf, len, NULL, 0, &req, &need), -EPROTO);
	/* Bytes after the request. */
	TSR_CK_RET(tsr_control_parse_request(buf, len + 1, fds4, 4, &req, &need), -EPROTO);
	/* A NUL inside an argument. */
	buf[len - 2] = 0;
	TSR_CK_RET(tsr_control_parse_request(buf, len, fds4, 4, &req, &need), -EPROTO);
	buf[len - 2] = 'c';
	/* Magic, version, argc 0 and beyond the bound. */
	buf[0] = 'X';
	TSR_CK_RET(tsr_control_parse_request(buf, len, fds4, 4, &req, &need), -EPROTO);
	buf[0] = 'T';
	buf[4] = 2;
	TSR_CK_RET(tsr_control_parse_request(buf, len, fds4, 4, &req, &need), -EPROTO);
	buf[4] = 1;
	buf[8] = 0;
	TSR_CK_RET(tsr_control_parse_request(buf, len, fds4, 4, &req, &need), -EPROTO);
	buf[8] = 1;
	buf[9] = 1;  /* 257 */
	TSR_CK_RET(tsr_control_parse_request(buf, len, fds4, 4, &req, &need), -EPROTO);
	buf[9] = 0;
	/* An argument longer than the bound is refused before its bytes. */
	buf[12] = (uint8_t)((TSR_CONTROL_MAX_ARG + 1) & 0xff);
	buf[13] = (uint8_t)((TSR_CONTROL_MAX_ARG + 1) >> 8);
	TSR_CK_RET(tsr_control_parse_request(buf, 16, fds4, 4, &req, &need), -EPROTO);
}
END_TEST

struct seen_run {
	char first[32];
	int argc;
	bool got_fds;
};

static int run_cb(void *arg, const struct tsr_control_request *req)
{
	struct seen_run *seen = arg;
	struct stat st;

	seen->argc = req->argc;
	snprintf(seen->first, sizeof(seen->first), "%s", req->argv[0]);
	seen->got_fds = true;
	for (int i = 0; i < TSR_CONTROL_NFDS; i++)
		seen->got_fds &= fstat(req->fds[i], &st) == 0;
	return 7;
}

START_TEST(test_forwarded_command_runs_through_callback)
{
	char *argv[] = { "gc", "--dry-run" };
	const char *dir = tsr_scratch_dir("daemon");
	struct seen_run seen = { .argc = 0 };
	int fds[TSR_CONTROL_NFDS] = { 0, 1, 2, -1 };
	struct tsr_daemon *d;
	int sock, status = -1;

	char marker[PATH_MAX + 16];
	int mfd;

	TSR_CK_RET(tsr_control_connect(dir, &sock), -ENOENT);  /* no store, no socket */
	TSR_CK_OK(tsr_daemon_new("test", &d));
	TSR_CK_OK(tsr_daemon_control_start(d, dir, run_cb, &seen));
	TSR_CK_RET(tsr_daemon_control_start(d, dir, run_cb, &seen), -EBUSY);
	fds[3] = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fds[3], 0);
	/* A socket in a directory that is no store is not talked to. */
	TSR_CK_RET(tsr_control_connect(dir, &sock), -ENOENT);
	snprintf(marker, sizeof(marker), "%s/" TSR_STORE_MARKER_FILE, dir);
	mfd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(mfd, 0);
	close(mfd);
	TSR_CK_OK(tsr_control_connect(dir, &sock));
	TSR_CK_OK(tsr_control_call(sock, 2, argv, fds, &status));
	close(sock);
	ck_assert_int_eq(status, 7);
	ck_assert_int_eq(seen.argc, 2);
	ck_assert_str_eq(seen.first, "gc");
	ck_assert(seen.got_fds);
	tsr_daemon_control_stop(d);
	/* The socket file is gone with the server. */
	TSR_CK_RET(tsr_control_connect(dir, &sock), -ENOENT);
	tsr_daemon_free(d);
	close(fds[3]);
	tsr_scratch_cleanup();
}
END_TEST

START_TEST(test_wait_returns_on_stop_and_on_signal)
{
	struct tsr_daemon *d;

	TSR_CK_OK(tsr_daemon_new("test", &d));
	tsr_daemon_stop(d);
	ck_assert_int_eq(tsr_daemon_wait(d), 0);
	/* Blocked, so taken by the signalfd: the process lives on. */
	kill(getpid(), SIGTERM);
	ck_assert_int_eq(tsr_daemon_wait(d), SIGTERM);
	tsr_daemon_free(d);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_parse_request_whole_and_piecewise,
		test_parse_request_refuses_malformed,
		test_forwarded_command_runs_through_callback,
		test_wait_returns_on_stop_and_on_signal,
	};
	Suite *suite = suite_create("daemon");
	TCase *tc = tcase_create("daemon");

	tcase_set_timeout(tc, 30);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(suite, tc);
	return tsr_run_suite(suite);
}
