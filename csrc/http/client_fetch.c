/* _core.http_client_fetch(): the common fetch of SimpleAsyncHTTPClient in C.
 *
 * tornado_c/simple_httpclient.py's HTTPClientConnection (upstream's
 * per-fetch _HTTPConnection, the response's delegate) calls
 *
 *   http_client_fetch(conn, request_dict, defaults, loop, user_agent, finish_in_c, pooled)
 *       -> True: the fetch runs here; False: not a request for this path
 *          (nothing done; the caller runs its run() coroutine)
 *
 * with the HTTPRequest's __dict__ and the client's defaults (what its
 * _RequestProxy reads).  The path takes an http:// URL whose host is an
 * IPv4 address as inet_ntop writes it (no resolver: getaddrinfo would give
 * that one address), without body_producer, expect_100_continue,
 * network_interface, proxy options, credentials, header_callback or
 * streaming_callback, with a method upstream supports and the body upstream
 * expects for it.  It then does what upstream's run() and client-mode
 * HTTP1Connection do, in their order:
 *
 *   - one loop iteration later (upstream's run() is a Task's coroutine):
 *     a socket connected by libuv (tc_stream_connect), under
 *     min(connect_timeout, request_timeout) ("Timeout while connecting to
 *     host:port", TCPClient's message);
 *   - connected: conn.stream is the C IOStream, the request timeout is
 *     scheduled as upstream schedules it (conn._timeout, a TimerHandle
 *     running conn._on_timeout("during request") through the IOLoop), the
 *     request's headers get what run() adds (Connection, Host, User-Agent,
 *     Content-Length, Content-Type, Accept-Encoding) and the request goes
 *     out in one write (tc_http_client_request_bytes);
 *   - the head and the body are read by an HTTPClientParser (client.c) as
 *     the stream's consumer, without futures (tc_http_cp_read_*);
 *   - the head: conn.code / reason / headers as headers_received sets
 *     them, the framing decided (its HTTPInputError as upstream's), the
 *     body collected into one bytes object: conn.chunks, then conn.finish()
 *     (the HTTPResponse, the release, the final callback, the stream
 *     closed) -- done here (finish_response) when the caller says
 *     finish_in_c: finish() and the methods it calls are the ones this
 *     file stands for.
 *
 * Everything else is handed to Python at the point where it diverges, with
 * the state upstream's code has there:
 *   - a 1xx head, a gzip body to decompress, a redirect to follow:
 *     conn._c_after_head(stream, parser, start_line, headers), a Task
 *     running the rest of upstream's read (HTTP1ClientConnection);
 *   - a request C does not build: conn._c_send_slow(stream, path), a Task
 *     writing it with upstream's write_headers;
 *   - failures: conn._c_connect_failed(exc), conn._c_raised(exc),
 *     conn._c_read_failed(exc, parser, head_received, in_finish): what
 *     run(), _c_read_message and _read_message_inner do with them.
 *
 * With `pooled` (a connection of tornado_c/_client_pool.py's keep-alive
 * client) the stream may come from the pool (conn._c_take()) instead of a
 * connect, and after finish() it is the pool's (its _on_end_request keeps
 * or closes it, judged on conn._c_facts: the response's version and
 * whether the request was fully written).
 *
 * What differs from upstream's run(): no asyncio Task runs the fetch (the
 * steps run from the loop's callbacks, in a copy of the Context fetch()
 * was called in, as the Task's steps would).
 *
 * Ownership: the fetch object holds the connection (conn), the stream and
 * the parser until it ends; while it waits, what will call it back holds
 * it: the call_soon handle (start), the connect request (tc_stream_connect)
 * or the parser's read (tc_http_cp_read_*); the connect timer's handle is
 * held by the fetch and holds it back (a cycle cut when the timer is
 * cancelled or fires).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http/client_fetch.h"

static const char *const fetch_name_text[N__COUNT] = {
#define FETCH_TEXT(id, text) text,
    FETCH_NAMES(FETCH_TEXT)
#undef FETCH_TEXT
};

/* ------------------------------------------------------------ the steps */

/* IOLoop.time(): time.time() (the caller checked that it is upstream's);
 * conn.start_time and the deadlines run() computes are on this clock */
static double
ioloop_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Set `exc` (stolen) as the current exception. */
static void
set_exc(PyObject *exc)
{
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
}

static void fetch_end(cfetch *f);

/* conn.<name>(*args), its result dropped; errors left set */
static int
call_conn(cfetch *f, PyObject *name, PyObject *const *args, size_t nargs)
{
    PyObject *stack[6];
    stack[0] = f->conn;
    for (size_t i = 0; i < nargs && i < 5; i++) {
        stack[i + 1] = args[i];
    }
    PyObject *r = PyObject_VectorcallMethod(name, stack, (nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                            NULL);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* Hand the exception set to conn.<name>(exc, *args) and end the fetch. */
static void
fail_with(cfetch *f, PyObject *name, PyObject *const *args, size_t nargs)
{
    PyObject *exc = tc_uvio_fetch_exception();
    PyObject *stack[4];
    if (exc == NULL) {
        exc = PyObject_CallFunction(PyExc_SystemError, "s", "client fetch failed without an error");
        if (exc == NULL) {
            fetch_end(f);
            return;
        }
    }
    stack[0] = exc;
    for (size_t i = 0; i < nargs && i < 3; i++) {
        stack[i + 1] = args[i];
    }
    f->state = F_DONE;
    if (call_conn(f, name, stack, nargs + 1) < 0) {
        tc_loop_report_exception(f->loop, "HTTP client: handling a failed fetch failed", NULL);
    }
    Py_DECREF(exc);
    fetch_end(f);
}

/* the fetch is over: drop what it holds (the stream is the conn's now) */
static void
fetch_end(cfetch *f)
{
    f->state = F_DONE;
    if (f->timer != NULL) {
        tc_loop_handle_cancel(f->timer);
        Py_CLEAR(f->timer);
    }
    Py_CLEAR(f->conn);
    Py_CLEAR(f->stream);
    Py_CLEAR(f->parser);
    Py_CLEAR(f->headers);
    Py_CLEAR(f->value);
    Py_CLEAR(f->exc);
    Py_CLEAR(f->bound_start);
    Py_CLEAR(f->req_dict);
    Py_CLEAR(f->defaults);
    Py_CLEAR(f->head);
}

static int start_read(cfetch *f);
static void step(cfetch *f);

static void
on_read_end(PyObject *owner, PyObject *value, PyObject *exc)
{
    cfetch *f = (cfetch *)owner;
    Py_XSETREF(f->value, Py_XNewRef(value));
    Py_XSETREF(f->exc, Py_XNewRef(exc));
    f->read_ended = 1;
    if (!f->stepping) {
        step(f);
    }
}

/* functools.partial / io.BytesIO / HTTPResponse (and its __init__) /
 * _RequestProxy, looked up once */
static int
kit_import(fetch_kit *kit)
{
    if (kit->partial == NULL && (kit->partial = tc_import_attr("functools", "partial")) == NULL) {
        return -1;
    }
    if (kit->BytesIO == NULL && (kit->BytesIO = tc_import_attr("io", "BytesIO")) == NULL) {
        return -1;
    }
    if (kit->HTTPResponse == NULL &&
        (kit->HTTPResponse = tc_import_attr("tornado.httpclient", "HTTPResponse")) == NULL) {
        return -1;
    }
    if (kit->response_init == NULL &&
        (kit->response_init = PyObject_GetAttr(kit->HTTPResponse, kit->names[N_dunder_init])) ==
            NULL) {
        return -1;
    }
    if (kit->RequestProxy == NULL &&
        (kit->RequestProxy = tc_import_attr("tornado.httpclient", "_RequestProxy")) == NULL) {
        return -1;
    }
    if (kit->kw_response == NULL &&
        (kit->kw_response = PyTuple_Pack(6, kit->names[N_reason], kit->names[N_headers],
                                         kit->names[N_request_time],
                                         kit->names[N_start_time], kit->names[N_buffer],
                                         kit->names[N_effective_url])) == NULL) {
        return -1;
    }
    return 0;
}

/* conn._timeout = the request timeout, as run() schedules it (add_timeout
 * of start_time + request_timeout: a call_later on the asyncio loop running
 * functools.partial(conn._on_timeout, "during request") through
 * IOLoop._run_callback).  0 or -1. */
static int
schedule_request_timeout(cfetch *f, double start_time)
{
    int r = PyObject_IsTrue(f->request_timeout);
    if (r <= 0) {
        return r;
    }
    double rt = PyFloat_AsDouble(f->request_timeout);
    if (rt == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (kit_import(f->kit) < 0) {
        return -1;
    }
    PyObject *io_loop = NULL, *run_cb = NULL, *on_timeout = NULL, *part = NULL, *h = NULL;
    if ((io_loop = PyObject_GetAttr(f->conn, NAME(f, io_loop))) == NULL ||
        (run_cb = PyObject_GetAttr(io_loop, NAME(f, u_run_callback))) == NULL ||
        (on_timeout = PyObject_GetAttr(f->conn, NAME(f, u_on_timeout))) == NULL ||
        (part = PyObject_CallFunctionObjArgs(f->kit->partial, on_timeout,
                                             NAME(f, v_during_request), NULL)) == NULL) {
        goto done;
    }
    double delay = start_time + rt - ioloop_time();
    h = tc_loop_call_later(f->loop, delay > 0 ? delay : 0, run_cb, &part, 1, f->context);
    if (h != NULL) {
        r = PyObject_SetAttr(f->conn, NAME(f, u_timeout), h);
    }
done:
    Py_XDECREF(io_loop);
    Py_XDECREF(run_cb);
    Py_XDECREF(on_timeout);
    Py_XDECREF(part);
    Py_XDECREF(h);
    return PyErr_Occurred() ? -1 : 0;
}

/* headers[name] = value unless present (when `only_if_missing`) */
static int
set_header(cfetch *f, PyObject *name, PyObject *value, int only_if_missing)
{
    if (only_if_missing) {
        int r = PySequence_Contains(f->headers, name);
        if (r != 0) {
            return r < 0 ? -1 : 0;
        }
    }
    return PyObject_SetItem(f->headers, name, value);
}

/* What run() does once connected, up to the request on the wire and the
 * head's read started.  0, 1 (handed to Python / over), -1 error. */
static int
connected(cfetch *f)
{
    PyObject *v, *start_time_o;
    int r;
    /* final_callback is cleared if we've hit our timeout */
    if ((v = PyObject_GetAttr(f->conn, NAME(f, final_callback))) == NULL) {
        return -1;
    }
    Py_DECREF(v);
    if (v == Py_None) {
        tc_stream_close(f->stream, NULL);
        return 1;
    }
    if (PyObject_SetAttr(f->conn, NAME(f, stream), (PyObject *)f->stream) < 0) {
        return -1;
    }
    if ((start_time_o = PyObject_GetAttr(f->conn, NAME(f, start_time))) == NULL) {
        return -1;
    }
    double start_time = PyFloat_AsDouble(start_time_o);
    Py_DECREF(start_time_o);
    if ((start_time == -1.0 && PyErr_Occurred()) || schedule_request_timeout(f, start_time) < 0) {
        return -1;
    }
    /* the headers run() adds, in its order */
    if (set_header(f, NAME(f, h_connection), NAME(f, v_close), 1) < 0 ||
        set_header(f, NAME(f, h_host), f->netloc, 1) < 0) {
        return -1;
    }
    if ((r = PyObject_IsTrue(f->user_agent)) < 0) {
        return -1;
    }
    if (r) {
        if (PyObject_SetItem(f->headers, NAME(f, h_user_agent), f->user_agent) < 0) {
            return -1;
        }
    }
    else {
        v = PyObject_CallMethodObjArgs(f->headers, NAME(f, get), NAME(f, h_user_agent), NULL);
        if (v == NULL) {
            return -1;
        }
        Py_DECREF(v);
        if (v == Py_None &&
            PyObject_SetItem(f->headers, NAME(f, h_user_agent), f->ua_default) < 0) {
            return -1;
        }
    }
    if (f->body != Py_None) {
        PyObject *cl = PyUnicode_FromFormat("%zd", PyBytes_GET_SIZE(f->body));
        if (cl == NULL) {
            return -1;
        }
        r = PyObject_SetItem(f->headers, NAME(f, h_content_length), cl);
        Py_DECREF(cl);
        if (r < 0) {
            return -1;
        }
    }
    if (PyUnicode_CompareWithASCIIString(f->method, "POST") == 0 &&
        set_header(f, NAME(f, h_content_type), NAME(f, v_form), 1) < 0) {
        return -1;
    }
    if (f->decompress &&
        PyObject_SetItem(f->headers, NAME(f, h_accept_encoding), NAME(f, v_gzip)) < 0) {
        return -1;
    }
    /* the request in one write; a Content-Length of the user's on a request
     * without a body, or lines C does not build, go through upstream's
     * write_headers */
    PyObject *data = NULL;
    if (f->body != Py_None || (r = PySequence_Contains(f->headers, NAME(f, h_content_length))) == 0) {
        data = tc_http_client_request_bytes(f->st, f->method, f->path, f->headers, f->body);
        if (data == NULL) {
            return -1;
        }
    }
    else if (r < 0) {
        return -1;
    }
    if (data == NULL || data == Py_None) {
        Py_XDECREF(data);
        PyObject *args[2] = {(PyObject *)f->stream, f->path};
        f->state = F_DONE;
        if (call_conn(f, NAME(f, c_send_slow), args, 2) < 0) {
            tc_loop_report_exception(f->loop, "HTTP client: handing the request over failed",
                                     NULL);
        }
        return 1;
    }
    r = tc_stream_write(f->stream, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
    Py_DECREF(data);
    if (r < 0) {
        return -1;
    }
    return start_read(f);
}

/* the head's read (state F_HEAD); 0 or -1 */
static int
start_read(cfetch *f)
{
    PyObject *v;
    Py_ssize_t mhs = 0;
    int head = PyUnicode_CompareWithASCIIString(f->method, "HEAD") == 0;
    if ((v = PyObject_GetAttr(f->conn, NAME(f, max_header_size))) == NULL) {
        return -1;
    }
    /* HTTP1ConnectionParameters: max_header_size or 65536 */
    int t = PyObject_IsTrue(v);
    if (t > 0) {
        mhs = PyNumber_AsSsize_t(v, PyExc_OverflowError);
    }
    Py_DECREF(v);
    if (t < 0 || (mhs == -1 && PyErr_Occurred())) {
        return -1;
    }
    if (t == 0) {
        mhs = 65536;
    }
    if ((f->parser = tc_http_cp_create(f->st, head)) == NULL) {
        return -1;
    }
    f->state = F_HEAD;
    return tc_http_cp_read_head(f->parser, f->stream, mhs, 1, on_read_end, (PyObject *)f);
}

/* 1 when this head must go to Python's read (a 1xx, a gzip body to
 * decompress, a redirect to follow), 0 not, -1 error */
static int
head_for_python(cfetch *f, long code, PyObject *headers)
{
    PyObject *v;
    if (code >= 100 && code < 200) {
        return 1;
    }
    if (f->decompress) {
        v = PyObject_CallMethodObjArgs(headers, NAME(f, get), NAME(f, h_content_encoding), NULL);
        if (v == NULL) {
            return -1;
        }
        int gz = 0;
        if (v != Py_None) {
            PyObject *low = PyObject_CallMethodNoArgs(v, NAME(f, lower));
            if (low == NULL) {
                Py_DECREF(v);
                return -1;
            }
            gz = PyObject_RichCompareBool(low, NAME(f, v_gzip), Py_EQ);
            Py_DECREF(low);
        }
        Py_DECREF(v);
        if (gz != 0) {
            return gz;
        }
    }
    if (f->max_redirects != NULL &&
        (code == 301 || code == 302 || code == 303 || code == 307 || code == 308)) {
        long most = PyLong_AsLong(f->max_redirects);
        if (most == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (most > 0) {
            v = PyObject_CallMethodObjArgs(headers, NAME(f, get), NAME(f, h_location), NULL);
            if (v == NULL) {
                return -1;
            }
            Py_DECREF(v);
            if (v != Py_None) {
                return 1;
            }
        }
    }
    return 0;
}

/* The head arrived (f->value the (start_line, headers) tuple).  0 reading
 * the body, 1 over or handed to Python, -1 error (head received). */
static int
head_done(cfetch *f)
{
    PyObject *t = f->value, *start_line, *headers, *code_o;
    int r;
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 2) {
        PyErr_SetString(PyExc_SystemError, "HTTP client: bad head");
        return -1;
    }
    Py_XSETREF(f->head, Py_NewRef(t));
    start_line = PyTuple_GET_ITEM(t, 0);
    headers = PyTuple_GET_ITEM(t, 1);
    code_o = PySequence_GetItem(start_line, 1);
    if (code_o == NULL) {
        return -1;
    }
    long code = PyLong_AsLong(code_o);
    if (code == -1 && PyErr_Occurred()) {
        Py_DECREF(code_o);
        return -1;
    }
    if ((r = head_for_python(f, code, headers)) != 0) {
        Py_DECREF(code_o);
        if (r < 0) {
            return -1;
        }
        PyObject *args[5] = {(PyObject *)f->stream, f->parser, start_line, headers, f->path};
        f->state = F_DONE;
        if (call_conn(f, NAME(f, c_after_head), args, 5) < 0) {
            tc_loop_report_exception(f->loop, "HTTP client: handing the response over failed",
                                     NULL);
        }
        return 1;
    }
    /* headers_received */
    PyObject *reason = PySequence_GetItem(start_line, 2);
    r = reason == NULL ? -1 : PyObject_SetAttr(f->conn, NAME(f, code), code_o);
    Py_DECREF(code_o);
    if (r < 0 || PyObject_SetAttr(f->conn, NAME(f, reason), reason) < 0 ||
        PyObject_SetAttr(f->conn, NAME(f, headers), headers) < 0) {
        Py_XDECREF(reason);
        return -1;
    }
    Py_DECREF(reason);
    /* the framing, with HTTP1Connection's _max_body_size (the stream's
     * max_buffer_size when the client has none) */
    PyObject *mbs = PyObject_GetAttr(f->conn, NAME(f, max_body_size));
    if (mbs == NULL) {
        return -1;
    }
    if (mbs == Py_None) {
        Py_DECREF(mbs);
        if ((mbs = PyObject_GetAttr((PyObject *)f->stream, NAME(f, max_buffer_size))) == NULL) {
            return -1;
        }
    }
    PyObject *fr = tc_http_cp_framing(f->parser, mbs);
    Py_DECREF(mbs);
    if (fr == NULL) {
        return -1;
    }
    PyObject *kind = PyTuple_GET_ITEM(fr, 0), *rewrite = PyTuple_GET_ITEM(fr, 2);
    if (rewrite != Py_None && PyObject_SetItem(headers, NAME(f, h_content_length), rewrite) < 0) {
        Py_DECREF(fr);
        return -1;
    }
    int none = PyUnicode_CompareWithASCIIString(kind, "none") == 0;
    Py_DECREF(fr);
    if (none) {
        Py_XSETREF(f->value, PyBytes_FromStringAndSize(NULL, 0));
        if (f->value == NULL) {
            return -1;
        }
        f->read_ended = 1;
        f->state = F_BODY;
        return 0;
    }
    Py_CLEAR(f->value);
    f->state = F_BODY;
    return tc_http_cp_read_body(f->parser, f->stream, on_read_end, (PyObject *)f);
}

/* HTTPResponse(orig, code, reason=, headers=, request_time=, start_time=,
 * buffer=, effective_url=f->url) for finish_response (every argument
 * borrowed; headers, request_time, start_time and buffer not None).  While
 * HTTPResponse's __init__, __new__ and __setattr__ are upstream's (the one
 * looked up first, object's) and the response is a 2xx one with a reason:
 * a new instance given the attributes that __init__ sets, in its order,
 * without running it; otherwise the class is called.  New reference or
 * NULL. */
static PyObject *
new_response(cfetch *f, PyObject *orig, PyObject *code, PyObject *reason, PyObject *headers,
             PyObject *rtime, PyObject *wall, PyObject *buffer)
{
    fetch_kit *kit = f->kit;
    PyTypeObject *cls = (PyTypeObject *)kit->HTTPResponse;
    PyObject *init, *request = NULL, *empty = NULL, *info = NULL, *resp = NULL;
    long c = PyLong_CheckExact(code) ? PyLong_AsLong(code) : 0;
    int r;
    if (c == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((init = PyObject_GetAttr((PyObject *)cls, NAME(f, dunder_init))) == NULL) {
        return NULL;
    }
    Py_DECREF(init); /* only compared: the class holds it */
    if (init != kit->response_init || !PyType_Check(cls) ||
        cls->tp_new != PyBaseObject_Type.tp_new ||
        cls->tp_setattro != PyBaseObject_Type.tp_setattro || c < 200 || c >= 300 ||
        !PyUnicode_CheckExact(reason) || PyUnicode_GET_LENGTH(reason) == 0) {
        PyObject *args[8] = {orig, code, reason, headers, rtime, wall, buffer, f->url};
        return PyObject_Vectorcall(kit->HTTPResponse, args, 2, kit->kw_response);
    }
    /* self.request: the proxied request of a _RequestProxy */
    if ((r = PyObject_IsInstance(orig, kit->RequestProxy)) < 0) {
        return NULL;
    }
    request = r ? PyObject_GetAttr(orig, NAME(f, request)) : Py_NewRef(orig);
    if (request == NULL || (empty = PyTuple_New(0)) == NULL || (info = PyDict_New()) == NULL ||
        (resp = PyBaseObject_Type.tp_new(cls, empty, NULL)) == NULL) {
        goto fail;
    }
    if (PyObject_SetAttr(resp, NAME(f, request), request) < 0 ||
        PyObject_SetAttr(resp, NAME(f, code), code) < 0 ||
        PyObject_SetAttr(resp, NAME(f, reason), reason) < 0 ||
        PyObject_SetAttr(resp, NAME(f, headers), headers) < 0 ||
        PyObject_SetAttr(resp, NAME(f, buffer), buffer) < 0 ||
        PyObject_SetAttr(resp, NAME(f, u_body), Py_None) < 0 ||
        PyObject_SetAttr(resp, NAME(f, effective_url), f->url) < 0 ||
        PyObject_SetAttr(resp, NAME(f, u_error_is_response_code), Py_False) < 0 ||
        PyObject_SetAttr(resp, NAME(f, error), Py_None) < 0 ||
        PyObject_SetAttr(resp, NAME(f, start_time), wall) < 0 ||
        PyObject_SetAttr(resp, NAME(f, request_time), rtime) < 0 ||
        PyObject_SetAttr(resp, NAME(f, time_info), info) < 0) {
        goto fail;
    }
    Py_DECREF(request);
    Py_DECREF(empty);
    Py_DECREF(info);
    return resp;
fail:
    Py_XDECREF(request);
    Py_XDECREF(empty);
    Py_XDECREF(info);
    Py_XDECREF(resp);
    return NULL;
}

/* What HTTPClientConnection.finish() does for the fetch's response (not a
 * redirect, no streaming_callback), with _HTTPConnection's
 * _remove_timeout, _run_callback, _release and _on_end_request (a pool's
 * connection's own _on_end_request is called) and
 * BaseAsyncIOLoop's remove_timeout and add_callback inlined (the caller
 * checked that they are those): the HTTPResponse, the release, the final
 * callback from the IOLoop, the stream closed.  0 or -1. */
static int
finish_response(cfetch *f)
{
    fetch_kit *kit = f->kit;
    PyObject *conn = f->conn, *t, *orig = NULL, *code = NULL, *reason = NULL, *headers = NULL,
             *start_time = NULL, *wall = NULL, *rtime = NULL, *buffer = NULL, *resp = NULL,
             *cb = NULL, *io_loop = NULL, *run_cb = NULL, *part = NULL, *h = NULL, *r;
    int rc = -1;
    if (kit_import(kit) < 0) {
        return -1;
    }
    /* data = bytes(self.chunks): conn.chunks is the body's bytes object */
    /* _remove_timeout() */
    if ((t = PyObject_GetAttr(conn, NAME(f, u_timeout))) == NULL) {
        return -1;
    }
    if (t != Py_None) {
        r = PyObject_CallMethodNoArgs(t, NAME(f, cancel));
        Py_XDECREF(r);
        if (r == NULL || PyObject_SetAttr(conn, NAME(f, u_timeout), Py_None) < 0) {
            Py_DECREF(t);
            return -1;
        }
    }
    Py_DECREF(t);
    /* getattr(self.request, "original_request", self.request) */
    orig = PyDict_GetItemWithError(f->req_dict, NAME(f, original_request)); /* borrowed */
    if (orig == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (orig == NULL) {
        if ((orig = PyObject_GetAttr(conn, NAME(f, request))) == NULL) {
            return -1;
        }
    }
    else if (orig == Py_None && f->defaults != Py_None) {
        orig = PyDict_GetItemWithError(f->defaults, NAME(f, original_request));
        if (orig == NULL && PyErr_Occurred()) {
            return -1;
        }
        orig = Py_NewRef(orig != NULL ? orig : Py_None);
    }
    else {
        Py_INCREF(orig);
    }
    if ((code = PyObject_GetAttr(conn, NAME(f, code))) == NULL ||
        (reason = PyObject_GetAttr(conn, NAME(f, reason))) == NULL ||
        (headers = PyObject_GetAttr(conn, NAME(f, headers))) == NULL ||
        (start_time = PyObject_GetAttr(conn, NAME(f, start_time))) == NULL ||
        (wall = PyObject_GetAttr(conn, NAME(f, start_wall_time))) == NULL) {
        goto done;
    }
    double st = PyFloat_AsDouble(start_time);
    if ((st == -1.0 && PyErr_Occurred()) ||
        (rtime = PyFloat_FromDouble(ioloop_time() - st)) == NULL ||
        (buffer = PyObject_CallOneArg(kit->BytesIO, f->value)) == NULL) {
        goto done;
    }
    if ((resp = new_response(f, orig, code, reason, headers, rtime, wall, buffer)) == NULL) {
        goto done;
    }
    /* _run_callback(response): _release(), then the final callback */
    if ((cb = PyObject_GetAttr(conn, NAME(f, release_callback))) == NULL) {
        goto done;
    }
    if (cb != Py_None) {
        if (PyObject_SetAttr(conn, NAME(f, release_callback), Py_None) < 0) {
            goto done;
        }
        r = PyObject_CallNoArgs(cb);
        if (r == NULL) {
            goto done;
        }
        Py_DECREF(r);
    }
    Py_CLEAR(cb);
    if ((cb = PyObject_GetAttr(conn, NAME(f, final_callback))) == NULL) {
        goto done;
    }
    if (cb != Py_None) {
        if (PyObject_SetAttr(conn, NAME(f, final_callback), Py_None) < 0 ||
            (io_loop = PyObject_GetAttr(conn, NAME(f, io_loop))) == NULL ||
            (run_cb = PyObject_GetAttr(io_loop, NAME(f, u_run_callback))) == NULL ||
            (part = PyObject_CallFunctionObjArgs(kit->partial, cb, resp, NULL)) == NULL) {
            goto done;
        }
        /* add_callback from the loop's own thread: call_soon; a closed
         * loop's RuntimeError is swallowed as add_callback swallows it */
        h = tc_loop_call_soon(f->loop, run_cb, &part, 1, NULL);
        if (h == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_RuntimeError)) {
                goto done;
            }
            PyErr_Clear();
        }
    }
    /* _on_end_request(): self.stream.close(); a pool's connection class
     * keeps or closes the stream in its own (tornado_c/_client_pool.py) */
    r = f->pooled ? PyObject_CallMethodNoArgs(conn, NAME(f, u_on_end_request))
                  : PyObject_CallMethodNoArgs((PyObject *)f->stream, NAME(f, close));
    if (r == NULL) {
        goto done;
    }
    Py_DECREF(r);
    rc = 0;
done:
    Py_XDECREF(orig);
    Py_XDECREF(code);
    Py_XDECREF(reason);
    Py_XDECREF(headers);
    Py_XDECREF(start_time);
    Py_XDECREF(wall);
    Py_XDECREF(rtime);
    Py_XDECREF(buffer);
    Py_XDECREF(resp);
    Py_XDECREF(cb);
    Py_XDECREF(io_loop);
    Py_XDECREF(run_cb);
    Py_XDECREF(part);
    Py_XDECREF(h);
    return rc;
}

/* For a pooled connection, what its _reusable() asks of the HTTP1Connection
 * it does not have: conn._c_facts = (the response's HTTP version, the
 * request fully written); and the bytes prefetched with the head are the
 * stream's again before it is judged.  0 or -1. */
static int
pool_facts(cfetch *f)
{
    PyObject *version, *facts;
    int r;
    if (tc_http_cp_release(f->parser) < 0) {
        return -1;
    }
    version = PySequence_GetItem(PyTuple_GET_ITEM(f->head, 0), 0);
    if (version == NULL) {
        return -1;
    }
    facts = Py_BuildValue("(NO)", version,
                          tc_stream_write_pending(f->stream) == 0 ? Py_True : Py_False);
    if (facts == NULL) {
        return -1;
    }
    r = PyObject_SetAttr(f->conn, NAME(f, c_facts), facts);
    Py_DECREF(facts);
    return r;
}

/* The body is complete (f->value): conn.chunks = it; conn.finish(). */
static void
body_done(cfetch *f)
{
    PyObject *args[3];
    if (PyObject_SetAttr(f->conn, NAME(f, chunks), f->value) < 0 ||
        (f->pooled && pool_facts(f) < 0)) {
        goto raised;
    }
    f->state = F_DONE;
    if (f->finish_in_c ? finish_response(f) < 0 : call_conn(f, NAME(f, finish), NULL, 0) < 0) {
        /* _read_message_inner's logging context, then its finally */
        args[0] = f->parser;
        args[1] = Py_True;
        args[2] = Py_True;
        fail_with(f, NAME(f, c_read_failed), args, 3);
        return;
    }
    /* the connection closes (_disconnect_on_finish); prefetched bytes are
     * the stream's */
    if (tc_http_cp_release(f->parser) < 0) {
        tc_loop_report_exception(f->loop, "HTTP client: releasing the parser failed", NULL);
    }
    /* a pooled stream is the pool's now (its _on_end_request kept or closed it) */
    if (!f->pooled && !tc_stream_closed(f->stream)) {
        PyObject *r = PyObject_CallMethodNoArgs((PyObject *)f->stream, NAME(f, close));
        if (r == NULL) {
            tc_loop_report_exception(f->loop, "HTTP client: closing the stream failed", NULL);
        }
        Py_XDECREF(r);
    }
    fetch_end(f);
    return;
raised:
    args[0] = f->parser;
    args[1] = Py_True;
    args[2] = Py_False;
    fail_with(f, NAME(f, c_read_failed), args, 3);
}

/* Run what is due after a read ended, in the fetch's Context. */
static void
step(cfetch *f)
{
    int entered = 0;
    Py_INCREF(f);
    if (PyContext_Enter(f->context) == 0) {
        entered = 1;
    }
    else {
        PyErr_Clear(); /* already in it (called from inside a step) */
    }
    f->stepping = 1;
    while (f->read_ended && f->state != F_DONE) {
        f->read_ended = 0;
        if (f->exc != NULL) {
            PyObject *exc = f->exc, *args[3];
            f->exc = NULL;
            args[0] = f->parser;
            args[1] = f->state == F_BODY ? Py_True : Py_False;
            args[2] = Py_False;
            set_exc(exc); /* steals */
            fail_with(f, NAME(f, c_read_failed), args, 3);
            break;
        }
        if (f->state == F_HEAD) {
            int r = head_done(f);
            if (r < 0) {
                PyObject *args[3] = {f->parser, Py_True, Py_False};
                fail_with(f, NAME(f, c_read_failed), args, 3);
                break;
            }
            if (r > 0) {
                fetch_end(f);
                break;
            }
        }
        else if (f->state == F_BODY) {
            body_done(f);
        }
    }
    f->stepping = 0;
    if (PyErr_Occurred()) {
        tc_loop_report_exception(f->loop, "HTTP client fetch failed", NULL);
    }
    if (entered && PyContext_Exit(f->context) < 0) {
        PyErr_Clear();
    }
    Py_DECREF(f);
}

/* the connect timer fired: what TCPClient's timeout does */
static PyObject *
fetch_connect_timeout(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    cfetch *f = (cfetch *)self;
    Py_CLEAR(f->timer);
    if (f->state != F_CONNECTING) {
        Py_RETURN_NONE;
    }
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &f->addr.sin_addr, ip, sizeof(ip));
    PyErr_Format(PyExc_TimeoutError, "Timeout while connecting to %s:%u", ip,
                 (unsigned)ntohs(f->addr.sin_port));
    tc_stream_close(f->stream, NULL);
    fail_with(f, NAME(f, c_connect_failed), NULL, 0);
    Py_RETURN_NONE;
}

static PyMethodDef connect_timeout_def = {"_connect_timeout", fetch_connect_timeout, METH_NOARGS,
                                          NULL};

/* Set what the stream's connect future raises when the connect failed
 * with err (borrowed or NULL) as the current exception. */
static void
set_closed_error(cfetch *f, PyObject *err)
{
    PyObject *exc = tc_stream_closed_error(f->st, err);
    if (exc != NULL) {
        set_exc(exc); /* steals */
    }
}

/* Connected (or given a pooled stream): run()'s steps up to the head's
 * read, in the fetch's Context (entered by the caller). */
static void
after_connect(cfetch *f)
{
    f->stepping = 1;
    int r = connected(f);
    f->stepping = 0;
    if (r < 0) {
        if (f->state == F_HEAD) {
            PyObject *args[3] = {f->parser, Py_False, Py_False};
            fail_with(f, NAME(f, c_read_failed), args, 3);
        }
        else {
            fail_with(f, NAME(f, c_raised), NULL, 0);
        }
    }
    else if (r > 0) {
        fetch_end(f);
    }
    else if (f->read_ended) {
        step(f);
    }
}

static void
on_connected(PyObject *owner, tc_stream *s, int status)
{
    cfetch *f = (cfetch *)owner;
    (void)s;
    if (f->state != F_CONNECTING) {
        return; /* timed out */
    }
    if (status == UV_ECANCELED && tc_loop_is_closed(f->loop)) {
        fetch_end(f); /* the loop went away; upstream's Task just stays pending */
        return;
    }
    Py_INCREF(f);
    if (PyContext_Enter(f->context) < 0) {
        tc_loop_report_exception(f->loop, "HTTP client: entering the fetch's context failed",
                                 NULL);
        Py_DECREF(f);
        return;
    }
    if (f->timer != NULL) {
        tc_loop_handle_cancel(f->timer);
        Py_CLEAR(f->timer);
    }
    if (status != 0) {
        /* StreamClosedError(real_error=stream.error), as the connect future
         * raises it */
        PyObject *err = PyObject_GetAttr((PyObject *)f->stream, NAME(f, error));
        if (err != NULL) {
            set_closed_error(f, err == Py_None ? NULL : err);
            Py_DECREF(err);
        }
        fail_with(f, NAME(f, c_connect_failed), NULL, 0);
    }
    else {
        after_connect(f);
    }
    if (PyErr_Occurred()) {
        tc_loop_report_exception(f->loop, "HTTP client fetch failed", NULL);
    }
    if (PyContext_Exit(f->context) < 0) {
        PyErr_Clear();
    }
    Py_DECREF(f);
}

/* One loop iteration after fetch(): the socket and the connect. */
static PyObject *
fetch_start(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    cfetch *f = (cfetch *)self;
    PyObject *v = NULL, *mbs = NULL;
    Py_CLEAR(f->bound_start);
    if (f->state != F_SCHEDULED) {
        Py_RETURN_NONE;
    }
    /* min(connect_timeout, request_timeout), whichever is set, else none */
    PyObject *ct = f->connect_timeout, *rt = f->request_timeout, *timeout = NULL;
    int cs = PyObject_IsTrue(ct), rs = PyObject_IsTrue(rt);
    if (cs < 0 || rs < 0) {
        goto raised;
    }
    if (cs && rs) {
        int lt = PyObject_RichCompareBool(rt, ct, Py_LT);
        if (lt < 0) {
            goto raised;
        }
        timeout = lt ? rt : ct;
    }
    else {
        timeout = cs ? ct : (rs ? rt : NULL);
    }
    double delay = -1;
    if (timeout != NULL) {
        double t = PyFloat_AsDouble(timeout);
        if ((t == -1.0 && PyErr_Occurred()) ||
            (v = PyObject_GetAttr(f->conn, NAME(f, start_time))) == NULL) {
            goto raised;
        }
        double start = PyFloat_AsDouble(v);
        Py_CLEAR(v);
        if (start == -1.0 && PyErr_Occurred()) {
            goto raised;
        }
        delay = start + t - ioloop_time();
        if (delay < 0) {
            delay = 0;
        }
    }
    if (f->pooled) {
        /* what the pool's connector gives for this request's key (host
         * and port as run() passes them to connect()): an idle stream (then
         * no connect, as upstream's connect() returns it), or None */
        Py_ssize_t colon = PyUnicode_FindChar(f->netloc, ':', 0,
                                              PyUnicode_GET_LENGTH(f->netloc), 1);
        PyObject *host = colon == -2 ? NULL
                         : PyUnicode_Substring(f->netloc, 0,
                                               colon < 0 ? PyUnicode_GET_LENGTH(f->netloc)
                                                         : colon);
        PyObject *port = host ? PyLong_FromLong(ntohs(f->addr.sin_port)) : NULL;
        v = port ? PyObject_CallMethodObjArgs(f->conn, NAME(f, c_take), host, port, NULL)
                 : NULL;
        Py_XDECREF(host);
        Py_XDECREF(port);
        if (v == NULL) {
            goto raised;
        }
        if (v != Py_None) {
            if (!tc_stream_check(f->st, v)) {
                Py_DECREF(v);
                PyErr_SetString(PyExc_TypeError, "the pool gave a stream that is not a C one");
                goto raised;
            }
            f->stream = (tc_stream *)v;
            f->state = F_CONNECTING;
            after_connect(f);
            Py_RETURN_NONE;
        }
        Py_CLEAR(v);
    }
    if ((mbs = PyObject_GetAttr(f->conn, NAME(f, max_buffer_size))) == NULL) {
        goto raised;
    }
    Py_ssize_t max_buffer = mbs == Py_None ? 0 : PyNumber_AsSsize_t(mbs, PyExc_OverflowError);
    Py_CLEAR(mbs);
    if (max_buffer == -1 && PyErr_Occurred()) {
        goto raised;
    }
    /* socket.socket(AF_INET) (its OSError is run()'s), with the TCP_NODELAY
     * that the connection sets */
    f->stream = tc_stream_new_tcp(f->st, f->loop, AF_INET, 1, NULL, max_buffer, 0);
    if (f->stream == NULL) {
        goto raised;
    }
    if (tc_stream_connect(f->stream, (const struct sockaddr *)&f->addr, on_connected,
                          (PyObject *)f) < 0) {
        /* socket.connect()'s error: the stream closes with it and the
         * connect future raises StreamClosedError(real_error=it) */
        PyObject *err = tc_uvio_fetch_exception();
        tc_stream_close(f->stream, err);
        set_closed_error(f, err);
        Py_XDECREF(err);
        fail_with(f, NAME(f, c_connect_failed), NULL, 0);
        Py_RETURN_NONE;
    }
    f->state = F_CONNECTING;
    if (delay >= 0) {
        PyObject *cb = PyCFunction_New(&connect_timeout_def, self);
        if (cb == NULL) {
            goto report;
        }
        f->timer = tc_loop_call_later(f->loop, delay, cb, NULL, 0, f->context);
        Py_DECREF(cb);
        if (f->timer == NULL) {
            goto report;
        }
    }
    Py_RETURN_NONE;
raised:
    fail_with(f, NAME(f, c_raised), NULL, 0);
    Py_RETURN_NONE;
report:
    /* the connect is on its way: it will end the fetch */
    tc_loop_report_exception(f->loop, "HTTP client: the connect timeout failed", NULL);
    Py_RETURN_NONE;
}

static PyMethodDef start_def = {"_start", fetch_start, METH_NOARGS, NULL};

/* ------------------------------------------------------------ the type */

static int
cf_traverse(PyObject *self, visitproc visit, void *arg)
{
    cfetch *f = (cfetch *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(f->loop);
    Py_VISIT(f->conn);
    Py_VISIT(f->context);
    Py_VISIT(f->headers);
    Py_VISIT(f->body);
    Py_VISIT(f->user_agent);
    Py_VISIT(f->connect_timeout);
    Py_VISIT(f->request_timeout);
    Py_VISIT(f->max_redirects);
    Py_VISIT(f->req_dict);
    Py_VISIT(f->defaults);
    Py_VISIT(f->url);
    Py_VISIT(f->bound_start);
    Py_VISIT(f->stream);
    Py_VISIT(f->parser);
    Py_VISIT(f->timer);
    Py_VISIT(f->value);
    Py_VISIT(f->exc);
    Py_VISIT(f->head);
    return 0;
}

static int
cf_clear(PyObject *self)
{
    cfetch *f = (cfetch *)self;
    Py_CLEAR(f->loop);
    Py_CLEAR(f->conn);
    Py_CLEAR(f->context);
    Py_CLEAR(f->headers);
    Py_CLEAR(f->method);
    Py_CLEAR(f->path);
    Py_CLEAR(f->netloc);
    Py_CLEAR(f->body);
    Py_CLEAR(f->user_agent);
    Py_CLEAR(f->ua_default);
    Py_CLEAR(f->connect_timeout);
    Py_CLEAR(f->request_timeout);
    Py_CLEAR(f->max_redirects);
    Py_CLEAR(f->req_dict);
    Py_CLEAR(f->defaults);
    Py_CLEAR(f->url);
    Py_CLEAR(f->bound_start);
    Py_CLEAR(f->stream);
    Py_CLEAR(f->parser);
    Py_CLEAR(f->timer);
    Py_CLEAR(f->value);
    Py_CLEAR(f->exc);
    Py_CLEAR(f->head);
    return 0;
}

static void
cf_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    cf_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot cf_slots[] = {
    {Py_tp_dealloc, cf_dealloc},
    {Py_tp_traverse, cf_traverse},
    {Py_tp_clear, cf_clear},
    {Py_tp_doc, "One SimpleAsyncHTTPClient fetch run in C (csrc/http/client_fetch.c)."},
    {0, NULL},
};

static PyType_Spec cf_spec = {
    .name = "tornado_c._core._HTTPClientFetch",
    .basicsize = sizeof(cfetch),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = cf_slots,
};

static PyObject *
http_client_fetch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_state *st = PyModule_GetState(module);
    tc_http_state *hs = st->http;
    cfetch *f;
    int r;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "http_client_fetch(conn, request_dict, defaults, loop, "
                                         "user_agent, finish_in_c, pooled)");
        return NULL;
    }
    PyObject *d = args[1], *defaults = args[2];
    if (!PyDict_Check(d) || (defaults != Py_None && !PyDict_Check(defaults)) ||
        !tc_loop_check(st, args[3])) {
        Py_RETURN_FALSE;
    }
    f = (cfetch *)hs->ClientFetchType->tp_alloc(hs->ClientFetchType, 0);
    if (f == NULL) {
        return NULL;
    }
    f->st = st;
    f->kit = hs->fetch_kit;
    r = tc_http_fetch_read_options(f, d, defaults);
    if (r <= 0) {
        Py_DECREF(f);
        if (r < 0) {
            return NULL;
        }
        Py_RETURN_FALSE;
    }
    f->loop = (tc_loop *)Py_NewRef(args[3]);
    f->conn = Py_NewRef(args[0]);
    f->ua_default = Py_NewRef(args[4]);
    f->req_dict = Py_NewRef(d);
    f->defaults = Py_NewRef(defaults);
    if ((r = PyObject_IsTrue(args[5])) < 0) {
        Py_DECREF(f);
        return NULL;
    }
    f->finish_in_c = (char)r;
    if ((r = PyObject_IsTrue(args[6])) < 0) {
        Py_DECREF(f);
        return NULL;
    }
    f->pooled = (char)r;
    f->state = F_SCHEDULED;
    /* the Task upstream makes copies the Context here; its first step runs
     * from call_soon */
    if ((f->context = PyContext_CopyCurrent()) == NULL ||
        (f->bound_start = PyCFunction_New(&start_def, (PyObject *)f)) == NULL) {
        Py_DECREF(f);
        return NULL;
    }
    PyObject *h = tc_loop_call_soon(f->loop, f->bound_start, NULL, 0, f->context);
    Py_DECREF(f); /* the handle holds the bound method, which holds f */
    if (h == NULL) {
        return NULL;
    }
    Py_DECREF(h);
    Py_RETURN_TRUE;
}

static PyMethodDef fetch_functions[] = {
    {"http_client_fetch", (PyCFunction)(void (*)(void))http_client_fetch, METH_FASTCALL,
     "http_client_fetch(conn, request_dict, defaults, loop, user_agent, finish_in_c, pooled) -> "
     "True "
     "if the "
     "fetch runs in C (csrc/http/client_fetch.c), False if it is not one for that path."},
    {NULL, NULL, 0, NULL},
};

int
tc_http_client_fetch_exec(PyObject *module, struct tc_state *st)
{
    tc_http_state *hs = st->http;
    fetch_kit *kit = PyMem_Calloc(1, sizeof(*kit));
    if (kit == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    hs->fetch_kit = kit;
    for (int i = 0; i < N__COUNT; i++) {
        if ((kit->names[i] = PyUnicode_InternFromString(fetch_name_text[i])) == NULL) {
            return -1;
        }
    }
    if (tc_add_type(module, &cf_spec, NULL, &hs->ClientFetchType) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, fetch_functions);
}

int
tc_http_client_fetch_traverse(struct tc_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->http->ClientFetchType);
    if (st->http->fetch_kit != NULL) {
        Py_VISIT(st->http->fetch_kit->partial);
        Py_VISIT(st->http->fetch_kit->BytesIO);
        Py_VISIT(st->http->fetch_kit->HTTPResponse);
        Py_VISIT(st->http->fetch_kit->response_init);
        Py_VISIT(st->http->fetch_kit->RequestProxy);
    }
    return 0;
}

void
tc_http_client_fetch_clear(struct tc_state *st)
{
    fetch_kit *kit = st->http->fetch_kit;
    Py_CLEAR(st->http->ClientFetchType);
    if (kit != NULL) {
        for (int i = 0; i < N__COUNT; i++) {
            Py_CLEAR(kit->names[i]);
        }
        Py_CLEAR(kit->partial);
        Py_CLEAR(kit->BytesIO);
        Py_CLEAR(kit->HTTPResponse);
        Py_CLEAR(kit->kw_response);
        Py_CLEAR(kit->response_init);
        Py_CLEAR(kit->RequestProxy);
        PyMem_Free(kit);
        st->http->fetch_kit = NULL;
    }
}
