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

#include "loop/loop.h"
#include "loop/transport.h"
#include "loop/udp.h"
#include "loop/tls.h"
#include "stream/stream.h"
#include "http/http.h"
#include "websocket/websocket.h"

typedef struct tc_state {
    tc_loop_state loop;
    tc_loop_tcp_state loop_tcp;   /* TCP/Unix transports and servers (loop component) */
    tc_loop_udp_state loop_udp;   /* datagram transports (loop component) */
    tc_loop_tls_state loop_tls;   /* TLS steady-state path (loop component) */
    tc_stream_state stream;
    tc_http_state http;
    tc_ws_state ws;
} tc_state;

/* Borrowed: the state of the module object `module`. */
static inline tc_state *
tc_get_state(PyObject *module)
{
    return (tc_state *)PyModule_GetState(module);
}

/* Borrowed: the state of the module that defined `type` (a heap type of ours). */
tc_state *tc_state_from_type(PyTypeObject *type);

/* Borrowed: the state for `type`, a heap type of ours or a Python subclass of
 * one (the first type along tp_base that our module defined).  NULL with
 * TypeError("not a subclass of <what>") if there is none. */
tc_state *tc_state_from_subtype(PyTypeObject *type, const char *what);

/* New reference to `mod`.`attr` (imports the module), or NULL with an
 * exception set. */
PyObject *tc_import_attr(const char *mod, const char *attr);

/* Add a heap type built from `spec` to `module`; store a new reference in *out. */
int tc_add_type(PyObject *module, PyType_Spec *spec, PyObject *base,
                PyTypeObject **out);

#endif /* TC_STATE_H */
