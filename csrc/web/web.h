/* web component contract: tornado.web's request path in C.  Now: HTTPHeaders
 * (headers.c) and RequestHandler's hot path with _HandlerDelegate.execute
 * (handler.c, handler_write.c, handler_args.c, execute.c, execute_coro.c,
 * sha1.c; their private header is handler.h, their design is at the top of
 * handler.c and execute.c).
 *
 * RequestHandler.  While `web` is on, tornado_c/_webhandler.py's C
 * descriptors (_core._HandlerMethod) replace methods of upstream's
 * tornado.web.RequestHandler (and Application.log_request,
 * _HandlerDelegate.execute) on the classes themselves; the switch puts
 * upstream's functions back when it is off.  Each keeps upstream's
 * semantics on the instance's ordinary attributes; each call C makes to
 * another method of the handler goes to the subclass's override (or an
 * attribute set on the instance) when there is one.  The synchronous path
 * of _execute creates no coroutine, Future or Task.
 *
 * The type.  _core.HTTPHeaders (headers.c, its storage headers_store.c; the
 * two share web/internal.h) is the C base of
 * tornado_c.httputil.HTTPHeaders, a Python subclass that adds upstream's
 * MutableMapping mixins (keys/items/values views, pop, setdefault, update,
 * __eq__ ...) and the ABC metaclass; the base alone cannot be instantiated.
 * Every method upstream's tornado.httputil.HTTPHeaders defines itself (and
 * get) is C, with Tornado 6.6.1's behaviour: names normalized as
 * _normalize_header does, upstream's validation and errors in add /
 * parse_line / parse, upstream's combined-value cache semantics in
 * __getitem__, get_list handing out the live list of values, get_all in
 * upstream's order (names in first-insertion order, each name's values in
 * order), copies that re-validate as upstream's copy does through add().
 *
 * Storage.  An array of entries in upstream's dict order (a deleted entry is
 * a hole until the array is compacted, which happens only when it is full),
 * one per normalized name: the name and its hash, and either its only value
 * or the list of its values, plus the cached combined value.  Up to 8
 * entries a lookup scans the array; beyond that an open-addressing index
 * (int32 entry numbers, load <= 2/3, rebuilt when the array is) keeps it
 * O(1).  Hashes are the names' str hashes (SipHash, keyed per process), so
 * the index is no easier to flood than a dict.  Adding one more value to a
 * name is O(1) amortized: many repeated headers stay linear (the
 * CVE-2025-67725 class).
 *
 * The switch (see tornado_c/_switch.py, WebComponent).  The name
 * tornado.httputil.HTTPHeaders stays upstream's class, and the class keeps
 * its own members: every module, every `from tornado.httputil import
 * HTTPHeaders` and its introspection (upstream's API snapshot test) are
 * upstream's.  While `web` is on, the class wears another metaclass
 * (tornado_c.httputil._SwitchedMeta, an ABCMeta) whose __call__ is C
 * (_core._web_headers_call): HTTPHeaders(...) of the class itself gives the
 * C headers, initialised with the same arguments; its subclasses are
 * constructed as upstream's.  So RequestHandler.clear()'s
 * httputil.HTTPHeaders({...}), upstream's copy() and parse() make C
 * headers, and the C HTTP server builds its request headers in C
 * (tc_web_headers_active).  The switch puts ABCMeta back when it is off.

 * Identity with upstream's class: _core's base is registered as a virtual
 * subclass of upstream's class (isinstance(h, tornado.httputil.HTTPHeaders)
 * holds for C headers), and the Python class's metaclass counts upstream's
 * instances as its own.  Pickles of C headers name
 * tornado.httputil.HTTPHeaders with upstream's state: they load as
 * upstream's class where tornado_c is off or absent, as C headers where it
 * is on.  A subclass of the C class keeps upstream's internal dispatch:
 * add() goes through __contains__/__setitem__, __init__ through update(),
 * parse through cls() and parse_line(), copy/__str__ through get_all(), as
 * upstream's do.
 *
 * Setup.  tornado_c/httputil.py calls _core._web_headers_setup() when it is
 * imported (the classes, HTTPInputError, the slow-path helpers); creating an
 * instance before that imports it.  The switch calls
 * _core._web_headers_activate(True/False) with the metaclass it sets and
 * puts back.

 * Contract for other components (all need the GIL):
 *   tc_web_headers_active(ws)  1 when the server should build C headers.
 *   tc_web_headers_new(ws)     a new empty instance of the Python class.
 *   tc_web_headers_append_parsed(h, name, nlen, value, vlen)
 *       add() of a pair the HTTP parser already checked (name an HTTP token,
 *       value valid field content): normalized in C, value decoded latin-1.
 *   tc_web_headers_exact(ws, o)  o's type is exactly the Python class (no
 *       subclass that could override get_all), so the pairs may be read
 *       directly with tc_web_headers_next().
 *   tc_web_headers_next(o, pos, &name, &value)  the next pair in get_all()
 *       order, borrowed references valid until the headers are changed.
 *   tc_web_upstream_headers(ws) upstream's class (borrowed), or NULL before
 *       setup.
 */
#ifndef TC_WEB_H
#define TC_WEB_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "web/gen.h"

struct tc_state;

/* The RequestHandler hot path (handler.c, handler_write.c; see handler.c's
 * header for the design).  Each method of upstream's RequestHandler that C
 * implements has a hook number; C calls another method of the handler
 * through tc_web_hook_* (handler.c), which takes the C path only when the
 * handler's type resolves the name to our own descriptor (or to upstream's
 * original no-op function) and the instance does not shadow it. */
enum {
    TC_H_INIT, TC_H_CLEAR, TC_H_SET_HEADER, TC_H_ADD_HEADER, TC_H_CLEAR_HEADER,
    TC_H_CONVERT, TC_H_SET_STATUS, TC_H_GET_STATUS, TC_H_WRITE,
    TC_H_FLUSH, TC_H_FINISH, TC_H_COMPUTE_ETAG, TC_H_SET_ETAG, TC_H_CHECK_ETAG,
    TC_H_SHOULD_NOT_SEND, TC_H_CLEAR_REPR, TC_H_LOG, TC_H_REQUEST_SUMMARY, TC_H_BREAK_CYCLES,
    TC_H_CROSS_ORIGIN, TC_H_DECODE_ARGUMENT, TC_H_GET_ARGUMENTS_, TC_H_GET_ARGUMENT_,
    TC_H_GET_ARGUMENT, TC_H_GET_QUERY_ARGUMENT, TC_H_GET_BODY_ARGUMENT, TC_H_GET_ARGUMENTS,
    TC_H_GET_QUERY_ARGUMENTS, TC_H_GET_BODY_ARGUMENTS, TC_H_GET_COOKIE, TC_H_REDIRECT,
    TC_H_WRITE_ERROR, TC_H_SEND_ERROR, TC_H_LOG_EXCEPTION,
    TC_H_HANDLE_EXC,               /* _handle_request_exception */
    TC_H_APP_LOG_REQUEST,          /* Application.log_request */
    TC_H_DELEGATE_EXECUTE,         /* _HandlerDelegate.execute */
    TC_H_SET_COOKIE, TC_H_CLEAR_COOKIE,
    /* upstream no-ops: never replaced, skipped while not overridden */
    TC_H_INITIALIZE, TC_H_SET_DEFAULT_HEADERS, TC_H_ON_FINISH, TC_H_PREPARE,
    /* never replaced, only looked up: is it upstream's? */
    TC_H_EXECUTE, TC_H_PARSE_BODY, /* HTTPServerRequest._parse_body */
    TC_H_COUNT
};

/* handler_cookie.c's objects: http.cookies and datetime.timezone.utc (set
 * by _web_handler_setup), the rest made in exec; all strong */
typedef struct {
    PyObject *cookies_module, *utc;
    PyObject *s_slash, *s_domain, *s_expires, *s_path, *s_max_age, *s_httponly, *s_secure,
        *s_samesite, *s_SimpleCookie, *s_CookieError, *s_datetime, *s_now, *s_UTC,
        *s_timedelta, *s_format_timestamp, *kw_days, *kw_value_expires, *int_365;
} tc_web_cookie_state;

typedef struct tc_web_handler_state {
    PyTypeObject *MethodType;      /* _core._HandlerMethod, our descriptor type */
    /* per hook: its name (interned), our descriptor (NULL for the no-ops),
     * upstream's original function; all strong */
    PyObject *name[TC_H_COUNT];
    PyObject *ours[TC_H_COUNT];
    PyObject *orig[TC_H_COUNT];
    /* set by _web_handler_setup (tornado_c/_webhandler.py); all strong */
    PyObject *RequestHandler;      /* tornado.web.RequestHandler */
    PyObject *ObjectDict;          /* tornado.util.ObjectDict */
    PyObject *UIModuleNamespace;   /* tornado.web._UIModuleNamespace */
    PyObject *responses;           /* tornado.httputil.responses (a dict) */
    PyObject *server_value;        /* "TornadoServer/<tornado.version>" */
    PyObject *Integral;            /* numbers.Integral */
    PyObject *datetime;            /* datetime.datetime */
    PyObject *format_timestamp;    /* tornado.httputil.format_timestamp */
    PyObject *json_encode;         /* tornado.escape.json_encode */
    PyObject *Application;         /* tornado.web.Application */
    PyObject *ResponseStartLine;   /* tornado.httputil.ResponseStartLine */
    PyObject *rsl_new;             /* its __new__ as the class dict holds it */
    PyObject *Future;              /* tornado.concurrent.Future */
    PyObject *web_globals;         /* tornado.web's module dict (access_log) */
    PyObject *Logger;              /* logging.Logger */
    PyObject *HandlerDelegate;     /* tornado.web._HandlerDelegate */
    PyObject *HTTPError;           /* tornado.web.HTTPError */
    PyObject *CancelledError;      /* asyncio.CancelledError */
    PyObject *get_running_loop;    /* asyncio._get_running_loop */
    PyObject *start_resume;        /* tornado_c._webhandler._start_resume */
    PyObject *start_upstream;      /* tornado_c._webhandler._start_upstream */
    PyObject *run_execute;         /* _core._web_run_execute (execute.c) */
    /* execute_coro.c's coroutine path: the _core._WebExecute type, the set of
     * Tasks running one (each held until it ends), _webhandler._log_result
     * (set by _web_handler_setup) and two names; all strong */
    PyTypeObject *ExecuteType;
    PyObject *pending_tasks, *log_result, *s_create_task, *s_add_done_callback;
    PyObject *lower_cache;         /* {"GET": "get", ...} */
    PyObject *safe_methods, *kw_name, *int_400, *int_405;
    PyObject *ArgDefaultMarker;    /* tornado.web._ArgDefaultMarker */
    PyObject *ARG_DEFAULT;         /* tornado.web._ARG_DEFAULT */
    PyObject *MissingArgumentError; /* tornado.web.MissingArgumentError */
    PyObject *kw_strip;
    PyObject *get_task_factory;    /* asyncio.BaseEventLoop.get_task_factory */
    PyObject *ns_init;             /* tornado.web._UIModuleNamespace.__init__ */
    PyObject *is_enabled_for;      /* logging.Logger.isEnabledFor */
    PyObject *get_message;         /* tornado.web.HTTPError.get_message */
    /* handler_error.c's constants (tc_web_error_exec) */
    PyObject *int_500, *kw_reason, *kw_exc_info, *s_reason_attr, *s_status_code_attr,
        *s_get_message, *s__log_message, *s_Finish, *s_args;
    PyObject *log_from;            /* tornado_c._webhandler._log_from */
    PyObject *s_get_task_factory, *s_task_factory, *s_disabled, *s_cache, *s_isEnabledFor,
        *s_chunks, *s_body;
    /* constants made in exec */
    PyObject *bytes_join, *empty_bytes, *int_200, *int_304, *get_head, *kw_include_footers;
    char ready;                    /* setup done */
    /* the Date header of the current second */
    long long date_sec;
    PyObject *date_value;
    PyObject *s_headers, *s_status_code, *s_reason, *s_write_buffer, *s_finished,
        *s_auto_finish, *s_headers_written, *s_prepared_future, *s_application, *s_request,
        *s_ui, *s_connection, *s_set_close_callback, *s_on_connection_close, *s_ui_methods,
        *s_ui_modules, *s_ui_method, *s_tt_modules, *s_modules, *s_Server, *s_Content_Type,
        *s_Date, *s_text_html, *s_Unknown, *s_json_type, *s_init, *s_append,
        *s_transforms, *s_transform_first_chunk, *s_transform_chunk, *s_method, *s_HEAD,
        *s_new_cookie, *s_Set_Cookie, *s_write_headers, *s_write, *s_set_result, *s_update,
        *s_Etag, *s_get, *s_headers_attr, *s_If_None_Match, *s_Content_Encoding,
        *s_Content_Language, *s_uri, *s_remote_ip, *s_summary_fmt, *s_settings,
        *s_log_function, *s_access_log, *s_Content_Length, *s_finish, *s_SUPPORTED_METHODS,
        *s_parse_body, *s_decode_argument, *s_path_args, *s_path_kwargs,
        *s_stream_request_body, *s_compiled_template_cache, *s_static_hash_cache,
        *s_handler_class, *s_execute, *s_handler_kwargs, *s_handler, *s_transforms_attr,
        *s_call_soon, *s_new, *s_body_arguments, *s_form_urlencoded, *s_multipart,
        *s_strip, *s_arguments, *s_query_arguments, *s_cookies, *s_value, *s_Location;
    tc_web_cookie_state ck;        /* handler_cookie.c */
} tc_web_handler_state;

/* The request and routing (request.c, routing.c).
 *
 * What runs in C.  While `web` is on, tornado.routing.Router.start_request
 * is _core's start_request (a method descriptor wrapping upstream's
 * function, which it calls for any call it does not take itself).  It gives
 * a _core.RoutingDelegate, which does what upstream's _RoutingDelegate
 * does: headers_received() builds the request (tc_web_request_new: an
 * instance of upstream's HTTPServerRequest with upstream's attributes, in
 * upstream's order, without running Python), asks the router for the
 * delegate (find_handler), falls back to upstream's _DefaultMessageDelegate
 * (with upstream's debug log line) and passes the head on;
 * data_received/finish/on_connection_close forward as upstream's do.
 *
 * find_handler is walked in C through the objects upstream's code would
 * call, as long as each is upstream's: Application.find_handler (default
 * router, then default_handler_class, then ErrorHandler 404),
 * RuleRouter.find_handler (rules in order, target_kwargs),
 * _ApplicationRouter/RuleRouter.get_target_delegate (RequestHandler
 * classes, nested routers, connection delegates, callables),
 * Application.get_handler_delegate (an upstream _HandlerDelegate built with
 * its __init__'s attributes), PathMatches.match (the regex, a literal path
 * compared as str, path arguments decoded as _unquote_or_none does) and
 * AnyMatches.match.  Any object whose class (or the object itself, in its
 * __dict__) has its own version of the method upstream would call gets that
 * method called, with upstream's arguments; from there on that subtree is
 * Python.  Other matchers (HostMatches, DefaultHostMatches, user matchers)
 * are always called.
 *
 * Which methods a class has is looked up once per class and kept with the
 * class's version tag (tp_version_tag: CPython changes it whenever the
 * class or one of its bases is assigned an attribute), so patching a class
 * (mock.patch.object(Application, "find_handler", ...)) is seen at the next
 * request.  What is not seen: a function object changed in place (its
 * __code__ reassigned), and the module globals upstream reads that are not
 * checked (see request.c and routing.c for the ones that are).
 */
#define TC_WEB_TCACHE 16       /* types whose hooks are cached */
#define TC_WEB_PCACHE 64       /* compiled path regexes whose analysis is cached */

/* tc_web_type_flags() bits: the class has upstream's ... */
#define TC_WEB_F_REQ_INIT   0x0001u /* HTTPServerRequest.__init__ */
#define TC_WEB_F_RD         0x0002u /* _RoutingDelegate's 5 methods */
#define TC_WEB_F_APP_FIND   0x0004u /* Application.find_handler */
#define TC_WEB_F_APP_GHD    0x0008u /* Application.get_handler_delegate */
#define TC_WEB_F_RR_FIND    0x0010u /* RuleRouter.find_handler */
#define TC_WEB_F_RR_GTD     0x0020u /* RuleRouter.get_target_delegate */
#define TC_WEB_F_AR_GTD     0x0040u /* _ApplicationRouter.get_target_delegate */
#define TC_WEB_F_PM_MATCH   0x0080u /* PathMatches.match */
#define TC_WEB_F_AM_MATCH   0x0100u /* AnyMatches.match */
#define TC_WEB_F_HD_INIT    0x0200u /* _HandlerDelegate.__init__ */

#define TC_WEB_REQ_NATTRS 19    /* what HTTPServerRequest.__init__ sets */
#define TC_WEB_HD_NATTRS 9      /* what _HandlerDelegate.__init__ sets */

typedef struct tc_web_tcache {
    PyTypeObject *type;    /* strong, or NULL: a free slot */
    unsigned int tag;      /* type->tp_version_tag when flags were computed (never 0) */
    unsigned int flags;
} tc_web_tcache;

typedef struct tc_web_pcache {
    PyObject *regex;       /* strong re.Pattern, or NULL: a free slot */
    PyObject *literal;     /* strong str or NULL: the path the regex matches, if a literal */
    Py_ssize_t groups;     /* regex.groups */
    char named;            /* bool(regex.groupindex) */
} tc_web_pcache;

/* The names tc_web_route_state interns (field n_<name>). */
#define TC_WEB_ROUTE_NAMES(X)                                                 \
    X(method) X(uri) X(version) X(headers) X(body) X(remote_ip) X(protocol)   \
    X(host) X(host_name) X(files) X(connection) X(server_connection)          \
    X(_start_time) X(_finish_time) X(path) X(query) X(arguments)              \
    X(query_arguments) X(body_arguments) X(context) X(time) X(urlencoded)     \
    X(max_arguments) X(HTTPServerRequest) X(HTTPHeaders) X(HTTPInputError)    \
    X(parse_qs_bytes) X(split_host_and_port) X(_DEFAULT_PARSE_BODY_CONFIG)    \
    X(__init__) X(find_handler) X(get_target_delegate) X(get_handler_delegate) \
    X(match) X(headers_received) X(data_received) X(finish)                   \
    X(on_connection_close) X(start_request) X(rules) X(matcher) X(target)     \
    X(target_kwargs) X(regex) X(groups) X(groupindex) X(groupdict) X(pattern) \
    X(flags) X(path_args) X(path_kwargs) X(default_router) X(settings)        \
    X(default_handler_class) X(default_handler_args) X(ErrorHandler)          \
    X(status_code) X(application) X(request) X(handler_class)                 \
    X(handler_kwargs) X(chunks) X(stream_request_body) X(_stream_request_body) \
    X(_HandlerDelegate) X(_has_stream_request_body) X(_RoutingDelegate)       \
    X(_DefaultMessageDelegate) X(_CallableAdapter) X(_unquote_or_none)        \
    X(app_log) X(debug) X(get) X(partial) X(request_callback) X(xheaders)     \
    X(_ProxyAdapter)

typedef struct tc_web_route_state {
    PyTypeObject *RoutingDelegateType; /* _core.RoutingDelegate */
    PyTypeObject *MethodType;          /* _core.WebMethod: start_request's descriptor */
    /* set by _web_request_setup (tornado.httputil), all strong or NULL */
    PyObject *hu_dict;          /* tornado.httputil.__dict__ (its globals, read per request) */
    PyObject *Request;          /* upstream's HTTPServerRequest */
    PyObject *request_init;     /* HTTPServerRequest.__init__ as upstream defines it */
    PyObject *parse_qs_bytes;   /* tornado.escape.parse_qs_bytes */
    PyObject *split_host_and_port;
    PyObject *RequestStartLine;
    PyObject *ServerConnDelegate; /* httputil.HTTPServerConnectionDelegate */
    /* set by _web_routing_setup (tornado.routing) */
    PyObject *routing_dict;
    PyObject *Router, *RoutingDelegate;
    PyObject *rr_find, *rr_gtd, *pm_match, *am_match, *unquote_or_none;
    PyObject *rd_meth[5];       /* _RoutingDelegate's __init__, headers_received,
                                 * data_received, finish, on_connection_close */
    PyObject *PatternType;      /* re.Pattern */
    PyObject *partial;          /* functools.partial */
    /* set by _web_app_setup (tornado.web) */
    PyObject *web_dict;
    PyObject *RequestHandler, *HandlerDelegate;
    PyObject *app_find, *app_ghd, *ar_gtd, *hd_init, *hd_hr, *hd_finish, *has_srb;
    /* set by _web_httpserver_setup (tornado.httpserver) */
    PyObject *httpserver_dict;  /* tornado.httpserver.__dict__ (_CallableAdapter, _ProxyAdapter) */
    PyObject *hs_start_request; /* HTTPServer.start_request as upstream defines it */
    PyObject *sr_forwarder;     /* the function the switch put as Router.start_request */
    /* made in exec */
    PyObject *kw_request;       /* ("connection", "server_connection", "start_line", "headers") */
    PyObject *empty_tuple;
    PyObject *s_http10, *s_localhost, *s_Host;
    tc_web_tcache tcache[TC_WEB_TCACHE];
    unsigned int tcache_next;
    tc_web_pcache pcache[TC_WEB_PCACHE];
#define TC_WEB_NAME_FIELD(name) PyObject *n_##name;
    TC_WEB_ROUTE_NAMES(TC_WEB_NAME_FIELD)
#undef TC_WEB_NAME_FIELD
} tc_web_route_state;

typedef struct tc_web_state {
    PyTypeObject *HeadersType;     /* _core.HTTPHeaders, the C base */
    PyTypeObject *KeyIterType;     /* iter(headers) */
    PyTypeObject *AllIterType;     /* headers.get_all() */
    /* set by _web_headers_setup (tornado_c/httputil.py); all strong */
    PyObject *Headers;             /* tornado_c.httputil.HTTPHeaders */
    PyObject *UpstreamHeaders;     /* tornado.httputil.HTTPHeaders as upstream defines it */
    PyObject *HTTPInputError;      /* tornado.httputil.HTTPInputError */
    PyObject *normalize;           /* tornado.httputil._normalize_header */
    PyObject *check_add;           /* tornado_c.httputil._check_add(name, value, bytes) */
    PyObject *up_parse;            /* upstream's parse, the function under the classmethod */
    PyObject *httputil_module;     /* tornado.httputil (for its current HTTPHeaders) */
    char active;                   /* the web component is on: the server builds ours */
    /* interned names and constants, made in exec */
    PyObject *s_chars_are_bytes, *s_add, *s_parse_line, *s_get_all, *s_update,
        *s_HTTPHeaders, *s_as_list, *s_combined_cache, *s_dict, *s_comma, *s_empty,
        *s_colon_space, *s_newline;
    tc_web_handler_state h;        /* handler.c */

    /* request.c and routing.c: see "The request and routing" above */
    tc_web_route_state rt;
    tc_web_gen_state g;            /* gen.c: @gen.coroutine */
} tc_web_state;

int tc_web_exec(PyObject *module, struct tc_state *st);
int tc_web_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_web_clear(struct tc_state *st);

/* headers.c; the functions below it are headers_store.c's */
int tc_web_headers_exec(PyObject *module, struct tc_state *st);

/* handler.c */
int tc_web_handler_exec(PyObject *module, struct tc_state *st);
int tc_web_handler_traverse(tc_web_state *ws, visitproc visit, void *arg);
void tc_web_handler_clear(tc_web_state *ws);

/* hooks.c: exec (names, constants; calls request.c's and routing.c's),
 * traverse, clear of the state request.c and routing.c share */
int tc_web_route_exec(PyObject *module, struct tc_state *st);
int tc_web_route_traverse(tc_web_state *ws, visitproc visit, void *arg);
void tc_web_route_clear(tc_web_state *ws);

/* request.c.  A new tornado.httputil.HTTPServerRequest as upstream's
 * _RoutingDelegate.headers_received makes it (HTTPServerRequest(
 * connection=, server_connection=, start_line=, headers=)): built in C when
 * the class and its __init__ are upstream's, else by calling the class; or
 * NULL with the exception upstream's __init__ would raise. */
PyObject *tc_web_request_new(tc_web_state *ws, PyObject *start_line, PyObject *headers,
                             PyObject *connection, PyObject *server_conn);

/* request.c: adds request.c's module functions (called by tc_web_route_exec). */
int tc_web_request_exec(PyObject *module);

/* routing.c: adds _core.RoutingDelegate, _core.WebMethod and routing.c's
 * module functions (called by tc_web_route_exec). */
int tc_web_routing_exec(PyObject *module, tc_web_state *ws);

/* The value of a hex digit, or -1. */
static inline int
tc_web_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* hooks.c.  f (borrowed) if it is upstream's own function `qualname` of
 * `module` -- a Python function whose __module__, __qualname__ and code's
 * file are the module's (not a patch put there before tornado_c was
 * switched on, nor a functools.wraps wrapper of one) -- else NULL (no
 * exception).  What the flags compare classes with. */
PyObject *tc_web_upstream_function(PyObject *f, PyObject *module, const char *qualname);

/* hooks.c.  Give `self`, a new instance of a Python class, the attributes
 * names[i] = values[i] (borrowed) in that order, as upstream's __init__
 * does with `self.name = value` statements.  0, or -1 with an exception
 * set. */
int tc_web_set_attrs(PyObject *self, PyObject *const *names, PyObject *const *values,
                     Py_ssize_t n);

/* hooks.c.  The TC_WEB_F_* bits of type t (which of upstream's methods
 * it has, unchanged), cached per type while its version tag holds. */
unsigned int tc_web_type_flags(tc_web_state *ws, PyTypeObject *t);
/* gen.c */
int tc_web_gen_exec(PyObject *module, struct tc_state *st);
int tc_web_gen_traverse(tc_web_state *ws, visitproc visit, void *arg);
void tc_web_gen_clear(tc_web_state *ws);

static inline int
tc_web_headers_active(const tc_web_state *ws)
{
    return ws->active && ws->Headers != NULL;
}

/* New reference, or NULL with an exception set. */
PyObject *tc_web_headers_new(tc_web_state *ws);

/* For the C HTTP server: server.start_request(server_conn, request_conn)
 * when `web` is on and server's start_request is upstream's
 * HTTPServer.start_request, run in C (routing.c).  1 with *delegate (new
 * reference), 0 when not taken (the caller calls the method), -1 with an
 * exception set (what the method would have raised). */
int tc_web_server_start_request(tc_web_state *ws, PyObject *server, PyObject *server_conn,
                                PyObject *request_conn, PyObject **delegate);

/* 0, or -1 with an exception set (MemoryError). */
int tc_web_headers_append_parsed(PyObject *h, const char *name, size_t nlen,
                                 const char *value, size_t vlen);

static inline int
tc_web_headers_exact(const tc_web_state *ws, PyObject *o)
{
    return ws->Headers != NULL && (PyObject *)Py_TYPE(o) == ws->Headers;
}

/* Where tc_web_headers_next() is: start with {0, 0}. */
typedef struct tc_web_pos {
    Py_ssize_t entry, k;
} tc_web_pos;

/* 1 and the next pair (borrowed), or 0 at the end. */
int tc_web_headers_next(PyObject *h, tc_web_pos *pos, PyObject **name, PyObject **value);

static inline PyObject *
tc_web_upstream_headers(const tc_web_state *ws)
{
    return ws->UpstreamHeaders;
}

#endif /* TC_WEB_H */
