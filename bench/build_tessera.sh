#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/build_tessera.sh [DIR]: builds the tessera CLI (Release) from the
# committed HEAD only (git archive; uncommitted work of the tree is left
# out) in DIR (default /var/tmp/tsr-bench-src).  Prints the binary's path;
# DIR/commit holds the commit it was built from.
# -Wno-error=maybe-uninitialized: at -O3, gcc 12 warned about dir_fd in
# tools/control.c (cli_control_forward) before 96cb201, and the project builds
# with -Werror; kept so older commits build too.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-/var/tmp/tsr-bench-src}
rm -rf "$dir"
mkdir -p "$dir"
git -C "$repo" archive HEAD | tar -x -C "$dir"
git -C "$repo" rev-parse HEAD >"$dir/commit"
cmake -S "$dir" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_C_FLAGS=-Wno-error=maybe-uninitialized >"$dir/build.log" 2>&1
cmake --build "$dir/build" --target tessera_cli -j "$(nproc)" >>"$dir/build.log" 2>&1 ||
	{ tail -20 "$dir/build.log" >&2; exit 1; }
echo "$dir/build/tools/tessera"
