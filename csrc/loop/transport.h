/* Private header of the loop component's stream transports (TCP and Unix
 * sockets on uv_tcp_t / uv_pipe_t) and servers.  Only csrc/loop/ includes it
 * directly, and module.c, which lays every component's part of the module
 * state out (see state.h).
 *
 * Objects (all heap types, see transport.c and server.c):
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

#include <uv.h>

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
