#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/fio_suite.sh: the fio suite of bench/run (issue 8).  Sets up every
# system under test, runs the same fio jobs (bench/fio/jobs.tsv) on each,
# job by job (every system's run of a job beside the others'), then a
# verify pass on each writable system and the first-write sweep; records
# the store space after every job and a perf profile of the tessera process
# during every tessera job.  Tears everything down by pid, even on failure.
#
#   bench/fio_suite.sh --tessera CLI --out DIR [--engine SO] [--helper FSYNC_WRITE]
#       [--systems LIST] [--quick] [--size 1G] [--runtime SEC] [--ramp SEC]
#       [--reps N] [--fw-sizes 1M,16M,256M,1G] [--fw-rounds N] [--dir PARENT]
#       [--no-profile]
#
# Systems (--systems, default all):
#   tsr-fuse        `tessera mount`: MNT/volumes/v, a child volume of a
#                   committed layer of the data (direct=1)
#   tsr-loop        ext4 on a direct-io loop device on a tessera volume file
#   tsr-engine      fio's external engine libtessera-fio.so on a volume (no
#                   FUSE, no kernel); iodepth > 1 runs on the engine's worker
#                   threads (bench/fio_engine/README.md)
#   tsr-vhost       `tessera vhost`, fio in a QEMU guest (TCG) on /dev/vda
#   overlay         the data file in an overlayfs mount whose lower holds it
#   ptll            libfuse's passthrough_ll example (the FUSE limit); its
#                   direct writes fail upstream (EINVAL): writes are buffered
#   qsd-fuse-raw    qemu-storage-daemon FUSE export of a raw copy
#   qsd-fuse-qcow2  the same of a qcow2 overlay over the raw data
#   qsd-vhost-raw   qemu-storage-daemon vhost-user-blk export (guest) of raw
#   qsd-vhost-qcow2 the same of a qcow2 overlay
#   native          the raw file itself (the machine's limit)
#   native-loop     ext4 on a direct-io loop device on a native file
#
# --tessera-cache SIZE: the chunk cache of tessera's daemons (tessera
# --cache) and of the fio engine (cache=); default 2G in the full run, the
# library's 256M in --quick.
#
# Writes OUT/fio.jsonl (one line per fio run, verify pass and space
# sample), OUT/fw.jsonl (first-write sweep), OUT/profile/*.txt,
# OUT/systems.json (what each system is), OUT/commands.txt, OUT/logs/.
# Exit 77 when not root or fio is missing; systems whose tools are missing
# are recorded as skipped.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/bench/lib.sh"
ALL_SYSTEMS=tsr-fuse,tsr-loop,tsr-engine,tsr-vhost,overlay,ptll,qsd-fuse-raw,qsd-fuse-qcow2,qsd-vhost-raw,qsd-vhost-qcow2,native,native-loop
tessera= engine= helper= out= parent=/var/tmp
systems_arg=$ALL_SYSTEMS
quick=0 size= runtime= ramp= reps=1 fw_sizes= fw_rounds= profile=1 tcache=
while [ $# -gt 0 ]; do
	case "$1" in
	--engine) engine=$2; shift 2 ;;
	--helper) helper=$2; shift 2 ;;
	--systems) systems_arg=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	--ramp) ramp=$2; shift 2 ;;
	--fw-sizes) fw_sizes=$2; shift 2 ;;
	--fw-rounds) fw_rounds=$2; shift 2 ;;
	--no-profile) profile=0; shift ;;
	--tessera-cache) tcache=$2; shift 2 ;;
	-h|--help) sed -n '3,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) # --tessera, --out, --dir, --reps, --runtime, --size
		common_opt "$@" || { echo "fio_suite.sh: unknown argument '$1'" >&2; exit 2; }
		shift 2 ;;
	esac
done
if [ $quick = 1 ]; then
	size=${size:-128M}; runtime=${runtime:-1}; ramp=${ramp:-0}
	fw_sizes=${fw_sizes:-1M,16M,64M}; fw_rounds=${fw_rounds:-3}; vsize=16M
else
	size=${size:-1G}; runtime=${runtime:-10}; ramp=${ramp:-1}
	# The daemons' cache of verified chunks holds the data set, as the
	# host page cache does for every other system (tessera --cache).
	tcache=${tcache:-2G}
	fw_sizes=${fw_sizes:-1M,16M,256M,1G}; fw_rounds=${fw_rounds:-5}; vsize=128M
fi
[ -n "$tessera" ] && [ -n "$out" ] || { echo "fio_suite.sh: --tessera and --out are required" >&2; exit 2; }
tessera=$(realpath "$tessera")
[ -n "$engine" ] && engine=$(realpath "$engine")
[ -n "$helper" ] && helper=$(realpath "$helper")
[ "$(id -u)" = 0 ] || { echo "fio_suite.sh: SKIP: needs root (FUSE, loop, overlayfs mounts)" >&2; exit 77; }
command -v fio >/dev/null || { echo "fio_suite.sh: SKIP: fio is not installed" >&2; exit 77; }
for t in jq python3; do command -v $t >/dev/null || { echo "fio_suite.sh: $t is required" >&2; exit 2; }; done

mkdir -p "$out/profile" "$out/logs" "$out/raw"
out=$(realpath "$out")
: >"$out/fio.jsonl"
: >"$out/fw.jsonl"
: >"$out/commands.txt"
: >"$out/skipped.txt"
t0=$(date +%s)
log() { echo "[fio-suite $(( $(date +%s) - t0 ))s] $*" >&2; }
hz=$(getconf CLK_TCK)
ncpu=$(nproc)

# ---- which systems can run here ----------------------------------------------------
IFS=, read -r -a req <<<"$systems_arg"
declare -A want
skip_sys() { echo "$1	$2" >>"$out/skipped.txt"; log "$1: skipped: $2"; }
have() { command -v "$1" >/dev/null; }
guest_dir=
for s in "${req[@]}"; do
	case ",$ALL_SYSTEMS," in *",$s,"*) ;; *) echo "fio_suite.sh: unknown system '$s'" >&2; exit 2 ;; esac
	miss=
	case $s in
	tsr-loop|native-loop) for t in losetup mkfs.ext4; do have $t || miss="$miss $t"; done ;;
	tsr-engine) { [ -n "$engine" ] && [ -f "$engine" ]; } || miss=" libtessera-fio.so (configure with -DTESSERA_FIO_ENGINE=ON)" ;;
	ptll) have gcc && have pkg-config && [ -f /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c ] ||
		miss=" gcc/pkg-config/libfuse3-dev's passthrough_ll.c" ;;
	qsd-fuse-*) for t in qemu-storage-daemon qemu-img; do have $t || miss="$miss $t"; done ;;
	overlay) grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || miss=" overlayfs" ;;
	esac
	case $s in
	*-vhost*)
		for t in qemu-system-x86_64 qemu-storage-daemon qemu-img busybox; do have $t || miss="$miss $t"; done
		if [ -z "$miss" ] && [ -z "$guest_dir" ]; then
			set +e; guest_dir=$("$repo/tests/vhost/guest_image.sh" 2>"$out/logs/guest_image.log"); grc=$?; set -e
			[ $grc = 0 ] || { guest_dir=; }
		fi
		[ -n "$miss" ] || [ -n "$guest_dir" ] || miss=" a guest image (tests/vhost/guest_image.sh: $(tail -1 "$out/logs/guest_image.log"))"
		;;
	esac
	if [ -n "$miss" ]; then skip_sys "$s" "missing:$miss"; else want[$s]=1; fi
done
wants() { [ -n "${want[$1]:-}" ]; }
if [ -z "$helper" ] || [ ! -x "$helper" ]; then
	helper=
	log "no fsync_write helper (--helper): the first-write sweep is skipped"
fi

# ---- scratch, teardown ---------------------------------------------------------------
S=$(mktemp -d "$parent/tsr-fiosuite.XXXXXX")
pids=()       # daemons, stopped by pid (TERM, then KILL)
loops=()      # loop devices
mnts=()       # ext4 and overlay mounts
fusemnts=()   # FUSE mountpoints a daemon may have left behind
perfpid=
qemu_pid=
trap teardown EXIT
trap 'exit 130' INT TERM

du_b() { du -s -B1 "$@" 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
to_bytes() {
	local v=$1 n
	n=${v%[KkMmGg]}
	case ${v#"$n"} in '') echo "$n" ;; [Kk]) echo $((n << 10)) ;; [Mm]) echo $((n << 20)) ;; [Gg]) echo $((n << 30)) ;; esac
}

# ---- data ------------------------------------------------------------------------------
cd "$S"
bytes=$(to_bytes "$size")
log "scratch $S; $size of random data; systems: ${!want[*]}"
head -c "$bytes" /dev/urandom >base.raw
ext_size=$(( bytes / 2 ))

# A system: file, fio size, direct for reads / writes, the process to profile
# (tessera) or measure (daemon CPU), what its space is (paths for du).
declare -A sfile ssize srd swr spid sspace sdesc
add_sys() { sfile[$1]=$2; ssize[$1]=$3; srd[$1]=$4; swr[$1]=$5; spid[$1]=$6; sspace[$1]=$7; }

# ---- tessera stores: one per tessera system (a store is open in one process) ---------
T() { "$tessera" --store "$1" "${@:2}"; }
if wants tsr-fuse || wants tsr-loop || wants tsr-engine || wants tsr-vhost; then
	log "tessera: import + commit of the data"
	base_store "$S/store" base.raw
	cmdlog "tessera init; tessera volume import base0 base.raw; tessera commit base0 --name base; tessera volume create v --parent base"
	for s in tsr-fuse tsr-loop tsr-engine tsr-vhost; do
		wants $s && cp -a --sparse=always "$S/store" "$S/store-$s"
	done
	cmdlog "cp -a store store-SYSTEM (one copy per tessera system)"
fi
# tessera_mount STORE MNT LOGNAME: prints the daemon's pid.
tessera_mount() {
	mkdir -p "$2"
	cmdlog "tessera --store $1 mount $2 -f"
	"$tessera" --store "$1" ${tcache:+--cache "$tcache"} mount "$2" -f >"$out/logs/$3.log" 2>&1 &
	echo $!
}
if wants tsr-fuse; then
	p=$(tessera_mount "$S/store-tsr-fuse" "$S/tmnt" tessera-mount); pids+=("$p"); fusemnts+=("$S/tmnt")
	wait_for test -e "$S/tmnt/volumes/v" || { cat "$out/logs/tessera-mount.log" >&2; echo "fio_suite.sh: tessera mount failed" >&2; exit 1; }
	add_sys tsr-fuse "$S/tmnt/volumes/v" "$bytes" 1 1 "$p" "$S/store-tsr-fuse"
fi

# mkext NAME IMAGE PID SPACE: ext4 on a direct-io loop device on IMAGE, a file
# f of ext_size laid out.
mkext() {
	local name=$1 img=$2 dev
	dev=$(losetup --direct-io=on -f --show "$img") || return 1
	loops+=("$dev")
	cmdlog "losetup --direct-io=on -f --show $img; mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 DEV; mount DEV ext/$name"
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$dev" >"$out/logs/mkfs.$name.log" 2>&1 || return 1
	mkdir -p "$S/ext/$name"
	mount "$dev" "$S/ext/$name" || return 1
	mnts+=("$S/ext/$name")
	fio --name=layout --filename="$S/ext/$name/f" --size=$ext_size --rw=write --bs=1M \
		--direct=1 --ioengine=io_uring --iodepth=8 >"$out/logs/layout.$name.log" 2>&1 || return 1
	sync
	add_sys "$name" "$S/ext/$name/f" "$ext_size" 1 1 "$3" "$4"
}
if wants tsr-loop; then
	p=$(tessera_mount "$S/store-tsr-loop" "$S/tmnt-loop" tessera-mount-loop); pids+=("$p"); fusemnts+=("$S/tmnt-loop")
	wait_for test -e "$S/tmnt-loop/volumes/v" || { cat "$out/logs/tessera-mount-loop.log" >&2; exit 1; }
	mkext tsr-loop "$S/tmnt-loop/volumes/v" "$p" "$S/store-tsr-loop" || { unset 'want[tsr-loop]'; skip_sys tsr-loop "loop/mkfs/mount failed (logs/mkfs.tsr-loop.log)"; }
fi
if wants native-loop; then
	truncate -s "$bytes" "$S/native-loop.img"
	mkext native-loop "$S/native-loop.img" "" "$S/native-loop.img" || { unset 'want[native-loop]'; skip_sys native-loop "loop/mkfs/mount failed"; }
fi
if wants tsr-engine; then
	add_sys tsr-engine v "$bytes" 1 1 "" "$S/store-tsr-engine"
fi
if wants native; then
	cp base.raw native.raw
	add_sys native "$S/native.raw" "$bytes" 1 1 "" "$S/native.raw"
fi
if wants overlay; then
	mkdir -p lower upper work merged
	ln base.raw lower/data.raw
	cmdlog "mount -t overlay overlay -o lowerdir=lower,upperdir=upper,workdir=work merged  (lower/data.raw = the data)"
	mount -t overlay overlay -o "lowerdir=$S/lower,upperdir=$S/upper,workdir=$S/work" "$S/merged"
	mnts+=("$S/merged")
	add_sys overlay "$S/merged/data.raw" "$bytes" 1 1 "" "$S/upper"
fi
if wants ptll; then
	gcc -O2 -o "$S/ptll" /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c \
		$(pkg-config --cflags --libs fuse3) 2>"$out/logs/ptll-build.log"
	mkdir -p psrc pmnt
	cp base.raw psrc/img.raw
	cmdlog "gcc -O2 -o ptll /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c \$(pkg-config --cflags --libs fuse3); ptll -f -o source=psrc pmnt"
	"$S/ptll" -f -o source="$S/psrc" "$S/pmnt" >"$out/logs/ptll.log" 2>&1 &
	p=$!; pids+=("$p"); fusemnts+=("$S/pmnt")
	wait_for test -e "$S/pmnt/img.raw" || { cat "$out/logs/ptll.log" >&2; exit 1; }
	# Reads direct=1; writes buffered (its direct writes fail with EINVAL).
	add_sys ptll "$S/pmnt/img.raw" "$bytes" 1 0 "$p" "$S/psrc/img.raw"
fi
if wants qsd-fuse-raw || wants qsd-fuse-qcow2; then
	qargs=(--blockdev driver=file,node-name=bf,filename="$S/base.raw",read-only=on
		--blockdev driver=raw,node-name=base,file=bf,read-only=on)
	if wants qsd-fuse-raw; then
		cp base.raw qfraw.img; : >qfile-raw
		qargs+=(--blockdev driver=file,node-name=rf,filename="$S/qfraw.img"
			--blockdev driver=raw,node-name=r,file=rf
			--export type=fuse,id=er,node-name=r,mountpoint="$S/qfile-raw",writable=on)
		fusemnts+=("$S/qfile-raw")
	fi
	if wants qsd-fuse-qcow2; then
		qemu-img create -q -f qcow2 -b "$S/base.raw" -F raw "$S/qfov.qcow2"; : >qfile-qcow2
		qargs+=(--blockdev driver=file,node-name=of,filename="$S/qfov.qcow2"
			--blockdev driver=qcow2,node-name=o,file=of,backing=base
			--export type=fuse,id=eo,node-name=o,mountpoint="$S/qfile-qcow2",writable=on)
		fusemnts+=("$S/qfile-qcow2")
	fi
	cmdlog "qemu-img create -f qcow2 -b base.raw -F raw qfov.qcow2; qemu-storage-daemon ${qargs[*]}"
	qemu-storage-daemon "${qargs[@]}" >"$out/logs/qsd-fuse.log" 2>&1 &
	p=$!; pids+=("$p")
	for k in raw qcow2; do
		wants qsd-fuse-$k || continue
		wait_for grep -q " $S/qfile-$k fuse" /proc/self/mounts || { cat "$out/logs/qsd-fuse.log" >&2; exit 1; }
	done
	wants qsd-fuse-raw && add_sys qsd-fuse-raw "$S/qfile-raw" "$bytes" 1 1 "$p" "$S/qfraw.img"
	wants qsd-fuse-qcow2 && add_sys qsd-fuse-qcow2 "$S/qfile-qcow2" "$bytes" 1 1 "$p" "$S/qfov.qcow2"
fi

host_order=(tsr-fuse tsr-engine overlay ptll qsd-fuse-raw qsd-fuse-qcow2 native tsr-loop native-loop)
host_sys=()
for s in "${host_order[@]}"; do wants $s && host_sys+=("$s"); done
guest_sys=()
for s in tsr-vhost qsd-vhost-raw qsd-vhost-qcow2; do wants $s && guest_sys+=("$s"); done

python3 - "$out/systems.json" "$bytes" "$ext_size" "$runtime" "$ramp" "$reps" "$quick" "$vsize" \
	"${host_sys[*]-}" "${guest_sys[*]-}" <<'PY'
import json, sys
path, b, e, rt, ramp, reps, quick, vsize, hs, gs = sys.argv[1:]
json.dump({"size": int(b), "ext_file_size": int(e), "runtime_s": float(rt), "ramp_s": float(ramp),
           "reps": int(reps), "quick": quick == "1", "verify_size": vsize,
           "host_systems": hs.split(), "guest_systems": gs.split()}, open(path, "w"))
PY

# ---- jobs ---------------------------------------------------------------------------------
jobs=()
declare -A jrw jbs jqd jmix
while read -r name rw bs qd mix metric; do
	case $name in ''|'#'*) continue ;; esac
	jobs+=("$name"); jrw[$name]=$rw; jbs[$name]=$bs; jqd[$name]=$qd; jmix[$name]=$mix
done <"$repo/bench/fio/jobs.tsv"

# fio_args SYS JOB [FILE SIZE NUMJOBS]: sets args, the fio command line of
# one run (without output options); FILE, SIZE, NUMJOBS override the system's.
fio_args() {
	local s=$1 j=$2 direct qd=${jqd[$2]} file=${3:-${sfile[$1]}} fsize=${4:-${ssize[$1]}}
	case ${jrw[$j]} in *read) direct=${srd[$s]} ;; *) direct=${swr[$s]} ;; esac
	args=(--name="$j" --rw="${jrw[$j]}" --bs="${jbs[$j]}" --randrepeat=0 --group_reporting=1)
	[ "${jmix[$j]}" = - ] || args+=(--rwmixread="${jmix[$j]}")
	if [ "$s" = tsr-engine ]; then
		args=(--ioengine=external:"$engine" --store="$S/store-tsr-engine" --volume=v --filename=v
			--thread=1 --numjobs="${5:-1}" --iodepth="$qd" ${tcache:+--cache="$tcache"} "${args[@]}")
		[ -n "${4:-}" ] && args+=(--size="$fsize")
	else
		args=(--ioengine=io_uring --filename="$file" --size="$fsize" --direct="$direct"
			--iodepth="$qd" "${args[@]}")
	fi
	return 0
}

# run_job SYS JOB REP: one timed run; profile the tessera process meanwhile.
run_job() {
	local s=$1 j=$2 rep=$3 json c0 c1 rc=0 load pfile= direct
	json=$out/raw/$s.$j.$rep.json
	fio_args "$s" "$j"
	args+=(--time_based=1 --runtime="$runtime" --ramp_time="$ramp" --output-format=json --output="$json")
	[ "$rep" = 1 ] && cmdlog "$s $j: fio ${args[*]}"
	load=$(cut -d' ' -f1 /proc/loadavg)
	c0=$(cpu_ticks "${spid[$s]}")
	if [ $profile = 1 ] && [ "$rep" = 1 ] && [[ $s == tsr-* ]] && command -v perf >/dev/null; then
		pfile=$S/perf.$s.$j.data
		if [ "$s" = tsr-engine ]; then
			perf record -F 499 -g -o "$pfile" -- fio "${args[@]}" >"$S/fio.err" 2>&1 || rc=$?
		else
			perf record -F 499 -g -p "${spid[$s]}" -o "$pfile" >"$S/perf.err" 2>&1 &
			perfpid=$!
			fio "${args[@]}" >"$S/fio.err" 2>&1 || rc=$?
			kill -INT "$perfpid" 2>/dev/null; wait "$perfpid" 2>/dev/null || true
			perfpid=
		fi
		profile_report "$pfile" "$out/profile/$s.$j.txt" "$s $j"
	else
		fio "${args[@]}" >"$S/fio.err" 2>&1 || rc=$?
	fi
	c1=$(cpu_ticks "${spid[$s]}")
	case ${jrw[$j]} in *read) direct=${srd[$s]} ;; *) direct=${swr[$s]} ;; esac
	python3 "$repo/bench/fio_parse.py" host "$json" kind=job system="$s" job="$j" rep="$rep" \
		rc=$rc load_before="$load" direct="$direct" daemon_cpu_s="$(awk -v a="$c0" -v b="$c1" -v h="$hz" 'BEGIN {print (b - a) / h}')" \
		store_bytes="$(du_b ${sspace[$s]})" err="$(head -c 200 "$S/fio.err" | tr '\n\t"' '   ')" >>"$out/fio.jsonl"
	[ $rc = 0 ] || log "$s $j: fio exit $rc: $(head -c 200 "$S/fio.err")"
}
# profile_report DATA TXT TITLE: the top of perf report (self time, by dso,sym).
profile_report() {
	[ -s "$1" ] || return 0
	{
		echo "# $3: perf record -F 499 -g; perf report --no-children --sort dso,sym"
		perf report -i "$1" --stdio --no-children --sort dso,sym -g none 2>/dev/null >"$1.txt" || true
		grep -m1 '^# Samples' "$1.txt" || true
		grep -v '^#' "$1.txt" | grep -v '^$' | head -15 || true
	} >"$2"
	rm -f "$1" "$1.txt"
}

space_sample() { # SYS: a "space" line (before any job)
	jq -cn --arg s "$1" --argjson b "$(du_b ${sspace[$1]})" '{kind: "space", system: $s, job: "setup", store_bytes: $b, write_bytes: 0}' >>"$out/fio.jsonl"
}
for s in ${host_sys[@]+"${host_sys[@]}"}; do space_sample "$s"; done

log "host systems: ${host_sys[*]-none}; jobs: ${jobs[*]}; $reps rep(s) x ${runtime}s (+${ramp}s ramp)"
for rep in $(seq 1 "$reps"); do
	for j in "${jobs[@]}"; do
		[ ${#host_sys[@]} -gt 0 ] || break
		log "rep $rep $j (load $(cut -d' ' -f1 /proc/loadavg))"
		for s in "${host_sys[@]}"; do run_job "$s" "$j" "$rep"; done
	done
done

# ---- verify pass on every writable system --------------------------------------------------
# randwrite 4 KiB at iodepth 32 over VSIZE (the concurrent case), crc32c,
# verify_fatal; ext4 systems: a new file v.
for s in ${host_sys[@]+"${host_sys[@]}"}; do
	f=${sfile[$s]}
	case $s in *-loop) f=$(dirname "$f")/v ;; esac
	# one job for the engine too: two threads would overwrite each other's blocks
	fio_args "$s" randwrite-4k-qd32 "$f" "$vsize" 1
	args+=(--verify=crc32c --verify_fatal=1 --do_verify=1 --output-format=json --output="$out/raw/$s.verify.json")
	cmdlog "$s verify: fio ${args[*]}"
	rc=0
	fio "${args[@]}" >"$S/verify.err" 2>&1 || rc=$?
	if [ $rc = 0 ]; then v=pass; msg=; else v=fail; msg=$(grep -h -m2 -iE 'verify|bad|error' "$S/verify.err" "$out/raw/$s.verify.json" 2>/dev/null | head -c 300 | tr '\n\t"' '   '); fi
	python3 "$repo/bench/fio_parse.py" host "$out/raw/$s.verify.json" kind=verify system="$s" job=verify rep=1 rc=$rc \
		verify=$v verify_msg="$msg" store_bytes="$(du_b ${sspace[$s]})" >>"$out/fio.jsonl"
	log "verify $s: $v${msg:+ ($msg)}"
done

# ---- vhost-user-blk systems: one guest boot per system ----------------------------------------
if [ ${#guest_sys[@]} -gt 0 ]; then
	fio_initrd "$S" "$guest_dir/base.cpio" "$repo/bench/fio/guest.sh" suite.sh "$repo/bench/fio/jobs.tsv" jobs.tsv
	need_sock() { # PID SOCK LOG: waits for a backend's socket; exit 1 without
		wait_sock "$1" "$2" && return 0
		cat "$3" >&2; echo "fio_suite.sh: a vhost backend did not start" >&2; exit 1
	}
	declare -A sock
	if wants tsr-vhost; then
		cmdlog "tessera --store store-tsr-vhost vhost --volume v --socket tsr.sock --queues 2"
		"$tessera" --store "$S/store-tsr-vhost" ${tcache:+--cache "$tcache"} vhost --volume v --socket "$S/tsr.sock" --queues 2 >"$out/logs/tessera-vhost.log" 2>&1 &
		p=$!; pids+=("$p")
		need_sock "$p" "$S/tsr.sock" "$out/logs/tessera-vhost.log"
		sock[tsr-vhost]=$S/tsr.sock; spid[tsr-vhost]=$p; sspace[tsr-vhost]=$S/store-tsr-vhost
	fi
	if wants qsd-vhost-raw || wants qsd-vhost-qcow2; then
		vargs=(--blockdev driver=file,node-name=bf,filename="$S/base.raw",read-only=on
			--blockdev driver=raw,node-name=base,file=bf,read-only=on)
		if wants qsd-vhost-raw; then
			cp base.raw vraw.img
			vargs+=(--blockdev driver=file,node-name=rf,filename="$S/vraw.img"
				--blockdev driver=raw,node-name=r,file=rf
				--export type=vhost-user-blk,id=er,node-name=r,addr.type=unix,addr.path="$S/vraw.sock",writable=on,num-queues=2)
		fi
		if wants qsd-vhost-qcow2; then
			qemu-img create -q -f qcow2 -b "$S/base.raw" -F raw "$S/vov.qcow2"
			vargs+=(--blockdev driver=file,node-name=of,filename="$S/vov.qcow2"
				--blockdev driver=qcow2,node-name=o,file=of,backing=base
				--export type=vhost-user-blk,id=eo,node-name=o,addr.type=unix,addr.path="$S/vqcow2.sock",writable=on,num-queues=2)
		fi
		cmdlog "qemu-img create -f qcow2 -b base.raw -F raw vov.qcow2; qemu-storage-daemon ${vargs[*]}"
		qemu-storage-daemon "${vargs[@]}" >"$out/logs/qsd-vhost.log" 2>&1 &
		p=$!; pids+=("$p")
		if wants qsd-vhost-raw; then need_sock "$p" "$S/vraw.sock" "$out/logs/qsd-vhost.log"; sock[qsd-vhost-raw]=$S/vraw.sock; spid[qsd-vhost-raw]=$p; sspace[qsd-vhost-raw]=$S/vraw.img; fi
		if wants qsd-vhost-qcow2; then need_sock "$p" "$S/vqcow2.sock" "$out/logs/qsd-vhost.log"; sock[qsd-vhost-qcow2]=$S/vqcow2.sock; spid[qsd-vhost-qcow2]=$p; sspace[qsd-vhost-qcow2]=$S/vov.qcow2; fi
	fi
	cmdlog "guest: qemu-system-x86_64 -accel tcg,thread=multi -machine pc -m 512M -smp 2 -object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem -chardev socket,id=c,path=SOCK -device vhost-user-blk-pci,chardev=c,num-queues=2 -kernel vmlinuz -initrd initrd -append 'console=ttyS0 quiet panic=-1 tsr.run=suite tsr.rt=$runtime tsr.ramp=$ramp tsr.vsize=$vsize'; inside: bench/fio/guest.sh"
	guest_limit=$(( 120 + ${#jobs[@]} * (runtime + ${ramp%.*} + 15) ))
	for s in "${guest_sys[@]}"; do space_sample "$s"; done
	for rep in $(seq 1 "$reps"); do
		for s in "${guest_sys[@]}"; do
			glog=$out/logs/guest-$s-$rep.log marks=$S/marks-$s-$rep seen=" " load= c_start=0
			load=$(cut -d' ' -f1 /proc/loadavg)
			log "guest $s rep $rep (load $load)"
			start_guest "${sock[$s]}" "$guest_dir/vmlinuz" "$S/initrd" \
				"console=ttyS0 quiet panic=-1 tsr.run=suite tsr.rt=$runtime tsr.ramp=$ramp tsr.vsize=$vsize" "$glog"
			: >"$marks"
			t_g=$(date +%s)
			while kill -0 "$qemu_pid" 2>/dev/null; do
				if [ $(( $(date +%s) - t_g )) -gt $guest_limit ]; then
					log "guest $s did not finish in ${guest_limit}s: killed"
					kill -9 "$qemu_pid"; break
				fi
				for j in "${jobs[@]}" verify; do
					for m in START END; do
						case $seen in *" $m-$j "*) continue ;; esac
						grep -q "^TSR-FIO-$m $j" "$glog" || continue
						seen="$seen$m-$j "
						if [ $m = START ]; then
							c_start=$(cpu_ticks "${spid[$s]}")
							if [ $profile = 1 ] && [ "$rep" = 1 ] && [ $s = tsr-vhost ] && [ $j != verify ] && command -v perf >/dev/null; then
								perf record -F 499 -g -p "${spid[$s]}" -o "$S/perf.$s.$j.data" >"$S/perf.err" 2>&1 &
								perfpid=$!
							fi
						else
							if [ -n "$perfpid" ]; then
								kill -INT "$perfpid" 2>/dev/null; wait "$perfpid" 2>/dev/null || true
								perfpid=
								profile_report "$S/perf.$s.$j.data" "$out/profile/$s.$j.txt" "$s $j (guest)"
							fi
							echo "END $j $(du_b ${sspace[$s]}) $(cpu_ticks "${spid[$s]}") $c_start" >>"$marks"
						fi
					done
				done
				sleep 0.1
			done
			wait "$qemu_pid" 2>/dev/null || true
			qemu_pid=
			if [ -n "$perfpid" ]; then kill -INT "$perfpid" 2>/dev/null; wait "$perfpid" 2>/dev/null || true; perfpid=; fi
			python3 "$repo/bench/fio_parse.py" guest "$glog" "$marks" kind=job system="$s" rep="$rep" \
				rc=0 load_before="$load" direct=1 >"$S/guest.jsonl" || true
			# the verify line is kind "verify", only once
			python3 - "$S/guest.jsonl" "$rep" >>"$out/fio.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d["job"] == "verify":
        if sys.argv[2] != "1":
            continue
        d["kind"] = "verify"
    if "daemon_cpu_ticks" in d:
        import os
        d["daemon_cpu_s"] = d.pop("daemon_cpu_ticks") / os.sysconf("SC_CLK_TCK")
    print(json.dumps(d))
PY
			log "guest $s: $(grep -c '^TSR-FIO-END' "$glog") jobs; $(grep -m1 -E '^TSR-FIO-VERIFY' "$glog" || echo 'no verify verdict'); $(grep -m1 -E '^TSR-(OK|FAIL)' "$glog" || echo 'no TSR-OK')"
		done
	done
fi

# ---- first write with fsync against inherited-file size -----------------------------------------
# tessera: a store with one committed layer per size and a child volume of
# each, served by `tessera mount`; each round = fsync_write (open O_WRONLY +
# pwrite 4 KiB + fsync, timed in-process) into a chunk the volume never
# wrote.  overlayfs: bench/overlay_copyup.sh (fresh upper dir per round).
if [ -n "$helper" ] && { wants tsr-fuse || wants overlay; }; then
	IFS=, read -r -a fws <<<"$fw_sizes"
	if wants tsr-fuse; then
		log "first write: tessera FUSE, sizes $fw_sizes, $fw_rounds rounds"
		T "$S/store-fw" init >/dev/null
		for z in "${fws[@]}"; do
			zb=$(to_bytes "$z")
			if [ "$zb" = "$bytes" ]; then
				T "$S/store-fw" volume import "l$z" base.raw >/dev/null
			else
				head -c "$zb" /dev/urandom >"$S/fw.raw"
				T "$S/store-fw" volume import "l$z" "$S/fw.raw" >/dev/null
				rm -f "$S/fw.raw"
			fi
			T "$S/store-fw" commit "l$z" --name "layer-$z" >/dev/null
			T "$S/store-fw" volume create "fw-$z" --parent "layer-$z" >/dev/null
		done
		cmdlog "first write: per size Z: tessera volume import lZ (Z random bytes); commit lZ --name layer-Z; volume create fw-Z --parent layer-Z; tessera mount; fsync_write MNT/volumes/fw-Z OFFSET (a chunk never written)"
		p=$(tessera_mount "$S/store-fw" "$S/tmnt-fw" tessera-mount-fw); pids+=("$p"); fusemnts+=("$S/tmnt-fw")
		wait_for test -e "$S/tmnt-fw/volumes/fw-${fws[0]}" || { cat "$out/logs/tessera-mount-fw.log" >&2; exit 1; }
		for z in "${fws[@]}"; do
			zb=$(to_bytes "$z")
			chunks=$(( zb / 65536 ))
			for r in $(seq 1 "$fw_rounds"); do
				# round r: chunk (r-1) * chunks / rounds, 4 KiB-aligned offset 8 KiB in
				off=$(( ((r - 1) * chunks / fw_rounds) * 65536 + 8192 ))
				line=$("$helper" "$S/tmnt-fw/volumes/fw-$z" "$off") || { log "fsync_write on tessera fw-$z failed"; continue; }
				jq -c --arg z "$z" --argjson b "$zb" --argjson r "$r" \
					'. + {kind: "first-write", system: "tsr-fuse", param: $z, file_bytes: $b, round: $r}' <<<"$line" >>"$out/fw.jsonl"
			done
		done
		echo "tsr-fuse store after the sweep: $(du_b "$S/store-fw")" >"$out/logs/fw-store.txt"
	fi
	if wants overlay; then
		log "first write: overlayfs (bench/overlay_copyup.sh), sizes $fw_sizes, $fw_rounds rounds"
		cmdlog "bash bench/overlay_copyup.sh --helper fsync_write --dir SCRATCH --sizes $fw_sizes --rounds $fw_rounds"
		bash "$repo/bench/overlay_copyup.sh" --helper "$helper" --dir "$S" --sizes "$fw_sizes" --rounds "$fw_rounds" \
			2>"$out/logs/overlay_copyup.log" | jq -c '. + {kind: "first-write-overlay", system: "overlay"}' >>"$out/fw.jsonl" ||
			log "overlay_copyup.sh failed (logs/overlay_copyup.log)"
	fi
fi

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "tessera: $tessera"
	echo "engine: ${engine:-none}"
	echo "size: $bytes; ext4 file: $ext_size; runtime: ${runtime}s + ${ramp}s ramp; reps: $reps; verify region: $vsize"
	echo "elapsed: $(( $(date +%s) - t0 )) s"
} >"$out/meta.txt"
log "done ($(( $(date +%s) - t0 )) s)"
