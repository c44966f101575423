/* SPDX-License-Identifier: MIT */
/*
 * tessera commit, tessera layer ls/stat/rm: making and inspecting layers.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- commit ------------------------------------------------------------ */

static int run_commit(struct cli *cli, const struct cli_cmd *cmd, int argc,
		      char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		CLI_LONGOPT_END,
	};
	const char *vol_name, *name = NULL;
	struct tsr_volume *vol;
	struct tsr_layer_id id;
	struct cli_progress bar;
	char hex[TSR_ID_HEX_LEN + 1];
	int c, r;

	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "n:", longopts, first);
		if (c == CLI_OPT_END)
			break;
		if (c != 'n')
			return cli_opt_status(c);
		name = optarg;
	}
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	vol_name = argv[optind];
	if (name && cli_check_name(cmd, "layer", name) != CLI_OK)
		return CLI_USAGE;
	if (cli_open_volume(cli, vol_name, &vol) != CLI_OK)
		return CLI_FAIL;

	/* The handle is consumed whatever the result. */
	cli_progress_init(&bar, cli, "commit");
	r = tsr_volume_commit(vol, name, &bar.ops, &id);
	cli_progress_done(&bar);
	if (r == -EEXIST && name) {
		cli_err("commit '%s': layer name '%s' already names another "
			"layer", vol_name, name);
		return CLI_FAIL;
	}
	if (r < 0)
		return cli_volume_err(vol_name, r);
	tsr_layer_id_to_hex(&id, hex);
	cli_printf("%s\n", hex);
	return CLI_OK;
}

const struct cli_cmd cli_cmd_commit = {
	.name = "commit",
	.path = "commit",
	.args = "VOLUME [--name NAME]",
	.summary = "Turns VOLUME into an immutable layer and prints the "
		   "layer's full id; the volume is consumed.",
	.details =
		"Only the chunks written since the volume's parent are hashed "
		"and stored; chunks\nthe store already holds are shared, "
		"all-zero chunks become holes.  Committing\ncontent equal to "
		"an existing layer adds a hold on that layer.\n"
		"\nOptions:\n"
		"  -n, --name NAME   also name the layer NAME\n",
	.run = run_commit,
};

/* ---- ls ------------------------------------------------------------------ */

struct layer_row {
	struct tsr_layer_info info;
	struct cli_str names;
};

struct layer_rows {
	struct layer_row *v;
	size_t n, cap;
};

static int collect_layer(const struct tsr_layer_info *info, void *arg)
{
	struct layer_rows *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct layer_row *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct layer_row){ .info = *info };
	return 0;
}

static void free_rows(struct layer_rows *l)
{
	for (size_t i = 0; i < l->n; i++)
		cli_str_free(&l->v[i].names);
	free(l->v);
}

static int run_ls(struct cli *cli, const struct cli_cmd *cmd, int argc,
		  char **argv)
{
	struct layer_rows l = { 0 };
	int c, r, width = 5;

	c = cli_no_options(cmd, argc, argv);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 0, 0) != CLI_OK)
		return CLI_USAGE;
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	/* Names are looked up after the walk, not from inside its callback. */
	r = tsr_layer_list(cli->store, collect_layer, &l);
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		r = cli_layer_names(cli, &l.v[i].info.id, ",", &l.v[i].names);
		if ((int)l.v[i].names.len > width)
			width = (int)l.v[i].names.len;
	}
	if (r < 0) {
		cli_errno(r, "layer ls");
		free_rows(&l);
		return CLI_FAIL;
	}
	cli_printf("%-12s  %-*s  %8s  %-12s  %5s  %8s  %11s  %5s\n", "ID", width,
	       "NAMES", "SIZE", "PARENT", "DEPTH", "CHUNKS", "NEW-OBJECTS",
	       "HOLDS");
	for (size_t i = 0; i < l.n; i++) {
		const struct tsr_layer_info *li = &l.v[i].info;
		char id[TSR_ID_HEX_LEN + 1], parent[TSR_ID_HEX_LEN + 1] = "-";
		char size[CLI_SIZE_BUF];

		cli_fmt_short_id(&li->id, id);
		if (li->has_parent)
			cli_fmt_short_id(&li->parent, parent);
		cli_printf("%-12s  %-*s  %8s  %-12s  %5u  %8llu  %11llu  %5u\n", id,
		       width, cli_str_get(&l.v[i].names, "-"),
		       cli_fmt_size(li->size, size), parent, li->depth,
		       (unsigned long long)li->data_chunks,
		       (unsigned long long)li->new_objects, li->holds);
	}
	free_rows(&l);
	return CLI_OK;
}

/* ---- stat ------------------------------------------------------------------ */

static int run_stat(struct cli *cli, const struct cli_cmd *cmd, int argc,
		    char **argv)
{
	struct tsr_layer_info li;
	struct tsr_layer_id id;
	struct cli_str names = { 0 }, pnames = { 0 };
	char hex[TSR_ID_HEX_LEN + 1], sz[CLI_SIZE_BUF], created[CLI_TIME_BUF];
	const char *spec;
	int c, r;

	c = cli_no_options(cmd, argc, argv);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	spec = argv[optind];
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	if (cli_resolve_layer(cli, spec, &id) != CLI_OK)
		return CLI_FAIL;
	r = tsr_layer_stat(cli->store, &id, &li);
	if (r >= 0)
		r = cli_layer_names(cli, &id, ", ", &names);
	if (r >= 0 && li.has_parent)
		r = cli_layer_names(cli, &li.parent, ", ", &pnames);
	if (r < 0) {
		cli_str_free(&names);
		cli_str_free(&pnames);
		return cli_layer_err(spec, r);
	}
	tsr_layer_id_to_hex(&li.id, hex);
	cli_printf("%-18s %s\n", "id:", hex);
	cli_printf("%-18s %s\n", "names:", cli_str_get(&names, "-"));
	if (li.has_parent) {
		tsr_layer_id_to_hex(&li.parent, hex);
		cli_printf("%-18s %s\n", "parent:", hex);
		cli_printf("%-18s %s\n", "parent names:",
		       cli_str_get(&pnames, "-"));
	} else {
		cli_printf("%-18s -\n", "parent:");
	}
	cli_printf("%-18s %llu (%s)\n", "size:", (unsigned long long)li.size,
	       cli_fmt_size(li.size, sz));
	cli_printf("%-18s %u\n", "depth:", li.depth);
	cli_printf("%-18s %llu\n", "entries:", (unsigned long long)li.entries);
	cli_printf("%-18s %llu\n", "data chunks:",
	       (unsigned long long)li.data_chunks);
	cli_printf("%-18s %llu\n", "hole chunks:",
	       (unsigned long long)(li.entries - li.data_chunks));
	cli_printf("%-18s %llu\n", "new objects:",
	       (unsigned long long)li.new_objects);
	cli_printf("%-18s %llu (%s)\n", "new stored bytes:",
	       (unsigned long long)li.new_stored_bytes,
	       cli_fmt_size(li.new_stored_bytes, sz));
	cli_printf("%-18s %u\n", "holds:", li.holds);
	cli_printf("%-18s %s\n", "created:", cli_fmt_time(li.created, created));
	cli_str_free(&names);
	cli_str_free(&pnames);
	return cli_print_layer_fs(cli, &id, 18);
}

/* ---- rm ------------------------------------------------------------------ */

struct name_probe {
	const char *want;
	bool found;
};

static int probe_name(const char *name, void *arg)
{
	struct name_probe *p = arg;

	if (strcmp(name, p->want) == 0)
		p->found = true;
	return 0;
}

static int run_rm(struct cli *cli, const struct cli_cmd *cmd, int argc,
		  char **argv)
{
	struct tsr_layer_info li;
	struct tsr_layer_id id;
	struct name_probe probe;
	char hex[TSR_ID_HEX_LEN + 1];
	const char *spec;
	int c, r;

	c = cli_no_options(cmd, argc, argv);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	spec = argv[optind];
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	if (cli_resolve_layer(cli, spec, &id) != CLI_OK)
		return CLI_FAIL;
	/* Given by one of its names: that name goes with the hold. */
	probe = (struct name_probe){ .want = spec };
	r = tsr_layer_names(cli->store, &id, probe_name, &probe);
	if (r < 0)
		return cli_layer_err(spec, r);
	r = tsr_layer_remove(cli->store, &id, probe.found ? spec : NULL);
	if (r < 0)
		return cli_layer_err(spec, r);
	if (tsr_layer_stat(cli->store, &id, &li) == 0)
		cli_printf("layer %s still has %u hold%s\n",
		       cli_fmt_short_id(&id, hex), li.holds,
		       li.holds == 1 ? "" : "s");
	return CLI_OK;
}

/* ---- table ------------------------------------------------------------------ */

const struct cli_cmd cli_layer_cmds[] = {
	{
		.name = "ls",
		.path = "layer ls",
		.args = "",
		.summary = "Lists the layers: short id, names, size, parent, "
			   "depth of the chain, data chunks of its own map, "
			   "objects it stored first, holds.",
		.run = run_ls,
	},
	{
		.name = "stat",
		.path = "layer stat",
		.args = "LAYER",
		.summary = "Shows the details of LAYER (a name, full id or "
			   "unique id prefix) as 'key: value' lines.",
		.run = run_stat,
	},
	{
		.name = "rm",
		.path = "layer rm",
		.args = "LAYER",
		.summary = "Drops one hold on LAYER (and the name, when LAYER "
			   "is given by name); the last hold removes it.",
		.details = "A layer that is the parent of layers or volumes "
			   "is not removed.  Chunk objects no\nlonger "
			   "referenced are reclaimed by garbage collection.\n",
		.run = run_rm,
	},
	{
		.name = "export",
		.path = "layer export",
		.args = "LAYER FILE",
		.summary = "Writes LAYER as a layer blob to FILE ('-': stdout): "
			   "its own map, its parent's id and the chunk objects "
			   "its parent does not provide.",
		.details = "Import it into another store with 'tessera layer "
			   "import' after its parent; it keeps\nits id.  The "
			   "format is in imagefmt/FORMAT.md.\n",
		.run = cli_layer_export,
	},
	{
		.name = "import",
		.path = "layer import",
		.args = "FILE [--name NAME] [--max-size SIZE]",
		.summary = "Reads a layer blob from FILE ('-': stdin), verifies "
			   "every object and the layer id, and adds the layer; "
			   "prints its id.",
		.details = "Options:\n"
			   "  --name NAME      name the imported layer\n"
			   "  --max-size SIZE  refuse a blob whose layer is larger "
			   "(default 256G): its header\n"
			   "                   is checked before anything is "
			   "allocated\n"
			   "The parent layer must be in the store already.  A "
			   "blob that does not verify\nleaves the store "
			   "unchanged.\n",
		.run = cli_layer_import,
	},
	{ 0 },
};
