/* libFuzzer target: the chunked body decoder of csrc/http/parser.c.
 *
 * The input is used as the body of "POST / HTTP/1.1 / Transfer-Encoding:
 * chunked" and the streaming parser (fed in pseudo-random pieces) is compared
 * with ref_chunked() below: a direct, whole-buffer transcription of
 * tornado's HTTP1Connection._read_chunked_body (read_until(b"\r\n",
 * max_bytes=64), HEXDIGITS.fullmatch, the total against max_body_size,
 * read_bytes(2) == b"\r\n" after data and after the last chunk).  Both must
 * give the same body bytes, the same error and message, the same
 * completion and the same number of bytes consumed.
 */
#include <stdint.h>

#include "common.h"

enum { R_INCOMPLETE, R_COMPLETE, R_400, R_UNSAT };

typedef struct {
    int status;
    const char *msg;
    size_t consumed; /* R_COMPLETE: end of the body */
    char *body;
    size_t body_len;
} ref_result;

static int
hexv(unsigned char c)
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

static ref_result
ref_chunked(const unsigned char *b, size_t n, unsigned long long max_body)
{
    ref_result r = {R_INCOMPLETE, NULL, 0, malloc(n + 1), 0};
    size_t pos = 0;
    unsigned long long total = 0;
    for (;;) {
        /* chunk_len_str = read_until(b"\r\n", max_bytes=64) */
        size_t loc = (size_t)-1;
        for (size_t i = pos; i + 1 < n; i++) {
            if (b[i] == '\r' && b[i + 1] == '\n') {
                loc = i;
                break;
            }
        }
        if (loc == (size_t)-1) {
            r.status = n - pos > 64 ? R_UNSAT : R_INCOMPLETE;
            return r;
        }
        if (loc + 2 - pos > 64) {
            r.status = R_UNSAT;
            return r;
        }
        /* parse_hex_int(chunk_len_str[:-2]) */
        if (loc == pos) {
            r.status = R_400;
            r.msg = "invalid chunk size";
            return r;
        }
        unsigned long long v = 0;
        for (size_t i = pos; i < loc; i++) {
            int h = hexv(b[i]);
            if (h < 0) {
                r.status = R_400;
                r.msg = "invalid chunk size";
                return r;
            }
            v = v > (~0ULL >> 4) ? ~0ULL : (v << 4) | (unsigned)h;
        }
        pos = loc + 2;
        if (v == 0) {
            if (n - pos < 2) {
                return r;
            }
            if (b[pos] != '\r' || b[pos + 1] != '\n') {
                r.status = R_400;
                r.msg = "improperly terminated chunked request";
                return r;
            }
            r.status = R_COMPLETE;
            r.consumed = pos + 2;
            return r;
        }
        total = total > ~0ULL - v ? ~0ULL : total + v;
        if (total > max_body) {
            r.status = R_400;
            r.msg = "chunked body too large";
            return r;
        }
        size_t take = (unsigned long long)(n - pos) < v ? n - pos : (size_t)v;
        memcpy(r.body + r.body_len, b + pos, take);
        r.body_len += take;
        pos += take;
        if (take < v || n - pos < 2) {
            return r;
        }
        if (b[pos] != '\r' || b[pos + 1] != '\n') {
            r.status = R_400;
            r.msg = "improperly terminated chunk";
            return r;
        }
        pos += 2;
    }
}

typedef struct {
    char *body;
    size_t body_len;
    int complete;
} obs;

static int
o_headers(tc_http_parser *p, const tc_http_head *h)
{
    (void)p;
    (void)h;
    return 0;
}

static int
o_body(tc_http_parser *p, const char *d, size_t n)
{
    obs *o = p->data;
    memcpy(o->body + o->body_len, d, n);
    o->body_len += n;
    return 0;
}

static int
o_complete(tc_http_parser *p)
{
    obs *o = p->data;
    o->complete = 1;
    return 1; /* pause: the next message is not ours */
}

static const tc_http_callbacks obs_cb = {
    .on_headers = o_headers,
    .on_body = o_body,
    .on_message_complete = o_complete,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char head[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    const size_t hl = sizeof(head) - 1;
    if (size < 1) {
        return 0;
    }
    unsigned long long max_body = (data[0] & 1) ? 100 : TC_HTTP_DEFAULT_MAX_BODY_SIZE;
    unsigned x = data[0] * 2654435761u + 7;
    const uint8_t *body = data + 1;
    size_t blen = size - 1;

    ref_result ref = ref_chunked(body, blen, max_body);

    char *all = malloc(hl + blen + 1);
    memcpy(all, head, hl);
    memcpy(all + hl, body, blen);
    size_t total = hl + blen;

    obs o = {malloc(blen + 1), 0, 0};
    tc_http_parser p;
    tc_http_parser_init(&p, &obs_cb);
    p.data = &o;
    p.max_body_size = max_body;
    size_t pos = 0;
    tc_http_status st = TC_HTTP_OK;
    while (pos < total || pos == 0) {
        x = x * 1103515245u + 12345u;
        size_t piece = 1 + (x >> 8) % 17;
        if (piece > total - pos) {
            piece = total - pos;
        }
        size_t used = 0;
        st = tc_http_parser_execute(&p, all + pos, piece, &used);
        pos += used;
        if (st != TC_HTTP_OK || pos >= total) {
            break;
        }
    }
    switch (ref.status) {
    case R_COMPLETE:
        if (!o.complete || st != TC_HTTP_PAUSED || pos != hl + ref.consumed) {
            abort();
        }
        break;
    case R_INCOMPLETE:
        if (o.complete || st != TC_HTTP_OK || pos != total) {
            abort();
        }
        break;
    case R_400:
        if (st != TC_HTTP_ERROR || p.error_kind != TC_HTTP_ERR_BAD_REQUEST ||
            strcmp(p.error_msg, ref.msg) != 0) {
            abort();
        }
        break;
    case R_UNSAT:
        if (st != TC_HTTP_ERROR || p.error_kind != TC_HTTP_ERR_UNSATISFIABLE ||
            strcmp(p.error_msg, "delimiter b'\\r\\n' not found within 64 bytes") != 0) {
            abort();
        }
        break;
    }
    if (o.body_len != ref.body_len || memcmp(o.body, ref.body, ref.body_len) != 0) {
        abort();
    }
    tc_http_parser_free(&p);
    free(o.body);
    free(ref.body);
    free(all);
    return 0;
}
