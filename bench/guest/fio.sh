# Guest side of bench/vhost_fio.sh: run by tests/vhost/guest/init (from the
# cached test initramfs) as /tests/fio.sh, with $TSR_rt = seconds per job.
# fio (io_uring, direct) on /dev/vda, the rows of bench/fio/row.fio; each
# job's JSON goes to the console between TSR-FIO-START/TSR-FIO-END lines.
rt=${TSR_rt:-5}
for job in randread-4k-qd1:randread:4k:1 randread-4k-qd32:randread:4k:32 \
           randwrite-4k-qd1:randwrite:4k:1 randwrite-4k-qd32:randwrite:4k:32 \
           read-1m-qd8:read:1M:8 write-1m-qd8:write:1M:8; do
  IFS=: read -r name rw bs qd <<EOF
$job
EOF
  echo "TSR-FIO-START $name"
  /usr/bin/fio --name="$name" --filename=/dev/vda --ioengine=io_uring --direct=1 \
    --rw="$rw" --bs="$bs" --iodepth="$qd" --time_based --ramp_time=1 \
    --runtime="$rt" --randrepeat=0 --output-format=json --output=/tmp/fio.json \
    > /tmp/fio.err 2>&1 || { echo "TSR-FIO-ERR $name"; cat /tmp/fio.err; }
  echo "TSR-FIO-JSON $name"
  cat /tmp/fio.json
  echo "TSR-FIO-END $name"
done
