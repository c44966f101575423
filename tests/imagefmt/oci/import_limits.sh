#!/usr/bin/env bash
# Image import's extraction caps (docs/security.md, "Import limits"): small
# archives that expand past the cap given on the command line are refused
# while they decompress, and leave the store and the disk as before.
#
#   import_limits.sh TESSERA   (root; exit 77 = skipped)
#
# Archives (make_bomb.py): A, an OCI layout whose one gzip layer expands to
# 2 GiB of zeros (9 MB); B, a gzip of a layout whose plain layer blob is a
# 2 GiB tar (9 MB: the blob is written to the work dir as it decompresses);
# C, two small gzip layers, for the cap on the whole import and for an
# import that fits.  For each refusal: the exit status and message, the
# `volume ls`/`layer ls`/`image ls` listings and the store's size as before,
# no work dir or run dir left, the disk's use (df of the work dir's
# filesystem) back where it was within a few MB and its peak during the
# import below the cap.  So that other tests' files do not move df, the
# script runs in a mount namespace of its own with a tmpfs of its own on
# /var/tmp (where image import makes its work dir); the store and the
# archives are elsewhere (/tmp).
set -u
TESSERA=${1:?usage: import_limits.sh TESSERA}
HERE=$(cd "$(dirname "$0")" && pwd)
WORKFS=/var/tmp             # where image import makes its work dir
MB=$((1 << 20))
TOLERANCE=$((4 * MB))       # df noise allowed after an import

if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root"; exit 77; fi
for t in python3 df findmnt unshare; do
	command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
if [ -z "${TSR_IMPORT_LIMITS_NS:-}" ]; then
	TSR_IMPORT_LIMITS_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
mount -t tmpfs -o size=2g,mode=1777 tsr-import-limits "$WORKFS" ||
	{ echo "FAIL: a tmpfs on $WORKFS"; exit 1; }
W=$(mktemp -d /tmp/tsr-import-limits.XXXXXX)
cleanup() { [ -n "${KEEP:-}" ] && echo "kept $W" || rm -rf "$W"; }
trap cleanup EXIT
pass=0 failc=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
ko() { echo "FAIL: $*"; failc=$((failc + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else ko "$what"; fi; }
T() { "$TESSERA" --store "$W/store" "$@"; }
used() { df -B1 --output=used "$WORKFS" | tail -1 | tr -d ' '; }

# What must not change: the listings, the store's bytes, our leftovers.
state() {
	T volume ls; T layer ls; T image ls
	du -s -B1 --apparent-size "$W/store" | cut -f1 | awk -v m=$MB '{print int($1 / m)}'
	ls -d "$WORKFS"/tessera-import-* /run/tessera/import-* 2>/dev/null | sort
	findmnt -rn -o TARGET | grep -c '^/run/tessera/import-'
}

T init >/dev/null || { ko "init"; exit 1; }
echo "making archives"
python3 "$HERE/make_bomb.py" "$W/a.tar" $((2 << 30)) --gzip-layers &&
python3 "$HERE/make_bomb.py" "$W/b.tar.gz" $((2 << 30)) --gzip-archive &&
python3 "$HERE/make_bomb.py" "$W/c.tar" $((1 << 20)),$(((1 << 20) - 1024)) --gzip-layers ||
	{ ko "make_bomb.py"; exit 1; }
ls -l "$W"/*.tar*

# refused NAME CAP_BYTES MESSAGE ARCHIVE [OPTIONS]: the import fails with
# MESSAGE, its disk use never passes the cap and ends where it began.
refused() {
	local name=$1 cap=$2 msg=$3 file=$4 before peak=0 u0 u pid rc
	shift 4
	state >"$W/$name.before" 2>&1
	u0=$(used)
	T image import "$file" --name "$name" "$@" >"$W/$name.out" 2>"$W/$name.err" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		u=$(used); [ "$u" -gt "$peak" ] && peak=$u
		sleep 0.1
	done
	wait "$pid"; rc=$?
	check "$name: refused (exit 1)" [ "$rc" -eq 1 ]
	check "$name: says '$msg'" grep -q -- "$msg" "$W/$name.err"
	grep 'image import' "$W/$name.err" | sed 's/^/    /'
	check "$name: nothing on stdout" [ ! -s "$W/$name.out" ]
	state >"$W/$name.after" 2>&1
	check "$name: store, listings, work and run dirs as before" \
		diff -u "$W/$name.before" "$W/$name.after"
	u=$(used)
	echo "    df used: before $u0, peak $peak, after $u (cap $cap)"
	check "$name: disk use back within $((TOLERANCE / MB)) MB" \
		[ $((u > u0 ? u - u0 : u0 - u)) -le "$TOLERANCE" ]
	check "$name: disk use stayed below the cap" [ $((peak - u0)) -le $((cap + 64 * MB)) ]
}

# A: a layer that decompresses past --max-extract (counted in memory).
refused bomb-layer $((1 << 30)) "layer 1 takes the import past its limit of 1.0G" \
	"$W/a.tar" --max-extract 1G
# A again: past --max-layer, with the default cap on the whole import.
refused bomb-layer-cap $((512 << 20)) "layer 1 expands past the limit of 512.0M" \
	"$W/a.tar" --max-layer 512M
# B: a blob that decompresses into the work dir past --max-layer.
refused bomb-blob $((256 << 20)) "blob sha256:[0-9a-f]*\.\. expands past the limit of 256.0M" \
	"$W/b.tar.gz" --max-layer 256M
# C: each layer fits --max-layer, both together pass --max-extract.
refused bomb-total $((1600 << 10)) "layer 2 takes the import past its limit of 1.6M" \
	"$W/c.tar" --max-extract 1600K --max-layer 1100K

# An image that fits its caps imports (the caps do not refuse everything).
if T image import "$W/c.tar" --name fits --max-extract 64M >"$W/fits.out" 2>"$W/fits.err"; then
	ok "an image within its caps imports"
else
	ko "an image within its caps imports: $(tail -2 "$W/fits.err")"
fi
check "its image is listed" grep -q '^fits ' <(T image ls)
check "bad --max-extract is a usage error" bash -c \
	"'$TESSERA' --store '$W/store' image import '$W/c.tar' --max-extract lots 2>/dev/null; [ \$? -eq 2 ]"

echo "import_limits: $pass passed, $failc failed"
[ "$failc" -eq 0 ]
