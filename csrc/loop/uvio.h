/* loop component contract, part 2: the libuv stream plumbing shared by every
 * object that owns a connected uv stream -- the asyncio transports
 * (loop/transport.c), the listeners of their servers (loop/server.c) and the C
 * IOStream (stream/stream.c).  Included by loop.h (other components include
 * only loop.h); implemented in loop/uvio.c.
 *
 * What is here, and who owns what:
 *
 *   tc_uvio_handle  the uv_tcp_t / uv_pipe_t of one connection or listener,
 *                   embedded by value in its owner.  The OWNER owns the
 *                   handle's memory and frees it only after the handle's
 *                   close callback ran; handle.data points at the owner.
 *                   Once opened on an fd, the fd belongs to libuv (closed by
 *                   uv_close).  Listeners (server.c, a PyMem block each) use
 *                   the bare handle.
 *
 *   tc_uvio_conn    a connection: handle + write queue + the Python socket
 *                   object + the loop's live set + open/closing/reading,
 *                   embedded by value in a transport or an IOStream.  It
 *                   takes the owner's self-reference when the handle opens
 *                   (transports) or the first time libuv may call back into
 *                   the owner (IOStream, see tc_uvio_conn_hold), and drops
 *                   it in its close callback (see below).
 *
 *   tc_uvio_wq      the write queue of one stream, embedded by value in its
 *                   owner (no allocation, no pointer to follow on the hot path):
 *                   uv_try_write() first, straight from the caller's buffer;
 *                   what the kernel did not take becomes the single uv_write
 *                   in flight (a `bytes` object is referenced instead of
 *                   copied); what is written while that one is in flight is
 *                   appended to `pend` and goes out as the next uv_write.
 *                   Corking: an owner may append to `pend` without trying
 *                   (tc_uvio_wq_write with direct = 0) and send the batch
 *                   later with one try-write (tc_uvio_wq_send_pend).
 *                   The wq OWNS: its uv_write_t and the buffers `heap` and
 *                   `pend` (PyMem, tc_uvio_wq_free), and one strong
 *                   reference to `obj` while a write points into it.  These
 *                   exist only while bytes are queued: once nothing is
 *                   pending or in flight (tc_uvio_wq_send_pend wrote
 *                   everything, tc_uvio_wq_next found nothing more) they are
 *                   freed, so an idle stream holds no write memory.  (libuv
 *                   does not touch a write request after its callback.)
 *                   The owner of the wq keeps itself alive while a write is
 *                   in flight (it holds its self-reference once a write was
 *                   issued until the close callback, and libuv runs every
 *                   write callback -- with UV_ECANCELED if need be -- before
 *                   the close callback).
 *                   The write callback is the owner's; it starts with
 *                   tc_uvio_wq_done() and, when the write succeeded and the
 *                   owner still wants to write, calls tc_uvio_wq_next().
 *                   Libuv errors are RETURNED (never raised): the owner maps
 *                   them with tc_uvio_error() and closes as its API requires.
 *
 *   read buffer     one page-aligned TC_UVIO_READ_BUF_SIZE buffer per module
 *                   (tc_loop_state.readbuf, tc_loop_read_buffer()), owned by
 *                   the loop component (allocated in its exec, before any
 *                   other component's), lent to a read callback between
 *                   its alloc_cb and the end of its read_cb.  The GIL is held
 *                   over that whole span, so no other loop thread can use it
 *                   meanwhile; a reader must copy the bytes out before it runs
 *                   any Python code (which could switch threads).
 *
 *   addresses       a numeric Python address tuple -> sockaddr (connect),
 *                   a sockaddr -> its Python form (peername, sockname, the
 *                   sender of a datagram), as the socket module does.
 *
 *   errors          libuv error -> the OSError subclass the stdlib raises.
 *
 * Everything is hidden from the dynamic linker (TC_UVIO_API): calls from the
 * other files of the extension are direct calls, not PLT jumps.
 */
#ifndef TC_LOOP_UVIO_H
#define TC_LOOP_UVIO_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <uv.h>
#include <string.h>
#include <sys/socket.h>

#define TC_UVIO_API __attribute__((visibility("hidden")))

/* Live libuv handle and request counters (loop.h, "Handle bookkeeping";
 * _core._debug_counts()): kept in the debug build and in the test build, so
 * that the leak tests (tests/test_leaks.py) can check them on the build the
 * tests run on.  The users' build has none. */
#if defined(TC_DEBUG) || defined(TC_TEST_API)
#define TC_COUNT_HANDLES 1
#endif

struct tc_loop;
struct tc_loop_state;

/* Size of the shared read buffer. */
#define TC_UVIO_READ_BUF_SIZE (256 * 1024)
/* uv_buf_t lengths are unsigned int: larger regions go out in pieces. */
#define TC_UVIO_WRITE_CHUNK ((size_t)1 << 30)

/* ------------------------------------------------------------ handles */

enum { TC_UVIO_TCP = 0, TC_UVIO_PIPE = 1 };

typedef union tc_uvio_handle {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
} tc_uvio_handle;

/* uv_tcp_init / uv_pipe_init by `kind` (TC_UVIO_TCP or TC_UVIO_PIPE); returns
 * libuv's status. */
TC_UVIO_API int tc_uvio_handle_init(tc_uvio_handle *h, uv_loop_t *uv, int kind);
/* uv_tcp_open / uv_pipe_open on `fd`; returns libuv's status (on failure
 * the fd was not taken). */
TC_UVIO_API int tc_uvio_handle_open(tc_uvio_handle *h, int kind, int fd);

/* -------------------------------------------------------- write queue */

typedef struct tc_uvio_wq {
    uv_write_t *req;            /* PyMem or NULL: the one write in flight
                                 * (req->data = owner); allocated by the first
                                 * write issued, freed with the buffers */
    PyObject *obj;              /* strong or NULL: bytes the write points into */
    char *heap;                 /* PyMem copy the in-flight write points into */
    size_t heap_cap;
    size_t inflight_len;        /* bytes given to the uv_write in flight */
    char *rem_base;             /* rest of the in-flight region not yet   */
    size_t rem_len;             /* given to uv_write (> TC_UVIO_WRITE_CHUNK) */
    char *pend;                 /* PyMem: queued behind the in-flight write */
    size_t pend_len, pend_cap;
    char inflight;              /* req in flight */
#ifdef TC_COUNT_HANDLES
    struct tc_loop_state *ls;   /* borrowed: counts the requests started */
#endif
} tc_uvio_wq;

/* Set up a zeroed wq (the owner's memory is zeroed by tp_alloc). */
static inline void
tc_uvio_wq_init(tc_uvio_wq *wq, struct tc_loop_state *ls)
{
#ifdef TC_COUNT_HANDLES
    wq->ls = ls;
#else
    (void)wq;
    (void)ls;
#endif
}

/* One region (base, len) as a uv_buf_t for tc_uvio_wq_write (length capped at
 * TC_UVIO_WRITE_CHUNK; pass the real length as `total`). */
static inline uv_buf_t
tc_uvio_region(const char *base, size_t len)
{
    return uv_buf_init((char *)base,
                       (unsigned int)(len > TC_UVIO_WRITE_CHUNK ? TC_UVIO_WRITE_CHUNK : len));
}

/* The slow parts of tc_uvio_wq_write (below): after uv_try_write() took `n`
 * of `total` bytes, make the rest the write in flight (referencing `keep` or
 * copying into `heap`): 0, a libuv error (< 0), or 1 with MemoryError set. */
TC_UVIO_API int tc_uvio_wq_rest(tc_uvio_wq *wq, uv_stream_t *stream, const uv_buf_t *bufs,
                                unsigned int nbufs, size_t total, size_t n, PyObject *keep,
                                uv_write_cb cb, void *owner);
/* Append the bytes to `pend`: 0, or -1 with MemoryError set. */
TC_UVIO_API int tc_uvio_wq_append(tc_uvio_wq *wq, const uv_buf_t *bufs, unsigned int nbufs,
                                  size_t total);

/* Write `total` (> 0) bytes.  With nbufs == 1 the data is the region
 * (bufs[0].base, total) (see tc_uvio_region); with more buffers each length
 * is exact.  `keep` (borrowed, may be NULL) is a bytes object backing the
 * single region, or with two buffers the second one (a header, then a
 * payload): referenced instead of copied (with two buffers, once the
 * kernel took the whole first one; a partly taken first buffer copies).  When `direct` is 0, or a
 * write is in flight or bytes are pending, everything is appended to `pend`
 * (nothing is tried now); otherwise uv_try_write() first, the rest becomes the
 * write in flight, completed by `cb` with req.data = `owner`.
 * *taken = bytes the kernel took at once; *uverr = 0 or the libuv error of
 * uv_try_write / uv_write (the bytes not taken are then dropped).  Returns 0,
 * or -1 with MemoryError set (nothing queued beyond *taken).
 * Inline: this is every write's path; the rare parts are out of line. */
static inline int
tc_uvio_wq_write(tc_uvio_wq *wq, uv_stream_t *stream, int direct, const uv_buf_t *bufs,
                 unsigned int nbufs, size_t total, PyObject *keep, uv_write_cb cb,
                 void *owner, size_t *taken, int *uverr)
{
    *taken = 0;
    *uverr = 0;
    if (total == 0) {
        return 0;
    }
    if (direct && !wq->inflight && wq->pend_len == 0) {
        int r = uv_try_write(stream, bufs, nbufs);
        if (r == UV_EAGAIN || r == UV_ENOSYS) {
            r = 0;
        }
        else if (r < 0) {
            *uverr = r;
            return 0;
        }
        *taken = (size_t)r;
        if ((size_t)r == total) {
            return 0;
        }
        r = tc_uvio_wq_rest(wq, stream, bufs, nbufs, total, (size_t)r, keep, cb, owner);
        if (r == 1) {
            return -1;
        }
        *uverr = r;
        return 0;
    }
    if (nbufs == 1 && wq->pend_cap - wq->pend_len >= total) {
        /* behind the write in flight, and `pend` has room */
        memcpy(wq->pend + wq->pend_len, bufs[0].base, total);
        wq->pend_len += total;
        return 0;
    }
    return tc_uvio_wq_append(wq, bufs, nbufs, total);
}

/* Make the pending bytes the write in flight (if none is in flight); 0 or a
 * libuv error. */
TC_UVIO_API int tc_uvio_wq_flush(tc_uvio_wq *wq, uv_stream_t *stream, uv_write_cb cb,
                                 void *owner);
/* Send the pending bytes (a corked batch; nothing if none or a write is in
 * flight) as an immediate write would: one uv_try_write(), the rest becomes
 * the write in flight.  *taken = bytes the kernel took at once.  0, or a
 * libuv error (uv_try_write / uv_write): the bytes not taken are dropped. */
TC_UVIO_API int tc_uvio_wq_send_pend(tc_uvio_wq *wq, uv_stream_t *stream, uv_write_cb cb,
                                     void *owner, size_t *taken);

/* First thing in the owner's write callback: the write left libuv.  `drop`:
 * it failed or was cancelled, or the owner is closed -- the rest of the
 * region is forgotten.  Releases `obj` once its region is done with. */
static inline void
tc_uvio_wq_done(tc_uvio_wq *wq, int drop)
{
    wq->inflight = 0;
    if (drop) {
        wq->rem_len = 0;
    }
    if (wq->rem_len == 0) {
        Py_CLEAR(wq->obj);
    }
}

/* After a successful write: issue the next piece of a region larger than
 * TC_UVIO_WRITE_CHUNK (returns 1), else the pending bytes (returns 0, also
 * when there were none), or a libuv error (< 0; a failed piece drops the rest
 * of its region). */
TC_UVIO_API int tc_uvio_wq_next(tc_uvio_wq *wq, uv_stream_t *stream, uv_write_cb cb,
                                void *owner);

/* Bytes pending plus those libuv still holds of the write in flight.
 * `stream` is the open handle, or NULL once its close callback ran.  Does not
 * count the rest of a region over TC_UVIO_WRITE_CHUNK (wq->rem_len). */
static inline size_t
tc_uvio_wq_pending(const tc_uvio_wq *wq, const uv_stream_t *stream)
{
    size_t n = wq->pend_len;
    if (wq->inflight && stream != NULL) {
        n += stream->write_queue_size;
    }
    return n;
}

/* The handle's close callback ran: nothing is in flight any more. */
static inline void
tc_uvio_wq_closed(tc_uvio_wq *wq)
{
    wq->inflight = 0;
    wq->rem_len = 0;
    Py_CLEAR(wq->obj);
}

/* Free the buffers (dealloc; the handle is closed). */
TC_UVIO_API void tc_uvio_wq_free(tc_uvio_wq *wq);

/* ------------------------------------------------- connected streams */

/* One connected stream -- handle, write queue, and what closing it takes --
 * embedded by value in its owner, a Python object (an asyncio transport or
 * an IOStream).  Ownership:
 *   - while `held`, the owner holds one strong reference to itself, dropped
 *     by the close callback of tc_uvio_conn_close() (the owner may be freed
 *     right then), so libuv never calls into freed memory.  It is taken
 *     either by tc_uvio_conn_init() (TC_UVIO_HOLD_NOW: transports) or, for an
 *     owner whose users alone keep it alive until it first waits for the
 *     loop (TC_UVIO_HOLD_LAZY: IOStream, as upstream's), by
 *     tc_uvio_conn_hold() the first time libuv may call back into it (read
 *     started, write issued, connect begun) -- the owner must call it then
 *     -- and in any case by tc_uvio_conn_close(): the owner outlives its
 *     handle.  An unheld open conn is the owner's to close when it is
 *     collected (its tp_finalize);
 *   - `loop` is borrowed: the owner holds a strong reference to the loop at
 *     least as long as the handle is open;
 *   - `sock` (strong or NULL) is a Python socket object on the handle's fd;
 *     it is detach()ed before uv_close() so the fd is closed exactly once,
 *     by libuv;
 *   - `live` (strong or NULL) is the loop's set of live objects the owner is
 *     in (so a closing loop can release it); the close callback leaves it. */
typedef struct tc_uvio_conn {
    tc_uvio_handle h;           /* h.handle.data = the owner */
    tc_uvio_wq wq;
    struct tc_loop *loop;       /* borrowed, see above */
    PyObject *sock;             /* strong or NULL */
    PyObject *live;             /* strong or NULL */
    const char *live_error;     /* message if leaving `live` fails */
    char open;                  /* handle initialised, close callback not run */
    char closing;               /* uv_close() called */
    char reading;               /* uv_read_start() active */
    char held;                  /* the owner's self-reference is taken */
} tc_uvio_conn;

enum { TC_UVIO_HOLD_LAZY = 0, TC_UVIO_HOLD_NOW = 1 };

/* Initialise the handle (`kind`: TC_UVIO_TCP or TC_UVIO_PIPE) of a zeroed
 * conn on `loop`.  On success (0) the conn is `open`, and with `hold` =
 * TC_UVIO_HOLD_NOW `owner` holds its self-reference (TC_UVIO_HOLD_LAZY: see
 * tc_uvio_conn_hold); else libuv's error and nothing changed.  `live_error`
 * (static string) is reported if joining or leaving `live` fails. */
TC_UVIO_API int tc_uvio_conn_init(tc_uvio_conn *c, struct tc_loop *loop, int kind,
                                  PyObject *owner, const char *live_error, int hold);

/* tc_uvio_conn_init() of a TCP conn on a new, unconnected, non-blocking,
 * close-on-exec socket of `family` (AF_INET, AF_INET6) that libuv makes
 * (uv_tcp_init_ex): one socket() call, none of the fcntl / ioctl / getsockname
 * calls of opening an existing fd.  libuv's error (the socket's, as
 * -errno) and nothing changed on failure. */
TC_UVIO_API int tc_uvio_conn_init_socket(tc_uvio_conn *c, struct tc_loop *loop, int family,
                                         PyObject *owner, const char *live_error, int hold);

/* The out-of-line part of tc_uvio_conn_hold. */
TC_UVIO_API void tc_uvio_conn_take(tc_uvio_conn *c);

/* A lazily held conn (TC_UVIO_HOLD_LAZY): libuv may call back into the owner
 * from now on.  Takes the self-reference and joins the loop's set of live
 * objects (loop._tc_live(), when the loop has one) so that a closing loop
 * releases the handle; both are kept until the close callback.  Nothing if
 * already held, not open or closing.  Never fails (a live set that cannot
 * take the owner is reported; the exception state is preserved). */
static inline void
tc_uvio_conn_hold(tc_uvio_conn *c)
{
    if (!c->held) {
        tc_uvio_conn_take(c);
    }
}

/* Close the handle (nothing if not open or already closing): take the
 * self-reference if not held yet, stop reading, detach `sock` (a failure goes
 * to the loop's exception handler), and tc_loop_close_handle().  Its close
 * callback clears `open`, forgets the write in flight, leaves `live` and
 * drops the owner's self-reference. */
TC_UVIO_API void tc_uvio_conn_close(tc_uvio_conn *c);

/* The handle is open and not closing. */
static inline int
tc_uvio_conn_usable(const tc_uvio_conn *c)
{
    return c->open && !c->closing;
}

/* -------------------------------------------------------- read buffer */

/* Allocate / free ls->readbuf (the loop component's exec / clear, so it
 * exists before any other component runs).  -1 with MemoryError. */
TC_UVIO_API int tc_uvio_readbuf_alloc(struct tc_loop_state *ls);
TC_UVIO_API void tc_uvio_readbuf_free(struct tc_loop_state *ls);

/* sock.fileno() of a Python socket object meant for `loop`: the fd (>= 0),
 * or -1 with an exception set (ValueError('the socket is closed') for a
 * closed one). */
TC_UVIO_API int tc_uvio_sock_fd(struct tc_loop *loop, PyObject *sock);

/* ---------------------------------------------------------- addresses */

/* Fill `ss` from a numeric Python address tuple of `family`: (host, port)
 * for AF_INET, (host, port[, flowinfo[, scope_id]]) for AF_INET6.  0, or -1
 * with TypeError / ValueError / OverflowError set. */
TC_UVIO_API int tc_uvio_parse_inet_address(int family, PyObject *address,
                                           struct sockaddr_storage *ss);
/* The Python form of a socket address, as the socket module gives it
 * (getpeername(), recvfrom()): (host, port) for IPv4, (host, port, flowinfo,
 * scope_id) for IPv6, the path for a Unix socket (str; bytes for an abstract
 * name).  None for an empty address (len 0) or another family; NULL with
 * OSError set if the address cannot be printed. */
TC_UVIO_API PyObject *tc_uvio_sockaddr_to_py(const struct sockaddr_storage *ss, socklen_t len);

/* ------------------------------------------------------------- errors */

/* New reference to the OSError subclass the stdlib would raise for libuv
 * error `err` (errno = -err, strerror text), or NULL with an exception set if
 * building it failed. */
TC_UVIO_API PyObject *tc_uvio_error(int err);
/* Set that exception as the current one.  Returns NULL so callers can
 * `return tc_uvio_set_error(err);`. */
TC_UVIO_API PyObject *tc_uvio_set_error(int err);
/* New reference to the current exception (normalised, traceback attached),
 * cleared; NULL if none was set. */
TC_UVIO_API PyObject *tc_uvio_fetch_exception(void);

#endif /* TC_LOOP_UVIO_H */
