#!/usr/bin/env bash
# Installs every Debian package tessera needs to build, test and benchmark.
# Idempotent: packages already present are left alone by apt-get.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config
  # libtessera and the tessera command
  libssl-dev zlib1g-dev libzstd-dev liblmdb-dev
  libfuse3-dev fuse3 liburing-dev libblkid-dev libarchive-dev libjansson-dev
  # unit tests
  check
  # integration tests and benchmarks
  e2fsprogs fio util-linux
  # bench/run plots
  gnuplot-nox
  # the fio engine (bench/fio_engine): apt-get source fio needs dpkg-source
  dpkg-dev
  # benchmarks (bench/run)
  jq
  # vhost-user-blk tests: QEMU guests, their initramfs, libFuzzer targets
  qemu-system-x86 qemu-utils busybox-static clang-14 libclang-rt-14-dev
  # OCI image tests: images built offline, compared with umoci unpack
  umoci skopeo debootstrap libcap2-bin attr python3
  # containerd snapshotter: HTTP/2, protobuf, the containerd API protos; tests
  libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev
  golang-github-containerd-containerd-dev containerd runc python3-hpack
  # containerd's snapshotter conformance suite (tests/snapshotter/suite.sh)
  golang-go
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
