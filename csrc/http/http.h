/* http component contract.  Other components include only this header.
 *
 * The pure-C core (no Python API; also built alone by fuzz/run.sh) is in
 * http/parser.h:
 *   - tc_http_parser: Tornado 6.6's HTTP/1.x request grammar, fed any split
 *     of the input, reporting the head (start line + headers in order, the
 *     keep-alive decision, Expect: 100-continue), body framing, de-chunked
 *     body bytes, message completion, and errors with upstream's exact
 *     message and whether it is a 400 or a silent close.  Pauses on request
 *     of a callback (the server pauses after each message until its response
 *     is flushed; after on_headers to run headers_received()).
 *   - tc_http_writer: the bytes of HTTP1Connection.write_headers / write /
 *     finish for a server response, with upstream's errors.
 *   - tc_http_judge (http/judge.h, judge.c): llhttp reading the same bytes,
 *     for the server's strict mode and the differential tests/fuzz target
 *     (_core.HTTPJudge, judge_py.c, wraps it for upstream's Python
 *     connections served in strict mode: TLS).
 * Its Python side (http_py.c, below) is one write path for every Python
 * object that writes a response.  The test build (TORNADO_C_TEST=1) adds
 * Python wrappers for the tests (test_api.c): _core.HTTPRequestParser,
 * _core.HTTPResponseWriter, _http_repr, _llhttp_selftest, _llhttp_verdict,
 * _llhttp_parse, _llhttp_strict.
 *
 * Notes for the server built on it (what HTTP1Connection does around the
 * grammar; the parser reports, the server acts):
 *  - on_headers: build RequestStartLine / HTTPHeaders (add() each pair in
 *    order; spans are valid only during the callback; the web component's
 *    C headers while it is on, web/web.h) and call
 *    delegate.headers_received(); return 1 to pause while it is async, and
 *    set max_body_size (set_max_body_size) before resuming: the framing
 *    checks run only after the resume.  Then, if head->expect_continue and
 *    the response is not finished, write "HTTP/1.1 100 (Continue)

".
 *  - an error after on_headers must also call delegate.on_connection_close();
 *    an error before it (including HTTP/1.0 "Unsupported Transfer-Encoding",
 *    raised by _can_keep_alive) must not.
 *  - content_length_rewrite: set headers["Content-Length"] to it.
 *  - on_message_complete: return 1 (pause) until the response is flushed;
 *    close instead of resuming when !keep_alive (or the app finished early).
 *  - TC_HTTP_ERR_BAD_REQUEST / _UNSATISFIABLE: see parser.h for the log line
 *    and whether "HTTP/1.1 400 Bad Request\r\n\r\n" is written.
 *
 * The server follows these notes (its files share http/internal.h):
 *   _core.HTTPServerConnection (server.c, server_py.c)  one accepted
 *       connection: a C IOStream from tc_stream_from_fd() whose input it
 *       consumes (stream.h consumer API), the parser, the idle (header) and
 *       body timers, the request loop of upstream's HTTP1ServerConnection;
 *       close() returns a Future.
 *   _core.HTTPConnection (connection.c)  one request (request.connection):
 *       write_headers / write (Futures, done at once when the kernel took
 *       every byte, else at drain), finish, set_close_callback,
 *       set_max_body_size, set_body_timeout, detach (the IOStream, unparsed
 *       bytes still buffered), context, stream.
 *   Every delegate call runs outside tc_http_parser_execute (the parser
 *   pauses after a head, a chunk_size of body and a message), so the
 *   stream's buffer is consumed exactly up to what was parsed when Python
 *   code runs.  tornado_c/httpserver.py is the Python side (HTTPServer,
 *   fallbacks to upstream's path, the connection's parameters).
 */
#ifndef TC_HTTP_H
#define TC_HTTP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "http/parser.h"

struct tc_state;
struct tc_web_state;

typedef struct tc_http_state {
    struct tc_web_state *web;       /* borrowed: the web component's part
                                     * (request headers in C while it is on) */
#ifdef TC_TEST_API
    PyTypeObject *RequestParserType;  /* test build: _core.HTTPRequestParser */
    PyTypeObject *ResponseWriterType; /* test build: _core.HTTPResponseWriter */
#endif
    /* server.c, server_py.c / connection.c: the C HTTP server */
    PyTypeObject *ServerConnType;   /* _core.HTTPServerConnection */
    PyTypeObject *ReqConnType;      /* _core.HTTPConnection */
    /* Tornado's objects the server uses, imported by server_py.c when the
     * first connection is made (see tc_http_import_tornado() there); all strong */
    char tornado_imported;          /* every field below is set */
    PyObject *RequestStartLine;     /* tornado.httputil.RequestStartLine */
    PyObject *HTTPHeaders;          /* tornado.httputil.HTTPHeaders (a type) */
    PyObject *HTTPInputError;       /* tornado.httputil.HTTPInputError */
    PyObject *HTTPOutputError;      /* tornado.httputil.HTTPOutputError */
    PyObject *StreamClosedError;    /* tornado.iostream.StreamClosedError */
    PyObject *RequestContext;       /* tornado.httpserver._HTTPRequestContext */
    PyObject *GzipDelegate;         /* tornado.http1connection._GzipMessageDelegate */
    PyObject *convert_yielded;      /* tornado.gen.convert_yielded */
    PyObject *app_log, *gen_log;    /* tornado.log's, via tornado_c._httplog */
    PyObject *rsl_new;              /* RequestStartLine.__new__ as namedtuple made it, or
                                     * NULL (then the class is called) */
    PyObject *s_new;                /* "__new__" */
    /* context.c: the connection's _HTTPRequestContext without a socket object */
    char ctx_checked;               /* ctx_init and AddressFamily looked up */
    PyObject *ctx_init;             /* strong or NULL: upstream's
                                     * _HTTPRequestContext.__init__ */
    PyObject *AddressFamily;        /* strong or NULL: socket.AddressFamily */
    PyObject *ctx_empty_tuple;      /* strong: () */
    /* idle.c: the idle timeout's lists, shared by (loop, timeout) */
#define TC_HTTP_IDLE_CACHE 8
    PyTypeObject *IdleListType;     /* _core._HTTPIdleList */
    struct tc_http_idle *idle_cache[TC_HTTP_IDLE_CACHE]; /* borrowed or NULL */
    PyObject *s_init, *s_address, *s_address_family, *s_remote_ip, *s_protocol,
        *s_orig_remote_ip, *s_orig_protocol, *s_trusted_downstream;
    /* client.c: the client's response parser */
    PyTypeObject *ClientParserType; /* _core.HTTPClientParser */
    PyTypeObject *ClientFetchType;  /* _core._HTTPClientFetch (client_fetch.c) */
    struct tc_http_fetch_kit *fetch_kit; /* owned (PyMem): its names */
    PyTypeObject *JudgeType;        /* _core.HTTPJudge (judge_py.c) */
    PyObject *ResponseStartLine;    /* tornado.httputil.ResponseStartLine,
                                     * imported with the first parser */
    /* interned names of the per-request path (made in exec) */
    PyObject *s_start_request, *s_headers_received, *s_data_received, *s_finish,
        *s_as_list, *s_combined_cache;
} tc_http_state;

int tc_http_exec(PyObject *module, struct tc_state *st);
int tc_http_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_http_clear(struct tc_state *st);

#ifdef TC_TEST_API
/* Test build only (test_api.c): registers the wrappers; called by
 * tc_http_exec. */
int tc_http_test_exec(PyObject *module, struct tc_state *st);
#endif

/* http_py.c: the Python side of the response writer (parser.h), one path for
 * every Python object that writes a response with it: the server's
 * HTTPConnection and the test build's HTTPResponseWriter wrapper. */

/* Borrowed references the write path needs (the server keeps them in its
 * helpers, the wrapper on itself). */
typedef struct tc_http_py_refs {
    PyObject *HTTPHeaders;      /* upstream's tornado.httputil.HTTPHeaders or
                                 * NULL: an object of exactly this type is read
                                 * through its _as_list */
    PyObject *HTTPOutputError;  /* tornado.httputil.HTTPOutputError */
    PyObject *s_as_list;        /* interned "_as_list" */
    const struct tc_web_state *web; /* or NULL: an object of exactly
                                 * tornado_c.httputil.HTTPHeaders is read in C
                                 * (web.h); anything else through get_all() */
} tc_http_py_refs;

/* The arguments of write_headers(start_line, headers, chunk=None) from a
 * METH_FASTCALL | METH_KEYWORDS call (borrowed; *chunk Py_None when not
 * given).  Returns 0, or -1 with TypeError set. */
int tc_http_py_write_headers_args(PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames, PyObject **start_line,
                                  PyObject **headers, PyObject **chunk);

/* HTTP1Connection.write_headers(start_line, headers, chunk) of a server
 * response, from the Python objects to the bytes appended to `out`:
 * start_line[1] (code) and [2] (reason, str() of it if not a str); the
 * header pairs of `headers` in get_all() order, str names and values
 * latin-1 encoded, bytes ones decoded as UTF-8 first (native_str); `chunk`
 * None or bytes-like.  On success the headers object gets
 * "Connection" / "Transfer-Encoding" assigned as upstream does.
 * Returns 0; -1 with an exception set (bad arguments, an encoding error:
 * the first one met, raised when the writer reaches a line that needs it);
 * 1 with ValueError / HTTPOutputError / MemoryError set when the writer
 * refused (w->closed then tells whether the caller must close its stream). */
int tc_http_py_write_headers(tc_http_writer *w, const tc_http_py_refs *refs,
                             PyObject *start_line, PyObject *headers,
                             PyObject *chunk, tc_http_buf *out);

/* Raise the Python exception for writer error `e` (ValueError,
 * refs->HTTPOutputError, MemoryError); returns -1.  TC_HTTP_WERR_ENCODE,
 * which only write_headers returns, is raised there. */
int tc_http_py_raise(tc_http_writer *w, tc_http_werr e, PyObject *output_error);
/* server_py.c: registers the server types (HTTPConnection through
 * connection.c). */
int tc_http_server_exec(PyObject *module, struct tc_state *st);
int tc_http_server_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_http_server_clear(struct tc_state *st);
/* client_request.c: registers _core.http_client_request (the bytes of a
 * client request; called by tc_http_client_exec). */
int tc_http_client_request_exec(PyObject *module);
/* client.c: registers _core.HTTPClientParser, the response grammar of
 * upstream's client-mode HTTP1Connection for tornado_c/simple_httpclient.py. */
int tc_http_client_exec(PyObject *module, struct tc_state *st);
int tc_http_client_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_http_client_clear(struct tc_state *st);
/* judge_py.c: registers _core.HTTPJudge, strict mode's judge for the
 * connections upstream's Python HTTP1Connection serves (TLS). */
int tc_http_judge_exec(PyObject *module, struct tc_state *st);

#endif /* TC_HTTP_H */
