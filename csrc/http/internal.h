/* Private header of the C HTTP server: the two objects and what their files
 * share.  Only csrc/http/server.c, server_py.c, connection.c, client.c
 * (the client's response parser, which builds headers as the server does),
 * client_request.c and client_fetch*.c (the client's C fetch, which drives
 * that parser) include it; other components use http.h.
 *
 *   server.c      HTTPServerConnection (sconn): one accepted connection --
 *                 the stream consumer, the parser glue, the delegate calls,
 *                 the idle and body timers, the request loop of upstream's
 *                 HTTP1ServerConnection.
 *   server_py.c   its Python face: construction, close(), GC, the type,
 *                 and tc_http_server_exec / _traverse / _clear.
 *   connection.c  HTTPConnection (rconn): one request, what apps see as
 *                 request.connection -- write_headers / write / finish
 *                 through the response writer (http_py.c), detach, the
 *                 close callback and per-request limits.
 *
 * An sconn holds its current rconn (req) and each rconn its sconn (sc) until
 * the request is over or detached; the write path is inline below, the rest
 * TC_INTERNAL functions of server.c (common.h).
 */
#ifndef TC_HTTP_INTERNAL_H
#define TC_HTTP_INTERNAL_H

#include "common.h"
#include "state.h"
#include "loop/loop.h"
#include "stream/stream.h"
#include "http/http.h"
#include "http/judge.h"

typedef struct sconn sconn;
typedef struct tc_http_idle tc_http_idle; /* idle.c */

/* Strict mode (HTTPServer(strict_http=True) / TORNADO_C_STRICT_HTTP=1):
 * llhttp judges every byte the parser consumed (judge.h, server.c
 * sc_strict_check). */
typedef struct tc_http_strict {
    tc_http_judge judge;
    uint64_t heads;          /* heads our parser delivered */
} tc_http_strict;
typedef struct rconn rconn;

struct sconn {
    PyObject_HEAD
    tc_http_state *hs;       /* borrowed: the type holds the module */
    tc_loop *loop;           /* strong */
    PyObject *server;        /* strong: the HTTPServer (HTTPServerConnectionDelegate) */
    PyObject *context;       /* strong: _HTTPRequestContext */
    PyObject *closed_future; /* strong or NULL: resolved when serving ended */
    tc_http_idle *idle;      /* strong or NULL: the idle list of (loop,
                              * idle_timeout), taken at the first head wait */
    sconn *idle_prev, *idle_next; /* borrowed: neighbours in that list */
    PyObject *body_timer;    /* strong TimerHandle or NULL */
    PyObject *write_futures; /* strong or NULL: list of futures resolved at
                              * drain (created by the first one) */
    rconn *req;              /* strong: the current request, or NULL */
    tc_stream *stream;       /* strong: the connection's IOStream (consumer: us) */
    tc_http_parser parser;
    tc_http_strict *strict;  /* owned (malloc) or NULL: strict mode off */
    tc_http_buf body;        /* coalesced body bytes not yet delivered */
    size_t chunk_size;
    Py_ssize_t read_chunk_size; /* TCPServer's, for a detached stream */
    uint64_t default_max_body;
    double idle_timeout;     /* < 0: none */
    double body_timeout;     /* < 0: none */
    double head_wait_start;
    int decompress;
    /* state */
    char closed;             /* the stream closed (or close started) */
    char close_scheduled;    /* _closed() scheduled */
    char close_notified;     /* _closed() ran */
    char detached;
    char waiting_head;       /* between requests: the idle timeout applies */
    char idle_linked;        /* in sc->idle's list */
    char in_process, again;
    char awaiting;           /* a delegate awaitable is pending */
    char msg_complete;       /* parser finished the message (paused) */
    char finish_called;      /* delegate.finish() done (or skipped) */
    char close_after_drain;
    char head_pending;       /* a head was parsed: run the delegate */
    char flush_body;         /* deliver coalesced body bytes now */
    char expect_continue;
    char defer_next;         /* the next request is started by _process */
    char read_paused;        /* tc_stream_pause_reading while a response is pending */
    char serving;            /* holds a self-reference until _closed() */
    char default_max_negative; /* the max_body_size given was negative
                                * (parser.h: max_body_negative) */
    PyObject *weakreflist;
};

struct rconn {
    PyObject_HEAD
    sconn *sc;               /* strong; NULL once detached */
    PyObject *delegate;      /* strong or NULL */
    PyObject *start_line;    /* strong: RequestStartLine */
    PyObject *headers;       /* strong: request HTTPHeaders */
    PyObject *close_callback;/* strong or NULL */
    tc_http_writer w;
    double body_timeout;     /* < 0: none */
    char head_delivered;     /* headers_received called: on_connection_close is owed */
    char read_finished, write_finished, response_done, finish_waiting;
    char delegate_closed;
};

/* ------------------------------------------------------ inline helpers */

/* int(max_body_size) as the parser keeps it: past uint64 is UINT64_MAX; a
 * negative one is 0 with *negative set (upstream compares lengths with the
 * negative int: every Content-Length is then too long).  0, or -1 with an
 * exception set. */
static inline int
tc_http_max_body_from(PyObject *v, uint64_t *max, int *negative)
{
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    *negative = overflow < 0 || n < 0;
    *max = overflow > 0 ? UINT64_MAX : *negative ? 0 : (uint64_t)n;
    return 0;
}

/* Cancel and drop a timer of the connection (NULL: none). */
static inline void
tc_http_cancel_timer(PyObject **t)
{
    if (*t != NULL) {
        tc_loop_handle_cancel(*t);
        Py_CLEAR(*t);
    }
}

/* Bytes written and not yet taken by the kernel (0 once closed). */
static inline size_t
tc_http_sc_pending(sconn *sc)
{
    return sc->closed ? 0 : tc_stream_write_pending(sc->stream);
}

/* Write bytes; 0 or -1 with StreamClosedError set when closed. */
static inline int
tc_http_sc_write(sconn *sc, const char *data, size_t len)
{
    if (sc->closed || sc->detached) {
        PyErr_SetNone(sc->hs->StreamClosedError);
        return -1;
    }
    if (len == 0) {
        return 0;
    }
    return tc_stream_write(sc->stream, data, len);
}

/* ------------------------------------------------- server.c, for connection.c */

/* Close while an exception is set (to be raised to the caller after). */
TC_INTERNAL void tc_http_sc_close_keep_exc(sconn *sc);
/* Everything written reached the kernel: resolve the futures write_headers/
 * write/finish handed out meanwhile (and drop their list).  Returns 0. */
TC_INTERNAL int tc_http_sc_resolve_write_futures(sconn *sc);
/* Run the Python-visible side of a close (_closed) from the loop. */
TC_INTERNAL void tc_http_sc_schedule_closed(sconn *sc);
/* The response is finished and flushed (upstream's _finish_request): the
 * next request, or the close. */
TC_INTERNAL void tc_http_rc_finish_request(rconn *rc);

/* -------------------------------------------------- server.c, for server_py.c */

/* The parser's callbacks and the stream consumer of a connection. */
TC_INTERNAL extern const tc_http_callbacks tc_http_sc_callbacks;
TC_INTERNAL extern const tc_stream_consumer tc_http_sc_consumer;
/* Between requests: wait for a head under the idle timeout. */
TC_INTERNAL void tc_http_sc_start_head_wait(sconn *sc);
/* Close the connection (the stream, then _closed() from the loop). */
TC_INTERNAL void tc_http_sc_close(sconn *sc);
/* Resolve a future with None unless it is done (cancelled, or resolved
 * by someone else).  0, or -1 with an exception set. */
TC_INTERNAL int tc_http_sc_future_set_none(sconn *sc, PyObject *fut);
/* The methods the loop calls back: _body_timer, _awaited(future),
 * _closed, _process. */
TC_INTERNAL PyObject *tc_http_sc_body_timer(sconn *sc, PyObject *ignored);
TC_INTERNAL PyObject *tc_http_sc_awaited(sconn *sc, PyObject *fut);
TC_INTERNAL PyObject *tc_http_sc_closed(sconn *sc, PyObject *ignored);
TC_INTERNAL PyObject *tc_http_sc_process_meth(sconn *sc, PyObject *ignored);

/* ------------------------------ server.c and server_py.c, for client.c too */

/* Looks up Tornado's objects in hs (RequestStartLine, HTTPHeaders,
 * HTTPInputError...), once; 0, or -1 with an exception set. */
TC_INTERNAL int tc_http_import_tornado(tc_http_state *hs);
/* context.c: a new _HTTPRequestContext for the connection on fd, as
 * upstream's class makes it (see there); its exec / traverse / clear, called
 * by the server's. */
TC_INTERNAL PyObject *tc_http_new_context(tc_http_state *hs, PyObject *stream, int fd,
                                          PyObject *address, PyObject *protocol,
                                          PyObject *trusted_downstream);
TC_INTERNAL int tc_http_context_exec(tc_http_state *hs);
/* idle.c: the idle timeout, one timer per (loop, timeout) for all waiting
 * connections (see there).  start: sc begins waiting for a head (0, or -1
 * with an exception set); unlink: it stops (leaving: it closes or is
 * detached).  server.c's tc_http_sc_idle_expired closes a connection whose
 * wait timed out. */
TC_INTERNAL int tc_http_idle_start(sconn *sc);
TC_INTERNAL void tc_http_idle_unlink(sconn *sc, int leaving);
TC_INTERNAL void tc_http_sc_idle_expired(sconn *sc);
TC_INTERNAL int tc_http_idle_exec(PyObject *module, tc_http_state *hs);
TC_INTERNAL int tc_http_context_traverse(tc_http_state *hs, visitproc visit, void *arg);
TC_INTERNAL void tc_http_context_clear(tc_http_state *hs);
/* A new HTTPHeaders (the web component's C one while it is on, else
 * upstream's filled through its layout) holding head's pairs in order;
 * needs tc_http_import_tornado().  NULL with an exception set. */
TC_INTERNAL PyObject *tc_http_build_headers(tc_http_state *hs, const tc_http_head *head);

/* ------------------------------------------- client.c, for client_fetch.c */

/* The C fetch reads a response with an HTTPClientParser (client.c) without
 * futures: a read's end is told to done(owner, value, exc) -- value (the
 * (ResponseStartLine, HTTPHeaders) of the head, the body as bytes) or exc
 * (what the read's future would raise), both borrowed -- possibly before
 * the read call returns.  done must not start another read of the parser
 * before that call returned.  `owner` is kept alive until done ran. */
typedef void (*tc_http_cp_done)(PyObject *owner, PyObject *value, PyObject *exc);
/* HTTPClientParser(request_head=...): new reference or NULL */
TC_INTERNAL PyObject *tc_http_cp_create(struct tc_state *st, int request_head);
/* read_head(stream, max_header_size, prefetch); 0 or -1 (done not called) */
TC_INTERNAL int tc_http_cp_read_head(PyObject *cp, tc_stream *s, Py_ssize_t max_header_size,
                                     int prefetch, tc_http_cp_done done, PyObject *owner);
/* framing(max_body_size, collect=True): the (kind, length, rewrite) tuple */
TC_INTERNAL PyObject *tc_http_cp_framing(PyObject *cp, PyObject *max_body_size);
/* read_body(stream, bytes): the body as one bytes object */
TC_INTERNAL int tc_http_cp_read_body(PyObject *cp, tc_stream *s, tc_http_cp_done done,
                                     PyObject *owner);
/* release(): prefetched body bytes back to the stream; 0 or -1 */
TC_INTERNAL int tc_http_cp_release(PyObject *cp);

/* client_request.c: what _core.http_client_request(method, path, headers,
 * body) returns (bytes, None when upstream's write_headers must write the
 * request), for the C fetch.  New reference or NULL. */
TC_INTERNAL PyObject *tc_http_client_request_bytes(struct tc_state *st, PyObject *method,
                                                   PyObject *path, PyObject *headers,
                                                   PyObject *body);

/* client_fetch.c: _core.http_client_fetch and its type (called by client.c's
 * exec / traverse / clear) */
TC_INTERNAL int tc_http_client_fetch_exec(PyObject *module, struct tc_state *st);
TC_INTERNAL int tc_http_client_fetch_traverse(struct tc_state *st, visitproc visit, void *arg);
TC_INTERNAL void tc_http_client_fetch_clear(struct tc_state *st);

/* ---------------------------------------------- connection.c, for server_py.c */

/* Register _core.HTTPConnection (hs->ReqConnType); called by
 * tc_http_server_exec. */
TC_INTERNAL int tc_http_connection_exec(PyObject *module, struct tc_state *st);

#endif /* TC_HTTP_INTERNAL_H */
