/* Private header of the loop component's TLS fast path (loop/tls.c).
 * module.c lays out tc_loop_tls_state in the module state (state.h points at it); nothing outside
 * csrc/loop/ uses it.
 *
 * Objects: TLSProtocolBase (holds SSLProtocol's hot attributes in C fields)
 * and TLSAppTransportBase (field-less), heap types that tornado_c._loop_ssl
 * puts in front of asyncio.sslproto.SSLProtocol and _SSLProtocolTransport
 * in the MRO.  Their methods do the per-message work of the stdlib's
 * SSLProtocol in C when the connection is in its steady state, and call the
 * stdlib's own methods otherwise.  The stdlib objects they need are handed
 * over once by _loop_ssl through _core._tls_init(...) (strong references in
 * the state).
 */
#ifndef TC_LOOP_TLS_H
#define TC_LOOP_TLS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

struct tc_state;

typedef struct tc_loop_tls_state {
    PyTypeObject *Base_type;        /* tornado_c._core.TLSProtocolBase */
    PyTypeObject *AppBase_type;     /* tornado_c._core.TLSAppTransportBase */
    /* set by _tls_init(); NULL until then (every call takes the stdlib's path) */
    PyObject *py_get_buffer;        /* SSLProtocol.get_buffer (function) */
    PyObject *py_buffer_updated;    /* SSLProtocol.buffer_updated */
    PyObject *py_write_appdata;     /* SSLProtocol._write_appdata */
    PyObject *st_wrapped;           /* SSLProtocolState.WRAPPED */
    PyObject *sslobject_type;       /* ssl.SSLObject */
    PyObject *again_errors;         /* (ssl.SSLWantReadError, ssl.SSLSyscallError) */
    PyObject *fatal_message;        /* 'Fatal error on SSL protocol' */
    /* interned names */
    PyObject *s_sslobj, *s_max_size, *s_read, *s_write, *s_pending,
        *s_data_received, *s_call_eof_received, *s_start_shutdown, *s_do_write,
        *s_process_outgoing, *s_control_app_writing, *s_control_ssl_reading, *s_fatal_error,
        *s_append, *s_ssl_protocol, *s_write_appdata;
} tc_loop_tls_state;

int tc_loop_tls_exec(PyObject *module, struct tc_state *st);
int tc_loop_tls_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_loop_tls_clear(struct tc_state *st);

#endif /* TC_LOOP_TLS_H */
