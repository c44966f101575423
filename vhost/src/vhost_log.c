/* SPDX-License-Identifier: MIT */
/*
 * A device's log line (vhost_user.h): a leaf, so that the queue threads
 * (queue.c) and the message handlers (vhost_dev.c) both log without
 * calling into each other.
 */
#include "vhost_user.h"

#include <stdarg.h>
#include <stdio.h>

void tsr_vu_log(struct tsr_vu_dev *dev, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (dev->log)
		dev->log(dev->log_arg, line);
}
