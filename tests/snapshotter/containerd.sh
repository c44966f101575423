#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tessera as containerd's snapshotter, for real: `tessera serve` and a
# containerd 1.6 of the test's own (root, state, sockets, config under a
# temp dir), runc, loop devices, ext4.
#
#  1. An OCI image built offline (umoci + busybox-static, 2 layers; layer 2
#     changes a 64 MiB file by 3 bytes and adds a file):
#     `ctr images import --snapshotter tessera`; layer 2 adds a few chunks.
#  2. `ctr run --rm`: files of both layers read, one written.
#  3. A running container writes 4 KiB into the 64 MiB file (fsync): the
#     store grows by at most 1 MiB (du), its volume by a few chunks.
#  4. `ctr snapshots` prepare / mounts / commit / view / ls / info / usage /
#     label / rm, and a filtered List through containerd; the mounts name
#     loop devices tessera attached to the images (rw / read-only), the
#     same one each time; commit of a mounted snapshot works (frozen,
#     copied): later writes stay out of the layer, the orphan volume goes
#     at the unmount, and Remove of its parent layer is not blocked by it;
#     commit and rm release the devices.
#  5. Malformed HTTP/2, gRPC and protobuf input (h2_garbage.py): error
#     statuses or closed connections; containerd is served throughout.
#  6. `tessera serve` killed between two imports, in a commit of a mounted
#     snapshot while its filesystem is frozen (a test switch), with two
#     snapshots holding loop devices (both cleared by the kernel); restart:
#     the stale FUSE mount is cleaned, the filesystem thawed, the commit
#     finished, the orphan kept until unmounted; the second import and a
#     run work; `tessera fsck` (through the control socket) is clean.
#  7. `ctr images rm --sync` of both images -> containerd GC -> Remove and
#     Cleanup: no snapshot, no layer left, the store's space comes back, no
#     loop device left on the store's images.
#
# Usage: containerd.sh TESSERA_CLI
# Exit 0 pass, 1 fail, 77 skip.  KEEP=1 keeps the temp dir.
set -uo pipefail

CLI=${1:?usage: containerd.sh TESSERA_CLI}
HERE=$(cd "$(dirname "$0")" && pwd)
T0=$SECONDS

skip() { echo "skipped: containerd: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -c /dev/loop-control ] || skip "no /dev/loop-control"
for t in containerd ctr runc umoci skopeo busybox mkfs.ext4 debugfs du cc; do
	command -v "$t" >/dev/null || skip "needs $t"
done
/usr/bin/python3 -c 'import hpack' 2>/dev/null || skip "needs python3-hpack"
BUSYBOX=$(command -v busybox)
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
	{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || skip "needs busybox-static"

W=$(mktemp -d /var/tmp/tsr-ctrd.XXXXXX)
S=$W/store SOCK=$W/tessera.sock MNT=$W/fuse CD=$W/ctrd
SERVE_PID= CTRD_PID=
pass=0 failc=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
ko() { echo "FAIL: $*"; failc=$((failc + 1)); }
t() { echo "$((SECONDS - T0))s"; }

cleanup() {
	set +e
	if [ -n "$CTRD_PID" ]; then
		for c in $(ctr --address "$CD/containerd.sock" task ls -q 2>/dev/null); do
			ctr --address "$CD/containerd.sock" task kill -s KILL "$c" >/dev/null 2>&1
		done
		sleep 0.5
		kill "$CTRD_PID" 2>/dev/null; wait "$CTRD_PID" 2>/dev/null
	fi
	# Whatever containerd left mounted over our images.
	grep -F " $W/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
		[ "$m" = "$MNT" ] || umount -l "$m"
	done
	if [ -n "$SERVE_PID" ]; then
		kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null
	fi
	mountpoint -q "$MNT" && umount -l "$MNT"
	if [ -n "${KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

C() { ctr --address "$CD/containerd.sock" "$@"; }
CS() { C snapshots --snapshotter tessera "$@"; }
RUN() { C run --rm --snapshotter tessera --runc-root "$W/runc" --fifo-dir "$W/fifo" "$@"; }
TS() { "$CLI" --store "$S" "$@"; }
# The volumes this run's store has had (the last check judges loop devices
# by them, not every device on the machine).
note_volumes() { TS volume ls 2>/dev/null | awk '$1 ~ /^ctrd-/ {print $1}' >>"$W/volumes" || true; }

# start_serve [VAR=VALUE...]: the environment of the daemon.
start_serve() {
	rm -f "$SOCK"  # a killed daemon's: wait for the new one's
	env "$@" "$CLI" --store "$S" serve --socket "$SOCK" --mount "$MNT" --size 1G \
		>>"$W/serve.log" 2>&1 &
	SERVE_PID=$!
	for _ in $(seq 100); do [ -S "$SOCK" ] && return 0; sleep 0.1; done
	ko "tessera serve did not come up: $(tail -3 "$W/serve.log")"; exit 1
}

# Retries while containerd's connection to the restarted snapshotter is in
# its reconnect back-off (Unavailable), at most 10 times.
retry() {
	local i
	for i in $(seq 10); do
		"$@" >"$W/retry.out" 2>&1 && { cat "$W/retry.out"; return 0; }
		grep -qi 'unavailable\|connection\|transport' "$W/retry.out" || break
		sleep 1
	done
	cat "$W/retry.out"
	return 1
}

# ---- the daemons --------------------------------------------------------------
TS init >/dev/null || { ko "tessera init"; exit 1; }
start_serve
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
C version >/dev/null 2>&1 || { ko "containerd did not start: $(tail -3 "$CD/log")"; exit 1; }
ok "tessera serve and containerd up ($(t))"

# ---- 1. the image -------------------------------------------------------------------
L=$W/layout B=$W/bundle R=$W/bundle/rootfs
{ umoci init --layout "$L" && umoci new --image "$L:t" &&
  umoci unpack --image "$L:t" "$B"; } >/dev/null || { ko "umoci"; exit 1; }
mkdir -p "$R/bin" "$R/data" "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"; ln -s busybox "$R/bin/sh"
# A setuid-root program that prints its effective uid: in a container the
# snapshotter's mounts keep setuid working, as overlayfs does (tessera's
# own host mounts are nosuid: docs/security.md).
# Run as root, it drops to uid 65534 and runs itself again (ctr run has no
# --user): the second run prints its effective uid.
cat >"$W/euid.c" <<'C'
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	if (argc == 1) {
		if (setgid(65534) || setuid(65534))
			return 2;
		execl(argv[0], argv[0], "again", (char *)NULL);
		return 3;
	}
	printf("%d\n", (int)geteuid());
	return 0;
}
C
cc -static -O2 -o "$R/bin/euid" "$W/euid.c" || ko "cc -static euid.c"
chown 0:0 "$R/bin/euid"; chmod 4755 "$R/bin/euid"
echo one >"$R/data/l1"
head -c 64M /dev/urandom >"$R/data/big"
umoci repack --refresh-bundle --image "$L:t" "$B" >/dev/null || ko "umoci repack 1"
printf 'XYZ' | dd of="$R/data/big" bs=1 seek=$((32 << 20)) conv=notrunc status=none
echo two >"$R/data/l2"
umoci repack --refresh-bundle --image "$L:t" "$B" >/dev/null || ko "umoci repack 2"
BIGSUM=$(sha256sum <"$R/data/big" | cut -c1-64)
skopeo copy -q "oci:$L:t" "oci-archive:$W/img1.tar:test/img1:t" || ko "skopeo 1"
# A second image on the first: one more layer.
echo three >"$R/data/l3"
umoci repack --refresh-bundle --image "$L:t" "$B" >/dev/null || ko "umoci repack 3"
skopeo copy -q "oci:$L:t" "oci-archive:$W/img2.tar:test/img2:t" || ko "skopeo 2"

s0=$SECONDS
if C images import --snapshotter tessera "$W/img1.tar" >"$W/import1.log" 2>&1; then
	ok "ctr images import img1 ($((SECONDS - s0))s)"
else
	ko "ctr images import img1: $(tail -3 "$W/import1.log")"; exit 1
fi
CS ls >"$W/ls1"
n=$(grep -c Committed "$W/ls1")
[ "$n" -eq 2 ] && ok "2 committed snapshots after import" || ko "$n committed snapshots: $(cat "$W/ls1")"
TOP=$(C images ls | awk '$1=="test/img1:t"{print $3}')
L2=$(awk 'NR>1 && NF==3 {print $1}' "$W/ls1" | head -1)
if [ -n "$L2" ]; then
	u=$(CS usage -b "$L2" | awk 'NR==2{print $2, $3}')
	read -r entries new < <(TS layer ls | awk '$2 ~ /^ctrd-/ && $4 != "-" {print $6, $7}')
	echo "layer 2: usage (bytes, inodes) $u; $entries chunks in its own map," \
	     "${new} of them new objects (the rest dedup against layer 1)"
	if [ -n "$new" ] && [ "$new" -le 16 ] && [ "${u%% *}" -le $((2 << 20)) ]; then
		ok "layer 2 (3 bytes changed in a 64 MiB file + one small file) adds $new chunks, usage ${u%% *} bytes"
	else
		ko "layer 2 adds ${new:-?} chunks, usage ${u%% *}: $(TS layer ls)"
	fi
else
	ko "no child snapshot in: $(cat "$W/ls1")"
fi

note_volumes
# ---- 2. ctr run -------------------------------------------------------------------------
s0=$SECONDS
out=$(RUN test/img1:t c1 /bin/sh -c 'cat /data/l1 /data/l2; busybox sha256sum /data/big;
	echo written >/data/w; cat /data/w' 2>&1)
if [ "$(echo "$out" | head -3 | tr '\n' ' ')" = "one two $BIGSUM  /data/big " ] &&
   echo "$out" | grep -qx written; then
	ok "ctr run reads both layers and writes ($((SECONDS - s0))s)"
else
	ko "ctr run: $out"
fi

# (--allow-new-privs: ctr's default spec sets no_new_privs, which stops
# setuid on any snapshotter.)
out=$(RUN --allow-new-privs test/img1:t cs /bin/euid 2>&1)
if [ "$out" = 0 ]; then
	ok "a setuid-root binary run by uid 65534 in the container gets euid 0 (setuid works, as on overlayfs)"
else
	ko "setuid in the container: euid '$out'"
fi

# ---- 3. a 4 KiB write into the 64 MiB file -------------------------------------------
C run -d --snapshotter tessera --runc-root "$W/runc" --fifo-dir "$W/fifo" test/img1:t c2 \
	/bin/sh -c 'sleep 300' >/dev/null 2>&1 || ko "ctr run -d"
for _ in $(seq 50); do C task ls | grep 'c2.*RUNNING' >/dev/null && break; sleep 0.1; done
vol=$(TS volume ls | awk '$1 ~ /^ctrd-/ {print $1}' | head -1)
C task exec --exec-id sync0 c2 /bin/busybox sync
sleep 1
du0=$(du -sk "$S" | cut -f1)
w0=$(TS volume stat "$vol" | awk -F': *' '/^chunks written/ {print $2+0}')
C task exec --exec-id w c2 /bin/sh -c \
	'busybox dd if=/dev/urandom of=/data/big bs=4096 count=1 seek=7000 conv=notrunc,fsync 2>/dev/null; busybox sync'
sleep 1
du1=$(du -sk "$S" | cut -f1)
w1=$(TS volume stat "$vol" | awk -F': *' '/^chunks written/ {print $2+0}')
grow=$((du1 - du0))
echo "4 KiB write into the 64 MiB file: store grew ${grow} KiB, volume chunks written $w0 -> $w1"
[ "$grow" -le 1024 ] && ok "4 KiB write into a 64 MiB file grows the store by ${grow} KiB (<= 1 MiB), $((w1 - w0)) chunks" ||
	ko "4 KiB write grew the store by ${grow} KiB"
u=$(CS usage -b c2 | awk 'NR==2{print $2, $3}')
echo "usage of the container's snapshot: $u"
C task kill -s KILL c2 >/dev/null 2>&1
for _ in $(seq 50); do C task ls | grep 'c2.*STOPPED' >/dev/null && break; sleep 0.1; done
C task rm c2 >/dev/null 2>&1; C container rm c2 >/dev/null 2>&1 || ko "container rm c2"

# ---- 4. ctr snapshots ---------------------------------------------------------------------
# The mounts name a loop device tessera attached (LOOP_CONFIGURE) to the
# snapshot's image: backing file, read-only flag, direct I/O.
loop_of() { CS mounts /mnt "$1" | sed -n 's|^mount -t ext4 /dev/\(loop[0-9]*\) /mnt -o \(.*\)$|\1 \2|p'; }
backing() { cat "/sys/block/$1/loop/backing_file" 2>/dev/null; }
CS prepare s-active "$L2" >/dev/null
read -r ldev lopts < <(loop_of s-active)
if [ -n "$ldev" ] && [ "$lopts" = "rw,noinit_itable" ] &&
   [[ "$(backing "$ldev")" == "$MNT/volumes/ctrd-"* ]] && [ "$(cat "/sys/block/$ldev/ro")" = 0 ] &&
   [ "$(cat "/sys/block/$ldev/loop/dio")" = 1 ]; then
	ok "snapshots prepare + mounts: ext4 on $ldev ($lopts), direct I/O on the volume's image"
else ko "snapshots prepare/mounts: $(CS mounts /mnt s-active 2>&1); $ldev -> $(backing "$ldev")"; fi
[ "$(loop_of s-active)" = "$ldev $lopts" ] && ok "a second Mounts names the same device" ||
	ko "second Mounts: $(loop_of s-active)"
mkdir -p "$W/m"
svol=$(basename "$(backing "$ldev")")
if mount -t ext4 -o "$lopts" "/dev/$ldev" "$W/m"; then
	echo hello >"$W/m/data/hello"
	s0=$SECONDS
	if CS commit s-commit s-active 2>"$W/commit.err"; then
		ok "commit of a mounted snapshot ($((SECONDS - s0))s: frozen, copied, thawed)"
	else
		ko "commit of a mounted snapshot: $(cat "$W/commit.err")"
	fi
	grep -q 's-active' < <(CS ls) && ko "s-active still listed after its commit" ||
		ok "the active key is gone after the commit"
	if echo after >"$W/m/data/after" && sync -f "$W/m/data/after"; then
		ok "the mount stays writable after the commit (thawed)"
	else
		ko "writing to the mount after the commit"
	fi
	[ -n "$(backing "$ldev")" ] && TS volume ls | grep -q "^$svol" &&
		ok "while mounted, $ldev and the volume $svol stay (an orphan)" ||
		ko "after commit while mounted: $ldev -> '$(backing "$ldev")'; $(TS volume ls)"
	umount "$W/m"
	for _ in $(seq 50); do
		[ -z "$(backing "$ldev")" ] && ! TS volume ls | grep -q "^$svol" && break
		sleep 0.1
	done
	[ -z "$(backing "$ldev")" ] && ! TS volume ls | grep -q "^$svol" &&
		ok "after the unmount, $ldev is released and the orphan volume removed" ||
		ko "after the unmount: $ldev -> '$(backing "$ldev")'; $(TS volume ls)"
else
	ko "mounting the active snapshot's device /dev/$ldev"
fi
CS view s-view s-commit >/dev/null
read -r vdev vopts < <(loop_of s-view)
if [ -n "$vdev" ] && [ "$vopts" = "ro,noload" ] && [ "$(cat "/sys/block/$vdev/ro")" = 1 ] &&
   mount -t ext4 -o "$vopts" "/dev/$vdev" "$W/m"; then
	[ "$(cat "$W/m/data/hello")" = hello ] && [ ! -e "$W/m/data/after" ] &&
		ok "snapshots view: read-only $vdev holds the committed file, not the later write" ||
		ko "view content: $(ls "$W/m/data")"
	umount "$W/m"
else ko "snapshots view: $(CS mounts /mnt s-view 2>&1)"; fi
CS label s-commit test.label=hello >/dev/null && CS info s-commit | grep '"test.label": "hello"' >/dev/null &&
	ok "snapshots label + info" || ko "snapshots label: $(CS info s-commit)"
CS usage s-commit | grep s-commit >/dev/null && ok "snapshots usage" || ko "snapshots usage"
CS ls >"$W/ls.out" 2>&1; grep -q s-view "$W/ls.out" && ok "snapshots ls" ||
	ko "snapshots ls: $(tail -5 "$W/ls.out")"
CS rm s-commit 2>/dev/null && ko "removing a snapshot with a child worked" ||
	ok "snapshots rm of a parent with a child is refused"
CS rm s-view && CS rm s-commit && ! CS ls | grep 's-' >/dev/null && ok "snapshots rm" ||
	ko "snapshots rm: $(CS ls)"
# containerd removes from its metadata at once, from the backend at its next
# GC (scheduled after a pause of about 50x the last GC's length): up to 20 s.
for _ in $(seq 200); do [ -z "$(backing "$vdev")" ] && break; sleep 0.1; done
[ -z "$(backing "$vdev")" ] && ok "rm released $vdev" || ko "$vdev still bound to $(backing "$vdev")"

# A snapshot committed while mounted pins its parent layer: Remove of the
# parent works all the same (its layer waits under a ctrd-rm- name), and
# both go once the orphan is unmounted.
{ CS prepare p-base >/dev/null && CS commit p-base-c p-base && CS prepare p-top p-base-c >/dev/null; } ||
	ko "prepare/commit p-base, prepare p-top"
read -r pdev popts < <(loop_of p-top)
if [ -n "$pdev" ] && mount -t ext4 -o "$popts" "/dev/$pdev" "$W/m"; then
	pvol=$(basename "$(backing "$pdev")")
	echo top >"$W/m/top"
	CS commit p-top-c p-top || ko "commit of the mounted p-top"
	CS rm p-top-c && CS rm p-base-c && ok "rm of a chain whose top was committed while mounted" ||
		ko "rm p-top-c / p-base-c"
	# (containerd calls the backend's Remove at its next GC.)
	for _ in $(seq 250); do TS layer ls | grep -q 'ctrd-rm-' && break; sleep 0.1; done
	TS layer ls | grep -q 'ctrd-rm-' && ok "the parent's layer waits for the mounted orphan" ||
		ko "no waiting layer: $(TS layer ls)"
	umount "$W/m"
	for _ in $(seq 50); do
		! TS layer ls | grep -q 'ctrd-rm-' && ! TS volume ls | grep -q "^$pvol" && break
		sleep 0.1
	done
	! TS layer ls | grep -q 'ctrd-rm-' && ! TS volume ls | grep -q "^$pvol" &&
		ok "after the unmount the orphan and the layer that waited for it are gone" ||
		ko "after the unmount: $(TS layer ls) $(TS volume ls)"
else
	ko "mounting p-top: $(CS mounts /mnt p-top 2>&1)"
fi

note_volumes
# ---- 5. malformed input ------------------------------------------------------------------
if /usr/bin/python3 "$HERE/h2_garbage.py" "$SOCK" >"$W/garbage.log" 2>&1; then
	ok "malformed HTTP/2, gRPC, protobuf: $(grep -c PASS "$W/garbage.log") cases answered with errors"
else
	ko "malformed input: $(grep -v PASS "$W/garbage.log" | head -5)"
fi
kill -0 "$SERVE_PID" 2>/dev/null && CS ls >/dev/null && ok "still serving containerd after them" ||
	ko "tessera serve died or stopped serving"

# ---- 6. killed between two imports, in a commit of a mounted snapshot --------------------
# The daemon is restarted with a test switch that makes it kill itself
# (SIGKILL) in a commit of a mounted snapshot after the layer is published
# and before the thaw.  Two more snapshots hold devices (rw and read-only)
# when it dies: the kernel must clear both (autoclear, nothing mounts them).
kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null; SERVE_PID=
start_serve TESSERA_TEST_KILL_FROZEN=1
retry CS prepare k-active "$L2" >/dev/null && CS view k-view "$L2" >/dev/null &&
	CS prepare k-frozen "$L2" >/dev/null || ko "prepare/view before the kill"
read -r kdev1 _ < <(loop_of k-active)
read -r kdev2 _ < <(loop_of k-view)
read -r fdev fopts < <(loop_of k-frozen)
# (`ctr snapshots view` sets no gc.root label: containerd's GC may have
# taken k-view already; then only k-active's device is judged.)
if [ -z "$kdev2" ] && ! CS ls 2>/dev/null | grep -q 'k-view'; then
	echo "note: k-view was collected by containerd's GC before its Mounts"
	kdev2=$kdev1
fi
# Their image files, as the kernel shows them once the FUSE mount is
# detached (relative to it): a device still on one of these is ours; one
# reused meanwhile by another run on the machine is not.
kfile1=$(backing "$kdev1"); kfile1=${kfile1#"$MNT"}
kfile2=$(backing "$kdev2"); kfile2=${kfile2#"$MNT"}
ours_left() { local b1 b2; b1=$(backing "$kdev1") b2=$(backing "$kdev2")
	{ [ -n "$b1" ] && [ "${b1%"$kfile1"}" != "$b1" ]; } || { [ -n "$b2" ] && [ "${b2%"$kfile2"}" != "$b2" ]; }; }
note_volumes
mkdir -p "$W/km"
fvol= writer=
if [ -n "$fdev" ] && mount -t ext4 -o "$fopts" "/dev/$fdev" "$W/km"; then
	fvol=$(basename "$(backing "$fdev")")
	echo frozen >"$W/km/data/frozen"
	CS commit k-frozen-c k-frozen >"$W/kcommit.out" 2>&1 &&
		ko "the commit with the kill switch returned: $(cat "$W/kcommit.out")"
	wait "$SERVE_PID" 2>/dev/null; SERVE_PID=
	grep -q 'killed with .* frozen' "$W/serve.log" && ok "the daemon died in the commit, its filesystem frozen" ||
		ko "no kill while frozen: $(tail -3 "$W/serve.log")"
	# A writer of the frozen filesystem waits (uninterruptibly) for the thaw.
	touch "$W/km/waits" 2>/dev/null &
	writer=$!
	sleep 1
	kill -0 "$writer" 2>/dev/null && ok "a writer waits on the frozen filesystem" ||
		ko "the filesystem is not frozen after the kill"
else
	ko "mounting k-frozen: $(CS mounts /mnt k-frozen 2>&1)"
	kill -9 "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null; SERVE_PID=
fi
grep -qF " $MNT " /proc/mounts && ok "after the kill the FUSE mount is stale: $(stat "$MNT" 2>&1 | sed 's/.*: //')"
for _ in $(seq 50); do ours_left || break; sleep 0.1; done
[ -n "$kdev1" ] && [ -n "$kdev2" ] && [ -n "$kfile1" ] && [ -n "$kfile2" ] && ! ours_left &&
	ok "the kill left no loop device but the mounted one: $kdev1 and $kdev2 cleared" ||
	ko "after the kill: ${kdev1:-?} -> $(backing "$kdev1"), ${kdev2:-?} -> $(backing "$kdev2")"
start_serve
grep -q "cleaned a stale FUSE mount" "$W/serve.log" && ok "restart cleaned the stale FUSE mount" ||
	ko "no stale mount cleaned: $(tail -3 "$W/serve.log")"
if [ -n "$writer" ]; then
	for _ in $(seq 50); do kill -0 "$writer" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$writer" 2>/dev/null && grep -q 'recovery: thawed the filesystem' "$W/serve.log" &&
		ok "the restart thawed the filesystem: the waiting writer went on" ||
		ko "still frozen after the restart: $(grep recovery "$W/serve.log" | tail -3)"
	wait "$writer" 2>/dev/null
	# (containerd saw its Commit fail and still lists k-frozen; its GC
	# removes the backend's k-frozen-c, which it does not know.)
	grep -q 'recovery: finished the commit of' "$W/serve.log" &&
		ok "the restart finished the commit (published before the kill)" ||
		ko "commit after the restart: $(grep recovery "$W/serve.log" | tail -3)"
	grep -q "volume $fvol .* kept until it is unmounted" "$W/serve.log" &&
		ok "the mounted orphan volume is kept across the restart" ||
		ko "orphan across the restart: $(grep recovery "$W/serve.log" | tail -3)"
	umount "$W/km" || umount -l "$W/km"
	for _ in $(seq 50); do ! TS volume ls | grep -q "^$fvol" && break; sleep 0.1; done
	! TS volume ls | grep -q "^$fvol" && ok "and removed once unmounted" ||
		ko "orphan $fvol left after the unmount: $(TS volume ls)"
fi
s0=$SECONDS
if retry C images import --snapshotter tessera "$W/img2.tar" >"$W/import2.log" 2>&1; then
	ok "second import after kill -9 and restart ($((SECONDS - s0))s)"
else
	ko "second import: $(tail -3 "$W/import2.log")"
fi
# (`ctr snapshots view` sets no gc.root label: containerd's GC, run after
# the import, may have removed k-view already.)
CS rm k-view >"$W/krm.out" 2>&1
if retry CS rm k-active >>"$W/krm.out" 2>&1 && { [ -z "$fdev" ] || CS rm k-frozen >>"$W/krm.out" 2>&1; } &&
   CS ls >"$W/krm.ls" 2>&1 &&
   ! grep 'k-' "$W/krm.ls" >/dev/null; then
	ok "the snapshots of the killed daemon remove after restart"
else
	ko "rm k-view / k-active after restart: $(tail -3 "$W/krm.out")"
fi
out=$(retry RUN test/img2:t c3 /bin/sh -c 'cat /data/l1 /data/l2 /data/l3' 2>&1)
[ "$(echo "$out" | tr '\n' ' ')" = "one two three " ] && ok "run of the second image" ||
	ko "run after restart: $out"
TS fsck >"$W/fsck.log" 2>&1 && ok "tessera fsck clean (through the daemon)" ||
	ko "fsck: $(tail -5 "$W/fsck.log")"

note_volumes
# ---- 7. images rm + GC -> Remove + Cleanup --------------------------------------------------------
before=$(du -sk "$S" | cut -f1)
C images rm --sync test/img1:t test/img2:t >/dev/null 2>&1 || ko "ctr images rm"
sleep 1
left=$(CS ls | tail -n +2 | wc -l)
layers=$(TS layer ls | tail -n +2 | grep -c . || true)
after=$(du -sk "$S" | cut -f1)
echo "store: ${before} KiB before images rm, ${after} KiB after; $left snapshots, $layers layers left"
[ "$left" -eq 0 ] && [ "$layers" -eq 0 ] && ok "images rm removed every snapshot and layer" ||
	ko "left after images rm: $(CS ls) $(TS layer ls)"
[ "$after" -lt $((before / 4)) ] && ok "the store's space came back (${before} -> ${after} KiB)" ||
	ko "store space: ${before} -> ${after} KiB"
grep -q 'cleanup:' "$W/serve.log" && ok "containerd called Cleanup" || ko "no Cleanup call"
# Every loop device is gone: released by Commit and Remove, or (those of
# the killed daemon) cleared by the kernel when it closed them.
# (By name: a device left on the killed daemon's mount shows its file
# relative to the detached mount.)
# Only this run's: under its FUSE mount, or on the image of one of its
# volumes as a killed daemon's detached mount shows it (another run on the
# machine may hold loop devices of its own).
left=$(losetup -n -l -O NAME,BACK-FILE | grep -F "$MNT/" || true)
while read -r v; do
	left+=$(losetup -n -l -O NAME,BACK-FILE | grep -E " /volumes/$v\$" || true)
done < <(sort -u "$W/volumes" 2>/dev/null)
[ -z "$left" ] && ok "no loop device left on the store's images" || ko "loop devices left: $left"

if [ "$failc" -gt 0 ]; then
	echo "--- tessera serve's log (last lines):"; tail -n 15 "$W/serve.log"
	echo "--- containerd's errors and warnings (last lines):"
	grep -E 'level=(error|warning)' "$CD/log" | tail -n 15
fi
echo "containerd: $pass passed, $failc failed ($(t))"
[ "$failc" -eq 0 ]
