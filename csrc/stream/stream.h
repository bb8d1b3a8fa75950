/* stream component contract: IOStream on libuv streams.
 *
 * A tc_stream is the C object behind tornado_c.iostream.IOStream (a subclass
 * of tornado.iostream.IOStream for isinstance checks).  It owns one connected
 * uv_tcp_t (or uv_pipe_t) on a tc_loop, an input buffer and a write queue.
 *
 * Two kinds of reader use it:
 *   - Python code, through the IOStream API (read_until, read_bytes, ...),
 *     exactly as with upstream's IOStream;
 *   - C code that takes the incoming bytes directly: a *consumer* (the HTTP
 *     server's connection).  While a consumer is set, bytes are not matched
 *     against Python reads; tc_stream_set_consumer(s, NULL, NULL) (detach)
 *     hands the stream back to Python with whatever the consumer left in the
 *     input buffer still there, so a WebSocket upgrade keeps every byte.
 *
 * Ownership: the stream holds a strong reference to itself while its uv
 * handle is open (dropped in the close callback), so libuv never calls into
 * freed memory; the consumer's ctx is NOT owned by the stream (the consumer
 * keeps the stream alive and clears itself before it goes away).  Every
 * callback into a consumer runs with the GIL held (TC_LOOP_ENTER done) and
 * may call any function below, including tc_stream_close() and
 * tc_stream_set_consumer(); the stream must stay valid across that (hold a
 * reference around consumer calls).
 *
 * TLS (stream/tls.c): a stream made by tornado_c.iostream's start_tls (or
 * for a connection of a server with ssl_options) speaks TLS inside the
 * stream: what libuv reads is decrypted into the input buffer before
 * anything looks at it, and what is written is encrypted before it is
 * queued.  Everything in this header then works on plaintext, unchanged: a
 * consumer (the HTTP client's response reader, the HTTP server's
 * connection) peeks and consumes decrypted bytes, tc_stream_write*() take
 * plaintext, on_drain means every record reached the kernel.  A TLS stream
 * never offers shared input (peek_shared has no effect: its plaintext is
 * always in the stream's own buffer).
 */
#ifndef TC_STREAM_H
#define TC_STREAM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <uv.h>

#include "loop/loop.h"

struct tc_state;
typedef struct tc_stream tc_stream;

typedef struct tc_stream_state {
    PyTypeObject *Stream_type;  /* tornado_c._core.Stream: C base of IOStream */
    /* the stream component adds its other types and names here */
#ifdef TC_TEST_API
    PyTypeObject *TestConsumer_type; /* test build: _core._test_stream_consumer() objects */
#endif
    PyObject *IOStream_cls;     /* tornado_c.iostream.IOStream (set by _stream_setup) */
    PyObject *StreamClosedError, *UnsatisfiableReadError, *StreamBufferFullError;
    PyObject *gen_log;          /* tornado.log.gen_log */
    PyObject *IOLoop_current;   /* tornado.ioloop.IOLoop.current */
    PyObject *re_compile;       /* re.compile */
    PyObject *socket_type;      /* socket.socket */
    PyObject *fn_deliver;       /* _core._stream_deliver (scheduled by resume) */
    PyObject *fn_read_end;      /* _core._stream_read_end (an EOF or read error
                                 * held behind the callbacks ready before the poll) */
    /* TLS in the stream (stream/tls.c): interned names */
    PyObject *s_read, *s_write, *s_pending, *s_write_eof, *s_tls_handshake,
        *s_tls_signal_closed, *s_tls_step;
} tc_stream_state;

typedef struct tc_stream_consumer {
    /* New bytes arrived (or tc_stream_resume_reading() found buffered ones):
     * look at them with tc_stream_peek(), take what is used with
     * tc_stream_consume().  Unconsumed bytes stay buffered and are offered
     * again with the next arrival.  A read never takes more than
     * max_buffer_size + 1 bytes into an empty buffer; the bytes are offered
     * first, and if what is left unconsumed after on_data passes
     * max_buffer_size the stream closes with StreamBufferFullError (logged
     * "Reached maximum read buffer size" as upstream). */
    void (*on_data)(void *ctx, tc_stream *s);
    /* The write queue became empty after tc_stream_write*() calls (every
     * byte handed to the kernel).  Not called when nothing was pending. */
    void (*on_drain)(void *ctx, tc_stream *s);
    /* The stream closed (peer EOF, error, or tc_stream_close()).  `error` is
     * borrowed: the exception that closed it, or NULL for a clean EOF/close.
     * Called exactly once per consumer; after it the consumer is cleared. */
    void (*on_close)(void *ctx, tc_stream *s, PyObject *error);
    /* Optional (0 by default): 1 lets on_data see bytes a read just put in
     * the loop's shared read buffer, before the stream copies them into a
     * buffer of its own; what on_data consumes is then never copied by the
     * stream (a consumer that takes big payloads out at once saves a pass
     * over them).  While the input may be shared the consumer must not run
     * Python code nor create GC-tracked objects (an allocation may start a
     * collection, and finalizers run Python code, which may switch threads
     * and let another thread's loop read into the same buffer): it calls
     * tc_stream_own_input() first.  Bytes and other untracked objects are
     * fine. */
    int peek_shared;
} tc_stream_consumer;

/* 1 if `obj` is a tc_stream (or subclass instance). */
int tc_stream_check(struct tc_state *st, PyObject *obj);

/* Wrap an accepted, connected socket fd in a new stream on `loop`.  The fd
 * belongs to the stream from here on (closed with it).  Returns a new
 * reference or NULL with an exception set (fd then still belongs to the
 * caller).  The stream's Python type is `type` (NULL: the default
 * tornado_c.iostream.IOStream class registered by the Python layer; the
 * first call imports tornado_c.iostream if needed).  max_buffer_size /
 * read_chunk_size <= 0 mean upstream's defaults (100 MiB, 64 KiB, chunk
 * capped at max_buffer_size / 2).  The stream joins the loop's set of live
 * objects: if the loop closes with it open, its handle and fd are released
 * (no callbacks).  Its `io_loop` attribute (tornado IOLoop) is looked up
 * lazily with IOLoop.current() the first time it is needed. */
tc_stream *tc_stream_from_fd(struct tc_state *st, tc_loop *loop, int fd,
                             PyTypeObject *type, Py_ssize_t max_buffer_size,
                             Py_ssize_t read_chunk_size);

/* A new stream, as tc_stream_from_fd() makes, on a new non-blocking TCP
 * socket of `family` (AF_INET or AF_INET6) that is not connected yet (for
 * tc_stream_connect()), with TCP_NODELAY if `nodelay`.  New reference, or
 * NULL with an exception set (socket()'s OSError). */
tc_stream *tc_stream_new_tcp(struct tc_state *st, tc_loop *loop, int family, int nodelay,
                             PyTypeObject *type, Py_ssize_t max_buffer_size,
                             Py_ssize_t read_chunk_size);

/* Set (or with NULL clear) the C consumer.  Setting it starts reading (and
 * delivers already-buffered bytes from the loop, as resume does).  While a
 * consumer is set, Python reads on the stream raise RuntimeError; Python
 * writes are allowed.  on_close is called synchronously from inside
 * tc_stream_close() -- also when the consumer itself calls it (from
 * on_data or elsewhere) -- so a consumer that closes must expect on_close
 * to run before tc_stream_close() returns.  Exceptions left set by a
 * consumer callback are reported to the loop's exception handler.
 * Setting a consumer on a closed stream does nothing (check
 * tc_stream_closed() first: on_close will not be called for it). */
void tc_stream_set_consumer(tc_stream *s, const tc_stream_consumer *cb, void *ctx);

/* Borrowed view of the buffered input: valid until the next call into the
 * stream or a return to the loop. */
const char *tc_stream_peek(tc_stream *s, size_t *len);
void tc_stream_consume(tc_stream *s, size_t n);
/* Move buffered input out of the loop's shared read buffer into the
 * stream's own (a no-op when it is not there); after it the consumer of a
 * peek_shared stream may run Python code.  tc_stream_peek() pointers taken
 * before are stale.  0, or -1 with MemoryError set (the input is then
 * dropped, as a failed read would). */
int tc_stream_own_input(tc_stream *s);
/* 1 while the buffered input is in the loop's shared read buffer (a
 * peek_shared consumer's on_data, before tc_stream_own_input()). */
int tc_stream_input_shared(tc_stream *s);
/* Put `len` bytes back in front of the buffered input: bytes a consumer
 * took with tc_stream_consume() and now leaves to the stream's readers, as
 * if they had never been taken.  Nothing is delivered or completed by it
 * (call it when no read is pending); a closed stream keeps them for reads
 * that its buffer satisfies, as upstream's does.  0, or -1 with
 * MemoryError set (nothing changed). */
int tc_stream_unread(tc_stream *s, const char *data, size_t len);

/* Stop / restart delivering input (pipelining: the HTTP server stops after a
 * request until its response is flushed).  resume delivers already-buffered
 * bytes from the loop (call_soon order), never re-entrantly. */
void tc_stream_pause_reading(tc_stream *s);
void tc_stream_resume_reading(tc_stream *s);

/* Queue bytes for writing: tries to write at once (uv_try_write), copies or
 * references the rest.  0 on success, -1 with an exception set (closed
 * stream: StreamClosedError).  _obj keeps a reference to a bytes-like object
 * instead of copying. */
int tc_stream_write(tc_stream *s, const char *data, size_t len);
int tc_stream_write_obj(tc_stream *s, PyObject *buffer);
/* Bytes queued and not yet taken by the kernel. */
size_t tc_stream_write_pending(tc_stream *s);

/* Corking (off by default): while on, writes that find nothing in flight
 * are copied into the queue instead of being tried at once, and sent
 * together after the current loop iteration's callbacks (tc_loop_defer):
 * one try-write for a whole iteration's output, the rest queued as usual;
 * on_drain (and write futures) follow once the kernel took it all.  The
 * kernel then takes a server's responses back to back, which costs
 * markedly less CPU per response than one write per callback.  A batch
 * never grows past TC_STREAM_CORK_MAX: a write that would pass it sends the
 * batch first and goes out as usual.  A clean close, start_tls and turning
 * corking off send the batch (one try-write) before anything else. */
#define TC_STREAM_CORK_MAX (64 * 1024)
void tc_stream_set_cork(tc_stream *s, int on);

/* Connect the stream's TCP socket (tc_stream_new_tcp()'s, or an fd given
 * to tc_stream_from_fd() before it was connected) to `addr`
 * (csrc/stream/connect.c).  Until cb(owner, s, status) runs from the loop
 * the stream is `connecting`: writes wait in the queue (sent once
 * connected), nothing is read.
 * status 0: connected; else libuv's error (-errno), the stream then closed
 * with OSError(errno, strerror) as its error, or UV_ECANCELED when the
 * stream was closed first.  `owner` (borrowed) is kept alive until the
 * callback, which runs with the GIL held and may close the stream.
 * 0, or -1 with the OSError socket.connect() would raise (nothing started,
 * the callback never runs). */
typedef void (*tc_stream_connect_cb)(PyObject *owner, tc_stream *s, int status);
int tc_stream_connect(tc_stream *s, const struct sockaddr *addr, tc_stream_connect_cb cb,
                      PyObject *owner);

/* New reference to StreamClosedError(real_error=error) (error borrowed, or
 * NULL for None): what a stream closed with `error` raises from its reads,
 * writes and connect.  NULL with an exception set if building it failed. */
PyObject *tc_stream_closed_error(struct tc_state *st, PyObject *error);

/* Close the stream (idempotent).  `exc` borrowed or NULL: recorded as the
 * stream's `error` (upstream's IOStream.error / real_error).  Pending
 * writes are discarded as upstream's close() does. */
void tc_stream_close(tc_stream *s, PyObject *exc);
int tc_stream_closed(tc_stream *s);
/* 1 if (cb, ctx) is the stream's consumer now (a consumer about to detach
 * checks that nothing replaced it and that the stream did not clear it). */
int tc_stream_consumer_is(tc_stream *s, const tc_stream_consumer *cb, const void *ctx);
/* Borrowed: the tc_loop the stream runs on. */
tc_loop *tc_stream_loop(tc_stream *s);

int tc_stream_exec(PyObject *module, struct tc_state *st);
#ifdef TC_TEST_API
/* Test build only (test_consumer.c): _test_stream_consumer,
 * _test_stream_from_fd and their type; called by tc_stream_exec. */
int tc_stream_test_exec(PyObject *module, struct tc_state *st);
#endif
int tc_stream_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_stream_clear(struct tc_state *st);

#endif /* TC_STREAM_H */
