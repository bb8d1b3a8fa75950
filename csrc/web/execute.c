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
int
tc_web_settle_prepared(tc_web_handler_state *hs, PyObject *handler, int unless_cancelled)
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
int
tc_web_auto_finish(tc_web_state *ws, PyObject *self)
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
 * TC_WEB_RUN_DONE, or TC_WEB_RUN_RESUME_METHOD and the method's awaitable
 * (new reference); -1 with the exception raised. */
int
tc_web_steps_after_prepare(tc_web_state *ws, PyObject *self, int *stage, PyObject **awaitable)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *req = NULL, *method = NULL, *v = NULL, *pa = NULL, *pk = NULL, *low = NULL;
    int r, ret = -1;
    *stage = TC_WEB_RUN_DONE;
    /* if self._prepared_future is not None:
     *     future_set_result_unless_cancelled(self._prepared_future, None)
     * if self._finished: return */
    if (tc_web_settle_prepared(hs, self, 1) < 0) {
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
        *stage = TC_WEB_RUN_RESUME_METHOD;
        *awaitable = v;
        v = NULL;
        ret = 0;
        goto done;
    }
    Py_CLEAR(v);
    ret = tc_web_auto_finish(ws, self);
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
 * TC_WEB_RUN_DONE, or the stage and the awaitable (new reference) to resume
 * with; -1 with the exception raised. */
int
tc_web_execute_steps(tc_web_state *ws, PyObject *self, PyObject *transforms, PyObject *args,
                     PyObject *kwargs, int *stage, PyObject **awaitable)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *req = NULL, *method = NULL, *v = NULL, *pa = NULL, *pk = NULL;
    int r, ret = -1;
    *stage = TC_WEB_RUN_DONE;
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
        *stage = TC_WEB_RUN_RESUME_PREPARE;
        *awaitable = v;
        v = NULL;
        ret = 0;
        goto done;
    }
    Py_CLEAR(v);
    ret = tc_web_steps_after_prepare(ws, self, stage, awaitable);
done:
    Py_XDECREF(req);
    Py_XDECREF(method);
    Py_XDECREF(v);
    Py_XDECREF(pa);
    Py_XDECREF(pk);
    return ret;
}

static PyObject *plain_running_loop(tc_web_handler_state *hs);

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
    if (tc_web_execute_steps(ws, handler, args[1], args[2], args[3], &stage, &awaitable) == 0) {
        if (stage != TC_WEB_RUN_DONE) {
            /* the rest in a Task, upstream's code after that await: the C
             * coroutine, or _webhandler._resume when the loop now has a
             * task factory */
            PyObject *loop = plain_running_loop(hs);
            if (loop == NULL) {
                r = NULL;
            } else if (loop != Py_None) {
                r = tc_web_start_task(ws, loop, handler, NULL, NULL, NULL, awaitable, stage) < 0
                        ? NULL
                        : Py_NewRef(Py_None);
            } else {
                r = PyObject_CallFunction(hs->start_resume, "OOi", handler, awaitable,
                                          stage == TC_WEB_RUN_RESUME_PREPARE);
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
        if (tc_web_settle_prepared(hs, handler, 0) < 0) {
            PyErr_WriteUnraisable(handler);
        }
        PyErr_Restore(t, v, tb);
        return NULL;
    }
    if (tc_web_settle_prepared(hs, handler, 0) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
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
    /* a coroutine prepare or method: _execute in a Task (tc_web_start_task) */
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
        if (tc_web_start_task(ws, loop, handler, transforms, pargs, pkw, NULL, 0) < 0) {
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
    return tc_web_execute_coro_exec(module, ws);
}
