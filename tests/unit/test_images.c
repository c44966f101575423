/* SPDX-License-Identifier: MIT */
/* imagefmt's images (image_store.h) and names (names.h) over a real store:
 * the records keep blockstore's layout, names resolve image -> volume ->
 * layer; and where the FUSE tree shows them (fuse_server.h). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/fuse_server.h>
#include <tessera/image_store.h>
#include <tessera/names.h>
#include <tessera/store.h>

#include "testutil.h"

/* A one-chunk layer of byte fill, committed from volume vname. */
static struct tsr_layer_id make_layer(struct tsr_store *st, const char *vname, int fill,
				      const char *name)
{
	struct tsr_volume *v;
	struct tsr_layer_id id;
	uint8_t buf[4096];

	memset(buf, fill, sizeof(buf));
	TSR_CK_OK(tsr_volume_create(st, vname, 1 << 20, NULL));
	TSR_CK_OK(tsr_volume_open(st, vname, &v));
	TSR_CK_OK(tsr_volume_write(v, buf, sizeof(buf), 0));
	TSR_CK_OK(tsr_volume_commit(v, name, NULL, &id));
	return id;
}

struct seen {
	char names[4][64];
	struct tsr_layer_id tops[4];
	int n;
};

static int collect(const char *name, const struct tsr_layer_id *top, const void *meta,
		   size_t len, void *arg)
{
	struct seen *s = arg;

	(void)meta;
	(void)len;
	ck_assert_int_lt(s->n, 4);
	snprintf(s->names[s->n], 64, "%s", name);
	s->tops[s->n++] = *top;
	return 0;
}

START_TEST(test_image_records_keep_their_layout)
{
	char dir[4200], longname[TSR_NAME_MAX + 2];
	struct tsr_store *st = tsr_scratch_store("images", dir, sizeof(dir));
	struct tsr_layer_id top, got;
	struct seen seen = { .n = 0 };
	void *val;
	size_t len;

	memset(top.bytes, 0xab, sizeof(top.bytes));
	TSR_CK_OK(tsr_image_put(st, "docker.io/library/busybox:1.36", &top, "{}", 2));
	TSR_CK_OK(tsr_image_put(st, "alpine", &top, NULL, 0));
	/* On disk: record "image"/NAME = top id | meta, as blockstore kept it. */
	TSR_CK_OK(tsr_record_get(st, "image", "docker.io/library/busybox:1.36", &val, &len));
	ck_assert_uint_eq(len, TSR_DIGEST_LEN + 2);
	ck_assert(!memcmp(val, top.bytes, TSR_DIGEST_LEN));
	ck_assert(!memcmp((char *)val + TSR_DIGEST_LEN, "{}", 2));
	free(val);
	/* A record written before the move reads back. */
	TSR_CK_OK(tsr_record_put(st, "image", "old", top.bytes, TSR_DIGEST_LEN));
	TSR_CK_OK(tsr_image_get(st, "old", &got, &val, &len));
	ck_assert(!memcmp(got.bytes, top.bytes, TSR_DIGEST_LEN));
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq((char *)val, "");
	free(val);
	TSR_CK_OK(tsr_image_get(st, "docker.io/library/busybox:1.36", NULL, &val, &len));
	ck_assert_str_eq((char *)val, "{}");
	free(val);
	/* Damaged: too short for a top id. */
	TSR_CK_OK(tsr_record_put(st, "image", "short", "x", 1));
	TSR_CK_RET(tsr_image_get(st, "short", NULL, NULL, NULL), -EBADMSG);
	TSR_CK_OK(tsr_image_list(st, collect, &seen));
	ck_assert_int_eq(seen.n, 3); /* "short" skipped */
	ck_assert_str_eq(seen.names[0], "alpine");
	ck_assert_str_eq(seen.names[1], "docker.io/library/busybox:1.36");
	ck_assert_str_eq(seen.names[2], "old");
	/* Names. */
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	TSR_CK_RET(tsr_image_put(st, "", &top, NULL, 0), -EINVAL);
	TSR_CK_RET(tsr_image_put(st, "..", &top, NULL, 0), -EINVAL);
	TSR_CK_RET(tsr_image_put(st, "a\tb", &top, NULL, 0), -EINVAL);
	TSR_CK_RET(tsr_image_put(st, longname, &top, NULL, 0), -EINVAL);
	TSR_CK_RET(tsr_image_get(st, ".", NULL, NULL, NULL), -ENOENT);
	TSR_CK_RET(tsr_image_remove(st, "."), -ENOENT);
	TSR_CK_OK(tsr_image_remove(st, "alpine"));
	TSR_CK_RET(tsr_image_get(st, "alpine", NULL, NULL, NULL), -ENOENT);
	TSR_CK_RET(tsr_image_remove(st, "alpine"), -ENOENT);
	tsr_store_close(st);
}
END_TEST

START_TEST(test_image_record_and_chain_ids)
{
	char dir[4200], chains[2][TSR_OCI_DIGEST_MAX], *text;
	struct tsr_store *st = tsr_scratch_store("imagerec", dir, sizeof(dir));
	struct tsr_oci_layer layers[2] = { 0 };
	struct tsr_oci_image img = { .n_layers = 2, .layers = layers };
	struct tsr_layer_id ids[2], id, top;
	struct tsr_image_record rec;
	bool reused[2] = { false, true };
	char a[TSR_OCI_DIGEST_MAX], b[TSR_OCI_DIGEST_MAX];

	snprintf(a, sizeof(a), "sha256:%064d", 0);
	memset(a + 7, 'a', 64);
	snprintf(b, sizeof(b), "%s", a);
	memset(b + 7, 'b', 64);
	TSR_CK_OK(tsr_oci_chain_id(NULL, a, chains[0]));
	ck_assert_str_eq(chains[0], a);
	TSR_CK_OK(tsr_oci_chain_id(chains[0], b, chains[1]));
	/* sha256("sha256:aa..a sha256:bb..b") */
	ck_assert_str_eq(chains[1], "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c");

	ids[0] = make_layer(st, "v0", 1, NULL);
	ids[1] = make_layer(st, "v1", 2, NULL);
	snprintf(img.manifest_digest, sizeof(img.manifest_digest), "%s", b);
	snprintf(img.config_digest, sizeof(img.config_digest), "%s", a);
	snprintf(img.platform, sizeof(img.platform), "linux/amd64");
	img.config_json = "{\"os\":\"linux\"}";
	img.config_len = strlen(img.config_json);
	for (int i = 0; i < 2; i++) {
		snprintf(layers[i].digest, sizeof(layers[i].digest), "%s", i ? b : a);
		snprintf(layers[i].diff_id, sizeof(layers[i].diff_id), "%s", i ? b : a);
	}
	TSR_CK_OK(tsr_image_record_write(st, "img", &img, ids, reused, chains));
	TSR_CK_OK(tsr_image_get(st, "img", &top, NULL, NULL));
	ck_assert(!memcmp(top.bytes, ids[1].bytes, TSR_DIGEST_LEN));
	TSR_CK_OK(tsr_image_record_load(st, "img", &rec));
	ck_assert_str_eq(rec.name, "img");
	ck_assert_str_eq(rec.manifest, b);
	ck_assert_str_eq(rec.platform, "linux/amd64");
	ck_assert_uint_eq(rec.n_layers, 2);
	ck_assert_int_gt(rec.imported, 0);
	for (size_t i = 0; i < 2; i++) {
		TSR_CK_OK(tsr_image_record_layer(&rec, i, &id));
		ck_assert(!memcmp(id.bytes, ids[i].bytes, TSR_DIGEST_LEN));
	}
	TSR_CK_RET(tsr_image_record_layer(&rec, 2, &id), -EBADMSG);
	text = tsr_image_record_text(&rec);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, "\"chain_id\": \"sha256:ccd7"));
	ck_assert_ptr_nonnull(strstr(text, "\"image_config\": {"));
	free(text);
	TSR_CK_RET(tsr_image_record_parse("[]", 2, &rec), -EBADMSG);

	/* Chain records: the layer they name, dropped once it is gone. */
	TSR_CK_RET(tsr_oci_chain_get(st, chains[1], &id), -ENOENT);
	TSR_CK_OK(tsr_oci_chain_put(st, chains[0], &ids[0]));
	TSR_CK_OK(tsr_oci_chain_put(st, chains[1], &ids[1]));
	TSR_CK_OK(tsr_oci_chain_get(st, chains[1], &id));
	ck_assert(!memcmp(id.bytes, ids[1].bytes, TSR_DIGEST_LEN));
	tsr_oci_chain_forget(st, &rec, 1); /* the layer is there: kept */
	TSR_CK_OK(tsr_oci_chain_get(st, chains[1], &id));
	TSR_CK_OK(tsr_layer_remove(st, &ids[1], NULL));
	tsr_oci_chain_forget(st, &rec, 1);
	TSR_CK_RET(tsr_oci_chain_get(st, chains[1], &id), -ENOENT);
	TSR_CK_OK(tsr_oci_chain_get(st, chains[0], &id));
	TSR_CK_OK(tsr_record_put(st, "oci-chain", "bad", "x", 1));
	TSR_CK_RET(tsr_oci_chain_get(st, "bad", &id), -EBADMSG);
	tsr_image_record_free(&rec);
	tsr_store_close(st);
}
END_TEST

START_TEST(test_names_resolve_image_volume_layer)
{
	char dir[4200], hex[TSR_ID_HEX_LEN + 1], spec[80];
	struct tsr_store *st = tsr_scratch_store("names", dir, sizeof(dir));
	struct tsr_layer_id base, other;
	struct tsr_name_match m;

	base = make_layer(st, "v0", 1, "base");
	other = make_layer(st, "v1", 2, "other");
	TSR_CK_OK(tsr_image_put(st, "docker.io/x:1", &other, NULL, 0));
	TSR_CK_OK(tsr_image_put(st, "both", &other, NULL, 0));
	TSR_CK_OK(tsr_volume_create(st, "both", 1 << 20, NULL));
	TSR_CK_OK(tsr_volume_create(st, "base", 1 << 20, &base));
	TSR_CK_OK(tsr_volume_create(st, "vol", 1 << 20, NULL));

	TSR_CK_OK(tsr_name_resolve(st, "docker.io/x:1", &m));
	ck_assert_int_eq(m.kind, TSR_NAME_IMAGE);
	ck_assert(!memcmp(m.id.bytes, other.bytes, TSR_DIGEST_LEN));
	TSR_CK_OK(tsr_name_resolve(st, "vol", &m));
	ck_assert_int_eq(m.kind, TSR_NAME_VOLUME);
	ck_assert_str_eq(m.name, "vol");
	TSR_CK_OK(tsr_name_resolve(st, "other", &m));
	ck_assert_int_eq(m.kind, TSR_NAME_LAYER);
	ck_assert(!memcmp(m.id.bytes, other.bytes, TSR_DIGEST_LEN));
	tsr_layer_id_to_hex(&base, hex);
	snprintf(spec, sizeof(spec), "layer:%.10s", hex);
	TSR_CK_OK(tsr_name_resolve(st, spec, &m));
	ck_assert_int_eq(m.kind, TSR_NAME_LAYER);
	ck_assert(!memcmp(m.id.bytes, base.bytes, TSR_DIGEST_LEN));
	TSR_CK_OK(tsr_name_resolve(st, hex, &m));
	ck_assert_int_eq(m.kind, TSR_NAME_LAYER);

	/* Two kinds: an error naming both, in resolution order. */
	TSR_CK_RET(tsr_name_resolve(st, "base", &m), TSR_ERR_AMBIGUOUS);
	ck_assert_int_eq(m.both[0], TSR_NAME_VOLUME);
	ck_assert_int_eq(m.both[1], TSR_NAME_LAYER);
	TSR_CK_RET(tsr_name_resolve(st, "both", &m), TSR_ERR_AMBIGUOUS);
	ck_assert_int_eq(m.both[0], TSR_NAME_IMAGE);
	ck_assert_int_eq(m.both[1], TSR_NAME_VOLUME);
	/* A prefix forces one. */
	TSR_CK_OK(tsr_name_resolve(st, "volume:base", &m));
	ck_assert_int_eq(m.kind, TSR_NAME_VOLUME);
	ck_assert_str_eq(m.name, "base");
	TSR_CK_OK(tsr_name_resolve(st, "layer:base", &m));
	ck_assert_int_eq(m.kind, TSR_NAME_LAYER);
	TSR_CK_OK(tsr_name_resolve(st, "image:both", &m));
	ck_assert_int_eq(m.kind, TSR_NAME_IMAGE);

	/* Nothing, or not a name. */
	TSR_CK_RET(tsr_name_resolve(st, "nothing", &m), -ENOENT);
	ck_assert_int_eq(m.forced, TSR_NAME_ANY);
	TSR_CK_RET(tsr_name_resolve(st, "image:vol", &m), -ENOENT);
	ck_assert_int_eq(m.forced, TSR_NAME_IMAGE);
	ck_assert_str_eq(m.name, "vol");
	TSR_CK_RET(tsr_name_resolve(st, "volume:", &m), -EINVAL);
	TSR_CK_RET(tsr_name_resolve(st, "..", &m), -EINVAL);
	TSR_CK_RET(tsr_name_resolve(st, "layer:a/b", &m), -EINVAL);
	TSR_CK_RET(tsr_name_resolve(st, "a/b", &m), -ENOENT);
	ck_assert_str_eq(tsr_name_kind_str(TSR_NAME_VOLUME), "volume");
	tsr_store_close(st);
}
END_TEST

START_TEST(test_fuse_paths_escape_image_names)
{
	char path[64], longname[TSR_NAME_MAX + 1], file[3 * TSR_NAME_MAX + 1];

	TSR_CK_OK(tsr_fuse_path("/m", TSR_FUSE_IMAGE, "docker.io/x%y:1", path, sizeof(path)));
	ck_assert_str_eq(path, "/m/images/docker.io%2Fx%25y:1");
	TSR_CK_OK(tsr_fuse_path("/m", TSR_FUSE_VOLUME, "v", path, sizeof(path)));
	ck_assert_str_eq(path, "/m/volumes/v");
	TSR_CK_OK(tsr_fuse_path("/m", TSR_FUSE_LAYER, "ab", path, sizeof(path)));
	ck_assert_str_eq(path, "/m/layers/ab");
	TSR_CK_RET(tsr_fuse_path("/m", TSR_FUSE_VOLUME, "v", path, 12), -ENAMETOOLONG);
	/* 255 bytes of name, but longer escaped: no file name can show it. */
	memset(longname, '/', TSR_NAME_MAX);
	longname[TSR_NAME_MAX] = '\0';
	TSR_CK_RET(tsr_fuse_image_file_name(longname, file, sizeof(file)), -ENAMETOOLONG);
	longname[TSR_NAME_MAX / 3] = '\0';
	TSR_CK_OK(tsr_fuse_image_file_name(longname, file, sizeof(file)));
	ck_assert_uint_eq(strlen(file), 3 * (TSR_NAME_MAX / 3));
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		test_image_records_keep_their_layout,
		test_image_record_and_chain_ids,
		test_names_resolve_image_volume_layer,
		test_fuse_paths_escape_image_names,
	};

	return tsr_run_tests("images", 60, tests, sizeof(tests) / sizeof(tests[0]));
}
