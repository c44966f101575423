/* SPDX-License-Identifier: MIT */
/* Images as blockstore records: namespace "image", key the image's name,
 * value the top layer id (32 bytes) followed by the importer's metadata. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/image_store.h>

#define IMAGE_NS "image"
#define RECORD_VALUE_MAX (16u << 20) /* tsr_record_put's limit */

bool tsr_image_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > TSR_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int tsr_image_put(struct tsr_store *store, const char *name, const struct tsr_layer_id *top,
		  const void *meta, size_t len)
{
	uint8_t *val;
	int r;

	if (!tsr_image_name_ok(name))
		return -EINVAL;
	if (len > RECORD_VALUE_MAX - TSR_DIGEST_LEN)
		return -EFBIG;
	val = malloc(TSR_DIGEST_LEN + len);
	if (!val)
		return -ENOMEM;
	memcpy(val, top->bytes, TSR_DIGEST_LEN);
	if (len)
		memcpy(val + TSR_DIGEST_LEN, meta, len);
	r = tsr_record_put(store, IMAGE_NS, name, val, TSR_DIGEST_LEN + len);
	free(val);
	return r;
}

int tsr_image_get(struct tsr_store *store, const char *name, struct tsr_layer_id *ret_top,
		  void **ret_meta, size_t *ret_len)
{
	void *val;
	size_t len;
	int r;

	if (!tsr_image_name_ok(name))
		return -ENOENT;
	r = tsr_record_get(store, IMAGE_NS, name, &val, &len);
	if (r)
		return r;
	if (len < TSR_DIGEST_LEN) {
		free(val);
		return -EBADMSG;
	}
	if (ret_top)
		memcpy(ret_top->bytes, val, TSR_DIGEST_LEN);
	if (ret_meta) {
		memmove(val, (uint8_t *)val + TSR_DIGEST_LEN, len - TSR_DIGEST_LEN);
		((char *)val)[len - TSR_DIGEST_LEN] = '\0'; /* room: len >= 32 */
		*ret_meta = val;
		if (ret_len)
			*ret_len = len - TSR_DIGEST_LEN;
	} else {
		free(val);
	}
	return 0;
}

int tsr_image_remove(struct tsr_store *store, const char *name)
{
	return tsr_image_name_ok(name) ? tsr_record_del(store, IMAGE_NS, name) : -ENOENT;
}

struct image_walk {
	int (*fn)(const char *name, const struct tsr_layer_id *top, const void *meta,
		  size_t len, void *arg);
	void *arg;
};

static int image_walk_one(const char *key, const void *val, size_t len, void *arg)
{
	struct image_walk *w = arg;
	struct tsr_layer_id top;

	if (len < TSR_DIGEST_LEN)
		return 0; /* damaged: tsr_image_get says so */
	memcpy(top.bytes, val, TSR_DIGEST_LEN);
	return w->fn(key, &top, (const uint8_t *)val + TSR_DIGEST_LEN, len - TSR_DIGEST_LEN,
		     w->arg);
}

int tsr_image_list(struct tsr_store *store,
		   int (*fn)(const char *name, const struct tsr_layer_id *top,
			     const void *meta, size_t len, void *arg),
		   void *arg)
{
	struct image_walk w = { .fn = fn, .arg = arg };

	return tsr_record_list(store, IMAGE_NS, "", image_walk_one, &w);
}
