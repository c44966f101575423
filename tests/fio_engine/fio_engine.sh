#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The fio external ioengine (bench/fio_engine, libtessera-fio.so) against a
# real store made with the tessera CLI:
#  - 4k random writes with crc32c verify, flushes (fsync=) on the way;
#  - a verify-only pass of the same job in a second fio process: the data
#    survived flush + close + store close, not just the first process;
#  - 1 MiB sequential write + verify over the whole volume;
#  - a trim job, after which the trimmed range reads as zeros;
#  - two job threads of one fio sharing the store (thread=1, numjobs=2);
#  - asynchronous requests (iodepth 16, 4 workers): random writes with
#    verify and flushes, fio's depth histogram at 16, verified again by a
#    second process at iodepth 32; a layer verified at iodepth 32;
#  - `tessera fsck` is clean afterwards;
#  - bad input: no volume= option, a missing volume, two forked jobs at
#    once on one store: each a clear message and a nonzero exit.
# Every fio run is checked for its exit code and, in its JSON output, for
# nonzero I/O and zero errors.
#
# Usage: fio_engine.sh TESSERA_CLI ENGINE_SO
# ENGINE_SO empty or missing: the engine was not built (skipped, 77).
# Env: TMPDIR.  Exit 0 pass, 1 fail, 77 skipped.
set -euo pipefail

CLI=${1:?usage: fio_engine.sh TESSERA_CLI ENGINE_SO}
ENGINE=${2:-}
T0=$SECONDS

if [ -z "$ENGINE" ] || [ ! -f "$ENGINE" ]; then
	echo "skipped: the fio engine was not built (configure with" \
	     "-DTESSERA_FIO_ENGINE=ON or -DTESSERA_FIO_SOURCE=DIR)"
	exit 77
fi
for tool in fio jq; do
	if ! command -v "$tool" >/dev/null; then
		echo "skipped: $tool is not installed"
		exit 77
	fi
done

W=$(mktemp -d "${TMPDIR:-/tmp}/tsr-fio-engine-XXXXXX")
S=$W/store
cleanup() { rm -rf "$W"; }
trap cleanup EXIT
CLI=$(realpath "$CLI") ENGINE=$(realpath "$ENGINE")
cd "$W"  # fio writes its verify state files (local-*-verify.state) here

fail() {
	echo "FAIL: fio_engine: $*"
	exit 1
}
pass() { echo "PASS: fio_engine: $*"; }
t() { "$CLI" --store "$S" "$@"; }
# Shows a run's messages when it failed.
show() { sed 's/^/  | /' "$W/$1.err" "$W/$1.json" 2>/dev/null | head -n 40; }

# run NAME FIO_ARGS...: one fio process over the engine, JSON to
# $W/NAME.json, messages to $W/NAME.err.  Fails the test on a nonzero exit,
# a job error, or a job that did no I/O.
run() {
	local name=$1 rc=0 errors ios
	shift
	fio --ioengine=external:"$ENGINE" --store="$S" --name="$name" \
	    --output-format=json --output="$W/$name.json" "$@" \
	    2>"$W/$name.err" || rc=$?
	[ "$rc" -eq 0 ] || { show "$name"; fail "$name: fio exited $rc"; }
	errors=$(jq '[.jobs[].error] | add' "$W/$name.json") ||
		fail "$name: no JSON output"
	[ "$errors" -eq 0 ] || { show "$name"; fail "$name: job error $errors"; }
	ios=$(jq '[.jobs[] | .read.io_bytes + .write.io_bytes + .trim.io_bytes] | add' \
	      "$W/$name.json")
	[ "$ios" -gt 0 ] || { show "$name"; fail "$name: no I/O"; }
}
# jqv NAME FILTER: a value from run NAME's first job.
jqv() { jq "${2/#/.jobs[0]}" "$W/$1.json"; }

# must_fail NAME PATTERN FIO_ARGS...: fio must exit nonzero and say PATTERN.
must_fail() {
	local name=$1 pattern=$2 rc=0
	shift 2
	fio --ioengine=external:"$ENGINE" --name="$name" "$@" \
	    >"$W/$name.out" 2>&1 || rc=$?
	[ "$rc" -ne 0 ] || { sed 's/^/  | /' "$W/$name.out"; fail "$name: fio exited 0"; }
	grep -q -- "$pattern" "$W/$name.out" ||
		{ sed 's/^/  | /' "$W/$name.out"; fail "$name: no message '$pattern'"; }
	pass "$name: exit $rc, $(grep -m1 -- "$pattern" "$W/$name.out")"
}

t init >/dev/null || fail "tessera init"
t volume create v --size 256M >/dev/null || fail "volume create"

# ---- 4k random writes, verified in process, flushed every 64 writes ------
RANDW=(--volume=v --rw=randwrite --bs=4k --size=64M --randseed=4242
       --verify=crc32c --verify_fatal=1 --fsync=64 --end_fsync=1)
run randwrite "${RANDW[@]}" --do_verify=1
syncs=$(jqv randwrite .sync.total_ios)
[ "$syncs" -gt 0 ] || fail "randwrite: no flush was issued (fsync=64)"
pass "randwrite 4k: $(jqv randwrite .write.io_bytes) bytes written," \
     "$(jqv randwrite .read.io_bytes) verified, $syncs flushes"

# ---- the same job verify-only, in a new fio process ------------------------
run verify_only "${RANDW[@]}" --verify_only=1
[ "$(jqv verify_only .read.io_bytes)" -eq $((64 << 20)) ] ||
	fail "verify_only read $(jqv verify_only .read.io_bytes) bytes, not 64 MiB"
pass "verify_only in a second process: 64 MiB read back and verified"

# ---- 1 MiB sequential write + verify over the whole volume ------------------
run seqwrite --volume=v --rw=write --bs=1M --verify=crc32c --verify_fatal=1 \
    --do_verify=1 --end_fsync=1
[ "$(jqv seqwrite .write.io_bytes)" -eq $((256 << 20)) ] ||
	fail "seqwrite wrote $(jqv seqwrite .write.io_bytes) bytes, not the volume's 256 MiB"
pass "seqwrite 1M: the volume's size (256 MiB) as fio's file size, written and verified"

# ---- trim: the range reads back as zeros -------------------------------------
run trim --volume=v --rw=trim --bs=64k --offset=32M --size=32M --end_fsync=1
[ "$(jqv trim .trim.io_bytes)" -eq $((32 << 20)) ] ||
	fail "trim trimmed $(jqv trim .trim.io_bytes) bytes, not 32 MiB"
run zeros --volume=v --rw=read --bs=64k --offset=32M --size=32M \
    --verify=pattern --verify_pattern=0x00 --verify_fatal=1
pass "trim: 32 MiB discarded, reads back as zeros"

# ---- two job threads of one fio share the store -------------------------------
run threads --volume=v --rw=randrw --bs=4k --size=16M --thread --numjobs=2 \
    --end_fsync=1
pass "thread=1 numjobs=2: both jobs ran on one store handle"

# ---- asynchronous: iodepth > 1 runs on the job's workers --------------------------
ASYNC=(--volume=v --rw=randwrite --bs=4k --size=32M --offset=128M --randseed=77
       --verify=crc32c --verify_fatal=1 --fsync=32 --end_fsync=1)
run async_write "${ASYNC[@]}" --iodepth=16 --workers=4 --do_verify=1
depth16=$(jqv async_write '.iodepth_level["16"]')
syncs=$(jqv async_write .sync.total_ios)
awk -v d="$depth16" 'BEGIN { exit !(d >= 50) }' ||
	{ show async_write; fail "async_write: only ${depth16}% of the time at depth 16: not asynchronous"; }
[ "$syncs" -gt 0 ] || fail "async_write: no flush was issued (fsync=32)"
run async_verify "${ASYNC[@]}" --iodepth=32 --verify_only=1
[ "$(jqv async_verify .read.io_bytes)" -eq $((32 << 20)) ] ||
	fail "async_verify read $(jqv async_verify .read.io_bytes) bytes, not 32 MiB"
pass "iodepth=16 workers=4: ${depth16}% of the time at depth 16, $syncs flushes,"      "verified in process and again at iodepth=32 in a second process"
must_fail workers_range "out of range" --store="$S" --volume=v --rw=read --bs=4k 	--iodepth=8 --workers=1000

# ---- a committed layer, read-only (layer=) -------------------------------------------
t volume create lv --size 16M >/dev/null || fail "volume create lv"
LAYW=(--rw=write --bs=64k --verify=crc32c --verify_fatal=1 --end_fsync=1)
run layer_fill --volume=lv "${LAYW[@]}" --do_verify=0
t commit lv --name lay >/dev/null || fail "commit lv"
run layer_verify --layer=lay "${LAYW[@]}" --verify_only=1
run layer_read --layer=lay --rw=randread --bs=4k
run layer_verify_async --layer=lay "${LAYW[@]}" --verify_only=1 --iodepth=32 --workers=2
must_fail layer_write "a layer is read-only" --store="$S" --layer=lay \
	--rw=randwrite --bs=4k
pass "layer=: a committed layer verifies and reads back, refuses writes"

# ---- the store is consistent -----------------------------------------------------
t fsck >"$W/fsck.out" 2>&1 || { sed 's/^/  | /' "$W/fsck.out"; fail "tessera fsck"; }
pass "tessera fsck: clean"

# ---- bad input --------------------------------------------------------------------
must_fail no_volume "no volume: set volume=NAME" --store="$S" --rw=read --bs=4k
must_fail missing_volume "volume nope: not found" --store="$S" --volume=nope \
	--rw=read --bs=4k
must_fail no_store "no such directory" --store="$W/nothing" --volume=v \
	--rw=read --bs=4k
# Forked jobs (fio's default) are processes: only one can own the store.
must_fail forked_jobs "is locked by" --store="$S" --volume=v --rw=randread \
	--bs=4k --numjobs=2 --time_based --runtime=2
t fsck >"$W/fsck2.out" 2>&1 || { sed 's/^/  | /' "$W/fsck2.out"; fail "tessera fsck after the bad input"; }

echo "fio_engine: all checks passed in $((SECONDS - T0)) s"
