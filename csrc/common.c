/* Helpers every component may use; the contract is in common.h. */
#include "common.h"

#include <string.h>

struct tc_state *
tc_state_from_type(PyTypeObject *type)
{
    /* Borrowed module reference; our heap types are always created with it. */
    PyObject *module = PyType_GetModule(type);
    if (module == NULL) {
        return NULL;
    }
    return tc_get_state(module);
}

PyObject *
tc_module_from_subtype(PyTypeObject *type, const char *what)
{
    for (PyTypeObject *t = type; t != NULL; t = t->tp_base) {
        if (PyType_HasFeature(t, Py_TPFLAGS_HEAPTYPE)) {
            PyObject *m = PyType_GetModule(t); /* borrowed */
            if (m != NULL) {
                return m;
            }
            PyErr_Clear(); /* a Python subclass: no module of its own */
        }
    }
    PyErr_Format(PyExc_TypeError, "not a subclass of %s", what);
    return NULL;
}

struct tc_state *
tc_state_from_subtype(PyTypeObject *type, const char *what)
{
    PyObject *m = tc_module_from_subtype(type, what); /* borrowed */
    return m != NULL ? tc_get_state(m) : NULL;
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

int
tc_intern_all(void *state, const tc_intern_spec *specs)
{
    for (; specs->text != NULL; specs++) {
        PyObject **slot = (PyObject **)((char *)state + specs->offset);
        PyObject *s = PyUnicode_InternFromString(specs->text);
        if (s == NULL) {
            return -1;
        }
        Py_XSETREF(*slot, s);
    }
    return 0;
}

void
tc_clear_all(void *state, const tc_intern_spec *specs)
{
    for (; specs->text != NULL; specs++) {
        Py_CLEAR(*(PyObject **)((char *)state + specs->offset));
    }
}
