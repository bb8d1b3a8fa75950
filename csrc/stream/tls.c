/* stream component: TLS inside the C stream (start_tls, both sides; the
 * connections of TCPServer / HTTPServer with ssl_options).
 *
 * Decision.  Under the switch an https:// fetch reaches TCPClient.connect,
 * which connects a plain C stream and then calls its start_tls(False,
 * ssl_options, server_hostname).  Until now that detached the socket from
 * libuv and handed it to upstream's Python SSLIOStream on the loop's
 * add_reader/add_writer, so the C response reader (http/client.c) could not
 * be used and every byte went through upstream's Python buffers.  Three
 * places could host TLS for it:
 *   - the loop's TLS (loop/tls.c): it sits in front of asyncio's
 *     SSLProtocol, a *protocol* on a transport; an IOStream is not a
 *     protocol, and bridging the two would put asyncio's state machine and a
 *     second buffer layer between the socket and the stream;
 *   - a Python SSLObject layer over the C stream: every record would cross
 *     the interpreter twice;
 *   - a layer inside tc_stream, chosen here: ciphertext read by libuv is fed
 *     to the SSL object's incoming memory BIO and decrypted straight into
 *     the stream's own input buffer, so everything after it -- the Python
 *     reads' matching, read_into, the C consumers (the client's response
 *     reader), max_buffer_size -- sees plaintext and runs unchanged; a write
 *     is encrypted at once and the ciphertext goes through the stream's
 *     usual write queue (uv_try_write first).  As in loop/tls.c the
 *     _ssl._SSLObject under an exact ssl.SSLObject is called directly, and
 *     the decrypting loop stops once neither the incoming BIO nor the SSL
 *     object holds bytes (OpenSSL takes one record per read from a memory
 *     BIO), without provoking SSLWantReadError.
 * The server side is the same layer: under the switch TCPServer's
 * _handle_connection (tornado_c/iostream.py) wraps an accepted socket with
 * ssl_options this way instead of in an SSLSocket, and the C HTTP server
 * (http/server.c) consumes the plaintext of such a stream as of a plain one.
 * The handshake runs once per connection and its outcome is what users
 * see (which error, which log line, when the start_tls future resolves), so
 * it stays in Python (tornado_c.iostream's SSLIOStream._do_ssl_handshake,
 * upstream's method for an SSLObject): this file calls it when handshake
 * bytes arrive and gives it _tls_flush() / _tls_established().
 *
 * Semantics kept from upstream's SSLIOStream on an SSLSocket: a peer's
 * close_notify (read() gives 0), an EOF without one (ragged EOFs are
 * suppressed by wrap_socket's default) and, once the handshake is done and
 * up to Python 3.12, a socket error such as a reset (the ssl module reports
 * it as an EOF, suppressed the same way) all close the stream cleanly (from
 * 3.13 an SSLSocket raises that error and the stream closes with it, as a
 * plain one: stream.c's read_end); any
 * other SSL error while reading closes it with the error and logs "error on
 * read: ..." as upstream's _handle_read; writes made before the handshake
 * completes wait for it (their futures too); a write error is logged "Write
 * error on <fd>: ..." unless it is a connection reset.
 *
 * Ownership: the tc_stream_tls block is owned by its stream (s->tls, freed
 * with it); every PyObject field is a strong reference, visited and cleared
 * with the stream.
 */
#include "stream/internal.h"

#include <limits.h>
#include <string.h>

/* plaintext is encrypted in pieces of this size: the outgoing BIO never
 * holds more than one piece's records */
#define TLS_WRITE_PIECE (256 * 1024)

struct tc_stream_tls {
    PyObject *raw;          /* strong: the _ssl._SSLObject (SSLObject._sslobj) */
    PyObject *incoming;     /* strong: ssl.MemoryBIO the peer's records go to */
    PyObject *outgoing;     /* strong: ssl.MemoryBIO our records come from */
    PyObject *want_read;    /* strong: ssl.SSLWantReadError */
    char *pend;             /* plaintext written before the handshake (PyMem) */
    size_t pend_len, pend_cap;
    char step_queued;       /* a handshake step waits in the loop (queue_step) */
};

/* ------------------------------------------------------------- helpers */

/* bio.pending or raw.pending(): >= 0, or -1 with an exception set. */
static Py_ssize_t
pending_of(PyObject *o, PyObject *name, int call)
{
    PyObject *v = call ? PyObject_CallMethodNoArgs(o, name) : PyObject_GetAttr(o, name);
    Py_ssize_t n;
    if (v == NULL) {
        return -1;
    }
    n = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return n;
}

/* Send what the outgoing BIO holds.  0, or -1 with an exception set
 * (socket errors close the stream as a write does and are not raised). */
static int
flush_outgoing(tc_stream *s)
{
    tc_stream_tls *t = s->tls;
    PyObject *data;
    int rc;
    Py_ssize_t n = pending_of(t->outgoing, s->st->stream->s_pending, 0);
    if (n <= 0) {
        return (int)n;
    }
    data = PyObject_CallMethodNoArgs(t->outgoing, s->st->stream->s_read);
    if (data == NULL) {
        return -1;
    }
    if (!PyBytes_Check(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_TypeError, "MemoryBIO.read() did not return bytes");
        return -1;
    }
    if (s->closed) {
        Py_DECREF(data);
        return 0;
    }
    rc = tc_stream_raw_write(s, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data), data);
    Py_DECREF(data);
    return rc;
}

/* An SSL error while reading or writing: close with it, logged as
 * upstream's _handle_read / _handle_write log it.  Consumes the exception
 * that is set. */
static void
fail_with_current(tc_stream *s, int writing)
{
    PyObject *exc = tc_uvio_fetch_exception();
    if (exc == NULL) {
        return;
    }
    if (writing) {
        if (!tc_stream_is_connreset(exc)) {
            uv_os_fd_t fd = -1;
            if (tc_stream_handle_usable(s)) {
                uv_fileno(&s->io.h.handle, &fd);
            }
            tc_stream_log(s, "warning",
                          PyUnicode_FromFormat("Write error on %d: %S", (int)fd, exc));
        }
        tc_stream_close(s, exc);
    }
    else {
        tc_stream_close(s, exc);
        if (!tc_stream_is_connreset(exc)) {
            tc_stream_log(s, "warning", PyUnicode_FromFormat("error on read: %S", exc));
        }
    }
    Py_DECREF(exc);
}

/* Decrypt what the SSL object can give into the stream's own buffer.
 * 0: done (s->rlen grew by what arrived); 1: the peer ended the TLS
 * session (close_notify); -1: an exception is set. */
static int
decrypt(tc_stream *s)
{
    tc_stream_tls *t = s->tls;
    tc_stream_state *ss = s->st->stream;
    for (;;) {
        uv_buf_t b;
        PyObject *view, *r, *args[3];
        Py_ssize_t n;
        tc_stream_own_space(s, &b);
        if (b.base == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (b.len > INT_MAX) {
            b.len = INT_MAX;
        }
        view = PyMemoryView_FromMemory(b.base, (Py_ssize_t)b.len, PyBUF_WRITE);
        if (view == NULL) {
            return -1;
        }
        args[0] = t->raw;
        args[1] = PyLong_FromSize_t(b.len);
        if (args[1] == NULL) {
            Py_DECREF(view);
            return -1;
        }
        args[2] = view;
        /* no PY_VECTORCALL_ARGUMENTS_OFFSET: args[-1] is not ours to lend */
        r = PyObject_VectorcallMethod(ss->s_read, args, 3, NULL);
        Py_DECREF(args[1]);
        Py_DECREF(view);
        if (r == NULL) {
            if (PyErr_ExceptionMatches(t->want_read)) {
                PyErr_Clear();
                return 0;
            }
            return -1;
        }
        n = PyLong_AsSsize_t(r);
        Py_DECREF(r);
        if (n < 0) {
            return PyErr_Occurred() ? -1 : 0;
        }
        if (n == 0) {
            return 1;
        }
        s->rlen += (size_t)n;
        /* nothing left in the BIO nor in the SSL object: the next read()
         * could only raise SSLWantReadError */
        n = pending_of(t->incoming, ss->s_pending, 0);
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            n = pending_of(t->raw, ss->s_pending, 1);
            if (n < 0) {
                return -1;
            }
            if (n == 0) {
                return 0;
            }
        }
    }
}

/* The handshake step of the Python side (SSLIOStream._do_ssl_handshake). */
static void
handshake_step(tc_stream *s)
{
    PyObject *r = PyObject_CallMethodNoArgs((PyObject *)s, s->st->stream->s_tls_handshake);
    if (r == NULL) {
        /* upstream: an exception out of _handle_events is logged by the
         * IOLoop and the stream is closed */
        PyObject *exc = tc_uvio_fetch_exception();
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            tc_stream_report(s, "Uncaught exception, closing connection.");
            tc_stream_close(s, exc);
            Py_DECREF(exc);
        }
        return;
    }
    Py_DECREF(r);
}

/* Encrypt `len` plaintext bytes and send the records.  0, or -1 on memory
 * errors (exception set); SSL and socket errors close the stream. */
static int
encrypt(tc_stream *s, const char *data, size_t len)
{
    tc_stream_tls *t = s->tls;
    while (len > 0 && !s->closed) {
        size_t piece = len < TLS_WRITE_PIECE ? len : TLS_WRITE_PIECE;
        PyObject *view, *r, *args[2];
        view = PyMemoryView_FromMemory((char *)data, (Py_ssize_t)piece, PyBUF_READ);
        if (view == NULL) {
            return -1;
        }
        args[0] = t->raw;
        args[1] = view;
        r = PyObject_VectorcallMethod(s->st->stream->s_write, args, 2, NULL);
        Py_DECREF(view);
        if (r == NULL) {
            if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
                return -1;
            }
            fail_with_current(s, 1);
            return PyErr_Occurred() ? -1 : 0;
        }
        Py_DECREF(r);
        if (flush_outgoing(s) < 0) {
            return -1;
        }
        data += piece;
        len -= piece;
    }
    return 0;
}

/* ------------------------------------------------- stream.c's entry points */

/* Handshake records that arrive in a poll which began with callbacks
 * ready wait behind those callbacks, as upstream's SSLIOStream handles its
 * socket's events after them: the handshake's outcome (a failure closes
 * the stream) then comes after, e.g., the first step of a handle_stream
 * coroutine, which calls wait_for_handshake.  The records stay in the BIO;
 * the queued _tls_step() goes on from there (tc_stream_tls_read).  1: a
 * step is queued; 0: go on now; -1: exception set. */
static int
queue_step(tc_stream *s)
{
    tc_stream_tls *t = s->tls;
    PyObject *m;
    int rc;
    if (t->step_queued) {
        return 1;
    }
    if (!tc_loop_hold_io(s->loop)) {
        return 0;
    }
    m = PyObject_GetAttr((PyObject *)s, s->st->stream->s_tls_step);
    if (m == NULL) {
        return -1;
    }
    rc = tc_loop_call_io(s->loop, m, NULL, 0);
    Py_DECREF(m);
    if (rc < 0) {
        return -1;
    }
    t->step_queued = 1;
    return 1;
}

int
tc_stream_tls_input(tc_stream *s, const char *data, size_t len)
{
    tc_stream_tls *t = s->tls;
    PyObject *bytes, *r;
    int rc;
    if (data != NULL) {
        /* a copy first: `data` may be the loop's shared read buffer, which
         * must not be in use once Python code can run (bytes are not
         * GC-tracked) */
        bytes = PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
        if (bytes == NULL) {
            return -1;
        }
        r = PyObject_CallMethodOneArg(t->incoming, s->st->stream->s_write, bytes);
        Py_DECREF(bytes);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
    }
    if (s->tls_hs) {
        rc = data != NULL ? queue_step(s) : 0;
        if (rc != 0) {
            return rc < 0 ? -1 : 0;
        }
        handshake_step(s);
        if (s->closed || s->tls_hs) {
            return PyErr_Occurred() ? -1 : 0;
        }
        /* established: application data may have come with the
         * handshake's last flight */
    }
    rc = decrypt(s);
    if (rc < 0) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
            return -1;
        }
        fail_with_current(s, 0);
        return PyErr_Occurred() ? -1 : 0;
    }
    /* post-handshake messages may need an answer (key update) */
    if (!s->closed && flush_outgoing(s) < 0) {
        return -1;
    }
    if (rc == 1 && !s->closed) {
        s->tls_eof = 1; /* close_notify: the caller closes once the
                         * plaintext before it has been offered */
    }
    return 0;
}

void
tc_stream_tls_end(tc_stream *s)
{
    PyObject *r;
    if (s->tls_hs) {
        /* the handshake sees the EOF as an SSLSocket's would (SSLEOFError) */
        r = PyObject_CallMethodNoArgs(s->tls->incoming, s->st->stream->s_write_eof);
        if (r == NULL) {
            tc_stream_report(s, "ending TLS input failed");
        }
        Py_XDECREF(r);
        handshake_step(s);
    }
    if (!s->closed) {
        tc_stream_close(s, NULL);
    }
}

int
tc_stream_tls_write(tc_stream *s, const char *data, size_t len)
{
    tc_stream_tls *t = s->tls;
    if (len == 0) {
        return 0;
    }
    if (s->tls_hs) {
        if (t->pend_cap - t->pend_len < len) {
            size_t ncap = t->pend_len + len;
            char *nb;
            if (ncap < 2 * t->pend_cap) {
                ncap = 2 * t->pend_cap;
            }
            nb = PyMem_Realloc(t->pend, ncap);
            if (nb == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            t->pend = nb;
            t->pend_cap = ncap;
        }
        memcpy(t->pend + t->pend_len, data, len);
        t->pend_len += len;
        return 0;
    }
    return encrypt(s, data, len);
}

size_t
tc_stream_tls_pending(tc_stream *s)
{
    return s->tls != NULL ? s->tls->pend_len : 0;
}

void
tc_stream_tls_signal_closed(tc_stream *s)
{
    PyObject *r;
    s->tls_hs = 0;
    if (s->tls != NULL) {
        s->tls->pend_len = 0;
    }
    r = PyObject_CallMethodNoArgs((PyObject *)s, s->st->stream->s_tls_signal_closed);
    if (r == NULL) {
        tc_stream_report(s, "closing the TLS stream failed");
    }
    Py_XDECREF(r);
}

int
tc_stream_tls_traverse(tc_stream *s, visitproc visit, void *arg)
{
    if (s->tls != NULL) {
        Py_VISIT(s->tls->raw);
        Py_VISIT(s->tls->incoming);
        Py_VISIT(s->tls->outgoing);
        Py_VISIT(s->tls->want_read);
    }
    return 0;
}

void
tc_stream_tls_clear(tc_stream *s)
{
    if (s->tls != NULL) {
        Py_CLEAR(s->tls->raw);
        Py_CLEAR(s->tls->incoming);
        Py_CLEAR(s->tls->outgoing);
        Py_CLEAR(s->tls->want_read);
    }
}

void
tc_stream_tls_free(tc_stream *s)
{
    if (s->tls != NULL) {
        tc_stream_tls_clear(s);
        PyMem_Free(s->tls->pend);
        PyMem_Free(s->tls);
        s->tls = NULL;
    }
}

/* ------------------------------------------------- the Python side's calls */

/* _tls_attach(raw, incoming, outgoing, SSLWantReadError): the stream
 * speaks TLS from here on, handshake first. */
PyObject *
tc_stream_py_tls_attach(tc_stream *s, PyObject *const *args, Py_ssize_t nargs)
{
    tc_stream_tls *t;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "_tls_attach(raw, incoming, outgoing, SSLWantReadError)");
        return NULL;
    }
    if (s->loop == NULL || s->closed) {
        PyErr_SetString(PyExc_ValueError, "stream is closed");
        return NULL;
    }
    if (s->tls != NULL || s->rlen > 0 || s->wtotal > 0 || s->cork || s->ccb != NULL) {
        PyErr_SetString(PyExc_ValueError, "IOStream is not idle; cannot convert to SSL");
        return NULL;
    }
    if (!PyType_Check(args[3]) ||
        !PyType_IsSubtype((PyTypeObject *)args[3], (PyTypeObject *)PyExc_Exception)) {
        PyErr_SetString(PyExc_TypeError, "SSLWantReadError must be an exception class");
        return NULL;
    }
    t = PyMem_Calloc(1, sizeof(*t));
    if (t == NULL) {
        return PyErr_NoMemory();
    }
    t->raw = Py_NewRef(args[0]);
    t->incoming = Py_NewRef(args[1]);
    t->outgoing = Py_NewRef(args[2]);
    t->want_read = Py_NewRef(args[3]);
    s->tls = t;
    s->tls_hs = 1;
    tc_stream_update_reading(s);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _tls_step(): the handshake step queue_step() put behind the callbacks
 * that were ready, on the records the BIO holds. */
PyObject *
tc_stream_py_tls_step(tc_stream *s, PyObject *Py_UNUSED(ignored))
{
    if (s->tls == NULL || !s->tls->step_queued) {
        Py_RETURN_NONE;
    }
    s->tls->step_queued = 0;
    if (s->closed) {
        Py_RETURN_NONE;
    }
    Py_INCREF(s);
    tc_stream_tls_read(s, NULL, 0);
    tc_stream_update_reading(s);
    Py_DECREF(s);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _tls_flush(): send what the outgoing BIO holds (handshake records). */
PyObject *
tc_stream_py_tls_flush(tc_stream *s, PyObject *Py_UNUSED(ignored))
{
    if (s->tls == NULL || s->closed) {
        Py_RETURN_NONE;
    }
    if (flush_outgoing(s) < 0) {
        return NULL;
    }
    tc_stream_update_reading(s);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _tls_established(): the handshake completed.  Writes that waited go
 * out, their futures then resolve as any write's do. */
PyObject *
tc_stream_py_tls_established(tc_stream *s, PyObject *Py_UNUSED(ignored))
{
    tc_stream_tls *t = s->tls;
    size_t i;
    if (t == NULL || !s->tls_hs) {
        Py_RETURN_NONE;
    }
    s->tls_hs = 0;
    Py_INCREF(s);
    if (t->pend_len > 0 && !s->closed) {
        char *p = t->pend;
        size_t n = t->pend_len;
        t->pend = NULL;
        t->pend_len = t->pend_cap = 0;
        if (encrypt(s, p, n) < 0) {
            PyMem_Free(p);
            Py_DECREF(s);
            return NULL;
        }
        PyMem_Free(p);
    }
    /* the futures of those writes complete with the records they became */
    for (i = 0; i < s->wf_len; i++) {
        if (s->wf[s->wf_head + i].index == ULLONG_MAX) {
            s->wf[s->wf_head + i].index = s->wtotal;
        }
    }
    if (!s->closed) {
        tc_stream_resolve_write_futures(s);
        tc_stream_update_reading(s);
    }
    Py_DECREF(s);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

int
tc_stream_tls_exec(struct tc_state *st)
{
    tc_stream_state *ss = st->stream;
    if ((ss->s_read = PyUnicode_InternFromString("read")) == NULL ||
        (ss->s_write = PyUnicode_InternFromString("write")) == NULL ||
        (ss->s_pending = PyUnicode_InternFromString("pending")) == NULL ||
        (ss->s_write_eof = PyUnicode_InternFromString("write_eof")) == NULL ||
        (ss->s_tls_handshake = PyUnicode_InternFromString("_do_ssl_handshake")) == NULL ||
        (ss->s_tls_signal_closed = PyUnicode_InternFromString("_tls_signal_closed")) == NULL ||
        (ss->s_tls_step = PyUnicode_InternFromString("_tls_step")) == NULL) {
        return -1;
    }
    return 0;
}
