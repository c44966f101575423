/* SPDX-License-Identifier: MIT */
/*
 * tessera init, tessera df: creating a store and reporting its usage.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- init ------------------------------------------------------------------ */

static int parse_codec(const struct cli_cmd *cmd, const char *text,
		       enum tsr_codec *ret_codec)
{
	static const enum tsr_codec codecs[] = {
		TSR_CODEC_ZSTD, TSR_CODEC_ZLIB, TSR_CODEC_NONE,
	};

	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		if (strcmp(text, cli_codec_name(codecs[i])) == 0) {
			*ret_codec = codecs[i];
			return CLI_OK;
		}
	}
	return cli_usage_err(cmd, "unknown codec '%s' (zstd, zlib or none)",
			     text);
}

static int run_init(struct cli *cli, const struct cli_cmd *cmd, int argc,
		    char **argv)
{
	static const struct option longopts[] = {
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "codec", required_argument, NULL, 'z' },
		CLI_LONGOPT_END,
	};
	struct tsr_init_options opts = {
		.chunk_size = TSR_CHUNK_SIZE_DEFAULT,
		.codec = TSR_CODEC_ZSTD,
	};
	char sz[CLI_SIZE_BUF];
	uint64_t chunk;
	int c, r;

	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "", longopts, first);
		if (c == CLI_OPT_END)
			break;
		switch (c) {
		case 'c':
			if (cli_parse_size_opt(cmd, "--chunk-size", optarg,
					       false, &chunk) != CLI_OK)
				return CLI_USAGE;
			if (chunk < TSR_CHUNK_SIZE_MIN ||
			    chunk > TSR_CHUNK_SIZE_MAX ||
			    (chunk & (chunk - 1)) != 0)
				return cli_usage_err(cmd, "--chunk-size must be a "
						     "power of two from 4K to "
						     "1M, not '%s'", optarg);
			opts.chunk_size = (uint32_t)chunk;
			break;
		case 'z':
			if (parse_codec(cmd, optarg, &opts.codec) != CLI_OK)
				return CLI_USAGE;
			break;
		default:
			return cli_opt_status(c);
		}
	}
	if (cli_positionals(cmd, argc, argv, 0, 0) != CLI_OK)
		return CLI_USAGE;

	r = tsr_store_init(cli->store_dir, &opts);
	switch (r) {
	case 0:
		break;
	case -EEXIST:
		cli_err("init: %s already holds a tessera store",
			cli->store_dir);
		return CLI_FAIL;
	case -ENOTEMPTY:
		cli_err("init: %s is not empty (a store needs an empty or new "
			"directory)", cli->store_dir);
		return CLI_FAIL;
	default:
		cli_errno(r, "init: %s", cli->store_dir);
		return CLI_FAIL;
	}
	cli_printf("Initialized tessera store in %s (chunk size %s, codec %s)\n",
	       cli->store_dir, cli_fmt_size(opts.chunk_size, sz),
	       cli_codec_name(opts.codec));
	return CLI_OK;
}

const struct cli_cmd cli_cmd_init = {
	.name = "init",
	.path = "init",
	.args = "[--chunk-size SIZE] [--codec zstd|zlib|none]",
	.summary = "Creates an empty store in the store directory (see "
		   "--store), which must be new or empty.",
	.details = "Options:\n"
		   "  --chunk-size SIZE  size of a chunk, the unit of "
		   "copy-on-write and dedup:\n"
		   "                     a power of two from 4K to 1M "
		   "(default 64K); fixed for\n"
		   "                     the life of the store\n"
		   "  --codec CODEC      compression of new chunk objects: "
		   "zstd (default), zlib\n"
		   "                     or none\n",
	.run = run_init,
	.local = true,
};

/* ---- df ------------------------------------------------------------------ */

static void print_bytes(const char *key, uint64_t bytes)
{
	char h[CLI_SIZE_BUF];

	cli_printf("%-20s %llu (%s)\n", key, (unsigned long long)bytes,
	       cli_fmt_size(bytes, h));
}

static void print_ratio(const char *key, uint64_t num, uint64_t den,
			const char *what)
{
	if (den == 0)
		cli_printf("%-20s - (%s)\n", key, what);
	else
		cli_printf("%-20s %.2fx (%s)\n", key, (double)num / (double)den,
		       what);
}

static int run_df(struct cli *cli, const struct cli_cmd *cmd, int argc,
		  char **argv)
{
	static const struct option longopts[] = { CLI_LONGOPT_END };
	struct tsr_store_stats st;
	uint64_t referenced_bytes, total;
	int c, r;

	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "", longopts, first);
		if (c == CLI_OPT_END)
			break;
		return cli_opt_status(c);
	}
	if (cli_positionals(cmd, argc, argv, 0, 0) != CLI_OK)
		return CLI_USAGE;
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	r = tsr_store_stat(cli->store, &st);
	if (r < 0) {
		cli_errno(r, "df: store %s", cli->store_dir);
		return CLI_FAIL;
	}
	referenced_bytes = st.referenced * (uint64_t)st.chunk_size;
	total = st.pack_bytes + st.volume_bytes + st.meta_bytes;

	cli_printf("%-20s %s\n", "store:", cli->store_dir);
	print_bytes("chunk size:", st.chunk_size);
	cli_printf("%-20s %s\n", "codec:", cli_codec_name(st.codec));
	cli_printf("%-20s %llu\n", "chunk objects:",
	       (unsigned long long)st.objects);
	print_bytes("logical bytes:", st.object_bytes);
	print_bytes("stored bytes:", st.stored_bytes);
	print_ratio("compression ratio:", st.object_bytes, st.stored_bytes,
		    "logical / stored");
	cli_printf("%-20s %llu\n", "referenced chunks:",
	       (unsigned long long)st.referenced);
	print_bytes("referenced bytes:", referenced_bytes);
	print_ratio("dedup ratio:", referenced_bytes, st.object_bytes,
		    "referenced / logical");
	cli_printf("%-20s %llu\n", "layers:", (unsigned long long)st.layers);
	cli_printf("%-20s %llu\n", "volumes:", (unsigned long long)st.volumes);
	print_bytes("pack files:", st.pack_bytes);
	print_bytes("volume files:", st.volume_bytes);
	print_bytes("metadata:", st.meta_bytes);
	print_bytes("total allocated:", total);
	return CLI_OK;
}

const struct cli_cmd cli_cmd_df = {
	.name = "df",
	.path = "df",
	.args = "",
	.summary = "Shows the store's totals: chunk objects, their logical "
		   "and stored bytes, the compression and dedup ratios, and "
		   "the space its files allocate.",
	.details = "Notes:\n"
		   "  logical bytes     uncompressed size of the distinct "
		   "chunk objects\n"
		   "  stored bytes      their size in the pack files "
		   "(compressed, with headers)\n"
		   "  referenced bytes  chunk size x the layer map entries "
		   "that point at objects;\n"
		   "                    dedup ratio = referenced / logical\n",
	.run = run_df,
};
