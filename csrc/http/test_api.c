/* http component, test build only (TORNADO_C_TEST=1, see setup.py): Python
 * wrappers of the pure-C core and of llhttp, for the tests:
 *
 *   _core.HTTPRequestParser(max_header_size=65536, max_body_size=104857600,
 *                           no_keep_alive=False, auto=True, client=False,
 *                           request_head=False)
 *       .feed(data) -> bytes consumed; events appended to .events:
 *           ("headers", method, target, version, [(name, value)...],
 *            keep_alive, expect_continue)
 *           ("body_start", "none"|"fixed"|"chunked", content_length|None,
 *            rewritten_content_length|None)
 *           ("body", bytes)      consecutive pieces merged into one event
 *           ("complete",)
 *           ("error", "400"|"close", message)
 *       With auto=True, feed() goes on after each complete message while the
 *       connection is kept alive and stops (.finished = True) after one that
 *       closes it, like the server loop.  With auto=False it pauses after
 *       every head and every message: call resume() then feed() again (with
 *       b"" to let a body-less message complete).
 *       .set_max_body_size(n), .resume(), .error, .keep_alive, .finished,
 *       .paused, .in_message
 *       client=True: the response grammar (parser.h, "Client mode"); heads
 *       are ("headers", version, code, reason, [(name, value)...]), framing
 *       may be "until_close", .eof() ends the stream (returns in_message
 *       afterwards: True when the end cut a response short), .num_1xx.
 *
 *   _core.HTTPResponseWriter(method, version, connection_keep_alive=False,
 *                            disconnect_on_finish=False)
 *       .write_headers(start_line, headers, chunk=None) -> bytes
 *       .write(chunk) -> bytes, .finish(stream_closed=False) -> bytes
 *       .chunking, .closed, .expected_remaining
 *     the server's HTTPConnection without the I/O: write_headers runs the
 *     same code (tc_http_py_write_headers) and raises what it raises.
 *
 *   _core._http_repr(data, as_bytes=False): repr() as the C core writes it
 *   _core._llhttp_selftest(): llhttp parses one request (True)
 *   _core._llhttp_verdict(data): what llhttp makes of one request
 *   _core._llhttp_parse(data, pieces=1): what the judge (judge.h) parsed
 *   _core._llhttp_strict(): llhttp compiled with LLHTTP_STRICT_MODE
 *
 * Strings are latin-1 decoded, as upstream decodes the head.
 */
#include "common.h"
#include "state.h"
#include "http/http.h"
#include "http/judge.h"
#include "web/web.h"

#include <llhttp.h>
#include <structmember.h>

static PyObject *
latin1(const char *s, size_t n)
{
    return PyUnicode_DecodeLatin1(s, (Py_ssize_t)n, NULL);
}

/* ============================================================ parser */

typedef struct {
    PyObject_HEAD
    tc_http_parser p;
    PyObject *events;      /* list */
    PyObject *error;       /* None or (kind, message) */
    int auto_mode;
    int finished;
    int cb_failed;
} ReqParserObject;

static int
add_event(ReqParserObject *self, PyObject *ev /* stolen */)
{
    if (ev == NULL) {
        return -1;
    }
    int r = PyList_Append(self->events, ev);
    Py_DECREF(ev);
    return r;
}

static int
rp_on_headers(tc_http_parser *p, const tc_http_head *h)
{
    ReqParserObject *self = (ReqParserObject *)p->data;
    PyObject *list = PyList_New((Py_ssize_t)h->nheaders);
    if (list == NULL) {
        return -1;
    }
    for (size_t i = 0; i < h->nheaders; i++) {
        PyObject *pair = Py_BuildValue("(NN)",
                                       latin1(h->headers[i].name.p, h->headers[i].name.len),
                                       latin1(h->headers[i].value.p, h->headers[i].value.len));
        if (pair == NULL) {
            Py_DECREF(list);
            return -1;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, pair); /* steals pair */
    }
    PyObject *ev;
    if (p->client) {
        ev = Py_BuildValue("(sNiNN)", "headers", latin1(h->version.p, h->version.len),
                           h->code, latin1(h->reason.p, h->reason.len), list);
        goto add;
    }
    ev = Py_BuildValue("(sNNNNOO)", "headers",
                                 latin1(h->method.p, h->method.len),
                                 latin1(h->target.p, h->target.len),
                                 latin1(h->version.p, h->version.len), list,
                                 h->keep_alive ? Py_True : Py_False,
                                 h->expect_continue ? Py_True : Py_False);
add:
    if (add_event(self, ev) < 0) {
        return -1;
    }
    return self->auto_mode ? 0 : 1;
}

static int
rp_on_body_start(tc_http_parser *p)
{
    ReqParserObject *self = (ReqParserObject *)p->data;
    static const char *kinds[] = {"none", "fixed", "chunked", "until_close"};
    PyObject *cl = p->body_kind == TC_HTTP_BODY_FIXED
                       ? PyLong_FromUnsignedLongLong(p->content_length)
                       : Py_NewRef(Py_None);
    PyObject *rw = p->content_length_rewrite
                       ? latin1(p->content_length_rewrite, p->content_length_rewrite_len)
                       : Py_NewRef(Py_None);
    return add_event(self, Py_BuildValue("(ssNN)", "body_start", kinds[p->body_kind], cl, rw));
}

static int
rp_on_body(tc_http_parser *p, const char *data, size_t len)
{
    ReqParserObject *self = (ReqParserObject *)p->data;
    Py_ssize_t n = PyList_GET_SIZE(self->events);
    if (n > 0) {
        PyObject *last = PyList_GET_ITEM(self->events, n - 1); /* borrowed */
        if (PyTuple_GET_SIZE(last) == 2 &&
            PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(last, 0), "body") == 0) {
            PyObject *old = PyTuple_GET_ITEM(last, 1); /* borrowed */
            PyObject *merged = PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(old) + (Py_ssize_t)len);
            if (merged == NULL) {
                return -1;
            }
            memcpy(PyBytes_AS_STRING(merged), PyBytes_AS_STRING(old), (size_t)PyBytes_GET_SIZE(old));
            memcpy(PyBytes_AS_STRING(merged) + PyBytes_GET_SIZE(old), data, len);
            PyObject *ev = Py_BuildValue("(sN)", "body", merged);
            if (ev == NULL) {
                return -1;
            }
            return PyList_SetItem(self->events, n - 1, ev); /* steals ev */
        }
    }
    return add_event(self, Py_BuildValue("(sy#)", "body", data, (Py_ssize_t)len));
}

static int
rp_on_complete(tc_http_parser *p)
{
    ReqParserObject *self = (ReqParserObject *)p->data;
    if (add_event(self, Py_BuildValue("(s)", "complete")) < 0) {
        return -1;
    }
    if (self->auto_mode && !p->keep_alive) {
        self->finished = 1;
        return 1;
    }
    return self->auto_mode ? 0 : 1;
}

static const tc_http_callbacks rp_callbacks = {
    .on_headers = rp_on_headers,
    .on_body_start = rp_on_body_start,
    .on_body = rp_on_body,
    .on_message_complete = rp_on_complete,
};

static int
rp_init(ReqParserObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_header_size", "max_body_size", "no_keep_alive", "auto",
                             "client", "request_head", NULL};
    Py_ssize_t mhs = TC_HTTP_DEFAULT_MAX_HEADER_SIZE;
    unsigned long long mbs = TC_HTTP_DEFAULT_MAX_BODY_SIZE;
    int nka = 0, autom = 1, client = 0, rhead = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|nKpppp", kwlist, &mhs, &mbs, &nka, &autom,
                                     &client, &rhead)) {
        return -1;
    }
    if (mhs < 0) {
        PyErr_SetString(PyExc_ValueError, "max_header_size must be >= 0");
        return -1;
    }
    tc_http_parser_free(&self->p);
    tc_http_parser_init(&self->p, &rp_callbacks);
    self->p.data = self;
    self->p.max_header_size = (size_t)mhs;
    self->p.max_body_size = mbs;
    self->p.no_keep_alive = nka;
    self->p.client = client;
    self->p.request_head = rhead;
    self->auto_mode = autom;
    self->finished = 0;
    Py_XSETREF(self->events, PyList_New(0));
    if (self->events == NULL) {
        return -1;
    }
    Py_XSETREF(self->error, Py_NewRef(Py_None));
    return 0;
}

static PyObject *
rp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    ReqParserObject *self = (ReqParserObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    tc_http_parser_init(&self->p, &rp_callbacks);
    self->p.data = self;
    self->auto_mode = 1;
    self->events = PyList_New(0);
    self->error = Py_NewRef(Py_None);
    if (self->events == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
rp_traverse(ReqParserObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->events);
    Py_VISIT(self->error);
    return 0;
}

static int
rp_clear(ReqParserObject *self)
{
    Py_CLEAR(self->events);
    Py_CLEAR(self->error);
    return 0;
}

static void
rp_dealloc(ReqParserObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    rp_clear(self);
    tc_http_parser_free(&self->p);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* After TC_HTTP_ERROR: records the parser's error as .error and an
 * ("error", kind, message) event; -1 with an exception set when a callback
 * raised or memory ran out. */
static int
rp_record_error(ReqParserObject *self)
{
    if (self->p.error_kind == TC_HTTP_ERR_NONE) {
        return -1; /* a callback raised */
    }
    if (self->p.error_kind == TC_HTTP_ERR_NOMEM) {
        PyErr_NoMemory();
        return -1;
    }
    if (self->error != Py_None) {
        return 0;
    }
    const char *kind = self->p.error_kind == TC_HTTP_ERR_BAD_REQUEST ? "400" : "close";
    PyObject *err = Py_BuildValue("(sN)", kind, latin1(self->p.error_msg, self->p.error_len));
    if (err == NULL) {
        return -1;
    }
    Py_SETREF(self->error, err);
    return add_event(self, Py_BuildValue("(sOO)", "error", PyTuple_GET_ITEM(err, 0),
                                         PyTuple_GET_ITEM(err, 1)));
}

static PyObject *
rp_feed(ReqParserObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    const char *data = view.buf;
    size_t len = (size_t)view.len, pos = 0;
    if (self->events == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "parser not initialised");
        goto fail;
    }
    while (!self->finished) {
        size_t used = 0;
        tc_http_status st = tc_http_parser_execute(&self->p, data + pos, len - pos, &used);
        pos += used;
        if (st == TC_HTTP_ERROR) {
            if (rp_record_error(self) < 0) {
                goto fail;
            }
            break;
        }
        if (st == TC_HTTP_PAUSED) {
            if (self->auto_mode && !self->finished) {
                tc_http_parser_resume(&self->p);
                continue;
            }
            break;
        }
        break; /* TC_HTTP_OK: all consumed */
    }
    result = PyLong_FromSize_t(pos);
fail:
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
rp_eof(ReqParserObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->events == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "parser not initialised");
        return NULL;
    }
    if (tc_http_parser_eof(&self->p) == TC_HTTP_ERROR && rp_record_error(self) < 0) {
        return NULL;
    }
    return PyBool_FromLong(tc_http_parser_in_message(&self->p));
}

static PyObject *
rp_get_num_1xx(ReqParserObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLong(self->p.num_1xx);
}

static PyObject *
rp_resume(ReqParserObject *self, PyObject *Py_UNUSED(ignored))
{
    tc_http_parser_resume(&self->p);
    Py_RETURN_NONE;
}

static PyObject *
rp_set_max_body_size(ReqParserObject *self, PyObject *arg)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(arg);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    self->p.max_body_size = v;
    Py_RETURN_NONE;
}

static PyObject *
rp_get_keep_alive(ReqParserObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->p.keep_alive);
}

static PyObject *
rp_get_paused(ReqParserObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->p.paused);
}

static PyObject *
rp_get_in_message(ReqParserObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(tc_http_parser_in_message(&self->p));
}

static PyObject *
rp_get_finished(ReqParserObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->finished);
}

static PyObject *
rp_get_messages(ReqParserObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(self->p.messages);
}

static PyMethodDef rp_methods[] = {
    {"feed", (PyCFunction)rp_feed, METH_O, "Feed bytes; returns how many were consumed."},
    {"resume", (PyCFunction)rp_resume, METH_NOARGS, "Resume after a pause."},
    {"eof", (PyCFunction)rp_eof, METH_NOARGS,
     "End of the stream (tc_http_parser_eof); returns in_message afterwards."},
    {"set_max_body_size", (PyCFunction)rp_set_max_body_size, METH_O,
     "Like HTTP1Connection.set_max_body_size."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef rp_members[] = {
    {"events", T_OBJECT, offsetof(ReqParserObject, events), READONLY, "Collected events."},
    {"error", T_OBJECT, offsetof(ReqParserObject, error), READONLY, "None or (kind, message)."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef rp_getset[] = {
    {"keep_alive", (getter)rp_get_keep_alive, NULL, "Keep-alive decision of the last head.", NULL},
    {"paused", (getter)rp_get_paused, NULL, "Paused.", NULL},
    {"in_message", (getter)rp_get_in_message, NULL, "Inside an unfinished message.", NULL},
    {"finished", (getter)rp_get_finished, NULL, "Stopped after a closing message.", NULL},
    {"messages", (getter)rp_get_messages, NULL, "Completed messages.", NULL},
    {"num_1xx", (getter)rp_get_num_1xx, NULL, "Client mode: 1xx heads skipped.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot rp_slots[] = {
    {Py_tp_new, rp_new},
    {Py_tp_init, rp_init},
    {Py_tp_dealloc, rp_dealloc},
    {Py_tp_traverse, rp_traverse},
    {Py_tp_clear, rp_clear},
    {Py_tp_methods, rp_methods},
    {Py_tp_members, rp_members},
    {Py_tp_getset, rp_getset},
    {Py_tp_doc, "Tornado's HTTP/1.x request grammar in C (tc_http_parser), collecting events."},
    {0, NULL},
};

static PyType_Spec rp_spec = {
    .name = "tornado_c._core.HTTPRequestParser",
    .basicsize = sizeof(ReqParserObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = rp_slots,
};

/* ============================================================ writer */

typedef struct {
    PyObject_HEAD
    tc_http_writer w;
    PyObject *method;   /* strong: bytes (latin-1) the writer points into */
    PyObject *version;  /* strong: bytes */
    PyObject *HTTPHeaders, *HTTPOutputError, *s_as_list; /* strong: for refs */
    struct tc_web_state *web; /* borrowed: the module's, which our type holds */
} RespWriterObject;

static PyObject *
rw_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"method", "version", "connection_keep_alive",
                             "disconnect_on_finish", NULL};
    PyObject *method, *version;
    int cka = 0, dof = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UU|pp", kwlist, &method, &version, &cka, &dof)) {
        return NULL;
    }
    RespWriterObject *self = (RespWriterObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    tc_http_writer_init(&self->w);
    self->method = PyUnicode_AsLatin1String(method);
    self->version = PyUnicode_AsLatin1String(version);
    if (self->method == NULL || self->version == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->w.req_method = PyBytes_AS_STRING(self->method);
    self->w.req_method_len = (size_t)PyBytes_GET_SIZE(self->method);
    self->w.req_version = PyBytes_AS_STRING(self->version);
    self->w.req_version_len = (size_t)PyBytes_GET_SIZE(self->version);
    self->w.req_connection_keep_alive = cka;
    self->w.disconnect_on_finish = dof;
    /* what the server gets from _http_server_init */
    self->HTTPHeaders = tc_import_attr("tornado.httputil", "HTTPHeaders");
    self->web = tc_state_from_type(type)->web;
    self->HTTPOutputError = self->HTTPHeaders ? tc_import_attr("tornado.httputil", "HTTPOutputError") : NULL;
    self->s_as_list = self->HTTPOutputError ? PyUnicode_InternFromString("_as_list") : NULL;
    if (self->s_as_list == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
rw_traverse(RespWriterObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->HTTPHeaders);
    Py_VISIT(self->HTTPOutputError);
    return 0;
}

static int
rw_clear(RespWriterObject *self)
{
    Py_CLEAR(self->HTTPHeaders);
    Py_CLEAR(self->HTTPOutputError);
    Py_CLEAR(self->s_as_list);
    return 0;
}

static void
rw_dealloc(RespWriterObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    rw_clear(self);
    Py_CLEAR(self->method);
    Py_CLEAR(self->version);
    tc_http_writer_free(&self->w);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* The server's HTTPConnection.write_headers without the I/O: the same
 * conversion, checks and errors (tc_http_py_write_headers); returns the
 * bytes it would send. */
static PyObject *
rw_write_headers(RespWriterObject *self, PyObject *const *args, Py_ssize_t nargs,
                 PyObject *kwnames)
{
    PyObject *start_line, *headers, *chunk; /* borrowed */
    PyObject *result = NULL;
    tc_http_buf out = {0};
    if (tc_http_py_write_headers_args(args, nargs, kwnames, &start_line, &headers, &chunk) < 0) {
        return NULL;
    }
    const tc_http_py_refs refs = {self->HTTPHeaders, self->HTTPOutputError, self->s_as_list,
                                  self->web};
    if (tc_http_py_write_headers(&self->w, &refs, start_line, headers, chunk, &out) == 0) {
        result = PyBytes_FromStringAndSize(out.data ? out.data : "", (Py_ssize_t)out.len);
    }
    tc_http_buf_free(&out);
    return result;
}

static PyObject *
rw_write(RespWriterObject *self, PyObject *arg)
{
    Py_buffer view;
    tc_http_buf out = {0};
    PyObject *result = NULL;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    tc_http_werr e = tc_http_write_body(&self->w, view.buf, (size_t)view.len, &out);
    if (e != TC_HTTP_WOK) {
        tc_http_py_raise(&self->w, e, self->HTTPOutputError);
    } else {
        result = PyBytes_FromStringAndSize(out.data ? out.data : "", (Py_ssize_t)out.len);
    }
    tc_http_buf_free(&out);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
rw_finish(RespWriterObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"stream_closed", NULL};
    int closed = 0;
    tc_http_buf out = {0};
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|p", kwlist, &closed)) {
        return NULL;
    }
    tc_http_werr e = tc_http_write_finish(&self->w, closed, &out);
    if (e != TC_HTTP_WOK) {
        tc_http_py_raise(&self->w, e, self->HTTPOutputError);
    } else {
        result = PyBytes_FromStringAndSize(out.data ? out.data : "", (Py_ssize_t)out.len);
    }
    tc_http_buf_free(&out);
    return result;
}

static PyObject *
rw_get_chunking(RespWriterObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->w.chunking);
}

static PyObject *
rw_get_closed(RespWriterObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->w.closed);
}

static PyObject *
rw_get_expected(RespWriterObject *self, void *c)
{
    (void)c;
    if (self->w.expected_remaining < 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(self->w.expected_remaining);
}

static PyMethodDef rw_methods[] = {
    {"write_headers", (PyCFunction)(void (*)(void))rw_write_headers, METH_FASTCALL | METH_KEYWORDS,
     "HTTPConnection.write_headers(start_line, headers, chunk=None): returns the bytes to send."},
    {"write", (PyCFunction)rw_write, METH_O, "HTTP1Connection.write: returns the bytes to send."},
    {"finish", (PyCFunction)(void (*)(void))rw_finish, METH_VARARGS | METH_KEYWORDS,
     "HTTP1Connection.finish: returns the bytes to send."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef rw_getset[] = {
    {"chunking", (getter)rw_get_chunking, NULL, "Chunked output.", NULL},
    {"closed", (getter)rw_get_closed, NULL, "Closed after an error.", NULL},
    {"expected_remaining", (getter)rw_get_expected, NULL, "Content-Length left.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot rw_slots[] = {
    {Py_tp_new, rw_new},
    {Py_tp_dealloc, rw_dealloc},
    {Py_tp_traverse, rw_traverse},
    {Py_tp_clear, rw_clear},
    {Py_tp_methods, rw_methods},
    {Py_tp_getset, rw_getset},
    {Py_tp_doc, "Server response framing of HTTP1Connection in C (tc_http_writer)."},
    {0, NULL},
};

static PyType_Spec rw_spec = {
    .name = "tornado_c._core.HTTPResponseWriter",
    .basicsize = sizeof(RespWriterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = rw_slots,
};

/* ------------------------------------------------------------ llhttp */

static int
selftest_on_complete(llhttp_t *parser)
{
    *(int *)parser->data += 1;
    return 0;
}

/* Parse one small request with a fresh llhttp parser; True if it completed. */
static PyObject *
llhttp_selftest(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    llhttp_settings_t settings;
    llhttp_t parser;
    int done = 0;
    llhttp_settings_init(&settings);
    settings.on_message_complete = selftest_on_complete;
    llhttp_init(&parser, HTTP_REQUEST, &settings);
    parser.data = &done;
    llhttp_errno_t err = llhttp_execute(&parser, req, sizeof(req) - 1);
    if (err != HPE_OK) {
        PyErr_Format(PyExc_RuntimeError, "llhttp: %s", llhttp_errno_name(err));
        return NULL;
    }
    return PyBool_FromLong(done == 1);
}

/* _llhttp_verdict(data): what this llhttp, with no lenient flag, makes of
 * one request: "HPE_OK" when it parsed a complete message, else the errno
 * name (HPE_INVALID_METHOD, ...).  For tests that check why llhttp is not
 * the request parser (see parser.h). */
static PyObject *
llhttp_verdict(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_buffer view;
    llhttp_settings_t settings;
    llhttp_t parser;
    int done = 0;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    llhttp_settings_init(&settings);
    settings.on_message_complete = selftest_on_complete;
    llhttp_init(&parser, HTTP_REQUEST, &settings);
    parser.data = &done;
    llhttp_errno_t err = llhttp_execute(&parser, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (err == HPE_OK && done == 0) {
        return PyUnicode_FromString("incomplete");
    }
    return PyUnicode_FromString(llhttp_errno_name(err));
}

static PyObject *
llhttp_strict(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    return PyBool_FromLong(tc_http_judge_strict_build());
}

/* _llhttp_parse(data, pieces=1) -> (records, error): the judge (judge.h)
 * fed `data` in `pieces` nearly equal parts; records are the judge's record
 * log as a list of (tag, bytes) (tag a one-character str), error None or
 * "HPE_NAME: reason". */
static PyObject *
llhttp_parse(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer view;
    Py_ssize_t pieces = 1;
    tc_http_buf rec = {0};
    tc_http_judge j;
    PyObject *list = NULL, *res = NULL;
    int err = HPE_OK;
    if (!PyArg_ParseTuple(args, "y*|n", &view, &pieces)) {
        return NULL;
    }
    if (pieces < 1) {
        PyErr_SetString(PyExc_ValueError, "pieces must be >= 1");
        goto fail;
    }
    tc_http_judge_init(&j, &rec);
    size_t total = (size_t)view.len, step = total / (size_t)pieces + 1;
    for (size_t at = 0; at < total && err == HPE_OK; at += step) {
        size_t n = total - at < step ? total - at : step;
        err = tc_http_judge_feed(&j, (const char *)view.buf + at, n);
    }
    if (j.nomem) {
        PyErr_NoMemory();
        goto fail;
    }
    list = PyList_New(0);
    if (list == NULL) {
        goto fail;
    }
    for (size_t pos = 0; pos + TC_HTTP_JUDGE_REC_HDR <= rec.len;) {
        const unsigned char *h = (const unsigned char *)rec.data + pos;
        size_t n = (size_t)h[1] | (size_t)h[2] << 8 | (size_t)h[3] << 16 | (size_t)h[4] << 24;
        PyObject *item = Py_BuildValue("(Cy#)", (int)h[0], (const char *)h + TC_HTTP_JUDGE_REC_HDR,
                                       (Py_ssize_t)n);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
        pos += TC_HTTP_JUDGE_REC_HDR + n;
    }
    if (err == HPE_OK) {
        res = Py_BuildValue("(OO)", list, Py_None);
    } else {
        char why[256];
        tc_http_judge_describe(&j, why, sizeof(why));
        res = Py_BuildValue("(Os)", list, why);
    }
fail:
    Py_XDECREF(list);
    tc_http_buf_free(&rec);
    PyBuffer_Release(&view);
    return res;
}

/* ------------------------------------------------------------ repr */

static PyObject *
py_repr_latin1(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer view;
    int as_bytes = 0;
    if (!PyArg_ParseTuple(args, "y*|p", &view, &as_bytes)) {
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int r = as_bytes ? tc_http_repr_bytes(&buf, &len, &cap, view.buf, (size_t)view.len)
                     : tc_http_repr_str(&buf, &len, &cap, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (r < 0) {
        free(buf);
        return PyErr_NoMemory();
    }
    PyObject *res = PyUnicode_DecodeLatin1(buf, (Py_ssize_t)len, NULL);
    free(buf);
    return res;
}

static PyMethodDef test_functions[] = {
    {"_http_repr", py_repr_latin1, METH_VARARGS,
     "repr() of bytes.decode('latin1') (or of the bytes) as the C core writes it."},
    {"_llhttp_verdict", llhttp_verdict, METH_O,
     "What llhttp (no lenient flag) makes of one request: 'HPE_OK' or an errno name."},
    {"_llhttp_parse", llhttp_parse, METH_VARARGS,
     "What the strict-mode judge (llhttp) parsed: (records, error or None)."},
    {"_llhttp_strict", llhttp_strict, METH_NOARGS,
     "True when the linked llhttp was compiled with LLHTTP_STRICT_MODE."},
    {"_llhttp_selftest", llhttp_selftest, METH_NOARGS, "Parse one request with llhttp; True if it completed."},
    {NULL, NULL, 0, NULL},
};

int
tc_http_test_exec(PyObject *module, struct tc_state *st)
{
    if (tc_add_type(module, &rp_spec, NULL, &st->http->RequestParserType) < 0) {
        return -1;
    }
    if (tc_add_type(module, &rw_spec, NULL, &st->http->ResponseWriterType) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, test_functions);
}
