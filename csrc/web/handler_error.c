/* RequestHandler's error path in C: _handle_request_exception, send_error
 * and log_exception, with upstream's order of calls (see handler.c for the
 * design; write_error's default page is in handler_args.c).
 *
 * Every method upstream's code calls on the handler here (finish, clear,
 * set_status, write_error, log_exception, send_error) goes through the hook
 * dispatch, so a subclass's override is the one called, with upstream's
 * arguments (keywords where upstream passes keywords).
 *
 * Log records.  A record carries the place it was logged from (pathname,
 * lineno, funcName: the innermost Python frame).  So that each record is
 * upstream's to the byte, whenever a record would be emitted C calls
 * upstream's own function for that step: log_exception when there is
 * something to log (an HTTPError with a log message, or any other
 * exception), send_error after the headers were written.  C handles the
 * silent cases, which are the common ones: an HTTPError without log
 * message (every 404/405 and most raise HTTPError(4xx)) logs nothing.  The
 * two records upstream's try/excepts log when a method raised while an
 * error was being handled ("Uncaught exception in write_error", "Error in
 * exception logger") are made by tornado_c/_webhandler.py's _log_from with
 * the place of upstream's line that logs them.
 */
#include "common.h"
#include "state.h"
#include "web/web.h"
#include "web/handler.h"

static PyObject *
call_orig(tc_web_state *ws, int hook, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    return tc_web_hook_call(self, ws->h.orig[hook], 1, args, nargs, kwnames);
}

/* self.<hook>(*args, **kw) with vectorcall keywords: `impl` when the name
 * resolves to ours, else what Python would call. */
static PyObject *
hook_kw(tc_web_state *ws, PyObject *self, int hook, tc_web_impl impl, PyObject *const *args,
        Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *callable = NULL, *r;
    int unbound = 0;
    int k = tc_web_hook_resolve(ws, self, hook, &callable, &unbound);
    if (k < 0) {
        return NULL;
    }
    if (k == 1) {
        return impl(ws, self, args, nargs, kwnames);
    }
    r = tc_web_hook_call(self, callable, unbound, args, nargs, kwnames);
    Py_DECREF(callable); /* new reference from tc_web_hook_resolve */
    return r;
}

/* bool(getattr(self, name)): 1, 0, or -1 with an exception set */
static int
attr_true(PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    int r = v ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    return r;
}

/* `except Exception: <logger>.error(msg, exc_info=True)` in upstream's
 * function orig[hook], after its call of the method name[after], for the exception set: logs it while it is the
 * handled exception (what sys.exc_info() returns in an except clause), with
 * upstream's line as the record's place (tornado_c/_webhandler.py's
 * _log_from), and clears it.  An exception that is not an
 * Exception stays set (it propagates, as from upstream's try/except).
 * 0, or -1 with an exception set. */
int
tc_web_log_handled(tc_web_state *ws, int hook, int after, const char *logger_name,
                   const char *msg)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *exc, *old, *logger, *m = NULL, *r = NULL;
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    exc = tc_web_take_exception(); /* new reference */
    logger = PyDict_GetItemString(hs->web_globals, logger_name); /* borrowed */
    if (logger == NULL) {
        Py_DECREF(exc);
        PyErr_Format(PyExc_NameError, "name '%s' is not defined", logger_name);
        return -1;
    }
    m = PyUnicode_FromString(msg);
    if (m == NULL) {
        Py_DECREF(exc);
        return -1;
    }
    old = PyErr_GetHandledException();
    PyErr_SetHandledException(exc);
    PyObject *cargs[4] = {logger, hs->orig[hook], m, hs->name[after]};
    r = PyObject_Vectorcall(hs->log_from, cargs, 4, NULL);
    PyErr_SetHandledException(old);
    Py_XDECREF(old);
    Py_DECREF(exc);
    Py_DECREF(m);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* send_error(self, status_code=500, **kwargs) */
PyObject *
tc_web_send_error_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *code, *reason = Py_None, *exc_info = NULL, *v, *exception;
    PyObject *own_reason = NULL; /* strong: exception.reason when it is used */
    PyObject *stack[7];
    int r;
    if (nargs > 1 || nkw > 6) {
        return call_orig(ws, TC_H_SEND_ERROR, self, args, nargs, kwnames);
    }
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, k); /* borrowed */
        if (PyUnicode_CompareWithASCIIString(kw, "status_code") == 0) {
            return call_orig(ws, TC_H_SEND_ERROR, self, args, nargs, kwnames);
        }
        if (PyUnicode_CompareWithASCIIString(kw, "reason") == 0) {
            reason = args[nargs + k];
        } else if (PyUnicode_CompareWithASCIIString(kw, "exc_info") == 0) {
            exc_info = args[nargs + k];
        }
    }
    code = nargs ? args[0] : hs->int_500; /* borrowed */
    /* if self._headers_written: upstream's (it logs from there) */
    r = attr_true(self, hs->s_headers_written);
    if (r != 0) {
        if (r < 0) {
            return NULL;
        }
        return call_orig(ws, TC_H_SEND_ERROR, self, args, nargs, kwnames);
    }
    v = tc_web_hook(ws, self, TC_H_CLEAR, tc_web_clear_impl, NULL, 0);
    if (v == NULL) {
        return NULL;
    }
    Py_DECREF(v);
    if (exc_info != NULL) {
        /* exception = kwargs["exc_info"][1]
         * if isinstance(exception, HTTPError) and exception.reason: ... */
        PyObject *one = PyLong_FromLong(1); /* a cached small int */
        if (one == NULL) {
            return NULL;
        }
        exception = PyObject_GetItem(exc_info, one); /* Python's [1], its errors */
        Py_DECREF(one);
        if (exception == NULL) {
            return NULL;
        }
        r = PyObject_IsInstance(exception, hs->HTTPError);
        if (r > 0) {
            own_reason = PyObject_GetAttr(exception, hs->s_reason_attr);
            r = own_reason ? PyObject_IsTrue(own_reason) : -1;
            if (r > 0) {
                reason = own_reason;
            }
        }
        Py_DECREF(exception);
        if (r < 0) {
            Py_XDECREF(own_reason);
            return NULL;
        }
    }
    /* self.set_status(status_code, reason=reason) */
    stack[0] = code;
    stack[1] = reason;
    v = hook_kw(ws, self, TC_H_SET_STATUS, tc_web_set_status_impl, stack, 1, hs->kw_reason);
    Py_XDECREF(own_reason);
    if (v == NULL) {
        return NULL;
    }
    Py_DECREF(v);
    /* try: if status_code != 304: self.write_error(status_code, **kwargs)
     * except Exception: app_log.error("Uncaught exception in write_error", ...) */
    r = PyObject_RichCompareBool(code, hs->int_304, Py_NE);
    if (r < 0) {
        v = NULL;
    } else if (r) {
        stack[0] = code;
        for (Py_ssize_t k = 0; k < nkw; k++) {
            stack[k + 1] = args[nargs + k];
        }
        v = hook_kw(ws, self, TC_H_WRITE_ERROR, tc_web_write_error_impl, stack, 1,
                    nkw ? kwnames : NULL);
    } else {
        v = Py_NewRef(Py_None);
    }
    if (v == NULL) {
        if (tc_web_log_handled(ws, TC_H_SEND_ERROR, TC_H_WRITE_ERROR, "app_log",
                               "Uncaught exception in write_error") < 0) {
            return NULL;
        }
    } else {
        Py_DECREF(v);
    }
    /* if not self._finished: self.finish() */
    r = attr_true(self, hs->s_finished);
    if (r < 0) {
        return NULL;
    }
    if (!r) {
        v = tc_web_hook(ws, self, TC_H_FINISH, tc_web_finish_impl, NULL, 0);
        if (v == NULL) {
            return NULL;
        }
        Py_DECREF(v);
    }
    Py_RETURN_NONE;
}

static const char *const names_log_exception[] = {"typ", "value", "tb"};

/* log_exception(self, typ, value, tb).  An HTTPError whose get_message is
 * upstream's and whose _log_message is empty logs nothing (upstream calls
 * nothing either); anything else is upstream's function, which logs. */
PyObject *
tc_web_log_exception_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *a[3], *value;
    int r;
    if (tc_web_bind(names_log_exception, 3, 3, args, nargs, kwnames, a)) {
        goto upstream;
    }
    value = a[1]; /* borrowed */
    r = PyObject_IsInstance(value, hs->HTTPError);
    if (r < 0) {
        return NULL;
    }
    if (!r || _PyType_Lookup(Py_TYPE(value), hs->s_get_message) != hs->get_message) {
        goto upstream;
    }
    /* get_message() returns _log_message itself when it is false */
    r = attr_true(value, hs->s__log_message);
    if (r <= 0) {
        return r < 0 ? NULL : Py_NewRef(Py_None); /* nothing to log */
    }
upstream:
    return call_orig(ws, TC_H_LOG_EXCEPTION, self, args, nargs, kwnames);
}

static const char *const names_handle[] = {"e"};

/* _handle_request_exception(self, e), with sys.exc_info() as the caller's */
PyObject *
tc_web_handle_exception_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                             Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    PyObject *e, *Finish, *v = NULL, *cur = NULL, *ei[3] = {Py_None, Py_None, Py_None};
    PyObject *tb = NULL, *exc_info = NULL, *code = NULL, *ret = NULL;
    int r;
    if (tc_web_bind(names_handle, 1, 1, args, nargs, kwnames, &e)) {
        return call_orig(ws, TC_H_HANDLE_EXC, self, args, nargs, kwnames);
    }
    /* if isinstance(e, Finish): if not self._finished: self.finish(*e.args) */
    Finish = PyDict_GetItemWithError(hs->web_globals, hs->s_Finish); /* borrowed */
    if (Finish == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_NameError, "name 'Finish' is not defined");
        }
        return NULL;
    }
    r = PyObject_IsInstance(e, Finish);
    if (r < 0) {
        return NULL;
    }
    if (r) {
        r = attr_true(self, hs->s_finished);
        if (r != 0) {
            if (r < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
        PyObject *eargs = PyObject_GetAttr(e, hs->s_args);
        PyObject *seq = eargs ? PySequence_Tuple(eargs) : NULL;
        Py_XDECREF(eargs);
        if (seq == NULL) {
            return NULL;
        }
        if (PyTuple_GET_SIZE(seq) <= 6) {
            v = hook_kw(ws, self, TC_H_FINISH, tc_web_finish_impl, PySequence_Fast_ITEMS(seq),
                        PyTuple_GET_SIZE(seq), NULL);
        } else { /* more than any finish takes: whatever self.finish says */
            PyObject *f = PyObject_GetAttr(self, hs->s_finish);
            v = f ? PyObject_Call(f, seq, NULL) : NULL;
            Py_XDECREF(f);
        }
        Py_DECREF(seq);
        if (v == NULL) {
            return NULL;
        }
        Py_DECREF(v);
        Py_RETURN_NONE;
    }
    /* self.log_exception(*sys.exc_info()) */
    cur = PyErr_GetHandledException(); /* new reference or NULL */
    if (cur != NULL && cur != Py_None) {
        tb = PyException_GetTraceback(cur); /* new reference or NULL */
        ei[0] = (PyObject *)Py_TYPE(cur);
        ei[1] = cur;
        ei[2] = tb ? tb : Py_None;
    }
    v = tc_web_hook(ws, self, TC_H_LOG_EXCEPTION, tc_web_log_exception_impl, ei, 3);
    if (v == NULL) {
        /* except Exception: app_log.error("Error in exception logger", ...) */
        if (tc_web_log_handled(ws, TC_H_HANDLE_EXC, TC_H_LOG_EXCEPTION, "app_log",
                               "Error in exception logger") < 0) {
            goto done;
        }
    }
    Py_CLEAR(v);
    /* if self._finished: return */
    r = attr_true(self, hs->s_finished);
    if (r != 0) {
        if (r > 0) {
            ret = Py_NewRef(Py_None);
        }
        goto done;
    }
    /* self.send_error(e.status_code if isinstance(e, HTTPError) else 500,
     *                 exc_info=sys.exc_info()) */
    r = PyObject_IsInstance(e, hs->HTTPError);
    if (r < 0) {
        goto done;
    }
    code = r ? PyObject_GetAttr(e, hs->s_status_code_attr) : Py_NewRef(hs->int_500);
    exc_info = code ? PyTuple_Pack(3, ei[0], ei[1], ei[2]) : NULL;
    if (exc_info == NULL) {
        goto done;
    }
    PyObject *sargs[2] = {code, exc_info};
    ret = hook_kw(ws, self, TC_H_SEND_ERROR, tc_web_send_error_impl, sargs, 1, hs->kw_exc_info);
done:
    Py_XDECREF(v);
    Py_XDECREF(cur);
    Py_XDECREF(tb);
    Py_XDECREF(code);
    Py_XDECREF(exc_info);
    return ret;
}

/* the constants this file uses, into the handler state (cleared with it) */
int
tc_web_error_exec(tc_web_state *ws)
{
    tc_web_handler_state *hs = &ws->h;
    if ((hs->int_500 = PyLong_FromLong(500)) == NULL ||
        (hs->kw_reason = Py_BuildValue("(s)", "reason")) == NULL ||
        (hs->kw_exc_info = Py_BuildValue("(s)", "exc_info")) == NULL ||
        (hs->s_reason_attr = PyUnicode_InternFromString("reason")) == NULL ||
        (hs->s_status_code_attr = PyUnicode_InternFromString("status_code")) == NULL ||
        (hs->s_get_message = PyUnicode_InternFromString("get_message")) == NULL ||
        (hs->s__log_message = PyUnicode_InternFromString("_log_message")) == NULL ||
        (hs->s_Finish = PyUnicode_InternFromString("Finish")) == NULL ||
        (hs->s_args = PyUnicode_InternFromString("args")) == NULL) {
        return -1;
    }
    return 0;
}
