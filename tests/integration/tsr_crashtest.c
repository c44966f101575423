/* SPDX-License-Identifier: MIT */
/*
 * tsr_crashtest: durability and integrity checks that need precise control
 * of the library.
 *
 *  - crash: kill -9 at random moments of a child that writes, flushes,
 *    commits, collects garbage or imports; then reopen the store and check
 *    it against what the child logged.
 *  - damage: damage a closed store on purpose (the on-disk format of
 *    blockstore/FORMAT.md: pack objects, pack length, LMDB values), then
 *    read it with a cold cache and run fsck.
 *
 *   tsr_crashtest crash MODE DIR ROUNDS [TESSERA]
 *       MODE: write | flush | commit | gc | import.  Builds a store in
 *       DIR/store, then ROUNDS times runs a child (this program, or for
 *       every other import round the tessera command TESSERA), kills it
 *       with SIGKILL after a random delay, reopens the store and checks it.
 *   tsr_crashtest child MODE STORE ARGS...
 *       the child of `crash`: logs what it does on stdout (see "Log").
 *   tsr_crashtest damage-setup STORE
 *       the store every damage case starts from: layers base, child (of
 *       base), other (sharing one chunk with base), volume vol (on base).
 *   tsr_crashtest gen FILE SIZE STREAM
 *       writes SIZE bytes of incompressible data, a function of the seed and
 *       the number STREAM (for the shell tests).
 *   tsr_crashtest damage KIND STORE
 *       damages STORE (a copy of the setup) and checks it; KIND is one of
 *       damage_kinds[].  Prints "named HEX" for each digest or layer id a
 *       finding must name, for the caller's own fsck run.
 *
 * Block content is derived from (seed, block, generation): old and new
 * content of a block can be told apart, and nothing else matches either.
 * The seed comes from $TSR_SEED (default: time and pid) and is printed;
 * damage-setup and damage must run with the same seed.
 *
 * Output: one "PASS: ..." or "FAIL: ..." line per check.  Exit 0 when all
 * passed, 1 otherwise, 2 on bad usage.  Uses <tessera/store.h> only, plus
 * the on-disk format for the damage itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <tessera/store.h>

#define BLOCK 4096u
#define NS_PER_US ((uint64_t)1000)
#define NS_PER_S ((uint64_t)1000000000)

static const char *prog = "tsr_crashtest";
static char self_exe[4096];
static uint64_t seed;
static uint64_t rng;
static unsigned failures;

/* ---- randomness and content ------------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? splitmix(&rng) % n : 0;
}

static void seed_init(void)
{
	const char *s = getenv("TSR_SEED");

	char text[32];

	if (s && *s)
		seed = strtoull(s, NULL, 0);
	else
		seed = (uint64_t)time(NULL) * 1000003u + (uint64_t)getpid();
	rng = seed;
	/* Children derive the same content. */
	snprintf(text, sizeof(text), "%" PRIu64, seed);
	setenv("TSR_SEED", text, 1);
}

/* Block b at generation g: zeros for g == 0; else (b, g) in the first 16
 * bytes, then bytes derived from (seed, b, g): random, or for one
 * generation in three a pattern that compresses. */
static void block_fill(uint8_t *buf, uint64_t b, uint64_t g)
{
	uint64_t s = seed ^ (b * 0xd6e8feb86659fd93ull) ^ (g * 0xc2b2ae3d27d4eb4full);

	if (g == 0) {
		memset(buf, 0, BLOCK);
		return;
	}
	memcpy(buf, &b, 8);
	memcpy(buf + 8, &g, 8);
	if (g % 3 == 0) {
		uint64_t v = splitmix(&s);

		for (unsigned i = 16; i < BLOCK; i += 8) {
			if (i % 512 == 0)
				v = splitmix(&s) & 0x0101010101010101ull;
			memcpy(buf + i, &v, 8);
		}
	} else {
		for (unsigned i = 16; i < BLOCK; i += 8) {
			uint64_t v = splitmix(&s);

			memcpy(buf + i, &v, 8);
		}
	}
}

static bool block_is(const uint8_t *buf, uint64_t b, uint64_t g)
{
	uint8_t want[BLOCK];

	block_fill(want, b, g);
	return memcmp(buf, want, BLOCK) == 0;
}

static bool is_zero(const uint8_t *buf, size_t len)
{
	return len == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0);
}

/* What a block that matched nothing looks like. */
static const char *block_describe(const uint8_t *buf, char *out, size_t len)
{
	uint64_t b, g;

	if (is_zero(buf, BLOCK)) {
		snprintf(out, len, "zeros");
		return out;
	}
	memcpy(&b, buf, 8);
	memcpy(&g, buf + 8, 8);
	if (block_is(buf, b, g))
		snprintf(out, len, "block %" PRIu64 " gen %" PRIu64, b, g);
	else
		snprintf(out, len, "unknown bytes (header %016" PRIx64 " %016" PRIx64 ")",
			 b, g);
	return out;
}

/* ---- output ------------------------------------------------------------------ */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	failures++;
	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void pass(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pass(const char *fmt, ...)
{
	va_list ap;

	printf("PASS: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static char *id_hex(const struct tsr_layer_id *id, char buf[TSR_ID_HEX_LEN + 1])
{
	tsr_layer_id_to_hex(id, buf);
	return buf;
}

static char *digest_hex(const uint8_t *d, char buf[TSR_ID_HEX_LEN + 1])
{
	struct tsr_layer_id id;

	memcpy(id.bytes, d, TSR_DIGEST_LEN);
	return id_hex(&id, buf);
}

/* ---- store helpers --------------------------------------------------------- */

static void quiet_log(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

/* Damage the store meets on reads is logged; damage tests expect it. */
static int store_open(const char *dir, bool quiet, struct tsr_store **ret)
{
	struct tsr_open_options o = { .cache_bytes = 8u << 20 };

	if (quiet)
		o.log = quiet_log;
	return tsr_store_open(dir, &o, ret);
}

static int apply_write(struct tsr_volume *vol, uint64_t b, uint64_t g)
{
	uint8_t buf[BLOCK];

	if (g == 0)
		return tsr_volume_write_zeroes(vol, b * BLOCK, BLOCK);
	block_fill(buf, b, g);
	return tsr_volume_write(vol, buf, BLOCK, b * BLOCK);
}

struct fsck_lines {
	char **v;
	size_t n;
};

static void collect_line(void *arg, const char *line)
{
	struct fsck_lines *l = arg;
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return;
	l->v = v;
	l->v[l->n] = strdup(line);
	if (l->v[l->n])
		l->n++;
}

static void lines_free(struct fsck_lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct fsck_lines){ 0 };
}

static bool lines_have(const struct fsck_lines *l, const char *text)
{
	for (size_t i = 0; i < l->n; i++)
		if (strstr(l->v[i], text))
			return true;
	return false;
}

/* fsck must return 0 with no findings.  Returns true when clean. */
static bool fsck_clean(struct tsr_store *store, const char *what)
{
	struct fsck_lines l = { 0 };
	struct tsr_fsck_stats st;
	int r = tsr_store_fsck(store, 0, collect_line, &l, NULL, &st);
	bool ok = r == 0 && l.n == 0;

	if (!ok) {
		fail("%s: fsck returned %d (%s) with %zu findings", what, r,
		     r < 0 ? tsr_strerror(r) : r ? "damage" : "clean", l.n);
		for (size_t i = 0; i < l.n && i < 12; i++)
			printf("    fsck: %s\n", l.v[i]);
	}
	lines_free(&l);
	return ok;
}

/* ---- models ------------------------------------------------------------------- */

/* The generation each 4 KiB block of a volume or layer reads as. */
struct model {
	uint64_t nblocks;
	uint64_t *gen;
};

static void model_init(struct model *m, uint64_t nblocks)
{
	m->nblocks = nblocks;
	m->gen = calloc(nblocks, sizeof(*m->gen));
	if (!m->gen) {
		perror("calloc");
		exit(1);
	}
}

static void model_copy(struct model *dst, const struct model *src)
{
	model_init(dst, src->nblocks);
	memcpy(dst->gen, src->gen, src->nblocks * sizeof(*src->gen));
}

struct known_layer {
	struct tsr_layer_id id;
	struct model m;
	bool removed;
};

struct layer_set {
	struct known_layer *v;
	size_t n;
};

static struct known_layer *layer_add(struct layer_set *s, const struct tsr_layer_id *id,
				     const struct model *m)
{
	struct known_layer *v = realloc(s->v, (s->n + 1) * sizeof(*v));

	if (!v) {
		perror("realloc");
		exit(1);
	}
	s->v = v;
	v[s->n] = (struct known_layer){ .id = *id };
	model_copy(&v[s->n].m, m);
	return &v[s->n++];
}

static struct known_layer *layer_find(struct layer_set *s, const struct tsr_layer_id *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (!memcmp(&s->v[i].id, id, sizeof(*id)))
			return &s->v[i];
	return NULL;
}

/* Reads the whole layer; every block must be exact.  True when it is. */
static bool layer_check(struct tsr_store *store, const struct known_layer *k,
			const char *what)
{
	char hex[TSR_ID_HEX_LEN + 1], desc[96];
	struct tsr_layer *layer;
	uint8_t *buf;
	uint64_t len = k->m.nblocks * BLOCK;
	int r = tsr_layer_open(store, &k->id, &layer);

	if (r < 0) {
		fail("%s: layer %s does not open: %s", what, id_hex(&k->id, hex),
		     tsr_strerror(r));
		return false;
	}
	buf = malloc(len);
	if (!buf) {
		perror("malloc");
		exit(1);
	}
	r = tsr_layer_read(layer, buf, len, 0);
	tsr_layer_close(layer);
	if (r < 0) {
		fail("%s: layer %s: read: %s", what, id_hex(&k->id, hex), tsr_strerror(r));
		free(buf);
		return false;
	}
	for (uint64_t b = 0; b < k->m.nblocks; b++) {
		if (!block_is(buf + b * BLOCK, b, k->m.gen[b])) {
			fail("%s: layer %s: block %" PRIu64 " reads %s, expected gen %" PRIu64,
			     what, id_hex(&k->id, hex), b,
			     block_describe(buf + b * BLOCK, desc, sizeof(desc)),
			     k->m.gen[b]);
			free(buf);
			return false;
		}
	}
	free(buf);
	return true;
}

static bool layers_check(struct tsr_store *store, const struct layer_set *s,
			 const char *what, unsigned *ret_checked)
{
	bool ok = true;

	*ret_checked = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].removed)
			continue;
		ok &= layer_check(store, &s->v[i], what);
		(*ret_checked)++;
	}
	return ok;
}

/* Creates a volume (on parent, sized as m), writes the given blocks with
 * fresh generations (*next_gen onwards), flushes, commits under name.  m
 * becomes the layer's content. */
static int make_layer(struct tsr_store *store, const char *name,
		      const struct tsr_layer_id *parent, struct model *m,
		      uint64_t nwrites, bool all, uint64_t *next_gen,
		      struct tsr_layer_id *ret_id)
{
	struct tsr_volume *vol;
	int r;

	r = tsr_volume_create(store, name, m->nblocks * BLOCK, parent);
	if (r < 0)
		return r;
	r = tsr_volume_open(store, name, &vol);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < (all ? m->nblocks : nwrites) && !r; i++) {
		uint64_t b = all ? i : rnd_below(m->nblocks);
		uint64_t g = (*next_gen)++;

		r = apply_write(vol, b, g);
		m->gen[b] = g;
	}
	if (!r)
		r = tsr_volume_flush(vol);
	if (r < 0) {
		tsr_volume_close(vol);
		return r;
	}
	return tsr_volume_commit(vol, NULL, NULL, ret_id);
}

/* ---- the child: does the work and logs it ------------------------------------- */

/*
 * Log: one line per event, each written with one write(2) before (W, P,
 * S) or after (O, F, C, G, D) the step it names:
 *   O               store and volume open
 *   W BLOCK GEN     about to write BLOCK at generation GEN (0: write-zeroes)
 *   P OFF LEN       about to write bytes [OFF, OFF+LEN) of the import file
 *   S               about to flush / commit / collect garbage
 *   F               a flush returned
 *   C ID            a commit returned layer ID
 *   G N C R         gc returned: N objects removed, C packs compacted, R removed
 *   D               done
 *   E TEXT          failed (then exit 1)
 */
static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	for (int done = 0; done < n;) {
		ssize_t w = write(STDOUT_FILENO, line + done, (size_t)(n - done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(3);
		done += (int)w;
	}
}

static int child_fail(const char *what, int err)
{
	log_line("E %s: %s", what, tsr_strerror(err));
	return 1;
}

/* write / flush: bursts of 4 KiB writes, each burst followed by a flush;
 * until killed.  commit: one burst, a flush, a commit. */
static int child_volume(const char *mode, const char *dir, const char *name,
			uint64_t gen, uint64_t burst_min, uint64_t burst_max)
{
	struct tsr_store *store;
	struct tsr_volume *vol;
	struct tsr_layer_id id;
	char hex[TSR_ID_HEX_LEN + 1];
	bool commit = strcmp(mode, "commit") == 0;
	uint64_t nblocks;
	int r;

	r = store_open(dir, false, &store);
	if (r < 0)
		return child_fail("open store", r);
	r = tsr_volume_open(store, name, &vol);
	if (r < 0)
		return child_fail("open volume", r);
	nblocks = tsr_volume_size(vol) / BLOCK;
	log_line("O");
	for (unsigned round = 0; round < 100000; round++) {
		uint64_t n = burst_min + rnd_below(burst_max - burst_min + 1);

		for (uint64_t i = 0; i < n; i++) {
			uint64_t b = rnd_below(nblocks);
			uint64_t g = rnd_below(16) == 0 ? 0 : gen++;

			log_line("W %" PRIu64 " %" PRIu64, b, g);
			r = apply_write(vol, b, g);
			if (r < 0)
				return child_fail("write", r);
		}
		log_line("S");
		r = tsr_volume_flush(vol);
		if (r < 0)
			return child_fail("flush", r);
		log_line("F");
		if (!commit)
			continue;
		log_line("S");
		r = tsr_volume_commit(vol, NULL, NULL, &id);
		if (r < 0)
			return child_fail("commit", r);
		log_line("C %s", id_hex(&id, hex));
		break;
	}
	tsr_store_close(store);
	log_line("D");
	return 0;
}

static int child_gc(const char *dir)
{
	struct tsr_store *store;
	struct tsr_gc_stats st;
	int r;

	r = store_open(dir, false, &store);
	if (r < 0)
		return child_fail("open store", r);
	log_line("O");
	log_line("S");
	r = tsr_store_gc(store, NULL, &st);
	if (r < 0)
		return child_fail("gc", r);
	log_line("G %" PRIu64 " %" PRIu64 " %" PRIu64, st.objects_removed, st.packs_compacted,
		 st.packs_removed);
	tsr_store_close(store);
	log_line("D");
	return 0;
}

#define IMPORT_PIECE (256u << 10)

/* Like `tessera volume import`: create, write the non-zero pieces, flush. */
static int child_import(const char *dir, const char *name, const char *path)
{
	struct tsr_store *store;
	struct tsr_volume *vol;
	struct stat st;
	uint8_t *buf = malloc(IMPORT_PIECE);
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !buf)
		return child_fail(path, -errno);
	r = store_open(dir, false, &store);
	if (r < 0)
		return child_fail("open store", r);
	r = tsr_volume_create(store, name, (uint64_t)st.st_size, NULL);
	if (r < 0)
		return child_fail("create volume", r);
	r = tsr_volume_open(store, name, &vol);
	if (r < 0)
		return child_fail("open volume", r);
	log_line("O");
	for (uint64_t off = 0; off < (uint64_t)st.st_size; off += IMPORT_PIECE) {
		size_t n = (uint64_t)st.st_size - off < IMPORT_PIECE ?
				   (size_t)((uint64_t)st.st_size - off) : IMPORT_PIECE;

		if (pread(fd, buf, n, (off_t)off) != (ssize_t)n)
			return child_fail("read import file", -EIO);
		if (is_zero(buf, n))
			continue;
		log_line("P %" PRIu64 " %zu", off, n);
		r = tsr_volume_write(vol, buf, n, off);
		if (r < 0)
			return child_fail("write", r);
	}
	log_line("S");
	r = tsr_volume_flush(vol);
	if (r < 0)
		return child_fail("flush", r);
	log_line("F");
	tsr_volume_close(vol);
	tsr_store_close(store);
	log_line("D");
	free(buf);
	close(fd);
	return 0;
}

static int cmd_child(int argc, char **argv)
{
	uint64_t gen;

	if (argc < 4)
		return 2;
	rng = strtoull(argv[argc - 1], NULL, 0); /* the last argument: its seed */
	if (!strcmp(argv[2], "write") || !strcmp(argv[2], "flush")) {
		if (argc != 7)
			return 2;
		gen = strtoull(argv[5], NULL, 0);
		return strcmp(argv[2], "write") == 0 ?
			       child_volume("write", argv[3], argv[4], gen, 1, 24) :
			       child_volume("flush", argv[3], argv[4], gen, 16, 128);
	}
	if (!strcmp(argv[2], "commit")) {
		if (argc != 7)
			return 2;
		gen = strtoull(argv[5], NULL, 0);
		return child_volume("commit", argv[3], argv[4], gen, 32, 160);
	}
	if (!strcmp(argv[2], "gc"))
		return argc == 5 ? child_gc(argv[3]) : 2;
	if (!strcmp(argv[2], "import"))
		return argc == 7 ? child_import(argv[3], argv[4], argv[5]) : 2;
	return 2;
}

/* ---- the parent: runs a child, reads its log, kills it ------------------------ */

struct ev {
	char type;
	uint64_t a, b;
	char hex[TSR_ID_HEX_LEN + 1];
	char text[160];
	uint64_t t_ns;  /* when the parent read it */
};

struct child {
	pid_t pid;
	int fd;
	char part[512];   /* an incomplete line */
	size_t plen;
	struct ev *ev;
	size_t nev;
	bool eof;
	uint64_t eof_ns;
	int status;
};

static void child_parse(struct child *c, const char *line, uint64_t t)
{
	struct ev e = { .type = line[0], .t_ns = t };
	struct ev *v;

	switch (e.type) {
	case 'W':
	case 'P':
	case 'G':
		if (sscanf(line + 1, "%" SCNu64 " %" SCNu64, &e.a, &e.b) != 2)
			e.type = '?';
		break;
	case 'C':
		if (sscanf(line + 1, " %64s", e.hex) != 1)
			e.type = '?';
		break;
	default:
		break;
	}
	snprintf(e.text, sizeof(e.text), "%.159s", line);
	v = realloc(c->ev, (c->nev + 1) * sizeof(*v));
	if (!v) {
		perror("realloc");
		exit(1);
	}
	c->ev = v;
	c->ev[c->nev++] = e;
}

static void child_take(struct child *c, const char *data, size_t n, uint64_t t)
{
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n') {
			c->part[c->plen] = '\0';
			child_parse(c, c->part, t);
			c->plen = 0;
		} else if (c->plen < sizeof(c->part) - 1) {
			c->part[c->plen++] = data[i];
		}
	}
}

static size_t count_type(const struct child *c, char type)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nev; i++)
		n += c->ev[i].type == type;
	return n;
}

/* Reads the child's log until deadline, end of file, or (want_type != 0)
 * until want_count events of want_type have arrived. */
static void child_pump(struct child *c, uint64_t deadline, char want_type, size_t want_count)
{
	char buf[65536];

	while (!c->eof) {
		uint64_t now = now_ns();
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		struct timespec ts;
		ssize_t n;

		if (want_type && count_type(c, want_type) >= want_count)
			return;
		if (now >= deadline)
			return;
		ts.tv_sec = (time_t)((deadline - now) / NS_PER_S);
		ts.tv_nsec = (long)((deadline - now) % NS_PER_S);
		if (ppoll(&p, 1, &ts, NULL) <= 0)
			continue;
		n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			c->eof = true;
			c->eof_ns = now_ns();
			return;
		}
		child_take(c, buf, (size_t)n, now_ns());
	}
}

static void child_spawn(struct child *c, char *const argv[])
{
	int p[2];

	*c = (struct child){ .pid = -1, .fd = -1 };
	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("pipe2");
		exit(1);
	}
	fflush(stdout);
	c->pid = fork();
	if (c->pid < 0) {
		perror("fork");
		exit(1);
	}
	if (c->pid == 0) {
		/* Dies with us, whatever kills us. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], STDOUT_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	c->fd = p[0];
}

/* Kills the child (a no-op when it has exited), reads the rest of its
 * log, reaps it. */
static void child_finish(struct child *c)
{
	kill(c->pid, SIGKILL);
	child_pump(c, now_ns() + 30 * NS_PER_S, 0, 0);
	while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
		;
	close(c->fd);
	c->pid = -1;
}

static void child_free(struct child *c)
{
	free(c->ev);
	c->ev = NULL;
	c->nev = 0;
}

/* A child that ended by itself with an error. */
static bool child_failed(const struct child *c, const char *what)
{
	if (WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGKILL)
		return false;
	if (WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0)
		return false;
	for (size_t i = 0; i < c->nev; i++)
		if (c->ev[i].type == 'E') {
			fail("%s: the child failed: %s", what, c->ev[i].text + 2);
			return true;
		}
	if (WIFSIGNALED(c->status))
		fail("%s: the child died of signal %d", what, WTERMSIG(c->status));
	else
		fail("%s: the child exited with status %d", what, WEXITSTATUS(c->status));
	return true;
}

/* Random kill delays are uniform in [0, a running average of the time the
 * work took when it was not killed, widened while kills keep landing
 * before the end]: most kills land inside the work, some after it. */
struct window {
	uint64_t avg_ns;
	bool seen;
};

static uint64_t window_delay(const struct window *w)
{
	return rnd_below(w->avg_ns + 1);
}

static void window_see(struct window *w, uint64_t ns)
{
	w->avg_ns = w->seen ? (3 * w->avg_ns + ns) / 4 : ns;
	w->seen = true;
}

/* ---- checking a volume against the log ------------------------------------------ */

/*
 * Each block written before the last completed flush ('F') must read its
 * last generation before that flush; each block written after it must read
 * that or one of the generations written after it; every other block
 * must read as before.  m is updated to what the volume reads.
 */
static bool volume_check(struct tsr_store *store, const char *name, struct model *m,
			 const struct child *c, const char *what)
{
	struct tsr_volume *vol;
	struct model want;
	uint8_t *buf;
	size_t last_f = SIZE_MAX;
	char desc[96];
	bool ok = true;
	int r;

	for (size_t i = 0; c && i < c->nev; i++)
		if (c->ev[i].type == 'F')
			last_f = i;
	model_copy(&want, m);
	for (size_t i = 0; c && last_f != SIZE_MAX && i < last_f; i++)
		if (c->ev[i].type == 'W' && c->ev[i].a < m->nblocks)
			want.gen[c->ev[i].a] = c->ev[i].b;

	r = tsr_volume_open(store, name, &vol);
	if (r < 0) {
		fail("%s: volume '%s' does not open: %s", what, name, tsr_strerror(r));
		free(want.gen);
		return false;
	}
	if (tsr_volume_size(vol) != m->nblocks * BLOCK) {
		fail("%s: volume '%s' has size %" PRIu64 ", expected %" PRIu64, what, name,
		     tsr_volume_size(vol), m->nblocks * BLOCK);
		tsr_volume_close(vol);
		free(want.gen);
		return false;
	}
	buf = malloc(m->nblocks * BLOCK);
	if (!buf) {
		perror("malloc");
		exit(1);
	}
	r = tsr_volume_read(vol, buf, m->nblocks * BLOCK, 0);
	tsr_volume_close(vol);
	if (r < 0) {
		fail("%s: volume '%s': read: %s", what, name, tsr_strerror(r));
		ok = false;
		goto out;
	}
	for (uint64_t b = 0; b < m->nblocks; b++) {
		const uint8_t *p = buf + b * BLOCK;
		bool found = block_is(p, b, want.gen[b]);
		uint64_t g = want.gen[b];

		for (size_t i = last_f == SIZE_MAX ? 0 : last_f + 1;
		     c && !found && i < c->nev; i++) {
			if (c->ev[i].type == 'W' && c->ev[i].a == b && block_is(p, b, c->ev[i].b)) {
				found = true;
				g = c->ev[i].b;
			}
		}
		if (!found) {
			fail("%s: volume '%s': block %" PRIu64 " reads %s; expected gen %" PRIu64
			     " (as of the last flush) or a later write of it",
			     what, name, b, block_describe(p, desc, sizeof(desc)), want.gen[b]);
			ok = false;
			break;
		}
		m->gen[b] = g;
	}
out:
	free(buf);
	free(want.gen);
	return ok;
}

/* ---- crash scenarios ------------------------------------------------------------ */

struct crash {
	const char *mode;
	char store[4096];
	char img[4096];
	const char *cli;
	unsigned rounds;
	uint64_t next_gen;
	struct layer_set layers;
	struct model vol;       /* "v" / "cv" / "keep" */
	struct window win;
	struct window win_cli;  /* import rounds run by the tessera command */
	uint64_t packs_compacted, packs_removed; /* by gc runs, killed or not */
};

static void die_setup(const char *what, int r)
{
	fail("setup: %s: %s", what, tsr_strerror(r));
	exit(1);
}

static void crash_init_store(struct crash *cr, uint32_t chunk_size)
{
	struct tsr_init_options io = { .chunk_size = chunk_size, .codec = TSR_CODEC_ZSTD };
	int r = tsr_store_init(cr->store, &io);

	if (r < 0)
		die_setup("init", r);
}

/* A base layer (nblocks, some or all blocks written) and a volume on it. */
static void setup_base(struct crash *cr, uint64_t nblocks, bool all, const char *vol_name)
{
	struct tsr_store *store;
	struct tsr_layer_id id;
	struct model m;
	int r;

	model_init(&m, nblocks);
	r = store_open(cr->store, false, &store);
	if (r < 0)
		die_setup("open", r);
	r = make_layer(store, "base", NULL, &m, nblocks / 2, all, &cr->next_gen, &id);
	if (r < 0)
		die_setup("base layer", r);
	layer_add(&cr->layers, &id, &m);
	if (vol_name) {
		r = tsr_volume_create(store, vol_name, 0, &id);
		if (r < 0)
			die_setup("volume", r);
		model_copy(&cr->vol, &m);
	}
	tsr_store_close(store);
	free(m.gen);
}

static uint64_t max_gen(const struct child *c)
{
	uint64_t g = 0;

	for (size_t i = 0; i < c->nev; i++)
		if (c->ev[i].type == 'W' && c->ev[i].b > g)
			g = c->ev[i].b;
	return g;
}

/* True when STORE/volumes holds a data file. */
static bool volume_file_exists(const char *store)
{
	char path[4200];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(path, sizeof(path), "%s/volumes", store);
	d = opendir(path);
	while (d && !found && (e = readdir(d)))
		found = strstr(e->d_name, ".data") != NULL;
	if (d)
		closedir(d);
	return found;
}

/*
 * Runs one child and kills it after a random delay from w.  trigger/nth:
 * the log event after which the delay starts; '@': when a volume data file
 * appears (for the tessera command, which logs nothing); 0: at spawn.
 * done: the event that ends the work (0: the child's exit), which
 * calibrates w.  A calibrating run is not killed before it is done.
 */
static void run_child(struct crash *cr, struct window *w, struct child *c,
		      char *const argv[], char trigger, size_t nth, char done,
		      bool calibrate, uint64_t *ret_delay)
{
	uint64_t t0, delay;

	child_spawn(c, argv);
	t0 = now_ns();
	if (trigger == '@') {
		while (!c->eof && !volume_file_exists(cr->store) &&
		       now_ns() < t0 + 30 * NS_PER_S)
			child_pump(c, now_ns() + 100 * NS_PER_US, 0, 0);
		t0 = now_ns();
	} else if (trigger) {
		child_pump(c, t0 + 30 * NS_PER_S, trigger, nth);
		for (size_t i = 0, k = 0; i < c->nev; i++)
			if (c->ev[i].type == trigger && ++k == nth)
				t0 = c->ev[i].t_ns;
	}
	delay = calibrate ? 30 * NS_PER_S : window_delay(w);
	if (calibrate && done)
		child_pump(c, t0 + delay, done, count_type(c, done) + 1);
	else
		child_pump(c, t0 + delay, 0, 0);
	*ret_delay = now_ns() - t0;
	child_finish(c);
	/* Calibrate the window from runs that got to the end; widen it a
	 * little after each run that did not. */
	if (done) {
		for (size_t i = 0; i < c->nev; i++)
			if (c->ev[i].type == done && c->ev[i].t_ns > t0) {
				window_see(w, c->ev[i].t_ns - t0);
				return;
			}
	} else if (c->eof && WIFEXITED(c->status) && c->eof_ns > t0) {
		window_see(w, c->eof_ns - t0);
		return;
	} else if (trigger != '@') {
		return; /* work without an end (write): a fixed window */
	}
	w->avg_ns += w->avg_ns / 16;
}

/* write and flush: a volume on a base layer; bursts of writes and flushes. */
static void crash_volume_round(struct crash *cr, unsigned round)
{
	char gen[32], cseed[32], what[96];
	char *argv[] = { self_exe, "child", (char *)cr->mode, cr->store, "v", gen, cseed, NULL };
	bool flush = !strcmp(cr->mode, "flush");
	size_t nth = 1 + rnd_below(3);
	struct tsr_store *store;
	struct child c;
	uint64_t delay;
	unsigned nl;
	bool ok = true;
	int r;

	snprintf(gen, sizeof(gen), "%" PRIu64, cr->next_gen);
	snprintf(cseed, sizeof(cseed), "%" PRIu64, splitmix(&rng));
	snprintf(what, sizeof(what), "crash %s round %u", cr->mode, round);
	if (flush)
		run_child(cr, &cr->win, &c, argv, 'S', nth, 'F', round < 2, &delay);
	else
		run_child(cr, &cr->win, &c, argv, 'O', 1, 0, false, &delay);
	if (max_gen(&c) >= cr->next_gen)
		cr->next_gen = max_gen(&c) + 1;
	if (child_failed(&c, what)) {
		child_free(&c);
		return;
	}
	r = store_open(cr->store, false, &store);
	if (r < 0) {
		fail("%s: the store does not open after kill -9: %s", what, tsr_strerror(r));
		child_free(&c);
		return;
	}
	ok &= volume_check(store, "v", &cr->vol, &c, what);
	ok &= layers_check(store, &cr->layers, what, &nl);
	ok &= fsck_clean(store, what);
	tsr_store_close(store);
	if (ok)
		pass("%s: killed %" PRIu64 " us after %s: %zu writes, %zu flushes; volume "
		     "old-or-new per block, %u layer(s) exact, fsck clean",
		     what, delay / NS_PER_US,
		     !flush ? "open" : count_type(&c, 'F') >= nth ? "flush (it had returned)"
								: "flush (mid-flush)",
		     count_type(&c, 'W'), count_type(&c, 'F'), nl);
	child_free(&c);
}

struct layer_list {
	struct tsr_layer_id *v;
	size_t n;
};

static int list_layer(const struct tsr_layer_info *info, void *arg)
{
	struct layer_list *l = arg;
	struct tsr_layer_id *v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	l->v[l->n++] = info->id;
	return 0;
}

/* True unless the child logged a commit id other than id. */
static bool commit_id_matches(const struct child *c, const struct tsr_layer_id *id)
{
	char hex[TSR_ID_HEX_LEN + 1];

	id_hex(id, hex);
	for (size_t i = 0; i < c->nev; i++)
		if (c->ev[i].type == 'C' && strcmp(c->ev[i].hex, hex))
			return false;
	return true;
}

/* commit: the volume "cv" gets a burst of writes, a flush, a commit.
 * After the kill either the layer exists and the volume is gone, or the
 * volume exists with its flushed data and no layer was added. */
static void crash_commit_round(struct crash *cr, unsigned round)
{
	char gen[32], cseed[32], what[96], hex[TSR_ID_HEX_LEN + 1];
	char *argv[] = { self_exe, "child", "commit", cr->store, "cv", gen, cseed, NULL };
	struct tsr_volume_info vi;
	struct layer_list ll = { 0 };
	struct tsr_layer_id *new_id = NULL;
	struct tsr_store *store;
	struct child c;
	const char *outcome = "?";
	uint64_t delay;
	size_t nnew = 0;
	unsigned nl;
	bool ok = true, has_vol;
	int r;

	snprintf(gen, sizeof(gen), "%" PRIu64, cr->next_gen);
	snprintf(cseed, sizeof(cseed), "%" PRIu64, splitmix(&rng));
	snprintf(what, sizeof(what), "crash commit round %u", round);
	run_child(cr, &cr->win, &c, argv, 'S', 2, 'C', round < 2, &delay);
	if (max_gen(&c) >= cr->next_gen)
		cr->next_gen = max_gen(&c) + 1;
	if (child_failed(&c, what)) {
		child_free(&c);
		return;
	}
	r = store_open(cr->store, false, &store);
	if (r < 0) {
		fail("%s: the store does not open after kill -9: %s", what, tsr_strerror(r));
		child_free(&c);
		return;
	}
	r = tsr_layer_list(store, list_layer, &ll);
	if (r < 0) {
		fail("%s: layer list: %s", what, tsr_strerror(r));
		ok = false;
	}
	for (size_t i = 0; i < ll.n; i++) {
		if (!layer_find(&cr->layers, &ll.v[i])) {
			nnew++;
			new_id = &ll.v[i];
		}
	}
	r = tsr_volume_stat(store, "cv", &vi);
	has_vol = r == 0;
	if (r < 0 && r != -ENOENT) {
		fail("%s: volume stat: %s", what, tsr_strerror(r));
		ok = false;
	}
	if (count_type(&c, 'C') && has_vol) {
		fail("%s: the commit returned but volume 'cv' still exists", what);
		ok = false;
	}
	if (has_vol && nnew) {
		fail("%s: both the volume and a new layer %s exist", what, id_hex(new_id, hex));
		ok = false;
	}
	if (ok && has_vol) {
		outcome = count_type(&c, 'F') ? "volume kept with its flushed data"
					      : "volume kept (killed before its flush)";
		ok &= volume_check(store, "cv", &cr->vol, &c, what);
	} else if (ok) {
		struct known_layer *k;

		if (nnew != 1) {
			fail("%s: the volume is gone and %zu new layers exist (expected 1)",
			     what, nnew);
			ok = false;
		} else if (!count_type(&c, 'F')) {
			fail("%s: the volume is gone but its flush never returned", what);
			ok = false;
		} else if (!commit_id_matches(&c, new_id)) {
			fail("%s: the commit returned a different id than the new layer %s", what,
			     id_hex(new_id, hex));
			ok = false;
		} else {
			/* The layer holds exactly what was flushed. */
			struct model tmp;

			model_copy(&tmp, &cr->vol);
			for (size_t i = 0; i < c.nev; i++)
				if (c.ev[i].type == 'W')
					tmp.gen[c.ev[i].a] = c.ev[i].b;
			k = layer_add(&cr->layers, new_id, &tmp);
			free(tmp.gen);
			outcome = count_type(&c, 'C') ? "layer published (commit returned)"
						      : "layer published (killed after it)";
			ok &= layer_check(store, k, what);
			r = tsr_volume_create(store, "cv", 0, new_id);
			if (r < 0) {
				fail("%s: new volume on the new layer: %s", what, tsr_strerror(r));
				ok = false;
			}
			free(cr->vol.gen);
			model_copy(&cr->vol, &k->m);
		}
	}
	ok &= layers_check(store, &cr->layers, what, &nl);
	ok &= fsck_clean(store, what);
	tsr_store_close(store);
	if (ok)
		pass("%s: killed %" PRIu64 " us after the commit began: %s; %u layer(s) "
		     "exact, fsck clean", what, delay / NS_PER_US, outcome, nl);
	free(ll.v);
	child_free(&c);
}

/* gc: garbage (a removed layer) and new live layers every round; the child
 * collects it and is killed. */
static void gc_make_garbage(struct crash *cr, unsigned round, const char *what)
{
	struct tsr_store *store;
	struct tsr_layer_id id;
	struct tsr_volume *vol = NULL;
	struct model m;
	size_t live = 0;
	int r;

	r = store_open(cr->store, false, &store);
	if (r < 0)
		die_setup("open", r);
	/* 1 MiB of garbage, then a live layer written after it. */
	model_init(&m, 256);
	r = make_layer(store, "g", NULL, &m, 0, true, &cr->next_gen, &id);
	if (!r)
		r = tsr_layer_remove(store, &id, NULL);
	free(m.gen);
	if (r < 0) {
		fail("%s: making garbage: %s", what, tsr_strerror(r));
		exit(1);
	}
	if (round % 2) {
		model_copy(&m, &cr->layers.v[0].m);
		r = make_layer(store, "k", &cr->layers.v[0].id, &m, 64, false, &cr->next_gen,
			       &id);
	} else {
		model_init(&m, 128);
		r = make_layer(store, "k", NULL, &m, 0, true, &cr->next_gen, &id);
	}
	if (r < 0) {
		fail("%s: live layer: %s", what, tsr_strerror(r));
		exit(1);
	}
	layer_add(&cr->layers, &id, &m);
	free(m.gen);
	/* Keep at most 8 live layers besides the base: remove the oldest. */
	for (size_t i = 1; i < cr->layers.n; i++)
		live += !cr->layers.v[i].removed;
	for (size_t i = 1; i < cr->layers.n && live > 8; i++) {
		if (cr->layers.v[i].removed)
			continue;
		r = tsr_layer_remove(store, &cr->layers.v[i].id, NULL);
		if (r < 0) {
			fail("%s: layer remove: %s", what, tsr_strerror(r));
			exit(1);
		}
		cr->layers.v[i].removed = true;
		live--;
	}
	/* The volume on the base: a few flushed writes and zeroes. */
	r = tsr_volume_open(store, "keep", &vol);
	for (unsigned i = 0; i < 24 && !r; i++) {
		uint64_t b = rnd_below(cr->vol.nblocks);
		uint64_t g = i % 6 == 5 ? 0 : cr->next_gen++;

		r = apply_write(vol, b, g);
		cr->vol.gen[b] = g;
	}
	if (!r)
		r = tsr_volume_flush(vol);
	if (vol)
		tsr_volume_close(vol);
	if (r < 0) {
		fail("%s: volume keep: %s", what, tsr_strerror(r));
		exit(1);
	}
	tsr_store_close(store);
}

static void crash_gc_round(struct crash *cr, unsigned round)
{
	char cseed[32], what[96];
	char *argv[] = { self_exe, "child", "gc", cr->store, cseed, NULL };
	struct tsr_gc_stats gs;
	struct tsr_store *store;
	struct child c;
	uint64_t delay;
	unsigned nl;
	bool ok = true, rerun = round % 10 == 9 || round + 1 == cr->rounds;
	int r;

	snprintf(cseed, sizeof(cseed), "%" PRIu64, splitmix(&rng));
	snprintf(what, sizeof(what), "crash gc round %u", round);
	gc_make_garbage(cr, round, what);
	run_child(cr, &cr->win, &c, argv, 'S', 1, 'G', round < 2, &delay);
	for (size_t i = 0; i < c.nev; i++) {
		uint64_t n, comp, rem;

		if (c.ev[i].type == 'G' &&
		    sscanf(c.ev[i].text, "G %" SCNu64 " %" SCNu64 " %" SCNu64, &n, &comp, &rem) == 3) {
			cr->packs_compacted += comp;
			cr->packs_removed += rem;
		}
	}
	if (child_failed(&c, what)) {
		child_free(&c);
		return;
	}
	r = store_open(cr->store, false, &store);
	if (r < 0) {
		fail("%s: the store does not open after kill -9: %s", what, tsr_strerror(r));
		child_free(&c);
		return;
	}
	ok &= layers_check(store, &cr->layers, what, &nl);
	ok &= volume_check(store, "keep", &cr->vol, NULL, what);
	ok &= fsck_clean(store, what);
	if (rerun) {
		r = tsr_store_gc(store, NULL, &gs);
		if (r < 0) {
			fail("%s: gc rerun: %s", what, tsr_strerror(r));
			ok = false;
		} else {
			cr->packs_compacted += gs.packs_compacted;
			cr->packs_removed += gs.packs_removed;
		}
		ok &= layers_check(store, &cr->layers, what, &nl);
		ok &= volume_check(store, "keep", &cr->vol, NULL, what);
		ok &= fsck_clean(store, what);
	}
	tsr_store_close(store);
	if (ok)
		pass("%s: killed %" PRIu64 " us after gc began (%s); %u layer(s) and the "
		     "volume exact, fsck clean%s", what, delay / NS_PER_US,
		     count_type(&c, 'G') ? "it had returned" : "mid-way", nl,
		     rerun ? "; gc rerun completed, still exact and clean" : "");
	child_free(&c);
}

/* import: the image file, via this program or the tessera command. */
static void crash_import_round(struct crash *cr, unsigned round)
{
	char cseed[32], what[96], desc[96];
	char *argv_c[] = { self_exe, "child", "import", cr->store, "imp", cr->img, cseed, NULL };
	char *argv_cli[] = { (char *)cr->cli, "--store", cr->store, "volume", "import",
			     "imp", cr->img, NULL };
	bool cli = cr->cli && round % 2, ok = true, complete, exists;
	struct tsr_volume_info vi;
	struct tsr_store *store;
	struct tsr_volume *vol;
	struct child c;
	uint64_t delay, size;
	uint8_t *img, *got;
	int r, fd;

	snprintf(cseed, sizeof(cseed), "%" PRIu64, splitmix(&rng));
	snprintf(what, sizeof(what), "crash import round %u (%s)", round,
		 cli ? "tessera volume import" : "volume write + flush");
	if (cli)
		run_child(cr, &cr->win_cli, &c, argv_cli, '@', 0, 0, round < 4, &delay);
	else
		run_child(cr, &cr->win, &c, argv_c, 'O', 1, 'D', round < 2, &delay);
	if (child_failed(&c, what)) {
		child_free(&c);
		return;
	}
	complete = cli ? WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0
		       : count_type(&c, 'F') > 0;

	fd = open(cr->img, O_RDONLY | O_CLOEXEC);
	size = (uint64_t)lseek(fd, 0, SEEK_END);
	img = malloc(size);
	got = malloc(size);
	if (fd < 0 || !img || !got || pread(fd, img, size, 0) != (ssize_t)size) {
		perror(cr->img);
		exit(1);
	}
	close(fd);

	r = store_open(cr->store, false, &store);
	if (r < 0) {
		fail("%s: the store does not open after kill -9: %s", what, tsr_strerror(r));
		goto out;
	}
	r = tsr_volume_stat(store, "imp", &vi);
	exists = r == 0;
	if (r < 0 && r != -ENOENT) {
		fail("%s: volume stat: %s", what, tsr_strerror(r));
		ok = false;
	} else if (!exists && (complete || count_type(&c, 'O'))) {
		fail("%s: volume 'imp' is missing after it was created", what);
		ok = false;
	} else if (exists && vi.size != size) {
		fail("%s: volume 'imp' has size %" PRIu64 ", expected %" PRIu64, what,
		     vi.size, size);
		ok = false;
	} else if (exists) {
		r = tsr_volume_open(store, "imp", &vol);
		if (!r) {
			r = tsr_volume_read(vol, got, size, 0);
			tsr_volume_close(vol);
		}
		if (r < 0) {
			fail("%s: volume 'imp': %s", what, tsr_strerror(r));
			ok = false;
		}
		for (uint64_t off = 0; ok && off < size; off += BLOCK) {
			bool logged = cli;

			for (size_t i = 0; !logged && i < c.nev; i++)
				logged = c.ev[i].type == 'P' && off >= c.ev[i].a &&
					 off - c.ev[i].a < c.ev[i].b;
			/* Complete: the file.  Else a block never written reads
			 * zeros, one being written the file's block or zeros. */
			if ((complete || logged) && !memcmp(got + off, img + off, BLOCK))
				continue;
			if (!complete && is_zero(got + off, BLOCK))
				continue;
			fail("%s: volume 'imp': block %" PRIu64 " reads %s; expected %s", what,
			     off / BLOCK, block_describe(got + off, desc, sizeof(desc)),
			     complete ? "the file's block (the import completed)" :
			     logged ? "the file's block or zeros" : "zeros (not written yet)");
			ok = false;
		}
	}
	ok &= fsck_clean(store, what);
	if (exists) {
		r = tsr_volume_remove(store, "imp");
		if (r < 0) {
			fail("%s: volume remove: %s", what, tsr_strerror(r));
			ok = false;
		}
	}
	tsr_store_close(store);
	if (ok)
		pass("%s: killed %" PRIu64 " us after %s: %s; fsck clean", what,
		     delay / NS_PER_US, cli ? "its data file appeared" : "create",
		     !exists ? "no volume" : complete ? "volume exact (import completed)"
						      : "each block the file's or zeros");
out:
	free(img);
	free(got);
	child_free(&c);
}

/* The image: 4 MiB of blocks, random and compressible, with a 1 MiB run of
 * zeros and a mostly-zero MiB (one block of data). */
static void make_image(const char *path)
{
	uint8_t buf[BLOCK];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		perror(path);
		exit(1);
	}
	for (uint64_t b = 0; b < 1024; b++) {
		bool zero = (b >= 256 && b < 768 && b != 300);

		block_fill(buf, b, zero ? 0 : b + 1);
		if (pwrite(fd, buf, BLOCK, (off_t)(b * BLOCK)) != BLOCK) {
			perror(path);
			exit(1);
		}
	}
	close(fd);
}

static int cmd_crash(int argc, char **argv)
{
	struct crash cr = { .next_gen = 1 };
	uint64_t t0 = now_ns();

	if (argc < 5 || argc > 6)
		return 2;
	cr.mode = argv[2];
	snprintf(cr.store, sizeof(cr.store), "%s/store", argv[3]);
	snprintf(cr.img, sizeof(cr.img), "%s/img", argv[3]);
	cr.rounds = (unsigned)strtoul(argv[4], NULL, 0);
	cr.cli = argc == 6 ? argv[5] : NULL;
	printf("%s crash %s: seed %" PRIu64 " (set TSR_SEED to repeat), %u rounds\n", prog,
	       cr.mode, seed, cr.rounds);

	if (!strcmp(cr.mode, "write") || !strcmp(cr.mode, "flush")) {
		crash_init_store(&cr, 64u << 10);
		setup_base(&cr, 1024, false, "v");
		cr.win.avg_ns = strcmp(cr.mode, "write") == 0 ? 150000 * NS_PER_US
							      : 20000 * NS_PER_US;
		for (unsigned i = 0; i < cr.rounds; i++)
			crash_volume_round(&cr, i);
	} else if (!strcmp(cr.mode, "commit")) {
		/* Small packs: commits also start new packs. */
		setenv("TESSERA_PACK_BYTES", "1M", 0);
		crash_init_store(&cr, 4u << 10);
		setup_base(&cr, 256, true, "cv");
		cr.win.avg_ns = 20000 * NS_PER_US;
		for (unsigned i = 0; i < cr.rounds; i++)
			crash_commit_round(&cr, i);
	} else if (!strcmp(cr.mode, "gc")) {
		/* Small packs: gc removes whole packs and compacts others. */
		setenv("TESSERA_PACK_BYTES", "1M", 0);
		crash_init_store(&cr, 4u << 10);
		setup_base(&cr, 256, true, "keep");
		cr.win.avg_ns = 20000 * NS_PER_US;
		for (unsigned i = 0; i < cr.rounds; i++)
			crash_gc_round(&cr, i);
	} else if (!strcmp(cr.mode, "import")) {
		crash_init_store(&cr, 64u << 10);
		make_image(cr.img);
		cr.win.avg_ns = 50000 * NS_PER_US;
		cr.win_cli.avg_ns = 50000 * NS_PER_US;
		for (unsigned i = 0; i < cr.rounds; i++)
			crash_import_round(&cr, i);
	} else {
		return 2;
	}
	for (size_t i = 0; i < cr.layers.n; i++)
		free(cr.layers.v[i].m.gen);
	free(cr.layers.v);
	free(cr.vol.gen);
	if (!strcmp(cr.mode, "gc"))
		printf("gc runs that completed compacted %" PRIu64 " packs and removed %" PRIu64
		       "\n", cr.packs_compacted, cr.packs_removed);
	printf("%s: crash %s: %u rounds, %u failure(s), seed %" PRIu64 ", %.1f s\n",
	       failures ? "FAIL" : "PASS", cr.mode, cr.rounds, failures, seed,
	       (double)(now_ns() - t0) / NS_PER_S);
	return failures ? 1 : 0;
}

/* ---- damage ------------------------------------------------------------------------ */

#define DCHUNK (64u << 10)
#define DBLOCKS (DCHUNK / BLOCK)

/* A chunk of the damage store: blocks src*16.. at generation gen. */
struct dchunk {
	uint32_t src;
	uint32_t gen;  /* 0: zeros (a hole) */
};

enum { L_BASE, L_CHILD, L_OTHER, NLAYERS };
static const char *const layer_names[NLAYERS] = { "base", "child", "other" };
#define BASE_CHUNKS 16
#define OTHER_CHUNKS 8

/* own[l][c]: the layer's own entry for chunk c (gen UINT32_MAX: none). */
struct dlayout {
	uint32_t nchunks[NLAYERS];
	struct dchunk own[NLAYERS][BASE_CHUNKS];
	struct dchunk flat[NLAYERS][BASE_CHUNKS];
	uint8_t digest[NLAYERS][BASE_CHUNKS][TSR_DIGEST_LEN]; /* of flat; zeros: hole */
};

static void dchunk_fill(uint8_t *buf, struct dchunk d)
{
	for (unsigned i = 0; i < DBLOCKS; i++)
		block_fill(buf + i * BLOCK, (uint64_t)d.src * DBLOCKS + i, d.gen);
}

static void dlayout_make(struct dlayout *l)
{
	uint8_t *buf = malloc(DCHUNK);
	unsigned md_len;

	memset(l, 0, sizeof(*l));
	l->nchunks[L_BASE] = l->nchunks[L_CHILD] = BASE_CHUNKS;
	l->nchunks[L_OTHER] = OTHER_CHUNKS;
	for (unsigned c = 0; c < BASE_CHUNKS; c++) {
		l->own[L_BASE][c] = (struct dchunk){ c, c == 14 ? 0 : 100 + c };
		l->own[L_CHILD][c] = (struct dchunk){ 0, UINT32_MAX };
	}
	l->own[L_CHILD][2] = (struct dchunk){ 2, 200 };
	l->own[L_CHILD][9] = (struct dchunk){ 9, 201 };
	l->own[L_CHILD][15] = (struct dchunk){ 15, 0 };
	for (unsigned c = 0; c < OTHER_CHUNKS; c++)
		l->own[L_OTHER][c] = (struct dchunk){ 32 + c, 300 + c };
	l->own[L_OTHER][5] = l->own[L_BASE][3]; /* shared with base */
	for (unsigned k = 0; k < NLAYERS; k++) {
		for (unsigned c = 0; c < l->nchunks[k]; c++) {
			struct dchunk d = l->own[k][c];

			if (k == L_CHILD && d.gen == UINT32_MAX)
				d = l->own[L_BASE][c];
			l->flat[k][c] = d;
			if (d.gen == 0)
				continue;
			dchunk_fill(buf, d);
			EVP_Digest(buf, DCHUNK, l->digest[k][c], &md_len, EVP_sha256(), NULL);
		}
	}
	free(buf);
}

static int dmake(struct tsr_store *store, const struct dlayout *l, unsigned k,
		 const struct tsr_layer_id *parent, struct tsr_layer_id *ret)
{
	uint8_t *buf = malloc(DCHUNK);
	struct tsr_volume *vol;
	int r;

	r = tsr_volume_create(store, layer_names[k], (uint64_t)l->nchunks[k] * DCHUNK, parent);
	if (!r)
		r = tsr_volume_open(store, layer_names[k], &vol);
	if (r < 0)
		return r;
	for (unsigned c = 0; c < l->nchunks[k] && !r; c++) {
		if (l->own[k][c].gen == UINT32_MAX)
			continue;
		dchunk_fill(buf, l->own[k][c]);
		if (l->own[k][c].gen == 0)
			r = tsr_volume_write_zeroes(vol, (uint64_t)c * DCHUNK, DCHUNK);
		else
			r = tsr_volume_write(vol, buf, DCHUNK, (uint64_t)c * DCHUNK);
	}
	free(buf);
	if (r < 0) {
		tsr_volume_close(vol);
		return r;
	}
	return tsr_volume_commit(vol, layer_names[k], NULL, ret);
}

static int cmd_damage_setup(int argc, char **argv)
{
	struct tsr_init_options io = { .chunk_size = DCHUNK, .codec = TSR_CODEC_ZSTD };
	struct tsr_layer_id ids[NLAYERS];
	struct tsr_store *store;
	struct tsr_volume *vol;
	struct dlayout l;
	uint8_t buf[BLOCK];
	int r;

	if (argc != 3)
		return 2;
	dlayout_make(&l);
	r = tsr_store_init(argv[2], &io);
	if (!r)
		r = store_open(argv[2], false, &store);
	if (r < 0)
		die_setup("init", r);
	r = dmake(store, &l, L_BASE, NULL, &ids[L_BASE]);
	if (!r)
		r = dmake(store, &l, L_CHILD, &ids[L_BASE], &ids[L_CHILD]);
	if (!r)
		r = dmake(store, &l, L_OTHER, NULL, &ids[L_OTHER]);
	if (!r)
		r = tsr_volume_create(store, "vol", 0, &ids[L_BASE]);
	if (!r)
		r = tsr_volume_open(store, "vol", &vol);
	if (!r) {
		block_fill(buf, 1, 400);
		r = tsr_volume_write(vol, buf, BLOCK, BLOCK);
		if (!r)
			r = tsr_volume_flush(vol);
		tsr_volume_close(vol);
	}
	if (r < 0)
		die_setup("layers", r);
	if (!fsck_clean(store, "damage-setup"))
		return 1;
	tsr_store_close(store);
	printf("damage-setup: seed %" PRIu64 ": layers base, child, other; volume vol\n", seed);
	return 0;
}

/* A chunk object found by walking a pack (FORMAT.md, "Pack files"). */
struct pobj {
	char path[4608];
	uint64_t off;
	uint32_t stored;
	uint8_t codec;
	uint8_t digest[TSR_DIGEST_LEN];
};

static size_t scan_packs(const char *store, struct pobj **ret)
{
	char dir[4200];
	struct pobj *v = NULL;
	size_t n = 0;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/packs", store);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		uint8_t h[64];
		uint64_t off = 64;
		int fd;

		if (!strstr(e->d_name, ".pack"))
			continue;
		char path[sizeof(v->path)];

		if (snprintf(path, sizeof(path), "%s/%.255s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		while (fd >= 0 && pread(fd, h, 64, (off_t)off) == 64 && !memcmp(h, "TOBJ", 4)) {
			struct pobj *nv = realloc(v, (n + 1) * sizeof(*v));

			if (!nv)
				exit(1);
			v = nv;
			snprintf(v[n].path, sizeof(v[n].path), "%s", path);
			v[n].off = off;
			v[n].codec = h[5];
			v[n].stored = (uint32_t)h[12] | (uint32_t)h[13] << 8 |
				      (uint32_t)h[14] << 16 | (uint32_t)h[15] << 24;
			memcpy(v[n].digest, h + 16, TSR_DIGEST_LEN);
			off += 64 + v[n].stored;
			n++;
		}
		if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
	*ret = v;
	return n;
}

static struct pobj *find_obj(struct pobj *v, size_t n, const uint8_t *digest)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(v[i].digest, digest, TSR_DIGEST_LEN))
			return &v[i];
	return NULL;
}

static int flip_file_byte(const char *path, uint64_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	uint8_t b;
	int r = -1;

	if (fd >= 0 && pread(fd, &b, 1, (off_t)off) == 1) {
		b ^= mask;
		if (pwrite(fd, &b, 1, (off_t)off) == 1 && fsync(fd) == 0)
			r = 0;
	}
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * Flips value byte vbyte of every LMDB leaf node with the given key and a
 * value of vlen bytes, found by its node header (lo/hi data size, flags 0,
 * key size; little-endian) followed by the key, in meta/data.mdb.  Stale
 * copies on free pages are flipped too, which is harmless.  Returns the
 * number of nodes changed.
 */
static int flip_mdb_value(const char *store, const uint8_t *key, size_t klen, size_t vlen,
			  size_t vbyte, uint8_t mask)
{
	char path[4200];
	uint8_t hdr[8] = { (uint8_t)vlen, (uint8_t)(vlen >> 8), 0, 0, 0, 0, (uint8_t)klen,
			   (uint8_t)(klen >> 8) };
	struct stat st;
	uint8_t *m;
	int fd, n = 0;

	snprintf(path, sizeof(path), "%s/meta/data.mdb", store);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return -1;
	m = malloc((size_t)st.st_size);
	if (!m || pread(fd, m, (size_t)st.st_size, 0) != st.st_size) {
		close(fd);
		free(m);
		return -1;
	}
	for (size_t i = 0; i + 8 + klen + vlen <= (size_t)st.st_size; i++) {
		if (memcmp(m + i, hdr, 8) || memcmp(m + i + 8, key, klen))
			continue;
		uint8_t b = m[i + 8 + klen + vbyte] ^ mask;

		if (pwrite(fd, &b, 1, (off_t)(i + 8 + klen + vbyte)) == 1)
			n++;
	}
	fsync(fd);
	close(fd);
	free(m);
	return n;
}

static const char *const damage_kinds[] = {
	"payload",        /* a byte of an uncompressed object shared by two layers */
	"payload-zstd",   /* a byte of a compressed object */
	"header",         /* a random byte of an object header */
	"truncate",       /* the pack cut in the middle of an object */
	"lmdb-chunk",     /* the pack offset in a chunk record */
	"lmdb-refcount",  /* the refcount in a chunk record (then --repair) */
	"lmdb-layer",     /* the version of a layer record */
	"lmdb-layer-size",/* the size in a layer record */
	"lmdb-map",       /* a digest in a layer map entry */
	NULL,
};

struct damage {
	uint8_t (*digests)[TSR_DIGEST_LEN]; /* objects whose reads must fail */
	size_t ndigests;
	bool bad_entry[NLAYERS][BASE_CHUNKS]; /* layer chunks whose reads must fail */
	bool broken[NLAYERS];                 /* may refuse to open; reads exact or fail */
	bool named_layer[NLAYERS];            /* fsck must name these layers */
	bool digests_named;                   /* fsck must name the digests */
	bool digests_readable;                /* ... which still read exact */
	bool lmdb;                            /* -EBADMSG is a fine error too */
};

static void damage_add(struct damage *d, const uint8_t *digest)
{
	void *v = realloc(d->digests, (d->ndigests + 1) * TSR_DIGEST_LEN);

	if (!v)
		exit(1);
	d->digests = v;
	memcpy(d->digests[d->ndigests++], digest, TSR_DIGEST_LEN);
}

static bool damaged_digest(const struct damage *d, const uint8_t *digest)
{
	if (d->digests_readable)
		return false;
	for (size_t i = 0; i < d->ndigests; i++)
		if (!memcmp(d->digests[i], digest, TSR_DIGEST_LEN))
			return true;
	return false;
}

/* Names the layers whose own map uses a damaged object. */
static void damage_users(struct damage *d, const struct dlayout *l)
{
	for (unsigned k = 0; k < NLAYERS; k++)
		for (unsigned c = 0; c < l->nchunks[k]; c++)
			if (l->own[k][c].gen != UINT32_MAX && l->own[k][c].gen != 0 &&
			    !d->digests_readable && damaged_digest(d, l->digest[k][c]))
				d->named_layer[k] = true;
}

/* Reads chunk by chunk: damaged chunks must fail, the rest must be exact;
 * different bytes are never fine.  vol: the volume on base (chunk 0 has
 * block 1 at gen 400). */
static bool damage_read(const char *what, const struct dlayout *l, const struct damage *d,
			struct tsr_layer *layer, struct tsr_volume *vol, unsigned k,
			unsigned *ret_failed)
{
	uint8_t *buf = malloc(DCHUNK), *want = malloc(DCHUNK);
	const char *name = vol ? "volume vol" : layer_names[k];
	bool ok = true;

	*ret_failed = 0;
	for (unsigned c = 0; c < l->nchunks[k]; c++) {
		bool bad = d->bad_entry[k][c] ||
			   (l->flat[k][c].gen && damaged_digest(d, l->digest[k][c]));
		int r;

		memset(buf, 0xa5, DCHUNK);
		r = vol ? tsr_volume_read(vol, buf, DCHUNK, (uint64_t)c * DCHUNK)
			: tsr_layer_read(layer, buf, DCHUNK, (uint64_t)c * DCHUNK);
		dchunk_fill(want, l->flat[k][c]);
		if (vol && c == 0)
			block_fill(want + BLOCK, 1, 400);
		if (vol && c == 0)
			bad = false; /* a local copy, made before the damage */
		if (r == 0 && memcmp(buf, want, DCHUNK)) {
			fail("%s: %s chunk %u: read returned different bytes", what, name, c);
			ok = false;
		} else if (r == 0 && bad && !d->broken[k]) {
			fail("%s: %s chunk %u: a damaged chunk read without error", what, name, c);
			ok = false;
		} else if (r < 0 && !bad && !d->broken[k]) {
			fail("%s: %s chunk %u: an intact chunk fails: %s", what, name, c,
			     tsr_strerror(r));
			ok = false;
		} else if (r < 0 && r != -EIO && !(d->lmdb && r == -EBADMSG)) {
			fail("%s: %s chunk %u: failed with %s, expected EIO", what, name, c,
			     tsr_strerror(r));
			ok = false;
		} else if (r < 0) {
			(*ret_failed)++;
		}
	}
	free(buf);
	free(want);
	return ok;
}

static int cmd_damage(int argc, char **argv)
{
	const char *kind, *dir;
	struct tsr_layer_id ids[NLAYERS];
	struct fsck_lines fl = { 0 };
	struct tsr_fsck_stats fst;
	struct tsr_store *store;
	struct damage d = { 0 };
	struct dlayout l;
	struct pobj *objs, *o;
	char what[64], hex[TSR_ID_HEX_LEN + 1];
	size_t nobjs;
	bool ok = true;
	int r, n = 0;

	if (argc != 4)
		return 2;
	kind = argv[2];
	dir = argv[3];
	for (n = 0; damage_kinds[n] && strcmp(damage_kinds[n], kind); n++)
		;
	if (!damage_kinds[n]) {
		fprintf(stderr, "%s: unknown damage kind '%s'; one of:", prog, kind);
		for (n = 0; damage_kinds[n]; n++)
			fprintf(stderr, " %s", damage_kinds[n]);
		fprintf(stderr, "\n");
		return 2;
	}
	n = 0;
	snprintf(what, sizeof(what), "damage %s", kind);
	dlayout_make(&l);

	/* The layer ids, before the damage. */
	r = store_open(dir, false, &store);
	for (unsigned k = 0; k < NLAYERS && !r; k++)
		r = tsr_layer_resolve(store, layer_names[k], &ids[k]);
	if (r < 0) {
		fail("%s: setup store: %s", what, tsr_strerror(r));
		return 1;
	}
	tsr_store_close(store);
	nobjs = scan_packs(dir, &objs);

	if (!strcmp(kind, "payload") || !strcmp(kind, "payload-zstd")) {
		bool z = !strcmp(kind, "payload-zstd");
		const uint8_t *dg = l.digest[L_BASE][z ? 5 : 3];

		o = find_obj(objs, nobjs, dg);
		if (!o || (z && o->codec == TSR_CODEC_NONE) || (!z && o->codec != TSR_CODEC_NONE)) {
			fail("%s: test setup: object %s not found with the expected codec", what,
			     digest_hex(dg, hex));
			return 1;
		}
		uint64_t at = o->off + 64 + rnd_below(o->stored);

		n = flip_file_byte(o->path, at, 0x10) == 0;
		printf("%s: flipped byte %" PRIu64 " of %s (object %s, codec %u)\n", what, at,
		       o->path, digest_hex(dg, hex), o->codec);
		damage_add(&d, dg);
		d.digests_named = true;
	} else if (!strcmp(kind, "header")) {
		const uint8_t *dg = l.digest[L_CHILD][2];
		unsigned byte = (unsigned)rnd_below(64);

		o = find_obj(objs, nobjs, dg);
		n = o && flip_file_byte(o->path, o->off + byte, 0x04) == 0;
		printf("%s: flipped header byte %u of object %s\n", what, byte,
		       digest_hex(dg, hex));
		damage_add(&d, dg);
		d.digests_named = true;
	} else if (!strcmp(kind, "truncate")) {
		const uint8_t *dg = l.digest[L_CHILD][9];
		uint64_t cut;

		o = find_obj(objs, nobjs, dg);
		if (o) {
			cut = o->off + 64 + o->stored / 2;
			n = truncate(o->path, (off_t)cut) == 0;
			for (size_t i = 0; i < nobjs; i++)
				if (!strcmp(objs[i].path, o->path) &&
				    objs[i].off + 64 + objs[i].stored > cut)
					damage_add(&d, objs[i].digest);
			printf("%s: cut %s at %" PRIu64 " bytes: %zu objects lost\n", what,
			       o->path, cut, d.ndigests);
		}
		d.digests_named = true;
	} else if (!strcmp(kind, "lmdb-chunk") || !strcmp(kind, "lmdb-refcount")) {
		bool rc = !strcmp(kind, "lmdb-refcount");
		const uint8_t *dg = l.digest[L_BASE][rc ? 4 : 7];

		/* Chunk record: pack id, codec, 3 zero, offset (byte 8..15), stored
		 * and raw length, refcount (byte 24..31). */
		n = flip_mdb_value(dir, dg, TSR_DIGEST_LEN, 32, rc ? 24 : 8, rc ? 0x02 : 0x40);
		printf("%s: flipped the %s of object %s's record in %d node(s)\n", what,
		       rc ? "refcount" : "pack offset", digest_hex(dg, hex), n);
		damage_add(&d, dg);
		d.digests_named = true;
		d.digests_readable = rc; /* a wrong refcount does not stop reads */
		d.lmdb = true;
	} else if (!strcmp(kind, "lmdb-layer") || !strcmp(kind, "lmdb-layer-size")) {
		bool size = !strcmp(kind, "lmdb-layer-size");

		/* Layer record: version (byte 0..3), ..., size (byte 40..47). */
		n = flip_mdb_value(dir, ids[L_CHILD].bytes, TSR_DIGEST_LEN, 96, size ? 43 : 0,
				   size ? 0x01 : 0x01);
		printf("%s: flipped the %s of layer child's record in %d node(s)\n", what,
		       size ? "size" : "version", n);
		d.broken[L_CHILD] = true;
		d.named_layer[L_CHILD] = true;
		d.lmdb = true;
	} else if (!strcmp(kind, "lmdb-map")) {
		uint8_t key[TSR_DIGEST_LEN + 8] = { 0 };

		memcpy(key, ids[L_CHILD].bytes, TSR_DIGEST_LEN);
		key[TSR_DIGEST_LEN + 7] = 9; /* be64 chunk index 9 */
		n = flip_mdb_value(dir, key, sizeof(key), TSR_DIGEST_LEN, 0, 0x80);
		printf("%s: flipped a byte of layer child's map entry for chunk 9 in %d "
		       "node(s)\n", what, n);
		d.bad_entry[L_CHILD][9] = true;
		d.named_layer[L_CHILD] = true;
		d.lmdb = true;
	} else {
		return 2;
	}
	free(objs);
	if (n <= 0) {
		fail("%s: test setup: could not apply the damage", what);
		return 1;
	}
	damage_users(&d, &l);

	/* Cold cache: a fresh open of the closed, damaged store. */
	r = store_open(dir, true, &store);
	if (r < 0) {
		fail("%s: the store does not open: %s", what, tsr_strerror(r));
		return 1;
	}
	for (unsigned k = 0; k < NLAYERS; k++) {
		struct tsr_layer *layer;
		unsigned nfail;

		r = tsr_layer_open(store, &ids[k], &layer);
		if (r < 0 && d.broken[k]) {
			if (r == -EBADMSG || r == -EIO)
				pass("%s: layer %s refuses to open: %s", what, layer_names[k],
				     tsr_strerror(r));
			else
				fail("%s: layer %s: open failed with %s, expected EBADMSG or EIO",
				     what, layer_names[k], tsr_strerror(r));
			continue;
		}
		if (r < 0) {
			fail("%s: layer %s does not open: %s", what, layer_names[k],
			     tsr_strerror(r));
			ok = false;
			continue;
		}
		if (damage_read(what, &l, &d, layer, NULL, k, &nfail))
			pass("%s: layer %s: %u chunk(s) fail with an error, the rest read exact",
			     what, layer_names[k], nfail);
		else
			ok = false;
		tsr_layer_close(layer);
	}
	{
		struct tsr_volume *vol;
		unsigned nfail;

		r = tsr_volume_open(store, "vol", &vol);
		if (r < 0) {
			fail("%s: volume vol does not open: %s", what, tsr_strerror(r));
			ok = false;
		} else {
			if (damage_read(what, &l, &d, NULL, vol, L_BASE, &nfail))
				pass("%s: volume vol: %u chunk(s) fail with an error, the rest "
				     "read exact", what, nfail);
			else
				ok = false;
			tsr_volume_close(vol);
		}
	}

	/* fsck names the damage. */
	r = tsr_store_fsck(store, 0, collect_line, &fl, NULL, &fst);
	for (size_t i = 0; i < fl.n; i++)
		printf("    fsck: %s\n", fl.v[i]);
	if (r != 1) {
		fail("%s: fsck returned %d (%s), expected 1 (damage)", what, r,
		     r < 0 ? tsr_strerror(r) : "clean");
		ok = false;
	} else {
		bool named = true;

		for (size_t i = 0; d.digests_named && i < d.ndigests; i++) {
			digest_hex(d.digests[i], hex);
			printf("named %s\n", hex);
			if (!lines_have(&fl, hex)) {
				fail("%s: no fsck finding names object %s", what, hex);
				named = false;
			}
		}
		for (unsigned k = 0; k < NLAYERS; k++) {
			if (!d.named_layer[k])
				continue;
			id_hex(&ids[k], hex);
			printf("named %s\n", hex);
			if (!lines_have(&fl, hex)) {
				fail("%s: no fsck finding names layer %s (%s), which uses the "
				     "damage", what, layer_names[k], hex);
				named = false;
			}
		}
		if (named)
			pass("%s: fsck reports damage (%zu findings) naming the object(s) and "
			     "the layer(s) that use them", what, fl.n);
		ok &= named;
	}
	lines_free(&fl);

	if (!strcmp(kind, "lmdb-refcount")) {
		r = tsr_store_fsck(store, TSR_FSCK_REPAIR, collect_line, &fl, NULL, &fst);
		lines_free(&fl);
		if (r == 0 && fsck_clean(store, what))
			pass("%s: fsck --repair fixed the refcount; a second fsck is clean", what);
		else {
			fail("%s: fsck --repair returned %d, expected 0", what, r);
			ok = false;
		}
	}
	tsr_store_close(store);
	free(d.digests);
	return ok && !failures ? 0 : 1;
}

static int cmd_gen(int argc, char **argv)
{
	uint64_t size, stream;
	uint8_t buf[BLOCK];
	FILE *f;

	if (argc != 5 || tsr_parse_size(argv[3], &size) < 0 || size % BLOCK)
		return 2;
	stream = strtoull(argv[4], NULL, 0);
	f = fopen(argv[2], "we");
	if (!f) {
		perror(argv[2]);
		return 1;
	}
	for (uint64_t b = 0; b < size / BLOCK; b++) {
		block_fill(buf, b, 3 * stream + 1); /* never a multiple of 3: random */
		if (fwrite(buf, BLOCK, 1, f) != 1) {
			perror(argv[2]);
			return 1;
		}
	}
	return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0) {
		perror("readlink /proc/self/exe");
		return 1;
	}
	self_exe[n] = '\0';
	seed_init();
	if (argc >= 2 && !strcmp(argv[1], "child"))
		return cmd_child(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "crash")) {
		int r = cmd_crash(argc, argv);

		if (r == 2)
			fprintf(stderr, "%s: usage: crash MODE DIR ROUNDS [TESSERA]\n", prog);
		return r;
	}
	if (argc >= 2 && !strcmp(argv[1], "gen"))
		return cmd_gen(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "damage-setup"))
		return cmd_damage_setup(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "damage"))
		return cmd_damage(argc, argv);
	fprintf(stderr, "%s: bad usage (see the comment at the top of tsr_crashtest.c)\n", prog);
	return 2;
}
