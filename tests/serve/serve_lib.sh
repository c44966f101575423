# SPDX-License-Identifier: MIT
#
# Sourced by the tests of `tessera serve` (vhost_serve.sh, vhost_hostile.sh)
# once T (tessera), W (the scratch directory), S (the store) and SPID (the
# daemon's pid, or empty) are set: PASS/FAIL counters, `t` (tessera on the
# store), and a cleanup on exit that stops the daemon, lazily unmounts
# $W/mnt and removes $W.
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
ko() { echo "FAIL: $*"; fail=$((fail + 1)); }
t() { "$T" --store "$S" "$@"; }
serve_cleanup() {
	set +e
	if [ -n "$SPID" ]; then
		kill -TERM "$SPID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$SPID" 2>/dev/null
		wait "$SPID" 2>/dev/null
	fi
	grep -q " $W/mnt " /proc/self/mounts && umount -l "$W/mnt"
	rm -rf "$W"
}
trap serve_cleanup EXIT
trap 'exit 1' INT TERM
