/* SPDX-License-Identifier: MIT */
/*
 * Internals of the image readers: oci_archive.c (the entry point:
 * tsr_oci_image_open), oci_index.c (OCI index, manifest and config),
 * oci_docker.c (docker save archives) and the archive toolbox they all
 * use, oci_tar.c, which calls none of them.  Not installed; nothing
 * outside these files (and image_record.c, for oci_hex_digest) includes it.
 */
#ifndef TESSERA_OCI_INTERNAL_H
#define TESSERA_OCI_INTERNAL_H

#include <tessera/oci_image.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define REF_ANNOTATION "org.opencontainers.image.ref.name"
#define MAX_ALIAS_HOPS 8
#define IOBUF (1u << 20)

struct alias {
	char *name, *target;
};

struct want {
	char member[TSR_OCI_PATH_MAX + 1]; /* after alias resolution */
	char *dest;                        /* under workdir */
	uint64_t max_size;
	int64_t exact_size;                /* -1: unknown */
	char expect[TSR_OCI_DIGEST_MAX];   /* "" : just compute */
	char got[TSR_OCI_DIGEST_MAX];
	bool done;
};

/* One tsr_oci_image_open call. */
struct ctx {
	const char *file, *workdir;
	const struct tsr_oci_open_opts *o;
	char *err;
	size_t errlen;
	bool failed;       /* err holds the first failure */
	bool aliases_done; /* links recorded by the first pass */
	uint64_t extracted; /* bytes counted against o->max_total so far */
	struct alias *aliases;
	size_t n_aliases;
};


struct desc {
	const char *media_type, *digest, *ref;
	const char *os, *arch, *variant;
	int64_t size;
};

/* ---- oci_ctx.c: the context's failure ---------------------------------------------- */

/* Records the first failure in c->err (later ones are dropped); returns r. */
int oci_fail(struct ctx *c, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- oci_tar.c: the archive toolbox ----------------------------------------------- */

/* "sha256:0123456789ab.." for messages; buf is returned. */
const char *oci_shortd(const char *d, char buf[32]);
const EVP_MD *oci_digest_md(const char *digest);
void oci_hex_digest(const EVP_MD *md, const unsigned char *h, unsigned len,
		    char out[TSR_OCI_DIGEST_MAX]);
void oci_list_add(char *list, size_t size, const char *s);

/* Counts n more bytes of what (a blob or layer, for messages) whose
 * output reached so_far bytes before them against the caller's caps
 * (oci_limits.c): -EFBIG past one.  count false only checks (a size a
 * member claims before any byte of it is written). */
int oci_charge(struct ctx *c, const char *what, uint64_t so_far, uint64_t n, bool count);
/* A member to extract: MEMBER (resolved through the archive's links) to
 * DEST (owned by w from here on, even on failure), checked against
 * max/exact size and the expected digest (NULL: just computed). */
int oci_want_init(struct ctx *c, struct want *w, const char *member,
		  char *dest, uint64_t max, int64_t exact, const char *expect);
/* One pass over the archive extracting w[0..n); w[i].done says found. */
int oci_scan(struct ctx *c, struct want *w, size_t n);
/* workdir + "/" + fmt(arg), allocated (NULL: out of memory). */
char *oci_wpath(struct ctx *c, const char *fmt, const char *arg);
/* A workdir file of at most TSR_OCI_JSON_MAX bytes, NUL-terminated. */
int oci_read_file(struct ctx *c, const char *path, char **ret, size_t *len);
/* Blobs of descriptors d[0..n) to blobs/<alg>/<hex>, verified, one pass. */
int oci_fetch_blobs(struct ctx *c, const struct desc *d, size_t n,
		    uint64_t max, char **paths);
/* Creates workdir/sub (which may exist). */
int oci_mkdir_work(struct ctx *c, const char *sub);
/* Frees what a tsr_oci_image_open call gathered in c (the aliases). */
void oci_ctx_release(struct ctx *c);

/* ---- oci_index.c: OCI index, manifest and config; what both formats share ---- */

int oci_parse_json(struct ctx *c, const char *bytes, size_t len,
		   const char *what, json_t **ret);
const char *oci_jstr(json_t *o, const char *key);
bool oci_platform_match(const char *p, const char *os, const char *arch,
			const char *variant);
int oci_detect_comp(struct ctx *c, size_t idx, const char *path,
		    enum tsr_oci_compression *ret);
/* Config checks shared by both formats: diff_ids, platform, layers. */
int oci_finish(struct ctx *c, struct tsr_oci_image *img);
int oci_open_oci(struct ctx *c, struct tsr_oci_image *img);

/* ---- oci_docker.c: docker save archives ----------------------------------------- */

int oci_open_docker(struct ctx *c, struct tsr_oci_image *img);

#endif
