/* SPDX-License-Identifier: MIT */
/*
 * tsr_fuse_harness STORE MNT [THREADS]: serves STORE at MNT in the
 * foreground until SIGTERM or SIGINT, then flushes, unmounts and closes the
 * store.  A stale mount left by a killed daemon (ENOTCONN) is cleaned and
 * the mount retried once.  Exit status 0 on a clean end.
 *
 * The signal handler runs on a thread of its own, never on the thread in
 * tsr_fuse_serve: so the test also checks that tsr_fuse_exit ends the
 * session when the serving thread is not interrupted by the signal.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/fuse_server.h>
#include <tessera/store.h>

static struct tsr_fuse *g_fuse;

static void on_signal(int sig)
{
	(void)sig;
	if (g_fuse)
		tsr_fuse_exit(g_fuse);
}

static void *signal_thread(void *arg)
{
	sigset_t set;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t sig_tid;
	sigset_t block;
	struct tsr_fuse_options opts = { 0 };
	struct sigaction sa;
	struct tsr_store *store;
	struct tsr_fuse *fuse;
	int r;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s STORE MNT [THREADS]\n", argv[0]);
		return 2;
	}
	opts.mountpoint = argv[2];
	opts.max_threads = argc == 4 ? (unsigned)strtoul(argv[3], NULL, 10) : 0;
	opts.debug = getenv("TSR_FUSE_DEBUG") != NULL;

	r = tsr_store_open(argv[1], NULL, &store);
	if (r) {
		fprintf(stderr, "harness: open %s: %s\n", argv[1], tsr_strerror(r));
		return 1;
	}
	r = tsr_fuse_mount(store, &opts, &fuse);
	if (r == -ENOTCONN || r == -EBUSY) {
		int c = tsr_fuse_clean_stale(argv[2]);

		if (c > 0)
			fprintf(stderr, "harness: cleaned stale mount at %s\n",
				argv[2]);
		if (c >= 0)
			r = tsr_fuse_mount(store, &opts, &fuse);
	}
	if (r) {
		fprintf(stderr, "harness: mount %s: %s\n", argv[2], strerror(-r));
		tsr_store_close(store);
		return 1;
	}

	g_fuse = fuse;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* Every thread started from here on blocks the signals but one. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	if (pthread_create(&sig_tid, NULL, signal_thread, NULL)) {
		fprintf(stderr, "harness: cannot start the signal thread\n");
		tsr_fuse_destroy(fuse);
		tsr_store_close(store);
		return 1;
	}

	r = tsr_fuse_serve(fuse);
	if (r)
		fprintf(stderr, "harness: serve: %s\n", strerror(-r));
	g_fuse = NULL;
	tsr_fuse_destroy(fuse);
	tsr_store_close(store);
	return r ? 1 : 0;
}
