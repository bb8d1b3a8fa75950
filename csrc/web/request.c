/* web component: tornado.httputil.HTTPServerRequest built in C (web.h has
 * the design of the request and routing path).
 *
 * tc_web_request_new() makes what upstream's _RoutingDelegate makes with
 *     httputil.HTTPServerRequest(connection=..., server_connection=...,
 *                                start_line=..., headers=...)
 * -- an instance of upstream's class itself, whose __dict__ holds the same
 * attributes, in the same order, with the same values and types as
 * Tornado 6.6.1's __init__ gives them -- without running that __init__:
 *
 *   method, uri, version   the start line's items
 *   headers                `headers or HTTPHeaders()` (httputil's global)
 *   body                   b""
 *   remote_ip, protocol    getattr(getattr(connection, "context", None),
 *                          "remote_ip", None) / ("protocol", "http")
 *   host                   headers["Host"]; "127.0.0.1" for HTTP/1.0
 *                          without one; upstream's checks and HTTPInputError
 *                          messages (missing, not _ABNF.host, a comma)
 *   host_name              split_host_and_port(host.lower())[0]
 *   files                  {}
 *   connection, server_connection
 *   _start_time            httputil's time.time() (looked up per request,
 *                          so a patched time.time is the one called)
 *   _finish_time           None
 *   path, query            uri.partition("?")
 *   arguments              parse_qs_bytes(query, keep_blank_values=True,
 *                          max_num_fields=_DEFAULT_PARSE_BODY_CONFIG
 *                          .urlencoded.max_arguments), errors wrapped as
 *                          HTTPInputError("Invalid query string: %s") from e
 *   query_arguments        a copy of arguments: a new dict of new lists of
 *                          the same bytes (what copy.deepcopy gives for
 *                          dict[str, list[bytes]])
 *   body_arguments         {}
 *
 * parse_qs_bytes is Tornado 6.6.1's (tornado.escape): the query is encoded
 * latin-1, split on "&" only (never ";", whatever the Python version),
 * empty fields skipped, each field split at its first "=", blank values
 * kept, "+" turned into a space before %XX escapes are decoded (an escape
 * that is not % and two hex digits stays as it is), names decoded latin-1.
 *
 * The class is called instead (its own __init__ runs) when
 * tornado.httputil.HTTPServerRequest is not upstream's class any more, when
 * the class has another __init__ or a __new__, or when an argument is not
 * what the C server and upstream's HTTP1Connection give (a start line that
 * is not exactly a RequestStartLine, a uri, version or Host value that is
 * not exactly a str); httputil.parse_qs_bytes and split_host_and_port are
 * called when they are not upstream's functions any more (and for a query
 * with characters beyond latin-1, and a port of more than 600 digits, whose
 * errors are Python's own).  Building a request by hand
 * (HTTPServerRequest(method=..., uri=...)) always runs upstream's __init__.
 */
#include "common.h"
#include "state.h"
#include "web/web.h"

#include <string.h>

/* ------------------------------------------------------------ helpers */

/* getattr(o, name, default): 1 and a new reference in *res, 0 (absent, *res
 * NULL), or -1 with an exception set. */
static int
get_optional_attr(PyObject *o, PyObject *name, PyObject **res)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(o, name, res);
#else
    return _PyObject_LookupAttr(o, name, res);
#endif
}

/* p[0:n] with %XX decoded (and "+" as " " when plus) into out (n bytes at
 * least); returns the length written. */
static Py_ssize_t
unquote_into(const unsigned char *p, Py_ssize_t n, int plus, unsigned char *out)
{
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        int hi, lo;
        if (c == '%' && i + 2 < n && (hi = tc_web_hexval(p[i + 1])) >= 0 && (lo = tc_web_hexval(p[i + 2])) >= 0) {
            out[k++] = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        else if (c == '+' && plus) {
            out[k++] = ' ';
        }
        else {
            out[k++] = c;
        }
    }
    return k;
}

static int
needs_unquote(const unsigned char *p, Py_ssize_t n, int plus)
{
    if (memchr(p, '%', (size_t)n) != NULL) {
        return 1;
    }
    return plus && memchr(p, '+', (size_t)n) != NULL;
}

/* New bytes: p[0:n] unquoted. */
static PyObject *
unquote_bytes(const unsigned char *p, Py_ssize_t n, int plus)
{
    if (!needs_unquote(p, n, plus)) {
        return PyBytes_FromStringAndSize((const char *)p, n);
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, n);
    if (b == NULL) {
        return NULL;
    }
    Py_ssize_t k = unquote_into(p, n, plus, (unsigned char *)PyBytes_AS_STRING(b));
    if (k != n && _PyBytes_Resize(&b, k) < 0) {
        return NULL; /* _PyBytes_Resize dropped b */
    }
    return b;
}

/* New str: p[0:n] unquoted, decoded latin-1. */
static PyObject *
unquote_latin1(const unsigned char *p, Py_ssize_t n, int plus)
{
    if (!needs_unquote(p, n, plus)) {
        return PyUnicode_DecodeLatin1((const char *)p, n, NULL);
    }
    unsigned char small[256];
    unsigned char *buf = n <= (Py_ssize_t)sizeof(small) ? small : PyMem_Malloc((size_t)n);
    if (buf == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t k = unquote_into(p, n, plus, buf);
    PyObject *s = PyUnicode_DecodeLatin1((const char *)buf, k, NULL);
    if (buf != small) {
        PyMem_Free(buf);
    }
    return s;
}

/* Tornado 6.6.1's parse_qs_bytes(qs, keep_blank_values=True) of the bytes
 * qs[0:n] (the max_num_fields check is the caller's).  New dict. */
static PyObject *
parse_qs(const unsigned char *qs, Py_ssize_t n)
{
    PyObject *result = PyDict_New();
    if (result == NULL) {
        return NULL;
    }
    Py_ssize_t start = 0;
    while (start <= n) {
        const unsigned char *amp = start < n ? memchr(qs + start, '&', (size_t)(n - start)) : NULL;
        Py_ssize_t end = amp != NULL ? (Py_ssize_t)(amp - qs) : n;
        if (end > start) {
            const unsigned char *f = qs + start;
            Py_ssize_t flen = end - start;
            const unsigned char *eq = memchr(f, '=', (size_t)flen);
            Py_ssize_t nlen = eq != NULL ? (Py_ssize_t)(eq - f) : flen;
            const unsigned char *v = eq != NULL ? eq + 1 : f + flen;
            Py_ssize_t vlen = eq != NULL ? flen - nlen - 1 : 0;
            /* keep_blank_values: every field is kept */
            PyObject *key = unquote_latin1(f, nlen, 1);
            if (key == NULL) {
                goto fail;
            }
            PyObject *value = unquote_bytes(v, vlen, 1);
            if (value == NULL) {
                Py_DECREF(key);
                goto fail;
            }
            /* result.setdefault(key, []).append(value) */
            PyObject *list = PyDict_GetItemWithError(result, key); /* borrowed */
            int r;
            if (list != NULL) {
                r = PyList_Append(list, value);
            }
            else if (PyErr_Occurred()) {
                r = -1;
            }
            else {
                list = PyList_New(1);
                if (list == NULL) {
                    r = -1;
                }
                else {
                    PyList_SET_ITEM(list, 0, Py_NewRef(value));
                    r = PyDict_SetItem(result, key, list);
                    Py_DECREF(list);
                }
            }
            Py_DECREF(key);
            Py_DECREF(value);
            if (r < 0) {
                goto fail;
            }
        }
        start = end + 1;
    }
    return result;
fail:
    Py_DECREF(result);
    return NULL;
}

/* What copy.deepcopy gives for a dict of lists of bytes: a new dict with the
 * same keys and new lists of the same items. */
static PyObject *
copy_arguments(PyObject *args)
{
    PyObject *copy = PyDict_New(), *k, *v;
    Py_ssize_t pos = 0;
    if (copy == NULL) {
        return NULL;
    }
    while (PyDict_Next(args, &pos, &k, &v)) { /* borrowed k, v */
        PyObject *l = PySequence_List(v);
        if (l == NULL || PyDict_SetItem(copy, k, l) < 0) {
            Py_XDECREF(l);
            Py_DECREF(copy);
            return NULL;
        }
        Py_DECREF(l);
    }
    return copy;
}

/* The exception upstream's __init__ raises: httputil.HTTPInputError(msg),
 * with cause (when not NULL) as `raise ... from cause` sets it. */
static void
raise_input_error(tc_web_route_state *rt, PyObject *msg, PyObject *cause)
{
    PyObject *cls = PyDict_GetItemWithError(rt->hu_dict, rt->n_HTTPInputError); /* borrowed */
    if (cls == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_NameError, "name 'HTTPInputError' is not defined");
        }
        return;
    }
    PyObject *exc = PyObject_CallOneArg(cls, msg);
    if (exc == NULL) {
        return;
    }
    if (cause != NULL && PyExceptionInstance_Check(exc)) {
        PyException_SetCause(exc, Py_NewRef(cause));   /* steals */
        PyException_SetContext(exc, Py_NewRef(cause)); /* steals */
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
}

/* _ABNF.host.fullmatch(host): uri-host characters ([]: unreserved
 * sub-delims) or %XX, then an optional :port, which those characters
 * already cover. */
static int
host_is_valid(PyObject *host)
{
    if (PyUnicode_KIND(host) != PyUnicode_1BYTE_KIND) {
        return 0;
    }
    const unsigned char *p = PyUnicode_1BYTE_DATA(host);
    Py_ssize_t n = PyUnicode_GET_LENGTH(host);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            continue;
        }
        if (c == '%') {
            if (i + 2 < n && tc_web_hexval(p[i + 1]) >= 0 && tc_web_hexval(p[i + 2]) >= 0) {
                i += 2;
                continue;
            }
            return 0;
        }
        if (strchr("[]:-._~!$&'()*+,;=", c) == NULL || c == 0) {
            return 0;
        }
    }
    return 1;
}

/* split_host_and_port(host.lower())[0] for a host that passed host_is_valid
 * (ASCII): the part before the last ":" when digits follow it to the end and
 * something precedes it.  1 with a new reference in *out; 0 when upstream's
 * function must be called (a port too long for int() to be sure to take,
 * whose error is Python's own); -1 with an exception set. */
static int
host_name_of(PyObject *host, PyObject **out)
{
    const unsigned char *p = PyUnicode_1BYTE_DATA(host);
    Py_ssize_t n = PyUnicode_GET_LENGTH(host), end = n, upper = 0;
    Py_ssize_t i = n;
    while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9') {
        i--;
    }
    if (i < n && i >= 2 && p[i - 1] == ':') {
        if (n - i > 600) {
            return 0;
        }
        end = i - 1;
    }
    for (Py_ssize_t j = 0; j < end; j++) {
        upper += (p[j] >= 'A' && p[j] <= 'Z');
    }
    if (upper == 0) {
        *out = end == n ? Py_NewRef(host) : PyUnicode_Substring(host, 0, end);
        return *out != NULL ? 1 : -1;
    }
    PyObject *s = PyUnicode_New(end, 127);
    if (s == NULL) {
        return -1;
    }
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(s);
    for (Py_ssize_t j = 0; j < end; j++) {
        d[j] = (p[j] >= 'A' && p[j] <= 'Z') ? (Py_UCS1)(p[j] + 32) : p[j];
    }
    *out = s;
    return 1;
}

/* ------------------------------------------------------------ the request */

/* HTTPServerRequest(connection=, server_connection=, start_line=, headers=)
 * by calling the class (its own __init__). */
static PyObject *
request_by_call(tc_web_route_state *rt, PyObject *cls, PyObject *start_line, PyObject *headers,
                PyObject *connection, PyObject *server_conn)
{
    PyObject *args[4] = {connection, server_conn, start_line, headers};
    return PyObject_Vectorcall(cls, args, 0, rt->kw_request);
}

/* arguments = parse_qs_bytes(query, keep_blank_values=True,
 * max_num_fields=...), inside upstream's try: new dict or NULL. */
static PyObject *
request_arguments(tc_web_route_state *rt, PyObject *query)
{
    PyObject *cfg, *max = NULL, *res = NULL, *fn;
    cfg = PyDict_GetItemWithError(rt->hu_dict, rt->n__DEFAULT_PARSE_BODY_CONFIG); /* borrowed */
    if (cfg == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_NameError,
                            "name '_DEFAULT_PARSE_BODY_CONFIG' is not defined");
        }
        goto wrap;
    }
    {
        PyObject *u = PyObject_GetAttr(cfg, rt->n_urlencoded);
        if (u == NULL) {
            goto wrap;
        }
        max = PyObject_GetAttr(u, rt->n_max_arguments);
        Py_DECREF(u);
        if (max == NULL) {
            goto wrap;
        }
    }
    fn = PyDict_GetItemWithError(rt->hu_dict, rt->n_parse_qs_bytes); /* borrowed */
    if (fn != NULL && fn == rt->parse_qs_bytes && PyUnicode_KIND(query) == PyUnicode_1BYTE_KIND) {
        const unsigned char *q = PyUnicode_1BYTE_DATA(query);
        Py_ssize_t n = PyUnicode_GET_LENGTH(query);
        if (n == 0) {
            Py_DECREF(max);
            return PyDict_New();
        }
        if (max != Py_None) {
            Py_ssize_t fields = 1;
            for (const unsigned char *a = q; (a = memchr(a, '&', (size_t)(n - (a - q)))) != NULL; a++) {
                fields++;
            }
            PyObject *nf = PyLong_FromSsize_t(fields);
            if (nf == NULL) {
                goto wrap;
            }
            int over = PyObject_RichCompareBool(nf, max, Py_GT);
            Py_DECREF(nf);
            if (over < 0) {
                goto wrap;
            }
            if (over) {
                PyErr_SetString(PyExc_ValueError, "Max number of fields exceeded");
                goto wrap;
            }
        }
        res = parse_qs(q, n);
        if (res == NULL) {
            goto wrap;
        }
        Py_DECREF(max);
        return res;
    }
    if (fn == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_NameError, "name 'parse_qs_bytes' is not defined");
        }
        goto wrap;
    }
    {
        /* parse_qs_bytes(query, keep_blank_values=True, max_num_fields=max) */
        PyObject *kw = PyDict_New();
        if (kw == NULL) {
            goto wrap;
        }
        PyObject *a = PyTuple_Pack(1, query);
        if (a == NULL || PyDict_SetItemString(kw, "keep_blank_values", Py_True) < 0 ||
            PyDict_SetItemString(kw, "max_num_fields", max) < 0) {
            Py_XDECREF(a);
            Py_DECREF(kw);
            goto wrap;
        }
        res = PyObject_Call(fn, a, kw);
        Py_DECREF(a);
        Py_DECREF(kw);
        if (res == NULL) {
            goto wrap;
        }
    }
    Py_DECREF(max);
    return res;
wrap:
    Py_XDECREF(max);
    /* except Exception as e: raise HTTPInputError("Invalid query string: %s" % e) from e */
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        if (tb != NULL) {
            PyException_SetTraceback(v, tb);
        }
        PyObject *msg = PyUnicode_FromFormat("Invalid query string: %S", v);
        if (msg != NULL) {
            raise_input_error(rt, msg, v);
            Py_DECREF(msg);
        }
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    }
    return NULL;
}

PyObject *
tc_web_request_new(tc_web_state *ws, PyObject *start_line, PyObject *headers,
                   PyObject *connection, PyObject *server_conn)
{
    tc_web_route_state *rt = &ws->rt;
    PyObject *cls, *h = NULL, *context = NULL, *remote_ip = NULL, *protocol = NULL;
    PyObject *host = NULL, *host_name = NULL, *files = NULL, *start = NULL;
    PyObject *path = NULL, *query = NULL, *arguments = NULL, *query_arguments = NULL;
    PyObject *body_arguments = NULL, *self = NULL, *body;
    PyObject *method, *uri, *version; /* borrowed from start_line */

    if (rt->hu_dict == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tornado_c: tornado.httputil is not set up");
        return NULL;
    }
    cls = PyDict_GetItemWithError(rt->hu_dict, rt->n_HTTPServerRequest); /* borrowed */
    if (cls == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_AttributeError,
                            "module 'tornado.httputil' has no attribute 'HTTPServerRequest'");
        }
        return NULL;
    }
    if (cls != rt->Request || ((PyTypeObject *)cls)->tp_new != PyBaseObject_Type.tp_new ||
        !(tc_web_type_flags(ws, (PyTypeObject *)cls) & TC_WEB_F_REQ_INIT) ||
        !Py_IS_TYPE(start_line, (PyTypeObject *)rt->RequestStartLine) ||
        PyTuple_GET_SIZE(start_line) != 3) {
        return request_by_call(rt, cls, start_line, headers, connection, server_conn);
    }
    method = PyTuple_GET_ITEM(start_line, 0);
    uri = PyTuple_GET_ITEM(start_line, 1);
    version = PyTuple_GET_ITEM(start_line, 2);
    if (!PyUnicode_CheckExact(uri) || !PyUnicode_CheckExact(version)) {
        return request_by_call(rt, cls, start_line, headers, connection, server_conn);
    }

    /* self.headers = headers or HTTPHeaders() */
    int truth = PyObject_IsTrue(headers);
    if (truth < 0) {
        return NULL;
    }
    if (truth) {
        h = Py_NewRef(headers);
    }
    else {
        PyObject *hc = PyDict_GetItemWithError(rt->hu_dict, rt->n_HTTPHeaders); /* borrowed */
        if (hc == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_NameError, "name 'HTTPHeaders' is not defined");
            }
            return NULL;
        }
        h = PyObject_CallNoArgs(hc);
        if (h == NULL) {
            return NULL;
        }
    }
    body = PyBytes_FromStringAndSize(NULL, 0);
    if (body == NULL) {
        goto fail;
    }
    /* remote_ip / protocol from the connection's context */
    if (get_optional_attr(connection, rt->n_context, &context) < 0) {
        goto fail;
    }
    if (context == NULL) {
        context = Py_NewRef(Py_None);
    }
    if (get_optional_attr(context, rt->n_remote_ip, &remote_ip) < 0) {
        goto fail;
    }
    if (remote_ip == NULL) {
        remote_ip = Py_NewRef(Py_None);
    }
    if (get_optional_attr(context, rt->n_protocol, &protocol) < 0) {
        goto fail;
    }
    if (protocol == NULL) {
        protocol = PyUnicode_FromString("http");
        if (protocol == NULL) {
            goto fail;
        }
    }
    /* host */
    host = PyObject_GetItem(h, rt->s_Host);
    if (host == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
            goto fail;
        }
        PyErr_Clear();
        int old = PyObject_RichCompareBool(version, rt->s_http10, Py_EQ);
        if (old < 0) {
            goto fail;
        }
        if (!old) {
            PyObject *msg = PyUnicode_FromString("Missing Host header");
            if (msg != NULL) {
                raise_input_error(rt, msg, NULL);
                Py_DECREF(msg);
            }
            goto fail;
        }
        host = Py_NewRef(rt->s_localhost);
    }
    if (!PyUnicode_CheckExact(host)) {
        /* not what the servers give: upstream's __init__ decides */
        Py_DECREF(host);
        Py_DECREF(h);
        Py_DECREF(body);
        Py_XDECREF(context);
        Py_XDECREF(remote_ip);
        Py_XDECREF(protocol);
        return request_by_call(rt, cls, start_line, headers, connection, server_conn);
    }
    if (!host_is_valid(host)) {
        PyObject *msg = PyUnicode_FromFormat("Invalid Host header: %R", host);
        if (msg != NULL) {
            raise_input_error(rt, msg, NULL);
            Py_DECREF(msg);
        }
        goto fail;
    }
    if (PyUnicode_FindChar(host, ',', 0, PyUnicode_GET_LENGTH(host), 1) >= 0) {
        PyObject *msg = PyUnicode_FromFormat("Multiple host headers not allowed: %R", host);
        if (msg != NULL) {
            raise_input_error(rt, msg, NULL);
            Py_DECREF(msg);
        }
        goto fail;
    }
    {
        PyObject *shp = PyDict_GetItemWithError(rt->hu_dict, rt->n_split_host_and_port); /* borrowed */
        int r = 0;
        if (shp != NULL && shp == rt->split_host_and_port) {
            r = host_name_of(host, &host_name);
            if (r < 0) {
                goto fail;
            }
        }
        else if (shp == NULL && PyErr_Occurred()) {
            goto fail;
        }
        if (r == 0) {
            if (shp == NULL) {
                PyErr_SetString(PyExc_NameError, "name 'split_host_and_port' is not defined");
                goto fail;
            }
            PyObject *low = PyObject_CallMethod(host, "lower", NULL);
            PyObject *pair = low ? PyObject_CallOneArg(shp, low) : NULL;
            Py_XDECREF(low);
            if (pair == NULL) {
                goto fail;
            }
            host_name = PySequence_GetItem(pair, 0);
            Py_DECREF(pair);
            if (host_name == NULL) {
                goto fail;
            }
        }
    }
    files = PyDict_New();
    if (files == NULL) {
        goto fail;
    }
    {
        /* time.time(), through httputil's global `time` */
        PyObject *tmod = PyDict_GetItemWithError(rt->hu_dict, rt->n_time); /* borrowed */
        if (tmod == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_NameError, "name 'time' is not defined");
            }
            goto fail;
        }
        start = PyObject_CallMethodNoArgs(tmod, rt->n_time);
        if (start == NULL) {
            goto fail;
        }
    }
    {
        /* self.path, sep, self.query = self.uri.partition("?") */
        Py_ssize_t n = PyUnicode_GET_LENGTH(uri);
        Py_ssize_t q = PyUnicode_FindChar(uri, '?', 0, n, 1);
        if (q == -2) {
            goto fail;
        }
        if (q < 0) {
            path = Py_NewRef(uri);
            query = PyUnicode_New(0, 0);
        }
        else {
            path = PyUnicode_Substring(uri, 0, q);
            query = PyUnicode_Substring(uri, q + 1, n);
        }
        if (path == NULL || query == NULL) {
            goto fail;
        }
    }
    arguments = request_arguments(rt, query);
    if (arguments == NULL) {
        goto fail;
    }
    query_arguments = copy_arguments(arguments);
    if (query_arguments == NULL) {
        goto fail;
    }
    body_arguments = PyDict_New();
    if (body_arguments == NULL) {
        goto fail;
    }

    self = ((PyTypeObject *)cls)->tp_new((PyTypeObject *)cls, rt->empty_tuple, NULL);
    if (self == NULL) {
        goto fail;
    }
    {
        /* upstream's order of assignment, so vars(request) lists them alike */
        PyObject *names[TC_WEB_REQ_NATTRS] = {
            rt->n_method, rt->n_uri, rt->n_version, rt->n_headers, rt->n_body,
            rt->n_remote_ip, rt->n_protocol, rt->n_host, rt->n_host_name, rt->n_files,
            rt->n_connection, rt->n_server_connection, rt->n__start_time, rt->n__finish_time,
            rt->n_path, rt->n_query, rt->n_arguments, rt->n_query_arguments,
            rt->n_body_arguments};
        PyObject *values[TC_WEB_REQ_NATTRS] = {
            method, uri, version, h, body, remote_ip, protocol, host, host_name, files,
            connection, server_conn, start, Py_None, path, query, arguments, query_arguments,
            body_arguments};
        if (tc_web_set_attrs(self, names, values, TC_WEB_REQ_NATTRS) < 0) {
            Py_CLEAR(self);
        }
    }
fail:
    Py_XDECREF(h);
    Py_XDECREF(body);
    Py_XDECREF(context);
    Py_XDECREF(remote_ip);
    Py_XDECREF(protocol);
    Py_XDECREF(host);
    Py_XDECREF(host_name);
    Py_XDECREF(files);
    Py_XDECREF(start);
    Py_XDECREF(path);
    Py_XDECREF(query);
    Py_XDECREF(arguments);
    Py_XDECREF(query_arguments);
    Py_XDECREF(body_arguments);
    return self;
}

/* ------------------------------------------------------------ module functions */

/* _web_request_setup(httputil): the objects of tornado.httputil (and
 * tornado.escape's parse_qs_bytes it imports) the request is built with. */
static PyObject *
fn_request_setup(PyObject *module, PyObject *hu)
{
    tc_web_route_state *rt = &tc_get_state(module)->web->rt;
    PyObject *d, *cls, *init, *pqs, *shp, *rsl, *scd;
    if (!PyModule_Check(hu)) {
        PyErr_SetString(PyExc_TypeError, "_web_request_setup(module)");
        return NULL;
    }
    d = PyModule_GetDict(hu); /* borrowed */
    cls = PyDict_GetItemString(d, "HTTPServerRequest");
    pqs = PyDict_GetItemString(d, "parse_qs_bytes");
    shp = PyDict_GetItemString(d, "split_host_and_port");
    rsl = PyDict_GetItemString(d, "RequestStartLine");
    scd = PyDict_GetItemString(d, "HTTPServerConnectionDelegate");
    if (cls == NULL || !PyType_Check(cls) || pqs == NULL || shp == NULL || rsl == NULL ||
        !PyType_Check(rsl) || !PyType_IsSubtype((PyTypeObject *)rsl, &PyTuple_Type) ||
        scd == NULL) {
        PyErr_SetString(PyExc_TypeError, "tornado.httputil lacks what tornado_c needs");
        return NULL;
    }
    /* upstream's own functions, or NULL (that part has no C path): not a
     * patch made before the switch was turned on */
    init = tc_web_upstream_function(
        PyDict_GetItemString(((PyTypeObject *)cls)->tp_dict, "__init__"), hu,
        "HTTPServerRequest.__init__");
    shp = tc_web_upstream_function(shp, hu, "split_host_and_port");
    {
        PyObject *esc = PyImport_ImportModule("tornado.escape");
        if (esc == NULL) {
            return NULL;
        }
        pqs = tc_web_upstream_function(pqs, esc, "parse_qs_bytes");
        Py_DECREF(esc);
    }
    Py_XSETREF(rt->hu_dict, Py_NewRef(d));
    Py_XSETREF(rt->Request, Py_NewRef(cls));
    Py_XSETREF(rt->request_init, Py_XNewRef(init));
    Py_XSETREF(rt->parse_qs_bytes, Py_XNewRef(pqs));
    Py_XSETREF(rt->split_host_and_port, Py_XNewRef(shp));
    Py_XSETREF(rt->RequestStartLine, Py_NewRef(rsl));
    Py_XSETREF(rt->ServerConnDelegate, Py_NewRef(scd));
    Py_RETURN_NONE;
}

/* _web_request(start_line, headers, connection, server_connection): what
 * the routing delegate builds (tests compare it with upstream's). */
static PyObject *
fn_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "_web_request(start_line, headers, connection, server_connection)");
        return NULL;
    }
    return tc_web_request_new(tc_get_state(module)->web, args[0], args[1], args[2], args[3]);
}

/* _web_parse_qs(qs: str | bytes) -> dict: the C parse_qs_bytes(qs,
 * keep_blank_values=True) (str: latin-1 only). */
static PyObject *
fn_parse_qs(PyObject *Py_UNUSED(module), PyObject *qs)
{
    if (PyBytes_Check(qs)) {
        return parse_qs((const unsigned char *)PyBytes_AS_STRING(qs), PyBytes_GET_SIZE(qs));
    }
    if (PyUnicode_Check(qs) && PyUnicode_KIND(qs) == PyUnicode_1BYTE_KIND) {
        return parse_qs(PyUnicode_1BYTE_DATA(qs), PyUnicode_GET_LENGTH(qs));
    }
    PyErr_SetString(PyExc_TypeError, "_web_parse_qs() takes bytes or a latin-1 str");
    return NULL;
}

static PyMethodDef request_functions[] = {
    {"_web_request_setup", fn_request_setup, METH_O, NULL},
    {"_web_request", (PyCFunction)(void (*)(void))fn_request, METH_FASTCALL, NULL},
    {"_web_parse_qs", fn_parse_qs, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

int
tc_web_request_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, request_functions);
}
