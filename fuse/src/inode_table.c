/* SPDX-License-Identifier: MIT */
/*
 * Inode numbers for the names the kernel has looked up.
 *
 * Numbers are handed out from a 64-bit counter and never reused within a
 * mount, so a generation number is not needed.  Two hash indexes:
 * by number (every live node) and by (kind, key) (the current node of each
 * name).  A volume removed and created again under the same name gets a new
 * node; the old one stays reachable by number only until the kernel forgets
 * it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_internal.h"

static unsigned ino_bucket(fuse_ino_t ino)
{
	return (unsigned)(ino % TSR_NODE_BUCKETS);
}

/* FNV-1a over the kind and the key. */
static unsigned key_bucket(enum tsr_node_kind kind, const char *key)
{
	uint32_t h = 2166136261u ^ (uint32_t)kind;

	for (; *key; key++) {
		h ^= (uint8_t)*key;
		h *= 16777619u;
	}
	return h % TSR_NODE_BUCKETS;
}

int tsr_inode_table_init(struct tsr_inode_table *t)
{
	memset(t, 0, sizeof(*t));
	t->next_ino = TSR_INO_FIRST_DYNAMIC;
	return -pthread_mutex_init(&t->lock, NULL);
}

void tsr_inode_table_fini(struct tsr_inode_table *t)
{
	for (unsigned i = 0; i < TSR_NODE_BUCKETS; i++) {
		struct tsr_node *n = t->by_ino[i];

		while (n) {
			struct tsr_node *next = n->ino_next;

			free(n);
			n = next;
		}
		t->by_ino[i] = NULL;
		t->by_key[i] = NULL;
	}
	pthread_mutex_destroy(&t->lock);
}

/* Called with t->lock held. */
static void unlink_key(struct tsr_inode_table *t, struct tsr_node *node)
{
	struct tsr_node **pp = &t->by_key[key_bucket(node->kind, node->key)];

	for (; *pp; pp = &(*pp)->key_next) {
		if (*pp == node) {
			*pp = node->key_next;
			break;
		}
	}
	node->named = false;
	node->key_next = NULL;
}

/* Called with t->lock held. */
static struct tsr_node *find_key(struct tsr_inode_table *t,
				 enum tsr_node_kind kind, const char *key)
{
	struct tsr_node *n = t->by_key[key_bucket(kind, key)];

	for (; n; n = n->key_next)
		if (n->kind == kind && !strcmp(n->key, key))
			return n;
	return NULL;
}

int tsr_inode_lookup(struct tsr_inode_table *t, enum tsr_node_kind kind,
		     const char *key, uint64_t vol_id, struct tsr_node **ret_node)
{
	size_t klen = strlen(key);
	struct tsr_node *node, *fresh;
	unsigned kb = key_bucket(kind, key);

	/* Allocate before taking the lock; freed again when the name is
	 * known already (lookups are not on the I/O path). */
	fresh = calloc(1, sizeof(*fresh) + klen + 1);
	if (!fresh)
		return -ENOMEM;

	pthread_mutex_lock(&t->lock);
	node = find_key(t, kind, key);
	if (node && node->vol_id != vol_id) {
		unlink_key(t, node);
		node = NULL;
	}
	if (!node) {
		node = fresh;
		fresh = NULL;
		node->ino = t->next_ino++;
		node->kind = kind;
		node->vol_id = vol_id;
		memcpy(node->key, key, klen + 1);
		node->named = true;
		node->key_next = t->by_key[kb];
		t->by_key[kb] = node;
		node->ino_next = t->by_ino[ino_bucket(node->ino)];
		t->by_ino[ino_bucket(node->ino)] = node;
	}
	node->nlookup++;
	pthread_mutex_unlock(&t->lock);

	free(fresh);
	*ret_node = node;
	return 0;
}

struct tsr_node *tsr_inode_get(struct tsr_inode_table *t, fuse_ino_t ino)
{
	struct tsr_node *n;

	pthread_mutex_lock(&t->lock);
	for (n = t->by_ino[ino_bucket(ino)]; n; n = n->ino_next)
		if (n->ino == ino)
			break;
	pthread_mutex_unlock(&t->lock);
	return n;
}

fuse_ino_t tsr_inode_peek(struct tsr_inode_table *t, enum tsr_node_kind kind,
			  const char *key)
{
	struct tsr_node *n;
	fuse_ino_t ino;

	pthread_mutex_lock(&t->lock);
	n = find_key(t, kind, key);
	ino = n ? n->ino : 0;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

void tsr_inode_forget(struct tsr_inode_table *t, fuse_ino_t ino, uint64_t n)
{
	struct tsr_node **pp, *node = NULL;

	pthread_mutex_lock(&t->lock);
	for (pp = &t->by_ino[ino_bucket(ino)]; *pp; pp = &(*pp)->ino_next) {
		if ((*pp)->ino == ino) {
			node = *pp;
			break;
		}
	}
	if (node) {
		node->nlookup = n < node->nlookup ? node->nlookup - n : 0;
		if (!node->nlookup) {
			*pp = node->ino_next;
			if (node->named)
				unlink_key(t, node);
		} else {
			node = NULL;
		}
	}
	pthread_mutex_unlock(&t->lock);
	free(node);
}
