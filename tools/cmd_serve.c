/* SPDX-License-Identifier: MIT */
/*
 * tessera serve: the daemon containerd talks to.  One process owns the
 * store and serves it three ways at once: the FUSE mount the snapshots'
 * disk images live on (<tessera/fuse_server.h>), the store's control
 * socket (so that `tessera fsck`, `df`... run through it), and the Snapshots
 * gRPC service on a unix socket (<tessera/snapshotter.h>).  It stays in the
 * foreground (systemd Type=simple) until SIGINT or SIGTERM, then stops the
 * three in reverse order and closes the store.  docs/snapshotter.md has
 * the containerd configuration and the systemd unit.
 */
#include "cli.h"
#include "mount_stack.h"

#include <tessera/fuse_server.h>
#include <tessera/snapshotter.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SERVE_SOCKET_DEFAULT MOUNT_RUN_DIR "/snapshotter.sock"
#define SERVE_MOUNT_DEFAULT MOUNT_RUN_DIR "/serve-fuse"

struct serve_config {
	char socket[PATH_MAX];
	char mount[PATH_MAX];
	uint64_t size;
	unsigned threads;
};

/* ---- config file ------------------------------------------------------------ */

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* "key = value" lines, '#' comments, values optionally in double quotes.
 * CLI_OK, or CLI_FAIL (printed). */
static int load_config(const char *path, struct serve_config *cfg)
{
	FILE *f = fopen(path, "re");
	char line[PATH_MAX + 64], *key, *val, *eq;
	int lineno = 0, status = CLI_OK;
	uint64_t size;
	long v;

	if (!f) {
		cli_errno(-errno, "serve: config %s", path);
		return CLI_FAIL;
	}
	while (status == CLI_OK && fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			cli_err("serve: %s:%d: line too long", path, lineno);
			status = CLI_FAIL;
			break;
		}
		key = trim(line);
		if (!*key || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			cli_err("serve: %s:%d: expected 'key = value'", path, lineno);
			status = CLI_FAIL;
			break;
		}
		*eq = 0;
		key = trim(key);
		val = trim(eq + 1);
		if (*val == '"') {
			size_t n = strlen(val);

			if (n < 2 || val[n - 1] != '"') {
				cli_err("serve: %s:%d: unterminated quote", path, lineno);
				status = CLI_FAIL;
				break;
			}
			val[n - 1] = 0;
			val++;
		}
		if (strcmp(key, "socket") == 0 && *val) {
			snprintf(cfg->socket, sizeof(cfg->socket), "%s", val);
		} else if (strcmp(key, "mount") == 0 && *val) {
			snprintf(cfg->mount, sizeof(cfg->mount), "%s", val);
		} else if (strcmp(key, "size") == 0) {
			if (tsr_parse_size(val, &size) < 0 || size == 0) {
				cli_err("serve: %s:%d: bad size '%s'", path, lineno, val);
				status = CLI_FAIL;
			}
			cfg->size = size;
		} else if (strcmp(key, "threads") == 0) {
			v = strtol(val, &eq, 10);
			if (eq == val || *eq || v < 1 || v > 1024) {
				cli_err("serve: %s:%d: threads must be 1 to 1024", path,
					lineno);
				status = CLI_FAIL;
			}
			cfg->threads = (unsigned)v;
		} else {
			cli_err("serve: %s:%d: unknown key '%s' (socket, mount, size, "
				"threads)", path, lineno, key);
			status = CLI_FAIL;
		}
	}
	fclose(f);
	return status;
}

/* ---- the daemon ---------------------------------------------------------------- */

static void log_line(void *arg, const char *line)
{
	char when[CLI_TIME_BUF];

	(void)arg;
	fprintf(stderr, "%s " CLI_PROG " serve[%d]: %s\n",
		cli_fmt_time((uint64_t)time(NULL), when), (int)getpid(), line);
	fflush(stderr);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void *fuse_main(void *arg)
{
	int r = tsr_fuse_serve(arg);

	if (r < 0)
		log_line(NULL, "the FUSE mount ended with an error");
	return NULL;
}

static int serve(struct cli *cli, const struct serve_config *cfg)
{
	struct tsr_fuse_options fopts = { .mountpoint = cfg->mount,
					  .max_threads = cfg->threads };
	struct tsr_snapshotter_options sopts = {
		.socket_path = cfg->socket, .fuse_mount = cfg->mount,
		.volume_size = cfg->size, .log = log_line,
	};
	struct mount_daemon rec = { .pid = getpid() };
	struct tsr_snapshotter *snap = NULL;
	struct cli_control *ctl = NULL;
	struct tsr_fuse *fuse = NULL;
	char dir[PATH_MAX], store[PATH_MAX], *slash;
	sigset_t stop;
	pthread_t fuse_thread;
	int r, sig;

	/* Every thread started from here on leaves the stop signals to
	 * sigwait below. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);

	snprintf(dir, sizeof(dir), "%s", cfg->socket);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		r = mkdir_p(dir, 0700);
		if (r < 0) {
			cli_errno(r, "serve: %s", dir);
			return CLI_FAIL;
		}
	}
	r = tsr_fuse_clean_stale(cfg->mount);
	if (r == 1)
		log_line(NULL, "cleaned a stale FUSE mount left by a dead daemon");
	r = mkdir_p(cfg->mount, 0700);
	if (r < 0) {
		cli_errno(r, "serve: %s", cfg->mount);
		return CLI_FAIL;
	}
	if (!realpath(cli->store_dir, store))
		snprintf(store, sizeof(store), "%s", cli->store_dir);
	cli->store_dir = store;
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	r = tsr_fuse_mount(cli->store, &fopts, &fuse);
	if (r < 0) {
		cli_errno(r, "serve: mounting %s", cfg->mount);
		goto fail;
	}
	r = -pthread_create(&fuse_thread, NULL, fuse_main, fuse);
	if (r < 0) {
		cli_errno(r, "serve: FUSE thread");
		goto fail;
	}
	snprintf(rec.store, sizeof(rec.store), "%s", store);
	snprintf(rec.mountpoint, sizeof(rec.mountpoint), "%s", cfg->mount);
	if (mount_daemon_write(&rec) < 0)
		log_line(NULL, "could not record the FUSE mount in " MOUNT_RUN_DIR
			 "/mounts (tessera umount will not know it)");
	r = cli_control_start(store, cli->store, &ctl);
	if (r < 0) {
		cli_errno(r, "serve: the control socket of store %s", store);
		goto stop_fuse;
	}
	r = tsr_snapshotter_start(cli->store, &sopts, &snap);
	if (r < 0) {
		cli_errno(r, "serve: snapshotter socket %s", cfg->socket);
		goto stop_fuse;
	}
	fprintf(stderr, "%s: serving store %s: snapshotter %s, FUSE mount %s\n",
		CLI_PROG " serve", store, cfg->socket, cfg->mount);

	do
		r = sigwait(&stop, &sig);
	while (r == EINTR);
	log_line(NULL, "stopping");
	tsr_snapshotter_stop(snap);
	cli_control_stop(ctl);
	tsr_fuse_exit(fuse);
	pthread_join(fuse_thread, NULL);
	tsr_fuse_destroy(fuse);  /* flushes every open volume */
	mount_daemon_remove(cfg->mount, rec.pid);
	cli_close_store(cli);
	log_line(NULL, "stopped");
	return CLI_OK;

stop_fuse:
	cli_control_stop(ctl);
	tsr_fuse_exit(fuse);
	pthread_join(fuse_thread, NULL);
	mount_daemon_remove(cfg->mount, rec.pid);
fail:
	tsr_fuse_destroy(fuse);
	cli_close_store(cli);
	return CLI_FAIL;
}

static int run_serve(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "mount", required_argument, NULL, 'm' },
		{ "config", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 'z' },
		CLI_LONGOPT_END,
	};
	struct serve_config cfg = { .socket = SERVE_SOCKET_DEFAULT,
				    .mount = SERVE_MOUNT_DEFAULT };
	const char *socket = NULL, *mount = NULL, *config = NULL, *size = NULL;
	int c;

	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "", longopts, first);
		if (c == CLI_OPT_END)
			break;
		switch (c) {
		case 'S':
			socket = optarg;
			break;
		case 'm':
			mount = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'z':
			size = optarg;
			break;
		default:
			return cli_opt_status(c);
		}
	}
	if (cli_positionals(cmd, argc, argv, 0, 0) != CLI_OK)
		return CLI_USAGE;
	/* The config file first; options given on the command line win. */
	if (config && load_config(config, &cfg) != CLI_OK)
		return CLI_FAIL;
	if (socket)
		snprintf(cfg.socket, sizeof(cfg.socket), "%s", socket);
	if (mount)
		snprintf(cfg.mount, sizeof(cfg.mount), "%s", mount);
	if (size && cli_parse_size_opt(cmd, "--size", size, false, &cfg.size) != CLI_OK)
		return CLI_USAGE;
	if (cfg.socket[0] != '/' || cfg.mount[0] != '/')
		return cli_usage_err(cmd, "--socket and --mount must be absolute paths");
	return serve(cli, &cfg);
}

const struct cli_cmd cli_cmd_serve = {
	.name = "serve",
	.path = "serve",
	.args = "[--socket PATH] [--mount MNT] [--config FILE] [--size SIZE]",
	.summary = "Runs the containerd snapshotter: owns the store, serves it over "
		   "FUSE and the Snapshots gRPC service on a unix socket.",
	.details =
		"Stays in the foreground until SIGINT or SIGTERM.  Register it in "
		"containerd's\nconfig as a proxy plugin:\n"
		"  [proxy_plugins.tessera]\n"
		"    type = \"snapshot\"\n"
		"    address = \"" SERVE_SOCKET_DEFAULT "\"\n"
		"and use it with 'ctr ... --snapshotter tessera'.  A mount left by a "
		"killed daemon\nis cleaned first; other tessera commands run through "
		"the daemon meanwhile.\n"
		"\nOptions:\n"
		"  --socket PATH   the gRPC socket, mode 0600 (default "
		SERVE_SOCKET_DEFAULT ")\n"
		"  --mount MNT     the FUSE mount of the images (default "
		SERVE_MOUNT_DEFAULT ")\n"
		"  --config FILE   'key = value' lines: socket, mount, size, threads\n"
		"  --size SIZE     filesystem size of snapshots without a parent "
		"(default 8G)\n",
	.run = run_serve,
	.local = true,
};
