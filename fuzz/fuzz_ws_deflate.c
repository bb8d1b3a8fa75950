/* libFuzzer target: permessage-deflate (csrc/websocket/deflate.c) on the
 * decompressing path a peer controls, and round trips.
 *
 * Input: 2 option bytes, then the data.
 *   opt[0] bits 0-2: window bits 8 + n (inflate 8..15; deflate 9..15)
 *          bits 3-4: max_message_size (1, 100, 4096, 65536)
 *          bit 5:    context takeover (two messages on one stream)
 *          bits 6-7: compression level (1, 6, 9, 0) for the round trip
 *   opt[1]: where the data is cut into two messages (as a fraction).
 * Checked:
 *   - inflating the data as peer messages (tc_ws_inflate_msg: payload and
 *     tail fed as two pieces, output grown step by step) gives the same
 *     bytes, the same verdict (OK / TOO_BIG / zlib error code) as one
 *     inflate over one contiguous buffer payload + 00 00 ff ff with all of
 *     `max` as output space -- CPython's zlib decompress(data + tail, max)
 *     as upstream calls it; the output never passes max;
 *   - compressing the data (tc_ws_deflate_msg) and inflating it again gives
 *     the data back, TOO_BIG exactly when it is longer than max.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "websocket/deflate.h"

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__);    \
            abort();                                                          \
        }                                                                     \
    } while (0)

static const size_t max_sizes[4] = {1, 100, 4096, 65536};
static const int levels[4] = {1, 6, 9, 0};

/* The reference: one contiguous input, one output buffer of max bytes,
 * inflate(Z_SYNC_FLUSH) until the output is full or not filled. */
static int
ref_inflate(z_stream *z, const uint8_t *data, size_t len, size_t max, uint8_t *out,
            size_t *out_len)
{
    uint8_t *in = malloc(len + 4);
    CHECK(in != NULL);
    memcpy(in, data, len);
    memcpy(in + len, "\x00\x00\xff\xff", 4);
    z->next_in = in;
    z->avail_in = (uInt)(len + 4);
    size_t produced = 0;
    int err = Z_OK;
    for (;;) {
        if (produced == max) {
            break;
        }
        z->next_out = out + produced;
        z->avail_out = (uInt)(max - produced);
        err = inflate(z, Z_SYNC_FLUSH);
        produced = max - z->avail_out;
        if (err != Z_OK && err != Z_BUF_ERROR && err != Z_STREAM_END) {
            free(in);
            *out_len = produced;
            return 100 + err; /* an error, code kept */
        }
        if (err == Z_STREAM_END || z->avail_out != 0) {
            break;
        }
    }
    int verdict = (err != Z_STREAM_END && z->avail_in != 0) ? TC_WS_Z_TOO_BIG : TC_WS_Z_OK;
    free(in);
    *out_len = produced;
    return verdict;
}

static void
inflate_both(int wbits, int takeover, size_t max, const uint8_t *d, size_t n, size_t cut)
{
    z_stream a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    CHECK(inflateInit2(&a, -wbits) == Z_OK);
    CHECK(inflateInit2(&b, -wbits) == Z_OK);
    uint8_t *ref = malloc(max);
    CHECK(ref != NULL);
    const uint8_t *msg[2] = {d, d + cut};
    size_t len[2] = {cut, n - cut};
    for (int i = 0; i < (takeover ? 2 : 1); i++) {
        tc_ws_buf out = {0};
        int zerr = 0;
        int r = tc_ws_inflate_msg(&a, msg[i], len[i], max, &out, &zerr);
        CHECK(r != TC_WS_Z_NOMEM);
        CHECK(out.len <= max);
        size_t ref_len = 0;
        int rr = ref_inflate(&b, msg[i], len[i], max, ref, &ref_len);
        if (rr >= 50) {
            CHECK(r == TC_WS_Z_ERROR && zerr == rr - 100);
        } else {
            CHECK(r == rr);
            CHECK(out.len == ref_len && (ref_len == 0 || memcmp(out.p, ref, ref_len) == 0));
        }
        tc_ws_buf_free(&out);
        if (r != TC_WS_Z_OK) {
            break; /* the protocol closes the connection */
        }
    }
    free(ref);
    inflateEnd(&a);
    inflateEnd(&b);
}

static void
round_trip(int wbits, int level, size_t max, const uint8_t *d, size_t n)
{
    z_stream c, f;
    memset(&c, 0, sizeof(c));
    memset(&f, 0, sizeof(f));
    if (wbits < 9) {
        wbits = 9; /* zlib refuses a raw deflate window of 8 */
    }
    CHECK(deflateInit2(&c, level, Z_DEFLATED, -wbits, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    CHECK(inflateInit2(&f, -wbits) == Z_OK);
    tc_ws_buf comp = {0}, out = {0};
    int zerr = 0;
    CHECK(tc_ws_deflate_msg(&c, d, n, &comp, &zerr) == TC_WS_Z_OK);
    int r = tc_ws_inflate_msg(&f, comp.p, comp.len, 0, &out, &zerr);
    CHECK(r == TC_WS_Z_OK);
    CHECK(out.len == n && (n == 0 || memcmp(out.p, d, n) == 0));
    /* and once more bounded, on fresh streams */
    inflateEnd(&f);
    memset(&f, 0, sizeof(f));
    CHECK(inflateInit2(&f, -wbits) == Z_OK);
    out.len = 0;
    r = tc_ws_inflate_msg(&f, comp.p, comp.len, max, &out, &zerr);
    CHECK(r == (n > max ? TC_WS_Z_TOO_BIG : TC_WS_Z_OK));
    CHECK(out.len == (n > max ? max : n) && (out.len == 0 || memcmp(out.p, d, out.len) == 0));
    tc_ws_buf_free(&comp);
    tc_ws_buf_free(&out);
    deflateEnd(&c);
    inflateEnd(&f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    int wbits = 8 + (data[0] & 7);
    size_t max = max_sizes[(data[0] >> 3) & 3];
    int takeover = (data[0] >> 5) & 1;
    int level = levels[(data[0] >> 6) & 3];
    const uint8_t *d = data + 2;
    size_t n = size - 2;
    size_t cut = n * data[1] / 255;
    inflate_both(wbits, takeover, max, d, n, takeover ? cut : n);
    round_trip(wbits, level, max, d, n);
    return 0;
}
