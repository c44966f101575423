#!/usr/bin/env bash
# Builds a libFuzzer target (imagefmt/, the control protocol) with clang-14 and runs it for a
# fixed number of inputs from its seed corpus (tests/fuzz/corpus/NAME).
# Usage: fuzz.sh NAME [RUNS]     NAME: layer_blob | oci_image | oci_apply | control
# Exit 77 when clang-14 or libFuzzer is missing, or (oci_apply) not root.
# New inputs go to a scratch corpus; the seeds are only read.  A crash
# leaves its input in ${TSR_FUZZ_ARTIFACTS:-/tmp/}tsr-fuzz-NAME-*.
set -euo pipefail

name=$1
runs=${2:-10000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
skip() { echo "fuzz.sh: SKIP: $*"; exit 77; }

command -v clang-14 >/dev/null || skip "clang-14 not installed"
case $name in
layer_blob)
	srcs=("$root"/blockstore/src/*.c "$root"/imagefmt/src/layer_blob.c)
	libs=(-lcrypto -lz -lzstd -llmdb -lpthread)
	max_len=65536;;
oci_image|oci_apply)
	srcs=("$root"/imagefmt/src/oci_{archive,ctx,docker,index,limits,tar,apply}.c)
	libs=(-larchive -ljansson -lcrypto -lpthread)
	max_len=65536;;
control)
	srcs=("$root"/daemon/src/control_proto.c "$root"/unixsock/src/unix_socket.c)
	libs=(-lpthread)
	max_len=16384;;
*) echo "fuzz.sh: unknown target '$name'" >&2; exit 2;;
esac
if [ "$name" = oci_apply ] && [ "$(id -u)" -ne 0 ]; then
	skip "oci_apply needs root (owners, device nodes, a private tmpfs)"
fi

T=$(mktemp -d /tmp/tsr-fuzz.XXXXXX)
# The harness's temp dirs (a store, workdirs, roots): on a tmpfs when there
# is one, and removed here even when the harness crashed.
S=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "$T")/tsr-fuzz-tmp.XXXXXX")
trap 'rm -rf "$T" "$S"' EXIT
export TSR_FUZZ_TMP=$S
cflags=(-g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-I"$root/imagefmt/include" -I"$root/imagefmt/src"
	-I"$root/blockstore/include" -I"$root/blockstore/src"
	-I"$root/daemon/include" -I"$root/daemon/src" -I"$root/unixsock/include")
# One compiler per CPU (the blockstore takes 15 s in one process).
mkdir "$T/obj"
jobs=$(nproc 2>/dev/null || echo 2) n=0 fail=0
for src in "$here/fuzz_$name.c" "${srcs[@]}"; do
	if [ "$n" -ge "$jobs" ]; then wait -n || fail=1; n=$((n - 1)); fi
	clang-14 "${cflags[@]}" -c "$src" -o "$T/obj/$(basename "$src" .c).o" 2>> "$T/cc.log" &
	n=$((n + 1))
done
while [ "$n" -gt 0 ]; do wait -n || fail=1; n=$((n - 1)); done
if [ "$fail" -ne 0 ] ||
   ! clang-14 -fsanitize=fuzzer,address,undefined "$T"/obj/*.o "${libs[@]}" \
     -o "$T/fuzz" 2>> "$T/cc.log"; then
  if grep -q 'libclang_rt.fuzzer\|cannot find.*fuzzer' "$T/cc.log"; then
    skip "libFuzzer runtime missing (libclang-rt-14-dev)"
  fi
  cat "$T/cc.log"
  exit 1
fi
mkdir -p "$T/corpus"
if [ "$name" = layer_blob ]; then
	# Blobs exported from the harness's own store, as the committed seeds
	# were (they stay valid: layer ids depend on content only).
	TSR_FUZZ_WRITE_SEEDS="$T/corpus" "$T/fuzz" -runs=0 >/dev/null 2>&1 ||
		{ echo "fuzz.sh: could not write layer blob seeds"; exit 1; }
fi
"$T/fuzz" -runs="$runs" -seed=1 -max_len="$max_len" -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="${TSR_FUZZ_ARTIFACTS:-/tmp/}tsr-fuzz-$name-" \
  "$T/corpus" "$here/corpus/$name"
