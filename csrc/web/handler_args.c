/* RequestHandler's arguments, get_cookie, redirect and the default error
 * page in C, with upstream's semantics (see handler.c for the design).
 * Anything unusual (values that are not str/bytes, a decode error, a
 * traceback page) goes to upstream's own function. */
#include "common.h"
#include "state.h"
#include "web/web.h"
#include "web/handler.h"

static PyObject *
call_orig(tc_web_state *ws, int hook, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    return tc_web_hook_call(self, ws->h.orig[hook], 1, args, nargs, kwnames);
}

static const char *const names_decode[] = {"value", "name"};

/* decode_argument(self, value, name=None) */
PyObject *
tc_web_decode_argument_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2], *r;
    if (tc_web_bind(names_decode, 2, 1, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_DECODE_ARGUMENT, self, args, nargs, kwnames);
    }
    if (PyUnicode_Check(a[0]) || a[0] == Py_None) {
        return Py_NewRef(a[0]); /* _unicode() returns them as they are */
    }
    if (!PyBytes_Check(a[0])) {
        return call_orig(ws, TC_H_DECODE_ARGUMENT, self, args, nargs, kwnames);
    }
    r = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(a[0]), PyBytes_GET_SIZE(a[0]), NULL);
    if (r == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear(); /* upstream's HTTPError(400, "Invalid unicode in ...") */
        return call_orig(ws, TC_H_DECODE_ARGUMENT, self, args, nargs, kwnames);
    }
    return r;
}

/* RequestHandler._remove_control_chars_regex.sub(" ", s): [\x00-\x08\x0e-\x1f] */
static PyObject *
remove_control_chars(PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), i;
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    for (i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c <= 0x08 || (c >= 0x0e && c <= 0x1f)) {
            break;
        }
    }
    if (i == n) {
        return Py_NewRef(s);
    }
    PyObject *out = PyUnicode_New(n, PyUnicode_MAX_CHAR_VALUE(s));
    if (out == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c <= 0x08 || (c >= 0x0e && c <= 0x1f)) {
            c = ' ';
        }
        PyUnicode_WRITE(PyUnicode_KIND(out), PyUnicode_DATA(out), i, c);
    }
    return out;
}

static const char *const names_get_arguments_[] = {"name", "source", "strip"};

/* _get_arguments(self, name, source, strip=True) */
PyObject *
tc_web_get_arguments__impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *a[3], *values = NULL, *list = NULL, *it = NULL, *v;
    int strip;
    if (tc_web_bind(names_get_arguments_, 3, 2, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_GET_ARGUMENTS_, self, args, nargs, kwnames);
    }
    /* source.get(name, []) */
    if (PyDict_CheckExact(a[1])) {
        list = PyDict_GetItemWithError(a[1], a[0]); /* borrowed */
        if (list == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            return PyList_New(0);
        }
        Py_INCREF(list);
    } else {
        PyObject *empty = PyList_New(0);
        list = empty ? PyObject_CallMethod(a[1], "get", "OO", a[0], empty) : NULL;
        Py_XDECREF(empty);
        if (list == NULL) {
            return NULL;
        }
    }
    strip = a[2] == NULL ? 1 : PyObject_IsTrue(a[2]);
    if (strip < 0) {
        goto fail;
    }
    values = PyList_New(0);
    it = values ? PyObject_GetIter(list) : NULL;
    if (it == NULL) {
        goto fail;
    }
    while ((v = PyIter_Next(it)) != NULL) {
        /* s = self.decode_argument(v, name=name) */
        PyObject *s, *callable = NULL, *dargs[2] = {v, a[0]};
        int unbound;
        int k = tc_web_hook_resolve(ws, self, TC_H_DECODE_ARGUMENT, &callable, &unbound);
        if (k < 0) {
            Py_DECREF(v);
            goto fail;
        }
        if (k == 1) {
            s = tc_web_decode_argument_impl(ws, self, dargs, 1, hs->kw_name);
        } else {
            s = tc_web_hook_call(self, callable, unbound, dargs, 1, hs->kw_name);
            Py_DECREF(callable);
        }
        Py_DECREF(v);
        if (s == NULL) {
            goto fail;
        }
        if (PyUnicode_Check(s)) {
            Py_SETREF(s, remove_control_chars(s));
            if (s == NULL) {
                goto fail;
            }
        }
        if (strip) {
            Py_SETREF(s, PyObject_CallMethodNoArgs(s, hs->s_strip));
            if (s == NULL) {
                goto fail;
            }
        }
        int r = PyList_Append(values, s);
        Py_DECREF(s);
        if (r < 0) {
            goto fail;
        }
    }
    if (PyErr_Occurred()) {
        goto fail;
    }
    Py_DECREF(it);
    Py_DECREF(list);
    return values;
fail:
    Py_XDECREF(it);
    Py_XDECREF(list);
    Py_XDECREF(values);
    return NULL;
}

static const char *const names_get_argument_[] = {"name", "default", "source", "strip"};

/* _get_argument(self, name, default, source, strip=True) */
PyObject *
tc_web_get_argument__impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *a[4], *values, *r;
    if (tc_web_bind(names_get_argument_, 4, 3, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_GET_ARGUMENT_, self, args, nargs, kwnames);
    }
    /* args = self._get_arguments(name, source, strip=strip) */
    {
        PyObject *gargs[3] = {a[0], a[2], a[3] ? a[3] : Py_True};
        PyObject *callable = NULL;
        int unbound;
        int k = tc_web_hook_resolve(ws, self, TC_H_GET_ARGUMENTS_, &callable, &unbound);
        if (k < 0) {
            return NULL;
        }
        if (k == 1) {
            values = tc_web_get_arguments__impl(ws, self, gargs, 2, hs->kw_strip);
        } else {
            values = tc_web_hook_call(self, callable, unbound, gargs, 2, hs->kw_strip);
            Py_DECREF(callable);
        }
    }
    if (values == NULL) {
        return NULL;
    }
    int truth = PyObject_IsTrue(values);
    if (truth < 0) {
        Py_DECREF(values);
        return NULL;
    }
    if (!truth) {
        Py_DECREF(values);
        int marker = PyObject_IsInstance(a[1], hs->ArgDefaultMarker);
        if (marker < 0) {
            return NULL;
        }
        if (marker) {
            PyObject *e = PyObject_CallOneArg(hs->MissingArgumentError, a[0]);
            if (e != NULL) {
                PyErr_SetObject((PyObject *)Py_TYPE(e), e);
                Py_DECREF(e);
            }
            return NULL;
        }
        return Py_NewRef(a[1]);
    }
    /* args[-1] */
    if (PyList_CheckExact(values)) {
        r = Py_NewRef(PyList_GET_ITEM(values, PyList_GET_SIZE(values) - 1));
    } else {
        PyObject *idx = PyLong_FromLong(-1);
        r = idx ? PyObject_GetItem(values, idx) : NULL;
        Py_XDECREF(idx);
    }
    Py_DECREF(values);
    return r;
}

/* self.request.<source> */
static PyObject *
request_source(tc_web_state *ws, PyObject *self, PyObject *source)
{
    PyObject *req = PyObject_GetAttr(self, ws->h.s_request);
    if (req == NULL) {
        return NULL;
    }
    PyObject *v = PyObject_GetAttr(req, source);
    Py_DECREF(req);
    return v;
}

static const char *const names_get_argument[] = {"name", "default", "strip"};

/* get_argument / get_query_argument / get_body_argument:
 * self._get_argument(name, default, self.request.<source>, strip) */
static PyObject *
get_one(tc_web_state *ws, int hook, PyObject *source, PyObject *self, PyObject *const *args,
        Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *a[3], *src, *r;
    if (tc_web_bind(names_get_argument, 3, 1, args, nargs, kwnames, a)) {
        return call_orig(ws, hook, self, args, nargs, kwnames);
    }
    src = request_source(ws, self, source);
    if (src == NULL) {
        return NULL;
    }
    PyObject *gargs[4] = {a[0], a[1] ? a[1] : hs->ARG_DEFAULT, src, a[2] ? a[2] : Py_True};
    r = tc_web_hook(ws, self, TC_H_GET_ARGUMENT_, tc_web_get_argument__impl, gargs, 4);
    Py_DECREF(src);
    return r;
}

static const char *const names_get_arguments[] = {"name", "strip"};

/* get_arguments / get_query_arguments / get_body_arguments:
 * self._get_arguments(name, self.request.<source>, strip) */
static PyObject *
get_all(tc_web_state *ws, int hook, PyObject *source, int assert_bool, PyObject *self,
        PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2], *src, *r;
    if (tc_web_bind(names_get_arguments, 2, 1, args, nargs, kwnames, a)) {
        return call_orig(ws, hook, self, args, nargs, kwnames);
    }
    if (assert_bool && a[1] != NULL && !PyBool_Check(a[1])) {
        PyErr_SetNone(PyExc_AssertionError); /* assert isinstance(strip, bool) */
        return NULL;
    }
    src = request_source(ws, self, source);
    if (src == NULL) {
        return NULL;
    }
    PyObject *gargs[3] = {a[0], src, a[1] ? a[1] : Py_True};
    r = tc_web_hook(ws, self, TC_H_GET_ARGUMENTS_, tc_web_get_arguments__impl, gargs, 3);
    Py_DECREF(src);
    return r;
}

PyObject *
tc_web_get_argument_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames)
{
    return get_one(ws, TC_H_GET_ARGUMENT, ws->h.s_arguments, self, args, nargs, kwnames);
}

PyObject *
tc_web_get_query_argument_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames)
{
    return get_one(ws, TC_H_GET_QUERY_ARGUMENT, ws->h.s_query_arguments, self, args, nargs,
                   kwnames);
}

PyObject *
tc_web_get_body_argument_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                              Py_ssize_t nargs, PyObject *kwnames)
{
    return get_one(ws, TC_H_GET_BODY_ARGUMENT, ws->h.s_body_arguments, self, args, nargs,
                   kwnames);
}

PyObject *
tc_web_get_arguments_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kwnames)
{
    return get_all(ws, TC_H_GET_ARGUMENTS, ws->h.s_arguments, 1, self, args, nargs, kwnames);
}

PyObject *
tc_web_get_query_arguments_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames)
{
    return get_all(ws, TC_H_GET_QUERY_ARGUMENTS, ws->h.s_query_arguments, 0, self, args, nargs,
                   kwnames);
}

PyObject *
tc_web_get_body_arguments_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames)
{
    return get_all(ws, TC_H_GET_BODY_ARGUMENTS, ws->h.s_body_arguments, 0, self, args, nargs,
                   kwnames);
}

static const char *const names_get_cookie[] = {"name", "default"};

/* get_cookie(self, name, default=None) */
PyObject *
tc_web_get_cookie_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *a[2], *cookies, *m, *r;
    int has;
    if (tc_web_bind(names_get_cookie, 2, 1, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_GET_COOKIE, self, args, nargs, kwnames);
    }
    PyObject *dflt = a[1] ? a[1] : Py_None;
    /* if self.request.cookies is not None and name in self.request.cookies: */
    cookies = request_source(ws, self, hs->s_cookies);
    if (cookies == NULL) {
        return NULL;
    }
    if (cookies == Py_None) {
        Py_DECREF(cookies);
        return Py_NewRef(dflt);
    }
    Py_DECREF(cookies);
    cookies = request_source(ws, self, hs->s_cookies);
    if (cookies == NULL) {
        return NULL;
    }
    has = PySequence_Contains(cookies, a[0]);
    Py_DECREF(cookies);
    if (has <= 0) {
        return has < 0 ? NULL : Py_NewRef(dflt);
    }
    /*     return self.request.cookies[name].value */
    cookies = request_source(ws, self, hs->s_cookies);
    if (cookies == NULL) {
        return NULL;
    }
    m = PyObject_GetItem(cookies, a[0]);
    Py_DECREF(cookies);
    if (m == NULL) {
        return NULL;
    }
    r = PyObject_GetAttr(m, hs->s_value);
    Py_DECREF(m);
    return r;
}

static const char *const names_redirect[] = {"url", "permanent", "status"};

/* redirect(self, url, permanent=False, status=None) */
PyObject *
tc_web_redirect_impl(tc_web_state *ws, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *a[3], *v, *status, *url;
    int r;
    if (tc_web_bind(names_redirect, 3, 1, args, nargs, kwnames, a) ||
        !(PyUnicode_Check(a[0]) || PyBytes_Check(a[0]) || a[0] == Py_None)) {
        /* utf8(url)'s TypeError comes after set_status: upstream's order */
        return call_orig(ws, TC_H_REDIRECT, self, args, nargs, kwnames);
    }
    v = PyObject_GetAttr(self, hs->s_headers_written);
    r = v ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    if (r < 0) {
        return NULL;
    }
    if (r) {
        PyErr_SetString(PyExc_Exception, "Cannot redirect after headers have been written");
        return NULL;
    }
    if (a[2] == NULL || a[2] == Py_None) {
        r = a[1] ? PyObject_IsTrue(a[1]) : 0;
        if (r < 0) {
            return NULL;
        }
        status = PyLong_FromLong(r ? 301 : 302);
        if (status == NULL) {
            return NULL;
        }
    } else {
        /* assert isinstance(status, int) and 300 <= status <= 399 */
        int ok = PyLong_Check(a[2]);
        if (ok) {
            int overflow;
            long s = PyLong_AsLongAndOverflow(a[2], &overflow);
            if (s == -1 && PyErr_Occurred()) {
                return NULL;
            }
            ok = !overflow && s >= 300 && s <= 399;
        }
        if (!ok) {
            PyErr_SetNone(PyExc_AssertionError);
            return NULL;
        }
        status = Py_NewRef(a[2]);
    }
    v = tc_web_hook(ws, self, TC_H_SET_STATUS, tc_web_set_status_impl, &status, 1);
    Py_DECREF(status);
    if (v == NULL) {
        return NULL;
    }
    Py_DECREF(v);
    /* self.set_header("Location", utf8(url)) */
    url = PyUnicode_Check(a[0]) ? PyUnicode_AsUTF8String(a[0]) : Py_NewRef(a[0]);
    if (url == NULL) {
        return NULL;
    }
    PyObject *hargs[2] = {hs->s_Location, url};
    v = tc_web_hook(ws, self, TC_H_SET_HEADER, tc_web_set_header_impl, hargs, 2);
    Py_DECREF(url);
    if (v == NULL) {
        return NULL;
    }
    Py_DECREF(v);
    v = tc_web_hook(ws, self, TC_H_FINISH, tc_web_finish_impl, NULL, 0);
    if (v == NULL) {
        return NULL;
    }
    Py_DECREF(v);
    Py_RETURN_NONE;
}

/* html.escape(s) for a str: & < > " ' */
static PyObject *
xhtml_escape(PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), extra = 0;
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        switch (PyUnicode_READ(kind, data, i)) {
        case '&':
            extra += 4;
            break;
        case '<':
        case '>':
            extra += 3;
            break;
        case '"':
            extra += 5;
            break;
        case '\'':
            extra += 5;
            break;
        default:
            break;
        }
    }
    if (extra == 0) {
        return Py_NewRef(s);
    }
    PyObject *out = PyUnicode_New(n + extra, PyUnicode_MAX_CHAR_VALUE(s));
    if (out == NULL) {
        return NULL;
    }
    int okind = PyUnicode_KIND(out);
    void *odata = PyUnicode_DATA(out);
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        const char *rep = c == '&'    ? "&amp;"
                          : c == '<'  ? "&lt;"
                          : c == '>'  ? "&gt;"
                          : c == '"'  ? "&quot;"
                          : c == '\'' ? "&#x27;"
                                      : NULL;
        if (rep == NULL) {
            PyUnicode_WRITE(okind, odata, j++, c);
        } else {
            for (; *rep; rep++) {
                PyUnicode_WRITE(okind, odata, j++, (Py_UCS4)*rep);
            }
        }
    }
    return out;
}

/* write_error(self, status_code, **kwargs): the default page.  The
 * traceback page (serve_traceback with exc_info) is upstream's. */
PyObject *
tc_web_write_error_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *code, *v, *settings, *reason, *esc, *page;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    int has_exc = 0, r;
    if (nargs != 1) {
        return call_orig(ws, TC_H_WRITE_ERROR, self, args, nargs, kwnames);
    }
    code = args[0];
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, k);
        if (PyUnicode_CompareWithASCIIString(kw, "status_code") == 0) {
            return call_orig(ws, TC_H_WRITE_ERROR, self, args, nargs, kwnames);
        }
        has_exc |= PyUnicode_CompareWithASCIIString(kw, "exc_info") == 0;
    }
    /* if self._should_not_send_content(status_code): self.finish() */
    v = tc_web_hook(ws, self, TC_H_SHOULD_NOT_SEND, tc_web_should_not_send_impl, &code, 1);
    r = v ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    if (r < 0) {
        return NULL;
    }
    if (r) {
        v = tc_web_hook(ws, self, TC_H_FINISH, tc_web_finish_impl, NULL, 0);
        if (v == NULL) {
            return NULL;
        }
        Py_DECREF(v);
        Py_RETURN_NONE;
    }
    /* elif self.settings.get("serve_traceback") and "exc_info" in kwargs: */
    settings = PyObject_GetAttr(self, hs->s_settings);
    if (settings == NULL) {
        return NULL;
    }
    v = PyObject_CallMethod(settings, "get", "s", "serve_traceback");
    Py_DECREF(settings);
    r = v ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    if (r < 0) {
        return NULL;
    }
    if (r && has_exc) {
        return call_orig(ws, TC_H_WRITE_ERROR, self, args, nargs, kwnames);
    }
    /* else: self.finish(page % {"code": status_code,
     *                           "message": escape.xhtml_escape(self._reason)}) */
    reason = PyObject_GetAttr(self, hs->s_reason);
    if (reason == NULL) {
        return NULL;
    }
    if (!PyUnicode_CheckExact(reason) || !PyLong_CheckExact(code)) {
        Py_DECREF(reason);
        return call_orig(ws, TC_H_WRITE_ERROR, self, args, nargs, kwnames);
    }
    esc = xhtml_escape(reason);
    Py_DECREF(reason);
    if (esc == NULL) {
        return NULL;
    }
    page = PyUnicode_FromFormat("<html><title>%S: %U</title><body>%S: %U</body></html>", code,
                                esc, code, esc);
    Py_DECREF(esc);
    if (page == NULL) {
        return NULL;
    }
    v = tc_web_hook(ws, self, TC_H_FINISH, tc_web_finish_impl, &page, 1);
    Py_DECREF(page);
    if (v == NULL) {
        return NULL;
    }
    Py_DECREF(v);
    Py_RETURN_NONE;
}
