/* web component: registration, setup and the switch (see web.h).
 *
 *   _core._web_headers_setup(Headers, UpstreamHeaders, HTTPInputError,
 *                            normalize, check_add, httputil_module, up_parse)
 *       called by tornado_c/httputil.py when it is imported: the Python
 *       class over _core.HTTPHeaders and the upstream objects it needs.
 *   _core._web_headers_call(cls, *args, **kwargs)
 *       HTTPHeaders(...) while the switch is on (tornado_c.httputil's
 *       _SwitchedMeta.__call__, through _core._web_instancemethod()).
 *   _core._web_headers_activate(on)
 *       the `web` switch component: while on, the C HTTP server builds
 *       request headers as tornado_c.httputil.HTTPHeaders.
 *   _core._web_headers_active() -> bool
 */
#include "common.h"
#include "state.h"
#include "web/web.h"

static PyObject *
fn_headers_setup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_web_state *ws = tc_get_state(module)->web;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "_web_headers_setup() takes 7 arguments");
        return NULL;
    }
    if (!PyType_Check(args[0]) ||
        !PyType_IsSubtype((PyTypeObject *)args[0], ws->HeadersType) ||
        (PyTypeObject *)args[0] == ws->HeadersType) {
        PyErr_SetString(PyExc_TypeError, "HTTPHeaders must be a subclass of _core.HTTPHeaders");
        return NULL;
    }
    if (!PyType_Check(args[1]) || !PyType_Check(args[2]) || !PyCallable_Check(args[3]) ||
        !PyCallable_Check(args[4]) || !PyModule_Check(args[5]) || !PyCallable_Check(args[6])) {
        PyErr_SetString(PyExc_TypeError, "_web_headers_setup(HTTPHeaders, UpstreamHeaders, "
                                         "HTTPInputError, normalize, check_add, module, parse)");
        return NULL;
    }
    Py_XSETREF(ws->up_parse, Py_NewRef(args[6]));
    Py_XSETREF(ws->Headers, Py_NewRef(args[0]));
    Py_XSETREF(ws->UpstreamHeaders, Py_NewRef(args[1]));
    Py_XSETREF(ws->HTTPInputError, Py_NewRef(args[2]));
    Py_XSETREF(ws->normalize, Py_NewRef(args[3]));
    Py_XSETREF(ws->check_add, Py_NewRef(args[4]));
    Py_XSETREF(ws->httputil_module, Py_NewRef(args[5]));
    Py_RETURN_NONE;
}

/* HTTPHeaders(...) while the web switch is on: the __call__ of the
 * metaclass upstream's class wears meanwhile (tornado_c.httputil
 * ._SwitchedMeta; bound to the class through an instancemethod, see
 * _web_instancemethod).  Upstream's class itself gives
 * tornado_c.httputil.HTTPHeaders initialised with the same arguments; any
 * other class (a subclass made meanwhile, or once the switch is off) what
 * type.__call__ gives. */
static PyObject *
fn_headers_call(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_state *ws = tc_get_state(module)->web;
    PyObject *tuple = NULL, *kwargs = NULL, *r = NULL;
    if (nargs < 1 || !PyType_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_web_headers_call(cls, ...): cls must be a type");
        return NULL;
    }
    if (args[0] == ws->UpstreamHeaders && ws->Headers != NULL && ws->active) {
        return PyObject_Vectorcall(ws->Headers, args + 1, (size_t)(nargs - 1), kwnames);
    }
    tuple = PyTuple_New(nargs - 1);
    if (tuple == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 1; i < nargs; i++) {
        PyTuple_SET_ITEM(tuple, i - 1, Py_NewRef(args[i]));
    }
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        kwargs = PyDict_New();
        if (kwargs == NULL) {
            goto done;
        }
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(kwnames); j++) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, j), args[nargs + j]) < 0) {
                goto done;
            }
        }
    }
    r = PyType_Type.tp_call(args[0], tuple, kwargs);
done:
    Py_XDECREF(tuple);
    Py_XDECREF(kwargs);
    return r;
}

/* instancemethod(f): a callable that binds to the object it is looked up
 * on, as a Python function in a class does (a builtin does not). */
static PyObject *
fn_instancemethod(PyObject *Py_UNUSED(module), PyObject *func)
{
    return PyInstanceMethod_New(func);
}

static PyObject *
fn_headers_activate(PyObject *module, PyObject *arg)
{
    tc_web_state *ws = tc_get_state(module)->web;
    int on = PyObject_IsTrue(arg);
    if (on < 0) {
        return NULL;
    }
    if (on && ws->Headers == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tornado_c.httputil is not set up");
        return NULL;
    }
    ws->active = (char)on;
    Py_RETURN_NONE;
}

static PyObject *
fn_headers_active(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(tc_web_headers_active(tc_get_state(module)->web));
}

static PyMethodDef web_functions[] = {
    {"_web_headers_setup", (PyCFunction)(void (*)(void))fn_headers_setup, METH_FASTCALL, NULL},
    {"_web_headers_call", (PyCFunction)(void (*)(void))fn_headers_call,
     METH_FASTCALL | METH_KEYWORDS, "HTTPHeaders(...) while the web switch is on."},
    {"_web_instancemethod", fn_instancemethod, METH_O, NULL},
    {"_web_headers_activate", fn_headers_activate, METH_O, NULL},
    {"_web_headers_active", fn_headers_active, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

#define INTERN(field, text)                                       \
    do {                                                          \
        if ((ws->field = PyUnicode_InternFromString(text)) == NULL) \
            return -1;                                            \
    } while (0)

int
tc_web_exec(PyObject *module, struct tc_state *st)
{
    tc_web_state *ws = st->web;
    INTERN(s_chars_are_bytes, "_chars_are_bytes");
    INTERN(s_add, "add");
    INTERN(s_parse_line, "parse_line");
    INTERN(s_get_all, "get_all");
    INTERN(s_update, "update");
    INTERN(s_HTTPHeaders, "HTTPHeaders");
    INTERN(s_as_list, "_as_list");
    INTERN(s_combined_cache, "_combined_cache");
    INTERN(s_dict, "__dict__");
    INTERN(s_comma, ",");
    INTERN(s_empty, "");
    INTERN(s_colon_space, ": ");
    INTERN(s_newline, "\n");
    if (PyModule_AddFunctions(module, web_functions) < 0) {
        return -1;
    }
    if (tc_web_headers_exec(module, st) < 0) {
        return -1;
    }
    if (tc_web_route_exec(module, st) < 0) {
        return -1;
    }
    return tc_web_handler_exec(module, st);
}

int
tc_web_traverse(struct tc_state *st, visitproc visit, void *arg)
{
    tc_web_state *ws = st->web;
    Py_VISIT(ws->HeadersType);
    Py_VISIT(ws->KeyIterType);
    Py_VISIT(ws->AllIterType);
    Py_VISIT(ws->Headers);
    Py_VISIT(ws->UpstreamHeaders);
    Py_VISIT(ws->HTTPInputError);
    Py_VISIT(ws->normalize);
    Py_VISIT(ws->check_add);
    Py_VISIT(ws->up_parse);
    Py_VISIT(ws->httputil_module);
    int r = tc_web_route_traverse(ws, visit, arg);
    if (r != 0) {
        return r;
    }
    return tc_web_handler_traverse(ws, visit, arg);
}

void
tc_web_clear(struct tc_state *st)
{
    tc_web_state *ws = st->web;
    ws->active = 0;
    Py_CLEAR(ws->HeadersType);
    Py_CLEAR(ws->KeyIterType);
    Py_CLEAR(ws->AllIterType);
    Py_CLEAR(ws->Headers);
    Py_CLEAR(ws->UpstreamHeaders);
    Py_CLEAR(ws->HTTPInputError);
    Py_CLEAR(ws->normalize);
    Py_CLEAR(ws->check_add);
    Py_CLEAR(ws->up_parse);
    Py_CLEAR(ws->httputil_module);
    Py_CLEAR(ws->s_chars_are_bytes);
    Py_CLEAR(ws->s_add);
    Py_CLEAR(ws->s_parse_line);
    Py_CLEAR(ws->s_get_all);
    Py_CLEAR(ws->s_update);
    Py_CLEAR(ws->s_HTTPHeaders);
    Py_CLEAR(ws->s_as_list);
    Py_CLEAR(ws->s_combined_cache);
    Py_CLEAR(ws->s_dict);
    Py_CLEAR(ws->s_comma);
    Py_CLEAR(ws->s_empty);
    Py_CLEAR(ws->s_colon_space);
    Py_CLEAR(ws->s_newline);
    tc_web_route_clear(ws);
    tc_web_handler_clear(ws);
}
