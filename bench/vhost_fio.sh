#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/vhost_fio.sh: issue 7's benchmark.  fio (io_uring, direct=1) inside a
# QEMU guest (TCG, -accel tcg,thread=multi, 2 vCPUs, 512 MiB) on a
# vhost-user-blk disk (num-queues=2) served by
#   tsr        `tessera vhost --volume v --queues 2`; v is a child volume of
#              a committed layer of the data
#   qsd-raw    qemu-storage-daemon's vhost-user-blk export of a raw copy of it
#   qsd-qcow2  the same of a qcow2 overlay over the raw data
# Every disk starts as the same SIZE of random data.  One guest boot per
# (system, repetition) runs the six rows of bench/guest/fio.sh in order
# (4 KiB randread/randwrite at iodepth 1 and 32, 1 MiB read/write at 8);
# repetitions interleave the systems.  Guest figures are CPU-bound under
# TCG: compare side by side only.
#
#   bench/vhost_fio.sh --tessera BIN [--out DIR] [--dir PARENT] [--reps N]
#                      [--runtime SEC] [--size 1G] [--only tsr,qsd-raw,qsd-qcow2]
#
# The kernel and base initramfs are tests/vhost/guest_image.sh's (cached);
# fio, its libraries and bench/guest/fio.sh are appended as a second cpio.
# Writes OUT/results.jsonl, OUT/guest-*.log, OUT/meta.txt, OUT/summary.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/bench/lib.sh"
tessera=
out=
parent=/var/tmp
reps=3
runtime=5
size=1G
only=tsr,qsd-raw,qsd-qcow2
while [ $# -gt 0 ]; do
	case "$1" in
	--only) only=$2; shift 2 ;;
	-h|--help) sed -n '3,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) # --tessera, --out, --dir, --reps, --runtime, --size
		common_opt "$@" || { echo "vhost_fio.sh: unknown argument '$1'" >&2; exit 2; }
		shift 2 ;;
	esac
done
[ -n "$tessera" ] || { echo "vhost_fio.sh: --tessera BIN is required" >&2; exit 2; }
tessera=$(realpath "$tessera")
require_tools vhost_fio.sh fio qemu-system-x86_64 qemu-storage-daemon qemu-img busybox python3
out=${out:-$repo/build-bench/vhost-fio}
mkdir -p "$out"
out=$(realpath "$out")
: >"$out/results.jsonl"
: >"$out/commands.txt"
t0=$(date +%s)
log() { echo "[vhost-fio $(( $(date +%s) - t0 ))s] $*" >&2; }

set +e
guest=$("$repo/tests/vhost/guest_image.sh")
rc=$?
set -e
[ $rc = 0 ] || { echo "vhost_fio.sh: no guest image (guest_image.sh exit $rc)"; exit 77; }

S=$(mktemp -d "$parent/tsr-vhostfio.XXXXXX")
pids=()
qemu_pid=
trap teardown EXIT
trap 'exit 130' INT TERM

# ---- initramfs: the cached one + fio ---------------------------------------------
fio_initrd "$S" "$guest/base.cpio" "$repo/bench/guest/fio.sh" fio.sh
log "initrd $(( $(stat -c %s "$S/initrd") / 1048576 )) MiB (kernel and base from $guest)"

# ---- data and backends -----------------------------------------------------------------
cd "$S"
head -c "$size" /dev/urandom >base.raw
cp base.raw raw.img
qemu-img create -q -f qcow2 -b "$S/base.raw" -F raw ov.qcow2
export TESSERA_STORE=$S/store
base_store "$S/store" base.raw
cmdlog "tessera init; tessera volume import base0 base.raw; tessera commit base0 --name base; tessera volume create v --parent base"
cmdlog "qemu-img create -f qcow2 -b base.raw -F raw ov.qcow2; cp base.raw raw.img"

# need_sock PID SOCK LOG: waits for the backend's socket; exit 1 without.
need_sock() {
	local rc=0
	wait_sock "$1" "$2" || rc=$?
	[ $rc = 0 ] && return 0
	cat "$3"
	if [ $rc = 1 ]; then echo "backend exited"; else echo "backend did not start"; fi
	exit 1
}
cmdlog "tessera vhost --volume v --socket tsr.sock --queues 2"
"$tessera" vhost --volume v --socket "$S/tsr.sock" --queues 2 >"$S/tsr.log" 2>&1 &
tpid=$!
pids+=("$tpid")
need_sock "$tpid" "$S/tsr.sock" "$S/tsr.log"
raw_args=(--blockdev driver=file,node-name=f,filename="$S/raw.img"
	--blockdev driver=raw,node-name=r,file=f
	--export type=vhost-user-blk,id=e,node-name=r,addr.type=unix,addr.path="$S/raw.sock",writable=on,num-queues=2)
cmdlog "qemu-storage-daemon ${raw_args[*]}"
qemu-storage-daemon "${raw_args[@]}" >"$S/qraw.log" 2>&1 &
rpid=$!
pids+=("$rpid")
need_sock "$rpid" "$S/raw.sock" "$S/qraw.log"
qc_args=(--blockdev driver=file,node-name=bf,filename="$S/base.raw",read-only=on
	--blockdev driver=raw,node-name=b,file=bf,read-only=on
	--blockdev driver=file,node-name=of,filename="$S/ov.qcow2"
	--blockdev driver=qcow2,node-name=o,file=of,backing=b
	--export type=vhost-user-blk,id=e,node-name=o,addr.type=unix,addr.path="$S/qcow2.sock",writable=on,num-queues=2)
cmdlog "qemu-storage-daemon ${qc_args[*]}"
qemu-storage-daemon "${qc_args[@]}" >"$S/qqcow2.log" 2>&1 &
qpid=$!
pids+=("$qpid")
need_sock "$qpid" "$S/qcow2.sock" "$S/qqcow2.log"

declare -A sock spid
sock[tsr]=$S/tsr.sock;      spid[tsr]=$tpid
sock[qsd-raw]=$S/raw.sock;  spid[qsd-raw]=$rpid
sock[qsd-qcow2]=$S/qcow2.sock; spid[qsd-qcow2]=$qpid
IFS=, read -r -a systems <<<"$only"
rows=(randread-4k-qd1 randread-4k-qd32 randwrite-4k-qd1 randwrite-4k-qd32 read-1m-qd8 write-1m-qd8)
hz=$(getconf CLK_TCK)
qemu_cmd="qemu-system-x86_64 -accel tcg,thread=multi -machine pc -nodefaults -no-user-config -display none -serial stdio -m 512M -smp 2 -no-reboot -object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem -chardev socket,id=c,path=SOCK -device vhost-user-blk-pci,chardev=c,num-queues=2 -kernel vmlinuz -initrd initrd -append 'console=ttyS0 quiet panic=-1 tsr.run=fio tsr.rt=$runtime'"
cmdlog "$qemu_cmd"

# guest SYS REP: one boot, six jobs; samples the backend's CPU time at each
# job's start and end markers (0.1 s polling), then parses the JSON.
guest() {
	local s=$1 rep=$2 glog=$out/guest-$1-$2.log ticks=$S/ticks-$1-$2 load row seen=" " i
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	start_guest "${sock[$s]}" "$guest/vmlinuz" "$S/initrd" \
		"console=ttyS0 quiet panic=-1 tsr.run=fio tsr.rt=$runtime" "$glog"
	: >"$ticks"
	for i in $(seq 3000); do   # 300 s at most
		kill -0 "$qemu_pid" 2>/dev/null || break
		for row in "${rows[@]}"; do
			for m in START END; do
				case $seen in *" $m-$row "*) continue ;; esac
				if grep -q "^TSR-FIO-$m $row" "$glog"; then
					echo "$m $row $(cpu_ticks "${spid[$s]}")" >>"$ticks"
					seen="$seen$m-$row "
				fi
			done
		done
		sleep 0.1
	done
	if kill -0 "$qemu_pid" 2>/dev/null; then
		log "guest $s rep $rep did not finish in 300 s; killed"
		kill -9 "$qemu_pid"
	fi
	wait "$qemu_pid" || true
	qemu_pid=
	python3 - "$glog" "$ticks" "$s" "$rep" "$load" "$hz" >>"$out/results.jsonl" <<'PY'
import json, re, sys
glog, ticks, s, rep, load, hz = sys.argv[1:]
text = open(glog, errors="replace").read()
t = {}
for l in open(ticks):
    m, row, v = l.split()
    t[(m, row)] = int(v)
for m in re.finditer(r"^TSR-FIO-JSON (\S+)\r?\n(.*?)^TSR-FIO-END \1", text, re.S | re.M):
    row, body = m.group(1), m.group(2)
    d = {"system": s, "row": row, "rep": rep, "load_before_boot": load}
    d["load_before"] = load
    try:
        j = json.loads(body[body.index("{"):body.rindex("}") + 1])["jobs"][0]
        io = j["read"] if "read" in row else j["write"]
        d.update(iops=io["iops"], mib_s=io["bw"] / 1024, ios=io["total_ios"],
                 p50_us=io["clat_ns"]["percentile"]["50.000000"] / 1000,
                 p99_us=io["clat_ns"]["percentile"]["99.000000"] / 1000, errors=j.get("error", 0))
        if ("START", row) in t and ("END", row) in t and io["total_ios"]:
            d["daemon_cpu_s"] = (t[("END", row)] - t[("START", row)]) / int(hz)
            d["daemon_cpu_per_io_us"] = d["daemon_cpu_s"] * 1e6 / io["total_ios"]
    except Exception as e:
        d["failed"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(d))
PY
	log "guest $s rep $rep: $(grep -c '^TSR-FIO-END' "$glog") jobs; $(grep -m1 -E '^TSR-(OK|FAIL)' "$glog" || echo 'no TSR-OK')"
}

log "systems: ${systems[*]}; $reps reps; ${runtime}s per job (+1 s ramp)"
for rep in $(seq 1 "$reps"); do
	for s in "${systems[@]}"; do
		guest "$s" "$rep"
	done
done

kill -TERM "$tpid"; wait "$tpid" || log "tessera vhost exited with $?"
{
	host_meta
	echo "kernel (host): $(uname -r); guest kernel: $(basename "$guest")"
	echo "size: $(stat -c %s "$S/base.raw"); runtime: $runtime s + 1 s ramp per job; reps: $reps"
	echo "tessera vhost at exit: $(tail -1 "$S/tsr.log")"
	echo "elapsed: $(( $(date +%s) - t0 )) s"
} >"$out/meta.txt"
python3 "$repo/bench/fio_summary.py" vhost "$out" >"$out/summary.md"
log "done: $out/summary.md"
