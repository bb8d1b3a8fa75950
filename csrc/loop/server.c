/* The C base of tornado_c._loop_streams.Server (asyncio.AbstractServer).
 *
 * One listener per listening socket: a uv_tcp_t or uv_pipe_t opened on the
 * socket's fd, in its own PyMem block that is freed in the listener's close
 * callback.  Every open listener holds a strong reference to its server.
 * Accepting: the transport is created, the connection uv_accept()ed into its
 * handle, protocol_factory() called, and connection_made scheduled -- all in
 * the libuv callback (asyncio defers the factory call to a task; the visible
 * order of protocol calls is the same).
 *
 * The Python subclass adds the coroutine methods (serve_forever, wait_closed,
 * start_serving, __aenter__/__aexit__) and close()'s waiter bookkeeping.
 */
#include "common.h"
#include "state.h"
#include "loop/loop.h"
#include "loop/transport.h"

#include <structmember.h>
#include <sys/socket.h>
#include <stdint.h>

typedef struct tc_listener {
    tc_uvio_handle h;           /* h.handle.data = the listener */
    tc_server *server;          /* strong while the handle is open */
    int kind;
    Py_ssize_t index;           /* of its socket in server->socks */
    uint64_t last_error_ms;     /* accept errors are reported once a second */
    char error_reported;
} tc_listener;

struct tc_server {
    PyObject_HEAD
    tc_loop_transport_state *ts;      /* borrowed: the type holds the module */
    tc_loop *loop;              /* strong */
    PyObject *protocol_factory;
    PyObject *socks;            /* list of socket objects, or NULL once closed */
    PyObject *live;             /* the loop's set of live objects, or NULL */
    PyObject *weakreflist;
    tc_listener **ls;           /* PyMem array of nls listeners (NULL = closed) */
    Py_ssize_t nls;
    Py_ssize_t open_listeners;
    Py_ssize_t active_count;
    int backlog;
    char serving;
};

static void
listener_close_cb(uv_handle_t *handle)
{
    tc_listener *l = (tc_listener *)handle->data;
    tc_server *srv = l->server;
    TC_LOOP_ENTER(srv->loop);
    TC_LOOP_HANDLE_CLOSED(srv->loop);
    PyMem_Free(l);
    srv->open_listeners--;
    if (srv->open_listeners == 0 && srv->live != NULL) {
        if (PySet_Discard(srv->live, (PyObject *)srv) < 0) {
            tc_loop_report_exception(srv->loop, "server bookkeeping failed", NULL);
        }
        Py_CLEAR(srv->live);
    }
    Py_DECREF(srv); /* the listener's reference */
}

/* Close every listener (detaching the socket objects first: libuv closes the
 * fds).  Returns 0 if already closed, 1 if it closed now. */
static int
close_listeners(tc_server *srv)
{
    Py_ssize_t i;
    PyObject *socks = srv->socks;
    if (socks == NULL) {
        return 0;
    }
    srv->socks = NULL;
    srv->serving = 0;
    for (i = 0; i < srv->nls; i++) {
        tc_listener *l = srv->ls[i];
        if (l == NULL) {
            continue;
        }
        srv->ls[i] = NULL;
        if (i < PyList_GET_SIZE(socks)) {
            PyObject *r = PyObject_CallMethodNoArgs(PyList_GET_ITEM(socks, i),
                                                    srv->loop->ls->str_detach);
            if (r == NULL) {
                tc_loop_report_exception(srv->loop, "socket.detach() failed", NULL);
            }
            Py_XDECREF(r);
        }
        uv_close(&l->h.handle, listener_close_cb);
    }
    Py_DECREF(socks);
    return 1;
}

static void
report_accept_error(tc_server *srv, const char *message)
{
    tc_loop_report_exception(srv->loop, message, NULL);
}

/* An accept() error (libuv already closed the connection it could not take,
 * see its EMFILE handling): to the exception handler with the listening
 * socket, as asyncio does, at most once a second per listener (asyncio stops
 * accepting for a second after such an error). */
static void
report_accept_status(tc_listener *l, int status)
{
    tc_server *srv = l->server;
    uint64_t now = uv_now(srv->loop->uv);
    PyObject *extra = NULL, *tsock;
    if (l->error_reported && now - l->last_error_ms < 1000) {
        return;
    }
    l->error_reported = 1;
    l->last_error_ms = now;
    if (srv->socks != NULL && l->index < PyList_GET_SIZE(srv->socks)) {
        tsock = PyObject_CallOneArg(srv->ts->TransportSocket,
                                    PyList_GET_ITEM(srv->socks, l->index));
        if (tsock != NULL) {
            extra = Py_BuildValue("{sN}", "socket", tsock);
        }
        if (extra == NULL) {
            PyErr_Clear();
        }
    }
    tc_uvio_set_error(status);
    tc_loop_report_exception(srv->loop, "socket.accept() out of system resource", extra);
    Py_XDECREF(extra);
}

static void
connection_cb(uv_stream_t *stream, int status)
{
    tc_listener *l = (tc_listener *)stream->data;
    tc_server *srv = l->server;
    tc_transport *tr;
    PyObject *protocol;
    int rc;
    TC_LOOP_ENTER(srv->loop);
    if (status < 0) {
        report_accept_status(l, status);
        return;
    }
    if (srv->socks == NULL) {
        return;
    }
    Py_INCREF(srv);
    tr = tc_loop_transport_for_accept(srv->ts, srv->loop, l->kind, srv->live);
    if (tr == NULL) {
        report_accept_error(srv, "Error on transport creation for incoming connection");
        goto done;
    }
    rc = uv_accept(stream, tc_loop_transport_stream(tr));
    if (rc < 0) {
        tc_loop_transport_dispose(tr);
        Py_DECREF(tr);
        if (rc != UV_EAGAIN && rc != UV_ECONNABORTED) {
            tc_uvio_set_error(rc);
            report_accept_error(srv, "socket.accept() failed");
        }
        goto done;
    }
    protocol = PyObject_CallNoArgs(srv->protocol_factory);
    if (protocol == NULL ||
        tc_loop_transport_start(tr, protocol, (PyObject *)srv, NULL) < 0) {
        /* asyncio reports this only in debug mode; we always do (the
         * connection is closed, the error must not vanish). */
        PyObject *extra = PyDict_New();
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        if (extra != NULL) {
            if ((protocol != NULL && PyDict_SetItemString(extra, "protocol", protocol) < 0) ||
                PyDict_SetItemString(extra, "transport", (PyObject *)tr) < 0) {
                Py_CLEAR(extra);
                PyErr_Clear();
            }
        }
        else {
            PyErr_Clear();
        }
        PyErr_Restore(et, ev, etb);
        tc_loop_report_exception(srv->loop, "Error on transport creation for incoming connection",
                                 extra);
        Py_XDECREF(extra);
        tc_loop_transport_dispose(tr);
    }
    Py_XDECREF(protocol);
    Py_DECREF(tr); /* the transport keeps itself alive while its handle is open */
done:
    Py_DECREF(srv);
}

void
tc_loop_server_attach(PyObject *server)
{
    ((tc_server *)server)->active_count++;
}

void
tc_loop_server_detach(PyObject *server)
{
    tc_server *srv = (tc_server *)server;
    srv->active_count--;
    if (srv->active_count == 0 && srv->socks == NULL) {
        PyObject *r = PyObject_CallMethodNoArgs(server, srv->ts->s_wakeup);
        if (r == NULL) {
            tc_loop_report_exception(srv->loop, "Server._wakeup() failed", NULL);
        }
        Py_XDECREF(r);
    }
}

static PyObject *
srv_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    /* Server(loop, sockets, protocol_factory, backlog, live) -- the listeners
     * take the fds of `sockets` (a list of socket objects). */
    tc_state *st = tc_state_from_subtype(type, "tornado_c._core.Server");
    PyObject *loop, *socks, *factory, *live;
    int backlog;
    tc_server *srv = NULL;
    Py_ssize_t i, n;
    (void)kwds;
    if (st == NULL) {
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OO!OiO:Server", &loop, &PyList_Type, &socks, &factory,
                          &backlog, &live)) {
        return NULL;
    }
    if (!tc_loop_check(st, loop)) {
        PyErr_SetString(PyExc_TypeError, "loop must be a tornado_c event loop");
        return NULL;
    }
    if (tc_loop_transport_check_open(loop) < 0) {
        return NULL;
    }
    srv = (tc_server *)type->tp_alloc(type, 0);
    if (srv == NULL) {
        return NULL;
    }
    srv->ts = st->loop_transport;
    Py_INCREF(loop);
    srv->loop = (tc_loop *)loop;
    Py_INCREF(factory);
    srv->protocol_factory = factory;
    srv->backlog = backlog;
    n = PyList_GET_SIZE(socks);
    srv->socks = PyList_New(0);
    if (srv->socks == NULL) {
        goto fail;
    }
    srv->ls = PyMem_Calloc(n ? (size_t)n : 1, sizeof(tc_listener *));
    if (srv->ls == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    if (live != Py_None) {
        if (PySet_Add(live, (PyObject *)srv) < 0) {
            goto fail;
        }
        Py_INCREF(live);
        srv->live = live;
    }
    for (i = 0; i < n; i++) {
        PyObject *sock = PyList_GET_ITEM(socks, i); /* borrowed */
        PyObject *o;
        long family, fd;
        tc_listener *l;
        int rc;
        if ((o = PyObject_GetAttrString(sock, "family")) == NULL) {
            goto fail;
        }
        family = PyLong_AsLong(o);
        Py_DECREF(o);
        if (family == -1 && PyErr_Occurred()) {
            goto fail;
        }
        if ((o = PyObject_CallMethodNoArgs(sock, st->loop->str_fileno)) == NULL) {
            goto fail;
        }
        fd = PyLong_AsLong(o);
        Py_DECREF(o);
        if (fd == -1 && PyErr_Occurred()) {
            goto fail;
        }
        l = PyMem_Calloc(1, sizeof(tc_listener));
        if (l == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        l->kind = family == AF_UNIX ? TC_UVIO_PIPE : TC_UVIO_TCP;
        l->index = i;
        rc = tc_uvio_handle_init(&l->h, srv->loop->uv, l->kind);
        if (rc < 0) {
            PyMem_Free(l);
            tc_uvio_set_error(rc);
            goto fail;
        }
        l->h.handle.data = l;
        Py_INCREF(srv);
        l->server = srv;
        srv->open_listeners++;
        TC_LOOP_HANDLE_OPENED(srv->loop);
        rc = tc_uvio_handle_open(&l->h, l->kind, (int)fd);
        if (rc < 0) {
            /* the fd stays with the socket object */
            uv_close(&l->h.handle, listener_close_cb);
            tc_uvio_set_error(rc);
            goto fail;
        }
        srv->ls[i] = l;
        srv->nls = i + 1;
        if (PyList_Append(srv->socks, sock) < 0) {
            goto fail;
        }
    }
    return (PyObject *)srv;
fail:
    {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        close_listeners(srv);
        PyErr_Restore(et, ev, etb);
    }
    Py_DECREF(srv);
    return NULL;
}

static PyObject *
srv_start_listening(tc_server *srv, PyObject *Py_UNUSED(ignored))
{
    /* _start_listening(): listen() on every socket (asyncio's
     * Server._start_serving minus the Python bookkeeping). */
    Py_ssize_t i;
    if (srv->serving || srv->socks == NULL) {
        Py_RETURN_NONE;
    }
    srv->serving = 1;
    for (i = 0; i < srv->nls; i++) {
        tc_listener *l = srv->ls[i];
        int rc;
        if (l == NULL) {
            continue;
        }
        rc = uv_listen(&l->h.stream, srv->backlog, connection_cb);
        if (rc < 0) {
            return tc_uvio_set_error(rc);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
srv_close_listeners(tc_server *srv, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(close_listeners(srv));
}

static PyObject *
srv_is_serving(tc_server *srv, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(srv->serving);
}

static PyObject *
srv_get_loop(tc_server *srv, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef((PyObject *)srv->loop);
}

static PyObject *
srv_loop_closing(tc_server *srv, PyObject *Py_UNUSED(ignored))
{
    close_listeners(srv);
    Py_RETURN_NONE;
}

static PyObject *
srv_get_socks(tc_server *srv, void *Py_UNUSED(closure))
{
    if (srv->socks == NULL) {
        Py_RETURN_NONE;
    }
    return PyList_AsTuple(srv->socks);
}

static PyObject *
srv_get_active(tc_server *srv, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(srv->active_count);
}

static PyObject *
srv_get_backlog(tc_server *srv, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(srv->backlog);
}

static PyObject *
srv_get_factory(tc_server *srv, void *Py_UNUSED(closure))
{
    return Py_NewRef(srv->protocol_factory);
}

static int
srv_traverse(tc_server *srv, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(srv));
    Py_VISIT(srv->loop);
    Py_VISIT(srv->protocol_factory);
    Py_VISIT(srv->socks);
    Py_VISIT(srv->live);
    return 0;
}

static int
srv_clear(tc_server *srv)
{
    /* Never reached while a listener is open (each holds a reference). */
    Py_CLEAR(srv->protocol_factory);
    Py_CLEAR(srv->live);
    return 0;
}

static void
srv_dealloc(tc_server *srv)
{
    PyTypeObject *tp = Py_TYPE(srv);
    PyObject_GC_UnTrack(srv);
    if (srv->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)srv);
    }
    srv_clear(srv);
    Py_CLEAR(srv->socks);
    Py_CLEAR(srv->loop);
    PyMem_Free(srv->ls);
    tp->tp_free((PyObject *)srv);
    Py_DECREF(tp);
}

static PyMethodDef srv_methods[] = {
    {"_start_listening", (PyCFunction)srv_start_listening, METH_NOARGS, NULL},
    {"_close_listeners", (PyCFunction)srv_close_listeners, METH_NOARGS,
     "Close the listening sockets; False if they were closed already."},
    {"_loop_closing", (PyCFunction)srv_loop_closing, METH_NOARGS, NULL},
    {"is_serving", (PyCFunction)srv_is_serving, METH_NOARGS, NULL},
    {"get_loop", (PyCFunction)srv_get_loop, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef srv_getset[] = {
    {"_sockets", (getter)srv_get_socks, NULL, "tuple of socket objects, None once closed", NULL},
    {"_active_count", (getter)srv_get_active, NULL, NULL, NULL},
    {"_backlog", (getter)srv_get_backlog, NULL, NULL, NULL},
    {"_protocol_factory", (getter)srv_get_factory, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef srv_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(tc_server, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot srv_slots[] = {
    {Py_tp_doc, "C base of the asyncio server on libuv listening handles."},
    {Py_tp_new, srv_new},
    {Py_tp_dealloc, srv_dealloc},
    {Py_tp_traverse, srv_traverse},
    {Py_tp_clear, srv_clear},
    {Py_tp_methods, srv_methods},
    {Py_tp_getset, srv_getset},
    {Py_tp_members, srv_members},
    {0, NULL},
};

static PyType_Spec srv_spec = {
    .name = "tornado_c._core.Server",
    .basicsize = sizeof(tc_server),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = srv_slots,
};

int
tc_loop_server_exec(PyObject *module, tc_state *st)
{
    return tc_add_type(module, &srv_spec, NULL, &st->loop_transport->Server_type);
}
