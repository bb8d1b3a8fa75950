/* loop component: the Python face of the stream transport (transport.c has
 * the design and the I/O): _core.StreamTransport's methods other than
 * write()/writelines() -- opening, connecting, starting, closing, reading
 * control, flow-control limits, extra info --, the module-level callbacks
 * scheduled with call_soon (_transport_connection_made / _lost), the type
 * and the exec of the transports' part of the module state (which also runs
 * server.c's).  The struct and the I/O functions used here are declared in
 * transport.h.
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
    tr = tc_loop_tr_alloc(st->loop_transport, (tc_loop *)loop,
                          family == AF_UNIX ? TR_PIPE : TR_TCP, live);
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
    rc = uv_tcp_connect(&tr->creq, &tr->io.h.tcp, (struct sockaddr *)&ss, tc_loop_tr_connect_cb);
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
    if (tc_loop_tr_schedule(tr, tr->ts->fn_conn_made, NULL) < 0) {
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
    if (tc_loop_tr_write_buffer_size(tr) == 0 &&
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
    tc_loop_tr_read_stop(tr);
    if (!tr->io.wq.inflight && tr->io.wq.pend_len == 0) {
        tr->conn_lost++;
        if (tc_loop_tr_schedule(tr, tr->ts->fn_conn_lost, Py_None) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
tr_abort(tc_transport *tr, PyObject *Py_UNUSED(ignored))
{
    tc_loop_tr_force_close(tr, NULL);
    Py_RETURN_NONE;
}

static PyObject *
tr_force_close(tc_transport *tr, PyObject *exc)
{
    /* asyncio's _SelectorTransport._force_close(exc): drop the write buffer
     * and schedule connection_lost(exc).  The stdlib's SSLProtocol calls it
     * to abort the connection underneath TLS (handshake failure or timeout,
     * shutdown timeout). */
    tc_loop_tr_force_close(tr, exc == Py_None ? NULL : exc);
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
        tc_loop_tr_do_shutdown(tr);
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
    tc_loop_tr_read_stop(tr);
    if (tc_loop_tr_loop_debug(tr)) {
        tc_loop_tr_debug_log(tr, "%r pauses reading", NULL, NULL);
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
        tc_loop_tr_read_start(tr);
    }
    if (tc_loop_tr_loop_debug(tr)) {
        tc_loop_tr_debug_log(tr, "%r resumes reading", NULL, NULL);
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
    tc_loop_tr_maybe_pause_protocol(tr);
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
    return PyLong_FromSize_t(tc_loop_tr_write_buffer_size(tr));
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
                                tr->io.wq.inflight ? "polling" : "idle",
                                tc_loop_tr_write_buffer_size(tr));
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
        tc_loop_tr_read_start(tr);
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
    if (tc_loop_tr_call_connection_lost((tc_transport *)args[0],
                                        args[1] == Py_None ? NULL : args[1]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The read and the write completion held back in a poll (transport.c,
 * "Order"), queued with tc_loop_call_io. */
static PyObject *
fn_read_ready(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_state *st = tc_get_state(module);
    if (nargs != 1 || !PyObject_TypeCheck(args[0], st->loop_transport->Transport_type)) {
        PyErr_SetString(PyExc_TypeError, "_transport_read_ready(transport)");
        return NULL;
    }
    tc_loop_tr_read_ready((tc_transport *)args[0]); /* reports its own errors */
    Py_RETURN_NONE;
}

static PyObject *
fn_write_done(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_state *st = tc_get_state(module);
    tc_transport *tr;
    if (nargs != 1 || !PyObject_TypeCheck(args[0], st->loop_transport->Transport_type)) {
        PyErr_SetString(PyExc_TypeError, "_transport_write_done(transport)");
        return NULL;
    }
    tr = (tc_transport *)args[0];
    tr->wdone_scheduled = 0;
    tc_loop_tr_write_done(tr); /* reports its own errors */
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
    tc_loop_tr_release_rview(tr);
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
    {"write", (PyCFunction)tc_loop_tr_write, METH_O, NULL},
    {"writelines", (PyCFunction)tc_loop_tr_writelines, METH_O, NULL},
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
    {"_transport_read_ready", (PyCFunction)(void (*)(void))fn_read_ready, METH_FASTCALL, NULL},
    {"_transport_write_done", (PyCFunction)(void (*)(void))fn_write_done, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

/* The interned names of the state (made in exec, dropped in clear). */
static const tc_intern_spec transport_names[] = {
    TC_INTERN_NAME(tc_loop_transport_state, s_connection_made, "connection_made"),
    TC_INTERN_NAME(tc_loop_transport_state, s_connection_lost, "connection_lost"),
    TC_INTERN_NAME(tc_loop_transport_state, s_data_received, "data_received"),
    TC_INTERN_NAME(tc_loop_transport_state, s_eof_received, "eof_received"),
    TC_INTERN_NAME(tc_loop_transport_state, s_get_buffer, "get_buffer"),
    TC_INTERN_NAME(tc_loop_transport_state, s_buffer_updated, "buffer_updated"),
    TC_INTERN_NAME(tc_loop_transport_state, s_pause_writing, "pause_writing"),
    TC_INTERN_NAME(tc_loop_transport_state, s_resume_writing, "resume_writing"),
    TC_INTERN_NAME(tc_loop_transport_state, s_getpeername, "getpeername"),
    TC_INTERN_NAME(tc_loop_transport_state, s_getsockname, "getsockname"),
    TC_INTERN_NAME(tc_loop_transport_state, s_wakeup, "_wakeup"),
    TC_INTERN_NAME(tc_loop_transport_state, s_warning, "warning"),
    TC_INTERN_NAME(tc_loop_transport_state, s_get_debug, "get_debug"),
    TC_INTERN_NAME(tc_loop_transport_state, s_socket, "socket"),
    TC_INTERN_NAME(tc_loop_transport_state, s_peername, "peername"),
    TC_INTERN_NAME(tc_loop_transport_state, s_sockname, "sockname"),
    TC_INTERN_NAME(tc_loop_transport_state, s_socket_send_warning,
                   "socket.send() raised exception."),
    {0, NULL},
};

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
        (ts->fn_conn_lost = PyObject_GetAttrString(module, "_transport_connection_lost")) == NULL ||
        (ts->fn_read_ready = PyObject_GetAttrString(module, "_transport_read_ready")) == NULL ||
        (ts->fn_write_done = PyObject_GetAttrString(module, "_transport_write_done")) == NULL) {
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
    if (tc_intern_all(ts, transport_names) < 0) {
        return -1;
    }
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
    Py_VISIT(ts->fn_read_ready);
    Py_VISIT(ts->fn_write_done);
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
    Py_CLEAR(ts->fn_read_ready);
    Py_CLEAR(ts->fn_write_done);
    Py_CLEAR(ts->minus_one);
    tc_clear_all(ts, transport_names);
}

