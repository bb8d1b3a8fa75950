/* libFuzzer target: Tornado's grammar (csrc/http/parser.c) against llhttp
 * (the system's sources, compiled by fuzz/run.sh with LLHTTP_STRICT_MODE=1,
 * through csrc/http/judge.c: the judge of the server's strict mode).
 *
 * Input: the raw bytes of a connection.  Both parsers read all of it (ours
 * as the server does: message after message while it keeps the connection
 * alive).  For every message both completed, they must agree on method,
 * target, version, the header list (names as received, values without
 * surrounding SP/HT), the body bytes and the keep-alive decision; when
 * neither failed, on the number of messages.  The known disagreements (the
 * keep-alive rules, tests/test_http_judge.py, where Tornado is right and
 * the server follows Tornado; a chunked body ended by a bare LF, which
 * Tornado waits on and then refuses) are allowed by name below; anything
 * else aborts.  In strict mode the server also refuses what only llhttp
 * rejects, so strict-mode safety rests on this agreement.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/judge.h"
#include "http/parser.h"

/* ------------------------------------------------ our side, as records */

typedef struct {
    tc_http_buf rec;
    int version10;      /* of the last head */
} ours_log;

static void
put(tc_http_buf *b, char tag, const char *s, size_t n)
{
    unsigned char h[TC_HTTP_JUDGE_REC_HDR] = {
        (unsigned char)tag, (unsigned char)n, (unsigned char)(n >> 8),
        (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
    if (tc_http_buf_append(b, (const char *)h, sizeof(h)) < 0 ||
        tc_http_buf_append(b, s, n) < 0) {
        abort();
    }
}

static int
o_headers(tc_http_parser *p, const tc_http_head *h)
{
    ours_log *l = p->data;
    put(&l->rec, 'm', h->method.p, h->method.len);
    put(&l->rec, 'u', h->target.p, h->target.len);
    for (size_t i = 0; i < h->nheaders; i++) {
        put(&l->rec, 'f', h->headers[i].name.p, h->headers[i].name.len);
        put(&l->rec, 'v', h->headers[i].value.p, h->headers[i].value.len);
    }
    put(&l->rec, 'V', h->version.p, h->version.len);
    put(&l->rec, 'H', "", 0);
    return 0;
}

static int
o_body_start(tc_http_parser *p)
{
    (void)p;
    return 0;
}

static int
o_body(tc_http_parser *p, const char *d, size_t n)
{
    ours_log *l = p->data;
    put(&l->rec, 'b', d, n);
    return 0;
}

static int
o_complete(tc_http_parser *p)
{
    ours_log *l = p->data;
    char ka = (char)(p->keep_alive ? 1 : 0);
    put(&l->rec, 'E', &ka, 1);
    return p->keep_alive ? 0 : 1; /* the server stops after a closing message */
}

static const tc_http_callbacks ours_cb = {o_headers, o_body_start, o_body, o_complete};

/* --------------------------------------------------- messages from records */

#define MAXH 128

typedef struct {
    tc_http_span method, target, version, body_first;
    tc_http_span names[MAXH], values[MAXH];
    size_t nh;
    char *body;
    size_t body_len;
    int keep_alive;
    int overflow;   /* more than MAXH headers: only counted */
} msg;

static tc_http_span
trim(tc_http_span s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t')) {
        s.len--;
    }
    return s;
}

/* Splits a record log into completed messages (at most cap); returns how
 * many.  Body pieces are concatenated into a malloc'd buffer. */
static size_t
messages(const tc_http_buf *b, msg *out, size_t cap)
{
    size_t n = 0, pos = 0;
    msg cur;
    memset(&cur, 0, sizeof(cur));
    while (pos + TC_HTTP_JUDGE_REC_HDR <= b->len && n < cap) {
        const unsigned char *h = (const unsigned char *)b->data + pos;
        size_t len = (size_t)h[1] | (size_t)h[2] << 8 | (size_t)h[3] << 16 | (size_t)h[4] << 24;
        tc_http_span s = {(const char *)h + TC_HTTP_JUDGE_REC_HDR, len};
        switch (h[0]) {
        case 'm': cur.method = s; break;
        case 'u': cur.target = s; break;
        case 'V': cur.version = s; break;
        case 'f':
            if (cur.nh < MAXH) {
                cur.names[cur.nh] = s;
                cur.values[cur.nh] = (tc_http_span){s.p, 0};
            } else {
                cur.overflow = 1;
            }
            cur.nh++;
            break;
        case 'v':
            if (cur.nh && cur.nh <= MAXH) {
                cur.values[cur.nh - 1] = trim(s);
            }
            break;
        case 'b':
            cur.body = realloc(cur.body, cur.body_len + len + 1);
            if (cur.body == NULL) {
                abort();
            }
            memcpy(cur.body + cur.body_len, s.p, len);
            cur.body_len += len;
            break;
        case 'E':
            cur.keep_alive = s.p[0];
            out[n++] = cur;
            memset(&cur, 0, sizeof(cur));
            break;
        default:
            break;
        }
        pos += TC_HTTP_JUDGE_REC_HDR + len;
    }
    free(cur.body);
    return n;
}

static int
same(tc_http_span a, tc_http_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int
ieq(const char *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n != k) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != lit[i]) {
            return 0;
        }
    }
    return 1;
}

/* Is a keep-alive disagreement on message m (ours) one of the named ones in
 * tests/test_http_judge.py?  connection_tokens: Tornado compares the whole
 * combined Connection value ("close" / "keep-alive"), llhttp reads tokens;
 * http10_no_length: an HTTP/1.0 keep-alive without Content-Length,
 * chunked or GET/HEAD, which Tornado closes. */
/* The other known disagreement, final_lf: after a chunked body's last-chunk
 * line Tornado reads exactly two bytes and refuses anything but CRLF
 * ("improperly terminated chunked request"), so after a bare LF it waits
 * for one more byte; llhttp ends the message at the bare LF.  Input that
 * ends right there leaves our parser waiting (no error) with llhttp one
 * message ahead: `m` is that message of llhttp's, and it is chunked. */
static int
final_lf_explained(const msg *m, const char *in, size_t size)
{
    if (size < 4 || memcmp(in + size - 4, "0\r\n\n", 4) != 0) {
        return 0;
    }
    for (size_t i = 0; i < m->nh && i < MAXH; i++) {
        const tc_http_span v = m->values[i];
        if (ieq(m->names[i].p, m->names[i].len, "transfer-encoding") && v.len >= 7 &&
            ieq(v.p + v.len - 7, 7, "chunked")) {
            return 1;
        }
    }
    return 0;
}

static int
keep_alive_explained(const msg *m)
{
    char combined[1024];
    size_t clen = 0;
    int have = 0;
    for (size_t i = 0; i < m->nh && i < MAXH; i++) {
        if (!ieq(m->names[i].p, m->names[i].len, "connection")) {
            continue;
        }
        if (have && clen < sizeof(combined)) {
            combined[clen++] = ',';
        }
        have = 1;
        for (size_t k = 0; k < m->values[i].len && clen < sizeof(combined); k++) {
            combined[clen++] = m->values[i].p[k];
        }
    }
    if (m->overflow || clen >= sizeof(combined)) {
        return 1; /* not modelled here; the Python test covers such heads */
    }
    int v11 = same(m->version, (tc_http_span){"HTTP/1.1", 8});
    int is_close = have && ieq(combined, clen, "close");
    int is_ka = have && ieq(combined, clen, "keep-alive");
    int tok_close = 0, tok_ka = 0;
    for (size_t a = 0; a < clen;) {
        size_t e = a;
        while (e < clen && combined[e] != ',') {
            e++;
        }
        tc_http_span t = trim((tc_http_span){combined + a, e - a});
        tok_close |= ieq(t.p, t.len, "close");
        tok_ka |= ieq(t.p, t.len, "keep-alive");
        a = e + 1;
    }
    int exact = v11 ? !is_close : is_ka;
    /* llhttp: HTTP/1.1 closes on a close token; HTTP/1.0 keeps on a
     * keep-alive token and does not look for close */
    int by_token = v11 ? !tok_close : tok_ka;
    if (exact != by_token) {
        return 1;                       /* connection_tokens */
    }
    return !v11 && is_ka;               /* http10_no_length */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    ours_log ol = {0};
    tc_http_parser p;
    tc_http_parser_init(&p, &ours_cb);
    p.data = &ol;
    int ours_failed = 0;
    while (1) {
        size_t used = 0;
        tc_http_status st = tc_http_parser_execute(&p, in, size, &used);
        if (st == TC_HTTP_ERROR) {
            ours_failed = 1;
            break;
        }
        /* TC_HTTP_PAUSED: o_complete stopped after a closing message, as
         * the server stops reading there; TC_HTTP_OK: all input used */
        break;
    }

    tc_http_buf jrec = {0};
    tc_http_judge j;
    tc_http_judge_init(&j, &jrec);
    int jerr = tc_http_judge_feed(&j, in, size);
    if (j.nomem) {
        abort();
    }

    static msg a[64], b[64];
    size_t na = messages(&ol.rec, a, 64), nb = messages(&jrec, b, 64);
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        if (!same(a[i].method, b[i].method) || !same(a[i].target, b[i].target) ||
            !same(a[i].version, b[i].version) || a[i].nh != b[i].nh ||
            a[i].body_len != b[i].body_len ||
            (a[i].body_len && memcmp(a[i].body, b[i].body, a[i].body_len) != 0)) {
            abort();
        }
        for (size_t k = 0; k < a[i].nh && k < MAXH; k++) {
            if (!same(a[i].names[k], b[i].names[k]) || !same(a[i].values[k], b[i].values[k])) {
                abort();
            }
        }
        if (a[i].keep_alive != b[i].keep_alive && !keep_alive_explained(&a[i])) {
            abort();
        }
    }
    if (!ours_failed && jerr == HPE_OK && na != nb && na < 64 && nb < 64 &&
        !(na < nb && final_lf_explained(&b[na], in, size))) {
        /* only where one side stopped after a message it closes on */
        const msg *shorter = na < nb ? &a[na - (na ? 1 : 0)] : &b[nb - (nb ? 1 : 0)];
        if ((na < nb ? na : nb) == 0 || shorter->keep_alive) {
            abort();
        }
    }
    for (size_t i = 0; i < na; i++) {
        free(a[i].body);
    }
    for (size_t i = 0; i < nb; i++) {
        free(b[i].body);
    }
    tc_http_buf_free(&ol.rec);
    tc_http_buf_free(&jrec);
    tc_http_parser_free(&p);
    return 0;
}
