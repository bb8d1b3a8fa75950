/* @gen.coroutine in C: the wrapper a decorated function becomes and the
 * Runner that drives its generator (tornado 6.6.1's tornado/gen.py
 * `coroutine` and `Runner`).
 *
 *   _core._GenCoroutine(func)  the wrapper (tornado_c/gen.py's coroutine()
 *       makes one and gives it functools.wraps metadata, __wrapped__ and
 *       __tornado_coroutine__ in its __dict__).  A method descriptor: bound
 *       like a function, called without a bound-method object.
 *   _core._gen_setup(...)      the upstream objects the runner uses
 *       (tornado_c/gen.py, when it is imported).
 *
 * What a call does, step for step as upstream's wrapper: a new
 * tornado.concurrent.Future; a copy of the current contextvars context;
 * the function called in that context; Return/StopIteration from it give
 * the result, CancelledError cancels the future, another Exception is set
 * on it, a BaseException propagates.  A generator (exactly a generator, or
 * an instance of collections.abc.Generator) is advanced once, synchronously,
 * in the same context; if it yields, a Runner takes over, and the result
 * future keeps a done callback that holds the runner (upstream's
 * `lambda _: runner`), so a runner lives as long as its future.
 *
 * The Runner (upstream's Runner.__init__/run/handle_yield): IOLoop.current()
 * at creation; each step runs in the context of the call; a yielded value
 * goes through tornado.gen.convert_yielded as the module holds it now, or,
 * while that is still upstream's singledispatch function with nothing
 * registered on it, None/moment/_null_future/an exact asyncio.Future are
 * taken as convert_yielded would return them without calling it (anything
 * else -- lists, dicts, awaitables, concurrent futures, subclasses -- is
 * passed to it).  BadYieldError becomes a failed Future; `moment` goes
 * through io_loop.add_callback; a pending future through
 * io_loop.add_future (both looked up on the IOLoop, so subclasses are
 * honoured).  A done future's result() is sent into the generator (through
 * PyIter_Send for an exact generator, gen.send() otherwise); its Exception
 * or CancelledError is thrown in with gen.throw(exc), outside any
 * exception handler, as upstream does.  The generator's end settles the
 * result future as upstream's except clauses do; a BaseException from it
 * propagates and leaves the runner unfinished, as upstream's.
 *
 * Differences from upstream (also in README): there is no Python frame of
 * gen.py in tracebacks (upstream's wrapper/run frames); the result future's
 * asyncio debug _source_traceback is not trimmed (there are no gen.py frames
 * to trim); the wrapper is not a Python function (inspect.isfunction is
 * False; inspect.signature follows __wrapped__ as for upstream's); the
 * runner is _core._GenRunner, not tornado.gen.Runner; future_set_exc_info,
 * _value_from_stopiteration, IOLoop are those of tornado.gen at setup, not
 * looked up in its globals per call (convert_yielded is).
 */
#include "common.h"
#include "state.h"
#include "web/web.h"

#include <structmember.h>

/* ------------------------------------------------------------- helpers */

/* New reference to the raised exception, normalized, with its traceback
 * attached as an `except` clause would see it; the indicator is cleared. */
static PyObject *
fetch_exc(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v != NULL && tb != NULL) {
        PyException_SetTraceback(v, tb);
    }
    Py_XDECREF(t);
    Py_XDECREF(tb);
    return v;
#endif
}

/* Raise `v` again (stolen). */
static void
restore_exc(PyObject *v)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(v);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(v)), v, PyException_GetTraceback(v));
#endif
}

enum { K_RETURN, K_STOP, K_CANCEL, K_EXC, K_OTHER };

/* Which of upstream's except clauses catches `exc` (borrowed). */
static int
classify(tc_web_gen_state *g, PyObject *exc)
{
    if (PyErr_GivenExceptionMatches(exc, PyExc_StopIteration) ||
        PyErr_GivenExceptionMatches(exc, g->Return)) {
        return K_STOP;
    }
    if (PyErr_GivenExceptionMatches(exc, g->CancelledError)) {
        return K_CANCEL;
    }
    if (PyErr_GivenExceptionMatches(exc, PyExc_Exception)) {
        return K_EXC;
    }
    return K_OTHER;
}

/* future_set_result_unless_cancelled(future, value); 0 or -1. */
static int
set_result_unless_cancelled(tc_web_gen_state *g, PyObject *future, PyObject *value)
{
    PyObject *c = PyObject_CallMethodNoArgs(future, g->s_cancelled);
    if (c == NULL) {
        return -1;
    }
    int cancelled = PyObject_IsTrue(c);
    Py_DECREF(c);
    if (cancelled < 0) {
        return -1;
    }
    if (!cancelled) {
        PyObject *r = PyObject_CallMethodOneArg(future, g->s_set_result, value);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
    }
    return 0;
}

/* Settle `future` as the except clause of `kind` does: K_RETURN with
 * `retval`, the others with `exc` (both borrowed).  0 or -1. */
static int
settle(tc_web_gen_state *g, PyObject *future, int kind, PyObject *retval, PyObject *exc)
{
    PyObject *r = NULL;
    switch (kind) {
    case K_RETURN:
        return set_result_unless_cancelled(g, future, retval);
    case K_STOP: {
        PyObject *v = PyObject_CallOneArg(g->value_from_stop, exc);
        if (v == NULL) {
            return -1;
        }
        int rc = set_result_unless_cancelled(g, future, v);
        Py_DECREF(v);
        return rc;
    }
    case K_CANCEL:
        r = PyObject_CallMethodNoArgs(future, g->s_cancel);
        break;
    default: /* K_EXC: future_set_exc_info(future, sys.exc_info()) */
        r = PyObject_CallFunctionObjArgs(g->set_exc, future, exc, NULL);
        break;
    }
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* A step of the generator ended without yielding: the kind of its end and,
 * in *exc, the exception (new reference, NULL for K_RETURN).  K_OTHER
 * leaves the exception raised. */
static int
step_end(tc_web_gen_state *g, PyObject **exc)
{
    *exc = NULL;
    if (!PyErr_Occurred()) {
        return K_RETURN; /* tp_iternext's bare end: StopIteration() */
    }
    PyObject *e = fetch_exc();
    int kind = classify(g, e);
    if (kind == K_OTHER) {
        restore_exc(e);
        return K_OTHER;
    }
    *exc = e;
    return kind;
}

static int
is_true_call(PyObject *obj, PyObject *name)
{
    PyObject *r = PyObject_CallMethodNoArgs(obj, name);
    if (r == NULL) {
        return -1;
    }
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

/* ------------------------------------------------------------- Runner */

typedef struct {
    PyObject_HEAD
    tc_web_gen_state *g;           /* borrowed: `module`'s state */
    PyObject *module;              /* strong: keeps the state alive */
    PyObject *ctx;                 /* strong: the call's contextvars.Context */
    PyObject *gen;                 /* strong */
    PyObject *result_future;       /* strong; None once finished */
    PyObject *future;              /* strong: the pending one, None or _null_future */
    PyObject *io_loop;             /* strong */
    PyObject *wake;                /* strong or NULL: bound _wake, made once */
    char running, finished, exact_gen;
} grunner;

static int runner_run(grunner *r);

static PyObject *
runner_run_in_ctx(grunner *r)
{
    if (PyContext_Enter(r->ctx) < 0) {
        return NULL;
    }
    int rc = runner_run(r);
    if (PyContext_Exit(r->ctx) < 0) {
        return NULL;
    }
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* inner(f) of upstream's handle_yield: ctx_run(self.run). */
static PyObject *
runner_wake(PyObject *self, PyObject *Py_UNUSED(f))
{
    return runner_run_in_ctx((grunner *)self);
}

/* add_callback(self.ctx_run, self.run) for `moment`. */
static PyObject *
runner_step(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return runner_run_in_ctx((grunner *)self);
}

/* The result future's done callback: holds the runner (lambda _: runner). */
static PyObject *
runner_keep(PyObject *self, PyObject *Py_UNUSED(f))
{
    return Py_NewRef(self);
}

static PyMethodDef runner_wake_def = {"_wake", runner_wake, METH_O, NULL};
static PyMethodDef runner_step_def = {"_step", runner_step, METH_NOARGS, NULL};
static PyMethodDef runner_keep_def = {"_keep", runner_keep, METH_O, NULL};

/* upstream's handle_yield: 1 when the new future is done (run on), 0 when
 * the runner waits, -1 with an exception set. */
static int
runner_handle_yield(grunner *r, PyObject *yielded)
{
    tc_web_gen_state *g = r->g;
    PyObject *fut = NULL, *cb = NULL, *res = NULL;
    /* borrowed from tornado.gen's dict */
    PyObject *cy = PyDict_GetItemWithError(g->gen_globals, g->s_convert_yielded);
    if (cy == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_NameError, "name 'convert_yielded' is not defined");
        }
        return -1;
    }
    int plain = 0;
    if (cy == g->convert_yielded) {
        Py_ssize_t n = PyObject_Length(g->cy_registry);
        if (n < 0) {
            return -1;
        }
        plain = n == 1;
    }
    if (plain && (yielded == Py_None || yielded == g->moment)) {
        fut = Py_NewRef(g->moment);
    }
    else if (plain && (yielded == g->null_future ||
                       (PyObject *)Py_TYPE(yielded) == g->Future)) {
        fut = Py_NewRef(yielded);
    }
    else {
        fut = PyObject_CallOneArg(cy, yielded);
        if (fut == NULL) {
            if (!PyErr_ExceptionMatches(g->BadYieldError)) {
                return -1;
            }
            PyObject *exc = fetch_exc();
            fut = PyObject_CallNoArgs(g->Future);
            if (fut == NULL) {
                Py_DECREF(exc);
                return -1;
            }
            res = PyObject_CallFunctionObjArgs(g->set_exc, fut, exc, NULL);
            Py_DECREF(exc);
            if (res == NULL) {
                Py_DECREF(fut);
                return -1;
            }
            Py_DECREF(res);
        }
    }
    Py_SETREF(r->future, fut); /* fut stolen; r->future keeps it alive */
    if (fut == g->moment) {
        if (r->io_loop == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "gen runner without an IOLoop");
            return -1;
        }
        cb = PyCFunction_New(&runner_step_def, (PyObject *)r);
        if (cb == NULL) {
            return -1;
        }
        res = PyObject_CallMethodOneArg(r->io_loop, g->s_add_callback, cb);
        Py_DECREF(cb);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
        return 0;
    }
    if (fut == Py_None) {
        PyErr_SetString(PyExc_Exception, "no pending future");
        return -1;
    }
    Py_INCREF(fut);
    int done = is_true_call(fut, g->s_done);
    if (done != 0) {
        Py_DECREF(fut);
        return done; /* 1, or -1 */
    }
    if (r->wake == NULL) {
        r->wake = PyCFunction_New(&runner_wake_def, (PyObject *)r);
        if (r->wake == NULL) {
            Py_DECREF(fut);
            return -1;
        }
    }
    PyObject *args[3] = {r->io_loop, fut, r->wake};
    res = PyObject_VectorcallMethod(g->s_add_future, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                    NULL);
    Py_DECREF(fut);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

/* upstream's Runner.run (called in the context): 0, or -1 with an
 * exception set. */
static int
runner_run(grunner *r)
{
    tc_web_gen_state *g = r->g;
    if (r->running || r->finished) {
        return 0;
    }
    int rc = -1;
    r->running = 1;
    Py_INCREF(r); /* the generator may drop the last other reference */
    for (;;) {
        PyObject *future = r->future;
        if (future == Py_None) {
            PyErr_SetString(PyExc_Exception, "No pending future");
            goto out;
        }
        Py_INCREF(future);
        int done = is_true_call(future, g->s_done);
        if (done <= 0) {
            Py_DECREF(future);
            rc = done;
            goto out;
        }
        Py_SETREF(r->future, Py_NewRef(Py_None));
        PyObject *value = PyObject_CallMethodNoArgs(future, g->s_result);
        Py_DECREF(future);
        PyObject *exc = NULL, *yielded = NULL, *retval = NULL;
        if (value == NULL) {
            exc = fetch_exc();
            if (!PyErr_GivenExceptionMatches(exc, PyExc_Exception) &&
                !PyErr_GivenExceptionMatches(exc, g->CancelledError)) {
                restore_exc(exc);
                goto out;
            }
            yielded = PyObject_CallMethodOneArg(r->gen, g->s_throw, exc);
            Py_DECREF(exc);
        }
        else if (r->exact_gen) {
            PySendResult s = PyIter_Send(r->gen, value, &yielded);
            if (s == PYGEN_RETURN) {
                retval = yielded;
                yielded = NULL;
            }
            Py_DECREF(value);
        }
        else {
            yielded = PyObject_CallMethodOneArg(r->gen, g->s_send, value);
            Py_DECREF(value);
        }
        if (yielded == NULL) {
            int kind = K_RETURN;
            if (retval == NULL) {
                kind = step_end(g, &exc);
                if (kind == K_OTHER) {
                    goto out;
                }
            }
            r->finished = 1;
            Py_SETREF(r->future, Py_NewRef(g->null_future));
            int s = settle(g, r->result_future, kind, retval, exc);
            Py_XDECREF(retval);
            Py_XDECREF(exc);
            if (s < 0) {
                goto out;
            }
            Py_SETREF(r->result_future, Py_NewRef(Py_None));
            Py_CLEAR(r->wake); /* pending callbacks hold their own reference */
            rc = 0;
            goto out;
        }
        int h = runner_handle_yield(r, yielded);
        Py_DECREF(yielded);
        if (h <= 0) {
            rc = h;
            goto out;
        }
    }
out:
    r->running = 0;
    Py_DECREF(r);
    return rc;
}

static int
runner_traverse(PyObject *op, visitproc visit, void *arg)
{
    grunner *r = (grunner *)op;
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(r->module);
    Py_VISIT(r->ctx);
    Py_VISIT(r->gen);
    Py_VISIT(r->result_future);
    Py_VISIT(r->future);
    Py_VISIT(r->io_loop);
    Py_VISIT(r->wake);
    return 0;
}

static int
runner_clear(PyObject *op)
{
    grunner *r = (grunner *)op;
    Py_CLEAR(r->ctx);
    Py_CLEAR(r->gen);
    Py_CLEAR(r->result_future);
    Py_CLEAR(r->future);
    Py_CLEAR(r->io_loop);
    Py_CLEAR(r->wake);
    Py_CLEAR(r->module);
    return 0;
}

static void
runner_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    runner_clear(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyType_Slot runner_slots[] = {
    {Py_tp_traverse, runner_traverse},
    {Py_tp_clear, runner_clear},
    {Py_tp_dealloc, runner_dealloc},
    {0, NULL},
};

static PyType_Spec runner_spec = {
    .name = "tornado_c._core._GenRunner",
    .basicsize = sizeof(grunner),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = runner_slots,
};

/* A new runner (upstream's Runner(ctx_run, gen, future, first_yielded)):
 * handles the first yielded value and runs on while futures are done.
 * Arguments borrowed. */
static PyObject *
runner_new(PyObject *module, tc_web_gen_state *g, PyObject *ctx, PyObject *gen,
           PyObject *future, PyObject *yielded)
{
    grunner *r = PyObject_GC_New(grunner, g->RunnerType);
    if (r == NULL) {
        return NULL;
    }
    r->g = g;
    r->module = Py_NewRef(module);
    r->ctx = Py_NewRef(ctx);
    r->gen = Py_NewRef(gen);
    r->result_future = Py_NewRef(future);
    r->future = Py_NewRef(g->null_future);
    r->io_loop = NULL;
    r->wake = NULL;
    r->running = r->finished = 0;
    r->exact_gen = PyGen_CheckExact(gen);
    PyObject_GC_Track((PyObject *)r);
    r->io_loop = PyObject_CallMethodNoArgs(g->IOLoop, g->s_current);
    if (r->io_loop == NULL) {
        goto fail;
    }
    if (PyContext_Enter(ctx) < 0) {
        goto fail;
    }
    int h = runner_handle_yield(r, yielded);
    if (PyContext_Exit(ctx) < 0 || h < 0) {
        goto fail;
    }
    if (h > 0) {
        PyObject *ok = runner_run_in_ctx(r);
        if (ok == NULL) {
            goto fail;
        }
        Py_DECREF(ok);
    }
    return (PyObject *)r;
fail:
    Py_DECREF(r);
    return NULL;
}

/* ---------------------------------------------------------- the wrapper */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    tc_web_gen_state *g;           /* borrowed: `module`'s state */
    PyObject *module;              /* strong */
    PyObject *func;                /* strong: the decorated function */
    PyObject *dict;                /* strong or NULL: __dict__ */
    PyObject *weakreflist;
} gcoro;

/* The first step of a generator: next(gen).  The yielded value (new
 * reference), or NULL with *retval (new reference) when it returned at
 * once, or NULL and NULL with an exception set (or none: a bare end). */
static PyObject *
first_next(PyObject *gen, PyObject **retval)
{
    PyObject *out = NULL;
    *retval = NULL;
    if (PyGen_CheckExact(gen)) {
        PySendResult s = PyIter_Send(gen, Py_None, &out);
        if (s == PYGEN_RETURN) {
            *retval = out;
            return NULL;
        }
        return out; /* NULL on PYGEN_ERROR */
    }
    iternextfunc next = Py_TYPE(gen)->tp_iternext;
    if (next == NULL) {
        PyErr_Format(PyExc_TypeError, "'%.200s' object is not an iterator",
                     Py_TYPE(gen)->tp_name);
        return NULL;
    }
    return next(gen);
}

static PyObject *
gcoro_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    gcoro *c = (gcoro *)op;
    tc_web_gen_state *g = c->g;
    PyObject *future = NULL, *ctx = NULL, *result = NULL, *yielded = NULL, *retval = NULL,
             *exc = NULL, *runner = NULL, *keep = NULL, *r = NULL;
    int kind;
    if (g->Future == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tornado_c.gen is not set up");
        return NULL;
    }
    future = PyObject_CallNoArgs(g->Future);
    if (future == NULL) {
        goto fail;
    }
    ctx = PyContext_CopyCurrent();
    if (ctx == NULL || PyContext_Enter(ctx) < 0) {
        goto fail;
    }
    result = PyObject_Vectorcall(c->func, args, nargsf, kwnames);
    if (PyContext_Exit(ctx) < 0) {
        goto fail;
    }
    if (result == NULL) {
        kind = step_end(g, &exc);
        goto settle;
    }
    int is_gen = PyGen_CheckExact(result);
    if (!is_gen && (is_gen = PyObject_IsInstance(result, g->Generator)) < 0) {
        goto fail;
    }
    if (!is_gen) {
        retval = result;
        result = NULL;
        kind = K_RETURN;
        goto settle;
    }
    if (PyContext_Enter(ctx) < 0) {
        goto fail;
    }
    yielded = first_next(result, &retval);
    if (PyContext_Exit(ctx) < 0) {
        goto fail;
    }
    if (yielded == NULL) {
        kind = retval != NULL ? K_RETURN : step_end(g, &exc);
        if (retval == NULL && kind == K_RETURN) {
            retval = Py_NewRef(Py_None);
        }
        goto settle;
    }
    runner = runner_new(c->module, g, ctx, result, future, yielded);
    if (runner == NULL) {
        goto fail;
    }
    keep = PyCFunction_New(&runner_keep_def, runner);
    if (keep == NULL) {
        goto fail;
    }
    r = PyObject_CallMethodOneArg(future, g->s_add_done_callback, keep);
    if (r == NULL) {
        goto fail;
    }
    goto done;
settle:
    if (kind == K_OTHER || settle(g, future, kind, retval, exc) < 0) {
        goto fail;
    }
done:
    Py_XDECREF(ctx);
    Py_XDECREF(result);
    Py_XDECREF(yielded);
    Py_XDECREF(retval);
    Py_XDECREF(exc);
    Py_XDECREF(runner);
    Py_XDECREF(keep);
    Py_XDECREF(r);
    return future;
fail:
    Py_CLEAR(future);
    goto done;
}

static PyObject *
gcoro_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *func;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "_GenCoroutine() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "_GenCoroutine", 1, 1, &func)) {
        return NULL;
    }
    if (!PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError, "_GenCoroutine(func): func must be callable");
        return NULL;
    }
    struct tc_state *st = tc_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    gcoro *c = (gcoro *)type->tp_alloc(type, 0);
    if (c == NULL) {
        return NULL;
    }
    c->vectorcall = gcoro_vectorcall;
    c->g = &st->web->g;
    c->module = PyType_GetModule(type);
    Py_XINCREF(c->module);
    c->func = Py_NewRef(func);
    c->dict = NULL;
    c->weakreflist = NULL;
    if (c->module == NULL) {
        Py_DECREF(c);
        return NULL;
    }
    return (PyObject *)c;
}

/* Bound like a function: upstream's wrapper is one. */
static PyObject *
gcoro_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

static PyObject *
gcoro_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<tornado_c gen.coroutine of %R>", ((gcoro *)self)->func);
}

static int
gcoro_traverse(PyObject *op, visitproc visit, void *arg)
{
    gcoro *c = (gcoro *)op;
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(c->module);
    Py_VISIT(c->func);
    Py_VISIT(c->dict);
    return 0;
}

static int
gcoro_clear(PyObject *op)
{
    gcoro *c = (gcoro *)op;
    Py_CLEAR(c->func);
    Py_CLEAR(c->dict);
    Py_CLEAR(c->module);
    return 0;
}

static void
gcoro_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (((gcoro *)op)->weakreflist != NULL) {
        PyObject_ClearWeakRefs(op);
    }
    gcoro_clear(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyMemberDef gcoro_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(gcoro, vectorcall), READONLY, NULL},
    {"__dictoffset__", T_PYSSIZET, offsetof(gcoro, dict), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(gcoro, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef gcoro_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot gcoro_slots[] = {
    {Py_tp_new, gcoro_new},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_descr_get, gcoro_get},
    {Py_tp_repr, gcoro_repr},
    {Py_tp_traverse, gcoro_traverse},
    {Py_tp_clear, gcoro_clear},
    {Py_tp_dealloc, gcoro_dealloc},
    {Py_tp_members, gcoro_members},
    {Py_tp_getset, gcoro_getset},
    {0, NULL},
};

static PyType_Spec gcoro_spec = {
    .name = "tornado_c._core._GenCoroutine",
    .basicsize = sizeof(gcoro),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
             Py_TPFLAGS_METHOD_DESCRIPTOR,
    .slots = gcoro_slots,
};

/* ------------------------------------------------------------- setup */

static PyObject *
fn_gen_setup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_web_gen_state *g = &tc_get_state(module)->web->g;
    if (nargs != 12) {
        PyErr_SetString(PyExc_TypeError,
                        "_gen_setup(Future, Generator, Return, BadYieldError, CancelledError, "
                        "moment, _null_future, gen_globals, convert_yielded, "
                        "_value_from_stopiteration, future_set_exception_unless_cancelled, "
                        "IOLoop) takes 12 arguments");
        return NULL;
    }
    if (!PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[2]) ||
        !PyType_Check(args[3]) || !PyType_Check(args[4]) || !PyDict_Check(args[7]) ||
        !PyCallable_Check(args[8]) || !PyCallable_Check(args[9]) ||
        !PyCallable_Check(args[10]) || !PyType_Check(args[11])) {
        PyErr_SetString(PyExc_TypeError, "_gen_setup(): argument of the wrong kind");
        return NULL;
    }
    PyObject *registry = PyObject_GetAttrString(args[8], "registry");
    if (registry == NULL) {
        return NULL;
    }
    Py_XSETREF(g->cy_registry, registry);
    Py_XSETREF(g->Future, Py_NewRef(args[0]));
    Py_XSETREF(g->Generator, Py_NewRef(args[1]));
    Py_XSETREF(g->Return, Py_NewRef(args[2]));
    Py_XSETREF(g->BadYieldError, Py_NewRef(args[3]));
    Py_XSETREF(g->CancelledError, Py_NewRef(args[4]));
    Py_XSETREF(g->moment, Py_NewRef(args[5]));
    Py_XSETREF(g->null_future, Py_NewRef(args[6]));
    Py_XSETREF(g->gen_globals, Py_NewRef(args[7]));
    Py_XSETREF(g->convert_yielded, Py_NewRef(args[8]));
    Py_XSETREF(g->value_from_stop, Py_NewRef(args[9]));
    Py_XSETREF(g->set_exc, Py_NewRef(args[10]));
    Py_XSETREF(g->IOLoop, Py_NewRef(args[11]));
    Py_RETURN_NONE;
}

static PyMethodDef gen_functions[] = {
    {"_gen_setup", (PyCFunction)(void (*)(void))fn_gen_setup, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static const tc_intern_spec gen_names[] = {
    TC_INTERN_NAME(tc_web_gen_state, s_done, "done"),
    TC_INTERN_NAME(tc_web_gen_state, s_result, "result"),
    TC_INTERN_NAME(tc_web_gen_state, s_send, "send"),
    TC_INTERN_NAME(tc_web_gen_state, s_throw, "throw"),
    TC_INTERN_NAME(tc_web_gen_state, s_cancel, "cancel"),
    TC_INTERN_NAME(tc_web_gen_state, s_cancelled, "cancelled"),
    TC_INTERN_NAME(tc_web_gen_state, s_set_result, "set_result"),
    TC_INTERN_NAME(tc_web_gen_state, s_add_done_callback, "add_done_callback"),
    TC_INTERN_NAME(tc_web_gen_state, s_add_future, "add_future"),
    TC_INTERN_NAME(tc_web_gen_state, s_add_callback, "add_callback"),
    TC_INTERN_NAME(tc_web_gen_state, s_current, "current"),
    TC_INTERN_NAME(tc_web_gen_state, s_convert_yielded, "convert_yielded"),
    {0, NULL},
};

int
tc_web_gen_exec(PyObject *module, struct tc_state *st)
{
    tc_web_gen_state *g = &st->web->g;
    if (tc_intern_all(g, gen_names) < 0 ||
        PyModule_AddFunctions(module, gen_functions) < 0 ||
        tc_add_type(module, &runner_spec, NULL, &g->RunnerType) < 0 ||
        tc_add_type(module, &gcoro_spec, NULL, &g->CoroutineType) < 0) {
        return -1;
    }
    return 0;
}

int
tc_web_gen_traverse(tc_web_state *ws, visitproc visit, void *arg)
{
    tc_web_gen_state *g = &ws->g;
    Py_VISIT(g->CoroutineType);
    Py_VISIT(g->RunnerType);
    Py_VISIT(g->Future);
    Py_VISIT(g->Generator);
    Py_VISIT(g->Return);
    Py_VISIT(g->BadYieldError);
    Py_VISIT(g->CancelledError);
    Py_VISIT(g->moment);
    Py_VISIT(g->null_future);
    Py_VISIT(g->gen_globals);
    Py_VISIT(g->convert_yielded);
    Py_VISIT(g->cy_registry);
    Py_VISIT(g->value_from_stop);
    Py_VISIT(g->set_exc);
    Py_VISIT(g->IOLoop);
    return 0;
}

void
tc_web_gen_clear(tc_web_state *ws)
{
    tc_web_gen_state *g = &ws->g;
    Py_CLEAR(g->CoroutineType);
    Py_CLEAR(g->RunnerType);
    Py_CLEAR(g->Future);
    Py_CLEAR(g->Generator);
    Py_CLEAR(g->Return);
    Py_CLEAR(g->BadYieldError);
    Py_CLEAR(g->CancelledError);
    Py_CLEAR(g->moment);
    Py_CLEAR(g->null_future);
    Py_CLEAR(g->gen_globals);
    Py_CLEAR(g->convert_yielded);
    Py_CLEAR(g->cy_registry);
    Py_CLEAR(g->value_from_stop);
    Py_CLEAR(g->set_exc);
    Py_CLEAR(g->IOLoop);
    tc_clear_all(g, gen_names);
}
