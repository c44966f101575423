/* SPDX-License-Identifier: MIT */
/*
 * tessera gc, tessera fsck: reclaiming space and checking a store.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- gc ------------------------------------------------------------------ */

static int run_gc(struct cli *cli, const struct cli_cmd *cmd, int argc,
		  char **argv)
{
	struct tsr_gc_stats st;
	struct cli_progress bar;
	char a[CLI_SIZE_BUF], b[CLI_SIZE_BUF];
	int c, r;

	c = cli_no_options(cmd, argc, argv);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 0, 0) != CLI_OK)
		return CLI_USAGE;
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;

	cli_progress_init(&bar, cli, "gc");
	r = tsr_store_gc(cli->store, &bar.ops, &st);
	cli_progress_done(&bar);
	if (r < 0) {
		cli_errno(r, "gc: store %s", cli->store_dir);
		return CLI_FAIL;
	}
	cli_printf("%-22s %llu (%s stored)\n", "objects removed:",
	       (unsigned long long)st.objects_removed,
	       cli_fmt_size(st.object_bytes_removed, a));
	cli_printf("%-22s %llu compacted (%s copied), %llu removed\n", "packs:",
	       (unsigned long long)st.packs_compacted,
	       cli_fmt_size(st.live_bytes_copied, a),
	       (unsigned long long)st.packs_removed);
	cli_printf("%-22s %llu (%s)\n", "volume bytes freed:",
	       (unsigned long long)st.volume_bytes_freed,
	       cli_fmt_size(st.volume_bytes_freed, a));
	cli_printf("%-22s %s -> %s", "allocated:",
	       cli_fmt_size(st.allocated_before, a),
	       cli_fmt_size(st.allocated_after, b));
	if (st.allocated_before >= st.allocated_after)
		cli_printf(" (%s freed)\n",
		       cli_fmt_size(st.allocated_before - st.allocated_after,
				    a));
	else
		cli_printf("\n");
	return CLI_OK;
}

const struct cli_cmd cli_cmd_gc = {
	.name = "gc",
	.path = "gc",
	.args = "",
	.summary = "Reclaims the space of chunk objects no layer uses any "
		   "more, and of stale bytes in closed volumes' data files.",
	.details =
		"Objects are garbage once the last layer that used them is "
		"removed ('layer rm').\ngc punches them out of their pack "
		"files, rewrites packs that are mostly\ngarbage, and prints "
		"what it freed.  It is safe to interrupt: run it again to\n"
		"finish.\n",
	.run = run_gc,
};

/* ---- fsck ------------------------------------------------------------------ */

struct fsck_out {
	struct cli_progress *bar;
	uint64_t lines;
};

/* One finding: a line on stdout, now, with the progress bar out of the
 * way. */
static void print_finding(void *arg, const char *line)
{
	struct fsck_out *o = arg;

	if (o->bar->drawn) {
		cli_progress_done(o->bar);
		o->bar->last_permille = -1; /* redraw at the next update */
	}
	cli_printf("%s\n", line);
	fflush(cli_out());
	o->lines++;
}

static int run_fsck(struct cli *cli, const struct cli_cmd *cmd, int argc,
		    char **argv)
{
	static const struct option longopts[] = {
		{ "repair", no_argument, NULL, 'r' },
		CLI_LONGOPT_END,
	};
	struct tsr_fsck_stats st;
	struct cli_progress bar;
	struct fsck_out out = { .bar = &bar };
	char sz[CLI_SIZE_BUF];
	unsigned flags = 0;
	int c, r;

	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "", longopts, first);
		if (c == CLI_OPT_END)
			break;
		if (c != 'r')
			return cli_opt_status(c);
		flags |= TSR_FSCK_REPAIR;
	}
	if (cli_positionals(cmd, argc, argv, 0, 0) != CLI_OK)
		return CLI_USAGE;
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;

	cli_progress_init(&bar, cli, "fsck");
	r = tsr_store_fsck(cli->store, flags, print_finding, &out, &bar.ops,
			   &st);
	cli_progress_done(&bar);
	if (r < 0) {
		cli_errno(r, "fsck: store %s", cli->store_dir);
		return CLI_FAIL;
	}
	cli_printf("%llu objects checked (%s), %llu damaged; %llu refcount "
	       "errors; %llu damaged layers, %llu damaged volumes\n",
	       (unsigned long long)st.objects_checked,
	       cli_fmt_size(st.bytes_checked, sz),
	       (unsigned long long)st.damaged_objects,
	       (unsigned long long)st.refcount_errors,
	       (unsigned long long)st.damaged_layers,
	       (unsigned long long)st.damaged_volumes);
	if (st.stale_readers)
		cli_printf("%llu stale reader slots cleared\n",
		       (unsigned long long)st.stale_readers);
	if (flags & TSR_FSCK_REPAIR)
		cli_printf("%llu findings repaired, %llu could not be repaired\n",
		       (unsigned long long)st.repaired,
		       (unsigned long long)st.unrepairable);
	if (r == 0) {
		cli_printf("store %s is clean%s\n", cli->store_dir,
		       out.lines && (flags & TSR_FSCK_REPAIR) ?
			       " (after repair)" : "");
		return CLI_OK;
	}
	cli_printf("store %s has damage (%llu finding%s)%s\n", cli->store_dir,
	       (unsigned long long)out.lines, out.lines == 1 ? "" : "s",
	       flags & TSR_FSCK_REPAIR ? "" :
			"; 'fsck --repair' rebuilds what the packs allow");
	return CLI_FAIL;
}

const struct cli_cmd cli_cmd_fsck = {
	.name = "fsck",
	.path = "fsck",
	.args = "[--repair]",
	.summary = "Checks every chunk object against its digest, every "
		   "refcount, layer map and volume, printing each finding as "
		   "one line, then a summary.",
	.details =
		"A finding names the damaged object by its digest and the "
		"layers that use it.\nReads of a damaged object fail with EIO; "
		"they never return other bytes.\n"
		"\nOptions:\n"
		"  --repair   rebuild what can be rebuilt from the pack files "
		"(index entries,\n"
		"             refcounts); damaged chunk data cannot be "
		"restored\n"
		"\nExit status: 0 the store is clean (or every finding was "
		"repaired), 1 damage\nremains or the check could not run, 2 "
		"usage error.\n",
	.run = run_fsck,
};
