/* stream component: tornado.iostream.IOStream on libuv streams.
 *
 * One tc_stream owns one uv_tcp_t / uv_pipe_t opened on a connected socket
 * (or, for a client, on a socket that tornado_c.iostream connects first),
 * an input buffer and a write queue.
 *
 * Input: an empty stream reads into the loop component's shared page-aligned
 * read buffer and the bytes are moved at once into a right-sized buffer of
 * the stream's own (which later reads append to, and which is freed once
 * drained), so idle connections hold no input memory.  The
 * buffered input is RDATA(s)[rstart .. rstart+rlen).  The bytes go either
 * to the C consumer (on_data) or are matched against the one pending Python
 * read (delimiter, regex, byte count, read_into, until close), exactly as
 * upstream's _find_read_pos does.  The handle reads only while somebody
 * wants bytes: a pending Python read, an unpaused consumer, or -- to notice
 * a close -- an empty buffer with a close callback or after a completed
 * read (upstream's polling rules).  As upstream, read_*() first tries the
 * buffer, then
 * a non-blocking read() of what the socket holds, then waits for the loop.
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
 * (stream_finalize), as upstream's socket does when collected.  Closing
 * takes the self-reference too: the object outlives the handle.
 */
#include "common.h"
#include "state.h"
#include "loop/loop.h"
#include "stream/stream.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

enum { K_TCP = TC_UVIO_TCP, K_PIPE = TC_UVIO_PIPE };
enum { R_NONE = 0, R_DELIM, R_REGEX, R_BYTES, R_INTO, R_CLOSE };

#define DEFAULT_MAX_BUFFER (100 * 1024 * 1024)
#define DEFAULT_CHUNK 65536

typedef struct {
    unsigned long long index;
    PyObject *fut;              /* strong */
} wfut_t;

struct tc_stream {
    PyObject_HEAD
    tc_state *st;               /* borrowed: the type holds the module */
    tc_loop *loop;              /* strong */
    PyObject *io_loop;          /* strong or NULL (looked up lazily) */
    PyObject *error;
    PyObject *close_callback;
    PyObject *connect_future;
    PyObject *read_future;
    PyObject *rtarget;          /* delimiter bytes / compiled regex / into object */
    Py_buffer into;             /* read_into() target while into_held */
    tc_uvio_conn io;            /* handle, write queue, sock, live (uvio.h); the
                                 * sock is created lazily for streams made
                                 * from an fd */
    char *rbuf;                 /* own input buffer (PyMem) or NULL */
    size_t rstart, rlen, rcap;  /* input = RDATA(s)[rstart .. rstart+rlen) */
    Py_ssize_t max_buffer_size, read_chunk_size, max_write_buffer_size; /* -1: None */
    Py_ssize_t rbytes, rmax;    /* rmax -1: no max_bytes */
    size_t into_copied;         /* read_into: bytes already in the caller's buffer */
    unsigned long long wtotal, wdone;
    wfut_t *wf;
    size_t wf_head, wf_len, wf_cap;
    const tc_stream_consumer *ccb;
    void *cctx;
    int kind;
    int rmode;
    char partial;
    char into_held;
    char closed;
    char connecting;
    char cpaused;
    char deliver_scheduled;
    char cork;                  /* batch small writes per loop iteration */
    char flush_deferred;        /* a tc_loop_defer() call for us is due */
    char idle_listen;           /* a read completed: listen while idle (see wants_input) */
    char shared;                /* the input is in the shared read buffer, not rbuf */
};

/* Where the buffered input lives.  An empty stream reads into the loop
 * component's shared page-aligned buffer and the read callback moves the
 * bytes into a right-sized buffer of the stream's own at once (the GIL is
 * held from alloc_cb to that copy, so no other thread's loop can use the
 * shared buffer meanwhile), so an idle connection holds no input memory. */
#define RDATA(s) ((s)->shared ? tc_loop_read_buffer((s)->loop) : (s)->rbuf)

/* ------------------------------------------------------------ small utils */

static void
report(tc_stream *s, const char *message)
{
    if (PyErr_Occurred()) {
        tc_loop_report_exception(s->loop, message, NULL);
    }
}

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

static int
is_connreset(PyObject *exc)
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
static void
log_msg(tc_stream *s, const char *level, PyObject *msg)
{
    PyObject *r;
    if (msg == NULL) {
        report(s, "building a log message failed");
        return;
    }
    r = PyObject_CallMethod(s->st->stream->gen_log, level, "O", msg);
    Py_DECREF(msg);
    if (r == NULL) {
        report(s, "logging failed");
    }
    Py_XDECREF(r);
}

/* fut.set_exception(exc) unless done; then fut.exception() (marks it
 * retrieved, as upstream's _signal_closed does).  Errors are reported. */
static void
fail_future(tc_stream *s, PyObject *fut, PyObject *exc)
{
    if (tc_loop_future_set_exception(s->loop, fut, exc, TC_FUTURE_UNLESS_DONE, 1) < 0) {
        report(s, "failing a future failed");
    }
}

static PyObject *
closed_error(tc_stream *s)
{
    PyObject *kw = PyDict_New(), *args = NULL, *r = NULL;
    if (kw == NULL) {
        return NULL;
    }
    if (PyDict_SetItemString(kw, "real_error", s->error ? s->error : Py_None) < 0) {
        goto done;
    }
    args = PyTuple_New(0);
    if (args == NULL) {
        goto done;
    }
    r = PyObject_Call(s->st->stream->StreamClosedError, args, kw);
done:
    Py_XDECREF(args);
    Py_DECREF(kw);
    return r;
}

static PyObject *
set_closed_error(tc_stream *s)
{
    PyObject *e = closed_error(s);
    if (e != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return NULL;
}

/* ------------------------------------------------------------- handles */

static int
handle_usable(tc_stream *s)
{
    return tc_uvio_conn_usable(&s->io);
}

/* ------------------------------------------------------------- reading */

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static int
wants_input(tc_stream *s)
{
    if (s->closed || s->connecting || !handle_usable(s)) {
        return 0;
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

static void
update_reading(tc_stream *s)
{
    int want = wants_input(s);
    if (want && !s->io.reading) {
        int rc = uv_read_start(&s->io.h.stream, alloc_cb, read_cb);
        if (rc < 0) {
            PyObject *exc = tc_uvio_error(rc);
            if (exc == NULL) {
                report(s, "uv_read_start failed");
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

static void
clear_target(tc_stream *s)
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
static Py_ssize_t
find_read_pos(tc_stream *s)
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
static void
fill_into(tc_stream *s)
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
static int
finish_read(tc_stream *s, size_t size)
{
    PyObject *result, *fut;
    int rc;
    if (s->rmode == R_INTO && s->into_held) {
        size_t n = size <= s->rlen ? size : s->rlen;
        if (n > (size_t)s->into.len) {
            n = (size_t)s->into.len;
        }
        fill_into(s);
        size = n;
        result = PyLong_FromSize_t(n);
    }
    else {
        result = PyBytes_FromStringAndSize(RDATA(s) + s->rstart, (Py_ssize_t)size);
    }
    clear_target(s);
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
        update_reading(s);
    }
    return rc;
}

/* Unsatisfiable read: log and close as upstream. */
static void
unsatisfiable(tc_stream *s)
{
    PyObject *exc = tc_uvio_fetch_exception();
    if (exc == NULL) {
        return;
    }
    if (!PyErr_GivenExceptionMatches(exc, s->st->stream->UnsatisfiableReadError)) {
        /* a failure of our own (regex search raised, memory): report it */
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        report(s, "Uncaught exception, closing connection.");
        stream_close(s, exc);
        Py_DECREF(exc);
        return;
    }
    log_msg(s, "info", PyUnicode_FromFormat("Unsatisfiable read, closing connection: %S", exc));
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
    pos = find_read_pos(s);
    if (pos == -2) {
        unsatisfiable(s);
        return;
    }
    if (pos >= 0 && finish_read(s, (size_t)pos) < 0) {
        report(s, "completing a read failed");
    }
}

static void
deliver_consumer(tc_stream *s)
{
    if (s->ccb == NULL || s->cpaused || s->rlen == 0 || s->closed) {
        return;
    }
    s->ccb->on_data(s->cctx, s);
    report(s, "Exception in stream consumer on_data");
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
static void
own_space(tc_stream *s, uv_buf_t *buf)
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
    if (s->rlen == 0 && (s->shared || s->rbuf == NULL)) {
        /* no more than one byte past max_buffer_size in one go */
        size_t cap = (size_t)s->max_buffer_size + 1;
        s->shared = 1;
        s->rstart = 0;
        buf->base = tc_loop_read_buffer(s->loop);
        buf->len = cap < TC_UVIO_READ_BUF_SIZE ? cap : TC_UVIO_READ_BUF_SIZE;
        return;
    }
    own_space(s, buf); /* base NULL: read_cb gets UV_ENOBUFS */
}

static void
read_error(tc_stream *s, int err)
{
    PyObject *exc = err == UV_ENOBUFS ? (PyErr_NoMemory(), tc_uvio_fetch_exception())
                                      : tc_uvio_error(err);
    if (exc == NULL) {
        report(s, "read error");
        return;
    }
    if (is_connreset(exc)) {
        stream_close(s, exc);
    }
    else {
        stream_close(s, exc);
        log_msg(s, "warning", PyUnicode_FromFormat("error on read: %S", exc));
    }
    Py_DECREF(exc);
}

static void
read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    tc_stream *s = (tc_stream *)stream->data;
    (void)buf;
    TC_LOOP_ENTER(s->loop);
    Py_INCREF(s);
    if (nread > 0) {
        s->rlen += (size_t)nread;
        /* Out of the shared buffer before anything that could run Python
         * code: a thread switch there could let another thread's loop read
         * into the same buffer.  (PyMem_Malloc never runs Python code.) */
        if (s->shared && input_unshare(s) < 0) {
            PyObject *exc = tc_uvio_fetch_exception();
            if (exc != NULL) {
                stream_close(s, exc);
                Py_DECREF(exc);
            }
            goto done;
        }
        /* Offer the bytes first: upstream reads read_chunk_size pieces and
         * stops once the pending read is satisfied, so input that satisfies
         * it never counts against max_buffer_size; what is left over does. */
        if (s->ccb != NULL) {
            deliver_consumer(s);
        }
        else {
            fill_into(s);
            try_complete_read(s);
        }
        if (!s->closed && s->rlen > (size_t)s->max_buffer_size) {
            PyObject *exc;
            log_msg(s, "error", PyUnicode_FromString("Reached maximum read buffer size"));
            exc = PyObject_CallFunction(s->st->stream->StreamBufferFullError, "s",
                                        "Reached maximum read buffer size");
            if (exc == NULL) {
                report(s, "read error");
                goto done;
            }
            stream_close(s, exc);
            if (s->ccb == NULL) {
                log_msg(s, "warning", PyUnicode_FromFormat("error on read: %S", exc));
            }
            Py_DECREF(exc);
            goto done;
        }
    }
    else if (nread == UV_EOF) {
        stream_close(s, NULL);
    }
    else if (nread < 0) {
        read_error(s, (int)nread);
    }
done:
    /* nothing may stay in the shared buffer once we return to the loop */
    if (s->shared && input_unshare(s) < 0) {
        report(s, "stream read buffer");
    }
    update_reading(s);
    report(s, "stream read callback failed");
    Py_DECREF(s);
}

/* ------------------------------------------------------------- writing */

static void write_cb(uv_write_t *req, int status);

static size_t
write_pending(tc_stream *s)
{
    return tc_uvio_wq_pending(&s->io.wq, s->io.open ? &s->io.h.stream : NULL);
}

static void
write_error(tc_stream *s, int err)
{
    PyObject *exc = tc_uvio_error(err);
    if (exc == NULL) {
        report(s, "write error");
        return;
    }
    if (!is_connreset(exc)) {
        uv_os_fd_t fd = -1;
        if (handle_usable(s)) {
            uv_fileno(&s->io.h.handle, &fd);
        }
        log_msg(s, "warning", PyUnicode_FromFormat("Write error on %d: %S", (int)fd, exc));
    }
    stream_close(s, exc);
    Py_DECREF(exc);
}

/* The pending bytes become the write in flight (after a connect). */
static int
flush_pending(tc_stream *s)
{
    int rc;
    if (!handle_usable(s)) {
        return 0;
    }
    rc = tc_uvio_wq_flush(&s->io.wq, &s->io.h.stream, write_cb, s);
    if (s->io.wq.inflight) {
        tc_uvio_conn_hold(&s->io); /* a write was issued */
    }
    return rc;
}

static void
resolve_write_futures(tc_stream *s)
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
            report(s, "resolving a write future failed");
        }
        Py_DECREF(fut);
    }
}

/* Bytes reached the kernel: resolve the write futures they complete, and
 * tell the consumer once the queue is empty. */
static void
writes_done(tc_stream *s)
{
    resolve_write_futures(s);
    if (!s->io.wq.inflight && s->io.wq.pend_len == 0 && s->ccb != NULL && !s->closed &&
        s->ccb->on_drain != NULL) {
        s->ccb->on_drain(s->cctx, s);
        report(s, "Exception in stream consumer on_drain");
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
        write_error(s, status);
        goto done;
    }
    s->wdone += s->io.wq.inflight_len;
    rc = tc_uvio_wq_next(&s->io.wq, &s->io.h.stream, write_cb, s);
    if (rc < 0) {
        write_error(s, rc);
        goto done;
    }
    if (rc == 1) {
        goto done; /* the next piece of a region over TC_UVIO_WRITE_CHUNK */
    }
    writes_done(s);
done:
    report(s, "stream write callback failed");
    Py_DECREF(s);
}

/* ------------------------------------------------------------- corking */

/* Send the bytes a corked stream batched (pend, nothing in flight): one
 * try-write, as an immediate write would have done; what the kernel does
 * not take becomes the write in flight (tc_uvio_wq_send_pend).  `quiet`
 * (closing): an error just drops the bytes instead of closing the stream. */
static void
send_corked(tc_stream *s, int quiet)
{
    size_t taken;
    int r;
    if (!handle_usable(s)) {
        return;
    }
    r = tc_uvio_wq_send_pend(&s->io.wq, &s->io.h.stream, write_cb, s, &taken);
    s->wdone += taken;
    if (s->io.wq.inflight) {
        tc_uvio_conn_hold(&s->io); /* a write was issued */
    }
    if (r < 0 && !quiet) {
        write_error(s, r);
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
    send_corked(s, 0);
    if (!s->closed && !s->io.wq.inflight) { /* else write_cb finishes the job */
        writes_done(s);
    }
    report(s, "stream write failed");
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
    if (s->io.wq.inflight || s->connecting || !handle_usable(s)) {
        return 0; /* the usual path queues behind the write in flight */
    }
    if (s->io.wq.pend_len + len > TC_STREAM_CORK_MAX) {
        send_corked(s, 0);  /* in order: the batch, then this write */
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

/* Queue `len` bytes.  `keep` is a bytes object that backs `data` (referenced
 * instead of copied) or NULL.  -1 only on memory errors (exception set);
 * socket errors close the stream. */
static int
write_data(tc_stream *s, const char *data, size_t len, PyObject *keep)
{
    uv_buf_t b;
    size_t taken;
    int rc, uverr;
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
    s->wtotal += len;
    b = tc_uvio_region(data, len);
    rc = tc_uvio_wq_write(&s->io.wq, &s->io.h.stream, !s->connecting && handle_usable(s), &b, 1, len,
                          keep, write_cb, s, &taken, &uverr);
    s->wdone += taken;
    if (rc < 0) {
        return -1;
    }
    if (s->io.wq.inflight) {
        tc_uvio_conn_hold(&s->io); /* a write was issued (or is) */
    }
    if (uverr < 0) {
        write_error(s, uverr);
    }
    return 0;
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
        clear_target(s);
        exc = closed_error(s);
        if (exc == NULL) {
            report(s, "closing the stream failed");
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
            report(s, "closing the stream failed");
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
            report(s, "closing the stream failed");
        }
        else {
            fail_future(s, fut, exc);
            Py_DECREF(exc);
        }
        Py_DECREF(fut);
    }
    s->io.wq.pend_len = 0; /* the in-flight write cannot be recalled */
    cb = s->ccb;
    if (cb != NULL) {
        s->ccb = NULL;
        cb->on_close(s->cctx, s, s->error);
        report(s, "Exception in stream consumer on_close");
    }
    if (s->close_callback != NULL) {
        PyObject *ccb = s->close_callback, *io_loop, *r;
        s->close_callback = NULL;
        io_loop = s->io_loop;
        if (io_loop == NULL) {
            io_loop = s->io_loop = PyObject_CallNoArgs(s->st->stream->IOLoop_current);
        }
        if (io_loop == NULL) {
            report(s, "IOLoop.current() failed");
        }
        else {
            r = PyObject_CallMethod(io_loop, "add_callback", "O", ccb);
            if (r == NULL) {
                report(s, "scheduling the close callback failed");
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
            send_corked(s, 1);
        }
        if (exc != NULL && exc != Py_None) {
            Py_INCREF(exc);
            Py_XSETREF(s->error, exc);
        }
        if (s->rmode == R_CLOSE) {
            s->rmode = R_NONE;
            if (s->error == NULL || is_connreset(s->error)) {
                if (finish_read(s, s->rlen) < 0) {
                    report(s, "completing a read failed");
                }
            }
        }
        else if (s->read_future != NULL && s->rmode != R_NONE) {
            Py_ssize_t pos = find_read_pos(s);
            if (pos == -2) {
                PyErr_Clear();
            }
            else if (pos >= 0 && finish_read(s, (size_t)pos) < 0) {
                report(s, "completing a read failed");
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

static void
set_sizes(tc_stream *s, Py_ssize_t max_buffer_size, Py_ssize_t read_chunk_size)
{
    Py_ssize_t half;
    s->max_buffer_size = max_buffer_size > 0 ? max_buffer_size : DEFAULT_MAX_BUFFER;
    half = s->max_buffer_size / 2;
    s->read_chunk_size = read_chunk_size > 0 ? read_chunk_size : DEFAULT_CHUNK;
    if (s->read_chunk_size > half) {
        s->read_chunk_size = half;
    }
}

/* Open the uv handle of `s` on `fd`.  On success libuv owns the fd; on
 * failure (-1, exception set) the fd is untouched.  `hold_now`: take the
 * self-reference at once (streams of C consumers); Python streams take it
 * when they first wait for the loop (tc_uvio_conn_hold). */
static int
open_handle(tc_stream *s, int fd, int hold_now)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int rc;
    if (ensure_setup(s->st) < 0) {
        return -1;
    }
    if (s->loop->uv == NULL || tc_loop_is_closed(s->loop)) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
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

tc_stream *
tc_stream_from_fd(tc_state *st, tc_loop *loop, int fd, PyTypeObject *type,
                  Py_ssize_t max_buffer_size, Py_ssize_t read_chunk_size)
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
    set_sizes(s, max_buffer_size, read_chunk_size);
    if (open_handle(s, fd, 1) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return s;
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
    update_reading(s);
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

void
tc_stream_pause_reading(tc_stream *s)
{
    s->cpaused = 1;
    update_reading(s);
}

void
tc_stream_resume_reading(tc_stream *s)
{
    s->cpaused = 0;
    if (s->rlen > 0 && !s->deliver_scheduled && !s->closed) {
        PyObject *arg = (PyObject *)s;
        PyObject *h = tc_loop_call_soon(s->loop, s->st->stream->fn_deliver, &arg, 1, NULL);
        if (h == NULL) {
            report(s, "scheduling stream input failed");
        }
        else {
            s->deliver_scheduled = 1;
            Py_DECREF(h);
        }
    }
    update_reading(s);
}

int
tc_stream_write(tc_stream *s, const char *data, size_t len)
{
    if (s->closed) {
        set_closed_error(s);
        return -1;
    }
    return write_data(s, data, len, NULL);
}

int
tc_stream_write_obj(tc_stream *s, PyObject *buffer)
{
    Py_buffer view;
    int rc;
    if (s->closed) {
        set_closed_error(s);
        return -1;
    }
    if (PyBytes_CheckExact(buffer)) {
        return write_data(s, PyBytes_AS_STRING(buffer), (size_t)PyBytes_GET_SIZE(buffer),
                          buffer);
    }
    if (PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    rc = write_data(s, view.buf, (size_t)view.len, NULL);
    PyBuffer_Release(&view);
    return rc;
}

void
tc_stream_set_cork(tc_stream *s, int on)
{
    int was = s->cork;
    s->cork = on != 0;
    if (was && !on && !s->closed) {
        send_corked(s, 0);
    }
}

size_t
tc_stream_write_pending(tc_stream *s)
{
    return s->closed ? 0 : write_pending(s);
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

/* ---------------------------------------------------------- Python API */


static int
no_consumer(tc_stream *s)
{
    if (s->ccb != NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the stream's input belongs to a C consumer");
        return -1;
    }
    if (s->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "stream is not initialised");
        return -1;
    }
    return 0;
}

/* upstream's _start_read: new reference to the read future. */
static PyObject *
start_read(tc_stream *s)
{
    PyObject *fut;
    if (no_consumer(s) < 0) {
        return NULL;
    }
    if (s->read_future != NULL) {
        if (s->closed) {
            return set_closed_error(s);
        }
        PyErr_SetString(PyExc_AssertionError, "Already reading");
        return NULL;
    }
    fut = tc_loop_create_future(s->loop);
    if (fut == NULL) {
        return NULL;
    }
    Py_INCREF(fut);
    s->read_future = fut;
    return fut;
}

/* upstream's _read_to_buffer_loop inside _try_inline_read: read what the
 * socket already has (non-blocking) until the pending read is satisfied.
 * 0, or -1 with the exception set that upstream raises from read_*(). */
static int
inline_read(tc_stream *s)
{
    uv_os_fd_t fd;
    int rounds = 0;
    while (!s->closed && s->rmode != R_NONE && rounds++ < 64) {
        uv_buf_t b;
        ssize_t n;
        if (!handle_usable(s) || uv_fileno(&s->io.h.handle, &fd) < 0) {
            return 0;
        }
        own_space(s, &b);
        if (b.base == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        do {
            n = read(fd, b.base, b.len);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            PyObject *exc;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return 0;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            exc = tc_uvio_fetch_exception();
            if (exc == NULL) {
                return -1;
            }
            stream_close(s, exc);
            if (is_connreset(exc)) {
                Py_DECREF(exc);
                return PyErr_Occurred() ? -1 : 0;
            }
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
            return -1;
        }
        if (n == 0) {
            stream_close(s, NULL);
            return PyErr_Occurred() ? -1 : 0;
        }
        s->rlen += (size_t)n;
        fill_into(s);
        {
            Py_ssize_t pos = find_read_pos(s);
            if (pos == -2) {
                if (PyErr_ExceptionMatches(s->st->stream->UnsatisfiableReadError)) {
                    unsatisfiable(s);
                    return PyErr_Occurred() ? -1 : 0;
                }
                return -1;
            }
            if (pos >= 0) {
                return finish_read(s, (size_t)pos);
            }
        }
        if (s->rlen > (size_t)s->max_buffer_size) {
            PyObject *exc;
            log_msg(s, "error", PyUnicode_FromString("Reached maximum read buffer size"));
            exc = PyObject_CallFunction(s->st->stream->StreamBufferFullError, "s",
                                        "Reached maximum read buffer size");
            if (exc == NULL) {
                return -1;
            }
            stream_close(s, exc);
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
            return -1;
        }
        if ((size_t)n < b.len) {
            return 0; /* the socket is drained */
        }
    }
    return 0;
}

/* upstream's _try_inline_read: from the buffer, then from what the socket
 * already holds, else from the loop later.  Returns `fut` (stolen) or
 * NULL with an exception set. */
static PyObject *
try_inline_read(tc_stream *s, PyObject *fut)
{
    Py_ssize_t pos = find_read_pos(s);
    if (pos == -2) {
        if (PyErr_ExceptionMatches(s->st->stream->UnsatisfiableReadError)) {
            unsatisfiable(s);
            if (PyErr_Occurred()) {
                Py_DECREF(fut);
                return NULL;
            }
            return fut;
        }
        Py_DECREF(fut);
        return NULL;
    }
    if (pos >= 0) {
        if (finish_read(s, (size_t)pos) < 0) {
            Py_DECREF(fut);
            return NULL;
        }
        return fut;
    }
    if (s->closed) {
        Py_DECREF(fut);
        return set_closed_error(s);
    }
    if (inline_read(s) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    if (!s->closed && s->rmode != R_NONE) {
        update_reading(s);
    }
    if (PyErr_Occurred()) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
}

static int
parse_max_bytes(tc_stream *s, PyObject *o)
{
    if (o == NULL || o == Py_None) {
        s->rmax = -1;
        return 0;
    }
    s->rmax = PyNumber_AsSsize_t(o, PyExc_OverflowError);
    if (s->rmax == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (s->rmax < 0) {
        s->rmax = 0; /* nothing fits: every delimiter is unsatisfiable */
    }
    return 0;
}

/* Common tail of read_until/read_until_regex: `target` (stolen) is what to
 * look for in `mode`; `fut` (stolen) is the read's future from start_read(). */
static PyObject *
start_target_read(tc_stream *s, PyObject *fut, int mode, PyObject *target,
                  PyObject *max_bytes)
{
    s->rmode = mode;
    Py_XSETREF(s->rtarget, target);
    if (parse_max_bytes(s, max_bytes) < 0) {
        clear_target(s);
        Py_DECREF(fut);
        return NULL;
    }
    return try_inline_read(s, fut);
}

static PyObject *
py_read_until(tc_stream *s, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"delimiter", "max_bytes", NULL};
    PyObject *delim, *max_bytes = Py_None, *fut, *b;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:read_until", kwlist, &delim, &max_bytes)) {
        return NULL;
    }
    b = PyBytes_Check(delim) ? Py_NewRef(delim) : PyBytes_FromObject(delim);
    if (b == NULL) {
        return NULL;
    }
    fut = start_read(s);
    if (fut == NULL) {
        Py_DECREF(b);
        return NULL;
    }
    return start_target_read(s, fut, R_DELIM, b, max_bytes);
}

static PyObject *
py_read_until_regex(tc_stream *s, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"regex", "max_bytes", NULL};
    PyObject *regex, *max_bytes = Py_None, *fut, *pat;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:read_until_regex", kwlist, &regex,
                                     &max_bytes)) {
        return NULL;
    }
    fut = start_read(s);
    if (fut == NULL) {
        return NULL;
    }
    pat = PyObject_CallOneArg(s->st->stream->re_compile, regex);
    if (pat == NULL) {
        Py_DECREF(fut);
        return NULL;
    }
    return start_target_read(s, fut, R_REGEX, pat, max_bytes);
}

static PyObject *
py_read_bytes(tc_stream *s, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"num_bytes", "partial", NULL};
    PyObject *num, *fut;
    int partial = 0;
    Py_ssize_t n;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p:read_bytes", kwlist, &num, &partial)) {
        return NULL;
    }
    fut = start_read(s);
    if (fut == NULL) {
        return NULL;
    }
    if (!PyLong_Check(num)) {
        PyErr_SetString(PyExc_AssertionError, "num_bytes must be an integer");
        Py_DECREF(fut);
        return NULL;
    }
    n = PyLong_AsSsize_t(num);
    if (n == -1 && PyErr_Occurred()) {
        Py_DECREF(fut);
        return NULL;
    }
    s->rmode = R_BYTES;
    s->rbytes = n < 0 ? 0 : n;
    s->partial = (char)partial;
    s->rmax = -1;
    return try_inline_read(s, fut);
}

static PyObject *
py_read_into(tc_stream *s, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buf", "partial", NULL};
    PyObject *buf, *fut;
    int partial = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p:read_into", kwlist, &buf, &partial)) {
        return NULL;
    }
    fut = start_read(s);
    if (fut == NULL) {
        return NULL;
    }
    if (PyObject_GetBuffer(buf, &s->into, PyBUF_WRITABLE) < 0) {
        Py_CLEAR(s->read_future);
        Py_DECREF(fut);
        return NULL;
    }
    s->into_held = 1;
    s->rmode = R_INTO;
    Py_INCREF(buf);
    Py_XSETREF(s->rtarget, buf);
    s->rbytes = s->into.len;
    s->partial = (char)partial;
    s->rmax = -1;
    s->into_copied = 0;
    fill_into(s);
    return try_inline_read(s, fut);
}

static PyObject *
py_read_until_close(tc_stream *s, PyObject *Py_UNUSED(ignored))
{
    PyObject *fut = start_read(s);
    if (fut == NULL) {
        return NULL;
    }
    if (s->closed) {
        if (finish_read(s, s->rlen) < 0) {
            Py_DECREF(fut);
            return NULL;
        }
        return fut;
    }
    s->rmode = R_CLOSE;
    s->rmax = -1;
    return try_inline_read(s, fut);
}

static int
append_write_future(tc_stream *s, unsigned long long index, PyObject *fut)
{
    if (s->wf_head + s->wf_len == s->wf_cap) {
        if (s->wf_head > 0) {
            memmove(s->wf, s->wf + s->wf_head, s->wf_len * sizeof(wfut_t));
            s->wf_head = 0;
        }
        if (s->wf_len == s->wf_cap) {
            size_t ncap = s->wf_cap ? s->wf_cap * 2 : 8;
            wfut_t *n = PyMem_Realloc(s->wf, ncap * sizeof(wfut_t));
            if (n == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            s->wf = n;
            s->wf_cap = ncap;
        }
    }
    Py_INCREF(fut);
    s->wf[s->wf_head + s->wf_len].index = index;
    s->wf[s->wf_head + s->wf_len].fut = fut;
    s->wf_len++;
    return 0;
}

static PyObject *
py_write(tc_stream *s, PyObject *data)
{
    Py_buffer view;
    PyObject *fut = NULL;
    int held = 0, rc;
    const char *p;
    size_t len;
    if (s->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "stream is not initialised");
        return NULL;
    }
    if (s->closed) {
        return set_closed_error(s);
    }
    if (PyBytes_CheckExact(data)) {
        p = PyBytes_AS_STRING(data);
        len = (size_t)PyBytes_GET_SIZE(data);
    }
    else {
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        held = 1;
        p = view.buf;
        len = (size_t)view.len;
    }
    if (len > 0 && s->max_write_buffer_size >= 0 &&
        write_pending(s) + len > (size_t)s->max_write_buffer_size) {
        PyErr_SetString(s->st->stream->StreamBufferFullError, "Reached maximum write buffer size");
        goto done;
    }
    fut = tc_loop_create_future(s->loop);
    if (fut == NULL) {
        goto done;
    }
    if (append_write_future(s, s->wtotal + len, fut) < 0) {
        Py_CLEAR(fut);
        goto done;
    }
    Py_INCREF(s);
    rc = write_data(s, p, len, held ? NULL : data);
    if (rc == 0) {
        resolve_write_futures(s);
        update_reading(s);
    }
    Py_DECREF(s);
    if (rc < 0 || PyErr_Occurred()) {
        Py_CLEAR(fut);
    }
done:
    if (held) {
        PyBuffer_Release(&view);
    }
    return fut;
}

static PyObject *
py_close(tc_stream *s, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"exc_info", NULL};
    PyObject *exc_info = Py_False, *exc = NULL;
    int t;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:close", kwlist, &exc_info)) {
        return NULL;
    }
    if (s->loop == NULL) {
        Py_RETURN_NONE;
    }
    t = PyObject_IsTrue(exc_info);
    if (t < 0) {
        return NULL;
    }
    if (t && !s->closed) {
        if (PyTuple_Check(exc_info)) {
            if (PyTuple_GET_SIZE(exc_info) > 1) {
                exc = Py_NewRef(PyTuple_GET_ITEM(exc_info, 1));
            }
        }
        else if (PyExceptionInstance_Check(exc_info)) {
            exc = Py_NewRef(exc_info);
        }
        else {
            PyObject *et, *ev, *etb;
            PyErr_GetExcInfo(&et, &ev, &etb);
            exc = ev;
            Py_XDECREF(et);
            Py_XDECREF(etb);
        }
    }
    stream_close(s, exc);
    Py_XDECREF(exc);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
py_closed(tc_stream *s, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(s->closed);
}

static PyObject *
py_reading(tc_stream *s, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(s->read_future != NULL);
}

static PyObject *
py_writing(tc_stream *s, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(!s->closed && write_pending(s) > 0);
}

static PyObject *
py_set_close_callback(tc_stream *s, PyObject *cb)
{
    if (cb == Py_None) {
        Py_CLEAR(s->close_callback);
    }
    else {
        Py_INCREF(cb);
        Py_XSETREF(s->close_callback, cb);
    }
    if (s->loop != NULL) {
        update_reading(s);
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

/* New reference to a socket object on the handle's fd (created lazily for
 * streams made from an fd), or None when closed. */
static PyObject *
get_socket(tc_stream *s)
{
    uv_os_fd_t fd;
    if (s->closed || !handle_usable(s)) {
        Py_RETURN_NONE;
    }
    if (s->io.sock != NULL) {
        return Py_NewRef(s->io.sock);
    }
    if (uv_fileno(&s->io.h.handle, &fd) < 0) {
        Py_RETURN_NONE;
    }
    s->io.sock = PyObject_CallFunction(s->st->stream->socket_type, "iiii", -1, -1, -1, (int)fd);
    return Py_XNewRef(s->io.sock);
}

static PyObject *
py_fileno(tc_stream *s, PyObject *Py_UNUSED(ignored))
{
    return get_socket(s);
}

static PyObject *
py_set_nodelay(tc_stream *s, PyObject *value)
{
    int v = PyObject_IsTrue(value), rc;
    if (v < 0) {
        return NULL;
    }
    if (s->kind != K_TCP || !handle_usable(s) || s->closed) {
        Py_RETURN_NONE;
    }
    rc = uv_tcp_nodelay(&s->io.h.tcp, v);
    if (rc < 0 && rc != UV_EINVAL && rc != UV_ENOTSUP && rc != UV_ECONNRESET &&
        rc != UV_ECONNABORTED && rc != UV_EPIPE && rc != UV_ETIMEDOUT) {
        return tc_uvio_set_error(rc);
    }
    Py_RETURN_NONE;
}

static PyObject *
py_open(tc_stream *s, PyObject *const *args, Py_ssize_t nargs)
{
    /* _open(loop, io_loop, sock, max_buffer_size, read_chunk_size,
     *       max_write_buffer_size) */
    tc_state *st = s->st;
    Py_ssize_t mbs = 0, rcs = 0, mwbs = -1;
    int fd;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "_open(loop, io_loop, sock, max_buffer_size, "
                                         "read_chunk_size, max_write_buffer_size)");
        return NULL;
    }
    if (s->loop != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "stream already opened");
        return NULL;
    }
    if (st == NULL) {
        st = s->st = tc_state_from_subtype(Py_TYPE(s), "tornado_c._core.Stream");
        if (st == NULL) {
            return NULL;
        }
    }
    if (!tc_loop_check(st, args[0])) {
        PyErr_SetString(PyExc_TypeError, "loop must be a tornado_c event loop");
        return NULL;
    }
    if (args[3] != Py_None && (mbs = PyNumber_AsSsize_t(args[3], PyExc_OverflowError)) == -1 &&
        PyErr_Occurred()) {
        return NULL;
    }
    if (args[4] != Py_None && (rcs = PyNumber_AsSsize_t(args[4], PyExc_OverflowError)) == -1 &&
        PyErr_Occurred()) {
        return NULL;
    }
    if (args[5] != Py_None && (mwbs = PyNumber_AsSsize_t(args[5], PyExc_OverflowError)) == -1 &&
        PyErr_Occurred()) {
        return NULL;
    }
    fd = tc_uvio_sock_fd((tc_loop *)args[0], args[2]);
    if (fd < 0) {
        return NULL;
    }
    Py_INCREF(args[0]);
    s->loop = (tc_loop *)args[0];
    Py_INCREF(args[1]);
    Py_XSETREF(s->io_loop, args[1]);
    set_sizes(s, mbs, rcs);
    s->max_write_buffer_size = mwbs < 0 ? -1 : mwbs;
    s->rmax = -1;
    if (open_handle(s, fd, 0) < 0) {
        return NULL;
    }
    Py_INCREF(args[2]);
    Py_XSETREF(s->io.sock, args[2]);
    Py_RETURN_NONE;
}

static PyObject *
py_begin_connect(tc_stream *s, PyObject *Py_UNUSED(ignored))
{
    PyObject *fut;
    if (s->loop == NULL || s->closed) {
        /* upstream would fail in socket.connect() on the closed socket */
        PyErr_SetString(PyExc_OSError, "stream is closed");
        return NULL;
    }
    fut = tc_loop_create_future(s->loop);
    if (fut == NULL) {
        return NULL;
    }
    s->connecting = 1;
    tc_uvio_conn_hold(&s->io); /* upstream registers for WRITE */
    update_reading(s);
    Py_INCREF(fut);
    Py_XSETREF(s->connect_future, fut);
    return fut;
}

static PyObject *
py_finish_connect(tc_stream *s, PyObject *err_o)
{
    /* _finish_connect(errno): the connecting socket became writable */
    long err = PyLong_AsLong(err_o);
    PyObject *fut;
    int rc;
    if (err == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (s->closed || !s->connecting) {
        Py_RETURN_NONE;
    }
    Py_INCREF(s);
    if (err != 0) {
        PyObject *exc = PyObject_CallFunction(PyExc_OSError, "is", (int)err, strerror((int)err));
        if (exc == NULL) {
            Py_DECREF(s);
            return NULL;
        }
        Py_XSETREF(s->error, exc);
        stream_close(s, NULL);
        Py_DECREF(s);
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    fut = s->connect_future;
    s->connect_future = NULL;
    if (fut != NULL) {
        rc = tc_loop_future_set_result(s->loop, fut, (PyObject *)s, TC_FUTURE_UNLESS_CANCELLED);
        Py_DECREF(fut);
        if (rc < 0) {
            report(s, "resolving the connect future failed");
        }
    }
    s->connecting = 0;
    rc = flush_pending(s);
    if (rc < 0) {
        write_error(s, rc);
    }
    update_reading(s);
    Py_DECREF(s);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
py_detach_socket(tc_stream *s, PyObject *Py_UNUSED(ignored))
{
    /* For start_tls: a new socket object on a dup of the fd; this stream's
     * handle is closed without any of the close semantics (upstream just
     * drops its socket). */
    uv_os_fd_t fd;
    int nfd;
    PyObject *sock;
    tc_stream_set_cork(s, 0);
    if (s->closed || !handle_usable(s) || uv_fileno(&s->io.h.handle, &fd) < 0) {
        PyErr_SetString(PyExc_ValueError, "IOStream is not idle; cannot convert to SSL");
        return NULL;
    }
    nfd = dup(fd);
    if (nfd < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    sock = PyObject_CallFunction(s->st->stream->socket_type, "iiii", -1, -1, -1, nfd);
    if (sock == NULL) {
        close(nfd);
        return NULL;
    }
    s->closed = 1; /* quietly: no futures, no callbacks are pending */
    tc_uvio_conn_close(&s->io);
    Py_CLEAR(s->io.sock);
    return sock;
}

static PyObject *
py_set_cork(tc_stream *s, PyObject *on)
{
    int v = PyObject_IsTrue(on);
    if (v < 0) {
        return NULL;
    }
    tc_stream_set_cork(s, v);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
py_loop_closing(tc_stream *s, PyObject *Py_UNUSED(ignored))
{
    /* the loop closes with this stream open: release handle and fd */
    if (!s->closed && s->cork) {
        send_corked(s, 1);
    }
    s->closed = 1;
    s->ccb = NULL;
    s->io.wq.pend_len = 0;
    tc_uvio_conn_close(&s->io);
    Py_RETURN_NONE;
}

/* getters / setters */

static PyObject *
get_io_loop(tc_stream *s, void *Py_UNUSED(c))
{
    if (s->io_loop == NULL) {
        if (s->st == NULL || s->st->stream->IOLoop_current == NULL) {
            Py_RETURN_NONE; /* never opened */
        }
        s->io_loop = PyObject_CallNoArgs(s->st->stream->IOLoop_current);
    }
    return Py_XNewRef(s->io_loop);
}

static int
set_io_loop(tc_stream *s, PyObject *v, void *Py_UNUSED(c))
{
    Py_XINCREF(v);
    Py_XSETREF(s->io_loop, v);
    return 0;
}

static PyObject *
get_sock_attr(tc_stream *s, void *Py_UNUSED(c))
{
    return get_socket(s);
}

static PyObject *
get_error(tc_stream *s, void *Py_UNUSED(c))
{
    return Py_NewRef(s->error ? s->error : Py_None);
}

static int
set_error(tc_stream *s, PyObject *v, void *Py_UNUSED(c))
{
    PyObject *n = (v == NULL || v == Py_None) ? NULL : Py_NewRef(v);
    Py_XSETREF(s->error, n);
    return 0;
}

static int
set_ssize(Py_ssize_t *field, PyObject *v, int allow_none)
{
    Py_ssize_t n;
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete this attribute");
        return -1;
    }
    if (v == Py_None && allow_none) {
        *field = -1;
        return 0;
    }
    n = PyNumber_AsSsize_t(v, PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    *field = n;
    return 0;
}

static PyObject *
get_max_buffer_size(tc_stream *s, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(s->max_buffer_size);
}

static int
set_max_buffer_size(tc_stream *s, PyObject *v, void *Py_UNUSED(c))
{
    return set_ssize(&s->max_buffer_size, v, 0);
}

static PyObject *
get_read_chunk_size(tc_stream *s, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(s->read_chunk_size);
}

static int
set_read_chunk_size(tc_stream *s, PyObject *v, void *Py_UNUSED(c))
{
    if (set_ssize(&s->read_chunk_size, v, 0) < 0) {
        return -1;
    }
    if (s->read_chunk_size < 1) {
        s->read_chunk_size = 1;
    }
    return 0;
}

static PyObject *
get_max_write_buffer_size(tc_stream *s, void *Py_UNUSED(c))
{
    if (s->max_write_buffer_size < 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromSsize_t(s->max_write_buffer_size);
}

static int
set_max_write_buffer_size(tc_stream *s, PyObject *v, void *Py_UNUSED(c))
{
    return set_ssize(&s->max_write_buffer_size, v, 1);
}

static PyObject *
get_read_buffer(tc_stream *s, void *Py_UNUSED(c))
{
    return PyByteArray_FromStringAndSize(RDATA(s) ? RDATA(s) + s->rstart : "", (Py_ssize_t)s->rlen);
}

static PyObject *
get_read_buffer_size(tc_stream *s, void *Py_UNUSED(c))
{
    return PyLong_FromSize_t(s->rlen);
}

static PyObject *
get_write_buffer(tc_stream *s, void *Py_UNUSED(c))
{
    /* a snapshot of what is queued behind the in-flight write; None once
     * closed, as upstream */
    if (s->closed) {
        Py_RETURN_NONE;
    }
    return PyBytes_FromStringAndSize(s->io.wq.pend ? s->io.wq.pend : "", (Py_ssize_t)s->io.wq.pend_len);
}

static PyObject *
get_closed_flag(tc_stream *s, void *Py_UNUSED(c))
{
    return PyBool_FromLong(s->closed);
}

static PyObject *
get_connecting(tc_stream *s, void *Py_UNUSED(c))
{
    return PyBool_FromLong(s->connecting);
}

static PyObject *
get_read_future(tc_stream *s, void *Py_UNUSED(c))
{
    return Py_NewRef(s->read_future ? s->read_future : Py_None);
}

static PyObject *
get_connect_future(tc_stream *s, void *Py_UNUSED(c))
{
    return Py_NewRef(s->connect_future ? s->connect_future : Py_None);
}

static PyObject *
get_close_callback(tc_stream *s, void *Py_UNUSED(c))
{
    return Py_NewRef(s->close_callback ? s->close_callback : Py_None);
}

static PyObject *
get_write_futures(tc_stream *s, void *Py_UNUSED(c))
{
    PyObject *l = PyList_New(0);
    size_t i;
    if (l == NULL) {
        return NULL;
    }
    for (i = 0; i < s->wf_len; i++) {
        wfut_t *w = &s->wf[s->wf_head + i];
        PyObject *t = Py_BuildValue("(KO)", w->index, w->fut);
        if (t == NULL || PyList_Append(l, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(t);
    }
    return l;
}

static PyObject *
get_consumer_attached(tc_stream *s, void *Py_UNUSED(c))
{
    return PyBool_FromLong(s->ccb != NULL);
}

/* ------------------------------------------------------------- type */

static PyObject *
stream_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    tc_stream *s = (tc_stream *)type->tp_alloc(type, 0);
    (void)args;
    (void)kwds;
    if (s == NULL) {
        return NULL;
    }
    s->st = tc_state_from_subtype(Py_TYPE(s), "tornado_c._core.Stream");
    if (s->st == NULL) {
        Py_DECREF(s);
        return NULL;
    }
    s->max_buffer_size = DEFAULT_MAX_BUFFER;
    s->read_chunk_size = DEFAULT_CHUNK;
    s->max_write_buffer_size = -1;
    s->rmax = -1;
    return (PyObject *)s;
}

static int
stream_traverse(tc_stream *s, visitproc visit, void *arg)
{
    size_t i;
    Py_VISIT(Py_TYPE(s));
    Py_VISIT(s->loop);
    Py_VISIT(s->io_loop);
    Py_VISIT(s->io.sock);
    Py_VISIT(s->io.live);
    Py_VISIT(s->error);
    Py_VISIT(s->close_callback);
    Py_VISIT(s->connect_future);
    Py_VISIT(s->read_future);
    Py_VISIT(s->rtarget);
    Py_VISIT(s->io.wq.obj);
    for (i = 0; i < s->wf_len; i++) {
        Py_VISIT(s->wf[s->wf_head + i].fut);
    }
    return 0;
}

static int
stream_clear(tc_stream *s)
{
    /* Never reached while the handle is open: a held stream is referenced
     * by itself, and stream_finalize (which the collector runs first)
     * closes the handle of an unheld one, taking the self-reference. */
    size_t i;
    Py_CLEAR(s->io_loop);
    Py_CLEAR(s->io.sock);
    Py_CLEAR(s->io.live);
    Py_CLEAR(s->error);
    Py_CLEAR(s->close_callback);
    Py_CLEAR(s->connect_future);
    Py_CLEAR(s->read_future);
    clear_target(s);
    Py_CLEAR(s->io.wq.obj);
    for (i = 0; i < s->wf_len; i++) {
        Py_CLEAR(s->wf[s->wf_head + i].fut);
    }
    s->wf_len = 0;
    s->wf_head = 0;
    if (!s->io.open) {
        Py_CLEAR(s->loop);
    }
    return 0;
}

/* Nobody references the stream and it never waited for the loop (else it
 * would hold itself): close the connection, as upstream's socket closes
 * its fd when collected.  tc_uvio_conn_close takes the self-reference, so
 * the object lives on until the close callback.  The cycle collector may run this in any
 * thread: while the loop runs in another one, its handles are its own, so
 * the stream is held (the loop closing would release it) and closed by
 * _loop_closing from the loop's thread (call_soon_threadsafe). */
static void
stream_finalize(tc_stream *s)
{
    PyObject *type, *value, *tb, *meth, *r;
    if (!s->io.open || s->io.closing || s->io.held) {
        return;
    }
    PyErr_Fetch(&type, &value, &tb);
    if (tc_loop_in_other_thread(s->loop)) {
        tc_uvio_conn_hold(&s->io);
        meth = PyObject_GetAttrString((PyObject *)s, "_loop_closing");
        if (meth != NULL) {
            r = PyObject_CallMethod((PyObject *)s->loop, "call_soon_threadsafe", "O", meth);
            Py_XDECREF(r);
            Py_DECREF(meth);
        }
    }
    else {
        s->closed = 1;
        s->ccb = NULL;
        s->io.wq.pend_len = 0;
        tc_uvio_conn_close(&s->io);
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable((PyObject *)s);
    }
    PyErr_Restore(type, value, tb);
}

static void
stream_dealloc(tc_stream *s)
{
    PyTypeObject *tp = Py_TYPE(s);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)s) < 0) {
        return; /* resurrected: the handle is closing (its close callback frees) */
    }
    PyObject_GC_UnTrack(s);
    stream_clear(s);
    Py_CLEAR(s->loop);
    PyMem_Free(s->rbuf);
    tc_uvio_wq_free(&s->io.wq);
    PyMem_Free(s->wf);
    tp->tp_free((PyObject *)s);
    Py_DECREF(tp);
}

#define KW (METH_VARARGS | METH_KEYWORDS)
#define FN(f) ((PyCFunction)(void (*)(void))(f))

static PyMethodDef stream_methods[] = {
    {"_open", FN(py_open), METH_FASTCALL,
     "_open(loop, io_loop, sock, max_buffer_size, read_chunk_size, max_write_buffer_size)"},
    {"read_until", FN(py_read_until), KW, NULL},
    {"read_until_regex", FN(py_read_until_regex), KW, NULL},
    {"read_bytes", FN(py_read_bytes), KW, NULL},
    {"read_into", FN(py_read_into), KW, NULL},
    {"read_until_close", FN(py_read_until_close), METH_NOARGS, NULL},
    {"write", FN(py_write), METH_O, NULL},
    {"close", FN(py_close), KW, NULL},
    {"closed", FN(py_closed), METH_NOARGS, NULL},
    {"reading", FN(py_reading), METH_NOARGS, NULL},
    {"writing", FN(py_writing), METH_NOARGS, NULL},
    {"set_close_callback", FN(py_set_close_callback), METH_O, NULL},
    {"fileno", FN(py_fileno), METH_NOARGS, NULL},
    {"set_nodelay", FN(py_set_nodelay), METH_O, NULL},
    {"_begin_connect", FN(py_begin_connect), METH_NOARGS, NULL},
    {"_finish_connect", FN(py_finish_connect), METH_O, NULL},
    {"_detach_socket", FN(py_detach_socket), METH_NOARGS, NULL},
    {"_set_cork", FN(py_set_cork), METH_O,
     "Batch small writes per loop iteration, as the C HTTP server does (tests)."},
    {"_loop_closing", FN(py_loop_closing), METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef stream_getset[] = {
    {"io_loop", (getter)get_io_loop, (setter)set_io_loop, NULL, NULL},
    {"socket", (getter)get_sock_attr, NULL, NULL, NULL},
    {"error", (getter)get_error, (setter)set_error, NULL, NULL},
    {"max_buffer_size", (getter)get_max_buffer_size, (setter)set_max_buffer_size, NULL, NULL},
    {"read_chunk_size", (getter)get_read_chunk_size, (setter)set_read_chunk_size, NULL, NULL},
    {"max_write_buffer_size", (getter)get_max_write_buffer_size,
     (setter)set_max_write_buffer_size, NULL, NULL},
    {"_read_buffer", (getter)get_read_buffer, NULL, "copy of the buffered input", NULL},
    {"_read_buffer_size", (getter)get_read_buffer_size, NULL, NULL, NULL},
    {"_write_buffer", (getter)get_write_buffer, NULL, NULL, NULL},
    {"_closed", (getter)get_closed_flag, NULL, NULL, NULL},
    {"_connecting", (getter)get_connecting, NULL, NULL, NULL},
    {"_read_future", (getter)get_read_future, NULL, NULL, NULL},
    {"_connect_future", (getter)get_connect_future, NULL, NULL, NULL},
    {"_close_callback", (getter)get_close_callback, NULL, NULL, NULL},
    {"_write_futures", (getter)get_write_futures, NULL, NULL, NULL},
    {"_has_consumer", (getter)get_consumer_attached, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot stream_slots[] = {
    {Py_tp_doc, "C base of tornado_c.iostream.IOStream: an IOStream on a libuv stream."},
    {Py_tp_new, stream_new},
    {Py_tp_dealloc, stream_dealloc},
    {Py_tp_finalize, stream_finalize},
    {Py_tp_traverse, stream_traverse},
    {Py_tp_clear, stream_clear},
    {Py_tp_methods, stream_methods},
    {Py_tp_getset, stream_getset},
    {0, NULL},
};

static PyType_Spec stream_spec = {
    .name = "tornado_c._core.Stream",
    .basicsize = sizeof(tc_stream),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = stream_slots,
};

/* ------------------------------------------------------ module functions */

static PyObject *
fn_stream_setup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    /* _stream_setup(IOStream, StreamClosedError, UnsatisfiableReadError,
     *               StreamBufferFullError, gen_log, IOLoop.current) */
    tc_state *st = tc_get_state(module);
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "_stream_setup() takes 6 arguments");
        return NULL;
    }
    if (!PyType_Check(args[0]) ||
        !PyType_IsSubtype((PyTypeObject *)args[0], st->stream->Stream_type)) {
        PyErr_SetString(PyExc_TypeError, "IOStream must subclass _core.Stream");
        return NULL;
    }
    Py_XSETREF(st->stream->IOStream_cls, Py_NewRef(args[0]));
    Py_XSETREF(st->stream->StreamClosedError, Py_NewRef(args[1]));
    Py_XSETREF(st->stream->UnsatisfiableReadError, Py_NewRef(args[2]));
    Py_XSETREF(st->stream->StreamBufferFullError, Py_NewRef(args[3]));
    Py_XSETREF(st->stream->gen_log, Py_NewRef(args[4]));
    Py_XSETREF(st->stream->IOLoop_current, Py_NewRef(args[5]));
    Py_RETURN_NONE;
}

static PyObject *
fn_stream_deliver(PyObject *module, PyObject *arg)
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
    update_reading(s);
    report(s, "stream delivery failed");
    Py_DECREF(s);
    Py_RETURN_NONE;
}

static PyMethodDef stream_functions[] = {
    {"_stream_setup", FN(fn_stream_setup), METH_FASTCALL, NULL},
    {"_stream_deliver", FN(fn_stream_deliver), METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

int
tc_stream_exec(PyObject *module, struct tc_state *st)
{
    tc_stream_state *ss = st->stream;
    if (tc_add_type(module, &stream_spec, NULL, &ss->Stream_type) < 0) {
        return -1;
    }
#ifdef TC_TEST_API
    if (tc_stream_test_exec(module, st) < 0) {
        return -1;
    }
#endif
    if (PyModule_AddFunctions(module, stream_functions) < 0) {
        return -1;
    }
    if ((ss->fn_deliver = PyObject_GetAttrString(module, "_stream_deliver")) == NULL) {
        return -1;
    }
    if ((ss->re_compile = tc_import_attr("re", "compile")) == NULL ||
        (ss->socket_type = tc_import_attr("socket", "socket")) == NULL) {
        return -1;
    }
    return 0;
}

int
tc_stream_traverse(struct tc_state *st, visitproc visit, void *arg)
{
    tc_stream_state *ss = st->stream;
    Py_VISIT(ss->Stream_type);
#ifdef TC_TEST_API
    Py_VISIT(ss->TestConsumer_type);
#endif
    Py_VISIT(ss->IOStream_cls);
    Py_VISIT(ss->StreamClosedError);
    Py_VISIT(ss->UnsatisfiableReadError);
    Py_VISIT(ss->StreamBufferFullError);
    Py_VISIT(ss->gen_log);
    Py_VISIT(ss->IOLoop_current);
    Py_VISIT(ss->re_compile);
    Py_VISIT(ss->socket_type);
    Py_VISIT(ss->fn_deliver);
    return 0;
}

void
tc_stream_clear(struct tc_state *st)
{
    tc_stream_state *ss = st->stream;
    Py_CLEAR(ss->Stream_type);
#ifdef TC_TEST_API
    Py_CLEAR(ss->TestConsumer_type);
#endif
    Py_CLEAR(ss->IOStream_cls);
    Py_CLEAR(ss->StreamClosedError);
    Py_CLEAR(ss->UnsatisfiableReadError);
    Py_CLEAR(ss->StreamBufferFullError);
    Py_CLEAR(ss->gen_log);
    Py_CLEAR(ss->IOLoop_current);
    Py_CLEAR(ss->re_compile);
    Py_CLEAR(ss->socket_type);
    Py_CLEAR(ss->fn_deliver);
}
