/* tornado_c._core: one extension module, one folder per component.
 *
 * Multi-phase initialisation; every component registers its heap types and
 * functions from its tc_<component>_exec(), keeps its objects in its part of
 * the module state, and visits/clears them from traverse/clear below.
 */
#include "state.h"

#define TC_VERSION "0.1.0"

tc_state *
tc_state_from_type(PyTypeObject *type)
{
    /* Borrowed module reference; our heap types are always created with it. */
    PyObject *module = PyType_GetModule(type);
    if (module == NULL) {
        return NULL;
    }
    return tc_get_state(module);
}

tc_state *
tc_state_from_subtype(PyTypeObject *type, const char *what)
{
    for (PyTypeObject *t = type; t != NULL; t = t->tp_base) {
        if (PyType_HasFeature(t, Py_TPFLAGS_HEAPTYPE)) {
            PyObject *m = PyType_GetModule(t); /* borrowed */
            if (m != NULL) {
                return tc_get_state(m);
            }
            PyErr_Clear(); /* a Python subclass: no module of its own */
        }
    }
    PyErr_Format(PyExc_TypeError, "not a subclass of %s", what);
    return NULL;
}

PyObject *
tc_import_attr(const char *mod, const char *attr)
{
    PyObject *m = PyImport_ImportModule(mod), *r;
    if (m == NULL) {
        return NULL;
    }
    r = PyObject_GetAttrString(m, attr);
    Py_DECREF(m);
    return r;
}

int
tc_add_type(PyObject *module, PyType_Spec *spec, PyObject *base,
            PyTypeObject **out)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, base);
    if (type == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, strrchr(spec->name, '.') + 1, type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    *out = (PyTypeObject *)type; /* the state owns this new reference */
    return 0;
}

static int
core_exec(PyObject *module)
{
    tc_state *st = tc_get_state(module);
    if (PyModule_AddStringConstant(module, "__version__", TC_VERSION) < 0) {
        return -1;
    }
    if (tc_loop_exec(module, st) < 0 || tc_loop_tcp_exec(module, st) < 0 ||
        tc_stream_exec(module, st) < 0 ||
        tc_http_exec(module, st) < 0 || tc_ws_exec(module, st) < 0) {
        return -1;
    }
#ifdef TC_DEBUG
    if (PyModule_AddIntConstant(module, "DEBUG_BUILD", 1) < 0) {
        return -1;
    }
#else
    if (PyModule_AddIntConstant(module, "DEBUG_BUILD", 0) < 0) {
        return -1;
    }
#endif
    /* 1 in the test build (TORNADO_C_TEST=1): test-only entry points */
#ifdef TC_TEST_API
    if (PyModule_AddIntConstant(module, "TEST_API", 1) < 0) {
        return -1;
    }
#else
    if (PyModule_AddIntConstant(module, "TEST_API", 0) < 0) {
        return -1;
    }
#endif
    return 0;
}

static int
core_traverse(PyObject *module, visitproc visit, void *arg)
{
    tc_state *st = tc_get_state(module);
    int r;
    if ((r = tc_loop_traverse(st, visit, arg)) != 0 ||
        (r = tc_loop_tcp_traverse(st, visit, arg)) != 0 ||
        (r = tc_stream_traverse(st, visit, arg)) != 0 ||
        (r = tc_http_traverse(st, visit, arg)) != 0 ||
        (r = tc_ws_traverse(st, visit, arg)) != 0) {
        return r;
    }
    return 0;
}

static int
core_clear(PyObject *module)
{
    tc_state *st = tc_get_state(module);
    tc_ws_clear(st);
    tc_http_clear(st);
    tc_stream_clear(st);
    tc_loop_tcp_clear(st);
    tc_loop_clear(st);
    return 0;
}

static void
core_free(void *module)
{
    core_clear((PyObject *)module);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
    {0, NULL},
};

static struct PyModuleDef core_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tornado_c._core",
    .m_doc = "C core of tornado_c: libuv loop, C IOStream, llhttp HTTP server, WebSocket.",
    .m_size = sizeof(tc_state),
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&core_def);
}
