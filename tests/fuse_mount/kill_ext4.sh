#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# kill -9 of the `tessera mount` daemon under a live ext4: a volume file is
# attached to a direct-io loop device, ext4 is mounted on it, and a writer
# creates files and fsyncs each (file, then directory) while the daemon is
# killed.  Then: the ext4 and the loop device are taken down, `tessera mount`
# cleans the stale mount and serves again, e2fsck replays the journal
# (-fp) and then finds nothing to fix (-fn), and every file whose fsync
# returned reads back.  Root, real kernel FUSE, loop devices and ext4.
#   kill_ext4.sh TESSERA
set -u
T=${1:?usage: kill_ext4.sh TESSERA}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
[ -c /dev/fuse ] && [ -e /dev/loop-control ] || { echo "SKIP: needs /dev/fuse and loop devices"; exit 77; }
for tool in mkfs.ext4 e2fsck losetup python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done

W=$(mktemp -d /tmp/tsr-kill-ext4-XXXXXX)
S=$W/store M=$W/mnt E=$W/ext
LOOP= WPID= DPID=
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
ko() { echo "FAIL: $*"; fail=$((fail + 1)); }
t() { "$T" --store "$S" "$@"; }
daemon_pid() { grep -o 'daemon pid [0-9]*' "$1" | awk '{print $3}'; }

# Takes down whatever is still up, innermost first, by pid.
cleanup() {
	set +e
	cd /
	[ -n "$WPID" ] && kill -9 "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
	mountpoint -q "$E" 2>/dev/null && umount -l "$E"
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	if mountpoint -q "$M" 2>/dev/null; then
		t umount "$M" >/dev/null 2>&1 || umount -l "$M"
	fi
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	grep -q " $M " /proc/self/mounts && umount -l "$M"
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
mkdir -p "$M" "$E"

t init >/dev/null
t volume create e --size 256M >/dev/null
t mount "$M" >"$W/mount1.out" || { cat "$W/mount1.out"; echo "FAIL: tessera mount"; exit 1; }
DPID=$(daemon_pid "$W/mount1.out")
[ -n "$DPID" ] || { echo "FAIL: no daemon pid in: $(cat "$W/mount1.out")"; exit 1; }
LOOP=$(losetup --direct-io=on -f --show "$M/volumes/e") || { echo "FAIL: losetup"; exit 1; }
mkfs.ext4 -q -E nodiscard "$LOOP" && mount "$LOOP" "$E" && ok "ext4 on loop on the FUSE volume file" \
	|| { ko "mkfs/mount ext4"; exit 1; }

# The writer records a file only after its bytes and its directory entry
# were fsynced.  File i holds 64 KiB of a pattern derived from i.
cat >"$W/writer.py" <<'EOF'
import os, sys
d, acked = sys.argv[1], sys.argv[2]
i = 0
while True:
    data = (b"%08d" % i) * 8192
    try:
        fd = os.open(os.path.join(d, "f%d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
    except OSError:
        sys.exit(0)
    with open(acked, "a") as f:
        f.write("%d\n" % i)
    i += 1
EOF
: >"$W/acked"
python3 "$W/writer.py" "$E" "$W/acked" &
WPID=$!
sleep 3
kill -9 "$DPID"
while kill -0 "$DPID" 2>/dev/null; do sleep 0.1; done
DPID=
sleep 0.5
kill -9 "$WPID" 2>/dev/null
wait "$WPID" 2>/dev/null
WPID=
N=$(wc -l <"$W/acked")
[ "$N" -gt 0 ] && ok "writer had $N files fsynced when the daemon was killed" || ko "writer fsynced nothing"

# Down the stack: the ext4 (lazily: its device is dead), then the loop.
umount -l "$E" && ok "ext4 unmounted (lazy)" || ko "umount ext4"
for _ in $(seq 50); do losetup -d "$LOOP" 2>/dev/null && break; sleep 0.1; done
if losetup "$LOOP" >/dev/null 2>&1 && losetup "$LOOP" | grep -q "$M/volumes/e"; then
	ko "loop device $LOOP not detached"
else
	ok "loop device detached"
fi
LOOP=

stat "$M" 2>&1 | grep -q 'Transport endpoint is not connected' && ok "FUSE mount is stale (ENOTCONN)" \
	|| ko "FUSE mount not stale after kill -9"
t mount "$M" >"$W/mount2.out" 2>&1
DPID=$(daemon_pid "$W/mount2.out")
if [ -n "$DPID" ] && grep -q "cleaned a stale mount" "$W/mount2.out" && [ -e "$M/volumes/e" ]; then
	ok "tessera mount cleans the stale mount and serves again"
else
	ko "remount: $(cat "$W/mount2.out")"
	exit 1
fi

# e2fsck on the volume file itself: -p replays the journal (exit 0 or 1:
# fixed), then -n must find nothing (exit 0).
e2fsck -fp "$M/volumes/e" >"$W/fsck1.out" 2>&1
rc=$?
[ $rc -le 1 ] && ok "e2fsck -fp (journal replay) exit $rc" || { ko "e2fsck -fp exit $rc"; cat "$W/fsck1.out"; }
e2fsck -fn "$M/volumes/e" >"$W/fsck2.out" 2>&1 && ok "e2fsck -fn clean after replay" \
	|| { ko "e2fsck -fn"; cat "$W/fsck2.out"; }

# Every acknowledged file reads back, through ext4 again (read-only).
LOOP=$(losetup -r -f --show "$M/volumes/e")
if mount -o ro,noload "$LOOP" "$E"; then
	if python3 - "$E" "$N" <<'EOF'
import sys
d, n = sys.argv[1], int(sys.argv[2])
bad = 0
for i in range(n):
    try:
        ok = open("%s/f%d" % (d, i), "rb").read() == (b"%08d" % i) * 8192
    except OSError:
        ok = False
    if not ok:
        bad += 1
        print("  f%d differs or is missing" % i)
sys.exit(1 if bad else 0)
EOF
	then ok "all $N fsynced files read back"; else ko "fsynced files lost"; fi
	umount "$E"
else
	ko "mount the ext4 read-only after replay"
fi
losetup -d "$LOOP"
LOOP=

t umount "$M" >/dev/null && ok "tessera umount" || ko "tessera umount"
DPID=
t fsck >/dev/null && ok "store fsck clean" || ko "store fsck"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
