#!/bin/bash
# SPDX-License-Identifier: MIT
#
# fetch_fio_source.sh DIR
#
# Fetches the Debian source of the fio package that is INSTALLED on this
# machine into DIR and configures it (./configure --disable-native), so that
# an external ioengine can be compiled against fio's headers with
# `-include config-host.h -I<source>`.  Debian ships no fio headers, and an
# engine must see the same struct layouts as the fio binary that loads it:
# hence the exact installed version, never "the latest".
#
# fio itself is not built; configure only writes config-host.h/.mak.
#
# apt runs against a private sources list and private state/cache
# directories under DIR/.apt, so the system's package lists are left alone
# (no deb-src entry is added to /etc/apt, no system `apt-get update`).
#
# Idempotent: when DIR already holds a configured source of the installed
# version, nothing is fetched.  On success the last line of stdout is the
# absolute path of the configured source tree.  Exit status: 0 on success,
# 1 on failure (with a message on stderr).
#
# Needs: apt-get, dpkg-source (package dpkg-dev), a C compiler, network
# access to the Debian mirror the system's sources name.

set -euo pipefail

die() { echo "fetch_fio_source: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 DIR"
mkdir -p "$1" || die "cannot create $1"
dir=$(cd "$1" && pwd)

command -v dpkg-query >/dev/null || die "dpkg-query not found (not a Debian system?)"
version=$(dpkg-query -W -f='${Version}' fio 2>/dev/null) ||
  die "fio is not installed (dpkg-query -W fio failed)"
[ -n "$version" ] || die "fio is not installed"
srcpkg=$(dpkg-query -W -f='${source:Package}' fio)
# Upstream version: no epoch, no Debian revision ("1:3.33-3" -> "3.33").
upstream=${version#*:}
upstream=${upstream%-*}
src="$dir/fio-$upstream"
stamp="$dir/.fetched-version"

if [ -f "$src/config-host.h" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ]; then
  echo "fetch_fio_source: fio $version source already configured in $src" >&2
  echo "$src"
  exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found"
command -v dpkg-source >/dev/null ||
  die "dpkg-source not found: install the Debian package dpkg-dev"
command -v cc >/dev/null || command -v gcc >/dev/null || die "no C compiler (cc) found"

# ---- a private sources list: deb-src twins of the system's Debian entries ----
# Only entries for this machine's release (its codename and the -updates /
# -security suites of it) are copied: third-party repositories rarely
# publish sources and a 404 would fail the update.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || die "cannot tell the Debian release (/etc/os-release has no VERSION_CODENAME)"

apt_dir="$dir/.apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/cache"
list="$apt_dir/sources.list"
: >"$list"

suite_ok() {
  case "$1" in
    "$codename" | "$codename"-updates | "$codename"-security | "$codename"/updates) return 0 ;;
  esac
  return 1
}

# One-line format: "deb [opts] URI SUITE COMPONENT..."
oneline_files=()
[ -f /etc/apt/sources.list ] && oneline_files+=(/etc/apt/sources.list)
for f in /etc/apt/sources.list.d/*.list; do [ -f "$f" ] && oneline_files+=("$f"); done
for f in "${oneline_files[@]}"; do
  while read -r type rest; do
    [ "$type" = deb ] || continue
    opts=""
    if [[ $rest == \[* ]]; then
      opts="${rest%%]*}]"
      rest="${rest#*]}"
    fi
    read -r uri suite comps <<<"$rest"
    [ -n "${uri:-}" ] && [ -n "${suite:-}" ] || continue
    suite_ok "$suite" || continue
    echo "deb-src $opts $uri $suite $comps" >>"$list"
  done <"$f"
done

# deb822 format (*.sources): stanzas separated by blank lines.
emit_stanza() {
  local t u s c sb
  [ "${st_enabled,,}" = no ] && return 0
  [[ " $st_types " == *" deb "* ]] || return 0
  for u in $st_uris; do
    for s in $st_suites; do
      suite_ok "$s" || continue
      sb=""
      [ -n "$st_signed" ] && sb="[signed-by=$st_signed]"
      echo "deb-src $sb $u $s $st_comps" >>"$list"
    done
  done
}
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  st_types="" st_uris="" st_suites="" st_comps="" st_signed="" st_enabled=""
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      \#*) continue ;;
      "") emit_stanza
          st_types="" st_uris="" st_suites="" st_comps="" st_signed="" st_enabled=""
          continue ;;
    esac
    key=${line%%:*}
    val=${line#*:}
    val=${val#"${val%%[![:space:]]*}"}
    case "${key,,}" in
      types) st_types=$val ;;
      uris) st_uris=$val ;;
      suites) st_suites=$val ;;
      components) st_comps=$val ;;
      signed-by) st_signed=$val ;;
      enabled) st_enabled=$val ;;
    esac
  done <"$f"
  emit_stanza
done

[ -s "$list" ] || die "no Debian '$codename' entry found in /etc/apt/sources.list{,.d} to derive a deb-src line from"
echo "fetch_fio_source: private sources list $list:" >&2
sed 's/^/  /' "$list" >&2

apt_opts=(
  -o "Dir::Etc::SourceList=$list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::Cache::Archives=$apt_dir/archives"
  -o "Dir::Cache::pkgcache=$apt_dir/cache/pkgcache.bin"
  -o "Dir::Cache::srcpkgcache=$apt_dir/cache/srcpkgcache.bin"
  -o "APT::Get::List-Cleanup=false"
)
# As root, apt downloads as the unprivileged _apt user, who may not be able
# to reach a build directory: download as the caller instead (the files go
# to a private directory only).
[ "$(id -u)" -eq 0 ] && apt_opts+=(-o "APT::Sandbox::User=root")

echo "fetch_fio_source: apt-get update (private lists)" >&2
apt-get -q "${apt_opts[@]}" update >&2 || die "apt-get update with the private sources list failed"
# apt-get update exits 0 when an index could not be fetched (it keeps the
# old one, and there is none here): look for a source index.
compgen -G "$apt_dir/lists/*_Sources*" >/dev/null ||
  die "apt-get update fetched no source index (no network, or the mirror has no deb-src?)"

work="$dir/.download"
rm -rf "$work" "$src"
mkdir -p "$work"
echo "fetch_fio_source: apt-get source $srcpkg=$version" >&2
(cd "$work" && apt-get -q "${apt_opts[@]}" source "$srcpkg=$version" >&2) ||
  die "apt-get source $srcpkg=$version failed (is that version still on the mirror?)"
[ -d "$work/fio-$upstream" ] || die "apt-get source did not produce $work/fio-$upstream"
mv "$work/fio-$upstream" "$src"
rm -rf "$work"

echo "fetch_fio_source: ./configure --disable-native in $src" >&2
(cd "$src" && ./configure --disable-native >"$dir/configure.log" 2>&1) ||
  die "fio's configure failed, see $dir/configure.log"
[ -f "$src/config-host.h" ] || die "configure wrote no config-host.h"
echo "$version" >"$stamp"
echo "$src"
