/* Private header of the stream component: the tc_stream object and what its
 * two files share.  Only csrc/stream/ includes it; other components use
 * stream.h.
 *
 *   stream.c     the C core: input buffer and reads, the write queue and
 *                corking, closing, creation, and the C API of stream.h.
 *   stream_py.c  the Python face: the methods, attributes and type of
 *                tornado_c._core.Stream (the C base of
 *                tornado_c.iostream.IOStream), _stream_setup, and the
 *                component's exec/traverse/clear.
 *   connect.c    tc_stream_connect(): a client socket connected from C.
 *   tls.c        TLS inside the stream: the SSL object's memory BIOs between
 *                the socket and the input buffer / write queue.
 *   test_consumer.c  (test build) a C consumer for the tests; it uses
 *                stream.h only, as any other component does.
 *
 * The functions stream.c lends to stream_py.c are TC_INTERNAL (common.h);
 * the small helpers both files call on every read or write are inline here.
 */
#ifndef TC_STREAM_INTERNAL_H
#define TC_STREAM_INTERNAL_H

#include "common.h"
#include "state.h"
#include "loop/loop.h"
#include "stream/stream.h"

enum { K_TCP = TC_UVIO_TCP, K_PIPE = TC_UVIO_PIPE };
/* the pending Python read: none, read_until, read_until_regex, read_bytes,
 * read_into, read_until_close */
enum { R_NONE = 0, R_DELIM, R_REGEX, R_BYTES, R_INTO, R_CLOSE };

#define DEFAULT_MAX_BUFFER (100 * 1024 * 1024)
#define DEFAULT_CHUNK 65536

/* A write future of the Python API: resolved once wdone reaches index. */
typedef struct {
    unsigned long long index;
    PyObject *fut;              /* strong */
} wfut_t;

struct tc_stream {
    PyObject_HEAD
    tc_state *st;               /* borrowed: the type holds the module */
    tc_loop *loop;              /* strong */
    PyObject *io_loop;          /* strong or NULL (looked up lazily) */
    PyObject *error;
    PyObject *close_callback;
    PyObject *connect_future;
    PyObject *read_future;
    PyObject *rtarget;          /* delimiter bytes / compiled regex / into object */
    Py_buffer into;             /* read_into() target while into_held */
    tc_uvio_conn io;            /* handle, write queue, sock, live (uvio.h); the
                                 * sock is created lazily for streams made
                                 * from an fd */
    char *rbuf;                 /* own input buffer (PyMem) or NULL */
    size_t rstart, rlen, rcap;  /* input = RDATA(s)[rstart .. rstart+rlen) */
    Py_ssize_t max_buffer_size, read_chunk_size, max_write_buffer_size; /* -1: None */
    Py_ssize_t rbytes, rmax;    /* rmax -1: no max_bytes */
    size_t into_copied;         /* read_into: bytes already in the caller's buffer */
    unsigned long long wtotal, wdone;
    wfut_t *wf;
    size_t wf_head, wf_len, wf_cap;
    const tc_stream_consumer *ccb;
    void *cctx;
    int kind;
    int rmode;
    int end_err;                /* while end_queued: UV_EOF or the read error */
    char partial;
    char into_held;
    char closed;
    char connecting;
    char cpaused;
    char deliver_scheduled;
    char cork;                  /* batch small writes per loop iteration */
    char flush_deferred;        /* a tc_loop_defer() call for us is due */
    char idle_listen;           /* a read completed: listen while idle (see wants_input) */
    char shared;                /* the input is in the shared read buffer, not rbuf */
    char end_queued;            /* fn_read_end is queued (read_cb), reading stopped */
    char tls_hs;                /* TLS: the handshake is not complete */
    char tls_eof;               /* TLS: the peer's close_notify was read */
    struct tc_stream_tls *tls;  /* owned (tls.c) or NULL: a plain stream */
};

/* Where the buffered input lives.  An empty stream reads into the loop
 * component's shared page-aligned buffer and the read callback moves the
 * bytes into a right-sized buffer of the stream's own at once (the GIL is
 * held from alloc_cb to that copy, so no other thread's loop can use the
 * shared buffer meanwhile), so an idle connection holds no input memory. */
#define RDATA(s) ((s)->shared ? tc_loop_read_buffer((s)->loop) : (s)->rbuf)

/* ------------------------------------------------------ inline helpers */

/* Hand an exception left set to the loop's exception handler. */
static inline void
tc_stream_report(tc_stream *s, const char *message)
{
    if (PyErr_Occurred()) {
        tc_loop_report_exception(s->loop, message, NULL);
    }
}

static inline int
tc_stream_handle_usable(tc_stream *s)
{
    return tc_uvio_conn_usable(&s->io);
}

/* Bytes queued and not yet taken by the kernel (closed or not). */
static inline size_t
tc_stream_wq_pending(tc_stream *s)
{
    return tc_uvio_wq_pending(&s->io.wq, s->io.open ? &s->io.h.stream : NULL);
}

/* ------------------------------------------------- stream.c, for stream_py.c */

/* errors and logging */
TC_INTERNAL int tc_stream_is_connreset(PyObject *exc);
/* gen_log.<level>(msg); `msg` stolen (NULL: the error is reported). */
TC_INTERNAL void tc_stream_log(tc_stream *s, const char *level, PyObject *msg);
/* Set StreamClosedError(real_error=s.error); returns NULL. */
TC_INTERNAL PyObject *tc_stream_set_closed_error(tc_stream *s);

/* reading */
TC_INTERNAL void tc_stream_update_reading(tc_stream *s);
TC_INTERNAL void tc_stream_clear_target(tc_stream *s);
TC_INTERNAL Py_ssize_t tc_stream_find_read_pos(tc_stream *s);
TC_INTERNAL void tc_stream_fill_into(tc_stream *s);
TC_INTERNAL int tc_stream_finish_read(tc_stream *s, size_t size);
TC_INTERNAL void tc_stream_unsatisfiable(tc_stream *s);
TC_INTERNAL void tc_stream_own_space(tc_stream *s, uv_buf_t *buf);

/* Whether an SSLSocket's recv raises a socket error that arrives after
 * the TLS handshake (from Python 3.13, CPython gh-115627) rather than
 * reading it as an EOF: what a TLS stream does with one (stream.c's
 * read_end, stream_py.c's inline_read). */
#if PY_VERSION_HEX >= 0x030D0000
#define TC_TLS_SOCKET_ERROR_RAISES 1
#else
#define TC_TLS_SOCKET_ERROR_RAISES 0
#endif

/* writing */
TC_INTERNAL void tc_stream_write_error(tc_stream *s, int err);
TC_INTERNAL int tc_stream_flush_pending(tc_stream *s);
TC_INTERNAL void tc_stream_resolve_write_futures(tc_stream *s);
TC_INTERNAL void tc_stream_send_corked(tc_stream *s, int quiet);
TC_INTERNAL int tc_stream_write_data(tc_stream *s, const char *data, size_t len, PyObject *keep);
TC_INTERNAL int tc_stream_write_pair(tc_stream *s, const char *head, size_t hlen, PyObject *body);
/* what tc_stream_write_data does for a plain stream: bytes to the socket
 * (a TLS stream's records) */
TC_INTERNAL int tc_stream_raw_write(tc_stream *s, const char *data, size_t len, PyObject *keep);

/* creation */
TC_INTERNAL void tc_stream_set_sizes(tc_stream *s, Py_ssize_t max_buffer_size,
                                     Py_ssize_t read_chunk_size);
TC_INTERNAL int tc_stream_open_handle(tc_stream *s, int fd, int hold_now);

/* _core._stream_deliver(stream): what tc_stream_resume_reading() schedules
 * (registered by stream_py.c's exec). */
TC_INTERNAL PyObject *tc_stream_fn_deliver(PyObject *module, PyObject *arg);
TC_INTERNAL PyObject *tc_stream_fn_read_end(PyObject *module, PyObject *arg);

/* tls.c: TLS inside the stream (s->tls != NULL) */
typedef struct tc_stream_tls tc_stream_tls;
/* Ciphertext read from the socket: decrypted into the input buffer (rlen
 * grows), or handed to the handshake (maybe queued behind the callbacks
 * ready before the poll: tls.c's queue_step).  data NULL, len 0: the
 * records are in the BIO already.  SSL errors close the stream; -1 with an
 * exception set only for our own failures (memory). */
TC_INTERNAL int tc_stream_tls_input(tc_stream *s, const char *data, size_t len);
/* The socket's input ended cleanly (EOF): closes the stream, through the
 * handshake's error when it was not complete. */
TC_INTERNAL void tc_stream_tls_end(tc_stream *s);
/* stream.c: records arrived (tls_input, then the input offered); data NULL
 * and n 0: they are in the BIO already (tls.c's queued handshake step). */
TC_INTERNAL void tc_stream_tls_read(tc_stream *s, const char *data, size_t n);
TC_INTERNAL PyObject *tc_stream_py_tls_step(tc_stream *s, PyObject *ignored);
/* Plaintext to send: encrypted and queued, or held until the handshake
 * completes.  0, or -1 with an exception set. */
TC_INTERNAL int tc_stream_tls_write(tc_stream *s, const char *data, size_t len);
TC_INTERNAL size_t tc_stream_tls_pending(tc_stream *s);
/* From signal_closed: the start_tls future fails (Python side). */
TC_INTERNAL void tc_stream_tls_signal_closed(tc_stream *s);
TC_INTERNAL int tc_stream_tls_traverse(tc_stream *s, visitproc visit, void *arg);
TC_INTERNAL void tc_stream_tls_clear(tc_stream *s);
TC_INTERNAL void tc_stream_tls_free(tc_stream *s);
TC_INTERNAL PyObject *tc_stream_py_tls_attach(tc_stream *s, PyObject *const *args,
                                              Py_ssize_t nargs);
TC_INTERNAL PyObject *tc_stream_py_tls_flush(tc_stream *s, PyObject *ignored);
TC_INTERNAL PyObject *tc_stream_py_tls_established(tc_stream *s, PyObject *ignored);
TC_INTERNAL int tc_stream_tls_exec(struct tc_state *st);

#endif /* TC_STREAM_INTERNAL_H */
