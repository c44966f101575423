/* SPDX-License-Identifier: MIT */
/*
 * The mount options of the mount stack (tsr_mount_options): the option
 * list the snapshotter hands containerd and the mount(2) flags and data of
 * `mount --rootfs` and image import are one choice, in two forms.
 */
#include <tessera/mount_stack.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include "../unit/check_run.h"

/* The list as mount(8) -o takes it: "rw,noinit_itable". */
static void join(const struct tsr_mount_options *o, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; i < o->n; i++)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? "," : "", o->list[i]);
}

static void check(const char *type, unsigned flags, const char *list, unsigned long ms_flags,
		  const char *data)
{
	struct tsr_mount_options o;
	char buf[256];

	ck_assert_int_eq(tsr_mount_options(type, flags, &o), 0);
	join(&o, buf, sizeof(buf));
	ck_assert_str_eq(buf, list);
	ck_assert_uint_eq(o.ms_flags, ms_flags);
	ck_assert_str_eq(o.data, data);
}

#define NOSUID_NODEV (MS_NOSUID | MS_NODEV)

START_TEST(ext4_writable_gets_noinit_itable_read_only_noload)
{
	/* The snapshotter's lists (docs/snapshotter.md, containerd.sh):
	 * handed to a container runtime, so setuid and devices stay. */
	check("ext4", TSR_MOUNT_SUID_DEV, "rw,noinit_itable", 0, "noinit_itable");
	check("ext4", TSR_MOUNT_SUID_DEV | TSR_MOUNT_READ_ONLY, "ro,noload", MS_RDONLY,
	      "noload");
}
END_TEST

START_TEST(image_content_is_nosuid_nodev_by_default)
{
	/* `mount --rootfs` and the import mount: the host's view of image
	 * content. */
	check("ext4", 0, "rw,nosuid,nodev,noinit_itable", NOSUID_NODEV, "noinit_itable");
	check("ext4", TSR_MOUNT_READ_ONLY, "ro,nosuid,nodev,noload", MS_RDONLY | NOSUID_NODEV,
	      "noload");
}
END_TEST

START_TEST(other_types_get_their_own_or_none)
{
	check("ext3", TSR_MOUNT_READ_ONLY, "ro,nosuid,nodev,noload", MS_RDONLY | NOSUID_NODEV,
	      "noload");
	check("ext3", 0, "rw,nosuid,nodev", NOSUID_NODEV, "");
	check("xfs", TSR_MOUNT_READ_ONLY, "ro,nosuid,nodev,norecovery",
	      MS_RDONLY | NOSUID_NODEV, "norecovery");
	check("xfs", TSR_MOUNT_SUID_DEV, "rw", 0, "");
	check("btrfs", TSR_MOUNT_READ_ONLY | TSR_MOUNT_ANY_FS, "ro,nosuid,nodev",
	      MS_RDONLY | NOSUID_NODEV, "");
}
END_TEST

START_TEST(types_outside_the_allowlist_are_refused)
{
	static const char *const refused[] = { "btrfs", "erofs", "vfat", "squashfs", "ext44", "" };
	struct tsr_mount_options o;

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		ck_assert_int_eq(tsr_mount_options(refused[i], 0, &o), TSR_ERR_FS_NOT_ALLOWED);
		ck_assert_int_eq(tsr_mount_options(refused[i], TSR_MOUNT_SUID_DEV, &o),
				 TSR_ERR_FS_NOT_ALLOWED);
	}
	ck_assert_int_eq(tsr_mount_options("ext2", 0, &o), 0);
}
END_TEST

START_TEST(unknown_flags_are_refused)
{
	struct tsr_mount_options o;

	ck_assert_int_eq(tsr_mount_options("ext4", 1u << 30, &o), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mount_options");
	TCase *tc = tcase_create("options");

	suite_add_tcase(s, tc);
	tcase_add_test(tc, ext4_writable_gets_noinit_itable_read_only_noload);
	tcase_add_test(tc, image_content_is_nosuid_nodev_by_default);
	tcase_add_test(tc, other_types_get_their_own_or_none);
	tcase_add_test(tc, types_outside_the_allowlist_are_refused);
	tcase_add_test(tc, unknown_flags_are_refused);
	return tsr_run_suite(s);
}
