#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Tests of the tessera command line: exit codes (0 ok, 1 failure, 2 usage),
# one-line error messages, and round trips of data through volumes and
# layers.
#
# Usage: tests/cli/cli_test.sh PATH/TO/tessera
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 PATH/TO/tessera" >&2
  exit 2
fi
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tessera-cli.XXXXXX")
holder_pid=
cleanup() {
  [ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null
  exec 3>&-
  rm -rf "$tmp"
}
trap cleanup EXIT
store=$tmp/store
export TESSERA_STORE=$store

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# t [ENV=VALUE] tessera-args...: runs tessera; sets $rc, $out, $err.
t() {
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}

# expect CODE WORD args...: exit status CODE and, for a failure, exactly one
# line on stderr containing WORD (case-insensitive).
expect() {
  local code=$1 word=$2
  shift 2
  t "$@"
  if [ "$rc" -ne "$code" ]; then
    fail "tessera $*: exit $rc, expected $code (stderr: $err)"
    return
  fi
  if [ "$code" -ne 0 ]; then
    local lines
    lines=$(printf '%s\n' "$err" | grep -c .)
    if [ "$lines" -ne 1 ]; then
      fail "tessera $*: $lines lines on stderr, expected 1: $err"
      return
    fi
    if ! printf '%s' "$err" | grep -qi -- "$word"; then
      fail "tessera $*: stderr lacks '$word': $err"
      return
    fi
  fi
  ok
}

# check DESCRIPTION command...: the command succeeds.
check() {
  local what=$1
  shift
  if "$@"; then ok; else fail "$what"; fi
}

# ---- help and usage errors (no store needed) --------------------------------
expect 0 "" --help
check "--help mentions TESSERA_STORE" grep -q TESSERA_STORE "$tmp/out"
expect 0 "" help volume create
check "help volume create shows usage" grep -q "Usage: tessera volume create" "$tmp/out"
expect 0 "" volume create --help
expect 0 "" layer --help
expect 0 "" help commit
expect 2 "unknown" frobnicate
expect 2 "unknown" volume frobnicate
expect 2 "unknown" help frobnicate
expect 2 "missing" volume
expect 2 "missing" volume create
expect 2 "missing" volume import onlyname
expect 2 "unknown option" volume ls --bogus
expect 2 "at least 1M" --cache 4k volume ls
expect 2 "at least 1M" --cache lots volume ls
expect 2 "needs a value" volume create v --size
expect 2 "size" volume create v --size 12Q
expect 2 "size" volume create v --size 0
expect 2 "size" volume create v
expect 2 "chunk-size" init --chunk-size 3000
expect 2 "chunk-size" init --chunk-size 2M
expect 2 "codec" init --codec lz4
expect 2 "unexpected" init extra
expect 2 "offset" volume write v
t
check "no command: exit 2" [ "$rc" -eq 2 ]

# ---- not a store --------------------------------------------------------------
mkdir "$tmp/notstore"
echo hello >"$tmp/notstore/file"
expect 1 "not a tessera store" --store "$tmp/notstore" volume ls
expect 1 "not empty" --store "$tmp/notstore" init

# ---- init ---------------------------------------------------------------------
expect 0 "" init --chunk-size 64K --codec zstd
expect 1 "already" init
expect 0 "" --store "$tmp/store2" init --chunk-size 4K --codec none
expect 0 "" --store "$tmp/store2" df
check "df shows the chunk size" grep -q "4.0K" "$tmp/out"
check "df shows the codec" grep -q "none" "$tmp/out"

# ---- volumes --------------------------------------------------------------
expect 0 "" volume create v1 --size 1M
expect 1 "exists" volume create v1 --size 1M
expect 0 "" volume create --size 2M v2     # options before positionals
expect 1 "no such volume" volume stat nope
expect 1 "no such volume" volume rm nope
expect 1 "no such volume" volume read nope --length 1
expect 1 "no such layer" layer stat nope
expect 1 "no such layer" volume create v3 --parent nope

# write + read round trip, at an offset spanning two 64 KiB chunks
head -c 100000 /dev/urandom >"$tmp/data"
expect 0 "" volume write v1 --offset 60000 "$tmp/data"
"$bin" volume read v1 --offset 60000 --length 100000 >"$tmp/back" 2>"$tmp/err"
check "read back equals written" cmp -s "$tmp/data" "$tmp/back"
"$bin" volume read v1 --offset 0 --length 60000 >"$tmp/back" 2>"$tmp/err"
check "unwritten bytes read as zeros" cmp -s "$tmp/back" <(head -c 60000 /dev/zero)
printf 'stdin bytes' | "$bin" volume write v1 --offset 4K - 2>"$tmp/err"
check "write from stdin" [ "$("$bin" volume read v1 --offset 4K --length 11)" = "stdin bytes" ]

# past the end
expect 1 "past" volume write v1 --offset 1000000 "$tmp/data"
expect 1 "past" volume read v1 --offset 1M --length 1
expect 1 "past" volume write v1 --offset 2M "$tmp/data"
check "failed write left the bytes alone" \
  cmp -s <("$bin" volume read v1 --offset 1000000 --length 48576) <(head -c 48576 /dev/zero)

expect 0 "" volume ls
expect 0 "" --cache 512M volume ls
check "--cache 512M: volume ls lists v1" grep -q "^v1 " "$tmp/out"
check "volume ls lists v1 and v2" \
  sh -c "grep -q '^v1 ' '$tmp/out' && grep -q '^v2 ' '$tmp/out'"
expect 0 "" volume stat v1
check "volume stat shows the size" grep -q "^size: *1048576" "$tmp/out"

# import / export round trip: random, zeros, random, odd tail
{ head -c 300K /dev/urandom; head -c 2M /dev/zero; head -c 700K /dev/urandom; head -c 1234 /dev/urandom; } >"$tmp/image"
expect 0 "" volume import img "$tmp/image"
expect 1 "exists" volume import img "$tmp/image"
expect 1 "" volume import img2 "$tmp/missing-file"
expect 0 "" volume export img "$tmp/exported"
check "export equals import" cmp -s "$tmp/image" "$tmp/exported"
"$bin" volume export img - >"$tmp/exported2" 2>"$tmp/err"
check "export to stdout equals import" cmp -s "$tmp/image" "$tmp/exported2"
expect 0 "" volume stat img
check "imported volume has the file's size" \
  grep -q "^size: *$(stat -c %s "$tmp/image") " "$tmp/out"

# ---- commit and layers ------------------------------------------------------
expect 0 "" commit img --name base
base_id=$out
check "commit prints 64 hex digits" sh -c "echo '$base_id' | grep -qxE '[0-9a-f]{64}'"
expect 1 "no such volume" volume stat img
expect 0 "" layer stat base
check "layer stat by name shows the id" grep -q "$base_id" "$tmp/out"
expect 0 "" layer stat "$base_id"
check "layer stat by full id shows the name" grep -q "base" "$tmp/out"
expect 0 "" layer stat "${base_id:0:8}"
# a 4-digit prefix of no layer
for p in $(printf '%04x\n' $(seq 0 64)); do
  case "$base_id" in "$p"*) continue ;; esac
  nomatch=$p
  break
done
expect 1 "no such layer" layer stat "$nomatch"

expect 0 "" volume create child --parent base
expect 0 "" volume export child "$tmp/child-exported"
check "a child volume reads as its parent layer" cmp -s "$tmp/image" "$tmp/child-exported"

# ---- outputs that are not new regular files ---------------------------------
# A character device (a /dev/null of our own) and a FIFO take an export and
# stay in place: fsync's EINVAL there is no failure, and an export never
# removes a path it did not create.
if [ "$(id -u)" = 0 ] && mknod "$tmp/null" c 1 3 2>/dev/null; then
  expect 0 "" layer export base "$tmp/null"
  check "layer export to a character device leaves it" [ -c "$tmp/null" ]
  expect 0 "" volume export child "$tmp/null"
  check "volume export to a character device leaves it" [ -c "$tmp/null" ]
else
  echo "note: not root: no character device to export to" >&2
fi
expect 0 "" layer export base "$tmp/base.blob"
mkfifo "$tmp/out.fifo"
cat "$tmp/out.fifo" >"$tmp/fifo-blob" &
expect 0 "" layer export base "$tmp/out.fifo"
wait $!
check "layer export to a FIFO leaves it" [ -p "$tmp/out.fifo" ]
check "layer export through a FIFO writes the blob" cmp -s "$tmp/base.blob" "$tmp/fifo-blob"
cat "$tmp/out.fifo" >"$tmp/fifo-image" &
expect 0 "" volume export child "$tmp/out.fifo"
wait $!
check "volume export to a FIFO leaves it" [ -p "$tmp/out.fifo" ]
check "volume export through a FIFO writes the image" cmp -s "$tmp/image" "$tmp/fifo-image"
# An existing regular file is rewritten (truncated first), not replaced.
printf 'old contents, longer than nothing\n' >"$tmp/existing"
ino=$(stat -c %i "$tmp/existing")
expect 0 "" volume export child "$tmp/existing"
check "volume export rewrites an existing file in place" \
  sh -c "[ \"\$(stat -c %i '$tmp/existing')\" = $ino ] && cmp -s '$tmp/image' '$tmp/existing'"
expect 0 "" layer export base "$tmp/existing"
check "layer export rewrites an existing file in place" \
  sh -c "[ \"\$(stat -c %i '$tmp/existing')\" = $ino ] && cmp -s '$tmp/base.blob' '$tmp/existing'"

expect 2 "size" volume create child2 --parent base --size 12Q
expect 1 "" volume create small --parent base --size 4K

expect 0 "" layer ls
check "layer ls lists base" grep -q "^${base_id:0:12} .*base" "$tmp/out"
expect 1 "in use" layer rm base
expect 0 "" layer stat base

# a second layer on top of the first
expect 0 "" volume write child --offset 0 "$tmp/data"
expect 0 "" commit child --name top
top_id=$out
expect 0 "" layer stat top
check "top's parent is base" grep -q "^parent: *$base_id" "$tmp/out"
check "top has depth 2" grep -q "^depth: *2" "$tmp/out"
expect 1 "" commit v2 --name top              # the name is taken
t volume stat v2
[ "$rc" -eq 0 ] || echo "note: the failed commit removed volume v2" >&2

# removal: the child layer first, by name; then base by id prefix
expect 1 "in use" layer rm base
expect 0 "" layer rm top
expect 1 "no such layer" layer stat "$top_id"
expect 0 "" layer rm "${base_id:0:10}"
expect 1 "no such layer" layer stat base
expect 0 "" df

# ---- an ambiguous id prefix ------------------------------------------------
# Layer ids are digests: commit tiny layers of distinct sizes until two ids
# share their first 4 hex digits (expected after ~320; ids are deterministic,
# so every run does the same work).
amb=$tmp/amb
"$bin" --store "$amb" init >/dev/null 2>&1
prefix=
for i in $(seq 1 2000); do
  if ! "$bin" --store "$amb" volume create "v$i" --size $((i * 512)) 2>/dev/null ||
     ! "$bin" --store "$amb" commit "v$i" >/dev/null 2>&1; then
    break
  fi
  if [ $((i % 25)) -eq 0 ]; then
    prefix=$("$bin" --store "$amb" layer ls | awk 'NR > 1 { print substr($1, 1, 4) }' |
             sort | uniq -d | head -n 1)
    [ -n "$prefix" ] && break
  fi
done
if [ -n "$prefix" ]; then
  expect 1 "ambiguous" --store "$amb" layer stat "$prefix"
  echo "ambiguous prefix after $i layers: $err"
  matches=$(printf '%s' "$err" | grep -o "${prefix}[0-9a-f]*" | sort -u | wc -l)
  check "the ambiguous error lists both layers ($err)" [ "$matches" -ge 2 ]
  expect 1 "ambiguous" --store "$amb" layer rm "$prefix"
else
  fail "no two of $i layers share a 4-digit id prefix"
fi

# ---- a store held by another process ------------------------------------------
trap '' PIPE
mkfifo "$tmp/fifo"
"$bin" volume write v1 --offset 0 - <"$tmp/fifo" >/dev/null 2>&1 &
holder_pid=$!
exec 3>"$tmp/fifo"          # unblocks the holder's open of the fifo
locked=no
# Wait (up to 30 s on a loaded machine) until the holder owns the store: the
# lock file names it.  Asking earlier could take the lock from under it.
for _ in $(seq 1 300); do
  [ "$(tr -d " " <"$store/lock" 2>/dev/null)" = "$holder_pid" ] && break
  sleep 0.1
done
t volume ls
if [ "$rc" -eq 1 ] && printf '%s' "$err" | grep -q "locked by pid $holder_pid"; then
  locked=yes
fi
check "a second process is told the store is locked by pid $holder_pid" [ "$locked" = yes ]
printf 'x' >&3 || true     # the holder may be gone if it failed; no SIGPIPE death
exec 3>&-
wait "$holder_pid"
check "the holder finished its write" [ $? -eq 0 ]
holder_pid=
check "the lock is released" "$bin" volume ls >/dev/null

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
