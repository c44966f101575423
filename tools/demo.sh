#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A tour of tessera: import a 256 MiB disk image as a layer, start a volume
# on top of it, change 4 KiB, commit that as a second layer, and look at
# what the two layers share.
#
# Usage: tools/demo.sh [--store DIR]     (after building in ./build)
# The store (default ./demo-store) is deleted first and left for you to look
# at afterwards.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
tessera="$root/build/tools/tessera"
store="$PWD/demo-store"

while [ $# -gt 0 ]; do
  case "$1" in
    --store) [ $# -ge 2 ] || { echo "demo.sh: --store needs a directory" >&2; exit 2; }
             store=$2; shift 2 ;;
    --store=*) store=${1#--store=}; shift ;;
    -h|--help) sed -n '3,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (usage: tools/demo.sh [--store DIR])" >&2; exit 2 ;;
  esac
done

if [ ! -x "$tessera" ]; then
  echo "demo.sh: $tessera not found; build first:" >&2
  echo "  cmake -S $root -B $root/build && cmake --build $root/build" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
image="$work/base.img"
expected="$work/child-expected.img"
exported="$work/child-exported.img"
patch="$work/patch.bin"

step() { printf '\n== %s\n' "$*"; }
run() { printf '$ tessera %s\n' "$*"; "$tessera" --store "$store" "$@"; }

rm -rf "$store"

step "Make a 256 MiB raw image: random data, text, zero regions, repeated content"
# Layout (MiB): 0-32 random | 32-96 zeros | 96-128 random | 128-160 a copy of
# 96-128 (dedups) | 160-176 text (compresses) | 176-200 zeros |
# 200-208 one 64 KiB block repeated (dedups) | 208-256 zeros.
truncate -s 256M "$image"
head -c 32M /dev/urandom | dd of="$image" bs=1M seek=0 conv=notrunc status=none
head -c 32M /dev/urandom > "$work/r2"
dd if="$work/r2" of="$image" bs=1M seek=96 conv=notrunc status=none
dd if="$work/r2" of="$image" bs=1M seek=128 conv=notrunc status=none
{ seq -f 'line %.0f of a text that compresses well' 1 1000000 || true; } |
  head -c 16M |
  dd of="$image" bs=1M seek=160 conv=notrunc status=none iflag=fullblock
head -c 64K /dev/urandom > "$work/block"
for _ in $(seq 0 127); do cat "$work/block"; done |
  dd of="$image" bs=1M seek=200 conv=notrunc status=none iflag=fullblock
rm -f "$work/r2" "$work/block"
ls -ls "$image"

step "Create the store"
run init

step "Import the image as volume 'base' (all-zero MiB pieces stay holes)"
run volume import base "$image"

step "Commit 'base' as a layer named 'base' (prints its id)"
run commit base --name base

step "Create volume 'child' on top of layer 'base': nothing is copied"
run volume create child --parent base

step "Write 4 KiB of new bytes at offset 1 MiB of 'child': one chunk is copied"
head -c 4K /dev/urandom > "$patch"
run volume write child --offset 1M "$patch"
cp --sparse=always "$image" "$expected"
dd if="$patch" of="$expected" bs=4K seek=256 conv=notrunc status=none

step "The volume has 1 chunk written locally"
run volume stat child

step "Commit 'child' as layer 'child'"
run commit child --name child

step "Layers: 'child' has 1 data chunk and shares everything else with 'base'"
run layer ls

step "Layer 'child' in detail"
run layer stat child

step "Read 'child' back through a new volume and compare with the expected image"
run volume create check --parent child
run volume export check "$exported"
cmp "$expected" "$exported"
echo "exported image of layer 'child' equals the expected image"
run volume rm check

step "Store totals: two 256 MiB images; chunks stored once (dedup) and compressed"
run df

echo
echo "demo.sh: done; the store is in $store"
