# A second guest on the same running backend: the first guest's files are
# there.  Then the backend is killed and restarted (the host waits for
# TSR-PHASE1); I/O must continue on the reconnected device.
d=/dev/vda
mount -t ext4 $d /mnt
[ "$(cat /mnt/hello.txt)" = hello ]
[ "$(sha256sum < /mnt/p.bin | cut -d' ' -f1)" = "$TSR_sha" ]
[ "$(cat /mnt/many/100)" = "file 100" ]
echo second > /mnt/second.txt
umount /mnt
/sbin/e2fsck -fn $d
echo TSR-PHASE1
# The host kills the backend now and starts a new one; I/O issued while
# it is away waits for QEMU to reconnect.
sleep 6
dd if=/dev/urandom of=/tmp/q bs=64K count=16 2>/dev/null
dd if=/tmp/q of=$d bs=64K seek=$((52 << 4)) oflag=direct conv=fsync 2>/dev/null
dd if=$d bs=64K skip=$((52 << 4)) count=16 iflag=direct 2>/dev/null | cmp - /tmp/q
echo "TSR-RECONNPAT $(sha256sum < /tmp/q | cut -d' ' -f1)"
mount -t ext4 $d /mnt
[ "$(cat /mnt/second.txt)" = second ]
umount /mnt
