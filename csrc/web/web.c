/* web component: registration, setup and the switch (see web.h).
 *
 *   _core._web_headers_setup(Headers, UpstreamHeaders, HTTPInputError,
 *                            normalize, check_add, httputil_module)
 *       called by tornado_c/httputil.py when it is imported: the Python
 *       class over _core.HTTPHeaders and the upstream objects it needs.
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
    PyObject *parse = NULL, *func = NULL;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "_web_headers_setup() takes 6 arguments");
        return NULL;
    }
    if (!PyType_Check(args[0]) ||
        !PyType_IsSubtype((PyTypeObject *)args[0], ws->HeadersType) ||
        (PyTypeObject *)args[0] == ws->HeadersType) {
        PyErr_SetString(PyExc_TypeError, "HTTPHeaders must be a subclass of _core.HTTPHeaders");
        return NULL;
    }
    if (!PyType_Check(args[1]) || !PyType_Check(args[2]) || !PyCallable_Check(args[3]) ||
        !PyCallable_Check(args[4]) || !PyModule_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "_web_headers_setup(HTTPHeaders, UpstreamHeaders, "
                                         "HTTPInputError, normalize, check_add, module)");
        return NULL;
    }
    /* upstream's parse: the function under its classmethod */
    parse = PyObject_GetAttrString(args[1], "parse");
    func = parse ? PyObject_GetAttrString(parse, "__func__") : NULL;
    Py_XDECREF(parse);
    if (func == NULL) {
        return NULL;
    }
    Py_XSETREF(ws->up_parse, func);
    Py_XSETREF(ws->Headers, Py_NewRef(args[0]));
    Py_XSETREF(ws->UpstreamHeaders, Py_NewRef(args[1]));
    Py_XSETREF(ws->HTTPInputError, Py_NewRef(args[2]));
    Py_XSETREF(ws->normalize, Py_NewRef(args[3]));
    Py_XSETREF(ws->check_add, Py_NewRef(args[4]));
    Py_XSETREF(ws->httputil_module, Py_NewRef(args[5]));
    Py_RETURN_NONE;
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
    return tc_web_headers_exec(module, st);
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
    return 0;
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
}
