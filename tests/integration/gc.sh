#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Garbage collection through the tessera command:
#   1. layers with 18 MiB of unique data (and some shared with a kept layer)
#      are removed; `tessera gc` must bring the store's allocation (du) down
#      by at least 90% of that unique data; fsck is clean and the kept
#      layers read back exact.  `layer rm` of a layer with a child fails
#      with a clear error.
#   2. rounds of: new garbage interleaved with new live layers (1 MiB packs,
#      so gc deletes and compacts packs too), `tessera gc` killed with
#      SIGKILL after a random delay, then fsck must be clean, a rerun of gc
#      must complete, fsck stays clean and every live layer reads back exact.
#
# Usage: gc.sh TESSERA TSR_CRASHTEST    (tsr_crashtest makes the data)
# Env: TSR_SEED (printed), TSR_GC_ROUNDS (default 12), TMPDIR.
# Exit 0 pass, 1 fail.
set -euo pipefail

T=${1:?usage: gc.sh TESSERA TSR_CRASHTEST}
X=${2:?usage: gc.sh TESSERA TSR_CRASHTEST}
ROUNDS=${TSR_GC_ROUNDS:-12}
SEED=${TSR_SEED:-$(( $(date +%s) * 1000 + $$ % 1000 ))}
export TSR_SEED=$SEED
RANDOM=$((SEED % 32768))
T0=$SECONDS

W=$(mktemp -d "${TMPDIR:-/tmp}/tsr-gc-XXXXXX")
S=$W/store
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
	echo "FAIL: gc: $*"
	nfail=$((nfail + 1))
}
die() {
	echo "FAIL: gc: $* (seed $SEED)"
	exit 1
}
pass() { echo "PASS: gc: $*"; }
t() { "$T" --store "$S" "$@"; }

# gen FILE SIZE STREAM: incompressible data, distinct per stream.
gen() { "$X" gen "$1" "$2" "$3" || die "tsr_crashtest gen $*"; }

# mklayer NAME FILE: imports FILE and commits it as layer NAME.
mklayer() {
	t volume import "v-$1" "$2" >/dev/null || die "import of $2"
	t commit "v-$1" --name "$1" >/dev/null || die "commit of $1"
}

# check_layer NAME FILE: the layer reads back as FILE.
check_layer() {
	t volume create chk --parent "$1" >/dev/null || { fail "volume on layer $1"; return 1; }
	t volume export chk "$W/chk.img" >/dev/null || { fail "export of layer $1"; return 1; }
	t volume rm chk >/dev/null || { fail "volume rm chk"; return 1; }
	cmp -s "$2" "$W/chk.img" || { fail "layer $1 does not read back as $2"; return 1; }
}

# fsck_clean WHAT
fsck_clean() {
	local rc=0
	t fsck >"$W/fsck.out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$1: fsck exited $rc"
		sed 's/^/    /' "$W/fsck.out" | head -20
		return 1
	fi
}

du_kib() { sync; du -sk "$S" | cut -f1; }

echo "gc: seed $SEED (set TSR_SEED to repeat)"
t init --chunk-size 64K >/dev/null || die "init"

# ---- 1. space comes back -----------------------------------------------------
gen "$W/keep" 4M 1
gen "$W/g1" 8M 2
gen "$W/g2" 8M 3
gen "$W/u3" 2M 4
head -c 2M "$W/keep" >"$W/g3"            # 2 MiB shared with keep
cat "$W/u3" >>"$W/g3"                    # 2 MiB its own
mklayer keep "$W/keep"
mklayer g1 "$W/g1"
mklayer g2 "$W/g2"
mklayer g3 "$W/g3"
# a child of keep, with 1 MiB of its own
gen "$W/patch" 1M 5
cp "$W/keep" "$W/keep2"
dd if="$W/patch" of="$W/keep2" bs=1M seek=1 conv=notrunc status=none
t volume create v-keep2 --parent keep >/dev/null || die "volume on keep"
t volume write v-keep2 --offset 1M "$W/patch" >/dev/null || die "write to v-keep2"
t commit v-keep2 --name keep2 >/dev/null || die "commit of keep2"

rc=0
t layer rm keep 2>"$W/rm.err" || rc=$?
if [ "$rc" -eq 1 ] && grep -q "parent" "$W/rm.err"; then
	pass "'layer rm' of a layer with a child fails: $(cat "$W/rm.err")"
else
	fail "'layer rm' of a layer with a child: exit $rc, '$(cat "$W/rm.err")'"
fi

unique_kib=$(((8 + 8 + 2) * 1024))
before=$(du_kib)
for l in g1 g2 g3; do
	t layer rm "$l" >/dev/null || die "layer rm $l"
done
t gc >"$W/gc.out" 2>&1 || { cat "$W/gc.out"; die "gc exited non-zero"; }
sed 's/^/    /' "$W/gc.out"
after=$(du_kib)
freed=$((before - after))
if [ "$freed" -ge $((unique_kib * 9 / 10)) ]; then
	pass "du went from $before to $after KiB: $freed KiB freed of $unique_kib KiB unique to the removed layers (>= 90%)"
else
	fail "du went from $before to $after KiB: only $freed KiB freed of $unique_kib KiB unique to the removed layers (< 90%)"
fi
fsck_clean "after gc" && pass "fsck clean after gc"
check_layer keep "$W/keep" && check_layer keep2 "$W/keep2" &&
	pass "the kept layers read back exact"
t gc >"$W/gc.out" 2>&1 || fail "a second gc exited non-zero"
grep -q "objects removed: *0 " "$W/gc.out" &&
	pass "a second gc finds nothing to remove" ||
	fail "a second gc removed objects: $(head -1 "$W/gc.out")"

# ---- 2. gc killed mid-way --------------------------------------------------------
# Small packs from here on: gc also deletes whole packs and compacts others.
export TESSERA_PACK_BYTES=1M
live=(keep keep2)
declare -A file=([keep]="$W/keep" [keep2]="$W/keep2")
stream=100
gc_us=20000
for ((round = 0; round < ROUNDS; round++)); do
	# 4 MiB of garbage, a live layer after it, and an old live layer dropped
	gen "$W/gar" 4M $((stream++))
	mklayer gar "$W/gar"
	name=live$round
	gen "$W/$name" 1M $((stream++))
	file[$name]="$W/$name"
	mklayer "$name" "$W/$name"
	live+=("$name")
	t layer rm gar >/dev/null || die "layer rm gar"
	if [ ${#live[@]} -gt 6 ]; then
		t layer rm "${live[2]}" >/dev/null || die "layer rm ${live[2]}"
		rm -f "${file[${live[2]}]}"
		live=("${live[@]:0:2}" "${live[@]:3}")
	fi

	if [ "$round" -eq 0 ]; then
		# calibration: time a whole run
		s=$(date +%s%N)
		t gc >/dev/null 2>&1 || die "gc (calibration)"
		gc_us=$((($(date +%s%N) - s) / 1000))
		echo "a whole gc takes $gc_us us"
		continue
	fi
	delay_us=$(((RANDOM * 32768 + RANDOM) % (gc_us + 1)))
	# not through t(): $! must be tessera itself, not a subshell
	"$T" --store "$S" gc >/dev/null 2>&1 &
	pid=$!
	sleep "$(printf '%d.%06d' $((delay_us / 1000000)) $((delay_us % 1000000)))"
	kill -KILL "$pid" 2>/dev/null || true
	rc=0
	wait "$pid" 2>/dev/null || rc=$?
	pid=
	# Aim the delays at the run: shorter after a run that ended first.
	if [ "$rc" -eq 137 ]; then
		how=killed
		gc_us=$((gc_us + gc_us / 16))
	else
		how="had exited ($rc)"
		gc_us=$((gc_us * 3 / 4))
	fi
	ok=1
	fsck_clean "round $round, gc killed after $delay_us us" || ok=0
	t gc >"$W/gc.out" 2>&1 || { fail "round $round: the gc rerun exited non-zero"; ok=0; }
	fsck_clean "round $round, after the rerun" || ok=0
	for l in "${live[@]}"; do
		check_layer "$l" "${file[$l]}" || ok=0
	done
	[ "$ok" -eq 0 ] ||
		pass "round $round: gc $how after $delay_us us; fsck clean, rerun completed ($(sed -n 's/^packs: *//p' "$W/gc.out")), ${#live[@]} live layers exact"
done

if [ "$nfail" -ne 0 ]; then
	echo "FAIL: gc: $nfail failure(s) (seed $SEED, $((SECONDS - T0)) s)"
	exit 1
fi
echo "PASS: gc (seed $SEED, $((SECONDS - T0)) s)"
