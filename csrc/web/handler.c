/* RequestHandler's hot path in C: the descriptor type, hook dispatch, and
 * handler creation and header/status/body bookkeeping (see web.h).
 *
 * Design.  While the `web` switch component is on, methods of upstream's
 * tornado.web.RequestHandler class are replaced (tornado_c/_webhandler.py,
 * through the switch's _replace, which puts upstream's functions back when
 * the component is turned off) by _core._HandlerMethod descriptors.  A
 * descriptor behaves as a Python function in a class does: looked up on an
 * instance it binds (a method object), called through the class it takes
 * self first, and it carries Py_TPFLAGS_METHOD_DESCRIPTOR so that
 * `self.clear()` in Python code calls it unbound, with no bound object.
 *
 * The state stays where upstream keeps it: the instance's ordinary
 * attributes (_headers, _status_code, _reason, _write_buffer, _finished,
 * ...), read and written with PyObject_GetAttr/SetAttr, so a subclass that
 * reads or writes them, or defines properties for them, sees what it does
 * under upstream.
 *
 * Hooks.  Wherever upstream calls self.name(...), the C code resolves the
 * name as Python would (the type's MRO, then the instance's own attributes
 * shadowing a non-data descriptor).  When it resolves to our own descriptor
 * the C function is called directly; when it resolves to upstream's original
 * no-op (initialize, set_default_headers) nothing is called; anything else
 * (a subclass override, an attribute set on the instance) is called as
 * Python would call it.
 *
 * Unusual arguments (a reason that is not a str, ...) go to upstream's own
 * function, kept in orig[]: its errors and results are upstream's by
 * construction.
 */
#include "common.h"

#include <math.h>
#include <structmember.h>
#include <time.h>

#include "state.h"
#include "web/web.h"
#include "web/handler.h"

/* ----------------------------------------------------------- descriptor */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    tc_web_state *ws;          /* borrowed: lives in the module state, kept alive by module */
    PyObject *module;          /* strong */
    PyTypeObject *owner;       /* strong: the class whose instances it takes */
    PyObject *name;            /* strong: __name__ */
    PyObject *qualname;        /* strong: __qualname__ */
    PyObject *doc;             /* strong: __doc__ (upstream's) */
    PyObject *wrapped;         /* strong: upstream's function (__wrapped__, for inspect) */
    tc_web_impl impl;
} hmethod;

static PyObject *
hmethod_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    hmethod *m = (hmethod *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError, "unbound method %U() needs an argument", m->qualname);
        return NULL;
    }
    if (!PyObject_TypeCheck(args[0], m->owner)) {
        PyErr_Format(PyExc_TypeError,
                     "descriptor '%U' for '%s' objects doesn't apply to a '%s' object", m->name,
                     m->owner->tp_name, Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    return m->impl(m->ws, args[0], args + 1, nargs - 1, kwnames);
}

static PyObject *
hmethod_get(PyObject *op, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(op);
    }
    return PyMethod_New(op, obj);
}

static PyObject *
hmethod_repr(PyObject *op)
{
    return PyUnicode_FromFormat("<C function %U>", ((hmethod *)op)->qualname);
}

static int
hmethod_traverse(PyObject *op, visitproc visit, void *arg)
{
    hmethod *m = (hmethod *)op;
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(m->module);
    Py_VISIT(m->owner);
    Py_VISIT(m->name);
    Py_VISIT(m->qualname);
    Py_VISIT(m->doc);
    Py_VISIT(m->wrapped);
    return 0;
}

static int
hmethod_clear(PyObject *op)
{
    hmethod *m = (hmethod *)op;
    Py_CLEAR(m->module);
    Py_CLEAR(m->owner);
    Py_CLEAR(m->name);
    Py_CLEAR(m->qualname);
    Py_CLEAR(m->doc);
    Py_CLEAR(m->wrapped);
    return 0;
}

static void
hmethod_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    hmethod_clear(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyObject *
hmethod_get_name(PyObject *op, void *Py_UNUSED(c))
{
    return Py_NewRef(((hmethod *)op)->name);
}

static PyObject *
hmethod_get_qualname(PyObject *op, void *Py_UNUSED(c))
{
    return Py_NewRef(((hmethod *)op)->qualname);
}

static PyObject *
hmethod_get_doc(PyObject *op, void *Py_UNUSED(c))
{
    return Py_NewRef(((hmethod *)op)->doc);
}

static PyObject *
hmethod_get_wrapped(PyObject *op, void *Py_UNUSED(c))
{
    return Py_NewRef(((hmethod *)op)->wrapped);
}

static PyObject *
hmethod_get_module(PyObject *op, void *Py_UNUSED(c))
{
    return PyObject_GetAttrString(((hmethod *)op)->wrapped, "__module__");
}

static PyObject *
hmethod_get_objclass(PyObject *op, void *Py_UNUSED(c))
{
    return Py_NewRef((PyObject *)((hmethod *)op)->owner);
}

static PyGetSetDef hmethod_getset[] = {
    {"__name__", hmethod_get_name, NULL, NULL, NULL},
    {"__qualname__", hmethod_get_qualname, NULL, NULL, NULL},
    {"__doc__", hmethod_get_doc, NULL, NULL, NULL},
    {"__objclass__", hmethod_get_objclass, NULL, NULL, NULL},
    {"__wrapped__", hmethod_get_wrapped, NULL, NULL, NULL},
    {"__module__", hmethod_get_module, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef hmethod_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(hmethod, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot hmethod_slots[] = {
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_descr_get, hmethod_get},
    {Py_tp_repr, hmethod_repr},
    {Py_tp_traverse, hmethod_traverse},
    {Py_tp_clear, hmethod_clear},
    {Py_tp_dealloc, hmethod_dealloc},
    {Py_tp_getset, hmethod_getset},
    {Py_tp_members, hmethod_members},
    {0, NULL},
};

static PyType_Spec hmethod_spec = {
    .name = "tornado_c._core._HandlerMethod",
    .basicsize = sizeof(hmethod),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION |
             Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .slots = hmethod_slots,
};

/* A new descriptor for `impl` named like upstream's function `orig`
 * (borrowed), taking instances of `owner` (borrowed). */
static PyObject *
hmethod_new(PyObject *module, tc_web_state *ws, PyObject *owner, PyObject *orig,
            tc_web_impl impl)
{
    hmethod *m = PyObject_GC_New(hmethod, ws->h.MethodType);
    if (m == NULL) {
        return NULL;
    }
    m->vectorcall = hmethod_vectorcall;
    m->ws = ws;
    m->module = Py_NewRef(module);
    m->owner = (PyTypeObject *)Py_NewRef(owner);
    m->impl = impl;
    m->wrapped = Py_NewRef(orig);
    m->name = PyObject_GetAttrString(orig, "__name__");
    m->qualname = m->name ? PyObject_GetAttrString(orig, "__qualname__") : NULL;
    m->doc = m->qualname ? PyObject_GetAttrString(orig, "__doc__") : NULL;
    PyObject_GC_Track((PyObject *)m);
    if (m->doc == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    return (PyObject *)m;
}

/* ----------------------------------------------------------- hooks */

#if PY_VERSION_HEX < 0x030D0000
/* 3.11/3.12 export it (cpython/object.h): the lookup LOAD_METHOD does. */
#define TC_HAVE_GETMETHOD 1
#endif

int
tc_web_hook_resolve(tc_web_state *ws, PyObject *self, int hook, PyObject **callable,
                    int *unbound)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *meth = NULL;
#ifdef TC_HAVE_GETMETHOD
    int unb = _PyObject_GetMethod(self, hs->name[hook], &meth);
    if (meth == NULL) {
        return -1;
    }
    if (unb && (meth == hs->ours[hook] || meth == hs->orig[hook])) {
        Py_DECREF(meth);
        return 1;
    }
    *callable = meth;
    *unbound = unb;
    return 0;
#else
    meth = PyObject_GetAttr(self, hs->name[hook]);
    if (meth == NULL) {
        return -1;
    }
    if (PyMethod_Check(meth) && PyMethod_GET_SELF(meth) == self) {
        PyObject *f = PyMethod_GET_FUNCTION(meth);
        if (f == hs->ours[hook] || f == hs->orig[hook]) {
            Py_DECREF(meth);
            return 1;
        }
    }
    *callable = meth;
    *unbound = 0;
    return 0;
#endif
}

int
tc_web_is_method(PyObject *obj, PyObject *name, PyObject *func)
{
    PyObject *meth = NULL;
    int r;
#ifdef TC_HAVE_GETMETHOD
    int unb = _PyObject_GetMethod(obj, name, &meth);
    if (meth == NULL) {
        return -1;
    }
    r = unb && meth == func;
#else
    meth = PyObject_GetAttr(obj, name);
    if (meth == NULL) {
        return -1;
    }
    r = PyMethod_Check(meth) && PyMethod_GET_SELF(meth) == obj &&
        PyMethod_GET_FUNCTION(meth) == func;
#endif
    Py_DECREF(meth);
    return r;
}

PyObject *
tc_web_hook_call(PyObject *self, PyObject *callable, int unbound, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *small[12], **stack = small, *r;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw + 2 > (Py_ssize_t)(sizeof(small) / sizeof(small[0]))) {
        /* set_cookie's forwarder passes every parameter, plus **kwargs */
        stack = PyMem_New(PyObject *, (size_t)(nargs + nkw + 2));
        if (stack == NULL) {
            return PyErr_NoMemory();
        }
    }
    /* slot 0 is scratch space for PY_VECTORCALL_ARGUMENTS_OFFSET */
    stack[1] = self;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++) {
        stack[i + 2] = args[i];
    }
    if (unbound) {
        r = PyObject_Vectorcall(callable, stack + 1, (size_t)(nargs + 1), kwnames);
    } else {
        r = PyObject_Vectorcall(callable, stack + 2,
                                (size_t)nargs | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
    }
    if (stack != small) {
        PyMem_Free(stack);
    }
    return r;
}

/* self.<hook>(*args): the C implementation when it is ours, nothing
 * (None) when it is upstream's no-op, else what Python would call. */
PyObject *
tc_web_hook(tc_web_state *ws, PyObject *self, int hook, tc_web_impl impl, PyObject *const *args,
            Py_ssize_t nargs)
{
    PyObject *callable = NULL, *r;
    int unbound = 0;
    int k = tc_web_hook_resolve(ws, self, hook, &callable, &unbound);
    if (k < 0) {
        return NULL;
    }
    if (k == 1) {
        if (impl == NULL) {
            Py_RETURN_NONE; /* upstream's no-op */
        }
        return impl(ws, self, args, nargs, NULL);
    }
    r = tc_web_hook_call(self, callable, unbound, args, nargs, NULL);
    Py_DECREF(callable);
    return r;
}

/* ----------------------------------------------------------- arguments */

/* Python's binding of positional and keyword arguments for a method with
 * parameters `names` (after self), the first `nreq` required: out[i] is the
 * i-th argument, borrowed, or NULL if it was not given.  0, or 1 when the
 * arguments do not bind (no exception set): the caller then calls
 * upstream's function, which raises Python's own TypeError. */
int
tc_web_bind(const char *const *names, Py_ssize_t nparams, Py_ssize_t nreq,
            PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **out)
{
    Py_ssize_t i;
    if (nargs > nparams) {
        return 1;
    }
    for (i = 0; i < nparams; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    if (kwnames != NULL) {
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
            PyObject *kw = PyTuple_GET_ITEM(kwnames, k);
            for (i = 0; i < nparams; i++) {
                if (PyUnicode_CompareWithASCIIString(kw, names[i]) == 0) {
                    break;
                }
            }
            if (i == nparams || out[i] != NULL) {
                return 1;
            }
            out[i] = args[nargs + k];
        }
    }
    for (i = 0; i < nreq; i++) {
        if (out[i] == NULL) {
            return 1;
        }
    }
    return 0;
}

/* upstream's function for `hook` called with (self, args..., **kw) */
static PyObject *
call_orig(tc_web_state *ws, int hook, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    return tc_web_hook_call(self, ws->h.orig[hook], 1, args, nargs, kwnames);
}

/* ----------------------------------------------------------- Date */

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* httputil.format_timestamp(time.time()), new reference.  The second is
 * the one datetime.fromtimestamp(time.time()) gives (microseconds rounded
 * half to even, which may carry into the next second); the text is the
 * one email.utils.formatdate(usegmt=True) writes; it changes once a
 * second, so it is kept. */
PyObject *
tc_web_date_now(tc_web_state *ws)
{
    struct timespec ts;
    char buf[64];
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    if (ts.tv_nsec != 0) {
        t = (double)((long long)ts.tv_sec * 1000000000LL + ts.tv_nsec) / 1e9;
    }
    double ip, fp = modf(t, &ip);
    double us = nearbyint(fp * 1e6);
    long long sec = (long long)ip + (us >= 1e6 ? 1 : 0);
    if (ws->h.date_value != NULL && sec == ws->h.date_sec) {
        return Py_NewRef(ws->h.date_value);
    }
    time_t tt = (time_t)sec;
    if (gmtime_r(&tt, &tm) == NULL) {
        PyErr_SetString(PyExc_OverflowError, "timestamp out of range");
        return NULL;
    }
    snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    PyObject *v = PyUnicode_FromString(buf);
    if (v == NULL) {
        return NULL;
    }
    Py_XSETREF(ws->h.date_value, Py_NewRef(v));
    ws->h.date_sec = sec;
    return v;
}

/* ----------------------------------------------------------- methods */

static int
set_attr_new(PyObject *self, PyObject *name, PyObject *value)
{
    if (value == NULL) {
        return -1;
    }
    int r = PyObject_SetAttr(self, name, value);
    Py_DECREF(value);
    return r;
}

/* clear(self) */
PyObject *
tc_web_clear_impl(tc_web_state *ws, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *h = NULL, *v = NULL, *r = NULL;
    if (nargs != 0 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        return call_orig(ws, TC_H_CLEAR, self, args, nargs, kwnames);
    }
    PyObject *date = tc_web_date_now(ws);
    if (date == NULL) {
        return NULL;
    }
    if (tc_web_headers_active(ws)) {
        /* httputil.HTTPHeaders({...}) gives these C headers while the
         * switch is on: the same three __setitem__ in the dict's order */
        h = tc_web_headers_new(ws);
        if (h == NULL || PyObject_SetItem(h, hs->s_Server, hs->server_value) < 0 ||
            PyObject_SetItem(h, hs->s_Content_Type, hs->s_text_html) < 0 ||
            PyObject_SetItem(h, hs->s_Date, date) < 0) {
            goto done;
        }
    } else {
        PyObject *d = PyDict_New(), *cls = NULL;
        if (d == NULL || PyDict_SetItem(d, hs->s_Server, hs->server_value) < 0 ||
            PyDict_SetItem(d, hs->s_Content_Type, hs->s_text_html) < 0 ||
            PyDict_SetItem(d, hs->s_Date, date) < 0 ||
            (cls = PyObject_GetAttr(ws->httputil_module, ws->s_HTTPHeaders)) == NULL) {
            Py_XDECREF(d);
            goto done;
        }
        h = PyObject_CallOneArg(cls, d);
        Py_DECREF(cls);
        Py_DECREF(d);
        if (h == NULL) {
            goto done;
        }
    }
    if (PyObject_SetAttr(self, hs->s_headers, h) < 0) {
        goto done;
    }
    v = tc_web_hook(ws, self, TC_H_SET_DEFAULT_HEADERS, NULL, NULL, 0);
    if (v == NULL) {
        goto done;
    }
    Py_DECREF(v);
    if (set_attr_new(self, hs->s_write_buffer, PyList_New(0)) < 0 ||
        set_attr_new(self, hs->s_status_code, PyLong_FromLong(200)) < 0) {
        goto done;
    }
    {
        PyObject *key = PyLong_FromLong(200), *reason;
        if (key == NULL) {
            goto done;
        }
        reason = PyObject_GetItem(hs->responses, key); /* httputil.responses[200] */
        Py_DECREF(key);
        if (set_attr_new(self, hs->s_reason, reason) < 0) {
            goto done;
        }
    }
    r = Py_NewRef(Py_None);
done:
    Py_DECREF(date);
    Py_XDECREF(h);
    return r;
}

/* The characters upstream's _VALID_HEADER_CHARS allows: \t, 0x20-0x7e,
 * 0x80-0xff. */
static int
header_chars_ok(PyObject *s)
{
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (kind != PyUnicode_1BYTE_KIND) {
        return 0; /* it has a character above 0xff */
    }
    const unsigned char *p = data;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (!(c == 0x09 || (c >= 0x20 && c <= 0x7e) || c >= 0x80)) {
            return 0;
        }
    }
    return 1;
}

/* _convert_header_value(self, value) */
PyObject *
tc_web_convert_impl(tc_web_state *ws, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames)
{
    PyObject *value, *retval;
    if (nargs != 1 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        return call_orig(ws, TC_H_CONVERT, self, args, nargs, kwnames);
    }
    value = args[0];
    if (PyUnicode_Check(value)) {
        retval = Py_NewRef(value);
    } else if (PyBytes_Check(value)) {
        retval = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), NULL);
        if (retval == NULL) {
            return NULL;
        }
    } else if (PyLong_CheckExact(value)) {
        return PyObject_Str(value);
    } else {
        /* numbers.Integral, datetime, the TypeError: upstream's own code */
        return call_orig(ws, TC_H_CONVERT, self, args, nargs, kwnames);
    }
    if (!header_chars_ok(retval)) {
        PyErr_Format(PyExc_ValueError, "Unsafe header value %R", retval);
        Py_DECREF(retval);
        return NULL;
    }
    return retval;
}

static const char *const names_name_value[] = {"name", "value"};

/* set_header(self, name, value) */
PyObject *
tc_web_set_header_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2], *v, *h;
    int r;
    if (tc_web_bind(names_name_value, 2, 2, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_SET_HEADER, self, args, nargs, kwnames);
    }
    v = tc_web_hook(ws, self, TC_H_CONVERT, tc_web_convert_impl, a + 1, 1);
    if (v == NULL) {
        return NULL;
    }
    h = PyObject_GetAttr(self, ws->h.s_headers);
    if (h == NULL) {
        Py_DECREF(v);
        return NULL;
    }
    r = PyObject_SetItem(h, a[0], v);
    Py_DECREF(h);
    Py_DECREF(v);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* add_header(self, name, value) */
PyObject *
tc_web_add_header_impl(tc_web_state *ws, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    PyObject *a[2], *v = NULL, *h, *add = NULL, *r = NULL;
    if (tc_web_bind(names_name_value, 2, 2, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_ADD_HEADER, self, args, nargs, kwnames);
    }
    h = PyObject_GetAttr(self, ws->h.s_headers);
    if (h == NULL) {
        return NULL;
    }
    add = PyObject_GetAttr(h, ws->s_add); /* self._headers.add, then the value */
    if (add == NULL) {
        goto done;
    }
    v = tc_web_hook(ws, self, TC_H_CONVERT, tc_web_convert_impl, a + 1, 1);
    if (v == NULL) {
        goto done;
    }
    {
        PyObject *cargs[2] = {a[0], v};
        r = PyObject_Vectorcall(add, cargs, 2, NULL);
    }
done:
    Py_DECREF(h);
    Py_XDECREF(add);
    Py_XDECREF(v);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static const char *const names_name[] = {"name"};

/* clear_header(self, name) */
PyObject *
tc_web_clear_header_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[1], *h;
    int r;
    if (tc_web_bind(names_name, 1, 1, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_CLEAR_HEADER, self, args, nargs, kwnames);
    }
    h = PyObject_GetAttr(self, ws->h.s_headers);
    if (h == NULL) {
        return NULL;
    }
    r = PySequence_Contains(h, a[0]);
    if (r > 0) {
        Py_DECREF(h); /* `del self._headers[name]` looks it up again */
        h = PyObject_GetAttr(self, ws->h.s_headers);
        if (h == NULL) {
            return NULL;
        }
        r = PyObject_DelItem(h, a[0]);
    }
    Py_DECREF(h);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* upstream's reason_phrase: one or more of \t, ' ', 0x21-0x7e, 0x80-0xff */
static int
reason_ok(PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n == 0 || PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) {
        return 0;
    }
    const unsigned char *p = PyUnicode_1BYTE_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '<' || !(c == '\t' || (c >= 0x20 && c <= 0x7e) || c >= 0x80)) {
            return 0;
        }
    }
    return 1;
}

static const char *const names_status[] = {"status_code", "reason"};

/* set_status(self, status_code, reason=None) */
PyObject *
tc_web_set_status_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *a[2], *reason;
    if (tc_web_bind(names_status, 2, 1, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_SET_STATUS, self, args, nargs, kwnames);
    }
    if (a[1] != NULL && a[1] != Py_None && !PyUnicode_CheckExact(a[1])) {
        /* upstream's own expressions for other reasons (and their errors) */
        return call_orig(ws, TC_H_SET_STATUS, self, args, nargs, kwnames);
    }
    if (PyObject_SetAttr(self, hs->s_status_code, a[0]) < 0) {
        return NULL;
    }
    if (a[1] != NULL && a[1] != Py_None) {
        reason = Py_NewRef(reason_ok(a[1]) ? a[1] : hs->s_Unknown);
    } else if (PyDict_CheckExact(hs->responses)) {
        reason = PyDict_GetItemWithError(hs->responses, a[0]); /* borrowed */
        if (reason == NULL && PyErr_Occurred()) {
            return NULL;
        }
        reason = Py_NewRef(reason ? reason : hs->s_Unknown);
    } else {
        PyObject *get = PyObject_GetAttrString(hs->responses, "get");
        if (get == NULL) {
            return NULL;
        }
        PyObject *gargs[2] = {a[0], hs->s_Unknown};
        reason = PyObject_Vectorcall(get, gargs, 2, NULL);
        Py_DECREF(get);
        if (reason == NULL) {
            return NULL;
        }
    }
    if (set_attr_new(self, hs->s_reason, reason) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* get_status(self) */
PyObject *
tc_web_get_status_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs != 0 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        return call_orig(ws, TC_H_GET_STATUS, self, args, nargs, kwnames);
    }
    return PyObject_GetAttr(self, ws->h.s_status_code);
}

static const char *const names_chunk[] = {"chunk"};

/* write(self, chunk) */
PyObject *
tc_web_write_impl(tc_web_state *ws, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *a[1], *v, *chunk, *buf;
    int r;
    if (tc_web_bind(names_chunk, 1, 1, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_WRITE, self, args, nargs, kwnames);
    }
    v = PyObject_GetAttr(self, hs->s_finished);
    if (v == NULL) {
        return NULL;
    }
    r = PyObject_IsTrue(v);
    Py_DECREF(v);
    if (r < 0) {
        return NULL;
    }
    if (r) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot write() after finish()");
        return NULL;
    }
    if (PyBytes_Check(a[0])) {
        chunk = Py_NewRef(a[0]);
    } else if (PyUnicode_Check(a[0])) {
        chunk = PyUnicode_AsUTF8String(a[0]);
        if (chunk == NULL) {
            return NULL;
        }
    } else if (PyDict_Check(a[0])) {
        PyObject *s = PyObject_CallOneArg(hs->json_encode, a[0]), *sargs[2];
        if (s == NULL) {
            return NULL;
        }
        sargs[0] = hs->s_Content_Type;
        sargs[1] = hs->s_json_type;
        v = tc_web_hook(ws, self, TC_H_SET_HEADER, tc_web_set_header_impl, sargs, 2);
        if (v == NULL) {
            Py_DECREF(s);
            return NULL;
        }
        Py_DECREF(v);
        if (!PyUnicode_Check(s)) { /* utf8()'s error for what json_encode gave */
            PyErr_Format(PyExc_TypeError, "Expected bytes, unicode, or None; got %R",
                         (PyObject *)Py_TYPE(s));
            Py_DECREF(s);
            return NULL;
        }
        chunk = PyUnicode_AsUTF8String(s);
        Py_DECREF(s);
        if (chunk == NULL) {
            return NULL;
        }
    } else {
        /* the TypeError, with upstream's message */
        return call_orig(ws, TC_H_WRITE, self, args, nargs, kwnames);
    }
    buf = PyObject_GetAttr(self, hs->s_write_buffer);
    if (buf == NULL) {
        Py_DECREF(chunk);
        return NULL;
    }
    if (PyList_CheckExact(buf)) {
        r = PyList_Append(buf, chunk);
    } else {
        v = PyObject_CallMethodOneArg(buf, ws->h.s_append, chunk);
        r = v ? 0 : -1;
        Py_XDECREF(v);
    }
    Py_DECREF(buf);
    Py_DECREF(chunk);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _UIModuleNamespace(handler, ui_modules): while the class has upstream's
 * __init__ (two attributes) and object's __new__ and type's __call__, the
 * instance is made and its attributes set here. */
static PyObject *
ui_namespace(tc_web_handler_state *hs, PyObject *handler, PyObject *mods)
{
    PyObject *cls = hs->UIModuleNamespace;
    PyTypeObject *t = (PyTypeObject *)cls;
    if (PyType_Check(cls) && Py_TYPE(cls)->tp_call == PyType_Type.tp_call &&
        t->tp_new == PyBaseObject_Type.tp_new && t->tp_setattro == PyObject_GenericSetAttr &&
        _PyType_Lookup(t, hs->s_init) == hs->ns_init) {
        PyObject *empty = PyTuple_New(0);
        PyObject *ns = empty ? PyBaseObject_Type.tp_new(t, empty, NULL) : NULL;
        Py_XDECREF(empty);
        if (ns != NULL && (PyObject_SetAttr(ns, hs->s_handler, handler) < 0 ||
                           PyObject_SetAttr(ns, hs->s_ui_modules, mods) < 0)) {
            Py_CLEAR(ns);
        }
        return ns;
    }
    PyObject *args[2] = {handler, mods};
    return PyObject_Vectorcall(cls, args, 2, NULL);
}

/* RequestHandler.__init__(self, application, request, **kwargs) */
PyObject *
tc_web_init_impl(tc_web_state *ws, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *application, *request, *v = NULL, *ui = NULL, *conn = NULL, *cb = NULL;
    PyObject *r = NULL, *kwtuple = NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs != 2) {
        /* keywords for application/request, wrong counts: upstream's binding */
        return call_orig(ws, TC_H_INIT, self, args, nargs, kwnames);
    }
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, k);
        if (PyUnicode_CompareWithASCIIString(kw, "application") == 0 ||
            PyUnicode_CompareWithASCIIString(kw, "request") == 0) {
            return call_orig(ws, TC_H_INIT, self, args, nargs, kwnames);
        }
    }
    application = args[0];
    request = args[1];
    /* super().__init__(): object's does nothing; another base's is called */
    {
        PyObject *mro = Py_TYPE(self)->tp_mro;
        Py_ssize_t n = PyTuple_GET_SIZE(mro), i;
        for (i = 0; i < n && PyTuple_GET_ITEM(mro, i) != hs->RequestHandler; i++) {
        }
        if (i + 1 < n && PyTuple_GET_ITEM(mro, i + 1) != (PyObject *)&PyBaseObject_Type) {
            PyObject *sargs[2] = {hs->RequestHandler, self};
            PyObject *sup = PyObject_Vectorcall((PyObject *)&PySuper_Type, sargs, 2, NULL);
            if (sup == NULL) {
                return NULL;
            }
            v = PyObject_CallMethodNoArgs(sup, hs->s_init);
            Py_DECREF(sup);
            if (v == NULL) {
                return NULL;
            }
            Py_CLEAR(v);
        }
    }
    if (PyObject_SetAttr(self, hs->s_application, application) < 0 ||
        PyObject_SetAttr(self, hs->s_request, request) < 0 ||
        PyObject_SetAttr(self, hs->s_headers_written, Py_False) < 0 ||
        PyObject_SetAttr(self, hs->s_finished, Py_False) < 0 ||
        PyObject_SetAttr(self, hs->s_auto_finish, Py_True) < 0 ||
        PyObject_SetAttr(self, hs->s_prepared_future, Py_None) < 0) {
        return NULL;
    }
    /* self.ui = ObjectDict((n, self._ui_method(m)) for n, m in
     *                      application.ui_methods.items()) */
    {
        PyObject *methods = PyObject_GetAttr(application, hs->s_ui_methods), *items, *it, *pair;
        if (methods == NULL) {
            return NULL;
        }
        if (PyDict_CheckExact(methods) && PyDict_GET_SIZE(methods) == 0) {
            /* nothing to iterate (the default): ObjectDict() of nothing */
            Py_DECREF(methods);
            ui = PyObject_CallNoArgs(hs->ObjectDict);
            if (ui == NULL || PyObject_SetAttr(self, hs->s_ui, ui) < 0) {
                goto done;
            }
            goto ui_modules;
        }
        items = PyObject_CallMethod(methods, "items", NULL);
        Py_DECREF(methods);
        if (items == NULL) {
            return NULL;
        }
        it = PyObject_GetIter(items);
        Py_DECREF(items);
        if (it == NULL) {
            return NULL;
        }
        PyObject *list = PyList_New(0);
        while (list != NULL && (pair = PyIter_Next(it)) != NULL) {
            PyObject *n = NULL, *m = NULL, *f = NULL, *t = NULL;
            if (PyArg_UnpackTuple(pair, "items", 2, 2, &n, &m) &&
                (f = PyObject_CallMethodOneArg(self, hs->s_ui_method, m)) != NULL &&
                (t = PyTuple_Pack(2, n, f)) != NULL && PyList_Append(list, t) == 0) {
            } else {
                Py_CLEAR(list);
            }
            Py_XDECREF(f);
            Py_XDECREF(t);
            Py_DECREF(pair);
        }
        Py_DECREF(it);
        if (list == NULL || PyErr_Occurred()) {
            Py_XDECREF(list);
            return NULL;
        }
        ui = PyObject_CallOneArg(hs->ObjectDict, list);
        Py_DECREF(list);
        if (ui == NULL || PyObject_SetAttr(self, hs->s_ui, ui) < 0) {
            goto done;
        }
    }
    /* self.ui["_tt_modules"] = _UIModuleNamespace(self, application.ui_modules)
     * self.ui["modules"] = self.ui["_tt_modules"] */
ui_modules:
    {
        PyObject *mods = PyObject_GetAttr(application, hs->s_ui_modules), *ns, *u, *got;
        if (mods == NULL) {
            goto done;
        }
        ns = ui_namespace(hs, self, mods);
        Py_DECREF(mods);
        if (ns == NULL) {
            goto done;
        }
        u = PyObject_GetAttr(self, hs->s_ui);
        int rr = u ? PyObject_SetItem(u, hs->s_tt_modules, ns) : -1;
        Py_DECREF(ns);
        Py_XDECREF(u);
        if (rr < 0) {
            goto done;
        }
        u = PyObject_GetAttr(self, hs->s_ui);
        got = u ? PyObject_GetItem(u, hs->s_tt_modules) : NULL;
        Py_XDECREF(u);
        u = got ? PyObject_GetAttr(self, hs->s_ui) : NULL;
        rr = u ? PyObject_SetItem(u, hs->s_modules, got) : -1;
        Py_XDECREF(u);
        Py_XDECREF(got);
        if (rr < 0) {
            goto done;
        }
    }
    v = tc_web_hook(ws, self, TC_H_CLEAR, tc_web_clear_impl, NULL, 0);
    if (v == NULL) {
        goto done;
    }
    Py_CLEAR(v);
    /* assert self.request.connection is not None
     * self.request.connection.set_close_callback(self.on_connection_close) */
    {
        PyObject *req = PyObject_GetAttr(self, hs->s_request);
        conn = req ? PyObject_GetAttr(req, hs->s_connection) : NULL;
        Py_XDECREF(req);
        if (conn == NULL) {
            goto done;
        }
        if (conn == Py_None) {
            PyErr_SetNone(PyExc_AssertionError);
            goto done;
        }
        Py_CLEAR(conn);
        req = PyObject_GetAttr(self, hs->s_request);
        conn = req ? PyObject_GetAttr(req, hs->s_connection) : NULL;
        Py_XDECREF(req);
        if (conn == NULL) {
            goto done;
        }
        PyObject *setcb = PyObject_GetAttr(conn, hs->s_set_close_callback);
        if (setcb == NULL) {
            goto done;
        }
        cb = PyObject_GetAttr(self, hs->s_on_connection_close);
        v = cb ? PyObject_CallOneArg(setcb, cb) : NULL;
        Py_DECREF(setcb);
        if (v == NULL) {
            goto done;
        }
        Py_CLEAR(v);
    }
    /* self.initialize(**kwargs) */
    {
        PyObject *callable = NULL;
        int unbound = 0;
        int k = tc_web_hook_resolve(ws, self, TC_H_INITIALIZE, &callable, &unbound);
        if (k < 0) {
            goto done;
        }
        if (k == 1 && nkw == 0) {
            r = Py_NewRef(Py_None);
            goto done;
        }
        if (k == 1) { /* upstream's no-op with keywords: its TypeError */
            callable = Py_NewRef(hs->orig[TC_H_INITIALIZE]);
            unbound = 1;
        }
        v = tc_web_hook_call(self, callable, unbound, args + 2, 0, kwnames);
        Py_DECREF(callable);
        if (v == NULL) {
            goto done;
        }
        Py_CLEAR(v);
    }
    r = Py_NewRef(Py_None);
done:
    Py_XDECREF(kwtuple);
    Py_XDECREF(ui);
    Py_XDECREF(conn);
    Py_XDECREF(cb);
    return r;
}

/* ----------------------------------------------------------- setup */

struct impl_entry {
    int hook;
    const char *name;  /* the attribute; originals are keyed "Application.<name>" for
                          Application's methods */
    tc_web_impl impl;  /* NULL: an upstream no-op, not replaced */
    int owner;         /* 0: RequestHandler, 1: Application, 2: _HandlerDelegate,
                          3: HTTPServerRequest */
};

static const struct impl_entry impls[] = {
    {TC_H_INIT, "__init__", tc_web_init_impl},
    {TC_H_CLEAR, "clear", tc_web_clear_impl},
    {TC_H_SET_HEADER, "set_header", tc_web_set_header_impl},
    {TC_H_ADD_HEADER, "add_header", tc_web_add_header_impl},
    {TC_H_CLEAR_HEADER, "clear_header", tc_web_clear_header_impl},
    {TC_H_CONVERT, "_convert_header_value", tc_web_convert_impl},
    {TC_H_SET_STATUS, "set_status", tc_web_set_status_impl},
    {TC_H_GET_STATUS, "get_status", tc_web_get_status_impl},
    {TC_H_WRITE, "write", tc_web_write_impl},
    {TC_H_FLUSH, "flush", tc_web_flush_impl},
    {TC_H_FINISH, "finish", tc_web_finish_impl},
    {TC_H_COMPUTE_ETAG, "compute_etag", tc_web_compute_etag_impl},
    {TC_H_SET_ETAG, "set_etag_header", tc_web_set_etag_impl},
    {TC_H_CHECK_ETAG, "check_etag_header", tc_web_check_etag_impl},
    {TC_H_SHOULD_NOT_SEND, "_should_not_send_content", tc_web_should_not_send_impl},
    {TC_H_CLEAR_REPR, "_clear_representation_headers", tc_web_clear_repr_impl},
    {TC_H_LOG, "_log", tc_web_log_impl},
    {TC_H_REQUEST_SUMMARY, "_request_summary", tc_web_request_summary_impl},
    {TC_H_BREAK_CYCLES, "_break_cycles", tc_web_break_cycles_impl},
    {TC_H_CROSS_ORIGIN, "_cross_origin_protection", tc_web_cross_origin_impl},
    {TC_H_DECODE_ARGUMENT, "decode_argument", tc_web_decode_argument_impl},
    {TC_H_GET_ARGUMENTS_, "_get_arguments", tc_web_get_arguments__impl},
    {TC_H_GET_ARGUMENT_, "_get_argument", tc_web_get_argument__impl},
    {TC_H_GET_ARGUMENT, "get_argument", tc_web_get_argument_impl},
    {TC_H_GET_QUERY_ARGUMENT, "get_query_argument", tc_web_get_query_argument_impl},
    {TC_H_GET_BODY_ARGUMENT, "get_body_argument", tc_web_get_body_argument_impl},
    {TC_H_GET_ARGUMENTS, "get_arguments", tc_web_get_arguments_impl},
    {TC_H_GET_QUERY_ARGUMENTS, "get_query_arguments", tc_web_get_query_arguments_impl},
    {TC_H_GET_BODY_ARGUMENTS, "get_body_arguments", tc_web_get_body_arguments_impl},
    {TC_H_GET_COOKIE, "get_cookie", tc_web_get_cookie_impl},
    {TC_H_REDIRECT, "redirect", tc_web_redirect_impl},
    {TC_H_WRITE_ERROR, "write_error", tc_web_write_error_impl},
    {TC_H_SEND_ERROR, "send_error", tc_web_send_error_impl},
    {TC_H_LOG_EXCEPTION, "log_exception", tc_web_log_exception_impl},
    {TC_H_HANDLE_EXC, "_handle_request_exception", tc_web_handle_exception_impl},
    {TC_H_APP_LOG_REQUEST, "log_request", tc_web_app_log_request_impl, 1},
    {TC_H_DELEGATE_EXECUTE, "execute", tc_web_delegate_execute_impl, 2},
    {TC_H_SET_COOKIE, "set_cookie", tc_web_set_cookie_impl},
    {TC_H_CLEAR_COOKIE, "clear_cookie", tc_web_clear_cookie_impl},
    {TC_H_INITIALIZE, "initialize", NULL},
    {TC_H_SET_DEFAULT_HEADERS, "set_default_headers", NULL},
    {TC_H_ON_FINISH, "on_finish", NULL},
    {TC_H_PREPARE, "prepare", NULL},
    {TC_H_EXECUTE, "_execute", NULL},
    {TC_H_PARSE_BODY, "_parse_body", NULL, 3},
};

#define SETUP_ITEM(field, key)                                                  \
    do {                                                                        \
        PyObject *o_ = PyDict_GetItemString(cfg, key); /* borrowed */           \
        if (o_ == NULL) {                                                       \
            PyErr_Format(PyExc_KeyError, "_web_handler_setup: missing %s", key); \
            return NULL;                                                        \
        }                                                                       \
        Py_XSETREF(hs->field, Py_NewRef(o_));                                   \
    } while (0)

/* _core._web_handler_setup(cfg: dict) -> {name: descriptor}
 * cfg holds upstream's objects (see tornado_c/_webhandler.py).  Returns the
 * descriptors to install on RequestHandler, by attribute name. */
static PyObject *
fn_handler_setup(PyObject *module, PyObject *cfg)
{
    tc_web_state *ws = tc_get_state(module)->web;
    tc_web_handler_state *hs = &ws->h;
    PyObject *out = NULL;
    if (!PyDict_Check(cfg)) {
        PyErr_SetString(PyExc_TypeError, "_web_handler_setup(cfg): cfg must be a dict");
        return NULL;
    }
    SETUP_ITEM(RequestHandler, "RequestHandler");
    SETUP_ITEM(ObjectDict, "ObjectDict");
    SETUP_ITEM(UIModuleNamespace, "_UIModuleNamespace");
    SETUP_ITEM(responses, "responses");
    SETUP_ITEM(server_value, "server");
    SETUP_ITEM(Integral, "Integral");
    SETUP_ITEM(datetime, "datetime");
    SETUP_ITEM(format_timestamp, "format_timestamp");
    SETUP_ITEM(json_encode, "json_encode");
    SETUP_ITEM(Application, "Application");
    SETUP_ITEM(ResponseStartLine, "ResponseStartLine");
    SETUP_ITEM(rsl_new, "ResponseStartLine.__new__");
    SETUP_ITEM(Future, "Future");
    SETUP_ITEM(web_globals, "web_globals");
    SETUP_ITEM(Logger, "Logger");
    SETUP_ITEM(HandlerDelegate, "_HandlerDelegate");
    SETUP_ITEM(ArgDefaultMarker, "_ArgDefaultMarker");
    SETUP_ITEM(ARG_DEFAULT, "_ARG_DEFAULT");
    SETUP_ITEM(MissingArgumentError, "MissingArgumentError");
    SETUP_ITEM(HTTPError, "HTTPError");
    SETUP_ITEM(CancelledError, "CancelledError");
    SETUP_ITEM(get_running_loop, "_get_running_loop");
    SETUP_ITEM(start_resume, "_start_resume");
    SETUP_ITEM(start_upstream, "_start_upstream");
    SETUP_ITEM(log_result, "_log_result");
    SETUP_ITEM(get_task_factory, "BaseEventLoop.get_task_factory");
    SETUP_ITEM(ns_init, "_UIModuleNamespace.__init__");
    SETUP_ITEM(is_enabled_for, "Logger.isEnabledFor");
    SETUP_ITEM(get_message, "HTTPError.get_message");
    SETUP_ITEM(log_from, "_log_from");
    if (tc_web_cookie_setup(ws, cfg) < 0) {
        return NULL;
    }
    if (!PyType_Check(hs->RequestHandler) || !PyType_Check(hs->Application) ||
        !PyType_Check(hs->HandlerDelegate) || ws->HTTPInputError == NULL ||
        !PyDict_Check(hs->web_globals)) {
        PyErr_SetString(PyExc_TypeError, "RequestHandler and Application must be classes, "
                                         "web_globals a dict");
        return NULL;
    }
    PyObject *origs = PyDict_GetItemString(cfg, "originals"); /* borrowed */
    if (origs == NULL || !PyDict_Check(origs)) {
        PyErr_SetString(PyExc_TypeError, "_web_handler_setup: originals must be a dict");
        return NULL;
    }
    out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
        const struct impl_entry *e = &impls[i];
        char key[64];
        static const char *const prefixes[] = {"", "Application.", "_HandlerDelegate.",
                                               "HTTPServerRequest."};
        snprintf(key, sizeof(key), "%s%s", prefixes[e->owner], e->name);
        PyObject *orig = PyDict_GetItemString(origs, key); /* borrowed */
        if (orig == NULL) {
            PyErr_Format(PyExc_KeyError, "_web_handler_setup: no original for %s", key);
            goto fail;
        }
        Py_XSETREF(hs->orig[e->hook], Py_NewRef(orig));
        Py_XSETREF(hs->name[e->hook], PyUnicode_InternFromString(e->name));
        if (hs->name[e->hook] == NULL) {
            goto fail;
        }
        if (e->impl != NULL) {
            PyObject *owner = e->owner == 1   ? hs->Application
                              : e->owner == 2 ? hs->HandlerDelegate
                                              : hs->RequestHandler;
            PyObject *d = hmethod_new(module, ws, owner, orig, e->impl);
            if (d == NULL) {
                goto fail;
            }
            Py_XSETREF(hs->ours[e->hook], d);
            if (PyDict_SetItemString(out, key, d) < 0) {
                goto fail;
            }
        }
    }
    hs->ready = 1;
    return out;
fail:
    Py_XDECREF(out);
    return NULL;
}

/* _web_handler_use(functions): {key: function} -> None.  The switch puts
 * a Python function with upstream's signature on the class (so the class
 * dict still holds functions, as introspection expects) that forwards to
 * our descriptor; C takes `functions[key]` found on a handler's type as
 * ours, so a C method calling another one still goes straight to C. */
static PyObject *
fn_handler_use(PyObject *module, PyObject *funcs)
{
    tc_web_state *ws = tc_get_state(module)->web;
    tc_web_handler_state *hs = &ws->h;
    if (!PyDict_Check(funcs)) {
        PyErr_SetString(PyExc_TypeError, "_web_handler_use: a dict");
        return NULL;
    }
    for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
        const struct impl_entry *e = &impls[i];
        char key[64];
        static const char *const prefixes[] = {"", "Application.", "_HandlerDelegate.",
                                               "HTTPServerRequest."};
        if (e->impl == NULL) {
            continue;
        }
        snprintf(key, sizeof(key), "%s%s", prefixes[e->owner], e->name);
        PyObject *f = PyDict_GetItemString(funcs, key); /* borrowed */
        if (f != NULL) {
            Py_XSETREF(hs->ours[e->hook], Py_NewRef(f));
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef handler_functions[] = {
    {"_web_handler_setup", fn_handler_setup, METH_O,
     "Set up the RequestHandler methods in C; returns them by name."},
    {"_web_handler_use", fn_handler_use, METH_O,
     "Which functions on the classes stand for the C methods (by name)."},
    {NULL, NULL, 0, NULL},
};

#define HINTERN(field, text)                                          \
    do {                                                              \
        if ((hs->field = PyUnicode_InternFromString(text)) == NULL) { \
            return -1;                                                \
        }                                                             \
    } while (0)

int
tc_web_handler_exec(PyObject *module, struct tc_state *st)
{
    tc_web_state *ws = st->web;
    tc_web_handler_state *hs = &ws->h;
    PyObject *t = PyType_FromModuleAndSpec(module, &hmethod_spec, NULL);
    if (t == NULL) {
        return -1;
    }
    hs->MethodType = (PyTypeObject *)t; /* the state owns this new reference */
    if (PyModule_AddObjectRef(module, "_HandlerMethod", t) < 0) {
        return -1;
    }
    HINTERN(s_headers, "_headers");
    HINTERN(s_status_code, "_status_code");
    HINTERN(s_reason, "_reason");
    HINTERN(s_write_buffer, "_write_buffer");
    HINTERN(s_finished, "_finished");
    HINTERN(s_auto_finish, "_auto_finish");
    HINTERN(s_headers_written, "_headers_written");
    HINTERN(s_prepared_future, "_prepared_future");
    HINTERN(s_application, "application");
    HINTERN(s_request, "request");
    HINTERN(s_ui, "ui");
    HINTERN(s_connection, "connection");
    HINTERN(s_set_close_callback, "set_close_callback");
    HINTERN(s_on_connection_close, "on_connection_close");
    HINTERN(s_ui_methods, "ui_methods");
    HINTERN(s_ui_modules, "ui_modules");
    HINTERN(s_ui_method, "_ui_method");
    HINTERN(s_tt_modules, "_tt_modules");
    HINTERN(s_modules, "modules");
    HINTERN(s_Server, "Server");
    HINTERN(s_Content_Type, "Content-Type");
    HINTERN(s_Date, "Date");
    HINTERN(s_text_html, "text/html; charset=UTF-8");
    HINTERN(s_Unknown, "Unknown");
    HINTERN(s_json_type, "application/json; charset=UTF-8");
    HINTERN(s_init, "__init__");
    HINTERN(s_append, "append");
    HINTERN(s_transforms, "_transforms");
    HINTERN(s_transform_first_chunk, "transform_first_chunk");
    HINTERN(s_transform_chunk, "transform_chunk");
    HINTERN(s_method, "method");
    HINTERN(s_HEAD, "HEAD");
    HINTERN(s_new_cookie, "_new_cookie");
    HINTERN(s_Set_Cookie, "Set-Cookie");
    HINTERN(s_write_headers, "write_headers");
    HINTERN(s_write, "write");
    HINTERN(s_set_result, "set_result");
    HINTERN(s_update, "update");
    HINTERN(s_Etag, "Etag");
    HINTERN(s_get, "get");
    HINTERN(s_headers_attr, "headers");
    HINTERN(s_If_None_Match, "If-None-Match");
    HINTERN(s_Content_Encoding, "Content-Encoding");
    HINTERN(s_Content_Language, "Content-Language");
    HINTERN(s_uri, "uri");
    HINTERN(s_remote_ip, "remote_ip");
    HINTERN(s_summary_fmt, "{} {} ({})");
    HINTERN(s_settings, "settings");
    HINTERN(s_log_function, "log_function");
    HINTERN(s_access_log, "access_log");
    HINTERN(s_Content_Length, "Content-Length");
    HINTERN(s_finish, "finish");
    HINTERN(s_SUPPORTED_METHODS, "SUPPORTED_METHODS");
    HINTERN(s_parse_body, "_parse_body");
    HINTERN(s_decode_argument, "decode_argument");
    HINTERN(s_path_args, "path_args");
    HINTERN(s_path_kwargs, "path_kwargs");
    HINTERN(s_stream_request_body, "stream_request_body");
    HINTERN(s_compiled_template_cache, "compiled_template_cache");
    HINTERN(s_static_hash_cache, "static_hash_cache");
    HINTERN(s_handler_class, "handler_class");
    HINTERN(s_execute, "_execute");
    HINTERN(s_handler_kwargs, "handler_kwargs");
    HINTERN(s_handler, "handler");
    HINTERN(s_transforms_attr, "transforms");
    HINTERN(s_call_soon, "call_soon");
    HINTERN(s_new, "__new__");
    HINTERN(s_strip, "strip");
    HINTERN(s_arguments, "arguments");
    HINTERN(s_query_arguments, "query_arguments");
    HINTERN(s_cookies, "cookies");
    HINTERN(s_value, "value");
    HINTERN(s_Location, "Location");
    HINTERN(s_body_arguments, "body_arguments");
    HINTERN(s_form_urlencoded, "application/x-www-form-urlencoded");
    HINTERN(s_multipart, "multipart/form-data");
    HINTERN(s_get_task_factory, "get_task_factory");
    HINTERN(s_task_factory, "_task_factory");
    HINTERN(s_disabled, "disabled");
    HINTERN(s_cache, "_cache");
    HINTERN(s_isEnabledFor, "isEnabledFor");
    HINTERN(s_chunks, "chunks");
    HINTERN(s_body, "body");
    if ((hs->empty_bytes = PyBytes_FromStringAndSize(NULL, 0)) == NULL ||
        (hs->bytes_join = PyObject_GetAttrString(hs->empty_bytes, "join")) == NULL ||
        (hs->int_200 = PyLong_FromLong(200)) == NULL ||
        (hs->int_304 = PyLong_FromLong(304)) == NULL ||
        (hs->get_head = Py_BuildValue("(ss)", "GET", "HEAD")) == NULL ||
        (hs->kw_include_footers = Py_BuildValue("(s)", "include_footers")) == NULL ||
        (hs->kw_name = Py_BuildValue("(s)", "name")) == NULL ||
        (hs->kw_strip = Py_BuildValue("(s)", "strip")) == NULL ||
        (hs->safe_methods = Py_BuildValue("(sss)", "HEAD", "OPTIONS", "GET")) == NULL ||
        (hs->int_400 = PyLong_FromLong(400)) == NULL ||
        (hs->int_405 = PyLong_FromLong(405)) == NULL ||
        (hs->lower_cache = PyDict_New()) == NULL) {
        return -1;
    }
    if (tc_web_error_exec(ws) < 0 || tc_web_execute_exec(module, ws) < 0 ||
        tc_web_cookie_exec(ws) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, handler_functions);
}

#define HFIELDS(X)                                                                          \
    X(MethodType) X(RequestHandler) X(ObjectDict) X(UIModuleNamespace) X(responses)         \
    X(server_value) X(Integral) X(datetime) X(format_timestamp) X(json_encode) X(date_value)     \
    X(Application) X(ResponseStartLine) X(Future) X(web_globals) X(Logger)           \
    X(bytes_join) X(empty_bytes) X(int_200) X(int_304) X(get_head) X(kw_include_footers)     \
    X(HandlerDelegate) X(HTTPError) X(CancelledError) X(get_running_loop) X(start_resume)     \
    X(start_upstream) X(run_execute) X(lower_cache) X(safe_methods) X(kw_name) \
    X(int_400) X(int_405) X(rsl_new)    \
    X(ArgDefaultMarker) X(ARG_DEFAULT) X(MissingArgumentError) X(kw_strip)                   \
    X(get_task_factory) X(ns_init) X(is_enabled_for) X(get_message) X(int_500)               \
    X(kw_reason) X(kw_exc_info) X(s_reason_attr) X(s_status_code_attr) X(s_get_message)      \
    X(s__log_message) X(s_Finish) X(s_args) X(log_from) X(ExecuteType) X(pending_tasks)        \
    X(log_result) X(s_create_task) X(s_add_done_callback)

int
tc_web_handler_traverse(tc_web_state *ws, visitproc visit, void *arg)
{
    tc_web_handler_state *hs = &ws->h;
#define V(f) Py_VISIT(hs->f);
    HFIELDS(V)
#undef V
    for (int i = 0; i < TC_H_COUNT; i++) {
        Py_VISIT(hs->ours[i]);
        Py_VISIT(hs->orig[i]);
    }
    return tc_web_cookie_traverse(ws, visit, arg);
}

void
tc_web_handler_clear(tc_web_state *ws)
{
    tc_web_handler_state *hs = &ws->h;
    hs->ready = 0;
    tc_web_cookie_clear(ws);
#define C(f) Py_CLEAR(hs->f);
    HFIELDS(C)
#undef C
    for (int i = 0; i < TC_H_COUNT; i++) {
        Py_CLEAR(hs->name[i]);
        Py_CLEAR(hs->ours[i]);
        Py_CLEAR(hs->orig[i]);
    }
    Py_CLEAR(hs->s_headers);
    Py_CLEAR(hs->s_status_code);
    Py_CLEAR(hs->s_reason);
    Py_CLEAR(hs->s_write_buffer);
    Py_CLEAR(hs->s_finished);
    Py_CLEAR(hs->s_auto_finish);
    Py_CLEAR(hs->s_headers_written);
    Py_CLEAR(hs->s_prepared_future);
    Py_CLEAR(hs->s_application);
    Py_CLEAR(hs->s_request);
    Py_CLEAR(hs->s_ui);
    Py_CLEAR(hs->s_connection);
    Py_CLEAR(hs->s_set_close_callback);
    Py_CLEAR(hs->s_on_connection_close);
    Py_CLEAR(hs->s_ui_methods);
    Py_CLEAR(hs->s_ui_modules);
    Py_CLEAR(hs->s_ui_method);
    Py_CLEAR(hs->s_tt_modules);
    Py_CLEAR(hs->s_modules);
    Py_CLEAR(hs->s_Server);
    Py_CLEAR(hs->s_Content_Type);
    Py_CLEAR(hs->s_Date);
    Py_CLEAR(hs->s_text_html);
    Py_CLEAR(hs->s_Unknown);
    Py_CLEAR(hs->s_json_type);
    Py_CLEAR(hs->s_init);
    Py_CLEAR(hs->s_append);
    PyObject **strs[] = {&hs->s_transforms, &hs->s_transform_first_chunk, &hs->s_transform_chunk,
                         &hs->s_method, &hs->s_HEAD, &hs->s_new_cookie, &hs->s_Set_Cookie,
                         &hs->s_write_headers, &hs->s_write, &hs->s_set_result, &hs->s_update,
                         &hs->s_Etag, &hs->s_get, &hs->s_headers_attr, &hs->s_If_None_Match,
                         &hs->s_Content_Encoding, &hs->s_Content_Language, &hs->s_uri,
                         &hs->s_remote_ip, &hs->s_summary_fmt, &hs->s_settings,
                         &hs->s_log_function, &hs->s_access_log, &hs->s_Content_Length,
                         &hs->s_finish, &hs->s_SUPPORTED_METHODS, &hs->s_parse_body,
                         &hs->s_decode_argument, &hs->s_path_args, &hs->s_path_kwargs,
                         &hs->s_stream_request_body, &hs->s_compiled_template_cache,
                         &hs->s_static_hash_cache, &hs->s_handler_class, &hs->s_execute,
                         &hs->s_handler_kwargs, &hs->s_handler, &hs->s_transforms_attr,
                         &hs->s_call_soon, &hs->s_new, &hs->s_body_arguments, &hs->s_form_urlencoded,
                         &hs->s_multipart, &hs->s_strip, &hs->s_arguments,
                         &hs->s_query_arguments, &hs->s_cookies, &hs->s_value,
                         &hs->s_Location, &hs->s_get_task_factory, &hs->s_task_factory,
                         &hs->s_disabled, &hs->s_cache, &hs->s_isEnabledFor, &hs->s_chunks,
                         &hs->s_body};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        Py_CLEAR(*strs[i]);
    }
}
