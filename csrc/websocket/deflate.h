/* permessage-deflate (RFC 7692) on the system's zlib: the pure-C part, as
 * tornado.websocket's _PerMessageDeflateCompressor/Decompressor (6.6.1) use
 * Python's zlib objects, call for call, so that the bytes on the wire and
 * the verdicts are the same.  No Python API in here (fuzz/fuzz_ws_deflate.c
 * builds it alone); the Python objects are deflate_py.c.
 *
 * Compressing one message (upstream: compressobj.compress(data) +
 * flush(Z_SYNC_FLUSH), minus the 00 00 ff ff tail): deflate(Z_NO_FLUSH)
 * until all input is taken, then deflate(Z_SYNC_FLUSH) until the output is
 * not full.  For levels 1..9 zlib's output does not depend on how the
 * output space is handed out, so the bytes equal upstream's; level 0
 * (stored blocks) sizes its blocks by the space it is given and may split
 * them differently from CPython's buffer growth (same data after inflate).
 *
 * Decompressing one message (upstream: decompressobj.decompress(data +
 * b"\x00\x00\xff\xff", max_message_size), too big if unconsumed_tail):
 * inflate(Z_SYNC_FLUSH) over the payload and then the 4-byte tail (fed as
 * a second piece, without joining: inflate resumes at any input boundary),
 * output never past `max` bytes (0: no limit, as zlib's max_length=0).  It
 * stops as CPython's loop does: when the output reached `max` (inflate is
 * not called again), when inflate returns with output space left (input
 * all taken or no progress), or at the end of a final block (Z_STREAM_END:
 * the rest is CPython's unused_data, not an error).  TOO_BIG iff input is
 * left over when it stopped for the limit.  So a zip bomb costs at most
 * `max` bytes of output, never more.
 */
#ifndef TC_WS_DEFLATE_H
#define TC_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/* A growable byte buffer (malloc/realloc/free). */
typedef struct tc_ws_buf {
    uint8_t *p;
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
} tc_ws_buf;

/* Make room for `extra` more bytes after len: 0, or -1 (out of memory, buf
 * unchanged). */
int tc_ws_buf_reserve(tc_ws_buf *b, size_t extra);
void tc_ws_buf_free(tc_ws_buf *b);

enum {
    TC_WS_Z_OK = 0,
    TC_WS_Z_TOO_BIG = 1,  /* decompressed size passes max */
    TC_WS_Z_NOMEM = -1,   /* a tc_ws_buf could not grow */
    TC_WS_Z_ERROR = -2,   /* zlib said no: *zerr holds its code, z->msg why */
};

/* Compress `len` bytes of one message with the initialised deflate stream
 * z, appending the compressed payload (without the 00 00 ff ff tail) to
 * out.  TC_WS_Z_OK, NOMEM or ERROR (*zerr set). */
int tc_ws_deflate_msg(z_stream *z, const uint8_t *data, size_t len, tc_ws_buf *out, int *zerr);

/* Decompress one message's payload with the initialised raw inflate stream
 * z, appending the output to out (at most max bytes; 0 = no limit).
 * TC_WS_Z_OK, TOO_BIG, NOMEM or ERROR (*zerr set: Z_DATA_ERROR...). */
int tc_ws_inflate_msg(z_stream *z, const uint8_t *data, size_t len, size_t max, tc_ws_buf *out,
                      int *zerr);

#endif /* TC_WS_DEFLATE_H */
