/* loop component: the stream transport, one asyncio.Transport on a connected
 * uv stream -- a uv_tcp_t for TCP, a uv_pipe_t for Unix sockets -- whatever
 * made it: create_connection / create_unix_connection (_open + _connect),
 * connect_accepted_socket and the servers of server.c (accept).  Its Python
 * type is tornado_c._core.StreamTransport (transport.h is its private header,
 * shared with server.c); TLS runs on top of it (tls.c, the stdlib's
 * SSLProtocol).
 *
 * Behaviour follows asyncio's _SelectorSocketTransport (Python 3.11) call for
 * call: connection_made is scheduled with call_soon, reading starts after it,
 * close() waits for the write buffer to drain, abort() and fatal errors drop
 * it, connection_lost(exc) runs exactly once (scheduled, or directly when the
 * last buffered byte left), exceptions from protocol callbacks go to the
 * loop's exception handler unless they are OSErrors (which, as in asyncio,
 * are passed to connection_lost only).
 *
 * Writing: the shared write queue of loop/uvio.h (uv_try_write() first, the
 * rest as the single uv_write in flight, later writes appended behind it),
 * embedded in the transport.
 *
 * Reading: Protocol gets bytes copied out of the shared 256 KiB read buffer
 * (uvio.h); BufferedProtocol reads straight into the buffer get_buffer()
 * returned.
 *
 * loop.sendfile() (tornado_c/_loop_sendfile.py) pauses reading, waits on
 * _make_empty_waiter() for the write queue to drain and then writes to the
 * fd itself with os.sendfile(); write() raises until _reset_empty_waiter().
 */
#include "common.h"
#include "state.h"
#include "loop/loop.h"
#include "loop/transport.h"

#include <structmember.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdlib.h>

#define LOG_THRESHOLD_FOR_CONNLOST_WRITES 5

enum { TR_TCP = TC_UVIO_TCP, TR_PIPE = TC_UVIO_PIPE };

struct tc_transport {
    PyObject_HEAD
    /* The type subclasses asyncio.Transport (isinstance checks work), whose
     * base declares __slots__ = ('_extra',): that slot lives here.  Unused
     * by us; checked against asyncio's layout at import. */
    PyObject *base_extra_slot;
    tc_loop_transport_state *ts;      /* borrowed: the transports' part of the module
                                 * state (the type holds the module) */
    tc_loop *loop;              /* strong */
    tc_uvio_conn io;            /* handle, write queue, sock, live (uvio.h); the
                                 * sock is created lazily for accepted
                                 * connections */
    uv_shutdown_t sreq;
    uv_connect_t creq;
    PyObject *protocol;
    PyObject *server;           /* tc_server or NULL */
    PyObject *extra;            /* dict or NULL */
    PyObject *conn_waiter;      /* future of a pending connect */
    PyObject *empty_waiter;     /* future of _make_empty_waiter() while
                                 * loop.sendfile() owns the socket, or NULL */
    PyObject *weakreflist;
    size_t high, low;
    Py_buffer rview;            /* BufferedProtocol buffer between alloc/read */
    PyObject *rexc;             /* get_buffer() failure seen in alloc_cb */
    Py_ssize_t conn_lost;       /* asyncio's _conn_lost */
    struct sockaddr_storage peer_addr, sock_addr; /* snapshot at start */
    socklen_t peer_len, sock_len;                 /* 0 = unknown */
    int kind;
    char started;               /* protocol attached */
    char closing;
    char eof;                   /* write_eof() called */
    char paused;                /* pause_reading() */
    char read_eof;
    char buffered;              /* protocol is a BufferedProtocol */
    char protocol_paused;       /* pause_writing() was called */
    char lost_called;           /* _call_connection_lost ran (or must not) */
    char shutdown_started;
    char rview_held;
};

/* ------------------------------------------------------------------ errors */

/* Report the exception object `exc` (borrowed) to the loop's handler. */
static void
report_exc(tc_transport *tr, PyObject *exc, const char *message, int with_ctx)
{
    PyObject *extra = NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    if (with_ctx) {
        extra = PyDict_New();
        if (extra != NULL) {
            if (PyDict_SetItemString(extra, "transport", (PyObject *)tr) < 0 ||
                PyDict_SetItemString(extra, "protocol",
                                     tr->protocol ? tr->protocol : Py_None) < 0) {
                Py_CLEAR(extra);
            }
        }
        if (extra == NULL) {
            /* building the context failed: report that failure instead */
            PyErr_Clear();
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        }
    }
    tc_loop_report_exception(tr->loop, message, extra);
    Py_XDECREF(extra);
}

static void force_close(tc_transport *tr, PyObject *exc);
static void fail_empty_waiter(tc_transport *tr);

/* loop.get_debug() as 0/1 (errors count as 0 and are cleared). */
static int
loop_debug(tc_transport *tr)
{
    PyObject *r = PyObject_CallMethodNoArgs((PyObject *)tr->loop, tr->ts->s_get_debug);
    int on;
    if (r == NULL) {
        PyErr_Clear();
        return 0;
    }
    on = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (on < 0) {
        PyErr_Clear();
        return 0;
    }
    return on;
}

/* asyncio's debug-mode messages: logger.debug(fmt, transport[, text],
 * exc_info=exc).  Only called when loop_debug() is true; never fails (a
 * logging error is reported like any other callback error). */
static void
debug_log(tc_transport *tr, const char *fmt, const char *text, PyObject *exc)
{
    PyObject *et, *ev, *etb, *meth = NULL, *args = NULL, *kw = NULL, *r = NULL;
    PyErr_Fetch(&et, &ev, &etb);
    meth = PyObject_GetAttrString(tr->ts->logger, "debug");
    if (meth == NULL) {
        goto done;
    }
    args = text ? Py_BuildValue("(sOs)", fmt, (PyObject *)tr, text)
                : Py_BuildValue("(sO)", fmt, (PyObject *)tr);
    if (args == NULL) {
        goto done;
    }
    if (exc != NULL) {
        kw = Py_BuildValue("{sO}", "exc_info", exc);
        if (kw == NULL) {
            goto done;
        }
    }
    r = PyObject_Call(meth, args, kw);
done:
    if (r == NULL && PyErr_Occurred()) {
        tc_loop_report_exception(tr->loop, "asyncio debug logging failed", NULL);
    }
    Py_XDECREF(r);
    Py_XDECREF(kw);
    Py_XDECREF(args);
    Py_XDECREF(meth);
    PyErr_Restore(et, ev, etb);
}

/* asyncio's _fatal_error: `exc` borrowed. */
static void
fatal_error(tc_transport *tr, PyObject *exc, const char *message)
{
    if (!PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_OSError)) {
        report_exc(tr, exc, message, 1);
    }
    else if (loop_debug(tr)) {
        debug_log(tr, "%r: %s", message, exc);
    }
    force_close(tr, exc);
}

/* _fatal_error with the current exception. */
static void
fatal_error_current(tc_transport *tr, const char *message)
{
    PyObject *exc = tc_uvio_fetch_exception();
    if (exc == NULL) {
        return;
    }
    fatal_error(tr, exc, message);
    Py_DECREF(exc);
}

static void
fatal_uv_error(tc_transport *tr, int err, const char *message)
{
    PyObject *exc = tc_uvio_error(err);
    if (exc == NULL) {
        fatal_error_current(tr, message);
        return;
    }
    fatal_error(tr, exc, message);
    Py_DECREF(exc);
}

/* --------------------------------------------------------------- handles */


static tc_transport *
tr_alloc(tc_loop_transport_state *ts, tc_loop *loop, int kind, PyObject *live)
{
    PyTypeObject *type = ts->Transport_type;
    tc_transport *tr = (tc_transport *)type->tp_alloc(type, 0);
    int rc;
    if (tr == NULL) {
        return NULL;
    }
    tr->ts = ts;
    Py_INCREF(loop);
    tr->loop = loop;
    tr->kind = kind;
    tr->high = 64 * 1024;
    tr->low = 16 * 1024;
    rc = tc_uvio_conn_init(&tr->io, loop, kind, (PyObject *)tr,
                           "transport bookkeeping failed", TC_UVIO_HOLD_NOW);
    if (rc < 0) {
        Py_DECREF(tr);
        return (tc_transport *)tc_uvio_set_error(rc);
    }
    if (live != NULL && live != Py_None) {
        if (PySet_Add(live, (PyObject *)tr) < 0) {
            tr->lost_called = 1;
            tc_uvio_conn_close(&tr->io);
            Py_DECREF(tr);
            return NULL;
        }
        Py_INCREF(live);
        tr->io.live = live;
    }
    return tr;
}

tc_transport *
tc_loop_transport_for_accept(tc_loop_transport_state *ts, tc_loop *loop, int kind,
                             PyObject *live)
{
    return tr_alloc(ts, loop, kind, live);
}

uv_stream_t *
tc_loop_transport_stream(tc_transport *tr)
{
    return &tr->io.h.stream;
}

void
tc_loop_transport_dispose(tc_transport *tr)
{
    tr->closing = 1;
    tr->lost_called = 1;
    tc_uvio_conn_close(&tr->io);
}

/* ------------------------------------------------------------ scheduling */

static int
schedule(tc_transport *tr, PyObject *fn, PyObject *arg)
{
    PyObject *args[2] = {(PyObject *)tr, arg};
    PyObject *h = tc_loop_call_soon(tr->loop, fn, args, arg ? 2 : 1, NULL);
    if (h == NULL) {
        return -1;
    }
    Py_DECREF(h);
    return 0;
}

/* protocol.connection_lost(exc) then release everything (asyncio's
 * _call_connection_lost).  Returns -1 with the protocol's exception set. */
static int
call_connection_lost(tc_transport *tr, PyObject *exc)
{
    PyObject *r = NULL, *server;
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    int rc = 0;
    if (tr->lost_called) {
        return 0;
    }
    tr->lost_called = 1;
    Py_INCREF(tr);
    if (tr->protocol != NULL) {
        r = PyObject_CallMethodOneArg(tr->protocol, tr->ts->s_connection_lost,
                                      exc ? exc : Py_None);
        if (r == NULL) {
            rc = -1;
            PyErr_Fetch(&et, &ev, &etb);
        }
        Py_XDECREF(r);
    }
    /* finally: */
    tc_uvio_conn_close(&tr->io);
    Py_CLEAR(tr->protocol);
    fail_empty_waiter(tr); /* (the protocol's exception, if any, is fetched) */
    server = tr->server;
    tr->server = NULL;
    if (server != NULL) {
        tc_loop_server_detach(server);
        Py_DECREF(server);
    }
    if (rc < 0) {
        PyErr_Restore(et, ev, etb);
    }
    Py_DECREF(tr);
    return rc;
}

static void
read_stop(tc_transport *tr)
{
    if (tr->io.reading) {
        uv_read_stop(&tr->io.h.stream);
        tr->io.reading = 0;
    }
}

static void read_start(tc_transport *tr);

/* asyncio's _force_close; `exc` borrowed, may be NULL. */
static void
force_close(tc_transport *tr, PyObject *exc)
{
    if (tr->conn_lost) {
        return;
    }
    tr->io.wq.pend_len = 0; /* the in-flight write cannot be recalled */
    if (!tr->closing) {
        tr->closing = 1;
        read_stop(tr);
    }
    tr->conn_lost++;
    if (schedule(tr, tr->ts->fn_conn_lost, exc ? exc : Py_None) < 0) {
        tc_loop_report_exception(tr->loop, "scheduling connection_lost failed", NULL);
        if (call_connection_lost(tr, exc) < 0) {
            tc_loop_report_exception(tr->loop, "Exception in connection_lost", NULL);
        }
    }
}

/* ---------------------------------------------------------------- writing */

static size_t
write_buffer_size(tc_transport *tr)
{
    return tc_uvio_wq_pending(&tr->io.wq, tr->io.open ? &tr->io.h.stream : NULL) +
           tr->io.wq.rem_len;
}

static void
maybe_pause_protocol(tc_transport *tr)
{
    PyObject *r;
    if (write_buffer_size(tr) <= tr->high || tr->protocol_paused) {
        return;
    }
    tr->protocol_paused = 1;
    if (tr->protocol == NULL) {
        return;
    }
    r = PyObject_CallMethodNoArgs(tr->protocol, tr->ts->s_pause_writing);
    if (r == NULL) {
        PyObject *exc = tc_uvio_fetch_exception();
        if (exc != NULL) {
            report_exc(tr, exc, "protocol.pause_writing() failed", 1);
            Py_DECREF(exc);
        }
        return;
    }
    Py_DECREF(r);
}

static void
maybe_resume_protocol(tc_transport *tr)
{
    PyObject *r;
    if (!tr->protocol_paused || write_buffer_size(tr) > tr->low) {
        return;
    }
    tr->protocol_paused = 0;
    if (tr->protocol == NULL) {
        return;
    }
    r = PyObject_CallMethodNoArgs(tr->protocol, tr->ts->s_resume_writing);
    if (r == NULL) {
        PyObject *exc = tc_uvio_fetch_exception();
        if (exc != NULL) {
            report_exc(tr, exc, "protocol.resume_writing() failed", 1);
            Py_DECREF(exc);
        }
        return;
    }
    Py_DECREF(r);
}

/* Resolve the future of _make_empty_waiter() if it is pending: with None
 * (exc NULL: the write queue is empty) or with the exception `exc`
 * (borrowed).  The waiter stays set -- sendfile is in progress until
 * _reset_empty_waiter() -- so write() keeps refusing. */
static void
resolve_empty_waiter(tc_transport *tr, PyObject *exc)
{
    PyObject *w = tr->empty_waiter;
    int r;
    if (w == NULL) {
        return;
    }
    Py_INCREF(w); /* resolving it may run code that resets the waiter */
    r = exc == NULL
            ? tc_loop_future_set_result(tr->loop, w, Py_None, TC_FUTURE_UNLESS_DONE)
            : tc_loop_future_set_exception(tr->loop, w, exc, TC_FUTURE_UNLESS_DONE, 0);
    Py_DECREF(w);
    if (r < 0) {
        tc_loop_report_exception(tr->loop, "Could not resolve the sendfile empty waiter", NULL);
    }
}

/* The peer or an error ended the connection while sendfile waited for the
 * write buffer to drain. */
static void
fail_empty_waiter(tc_transport *tr)
{
    PyObject *exc;
    if (tr->empty_waiter == NULL) {
        return;
    }
    exc = PyObject_CallFunction(PyExc_ConnectionError, "s", "Connection is closed by peer");
    if (exc == NULL) {
        tc_loop_report_exception(tr->loop, "Could not resolve the sendfile empty waiter", NULL);
        return;
    }
    resolve_empty_waiter(tr, exc);
    Py_DECREF(exc);
}

static void do_shutdown(tc_transport *tr);

static void
write_cb(uv_write_t *req, int status)
{
    tc_transport *tr = (tc_transport *)req->data;
    int rc;
    TC_LOOP_ENTER(tr->loop);
    TC_LOOP_REQUEST_DONE(tr->loop);
    tc_uvio_wq_done(&tr->io.wq, status < 0 || tr->conn_lost || tr->lost_called);
    if (status == UV_ECANCELED || tr->conn_lost || tr->lost_called) {
        return;
    }
    Py_INCREF(tr);
    if (status < 0) {
        PyObject *exc = tc_uvio_error(status);
        if (exc == NULL) {
            fatal_error_current(tr, "Fatal write error on socket transport");
            goto done;
        }
        fatal_error(tr, exc, "Fatal write error on socket transport");
        resolve_empty_waiter(tr, exc);
        Py_DECREF(exc);
        goto done;
    }
    rc = tc_uvio_wq_next(&tr->io.wq, &tr->io.h.stream, write_cb, tr);
    if (rc < 0) {
        fatal_uv_error(tr, rc, "Fatal write error on socket transport");
        goto done;
    }
    if (rc == 1) {
        goto done; /* the next piece of a region over TC_UVIO_WRITE_CHUNK */
    }
    maybe_resume_protocol(tr); /* may write more */
    if (!tr->io.wq.inflight && tr->io.wq.pend_len == 0 && !tr->conn_lost) {
        resolve_empty_waiter(tr, NULL);
        if (tr->closing) {
            if (call_connection_lost(tr, NULL) < 0) {
                tc_loop_report_exception(tr->loop, "Exception in callback connection_lost", NULL);
            }
        }
        else if (tr->eof) {
            do_shutdown(tr);
        }
    }
done:
    Py_DECREF(tr);
}

static void
shutdown_cb(uv_shutdown_t *req, int status)
{
    tc_transport *tr = (tc_transport *)req->data;
    TC_LOOP_ENTER(tr->loop);
    TC_LOOP_REQUEST_DONE(tr->loop);
    if (status < 0 && status != UV_ECANCELED && status != UV_ENOTCONN && !tr->conn_lost) {
        PyObject *exc = tc_uvio_error(status);
        if (exc == NULL) {
            tc_loop_report_exception(tr->loop, "shutdown(SHUT_WR) failed", NULL);
            return;
        }
        report_exc(tr, exc, "shutdown(SHUT_WR) failed", 1);
        Py_DECREF(exc);
    }
}

static void
do_shutdown(tc_transport *tr)
{
    int rc;
    if (tr->shutdown_started || !tr->io.open || tr->io.closing) {
        return;
    }
    tr->shutdown_started = 1;
    tr->sreq.data = tr;
    rc = uv_shutdown(&tr->sreq, &tr->io.h.stream, shutdown_cb);
    if (rc == 0) {
        TC_LOOP_REQUEST_STARTED(tr->loop);
    }
    else if (rc != UV_ENOTCONN) {
        PyObject *exc = tc_uvio_error(rc);
        if (exc == NULL) {
            tc_loop_report_exception(tr->loop, "shutdown(SHUT_WR) failed", NULL);
            return;
        }
        report_exc(tr, exc, "shutdown(SHUT_WR) failed", 1);
        Py_DECREF(exc);
    }
}

/* Write `bufs` (total > 0) through the write queue (see tc_uvio_wq_write for
 * the layout of `bufs` and `keep`).  Returns -1 only on memory errors
 * (exception set); write errors go to fatal_error. */
static int
write_bufs(tc_transport *tr, const uv_buf_t *bufs, unsigned int nbufs, size_t total,
           PyObject *keep)
{
    size_t taken;
    int uverr;
    if (tc_uvio_wq_write(&tr->io.wq, &tr->io.h.stream, 1, bufs, nbufs, total, keep, write_cb, tr,
                         &taken, &uverr) < 0) {
        return -1;
    }
    if (uverr < 0) {
        fatal_uv_error(tr, uverr, "Fatal write error on socket transport");
        return 0;
    }
    maybe_pause_protocol(tr);
    return 0;
}

/* What write()/writelines() refuse before looking at the data (asyncio's
 * order): after write_eof(), and while loop.sendfile() writes to the socket
 * itself.  0 = go on, -1 = RuntimeError set. */
static int
write_refused(tc_transport *tr)
{
    if (tr->eof) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot call write() after write_eof()");
        return -1;
    }
    if (tr->empty_waiter != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "unable to write; sendfile is in progress");
        return -1;
    }
    return 0;
}

/* Common checks of write()/writelines(); 1 = go on, 0 = return None,
 * -1 = error. */
static int
write_precheck(tc_transport *tr)
{
    if (tr->eof) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot call write() after write_eof()");
        return -1;
    }
    if (!tr->started) {
        PyErr_SetString(PyExc_RuntimeError, "transport is not connected");
        return -1;
    }
    if (tr->conn_lost) {
        if (tr->conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
            PyObject *r = PyObject_CallMethodOneArg(
                tr->ts->logger, tr->ts->s_warning,
                tr->ts->s_socket_send_warning);
            if (r == NULL) {
                return -1;
            }
            Py_DECREF(r);
        }
        tr->conn_lost++;
        return 0;
    }
    return 1;
}

static int
check_bytes_like(PyObject *data)
{
    if (!PyBytes_Check(data) && !PyByteArray_Check(data) && !PyMemoryView_Check(data)) {
        PyErr_Format(PyExc_TypeError,
                     "data argument must be a bytes-like object, not '%.200s'",
                     Py_TYPE(data)->tp_name);
        return -1;
    }
    return 0;
}

static PyObject *
tr_write(tc_transport *tr, PyObject *data)
{
    uv_buf_t buf;
    size_t total;
    int rc;
    if (check_bytes_like(data) < 0) {
        return NULL;
    }
    if (PyBytes_CheckExact(data)) {
        if (write_refused(tr) < 0) {
            return NULL;
        }
        if (PyBytes_GET_SIZE(data) == 0) {
            Py_RETURN_NONE;
        }
        rc = write_precheck(tr);
        if (rc <= 0) {
            return rc < 0 ? NULL : Py_NewRef(Py_None);
        }
        total = (size_t)PyBytes_GET_SIZE(data);
        buf = tc_uvio_region(PyBytes_AS_STRING(data), total);
        if (write_bufs(tr, &buf, 1, total, data) < 0) {
            return NULL;
        }
    }
    else {
        Py_buffer view;
        if (write_refused(tr) < 0) {
            return NULL;
        }
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        if (view.len == 0) {
            PyBuffer_Release(&view);
            Py_RETURN_NONE;
        }
        rc = write_precheck(tr);
        if (rc <= 0) {
            PyBuffer_Release(&view);
            return rc < 0 ? NULL : Py_NewRef(Py_None);
        }
        total = (size_t)view.len;
        buf = tc_uvio_region(view.buf, total);
        rc = write_bufs(tr, &buf, 1, total, NULL);
        PyBuffer_Release(&view);
        if (rc < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

#define WRITELINES_MAX 64

static PyObject *
tr_writelines(tc_transport *tr, PyObject *list_of_data)
{
    Py_buffer views[WRITELINES_MAX];
    uv_buf_t bufs[WRITELINES_MAX];
    PyObject *seq, *res = NULL;
    Py_ssize_t n, i, got = 0;
    size_t total = 0;
    int rc;
    seq = PySequence_Fast(list_of_data, "writelines() argument must be iterable");
    if (seq == NULL) {
        return NULL;
    }
    n = PySequence_Fast_GET_SIZE(seq);
    if (n > WRITELINES_MAX) {
        goto join;
    }
    for (i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (PyObject_GetBuffer(item, &views[i], PyBUF_SIMPLE) < 0) {
            goto done;
        }
        got++;
        if ((size_t)views[i].len > TC_UVIO_WRITE_CHUNK) {
            /* huge item: take the join + write() path */
            for (i = 0; i < got; i++) {
                PyBuffer_Release(&views[i]);
            }
            got = 0;
            goto join;
        }
        bufs[i] = uv_buf_init(views[i].buf, (unsigned int)views[i].len);
        total += (size_t)views[i].len;
    }
    goto gathered;
join:
    {
        /* like asyncio 3.11: b''.join(), then write() */
        PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
        PyObject *joined = NULL;
        if (empty != NULL) {
            joined = PyObject_CallMethod(empty, "join", "O", seq);
            Py_DECREF(empty);
        }
        if (joined != NULL) {
            res = tr_write(tr, joined);
            Py_DECREF(joined);
        }
        goto done;
    }
gathered:
    if (write_refused(tr) < 0) {
        goto done;
    }
    if (total == 0) {
        res = Py_NewRef(Py_None);
        goto done;
    }
    rc = write_precheck(tr);
    if (rc <= 0) {
        if (rc == 0) {
            res = Py_NewRef(Py_None);
        }
        goto done;
    }
    if (write_bufs(tr, bufs, (unsigned int)n, total, NULL) < 0) {
        goto done;
    }
    res = Py_NewRef(Py_None);
done:
    for (i = 0; i < got; i++) {
        PyBuffer_Release(&views[i]);
    }
    Py_DECREF(seq);
    return res;
}

/* ---------------------------------------------------------------- reading */

static void
alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    tc_transport *tr = (tc_transport *)handle->data;
    PyObject *obj;
    (void)suggested;
    TC_LOOP_ENTER(tr->loop);
    if (!tr->buffered) {
        buf->base = tc_loop_read_buffer(tr->loop); /* lent until read_cb returns */
        buf->len = TC_UVIO_READ_BUF_SIZE;
        return;
    }
    buf->base = NULL;
    buf->len = 0;
    if (tr->rview_held || tr->rexc != NULL || tr->protocol == NULL) {
        return; /* read_cb gets UV_ENOBUFS and deals with it */
    }
    obj = PyObject_CallMethodOneArg(tr->protocol, tr->ts->s_get_buffer,
                                    tr->ts->minus_one);
    if (obj == NULL) {
        tr->rexc = tc_uvio_fetch_exception();
        return;
    }
    if (PyObject_GetBuffer(obj, &tr->rview, PyBUF_WRITABLE) < 0) {
        Py_DECREF(obj);
        tr->rexc = tc_uvio_fetch_exception();
        return;
    }
    Py_DECREF(obj);
    if (tr->rview.len == 0) {
        PyBuffer_Release(&tr->rview);
        PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
        tr->rexc = tc_uvio_fetch_exception();
        return;
    }
    tr->rview_held = 1;
    buf->base = tr->rview.buf;
    buf->len = (size_t)tr->rview.len;
}

static void
release_rview(tc_transport *tr)
{
    if (tr->rview_held) {
        tr->rview_held = 0;
        PyBuffer_Release(&tr->rview);
    }
}

/* asyncio's _read_ready__on_eof */
static void
on_eof(tc_transport *tr)
{
    PyObject *r;
    int keep_open;
    read_stop(tr);
    tr->read_eof = 1;
    if (loop_debug(tr)) {
        debug_log(tr, "%r received EOF", NULL, NULL);
    }
    if (tr->protocol == NULL) {
        return;
    }
    r = PyObject_CallMethodNoArgs(tr->protocol, tr->ts->s_eof_received);
    if (r == NULL) {
        fatal_error_current(tr, "Fatal error: protocol.eof_received() call failed.");
        return;
    }
    keep_open = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (keep_open < 0) {
        fatal_error_current(tr, "Fatal error: protocol.eof_received() call failed.");
        return;
    }
    if (!keep_open) {
        PyObject *c = PyObject_CallMethod((PyObject *)tr, "close", NULL);
        if (c == NULL) {
            tc_loop_report_exception(tr->loop, "transport.close() failed", NULL);
        }
        Py_XDECREF(c);
    }
}

static void
read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    tc_transport *tr = (tc_transport *)stream->data;
    PyObject *r;
    TC_LOOP_ENTER(tr->loop);
    Py_INCREF(tr);
    if (tr->buffered) {
        if (tr->rexc != NULL) {
            PyObject *exc = tr->rexc;
            tr->rexc = NULL;
            release_rview(tr);
            if (tr->protocol != NULL && !tr->closing) {
                fatal_error(tr, exc, "Fatal error: protocol.get_buffer() call failed.");
            }
            Py_DECREF(exc);
            goto done;
        }
        release_rview(tr);
        if (nread == 0 || nread == UV_ENOBUFS || tr->protocol == NULL || tr->closing) {
            goto done;
        }
        if (nread > 0) {
            PyObject *n = PyLong_FromSsize_t(nread);
            if (n == NULL) {
                fatal_error_current(tr, "Fatal error: protocol.buffer_updated() call failed.");
                goto done;
            }
            r = PyObject_CallMethodOneArg(tr->protocol, tr->ts->s_buffer_updated, n);
            Py_DECREF(n);
            if (r == NULL) {
                fatal_error_current(tr, "Fatal error: protocol.buffer_updated() call failed.");
                goto done;
            }
            Py_DECREF(r);
            goto done;
        }
    }
    else {
        if (nread > 0) {
            PyObject *data;
            if (tr->protocol == NULL || tr->closing) {
                goto done;
            }
            /* copy out of the shared buffer before any Python code runs */
            data = PyBytes_FromStringAndSize(buf->base, nread);
            if (data == NULL) {
                fatal_error_current(tr, "Fatal read error on socket transport");
                goto done;
            }
            r = PyObject_CallMethodOneArg(tr->protocol, tr->ts->s_data_received, data);
            Py_DECREF(data);
            if (r == NULL) {
                fatal_error_current(tr, "Fatal error: protocol.data_received() call failed.");
                goto done;
            }
            Py_DECREF(r);
            goto done;
        }
        if (nread == 0) {
            goto done;
        }
    }
    /* nread < 0 */
    if (nread == UV_EOF) {
        on_eof(tr);
    }
    else if (!tr->closing) {
        read_stop(tr);
        fatal_uv_error(tr, (int)nread, "Fatal read error on socket transport");
    }
done:
    Py_DECREF(tr);
}

static void
read_start(tc_transport *tr)
{
    int rc;
    if (tr->io.reading || tr->closing || tr->paused || tr->read_eof ||
        !tr->io.open || tr->io.closing) {
        return;
    }
    rc = uv_read_start(&tr->io.h.stream, alloc_cb, read_cb);
    if (rc < 0) {
        fatal_uv_error(tr, rc, "Fatal read error on socket transport");
        return;
    }
    tr->io.reading = 1;
}

/* ------------------------------------------------------------- connecting */

static void
connect_cb(uv_connect_t *req, int status)
{
    tc_transport *tr = (tc_transport *)req->data;
    PyObject *waiter;
    int rc;
    TC_LOOP_ENTER(tr->loop);
    TC_LOOP_REQUEST_DONE(tr->loop);
    waiter = tr->conn_waiter; /* take the reference */
    tr->conn_waiter = NULL;
    if (waiter == NULL) {
        return;
    }
    if (status == UV_ECANCELED) {
        /* the handle was closed: _dispose() after a cancellation, or the
         * loop closing; nobody waits for this future any more */
        Py_DECREF(waiter);
        return;
    }
    if (status == 0) {
        rc = tc_loop_future_set_result(tr->loop, waiter, Py_None, TC_FUTURE_UNLESS_DONE);
    }
    else {
        PyObject *exc = tc_uvio_error(status);
        rc = exc ? tc_loop_future_set_exception(tr->loop, waiter, exc,
                                                TC_FUTURE_UNLESS_DONE, 0)
                 : -1;
        Py_XDECREF(exc);
    }
    if (rc < 0) {
        tc_loop_report_exception(tr->loop, "connect callback failed", NULL);
    }
    Py_DECREF(waiter);
}

/* ------------------------------------------------------------ Python API */

int
tc_loop_transport_check_open(PyObject *loop)
{
    PyObject *r = PyObject_CallMethod(loop, "is_closed", NULL);
    int closed;
    if (r == NULL) {
        return -1;
    }
    closed = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (closed < 0) {
        return -1;
    }
    if (closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

static PyObject *
tr_open(PyTypeObject *type, PyObject *const *args, Py_ssize_t nargs)
{
    /* StreamTransport._open(loop, sock, live): a transport whose handle is
     * opened on sock's fd (libuv owns the fd from now on). */
    tc_state *st = tc_state_from_type(type);
    PyObject *loop, *sock, *live, *fam_o;
    long family;
    int fd;
    tc_transport *tr;
    int rc;
    if (st == NULL) {
        return NULL;
    }
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_open(loop, sock, live)");
        return NULL;
    }
    loop = args[0];
    sock = args[1];
    live = args[2];
    if (!tc_loop_check(st, loop)) {
        PyErr_SetString(PyExc_TypeError, "loop must be a tornado_c event loop");
        return NULL;
    }
    if (tc_loop_transport_check_open(loop) < 0) {
        return NULL;
    }
    fam_o = PyObject_GetAttrString(sock, "family");
    if (fam_o == NULL) {
        return NULL;
    }
    family = PyLong_AsLong(fam_o);
    Py_DECREF(fam_o);
    if (family == -1 && PyErr_Occurred()) {
        return NULL;
    }
    fd = tc_uvio_sock_fd((tc_loop *)loop, sock);
    if (fd < 0) {
        return NULL;
    }
    tr = tr_alloc(st->loop_transport, (tc_loop *)loop, family == AF_UNIX ? TR_PIPE : TR_TCP, live);
    if (tr == NULL) {
        return NULL;
    }
    rc = tc_uvio_handle_open(&tr->io.h, tr->kind, (int)fd);
    if (rc < 0) {
        /* libuv did not take the fd: close the handle without touching it
         * (no socket object is attached yet) */
        tr->lost_called = 1;
        tr->closing = 1;
        tc_uvio_conn_close(&tr->io);
        Py_DECREF(tr);
        return tc_uvio_set_error(rc);
    }
    Py_INCREF(sock);
    tr->io.sock = sock;
    return (PyObject *)tr;
}

static PyObject *
tr_connect(tc_transport *tr, PyObject *const *args, Py_ssize_t nargs)
{
    /* _connect(family, address) -> future (TCP only) */
    struct sockaddr_storage ss;
    int family, rc;
    PyObject *fut;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_connect(family, address)");
        return NULL;
    }
    family = PyLong_AsLong(args[0]);
    if (family == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (tr->kind != TR_TCP || tr->started || tr->conn_waiter != NULL || !tr->io.open ||
        tr->io.closing) {
        PyErr_SetString(PyExc_RuntimeError, "transport cannot connect now");
        return NULL;
    }
    if (tc_uvio_parse_inet_address(family, args[1], &ss) < 0) {
        return NULL;
    }
    fut = tc_loop_create_future(tr->loop);
    if (fut == NULL) {
        return NULL;
    }
    tr->creq.data = tr;
    rc = uv_tcp_connect(&tr->creq, &tr->io.h.tcp, (struct sockaddr *)&ss, connect_cb);
    if (rc < 0) {
        Py_DECREF(fut);
        return tc_uvio_set_error(rc);
    }
    TC_LOOP_REQUEST_STARTED(tr->loop);
    Py_INCREF(fut);
    tr->conn_waiter = fut;
    return fut;
}

/* asyncio reads sockname/peername when the transport is made and keeps them
 * after close: take the raw addresses now, convert on demand. */
static void
snapshot_addresses(tc_transport *tr)
{
    uv_os_fd_t fd;
    if (uv_fileno(&tr->io.h.handle, &fd) < 0) {
        return;
    }
    tr->sock_len = sizeof(tr->sock_addr);
    if (getsockname(fd, (struct sockaddr *)&tr->sock_addr, &tr->sock_len) < 0) {
        tr->sock_len = 0;
    }
    tr->peer_len = sizeof(tr->peer_addr);
    if (getpeername(fd, (struct sockaddr *)&tr->peer_addr, &tr->peer_len) < 0) {
        tr->peer_len = 0;
    }
}

int
tc_loop_transport_start(tc_transport *tr, PyObject *protocol, PyObject *server,
                        PyObject *waiter)
{
    int rc;
    if (tr->started || !tr->io.open || tr->io.closing) {
        PyErr_SetString(PyExc_RuntimeError, "transport cannot be started");
        return -1;
    }
    rc = PyObject_IsInstance(protocol, tr->ts->BufferedProtocol);
    if (rc < 0) {
        return -1;
    }
    tr->buffered = (char)rc;
    snapshot_addresses(tr);
    if (tr->kind == TR_TCP) {
        rc = uv_tcp_nodelay(&tr->io.h.tcp, 1);
        if (rc < 0 && rc != UV_EINVAL && rc != UV_ENOTSUP) {
            tc_uvio_set_error(rc);
            return -1;
        }
    }
    if (schedule(tr, tr->ts->fn_conn_made, NULL) < 0) {
        return -1;
    }
    Py_INCREF(protocol);
    tr->protocol = protocol;
    tr->started = 1;
    if (server != NULL && server != Py_None) {
        Py_INCREF(server);
        tr->server = server;
        tc_loop_server_attach(server);
    }
    if (waiter != NULL && waiter != Py_None) {
        PyObject *a[1] = {waiter};
        PyObject *h = tc_loop_call_soon(tr->loop, tr->loop->ls->fn_set_result_unless_cancelled,
                                         a, 1, NULL);
        if (h == NULL) {
            return -1;
        }
        Py_DECREF(h);
    }
    return 0;
}

static PyObject *
tr_start(tc_transport *tr, PyObject *const *args, Py_ssize_t nargs)
{
    /* _start(protocol, waiter=None, server=None, extra=None) */
    if (nargs < 1 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "_start(protocol, waiter=None, server=None, extra=None)");
        return NULL;
    }
    if (nargs > 3 && args[3] != Py_None) {
        if (!PyDict_Check(args[3])) {
            PyErr_SetString(PyExc_TypeError, "extra must be a dict");
            return NULL;
        }
        Py_XSETREF(tr->extra, PyDict_Copy(args[3]));
        if (tr->extra == NULL) {
            return NULL;
        }
    }
    if (tc_loop_transport_start(tr, args[0], nargs > 2 ? args[2] : NULL,
                                nargs > 1 ? args[1] : NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
tr_dispose(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    /* Close a transport that never started (connect failed or cancelled). */
    if (tr->started) {
        PyErr_SetString(PyExc_RuntimeError, "transport already started; use close()");
        return NULL;
    }
    tc_loop_transport_dispose(tr);
    Py_RETURN_NONE;
}

static PyObject *
tr_loop_closing(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    /* The loop closes with this transport alive: release the handle and the
     * fd, no protocol callbacks (asyncio leaves such transports to the GC). */
    if (tr->started && !tr->lost_called) {
        /* what asyncio's transports say when they are collected unclosed,
         * which happens once the loop has closed its selector */
        if (PyErr_ResourceWarning((PyObject *)tr, 1, "unclosed transport %R", (PyObject *)tr) < 0) {
            PyErr_WriteUnraisable((PyObject *)tr);
        }
    }
    tr->closing = 1;
    tr->lost_called = 1;
    if (tr->conn_lost == 0) {
        tr->conn_lost = 1;
    }
    tr->io.wq.pend_len = 0;
    tc_uvio_conn_close(&tr->io);
    Py_RETURN_NONE;
}

static PyObject *
tr_make_empty_waiter(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    /* loop.sendfile(): a future done once everything written so far has
     * left (at once if nothing is queued); write() is refused until
     * _reset_empty_waiter().  As asyncio's _SelectorSocketTransport. */
    PyObject *fut;
    if (tr->empty_waiter != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Empty waiter is already set");
        return NULL;
    }
    fut = tc_loop_create_future(tr->loop);
    if (fut == NULL) {
        return NULL;
    }
    if (write_buffer_size(tr) == 0 &&
        tc_loop_future_set_result(tr->loop, fut, Py_None, TC_FUTURE_NEW) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    tr->empty_waiter = Py_NewRef(fut);
    return fut;
}

static PyObject *
tr_reset_empty_waiter(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    Py_CLEAR(tr->empty_waiter);
    Py_RETURN_NONE;
}

static PyObject *
tr_close(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    if (tr->closing) {
        Py_RETURN_NONE;
    }
    tr->closing = 1;
    read_stop(tr);
    if (!tr->io.wq.inflight && tr->io.wq.pend_len == 0) {
        tr->conn_lost++;
        if (schedule(tr, tr->ts->fn_conn_lost, Py_None) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
tr_abort(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    force_close(tr, NULL);
    Py_RETURN_NONE;
}

static PyObject *
tr_force_close(tc_transport *tr, PyObject *exc)
{
    /* asyncio's _SelectorTransport._force_close(exc): drop the write buffer
     * and schedule connection_lost(exc).  The stdlib's SSLProtocol calls it
     * to abort the connection underneath TLS (handshake failure or timeout,
     * shutdown timeout). */
    force_close(tr, exc == Py_None ? NULL : exc);
    Py_RETURN_NONE;
}

static PyObject *
tr_is_closing(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(tr->closing);
}

static PyObject *
tr_write_eof(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    if (tr->closing || tr->eof) {
        Py_RETURN_NONE;
    }
    tr->eof = 1;
    if (!tr->io.wq.inflight && tr->io.wq.pend_len == 0) {
        do_shutdown(tr);
    }
    Py_RETURN_NONE;
}

static PyObject *
tr_can_write_eof(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    (void)tr;
    Py_RETURN_TRUE;
}

static PyObject *
tr_pause_reading(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    if (tr->closing || tr->paused) {
        Py_RETURN_NONE;
    }
    tr->paused = 1;
    read_stop(tr);
    if (loop_debug(tr)) {
        debug_log(tr, "%r pauses reading", NULL, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *
tr_resume_reading(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    if (tr->closing || !tr->paused) {
        Py_RETURN_NONE;
    }
    tr->paused = 0;
    if (tr->started) {
        read_start(tr);
    }
    if (loop_debug(tr)) {
        debug_log(tr, "%r resumes reading", NULL, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *
tr_is_reading(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(!tr->closing && !tr->paused);
}

static PyObject *
tr_get_protocol(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(tr->protocol ? tr->protocol : Py_None);
}

static PyObject *
tr_set_protocol(tc_transport *tr, PyObject *protocol)
{
    int rc = PyObject_IsInstance(protocol, tr->ts->BufferedProtocol);
    if (rc < 0) {
        return NULL;
    }
    tr->buffered = (char)rc;
    Py_INCREF(protocol);
    Py_XSETREF(tr->protocol, protocol);
    Py_RETURN_NONE;
}

int
tc_loop_transport_parse_limits(PyObject *args, PyObject *kwds, Py_ssize_t *high_out,
                               Py_ssize_t *low_out)
{
    static char *kwlist[] = {"high", "low", NULL};
    PyObject *high_o = Py_None, *low_o = Py_None;
    Py_ssize_t high, low;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:set_write_buffer_limits", kwlist,
                                     &high_o, &low_o)) {
        return -1;
    }
    if (high_o == Py_None) {
        if (low_o == Py_None) {
            high = 64 * 1024;
        }
        else {
            low = PyNumber_AsSsize_t(low_o, PyExc_OverflowError);
            if (low == -1 && PyErr_Occurred()) {
                return -1;
            }
            high = 4 * low;
        }
    }
    else {
        high = PyNumber_AsSsize_t(high_o, PyExc_OverflowError);
        if (high == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (low_o == Py_None) {
        low = high / 4;
        if (high < 0 && high % 4) {
            low -= 1; /* Python's floor division */
        }
    }
    else {
        low = PyNumber_AsSsize_t(low_o, PyExc_OverflowError);
        if (low == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (!(high >= low && low >= 0)) {
        PyErr_Format(PyExc_ValueError, "high (%zd) must be >= low (%zd) must be >= 0", high, low);
        return -1;
    }
    *high_out = high;
    *low_out = low;
    return 0;
}

static PyObject *
tr_set_write_buffer_limits(tc_transport *tr, PyObject *args, PyObject *kwds)
{
    Py_ssize_t high, low;
    if (tc_loop_transport_parse_limits(args, kwds, &high, &low) < 0) {
        return NULL;
    }
    tr->high = (size_t)high;
    tr->low = (size_t)low;
    maybe_pause_protocol(tr);
    Py_RETURN_NONE;
}

static PyObject *
tr_get_write_buffer_limits(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(nn)", (Py_ssize_t)tr->low, (Py_ssize_t)tr->high);
}

static PyObject *
tr_get_write_buffer_size(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(write_buffer_size(tr));
}

/* Borrowed-or-new socket object for this transport's fd (created lazily for
 * accepted connections).  New reference or NULL (no exception) if closed. */
static PyObject *
get_sock(tc_transport *tr)
{
    uv_os_fd_t fd;
    if (tr->io.sock != NULL) {
        return Py_NewRef(tr->io.sock);
    }
    if (!tr->io.open || tr->io.closing || uv_fileno(&tr->io.h.handle, &fd) < 0) {
        return NULL;
    }
    tr->io.sock = PyObject_CallFunction(tr->ts->socket_type, "iiii",
                                     -1, -1, -1, (int)fd);
    if (tr->io.sock == NULL) {
        return NULL; /* exception set */
    }
    return Py_NewRef(tr->io.sock);
}

static PyObject *
tr_get_extra_info(tc_transport *tr, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *name, *dflt = Py_None, *v, *sock, *r;
    tc_loop_transport_state *ts = tr->ts;
    int is_peer;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get_extra_info(name, default=None)");
        return NULL;
    }
    name = args[0];
    if (nargs == 2) {
        dflt = args[1];
    }
    if (tr->extra != NULL) {
        v = PyDict_GetItemWithError(tr->extra, name); /* borrowed */
        if (v != NULL) {
            return Py_NewRef(v);
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    if (!PyUnicode_Check(name)) {
        return Py_NewRef(dflt);
    }
    if (PyUnicode_Compare(name, ts->s_socket) == 0) {
        sock = get_sock(tr);
        if (sock == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            return Py_NewRef(dflt);
        }
        r = PyObject_CallOneArg(ts->TransportSocket, sock);
        Py_DECREF(sock);
        return r;
    }
    is_peer = PyUnicode_Compare(name, ts->s_peername) == 0;
    if (!is_peer && PyUnicode_Compare(name, ts->s_sockname) != 0) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        return Py_NewRef(dflt);
    }
    v = is_peer ? tc_uvio_sockaddr_to_py(&tr->peer_addr, tr->peer_len)
                : tc_uvio_sockaddr_to_py(&tr->sock_addr, tr->sock_len);
    if (v == Py_None) {
        Py_DECREF(v);
        return Py_NewRef(dflt);
    }
    return v;
}

static PyObject *
tr_repr(tc_transport *tr)
{
    uv_os_fd_t fd = -1;
    const char *kind = tr->kind == TR_TCP ? "TCPTransport" : "UnixTransport";
    const char *state = tr->lost_called ? " closed" : tr->closing ? " closing" : "";
    if (tr->io.open && !tr->io.closing) {
        uv_fileno(&tr->io.h.handle, &fd);
    }
    return PyUnicode_FromFormat("<%s fd=%d%s read=%s write=<%s, bufsize=%zu>>", kind,
                                (int)fd, state, tr->io.reading ? "polling" : "idle",
                                tr->io.wq.inflight ? "polling" : "idle", write_buffer_size(tr));
}

static PyObject *
tr_get_fd(tc_transport *tr, void *Py_UNUSED(closure))
{
    uv_os_fd_t fd;
    if (tr->io.open && !tr->io.closing && uv_fileno(&tr->io.h.handle, &fd) == 0) {
        return PyLong_FromLong((long)fd);
    }
    return PyLong_FromLong(-1);
}

static PyObject *
tr_get_server(tc_transport *tr, void *Py_UNUSED(closure))
{
    return Py_NewRef(tr->server ? tr->server : Py_None);
}

static PyObject *
tr_get_paused(tc_transport *tr, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(tr->protocol_paused);
}

/* ------------------------------------------------- module-level callbacks */

static PyObject *
fn_conn_made(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_state *st = tc_get_state(module);
    tc_transport *tr;
    PyObject *r;
    if (nargs != 1 || !PyObject_TypeCheck(args[0], st->loop_transport->Transport_type)) {
        PyErr_SetString(PyExc_TypeError, "_transport_connection_made(transport)");
        return NULL;
    }
    tr = (tc_transport *)args[0];
    if (tr->protocol == NULL) {
        Py_RETURN_NONE;
    }
    r = PyObject_CallMethodOneArg(tr->protocol, st->loop_transport->s_connection_made, (PyObject *)tr);
    /* asyncio adds the reader in its own call_soon: reading starts even if
     * connection_made() raised (the exception goes to the handler via the
     * Handle that called us). */
    if (!tr->closing) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        read_start(tr);
        PyErr_Restore(et, ev, etb);
    }
    return r == NULL ? NULL : (Py_DECREF(r), Py_NewRef(Py_None));
}

static PyObject *
fn_conn_lost(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_state *st = tc_get_state(module);
    if (nargs != 2 || !PyObject_TypeCheck(args[0], st->loop_transport->Transport_type)) {
        PyErr_SetString(PyExc_TypeError, "_transport_connection_lost(transport, exc)");
        return NULL;
    }
    if (call_connection_lost((tc_transport *)args[0], args[1] == Py_None ? NULL : args[1]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------- type */

static int
tr_traverse(tc_transport *tr, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(tr));
    Py_VISIT(tr->base_extra_slot);
    Py_VISIT(tr->loop);
    Py_VISIT(tr->protocol);
    Py_VISIT(tr->io.sock);
    Py_VISIT(tr->server);
    Py_VISIT(tr->extra);
    Py_VISIT(tr->io.live);
    Py_VISIT(tr->conn_waiter);
    Py_VISIT(tr->empty_waiter);
    Py_VISIT(tr->io.wq.obj);
    Py_VISIT(tr->rexc);
    return 0;
}

static int
tr_clear(tc_transport *tr)
{
    /* Never reached while the handle is open: the self-reference keeps the
     * object alive until its close callback. */
    Py_CLEAR(tr->base_extra_slot);
    Py_CLEAR(tr->protocol);
    Py_CLEAR(tr->io.sock);
    Py_CLEAR(tr->server);
    Py_CLEAR(tr->extra);
    Py_CLEAR(tr->io.live);
    Py_CLEAR(tr->conn_waiter);
    Py_CLEAR(tr->empty_waiter);
    Py_CLEAR(tr->io.wq.obj);
    Py_CLEAR(tr->rexc);
    if (!tr->io.open) {
        Py_CLEAR(tr->loop);
    }
    return 0;
}

static void
tr_dealloc(tc_transport *tr)
{
    PyTypeObject *tp = Py_TYPE(tr);
    PyObject_GC_UnTrack(tr);
    if (tr->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)tr);
    }
    release_rview(tr);
    tr_clear(tr);
    Py_CLEAR(tr->loop);
    tc_uvio_wq_free(&tr->io.wq);
    tp->tp_free((PyObject *)tr);
    Py_DECREF(tp);
}

static PyMethodDef tr_methods[] = {
    {"_open", (PyCFunction)(void (*)(void))tr_open, METH_FASTCALL | METH_CLASS,
     "_open(loop, sock, live): transport on sock's fd (libuv takes the fd)."},
    {"_connect", (PyCFunction)(void (*)(void))tr_connect, METH_FASTCALL,
     "_connect(family, address) -> future: connect the TCP handle."},
    {"_start", (PyCFunction)(void (*)(void))tr_start, METH_FASTCALL,
     "_start(protocol, waiter=None, server=None, extra=None)."},
    {"_dispose", (PyCFunction)tr_dispose, METH_NOARGS, "Close a transport that never started."},
    {"_loop_closing", (PyCFunction)tr_loop_closing, METH_NOARGS,
     "Release handle and fd because the loop closes."},
    {"_make_empty_waiter", (PyCFunction)tr_make_empty_waiter, METH_NOARGS,
     "Future done when the write buffer is empty; write() refused meanwhile (sendfile)."},
    {"_reset_empty_waiter", (PyCFunction)tr_reset_empty_waiter, METH_NOARGS,
     "End of sendfile: write() allowed again."},
    {"write", (PyCFunction)tr_write, METH_O, NULL},
    {"writelines", (PyCFunction)tr_writelines, METH_O, NULL},
    {"write_eof", (PyCFunction)tr_write_eof, METH_NOARGS, NULL},
    {"can_write_eof", (PyCFunction)tr_can_write_eof, METH_NOARGS, NULL},
    {"close", (PyCFunction)tr_close, METH_NOARGS, NULL},
    {"abort", (PyCFunction)tr_abort, METH_NOARGS, NULL},
    {"_force_close", (PyCFunction)tr_force_close, METH_O,
     "_force_close(exc): abort, connection_lost(exc) (asyncio's, used by SSLProtocol)."},
    {"is_closing", (PyCFunction)tr_is_closing, METH_NOARGS, NULL},
    {"pause_reading", (PyCFunction)tr_pause_reading, METH_NOARGS, NULL},
    {"resume_reading", (PyCFunction)tr_resume_reading, METH_NOARGS, NULL},
    {"is_reading", (PyCFunction)tr_is_reading, METH_NOARGS, NULL},
    {"get_protocol", (PyCFunction)tr_get_protocol, METH_NOARGS, NULL},
    {"set_protocol", (PyCFunction)tr_set_protocol, METH_O, NULL},
    {"set_write_buffer_limits", (PyCFunction)(void (*)(void))tr_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"get_write_buffer_limits", (PyCFunction)tr_get_write_buffer_limits, METH_NOARGS, NULL},
    {"get_write_buffer_size", (PyCFunction)tr_get_write_buffer_size, METH_NOARGS, NULL},
    {"get_extra_info", (PyCFunction)(void (*)(void))tr_get_extra_info, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef tr_getset[] = {
    {"_fd", (getter)tr_get_fd, NULL, "fd of the handle, -1 when closed", NULL},
    {"_server", (getter)tr_get_server, NULL, NULL, NULL},
    {"_protocol_paused", (getter)tr_get_paused, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef tr_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(tc_transport, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot tr_slots[] = {
    {Py_tp_doc, "asyncio.Transport on a libuv TCP or Unix stream handle."},
    {Py_tp_dealloc, tr_dealloc},
    {Py_tp_traverse, tr_traverse},
    {Py_tp_clear, tr_clear},
    {Py_tp_repr, tr_repr},
    {Py_tp_methods, tr_methods},
    {Py_tp_getset, tr_getset},
    {Py_tp_members, tr_members},
    {0, NULL},
};

static PyType_Spec tr_spec = {
    .name = "tornado_c._core.StreamTransport",
    .basicsize = sizeof(tc_transport),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = tr_slots,
};

static PyMethodDef transport_functions[] = {
    {"_transport_connection_made", (PyCFunction)(void (*)(void))fn_conn_made, METH_FASTCALL, NULL},
    {"_transport_connection_lost", (PyCFunction)(void (*)(void))fn_conn_lost, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

#define INTERN(field, text)                                   \
    do {                                                      \
        if ((ts->field = PyUnicode_InternFromString(text)) == NULL) { \
            return -1;                                        \
        }                                                     \
    } while (0)

int
tc_loop_transport_exec(PyObject *module, tc_state *st)
{
    tc_loop_transport_state *ts = st->loop_transport;
    {
        PyObject *base = tc_import_attr("asyncio", "Transport");
        int rc;
        if (base == NULL) {
            return -1;
        }
        if (!PyType_Check(base) ||
            ((PyTypeObject *)base)->tp_basicsize !=
                (Py_ssize_t)(offsetof(tc_transport, base_extra_slot) + sizeof(PyObject *))) {
            Py_DECREF(base);
            PyErr_SetString(PyExc_ImportError,
                            "asyncio.Transport has an unexpected instance layout "
                            "(expected __slots__ = ('_extra',)); tornado_c needs updating");
            return -1;
        }
        rc = tc_add_type(module, &tr_spec, base, &ts->Transport_type);
        Py_DECREF(base);
        if (rc < 0) {
            return -1;
        }
    }
    if (PyModule_AddFunctions(module, transport_functions) < 0) {
        return -1;
    }
    if ((ts->fn_conn_made = PyObject_GetAttrString(module, "_transport_connection_made")) == NULL ||
        (ts->fn_conn_lost = PyObject_GetAttrString(module, "_transport_connection_lost")) == NULL) {
        return -1;
    }
    if ((ts->TransportSocket = tc_import_attr("asyncio.trsock", "TransportSocket")) == NULL ||
        (ts->socket_type = tc_import_attr("socket", "socket")) == NULL ||
        (ts->BufferedProtocol = tc_import_attr("asyncio", "BufferedProtocol")) == NULL ||
        (ts->logger = tc_import_attr("asyncio.log", "logger")) == NULL) {
        return -1;
    }
    if ((ts->minus_one = PyLong_FromLong(-1)) == NULL) {
        return -1;
    }
    INTERN(s_connection_made, "connection_made");
    INTERN(s_connection_lost, "connection_lost");
    INTERN(s_data_received, "data_received");
    INTERN(s_eof_received, "eof_received");
    INTERN(s_get_buffer, "get_buffer");
    INTERN(s_buffer_updated, "buffer_updated");
    INTERN(s_pause_writing, "pause_writing");
    INTERN(s_resume_writing, "resume_writing");
    INTERN(s_getpeername, "getpeername");
    INTERN(s_getsockname, "getsockname");
    INTERN(s_wakeup, "_wakeup");
    INTERN(s_warning, "warning");
    INTERN(s_get_debug, "get_debug");
    INTERN(s_socket, "socket");
    INTERN(s_peername, "peername");
    INTERN(s_sockname, "sockname");
    INTERN(s_socket_send_warning, "socket.send() raised exception.");
    return tc_loop_server_exec(module, st);
}

int
tc_loop_transport_traverse(tc_state *st, visitproc visit, void *arg)
{
    tc_loop_transport_state *ts = st->loop_transport;
    Py_VISIT(ts->Transport_type);
    Py_VISIT(ts->Server_type);
    Py_VISIT(ts->TransportSocket);
    Py_VISIT(ts->socket_type);
    Py_VISIT(ts->BufferedProtocol);
    Py_VISIT(ts->logger);
    Py_VISIT(ts->fn_conn_made);
    Py_VISIT(ts->fn_conn_lost);
    return 0;
}

void
tc_loop_transport_clear(tc_state *st)
{
    tc_loop_transport_state *ts = st->loop_transport;
    Py_CLEAR(ts->Transport_type);
    Py_CLEAR(ts->Server_type);
    Py_CLEAR(ts->TransportSocket);
    Py_CLEAR(ts->socket_type);
    Py_CLEAR(ts->BufferedProtocol);
    Py_CLEAR(ts->logger);
    Py_CLEAR(ts->fn_conn_made);
    Py_CLEAR(ts->fn_conn_lost);
    Py_CLEAR(ts->minus_one);
    Py_CLEAR(ts->s_connection_made);
    Py_CLEAR(ts->s_connection_lost);
    Py_CLEAR(ts->s_data_received);
    Py_CLEAR(ts->s_eof_received);
    Py_CLEAR(ts->s_get_buffer);
    Py_CLEAR(ts->s_buffer_updated);
    Py_CLEAR(ts->s_pause_writing);
    Py_CLEAR(ts->s_resume_writing);
    Py_CLEAR(ts->s_getpeername);
    Py_CLEAR(ts->s_getsockname);
    Py_CLEAR(ts->s_wakeup);
    Py_CLEAR(ts->s_warning);
    Py_CLEAR(ts->s_get_debug);
    Py_CLEAR(ts->s_socket);
    Py_CLEAR(ts->s_peername);
    Py_CLEAR(ts->s_sockname);
    Py_CLEAR(ts->s_socket_send_warning);
}
