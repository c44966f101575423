#!/usr/bin/env bash
# While `tessera mount` owns the store: commands reach it through the
# control socket, volumes and layers created or removed appear and disappear
# in the tree, and a punched hole in a volume file frees store space after
# gc.  Root, real kernel FUSE.
#   live.sh TESSERA
set -u
T=${1:?usage: live.sh TESSERA}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
[ -e /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
W=$(mktemp -d /tmp/tsr-live-XXXXXX)
S=$W/store M=$W/mnt
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
ko() { echo "FAIL: $*"; fail=$((fail + 1)); }
t() { "$T" --store "$S" "$@"; }
cleanup() {
	mountpoint -q "$M" && { t umount "$M" >/dev/null 2>&1 || umount -l "$M"; }
	pid=$(cat "$W/pid" 2>/dev/null) && kill -9 "$pid" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$M"
t init >/dev/null
t mount "$M" >"$W/mount.out" || { echo "FAIL: tessera mount"; exit 1; }
cat "$W/mount.out"
grep -o 'daemon pid [0-9]*' "$W/mount.out" | awk '{print $3}' >"$W/pid"

# Created while mounted: appears, with its size; I/O through the file.
t volume create v --size 64M && ok "volume create forwarded to the daemon" || ko "volume create"
[ "$(stat -c %s "$M/volumes/v" 2>/dev/null)" = $((64 << 20)) ] && ok "new volume appears with its size" \
	|| ko "new volume not in the tree: $(ls "$M/volumes")"
head -c 16M /dev/urandom >"$W/data"
dd if="$W/data" of="$M/volumes/v" bs=1M conv=notrunc,fsync status=none && ok "16 MiB written and fsynced" || ko "dd"
before=$(t volume stat v | awk '/^allocated:/ {print $2}')
fallocate --punch-hole --keep-size --offset 0 --length 16M "$M/volumes/v" && ok "punch-hole on the volume file" || ko "punch-hole"
cmp -n $((16 << 20)) "$M/volumes/v" /dev/zero && ok "punched range reads zeros" || ko "punched range not zeros"
sync
t gc >/dev/null && ok "gc forwarded" || ko "gc"
after=$(t volume stat v | awk '/^allocated:/ {print $2}')
if [ -n "$before" ] && [ -n "$after" ] && [ "$after" -le $(( before / 10 )) ]; then
	ok "store space of the punched range freed: volume file $before -> $after bytes"
else
	ko "volume file allocation $before -> $after after punch + gc"
fi
# Removed while mounted (not open): disappears.
t volume create gone --size 8M >/dev/null
ls "$M/volumes" | grep -qx gone && ok "second volume listed" || ko "second volume not listed"
t volume rm gone && ok "volume rm forwarded" || ko "volume rm"
[ ! -e "$M/volumes/gone" ] && ! ls "$M/volumes" | grep -qx gone && ok "removed volume disappears" \
	|| ko "removed volume still in the tree"
# A committed layer appears under layers/ and layers/by-name/.
t volume create c --size 8M >/dev/null
id=$(t commit c --name made-live) && ok "commit forwarded" || ko "commit"
[ -f "$M/layers/$id" ] && [ "$(readlink "$M/layers/by-name/made-live")" = "../$id" ] &&
	ok "committed layer appears, by id and by name" || ko "layer not in the tree"
# An open volume cannot be removed; the daemon reports it.
exec 7<"$M/volumes/v"
t volume rm v 2>"$W/err" && ko "removed an open volume" || ok "open volume not removed: $(cat "$W/err")"
exec 7<&-
t umount "$M" && ok "umount" || ko "umount"
t fsck >/dev/null && ok "fsck clean after the daemon exited" || ko "fsck"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
