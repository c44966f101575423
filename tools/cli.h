/* SPDX-License-Identifier: MIT */
/*
 * The `tessera` command: shared declarations of its subcommand modules.
 *
 * Every subcommand is a `struct cli_cmd` with a run() that returns the
 * process exit status (CLI_OK, CLI_FAIL, CLI_USAGE).  Errors are printed
 * once, where they are detected, as one line on stderr starting with
 * "tessera: ".  The library is used only through <tessera/store.h>.
 */
#ifndef TESSERA_CLI_H
#define TESSERA_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <tessera/store.h>

#define CLI_PROG "tessera"
#define CLI_DEFAULT_STORE "/var/lib/tessera"

/* Exit statuses. */
enum {
	CLI_OK = 0,     /* success */
	CLI_FAIL = 1,   /* the operation failed */
	CLI_USAGE = 2,  /* the command line was wrong */
};

/* The state of one run of the command, passed to every subcommand. */
struct cli {
	const char *store_dir;    /* --store, $TESSERA_STORE or the default */
	uint64_t cache_bytes;     /* --cache: the chunk cache; 0 = the library's default */
	struct tsr_store *store;  /* open store, or NULL until cli_open_store() */
	bool progress;            /* draw progress bars (stderr is a terminal) */
	/* Where this run reads and writes: the process's own stdio, or the
	 * descriptors a client handed to the daemon that owns the store
	 * (control.c, cli_control_run).  Relative paths resolve against cwd_fd. */
	FILE *out, *err;
	int in_fd, out_fd, err_fd, cwd_fd;
	bool store_borrowed;      /* the daemon's store: never closed here */
	/* cli_main, set by main(): how a daemon runs forwarded commands
	 * (cli_control_run).  A pointer, so that the commands, which the
	 * command table of tessera.c refers to, do not call back into it. */
	int (*run_command_line)(struct cli *cli, int argc, char **argv);
};

/* Makes cli the command running on this thread: messages, help and
 * cli_printf go to its streams. */
void cli_bind(struct cli *cli);
FILE *cli_out(void);
FILE *cli_errf(void);
int cli_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- control socket (control.c) ------------------------------------------ */

/* When a daemon owns the store and listens on its control socket, runs the
 * command line there with this process's stdin, stdout, stderr and working
 * directory, and sets *ret_status.  Returns 1 when forwarded, 0 when no
 * daemon answers (run locally), or a negative errno: -EPERM when the socket
 * is not served by root or this user (tsr_control_connect; nothing sent). */
int cli_control_forward(const char *store_dir, int argc, char **argv,
			int *ret_status);
struct tsr_control_request;
/* The run callback of a daemon's control server (tsr_daemon_control_start,
 * arg: the daemon's struct cli, with its store open): runs a forwarded
 * command line on the daemon's store with the client's descriptors, through
 * arg->run_command_line.  Returns its exit status. */
int cli_control_run(void *arg, const struct tsr_control_request *req);

struct cli_cmd;
typedef int (*cli_run_fn)(struct cli *cli, const struct cli_cmd *cmd,
			  int argc, char **argv);

/*
 * One subcommand, or a group of them (run == NULL, subs != NULL).
 * name is the word on the command line ("create"); path is the full
 * command ("volume create"), used in help and in error messages.
 */
struct cli_cmd {
	const char *name;
	const char *path;
	const char *args;     /* usage after the path: "NAME [--size SIZE]" */
	const char *summary;  /* one sentence: what it does */
	const char *details;  /* options and notes, may be NULL */
	cli_run_fn run;
	const struct cli_cmd *subs;  /* group members, ended by a zero entry */
	bool local;           /* runs here even when a daemon owns the store */
	bool hidden;          /* run by tessera itself: not listed in the help */
};

/* Command tables of the modules. */
extern const struct cli_cmd cli_cmd_init;
extern const struct cli_cmd cli_cmd_df;
extern const struct cli_cmd cli_cmd_commit;
extern const struct cli_cmd cli_cmd_gc;     /* cmd_maint.c */
extern const struct cli_cmd cli_cmd_fsck;   /* cmd_maint.c */
extern const struct cli_cmd cli_cmd_mount;  /* cmd_mount.c */
extern const struct cli_cmd cli_cmd_umount; /* cmd_mount.c */
extern const struct cli_cmd cli_cmd_vhost;  /* cmd_vhost.c */
extern const struct cli_cmd cli_cmd_serve;  /* cmd_serve.c */
extern const struct cli_cmd cli_cmd_image;  /* cmd_image.c */
extern const struct cli_cmd cli_cmd_rootfs_resolve; /* cmd_rootfs.c, hidden */
extern const struct cli_cmd cli_volume_cmds[];  /* ended by a zero entry */
extern const struct cli_cmd cli_layer_cmds[];   /* ended by a zero entry */

/* Layer blobs (cmd_layer_io.c). */
int cli_layer_export(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cli_layer_import(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);

/* The byte-moving volume commands (cmd_volume_io.c). */
int cli_volume_import(struct cli *cli, const struct cli_cmd *cmd, int argc,
		      char **argv);
int cli_volume_export(struct cli *cli, const struct cli_cmd *cmd, int argc,
		      char **argv);
int cli_volume_write(struct cli *cli, const struct cli_cmd *cmd, int argc,
		     char **argv);
int cli_volume_read(struct cli *cli, const struct cli_cmd *cmd, int argc,
		    char **argv);

/* ---- messages ----------------------------------------------------------- */

/* Prints "tessera: <message>\n" on the error stream (stderr). */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "tessera: <message>: <tsr_strerror(err)>\n" on stderr. */
void cli_errno(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints a one-line usage error naming the command; returns CLI_USAGE. */
int cli_usage_err(const struct cli_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints text wrapped at 78 columns; the cursor is at column col, and
 * continuation lines are indented by indent. */
void cli_print_wrapped(FILE *f, const char *text, int indent, int col);
/* Prints the help of cmd (or of a group) on stdout. */
void cli_print_help(const struct cli_cmd *cmd);

/* Error about a volume or a layer, with wording for the codes that mean
 * something there (-ENOENT "no such volume", ...).  Return CLI_FAIL. */
int cli_volume_err(const char *name, int err);
int cli_layer_err(const char *spec, int err);

/* Prints the 'filesystem:', 'fs uuid:' and 'fs label:' lines (keys padded
 * to width) of what a volume or layer holds, probed through the library
 * (cmd_mount.c).  CLI_OK, or CLI_FAIL when the image could not be read
 * (printed; the lines are printed anyway). */
int cli_print_volume_fs(struct cli *cli, const char *name, int width);
int cli_print_layer_fs(struct cli *cli, const struct tsr_layer_id *id,
		       int width);

/* ---- options ------------------------------------------------------------ */

/* Return values of cli_getopt() besides option characters. */
enum {
	CLI_OPT_END = -1,   /* no more options: positionals at optind */
	CLI_OPT_HELP = -2,  /* --help given: help printed, exit CLI_OK */
	CLI_OPT_BAD = -3,   /* usage error printed, exit CLI_USAGE */
};
/* Exit status for CLI_OPT_HELP / CLI_OPT_BAD. */
static inline int cli_opt_status(int c)
{
	return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
}

/* Every longopts table ends with these two entries. */
#define CLI_LONGOPT_END { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }

/*
 * getopt_long for a subcommand whose argv[0] is its name.  Options and
 * positionals may be mixed; "-h"/"--help" are added to shortopts.  The
 * first call on an argv must pass first = true (resets getopt).
 */
int cli_getopt(const struct cli_cmd *cmd, int argc, char **argv,
	       const char *shortopts, const struct option *longopts,
	       bool first);
/* For a command without options: CLI_OPT_END, or CLI_OPT_HELP /
 * CLI_OPT_BAD (printed). */
int cli_no_options(const struct cli_cmd *cmd, int argc, char **argv);
/* Checks that there are min..max positionals after optind (max < 0: no
 * limit); prints a usage error otherwise.  Returns CLI_OK or CLI_USAGE. */
int cli_positionals(const struct cli_cmd *cmd, int argc, char **argv,
		    int min, int max);
/* Checks a new volume or layer name (what: "volume"); CLI_OK or
 * CLI_USAGE (printed). */
int cli_check_name(const struct cli_cmd *cmd, const char *what,
		   const char *name);
/* Parses a size/offset option ("64K", "1G"); allow_zero for offsets.
 * Prints a usage error on failure.  Returns CLI_OK or CLI_USAGE. */
int cli_parse_size_opt(const struct cli_cmd *cmd, const char *opt,
		       const char *text, bool allow_zero, uint64_t *ret_val);

/* ---- store and layers ---------------------------------------------------- */

/* Opens cli->store_dir into cli->store, printing a clear error (locked,
 * not a store...) on failure.  Returns CLI_OK or CLI_FAIL. */
int cli_open_store(struct cli *cli);
void cli_close_store(struct cli *cli);
/* Opens the store and the volume; CLI_OK or CLI_FAIL (printed). */
int cli_open_volume(struct cli *cli, const char *name,
		    struct tsr_volume **ret_vol);

/* Resolves a layer spec (name, full id, unique prefix) with a one-line
 * error on failure (listing the candidates of an ambiguous prefix).
 * Returns CLI_OK or CLI_FAIL. */
int cli_resolve_layer(struct cli *cli, const char *spec,
		      struct tsr_layer_id *ret_id);

/* A growable string. */
struct cli_str {
	char *s;     /* NUL-terminated, or NULL when empty */
	size_t len;
	size_t cap;
};
int cli_str_add(struct cli_str *str, const char *text);  /* 0 or -ENOMEM */
void cli_str_free(struct cli_str *str);
static inline const char *cli_str_get(const struct cli_str *str,
				      const char *empty)
{
	return str->len ? str->s : empty;
}

/* Appends the names of layer id to str, separated by sep.  0 or -errno. */
int cli_layer_names(struct cli *cli, const struct tsr_layer_id *id,
		    const char *sep, struct cli_str *str);

/* ---- formatting ------------------------------------------------------------ */

#define CLI_SIZE_BUF 24
#define CLI_TIME_BUF 32
#define CLI_SHORT_ID 12

/* "512B", "64.0K", "1.0G"; returns buf. */
char *cli_fmt_size(uint64_t bytes, char buf[CLI_SIZE_BUF]);
/* Local time "2024-11-27 01:51:07"; returns buf. */
char *cli_fmt_time(uint64_t secs, char buf[CLI_TIME_BUF]);
/* First CLI_SHORT_ID hex digits of an id; buf holds TSR_ID_HEX_LEN + 1. */
char *cli_fmt_short_id(const struct tsr_layer_id *id,
		       char buf[TSR_ID_HEX_LEN + 1]);
const char *cli_codec_name(enum tsr_codec codec);

/* ---- I/O helpers ------------------------------------------------------------ */

#define CLI_PIECE (1u << 20)  /* unit of streaming I/O */

/* Reads until len bytes or end of file.  Bytes read, or -errno. */
ssize_t cli_read_full(int fd, void *buf, size_t len);
/* Writes all len bytes.  0 or -errno. */
int cli_write_full(int fd, const void *buf, size_t len);
bool cli_is_zero(const void *buf, size_t len);

/* ---- output paths (cli_output.c) -------------------------------------------- */

/* A path a command writes to, opened so that a failure removes only a
 * regular file this run created. */
struct cli_output {
	int fd;
	const char *path;
	int dirfd;
	bool created;      /* a new regular file: O_CREAT | O_EXCL made it */
	bool regular;      /* a regular file (an existing one is truncated) */
	struct stat st;    /* at open: which file `created` means */
};
/* Opens path (relative to cli->cwd_fd) for writing.  0 or -errno. */
int cli_output_open(struct cli *cli, const char *path, struct cli_output *o);
/* fsyncs when ok (EINVAL, EROFS from what is not a regular file are not
 * errors) and closes; when !ok or that failed, removes the file if this
 * run created it.  0 or -errno. */
int cli_output_close(struct cli_output *o, bool ok);

/* ---- progress ------------------------------------------------------------ */

/* A progress bar on stderr, drawn only when cli->progress.  ops can be
 * passed to the library as is. */
struct cli_progress {
	struct tsr_progress ops;
	const char *label;
	bool enabled;
	bool drawn;
	int last_permille;
	uint64_t last_ns;
};
void cli_progress_init(struct cli_progress *p, const struct cli *cli,
		       const char *label);
void cli_progress_update(struct cli_progress *p, uint64_t done,
			 uint64_t total);
/* Erases the bar. */
void cli_progress_done(struct cli_progress *p);

#endif /* TESSERA_CLI_H */
