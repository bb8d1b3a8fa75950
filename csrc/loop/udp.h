/* Private header of the loop component's datagram transports (UDP and Unix
 * datagram sockets, loop/udp.c).  module.c lays out tc_loop_udp_state in the
 * module state; nothing outside csrc/loop/ uses it.
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

#define PY_SSIZE_T_CLEAN
#include <Python.h>

struct tc_state;

typedef struct tc_loop_udp_state {
    PyTypeObject *Datagram_type;  /* tornado_c._core.DatagramTransport */
    PyObject *fn_conn_made;       /* module-level callables scheduled with */
    PyObject *fn_conn_lost;       /* tc_loop_call_soon (see udp.c)         */
    PyObject *fn_read_ready;
    PyObject *s_datagram_received, *s_error_received, *s_sendto, *s_close,
        *s_socket_send_warning;
} tc_loop_udp_state;

int tc_loop_udp_exec(PyObject *module, struct tc_state *st);
int tc_loop_udp_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_loop_udp_clear(struct tc_state *st);

#endif /* TC_LOOP_UDP_H */
