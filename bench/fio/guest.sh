# Guest side of bench/fio_suite.sh (vhost-user-blk systems): run by the
# vhost test guests' /init (tests/vhost/guest/init) as /tests/suite.sh.
# Environment from the kernel command line: TSR_rt (seconds per job),
# TSR_ramp (ramp seconds), TSR_vsize (verify region, e.g. 64M).  Runs every
# job of /tests/jobs.tsv (bench/fio/jobs.tsv) on /dev/vda with io_uring,
# direct=1, then the verify pass (crc32c, verify_fatal).  Each job's JSON
# goes to the console between TSR-FIO-START / TSR-FIO-JSON / TSR-FIO-END.
rt=${TSR_rt:-5}
ramp=${TSR_ramp:-1}
vsize=${TSR_vsize:-64M}
grep -v '^#' /tests/jobs.tsv | while read -r name rw bs qd mix metric; do
  [ -n "$name" ] || continue
  extra=
  [ "$mix" = - ] || extra="--rwmixread=$mix"
  echo "TSR-FIO-START $name"
  /usr/bin/fio --name="$name" --filename=/dev/vda --ioengine=io_uring --direct=1 \
    --rw="$rw" --bs="$bs" --iodepth="$qd" $extra --time_based --ramp_time="$ramp" \
    --runtime="$rt" --randrepeat=0 --group_reporting --output-format=json \
    --output=/tmp/fio.json > /tmp/fio.err 2>&1 || { echo "TSR-FIO-ERR $name"; cat /tmp/fio.err; }
  echo "TSR-FIO-JSON $name"
  cat /tmp/fio.json
  echo "TSR-FIO-END $name"
done
echo "TSR-FIO-START verify"
if /usr/bin/fio --name=verify --filename=/dev/vda --ioengine=io_uring --direct=1 \
    --rw=randwrite --bs=4k --iodepth=32 --size="$vsize" --verify=crc32c \
    --verify_fatal=1 --do_verify=1 --group_reporting --output-format=json \
    --output=/tmp/fio.json > /tmp/fio.err 2>&1; then
  echo "TSR-FIO-VERIFY pass"
else
  echo "TSR-FIO-VERIFY fail $(head -c 300 /tmp/fio.err | tr '\n' ' ')"
fi
echo "TSR-FIO-JSON verify"
cat /tmp/fio.json
echo "TSR-FIO-END verify"
