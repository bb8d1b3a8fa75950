/* _execute as a coroutine: the _core._WebExecute type (execute.c holds
 * _HandlerDelegate.execute, _execute's steps and its synchronous path; the
 * design is at the top of execute.c; shared declarations in handler.h).
 *
 * For a handler whose prepare or verb method is a coroutine function, a
 * generator function or a @gen.coroutine, execute() runs _execute in an
 * asyncio Task as upstream does, but the Task's coroutine is a
 * _core._WebExecute: a small object that is a coroutine to asyncio
 * (send/throw/close/__await__/__next__, am_send for the Task's fast path,
 * registered with collections.abc.Coroutine by tornado_c/_webhandler.py)
 * and performs _execute's steps with execute.c's functions.  It awaits the
 * awaitable prepare() or the method returned as `await` does: the
 * awaitable's iterator (the coroutine itself, or what __await__ returns),
 * driven with PyIter_Send, with throw() and close() passed on to it as
 * `yield from` passes them.
 *
 * What upstream's execute() adds around the Task:
 *   - gen._wrap_awaitable keeps the Task in IOLoop._pending_tasks until it
 *     is done (a done callback removes it): here the module's own set of
 *     running Tasks holds it, and the coroutine removes it as it ends;
 *   - `lambda f: f.cancelled() or f.result()`: for a Task that ends with an
 *     exception other than a cancellation it passes the exception to the
 *     loop's exception handler.  Here the coroutine adds that callback
 *     (_webhandler._log_result) to its Task in the one step that ends with
 *     such an exception, before the Task sees it, so the callback runs as
 *     upstream's would; otherwise the Task has no done callbacks. */
#include "common.h"
#include "state.h"
#include "web/web.h"
#include "web/handler.h"

enum { XC_INIT, XC_PREPARE, XC_METHOD, XC_DONE };

typedef struct {
    PyObject_HEAD
    tc_web_state *ws;       /* borrowed: the module state (the type holds the module) */
    PyObject *handler;      /* strong until the end */
    PyObject *transforms;   /* strong until the first step */
    PyObject *args;         /* strong until the first step: a tuple */
    PyObject *kwargs;       /* strong until the first step: a dict */
    PyObject *task;         /* strong until the end: the Task running this (a cycle
                             * the end breaks); the pending set holds the Task */
    PyObject *awaiting;     /* strong or NULL: the iterator being awaited */
    PyObject *first;        /* strong or NULL until the first step: the awaitable to
                             * start with (the synchronous path's resume) */
    char first_stage;       /* with `first`: TC_WEB_RUN_RESUME_PREPARE or
                             * TC_WEB_RUN_RESUME_METHOD */
    char stage;             /* XC_* */
    char running;
} xcoro;

/* a generator of a @types.coroutine function (awaitable as it is) */
static int
is_iterable_coro(PyObject *o)
{
    if (!PyGen_CheckExact(o)) {
        return 0;
    }
    PyObject *code = PyObject_GetAttrString(o, "gi_code");
    int r = code != NULL && PyCode_Check(code) &&
            (((PyCodeObject *)code)->co_flags & CO_ITERABLE_COROUTINE);
    Py_XDECREF(code);
    PyErr_Clear();
    return r;
}

/* The iterator `await o` drives, new reference; NULL with await's TypeError */
static PyObject *
await_iter(PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    if (PyCoro_CheckExact(o) || is_iterable_coro(o)) {
        return Py_NewRef(o);
    }
    if (t->tp_as_async == NULL || t->tp_as_async->am_await == NULL) {
        PyErr_Format(PyExc_TypeError, "object %.100s can't be used in 'await' expression",
                     t->tp_name);
        return NULL;
    }
    PyObject *it = t->tp_as_async->am_await(o);
    if (it == NULL) {
        return NULL;
    }
    if (PyCoro_CheckExact(it) || is_iterable_coro(it)) {
        Py_DECREF(it);
        PyErr_SetString(PyExc_TypeError, "__await__() returned a coroutine");
        return NULL;
    }
    if (!PyIter_Check(it)) {
        PyErr_Format(PyExc_TypeError, "__await__() returned non-iterator of type '%.100s'",
                     Py_TYPE(it)->tp_name);
        Py_DECREF(it);
        return NULL;
    }
    return it;
}

/* An ended call of send/throw on an iterator: PYGEN_RETURN with its value
 * (StopIteration's, new reference) or PYGEN_ERROR with the exception set. */
static PySendResult
ended(PyObject **result)
{
    *result = NULL;
    if (!PyErr_Occurred()) {
        *result = Py_NewRef(Py_None);
        return PYGEN_RETURN;
    }
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        return PYGEN_ERROR;
    }
    PyObject *e = tc_web_take_exception();
    *result = Py_NewRef(e ? ((PyStopIterationObject *)e)->value : Py_None);
    Py_XDECREF(e);
    return PYGEN_RETURN;
}

/* getattr(o, name, None) as *out (new reference or NULL); -1 on an error
 * other than AttributeError */
static int
optional_attr(PyObject *o, const char *name, PyObject **out)
{
    *out = PyObject_GetAttrString(o, name);
    if (*out == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear();
    }
    return 0;
}

/* exc (borrowed) thrown into the awaited iterator, as `yield from` does:
 * GeneratorExit closes it and is raised here; an iterator without throw()
 * gets it raised here. */
static PySendResult
throw_into(PyObject *it, PyObject *exc, PyObject **result)
{
    PyObject *m, *r;
    *result = NULL;
    if (PyErr_GivenExceptionMatches(exc, PyExc_GeneratorExit)) {
        if (optional_attr(it, "close", &m) < 0) {
            return PYGEN_ERROR;
        }
        if (m != NULL) {
            r = PyObject_CallNoArgs(m);
            Py_DECREF(m);
            if (r == NULL) {
                return PYGEN_ERROR;
            }
            Py_DECREF(r);
        }
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        return PYGEN_ERROR;
    }
    if (optional_attr(it, "throw", &m) < 0) {
        return PYGEN_ERROR;
    }
    if (m == NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        return PYGEN_ERROR;
    }
    r = PyObject_CallOneArg(m, exc);
    Py_DECREF(m);
    if (r != NULL) {
        *result = r;
        return PYGEN_NEXT;
    }
    return ended(result);
}

/* Starts awaiting `aw` (stolen): the stage to go on in, its first step's
 * result in *result.  PYGEN_NEXT with the value to yield, PYGEN_RETURN
 * with the awaited value, PYGEN_ERROR with the exception set. */
static PySendResult
start_await(xcoro *c, PyObject *aw, int stage, PyObject **result)
{
    PyObject *it = await_iter(aw);
    Py_DECREF(aw);
    *result = NULL;
    c->stage = (char)stage;
    if (it == NULL) {
        return PYGEN_ERROR;
    }
    c->awaiting = it;
    return PyIter_Send(it, Py_None, result);
}

/* The end of the coroutine: nothing more to hold; the Task leaves the set */
static void
xc_release(xcoro *c)
{
    c->stage = XC_DONE;
    if (c->task != NULL) {
        int r = PySet_Discard(c->ws->h.pending_tasks, c->task);
        if (r < 0) {
            PyErr_WriteUnraisable(c->task);
        }
    }
    Py_CLEAR(c->task);
    Py_CLEAR(c->awaiting);
    Py_CLEAR(c->first);
    Py_CLEAR(c->handler);
    Py_CLEAR(c->transforms);
    Py_CLEAR(c->args);
    Py_CLEAR(c->kwargs);
}

/* except (Exception, asyncio.CancelledError) as e: of _execute, for `e`
 * (stolen).  NULL when it was handled, or the exception that goes on
 * (new reference). */
static PyObject *
xc_except(xcoro *c, PyObject *e)
{
    tc_web_state *ws = c->ws;
    tc_web_handler_state *hs = &ws->h;
    PyObject *handler = c->handler, *old, *r;
    int k;
    if (!PyObject_TypeCheck(e, (PyTypeObject *)PyExc_Exception)) {
        k = PyObject_IsInstance(e, hs->CancelledError);
        if (k <= 0) {
            if (k < 0) {
                Py_DECREF(e);
                return tc_web_take_exception();
            }
            return e; /* not caught by the except clause */
        }
        /* task = asyncio.current_task(): the Task this runs in
         * if isinstance(e, CancelledError) and task is not None and
         *         task.cancelling(): */
        k = 0;
        if (c->task != NULL) {
            r = PyObject_CallMethod(c->task, "cancelling", NULL);
            k = r ? PyObject_IsTrue(r) : -1;
            Py_XDECREF(r);
        }
        if (k != 0) {
            if (k < 0) {
                Py_DECREF(e);
                return tc_web_take_exception();
            }
            old = PyErr_GetHandledException();
            PyErr_SetHandledException(e);
            r = PyObject_GetAttr(handler, hs->s_finished);
            k = r ? PyObject_IsTrue(r) : -1;
            Py_XDECREF(r);
            if (k == 0) {
                PyObject *code = hs->int_500;
                r = tc_web_hook(ws, handler, TC_H_SEND_ERROR, tc_web_send_error_impl, &code, 1);
                if (r == NULL) {
                    tc_web_log_handled(ws, TC_H_EXECUTE, TC_H_SEND_ERROR, "app_log",
                                       "Exception in exception handler");
                } else {
                    Py_DECREF(r);
                }
            }
            PyErr_SetHandledException(old);
            Py_XDECREF(old);
            if (PyErr_Occurred()) { /* what left the except clause instead */
                Py_DECREF(e);
                return tc_web_take_exception();
            }
            return e; /* raise */
        }
    }
    /* try: self._handle_request_exception(e)
     * except Exception: app_log.error("Exception in exception handler", ...) */
    old = PyErr_GetHandledException();
    PyErr_SetHandledException(e);
    r = tc_web_hook(ws, handler, TC_H_HANDLE_EXC, tc_web_handle_exception_impl, &e, 1);
    if (r == NULL) {
        tc_web_log_handled(ws, TC_H_EXECUTE, TC_H_HANDLE_EXC, "app_log",
                           "Exception in exception handler");
    }
    PyErr_SetHandledException(old);
    Py_XDECREF(old);
    Py_XDECREF(r);
    Py_DECREF(e);
    return PyErr_Occurred() ? tc_web_take_exception() : NULL;
}

/* Runs _execute on from where it is, with the awaited iterator's step
 * given as (status, *result): until the next value to yield (PYGEN_NEXT),
 * the end (PYGEN_RETURN, None) or an exception (PYGEN_ERROR, set). */
static PySendResult
xc_run(xcoro *c, PySendResult status, PyObject **result)
{
    tc_web_state *ws = c->ws;
    PyObject *exc = NULL, *aw = NULL;
    int stage;
    for (;;) {
        if (status == PYGEN_NEXT) {
            return PYGEN_NEXT; /* *result: what the awaited iterator yielded */
        }
        if (c->stage != XC_INIT) {
            Py_CLEAR(c->awaiting);
            if (status == PYGEN_RETURN) {
                Py_CLEAR(*result); /* result = await ...: not kept */
            } else {
                exc = tc_web_take_exception();
                if (exc == NULL) {
                    goto finally;
                }
                goto except;
            }
        }
        stage = TC_WEB_RUN_DONE;
        aw = NULL;
        switch (c->stage) {
        case XC_INIT:
            if (c->first != NULL) { /* _resume: result = await result */
                aw = c->first;
                c->first = NULL;
                stage = c->first_stage;
                break;
            }
            if (tc_web_execute_steps(ws, c->handler, c->transforms, c->args, c->kwargs, &stage,
                                     &aw) < 0) {
                goto raised;
            }
            Py_CLEAR(c->transforms);
            Py_CLEAR(c->args);
            Py_CLEAR(c->kwargs);
            break;
        case XC_PREPARE:
            if (tc_web_steps_after_prepare(ws, c->handler, &stage, &aw) < 0) {
                goto raised;
            }
            break;
        default: /* XC_METHOD */
            if (tc_web_auto_finish(ws, c->handler) < 0) {
                goto raised;
            }
            break;
        }
        if (stage == TC_WEB_RUN_DONE) {
            goto finally;
        }
        status = start_await(c, aw, stage == TC_WEB_RUN_RESUME_PREPARE ? XC_PREPARE : XC_METHOD,
                             result);
    }
raised:
    exc = tc_web_take_exception();
    if (exc == NULL) {
        goto finally;
    }
except:
    exc = xc_except(c, exc);
finally:
    /* finally: the prepared future for the HTTP server */
    if (c->handler != NULL && tc_web_settle_prepared(&ws->h, c->handler, 0) < 0) {
        PyObject *e2 = tc_web_take_exception();
        if (exc != NULL && e2 != NULL) {
            PyException_SetContext(e2, exc); /* steals exc */
        } else {
            Py_XDECREF(exc);
        }
        exc = e2;
    }
    if (exc != NULL && c->task != NULL && !PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_Exception)) {
        int k = PyObject_IsInstance(exc, ws->h.CancelledError);
        if (k < 0) {
            Py_DECREF(exc);
            exc = tc_web_take_exception();
        } else if (k > 0) {
            goto end; /* the Task is cancelled: upstream's callback does nothing */
        }
    }
    if (exc != NULL && c->task != NULL) {
        /* the Task ends with this exception: upstream's done callback
         * (f.result()) passes it to the loop's exception handler */
        PyObject *r = PyObject_CallMethodOneArg(c->task, ws->h.s_add_done_callback,
                                                ws->h.log_result);
        if (r == NULL) {
            PyErr_WriteUnraisable(c->task);
        }
        Py_XDECREF(r);
    }
end:
    xc_release(c);
    *result = NULL;
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
        return PYGEN_ERROR;
    }
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

/* the checks of a coroutine's send/throw; 0 to go on */
static int
xc_check(xcoro *c, int sending_value)
{
    if (c->running) {
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return -1;
    }
    if (c->stage == XC_DONE) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        return -1;
    }
    if (c->stage == XC_INIT && sending_value) {
        PyErr_SetString(PyExc_TypeError,
                        "can't send non-None value to a just-started coroutine");
        return -1;
    }
    return 0;
}

static PySendResult
xc_am_send(PyObject *self, PyObject *arg, PyObject **result)
{
    xcoro *c = (xcoro *)self;
    PySendResult st;
    *result = NULL;
    if (xc_check(c, arg != Py_None) < 0) {
        return PYGEN_ERROR;
    }
    c->running = 1;
    if (c->stage == XC_INIT) {
        st = xc_run(c, PYGEN_RETURN, result);
    } else {
        st = xc_run(c, PyIter_Send(c->awaiting, arg, result), result);
    }
    c->running = 0;
    return st;
}

/* exc (borrowed) raised at the point the coroutine waits */
static PySendResult
xc_throw_exc(xcoro *c, PyObject *exc, PyObject **result)
{
    PySendResult st;
    *result = NULL;
    if (c->stage == XC_INIT) {
        /* not started: raised before _execute's first line */
        xc_release(c);
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        return PYGEN_ERROR;
    }
    c->running = 1;
    st = xc_run(c, throw_into(c->awaiting, exc, result), result);
    c->running = 0;
    return st;
}

static PyObject *
xc_send(PyObject *self, PyObject *arg)
{
    PyObject *r;
    switch (xc_am_send(self, arg, &r)) {
    case PYGEN_NEXT:
        return r;
    case PYGEN_RETURN:
        Py_DECREF(r); /* always None */
        PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    default:
        return NULL;
    }
}

static PyObject *
xc_iternext(PyObject *self)
{
    PyObject *r;
    switch (xc_am_send(self, Py_None, &r)) {
    case PYGEN_NEXT:
        return r;
    case PYGEN_RETURN:
        Py_DECREF(r);
        return NULL; /* exhausted */
    default:
        return NULL;
    }
}

/* throw(exc) / throw(type[, value[, traceback]]) as a coroutine's */
static PyObject *
xc_throw(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    xcoro *c = (xcoro *)self;
    PyObject *typ, *val, *tb, *exc, *r;
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    if (xc_check(c, 0) < 0) {
        return NULL;
    }
    typ = args[0];
    val = nargs > 1 ? args[1] : Py_None;
    tb = nargs > 2 ? args[2] : Py_None;
    if (tb != Py_None && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback object");
        return NULL;
    }
    if (PyExceptionInstance_Check(typ)) {
        if (val != Py_None) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return NULL;
        }
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    } else if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, val);
    } else {
        PyErr_Format(PyExc_TypeError,
                     "exceptions must be classes or instances deriving from BaseException, "
                     "not %s",
                     Py_TYPE(typ)->tp_name);
        return NULL;
    }
    exc = tc_web_take_exception();
    if (exc == NULL) {
        return NULL;
    }
    if (tb != Py_None && PyException_SetTraceback(exc, tb) < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    PySendResult st = xc_throw_exc(c, exc, &r);
    Py_DECREF(exc);
    if (st == PYGEN_NEXT) {
        return r;
    }
    if (st == PYGEN_RETURN) {
        Py_DECREF(r);
        PyErr_SetNone(PyExc_StopIteration);
    }
    return NULL;
}

/* close(): GeneratorExit at the waiting point; -1 with an exception set */
static int
xc_do_close(xcoro *c)
{
    PyObject *r = NULL, *exc;
    if (c->running) {
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return -1;
    }
    if (c->stage == XC_INIT || c->stage == XC_DONE) {
        xc_release(c);
        return 0;
    }
    exc = PyObject_CallNoArgs(PyExc_GeneratorExit);
    if (exc == NULL) {
        return -1;
    }
    PySendResult st = xc_throw_exc(c, exc, &r);
    Py_DECREF(exc);
    if (st == PYGEN_NEXT) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_RuntimeError, "coroutine ignored GeneratorExit");
        return -1;
    }
    if (st == PYGEN_RETURN) {
        Py_DECREF(r);
        return 0;
    }
    if (PyErr_ExceptionMatches(PyExc_GeneratorExit) ||
        PyErr_ExceptionMatches(PyExc_StopIteration)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}

static PyObject *
xc_close(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    if (xc_do_close((xcoro *)self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
xc_await(PyObject *self)
{
    return Py_NewRef(self);
}

/* collected while it waits: closed, as a coroutine is */
static void
xc_finalize(PyObject *self)
{
    xcoro *c = (xcoro *)self;
    if (c->stage == XC_INIT || c->stage == XC_DONE) {
        return;
    }
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (xc_do_close(c) < 0) {
        PyErr_WriteUnraisable(self);
    }
    PyErr_Restore(t, v, tb);
}

static int
xc_traverse(PyObject *self, visitproc visit, void *arg)
{
    xcoro *c = (xcoro *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(c->handler);
    Py_VISIT(c->transforms);
    Py_VISIT(c->args);
    Py_VISIT(c->kwargs);
    Py_VISIT(c->task);
    Py_VISIT(c->awaiting);
    Py_VISIT(c->first);
    return 0;
}

static int
xc_clear(PyObject *self)
{
    xcoro *c = (xcoro *)self;
    Py_CLEAR(c->handler);
    Py_CLEAR(c->transforms);
    Py_CLEAR(c->args);
    Py_CLEAR(c->kwargs);
    Py_CLEAR(c->task);
    Py_CLEAR(c->awaiting);
    Py_CLEAR(c->first);
    return 0;
}

static void
xc_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc(self) < 0) {
        return; /* resurrected */
    }
    PyObject_GC_UnTrack(self);
    xc_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
xc_repr(PyObject *self)
{
    xcoro *c = (xcoro *)self;
    if (c->handler == NULL) {
        return PyUnicode_FromFormat("<tornado_c RequestHandler._execute coroutine (%s) at %p>",
                                    c->stage == XC_DONE ? "done" : "not started", self);
    }
    return PyUnicode_FromFormat("<tornado_c RequestHandler._execute coroutine of %R at %p>",
                                c->handler, self);
}

static PyObject *
xc_get_await(PyObject *self, void *Py_UNUSED(closure))
{
    xcoro *c = (xcoro *)self;
    return Py_NewRef(c->awaiting ? c->awaiting : Py_None);
}

static PyObject *
xc_get_running(PyObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((xcoro *)self)->running);
}

static PyObject *
xc_get_none(PyObject *Py_UNUSED(self), void *Py_UNUSED(closure))
{
    Py_RETURN_NONE;
}

static PyObject *
xc_get_name(PyObject *Py_UNUSED(self), void *closure)
{
    return PyUnicode_FromString((const char *)closure);
}

static PyMethodDef xc_methods[] = {
    {"send", (PyCFunction)xc_send, METH_O, "send(value): as a coroutine's send()."},
    {"throw", (PyCFunction)(void (*)(void))xc_throw, METH_FASTCALL,
     "throw(exc): as a coroutine's throw()."},
    {"close", (PyCFunction)xc_close, METH_NOARGS, "close(): as a coroutine's close()."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef xc_getset[] = {
    {"cr_await", xc_get_await, NULL, "the iterator being awaited, or None", NULL},
    {"cr_running", xc_get_running, NULL, "True while a step runs", NULL},
    {"cr_frame", xc_get_none, NULL, "None: there is no Python frame", NULL},
    {"__name__", xc_get_name, NULL, NULL, "_execute"},
    {"__qualname__", xc_get_name, NULL, NULL, "RequestHandler._execute"},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot xc_slots[] = {
    {Py_tp_doc, "RequestHandler._execute for a coroutine handler, run by its asyncio Task "
                "(csrc/web/execute_coro.c)."},
    {Py_tp_dealloc, xc_dealloc},
    {Py_tp_traverse, xc_traverse},
    {Py_tp_clear, xc_clear},
    {Py_tp_finalize, xc_finalize},
    {Py_tp_repr, xc_repr},
    {Py_tp_iternext, xc_iternext},
    {Py_tp_methods, xc_methods},
    {Py_tp_getset, xc_getset},
    {Py_am_await, xc_await},
    {Py_am_send, xc_am_send},
    {0, NULL},
};

static PyType_Spec xc_spec = {
    .name = "tornado_c._core._WebExecute",
    .basicsize = sizeof(xcoro),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = xc_slots,
};

/* handler._execute(transforms, *args, **kwargs) started in a Task of
 * `loop` (loop.create_task), the Task held until the coroutine ends; or,
 * with `first` (borrowed, args NULL), the rest of _execute from awaiting
 * `first` on, as _webhandler._resume does after prepare (`first_stage`
 * TC_WEB_RUN_RESUME_PREPARE) or the method (TC_WEB_RUN_RESUME_METHOD).
 * 0, or -1 with an exception set. */
int
tc_web_start_task(tc_web_state *ws, PyObject *loop, PyObject *handler, PyObject *transforms,
           PyObject *args, PyObject *kwargs, PyObject *first, int first_stage)
{
    tc_web_handler_state *hs = &ws->h;
    xcoro *c = PyObject_GC_New(xcoro, hs->ExecuteType);
    PyObject *task;
    if (c == NULL) {
        return -1;
    }
    c->ws = ws;
    c->handler = Py_NewRef(handler);
    c->transforms = Py_XNewRef(transforms);
    c->args = Py_XNewRef(args);
    c->kwargs = Py_XNewRef(kwargs);
    c->task = NULL;
    c->awaiting = NULL;
    c->first = Py_XNewRef(first);
    c->first_stage = (char)first_stage;
    c->stage = XC_INIT;
    c->running = 0;
    PyObject_GC_Track(c);
    {
        PyObject *cargs[2] = {loop, (PyObject *)c};
        task = PyObject_VectorcallMethod(hs->s_create_task, cargs, 2, NULL);
    }
    if (task == NULL || PySet_Add(hs->pending_tasks, task) < 0) {
        Py_XDECREF(task);
        xc_release(c);
        Py_DECREF(c);
        return -1;
    }
    c->task = task; /* the reference create_task gave */
    Py_DECREF(c);
    return 0;
}

/* The _core._WebExecute type, the set of running Tasks and two names
 * (called by tc_web_execute_exec) */
int
tc_web_execute_coro_exec(PyObject *module, tc_web_state *ws)
{
    ws->h.ExecuteType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &xc_spec, NULL);
    if (ws->h.ExecuteType == NULL ||
        PyModule_AddObjectRef(module, "_WebExecute", (PyObject *)ws->h.ExecuteType) < 0) {
        return -1;
    }
    if ((ws->h.pending_tasks = PySet_New(NULL)) == NULL ||
        (ws->h.s_create_task = PyUnicode_InternFromString("create_task")) == NULL ||
        (ws->h.s_add_done_callback = PyUnicode_InternFromString("add_done_callback")) == NULL) {
        return -1;
    }
    return 0;
}
