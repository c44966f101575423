/* SPDX-License-Identifier: MIT */
/* Names across images, volumes and layers: names.h. */
#include <errno.h>
#include <string.h>

#include <tessera/image_store.h>
#include <tessera/names.h>

/* Indexed by enum tsr_name_kind; "KIND:" in front of a name forces KIND. */
static const char *const kind_names[] = { "name", "image", "volume", "layer" };

const char *tsr_name_kind_str(enum tsr_name_kind kind)
{
	return (unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[kind]
									    : "name";
}

static int collect_layer(const struct tsr_layer_id *id, const char *name, void *arg)
{
	struct tsr_name_match *m = arg;

	(void)name;
	if (m->n_layers < TSR_NAME_CANDIDATES)
		m->layers[m->n_layers] = *id;
	m->n_layers++;
	return 0;
}

/* Whether the prefix (if any) lets spec name a kind. */
static bool wants(const struct tsr_name_match *m, enum tsr_name_kind kind)
{
	return m->forced == TSR_NAME_ANY || m->forced == kind;
}

int tsr_name_resolve(struct tsr_store *store, const char *spec, struct tsr_name_match *ret)
{
	struct tsr_name_match m = { .forced = TSR_NAME_ANY, .name = spec };
	struct tsr_layer_id image_top, layer_id;
	struct tsr_volume_info vi;
	enum tsr_name_kind found[3];
	size_t n_found = 0;
	bool layer_ambiguous = false;
	int r;

	for (enum tsr_name_kind k = TSR_NAME_IMAGE; k <= TSR_NAME_LAYER; k++) {
		size_t n = strlen(kind_names[k]);

		if (!strncmp(spec, kind_names[k], n) && spec[n] == ':') {
			m.forced = k;
			m.name = spec + n + 1;
			break;
		}
	}
	*ret = m;
	/* Volume and layer names hold no '/'; image names may. */
	if (!*m.name || !strcmp(m.name, ".") || !strcmp(m.name, "..") ||
	    (strchr(m.name, '/') && !wants(&m, TSR_NAME_IMAGE)))
		return -EINVAL;

	if (wants(&m, TSR_NAME_IMAGE)) {
		r = tsr_image_get(store, m.name, &image_top, NULL, NULL);
		if (!r)
			found[n_found++] = TSR_NAME_IMAGE;
		else if (r != -ENOENT)
			return r;
	}
	if (!strchr(m.name, '/') && wants(&m, TSR_NAME_VOLUME)) {
		r = tsr_volume_stat(store, m.name, &vi);
		if (!r)
			found[n_found++] = TSR_NAME_VOLUME;
		else if (r != -ENOENT && r != -EINVAL)
			return r;
	}
	if (!strchr(m.name, '/') && wants(&m, TSR_NAME_LAYER)) {
		r = tsr_layer_resolve(store, m.name, &layer_id);
		if (!r)
			found[n_found++] = TSR_NAME_LAYER;
		else if (r == TSR_ERR_AMBIGUOUS)
			layer_ambiguous = true;
		else if (r != -ENOENT && r != -EINVAL)
			return r;
	}

	if (n_found > 1) {
		m.both[0] = found[0];
		m.both[1] = found[1];
		*ret = m;
		return TSR_ERR_AMBIGUOUS;
	}
	if (n_found == 0 && layer_ambiguous) {
		r = tsr_layer_matches(store, m.name, collect_layer, &m);
		*ret = m;
		return r < 0 ? r : TSR_ERR_AMBIGUOUS;
	}
	if (n_found == 0)
		return -ENOENT;
	m.kind = found[0];
	if (m.kind == TSR_NAME_IMAGE)
		m.id = image_top;
	else if (m.kind == TSR_NAME_LAYER)
		m.id = layer_id;
	*ret = m;
	return 0;
}
