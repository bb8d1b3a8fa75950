/* Private header of the loop component's stream transports (TCP and Unix
 * sockets on uv_tcp_t / uv_pipe_t) and servers.  Only csrc/loop/ includes it
 * directly, and module.c, which lays every component's part of the module
 * state out (see state.h).
 *
 * Objects (all heap types, see transport.c + transport_py.c and server.c):
 *   StreamTransport  asyncio.Transport on one connected uv stream handle.
 *   Server           the C base of tornado_c._loop_streams.Server: owns the
 *                    listening handles, accepts, creates transports.
 *
 * Handles, write queue, read buffer and libuv errors come from loop/uvio.h.
 *
 * Ownership rules shared by both files:
 *   - a uv handle lives inside memory owned by its Python object (transport)
 *     or in a PyMem block (listener); that memory is released only after the
 *     handle's close callback ran;
 *   - while a handle is open the owning Python object holds one strong
 *     reference to itself (dropped in the close callback), so libuv never
 *     calls back into freed memory;
 *   - the fd of a handle belongs to libuv once the handle is opened on it; a
 *     Python socket object wrapping the same fd is detach()ed before
 *     uv_close() so the fd is closed exactly once.
 */
#ifndef TC_LOOP_TRANSPORT_H
#define TC_LOOP_TRANSPORT_H

#include "common.h"
#include "loop/loop.h"

#include <uv.h>
#include <sys/socket.h>

struct tc_state;
struct tc_loop;

typedef struct tc_loop_transport_state {
    PyTypeObject *Transport_type;
    PyTypeObject *Server_type;
    PyObject *TransportSocket;   /* asyncio.trsock.TransportSocket */
    PyObject *socket_type;       /* socket.socket */
    PyObject *BufferedProtocol;  /* asyncio.BufferedProtocol */
    PyObject *logger;            /* asyncio.log.logger */
    PyObject *fn_conn_made;      /* module-level C callables scheduled with */
    PyObject *fn_conn_lost;      /* tc_loop_call_soon (see transport.c)    */
    PyObject *fn_read_ready;     /* ... and with tc_loop_call_io: the read */
    PyObject *fn_write_done;     /* and the write completion held back      */
    /* interned method names */
    PyObject *s_connection_made, *s_connection_lost, *s_data_received,
        *s_eof_received, *s_get_buffer, *s_buffer_updated, *s_pause_writing,
        *s_resume_writing, *s_getpeername, *s_getsockname,
        *s_wakeup, *s_warning, *s_get_debug, *s_socket,
        *s_peername, *s_sockname, *s_socket_send_warning;
    PyObject *minus_one;
} tc_loop_transport_state;

typedef struct tc_transport tc_transport;
typedef struct tc_server tc_server;

/* ---- transport.c: plumbing shared by the stream and datagram transports
 * (udp.c); all borrowed references. */

/* Hand `exc` to the loop's exception handler with `message` (and with
 * {"transport", "protocol"} as context if with_ctx). */
TC_INTERNAL void tc_loop_tr_report(struct tc_loop *loop, PyObject *transport, PyObject *protocol,
                                   PyObject *exc, const char *message, int with_ctx);
/* The same with the current exception (if any), with context. */
TC_INTERNAL void tc_loop_tr_report_current(struct tc_loop *loop, PyObject *transport,
                                           PyObject *protocol, const char *message);
/* loop.get_debug() as 0/1 (errors count as 0 and are cleared). */
TC_INTERNAL int tc_loop_tr_debug_on(struct tc_loop *loop, tc_loop_transport_state *ts);
/* asyncio's debug-mode messages: logger.debug(fmt, transport[, text],
 * exc_info=exc) (text, exc may be NULL).  Only called when debug is on;
 * never fails: a logging error goes to the exception handler, the caller's
 * exception state is kept. */
TC_INTERNAL void tc_loop_tr_debug(struct tc_loop *loop, tc_loop_transport_state *ts,
                                  PyObject *transport, const char *fmt, const char *text,
                                  PyObject *exc);
/* protocol.pause_writing() / resume_writing() (`name`) if there is a
 * protocol; its exception goes to the handler with `message`. */
TC_INTERNAL void tc_loop_tr_call_flow(struct tc_loop *loop, PyObject *transport,
                                      PyObject *protocol, PyObject *name, const char *message);
/* loop.call_soon(fn, transport[, arg]): 0, or -1 with an exception set. */
TC_INTERNAL int tc_loop_tr_call_soon(struct tc_loop *loop, PyObject *fn, PyObject *transport,
                                     PyObject *arg);

/* The stream transport (transport.c, transport_py.c; server.c uses only the
 * functions below). */
enum { TR_TCP = TC_UVIO_TCP, TR_PIPE = TC_UVIO_PIPE };

struct tc_transport {
    PyObject_HEAD
    /* The type subclasses asyncio.Transport (isinstance checks work), whose
     * base declares __slots__ = ('_extra',): that slot lives here.  Unused
     * by us; checked against asyncio's layout at import. */
    PyObject *base_extra_slot;
    tc_loop_transport_state *ts;      /* borrowed: the transports' part of the module
                                 * state (the type holds the module) */
    tc_loop *loop;              /* strong */
    tc_uvio_conn io;            /* handle, write queue, sock, live (uvio.h); the
                                 * sock is created lazily for accepted
                                 * connections */
    uv_shutdown_t sreq;
    uv_connect_t creq;
    PyObject *protocol;
    PyObject *server;           /* tc_server or NULL */
    PyObject *extra;            /* dict or NULL */
    PyObject *conn_waiter;      /* future of a pending connect */
    PyObject *empty_waiter;     /* future of _make_empty_waiter() while
                                 * loop.sendfile() owns the socket, or NULL */
    PyObject *weakreflist;
    size_t high, low;
    Py_buffer rview;            /* BufferedProtocol buffer between alloc/read */
    PyObject *rexc;             /* get_buffer() failure seen in alloc_cb */
    Py_ssize_t conn_lost;       /* asyncio's _conn_lost */
    struct sockaddr_storage peer_addr, sock_addr; /* snapshot at start */
    socklen_t peer_len, sock_len;                 /* 0 = unknown */
    int kind;
    char started;               /* protocol attached */
    char closing;
    char eof;                   /* write_eof() called */
    char paused;                /* pause_reading() */
    char read_eof;
    char buffered;              /* protocol is a BufferedProtocol */
    char protocol_paused;       /* pause_writing() was called */
    char lost_called;           /* _call_connection_lost ran (or must not) */
    char shutdown_started;
    char rview_held;
    char read_held;             /* alloc_cb refused a read: the loop holds I/O back */
    char read_scheduled;        /* fn_read_ready is queued */
    char wdone_scheduled;       /* fn_write_done is queued */
};

/* ---- transport.c: the I/O, used by transport_py.c.  The names are
 * asyncio's (_SelectorTransport) where it has one. */
TC_INTERNAL int tc_loop_tr_call_connection_lost(tc_transport *tr, PyObject *exc);
TC_INTERNAL void tc_loop_tr_connect_cb(uv_connect_t *req, int status);
TC_INTERNAL void tc_loop_tr_do_shutdown(tc_transport *tr);
TC_INTERNAL void tc_loop_tr_force_close(tc_transport *tr, PyObject *exc);
TC_INTERNAL void tc_loop_tr_maybe_pause_protocol(tc_transport *tr);
TC_INTERNAL void tc_loop_tr_read_start(tc_transport *tr);
TC_INTERNAL void tc_loop_tr_read_stop(tc_transport *tr);
TC_INTERNAL void tc_loop_tr_release_rview(tc_transport *tr);
/* The reads and write completions the transport held back (see "Order" in
 * transport.c), run from the loop's queue. */
TC_INTERNAL void tc_loop_tr_read_ready(tc_transport *tr);
TC_INTERNAL void tc_loop_tr_write_done(tc_transport *tr);
/* A new transport with its handle initialised on `loop` (new reference). */
TC_INTERNAL tc_transport *tc_loop_tr_alloc(tc_loop_transport_state *ts, tc_loop *loop, int kind,
                                           PyObject *live);
TC_INTERNAL PyObject *tc_loop_tr_write(tc_transport *tr, PyObject *data);
TC_INTERNAL PyObject *tc_loop_tr_writelines(tc_transport *tr, PyObject *list_of_data);

/* The shared plumbing on a stream transport. */
static inline int
tc_loop_tr_schedule(tc_transport *tr, PyObject *fn, PyObject *arg)
{
    return tc_loop_tr_call_soon(tr->loop, fn, (PyObject *)tr, arg);
}

static inline int
tc_loop_tr_loop_debug(tc_transport *tr)
{
    return tc_loop_tr_debug_on(tr->loop, tr->ts);
}

static inline void
tc_loop_tr_debug_log(tc_transport *tr, const char *fmt, const char *text, PyObject *exc)
{
    tc_loop_tr_debug(tr->loop, tr->ts, (PyObject *)tr, fmt, text, exc);
}

/* asyncio's get_write_buffer_size(): queued and unsent bytes */
static inline size_t
tc_loop_tr_write_buffer_size(tc_transport *tr)
{
    return tc_uvio_wq_pending(&tr->io.wq, tr->io.open ? &tr->io.h.stream : NULL) +
           tr->io.wq.rem_len;
}


/* 0 if `loop` is not closed, else -1 with RuntimeError('Event loop is
 * closed') (or the error of loop.is_closed()). */
TC_INTERNAL int tc_loop_transport_check_open(PyObject *loop);

/* Create a transport for a handle the server is about to accept into.
 * Returns a new reference; the transport's handle is initialised on `loop` and
 * the transport holds its self-reference.  kind: TC_UVIO_TCP or TC_UVIO_PIPE. */
TC_INTERNAL tc_transport *tc_loop_transport_for_accept(tc_loop_transport_state *ts,
                                                       struct tc_loop *loop, int kind,
                                                       PyObject *live);
TC_INTERNAL uv_stream_t *tc_loop_transport_stream(tc_transport *tr);
/* Start an accepted transport: protocol, server (borrowed, may be NULL).
 * Schedules connection_made.  0 or -1 with an exception set (then the caller
 * must dispose the transport with tc_loop_transport_dispose). */
TC_INTERNAL int tc_loop_transport_start(tc_transport *tr, PyObject *protocol,
                                        PyObject *server, PyObject *waiter);
/* Close the handle of a transport that never started (no protocol calls). */
TC_INTERNAL void tc_loop_transport_dispose(tc_transport *tr);

/* The arguments of set_write_buffer_limits(high=None, low=None), with
 * asyncio's _FlowControlMixin rules: high defaults to 64 KiB (or 4 * low),
 * low to high // 4; ValueError unless high >= low >= 0.  0, or -1 with an
 * exception set.  Shared by the stream and datagram transports (udp.c). */
TC_INTERNAL int tc_loop_transport_parse_limits(PyObject *args, PyObject *kwds,
                                               Py_ssize_t *high, Py_ssize_t *low);

/* Called by a transport when its connection_lost ran (server bookkeeping). */
TC_INTERNAL void tc_loop_server_detach(PyObject *server);
TC_INTERNAL void tc_loop_server_attach(PyObject *server);

int tc_loop_transport_exec(PyObject *module, struct tc_state *st);
int tc_loop_transport_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_loop_transport_clear(struct tc_state *st);
int tc_loop_server_exec(PyObject *module, struct tc_state *st);

#endif /* TC_LOOP_TRANSPORT_H */
