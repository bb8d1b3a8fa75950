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
 * when callbacks were already ready when the poll started
 * (tc_loop_hold_io): then the read is queued behind them (tc_loop_call_io),
 * as asyncio queues every I/O callback.
 *
 * Addresses: sendto() converts a numeric (host, port[, flowinfo[, scope_id]])
 * tuple for the socket's family itself; anything else (host names, '',
 * '<broadcast>', Unix paths, bad values) goes through the socket object's own
 * sendto(), so resolution and error messages are the stdlib's.  The last
 * sender's address tuple is kept with its raw form: a datagram from the same
 * peer gets the same tuple object, and sending back to that object needs no
 * conversion (an echo server converts nothing).
 *
 * This file is the transport's I/O: the poll handle, the send queue, flow
 * control, the lifecycle, sendto() itself and reading.  Its Python face --
 * the other methods, the type, the module-level callbacks and the exec --
 * is udp_py.c; the struct and what the two share are in udp.h.
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

/* ------------------------------------------------------------------ errors */

/* The plumbing shared with the stream transport (loop/transport.h). */
static inline void
report_exc(tc_udp *tr, PyObject *exc, const char *message)
{
    tc_loop_tr_report(tr->loop, (PyObject *)tr, tr->protocol, exc, message, 1);
}

/* Report the current exception (if any) to the loop's handler. */
static inline void
report_current(tc_udp *tr, const char *message)
{
    tc_loop_tr_report_current(tr->loop, (PyObject *)tr, tr->protocol, message);
}


/* asyncio's _fatal_error: `exc` borrowed.  OSErrors are only logged in debug
 * mode; anything else goes to the exception handler.  Then _force_close. */
static void
fatal_error(tc_udp *tr, PyObject *exc, const char *message)
{
    if (!PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_OSError)) {
        report_exc(tr, exc, message);
    }
    else if (tc_loop_udp_loop_debug(tr)) {
        tc_loop_udp_debug_log(tr, "%r: %s", message, exc);
    }
    tc_loop_udp_force_close(tr, exc);
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

void
tc_loop_udp_poll_close_cb(uv_handle_t *handle)
{
    tc_udp *tr = (tc_udp *)handle->data;
    TC_LOOP_ENTER(tr->loop);
    TC_LOOP_HANDLE_CLOSED(tr->loop);
    tr->poll_open = 0;
    Py_DECREF(tr); /* the self-reference taken in _open */
}

/* Watch what the transport needs: readable while reading, writable while
 * datagrams are queued.  A libuv error is fatal for the transport. */
void
tc_loop_udp_update_poll(tc_udp *tr)
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
void
tc_loop_udp_release(tc_udp *tr)
{
    if (tr->poll_open && !tr->poll_closing) {
        tr->poll_closing = 1;
        tr->events = 0;
        tr->reading = 0;
        tc_loop_close_handle(tr->loop, (uv_handle_t *)&tr->poll, tc_loop_udp_poll_close_cb);
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

void
tc_loop_udp_queue_clear(tc_udp *tr)
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

/* Inline where the write path calls it (the common case is one comparison);
 * the other file uses the function below. */
static inline void
maybe_pause_protocol(tc_udp *tr)
{
    if (tr->bufsize <= tr->high || tr->protocol_paused) {
        return;
    }
    tr->protocol_paused = 1;
    tc_loop_tr_call_flow(tr->loop, (PyObject *)tr, tr->protocol,
                         tr->st->loop_transport->s_pause_writing,
                         "protocol.pause_writing() failed");
}

void
tc_loop_udp_maybe_pause_protocol(tc_udp *tr)
{
    maybe_pause_protocol(tr);
}

static void
maybe_resume_protocol(tc_udp *tr)
{
    if (!tr->protocol_paused || tr->bufsize > tr->low) {
        return;
    }
    tr->protocol_paused = 0;
    tc_loop_tr_call_flow(tr->loop, (PyObject *)tr, tr->protocol,
                         tr->st->loop_transport->s_resume_writing,
                         "protocol.resume_writing() failed");
}

/* -------------------------------------------------------------- lifecycle */

/* asyncio's _call_connection_lost: protocol.connection_lost(exc), then the
 * socket is closed whatever happened.  -1 with the protocol's exception. */
int
tc_loop_udp_call_connection_lost(tc_udp *tr, PyObject *exc)
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
    tc_loop_udp_release(tr);
    Py_CLEAR(tr->protocol);
    if (rc < 0) {
        PyErr_Restore(et, ev, etb);
    }
    Py_DECREF(tr);
    return rc;
}

/* asyncio's _force_close; `exc` borrowed, may be NULL. */
void
tc_loop_udp_force_close(tc_udp *tr, PyObject *exc)
{
    size_t size = tr->bufsize;
    if (tr->conn_lost) {
        return;
    }
    if (tr->qlen > 0) {
        tc_loop_udp_queue_clear(tr);
        tr->bufsize = size; /* asyncio drops the datagrams, not its count */
    }
    tr->closing = 1;
    tr->reading = 0;
    tc_loop_udp_update_poll(tr);
    tr->conn_lost++;
    if (tc_loop_udp_schedule(tr, tr->st->loop_udp->fn_conn_lost, exc ? exc : Py_None) < 0) {
        tc_loop_report_exception(tr->loop, "scheduling connection_lost failed", NULL);
        if (tc_loop_udp_call_connection_lost(tr, exc) < 0) {
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

PyObject *
tc_loop_udp_sendto(tc_udp *tr, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
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
    tc_loop_udp_update_poll(tr);
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
        tc_loop_udp_update_poll(tr);
        if (tr->closing && !tr->lost_called) {
            if (tc_loop_udp_call_connection_lost(tr, NULL) < 0) {
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
void
tc_loop_udp_read_ready(tc_udp *tr)
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
            tc_loop_udp_read_ready(tr);
        }
        if (tr->qlen > 0 && !tr->lost_called) {
            write_ready(tr);
        }
        tc_loop_udp_update_poll(tr);
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
        if (!tc_loop_hold_io(tr->loop) && !tr->read_scheduled) {
            tc_loop_udp_read_ready(tr);
        }
        else if (!tr->read_scheduled) {
            /* asyncio queues an I/O callback behind the callbacks already
             * ready: so must we, when there are any (a task started just
             * before may be about to wait for this datagram) */
            PyObject *arg = (PyObject *)tr;
            if (tc_loop_call_io(tr->loop, tr->st->loop_udp->fn_read_ready, &arg, 1) < 0) {
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

