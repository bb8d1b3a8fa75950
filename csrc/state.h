/* The module state of tornado_c._core.
 *
 * Every heap type, interned string and imported callable the C code needs
 * lives here, never in a global.  Each component declares its part (a
 * struct tc_<component>_state) in its own header, its contract; this header
 * includes none of them.  The module state is one pointer per component,
 * to that component's part:
 *
 *   - a file sees only the contracts it includes: the pointer of a
 *     component it does not include is an incomplete type to it, so it
 *     cannot reach into that component's state (mask.c sees no libuv, the
 *     stream no transport internals);
 *   - the parts themselves live in the same block of memory as this
 *     struct (module.c lays them out behind it and sets the pointers
 *     first thing in exec), so they live exactly as long as the module
 *     state: an object whose type holds the module may keep a borrowed
 *     pointer to its component's part;
 *   - hot paths do not pay for the indirection: an object whose hot path
 *     reads its component's part keeps a borrowed pointer to it (the loop's
 *     ls, the transports' and servers' ts, the HTTP connection's hs), so
 *     reading a name or a type is one load from the object, as it was with
 *     the parts embedded by value; the loop's part is reached through the
 *     loop (tc_loop_read_buffer(), the future helpers).  The rest -- code
 *     that starts from the module or a type (tp_new, module functions), and
 *     the IOStream, whose per-read and per-write paths do not read its own
 *     part (errors, setup and scheduling do) -- goes through these
 *     pointers.
 *
 * Included by module.c (which owns the layout) and by any file that finds
 * its component's part from the module or a type; such a file includes the
 * headers of the parts it uses.
 */
#ifndef TC_STATE_H
#define TC_STATE_H

#include "common.h"

typedef struct tc_state {
    struct tc_loop_state *loop;                     /* loop/loop.h */
    struct tc_loop_transport_state *loop_transport; /* loop/transport.h, private to csrc/loop/ */
    struct tc_loop_udp_state *loop_udp;             /* loop/udp.h, private to csrc/loop/ */
    struct tc_loop_tls_state *loop_tls;             /* loop/tls.h, private to csrc/loop/ */
    struct tc_stream_state *stream;                 /* stream/stream.h */
    struct tc_http_state *http;                     /* http/http.h */
    struct tc_ws_state *ws;                         /* websocket/websocket.h */
    struct tc_web_state *web;                       /* web/web.h */
} tc_state;

#endif /* TC_STATE_H */
