#!/usr/bin/env bash
# The control-socket client checks who listens before it sends anything
# (docs/security.md): a control.sock served by another user, in a store
# directory that user owns or in a shared sticky directory, gets no
# descriptor and no byte; the command fails with an error naming the
# socket.  Then the real thing still works: a daemon of root's own serves
# a forwarded command.
#   control_peer.sh TESSERA
set -euo pipefail
T=$1
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: needs setpriv"; exit 77; }
dir=$(mktemp -d /tmp/tsr-ctlpeer-XXXXXX)
chmod 755 "$dir"
mkdir "$dir/logs"              # where the listeners (user nobody) write
chown nobody "$dir/logs"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	mountpoint -q "$dir/mnt" 2>/dev/null && { "$T" umount "$dir/mnt" >/dev/null 2>&1 || umount -l "$dir/mnt"; }
	rm -rf "$dir"
}
trap cleanup EXIT
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# A listener as user nobody: accepts, records every byte and descriptor it
# is sent, answers "exit status 0" as a daemon would.
listener() {  # listener SOCKET LOG
	setpriv --reuid nobody --regid nogroup --clear-groups /usr/bin/python3 - "$1" "$2" <<'PY' &
import array, os, socket, struct, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(4)
open(log + ".ready", "w").close()
while True:
    c, _ = s.accept()
    got, fds = 0, 0
    c.settimeout(2)
    try:
        while True:
            fdarr = array.array("i")
            msg, anc, _, _ = c.recvmsg(65536, socket.CMSG_LEN(16 * 4))
            for lvl, typ, data in anc:
                if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fdarr.frombytes(data[:len(data) - len(data) % 4])
            fds += len(fdarr)
            for fd in fdarr:
                os.close(fd)
            if not msg:
                break
            got += len(msg)
            c.sendall(struct.pack("<I", 0))
    except Exception:
        pass
    with open(log, "a") as f:
        f.write("connection bytes=%d fds=%d\n" % (got, fds))
    c.close()
PY
	pids+=($!)
	for _ in $(seq 100); do [ -e "$2.ready" ] && return 0; sleep 0.05; done
	echo "listener did not start"; return 1
}

# The CLI, run as root with input waiting, must refuse the socket in DIR
# with the error naming it, and its listener must have got nothing.
expect_refused() {  # expect_refused DIR LOG WHAT
	if "$T" --store "$1" volume ls < "$dir/stdin" > "$dir/out" 2> "$dir/err"; then
		bad "$3: a command ran through it: $(cat "$dir/out")"
	elif grep -q "refusing to use $1/control.sock" "$dir/err"; then
		ok "$3: refused ($(cat "$dir/err"))"
	else
		bad "$3: unclear refusal: $(cat "$dir/err")"
	fi
	sleep 0.3
	if grep -qv "bytes=0 fds=0" "$2" 2>/dev/null; then
		bad "$3: the listener got something: $(cat "$2")"
	else
		ok "$3: the listener got no byte and no descriptor ($(cat "$2" 2>/dev/null || echo 'no connection'))"
	fi
}
echo secret > "$dir/stdin"

# 1. A store directory owned by nobody, its control.sock served by nobody.
mkdir "$dir/theirs"
chown nobody "$dir/theirs"
touch "$dir/theirs/TESSERA"
listener "$dir/theirs/control.sock" "$dir/logs/l1"
expect_refused "$dir/theirs" "$dir/logs/l1" "another user's store directory"

# 2. A directory of root's that anyone may write to (sticky, like /tmp):
# the socket in it is nobody's.
mkdir "$dir/shared"
chmod 1777 "$dir/shared"
touch "$dir/shared/TESSERA"
listener "$dir/shared/control.sock" "$dir/logs/l2"
expect_refused "$dir/shared" "$dir/logs/l2" "another user's socket in a shared directory"

# 3. The real thing: root's daemon serves a forwarded command, and its
# socket is 0600.
"$T" --store "$dir/store" init >/dev/null
"$T" --store "$dir/store" volume create v --size 1M >/dev/null
mkdir "$dir/mnt"
"$T" --store "$dir/store" mount "$dir/mnt" >/dev/null
mode=$(stat -c %a "$dir/store/control.sock")
[ "$mode" = 600 ] && ok "control.sock is 0600" || bad "control.sock mode $mode"
if "$T" --store "$dir/store" volume ls > "$dir/out" 2> "$dir/err" && grep -q '^v ' "$dir/out"; then
	ok "a forwarded command runs on root's own daemon"
else
	bad "forwarding to root's daemon failed: $(cat "$dir/err")"
fi
"$T" umount "$dir/mnt" >/dev/null

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
