/* SPDX-License-Identifier: MIT */
/* The store's log: one line per event, to the caller's callback or stderr. */
#include <stdarg.h>
#include <stdio.h>

#include "store_handle.h"
#include "store_log.h"

void store_log(struct tsr_store *store, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (store->log)
		store->log(store->log_arg, line);
	else
		fprintf(stderr, "tessera: %s\n", line);
}
