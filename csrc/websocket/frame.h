/* Pure-C core of the websocket component: RFC 6455 frame headers as
 * tornado.websocket.WebSocketProtocol13 (6.6.1) reads and writes them, and a
 * UTF-8 validator.  No Python API in here (fuzz/fuzz_ws_frame.c builds it
 * alone, with its own byte-loop tc_ws_mask); the Python bindings are
 * frame_py.c.
 *
 * What the parser decides, in upstream's order (_receive_frame):
 *   1. first two bytes: reserved bits (RSV2, RSV3 always; RSV1 unless
 *      permessage-deflate was negotiated AND the opcode is not 0) -> ABORT;
 *      a control opcode (bit 3 set) with a 7-bit length >= 126 -> ABORT;
 *   2. the extended length (16 or 64 bit, any value, as upstream): the
 *      unfinished fragmented message's size plus this frame's payload
 *      above max_message_size -> TOO_BIG (upstream: close(1009, "message too
 *      big") then abort), decided before any payload is buffered;
 *   3. the mask and the payload: FRAME once the whole frame is there.
 * Each step needs only the bytes it looks at, so a partial frame gives the
 * same verdict upstream reaches after its read_bytes() calls for those
 * parts.  What upstream decides after the payload (a fragmented control
 * frame, a continuation with nothing to continue, a new data message inside
 * a fragmented one, unknown opcodes, UTF-8 of text messages) is left to the
 * caller, which reacts at the same point upstream does.
 */
#ifndef TC_WS_FRAME_H
#define TC_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define TC_WS_FIN 0x80
#define TC_WS_RSV1 0x40
#define TC_WS_RSV2 0x20
#define TC_WS_RSV3 0x10
#define TC_WS_OPCODE_MASK 0x0F
/* longest header: 2 + 8 (64-bit length) + 4 (mask) */
#define TC_WS_MAX_HEADER 14

enum {
    TC_WS_NEED = 0,    /* *need = bytes (from buf) the next step needs */
    TC_WS_FRAME = 1,   /* a whole frame: header in *f, payload follows it */
    TC_WS_ABORT = 2,   /* upstream aborts (no close frame) */
    TC_WS_TOO_BIG = 3, /* upstream sends close 1009 then aborts */
};

/* tc_ws_parse flags */
#define TC_WS_PARSE_RSV1_OK 1 /* permessage-deflate negotiated */

typedef struct tc_ws_frame {
    uint8_t first;      /* the first byte as sent: FIN | RSV | opcode */
    uint8_t masked;     /* 1 if a mask key follows the length */
    uint8_t mask[4];    /* valid when masked */
    size_t header_len;  /* 2..14 */
    uint64_t length;    /* payload length */
} tc_ws_frame;

/* Look at buf[0..len) (one frame starting at buf[0]).  frag_len: payload
 * bytes of the unfinished fragmented message (0 if none), max_size:
 * max_message_size.  Returns one of the TC_WS_* verdicts above; NEED sets
 * *need > len: the bytes (from buf[0]) the next step needs, at most
 * TC_WS_MAX_HEADER + max_size (capped at UINT64_MAX). */
int tc_ws_parse(const uint8_t *buf, size_t len, unsigned flags, uint64_t frag_len,
                uint64_t max_size, tc_ws_frame *f, uint64_t *need);

/* Write a frame header for `first` (FIN|RSV|opcode) and a payload of
 * `length` bytes into out (TC_WS_MAX_HEADER bytes room); mask NULL for an
 * unmasked frame.  Lengths are encoded as upstream: < 126 in 7 bits, <=
 * 0xFFFF in 16, else 64.  Returns the header length. */
size_t tc_ws_build_header(uint8_t *out, uint8_t first, uint64_t length, const uint8_t *mask);

/* Incremental UTF-8 validation (RFC 3629: no surrogates, no overlongs, at
 * most U+10FFFF -- exactly what bytes.decode("utf-8") accepts).  Start with
 * state 0; feed pieces in order (a code point may be split anywhere);
 * returns the new state, or TC_WS_UTF8_BAD once a byte is invalid (sticky:
 * feeding BAD returns BAD).  The whole text is valid iff the final state
 * is 0.  *ascii (may be NULL) is cleared when a byte >= 0x80 is seen. */
#define TC_WS_UTF8_BAD 0xFFFFFFFFu
uint32_t tc_ws_utf8_feed(uint32_t state, const uint8_t *p, size_t n, int *ascii);

/* dst[i] = src[i] ^ mask[i % 4] (mask.c; the fuzz target brings its own). */
void tc_ws_mask(const uint8_t mask[4], const uint8_t *src, uint8_t *dst, size_t len);

#endif /* TC_WS_FRAME_H */
