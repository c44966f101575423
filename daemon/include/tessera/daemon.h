/* SPDX-License-Identifier: MIT */
/*
 * The life cycle of a tessera daemon (`tessera mount`, `tessera serve`,
 * `tessera vhost`), written once: the stop signals, the one place the
 * daemon waits for its end, the store's control socket, the log line, the
 * file descriptor limit, and starting in the background with a readiness
 * report to the parent.  The front-ends (FUSE, vhost-user-blk, the
 * snapshotter) plug into it; this module knows nothing of them nor of the
 * command line: forwarded commands are run by a callback.
 *
 * A daemon owns the listening sockets and descriptors of its process (today
 * the control socket; the failover work adds the /dev/fuse descriptors it
 * hands to a holder).
 *
 * Functions return 0 or a negative errno and print nothing, except the log
 * functions, whose purpose is printing.
 */
#ifndef TESSERA_DAEMON_H
#define TESSERA_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tsr_daemon;

/*
 * Makes the calling process a daemon named name ("tessera mount": the log
 * lines say it, with the pid):
 *  - SIGINT and SIGTERM are blocked in the calling thread, and so in every
 *    thread it creates afterwards, and are read from a signalfd by
 *    tsr_daemon_wait(): no handler, no global state.  Call it before any
 *    thread is created (the store's included): a thread that does not block
 *    them would take them and die.  They stay blocked after
 *    tsr_daemon_free(), so a second Ctrl-C cannot cut a final flush short.
 *  - SIGPIPE and SIGHUP are ignored (a peer that goes away is an error
 *    return; a closed terminal does not stop a daemon unflushed).
 *  - The soft limit on open files is raised to the hard one: every live
 *    snapshot holds a loop device open, every client a socket.
 */
int tsr_daemon_new(const char *name, struct tsr_daemon **ret_daemon);
/* Stops the control server if it still runs, closes the daemon's
 * descriptors and frees it.  NULL is a no-op. */
void tsr_daemon_free(struct tsr_daemon *d);

/* Waits until SIGINT or SIGTERM arrives (returns the signal number) or
 * tsr_daemon_stop() was called (returns 0).  A negative errno when the
 * wait itself fails.  The daemon's main loop: the front-ends serve on
 * threads of their own meanwhile. */
int tsr_daemon_wait(struct tsr_daemon *d);
/* Makes tsr_daemon_wait() return 0 (now, or at its next call).  From any
 * thread; async-signal-safe.  A front-end whose end is the daemon's end
 * (the unmount of `tessera mount`) calls it when it returns. */
void tsr_daemon_stop(struct tsr_daemon *d);

/* Runs a front-end's serving loop, serve(arg), on a thread of its own until
 * it returns by itself (its end is the daemon's: an unmount) or the daemon
 * is told to stop (a signal, tsr_daemon_stop), when stop(arg) makes it
 * return.  Returns what serve returned, or a negative errno when the thread
 * could not start.  For daemons with one front-end (`tessera mount`,
 * `tessera vhost`); others start theirs and call tsr_daemon_wait(). */
int tsr_daemon_serve(struct tsr_daemon *d, int (*serve)(void *arg),
		     void (*stop)(void *arg), void *arg);

/* ---- the log ------------------------------------------------------------- */

/* Prints "<local time> <name>[<pid>]: <message>" as one line on stderr (the
 * log file once detached) and flushes it. */
void tsr_daemon_log(struct tsr_daemon *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same for one ready-made line, shaped as the front-ends' log callbacks
 * (tsr_vhost_options.log, tsr_snapshotter_options.log): arg is the daemon. */
void tsr_daemon_log_line(void *arg, const char *line);

/* ---- starting in the background --------------------------------------------- */

/*
 * Forks a daemon.  The child leaves the caller's session (no terminal
 * signals) and working directory (chdir "/"), closes close_fd (or -1: none),
 * runs child_main(arg, ready_fd) and exits with what it returns.  The
 * parent waits until the child calls tsr_daemon_report_ready(ready_fd):
 * 0 and *ret_pid; -ECHILD when the child exited first (it printed why on
 * the caller's stderr, which it shares until then and the child is
 * reaped); another negative errno when the fork failed.
 */
int tsr_daemon_spawn(int (*child_main)(void *arg, int ready_fd), void *arg,
		     int close_fd, pid_t *ret_pid);
/* The spawned daemon's stdio once it is ready: stdin from /dev/null,
 * stdout and stderr appended to log_path (created 0640), or /dev/null when
 * that cannot be opened.  0 or a negative errno (stdio is left as is). */
int tsr_daemon_detach_stdio(const char *log_path);
/* Tells the parent of tsr_daemon_spawn() that the daemon serves, and closes
 * ready_fd.  A parent that is gone is not an error: it was asked for. */
void tsr_daemon_report_ready(int ready_fd);

/* ---- the control socket ---------------------------------------------------------
 *
 * How `tessera COMMAND` works while a daemon owns the store.  A store has
 * one owner process (its lock), so a second process cannot open it; the
 * command line goes to the owner over STORE/control.sock with the client's
 * stdin, stdout, stderr and working directory (SCM_RIGHTS).  The owner runs
 * it on a thread of its own, one command at a time, and answers with the
 * exit status; the client prints nothing itself.
 *
 * Request:  "TSRC" | le32 version (1) | le32 argc | argc x (le32 len | bytes)
 *           with TSR_CONTROL_NFDS descriptors attached to its first byte.
 * Response: le32 exit status, sent when the command has finished.
 */

#define TSR_CONTROL_SOCKET "control.sock"   /* in the store directory, 0600 */
#define TSR_CONTROL_NFDS 4                  /* stdin, stdout, stderr, cwd */
#define TSR_CONTROL_MAX_ARGS 256
#define TSR_CONTROL_MAX_ARG 4096            /* bytes of one argument */

struct tsr_control_request {
	int argc;
	char **argv;  /* argc strings and a NULL, in one allocation: free(argv) */
	int fds[TSR_CONTROL_NFDS];  /* stdin, stdout, stderr, cwd; the caller's */
};

/*
 * Parses a request from the first len bytes of buf (untrusted) and the
 * nfds descriptors that came with it.  0 and *ret_req (its fds copied from
 * fds, not duplicated); -EAGAIN when buf is a valid beginning of a request,
 * with *ret_need (> len) the length it needs to go on; -EPROTO when it is
 * malformed (bad magic or version, no or too many arguments, an argument
 * too long or holding a NUL, not TSR_CONTROL_NFDS descriptors); -ENOMEM.
 */
int tsr_control_parse_request(const void *buf, size_t len, const int *fds,
			      size_t nfds, struct tsr_control_request *ret_req,
			      size_t *ret_need);

/* Client.  Connects to the control socket of the store at store_dir: 0 and
 * the socket in *ret_sock.  Before anything can be sent it checks who is
 * listening: the store directory, the socket file and the process on the
 * other end (SO_PEERCRED) must each belong to root or to the caller's
 * effective uid, else -EPERM (the caller's terminal, working directory and
 * typed input must not reach another user).  -ENOENT when there is no
 * store (no TSR_STORE_MARKER_FILE) or no socket there, -ECONNREFUSED when it is a dead daemon's,
 * -ENOTSOCK when the file is not a socket; other negative errnos as
 * connect(2). */
int tsr_control_connect(const char *store_dir, int *ret_sock);
/* Client.  Sends the command line argv[0..argc) with fds (stdin, stdout,
 * stderr, cwd) on sock and waits for its exit status: 0 and *ret_status.
 * -E2BIG when the command line exceeds the protocol's bounds (nothing
 * sent), -EPIPE when the daemon went away before answering. */
int tsr_control_call(int sock, int argc, char *const *argv,
		     const int fds[TSR_CONTROL_NFDS], int *ret_status);

/* Runs a forwarded command; returns its exit status.  Called on the control
 * thread, one request at a time; req and its descriptors are valid during
 * the call only. */
typedef int (*tsr_control_run_fn)(void *arg,
				  const struct tsr_control_request *req);

/* Server.  Listens on STORE/control.sock of store_dir (a leftover socket
 * file there is removed: the caller owns the store) and runs each request
 * of a local process of the same user (or root) with run(arg, req), on a
 * thread of its own.  At most one control server per daemon: -EBUSY. */
int tsr_daemon_control_start(struct tsr_daemon *d, const char *store_dir,
			     tsr_control_run_fn run, void *arg);
/* Server.  Waits for a command in progress to finish, stops listening and
 * removes the socket file.  A no-op when it is not running. */
void tsr_daemon_control_stop(struct tsr_daemon *d);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_DAEMON_H */
