/* SPDX-License-Identifier: MIT */
/*
 * A daemon's life cycle: the stop signals and the main wait, the fd limit,
 * the log line, starting in the background and the readiness report.
 *
 * Signals: SIGINT and SIGTERM are blocked and read from a signalfd, not
 * caught by a handler.  A handler would need a global (the object to stop)
 * and could run on any thread that happens not to block them; the signalfd
 * is one descriptor of the daemon object, read by tsr_daemon_wait() only.
 * tsr_daemon_stop() is the same wake-up from inside the process (an
 * eventfd).
 */
#include "daemon_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);  /* best effort: serve with less */
	}
}

void tsr_daemon_free(struct tsr_daemon *d)
{
	if (!d)
		return;
	tsr_daemon_control_stop(d);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	free(d->name);
	free(d);
}

int tsr_daemon_new(const char *name, struct tsr_daemon **ret_daemon)
{
	struct tsr_daemon *d = calloc(1, sizeof(*d));
	sigset_t stop;
	int r;

	if (!d)
		return -ENOMEM;
	d->signal_fd = d->stop_fd = -1;
	d->name = strdup(name);
	if (!d->name) {
		r = -ENOMEM;
		goto fail;
	}
	stop_signals(&stop);
	r = -pthread_sigmask(SIG_BLOCK, &stop, NULL);
	if (r)
		goto fail;
	d->signal_fd = signalfd(-1, &stop, SFD_CLOEXEC);
	d->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (d->signal_fd < 0 || d->stop_fd < 0) {
		r = -errno;
		goto fail;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	raise_fd_limit();
	*ret_daemon = d;
	return 0;
fail:
	tsr_daemon_free(d);
	return r;
}

int tsr_daemon_wait(struct tsr_daemon *d)
{
	struct pollfd pfd[2] = {
		{ .fd = d->signal_fd, .events = POLLIN },
		{ .fd = d->stop_fd, .events = POLLIN },
	};
	struct signalfd_siginfo si;
	uint64_t v;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[0].revents && read(d->signal_fd, &si, sizeof(si)) ==
					      (ssize_t)sizeof(si))
			return (int)si.ssi_signo;
		if (pfd[1].revents && read(d->stop_fd, &v, sizeof(v)) ==
					      (ssize_t)sizeof(v))
			return 0;
	}
}

void tsr_daemon_stop(struct tsr_daemon *d)
{
	uint64_t one = 1;
	int saved = errno;

	if (write(d->stop_fd, &one, sizeof(one)) < 0) {
		/* eventfd counter full: a wake-up is pending anyway */
	}
	errno = saved;
}

struct serve_thread {
	struct tsr_daemon *daemon;
	int (*serve)(void *arg);
	void *arg;
	int result;  /* serve's, once the thread is joined */
};

static void *serve_thread(void *arg)
{
	struct serve_thread *t = arg;

	t->result = t->serve(t->arg);
	tsr_daemon_stop(t->daemon);
	return NULL;
}

int tsr_daemon_serve(struct tsr_daemon *d, int (*serve)(void *arg),
		     void (*stop)(void *arg), void *arg)
{
	struct serve_thread t = { .daemon = d, .serve = serve, .arg = arg };
	pthread_t thread;
	int r = -pthread_create(&thread, NULL, serve_thread, &t);

	if (r)
		return r;
	/* A failed wait (it cannot block) ends the daemon too, cleanly. */
	tsr_daemon_wait(d);
	stop(arg);
	pthread_join(thread, NULL);
	return t.result;
}

/* ---- the log ----------------------------------------------------------------- */

static void vlog(struct tsr_daemon *d, const char *fmt, va_list ap)
{
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	if (!localtime_r(&now, &tm) ||
	    !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(when, sizeof(when), "-");
	/* One fprintf per piece under the stream's lock: lines of the
	 * front-ends' threads do not interleave. */
	flockfile(stderr);
	fprintf(stderr, "%s %s[%d]: ", when, d->name, (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fflush(stderr);
	funlockfile(stderr);
}

void tsr_daemon_log(struct tsr_daemon *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(d, fmt, ap);
	va_end(ap);
}

void tsr_daemon_log_line(void *arg, const char *line)
{
	tsr_daemon_log(arg, "%s", line);
}

/* ---- starting in the background -------------------------------------------------- */

int tsr_daemon_spawn(int (*child_main)(void *arg, int ready_fd), void *arg,
		     int close_fd, pid_t *ret_pid)
{
	int p[2], status;
	ssize_t n;
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);  /* nothing buffered is written twice */
	pid = fork();
	if (pid < 0) {
		status = -errno;
		close(p[0]);
		close(p[1]);
		return status;
	}
	if (pid == 0) {
		close(p[0]);
		if (close_fd >= 0)
			close(close_fd);
		setsid();
		if (chdir("/") < 0) {
			/* Paths are absolute; nothing depends on it. */
		}
		status = child_main(arg, p[1]);
		fflush(NULL);
		_exit(status);
	}
	close(p[1]);
	do
		n = read(p[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == 1) {
		*ret_pid = pid;
		return 0;
	}
	/* The report end closed unwritten: the child exited (or closed it
	 * without reporting, and exits). */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return -ECHILD;
}

int tsr_daemon_detach_stdio(const char *log_path)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), fd, r = 0;

	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (null < 0 && fd < 0)
		return -errno;
	fflush(stdout);
	fflush(stderr);
	if (null >= 0 && dup2(null, STDIN_FILENO) < 0)
		r = -errno;
	if (fd < 0)
		fd = null;
	if (fd >= 0 && (dup2(fd, STDOUT_FILENO) < 0 ||
			dup2(fd, STDERR_FILENO) < 0))
		r = -errno;
	if (fd >= 0 && fd != null)
		close(fd);
	if (null >= 0)
		close(null);
	return r;
}

void tsr_daemon_report_ready(int ready_fd)
{
	char ok = 0;

	if (write(ready_fd, &ok, 1) != 1) {
		/* The parent is gone; serve anyway, it was asked for. */
	}
	close(ready_fd);
}
