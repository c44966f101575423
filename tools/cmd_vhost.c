/* SPDX-License-Identifier: MIT */
/*
 * tessera vhost: serves a volume or a layer to a VMM as a vhost-user-blk
 * device, in the foreground, until SIGINT or SIGTERM.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tessera/daemon.h>
#include <tessera/vhost_server.h>
#include <tessera/unix_socket.h>

static int vhost_serve(void *srv)
{
	return tsr_vhost_run(srv);
}

static void vhost_stop(void *srv)
{
	tsr_vhost_stop(srv);
}

/* Opens the store and the device, serves it, prints its counters.  d is
 * the daemon this process became. */
static int run_device(struct cli *cli, struct tsr_daemon *d,
		      struct tsr_vhost_options *opts, const char *layer_spec)
{
	struct tsr_layer_id id;
	struct tsr_vhost_stats st;
	struct tsr_vhost *srv;
	int r, status;

	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	if (layer_spec) {
		if (cli_resolve_layer(cli, layer_spec, &id) != CLI_OK)
			return CLI_FAIL;
		opts->layer = &id;
		opts->read_only = true;
	}
	r = tsr_vhost_new(cli->store, opts, &srv);
	if (r < 0) {
		if (opts->volume && r == -ENOENT)
			return cli_volume_err(opts->volume, r);
		if (r == -EADDRINUSE)
			cli_err("vhost: %s: another server listens on it",
				opts->socket_path);
		else if (r == -EEXIST)
			cli_err("vhost: %s exists and is not a socket",
				opts->socket_path);
		else
			cli_errno(r, "vhost: %s", opts->socket_path);
		return CLI_FAIL;
	}
	r = tsr_daemon_control_start(d, cli->store_dir, cli_control_run, cli);
	if (r < 0) {
		cli_errno(r, "vhost: the control socket of store %s",
			  cli->store_dir);
		tsr_vhost_free(srv);
		return CLI_FAIL;
	}
	cli_printf("serving %s %s on %s (%u queue%s%s, pid %d); stop with "
		   "Ctrl-C or SIGTERM\n",
		   opts->volume ? "volume" : "layer",
		   opts->volume ? opts->volume : layer_spec, opts->socket_path,
		   opts->queues ? opts->queues : 1,
		   opts->queues > 1 ? "s" : "",
		   opts->read_only ? ", read-only" : "", (int)getpid());
	fflush(cli_out());
	/* Connections queue on the listening socket until the loop runs. */
	r = tsr_daemon_serve(d, vhost_serve, vhost_stop, srv);
	status = CLI_OK;
	if (r < 0) {
		cli_errno(r, "vhost: %s", opts->socket_path);
		status = CLI_FAIL;
	}
	tsr_daemon_control_stop(d);
	tsr_vhost_get_stats(srv, &st);
	tsr_vhost_free(srv);  /* closes (and flushes) the volume */
	cli_printf("stopped: %llu connection%s, %llu request%s, %llu "
		   "error%s, %llu broken ring%s%s\n",
		   (unsigned long long)st.connections,
		   st.connections == 1 ? "" : "s",
		   (unsigned long long)st.requests,
		   st.requests == 1 ? "" : "s",
		   (unsigned long long)st.errors, st.errors == 1 ? "" : "s",
		   (unsigned long long)st.broken_rings,
		   st.broken_rings == 1 ? "" : "s",
		   st.refused ? " (front-ends refused by the peer check "
				"were logged)" : "");
	if (st.memory_faults)
		cli_printf("%llu connection%s ended because the front-end's "
			   "memory went away under the mapping\n",
			   (unsigned long long)st.memory_faults,
			   st.memory_faults == 1 ? "" : "s");
	return status;
}

static int run_vhost(struct cli *cli, const struct cli_cmd *cmd, int argc,
		     char **argv)
{
	static const struct option longopts[] = {
		{ "volume", required_argument, NULL, 'v' },
		{ "layer", required_argument, NULL, 'l' },
		{ "socket", required_argument, NULL, 'S' },
		{ "queues", required_argument, NULL, 'q' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "socket-mode", required_argument, NULL, 'm' },
		CLI_LONGOPT_END,
	};
	struct tsr_vhost_options opts = { .log = tsr_daemon_log_line };
	const char *layer_spec = NULL;
	struct tsr_daemon *d;
	char *end;
	int c, r, status;

	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "", longopts, first);
		if (c == CLI_OPT_END)
			break;
		switch (c) {
		case 'v':
			opts.volume = optarg;
			break;
		case 'l':
			layer_spec = optarg;
			break;
		case 'S':
			opts.socket_path = optarg;
			break;
		case 'q': {
			unsigned long n;

			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || n < 1 ||
			    n > TSR_VHOST_MAX_QUEUES)
				return cli_usage_err(cmd, "--queues must be a "
						     "number from 1 to %d, not "
						     "'%s'",
						     TSR_VHOST_MAX_QUEUES,
						     optarg);
			opts.queues = (unsigned)n;
			break;
		}
		case 'r':
			opts.read_only = true;
			break;
		case 'g':
			if (tsr_unix_parse_group(optarg, &opts.socket_gid) < 0)
				return cli_usage_err(cmd, "--socket-group: no "
						     "group '%s'", optarg);
			opts.socket_has_gid = true;
			break;
		case 'm': {
			mode_t m;

			if (tsr_unix_parse_mode(optarg, &m) < 0 || m == 0)
				return cli_usage_err(cmd, "--socket-mode must be "
						     "octal permission bits "
						     "(0600, 0660), not '%s'",
						     optarg);
			opts.socket_mode = m;
			break;
		}
		default:
			return cli_opt_status(c);
		}
	}
	if (cli_positionals(cmd, argc, argv, 0, 0) != CLI_OK)
		return CLI_USAGE;
	if (!opts.volume == !layer_spec)
		return cli_usage_err(cmd, "give one of --volume NAME and "
				     "--layer LAYER");
	if (!opts.socket_path)
		return cli_usage_err(cmd, "--socket PATH is required");
	/* The daemon first: no thread (the store's neither) may take the
	 * stop signals. */
	r = tsr_daemon_new(CLI_PROG " vhost", &d);
	if (r < 0) {
		cli_errno(r, "vhost: starting the daemon");
		return CLI_FAIL;
	}
	opts.log_arg = d;
	status = run_device(cli, d, &opts, layer_spec);
	cli_close_store(cli);
	tsr_daemon_free(d);
	return status;
}

const struct cli_cmd cli_cmd_vhost = {
	.name = "vhost",
	.path = "vhost",
	.args = "--volume NAME|--layer LAYER --socket PATH [--queues N] "
		"[--read-only] [--socket-group G] [--socket-mode MODE]",
	.summary = "Serves a volume or a layer to a virtual machine as a "
		   "virtio-blk disk, through a vhost-user-blk socket.",
	.details = "Options:\n"
		   "  --volume NAME   the volume to serve (read-write unless "
		   "--read-only)\n"
		   "  --layer LAYER   a committed layer to serve, always "
		   "read-only\n"
		   "  --socket PATH   the unix socket the VMM connects to "
		   "(created; a stale\n"
		   "                  one is replaced)\n"
		   "  --queues N      request queues, 1 to 16 (default 1); "
		   "must equal the\n"
		   "                  VMM's num-queues\n"
		   "  --read-only     announce a read-only disk; writes, "
		   "discards and\n"
		   "                  write-zeroes fail with an I/O error\n"
		   "  --socket-group G  the socket's group: its members may "
		   "connect too (a VMM\n"
		   "                  running as another user); root and "
		   "this process's user\n"
		   "                  always may, nobody else\n"
		   "  --socket-mode MODE  the socket file's mode (default "
		   "0600, whatever the\n"
		   "                  umask; 0660 with --socket-group)\n"
		   "\n"
		   "Runs in the foreground until SIGINT or SIGTERM and "
		   "flushes the volume\non exit.  One VMM at a time; when it "
		   "disconnects (the VM powered off, the\nVMM restarted) the "
		   "next may connect.  Other tessera commands on the store\n"
		   "are forwarded to this process while it runs.  Example "
		   "(QEMU):\n"
		   "  -object memory-backend-memfd,id=mem,size=1G,share=on "
		   "-numa node,memdev=mem\n"
		   "  -chardev socket,id=c,path=PATH,reconnect=1\n"
		   "  -device vhost-user-blk-pci,chardev=c,num-queues=N\n",
	.run = run_vhost,
	.local = true,
};
