# First guest on a read-write volume (64 MiB).  The host wrote 4 MiB at
# 56 MiB whose SHA-256 is $TSR_sha.
d=/dev/vda
echo "serial=$(cat /sys/block/vda/serial) ro=$(cat /sys/block/vda/ro) queues=$(ls /sys/block/vda/mq | wc -l)"
[ "$(cat /sys/block/vda/ro)" = 0 ]
[ "$(cat /sys/block/vda/serial)" = "$TSR_serial" ]
[ "$(ls /sys/block/vda/mq | wc -l)" = 2 ]
# Read what the host wrote.
got=$(dd if=$d bs=1M skip=56 count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$TSR_sha" ] || { echo "host pattern: got $got"; exit 1; }
# Write a pattern, read it back, past the page cache.
dd if=/dev/urandom of=/tmp/p bs=1M count=2 2>/dev/null
dd if=/tmp/p of=$d bs=1M seek=48 oflag=direct conv=fsync 2>/dev/null
dd if=$d bs=1M skip=48 count=2 iflag=direct 2>/dev/null | cmp - /tmp/p
echo "TSR-GUESTPAT $(sha256sum < /tmp/p | cut -d' ' -f1)"
# A filesystem on the first 40 MiB, some files, a check.
/sbin/mke2fs -q -F -t ext4 $d 40M
mount -t ext4 $d /mnt
cp /tmp/p /mnt/p.bin
echo hello > /mnt/hello.txt
mkdir /mnt/many
for i in $(seq 1 100); do echo "file $i" > /mnt/many/$i; done
umount /mnt
/sbin/e2fsck -fn $d
# Discard the second half of the host's pattern: it reads as zeros.
blkdiscard -o $((58 << 20)) -l $((2 << 20)) $d
zero=$(dd if=/dev/zero bs=1M count=2 2>/dev/null | sha256sum)
[ "$(dd if=$d bs=1M skip=58 count=2 iflag=direct 2>/dev/null | sha256sum)" = "$zero" ]
sync
