/* http component: HTTPServerConnection's Python face.  The type and what
 * makes it: HTTPServerConnection(server, fd, address, ...) (its arguments,
 * the C IOStream on the accepted fd, the parser, timeouts and strict mode
 * set up, the first head wait started), close(), the context / closed
 * attributes, GC support and dealloc; and the http state's server part:
 * the one-time import of Tornado's objects (tc_http_import_tornado, used by
 * the client too) and tc_http_server_exec / _traverse / _clear.
 *
 * The connection's state machine -- the stream consumer, the parser glue,
 * the delegate calls, the timers, the request loop, the close -- is
 * server.c, including the methods the loop calls back (_body_timer,
 * _awaited, _closed, _process); what the two share is declared in
 * http/internal.h.
 */
#include "http/internal.h"

#include <structmember.h>

/* ------------------------------------------------ HTTPServerConnection */

/* Import Tornado's objects the server uses, once, when the first connection
 * is made.  By then tornado_c.httpserver (whose HTTPServer makes the
 * connections) has imported their modules, so this only looks them up.
 * Not at exec: that would make `import tornado_c` import tornado.httpserver
 * and everything it imports, also for programs that only use the loop.
 * 0, or -1 with an exception set (what was imported stays; a later call
 * imports the rest). */
static int
import_into(PyObject **field, const char *module, const char *name)
{
    if (*field == NULL && (*field = tc_import_attr(module, name)) == NULL) {
        return -1;
    }
    return 0;
}

TC_INTERNAL int
tc_http_import_tornado(tc_http_state *hs)
{
    if (hs->tornado_imported) {
        return 0;
    }
    if (import_into(&hs->RequestStartLine, "tornado.httputil", "RequestStartLine") < 0 ||
        import_into(&hs->HTTPHeaders, "tornado.httputil", "HTTPHeaders") < 0 ||
        import_into(&hs->HTTPInputError, "tornado.httputil", "HTTPInputError") < 0 ||
        import_into(&hs->HTTPOutputError, "tornado.httputil", "HTTPOutputError") < 0 ||
        import_into(&hs->StreamClosedError, "tornado.iostream", "StreamClosedError") < 0 ||
        import_into(&hs->RequestContext, "tornado.httpserver", "_HTTPRequestContext") < 0 ||
        import_into(&hs->GzipDelegate, "tornado.http1connection", "_GzipMessageDelegate") < 0 ||
        import_into(&hs->convert_yielded, "tornado.gen", "convert_yielded") < 0 ||
        /* tornado.log's loggers, records located at upstream's call for the
         * same message (tornado_c/_httplog.py) */
        import_into(&hs->app_log, "tornado_c._httplog", "app_log") < 0 ||
        import_into(&hs->gen_log, "tornado_c._httplog", "gen_log") < 0) {
        return -1;
    }
    if (hs->s_new == NULL && (hs->s_new = PyUnicode_InternFromString("__new__")) == NULL) {
        return -1;
    }
    if (hs->rsl_new == NULL && PyType_Check(hs->RequestStartLine) &&
        PyType_IsSubtype((PyTypeObject *)hs->RequestStartLine, &PyTuple_Type)) {
        /* namedtuple's __new__ (a staticmethod of a function compiled from
         * "<string>") is tuple.__new__(cls, (method, path, version)): only
         * that one is skipped at each request */
        PyObject *f = PyDict_GetItemWithError(((PyTypeObject *)hs->RequestStartLine)->tp_dict,
                                              hs->s_new); /* borrowed */
        PyObject *fn = f != NULL && PyObject_TypeCheck(f, &PyStaticMethod_Type)
                           ? PyObject_GetAttrString(f, "__func__")
                           : Py_XNewRef(f);
        PyObject *code = fn != NULL && PyFunction_Check(fn) ? PyFunction_GET_CODE(fn) : NULL;
        Py_XDECREF(fn); /* the class's staticmethod keeps it alive */
        if (code != NULL && PyUnicode_Check(((PyCodeObject *)code)->co_filename) &&
            PyUnicode_CompareWithASCIIString(((PyCodeObject *)code)->co_filename, "<string>") == 0 &&
            ((PyCodeObject *)code)->co_argcount == 4) {
            hs->rsl_new = Py_NewRef(f);
        }
        if (PyErr_Occurred()) {
            return -1;
        }
    }
    if (!PyType_Check(hs->HTTPHeaders)) {
        /* tc_http_build_headers() creates instances through its tp_new */
        PyErr_SetString(PyExc_TypeError, "tornado.httputil.HTTPHeaders must be a type");
        return -1;
    }
    hs->tornado_imported = 1;
    return 0;
}

/* What one connection is served with: HTTPServerConnection's arguments
 * (tornado_c/httpserver.py passes the server's HTTP1ConnectionParameters
 * and TCPServer settings).  Every object is borrowed from the call. */
typedef struct {
    PyObject *server;             /* the HTTPServer (start_request, on_close) */
    int fd;                       /* the accepted socket */
    PyObject *address;            /* the peer's address */
    PyObject *protocol;           /* HTTPServer.protocol */
    PyObject *trusted_downstream; /* HTTPServer.trusted_downstream */
    PyObject *loop;               /* the running loop: a tornado_c loop */
    Py_ssize_t max_header_size;   /* > 0 */
    uint64_t max_body_size;       /* tc_http_max_body_from() */
    int max_body_negative;
    PyObject *max_body_obj;       /* borrowed: the int given */
    Py_ssize_t chunk_size;        /* > 0 */
    PyObject *header_timeout;     /* None or seconds (the idle timeout) */
    PyObject *body_timeout;       /* None or seconds */
    int decompress;
    int no_keep_alive;
    Py_ssize_t max_buffer_size;   /* <= 0: upstream's default */
    Py_ssize_t read_chunk_size;   /* <= 0: upstream's default */
    int strict;                   /* strict mode (optional, default off) */
    PyObject *stream;             /* optional: a made, unconsumed stream to
                                   * serve instead of one made on fd (a TLS
                                   * stream); NULL or None: none */
} conn_params;

/* HTTPServerConnection(server, fd, address, *, protocol, trusted_downstream,
 *     loop, max_header_size, max_body_size, chunk_size, header_timeout,
 *     body_timeout, decompress, no_keep_alive, max_buffer_size,
 *     read_chunk_size, strict=False, stream=None): every argument but
 *     strict and stream is required.  stream: a tornado_c stream on fd,
 *     open and with no consumer (the TLS stream tornado_c/httpserver.py
 *     makes for ssl_options), served instead of a new one made on fd;
 *     max_buffer_size is then the stream's own. */
static int
parse_conn_params(PyObject *args, PyObject *kwds, conn_params *p)
{
    static char *kwlist[] = {
        "server", "fd", "address", "protocol", "trusted_downstream", "loop",
        "max_header_size", "max_body_size", "chunk_size", "header_timeout",
        "body_timeout", "decompress", "no_keep_alive", "max_buffer_size",
        "read_chunk_size", "strict", "stream", NULL,
    };
    p->strict = 0;
    p->stream = NULL;
    if (PyTuple_GET_SIZE(args) > 3) {
        PyErr_SetString(PyExc_TypeError,
                        "HTTPServerConnection() takes 3 positional arguments (server, fd, "
                        "address); the others are keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "OiOOOOnOnOOppnn|pO:HTTPServerConnection", kwlist, &p->server, &p->fd,
            &p->address, &p->protocol, &p->trusted_downstream, &p->loop, &p->max_header_size,
            &p->max_body_obj, &p->chunk_size, &p->header_timeout, &p->body_timeout,
            &p->decompress, &p->no_keep_alive, &p->max_buffer_size, &p->read_chunk_size,
            &p->strict, &p->stream)) {
        return -1;
    }
    return tc_http_max_body_from(p->max_body_obj, &p->max_body_size, &p->max_body_negative);
}

/* Serves the accepted socket p.fd (owned from here on, unless this
 * raises) or the stream p.stream on it (closed if this raises after
 * taking it); arguments: parse_conn_params(). */
static PyObject *
sc_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    tc_state *st = tc_state_from_type(type);
    tc_http_state *hs;
    conn_params p;
    PyObject *loop;
    if (st == NULL) {
        return NULL;
    }
    hs = st->http;
    if (parse_conn_params(args, kwds, &p) < 0 || tc_http_import_tornado(hs) < 0) {
        return NULL;
    }
    loop = p.loop;
    /* the C server runs only on a tornado_c loop (HTTPServer falls back to
     * upstream's Python path on any other): its timers use the loop's C API */
    if (!tc_loop_check(st, loop) || ((tc_loop *)loop)->uv == NULL) {
        PyErr_SetString(PyExc_TypeError, "needs an open tornado_c loop");
        return NULL;
    }
    if (p.stream == Py_None) {
        p.stream = NULL;
    }
    if (p.stream != NULL &&
        (!tc_stream_check(st, p.stream) || tc_stream_closed((tc_stream *)p.stream) ||
         tc_stream_loop((tc_stream *)p.stream) != (tc_loop *)loop ||
         !tc_stream_consumer_is((tc_stream *)p.stream, NULL, NULL))) {
        PyErr_SetString(PyExc_ValueError,
                        "stream must be an open tornado_c stream on the loop, with no consumer");
        return NULL;
    }
    if (p.chunk_size <= 0 || p.max_header_size <= 0) {
        PyErr_SetString(PyExc_ValueError, "sizes must be positive");
        return NULL;
    }
    double idle = -1, body = -1;
    if (p.header_timeout != Py_None &&
        (idle = PyFloat_AsDouble(p.header_timeout)) == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (p.body_timeout != Py_None &&
        (body = PyFloat_AsDouble(p.body_timeout)) == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    sconn *sc = (sconn *)type->tp_alloc(type, 0);
    if (sc == NULL) {
        return NULL;
    }
    sc->hs = hs;
    Py_INCREF(loop);
    sc->loop = (tc_loop *)loop;
    Py_INCREF(p.server);
    sc->server = p.server;
    tc_http_parser_init(&sc->parser, &tc_http_sc_callbacks);
    sc->parser.data = sc;
    sc->parser.max_header_size = (size_t)p.max_header_size;
    sc->parser.max_body_size = p.max_body_size;
    sc->parser.max_body_negative = p.max_body_negative;
    sc->default_max_negative = (char)p.max_body_negative;
    sc->parser.no_keep_alive = p.no_keep_alive;
    if (p.strict) {
        sc->strict = malloc(sizeof(*sc->strict));
        if (sc->strict == NULL) {
            Py_DECREF(sc);
            PyErr_NoMemory();
            return NULL;
        }
        tc_http_judge_init(&sc->strict->judge, NULL);
        sc->strict->heads = 0;
    }
    sc->default_max_body = sc->parser.max_body_size;
    sc->chunk_size = (size_t)p.chunk_size;
    sc->idle_timeout = idle;
    sc->body_timeout = body;
    sc->decompress = p.decompress;
    /* Reads are not limited to read_chunk_size (TCPServer passes chunk_size
     * there) while the server consumes the input: the body is handed to the
     * delegate in chunk_size pieces anyway, and upstream's IOStream reads
     * ahead of what a read asks for.  A detached stream gets it back. */
    sc->read_chunk_size = p.read_chunk_size;
    if (p.stream != NULL) {
        Py_INCREF(p.stream);
        sc->stream = (tc_stream *)p.stream;
    }
    else {
        sc->stream = tc_stream_from_fd(st, (tc_loop *)loop, p.fd, NULL, p.max_buffer_size, 0);
    }
    if (sc->stream == NULL) {
        sc->closed = sc->close_notified = sc->close_scheduled = 1;
        Py_DECREF(sc);
        return NULL;   /* the fd is still the caller's */
    }
    /* from here on the fd is the stream's */
    sc->context = tc_http_new_context(hs, (PyObject *)sc->stream, p.fd, p.address, p.protocol,
                                      p.trusted_downstream);
    PyObject *r = sc->context ? PyObject_CallMethod((PyObject *)sc->stream, "set_nodelay", "O", Py_True) : NULL;
    if (r == NULL) {
        sc->close_notified = sc->close_scheduled = 1;
        sc->closed = 1;
        tc_stream_close(sc->stream, NULL);
        Py_DECREF(sc);
        return NULL;
    }
    Py_DECREF(r);
    tc_stream_set_consumer(sc->stream, &tc_http_sc_consumer, sc);
    tc_stream_set_cork(sc->stream, 1); /* responses go out once per iteration */
    /* While serving, the connection keeps itself alive (the stream does not
     * own its consumer, and the server may be dropped after stop(), as
     * upstream's connections go on through their loop callbacks); dropped
     * in _closed(). */
    Py_INCREF(sc);
    sc->serving = 1;
    tc_http_sc_start_head_wait(sc);
    if (PyErr_Occurred()) {
        tc_http_sc_close(sc);
        Py_DECREF(sc);
        return NULL;
    }
    return (PyObject *)sc;
}

/* close(): closes the connection; returns a future done once serving ended
 * (upstream's awaitable HTTP1ServerConnection.close()). */
static PyObject *
sc_close_meth(sconn *sc, PyObject *Py_UNUSED(ignored))
{
    if (sc->closed_future == NULL) {
        sc->closed_future = tc_loop_create_future(sc->loop);
        if (sc->closed_future == NULL) {
            return NULL;
        }
        if (sc->close_notified && tc_http_sc_future_set_none(sc, sc->closed_future) < 0) {
            return NULL;
        }
    }
    if (!sc->closed && !sc->detached) {
        tc_http_sc_close(sc);
    } else if (sc->detached && !sc->close_notified) {
        /* nothing to wait for */
    }
    Py_INCREF(sc->closed_future);
    return sc->closed_future;
}

static PyObject *
sc_get_context(sconn *sc, void *Py_UNUSED(closure))
{
    Py_INCREF(sc->context);
    return sc->context;
}

static PyObject *
sc_get_closed(sconn *sc, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(sc->closed || sc->detached);
}

static int
sc_traverse(sconn *sc, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(sc));
    Py_VISIT(sc->loop);
    Py_VISIT(sc->server);
    Py_VISIT(sc->context);
    Py_VISIT(sc->closed_future);
    Py_VISIT(sc->idle);
    Py_VISIT(sc->body_timer);
    Py_VISIT(sc->write_futures);
    Py_VISIT(sc->req);
    Py_VISIT(sc->stream);
    return 0;
}

static int
sc_clear(sconn *sc)
{
    Py_CLEAR(sc->server);
    Py_CLEAR(sc->context);
    Py_CLEAR(sc->closed_future);
    tc_http_idle_unlink(sc, 1);
    Py_CLEAR(sc->idle);
    Py_CLEAR(sc->body_timer);
    Py_CLEAR(sc->write_futures);
    Py_CLEAR(sc->req);
    if (sc->stream != NULL && !sc->closed && !sc->detached) {
        /* never leave a consumer pointer to freed memory */
        tc_stream_set_consumer(sc->stream, NULL, NULL);
    }
    Py_CLEAR(sc->stream);
    return 0;
}

static void
sc_dealloc(sconn *sc)
{
    PyTypeObject *tp = Py_TYPE(sc);
    PyObject_GC_UnTrack(sc);
    if (sc->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)sc);
    }
    sc_clear(sc);
    Py_CLEAR(sc->loop);
    tc_http_parser_free(&sc->parser);
    free(sc->strict);
    tc_http_buf_free(&sc->body);
    tp->tp_free((PyObject *)sc);
    Py_DECREF(tp);
}

static PyMethodDef sc_methods[] = {
    {"close", (PyCFunction)sc_close_meth, METH_NOARGS, "Close; returns a Future done when serving ended."},
    {"_body_timer", (PyCFunction)tc_http_sc_body_timer, METH_NOARGS, NULL},
    {"_awaited", (PyCFunction)tc_http_sc_awaited, METH_O, NULL},
    {"_closed", (PyCFunction)tc_http_sc_closed, METH_NOARGS, NULL},
    {"_process", (PyCFunction)tc_http_sc_process_meth, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sc_getset[] = {
    {"context", (getter)sc_get_context, NULL, NULL, NULL},
    {"closed", (getter)sc_get_closed, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef sc_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(sconn, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot sc_slots[] = {
    {Py_tp_new, sc_new},
    {Py_tp_dealloc, sc_dealloc},
    {Py_tp_traverse, sc_traverse},
    {Py_tp_clear, sc_clear},
    {Py_tp_methods, sc_methods},
    {Py_tp_getset, sc_getset},
    {Py_tp_members, sc_members},
    {Py_tp_doc, "One accepted HTTP/1.x connection served in C (upstream's HTTP1ServerConnection)."},
    {0, NULL},
};

static PyType_Spec sc_spec = {
    .name = "tornado_c._core.HTTPServerConnection",
    .basicsize = sizeof(sconn),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = sc_slots,
};

#define INTERN(field, text)                                   \
    do {                                                      \
        if ((hs->field = PyUnicode_InternFromString(text)) == NULL) { \
            return -1;                                        \
        }                                                     \
    } while (0)

int
tc_http_server_exec(PyObject *module, struct tc_state *st)
{
    tc_http_state *hs = st->http;
    INTERN(s_start_request, "start_request");
    INTERN(s_headers_received, "headers_received");
    INTERN(s_data_received, "data_received");
    INTERN(s_finish, "finish");
    INTERN(s_as_list, "_as_list");
    INTERN(s_combined_cache, "_combined_cache");
    if (tc_add_type(module, &sc_spec, NULL, &hs->ServerConnType) < 0 ||
        tc_http_context_exec(hs) < 0 || tc_http_idle_exec(module, hs) < 0) {
        return -1;
    }
    return tc_http_connection_exec(module, st);
}

int
tc_http_server_traverse(struct tc_state *st, visitproc visit, void *arg)
{
    tc_http_state *hs = st->http;
    Py_VISIT(hs->ServerConnType);
    Py_VISIT(hs->ReqConnType);
    Py_VISIT(hs->RequestStartLine);
    Py_VISIT(hs->HTTPHeaders);
    Py_VISIT(hs->HTTPInputError);
    Py_VISIT(hs->HTTPOutputError);
    Py_VISIT(hs->StreamClosedError);
    Py_VISIT(hs->RequestContext);
    Py_VISIT(hs->GzipDelegate);
    Py_VISIT(hs->convert_yielded);
    Py_VISIT(hs->app_log);
    Py_VISIT(hs->gen_log);
    Py_VISIT(hs->rsl_new);
    Py_VISIT(hs->IdleListType);
    return tc_http_context_traverse(hs, visit, arg);
}

void
tc_http_server_clear(struct tc_state *st)
{
    tc_http_state *hs = st->http;
    Py_CLEAR(hs->ServerConnType);
    Py_CLEAR(hs->ReqConnType);
    hs->tornado_imported = 0;
    Py_CLEAR(hs->RequestStartLine);
    Py_CLEAR(hs->HTTPHeaders);
    Py_CLEAR(hs->HTTPInputError);
    Py_CLEAR(hs->HTTPOutputError);
    Py_CLEAR(hs->StreamClosedError);
    Py_CLEAR(hs->RequestContext);
    Py_CLEAR(hs->GzipDelegate);
    Py_CLEAR(hs->convert_yielded);
    Py_CLEAR(hs->app_log);
    Py_CLEAR(hs->gen_log);
    Py_CLEAR(hs->rsl_new);
    Py_CLEAR(hs->s_new);
    Py_CLEAR(hs->s_start_request);
    Py_CLEAR(hs->s_headers_received);
    Py_CLEAR(hs->s_data_received);
    Py_CLEAR(hs->s_finish);
    Py_CLEAR(hs->s_as_list);
    Py_CLEAR(hs->s_combined_cache);
    Py_CLEAR(hs->IdleListType);
    tc_http_context_clear(hs);
}
