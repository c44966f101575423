/* SPDX-License-Identifier: MIT */
/*
 * `docker save` archives: manifest.json names the config and layer members
 * by path; their digests are computed here, checked against what their
 * names promise (blobs/sha256/<hex>, <hex>.json, <hex>.tar) and against
 * the config's diff_ids (plain layers), and an OCI manifest naming them is
 * synthesized so the image has a manifest digest like an OCI one.
 */
#include "oci_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "blobs/sha256/<hex>", "<hex>.json" or "<hex>.tar": the digest the name
 * promises, or "" when it promises none. */
static void name_digest(const char *member, char out[TSR_OCI_DIGEST_MAX])
{
	const char *hex = member;

	out[0] = '\0';
	if (!strncmp(member, "blobs/sha256/", 13))
		hex = member + 13;
	else if (strchr(member, '/') || strlen(member) != 69 ||
		 (strcmp(member + 64, ".json") && strcmp(member + 64, ".tar")))
		return;
	snprintf(out, TSR_OCI_DIGEST_MAX, "sha256:%.64s", hex);
	if (tsr_oci_digest_check(out) || (hex != member && hex[64]))
		out[0] = '\0';
}

/* Moves a docker member's temp file to blobs/<alg>/<hex> of its digest. */
static int docker_place(struct ctx *c, struct want *w, char **path)
{
	char promised[TSR_OCI_DIGEST_MAX], sd[32], sg[32];
	char *dest = oci_wpath(c, "blobs/sha256/%s", w->got + 7);

	name_digest(w->member, promised);
	if (promised[0] && strcmp(promised, w->got)) {
		free(dest);
		return oci_fail(c, -EBADMSG, "member '%s': digest mismatch (got "
			    "%s, name says %s)", w->member, oci_shortd(w->got, sg),
			    oci_shortd(promised, sd));
	}
	if (!dest)
		return oci_fail(c, -ENOMEM, "out of memory");
	if (rename(w->dest, dest)) {
		free(dest);
		return oci_fail(c, -errno, "%s: %s", w->dest, strerror(errno));
	}
	*path = dest;
	return 0;
}

/* docker save: manifest.json names the config and layer members; digests
 * are computed.  Plain layers must equal their diff_ids. */
int oci_open_docker(struct ctx *c, struct tsr_oci_image *img)
{
	json_t *mf = NULL, *e = NULL, *layers, *out = NULL, *ls;
	struct want *w = NULL;
	size_t n = 0, nw = 0, i, len, *li = NULL;
	char *bytes = NULL, *path, *cpath = NULL, list[512] = "", tmp[32];
	int r;

	path = oci_wpath(c, "%s", "meta/manifest.json");
	r = path ? oci_read_file(c, path, &bytes, &len) : -ENOMEM;
	free(path);
	if (!r)
		r = oci_parse_json(c, bytes, len, "manifest.json", &mf);
	free(bytes);
	if (r)
		return r;
	if (!json_is_array(mf) || !json_array_size(mf) ||
	    json_array_size(mf) > TSR_OCI_MAX_MANIFESTS) {
		r = oci_fail(c, -EBADMSG, "manifest.json: not a list of images");
		goto out;
	}
	for (i = 0; i < json_array_size(mf); i++) {
		json_t *tags = json_object_get(json_array_get(mf, i), "RepoTags");

		for (size_t t = 0; t < json_array_size(tags); t++) {
			const char *tag = json_string_value(json_array_get(tags, t));

			if (!tag)
				continue;
			if (c->o->ref && !strcmp(tag, c->o->ref) && !e) {
				e = json_array_get(mf, i);
				img->ref_name = strdup(tag);
			}
			oci_list_add(list, sizeof(list), tag);
		}
	}
	if (!c->o->ref && json_array_size(mf) == 1)
		e = json_array_get(mf, 0);
	if (!e) {
		r = c->o->ref ? oci_fail(c, -ESRCH, "manifest.json: no image "
				     "named '%s' (names: %s)", c->o->ref, list)
			: oci_fail(c, TSR_ERR_AMBIGUOUS, "manifest.json: %zu images; "
			       "choose one by name (names: %s)",
			       json_array_size(mf), list);
		goto out;
	}
	layers = json_object_get(e, "Layers");
	n = json_array_size(layers);
	if (!oci_jstr(e, "Config") || !json_is_array(layers) ||
	    n > TSR_OCI_MAX_LAYERS) {
		r = oci_fail(c, -EBADMSG, "manifest.json: bad Config or Layers");
		goto out;
	}
	w = calloc(n + 1, sizeof(*w));
	li = calloc(n + 1, sizeof(*li));
	img->layers = calloc(n ? n : 1, sizeof(*img->layers));
	if (!w || !li || !img->layers) {
		r = oci_fail(c, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i <= n; i++) { /* 0: config, 1..n: layers */
		const char *m = i ? json_string_value(json_array_get(layers,
							i - 1)) : oci_jstr(e, "Config");
		size_t k;

		snprintf(tmp, sizeof(tmp), "tmp/%zu", nw);
		r = oci_want_init(c, &w[nw], m ? m : "", oci_wpath(c, "%s", tmp),
			      i ? UINT64_MAX : TSR_OCI_JSON_MAX, -1, NULL);
		if (r) {
			free(w[nw].dest); /* not yet counted in nw */
			goto out;
		}
		for (k = 0; k < nw; k++)
			if (!strcmp(w[k].member, w[nw].member))
				break;
		li[i] = k;
		if (k == nw)
			nw++;
		else
			free(w[nw].dest);
	}
	r = oci_scan(c, w, nw);
	for (i = 0; !r && i < nw; i++)
		if (!w[i].done)
			r = oci_fail(c, -ENOENT, "member '%s' (in manifest.json): "
				 "not in the archive", w[i].member);
	for (i = 0; !r && i < nw; i++) {
		/* path is set only on success: on failure w[i] keeps its own */
		r = docker_place(c, &w[i], &path);
		if (!r) {
			free(w[i].dest);
			w[i].dest = path;
		}
	}
	if (r)
		goto out;
	cpath = w[li[0]].dest;
	snprintf(img->config_digest, sizeof(img->config_digest), "%s",
		 w[li[0]].got);
	r = oci_read_file(c, cpath, &img->config_json, &img->config_len);
	/* The synthesized manifest: OCI, config and layers by digest. */
	out = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}",
			"schemaVersion", 2, "mediaType", MT_OCI_MANIFEST,
			"config", "mediaType", MT_OCI_CONFIG, "digest",
			img->config_digest, "size", (json_int_t)img->config_len,
			"layers");
	ls = json_object_get(out, "layers");
	for (i = 1; !r && i <= n; i++) {
		struct tsr_oci_layer *l = &img->layers[i - 1];
		struct want *lw = &w[li[i]];
		struct stat st;
		static const char *const mts[] = {
			"application/vnd.oci.image.layer.v1.tar",
			"application/vnd.oci.image.layer.v1.tar+gzip",
			"application/vnd.oci.image.layer.v1.tar+zstd",
		};

		img->n_layers++;
		snprintf(l->digest, sizeof(l->digest), "%s", lw->got);
		l->path = strdup(lw->dest);
		r = l->path ? oci_detect_comp(c, i - 1, l->path, &l->compression)
			    : oci_fail(c, -ENOMEM, "out of memory");
		if (r)
			break;
		l->media_type = strdup(mts[l->compression]);
		if (stat(l->path, &st) || !l->media_type || !ls) {
			r = oci_fail(c, -ENOMEM, "out of memory");
			break;
		}
		l->size = (uint64_t)st.st_size;
		json_array_append_new(ls, json_pack("{s:s, s:s, s:I}",
				      "mediaType", l->media_type, "digest",
				      l->digest, "size", (json_int_t)l->size));
	}
	if (!r) {
		img->manifest_json = json_dumps(out, JSON_COMPACT);
		if (!img->manifest_json)
			r = oci_fail(c, -ENOMEM, "out of memory");
	}
	if (!r) {
		struct want mw = { .done = false };
		unsigned char h[EVP_MAX_MD_SIZE];
		unsigned hlen = 0;

		img->manifest_len = strlen(img->manifest_json);
		EVP_Digest(img->manifest_json, img->manifest_len, h, &hlen,
			   EVP_sha256(), NULL);
		oci_hex_digest(EVP_sha256(), h, hlen, mw.got);
		snprintf(img->manifest_digest, sizeof(img->manifest_digest),
			 "%s", mw.got);
		r = oci_finish(c, img);
	}
out:
	for (i = 0; w && i < nw; i++)
		free(w[i].dest);
	free(w);
	free(li);
	json_decref(out);
	json_decref(mf);
	return r;
}

