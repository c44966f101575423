/* SPDX-License-Identifier: MIT */
/*
 * OCI and Docker image archives: reading one (oci_archive.c) and applying
 * its layer tars to a directory tree (oci_apply.c), within the caller's
 * extraction caps (oci_limits.c).  Used by the import into a store
 * (oci_import.h); knows nothing of the store.
 *
 * Everything here reads untrusted bytes.  Functions return 0, a negative
 * errno or a TSR_ERR_* code of <tessera/store.h>, and on failure write one line of context into err (when err is not
 * NULL and errlen > 0), e.g.
 *     blob sha256:ab12...: digest mismatch (got sha256:cd34...)
 *     entry '../etc/x': path escapes the root
 * The message never ends in a newline.  Common errors:
 *  -EBADMSG    malformed archive, JSON, descriptor or tar entry; digest
 *              or size mismatch
 *  -ENOENT     a member the manifest names is not in the archive
 *  -E2BIG      a limit below was exceeded
 *  -EFBIG      what the archive expands to passes the caller's extraction
 *              caps (tsr_oci_open_opts.max_blob / max_total)
 *  -EXDEV      a tar entry tries to leave the root (.., absolute path, a
 *              symlink in the way, a whiteout outside)
 *  -ENOTSUP    a media type, entry type or digest algorithm we do not read
 *  -ESRCH      no manifest matches the platform / ref name
 *  TSR_ERR_AMBIGUOUS  several manifests match and nothing chooses between
 *              them
 *
 * Requires libarchive, jansson and libcrypto.  tsr_oci_apply_layer needs
 * root (it sets owners, device nodes and security.* xattrs).
 */
#ifndef TESSERA_OCI_IMAGE_H
#define TESSERA_OCI_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include <tessera/store.h> /* TSR_ERR_AMBIGUOUS */

#ifdef __cplusplus
extern "C" {
#endif

/* Limits (untrusted input is refused beyond them with -E2BIG). */
#define TSR_OCI_JSON_MAX        (16u << 20) /* index, manifest, config */
#define TSR_OCI_MAX_MEMBERS     200000u     /* entries of the outer tar */
#define TSR_OCI_MAX_MANIFESTS   4096u       /* descriptors in one index */
#define TSR_OCI_MAX_INDEX_DEPTH 4u          /* index -> index -> ... */
#define TSR_OCI_MAX_LAYERS      1024u
#define TSR_OCI_PATH_MAX        4095u       /* tar pathname / link target */
#define TSR_OCI_MAX_DEPTH       512u        /* path components */
#define TSR_OCI_MAX_XATTRS      256u        /* per tar entry */
#define TSR_OCI_MAX_ENTRIES     20000000u   /* entries of one layer tar */

/* "sha512:" + 128 hex digits + NUL */
#define TSR_OCI_DIGEST_MAX 136

enum tsr_oci_format {
	TSR_OCI_FORMAT_OCI = 1,    /* oci-layout + index.json + blobs/ */
	TSR_OCI_FORMAT_DOCKER = 2, /* docker save: manifest.json */
};

enum tsr_oci_compression {
	TSR_OCI_COMP_NONE = 0,
	TSR_OCI_COMP_GZIP = 1,
	TSR_OCI_COMP_ZSTD = 2,
};

struct tsr_oci_layer {
	char *path;        /* the extracted, verified blob (under workdir) */
	char digest[TSR_OCI_DIGEST_MAX];  /* of the blob as stored */
	char diff_id[TSR_OCI_DIGEST_MAX]; /* of the uncompressed tar (config) */
	char *media_type;  /* as the manifest says (docker: derived) */
	enum tsr_oci_compression compression; /* from the blob's magic bytes */
	uint64_t size;     /* bytes of the blob */
};

struct tsr_oci_image {
	enum tsr_oci_format format;
	/* OCI: the digest of the chosen manifest blob.  Docker archives carry
	 * no manifest: one is synthesized (an OCI image manifest naming the
	 * config and layers by their computed digests; manifest_json) and
	 * this is its digest. */
	char manifest_digest[TSR_OCI_DIGEST_MAX];
	char config_digest[TSR_OCI_DIGEST_MAX];
	char *manifest_json;     /* bytes of the manifest (NUL-terminated) */
	size_t manifest_len;
	char *config_json;       /* bytes of the config (NUL-terminated) */
	size_t config_len;
	char platform[128];      /* os/arch[/variant] from the config */
	char *ref_name;          /* ref name annotation / RepoTag, or NULL */
	size_t n_layers;
	struct tsr_oci_layer *layers; /* base first */
};

/* tsr_oci_image_open flags */
#define TSR_OCI_VERIFY_DIFF_IDS 0x1u /* decompress each layer once and check
				      * its diff_id (plain layers: free) */

struct tsr_oci_open_opts {
	const char *platform; /* "os/arch[/variant]"; NULL: the only manifest,
			       * else linux/amd64 */
	const char *ref;      /* org.opencontainers.image.ref.name (OCI) or a
			       * RepoTags entry (docker); NULL: by platform */
	unsigned flags;
	/* Extraction caps, 0 for none.  max_blob bounds each member written
	 * to workdir and what each compressed layer decompresses to;
	 * max_total bounds the sum of both over the whole image.  Checked
	 * while the bytes are produced, against a member's claimed size
	 * first: -EFBIG with nothing past the cap written (the partial member
	 * removed).  With a cap, compressed layers are decompressed once
	 * (counting, hashing) even without TSR_OCI_VERIFY_DIFF_IDS. */
	uint64_t max_blob, max_total;
};

/* The default extraction cap for a destination with free_bytes free:
 * free_bytes less a margin (TSR_OCI_EXTRACT_MARGIN plus a tenth of it),
 * at most TSR_OCI_EXTRACT_CEILING, at least 1 (a cap of one byte refuses
 * every non-empty image: a nearly full disk takes nothing). */
#define TSR_OCI_EXTRACT_MARGIN  (256ull << 20)
#define TSR_OCI_EXTRACT_CEILING (256ull << 30)
uint64_t tsr_oci_extract_cap(uint64_t free_bytes);
/* tsr_oci_extract_cap of the space free to root on the filesystem of
 * path (statvfs).  0 or -errno. */
int tsr_oci_extract_cap_for(const char *path, uint64_t *ret);

/*
 * Reads the image archive FILE (a tar, optionally compressed): an OCI image
 * layout (skopeo's oci-archive:, or a tar of a umoci layout) or a `docker
 * save` archive.  Extracts only the members the chosen image needs into
 * workdir (an existing, private, empty directory the caller owns and
 * removes, e.g. with tsr_oci_workdir_clean), verifying each against its
 * digest and size while it is written.  Members are never extracted as
 * links or devices; outer-tar links are resolved by name inside the archive
 * only.  opts may be NULL.  On success *ret is a new image
 * (tsr_oci_image_free); on failure *ret is untouched.
 */
int tsr_oci_image_open(const char *file, const char *workdir,
		       const struct tsr_oci_open_opts *opts,
		       struct tsr_oci_image **ret, char *err, size_t errlen);
void tsr_oci_image_free(struct tsr_oci_image *img);

/* Removes what tsr_oci_image_open may have created under workdir (not
 * workdir itself).  0 or the first -errno. */
int tsr_oci_workdir_clean(const char *workdir);

/* Normalizes a tar member name into out (outsz bytes): strips "./" and
 * leading "./" runs, collapses "//", drops a trailing "/"; "" is the root.
 * -EXDEV for an absolute path or a ".." component, -E2BIG beyond
 * TSR_OCI_PATH_MAX bytes or TSR_OCI_MAX_DEPTH components. */
int tsr_oci_path_normalize(const char *in, char *out, size_t outsz);

/* Parses "sha256:<64 hex>" / "sha512:<128 hex>" (lowercase).  0 or
 * -EBADMSG (-ENOTSUP for another algorithm). */
int tsr_oci_digest_check(const char *digest);

struct tsr_oci_apply_stats {
	uint64_t entries;     /* tar entries read */
	uint64_t files, dirs, symlinks, hardlinks, specials;
	uint64_t whiteouts, opaques; /* applied */
	uint64_t bytes;       /* regular file data written */
	uint64_t xattrs_skipped; /* trusted.*, and user.* on non-files */
};

/*
 * Applies the layer tar at blob_path (gzip, zstd or plain: detected) onto
 * the existing tree root_dir, as an OCI layer changeset:
 *  - pass 1 reads the whole tar, checks every entry and applies its
 *    whiteouts: `.wh.NAME` removes NAME (recursively), `.wh..wh..opq`
 *    removes every child of its directory; both only touch what was there
 *    before this layer.  Other `.wh..wh.*` names (aufs metadata) are
 *    skipped.
 *  - pass 2 creates the entries: files, dirs, hard links (to a path already
 *    in the tree), symlinks, char/block devices, fifos; numeric uid/gid,
 *    mode incl. setuid/setgid/sticky, xattrs (trusted.* skipped), atime
 *    and mtime.  An existing non-directory (or a directory replaced by a
 *    non-directory) is removed first; a directory over a directory keeps
 *    its contents and takes the entry's metadata (its old xattrs cleared).
 *  - directories' times are set last: the entry's times for directories in
 *    the layer, the previous times for directories that only had children
 *    added or removed.
 * Every path is resolved component by component from root_dir with
 * O_NOFOLLOW: an entry, hard link target or whiteout whose path goes
 * through a symlink (or "..", or starts with "/") is refused with -EXDEV
 * and nothing is created outside root_dir.  On failure the tree may hold
 * part of the layer.  Error messages name the entry but not the layer: the
 * caller prefixes "layer N: ".  stats may be NULL.
 */
int tsr_oci_apply_layer(const char *blob_path, const char *root_dir,
			struct tsr_oci_apply_stats *stats,
			char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
