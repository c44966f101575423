#!/usr/bin/env bash
# Builds a libFuzzer target of vhost/ with clang-14 and runs it for a
# fixed number of inputs from its seed corpus (tests/vhost/corpus/NAME).
# Usage: fuzz.sh NAME [RUNS]     NAME: vhost_msg | vring
# Exit 77 when clang-14 or libFuzzer is missing.
set -euo pipefail

name=$1
runs=${2:-20000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
skip() { echo "fuzz.sh: SKIP: $*"; exit 77; }

command -v clang-14 >/dev/null || skip "clang-14 not installed"
T=$(mktemp -d /tmp/tsr-fuzz.XXXXXX)
trap 'rm -rf "$T"' EXIT
srcs=("$root"/vhost/src/vring.c "$root"/vhost/src/blk.c \
  "$root"/vhost/src/guest_fault.c)
[ "$name" = vhost_msg ] && srcs+=("$root"/vhost/src/vhost_msg.c \
  "$root"/vhost/src/vhost_dev.c "$root"/vhost/src/vhost_log.c "$root"/vhost/src/queue.c \
  "$root"/vhost/src/blk_uring.c "$root"/vhost/src/blk_pool.c \
  "$root"/blockstore/src/store_log.c)
if ! clang-14 -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
     -I"$root/vhost/src" -I"$root/vhost/include" \
     -I"$root/blockstore/include" -I"$root/blockstore/src" \
     "$here/fuzz_$name.c" "${srcs[@]}" -luring -lpthread -o "$T/fuzz" 2> "$T/cc.log"; then
  if grep -q 'libclang_rt.fuzzer\|cannot find.*fuzzer' "$T/cc.log"; then
    skip "libFuzzer runtime missing (libclang-rt-14-dev)"
  fi
  cat "$T/cc.log"
  exit 1
fi
mkdir -p "$T/corpus"
# New inputs go to the scratch corpus; the seeds are only read.
"$T/fuzz" -runs="$runs" -seed=1 -max_len=16384 -timeout=10 \
  -artifact_prefix="${TSR_FUZZ_ARTIFACTS:-/tmp/}tsr-fuzz-$name-" \
  "$T/corpus" "$here/corpus/$name"
