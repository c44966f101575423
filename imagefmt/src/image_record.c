/* SPDX-License-Identifier: MIT */
/* The image record an OCI import keeps (JSON, the metadata of the image's
 * blockstore record) and the chain-id records that let a later import
 * reuse a layer: image_store.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tessera/image_store.h>

#include "oci_internal.h"

#define CHAIN_NS "oci-chain"

/* ---- the image record ---------------------------------------------------------- */

int tsr_image_record_write(struct tsr_store *store, const char *name,
			   const struct tsr_oci_image *img, const struct tsr_layer_id *ids,
			   const bool *reused, char chains[][TSR_OCI_DIGEST_MAX])
{
	json_t *rec = json_object(), *layers = json_array(), *config;
	char hex[TSR_ID_HEX_LEN + 1];
	char *text;
	int r;

	config = json_loadb(img->config_json, img->config_len, 0, NULL);
	for (size_t i = 0; i < img->n_layers; i++) {
		json_t *l = json_object();

		tsr_layer_id_to_hex(&ids[i], hex);
		json_object_set_new(l, "layer", json_string(hex));
		json_object_set_new(l, "blob", json_string(img->layers[i].digest));
		json_object_set_new(l, "diff_id", json_string(img->layers[i].diff_id));
		json_object_set_new(l, "chain_id", json_string(chains[i]));
		json_object_set_new(l, "reused", json_boolean(reused[i]));
		json_array_append_new(layers, l);
	}
	json_object_set_new(rec, "name", json_string(name));
	json_object_set_new(rec, "manifest", json_string(img->manifest_digest));
	json_object_set_new(rec, "config", json_string(img->config_digest));
	json_object_set_new(rec, "platform", json_string(img->platform));
	json_object_set_new(rec, "imported", json_integer((json_int_t)time(NULL)));
	json_object_set_new(rec, "layers", layers);
	if (config)
		json_object_set_new(rec, "image_config", config);
	text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(rec);
	if (!text)
		return -ENOMEM;
	r = tsr_image_put(store, name, &ids[img->n_layers - 1], text, strlen(text));
	free(text);
	return r;
}

int tsr_image_record_parse(const void *meta, size_t len, struct tsr_image_record *ret)
{
	json_t *root = json_loadb(meta, len, 0, NULL), *layers;
	struct tsr_image_record rec;

	if (!root)
		return -EBADMSG;
	layers = json_object_get(root, "layers");
	rec = (struct tsr_image_record){
		.name = json_string_value(json_object_get(root, "name")),
		.manifest = json_string_value(json_object_get(root, "manifest")),
		.platform = json_string_value(json_object_get(root, "platform")),
		.n_layers = json_array_size(layers),
		.imported = (int64_t)json_integer_value(json_object_get(root, "imported")),
		.json = root,
	};
	if (!rec.name || !rec.manifest || !json_is_array(layers) || !rec.n_layers) {
		json_decref(root);
		return -EBADMSG;
	}
	*ret = rec;
	return 0;
}

int tsr_image_record_load(struct tsr_store *store, const char *name,
			  struct tsr_image_record *ret)
{
	void *meta;
	size_t len;
	int r = tsr_image_get(store, name, NULL, &meta, &len);

	if (r)
		return r;
	r = tsr_image_record_parse(meta, len, ret);
	free(meta);
	return r;
}

/* Field key of layer i of rec, or NULL. */
static const char *layer_field(const struct tsr_image_record *rec, size_t i, const char *key)
{
	json_t *layers = json_object_get(rec->json, "layers");

	return json_string_value(json_object_get(json_array_get(layers, i), key));
}

int tsr_image_record_layer(const struct tsr_image_record *rec, size_t i,
			   struct tsr_layer_id *ret_id)
{
	const char *hex = layer_field(rec, i, "layer");

	return hex ? tsr_layer_id_from_hex(hex, ret_id) : -EBADMSG;
}

char *tsr_image_record_text(const struct tsr_image_record *rec)
{
	return json_dumps(rec->json, JSON_INDENT(2) | JSON_SORT_KEYS);
}

void tsr_image_record_free(struct tsr_image_record *rec)
{
	json_decref(rec->json);
	rec->json = NULL;
}

/* ---- OCI chain ids ---------------------------------------------------------------- */

int tsr_oci_chain_id(const char *prev, const char *diff_id, char out[TSR_OCI_DIGEST_MAX])
{
	char text[2 * TSR_OCI_DIGEST_MAX + 2];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!prev) {
		snprintf(out, TSR_OCI_DIGEST_MAX, "%s", diff_id);
		return 0;
	}
	snprintf(text, sizeof(text), "%s %s", prev, diff_id);
	if (!EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL) || n != TSR_DIGEST_LEN)
		return -EIO;
	oci_hex_digest(EVP_sha256(), md, n, out);
	return 0;
}

int tsr_oci_chain_get(struct tsr_store *store, const char *chain, struct tsr_layer_id *ret_id)
{
	void *val;
	size_t len;
	int r = tsr_record_get(store, CHAIN_NS, chain, &val, &len);

	if (r)
		return r;
	if (len == TSR_DIGEST_LEN)
		memcpy(ret_id->bytes, val, TSR_DIGEST_LEN);
	else
		r = -EBADMSG;
	free(val);
	return r;
}

int tsr_oci_chain_put(struct tsr_store *store, const char *chain, const struct tsr_layer_id *id)
{
	return tsr_record_put(store, CHAIN_NS, chain, id->bytes, TSR_DIGEST_LEN);
}

void tsr_oci_chain_forget(struct tsr_store *store, const struct tsr_image_record *rec, size_t i)
{
	const char *chain = layer_field(rec, i, "chain_id");
	struct tsr_layer_id id;
	struct tsr_layer_info li;

	if (chain && tsr_oci_chain_get(store, chain, &id) == 0 &&
	    tsr_layer_stat(store, &id, &li) == -ENOENT)
		tsr_record_del(store, CHAIN_NS, chain);
}
