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
 * Order (loop.h, tc_loop_hold_io): libuv calls read_cb / write_cb inside
 * the loop's poll.  When callbacks were ready before that poll, asyncio
 * would run them first, so the transport does not touch the protocol there:
 * alloc_cb lends no buffer (libuv then reads nothing and calls read_cb with
 * UV_ENOBUFS; the fd stays readable) and the read is queued with
 * tc_loop_call_io: tc_loop_tr_read_ready reads by itself, one read as
 * asyncio's _read_ready (data, EOF and errors keep their order, and nothing
 * is copied: the bytes stay in the socket until then).  A write completion
 * does its libuv part at once and queues the protocol's part
 * (resume_writing, the empty waiter, connection_lost after close(), the
 * shutdown after write_eof()): tc_loop_tr_write_done.  Otherwise (the common
 * case) both run from the libuv callback.
 *
 * loop.sendfile() (tornado_c/_loop_sendfile.py) pauses reading, waits on
 * _make_empty_waiter() for the write queue to drain and then writes to the
 * fd itself with os.sendfile(); write() raises until _reset_empty_waiter().
 *
 * This file is the transport's I/O: errors, the handle, scheduling of the
 * protocol's calls, writing (write() and writelines() themselves: the hot
 * path stays in one file), reading and connecting.  Its Python face --
 * the other methods, the type, the module-level callbacks and the exec --
 * is transport_py.c; the struct and what the two share are in transport.h.
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
#include <unistd.h>

#define LOG_THRESHOLD_FOR_CONNLOST_WRITES 5


/* ------------------------------------------------------------------ errors */

/* The plumbing both transports share (the datagram transport of udp.c uses
 * it too; transport.h): reporting to the loop's exception handler, asyncio's
 * debug-mode logging, the protocol's flow-control calls, scheduling. */

void
tc_loop_tr_report(tc_loop *loop, PyObject *transport, PyObject *protocol, PyObject *exc,
                  const char *message, int with_ctx)
{
    PyObject *extra = NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    if (with_ctx) {
        extra = PyDict_New();
        if (extra != NULL) {
            if (PyDict_SetItemString(extra, "transport", transport) < 0 ||
                PyDict_SetItemString(extra, "protocol", protocol ? protocol : Py_None) < 0) {
                Py_CLEAR(extra);
            }
        }
        if (extra == NULL) {
            /* building the context failed: report without it */
            PyErr_Clear();
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        }
    }
    tc_loop_report_exception(loop, message, extra);
    Py_XDECREF(extra);
}

void
tc_loop_tr_report_current(tc_loop *loop, PyObject *transport, PyObject *protocol,
                          const char *message)
{
    PyObject *exc = tc_uvio_fetch_exception();
    if (exc != NULL) {
        tc_loop_tr_report(loop, transport, protocol, exc, message, 1);
        Py_DECREF(exc);
    }
}

int
tc_loop_tr_debug_on(tc_loop *loop, tc_loop_transport_state *ts)
{
    PyObject *r = PyObject_CallMethodNoArgs((PyObject *)loop, ts->s_get_debug);
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

void
tc_loop_tr_debug(tc_loop *loop, tc_loop_transport_state *ts, PyObject *transport,
                 const char *fmt, const char *text, PyObject *exc)
{
    PyObject *et, *ev, *etb, *meth = NULL, *args = NULL, *kw = NULL, *r = NULL;
    PyErr_Fetch(&et, &ev, &etb);
    meth = PyObject_GetAttrString(ts->logger, "debug");
    if (meth == NULL) {
        goto done;
    }
    args = text ? Py_BuildValue("(sOs)", fmt, transport, text)
                : Py_BuildValue("(sO)", fmt, transport);
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
        tc_loop_report_exception(loop, "asyncio debug logging failed", NULL);
    }
    Py_XDECREF(r);
    Py_XDECREF(kw);
    Py_XDECREF(args);
    Py_XDECREF(meth);
    PyErr_Restore(et, ev, etb);
}

void
tc_loop_tr_call_flow(tc_loop *loop, PyObject *transport, PyObject *protocol, PyObject *name,
                     const char *message)
{
    PyObject *r;
    if (protocol == NULL) {
        return;
    }
    r = PyObject_CallMethodNoArgs(protocol, name);
    if (r == NULL) {
        tc_loop_tr_report_current(loop, transport, protocol, message);
        return;
    }
    Py_DECREF(r);
}

int
tc_loop_tr_call_soon(tc_loop *loop, PyObject *fn, PyObject *transport, PyObject *arg)
{
    PyObject *args[2] = {transport, arg};
    PyObject *h = tc_loop_call_soon(loop, fn, args, arg ? 2 : 1, NULL);
    if (h == NULL) {
        return -1;
    }
    Py_DECREF(h);
    return 0;
}

/* The stream transport's use of them. */
static inline void
report_exc(tc_transport *tr, PyObject *exc, const char *message, int with_ctx)
{
    tc_loop_tr_report(tr->loop, (PyObject *)tr, tr->protocol, exc, message, with_ctx);
}

static void fail_empty_waiter(tc_transport *tr);

/* asyncio's _fatal_error: `exc` borrowed. */
static void
fatal_error(tc_transport *tr, PyObject *exc, const char *message)
{
    if (!PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_OSError)) {
        report_exc(tr, exc, message, 1);
    }
    else if (tc_loop_tr_loop_debug(tr)) {
        tc_loop_tr_debug_log(tr, "%r: %s", message, exc);
    }
    tc_loop_tr_force_close(tr, exc);
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

/* protocol.data_received(bytes) with a copy of buf[0:n] (the loop's shared
 * read buffer: copied before any Python code runs); a failure is fatal to
 * the transport, as in asyncio. */
static void
call_data_received(tc_transport *tr, const char *buf, Py_ssize_t n)
{
    PyObject *data = PyBytes_FromStringAndSize(buf, n);
    if (data == NULL) {
        fatal_error_current(tr, "Fatal read error on socket transport");
        return;
    }
    PyObject *r = PyObject_CallMethodOneArg(tr->protocol, tr->ts->s_data_received, data);
    Py_DECREF(data);
    if (r == NULL) {
        fatal_error_current(tr, "Fatal error: protocol.data_received() call failed.");
        return;
    }
    Py_DECREF(r);
}

/* protocol.buffer_updated(n) of a buffered protocol; a failure is fatal
 * to the transport, as in asyncio. */
static void
call_buffer_updated(tc_transport *tr, Py_ssize_t n)
{
    PyObject *nobj = PyLong_FromSsize_t(n);
    PyObject *r = NULL;
    if (nobj != NULL) {
        r = PyObject_CallMethodOneArg(tr->protocol, tr->ts->s_buffer_updated, nobj);
        Py_DECREF(nobj);
    }
    if (r == NULL) {
        fatal_error_current(tr, "Fatal error: protocol.buffer_updated() call failed.");
        return;
    }
    Py_DECREF(r);
}


/* --------------------------------------------------------------- handles */


tc_transport *
tc_loop_tr_alloc(tc_loop_transport_state *ts, tc_loop *loop, int kind, PyObject *live)
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
    return tc_loop_tr_alloc(ts, loop, kind, live);
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

/* protocol.connection_lost(exc) then release everything (asyncio's
 * _call_connection_lost).  Returns -1 with the protocol's exception set. */
int
tc_loop_tr_call_connection_lost(tc_transport *tr, PyObject *exc)
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

void
tc_loop_tr_read_stop(tc_transport *tr)
{
    if (tr->io.reading) {
        uv_read_stop(&tr->io.h.stream);
        tr->io.reading = 0;
    }
}


/* asyncio's _force_close; `exc` borrowed, may be NULL. */
void
tc_loop_tr_force_close(tc_transport *tr, PyObject *exc)
{
    if (tr->conn_lost) {
        return;
    }
    tr->io.wq.pend_len = 0; /* the in-flight write cannot be recalled */
    if (!tr->closing) {
        tr->closing = 1;
        tc_loop_tr_read_stop(tr);
    }
    tr->conn_lost++;
    if (tc_loop_tr_schedule(tr, tr->ts->fn_conn_lost, exc ? exc : Py_None) < 0) {
        tc_loop_report_exception(tr->loop, "scheduling connection_lost failed", NULL);
        if (tc_loop_tr_call_connection_lost(tr, exc) < 0) {
            tc_loop_report_exception(tr->loop, "Exception in connection_lost", NULL);
        }
    }
}

/* ---------------------------------------------------------------- writing */

/* Inline where the write path calls it (the common case is one comparison);
 * the other file uses the function below. */
static inline void
maybe_pause_protocol(tc_transport *tr)
{
    if (tc_loop_tr_write_buffer_size(tr) <= tr->high || tr->protocol_paused) {
        return;
    }
    tr->protocol_paused = 1;
    tc_loop_tr_call_flow(tr->loop, (PyObject *)tr, tr->protocol, tr->ts->s_pause_writing,
                         "protocol.pause_writing() failed");
}

void
tc_loop_tr_maybe_pause_protocol(tc_transport *tr)
{
    maybe_pause_protocol(tr);
}

static void
maybe_resume_protocol(tc_transport *tr)
{
    if (!tr->protocol_paused || tc_loop_tr_write_buffer_size(tr) > tr->low) {
        return;
    }
    tr->protocol_paused = 0;
    tc_loop_tr_call_flow(tr->loop, (PyObject *)tr, tr->protocol, tr->ts->s_resume_writing,
                         "protocol.resume_writing() failed");
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
    if (tc_loop_hold_io(tr->loop)) {
        /* callbacks ready before this poll run first (see the top) */
        if (!tr->wdone_scheduled) {
            PyObject *arg = (PyObject *)tr;
            if (tc_loop_call_io(tr->loop, tr->ts->fn_write_done, &arg, 1) < 0) {
                tc_loop_report_exception(tr->loop, "scheduling a write completion failed",
                                         NULL);
                tc_loop_tr_write_done(tr);
            }
            else {
                tr->wdone_scheduled = 1;
            }
        }
        goto done;
    }
    tc_loop_tr_write_done(tr);
done:
    Py_DECREF(tr);
}

/* The protocol's side of a write completion (asyncio's _write_ready after
 * its send). */
void
tc_loop_tr_write_done(tc_transport *tr)
{
    if (tr->conn_lost || tr->lost_called) {
        return;
    }
    Py_INCREF(tr);
    maybe_resume_protocol(tr); /* may write more */
    if (!tr->io.wq.inflight && tr->io.wq.pend_len == 0 && !tr->conn_lost) {
        resolve_empty_waiter(tr, NULL);
        if (tr->closing) {
            if (tc_loop_tr_call_connection_lost(tr, NULL) < 0) {
                tc_loop_report_exception(tr->loop, "Exception in callback connection_lost", NULL);
            }
        }
        else if (tr->eof) {
            tc_loop_tr_do_shutdown(tr);
        }
    }
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

void
tc_loop_tr_do_shutdown(tc_transport *tr)
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

PyObject *
tc_loop_tr_write(tc_transport *tr, PyObject *data)
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

PyObject *
tc_loop_tr_writelines(tc_transport *tr, PyObject *list_of_data)
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
            res = tc_loop_tr_write(tr, joined);
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
    if (tc_loop_hold_io(tr->loop)) {
        /* callbacks ready before this poll run first: read later (the top) */
        tr->read_held = 1;
        buf->base = NULL;
        buf->len = 0;
        return;
    }
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

void
tc_loop_tr_release_rview(tc_transport *tr)
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
    tc_loop_tr_read_stop(tr);
    tr->read_eof = 1;
    if (tc_loop_tr_loop_debug(tr)) {
        tc_loop_tr_debug_log(tr, "%r received EOF", NULL, NULL);
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
    TC_LOOP_ENTER(tr->loop);
    Py_INCREF(tr);
    if (nread == UV_ENOBUFS && tr->read_held) {
        tr->read_held = 0;
        if (!tr->read_scheduled) {
            PyObject *arg = (PyObject *)tr;
            if (tc_loop_call_io(tr->loop, tr->ts->fn_read_ready, &arg, 1) < 0) {
                tc_loop_tr_read_stop(tr);
                fatal_error_current(tr, "Fatal read error on socket transport");
            }
            else {
                tr->read_scheduled = 1;
            }
        }
        goto done;
    }
    if (tr->buffered) {
        if (tr->rexc != NULL) {
            PyObject *exc = tr->rexc;
            tr->rexc = NULL;
            tc_loop_tr_release_rview(tr);
            if (tr->protocol != NULL && !tr->closing) {
                fatal_error(tr, exc, "Fatal error: protocol.get_buffer() call failed.");
            }
            Py_DECREF(exc);
            goto done;
        }
        tc_loop_tr_release_rview(tr);
        if (nread == 0 || nread == UV_ENOBUFS || tr->protocol == NULL || tr->closing) {
            goto done;
        }
        if (nread > 0) {
            call_buffer_updated(tr, nread);
            goto done;
        }
    }
    else {
        if (nread > 0) {
            if (tr->protocol == NULL || tr->closing) {
                goto done;
            }
            call_data_received(tr, buf->base, nread);
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
        tc_loop_tr_read_stop(tr);
        fatal_uv_error(tr, (int)nread, "Fatal read error on socket transport");
    }
done:
    Py_DECREF(tr);
}

/* A read held back in the poll (see the top), now in the loop's queue: one
 * read() of the socket, as asyncio's _read_ready. */
void
tc_loop_tr_read_ready(tc_transport *tr)
{
    uv_os_fd_t fd;
    ssize_t n;
    int err = 0;
    tr->read_scheduled = 0;
    if (!tr->io.reading || tr->closing || tr->protocol == NULL || !tr->io.open ||
        tr->io.closing || uv_fileno(&tr->io.h.handle, &fd) < 0) {
        return;
    }
    Py_INCREF(tr);
    if (tr->buffered) {
        Py_buffer view;
        PyObject *obj = PyObject_CallMethodOneArg(tr->protocol, tr->ts->s_get_buffer,
                                                  tr->ts->minus_one);
        if (obj == NULL) {
            fatal_error_current(tr, "Fatal error: protocol.get_buffer() call failed.");
            goto done;
        }
        if (PyObject_GetBuffer(obj, &view, PyBUF_WRITABLE) < 0) {
            Py_DECREF(obj);
            fatal_error_current(tr, "Fatal error: protocol.get_buffer() call failed.");
            goto done;
        }
        Py_DECREF(obj);
        if (view.len == 0) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
            fatal_error_current(tr, "Fatal error: protocol.get_buffer() call failed.");
            goto done;
        }
        do {
            n = read(fd, view.buf, (size_t)view.len);
        } while (n < 0 && errno == EINTR);
        err = errno;
        PyBuffer_Release(&view);
        if (n > 0) {
            call_buffer_updated(tr, n);
            goto done;
        }
    }
    else {
        char *buf = tc_loop_read_buffer(tr->loop);
        do {
            n = read(fd, buf, TC_UVIO_READ_BUF_SIZE);
        } while (n < 0 && errno == EINTR);
        err = errno;
        if (n > 0) {
            call_data_received(tr, buf, n);
            goto done;
        }
    }
    if (n == 0) {
        on_eof(tr);
    }
    else if (err != EAGAIN && err != EWOULDBLOCK) {
        /* libuv's error codes are negated errno values on Unix */
        tc_loop_tr_read_stop(tr);
        fatal_uv_error(tr, -err, "Fatal read error on socket transport");
    }
done:
    Py_DECREF(tr);
}

void
tc_loop_tr_read_start(tc_transport *tr)
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

void
tc_loop_tr_connect_cb(uv_connect_t *req, int status)
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

