/* http component: HTTPConnection, one request on a C server connection.
 *
 * What upstream's HTTP1Connection is to a server handler, as
 * request.connection: write_headers / write (Futures, done at once when the
 * kernel took every byte, else when the stream drains), finish,
 * set_close_callback, set_max_body_size, set_body_timeout, detach (the
 * IOStream, unparsed bytes still buffered: WebSocket upgrades), and the
 * context and stream attributes.  The response bytes come from the
 * response writer (parser.h) through its Python side (http_py.c); they go
 * to the connection's stream through the server connection (server.c, the
 * reading side, which also decides what follows a finished response).
 */
#include "http/internal.h"

static PyObject *
closed_write_future(rconn *rc)
{
    sconn *sc = rc->sc;
    PyObject *fut = sc ? tc_loop_create_future(sc->loop) : NULL;
    if (fut == NULL) {
        return NULL;
    }
    PyObject *exc = PyObject_CallNoArgs(sc->hs->StreamClosedError);
    if (exc == NULL) {
        Py_DECREF(fut);
        return NULL;
    }
    /* retrieved at once, as upstream's write() on a closed stream does */
    int failed = tc_loop_future_set_exception(sc->loop, fut, exc, TC_FUTURE_NEW, 1) < 0;
    Py_DECREF(exc);
    if (failed) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
}

/* A future for a write just queued: done now when the kernel took it all. */
static PyObject *
write_future(sconn *sc)
{
    PyObject *fut = tc_loop_create_future(sc->loop);
    if (fut == NULL) {
        return NULL;
    }
    if (tc_http_sc_pending(sc) == 0) {
        if (tc_loop_future_set_result(sc->loop, fut, Py_None, TC_FUTURE_NEW) < 0) {
            Py_DECREF(fut);
            return NULL;
        }
        return fut;
    }
    if (sc->write_futures == NULL && (sc->write_futures = PyList_New(0)) == NULL) {
        Py_DECREF(fut);
        return NULL;
    }
    if (PyList_Append(sc->write_futures, fut) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
}

/* The writer's error as the Python exception (http_py.c). */
static int
raise_werr(tc_http_state *hs, tc_http_writer *w, tc_http_werr e)
{
    return tc_http_py_raise(w, e, hs->HTTPOutputError);
}

static PyObject *
rc_write_headers(rconn *rc, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *start_line, *headers, *chunk; /* borrowed */
    sconn *sc = rc->sc;
    if (tc_http_py_write_headers_args(args, nargs, kwnames, &start_line, &headers, &chunk) < 0) {
        return NULL;
    }
    if (sc == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "connection detached");
        return NULL;
    }
    tc_http_state *hs = sc->hs;
    PyObject *result = NULL;
    tc_http_buf out = {0};
    const tc_http_py_refs refs = {hs->HTTPHeaders, hs->HTTPOutputError, hs->s_as_list,
                                  hs->web};
    int r = tc_http_py_write_headers(&rc->w, &refs, start_line, headers, chunk, &out);
    if (r != 0) {
        if (r > 0 && rc->w.closed) {
            tc_http_sc_close_keep_exc(sc);
        }
        goto fail;
    }
    if (sc->closed || sc->detached) {
        result = closed_write_future(rc);
    } else {
        if (tc_http_sc_write(sc, out.data, out.len) < 0) {
            goto fail;
        }
        result = write_future(sc);
    }
fail:
    tc_http_buf_free(&out);
    return result;
}

static PyObject *
rc_write(rconn *rc, PyObject *chunk)
{
    sconn *sc = rc->sc;
    if (sc == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "connection detached");
        return NULL;
    }
    if (sc->closed || sc->detached) {
        return closed_write_future(rc);
    }
    Py_buffer view;
    if (PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    tc_http_buf out = {0};
    PyObject *result = NULL;
    tc_http_werr e = tc_http_write_body(&rc->w, view.buf, (size_t)view.len, &out);
    PyBuffer_Release(&view);
    if (e != TC_HTTP_WOK) {
        raise_werr(sc->hs, &rc->w, e);
        if (rc->w.closed) {
            tc_http_sc_close_keep_exc(sc);
        }
        goto done;
    }
    if (tc_http_sc_write(sc, out.data, out.len) < 0) {
        goto done;
    }
    result = write_future(sc);
done:
    tc_http_buf_free(&out);
    return result;
}

static PyObject *
rc_finish(rconn *rc, PyObject *Py_UNUSED(ignored))
{
    sconn *sc = rc->sc;
    if (sc == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "connection detached");
        return NULL;
    }
    int stream_closed = sc->closed || sc->detached;
    tc_http_buf out = {0};
    tc_http_werr e = tc_http_write_finish(&rc->w, stream_closed, &out);
    if (e != TC_HTTP_WOK) {
        tc_http_buf_free(&out);
        raise_werr(sc->hs, &rc->w, e);
        if (rc->w.closed) {
            tc_http_sc_close_keep_exc(sc);
        }
        return NULL;
    }
    if (out.len && !stream_closed) {
        if (tc_http_sc_write(sc, out.data, out.len) < 0) {
            PyErr_Clear();
        }
    }
    tc_http_buf_free(&out);
    rc->write_finished = 1;
    if (!rc->read_finished) {
        rc->w.disconnect_on_finish = 1;
    }
    Py_INCREF(rc);
    if (tc_http_sc_pending(sc) > 0) {
        rc->finish_waiting = 1;
    } else {
        tc_http_rc_finish_request(rc);
    }
    Py_DECREF(rc);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
rc_set_close_callback(rconn *rc, PyObject *cb)
{
    if (cb == Py_None) {
        Py_CLEAR(rc->close_callback);
    } else {
        Py_INCREF(cb);
        Py_XSETREF(rc->close_callback, cb);
    }
    Py_RETURN_NONE;
}

static PyObject *
rc_set_max_body_size(rconn *rc, PyObject *arg)
{
    uint64_t v;
    int negative;
    if (tc_http_max_body_from(arg, &v, &negative) < 0) {
        return NULL;
    }
    if (rc->sc != NULL && rc->sc->req == rc) {
        rc->sc->parser.max_body_size = v;
        rc->sc->parser.max_body_negative = negative;
    }
    Py_RETURN_NONE;
}

static PyObject *
rc_set_body_timeout(rconn *rc, PyObject *arg)
{
    double v = PyFloat_AsDouble(arg);
    if (v == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    rc->body_timeout = v;
    Py_RETURN_NONE;
}

/* Take the connection out of HTTP processing: the IOStream, with every
 * byte not yet parsed still in its buffer and pending writes still queued. */
static PyObject *
rc_detach(rconn *rc, PyObject *Py_UNUSED(ignored))
{
    sconn *sc = rc->sc;
    if (sc == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "already detached");
        return NULL;
    }
    PyObject *stream = (PyObject *)sc->stream;
    Py_INCREF(stream);
    if (!sc->closed) {
        /* the application's stream writes at once; what this connection
         * wrote (the 101 response) goes first */
        tc_stream_set_cork(sc->stream, 0);
        tc_stream_set_consumer(sc->stream, NULL, NULL);
        if (tc_http_sc_pending(sc) == 0 && tc_http_sc_resolve_write_futures(sc) < 0) {
            Py_DECREF(stream);
            return NULL;
        }
        if (sc->read_chunk_size > 0) {
            PyObject *v = PyLong_FromSsize_t(sc->read_chunk_size);
            if (v == NULL || PyObject_SetAttrString(stream, "read_chunk_size", v) < 0) {
                Py_XDECREF(v);
                Py_DECREF(stream);
                return NULL;
            }
            Py_DECREF(v);
        }
    }
    sc->detached = 1;
    Py_CLEAR(rc->close_callback);
    rc->response_done = 1;
    rc->sc = NULL;
    if (sc->req == rc) {
        rc->delegate_closed = 1;  /* upstream: no on_connection_close after detach */
        sc->req = NULL;
        Py_DECREF(rc);            /* sc's reference; the caller still holds one */
    }
    tc_http_idle_unlink(sc, 1);
    tc_http_cancel_timer(&sc->body_timer);
    tc_http_sc_schedule_closed(sc);       /* the server forgets the connection */
    Py_DECREF(sc);                /* rc's reference */
    return stream;
}

static PyObject *
rc_get_stream(rconn *rc, void *Py_UNUSED(closure))
{
    if (rc->sc == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(rc->sc->stream);
    return (PyObject *)rc->sc->stream;
}

static PyObject *
rc_get_context(rconn *rc, void *Py_UNUSED(closure))
{
    if (rc->sc == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(rc->sc->context);
    return rc->sc->context;
}

static int
rc_traverse(rconn *rc, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(rc));
    Py_VISIT(rc->sc);
    Py_VISIT(rc->delegate);
    Py_VISIT(rc->start_line);
    Py_VISIT(rc->headers);
    Py_VISIT(rc->close_callback);
    return 0;
}

static int
rc_clear(rconn *rc)
{
    Py_CLEAR(rc->sc);
    Py_CLEAR(rc->delegate);
    Py_CLEAR(rc->start_line);
    Py_CLEAR(rc->headers);
    Py_CLEAR(rc->close_callback);
    return 0;
}

static void
rc_dealloc(rconn *rc)
{
    PyTypeObject *tp = Py_TYPE(rc);
    PyObject_GC_UnTrack(rc);
    rc_clear(rc);
    tc_http_writer_free(&rc->w);
    PyObject_GC_Del(rc);
    Py_DECREF(tp);
}

static PyMethodDef rc_methods[] = {
    {"write_headers", (PyCFunction)(void (*)(void))rc_write_headers, METH_FASTCALL | METH_KEYWORDS,
     "HTTPConnection.write_headers(start_line, headers, chunk=None) -> Future"},
    {"write", (PyCFunction)rc_write, METH_O, "HTTPConnection.write(chunk) -> Future"},
    {"finish", (PyCFunction)rc_finish, METH_NOARGS, "HTTPConnection.finish()"},
    {"set_close_callback", (PyCFunction)rc_set_close_callback, METH_O, NULL},
    {"set_max_body_size", (PyCFunction)rc_set_max_body_size, METH_O, NULL},
    {"set_body_timeout", (PyCFunction)rc_set_body_timeout, METH_O, NULL},
    {"detach", (PyCFunction)rc_detach, METH_NOARGS,
     "Stop HTTP processing; returns an IOStream with the unparsed bytes buffered."},
    {NULL, NULL, 0, NULL},
};

static PyObject *
rc_get_server_conn(rconn *rc, void *Py_UNUSED(closure))
{
    if (rc->sc == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(rc->sc);
    return (PyObject *)rc->sc;
}

static PyGetSetDef rc_getset[] = {
    {"context", (getter)rc_get_context, NULL, "The connection's _HTTPRequestContext.", NULL},
    {"_server_conn", (getter)rc_get_server_conn, NULL, "The HTTPServerConnection (None once detached).", NULL},
    {"stream", (getter)rc_get_stream, NULL, "The connection's IOStream (None once detached).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot rc_slots[] = {
    {Py_tp_dealloc, rc_dealloc},
    {Py_tp_traverse, rc_traverse},
    {Py_tp_clear, rc_clear},
    {Py_tp_methods, rc_methods},
    {Py_tp_getset, rc_getset},
    {Py_tp_doc, "One request on a C HTTP server connection (tornado.httputil.HTTPConnection)."},
    {0, NULL},
};

static PyType_Spec rc_spec = {
    .name = "tornado_c._core.HTTPConnection",
    .basicsize = sizeof(rconn),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = rc_slots,
};

int
tc_http_connection_exec(PyObject *module, struct tc_state *st)
{
    return tc_add_type(module, &rc_spec, NULL, &st->http->ReqConnType);
}
