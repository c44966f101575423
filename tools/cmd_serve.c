/* SPDX-License-Identifier: MIT */
/*
 * tessera serve: the daemon containerd talks to.  One process owns the
 * store and serves it at once: the FUSE mount the snapshots' disk images
 * live on (<tessera/fuse_server.h>), the store's control socket (so that
 * `tessera fsck`, `df`... run through it), the Snapshots gRPC service on a
 * unix socket (<tessera/snapshotter.h>), and any number of vhost-user-blk
 * devices for VMs (<tessera/vhost_server.h>, one thread each).  It stays in
 * the foreground (systemd Type=simple) until SIGINT or SIGTERM, then stops
 * them in reverse order and closes the store.  docs/snapshotter.md has the
 * containerd configuration and the systemd unit.
 */
#include "cli.h"
#include <tessera/mount_stack.h>

#include <tessera/daemon.h>
#include <tessera/fuse_server.h>
#include <tessera/snapshotter.h>
#include <tessera/unix_socket.h>
#include <tessera/vhost_server.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SERVE_SOCKET_DEFAULT TSR_MOUNT_RUN_DIR "/snapshotter.sock"
#define SERVE_MOUNT_DEFAULT TSR_MOUNT_RUN_DIR "/serve-fuse"

/* Most vhost-user-blk devices one daemon serves. */
#define SERVE_MAX_VHOST 16

/* One vhost-user-blk device: "volume=NAME,socket=PATH[,queues=N][,read-only]"
 * or "layer=LAYER,socket=PATH[,queues=N]". */
struct serve_vhost {
	char name[256];          /* volume name, or layer name / id */
	char socket[PATH_MAX];
	bool layer;
	bool read_only;
	unsigned queues;
	unsigned socket_mode;    /* mode=; 0: the server's default */
	bool has_gid;            /* group= */
	gid_t gid;
};

struct serve_config {
	char socket[PATH_MAX];
	char mount[PATH_MAX];
	uint64_t size;
	unsigned threads;
	bool socket_has_gid;     /* socket_group: may use the snapshotter too */
	gid_t socket_gid;
	struct serve_vhost vhost[SERVE_MAX_VHOST];
	unsigned nvhost;
};

/* ---- vhost device specs ------------------------------------------------------- */

/* Parses one device spec into cfg->vhost (where names the option or the
 * config line for errors).  CLI_OK, or CLI_FAIL (printed). */
static int add_vhost_spec(struct serve_config *cfg, const char *spec, const char *where)
{
	struct serve_vhost v = { .queues = 1 };
	char buf[PATH_MAX + 512], *save = NULL, *item;
	bool have_name = false;

	if (cfg->nvhost == SERVE_MAX_VHOST) {
		cli_err("serve: %s: at most %d vhost devices", where, SERVE_MAX_VHOST);
		return CLI_FAIL;
	}
	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf)) {
		cli_err("serve: %s: vhost spec too long", where);
		return CLI_FAIL;
	}
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *val = strchr(item, '=');

		if (val)
			*val++ = 0;
		if (!strcmp(item, "read-only") && !val) {
			v.read_only = true;
		} else if ((!strcmp(item, "volume") || !strcmp(item, "layer")) && val && *val &&
			   !have_name) {
			v.layer = item[0] == 'l';
			if (snprintf(v.name, sizeof(v.name), "%s", val) >= (int)sizeof(v.name)) {
				cli_err("serve: %s: name too long", where);
				return CLI_FAIL;
			}
			have_name = true;
		} else if (!strcmp(item, "socket") && val && *val == '/') {
			if (snprintf(v.socket, sizeof(v.socket), "%s", val) >= (int)sizeof(v.socket)) {
				cli_err("serve: %s: socket path too long", where);
				return CLI_FAIL;
			}
		} else if (!strcmp(item, "group") && val) {
			if (tsr_unix_parse_group(val, &v.gid) < 0) {
				cli_err("serve: %s: no group '%s'", where, val);
				return CLI_FAIL;
			}
			v.has_gid = true;
		} else if (!strcmp(item, "mode") && val) {
			mode_t m;

			if (tsr_unix_parse_mode(val, &m) < 0 || m == 0) {
				cli_err("serve: %s: mode must be octal permission bits, "
					"not '%s'", where, val);
				return CLI_FAIL;
			}
			v.socket_mode = m;
		} else if (!strcmp(item, "queues") && val) {
			char *end;
			long n = strtol(val, &end, 10);

			if (end == val || *end || n < 1 || n > TSR_VHOST_MAX_QUEUES) {
				cli_err("serve: %s: queues must be 1 to %d, not '%s'", where,
					TSR_VHOST_MAX_QUEUES, val);
				return CLI_FAIL;
			}
			v.queues = (unsigned)n;
		} else {
			cli_err("serve: %s: bad vhost item '%s%s%s' (expected volume=NAME or "
				"layer=LAYER, socket=/ABSOLUTE/PATH, queues=N, read-only, "
				"group=G, mode=MODE)",
				where, item, val ? "=" : "", val ? val : "");
			return CLI_FAIL;
		}
	}
	if (!have_name || !v.socket[0]) {
		cli_err("serve: %s: a vhost device needs volume=NAME or layer=LAYER and "
			"socket=PATH", where);
		return CLI_FAIL;
	}
	for (unsigned i = 0; i < cfg->nvhost; i++)
		if (!strcmp(cfg->vhost[i].socket, v.socket)) {
			cli_err("serve: %s: socket %s is given twice", where, v.socket);
			return CLI_FAIL;
		}
	if (v.layer)
		v.read_only = true;
	cfg->vhost[cfg->nvhost++] = v;
	return CLI_OK;
}

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
		} else if (strcmp(key, "socket_group") == 0) {
			if (tsr_unix_parse_group(val, &cfg->socket_gid) < 0) {
				cli_err("serve: %s:%d: no group '%s'", path, lineno, val);
				status = CLI_FAIL;
			}
			cfg->socket_has_gid = true;
		} else if (strcmp(key, "vhost") == 0) {
			char where[PATH_MAX + 32];

			snprintf(where, sizeof(where), "%s:%d", path, lineno);
			status = add_vhost_spec(cfg, val, where);
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
				"threads, vhost, socket_group)", path, lineno, key);
			status = CLI_FAIL;
		}
	}
	fclose(f);
	return status;
}

/* ---- the daemon ---------------------------------------------------------------- */

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

/* The FUSE request loop, on a thread of its own.  Its end does not end the
 * daemon: the snapshotter and the devices serve on. */
struct serve_fuse_run {
	struct tsr_fuse *fuse;
	struct tsr_daemon *daemon;
};

static void *fuse_main(void *arg)
{
	struct serve_fuse_run *run = arg;

	if (tsr_fuse_serve(run->fuse) < 0)
		tsr_daemon_log(run->daemon, "the FUSE mount ended with an error");
	return NULL;
}

/* A vhost-user-blk device being served, on its own thread. */
struct serve_vhost_run {
	struct tsr_vhost *srv;
	struct tsr_daemon *daemon;
	pthread_t thread;
	bool running;
};

static void *vhost_main(void *arg)
{
	struct serve_vhost_run *run = arg;

	if (tsr_vhost_run(run->srv) < 0)
		tsr_daemon_log(run->daemon, "a vhost-user-blk device stopped "
			       "with an error");
	return NULL;
}

/* Stops and frees the first n devices (each flushes its volume). */
static void stop_vhosts(struct serve_vhost_run *run, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (run[i].running)
			tsr_vhost_stop(run[i].srv);
	for (unsigned i = 0; i < n; i++) {
		if (run[i].running)
			pthread_join(run[i].thread, NULL);
		tsr_vhost_free(run[i].srv);
		run[i] = (struct serve_vhost_run){ 0 };
	}
}

/* Opens and starts every configured device.  CLI_OK, or CLI_FAIL (printed,
 * and the ones started are stopped again). */
static int start_vhosts(struct cli *cli, struct tsr_daemon *d,
			const struct serve_config *cfg,
			struct serve_vhost_run *run)
{
	for (unsigned i = 0; i < cfg->nvhost; i++) {
		const struct serve_vhost *v = &cfg->vhost[i];
		struct tsr_vhost_options o = {
			.socket_path = v->socket, .queues = v->queues,
			.read_only = v->read_only,
			.log = tsr_daemon_log_line, .log_arg = d,
			.socket_mode = v->socket_mode, .socket_has_gid = v->has_gid,
			.socket_gid = v->gid,
		};
		struct tsr_layer_id id;
		int r;

		if (v->layer) {
			if (cli_resolve_layer(cli, v->name, &id) != CLI_OK)
				goto fail;
			o.layer = &id;
		} else {
			o.volume = v->name;
		}
		r = tsr_vhost_new(cli->store, &o, &run[i].srv);
		if (r < 0) {
			cli_errno(r, "serve: vhost %s %s on %s", v->layer ? "layer" : "volume",
				  v->name, v->socket);
			goto fail;
		}
		run[i].daemon = d;
		r = -pthread_create(&run[i].thread, NULL, vhost_main, &run[i]);
		if (r < 0) {
			cli_errno(r, "serve: vhost thread");
			goto fail;
		}
		run[i].running = true;
		tsr_daemon_log(d, "vhost-user-blk: %s %s on %s (%u queue%s%s)",
			       v->layer ? "layer" : "volume", v->name, v->socket,
			       v->queues, v->queues == 1 ? "" : "s",
			       v->read_only ? ", read-only" : "");
	}
	return CLI_OK;
fail:
	stop_vhosts(run, cfg->nvhost);
	return CLI_FAIL;
}

/* Serves until SIGINT or SIGTERM as the daemon d.  CLI_OK, or CLI_FAIL
 * (printed) when it could not start. */
static int serve_store(struct cli *cli, struct tsr_daemon *d,
		       const struct serve_config *cfg)
{
	struct serve_vhost_run vhosts[SERVE_MAX_VHOST] = { { 0 } };
	struct tsr_fuse_options fopts = { .mountpoint = cfg->mount,
					  .max_threads = cfg->threads };
	struct tsr_snapshotter_options sopts = {
		.socket_path = cfg->socket, .fuse_mount = cfg->mount,
		.volume_size = cfg->size,
		.log = tsr_daemon_log_line, .log_arg = d,
		.socket_has_gid = cfg->socket_has_gid, .socket_gid = cfg->socket_gid,
	};
	struct tsr_mount_daemon rec = { .pid = getpid() };
	struct serve_fuse_run fuse_run = { .daemon = d };
	struct tsr_snapshotter *snap = NULL;
	struct tsr_fuse *fuse = NULL;
	char dir[PATH_MAX], store[PATH_MAX], *slash;
	pthread_t fuse_thread;
	int r;

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
		tsr_daemon_log(d, "cleaned a stale FUSE mount left by a dead daemon");
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
	fuse_run.fuse = fuse;
	r = -pthread_create(&fuse_thread, NULL, fuse_main, &fuse_run);
	if (r < 0) {
		cli_errno(r, "serve: FUSE thread");
		goto fail;
	}
	snprintf(rec.store, sizeof(rec.store), "%s", store);
	snprintf(rec.mountpoint, sizeof(rec.mountpoint), "%s", cfg->mount);
	if (tsr_mount_daemon_write(&rec) < 0)
		tsr_daemon_log(d, "could not record the FUSE mount in "
			       TSR_MOUNT_RUN_DIR "/mounts (tessera umount will not "
			       "know it)");
	r = tsr_daemon_control_start(d, store, cli_control_run, cli);
	if (r < 0) {
		cli_errno(r, "serve: the control socket of store %s", store);
		goto stop_fuse;
	}
	r = tsr_snapshotter_start(cli->store, &sopts, &snap);
	if (r < 0) {
		cli_errno(r, "serve: snapshotter socket %s", cfg->socket);
		goto stop_fuse;
	}
	if (start_vhosts(cli, d, cfg, vhosts) != CLI_OK) {
		tsr_snapshotter_stop(snap);
		goto stop_fuse;
	}
	fprintf(stderr, "%s: serving store %s: snapshotter %s, FUSE mount %s, "
		"%u vhost-user-blk device%s\n", CLI_PROG " serve", store, cfg->socket,
		cfg->mount, cfg->nvhost, cfg->nvhost == 1 ? "" : "s");

	tsr_daemon_wait(d);
	tsr_daemon_log(d, "stopping");
	stop_vhosts(vhosts, cfg->nvhost);
	tsr_snapshotter_stop(snap);
	tsr_daemon_control_stop(d);
	tsr_fuse_exit(fuse);
	pthread_join(fuse_thread, NULL);
	tsr_fuse_destroy(fuse);  /* flushes every open volume */
	tsr_mount_daemon_remove(cfg->mount, rec.pid);
	cli_close_store(cli);
	tsr_daemon_log(d, "stopped");
	return CLI_OK;

stop_fuse:
	tsr_daemon_control_stop(d);
	tsr_fuse_exit(fuse);
	pthread_join(fuse_thread, NULL);
	tsr_mount_daemon_remove(cfg->mount, rec.pid);
fail:
	tsr_fuse_destroy(fuse);
	cli_close_store(cli);
	return CLI_FAIL;
}

static int serve(struct cli *cli, const struct serve_config *cfg)
{
	struct tsr_daemon *d;
	int r, status;

	/* First: every thread started from here on (the store's too) leaves
	 * the stop signals to the daemon. */
	r = tsr_daemon_new(CLI_PROG " serve", &d);
	if (r < 0) {
		cli_errno(r, "serve: starting the daemon");
		return CLI_FAIL;
	}
	status = serve_store(cli, d, cfg);
	tsr_daemon_free(d);
	return status;
}

static int run_serve(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "mount", required_argument, NULL, 'm' },
		{ "config", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 'z' },
		{ "vhost", required_argument, NULL, 'V' },
		CLI_LONGOPT_END,
	};
	struct serve_config cfg = { .socket = SERVE_SOCKET_DEFAULT,
				    .mount = SERVE_MOUNT_DEFAULT };
	const char *socket = NULL, *mount = NULL, *config = NULL, *size = NULL;
	const char *vhost[SERVE_MAX_VHOST];
	unsigned nvhost = 0;
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
		case 'V':
			if (nvhost == SERVE_MAX_VHOST)
				return cli_usage_err(cmd, "at most %d --vhost devices",
						     SERVE_MAX_VHOST);
			vhost[nvhost++] = optarg;
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
	for (unsigned i = 0; i < nvhost; i++)
		if (add_vhost_spec(&cfg, vhost[i], "--vhost") != CLI_OK)
			return CLI_USAGE;
	if (cfg.socket[0] != '/' || cfg.mount[0] != '/')
		return cli_usage_err(cmd, "--socket and --mount must be absolute paths");
	return serve(cli, &cfg);
}

const struct cli_cmd cli_cmd_serve = {
	.name = "serve",
	.path = "serve",
	.args = "[--socket PATH] [--mount MNT] [--config FILE] [--size SIZE] "
		"[--vhost SPEC]...",
	.summary = "Runs the containerd snapshotter: owns the store, serves it over "
		   "FUSE, the Snapshots gRPC service on a unix socket, and "
		   "vhost-user-blk devices for VMs.",
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
		"  --config FILE   'key = value' lines: socket, mount, size, threads, "
		"vhost,\n"
		"                  socket_group (members may use the snapshotter "
		"socket too)\n"
		"                  (one 'vhost = SPEC' line per device)\n"
		"  --size SIZE     filesystem size of snapshots without a parent "
		"(default 8G)\n"
		"  --vhost SPEC    also serve a vhost-user-blk device (repeatable), SPEC "
		"is\n"
		"                  volume=NAME,socket=PATH[,queues=N][,read-only] or\n"
		"                  layer=LAYER,socket=PATH[,queues=N]; the same as "
		"'tessera vhost'\n"
		"                  with those options, in this process; group=G and "
		"mode=MODE\n"
		"                  as its --socket-group and --socket-mode\n",
	.run = run_serve,
	.local = true,
};
