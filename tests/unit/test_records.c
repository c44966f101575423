/* SPDX-License-Identifier: MIT */
/* Front-end records and layer holds: stored, listed by prefix, durable. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/store.h>

#include "testutil.h"

struct seen {
	char keys[8][64];
	int n;
};

static int collect(const char *key, const void *val, size_t len, void *arg)
{
	struct seen *s = arg;

	ck_assert_int_lt(s->n, 8);
	ck_assert_uint_eq(len, strlen(key) + 1);
	ck_assert_str_eq((const char *)val, key);
	snprintf(s->keys[s->n++], 64, "%s", key);
	return 0;
}

START_TEST(test_records_roundtrip_list_and_persist)
{
	char dir[4200];
	struct tsr_store *st = tsr_scratch_store("records", dir, sizeof(dir));
	const char *keys[] = { "default/1/a", "default/2/b", "other/3/c" };
	struct seen seen = { .n = 0 };
	void *val;
	size_t len;

	for (int i = 0; i < 3; i++)
		TSR_CK_OK(tsr_record_put(st, "snapshot", keys[i], keys[i], strlen(keys[i]) + 1));
	TSR_CK_OK(tsr_record_put(st, "image", "default/1/a", "x", 1));
	TSR_CK_OK(tsr_record_list(st, "snapshot", "default/", collect, &seen));
	ck_assert_int_eq(seen.n, 2);
	ck_assert_str_eq(seen.keys[0], "default/1/a");
	ck_assert_str_eq(seen.keys[1], "default/2/b");
	/* Reopen: records are durable, namespaces separate. */
	tsr_store_close(st);
	TSR_CK_OK(tsr_store_open(dir, NULL, &st));
	TSR_CK_OK(tsr_record_get(st, "image", "default/1/a", &val, &len));
	ck_assert_uint_eq(len, 1);
	ck_assert_int_eq(((char *)val)[0], 'x');
	free(val);
	TSR_CK_OK(tsr_record_del(st, "snapshot", "default/1/a"));
	TSR_CK_RET(tsr_record_get(st, "snapshot", "default/1/a", &val, &len), -ENOENT);
	TSR_CK_RET(tsr_record_del(st, "snapshot", "default/1/a"), -ENOENT);
	seen.n = 0;
	TSR_CK_OK(tsr_record_list(st, "snapshot", "", collect, &seen));
	ck_assert_int_eq(seen.n, 2);
	/* Bad names. */
	TSR_CK_RET(tsr_record_put(st, "", "k", "v", 1), -EINVAL);
	TSR_CK_RET(tsr_record_put(st, "ns", "", "v", 1), -EINVAL);
	char longkey[TSR_RECORD_KEY_MAX + 2];
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	TSR_CK_RET(tsr_record_put(st, "ns", longkey, "v", 1), -EINVAL);
	tsr_store_close(st);
	tsr_scratch_cleanup();
}
END_TEST

START_TEST(test_layer_hold_keeps_layer_until_last_remove)
{
	char dir[4200];
	struct tsr_store *st = tsr_scratch_store("hold", dir, sizeof(dir));
	struct tsr_volume *v;
	struct tsr_layer_id id;
	struct tsr_layer_info info;
	uint8_t buf[4096];

	memset(buf, 0x5a, sizeof(buf));
	TSR_CK_OK(tsr_volume_create(st, "v", 1 << 20, NULL));
	TSR_CK_OK(tsr_volume_open(st, "v", &v));
	TSR_CK_OK(tsr_volume_write(v, buf, sizeof(buf), 8192));
	TSR_CK_OK(tsr_volume_commit(v, NULL, NULL, &id));
	TSR_CK_OK(tsr_layer_hold(st, &id));
	TSR_CK_OK(tsr_layer_stat(st, &id, &info));
	ck_assert_uint_eq(info.holds, 2);
	TSR_CK_OK(tsr_layer_remove(st, &id, NULL));
	TSR_CK_OK(tsr_layer_stat(st, &id, &info));
	ck_assert_uint_eq(info.holds, 1);
	TSR_CK_OK(tsr_layer_remove(st, &id, NULL));
	TSR_CK_RET(tsr_layer_stat(st, &id, &info), -ENOENT);
	TSR_CK_RET(tsr_layer_hold(st, &id), -ENOENT);
	tsr_store_close(st);
	tsr_scratch_cleanup();
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		test_records_roundtrip_list_and_persist,
		test_layer_hold_keeps_layer_until_last_remove,
	};

	return tsr_run_tests("records", 60, tests, sizeof(tests) / sizeof(tests[0]));
}
