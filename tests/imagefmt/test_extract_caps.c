/* SPDX-License-Identifier: MIT */
/*
 * The default extraction caps of image import (oci_image.h:
 * tsr_oci_extract_cap): what a small archive may expand to is bounded by
 * the destination's free space less a margin, and by a fixed ceiling,
 * however much space there is.
 */
#include <tessera/oci_image.h>

#include <check.h>
#include <errno.h>
#include <stdint.h>

#include "../unit/testutil.h"

#define GIB (1ull << 30)

START_TEST(cap_is_free_space_less_a_margin)
{
	uint64_t free_bytes = 10 * GIB;

	ck_assert_uint_eq(tsr_oci_extract_cap(free_bytes),
			  free_bytes - TSR_OCI_EXTRACT_MARGIN - free_bytes / 10);
	ck_assert_uint_lt(tsr_oci_extract_cap(free_bytes), free_bytes);
}
END_TEST

START_TEST(cap_has_a_ceiling)
{
	ck_assert_uint_eq(tsr_oci_extract_cap(UINT64_MAX), TSR_OCI_EXTRACT_CEILING);
	ck_assert_uint_eq(tsr_oci_extract_cap(100 * TSR_OCI_EXTRACT_CEILING),
			  TSR_OCI_EXTRACT_CEILING);
}
END_TEST

START_TEST(a_full_disk_takes_nothing)
{
	/* 1, not 0: 0 would mean "no cap" to tsr_oci_image_open. */
	ck_assert_uint_eq(tsr_oci_extract_cap(0), 1);
	ck_assert_uint_eq(tsr_oci_extract_cap(TSR_OCI_EXTRACT_MARGIN), 1);
}
END_TEST

START_TEST(cap_grows_with_free_space)
{
	uint64_t prev = 0;

	for (uint64_t f = 0; f < 2 * TSR_OCI_EXTRACT_CEILING; f += GIB / 3) {
		uint64_t cap = tsr_oci_extract_cap(f);

		ck_assert_uint_ge(cap, prev);
		ck_assert_uint_le(cap, f > 1 ? f : 1);
		prev = cap;
	}
}
END_TEST

START_TEST(cap_for_a_path_uses_its_filesystem)
{
	uint64_t cap = 0;

	ck_assert_int_eq(tsr_oci_extract_cap_for("/", &cap), 0);
	ck_assert_uint_ge(cap, 1);
	ck_assert_uint_le(cap, TSR_OCI_EXTRACT_CEILING);
	ck_assert_int_eq(tsr_oci_extract_cap_for("/nonexistent/tessera", &cap), -ENOENT);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		cap_is_free_space_less_a_margin,
		cap_has_a_ceiling,
		a_full_disk_takes_nothing,
		cap_grows_with_free_space,
		cap_for_a_path_uses_its_filesystem,
	};

	return tsr_run_tests("extract_caps", 30, tests, sizeof(tests) / sizeof(tests[0]));
}
