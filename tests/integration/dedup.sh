#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Dedup across volumes: the same 256 MiB random image imported twice (two
# volumes, tessera volume import) and both committed.  The second commit
# stores no new chunk object and gives the same layer id (equal content,
# equal id).  Removing one hold of the layer leaves the other: a volume on
# it exports bit-exact.
#
# Usage: dedup.sh TESSERA_CLI TSR_CRASHHELPER
# Env: TSR_DEDUP_MB (default 256), TMPDIR.  Exit 0 pass, 1 fail, 77 skipped.
set -euo pipefail

CLI=${1:?usage: dedup.sh TESSERA_CLI TSR_CRASHHELPER}
HELPER=${2:?usage: dedup.sh TESSERA_CLI TSR_CRASHHELPER}
SIZE_MB=${TSR_DEDUP_MB:-256}
T0=$SECONDS

W=$(mktemp -d "${TMPDIR:-/tmp}/tsr-dedup-XXXXXX")
S=$W/store
cleanup() { rm -rf "$W"; }
trap cleanup EXIT

fail() {
	echo "FAIL: dedup: $*"
	exit 1
}
pass() { echo "PASS: dedup: $*"; }
t() { "$CLI" --store "$S" "$@"; }
objects() { "$HELPER" stat "$S" | sed -n 's/^objects=//p'; }
# The layer id: the last line of commit's output that is 64 hex digits.
commit_id() {
	local out
	out=$(t commit "$@") || return 1
	grep -E '^[0-9a-f]{64}$' <<<"$out" | tail -n 1
}

need_kb=$((SIZE_MB * 1024 * 6))
avail_kb=$(df -Pk "$W" | awk 'NR==2 {print $4}')
if [ "$avail_kb" -lt "$need_kb" ]; then
	echo "skipped: dedup needs $((need_kb / 1024)) MiB free in $W"
	exit 77
fi

t init >/dev/null || fail "tessera init"
head -c "${SIZE_MB}M" /dev/urandom >"$W/img"
t volume import a "$W/img" >/dev/null || fail "volume import a"
t volume import b "$W/img" >/dev/null || fail "volume import b"

o0=$(objects)
ida=$(commit_id a) || fail "commit a"
[ -n "$ida" ] || fail "commit a printed no layer id"
o1=$(objects)
idb=$(commit_id b) || fail "commit b"
[ -n "$idb" ] || fail "commit b printed no layer id"
o2=$(objects)
echo "objects: $o0 before, $o1 after the first commit, $o2 after the second"
t df || fail "tessera df"

[ "$o1" -gt "$o0" ] || fail "the first commit stored no objects"
[ "$o2" -eq "$o1" ] || fail "the second commit of the same image added $((o2 - o1)) objects"
pass "second commit of the same image added no objects ($o1 objects)"
[ "$ida" = "$idb" ] || fail "same content gave two layer ids: $ida and $idb"
pass "same content, same layer id $ida"

t layer rm "$ida" >/dev/null || fail "layer rm (one hold)"
[ "$(objects)" -eq "$o1" ] || fail "removing one of two holds dropped objects"
t volume create c --parent "$idb" >/dev/null || fail "volume create on the remaining layer"
t volume export c "$W/out" >/dev/null || fail "volume export"
cmp "$W/img" "$W/out" || fail "export differs from the imported image"
pass "after removing one copy the other exports bit-exact"

echo "PASS: dedup ($((SECONDS - T0)) s)"
