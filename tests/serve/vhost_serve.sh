#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `tessera serve --vhost`: the daemon that serves containerd also serves
# vhost-user-blk devices.  A vhost-user front-end (vhost_client.py) reads
# each device's features and config; bad specs are refused with clear
# errors; a served volume is busy for other commands; SIGTERM stops
# everything and removes the sockets.  Root (serve mounts FUSE).
#   vhost_serve.sh TESSERA
set -u
T=${1:?usage: vhost_serve.sh TESSERA}
HERE=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }

W=$(mktemp -d /tmp/tsr-serve-vhost-XXXXXX)
S=$W/store SPID=
. "$HERE/serve_lib.sh"

t init >/dev/null
t volume create v --size 64M >/dev/null
t volume create b --size 32M >/dev/null
t commit b --name base >/dev/null

serve() { t serve --socket "$W/snap.sock" --mount "$W/mnt" "$@"; }

# Bad specs: refused before anything starts.
serve --vhost volume=v >"$W/err" 2>&1 && ko "a spec without socket accepted" \
	|| { grep -q "needs volume=NAME or layer=LAYER and socket=PATH" "$W/err" &&
		ok "spec without socket refused: $(cat "$W/err")" || ko "unclear error: $(cat "$W/err")"; }
serve --vhost volume=v,socket=$W/a.sock,queues=99 >"$W/err" 2>&1 && ko "queues=99 accepted" \
	|| { grep -q "queues must be 1 to" "$W/err" && ok "queues=99 refused" || ko "unclear error: $(cat "$W/err")"; }
serve --vhost volume=v,socket=$W/a.sock,colour=red >"$W/err" 2>&1 && ko "unknown item accepted" \
	|| { grep -q "bad vhost item 'colour=red'" "$W/err" && ok "unknown item refused" || ko "unclear error: $(cat "$W/err")"; }
serve --vhost volume=nope,socket=$W/a.sock >"$W/err" 2>&1 && ko "a missing volume served" \
	|| { grep -qi "nope" "$W/err" && ok "missing volume refused: $(tail -1 "$W/err")" || ko "unclear error: $(cat "$W/err")"; }
grep -q " $W/mnt " /proc/self/mounts && ko "a failed start left its FUSE mount" || ok "a failed start leaves no mount"

# Started directly (not through a shell function) so that $! is its pid.
"$T" --store "$S" serve --socket "$W/snap.sock" --mount "$W/mnt" \
	--vhost "volume=v,socket=$W/v.sock,queues=2" --vhost "layer=base,socket=$W/l.sock" \
	>"$W/serve.log" 2>&1 &
SPID=$!
for _ in $(seq 100); do
	[ -S "$W/v.sock" ] && [ -S "$W/l.sock" ] && [ -S "$W/snap.sock" ] && break
	kill -0 "$SPID" 2>/dev/null || break
	sleep 0.1
done
[ -S "$W/v.sock" ] && [ -S "$W/l.sock" ] && ok "serve up with two vhost devices" \
	|| { ko "serve did not come up: $(cat "$W/serve.log")"; exit 1; }

out=$(python3 "$HERE/vhost_client.py" "$W/v.sock")
[ "$out" = "capacity=131072 num_queues=2 ro=0" ] && ok "volume device: $out" || ko "volume device: $out"
out=$(python3 "$HERE/vhost_client.py" "$W/l.sock")
[ "$out" = "capacity=65536 num_queues=1 ro=1" ] && ok "layer device: $out" || ko "layer device: $out"
# The front-end disconnected: the next one connects to the same device.
out=$(python3 "$HERE/vhost_client.py" "$W/v.sock")
[ "$out" = "capacity=131072 num_queues=2 ro=0" ] && ok "a second front-end connects" || ko "reconnect: $out"
t volume rm v >"$W/err" 2>&1 && ko "removed a served volume" || ok "served volume is busy: $(cat "$W/err")"
t volume ls >"$W/ls" 2>&1 && grep -q "^v " "$W/ls" && ok "other commands run through the daemon" \
	|| ko "volume ls through the daemon: $(cat "$W/ls")"

kill -TERM "$SPID"
wait "$SPID"
rc=$?
SPID=
[ $rc = 0 ] && ok "SIGTERM: serve exits 0" || ko "serve exit $rc: $(tail -5 "$W/serve.log")"
[ ! -e "$W/v.sock" ] && [ ! -e "$W/l.sock" ] && ok "device sockets removed" || ko "sockets left behind"
# The same from a config file: one 'vhost = SPEC' line per device.
printf '# tessera serve\nvhost = "volume=v,socket=%s/c.sock,read-only"\n' "$W" >"$W/serve.conf"
"$T" --store "$S" serve --socket "$W/snap.sock" --mount "$W/mnt" --config "$W/serve.conf" \
	>"$W/serve.log" 2>&1 &
SPID=$!
for _ in $(seq 100); do [ -S "$W/c.sock" ] && break; kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
out=$(python3 "$HERE/vhost_client.py" "$W/c.sock")
[ "$out" = "capacity=131072 num_queues=1 ro=1" ] && ok "device from the config file: $out" \
	|| ko "config device: $out $(cat "$W/serve.log")"
kill -TERM "$SPID"
wait "$SPID"
SPID=
t fsck >/dev/null && ok "store fsck clean" || ko "fsck"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
