/* SPDX-License-Identifier: MIT */
/*
 * containerd's filter syntax (snapshotter/src/filters.c), with the cases of
 * containerd's own filters/filter_test.go that apply to snapshots: what
 * parses, what is refused, and what matches.
 */
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/check_run.h"

struct obj {
	const char *name, *parent, *kind;
	const char *labels[4][2];
};

static const char *field(void *arg, char *const *path, size_t n)
{
	const struct obj *o = arg;
	char key[256] = "";

	if (!n)
		return NULL;
	if (!strcmp(path[0], "name"))
		return o->name;
	if (!strcmp(path[0], "parent"))
		return o->parent;
	if (!strcmp(path[0], "kind"))
		return o->kind;
	if (strcmp(path[0], "labels") || !o->labels[0][0])
		return NULL;
	for (size_t i = 1; i < n; i++) {
		if (i > 1)
			strcat(key, ".");
		strncat(key, path[i], sizeof(key) - strlen(key) - 2);
	}
	for (int i = 0; i < 4 && o->labels[i][0]; i++)
		if (!strcmp(o->labels[i][0], key))
			return o->labels[i][1];
	return NULL;
}

static const struct obj foo = { "foo", "", "committed", { { "foo", "true" },
	{ "more complex label with \\ and \"", "present" } } };
static const struct obj bar = { "bar", "foo", "active", { { "bar", "true" },
	{ "containerd.io/snapshot.ref", "sha256:abc" } } };
static const struct obj baz = { "baz", "bar", "view", { { "other", "too complex, yo" } } };

static bool matches(const char *text, const struct obj *o)
{
	struct snap_filter *f;
	char err[256];
	bool m;

	ck_assert_msg(snap_filter_parse(text, &f, err, sizeof(err)) == 0, "%s: %s", text, err);
	m = snap_filter_match(f, field, (void *)o);
	snap_filter_free(f);
	return m;
}

START_TEST(filters_that_parse_match_as_in_containerd)
{
	ck_assert(matches("", &foo));
	ck_assert(matches("name", &baz));
	ck_assert(matches("labels.foo", &foo));
	ck_assert(!matches("labels.foo", &bar));
	ck_assert(matches("labels.foo,name", &foo));
	ck_assert(matches("labels.foo==true", &foo));
	ck_assert(!matches("labels.foo==omg_asdf.asdf-qwer", &foo));
	ck_assert(matches("name==bar", &bar));
	ck_assert(matches("name!=bar", &foo));
	ck_assert(matches("name==bar,labels.bar", &bar));
	ck_assert(matches("labels.other==\"too complex, yo\"", &baz));
	ck_assert(matches("name~=[abc]+,name!=foo", &bar));
	ck_assert(matches("name~=/^b[a-z]{1,2}$/,name!=foo", &baz));
	ck_assert(!matches("name~=|^z|", &baz));
	ck_assert(matches("name==bar,labels.bar==true", &bar));
	ck_assert(!matches("name==bar,labels.bar==wrong", &bar));
	ck_assert(matches("labels.\"more complex label with \\\\ and \\\"\"==present", &foo));
	ck_assert(matches("labels.\"containerd.io/snapshot.ref\"==sha256:abc,parent==\"foo\"",
			  &bar));
	ck_assert(matches("kind==view", &baz));
	ck_assert(!matches("kind~=^(active|committed)$", &baz));
	ck_assert(matches("parent", &foo));  /* present, even empty */
	ck_assert(!matches("name~=(", &foo));  /* does not compile: matches nothing */
}
END_TEST

START_TEST(bad_filters_are_refused)
{
	static const char *const bad[] = {
		"labels.|foo|==omg_asdf.asdf-qwer",
		"labels.?\"x\".post==present",
		"name==foo,",
		"labels.",
		"image~=,id?=?fbaq",
		"labels.ns/key==value",
		"labels.key==/value",
		"name==\"unterminated",
		"name==\"bad \\q escape\"",
		"name==\"nul \\x00\"",
		"name=x",
		"name===x",
		",",
		"\xff\xfe==x",
	};
	struct snap_filter *f;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		ck_assert_msg(snap_filter_parse(bad[i], &f, err, sizeof(err)) == -EINVAL,
			      "parsed: %s", bad[i]);
		ck_assert_msg(strstr(err, "parse error"), "%s: no message", bad[i]);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("snap_filters");
	TCase *tc = tcase_create("filters");

	tcase_add_test(tc, filters_that_parse_match_as_in_containerd);
	tcase_add_test(tc, bad_filters_are_refused);
	suite_add_tcase(s, tc);
	return tsr_run_suite(s);
}
