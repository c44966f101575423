/* SPDX-License-Identifier: MIT */
/* The store's log: where it reports damage met outside fsck (store_log.c). */
#ifndef TSR_STORE_LOG_H
#define TSR_STORE_LOG_H

struct tsr_store;

/* One line (no newline) to the store's log callback, else to stderr as
 * "tessera: ...".  Library code prints nothing else. */
void store_log(struct tsr_store *store, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* TSR_STORE_LOG_H */
