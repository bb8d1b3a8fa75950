/* tornado_c._core: one extension module, one folder per component.
 *
 * Multi-phase initialisation; every component registers its heap types and
 * functions from its tc_<component>_exec(), keeps its objects in its part of
 * the module state, and visits/clears them from traverse/clear below.
 */
#include "state.h"
#include "loop/loop.h"
#include "loop/transport.h"
#include "loop/udp.h"
#include "loop/tls.h"
#include "stream/stream.h"
#include "http/http.h"
#include "websocket/websocket.h"
#include "web/web.h"

#define TC_VERSION "0.1.0"

/* The memory of the module state: the pointers every file sees (state.h)
 * first, then each component's part, which they point to (see state.h). */
typedef struct {
    tc_state st;
    tc_loop_state loop;
    tc_loop_transport_state loop_transport; /* TCP/Unix transports, servers (loop component) */
    tc_loop_udp_state loop_udp;             /* datagram transports (loop component) */
    tc_loop_tls_state loop_tls;             /* TLS steady-state path (loop component) */
    tc_stream_state stream;
    tc_http_state http;
    tc_ws_state ws;
    tc_web_state web;
} core_state;

/* The state with its pointers set, or NULL before exec set them (the
 * garbage collector may traverse the module while exec imports). */
static tc_state *
core_state_of(PyObject *module)
{
    tc_state *st = tc_get_state(module);
    return st != NULL && st->loop != NULL ? st : NULL;
}

static int
core_exec(PyObject *module)
{
    core_state *cs = (core_state *)PyModule_GetState(module);
    tc_state *st = &cs->st;
    st->loop = &cs->loop;
    st->loop_transport = &cs->loop_transport;
    st->loop_udp = &cs->loop_udp;
    st->loop_tls = &cs->loop_tls;
    st->stream = &cs->stream;
    st->http = &cs->http;
    st->ws = &cs->ws;
    st->web = &cs->web;
    if (PyModule_AddStringConstant(module, "__version__", TC_VERSION) < 0) {
        return -1;
    }
    if (tc_loop_exec(module, st) < 0 || tc_loop_transport_exec(module, st) < 0 ||
        tc_loop_udp_exec(module, st) < 0 || tc_loop_tls_exec(module, st) < 0 ||
        tc_stream_exec(module, st) < 0 || tc_web_exec(module, st) < 0 ||
        tc_http_exec(module, st) < 0 || tc_ws_exec(module, st) < 0) {
        return -1;
    }
#ifdef TC_DEBUG
    if (PyModule_AddIntConstant(module, "DEBUG_BUILD", 1) < 0) {
        return -1;
    }
#else
    if (PyModule_AddIntConstant(module, "DEBUG_BUILD", 0) < 0) {
        return -1;
    }
#endif
    /* 1 in the test build (TORNADO_C_TEST=1): test-only entry points */
#ifdef TC_TEST_API
    if (PyModule_AddIntConstant(module, "TEST_API", 1) < 0) {
        return -1;
    }
#else
    if (PyModule_AddIntConstant(module, "TEST_API", 0) < 0) {
        return -1;
    }
#endif
    return 0;
}

static int
core_traverse(PyObject *module, visitproc visit, void *arg)
{
    tc_state *st = core_state_of(module);
    int r;
    if (st == NULL) {
        return 0;
    }
    if ((r = tc_loop_traverse(st, visit, arg)) != 0 ||
        (r = tc_loop_transport_traverse(st, visit, arg)) != 0 ||
        (r = tc_loop_udp_traverse(st, visit, arg)) != 0 ||
        (r = tc_loop_tls_traverse(st, visit, arg)) != 0 ||
        (r = tc_stream_traverse(st, visit, arg)) != 0 ||
        (r = tc_http_traverse(st, visit, arg)) != 0 ||
        (r = tc_ws_traverse(st, visit, arg)) != 0 ||
        (r = tc_web_traverse(st, visit, arg)) != 0) {
        return r;
    }
    return 0;
}

static int
core_clear(PyObject *module)
{
    tc_state *st = core_state_of(module);
    if (st == NULL) {
        return 0;
    }
    tc_ws_clear(st);
    tc_http_clear(st);
    tc_web_clear(st);
    tc_stream_clear(st);
    tc_loop_tls_clear(st);
    tc_loop_udp_clear(st);
    tc_loop_transport_clear(st);
    tc_loop_clear(st);
    return 0;
}

static void
core_free(void *module)
{
    core_clear((PyObject *)module);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
    {0, NULL},
};

static struct PyModuleDef core_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tornado_c._core",
    .m_doc = "C core of tornado_c: libuv loop, C IOStream, llhttp HTTP server, HTTPHeaders, WebSocket.",
    .m_size = sizeof(core_state),
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&core_def);
}
