/* _HandlerDelegate.execute and RequestHandler._execute in C (see web.h
 * and handler.c for the design).
 *
 * Upstream: execute() builds the handler and the transforms, then
 * gen.convert_yielded(handler._execute(...)) starts the coroutine in an
 * asyncio Task, whose first step runs one loop iteration later in a copy
 * of the current contextvars Context.
 *
 * Here, when the request is an ordinary one (no @stream_request_body, the
 * template/static caches on, _execute not overridden by the class or the
 * instance, no task factory on the running loop), execute() builds the
 * handler and the transforms itself and then either
 *
 *   - (neither prepare nor the method for the request's verb is a
 *     coroutine function, a generator function or a @gen.coroutine)
 *     schedules _web_run_execute with loop.call_soon, which also runs it
 *     one iteration later in a copy of the context, and _web_run_execute
 *     runs _execute's steps as plain calls: no coroutine, Future or Task.
 *     If prepare() or the method returns something other than None anyway
 *     (a plain function returning an awaitable), the rest of _execute goes
 *     on in a Task: tornado_c/_webhandler.py's _resume, upstream's code
 *     after that await;
 *   - (a coroutine prepare or method) creates the Task as upstream does
 *     (loop.create_task), its coroutine a _core._WebExecute (below) that
 *     runs the same steps and awaits what prepare() and the method return.
 *
 * Anything else takes upstream's own path.
 *
 * What differs, observably: inside a handler on the synchronous path
 * asyncio.current_task() is None (upstream: the Task running _execute); a
 * traceback of an exception from the handler has no _execute frame; an
 * awaitable returned by a plain-function prepare/method is awaited one
 * loop iteration later than upstream awaits it.  On the Task path: the
 * Task's coroutine is the C object (its repr, no frame, no cr_code), the
 * Task has no done callbacks (upstream's two lambdas) unless it ends with
 * an exception, and the Task is not in IOLoop._pending_tasks.
 */
#include "common.h"
#include "state.h"
#include "web/web.h"
#include "web/handler.h"

/* settings.get(name, True) is false */
static int
setting_false(PyObject *settings, PyObject *name)
{
    PyObject *v;
    int r;
    if (PyDict_CheckExact(settings)) {
        v = PyDict_GetItemWithError(settings, name); /* borrowed */
        if (v == NULL) {
            return PyErr_Occurred() ? -1 : 0;
        }
        r = PyObject_IsTrue(v);
        return r < 0 ? -1 : !r;
    }
    v = PyObject_CallMethod(settings, "get", "OO", name, Py_True);
    if (v == NULL) {
        return -1;
    }
    r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r < 0 ? -1 : !r;
}

/* May this attribute of the class (borrowed, may be NULL) return an
 * awaitable by construction?  Coroutine and generator functions,
 * @gen.coroutine wrappers (upstream's functions and ours). */
static int
is_async_callable(tc_web_state *ws, PyObject *f)
{
    if (f != NULL && ws->g.CoroutineType != NULL && Py_IS_TYPE(f, ws->g.CoroutineType)) {
        return 1; /* our @gen.coroutine wrapper (gen.c) */
    }
    if (f == NULL || !PyFunction_Check(f)) {
        return 0;
    }
    PyCodeObject *code = (PyCodeObject *)PyFunction_GET_CODE(f);
    if (code->co_flags & (CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_GENERATOR |
                          CO_ASYNC_GENERATOR)) {
        return 1;
    }
    PyObject *d = ((PyFunctionObject *)f)->func_dict; /* borrowed, may be NULL */
    if (d != NULL) {
        PyObject *mark = PyDict_GetItemString(d, "__tornado_coroutine__"); /* borrowed */
        if (mark != NULL && PyObject_IsTrue(mark) == 1) {
            return 1;
        }
    }
    return 0;
}

/* request.method.lower(), new reference (a small cache of the verbs) */
static PyObject *
lower_method(tc_web_handler_state *hs, PyObject *method)
{
    PyObject *low = PyDict_GetItemWithError(hs->lower_cache, method); /* borrowed */
    if (low != NULL) {
        return Py_NewRef(low);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    low = PyObject_CallMethod(method, "lower", NULL);
    if (low != NULL && PyUnicode_CheckExact(method) && PyUnicode_CheckExact(low) &&
        PyDict_GET_SIZE(hs->lower_cache) < 32) {
        if (PyDict_SetItem(hs->lower_cache, method, low) < 0) {
            Py_CLEAR(low);
        }
    }
    return low;
}

/* _cross_origin_protection(self): nothing for safe methods, else upstream's */
PyObject *
tc_web_cross_origin_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    if (nargs == 0 && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0)) {
        PyObject *req = PyObject_GetAttr(self, hs->s_request);
        PyObject *m = req ? PyObject_GetAttr(req, hs->s_method) : NULL;
        Py_XDECREF(req);
        if (m == NULL) {
            return NULL;
        }
        int safe = PySequence_Contains(hs->safe_methods, m);
        Py_DECREF(m);
        if (safe < 0) {
            return NULL;
        }
        if (safe) {
            Py_RETURN_NONE;
        }
    }
    return tc_web_hook_call(self, hs->orig[TC_H_CROSS_ORIGIN], 1, args, nargs, kwnames);
}

PyObject *
tc_web_take_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* handler._prepared_future: set_result(None) if it is there and not done
 * (finally: of upstream's _execute); with `unless_cancelled`, what
 * future_set_result_unless_cancelled does instead. */
static int
settle_prepared(tc_web_handler_state *hs, PyObject *handler, int unless_cancelled)
{
    PyObject *f = PyObject_GetAttr(handler, hs->s_prepared_future), *v;
    int r = 0;
    if (f == NULL) {
        return -1;
    }
    if (f != Py_None) {
        v = PyObject_CallMethod(f, unless_cancelled ? "cancelled" : "done", NULL);
        r = v ? PyObject_IsTrue(v) : -1;
        Py_XDECREF(v);
        if (r == 0) {
            v = PyObject_CallMethodOneArg(f, hs->s_set_result, Py_None);
            r = v ? 0 : -1;
            Py_XDECREF(v);
        } else if (r > 0) {
            r = 0;
        }
    }
    Py_DECREF(f);
    return r;
}

enum { RUN_DONE, RUN_RESUME_PREPARE, RUN_RESUME_METHOD };

static int
startswith(PyObject *s, PyObject *prefix)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(prefix);
    if (PyUnicode_GET_LENGTH(s) < n) {
        return 0;
    }
    return PyUnicode_Tailmatch(s, prefix, 0, n, -1) == 1;
}

/* 1 when upstream's request._parse_body() would do nothing: it is
 * upstream's, the Content-Type is neither form type (parse_body_arguments
 * then does nothing) and there are no body_arguments to copy. */
static int
body_is_nothing_to_parse(tc_web_state *ws, PyObject *req)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *callable = NULL, *h, *ct, *ba;
    int unbound, r;
    r = tc_web_hook_resolve(ws, req, TC_H_PARSE_BODY, &callable, &unbound);
    if (r <= 0) {
        Py_XDECREF(callable);
        return r;
    }
    h = PyObject_GetAttr(req, hs->s_headers_attr);
    if (h == NULL) {
        return -1;
    }
    {
        PyObject *gargs[3] = {h, hs->s_Content_Type, ws->s_empty};
        ct = PyObject_VectorcallMethod(hs->s_get, gargs, 3, NULL);
    }
    Py_DECREF(h);
    if (ct == NULL) {
        return -1;
    }
    r = PyUnicode_CheckExact(ct) && !startswith(ct, hs->s_form_urlencoded) &&
        !startswith(ct, hs->s_multipart);
    Py_DECREF(ct);
    if (!r) {
        return 0;
    }
    ba = PyObject_GetAttr(req, hs->s_body_arguments);
    if (ba == NULL) {
        return -1;
    }
    r = PyDict_CheckExact(ba) && PyDict_GET_SIZE(ba) == 0;
    Py_DECREF(ba);
    return r;
}

/* if self._auto_finish and not self._finished: self.finish()
 * 0, or -1 with the exception raised */
static int
auto_finish(tc_web_state *ws, PyObject *self)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *v;
    int r;
    v = PyObject_GetAttr(self, hs->s_auto_finish);
    r = v ? PyObject_IsTrue(v) : -1;
    Py_CLEAR(v);
    if (r > 0) {
        v = PyObject_GetAttr(self, hs->s_finished);
        r = v ? PyObject_IsTrue(v) : -1;
        Py_CLEAR(v);
        r = r < 0 ? -1 : !r;
    }
    if (r < 0) {
        return -1;
    }
    if (r) {
        v = tc_web_hook(ws, self, TC_H_FINISH, tc_web_finish_impl, NULL, 0);
        if (v == NULL) {
            return -1;
        }
        Py_CLEAR(v);
    }
    return 0;
}

/* _execute from the end of prepare() on (prepare's awaitable awaited):
 * the prepared future, the verb method, auto-finish.  0 and *stage
 * RUN_DONE, or RUN_RESUME_METHOD and the method's awaitable (new
 * reference); -1 with the exception raised. */
static int
steps_after_prepare(tc_web_state *ws, PyObject *self, int *stage, PyObject **awaitable)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *req = NULL, *method = NULL, *v = NULL, *pa = NULL, *pk = NULL, *low = NULL;
    int r, ret = -1;
    *stage = RUN_DONE;
    /* if self._prepared_future is not None:
     *     future_set_result_unless_cancelled(self._prepared_future, None)
     * if self._finished: return */
    if (settle_prepared(hs, self, 1) < 0) {
        goto done;
    }
    v = PyObject_GetAttr(self, hs->s_finished);
    r = v ? PyObject_IsTrue(v) : -1;
    Py_CLEAR(v);
    if (r != 0) {
        ret = r < 0 ? -1 : 0;
        goto done;
    }
    /* method = getattr(self, self.request.method.lower())
     * result = method(*self.path_args, **self.path_kwargs) */
    req = PyObject_GetAttr(self, hs->s_request);
    method = req ? PyObject_GetAttr(req, hs->s_method) : NULL;
    low = method ? lower_method(hs, method) : NULL;
    Py_CLEAR(method);
    method = low ? PyObject_GetAttr(self, low) : NULL;
    if (method == NULL) {
        goto done;
    }
    pa = PyObject_GetAttr(self, hs->s_path_args);
    pk = pa ? PyObject_GetAttr(self, hs->s_path_kwargs) : NULL;
    if (pk == NULL) {
        goto done;
    }
    if (PyList_CheckExact(pa) && PyDict_CheckExact(pk)) {
        v = PyObject_VectorcallDict(method, PySequence_Fast_ITEMS(pa), PyList_GET_SIZE(pa),
                                    PyDict_GET_SIZE(pk) ? pk : NULL);
    } else { /* star-args of whatever they were set to */
        PyObject *t = PySequence_Tuple(pa), *d = t ? PyDict_New() : NULL;
        if (d != NULL && PyDict_Merge(d, pk, 1) == 0) {
            v = PyObject_Call(method, t, d);
        }
        Py_XDECREF(t);
        Py_XDECREF(d);
    }
    if (v == NULL) {
        goto done;
    }
    if (v != Py_None) {
        *stage = RUN_RESUME_METHOD;
        *awaitable = v;
        v = NULL;
        ret = 0;
        goto done;
    }
    Py_CLEAR(v);
    ret = auto_finish(ws, self);
    goto done;
done:
    Py_XDECREF(req);
    Py_XDECREF(method);
    Py_XDECREF(v);
    Py_XDECREF(pa);
    Py_XDECREF(pk);
    Py_XDECREF(low);
    return ret;
}

/* The body of _execute's try: up to the first awaitable.  0 and *stage
 * RUN_DONE, or the stage and the awaitable (new reference) to resume with; -1 with
 * the exception raised. */
static int
execute_steps(tc_web_state *ws, PyObject *self, PyObject *transforms, PyObject *args,
              PyObject *kwargs, int *stage, PyObject **awaitable)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *req = NULL, *method = NULL, *v = NULL, *pa = NULL, *pk = NULL;
    int r, ret = -1;
    *stage = RUN_DONE;
    if (PyObject_SetAttr(self, hs->s_transforms, transforms) < 0) {
        return -1;
    }
    /* if self.request.method not in self.SUPPORTED_METHODS: raise HTTPError(405) */
    req = PyObject_GetAttr(self, hs->s_request);
    method = req ? PyObject_GetAttr(req, hs->s_method) : NULL;
    if (method == NULL) {
        goto done;
    }
    v = PyObject_GetAttr(self, hs->s_SUPPORTED_METHODS);
    r = v ? PySequence_Contains(v, method) : -1;
    Py_CLEAR(v);
    if (r < 0) {
        goto done;
    }
    if (!r) {
        v = PyObject_CallOneArg(hs->HTTPError, hs->int_405);
        if (v != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(v), v);
            Py_CLEAR(v);
        }
        goto done;
    }
    /* not streaming (execute checked): the body is parsed here
     *   try: self.request._parse_body()
     *   except httputil.HTTPInputError as e:
     *       raise HTTPError(400, "Invalid body: %s" % e) from e */
    Py_CLEAR(req);
    req = PyObject_GetAttr(self, hs->s_request);
    if (req == NULL) {
        goto done;
    }
    r = body_is_nothing_to_parse(ws, req);
    if (r < 0) {
        goto done;
    }
    v = r ? Py_NewRef(Py_None) : PyObject_CallMethodNoArgs(req, hs->s_parse_body);
    if (v == NULL) {
        if (req != NULL && PyErr_ExceptionMatches(ws->HTTPInputError)) {
            PyObject *e = tc_web_take_exception(), *msg, *err;
            msg = e ? PyUnicode_FromFormat("Invalid body: %S", e) : NULL;
            err = msg ? PyObject_CallFunctionObjArgs(hs->HTTPError, hs->int_400, msg, NULL)
                      : NULL;
            Py_XDECREF(msg);
            if (err != NULL) {
                PyException_SetCause(err, Py_NewRef(e)); /* steals; sets __suppress_context__ */
                PyException_SetContext(err, Py_NewRef(e)); /* steals */
                PyErr_SetObject((PyObject *)Py_TYPE(err), err);
                Py_DECREF(err);
            }
            Py_XDECREF(e);
        }
        goto done;
    }
    Py_CLEAR(v);
    /* self.path_args = [self.decode_argument(arg) for arg in args]
     * self.path_kwargs = {k: self.decode_argument(v, name=k) for ...} */
    pa = PyList_New(PyTuple_GET_SIZE(args));
    if (pa == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        PyObject *cargs[2] = {self, PyTuple_GET_ITEM(args, i)};
        v = PyObject_VectorcallMethod(hs->s_decode_argument, cargs, 2, NULL);
        if (v == NULL) {
            goto done;
        }
        PyList_SET_ITEM(pa, i, v); /* steals */
        v = NULL;
    }
    if (PyObject_SetAttr(self, hs->s_path_args, pa) < 0) {
        goto done;
    }
    pk = PyDict_New();
    if (pk == NULL) {
        goto done;
    }
    {
        Py_ssize_t pos = 0;
        PyObject *k, *val;
        while (PyDict_Next(kwargs, &pos, &k, &val)) {
            PyObject *cargs[3] = {self, val, k};
            v = PyObject_VectorcallMethod(hs->s_decode_argument, cargs, 2, hs->kw_name);
            if (v == NULL || PyDict_SetItem(pk, k, v) < 0) {
                goto done;
            }
            Py_CLEAR(v);
        }
    }
    if (PyObject_SetAttr(self, hs->s_path_kwargs, pk) < 0) {
        goto done;
    }
    /* self._cross_origin_protection() */
    v = tc_web_hook(ws, self, TC_H_CROSS_ORIGIN, tc_web_cross_origin_impl, NULL, 0);
    if (v == NULL) {
        goto done;
    }
    Py_CLEAR(v);
    /* result = self.prepare() */
    v = tc_web_hook(ws, self, TC_H_PREPARE, NULL, NULL, 0);
    if (v == NULL) {
        goto done;
    }
    if (v != Py_None) {
        *stage = RUN_RESUME_PREPARE;
        *awaitable = v;
        v = NULL;
        ret = 0;
        goto done;
    }
    Py_CLEAR(v);
    ret = steps_after_prepare(ws, self, stage, awaitable);
done:
    Py_XDECREF(req);
    Py_XDECREF(method);
    Py_XDECREF(v);
    Py_XDECREF(pa);
    Py_XDECREF(pk);
    return ret;
}

static PyObject *plain_running_loop(tc_web_handler_state *hs);
static int start_task(tc_web_state *ws, PyObject *loop, PyObject *handler,
                      PyObject *transforms, PyObject *args, PyObject *kwargs, PyObject *first,
                      int first_stage);

/* _core._web_run_execute(handler, transforms, args, kwargs): _execute on
 * the synchronous path (loop.call_soon'ed by execute). */
static PyObject *
fn_run_execute(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_web_state *ws = tc_get_state(module)->web;
    tc_web_handler_state *hs = &ws->h;
    PyObject *handler, *awaitable = NULL, *r;
    int stage;
    if (nargs != 4 || !PyTuple_Check(args[2]) || !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "_web_run_execute(handler, transforms, args, kwargs)");
        return NULL;
    }
    handler = args[0];
    if (execute_steps(ws, handler, args[1], args[2], args[3], &stage, &awaitable) == 0) {
        if (stage != RUN_DONE) {
            /* the rest in a Task, upstream's code after that await: the C
             * coroutine, or _webhandler._resume when the loop now has a
             * task factory */
            PyObject *loop = plain_running_loop(hs);
            if (loop == NULL) {
                r = NULL;
            } else if (loop != Py_None) {
                r = start_task(ws, loop, handler, NULL, NULL, NULL, awaitable, stage) < 0
                        ? NULL
                        : Py_NewRef(Py_None);
            } else {
                r = PyObject_CallFunction(hs->start_resume, "OOi", handler, awaitable,
                                          stage == RUN_RESUME_PREPARE);
            }
            Py_XDECREF(loop);
            Py_DECREF(awaitable);
            return r;
        }
    } else {
        /* except (Exception, asyncio.CancelledError) as e: */
        PyObject *e = tc_web_take_exception();
        if (e == NULL) {
            return NULL;
        }
        if (!PyObject_TypeCheck(e, (PyTypeObject *)PyExc_Exception) &&
            !PyObject_IsInstance(e, hs->CancelledError)) {
            PyErr_SetObject((PyObject *)Py_TYPE(e), e); /* not ours to handle */
            Py_DECREF(e);
            goto finally;
        }
        /* there is no task here: handled as upstream handles an exception
         * when its task is not being cancelled, with e as sys.exc_info():
         * try: self._handle_request_exception(e)
         * except Exception: app_log.error("Exception in exception handler", ...) */
        PyObject *old = PyErr_GetHandledException();
        PyErr_SetHandledException(e);
        r = tc_web_hook(ws, handler, TC_H_HANDLE_EXC, tc_web_handle_exception_impl, &e, 1);
        PyErr_SetHandledException(old);
        Py_XDECREF(old);
        Py_DECREF(e);
        if (r == NULL) {
            tc_web_log_handled(ws, TC_H_EXECUTE, TC_H_HANDLE_EXC, "app_log",
                               "Exception in exception handler");
            goto finally;
        }
        Py_DECREF(r);
    }
finally:
    /* finally: the prepared future for the HTTP server */
    if (PyErr_Occurred()) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        if (settle_prepared(hs, handler, 0) < 0) {
            PyErr_WriteUnraisable(handler);
        }
        PyErr_Restore(t, v, tb);
        return NULL;
    }
    if (settle_prepared(hs, handler, 0) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------ _execute as a coroutine
 *
 * For a handler whose prepare or verb method is a coroutine function, a
 * generator function or a @gen.coroutine, execute() runs _execute in an
 * asyncio Task as upstream does, but the Task's coroutine is a
 * _core._WebExecute: a small object that is a coroutine to asyncio
 * (send/throw/close/__await__/__next__, am_send for the Task's fast path,
 * registered with collections.abc.Coroutine by tornado_c/_webhandler.py)
 * and performs _execute's steps with the functions above.  It awaits the
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
    char first_stage;       /* with `first`: RUN_RESUME_PREPARE or RUN_RESUME_METHOD */
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
        stage = RUN_DONE;
        aw = NULL;
        switch (c->stage) {
        case XC_INIT:
            if (c->first != NULL) { /* _resume: result = await result */
                aw = c->first;
                c->first = NULL;
                stage = c->first_stage;
                break;
            }
            if (execute_steps(ws, c->handler, c->transforms, c->args, c->kwargs, &stage, &aw) <
                0) {
                goto raised;
            }
            Py_CLEAR(c->transforms);
            Py_CLEAR(c->args);
            Py_CLEAR(c->kwargs);
            break;
        case XC_PREPARE:
            if (steps_after_prepare(ws, c->handler, &stage, &aw) < 0) {
                goto raised;
            }
            break;
        default: /* XC_METHOD */
            if (auto_finish(ws, c->handler) < 0) {
                goto raised;
            }
            break;
        }
        if (stage == RUN_DONE) {
            goto finally;
        }
        status = start_await(c, aw, stage == RUN_RESUME_PREPARE ? XC_PREPARE : XC_METHOD,
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
    if (c->handler != NULL && settle_prepared(&ws->h, c->handler, 0) < 0) {
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
                "(csrc/web/execute.c)."},
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
 * RUN_RESUME_PREPARE) or the method (RUN_RESUME_METHOD).
 * 0, or -1 with an exception set. */
static int
start_task(tc_web_state *ws, PyObject *loop, PyObject *handler, PyObject *transforms,
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

/* The running loop when there is one and it has no task factory (new
 * reference), else None; NULL with an exception set. */
static PyObject *
plain_running_loop(tc_web_handler_state *hs)
{
    PyObject *loop = PyObject_CallNoArgs(hs->get_running_loop), *v;
    int k;
    if (loop == NULL || loop == Py_None) {
        return loop;
    }
    /* loop.get_task_factory(): asyncio's just returns loop._task_factory */
    k = tc_web_is_method(loop, hs->s_get_task_factory, hs->get_task_factory);
    if (k < 0) {
        Py_DECREF(loop);
        return NULL;
    }
    v = k ? PyObject_GetAttr(loop, hs->s_task_factory)
          : PyObject_CallMethodNoArgs(loop, hs->s_get_task_factory);
    if (v == NULL) {
        Py_DECREF(loop);
        return NULL;
    }
    if (v != Py_None) {
        Py_DECREF(loop);
        loop = Py_NewRef(Py_None);
    }
    Py_DECREF(v);
    return loop;
}

/* _HandlerDelegate.execute(self) */
PyObject *
tc_web_delegate_execute_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                             Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *app = NULL, *settings = NULL, *v = NULL, *loop = NULL, *cls = NULL;
    PyObject *request = NULL, *kw = NULL, *handler = NULL, *transforms = NULL, *r = NULL;
    PyObject *pargs = NULL, *pkw = NULL, *method = NULL, *low = NULL;
    int k, in_task = 0;
    if (nargs != 0 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        goto upstream;
    }
    /* streaming bodies, debug-mode cache resets: upstream's */
    v = PyObject_GetAttr(self, hs->s_stream_request_body);
    k = v ? PyObject_IsTrue(v) : -1;
    Py_CLEAR(v);
    if (k != 0) {
        if (k < 0) {
            return NULL;
        }
        goto upstream;
    }
    app = PyObject_GetAttr(self, hs->s_application);
    settings = app ? PyObject_GetAttr(app, hs->s_settings) : NULL;
    if (settings == NULL) {
        goto done;
    }
    k = setting_false(settings, hs->s_compiled_template_cache);
    if (k == 0) {
        k = setting_false(settings, hs->s_static_hash_cache);
    }
    if (k != 0) {
        if (k < 0) {
            goto done;
        }
        goto upstream;
    }
    /* the running loop, without a task factory */
    loop = plain_running_loop(hs);
    if (loop == NULL) {
        goto done;
    }
    if (loop == Py_None) {
        goto upstream;
    }
    /* the handler class's _execute, prepare and verb method */
    cls = PyObject_GetAttr(self, hs->s_handler_class);
    request = cls ? PyObject_GetAttr(self, hs->s_request) : NULL;
    method = request ? PyObject_GetAttr(request, hs->s_method) : NULL;
    if (method == NULL) {
        goto done;
    }
    if (!PyType_Check(cls)) {
        goto upstream;
    }
    if (_PyType_Lookup((PyTypeObject *)cls, hs->s_execute) != hs->orig[TC_H_EXECUTE]) {
        goto upstream;
    }
    /* a coroutine prepare or method: _execute in a Task (start_task) */
    in_task = is_async_callable(ws, _PyType_Lookup((PyTypeObject *)cls, hs->name[TC_H_PREPARE]));
    if (!in_task && PyUnicode_Check(method)) {
        low = lower_method(hs, method);
        if (low == NULL) {
            goto done;
        }
        in_task = is_async_callable(ws, _PyType_Lookup((PyTypeObject *)cls, low));
    }
    /* self.handler = self.handler_class(self.application, self.request,
     *                                   **self.handler_kwargs) */
    kw = PyObject_GetAttr(self, hs->s_handler_kwargs);
    if (kw == NULL) {
        goto done;
    }
    {
        PyObject *cargs[2] = {app, request};
        PyTypeObject *ct = (PyTypeObject *)cls;
        if (PyDict_CheckExact(kw) && PyDict_GET_SIZE(kw) == 0 &&
            Py_TYPE(cls)->tp_call == PyType_Type.tp_call &&
            ct->tp_new == PyBaseObject_Type.tp_new &&
            _PyType_Lookup(ct, hs->s_init) == hs->ours[TC_H_INIT]) {
            /* what type.__call__ does (object.__new__, then __init__),
             * with RequestHandler.__init__ ours: called in C directly */
            PyObject *empty = PyTuple_New(0);
            handler = empty ? PyBaseObject_Type.tp_new(ct, empty, NULL) : NULL;
            Py_XDECREF(empty);
            if (handler != NULL && PyObject_TypeCheck(handler, ct)) {
                v = tc_web_init_impl(ws, handler, cargs, 2, NULL);
                if (v == NULL) {
                    Py_CLEAR(handler);
                } else if (v != Py_None) {
                    PyErr_Format(PyExc_TypeError, "__init__() should return None, not '%.200s'",
                                 Py_TYPE(v)->tp_name);
                    Py_CLEAR(handler);
                }
                Py_CLEAR(v);
            }
        } else if (PyDict_CheckExact(kw)) {
            handler = PyObject_VectorcallDict(cls, cargs, 2, PyDict_GET_SIZE(kw) ? kw : NULL);
        } else {
            PyObject *d = PyDict_New();
            if (d != NULL && PyDict_Merge(d, kw, 1) == 0) {
                handler = PyObject_VectorcallDict(cls, cargs, 2, d);
            }
            Py_XDECREF(d);
        }
    }
    if (handler == NULL || PyObject_SetAttr(self, hs->s_handler, handler) < 0) {
        goto done;
    }
    /* transforms = [t(self.request) for t in self.application.transforms] */
    v = PyObject_GetAttr(app, hs->s_transforms_attr);
    if (v == NULL) {
        goto done;
    }
    transforms = PyList_New(0);
    {
        PyObject *it = transforms ? PyObject_GetIter(v) : NULL, *t;
        Py_CLEAR(v);
        if (it == NULL) {
            goto done;
        }
        while ((t = PyIter_Next(it)) != NULL) {
            PyObject *req = PyObject_GetAttr(self, hs->s_request);
            PyObject *obj = req ? PyObject_CallOneArg(t, req) : NULL;
            Py_XDECREF(req);
            Py_DECREF(t);
            if (obj == NULL || PyList_Append(transforms, obj) < 0) {
                Py_XDECREF(obj);
                break;
            }
            Py_DECREF(obj);
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            goto done;
        }
    }
    /* the instance may still have _execute of its own (initialize) */
    {
        PyObject *callable = NULL;
        int unbound;
        k = tc_web_hook_resolve(ws, handler, TC_H_EXECUTE, &callable, &unbound);
        if (k < 0) {
            goto done;
        }
        if (k == 0) {
            Py_DECREF(callable);
            r = PyObject_CallFunctionObjArgs(hs->start_upstream, self, transforms, NULL);
            goto done;
        }
    }
    /* *self.path_args, **self.path_kwargs, read now as upstream does */
    v = PyObject_GetAttr(self, hs->s_path_args);
    pargs = v ? PySequence_Tuple(v) : NULL;
    Py_CLEAR(v);
    v = pargs ? PyObject_GetAttr(self, hs->s_path_kwargs) : NULL;
    pkw = v ? PyDict_New() : NULL;
    if (pkw == NULL || PyDict_Merge(pkw, v, 1) < 0) {
        goto done;
    }
    Py_CLEAR(v);
    if (in_task) {
        if (start_task(ws, loop, handler, transforms, pargs, pkw, NULL, 0) < 0) {
            goto done;
        }
    } else {
        PyObject *cargs[6] = {loop, hs->run_execute, handler, transforms, pargs, pkw};
        v = PyObject_VectorcallMethod(hs->s_call_soon, cargs, 6, NULL);
        if (v == NULL) {
            goto done;
        }
        Py_CLEAR(v);
    }
    /* return self.handler._prepared_future */
    v = PyObject_GetAttr(self, hs->s_handler);
    r = v ? PyObject_GetAttr(v, hs->s_prepared_future) : NULL;
    goto done;
upstream:
    r = tc_web_hook_call(self, hs->orig[TC_H_DELEGATE_EXECUTE], 1, args, nargs, kwnames);
done:
    Py_XDECREF(app);
    Py_XDECREF(settings);
    Py_XDECREF(v);
    Py_XDECREF(loop);
    Py_XDECREF(cls);
    Py_XDECREF(request);
    Py_XDECREF(kw);
    Py_XDECREF(handler);
    Py_XDECREF(transforms);
    Py_XDECREF(pargs);
    Py_XDECREF(pkw);
    Py_XDECREF(method);
    Py_XDECREF(low);
    return r;
}

static PyMethodDef execute_functions[] = {
    {"_web_run_execute", (PyCFunction)(void (*)(void))fn_run_execute, METH_FASTCALL,
     "RequestHandler._execute's synchronous path (scheduled by _HandlerDelegate.execute)."},
    {NULL, NULL, 0, NULL},
};

/* the callable execute() schedules, bound to the module */
int
tc_web_execute_exec(PyObject *module, tc_web_state *ws)
{
    ws->h.run_execute = PyCFunction_NewEx(&execute_functions[0], module, NULL);
    if (ws->h.run_execute == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "_web_run_execute", ws->h.run_execute) < 0) {
        return -1;
    }
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
