#!/usr/bin/env bash
# The architecture check (check_architecture.py): first on a made-up build
# tree it must reject, then on the real one.
#   architecture.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
check="$src/tests/arch/check_architecture.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A module whose two files call each other, a tools/ file that mounts, and
# two modules that call each other.
mk() {  # mk MODULE TARGET SUBDIR FILE C-SOURCE: source and object, as CMake lays them
	mkdir -p "$tmp/s/$1/$3" "$tmp/b/$1/CMakeFiles/$2.dir/$3"
	printf '%s\n' "$5" > "$tmp/s/$1/$3/$4.c"
	cc -c -o "$tmp/b/$1/CMakeFiles/$2.dir/$3/$4.c.o" "$tmp/s/$1/$3/$4.c"
}
mk alpha alpha src a_one 'void a_two(void); void a_one(void) { a_two(); }'
mk alpha alpha src a_two 'void a_one(void); void b_one(void); void a_two(void) { a_one(); b_one(); }'
mk beta beta src b_one 'void a_one(void); void b_one(void) { a_one(); }'
mk tools tools . t_main '#include <sys/mount.h>
int t_main(void) { return mount("a", "b", "ext4", 0, 0); }'
# An object whose source is gone is not judged.
cp "$tmp/b/tools/CMakeFiles/tools.dir/./t_main.c.o" "$tmp/b/tools/CMakeFiles/tools.dir/old.c.o"
if python3 "$check" "$tmp/s" "$tmp/b" > "$tmp/out"; then
	echo "FAIL: the check accepted a tree with circles and a mount in tools/"; cat "$tmp/out"; exit 1
fi
for want in "files call each other in a circle: src/a_one.c -> src/a_two.c" \
	    "modules call each other in a circle: alpha <-> beta" \
	    "t_main.c: tools/ calls mount()" "tools/t_main.c:1: includes sys/mount.h"; do
	grep -qF "$want" "$tmp/out" || { echo "FAIL: no finding '$want'"; cat "$tmp/out"; exit 1; }
done
if grep -q "old.c" "$tmp/out"; then echo "FAIL: an object without source was judged"; cat "$tmp/out"; exit 1; fi
echo "ok: the check rejects a made-up tree ($(grep -c . "$tmp/out") lines)"

python3 "$check" "$src" "$build"
