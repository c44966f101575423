/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the `tessera` command: messages, option parsing, store
 * opening, layer resolution, formatting, streaming I/O and progress bars.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- streams -------------------------------------------------------------- */

/* The command running on this thread.  Thread-local rather than passed
 * down because the daemon runs forwarded commands on a thread of its own
 * while its main thread keeps the process's stdio. */
static _Thread_local struct cli *bound;

void cli_bind(struct cli *cli)
{
	bound = cli;
}

FILE *cli_out(void)
{
	return bound && bound->out ? bound->out : stdout;
}

FILE *cli_errf(void)
{
	return bound && bound->err ? bound->err : stderr;
}

int cli_printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vfprintf(cli_out(), fmt, ap);
	va_end(ap);
	return n;
}

/* ---- messages ------------------------------------------------------------ */

static void verr(const char *fmt, va_list ap, const char *suffix)
{
	/* Build the line first so that it reaches stderr in one write. */
	char line[1024];
	int n = snprintf(line, sizeof(line), CLI_PROG ": ");

	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (suffix) {
		size_t len = strlen(line);

		snprintf(line + len, sizeof(line) - len, ": %s", suffix);
	}
	fprintf(cli_errf(), "%s\n", line);
}

void cli_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(fmt, ap, NULL);
	va_end(ap);
}

void cli_errno(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(fmt, ap, tsr_strerror(err));
	va_end(ap);
}

int cli_usage_err(const struct cli_cmd *cmd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cmd)
		cli_err("%s: %s (usage: " CLI_PROG " %s%s%s)", cmd->path, msg,
			cmd->path, *cmd->args ? " " : "", cmd->args);
	else
		cli_err("%s (see '" CLI_PROG " --help')", msg);
	return CLI_USAGE;
}

void cli_print_wrapped(FILE *f, const char *text, int indent, int col)
{
	bool line_start = true;

	while (*text) {
		size_t word = strcspn(text, " ");

		if (!line_start && col + 1 + (int)word > 78) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
			line_start = true;
		}
		if (!line_start) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", (int)word, text);
		col += (int)word;
		line_start = false;
		text += word;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

void cli_print_help(const struct cli_cmd *cmd)
{
	cli_printf("Usage: " CLI_PROG " %s%s%s\n\n", cmd->path,
	       *cmd->args ? " " : "", cmd->args);
	cli_print_wrapped(cli_out(), cmd->summary, 0, 0);
	if (cmd->subs) {
		cli_printf("\nCommands:\n");
		for (const struct cli_cmd *c = cmd->subs; c->name; c++) {
			cli_printf("  %-8s ", c->name);
			cli_print_wrapped(cli_out(), c->summary, 11, 11);
		}
		cli_printf("\nRun '" CLI_PROG " help %s COMMAND' for the options of "
		       "a command.\n", cmd->path);
	}
	if (cmd->details)
		cli_printf("\n%s", cmd->details);
}

int cli_volume_err(const char *name, int err)
{
	switch (err) {
	case -ENOENT:
		cli_err("volume '%s': no such volume", name);
		break;
	case -EEXIST:
		cli_err("volume '%s': a volume of that name already exists",
			name);
		break;
	case -EBUSY:
		cli_err("volume '%s': busy (open by another user)", name);
		break;
	case -ESTALE:
		cli_err("volume '%s': was committed or removed meanwhile", name);
		break;
	default:
		cli_errno(err, "volume '%s'", name);
		break;
	}
	return CLI_FAIL;
}

int cli_layer_err(const char *spec, int err)
{
	switch (err) {
	case -ENOENT:
		cli_err("layer '%s': no such layer", spec);
		break;
	case -EBUSY:
		cli_err("layer '%s': in use as the parent of layers or volumes",
			spec);
		break;
	default:
		cli_errno(err, "layer '%s'", spec);
		break;
	}
	return CLI_FAIL;
}

/* ---- options ------------------------------------------------------------- */

int cli_getopt(const struct cli_cmd *cmd, int argc, char **argv,
	       const char *shortopts, const struct option *longopts,
	       bool first)
{
	/* ':' first: getopt reports a missing value as ':' and prints
	 * nothing; we print one line ourselves. */
	char opts[64];
	int c;

	snprintf(opts, sizeof(opts), ":h%s", shortopts);
	if (first)
		optind = 0;  /* glibc: full re-initialization */
	c = getopt_long(argc, argv, opts, longopts, NULL);
	switch (c) {
	case -1:
		return CLI_OPT_END;
	case 'h':
		cli_print_help(cmd);
		return CLI_OPT_HELP;
	case ':':
		cli_usage_err(cmd, "option '%s' needs a value",
			      argv[optind - 1]);
		return CLI_OPT_BAD;
	case '?':
		if (optopt)
			cli_usage_err(cmd, "unknown option '-%c'", optopt);
		else
			cli_usage_err(cmd, "unknown option '%s'",
				      argv[optind - 1]);
		return CLI_OPT_BAD;
	default:
		return c;
	}
}

int cli_no_options(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = { CLI_LONGOPT_END };

	return cli_getopt(cmd, argc, argv, "", longopts, true);
}

int cli_check_name(const struct cli_cmd *cmd, const char *what,
		   const char *name)
{
	if (!*name)
		return cli_usage_err(cmd, "the %s name is empty", what);
	if (strlen(name) > TSR_NAME_MAX)
		return cli_usage_err(cmd, "the %s name is longer than %d bytes",
				     what, TSR_NAME_MAX);
	return CLI_OK;
}

int cli_positionals(const struct cli_cmd *cmd, int argc, char **argv,
		    int min, int max)
{
	int n = argc - optind;

	if (n < min)
		return cli_usage_err(cmd, "missing argument");
	if (max >= 0 && n > max)
		return cli_usage_err(cmd, "unexpected argument '%s'",
				     argv[optind + max]);
	return CLI_OK;
}

int cli_parse_size_opt(const struct cli_cmd *cmd, const char *opt,
		       const char *text, bool allow_zero, uint64_t *ret_val)
{
	uint64_t v;
	int r = tsr_parse_size(text, &v);

	if (r == -ERANGE)
		return cli_usage_err(cmd, "%s '%s' is too large", opt, text);
	if (r < 0)
		return cli_usage_err(cmd, "invalid size '%s' for %s (a number "
				     "with an optional K, M, G or T suffix)",
				     text, opt);
	if (v == 0 && !allow_zero)
		return cli_usage_err(cmd, "%s must be greater than 0", opt);
	*ret_val = v;
	return CLI_OK;
}

/* ---- store and layers ------------------------------------------------------ */

int cli_open_store(struct cli *cli)
{
	const char *dir = cli->store_dir;
	int r, pid;

	if (cli->store)
		return CLI_OK;
	r = tsr_store_open(dir, &(struct tsr_open_options){ .cache_bytes = cli->cache_bytes },
			   &cli->store);
	if (r >= 0)
		return CLI_OK;
	cli->store = NULL;
	switch (r) {
	case -EBUSY:
		pid = tsr_store_owner(dir);
		if (pid > 0)
			cli_err("store %s is locked by pid %d", dir, pid);
		else
			cli_err("store %s is locked by another process", dir);
		break;
	case TSR_ERR_NOT_STORE:
		cli_err("%s is not a tessera store (run '" CLI_PROG " init')",
			dir);
		break;
	case -ENOENT:
		cli_err("store %s does not exist (run '" CLI_PROG " init')",
			dir);
		break;
	case TSR_ERR_VERSION:
		cli_err("store %s has a format this version of " CLI_PROG
			" does not read", dir);
		break;
	default:
		cli_errno(r, "store %s", dir);
		break;
	}
	return CLI_FAIL;
}

void cli_close_store(struct cli *cli)
{
	if (cli->store && !cli->store_borrowed)
		tsr_store_close(cli->store);
	cli->store = NULL;
}

int cli_open_volume(struct cli *cli, const char *name,
		    struct tsr_volume **ret_vol)
{
	int r;

	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	r = tsr_volume_open(cli->store, name, ret_vol);
	if (r < 0)
		return cli_volume_err(name, r);
	return CLI_OK;
}

struct matches {
	struct cli_str list;
	int shown;
	int count;
};

static int collect_match(const struct tsr_layer_id *id, const char *name,
			 void *arg)
{
	struct matches *m = arg;
	char hex[TSR_ID_HEX_LEN + 1];
	char item[TSR_ID_HEX_LEN + TSR_NAME_MAX + 8];

	m->count++;
	if (m->shown >= 8)
		return 0;
	cli_fmt_short_id(id, hex);
	if (name && *name)
		snprintf(item, sizeof(item), "%s%s... (%s)",
			 m->shown ? ", " : "", hex, name);
	else
		snprintf(item, sizeof(item), "%s%s...", m->shown ? ", " : "",
			 hex);
	m->shown++;
	return cli_str_add(&m->list, item);
}

int cli_resolve_layer(struct cli *cli, const char *spec,
		      struct tsr_layer_id *ret_id)
{
	struct matches m = { 0 };
	int r;

	r = tsr_layer_resolve(cli->store, spec, ret_id);
	if (r >= 0)
		return CLI_OK;
	if (r != TSR_ERR_AMBIGUOUS)
		return cli_layer_err(spec, r);

	r = tsr_layer_matches(cli->store, spec, collect_match, &m);
	if (r < 0 || m.shown == 0)
		cli_err("layer '%s': ambiguous, matches more than one layer",
			spec);
	else if (m.count > m.shown)
		cli_err("layer '%s': ambiguous, matches %s and %d more", spec,
			m.list.s, m.count - m.shown);
	else
		cli_err("layer '%s': ambiguous, matches %s", spec, m.list.s);
	cli_str_free(&m.list);
	return CLI_FAIL;
}

int cli_str_add(struct cli_str *str, const char *text)
{
	size_t n = strlen(text);

	if (str->len + n + 1 > str->cap) {
		size_t cap = str->cap ? str->cap : 64;
		char *s;

		while (cap < str->len + n + 1)
			cap *= 2;
		s = realloc(str->s, cap);
		if (!s)
			return -ENOMEM;
		str->s = s;
		str->cap = cap;
	}
	memcpy(str->s + str->len, text, n + 1);
	str->len += n;
	return 0;
}

void cli_str_free(struct cli_str *str)
{
	free(str->s);
	*str = (struct cli_str){ 0 };
}

struct names_ctx {
	struct cli_str *str;
	const char *sep;
	bool any;
};

static int add_name(const char *name, void *arg)
{
	struct names_ctx *c = arg;
	int r;

	if (c->any) {
		r = cli_str_add(c->str, c->sep);
		if (r < 0)
			return r;
	}
	c->any = true;
	return cli_str_add(c->str, name);
}

int cli_layer_names(struct cli *cli, const struct tsr_layer_id *id,
		    const char *sep, struct cli_str *str)
{
	struct names_ctx c = { .str = str, .sep = sep, .any = false };
	int r = tsr_layer_names(cli->store, id, add_name, &c);

	return r < 0 ? r : 0;
}

/* ---- formatting ------------------------------------------------------------ */

char *cli_fmt_size(uint64_t bytes, char buf[CLI_SIZE_BUF])
{
	static const char units[] = "KMGTPE";
	double v = (double)bytes;
	int i = -1;

	if (bytes < 1024) {
		snprintf(buf, CLI_SIZE_BUF, "%lluB", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024.0 && i < 5) {
		v /= 1024.0;
		i++;
	}
	snprintf(buf, CLI_SIZE_BUF, "%.1f%c", v, units[i]);
	return buf;
}

char *cli_fmt_time(uint64_t secs, char buf[CLI_TIME_BUF])
{
	time_t t = (time_t)secs;
	struct tm tm;

	if (secs == 0 || !localtime_r(&t, &tm) ||
	    strftime(buf, CLI_TIME_BUF, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, CLI_TIME_BUF, "-");
	return buf;
}

char *cli_fmt_short_id(const struct tsr_layer_id *id,
		       char buf[TSR_ID_HEX_LEN + 1])
{
	tsr_layer_id_to_hex(id, buf);
	buf[CLI_SHORT_ID] = '\0';
	return buf;
}

const char *cli_codec_name(enum tsr_codec codec)
{
	switch (codec) {
	case TSR_CODEC_NONE:
		return "none";
	case TSR_CODEC_ZLIB:
		return "zlib";
	case TSR_CODEC_ZSTD:
		return "zstd";
	}
	return "unknown";
}

/* ---- I/O helpers ------------------------------------------------------------ */

ssize_t cli_read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int cli_write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

bool cli_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* p[0] is zero and every byte equals the one before it. */
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* ---- progress ------------------------------------------------------------ */

#define BAR_WIDTH 30
#define REDRAW_NS (100 * 1000 * 1000ull)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void progress_cb(void *arg, uint64_t done, uint64_t total)
{
	cli_progress_update(arg, done, total);
}

void cli_progress_init(struct cli_progress *p, const struct cli *cli,
		       const char *label)
{
	*p = (struct cli_progress){
		.ops = { .update = progress_cb, .arg = p },
		.label = label,
		.enabled = cli->progress,
		.last_permille = -1,
	};
}

void cli_progress_update(struct cli_progress *p, uint64_t done,
			 uint64_t total)
{
	char bar[BAR_WIDTH + 1], a[CLI_SIZE_BUF], b[CLI_SIZE_BUF];
	int permille, fill;
	uint64_t now;

	if (!p->enabled)
		return;
	if (total == 0 || done > total)
		done = total;
	permille = total ? (int)((double)done * 1000.0 / (double)total) : 1000;
	if (permille == p->last_permille)
		return;
	now = now_ns();
	if (done != total && p->drawn && now - p->last_ns < REDRAW_NS)
		return;
	p->last_permille = permille;
	p->last_ns = now;
	fill = permille * BAR_WIDTH / 1000;
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
	bar[BAR_WIDTH] = '\0';
	fprintf(cli_errf(), "\r%-.24s [%s] %3d%%  %s / %s\033[K", p->label, bar,
		permille / 10, cli_fmt_size(done, a), cli_fmt_size(total, b));
	fflush(cli_errf());
	p->drawn = true;
}

void cli_progress_done(struct cli_progress *p)
{
	if (p->drawn) {
		fputs("\r\033[K", cli_errf());
		fflush(cli_errf());
	}
	p->drawn = false;
}
