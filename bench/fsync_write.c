/* SPDX-License-Identifier: MIT */
/*
 * fsync_write FILE OFFSET: opens FILE O_WRONLY, writes 4 KiB of random bytes
 * at OFFSET with pwrite, fsyncs and closes it.  Prints the time of each
 * step and the total (open + write + fsync) in microseconds as one JSON
 * object.  Used by overlay_copyup.sh: on overlayfs the copy-up of a lower
 * file happens inside the open(O_WRONLY), so the open must be timed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	unsigned char buf[4096];
	uint64_t t0, t1, t2, t3, x;
	char *end;
	long long off;
	int fd;

	if (argc != 3 || !strcmp(argv[1], "--help")) {
		fprintf(argc == 2 ? stdout : stderr, "usage: fsync_write FILE OFFSET\n");
		return argc == 2 ? 0 : 2;
	}
	errno = 0;
	off = strtoll(argv[2], &end, 0);
	if (errno || end == argv[2] || *end || off < 0) {
		fprintf(stderr, "fsync_write: bad offset '%s'\n", argv[2]);
		return 2;
	}
	x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (unsigned char)(x >> 56);
	}

	t0 = now_ns();
	fd = open(argv[1], O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "fsync_write: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	t1 = now_ns();
	if (pwrite(fd, buf, sizeof(buf), (off_t)off) != (ssize_t)sizeof(buf)) {
		fprintf(stderr, "fsync_write: pwrite %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	t2 = now_ns();
	if (fsync(fd) < 0) {
		fprintf(stderr, "fsync_write: fsync %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	t3 = now_ns();
	if (close(fd) < 0) {
		fprintf(stderr, "fsync_write: close %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("{\"open_us\":%.1f,\"write_us\":%.1f,\"fsync_us\":%.1f,\"total_us\":%.1f}\n",
	       (double)(t1 - t0) / 1e3, (double)(t2 - t1) / 1e3, (double)(t3 - t2) / 1e3,
	       (double)(t3 - t0) / 1e3);
	return 0;
}
