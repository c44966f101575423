/* SPDX-License-Identifier: MIT */
/*
 * Whether the process a record names still runs, and waiting for it to
 * exit (see <tessera/mount_stack.h>).
 */
#include <tessera/mount_stack.h>

#include "mount_internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A zombie has exited (its files, and so the store lock, are released)
 * even though kill() still finds it until its parent reaps it. */
static bool is_zombie(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (mount_read_small(path, buf, sizeof(buf)) < 0)
		return false;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

bool tsr_mount_pid_alive(pid_t pid)
{
	if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
		return false;
	return !is_zombie(pid);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tsr_mount_wait_pid(pid_t pid, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int r = -ETIMEDOUT;

	for (;;) {
		int64_t left = deadline - now_ms();

		/* Our own child is reaped here. */
		if (waitpid(pid, NULL, WNOHANG) == pid ||
		    !tsr_mount_pid_alive(pid)) {
			r = 0;
			break;
		}
		if (left <= 0)
			break;
		if (pidfd >= 0) {
			struct pollfd p = { .fd = pidfd, .events = POLLIN };

			/* Readable once the process has exited. */
			if (poll(&p, 1, left > 1000 ? 1000 : (int)left) > 0) {
				waitpid(pid, NULL, WNOHANG);
				r = 0;
				break;
			}
		} else {
			usleep(20000);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	return r;
}
