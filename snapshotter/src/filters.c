/* SPDX-License-Identifier: MIT */
/*
 * containerd's filter syntax (its filters/ package: scanner.go, parser.go,
 * quote.go, filter.go), followed token for token:
 *
 *   selectors := selector ("," selector)*
 *   selector  := fieldpath (operator value)?      no operator: "is present"
 *   fieldpath := field ('.' field)*
 *   field     := quoted | [A-Za-z0-9_]+
 *   operator  := "==" | "!=" | "~="
 *   value     := quoted | [^\s,]+
 *   quoted    := "..." (fields, values); /.../ and |...| too for ~= values
 *
 * All selectors of a filter must match; a ListSnapshots request matches a
 * snapshot when any of its filters does (service.c).  Differences: '~='
 * uses POSIX extended regular expressions (regcomp) where containerd uses
 * Go's RE2 syntax (the same for the usual anchors, classes and
 * alternations); as there, a pattern that does not compile matches
 * nothing.  Input is untrusted: every read is bounded by the string's
 * length.
 */
#include "internal.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	TOK_EOF = -1,
	TOK_QUOTED = -2,
	TOK_VALUE = -3,
	TOK_FIELD = -4,
	TOK_SEPARATOR = -5,
	TOK_OPERATOR = -6,
	TOK_ILLEGAL = -7,
};

enum { OP_PRESENT, OP_EQUAL, OP_NOT_EQUAL, OP_MATCHES };

struct selector {
	char **path;
	size_t n_path;
	int op;
	char *value;
	regex_t re;
	bool re_ok;
};

struct snap_filter {
	struct selector *sels;
	size_t n;
};

struct scanner {
	const char *in;
	size_t len;
	size_t pos, ppos;  /* start of the current rune, end of it */
	bool value;        /* an operator was just scanned */
	const char *err;
};

/* Decodes one UTF-8 rune at s[0..n): its value and width, or -1 (width
 * 1) for bytes that are not UTF-8. */
static int32_t utf8_decode(const unsigned char *s, size_t n, size_t *w)
{
	int32_t r;
	size_t need;

	*w = 1;
	if (s[0] < 0x80)
		return s[0];
	if ((s[0] & 0xe0) == 0xc0) {
		need = 2;
		r = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		need = 3;
		r = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		need = 4;
		r = s[0] & 0x07;
	} else {
		return -1;
	}
	if (need > n)
		return -1;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		r = r << 6 | (s[i] & 0x3f);
	}
	if ((need == 2 && r < 0x80) || (need == 3 && r < 0x800) ||
	    (need == 4 && (r < 0x10000 || r > 0x10ffff)) || (r >= 0xd800 && r <= 0xdfff))
		return -1;
	*w = need;
	return r;
}

static int32_t sc_next(struct scanner *s)
{
	size_t w;
	int32_t r;

	if (s->pos >= s->len)
		return TOK_EOF;
	s->pos = s->ppos;
	if (s->ppos >= s->len)
		return TOK_EOF;
	r = utf8_decode((const unsigned char *)s->in + s->ppos, s->len - s->ppos, &w);
	s->ppos += w;
	if (r < 0) {
		if (!s->err)
			s->err = "rune error";
		return TOK_ILLEGAL;
	}
	if (r == 0) {
		if (!s->err)
			s->err = "unexpected null";
		return TOK_ILLEGAL;
	}
	return r;
}

static int32_t sc_peek(struct scanner *s)
{
	size_t pos = s->pos, ppos = s->ppos;
	int32_t r = sc_next(s);

	s->pos = pos;
	s->ppos = ppos;
	return r;
}

static bool is_space(int32_t r)
{
	return r == ' ' || (r >= '\t' && r <= '\r') || r == 0x85 || r == 0xa0;
}

static bool is_field_rune(int32_t r)
{
	return r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') ||
	       (r >= '0' && r <= '9');
}

static bool is_value_rune(int32_t r)
{
	/* Go: not ',' nor space, and a letter, digit, graphic or punct. */
	return r > 0 && r != ',' && !is_space(r) && (r >= 0x21 && r != 0x7f) &&
	       !(r >= 0x80 && r < 0xa0);
}

static bool sc_quoted(struct scanner *s, int32_t quote)
{
	int32_t ch = sc_next(s);

	while (ch != quote) {
		if (ch == '\n' || ch < 0) {
			if (!s->err)
				s->err = "quoted literal not terminated";
			return false;
		}
		if (ch == '\\') {
			ch = sc_next(s);  /* validated by unquote() */
			if (ch < 0)
				continue;
		}
		ch = sc_next(s);
	}
	return true;
}

/* One token: its kind (or a plain rune), and its text in [*start, ppos). */
static int32_t sc_scan(struct scanner *s, size_t *start)
{
	int32_t ch = sc_next(s);

	for (;;) {
		*start = s->pos;
		if (ch == TOK_EOF || ch == TOK_ILLEGAL)
			return ch;
		if (ch == '/' || ch == '|' || ch == '"')
			return sc_quoted(s, ch) ? TOK_QUOTED : TOK_ILLEGAL;
		if (ch == ',' || ch == '.') {
			s->value = false;
			return TOK_SEPARATOR;
		}
		if (ch == '=' || ch == '!' || ch == '~') {
			while ((ch = sc_peek(s)) == '=' || ch == '!' || ch == '~')
				sc_next(s);
			s->value = true;
			return TOK_OPERATOR;
		}
		if (is_space(ch)) {
			ch = sc_next(s);
			continue;
		}
		if (s->value) {
			while (is_value_rune(sc_peek(s)))
				sc_next(s);
			s->value = false;
			return TOK_VALUE;
		}
		if (is_field_rune(ch)) {
			while (is_field_rune(sc_peek(s)))
				sc_next(s);
			return TOK_FIELD;
		}
		return ch;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t utf8_encode(uint32_t r, char *out)
{
	if (r < 0x80) {
		out[0] = (char)r;
		return 1;
	}
	if (r < 0x800) {
		out[0] = (char)(0xc0 | r >> 6);
		out[1] = (char)(0x80 | (r & 0x3f));
		return 2;
	}
	if (r < 0x10000) {
		out[0] = (char)(0xe0 | r >> 12);
		out[1] = (char)(0x80 | ((r >> 6) & 0x3f));
		out[2] = (char)(0x80 | (r & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | r >> 18);
	out[1] = (char)(0x80 | ((r >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((r >> 6) & 0x3f));
	out[3] = (char)(0x80 | (r & 0x3f));
	return 4;
}

/* quote.go's unquote for "..." /.../ |...|: a malloc'd string, or NULL
 * (a syntax error; *nomem set when out of memory).  NUL is refused. */
static char *unquote(const char *s, size_t n, bool *nomem)
{
	char q, *out, *o;
	size_t i;

	if (n < 2 || s[0] != s[n - 1])
		return NULL;
	q = s[0];
	if (q != '"' && q != '|' && q != '/')
		return NULL;
	s++;
	n -= 2;
	if (memchr(s, '\n', n) || memchr(s, 0, n))
		return NULL;
	out = o = malloc(n + 1);  /* never grows: escapes shrink */
	if (!out) {
		*nomem = true;
		return NULL;
	}
	for (i = 0; i < n;) {
		char c = s[i];
		uint32_t v = 0;
		size_t digits;

		if (c == q)
			goto bad;
		if (c != '\\') {
			*o++ = c;
			i++;
			continue;
		}
		if (n - i < 2)
			goto bad;
		c = s[i + 1];
		i += 2;
		switch (c) {
		case 'a': *o++ = '\a'; continue;
		case 'b': *o++ = '\b'; continue;
		case 'f': *o++ = '\f'; continue;
		case 'n': *o++ = '\n'; continue;
		case 'r': *o++ = '\r'; continue;
		case 't': *o++ = '\t'; continue;
		case 'v': *o++ = '\v'; continue;
		case '\\': *o++ = '\\'; continue;
		case '\'': case '"': case '|': case '/':
			if (c != q)
				goto bad;
			*o++ = c;
			continue;
		case 'x': case 'u': case 'U':
			digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
			if (n - i < digits)
				goto bad;
			for (size_t j = 0; j < digits; j++) {
				int h = hexval(s[i + j]);

				if (h < 0)
					goto bad;
				v = v << 4 | (uint32_t)h;
			}
			i += digits;
			if (c == 'x') {
				if (v == 0)
					goto bad;
				*o++ = (char)v;
			} else {
				if (v > 0x10ffff || v == 0)
					goto bad;
				o += utf8_encode(v, o);  /* fits in the escape's room */
			}
			continue;
		default:
			if (c < '0' || c > '7' || n - i < 2)
				goto bad;
			v = (uint32_t)(c - '0');
			for (int j = 0; j < 2; j++) {
				if (s[i + j] < '0' || s[i + j] > '7')
					goto bad;
				v = v << 3 | (uint32_t)(s[i + j] - '0');
			}
			i += 2;
			if (v > 255 || v == 0)
				goto bad;
			*o++ = (char)v;
			continue;
		}
	}
	*o = 0;
	return out;
bad:
	free(out);
	return NULL;
}

/* ---- parser --------------------------------------------------------------- */

struct parser {
	struct scanner sc;
	char *err;
	size_t errlen;
	bool nomem;
};

static int perr(struct parser *p, size_t pos, const char *msg)
{
	if (p->nomem)
		return -ENOMEM;
	snprintf(p->err, p->errlen, "filters: parse error: [%.200s] at %zu: %s",
		 p->sc.in, pos, p->sc.err ? p->sc.err : msg);
	return -EINVAL;
}

static int take_text(struct parser *p, int32_t tok, size_t start, bool alt_quotes,
		     char **ret)
{
	size_t n = p->sc.ppos - start;
	const char *t = p->sc.in + start;

	if (tok == TOK_QUOTED) {
		if (!alt_quotes && t[0] != '"')
			return perr(p, start, "invalid quote encountered");
		*ret = unquote(t, n, &p->nomem);
		return *ret ? 0 : perr(p, start, "unquoting failed");
	}
	*ret = strndup(t, n);
	if (!*ret) {
		p->nomem = true;
		return -ENOMEM;
	}
	return 0;
}

static int field(struct parser *p, struct selector *sel)
{
	size_t start;
	int32_t tok = sc_scan(&p->sc, &start);
	char **path, *f;
	int r;

	if (tok != TOK_FIELD && tok != TOK_QUOTED)
		return perr(p, start, "expected field or quoted");
	r = take_text(p, tok, start, false, &f);
	if (r)
		return r;
	path = realloc(sel->path, (sel->n_path + 1) * sizeof(*path));
	if (!path) {
		free(f);
		p->nomem = true;
		return -ENOMEM;
	}
	sel->path = path;
	sel->path[sel->n_path++] = f;
	return 0;
}

static int selector(struct parser *p, struct selector *sel)
{
	int32_t tok, next;
	size_t start;
	int r = field(p, sel);

	while (!r && sc_peek(&p->sc) == '.') {
		sc_scan(&p->sc, &start);
		r = field(p, sel);
	}
	if (r)
		return r;
	next = sc_peek(&p->sc);
	if (next == ',' || next == TOK_EOF) {
		sel->op = OP_PRESENT;
		return 0;
	}
	tok = sc_scan(&p->sc, &start);
	if (tok != TOK_OPERATOR)
		return perr(p, start, "expected an operator (\"==\"|\"!=\"|\"~=\")");
	if (p->sc.ppos - start == 2 && !strncmp(p->sc.in + start, "==", 2))
		sel->op = OP_EQUAL;
	else if (p->sc.ppos - start == 2 && !strncmp(p->sc.in + start, "!=", 2))
		sel->op = OP_NOT_EQUAL;
	else if (p->sc.ppos - start == 2 && !strncmp(p->sc.in + start, "~=", 2))
		sel->op = OP_MATCHES;
	else
		return perr(p, start, "unsupported operator");
	tok = sc_scan(&p->sc, &start);
	if (tok != TOK_VALUE && tok != TOK_FIELD && tok != TOK_QUOTED)
		return perr(p, start, "expected value or quoted");
	r = take_text(p, tok, start, sel->op == OP_MATCHES, &sel->value);
	if (r)
		return r;
	if (sel->op == OP_MATCHES)
		sel->re_ok = regcomp(&sel->re, sel->value, REG_EXTENDED | REG_NOSUB) == 0;
	return 0;
}

void snap_filter_free(struct snap_filter *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		struct selector *sel = &f->sels[i];

		for (size_t j = 0; j < sel->n_path; j++)
			free(sel->path[j]);
		free(sel->path);
		free(sel->value);
		if (sel->re_ok)
			regfree(&sel->re);
	}
	free(f->sels);
	free(f);
}

int snap_filter_parse(const char *text, struct snap_filter **ret, char *err, size_t errlen)
{
	struct parser p = { .sc = { .in = text, .len = strlen(text) }, .err = err,
			    .errlen = errlen };
	struct snap_filter *f = calloc(1, sizeof(*f));
	struct selector *sels;
	size_t start;
	int32_t tok;
	int r = 0;

	if (!f)
		return -ENOMEM;
	if (!*text)
		goto done;  /* matches everything */
	for (;;) {
		sels = realloc(f->sels, (f->n + 1) * sizeof(*sels));
		if (!sels) {
			r = -ENOMEM;
			break;
		}
		f->sels = sels;
		memset(&f->sels[f->n], 0, sizeof(*sels));
		r = selector(&p, &f->sels[f->n++]);
		if (r)
			break;
		tok = sc_peek(&p.sc);
		if (tok == TOK_EOF)
			break;
		if (tok != ',') {
			r = perr(&p, p.sc.ppos, "unexpected input");
			break;
		}
		sc_scan(&p.sc, &start);
	}
	if (r) {
		snap_filter_free(f);
		return r;
	}
done:
	*ret = f;
	return 0;
}

bool snap_filter_match(const struct snap_filter *f, snap_field_fn fn, void *arg)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct selector *sel = &f->sels[i];
		const char *v = fn(arg, sel->path, sel->n_path);
		bool ok;

		switch (sel->op) {
		case OP_PRESENT:
			ok = v != NULL;
			break;
		case OP_EQUAL:
			ok = v && strcmp(v, sel->value) == 0;
			break;
		case OP_NOT_EQUAL:
			ok = strcmp(v ? v : "", sel->value) != 0;
			break;
		default:
			ok = sel->re_ok && regexec(&sel->re, v ? v : "", 0, NULL, 0) == 0;
			break;
		}
		if (!ok)
			return false;
	}
	return true;
}
