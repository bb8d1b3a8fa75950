/* RequestHandler's response path in C: flush, finish and what finish calls
 * (ETags, Content-Length, 304s, the access log), with upstream's semantics
 * on the instance's attributes (see handler.c for the design).
 *
 * Where upstream's code takes a path that costs far more than the Python
 * around it -- a conditional request (If-None-Match), a log record that
 * will really be emitted -- the C code calls upstream's own function: the
 * records (pathname, line, function name) and the matches are then
 * upstream's by construction.
 */
#include "common.h"
#include "state.h"
#include "web/web.h"
#include "web/handler.h"
#include "web/sha1.h"

static PyObject *
call_orig(tc_web_state *ws, int hook, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    return tc_web_hook_call(self, ws->h.orig[hook], 1, args, nargs, kwnames);
}

static int
no_args(Py_ssize_t nargs, PyObject *kwnames)
{
    return nargs == 0 && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0);
}

/* the truth of self.<name>, or -1 */
static int
attr_true(PyObject *self, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(self, name);
    if (v == NULL) {
        return -1;
    }
    int r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

/* self.request.<name>, new reference */
static PyObject *
request_attr(tc_web_state *ws, PyObject *self, PyObject *name)
{
    PyObject *req = PyObject_GetAttr(self, ws->h.s_request);
    if (req == NULL) {
        return NULL;
    }
    PyObject *v = PyObject_GetAttr(req, name);
    Py_DECREF(req);
    return v;
}

/* self.request.connection, asserted not None; new reference */
static PyObject *
connection_of(tc_web_state *ws, PyObject *self)
{
    PyObject *c = request_attr(ws, self, ws->h.s_connection);
    if (c == Py_None) {
        Py_DECREF(c);
        PyErr_SetNone(PyExc_AssertionError);
        return NULL;
    }
    return c;
}

int
tc_web_has_attr(PyObject *o, PyObject *name)
{
    /* hasattr's own lookup: a plain class's missing attribute raises no
     * AttributeError to be cleared (the common case: no cookie set) */
    PyObject *v = NULL;
#if PY_VERSION_HEX >= 0x030D0000
    int r = PyObject_GetOptionalAttr(o, name, &v);
#else
    int r = _PyObject_LookupAttr(o, name, &v);
#endif
    Py_XDECREF(v);
    return r;
}

/* a = iterable unpacked into exactly n targets (Python's errors) */
static int
unpack(PyObject *seq, PyObject **out, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    if (PyTuple_CheckExact(seq) && PyTuple_GET_SIZE(seq) == n) {
        for (i = 0; i < n; i++) {
            out[i] = Py_NewRef(PyTuple_GET_ITEM(seq, i));
        }
        return 0;
    }
    PyObject *it = PyObject_GetIter(seq), *x;
    if (it == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError, "cannot unpack non-iterable %.200s object",
                         Py_TYPE(seq)->tp_name);
        }
        return -1;
    }
    for (i = 0; i < n; i++) {
        out[i] = PyIter_Next(it);
        if (out[i] == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_ValueError,
                             "not enough values to unpack (expected %zd, got %zd)", n, i);
            }
            goto fail;
        }
    }
    x = PyIter_Next(it);
    if (x != NULL) {
        Py_DECREF(x);
        PyErr_Format(PyExc_ValueError, "too many values to unpack (expected %zd)", n);
        goto fail;
    }
    if (PyErr_Occurred()) {
        goto fail;
    }
    Py_DECREF(it);
    return 0;
fail:
    while (i > 0) {
        i--;
        Py_CLEAR(out[i]);
    }
    Py_DECREF(it);
    return -1;
}

/* httputil.ResponseStartLine("", code, reason): while the class's __new__
 * is the one namedtuple made (tuple.__new__(cls, (version, code, reason))),
 * that tuple is made here directly. */
static PyObject *
response_start_line(tc_web_state *ws, PyObject *code, PyObject *reason)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *ws_empty = ws->s_empty;
    PyObject *cls = hs->ResponseStartLine;
    if (PyType_Check(cls) && PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type) &&
        _PyType_Lookup((PyTypeObject *)cls, hs->s_new) == hs->rsl_new) {
        PyObject *t = PyTuple_Pack(3, ws_empty, code, reason), *a, *r;
        a = t ? PyTuple_Pack(1, t) : NULL;
        r = a ? PyTuple_Type.tp_new((PyTypeObject *)cls, a, NULL) : NULL;
        Py_XDECREF(t);
        Py_XDECREF(a);
        return r;
    }
    PyObject *sargs[3] = {ws_empty, code, reason};
    return PyObject_Vectorcall(cls, sargs, 3, NULL);
}

static const char *const names_flush[] = {"include_footers"};

/* flush(self, include_footers=False) */
PyObject *
tc_web_flush_impl(tc_web_state *ws, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *a[1], *conn = NULL, *chunk = NULL, *buf, *transforms = NULL, *method = NULL;
    PyObject *r = NULL, *v;
    int written, head;
    if (tc_web_bind(names_flush, 1, 0, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_FLUSH, self, args, nargs, kwnames);
    }
    PyObject *include_footers = a[0] ? a[0] : Py_False;
    conn = connection_of(ws, self);
    if (conn == NULL) {
        return NULL;
    }
    Py_CLEAR(conn);
    buf = PyObject_GetAttr(self, hs->s_write_buffer);
    if (buf == NULL) {
        return NULL;
    }
    chunk = PyObject_CallOneArg(hs->bytes_join, buf);
    Py_DECREF(buf);
    if (chunk == NULL) {
        return NULL;
    }
    buf = PyList_New(0);
    if (buf == NULL || PyObject_SetAttr(self, hs->s_write_buffer, buf) < 0) {
        Py_XDECREF(buf);
        goto done;
    }
    Py_DECREF(buf);
    written = attr_true(self, hs->s_headers_written);
    if (written < 0) {
        goto done;
    }
    if (!written) {
        if (PyObject_SetAttr(self, hs->s_headers_written, Py_True) < 0) {
            goto done;
        }
        transforms = PyObject_GetAttr(self, hs->s_transforms);
        /* (self._status_code, self._headers, chunk) =
         *     transform.transform_first_chunk(self._status_code, self._headers,
         *                                     chunk, include_footers) */
        if (transforms == NULL) {
            goto done;
        }
        PyObject *it = PyObject_GetIter(transforms), *t;
        if (it == NULL) {
            goto done;
        }
        while ((t = PyIter_Next(it)) != NULL) {
            PyObject *code = PyObject_GetAttr(self, hs->s_status_code);
            PyObject *hdrs = code ? PyObject_GetAttr(self, hs->s_headers) : NULL;
            PyObject *res = NULL, *out[3] = {NULL, NULL, NULL};
            if (hdrs != NULL) {
                PyObject *targs[5] = {t, code, hdrs, chunk, include_footers};
                res = PyObject_VectorcallMethod(hs->s_transform_first_chunk, targs, 5, NULL);
            }
            Py_XDECREF(code);
            Py_XDECREF(hdrs);
            Py_DECREF(t);
            int bad = res == NULL || unpack(res, out, 3) < 0;
            Py_XDECREF(res);
            if (!bad) {
                bad = PyObject_SetAttr(self, hs->s_status_code, out[0]) < 0 ||
                      PyObject_SetAttr(self, hs->s_headers, out[1]) < 0;
                Py_SETREF(chunk, out[2]);
                out[2] = NULL;
            }
            Py_XDECREF(out[0]);
            Py_XDECREF(out[1]);
            if (bad) {
                Py_DECREF(it);
                goto done;
            }
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            goto done;
        }
        /* if self.request.method == "HEAD": chunk = b"" */
        method = request_attr(ws, self, hs->s_method);
        if (method == NULL || (head = PyObject_RichCompareBool(method, hs->s_HEAD, Py_EQ)) < 0) {
            goto done;
        }
        if (head) {
            Py_SETREF(chunk, Py_NewRef(hs->empty_bytes));
        }
        /* cookies set with set_cookie, stored aside until now */
        int has = tc_web_has_attr(self, hs->s_new_cookie);
        if (has < 0) {
            goto done;
        }
        if (has) {
            PyObject *jar = PyObject_GetAttr(self, hs->s_new_cookie), *vals, *vit, *cookie;
            vals = jar ? PyObject_CallMethod(jar, "values", NULL) : NULL;
            Py_XDECREF(jar);
            vit = vals ? PyObject_GetIter(vals) : NULL;
            Py_XDECREF(vals);
            if (vit == NULL) {
                goto done;
            }
            while ((cookie = PyIter_Next(vit)) != NULL) {
                PyObject *s = PyObject_CallMethod(cookie, "OutputString", "O", Py_None);
                Py_DECREF(cookie);
                if (s == NULL) {
                    break;
                }
                PyObject *hargs[2] = {hs->s_Set_Cookie, s};
                v = tc_web_hook(ws, self, TC_H_ADD_HEADER, tc_web_add_header_impl, hargs, 2);
                Py_DECREF(s);
                if (v == NULL) {
                    break;
                }
                Py_DECREF(v);
            }
            Py_DECREF(vit);
            if (PyErr_Occurred()) {
                goto done;
            }
        }
        /* start_line = httputil.ResponseStartLine("", self._status_code, self._reason)
         * return self.request.connection.write_headers(start_line, self._headers, chunk) */
        {
            PyObject *code = PyObject_GetAttr(self, hs->s_status_code);
            PyObject *reason = code ? PyObject_GetAttr(self, hs->s_reason) : NULL;
            PyObject *sl = NULL;
            if (reason != NULL) {
                sl = response_start_line(ws, code, reason);
            }
            Py_XDECREF(code);
            Py_XDECREF(reason);
            if (sl == NULL) {
                goto done;
            }
            conn = request_attr(ws, self, hs->s_connection);
            PyObject *hdrs = conn ? PyObject_GetAttr(self, hs->s_headers) : NULL;
            if (hdrs != NULL) {
                PyObject *wargs[4] = {conn, sl, hdrs, chunk};
                r = PyObject_VectorcallMethod(hs->s_write_headers, wargs, 4, NULL);
                Py_DECREF(hdrs);
            }
            Py_DECREF(sl);
        }
        goto done;
    }
    /* headers already written: the transforms' later chunks, then write */
    transforms = PyObject_GetAttr(self, hs->s_transforms);
    if (transforms == NULL) {
        goto done;
    }
    {
        PyObject *it = PyObject_GetIter(transforms), *t;
        if (it == NULL) {
            goto done;
        }
        while ((t = PyIter_Next(it)) != NULL) {
            PyObject *targs[3] = {t, chunk, include_footers};
            PyObject *c2 = PyObject_VectorcallMethod(hs->s_transform_chunk, targs, 3, NULL);
            Py_DECREF(t);
            if (c2 == NULL) {
                break;
            }
            Py_SETREF(chunk, c2);
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            goto done;
        }
    }
    method = request_attr(ws, self, hs->s_method);
    if (method == NULL || (head = PyObject_RichCompareBool(method, hs->s_HEAD, Py_NE)) < 0) {
        goto done;
    }
    if (head) { /* method != "HEAD" */
        conn = request_attr(ws, self, hs->s_connection);
        if (conn != NULL) {
            PyObject *wargs[2] = {conn, chunk};
            r = PyObject_VectorcallMethod(hs->s_write, wargs, 2, NULL);
        }
    } else {
        PyObject *f = PyObject_CallNoArgs(hs->Future);
        if (f != NULL) {
            v = PyObject_CallMethodOneArg(f, hs->s_set_result, Py_None);
            if (v == NULL) {
                Py_CLEAR(f);
            } else {
                Py_DECREF(v);
            }
        }
        r = f;
    }
done:
    Py_XDECREF(conn);
    Py_XDECREF(chunk);
    Py_XDECREF(transforms);
    Py_XDECREF(method);
    return r;
}

/* _should_not_send_content(self, status_code) */
PyObject *
tc_web_should_not_send_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames)
{
    int overflow = 0;
    long code;
    if (nargs != 1 || (kwnames && PyTuple_GET_SIZE(kwnames)) || !PyLong_CheckExact(args[0])) {
        return call_orig(ws, TC_H_SHOULD_NOT_SEND, self, args, nargs, kwnames);
    }
    code = PyLong_AsLongAndOverflow(args[0], &overflow);
    if (code == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyBool_FromLong(!overflow && (code == 204 || code == 304 || (code >= 100 && code < 200)));
}

/* compute_etag(self): '"%s"' % the SHA-1 hex digest of the buffered parts
 * (sha1.c; the same digest hashlib's gives) for bodies up to 8 KiB.  A
 * part that is not bytes (hashlib's update() and its errors) and larger
 * bodies go to upstream's function. */
PyObject *
tc_web_compute_etag_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *buf;
    tc_sha1 sha;
    char hex[43];
    if (!no_args(nargs, kwnames)) {
        return call_orig(ws, TC_H_COMPUTE_ETAG, self, args, nargs, kwnames);
    }
    buf = PyObject_GetAttr(self, hs->s_write_buffer);
    if (buf == NULL) {
        return NULL;
    }
    if (!PyList_CheckExact(buf)) {
        Py_DECREF(buf);
        return call_orig(ws, TC_H_COMPUTE_ETAG, self, args, nargs, kwnames);
    }
    /* small bodies only: for large ones hashlib's (OpenSSL's) SHA-1 is
     * much faster than sha1.c, and the call costs nothing in comparison */
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(buf); i++) {
        PyObject *part = PyList_GET_ITEM(buf, i); /* borrowed */
        if (!PyBytes_CheckExact(part) || (total += PyBytes_GET_SIZE(part)) > 8192) {
            Py_DECREF(buf);
            return call_orig(ws, TC_H_COMPUTE_ETAG, self, args, nargs, kwnames);
        }
    }
    tc_sha1_init(&sha);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(buf); i++) {
        PyObject *part = PyList_GET_ITEM(buf, i); /* borrowed */
        tc_sha1_update(&sha, PyBytes_AS_STRING(part), (size_t)PyBytes_GET_SIZE(part));
    }
    Py_DECREF(buf);
    hex[0] = '"';
    tc_sha1_hex(&sha, hex + 1);
    hex[41] = '"';
    hex[42] = '\0';
    return PyUnicode_FromStringAndSize(hex, 42);
}

/* set_etag_header(self) */
PyObject *
tc_web_set_etag_impl(tc_web_state *ws, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    PyObject *etag, *v;
    if (!no_args(nargs, kwnames)) {
        return call_orig(ws, TC_H_SET_ETAG, self, args, nargs, kwnames);
    }
    etag = tc_web_hook(ws, self, TC_H_COMPUTE_ETAG, tc_web_compute_etag_impl, NULL, 0);
    if (etag == NULL) {
        return NULL;
    }
    if (etag != Py_None) {
        PyObject *hargs[2] = {ws->h.s_Etag, etag};
        v = tc_web_hook(ws, self, TC_H_SET_HEADER, tc_web_set_header_impl, hargs, 2);
        Py_DECREF(etag);
        if (v == NULL) {
            return NULL;
        }
        Py_DECREF(v);
    } else {
        Py_DECREF(etag);
    }
    Py_RETURN_NONE;
}

/* check_etag_header(self): False at once when the request has no
 * If-None-Match (re.findall of "" finds nothing); upstream's function
 * otherwise (its regular expression and weak comparison). */
PyObject *
tc_web_check_etag_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *h, *computed, *inm, *hdrs;
    if (!no_args(nargs, kwnames)) {
        return call_orig(ws, TC_H_CHECK_ETAG, self, args, nargs, kwnames);
    }
    /* computed_etag = utf8(self._headers.get("Etag", "")): evaluated first */
    h = PyObject_GetAttr(self, hs->s_headers);
    if (h == NULL) {
        return NULL;
    }
    {
        PyObject *gargs[3] = {h, hs->s_Etag, ws->s_empty};
        computed = PyObject_VectorcallMethod(hs->s_get, gargs, 3, NULL);
    }
    Py_DECREF(h);
    if (computed == NULL) {
        return NULL;
    }
    int plain = PyUnicode_Check(computed) || PyBytes_Check(computed) || computed == Py_None;
    Py_DECREF(computed);
    if (!plain) {
        return call_orig(ws, TC_H_CHECK_ETAG, self, args, nargs, kwnames);
    }
    hdrs = request_attr(ws, self, hs->s_headers_attr);
    if (hdrs == NULL) {
        return NULL;
    }
    {
        PyObject *gargs[3] = {hdrs, hs->s_If_None_Match, ws->s_empty};
        inm = PyObject_VectorcallMethod(hs->s_get, gargs, 3, NULL);
    }
    Py_DECREF(hdrs);
    if (inm == NULL) {
        return NULL;
    }
    int empty = (PyUnicode_Check(inm) && PyUnicode_GET_LENGTH(inm) == 0) ||
                (PyBytes_Check(inm) && PyBytes_GET_SIZE(inm) == 0) || inm == Py_None;
    Py_DECREF(inm);
    if (empty) {
        Py_RETURN_FALSE;
    }
    return call_orig(ws, TC_H_CHECK_ETAG, self, args, nargs, kwnames);
}

/* _clear_representation_headers(self) */
PyObject *
tc_web_clear_repr_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    if (!no_args(nargs, kwnames)) {
        return call_orig(ws, TC_H_CLEAR_REPR, self, args, nargs, kwnames);
    }
    PyObject *names[3] = {hs->s_Content_Encoding, hs->s_Content_Language, hs->s_Content_Type};
    for (int i = 0; i < 3; i++) {
        PyObject *v = tc_web_hook(ws, self, TC_H_CLEAR_HEADER, tc_web_clear_header_impl,
                                  names + i, 1);
        if (v == NULL) {
            return NULL;
        }
        Py_DECREF(v);
    }
    Py_RETURN_NONE;
}

/* _request_summary(self): "{} {} ({})".format(method, uri, remote_ip) */
PyObject *
tc_web_request_summary_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *req, *m = NULL, *u = NULL, *ip = NULL, *r = NULL;
    if (!no_args(nargs, kwnames)) {
        return call_orig(ws, TC_H_REQUEST_SUMMARY, self, args, nargs, kwnames);
    }
    req = PyObject_GetAttr(self, hs->s_request);
    if (req == NULL) {
        return NULL;
    }
    m = PyObject_GetAttr(req, hs->s_method);
    Py_DECREF(req);
    req = m ? PyObject_GetAttr(self, hs->s_request) : NULL;
    u = req ? PyObject_GetAttr(req, hs->s_uri) : NULL;
    Py_XDECREF(req);
    req = u ? PyObject_GetAttr(self, hs->s_request) : NULL;
    ip = req ? PyObject_GetAttr(req, hs->s_remote_ip) : NULL;
    Py_XDECREF(req);
    if (ip != NULL) {
        if (PyUnicode_CheckExact(m) && PyUnicode_CheckExact(u) &&
            (PyUnicode_CheckExact(ip) || ip == Py_None)) {
            r = PyUnicode_FromFormat("%U %U (%S)", m, u, ip);
        } else { /* format() of each, as str.format does */
            r = PyObject_CallMethod(hs->s_summary_fmt, "format", "OOO", m, u, ip);
        }
    }
    Py_XDECREF(m);
    Py_XDECREF(u);
    Py_XDECREF(ip);
    return r;
}

/* _break_cycles(self): self.ui = None */
PyObject *
tc_web_break_cycles_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames)
{
    if (!no_args(nargs, kwnames)) {
        return call_orig(ws, TC_H_BREAK_CYCLES, self, args, nargs, kwnames);
    }
    if (PyObject_SetAttr(self, ws->h.s_ui, Py_None) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* logger.isEnabledFor(level): 1, 0, or -1 with an exception set.  While
 * it is logging.Logger's own method, what it does first is done here:
 * `disabled` gives False, a level in its _cache gives the cached answer;
 * anything else calls it. */
static int
logger_enabled(tc_web_handler_state *hs, PyObject *logger, int level)
{
    PyObject *v, *key;
    int r = tc_web_is_method(logger, hs->s_isEnabledFor, hs->is_enabled_for);
    if (r < 0) {
        return -1;
    }
    if (r == 1) {
        v = PyObject_GetAttr(logger, hs->s_disabled);
        r = v != NULL ? PyObject_IsTrue(v) : -1;
        Py_XDECREF(v);
        if (r != 0) {
            return r < 0 ? -1 : 0;
        }
        v = PyObject_GetAttr(logger, hs->s_cache);
        if (v == NULL) {
            return -1;
        }
        if (PyDict_CheckExact(v)) {
            key = PyLong_FromLong(level);
            PyObject *hit = key != NULL ? PyDict_GetItemWithError(v, key) : NULL; /* borrowed */
            Py_XDECREF(key);
            if (hit != NULL) {
                r = PyObject_IsTrue(hit);
                Py_DECREF(v);
                return r;
            }
            if (PyErr_Occurred()) {
                Py_DECREF(v);
                return -1;
            }
        }
        Py_DECREF(v);
    }
    v = PyObject_CallMethod(logger, "isEnabledFor", "i", level);
    if (v == NULL) {
        return -1;
    }
    r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

/* Application.log_request(self, handler).  Nothing is logged unless the
 * access logger is enabled for the level the status picks: then, as when
 * the settings have a log_function, the handler overrides get_status or
 * _request_summary, or the logger is not a plain logging.Logger, upstream's
 * function runs (its record, its calls).  Otherwise upstream's would only
 * have called our own pure methods and request.request_time(). */
PyObject *
tc_web_app_log_request_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *handler, *settings, *logger = NULL, *code = NULL;
    int r, level;
    long c;
    if (nargs != 1 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        goto upstream;
    }
    handler = args[0];
    settings = PyObject_GetAttr(self, hs->s_settings);
    if (settings == NULL) {
        return NULL;
    }
    r = PySequence_Contains(settings, hs->s_log_function);
    Py_DECREF(settings);
    if (r != 0) {
        if (r < 0) {
            return NULL;
        }
        goto upstream;
    }
    /* the handler's get_status and _request_summary must be ours */
    {
        PyObject *callable = NULL;
        int unbound;
        int k = tc_web_hook_resolve(ws, handler, TC_H_GET_STATUS, &callable, &unbound);
        if (k < 0) {
            return NULL;
        }
        if (k == 0) {
            Py_DECREF(callable);
            goto upstream;
        }
        k = tc_web_hook_resolve(ws, handler, TC_H_REQUEST_SUMMARY, &callable, &unbound);
        if (k < 0) {
            return NULL;
        }
        if (k == 0) {
            Py_DECREF(callable);
            goto upstream;
        }
    }
    code = PyObject_GetAttr(handler, hs->s_status_code);
    if (code == NULL) {
        return NULL;
    }
    if (!PyLong_CheckExact(code)) {
        Py_DECREF(code);
        goto upstream;
    }
    c = PyLong_AsLong(code);
    Py_DECREF(code);
    if (c == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        goto upstream;
    }
    level = c < 400 ? 20 : c < 500 ? 30 : 40; /* INFO, WARNING, ERROR */
    logger = PyDict_GetItemWithError(hs->web_globals, hs->s_access_log); /* borrowed */
    if (logger == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        goto upstream;
    }
    if ((PyObject *)Py_TYPE(logger) != hs->Logger) {
        goto upstream;
    }
    r = logger_enabled(hs, logger, level);
    if (r < 0) {
        return NULL;
    }
    if (r) {
        goto upstream;
    }
    Py_RETURN_NONE;
upstream:
    return call_orig(ws, TC_H_APP_LOG_REQUEST, self, args, nargs, kwnames);
}

/* _log(self): self.application.log_request(self) */
PyObject *
tc_web_log_impl(tc_web_state *ws, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    PyObject *app, *r;
    if (!no_args(nargs, kwnames)) {
        return call_orig(ws, TC_H_LOG, self, args, nargs, kwnames);
    }
    app = PyObject_GetAttr(self, ws->h.s_application);
    if (app == NULL) {
        return NULL;
    }
    r = tc_web_hook(ws, app, TC_H_APP_LOG_REQUEST, tc_web_app_log_request_impl, &self, 1);
    Py_DECREF(app);
    return r;
}

static const char *const names_chunk[] = {"chunk"};

/* finish(self, chunk=None) */
PyObject *
tc_web_finish_impl(tc_web_state *ws, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                   PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *a[1], *v, *future = NULL, *conn = NULL;
    int r;
    if (tc_web_bind(names_chunk, 1, 0, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_FINISH, self, args, nargs, kwnames);
    }
    r = attr_true(self, hs->s_finished);
    if (r < 0) {
        return NULL;
    }
    if (r) {
        PyErr_SetString(PyExc_RuntimeError, "finish() called twice");
        return NULL;
    }
    if (a[0] != NULL && a[0] != Py_None) {
        v = tc_web_hook(ws, self, TC_H_WRITE, tc_web_write_impl, a, 1);
        if (v == NULL) {
            return NULL;
        }
        Py_DECREF(v);
    }
    r = attr_true(self, hs->s_headers_written);
    if (r < 0) {
        return NULL;
    }
    if (!r) {
        /* ETag for a 200 to GET/HEAD without one */
        PyObject *code = PyObject_GetAttr(self, hs->s_status_code);
        if (code == NULL) {
            return NULL;
        }
        r = PyObject_RichCompareBool(code, hs->int_200, Py_EQ);
        Py_DECREF(code);
        if (r > 0) {
            PyObject *m = request_attr(ws, self, hs->s_method);
            if (m == NULL) {
                return NULL;
            }
            r = PySequence_Contains(hs->get_head, m);
            Py_DECREF(m);
        }
        if (r > 0) {
            PyObject *h = PyObject_GetAttr(self, hs->s_headers);
            if (h == NULL) {
                return NULL;
            }
            r = PySequence_Contains(h, hs->s_Etag);
            Py_DECREF(h);
            r = r < 0 ? -1 : !r;
        }
        if (r < 0) {
            return NULL;
        }
        if (r) {
            v = tc_web_hook(ws, self, TC_H_SET_ETAG, tc_web_set_etag_impl, NULL, 0);
            if (v == NULL) {
                return NULL;
            }
            Py_DECREF(v);
            v = tc_web_hook(ws, self, TC_H_CHECK_ETAG, tc_web_check_etag_impl, NULL, 0);
            if (v == NULL) {
                return NULL;
            }
            r = PyObject_IsTrue(v);
            Py_DECREF(v);
            if (r < 0) {
                return NULL;
            }
            if (r) {
                PyObject *empty = PyList_New(0);
                if (empty == NULL || PyObject_SetAttr(self, hs->s_write_buffer, empty) < 0) {
                    Py_XDECREF(empty);
                    return NULL;
                }
                Py_DECREF(empty);
                v = tc_web_hook(ws, self, TC_H_SET_STATUS, tc_web_set_status_impl, &hs->int_304,
                                1);
                if (v == NULL) {
                    return NULL;
                }
                Py_DECREF(v);
            }
        }
        /* no body for 1xx, 204, 304; else Content-Length */
        code = PyObject_GetAttr(self, hs->s_status_code);
        if (code == NULL) {
            return NULL;
        }
        v = tc_web_hook(ws, self, TC_H_SHOULD_NOT_SEND, tc_web_should_not_send_impl, &code, 1);
        if (v == NULL) {
            Py_DECREF(code);
            return NULL;
        }
        r = PyObject_IsTrue(v);
        Py_DECREF(v);
        if (r < 0) {
            Py_DECREF(code);
            return NULL;
        }
        if (r) {
            Py_DECREF(code);
            r = attr_true(self, hs->s_write_buffer);
            if (r < 0) {
                return NULL;
            }
            if (r) {
                code = PyObject_GetAttr(self, hs->s_status_code);
                if (code != NULL) {
                    PyObject *s = PyObject_Format(code, NULL);
                    if (s != NULL) {
                        PyErr_Format(PyExc_RuntimeError,
                                     "Cannot send body with status code HTTP%U", s);
                        Py_DECREF(s);
                    }
                    Py_DECREF(code);
                }
                return NULL;
            }
            v = tc_web_hook(ws, self, TC_H_CLEAR_REPR, tc_web_clear_repr_impl, NULL, 0);
            if (v == NULL) {
                return NULL;
            }
            Py_DECREF(v);
        } else {
            Py_DECREF(code);
            PyObject *h = PyObject_GetAttr(self, hs->s_headers);
            if (h == NULL) {
                return NULL;
            }
            r = PySequence_Contains(h, hs->s_Content_Length);
            Py_DECREF(h);
            if (r < 0) {
                return NULL;
            }
            if (!r) {
                /* sum(len(part) for part in self._write_buffer) */
                PyObject *buf = PyObject_GetAttr(self, hs->s_write_buffer), *len;
                if (buf == NULL) {
                    return NULL;
                }
                if (PyList_CheckExact(buf)) {
                    Py_ssize_t total = 0;
                    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(buf); i++) {
                        Py_ssize_t n = PyObject_Length(PyList_GET_ITEM(buf, i));
                        if (n < 0) {
                            Py_DECREF(buf);
                            return NULL;
                        }
                        total += n;
                    }
                    len = PyLong_FromSsize_t(total);
                } else {
                    PyObject *it = PyObject_GetIter(buf), *part;
                    len = it ? PyLong_FromLong(0) : NULL;
                    while (len != NULL && (part = PyIter_Next(it)) != NULL) {
                        Py_ssize_t n = PyObject_Length(part);
                        Py_DECREF(part);
                        PyObject *nn = n < 0 ? NULL : PyLong_FromSsize_t(n);
                        PyObject *sum = nn ? PyNumber_Add(len, nn) : NULL;
                        Py_XDECREF(nn);
                        Py_SETREF(len, sum);
                    }
                    Py_XDECREF(it);
                    if (PyErr_Occurred()) {
                        Py_CLEAR(len);
                    }
                }
                Py_DECREF(buf);
                if (len == NULL) {
                    return NULL;
                }
                PyObject *hargs[2] = {hs->s_Content_Length, len};
                v = tc_web_hook(ws, self, TC_H_SET_HEADER, tc_web_set_header_impl, hargs, 2);
                Py_DECREF(len);
                if (v == NULL) {
                    return NULL;
                }
                Py_DECREF(v);
            }
        }
    }
    /* self.request.connection.set_close_callback(None) */
    conn = connection_of(ws, self);
    if (conn == NULL) {
        return NULL;
    }
    Py_CLEAR(conn);
    conn = request_attr(ws, self, hs->s_connection);
    if (conn == NULL) {
        return NULL;
    }
    {
        PyObject *cargs[2] = {conn, Py_None};
        v = PyObject_VectorcallMethod(hs->s_set_close_callback, cargs, 2, NULL);
    }
    Py_CLEAR(conn);
    if (v == NULL) {
        return NULL;
    }
    Py_DECREF(v);
    /* future = self.flush(include_footers=True) */
    {
        PyObject *fargs[1] = {Py_True};
        PyObject *callable = NULL;
        int unbound;
        int k = tc_web_hook_resolve(ws, self, TC_H_FLUSH, &callable, &unbound);
        if (k < 0) {
            return NULL;
        }
        if (k == 1) {
            future = tc_web_flush_impl(ws, self, fargs, 0, hs->kw_include_footers);
        } else {
            future = tc_web_hook_call(self, callable, unbound, fargs, 0, hs->kw_include_footers);
            Py_DECREF(callable);
        }
        if (future == NULL) {
            return NULL;
        }
    }
    /* self.request.connection.finish() */
    conn = request_attr(ws, self, hs->s_connection);
    if (conn == NULL) {
        goto fail;
    }
    v = PyObject_VectorcallMethod(hs->s_finish, &conn, 1, NULL);
    Py_CLEAR(conn);
    if (v == NULL) {
        goto fail;
    }
    Py_DECREF(v);
    v = tc_web_hook(ws, self, TC_H_LOG, tc_web_log_impl, NULL, 0);
    if (v == NULL) {
        goto fail;
    }
    Py_DECREF(v);
    if (PyObject_SetAttr(self, hs->s_finished, Py_True) < 0) {
        goto fail;
    }
    v = tc_web_hook(ws, self, TC_H_ON_FINISH, NULL, NULL, 0);
    if (v == NULL) {
        goto fail;
    }
    Py_DECREF(v);
    v = tc_web_hook(ws, self, TC_H_BREAK_CYCLES, tc_web_break_cycles_impl, NULL, 0);
    if (v == NULL) {
        goto fail;
    }
    Py_DECREF(v);
    return future;
fail:
    Py_XDECREF(future);
    return NULL;
}
