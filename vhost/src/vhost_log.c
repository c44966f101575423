/* SPDX-License-Identifier: MIT */
/*
 * A device's log line (vhost_user.h): a leaf, so that the queue threads
 * (queue.c) and the message handlers (vhost_dev.c) both log without
 * calling into each other.
 */
#include "vhost_user.h"

#include <stdarg.h>

void tsr_vu_log(struct tsr_vu_dev *dev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tsr_log_vprintf(dev->log, dev->log_arg, NULL, fmt, ap);
	va_end(ap);
}
