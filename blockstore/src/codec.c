/* SPDX-License-Identifier: MIT */
/* Chunk digests (SHA-256 through libcrypto EVP) and codecs (zstd, zlib). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#include "codec.h"
#include "store_handle.h"

/* zstd's fastest regular levels and zlib level 1: commit runs on the I/O
 * path of a container's life, so speed wins over the last percent of
 * ratio.  Level -1 against 1 on 64 KiB blocks (zstd -b, bench/RESULTS.md):
 * about 2x faster on text for 13% less ratio, on a tar of /usr/include
 * about as fast for 13% less ratio. */
#define ZSTD_LEVEL (-1)
#define ZLIB_LEVEL 1

struct codec_ctx {
	ZSTD_CCtx *zstd;
};

int digest_chunk(const struct tsr_store *store, const void *buf, size_t len,
		 uint8_t out[TSR_DIGEST_LEN])
{
	unsigned int n = 0;

	if (!EVP_Digest(buf, len, out, &n, (const EVP_MD *)store->sha256, NULL) ||
	    n != TSR_DIGEST_LEN)
		return -EIO;
	return 0;
}

int codec_ctx_new(struct codec_ctx **ret)
{
	struct codec_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return -ENOMEM;
	ctx->zstd = ZSTD_createCCtx();
	if (!ctx->zstd) {
		free(ctx);
		return -ENOMEM;
	}
	*ret = ctx;
	return 0;
}

void codec_ctx_free(struct codec_ctx *ctx)
{
	if (!ctx)
		return;
	ZSTD_freeCCtx(ctx->zstd);
	free(ctx);
}

size_t codec_bound(size_t len)
{
	size_t a = ZSTD_compressBound(len), b = compressBound((uLong)len);

	return a > b ? a : b;
}

int codec_compress(struct codec_ctx *ctx, enum tsr_codec codec, const void *src,
		   size_t len, void *dst, size_t cap, size_t *ret_len,
		   enum tsr_codec *ret_codec)
{
	size_t out = 0;

	switch (codec) {
	case TSR_CODEC_ZSTD:
		out = ZSTD_compressCCtx(ctx->zstd, dst, cap, src, len, ZSTD_LEVEL);
		if (ZSTD_isError(out))
			out = len; /* fall back to raw */
		break;
	case TSR_CODEC_ZLIB: {
		uLongf n = (uLongf)cap;

		if (compress2(dst, &n, src, (uLong)len, ZLIB_LEVEL) != Z_OK)
			n = (uLongf)len;
		out = n;
		break;
	}
	case TSR_CODEC_NONE:
		out = len;
		break;
	default:
		return -EINVAL;
	}
	/* Compression pays when it saves at least 1/32 of the chunk;
	 * otherwise store raw and skip decompression on every read. */
	if (codec == TSR_CODEC_NONE || out >= len - len / 32) {
		if (cap < len)
			return -EINVAL;
		memcpy(dst, src, len);
		*ret_len = len;
		*ret_codec = TSR_CODEC_NONE;
		return 0;
	}
	*ret_len = out;
	*ret_codec = codec;
	return 0;
}

int codec_decompress(enum tsr_codec codec, const void *src, size_t len,
		     void *dst, size_t raw_len)
{
	switch (codec) {
	case TSR_CODEC_NONE:
		if (len != raw_len)
			return -EBADMSG;
		memcpy(dst, src, len);
		return 0;
	case TSR_CODEC_ZSTD: {
		size_t n = ZSTD_decompress(dst, raw_len, src, len);

		if (ZSTD_isError(n) || n != raw_len)
			return -EBADMSG;
		return 0;
	}
	case TSR_CODEC_ZLIB: {
		uLongf n = (uLongf)raw_len;

		if (uncompress(dst, &n, src, (uLong)len) != Z_OK || n != raw_len)
			return -EBADMSG;
		return 0;
	}
	default:
		return -EBADMSG;
	}
}
