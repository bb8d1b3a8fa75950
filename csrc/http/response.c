/* Server-side response framing: the bytes HTTP1Connection.write_headers,
 * write and finish (tornado 6.6.1, is_client=False) produce.  Pure C.
 *
 * Headers come in HTTPHeaders.get_all() order (values of one name grouped at
 * the place the name was first added).  Upstream's `headers[name] = value`
 * (for Connection and Transfer-Encoding) keeps the name's place and replaces
 * all its values; a new name goes last.  Names are compared ASCII
 * case-insensitively, which is what _normalize_header() amounts to for the
 * ASCII names involved.
 */
#include "parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
tc_http_buf_append(tc_http_buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n) {
            ncap *= 2;
        }
        char *nd = realloc(b->data, ncap);
        if (nd == NULL) {
            return -1;
        }
        b->data = nd;
        b->cap = ncap;
    }
    if (n) {
        memcpy(b->data + b->len, s, n);
    }
    b->len += n;
    return 0;
}

void
tc_http_buf_free(tc_http_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void
tc_http_writer_init(tc_http_writer *w)
{
    memset(w, 0, sizeof(*w));
    w->expected_remaining = -1;
}

void
tc_http_writer_free(tc_http_writer *w)
{
    free(w->error_msg);
    w->error_msg = NULL;
    w->error_len = 0;
}

static int
ieq(const char *s, size_t n, const char *t)
{
    size_t tn = strlen(t);
    if (n != tn) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c + 32);
        }
        if (c != (unsigned char)t[i]) {
            return 0;
        }
    }
    return 1;
}

static int
eq(const char *s, size_t n, const char *t)
{
    return n == strlen(t) && memcmp(s, t, n) == 0;
}

static tc_http_werr
werr(tc_http_writer *w, tc_http_werr kind, const char *msg, const char *arg,
     size_t arglen, int arg_kind /* 0 none, 1 repr str, 2 repr bytes */)
{
    tc_http_buf b = {0};
    free(w->error_msg);
    w->error_msg = NULL;
    w->error_len = 0;
    if (tc_http_buf_append(&b, msg, strlen(msg)) < 0 || tc_http_buf_append(&b, "", 1) < 0) {
        goto nomem;
    }
    b.len--; /* keep the NUL out of the length */
    if (arg_kind == 1 && tc_http_repr_str(&b.data, &b.len, &b.cap, arg, arglen) < 0) {
        goto nomem;
    }
    if (arg_kind == 2 && tc_http_repr_bytes(&b.data, &b.len, &b.cap, arg, arglen) < 0) {
        goto nomem;
    }
    w->error_msg = b.data;
    w->error_len = b.len;
    return kind;
nomem:
    tc_http_buf_free(&b);
    return TC_HTTP_WERR_NOMEM;
}

/* HTTP1Connection._format_chunk */
static tc_http_werr
format_chunk(tc_http_writer *w, const char *chunk, size_t len, tc_http_buf *out)
{
    if (w->expected_remaining >= 0) {
        if ((uint64_t)len > (uint64_t)w->expected_remaining) {
            w->expected_remaining = 0;
            /* "Close the stream now to stop further framing errors." */
            w->closed = 1;
            return werr(w, TC_HTTP_WERR_OUTPUT,
                        "Tried to write more data than Content-Length", NULL, 0, 0);
        }
        w->expected_remaining -= (int64_t)len;
    }
    if (w->chunking && len) {
        /* Empty chunks are not written: they would mean end-of-stream. */
        char hex[24];
        int k = snprintf(hex, sizeof(hex), "%zx\r\n", len);
        if (tc_http_buf_append(out, hex, (size_t)k) < 0 ||
            tc_http_buf_append(out, chunk, len) < 0 ||
            tc_http_buf_append(out, "\r\n", 2) < 0) {
            return TC_HTTP_WERR_NOMEM;
        }
        return TC_HTTP_WOK;
    }
    if (tc_http_buf_append(out, chunk, len) < 0) {
        return TC_HTTP_WERR_NOMEM;
    }
    return TC_HTTP_WOK;
}

static int
has_crlf(const char *s, size_t n)
{
    return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL;
}

tc_http_werr
tc_http_write_headers(tc_http_writer *w, int code, const char *reason, size_t reason_len,
                      const tc_http_header *headers, size_t nheaders,
                      const char *chunk, size_t chunk_len, tc_http_buf *out)
{
    tc_http_werr rc = TC_HTTP_WOK;
    size_t mark = out->len;
    tc_http_buf lb = {0};
    int req11 = eq(w->req_version, w->req_version_len, "HTTP/1.1");
    int req10 = eq(w->req_version, w->req_version_len, "HTTP/1.0");
    int is_head = eq(w->req_method, w->req_method_len, "HEAD");
    int has_cl = 0;
    for (size_t i = 0; i < nheaders; i++) {
        if (ieq(headers[i].name.p, headers[i].name.len, "content-length")) {
            has_cl = 1;
        }
    }
    w->chunking = req11 && !is_head && code != 204 && code != 304 &&
                  (code < 100 || code >= 200) && !has_cl;
    const char *set_conn = NULL;
    if (req11 && w->disconnect_on_finish) {
        set_conn = "close";
    }
    if (req10 && w->req_connection_keep_alive) {
        set_conn = "Keep-Alive";
    }
    const char *set_te = w->chunking ? "chunked" : NULL;

    /* _expected_content_remaining */
    if (is_head || code == 304) {
        w->expected_remaining = 0;
    } else if (has_cl) {
        /* parse_int(headers["Content-Length"]) on the combined value */
        tc_http_buf cl = {0};
        int first = 1;
        for (size_t i = 0; i < nheaders; i++) {
            if (!ieq(headers[i].name.p, headers[i].name.len, "content-length")) {
                continue;
            }
            if (headers[i].value.p == NULL) {
                /* Not latin-1: upstream's parse_int raises ValueError with
                 * the text; we report an encoding error (the caller's, see
                 * tc_http_py_write_headers in http_py.c). */
                tc_http_buf_free(&cl);
                w->error_index = i;
                return TC_HTTP_WERR_ENCODE;
            }
            if ((!first && tc_http_buf_append(&cl, ",", 1) < 0) ||
                (headers[i].value.p &&
                 tc_http_buf_append(&cl, headers[i].value.p, headers[i].value.len) < 0)) {
                tc_http_buf_free(&cl);
                return TC_HTTP_WERR_NOMEM;
            }
            first = 0;
        }
        int ok = cl.len > 0;
        uint64_t v = 0;
        for (size_t i = 0; ok && i < cl.len; i++) {
            unsigned char c = (unsigned char)cl.data[i];
            if (c < '0' || c > '9') {
                ok = 0;
                break;
            }
            /* Larger than int64: kept saturated (the difference with
             * upstream's unbounded int is only in the figure of a
             * "bytes less" message for an impossible body). */
            v = v > (uint64_t)(INT64_MAX - 9) / 10 ? (uint64_t)INT64_MAX : v * 10 + (c - '0');
        }
        if (!ok) {
            rc = werr(w, TC_HTTP_WERR_VALUE, "not an integer: ", cl.data ? cl.data : "",
                      cl.len, 1);
            tc_http_buf_free(&cl);
            return rc;
        }
        tc_http_buf_free(&cl);
        w->expected_remaining = (int64_t)v;
    } else {
        w->expected_remaining = -1;
    }

    /* The final header list, with Connection / Transfer-Encoding set. */
    const tc_http_header **lines = malloc((nheaders + 2) * sizeof(*lines));
    if (lines == NULL) {
        return TC_HTTP_WERR_NOMEM;
    }
    tc_http_header extra[2];
    size_t n = 0;
    int conn_done = 0, te_done = 0;
    for (size_t i = 0; i < nheaders; i++) {
        const tc_http_header *h = &headers[i];
        if (set_conn && ieq(h->name.p, h->name.len, "connection")) {
            if (conn_done) {
                continue;
            }
            conn_done = 1;
            extra[0].name = h->name;
            extra[0].value.p = set_conn;
            extra[0].value.len = strlen(set_conn);
            lines[n++] = &extra[0];
            continue;
        }
        if (set_te && ieq(h->name.p, h->name.len, "transfer-encoding")) {
            if (te_done) {
                continue;
            }
            te_done = 1;
            extra[1].name = h->name;
            extra[1].value.p = set_te;
            extra[1].value.len = strlen(set_te);
            lines[n++] = &extra[1];
            continue;
        }
        lines[n++] = h;
    }
    if (set_conn && !conn_done) {
        extra[0].name.p = "Connection";
        extra[0].name.len = 10;
        extra[0].value.p = set_conn;
        extra[0].value.len = strlen(set_conn);
        lines[n++] = &extra[0];
    }
    if (set_te && !te_done) {
        extra[1].name.p = "Transfer-Encoding";
        extra[1].name.len = 17;
        extra[1].value.p = set_te;
        extra[1].value.len = strlen(set_te);
        lines[n++] = &extra[1];
    }

    /* line.encode("latin1") for every line, in order */
    for (size_t i = 0; i < n; i++) {
        if (lines[i]->value.p == NULL || lines[i]->name.p == NULL) {
            w->error_index = (size_t)(lines[i] - headers);
            rc = TC_HTTP_WERR_ENCODE;
            goto done;
        }
    }

    /* status line */
    char num[32];
    int k = snprintf(num, sizeof(num), "%d", code);
    if (tc_http_buf_append(&lb, "HTTP/1.1 ", 9) < 0 ||
        tc_http_buf_append(&lb, num, (size_t)k) < 0 ||
        tc_http_buf_append(&lb, " ", 1) < 0 ||
        tc_http_buf_append(&lb, reason, reason_len) < 0) {
        rc = TC_HTTP_WERR_NOMEM;
        goto done;
    }
    /* CR_OR_LF_RE on every line, the status line first */
    if (has_crlf(lb.data, lb.len)) {
        rc = werr(w, TC_HTTP_WERR_VALUE, "Illegal characters (CR or LF) in header: ",
                  lb.data, lb.len, 2);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const tc_http_header *h = lines[i];
        if (has_crlf(h->name.p, h->name.len) || has_crlf(h->value.p, h->value.len)) {
            tc_http_buf one = {0};
            if (tc_http_buf_append(&one, h->name.p, h->name.len) < 0 ||
                tc_http_buf_append(&one, ": ", 2) < 0 ||
                tc_http_buf_append(&one, h->value.p, h->value.len) < 0) {
                tc_http_buf_free(&one);
                rc = TC_HTTP_WERR_NOMEM;
                goto done;
            }
            rc = werr(w, TC_HTTP_WERR_VALUE, "Illegal characters (CR or LF) in header: ",
                      one.data, one.len, 2);
            tc_http_buf_free(&one);
            goto done;
        }
    }
    if (tc_http_buf_append(out, lb.data, lb.len) < 0) {
        rc = TC_HTTP_WERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const tc_http_header *h = lines[i];
        if (tc_http_buf_append(out, "\r\n", 2) < 0 ||
            tc_http_buf_append(out, h->name.p, h->name.len) < 0 ||
            tc_http_buf_append(out, ": ", 2) < 0 ||
            tc_http_buf_append(out, h->value.p, h->value.len) < 0) {
            rc = TC_HTTP_WERR_NOMEM;
            goto done;
        }
    }
    if (tc_http_buf_append(out, "\r\n\r\n", 4) < 0) {
        rc = TC_HTTP_WERR_NOMEM;
        goto done;
    }
    if (chunk != NULL && chunk_len > 0) {
        rc = format_chunk(w, chunk, chunk_len, out);
        if (rc != TC_HTTP_WOK) {
            goto done;
        }
    }
    w->headers_written = 1;
done:
    if (rc != TC_HTTP_WOK) {
        out->len = mark; /* nothing is written when write_headers raises */
    }
    tc_http_buf_free(&lb);
    free(lines);
    return rc;
}

tc_http_werr
tc_http_write_body(tc_http_writer *w, const char *chunk, size_t len, tc_http_buf *out)
{
    size_t mark = out->len;
    if (w->closed) {
        return TC_HTTP_WOK; /* upstream: a failed future, nothing written */
    }
    tc_http_werr rc = format_chunk(w, chunk, len, out);
    if (rc != TC_HTTP_WOK) {
        out->len = mark;
    }
    return rc;
}

tc_http_werr
tc_http_write_finish(tc_http_writer *w, int stream_closed, tc_http_buf *out)
{
    if (stream_closed) {
        w->closed = 1;
    }
    if (w->expected_remaining > 0 && !w->closed) {
        char msg[96];
        snprintf(msg, sizeof(msg), "Tried to write %lld bytes less than Content-Length",
                 (long long)w->expected_remaining);
        w->closed = 1;
        return werr(w, TC_HTTP_WERR_OUTPUT, msg, NULL, 0, 0);
    }
    if (w->chunking && !w->closed) {
        if (tc_http_buf_append(out, "0\r\n\r\n", 5) < 0) {
            return TC_HTTP_WERR_NOMEM;
        }
    }
    return TC_HTTP_WOK;
}
