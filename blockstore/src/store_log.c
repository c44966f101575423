/* SPDX-License-Identifier: MIT */
/* Log lines: one per event, to the caller's callback or stderr (store.h's
 * tsr_log_vprintf, for every module), and the store's own. */
#include <stdarg.h>
#include <stdio.h>

#include "store_handle.h"
#include "store_log.h"

void tsr_log_vprintf(tsr_log_fn fn, void *arg, const char *prefix, const char *fmt,
		     va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (fn)
		fn(arg, line);
	else if (prefix)
		fprintf(stderr, "%s%s\n", prefix, line);
}

void store_log(struct tsr_store *store, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tsr_log_vprintf(store->log, store->log_arg, "tessera: ", fmt, ap);
	va_end(ap);
}
