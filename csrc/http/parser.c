/* Tornado's HTTP/1.x request grammar, incremental, in pure C, and in client
 * mode its response grammar (parser.h, "Client mode"): the two share the
 * head reader, the header-line grammar, the Content-Length/Transfer-Encoding
 * checks and the chunked decoder, as upstream's HTTP1Connection does; only
 * the start line and the framing decision after the head differ.
 * See parser.h for the design and for why this is not llhttp's grammar.
 *
 * Every rule below cites the upstream code it reproduces
 * (tornado/http1connection.py, tornado/httputil.py, tornado/iostream.py of
 * tornado 6.6.1).
 */
#include "parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    S_HEAD = 0,      /* reading the head (read_until_regex) */
    S_BODY_START,    /* _read_body(): framing checks, after on_headers */
    S_FIXED,         /* _read_fixed_body */
    S_CHUNK_LINE,    /* read_until(b"\r\n", max_bytes=64) */
    S_CHUNK_DATA,
    S_CHUNK_CRLF,    /* read_bytes(2) == b"\r\n" after chunk data */
    S_LAST_CRLF,     /* read_bytes(2) == b"\r\n" after the 0 chunk */
    S_UNTIL_CLOSE,   /* client: _read_body_until_close */
    S_DEAD,          /* after an error */
};

/* ------------------------------------------------------------ strings */

static int
sb_grow(char **buf, size_t *len, size_t *cap, size_t extra)
{
    if (*len + extra + 1 <= *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap : 64;
    while (ncap < *len + extra + 1) {
        ncap *= 2;
    }
    char *n = realloc(*buf, ncap);
    if (n == NULL) {
        return -1;
    }
    *buf = n;
    *cap = ncap;
    return 0;
}

static int
sb_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (sb_grow(buf, len, cap, n) < 0) {
        return -1;
    }
    if (n) {
        memcpy(*buf + *len, s, n);
    }
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static int
sb_hex(char **buf, size_t *len, size_t *cap, unsigned char c)
{
    static const char hexd[] = "0123456789abcdef";
    char e[4] = {'\\', 'x', hexd[c >> 4], hexd[c & 15]};
    return sb_add(buf, len, cap, e, 4);
}

static int
pick_quote(const char *s, size_t n)
{
    /* Python: use "'" unless the text has a "'" and no '"'. */
    if (memchr(s, '\'', n) != NULL && memchr(s, '"', n) == NULL) {
        return '"';
    }
    return '\'';
}

/* repr() of a str whose code points are the latin-1 bytes s[0..n), or with
 * `bytes` of a bytes object: the same escapes, a "b" prefix, and every byte
 * from 0x7f up as \xNN (a str escapes only what is not printable). */
static int
repr_latin1(char **buf, size_t *len, size_t *cap, const char *s, size_t n, int bytes)
{
    char q = (char)pick_quote(s, n);
    if ((bytes && sb_add(buf, len, cap, "b", 1) < 0) || sb_add(buf, len, cap, &q, 1) < 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int r;
        if (c == (unsigned char)q || c == '\\') {
            char e[2] = {'\\', (char)c};
            r = sb_add(buf, len, cap, e, 2);
        } else if (c == '\t') {
            r = sb_add(buf, len, cap, "\\t", 2);
        } else if (c == '\n') {
            r = sb_add(buf, len, cap, "\\n", 2);
        } else if (c == '\r') {
            r = sb_add(buf, len, cap, "\\r", 2);
        } else if (c < 0x20 || (bytes ? c >= 0x7f
                                       : ((c >= 0x7f && c <= 0xa0) || c == 0xad))) {
            /* str: not str.isprintable(): C0, DEL, C1, NBSP (Zs), SOFT HYPHEN (Cf) */
            r = sb_hex(buf, len, cap, c);
        } else {
            char ch = (char)c;
            r = sb_add(buf, len, cap, &ch, 1);
        }
        if (r < 0) {
            return -1;
        }
    }
    return sb_add(buf, len, cap, &q, 1);
}

/* repr() of a str whose code points are the latin-1 bytes s[0..n). */
int
tc_http_repr_str(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    return repr_latin1(buf, len, cap, s, n, 0);
}

/* repr() of a bytes object. */
int
tc_http_repr_bytes(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    return repr_latin1(buf, len, cap, s, n, 1);
}

/* ------------------------------------------------------- character classes */

/* Character classes, one table lookup each:
 *   1: _ABNF.tchar  [!#$%&'*+\-.^_`|~0-9A-Za-z]
 *   2: _ABNF.field_vchar  VCHAR / obs-text = [\x21-\x7E\x80-\xFF]
 *   4: allowed inside a field value: field_vchar, SP, HT */
#define C_TCHAR 1
#define C_VCHAR 2
#define C_VALUE 4
static const unsigned char cclass[256] = {
#define V (C_VCHAR | C_VALUE)
#define T (C_TCHAR | C_VCHAR | C_VALUE)
    /* 0x00-0x1f: only HT (0x09) is allowed in values */
    0, 0, 0, 0, 0, 0, 0, 0, 0, C_VALUE, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* SP ! " # $ % & ' ( ) * + , - . / */
    C_VALUE, T, V, T, T, T, T, T, V, V, T, T, V, T, T, V,
    /* 0-9 : ; < = > ? */
    T, T, T, T, T, T, T, T, T, T, V, V, V, V, V, V,
    /* @ A-O */
    V, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
    /* P-Z [ \ ] ^ _ */
    T, T, T, T, T, T, T, T, T, T, T, V, V, V, T, T,
    /* ` a-o */
    T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
    /* p-z { | } ~ DEL */
    T, T, T, T, T, T, T, T, T, T, T, V, T, V, T, 0,
    /* 0x80-0xff: obs-text */
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
#undef V
#undef T
};

static int
is_tchar(unsigned char c)
{
    return cclass[c] & C_TCHAR;
}

static int
is_vchar(unsigned char c)
{
    return cclass[c] & C_VCHAR;
}

static int
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int
hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static unsigned char
ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Python's s.lower() == t for a latin-1 s and an ASCII lower-case t: latin-1
 * letters outside ASCII lower to non-ASCII letters, so an ASCII
 * case-insensitive comparison is exact. */
static int
lower_equals(const char *s, size_t n, const char *t)
{
    size_t tn = strlen(t);
    if (n != tn) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower((unsigned char)s[i]) != (unsigned char)t[i]) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------- errors */

static tc_http_status
fail_kind(tc_http_parser *p, tc_http_error_kind kind)
{
    p->state = S_DEAD;
    p->error_kind = kind;
    return TC_HTTP_ERROR;
}

static tc_http_status
nomem(tc_http_parser *p)
{
    free(p->error_msg);
    p->error_msg = NULL;
    p->error_len = 0;
    return fail_kind(p, TC_HTTP_ERR_NOMEM);
}

/* Error message = prefix + (repr(arg) if repr else arg) */
static tc_http_status
fail_msg(tc_http_parser *p, tc_http_error_kind kind, const char *prefix,
         const char *arg, size_t arglen, int repr)
{
    size_t cap = 0;
    free(p->error_msg);
    p->error_msg = NULL;
    p->error_len = 0;
    if (sb_add(&p->error_msg, &p->error_len, &cap, prefix, strlen(prefix)) < 0) {
        return nomem(p);
    }
    if (arg != NULL) {
        int r = repr ? tc_http_repr_str(&p->error_msg, &p->error_len, &cap, arg, arglen)
                     : sb_add(&p->error_msg, &p->error_len, &cap, arg, arglen);
        if (r < 0) {
            return nomem(p);
        }
    }
    return fail_kind(p, kind);
}

static tc_http_status
bad_request(tc_http_parser *p, const char *msg)
{
    return fail_msg(p, TC_HTTP_ERR_BAD_REQUEST, msg, NULL, 0, 0);
}

/* iostream._check_max_bytes: "delimiter %r not found within %d bytes" */
static tc_http_status
unsatisfiable(tc_http_parser *p, const char *delim_repr, uint64_t max)
{
    char num[32];
    int k = 0;
    char tmp[32];
    do {
        tmp[k++] = (char)('0' + (int)(max % 10));
        max /= 10;
    } while (max);
    for (int i = 0; i < k; i++) {
        num[i] = tmp[k - 1 - i];
    }
    size_t cap = 0;
    free(p->error_msg);
    p->error_msg = NULL;
    p->error_len = 0;
    if (sb_add(&p->error_msg, &p->error_len, &cap, "delimiter ", 10) < 0 ||
        sb_add(&p->error_msg, &p->error_len, &cap, delim_repr, strlen(delim_repr)) < 0 ||
        sb_add(&p->error_msg, &p->error_len, &cap, " not found within ", 18) < 0 ||
        sb_add(&p->error_msg, &p->error_len, &cap, num, (size_t)k) < 0 ||
        sb_add(&p->error_msg, &p->error_len, &cap, " bytes", 6) < 0) {
        return nomem(p);
    }
    return fail_kind(p, TC_HTTP_ERR_UNSATISFIABLE);
}

/* %r of re.compile(b"\r?\n\r?\n") and of b"\r\n" */
#define HEAD_DELIM_REPR "re.compile(b'\\r?\\n\\r?\\n')"
#define CHUNK_DELIM_REPR "b'\\r\\n'"

/* ----------------------------------------------------------- lifecycle */

void
tc_http_parser_init(tc_http_parser *p, const tc_http_callbacks *cb)
{
    memset(p, 0, sizeof(*p));
    p->max_header_size = TC_HTTP_DEFAULT_MAX_HEADER_SIZE;
    p->max_body_size = TC_HTTP_DEFAULT_MAX_BODY_SIZE;
    p->cb = cb;
    p->state = S_HEAD;
}

static void
reset_message(tc_http_parser *p)
{
    p->state = S_HEAD;
    p->hscan = 0;
    p->head_seen = 0;
    p->hbuf_len = 0;
    /* Nothing of a finished head is kept for the life of an idle keep-alive
     * connection: the buffer of a head that spanned reads and the header
     * array (32 entries, 1 KiB) are allocated again by the next head that
     * needs them (malloc's per-thread cache makes that cheap). */
    free(p->hbuf);
    p->hbuf = NULL;
    p->hbuf_cap = 0;
    free(p->hdrs);
    p->hdrs = NULL;
    p->hdrs_cap = 0;
    free(p->cl_value);
    free(p->te_value);
    p->cl_value = p->te_value = NULL;
    p->cl_len = p->te_len = 0;
    p->has_cl = p->has_te = 0;
    p->status_code = 0;
    p->body_kind = TC_HTTP_BODY_NONE;
    p->content_length = 0;
    p->content_length_rewrite = NULL;
    p->content_length_rewrite_len = 0;
    p->remaining = 0;
    p->chunk_total = 0;
    p->cline_len = 0;
    p->crlf_len = 0;
}

void
tc_http_parser_free(tc_http_parser *p)
{
    reset_message(p);
    free(p->hbuf);
    free(p->hdrs);
    free(p->error_msg);
    p->hbuf = NULL;
    p->hdrs = NULL;
    p->error_msg = NULL;
    p->hbuf_cap = p->hdrs_cap = 0;
}

void
tc_http_parser_pause(tc_http_parser *p)
{
    p->paused = 1;
}

void
tc_http_parser_resume(tc_http_parser *p)
{
    p->paused = 0;
}

int
tc_http_parser_in_message(const tc_http_parser *p)
{
    if (p->state == S_HEAD) {
        return p->head_seen > 0;
    }
    return p->state != S_DEAD;
}

/* -------------------------------------------------------------- the head */

/* Combined value of a header: ",".join(values of every line whose name
 * matches case-insensitively), as HTTPHeaders.__getitem__.  Returns 1 and a
 * malloc'd copy if present, 0 if absent, -1 on no memory. */
static int
combined(const tc_http_header *h, size_t n, const char *name, char **out, size_t *outlen)
{
    size_t cap = 0, len = 0;
    char *buf = NULL;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (!lower_equals(h[i].name.p, h[i].name.len, name)) {
            continue;
        }
        if (found && sb_add(&buf, &len, &cap, ",", 1) < 0) {
            free(buf);
            return -1;
        }
        if (sb_add(&buf, &len, &cap, h[i].value.p, h[i].value.len) < 0) {
            free(buf);
            return -1;
        }
        found = 1;
    }
    *out = buf;
    *outlen = len;
    return found;
}

/* Like combined(), without a copy when the name occurs once: *view points
 * at the value (or at *buf, malloc'd, which the caller frees). */
static int
combined_view(const tc_http_header *h, size_t n, const char *name, const char **view,
              size_t *len, char **buf)
{
    size_t count = 0, at = 0;
    *buf = NULL;
    for (size_t i = 0; i < n; i++) {
        if (lower_equals(h[i].name.p, h[i].name.len, name)) {
            count++;
            at = i;
        }
    }
    if (count == 0) {
        return 0;
    }
    if (count == 1) {
        *view = h[at].value.p;
        *len = h[at].value.len;
        return 1;
    }
    int r = combined(h, n, name, buf, len);
    *view = *buf;
    return r;
}

static int
push_header(tc_http_parser *p, size_t *n, const char *name, size_t nlen,
            const char *value, size_t vlen)
{
    if (*n == p->hdrs_cap) {
        size_t ncap = p->hdrs_cap ? p->hdrs_cap * 2 : 32;
        tc_http_header *nh = realloc(p->hdrs, ncap * sizeof(*nh));
        if (nh == NULL) {
            return -1;
        }
        p->hdrs = nh;
        p->hdrs_cap = ncap;
    }
    p->hdrs[*n].name.p = name;
    p->hdrs[*n].name.len = nlen;
    p->hdrs[*n].value.p = value;
    p->hdrs[*n].value.len = vlen;
    (*n)++;
    return 0;
}

/* HTTPHeaders.parse_line() for one line without its LF. */
static tc_http_status
parse_header_line(tc_http_parser *p, const char *s, size_t n, size_t *nh)
{
    /* re.search(r"\r?\n$") already removed the LF; drop one CR before it. */
    if (n > 0 && s[n - 1] == '\r') {
        n--;
    }
    if (n == 0) {
        return TC_HTTP_OK;
    }
    if (s[0] == ' ' || s[0] == '\t') {
        return bad_request(p, "header line cannot start with whitespace, folding not supported");
    }
    const char *colon = memchr(s, ':', n);
    if (colon == NULL) {
        return bad_request(p, "no colon in header line");
    }
    const char *name = s;
    size_t nlen = (size_t)(colon - s);
    const char *v = colon + 1;
    size_t vlen = n - nlen - 1;
    /* value.strip(" \t") */
    while (vlen && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        vlen--;
    }
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) {
        vlen--;
    }
    /* HTTPHeaders.add: _ABNF.field_name (token) */
    int ok = nlen > 0;
    for (size_t i = 0; ok && i < nlen; i++) {
        ok = is_tchar((unsigned char)name[i]);
    }
    if (!ok) {
        return fail_msg(p, TC_HTTP_ERR_BAD_REQUEST, "Invalid header name ", name, nlen, 1);
    }
    /* _ABNF.field_value: empty, or vchar (vchar|SP|HT)* vchar; the ends are
     * already not SP/HT, so every character must be vchar, SP or HT.  This
     * is what rejects NUL, other controls, DEL and a bare CR inside a line. */
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!(cclass[c] & C_VALUE)) {
            return fail_msg(p, TC_HTTP_ERR_BAD_REQUEST, "Invalid header value ", v, vlen, 1);
        }
    }
    if (push_header(p, nh, name, nlen, v, vlen) < 0) {
        return nomem(p);
    }
    return TC_HTTP_OK;
}

/* The whole head h[0..n), ending with its terminator.  Mirrors
 * HTTP1Connection._parse_headers + parse_request_start_line +
 * _can_keep_alive. */

/* What a callback's return value means: < 0 fails (the callback owns the
 * error), > 0 pauses after this event, 0 goes on. */
static tc_http_status
callback_result(tc_http_parser *p, int r)
{
    if (r < 0) {
        return fail_kind(p, TC_HTTP_ERR_NONE);
    }
    if (r > 0) {
        p->paused = 1;
    }
    return TC_HTTP_OK;
}

/* parse_response_start_line(line): _ABNF.status_line fullmatch
 *   (HTTP/[0-9]\.[0-9]) SP ([0-9]{3}) SP ((?:[\t ]|VCHAR|obs_text)+)?
 * then r.version.startswith("HTTP/1"). */
static tc_http_status
parse_status_line(tc_http_parser *p, const char *sl, size_t n, tc_http_head *head)
{
    int good = n >= 13 && memcmp(sl, "HTTP/", 5) == 0 && is_digit((unsigned char)sl[5]) &&
               sl[6] == '.' && is_digit((unsigned char)sl[7]) && sl[8] == ' ' &&
               is_digit((unsigned char)sl[9]) && is_digit((unsigned char)sl[10]) &&
               is_digit((unsigned char)sl[11]) && sl[12] == ' ';
    for (size_t i = 13; good && i < n; i++) {
        good = (cclass[(unsigned char)sl[i]] & C_VALUE) != 0;
    }
    if (!good) {
        return bad_request(p, "Error parsing response start line");
    }
    if (sl[5] != '1') {
        return fail_msg(p, TC_HTTP_ERR_BAD_REQUEST, "Unexpected HTTP version ", sl, 8, 1);
    }
    head->version.p = sl;
    head->version.len = 8;
    head->code = (sl[9] - '0') * 100 + (sl[10] - '0') * 10 + (sl[11] - '0');
    head->reason.p = sl + 13;
    head->reason.len = n - 13;
    p->status_code = head->code;
    return TC_HTTP_OK;
}

static tc_http_status
process_head(tc_http_parser *p, const char *h, size_t n)
{
    tc_http_head head;
    memset(&head, 0, sizeof(head));
    /* data.decode("latin1").lstrip("\r\n") */
    size_t i = 0;
    while (i < n && (h[i] == '\r' || h[i] == '\n')) {
        i++;
    }
    const char *d = h + i;
    size_t dn = n - i;
    const char *sl = d;
    size_t sllen = 0;
    const char *ht = d;
    size_t htlen = 0;
    const char *eol = dn ? memchr(d, '\n', dn) : NULL;
    if (eol != NULL) {
        /* start_line = data[:eol].rstrip("\r"); headers = data[eol:] */
        sllen = (size_t)(eol - d);
        while (sllen && sl[sllen - 1] == '\r') {
            sllen--;
        }
        ht = eol;
        htlen = dn - (size_t)(eol - d);
    }
    /* (eol == -1 only when data is empty: start line "", no header text.) */

    /* HTTPHeaders.parse: split on LF, parse each piece; the last piece (after
     * the final LF) is always empty here. */
    size_t nh = 0;
    size_t pos = 0;
    while (pos < htlen) {
        const char *lf = memchr(ht + pos, '\n', htlen - pos);
        size_t end = lf ? (size_t)(lf - ht) : htlen;
        tc_http_status st = parse_header_line(p, ht + pos, end - pos, &nh);
        if (st != TC_HTTP_OK) {
            return st;
        }
        pos = lf ? end + 1 : htlen;
    }

    if (p->client) {
        tc_http_status st = parse_status_line(p, sl, sllen, &head);
        if (st != TC_HTTP_OK) {
            return st;
        }
        goto start_line_done;
    }
    /* parse_request_start_line: _ABNF.request_line fullmatch
     *   (token) SP (field_vchar+) SP (HTTP/[0-9]\.[0-9]) */
    size_t a = 0;
    while (a < sllen && is_tchar((unsigned char)sl[a])) {
        a++;
    }
    size_t b = a + 1;
    int good = a > 0 && a < sllen && sl[a] == ' ';
    if (good) {
        while (b < sllen && is_vchar((unsigned char)sl[b])) {
            b++;
        }
        good = b > a + 1 && b < sllen && sl[b] == ' ';
    }
    if (good) {
        const char *v = sl + b + 1;
        good = sllen - (b + 1) == 8 && memcmp(v, "HTTP/", 5) == 0 &&
               is_digit((unsigned char)v[5]) && v[6] == '.' && is_digit((unsigned char)v[7]);
    }
    if (!good) {
        return bad_request(p, "Malformed HTTP request line");
    }
    head.method.p = sl;
    head.method.len = a;
    head.target.p = sl + a + 1;
    head.target.len = b - a - 1;
    head.version.p = sl + b + 1;
    head.version.len = 8;
    if (head.version.p[5] != '1') {
        return fail_msg(p, TC_HTTP_ERR_BAD_REQUEST, "Unexpected HTTP version ",
                        head.version.p, 8, 1);
    }
start_line_done:
    head.headers = p->hdrs;
    head.nheaders = nh;

    /* Values needed now (Connection, Expect) and later (CL, TE). */
    char *conn_buf = NULL, *expect_buf = NULL;
    const char *conn = NULL, *expect = NULL;
    size_t conn_len = 0, expect_len = 0;
    int has_conn = combined_view(p->hdrs, nh, "connection", &conn, &conn_len, &conn_buf);
    int has_expect = combined_view(p->hdrs, nh, "expect", &expect, &expect_len, &expect_buf);
    p->has_cl = combined(p->hdrs, nh, "content-length", &p->cl_value, &p->cl_len);
    p->has_te = combined(p->hdrs, nh, "transfer-encoding", &p->te_value, &p->te_len);
    if (has_conn < 0 || has_expect < 0 || p->has_cl < 0 || p->has_te < 0) {
        free(conn_buf);
        free(expect_buf);
        return nomem(p);
    }
    head.expect_continue = has_expect && expect_len == 12 &&
                           memcmp(expect, "100-continue", 12) == 0;
    head.connection_keep_alive = has_conn && lower_equals(conn, conn_len, "keep-alive");
    int conn_close = has_conn && lower_equals(conn, conn_len, "close");
    free(conn_buf);
    free(expect_buf);

    /* _can_keep_alive (server only: the client's _read_message_inner sets
     * _disconnect_on_finish = False and never calls it) */
    if (p->client) {
        head.keep_alive = 0;
    } else if (p->no_keep_alive) {
        head.keep_alive = 0;
    } else if (memcmp(head.version.p, "HTTP/1.1", 8) == 0) {
        head.keep_alive = !conn_close;
    } else if (p->has_cl) {
        head.keep_alive = head.connection_keep_alive;
    } else if (p->has_te) {
        /* is_transfer_encoding_chunked() runs here, before headers_received,
         * and its error is raised from here (Content-Length is absent). */
        if (!lower_equals(p->te_value, p->te_len, "chunked")) {
            return fail_msg(p, TC_HTTP_ERR_BAD_REQUEST, "Unsupported Transfer-Encoding ",
                            p->te_value, p->te_len, 0);
        }
        head.keep_alive = head.connection_keep_alive;
    } else if ((head.method.len == 4 && memcmp(head.method.p, "HEAD", 4) == 0) ||
               (head.method.len == 3 && memcmp(head.method.p, "GET", 3) == 0)) {
        head.keep_alive = head.connection_keep_alive;
    } else {
        head.keep_alive = 0;
    }
    p->keep_alive = head.keep_alive;

    p->state = S_BODY_START;
    if (p->cb && p->cb->on_headers) {
        return callback_result(p, p->cb->on_headers(p, &head));
    }
    return TC_HTTP_OK;
}

/* Scan for the end of the head: the first LF followed by LF or by CR LF
 * (the leftmost match of \r?\n\r?\n ends there).  Returns the offset just
 * past the terminator, or (size_t)-1 if not in s[0..n). */
static size_t
scan_head(tc_http_parser *p, const char *s, size_t n)
{
    size_t i = 0;
    int st = p->hscan;
    while (i < n) {
        if (st == 0) {
            const char *lf = memchr(s + i, '\n', n - i);
            if (lf == NULL) {
                p->hscan = 0;
                return (size_t)-1;
            }
            i = (size_t)(lf - s) + 1;
            st = 1;
            continue;
        }
        char c = s[i++];
        if (st == 1) { /* after LF */
            if (c == '\n') {
                p->hscan = 0;
                return i;
            }
            st = (c == '\r') ? 2 : 0;
        } else { /* after LF CR */
            if (c == '\n') {
                p->hscan = 0;
                return i;
            }
            st = 0;
        }
    }
    p->hscan = st;
    return (size_t)-1;
}

static int
hbuf_append(tc_http_parser *p, const char *s, size_t n)
{
    if (p->hbuf_len + n > p->hbuf_cap) {
        size_t ncap = p->hbuf_cap ? p->hbuf_cap : 1024;
        while (ncap < p->hbuf_len + n) {
            ncap *= 2;
        }
        char *nb = realloc(p->hbuf, ncap);
        if (nb == NULL) {
            return -1;
        }
        p->hbuf = nb;
        p->hbuf_cap = ncap;
    }
    memcpy(p->hbuf + p->hbuf_len, s, n);
    p->hbuf_len += n;
    return 0;
}

/* ------------------------------------------------------------ the body */

static tc_http_status framing_done(tc_http_parser *p);

/* The client's checks between headers_received() and _read_body(): 1xx
 * heads and the responses that have no body.  Returns 1 when it decided
 * (state set, or *st an error), 0 to go on to _read_body. */
static int
client_skip_body(tc_http_parser *p, tc_http_status *st)
{
    int code = p->status_code;
    *st = TC_HTTP_OK;
    if (code >= 100 && code < 200) {
        if (p->has_cl || p->has_te) {
            char msg[64];
            snprintf(msg, sizeof(msg), "Response code %d cannot have body", code);
            *st = bad_request(p, msg);
            return 1;
        }
        if (p->num_1xx >= TC_HTTP_MAX_1XX_RESPONSES) {
            *st = bad_request(p, "Too many 1xx responses");
            return 1;
        }
        /* the recursive _read_message_inner: a new head, a new header limit */
        p->num_1xx++;
        reset_message(p);
        return 1;
    }
    if (p->request_head || code == 304) {
        p->body_kind = TC_HTTP_BODY_NONE;
        p->remaining = 0;
        p->state = S_FIXED;
        *st = framing_done(p);
        return 1;
    }
    return 0;
}

/* _read_body(code, headers): code 0 for a request. */
static tc_http_status
body_start(tc_http_parser *p)
{
    uint64_t content_length = 0;
    tc_http_status cst;
    if (p->client && client_skip_body(p, &cst)) {
        return cst;
    }
    if (p->has_cl) {
        const char *v = p->cl_value;
        size_t vn = p->cl_len;
        if (memchr(v, ',', vn) != NULL) {
            /* pieces = re.split(r",[ \t]*", value); all equal or error */
            size_t first_end = (size_t)((const char *)memchr(v, ',', vn) - v);
            size_t pos = first_end;
            while (pos < vn) {
                /* at a comma */
                pos++;
                while (pos < vn && (v[pos] == ' ' || v[pos] == '\t')) {
                    pos++;
                }
                const char *c = memchr(v + pos, ',', vn - pos);
                size_t end = c ? (size_t)(c - v) : vn;
                if (end - pos != first_end || memcmp(v + pos, v, first_end) != 0) {
                    return fail_msg(p, TC_HTTP_ERR_BAD_REQUEST,
                                    "Multiple unequal Content-Lengths: ", v, vn, 1);
                }
                pos = end;
            }
            /* headers["Content-Length"] = pieces[0] */
            vn = first_end;
            p->content_length_rewrite = v;
            p->content_length_rewrite_len = vn;
        }
        /* parse_int: DIGITS.fullmatch; int() has no size limit */
        int ok = vn > 0;
        for (size_t i = 0; ok && i < vn; i++) {
            if (!is_digit((unsigned char)v[i])) {
                ok = 0;
                break;
            }
            uint64_t d = (uint64_t)(v[i] - '0');
            content_length = content_length > (UINT64_MAX - d) / 10
                                 ? UINT64_MAX
                                 : content_length * 10 + d;
        }
        if (!ok) {
            return fail_msg(p, TC_HTTP_ERR_BAD_REQUEST,
                            "Only integer Content-Length is allowed: ", v, vn, 0);
        }
        if (content_length > p->max_body_size || p->max_body_negative) {
            return bad_request(p, "Content-Length too long");
        }
    }
    /* is_transfer_encoding_chunked */
    int chunked = 0;
    if (p->has_te) {
        if (p->has_cl) {
            return bad_request(p, "Message with both Transfer-Encoding and Content-Length");
        }
        if (!lower_equals(p->te_value, p->te_len, "chunked")) {
            return fail_msg(p, TC_HTTP_ERR_BAD_REQUEST, "Unsupported Transfer-Encoding ",
                            p->te_value, p->te_len, 0);
        }
        chunked = 1;
    }
    if (p->client && p->status_code == 204) {
        /* implicit length 0 instead of read-until-close */
        if (chunked || (p->has_cl && content_length != 0)) {
            return bad_request(p, "Response with code 204 should not have body");
        }
        p->has_cl = 1;
        content_length = 0;
    }
    if (chunked) {
        p->body_kind = TC_HTTP_BODY_CHUNKED;
        p->state = S_CHUNK_LINE;
        p->cline_len = 0;
        p->chunk_total = 0;
    } else if (p->has_cl) {
        p->body_kind = TC_HTTP_BODY_FIXED;
        p->content_length = content_length;
        p->remaining = content_length;
        p->state = S_FIXED;
    } else if (p->client) {
        p->body_kind = TC_HTTP_BODY_UNTIL_CLOSE;
        p->state = S_UNTIL_CLOSE;
        p->chunk_total = 0;
    } else {
        p->body_kind = TC_HTTP_BODY_NONE;
        p->state = S_FIXED;
        p->remaining = 0;
    }
    return framing_done(p);
}

static tc_http_status
framing_done(tc_http_parser *p)
{
    if (p->cb && p->cb->on_body_start) {
        return callback_result(p, p->cb->on_body_start(p));
    }
    return TC_HTTP_OK;
}

static tc_http_status
message_complete(tc_http_parser *p)
{
    p->messages++;
    p->num_1xx = 0;
    reset_message(p);
    if (p->cb && p->cb->on_message_complete) {
        return callback_result(p, p->cb->on_message_complete(p));
    }
    return TC_HTTP_OK;
}

static tc_http_status
deliver(tc_http_parser *p, const char *s, size_t n)
{
    if (n && p->cb && p->cb->on_body) {
        return callback_result(p, p->cb->on_body(p, s, n));
    }
    return TC_HTTP_OK;
}

/* The chunk-size line s[0..n) (without CRLF): HEXDIGITS.fullmatch.  Chunk
 * extensions (";name=value") are not hex and so are rejected, as upstream. */
static tc_http_status
chunk_line(tc_http_parser *p, const char *s, size_t n)
{
    uint64_t v = 0;
    int ok = n > 0;
    for (size_t i = 0; ok && i < n; i++) {
        int h = hex_val((unsigned char)s[i]);
        if (h < 0) {
            ok = 0;
            break;
        }
        v = v > (UINT64_MAX >> 4) ? UINT64_MAX : (v << 4) | (uint64_t)h;
    }
    if (!ok) {
        return bad_request(p, "invalid chunk size");
    }
    if (v == 0) {
        p->state = S_LAST_CRLF;
        p->crlf_len = 0;
        return TC_HTTP_OK;
    }
    p->chunk_total = p->chunk_total > UINT64_MAX - v ? UINT64_MAX : p->chunk_total + v;
    if (p->chunk_total > p->max_body_size) {
        return bad_request(p, "chunked body too large");
    }
    p->remaining = v;
    p->state = S_CHUNK_DATA;
    return TC_HTTP_OK;
}

/* ------------------------------------------------------------- execute */

tc_http_status
tc_http_parser_execute(tc_http_parser *p, const char *data, size_t len, size_t *consumed)
{
    size_t pos = 0;
    tc_http_status st = TC_HTTP_OK;
    if (p->state == S_DEAD) {
        *consumed = 0;
        return TC_HTTP_ERROR;
    }
    while (!p->paused) {
        switch (p->state) {
        case S_HEAD: {
            if (pos == len) {
                goto out;
            }
            size_t avail = len - pos;
            size_t end = scan_head(p, data + pos, avail);
            if (end == (size_t)-1) {
                /* read_until_regex: no match and more than max_bytes buffered */
                if (p->head_seen + avail > p->max_header_size) {
                    st = unsatisfiable(p, HEAD_DELIM_REPR, p->max_header_size);
                    goto out;
                }
                if (hbuf_append(p, data + pos, avail) < 0) {
                    st = nomem(p);
                    goto out;
                }
                p->head_seen += avail;
                pos = len;
                goto out;
            }
            /* match found: its end must be within max_bytes */
            if (p->head_seen + end > p->max_header_size) {
                st = unsatisfiable(p, HEAD_DELIM_REPR, p->max_header_size);
                goto out;
            }
            p->head_seen += end;
            const char *h = data + pos;
            size_t hn = end;
            if (p->hbuf_len) {
                if (hbuf_append(p, data + pos, end) < 0) {
                    st = nomem(p);
                    goto out;
                }
                h = p->hbuf;
                hn = p->hbuf_len;
            }
            pos += end;
            st = process_head(p, h, hn);
            if (st != TC_HTTP_OK) {
                goto out;
            }
            break;
        }
        case S_BODY_START:
            st = body_start(p);
            if (st != TC_HTTP_OK) {
                goto out;
            }
            break;
        case S_FIXED: {
            if (p->remaining == 0) {
                st = message_complete(p);
                if (st != TC_HTTP_OK) {
                    goto out;
                }
                break;
            }
            if (pos == len) {
                goto out;
            }
            size_t n = len - pos;
            if ((uint64_t)n > p->remaining) {
                n = (size_t)p->remaining;
            }
            p->remaining -= n;
            pos += n;
            st = deliver(p, data + pos - n, n);
            if (st != TC_HTTP_OK) {
                goto out;
            }
            break;
        }
        case S_CHUNK_LINE: {
            /* read_until(b"\r\n", max_bytes=64): the line with its CRLF may
             * be at most 64 bytes; beyond that the stream is closed. */
            if (pos == len) {
                goto out;
            }
            char c = data[pos++];
            if (c == '\n' && p->cline_len > 0 && p->cline[p->cline_len - 1] == '\r') {
                if (p->cline_len + 1 > TC_HTTP_CHUNK_LINE_MAX) {
                    st = unsatisfiable(p, CHUNK_DELIM_REPR, TC_HTTP_CHUNK_LINE_MAX);
                    goto out;
                }
                st = chunk_line(p, p->cline, p->cline_len - 1);
                p->cline_len = 0;
                if (st != TC_HTTP_OK) {
                    goto out;
                }
                break;
            }
            if (p->cline_len + 1 > TC_HTTP_CHUNK_LINE_MAX) {
                st = unsatisfiable(p, CHUNK_DELIM_REPR, TC_HTTP_CHUNK_LINE_MAX);
                goto out;
            }
            p->cline[p->cline_len++] = c;
            break;
        }
        case S_CHUNK_DATA: {
            if (pos == len) {
                goto out;
            }
            size_t n = len - pos;
            if ((uint64_t)n > p->remaining) {
                n = (size_t)p->remaining;
            }
            p->remaining -= n;
            pos += n;
            if (p->remaining == 0) {
                p->state = S_CHUNK_CRLF;
                p->crlf_len = 0;
            }
            st = deliver(p, data + pos - n, n);
            if (st != TC_HTTP_OK) {
                goto out;
            }
            break;
        }
        case S_CHUNK_CRLF:
        case S_LAST_CRLF: {
            /* read_bytes(2): both bytes are awaited before they are judged */
            if (pos == len) {
                goto out;
            }
            p->crlf[p->crlf_len++] = data[pos++];
            if (p->crlf_len < 2) {
                break;
            }
            if (p->crlf[0] != '\r' || p->crlf[1] != '\n') {
                st = bad_request(p, p->state == S_CHUNK_CRLF
                                        ? "improperly terminated chunk"
                                        : "improperly terminated chunked request");
                goto out;
            }
            if (p->state == S_CHUNK_CRLF) {
                p->state = S_CHUNK_LINE;
                p->cline_len = 0;
            } else {
                st = message_complete(p);
                if (st != TC_HTTP_OK) {
                    goto out;
                }
            }
            break;
        }
        case S_UNTIL_CLOSE: {
            /* read_bytes(chunk_size, partial=True) until the stream closes;
             * the total is checked before a piece is delivered */
            if (pos == len) {
                goto out;
            }
            size_t n = len - pos;
            if ((uint64_t)n > p->max_body_size - p->chunk_total ||
                p->chunk_total > p->max_body_size) {
                st = bad_request(p, "Body too long");
                goto out;
            }
            p->chunk_total += n;
            pos += n;
            st = deliver(p, data + pos - n, n);
            if (st != TC_HTTP_OK) {
                goto out;
            }
            break;
        }
        default:
            st = TC_HTTP_ERROR;
            goto out;
        }
    }
out:
    *consumed = pos;
    if (st == TC_HTTP_OK && p->paused) {
        return TC_HTTP_PAUSED;
    }
    return st;
}

tc_http_status
tc_http_parser_eof(tc_http_parser *p)
{
    if (p->state == S_DEAD || p->paused) {
        return p->state == S_DEAD ? TC_HTTP_ERROR : TC_HTTP_OK;
    }
    size_t used = 0;
    tc_http_status st = tc_http_parser_execute(p, NULL, 0, &used);
    if (st != TC_HTTP_OK || p->paused) {
        return st == TC_HTTP_PAUSED ? TC_HTTP_OK : st;
    }
    if (p->state == S_UNTIL_CLOSE) {
        st = message_complete(p);
        if (st == TC_HTTP_PAUSED) {
            st = TC_HTTP_OK;
        }
    }
    return st;
}

int
tc_http_parser_fixed_hint(const tc_http_parser *p, uint64_t *length)
{
    int code = p->status_code;
    uint64_t n = 0;
    if (!p->client || p->state != S_BODY_START || !p->has_cl || p->has_te ||
        p->request_head || (code >= 100 && code < 200) || code == 204 || code == 304 ||
        p->cl_len == 0 || p->cl_len > 18) {
        return 0;
    }
    for (size_t i = 0; i < p->cl_len; i++) {
        char c = p->cl_value[i];
        if (c < '0' || c > '9') {
            return 0;
        }
        n = n * 10 + (uint64_t)(c - '0');
    }
    *length = n;
    return 1;
}
