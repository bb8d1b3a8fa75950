/* _core.HTTPJudge: the strict-mode judge (judge.h) for a connection that
 * upstream's Python HTTP1Connection serves (a server with ssl_options, or
 * one whose loop is not a tornado_c loop: tornado_c/httpserver.py).  That
 * connection hands over the bytes its reads returned, in order, with its
 * own count of heads and messages; the verdict is the C server's
 * (tc_http_judge_verdict), so both paths refuse the same requests with the
 * same reason.  Holds no Python references (no GC). */
#include "state.h"
#include "http/http.h"
#include "http/judge.h"

#include <string.h>

typedef struct {
    PyObject_HEAD
    tc_http_judge judge;   /* no record buffer */
} judgeobj;

static PyObject *
judge_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "HTTPJudge() takes no arguments");
        return NULL;
    }
    judgeobj *self = (judgeobj *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    tc_http_judge_init(&self->judge, NULL);
    return (PyObject *)self;
}

static void
judge_dealloc(judgeobj *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* check(data, heads, messages, msg_complete) -> None or the reason */
static PyObject *
judge_check(judgeobj *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "check() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    unsigned long long heads = PyLong_AsUnsignedLongLong(args[1]);
    if (heads == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    unsigned long long messages = PyLong_AsUnsignedLongLong(args[2]);
    if (messages == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    int msg_complete = PyObject_IsTrue(args[3]);
    if (msg_complete < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (!self->judge.failed && view.len > 0) {
        (void)tc_http_judge_feed(&self->judge, (const char *)view.buf, (size_t)view.len);
    }
    PyBuffer_Release(&view);
    char why[256];
    const char *msg = tc_http_judge_verdict(&self->judge, (uint64_t)heads, (uint64_t)messages,
                                            msg_complete, why, sizeof(why));
    if (msg == NULL) {
        Py_RETURN_NONE;
    }
    return PyUnicode_DecodeLatin1(msg, (Py_ssize_t)strlen(msg), NULL);
}

static PyMethodDef judge_methods[] = {
    {"check", (PyCFunction)(void (*)(void))judge_check, METH_FASTCALL,
     "check(data, heads, messages, msg_complete) -> None, or why strict mode refuses.\n\n"
     "Feeds data (the bytes just read, in order) to llhttp, then judges as the C\n"
     "server does: heads / messages are the request heads Tornado's grammar has\n"
     "accepted and the messages it has completed; msg_complete: data ended one."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot judge_slots[] = {
    {Py_tp_new, judge_new},
    {Py_tp_dealloc, judge_dealloc},
    {Py_tp_methods, judge_methods},
    {Py_tp_doc, "llhttp as strict mode's judge of one connection's request bytes."},
    {0, NULL},
};

static PyType_Spec judge_spec = {
    .name = "tornado_c._core.HTTPJudge",
    .basicsize = sizeof(judgeobj),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = judge_slots,
};

int
tc_http_judge_exec(PyObject *module, struct tc_state *st)
{
    return tc_add_type(module, &judge_spec, NULL, &st->http->JudgeType);
}
