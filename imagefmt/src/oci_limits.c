/* SPDX-License-Identifier: MIT */
/*
 * Extraction caps of the image readers (oci_image.h: max_blob, max_total):
 * a small compressed archive can claim or expand to any size, so every
 * byte written to the work dir and every byte a compressed layer
 * decompresses to is counted here as it is produced, and the read stops
 * at the cap instead of filling the disk.  The defaults come from the
 * free space of the destination.
 */
#include "oci_internal.h"

#include <errno.h>
#include <stdio.h>
#include <sys/statvfs.h>

uint64_t tsr_oci_extract_cap(uint64_t free_bytes)
{
	uint64_t margin = TSR_OCI_EXTRACT_MARGIN + free_bytes / 10;

	if (free_bytes <= margin)
		return 1;
	free_bytes -= margin;
	return free_bytes < TSR_OCI_EXTRACT_CEILING ? free_bytes : TSR_OCI_EXTRACT_CEILING;
}

int tsr_oci_extract_cap_for(const char *path, uint64_t *ret)
{
	struct statvfs sv;

	if (statvfs(path, &sv))
		return -errno;
	*ret = tsr_oci_extract_cap((uint64_t)sv.f_bfree * sv.f_frsize);
	return 0;
}

/* "1.0G", "512M", "12345": the cap as the user would write it. */
static const char *fmt_cap(uint64_t v, char buf[32])
{
	static const char units[] = "KMGTPE";
	int u = -1;
	double d = (double)v;

	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, 32, "%llu bytes", (unsigned long long)v);
	else
		snprintf(buf, 32, "%.1f%c", d, units[u]);
	return buf;
}

int oci_charge(struct ctx *c, const char *what, uint64_t so_far, uint64_t n, bool count)
{
	uint64_t blob = c->o->max_blob, total = c->o->max_total;
	char b[32];

	if (blob && (so_far > blob || n > blob - so_far))
		return oci_fail(c, -EFBIG, "%s expands past the limit of %s", what,
				fmt_cap(blob, b));
	if (total && (c->extracted > total || n > total - c->extracted))
		return oci_fail(c, -EFBIG, "%s takes the import past its limit of %s", what,
				fmt_cap(total, b));
	if (count)
		c->extracted += n;
	return 0;
}
