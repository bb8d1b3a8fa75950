/* web component: routing in C -- Router.start_request's delegate and the
 * find_handler walk (web.h, "The request and routing", has the design).
 *
 * Each function below is named after the upstream method it stands for
 * (Tornado 6.6.1, tornado/routing.py and tornado/web.py) and does what that
 * method does, calling the same methods of other objects in the same order
 * with the same arguments; where one of those objects has its own version
 * of a method (its class, or the object itself), that version is called
 * instead, as upstream's code would.
 *
 * Module globals upstream's code reads at call time and that are read here
 * at call time too: tornado.routing's _RoutingDelegate,
 * _DefaultMessageDelegate, _CallableAdapter, partial, app_log and
 * _unquote_or_none; tornado.web's _HandlerDelegate, ErrorHandler and
 * _has_stream_request_body; tornado.httputil's (request.c).  The classes
 * upstream's code names in isinstance()/issubclass() checks (Router,
 * HTTPServerConnectionDelegate, RequestHandler) are the ones captured when
 * the modules were imported.
 */
#include "common.h"
#include "state.h"
#include "web/web.h"
#include "web/handler.h"

#include <stddef.h>
#include <string.h>

#include "structmember.h"

/* ------------------------------------------------------------ helpers */

/* 1 when o's own __dict__ has `name` (an instance-level override), 0 when
 * not, -1 with an exception set. */
static int
has_own(PyObject *o, PyObject *name)
{
    PyObject *d = PyObject_GenericGetDict(o, NULL);
    if (d == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    int r = 0;
    if (PyDict_Check(d)) {
        r = PyDict_Contains(d, name);
    }
    Py_DECREF(d);
    return r;
}

/* Which upstream method `o` has for `name`: the flag bits among `bits` of
 * its class, or 0 if o overrides `name` itself; -1 with an exception set. */
static long
upstream_bits(tc_web_state *ws, PyObject *o, PyObject *name, unsigned int bits)
{
    unsigned int f = tc_web_type_flags(ws, Py_TYPE(o)) & bits;
    if (f == 0) {
        return 0;
    }
    int own = has_own(o, name);
    if (own < 0) {
        return -1;
    }
    return own ? 0 : (long)f;
}

/* A global of a module dict (borrowed), or NULL with NameError. */
static PyObject *
global(PyObject *dict, PyObject *name)
{
    PyObject *v = PyDict_GetItemWithError(dict, name);
    if (v == NULL && !PyErr_Occurred()) {
        PyErr_Format(PyExc_NameError, "name '%U' is not defined", name);
    }
    return v;
}

/* obj.name(*args, **params) (params NULL: no keywords).  New reference. */
static PyObject *
call_method_kw(PyObject *obj, PyObject *name, PyObject *const *args, Py_ssize_t nargs,
               PyObject *params)
{
    if (params == NULL) {
        PyObject *stack[4];
        stack[0] = obj;
        for (Py_ssize_t i = 0; i < nargs; i++) {
            stack[i + 1] = args[i];
        }
        return PyObject_VectorcallMethod(name, stack, (size_t)(nargs + 1), NULL);
    }
    PyObject *m = PyObject_GetAttr(obj, name), *kw, *r;
    if (m == NULL) {
        return NULL;
    }
    if (PyDict_Check(params)) {
        kw = Py_NewRef(params);
    }
    else {
        kw = PyDict_New();
        if (kw != NULL && PyDict_Merge(kw, params, 1) < 0) {
            Py_CLEAR(kw);
        }
    }
    r = kw != NULL ? PyObject_VectorcallDict(m, args, (size_t)nargs, kw) : NULL;
    Py_XDECREF(kw);
    Py_DECREF(m);
    return r;
}

/* ------------------------------------------------------------ path matching */

/* The analysis of a compiled path regex: cached per re.Pattern object (the
 * slot holds it, so its address is not reused meanwhile).  NULL when regex
 * is not a re.Pattern or on error (exception set). */
static tc_web_pcache *
pattern_info(tc_web_route_state *rt, PyObject *regex)
{
    if (rt->PatternType == NULL || (PyObject *)Py_TYPE(regex) != rt->PatternType) {
        return NULL;
    }
    tc_web_pcache *e = &rt->pcache[((uintptr_t)regex >> 4) % TC_WEB_PCACHE];
    if (e->regex == regex) {
        return e;
    }
    PyObject *groups = NULL, *gi = NULL, *pattern = NULL, *flags = NULL, *literal = NULL;
    Py_ssize_t ng;
    int named;
    groups = PyObject_GetAttr(regex, rt->n_groups);
    if (groups == NULL || (ng = PyLong_AsSsize_t(groups)) == -1) {
        goto fail;
    }
    gi = PyObject_GetAttr(regex, rt->n_groupindex);
    if (gi == NULL || (named = PyObject_IsTrue(gi)) < 0) {
        goto fail;
    }
    pattern = PyObject_GetAttr(regex, rt->n_pattern);
    flags = PyObject_GetAttr(regex, rt->n_flags);
    if (pattern == NULL || flags == NULL) {
        goto fail;
    }
    /* A literal: flags re.UNICODE only, "^"? then characters none of which
     * means anything to re, then "$".  Such a regex matches a str path
     * exactly when path == literal or path == literal + "\n" ("$" matches
     * before a final newline too). */
    if (ng == 0 && PyUnicode_CheckExact(pattern) && PyLong_CheckExact(flags) &&
        PyLong_AsLong(flags) == 32) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(pattern), b = 0;
        int kind = PyUnicode_KIND(pattern);
        const void *data = PyUnicode_DATA(pattern);
        if (n > 0 && PyUnicode_READ(kind, data, 0) == '^') {
            b = 1;
        }
        if (n > b && PyUnicode_READ(kind, data, n - 1) == '$') {
            int lit = 1;
            for (Py_ssize_t i = b; i < n - 1 && lit; i++) {
                Py_UCS4 c = PyUnicode_READ(kind, data, i);
                lit = !(c < 128 && strchr(".^$*+?{}[]\\|()", (int)c) != NULL);
            }
            if (lit) {
                literal = PyUnicode_Substring(pattern, b, n - 1);
                if (literal == NULL) {
                    goto fail;
                }
            }
        }
    }
    Py_XSETREF(e->regex, Py_NewRef(regex));
    Py_XSETREF(e->literal, literal);
    e->groups = ng;
    e->named = (char)named;
    Py_DECREF(groups);
    Py_DECREF(gi);
    Py_DECREF(pattern);
    Py_DECREF(flags);
    return e;
fail:
    Py_XDECREF(groups);
    Py_XDECREF(gi);
    Py_XDECREF(pattern);
    Py_XDECREF(flags);
    return NULL;
}

/* _unquote_or_none(s): None, or url_unescape(s, encoding=None, plus=False),
 * i.e. urllib.parse.unquote_to_bytes(s) (a str encoded UTF-8 first). */
static PyObject *
unquote_or_none(tc_web_route_state *rt, PyObject *s)
{
    PyObject *fn = global(rt->routing_dict, rt->n__unquote_or_none);
    if (fn == NULL) {
        return NULL;
    }
    if (fn != rt->unquote_or_none || (s != Py_None && !PyUnicode_CheckExact(s))) {
        return PyObject_CallOneArg(fn, s);
    }
    if (s == Py_None) {
        return Py_NewRef(Py_None);
    }
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL) {
        return NULL;
    }
    if (memchr(u, '%', (size_t)n) == NULL) {
        return PyBytes_FromStringAndSize(u, n);
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, n);
    if (b == NULL) {
        return NULL;
    }
    char *o = PyBytes_AS_STRING(b);
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int hi, lo;
        if (u[i] == '%' && i + 2 < n && (hi = tc_web_hexval((unsigned char)u[i + 1])) >= 0 &&
            (lo = tc_web_hexval((unsigned char)u[i + 2])) >= 0) {
            o[k++] = (char)(hi * 16 + lo);
            i += 2;
        }
        else {
            o[k++] = u[i];
        }
    }
    if (_PyBytes_Resize(&b, k) < 0) {
        return NULL;
    }
    return b;
}

/* PathMatches.match(matcher, request) */
static PyObject *
path_matches_match(tc_web_route_state *rt, PyObject *matcher, PyObject *request)
{
    PyObject *regex = NULL, *path = NULL, *m = NULL, *res = NULL, *pa = NULL, *pk = NULL;
    PyObject *g = NULL;
    Py_ssize_t ngroups;
    int named;
    regex = PyObject_GetAttr(matcher, rt->n_regex);
    if (regex == NULL) {
        return NULL;
    }
    path = PyObject_GetAttr(request, rt->n_path);
    if (path == NULL) {
        goto done;
    }
    tc_web_pcache *info = pattern_info(rt, regex);
    if (info == NULL && PyErr_Occurred()) {
        goto done;
    }
    if (info != NULL && info->literal != NULL && PyUnicode_CheckExact(path)) {
        Py_ssize_t ln = PyUnicode_GET_LENGTH(info->literal), lp = PyUnicode_GET_LENGTH(path);
        int hit = 0;
        if (lp == ln || (lp == ln + 1 && PyUnicode_READ_CHAR(path, ln) == '\n')) {
            Py_ssize_t t = PyUnicode_Tailmatch(path, info->literal, 0, ln, -1);
            if (t < 0) {
                goto done;
            }
            hit = t == 1;
        }
        res = hit ? PyDict_New() : Py_NewRef(Py_None);
        goto done;
    }
    {
        PyObject *args[2] = {regex, path};
        m = PyObject_VectorcallMethod(rt->n_match, args, 2, NULL);
    }
    if (m == NULL) {
        goto done;
    }
    if (m == Py_None) {
        res = Py_NewRef(Py_None);
        goto done;
    }
    if (info != NULL) {
        ngroups = info->groups;
        named = info->named;
    }
    else {
        /* not a re.Pattern: its attributes, as upstream reads them */
        PyObject *x = PyObject_GetAttr(regex, rt->n_groups);
        int t = x != NULL ? PyObject_IsTrue(x) : -1;
        Py_XDECREF(x);
        if (t < 0) {
            goto done;
        }
        ngroups = t;
        if (t) {
            x = PyObject_GetAttr(regex, rt->n_groupindex);
            named = x != NULL ? PyObject_IsTrue(x) : -1;
            Py_XDECREF(x);
            if (named < 0) {
                goto done;
            }
        }
        else {
            named = 0;
        }
    }
    if (ngroups == 0) {
        res = PyDict_New();
        goto done;
    }
    if (named) {
        /* {str(k): _unquote_or_none(v) for (k, v) in match.groupdict().items()} */
        PyObject *k, *v;
        Py_ssize_t pos = 0;
        pa = PyList_New(0);
        pk = PyDict_New();
        g = PyObject_CallMethodNoArgs(m, rt->n_groupdict);
        if (pa == NULL || pk == NULL || g == NULL) {
            goto done;
        }
        if (!PyDict_Check(g)) {
            PyErr_SetString(PyExc_TypeError, "groupdict() did not return a dict");
            goto done;
        }
        while (PyDict_Next(g, &pos, &k, &v)) { /* borrowed k, v */
            PyObject *ks = PyObject_Str(k);
            PyObject *uv = ks != NULL ? unquote_or_none(rt, v) : NULL;
            int r = uv != NULL ? PyDict_SetItem(pk, ks, uv) : -1;
            Py_XDECREF(ks);
            Py_XDECREF(uv);
            if (r < 0) {
                goto done;
            }
        }
    }
    else {
        /* [_unquote_or_none(s) for s in match.groups()] */
        pk = PyDict_New();
        g = PyObject_CallMethodNoArgs(m, rt->n_groups);
        if (pk == NULL || g == NULL) {
            goto done;
        }
        PyObject *seq = PySequence_Fast(g, "groups() is not a sequence");
        if (seq == NULL) {
            goto done;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        pa = PyList_New(n);
        for (Py_ssize_t i = 0; pa != NULL && i < n; i++) {
            PyObject *uv = unquote_or_none(rt, PySequence_Fast_GET_ITEM(seq, i));
            if (uv == NULL) {
                Py_CLEAR(pa);
                break;
            }
            PyList_SET_ITEM(pa, i, uv); /* steals */
        }
        Py_DECREF(seq);
        if (pa == NULL) {
            goto done;
        }
    }
    /* dict(path_args=path_args, path_kwargs=path_kwargs) */
    res = PyDict_New();
    if (res != NULL && (PyDict_SetItem(res, rt->n_path_args, pa) < 0 ||
                        PyDict_SetItem(res, rt->n_path_kwargs, pk) < 0)) {
        Py_CLEAR(res);
    }
done:
    Py_XDECREF(regex);
    Py_XDECREF(path);
    Py_XDECREF(m);
    Py_XDECREF(g);
    Py_XDECREF(pa);
    Py_XDECREF(pk);
    return res;
}

/* rule.matcher.match(request) */
static PyObject *
matcher_match(tc_web_state *ws, PyObject *matcher, PyObject *request)
{
    tc_web_route_state *rt = &ws->rt;
    long f = upstream_bits(ws, matcher, rt->n_match, TC_WEB_F_PM_MATCH | TC_WEB_F_AM_MATCH);
    if (f < 0) {
        return NULL;
    }
    if (f & TC_WEB_F_PM_MATCH) {
        return path_matches_match(rt, matcher, request);
    }
    if (f & TC_WEB_F_AM_MATCH) {
        return PyDict_New();
    }
    PyObject *args[2] = {matcher, request};
    return PyObject_VectorcallMethod(rt->n_match, args, 2, NULL);
}

/* ------------------------------------------------------------ the find_handler walk */

static PyObject *find_handler(tc_web_state *ws, PyObject *router, PyObject *request,
                              PyObject *params);

/* web._has_stream_request_body(cls) */
static PyObject *
has_stream_request_body(tc_web_route_state *rt, PyObject *cls)
{
    PyObject *fn = global(rt->web_dict, rt->n__has_stream_request_body);
    if (fn == NULL) {
        return NULL;
    }
    if (fn != rt->has_srb) {
        return PyObject_CallOneArg(fn, cls);
    }
    int r = PyObject_IsSubclass(cls, rt->RequestHandler);
    if (r < 0) {
        return NULL;
    }
    if (!r) {
        PyErr_Format(PyExc_TypeError, "expected subclass of RequestHandler, got %R", cls);
        return NULL;
    }
    return PyObject_GetAttr(cls, rt->n__stream_request_body);
}

/* _HandlerDelegate(application, request, handler_class, handler_kwargs,
 * path_args, path_kwargs); NULL arguments are None. */
static PyObject *
handler_delegate_new(tc_web_state *ws, PyObject *app, PyObject *request, PyObject *cls,
                     PyObject *tk, PyObject *pa, PyObject *pk)
{
    tc_web_route_state *rt = &ws->rt;
    PyObject *hd = global(rt->web_dict, rt->n__HandlerDelegate), *self = NULL;
    PyObject *conn = NULL, *hk = NULL, *a = NULL, *k = NULL, *chunks = NULL, *srb = NULL;
    if (hd == NULL) {
        return NULL;
    }
    tk = tk != NULL ? tk : Py_None;
    pa = pa != NULL ? pa : Py_None;
    pk = pk != NULL ? pk : Py_None;
    if (hd != rt->HandlerDelegate || ((PyTypeObject *)hd)->tp_new != PyBaseObject_Type.tp_new ||
        !(tc_web_type_flags(ws, (PyTypeObject *)hd) & TC_WEB_F_HD_INIT)) {
        PyObject *args[6] = {app, request, cls, tk, pa, pk};
        return PyObject_Vectorcall(hd, args, 6, NULL);
    }
    int t;
    conn = PyObject_GetAttr(request, rt->n_connection);
    if (conn == NULL) {
        goto done;
    }
    /* handler_kwargs or {}, path_args or [], path_kwargs or {} */
    if ((t = PyObject_IsTrue(tk)) < 0) {
        goto done;
    }
    hk = t ? Py_NewRef(tk) : PyDict_New();
    if (hk == NULL || (t = PyObject_IsTrue(pa)) < 0) {
        goto done;
    }
    a = t ? Py_NewRef(pa) : PyList_New(0);
    if (a == NULL || (t = PyObject_IsTrue(pk)) < 0) {
        goto done;
    }
    k = t ? Py_NewRef(pk) : PyDict_New();
    if (k == NULL) {
        goto done;
    }
    chunks = PyByteArray_FromStringAndSize(NULL, 0);
    if (chunks == NULL) {
        goto done;
    }
    self = ((PyTypeObject *)hd)->tp_new((PyTypeObject *)hd, rt->empty_tuple, NULL);
    if (self == NULL) {
        goto done;
    }
    srb = has_stream_request_body(rt, cls);
    if (srb == NULL) {
        Py_CLEAR(self);
        goto done;
    }
    {
        /* upstream's order of assignment (stream_request_body is computed
         * last there too, after the others are set: its errors come after
         * theirs, and none of theirs can happen here) */
        PyObject *names[TC_WEB_HD_NATTRS] = {
            rt->n_application, rt->n_connection, rt->n_request, rt->n_handler_class,
            rt->n_handler_kwargs, rt->n_path_args, rt->n_path_kwargs, rt->n_chunks,
            rt->n_stream_request_body};
        PyObject *values[TC_WEB_HD_NATTRS] = {app, conn, request, cls, hk, a, k, chunks, srb};
        if (tc_web_set_attrs(self, names, values, TC_WEB_HD_NATTRS) < 0) {
            Py_CLEAR(self);
        }
    }
done:
    Py_XDECREF(conn);
    Py_XDECREF(hk);
    Py_XDECREF(a);
    Py_XDECREF(k);
    Py_XDECREF(chunks);
    Py_XDECREF(srb);
    return self;
}

/* application.get_handler_delegate(request, cls, **params), or (params
 * NULL) application.get_handler_delegate(request, cls, target_kwargs). */
static PyObject *
get_handler_delegate(tc_web_state *ws, PyObject *app, PyObject *request, PyObject *cls,
                     PyObject *params, PyObject *target_kwargs)
{
    tc_web_route_state *rt = &ws->rt;
    long f = upstream_bits(ws, app, rt->n_get_handler_delegate, TC_WEB_F_APP_GHD);
    if (f < 0) {
        return NULL;
    }
    if (f && params == NULL) {
        return handler_delegate_new(ws, app, request, cls, target_kwargs, NULL, NULL);
    }
    if (f && PyDict_CheckExact(params)) {
        /* the keywords get_handler_delegate takes, and no others (any
         * other is its TypeError, which the call below raises) */
        PyObject *tk = NULL, *pa = NULL, *pk = NULL, *key, *val;
        Py_ssize_t pos = 0;
        int ok = 1;
        while (ok && PyDict_Next(params, &pos, &key, &val)) { /* borrowed */
            if (key == rt->n_target_kwargs) {
                tk = val;
            }
            else if (key == rt->n_path_args) {
                pa = val;
            }
            else if (key == rt->n_path_kwargs) {
                pk = val;
            }
            else {
                ok = 0; /* (an equal but not interned name: the slow path) */
            }
        }
        if (ok) {
            return handler_delegate_new(ws, app, request, cls, tk, pa, pk);
        }
    }
    PyObject *args[3] = {request, cls, target_kwargs};
    return call_method_kw(app, rt->n_get_handler_delegate, args, params == NULL ? 3 : 2, params);
}

/* RuleRouter.get_target_delegate(router, target, request, **params) */
static PyObject *
rule_router_get_target_delegate(tc_web_state *ws, PyObject *target, PyObject *request,
                                PyObject *params)
{
    tc_web_route_state *rt = &ws->rt;
    int r = PyObject_IsInstance(target, rt->Router);
    if (r != 0) {
        return r < 0 ? NULL : find_handler(ws, target, request, params);
    }
    r = PyObject_IsInstance(target, rt->ServerConnDelegate);
    if (r < 0) {
        return NULL;
    }
    int callable = r ? 0 : PyCallable_Check(target);
    if (!r && !callable) {
        return Py_NewRef(Py_None);
    }
    /* assert request.connection is not None */
    PyObject *conn = PyObject_GetAttr(request, rt->n_connection), *res = NULL;
    if (conn == NULL) {
        return NULL;
    }
    if (conn == Py_None) {
        Py_DECREF(conn);
        PyErr_SetNone(PyExc_AssertionError);
        return NULL;
    }
    Py_DECREF(conn);
    if (r) {
        /* target.start_request(request.server_connection, request.connection) */
        PyObject *sc = PyObject_GetAttr(request, rt->n_server_connection);
        conn = sc != NULL ? PyObject_GetAttr(request, rt->n_connection) : NULL;
        if (conn != NULL) {
            PyObject *args[3] = {target, sc, conn};
            res = PyObject_VectorcallMethod(rt->n_start_request, args, 3, NULL);
        }
        Py_XDECREF(sc);
        Py_XDECREF(conn);
        return res;
    }
    /* _CallableAdapter(partial(target, **params), request.connection) */
    PyObject *partial = global(rt->routing_dict, rt->n_partial);
    PyObject *ca = partial != NULL ? global(rt->routing_dict, rt->n__CallableAdapter) : NULL;
    if (ca == NULL) {
        return NULL;
    }
    PyObject *kw = PyDict_New(), *p = NULL;
    if (kw != NULL && PyDict_Merge(kw, params, 1) == 0) {
        p = PyObject_VectorcallDict(partial, &target, 1, kw);
    }
    Py_XDECREF(kw);
    if (p == NULL) {
        return NULL;
    }
    conn = PyObject_GetAttr(request, rt->n_connection);
    if (conn != NULL) {
        PyObject *args[2] = {p, conn};
        res = PyObject_Vectorcall(ca, args, 2, NULL);
        Py_DECREF(conn);
    }
    Py_DECREF(p);
    return res;
}

/* router.get_target_delegate(target, request, **params) */
static PyObject *
get_target_delegate(tc_web_state *ws, PyObject *router, PyObject *target, PyObject *request,
                    PyObject *params)
{
    tc_web_route_state *rt = &ws->rt;
    long f = upstream_bits(ws, router, rt->n_get_target_delegate,
                           TC_WEB_F_AR_GTD | TC_WEB_F_RR_GTD);
    if (f < 0) {
        return NULL;
    }
    if (f & TC_WEB_F_AR_GTD) {
        /* _ApplicationRouter: RequestHandler classes go to the application */
        if (PyType_Check(target)) {
            int r = PyObject_IsSubclass(target, rt->RequestHandler);
            if (r < 0) {
                return NULL;
            }
            if (r) {
                PyObject *app = PyObject_GetAttr(router, rt->n_application);
                if (app == NULL) {
                    return NULL;
                }
                PyObject *d = get_handler_delegate(ws, app, request, target, params, NULL);
                Py_DECREF(app);
                return d;
            }
        }
        return rule_router_get_target_delegate(ws, target, request, params);
    }
    if (f & TC_WEB_F_RR_GTD) {
        return rule_router_get_target_delegate(ws, target, request, params);
    }
    PyObject *args[2] = {target, request};
    return call_method_kw(router, rt->n_get_target_delegate, args, 2, params);
}

/* RuleRouter.find_handler(router, request) */
static PyObject *
rule_router_find_handler(tc_web_state *ws, PyObject *router, PyObject *request)
{
    tc_web_route_state *rt = &ws->rt;
    PyObject *rules = PyObject_GetAttr(router, rt->n_rules), *it, *rule;
    if (rules == NULL) {
        return NULL;
    }
    it = PyObject_GetIter(rules);
    Py_DECREF(rules);
    if (it == NULL) {
        return NULL;
    }
    while ((rule = PyIter_Next(it)) != NULL) {
        PyObject *matcher = PyObject_GetAttr(rule, rt->n_matcher), *params, *d = NULL;
        if (matcher == NULL) {
            Py_DECREF(rule);
            break;
        }
        params = matcher_match(ws, matcher, request);
        Py_DECREF(matcher);
        if (params == NULL) {
            Py_DECREF(rule);
            break;
        }
        if (params != Py_None) {
            PyObject *tk = PyObject_GetAttr(rule, rt->n_target_kwargs), *target = NULL;
            int t = tk != NULL ? PyObject_IsTrue(tk) : -1;
            if (t > 0 && PyObject_SetItem(params, rt->n_target_kwargs, tk) < 0) {
                t = -1;
            }
            Py_XDECREF(tk);
            if (t >= 0) {
                target = PyObject_GetAttr(rule, rt->n_target);
            }
            if (target != NULL) {
                d = get_target_delegate(ws, router, target, request, params);
                Py_DECREF(target);
            }
            Py_DECREF(params);
            if (d == NULL || d != Py_None) {
                Py_DECREF(rule);
                Py_DECREF(it);
                return d;
            }
            Py_DECREF(d);
        }
        else {
            Py_DECREF(params);
        }
        Py_DECREF(rule);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Application.find_handler(app, request) */
static PyObject *
application_find_handler(tc_web_state *ws, PyObject *app, PyObject *request)
{
    tc_web_route_state *rt = &ws->rt;
    PyObject *dr = PyObject_GetAttr(app, rt->n_default_router), *route, *settings, *dhc;
    PyObject *res = NULL;
    if (dr == NULL) {
        return NULL;
    }
    route = find_handler(ws, dr, request, NULL);
    Py_DECREF(dr);
    if (route == NULL || route != Py_None) {
        return route;
    }
    Py_DECREF(route);
    settings = PyObject_GetAttr(app, rt->n_settings);
    if (settings == NULL) {
        return NULL;
    }
    /* self.settings.get("default_handler_class") */
    {
        PyObject *args[2] = {settings, rt->n_default_handler_class};
        dhc = PyObject_VectorcallMethod(rt->n_get, args, 2, NULL);
    }
    int t = dhc != NULL ? PyObject_IsTrue(dhc) : -1;
    Py_XDECREF(dhc);
    if (t < 0) {
        goto done;
    }
    if (t) {
        /* get_handler_delegate(request, settings["default_handler_class"],
         *                      settings.get("default_handler_args", {})) */
        PyObject *cls = PyObject_GetItem(settings, rt->n_default_handler_class), *dflt = NULL;
        PyObject *dha = NULL;
        if (cls != NULL) {
            dflt = PyDict_New();
        }
        if (dflt != NULL) {
            PyObject *args[3] = {settings, rt->n_default_handler_args, dflt};
            dha = PyObject_VectorcallMethod(rt->n_get, args, 3, NULL);
        }
        if (dha != NULL) {
            res = get_handler_delegate(ws, app, request, cls, NULL, dha);
        }
        Py_XDECREF(cls);
        Py_XDECREF(dflt);
        Py_XDECREF(dha);
        goto done;
    }
    {
        /* get_handler_delegate(request, ErrorHandler, {"status_code": 404}) */
        PyObject *eh = global(rt->web_dict, rt->n_ErrorHandler), *kw, *code;
        if (eh == NULL) {
            goto done;
        }
        kw = PyDict_New();
        code = PyLong_FromLong(404);
        if (kw != NULL && code != NULL && PyDict_SetItem(kw, rt->n_status_code, code) == 0) {
            Py_INCREF(eh); /* the call may rebind the global */
            res = get_handler_delegate(ws, app, request, eh, NULL, kw);
            Py_DECREF(eh);
        }
        Py_XDECREF(kw);
        Py_XDECREF(code);
    }
done:
    Py_DECREF(settings);
    return res;
}

/* router.find_handler(request, **params) */
static PyObject *
find_handler(tc_web_state *ws, PyObject *router, PyObject *request, PyObject *params)
{
    tc_web_route_state *rt = &ws->rt;
    PyObject *res;
    long f = upstream_bits(ws, router, rt->n_find_handler,
                           TC_WEB_F_APP_FIND | TC_WEB_F_RR_FIND);
    if (f < 0) {
        return NULL;
    }
    if (f == 0) {
        PyObject *args[1] = {request};
        return call_method_kw(router, rt->n_find_handler, args, 1, params);
    }
    /* upstream's find_handler methods take **kwargs and ignore them */
    if (Py_EnterRecursiveCall(" in find_handler")) {
        return NULL;
    }
    if (f & TC_WEB_F_APP_FIND) {
        res = application_find_handler(ws, router, request);
    }
    else {
        res = rule_router_find_handler(ws, router, request);
    }
    Py_LeaveRecursiveCall();
    return res;
}

/* ------------------------------------------------------------ _core.RoutingDelegate */

typedef struct {
    PyObject_HEAD
    tc_web_state *ws;        /* borrowed: the type holds the module */
    PyObject *router;        /* strong */
    PyObject *server_conn;   /* strong */
    PyObject *request_conn;  /* strong */
    PyObject *delegate;      /* strong or NULL (None): find_handler's answer */
} rdeleg;

static PyObject *
rdeleg_new_for(tc_web_state *ws, PyObject *router, PyObject *server_conn, PyObject *request_conn)
{
    rdeleg *self = PyObject_GC_New(rdeleg, ws->rt.RoutingDelegateType);
    if (self == NULL) {
        return NULL;
    }
    self->ws = ws;
    self->router = Py_NewRef(router);
    self->server_conn = Py_NewRef(server_conn);
    self->request_conn = Py_NewRef(request_conn);
    self->delegate = NULL;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int
rdeleg_traverse(rdeleg *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->router);
    Py_VISIT(self->server_conn);
    Py_VISIT(self->request_conn);
    Py_VISIT(self->delegate);
    return 0;
}

static int
rdeleg_clear(rdeleg *self)
{
    Py_CLEAR(self->router);
    Py_CLEAR(self->server_conn);
    Py_CLEAR(self->request_conn);
    Py_CLEAR(self->delegate);
    return 0;
}

static void
rdeleg_dealloc(rdeleg *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    rdeleg_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
rdeleg_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"router", "server_conn", "request_conn", NULL};
    PyObject *router, *sc, *rc;
    tc_state *st = tc_state_from_type(type);
    if (st == NULL ||
        !PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:RoutingDelegate", kwlist, &router, &sc, &rc)) {
        return NULL;
    }
    return rdeleg_new_for(st->web, router, sc, rc);
}

/* Two positional-or-keyword arguments named a and b. */
static int
two_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
         const char *a, const char *b, PyObject **out)
{
    out[0] = out[1] = NULL;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes 2 positional arguments but %zd were given",
                     fname, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        out[i] = args[i];
    }
    Py_ssize_t nk = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t j = 0; j < nk; j++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, j);
        int which = PyUnicode_CompareWithASCIIString(k, a) == 0   ? 0
                    : PyUnicode_CompareWithASCIIString(k, b) == 0 ? 1
                                                                  : -1;
        if (which < 0 || out[which] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated argument %R",
                         fname, k);
            return -1;
        }
        out[which] = args[nargs + j];
    }
    if (out[0] == NULL || out[1] == NULL) {
        PyErr_Format(PyExc_TypeError, "%s() missing a required argument: '%s'", fname,
                     out[0] == NULL ? a : b);
        return -1;
    }
    return 0;
}

/* _RoutingDelegate.headers_received(start_line, headers) */
static PyObject *
rdeleg_headers_received(rdeleg *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    tc_web_state *ws = self->ws;
    tc_web_route_state *rt = &ws->rt;
    PyObject *a[2], *request, *d, *res;
    if (two_args("headers_received", args, nargs, kwnames, "start_line", "headers", a) < 0) {
        return NULL;
    }
    PyObject *start_line = a[0], *headers = a[1];
    if (self->router == NULL || self->server_conn == NULL || self->request_conn == NULL) {
        /* deleted by someone: upstream's self.<name> would fail */
        PyErr_Format(PyExc_AttributeError, "'RoutingDelegate' object has no attribute '%s'",
                     self->router == NULL        ? "router"
                     : self->request_conn == NULL ? "request_conn"
                                                  : "server_conn");
        return NULL;
    }
    /* assert isinstance(start_line, httputil.RequestStartLine) */
    int r = rt->RequestStartLine != NULL ? PyObject_IsInstance(start_line, rt->RequestStartLine) : 0;
    if (r <= 0) {
        if (r == 0) {
            PyErr_SetNone(PyExc_AssertionError);
        }
        return NULL;
    }
    request = tc_web_request_new(ws, start_line, headers, self->request_conn, self->server_conn);
    if (request == NULL) {
        return NULL;
    }
    PyObject *router = Py_NewRef(self->router);
    d = find_handler(ws, router, request, NULL);
    Py_DECREF(router);
    Py_DECREF(request);
    if (d == NULL) {
        return NULL;
    }
    Py_XSETREF(self->delegate, d); /* self.delegate = ... (None included) */
    if (d == Py_None) {
        /* app_log.debug("Delegate for %s %s request not found", start_line.method,
         *               start_line.path); _DefaultMessageDelegate(self.request_conn) */
        PyObject *log = global(rt->routing_dict, rt->n_app_log), *fmt, *m, *p, *lr = NULL;
        if (log == NULL) {
            return NULL;
        }
        fmt = PyUnicode_FromString("Delegate for %s %s request not found");
        m = fmt != NULL ? PyObject_GetAttr(start_line, rt->n_method) : NULL;
        p = m != NULL ? PyObject_GetAttr(start_line, rt->n_path) : NULL;
        if (p != NULL) {
            PyObject *largs[4] = {log, fmt, m, p};
            lr = PyObject_VectorcallMethod(rt->n_debug, largs, 4, NULL);
        }
        Py_XDECREF(fmt);
        Py_XDECREF(m);
        Py_XDECREF(p);
        if (lr == NULL) {
            return NULL;
        }
        Py_DECREF(lr);
        PyObject *dmd = global(rt->routing_dict, rt->n__DefaultMessageDelegate);
        if (dmd == NULL) {
            return NULL;
        }
        if (self->request_conn == NULL) {
            PyErr_SetString(PyExc_AttributeError,
                            "'RoutingDelegate' object has no attribute 'request_conn'");
            return NULL;
        }
        d = PyObject_CallOneArg(dmd, self->request_conn);
        if (d == NULL) {
            return NULL;
        }
        Py_XSETREF(self->delegate, d);
    }
    /* return self.delegate.headers_received(start_line, headers) */
    Py_INCREF(d);
    PyObject *m = PyObject_GetAttr(d, rt->n_headers_received);
    if (m == NULL) {
        Py_DECREF(d);
        return NULL;
    }
    if (rt->hd_hr != NULL && PyMethod_Check(m) && PyMethod_GET_FUNCTION(m) == rt->hd_hr &&
        PyMethod_GET_SELF(m) == d) {
        /* upstream's _HandlerDelegate.headers_received (the bound method
         * itself tells: no instance attribute, no other class method):
         * only a handler that streams the request body starts here, else
         * it returns None */
        PyObject *srb = PyObject_GetAttr(d, rt->n_stream_request_body);
        int t = srb != NULL ? PyObject_IsTrue(srb) : -1;
        Py_XDECREF(srb);
        if (t <= 0) {
            Py_DECREF(m);
            Py_DECREF(d);
            return t < 0 ? NULL : Py_NewRef(Py_None);
        }
    }
    PyObject *hargs[2] = {start_line, headers};
    res = PyObject_Vectorcall(m, hargs, 2, NULL);
    Py_DECREF(m);
    Py_DECREF(d);
    return res;
}

/* assert self.delegate is not None: a new reference to it */
static PyObject *
rdeleg_delegate(rdeleg *self)
{
    if (self->delegate == NULL || self->delegate == Py_None) {
        PyErr_SetNone(PyExc_AssertionError);
        return NULL;
    }
    return Py_NewRef(self->delegate);
}

static PyObject *
rdeleg_data_received(rdeleg *self, PyObject *chunk)
{
    PyObject *d = rdeleg_delegate(self);
    if (d == NULL) {
        return NULL;
    }
    PyObject *args[2] = {d, chunk};
    PyObject *r = PyObject_VectorcallMethod(self->ws->rt.n_data_received, args, 2, NULL);
    Py_DECREF(d);
    return r;
}

/* upstream's _HandlerDelegate.finish(d) when the body is not streamed:
 *     self.request.body = bytes(self.chunks); self.execute()
 * 1 when done, 0 when streamed (nothing done), -1 with an exception set */
static int
handler_delegate_finish(tc_web_state *ws, PyObject *d)
{
    tc_web_route_state *rt = &ws->rt;
    tc_web_handler_state *hs = &ws->h;
    PyObject *v = PyObject_GetAttr(d, rt->n_stream_request_body), *body, *req, *r;
    int t = v != NULL ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    if (t != 0) {
        return t < 0 ? -1 : 0;
    }
    v = PyObject_GetAttr(d, rt->n_chunks);
    body = v != NULL ? PyObject_CallOneArg((PyObject *)&PyBytes_Type, v) : NULL;
    Py_XDECREF(v);
    req = body != NULL ? PyObject_GetAttr(d, rt->n_request) : NULL;
    t = req != NULL ? PyObject_SetAttr(req, hs->s_body, body) : -1;
    Py_XDECREF(body);
    Py_XDECREF(req);
    if (t < 0) {
        return -1;
    }
    r = tc_web_hook(ws, d, TC_H_DELEGATE_EXECUTE, tc_web_delegate_execute_impl, NULL, 0);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 1;
}

static PyObject *
rdeleg_finish(rdeleg *self, PyObject *Py_UNUSED(ignored))
{
    tc_web_state *ws = self->ws;
    PyObject *d = rdeleg_delegate(self);
    if (d == NULL) {
        return NULL;
    }
    if (ws->rt.hd_finish != NULL && ws->h.ready) {
        int k = tc_web_is_method(d, ws->rt.n_finish, ws->rt.hd_finish);
        if (k == 1) {
            k = handler_delegate_finish(ws, d);
        }
        if (k != 0) {
            Py_DECREF(d);
            if (k < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    PyObject *r = PyObject_VectorcallMethod(self->ws->rt.n_finish, &d, 1, NULL);
    Py_DECREF(d);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *
rdeleg_on_connection_close(rdeleg *self, PyObject *Py_UNUSED(ignored))
{
    if (self->delegate == NULL || self->delegate == Py_None) {
        Py_RETURN_NONE;
    }
    PyObject *d = Py_NewRef(self->delegate);
    PyObject *r = PyObject_VectorcallMethod(self->ws->rt.n_on_connection_close, &d, 1, NULL);
    Py_DECREF(d);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyMethodDef rdeleg_methods[] = {
    {"headers_received", (PyCFunction)(void (*)(void))rdeleg_headers_received,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"data_received", (PyCFunction)rdeleg_data_received, METH_O, NULL},
    {"finish", (PyCFunction)rdeleg_finish, METH_NOARGS, NULL},
    {"on_connection_close", (PyCFunction)rdeleg_on_connection_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef rdeleg_members[] = {
    {"router", T_OBJECT_EX, offsetof(rdeleg, router), 0, NULL},
    {"server_conn", T_OBJECT_EX, offsetof(rdeleg, server_conn), 0, NULL},
    {"request_conn", T_OBJECT_EX, offsetof(rdeleg, request_conn), 0, NULL},
    {"delegate", T_OBJECT, offsetof(rdeleg, delegate), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot rdeleg_slots[] = {
    {Py_tp_doc, "tornado.routing._RoutingDelegate in C: what Router.start_request gives while\n"
                "tornado_c's web component is on (same attributes and methods)."},
    {Py_tp_new, rdeleg_tp_new},
    {Py_tp_dealloc, rdeleg_dealloc},
    {Py_tp_traverse, rdeleg_traverse},
    {Py_tp_clear, rdeleg_clear},
    {Py_tp_methods, rdeleg_methods},
    {Py_tp_members, rdeleg_members},
    {0, NULL},
};

static PyType_Spec rdeleg_spec = {
    .name = "tornado_c._core.RoutingDelegate",
    .basicsize = sizeof(rdeleg),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = rdeleg_slots,
};

/* ------------------------------------------------------------ Router.start_request */

/* The method descriptor Router.start_request is while `web` is on: called
 * as (router, server_conn, request_conn), positionally, it does upstream's
 * `return _RoutingDelegate(self, server_conn, request_conn)`, with the C
 * delegate when tornado.routing._RoutingDelegate is upstream's class
 * unchanged; any other call goes to upstream's function (func). */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    tc_web_state *ws;   /* borrowed: the type holds the module */
    PyObject *func;     /* strong: upstream's Router.start_request */
} webmeth;

static PyObject *
start_request(tc_web_state *ws, PyObject *router, PyObject *server_conn, PyObject *request_conn)
{
    tc_web_route_state *rt = &ws->rt;
    PyObject *rd = global(rt->routing_dict, rt->n__RoutingDelegate);
    if (rd == NULL) {
        return NULL;
    }
    if (rd == rt->RoutingDelegate && (tc_web_type_flags(ws, (PyTypeObject *)rd) & TC_WEB_F_RD) &&
        ((PyTypeObject *)rd)->tp_new == PyBaseObject_Type.tp_new) {
        return rdeleg_new_for(ws, router, server_conn, request_conn);
    }
    PyObject *args[3] = {router, server_conn, request_conn};
    return PyObject_Vectorcall(rd, args, 3, NULL);
}

int
tc_web_server_start_request(tc_web_state *ws, PyObject *server, PyObject *server_conn,
                            PyObject *request_conn, PyObject **delegate)
{
    tc_web_route_state *rt = &ws->rt;
    PyObject *cb, *d = NULL, *v;
    int k;
    if (!ws->active || rt->hs_start_request == NULL || rt->ServerConnDelegate == NULL) {
        return 0;
    }
    k = tc_web_is_method(server, rt->n_start_request, rt->hs_start_request);
    if (k <= 0) {
        return k;
    }
    /* upstream's HTTPServer.start_request:
     *   if isinstance(self.request_callback, httputil.HTTPServerConnectionDelegate):
     *       delegate = self.request_callback.start_request(server_conn, request_conn)
     *   else:
     *       delegate = _CallableAdapter(self.request_callback, request_conn)
     *   if self.xheaders:
     *       delegate = _ProxyAdapter(delegate, request_conn)
     *   return delegate */
    cb = PyObject_GetAttr(server, rt->n_request_callback);
    if (cb == NULL) {
        return -1;
    }
    k = PyObject_IsInstance(cb, rt->ServerConnDelegate);
    if (k > 0) {
        k = rt->sr_forwarder != NULL
                ? tc_web_is_method(cb, rt->n_start_request, rt->sr_forwarder)
                : 0;
        if (k > 0) {
            /* Router.start_request, ours */
            d = start_request(ws, cb, server_conn, request_conn);
        } else if (k == 0) {
            PyObject *args[3] = {cb, server_conn, request_conn};
            d = PyObject_VectorcallMethod(rt->n_start_request, args, 3, NULL);
        }
    } else if (k == 0) {
        PyObject *ca = global(rt->httpserver_dict, rt->n__CallableAdapter);
        PyObject *args[2] = {cb, request_conn};
        d = ca != NULL ? PyObject_Vectorcall(ca, args, 2, NULL) : NULL;
    }
    Py_DECREF(cb);
    if (d == NULL) {
        return -1;
    }
    v = PyObject_GetAttr(server, rt->n_xheaders);
    k = v != NULL ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    if (k > 0) {
        PyObject *pa = global(rt->httpserver_dict, rt->n__ProxyAdapter);
        PyObject *args[2] = {d, request_conn};
        PyObject *p = pa != NULL ? PyObject_Vectorcall(pa, args, 2, NULL) : NULL;
        Py_SETREF(d, p);
    }
    if (k < 0 || d == NULL) {
        Py_XDECREF(d);
        return -1;
    }
    *delegate = d;
    return 1;
}

static PyObject *
webmeth_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    webmeth *self = (webmeth *)op;
    if (kwnames == NULL && PyVectorcall_NARGS(nargsf) == 3) {
        return start_request(self->ws, args[0], args[1], args[2]);
    }
    return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
}

static PyObject *
webmeth_descr_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

static PyObject *
webmeth_get_wrapped(webmeth *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->func);
}

static PyObject *
webmeth_get_func_attr(webmeth *self, void *closure)
{
    return PyObject_GetAttrString(self->func, (const char *)closure);
}

static PyObject *
webmeth_repr(webmeth *self)
{
    return PyUnicode_FromFormat("<tornado_c method wrapping %R>", self->func);
}

static int
webmeth_traverse(webmeth *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->func);
    return 0;
}

static int
webmeth_clear(webmeth *self)
{
    Py_CLEAR(self->func);
    return 0;
}

static void
webmeth_dealloc(webmeth *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    webmeth_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyGetSetDef webmeth_getset[] = {
    {"__wrapped__", (getter)webmeth_get_wrapped, NULL, NULL, NULL},
    {"__name__", (getter)webmeth_get_func_attr, NULL, NULL, "__name__"},
    {"__qualname__", (getter)webmeth_get_func_attr, NULL, NULL, "__qualname__"},
    {"__doc__", (getter)webmeth_get_func_attr, NULL, NULL, "__doc__"},
    {"__module__", (getter)webmeth_get_func_attr, NULL, NULL, "__module__"},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef webmeth_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(webmeth, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot webmeth_slots[] = {
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_descr_get, webmeth_descr_get},
    {Py_tp_repr, webmeth_repr},
    {Py_tp_getset, webmeth_getset},
    {Py_tp_members, webmeth_members},
    {Py_tp_dealloc, webmeth_dealloc},
    {Py_tp_traverse, webmeth_traverse},
    {Py_tp_clear, webmeth_clear},
    {0, NULL},
};

static PyType_Spec webmeth_spec = {
    .name = "tornado_c._core.WebMethod",
    .basicsize = sizeof(webmeth),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = webmeth_slots,
};

/* ------------------------------------------------------------ setup */

/* Upstream's function cls.name (borrowed), as defined in `mod`, or NULL
 * (no exception) when cls.__dict__ holds something else: the hook then has
 * no C path. */
static PyObject *
own_function(PyObject *mod, PyObject *cls, const char *name)
{
    char qualname[128];
    if (!PyType_Check(cls)) {
        return NULL;
    }
    PyObject *f = PyDict_GetItemString(((PyTypeObject *)cls)->tp_dict, name); /* borrowed */
    PyOS_snprintf(qualname, sizeof(qualname), "%s.%s", ((PyTypeObject *)cls)->tp_name, name);
    return tc_web_upstream_function(f, mod, qualname);
}

static PyObject *
module_global(PyObject *d, const char *name)
{
    PyObject *v = PyDict_GetItemString(d, name); /* borrowed */
    if (v == NULL) {
        PyErr_Format(PyExc_TypeError, "tornado_c: the module has no %s", name);
    }
    return v;
}

/* _web_routing_setup(tornado.routing) */
static PyObject *
fn_routing_setup(PyObject *module, PyObject *mod)
{
    tc_web_route_state *rt = &tc_get_state(module)->web->rt;
    PyObject *d, *router, *rr, *pm, *am, *rd, *uon, *re_mod = NULL, *pattern, *partial;
    PyObject *f[4], *rdm[5];
    static const char *rd_names[5] = {"__init__", "headers_received", "data_received", "finish",
                                      "on_connection_close"};
    if (!PyModule_Check(mod)) {
        PyErr_SetString(PyExc_TypeError, "_web_routing_setup(module)");
        return NULL;
    }
    d = PyModule_GetDict(mod);
    if ((router = module_global(d, "Router")) == NULL || (rr = module_global(d, "RuleRouter")) == NULL ||
        (pm = module_global(d, "PathMatches")) == NULL || (am = module_global(d, "AnyMatches")) == NULL ||
        (rd = module_global(d, "_RoutingDelegate")) == NULL ||
        (uon = module_global(d, "_unquote_or_none")) == NULL ||
        (partial = module_global(d, "partial")) == NULL) {
        return NULL;
    }
    f[0] = own_function(mod, rr, "find_handler");
    f[1] = own_function(mod, rr, "get_target_delegate");
    f[2] = own_function(mod, pm, "match");
    f[3] = own_function(mod, am, "match");
    for (int i = 0; i < 5; i++) {
        rdm[i] = own_function(mod, rd, rd_names[i]);
    }
    uon = tc_web_upstream_function(uon, mod, "_unquote_or_none");
    re_mod = PyImport_ImportModule("re");
    pattern = re_mod != NULL ? PyObject_GetAttrString(re_mod, "Pattern") : NULL;
    Py_XDECREF(re_mod);
    if (pattern == NULL) {
        return NULL;
    }
    Py_XSETREF(rt->PatternType, pattern);
    Py_XSETREF(rt->routing_dict, Py_NewRef(d));
    Py_XSETREF(rt->Router, Py_NewRef(router));
    Py_XSETREF(rt->RoutingDelegate, Py_NewRef(rd));
    Py_XSETREF(rt->rr_find, Py_XNewRef(f[0]));
    Py_XSETREF(rt->rr_gtd, Py_XNewRef(f[1]));
    Py_XSETREF(rt->pm_match, Py_XNewRef(f[2]));
    Py_XSETREF(rt->am_match, Py_XNewRef(f[3]));
    Py_XSETREF(rt->unquote_or_none, Py_XNewRef(uon));
    Py_XSETREF(rt->partial, Py_NewRef(partial));
    for (int i = 0; i < 5; i++) {
        Py_XSETREF(rt->rd_meth[i], Py_XNewRef(rdm[i]));
    }
    Py_RETURN_NONE;
}

/* _web_app_setup(tornado.web) */
static PyObject *
fn_app_setup(PyObject *module, PyObject *mod)
{
    tc_web_route_state *rt = &tc_get_state(module)->web->rt;
    PyObject *d, *app, *ar, *rh, *hd, *srb, *af, *ag, *gtd, *hi, *hhr, *hf;
    if (!PyModule_Check(mod)) {
        PyErr_SetString(PyExc_TypeError, "_web_app_setup(module)");
        return NULL;
    }
    d = PyModule_GetDict(mod);
    if ((app = module_global(d, "Application")) == NULL ||
        (ar = module_global(d, "_ApplicationRouter")) == NULL ||
        (rh = module_global(d, "RequestHandler")) == NULL ||
        (hd = module_global(d, "_HandlerDelegate")) == NULL ||
        (srb = module_global(d, "_has_stream_request_body")) == NULL) {
        return NULL;
    }
    af = own_function(mod, app, "find_handler");
    ag = own_function(mod, app, "get_handler_delegate");
    gtd = own_function(mod, ar, "get_target_delegate");
    hi = own_function(mod, hd, "__init__");
    hhr = own_function(mod, hd, "headers_received");
    hf = own_function(mod, hd, "finish");
    srb = tc_web_upstream_function(srb, mod, "_has_stream_request_body");
    Py_XSETREF(rt->web_dict, Py_NewRef(d));
    Py_XSETREF(rt->RequestHandler, Py_NewRef(rh));
    Py_XSETREF(rt->HandlerDelegate, Py_NewRef(hd));
    Py_XSETREF(rt->has_srb, Py_XNewRef(srb));
    Py_XSETREF(rt->app_find, Py_XNewRef(af));
    Py_XSETREF(rt->app_ghd, Py_XNewRef(ag));
    Py_XSETREF(rt->ar_gtd, Py_XNewRef(gtd));
    Py_XSETREF(rt->hd_init, Py_XNewRef(hi));
    Py_XSETREF(rt->hd_hr, Py_XNewRef(hhr));
    Py_XSETREF(rt->hd_finish, Py_XNewRef(hf));
    Py_RETURN_NONE;
}

/* _web_start_request(func): the descriptor to set as Router.start_request,
 * wrapping upstream's function func. */
static PyObject *
fn_start_request(PyObject *module, PyObject *func)
{
    tc_web_state *ws = tc_get_state(module)->web;
    if (!PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError, "_web_start_request(func): func must be callable");
        return NULL;
    }
    webmeth *self = PyObject_GC_New(webmeth, ws->rt.MethodType);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = webmeth_vectorcall;
    self->ws = ws;
    self->func = Py_NewRef(func);
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

/* _web_httpserver_setup(tornado.httpserver, router_start_request): what
 * tc_web_server_start_request needs; router_start_request is the function
 * the switch put on Router (None when it left upstream's there). */
static PyObject *
fn_httpserver_setup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_web_route_state *rt = &tc_get_state(module)->web->rt;
    PyObject *hs, *sr;
    if (nargs != 2 || !PyModule_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_web_httpserver_setup(module, router_start_request)");
        return NULL;
    }
    PyObject *d = PyModule_GetDict(args[0]);
    if ((hs = module_global(d, "HTTPServer")) == NULL) {
        return NULL;
    }
    sr = own_function(args[0], hs, "start_request");
    Py_XSETREF(rt->httpserver_dict, Py_NewRef(d));
    Py_XSETREF(rt->hs_start_request, Py_XNewRef(sr));
    Py_XSETREF(rt->sr_forwarder, args[1] == Py_None ? NULL : Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

static PyMethodDef routing_functions[] = {
    {"_web_httpserver_setup", (PyCFunction)(void (*)(void))fn_httpserver_setup, METH_FASTCALL,
     NULL},
    {"_web_routing_setup", fn_routing_setup, METH_O, NULL},
    {"_web_app_setup", fn_app_setup, METH_O, NULL},
    {"_web_start_request", fn_start_request, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

int
tc_web_routing_exec(PyObject *module, tc_web_state *ws)
{
    tc_web_route_state *rt = &ws->rt;
    if (tc_add_type(module, &rdeleg_spec, NULL, &rt->RoutingDelegateType) < 0 ||
        tc_add_type(module, &webmeth_spec, NULL, &rt->MethodType) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, routing_functions);
}
