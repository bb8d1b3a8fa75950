/* tc_stream_connect(): a client connection opened from C (stream.h).
 *
 * The HTTP client's C fetch (csrc/http/client_fetch.c) makes its socket,
 * wraps it in a stream with tc_stream_from_fd() before it is connected, and
 * connects it here with libuv's uv_tcp_connect(): the connect, the wait for
 * writability and the SO_ERROR check are libuv's, on the handle the stream
 * reads with afterwards (one watcher, no add_writer / remove_writer round
 * trip through the loop's poll).  While the connect is in flight the stream
 * is `connecting`, as during IOStream.connect(): writes wait in the queue
 * and go out once connected.
 */
#include "stream/internal.h"

typedef struct {
    uv_connect_t req;        /* req.data unused; the request is ours */
    tc_stream *s;            /* strong until the callback */
    PyObject *owner;         /* strong until the callback */
    tc_stream_connect_cb cb;
} connect_req;

static void
on_connect(uv_connect_t *req, int status)
{
    connect_req *cr = (connect_req *)req;
    tc_stream *s = cr->s;
    PyObject *owner = cr->owner;
    tc_stream_connect_cb cb = cr->cb;
    TC_LOOP_ENTER(s->loop);
    PyMem_Free(cr);
    if (status == 0 && s->closed) {
        status = UV_ECANCELED; /* closed meanwhile (a timeout): not a connection */
    }
    if (!s->closed) {
        s->connecting = 0;
        if (status != 0) {
            /* the OSError upstream's _connect_ready builds from SO_ERROR */
            PyObject *exc = tc_uvio_error(status);
            if (exc == NULL) {
                tc_stream_report(s, "connect: building the error failed");
            }
            tc_stream_close(s, exc);
            Py_XDECREF(exc);
        }
        else {
            int rc = tc_stream_flush_pending(s);
            if (rc < 0) {
                tc_stream_write_error(s, rc);
            }
            tc_stream_update_reading(s);
        }
    }
    cb(owner, s, status);
    if (PyErr_Occurred()) {
        tc_loop_report_exception(s->loop, "connect callback failed", NULL);
    }
    Py_DECREF(owner);
    Py_DECREF(s);
}

int
tc_stream_connect(tc_stream *s, const struct sockaddr *addr, tc_stream_connect_cb cb,
                  PyObject *owner)
{
    connect_req *cr;
    int rc;
    if (s->closed || s->kind != K_TCP || !tc_stream_handle_usable(s)) {
        PyErr_SetString(PyExc_OSError, "stream is closed");
        return -1;
    }
    cr = PyMem_Malloc(sizeof(*cr));
    if (cr == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    rc = uv_tcp_connect(&cr->req, &s->io.h.tcp, addr, on_connect);
    if (rc < 0) {
        PyMem_Free(cr);
        tc_uvio_set_error(rc); /* what socket.connect() raises */
        return -1;
    }
    cr->s = (tc_stream *)Py_NewRef((PyObject *)s);
    cr->owner = Py_NewRef(owner);
    cr->cb = cb;
    s->connecting = 1;
    tc_uvio_conn_hold(&s->io);
    return 0;
}
