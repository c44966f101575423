#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tessera mount / umount / mount --rootfs, for real: kernel FUSE, loop
# devices, ext4.
#
#  1. `tessera mount MNT` (daemon); mkfs.ext4 through `losetup --direct-io=on`
#     on MNT/volumes/v; a tree of files (a few hundred, some big, symlinks,
#     dirs, a hard link) with their sha256sums; unmount everything;
#     `tessera umount MNT` waits for the daemon to exit.
#  2. `volume stat` shows the filesystem; commit v as layer 'base'.
#  3. `tessera mount --rootfs base MNT2`: every checksum, link and directory
#     matches; the mount is read-only; other commands still work (run by the
#     daemon); `tessera umount MNT2` leaves no mount, loop device, daemon or
#     record behind.  e2fsck -fn of the layer through a FUSE mount is clean.
#     Two stacks share one daemon; a stack whose daemon was killed comes down.
#  4. --rootfs --rw on a volume over base: mounted with noinit_itable, like
#     the snapshotter's rw mounts; a write survives a remount.
#  5. Bad use, each a clear error that leaves nothing behind: a missing
#     mountpoint, a file as mountpoint, a second mount of the same store
#     (locked by pid N), umount of what is not mounted, --rootfs on a volume
#     with no filesystem, an unknown name, --rw on a layer, a name that is
#     both a volume and a layer.
#
# Usage: rootfs.sh TESSERA_CLI
# Env: TSR_ROOTFS_FILES (default 300), TMPDIR.  Exit 0 pass, 1 fail, 77 skip.
set -euo pipefail

CLI=${1:?usage: rootfs.sh TESSERA_CLI}
NFILES=${TSR_ROOTFS_FILES:-300}
T0=$SECONDS

skip() {
	echo "skipped: rootfs: $*"
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root (FUSE mounts, loop devices)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -c /dev/loop-control ] || skip "no /dev/loop-control"
for tool in mkfs.ext4 e2fsck losetup sha256sum mountpoint findmnt; do
	command -v "$tool" >/dev/null || skip "needs $tool"
done

W=$(mktemp -d "${TMPDIR:-/tmp}/tsr-rootfs-XXXXXX")
S=$W/store
M=$W/fuse       # plain FUSE mount
R=$W/root       # --rootfs mount
F=$W/fs         # ext4 mounted by hand during the fill
mkdir -p "$M" "$R" "$F" "$W/fuse2"
PIDS=()         # daemons this test started
LOOP=           # the loop device attached by hand

# Every daemon of this store, by the records tessera keeps in /run/tessera.
store_daemons() {
	local f
	for f in /run/tessera/mounts/* /run/tessera/rootfs/*; do
		[ -f "$f" ] && grep -qxF "store=$S" "$f" || continue
		sed -n 's/^pid=//p; s/^daemon_pid=//p' "$f"
	done
}
# The private FUSE mountpoint of this store's --rootfs stacks (from a record).
private_fuse() {
	local f
	for f in /run/tessera/mounts/*; do
		[ -f "$f" ] && grep -qxF "store=$S" "$f" || continue
		sed -n 's/^mountpoint=//p' "$f" | grep '^/run/tessera/fuse/' || true
	done
}
PRIV=

cleanup() {
	set +e
	local m d p f
	for m in "$R" "$F"; do
		mountpoint -q "$m" && umount -l "$m"
	done
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	# Loop devices over this store's images (by hand or by a stack).
	for d in $(losetup -a | grep -F -e "$W" ${PRIV:+-e "$PRIV"} | cut -d: -f1); do
		losetup -d "$d"
	done
	for p in "${PIDS[@]}" $(store_daemons); do
		kill -TERM "$p" 2>/dev/null
	done
	sleep 0.5
	for p in "${PIDS[@]}" $(store_daemons); do
		kill -KILL "$p" 2>/dev/null
	done
	for m in "$M" "$W/fuse2" ${PRIV:+"$PRIV"}; do
		grep -qF " $m " /proc/mounts && umount -l "$m"
	done
	for f in /run/tessera/mounts/* /run/tessera/rootfs/*; do
		[ -f "$f" ] && grep -qxF "store=$S" "$f" && rm -f "$f"
	done
	[ -n "$PRIV" ] && rmdir "$PRIV" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

fail() {
	echo "FAIL: rootfs: $*"
	[ -f "$S/tessera-mount.log" ] && sed 's/^/  log: /' "$S/tessera-mount.log" | tail -20
	exit 1
}
pass() { echo "PASS: rootfs: $*"; }
t() { "$CLI" --store "$S" "$@"; }
# expect CODE WORDS CMD...: exit status CODE and stderr containing WORDS.
expect() {
	local code=$1 words=$2 rc=0
	shift 2
	t "$@" >"$W/out" 2>"$W/err" || rc=$?
	[ "$rc" -eq "$code" ] || fail "'tessera $*' exited $rc, not $code: $(cat "$W/err")"
	if [ -n "$words" ]; then
		grep -qF -- "$words" "$W/err" ||
			fail "'tessera $*': no '$words' in: $(cat "$W/err")"
	fi
}
alive() { [ -d "/proc/$1" ] && ! grep -q '^[^)]*) [ZX]' "/proc/$1/stat" 2>/dev/null; }
# Nothing of this store left: no loop device, mount, daemon or record.
check_clean() {
	local what=$1 p
	if losetup -a | grep -F -e "$W" ${PRIV:+-e "$PRIV"} >/dev/null; then
		fail "$what: a loop device is left: $(losetup -a)"
	fi
	if grep -F -e " $R " -e " $M " ${PRIV:+-e " $PRIV "} /proc/mounts; then
		fail "$what: a mount is left"
	fi
	for p in $(store_daemons); do
		alive "$p" && fail "$what: daemon pid $p is still running"
	done
	owner=$(tr -d " " <"$S/lock" 2>/dev/null || true)
	if [ -n "$owner" ] && alive "$owner"; then
		fail "$what: the store is still owned by pid $owner"
	fi
	if grep -lxF "store=$S" /run/tessera/rootfs/* 2>/dev/null; then
		fail "$what: a rootfs record is left"
	fi
	return 0
}

t init >/dev/null || fail "tessera init"
t volume create v --size 512M || fail "volume create v"

# ---- bad use before anything is mounted -------------------------------------
expect 1 "$W/missing does not exist" mount "$W/missing"
touch "$W/file"
expect 1 "is not a directory" mount "$W/file"
expect 1 "is not mounted by tessera" umount "$F"
expect 1 "does not exist" umount "$W/missing"
expect 2 "--rw goes with --rootfs" mount "$M" --rw
pass "bad mountpoints and umount of what is not mounted are clear errors"

# ---- 1. fill a volume through the FUSE mount --------------------------------
t mount "$M" >"$W/out" 2>"$W/err" || fail "tessera mount: $(cat "$W/err")"
pid=$(sed -n 's/.*daemon pid \([0-9]*\).*/\1/p' "$W/out")
[ -n "$pid" ] || fail "tessera mount printed no daemon pid: $(cat "$W/out")"
PIDS+=("$pid")
alive "$pid" || fail "daemon $pid is not running"
mountpoint -q "$M" || fail "$M is not a mountpoint after tessera mount"
[ "$(stat -c %s "$M/volumes/v")" -eq $((512 << 20)) ] || fail "volumes/v is not 512M"

expect 1 "is locked by pid $pid" mount "$W/fuse2"
mountpoint -q "$W/fuse2" && fail "the second mount left a mount"
expect 1 "is already mounted by tessera (pid $pid" mount "$M"
pass "a second mount of the store fails: locked by pid $pid"

LOOP=$(losetup -f --show --direct-io=on "$M/volumes/v") || fail "losetup on the FUSE file"
mkfs.ext4 -q -L tsr-rootfs "$LOOP" || fail "mkfs.ext4 through loop"
mount "$LOOP" "$F" || fail "mount the ext4"

# A tree: nested dirs, $NFILES files of 0..256 KiB, a few big ones,
# symlinks (relative, absolute, dangling), an empty dir, a hard link.
i=0
while [ $i -lt "$NFILES" ]; do
	d="$F/d$((i % 17))/s$((i % 5))"
	mkdir -p "$d"
	head -c $(( (RANDOM * 8) % (256 << 10) )) /dev/urandom >"$d/f$i"
	i=$((i + 1))
done
for n in 1 2 3; do
	head -c $((n * 24 << 20)) /dev/urandom >"$F/big$n"
done
(yes "compressible line of text" || true) | head -c $((16 << 20)) >"$F/text"
ln -s big1 "$F/link-big1"
ln -s ../d0/s0 "$F/d1/link-dir"
ln -s /nowhere/at/all "$F/dangling"
ln "$F/big2" "$F/hardlink-big2"
mkdir -p "$F/empty/deeper"
: >"$F/zero-length"
(cd "$F" && find . -path ./lost+found -prune -o -type f -print0 | sort -z |
	xargs -0 sha256sum) >"$W/sums"
(cd "$F" && find . -type l -printf '%p -> %l\n' | sort) >"$W/links"
(cd "$F" && find . -type d | sort) >"$W/dirs"
nsums=$(wc -l <"$W/sums")
[ "$nsums" -ge "$NFILES" ] || fail "only $nsums files written"
umount "$F" || fail "umount the ext4"
losetup -d "$LOOP" || fail "losetup -d"
LOOP=

t umount "$M" >"$W/out" 2>"$W/err" || fail "tessera umount $M: $(cat "$W/err")"
mountpoint -q "$M" && fail "$M is still mounted after tessera umount"
alive "$pid" && fail "daemon $pid still runs after tessera umount returned"
pass "mkfs.ext4 + $nsums files through loop (direct I/O) on the FUSE file; umount waited for the daemon"

# ---- 2. stat and commit -------------------------------------------------------
t volume stat v >"$W/out" || fail "volume stat v"
grep -qE '^filesystem: +ext4$' "$W/out" || fail "volume stat shows no ext4: $(cat "$W/out")"
grep -qE '^fs label: +tsr-rootfs$' "$W/out" || fail "volume stat shows no label"
grep -qE '^fs uuid: +[0-9a-f-]{36}$' "$W/out" || fail "volume stat shows no uuid"
id=$(t commit v --name base | grep -E '^[0-9a-f]{64}$') || fail "commit v"
t layer stat base >"$W/out" || fail "layer stat base"
grep -qE '^filesystem: +ext4$' "$W/out" || fail "layer stat shows no ext4"
pass "volume stat and layer stat show ext4, its uuid and label"

# ---- 3. the layer as a rootfs ---------------------------------------------------
t mount --rootfs base "$R" >"$W/out" 2>"$W/err" ||
	fail "mount --rootfs base: $(cat "$W/err")"
PRIV=$(private_fuse)
[ -n "$PRIV" ] || fail "no record of the rootfs FUSE daemon"
PIDS+=($(store_daemons))
grep -qF " $R ext4 ro," /proc/mounts || fail "$R is not a read-only ext4 mount: $(grep -F " $R " /proc/mounts)"
grep -qF "$PRIV/layers/$id" <(losetup -a) || fail "no loop device over layers/$id"
(cd "$R" && sha256sum --quiet -c "$W/sums") >"$W/check" 2>&1 ||
	fail "checksums differ: $(head -5 "$W/check")"
(cd "$R" && find . -type l -printf '%p -> %l\n' | sort) | cmp -s - "$W/links" ||
	fail "symlinks differ"
(cd "$R" && find . -type d | sort) | cmp -s - "$W/dirs" || fail "directories differ"
[ "$(stat -c %i "$R/big2")" = "$(stat -c %i "$R/hardlink-big2")" ] || fail "hard link lost"
if touch "$R/new-file" 2>/dev/null; then
	fail "a file could be created on the read-only rootfs"
fi
t layer ls >/dev/null || fail "layer ls while the rootfs daemon owns the store"
expect 1 "already has a rootfs mounted" mount --rootfs base "$R"
pass "--rootfs of the layer: $nsums checksums, links and dirs match; read-only"

t umount "$R" 2>"$W/err" || fail "tessera umount $R: $(cat "$W/err")"
check_clean "after umount of the rootfs"
[ -d "$PRIV" ] && fail "the private FUSE mountpoint $PRIV is left"
pass "umount of the rootfs took down the filesystem, the loop device and the daemon"

# e2fsck of the committed layer, read through a FUSE mount.
t mount "$M" >"$W/out" 2>"$W/err" || fail "tessera mount (fsck): $(cat "$W/err")"
PIDS+=("$(sed -n 's/.*daemon pid \([0-9]*\).*/\1/p' "$W/out")")
e2fsck -fn "$M/layers/$id" >"$W/fsck" 2>&1 || fail "e2fsck -fn of the layer: $(tail -5 "$W/fsck")"
pass "e2fsck -fn of layer base is clean"
# --rootfs uses the running `tessera mount` of the store, and leaves it.
t mount --rootfs base "$R" >"$W/out" 2>"$W/err" || fail "mount --rootfs over tessera mount: $(cat "$W/err")"
grep -qF "over $M/layers/$id" "$W/out" || fail "--rootfs did not use $M: $(cat "$W/out")"
expect 1 "is busy" umount "$M"
t umount "$R" || fail "tessera umount $R (over $M)"
mountpoint -q "$M" || fail "umount of the rootfs took $M down"
t umount "$M" || fail "tessera umount after fsck"
check_clean "after --rootfs over a tessera mount"
pass "--rootfs over a running tessera mount uses it and leaves it"

# Two stacks share the store's daemon; the last umount stops it.  A stack
# whose daemon was killed still comes down.
mkdir -p "$W/root2"
t mount --rootfs base "$R" >/dev/null 2>"$W/err" || fail "mount --rootfs base (1 of 2): $(cat "$W/err")"
t mount --rootfs base "$W/root2" >/dev/null 2>"$W/err" || fail "mount --rootfs base (2 of 2): $(cat "$W/err")"
PIDS+=($(store_daemons))
[ "$(store_daemons | sort -u | wc -l)" -eq 1 ] || fail "two stacks of one store started two daemons"
t umount "$R" || fail "tessera umount (1 of 2)"
(cd "$W/root2" && sha256sum --quiet -c "$W/sums") >/dev/null 2>&1 ||
	fail "the second stack lost its daemon when the first was unmounted"
t umount "$W/root2" || fail "tessera umount (2 of 2)"
check_clean "after umount of two stacks"
t mount --rootfs base "$R" >/dev/null 2>"$W/err" || fail "mount --rootfs base (kill): $(cat "$W/err")"
PIDS+=($(store_daemons))
kill -KILL $(store_daemons)
t umount "$R" 2>"$W/err" || fail "tessera umount of a stack whose daemon was killed: $(cat "$W/err")"
check_clean "after umount of a stack whose daemon was killed"
pass "two stacks share one daemon; a stack with a killed daemon comes down"

# ---- 4. a volume over the layer, read-write -----------------------------------
t volume create child --parent base || fail "volume create child"
t mount --rootfs child "$R" --rw 2>"$W/err" || fail "mount --rootfs child --rw: $(cat "$W/err")"
PIDS+=($(store_daemons))
grep -qF " $R ext4 rw," /proc/mounts || fail "$R is not a read-write ext4"
# The ext4 options of the snapshotter's rw mounts (tsr_mount_options): no
# background inode-table zeroing rewriting chunks.
findmnt -no OPTIONS "$R" | tr , '\n' | grep -qx noinit_itable ||
	fail "$R is not mounted with noinit_itable: $(findmnt -no OPTIONS "$R")"
echo "written through the rootfs" >"$R/new-file"
rm "$R/big3"
t umount "$R" 2>"$W/err" || fail "tessera umount (child): $(cat "$W/err")"
check_clean "after umount of the rw rootfs"
t mount --rootfs volume:child "$R" 2>"$W/err" || fail "mount --rootfs volume:child: $(cat "$W/err")"
PIDS+=($(store_daemons))
grep -qF " $R ext4 ro," /proc/mounts || fail "a volume without --rw is not read-only"
[ "$(cat "$R/new-file")" = "written through the rootfs" ] || fail "the write is lost"
[ ! -e "$R/big3" ] || fail "the removal is lost"
(cd "$R" && grep -v -e ' \./big3$' "$W/sums" | sha256sum --quiet -c) >"$W/check" 2>&1 ||
	fail "child differs from base: $(head -5 "$W/check")"
t umount "$R" || fail "tessera umount (child, ro)"
check_clean "after umount of the child"
pass "--rootfs --rw on a volume: writes survive a remount; without --rw it is read-only"

# ---- 5. --rootfs bad use ------------------------------------------------------------
t volume create blank --size 64M || fail "volume create blank"
expect 1 "blank holds no filesystem" mount --rootfs blank "$R"
check_clean "after --rootfs on a volume without a filesystem"
expect 1 "no such image, volume or layer" mount --rootfs nothing-here "$R"
check_clean "after --rootfs of an unknown name"
expect 1 "is a layer, which is read-only" mount --rootfs layer:base "$R" --rw
check_clean "after --rw on a layer"
t volume create base --parent base || fail "volume create base"
expect 1 "names both volume 'base' and layer" mount --rootfs base "$R"
check_clean "after an ambiguous name"
t mount --rootfs "layer:${id:0:10}" "$R" >/dev/null 2>"$W/err" ||
	fail "mount --rootfs layer:<prefix>: $(cat "$W/err")"
PIDS+=($(store_daemons))
t umount "$R" || fail "tessera umount (prefix)"
expect 1 "does not exist" mount --rootfs base "$W/missing"
expect 1 "is not mounted by tessera" umount "$R"
check_clean "at the end"
pass "--rootfs bad use: clear errors, no loop device, mount or daemon left"

echo "rootfs: all passed in $((SECONDS - T0)) s"
