/* stream component: the Python face of the C IOStream.
 *
 * tornado_c._core.Stream, the C base of tornado_c.iostream.IOStream: the
 * IOStream methods (read_until, read_until_regex, read_bytes, read_into,
 * read_until_close, write, close, set_close_callback, ...), the attributes
 * upstream's code and tests read (error, socket, max_buffer_size,
 * _read_buffer, _write_buffer, ...), the type's traverse/clear/finalize/
 * dealloc, the module functions (_stream_setup, _stream_deliver) and the
 * component's exec/traverse/clear.
 *
 * Buffers, reads, writes and closing are the C core's (stream.c, shared
 * through stream/internal.h); this file adds what a Python caller needs on
 * top: upstream's _start_read / _try_inline_read (a read is served from the
 * buffer, then from what the socket already holds, before the loop waits),
 * the write futures, argument parsing and upstream's exceptions.
 */
#include "stream/internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

/* --------------------------------------------------------------- reads */

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
            return tc_stream_set_closed_error(s);
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
        if (!tc_stream_handle_usable(s) || uv_fileno(&s->io.h.handle, &fd) < 0) {
            return 0;
        }
        if (s->tls != NULL) {
            /* records: into the loop's read buffer, copied out at once by
             * tc_stream_tls_input (no Python code runs in between) */
            b.base = tc_loop_read_buffer(s->loop);
            b.len = TC_UVIO_READ_BUF_SIZE;
        }
        else {
            tc_stream_own_space(s, &b);
        }
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
            if (s->tls != NULL && !s->tls_hs && !TC_TLS_SOCKET_ERROR_RAISES) {
                tc_stream_tls_end(s); /* an EOF, as read_end takes it */
                return PyErr_Occurred() ? -1 : 0;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            exc = tc_uvio_fetch_exception();
            if (exc == NULL) {
                return -1;
            }
            tc_stream_close(s, exc);
            if (tc_stream_is_connreset(exc)) {
                Py_DECREF(exc);
                return PyErr_Occurred() ? -1 : 0;
            }
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
            return -1;
        }
        if (n == 0) {
            if (s->tls != NULL) {
                tc_stream_tls_end(s);
            }
            else {
                tc_stream_close(s, NULL);
            }
            return PyErr_Occurred() ? -1 : 0;
        }
        if (s->tls != NULL) {
            if (tc_stream_tls_input(s, b.base, (size_t)n) < 0) {
                return -1;
            }
            if (s->closed) {
                return PyErr_Occurred() ? -1 : 0;
            }
        }
        else {
            s->rlen += (size_t)n;
        }
        tc_stream_fill_into(s);
        {
            Py_ssize_t pos = tc_stream_find_read_pos(s);
            if (pos == -2) {
                if (PyErr_ExceptionMatches(s->st->stream->UnsatisfiableReadError)) {
                    tc_stream_unsatisfiable(s);
                    return PyErr_Occurred() ? -1 : 0;
                }
                return -1;
            }
            if (pos >= 0) {
                return tc_stream_finish_read(s, (size_t)pos);
            }
        }
        if (s->tls_eof) {
            tc_stream_close(s, NULL); /* close_notify */
            return PyErr_Occurred() ? -1 : 0;
        }
        if (s->rlen > (size_t)s->max_buffer_size) {
            PyObject *exc;
            tc_stream_log(s, "error", PyUnicode_FromString("Reached maximum read buffer size"));
            exc = PyObject_CallFunction(s->st->stream->StreamBufferFullError, "s",
                                        "Reached maximum read buffer size");
            if (exc == NULL) {
                return -1;
            }
            tc_stream_close(s, exc);
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
    Py_ssize_t pos = tc_stream_find_read_pos(s);
    if (pos == -2) {
        if (PyErr_ExceptionMatches(s->st->stream->UnsatisfiableReadError)) {
            tc_stream_unsatisfiable(s);
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
        if (tc_stream_finish_read(s, (size_t)pos) < 0) {
            Py_DECREF(fut);
            return NULL;
        }
        return fut;
    }
    if (s->closed) {
        Py_DECREF(fut);
        return tc_stream_set_closed_error(s);
    }
    if (inline_read(s) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    if (!s->closed && s->rmode != R_NONE) {
        tc_stream_update_reading(s);
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
        tc_stream_clear_target(s);
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
    tc_stream_fill_into(s);
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
        if (tc_stream_finish_read(s, s->rlen) < 0) {
            Py_DECREF(fut);
            return NULL;
        }
        return fut;
    }
    s->rmode = R_CLOSE;
    s->rmax = -1;
    return try_inline_read(s, fut);
}

/* -------------------------------------------------------------- writes */

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

/* What write() and _write_frame() share: `len` bytes at p (backed by the
 * bytes object `keep`, or NULL: copied if not taken at once) -- after a
 * header of hlen bytes when head is not NULL (then keep is the payload's
 * bytes object) -- checked against max_write_buffer_size, queued, and a new
 * Future resolved once the kernel took them all.  NULL with an exception. */
static PyObject *
queue_write(tc_stream *s, const char *head, size_t hlen, const char *p, size_t len,
            PyObject *keep)
{
    PyObject *fut;
    int rc;
    size_t total = hlen + len;
    if (total > 0 && s->max_write_buffer_size >= 0 &&
        tc_stream_wq_pending(s) + total > (size_t)s->max_write_buffer_size) {
        PyErr_SetString(s->st->stream->StreamBufferFullError, "Reached maximum write buffer size");
        return NULL;
    }
    fut = tc_loop_create_future(s->loop);
    if (fut == NULL) {
        return NULL;
    }
    /* a TLS stream's future completes with the records its bytes become:
     * their end is known once they are written (or, before the handshake
     * completes, once they go out: tls.c's _tls_established) */
    if (append_write_future(s, s->tls != NULL ? ULLONG_MAX : s->wtotal + total, fut) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    Py_INCREF(s);
    rc = head != NULL ? tc_stream_write_pair(s, head, hlen, keep)
                      : tc_stream_write_data(s, p, len, keep);
    if (rc == 0 && s->tls != NULL && !s->tls_hs && s->wf_len > 0 &&
        s->wf[s->wf_head + s->wf_len - 1].fut == fut) {
        s->wf[s->wf_head + s->wf_len - 1].index = s->wtotal;
    }
    if (rc == 0) {
        tc_stream_resolve_write_futures(s);
        tc_stream_update_reading(s);
    }
    Py_DECREF(s);
    if (rc < 0 || PyErr_Occurred()) {
        Py_CLEAR(fut);
    }
    return fut;
}

static PyObject *
py_write(tc_stream *s, PyObject *data)
{
    Py_buffer view;
    PyObject *fut;
    if (s->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "stream is not initialised");
        return NULL;
    }
    if (s->closed) {
        return tc_stream_set_closed_error(s);
    }
    if (PyBytes_CheckExact(data)) {
        return queue_write(s, NULL, 0, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data),
                           data);
    }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    fut = queue_write(s, NULL, 0, view.buf, (size_t)view.len, NULL);
    PyBuffer_Release(&view);
    return fut;
}

/* _write_frame(head, body): write(head + body) without building it (both
 * bytes, head not empty): one system call for both, body referenced, not
 * copied.  The WebSocket protocol writes a big message's header and
 * payload with it (tornado_c/websocket.py). */
static PyObject *
py_write_frame(tc_stream *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[1]) ||
        PyBytes_GET_SIZE(args[0]) == 0) {
        PyErr_SetString(PyExc_TypeError, "_write_frame(head, body): two bytes, head not empty");
        return NULL;
    }
    if (s->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "stream is not initialised");
        return NULL;
    }
    if (s->closed) {
        return tc_stream_set_closed_error(s);
    }
    return queue_write(s, PyBytes_AS_STRING(args[0]), (size_t)PyBytes_GET_SIZE(args[0]),
                       PyBytes_AS_STRING(args[1]), (size_t)PyBytes_GET_SIZE(args[1]), args[1]);
}

/* ------------------------------------------ closing, state, the socket */

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
    tc_stream_close(s, exc);
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
    return PyBool_FromLong(!s->closed &&
                           (tc_stream_wq_pending(s) > 0 || tc_stream_tls_pending(s) > 0));
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
        tc_stream_update_reading(s);
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
    if (s->closed || !tc_stream_handle_usable(s)) {
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
    if (s->kind != K_TCP || !tc_stream_handle_usable(s) || s->closed) {
        Py_RETURN_NONE;
    }
    rc = uv_tcp_nodelay(&s->io.h.tcp, v);
    if (rc < 0 && rc != UV_EINVAL && rc != UV_ENOTSUP && rc != UV_ECONNRESET &&
        rc != UV_ECONNABORTED && rc != UV_EPIPE && rc != UV_ETIMEDOUT) {
        return tc_uvio_set_error(rc);
    }
    Py_RETURN_NONE;
}

/* -------------------------------------- opening, connecting, detaching */

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
    tc_stream_set_sizes(s, mbs, rcs);
    s->max_write_buffer_size = mwbs < 0 ? -1 : mwbs;
    s->rmax = -1;
    if (tc_stream_open_handle(s, fd, 0) < 0) {
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
    tc_stream_update_reading(s);
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
        tc_stream_close(s, NULL);
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
            tc_stream_report(s, "resolving the connect future failed");
        }
    }
    s->connecting = 0;
    rc = tc_stream_flush_pending(s);
    if (rc < 0) {
        tc_stream_write_error(s, rc);
    }
    tc_stream_update_reading(s);
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
    if (s->closed || !tc_stream_handle_usable(s) || uv_fileno(&s->io.h.handle, &fd) < 0) {
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
        tc_stream_send_corked(s, 1);
    }
    s->closed = 1;
    s->ccb = NULL;
    s->io.wq.pend_len = 0;
    tc_uvio_conn_close(&s->io);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------- attributes */

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
    return tc_stream_tls_traverse(s, visit, arg);
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
    tc_stream_clear_target(s);
    Py_CLEAR(s->io.wq.obj);
    for (i = 0; i < s->wf_len; i++) {
        Py_CLEAR(s->wf[s->wf_head + i].fut);
    }
    tc_stream_tls_clear(s);
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
    tc_stream_tls_free(s);
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
    {"_write_frame", FN(py_write_frame), METH_FASTCALL, NULL},
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
    {"_tls_attach", FN(tc_stream_py_tls_attach), METH_FASTCALL,
     "_tls_attach(raw, incoming, outgoing, SSLWantReadError): TLS from here on (tls.c)"},
    {"_tls_flush", FN(tc_stream_py_tls_flush), METH_NOARGS, NULL},
    {"_tls_established", FN(tc_stream_py_tls_established), METH_NOARGS, NULL},
    {"_tls_step", FN(tc_stream_py_tls_step), METH_NOARGS, NULL},
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


static PyMethodDef stream_functions[] = {
    {"_stream_setup", FN(fn_stream_setup), METH_FASTCALL, NULL},
    {"_stream_deliver", FN(tc_stream_fn_deliver), METH_O, NULL},
    {"_stream_read_end", FN(tc_stream_fn_read_end), METH_O, NULL},
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
    if ((ss->fn_deliver = PyObject_GetAttrString(module, "_stream_deliver")) == NULL ||
        (ss->fn_read_end = PyObject_GetAttrString(module, "_stream_read_end")) == NULL) {
        return -1;
    }
    if ((ss->re_compile = tc_import_attr("re", "compile")) == NULL ||
        (ss->socket_type = tc_import_attr("socket", "socket")) == NULL) {
        return -1;
    }
    return tc_stream_tls_exec(st);
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
    Py_VISIT(ss->fn_read_end);
    Py_VISIT(ss->s_read);
    Py_VISIT(ss->s_write);
    Py_VISIT(ss->s_pending);
    Py_VISIT(ss->s_write_eof);
    Py_VISIT(ss->s_tls_handshake);
    Py_VISIT(ss->s_tls_signal_closed);
    Py_VISIT(ss->s_tls_step);
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
    Py_CLEAR(ss->fn_read_end);
    Py_CLEAR(ss->s_read);
    Py_CLEAR(ss->s_write);
    Py_CLEAR(ss->s_pending);
    Py_CLEAR(ss->s_write_eof);
    Py_CLEAR(ss->s_tls_handshake);
    Py_CLEAR(ss->s_tls_signal_closed);
    Py_CLEAR(ss->s_tls_step);
}
