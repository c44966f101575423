#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `bench/run --quick` over every system of the fio suite, with the binaries
# of the build tree under test (nothing is built here).  Passes when every
# system produced numbers for every job and every writable system passed its
# verify pass, except rows marked known broken upstream (QEMU 7.2's FUSE
# export); fails otherwise, printing the problems.  Also checks that
# summary.md, results.json, results.csv and the plots were written.
#
# Usage: bench_quick.sh TESSERA_CLI FSYNC_WRITE ENGINE_SO
# ENGINE_SO empty: the fio engine was not built (skipped, 77).
# Exit 0 pass, 1 fail, 77 skipped (not root, a tool missing).
# Env: TSR_BENCH_DIR (scratch parent, default /var/tmp), TSR_BENCH_KEEP=1
# keeps the output directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cli=${1:?usage: bench_quick.sh TESSERA_CLI FSYNC_WRITE ENGINE_SO}
helper=${2:?usage: bench_quick.sh TESSERA_CLI FSYNC_WRITE ENGINE_SO}
engine=${3:-}

skip() { echo "SKIP: bench_quick: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (FUSE, loop devices, overlayfs, QEMU)"
for t in fio jq python3 gnuplot perf qemu-system-x86_64 qemu-storage-daemon qemu-img busybox \
	losetup mkfs.ext4 gcc pkg-config; do
	command -v "$t" >/dev/null || skip "$t is not installed"
done
[ -f /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c ] || skip "libfuse3-dev's passthrough_ll.c is missing"
[ -e /dev/fuse ] || skip "no /dev/fuse"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || skip "no overlayfs"
[ -n "$engine" ] && [ -f "$engine" ] ||
	skip "the fio engine was not built (configure with -DTESSERA_FIO_ENGINE=ON or -DTESSERA_FIO_SOURCE=DIR)"
[ -x "$cli" ] || skip "no tessera CLI at $cli"
[ -x "$helper" ] || skip "no fsync_write at $helper"
rc=0
"$repo/tests/vhost/guest_image.sh" >/dev/null 2>"${TMPDIR:-/tmp}/bench_quick_guest.$$" || rc=$?
if [ $rc != 0 ]; then
	msg=$(tail -1 "${TMPDIR:-/tmp}/bench_quick_guest.$$"); rm -f "${TMPDIR:-/tmp}/bench_quick_guest.$$"
	[ $rc = 77 ] && skip "no guest image for the vhost systems: $msg"
	echo "FAIL: bench_quick: tests/vhost/guest_image.sh exit $rc: $msg"; exit 1
fi
rm -f "${TMPDIR:-/tmp}/bench_quick_guest.$$"

parent=${TSR_BENCH_DIR:-/var/tmp}
W=$(mktemp -d "$parent/tsr-bench-quick.XXXXXX")
run_pid=
cleanup() {
	local i
	set +e
	# bench/run stops its suite (and the suite its daemons and mounts) on TERM.
	if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
		kill -TERM "$run_pid" 2>/dev/null
		for i in $(seq 600); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$run_pid" 2>/dev/null
		wait "$run_pid" 2>/dev/null
	fi
	if [ "${TSR_BENCH_KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$SECONDS
rc=0
bash "$repo/bench/run" --quick --only fio --out "$W/out" --dir "$W" \
	--tessera "$cli" --helper "$helper" --engine "$engine" &
run_pid=$!
wait "$run_pid" || rc=$?
run_pid=
el=$(( SECONDS - t0 ))
echo "bench/run --quick: exit $rc after ${el}s"
fail=0
[ $rc = 0 ] || { echo "FAIL: bench_quick: bench/run exited $rc"; fail=1; }
for f in summary.md results.json results.csv checks.json throughput-file.png latency-file.png \
	throughput-guest.png first-write.png space.png; do
	[ -s "$W/out/$f" ] || { echo "FAIL: bench_quick: $f was not written"; fail=1; }
done
if [ -s "$W/out/checks.json" ]; then
	if jq -e .ok "$W/out/checks.json" >/dev/null; then
		echo "PASS: bench_quick: $(jq -r '.systems_run | length' "$W/out/checks.json") systems produced numbers; verify: $(jq -r '.verify | to_entries | map("\(.key) \(.value)") | join(", ")' "$W/out/checks.json")"
	else
		echo "FAIL: bench_quick: $(jq -r '.problems | join("\n  ")' "$W/out/checks.json")"
		fail=1
	fi
fi
[ $el -le 300 ] || echo "NOTE: bench_quick: --quick took ${el}s, more than its 5-minute budget (a loaded machine?)"
# Nothing of the run may be left behind: no mounts, no loop devices on it.
if grep -qF "$W/" /proc/self/mounts; then echo "FAIL: bench_quick: mounts left under $W"; fail=1; fi
if losetup -a 2>/dev/null | grep -cF "$W/" >/dev/null; then echo "FAIL: bench_quick: loop devices left on $W"; fail=1; fi
if [ $fail = 0 ] && [ -s "$W/out/summary.md" ]; then
	sed -n '/^### Per job: tessera/,/^### file/p' "$W/out/summary.md" | head -40
fi
exit $fail
