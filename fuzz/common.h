/* Shared helpers of the libFuzzer targets: an event log of the parser's
 * callbacks, so that two runs over different splits of the same input can
 * be compared byte for byte. */
#ifndef TC_FUZZ_COMMON_H
#define TC_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"

typedef struct {
    char *buf;
    size_t len, cap;
    int merge_body; /* last record was body data: append to it */
    size_t body_at; /* where the last body record starts */
} evlog;

/* run_split's mode bits: client mode (the response grammar), the request
 * was HEAD */
#define FUZZ_CLIENT 1
#define FUZZ_REQUEST_HEAD 2

static inline void
ev_add(evlog *l, const char *s, size_t n)
{
    if (n == 0) {
        return; /* s may be NULL (a client head's empty method span) */
    }
    if (l->len + n > l->cap) {
        size_t c = l->cap ? l->cap : 4096;
        while (c < l->len + n) {
            c *= 2;
        }
        l->buf = realloc(l->buf, c);
        if (l->buf == NULL) {
            abort();
        }
        l->cap = c;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static inline void
ev_num(evlog *l, unsigned long long v)
{
    char t[32];
    int k = snprintf(t, sizeof(t), "%llu;", v);
    ev_add(l, t, (size_t)k);
}

static inline void
ev_span(evlog *l, tc_http_span s)
{
    ev_num(l, s.len);
    ev_add(l, s.p, s.len);
}

static inline int
cb_headers(tc_http_parser *p, const tc_http_head *h)
{
    evlog *l = p->data;
    l->merge_body = 0;
    ev_add(l, "H", 1);
    if (p->client) {
        ev_num(l, (unsigned long long)h->code);
        ev_span(l, h->reason);
    }
    ev_span(l, h->method);
    ev_span(l, h->target);
    ev_span(l, h->version);
    ev_num(l, h->nheaders);
    for (size_t i = 0; i < h->nheaders; i++) {
        ev_span(l, h->headers[i].name);
        ev_span(l, h->headers[i].value);
    }
    ev_num(l, (unsigned)h->keep_alive * 4u + (unsigned)h->expect_continue * 2u +
                  (unsigned)h->connection_keep_alive);
    return 0;
}

static inline int
cb_body_start(tc_http_parser *p)
{
    evlog *l = p->data;
    l->merge_body = 0;
    ev_add(l, "S", 1);
    ev_num(l, p->body_kind);
    ev_num(l, p->content_length);
    if (p->content_length_rewrite) {
        ev_add(l, p->content_length_rewrite, p->content_length_rewrite_len);
    }
    return 0;
}

static inline int
cb_body(tc_http_parser *p, const char *d, size_t n)
{
    evlog *l = p->data;
    if (n == 0) {
        abort(); /* never called with nothing */
    }
    if (!l->merge_body) {
        l->body_at = l->len;
        ev_add(l, "B", 1);
    }
    l->merge_body = 1;
    ev_add(l, d, n);
    return 0;
}

static inline int
cb_complete(tc_http_parser *p)
{
    evlog *l = p->data;
    l->merge_body = 0;
    ev_add(l, "C", 1);
    return 0;
}

static const tc_http_callbacks fuzz_cb = {
    .on_headers = cb_headers,
    .on_body_start = cb_body_start,
    .on_body = cb_body,
    .on_message_complete = cb_complete,
};

/* Feed pieces (cut at the given offsets) into a fresh parser; returns the
 * log (caller frees .buf) and the total consumed. */
static inline evlog
run_split(const char *data, size_t len, const size_t *cuts, size_t ncuts,
          size_t max_header, unsigned long long max_body, int pause_every, unsigned mode)
{
    evlog l = {0};
    tc_http_parser p;
    tc_http_parser_init(&p, &fuzz_cb);
    p.data = &l;
    p.max_header_size = max_header;
    p.max_body_size = max_body;
    p.client = (mode & FUZZ_CLIENT) != 0;
    p.request_head = (mode & FUZZ_REQUEST_HEAD) != 0;
    size_t start = 0;
    int dead = 0;
    for (size_t c = 0; c <= ncuts && !dead; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        if (end < start) {
            end = start;
        }
        if (end > len) {
            end = len;
        }
        size_t pos = start;
        for (;;) {
            size_t used = 0;
            if (pause_every) {
                tc_http_parser_pause(&p); /* pause before anything: no progress */
                tc_http_status st0 = tc_http_parser_execute(&p, data + pos, end - pos, &used);
                if (st0 != TC_HTTP_PAUSED || used != 0) {
                    abort();
                }
                tc_http_parser_resume(&p);
            }
            tc_http_status st = tc_http_parser_execute(&p, data + pos, end - pos, &used);
            if (used > end - pos) {
                abort();
            }
            pos += used;
            if (st == TC_HTTP_ERROR) {
                if (p.error_kind != TC_HTTP_ERR_BAD_REQUEST &&
                    p.error_kind != TC_HTTP_ERR_UNSATISFIABLE) {
                    abort();
                }
                if (strlen(p.error_msg) != p.error_len) {
                    abort(); /* messages never hold NUL */
                }
                if (p.body_kind == TC_HTTP_BODY_UNTIL_CLOSE && l.merge_body) {
                    /* how much of a close-delimited body came before its
                     * "Body too long" depends on the split (as upstream's
                     * reads do); it is thrown away */
                    l.len = l.body_at;
                }
                ev_add(&l, "E", 1);
                ev_num(&l, p.error_kind);
                ev_add(&l, p.error_msg, p.error_len);
                dead = 1;
                break;
            }
            if (st == TC_HTTP_PAUSED) {
                tc_http_parser_resume(&p);
                continue;
            }
            if (pos != end) {
                abort(); /* OK means everything was consumed */
            }
            break;
        }
        start = end;
    }
    if (p.client && !dead) {
        /* the stream ends: a close-delimited body completes */
        if (tc_http_parser_eof(&p) != TC_HTTP_OK) {
            abort(); /* our callbacks never fail */
        }
        ev_add(&l, "F", 1);
    }
    ev_add(&l, tc_http_parser_in_message(&p) ? "I" : "-", 1);
    tc_http_parser_free(&p);
    return l;
}

/* The request and response targets: input = 2 option bytes (byte 0 the
 * header limit, 16 + 4 * b or 255 for the default; byte 1 the split seed,
 * bit 0 a 64-byte body limit) + the bytes.  The events must be the same fed
 * whole, cut at pseudo-random points, and (up to 512 bytes) one byte at a
 * time with a pause/resume before every call.  size >= 2. */
static inline void
fuzz_split_check(const uint8_t *data, size_t size, unsigned mode)
{
    size_t max_header = 16 + (size_t)data[0] * 4; /* 16..1036 */
    if (data[0] == 255) {
        max_header = TC_HTTP_DEFAULT_MAX_HEADER_SIZE;
    }
    unsigned seed = data[1];
    unsigned long long max_body = (data[1] & 1) ? 64 : TC_HTTP_DEFAULT_MAX_BODY_SIZE;
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    evlog whole = run_split(in, len, NULL, 0, max_header, max_body, 0, mode);

    size_t cuts[8];
    size_t n = 0;
    unsigned x = seed * 2654435761u + 1;
    for (; n < 8 && len; n++) {
        x = x * 1103515245u + 12345u;
        cuts[n] = (n ? cuts[n - 1] : 0) + (x >> 8) % (len / 4 + 2);
    }
    evlog split = run_split(in, len, cuts, n, max_header, max_body, 0, mode);
    if (split.len != whole.len || memcmp(split.buf, whole.buf, whole.len) != 0) {
        abort();
    }
    free(split.buf);

    if (len <= 512) {
        size_t *bytes = malloc((len + 1) * sizeof(size_t));
        for (size_t i = 0; i < len; i++) {
            bytes[i] = i + 1;
        }
        evlog one = run_split(in, len, bytes, len, max_header, max_body, 1, mode);
        if (one.len != whole.len || memcmp(one.buf, whole.buf, whole.len) != 0) {
            abort();
        }
        free(one.buf);
        free(bytes);
    }
    free(whole.buf);
}

#endif
