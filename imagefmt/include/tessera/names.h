/* SPDX-License-Identifier: MIT */
/*
 * Names across the three namespaces of a store (DESIGN, "Names"): where a
 * command takes an image, a volume or a layer (`mount --rootfs NAME`), NAME
 * resolves as an image, then a volume, then a layer (a name, a full id or a
 * unique id prefix: tsr_layer_resolve); "image:", "volume:" or "layer:" in
 * front forces one; two matches without a prefix are an error.  Prints
 * nothing: the caller words the outcome from the match.
 */
#ifndef TESSERA_NAMES_H
#define TESSERA_NAMES_H

#include <stddef.h>

#include <tessera/store.h>

enum tsr_name_kind {
	TSR_NAME_ANY = 0,  /* no prefix: any of the three */
	TSR_NAME_IMAGE = 1,
	TSR_NAME_VOLUME = 2,
	TSR_NAME_LAYER = 3,
};

/* How many layers an ambiguous id prefix reports. */
#define TSR_NAME_CANDIDATES 8

struct tsr_name_match {
	enum tsr_name_kind forced;  /* the prefix spec had, or TSR_NAME_ANY */
	const char *name;           /* spec without its prefix (points into spec) */
	/* 0: what was found. */
	enum tsr_name_kind kind;
	struct tsr_layer_id id;     /* an image's top layer, or the layer */
	/* TSR_ERR_AMBIGUOUS: either two kinds matched (both[0] and both[1], the first
	 * two in resolution order), or nothing else matched and a layer id
	 * prefix matched several layers (both[0] == TSR_NAME_ANY; the first
	 * of them in layers[0..n_layers)). */
	enum tsr_name_kind both[2];
	struct tsr_layer_id layers[TSR_NAME_CANDIDATES];
	size_t n_layers;
};

/*
 * Resolves spec.  0 and what it names; -EINVAL when the name after the
 * prefix cannot name anything it may name ("", ".", "..", or a '/' where
 * no image may match); -ENOENT when nothing matches; TSR_ERR_AMBIGUOUS (above).
 * *ret is filled on those three too (forced and name at least); other
 * negative errnos are the store's.
 */
int tsr_name_resolve(struct tsr_store *store, const char *spec, struct tsr_name_match *ret);

/* "image", "volume", "layer" (or "name" for TSR_NAME_ANY). */
const char *tsr_name_kind_str(enum tsr_name_kind kind);

#endif /* TESSERA_NAMES_H */
