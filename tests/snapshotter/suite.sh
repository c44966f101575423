#!/usr/bin/env bash
# containerd's own snapshotter conformance suite (snapshots/testsuite)
# against `tessera serve`, through containerd's proxy client
# (tests/snapshotter/suite/suite_test.go).  Builds the Go test binary
# offline from Debian's packaged sources (golang-go,
# golang-github-containerd-containerd-dev) into WORK, then runs it.
#
#   suite.sh TESSERA WORK
#
# Every case must pass (Rename skips itself).  A case that cannot pass yet
# goes in KNOWN_FAILING with the reason: it must then fail, so that the
# list only ever shrinks.
set -euo pipefail
T=$(realpath "$1")
work=$2
src=$(cd "$(dirname "$0")" && pwd)/suite

# Empty: all 20 cases that run pass.
KNOWN_FAILING=""

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 0; }
command -v go >/dev/null || { echo "FAIL: go is not installed (tools/setup.sh installs golang-go)"; exit 1; }

mkdir -p "$work/gopath/src/tessera_suite"
cp "$src/suite_test.go" "$work/gopath/src/tessera_suite/"
echo "building the suite (GOPATH mode, offline)..."
start=$(date +%s)
(cd "$work/gopath/src/tessera_suite" &&
	GO111MODULE=off GOPROXY=off CGO_ENABLED=0 \
	GOPATH="$work/gopath:/usr/share/gocode" GOCACHE="$work/gocache" \
	go test -c -o "$work/suite.test")
echo "built in $(( $(date +%s) - start )) s"

# The stores, FUSE mounts and sockets of the cases: outside the suite's
# own temp dirs (which it dumps, contents and all, when a case fails).  The
# suite's temp dirs go under a directory of this run too (TMPDIR), so that
# what a failing case leaves mounted there is found and unmounted.
cases=$(mktemp -d /var/tmp/tsr-suite-XXXXXX)
suite_tmp=$(mktemp -d /tmp/tsr-suite-tmp-XXXXXX)
cleanup() {
	# Mounts under our two directories, deepest first: a case's ext4
	# mounts (their loop devices autoclear), then the FUSE mounts.
	awk -v a="$suite_tmp/" -v b="$cases/" \
		'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/self/mounts |
		sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
	rm -rf "$cases" "$suite_tmp"
}
trap cleanup EXIT

out="$work/suite.out"
set +e
TMPDIR="$suite_tmp" TESSERA_BIN="$T" TESSERA_SUITE_DIR="$cases" timeout 1200 "$work/suite.test" \
	-test.v -test.timeout 15m -test.parallel 2 >"$out" 2>&1
status=$?
set -e
echo "suite exit status $status"

pass=0 fail=0
report() { echo "$1: $2"; [ "$1" = PASS ] && pass=$((pass + 1)) || fail=$((fail + 1)); }
ran=0
while read -r verdict name; do
	ran=$((ran + 1))
	case " $KNOWN_FAILING " in
	*" $name "*)
		if [ "$verdict" = FAIL ]; then report PASS "$name fails as known"
		else report FAIL "$name is listed as known-failing but did $verdict: take it off the list"; fi ;;
	*)
		case "$verdict" in
		PASS) report PASS "$name" ;;
		SKIP) [ "$name" = Rename ] && report PASS "Rename skips itself" ||
			report FAIL "$name skipped" ;;
		*) report FAIL "$name: $verdict"; grep -A15 -- "--- FAIL: TestTesseraSnapshotter/$name " "$out" | head -40 ;;
		esac ;;
	esac
done < <(sed -n 's/^ *--- \(PASS\|FAIL\|SKIP\): TestTesseraSnapshotter\/\([^ ]*\) .*/\1 \2/p' "$out")
# 21 cases: if fewer reported, the binary died (timeout, panic).
if [ "$ran" -ne 21 ]; then
	report FAIL "only $ran of 21 cases reported; the end of the output:"
	tail -40 "$out"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
