/* The libuv stream plumbing shared by the transports, servers and IOStream:
 * handles, the write queue, the shared read buffer, socket addresses, libuv
 * error mapping.  The contract (and the ownership rules) is in loop/uvio.h. */
#include "loop/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/un.h>

/* ------------------------------------------------------------ handles */

int
tc_uvio_handle_init(tc_uvio_handle *h, uv_loop_t *uv, int kind)
{
    return kind == TC_UVIO_TCP ? uv_tcp_init(uv, &h->tcp) : uv_pipe_init(uv, &h->pipe, 0);
}

int
tc_uvio_handle_open(tc_uvio_handle *h, int kind, int fd)
{
    return kind == TC_UVIO_TCP ? uv_tcp_open(&h->tcp, (uv_os_sock_t)fd)
                               : uv_pipe_open(&h->pipe, (uv_file)fd);
}

int
tc_uvio_sock_fd(tc_loop *loop, PyObject *sock)
{
    PyObject *o = PyObject_CallMethodNoArgs(sock, loop->ls->str_fileno);
    long fd;
    if (o == NULL) {
        return -1;
    }
    fd = PyLong_AsLong(o);
    Py_DECREF(o);
    if (fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "the socket is closed");
        return -1;
    }
    if (fd > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "fd out of range");
        return -1;
    }
    return (int)fd;
}

/* -------------------------------------------------------- write queue */

/* Room for `need` bytes in *buf (PyMem, doubling from 512 bytes: a small
 * response stays in one of PyMem's small blocks). */
static int
grow(char **buf, size_t *cap, size_t need)
{
    size_t ncap;
    char *nb;
    if (need <= *cap) {
        return 0;
    }
    ncap = *cap ? *cap : 512;
    while (ncap < need) {
        ncap *= 2;
    }
    nb = PyMem_Realloc(*buf, ncap);
    if (nb == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* Nothing in flight and nothing pending: free both buffers and the write
 * request, so that a connection waiting for its next request holds no write
 * memory (allocated again, right-sized, by the next write the kernel does not
 * take at once or the next corked batch). */
static void
release_if_empty(tc_uvio_wq *wq)
{
    if (!wq->inflight && wq->pend_len == 0 && wq->rem_len == 0) {
        tc_uvio_wq_free(wq);
    }
}

/* Make (base, len) the write in flight, the first TC_UVIO_WRITE_CHUNK bytes
 * now and the rest from tc_uvio_wq_next(). */
static int
issue(tc_uvio_wq *wq, uv_stream_t *stream, char *base, size_t len, uv_write_cb cb, void *owner)
{
    uv_buf_t b;
    int rc;
    if (len > TC_UVIO_WRITE_CHUNK) {
        wq->rem_base = base + TC_UVIO_WRITE_CHUNK;
        wq->rem_len = len - TC_UVIO_WRITE_CHUNK;
        len = TC_UVIO_WRITE_CHUNK;
    }
    else {
        wq->rem_base = NULL;
        wq->rem_len = 0;
    }
    if (wq->req == NULL) {
        wq->req = PyMem_Malloc(sizeof(uv_write_t));
        if (wq->req == NULL) {
            return UV_ENOMEM; /* a write error for the owner, as libuv's own */
        }
    }
    b = uv_buf_init(base, (unsigned int)len); /* uv_write copies the uv_buf_t */
    wq->req->data = owner;
    rc = uv_write(wq->req, stream, &b, 1, cb);
    if (rc == 0) {
        wq->inflight = 1;
        wq->inflight_len = len;
#ifdef TC_COUNT_HANDLES
        wq->ls->live_requests++; /* the owner's write_cb counts it done */
#endif
    }
    return rc;
}

/* The pending bytes from offset `off` on become the write in flight (none
 * is); `pend` is emptied either way. */
static int
issue_pend(tc_uvio_wq *wq, uv_stream_t *stream, size_t off, uv_write_cb cb, void *owner)
{
    char *tmp;
    size_t tcap;
    int rc;
    /* swap: the pending bytes go out from `heap`, the old heap takes the
     * next pending ones */
    tmp = wq->heap;
    tcap = wq->heap_cap;
    wq->heap = wq->pend;
    wq->heap_cap = wq->pend_cap;
    wq->pend = tmp;
    wq->pend_cap = tcap;
    rc = issue(wq, stream, wq->heap + off, wq->pend_len - off, cb, owner);
    wq->pend_len = 0;
    return rc;
}

int
tc_uvio_wq_flush(tc_uvio_wq *wq, uv_stream_t *stream, uv_write_cb cb, void *owner)
{
    if (wq->pend_len == 0 || wq->inflight) {
        return 0;
    }
    return issue_pend(wq, stream, 0, cb, owner);
}

int
tc_uvio_wq_send_pend(tc_uvio_wq *wq, uv_stream_t *stream, uv_write_cb cb, void *owner,
                     size_t *taken)
{
    uv_buf_t b;
    int r;
    *taken = 0;
    if (wq->pend_len == 0 || wq->inflight) {
        return 0;
    }
    b = tc_uvio_region(wq->pend, wq->pend_len);
    r = uv_try_write(stream, &b, 1);
    if (r == UV_EAGAIN || r == UV_ENOSYS) {
        r = 0;
    }
    else if (r < 0) {
        wq->pend_len = 0;
        release_if_empty(wq);
        return r;
    }
    *taken = (size_t)r;
    if ((size_t)r == wq->pend_len) {
        wq->pend_len = 0;
        release_if_empty(wq);
        return 0;
    }
    return issue_pend(wq, stream, (size_t)r, cb, owner);
}

int
tc_uvio_wq_rest(tc_uvio_wq *wq, uv_stream_t *stream, const uv_buf_t *bufs, unsigned int nbufs,
                size_t total, size_t n, PyObject *keep, uv_write_cb cb, void *owner)
{
    size_t rem = total - n, skip = n, off = 0;
    unsigned int i;
    int r;
    if (nbufs == 1 && keep != NULL) {
        Py_INCREF(keep);
        wq->obj = keep;
        r = issue(wq, stream, bufs[0].base + n, rem, cb, owner);
    }
    else if (nbufs == 2 && keep != NULL && n >= bufs[0].len) {
        /* a header and its payload: the header is gone, the rest of the
         * payload (backed by keep) goes out from where it is */
        Py_INCREF(keep);
        wq->obj = keep;
        r = issue(wq, stream, bufs[1].base + (n - bufs[0].len), rem, cb, owner);
    }
    else {
        if (grow(&wq->heap, &wq->heap_cap, rem) < 0) {
            return 1; /* MemoryError set */
        }
        for (i = 0; i < nbufs; i++) {
            size_t len = nbufs == 1 ? total : bufs[i].len;
            if (skip >= len) {
                skip -= len;
                continue;
            }
            memcpy(wq->heap + off, bufs[i].base + skip, len - skip);
            off += len - skip;
            skip = 0;
        }
        r = issue(wq, stream, wq->heap, rem, cb, owner);
    }
    if (r < 0) {
        Py_CLEAR(wq->obj);
        return r;
    }
    return 0;
}

int
tc_uvio_wq_append(tc_uvio_wq *wq, const uv_buf_t *bufs, unsigned int nbufs, size_t total)
{
    unsigned int i;
    if (grow(&wq->pend, &wq->pend_cap, wq->pend_len + total) < 0) {
        return -1;
    }
    for (i = 0; i < nbufs; i++) {
        size_t len = nbufs == 1 ? total : bufs[i].len;
        memcpy(wq->pend + wq->pend_len, bufs[i].base, len);
        wq->pend_len += len;
    }
    return 0;
}

int
tc_uvio_wq_next(tc_uvio_wq *wq, uv_stream_t *stream, uv_write_cb cb, void *owner)
{
    if (wq->rem_len > 0) {
        /* next piece of the same region (obj, if any, still holds it) */
        int rc = issue(wq, stream, wq->rem_base, wq->rem_len, cb, owner);
        if (rc < 0) {
            wq->rem_len = 0;
            Py_CLEAR(wq->obj);
            return rc;
        }
        return 1;
    }
    int rc = tc_uvio_wq_flush(wq, stream, cb, owner);
    release_if_empty(wq);
    return rc;
}

void
tc_uvio_wq_free(tc_uvio_wq *wq)
{
    PyMem_Free(wq->heap);
    wq->heap = NULL;
    wq->heap_cap = 0;
    PyMem_Free(wq->pend);
    wq->pend = NULL;
    wq->pend_cap = wq->pend_len = 0;
    PyMem_Free(wq->req);  /* not in flight: see the callers */
    wq->req = NULL;
}

/* ------------------------------------------------- connected streams */

/* family AF_UNSPEC: the handle alone (an fd is opened on it later); else a
 * TCP handle on a new socket of that family that libuv makes */
static int
conn_init(tc_uvio_conn *c, tc_loop *loop, int kind, int family, PyObject *owner,
          const char *live_error, int hold)
{
    int rc = family == AF_UNSPEC ? tc_uvio_handle_init(&c->h, loop->uv, kind)
                                 : uv_tcp_init_ex(loop->uv, &c->h.tcp, (unsigned int)family);
    if (rc < 0) {
        return rc;
    }
    c->h.handle.data = owner;
    c->loop = loop;
    c->live_error = live_error;
    tc_uvio_wq_init(&c->wq, loop->ls);
    c->open = 1;
    TC_LOOP_HANDLE_OPENED(loop);
    if (hold == TC_UVIO_HOLD_NOW) {
        Py_INCREF(owner); /* self-reference, dropped in conn_close_cb */
        c->held = 1;
    }
    return 0;
}

int
tc_uvio_conn_init(tc_uvio_conn *c, tc_loop *loop, int kind, PyObject *owner,
                  const char *live_error, int hold)
{
    return conn_init(c, loop, kind, AF_UNSPEC, owner, live_error, hold);
}

int
tc_uvio_conn_init_socket(tc_uvio_conn *c, tc_loop *loop, int family, PyObject *owner,
                         const char *live_error, int hold)
{
    if (family == AF_UNSPEC) {
        return UV_EINVAL;
    }
    return conn_init(c, loop, TC_UVIO_TCP, family, owner, live_error, hold);
}

/* The self-reference alone (closing: the close callback must find the
 * owner). */
static void
hold_self(tc_uvio_conn *c)
{
    if (!c->held) {
        Py_INCREF((PyObject *)c->h.handle.data);
        c->held = 1;
    }
}

void
tc_uvio_conn_take(tc_uvio_conn *c)
{
    PyObject *type, *value, *tb, *live;
    PyObject *owner = (PyObject *)c->h.handle.data;
    if (c->held || !c->open || c->closing) {
        return;
    }
    hold_self(c);
    if (c->live != NULL) {
        return; /* the owner's creator put it in a live set already */
    }
    PyErr_Fetch(&type, &value, &tb);
    live = Py_XNewRef(c->loop->live);
    if (live == NULL) {
        live = PyObject_CallMethod((PyObject *)c->loop, "_tc_live", NULL);
        if (live == NULL) {
            PyErr_Clear(); /* a loop without the bookkeeping: nothing to join */
        }
        else if (PySet_Check(live)) {
            c->loop->live = Py_NewRef(live); /* the loop's one set: asked once */
        }
    }
    if (live != NULL && PySet_Check(live)) {
        if (PySet_Add(live, owner) < 0) {
            tc_loop_report_exception(c->loop, c->live_error, NULL);
        }
        else {
            c->live = live; /* the new reference moves into the conn */
            live = NULL;
        }
    }
    Py_XDECREF(live);
    PyErr_Restore(type, value, tb);
}

static void
conn_close_cb(uv_handle_t *handle)
{
    tc_uvio_conn *c = (tc_uvio_conn *)handle; /* h is the first member */
    PyObject *owner = (PyObject *)handle->data;
    TC_LOOP_ENTER(c->loop);
#ifdef TC_COUNT_HANDLES
    c->wq.ls->live_handles--;
#endif
    c->open = 0;
    tc_uvio_wq_closed(&c->wq);
    if (c->live != NULL) {
        if (PySet_Discard(c->live, owner) < 0) {
            tc_loop_report_exception(c->loop, c->live_error, NULL);
        }
        Py_CLEAR(c->live);
    }
    if (c->held) {
        c->held = 0;
        Py_DECREF(owner); /* the self-reference (tc_uvio_conn_close always takes it) */
    }
}

void
tc_uvio_conn_close(tc_uvio_conn *c)
{
    if (!c->open || c->closing) {
        return;
    }
    c->closing = 1;
    hold_self(c); /* dropped in conn_close_cb */
    if (c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = 0;
    }
    if (c->sock != NULL) {
        /* libuv closes the fd: the socket object must not do it again */
        PyObject *r = PyObject_CallMethodNoArgs(c->sock, c->loop->ls->str_detach);
        if (r == NULL) {
            tc_loop_report_exception(c->loop, "socket.detach() failed", NULL);
        }
        Py_XDECREF(r);
    }
    tc_loop_close_handle(c->loop, &c->h.handle, conn_close_cb);
}

/* -------------------------------------------------------- read buffer */

int
tc_uvio_readbuf_alloc(tc_loop_state *ls)
{
    /* Page-aligned: on some x86 CPUs (seen on AMD EPYC) the kernel's copy
     * into a destination at a page offset of 16 (where malloc puts a large
     * block) is several times slower than into an aligned one. */
    void *p = NULL;
    if (posix_memalign(&p, 4096, TC_UVIO_READ_BUF_SIZE) != 0 || p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(p, 0, TC_UVIO_READ_BUF_SIZE);
    ls->readbuf = p;
    return 0;
}

void
tc_uvio_readbuf_free(tc_loop_state *ls)
{
    free(ls->readbuf); /* posix_memalign */
    ls->readbuf = NULL;
}

/* ---------------------------------------------------------- addresses */

int
tc_uvio_parse_inet_address(int family, PyObject *address, struct sockaddr_storage *ss)
{
    const char *host;
    int port;
    unsigned int flowinfo = 0, scope_id = 0;
    int rc;
    memset(ss, 0, sizeof(*ss));
    if (!PyTuple_Check(address)) {
        PyErr_Format(PyExc_TypeError, "address must be a tuple, not %.200s",
                     Py_TYPE(address)->tp_name);
        return -1;
    }
    if (family == AF_INET) {
        if (!PyArg_ParseTuple(address, "si;AF_INET address must be (host, port)", &host, &port)) {
            return -1;
        }
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
    }
    else if (family == AF_INET6) {
        if (!PyArg_ParseTuple(address, "si|II;AF_INET6 address must be (host, port[, flowinfo[, scope_id]])",
                              &host, &port, &flowinfo, &scope_id)) {
            return -1;
        }
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
        if (rc == 0) {
            ((struct sockaddr_in6 *)ss)->sin6_flowinfo = htonl(flowinfo);
            if (scope_id) {
                ((struct sockaddr_in6 *)ss)->sin6_scope_id = scope_id;
            }
        }
    }
    else {
        PyErr_Format(PyExc_ValueError, "unsupported address family %d", family);
        return -1;
    }
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_OverflowError, "port must be 0-65535.");
        return -1;
    }
    if (rc < 0) {
        PyErr_Format(PyExc_ValueError, "not a numeric address: %R", address);
        return -1;
    }
    return 0;
}

PyObject *
tc_uvio_sockaddr_to_py(const struct sockaddr_storage *ss, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (len == 0) {
        Py_RETURN_NONE;
    }
    switch (ss->ss_family) {
    case AF_INET: {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        if (inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host)) == NULL) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        return Py_BuildValue("(si)", host, (int)ntohs(a->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host)) == NULL) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        return Py_BuildValue("(siII)", host, (int)ntohs(a->sin6_port),
                             (unsigned int)ntohl(a->sin6_flowinfo),
                             (unsigned int)a->sin6_scope_id);
    }
    case AF_UNIX: {
        const struct sockaddr_un *a = (const struct sockaddr_un *)ss;
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? (size_t)len - offsetof(struct sockaddr_un, sun_path) : 0;
        if (n > sizeof(a->sun_path)) {
            n = sizeof(a->sun_path);
        }
        if (n > 0 && a->sun_path[0] == 0) {
            return PyBytes_FromStringAndSize(a->sun_path, (Py_ssize_t)n); /* abstract */
        }
        n = strnlen(a->sun_path, n);
        return PyUnicode_DecodeFSDefaultAndSize(a->sun_path, (Py_ssize_t)n);
    }
    default:
        Py_RETURN_NONE;
    }
}

/* ------------------------------------------------------------- errors */

PyObject *
tc_uvio_error(int err)
{
    if (err < 0 && err > -1000) {
        /* libuv's UV_E* on Unix are negated errno values: OSError() picks the
         * subclass (ConnectionResetError, BrokenPipeError, ...) from errno. */
        return PyObject_CallFunction(PyExc_OSError, "is", -err, strerror(-err));
    }
    return PyObject_CallFunction(PyExc_OSError, "s", uv_strerror(err));
}

PyObject *
tc_uvio_set_error(int err)
{
    PyObject *exc = tc_uvio_error(err);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

PyObject *
tc_uvio_fetch_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}
