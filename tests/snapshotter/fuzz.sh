#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the snapshotter's libFuzzer target (fuzz_snap_request.c: HTTP/2
# frames, gRPC framing, protobuf requests, List filters) with clang-14 and
# runs it for a fixed number of inputs from seeds made here (h2_garbage.py's
# requests, well-formed and not).
# Usage: fuzz.sh [RUNS]    Exit 77 when clang-14, libFuzzer or protoc-c is missing.
set -euo pipefail

runs=${1:-20000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
skip() { echo "fuzz.sh: SKIP: $*"; exit 77; }

command -v clang-14 >/dev/null || skip "clang-14 not installed"
command -v protoc-c >/dev/null || skip "protoc-c not installed"
T=$(mktemp -d /tmp/tsr-fuzz-snap.XXXXXX)
trap 'rm -rf "$T"' EXIT

P=$root/snapshotter/proto
mkdir -p "$T/gen"
protos=(google/protobuf/empty google/protobuf/field_mask google/protobuf/timestamp
	containerd/types/mount containerd/services/snapshots/v1/snapshots)
gen=()
for p in "${protos[@]}"; do
	protoc-c -I"$P" --c_out="$T/gen" "$P/$p.proto"
	gen+=("$T/gen/$p.pb-c.c")
done
src=$root/snapshotter/src
if ! clang-14 -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
     -I"$src" -I"$root/snapshotter/include" -I"$root/blockstore/include" -I"$T/gen" \
     -I"$root/unixsock/include" -I"$root/imagefmt/include" -I"$root/fuse/include" \
     "$here/fuzz_snap_request.c" "$src/h2_server.c" "$src/grpc.c" "$src/service.c" \
     "$src/filters.c" "$root/unixsock/src/unix_socket.c" "${gen[@]}" -lnghttp2 -lprotobuf-c -lpthread \
     -o "$T/fuzz" 2>"$T/cc.log"; then
	if grep -q 'libclang_rt.fuzzer\|cannot find.*fuzzer' "$T/cc.log"; then
		skip "libFuzzer runtime missing (libclang-rt-14-dev)"
	fi
	cat "$T/cc.log"
	exit 1
fi

# Seeds: byte 0 even = an HTTP/2 stream after the preface, odd = a gRPC body
# for method byte 1 (Prepare View Mounts Commit Remove Stat Update List
# Usage Cleanup).
mkdir -p "$T/seeds" "$T/corpus"
/usr/bin/python3 - "$here" "$T/seeds" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import h2_garbage as g
out = sys.argv[2]
def body(method, msg):
    return bytes([1, method]) + g.grpc_frame(msg)
seeds = {
    "stat": body(5, g.pb_string(2, "default/1/k")),
    "prepare": body(0, g.pb_string(2, "default/2/k") + g.pb_string(3, "default/1/p") +
                    g.pb_string(4, g.pb_string(1, "containerd.io/snapshot.ref") +
                                g.pb_string(2, "sha256:abc"))),
    "list": body(7, g.pb_string(2, 'labels."containerd.io/snapshot.ref"==sha256:x,parent=="p"') +
                 g.pb_string(2, "kind~=/^(active|view)$/,name") + g.pb_string(2, 'name~=|a\\|b|')),
    "update": body(6, g.pb_string(2, g.pb_string(1, "k") + g.pb_string(6, g.pb_string(1, "a") +
                                                                 g.pb_string(2, "b"))) +
                   g.pb_string(3, g.pb_string(1, "labels.a"))),
}
for m, name in [(5, "Stat"), (7, "List"), (3, "Commit")]:
    msg = g.pb_string(2, "default/3/key") if m != 3 else g.pb_string(2, "n") + g.pb_string(3, "k")
    seeds["h2-" + name] = bytes([0, 30]) + g.frame(g.SETTINGS, 0, 0, b"") + \
        g.frame(g.HEADERS, g.END_HEADERS, 1, g.request_headers(name)) + \
        g.frame(g.DATA, g.END_STREAM, 1, g.grpc_frame(msg)) + \
        g.frame(g.HEADERS, g.END_HEADERS, 3, g.request_headers("Cleanup")) + \
        g.frame(g.RST_STREAM, 0, 3, b"\x00\x00\x00\x08") + g.frame(g.PING, 0, 0, b"12345678")
for name, data in seeds.items():
    open(out + "/" + name, "wb").write(data)
PY
"$T/fuzz" -runs="$runs" -seed=1 -max_len=16384 -timeout=10 \
  -artifact_prefix="${TSR_FUZZ_ARTIFACTS:-/tmp/}tsr-fuzz-snap-" \
  "$T/corpus" "$T/seeds"
