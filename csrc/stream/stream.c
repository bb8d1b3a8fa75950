/* stream component, the C core: tornado.iostream.IOStream on libuv streams.
 *
 * This file is what stream.h promises (buffers, reads, writes, corking,
 * closing, C consumers); the Python face of the same object -- the IOStream
 * methods and attributes, the type, exec -- is stream_py.c, and the struct
 * both share is in stream/internal.h.
 *
 * One tc_stream owns one uv_tcp_t / uv_pipe_t opened on a connected socket
 * (or, for a client, on a socket that tornado_c.iostream connects first),
 * an input buffer and a write queue.
 *
 * Input: an empty stream reads into the loop component's shared page-aligned
 * read buffer and the bytes are moved at once into a right-sized buffer of
 * the stream's own (which later reads append to, and which is freed once
 * drained), so idle connections hold no input memory.  The buffered input
 * is RDATA(s)[rstart .. rstart+rlen).  The bytes go either
 * to the C consumer (on_data) or are matched against the one pending Python
 * read (delimiter, regex, byte count, read_into, until close), exactly as
 * upstream's _find_read_pos does.  The handle reads only while somebody
 * wants bytes: a pending Python read, an unpaused consumer, or -- to notice
 * a close -- an empty buffer with a close callback or after a completed
 * read (upstream's polling rules).  As upstream, read_*() first tries the
 * buffer, then a non-blocking read() of what the socket holds, then waits
 * for the loop (stream_py.c).
 *
 * Output: the loop component's shared write queue (loop/uvio.h):
 * uv_try_write() first from the caller's bytes; the rest becomes the single
 * uv_write in flight (a bytes object is referenced, anything else is
 * copied); writes made while one is in flight are appended to `pend`.  The
 * write futures of the Python API resolve when the kernel took every byte up
 * to their position (upstream's _total_write_done_index).
 *
 * Lifetime: as upstream's IOStream, which the IOLoop keeps alive from the
 * first time it waits for the loop (its handler is registered) until it is
 * closed, the stream takes a reference to itself and joins the loop's set
 * of live objects the first time libuv may call back into it -- a read
 * started, a write issued, a connect begun, a C consumer -- and keeps them
 * until the close callback (the uvio core does both: tc_uvio_conn with
 * TC_UVIO_HOLD_LAZY, tc_uvio_conn_hold()); a loop that closes with the
 * stream still open releases handle and fd (_loop_closing).  Before that
 * only its users reference it, and a stream they drop closes its connection
 * (stream_finalize, stream_py.c), as upstream's socket does when collected.  Closing
 * takes the self-reference too: the object outlives the handle.
 */
#include "stream/internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* ------------------------------------------------------------ small utils */

/* Make sure the Python-side names exist (tornado_c.iostream registers them). */
static int
ensure_setup(tc_state *st)
{
    PyObject *m;
    if (st->stream->IOStream_cls != NULL) {
        return 0;
    }
    m = PyImport_ImportModule("tornado_c.iostream");
    if (m == NULL) {
        return -1;
    }
    Py_DECREF(m);
    if (st->stream->IOStream_cls == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tornado_c.iostream did not register its classes");
        return -1;
    }
    return 0;
}

int
tc_stream_is_connreset(PyObject *exc)
{
    PyObject *e;
    long v;
    if (exc == NULL || !PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_OSError)) {
        return 0;
    }
    e = PyObject_GetAttrString(exc, "errno");
    if (e == NULL) {
        PyErr_Clear();
        return 0;
    }
    v = e == Py_None ? 0 : PyLong_AsLong(e);
    Py_DECREF(e);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return v == ECONNRESET || v == ECONNABORTED || v == EPIPE || v == ETIMEDOUT;
}

/* gen_log.<level>(fmt, *args); errors reported to the loop. */
void
tc_stream_log(tc_stream *s, const char *level, PyObject *msg)
{
    PyObject *r;
    if (msg == NULL) {
        tc_stream_report(s, "building a log message failed");
        return;
    }
    r = PyObject_CallMethod(s->st->stream->gen_log, level, "O", msg);
    Py_DECREF(msg);
    if (r == NULL) {
        tc_stream_report(s, "logging failed");
    }
    Py_XDECREF(r);
}

/* fut.set_exception(exc) unless done; then fut.exception() (marks it
 * retrieved, as upstream's _signal_closed does).  Errors are reported. */
static void
fail_future(tc_stream *s, PyObject *fut, PyObject *exc)
{
    if (tc_loop_future_set_exception(s->loop, fut, exc, TC_FUTURE_UNLESS_DONE, 1) < 0) {
        tc_stream_report(s, "failing a future failed");
    }
}

PyObject *
tc_stream_closed_error(tc_state *st, PyObject *error)
{
    PyObject *kw = PyDict_New(), *args = NULL, *r = NULL;
    if (kw == NULL) {
        return NULL;
    }
    if (PyDict_SetItemString(kw, "real_error", error ? error : Py_None) < 0) {
        goto done;
    }
    args = PyTuple_New(0);
    if (args == NULL) {
        goto done;
    }
    r = PyObject_Call(st->stream->StreamClosedError, args, kw);
done:
    Py_XDECREF(args);
    Py_DECREF(kw);
    return r;
}

static PyObject *
closed_error(tc_stream *s)
{
    return tc_stream_closed_error(s->st, s->error);
}

PyObject *
tc_stream_set_closed_error(tc_stream *s)
{
    PyObject *e = closed_error(s);
    if (e != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return NULL;
}

/* ------------------------------------------------------------- reading */

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static int
wants_input(tc_stream *s)
{
    if (s->closed || s->connecting || s->end_queued || !tc_stream_handle_usable(s)) {
        return 0;
    }
    if (s->tls_hs) {
        return 1; /* the TLS handshake waits for the peer's records */
    }
    if (s->ccb != NULL) {
        return !s->cpaused;
    }
    /* upstream polls for reads while a read is pending, and -- to notice a
     * close -- while the buffer is empty and the stream has a close
     * callback or has already been through a read (_handle_events keeps
     * READ for an idle stream with an empty buffer) */
    return s->rmode != R_NONE ||
           (s->rlen == 0 && (s->close_callback != NULL || s->idle_listen));
}

static void stream_close(tc_stream *s, PyObject *exc);

void
tc_stream_update_reading(tc_stream *s)
{
    int want = wants_input(s);
    if (want && !s->io.reading) {
        int rc = uv_read_start(&s->io.h.stream, alloc_cb, read_cb);
        if (rc < 0) {
            PyObject *exc = tc_uvio_error(rc);
            if (exc == NULL) {
                tc_stream_report(s, "uv_read_start failed");
                return;
            }
            stream_close(s, exc);
            Py_DECREF(exc);
            return;
        }
        s->io.reading = 1;
        tc_uvio_conn_hold(&s->io);
    }
    else if (!want && s->io.reading) {
        uv_read_stop(&s->io.h.stream);
        s->io.reading = 0;
    }
}

static void
consume(tc_stream *s, size_t n)
{
    if (n >= s->rlen) {
        s->rstart = 0;
        s->rlen = 0;
        if (!s->shared && s->rbuf != NULL) {
            PyMem_Free(s->rbuf); /* empty: the next read uses the shared buffer */
            s->rbuf = NULL;
            s->rcap = 0;
        }
        return;
    }
    s->rstart += n;
    s->rlen -= n;
}

void
tc_stream_clear_target(tc_stream *s)
{
    s->rmode = R_NONE;
    s->partial = 0;
    s->into_copied = 0;
    Py_CLEAR(s->rtarget);
    if (s->into_held) {
        s->into_held = 0;
        PyBuffer_Release(&s->into);
    }
}

/* upstream's _check_max_bytes: -1 with UnsatisfiableReadError set */
static int
check_max_bytes(tc_stream *s, size_t size)
{
    PyObject *msg;
    if (s->rmax < 0 || size <= (size_t)s->rmax) {
        return 0;
    }
    msg = PyUnicode_FromFormat("delimiter %R not found within %zd bytes",
                               s->rtarget, s->rmax);
    if (msg != NULL) {
        PyErr_SetObject(s->st->stream->UnsatisfiableReadError, msg);
        Py_DECREF(msg);
    }
    return -1;
}

/* upstream's _find_read_pos: >= 0 position, -1 not yet, -2 error set. */
Py_ssize_t
tc_stream_find_read_pos(tc_stream *s)
{
    const char *data = RDATA(s) + s->rstart;
    switch (s->rmode) {
    case R_BYTES:
    case R_INTO:
        if (s->rlen >= (size_t)s->rbytes || (s->partial && s->rlen > 0)) {
            return s->rlen < (size_t)s->rbytes ? (Py_ssize_t)s->rlen : s->rbytes;
        }
        return -1;
    case R_DELIM: {
        const char *d = PyBytes_AS_STRING(s->rtarget);
        size_t dlen = (size_t)PyBytes_GET_SIZE(s->rtarget);
        const char *p;
        if (s->rlen == 0) {
            return -1;
        }
        p = dlen == 0 ? data : memmem(data, s->rlen, d, dlen);
        if (p != NULL) {
            size_t end = (size_t)(p - data) + dlen;
            if (check_max_bytes(s, end) < 0) {
                return -2;
            }
            return (Py_ssize_t)end;
        }
        return check_max_bytes(s, s->rlen) < 0 ? -2 : -1;
    }
    case R_REGEX: {
        PyObject *view, *m, *end, *r;
        Py_ssize_t pos;
        if (s->rlen == 0) {
            return -1;
        }
        view = PyMemoryView_FromMemory((char *)data, (Py_ssize_t)s->rlen, PyBUF_READ);
        if (view == NULL) {
            return -2;
        }
        m = PyObject_CallMethod(s->rtarget, "search", "O", view);
        r = PyObject_CallMethod(view, "release", NULL);
        Py_DECREF(view);
        if (r == NULL) {
            Py_XDECREF(m);
            return -2;
        }
        Py_DECREF(r);
        if (m == NULL) {
            return -2;
        }
        if (m == Py_None) {
            Py_DECREF(m);
            return check_max_bytes(s, s->rlen) < 0 ? -2 : -1;
        }
        end = PyObject_CallMethod(m, "end", NULL);
        Py_DECREF(m);
        if (end == NULL) {
            return -2;
        }
        pos = PyLong_AsSsize_t(end);
        Py_DECREF(end);
        if (pos < 0) {
            return -2;
        }
        if (check_max_bytes(s, (size_t)pos) < 0) {
            return -2;
        }
        return pos;
    }
    default:
        return -1;
    }
}

/* read_into: the caller's buffer shows the bytes as they arrive, as with
 * upstream (which reads straight into it). */
void
tc_stream_fill_into(tc_stream *s)
{
    size_t n;
    if (s->rmode != R_INTO || !s->into_held) {
        return;
    }
    n = s->rlen < (size_t)s->into.len ? s->rlen : (size_t)s->into.len;
    if (n > s->into_copied) {
        memcpy((char *)s->into.buf + s->into_copied, RDATA(s) + s->rstart + s->into_copied,
               n - s->into_copied);
        s->into_copied = n;
    }
}

/* upstream's _read_from_buffer/_finish_read: resolve the read future with
 * `size` bytes (bytes object, or the count for read_into).  -1 on error. */
int
tc_stream_finish_read(tc_stream *s, size_t size)
{
    PyObject *result, *fut;
    int rc;
    if (s->rmode == R_INTO && s->into_held) {
        size_t n = size <= s->rlen ? size : s->rlen;
        if (n > (size_t)s->into.len) {
            n = (size_t)s->into.len;
        }
        tc_stream_fill_into(s);
        size = n;
        result = PyLong_FromSize_t(n);
    }
    else {
        result = PyBytes_FromStringAndSize(RDATA(s) + s->rstart, (Py_ssize_t)size);
    }
    tc_stream_clear_target(s);
    if (result == NULL) {
        return -1;
    }
    consume(s, size);
    fut = s->read_future; /* take the reference */
    s->read_future = NULL;
    if (fut == NULL) {
        Py_DECREF(result);
        return 0;
    }
    rc = tc_loop_future_set_result(s->loop, fut, result, TC_FUTURE_UNLESS_CANCELLED);
    Py_DECREF(fut);
    Py_DECREF(result);
    /* upstream's _maybe_add_error_listener: an empty buffer with a close
     * callback means listening for the close again */
    s->idle_listen = 1;
    if (rc == 0) {
        tc_stream_update_reading(s);
    }
    return rc;
}

/* Unsatisfiable read: log and close as upstream. */
void
tc_stream_unsatisfiable(tc_stream *s)
{
    PyObject *exc = tc_uvio_fetch_exception();
    if (exc == NULL) {
        return;
    }
    if (!PyErr_GivenExceptionMatches(exc, s->st->stream->UnsatisfiableReadError)) {
        /* a failure of our own (regex search raised, memory): report it */
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        tc_stream_report(s, "Uncaught exception, closing connection.");
        stream_close(s, exc);
        Py_DECREF(exc);
        return;
    }
    tc_stream_log(s, "info",
                  PyUnicode_FromFormat("Unsatisfiable read, closing connection: %S", exc));
    stream_close(s, exc);
    Py_DECREF(exc);
}

/* Try to complete the pending Python read from the buffer. */
static void
try_complete_read(tc_stream *s)
{
    Py_ssize_t pos;
    if (s->rmode == R_NONE || s->read_future == NULL) {
        return;
    }
    pos = tc_stream_find_read_pos(s);
    if (pos == -2) {
        tc_stream_unsatisfiable(s);
        return;
    }
    if (pos >= 0 && tc_stream_finish_read(s, (size_t)pos) < 0) {
        tc_stream_report(s, "completing a read failed");
    }
}

static void
deliver_consumer(tc_stream *s)
{
    if (s->ccb == NULL || s->cpaused || s->rlen == 0 || s->closed) {
        return;
    }
    s->ccb->on_data(s->cctx, s);
    tc_stream_report(s, "Exception in stream consumer on_data");
}

/* Move input held in the shared buffer into the stream's own buffer.
 * 0, or -1 with MemoryError set (the input is then dropped). */
static int
input_unshare(tc_stream *s)
{
    char *nb;
    if (!s->shared) {
        return 0;
    }
    s->shared = 0;
    if (s->rlen == 0) {
        s->rstart = 0;
        return 0;
    }
    nb = PyMem_Malloc(s->rlen);
    if (nb == NULL) {
        s->rstart = s->rlen = 0;
        PyErr_NoMemory();
        return -1;
    }
    memcpy(nb, tc_loop_read_buffer(s->loop) + s->rstart, s->rlen);
    PyMem_Free(s->rbuf);
    s->rbuf = nb;
    s->rcap = s->rlen;
    s->rstart = 0;
    return 0;
}

/* Room for at least read_chunk_size bytes at the end of the own buffer.  Fills
 * `buf` (base NULL on memory errors, no exception set). */
void
tc_stream_own_space(tc_stream *s, uv_buf_t *buf)
{
    size_t chunk = s->read_chunk_size > 0 ? (size_t)s->read_chunk_size : 1;
    buf->base = NULL;
    buf->len = 0;
    if (s->shared && input_unshare(s) < 0) {
        PyErr_Clear();
        return;
    }
    if (s->rcap - s->rstart - s->rlen < chunk) {
        if (s->rstart > 0) {
            memmove(s->rbuf, s->rbuf + s->rstart, s->rlen);
            s->rstart = 0;
        }
        if (s->rcap - s->rlen < chunk) {
            /* geometric growth: a long read_until_close() stays linear */
            size_t ncap = s->rlen + chunk;
            char *nb;
            if (s->rlen > 0 && ncap < 2 * s->rcap) {
                ncap = 2 * s->rcap;
            }
            nb = PyMem_Realloc(s->rbuf, ncap);
            if (nb == NULL) {
                return;
            }
            s->rbuf = nb;
            s->rcap = ncap;
        }
    }
    /* all the room there is: upstream reads everything the socket holds
     * (chunk after chunk) before it looks for the delimiter again */
    buf->base = s->rbuf + s->rstart + s->rlen;
    buf->len = s->rcap - s->rstart - s->rlen;
}

static void
alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    tc_stream *s = (tc_stream *)handle->data;
    (void)suggested;
    TC_LOOP_ENTER(s->loop);
    if (s->tls != NULL) {
        /* records: read_cb copies them out at once (tc_stream_tls_input)
         * and decrypts them into the stream's own buffer */
        buf->base = tc_loop_read_buffer(s->loop);
        buf->len = TC_UVIO_READ_BUF_SIZE;
        return;
    }
    if (s->rlen == 0 && (s->shared || s->rbuf == NULL)) {
        /* no more than one byte past max_buffer_size in one go */
        size_t cap = (size_t)s->max_buffer_size + 1;
        s->shared = 1;
        s->rstart = 0;
        buf->base = tc_loop_read_buffer(s->loop);
        buf->len = cap < TC_UVIO_READ_BUF_SIZE ? cap : TC_UVIO_READ_BUF_SIZE;
        return;
    }
    tc_stream_own_space(s, buf); /* base NULL: read_cb gets UV_ENOBUFS */
}

static void
read_error(tc_stream *s, int err)
{
    PyObject *exc = err == UV_ENOBUFS ? (PyErr_NoMemory(), tc_uvio_fetch_exception())
                                      : tc_uvio_error(err);
    if (exc == NULL) {
        tc_stream_report(s, "read error");
        return;
    }
    if (tc_stream_is_connreset(exc)) {
        stream_close(s, exc);
    }
    else {
        stream_close(s, exc);
        tc_stream_log(s, "warning", PyUnicode_FromFormat("error on read: %S", exc));
    }
    Py_DECREF(exc);
}

/* The socket's input ended: UV_EOF or a read error. */
static void
read_end(tc_stream *s, int err)
{
    if (s->tls != NULL && (err == UV_EOF || (!s->tls_hs && !TC_TLS_SOCKET_ERROR_RAISES))) {
        /* after the handshake a socket error ends the input as an EOF
         * does, up to Python 3.12: an SSLSocket's recv gives 0 for it (the
         * ssl module took OpenSSL's SSL_ERROR_SYSCALL with no bytes for an
         * EOF, which wrap_socket's suppress_ragged_eofs hides).  From 3.13
         * (CPython gh-115627) recv raises the socket's error, e.g.
         * ConnectionResetError, and upstream's stream closes with it as on
         * a plain socket: read_error below. */
        tc_stream_tls_end(s);
    }
    else if (err == UV_EOF) {
        stream_close(s, NULL);
    }
    else {
        read_error(s, err);
    }
}

/* The end of input (UV_EOF or a read error) found in a poll that began
 * with callbacks ready (tc_loop_hold_io): asyncio's selector loop handles
 * it behind them, so it is queued there (this poll's I/O slot) instead of
 * closing the stream now.  Those callbacks may still write to the stream --
 * the response to a client that sent its request and half-closed -- and
 * must find it open.  Reading stops meanwhile (wants_input);
 * _stream_read_end closes. */
static void
queue_read_end(tc_stream *s, int err)
{
    PyObject *arg = (PyObject *)s;
    if (tc_loop_call_io(s->loop, s->st->stream->fn_read_end, &arg, 1) < 0) {
        tc_stream_report(s, "scheduling the end of input failed");
        read_end(s, err);
        return;
    }
    s->end_err = err;
    s->end_queued = 1;
}

/* New input is buffered: offer it (consumer or pending read), then
 * upstream's max_buffer_size check on what is left.  `peek`: the consumer
 * sees it in the shared buffer (read_cb). */
static void
offer_input(tc_stream *s, int peek)
{
    /* Offer the bytes first: upstream reads read_chunk_size pieces and
     * stops once the pending read is satisfied, so input that satisfies
     * it never counts against max_buffer_size; what is left over does. */
    if (s->ccb != NULL) {
        deliver_consumer(s);
    }
    else {
        tc_stream_fill_into(s);
        try_complete_read(s);
    }
    if (peek && s->shared && input_unshare(s) < 0) {
        tc_stream_report(s, "stream read buffer");
    }
    if (!s->closed && s->rlen > (size_t)s->max_buffer_size) {
        PyObject *exc;
        tc_stream_log(s, "error", PyUnicode_FromString("Reached maximum read buffer size"));
        exc = PyObject_CallFunction(s->st->stream->StreamBufferFullError, "s",
                                    "Reached maximum read buffer size");
        if (exc == NULL) {
            tc_stream_report(s, "read error");
            return;
        }
        stream_close(s, exc);
        if (s->ccb == NULL) {
            tc_stream_log(s, "warning", PyUnicode_FromFormat("error on read: %S", exc));
        }
        Py_DECREF(exc);
    }
}

/* Records arrived on a TLS stream (`data` is the shared read buffer; NULL
 * with n 0: the records are in the SSL object's BIO already, tls.c's
 * queued handshake step). */
void
tc_stream_tls_read(tc_stream *s, const char *data, size_t n)
{
    size_t before = s->rlen;
    if (tc_stream_tls_input(s, data, n) < 0) {
        PyObject *exc = tc_uvio_fetch_exception();
        if (exc != NULL) {
            stream_close(s, exc);
            Py_DECREF(exc);
        }
        return;
    }
    if (!s->closed && s->rlen > before) {
        offer_input(s, 0);
    }
    if (!s->closed && s->tls_eof) {
        stream_close(s, NULL); /* close_notify: what came before it is offered */
    }
}

static void
read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    tc_stream *s = (tc_stream *)stream->data;
    TC_LOOP_ENTER(s->loop);
    Py_INCREF(s);
    if (nread > 0 && s->tls != NULL) {
        tc_stream_tls_read(s, buf->base, (size_t)nread);
    }
    else if (nread > 0) {
        s->rlen += (size_t)nread;
        /* Out of the shared buffer before anything that could run Python
         * code: a thread switch there could let another thread's loop read
         * into the same buffer.  (PyMem_Malloc never runs Python code.)  A
         * consumer that opted in (peek_shared) looks first and moves what
         * it keeps itself (tc_stream_own_input) before it runs Python code;
         * whatever it leaves is moved below, at `done`. */
        int peek = s->ccb != NULL && s->ccb->peek_shared && !s->cpaused;
        if (s->shared && !peek && input_unshare(s) < 0) {
            PyObject *exc = tc_uvio_fetch_exception();
            if (exc != NULL) {
                stream_close(s, exc);
                Py_DECREF(exc);
            }
            goto done;
        }
        offer_input(s, peek);
    }
    else if (nread < 0 && nread != UV_ENOBUFS && tc_loop_hold_io(s->loop)) {
        queue_read_end(s, (int)nread);
    }
    else if (nread < 0) {
        read_end(s, (int)nread);
    }
done:
    /* nothing may stay in the shared buffer once we return to the loop */
    if (s->shared && input_unshare(s) < 0) {
        tc_stream_report(s, "stream read buffer");
    }
    tc_stream_update_reading(s);
    tc_stream_report(s, "stream read callback failed");
    Py_DECREF(s);
}

/* ------------------------------------------------------------- writing */

static void write_cb(uv_write_t *req, int status);

void
tc_stream_write_error(tc_stream *s, int err)
{
    PyObject *exc = tc_uvio_error(err);
    if (exc == NULL) {
        tc_stream_report(s, "write error");
        return;
    }
    if (!tc_stream_is_connreset(exc)) {
        uv_os_fd_t fd = -1;
        if (tc_stream_handle_usable(s)) {
            uv_fileno(&s->io.h.handle, &fd);
        }
        tc_stream_log(s, "warning", PyUnicode_FromFormat("Write error on %d: %S", (int)fd, exc));
    }
    stream_close(s, exc);
    Py_DECREF(exc);
}

/* The pending bytes become the write in flight (after a connect). */
int
tc_stream_flush_pending(tc_stream *s)
{
    int rc;
    if (!tc_stream_handle_usable(s)) {
        return 0;
    }
    rc = tc_uvio_wq_flush(&s->io.wq, &s->io.h.stream, write_cb, s);
    if (s->io.wq.inflight) {
        tc_uvio_conn_hold(&s->io); /* a write was issued */
    }
    return rc;
}

void
tc_stream_resolve_write_futures(tc_stream *s)
{
    while (s->wf_len > 0 && s->wf[s->wf_head].index <= s->wdone) {
        PyObject *fut = s->wf[s->wf_head].fut;
        s->wf[s->wf_head].fut = NULL;
        s->wf_head++;
        s->wf_len--;
        if (s->wf_len == 0) {
            s->wf_head = 0;
        }
        if (tc_loop_future_set_result(s->loop, fut, Py_None, TC_FUTURE_UNLESS_CANCELLED) < 0) {
            tc_stream_report(s, "resolving a write future failed");
        }
        Py_DECREF(fut);
    }
}

/* Bytes reached the kernel: resolve the write futures they complete, and
 * tell the consumer once the queue is empty. */
static void
writes_done(tc_stream *s)
{
    tc_stream_resolve_write_futures(s);
    if (!s->io.wq.inflight && s->io.wq.pend_len == 0 && s->ccb != NULL && !s->closed &&
        s->ccb->on_drain != NULL) {
        s->ccb->on_drain(s->cctx, s);
        tc_stream_report(s, "Exception in stream consumer on_drain");
    }
}

static void
write_cb(uv_write_t *req, int status)
{
    tc_stream *s = (tc_stream *)req->data;
    int rc;
    TC_LOOP_ENTER(s->loop);
    TC_LOOP_REQUEST_DONE(s->loop);
    tc_uvio_wq_done(&s->io.wq, status < 0 || s->closed);
    if (status == UV_ECANCELED || s->closed) {
        return;
    }
    Py_INCREF(s);
    if (status < 0) {
        tc_stream_write_error(s, status);
        goto done;
    }
    s->wdone += s->io.wq.inflight_len;
    rc = tc_uvio_wq_next(&s->io.wq, &s->io.h.stream, write_cb, s);
    if (rc < 0) {
        tc_stream_write_error(s, rc);
        goto done;
    }
    if (rc == 1) {
        goto done; /* the next piece of a region over TC_UVIO_WRITE_CHUNK */
    }
    writes_done(s);
done:
    tc_stream_report(s, "stream write callback failed");
    Py_DECREF(s);
}

/* ------------------------------------------------------------- corking */

/* Send the bytes a corked stream batched (pend, nothing in flight): one
 * try-write, as an immediate write would have done; what the kernel does
 * not take becomes the write in flight (tc_uvio_wq_send_pend).  `quiet`
 * (closing): an error just drops the bytes instead of closing the stream. */
void
tc_stream_send_corked(tc_stream *s, int quiet)
{
    size_t taken;
    int r;
    if (!tc_stream_handle_usable(s)) {
        return;
    }
    r = tc_uvio_wq_send_pend(&s->io.wq, &s->io.h.stream, write_cb, s, &taken);
    s->wdone += taken;
    if (s->io.wq.inflight) {
        tc_uvio_conn_hold(&s->io); /* a write was issued */
    }
    if (r < 0 && !quiet) {
        tc_stream_write_error(s, r);
    }
}

/* The loop's deferred call (tc_loop_defer): the iteration's callbacks are
 * done, send what they wrote.  `obj` is borrowed (the loop holds it). */
static void
deferred_flush(PyObject *obj)
{
    tc_stream *s = (tc_stream *)obj;
    s->flush_deferred = 0;
    if (s->closed) {
        return;
    }
    tc_stream_send_corked(s, 0);
    if (!s->closed && !s->io.wq.inflight) { /* else write_cb finishes the job */
        writes_done(s);
    }
    tc_stream_report(s, "stream write failed");
}

/* Batch `len` bytes while corked: appended to the write queue's `pend`
 * without trying (tc_uvio_wq_write with direct = 0), sent by deferred_flush.
 * 1: taken; 0: write it the usual way (the batch, if any, has been sent
 * first); -1: memory error. */
static int
cork_write(tc_stream *s, const char *data, size_t len)
{
    uv_buf_t b;
    size_t taken;
    int uverr;
    if (s->io.wq.inflight || s->connecting || !tc_stream_handle_usable(s)) {
        return 0; /* the usual path queues behind the write in flight */
    }
    if (s->io.wq.pend_len + len > TC_STREAM_CORK_MAX) {
        tc_stream_send_corked(s, 0);  /* in order: the batch, then this write */
        return 0;
    }
    if (!s->flush_deferred) {
        if (tc_loop_defer(s->loop, deferred_flush, (PyObject *)s) < 0) {
            return -1;
        }
        s->flush_deferred = 1;
    }
    b = uv_buf_init((char *)data, (unsigned int)len); /* <= TC_STREAM_CORK_MAX */
    if (tc_uvio_wq_write(&s->io.wq, &s->io.h.stream, 0, &b, 1, len, NULL, write_cb, s, &taken,
                         &uverr) < 0) {
        return -1; /* the deferred call finds what was batched before */
    }
    return 1;
}

/* The uncorked part of a write: `total` bytes in `bufs` (see
 * tc_uvio_wq_write for `keep`) tried at once, the rest queued. */
static int
queue_bufs(tc_stream *s, const uv_buf_t *bufs, unsigned int nbufs, size_t total, PyObject *keep)
{
    size_t taken;
    int rc, uverr;
    s->wtotal += total;
    rc = tc_uvio_wq_write(&s->io.wq, &s->io.h.stream,
                          !s->connecting && tc_stream_handle_usable(s), bufs, nbufs, total, keep,
                          write_cb, s, &taken, &uverr);
    s->wdone += taken;
    if (rc < 0) {
        return -1;
    }
    if (s->io.wq.inflight) {
        tc_uvio_conn_hold(&s->io); /* a write was issued (or is) */
    }
    if (uverr < 0) {
        tc_stream_write_error(s, uverr);
    }
    return 0;
}

/* Queue `len` bytes.  `keep` is a bytes object that backs `data` (referenced
 * instead of copied) or NULL.  -1 only on memory errors (exception set);
 * socket errors close the stream.  A TLS stream encrypts them first. */
int
tc_stream_write_data(tc_stream *s, const char *data, size_t len, PyObject *keep)
{
    if (s->tls != NULL) {
        return tc_stream_tls_write(s, data, len);
    }
    return tc_stream_raw_write(s, data, len, keep);
}

int
tc_stream_raw_write(tc_stream *s, const char *data, size_t len, PyObject *keep)
{
    uv_buf_t b;
    if (len == 0) {
        return 0;
    }
    if (s->cork) {
        int c = cork_write(s, data, len);
        if (c < 0) {
            return -1;
        }
        if (c > 0) {
            s->wtotal += len;
            return 0;
        }
        if (s->closed) {
            return 0; /* sending the batch failed and closed the stream */
        }
    }
    b = tc_uvio_region(data, len);
    return queue_bufs(s, &b, 1, len, keep);
}

/* Queue a header of `hlen` (> 0) bytes and then the payload `body` (a
 * bytes object, referenced rather than copied) as one write: one
 * uv_try_write() of both (one system call, and one TCP segment where two
 * writes would send the header alone).  On a TLS stream (records to
 * encrypt), while corked, or for a payload past TC_UVIO_WRITE_CHUNK, two
 * writes as tc_stream_write_data() makes them.  Return and errors as tc_stream_write_data(). */
int
tc_stream_write_pair(tc_stream *s, const char *head, size_t hlen, PyObject *body)
{
    uv_buf_t b[2];
    size_t len = (size_t)PyBytes_GET_SIZE(body);
    if (s->tls != NULL || s->cork || len == 0 || len > TC_UVIO_WRITE_CHUNK) {
        if (tc_stream_write_data(s, head, hlen, NULL) < 0) {
            return -1;
        }
        return s->closed ? 0 : tc_stream_write_data(s, PyBytes_AS_STRING(body), len, body);
    }
    b[0] = uv_buf_init((char *)head, (unsigned int)hlen);
    b[1] = uv_buf_init(PyBytes_AS_STRING(body), (unsigned int)len); /* <= TC_UVIO_WRITE_CHUNK */
    return queue_bufs(s, b, 2, hlen + len, body);
}

/* ------------------------------------------------------------- closing */

static void
signal_closed(tc_stream *s)
{
    PyObject *fut, *exc;
    const tc_stream_consumer *cb;
    if (s->read_future != NULL) {
        fut = s->read_future;
        s->read_future = NULL;
        tc_stream_clear_target(s);
        exc = closed_error(s);
        if (exc == NULL) {
            tc_stream_report(s, "closing the stream failed");
        }
        else {
            fail_future(s, fut, exc);
            Py_DECREF(exc);
        }
        Py_DECREF(fut);
    }
    while (s->wf_len > 0) {
        fut = s->wf[s->wf_head].fut;
        s->wf[s->wf_head].fut = NULL;
        s->wf_head++;
        s->wf_len--;
        exc = closed_error(s);
        if (exc == NULL) {
            tc_stream_report(s, "closing the stream failed");
        }
        else {
            fail_future(s, fut, exc);
            Py_DECREF(exc);
        }
        Py_DECREF(fut);
    }
    s->wf_head = 0;
    if (s->connect_future != NULL) {
        fut = s->connect_future;
        s->connect_future = NULL;
        exc = closed_error(s);
        if (exc == NULL) {
            tc_stream_report(s, "closing the stream failed");
        }
        else {
            fail_future(s, fut, exc);
            Py_DECREF(exc);
        }
        Py_DECREF(fut);
    }
    if (s->tls != NULL) {
        tc_stream_tls_signal_closed(s); /* upstream's _ssl_connect_future */
    }
    s->io.wq.pend_len = 0; /* the in-flight write cannot be recalled */
    cb = s->ccb;
    if (cb != NULL) {
        s->ccb = NULL;
        cb->on_close(s->cctx, s, s->error);
        tc_stream_report(s, "Exception in stream consumer on_close");
    }
    if (s->close_callback != NULL) {
        PyObject *ccb = s->close_callback, *io_loop, *r;
        s->close_callback = NULL;
        io_loop = s->io_loop;
        if (io_loop == NULL) {
            io_loop = s->io_loop = PyObject_CallNoArgs(s->st->stream->IOLoop_current);
        }
        if (io_loop == NULL) {
            tc_stream_report(s, "IOLoop.current() failed");
        }
        else {
            r = PyObject_CallMethod(io_loop, "add_callback", "O", ccb);
            if (r == NULL) {
                tc_stream_report(s, "scheduling the close callback failed");
            }
            Py_XDECREF(r);
        }
        Py_DECREF(ccb);
    }
}

/* upstream's close(exc_info=...), `exc` borrowed or NULL. */
static void
stream_close(tc_stream *s, PyObject *exc)
{
    Py_INCREF(s);
    if (!s->closed) {
        if (s->cork) {
            /* what a batch holds would have been tried at once, uncorked
             * (also before an error close: a 400 goes out before the
             * close for a full read buffer, as it did uncorked) */
            tc_stream_send_corked(s, 1);
        }
        if (exc != NULL && exc != Py_None) {
            Py_INCREF(exc);
            Py_XSETREF(s->error, exc);
        }
        if (s->rmode == R_CLOSE) {
            s->rmode = R_NONE;
            if (s->error == NULL || tc_stream_is_connreset(s->error)) {
                if (tc_stream_finish_read(s, s->rlen) < 0) {
                    tc_stream_report(s, "completing a read failed");
                }
            }
        }
        else if (s->read_future != NULL && s->rmode != R_NONE) {
            Py_ssize_t pos = tc_stream_find_read_pos(s);
            if (pos == -2) {
                PyErr_Clear();
            }
            else if (pos >= 0 && tc_stream_finish_read(s, (size_t)pos) < 0) {
                tc_stream_report(s, "completing a read failed");
            }
        }
        s->closed = 1;
        s->connecting = 0;
        tc_uvio_conn_close(&s->io);
    }
    signal_closed(s);
    Py_DECREF(s);
}

/* ------------------------------------------------------------- creation */

static tc_stream *
stream_alloc(tc_state *st, PyTypeObject *type, tc_loop *loop)
{
    tc_stream *s = (tc_stream *)type->tp_alloc(type, 0);
    if (s == NULL) {
        return NULL;
    }
    s->st = st;
    Py_INCREF(loop);
    s->loop = loop;
    s->max_buffer_size = DEFAULT_MAX_BUFFER;
    s->read_chunk_size = DEFAULT_CHUNK;
    s->max_write_buffer_size = -1;
    s->rmax = -1;
    return s;
}

void
tc_stream_set_sizes(tc_stream *s, Py_ssize_t max_buffer_size, Py_ssize_t read_chunk_size)
{
    Py_ssize_t half;
    s->max_buffer_size = max_buffer_size > 0 ? max_buffer_size : DEFAULT_MAX_BUFFER;
    half = s->max_buffer_size / 2;
    s->read_chunk_size = read_chunk_size > 0 ? read_chunk_size : DEFAULT_CHUNK;
    if (s->read_chunk_size > half) {
        s->read_chunk_size = half;
    }
}

/* What opening a stream's handle needs first: 0, or -1 with an exception. */
static int
open_prepare(tc_stream *s)
{
    if (ensure_setup(s->st) < 0) {
        return -1;
    }
    if (s->loop->uv == NULL || tc_loop_is_closed(s->loop)) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

/* Open the uv handle of `s` on `fd`.  On success libuv owns the fd; on
 * failure (-1, exception set) the fd is untouched.  `hold_now`: take the
 * self-reference at once (streams of C consumers); Python streams take it
 * when they first wait for the loop (tc_uvio_conn_hold). */
int
tc_stream_open_handle(tc_stream *s, int fd, int hold_now)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int rc;
    if (open_prepare(s) < 0) {
        return -1;
    }
    s->kind = K_TCP;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_UNIX) {
        s->kind = K_PIPE;
    }
    rc = tc_uvio_conn_init(&s->io, s->loop, s->kind, (PyObject *)s,
                           "stream bookkeeping failed", TC_UVIO_HOLD_LAZY);
    if (rc < 0) {
        tc_uvio_set_error(rc);
        return -1;
    }
    rc = tc_uvio_handle_open(&s->io.h, s->kind, fd);
    if (rc < 0) {
        /* libuv did not take the fd: close the bare handle (no socket object
         * is attached yet; closing takes the self-reference, dropped in the
         * close callback) */
        s->closed = 1;
        tc_uvio_conn_close(&s->io);
        tc_uvio_set_error(rc);
        return -1;
    }
    if (hold_now) {
        tc_uvio_conn_hold(&s->io);
    }
    return 0;
}

/* --------------------------------------------------------------- C API */

int
tc_stream_check(tc_state *st, PyObject *obj)
{
    return PyObject_TypeCheck(obj, st->stream->Stream_type);
}

/* A stream of `type` (NULL: the default) on `loop`, its handle not open yet. */
static tc_stream *
stream_new(tc_state *st, tc_loop *loop, PyTypeObject *type, Py_ssize_t max_buffer_size,
           Py_ssize_t read_chunk_size)
{
    tc_stream *s;
    if (type == NULL) {
        if (ensure_setup(st) < 0) {
            return NULL;
        }
        type = (PyTypeObject *)st->stream->IOStream_cls;
    }
    if (!PyType_IsSubtype(type, st->stream->Stream_type)) {
        PyErr_SetString(PyExc_TypeError, "stream type must subclass tornado_c._core.Stream");
        return NULL;
    }
    s = stream_alloc(st, type, loop);
    if (s == NULL) {
        return NULL;
    }
    tc_stream_set_sizes(s, max_buffer_size, read_chunk_size);
    return s;
}

tc_stream *
tc_stream_from_fd(tc_state *st, tc_loop *loop, int fd, PyTypeObject *type,
                  Py_ssize_t max_buffer_size, Py_ssize_t read_chunk_size)
{
    tc_stream *s = stream_new(st, loop, type, max_buffer_size, read_chunk_size);
    if (s != NULL && tc_stream_open_handle(s, fd, 1) < 0) {
        Py_CLEAR(s);
    }
    return s;
}

tc_stream *
tc_stream_new_tcp(tc_state *st, tc_loop *loop, int family, int nodelay, PyTypeObject *type,
                  Py_ssize_t max_buffer_size, Py_ssize_t read_chunk_size)
{
    int rc;
    tc_stream *s = stream_new(st, loop, type, max_buffer_size, read_chunk_size);
    if (s == NULL || open_prepare(s) < 0) {
        goto fail;
    }
    s->kind = K_TCP;
    rc = tc_uvio_conn_init_socket(&s->io, s->loop, family, (PyObject *)s,
                                  "stream bookkeeping failed", TC_UVIO_HOLD_LAZY);
    if (rc < 0) {
        tc_uvio_set_error(rc); /* socket()'s OSError */
        goto fail;
    }
    tc_uvio_conn_hold(&s->io);
    if (nodelay) {
        (void)uv_tcp_nodelay(&s->io.h.tcp, 1); /* as the fd's setsockopt: unchecked */
    }
    return s;
fail:
    Py_XDECREF(s);
    return NULL;
}

void
tc_stream_set_consumer(tc_stream *s, const tc_stream_consumer *cb, void *ctx)
{
    if (cb != NULL && s->closed) {
        return; /* nothing will ever arrive; see stream.h */
    }
    s->ccb = cb;
    s->cctx = cb != NULL ? ctx : NULL;
    s->cpaused = 0;
    if (cb != NULL && s->rlen > 0) {
        tc_stream_resume_reading(s);
    }
    tc_stream_update_reading(s);
}

const char *
tc_stream_peek(tc_stream *s, size_t *len)
{
    *len = s->rlen;
    return RDATA(s) != NULL ? RDATA(s) + s->rstart : "";
}

void
tc_stream_consume(tc_stream *s, size_t n)
{
    consume(s, n);
}

int
tc_stream_own_input(tc_stream *s)
{
    return input_unshare(s);
}

int
tc_stream_input_shared(tc_stream *s)
{
    return s->shared;
}

int
tc_stream_unread(tc_stream *s, const char *data, size_t len)
{
    if (len == 0) {
        return 0;
    }
    if (s->shared && input_unshare(s) < 0) {
        return -1;
    }
    if (s->rbuf != NULL && s->rstart >= len) {
        s->rstart -= len;
        memcpy(s->rbuf + s->rstart, data, len);
        s->rlen += len;
    }
    else {
        if (len > (size_t)PY_SSIZE_T_MAX - s->rlen) {
            PyErr_NoMemory();
            return -1;
        }
        char *nb = PyMem_Malloc(len + s->rlen);
        if (nb == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(nb, data, len);
        if (s->rlen > 0) {
            memcpy(nb + len, s->rbuf + s->rstart, s->rlen);
        }
        PyMem_Free(s->rbuf);
        s->rbuf = nb;
        s->rstart = 0;
        s->rlen += len;
        s->rcap = s->rlen;
    }
    tc_stream_update_reading(s);
    return 0;
}

void
tc_stream_pause_reading(tc_stream *s)
{
    s->cpaused = 1;
    tc_stream_update_reading(s);
}

void
tc_stream_resume_reading(tc_stream *s)
{
    s->cpaused = 0;
    if (s->rlen > 0 && !s->deliver_scheduled && !s->closed) {
        PyObject *arg = (PyObject *)s;
        PyObject *h = tc_loop_call_soon(s->loop, s->st->stream->fn_deliver, &arg, 1, NULL);
        if (h == NULL) {
            tc_stream_report(s, "scheduling stream input failed");
        }
        else {
            s->deliver_scheduled = 1;
            Py_DECREF(h);
        }
    }
    tc_stream_update_reading(s);
}

int
tc_stream_write(tc_stream *s, const char *data, size_t len)
{
    if (s->closed) {
        tc_stream_set_closed_error(s);
        return -1;
    }
    return tc_stream_write_data(s, data, len, NULL);
}

int
tc_stream_write_obj(tc_stream *s, PyObject *buffer)
{
    Py_buffer view;
    int rc;
    if (s->closed) {
        tc_stream_set_closed_error(s);
        return -1;
    }
    if (PyBytes_CheckExact(buffer)) {
        return tc_stream_write_data(s, PyBytes_AS_STRING(buffer),
                                    (size_t)PyBytes_GET_SIZE(buffer), buffer);
    }
    if (PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    rc = tc_stream_write_data(s, view.buf, (size_t)view.len, NULL);
    PyBuffer_Release(&view);
    return rc;
}

void
tc_stream_set_cork(tc_stream *s, int on)
{
    int was = s->cork;
    s->cork = on != 0;
    if (was && !on && !s->closed) {
        tc_stream_send_corked(s, 0);
        /* Leaving corked mode is what an HTTP connection does when it hands
         * its stream on (a WebSocket): with nothing queued the batch buffer
         * (16 KiB, a touched page) is spare, and a long-lived idle
         * connection should not keep it.  Writes allocate again if needed. */
        if (!s->closed && !s->io.wq.inflight && s->io.wq.pend_len == 0) {
            tc_uvio_wq_free(&s->io.wq);
        }
    }
}

size_t
tc_stream_write_pending(tc_stream *s)
{
    return s->closed ? 0 : tc_stream_wq_pending(s);
}

void
tc_stream_close(tc_stream *s, PyObject *exc)
{
    stream_close(s, exc);
}

int
tc_stream_closed(tc_stream *s)
{
    return s->closed;
}

int
tc_stream_consumer_is(tc_stream *s, const tc_stream_consumer *cb, const void *ctx)
{
    return s->ccb == cb && s->cctx == ctx;
}

tc_loop *
tc_stream_loop(tc_stream *s)
{
    return s->loop;
}

/* ------------------------------------------------------------ delivery */

/* _stream_read_end(stream): the EOF or read error read_cb held back
 * (queue_read_end), now behind the callbacks that were ready before. */
PyObject *
tc_stream_fn_read_end(PyObject *module, PyObject *arg)
{
    tc_state *st = tc_get_state(module);
    tc_stream *s;
    if (!tc_stream_check(st, arg)) {
        PyErr_SetString(PyExc_TypeError, "_stream_read_end(stream)");
        return NULL;
    }
    s = (tc_stream *)arg;
    if (!s->end_queued) {
        Py_RETURN_NONE;
    }
    s->end_queued = 0;
    Py_INCREF(s);
    if (!s->closed) {
        read_end(s, s->end_err);
    }
    tc_stream_update_reading(s);
    tc_stream_report(s, "stream read callback failed");
    Py_DECREF(s);
    Py_RETURN_NONE;
}

PyObject *
tc_stream_fn_deliver(PyObject *module, PyObject *arg)
{
    tc_state *st = tc_get_state(module);
    tc_stream *s;
    if (!tc_stream_check(st, arg)) {
        PyErr_SetString(PyExc_TypeError, "_stream_deliver(stream)");
        return NULL;
    }
    s = (tc_stream *)arg;
    s->deliver_scheduled = 0;
    Py_INCREF(s);
    deliver_consumer(s);
    if (!s->closed && s->ccb == NULL) {
        try_complete_read(s);
    }
    tc_stream_update_reading(s);
    tc_stream_report(s, "stream delivery failed");
    Py_DECREF(s);
    Py_RETURN_NONE;
}
