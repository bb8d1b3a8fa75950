/* Private header of the C fetch (client_fetch.c, client_fetch_options.c):
 * the fetch object, its interned names and what the two files share.
 * Only those two files include it.
 *
 *   client_fetch.c          the steps: connect, request, response, finish,
 *                           hand-offs to Python; the type and
 *                           _core.http_client_fetch.
 *   client_fetch_options.c  which fetches the C fetch takes: the request's
 *                           options as _RequestProxy gives them and the URL
 *                           as urlsplit / split_host_and_port read it.
 */
#ifndef TC_HTTP_CLIENT_FETCH_H
#define TC_HTTP_CLIENT_FETCH_H

#include <netinet/in.h>

#include "http/internal.h"

/* interned names (made at exec) */
#define FETCH_NAMES(X)                                                                        \
    X(url, "url") X(method, "method") X(u_headers, "_headers") X(u_body, "_body")             \
    X(headers, "headers") X(body, "body") X(body_producer, "body_producer")                   \
    X(expect_100_continue, "expect_100_continue") X(network_interface, "network_interface")   \
    X(proxy_host, "proxy_host") X(proxy_port, "proxy_port")                                   \
    X(proxy_username, "proxy_username") X(proxy_password, "proxy_password")                   \
    X(proxy_auth_mode, "proxy_auth_mode") X(header_callback, "header_callback")               \
    X(streaming_callback, "streaming_callback") X(auth_username, "auth_username")             \
    X(allow_nonstandard_methods, "allow_nonstandard_methods") X(user_agent, "user_agent")     \
    X(decompress_response, "decompress_response") X(connect_timeout, "connect_timeout")       \
    X(request_timeout, "request_timeout") X(follow_redirects, "follow_redirects")             \
    X(max_redirects, "max_redirects") X(start_time, "start_time")                             \
    X(final_callback, "final_callback") X(stream, "stream") X(u_timeout, "_timeout")          \
    X(io_loop, "io_loop") X(u_run_callback, "_run_callback") X(u_on_timeout, "_on_timeout")   \
    X(code, "code") X(reason, "reason") X(chunks, "chunks") X(finish, "finish")               \
    X(max_buffer_size, "max_buffer_size") X(max_header_size, "max_header_size")               \
    X(max_body_size, "max_body_size") X(error, "error") X(close, "close")                     \
    X(c_connect_failed, "_c_connect_failed") X(c_raised, "_c_raised")                         \
    X(c_read_failed, "_c_read_failed") X(c_after_head, "_c_after_head")                       \
    X(c_send_slow, "_c_send_slow") X(h_connection, "Connection") X(h_host, "Host")            \
    X(h_user_agent, "User-Agent") X(h_content_length, "Content-Length")                       \
    X(h_content_type, "Content-Type") X(h_accept_encoding, "Accept-Encoding")                 \
    X(h_content_encoding, "Content-Encoding") X(h_location, "Location") X(v_close, "close")   \
    X(v_gzip, "gzip") X(v_form, "application/x-www-form-urlencoded")                          \
    X(v_during_request, "during request") X(lower, "lower") X(get, "get") X(HEAD, "HEAD")      \
    X(original_request, "original_request") X(request, "request")                             \
    X(release_callback, "release_callback") X(start_wall_time, "start_wall_time")             \
    X(buffer, "buffer") X(effective_url, "effective_url") X(request_time, "request_time")      \
    X(cancel, "cancel") X(c_take, "_c_take") X(c_facts, "_c_facts")                          \
    X(u_error_is_response_code, "_error_is_response_code") X(time_info, "time_info")          \
    X(dunder_init, "__init__") X(u_on_end_request, "_on_end_request")

enum {
#define FETCH_ENUM(id, text) N_##id,
    FETCH_NAMES(FETCH_ENUM)
#undef FETCH_ENUM
    N__COUNT
};

/* the component's part of tc_http_state would need every name; they live
 * in one array hung off it */
typedef struct tc_http_fetch_kit {
    PyObject *names[N__COUNT]; /* strong */
    PyObject *partial;         /* strong or NULL: functools.partial, looked up once */
    PyObject *BytesIO;         /* strong or NULL: io.BytesIO, idem */
    PyObject *HTTPResponse;    /* strong or NULL: tornado.httpclient.HTTPResponse, idem */
    PyObject *kw_response;     /* strong or NULL: the keyword names of HTTPResponse(...) */
    PyObject *response_init;   /* strong or NULL: HTTPResponse.__init__ when looked up */
    PyObject *RequestProxy;    /* strong or NULL: tornado.httpclient._RequestProxy, idem */
} fetch_kit;

#define NAME(f, id) ((f)->kit->names[N_##id])

enum { F_SCHEDULED, F_CONNECTING, F_HEAD, F_BODY, F_DONE };

typedef struct {
    PyObject_HEAD
    tc_state *st;            /* borrowed: the type holds the module */
    fetch_kit *kit;          /* borrowed: idem */
    tc_loop *loop;           /* strong */
    PyObject *conn;          /* strong until the end: the HTTPClientConnection */
    PyObject *context;       /* strong: the Context the steps run in */
    PyObject *headers;       /* strong: the request's HTTPHeaders */
    PyObject *method;        /* strong: str */
    PyObject *path;          /* strong: str, path and query as run() builds it */
    PyObject *netloc;        /* strong: str, for the Host header */
    PyObject *body;          /* strong: bytes or None */
    PyObject *user_agent;    /* strong: the option (None or a value) */
    PyObject *ua_default;    /* strong: "Tornado/<version>" */
    PyObject *connect_timeout, *request_timeout; /* strong: the options */
    PyObject *max_redirects; /* strong or NULL: follow_redirects is off */
    PyObject *req_dict;      /* strong: the HTTPRequest's __dict__ */
    PyObject *defaults;      /* strong: the client's defaults (a dict or None) */
    PyObject *url;           /* strong: the URL option */
    PyObject *bound_start;   /* strong or NULL: our _start, until it ran */
    tc_stream *stream;       /* strong or NULL */
    PyObject *parser;        /* strong or NULL */
    PyObject *timer;         /* strong or NULL: the connect timeout's TimerHandle */
    PyObject *value, *exc;   /* strong or NULL: the end of the read in flight */
    PyObject *head;          /* strong or NULL: (start_line, headers) once read */
    struct sockaddr_in addr;
    char state;              /* F_* */
    char decompress;         /* decompress_response */
    char stepping;           /* inside a step: a read's end waits for it */
    char read_ended;         /* value or exc holds a read's end */
    char finish_in_c;        /* finish() and what it calls are upstream's / ours:
                              * done here (finish_response) */
    char pooled;             /* a keep-alive pool's connection (tornado_c/_client_pool.py):
                              * conn._c_take() may give an idle stream, and the
                              * stream is the pool's after finish() */
} cfetch;

/* client_fetch_options.c: fill f's options, URL and address from the
 * HTTPRequest's __dict__ `d` and the client's `defaults` (a dict or None):
 * 1 this is a fetch for the C path, 0 it is not (f half filled: drop it),
 * -1 with an exception set. */
TC_INTERNAL int tc_http_fetch_read_options(cfetch *f, PyObject *d, PyObject *defaults);

#endif /* TC_HTTP_CLIENT_FETCH_H */
