/* SPDX-License-Identifier: MIT */
/*
 * A bounded cache of decompressed chunks whose digest was verified: a hit
 * skips the pack read, the decompression and the SHA-256.  Keyed by digest
 * (so shared by every layer and volume that holds the chunk), evicted in
 * LRU order.  One mutex: a hit is a hash probe and a memcpy of at most one
 * chunk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "chunk_cache.h"

struct cache_entry {
	uint8_t digest[TSR_DIGEST_LEN];
	struct cache_entry *hnext;             /* hash chain */
	struct cache_entry *lru_prev, *lru_next;
	uint8_t data[];                        /* chunk_size bytes */
};

struct chunk_cache {
	pthread_mutex_t lock;                  /* protects everything below */
	uint32_t chunk_size;
	size_t capacity;                       /* entries */
	size_t count;
	size_t nbuckets;                       /* power of two */
	struct cache_entry **buckets;
	struct cache_entry lru;                /* sentinel: lru.lru_next is newest */
};

static size_t bucket_of(const struct chunk_cache *c, const uint8_t *digest)
{
	uint64_t h;

	/* The digest is already uniformly distributed. */
	memcpy(&h, digest, sizeof(h));
	return (size_t)(h & (c->nbuckets - 1));
}

int chunk_cache_new(uint64_t capacity_bytes, uint32_t chunk_size,
		    struct chunk_cache **ret)
{
	struct chunk_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->chunk_size = chunk_size;
	c->capacity = (size_t)(capacity_bytes / chunk_size);
	if (c->capacity < 4)
		c->capacity = 4;
	c->nbuckets = 16;
	while (c->nbuckets < c->capacity)
		c->nbuckets *= 2;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return -ENOMEM;
	}
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	pthread_mutex_init(&c->lock, NULL);
	*ret = c;
	return 0;
}

void chunk_cache_free(struct chunk_cache *c)
{
	struct cache_entry *e, *next;

	if (!c)
		return;
	for (e = c->lru.lru_next; e != &c->lru; e = next) {
		next = e->lru_next;
		free(e);
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void lru_unlink(struct cache_entry *e)
{
	e->lru_prev->lru_next = e->lru_next;
	e->lru_next->lru_prev = e->lru_prev;
}

static void lru_push_front(struct chunk_cache *c, struct cache_entry *e)
{
	e->lru_next = c->lru.lru_next;
	e->lru_prev = &c->lru;
	c->lru.lru_next->lru_prev = e;
	c->lru.lru_next = e;
}

static struct cache_entry *find(struct chunk_cache *c, const uint8_t *digest)
{
	struct cache_entry *e = c->buckets[bucket_of(c, digest)];

	while (e && memcmp(e->digest, digest, TSR_DIGEST_LEN))
		e = e->hnext;
	return e;
}

int chunk_cache_copy(struct chunk_cache *c, const uint8_t digest[TSR_DIGEST_LEN],
		     uint32_t off, uint32_t len, void *dst)
{
	struct cache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = find(c, digest);
	if (e) {
		memcpy(dst, e->data + off, len);
		lru_unlink(e);
		lru_push_front(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	return e ? 0 : -ENOENT;
}

static void evict_one(struct chunk_cache *c)
{
	struct cache_entry *victim = c->lru.lru_prev, **pp;

	lru_unlink(victim);
	for (pp = &c->buckets[bucket_of(c, victim->digest)]; *pp != victim;
	     pp = &(*pp)->hnext)
		;
	*pp = victim->hnext;
	c->count--;
	free(victim);
}

void chunk_cache_insert(struct chunk_cache *c, const uint8_t digest[TSR_DIGEST_LEN],
			const void *chunk)
{
	struct cache_entry *e = malloc(sizeof(*e) + c->chunk_size);
	size_t b;

	/* A failed allocation only costs a later re-read. */
	if (!e)
		return;
	memcpy(e->digest, digest, TSR_DIGEST_LEN);
	memcpy(e->data, chunk, c->chunk_size);
	pthread_mutex_lock(&c->lock);
	if (find(c, digest)) {
		/* Another reader loaded it first. */
		pthread_mutex_unlock(&c->lock);
		free(e);
		return;
	}
	while (c->count >= c->capacity)
		evict_one(c);
	b = bucket_of(c, digest);
	e->hnext = c->buckets[b];
	c->buckets[b] = e;
	lru_push_front(c, e);
	c->count++;
	pthread_mutex_unlock(&c->lock);
}
