/* WebSocket component: masking, frame parsing/building and UTF-8 checks in
 * C (frame.h: the pure-C part, fuzzed on its own); deflate stays on
 * upstream's Python zlib objects for now.
 *
 * Contract for the rest of the extension:
 *   tc_ws_mask(mask, src, dst, len): dst[i] = src[i] ^ mask[i % 4], any
 *       alignment, dst may equal src (in place).
 *   frame.h: tc_ws_parse, tc_ws_build_header, tc_ws_utf8_feed.
 *   reader.c: _ws_reader(stream, ...), a C consumer on the C IOStream that
 *       unmasks frames straight out of the stream's input (see its header).
 * Python: _core.websocket_mask[_into] (public, tornado_c.websocket) and the
 * private _ws_* functions of frame_py.c used by tornado_c/websocket.py.
 */
#ifndef TC_WEBSOCKET_H
#define TC_WEBSOCKET_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "websocket/frame.h"

struct tc_state;

typedef struct tc_ws_state {
    PyTypeObject *Reader_type; /* tornado_c._core.WSReader (reader.c), strong */
} tc_ws_state;

/* tc_ws_mask: declared in frame.h (defined in mask.c) */
/* frame_py.c: adds the _ws_* functions; called by tc_ws_exec */
int tc_ws_frame_exec(PyObject *module);
/* reader.c: the WSReader type and _ws_reader(); called by tc_ws_exec */
int tc_ws_reader_exec(PyObject *module, struct tc_state *st);

int tc_ws_exec(PyObject *module, struct tc_state *st);
int tc_ws_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_ws_clear(struct tc_state *st);

#endif /* TC_WEBSOCKET_H */
