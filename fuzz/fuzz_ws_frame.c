/* libFuzzer target: the WebSocket frame parser and UTF-8 validator
 * (csrc/websocket/frame.c), with and without permessage-deflate's RSV1.
 *
 * Input: 2 option bytes, then a byte stream from the peer.
 *   opt[0] bit 0: compression negotiated (RSV1 allowed on data frames)
 *          bits 1-2: max_message_size (0, 125, 1024, 10 MiB)
 *   opt[1]: the stream is delivered in pieces of opt[1] + 1 bytes.
 * The stream is read as the protocol does: frames one after another, the
 * unfinished fragmented message's size counted against the limit.  Checked:
 *   - delivering it piece by piece gives the same sequence of verdicts and
 *     frames as parsing it all at once;
 *   - NEED asks for more than is there; FRAME fits in what is there;
 *   - a parsed frame rebuilt with tc_ws_build_header and re-parsed gives
 *     the same frame (payload unmasked with the reference mask below);
 *   - the UTF-8 verdict on each payload equals a reference decoder's, and
 *     does not depend on where the payload is split.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "websocket/frame.h"

/* the extension's mask.c needs Python; this is the same function, plain */
void
tc_ws_mask(const uint8_t mask[4], const uint8_t *src, uint8_t *dst, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        dst[i] = src[i] ^ mask[i & 3];
    }
}

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__);    \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* reference: decode code points one by one (RFC 3629) */
static int
ref_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = p[i];
        size_t k;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, c &= 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, c &= 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, c &= 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < k) { /* fewer than k continuation bytes left */
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) {
                return 0;
            }
            c = (c << 6) | (p[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
            return 0;
        }
        i += k + 1;
    }
    return 1;
}

typedef struct {
    int verdicts[64];
    uint64_t lengths[64];
    int n;
} trace;

static const uint64_t max_sizes[4] = {0, 125, 1024, 10 * 1024 * 1024};

/* Read frames from data[0..len) delivered `piece` bytes at a time. */
static void
run(const uint8_t *data, size_t len, unsigned flags, uint64_t max_size, size_t piece, trace *t)
{
    size_t have = 0, start = 0; /* bytes delivered; start of the current frame */
    uint64_t frag_len = 0;
    int fragmented = 0;
    t->n = 0;
    for (;;) {
        tc_ws_frame f;
        uint64_t need = 0;
        int r = tc_ws_parse(data + start, have - start, flags, fragmented ? frag_len : 0,
                            max_size, &f, &need);
        if (r == TC_WS_NEED) {
            CHECK(need > have - start);
            if (have == len) {
                break; /* EOF */
            }
            have = have + piece < len ? have + piece : len;
            continue;
        }
        if (t->n < 64) {
            t->verdicts[t->n] = r;
            t->lengths[t->n] = r == TC_WS_FRAME ? f.length : 0;
            t->n++;
        }
        if (r != TC_WS_FRAME) {
            break; /* abort / 1009 */
        }
        CHECK(f.header_len >= 2 && f.header_len <= TC_WS_MAX_HEADER);
        CHECK(f.header_len + f.length <= have - start);
        size_t n = (size_t)f.length;
        uint8_t *payload = malloc(n ? n : 1);
        CHECK(payload != NULL);
        const uint8_t *src = data + start + f.header_len;
        if (f.masked) {
            tc_ws_mask(f.mask, src, payload, n);
        } else {
            memcpy(payload, src, n);
        }
        /* rebuild and re-parse */
        uint8_t *again = malloc(TC_WS_MAX_HEADER + n + 1);
        CHECK(again != NULL);
        size_t hl = tc_ws_build_header(again, f.first, f.length, f.masked ? f.mask : NULL);
        memcpy(again + hl, src, n);
        tc_ws_frame g;
        uint64_t need2 = 0;
        int r2 = tc_ws_parse(again, hl + n, flags, fragmented ? frag_len : 0, max_size, &g, &need2);
        CHECK(r2 == TC_WS_FRAME);
        CHECK(g.first == f.first && g.length == f.length && g.masked == f.masked);
        CHECK(g.header_len == hl && (!f.masked || memcmp(g.mask, f.mask, 4) == 0));
        /* UTF-8: whole vs split */
        int ascii = 1;
        uint32_t whole = tc_ws_utf8_feed(0, payload, n, &ascii);
        int valid = whole == 0;
        CHECK(valid == ref_utf8_valid(payload, n));
        size_t cut = n ? (size_t)(payload[0] % (n + 1)) : 0;
        uint32_t st = tc_ws_utf8_feed(0, payload, cut, NULL);
        st = tc_ws_utf8_feed(st, payload + cut, n - cut, NULL);
        CHECK((st == 0) == valid);
        if (ascii) {
            for (size_t i = 0; i < n; i++) {
                CHECK(payload[i] < 0x80);
            }
        }
        free(again);
        free(payload);
        /* fragmentation bookkeeping as the protocol does it */
        uint8_t opcode = f.first & TC_WS_OPCODE_MASK;
        int fin = (f.first & TC_WS_FIN) != 0;
        if (!(opcode & 0x8)) {
            if (opcode == 0) {
                if (!fragmented) {
                    break; /* abort: nothing to continue */
                }
                frag_len += f.length;
                if (fin) {
                    fragmented = 0, frag_len = 0;
                }
            } else {
                if (fragmented) {
                    break; /* abort: new message inside a fragmented one */
                }
                if (!fin) {
                    fragmented = 1, frag_len = f.length;
                }
            }
        } else if (!fin) {
            break; /* abort: fragmented control frame */
        }
        start += f.header_len + n;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    unsigned flags = (data[0] & 1) ? TC_WS_PARSE_RSV1_OK : 0;
    uint64_t max_size = max_sizes[(data[0] >> 1) & 3];
    size_t piece = (size_t)data[1] + 1;
    const uint8_t *stream = data + 2;
    size_t len = size - 2;
    trace a, b;
    run(stream, len, flags, max_size, len ? len : 1, &a);
    run(stream, len, flags, max_size, piece, &b);
    CHECK(a.n == b.n);
    for (int i = 0; i < a.n; i++) {
        CHECK(a.verdicts[i] == b.verdicts[i] && a.lengths[i] == b.lengths[i]);
    }
    return 0;
}
