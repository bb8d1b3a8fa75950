/* _core.HTTPClientParser: the response grammar of upstream's client-mode
 * HTTP1Connection (tornado 6.6.1) for tornado_c/simple_httpclient.py.
 *
 * The parser is tc_http_parser in client mode (parser.h, "Client mode");
 * this file is its Python face, one object per response read:
 *
 *   HTTPClientParser(request_head=False)
 *   .head(data) -> (ResponseStartLine, HTTPHeaders)
 *       data is one head exactly as read_until_regex(b"\r?\n\r?\n",
 *       max_bytes=max_header_size) returned it (the stream enforces the
 *       header limit, so the parser does not); HTTPInputError(message) for
 *       what upstream's _parse_headers / parse_response_start_line reject.
 *   .framing(max_body_size) -> (kind, content_length, content_length_rewrite)
 *       after headers_received (max_body_size: the connection's, read then
 *       as upstream does): what _read_message_inner and _read_body
 *       decide, with their HTTPInputError messages; kind is "1xx" (read
 *       the next head), "none", "fixed", "chunked" or "until_close";
 *       content_length_rewrite is None or the value upstream assigns to
 *       headers["Content-Length"] (a list of equal lengths).
 *
 * The body is read by the caller with upstream's own loops (fixed,
 * chunked, until close), which read the stream piece by piece as upstream
 * does; only the head and the framing decision are here.
 */
#include "http/internal.h"

typedef struct {
    PyObject_HEAD
    tc_http_state *hs;    /* borrowed: the type holds the module */
    tc_http_parser p;
    PyObject *start_line; /* strong or NULL: made by on_headers during head() */
    PyObject *headers;    /* strong or NULL: idem */
    int head_done;        /* on_headers ran for the head being read */
    int framed;           /* on_body_start ran (or a 1xx was skipped) */
} cparser;

static int
cp_on_headers(tc_http_parser *p, const tc_http_head *head)
{
    cparser *self = p->data;
    tc_http_state *hs = self->hs;
    PyObject *version = NULL, *code = NULL, *reason = NULL;
    PyObject *headers = tc_http_build_headers(hs, head);
    if (headers == NULL) {
        return -1;
    }
    version = PyUnicode_DecodeLatin1(head->version.p, (Py_ssize_t)head->version.len, NULL);
    code = PyLong_FromLong(head->code);
    /* match.group(3): None when the optional reason is empty */
    reason = head->reason.len
                 ? PyUnicode_DecodeLatin1(head->reason.p, (Py_ssize_t)head->reason.len, NULL)
                 : Py_NewRef(Py_None);
    if (version == NULL || code == NULL || reason == NULL) {
        goto fail;
    }
    PyObject *args[3] = {version, code, reason};
    PyObject *sl = PyObject_Vectorcall(hs->ResponseStartLine, args, 3, NULL);
    if (sl == NULL) {
        goto fail;
    }
    Py_XSETREF(self->start_line, sl);
    Py_XSETREF(self->headers, headers);
    Py_DECREF(version);
    Py_DECREF(code);
    Py_DECREF(reason);
    self->head_done = 1;
    return 1; /* pause: headers_received runs before the framing */
fail:
    Py_DECREF(headers);
    Py_XDECREF(version);
    Py_XDECREF(code);
    Py_XDECREF(reason);
    return -1;
}

static int
cp_on_body_start(tc_http_parser *p)
{
    cparser *self = p->data;
    self->framed = 1;
    return 1; /* the caller reads the body */
}

static const tc_http_callbacks cp_callbacks = {
    .on_headers = cp_on_headers,
    .on_body_start = cp_on_body_start,
};

/* Raise HTTPInputError for the parser's error (or keep a callback's). */
static PyObject *
cp_error(cparser *self)
{
    tc_http_parser *p = &self->p;
    if (p->error_kind == TC_HTTP_ERR_NONE) {
        return NULL; /* a callback raised */
    }
    if (p->error_kind == TC_HTTP_ERR_NOMEM) {
        return PyErr_NoMemory();
    }
    if (p->error_kind == TC_HTTP_ERR_UNSATISFIABLE) {
        /* not reachable: read_until_regex enforced the limit */
        PyErr_SetString(PyExc_RuntimeError, "HTTPClientParser: head over the limit");
        return NULL;
    }
    PyObject *msg = PyUnicode_DecodeLatin1(p->error_msg, (Py_ssize_t)p->error_len, NULL);
    if (msg != NULL) {
        PyErr_SetObject(self->hs->HTTPInputError, msg);
        Py_DECREF(msg);
    }
    return NULL;
}

static PyObject *
cp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"request_head", NULL};
    int rhead = 0;
    tc_state *st = tc_state_from_type(type);
    if (st == NULL || !PyArg_ParseTupleAndKeywords(args, kwds, "|p", kwlist, &rhead)) {
        return NULL;
    }
    tc_http_state *hs = st->http;
    if (tc_http_import_tornado(hs) < 0) {
        return NULL;
    }
    if (hs->ResponseStartLine == NULL &&
        (hs->ResponseStartLine = tc_import_attr("tornado.httputil", "ResponseStartLine")) == NULL) {
        return NULL;
    }
    cparser *self = (cparser *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->hs = hs;
    tc_http_parser_init(&self->p, &cp_callbacks);
    self->p.data = self;
    self->p.client = 1;
    self->p.request_head = rhead;
    /* the stream's read_until_regex enforced max_header_size already */
    self->p.max_header_size = (size_t)-1;
    return (PyObject *)self;
}

static PyObject *
cp_head(cparser *self, PyObject *arg)
{
    Py_buffer view;
    PyObject *result = NULL;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    size_t used = 0;
    self->head_done = 0;
    self->framed = 0;
    Py_CLEAR(self->start_line);
    Py_CLEAR(self->headers);
    tc_http_status st = tc_http_parser_execute(&self->p, view.buf, (size_t)view.len, &used);
    if (st == TC_HTTP_ERROR) {
        cp_error(self);
        goto done;
    }
    if (!self->head_done || used != (size_t)view.len) {
        /* read_until_regex returns one whole head and nothing more */
        PyErr_SetString(PyExc_ValueError, "HTTPClientParser.head() needs exactly one head");
        goto done;
    }
    result = PyTuple_Pack(2, self->start_line, self->headers);
done:
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
cp_framing(cparser *self, PyObject *arg)
{
    static const char *kinds[] = {"none", "fixed", "chunked", "until_close"};
    tc_http_parser *p = &self->p;
    /* int(max_body_size); a negative one is smaller than any length */
    int overflow = 0;
    long long mbs = PyLong_AsLongLongAndOverflow(arg, &overflow);
    if (mbs == -1 && PyErr_Occurred()) {
        return NULL;
    }
    p->max_body_size = overflow > 0 ? UINT64_MAX : (overflow < 0 || mbs < 0) ? 0 : (uint64_t)mbs;
    if (!self->head_done) {
        PyErr_SetString(PyExc_ValueError, "HTTPClientParser.framing() before head()");
        return NULL;
    }
    unsigned before = p->num_1xx;
    size_t used = 0;
    tc_http_parser_resume(p);
    tc_http_status st = tc_http_parser_execute(p, NULL, 0, &used);
    if (st == TC_HTTP_ERROR) {
        return cp_error(self);
    }
    self->head_done = 0;
    if (p->num_1xx != before) {
        return Py_BuildValue("(sOO)", "1xx", Py_None, Py_None);
    }
    if (!self->framed) {
        PyErr_SetString(PyExc_RuntimeError, "HTTPClientParser: no framing decided");
        return NULL;
    }
    PyObject *cl = p->body_kind == TC_HTTP_BODY_FIXED
                       ? PyLong_FromUnsignedLongLong(p->content_length)
                       : Py_NewRef(Py_None);
    PyObject *rw = p->content_length_rewrite
                       ? PyUnicode_DecodeLatin1(p->content_length_rewrite,
                                                (Py_ssize_t)p->content_length_rewrite_len, NULL)
                       : Py_NewRef(Py_None);
    if (cl == NULL || rw == NULL) {
        Py_XDECREF(cl);
        Py_XDECREF(rw);
        return NULL;
    }
    return Py_BuildValue("(sNN)", kinds[p->body_kind], cl, rw);
}

static int
cp_traverse(cparser *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->start_line);
    Py_VISIT(self->headers);
    return 0;
}

static int
cp_clear(cparser *self)
{
    Py_CLEAR(self->start_line);
    Py_CLEAR(self->headers);
    return 0;
}

static void
cp_dealloc(cparser *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    cp_clear(self);
    tc_http_parser_free(&self->p);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMethodDef cp_methods[] = {
    {"head", (PyCFunction)cp_head, METH_O,
     "head(data) -> (ResponseStartLine, HTTPHeaders) of one response head."},
    {"framing", (PyCFunction)cp_framing, METH_O,
     "framing(max_body_size) -> (kind, content_length, content_length_rewrite) after "
     "headers_received."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot cp_slots[] = {
    {Py_tp_new, cp_new},
    {Py_tp_dealloc, cp_dealloc},
    {Py_tp_traverse, cp_traverse},
    {Py_tp_clear, cp_clear},
    {Py_tp_methods, cp_methods},
    {Py_tp_doc, "The response grammar of upstream's client-mode HTTP1Connection, in C."},
    {0, NULL},
};

static PyType_Spec cp_spec = {
    .name = "tornado_c._core.HTTPClientParser",
    .basicsize = sizeof(cparser),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = cp_slots,
};

int
tc_http_client_exec(PyObject *module, struct tc_state *st)
{
    return tc_add_type(module, &cp_spec, NULL, &st->http->ClientParserType);
}

int
tc_http_client_traverse(struct tc_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->http->ClientParserType);
    Py_VISIT(st->http->ResponseStartLine);
    return 0;
}

void
tc_http_client_clear(struct tc_state *st)
{
    Py_CLEAR(st->http->ClientParserType);
    Py_CLEAR(st->http->ResponseStartLine);
}
