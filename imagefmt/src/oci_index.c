/* SPDX-License-Identifier: MIT */
/*
 * OCI image layouts: index.json (and nested indexes) -> the manifest for
 * the platform or ref name asked for -> its config and layers, each blob
 * verified against its descriptor.  The config checks (oci_finish) are
 * shared with docker archives.
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

/* Parses JSON bytes; WHAT names them in messages. */
int oci_parse_json(struct ctx *c, const char *bytes, size_t len,
		      const char *what, json_t **ret)
{
	json_error_t je;
	json_t *j = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &je);

	if (!j)
		return oci_fail(c, -EBADMSG, "%s: line %d: %s", what, je.line,
			    je.text);
	*ret = j;
	return 0;
}

const char *oci_jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}


/* Checks a descriptor object; WHAT names it in messages. */
static int parse_desc(struct ctx *c, json_t *j, const char *what,
		      struct desc *d)
{
	json_t *size = json_object_get(j, "size");
	json_t *plat = json_object_get(j, "platform");
	int r;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(j))
		return oci_fail(c, -EBADMSG, "%s: not a descriptor", what);
	d->media_type = oci_jstr(j, "mediaType");
	d->digest = oci_jstr(j, "digest");
	r = tsr_oci_digest_check(d->digest);
	if (r)
		return oci_fail(c, r, "%s: bad digest '%s'", what,
			    d->digest ? d->digest : "(none)");
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return oci_fail(c, -EBADMSG, "%s: bad size", what);
	d->size = json_integer_value(size);
	d->ref = oci_jstr(json_object_get(j, "annotations"), REF_ANNOTATION);
	if (json_is_object(plat)) {
		d->os = oci_jstr(plat, "os");
		d->arch = oci_jstr(plat, "architecture");
		d->variant = oci_jstr(plat, "variant");
	}
	return 0;
}

static const char *norm_arch(const char *a)
{
	if (a && !strcmp(a, "x86_64"))
		return "amd64";
	if (a && !strcmp(a, "aarch64"))
		return "arm64";
	return a;
}

/* Does os/arch/variant match the "os/arch[/variant]" string p? */
bool oci_platform_match(const char *p, const char *os, const char *arch,
			   const char *variant)
{
	char buf[128], *a, *v;

	if (!os || !arch)
		return false;
	snprintf(buf, sizeof(buf), "%s", p);
	a = strchr(buf, '/');
	if (!a)
		return false;
	*a++ = '\0';
	v = strchr(a, '/');
	if (v)
		*v++ = '\0';
	return !strcmp(buf, os) && !strcmp(norm_arch(a), norm_arch(arch)) &&
	       (!v || (variant && !strcmp(v, variant)));
}

/* Chooses one descriptor of an index: by ref name (top level only), then
 * by platform when several remain. */
static int pick(struct ctx *c, json_t *idx, const char *what, unsigned depth,
		struct desc *out)
{
	const char *ref = depth == 0 ? c->o->ref : NULL;
	const char *p = c->o->platform ? c->o->platform : "linux/amd64";
	json_t *arr = json_object_get(idx, "manifests");
	char item[TSR_OCI_DIGEST_MAX + 32], list[512] = "";
	size_t n, cand = 0, match = 0, i;
	struct desc *d;
	int r = 0;

	if (!json_is_array(arr))
		return oci_fail(c, -EBADMSG, "%s: no manifests array", what);
	n = json_array_size(arr);
	if (n > TSR_OCI_MAX_MANIFESTS)
		return oci_fail(c, -E2BIG, "%s: %zu manifests, more than %u", what,
			    n, TSR_OCI_MAX_MANIFESTS);
	d = calloc(n ? n : 1, sizeof(*d));
	if (!d)
		return oci_fail(c, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		snprintf(item, sizeof(item), "%s: manifests[%zu]", what, i);
		r = parse_desc(c, json_array_get(arr, i), item, &d[cand]);
		if (r)
			goto out;
		if (ref && (!d[cand].ref || strcmp(d[cand].ref, ref))) {
			if (d[cand].ref)
				oci_list_add(list, sizeof(list), d[cand].ref);
			continue;
		}
		cand++;
	}
	if (cand == 0) {
		r = ref ? oci_fail(c, -ESRCH, "%s: no manifest named '%s' (names: "
			       "%s)", what, ref, *list ? list : "none")
			: oci_fail(c, -ENOENT, "%s: lists no manifests", what);
		goto out;
	}
	if (cand == 1 && (!c->o->platform || !d[0].os)) {
		*out = d[0];
		goto out;
	}
	for (i = 0; i < cand; i++) {
		if (oci_platform_match(p, d[i].os, d[i].arch, d[i].variant)) {
			if (match && strcmp(d[i].digest, d[0].digest)) {
				r = oci_fail(c, TSR_ERR_AMBIGUOUS, "%s: several manifests "
					 "for platform %s; choose one by ref "
					 "name", what, p);
				goto out;
			}
			d[match++] = d[i];
			continue;
		}
		snprintf(item, sizeof(item), "%s/%s%s%s",
			 d[i].os ? d[i].os : "?", d[i].arch ? d[i].arch : "?",
			 d[i].variant ? "/" : "", d[i].variant ? d[i].variant : "");
		oci_list_add(list, sizeof(list), item);
	}
	if (!match)
		r = oci_fail(c, -ESRCH, "%s: no manifest for platform %s (has: %s)",
			 what, p, list);
	else
		*out = d[0];
out:
	free(d);
	return r;
}

static enum tsr_oci_compression layer_comp_by_type(const char *mt, bool *ok)
{
	static const char *const plain[] = {
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.docker.image.rootfs.diff.tar",
	};
	size_t i, len;

	*ok = true;
	if (!mt)
		goto bad;
	if (!strcmp(mt, "application/vnd.docker.image.rootfs.diff.tar.gzip") ||
	    !strcmp(mt, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"))
		return TSR_OCI_COMP_GZIP;
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		len = strlen(plain[i]);
		if (strncmp(mt, plain[i], len))
			continue;
		if (!mt[len])
			return TSR_OCI_COMP_NONE;
		if (!strcmp(mt + len, "+gzip"))
			return TSR_OCI_COMP_GZIP;
		if (!strcmp(mt + len, "+zstd"))
			return TSR_OCI_COMP_ZSTD;
	}
bad:
	*ok = false;
	return TSR_OCI_COMP_NONE;
}

/* Compression by magic bytes.  xz and bzip2 are refused: OCI layers are
 * plain, gzip or zstd. */
int oci_detect_comp(struct ctx *c, size_t idx, const char *path,
		       enum tsr_oci_compression *ret)
{
	unsigned char m[6] = {0};
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return oci_fail(c, -errno, "%s: %s", path, strerror(errno));
	n = pread(fd, m, sizeof(m), 0);
	close(fd);
	if (n < 0)
		return oci_fail(c, -errno, "%s: %s", path, strerror(errno));
	if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
		*ret = TSR_OCI_COMP_GZIP;
	else if (n >= 4 && !memcmp(m, "\x28\xb5\x2f\xfd", 4))
		*ret = TSR_OCI_COMP_ZSTD;
	else if ((n >= 6 && !memcmp(m, "\xfd" "7zXZ\0", 6)) ||
		 (n >= 3 && !memcmp(m, "BZh", 3)))
		return oci_fail(c, -ENOTSUP, "layer %zu: compressed with xz or "
			    "bzip2, not gzip or zstd", idx + 1);
	else
		*ret = TSR_OCI_COMP_NONE;
	return 0;
}

/* Digest of the decompressed stream of PATH (libarchive's raw format).
 * What a compressed layer expands to counts against the extraction caps
 * (the blob itself was counted when it was written). */
static int uncompressed_digest(struct ctx *c, size_t idx, const char *path,
			       const char *like, bool compressed,
			       char out[TSR_OCI_DIGEST_MAX])
{
	uint64_t total = 0;
	char what[32];
	const EVP_MD *md = oci_digest_md(like);
	unsigned char h[EVP_MAX_MD_SIZE];
	struct archive *a = archive_read_new();
	EVP_MD_CTX *mdc = EVP_MD_CTX_new();
	struct archive_entry *e;
	char *buf = malloc(IOBUF);
	unsigned hlen = 0;
	int r = 0;

	if (!a || !mdc || !buf || !EVP_DigestInit_ex(mdc, md, NULL)) {
		r = oci_fail(c, -ENOMEM, "out of memory");
		goto out;
	}
	/* built-in decompressors only: no external programs */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		r = oci_fail(c, -EBADMSG, "layer %zu: %s", idx + 1,
			 archive_error_string(a));
		goto out;
	}
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, IOBUF);

		if (n == 0)
			break;
		if (n < 0) {
			r = oci_fail(c, -EBADMSG, "layer %zu: %s", idx + 1,
				 archive_error_string(a));
			goto out;
		}
		if (compressed) {
			snprintf(what, sizeof(what), "layer %zu", idx + 1);
			r = oci_charge(c, what, total, (uint64_t)n, true);
			if (r)
				goto out;
			total += (uint64_t)n;
		}
		EVP_DigestUpdate(mdc, buf, (size_t)n);
	}
	EVP_DigestFinal_ex(mdc, h, &hlen);
	oci_hex_digest(md, h, hlen, out);
out:
	free(buf);
	EVP_MD_CTX_free(mdc);
	archive_read_free(a);
	return r;
}

/* The config's rootfs.diff_ids and platform; layer compression and
 * diff_id checks. */
int oci_finish(struct ctx *c, struct tsr_oci_image *img)
{
	json_t *cfg = NULL, *rootfs, *ids;
	const char *os, *arch, *variant;
	char sd[32], sg[32], got[TSR_OCI_DIGEST_MAX];
	int r;

	r = oci_parse_json(c, img->config_json, img->config_len, "config", &cfg);
	if (r)
		return r;
	rootfs = json_object_get(cfg, "rootfs");
	ids = json_object_get(rootfs, "diff_ids");
	if (!json_is_object(cfg) || !oci_jstr(rootfs, "type") ||
	    strcmp(oci_jstr(rootfs, "type"), "layers") || !json_is_array(ids)) {
		r = oci_fail(c, -EBADMSG, "config: no rootfs of type layers");
		goto out;
	}
	if (json_array_size(ids) != img->n_layers) {
		r = oci_fail(c, -EBADMSG, "config: %zu diff_ids for %zu layers",
			 json_array_size(ids), img->n_layers);
		goto out;
	}
	os = oci_jstr(cfg, "os");
	arch = oci_jstr(cfg, "architecture");
	variant = oci_jstr(cfg, "variant");
	snprintf(img->platform, sizeof(img->platform), "%.40s/%.40s%s%.40s",
		 os ? os : "?", arch ? arch : "?", variant ? "/" : "",
		 variant ? variant : "");
	if (c->o->platform && !oci_platform_match(c->o->platform, os, arch,
					      variant)) {
		r = oci_fail(c, -ESRCH, "image is for %s, not %s", img->platform,
			 c->o->platform);
		goto out;
	}
	for (size_t i = 0; i < img->n_layers; i++) {
		struct tsr_oci_layer *l = &img->layers[i];
		const char *id = json_string_value(json_array_get(ids, i));

		r = tsr_oci_digest_check(id);
		if (r) {
			r = oci_fail(c, r, "config: bad diff_id %zu", i + 1);
			goto out;
		}
		snprintf(l->diff_id, sizeof(l->diff_id), "%s", id);
		r = oci_detect_comp(c, i, l->path, &l->compression);
		if (r)
			goto out;
		if (l->compression == TSR_OCI_COMP_NONE &&
		    !strcmp(oci_digest_md(id) == oci_digest_md(l->digest) ? id : "",
			    l->digest))
			continue;
		if (l->compression != TSR_OCI_COMP_NONE &&
		    !(c->o->flags & TSR_OCI_VERIFY_DIFF_IDS) &&
		    !c->o->max_blob && !c->o->max_total)
			continue;
		r = uncompressed_digest(c, i, l->path, id,
					l->compression != TSR_OCI_COMP_NONE, got);
		if (r)
			goto out;
		if (strcmp(got, id)) {
			r = oci_fail(c, -EBADMSG, "layer %zu: diff_id %s in the "
				 "config, uncompressed layer is %s", i + 1,
				 oci_shortd(id, sd), oci_shortd(got, sg));
			goto out;
		}
	}
out:
	json_decref(cfg);
	return r;
}

/* Parses the chosen manifest (img->manifest_json) and fetches its config
 * and layers. */
static int oci_manifest(struct ctx *c, struct tsr_oci_image *img)
{
	json_t *m = NULL, *layers, *sv;
	struct desc *d = NULL;
	char **paths = NULL, what[64];
	size_t n = 0, i;
	int r;

	r = oci_parse_json(c, img->manifest_json, img->manifest_len, "manifest",
		       &m);
	if (r)
		return r;
	sv = json_object_get(m, "schemaVersion");
	layers = json_object_get(m, "layers");
	if (!json_is_integer(sv) || json_integer_value(sv) != 2 ||
	    !json_is_array(layers)) {
		r = oci_fail(c, -EBADMSG, "manifest: not a schema 2 image manifest");
		goto out;
	}
	n = json_array_size(layers);
	if (n > TSR_OCI_MAX_LAYERS) {
		r = oci_fail(c, -E2BIG, "manifest: %zu layers, more than %u", n,
			 TSR_OCI_MAX_LAYERS);
		goto out;
	}
	d = calloc(n + 1, sizeof(*d));
	paths = calloc(n + 1, sizeof(*paths));
	img->layers = calloc(n ? n : 1, sizeof(*img->layers));
	if (!d || !paths || !img->layers) {
		r = oci_fail(c, -ENOMEM, "out of memory");
		goto out;
	}
	r = parse_desc(c, json_object_get(m, "config"), "manifest: config",
		       &d[0]);
	if (r)
		goto out;
	if (!d[0].media_type || (strcmp(d[0].media_type, MT_OCI_CONFIG) &&
				 strcmp(d[0].media_type, MT_DOCKER_CONFIG))) {
		r = oci_fail(c, -ENOTSUP, "manifest: config media type '%s' is "
			 "not a container image config",
			 d[0].media_type ? d[0].media_type : "(none)");
		goto out;
	}
	if (d[0].size > TSR_OCI_JSON_MAX) {
		r = oci_fail(c, -E2BIG, "config: %lld bytes, more than %u",
			 (long long)d[0].size, TSR_OCI_JSON_MAX);
		goto out;
	}
	for (i = 0; i < n; i++) {
		bool ok;

		snprintf(what, sizeof(what), "manifest: layers[%zu]", i);
		r = parse_desc(c, json_array_get(layers, i), what, &d[i + 1]);
		if (r)
			goto out;
		layer_comp_by_type(d[i + 1].media_type, &ok);
		if (!ok) {
			r = oci_fail(c, -ENOTSUP, "layer %zu: media type '%s' is "
				 "not a layer tar", i + 1,
				 d[i + 1].media_type ? d[i + 1].media_type :
				 "(none)");
			goto out;
		}
	}
	/* One pass for the config and every layer. */
	r = oci_fetch_blobs(c, d, n + 1, UINT64_MAX, paths);
	if (r)
		goto out;
	snprintf(img->config_digest, sizeof(img->config_digest), "%s",
		 d[0].digest);
	r = oci_read_file(c, paths[0], &img->config_json, &img->config_len);
	if (r)
		goto out;
	for (i = 0; i < n; i++) {
		struct tsr_oci_layer *l = &img->layers[i];

		l->path = paths[i + 1];
		paths[i + 1] = NULL;
		l->media_type = strdup(d[i + 1].media_type);
		l->size = (uint64_t)d[i + 1].size;
		snprintf(l->digest, sizeof(l->digest), "%s", d[i + 1].digest);
		img->n_layers++;
		if (!l->media_type) {
			r = oci_fail(c, -ENOMEM, "out of memory");
			goto out;
		}
	}
	r = oci_finish(c, img);
out:
	for (i = 0; paths && i < n + 1; i++)
		free(paths[i]);
	free(paths);
	free(d);
	json_decref(m);
	return r;
}

/* Blob descriptor D, at most TSR_OCI_JSON_MAX bytes, fetched and read. */
static int load_json_blob(struct ctx *c, const struct desc *d, char **bytes,
			  size_t *len)
{
	char *path = NULL, sd[32];
	int r;

	if (d->size > TSR_OCI_JSON_MAX)
		return oci_fail(c, -E2BIG, "blob %s: %lld bytes, more than %u",
			    oci_shortd(d->digest, sd), (long long)d->size,
			    TSR_OCI_JSON_MAX);
	r = oci_fetch_blobs(c, d, 1, TSR_OCI_JSON_MAX, &path);
	if (r)
		return r;
	r = oci_read_file(c, path, bytes, len);
	free(path);
	return r;
}

static bool is_index_type(const char *mt)
{
	return !strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST);
}

static bool is_manifest_type(const char *mt)
{
	return !strcmp(mt, MT_OCI_MANIFEST) || !strcmp(mt, MT_DOCKER_MANIFEST);
}

int oci_open_oci(struct ctx *c, struct tsr_oci_image *img)
{
	char *bytes = NULL, *path, what[96], sd[32];
	json_t *j = NULL, *idx = NULL;
	struct desc d;
	size_t len;
	int r;

	path = oci_wpath(c, "%s", "meta/oci-layout");
	if (path && access(path, F_OK) == 0) {
		const char *v;

		r = oci_read_file(c, path, &bytes, &len);
		if (!r)
			r = oci_parse_json(c, bytes, len, "oci-layout", &j);
		free(bytes);
		bytes = NULL;
		v = r ? NULL : oci_jstr(j, "imageLayoutVersion");
		if (!r && (!v || strncmp(v, "1.", 2)))
			r = oci_fail(c, -ENOTSUP, "oci-layout: version '%s'",
				 v ? v : "(none)");
		json_decref(j);
		if (r) {
			free(path);
			return r;
		}
	}
	free(path);
	path = oci_wpath(c, "%s", "meta/index.json");
	r = path ? oci_read_file(c, path, &bytes, &len) : -ENOMEM;
	free(path);
	if (!r)
		r = oci_parse_json(c, bytes, len, "index.json", &idx);
	free(bytes);
	snprintf(what, sizeof(what), "index.json");
	for (unsigned depth = 0; !r; depth++) {
		const char *mt;

		r = pick(c, idx, what, depth, &d);
		if (r)
			break;
		if (depth == 0 && d.ref && !(img->ref_name = strdup(d.ref))) {
			r = oci_fail(c, -ENOMEM, "out of memory");
			break;
		}
		snprintf(what, sizeof(what), "blob %s", oci_shortd(d.digest, sd));
		r = load_json_blob(c, &d, &bytes, &len);
		if (r)
			break;
		j = NULL;
		r = oci_parse_json(c, bytes, len, what, &j);
		if (r) {
			free(bytes);
			break;
		}
		mt = oci_jstr(j, "mediaType");
		if (d.media_type && mt && strcmp(d.media_type, mt)) {
			r = oci_fail(c, -EBADMSG, "%s: media type %s, its "
				 "descriptor says %s", what, mt, d.media_type);
		} else if (d.media_type || mt) {
			mt = d.media_type ? d.media_type : mt;
		} else {
			mt = json_object_get(j, "manifests") ? MT_OCI_INDEX :
			     MT_OCI_MANIFEST;
		}
		if (!r && is_index_type(mt)) {
			free(bytes);
			if (depth + 1 >= TSR_OCI_MAX_INDEX_DEPTH)
				r = oci_fail(c, -E2BIG, "%s: indexes nested more "
					 "than %u deep", what,
					 TSR_OCI_MAX_INDEX_DEPTH);
			/* d's strings live in idx: keep it until here */
			json_decref(idx);
			idx = j;
			continue;
		}
		/* mt may point into j: check it before dropping j */
		if (!r && !is_manifest_type(mt))
			r = oci_fail(c, -ENOTSUP, "%s: media type '%s' is not an "
				 "image manifest", what, mt);
		json_decref(j);
		if (r) {
			free(bytes);
			break;
		}
		img->manifest_json = bytes;
		img->manifest_len = len;
		snprintf(img->manifest_digest, sizeof(img->manifest_digest),
			 "%s", d.digest);
		r = oci_manifest(c, img);
		break;
	}
	json_decref(idx);
	return r;
}

