#!/usr/bin/env bash
# Layer blobs between stores: the same id on both sides, bit-exact content
# (hole entries of a child included),
# and hostile blobs (flipped bytes, truncation, missing parent, another chunk
# size) refused with the store unchanged.
#   layer_blob.sh TESSERA
set -euo pipefail
T=$1
dir=$(mktemp -d /tmp/tsr-blob-XXXXXX)
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
a() { "$T" --store "$dir/a" "$@"; }
b() { "$T" --store "$dir/b" "$@"; }

a init >/dev/null; b init >/dev/null
"$T" --store "$dir/c" init --chunk-size 16K >/dev/null
head -c 6M /dev/urandom > "$dir/img"
head -c 1M /dev/zero >> "$dir/img"          # a hole
{ yes tessera || true; } | head -c 2M >> "$dir/img"   # compressible, repeated chunks
a volume import base "$dir/img" >/dev/null
base=$(a commit base --name base)
a volume create child --parent base
head -c 100000 /dev/urandom > "$dir/patch"
a volume write child --offset 12345 "$dir/patch"
# Zeros over whole chunks of base's data: the child's map gets hole
# entries there, which the blob must carry (64K chunks: 16..19).
head -c 256K /dev/zero | a volume write child --offset 1M
child=$(a commit child --name child)
holes() { "$1" layer stat "$2" | awk '/^hole chunks:/ {print $3}'; }
[ "$(holes a child)" = 4 ] && ok "zeroed chunks are holes in the child" \
	|| bad "child has $(holes a child) hole chunks, not 4"
a layer export base "$dir/base.blob" >/dev/null
a layer export child "$dir/child.blob" >/dev/null
a layer export child - > "$dir/child2.blob"
cmp -s "$dir/child.blob" "$dir/child2.blob" && ok "export to a file and to stdout agree" \
	|| bad "export to stdout differs"

objects() { "$@" df | awk '/^chunk objects:/ {print $3}'; }

# Child first: refused, its parent is missing; store unchanged.
if b layer import "$dir/child.blob" 2>"$dir/err"; then bad "child imported without parent"
elif grep -q "$base" "$dir/err"; then ok "missing parent named: $(cat "$dir/err")"
else bad "missing-parent error does not name the parent: $(cat "$dir/err")"; fi
[ "$(objects b)" = 0 ] && ok "refused import stored nothing" || bad "refused import left objects"

# Damaged blobs: a flipped byte anywhere, a truncation.
size=$(stat -c %s "$dir/base.blob")
for off in 5 200 $((size / 2)) $((size - 10)); do
	cp "$dir/base.blob" "$dir/bad.blob"
	orig=$(od -An -tu1 -j "$off" -N1 "$dir/bad.blob" | tr -d ' ')
	printf "\\$(printf %o $(( (orig + 1) % 256 )))" |
		dd of="$dir/bad.blob" bs=1 seek="$off" conv=notrunc 2>/dev/null
	if b layer import "$dir/bad.blob" 2>/dev/null; then bad "blob with byte $off flipped imported"
	else ok "blob with byte $off flipped refused"; fi
done
head -c $((size / 3)) "$dir/base.blob" > "$dir/short.blob"
b layer import "$dir/short.blob" 2>/dev/null && bad "truncated blob imported" || ok "truncated blob refused"
[ "$(objects b)" = 0 ] && ok "store unchanged after refused blobs" || bad "refused blobs left objects"
b fsck >/dev/null && ok "fsck clean after refused blobs" || bad "fsck after refused blobs"
"$T" --store "$dir/c" layer import "$dir/base.blob" 2>"$dir/err" && bad "other chunk size imported" \
	|| ok "other chunk size refused: $(cat "$dir/err")"
# A layer larger than the importer allows: refused from its header, before
# any entry is read (the base layer is 9 MiB).
if b layer import "$dir/base.blob" --max-size 8M 2>"$dir/err"; then bad "layer over --max-size imported"
elif grep -q "more than the limit of 8.0M" "$dir/err"; then ok "layer over --max-size refused: $(cat "$dir/err")"
else bad "--max-size error unclear: $(cat "$dir/err")"; fi
[ "$(objects b)" = 0 ] && ok "store unchanged after --max-size refusal" || bad "--max-size refusal left objects"
# A header claiming 1 TiB is refused by the default limit (256G).
cp "$dir/base.blob" "$dir/huge.blob"
python3 - "$dir/huge.blob" <<'PY'
import struct, sys, zlib
p = sys.argv[1]
with open(p, "r+b") as f:
    h = bytearray(f.read(128))
    h[16:24] = struct.pack("<Q", 1 << 40)
    h[124:128] = struct.pack("<I", zlib.crc32(bytes(h[:124])))
    f.seek(0); f.write(h)
PY
if b layer import "$dir/huge.blob" 2>"$dir/err"; then bad "blob claiming 1T imported"
elif grep -q "more than the limit of 256.0G" "$dir/err"; then ok "blob claiming 1T refused by default"
else bad "huge blob error unclear: $(cat "$dir/err")"; fi

# In order: same ids, same bytes.
[ "$(b layer import "$dir/base.blob" --name base)" = "$base" ] && ok "base keeps its id" || bad "base id changed"
[ "$(b layer import - < "$dir/child.blob")" = "$child" ] && ok "child keeps its id" || bad "child id changed"
b layer import "$dir/base.blob" >/dev/null && ok "importing a layer again adds a hold" || bad "re-import failed"
[ "$(holes b "$child")" = 4 ] && ok "the child's holes survive export and import" \
	|| bad "imported child has $(holes b "$child") hole chunks, not 4"
a volume create x --parent child; b volume create x --parent "$child"
a volume export x "$dir/xa"; b volume export x "$dir/xb"
cmp -s "$dir/xa" "$dir/xb" && ok "content identical in both stores" || bad "content differs"
b volume read x --offset 1M --length 256K | cmp -s - <(head -c 256K /dev/zero) \
	&& ok "the holes read as zeros after import" || bad "the holes do not read as zeros"
b fsck >/dev/null && ok "fsck clean" || bad "fsck after import"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
