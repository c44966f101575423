#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# What `tessera mount --rootfs` lets an image do on the host
# (docs/security.md): an image carrying a setuid-root binary and a
# world-writable device node, mounted with --rootfs, is nosuid,nodev
# (findmnt), the binary run by an unprivileged user (setpriv) does not gain
# root, and the device node cannot be opened; with --suid-dev both take
# effect again (so the checks can fail).  A filesystem type outside the
# allowlist (a minix image) is refused before anything is mounted, and
# mounts with --any-fs when the kernel knows the type.
#
# Usage: rootfs_policy.sh TESSERA_CLI.  Exit 0 pass, 1 fail, 77 skip.
set -euo pipefail
CLI=${1:?usage: rootfs_policy.sh TESSERA_CLI}
skip() { echo "skipped: rootfs_policy: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
[ -c /dev/fuse ] && [ -c /dev/loop-control ] || skip "needs /dev/fuse and loop devices"
for tool in mkfs.ext4 mkfs.minix setpriv findmnt mknod; do
	command -v "$tool" >/dev/null || skip "needs $tool"
done

W=$(mktemp -d "${TMPDIR:-/tmp}/tsr-policy-XXXXXX")
chmod 755 "$W"     # user nobody walks to the mount
S=$W/store R=$W/root
mkdir "$R"
cleanup() {
	mountpoint -q "$R" && { "$CLI" --store "$S" umount "$R" >/dev/null 2>&1 || umount -l "$R"; }
	# The private FUSE daemon of the store goes with its last stack.
	rm -rf "$W"
}
trap cleanup EXIT
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
t() { "$CLI" --store "$S" "$@"; }

# An ext4 image as a hostile image would be: /id is setuid root (a copy of
# id(1), which prints the effective uid), /null a world-writable device node.
mkdir -p "$W/tree"
chmod 755 "$W/tree"
cp "$(command -v id)" "$W/tree/id"
chown root:root "$W/tree/id"
chmod 4755 "$W/tree/id"
mknod -m 666 "$W/tree/null" c 1 3
truncate -s 64M "$W/img"
mkfs.ext4 -q -F -d "$W/tree" "$W/img"
t init >/dev/null
t volume import hostile "$W/img" >/dev/null
t commit hostile --name hostile >/dev/null

# 1. Default: nosuid,nodev.
t mount --rootfs hostile "$R" >/dev/null
opts=$(findmnt -no OPTIONS "$R")
case ",$opts," in
*,nosuid,*nodev,*) ok "mounted nosuid,nodev ($opts)" ;;
*) bad "mount options lack nosuid,nodev: $opts" ;;
esac
[ -u "$R/id" ] && ok "the image's setuid bit is there (-rwsr-xr-x)" || bad "setuid bit missing in the image"
euid=$(setpriv --reuid nobody --regid nogroup --clear-groups "$R/id" -u)
[ "$euid" != 0 ] && ok "setuid-root binary run as nobody: euid $euid, not root" ||
	bad "setuid-root binary gave nobody euid 0"
if cat "$R/null" >/dev/null 2>"$W/err"; then bad "the image's device node could be opened"
else ok "the image's device node cannot be opened: $(cat "$W/err")"; fi
t umount "$R" >/dev/null

# 2. --suid-dev: the image's setuid bit and device node take effect.
t mount --rootfs hostile "$R" --suid-dev > "$W/out"
grep -q "setuid and devices honoured" "$W/out" && ok "--suid-dev says so: $(cat "$W/out")" ||
	bad "--suid-dev output: $(cat "$W/out")"
opts=$(findmnt -no OPTIONS "$R")
case ",$opts," in
*,nosuid,*|*,nodev,*) bad "--suid-dev still mounted $opts" ;;
*) ok "--suid-dev mounts without nosuid,nodev ($opts)" ;;
esac
euid=$(setpriv --reuid nobody --regid nogroup --clear-groups "$R/id" -u)
[ "$euid" = 0 ] && ok "with --suid-dev the same binary gives euid 0 (the check above can fail)" ||
	bad "with --suid-dev the binary gave euid $euid"
cat "$R/null" >/dev/null && ok "with --suid-dev the device node opens" || bad "device node with --suid-dev"
t umount "$R" >/dev/null

# 3. A filesystem type outside the allowlist: refused, nothing mounted.
truncate -s 8M "$W/minix"
mkfs.minix "$W/minix" >/dev/null
t volume import minix "$W/minix" >/dev/null
if t mount --rootfs minix "$R" 2>"$W/err"; then bad "a minix filesystem was mounted"
elif grep -q "holds a minix filesystem; tessera mounts ext2, ext3, ext4, xfs" "$W/err"; then
	ok "minix refused: $(cat "$W/err")"
else bad "unclear refusal: $(cat "$W/err")"; fi
mountpoint -q "$R" && bad "something is mounted at $R after the refusal" || ok "nothing mounted after the refusal"
[ -z "$(ls /run/tessera/rootfs 2>/dev/null | while read -r f; do grep -l "mountpoint=$R\$" "/run/tessera/rootfs/$f"; done)" ] &&
	ok "no stack record left" || bad "a stack record was left for $R"
# --any-fs lifts the allowlist (the kernel may still lack the driver).
if t mount --rootfs minix "$R" --any-fs >/dev/null 2>"$W/err"; then
	ok "--any-fs mounts minix"
	t umount "$R" >/dev/null
elif grep -q "minix" "$W/err" && ! grep -q "tessera mounts ext2" "$W/err"; then
	ok "--any-fs passes the policy; the kernel refused: $(cat "$W/err")"
else
	bad "--any-fs: $(cat "$W/err")"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
