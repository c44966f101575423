#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/image_import.sh: issue 5's benchmarks. `tessera image import` beside
# `ctr images import` into containerd's overlayfs snapshotter, on a Debian
# minbase image and on the synthetic image of tests/imagefmt/oci/oci_apply.sh
# (built the same way); and the dedup between two related Debian images at
# chunk sizes 4, 16 and 64 KiB.
#
#   bench/image_import.sh --tessera BIN [--dir SCRATCH] [--reps N] [--md FILE]
#                         [--chunk-sizes 4K,16K,64K] [--no-flat] [--quick] [--keep]
#
#   --tessera      the tessera CLI (required)
#   --dir          where the work directory is made (default /var/tmp)
#   --reps         rounds of the import comparison (default 3); each round
#                  imports every image with both systems, alternating which
#                  goes first, each into a fresh store / a fresh containerd root
#   --md FILE      also write the tables (markdown) to FILE
#   --chunk-sizes  chunk sizes of the dedup stores (default 4K,16K,64K)
#   --no-flat      skip the dedup of the flattened (one-layer) images
#   --quick        synthetic image only, no dedup (a smoke test)
#   --keep         keep the work directory
#
# Results: JSON lines on stdout (bench "import" and "import-dedup"); progress
# on stderr.  Needs root, containerd + ctr, umoci, skopeo, busybox, jq, and a
# minbase tar in /var/tmp/tessera-test-cache (made with debootstrap when
# missing, as the test does).  Exit 77 = skipped (not root / tools missing).
#
# Times: "import" is the command's wall time; "+sync" adds a sync(1) right
# after it (neither side fsyncs everything it writes before returning).
# Sizes: du -s -B1 (allocated bytes).  tessera: the whole store directory.
# containerd: its overlayfs snapshot directories
# (root/io.containerd.snapshotter.v1.overlayfs/snapshots) and, separately, its
# content store (root/io.containerd.content.v1.content: the compressed blobs,
# which containerd keeps beside the unpacked snapshots).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TESSERA=
parent=/var/tmp
reps=3
md=
chunk_sizes=4K,16K,64K
flat=1
quick=0
keep=0
CACHE=/var/tmp/tessera-test-cache

usage() { sed -n '4,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case "$1" in
	--tessera) TESSERA=$2; shift 2 ;;
	--dir) parent=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--md) md=$2; shift 2 ;;
	--chunk-sizes) chunk_sizes=$2; shift 2 ;;
	--no-flat) flat=0; shift ;;
	--quick) quick=1; shift ;;
	--keep) keep=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "image_import.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
[ -n "$TESSERA" ] || { echo "image_import.sh: --tessera BIN is required" >&2; exit 2; }
TESSERA=$(realpath "$TESSERA")
if [ "$(id -u)" -ne 0 ]; then echo "image_import.sh: needs root" >&2; exit 77; fi
for t in containerd ctr umoci skopeo busybox jq; do
	command -v "$t" >/dev/null || { echo "image_import.sh: $t not installed" >&2; exit 77; }
done

t_start=$(date +%s)
progress() { echo "[import $(( $(date +%s) - t_start ))s] $*" >&2; }
now() { date +%s.%N; }
W=$(mktemp -d "$parent/tsr-import.XXXXXX")
OUT=$W/results.json
: >"$OUT"
ctr_pid=
cleanup() {
	if [ -n "$ctr_pid" ]; then
		kill "$ctr_pid" 2>/dev/null || true
		wait "$ctr_pid" 2>/dev/null || true
	fi
	# whatever an interrupted import or containerd left mounted under W
	local m
	for m in $(findmnt -rn -o TARGET | grep -F "$W/" | sort -r || true); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	if [ $keep = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

du_b() { du -s -B1 "$1" 2>/dev/null | cut -f1; }
df_field() { # STORE LABEL -> the number after LABEL in `tessera df`
	"$TESSERA" --store "$1" df | awk -v l="$2" 'index($0, l) == 1 { sub(l, ""); print $1; exit }'
}
emit() { jq -cn "$@" | tee -a "$OUT"; }

# ---- images -------------------------------------------------------------------
# The synthetic image: tests/imagefmt/oci/oci_apply.sh's (4 layers: busybox,
# a 64 MiB random file changed by 3 bytes in layer 2, deletions, an opaque
# dir, hard links, fifo, devices, xattrs, odd modes and owners).
build_synthetic() {
	local L=$W/syn-layout B=$W/syn-bundle R=$W/syn-bundle/rootfs S=$W/syn-stage3
	local T='2001-02-03 04:05:06.123456789' m
	umoci init --layout "$L" && umoci new --image "$L:t" && umoci unpack --image "$L:t" "$B" >/dev/null
	mkdir -p "$R"/{bin,etc,tmp,data/deldir/sub,data/opq/olddir,data/keep,data/modes}
	cp "$(command -v busybox)" "$R/bin/busybox"; ln -s busybox "$R/bin/sh"; ln -s /bin/busybox "$R/bin/ls"
	echo hello >"$R/etc/hostname"
	echo gone >"$R/data/delfile"
	echo x >"$R/data/deldir/sub/a"; echo y >"$R/data/deldir/b"
	echo old1 >"$R/data/opq/old1"; echo z >"$R/data/opq/olddir/f"
	head -c 64M /dev/urandom >"$R/data/big"
	echo linked >"$R/data/hl_a"; ln "$R/data/hl_a" "$R/data/hl_b"
	mkfifo "$R/data/fifo"; mknod "$R/data/null" c 1 3; mknod "$R/data/blk" b 7 200
	for m in 4755 2755 1777 0600 0000 0777 6711; do echo "$m" >"$R/data/modes/m$m"; chmod "$m" "$R/data/modes/m$m"; done
	chmod 1777 "$R/tmp"; chmod 2750 "$R/data/keep"
	echo owned >"$R/data/owned"; chown 1234:5678 "$R/data/owned"; chown -h 4321:8765 "$R/bin/sh"
	chown 1234:5678 "$R/data/keep"
	echo x >"$R/data/xattr_file"; setfattr -n user.test -v hello "$R/data/xattr_file" 2>/dev/null || true
	touch -h -d "$T" "$R/data/owned" "$R/bin/sh" "$R/data/fifo" "$R/data/keep"
	umoci repack --refresh-bundle --image "$L:t" "$B"
	rm "$R/data/delfile"; rm -rf "$R/data/deldir"
	printf 'XYZ' | dd of="$R/data/big" bs=1 seek=$((32 << 20)) conv=notrunc status=none
	echo new >"$R/data/new2"; chown 1234:5678 "$R/data/new2"; chmod 0640 "$R/data/new2"
	ln "$R/data/new2" "$R/data/new2_link"
	rm "$R/data/fifo"; mkdir "$R/data/fifo"; echo f >"$R/data/fifo/inside"
	umoci repack --refresh-bundle --image "$L:t" "$B"
	mkdir -p "$S/data/opq"; touch -d "$T" "$S/data" "$S/data/opq"
	echo fresh >"$S/data/opq/newfile"; : >"$S/data/opq/.wh..wh..opq"
	: >"$S/data/.wh.hl_b"; mkdir -p "$S/data/keep"; chown 1234:5678 "$S/data/keep"; chmod 2750 "$S/data/keep"
	echo k >"$S/data/keep/k"; touch -d "$T" "$S/data/keep"
	tar --numeric-owner --xattrs -C "$S" --no-recursion -cf "$W/syn-l3.tar" data data/opq data/opq/newfile \
		data/opq/.wh..wh..opq data/.wh.hl_b data/keep data/keep/k
	umoci raw add-layer --image "$L:t" "$W/syn-l3.tar"
	rm -rf "$B" && umoci unpack --image "$L:t" "$B" >/dev/null
	rm -rf "$R/data/keep"; ln -s /nowhere "$R/data/keep"; rm "$R/bin/ls"; echo notalink >"$R/bin/ls"
	umoci repack --image "$L:t" "$B"
	skopeo copy -q "oci:$L:t" "oci-archive:$W/syn.tar:syn:t"
	rm -rf "$B" "$S"
}

deb_rootfs() { # the test's cache; debootstrap when missing
	mkdir -p "$CACHE"
	[ -s "$CACHE/bookworm-minbase.tar" ] && return 0
	command -v debootstrap >/dev/null || return 1
	local d=$W/debootstrap
	debootstrap --variant=minbase bookworm "$d" http://deb.debian.org/debian >"$W/debootstrap.log" 2>&1 || return 1
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$d" -cf "$CACHE/bookworm-minbase.tar.tmp" . &&
		mv "$CACHE/bookworm-minbase.tar.tmp" "$CACHE/bookworm-minbase.tar"
	rm -rf "$d"
}

# changes the files of a few packages in rootfs $1: 16 bytes in the middle of
# every regular file of bash, coreutils, grep, sed, tar (their dpkg lists), as
# a rebuilt package that differs in a little of each file would; and a new
# 3 MiB file, /opt/app/bin.
change_packages() {
	local root=$1 p f sz n=0 bytes=0
	for p in bash coreutils grep sed tar; do
		while IFS= read -r f; do
			[ -f "$root$f" ] && [ ! -L "$root$f" ] || continue
			sz=$(stat -c %s "$root$f")
			[ "$sz" -ge 64 ] || continue
			head -c 16 /dev/urandom | dd of="$root$f" bs=1 seek=$((sz / 2)) conv=notrunc status=none
			n=$((n + 1)); bytes=$((bytes + sz))
		done <"$root/var/lib/dpkg/info/$p.list"
	done
	mkdir -p "$root/opt/app"; head -c 3M /dev/urandom >"$root/opt/app/bin"
	echo "$n $bytes"
}

# The Debian images, as the test makes them: deb = minbase (layer 1) + the
# test's second layer (doc and apt cache removed, hostname); deb2 = deb + one
# layer with change_packages; deb-flat / deb2-flat: the same two trees as
# one-layer images (no layer in common: chunk-level dedup only).
build_debian() {
	local DL=$W/deb-layout DB=$W/deb-bundle
	umoci init --layout "$DL" && umoci new --image "$DL:deb" && umoci unpack --image "$DL:deb" "$DB" >/dev/null
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$DB/rootfs" -xpf "$CACHE/bookworm-minbase.tar"
	umoci repack --refresh-bundle --image "$DL:deb" "$DB"
	rm -rf "$DB/rootfs/usr/share/doc" "$DB/rootfs/var/cache/apt"; echo tessera >"$DB/rootfs/etc/hostname"
	umoci repack --refresh-bundle --image "$DL:deb" "$DB"
	skopeo copy -q "oci:$DL:deb" "oci-archive:$W/deb.tar:deb"
	rootfs_bytes=$(du -s -B1 --apparent-size "$DB/rootfs" | cut -f1)
	if [ $flat = 1 ]; then
		umoci init --layout "$W/debf-layout" && umoci new --image "$W/debf-layout:f" &&
			umoci unpack --image "$W/debf-layout:f" "$W/debf-bundle" >/dev/null
		rmdir "$W/debf-bundle/rootfs" && cp -a "$DB/rootfs" "$W/debf-bundle/rootfs"
		umoci repack --image "$W/debf-layout:f" "$W/debf-bundle"
		skopeo copy -q "oci:$W/debf-layout:f" "oci-archive:$W/deb-flat.tar:debflat"
	fi
	changed=$(change_packages "$DB/rootfs")
	umoci repack --image "$DL:deb" "$DB"
	skopeo copy -q "oci:$DL:deb" "oci-archive:$W/deb2.tar:deb2"
	if [ $flat = 1 ]; then
		umoci init --layout "$W/deb2f-layout" && umoci new --image "$W/deb2f-layout:f" &&
			umoci unpack --image "$W/deb2f-layout:f" "$W/deb2f-bundle" >/dev/null
		rmdir "$W/deb2f-bundle/rootfs" && mv "$DB/rootfs" "$W/deb2f-bundle/rootfs"
		umoci repack --image "$W/deb2f-layout:f" "$W/deb2f-bundle"
		skopeo copy -q "oci:$W/deb2f-layout:f" "oci-archive:$W/deb2-flat.tar:deb2flat"
		rm -rf "$W/debf-bundle" "$W/deb2f-bundle" "$W/debf-layout" "$W/deb2f-layout"
	fi
	rm -rf "$DB"
}

# ---- the two systems ------------------------------------------------------------
# tessera_import NAME ARCHIVE STORE: imports into STORE (made if new); sets
# secs, secs_sync.
tessera_import() {
	local name=$1 archive=$2 store=$3 t0 t1 t2
	[ -d "$store" ] || "$TESSERA" --store "$store" init >/dev/null
	sync
	t0=$(now)
	"$TESSERA" --store "$store" image import "$archive" --name "$name" >"$W/tessera-$name.log" 2>&1 ||
		{ echo "image_import.sh: tessera image import $name failed:" >&2; tail -5 "$W/tessera-$name.log" >&2; return 1; }
	t1=$(now); sync; t2=$(now)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	secs_sync=$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.3f", b - a }')
}

ctr_start() { # DIR: containerd with its own root, state, sockets (RECIPES.md)
	local d=$1 i
	mkdir -p "$d/root" "$d/state" "$d/opt"
	cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOF
	containerd --config "$d/config.toml" >"$d/containerd.log" 2>&1 &
	ctr_pid=$!
	for i in $(seq 1 100); do
		ctr --address "$d/containerd.sock" version >/dev/null 2>&1 && return 0
		kill -0 "$ctr_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "image_import.sh: containerd did not start:" >&2; tail -5 "$d/containerd.log" >&2
	return 1
}
ctr_stop() {
	[ -n "$ctr_pid" ] || return 0
	kill "$ctr_pid" 2>/dev/null || true
	wait "$ctr_pid" 2>/dev/null || true
	ctr_pid=
}
# ctr_import NAME ARCHIVE DIR: a fresh containerd in DIR, ctr images import
# (unpacked into overlayfs), timed; stops it; sets secs, secs_sync.
ctr_import() {
	local name=$1 archive=$2 d=$3 t0 t1 t2
	ctr_start "$d" || return 1
	sync
	t0=$(now)
	ctr --address "$d/containerd.sock" -n bench images import --snapshotter overlayfs \
		"$archive" >"$W/ctr-$name.log" 2>&1 ||
		{ echo "image_import.sh: ctr images import $name failed:" >&2; tail -5 "$W/ctr-$name.log" >&2; ctr_stop; return 1; }
	t1=$(now); sync; t2=$(now)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	secs_sync=$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.3f", b - a }')
	# the image is unpacked: its snapshots committed
	nsnap=$(ctr --address "$d/containerd.sock" -n bench snapshots --snapshotter overlayfs ls 2>/dev/null | tail -n +2 | grep -c . || true)
	ctr_stop
}

# ---- build ----------------------------------------------------------------------
images=(syn)
progress "building the synthetic image (as tests/imagefmt/oci/oci_apply.sh)"
t0=$(now)
build_synthetic >"$W/build-syn.log" 2>&1 || { echo "image_import.sh: synthetic image failed:" >&2; tail "$W/build-syn.log" >&2; exit 1; }
progress "synthetic image built in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s"
rootfs_bytes=0 changed="0 0"
if [ $quick = 0 ]; then
	if deb_rootfs; then
		progress "building the Debian images from $CACHE/bookworm-minbase.tar"
		t0=$(now)
		build_debian >"$W/build-deb.log" 2>&1 || { echo "image_import.sh: Debian images failed:" >&2; tail "$W/build-deb.log" >&2; exit 1; }
		progress "Debian images built in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s; changed files: $changed"
		images=(deb syn)
	else
		echo "image_import.sh: no minbase rootfs (debootstrap failed or missing): Debian image skipped" >&2
	fi
fi
for im in "${images[@]}" deb2 deb-flat deb2-flat; do
	[ -f "$W/$im.tar" ] || continue
	emit --arg im "$im" --argjson bytes "$(stat -c %s "$W/$im.tar")" \
		--argjson layers "$(tar -xOf "$W/$im.tar" index.json | jq -r '.manifests[0].digest' |
			sed 's/^sha256://' | xargs -I{} tar -xOf "$W/$im.tar" blobs/sha256/{} | jq '.layers | length')" \
		'{bench: "import-image", param: $im, archive_bytes: $bytes, layers: $layers}'
done

# ---- import: tessera vs containerd, interleaved ----------------------------------
for r in $(seq 1 "$reps"); do
	for im in "${images[@]}"; do
		order="tessera ctr"
		[ $((r % 2)) = 0 ] && order="ctr tessera"
		for sys in $order; do
			load=$(cut -d' ' -f1-3 /proc/loadavg)
			if [ $sys = tessera ]; then
				st=$W/ts-$im-$r
				progress "round $r: tessera image import $im (load $load)"
				tessera_import "$im" "$W/$im.tar" "$st"
				emit --arg im "$im" --argjson r "$r" --arg load "$load" \
					--argjson s "$secs" --argjson ss "$secs_sync" \
					--argjson du "$(du_b "$st")" \
					--argjson packs "$(df_field "$st" "pack files:")" \
					--argjson stored "$(df_field "$st" "stored bytes:")" \
					--argjson logical "$(df_field "$st" "logical bytes:")" \
					--argjson referenced "$(df_field "$st" "referenced bytes:")" \
					--argjson objects "$(df_field "$st" "chunk objects:")" \
					--argjson cs "$(df_field "$st" "chunk size:")" \
					--argjson reused "$(grep -c 'already in the store' "$W/tessera-$im.log" || true)" \
					'{bench: "import", param: $im, system: "tessera", round: $r, load_before: $load,
					  seconds: $s, seconds_sync: $ss, store_bytes: $du, stored_bytes: $stored,
					  logical_bytes: $logical, referenced_bytes: $referenced, objects: $objects,
					  pack_bytes: $packs, chunk_size: $cs, layers_reused: $reused}'
				"$TESSERA" --store "$st" df >"$W/df-$im-$r.txt" 2>&1 || true
				rm -rf "$st"
			else
				d=$W/ctrd-$im-$r
				progress "round $r: ctr images import $im into overlayfs (load $load)"
				ctr_import "$im" "$W/$im.tar" "$d"
				emit --arg im "$im" --argjson r "$r" --arg load "$load" \
					--argjson s "$secs" --argjson ss "$secs_sync" \
					--argjson snap "$(du_b "$d/root/io.containerd.snapshotter.v1.overlayfs/snapshots")" \
					--argjson content "$(du_b "$d/root/io.containerd.content.v1.content")" \
					--argjson rootb "$(du_b "$d/root")" --argjson nsnap "${nsnap:-0}" \
					'{bench: "import", param: $im, system: "containerd-overlayfs", round: $r,
					  load_before: $load, seconds: $s, seconds_sync: $ss, snapshot_bytes: $snap,
					  content_bytes: $content, root_bytes: $rootb, snapshots: $nsnap}'
				rm -rf "$d"
			fi
		done
	done
done

# ---- dedup between related Debian images, by chunk size --------------------------
if [ $quick = 0 ] && [ -f "$W/deb2.tar" ]; then
	IFS=, read -r -a css <<<"$chunk_sizes"
	variants=(stacked)
	[ $flat = 1 ] && variants+=(flat)
	for cs in "${css[@]}"; do
		for v in "${variants[@]}"; do
			if [ $v = stacked ]; then a=deb b=deb2; else a=deb-flat b=deb2-flat; fi
			st=$W/dd-$v-$cs
			"$TESSERA" --store "$st" init --chunk-size "$cs" >/dev/null
			load=$(cut -d' ' -f1-3 /proc/loadavg)
			progress "dedup $v, chunk size $cs: import $a then $b (load $load)"
			tessera_import "$a" "$W/$a.tar" "$st"; sa=$secs
			du1=$(du_b "$st"); s1=$(df_field "$st" "stored bytes:"); l1=$(df_field "$st" "logical bytes:")
			ref1=$(df_field "$st" "referenced bytes:")
			tessera_import "$b" "$W/$b.tar" "$st"; sb=$secs
			du2=$(du_b "$st"); s2=$(df_field "$st" "stored bytes:"); l2=$(df_field "$st" "logical bytes:")
			ref2=$(df_field "$st" "referenced bytes:")
			emit --arg v "$v" --arg cs "$cs" --arg a "$a" --arg b "$b" --arg load "$load" \
				--argjson sa "$sa" --argjson sb "$sb" --argjson du1 "$du1" --argjson du2 "$du2" \
				--argjson s1 "$s1" --argjson s2 "$s2" --argjson l1 "$l1" --argjson l2 "$l2" \
				--argjson ref1 "$ref1" --argjson ref2 "$ref2" \
				--argjson csb "$(df_field "$st" "chunk size:")" \
				--argjson reused "$(grep -c 'already in the store' "$W/tessera-$b.log" || true)" \
				'{bench: "import-dedup", param: $cs, variant: $v, chunk_size: $csb, first: $a, second: $b,
				  load_before: $load, seconds_first: $sa, seconds_second: $sb,
				  du_first: $du1, du_both: $du2, du_ratio: ($du2 / $du1),
				  stored_first: $s1, stored_both: $s2, stored_ratio: ($s2 / $s1),
				  logical_first: $l1, logical_both: $l2, referenced_first: $ref1, referenced_both: $ref2,
				  dedup_both: ($ref2 / $l2), referenced_per_stored_both: ($ref2 / $s2),
				  layers_reused: $reused}'
			"$TESSERA" --store "$st" df >"$W/df-dedup-$v-$cs.txt" 2>&1 || true
			rm -rf "$st"
		done
	done
fi

# ---- tables -------------------------------------------------------------------------
if [ -n "$md" ]; then
	jq -rs --arg changed "$changed" --arg rootfs "$rootfs_bytes" -f /dev/stdin "$OUT" >"$md" <<'JQ'
def median: map(select(. != null)) | sort |
	if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def r2: if . == null then null else (. * 100 | round) / 100 end;
def s: if . == null then "–" else tostring end;
def mib: if . == null then "–" else "\(. / 1048576 * 10 | round / 10) MiB" end;
def pass(c): if c == null then "n/a" elif c then "PASS" else "MISS" end;
. as $all
| ($all | map(select(.bench == "import"))) as $im
| ($all | map(select(.bench == "import-image"))) as $imgs
| ($im | map(.param) | unique) as $names
| ($names | map(. as $n |
	($im | map(select(.param == $n and .system == "tessera"))) as $t |
	($im | map(select(.param == $n and .system != "tessera"))) as $c |
	{name: $n, t: ($t | map(.seconds) | median), ts: ($t | map(.seconds_sync) | median),
	 truns: ($t | map(.seconds)), c: ($c | map(.seconds) | median), cs: ($c | map(.seconds_sync) | median),
	 cruns: ($c | map(.seconds)),
	 tdu: ($t | map(.store_bytes) | median), snap: ($c | map(.snapshot_bytes) | median),
	 content: ($c | map(.content_bytes) | median), stored: ($t | map(.stored_bytes) | median),
	 ref: ($t | map(.referenced_bytes) | median),
	 ratio_t: ((($t | map(.seconds) | median) // 0) / (($c | map(.seconds) | median) // 1)),
	 ratio_ts: ((($t | map(.seconds_sync) | median) // 0) / (($c | map(.seconds_sync) | median) // 1)),
	 ratio_b: ((($t | map(.store_bytes) | median) // 0) / (($c | map(.snapshot_bytes) | median) // 1)),
	 loads: ($im | map(select(.param == $n)) | map("\(.system | split("-")[0]) r\(.round): \(.load_before | split(" ")[0])") | join(", "))})) as $rows
| ($all | map(select(.bench == "import-dedup"))) as $dd
| [
  "## Image import (issue 5): tessera image import vs ctr images import (overlayfs)",
  "",
  "Images: \($imgs | map("\(.param) (\(.layers) layers, archive \(.archive_bytes | mib))") | join(", ")). Each round imports every image with both systems (order alternating by round), each into a fresh tessera store (default chunk size, image volume size 8G) / a fresh containerd root; medians of \($im | map(.round) | max) round(s). Seconds: the import command; +sync: with a sync(1) right after it. Sizes: du -s -B1.",
  "",
  "| image | tessera s | per round | ctr s | per round | tessera / ctr | +sync: tessera / ctr | tessera store (du) | overlayfs snapshots (du) | store / snapshots | containerd content store (du) | tessera stored (df) |",
  "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
  ($rows[] | "| \(.name) | \(.t | r2 | s) | \(.truns | map(r2 | tostring) | join(", ")) | \(.c | r2 | s) | \(.cruns | map(r2 | tostring) | join(", ")) | \(.ratio_t | r2 | s)x | \(.ratio_ts | r2 | s)x | \(.tdu | mib) | \(.snap | mib) | \(.ratio_b | r2 | s)x | \(.content | mib) | \(.stored | mib) |"),
  "",
  "Load (1 min) before each import: \($rows | map("\(.name): \(.loads)") | join("; ")).",
  "",
  (if ($dd | length) > 0 then
  ("## Dedup between two related Debian images, by chunk size (issue 5)",
  "",
  "stacked: deb (minbase + the test's second layer) then deb2 = deb + one layer in which 16 bytes in the middle of every file of bash, coreutils, grep, sed and tar are changed and a 3 MiB file added (\($changed | split(" ") | "\(.[0]) files, \(.[1] | tonumber | mib)")); deb2 shares deb's 2 layers. flat: the same two trees as one-layer images (no layer shared: chunk-level dedup only). Both/first = store bytes after importing both / after the first alone; referenced/stored = bytes the layers address / compressed bytes stored (dedup x compression).",
  "",
  "| variant | chunk size | du first | du both | du both/first | stored first | stored both | stored both/first | dedup (referenced/logical), both | referenced/stored, both | import s (first, second) |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ($dd[] | "| \(.variant) | \(.param) | \(.du_first | mib) | \(.du_both | mib) | \(.du_ratio | r2) | \(.stored_first | mib) | \(.stored_both | mib) | \(.stored_ratio | r2) | \(.dedup_both | r2)x | \(.referenced_per_stored_both | r2)x | \(.seconds_first | r2), \(.seconds_second | r2) |"),
  "") else empty end),
  "## Import targets (issue 5)",
  "",
  "| target | measured | result |",
  "|---|---|---|",
  ($rows[] | "| import <= 1.5x overlayfs time: \(.name) | \(.ratio_t | r2 | s)x (+sync \(.ratio_ts | r2 | s)x) | \(pass(.ratio_t <= 1.5)) |"),
  ($rows[] | "| store <= 0.6x overlayfs snapshot bytes: \(.name) | \(.ratio_b | r2 | s)x | \(pass(.ratio_b <= 0.6)) |"),
  ""
] | .[]
JQ
	progress "tables in $md"
fi
progress "done"
