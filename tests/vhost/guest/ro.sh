# A committed layer served read-only: readable, writes refused.
d=/dev/vda
[ "$(cat /sys/block/vda/ro)" = 1 ]
got=$(dd if=$d bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$TSR_sha" ] || { echo "layer content: got $got"; exit 1; }
if dd if=/dev/zero of=$d bs=4K count=1 oflag=direct 2>/dev/null; then
  echo "a write to the read-only disk succeeded"
  exit 1
fi
got=$(dd if=$d bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$TSR_sha" ]
