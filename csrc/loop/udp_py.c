/* loop component: the Python face of the datagram transport (udp.c has the
 * design and the I/O): _core.DatagramTransport's methods other than sendto()
 * -- opening, starting, closing, reading control, flow-control limits, extra
 * info --, the module-level callbacks scheduled with call_soon
 * (_datagram_connection_made / _lost / _read_ready), the type and the exec.
 * The struct and the I/O functions used here are declared in udp.h.
 */
#include "common.h"
#include "state.h"
#include "loop/loop.h"
#include "loop/transport.h"
#include "loop/udp.h"

#include <structmember.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <stddef.h>

/* ------------------------------------------------------------ Python API */

static PyObject *
udp_open(PyTypeObject *type, PyObject *const *args, Py_ssize_t nargs)
{
    /* DatagramTransport._open(loop, sock, address, extra, live): a transport
     * watching sock's fd (sock stays the fd's owner). */
    tc_state *st = tc_state_from_type(type);
    PyObject *loop, *sock, *address, *extra, *live, *o, *peer;
    tc_udp *tr;
    long family;
    int fd, rc, connected;
    if (st == NULL) {
        return NULL;
    }
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "_open(loop, sock, address, extra, live)");
        return NULL;
    }
    loop = args[0];
    sock = args[1];
    address = args[2];
    extra = args[3];
    live = args[4];
    if (!tc_loop_check(st, loop)) {
        PyErr_SetString(PyExc_TypeError, "loop must be a tornado_c event loop");
        return NULL;
    }
    if (!PyDict_Check(extra)) {
        PyErr_SetString(PyExc_TypeError, "extra must be a dict");
        return NULL;
    }
    if (tc_loop_transport_check_open(loop) < 0) {
        return NULL;
    }
    o = PyObject_GetAttrString(sock, "family");
    if (o == NULL) {
        return NULL;
    }
    family = PyLong_AsLong(o);
    Py_DECREF(o);
    if (family == -1 && PyErr_Occurred()) {
        return NULL;
    }
    fd = tc_uvio_sock_fd((tc_loop *)loop, sock);
    if (fd < 0) {
        return NULL;
    }
    peer = PyDict_GetItemString(extra, "peername"); /* borrowed */
    connected = peer != NULL ? PyObject_IsTrue(peer) : 0;
    if (connected < 0) {
        return NULL;
    }
    tr = (tc_udp *)type->tp_alloc(type, 0);
    if (tr == NULL) {
        return NULL;
    }
    tr->st = st;
    tr->loop = (tc_loop *)Py_NewRef(loop);
    tr->fd = fd;
    tr->family = (int)family;
    tr->connected = (char)connected;
    tr->high = 64 * 1024;
    tr->low = 16 * 1024;
    tr->extra = PyDict_Copy(extra);
    if (tr->extra == NULL) {
        Py_DECREF(tr);
        return NULL;
    }
    rc = uv_poll_init(tr->loop->uv, &tr->poll, fd);
    if (rc < 0) {
        Py_DECREF(tr);
        return tc_uvio_set_error(rc);
    }
    tr->poll.data = tr;
    tr->poll_open = 1;
    TC_LOOP_HANDLE_OPENED(tr->loop);
    Py_INCREF(tr); /* self-reference, dropped in poll_close_cb */
    tr->sock = Py_NewRef(sock);
    if (address != Py_None) {
        tr->address = Py_NewRef(address);
    }
    if (live != Py_None) {
        if (PySet_Add(live, (PyObject *)tr) < 0) {
            PyObject *et, *ev, *etb;
            PyErr_Fetch(&et, &ev, &etb);
            tr->lost_called = 1;
            tr->poll_closing = 1;
            tc_loop_close_handle(tr->loop, (uv_handle_t *)&tr->poll, tc_loop_udp_poll_close_cb);
            Py_CLEAR(tr->sock); /* the fd stays with the caller's socket */
            PyErr_Restore(et, ev, etb);
            Py_DECREF(tr);
            return NULL;
        }
        tr->live = Py_NewRef(live);
    }
    return (PyObject *)tr;
}

static PyObject *
udp_start(tc_udp *tr, PyObject *const *args, Py_ssize_t nargs)
{
    /* _start(protocol, waiter=None) */
    PyObject *protocol, *waiter = Py_None;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "_start(protocol, waiter=None)");
        return NULL;
    }
    protocol = args[0];
    if (nargs > 1) {
        waiter = args[1];
    }
    if (tr->started || tr->lost_called) {
        PyErr_SetString(PyExc_RuntimeError, "transport cannot be started");
        return NULL;
    }
    if (tc_loop_udp_schedule(tr, tr->st->loop_udp->fn_conn_made, NULL) < 0) {
        return NULL;
    }
    tr->protocol = Py_NewRef(protocol);
    tr->started = 1;
    if (waiter != Py_None) {
        PyObject *a[1] = {waiter};
        PyObject *h = tc_loop_call_soon(tr->loop, tr->st->loop->fn_set_result_unless_cancelled, a, 1, NULL);
        if (h == NULL) {
            return NULL;
        }
        Py_DECREF(h);
    }
    Py_RETURN_NONE;
}

static PyObject *
udp_dispose(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    /* Release a transport that never started (no protocol calls); the
     * socket is closed. */
    if (tr->started) {
        PyErr_SetString(PyExc_RuntimeError, "transport already started; use close()");
        return NULL;
    }
    tr->closing = 1;
    tr->lost_called = 1;
    if (tr->conn_lost == 0) {
        tr->conn_lost = 1;
    }
    tc_loop_udp_release(tr);
    Py_RETURN_NONE;
}

static PyObject *
udp_loop_closing(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    /* The loop closes with this transport alive: release the handle and
     * close the socket, no protocol calls (asyncio leaves such transports to
     * the garbage collector, which closes their sockets). */
    tr->closing = 1;
    tr->lost_called = 1;
    if (tr->conn_lost == 0) {
        tr->conn_lost = 1;
    }
    tc_loop_udp_queue_clear(tr);
    tc_loop_udp_release(tr);
    Py_RETURN_NONE;
}

static PyObject *
udp_close(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    if (tr->closing) {
        Py_RETURN_NONE;
    }
    tr->closing = 1;
    tr->reading = 0;
    tc_loop_udp_update_poll(tr);
    if (tr->qlen == 0) {
        tr->conn_lost++;
        if (tc_loop_udp_schedule(tr, tr->st->loop_udp->fn_conn_lost, Py_None) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
udp_abort(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    tc_loop_udp_force_close(tr, NULL);
    Py_RETURN_NONE;
}

static PyObject *
udp_force_close(tc_udp *tr, PyObject *exc)
{
    tc_loop_udp_force_close(tr, exc == Py_None ? NULL : exc);
    Py_RETURN_NONE;
}

static PyObject *
udp_is_reading(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(!tr->closing && !tr->paused);
}

static PyObject *
udp_pause_reading(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    if (tr->closing || tr->paused) {
        Py_RETURN_NONE;
    }
    tr->paused = 1;
    tr->reading = 0;
    tc_loop_udp_update_poll(tr);
    if (tc_loop_udp_loop_debug(tr)) {
        tc_loop_udp_debug_log(tr, "%r pauses reading", NULL, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *
udp_resume_reading(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    if (tr->closing || !tr->paused) {
        Py_RETURN_NONE;
    }
    tr->paused = 0;
    tr->reading = tr->read_started;
    tc_loop_udp_update_poll(tr);
    if (tc_loop_udp_loop_debug(tr)) {
        tc_loop_udp_debug_log(tr, "%r resumes reading", NULL, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *
udp_is_closing(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(tr->closing);
}

static PyObject *
udp_get_protocol(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(tr->protocol ? tr->protocol : Py_None);
}

static PyObject *
udp_set_protocol(tc_udp *tr, PyObject *protocol)
{
    Py_XSETREF(tr->protocol, Py_NewRef(protocol));
    Py_RETURN_NONE;
}

static PyObject *
udp_get_write_buffer_size(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(tr->bufsize);
}

static PyObject *
udp_get_write_buffer_limits(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(nn)", (Py_ssize_t)tr->low, (Py_ssize_t)tr->high);
}

static PyObject *
udp_set_write_buffer_limits(tc_udp *tr, PyObject *args, PyObject *kwds)
{
    /* asyncio's _FlowControlMixin._set_write_buffer_limits */
    Py_ssize_t high, low;
    if (tc_loop_transport_parse_limits(args, kwds, &high, &low) < 0) {
        return NULL;
    }
    tr->high = (size_t)high;
    tr->low = (size_t)low;
    tc_loop_udp_maybe_pause_protocol(tr);
    Py_RETURN_NONE;
}

static PyObject *
udp_get_extra_info(tc_udp *tr, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *v;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get_extra_info(name, default=None)");
        return NULL;
    }
    v = PyDict_GetItemWithError(tr->extra, args[0]); /* borrowed */
    if (v != NULL) {
        return Py_NewRef(v);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    return Py_NewRef(nargs == 2 ? args[1] : Py_None);
}

static PyObject *
udp_repr(tc_udp *tr)
{
    const char *state = tr->lost_called ? " closed" : tr->closing ? " closing" : "";
    return PyUnicode_FromFormat("<DatagramTransport fd=%d%s read=%s write=<%s, bufsize=%zu>>",
                                tr->lost_called ? -1 : tr->fd, state,
                                tr->reading ? "polling" : "idle",
                                tr->qlen ? "polling" : "idle", tr->bufsize);
}

static PyObject *
udp_get_fd(tc_udp *tr, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(tr->lost_called ? -1 : tr->fd);
}

static PyObject *
udp_get_paused(tc_udp *tr, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(tr->protocol_paused);
}

static PyObject *
udp_get_sock(tc_udp *tr, void *Py_UNUSED(closure))
{
    /* asyncio's transport._sock (some code reads it): None once closed */
    return Py_NewRef(tr->sock != NULL && !tr->lost_called ? tr->sock : Py_None);
}

static PyObject *
udp_get_address(tc_udp *tr, void *Py_UNUSED(closure))
{
    return Py_NewRef(tr->address ? tr->address : Py_None);
}

/* ------------------------------------------------- module-level callbacks */

static PyObject *
fn_conn_made(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_state *st = tc_get_state(module);
    tc_udp *tr;
    PyObject *r;
    if (nargs != 1 || !PyObject_TypeCheck(args[0], st->loop_udp->Datagram_type)) {
        PyErr_SetString(PyExc_TypeError, "_datagram_connection_made(transport)");
        return NULL;
    }
    tr = (tc_udp *)args[0];
    if (tr->protocol == NULL || tr->lost_called) {
        Py_RETURN_NONE;
    }
    r = PyObject_CallMethodOneArg(tr->protocol, st->loop_transport->s_connection_made, (PyObject *)tr);
    /* asyncio adds the reader in its own call_soon: reading starts even if
     * connection_made() raised, unless the transport was closed. */
    if (!tr->closing) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        tr->read_started = 1;
        tr->reading = !tr->paused;
        tc_loop_udp_update_poll(tr);
        PyErr_Restore(et, ev, etb);
    }
    return r == NULL ? NULL : (Py_DECREF(r), Py_NewRef(Py_None));
}

static PyObject *
fn_read_ready(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_state *st = tc_get_state(module);
    tc_udp *tr;
    if (nargs != 1 || !PyObject_TypeCheck(args[0], st->loop_udp->Datagram_type)) {
        PyErr_SetString(PyExc_TypeError, "_datagram_read_ready(transport)");
        return NULL;
    }
    tr = (tc_udp *)args[0];
    tr->read_scheduled = 0;
    if (tr->reading && !tr->poll_closing) {
        tc_loop_udp_read_ready(tr); /* reports its own errors */
    }
    Py_RETURN_NONE;
}

static PyObject *
fn_conn_lost(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_state *st = tc_get_state(module);
    if (nargs != 2 || !PyObject_TypeCheck(args[0], st->loop_udp->Datagram_type)) {
        PyErr_SetString(PyExc_TypeError, "_datagram_connection_lost(transport, exc)");
        return NULL;
    }
    if (tc_loop_udp_call_connection_lost((tc_udp *)args[0],
                                         args[1] == Py_None ? NULL : args[1]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------- type */

static int
udp_traverse(tc_udp *tr, visitproc visit, void *arg)
{
    size_t i;
    Py_VISIT(Py_TYPE(tr));
    Py_VISIT(tr->base_extra_slot);
    Py_VISIT(tr->loop);
    Py_VISIT(tr->sock);
    Py_VISIT(tr->protocol);
    Py_VISIT(tr->address);
    Py_VISIT(tr->extra);
    Py_VISIT(tr->live);
    Py_VISIT(tr->rx_addr);
    Py_VISIT(tr->tx_addr);
    for (i = 0; i < tr->qlen; i++) {
        udp_entry *e = &tr->q[(tr->qhead + i) % tr->qcap];
        Py_VISIT(e->data);
        Py_VISIT(e->addr);
    }
    return 0;
}

static int
udp_clear(tc_udp *tr)
{
    /* Never reached while the poll handle is open (self-reference). */
    Py_CLEAR(tr->base_extra_slot);
    Py_CLEAR(tr->protocol);
    Py_CLEAR(tr->address);
    Py_CLEAR(tr->extra);
    Py_CLEAR(tr->live);
    Py_CLEAR(tr->rx_addr);
    Py_CLEAR(tr->tx_addr);
    tc_loop_udp_queue_clear(tr);
    if (!tr->poll_open) {
        Py_CLEAR(tr->sock);
        Py_CLEAR(tr->loop);
    }
    return 0;
}

static void
udp_dealloc(tc_udp *tr)
{
    PyTypeObject *tp = Py_TYPE(tr);
    PyObject_GC_UnTrack(tr);
    if (tr->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)tr);
    }
    udp_clear(tr);
    Py_CLEAR(tr->sock);
    Py_CLEAR(tr->loop);
    PyMem_Free(tr->q);
    tp->tp_free((PyObject *)tr);
    Py_DECREF(tp);
}

static PyMethodDef udp_methods[] = {
    {"_open", (PyCFunction)(void (*)(void))udp_open, METH_FASTCALL | METH_CLASS,
     "_open(loop, sock, address, extra, live): transport watching sock's fd."},
    {"_start", (PyCFunction)(void (*)(void))udp_start, METH_FASTCALL,
     "_start(protocol, waiter=None): schedule connection_made, then read."},
    {"_dispose", (PyCFunction)udp_dispose, METH_NOARGS,
     "Release a transport that never started (closes the socket)."},
    {"_loop_closing", (PyCFunction)udp_loop_closing, METH_NOARGS,
     "Release handle and socket because the loop closes."},
    {"_force_close", (PyCFunction)udp_force_close, METH_O, NULL},
    {"sendto", (PyCFunction)(void (*)(void))tc_loop_udp_sendto, METH_FASTCALL | METH_KEYWORDS,
     "sendto(data, addr=None)"},
    {"close", (PyCFunction)udp_close, METH_NOARGS, NULL},
    {"abort", (PyCFunction)udp_abort, METH_NOARGS, NULL},
    {"is_closing", (PyCFunction)udp_is_closing, METH_NOARGS, NULL},
    {"is_reading", (PyCFunction)udp_is_reading, METH_NOARGS, NULL},
    {"pause_reading", (PyCFunction)udp_pause_reading, METH_NOARGS, NULL},
    {"resume_reading", (PyCFunction)udp_resume_reading, METH_NOARGS, NULL},
    {"get_protocol", (PyCFunction)udp_get_protocol, METH_NOARGS, NULL},
    {"set_protocol", (PyCFunction)udp_set_protocol, METH_O, NULL},
    {"get_write_buffer_size", (PyCFunction)udp_get_write_buffer_size, METH_NOARGS, NULL},
    {"get_write_buffer_limits", (PyCFunction)udp_get_write_buffer_limits, METH_NOARGS, NULL},
    {"set_write_buffer_limits", (PyCFunction)(void (*)(void))udp_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"get_extra_info", (PyCFunction)(void (*)(void))udp_get_extra_info, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef udp_getset[] = {
    {"_fd", (getter)udp_get_fd, NULL, "fd of the socket, -1 when closed", NULL},
    {"_protocol_paused", (getter)udp_get_paused, NULL, NULL, NULL},
    {"_address", (getter)udp_get_address, NULL, "remote address of the endpoint", NULL},
    {"_sock", (getter)udp_get_sock, NULL, "the socket object, None once closed", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef udp_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(tc_udp, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot udp_slots[] = {
    {Py_tp_doc, "asyncio.DatagramTransport on a UDP or Unix datagram socket (libuv poll)."},
    {Py_tp_dealloc, udp_dealloc},
    {Py_tp_traverse, udp_traverse},
    {Py_tp_clear, udp_clear},
    {Py_tp_repr, udp_repr},
    {Py_tp_methods, udp_methods},
    {Py_tp_getset, udp_getset},
    {Py_tp_members, udp_members},
    {0, NULL},
};

static PyType_Spec udp_spec = {
    .name = "tornado_c._core.DatagramTransport",
    .basicsize = sizeof(tc_udp),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = udp_slots,
};

static PyMethodDef udp_functions[] = {
    {"_datagram_connection_made", (PyCFunction)(void (*)(void))fn_conn_made, METH_FASTCALL, NULL},
    {"_datagram_connection_lost", (PyCFunction)(void (*)(void))fn_conn_lost, METH_FASTCALL, NULL},
    {"_datagram_read_ready", (PyCFunction)(void (*)(void))fn_read_ready, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

/* The interned names of the state (made in exec, dropped in clear). */
static const tc_intern_spec udp_names[] = {
    TC_INTERN_NAME(tc_loop_udp_state, s_datagram_received, "datagram_received"),
    TC_INTERN_NAME(tc_loop_udp_state, s_error_received, "error_received"),
    TC_INTERN_NAME(tc_loop_udp_state, s_sendto, "sendto"),
    TC_INTERN_NAME(tc_loop_udp_state, s_close, "close"),
    TC_INTERN_NAME(tc_loop_udp_state, s_socket_send_warning, "socket.send() raised exception."),
    {0, NULL},
};

int
tc_loop_udp_exec(PyObject *module, tc_state *st)
{
    /* Bases: asyncio.Transport (what the stdlib's datagram transport is an
     * instance of on every version) and asyncio.DatagramTransport (3.13's
     * is also one); both only have BaseTransport's `_extra` slot. */
    tc_loop_udp_state *us = st->loop_udp;
    PyObject *t = tc_import_attr("asyncio", "Transport");
    PyObject *d = t ? tc_import_attr("asyncio", "DatagramTransport") : NULL;
    PyObject *bases = NULL;
    Py_ssize_t want = (Py_ssize_t)(offsetof(tc_udp, base_extra_slot) + sizeof(PyObject *));
    int rc;
    if (d == NULL) {
        Py_XDECREF(t);
        return -1;
    }
    if (!PyType_Check(t) || !PyType_Check(d) ||
        ((PyTypeObject *)t)->tp_basicsize != want || ((PyTypeObject *)d)->tp_basicsize != want) {
        Py_DECREF(t);
        Py_DECREF(d);
        PyErr_SetString(PyExc_ImportError,
                        "asyncio.Transport/DatagramTransport have an unexpected instance layout "
                        "(expected __slots__ = ('_extra',)); tornado_c needs updating");
        return -1;
    }
    bases = PyTuple_Pack(2, t, d);
    Py_DECREF(t);
    Py_DECREF(d);
    if (bases == NULL) {
        return -1;
    }
    rc = tc_add_type(module, &udp_spec, bases, &us->Datagram_type);
    Py_DECREF(bases);
    if (rc < 0) {
        return -1;
    }
    if (PyModule_AddFunctions(module, udp_functions) < 0) {
        return -1;
    }
    if ((us->fn_conn_made = PyObject_GetAttrString(module, "_datagram_connection_made")) == NULL ||
        (us->fn_conn_lost = PyObject_GetAttrString(module, "_datagram_connection_lost")) == NULL ||
        (us->fn_read_ready = PyObject_GetAttrString(module, "_datagram_read_ready")) == NULL) {
        return -1;
    }
    if (tc_intern_all(us, udp_names) < 0) {
        return -1;
    }
    return 0;
}

int
tc_loop_udp_traverse(tc_state *st, visitproc visit, void *arg)
{
    tc_loop_udp_state *us = st->loop_udp;
    Py_VISIT(us->Datagram_type);
    Py_VISIT(us->fn_conn_made);
    Py_VISIT(us->fn_conn_lost);
    Py_VISIT(us->fn_read_ready);
    return 0;
}

void
tc_loop_udp_clear(tc_state *st)
{
    tc_loop_udp_state *us = st->loop_udp;
    Py_CLEAR(us->Datagram_type);
    Py_CLEAR(us->fn_conn_made);
    Py_CLEAR(us->fn_conn_lost);
    Py_CLEAR(us->fn_read_ready);
    tc_clear_all(us, udp_names);
}
