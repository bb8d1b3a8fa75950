/* Private header of the loop component's datagram transports (UDP and Unix
 * datagram sockets): shared by loop/udp.c (the I/O) and loop/udp_py.c (the
 * Python face).  module.c lays out tc_loop_udp_state in the module state;
 * nothing outside csrc/loop/ uses it.
 *
 * Object: DatagramTransport (heap type, a subclass of
 * asyncio.DatagramTransport), made by tornado_c._loop_udp through
 * DatagramTransport._open(loop, sock, address, extra, live) and started with
 * _start(protocol, waiter).
 *
 * Ownership:
 *   - the transport watches its socket's fd with a uv_poll_t embedded in the
 *     object; from _open() until the poll handle's close callback the
 *     transport holds one strong reference to itself, so libuv never calls
 *     into freed memory;
 *   - the fd belongs to the Python socket object the transport holds (as in
 *     asyncio): it is closed with sock.close() after connection_lost(), once
 *     the poll handle is closed (uv_close() takes the fd out of libuv's epoll
 *     set at once, so closing the fd right after is safe).
 */
#ifndef TC_LOOP_UDP_H
#define TC_LOOP_UDP_H

#include "common.h"
#include "state.h"
#include "loop/loop.h"
#include "loop/transport.h"

#include <sys/socket.h>

struct tc_state;

typedef struct tc_loop_udp_state {
    PyTypeObject *Datagram_type;  /* tornado_c._core.DatagramTransport */
    PyObject *fn_conn_made;       /* module-level callables scheduled with */
    PyObject *fn_conn_lost;       /* tc_loop_call_soon (see udp.c)         */
    PyObject *fn_read_ready;
    PyObject *s_datagram_received, *s_error_received, *s_sendto, *s_close,
        *s_socket_send_warning;
} tc_loop_udp_state;

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

/* ---- udp.c: the I/O, used by udp_py.c (asyncio's names where it has one) */
TC_INTERNAL int tc_loop_udp_call_connection_lost(tc_udp *tr, PyObject *exc);
TC_INTERNAL void tc_loop_udp_force_close(tc_udp *tr, PyObject *exc);
TC_INTERNAL void tc_loop_udp_maybe_pause_protocol(tc_udp *tr);
TC_INTERNAL void tc_loop_udp_poll_close_cb(uv_handle_t *handle);
TC_INTERNAL void tc_loop_udp_queue_clear(tc_udp *tr);
TC_INTERNAL void tc_loop_udp_read_ready(tc_udp *tr);
TC_INTERNAL void tc_loop_udp_release(tc_udp *tr);
TC_INTERNAL PyObject *tc_loop_udp_sendto(tc_udp *tr, PyObject *const *args, Py_ssize_t nargs,
                                         PyObject *kwnames);
TC_INTERNAL void tc_loop_udp_update_poll(tc_udp *tr);

/* The plumbing shared with the stream transport (loop/transport.h). */
static inline int
tc_loop_udp_loop_debug(tc_udp *tr)
{
    return tc_loop_tr_debug_on(tr->loop, tr->st->loop_transport);
}

/* logger.debug(fmt, transport[, text], exc_info=exc) (debug mode messages). */
static inline void
tc_loop_udp_debug_log(tc_udp *tr, const char *fmt, const char *text, PyObject *exc)
{
    tc_loop_tr_debug(tr->loop, tr->st->loop_transport, (PyObject *)tr, fmt, text, exc);
}

static inline int
tc_loop_udp_schedule(tc_udp *tr, PyObject *fn, PyObject *arg)
{
    return tc_loop_tr_call_soon(tr->loop, fn, (PyObject *)tr, arg);
}

int tc_loop_udp_exec(PyObject *module, struct tc_state *st);
int tc_loop_udp_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_loop_udp_clear(struct tc_state *st);

#endif /* TC_LOOP_UDP_H */
