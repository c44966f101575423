/* SPDX-License-Identifier: MIT */
/*
 * tessera volume create/ls/stat/rm, and the table of the volume commands
 * (import/export/write/read are in cmd_volume_io.c).
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- create ------------------------------------------------------------- */

static int run_create(struct cli *cli, const struct cli_cmd *cmd, int argc,
		      char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "parent", required_argument, NULL, 'p' },
		CLI_LONGOPT_END,
	};
	const char *parent = NULL, *name;
	struct tsr_layer_id pid;
	uint64_t size = 0;
	int c, r;

	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "s:p:", longopts, first);
		if (c == CLI_OPT_END)
			break;
		switch (c) {
		case 's':
			if (cli_parse_size_opt(cmd, "--size", optarg, false,
					       &size) != CLI_OK)
				return CLI_USAGE;
			break;
		case 'p':
			parent = optarg;
			break;
		default:
			return cli_opt_status(c);
		}
	}
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	name = argv[optind];
	if (cli_check_name(cmd, "volume", name) != CLI_OK)
		return CLI_USAGE;
	if (!parent && size == 0)
		return cli_usage_err(cmd, "--size is required without "
				     "--parent");
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	if (parent && cli_resolve_layer(cli, parent, &pid) != CLI_OK)
		return CLI_FAIL;
	r = tsr_volume_create(cli->store, name, size, parent ? &pid : NULL);
	if (r == -EINVAL && parent && size) {
		cli_err("volume '%s': --size is smaller than the size of "
			"layer '%s'", name, parent);
		return CLI_FAIL;
	}
	if (r < 0)
		return cli_volume_err(name, r);
	return CLI_OK;
}


/* ---- ls ------------------------------------------------------------------ */

struct vol_list {
	struct tsr_volume_info *v;
	size_t n, cap;
};

static int collect_volume(const struct tsr_volume_info *info, void *arg)
{
	struct vol_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct tsr_volume_info *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *info;
	return 0;
}

static int run_ls(struct cli *cli, const struct cli_cmd *cmd, int argc,
		  char **argv)
{
	struct vol_list l = { 0 };
	struct tsr_store_stats st;
	int c, r, width = 4;

	c = cli_no_options(cmd, argc, argv);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 0, 0) != CLI_OK)
		return CLI_USAGE;
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	r = tsr_store_stat(cli->store, &st);
	if (r >= 0)
		r = tsr_volume_list(cli->store, collect_volume, &l);
	if (r < 0) {
		cli_errno(r, "volume ls");
		free(l.v);
		return CLI_FAIL;
	}
	for (size_t i = 0; i < l.n; i++)
		if ((int)strlen(l.v[i].name) > width)
			width = (int)strlen(l.v[i].name);
	cli_printf("%-*s  %8s  %-12s  %8s  %s\n", width, "NAME", "SIZE", "PARENT",
	       "WRITTEN", "CREATED");
	for (size_t i = 0; i < l.n; i++) {
		const struct tsr_volume_info *v = &l.v[i];
		char size[CLI_SIZE_BUF], written[CLI_SIZE_BUF];
		char parent[TSR_ID_HEX_LEN + 1] = "-", created[CLI_TIME_BUF];

		if (v->has_parent)
			cli_fmt_short_id(&v->parent, parent);
		cli_printf("%-*s  %8s  %-12s  %8s  %s\n", width, v->name,
		       cli_fmt_size(v->size, size), parent,
		       cli_fmt_size(v->chunks_written * st.chunk_size, written),
		       cli_fmt_time(v->created, created));
	}
	free(l.v);
	return CLI_OK;
}

/* ---- stat ------------------------------------------------------------------ */

static void print_kv_bytes(const char *key, uint64_t bytes)
{
	char h[CLI_SIZE_BUF];

	cli_printf("%-16s %llu (%s)\n", key, (unsigned long long)bytes,
	       cli_fmt_size(bytes, h));
}

static int run_stat(struct cli *cli, const struct cli_cmd *cmd, int argc,
		    char **argv)
{
	struct tsr_volume_info v;
	struct tsr_store_stats st;
	struct cli_str names = { 0 };
	char hex[TSR_ID_HEX_LEN + 1], created[CLI_TIME_BUF], sz[CLI_SIZE_BUF];
	const char *name;
	int c, r;

	c = cli_no_options(cmd, argc, argv);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	name = argv[optind];
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	r = tsr_volume_stat(cli->store, name, &v);
	if (r < 0)
		return cli_volume_err(name, r);
	r = tsr_store_stat(cli->store, &st);
	if (r < 0) {
		cli_errno(r, "store %s", cli->store_dir);
		return CLI_FAIL;
	}
	cli_printf("%-16s %s\n", "name:", v.name);
	cli_printf("%-16s %llu\n", "id:", (unsigned long long)v.id);
	print_kv_bytes("size:", v.size);
	if (v.has_parent) {
		tsr_layer_id_to_hex(&v.parent, hex);
		r = cli_layer_names(cli, &v.parent, ", ", &names);
		if (r < 0)
			cli_errno(r, "layer %s: names", hex);
		cli_printf("%-16s %s\n", "parent:", hex);
		cli_printf("%-16s %s\n", "parent names:", cli_str_get(&names, "-"));
		cli_str_free(&names);
	} else {
		cli_printf("%-16s -\n", "parent:");
	}
	print_kv_bytes("chunk size:", st.chunk_size);
	cli_printf("%-16s %llu (%s)\n", "chunks written:",
	       (unsigned long long)v.chunks_written,
	       cli_fmt_size(v.chunks_written * st.chunk_size, sz));
	cli_printf("%-16s %llu\n", "chunks zeroed:",
	       (unsigned long long)v.chunks_zeroed);
	print_kv_bytes("allocated:", v.allocated_bytes);
	cli_printf("%-16s %s\n", "created:", cli_fmt_time(v.created, created));
	return cli_print_volume_fs(cli, name, 16);
}

/* ---- rm ------------------------------------------------------------------ */

static int run_rm(struct cli *cli, const struct cli_cmd *cmd, int argc,
		  char **argv)
{
	const char *name;
	int c, r;

	c = cli_no_options(cmd, argc, argv);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	name = argv[optind];
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	r = tsr_volume_remove(cli->store, name);
	if (r < 0)
		return cli_volume_err(name, r);
	return CLI_OK;
}

/* ---- table ------------------------------------------------------------------ */

const struct cli_cmd cli_volume_cmds[] = {
	{
		.name = "create",
		.path = "volume create",
		.args = "NAME [--size SIZE] [--parent LAYER]",
		.summary = "Creates an empty writable volume, or one that "
			   "starts as a copy-on-write view of a layer.",
		.details =
			"Options:\n"
			"  -s, --size SIZE      size of the volume; required "
			"without --parent, and\n"
			"                       with one it defaults to the "
			"layer's size (never less)\n"
			"  -p, --parent LAYER   the layer the volume starts "
			"from: a name, full id or\n"
			"                       unique id prefix\n",
		.run = run_create,
	},
	{
		.name = "import",
		.path = "volume import",
		.args = "NAME FILE",
		.summary = "Creates volume NAME of the size of FILE (a raw "
			   "image or a block device) and copies FILE into it; "
			   "all-zero MiB pieces stay holes.",
		.details = "A failed import removes the volume it created.\n",
		.run = cli_volume_import,
	},
	{
		.name = "export",
		.path = "volume export",
		.args = "NAME FILE",
		.summary = "Writes the content of volume NAME to FILE as a "
			   "raw image; FILE '-' is stdout.",
		.details = "A regular FILE is truncated and written sparse "
			   "(all-zero 4 KiB blocks stay holes).\nA block "
			   "device or stdout gets every byte, zeros "
			   "included.\n",
		.run = cli_volume_export,
	},
	{
		.name = "write",
		.path = "volume write",
		.args = "NAME --offset OFF [FILE|-]",
		.summary = "Writes the bytes of FILE (default: stdin) into "
			   "volume NAME at offset OFF, then flushes them to "
			   "stable storage.",
		.details =
			"Options:\n"
			"  -o, --offset OFF   where to write, in bytes "
			"(K, M, G suffixes); required\n"
			"\nWriting past the end of the volume is an error.  A "
			"FILE is checked before\nanything is written; from "
			"stdin, the bytes before the end may be written.\n",
		.run = cli_volume_write,
	},
	{
		.name = "read",
		.path = "volume read",
		.args = "NAME [--offset OFF] [--length LEN]",
		.summary = "Copies bytes of volume NAME to stdout.",
		.details = "Options:\n"
			   "  -o, --offset OFF   first byte (default 0)\n"
			   "  -l, --length LEN   number of bytes (default: to "
			   "the end of the volume)\n",
		.run = cli_volume_read,
	},
	{
		.name = "ls",
		.path = "volume ls",
		.args = "",
		.summary = "Lists the volumes: size, parent layer (short id), "
			   "bytes written locally, creation time.",
		.run = run_ls,
	},
	{
		.name = "stat",
		.path = "volume stat",
		.args = "NAME",
		.summary = "Shows the details of volume NAME as 'key: value' "
			   "lines.",
		.run = run_stat,
	},
	{
		.name = "rm",
		.path = "volume rm",
		.args = "NAME",
		.summary = "Removes volume NAME and its local data; its parent "
			   "layer is not touched.",
		.run = run_rm,
	},
	{ 0 },
};
