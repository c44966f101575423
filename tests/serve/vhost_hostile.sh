#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Hostile peers of `tessera serve` (docs/security.md):
#  - its sockets are 0600 whatever the umask (umask 000 here), and a peer
#    of another uid is refused by SO_PEERCRED even where the mode would
#    let it connect (mode=0666; the snapshotter socket chmod'ed 0666);
#  - group=/mode= on a vhost device let that group's members in;
#  - a vhost-user front-end that shrinks its memory file (rings gone; data
#    buffers gone) gets its device reset while the daemon keeps serving the
#    other devices, FUSE and the control socket, and the device takes the
#    next front-end.
# Root (serve mounts FUSE; the other uid is nobody).
#   vhost_hostile.sh TESSERA
set -u
T=${1:?usage: vhost_hostile.sh TESSERA}
HERE=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: setpriv not installed"; exit 77; }
[ -d /dev/shm ] || { echo "SKIP: no /dev/shm"; exit 77; }
NOBODY=$(id -u nobody 2>/dev/null) || { echo "SKIP: no user nobody"; exit 77; }
NOGROUP=$(id -g nobody)
# The python nobody runs: not a shim under root's home.
PYN=/usr/bin/python3
setpriv --reuid="$NOBODY" --regid="$NOGROUP" --clear-groups "$PYN" -c '' 2>/dev/null \
	|| { echo "SKIP: nobody cannot run $PYN"; exit 77; }

W=$(mktemp -d /tmp/tsr-serve-hostile-XXXXXX)
chmod 755 "$W"   # nobody must reach the sockets for the checks to matter
cp "$HERE/vhost_client.py" "$W/client.py" && chmod 644 "$W/client.py"  # and read the client
S=$W/store SPID=
. "$HERE/serve_lib.sh"
as_nobody() { setpriv --reuid="$NOBODY" --regid="$NOGROUP" --clear-groups "$@"; }
alive() { kill -0 "$SPID" 2>/dev/null; }

t init >/dev/null
t volume create v --size 64M >/dev/null
t volume create w --size 16M >/dev/null
t volume create g --size 16M >/dev/null
t volume create b --size 32M >/dev/null
t commit b --name base >/dev/null

t serve --socket "$W/snap.sock" --mount "$W/mnt" \
	--vhost "volume=v,socket=$W/a.sock,mode=9" >"$W/err" 2>&1 && ko "mode=9 accepted" \
	|| { grep -q "mode must be octal" "$W/err" && ok "mode=9 refused" || ko "unclear error: $(cat "$W/err")"; }
t serve --socket "$W/snap.sock" --mount "$W/mnt" \
	--vhost "volume=v,socket=$W/a.sock,group=no-such-group-x" >"$W/err" 2>&1 \
	&& ko "an unknown group accepted" \
	|| { grep -q "no group 'no-such-group-x'" "$W/err" && ok "unknown group refused" \
		|| ko "unclear error: $(cat "$W/err")"; }
t vhost --volume v --socket "$W/a.sock" --socket-mode 2777 >"$W/err" 2>&1 \
	&& ko "vhost --socket-mode 2777 accepted" \
	|| { grep -q "socket-mode must be" "$W/err" && ok "vhost --socket-mode 2777 refused" \
		|| ko "unclear error: $(cat "$W/err")"; }

# Everything the daemon creates, created under umask 000.
(umask 000; exec "$T" --store "$S" serve --socket "$W/snap.sock" --mount "$W/mnt" \
	--vhost "volume=v,socket=$W/v.sock" --vhost "layer=base,socket=$W/l.sock" \
	--vhost "volume=w,socket=$W/w.sock,mode=0666" \
	--vhost "volume=g,socket=$W/g.sock,group=$NOGROUP" \
	>"$W/serve.log" 2>&1) &
SPID=$!
for _ in $(seq 100); do
	[ -S "$W/v.sock" ] && [ -S "$W/l.sock" ] && [ -S "$W/w.sock" ] && [ -S "$W/g.sock" ] &&
		[ -S "$W/snap.sock" ] && break
	alive || break
	sleep 0.1
done
[ -S "$W/v.sock" ] && [ -S "$W/g.sock" ] && [ -S "$W/snap.sock" ] && ok "serve up with four vhost devices" \
	|| { ko "serve did not come up: $(cat "$W/serve.log")"; exit 1; }

# ---- socket modes and peer credentials ---------------------------------------------
m=$(stat -c %a "$W/v.sock") ms=$(stat -c %a "$W/snap.sock")
[ "$m" = 600 ] && [ "$ms" = 600 ] && ok "umask 000: vhost and snapshotter sockets are 0600" \
	|| ko "umask 000: modes $m and $ms"
m=$(stat -c '%a %g' "$W/g.sock")
[ "$m" = "660 $NOGROUP" ] && ok "group=: socket 0660 of that group" || ko "group= socket: $m"
[ "$(stat -c %a "$W/w.sock")" = 666 ] && ok "mode=0666 honoured" || ko "mode=0666: $(stat -c %a "$W/w.sock")"
out=$(as_nobody "$PYN" "$W/client.py" "$W/v.sock")
case $out in *"ermission denied"*) ok "another uid cannot open a 0600 socket";;
	*) ko "another uid on the 0600 socket: $out";; esac
out=$(as_nobody "$PYN" "$W/client.py" "$W/w.sock")
case $out in capacity=*) ko "another uid was served through a 0666 socket: $out";;
	*) grep -q "refused a front-end: uid $NOBODY is not root" "$W/serve.log" &&
		ok "SO_PEERCRED refuses another uid on a 0666 socket: $(grep "refused a front-end" "$W/serve.log" | head -1)" \
		|| ko "no refusal logged: $out";; esac
out=$(as_nobody "$PYN" "$W/client.py" "$W/g.sock")
[ "$out" = "capacity=32768 num_queues=1 ro=0" ] && ok "a member of the socket's group is served" \
	|| ko "group member: $out"
out=$(python3 "$HERE/vhost_client.py" "$W/w.sock")
[ "$out" = "capacity=32768 num_queues=1 ro=0" ] && ok "root is served" || ko "root: $out"
# The snapshotter socket, opened up by hand: the peer check still refuses.
chmod 666 "$W/snap.sock"
out=$(cd "$W" && as_nobody "$PYN" - "$W/snap.sock" 2>&1 <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
try:
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(9))
    print("eof" if s.recv(64) == b"" else "answered")
except (ConnectionResetError, BrokenPipeError):
    print("eof")
PY
)
[ "$out" = eof ] && grep -q "refusing a client: uid $NOBODY is not root" "$W/serve.log" \
	&& ok "snapshotter: SO_PEERCRED refuses another uid" || ko "snapshotter with another uid: $out"
chmod 600 "$W/snap.sock"

# ---- a front-end that shrinks its memory ------------------------------------------------
out=$(python3 "$HERE/vhost_shrink.py" rings "$W/v.sock")
[ "$out" = "closed after shrinking rings" ] && ok "rings shrunk: $out" || ko "rings shrunk: $out"
alive && ok "the daemon survived a shrunk ring" || { ko "the daemon died: $(tail -5 "$W/serve.log")"; exit 1; }
out=$(python3 "$HERE/vhost_client.py" "$W/l.sock")
[ "$out" = "capacity=65536 num_queues=1 ro=1" ] && ok "another device still serves" || ko "other device: $out"
ls "$W/mnt" >/dev/null && grep -q " $W/mnt fuse" /proc/self/mounts && ok "FUSE still serves" \
	|| ko "FUSE mount gone"
t volume ls >"$W/ls" 2>&1 && grep -q "^v " "$W/ls" && ok "the control socket still serves" \
	|| ko "volume ls: $(cat "$W/ls")"
out=$(python3 "$HERE/vhost_shrink.py" data "$W/l.sock")
[ "$out" = "closed after shrinking data" ] && ok "data buffers shrunk (layer, store copy): $out" \
	|| ko "data shrunk: $out"
alive && ok "the daemon survived shrunk data buffers" || { ko "the daemon died: $(tail -5 "$W/serve.log")"; exit 1; }
# On a volume the read may be the kernel's (io_uring, or the store's pread
# when io_uring is unavailable): EFAULT, an IOERR, no reset.
out=$(python3 "$HERE/vhost_shrink.py" data-or-ioerr "$W/v.sock")
case $out in "closed after shrinking data") want=3;;
	"request failed (IOERR) after shrinking data") want=2;;
	*) want=x;; esac
[ "$want" != x ] && ok "data buffers shrunk (volume): $out" || ko "data shrunk on the volume: $out"
alive && ok "the daemon survived shrunk data buffers on a volume" \
	|| { ko "the daemon died: $(tail -5 "$W/serve.log")"; exit 1; }
n=$(grep -c "guest memory went away under its mapping" "$W/serve.log")
[ "$n" = "$want" ] && ok "each device reset was logged ($n)" || ko "$n reset lines: $(cat "$W/serve.log")"
grep -q "malformed ring" "$W/serve.log" && ko "a lost memory was logged as a malformed ring" \
	|| ok "no malformed-ring noise"
out=$(python3 "$HERE/vhost_client.py" "$W/v.sock")
[ "$out" = "capacity=131072 num_queues=1 ro=0" ] && ok "the reset device takes the next front-end" \
	|| ko "after reset: $out"

kill -TERM "$SPID"
wait "$SPID"
rc=$?
SPID=
[ $rc = 0 ] && ok "SIGTERM: serve exits 0" || ko "serve exit $rc: $(tail -5 "$W/serve.log")"

# ---- the same options from serve's config file and tessera vhost ---------------------
printf 'socket_group = %s\n' "$NOGROUP" >"$W/serve.conf"
(umask 000; exec "$T" --store "$S" serve --socket "$W/snap.sock" --mount "$W/mnt" \
	--config "$W/serve.conf" >"$W/serve.log" 2>&1) &
SPID=$!
for _ in $(seq 100); do [ -S "$W/snap.sock" ] && break; alive || break; sleep 0.1; done
m=$(stat -c '%a %g' "$W/snap.sock" 2>&1)
[ "$m" = "660 $NOGROUP" ] && ok "socket_group: snapshotter socket 0660 of that group" \
	|| ko "socket_group: $m $(cat "$W/serve.log")"
out=$(cd "$W" && as_nobody "$PYN" - "$W/snap.sock" 2>&1 <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000"))
print("answered" if s.recv(64) else "eof")
PY
)
[ "$out" = answered ] && ok "socket_group: a member talks HTTP/2 with the snapshotter" \
	|| ko "socket_group member: $out"
kill -TERM "$SPID"
wait "$SPID"
SPID=
(umask 000; exec "$T" --store "$S" vhost --volume w --socket "$W/x.sock" \
	--socket-group "$NOGROUP" >"$W/vhost.log" 2>&1) &
SPID=$!
for _ in $(seq 100); do [ -S "$W/x.sock" ] && break; alive || break; sleep 0.1; done
m=$(stat -c '%a %g' "$W/x.sock" 2>&1)
[ "$m" = "660 $NOGROUP" ] && ok "vhost --socket-group: socket 0660 of that group" \
	|| ko "vhost --socket-group: $m $(cat "$W/vhost.log")"
out=$(as_nobody "$PYN" "$W/client.py" "$W/x.sock")
[ "$out" = "capacity=32768 num_queues=1 ro=0" ] && ok "vhost --socket-group: a member is served" \
	|| ko "vhost group member: $out"
kill -TERM "$SPID"
wait "$SPID"
SPID=
t fsck >/dev/null && ok "store fsck clean" || ko "fsck"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
