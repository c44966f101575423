#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A store under hostile conditions:
#  1. a full filesystem: a store on a 64 MiB loop-mounted ext4; importing a
#     200 MiB file fails with exit 1 and one clear line ("No space ...");
#     the store still opens, the layer committed before reads back exact,
#     the failed volume is absent or readable, and a later commit works;
#  2. a full LMDB map (tsr_open_options.map_bytes, through the helper):
#     -EXFULL, and nothing committed is lost;
#  3. a second process on a locked store: the CLI exits 1 naming the pid of
#     the holder; once the holder is killed (SIGKILL) the stale lock is
#     taken over.
#
# Usage: bad_input.sh TESSERA_CLI TSR_CRASHHELPER
# Needs root (mount -o loop).  Exit 0 pass, 1 fail, 77 skipped.
set -euo pipefail

CLI=${1:?usage: bad_input.sh TESSERA_CLI TSR_CRASHHELPER}
HELPER=${2:?usage: bad_input.sh TESSERA_CLI TSR_CRASHHELPER}
T0=$SECONDS

if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: bad_input needs root for mount -o loop"
	exit 77
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/tsr-badinput-XXXXXX")
MNT=$W/mnt
FSIMG=$W/fs.img
pids=()
cleanup() {
	local p dev
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if mountpoint -q "$MNT" 2>/dev/null; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" || true
	fi
	for dev in $(losetup -j "$FSIMG" 2>/dev/null | cut -d: -f1); do
		losetup -d "$dev" || true
	done
	rm -rf "$W"
}
trap cleanup EXIT

fail() {
	echo "FAIL: bad_input: $*"
	exit 1
}
pass() { echo "PASS: bad_input: $*"; }
t() { "$CLI" --store "$S" "$@"; }
commit_id() {
	local out
	out=$(t commit "$@") || return 1
	grep -E '^[0-9a-f]{64}$' <<<"$out" | tail -n 1
}

# ---- 1. a full filesystem --------------------------------------------------
truncate -s 64M "$FSIMG"
mkfs.ext4 -q -F "$FSIMG"
mkdir "$MNT"
if ! mount -o loop "$FSIMG" "$MNT"; then
	echo "skipped: bad_input: mount -o loop failed"
	exit 77
fi
S=$MNT/store

t init --chunk-size 64K >/dev/null || fail "init on the small filesystem"
head -c 8M /dev/urandom >"$W/small"
t volume import first "$W/small" >/dev/null || fail "import of 8 MiB"
l1=$(commit_id first --name first) || fail "commit of the first volume"
[ -n "$l1" ] || fail "commit printed no layer id"

head -c 200M /dev/urandom >"$W/big"
set +e
t volume import big "$W/big" >"$W/imp.out" 2>"$W/imp.err"
rc=$?
set -e
echo "import of 200 MiB into 64 MiB: exit $rc, stderr:"
sed 's/^/  | /' "$W/imp.err"
[ "$rc" -eq 1 ] || fail "import into a full filesystem exited $rc, expected 1"
nlines=$(grep -c . "$W/imp.err" || true)
grep -Eiq 'no space|space left|disk full|filesystem is full|ENOSPC' "$W/imp.err" ||
	fail "the error does not say the filesystem is full"
[ "$nlines" -le 2 ] || fail "the error takes $nlines lines, expected one clear line"
pass "import into a full filesystem fails with exit 1 and a clear error"

t volume ls >/dev/null || fail "the store does not open after ENOSPC"
t layer stat first >/dev/null || fail "layer 'first' is gone after ENOSPC"
if t volume stat big >/dev/null 2>&1; then
	t volume export big "$W/big.out" >/dev/null 2>&1 ||
		fail "the failed volume exists but does not read"
	t volume rm big >/dev/null || fail "the failed volume exists but cannot be removed"
	echo "the failed volume was left behind, readable; removed it"
else
	echo "the failed volume is absent"
fi
t volume create check --parent "$l1" >/dev/null || fail "volume create on the first layer"
t volume export check "$W/small.out" >/dev/null || fail "export of the first layer"
cmp "$W/small" "$W/small.out" || fail "the layer committed before ENOSPC changed"
t volume rm check >/dev/null
pass "the store opens and the layer committed before ENOSPC reads back exact"

head -c 1M /dev/urandom >"$W/after"
t volume import after "$W/after" >/dev/null || fail "import after ENOSPC (space was freed)"
commit_id after >/dev/null || fail "commit after ENOSPC"
pass "import + commit work again once space is free"

# ---- 2. a full LMDB map ------------------------------------------------------
set +e
TSR_HELPER_MAP_BYTES=${TSR_HELPER_MAP_BYTES:-1M} "$HELPER" mapfull "$W/mapstore" >"$W/map.out" 2>&1
rc=$?
set -e
sed 's/^/  | /' "$W/map.out"
case $rc in
0) pass "full LMDB map: -EXFULL, nothing committed lost" ;;
77) echo "skipped: full LMDB map: $(grep -m1 skipped "$W/map.out" || echo 'helper skipped')" ;;
*) fail "full LMDB map (helper exit $rc)" ;;
esac

# ---- 3. a locked store ----------------------------------------------------------
"$HELPER" hold "$S" >"$W/hold.out" 2>"$W/hold.err" &
hpid=$!
pids+=("$hpid")
for _ in $(seq 200); do
	grep -q '^holding' "$W/hold.out" 2>/dev/null && break
	kill -0 "$hpid" 2>/dev/null || fail "holder died: $(cat "$W/hold.err")"
	sleep 0.05
done
grep -q "^holding pid=$hpid\$" "$W/hold.out" || fail "holder did not open the store"
set +e
t volume ls >"$W/lock.out" 2>"$W/lock.err"
rc=$?
set -e
echo "CLI on a held store: exit $rc: $(cat "$W/lock.err")"
[ "$rc" -eq 1 ] || fail "CLI on a locked store exited $rc, expected 1"
grep -q "locked by pid $hpid\b" "$W/lock.err" || fail "the error does not name pid $hpid"
pass "a second process gets 'locked by pid $hpid'"
kill -KILL "$hpid"
wait "$hpid" 2>/dev/null || true
t volume ls >/dev/null || fail "the stale lock of a killed process was not taken over"
t layer stat first >/dev/null || fail "layer 'first' is gone after the lock takeover"
pass "the stale lock is taken over after kill -9"

echo "PASS: bad_input ($((SECONDS - T0)) s)"
