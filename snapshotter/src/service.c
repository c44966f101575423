/* SPDX-License-Identifier: MIT */
/*
 * The methods of containerd.services.snapshots.v1.Snapshots: requests
 * decoded with protobuf-c (a malformed message is InvalidArgument),
 * handed to snapshots.c, responses encoded.  Errors are translated to
 * gRPC codes here, once (grpc_code_from_errno).
 */
#include "internal.h"
#include "containerd/services/snapshots/v1/snapshots.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Containerd__Services__Snapshots__V1__PrepareSnapshotRequest PrepareReq;
typedef Containerd__Services__Snapshots__V1__PrepareSnapshotResponse PrepareResp;
typedef Containerd__Services__Snapshots__V1__ViewSnapshotRequest ViewReq;
typedef Containerd__Services__Snapshots__V1__MountsRequest MountsReq;
typedef Containerd__Services__Snapshots__V1__MountsResponse MountsResp;
typedef Containerd__Services__Snapshots__V1__CommitSnapshotRequest CommitReq;
typedef Containerd__Services__Snapshots__V1__RemoveSnapshotRequest RemoveReq;
typedef Containerd__Services__Snapshots__V1__StatSnapshotRequest StatReq;
typedef Containerd__Services__Snapshots__V1__StatSnapshotResponse StatResp;
typedef Containerd__Services__Snapshots__V1__UpdateSnapshotRequest UpdateReq;
typedef Containerd__Services__Snapshots__V1__UpdateSnapshotResponse UpdateResp;
typedef Containerd__Services__Snapshots__V1__ListSnapshotsRequest ListReq;
typedef Containerd__Services__Snapshots__V1__ListSnapshotsResponse ListResp;
typedef Containerd__Services__Snapshots__V1__UsageRequest UsageReq;
typedef Containerd__Services__Snapshots__V1__UsageResponse UsageResp;
typedef Containerd__Services__Snapshots__V1__Info Info;
typedef Containerd__Services__Snapshots__V1__Info__LabelsEntry InfoLabel;
typedef Containerd__Types__Mount Mount;
typedef Google__Protobuf__Timestamp Timestamp;
typedef Google__Protobuf__Empty Empty;

#define ERR_LEN 400

/* Packs msg into reply as one more message. */
static void reply_msg(struct grpc_reply *reply, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;
	int r;

	if (len > TSR_SNAPSHOTTER_MSG_MAX) {
		grpc_reply_error(reply, GRPC_RESOURCE_EXHAUSTED, "response too large");
		return;
	}
	buf = malloc(len ? len : 1);
	if (!buf) {
		grpc_reply_error(reply, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	protobuf_c_message_pack(msg, buf);
	r = grpc_reply_add(reply, buf, len);
	free(buf);
	if (r)
		grpc_reply_error(reply, grpc_code_from_errno(r), "%s", tsr_strerror(r));
}

static void reply_errno(struct snaps *s, const char *method, struct grpc_reply *reply,
			int r, const char *err)
{
	int code = grpc_code_from_errno(r);

	grpc_reply_error(reply, code, "%s", err[0] ? err : tsr_strerror(r));
	if (code != GRPC_NOT_FOUND && code != GRPC_ALREADY_EXISTS)
		snaps_log(s, "%s: %s", method, reply->msg);
}

static void reply_empty(struct grpc_reply *reply)
{
	Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;

	reply_msg(reply, &e.base);
}

/* The labels of a request, pointing into it.  NULL when there are none or
 * on -ENOMEM (*nomem). */
#define REQ_LABELS(req, ret_n, nomem) \
	req_labels((req)->n_labels, (void *const *)(req)->labels, ret_n, nomem)

static struct snap_label *req_labels(size_t n, void *const *entries, size_t *ret_n,
				     bool *nomem)
{
	struct snap_label *l;

	*ret_n = 0;
	*nomem = false;
	if (!n)
		return NULL;
	l = calloc(n, sizeof(*l));
	if (!l) {
		*nomem = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		/* Every map entry type is { base, key, value }. */
		const InfoLabel *e = entries[i];

		l[i].key = e->key;
		l[i].val = e->value;
	}
	*ret_n = n;
	return l;
}

/* ---- Info and Mount out ------------------------------------------------------ */

struct info_buf {
	Info info;
	Timestamp created, updated;
	InfoLabel *entries;
	InfoLabel **ptrs;
};

static void set_ts(Timestamp *ts, int64_t ns)
{
	google__protobuf__timestamp__init(ts);
	ts->seconds = ns / 1000000000;
	ts->nanos = (int32_t)(ns % 1000000000);
}

/* Fills ib from key and rec (pointing into them).  0 or -ENOMEM. */
static int info_fill(struct info_buf *ib, const char *key, const struct snap_rec *rec)
{
	memset(ib, 0, sizeof(*ib));
	containerd__services__snapshots__v1__info__init(&ib->info);
	ib->info.name = (char *)key;
	ib->info.parent = rec->parent;
	ib->info.kind = (Containerd__Services__Snapshots__V1__Kind)rec->kind;
	set_ts(&ib->created, rec->created_ns);
	set_ts(&ib->updated, rec->updated_ns);
	ib->info.created_at = &ib->created;
	ib->info.updated_at = &ib->updated;
	if (rec->n_labels) {
		ib->entries = calloc(rec->n_labels, sizeof(*ib->entries));
		ib->ptrs = calloc(rec->n_labels, sizeof(*ib->ptrs));
		if (!ib->entries || !ib->ptrs) {
			free(ib->entries);
			free(ib->ptrs);
			return -ENOMEM;
		}
		for (size_t i = 0; i < rec->n_labels; i++) {
			containerd__services__snapshots__v1__info__labels_entry__init(&ib->entries[i]);
			ib->entries[i].key = rec->labels[i].key;
			ib->entries[i].value = rec->labels[i].val;
			ib->ptrs[i] = &ib->entries[i];
		}
		ib->info.n_labels = rec->n_labels;
		ib->info.labels = ib->ptrs;
	}
	return 0;
}

static void info_done(struct info_buf *ib)
{
	free(ib->entries);
	free(ib->ptrs);
}

/* Replies with a snapshot's mount.  The responses of Prepare, View and
 * Mounts are the same message on the wire: { repeated Mount mounts = 1; }. */
static void reply_mounts(const struct snap_mount *sm, struct grpc_reply *reply)
{
	MountsResp resp = CONTAINERD__SERVICES__SNAPSHOTS__V1__MOUNTS_RESPONSE__INIT;
	Mount m = CONTAINERD__TYPES__MOUNT__INIT, *mp = &m;

	m.type = (char *)sm->type;
	m.source = (char *)sm->source;
	m.n_options = sm->n_options;
	m.options = (char **)sm->options;
	resp.n_mounts = 1;
	resp.mounts = &mp;
	reply_msg(reply, &resp.base);
}

static void reply_info(const char *key, const struct snap_rec *rec, struct grpc_reply *reply)
{
	StatResp resp = CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_RESPONSE__INIT;
	struct info_buf ib;

	if (info_fill(&ib, key, rec) < 0) {
		grpc_reply_error(reply, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	resp.info = &ib.info;  /* Stat and Update responses: { Info info = 1; } */
	reply_msg(reply, &resp.base);
	info_done(&ib);
}

/* ---- the methods --------------------------------------------------------------- */

static void do_prepare(struct snaps *s, const char *method, const char *key,
		       const char *parent, struct snap_label *labels, size_t n, bool view,
		       struct grpc_reply *reply)
{
	struct snap_args a = { key, parent, labels, n };
	struct snap_mount sm;
	char err[ERR_LEN] = "";
	int r = snaps_prepare(s, &a, view, &sm, err, sizeof(err));

	if (r) {
		reply_errno(s, method, reply, r, err);
		return;
	}
	reply_mounts(&sm, reply);
}

static void run_prepare(struct snaps *s, const ProtobufCMessage *msg, struct grpc_reply *reply)
{
	const PrepareReq *req = (const PrepareReq *)msg;
	size_t n;
	bool nomem;
	struct snap_label *l = REQ_LABELS(req, &n, &nomem);

	if (nomem) {
		grpc_reply_error(reply, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	do_prepare(s, "Prepare", req->key, req->parent, l, n, false, reply);
	free(l);
}

static void run_view(struct snaps *s, const ProtobufCMessage *msg, struct grpc_reply *reply)
{
	const ViewReq *req = (const ViewReq *)msg;
	size_t n;
	bool nomem;
	struct snap_label *l = REQ_LABELS(req, &n, &nomem);

	if (nomem) {
		grpc_reply_error(reply, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	do_prepare(s, "View", req->key, req->parent, l, n, true, reply);
	free(l);
}

static void run_mounts(struct snaps *s, const ProtobufCMessage *msg, struct grpc_reply *reply)
{
	const MountsReq *req = (const MountsReq *)msg;
	struct snap_rec *rec;
	struct snap_mount sm;
	char err[ERR_LEN] = "";
	int r;

	pthread_rwlock_rdlock(&s->lock);
	r = snaps_stat_locked(s, req->key, &rec, err, sizeof(err));
	if (!r) {
		r = snaps_mount_of(s, req->key, rec, &sm);
		if (r)
			snprintf(err, sizeof(err), "attaching a loop device: %s",
				 tsr_strerror(r));
		snap_rec_free(rec);
	}
	pthread_rwlock_unlock(&s->lock);
	if (r) {
		reply_errno(s, "Mounts", reply, r, err);
		return;
	}
	reply_mounts(&sm, reply);
}

static void run_commit(struct snaps *s, const ProtobufCMessage *msg, struct grpc_reply *reply)
{
	const CommitReq *req = (const CommitReq *)msg;
	char err[ERR_LEN] = "";
	size_t n;
	bool nomem;
	struct snap_label *l = REQ_LABELS(req, &n, &nomem);
	struct snap_args a = { req->key, "", l, n };
	int r;

	if (nomem) {
		grpc_reply_error(reply, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r = snaps_commit(s, req->name, &a, err, sizeof(err));
	free(l);
	if (r) {
		reply_errno(s, "Commit", reply, r, err);
		return;
	}
	reply_empty(reply);
}

static void run_remove(struct snaps *s, const ProtobufCMessage *msg, struct grpc_reply *reply)
{
	const RemoveReq *req = (const RemoveReq *)msg;
	char err[ERR_LEN] = "";
	int r = snaps_remove(s, req->key, err, sizeof(err));

	if (r) {
		reply_errno(s, "Remove", reply, r, err);
		return;
	}
	reply_empty(reply);
}

static void run_stat(struct snaps *s, const ProtobufCMessage *msg, struct grpc_reply *reply)
{
	const StatReq *req = (const StatReq *)msg;
	struct snap_rec *rec;
	char err[ERR_LEN] = "";
	int r;

	pthread_rwlock_rdlock(&s->lock);
	r = snaps_stat_locked(s, req->key, &rec, err, sizeof(err));
	pthread_rwlock_unlock(&s->lock);
	if (r) {
		reply_errno(s, "Stat", reply, r, err);
		return;
	}
	reply_info(req->key, rec, reply);
	snap_rec_free(rec);
}

static void run_update(struct snaps *s, const ProtobufCMessage *msg, struct grpc_reply *reply)
{
	const UpdateReq *req = (const UpdateReq *)msg;
	struct snap_rec *rec;
	char err[ERR_LEN] = "";
	struct snap_label *l;
	size_t n;
	bool nomem;
	int r;

	if (!req->info) {
		grpc_reply_error(reply, GRPC_INVALID_ARGUMENT, "no snapshot info");
		return;
	}
	l = REQ_LABELS(req->info, &n, &nomem);
	if (nomem) {
		grpc_reply_error(reply, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r = snaps_update(s, req->info->name, l, n,
			 req->update_mask ? req->update_mask->paths : NULL,
			 req->update_mask ? req->update_mask->n_paths : 0, &rec, err,
			 sizeof(err));
	free(l);
	if (r) {
		reply_errno(s, "Update", reply, r, err);
		return;
	}
	reply_info(req->info->name, rec, reply);
	snap_rec_free(rec);
}

/* ---- List ------------------------------------------------------------------------ */

struct list_ctx {
	struct snap_filter **filters;
	size_t n_filters;
	struct grpc_reply *reply;
	const char *key;
	const struct snap_rec *rec;
	char joined[4096];
};

static const char *snap_field(void *arg, char *const *path, size_t n)
{
	struct list_ctx *c = arg;
	size_t o = 0, len;

	if (!n)
		return NULL;
	if (strcmp(path[0], "kind") == 0)
		return c->rec->kind == SNAP_ACTIVE ? "active"
		       : c->rec->kind == SNAP_VIEW ? "view" : "committed";
	if (strcmp(path[0], "name") == 0)
		return c->key;
	if (strcmp(path[0], "parent") == 0)
		return c->rec->parent;
	if (strcmp(path[0], "labels") != 0 || !c->rec->n_labels)
		return NULL;
	/* labels.a.b looks label "a.b" up, as containerd does. */
	for (size_t i = 1; i < n; i++) {
		len = strlen(path[i]);
		if (len + 2 > sizeof(c->joined) - o)
			return NULL;
		if (i > 1)
			c->joined[o++] = '.';
		memcpy(c->joined + o, path[i], len);
		o += len;
	}
	c->joined[o] = 0;
	return snap_rec_label_get(c->rec, c->joined);
}

static int list_one(const char *key, const struct snap_rec *rec, void *arg)
{
	ListResp resp = CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_RESPONSE__INIT;
	struct list_ctx *c = arg;
	struct info_buf ib;
	Info *ip = &ib.info;
	bool match = c->n_filters == 0;

	if (!rec || rec->pending)
		return 0;
	c->key = key;
	c->rec = rec;
	for (size_t i = 0; !match && i < c->n_filters; i++)
		match = snap_filter_match(c->filters[i], snap_field, c);
	if (!match)
		return 0;
	if (info_fill(&ib, key, rec) < 0)
		return -ENOMEM;
	/* One snapshot per message of the stream. */
	resp.n_info = 1;
	resp.info = &ip;
	reply_msg(c->reply, &resp.base);
	info_done(&ib);
	return c->reply->code == GRPC_OK ? 0 : -EMSGSIZE;
}

static void run_list(struct snaps *s, const ProtobufCMessage *msg, struct grpc_reply *reply)
{
	const ListReq *req = (const ListReq *)msg;
	struct list_ctx c = { .reply = reply };
	char err[ERR_LEN] = "";
	int r = 0;

	c.filters = calloc(req->n_filters ? req->n_filters : 1, sizeof(*c.filters));
	if (!c.filters) {
		grpc_reply_error(reply, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	for (; !r && c.n_filters < req->n_filters; c.n_filters++)
		r = snap_filter_parse(req->filters[c.n_filters], &c.filters[c.n_filters], err,
				      sizeof(err));
	if (r) {
		c.n_filters--;
		reply_errno(s, "List", reply, r, err);
	} else {
		pthread_rwlock_rdlock(&s->lock);
		r = snap_rec_list(s->store, list_one, &c);
		pthread_rwlock_unlock(&s->lock);
		if (r && reply->code == GRPC_OK)
			reply_errno(s, "List", reply, r, "");
	}
	for (size_t i = 0; i < c.n_filters; i++)
		snap_filter_free(c.filters[i]);
	free(c.filters);
}

/* ---- Usage, Cleanup ------------------------------------------------------------- */

static void run_usage(struct snaps *s, const ProtobufCMessage *msg, struct grpc_reply *reply)
{
	const UsageReq *req = (const UsageReq *)msg;
	UsageResp resp = CONTAINERD__SERVICES__SNAPSHOTS__V1__USAGE_RESPONSE__INIT;
	char err[ERR_LEN] = "";
	int r = snaps_usage(s, req->key, &resp.size, &resp.inodes, err, sizeof(err));

	if (r) {
		reply_errno(s, "Usage", reply, r, err);
		return;
	}
	reply_msg(reply, &resp.base);
}

static void run_cleanup(struct snaps *s, const ProtobufCMessage *msg, struct grpc_reply *reply)
{
	char err[ERR_LEN] = "";
	int r = snaps_cleanup(s, err, sizeof(err));

	(void)msg;
	if (r) {
		reply_errno(s, "Cleanup", reply, r, err);
		return;
	}
	reply_empty(reply);
}

/* ---- dispatch ------------------------------------------------------------------------ */

struct method {
	const char *name;
	const ProtobufCMessageDescriptor *request;
	void (*run)(struct snaps *s, const ProtobufCMessage *msg, struct grpc_reply *reply);
};

static const struct method methods[] = {
	{ "Prepare", &containerd__services__snapshots__v1__prepare_snapshot_request__descriptor,
	  run_prepare },
	{ "View", &containerd__services__snapshots__v1__view_snapshot_request__descriptor,
	  run_view },
	{ "Mounts", &containerd__services__snapshots__v1__mounts_request__descriptor,
	  run_mounts },
	{ "Commit", &containerd__services__snapshots__v1__commit_snapshot_request__descriptor,
	  run_commit },
	{ "Remove", &containerd__services__snapshots__v1__remove_snapshot_request__descriptor,
	  run_remove },
	{ "Stat", &containerd__services__snapshots__v1__stat_snapshot_request__descriptor,
	  run_stat },
	{ "Update", &containerd__services__snapshots__v1__update_snapshot_request__descriptor,
	  run_update },
	{ "List", &containerd__services__snapshots__v1__list_snapshots_request__descriptor,
	  run_list },
	{ "Usage", &containerd__services__snapshots__v1__usage_request__descriptor, run_usage },
	{ "Cleanup", &containerd__services__snapshots__v1__cleanup_request__descriptor,
	  run_cleanup },
};

int snap_method_find(const char *path)
{
	size_t n = strlen(SNAP_SERVICE_PATH);

	if (strncmp(path, SNAP_SERVICE_PATH, n) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(path + n, methods[i].name) == 0)
			return (int)i;
	return -1;
}

void snap_service_call(struct snaps *s, int method, const uint8_t *body, size_t len,
		       struct grpc_reply *reply)
{
	const uint8_t *data;
	ProtobufCMessage *msg;
	size_t n;

	if (method < 0 || (size_t)method >= sizeof(methods) / sizeof(methods[0])) {
		grpc_reply_error(reply, GRPC_UNIMPLEMENTED, "unknown method");
		return;
	}
	if (grpc_unframe(body, len, &data, &n, reply) != GRPC_OK)
		return;
	msg = protobuf_c_message_unpack(methods[method].request, NULL, n, data);
	if (!msg) {
		grpc_reply_error(reply, GRPC_INVALID_ARGUMENT, "malformed %s request",
				 methods[method].name);
		return;
	}
	if (s) {
		methods[method].run(s, msg, reply);
	} else if (strcmp(methods[method].name, "List") == 0) {
		/* Decoding only (fuzzing): the filters are part of it. */
		const ListReq *req = (const ListReq *)msg;
		struct snap_filter *f;
		char err[ERR_LEN];

		for (size_t i = 0; i < req->n_filters; i++)
			if (snap_filter_parse(req->filters[i], &f, err, sizeof(err)) == 0)
				snap_filter_free(f);
	}
	protobuf_c_message_free_unpacked(msg, NULL);
}
