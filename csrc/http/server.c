/* http component: the C HTTP/1.1 server connection, HTTPServerConnection:
 * the connection's state machine.
 *
 * One HTTPServerConnection per accepted connection does what upstream's
 * HTTP1ServerConnection and the server side of HTTP1Connection do while
 * reading: it is the C consumer of the connection's IOStream (stream.h:
 * tc_stream_from_fd on the accepted fd, input taken with tc_stream_peek /
 * tc_stream_consume, reading paused while a pipelined request waits for the
 * response before it), feeds the bytes to the request parser (parser.h),
 * builds RequestStartLine / HTTPHeaders, calls the delegate (start_request,
 * headers_received, data_received, finish, on_connection_close; awaitables
 * awaited from the loop), runs the idle (header) and body timeouts, and
 * goes on to the next request or closes.  Responses are written corked
 * (tc_stream_set_cork): the output of one loop iteration leaves in one
 * try-write.
 *
 * The request's side, HTTPConnection (write_headers / write / finish,
 * detach: request.connection), is connection.c; the type's Python face
 * (construction, close(), GC) and the state's exec / traverse / clear are
 * server_py.c; the objects and what these files share are declared in
 * http/internal.h.
 *
 * The sequence of delegate calls, the log lines and the keep-alive decisions
 * follow tornado 6.6's HTTP1Connection._read_message / HTTP1ServerConnection.
 */
#include "http/internal.h"
#include "web/web.h"

static void sc_process(sconn *sc);

/* ----------------------------------------------------- small helpers */

static PyObject *
call_method0(PyObject *obj, const char *name)
{
    return PyObject_CallMethod(obj, name, NULL);
}

/* Log an exception from a delegate call as upstream's _ExceptionLoggingContext:
 * app_log.error("Uncaught exception", exc_info=True).  Returns 1 if it was an
 * HTTPInputError (left set), else 0 (logged and cleared). */
static int
log_delegate_exception(tc_http_state *hs)
{
    if (PyErr_ExceptionMatches(hs->HTTPInputError)) {
        return 1;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    PyObject *exc_info = PyTuple_Pack(3, type ? type : Py_None, value ? value : Py_None,
                                      tb ? tb : Py_None);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    if (exc_info == NULL) {
        PyErr_WriteUnraisable(NULL);
        return 0;
    }
    PyObject *kw = Py_BuildValue("{s:O}", "exc_info", exc_info);
    Py_DECREF(exc_info);
    PyObject *args = Py_BuildValue("(s)", "Uncaught exception");
    PyObject *meth = PyObject_GetAttrString(hs->app_log, "error");
    PyObject *r = NULL;
    if (kw && args && meth) {
        r = PyObject_Call(meth, args, kw);
    }
    Py_XDECREF(kw);
    Py_XDECREF(args);
    Py_XDECREF(meth);
    if (r == NULL) {
        PyErr_WriteUnraisable(NULL);
    }
    Py_XDECREF(r);
    return 0;
}

static void
report(sconn *sc, const char *what)
{
    tc_loop_report_exception(sc->loop, what, NULL);
}

/* Resolve a future with None unless it is done (cancelled, or resolved
 * by someone else).  0, or -1 with an exception set. */
int
tc_http_sc_future_set_none(sconn *sc, PyObject *fut)
{
    return tc_loop_future_set_result(sc->loop, fut, Py_None, TC_FUTURE_UNLESS_DONE);
}

/* ------------------------------------------------------------- timers */

/* The connection's timers run on its loop (always a tornado_c loop, see
 * sc_new): loop.call_later(delay, sc.<meth>) through the loop's C API,
 * whose clock (tc_loop_time) the deadlines below are computed on. */
static PyObject *
call_later(sconn *sc, double delay, const char *meth)
{
    PyObject *cb = PyObject_GetAttrString((PyObject *)sc, meth);
    if (cb == NULL) {
        return NULL;
    }
    PyObject *h = tc_loop_call_later(sc->loop, delay, cb, NULL, 0, NULL);
    Py_DECREF(cb);
    return h;
}

void
tc_http_sc_start_head_wait(sconn *sc)
{
    sc->waiting_head = 1;
    if (sc->idle_timeout < 0) {
        return;
    }
    sc->head_wait_start = tc_loop_time(sc->loop);
    if (tc_http_idle_start(sc) < 0) {
        report(sc, "HTTP server: scheduling the idle timeout failed");
    }
}

/* The idle list's timer found sc's head wait timed out (idle.c). */
TC_INTERNAL void
tc_http_sc_idle_expired(sconn *sc)
{
    if (sc->closed || sc->detached || !sc->waiting_head) {
        return;
    }
    /* upstream: TimeoutError from with_timeout -> self.close(), quietly */
    tc_http_sc_close(sc);
}

PyObject *
tc_http_sc_body_timer(sconn *sc, PyObject *Py_UNUSED(ignored))
{
    Py_CLEAR(sc->body_timer);
    if (sc->closed || sc->detached || sc->req == NULL || sc->req->read_finished) {
        Py_RETURN_NONE;
    }
    PyObject *r = PyObject_CallMethod(sc->hs->gen_log, "info", "sO",
                                      "Timeout reading body from %s", sc->context);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    tc_http_sc_close(sc);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------- delegate */

/* delegate.on_connection_close() once, if headers_received was called and
 * the message was not finished. */
static void
rc_delegate_close(rconn *rc, tc_http_state *hs)
{
    if (rc->head_delivered && !rc->delegate_closed && rc->delegate != NULL) {
        rc->delegate_closed = 1;
        PyObject *r = call_method0(rc->delegate, "on_connection_close");
        if (r == NULL) {
            if (log_delegate_exception(hs)) {
                PyErr_Clear();
            }
        }
        Py_XDECREF(r);
    }
}

/* An exception escaped a delegate call (set).  HTTPInputError: the 400 path;
 * anything else: logged "Uncaught exception" and the connection is closed
 * (upstream's _QuietException). */
static void
sc_delegate_failed(sconn *sc)
{
    tc_http_state *hs = sc->hs;
    if (log_delegate_exception(hs)) {
        /* HTTPInputError */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        PyObject *r = PyObject_CallMethod(hs->gen_log, "info", "sOO",
                                          "Malformed HTTP message from %s: %s",
                                          sc->context, value ? value : Py_None);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        if (r == NULL) {
            report(sc, "HTTP server: logging failed");
        }
        Py_XDECREF(r);
        if (sc->req) {
            rc_delegate_close(sc->req, hs);
        }
        if (!sc->closed) {
            static const char bad[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
            if (tc_http_sc_write(sc, bad, sizeof(bad) - 1) < 0) {
                PyErr_Clear();
            }
            if (tc_http_sc_pending(sc)) {
                sc->close_after_drain = 1;
                sc->awaiting = 1; /* stop parsing */
                return;
            }
        }
        tc_http_sc_close(sc);
        return;
    }
    if (sc->req) {
        rc_delegate_close(sc->req, hs);
    }
    tc_http_sc_close(sc);
}

/* The delegate returned `res` (new ref): None, or an awaitable to wait for. */
static int
sc_maybe_await(sconn *sc, PyObject *res)
{
    if (res == Py_None) {
        Py_DECREF(res);
        return 0;
    }
    PyObject *fut = PyObject_CallOneArg(sc->hs->convert_yielded, res);
    Py_DECREF(res);
    if (fut == NULL) {
        return -1;
    }
    PyObject *cb = PyObject_GetAttrString((PyObject *)sc, "_awaited");
    if (cb == NULL) {
        Py_DECREF(fut);
        return -1;
    }
    PyObject *r = PyObject_CallMethod(fut, "add_done_callback", "O", cb);
    Py_DECREF(cb);
    Py_DECREF(fut);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    sc->awaiting = 1;
    return 1;
}

PyObject *
tc_http_sc_awaited(sconn *sc, PyObject *fut)
{
    sc->awaiting = 0;
    if (sc->closed || sc->detached) {
        Py_RETURN_NONE;
    }
    PyObject *r = call_method0(fut, "result");
    if (r == NULL) {
        sc_delegate_failed(sc);
        Py_RETURN_NONE;
    }
    Py_DECREF(r);
    if (sc->req && sc->req->sc == NULL) {
        /* detached during headers_received */
        Py_RETURN_NONE;
    }
    if (sc->req && !sc->req->read_finished && sc->expect_continue) {
        /* after headers_received: Expect: 100-continue */
        sc->expect_continue = 0;
        if (!sc->req->write_finished) {
            static const char cont[] = "HTTP/1.1 100 (Continue)\r\n\r\n";
            if (tc_http_sc_write(sc, cont, sizeof(cont) - 1) < 0) {
                PyErr_Clear();
            }
        }
    }
    sc_process(sc);
    Py_RETURN_NONE;
}

/* Deliver coalesced body bytes in chunk_size pieces.  0: all delivered,
 * 1: awaiting (some may remain), -1: failed (handled). */
static int
sc_deliver_body(sconn *sc)
{
    rconn *rc = sc->req;
    size_t off = 0;
    int ret = 0;
    Py_XINCREF(rc);
    while (off < sc->body.len) {
        size_t n = sc->body.len - off;
        if (n > sc->chunk_size) {
            n = sc->chunk_size;
        }
        if (rc == NULL || rc->write_finished || rc->delegate == NULL) {
            off += n;  /* upstream skips data_received once the response finished */
            continue;
        }
        PyObject *b = PyBytes_FromStringAndSize(sc->body.data + off, (Py_ssize_t)n);
        off += n;
        if (b == NULL) {
            sc_delegate_failed(sc);
            ret = -1;
            break;
        }
        PyObject *dargs[2] = {rc->delegate, b};
        PyObject *res = PyObject_VectorcallMethod(sc->hs->s_data_received, dargs,
                                                  2, NULL);
        Py_DECREF(b);
        if (res == NULL) {
            sc_delegate_failed(sc);
            ret = -1;
            break;
        }
        int a = sc_maybe_await(sc, res);
        if (a < 0) {
            sc_delegate_failed(sc);
            ret = -1;
            break;
        }
        if (a == 1) {
            ret = 1;
            break;
        }
    }
    if (off >= sc->body.len || ret < 0) {
        sc->body.len = 0;
    } else {
        memmove(sc->body.data, sc->body.data + off, sc->body.len - off);
        sc->body.len -= off;
    }
    Py_XDECREF(rc);
    return ret;
}

/* ------------------------------------------------------ parser glue */

static PyObject *
latin1(const char *s, size_t n)
{
    return PyUnicode_DecodeLatin1(s, (Py_ssize_t)n, NULL);
}

/* HTTPHeaders with the parsed pairs, filled through its internal layout
 * (tornado 6.6: _as_list {norm: [values]}, _combined_cache {norm: value}),
 * which is what HTTPHeaders.add() produces for valid names. */
TC_INTERNAL PyObject *
tc_http_build_headers(tc_http_state *hs, const tc_http_head *head)
{
    if (tc_web_headers_active(hs->web)) {
        /* the web component's C HTTPHeaders, straight from the spans */
        PyObject *h = tc_web_headers_new(hs->web);
        for (size_t i = 0; h != NULL && i < head->nheaders; i++) {
            const tc_http_header *hd = &head->headers[i];
            if (tc_web_headers_append_parsed(h, hd->name.p, hd->name.len, hd->value.p,
                                             hd->value.len) < 0) {
                Py_CLEAR(h);
            }
        }
        return h;
    }
    PyTypeObject *tp = (PyTypeObject *)hs->HTTPHeaders;
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) {
        return NULL;
    }
    PyObject *h = tp->tp_new(tp, empty, NULL);
    Py_DECREF(empty);
    if (h == NULL) {
        return NULL;
    }
    PyObject *as_list = PyDict_New();
    PyObject *cache = PyDict_New();
    if (as_list == NULL || cache == NULL ||
        PyObject_SetAttr(h, hs->s_as_list, as_list) < 0 ||
        PyObject_SetAttr(h, hs->s_combined_cache, cache) < 0) {
        goto fail;
    }
    char nbuf[256];
    for (size_t i = 0; i < head->nheaders; i++) {
        const tc_http_header *hd = &head->headers[i];
        char *norm = nbuf;
        if (hd->name.len > sizeof(nbuf)) {
            norm = PyMem_Malloc(hd->name.len);
            if (norm == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
        }
        int first = 1;
        for (size_t k = 0; k < hd->name.len; k++) {
            unsigned char c = (unsigned char)hd->name.p[k];
            if (c == '-') {
                norm[k] = '-';
                first = 1;
                continue;
            }
            if (first) {
                norm[k] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : (char)c;
                first = 0;
            } else {
                norm[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
            }
        }
        PyObject *name = latin1(norm, hd->name.len);
        if (norm != nbuf) {
            PyMem_Free(norm);
        }
        if (name == NULL) {
            goto fail;
        }
        PyObject *value = latin1(hd->value.p, hd->value.len);
        if (value == NULL) {
            Py_DECREF(name);
            goto fail;
        }
        PyObject *lst = PyDict_GetItemWithError(as_list, name); /* borrowed */
        int rr;
        if (lst != NULL) {
            rr = PyList_Append(lst, value);
            if (rr == 0 && PyDict_DelItem(cache, name) < 0) {
                PyErr_Clear();
            }
        } else if (PyErr_Occurred()) {
            rr = -1;
        } else {
            PyObject *l = PyList_New(1);
            if (l == NULL) {
                rr = -1;
            } else {
                Py_INCREF(value);
                PyList_SET_ITEM(l, 0, value);
                rr = PyDict_SetItem(as_list, name, l);
                Py_DECREF(l);
                if (rr == 0) {
                    rr = PyDict_SetItem(cache, name, value);
                }
            }
        }
        Py_DECREF(name);
        Py_DECREF(value);
        if (rr < 0) {
            goto fail;
        }
    }
    Py_DECREF(as_list);
    Py_DECREF(cache);
    return h;
fail:
    Py_XDECREF(as_list);
    Py_XDECREF(cache);
    Py_DECREF(h);
    return NULL;
}

/* httputil.RequestStartLine(method, path, version): made directly (what
 * namedtuple's __new__ does) while the class has the __new__ namedtuple
 * gave it and type's __call__; else the class is called. */
static PyObject *
request_start_line(tc_http_state *hs, PyObject *const *args)
{
    PyObject *cls = hs->RequestStartLine;
    if (hs->rsl_new != NULL && Py_TYPE(cls)->tp_call == PyType_Type.tp_call &&
        _PyType_Lookup((PyTypeObject *)cls, hs->s_new) == hs->rsl_new) {
        PyObject *t = PyTuple_Pack(3, args[0], args[1], args[2]), *a, *r;
        a = t != NULL ? PyTuple_Pack(1, t) : NULL;
        r = a != NULL ? PyTuple_Type.tp_new((PyTypeObject *)cls, a, NULL) : NULL;
        Py_XDECREF(t);
        Py_XDECREF(a);
        return r;
    }
    return PyObject_Vectorcall(cls, args, 3, NULL);
}

static int
on_headers(tc_http_parser *p, const tc_http_head *head)
{
    sconn *sc = p->data;
    tc_http_state *hs = sc->hs;
    rconn *rc = NULL;
    /* out of the idle list (its timer stays armed: no per-request timer
     * churn, see idle.c) */
    sc->waiting_head = 0;
    tc_http_idle_unlink(sc, 0);

    PyObject *args[3];
    args[0] = latin1(head->method.p, head->method.len);
    args[1] = latin1(head->target.p, head->target.len);
    args[2] = latin1(head->version.p, head->version.len);
    PyObject *start_line = NULL, *headers = NULL;
    if (args[0] && args[1] && args[2]) {
        start_line = request_start_line(hs, args);
    }
    Py_XDECREF(args[0]);
    Py_XDECREF(args[1]);
    Py_XDECREF(args[2]);
    if (start_line == NULL) {
        goto fail;
    }
    headers = tc_http_build_headers(hs, head);
    if (headers == NULL) {
        goto fail;
    }
    rc = PyObject_GC_New(rconn, hs->ReqConnType);
    if (rc == NULL) {
        goto fail;
    }
    Py_INCREF(sc);
    rc->sc = sc;
    rc->delegate = NULL;
    rc->start_line = start_line;  /* steals */
    start_line = NULL;
    rc->headers = headers;
    Py_INCREF(headers);
    rc->close_callback = NULL;
    rc->body_timeout = sc->body_timeout;
    rc->head_delivered = rc->read_finished = rc->write_finished = 0;
    rc->response_done = rc->finish_waiting = rc->delegate_closed = 0;
    tc_http_writer_init(&rc->w);
    {
        /* the writer keeps pointers into the start line's str objects */
        Py_ssize_t n;
        PyObject *m = PyTuple_GET_ITEM(rc->start_line, 0);
        PyObject *v = PyTuple_GET_ITEM(rc->start_line, 2);
        rc->w.req_method = PyUnicode_AsUTF8AndSize(m, &n);
        rc->w.req_method_len = (size_t)n;
        if (rc->w.req_method == NULL) {
            PyObject_GC_Track(rc);
            goto fail;
        }
        rc->w.req_version = PyUnicode_AsUTF8AndSize(v, &n);
        rc->w.req_version_len = (size_t)n;
        if (rc->w.req_version == NULL) {
            PyObject_GC_Track(rc);
            goto fail;
        }
    }
    rc->w.req_connection_keep_alive = head->connection_keep_alive;
    rc->w.disconnect_on_finish = !head->keep_alive;
    PyObject_GC_Track(rc);
    Py_XSETREF(sc->req, rc); /* sc owns the reference from here */
    sc->msg_complete = 0;
    sc->finish_called = 0;
    sc->expect_continue = (char)head->expect_continue;
    sc->body.len = 0;

    Py_CLEAR(headers);
    sc->head_pending = 1;
    if (sc->strict != NULL) {
        sc->strict->heads++;
    }
    return 1;  /* the delegate runs from sc_process, after the head is consumed */
fail:
    Py_XDECREF(start_line);
    Py_XDECREF(headers);
    report(sc, "HTTP server: building the request failed");
    tc_http_sc_close(sc);
    return 1;
}

/* After a head: start_request, headers_received (awaited if it returns an
 * awaitable), 100-continue.  0: go on parsing; 1: stop (awaiting, detached,
 * closed). */
static int
sc_dispatch_head_inner(sconn *sc)
{
    tc_http_state *hs = sc->hs;
    rconn *rc = sc->req;
    PyObject *delegate, *res;
    if (rc == NULL) {
        return 0;
    }
    {
        /* upstream's HTTPServer.start_request runs in C while `web` is on */
        int taken = tc_web_server_start_request(hs->web, sc->server, (PyObject *)sc,
                                                (PyObject *)rc, &delegate);
        if (taken == 0) {
            PyObject *sargs[3] = {sc->server, (PyObject *)sc, (PyObject *)rc};
            delegate = PyObject_VectorcallMethod(hs->s_start_request, sargs, 3, NULL);
        } else if (taken < 0) {
            delegate = NULL;
        }
    }
    if (delegate == NULL) {
        /* upstream's request loop: gen_log.error("Uncaught exception",
         * exc_info=True), then close */
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        if (tb != NULL && v != NULL) {
            PyException_SetTraceback(v, tb);
        }
        PyObject *ei = PyTuple_Pack(3, t ? t : Py_None, v ? v : Py_None, tb ? tb : Py_None);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
        PyObject *kw = ei ? Py_BuildValue("{s:O}", "exc_info", ei) : NULL;
        PyObject *a = Py_BuildValue("(s)", "Uncaught exception");
        PyObject *m = PyObject_GetAttrString(hs->gen_log, "error");
        PyObject *r = (kw && a && m) ? PyObject_Call(m, a, kw) : NULL;
        Py_XDECREF(ei);
        Py_XDECREF(kw);
        Py_XDECREF(a);
        Py_XDECREF(m);
        if (r == NULL) {
            report(sc, "HTTP server: logging failed");
        }
        Py_XDECREF(r);
        tc_http_sc_close(sc);
        return 1;
    }
    if (sc->decompress) {
        PyObject *g = PyObject_CallFunction(hs->GzipDelegate, "OnK", delegate,
                                            (Py_ssize_t)sc->chunk_size,
                                            (unsigned long long)sc->parser.max_body_size);
        Py_DECREF(delegate);
        delegate = g;
        if (delegate == NULL) {
            report(sc, "HTTP server: building the request failed");
            tc_http_sc_close(sc);
            return 1;
        }
    }
    rc->delegate = delegate;  /* steals */
    rc->head_delivered = 1;
    {
        PyObject *hargs[3] = {rc->delegate, rc->start_line, rc->headers};
        res = PyObject_VectorcallMethod(hs->s_headers_received, hargs,
                                        3, NULL);
    }
    if (res == NULL) {
        sc_delegate_failed(sc);
        return 1;
    }
    int a = sc_maybe_await(sc, res);
    if (a < 0) {
        sc_delegate_failed(sc);
        return 1;
    }
    if (a == 1) {
        return 1;  /* tc_http_sc_awaited continues */
    }
    if (rc->sc == NULL || sc->closed || sc->detached) {
        return 1;  /* detached / closed in headers_received */
    }
    if (sc->expect_continue) {
        sc->expect_continue = 0;
        if (!rc->write_finished) {
            static const char cont[] = "HTTP/1.1 100 (Continue)\r\n\r\n";
            if (tc_http_sc_write(sc, cont, sizeof(cont) - 1) < 0) {
                PyErr_Clear();
            }
        }
    }
    return 0;
}

static int
sc_dispatch_head(sconn *sc)
{
    rconn *rc = sc->req;
    Py_XINCREF(rc);
    int r = sc_dispatch_head_inner(sc);
    Py_XDECREF(rc);
    return r;
}

static int
on_body_start(tc_http_parser *p)
{
    sconn *sc = p->data;
    rconn *rc = sc->req;
    if (rc == NULL) {
        return 0;
    }
    if (p->content_length_rewrite != NULL) {
        PyObject *v = latin1(p->content_length_rewrite, p->content_length_rewrite_len);
        PyObject *r = v ? PyObject_CallMethod(rc->headers, "__setitem__", "sO", "Content-Length", v) : NULL;
        Py_XDECREF(v);
        if (r == NULL) {
            report(sc, "HTTP server: Content-Length rewrite failed");
        }
        Py_XDECREF(r);
    }
    if (p->body_kind != TC_HTTP_BODY_NONE && rc->body_timeout >= 0) {
        tc_http_cancel_timer(&sc->body_timer);
        sc->body_timer = call_later(sc, rc->body_timeout, "_body_timer");
        if (sc->body_timer == NULL) {
            report(sc, "HTTP server: scheduling the body timeout failed");
        }
    }
    return 0;
}

static int
on_body(tc_http_parser *p, const char *data, size_t len)
{
    sconn *sc = p->data;
    if (tc_http_buf_append(&sc->body, data, len) < 0) {
        PyErr_NoMemory();
        report(sc, "HTTP server: out of memory");
        tc_http_sc_close(sc);
        return 1;
    }
    /* delivered from sc_process, outside the parser */
    return sc->body.len >= sc->chunk_size ? 1 : 0;
}

static int
on_message_complete(tc_http_parser *p)
{
    sconn *sc = p->data;
    sc->msg_complete = 1;
    tc_http_cancel_timer(&sc->body_timer);
    return 1;
}

const tc_http_callbacks tc_http_sc_callbacks = {
    on_headers, on_body_start, on_body, on_message_complete,
};

/* ---------------------------------------------------------- I/O layer */

/* Everything written reached the kernel: resolve the futures write_headers/
 * write/finish handed out meanwhile.  The list exists only while futures
 * wait (write_future in connection.c creates it): an idle connection holds
 * none.  Returns 0 (kept as int for its callers). */
int
tc_http_sc_resolve_write_futures(sconn *sc)
{
    if (sc->write_futures != NULL) {
        PyObject *lst = sc->write_futures;
        sc->write_futures = NULL;   /* futures resolved below may add a new one */
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(lst); i++) {
            if (tc_http_sc_future_set_none(sc, PyList_GET_ITEM(lst, i)) < 0) {
                report(sc, "HTTP server: resolving a write future failed");
            }
        }
        Py_DECREF(lst);
    }
    return 0;
}

/* The stream's write queue emptied: resolve write futures, finish a
 * waiting request, close after a 400. */
static void
on_drain(void *ctx, tc_stream *s)
{
    sconn *sc = ctx;
    (void)s;
    Py_INCREF(sc);
    if (tc_http_sc_resolve_write_futures(sc) < 0) {
        report(sc, "HTTP server: out of memory");
    }
    if (sc->close_after_drain) {
        tc_http_sc_close(sc);
    } else if (sc->req != NULL && sc->req->finish_waiting) {
        sc->req->finish_waiting = 0;
        tc_http_rc_finish_request(sc->req);
    }
    if (PyErr_Occurred()) {
        report(sc, "HTTP server: drain callback failed");
    }
    Py_DECREF(sc);
}

static void
on_data(void *ctx, tc_stream *s)
{
    sconn *sc = ctx;
    (void)s;
    sc_process(sc);
}

static void
on_close(void *ctx, tc_stream *s, PyObject *error)
{
    sconn *sc = ctx;
    (void)s;
    (void)error;
    sc->closed = 1;
    tc_http_sc_schedule_closed(sc);
}

const tc_stream_consumer tc_http_sc_consumer = {on_data, on_drain, on_close};

/* Run the Python-visible side of a close from the loop (as upstream's
 * close callbacks run from the IOLoop). */
PyObject *
tc_http_sc_closed(sconn *sc, PyObject *Py_UNUSED(ignored))
{
    if (sc->close_notified) {
        Py_RETURN_NONE;
    }
    sc->close_notified = 1;
    tc_http_idle_unlink(sc, 1);
    tc_http_cancel_timer(&sc->body_timer);
    rconn *rc = sc->req;
    if (rc != NULL && rc->sc != NULL) {
        Py_INCREF(rc);
        if (!rc->read_finished) {
            rc_delegate_close(rc, sc->hs);
        } else if (!rc->response_done) {
            /* upstream's _on_connection_close */
            PyObject *cb = rc->close_callback;
            rc->close_callback = NULL;
            if (cb != NULL) {
                PyObject *r = PyObject_CallNoArgs(cb);
                if (r == NULL) {
                    report(sc, "HTTP server: close callback failed");
                }
                Py_XDECREF(r);
                Py_DECREF(cb);
            }
            rc->response_done = 1;
        }
        Py_CLEAR(rc->delegate);
        Py_CLEAR(rc->close_callback);
        Py_DECREF(rc);
    }
    Py_CLEAR(sc->req);  /* no sc <-> rc cycle left behind (circlerefs_test) */
    if (tc_http_sc_resolve_write_futures(sc) < 0) {
        report(sc, "HTTP server: out of memory");
    }
    PyObject *r = PyObject_CallMethod(sc->server, "on_close", "O", (PyObject *)sc);
    if (r == NULL) {
        /* already removed (close_all_connections) */
        PyErr_Clear();
    }
    Py_XDECREF(r);
    if (sc->closed_future != NULL && tc_http_sc_future_set_none(sc, sc->closed_future) < 0) {
        report(sc, "HTTP server: resolving the close future failed");
    }
    if (sc->serving) {
        /* drop the self-reference taken while serving (the caller of this
         * method holds another) */
        sc->serving = 0;
        Py_DECREF(sc);
    }
    Py_RETURN_NONE;
}

void
tc_http_sc_schedule_closed(sconn *sc)
{
    if (sc->close_scheduled) {
        return;
    }
    sc->close_scheduled = 1;
    PyObject *cb = PyObject_GetAttrString((PyObject *)sc, "_closed");
    if (cb == NULL) {
        report(sc, "HTTP server: close notification failed");
        return;
    }
    PyObject *h = tc_loop_call_soon(sc->loop, cb, NULL, 0, NULL);
    Py_DECREF(cb);
    if (h == NULL) {
        /* loop closed: run it now */
        PyErr_Clear();
        PyObject *r = tc_http_sc_closed(sc, NULL);
        Py_XDECREF(r);
        return;
    }
    Py_DECREF(h);
}

void
tc_http_sc_close(sconn *sc)
{
    if (sc->closed) {
        return;
    }
    sc->closed = 1;
    Py_INCREF(sc);
    if (!sc->detached) {
        tc_stream_close(sc->stream, NULL);  /* on_close runs in here */
    }
    tc_http_sc_schedule_closed(sc);
    Py_DECREF(sc);
}

/* Close while an exception is set (to be raised to the caller after). */
void
tc_http_sc_close_keep_exc(sconn *sc)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    tc_http_sc_close(sc);
    if (PyErr_Occurred()) {
        report(sc, "HTTP server: closing the stream failed");
    }
    PyErr_Restore(t, v, tb);
}

/* ------------------------------------------------------------ driver */

static void
sc_parse_error(sconn *sc)
{
    tc_http_state *hs = sc->hs;
    tc_http_parser *p = &sc->parser;
    if (p->error_kind == TC_HTTP_ERR_NONE) {
        return;  /* a callback owns it */
    }
    if (p->error_kind == TC_HTTP_ERR_NOMEM) {
        PyErr_NoMemory();
        report(sc, "HTTP server: out of memory");
        tc_http_sc_close(sc);
        return;
    }
    PyObject *msg = latin1(p->error_msg ? p->error_msg : "", p->error_len);
    if (msg == NULL) {
        report(sc, "HTTP server: error message");
        tc_http_sc_close(sc);
        return;
    }
    if (p->error_kind == TC_HTTP_ERR_UNSATISFIABLE) {
        PyObject *line = PyUnicode_FromFormat("Unsatisfiable read, closing connection: %U", msg);
        PyObject *r = line ? PyObject_CallMethod(hs->gen_log, "info", "O", line) : NULL;
        Py_XDECREF(line);
        Py_XDECREF(r);
        Py_DECREF(msg);
        if (PyErr_Occurred()) {
            report(sc, "HTTP server: logging failed");
        }
        if (sc->req && !sc->req->read_finished) {
            rc_delegate_close(sc->req, hs);
        }
        tc_http_sc_close(sc);
        return;
    }
    PyObject *exc = PyObject_CallOneArg(hs->HTTPInputError, msg);
    Py_DECREF(msg);
    if (exc == NULL) {
        report(sc, "HTTP server: building HTTPInputError");
        tc_http_sc_close(sc);
        return;
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    sc_delegate_failed(sc);
}

/* Strict mode: llhttp must accept the `len` bytes the parser has just
 * consumed (data) and frame them alike: a head ends where Tornado's ends, a
 * message too.  An llhttp error inside a head is acted on when Tornado's
 * parser has read that whole head (if Tornado rejects the head, its error
 * is the one reported, as without strict mode); in a body, at once.
 * 0, or -1 when it refused: then the request gets the parse error path
 * (HTTPInputError: upstream's "Malformed HTTP message" log line, 400,
 * close) and a head not yet dispatched never reaches the application. */
static int
sc_strict_check(sconn *sc, const char *data, size_t len)
{
    tc_http_strict *strict = sc->strict;
    tc_http_judge *j = &strict->judge;
    char why[256];
    if (!j->failed && len) {
        (void)tc_http_judge_feed(j, data, len);
    }
    const char *msg = tc_http_judge_verdict(j, strict->heads, sc->parser.messages,
                                            sc->msg_complete, why, sizeof(why));
    if (msg == NULL) {
        return 0;
    }
    sc->head_pending = 0;  /* the delegate never sees the head */
    PyObject *text = PyUnicode_FromFormat("llhttp (strict mode) refuses the request: %s", msg);
    PyObject *exc = text ? PyObject_CallOneArg(sc->hs->HTTPInputError, text) : NULL;
    Py_XDECREF(text);
    if (exc == NULL) {
        report(sc, "HTTP server: building HTTPInputError");
        tc_http_sc_close(sc);
        return -1;
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    sc_delegate_failed(sc);
    return -1;
}

static void
sc_next_request(sconn *sc)
{
    rconn *rc = sc->req;
    sc->req = NULL;
    sc->msg_complete = 0;
    sc->finish_called = 0;
    if (rc != NULL) {
        Py_CLEAR(rc->delegate);
        Py_CLEAR(rc->close_callback);
        Py_DECREF(rc);
    }
    /* An idle keep-alive connection holds no body memory: the coalescing
     * buffer grew to the last body's chunk size and is released here. */
    tc_http_buf_free(&sc->body);
    sc->parser.max_body_size = sc->default_max_body; /* set_max_body_size is per request */
    sc->parser.max_body_negative = sc->default_max_negative;
    tc_http_parser_resume(&sc->parser);
    tc_http_sc_start_head_wait(sc);
}

static void
sc_process(sconn *sc)
{
    if (sc->in_process) {
        sc->again = 1;
        return;
    }
    sc->in_process = 1;
    Py_INCREF(sc);
    tc_http_parser *p = &sc->parser;
again:
    for (;;) {
        sc->again = 0;
        if (sc->closed || sc->detached || sc->awaiting) {
            break;
        }
        if (sc->head_pending) {
            sc->head_pending = 0;
            if (sc_dispatch_head(sc) != 0) {
                break;
            }
            continue;
        }
        if (sc->body.len) {
            if (sc->req == NULL) {
                sc->body.len = 0;
            } else if (sc->flush_body || sc->msg_complete || sc->body.len >= sc->chunk_size) {
                sc->flush_body = 0;
                if (sc_deliver_body(sc) != 0) {
                    break;
                }
                continue;
            }
        }
        if (sc->msg_complete) {
            rconn *rc = sc->req;
            if (rc == NULL) {
                sc_next_request(sc);
                continue;
            }
            if (!sc->finish_called) {
                sc->finish_called = 1;
                rc->read_finished = 1;
                if (!rc->write_finished && rc->delegate != NULL) {
                    Py_INCREF(rc);
                    PyObject *r = PyObject_VectorcallMethod(
                        sc->hs->s_finish, &rc->delegate, 1, NULL);
                    if (r == NULL) {
                        /* as upstream, a delegate whose finish() raised is
                         * then told the connection closed */
                        sc_delegate_failed(sc);
                    } else {
                        /* The message is read and finish() returned: the
                         * server calls the delegate no more (the close of
                         * a connection whose request was read goes to the
                         * close callback).  Dropping it now frees what a
                         * waiting request does not need -- the routing
                         * delegate and web's _HandlerDelegate with its
                         * path arguments and chunk list (issue 15); the
                         * handler and request live on in the handler's
                         * Task.  Upstream's _read_message keeps it in its
                         * frame until the response ends, unused. */
                        Py_CLEAR(rc->delegate);
                    }
                    Py_XDECREF(r);
                    Py_DECREF(rc);
                }
                continue;
            }
            if (!rc->response_done || sc->defer_next) {
                /* Waiting for the response.  As upstream's IOStream, keep
                 * watching the socket only while nothing is buffered (a
                 * close then reaches the close callback); with a pipelined
                 * request already buffered stop reading until the parser
                 * has used up the buffer, so a client that half-closed
                 * after sending still gets every response. */
                if (!sc->read_paused) {
                    size_t buffered = 0;
                    (void)tc_stream_peek(sc->stream, &buffered);
                    if (buffered > 0) {
                        sc->read_paused = 1;
                        tc_stream_pause_reading(sc->stream);
                    }
                }
                break;   /* rc_finish_request / _process continues */
            }
            if (rc->w.disconnect_on_finish) {
                tc_http_sc_close(sc);
                break;
            }
            sc_next_request(sc);
            continue;
        }
        if (p->paused) {
            tc_http_parser_resume(p);
        }
        size_t len = 0, consumed = 0;
        const char *data = tc_stream_peek(sc->stream, &len);
        tc_http_status s = tc_http_parser_execute(p, data, len, &consumed);
        if (s == TC_HTTP_ERROR) {
            /* Tornado's grammar judges first: its error is the one logged */
            if (consumed) {
                tc_stream_consume(sc->stream, consumed);
            }
            sc_parse_error(sc);
            break;
        }
        if (sc->strict != NULL && sc_strict_check(sc, data, consumed) < 0) {
            if (consumed && !sc->closed) {
                tc_stream_consume(sc->stream, consumed);
            }
            break;
        }
        if (consumed) {
            tc_stream_consume(sc->stream, consumed);
        }
        if (s == TC_HTTP_PAUSED) {
            continue;
        }
        /* all buffered input parsed: read the socket again (upstream's
         * IOStream reads only when a read cannot be served from its buffer) */
        if (sc->read_paused) {
            sc->read_paused = 0;
            tc_stream_resume_reading(sc->stream);
        }
        /* all input consumed: hand over what the body has so far */
        if (sc->body.len && sc->req != NULL) {
            sc->flush_body = 1;
            continue;
        }
        break;
    }
    if (sc->again && !sc->closed && !sc->detached && !sc->awaiting) {
        goto again;
    }
    sc->in_process = 0;
    Py_DECREF(sc);
}

/* The response is finished and flushed (upstream _finish_request). */
void
tc_http_rc_finish_request(rconn *rc)
{
    sconn *sc = rc->sc;
    Py_CLEAR(rc->close_callback);
    if (sc == NULL || rc->response_done) {
        return;
    }
    rc->response_done = 1;
    if (sc->req != rc) {
        return;
    }
    if (rc->w.disconnect_on_finish) {
        if (!rc->read_finished) {
            /* finished before reading the whole request: no more parsing */
            rc->read_finished = 1;
        }
        tc_http_sc_close(sc);
        return;
    }
    size_t buffered = 0;
    (void)tc_stream_peek(sc->stream, &buffered);
    if (buffered > 0) {
        /* pipelined input: parse it from the loop, as upstream's request
         * loop goes on from a future callback (a detach() right after
         * finish() must still see those bytes) */
        PyObject *cb = PyObject_GetAttrString((PyObject *)sc, "_process");
        PyObject *h = cb ? tc_loop_call_soon(sc->loop, cb, NULL, 0, NULL) : NULL;
        Py_XDECREF(cb);
        if (h == NULL) {
            report(sc, "HTTP server: scheduling the next request failed");
            tc_http_sc_close(sc);
            return;
        }
        Py_DECREF(h);
        sc->defer_next = 1;
        return;
    }
    sc_process(sc);
}

PyObject *
tc_http_sc_process_meth(sconn *sc, PyObject *Py_UNUSED(ignored))
{
    sc->defer_next = 0;
    sc_process(sc);
    Py_RETURN_NONE;
}
