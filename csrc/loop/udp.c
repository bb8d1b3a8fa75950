/* Datagram transports (asyncio.DatagramTransport) for UDP and Unix datagram
 * sockets.
 *
 * Behaviour follows asyncio's _SelectorDatagramTransport (the running
 * Python's version of it) call for call: connection_made is scheduled with
 * call_soon and reading starts after it; sendto() tries to send at once and
 * queues only what the kernel refuses (EAGAIN), with the same flow control
 * (pause_writing above the high-water mark); an OSError of a send or a
 * receive goes to protocol.error_received() (ICMP errors such as
 * ECONNREFUSED on a connected socket arrive that way), any other exception
 * of a send is fatal (exception handler, transport closed); close() waits for
 * the queue to drain, abort() drops it; connection_lost(exc) runs once, then
 * the socket is closed.
 *
 * Why not uv_udp_t: uv_udp_open() sets SO_REUSEADDR on the socket it is
 * given (asyncio refuses reuse_address for UDP because another process could
 * then bind the same port and take the datagrams), and libuv's queued sends
 * know only IPv4/IPv6 addresses (no Unix datagram sockets).  So the transport
 * watches its socket with a uv_poll_t and makes the system calls itself:
 * recvmmsg() (UDP) or recvfrom() (Unix) into the loop's shared read buffer
 * (loop/uvio.h; the datagrams are copied out into bytes objects before any
 * Python code runs), send() or sendto() straight from the caller's buffer.
 *
 * Order of callbacks: datagrams are delivered from the poll callback, except
 * when callbacks were already ready: then the read is queued behind them, as
 * asyncio queues every I/O callback.
 *
 * Addresses: sendto() converts a numeric (host, port[, flowinfo[, scope_id]])
 * tuple for the socket's family itself; anything else (host names, '',
 * '<broadcast>', Unix paths, bad values) goes through the socket object's own
 * sendto(), so resolution and error messages are the stdlib's.  The last
 * sender's address tuple is kept with its raw form: a datagram from the same
 * peer gets the same tuple object, and sending back to that object needs no
 * conversion (an echo server converts nothing).
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
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stddef.h>

#define LOG_THRESHOLD_FOR_CONNLOST_WRITES 5
/* datagrams read per readiness event at most (then other work runs) */
#define UDP_READS_PER_EVENT 32
/* UDP datagrams read per recvmmsg(), each into a slot of the shared read
 * buffer large enough for any UDP payload */
#define UDP_BATCH 4
#define UDP_SLOT (TC_UVIO_READ_BUF_SIZE / UDP_BATCH)
_Static_assert(UDP_SLOT >= 65536, "a recvmmsg slot must hold any UDP payload");

#if PY_VERSION_HEX >= 0x030D0000
/* 3.13: empty datagrams are sent, and every queued datagram counts 8 more
 * bytes (its header) in the write buffer size */
#define UDP_SEND_EMPTY 1
#define UDP_HEADER_SIZE 8
#else
/* 3.10-3.12: sendto(b'') does nothing */
#define UDP_SEND_EMPTY 0
#define UDP_HEADER_SIZE 0
#endif

typedef struct udp_entry {
    PyObject *data;             /* strong: bytes */
    PyObject *addr;             /* strong or NULL (connected socket) */
    struct sockaddr_storage sa;
    socklen_t salen;            /* 0: send through the socket object */
    size_t counted;             /* what it adds to the write buffer size */
} udp_entry;

typedef struct tc_udp {
    PyObject_HEAD
    /* asyncio.BaseTransport's __slots__ = ('_extra',) lives here (layout
     * checked at import, as for the stream transport); unused by us. */
    PyObject *base_extra_slot;
    tc_state *st;               /* borrowed: the type holds the module */
    tc_loop *loop;              /* strong */
    uv_poll_t poll;             /* poll.data = self; see udp.h */
    PyObject *sock;             /* strong: socket object, owns the fd */
    PyObject *protocol;         /* strong or NULL */
    PyObject *address;          /* strong or NULL: remote_addr of the endpoint */
    PyObject *extra;            /* strong dict: socket, sockname, peername */
    PyObject *live;             /* strong or NULL: the loop's live set */
    PyObject *weakreflist;
    PyObject *rx_addr;          /* strong or NULL: tuple for rx_sa */
    PyObject *tx_addr;          /* strong or NULL: address object tx_sa came from */
    struct sockaddr_storage rx_sa, tx_sa;
    socklen_t rx_salen, tx_salen;
    udp_entry *q;               /* PyMem ring of queued datagrams */
    size_t qhead, qlen, qcap;
    size_t bufsize;             /* asyncio's _buffer_size */
    size_t high, low;
    Py_ssize_t conn_lost;       /* asyncio's _conn_lost */
    int fd, family;
    int events;                 /* uv_poll events being watched */
    char poll_open;             /* uv_poll_init done, close callback not run */
    char poll_closing;
    char connected;             /* peername is true: send() */
    char started;               /* protocol attached */
    char read_started;          /* connection_made ran (asyncio adds the reader then) */
    char reading;               /* watching for datagrams: read_started, not
                                 * closing, not paused */
    char paused;                /* pause_reading() */
    char read_scheduled;        /* a deferred read_ready is in the ready queue */
    char closing;
    char protocol_paused;
    char lost_called;
} tc_udp;

static PyObject *udp_sockaddr_to_py(const struct sockaddr_storage *ss, socklen_t len);

/* ------------------------------------------------------------------ errors */

/* Hand the exception object `exc` (borrowed) to the loop's handler with
 * the transport and protocol as context. */
static void
report_exc(tc_udp *tr, PyObject *exc, const char *message)
{
    PyObject *extra = PyDict_New();
    if (extra != NULL) {
        if (PyDict_SetItemString(extra, "transport", (PyObject *)tr) < 0 ||
            PyDict_SetItemString(extra, "protocol", tr->protocol ? tr->protocol : Py_None) < 0) {
            Py_CLEAR(extra);
        }
    }
    if (extra == NULL) {
        PyErr_Clear();
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    tc_loop_report_exception(tr->loop, message, extra);
    Py_XDECREF(extra);
}

/* Report the current exception (if any) to the loop's handler. */
static void
report_current(tc_udp *tr, const char *message)
{
    PyObject *exc = tc_uvio_fetch_exception();
    if (exc != NULL) {
        report_exc(tr, exc, message);
        Py_DECREF(exc);
    }
}

static int
loop_debug(tc_udp *tr)
{
    PyObject *r = PyObject_CallMethodNoArgs((PyObject *)tr->loop, tr->st->loop_transport->s_get_debug);
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

/* logger.debug(fmt, transport) (debug mode messages); never fails. */
static void
debug_log(tc_udp *tr, const char *fmt)
{
    PyObject *et, *ev, *etb, *r;
    PyErr_Fetch(&et, &ev, &etb);
    r = PyObject_CallMethod(tr->st->loop_transport->logger, "debug", "sO", fmt, (PyObject *)tr);
    if (r == NULL) {
        tc_loop_report_exception(tr->loop, "asyncio debug logging failed", NULL);
    }
    Py_XDECREF(r);
    PyErr_Restore(et, ev, etb);
}

static void force_close(tc_udp *tr, PyObject *exc);

/* asyncio's _fatal_error: `exc` borrowed.  OSErrors are only logged in debug
 * mode; anything else goes to the exception handler.  Then _force_close. */
static void
fatal_error(tc_udp *tr, PyObject *exc, const char *message)
{
    if (!PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_OSError)) {
        report_exc(tr, exc, message);
    }
    else if (loop_debug(tr)) {
        /* logger.debug("%r: %s", transport, message, exc_info=exc) */
        PyObject *meth = PyObject_GetAttrString(tr->st->loop_transport->logger, "debug");
        PyObject *args = meth ? Py_BuildValue("(sOs)", "%r: %s", (PyObject *)tr, message) : NULL;
        PyObject *kw = args ? Py_BuildValue("{sO}", "exc_info", exc) : NULL;
        PyObject *r = kw ? PyObject_Call(meth, args, kw) : NULL;
        if (r == NULL) {
            tc_loop_report_exception(tr->loop, "asyncio debug logging failed", NULL);
        }
        Py_XDECREF(r);
        Py_XDECREF(kw);
        Py_XDECREF(args);
        Py_XDECREF(meth);
    }
    force_close(tr, exc);
}

static void
fatal_error_current(tc_udp *tr, const char *message)
{
    PyObject *exc = tc_uvio_fetch_exception();
    if (exc != NULL) {
        fatal_error(tr, exc, message);
        Py_DECREF(exc);
    }
}

/* ------------------------------------------------------------- the handle */

static void poll_cb(uv_poll_t *handle, int status, int events);

static void
poll_close_cb(uv_handle_t *handle)
{
    tc_udp *tr = (tc_udp *)handle->data;
    TC_LOOP_ENTER(tr->loop);
    TC_LOOP_HANDLE_CLOSED(tr->loop);
    tr->poll_open = 0;
    Py_DECREF(tr); /* the self-reference taken in _open */
}

/* Watch what the transport needs: readable while reading, writable while
 * datagrams are queued.  A libuv error is fatal for the transport. */
static void
update_poll(tc_udp *tr)
{
    int want = (tr->reading ? UV_READABLE : 0) | (tr->qlen > 0 ? UV_WRITABLE : 0);
    int rc = 0;
    if (!tr->poll_open || tr->poll_closing || want == tr->events) {
        return;
    }
    tr->events = want;
    if (want == 0) {
        rc = uv_poll_stop(&tr->poll);
    }
    else {
        rc = uv_poll_start(&tr->poll, want, poll_cb);
    }
    if (rc < 0) {
        PyObject *exc = tc_uvio_error(rc);
        tr->events = 0;
        tr->reading = 0;
        if (exc == NULL) {
            fatal_error_current(tr, "Fatal error on datagram transport");
            return;
        }
        fatal_error(tr, exc, "Fatal error on datagram transport");
        Py_DECREF(exc);
    }
}

/* Stop watching, close the handle, then the socket object (which owns the
 * fd).  Errors of sock.close() go to the exception handler. */
static void
release(tc_udp *tr)
{
    if (tr->poll_open && !tr->poll_closing) {
        tr->poll_closing = 1;
        tr->events = 0;
        tr->reading = 0;
        tc_loop_close_handle(tr->loop, (uv_handle_t *)&tr->poll, poll_close_cb);
    }
    if (tr->sock != NULL) {
        PyObject *r = PyObject_CallMethodNoArgs(tr->sock, tr->st->loop_udp->s_close);
        if (r == NULL) {
            tc_loop_report_exception(tr->loop, "socket.close() failed", NULL);
        }
        Py_XDECREF(r);
    }
    tr->fd = -1;
    if (tr->live != NULL) {
        if (PySet_Discard(tr->live, (PyObject *)tr) < 0) {
            tc_loop_report_exception(tr->loop, "transport bookkeeping failed", NULL);
        }
        Py_CLEAR(tr->live);
    }
}

/* ------------------------------------------------------------------ queue */

static void
entry_clear(udp_entry *e)
{
    Py_CLEAR(e->data);
    Py_CLEAR(e->addr);
}

static void
queue_clear(tc_udp *tr)
{
    while (tr->qlen > 0) {
        entry_clear(&tr->q[tr->qhead]);
        tr->qhead = (tr->qhead + 1) % tr->qcap;
        tr->qlen--;
    }
    tr->qhead = 0;
    tr->bufsize = 0;
}

/* Append; steals nothing (takes new references).  -1 with MemoryError. */
static int
queue_push(tc_udp *tr, PyObject *data, PyObject *addr, const struct sockaddr_storage *sa,
           socklen_t salen, size_t counted)
{
    udp_entry *e;
    if (tr->qlen == tr->qcap) {
        size_t ncap = tr->qcap ? tr->qcap * 2 : 16, i;
        udp_entry *nq = PyMem_Calloc(ncap, sizeof(udp_entry));
        if (nq == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (i = 0; i < tr->qlen; i++) {
            nq[i] = tr->q[(tr->qhead + i) % tr->qcap];
        }
        PyMem_Free(tr->q);
        tr->q = nq;
        tr->qhead = 0;
        tr->qcap = ncap;
    }
    e = &tr->q[(tr->qhead + tr->qlen) % tr->qcap];
    e->data = Py_NewRef(data);
    e->addr = addr ? Py_NewRef(addr) : NULL;
    e->salen = salen;
    if (salen > 0) {
        memcpy(&e->sa, sa, (size_t)salen);
    }
    e->counted = counted;
    tr->qlen++;
    tr->bufsize += counted;
    return 0;
}

/* ---------------------------------------------------------- flow control */

static void
call_protocol_flow(tc_udp *tr, PyObject *name, const char *message)
{
    PyObject *r;
    if (tr->protocol == NULL) {
        return;
    }
    r = PyObject_CallMethodNoArgs(tr->protocol, name);
    if (r == NULL) {
        report_current(tr, message);
        return;
    }
    Py_DECREF(r);
}

static void
maybe_pause_protocol(tc_udp *tr)
{
    if (tr->bufsize <= tr->high || tr->protocol_paused) {
        return;
    }
    tr->protocol_paused = 1;
    call_protocol_flow(tr, tr->st->loop_transport->s_pause_writing, "protocol.pause_writing() failed");
}

static void
maybe_resume_protocol(tc_udp *tr)
{
    if (!tr->protocol_paused || tr->bufsize > tr->low) {
        return;
    }
    tr->protocol_paused = 0;
    call_protocol_flow(tr, tr->st->loop_transport->s_resume_writing, "protocol.resume_writing() failed");
}

/* -------------------------------------------------------------- lifecycle */

static int
schedule(tc_udp *tr, PyObject *fn, PyObject *arg)
{
    PyObject *args[2] = {(PyObject *)tr, arg};
    PyObject *h = tc_loop_call_soon(tr->loop, fn, args, arg ? 2 : 1, NULL);
    if (h == NULL) {
        return -1;
    }
    Py_DECREF(h);
    return 0;
}

/* asyncio's _call_connection_lost: protocol.connection_lost(exc), then the
 * socket is closed whatever happened.  -1 with the protocol's exception. */
static int
call_connection_lost(tc_udp *tr, PyObject *exc)
{
    PyObject *r = NULL, *et = NULL, *ev = NULL, *etb = NULL;
    int rc = 0;
    if (tr->lost_called) {
        return 0;
    }
    tr->lost_called = 1;
    Py_INCREF(tr);
    if (tr->protocol != NULL && tr->started) {
        r = PyObject_CallMethodOneArg(tr->protocol, tr->st->loop_transport->s_connection_lost,
                                      exc ? exc : Py_None);
        if (r == NULL) {
            rc = -1;
            PyErr_Fetch(&et, &ev, &etb);
        }
        Py_XDECREF(r);
    }
    release(tr);
    Py_CLEAR(tr->protocol);
    if (rc < 0) {
        PyErr_Restore(et, ev, etb);
    }
    Py_DECREF(tr);
    return rc;
}

/* asyncio's _force_close; `exc` borrowed, may be NULL. */
static void
force_close(tc_udp *tr, PyObject *exc)
{
    size_t size = tr->bufsize;
    if (tr->conn_lost) {
        return;
    }
    if (tr->qlen > 0) {
        queue_clear(tr);
        tr->bufsize = size; /* asyncio drops the datagrams, not its count */
    }
    tr->closing = 1;
    tr->reading = 0;
    update_poll(tr);
    tr->conn_lost++;
    if (schedule(tr, tr->st->loop_udp->fn_conn_lost, exc ? exc : Py_None) < 0) {
        tc_loop_report_exception(tr->loop, "scheduling connection_lost failed", NULL);
        if (call_connection_lost(tr, exc) < 0) {
            tc_loop_report_exception(tr->loop, "Exception in connection_lost", NULL);
        }
    }
}

/* ---------------------------------------------------------------- sending */

enum { SEND_OK = 0, SEND_AGAIN = 1, SEND_ERROR = -1 };

/* Send one datagram now.  `data` is the object the bytes (buf, len) come
 * from and `addr` the destination object (both borrowed; used when the
 * socket object must do the send); `sa`/`salen` its converted form (salen 0:
 * not converted).  SEND_ERROR leaves the exception set. */
static int
send_one(tc_udp *tr, const char *buf, size_t len, PyObject *data, PyObject *addr,
         const struct sockaddr_storage *sa, socklen_t salen)
{
    ssize_t n;
    if (tr->fd < 0) {
        PyErr_SetString(PyExc_OSError, "the socket is closed");
        return SEND_ERROR;
    }
    if (tr->connected) {
        do {
            n = send(tr->fd, buf, len, 0);
        } while (n < 0 && errno == EINTR);
    }
    else if (salen > 0) {
        do {
            n = sendto(tr->fd, buf, len, 0, (const struct sockaddr *)sa, salen);
        } while (n < 0 && errno == EINTR);
    }
    else {
        /* the socket object resolves and checks the address as the stdlib does */
        PyObject *r = PyObject_CallMethodObjArgs(tr->sock, tr->st->loop_udp->s_sendto, data,
                                                 addr ? addr : Py_None, NULL);
        if (r != NULL) {
            Py_DECREF(r);
            return SEND_OK;
        }
        if (PyErr_ExceptionMatches(PyExc_BlockingIOError) ||
            PyErr_ExceptionMatches(PyExc_InterruptedError)) {
            PyErr_Clear();
            return SEND_AGAIN;
        }
        return SEND_ERROR;
    }
    if (n >= 0) {
        return SEND_OK;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return SEND_AGAIN;
    }
    PyErr_SetFromErrno(PyExc_OSError);
    return SEND_ERROR;
}

/* A send failed with the current exception: an OSError goes to
 * protocol.error_received() (returns that call's status: -1 if it raised,
 * with its exception set), anything else is fatal (returns 0). */
static int
send_failed(tc_udp *tr)
{
    PyObject *exc = tc_uvio_fetch_exception(), *r;
    int rc = 0;
    if (exc == NULL) {
        return 0;
    }
    if (PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_OSError)) {
        if (tr->protocol != NULL) {
            r = PyObject_CallMethodOneArg(tr->protocol, tr->st->loop_udp->s_error_received, exc);
            if (r == NULL) {
                rc = -1;
            }
            Py_XDECREF(r);
        }
    }
    else {
        fatal_error(tr, exc, "Fatal write error on datagram transport");
    }
    Py_DECREF(exc);
    return rc;
}

/* Convert `addr` for the socket's family if it is a plain numeric address
 * tuple; 1 = converted into (sa, salen), 0 = leave it to the socket object.
 * Never fails. */
static int
parse_addr(tc_udp *tr, PyObject *addr, struct sockaddr_storage *sa, socklen_t *salen)
{
    PyObject *host, *port_o;
    const char *h;
    long port;
    Py_ssize_t n;
    if (addr == tr->tx_addr && tr->tx_salen > 0) {
        memcpy(sa, &tr->tx_sa, (size_t)tr->tx_salen);
        *salen = tr->tx_salen;
        return 1;
    }
    if (addr == tr->rx_addr && tr->rx_salen > 0 && tr->rx_sa.ss_family == tr->family) {
        memcpy(sa, &tr->rx_sa, (size_t)tr->rx_salen);
        *salen = tr->rx_salen;
        return 1;
    }
    if (!PyTuple_CheckExact(addr) || (tr->family != AF_INET && tr->family != AF_INET6)) {
        return 0;
    }
    n = PyTuple_GET_SIZE(addr);
    if (n < 2 || n > (tr->family == AF_INET ? 2 : 4)) {
        return 0;
    }
    host = PyTuple_GET_ITEM(addr, 0);
    port_o = PyTuple_GET_ITEM(addr, 1);
    if (!PyUnicode_CheckExact(host) || !PyLong_CheckExact(port_o)) {
        return 0;
    }
    port = PyLong_AsLong(port_o);
    if (port < 0 || port > 65535) {
        PyErr_Clear();
        return 0;
    }
    h = PyUnicode_AsUTF8(host);
    if (h == NULL) {
        PyErr_Clear();
        return 0;
    }
    memset(sa, 0, sizeof(*sa));
    if (tr->family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)sa;
        if (inet_pton(AF_INET, h, &a->sin_addr) != 1) {
            return 0;
        }
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        *salen = sizeof(*a);
    }
    else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)sa;
        unsigned long flowinfo = 0, scope_id = 0;
        if (n > 2) {
            PyObject *f = PyTuple_GET_ITEM(addr, 2);
            if (!PyLong_CheckExact(f)) {
                return 0;
            }
            flowinfo = PyLong_AsUnsignedLong(f);
            if (flowinfo == (unsigned long)-1 || flowinfo > 0xfffff) {
                PyErr_Clear();
                return 0; /* the socket object raises the stdlib's error */
            }
        }
        if (n > 3) {
            PyObject *s = PyTuple_GET_ITEM(addr, 3);
            if (!PyLong_CheckExact(s)) {
                return 0;
            }
            scope_id = PyLong_AsUnsignedLong(s);
            if (scope_id == (unsigned long)-1 || scope_id > 0xffffffffUL) {
                PyErr_Clear();
                return 0;
            }
        }
        if (inet_pton(AF_INET6, h, &a->sin6_addr) != 1) {
            return 0;
        }
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        a->sin6_flowinfo = htonl((uint32_t)flowinfo);
        a->sin6_scope_id = (uint32_t)scope_id;
        *salen = sizeof(*a);
    }
    Py_INCREF(addr);
    Py_XSETREF(tr->tx_addr, addr);
    memcpy(&tr->tx_sa, sa, (size_t)*salen);
    tr->tx_salen = *salen;
    return 1;
}

static PyObject *
udp_sendto(tc_udp *tr, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    /* sendto(data, addr=None) */
    PyObject *data, *addr = Py_None, *copy = NULL;
    Py_buffer view;
    struct sockaddr_storage sa;
    socklen_t salen = 0;
    int rc;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0, i;
    if (nargs + nkw < 1 || nargs + nkw > 2 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "sendto(data, addr=None)");
        return NULL;
    }
    data = nargs > 0 ? args[0] : NULL;
    if (nargs > 1) {
        addr = args[1];
    }
    for (i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(k, "data") == 0 && data == NULL) {
            data = args[nargs + i];
        }
        else if (PyUnicode_CompareWithASCIIString(k, "addr") == 0 && nargs < 2) {
            addr = args[nargs + i];
        }
        else {
            PyErr_Format(PyExc_TypeError, "sendto() got an unexpected keyword argument %R", k);
            return NULL;
        }
    }
    if (data == NULL) {
        PyErr_SetString(PyExc_TypeError, "sendto() missing required argument 'data'");
        return NULL;
    }
    if (!PyBytes_Check(data) && !PyByteArray_Check(data) && !PyMemoryView_Check(data)) {
        PyErr_Format(PyExc_TypeError,
                     "data argument must be a bytes-like object, not '%.200s'",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
#if !UDP_SEND_EMPTY
    if (view.len == 0) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
#endif
    if (tr->address != NULL) {
        if (addr != Py_None) {
            int eq = PyObject_RichCompareBool(Py_None, addr, Py_EQ);
            if (eq == 0) {
                eq = PyObject_RichCompareBool(tr->address, addr, Py_EQ);
            }
            if (eq < 0) {
                goto fail;
            }
            if (!eq) {
                PyErr_Format(PyExc_ValueError, "Invalid address: must be None or %S",
                             tr->address);
                goto fail;
            }
        }
        addr = tr->address;
        if (tr->conn_lost) {
            goto lost;
        }
    }
    if (tr->lost_called) {
        /* the socket is closed already */
        goto lost;
    }
    if (!tr->connected) {
        parse_addr(tr, addr, &sa, &salen);
    }
    if (tr->qlen == 0) {
        rc = send_one(tr, view.buf, (size_t)view.len, data, addr, &sa, salen);
        if (rc == SEND_OK) {
            PyBuffer_Release(&view);
            Py_RETURN_NONE;
        }
        if (rc == SEND_ERROR) {
            PyBuffer_Release(&view);
            if (send_failed(tr) < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    /* queue an immutable copy */
    if (PyBytes_CheckExact(data)) {
        copy = Py_NewRef(data);
    }
    else {
        copy = PyBytes_FromStringAndSize(view.buf, view.len);
        if (copy == NULL) {
            goto fail;
        }
    }
    if (queue_push(tr, copy, tr->connected ? NULL : addr, &sa, salen,
                   (size_t)view.len + UDP_HEADER_SIZE) < 0) {
        goto fail;
    }
    Py_DECREF(copy);
    PyBuffer_Release(&view);
    update_poll(tr);
    maybe_pause_protocol(tr);
    Py_RETURN_NONE;
lost:
    PyBuffer_Release(&view);
    if (tr->conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
        PyObject *r = PyObject_CallMethodOneArg(tr->st->loop_transport->logger, tr->st->loop_transport->s_warning,
                                                tr->st->loop_udp->s_socket_send_warning);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    tr->conn_lost++;
    Py_RETURN_NONE;
fail:
    Py_XDECREF(copy);
    PyBuffer_Release(&view);
    return NULL;
}

/* asyncio's _sendto_ready */
static void
write_ready(tc_udp *tr)
{
    while (tr->qlen > 0) {
        udp_entry e = tr->q[tr->qhead]; /* the references move into `e` */
        int rc;
        tr->qhead = (tr->qhead + 1) % tr->qcap;
        tr->qlen--;
        tr->bufsize -= e.counted;
        rc = send_one(tr, PyBytes_AS_STRING(e.data), (size_t)PyBytes_GET_SIZE(e.data), e.data,
                      e.addr, &e.sa, e.salen);
        if (rc == SEND_AGAIN) {
            /* put it back in front */
            tr->qhead = (tr->qhead + tr->qcap - 1) % tr->qcap;
            tr->qlen++;
            tr->bufsize += e.counted;
            return;
        }
        entry_clear(&e);
        if (rc == SEND_ERROR) {
            if (send_failed(tr) < 0) {
                report_current(tr, "Exception in callback of the datagram transport");
            }
            return; /* as asyncio: the rest waits for the next writable event */
        }
    }
    maybe_resume_protocol(tr); /* may queue more */
    if (tr->qlen == 0) {
        update_poll(tr);
        if (tr->closing && !tr->lost_called) {
            if (call_connection_lost(tr, NULL) < 0) {
                report_current(tr, "Exception in connection_lost");
            }
        }
    }
}

/* ---------------------------------------------------------------- reading */

/* The address tuple of the sender in (ss, len): the cached one when the
 * sender is the same as last time.  New reference or NULL with an exception. */
static PyObject *
rx_address(tc_udp *tr, const struct sockaddr_storage *ss, socklen_t len)
{
    PyObject *a;
    if (tr->rx_addr != NULL && len == tr->rx_salen && len > 0 &&
        memcmp(ss, &tr->rx_sa, (size_t)len) == 0) {
        return Py_NewRef(tr->rx_addr);
    }
    a = udp_sockaddr_to_py(ss, len);
    if (a == NULL) {
        return NULL;
    }
    if (len > 0 && (size_t)len <= sizeof(tr->rx_sa)) {
        Py_XSETREF(tr->rx_addr, Py_NewRef(a));
        memcpy(&tr->rx_sa, ss, (size_t)len);
        tr->rx_salen = len;
    }
    return a;
}

/* recvfrom() failed with errno: EAGAIN ends the read; any other error goes
 * to protocol.error_received() (asyncio: one error per readiness event). */
static void
read_failed(tc_udp *tr)
{
    PyObject *exc, *r;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
    }
    PyErr_SetFromErrno(PyExc_OSError);
    exc = tc_uvio_fetch_exception();
    if (exc == NULL) {
        return;
    }
    if (tr->protocol != NULL) {
        r = PyObject_CallMethodOneArg(tr->protocol, tr->st->loop_udp->s_error_received, exc);
        if (r == NULL) {
            report_current(tr, "Exception in callback of the datagram transport");
        }
        Py_XDECREF(r);
    }
    Py_DECREF(exc);
}

/* Read the datagrams waiting (at most UDP_READS_PER_EVENT) and hand them to
 * datagram_received().  UDP sockets read up to UDP_BATCH at once with
 * recvmmsg() into UDP_SLOT-byte slots of the shared read buffer (a UDP
 * payload is at most 65,527 bytes), and a short batch means the queue is
 * empty: no last call that fails with EAGAIN.  Unix datagram sockets read
 * one datagram of up to the whole buffer per recvfrom(), as asyncio (their
 * datagrams can be larger).  Every datagram of a batch is copied out of the
 * shared buffer before any Python code runs. */
static void
read_ready(tc_udp *tr)
{
    char *buf = tr->st->loop->readbuf; /* lent while no Python code runs */
    int total = 0;
    while (total < UDP_READS_PER_EVENT && tr->reading && !tr->conn_lost && tr->fd >= 0) {
        struct sockaddr_storage ss[UDP_BATCH];
        socklen_t sslen[UDP_BATCH];
        size_t len[UDP_BATCH];
        PyObject *datas[UDP_BATCH], *addrs[UDP_BATCH];
        int got, k, more;
        if (tr->family == AF_INET || tr->family == AF_INET6) {
            struct mmsghdr msgs[UDP_BATCH];
            struct iovec iov[UDP_BATCH];
            memset(msgs, 0, sizeof(msgs));
            for (k = 0; k < UDP_BATCH; k++) {
                iov[k].iov_base = buf + (size_t)k * UDP_SLOT;
                iov[k].iov_len = UDP_SLOT;
                msgs[k].msg_hdr.msg_iov = &iov[k];
                msgs[k].msg_hdr.msg_iovlen = 1;
                msgs[k].msg_hdr.msg_name = &ss[k];
                msgs[k].msg_hdr.msg_namelen = sizeof(ss[k]);
            }
            do {
                got = recvmmsg(tr->fd, msgs, UDP_BATCH, 0, NULL);
            } while (got < 0 && errno == EINTR);
            for (k = 0; k < got; k++) {
                sslen[k] = msgs[k].msg_hdr.msg_namelen;
                len[k] = msgs[k].msg_len;
            }
            more = got == UDP_BATCH;
        }
        else {
            ssize_t n;
            sslen[0] = sizeof(ss[0]);
            do {
                n = recvfrom(tr->fd, buf, TC_UVIO_READ_BUF_SIZE, 0, (struct sockaddr *)&ss[0],
                             &sslen[0]);
            } while (n < 0 && errno == EINTR);
            got = n < 0 ? -1 : 1;
            len[0] = n < 0 ? 0 : (size_t)n;
            more = 1;
        }
        if (got < 0) {
            read_failed(tr);
            return;
        }
        /* copy every datagram out of the shared buffer first */
        for (k = 0; k < got; k++) {
            datas[k] = PyBytes_FromStringAndSize(buf + (size_t)k * UDP_SLOT, (Py_ssize_t)len[k]);
            addrs[k] = datas[k] ? rx_address(tr, &ss[k], sslen[k]) : NULL;
            if (addrs[k] == NULL) {
                int j;
                Py_XDECREF(datas[k]);
                for (j = 0; j < k; j++) {
                    Py_DECREF(datas[j]);
                    Py_DECREF(addrs[j]);
                }
                fatal_error_current(tr, "Fatal read error on datagram transport");
                return;
            }
        }
        for (k = 0; k < got; k++) {
            /* the protocol may close the transport on the way: the rest of
             * the batch is dropped, as asyncio would not have read it */
            if (tr->protocol != NULL && tr->reading && !tr->conn_lost) {
                PyObject *r, *callargs[3] = {tr->protocol, datas[k], addrs[k]};
                r = PyObject_VectorcallMethod(tr->st->loop_udp->s_datagram_received, callargs,
                                              3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
                if (r == NULL) {
                    report_current(tr, "Exception in callback of the datagram transport");
                }
                Py_XDECREF(r);
            }
            Py_DECREF(addrs[k]);
            Py_DECREF(datas[k]);
        }
        total += got;
        if (!more) {
            return;
        }
    }
}

static void
poll_cb(uv_poll_t *handle, int status, int events)
{
    tc_udp *tr = (tc_udp *)handle->data;
    TC_LOOP_ENTER(tr->loop);
    if (tr->poll_closing) {
        return;
    }
    Py_INCREF(tr);
    if (status == UV_EBADF) {
        /* libuv's word for POLLERR (it has stopped watching): a pending
         * socket error, such as the ECONNREFUSED an ICMP port-unreachable
         * leaves on a connected UDP socket.  As asyncio's selector does,
         * treat it as readable and writable: recvfrom()/send() return the
         * error (and clear it), it goes to error_received(); then watch
         * again. */
        tr->events = 0;
        if (tr->reading) {
            read_ready(tr);
        }
        if (tr->qlen > 0 && !tr->lost_called) {
            write_ready(tr);
        }
        update_poll(tr);
        goto done;
    }
    if (status < 0) {
        PyObject *exc = tc_uvio_error(status);
        if (exc == NULL) {
            fatal_error_current(tr, "Fatal error on datagram transport");
        }
        else {
            fatal_error(tr, exc, "Fatal error on datagram transport");
            Py_DECREF(exc);
        }
        goto done;
    }
    if ((events & UV_READABLE) && tr->reading) {
        if (tr->loop->ready_len == 0) {
            read_ready(tr);
        }
        else if (!tr->read_scheduled) {
            /* asyncio queues an I/O callback behind the callbacks already
             * ready: so must we, when there are any (a task started just
             * before may be about to wait for this datagram) */
            if (schedule(tr, tr->st->loop_udp->fn_read_ready, NULL) < 0) {
                report_current(tr, "scheduling a datagram read failed");
            }
            else {
                tr->read_scheduled = 1;
            }
        }
    }
    if ((events & UV_WRITABLE) && tr->qlen > 0 && !tr->lost_called) {
        write_ready(tr);
    }
done:
    Py_DECREF(tr);
}

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
            tc_loop_close_handle(tr->loop, (uv_handle_t *)&tr->poll, poll_close_cb);
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
    if (schedule(tr, tr->st->loop_udp->fn_conn_made, NULL) < 0) {
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
    release(tr);
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
    queue_clear(tr);
    release(tr);
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
    update_poll(tr);
    if (tr->qlen == 0) {
        tr->conn_lost++;
        if (schedule(tr, tr->st->loop_udp->fn_conn_lost, Py_None) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
udp_abort(tc_udp *tr, PyObject *Py_UNUSED(ignored))
{
    force_close(tr, NULL);
    Py_RETURN_NONE;
}

static PyObject *
udp_force_close(tc_udp *tr, PyObject *exc)
{
    force_close(tr, exc == Py_None ? NULL : exc);
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
    update_poll(tr);
    if (loop_debug(tr)) {
        debug_log(tr, "%r pauses reading");
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
    update_poll(tr);
    if (loop_debug(tr)) {
        debug_log(tr, "%r resumes reading");
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
    maybe_pause_protocol(tr);
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
        update_poll(tr);
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
        read_ready(tr); /* reports its own errors */
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
    if (call_connection_lost((tc_udp *)args[0], args[1] == Py_None ? NULL : args[1]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------- addresses */

/* The Python form of a socket address, as the socket module gives it
 * (recvfrom, getsockname): tc_uvio_sockaddr_to_py (loop/uvio.h), and for a
 * family it does not know (family, raw address bytes), as the socket
 * module's fallback.  New reference or NULL with an exception. */
static PyObject *
udp_sockaddr_to_py(const struct sockaddr_storage *ss, socklen_t len)
{
    if (len > 0 && ss->ss_family != AF_INET && ss->ss_family != AF_INET6 &&
        ss->ss_family != AF_UNIX) {
        return Py_BuildValue("(iy#)", (int)ss->ss_family, ((const struct sockaddr *)ss)->sa_data,
                             (Py_ssize_t)sizeof(((const struct sockaddr *)ss)->sa_data));
    }
    return tc_uvio_sockaddr_to_py(ss, len);
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
    queue_clear(tr);
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
    {"sendto", (PyCFunction)(void (*)(void))udp_sendto, METH_FASTCALL | METH_KEYWORDS,
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

#define INTERN(field, text)                                          \
    do {                                                             \
        if ((us->field = PyUnicode_InternFromString(text)) == NULL) { \
            return -1;                                               \
        }                                                            \
    } while (0)

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
    INTERN(s_datagram_received, "datagram_received");
    INTERN(s_error_received, "error_received");
    INTERN(s_sendto, "sendto");
    INTERN(s_close, "close");
    INTERN(s_socket_send_warning, "socket.send() raised exception.");
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
    Py_CLEAR(us->s_datagram_received);
    Py_CLEAR(us->s_error_received);
    Py_CLEAR(us->s_sendto);
    Py_CLEAR(us->s_close);
    Py_CLEAR(us->s_socket_send_warning);
}
