#!/usr/bin/env bash
# Builds (once, cached) what a QEMU guest for the vhost tests boots: a
# Debian kernel and a busybox initramfs with the virtio and ext4 modules,
# mke2fs/e2fsck (with their libraries) and the /init of tests/vhost/guest.
#
# Usage: guest_image.sh
# Prints the cache directory (vmlinuz, base.cpio) on stdout.  Exits 77 with
# a reason on stderr when the kernel or busybox cannot be obtained.
# Cache: /var/tmp/tessera-test-cache/vhost-guest-<kernel version>
# ($TSR_TEST_CACHE overrides the parent directory).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache_root=${TSR_TEST_CACHE:-/var/tmp/tessera-test-cache}
skip() { echo "guest_image.sh: SKIP: $*" >&2; exit 77; }

command -v apt-cache >/dev/null || skip "no apt-cache to find a Debian kernel"
busybox=/bin/busybox
[ -x "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
  skip "no static busybox (install busybox-static)"
for t in mke2fs e2fsck; do
  command -v "$t" >/dev/null || skip "no $t on the host (e2fsprogs)"
done

kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
       awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || skip "apt-cache does not know linux-image-amd64"
kver=${kpkg#linux-image-}
dir=$cache_root/vhost-guest-$kver
# The /init is part of the image: a changed init makes a new cache entry.
stamp=$(cat "$here/guest/init" | sha256sum | cut -c1-12)
if [ -f "$dir/ready" ] && [ "$(cat "$dir/ready")" = "$stamp" ]; then
  echo "$dir"
  exit 0
fi

mkdir -p "$cache_root"
work=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "guest_image.sh: building the guest image for $kver in $dir" >&2
(cd "$work" && apt-get download "$kpkg" >/dev/null 2>"$work/apt.err") ||
  skip "apt-get download $kpkg failed: $(tail -1 "$work/apt.err")"
dpkg -x "$work"/linux-image-*.deb "$work/x"
mods=$work/x/lib/modules/$kver/kernel
ir=$work/ir
mkdir -p "$ir"/{bin,sbin,proc,sys,dev,mnt,tmp,etc,lib/modules,tests}
cp "$busybox" "$ir/bin/busybox"
# Load order (no modules.dep in the package; depmod runs at install).
for m in drivers/virtio/virtio_ring drivers/virtio/virtio \
         drivers/virtio/virtio_pci_modern_dev \
         drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci \
         drivers/block/virtio_blk lib/crc16 fs/mbcache fs/jbd2/jbd2 \
         crypto/crc32c_generic fs/ext4/ext4; do
  cp "$mods/$m.ko" "$ir/lib/modules/" ||
    skip "kernel $kver has no module $m"
done
for t in mke2fs e2fsck; do
  bin=$(command -v "$t")
  cp "$bin" "$ir/sbin/"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$ir$(dirname "$lib")"
    cp -L "$lib" "$ir$lib"
  done
done
ln -s mke2fs "$ir/sbin/mkfs.ext4"
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$ir/etc/"
install -m 755 "$here/guest/init" "$ir/init"
(cd "$ir" && find . | "$busybox" cpio -o -H newc 2>/dev/null) > "$work/base.cpio"
mkdir -p "$work/out"
cp "$work/x/boot/vmlinuz-$kver" "$work/out/vmlinuz"
mv "$work/base.cpio" "$work/out/"
echo "$stamp" > "$work/out/ready"
rm -rf "$dir"
mv "$work/out" "$dir"
echo "$dir"
