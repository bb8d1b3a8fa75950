/* asyncio.Handle and asyncio.TimerHandle for the C loop.
 *
 * A Handle holds a callback, its positional arguments and the contextvars
 * context it runs in.  cancel() drops the callback and arguments at once (so
 * cycles through them are broken), as asyncio does.  The repr and the
 * ordering of TimerHandles are added from tornado_c/loop.py.
 */
#include "internal.h"

#include <structmember.h>

tc_handle *
tc_handle_new(tc_loop *loop, PyTypeObject *type, PyObject *callback,
              PyObject *const *args, Py_ssize_t nargs, PyObject *context)
{
    tc_handle *h;
    PyObject *tuple = PyTuple_New(nargs);
    if (tuple == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(tuple, i, args[i]);
    }
    if (context == NULL) {
        context = PyContext_CopyCurrent();
        if (context == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
    }
    else {
        Py_INCREF(context);
    }
    if (type == loop->ls->Handle_type && loop->ls->nfree_handles > 0) {
        /* untracked memory of a dead Handle: make it a live object again */
        h = loop->ls->free_handles[--loop->ls->nfree_handles];
        PyObject_Init((PyObject *)h, type);
    }
    else {
        h = PyObject_GC_New(tc_handle, type);
    }
    if (h == NULL) {
        Py_DECREF(tuple);
        Py_DECREF(context);
        return NULL;
    }
    Py_INCREF(loop);
    h->loop = loop;
    Py_INCREF(callback);
    h->callback = callback;
    h->args = tuple;        /* stolen */
    h->context = context;   /* stolen */
    h->repr = NULL;
    h->source_tb = NULL;
    h->cancelled = 0;
    if (type != loop->ls->Handle_type) {
        tc_timer *t = (tc_timer *)h;
        t->when = 0.0;
        t->seq = 0;
        t->scheduled = 0;
    }
    /* not tracked yet: see tc_handle_release() */
    return h;
}

void
tc_handle_cancel(tc_handle *h)
{
    if (h->cancelled) {
        return;
    }
    if (Py_TYPE(h) == h->loop->ls->TimerHandle_type) {
        tc_timer *t = (tc_timer *)h;
        if (t->scheduled) {
            h->loop->timer_cancelled++;
        }
    }
    if (h->loop->debug && h->repr == NULL) {
        /* asyncio keeps the repr of a cancelled handle in debug mode */
        h->cancelled = 1;
        PyObject *r = PyObject_Repr((PyObject *)h);
        if (r == NULL) {
            PyErr_Clear();
        }
        h->repr = r;
    }
    h->cancelled = 1;
    PyObject *cb = h->callback, *args = h->args;
    h->callback = NULL;
    h->args = NULL;
    Py_XDECREF(cb);
    Py_XDECREF(args);
}

void
tc_loop_handle_cancel(PyObject *handle)
{
    tc_handle_cancel((tc_handle *)handle);
}

static int
is_propagating(PyObject *type)
{
    return PyErr_GivenExceptionMatches(type, PyExc_SystemExit) ||
           PyErr_GivenExceptionMatches(type, PyExc_KeyboardInterrupt);
}

static PyObject *
format_callback_source(tc_loop_state *ls, PyObject *cb, PyObject *args)
{
    if (ls->format_cb_source == NULL) {
        PyObject *mod = PyImport_ImportModule("asyncio.format_helpers");
        if (mod == NULL) {
            return NULL;
        }
        ls->format_cb_source = PyObject_GetAttrString(mod, "_format_callback_source");
        Py_DECREF(mod);
        if (ls->format_cb_source == NULL) {
            return NULL;
        }
    }
    return PyObject_CallFunctionObjArgs(ls->format_cb_source, cb,
                                        args ? args : Py_None, NULL);
}

int
tc_handle_run(tc_handle *h)
{
    tc_loop_state *ls = h->loop->ls;
    PyObject *cb = h->callback, *args = h->args, *ctx = h->context;
    PyObject *res = NULL, *t, *v, *tb, *src = NULL, *msg = NULL, *d = NULL;
    int rc = 0;

    if (cb == NULL) {
        return 0;
    }
    /* the callback may cancel its own handle: keep what we call alive */
    Py_INCREF(cb);
    Py_INCREF(args);
    Py_INCREF(ctx);
    if (PyContext_Enter(ctx) == 0) {
        res = PyObject_Vectorcall(cb, &PyTuple_GET_ITEM(args, 0),
                                  PyTuple_GET_SIZE(args), NULL);
        if (res == NULL) {
            PyErr_Fetch(&t, &v, &tb);
            if (PyContext_Exit(ctx) < 0) {
                PyErr_Clear();
            }
            PyErr_Restore(t, v, tb);
        }
        else if (PyContext_Exit(ctx) < 0) {
            Py_CLEAR(res);
        }
    }
    if (res != NULL) {
        Py_DECREF(res);
        goto done;
    }
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(v, tb);
    }
    if (is_propagating(t)) {
        PyErr_Restore(t, v, tb);
        rc = -1;
        goto done;
    }
    src = format_callback_source(ls, cb, args);
    if (src == NULL) {
        goto handler_failed;
    }
    msg = PyUnicode_FromFormat("Exception in callback %U", src);
    d = PyDict_New();
    if (msg == NULL || d == NULL ||
        PyDict_SetItem(d, ls->str_message, msg) < 0 ||
        PyDict_SetItem(d, ls->str_exception, v) < 0 ||
        PyDict_SetItem(d, ls->str_handle, (PyObject *)h) < 0) {
        goto handler_failed;
    }
    if (h->source_tb != NULL &&
        PyDict_SetItem(d, ls->str_source_traceback, h->source_tb) < 0) {
        goto handler_failed;
    }
    Py_CLEAR(t);
    Py_CLEAR(v);
    Py_CLEAR(tb);
    res = PyObject_CallMethodOneArg((PyObject *)h->loop,
                                    ls->str_call_exception_handler, d);
    if (res == NULL) {
        rc = -1; /* call_exception_handler only lets SystemExit/KeyboardInterrupt out */
    }
    Py_XDECREF(res);
    goto done;

handler_failed:
    /* could not even build the context: do not lose the original error */
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable((PyObject *)h);
    }
    PyErr_Restore(t, v, tb);
    PyErr_WriteUnraisable((PyObject *)h);
done:
    Py_XDECREF(src);
    Py_XDECREF(msg);
    Py_XDECREF(d);
    Py_DECREF(cb);
    Py_DECREF(args);
    Py_DECREF(ctx);
    return rc;
}

/* ---- Python-visible methods ---- */

static PyObject *
handle_cancel(tc_handle *self, PyObject *Py_UNUSED(ignored))
{
    tc_handle_cancel(self);
    Py_RETURN_NONE;
}

static PyObject *
handle_cancelled(tc_handle *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->cancelled);
}

static PyObject *
handle__run(tc_handle *self, PyObject *Py_UNUSED(ignored))
{
    if (tc_handle_run(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
handle_get_context(tc_handle *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self->context);
    return self->context;
}

static PyObject *
timer_when(tc_timer *self, PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(self->when);
}

static PyObject *
handle_get_callback(tc_handle *self, void *Py_UNUSED(closure))
{
    PyObject *r = self->callback ? self->callback : Py_None;
    Py_INCREF(r);
    return r;
}

static PyObject *
handle_get_args(tc_handle *self, void *Py_UNUSED(closure))
{
    PyObject *r = self->args ? self->args : Py_None;
    Py_INCREF(r);
    return r;
}

static PyObject *
handle_get_cancelled(tc_handle *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->cancelled);
}

static PyObject *
handle_get_loop(tc_handle *self, void *Py_UNUSED(closure))
{
    Py_INCREF(self->loop);
    return (PyObject *)self->loop;
}

static PyObject *
handle_get_repr(tc_handle *self, void *Py_UNUSED(closure))
{
    PyObject *r = self->repr ? self->repr : Py_None;
    Py_INCREF(r);
    return r;
}

static PyObject *
handle_get_source_tb(tc_handle *self, void *Py_UNUSED(closure))
{
    PyObject *r = self->source_tb ? self->source_tb : Py_None;
    Py_INCREF(r);
    return r;
}

static int
handle_set_source_tb(tc_handle *self, PyObject *value, void *Py_UNUSED(closure))
{
    PyObject *old = self->source_tb;
    if (value == Py_None) {
        value = NULL;
    }
    Py_XINCREF(value);
    self->source_tb = value;
    Py_XDECREF(old);
    return 0;
}

static PyObject *
timer_get_when(tc_timer *self, void *Py_UNUSED(closure))
{
    return PyFloat_FromDouble(self->when);
}

static PyObject *
timer_get_scheduled(tc_timer *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->scheduled);
}

int
tc_handle_traverse(tc_handle *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->loop);
    Py_VISIT(self->callback);
    Py_VISIT(self->args);
    Py_VISIT(self->context);
    Py_VISIT(self->repr);
    Py_VISIT(self->source_tb);
    return 0;
}

static int
handle_clear(tc_handle *self)
{
    Py_CLEAR(self->callback);
    Py_CLEAR(self->args);
    Py_CLEAR(self->context);
    Py_CLEAR(self->repr);
    Py_CLEAR(self->source_tb);
    Py_CLEAR(self->loop);
    return 0;
}

static void
handle_dealloc(tc_handle *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject *mod = ((PyHeapTypeObject *)tp)->ht_module; /* borrowed or NULL */
    tc_loop_state *ls = NULL;
    /* Only an exact Handle may go to the freelist, which is in the module
     * state.  The state is reached through the module that `tp` holds, never
     * through self->loop: when the cycle collector clears a heap type it
     * drops the type's module (ht_module = NULL), and at interpreter shutdown
     * the module -- and its state -- can then be freed while Handles and
     * their loop still live (loop->ls dangles).  While `tp` holds its module
     * the state is valid until Py_DECREF(tp) below, even when handle_clear()
     * drops the last reference to the loop.  For any other type, or once the
     * type let go of its module, the state is not touched. */
    if (mod != NULL) {
        tc_state *st = tc_get_state(mod);
        ls = st != NULL ? st->loop : NULL;
        if (ls != NULL && tp != ls->Handle_type) {
            ls = NULL;
        }
    }
    PyObject_GC_UnTrack(self);
    handle_clear(self);
    if (ls != NULL &&
        ls->nfree_handles < (int)(sizeof(ls->free_handles) / sizeof(ls->free_handles[0]))) {
        ls->free_handles[ls->nfree_handles++] = self;
    }
    else {
        PyObject_GC_Del(self);
    }
    Py_DECREF(tp);
}

void
tc_handle_freelist_clear(tc_state *st)
{
    while (st->loop->nfree_handles > 0) {
        PyObject_GC_Del(st->loop->free_handles[--st->loop->nfree_handles]);
    }
}

static PyMethodDef handle_methods[] = {
    {"cancel", (PyCFunction)handle_cancel, METH_NOARGS, "Cancel the call."},
    {"cancelled", (PyCFunction)handle_cancelled, METH_NOARGS, "True if cancelled."},
    {"_run", (PyCFunction)handle__run, METH_NOARGS, "Run the callback now."},
    {"get_context", (PyCFunction)handle_get_context, METH_NOARGS, "The callback's context."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef handle_getset[] = {
    {"_callback", (getter)handle_get_callback, NULL, NULL, NULL},
    {"_args", (getter)handle_get_args, NULL, NULL, NULL},
    {"_cancelled", (getter)handle_get_cancelled, NULL, NULL, NULL},
    {"_loop", (getter)handle_get_loop, NULL, NULL, NULL},
    {"_repr", (getter)handle_get_repr, NULL, NULL, NULL},
    {"_source_traceback", (getter)handle_get_source_tb, (setter)handle_set_source_tb, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot handle_slots[] = {
    {Py_tp_doc, "A callback scheduled on the tornado_c loop (asyncio.Handle)."},
    {Py_tp_methods, handle_methods},
    {Py_tp_getset, handle_getset},
    {Py_tp_traverse, tc_handle_traverse},
    {Py_tp_clear, handle_clear},
    {Py_tp_dealloc, handle_dealloc},
    {0, NULL},
};

static PyType_Spec handle_spec = {
    .name = "tornado_c._core.Handle",
    .basicsize = sizeof(tc_handle),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = handle_slots,
};

static PyMethodDef timer_methods[] = {
    {"when", (PyCFunction)timer_when, METH_NOARGS, "The absolute time (loop.time()) the call is due."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef timer_getset[] = {
    {"_when", (getter)timer_get_when, NULL, NULL, NULL},
    {"_scheduled", (getter)timer_get_scheduled, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot timer_slots[] = {
    {Py_tp_doc, "A callback scheduled at a time on the tornado_c loop (asyncio.TimerHandle)."},
    {Py_tp_methods, timer_methods},
    {Py_tp_getset, timer_getset},
    {Py_tp_traverse, tc_handle_traverse},
    {Py_tp_clear, handle_clear},
    {Py_tp_dealloc, handle_dealloc},
    {0, NULL},
};

static PyType_Spec timer_spec = {
    .name = "tornado_c._core.TimerHandle",
    .basicsize = sizeof(tc_timer),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = timer_slots,
};

int
tc_handle_types_init(PyObject *module, tc_state *st)
{
    if (tc_add_type(module, &handle_spec, NULL, &st->loop->Handle_type) < 0) {
        return -1;
    }
    return tc_add_type(module, &timer_spec, (PyObject *)st->loop->Handle_type,
                       &st->loop->TimerHandle_type);
}
