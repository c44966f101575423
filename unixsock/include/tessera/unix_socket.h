/* SPDX-License-Identifier: MIT */
/*
 * Unix sockets with access control, for every socket tessera listens on
 * (vhost-user, the snapshotter, control.sock) and the clients that connect
 * to one of them.
 *
 * Server side: the socket file gets exactly the mode and group asked for,
 * whatever the umask, with no moment in which it exists with a wider mode
 * (it is bound inside a private directory and renamed into place), and
 * every accepted peer is checked with SO_PEERCRED against a policy: root
 * and the process's effective uid always, members of one group when the
 * policy names one.
 *
 * Client side: before a caller sends anything (a descriptor, a typed
 * password), the socket file and the process listening on it must belong
 * to root or to the caller's effective uid.
 *
 * Functions return 0 or a negative errno and print nothing.
 */
#ifndef TESSERA_UNIX_SOCKET_H
#define TESSERA_UNIX_SOCKET_H

#include <stdbool.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Mode of a socket file when the caller gives none. */
#define TSR_UNIX_MODE_DEFAULT 0600

/* Who may connect: uid 0 and the process's effective uid always; with
 * has_gid, also any process whose primary or supplementary groups hold
 * gid. */
struct tsr_unix_policy {
	bool has_gid;
	gid_t gid;
};

struct tsr_unix_listen_options {
	/* Permission bits of the socket file (no setuid/setgid/sticky
	 * bits); 0 means TSR_UNIX_MODE_DEFAULT. */
	mode_t mode;
	/* Group of the socket file; the owner is the process's euid. */
	bool has_gid;
	gid_t gid;
	int backlog;      /* listen(2); 0 means 16 */
	int sock_flags;   /* or'ed into socket(2)'s type: SOCK_NONBLOCK */
};

/* Creates a listening socket at path (SOCK_CLOEXEC always).  A socket
 * file nobody listens on is replaced; one a live server listens on gives
 * -EADDRINUSE, anything that is not a socket -EEXIST (never removed).
 * -ENAMETOOLONG when path (or the private name it is first bound under,
 * about 20 bytes longer) does not fit a sockaddr_un; -EINVAL for a mode
 * with bits beyond 0777.  On success *ret_fd is the socket. */
int tsr_unix_listen(const char *path, const struct tsr_unix_listen_options *o,
		    int *ret_fd);

/* Checks the peer of a connected socket against policy (NULL: root and
 * the euid only).  0: allowed; -EACCES: not allowed (*ret_uid, when not
 * NULL, says who it was, for the caller's log); another -errno when the
 * credentials cannot be read. */
int tsr_unix_peer_check(int fd, const struct tsr_unix_policy *policy,
			uid_t *ret_uid);

/* Says why tsr_unix_peer_check refused (r, and the uid it reported) in
 * buf, for the caller's log: "uid 1000 is not root, this process's uid
 * or in group 27".  Returns buf. */
const char *tsr_unix_refusal(int r, uid_t uid,
			     const struct tsr_unix_policy *policy, char *buf,
			     size_t size);

/* Connects to the socket at path (SOCK_CLOEXEC | sock_flags) after
 * checking that it is a socket owned by root or the caller's euid, then
 * checks that the peer's uid (SO_PEERCRED) is root or the euid.  -EPERM
 * when either is someone else's (nothing was sent), -ENOTSOCK when path
 * is not a socket, else connect's -errno. */
int tsr_unix_connect_verified(const char *path, int sock_flags, int *ret_fd);

/* Parses a mode for a socket ("0660", octal, at most 0777): 0 or
 * -EINVAL. */
int tsr_unix_parse_mode(const char *s, mode_t *ret);
/* Parses a group name or a numeric gid: 0, -ENOENT (no such group) or
 * -EINVAL. */
int tsr_unix_parse_group(const char *s, gid_t *ret);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_UNIX_SOCKET_H */
