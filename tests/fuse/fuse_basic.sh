#!/bin/bash
# SPDX-License-Identifier: MIT
#
# fuse_basic.sh TESSERA_CLI HARNESS: the FUSE front-end on real kernel FUSE
# and loop devices (root).  Namespace, byte I/O with and without O_DIRECT,
# punch-hole and zero-range, read-only layers, I/O at the end, ext4 through
# a direct-io loop device, fio verify (2 jobs, iodepth 32, fsync) across a
# restart of the daemon, and kill -9 of the daemon while a writer fsyncs:
# the stale mount is cleaned on restart and every fsynced block reads back.
#
# Prints PASS/FAIL lines; exit 0 when all pass, 1 otherwise, 77 to skip.
set -u

CLI=${1:?usage: fuse_basic.sh TESSERA_CLI HARNESS}
HARNESS=${2:?usage: fuse_basic.sh TESSERA_CLI HARNESS}

if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ] || [ ! -e /dev/loop-control ]; then
	echo "SKIP: needs root, /dev/fuse and loop devices"
	exit 77
fi
for tool in fio mkfs.ext4 e2fsck losetup fallocate; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done

WORK=$(mktemp -d /tmp/tsr-fuse-XXXXXX)
STORE=$WORK/store
MNT=$WORK/mnt
EXT=$WORK/ext
HPID=
WPID=
FAILS=0

cleanup() {
	set +e
	cd /
	[ -n "$WPID" ] && kill -9 "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
	mountpoint -q "$EXT" 2>/dev/null && umount "$EXT"
	[ -s "$WORK/loopdev" ] && losetup -d "$(cat "$WORK/loopdev")" 2>/dev/null
	if [ -n "$HPID" ]; then
		kill -TERM "$HPID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$HPID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$HPID" 2>/dev/null
		wait "$HPID" 2>/dev/null
	fi
	grep -q " $MNT " /proc/self/mounts && umount -l "$MNT"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
# check DESCRIPTION COMMAND...: PASS when the command succeeds.
check() {
	local what=$1
	shift
	if "$@" >"$WORK/out" 2>&1; then
		pass "$what"
		return 0
	fi
	fail "$what"
	sed 's/^/    /' "$WORK/out" | tail -20
	return 1
}
tsr() { "$CLI" --store "$STORE" "$@"; }

is_mounted() { grep -q " $MNT fuse.tessera " /proc/self/mounts; }

start_harness() {
	"$HARNESS" "$STORE" "$MNT" >>"$WORK/harness.log" 2>&1 &
	HPID=$!
	for _ in $(seq 100); do
		if is_mounted && ls "$MNT/volumes" >/dev/null 2>&1; then return 0; fi
		kill -0 "$HPID" 2>/dev/null || break
		sleep 0.1
	done
	echo "harness did not come up:"; cat "$WORK/harness.log"
	return 1
}

# stop_harness: SIGTERM, wait for a clean exit (status 0) and the unmount.
stop_harness() {
	local rc
	kill -TERM "$HPID"
	wait "$HPID"
	rc=$?
	HPID=
	[ "$rc" = 0 ] && ! is_mounted
}

# block_pattern I: 4 KiB that name block I.
block_pattern() { yes "$(printf '%015d' "$1")" | head -c 4096; }

mkdir -p "$MNT" "$EXT"
cd "$WORK" || exit 1  # fio's verify state files land here
dd if=/dev/urandom of="$WORK/rand4m" bs=1M count=4 status=none

# ---- store content ---------------------------------------------------------
tsr init >/dev/null || { echo "FAIL: tessera init"; exit 1; }
for v in v e f1 f2 f3; do tsr volume create "$v" --size 256M >/dev/null || exit 1; done
tsr volume import lb "$WORK/rand4m" >/dev/null || { echo "FAIL: volume import"; exit 1; }
LID=$(tsr commit lb --name base) || { echo "FAIL: commit"; exit 1; }

check "harness mounts the store" start_harness || exit 1

# ---- namespace -------------------------------------------------------------
check "ls MNT shows images, layers and volumes" \
	test "$(ls "$MNT" | tr '\n' ' ')" = "images layers volumes "
check "ls MNT/volumes lists the volumes" \
	test "$(ls "$MNT/volumes" | tr '\n' ' ')" = "e f1 f2 f3 v "
check "ls MNT/layers lists the layer and by-name" \
	test "$(ls "$MNT/layers" | LC_ALL=C sort | tr '\n' ' ')" = "$(printf '%s\n' "$LID" by-name | LC_ALL=C sort | tr '\n' ' ')"
check "by-name/base links to ../ID" \
	test "$(readlink "$MNT/layers/by-name/base")" = "../$LID"
check "volume size is the volume's size" \
	test "$(stat -c %s "$MNT/volumes/v")" = 268435456
check "layer file is 0444 and reads the layer's data" \
	bash -c "test \"\$(stat -c %a '$MNT/layers/$LID')\" = 444 &&
		 cmp '$MNT/layers/by-name/base' '$WORK/rand4m'"
check "a missing name is ENOENT" \
	bash -c "stat '$MNT/volumes/nope' 2>&1 | grep -q 'No such file'"

# ---- byte I/O ----------------------------------------------------------------
V=$MNT/volumes/v
check "buffered write + read back" bash -c "
	dd if='$WORK/rand4m' of='$V' bs=64k seek=17 conv=notrunc status=none &&
	dd if='$V' bs=64k skip=17 count=64 status=none | cmp - '$WORK/rand4m'"
check "O_DIRECT write + O_DIRECT read back" bash -c "
	dd if='$WORK/rand4m' of='$V' bs=1M seek=100 conv=notrunc oflag=direct status=none &&
	dd if='$V' bs=1M skip=100 count=4 iflag=direct status=none | cmp - '$WORK/rand4m'"
check "unaligned pwrite/pread" bash -c "
	printf 'hello tessera' | dd of='$V' bs=1 seek=1000003 conv=notrunc status=none &&
	test \"\$(dd if='$V' bs=1 skip=1000003 count=13 status=none)\" = 'hello tessera'"
check "fsync of a volume file succeeds" \
	dd if=/dev/zero of="$V" bs=4k count=1 seek=9 conv=notrunc,fsync status=none
check "punch-hole reads back zeros" bash -c "
	fallocate --punch-hole --keep-size -o 100M -l 1M '$V' &&
	dd if='$V' bs=1M skip=100 count=1 iflag=direct status=none | cmp - <(head -c 1M /dev/zero) &&
	dd if='$V' bs=1M skip=101 count=3 status=none | cmp - <(tail -c 3M '$WORK/rand4m')"
check "zero-range reads back zeros" bash -c "
	fallocate --zero-range --keep-size -o 102M -l 64k '$V' &&
	dd if='$V' bs=64k skip=1632 count=1 status=none | cmp - <(head -c 64k /dev/zero)"
check "other fallocate modes are EOPNOTSUPP" bash -c "
	fallocate -o 0 -l 4096 '$V' 2>&1 | grep -q 'not supported'"
check "read at the end is empty, across it short" bash -c "
	test \"\$(dd if='$V' bs=4k skip=65536 count=1 status=none | wc -c)\" = 0 &&
	test \"\$(dd if='$V' bs=1k skip=262140 count=8 status=none | wc -c)\" = 4096"
check "write at the end fails with ENOSPC" bash -c "
	dd if=/dev/zero of='$V' bs=4k seek=65536 count=1 conv=notrunc 2>&1 | grep -q 'No space left'"
check "truncate to another size is refused" bash -c "! truncate -s 1M '$V' 2>/dev/null && test \$(stat -c %s '$V') = 268435456"
check "writing a layer file fails" bash -c "
	! dd if=/dev/zero of='$MNT/layers/$LID' bs=4k count=1 conv=notrunc 2>/dev/null &&
	! (echo x >'$MNT/layers/by-name/base') 2>/dev/null &&
	cmp '$MNT/layers/$LID' '$WORK/rand4m'"

# ---- ext4 on a direct-io loop device ------------------------------------------
# In a subshell (set -e); the loop device is recorded for cleanup.
ext4_round() (
	set -e
	LOOP=$(losetup --direct-io=on -f --show "$MNT/volumes/e")
	echo "$LOOP" >"$WORK/loopdev"
	test "$(cat /sys/block/"${LOOP#/dev/}"/loop/dio)" = 1
	mkfs.ext4 -q -F "$LOOP"
	mount "$LOOP" "$EXT"
	cp -a /usr/include/linux "$EXT/tree"
	dd if="$WORK/rand4m" of="$EXT/big" bs=1M status=none conv=fsync
	(cd "$EXT" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$WORK/sums"
	umount "$EXT"
	e2fsck -fn "$LOOP"
	mount -o ro "$LOOP" "$EXT"
	(cd "$EXT" && sha256sum --quiet -c "$WORK/sums")
	umount "$EXT"
	losetup -d "$LOOP"
	rm "$WORK/loopdev"
)
check "mkfs.ext4 + files through losetup --direct-io=on, e2fsck clean" ext4_round

# ---- fio verify ----------------------------------------------------------------
FIO_COMMON=(--size=64M --offset_increment=64M --numjobs=2 --iodepth=32
	    --ioengine=io_uring --verify=crc32c --fsync=32 --group_reporting
	    --randrepeat=1)
fio_job() {  # fio_job FILE RW BS DIRECT [extra...]
	local file=$1 rw=$2 bs=$3 direct=$4
	shift 4
	fio --name=v --filename="$file" --rw="$rw" --bs="$bs" --direct="$direct" \
	    "${FIO_COMMON[@]}" "$@" >"$WORK/fio.out" 2>&1 &&
		! grep -qiE 'verify.*(bad|fail)|crc32c.*(bad|wanted)' "$WORK/fio.out"
}
check "fio randwrite 4k direct, 2 jobs qd32, verify" fio_job "$MNT/volumes/f1" randwrite 4k 1
check "fio randwrite 4k buffered, 2 jobs qd32, verify" fio_job "$MNT/volumes/f2" randwrite 4k 0
check "fio sequential write 1M direct, 2 jobs qd32, verify" fio_job "$MNT/volumes/f3" write 1M 1

check "SIGTERM: clean exit and unmount" stop_harness
check "restart" start_harness || exit 1
check "fio verify_only after restart (random direct)" fio_job "$MNT/volumes/f1" randwrite 4k 1 --verify_only
check "fio verify_only after restart (random buffered)" fio_job "$MNT/volumes/f2" randwrite 4k 0 --verify_only
check "fio verify_only after restart (sequential)" fio_job "$MNT/volumes/f3" write 1M 1 --verify_only
check "data written before the restart reads back" bash -c "
	dd if='$V' bs=1M skip=101 count=1 status=none | cmp - <(head -c 2M '$WORK/rand4m' | tail -c 1M) &&
	dd if='$V' bs=1M skip=103 count=1 status=none | cmp - <(tail -c 1M '$WORK/rand4m')"

# ---- kill -9 while a writer fsyncs -----------------------------------------------
# The writer records each block only after its write + fsync returned.
writer() {
	local i=0
	while block_pattern "$i" | dd of="$MNT/volumes/v" bs=4k seek=$((2048 + i)) \
		conv=notrunc,fsync oflag=direct status=none 2>/dev/null; do
		echo "$i" >>"$WORK/acked"
		i=$((i + 1))
	done
}
: >"$WORK/acked"
writer &
WPID=$!
sleep 2
kill -9 "$HPID"
wait "$HPID" 2>/dev/null
HPID=
sleep 0.5
kill -9 "$WPID" 2>/dev/null
wait "$WPID" 2>/dev/null
WPID=
check "after kill -9 the mount is stale (ENOTCONN)" bash -c "
	stat '$MNT' 2>&1 | grep -q 'Transport endpoint is not connected'"
: >"$WORK/harness.log"
if start_harness && grep -q "cleaned stale mount" "$WORK/harness.log"; then
	pass "restart cleans the stale mount and mounts again"
else
	fail "restart cleans the stale mount and mounts again"
	cat "$WORK/harness.log"
	exit 1
fi
N=$(wc -l <"$WORK/acked")
check "every fsynced block reads back ($N blocks)" bash -c "
	test $N -gt 0 || exit 1
	$(declare -f block_pattern)
	for i in \$(seq 0 $((N - 1))); do
		dd if='$MNT/volumes/v' bs=4k skip=\$((2048 + i)) count=1 status=none |
			cmp -s - <(block_pattern \$i) || { echo block \$i differs; exit 1; }
	done"
check "final SIGTERM: clean exit and unmount" stop_harness

if [ "$FAILS" = 0 ]; then
	echo "PASS: fuse_basic"
	exit 0
fi
echo "FAIL: fuse_basic ($FAILS failed)"
exit 1
