#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/fuse_fio.sh: issue 4's FUSE benchmark.  fio (io_uring) on
#   tsr        tessera's FUSE file (`tessera mount`, MNT/volumes/v; v is a
#              child volume of a committed layer of the data), direct=1
#   ptll       libfuse 3.14's passthrough_ll example serving a raw file
#              (reads direct=1; writes buffered: its direct writes fail
#              with EINVAL, see RECIPES.md)
#   qsd        qemu-storage-daemon's FUSE export of a qcow2 overlay over the
#              raw data, direct=1 (QEMU 7.2: concurrent writes corrupt)
#   native     the raw file on the host filesystem, direct=1
# and the same rows on a file in an ext4 on a loop device on
#   tsr-loop   tessera's volume e (losetup --direct-io=on)
#   ptll-loop  passthrough_ll -o cache=never, buffered loop (a dio loop fails)
#   ptll-cloop passthrough_ll (default cache), buffered loop: reads cached
#   qsd-bloop  a second qsd export, buffered loop (correct, serial)
#   qsd-dloop  a third qsd export, direct-io loop (corrupts; marked)
# Every data set starts from the same SIZE of random data.  Rows: 4 KiB
# randread and randwrite at iodepth 1 and 32, 1 MiB read and write at
# iodepth 8; REPS repetitions, every system's run of a row right after the
# others (interleaved), medians.  Then a crc32c verify pass of every write
# row on every system, e2fsck of the ext4s, and a perf profile of the
# tessera daemon on every row.
#
#   bench/fuse_fio.sh --tessera BIN [--out DIR] [--dir PARENT] [--reps N]
#                     [--runtime SEC] [--size 1G] [--no-profile] [--quick]
#                     [--systems tsr,tsr-loop,...]  (timed rows and verify
#                     passes only on these; --reps 0 --systems none: set up,
#                     then only the profiles)  [--rows randwrite-4k-qd1,...]
#
# Writes OUT/results.jsonl (one line per fio run), OUT/verify.txt,
# OUT/profile/*.txt, OUT/commands.txt and OUT/summary.md.  Root only.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/bench/lib.sh"
tessera=
out=
parent=/var/tmp
reps=3
runtime=5
size=1G
profile=1
only_systems=
only_rows=
usage() { sed -n '3,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case "$1" in
	--no-profile) profile=0; shift ;;
	--systems) only_systems=$2; shift 2 ;;
	--rows) only_rows=$2; shift 2 ;;
	--quick) reps=1; runtime=2; size=256M; shift ;;
	-h|--help) usage; exit 0 ;;
	*) # --tessera, --out, --dir, --reps, --runtime, --size
		common_opt "$@" || { echo "fuse_fio.sh: unknown argument '$1'" >&2; exit 2; }
		shift 2 ;;
	esac
done
[ -n "$tessera" ] || { echo "fuse_fio.sh: --tessera BIN is required" >&2; exit 2; }
tessera=$(realpath "$tessera")
[ "$(id -u)" = 0 ] || { echo "fuse_fio.sh: needs root (FUSE, loop)"; exit 77; }
require_tools fuse_fio.sh fio qemu-storage-daemon qemu-img losetup mkfs.ext4 e2fsck gcc pkg-config python3
out=${out:-$repo/build-bench/fuse-fio}
mkdir -p "$out/raw" "$out/profile"
out=$(realpath "$out")
fiodir=$repo/bench/fio

t0=$(date +%s)
log() { echo "[fuse-fio $(( $(date +%s) - t0 ))s] $*" >&2; }

S=$(mktemp -d "$parent/tsr-fusefio.XXXXXX")
pids=()       # daemons, stopped by pid
loops=()      # loop devices
mnts=()       # ext4 mounts
fusemnts=()   # FUSE mountpoints (cleaned if a daemon left one)
perfpid=
trap teardown EXIT
trap 'exit 130' INT TERM

: >"$out/commands.txt"
: >"$out/results.jsonl"
: >"$out/verify.txt"

# ---- data ----------------------------------------------------------------------
log "scratch $S; $size of random data"
cd "$S"
head -c "$size" /dev/urandom >base.raw
bytes=$(stat -c %s base.raw)
sum=$(sha256sum <base.raw | cut -d' ' -f1)
cp base.raw native.raw
mkdir psrc pmnt tmnt ext
cp base.raw psrc/img.raw
cp base.raw psrc/ext.raw
cp base.raw psrc/ext2.raw

# ---- tessera --------------------------------------------------------------------
export TESSERA_STORE=$S/store
base_store "$S/store" base.raw
"$tessera" volume create e --parent base >/dev/null
cmdlog "tessera init; tessera volume import base0 base.raw; tessera commit base0 --name base"
cmdlog "tessera volume create v --parent base; tessera volume create e --parent base"
cmdlog "tessera mount $S/tmnt -f"
"$tessera" mount "$S/tmnt" -f >"$S/tessera.log" 2>&1 &
tpid=$!
pids+=("$tpid")
fusemnts+=("$S/tmnt")
wait_for test -e "$S/tmnt/volumes/v" || { cat "$S/tessera.log"; echo "tessera mount failed"; exit 1; }

# ---- passthrough_ll -------------------------------------------------------------
gcc -O2 -o "$S/ptll" /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c \
	$(pkg-config --cflags --libs fuse3)
cmdlog "gcc -O2 -o ptll /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c \$(pkg-config --cflags --libs fuse3)"
cmdlog "ptll -f -o source=$S/psrc $S/pmnt"
"$S/ptll" -f -o source="$S/psrc" "$S/pmnt" >"$S/ptll.log" 2>&1 &
ppid=$!
pids+=("$ppid")
fusemnts+=("$S/pmnt")
wait_for test -e "$S/pmnt/img.raw" || { cat "$S/ptll.log"; echo "ptll failed"; exit 1; }

# ---- qemu-storage-daemon: three qcow2 overlays over the raw data ---------------
qsd_args=(--blockdev driver=file,node-name=bf,filename="$S/base.raw",read-only=on
	--blockdev driver=raw,node-name=base,file=bf,read-only=on)
for i in 1 2 3; do
	qemu-img create -q -f qcow2 -b "$S/base.raw" -F raw "$S/ov$i.qcow2"
	: >"$S/qfile$i"
	qsd_args+=(--blockdev driver=file,node-name=o${i}f,filename="$S/ov$i.qcow2"
		--blockdev driver=qcow2,node-name=o$i,file=o${i}f,backing=base
		--export type=fuse,id=e$i,node-name=o$i,mountpoint="$S/qfile$i",writable=on)
	fusemnts+=("$S/qfile$i")
done
cmdlog "qemu-img create -f qcow2 -b base.raw -F raw ov{1,2,3}.qcow2"
cmdlog "qemu-storage-daemon ${qsd_args[*]}"
qemu-storage-daemon "${qsd_args[@]}" >"$S/qsd.log" 2>&1 &
qpid=$!
pids+=("$qpid")
for i in 1 2 3; do
	wait_for grep -q " $S/qfile$i fuse" /proc/self/mounts || { cat "$S/qsd.log"; echo "qsd failed"; exit 1; }
done

# ---- the read path returns the data, on every system ------------------------------
for f in "$S/tmnt/volumes/v" "$S/pmnt/img.raw" "$S/qfile1"; do
	got=$(dd if="$f" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
	if [ "$got" = "$sum" ]; then r=ok; else r="MISMATCH"; fi
	echo "initial read-back (dd iflag=direct) of $f: $r" >>"$out/verify.txt"
	log "read-back of $f: $r"
done

# ---- loop + ext4 ------------------------------------------------------------------
# mkext NAME IMAGE DIO: loop device on IMAGE (direct-io DIO), ext4 on it,
# mounted at ext/NAME, a file f of ext_size laid out.  Prints the loop's DIO.
ext_size=$(( bytes / 2 ))
declare -A loopdev loopdio
mkext() {
	local name=$1 img=$2 dio=$3 dev
	dev=$(losetup --direct-io="$dio" -f --show "$img")
	loops+=("$dev")
	loopdev[$name]=$dev
	loopdio[$name]=$(losetup -n -l -O DIO "$dev" | tr -d ' ')
	cmdlog "losetup --direct-io=$dio -f --show $img; mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 DEV; mount DEV ext/$name"
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$dev" >"$S/mkfs.$name.log" 2>&1 || return 1
	if ! e2fsck -fn "$dev" >"$S/fsck0.$name.log" 2>&1; then
		echo "$name: e2fsck -fn right after mkfs.ext4 FAILED: $(grep -v '^e2fsck' "$S/fsck0.$name.log" | head -3 | tr '\n' ' ')" >>"$out/verify.txt"
		return 1
	fi
	mkdir -p "$S/ext/$name"
	mount "$dev" "$S/ext/$name" || return 1
	mnts+=("$S/ext/$name")
	fio --name=layout --filename="$S/ext/$name/f" --size=$ext_size --rw=write --bs=1M \
		--direct=1 --ioengine=io_uring --iodepth=8 >"$S/layout.$name.log" 2>&1 || return 1
	sync
}
loop_systems=()
mkext tsr-loop "$S/tmnt/volumes/e" on && loop_systems+=(tsr-loop)
# passthrough_ll under a loop device.  A direct-io loop opens the FUSE file
# O_DIRECT, ptll then opens its backing file O_DIRECT and splices unaligned
# data into it: writes fail (EINVAL; checked once here).  So two buffered
# loops: ptll-loop on a second ptll with -o cache=never (FOPEN_DIRECT_IO:
# no page cache on the FUSE file, like tessera's volume files; the target's
# reference) and ptll-cloop on the default (cached) ptll, whose reads come
# from the FUSE file's page cache (double caching), for reference.
if mkext ptll-dio-try "$S/pmnt/ext.raw" on; then
	echo "ptll: a direct-io loop worked (mkfs, e2fsck, fio layout); not used in the tables" >>"$out/verify.txt"
	umount "$S/ext/ptll-dio-try"
else
	echo "ptll: a direct-io loop on its file fails: $(cat "$S/mkfs.ptll-dio-try.log" "$S/fsck0.ptll-dio-try.log" "$S/layout.ptll-dio-try.log" 2>/dev/null | grep . | tail -2 | tr '\n' ' ')" >>"$out/verify.txt"
	mountpoint -q "$S/ext/ptll-dio-try" && umount "$S/ext/ptll-dio-try"
fi
losetup -d "${loopdev[ptll-dio-try]}"
mkext ptll-cloop "$S/pmnt/ext.raw" off && loop_systems+=(ptll-cloop)
mkdir "$S/pmnt2"
cmdlog "ptll -f -o source=$S/psrc2,cache=never $S/pmnt2"
mkdir "$S/psrc2"
mv "$S/psrc/ext2.raw" "$S/psrc2/ext2.raw"
"$S/ptll" -f -o source="$S/psrc2",cache=never "$S/pmnt2" >"$S/ptll2.log" 2>&1 &
ppid2=$!
pids+=("$ppid2")
fusemnts+=("$S/pmnt2")
wait_for test -e "$S/pmnt2/ext2.raw" || { cat "$S/ptll2.log"; echo "ptll (cache=never) failed"; exit 1; }
mkext ptll-loop "$S/pmnt2/ext2.raw" off && loop_systems+=(ptll-loop)
mkext qsd-bloop "$S/qfile2" off && loop_systems+=(qsd-bloop)
if mkext qsd-dloop "$S/qfile3" on; then
	loop_systems+=(qsd-dloop)
else
	echo "qsd-dloop: no usable ext4 on a direct-io loop over the qsd FUSE export; its rows are not run" >>"$out/verify.txt"
fi
log "loop systems: ${loop_systems[*]}"

# ---- systems and rows ---------------------------------------------------------------
# system -> file, size, direct for reads, direct for writes, daemon pid
declare -A sfile ssize srd swr spid
add_sys() { sfile[$1]=$2; ssize[$1]=$3; srd[$1]=$4; swr[$1]=$5; spid[$1]=$6; }
add_sys tsr "$S/tmnt/volumes/v" "$bytes" 1 1 "$tpid"
add_sys ptll "$S/pmnt/img.raw" "$bytes" 1 0 "$ppid"
add_sys qsd "$S/qfile1" "$bytes" 1 1 "$qpid"
add_sys native "$S/native.raw" "$bytes" 1 1 ""
systems=(tsr ptll qsd native)
for s in "${loop_systems[@]}"; do
	case $s in
	tsr-loop) p=$tpid ;; ptll-cloop) p=$ppid ;; ptll-loop) p=$ppid2 ;; *) p=$qpid ;;
	esac
	add_sys "$s" "$S/ext/$s/f" "$ext_size" 1 1 "$p"
	systems+=("$s")
done
if [ -n "$only_systems" ]; then
	IFS=, read -r -a want <<<"$only_systems"
	keep=()
	for s in "${systems[@]}"; do
		case ",$only_systems," in *",$s,"*) keep+=("$s") ;; esac
	done
	systems=("${keep[@]}")
fi
# row -> rw bs iodepth
rows=(randread-4k-qd1 randread-4k-qd32 randwrite-4k-qd1 randwrite-4k-qd32 read-1m-qd8 write-1m-qd8)
[ -n "$only_rows" ] && IFS=, read -r -a rows <<<"$only_rows"
declare -A rrw rbs rqd
rrw[randread-4k-qd1]=randread;   rbs[randread-4k-qd1]=4k;  rqd[randread-4k-qd1]=1
rrw[randread-4k-qd32]=randread;  rbs[randread-4k-qd32]=4k; rqd[randread-4k-qd32]=32
rrw[randwrite-4k-qd1]=randwrite; rbs[randwrite-4k-qd1]=4k; rqd[randwrite-4k-qd1]=1
rrw[randwrite-4k-qd32]=randwrite; rbs[randwrite-4k-qd32]=4k; rqd[randwrite-4k-qd32]=32
rrw[read-1m-qd8]=read;           rbs[read-1m-qd8]=1M;      rqd[read-1m-qd8]=8
rrw[write-1m-qd8]=write;         rbs[write-1m-qd8]=1M;     rqd[write-1m-qd8]=8

# run_row SYS ROW REP
run_row() {
	local s=$1 r=$2 rep=$3 direct json load c0 c1 rc=0
	case ${rrw[$r]} in *read) direct=${srd[$s]} ;; *) direct=${swr[$s]} ;; esac
	json=$out/raw/$s.$r.$rep.json
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	c0=$(cpu_ticks "${spid[$s]}")
	FILE=${sfile[$s]} SIZE=${ssize[$s]} RW=${rrw[$r]} BS=${rbs[$r]} QD=${rqd[$r]} \
		DIRECT=$direct RUNTIME=$runtime \
		fio --output-format=json --output="$json" "$fiodir/row.fio" >"$S/fio.err" 2>&1 || rc=$?
	c1=$(cpu_ticks "${spid[$s]}")
	python3 - "$json" "$s" "$r" "$rep" "$direct" "$load" "$(( c1 - c0 ))" "$rc" \
		"$(getconf CLK_TCK)" "$runtime" "$(head -c 300 "$S/fio.err" | tr '\n' ' ')" \
		>>"$out/results.jsonl" <<'PY'
import json, sys
path, s, r, rep, direct, load, ticks, rc, hz, runtime, err = sys.argv[1:]
d = {"system": s, "row": r, "rep": rep, "direct": int(direct), "load_before": load,
     "daemon_cpu_s": int(ticks) / int(hz), "rc": int(rc)}
try:
    j = json.load(open(path))["jobs"][0]
    io = j["read"] if "read" in r else j["write"]
    d.update(iops=io["iops"], mib_s=io["bw"] / 1024, p50_us=io["clat_ns"]["percentile"]["50.000000"] / 1000,
             p99_us=io["clat_ns"]["percentile"]["99.000000"] / 1000, errors=j.get("error", 0),
             fio_usr=j["usr_cpu"], fio_sys=j["sys_cpu"], ios=io["total_ios"])
    d["daemon_cpu_per_io_us"] = (d["daemon_cpu_s"] * 1e6 / io["total_ios"]) if io["total_ios"] else None
except Exception as e:
    d["failed"] = "%s %s" % (type(e).__name__, err)
print(json.dumps(d))
PY
	[ $rc = 0 ] || log "$s $r rep $rep: fio exit $rc: $(head -c 200 "$S/fio.err")"
}
cmdlog "per row: FILE=... SIZE=... RW=... BS=... QD=... DIRECT=... RUNTIME=$runtime fio --output-format=json bench/fio/row.fio"

log "systems: ${systems[*]-}; rows: ${rows[*]}; $reps reps x ${runtime}s (+1 s ramp)"
for rep in $(seq 1 "$reps"); do
	for r in "${rows[@]}"; do
		log "rep $rep $r (load $(cut -d' ' -f1 /proc/loadavg))"
		for s in ${systems[@]+"${systems[@]}"}; do run_row "$s" "$r" "$rep"; done
	done
done

# ---- verify passes --------------------------------------------------------------------
# Every write row once more as write-then-verify (crc32c) over a region:
# 64 MiB for 4 KiB rows, 256 MiB for 1 MiB rows (the ext4 file: a new file v).
cmdlog "verify: FILE=... SIZE=64M|256M RW=randwrite|write BS=4k|1M QD=1|32|8 DIRECT=... fio bench/fio/verify.fio"
log "verify passes"
for s in ${systems[@]+"${systems[@]}"}; do
	for r in randwrite-4k-qd1 randwrite-4k-qd32 write-1m-qd8; do
		f=${sfile[$s]}
		case $s in *loop) f=$(dirname "$f")/v ;; esac
		case ${rbs[$r]} in 4k) vs=64M ;; *) vs=256M ;; esac
		rc=0
		FILE=$f SIZE=$vs RW=${rrw[$r]} BS=${rbs[$r]} QD=${rqd[$r]} DIRECT=${swr[$s]} \
			fio "$fiodir/verify.fio" >"$S/verify.log" 2>&1 || rc=$?
		if [ $rc = 0 ]; then res=clean; else res="FAILED (fio exit $rc: $(grep -m1 -iE 'verify|error|bad' "$S/verify.log" | head -c 160))"; fi
		echo "verify $s $r (size $vs, direct=${swr[$s]}): $res" >>"$out/verify.txt"
		log "verify $s $r: $res"
	done
done

# ---- profiles of the tessera daemon ---------------------------------------------------
if [ $profile = 1 ] && command -v perf >/dev/null; then
	log "profiling the tessera daemon"
	for s in tsr tsr-loop; do
		[ -n "${sfile[$s]:-}" ] || continue
		for r in "${rows[@]}"; do
			perf record -F 2000 -p "$tpid" -o "$S/perf.data" -- sleep $(( runtime + 1 )) >/dev/null 2>&1 &
			perfpid=$!
			run_row "$s" "$r" profile >/dev/null
			wait "$perfpid" || true
			perfpid=
			{
				echo "# $s $r: perf record -F 2000 -p TESSERA_PID, $(( runtime + 1 )) s"
				# (head closes the pipe early: no pipefail/errexit here)
				perf report -i "$S/perf.data" --stdio --no-children --sort comm,dso,sym 2>/dev/null |
					grep -v '^#' | grep -v '^$' | head -40 || true
			} >"$out/profile/$s.$r.txt"
		done
	done
fi

# ---- the ext4s are clean ---------------------------------------------------------------
for s in "${loop_systems[@]}"; do
	umount "$S/ext/$s"
	if e2fsck -fn "${loopdev[$s]}" >"$S/fsck.log" 2>&1; then res=clean; else res="NOT CLEAN: $(sed -n 2,4p "$S/fsck.log" | tr '\n' ' ')"; fi
	echo "e2fsck -fn of $s's ext4 after the run (loop dio=${loopdio[$s]}): $res" >>"$out/verify.txt"
done
mnts=()

{
	host_meta
	echo "kernel: $(uname -r)"
	echo "scratch fs: $(findmnt -no FSTYPE,SOURCE,OPTIONS -T "$S" | head -1)"
	echo "size: $bytes; ext4 file: $ext_size; runtime: $runtime s + 1 s ramp; reps: $reps"
	for s in "${loop_systems[@]}"; do echo "loop $s: dio=${loopdio[$s]}"; done
	echo "elapsed: $(( $(date +%s) - t0 )) s"
} >"$out/meta.txt"
python3 "$repo/bench/fio_summary.py" fuse "$out" >"$out/summary.md"
log "done: $out/summary.md"
