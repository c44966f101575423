/* SPDX-License-Identifier: MIT */
/*
 * The snapshotter's log lines, through the caller's log function
 * (tsr_snapshotter_options.log).  A leaf: every other file may log.
 */
#include "internal.h"

#include <stdarg.h>

void snaps_log(struct snaps *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tsr_log_vprintf(s->log, s->log_arg, "tessera: serve: ", fmt, ap);
	va_end(ap);
}
