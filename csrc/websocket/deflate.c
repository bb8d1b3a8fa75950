/* permessage-deflate on zlib (pure C; contract and the reasons for each
 * loop in deflate.h). */
#include "websocket/deflate.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* zlib counts in uInt: hand it at most this much at a time */
#define Z_CHUNK_MAX ((size_t)UINT_MAX)

int
tc_ws_buf_reserve(tc_ws_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) {
        return 0;
    }
    if (extra > SIZE_MAX - b->len) {
        return -1;
    }
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want) {
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL) {
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void
tc_ws_buf_free(tc_ws_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Point z's output at the free space of out (at most Z_CHUNK_MAX). */
static void
out_space(z_stream *z, tc_ws_buf *out)
{
    size_t room = out->cap - out->len;
    z->next_out = out->p + out->len;
    z->avail_out = (uInt)(room > Z_CHUNK_MAX ? Z_CHUNK_MAX : room);
}

/* Account for what the last zlib call wrote after out_space(). */
static void
out_took(z_stream *z, tc_ws_buf *out)
{
    out->len = (size_t)(z->next_out - out->p);
}

int
tc_ws_deflate_msg(z_stream *z, const uint8_t *data, size_t len, tc_ws_buf *out, int *zerr)
{
    int err;
    size_t left = len;
    /* deflateBound is for one Z_FINISH call; the sync flush adds a few
     * bytes, and the loops below grow the buffer if that is not enough */
    if (tc_ws_buf_reserve(out, (size_t)deflateBound(z, (uLong)(len > ULONG_MAX - 64 ? 0 : len)) + 16) < 0) {
        return TC_WS_Z_NOMEM;
    }
    z->next_in = (Bytef *)data;
    /* compressobj.compress(data): Z_NO_FLUSH until the input is taken */
    do {
        size_t piece = left > Z_CHUNK_MAX ? Z_CHUNK_MAX : left;
        z->avail_in = (uInt)piece;
        left -= piece;
        do {
            if (out->cap == out->len && tc_ws_buf_reserve(out, out->cap / 2 + 64) < 0) {
                return TC_WS_Z_NOMEM;
            }
            out_space(z, out);
            err = deflate(z, Z_NO_FLUSH);
            out_took(z, out);
            if (err == Z_STREAM_ERROR) {
                *zerr = err;
                return TC_WS_Z_ERROR;
            }
        } while (z->avail_out == 0);
    } while (left != 0);
    /* .flush(Z_SYNC_FLUSH): until the output is not full */
    do {
        if (out->cap == out->len && tc_ws_buf_reserve(out, out->cap / 2 + 64) < 0) {
            return TC_WS_Z_NOMEM;
        }
        out_space(z, out);
        err = deflate(z, Z_SYNC_FLUSH);
        out_took(z, out);
        if (err != Z_OK && err != Z_BUF_ERROR) {
            *zerr = err;
            return TC_WS_Z_ERROR;
        }
    } while (z->avail_out == 0);
    /* a sync flush ends with an empty stored block: 00 00 ff ff, which
     * permessage-deflate leaves out (upstream asserts it is there) */
    if (out->len < 4 || memcmp(out->p + out->len - 4, "\x00\x00\xff\xff", 4) != 0) {
        *zerr = Z_STREAM_ERROR;
        return TC_WS_Z_ERROR;
    }
    out->len -= 4;
    return TC_WS_Z_OK;
}

static const uint8_t sync_tail[4] = {0x00, 0x00, 0xff, 0xff};

int
tc_ws_inflate_msg(z_stream *z, const uint8_t *data, size_t len, size_t max, tc_ws_buf *out,
                  int *zerr)
{
    size_t start = out->len;
    size_t in_left = len; /* of the current piece, not yet given to zlib */
    int tail_fed = 0, err = Z_OK;
    z->next_in = (Bytef *)data;
    z->avail_in = 0;
    for (;;) {
        /* Hand zlib more input: the rest of the payload, then the tail.
         * `fed`: the previous inflate() ran out of a piece -- for CPython,
         * whose input is one buffer, that call has not returned yet. */
        int fed = 0;
        if (z->avail_in == 0 && (in_left != 0 || !tail_fed)) {
            if (in_left == 0) {
                tail_fed = 1;
                in_left = sizeof(sync_tail);
                z->next_in = (Bytef *)sync_tail;
            }
            size_t piece = in_left > Z_CHUNK_MAX ? Z_CHUNK_MAX : in_left;
            z->avail_in = (uInt)piece;
            in_left -= piece;
            fed = 1;
        }
        size_t produced = out->len - start;
        int at_max = max != 0 && produced >= max;
        if (at_max && !fed) {
            break; /* the limit: CPython stops without calling inflate */
        }
        if (!at_max && out->cap == out->len) {
            size_t grow = produced < 16384 ? 16384 : produced; /* double */
            if (max != 0 && grow > max - produced) {
                grow = max - produced;
            }
            if (tc_ws_buf_reserve(out, grow) < 0) {
                return TC_WS_Z_NOMEM;
            }
        }
        size_t room = at_max ? 0 : out->cap - out->len;
        if (max != 0 && room > max - produced) {
            room = max - produced;
        }
        z->next_out = out->p + out->len; /* p != NULL: max == 0 or produced > 0 or it grew */
        z->avail_out = (uInt)(room > Z_CHUNK_MAX ? Z_CHUNK_MAX : room);
        uInt given = z->avail_out;
        err = inflate(z, Z_SYNC_FLUSH);
        out->len += given - z->avail_out;
        if (err != Z_OK && err != Z_BUF_ERROR && err != Z_STREAM_END) {
            *zerr = err;
            return TC_WS_Z_ERROR;
        }
        if (err == Z_STREAM_END) {
            break; /* the rest is unused_data for CPython: no verdict */
        }
        if (z->avail_in == 0 && (in_left != 0 || !tail_fed)) {
            continue; /* the same CPython call goes on with the next piece */
        }
        if (z->avail_out != 0) {
            break; /* input taken (or no progress possible) */
        }
        /* the output space was filled: more room, or the limit (top) */
    }
    if (err != Z_STREAM_END && (z->avail_in != 0 || in_left != 0 || !tail_fed)) {
        return TC_WS_Z_TOO_BIG; /* CPython's unconsumed_tail is not empty */
    }
    return TC_WS_Z_OK;
}
