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
 * On the C stream the caller reads with read_head() / read_body() instead
 * (below): the parser is then the stream's consumer and decodes the body
 * too.  head() / framing() serve the other streams (TLS), whose bytes the
 * caller reads with read_until_regex and upstream's body loops.
 */
#include "http/internal.h"

/* What read_head() / read_body() are doing (the stream's consumer is us
 * while it is not R_IDLE and `consuming` is set). */
enum { R_IDLE = 0, R_HEAD, R_BODY };

typedef struct {
    PyObject_HEAD
    tc_http_state *hs;    /* borrowed: the type holds the module */
    tc_state *st;         /* borrowed: idem */
    tc_http_parser p;
    PyObject *start_line; /* strong or NULL: made by on_headers during head() */
    PyObject *headers;    /* strong or NULL: idem */
    int head_done;        /* on_headers ran for the head being read */
    int framed;           /* on_body_start ran (or a 1xx was skipped) */
    int body_done;        /* on_message_complete ran */
    /* read_head() / read_body() */
    int reading;          /* R_IDLE, R_HEAD, R_BODY */
    int consuming;        /* we are the stream's consumer (and hold a
                           * reference to ourselves for it) */
    tc_stream *stream;    /* strong or NULL: the stream being read */
    PyObject *fut;        /* strong or NULL: the read's future */
    PyObject *sink;       /* strong or NULL: read_body's bytearray (NULL:
                           * the body is dropped or collected) */
    int collect;          /* read_body(stream, bytes): the body becomes one
                           * bytes object, the future's result */
    PyObject *collected;  /* strong or NULL: collect mode, a fixed body of
                           * at most COLLECT_PREALLOC bytes, filled in place */
    size_t collected_len; /* bytes of `collected` filled */
    tc_http_buf body;     /* collect mode otherwise: the body so far */
    /* read_head(): on_headers saves the head here (the input may be the
     * loop's shared read buffer, where no Python object may be made) and
     * cp_build_head() turns it into Python objects once the input is the
     * stream's own */
    int defer_head;
    tc_http_head saved;        /* spans into save_buf, headers save_hdrs */
    char *save_buf;            /* PyMem */
    size_t save_cap;
    tc_http_header *save_hdrs; /* PyMem */
    size_t save_hdrs_cap;
    /* read_head(..., prefetch=True): body bytes that came in the same read
     * as the head, taken out of the loop's shared read buffer into the bytes
     * object that read_body(stream, bytes) will return (one copy instead of
     * two: into the stream's buffer, then into the result).  They are
     * logically still the stream's: framing()/read_body() put them back
     * (tc_stream_unread) unless that read collects the fixed body of that
     * length, and so do release() and the dealloc. */
    int prefetch;
    PyObject *pre;             /* strong or NULL: bytes of the announced
                                * Content-Length, pre_len of them filled */
    size_t pre_len;
    tc_stream *pre_stream;     /* strong or NULL: the stream they belong to */
    /* a read of the C fetch (client_fetch.c, tc_http_cp_read_*): its end is
     * told to c_done(c_owner, ...) instead of a future */
    tc_http_cp_done c_done;
    PyObject *c_owner;         /* strong while that read is pending */
} cparser;

/* Collect mode allocates the bytes object of a fixed-length body up front
 * (one copy from the stream's input into the result) up to this size; a
 * longer declared length grows a buffer as the bytes arrive (a server
 * cannot make us allocate what it does not send). */
#define COLLECT_PREALLOC (4 * 1024 * 1024)

/* Copy `head` (valid only during on_headers) into self->saved.
 * 0, or -1 with MemoryError set. */
static int
cp_save_head(cparser *self, const tc_http_head *head)
{
    size_t total = head->version.len + head->reason.len;
    for (size_t i = 0; i < head->nheaders; i++) {
        total += head->headers[i].name.len + head->headers[i].value.len;
    }
    if (total > self->save_cap) {
        char *nb = PyMem_Realloc(self->save_buf, total);
        if (nb == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->save_buf = nb;
        self->save_cap = total;
    }
    if (head->nheaders > self->save_hdrs_cap) {
        if (head->nheaders > PY_SSIZE_T_MAX / sizeof(tc_http_header)) {
            PyErr_NoMemory();
            return -1;
        }
        tc_http_header *nh =
            PyMem_Realloc(self->save_hdrs, head->nheaders * sizeof(tc_http_header));
        if (nh == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->save_hdrs = nh;
        self->save_hdrs_cap = head->nheaders;
    }
    char *w = self->save_buf;
    tc_http_head *sv = &self->saved;
    *sv = *head;
#define CP_SAVE_SPAN(dst, src)                 \
    do {                                       \
        if ((src).len) {                       \
            memcpy(w, (src).p, (src).len);     \
        }                                      \
        (dst).p = w;                           \
        (dst).len = (src).len;                 \
        w += (src).len;                        \
    } while (0)
    CP_SAVE_SPAN(sv->version, head->version);
    CP_SAVE_SPAN(sv->reason, head->reason);
    for (size_t i = 0; i < head->nheaders; i++) {
        CP_SAVE_SPAN(self->save_hdrs[i].name, head->headers[i].name);
        CP_SAVE_SPAN(self->save_hdrs[i].value, head->headers[i].value);
    }
#undef CP_SAVE_SPAN
    sv->headers = self->save_hdrs;
    return 0;
}

/* The head's ResponseStartLine and HTTPHeaders into self->start_line and
 * self->headers.  0, or -1 with an exception set. */
static int
cp_build_head(cparser *self, const tc_http_head *head)
{
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
    return 0;
fail:
    Py_DECREF(headers);
    Py_XDECREF(version);
    Py_XDECREF(code);
    Py_XDECREF(reason);
    return -1;
}

static int
cp_on_headers(tc_http_parser *p, const tc_http_head *head)
{
    cparser *self = p->data;
    if (self->defer_head ? cp_save_head(self, head) < 0 : cp_build_head(self, head) < 0) {
        return -1;
    }
    self->head_done = 1;
    return 1; /* pause: headers_received runs before the framing */
}

static int
cp_on_body_start(tc_http_parser *p)
{
    cparser *self = p->data;
    self->framed = 1;
    return 1; /* the caller reads the body */
}

/* read_body(): `self.chunks += chunk` of upstream's _HTTPConnection, in
 * place (or nothing: a body upstream's delegate discards). */
static int
cp_on_body(tc_http_parser *p, const char *data, size_t len)
{
    cparser *self = p->data;
    if (len == 0) {
        return 0;
    }
    if (self->collect) {
        /* no Python object is made here: the input may be the loop's
         * shared read buffer (cp_body_consumer) */
        if (self->collected != NULL &&
            len <= (size_t)PyBytes_GET_SIZE(self->collected) - self->collected_len) {
            char *dst = PyBytes_AS_STRING(self->collected) + self->collected_len;
            if (dst != data) { /* equal: prefetched bytes parsed in place */
                memcpy(dst, data, len);
            }
            self->collected_len += len;
            return 0;
        }
        if (tc_http_buf_append(&self->body, data, len) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        return 0;
    }
    if (self->sink == NULL) {
        return 0;
    }
    Py_ssize_t old = PyByteArray_GET_SIZE(self->sink);
    if ((size_t)(PY_SSIZE_T_MAX - old) < len ||
        PyByteArray_Resize(self->sink, old + (Py_ssize_t)len) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        return -1;
    }
    memcpy(PyByteArray_AS_STRING(self->sink) + old, data, len);
    return 0;
}

static int
cp_on_message_complete(tc_http_parser *p)
{
    cparser *self = p->data;
    self->body_done = 1;
    return 1; /* upstream's client reads one response */
}

static const tc_http_callbacks cp_callbacks = {
    .on_headers = cp_on_headers,
    .on_body_start = cp_on_body_start,
    .on_body = cp_on_body,
    .on_message_complete = cp_on_message_complete,
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

/* Put the prefetched body bytes back in front of their stream's input
 * (see cparser.pre).  0, or -1 with MemoryError set (they are dropped). */
static int
cp_give_back(cparser *self)
{
    PyObject *pre = self->pre;
    tc_stream *s = self->pre_stream;
    int r = 0;
    if (pre == NULL) {
        return 0;
    }
    self->pre = NULL;
    self->pre_stream = NULL;
    if (s != NULL) {
        r = tc_stream_unread(s, PyBytes_AS_STRING(pre), self->pre_len);
    }
    self->pre_len = 0;
    Py_DECREF(pre);
    Py_XDECREF(s);
    return r;
}

static PyObject *
cp_make(tc_state *st, PyTypeObject *type, int rhead)
{
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
    self->st = st;
    tc_http_parser_init(&self->p, &cp_callbacks);
    self->p.data = self;
    self->p.client = 1;
    self->p.request_head = rhead;
    /* head(): the stream's read_until_regex enforced max_header_size
     * already; read_head() sets it */
    self->p.max_header_size = (size_t)-1;
    return (PyObject *)self;
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
    return cp_make(st, type, rhead);
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
    self->defer_head = 0; /* Python's bytes: the objects are made at once */
    self->prefetch = 0;
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
cp_framing(cparser *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *kinds[] = {"none", "fixed", "chunked", "until_close"};
    tc_http_parser *p = &self->p;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "framing(max_body_size, collect=False)");
        return NULL;
    }
    int collect = nargs == 2 ? PyObject_IsTrue(args[1]) : 0;
    if (collect < 0) {
        return NULL;
    }
    /* int(max_body_size); a negative one is smaller than any length */
    if (tc_http_max_body_from(args[0], &p->max_body_size, &p->max_body_negative) < 0) {
        return NULL;
    }
    if (!self->head_done) {
        PyErr_SetString(PyExc_ValueError, "HTTPClientParser.framing() before head()");
        return NULL;
    }
    unsigned before = p->num_1xx;
    size_t used = 0;
    tc_http_parser_resume(p);
    tc_http_status st = tc_http_parser_execute(p, NULL, 0, &used);
    /* prefetched bytes stay out of the stream only for the read that will
     * collect them: a fixed body of their length */
    if (self->pre != NULL &&
        (st == TC_HTTP_ERROR || !collect || p->num_1xx != before || !self->framed ||
         p->body_kind != TC_HTTP_BODY_FIXED ||
         p->content_length != (uint64_t)PyBytes_GET_SIZE(self->pre)) &&
        cp_give_back(self) < 0) {
        return NULL;
    }
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

/* ------------------------------------------------------------------
 * read_head(stream) / read_body(stream, sink): the response read over the
 * C stream's consumer API (stream.h) instead of read_until_regex and
 * upstream's body loops.  Each returns a future; while it is pending we are
 * the stream's consumer and hold a reference to ourselves for it.  What the
 * future gets is what the Python reads would have given:
 *   - the head: (ResponseStartLine, HTTPHeaders); HTTPInputError for what
 *     the grammar rejects; a head over max_header_size is the stream's
 *     "Unsatisfiable read" (logged, the stream closed with
 *     UnsatisfiableReadError, the future failed with StreamClosedError);
 *   - the body: None once it is complete (its bytes appended to `sink`, a
 *     bytearray, or dropped when sink is None); HTTPInputError for a bad
 *     chunk or a body over max_body_size; a close-delimited body ends with
 *     the stream;
 *   - the stream closing first: StreamClosedError(real_error=stream.error).
 */

static void cp_on_data(void *ctx, tc_stream *s);
static void cp_on_drain(void *ctx, tc_stream *s);
static void cp_on_close(void *ctx, tc_stream *s, PyObject *error);

static const tc_stream_consumer cp_consumer = {
    .on_data = cp_on_data,
    .on_drain = cp_on_drain,
    .on_close = cp_on_close,
};
/* The body in collect mode: the parser's on_body only copies bytes, so the
 * input may stay in the loop's shared read buffer (stream.h, peek_shared);
 * cp_feed moves what is left into the stream before any Python runs. */
static const tc_stream_consumer cp_body_consumer = {
    .on_data = cp_on_data,
    .on_drain = cp_on_drain,
    .on_close = cp_on_close,
    .peek_shared = 1,
};

static const tc_stream_consumer *
cp_consumer_for(cparser *self)
{
    /* the body in collect mode, and a head that may take body bytes with
     * it (prefetch), see them in the shared buffer */
    return (self->reading == R_BODY && self->collect) || (self->reading == R_HEAD && self->prefetch)
               ? &cp_body_consumer
               : &cp_consumer;
}

/* The read is over: stop consuming, drop the stream and the sink, and hand
 * the future (strong) to the caller. */
static PyObject *
cp_read_end(cparser *self)
{
    PyObject *fut = self->fut;
    const tc_stream_consumer *cb = cp_consumer_for(self);
    self->fut = NULL;
    self->reading = R_IDLE;
    if (self->consuming) {
        self->consuming = 0;
        if (self->stream != NULL && tc_stream_consumer_is(self->stream, cb, self)) {
            tc_stream_set_consumer(self->stream, NULL, NULL);
        }
        Py_DECREF(self); /* the consumer's reference; the caller holds one */
    }
    Py_CLEAR(self->stream);
    Py_CLEAR(self->sink);
    Py_CLEAR(self->collected);
    self->collect = 0;
    tc_http_buf_free(&self->body);
    return fut;
}

/* Resolve the read's future with `value` (borrowed) or fail it with `exc`
 * (borrowed).  Errors are left set for the caller. */
static int
cp_resolve(cparser *self, tc_loop *loop, PyObject *value, PyObject *exc)
{
    tc_http_cp_done done = self->c_done;
    PyObject *owner = self->c_owner;
    self->c_done = NULL;
    self->c_owner = NULL;
    PyObject *fut = cp_read_end(self);
    int r = 0;
    if (done != NULL) {
        done(owner, value, exc);
        Py_DECREF(owner);
        return PyErr_Occurred() ? -1 : 0;
    }
    if (fut == NULL) {
        return 0;
    }
    if (exc != NULL) {
        r = tc_loop_future_set_exception(loop, fut, exc, TC_FUTURE_UNLESS_DONE, 0);
    }
    else {
        r = tc_loop_future_set_result(loop, fut, value, TC_FUTURE_UNLESS_DONE);
    }
    Py_DECREF(fut);
    return r;
}

/* The parser failed: fail the read as the Python reads would have. */
static int
cp_read_failed(cparser *self, tc_stream *s)
{
    tc_http_parser *p = &self->p;
    tc_loop *loop = tc_stream_loop(s);
    PyObject *exc = NULL;
    int r;
    if (p->error_kind == TC_HTTP_ERR_UNSATISFIABLE) {
        PyObject *msg = PyUnicode_DecodeLatin1(p->error_msg, (Py_ssize_t)p->error_len, NULL);
        exc = msg ? PyObject_CallOneArg(self->st->stream->UnsatisfiableReadError, msg) : NULL;
        Py_XDECREF(msg);
        if (exc == NULL) {
            goto error;
        }
        PyObject *line = PyUnicode_FromFormat("Unsatisfiable read, closing connection: %S", exc);
        PyObject *lr = line ? PyObject_CallMethod(self->st->stream->gen_log, "info", "O", line)
                            : NULL;
        Py_XDECREF(line);
        if (lr == NULL) {
            Py_DECREF(exc);
            goto error;
        }
        Py_DECREF(lr);
        /* on_close fails the future with StreamClosedError(real_error=exc) */
        tc_stream_close(s, exc);
        Py_DECREF(exc);
        return 0;
    }
    if (cp_error(self) != NULL || !PyErr_Occurred()) {
        PyErr_SetString(PyExc_SystemError, "HTTPClientParser: error without exception");
    }
error:
    /* the parser's HTTPInputError, or a failure of ours: the read raises it */
    {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        if (tb != NULL && v != NULL) {
            PyException_SetTraceback(v, tb);
        }
        Py_XDECREF(t);
        Py_XDECREF(tb);
        exc = v;
    }
    if (exc == NULL) {
        return -1;
    }
    r = cp_resolve(self, loop, NULL, exc);
    Py_DECREF(exc);
    return r;
}

/* The body is complete: the future gets None, or in collect mode the
 * body as one bytes object. */
static int
cp_body_done(cparser *self, tc_stream *s)
{
    PyObject *result;
    if (!self->collect) {
        return cp_resolve(self, tc_stream_loop(s), Py_None, NULL);
    }
    if (self->collected != NULL && self->body.len == 0 &&
        self->collected_len == (size_t)PyBytes_GET_SIZE(self->collected)) {
        result = Py_NewRef(self->collected);
    }
    else {
        /* a preallocated object only partly filled cannot happen (the
         * parser completes a fixed body at its length); join anyway */
        result = PyBytes_FromStringAndSize(NULL,
                                           (Py_ssize_t)(self->collected_len + self->body.len));
        if (result == NULL) {
            return -1;
        }
        if (self->collected_len) {
            memcpy(PyBytes_AS_STRING(result), PyBytes_AS_STRING(self->collected),
                   self->collected_len);
        }
        if (self->body.len) {
            memcpy(PyBytes_AS_STRING(result) + self->collected_len, self->body.data,
                   self->body.len);
        }
    }
    int r = cp_resolve(self, tc_stream_loop(s), result, NULL);
    Py_DECREF(result);
    return r;
}

/* The head is complete and the rest of this read is still in the loop's
 * shared buffer: take the body bytes of a response that can only have a
 * fixed body (up to COLLECT_PREALLOC) into a bytes object of its length
 * (see cparser.pre).  No Python object but that untracked bytes object is
 * made; a MemoryError just leaves the bytes to the stream. */
static void
cp_prefetch(cparser *self, tc_stream *s)
{
    uint64_t n;
    size_t len;
    if (self->pre != NULL || !tc_stream_input_shared(s)) {
        return;
    }
    const char *data = tc_stream_peek(s, &len);
    if (len == 0 || !tc_http_parser_fixed_hint(&self->p, &n) || n == 0 ||
        n > COLLECT_PREALLOC) {
        return;
    }
    size_t take = len < n ? len : (size_t)n;
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (b == NULL) {
        PyErr_Clear();
        return;
    }
    memcpy(PyBytes_AS_STRING(b), data, take);
    tc_stream_consume(s, take);
    self->pre = b;
    self->pre_len = take;
    self->pre_stream = (tc_stream *)Py_NewRef((PyObject *)s);
}

/* Run the parser over what the stream has buffered; resolves the future
 * when the read is complete.  0, or -1 with an exception set. */
static int
cp_feed(cparser *self, tc_stream *s)
{
    tc_http_parser *p = &self->p;
    size_t len, used = 0;
    const char *data = tc_stream_peek(s, &len);
    tc_http_status st = tc_http_parser_execute(p, data, len, &used);
    tc_stream_consume(s, used);
    int head_ready = st != TC_HTTP_ERROR && self->reading == R_HEAD && self->head_done;
    if (head_ready && self->prefetch) {
        cp_prefetch(self, s);
    }
    if ((st == TC_HTTP_ERROR || self->body_done || head_ready) && tc_stream_own_input(s) < 0) {
        /* MemoryError, the input dropped as a failed read would: the read
         * fails with it */
        p->error_kind = TC_HTTP_ERR_NONE;
        return cp_read_failed(self, s);
    }
    if (st == TC_HTTP_ERROR) {
        return cp_read_failed(self, s);
    }
    if (head_ready) {
        /* the input is the stream's own: Python objects may be made */
        if (cp_build_head(self, &self->saved) < 0) {
            return cp_read_failed(self, s);
        }
        PyObject *t = PyTuple_Pack(2, self->start_line, self->headers);
        if (t == NULL) {
            return -1;
        }
        int r = cp_resolve(self, tc_stream_loop(s), t, NULL);
        Py_DECREF(t);
        return r;
    }
    if (self->reading == R_BODY && self->body_done) {
        return cp_body_done(self, s);
    }
    return 0;
}

/* The stream is closed (error borrowed, or NULL): a close-delimited body is
 * complete, anything else is cut short. */
static int
cp_closed(cparser *self, tc_stream *s, PyObject *error)
{
    tc_loop *loop = tc_stream_loop(s);
    if (self->reading == R_BODY && self->p.body_kind == TC_HTTP_BODY_UNTIL_CLOSE &&
        !self->body_done) {
        if (tc_http_parser_eof(&self->p) == TC_HTTP_ERROR) {
            return cp_read_failed(self, s);
        }
        if (self->body_done) {
            return cp_body_done(self, s);
        }
    }
    PyObject *exc = tc_stream_closed_error(self->st, error);
    if (exc == NULL) {
        return -1;
    }
    int r = cp_resolve(self, loop, NULL, exc);
    Py_DECREF(exc);
    return r;
}

static void
cp_on_data(void *ctx, tc_stream *s)
{
    cparser *self = ctx;
    Py_INCREF(self);
    Py_INCREF(s);
    (void)cp_feed(self, s); /* an exception left set goes to the loop's handler */
    Py_DECREF(s);
    Py_DECREF(self);
}

static void
cp_on_drain(void *ctx, tc_stream *s)
{
    (void)ctx;
    (void)s;
}

static void
cp_on_close(void *ctx, tc_stream *s, PyObject *error)
{
    cparser *self = ctx;
    Py_INCREF(self);
    Py_INCREF(s);
    /* Python runs below: the input must be the stream's own */
    if (tc_stream_own_input(s) < 0) {
        tc_loop_report_exception(tc_stream_loop(s), "HTTPClientParser: input lost", NULL);
    }
    /* the stream cleared us already */
    if (self->consuming) {
        self->consuming = 0;
        Py_DECREF(self); /* the consumer's reference (we hold another) */
    }
    (void)cp_closed(self, s, error);
    Py_DECREF(s);
    Py_DECREF(self);
}

/* Start a read on `stream_obj`: feed what is buffered at once, then consume
 * the stream until the read completes.  New reference to the future. */
static PyObject *
cp_read_start(cparser *self, PyObject *stream_obj, int what, tc_http_cp_done done,
              PyObject *owner)
{
    if (!tc_stream_check(self->st, stream_obj)) {
        PyErr_SetString(PyExc_TypeError, "HTTPClientParser: a tornado_c IOStream is needed");
        return NULL;
    }
    if (self->reading != R_IDLE) {
        PyErr_SetString(PyExc_RuntimeError, "HTTPClientParser: a read is pending");
        return NULL;
    }
    tc_stream *s = (tc_stream *)stream_obj;
    PyObject *fut;
    if (done != NULL) {
        /* a C waiter: told at the end, maybe before this returns */
        fut = Py_NewRef(Py_None);
        self->c_done = done;
        self->c_owner = Py_NewRef(owner);
    }
    else {
        fut = tc_loop_create_future(tc_stream_loop(s));
        if (fut == NULL) {
            return NULL;
        }
        self->fut = Py_NewRef(fut);
    }
    self->stream = (tc_stream *)Py_NewRef(stream_obj);
    self->reading = what;
    if (cp_feed(self, s) < 0) {
        goto fail;
    }
    if (self->reading != R_IDLE) {
        if (tc_stream_closed(s)) {
            PyObject *error = PyObject_GetAttrString(stream_obj, "error");
            if (error == NULL) {
                goto fail;
            }
            int r = cp_closed(self, s, error == Py_None ? NULL : error);
            Py_DECREF(error);
            if (r < 0) {
                goto fail;
            }
        }
        else {
            /* everything buffered was consumed: nothing is delivered late */
            Py_INCREF(self); /* the consumer's reference (cp_read_end, cp_on_close) */
            self->consuming = 1;
            tc_stream_set_consumer(s, cp_consumer_for(self), self);
        }
    }
    return fut;
fail:
    Py_XDECREF(cp_read_end(self));
    self->c_done = NULL;
    Py_CLEAR(self->c_owner);
    Py_DECREF(fut);
    return NULL;
}

static PyObject *
cp_read_head_impl(cparser *self, PyObject *stream, Py_ssize_t mhs, int prefetch,
                  tc_http_cp_done done, PyObject *owner)
{
    if (self->reading == R_IDLE && cp_give_back(self) < 0) {
        return NULL;
    }
    self->prefetch = prefetch;
    self->defer_head = 1;
    self->p.max_header_size = mhs < 0 ? 0 : (size_t)mhs;
    self->head_done = 0;
    self->framed = 0;
    Py_CLEAR(self->start_line);
    Py_CLEAR(self->headers);
    return cp_read_start(self, stream, R_HEAD, done, owner);
}

static PyObject *
cp_read_head(cparser *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "read_head(stream, max_header_size, prefetch=False)");
        return NULL;
    }
    Py_ssize_t mhs = PyLong_AsSsize_t(args[1]);
    if (mhs == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int prefetch = nargs == 3 ? PyObject_IsTrue(args[2]) : 0;
    if (prefetch < 0) {
        return NULL;
    }
    return cp_read_head_impl(self, args[0], mhs, prefetch, NULL, NULL);
}

static PyObject *
cp_read_body_impl(cparser *self, PyObject *const *args, tc_http_cp_done done, PyObject *owner)
{
    int collect = args[1] == (PyObject *)&PyBytes_Type;
    if (!self->framed || self->p.body_kind == TC_HTTP_BODY_NONE) {
        PyErr_SetString(PyExc_ValueError, "HTTPClientParser.read_body() without a body to read");
        return NULL;
    }
    if (self->reading != R_IDLE) {
        PyErr_SetString(PyExc_RuntimeError, "HTTPClientParser: a read is pending");
        return NULL;
    }
    /* the bytes prefetched with the head: this read's start when it
     * collects the fixed body of their length, else the stream's again */
    PyObject *pre = NULL;
    size_t pre_len = 0;
    if (self->pre != NULL) {
        if (collect && self->p.body_kind == TC_HTTP_BODY_FIXED &&
            self->p.content_length == (uint64_t)PyBytes_GET_SIZE(self->pre) &&
            (PyObject *)self->pre_stream == args[0]) {
            pre = self->pre; /* the reference moves to `pre` */
            pre_len = self->pre_len;
            self->pre = NULL;
            self->pre_len = 0;
            Py_CLEAR(self->pre_stream);
        }
        else if (cp_give_back(self) < 0) {
            return NULL;
        }
    }
    Py_XSETREF(self->sink, args[1] == Py_None || collect ? NULL : Py_NewRef(args[1]));
    self->collect = collect;
    self->collected_len = 0;
    tc_http_buf_free(&self->body);
    Py_CLEAR(self->collected);
    if (pre != NULL) {
        self->collected = pre; /* steals */
    }
    else if (collect && self->p.body_kind == TC_HTTP_BODY_FIXED &&
             self->p.content_length <= COLLECT_PREALLOC) {
        self->collected = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)self->p.content_length);
        if (self->collected == NULL) {
            Py_CLEAR(self->sink);
            self->collect = 0;
            return NULL;
        }
    }
    self->body_done = 0;
    self->framed = 0;
    tc_http_parser_resume(&self->p);
    if (pre_len > 0) {
        /* parsed where they are: on_body sees its destination */
        size_t used = 0;
        if (tc_http_parser_execute(&self->p, PyBytes_AS_STRING(self->collected), pre_len,
                                   &used) == TC_HTTP_ERROR ||
            used != pre_len) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_SystemError, "HTTPClientParser: prefetched body refused");
            }
            Py_CLEAR(self->collected);
            self->collect = 0;
            return NULL;
        }
    }
    PyObject *fut = cp_read_start(self, args[0], R_BODY, done, owner);
    if (fut == NULL) {
        Py_CLEAR(self->sink);
        Py_CLEAR(self->collected);
        self->collect = 0;
    }
    return fut;
}

static PyObject *
cp_read_body(cparser *self, PyObject *const *args, Py_ssize_t nargs)
{
    int collect = nargs == 2 && args[1] == (PyObject *)&PyBytes_Type;
    if (nargs != 2 || (args[1] != Py_None && !collect && !PyByteArray_CheckExact(args[1]))) {
        PyErr_SetString(PyExc_TypeError, "read_body(stream, sink: bytearray | None | bytes)");
        return NULL;
    }
    return cp_read_body_impl(self, args, NULL, NULL);
}

static PyObject *
cp_release(cparser *self, PyObject *Py_UNUSED(ignored))
{
    if (cp_give_back(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static int
cp_traverse(cparser *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->start_line);
    Py_VISIT(self->headers);
    Py_VISIT(self->stream);
    Py_VISIT(self->fut);
    Py_VISIT(self->sink);
    Py_VISIT(self->collected);
    Py_VISIT(self->pre_stream);
    Py_VISIT(self->c_owner);
    return 0;
}

static int
cp_clear(cparser *self)
{
    Py_CLEAR(self->start_line);
    Py_CLEAR(self->headers);
    /* not while consuming: the stream's consumer holds a reference to us */
    Py_CLEAR(self->stream);
    Py_CLEAR(self->fut);
    Py_CLEAR(self->sink);
    Py_CLEAR(self->collected);
    Py_CLEAR(self->pre);
    Py_CLEAR(self->pre_stream);
    self->c_done = NULL;
    Py_CLEAR(self->c_owner);
    return 0;
}

static void
cp_dealloc(cparser *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    /* prefetched bytes not handed over are the stream's */
    if (cp_give_back(self) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    cp_clear(self);
    tc_http_parser_free(&self->p);
    tc_http_buf_free(&self->body);
    PyMem_Free(self->save_buf);
    PyMem_Free(self->save_hdrs);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* ------------------------------------------------------ the C fetch's API */

PyObject *
tc_http_cp_create(tc_state *st, int request_head)
{
    return cp_make(st, st->http->ClientParserType, request_head != 0);
}

int
tc_http_cp_read_head(PyObject *cp, tc_stream *s, Py_ssize_t max_header_size, int prefetch,
                     tc_http_cp_done done, PyObject *owner)
{
    PyObject *r = cp_read_head_impl((cparser *)cp, (PyObject *)s, max_header_size, prefetch,
                                    done, owner);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

PyObject *
tc_http_cp_framing(PyObject *cp, PyObject *max_body_size)
{
    PyObject *args[2] = {max_body_size, Py_True};
    return cp_framing((cparser *)cp, args, 2);
}

int
tc_http_cp_read_body(PyObject *cp, tc_stream *s, tc_http_cp_done done, PyObject *owner)
{
    PyObject *args[2] = {(PyObject *)s, (PyObject *)&PyBytes_Type};
    PyObject *r = cp_read_body_impl((cparser *)cp, args, done, owner);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

int
tc_http_cp_release(PyObject *cp)
{
    return cp_give_back((cparser *)cp);
}

static PyMethodDef cp_methods[] = {
    {"head", (PyCFunction)cp_head, METH_O,
     "head(data) -> (ResponseStartLine, HTTPHeaders) of one response head."},
    {"framing", (PyCFunction)(void (*)(void))cp_framing, METH_FASTCALL,
     "framing(max_body_size, collect=False) -> (kind, content_length, "
     "content_length_rewrite) after headers_received; collect: the caller will read the "
     "body with read_body(stream, bytes) (prefetched bytes wait for it)."},
    {"read_head", (PyCFunction)(void (*)(void))cp_read_head, METH_FASTCALL,
     "read_head(stream, max_header_size, prefetch=False) -> Future of (ResponseStartLine, "
     "HTTPHeaders), read from the C stream as its consumer; prefetch: body bytes that "
     "arrive with the head may be taken for read_body(stream, bytes)."},
    {"release", (PyCFunction)cp_release, METH_NOARGS,
     "release(): give body bytes prefetched with the head back to the stream."},
    {"read_body", (PyCFunction)(void (*)(void))cp_read_body, METH_FASTCALL,
     "read_body(stream, sink) -> Future of None once the body framing() decided is read "
     "(appended to the bytearray sink, or dropped when sink is None); with sink=bytes, "
     "Future of the body as one bytes object."},
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
    if (tc_http_client_request_exec(module) < 0 || tc_http_client_fetch_exec(module, st) < 0) {
        return -1;
    }
    return tc_add_type(module, &cp_spec, NULL, &st->http->ClientParserType);
}

int
tc_http_client_traverse(struct tc_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->http->ClientParserType);
    Py_VISIT(st->http->ResponseStartLine);
    return tc_http_client_fetch_traverse(st, visit, arg);
}

void
tc_http_client_clear(struct tc_state *st)
{
    Py_CLEAR(st->http->ClientParserType);
    Py_CLEAR(st->http->ResponseStartLine);
    tc_http_client_fetch_clear(st);
}
