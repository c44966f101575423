/* SPDX-License-Identifier: MIT */
/* Chunk digests and compression (codec.c). */
#ifndef TSR_CODEC_H
#define TSR_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <tessera/store.h>

struct tsr_store;
struct codec_ctx;

/* SHA-256 of buf with the store's digest context. */
int digest_chunk(const struct tsr_store *store, const void *buf, size_t len,
		 uint8_t out[TSR_DIGEST_LEN]);
int codec_ctx_new(struct codec_ctx **ret);
void codec_ctx_free(struct codec_ctx *ctx);
size_t codec_bound(size_t len);
/* Compresses src with codec into dst; *ret_codec is TSR_CODEC_NONE (and dst
 * a copy) when compression does not pay. */
int codec_compress(struct codec_ctx *ctx, enum tsr_codec codec, const void *src,
		   size_t len, void *dst, size_t cap, size_t *ret_len,
		   enum tsr_codec *ret_codec);
/* Decompresses exactly raw_len bytes into dst; -EBADMSG on any mismatch. */
int codec_decompress(enum tsr_codec codec, const void *src, size_t len,
		     void *dst, size_t raw_len);

#endif /* TSR_CODEC_H */
