/* The module state of tornado_c._core.
 *
 * Every heap type, interned string and imported callable the C code needs lives
 * here, never in a global.  Each component keeps its part in its own struct,
 * declared in the component's header (its contract) and embedded below, so
 * components can grow without touching one another.
 */
#ifndef TC_STATE_H
#define TC_STATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "common.h"
#include "loop/loop.h"
#include "loop/transport.h"
#include "stream/stream.h"
#include "http/http.h"
#include "websocket/websocket.h"

typedef struct tc_state {
    tc_loop_state loop;
    tc_loop_tcp_state loop_tcp;   /* TCP/Unix transports and servers (loop component) */
    tc_stream_state stream;
    tc_http_state http;
    tc_ws_state ws;
} tc_state;

#endif /* TC_STATE_H */
