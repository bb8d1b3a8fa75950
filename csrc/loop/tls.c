/* The per-message work of the stdlib's TLS protocol, in C.
 *
 * TLS on the C loop is asyncio.sslproto.SSLProtocol (tornado_c/_loop_ssl.py):
 * the stdlib's state machine.  On a 1 KiB TLS echo two thirds of the
 * instructions per message were the interpreter running that machine's
 * steady state (a dozen small methods per message: get_buffer,
 * buffer_updated, _do_read, _do_write, _process_outgoing, the flow-control
 * checks, the application transport's write...); OpenSSL was the rest.  So
 * two C classes go in front of the stdlib's in the MRO:
 *
 *   TLSProtocolBase      (class _SSLProtocol(TLSProtocolBase, SSLProtocol))
 *     keeps the protocol's hot attributes (_state, _incoming, _outgoing,
 *     _sslobj, _transport, _app_protocol, the flow-control flags and
 *     marks...) in C fields exposed as member descriptors of the same names,
 *     so the stdlib's Python methods read and write them as before and the C
 *     code reads them without dictionary lookups; and takes over
 *       get_buffer(n)          the receive buffer (the stdlib's method when
 *                              it must grow);
 *       buffer_updated(n)      received bytes: in the WRAPPED state, with
 *                              the application reading and not a
 *                              BufferedProtocol, decrypt, data_received(),
 *                              send what the SSL object produced, the
 *                              flow-control checks -- in C;
 *       _write_appdata(datas)  application data: in the WRAPPED state with
 *                              nothing queued, encrypt and send in C;
 *     and every other case (handshake, shutdown, pauses, a queue, a
 *     transition of flow control, close_notify, errors) goes to the stdlib's
 *     own methods, which share the same state.
 *
 *   TLSAppTransportBase  (in front of the stdlib's _SSLProtocolTransport)
 *     write(data): the stdlib's checks, then the protocol's _write_appdata
 *     without a Python frame in between.
 *
 * Only when the SSL object is exactly ssl.SSLObject is the _ssl object under
 * it called directly (a subclass may override read/write).  The decrypting
 * loop stops as soon as neither the incoming BIO nor the SSL object holds
 * bytes: with the ssl module OpenSSL takes one record per read from a memory
 * BIO (read-ahead cannot be turned on from Python), so the read() the
 * stdlib's loop makes next could only raise SSLWantReadError -- whose
 * building was a seventh of a small message's instructions.  The objects
 * the code needs from asyncio.sslproto and ssl are handed over by _loop_ssl
 * through _core._tls_init(); until then every call takes the stdlib's path.
 */
#include "common.h"
#include "state.h"
#include "loop/loop.h"
#include "loop/tls.h"

#include <structmember.h>
#include <stddef.h>
#include <string.h>

typedef struct tc_tls {
    PyObject_HEAD
    /* SSLProtocol attributes (member descriptors of the same names); all
     * strong or NULL while unset */
    PyObject *state;                /* _state */
    PyObject *app_reading_paused;   /* _app_reading_paused */
    PyObject *app_is_buffer;        /* _app_protocol_is_buffer */
    PyObject *sslobj;               /* _sslobj (ssl.SSLObject) */
    PyObject *ssl_buffer;           /* _ssl_buffer (bytearray) */
    PyObject *ssl_buffer_view;      /* _ssl_buffer_view (memoryview) */
    PyObject *incoming;             /* _incoming (ssl.MemoryBIO) */
    PyObject *outgoing;             /* _outgoing (ssl.MemoryBIO) */
    PyObject *app_protocol;         /* _app_protocol */
    PyObject *write_backlog;        /* _write_backlog (deque) */
    PyObject *write_buffer_size;    /* _write_buffer_size (int) */
    PyObject *ssl_writing_paused;   /* _ssl_writing_paused */
    PyObject *transport;            /* _transport (the C stream transport) */
    PyObject *out_high, *out_low;   /* _outgoing_high_water, _outgoing_low_water */
    PyObject *app_writing_paused;   /* _app_writing_paused */
    PyObject *in_high, *in_low;     /* _incoming_high_water, _incoming_low_water */
    PyObject *ssl_reading_paused;   /* _ssl_reading_paused */
    /* ours */
    PyObject *raw_from;             /* strong: the SSLObject `raw` belongs to */
    PyObject *raw;                  /* strong: its _ssl._SSLObject */
} tc_tls;

/* ------------------------------------------------------------- helpers */

static tc_loop_tls_state *
tls_state(PyTypeObject *defining_class)
{
    tc_state *st = (tc_state *)PyType_GetModuleState(defining_class);
    return st ? st->loop_tls : NULL;
}

/* A flag attribute: 1 True, 0 False, -1 anything else (unset, not a bool:
 * then the stdlib's code decides). */
static inline int
flag(PyObject *o)
{
    return o == Py_True ? 1 : o == Py_False ? 0 : -1;
}

/* An int attribute: 0 with *out set, -1 if it is not a plain int (no
 * exception left set). */
static inline int
ival(PyObject *o, Py_ssize_t *out)
{
    if (o == NULL || !PyLong_CheckExact(o)) {
        return -1;
    }
    *out = PyLong_AsSsize_t(o);
    if (*out == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return 0;
}

/* bio.pending: 0 with *out set, or -1 with an exception. */
static int
bio_pending(tc_loop_tls_state *ts, PyObject *bio, Py_ssize_t *out)
{
    PyObject *v = PyObject_GetAttr(bio, ts->s_pending);
    if (v == NULL) {
        return -1;
    }
    *out = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* self.<name>() */
static int
call_self(PyObject *self, PyObject *name)
{
    PyObject *r = PyObject_CallMethodNoArgs(self, name);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* o.<name>(arg); returns the result (new reference) or NULL. */
static inline PyObject *
call1(PyObject *o, PyObject *name, PyObject *arg)
{
    PyObject *args[2] = {o, arg};
    return PyObject_VectorcallMethod(name, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* The _ssl object under self._sslobj when that is exactly ssl.SSLObject
 * (borrowed, cached), else NULL (no exception) or NULL with an exception. */
static PyObject *
raw_sslobj(tc_loop_tls_state *ts, tc_tls *self)
{
    PyObject *raw;
    if (self->sslobj == NULL || (PyObject *)Py_TYPE(self->sslobj) != ts->sslobject_type) {
        return NULL;
    }
    if (self->raw_from == self->sslobj) {
        return self->raw;
    }
    raw = PyObject_GetAttr(self->sslobj, ts->s_sslobj);
    if (raw == NULL) {
        return NULL;
    }
    Py_XSETREF(self->raw_from, Py_NewRef(self->sslobj));
    Py_XSETREF(self->raw, raw);
    return raw;
}

/* The stdlib's `except Exception as ex: self._fatal_error(ex, 'Fatal error
 * on SSL protocol')` of _do_read and _write_appdata.  Called with an
 * exception set.  Returns None, or NULL when the exception is not an
 * Exception (KeyboardInterrupt, CancelledError...) or _fatal_error failed. */
static PyObject *
fatal(tc_loop_tls_state *ts, PyObject *self)
{
    PyObject *exc, *args[3], *r;
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return NULL;
    }
    exc = tc_uvio_fetch_exception();
    if (exc == NULL) {
        Py_RETURN_NONE;
    }
    args[0] = self;
    args[1] = exc;
    args[2] = ts->fatal_message;
    r = PyObject_VectorcallMethod(ts->s_fatal_error, args,
                                  3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(exc);
    return r;
}

/* The stdlib's _control_app_writing(), called only when it would pause or
 * resume the application (or when an attribute is not what it should be).
 * 0 or -1. */
static int
control_app_writing(tc_loop_tls_state *ts, tc_tls *self)
{
    Py_ssize_t pending, backlog, high, low;
    int paused = flag(self->app_writing_paused);
    if (paused < 0 || self->outgoing == NULL || ival(self->write_buffer_size, &backlog) < 0 ||
        ival(self->out_high, &high) < 0 || ival(self->out_low, &low) < 0) {
        return call_self((PyObject *)self, ts->s_control_app_writing);
    }
    if (bio_pending(ts, self->outgoing, &pending) < 0) {
        return -1;
    }
    if ((pending + backlog >= high && !paused) || (pending + backlog <= low && paused)) {
        return call_self((PyObject *)self, ts->s_control_app_writing);
    }
    return 0;
}

/* The stdlib's _process_outgoing(): send what the SSL object produced
 * unless the transport below asked to pause, then _control_app_writing().
 * 0 or -1. */
static int
process_outgoing(tc_loop_tls_state *ts, tc_tls *self)
{
    int paused = flag(self->ssl_writing_paused);
    PyObject *data, *transport, *r;
    if (paused < 0 || self->outgoing == NULL || self->transport == NULL) {
        return call_self((PyObject *)self, ts->s_process_outgoing);
    }
    if (!paused) {
        data = PyObject_CallMethodNoArgs(self->outgoing, ts->s_read);
        if (data == NULL) {
            return -1;
        }
        if (!PyBytes_Check(data) || PyBytes_GET_SIZE(data) > 0) {
            transport = Py_NewRef(self->transport); /* the call may replace it */
            r = call1(transport, ts->s_write, data);
            Py_DECREF(transport);
            if (r == NULL) {
                Py_DECREF(data);
                return -1;
            }
            Py_DECREF(r);
        }
        Py_DECREF(data);
    }
    return control_app_writing(ts, self);
}

/* The stdlib's _control_ssl_reading(), called only when it would pause or
 * resume the transport below.  0 or -1. */
static int
control_ssl_reading(tc_loop_tls_state *ts, tc_tls *self)
{
    Py_ssize_t size, high, low;
    int paused = flag(self->ssl_reading_paused);
    if (paused < 0 || self->incoming == NULL || ival(self->in_high, &high) < 0 ||
        ival(self->in_low, &low) < 0) {
        return call_self((PyObject *)self, ts->s_control_ssl_reading);
    }
    if (bio_pending(ts, self->incoming, &size) < 0) {
        return -1;
    }
    if ((size >= high && !paused) || (size <= low && paused)) {
        return call_self((PyObject *)self, ts->s_control_ssl_reading);
    }
    return 0;
}

static PyObject *
fallback(PyObject *func, PyObject *self, PyObject *arg)
{
    PyObject *args[2] = {self, arg};
    return PyObject_Vectorcall(func, args, 2, NULL);
}

static int
check_ready(Py_ssize_t nargs, PyObject *kwnames, PyObject *func, const char *usage)
{
    if (nargs != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    if (func == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tornado_c TLS path used before _tls_init()");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ receiving */

static PyObject *
tls_get_buffer(tc_tls *self, PyTypeObject *cls, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    tc_loop_tls_state *ts = tls_state(cls);
    PyObject *max_o;
    Py_ssize_t want, max;
    if (ts == NULL || check_ready(nargs, kwnames, ts->py_get_buffer, "get_buffer(n)") < 0) {
        return NULL;
    }
    want = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (want == -1 && PyErr_Occurred()) {
        return NULL;
    }
    max_o = PyObject_GetAttr((PyObject *)self, ts->s_max_size);
    if (max_o == NULL) {
        return NULL;
    }
    max = PyNumber_AsSsize_t(max_o, PyExc_OverflowError);
    Py_DECREF(max_o);
    if (max == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (want <= 0 || want > max) {
        want = max;
    }
    if (self->ssl_buffer == NULL || !PyByteArray_CheckExact(self->ssl_buffer) ||
        PyByteArray_GET_SIZE(self->ssl_buffer) < want || self->ssl_buffer_view == NULL) {
        return fallback(ts->py_get_buffer, (PyObject *)self, args[0]); /* grows it */
    }
    return Py_NewRef(self->ssl_buffer_view);
}

/* Decrypt what the incoming BIO holds and hand it to the application, then
 * send what that produced (the stdlib's _do_read, WRAPPED, copying). */
static PyObject *
read_wrapped(tc_loop_tls_state *ts, tc_tls *self, PyObject *raw)
{
    PyObject *max = NULL, *parts = NULL, *data = NULL, *r;
    Py_ssize_t pending;
    int closed = 0;
    Py_INCREF(raw); /* the application may replace _sslobj meanwhile */
    max = PyObject_GetAttr((PyObject *)self, ts->s_max_size);
    if (max == NULL) {
        goto error;
    }
    for (;;) {
        PyObject *part = call1(raw, ts->s_read, max);
        if (part == NULL) {
            if (PyErr_ExceptionMatches(ts->again_errors)) {
                PyErr_Clear();
                break;
            }
            goto error;
        }
        if (!PyBytes_Check(part)) {
            PyErr_Format(PyExc_TypeError, "SSLObject.read() returned %.200s",
                         Py_TYPE(part)->tp_name);
            Py_DECREF(part);
            goto error;
        }
        if (PyBytes_GET_SIZE(part) == 0) {
            Py_DECREF(part);
            closed = 1; /* close_notify */
            break;
        }
        if (data == NULL && parts == NULL) {
            data = part; /* the common case: one record */
        }
        else {
            if (parts == NULL) {
                parts = PyList_New(1);
                if (parts == NULL) {
                    Py_DECREF(part);
                    goto error;
                }
                PyList_SET_ITEM(parts, 0, data); /* the reference moves */
                data = NULL;
            }
            if (PyList_Append(parts, part) < 0) {
                Py_DECREF(part);
                goto error;
            }
            Py_DECREF(part);
        }
        /* nothing left before or inside the SSL object: the next read()
         * could only raise SSLWantReadError (see the top of the file) */
        if (self->incoming == NULL || bio_pending(ts, self->incoming, &pending) < 0) {
            if (PyErr_Occurred()) {
                goto error;
            }
            continue;
        }
        if (pending == 0) {
            PyObject *p = PyObject_CallMethodNoArgs(raw, ts->s_pending);
            if (p == NULL) {
                goto error;
            }
            pending = PyLong_AsSsize_t(p);
            Py_DECREF(p);
            if (pending == -1 && PyErr_Occurred()) {
                goto error;
            }
            if (pending == 0) {
                break;
            }
        }
    }
    if (parts != NULL) {
        /* b"".join(parts) */
        Py_ssize_t total = 0, k, off = 0;
        for (k = 0; k < PyList_GET_SIZE(parts); k++) {
            total += PyBytes_GET_SIZE(PyList_GET_ITEM(parts, k));
        }
        data = PyBytes_FromStringAndSize(NULL, total);
        if (data == NULL) {
            goto error;
        }
        for (k = 0; k < PyList_GET_SIZE(parts); k++) {
            PyObject *p = PyList_GET_ITEM(parts, k);
            memcpy(PyBytes_AS_STRING(data) + off, PyBytes_AS_STRING(p),
                   (size_t)PyBytes_GET_SIZE(p));
            off += PyBytes_GET_SIZE(p);
        }
    }
    if (data != NULL) {
        PyObject *app = self->app_protocol;
        if (app == NULL) {
            PyErr_SetString(PyExc_AttributeError, "_app_protocol");
            goto error;
        }
        Py_INCREF(app);
        r = call1(app, ts->s_data_received, data);
        Py_DECREF(app);
        if (r == NULL) {
            goto error;
        }
        Py_DECREF(r);
    }
    if (closed) {
        if (call_self((PyObject *)self, ts->s_call_eof_received) < 0 ||
            call_self((PyObject *)self, ts->s_start_shutdown) < 0) {
            goto error;
        }
    }
    {
        int backlog = self->write_backlog ? PyObject_IsTrue(self->write_backlog) : -1;
        if (backlog < 0) {
            if (PyErr_Occurred()) {
                goto error;
            }
            backlog = 1; /* unset: the stdlib's _do_write raises what it should */
        }
        if (backlog ? call_self((PyObject *)self, ts->s_do_write) < 0
                    : process_outgoing(ts, self) < 0) {
            goto error;
        }
    }
    if (control_ssl_reading(ts, self) < 0) {
        goto error;
    }
    Py_XDECREF(data);
    Py_XDECREF(parts);
    Py_DECREF(max);
    Py_DECREF(raw);
    Py_RETURN_NONE;
error:
    Py_XDECREF(data);
    Py_XDECREF(parts);
    Py_XDECREF(max);
    Py_DECREF(raw);
    return fatal(ts, (PyObject *)self);
}

static PyObject *
tls_buffer_updated(tc_tls *self, PyTypeObject *cls, PyObject *const *args, Py_ssize_t nargs,
                   PyObject *kwnames)
{
    tc_loop_tls_state *ts = tls_state(cls);
    PyObject *raw, *mv, *view, *incoming, *r;
    Py_buffer buf;
    Py_ssize_t nbytes;
    if (ts == NULL || check_ready(nargs, kwnames, ts->py_buffer_updated,
                                  "buffer_updated(nbytes)") < 0) {
        return NULL;
    }
    /* the fast path: WRAPPED, the application reading, not buffered */
    if (self->state != ts->st_wrapped || flag(self->app_reading_paused) != 0 ||
        flag(self->app_is_buffer) != 0 || self->incoming == NULL ||
        self->ssl_buffer_view == NULL) {
        goto slow;
    }
    raw = raw_sslobj(ts, self);
    if (raw == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        goto slow;
    }
    nbytes = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (nbytes == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* self._incoming.write(self._ssl_buffer_view[:nbytes]) */
    view = Py_NewRef(self->ssl_buffer_view);
    if (PyObject_GetBuffer(view, &buf, PyBUF_SIMPLE) < 0) {
        Py_DECREF(view);
        return NULL;
    }
    if (nbytes < 0 || nbytes > buf.len) {
        PyBuffer_Release(&buf);
        Py_DECREF(view);
        goto slow; /* the stdlib's slicing decides */
    }
    mv = PyMemoryView_FromMemory(buf.buf, nbytes, PyBUF_READ);
    if (mv == NULL) {
        PyBuffer_Release(&buf);
        Py_DECREF(view);
        return NULL;
    }
    incoming = Py_NewRef(self->incoming);
    r = call1(incoming, ts->s_write, mv);
    Py_DECREF(incoming);
    Py_DECREF(mv); /* the BIO copied the bytes: the temporary view goes */
    PyBuffer_Release(&buf);
    Py_DECREF(view);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    return read_wrapped(ts, self, raw);
slow:
    return fallback(ts->py_buffer_updated, (PyObject *)self, args[0]);
}

/* -------------------------------------------------------------- sending */

/* Queue what the SSL object did not take, as the stdlib's _write_appdata
 * leaves it: items[i][skip:] (items[i] itself when skip is 0) and every item
 * after it go to _write_backlog, and _write_buffer_size grows by their
 * lengths.  0 or -1. */
static int
queue_rest(tc_loop_tls_state *ts, tc_tls *self, PyObject *const *items, Py_ssize_t n,
           Py_ssize_t i, Py_ssize_t skip)
{
    Py_ssize_t size = 0, old, j;
    PyObject *backlog, *bsize;
    int rc = -1;
    if (self->write_backlog == NULL || ival(self->write_buffer_size, &old) < 0) {
        PyErr_SetString(PyExc_RuntimeError, "SSLProtocol write backlog is not set up");
        return -1;
    }
    backlog = Py_NewRef(self->write_backlog);
    for (j = i; j < n; j++) {
        PyObject *item, *r;
        Py_ssize_t len = PyObject_Size(items[j]);
        if (len < 0) {
            goto done;
        }
        if (j == i && skip > 0) {
            item = PySequence_GetSlice(items[j], skip, len);
            if (item == NULL) {
                goto done;
            }
            len -= skip;
        }
        else {
            item = Py_NewRef(items[j]);
        }
        r = call1(backlog, ts->s_append, item);
        Py_DECREF(item);
        if (r == NULL) {
            goto done;
        }
        Py_DECREF(r);
        size += len;
    }
    bsize = PyLong_FromSsize_t(old + size);
    if (bsize == NULL) {
        goto done;
    }
    Py_XSETREF(self->write_buffer_size, bsize);
    rc = 0;
done:
    Py_DECREF(backlog);
    return rc;
}

/* _write_appdata(items): the fast path when WRAPPED with nothing queued;
 * else the stdlib's method with `list_of_data` (built from the items when
 * NULL). */
static PyObject *
write_items(tc_loop_tls_state *ts, tc_tls *self, PyObject *const *items, Py_ssize_t n,
            PyObject *list_of_data)
{
    PyObject *raw, *r;
    Py_ssize_t i;
    int backlog;
    if (self->state != ts->st_wrapped || self->write_backlog == NULL) {
        goto slow;
    }
    backlog = PyObject_IsTrue(self->write_backlog);
    if (backlog != 0) {
        if (backlog < 0) {
            return NULL;
        }
        goto slow;
    }
    raw = raw_sslobj(ts, self);
    if (raw == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        goto slow;
    }
    Py_INCREF(raw);
    for (i = 0; i < n; i++) {
        PyObject *w = call1(raw, ts->s_write, items[i]);
        Py_ssize_t count, len;
        if (w == NULL) {
            if (PyErr_ExceptionMatches(ts->again_errors)) {
                /* nothing taken (a renegotiation wants to read first): the
                 * rest waits in the backlog */
                PyErr_Clear();
                if (queue_rest(ts, self, items, n, i, 0) < 0) {
                    goto fail;
                }
                break;
            }
            /* as the stdlib: this item and the rest stay queued, then
             * _fatal_error (should the queueing fail, that is reported) */
            {
                PyObject *et, *ev, *etb;
                PyErr_Fetch(&et, &ev, &etb);
                if (queue_rest(ts, self, items, n, i, 0) < 0) {
                    Py_XDECREF(et);
                    Py_XDECREF(ev);
                    Py_XDECREF(etb);
                }
                else {
                    PyErr_Restore(et, ev, etb);
                }
            }
            goto fail;
        }
        count = PyNumber_AsSsize_t(w, PyExc_OverflowError);
        Py_DECREF(w);
        if (count == -1 && PyErr_Occurred()) {
            goto fail;
        }
        len = PyObject_Size(items[i]);
        if (len < 0) {
            goto fail;
        }
        if (count < len) {
            if (queue_rest(ts, self, items, n, i, count) < 0) {
                goto fail;
            }
            break;
        }
    }
    Py_DECREF(raw);
    if (process_outgoing(ts, self) < 0) {
        return fatal(ts, (PyObject *)self);
    }
    Py_RETURN_NONE;
fail:
    Py_DECREF(raw);
    return fatal(ts, (PyObject *)self);
slow:
    if (list_of_data != NULL) {
        return fallback(ts->py_write_appdata, (PyObject *)self, list_of_data);
    }
    list_of_data = PyTuple_New(n);
    if (list_of_data == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        PyTuple_SET_ITEM(list_of_data, i, Py_NewRef(items[i]));
    }
    r = fallback(ts->py_write_appdata, (PyObject *)self, list_of_data);
    Py_DECREF(list_of_data);
    return r;
}

static PyObject *
tls_write_appdata(tc_tls *self, PyTypeObject *cls, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    tc_loop_tls_state *ts = tls_state(cls);
    PyObject *seq, *r;
    if (ts == NULL || check_ready(nargs, kwnames, ts->py_write_appdata,
                                  "_write_appdata(list_of_data)") < 0) {
        return NULL;
    }
    if (self->state != ts->st_wrapped) {
        return fallback(ts->py_write_appdata, (PyObject *)self, args[0]);
    }
    seq = PySequence_Fast(args[0], "list_of_data must be iterable");
    if (seq == NULL) {
        return NULL;
    }
    r = write_items(ts, self, PySequence_Fast_ITEMS(seq), PySequence_Fast_GET_SIZE(seq),
                    args[0]);
    Py_DECREF(seq);
    return r;
}

/* TLSAppTransportBase.write(data): _SSLProtocolTransport.write. */
static PyObject *
app_write(PyObject *self, PyTypeObject *cls, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    tc_loop_tls_state *ts = tls_state(cls);
    PyObject *data, *proto, *r;
    Py_ssize_t len;
    if (ts == NULL || check_ready(nargs, kwnames, ts->py_write_appdata, "write(data)") < 0) {
        return NULL;
    }
    data = args[0];
    if (!PyBytes_Check(data) && !PyByteArray_Check(data) && !PyMemoryView_Check(data)) {
        const char *name = Py_TYPE(data)->tp_name, *dot = strrchr(name, '.');
        PyErr_Format(PyExc_TypeError, "data: expecting a bytes-like instance, got %s",
                     dot ? dot + 1 : name); /* type(data).__name__ */
        return NULL;
    }
    len = PyObject_Length(data);
    if (len < 0) {
        return NULL;
    }
    if (len == 0) {
        Py_RETURN_NONE;
    }
    proto = PyObject_GetAttr(self, ts->s_ssl_protocol);
    if (proto == NULL) {
        return NULL;
    }
    if (PyObject_TypeCheck(proto, ts->Base_type)) {
        tc_tls *p = (tc_tls *)proto;
        if (p->state == ts->st_wrapped) {
            r = write_items(ts, p, &data, 1, NULL);
            Py_DECREF(proto);
            return r;
        }
    }
    {
        /* proto._write_appdata((data,)) */
        PyObject *tup = PyTuple_Pack(1, data);
        r = tup ? call1(proto, ts->s_write_appdata, tup) : NULL;
        Py_XDECREF(tup);
    }
    Py_DECREF(proto);
    return r;
}

/* _tls_init(SSLProtocol, SSLProtocolState, SSLObject, again_errors) */
static PyObject *
tls_init(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_loop_tls_state *ts = tc_get_state(module)->loop_tls;
    PyObject *get_buffer = NULL, *buffer_updated = NULL, *write_appdata = NULL, *wrapped = NULL;
    if (nargs != 4 || !PyType_Check(args[0]) || !PyType_Check(args[2]) ||
        !PyTuple_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "_tls_init(SSLProtocol, SSLProtocolState, SSLObject, again_errors)");
        return NULL;
    }
    if ((get_buffer = PyObject_GetAttrString(args[0], "get_buffer")) == NULL ||
        (buffer_updated = PyObject_GetAttrString(args[0], "buffer_updated")) == NULL ||
        (write_appdata = PyObject_GetAttrString(args[0], "_write_appdata")) == NULL ||
        (wrapped = PyObject_GetAttrString(args[1], "WRAPPED")) == NULL) {
        Py_XDECREF(get_buffer);
        Py_XDECREF(buffer_updated);
        Py_XDECREF(write_appdata);
        return NULL;
    }
    Py_XSETREF(ts->py_get_buffer, get_buffer);
    Py_XSETREF(ts->py_buffer_updated, buffer_updated);
    Py_XSETREF(ts->py_write_appdata, write_appdata);
    Py_XSETREF(ts->st_wrapped, wrapped);
    Py_XSETREF(ts->sslobject_type, Py_NewRef(args[2]));
    Py_XSETREF(ts->again_errors, Py_NewRef(args[3]));
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ types */

#define TLS_FIELDS(X)                                         \
    X(state, "_state")                                        \
    X(app_reading_paused, "_app_reading_paused")              \
    X(app_is_buffer, "_app_protocol_is_buffer")               \
    X(sslobj, "_sslobj")                                      \
    X(ssl_buffer, "_ssl_buffer")                              \
    X(ssl_buffer_view, "_ssl_buffer_view")                    \
    X(incoming, "_incoming")                                  \
    X(outgoing, "_outgoing")                                  \
    X(app_protocol, "_app_protocol")                          \
    X(write_backlog, "_write_backlog")                        \
    X(write_buffer_size, "_write_buffer_size")                \
    X(ssl_writing_paused, "_ssl_writing_paused")              \
    X(transport, "_transport")                                \
    X(out_high, "_outgoing_high_water")                       \
    X(out_low, "_outgoing_low_water")                         \
    X(app_writing_paused, "_app_writing_paused")              \
    X(in_high, "_incoming_high_water")                        \
    X(in_low, "_incoming_low_water")                          \
    X(ssl_reading_paused, "_ssl_reading_paused")

static int
tls_traverse(tc_tls *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
#define VISIT_FIELD(f, name) Py_VISIT(self->f);
    TLS_FIELDS(VISIT_FIELD)
#undef VISIT_FIELD
    Py_VISIT(self->raw_from);
    Py_VISIT(self->raw);
    return 0;
}

static int
tls_clear(tc_tls *self)
{
#define CLEAR_FIELD(f, name) Py_CLEAR(self->f);
    TLS_FIELDS(CLEAR_FIELD)
#undef CLEAR_FIELD
    Py_CLEAR(self->raw_from);
    Py_CLEAR(self->raw);
    return 0;
}

static void
tls_dealloc(tc_tls *self)
{
    /* Reached from the Python subclass's subtype_dealloc (which left the
     * type's reference to us, the heap base): untrack, clear, free. */
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    tls_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMemberDef tls_members[] = {
#define MEMBER(f, name) {name, T_OBJECT_EX, offsetof(tc_tls, f), 0, NULL},
    TLS_FIELDS(MEMBER)
#undef MEMBER
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef tls_methods[] = {
    {"get_buffer", (PyCFunction)(void (*)(void))tls_get_buffer,
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS, NULL},
    {"buffer_updated", (PyCFunction)(void (*)(void))tls_buffer_updated,
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS, NULL},
    {"_write_appdata", (PyCFunction)(void (*)(void))tls_write_appdata,
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot tls_slots[] = {
    {Py_tp_doc, "C steady state of asyncio.sslproto.SSLProtocol (a base, see loop/tls.c)."},
    {Py_tp_methods, tls_methods},
    {Py_tp_members, tls_members},
    {Py_tp_traverse, tls_traverse},
    {Py_tp_clear, tls_clear},
    {Py_tp_dealloc, tls_dealloc},
    {0, NULL},
};

static PyType_Spec tls_spec = {
    .name = "tornado_c._core.TLSProtocolBase",
    .basicsize = sizeof(tc_tls),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = tls_slots,
};

static PyMethodDef app_methods[] = {
    {"write", (PyCFunction)(void (*)(void))app_write,
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS,
     "Write some data bytes to the transport (encrypted and sent, or queued)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot app_slots[] = {
    {Py_tp_doc, "C write() of asyncio.sslproto._SSLProtocolTransport (a base, see loop/tls.c)."},
    {Py_tp_methods, app_methods},
    {0, NULL},
};

static PyType_Spec app_spec = {
    .name = "tornado_c._core.TLSAppTransportBase",
    .basicsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = app_slots,
};

static PyMethodDef tls_functions[] = {
    {"_tls_init", (PyCFunction)(void (*)(void))tls_init, METH_FASTCALL,
     "_tls_init(SSLProtocol, SSLProtocolState, SSLObject, again_errors)"},
    {NULL, NULL, 0, NULL},
};

/* The interned names of the state (made in exec, dropped in clear). */
static const tc_intern_spec tls_names[] = {
    TC_INTERN_NAME(tc_loop_tls_state, s_sslobj, "_sslobj"),
    TC_INTERN_NAME(tc_loop_tls_state, s_max_size, "max_size"),
    TC_INTERN_NAME(tc_loop_tls_state, s_read, "read"),
    TC_INTERN_NAME(tc_loop_tls_state, s_write, "write"),
    TC_INTERN_NAME(tc_loop_tls_state, s_pending, "pending"),
    TC_INTERN_NAME(tc_loop_tls_state, s_data_received, "data_received"),
    TC_INTERN_NAME(tc_loop_tls_state, s_call_eof_received, "_call_eof_received"),
    TC_INTERN_NAME(tc_loop_tls_state, s_start_shutdown, "_start_shutdown"),
    TC_INTERN_NAME(tc_loop_tls_state, s_do_write, "_do_write"),
    TC_INTERN_NAME(tc_loop_tls_state, s_process_outgoing, "_process_outgoing"),
    TC_INTERN_NAME(tc_loop_tls_state, s_control_app_writing, "_control_app_writing"),
    TC_INTERN_NAME(tc_loop_tls_state, s_control_ssl_reading, "_control_ssl_reading"),
    TC_INTERN_NAME(tc_loop_tls_state, s_fatal_error, "_fatal_error"),
    TC_INTERN_NAME(tc_loop_tls_state, s_append, "append"),
    TC_INTERN_NAME(tc_loop_tls_state, s_ssl_protocol, "_ssl_protocol"),
    TC_INTERN_NAME(tc_loop_tls_state, s_write_appdata, "_write_appdata"),
    {0, NULL},
};

int
tc_loop_tls_exec(PyObject *module, tc_state *st)
{
    tc_loop_tls_state *ts = st->loop_tls;
    if (tc_add_type(module, &tls_spec, NULL, &ts->Base_type) < 0 ||
        tc_add_type(module, &app_spec, NULL, &ts->AppBase_type) < 0 ||
        PyModule_AddFunctions(module, tls_functions) < 0) {
        return -1;
    }
    if ((ts->fatal_message = PyUnicode_FromString("Fatal error on SSL protocol")) == NULL) {
        return -1;
    }
    if (tc_intern_all(ts, tls_names) < 0) {
        return -1;
    }
    return 0;
}

int
tc_loop_tls_traverse(tc_state *st, visitproc visit, void *arg)
{
    tc_loop_tls_state *ts = st->loop_tls;
    Py_VISIT(ts->Base_type);
    Py_VISIT(ts->AppBase_type);
    Py_VISIT(ts->py_get_buffer);
    Py_VISIT(ts->py_buffer_updated);
    Py_VISIT(ts->py_write_appdata);
    Py_VISIT(ts->st_wrapped);
    Py_VISIT(ts->sslobject_type);
    Py_VISIT(ts->again_errors);
    return 0;
}

void
tc_loop_tls_clear(tc_state *st)
{
    tc_loop_tls_state *ts = st->loop_tls;
    Py_CLEAR(ts->Base_type);
    Py_CLEAR(ts->AppBase_type);
    Py_CLEAR(ts->py_get_buffer);
    Py_CLEAR(ts->py_buffer_updated);
    Py_CLEAR(ts->py_write_appdata);
    Py_CLEAR(ts->st_wrapped);
    Py_CLEAR(ts->sslobject_type);
    Py_CLEAR(ts->again_errors);
    Py_CLEAR(ts->fatal_message);
    tc_clear_all(ts, tls_names);
}
