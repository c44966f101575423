#!/usr/bin/env bash
# tessera vhost against QEMU booting a real guest (Debian kernel, busybox
# initramfs; see guest_image.sh and guest/):
#  1. a volume served read-write, 2 queues: the guest reads what the host
#     wrote, writes and reads back a pattern, makes an ext4 with files and
#     checks it, discards a range;
#  2. a second guest connects to the same running backend, finds the
#     files; the backend is killed (kill -9, no request in flight) and
#     restarted on the same socket: QEMU reconnects, guest I/O continues;
#  3. on the host: the volume holds the guest's data, the discarded range
#     reads as zeros and holds no space after gc;
#  4. a committed layer served read-only: readable, writes refused.
# Usage: vhost_qemu.sh TESSERA
# TSR_QEMU_ACCEL=kvm uses KVM (default: tcg,thread=multi).  Exit 77 when
# QEMU, busybox or a guest kernel cannot be had.
set -euo pipefail

tessera=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "vhost_qemu: SKIP: $*"; exit 77; }
fail() { echo "vhost_qemu: FAIL: $*"; exit 1; }
log() { echo "vhost_qemu: [$(( $(date +%s) - t0 ))s] $*"; }

command -v qemu-system-x86_64 >/dev/null ||
  skip "qemu-system-x86_64 not installed (tools/setup.sh installs qemu-system-x86)"
set +e
guest=$("$here/guest_image.sh")
rc=$?
set -e
[ $rc -eq 77 ] && skip "no guest image (see above)"
[ $rc -eq 0 ] || fail "guest_image.sh failed ($rc)"

case ${TSR_QEMU_ACCEL:-tcg} in
  kvm) accel=kvm ;;
  *) accel=tcg,thread=multi ;;
esac

t0=$(date +%s)
T=$(mktemp -d /tmp/tsr-vhost.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill -9 "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [ "${keep:-0}" = 1 ]; then echo "vhost_qemu: logs kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
export TESSERA_STORE=$T/store
sock=$T/vhost.sock

# The scenario scripts, as a second cpio appended to the cached one.
mkdir -p "$T/ir/tests"
cp "$here"/guest/*.sh "$T/ir/tests/"
(cd "$T/ir" && find . | busybox cpio -o -H newc 2>/dev/null) > "$T/tests.cpio"
cat "$guest/base.cpio" "$T/tests.cpio" > "$T/initrd"

backend_pid=
# start_backend LOG ARGS...: runs `tessera vhost ARGS` and waits for its socket.
start_backend() {
  local out=$1
  shift
  rm -f "$sock.ready"
  "$tessera" vhost --socket "$sock" "$@" >> "$out" 2>&1 &
  backend_pid=$!
  pids+=("$backend_pid")
  for _ in $(seq 100); do
    grep -q '^serving' "$out" 2>/dev/null && [ -S "$sock" ] && return 0
    kill -0 "$backend_pid" 2>/dev/null || fail "backend exited: $(cat "$out")"
    sleep 0.05
  done
  fail "backend did not start: $(cat "$out")"
}

# stop_backend: SIGTERM, and the exit status must be 0.
stop_backend() {
  kill -TERM "$backend_pid"
  wait "$backend_pid" || fail "backend exited with $?"
}

qemu_pid=
# boot NAME APPEND...: starts a guest running scenario NAME, output in
# $T/NAME.log; returns at once (wait_guest waits).
boot() {
  local name=$1
  shift
  qemu-system-x86_64 -accel "$accel" -machine pc -nodefaults -no-user-config \
    -display none -serial stdio -m 256M -smp 2 -no-reboot \
    -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
    -chardev socket,id=c,path="$sock",reconnect=1 \
    -device vhost-user-blk-pci,chardev=c,num-queues=2 \
    -kernel "$guest/vmlinuz" -initrd "$T/initrd" \
    -append "console=ttyS0 quiet panic=-1 tsr.run=$name $*" \
    < /dev/null > "$T/$name.log" 2>&1 &
  qemu_pid=$!
  pids+=("$qemu_pid")
}

# wait_guest NAME: waits (90 s at most) for the guest to power off and
# checks that its scenario passed.
wait_guest() {
  local name=$1
  for _ in $(seq 900); do
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$qemu_pid" 2>/dev/null; then
    kill -9 "$qemu_pid"
    keep=1
    fail "guest $name did not power off: $(tail -20 "$T/$name.log")"
  fi
  wait "$qemu_pid" || true
  if ! grep -q "^TSR-OK $name" "$T/$name.log"; then
    keep=1
    fail "guest $name: $(tail -30 "$T/$name.log")"
  fi
  log "guest $name passed"
}

sha() { sha256sum | cut -d' ' -f1; }

# ---- 1. a read-write volume ------------------------------------------------
"$tessera" init > /dev/null
"$tessera" volume create disk --size 64M > /dev/null
head -c 4M /dev/urandom > "$T/hostpat"
"$tessera" volume write disk --offset 56M "$T/hostpat" > /dev/null
start_backend "$T/backend.log" --volume disk --queues 2
log "backend serving volume disk (pid $backend_pid)"
boot rw "tsr.sha=$(sha < "$T/hostpat") tsr.serial=disk"
wait_guest rw
guestpat=$(sed -n 's/^TSR-GUESTPAT \([0-9a-f]*\).*/\1/p' "$T/rw.log")

# ---- 2. a second guest, the same backend; then a backend restart ---------
boot again "tsr.sha=$guestpat"
for _ in $(seq 900); do
  grep -q '^TSR-PHASE1' "$T/again.log" && break
  kill -0 "$qemu_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q '^TSR-PHASE1' "$T/again.log" || fail "guest again: $(tail -30 "$T/again.log")"
kill -9 "$backend_pid"
wait "$backend_pid" 2>/dev/null || true
log "backend killed while idle; restarting"
start_backend "$T/backend.log" --volume disk --queues 2
wait_guest again
reconnpat=$(sed -n 's/^TSR-RECONNPAT \([0-9a-f]*\).*/\1/p' "$T/again.log")
grep -c 'front-end connected' "$T/backend.log" | grep -qx 3 ||
  fail "expected 3 connections: $(cat "$T/backend.log")"
stop_backend
grep -q ' 0 errors, 0 broken rings' "$T/backend.log" ||
  fail "requests failed or a ring broke: $(cat "$T/backend.log")"

# ---- 3. the host sees the guests' data ---------------------------------------
[ "$("$tessera" volume read disk --offset 48M --length 2M | sha)" = "$guestpat" ] ||
  fail "the guest's pattern is not in the volume"
[ "$("$tessera" volume read disk --offset 52M --length 1M | sha)" = "$reconnpat" ] ||
  fail "the pattern written after the reconnect is not in the volume"
[ "$("$tessera" volume read disk --offset 56M --length 2M | sha)" = \
  "$(head -c 2M "$T/hostpat" | sha)" ] || fail "the host's pattern was damaged"
[ "$("$tessera" volume read disk --offset 58M --length 2M | sha)" = \
  "$(head -c 2M /dev/zero | sha)" ] || fail "the discarded range is not zero"
"$tessera" volume export disk "$T/disk.img"
e2fsck -fn "$T/disk.img" > "$T/fsck.log" 2>&1 || fail "e2fsck on the host: $(cat "$T/fsck.log")"
[ "$(debugfs -R 'cat /hello.txt' "$T/disk.img" 2>/dev/null)" = hello ] ||
  fail "hello.txt not in the guest's filesystem"
[ "$(debugfs -R 'cat /second.txt' "$T/disk.img" 2>/dev/null)" = second ] ||
  fail "second.txt not in the guest's filesystem"
"$tessera" gc > /dev/null
stat_field() { "$tessera" volume stat disk | sed -n "s/^$1: *\([0-9]*\).*/\1/p"; }
chunks=$(stat_field 'chunks written')
alloc=$(stat_field allocated)
# Discarded chunks hold no space: everything allocated is a written chunk.
[ "$alloc" -le $(( (chunks + 1) * 65536 )) ] ||
  fail "allocated $alloc bytes for $chunks written chunks: discard freed nothing"
log "host checks passed ($chunks chunks written, $alloc bytes allocated)"

# ---- 4. a committed layer, read-only ------------------------------------------
"$tessera" volume create base --size 16M > /dev/null
head -c 4M /dev/urandom > "$T/layerpat"
"$tessera" volume write base --offset 0 "$T/layerpat" > /dev/null
layer=$("$tessera" commit base --name base-layer | tail -1)
start_backend "$T/backend-ro.log" --layer base-layer --queues 2
boot ro "tsr.sha=$(sha < "$T/layerpat")"
wait_guest ro
stop_backend
grep -q 'read-only' "$T/backend-ro.log" || fail "layer not served read-only"
log "all passed (layer ${layer:0:12})"
