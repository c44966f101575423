#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/containerd.sh: issue 6's benchmarks. tessera as containerd's proxy
# snapshotter beside containerd's own overlayfs snapshotter, in one
# containerd (its own root, state, sockets and config) and one `tessera
# serve`, on the same images, interleaved:
#
#  import       `ctr images import --snapshotter S IMG.tar` wall time, with an
#               empty content store each time (both images removed with
#               `ctr images rm --sync` before), and the same + sync(1).
#  run          `ctr run --rm --snapshotter S IMG id /bin/true` wall time
#               (start to exit: Prepare, mounts, runc, exit, unmount, Remove).
#  first-write  in a running container, the first write of 4 KiB + fsync
#               into a 256 MiB file of an image layer, timed inside one
#               process in the container (bench/fsync_write.c: open O_WRONLY
#               -- overlayfs copies up here --, pwrite, fsync); then, for
#               comparison, 4 KiB more by busybox dd conv=notrunc,fsync
#               timed from a shell (two process spawns inside the timer);
#               and the space it took: overlayfs: the container's upper dir
#               (du -B1); tessera: the store directory (du -B1) and the
#               volume's "chunks written".
#
# Images: "syn" (umoci + busybox-static: layer 1 busybox, a 64 MiB and a
# 256 MiB random file; layer 2 changes the 64 MiB file by 3 bytes and adds a
# file: tests/snapshotter/containerd.sh's image plus the 256 MiB file) and,
# unless --no-deb, "deb" (the Debian bookworm minbase of
# /var/tmp/tessera-test-cache/bookworm-minbase.tar, as in
# tests/imagefmt/oci/oci_apply.sh: 2 layers; made with debootstrap if missing).
#
#   bench/containerd.sh --tessera BIN [--dir SCRATCH] [--reps N] [--runs N]
#                       [--md FILE] [--no-deb] [--quick] [--keep]
#
#   --tessera  the tessera CLI (required; `tessera serve` is the snapshotter)
#   --dir      where the work directory is made (default /var/tmp)
#   --reps     rounds (default 3); each round does import, run and
#              first-write with both snapshotters, alternating which goes first
#   --runs     `ctr run` timings per snapshotter, image and round (default 3)
#   --md FILE  also write the tables (markdown) to FILE
#   --no-deb   only the synthetic image
#   --quick    1 round, 1 run, no Debian image (a smoke test)
#   --keep     keep the work directory
#   --profile FILE  after the rounds, one more tessera first write with
#              `strace -f -tt -T` attached to `tessera serve` (trace in FILE,
#              a per-syscall summary of the write's window as JSON)
#   --report JSON  only write the tables (--md, or stdout) of a results file
#              this script printed before, and exit
#
# Results: JSON lines on stdout (bench "containerd"); progress on stderr.
# Needs root, containerd + ctr + runc, umoci, skopeo, busybox-static, gcc
# (static libc), jq, /dev/fuse, loop devices.  Exit 77 = skipped.
set -euo pipefail

TESSERA=
parent=/var/tmp
reps=3
runs=3
md=
deb=1
keep=0
report=
profile=
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=/var/tmp/tessera-test-cache

usage() { sed -n '4,47p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case "$1" in
	--tessera) TESSERA=$2; shift 2 ;;
	--dir) parent=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--md) md=$2; shift 2 ;;
	--no-deb) deb=0; shift ;;
	--quick) reps=1; runs=1; deb=0; shift ;;
	--keep) keep=1; shift ;;
	--report) report=$2; shift 2 ;;
	--profile) profile=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "containerd.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
# render RESULTS.JSON: the markdown tables of a results file.
render() {
	jq -rs -f /dev/stdin "$1" <<'JQ'
def r(n): if . == null then "–" else (. * pow(10; n) | round) / pow(10; n) | tostring end;
def human: if . == null then "–" elif . >= 1048576 then "\(. / 1048576 | r(1)) MiB"
	elif . >= 1024 then "\(. / 1024 | r(1)) KiB" else "\(.) B" end;
def runs(p; im; s; f): map(select(.param == p and (im == null or .image == im) and .snapshotter == s) | f | r(3)) | join(", ");
def med: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def pf: if .pass == null then "n/a" elif .pass then "PASS" else "MISS" end;
. as $all | ($all | map(select(.param == "summary"))) as $sum
| ($all | map(select(.param == "image")) | map({(.image): .tar_bytes}) | add) as $tars
| [
  "## containerd: tessera snapshotter vs overlayfs (issue 6)",
  "",
  "One containerd 1.6 (own root/state/sockets), one `tessera serve` (default 8G base volumes, 64 KiB chunks, zstd), same images, interleaved (odd rounds overlayfs first). Medians over rounds; runs listed in order.",
  "Images: syn = busybox-static + 64 MiB + 256 MiB random files, 2 layers (tar \($tars.syn | human)); deb = Debian bookworm minbase, 2 layers (tar \($tars.deb | human)).",
  "",
  "| metric | image | overlayfs runs | tessera runs | overlayfs median | tessera median | ratio | target | result |",
  "|---|---|---|---|---:|---:|---:|---:|---|",
  ($sum[] | select(.metric != "first-write-space") | . as $x |
   (if .metric == "first-write" then "µs" else "s" end) as $u |
   (if .metric == "import+sync" then "import" else .metric end) as $p |
   (if .metric == "import+sync" then "seconds_sync" elif .metric == "first-write" then "us" else "seconds" end) as $f |
   "| \(.metric) | \(.image // "syn") | \($all | runs($p; $x.image; "ovl"; .[$f])) | \($all | runs($p; $x.image; "tsr"; .[$f])) | \(.overlayfs | if $u == "µs" then r(0) else r(3) end) \($u) | \(.tessera | if $u == "µs" then r(0) else r(3) end) \($u) | \(if .metric == "first-write" then "\(.ratio | r(1))x faster" else "\(.ratio | r(2))x" end) | \(if .target == null then "–" elif .cmp == "le" then "<= \(.target)x" else ">= \(.target)x faster" end) | \(pf) |"),
  "",
  ($sum[] | select(.metric == "first-write-space") |
   "Space of the first write (median): overlayfs upper dir +\(.overlayfs | human); tessera store +\(.tessera | human) (\(.tessera_chunks) chunks written to the volume); overlayfs / tessera = \(.ratio | r(0))x. Per round, overlayfs: \($all | map(select(.param == "first-write" and .snapshotter == "ovl") | .space_bytes | human) | join(", ")); tessera: \($all | map(select(.param == "first-write" and .snapshotter == "tsr") | "\(.space_bytes | human) (\(.chunks) chunks)") | join(", "))."),
  "",
  (($all | map(select(.param == "first-write-dd"))) as $dd | if ($dd | length) == 0 then empty else
   "A second 4 KiB + fsync into the same 256 MiB file right after (overlayfs: already copied up), by `busybox dd conv=notrunc,fsync` timed from a shell (two process spawns inside the timer), median µs: overlayfs \($dd | map(select(.snapshotter == "ovl") | .us) | med | r(0)) (\($dd | map(select(.snapshotter == "ovl") | .us | r(0)) | join(", "))), tessera \($dd | map(select(.snapshotter == "tsr") | .us) | med | r(0)) (\($dd | map(select(.snapshotter == "tsr") | .us | r(0)) | join(", ")))." end),
  (($all | map(select(.param == "first-write-split"))) as $sp | if ($sp | length) == 0 then empty else
   "",
   "The first write into the 64 MiB file of the same containers, in one process (bench/fsync_write.c: open O_WRONLY, pwrite 4 KiB, fsync), medians in µs:",
   "",
   "| snapshotter | open | pwrite | fsync | total | total per round |",
   "|---|---:|---:|---:|---:|---|",
   (["ovl", "tsr"][] as $s | $sp | map(select(.snapshotter == $s)) | select(length > 0) |
    "| \(if $s == "ovl" then "overlayfs" else "tessera" end) | \(map(.open_us) | med | r(0)) | \(map(.write_us) | med | r(0)) | \(map(.fsync_us) | med | r(0)) | \(map(.total_us) | med | r(0)) | \(map(.total_us | r(0)) | join(", ")) |"),
   "" end),
  ($all | map(select(.param == "profile")) | .[0] | select(. != null) |
   "Profile: one more tessera first write with `strace -f -tt -T` on `tessera serve`: \(.us_under_strace) µs in the container under strace; the daemon's syscalls finished in that window, by total time: \(.syscalls[:10] | map("\(.name) \(.count)x \(.seconds * 1e3 | r(2)) ms") | join(", ")).", ""),
  "1-minute load at each measurement: import \($all | map(select(.param == "import") | "\(.snapshotter)\(.round) \(.load1)") | join(", ")); first-write \($all | map(select(.param == "first-write") | "\(.snapshotter)\(.round) \(.load1)") | join(", "))."
] | .[]
JQ
}
if [ -n "$report" ]; then
	if [ -n "$md" ]; then render "$report" >"$md"; else render "$report"; fi
	exit 0
fi
[ -n "$TESSERA" ] || { echo "containerd.sh: --tessera BIN is required" >&2; exit 2; }
TESSERA=$(realpath "$TESSERA")
skip() { echo "containerd.sh: skipped: $*" >&2; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -c /dev/loop-control ] || skip "no /dev/loop-control"
for t in containerd ctr runc umoci skopeo busybox jq gcc du; do
	command -v "$t" >/dev/null || skip "needs $t"
done
BUSYBOX=$(command -v busybox)
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' || skip "needs busybox-static"

t_start=$(date +%s)
progress() { echo "[containerd $(( $(date +%s) - t_start ))s] $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.4f", b - a }'; }
load1() { cut -d' ' -f1 /proc/loadavg; }

W=$(mktemp -d "$parent/tsr-ctrd-bench.XXXXXX")
S=$W/store SOCK=$W/tessera.sock MNT=$W/fuse CD=$W/ctrd
OUT=$W/results.json
: >"$OUT"
SERVE_PID= CTRD_PID= STRACE_PID=

C() { ctr --address "$CD/containerd.sock" "$@"; }
cleanup() {
	set +e
	if [ -n "$STRACE_PID" ]; then kill "$STRACE_PID" 2>/dev/null; wait "$STRACE_PID" 2>/dev/null; fi
	if [ -n "$CTRD_PID" ]; then
		for c in $(C task ls -q 2>/dev/null); do C task kill -s KILL "$c" >/dev/null 2>&1; done
		sleep 0.5
		kill "$CTRD_PID" 2>/dev/null; wait "$CTRD_PID" 2>/dev/null
	fi
	# Whatever containerd left mounted (rootfs mounts, overlay, loop-backed ext4).
	findmnt -rn -o TARGET | grep -F "$W/" | sort -r | while read -r m; do
		[ "$m" = "$MNT" ] || umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	if [ -n "$SERVE_PID" ]; then
		kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null
	fi
	mountpoint -q "$MNT" && umount -l "$MNT"
	if [ $keep = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

emit() { jq -cn "$@" | tee -a "$OUT"; }
TS() { "$TESSERA" --store "$S" "$@"; }
RUNFLAGS=(--runc-root "$W/runc" --fifo-dir "$W/fifo")
OVL_SNAPS=$CD/root/io.containerd.snapshotter.v1.overlayfs/snapshots

# ---- the daemons -----------------------------------------------------------------
TS init >/dev/null
"$TESSERA" --store "$S" serve --socket "$SOCK" --mount "$MNT" >"$W/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "containerd.sh: tessera serve did not start: $(tail -3 "$W/serve.log")" >&2; exit 1; }
mkdir -p "$CD"
cat >"$CD/config.toml" <<EOF
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CD/containerd.sock"
[ttrpc]
  address = "$CD/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CD/opt"
[proxy_plugins]
  [proxy_plugins.tessera]
    type = "snapshot"
    address = "$SOCK"
EOF
containerd --config "$CD/config.toml" >"$CD/log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 50); do C version >/dev/null 2>&1 && break; sleep 0.1; done
C version >/dev/null 2>&1 || { echo "containerd.sh: containerd did not start: $(tail -3 "$CD/log")" >&2; exit 1; }
progress "tessera serve (pid $SERVE_PID) and containerd (pid $CTRD_PID) up in $W"

# ---- images --------------------------------------------------------------------------
# nsnow: CLOCK_MONOTONIC in ns, static (busybox date has no %N).
printf '%s\n' '#include <stdio.h>' '#include <time.h>' \
	'int main(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);' \
	'printf("%lld%09ld\n", (long long)t.tv_sec, t.tv_nsec); return 0; }' >"$W/nsnow.c"
gcc -O2 -static -o "$W/nsnow" "$W/nsnow.c"
# fsync_write: open / pwrite 4 KiB / fsync, each timed (bench/fsync_write.c).
gcc -O2 -static -o "$W/fsync_write" "$HERE/fsync_write.c"

progress "building the synthetic image (64 MiB + 256 MiB random files, 2 layers)"
L=$W/layout B=$W/bundle R=$W/bundle/rootfs
{ umoci init --layout "$L" && umoci new --image "$L:t" && umoci unpack --image "$L:t" "$B"; } >/dev/null
mkdir -p "$R/bin" "$R/data" "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"; cp "$W/nsnow" "$W/fsync_write" "$R/bin/"
for l in sh true sleep dd sync; do ln -s busybox "$R/bin/$l"; done
echo one >"$R/data/l1"
head -c 64M /dev/urandom >"$R/data/big"
head -c 256M /dev/urandom >"$R/data/f256"
umoci repack --refresh-bundle --image "$L:t" "$B" >/dev/null
printf 'XYZ' | dd of="$R/data/big" bs=1 seek=$((32 << 20)) conv=notrunc status=none
echo two >"$R/data/l2"
umoci repack --refresh-bundle --image "$L:t" "$B" >/dev/null
rm -rf "$B"
images=(syn)
for sn in ovl tsr; do skopeo copy -q "oci:$L:t" "oci-archive:$W/syn-$sn.tar:bench/syn-$sn:t"; done
rm -rf "$L"

deb_rootfs() {
	mkdir -p "$CACHE"
	[ -s "$CACHE/bookworm-minbase.tar" ] && return 0
	command -v debootstrap >/dev/null || return 1
	local d=$W/debootstrap
	debootstrap --variant=minbase bookworm "$d" http://deb.debian.org/debian >"$W/debootstrap.log" 2>&1 || return 1
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$d" -cf "$CACHE/bookworm-minbase.tar.tmp" . &&
		mv "$CACHE/bookworm-minbase.tar.tmp" "$CACHE/bookworm-minbase.tar"
}
if [ $deb = 1 ] && deb_rootfs; then
	progress "building the Debian minbase image (2 layers)"
	DL=$W/deblayout DB=$W/debbundle
	{ umoci init --layout "$DL" && umoci new --image "$DL:deb" && umoci unpack --image "$DL:deb" "$DB"; } >/dev/null
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$DB/rootfs" -xpf "$CACHE/bookworm-minbase.tar"
	umoci repack --refresh-bundle --image "$DL:deb" "$DB" >/dev/null
	rm -rf "$DB/rootfs/usr/share/doc" "$DB/rootfs/var/cache/apt"; echo tessera >"$DB/rootfs/etc/hostname"
	umoci repack --image "$DL:deb" "$DB" >/dev/null
	for sn in ovl tsr; do skopeo copy -q "oci:$DL:deb" "oci-archive:$W/deb-$sn.tar:bench/deb-$sn:t"; done
	rm -rf "$DL" "$DB"
	images+=(deb)
elif [ $deb = 1 ]; then
	progress "no Debian minbase (no cache, no debootstrap): synthetic image only"
fi
for im in "${images[@]}"; do
	emit --arg im "$im" --argjson b "$(stat -c %s "$W/$im-ovl.tar")" \
		'{bench: "containerd", param: "image", image: $im, tar_bytes: $b}'
done

snap_of() { [ "$1" = ovl ] && echo overlayfs || echo tessera; }
img_of() { echo "bench/$1-$2:t"; }  # IMAGE SN

rm_images() { # [IMAGE]: removes the bench images (of IMAGE), waits for containerd's GC
	local names
	names=$(C images ls -q | grep "^bench/${1:-}" || true)
	[ -z "$names" ] || C images rm --sync $names >/dev/null
}

# ---- 1. import --------------------------------------------------------------------------
# Each timed import starts from an empty content store (no bench image left,
# GC done): both snapshotters ingest the same blobs and unpack every layer.
# Then the other one is imported again, untimed, so both images exist.
import_round() { # ROUND FIRST SECOND
	local r=$1 im s t0 t1 t2
	for im in "${images[@]}"; do
		rm_images "$im-"
		for s in "$2" "$3"; do
			[ "$s" = "$3" ] && C images rm --sync "$(img_of "$im" "$2")" >/dev/null
			sync; sleep 1
			local l0; l0=$(load1)
			t0=$(now)
			C images import --snapshotter "$(snap_of "$s")" "$W/$im-$s.tar" >"$W/import.log" 2>&1 ||
				{ echo "containerd.sh: import $im into $s failed: $(tail -3 "$W/import.log")" >&2; exit 1; }
			t1=$(since "$t0"); sync; t2=$(since "$t0")
			emit --arg im "$im" --arg s "$s" --argjson r "$r" --argjson t "$t1" --argjson ts "$t2" \
				--arg l "$l0" '{bench: "containerd", param: "import", image: $im, snapshotter: $s,
				round: $r, seconds: $t, seconds_sync: $ts, load1: $l}'
			progress "import $im $s round $r: ${t1}s (+sync ${t2}s), load $l0"
		done
		C images import --snapshotter "$(snap_of "$2")" "$W/$im-$2.tar" >/dev/null
	done
}

# ---- 2. run ------------------------------------------------------------------------------
n_run=0
run_round() { # ROUND FIRST SECOND
	local r=$1 im s i t0 t1
	for im in "${images[@]}"; do
		for i in $(seq "$runs"); do
			for s in "$2" "$3"; do
				n_run=$((n_run + 1))
				t0=$(now)
				C run --rm --snapshotter "$(snap_of "$s")" "${RUNFLAGS[@]}" "$(img_of "$im" "$s")" \
					"run$n_run" /bin/true >"$W/run.log" 2>&1 ||
					{ echo "containerd.sh: run $im $s failed: $(tail -3 "$W/run.log")" >&2; exit 1; }
				t1=$(since "$t0")
				emit --arg im "$im" --arg s "$s" --argjson r "$r" --argjson t "$t1" --arg l "$(load1)" \
					'{bench: "containerd", param: "run", image: $im, snapshotter: $s, round: $r,
					seconds: $t, load1: $l}'
			done
		done
		progress "run $im round $r: $(jq -r --arg im "$im" --argjson r "$r" \
			'select(.param == "run" and .image == $im and .round == $r) | "\(.snapshotter) \(.seconds)"' \
			"$OUT" | tr '\n' ' ')"
	done
}

# ---- 3. first write --------------------------------------------------------------------------
# The timed write: 4 KiB at 100 MiB into /data/f256 (a file of layer 1) by
# fsync_write.  After it, dd writes 4 KiB at 200 MiB (another chunk, the file
# already copied up on overlayfs: a figure of the dd path alone).
WRITE='a=$(/bin/nsnow); busybox dd if=/dev/urandom of=/data/f256 bs=4096 count=1 seek=51200 conv=notrunc,fsync 2>/dev/null || echo ddfail; b=$(/bin/nsnow); echo $(( (b - a) / 1000 ))'
space() { # SN CID -> bytes (and chunks written for tessera)
	if [ "$1" = ovl ]; then
		local up
		up=$(C snapshots --snapshotter overlayfs mounts /x "$2" | grep -o 'upperdir=[^,]*' | cut -d= -f2)
		echo "$(du -s -B1 "$up" | cut -f1) 0"
	else
		local vol
		vol=$(TS volume ls | awk '$1 ~ /^ctrd-/ {print $1}' | head -1)
		echo "$(du -s -B1 "$S" | cut -f1) $(TS volume stat "$vol" | awk -F': *' '/^chunks written/ {print $2 + 0}')"
	fi
}
fw_round() { # ROUND FIRST SECOND
	local r=$1 s cid us sp0 sp1 c0 c1 l0
	for s in "$2" "$3"; do
		cid=fw-$s-$r
		C run -d --snapshotter "$(snap_of "$s")" "${RUNFLAGS[@]}" "$(img_of syn "$s")" "$cid" \
			/bin/sleep 600 >/dev/null
		for _ in $(seq 50); do C task ls | grep "^$cid .*RUNNING" >/dev/null && break; sleep 0.1; done
		C task exec --exec-id sync0 "$cid" /bin/busybox sync
		sleep 1
		read -r sp0 c0 < <(space "$s" "$cid")
		l0=$(load1)
		# Timed inside one process in the container (open O_WRONLY, where
		# overlayfs copies up; pwrite 4 KiB; fsync): no process spawn in
		# the figure.
		us=$(C task exec --exec-id w "$cid" /bin/fsync_write /data/f256 $((100 << 20)) | jq '.total_us | round')
		case "$us" in ''|*[!0-9]*) echo "containerd.sh: first write in $s: '$us'" >&2; exit 1 ;; esac
		C task exec --exec-id sync1 "$cid" /bin/busybox sync
		sleep 1
		read -r sp1 c1 < <(space "$s" "$cid")
		emit --arg s "$s" --argjson r "$r" --argjson us "$us" --argjson g $((sp1 - sp0)) \
			--argjson c $((c1 - c0)) --arg l "$l0" \
			'{bench: "containerd", param: "first-write", snapshotter: $s, round: $r, us: $us,
			space_bytes: $g, chunks: $c, load1: $l}'
		progress "first-write $s round $r: ${us} µs, +$((sp1 - sp0)) bytes, $((c1 - c0)) chunks, load $l0"
		# The same as a shell user would time it: two process spawns
		# (nsnow, busybox dd) inside the timer; another 4 KiB of f256.
		us=$(C task exec --exec-id wdd "$cid" /bin/sh -c "$WRITE")
		case "$us" in ''|*[!0-9]*) echo "containerd.sh: dd first write in $s: '$us'" >&2; exit 1 ;; esac
		emit --arg s "$s" --argjson r "$r" --argjson us "$us" \
			'{bench: "containerd", param: "first-write-dd", snapshotter: $s, round: $r, us: $us}'

		# The same in one process, step by step, into the 64 MiB file (also
		# untouched in this container): where the time goes.
		C task exec --exec-id split "$cid" /bin/fsync_write /data/big $((16 << 20)) |
			jq -c --arg s "$s" --argjson r "$r" '{bench: "containerd", param: "first-write-split",
			snapshotter: $s, round: $r, file: "64M"} + .' | tee -a "$OUT"
		C task kill -s KILL "$cid" >/dev/null 2>&1 || true
		for _ in $(seq 50); do C task ls | grep "^$cid .*STOPPED" >/dev/null && break; sleep 0.1; done
		C task rm "$cid" >/dev/null 2>&1 || true
		C container rm "$cid" >/dev/null
	done
}

for r in $(seq "$reps"); do
	if [ $((r % 2)) = 1 ]; then o=(ovl tsr); else o=(tsr ovl); fi
	progress "round $r/$reps (${o[0]} first), load $(cut -d' ' -f1-3 /proc/loadavg)"
	import_round "$r" "${o[@]}"
	# One untimed run each after an import: the first run of an image pays one-off costs.
	for im in "${images[@]}"; do
		for s in ovl tsr; do
			n_run=$((n_run + 1))
			C run --rm --snapshotter "$(snap_of "$s")" "${RUNFLAGS[@]}" "$(img_of "$im" "$s")" \
				"run$n_run" /bin/true >/dev/null 2>&1 || true
		done
	done
	run_round "$r" "${o[@]}"
	fw_round "$r" "${o[@]}"
done

# ---- profile: one more tessera first write under strace --------------------------------
if [ -n "$profile" ]; then
	cid=fw-profile
	C run -d --snapshotter tessera "${RUNFLAGS[@]}" "$(img_of syn tsr)" "$cid" /bin/sleep 600 >/dev/null
	for _ in $(seq 50); do C task ls | grep "^$cid .*RUNNING" >/dev/null && break; sleep 0.1; done
	C task exec --exec-id sync0 "$cid" /bin/busybox sync
	sleep 1
	strace -f -tt -T -o "$profile" -p "$SERVE_PID" 2>"$W/strace.err" &
	STRACE_PID=$!
	sleep 2
	m0=$(date +%H:%M:%S.%N)
	us=$(C task exec --exec-id w "$cid" /bin/sh -c "$WRITE")
	m1=$(date +%H:%M:%S.%N)
	sleep 0.5
	kill "$STRACE_PID"; wait "$STRACE_PID" 2>/dev/null || true; STRACE_PID=
	# Syscalls that finished between the exec's start and end (times: HH:MM:SS.us).
	awk -v a="${m0:0:15}" -v b="${m1:0:15}" '$2 >= a && $2 <= b && /<[0-9.]+>$/ {
		n = ($3 == "<...") ? $4 : $3; sub(/\(.*/, "", n)
		t = $NF; gsub(/[<>]/, "", t); c[n]++; s[n] += t
	} END { for (n in c) printf "%s %d %.6f\n", n, c[n], s[n] }' "$profile" | sort -k3 -gr >"$W/prof.txt"
	jq -Rn --argjson us "$us" --arg a "$m0" --arg b "$m1" \
		'{bench: "containerd", param: "profile", snapshotter: "tsr", us_under_strace: $us,
		  window: "\($a)-\($b)",
		  syscalls: [inputs | split(" ") | {name: .[0], count: (.[1] | tonumber), seconds: (.[2] | tonumber)}]}' \
		<"$W/prof.txt" | tee -a "$OUT"
	progress "profile: ${us} µs under strace; trace in $profile"
	C task kill -s KILL "$cid" >/dev/null 2>&1 || true
	for _ in $(seq 50); do C task ls | grep "^$cid .*STOPPED" >/dev/null && break; sleep 0.1; done
	C task rm "$cid" >/dev/null 2>&1 || true
	C container rm "$cid" >/dev/null
fi
rm_images

# ---- summary --------------------------------------------------------------------------------
jq -s -c -f /dev/stdin "$OUT" <<'JQ' | tee -a "$OUT"
def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def med(f): map(f) | median;
def row(p; im; f; tgt; cmp):
	(map(select(.param == p and (im == null or .image == im)))) as $x
	| ($x | map(select(.snapshotter == "ovl")) | med(f)) as $o
	| ($x | map(select(.snapshotter == "tsr")) | med(f)) as $t
	| {bench: "containerd", param: "summary", metric: p, image: im, overlayfs: $o, tessera: $t,
	   n: ($x | map(select(.snapshotter == "tsr")) | length),
	   ratio: (if $o and $t and $o > 0 and $t > 0 then (if cmp == "le" then $t / $o else $o / $t end) else null end),
	   target: tgt, cmp: cmp};
. as $all
| ($all | map(select(.param == "image")) | map(.image)) as $ims
| ($ims[] as $im | $all | row("import"; $im; .seconds; 1.5; "le")),
  ($ims[] as $im | $all | row("import+sync"; $im; .seconds_sync; null; "le") | .metric = "import+sync"
	| . as $r | ($all | map(select(.param == "import" and .image == $im))) as $x
	| $r + {overlayfs: ($x | map(select(.snapshotter == "ovl")) | med(.seconds_sync)),
	        tessera: ($x | map(select(.snapshotter == "tsr")) | med(.seconds_sync)),
	        n: ($x | map(select(.snapshotter == "tsr")) | length)}
	| .ratio = (if .overlayfs and .tessera then .tessera / .overlayfs else null end)),
  ($ims[] as $im | $all | row("run"; $im; .seconds; 1.3; "le")),
  ($all | row("first-write"; null; .us; 100; "ge")),
  ($all | row("first-write"; null; .space_bytes; null; "le") | .metric = "first-write-space"
	| . as $r | ($all | map(select(.param == "first-write"))) as $x
	| $r + {overlayfs: ($x | map(select(.snapshotter == "ovl")) | med(.space_bytes)),
	        tessera: ($x | map(select(.snapshotter == "tsr")) | med(.space_bytes)),
	        tessera_chunks: ($x | map(select(.snapshotter == "tsr")) | med(.chunks)),
	        n: ($x | map(select(.snapshotter == "tsr")) | length)}
	| .ratio = (if .overlayfs and .tessera and .tessera > 0 then .overlayfs / .tessera else null end))
| if .target == null then . + {pass: null}
  elif .cmp == "le" then . + {pass: (.ratio != null and .ratio <= .target)}
  else . + {pass: (.ratio != null and .ratio >= .target)} end
JQ

if [ -n "$md" ]; then
	render "$OUT" >"$md"
	progress "tables in $md"
fi
progress "done"
