#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is needed, builds, runs
# every test (unit and integration) on a normal build, then the unit tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   tools/test.sh [--no-setup] [--no-asan]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

setup=1 asan=1
for a in "$@"; do
  case "$a" in
    --no-setup) setup=0 ;;
    --no-asan) asan=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

jobs=$(nproc 2>/dev/null || echo 2)
[ "$setup" = 1 ] && bash tools/setup.sh

echo "== build (RelWithDebInfo) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_FIO_ENGINE=ON >/dev/null
cmake --build build -j "$jobs"

status=0
echo "== tests: unit + integration =="
ctest --test-dir build --output-on-failure --timeout 1200 || status=1

if [ "$asan" = 1 ]; then
  echo "== build (ASan + UBSan) =="
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTSR_SANITIZE=ON >/dev/null
  cmake --build build-asan -j "$jobs" --target unit_tests
  echo "== tests: unit under ASan + UBSan =="
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan -L unit --output-on-failure --timeout 1200 || status=1
fi
exit $status
