/* SPDX-License-Identifier: MIT */
/*
 * tessera: the command line of a tessera store.  This file parses the
 * global options and dispatches to the subcommands of cmd_*.c.
 */
#include "cli.h"

#include <tessera/daemon.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#ifndef TSR_VERSION
#define TSR_VERSION "unknown"
#endif

static int run_help(struct cli *cli, const struct cli_cmd *cmd, int argc,
		    char **argv);

static const struct cli_cmd volume_group = {
	.name = "volume",
	.path = "volume",
	.args = "COMMAND [ARGS...]",
	.summary = "Creates, fills, reads and removes writable volumes.",
	.subs = cli_volume_cmds,
};

static const struct cli_cmd layer_group = {
	.name = "layer",
	.path = "layer",
	.args = "COMMAND [ARGS...]",
	.summary = "Lists, inspects and removes committed layers.",
	.subs = cli_layer_cmds,
};

static const struct cli_cmd help_cmd = {
	.name = "help",
	.path = "help",
	.args = "[COMMAND [SUBCOMMAND]]",
	.summary = "Prints the help of tessera or of one of its commands.",
	.run = run_help,
};

static const struct cli_cmd *const commands[] = {
	&cli_cmd_init,  &volume_group,  &cli_cmd_commit, &layer_group,
	&cli_cmd_image, &cli_cmd_df,    &cli_cmd_gc,     &cli_cmd_fsck,
	&cli_cmd_mount, &cli_cmd_umount, &cli_cmd_vhost, &cli_cmd_serve,
	&help_cmd,      &cli_cmd_rootfs_resolve,
	NULL,
};

static void print_main_help(FILE *f)
{
	fprintf(f,
		"Usage: " CLI_PROG " [--store DIR] [--cache SIZE] COMMAND [ARGS...]\n"
		"\n"
		"tessera manages a store of content-addressed chunks: immutable "
		"layers,\nand writable volumes (raw disk images) on top of "
		"them.\n"
		"\n"
		"Global options:\n"
		"  -s, --store DIR  the store to use; default: $TESSERA_STORE "
		"if set,\n"
		"                   else " CLI_DEFAULT_STORE "\n"
		"  --cache SIZE     the cache of decompressed, verified chunks of "
		"the\n"
		"                   process that opens the store (default 256M); "
		"worth raising\n"
		"                   for daemons (mount, serve, vhost) reading "
		"layers at random\n"
		"  -h, --help       print this help\n"
		"  -V, --version    print the version\n"
		"\n"
		"Commands:\n");
	for (int i = 0; commands[i]; i++) {
		if (commands[i]->hidden)
			continue;
		fprintf(f, "  %-8s ", commands[i]->name);
		cli_print_wrapped(f, commands[i]->summary, 11, 11);
	}
	fprintf(f,
		"\n"
		"Run '" CLI_PROG " help COMMAND' or '" CLI_PROG
		" COMMAND --help' for the options of a\ncommand.  Sizes and "
		"offsets take K, M, G and T suffixes (powers of 1024).\n"
		"A LAYER is a layer name, a full id, or a unique prefix of at "
		"least 4 hex digits.\n"
		"Exit status: 0 success, 1 failure, 2 usage error.\n");
}

static const struct cli_cmd *find_cmd(const struct cli_cmd *group,
				      const char *name)
{
	if (group) {
		for (const struct cli_cmd *c = group->subs; c->name; c++)
			if (strcmp(c->name, name) == 0)
				return c;
		return NULL;
	}
	for (int i = 0; commands[i]; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

static bool is_help_flag(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* argv[0] is cmd's name. */
static int run_cmd(struct cli *cli, const struct cli_cmd *cmd, int argc,
		   char **argv)
{
	const struct cli_cmd *sub;

	if (!cmd->subs)
		return cmd->run(cli, cmd, argc, argv);
	if (argc < 2)
		return cli_usage_err(cmd, "missing command");
	if (is_help_flag(argv[1])) {
		cli_print_help(cmd);
		return CLI_OK;
	}
	sub = find_cmd(cmd, argv[1]);
	if (!sub)
		return cli_usage_err(cmd, "unknown command '%s'", argv[1]);
	return sub->run(cli, sub, argc - 1, argv + 1);
}

static int run_help(struct cli *cli, const struct cli_cmd *cmd, int argc,
		    char **argv)
{
	static const struct option longopts[] = { CLI_LONGOPT_END };
	const struct cli_cmd *target, *sub;
	int c;

	(void)cli;
	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "", longopts, first);
		if (c == CLI_OPT_END)
			break;
		return cli_opt_status(c);
	}
	if (cli_positionals(cmd, argc, argv, 0, 2) != CLI_OK)
		return CLI_USAGE;
	if (optind == argc) {
		print_main_help(cli_out());
		return CLI_OK;
	}
	target = find_cmd(NULL, argv[optind]);
	if (!target)
		return cli_usage_err(cmd, "unknown command '%s'", argv[optind]);
	if (optind + 1 < argc) {
		if (!target->subs)
			return cli_usage_err(cmd, "'%s' has no subcommands",
					     target->name);
		sub = find_cmd(target, argv[optind + 1]);
		if (!sub)
			return cli_usage_err(cmd, "unknown command '%s %s'",
					     target->name, argv[optind + 1]);
		target = sub;
	}
	cli_print_help(target);
	return CLI_OK;
}

/* Commands that always run in this process, even while a daemon owns the
 * store: they do not use the store, or they are about owning it. */
static bool runs_locally(const struct cli_cmd *cmd)
{
	return cmd->local || cmd == &help_cmd;
}

/* Runs the command line argv[0..argc) (global options included, without the
 * program name) on cli; returns the exit status.  Used by main() and, as
 * cli->run_command_line, by the daemons for forwarded commands. */
static int cli_main(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "cache", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_cmd *cmd;
	const char *store_dir = NULL;
	int c, status;

	cli_bind(cli);
	/* '+': stop at the command name; its options are its own. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "+:hs:V", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			store_dir = optarg;
			break;
		case 'C':
			if (tsr_parse_size(optarg, &cli->cache_bytes) < 0 ||
			    cli->cache_bytes < (1u << 20))
				return cli_usage_err(NULL, "--cache needs a size of at least "
						     "1M (like 256M or 4G), not '%s'", optarg);
			break;
		case 'h':
			print_main_help(cli_out());
			return CLI_OK;
		case 'V':
			cli_printf(CLI_PROG " " TSR_VERSION "\n");
			return CLI_OK;
		case ':':
			return cli_usage_err(NULL, "option '%s' needs a value",
					     argv[optind - 1]);
		default:
			if (optopt)
				return cli_usage_err(NULL,
						     "unknown option '-%c'",
						     optopt);
			return cli_usage_err(NULL, "unknown option '%s'",
					     argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		print_main_help(cli_errf());
		return CLI_USAGE;
	}
	/* A forwarded command runs on the daemon's store, whatever path the
	 * client named it by. */
	if (!cli->store_borrowed) {
		if (!store_dir || !*store_dir) {
			const char *env = getenv("TESSERA_STORE");

			store_dir = env && *env ? env : CLI_DEFAULT_STORE;
		}
		cli->store_dir = store_dir;
	}

	cmd = find_cmd(NULL, argv[optind]);
	if (!cmd)
		return cli_usage_err(NULL, "unknown command '%s'",
				     argv[optind]);
	if (!cli->store_borrowed && !runs_locally(cmd)) {
		int r = cli_control_forward(cli->store_dir, argc, argv, &status);

		if (r == 1)
			return status;
		if (r == -EPERM) {
			cli_err("store %s: refusing to use %s/" TSR_CONTROL_SOCKET
				": the store directory, the socket or the process "
				"serving it belongs to another user (neither root "
				"nor you); nothing was sent", cli->store_dir,
				cli->store_dir);
			return CLI_FAIL;
		}
		if (r < 0) {
			cli_errno(r, "store %s: the daemon that owns it did not "
				  "answer", cli->store_dir);
			return CLI_FAIL;
		}
	}
	status = run_cmd(cli, cmd, argc - optind, argv + optind);
	cli_close_store(cli);
	return status;
}

int main(int argc, char **argv)
{
	struct cli cli = {
		.out = stdout,
		.err = stderr,
		.in_fd = STDIN_FILENO,
		.out_fd = STDOUT_FILENO,
		.err_fd = STDERR_FILENO,
		.cwd_fd = AT_FDCWD,
		.progress = isatty(STDERR_FILENO) == 1,
		.run_command_line = cli_main,
	};
	int status = cli_main(&cli, argc, argv);

	fflush(stdout);
	return status;
}
