/* Private to the web component (handler.c, handler_write.c, execute.c,
 * execute_coro.c, and routing.c, which hands the request to
 * _HandlerDelegate.execute): the descriptor's C signature, hook dispatch and
 * the method implementations they call on each other.  Other components use
 * web.h only. */
#ifndef TC_WEB_HANDLER_H
#define TC_WEB_HANDLER_H

#include "common.h"
#include "web/web.h"

/* A RequestHandler method in C: self (borrowed) and the arguments after
 * it, vectorcall style.  New reference, or NULL with an exception set. */
typedef PyObject *(*tc_web_impl)(tc_web_state *ws, PyObject *self, PyObject *const *args,
                                 Py_ssize_t nargs, PyObject *kwnames);

/* How self.<name[hook]> resolves: 1 when it is our descriptor or upstream's
 * original function (the C path may be taken), 0 with *callable (new
 * reference) to call through tc_web_hook_call (with self prepended when
 * *unbound), -1 with an exception set. */
TC_INTERNAL int tc_web_hook_resolve(tc_web_state *ws, PyObject *self, int hook,
                                    PyObject **callable, int *unbound);
/* 1 when obj.<name> is `func` itself, found on obj's class and not shadowed
 * by obj's own attributes (what obj.<name>() would call, self first), 0
 * when it is anything else, -1 with an exception set. */
TC_INTERNAL int tc_web_is_method(PyObject *obj, PyObject *name, PyObject *func);
TC_INTERNAL PyObject *tc_web_hook_call(PyObject *self, PyObject *callable, int unbound,
                                       PyObject *const *args, Py_ssize_t nargs,
                                       PyObject *kwnames);
/* self.<hook>(*args) (at most 6 arguments): `impl` when it resolves to
 * ours, None without a call when it resolves to upstream's no-op (impl
 * NULL), else what Python would call. */
TC_INTERNAL PyObject *tc_web_hook(tc_web_state *ws, PyObject *self, int hook, tc_web_impl impl,
                                  PyObject *const *args, Py_ssize_t nargs);
/* Python's argument binding for a method with parameters `names` (after
 * self), the first `nreq` required; out[i] borrowed or NULL.  1 (no
 * exception) when they do not bind: call upstream's function instead. */
TC_INTERNAL int tc_web_bind(const char *const *names, Py_ssize_t nparams,
                            Py_ssize_t nreq, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames, PyObject **out);
/* httputil.format_timestamp(time.time()), new reference */
TC_INTERNAL PyObject *tc_web_date_now(tc_web_state *ws);

/* RequestHandler.__init__ */
TC_INTERNAL PyObject *tc_web_init_impl(tc_web_state *, PyObject *, PyObject *const *,
                                       Py_ssize_t, PyObject *);
TC_INTERNAL PyObject *tc_web_clear_impl(tc_web_state *, PyObject *, PyObject *const *,
                                        Py_ssize_t, PyObject *);
TC_INTERNAL PyObject *tc_web_convert_impl(tc_web_state *, PyObject *, PyObject *const *,
                                          Py_ssize_t, PyObject *);
TC_INTERNAL PyObject *tc_web_set_header_impl(tc_web_state *, PyObject *, PyObject *const *,
                                             Py_ssize_t, PyObject *);
TC_INTERNAL PyObject *tc_web_clear_header_impl(tc_web_state *, PyObject *, PyObject *const *,
                                               Py_ssize_t, PyObject *);
TC_INTERNAL PyObject *tc_web_set_status_impl(tc_web_state *, PyObject *, PyObject *const *,
                                             Py_ssize_t, PyObject *);
TC_INTERNAL PyObject *tc_web_get_status_impl(tc_web_state *, PyObject *, PyObject *const *,
                                             Py_ssize_t, PyObject *);
TC_INTERNAL PyObject *tc_web_write_impl(tc_web_state *, PyObject *, PyObject *const *,
                                        Py_ssize_t, PyObject *);

TC_INTERNAL PyObject *tc_web_add_header_impl(tc_web_state *, PyObject *, PyObject *const *,
                                             Py_ssize_t, PyObject *);

/* handler_write.c */
/* hasattr(o, name): 1, 0, or -1 (an error other than AttributeError) */
TC_INTERNAL int tc_web_has_attr(PyObject *o, PyObject *name);
#define TC_WEB_IMPL(name)                                                               \
    TC_INTERNAL PyObject *name(tc_web_state *, PyObject *, PyObject *const *, Py_ssize_t, \
                               PyObject *)
TC_WEB_IMPL(tc_web_flush_impl);
TC_WEB_IMPL(tc_web_finish_impl);
TC_WEB_IMPL(tc_web_should_not_send_impl);
TC_WEB_IMPL(tc_web_compute_etag_impl);
TC_WEB_IMPL(tc_web_set_etag_impl);
TC_WEB_IMPL(tc_web_check_etag_impl);
TC_WEB_IMPL(tc_web_clear_repr_impl);
TC_WEB_IMPL(tc_web_request_summary_impl);
TC_WEB_IMPL(tc_web_break_cycles_impl);
TC_WEB_IMPL(tc_web_app_log_request_impl);
TC_WEB_IMPL(tc_web_log_impl);

/* handler_args.c */
TC_WEB_IMPL(tc_web_decode_argument_impl);
TC_WEB_IMPL(tc_web_get_arguments__impl);
TC_WEB_IMPL(tc_web_get_argument__impl);
TC_WEB_IMPL(tc_web_get_argument_impl);
TC_WEB_IMPL(tc_web_get_query_argument_impl);
TC_WEB_IMPL(tc_web_get_body_argument_impl);
TC_WEB_IMPL(tc_web_get_arguments_impl);
TC_WEB_IMPL(tc_web_get_query_arguments_impl);
TC_WEB_IMPL(tc_web_get_body_arguments_impl);
TC_WEB_IMPL(tc_web_get_cookie_impl);
TC_WEB_IMPL(tc_web_redirect_impl);
TC_WEB_IMPL(tc_web_write_error_impl);

/* handler_error.c */
TC_WEB_IMPL(tc_web_send_error_impl);
TC_WEB_IMPL(tc_web_log_exception_impl);
TC_WEB_IMPL(tc_web_handle_exception_impl);
TC_INTERNAL int tc_web_error_exec(tc_web_state *ws);
/* `except Exception: <logger_name>.error(msg, exc_info=True)` as upstream's
 * orig[hook] logs it after calling self.<name[after]>, for the exception
 * set (cleared when it is an Exception and was logged).  0, or -1 with an
 * exception set. */
TC_INTERNAL int tc_web_log_handled(tc_web_state *ws, int hook, int after,
                                   const char *logger_name, const char *msg);

/* handler_cookie.c */
TC_WEB_IMPL(tc_web_set_cookie_impl);
TC_WEB_IMPL(tc_web_clear_cookie_impl);
TC_INTERNAL int tc_web_cookie_exec(tc_web_state *ws);
/* takes "http.cookies" and "timezone.utc" from _web_handler_setup's cfg */
TC_INTERNAL int tc_web_cookie_setup(tc_web_state *ws, PyObject *cfg);
TC_INTERNAL int tc_web_cookie_traverse(tc_web_state *ws, visitproc visit, void *arg);
TC_INTERNAL void tc_web_cookie_clear(tc_web_state *ws);

/* execute.c */
/* The exception being raised, normalized, with its traceback; new
 * reference, the error indicator cleared. */
TC_INTERNAL PyObject *tc_web_take_exception(void);
TC_WEB_IMPL(tc_web_cross_origin_impl);
TC_WEB_IMPL(tc_web_delegate_execute_impl);
TC_INTERNAL int tc_web_execute_exec(PyObject *module, tc_web_state *ws);
/* _execute's steps, for execute_coro.c (see there): where they stopped */
enum { TC_WEB_RUN_DONE, TC_WEB_RUN_RESUME_PREPARE, TC_WEB_RUN_RESUME_METHOD };
/* handler._prepared_future settled; 0, or -1 with an exception set */
TC_INTERNAL int tc_web_settle_prepared(tc_web_handler_state *hs, PyObject *handler,
                                       int unless_cancelled);
/* the auto-finish after the method; 0, or -1 with the exception raised */
TC_INTERNAL int tc_web_auto_finish(tc_web_state *ws, PyObject *self);
/* _execute's body up to the first awaitable, and from the end of prepare()
 * on: 0 with *stage (and the awaitable, new reference, unless
 * TC_WEB_RUN_DONE), or -1 with the exception raised */
TC_INTERNAL int tc_web_execute_steps(tc_web_state *ws, PyObject *self, PyObject *transforms,
                                     PyObject *args, PyObject *kwargs, int *stage,
                                     PyObject **awaitable);
TC_INTERNAL int tc_web_steps_after_prepare(tc_web_state *ws, PyObject *self, int *stage,
                                           PyObject **awaitable);

/* execute_coro.c */
/* handler._execute in a Task of `loop` running a _core._WebExecute, or the
 * rest of it from awaiting `first` on (see there); 0, or -1 with an
 * exception set */
TC_INTERNAL int tc_web_start_task(tc_web_state *ws, PyObject *loop, PyObject *handler,
                                  PyObject *transforms, PyObject *args, PyObject *kwargs,
                                  PyObject *first, int first_stage);
/* the _WebExecute type, the set of running Tasks; called by
 * tc_web_execute_exec */
TC_INTERNAL int tc_web_execute_coro_exec(PyObject *module, tc_web_state *ws);

#endif /* TC_WEB_HANDLER_H */
