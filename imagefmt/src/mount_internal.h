/* SPDX-License-Identifier: MIT */
/*
 * What the mount_*.c files of the mount stack share (see
 * <tessera/mount_stack.h>).  Private to them.
 */
#ifndef TESSERA_MOUNT_INTERNAL_H
#define TESSERA_MOUNT_INTERNAL_H

#include <stddef.h>

/* Reads the small file path into buf, NUL-terminated: -EBADMSG when it
 * does not fit in size - 1 bytes. */
int mount_read_small(const char *path, char *buf, size_t size);

/* Makes dir and its missing parents (mode 0700). */
int mount_mkdir_p(const char *dir);

#endif /* TESSERA_MOUNT_INTERNAL_H */
