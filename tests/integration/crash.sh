#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Durability under kill -9, at random moments (tsr_crashtest crash):
#   write   a child writes 4 KiB blocks with periodic flushes
#   flush   killed while flushing a burst of writes
#   commit  killed while committing; the layer and its volume must be one or
#           the other
#   gc      killed while collecting garbage (removed layers); reruns finish
#   import  killed while importing a file (library calls, and every other
#           round `tessera volume import`)
# After each kill the store opens, fsck is clean, every committed layer
# reads back exact, every block written before the last completed flush
# reads back, and every block written after it reads its old or its new
# content.  ROUNDS kills per scenario (default 50).
#
# Usage: crash.sh TSR_CRASHTEST [TESSERA]
# Env: TSR_SEED (printed), TSR_CRASH_ROUNDS, TSR_CRASH_MODES, TMPDIR.
# Exit 0 pass, 1 fail.
set -euo pipefail

X=${1:?usage: crash.sh TSR_CRASHTEST [TESSERA]}
T=${2:-}
ROUNDS=${TSR_CRASH_ROUNDS:-50}
MODES=${TSR_CRASH_MODES:-write flush commit gc import}
SEED=${TSR_SEED:-$(( $(date +%s) * 1000 + $$ % 1000 ))}
export TSR_SEED=$SEED
T0=$SECONDS

W=$(mktemp -d "${TMPDIR:-/tmp}/tsr-crash-XXXXXX")
pid=
cleanup() {
	# The test program's children die with it (PR_SET_PDEATHSIG).
	if [ -n "$pid" ]; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "crash: seed $SEED (set TSR_SEED to repeat), $ROUNDS rounds per scenario"
failed=()
for mode in $MODES; do
	mkdir "$W/$mode"
	t=$SECONDS
	"$X" crash "$mode" "$W/$mode" "$ROUNDS" $T &
	pid=$!
	rc=0
	wait "$pid" || rc=$?
	pid=
	if [ "$rc" -ne 0 ]; then
		echo "FAIL: crash $mode (exit $rc, seed $SEED)"
		failed+=("$mode")
	else
		echo "PASS: crash $mode ($((SECONDS - t)) s)"
	fi
	rm -rf "${W:?}/$mode"
done

if [ ${#failed[@]} -ne 0 ]; then
	echo "FAIL: crash: ${failed[*]} (seed $SEED, $((SECONDS - T0)) s)"
	exit 1
fi
echo "PASS: crash: $MODES (seed $SEED, $((SECONDS - T0)) s)"
