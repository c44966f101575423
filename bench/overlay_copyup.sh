#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# overlayfs copy-up: the cost of a 4 KiB write + fsync into a file of a lower
# layer, for files of growing size.  The comparison for tsr_bench first-write.
#
#   overlay_copyup.sh --helper PATH/fsync_write [--sizes 1M,16M,256M,1G]
#                     [--rounds 5] [--dir DIR]
#
# For each size: a lower dir holding one file of that size of random data;
# then ROUNDS times: fresh upper + work dirs, mount overlay, time open(O_WRONLY)
# + pwrite 4 KiB + fsync of the file through the overlay (fsync_write, in
# process), record the upper dir's allocated space (du), unmount.  Prints one
# JSON line per size on stdout: the median and the spread of the rounds.
# Needs root (mount); without it, says so and exits 77.
set -euo pipefail

sizes=1M,16M,256M,1G
rounds=5
dir=/var/tmp
helper=

usage() {
	sed -n '4,15p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case "$1" in
	--sizes) sizes=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--helper) helper=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "overlay_copyup.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done

say() { echo "overlay_copyup: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
	say "SKIP: needs root to mount overlayfs (run as root for the comparison)"
	exit 77
fi
if ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2>/dev/null; then
	say "SKIP: the kernel has no overlayfs"
	exit 77
fi
if [ -z "$helper" ] || [ ! -x "$helper" ]; then
	say "error: --helper PATH to the fsync_write program is required"
	exit 2
fi
command -v jq >/dev/null || { say "error: jq is required"; exit 2; }

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/tsr-overlay.XXXXXX")
merged="$tmp/merged"

cleanup() {
	# Unmount by path, whatever happened; then remove the scratch tree.
	if mountpoint -q "$merged" 2>/dev/null; then
		umount "$merged" || umount -l "$merged" || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

to_bytes() {
	local v=$1 n u
	n=${v%[KkMmGgTt]}
	u=${v#"$n"}
	case "$u" in
	'') echo "$n" ;;
	[Kk]) echo $((n << 10)) ;;
	[Mm]) echo $((n << 20)) ;;
	[Gg]) echo $((n << 30)) ;;
	[Tt]) echo $((n << 40)) ;;
	esac
}

label() {
	local b=$1
	if [ $((b % (1 << 30))) = 0 ]; then echo "$((b >> 30))GiB"
	elif [ $((b % (1 << 20))) = 0 ]; then echo "$((b >> 20))MiB"
	elif [ $((b % (1 << 10))) = 0 ]; then echo "$((b >> 10))KiB"
	else echo "${b}B"; fi
}

fs_type=$(findmnt -no FSTYPE -T "$tmp" 2>/dev/null || stat -f -c %T "$tmp")
IFS=, read -r -a size_list <<<"$sizes"
for s in "${size_list[@]}"; do
	bytes=$(to_bytes "$s")
	name=$(label "$bytes")
	lower="$tmp/lower-$name"
	mkdir -p "$lower" "$merged"
	say "$name: writing the lower file"
	head -c "$bytes" /dev/urandom >"$lower/file"
	sync
	# A 4 KiB-aligned offset in the middle of the file.
	off=$(((bytes / 2) & ~4095))
	results=()
	for r in $(seq 1 "$rounds"); do
		rm -rf "$tmp/upper" "$tmp/work"
		mkdir -p "$tmp/upper" "$tmp/work"
		mount -t overlay overlay \
			-o "lowerdir=$lower,upperdir=$tmp/upper,workdir=$tmp/work" "$merged"
		line=$("$helper" "$merged/file" "$off")
		upper_bytes=$(du -sB1 "$tmp/upper" | cut -f1)
		umount "$merged"
		results+=("$(jq -c --argjson u "$upper_bytes" '. + {upper_bytes: $u}' <<<"$line")")
		say "$name round $r/$rounds: $(jq -r '"\(.total_us) us (open \(.open_us), fsync \(.fsync_us)), upper \(.upper_bytes) bytes"' <<<"${results[-1]}")"
		rm -rf "$tmp/upper" "$tmp/work"
		sync
	done
	printf '%s\n' "${results[@]}" | jq -cs \
		--arg name "$name" --argjson bytes "$bytes" --argjson off "$off" \
		--arg fs "$fs_type" '
		def median: sort | if length % 2 == 1 then .[length/2|floor]
		                   else (.[length/2-1] + .[length/2]) / 2 end;
		{bench: "overlay", param: $name, file_bytes: $bytes, offset: $off,
		 fs: $fs, rounds: length,
		 median_us: (map(.total_us) | median),
		 min_us: (map(.total_us) | min), max_us: (map(.total_us) | max),
		 open_median_us: (map(.open_us) | median),
		 fsync_median_us: (map(.fsync_us) | median),
		 upper_bytes: (map(.upper_bytes) | median),
		 rounds_us: map(.total_us)}'
	rm -rf "$lower"
done
