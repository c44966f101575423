/* SPDX-License-Identifier: MIT */
/*
 * `tessera mount --rootfs` and its `tessera umount` (cmd_rootfs.c), for
 * cmd_mount.c.  Both print their errors and return CLI_OK or CLI_FAIL.
 */
#ifndef TESSERA_CMD_ROOTFS_H
#define TESSERA_CMD_ROOTFS_H

#include <stdbool.h>

#include "cli.h"
#include <tessera/mount_stack.h>

/* `tessera mount --rootfs spec arg [--rw] [--suid-dev] [--any-fs]`: puts the
 * stack up; mount_flags: TSR_MOUNT_SUID_DEV, TSR_MOUNT_ANY_FS. */
int cli_rootfs_up(struct cli *cli, const char *spec, const char *arg, bool rw,
		  unsigned mount_flags, unsigned threads);
/* Takes the stack s down in the order it went up (`tessera umount`). */
int cli_rootfs_down(const struct tsr_mount_stack *s, int timeout_s);

#endif /* TESSERA_CMD_ROOTFS_H */
