/* SPDX-License-Identifier: MIT */
/*
 * The image readers' context (oci_internal.h, "oci_ctx.c"): the first
 * failure and its message.  A leaf: every other oci_*.c file records
 * failures here, and this file calls none of them.
 */
#include "oci_internal.h"

#include <stdarg.h>
#include <stdio.h>

int oci_fail(struct ctx *c, int r, const char *fmt, ...)
{
	va_list ap;

	if (!c->failed && c->err && c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	c->failed = true;
	return r;
}
