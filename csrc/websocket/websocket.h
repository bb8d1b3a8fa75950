/* WebSocket component: masking, frame parsing/building and UTF-8 checks in
 * C (frame.h: the pure-C part, fuzzed on its own); permessage-deflate on the
 * system's zlib (deflate.h: pure C, fuzzed; deflate_py.c: the Python
 * objects tornado_c/websocket.py puts in place of upstream's
 * _PerMessageDeflate{Compressor,Decompressor}).
 *
 * Contract for the rest of the extension:
 *   tc_ws_mask(mask, src, dst, len): dst[i] = src[i] ^ mask[i % 4], any
 *       alignment, dst may equal src (in place).
 *   frame.h: tc_ws_parse, tc_ws_build_header, tc_ws_utf8_feed.
 *   reader.c: _ws_reader(stream, ...), a C consumer on the C IOStream that
 *       unmasks frames straight out of the stream's input (see its header).
 *   deflate.h: tc_ws_deflate_msg, tc_ws_inflate_msg.
 * Python: _core.websocket_mask[_into] (public, tornado_c.websocket) and the
 * private _ws_* functions of frame_py.c used by tornado_c/websocket.py.
 */
#ifndef TC_WEBSOCKET_H
#define TC_WEBSOCKET_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "websocket/deflate.h"
#include "websocket/frame.h"

struct tc_state;

typedef struct tc_ws_state {
    PyTypeObject *Reader_type; /* tornado_c._core.WSReader (reader.c), strong */
    /* deflate_py.c: the (de)compressor types (strong) */
    PyTypeObject *Deflater_type, *Inflater_type;
    /* one buffer the (de)compressors of every connection share: output
     * goes here, then into the bytes/str object (the GIL serialises them;
     * nothing calls back into Python while it is in use).  Freed after a
     * message that grew it past TC_WS_SCRATCH_KEEP. */
    tc_ws_buf scratch;
    /* frame_py.c, broadcast: the last unmasked message built by
     * _ws_build_message -- the message object (exact str or bytes,
     * immutable), its binary flag, and the (frame, payload_len) result,
     * both strong -- so writing the same object to N connections builds
     * its frame once.  Holding the message keeps its identity from being
     * reused.  Only frames up to TC_WS_BROADCAST_MAX bytes are kept. */
    PyObject *bc_msg, *bc_result;
    int bc_binary;
} tc_ws_state;

#define TC_WS_SCRATCH_KEEP (1u << 20)
#define TC_WS_BROADCAST_MAX (1u << 20)

/* tc_ws_mask: declared in frame.h (defined in mask.c) */
/* frame_py.c: adds the _ws_* functions; called by tc_ws_exec */
int tc_ws_frame_exec(PyObject *module);
/* reader.c: the WSReader type and _ws_reader(); called by tc_ws_exec */
int tc_ws_reader_exec(PyObject *module, struct tc_state *st);
/* deflate_py.c: adds the (de)compressor types and factories */
int tc_ws_deflate_exec(PyObject *module, struct tc_state *st);
void tc_ws_deflate_clear(struct tc_state *st);

/* frame_py.c: a str from n bytes of UTF-8 (checked in C, ASCII copied);
 * new reference, Py_None (new reference) if not valid UTF-8, NULL with an
 * exception set on memory errors. */
PyObject *tc_ws_decode_utf8(const uint8_t *p, size_t n);
/* frame_py.c: the (message, binary, mask) arguments of _ws_build_message
 * and Deflater.frame: message a str (its UTF-8) or bytes; 0, or -1 with an
 * exception set.  *data is borrowed from args[0]. */
int tc_ws_message_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, int *binary,
                       int *mask, const char **data, Py_ssize_t *len);
/* frame_py.c: a fresh mask key from getrandom(): 0, or -1 with OSError set. */
int tc_ws_random_key(uint8_t key[4]);

int tc_ws_exec(PyObject *module, struct tc_state *st);
int tc_ws_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_ws_clear(struct tc_state *st);

#endif /* TC_WEBSOCKET_H */
