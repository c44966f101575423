#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Integrity: each kind of damage is applied to a copy of a closed store
# (tsr_crashtest damage-setup: layers base, child of base, other sharing a
# chunk with base, volume vol on base), which is then read with a cold
# cache (a fresh open):
#   payload, payload-zstd  a flipped byte in a chunk object's payload
#   header                 a flipped byte in an object header
#   truncate               a pack cut in the middle of an object
#   lmdb-chunk             a chunk record's pack offset (meta/data.mdb)
#   lmdb-refcount          a chunk record's refcount (then fsck --repair)
#   lmdb-layer             a layer record's version
#   lmdb-layer-size        a layer record's size
#   lmdb-map               a digest in a layer map entry
# Reads of damaged data fail with EIO (never other bytes), the rest reads
# exact, nothing crashes, and fsck names the object's digest and the layers
# that use it.  With TESSERA, `tessera fsck` must exit 1 naming the same
# digests and layers (0 after lmdb-refcount, which the checker repaired),
# and `tessera layer ls` must not crash.
#
# Usage: corrupt.sh TSR_CRASHTEST [TESSERA]
# Env: TSR_SEED (printed), TMPDIR.  Exit 0 pass, 1 fail.
set -euo pipefail

X=${1:?usage: corrupt.sh TSR_CRASHTEST [TESSERA]}
T=${2:-}
SEED=${TSR_SEED:-$(( $(date +%s) * 1000 + $$ % 1000 ))}
export TSR_SEED=$SEED
KINDS="payload payload-zstd header truncate lmdb-chunk lmdb-refcount lmdb-layer
       lmdb-layer-size lmdb-map"
T0=$SECONDS

W=$(mktemp -d "${TMPDIR:-/tmp}/tsr-corrupt-XXXXXX")
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

nfail=0
fail() {
	echo "FAIL: corrupt: $*"
	nfail=$((nfail + 1))
}
pass() { echo "PASS: corrupt: $*"; }

# Runs a command in the background (so the trap can kill it by pid);
# sets rc.  A status above 128 is a crash.
run() {
	local out=$1
	shift
	"$@" >"$out" 2>&1 &
	pid=$!
	rc=0
	wait "$pid" || rc=$?
	pid=
}

echo "corrupt: seed $SEED (set TSR_SEED to repeat)"
run "$W/setup.out" "$X" damage-setup "$W/pristine"
cat "$W/setup.out"
[ "$rc" -eq 0 ] || { fail "damage-setup exited $rc"; exit 1; }

for kind in $KINDS; do
	rm -rf "$W/s"
	cp -a --sparse=always "$W/pristine" "$W/s"
	run "$W/$kind.out" "$X" damage "$kind" "$W/s"
	grep -v '^named ' "$W/$kind.out" || true
	if [ "$rc" -gt 128 ]; then
		fail "$kind: the checker crashed (signal $((rc - 128)))"
		continue
	elif [ "$rc" -ne 0 ]; then
		fail "$kind: tsr_crashtest damage exited $rc"
	fi
	[ -n "$T" ] || continue

	# The command line sees the same damage.
	run "$W/fsck.out" "$T" --store "$W/s" fsck
	if [ "$kind" = lmdb-refcount ]; then
		# tsr_crashtest repaired it: the repair must have lasted.
		if [ "$rc" -eq 0 ]; then
			pass "$kind: 'tessera fsck' finds the repaired store clean"
		else
			fail "$kind: 'tessera fsck' exited $rc after the repair, expected 0"
			sed 's/^/    /' "$W/fsck.out"
		fi
	elif [ "$rc" -ne 1 ]; then
		fail "$kind: 'tessera fsck' exited $rc, expected 1 (damage)"
		sed 's/^/    /' "$W/fsck.out"
	else
		missing=0
		while read -r _ hex; do
			grep -q "$hex" "$W/fsck.out" || {
				fail "$kind: 'tessera fsck' does not name $hex"
				missing=1
			}
		done < <(grep '^named ' "$W/$kind.out")
		[ "$missing" -ne 0 ] ||
			pass "$kind: 'tessera fsck' exits 1 and names the damage ($(grep -c . "$W/fsck.out") lines)"
	fi
	run "$W/ls.out" "$T" --store "$W/s" layer ls
	if [ "$rc" -gt 128 ]; then
		fail "$kind: 'tessera layer ls' crashed (signal $((rc - 128)))"
	else
		pass "$kind: 'tessera layer ls' exits $rc without crashing: $(tail -n 1 "$W/ls.out")"
	fi
done

if [ "$nfail" -ne 0 ]; then
	echo "FAIL: corrupt: $nfail failure(s) (seed $SEED, $((SECONDS - T0)) s)"
	exit 1
fi
echo "PASS: corrupt: every kind of damage (seed $SEED, $((SECONDS - T0)) s)"
