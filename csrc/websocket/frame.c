/* Frame headers and UTF-8 validation (pure C; contract in frame.h). */
#include "websocket/frame.h"

#include <string.h>

int
tc_ws_parse(const uint8_t *buf, size_t len, unsigned flags, uint64_t frag_len,
            uint64_t max_size, tc_ws_frame *f, uint64_t *need)
{
    if (len < 2) {
        *need = 2;
        return TC_WS_NEED;
    }
    uint8_t first = buf[0];
    uint8_t opcode = first & TC_WS_OPCODE_MASK;
    uint8_t reserved = first & (TC_WS_RSV1 | TC_WS_RSV2 | TC_WS_RSV3);
    if ((flags & TC_WS_PARSE_RSV1_OK) && opcode != 0) {
        reserved &= (uint8_t)~TC_WS_RSV1;
    }
    if (reserved) {
        return TC_WS_ABORT;
    }
    uint8_t len7 = buf[1] & 0x7F;
    if ((opcode & 0x8) && len7 >= 126) {
        return TC_WS_ABORT;
    }
    size_t pos = 2;
    uint64_t length;
    if (len7 < 126) {
        length = len7;
    } else if (len7 == 126) {
        if (len < 4) {
            *need = 4;
            return TC_WS_NEED;
        }
        length = ((uint64_t)buf[2] << 8) | buf[3];
        pos = 4;
    } else {
        if (len < 10) {
            *need = 10;
            return TC_WS_NEED;
        }
        length = 0;
        for (int i = 0; i < 8; i++) {
            length = (length << 8) | buf[2 + i];
        }
        pos = 10;
    }
    /* upstream: new_len = payloadlen + len(fragment buffer) > max (Python
     * ints do not overflow; a sum past 2**64 is certainly too big) */
    if (length > max_size || frag_len > max_size - length) {
        return TC_WS_TOO_BIG;
    }
    f->first = first;
    f->masked = (buf[1] & 0x80) != 0;
    f->length = length;
    if (f->masked) {
        if (len < pos + 4) {
            *need = pos + 4;
            return TC_WS_NEED;
        }
        memcpy(f->mask, buf + pos, 4);
        pos += 4;
    }
    f->header_len = pos;
    /* length <= max_size; pos + length overflows only if max_size is near
     * 2**64, then the caller cannot have that many bytes anyway */
    uint64_t total = pos + length;
    if (total < length) {
        total = UINT64_MAX;
    }
    if ((uint64_t)len < total) {
        *need = total;
        return TC_WS_NEED;
    }
    return TC_WS_FRAME;
}

size_t
tc_ws_build_header(uint8_t *out, uint8_t first, uint64_t length, const uint8_t *mask)
{
    uint8_t mbit = mask != NULL ? 0x80 : 0;
    size_t pos;
    out[0] = first;
    if (length < 126) {
        out[1] = (uint8_t)(length | mbit);
        pos = 2;
    } else if (length <= 0xFFFF) {
        out[1] = (uint8_t)(126 | mbit);
        out[2] = (uint8_t)(length >> 8);
        out[3] = (uint8_t)length;
        pos = 4;
    } else {
        out[1] = (uint8_t)(127 | mbit);
        for (int i = 0; i < 8; i++) {
            out[2 + i] = (uint8_t)(length >> (56 - 8 * i));
        }
        pos = 10;
    }
    if (mask != NULL) {
        memcpy(out + pos, mask, 4);
        pos += 4;
    }
    return pos;
}

/* UTF-8 state: 0 between code points; otherwise
 *   bits 0-7   continuation bytes still expected (1..3)
 *   bits 8-15  lowest allowed value of the next byte
 *   bits 16-23 highest allowed value of the next byte
 * The bounds are 0x80..0xBF except for the byte after E0 (A0..BF: no
 * overlongs), ED (80..9F: no surrogates), F0 (90..BF) and F4 (80..8F: at most
 * U+10FFFF). */
#define U8_STATE(n, lo, hi) ((uint32_t)(n) | ((uint32_t)(lo) << 8) | ((uint32_t)(hi) << 16))

uint32_t
tc_ws_utf8_feed(uint32_t state, const uint8_t *p, size_t n, int *ascii)
{
    if (state == TC_WS_UTF8_BAD) {
        return state;
    }
    size_t i = 0;
    while (i < n) {
        if (state == 0) {
            /* ASCII fast path: 8 bytes at a time while none has bit 7 */
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ull) {
                    break;
                }
                i += 8;
            }
            if (i >= n) {
                break;
            }
            uint8_t c = p[i++];
            if (c < 0x80) {
                continue;
            }
            if (ascii != NULL) {
                *ascii = 0;
            }
            if (c >= 0xC2 && c <= 0xDF) {
                state = U8_STATE(1, 0x80, 0xBF);
            } else if (c == 0xE0) {
                state = U8_STATE(2, 0xA0, 0xBF);
            } else if (c == 0xED) {
                state = U8_STATE(2, 0x80, 0x9F);
            } else if (c >= 0xE1 && c <= 0xEF) {
                state = U8_STATE(2, 0x80, 0xBF);
            } else if (c == 0xF0) {
                state = U8_STATE(3, 0x90, 0xBF);
            } else if (c >= 0xF1 && c <= 0xF3) {
                state = U8_STATE(3, 0x80, 0xBF);
            } else if (c == 0xF4) {
                state = U8_STATE(3, 0x80, 0x8F);
            } else {
                return TC_WS_UTF8_BAD; /* 80..C1, F5..FF */
            }
        } else {
            uint8_t c = p[i++];
            uint32_t lo = (state >> 8) & 0xFF, hi = (state >> 16) & 0xFF;
            if (c < lo || c > hi) {
                return TC_WS_UTF8_BAD;
            }
            uint32_t left = (state & 0xFF) - 1;
            state = left ? U8_STATE(left, 0x80, 0xBF) : 0;
        }
    }
    return state;
}
