# SPDX-License-Identifier: MIT
#
# bench/lib.sh: shell functions shared by bench/fio_suite.sh,
# bench/fuse_fio.sh and bench/vhost_fio.sh; sourced, defines functions only
# (works under set -euo pipefail).
#
# Options:
#   common_opt NAME VALUE  the options every script takes: --tessera, --out,
#                          --dir, --reps, --runtime, --size set tessera, out,
#                          parent, reps, runtime, size to VALUE; 1 for any
#                          other NAME
# Teardown:
#   teardown               the scripts' EXIT trap: under set +e, in /, stops
#                          perfpid (INT) and qemu_pid (KILL), unmounts mnts,
#                          detaches loops, stops pids, unmounts fusemnts and
#                          removes the scratch dir S (globals, each optional:
#                          perfpid, qemu_pid, mnts, loops, pids, fusemnts, S)
#   stop_pids PID...       TERM every PID, then per PID wait up to 10 s,
#                          KILL it and reap it
#   unmount_all DIR...     unmounts each DIR still mounted, last first (a busy
#                          one lazily)
#   detach_loops DEV...    losetup -d each loop device
#   unmount_fuse DIR...    lazy unmount of each DIR still mounted as FUSE (a
#                          daemon that died leaves its mountpoint behind)
# Waiting:
#   wait_for TEST...       runs TEST until it succeeds, up to 10 s
#   wait_sock PID SOCK     until SOCK is a socket, up to 10 s; 1 when PID
#                          exited first, 2 on time out
# Measuring:
#   cpu_ticks [PID]        utime+stime of PID in clock ticks; 0 without PID
# Records:
#   cmdlog WORDS...        appends a line to OUT/commands.txt (global: out)
#   host_meta              meta.txt's date, commit, tessera and cpu lines
#                          (globals: repo, tessera)
# Setup:
#   base_store STORE DATA  a tessera store with DATA imported and committed
#                          as layer "base" and a child volume "v" of it
#                          (global: tessera, the CLI)
#   fio_initrd DIR BASE [SRC NAME]...
#                          DIR/initrd: the guest's BASE cpio plus a second
#                          with /usr/bin/fio, its libraries and each SRC as
#                          /tests/NAME (built in DIR/ir, DIR/fio.cpio)
#   start_guest SOCK KERNEL INITRD APPEND LOG
#                          boots QEMU (TCG, 2 vCPUs, 512 MiB, shared memory)
#                          in the background on a vhost-user-blk disk served
#                          at SOCK, console to LOG (global: sets qemu_pid)
#   require_tools NAME TOOL...
#                          exit 77 with "NAME: TOOL is required" for the
#                          first TOOL not on PATH

common_opt() {
	case $1 in
	--tessera) tessera=$2 ;;
	--out) out=$2 ;;
	--dir) parent=$2 ;;
	--reps) reps=$2 ;;
	--runtime) runtime=$2 ;;
	--size) size=$2 ;;
	*) return 1 ;;
	esac
}

cmdlog() { echo "$*" >>"$out/commands.txt"; }

teardown() {
	set +e
	cd /
	[ -n "${perfpid:-}" ] && kill -INT "$perfpid" 2>/dev/null && wait "$perfpid" 2>/dev/null
	[ -n "${qemu_pid:-}" ] && kill -9 "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
	unmount_all ${mnts[@]+"${mnts[@]}"}
	detach_loops ${loops[@]+"${loops[@]}"}
	stop_pids ${pids[@]+"${pids[@]}"}
	unmount_fuse ${fusemnts[@]+"${fusemnts[@]}"}
	[ -n "${S:-}" ] && rm -rf "$S"
}

stop_pids() {
	local p i
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for p in "$@"; do
		for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	return 0
}

unmount_all() {
	local i m
	for ((i = $#; i >= 1; i--)); do
		m=${!i}
		mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }
	done
	return 0
}

detach_loops() {
	local l
	for l in "$@"; do losetup -d "$l" 2>/dev/null; done
	return 0
}

unmount_fuse() {
	local m
	for m in "$@"; do
		grep -q " $m fuse" /proc/self/mounts && umount -l "$m"
	done
	return 0
}

wait_for() {
	local i
	for i in $(seq 100); do "$@" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

wait_sock() {
	local i
	for i in $(seq 200); do
		[ -S "$2" ] && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.05
	done
	return 2
}

cpu_ticks() {
	[ -n "${1:-}" ] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

base_store() {
	"$tessera" --store "$1" init >/dev/null
	"$tessera" --store "$1" volume import base0 "$2" >/dev/null
	"$tessera" --store "$1" commit base0 --name base >/dev/null
	"$tessera" --store "$1" volume create v --parent base >/dev/null
}

fio_initrd() {
	local dir=$1 base=$2 lib
	shift 2
	mkdir -p "$dir/ir/tests" "$dir/ir/usr/bin" "$dir/ir/tmp"
	cp /usr/bin/fio "$dir/ir/usr/bin/"
	for lib in $(ldd /usr/bin/fio | grep -o '/[^ ]*'); do
		mkdir -p "$dir/ir$(dirname "$lib")"
		cp -L "$lib" "$dir/ir$lib"
	done
	while [ $# -ge 2 ]; do
		cp "$1" "$dir/ir/tests/$2"
		shift 2
	done
	(cd "$dir/ir" && find . | busybox cpio -o -H newc 2>/dev/null) >"$dir/fio.cpio"
	cat "$base" "$dir/fio.cpio" >"$dir/initrd"
}

start_guest() {
	qemu-system-x86_64 -accel tcg,thread=multi -machine pc -nodefaults -no-user-config \
		-display none -serial stdio -m 512M -smp 2 -no-reboot \
		-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
		-chardev socket,id=c,path="$1" \
		-device vhost-user-blk-pci,chardev=c,num-queues=2 \
		-kernel "$2" -initrd "$3" -append "$4" </dev/null >"$5" 2>&1 &
	qemu_pid=$!
}

require_tools() {
	local name=$1 t
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "$name: $t is required"; exit 77; }
	done
}

host_meta() {
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit: $(git -C "$repo" rev-parse HEAD 2>/dev/null)"
	echo "tessera: $tessera (built from $(cat "$(dirname "$tessera")/../../commit" 2>/dev/null || echo '?'))"
	echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs"
}
