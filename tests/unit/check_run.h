/* SPDX-License-Identifier: MIT */
/*
 * Running a Check suite as a test binary's main: the one place the runner
 * boilerplate lives.  Needs nothing of tessera, so the tests of every
 * module include it (testutil.h does too).
 */
#ifndef TSR_CHECK_RUN_H
#define TSR_CHECK_RUN_H

#include <check.h>
#include <stddef.h>
#include <stdlib.h>

/* Runs suite s (freed with the runner): the exit status of a test binary. */
static inline int tsr_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Runs tests[0..n) as one suite of one test case, both called name, each
 * test given timeout_s; returns the process's exit status. */
static inline int tsr_run_tests(const char *name, int timeout_s, const TTest *const *tests,
				size_t n)
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout_s);
	for (size_t i = 0; i < n; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	return tsr_run_suite(s);
}

#endif /* TSR_CHECK_RUN_H */
