#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Copy-on-write granularity and flush durability, for real:
#   a 1 GiB random image is imported into a volume and committed; a child
#   volume on that layer gets a 4 KiB write at an offset inside one chunk
#   (not chunk-aligned) from a child process that flushes, says "flushed",
#   and is then killed with SIGKILL.  After reopening, the 4 KiB and the
#   parent data around it read back exact, the store's real allocation
#   (du -sk) grew by at most chunk_size + 64 KiB, and committing the child
#   adds at most one chunk object.
#
# Usage: crash_cow.sh TSR_CRASHHELPER
# Env: TSR_CRASH_MB (image size, default 1024), TMPDIR.
# Run from the non-sanitized build.  Exit 0 pass, 1 fail, 77 skipped.
set -euo pipefail

HELPER=${1:?usage: crash_cow.sh TSR_CRASHHELPER}
SIZE_MB=${TSR_CRASH_MB:-1024}
T0=$SECONDS

W=$(mktemp -d "${TMPDIR:-/tmp}/tsr-crashcow-XXXXXX")
S=$W/store
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$W"
}
trap cleanup EXIT

fail() {
	echo "FAIL: crash_cow: $*"
	exit 1
}
pass() { echo "PASS: crash_cow: $*"; }

# room for the image, the volume data and the packs
need_kb=$((SIZE_MB * 1024 * 3 + 262144))
avail_kb=$(df -Pk "$W" | awk 'NR==2 {print $4}')
if [ "$avail_kb" -lt "$need_kb" ]; then
	echo "skipped: crash_cow needs $((need_kb / 1024)) MiB free in $W, has $((avail_kb / 1024))"
	exit 77
fi

stat_field() { "$HELPER" stat "$S" | sed -n "s/^$1=//p"; }

"$HELPER" init "$S" || fail "init"
cs=$(stat_field chunk_size)
[ -n "$cs" ] && [ "$cs" -ge 8192 ] || fail "unexpected chunk size '$cs' (need >= 8 KiB)"
echo "chunk size $cs, image $SIZE_MB MiB"

head -c "${SIZE_MB}M" /dev/urandom >"$W/img"
"$HELPER" import "$S" base "$W/img" || fail "import of the image"
lid=$("$HELPER" commit "$S" base base) || fail "commit of the image"
[[ $lid =~ ^[0-9a-f]{64}$ ]] || fail "commit printed '$lid', not a layer id"
"$HELPER" create "$S" child 0 "$lid" || fail "create child volume"
echo "base layer $lid after $((SECONDS - T0)) s"

# inside one chunk, not aligned to it: CoW must copy exactly one chunk
size=$((SIZE_MB * 1024 * 1024))
off=$((size / 2 + cs / 4 + 123))
[ $(((off % cs) + 4096)) -le "$cs" ] || fail "test bug: the write crosses a chunk"

sync
objs_before=$(stat_field objects)
du_before=$(du -sk "$S" | cut -f1)

head -c 4096 /dev/urandom >"$W/patch"
"$HELPER" write-hold "$S" child "$off" "$W/patch" >"$W/hold.out" 2>"$W/hold.err" &
hpid=$!
pids+=("$hpid")
for _ in $(seq 600); do
	grep -q '^flushed' "$W/hold.out" 2>/dev/null && break
	kill -0 "$hpid" 2>/dev/null || fail "writer died: $(cat "$W/hold.err")"
	sleep 0.05
done
grep -q '^flushed' "$W/hold.out" || fail "writer did not flush within 30 s"
echo "writer pid $hpid: $(cat "$W/hold.out")"
kill -KILL "$hpid"
wait "$hpid" 2>/dev/null || true

sync
du_after=$(du -sk "$S" | cut -f1)
growth=$((du_after - du_before))
limit=$((cs / 1024 + 64))
echo "du -sk: $du_before -> $du_after KiB (+$growth, limit $limit)"

# the flushed write survived kill -9, and the store opens (stale lock)
"$HELPER" read "$S" child "$off" 4096 >"$W/got" || fail "read after kill -9"
cmp -s "$W/patch" "$W/got" || fail "the flushed 4 KiB at offset $off did not survive kill -9"
pass "flushed 4 KiB at offset $off survives kill -9"

# the chunk around it: parent data, with the patch in place
cstart=$((off - off % cs))
dd if="$W/img" of="$W/want" bs=1M iflag=skip_bytes,count_bytes skip="$cstart" \
	count=$((3 * cs)) status=none
dd if="$W/patch" of="$W/want" bs=4096 oflag=seek_bytes seek=$((off - cstart)) \
	conv=notrunc status=none
"$HELPER" read "$S" child "$cstart" $((3 * cs)) >"$W/got3" || fail "read around the write"
cmp "$W/want" "$W/got3" || fail "data around the write differs (chunk at $cstart)"
pass "the rest of the chunk and its neighbours read from the parent"

[ "$growth" -le "$limit" ] ||
	fail "a 4 KiB write grew the store by $growth KiB (limit chunk $((cs / 1024)) KiB + 64 KiB)"
pass "4 KiB CoW write allocated $growth KiB (<= $limit)"

"$HELPER" commit "$S" child >/dev/null || fail "commit of the child"
objs_after=$(stat_field objects)
echo "objects: $objs_before -> $objs_after"
[ "$objs_after" -le $((objs_before + 1)) ] ||
	fail "committing one changed chunk added $((objs_after - objs_before)) objects"
pass "commit of the child added $((objs_after - objs_before)) object(s)"

echo "PASS: crash_cow ($((SECONDS - T0)) s)"
