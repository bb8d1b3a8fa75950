/* loop component: the asyncio event loop on libuv (tornado_c._core.Loop).
 *
 * One iteration (run_once) does what asyncio's BaseEventLoop._run_once does:
 *
 *   1. wait for I/O (tc_loop_poll, poll.c): no wait if callbacks are ready
 *      or the loop is stopping, else until the earliest timer (or forever);
 *      the readers/writers of ready fds go to the `due` queue, and so does
 *      what transports hold back (tc_loop_hold_io, loop.h);
 *   2. move every timer whose deadline has passed (by uv_hrtime, never by
 *      libuv's millisecond clock) to the due queue (timer.c), and put the
 *      due queue in the ready queue behind the callbacks that were ready
 *      before the poll (and ahead of what callbacks run by libuv inside
 *      the poll queued);
 *   3. run the callbacks that are ready now; what they schedule runs in the
 *      next iteration;
 *   4. run the calls deferred with tc_loop_defer (corked output).
 *
 * The GIL is released only while the loop blocks in the poll (poll.c); every
 * callback that touches Python re-takes it with TC_LOOP_ENTER.
 *
 * This file: the ready queue, call_soon / call_soon_threadsafe, exceptions
 * and the exception handler, the future helpers of loop.h, deferred calls,
 * run_forever, signals, closing, the Loop type and the component's exec.
 * The loop's other files share loop/internal.h:
 *
 *   timer.c      call_later / call_at: the timer heap
 *   poll.c       add_reader / add_writer (a private epoll set) and the two
 *                ways an iteration waits
 *   handle.c     Handle and TimerHandle
 *   test_api.c   the test build's entry points (_uv_selftest)
 *   uvio.c       the libuv stream core the transports and the stream
 *                component share (uvio.h)
 *
 * and the transports, each with its private header:
 *
 *   transport.c  StreamTransport, the asyncio transport on TCP and Unix
 *                sockets: its I/O; transport_py.c its Python face; server.c
 *                its Server (transport.h, with the plumbing both transports
 *                share)
 *   tls.c        the steady state of the stdlib's SSLProtocol (tls.h)
 *   udp.c        DatagramTransport, UDP and Unix datagram sockets: its I/O;
 *                udp_py.c its Python face (udp.h)
 */
#include "internal.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

int
tc_loop_check(struct tc_state *st, PyObject *obj)
{
    return PyObject_TypeCheck(obj, st->loop->Loop_type);
}

/* ---------------------------------------------------------------------- */
/* the queues: ring buffers of strong references                          */

/* Room for n more entries without a failure.  0, or -1 with MemoryError. */
static int
ring_reserve(tc_loop_ring *r, Py_ssize_t n)
{
    Py_ssize_t ncap = r->cap ? r->cap : 64;
    PyObject **nb;
    if (r->len + n <= r->cap) {
        return 0;
    }
    while (ncap < r->len + n) {
        ncap *= 2;
    }
    nb = PyMem_Malloc(ncap * sizeof(PyObject *));
    if (nb == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < r->len; i++) {
        nb[i] = r->buf[(r->head + i) & (r->cap - 1)];
    }
    PyMem_Free(r->buf);
    r->buf = nb;
    r->head = 0;
    r->cap = ncap;
    return 0;
}

static inline int
ring_push(tc_loop_ring *r, PyObject *h) /* steals h */
{
    if (r->len == r->cap && ring_reserve(r, 1) < 0) {
        Py_DECREF(h);
        return -1;
    }
    r->buf[(r->head + r->len) & (r->cap - 1)] = h;
    r->len++;
    return 0;
}

static inline PyObject *
ring_pop(tc_loop_ring *r) /* new reference or NULL when empty */
{
    PyObject *h;
    if (r->len == 0) {
        return NULL;
    }
    h = r->buf[r->head];
    r->head = (r->head + 1) & (r->cap - 1);
    r->len--;
    return h;
}

int
tc_loop_ready_push(tc_loop *self, PyObject *h) /* steals h */
{
    return ring_push(&self->ready, h);
}

int
tc_loop_due_push(tc_loop *self, PyObject *h) /* steals h */
{
    return ring_push(&self->due, h);
}

static PyObject *
ready_pop(tc_loop *self) /* new reference or NULL when empty */
{
    return ring_pop(&self->ready);
}

/* After the poll: put the due queue in the ready queue behind its first
 * `nbefore` entries (the callbacks that were ready before the poll), ahead
 * of what callbacks run in the poll queued.  Never fails: without memory
 * for the reordering the due entries go at the end. */
static void
splice_due(tc_loop *self, Py_ssize_t nbefore)
{
    tc_loop_ring *r = &self->ready, *d = &self->due;
    Py_ssize_t nafter = r->len - nbefore;
    if (r->len == 0) {
        tc_loop_ring t = *r; /* swap: no copy (the common case) */
        *r = *d;
        *d = t;
        return;
    }
    if (nafter > 0 && nbefore == 0) {
        /* in front of what the poll's callbacks queued: no copy of those */
        if (ring_reserve(r, d->len) == 0) {
            for (Py_ssize_t i = d->len - 1; i >= 0; i--) {
                r->head = (r->head - 1) & (r->cap - 1);
                r->buf[r->head] = d->buf[(d->head + i) & (d->cap - 1)];
            }
            r->len += d->len;
            d->head = d->len = 0;
            return;
        }
        PyErr_Clear();
    }
    else if (nafter > 0) {
        /* rebuild: [before][due][after] */
        Py_ssize_t total = r->len + d->len, ncap = r->cap;
        PyObject **nb;
        while (ncap < total) {
            ncap *= 2;
        }
        nb = PyMem_Malloc(ncap * sizeof(PyObject *));
        if (nb != NULL) {
            Py_ssize_t k = 0;
            for (Py_ssize_t i = 0; i < nbefore; i++) {
                nb[k++] = r->buf[(r->head + i) & (r->cap - 1)];
            }
            while (d->len > 0) {
                nb[k++] = ring_pop(d);
            }
            for (Py_ssize_t i = nbefore; i < r->len; i++) {
                nb[k++] = r->buf[(r->head + i) & (r->cap - 1)];
            }
            PyMem_Free(r->buf);
            r->buf = nb;
            r->head = 0;
            r->len = total;
            r->cap = ncap;
            return;
        }
        PyErr_Clear();
    }
    if (ring_reserve(r, d->len) < 0) {
        /* keep them in the due queue: run_once splices it next time */
        PyErr_Clear();
        return;
    }
    while (d->len > 0) {
        (void)ring_push(r, ring_pop(d)); /* cannot fail: reserved */
    }
}

/* ---------------------------------------------------------------------- */
/* exceptions                                                              */

static int
is_propagating(PyObject *type)
{
    return PyErr_GivenExceptionMatches(type, PyExc_SystemExit) ||
           PyErr_GivenExceptionMatches(type, PyExc_KeyboardInterrupt);
}

/* Keep the current exception to be raised by run_forever and stop the poll.
 * Always returns -1 and clears the error indicator. */
int
tc_loop_stash_exception(tc_loop *self)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (self->exc_type == NULL) {
        self->exc_type = t;
        self->exc_value = v;
        self->exc_tb = tb;
    }
    else {
        /* one is already on its way out; a second one is only reported */
        PyErr_Restore(t, v, tb);
        PyErr_WriteUnraisable((PyObject *)self);
    }
    if (self->uv != NULL) {
        uv_stop(self->uv);
    }
    return -1;
}

void
tc_loop_report_exception(tc_loop *loop, const char *message, PyObject *extra)
{
    tc_loop_state *ls = loop->ls;
    PyObject *t, *v, *tb, *ctx = NULL, *msg = NULL, *res;
    if (!PyErr_Occurred()) {
        return;
    }
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(v, tb);
    }
    if (is_propagating(t)) {
        PyErr_Restore(t, v, tb);
        tc_loop_stash_exception(loop);
        return;
    }
    ctx = PyDict_New();
    msg = PyUnicode_FromString(message);
    if (ctx == NULL || msg == NULL ||
        PyDict_SetItem(ctx, ls->str_message, msg) < 0 ||
        PyDict_SetItem(ctx, ls->str_exception, v) < 0 ||
        (extra != NULL && PyDict_Update(ctx, extra) < 0)) {
        PyErr_Clear();
        PyErr_Restore(t, v, tb);
        PyErr_WriteUnraisable((PyObject *)loop);
        goto done;
    }
    Py_CLEAR(t);
    Py_CLEAR(v);
    Py_CLEAR(tb);
    res = PyObject_CallMethodOneArg((PyObject *)loop,
                                    ls->str_call_exception_handler, ctx);
    if (res == NULL) {
        PyObject *t2, *v2, *tb2;
        PyErr_Fetch(&t2, &v2, &tb2);
        if (is_propagating(t2)) {
            PyErr_Restore(t2, v2, tb2);
            tc_loop_stash_exception(loop);
        }
        else {
            PyErr_Restore(t2, v2, tb2);
            PyErr_WriteUnraisable((PyObject *)loop);
        }
    }
    Py_XDECREF(res);
done:
    Py_XDECREF(ctx);
    Py_XDECREF(msg);
}

int
tc_loop_check_thread(tc_loop *self)
{
    if (tc_loop_in_other_thread(self)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Non-thread-safe operation invoked on an event loop "
                        "other than the current one");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* scheduling                                                              */

/* Debug mode, as asyncio: reject coroutines and non-callables at once
 * (EventLoop._check_callback) and record where the handle was created. */
static int
debug_check_callback(tc_loop *loop, PyObject *callback, const char *method)
{
    PyObject *r = PyObject_CallMethod((PyObject *)loop, "_check_callback", "Os",
                                      callback, method);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

static int
debug_record_source(tc_handle *h)
{
    PyFrameObject *frame = PyEval_GetFrame(); /* borrowed */
    PyObject *mod, *tb;
    if (frame == NULL) {
        return 0;
    }
    mod = PyImport_ImportModule("asyncio.format_helpers");
    if (mod == NULL) {
        return -1;
    }
    tb = PyObject_CallMethod(mod, "extract_stack", "O", (PyObject *)frame);
    Py_DECREF(mod);
    if (tb == NULL) {
        return -1;
    }
    PyObject *old = h->source_tb;
    h->source_tb = tb;
    Py_XDECREF(old);
    return 0;
}

tc_handle *
tc_loop_new_handle(tc_loop *loop, PyTypeObject *type, PyObject *callback,
                   PyObject *const *args, Py_ssize_t nargs, PyObject *context,
                   const char *method)
{
    tc_handle *h;
    if (loop->debug && method != NULL && debug_check_callback(loop, callback, method) < 0) {
        return NULL;
    }
    h = tc_handle_new(loop, type, callback, args, nargs, context);
    if (h != NULL && loop->debug && debug_record_source(h) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    return h;
}

PyObject *
tc_loop_call_soon(tc_loop *loop, PyObject *callback, PyObject *const *args,
                  Py_ssize_t nargs, PyObject *context)
{
    tc_handle *h;
    if (tc_loop_check_closed(loop) < 0) {
        return NULL;
    }
    if (loop->debug && tc_loop_check_thread(loop) < 0) {
        return NULL;
    }
    h = tc_loop_new_handle(loop, loop->ls->Handle_type, callback, args, nargs,
                           context, "call_soon");
    if (h == NULL) {
        return NULL;
    }
    Py_INCREF(h);
    if (tc_loop_ready_push(loop, (PyObject *)h) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    return (PyObject *)h;
}

int
tc_loop_call_io(tc_loop *loop, PyObject *callback, PyObject *const *args, Py_ssize_t nargs)
{
    tc_handle *h;
    if (!loop->in_poll) {
        PyObject *r = tc_loop_call_soon(loop, callback, args, nargs, NULL);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
        return 0;
    }
    if (tc_loop_check_closed(loop) < 0) {
        return -1;
    }
    h = tc_loop_new_handle(loop, loop->ls->Handle_type, callback, args, nargs, NULL,
                           "call_soon");
    if (h == NULL) {
        return -1;
    }
    return tc_loop_due_push(loop, (PyObject *)h); /* steals h */
}

/* Split `args` of a FASTCALL|KEYWORDS call that accepts only context=. */
int
tc_loop_parse_context(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                      const char *fname, PyObject **context)
{
    *context = NULL;
    if (kwnames != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, i);
            if (PyUnicode_CompareWithASCIIString(name, "context") != 0) {
                PyErr_Format(PyExc_TypeError,
                             "%s() got an unexpected keyword argument '%U'",
                             fname, name);
                return -1;
            }
            *context = args[nargs + i];
        }
    }
    if (*context == Py_None) {
        *context = NULL;
    }
    if (*context != NULL && !PyContext_CheckExact(*context)) {
        PyErr_Format(PyExc_TypeError,
                     "%s(): context must be a contextvars.Context, not %.100s",
                     fname, Py_TYPE(*context)->tp_name);
        return -1;
    }
    return 0;
}

static PyObject *
loop_call_soon(tc_loop *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "call_soon() missing 1 required positional argument: 'callback'");
        return NULL;
    }
    if (tc_loop_parse_context(args, nargs, kwnames, "call_soon", &context) < 0) {
        return NULL;
    }
    return tc_loop_call_soon(self, args[0], args + 1, nargs - 1, context);
}

static PyObject *
loop_call_soon_threadsafe(tc_loop *self, PyObject *const *args, size_t nargsf,
                          PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context, *h;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "call_soon_threadsafe() missing 1 required positional argument: 'callback'");
        return NULL;
    }
    if (tc_loop_parse_context(args, nargs, kwnames, "call_soon_threadsafe", &context) < 0 ||
        tc_loop_check_closed(self) < 0) {
        return NULL;
    }
    h = (PyObject *)tc_loop_new_handle(self, self->ls->Handle_type, args[0], args + 1,
                                       nargs - 1, context, "call_soon_threadsafe");
    if (h == NULL) {
        return NULL;
    }
    Py_INCREF(h);
    if (tc_loop_ready_push(self, h) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    /* The GIL is held, and close() takes it before closing the async handle,
     * so the handle is open here.  uv_async_send is thread-safe and cheap
     * when a wakeup is already pending. */
    if (self->async != NULL && self->thread_id != PyThread_get_thread_ident()) {
        uv_async_send(self->async);
    }
    return h;
}

/* ---------------------------------------------------------------------- */
/* futures (see loop.h)                                                    */

PyObject *
tc_loop_create_future(tc_loop *loop)
{
    tc_loop_state *ls = loop->ls;
    PyObject *args[1] = {(PyObject *)loop};
    /* asyncio.Future(loop=loop), without EventLoop.create_future()'s
     * Python frame */
    return PyObject_Vectorcall(ls->Future, args, 0, ls->kw_loop);
}

/* 1 if `guard` lets `fut` be resolved now, 0 if not, -1 on error. */
static int
future_guard_open(tc_loop_state *ls, PyObject *fut, tc_future_guard guard)
{
    PyObject *r;
    int t;
    if (guard == TC_FUTURE_NEW) {
        return 1;
    }
    r = PyObject_CallMethodNoArgs(
        fut, guard == TC_FUTURE_UNLESS_DONE ? ls->str_done : ls->str_cancelled);
    if (r == NULL) {
        return -1;
    }
    t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t < 0 ? -1 : !t;
}

static int
future_set_result(tc_loop_state *ls, PyObject *fut, PyObject *value,
                  tc_future_guard guard)
{
    PyObject *r;
    int open = future_guard_open(ls, fut, guard);
    if (open <= 0) {
        return open;
    }
    r = PyObject_CallMethodOneArg(fut, ls->str_set_result, value);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

int
tc_loop_future_set_result(tc_loop *loop, PyObject *fut, PyObject *value,
                          tc_future_guard guard)
{
    return future_set_result(loop->ls, fut, value, guard);
}

int
tc_loop_future_set_exception(tc_loop *loop, PyObject *fut, PyObject *exc,
                             tc_future_guard guard, int retrieve)
{
    tc_loop_state *ls = loop->ls;
    PyObject *r;
    int open = future_guard_open(ls, fut, guard);
    if (open < 0) {
        return -1;
    }
    if (open) {
        r = PyObject_CallMethodOneArg(fut, ls->str_set_exception, exc);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
    }
    if (retrieve) {
        r = PyObject_CallMethodNoArgs(fut, ls->str_exception);
        if (r == NULL) {
            if (!PyErr_ExceptionMatches(ls->CancelledError)) {
                return -1;
            }
            PyErr_Clear(); /* cancelled: there is nothing to retrieve */
        }
        Py_XDECREF(r);
    }
    return 0;
}

/* _set_result_unless_cancelled(fut): asyncio's
 * futures._set_result_unless_cancelled(fut, None), a C callable to
 * schedule with tc_loop_call_soon() (the transports' waiters). */
static PyObject *
fn_set_result_unless_cancelled(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_state *st = tc_get_state(module);
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "_set_result_unless_cancelled(fut)");
        return NULL;
    }
    if (future_set_result(st->loop, args[0], Py_None, TC_FUTURE_UNLESS_CANCELLED) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------- */
/* libuv callbacks                                                         */

static void
free_handle_cb(uv_handle_t *handle)
{
    tc_loop *loop = (tc_loop *)handle->loop->data;
    TC_LOOP_ENTER(loop);
    TC_LOOP_HANDLE_CLOSED(loop);
    PyMem_RawFree(handle);
}

static void
noop_async_cb(uv_async_t *Py_UNUSED(a))
{
}

static void
sigpoll_cb(uv_poll_t *p, int status, int events)
{
    tc_loop *loop = (tc_loop *)p->loop->data;
    char buf[256];
    PyObject *data, *res;
    Py_ssize_t total = 0;
    ssize_t n;
    (void)status;
    (void)events;
    TC_LOOP_ENTER(loop);
    /* Run Python-level signal handlers first.  Whatever they raise
     * (KeyboardInterrupt for SIGINT) leaves run_forever, as it leaves
     * select() in asyncio's loops. */
    if (PyErr_CheckSignals() < 0) {
        tc_loop_stash_exception(loop);
    }
    /* the wakeup socket carries one byte per signal number */
    while (loop->sigfd >= 0 && total < (Py_ssize_t)sizeof(buf)) {
        n = read(loop->sigfd, buf + total, sizeof(buf) - total);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        total += n;
    }
    if (total == 0) {
        return;
    }
    /* signals handled with add_signal_handler() */
    data = PyBytes_FromStringAndSize(buf, total);
    if (data == NULL) {
        tc_loop_stash_exception(loop);
        return;
    }
    res = PyObject_CallMethodOneArg((PyObject *)loop, loop->ls->str_handle_signals, data);
    Py_DECREF(data);
    if (res == NULL) {
        /* a signal handler that ran meanwhile raised */
        tc_loop_stash_exception(loop);
    }
    Py_XDECREF(res);
}

/* ---------------------------------------------------------------------- */
/* running                                                                 */

static int
run_ready_handle(tc_loop *self, tc_handle *h)
{
    int rc;
    double t0, dt, slow;
    PyObject *o, *r;
    if (!self->debug) {
        return tc_handle_run(h);
    }
    t0 = tc_loop_time(self);
    rc = tc_handle_run(h);
    dt = tc_loop_time(self) - t0;
    if (rc < 0) {
        return rc;
    }
    o = PyObject_GetAttr((PyObject *)self, self->ls->str_slow_duration);
    if (o == NULL) {
        PyErr_Clear();
        return 0;
    }
    slow = PyFloat_AsDouble(o);
    Py_DECREF(o);
    if (slow == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (dt >= slow) {
        o = PyFloat_FromDouble(dt);
        if (o == NULL) {
            return -1;
        }
        r = PyObject_CallMethodObjArgs((PyObject *)self, self->ls->str_log_slow,
                                       (PyObject *)h, o, NULL);
        Py_DECREF(o);
        if (r == NULL) {
            tc_loop_report_exception(self, "Error logging a slow callback", NULL);
        }
        Py_XDECREF(r);
    }
    return 0;
}

static int
raise_stashed(tc_loop *self)
{
    PyErr_Restore(self->exc_type, self->exc_value, self->exc_tb);
    self->exc_type = self->exc_value = self->exc_tb = NULL;
    return -1;
}

/* ------------------------------------------------------- deferred calls */

struct tc_loop_deferred {
    tc_loop_deferred_fn fn;
    PyObject *obj;                  /* strong */
};

int
tc_loop_defer(tc_loop *loop, tc_loop_deferred_fn fn, PyObject *obj)
{
    if (loop->deferred_len == loop->deferred_cap) {
        Py_ssize_t cap = loop->deferred_cap ? loop->deferred_cap * 2 : 64;
        struct tc_loop_deferred *d =
            PyMem_Realloc(loop->deferred, (size_t)cap * sizeof(*d));
        if (d == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        loop->deferred = d;
        loop->deferred_cap = cap;
    }
    Py_INCREF(obj);
    loop->deferred[loop->deferred_len].fn = fn;
    loop->deferred[loop->deferred_len].obj = obj;
    loop->deferred_len++;
    return 0;
}

/* Run the calls due now; calls deferred meanwhile wait for the next round.
 * The array is detached first, so a call may defer again (or the loop be
 * cleared) while it runs. */
static void
run_deferred(tc_loop *self)
{
    struct tc_loop_deferred *d = self->deferred;
    Py_ssize_t n = self->deferred_len, cap = self->deferred_cap;
    if (n == 0) {
        return;
    }
    self->deferred = NULL;
    self->deferred_len = self->deferred_cap = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        d[i].fn(d[i].obj);
        Py_DECREF(d[i].obj);
        if (PyErr_Occurred()) { /* fn broke its contract: never drop it */
            tc_loop_report_exception(self, "Exception in a deferred output call", NULL);
        }
    }
    if (self->deferred == NULL) { /* keep the allocation for the next round */
        self->deferred = d;
        self->deferred_cap = cap;
    }
    else {
        PyMem_Free(d);
    }
}

/* Drop the due calls without running them (the loop is going away). */
static void
drop_deferred(tc_loop *self)
{
    struct tc_loop_deferred *d = self->deferred;
    Py_ssize_t n = self->deferred_len;
    self->deferred = NULL;
    self->deferred_len = self->deferred_cap = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(d[i].obj);
    }
    PyMem_Free(d);
}

/* One iteration, in asyncio's order (see the top of this file and
 * tc_loop_hold_io in loop.h): the callbacks ready before the poll, then
 * what the poll made due (readers/writers, the I/O transports held back,
 * expired timers), then what callbacks run inside the poll queued. */
static int
run_once(tc_loop *self)
{
    Py_ssize_t ntodo, nbefore;

    if (self->due.len > 0) {
        /* left over when an exception ended the previous iteration early */
        splice_due(self, self->ready.len);
    }
    tc_loop_timers_prune(self);
    nbefore = self->ready.len;
    self->hold_io = nbefore > 0;
    self->in_poll = 1;
    if (tc_loop_poll(self) < 0) {
        self->in_poll = self->hold_io = 0;
        return -1;
    }
    self->in_poll = self->hold_io = 0;
    if (self->exc_type != NULL) {
        return raise_stashed(self);
    }
    if (tc_loop_timers_due(self, tc_loop_time(self)) < 0) {
        return -1;
    }
    if (self->due.len > 0) {
        splice_due(self, nbefore);
    }

    ntodo = self->ready.len;
    while (ntodo-- > 0) {
        tc_handle *h = (tc_handle *)ready_pop(self);
        int rc = 0;
        if (h == NULL) {
            break;
        }
        if (!h->cancelled) {
            rc = run_ready_handle(self, h);
        }
        tc_handle_release((PyObject *)h);
        if (rc < 0) {
            return -1;
        }
        if (self->exc_type != NULL) {
            return raise_stashed(self);
        }
    }
    run_deferred(self);
    if (self->exc_type != NULL) {
        return raise_stashed(self);
    }
    return 0;
}

static PyObject *
loop_run_forever_c(tc_loop *self, PyObject *Py_UNUSED(ignored))
{
    int rc = 0;
    if (tc_loop_check_closed(self) < 0) {
        return NULL;
    }
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "This event loop is already running");
        return NULL;
    }
    self->running = 1;
    self->thread_id = PyThread_get_thread_ident();
    for (;;) {
        if (run_once(self) < 0) {
            rc = -1;
            break;
        }
        if (self->stopping) {
            break;
        }
    }
    self->stopping = 0;
    self->running = 0;
    self->thread_id = 0;
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
loop_stop(tc_loop *self, PyObject *Py_UNUSED(ignored))
{
    self->stopping = 1;
    Py_RETURN_NONE;
}

static PyObject *
loop_is_running(tc_loop *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->running);
}

static PyObject *
loop_is_closed(tc_loop *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
loop_get_debug(tc_loop *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->debug);
}

static PyObject *
loop_set_debug_flag(tc_loop *self, PyObject *flag)
{
    int v = PyObject_IsTrue(flag);
    if (v < 0) {
        return NULL;
    }
    self->debug = (char)v;
    Py_RETURN_NONE;
}

static PyObject *
loop_set_signal_fd(tc_loop *self, PyObject *arg)
{
    int fd = PyLong_AsLong(arg);
    int r;
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (tc_loop_check_closed(self) < 0) {
        return NULL;
    }
    if (self->sigpoll != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "signal fd already set");
        return NULL;
    }
    self->sigpoll = PyMem_RawMalloc(sizeof(uv_poll_t));
    if (self->sigpoll == NULL) {
        return PyErr_NoMemory();
    }
    r = uv_poll_init(self->uv, self->sigpoll, fd);
    if (r < 0) {
        PyMem_RawFree(self->sigpoll);
        self->sigpoll = NULL;
        errno = -r;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    TC_LOOP_HANDLE_OPENED(self);
    uv_unref((uv_handle_t *)self->sigpoll);
    uv_poll_start(self->sigpoll, UV_READABLE, sigpoll_cb);
    self->sigfd = fd;
    self->uv_dirty = 1; /* libuv registers the fd in its next uv_run */
    Py_RETURN_NONE;
}

static PyObject *
loop_counts(tc_loop *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{snsnsnsnsi}", "ready", self->ready.len, "timers",
                         self->heap_len - self->timer_cancelled, "cancelled_timers",
                         self->timer_cancelled, "fds", self->fds_count,
                         "own_poll", (int)self->own_poll);
}

/* ---------------------------------------------------------------------- */
/* closing                                                                 */

static void
close_uv_handle(void *hp)
{
    uv_handle_t **h = (uv_handle_t **)hp;
    if (*h != NULL) {
        uv_close(*h, free_handle_cb);
        *h = NULL;
    }
}

/* Drop the queued callbacks, timers and readers/writers. */
static void
loop_drop_callbacks(tc_loop *self)
{
    PyObject *h;
    while ((h = ready_pop(self)) != NULL) {
        tc_handle_release((PyObject *)h);
    }
    while ((h = ring_pop(&self->due)) != NULL) {
        tc_handle_release((PyObject *)h);
    }
    tc_loop_timers_drop(self);
    tc_loop_fds_drop(self);
}

/* Close our own handles and, once libuv has run every close callback, the
 * uv loop itself.  Handles of other components that are still open keep the
 * uv loop allocated until dealloc. */
/* Run libuv without blocking so the close callbacks of closing handles run.
 * The uv loop itself stays allocated until dealloc: other components may
 * still create (and must then close) handles on a closed loop, and loop->uv
 * is valid for the whole life of the object. */
static void
loop_drain_closed(tc_loop *self)
{
    if (self->uv == NULL || self->draining) {
        return; /* uv_run must not be re-entered from a close callback */
    }
    self->draining = 1;
    self->block_in_poll = 0;
    for (int i = 0; i < 4; i++) {
        uv_run(self->uv, UV_RUN_NOWAIT);
        TC_LOOP_ENTER(self);
    }
    self->draining = 0;
}

static void
loop_release_uv(tc_loop *self)
{
    if (self->uv == NULL) {
        return;
    }
    close_uv_handle(&self->uvtimer);
    close_uv_handle(&self->async);
    close_uv_handle(&self->prepare);
    close_uv_handle(&self->iopoll);
    close_uv_handle(&self->sigpoll);
    self->sigfd = -1;
    if (self->epfd >= 0) {
        close(self->epfd);
        self->epfd = -1;
    }
    loop_drain_closed(self);
}

void
tc_loop_close_handle(tc_loop *loop, uv_handle_t *handle, uv_close_cb close_cb)
{
    if (uv_is_closing(handle)) {
        return;
    }
    uv_close(handle, close_cb);
    if (loop->closed && !loop->running) {
        /* nobody will run this uv loop again: run the close callback now */
        loop_drain_closed(loop);
    }
}

static PyObject *
loop_close(tc_loop *self, PyObject *Py_UNUSED(ignored))
{
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot close a running event loop");
        return NULL;
    }
    if (self->closed) {
        Py_RETURN_NONE;
    }
    /* output batched in the last iteration still goes out (try-writes) */
    run_deferred(self);
    self->closed = 1;
    loop_drop_callbacks(self);
    drop_deferred(self);
    loop_release_uv(self);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------- */
/* type                                                                    */

static int
init_handle(uv_handle_t **out, size_t size)
{
    *out = PyMem_RawMalloc(size);
    if (*out == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static PyObject *
loop_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    tc_loop *self = (tc_loop *)type->tp_alloc(type, 0);
    int r;
    if (self == NULL) {
        return NULL;
    }
    PyObject *module = tc_module_from_subtype(type, "tornado_c._core.Loop"); /* borrowed */
    tc_state *st = module != NULL ? tc_get_state(module) : NULL;
    self->module = Py_XNewRef(module);
    self->ls = st != NULL ? st->loop : NULL;
    self->epfd = -1;
    self->sigfd = -1;
    self->uv_dirty = 1;
    if (self->ls == NULL) {
        goto fail;
    }
    self->uv = PyMem_RawMalloc(sizeof(uv_loop_t));
    if (self->uv == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    r = uv_loop_init(self->uv);
    if (r < 0) {
        PyMem_RawFree(self->uv);
        self->uv = NULL;
        errno = -r;
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    self->uv->data = self; /* borrowed: the uv loop never outlives us */

    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    if (init_handle((uv_handle_t **)&self->uvtimer, sizeof(uv_timer_t)) < 0) {
        goto fail;
    }
    uv_timer_init(self->uv, self->uvtimer);
    TC_LOOP_HANDLE_OPENED(self);
    uv_unref((uv_handle_t *)self->uvtimer);

    if (init_handle((uv_handle_t **)&self->async, sizeof(uv_async_t)) < 0) {
        goto fail;
    }
    r = uv_async_init(self->uv, self->async, noop_async_cb);
    if (r < 0) {
        PyMem_RawFree(self->async);
        self->async = NULL;
        errno = -r;
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    TC_LOOP_HANDLE_OPENED(self);
    /* the async handle stays referenced: it keeps uv_run(ONCE) blocking
     * when nothing else is active */

    if (init_handle((uv_handle_t **)&self->prepare, sizeof(uv_prepare_t)) < 0) {
        goto fail;
    }
    uv_prepare_init(self->uv, self->prepare);
    TC_LOOP_HANDLE_OPENED(self);
    uv_prepare_start(self->prepare, tc_loop_prepare_cb);
    uv_unref((uv_handle_t *)self->prepare);

    if (init_handle((uv_handle_t **)&self->iopoll, sizeof(uv_poll_t)) < 0) {
        goto fail;
    }
    r = uv_poll_init(self->uv, self->iopoll, self->epfd);
    if (r < 0) {
        PyMem_RawFree(self->iopoll);
        self->iopoll = NULL;
        errno = -r;
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    TC_LOOP_HANDLE_OPENED(self);
    uv_unref((uv_handle_t *)self->iopoll);
    uv_poll_start(self->iopoll, UV_READABLE, tc_loop_iopoll_cb);
    return (PyObject *)self;

fail:
    Py_DECREF(self);
    return NULL;
}

/* A queued handle that nothing but the loop references and that the GC
 * does not track (see tc_handle_release) is part of the loop for the GC: its
 * references are visited as the loop's own, so a dropped, unclosed loop with
 * pending callbacks is still collected.  Any other handle is visited as an
 * object of its own (an untracked one then keeps the loop alive, as the
 * handle itself legitimately does). */
static int
visit_handle(PyObject *h, visitproc visit, void *arg)
{
    if (h == NULL) {
        return 0;
    }
    if (Py_REFCNT(h) == 1 && !PyObject_GC_IsTracked(h)) {
        return tc_handle_traverse((tc_handle *)h, visit, arg);
    }
    Py_VISIT(h);
    return 0;
}

static int
loop_traverse(tc_loop *self, visitproc visit, void *arg)
{
    int r;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->module);
    for (Py_ssize_t i = 0; i < self->ready.len; i++) {
        if ((r = visit_handle(self->ready.buf[(self->ready.head + i) & (self->ready.cap - 1)],
                              visit, arg)) != 0) {
            return r;
        }
    }
    for (Py_ssize_t i = 0; i < self->due.len; i++) {
        if ((r = visit_handle(self->due.buf[(self->due.head + i) & (self->due.cap - 1)],
                              visit, arg)) != 0) {
            return r;
        }
    }
    for (Py_ssize_t i = 0; i < self->heap_len; i++) {
        if ((r = visit_handle((PyObject *)self->heap[i], visit, arg)) != 0) {
            return r;
        }
    }
    for (Py_ssize_t i = 0; i < self->fds_cap; i++) {
        if ((r = visit_handle((PyObject *)self->fds[i].reader, visit, arg)) != 0 ||
            (r = visit_handle((PyObject *)self->fds[i].writer, visit, arg)) != 0) {
            return r;
        }
    }
    for (Py_ssize_t i = 0; i < self->deferred_len; i++) {
        Py_VISIT(self->deferred[i].obj);
    }
    Py_VISIT(self->exc_type);
    Py_VISIT(self->exc_value);
    Py_VISIT(self->exc_tb);
    Py_VISIT(self->live);
    /* the instance __dict__ of Python subclasses is visited by subtype_traverse */
    return 0;
}

static int
loop_clear(tc_loop *self)
{
    loop_drop_callbacks(self);
    drop_deferred(self);
    Py_CLEAR(self->exc_type);
    Py_CLEAR(self->exc_value);
    Py_CLEAR(self->exc_tb);
    Py_CLEAR(self->live);
    /* self->module is not cleared here: dealloc still reaches the module
     * state through `ls`; the module's own clear breaks the cycle */
    return 0;
}

static void
loop_dealloc(tc_loop *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    loop_clear(self);
    loop_release_uv(self);
    if (self->uv != NULL && uv_loop_close(self->uv) == 0) {
        PyMem_RawFree(self->uv);
        self->uv = NULL;
    }
    if (self->uv != NULL) {
        /* handles of other components are still open: they would call back
         * into a freed object, so the uv loop is leaked rather than freed */
        if (self->ls != NULL) {
            PyErr_WarnEx(PyExc_ResourceWarning,
                         "tornado_c loop deallocated with open libuv handles", 1);
            PyErr_Clear();
        }
        self->uv->data = NULL;
    }
    if (self->epfd >= 0) {
        close(self->epfd);
    }
    PyMem_Free(self->ready.buf);
    PyMem_Free(self->due.buf);
    PyMem_Free(self->heap);
    PyMem_Free(self->fds);
    PyObject *module = self->module; /* kept until now: `ls` points into its state */
    tp->tp_free((PyObject *)self);
    Py_XDECREF(module);
    Py_DECREF(tp);
}

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)

static PyMethodDef loop_type_methods[] = {
    {"call_soon", (PyCFunction)(void (*)(void))loop_call_soon, FASTKW,
     "call_soon(callback, *args, context=None): run callback in the next iteration."},
    {"call_soon_threadsafe", (PyCFunction)(void (*)(void))loop_call_soon_threadsafe, FASTKW,
     "Like call_soon(), callable from any thread; wakes the loop."},
    {"call_later", (PyCFunction)(void (*)(void))tc_loop_meth_call_later, FASTKW,
     "call_later(delay, callback, *args, context=None) -> TimerHandle"},
    {"call_at", (PyCFunction)(void (*)(void))tc_loop_meth_call_at, FASTKW,
     "call_at(when, callback, *args, context=None) -> TimerHandle"},
    {"time", (PyCFunction)tc_loop_meth_time, METH_NOARGS, "The loop's clock (time.monotonic())."},
    {"stop", (PyCFunction)loop_stop, METH_NOARGS, "Stop after the current iteration."},
    {"is_running", (PyCFunction)loop_is_running, METH_NOARGS, NULL},
    {"is_closed", (PyCFunction)loop_is_closed, METH_NOARGS, NULL},
    {"get_debug", (PyCFunction)loop_get_debug, METH_NOARGS, NULL},
    {"close", (PyCFunction)loop_close, METH_NOARGS,
     "Drop pending callbacks and free the libuv loop (the loop must not run)."},
    {"add_reader", (PyCFunction)(void (*)(void))tc_loop_meth_add_reader, METH_FASTCALL,
     "add_reader(fd, callback, *args)"},
    {"add_writer", (PyCFunction)(void (*)(void))tc_loop_meth_add_writer, METH_FASTCALL,
     "add_writer(fd, callback, *args)"},
    {"remove_reader", (PyCFunction)tc_loop_meth_remove_reader, METH_O,
     "remove_reader(fd) -> True if a reader was removed"},
    {"remove_writer", (PyCFunction)tc_loop_meth_remove_writer, METH_O,
     "remove_writer(fd) -> True if a writer was removed"},
    {"_run_forever_c", (PyCFunction)loop_run_forever_c, METH_NOARGS,
     "The iteration loop of run_forever (setup is done in Python)."},
    {"_set_debug_flag", (PyCFunction)loop_set_debug_flag, METH_O, NULL},
    {"_set_signal_fd", (PyCFunction)loop_set_signal_fd, METH_O,
     "Watch the signal wakeup socket (non-blocking, not owned)."},
    {"_counts", (PyCFunction)loop_counts, METH_NOARGS,
     "Queued callbacks, live timers and watched fds (for tests)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot loop_slots[] = {
    {Py_tp_doc, "The C core of tornado_c.loop.EventLoop (an asyncio loop on libuv)."},
    {Py_tp_new, loop_new},
    {Py_tp_methods, loop_type_methods},
    {Py_tp_traverse, loop_traverse},
    {Py_tp_clear, loop_clear},
    {Py_tp_dealloc, loop_dealloc},
    {0, NULL},
};

static PyType_Spec loop_spec = {
    .name = "tornado_c._core.Loop",
    .basicsize = sizeof(tc_loop),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = loop_slots,
};

/* ---------------------------------------------------------------------- */
/* module-level functions                                                  */

static PyObject *
libuv_version(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    return PyUnicode_FromString(uv_version_string());
}

#ifdef TC_COUNT_HANDLES
static PyObject *
debug_counts(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    tc_state *st = tc_get_state(module);
    return Py_BuildValue("{snsn}", "handles", st->loop->live_handles, "requests",
                         st->loop->live_requests);
}
#endif

static PyMethodDef loop_methods[] = {
    {"_set_result_unless_cancelled", (PyCFunction)(void (*)(void))fn_set_result_unless_cancelled,
     METH_FASTCALL, "asyncio's futures._set_result_unless_cancelled(fut, None)."},
    {"libuv_version", libuv_version, METH_NOARGS, "Version of the libuv the extension runs on."},
#ifdef TC_COUNT_HANDLES
    {"_debug_counts", debug_counts, METH_NOARGS,
     "Live libuv handles and requests of every component (debug and test builds)."},
#endif
    {NULL, NULL, 0, NULL},
};

#define INTERN(field, text)                                   \
    do {                                                      \
        st->loop->field = PyUnicode_InternFromString(text);    \
        if (st->loop->field == NULL) {                         \
            return -1;                                        \
        }                                                     \
    } while (0)

int
tc_loop_exec(PyObject *module, struct tc_state *st)
{
    /* the loop's shared read buffer (uvio.h), for every stream on any loop */
    if (tc_uvio_readbuf_alloc(st->loop) < 0) {
        return -1;
    }
    INTERN(str_call_exception_handler, "call_exception_handler");
    INTERN(str_message, "message");
    INTERN(str_exception, "exception");
    INTERN(str_handle, "handle");
    INTERN(str_context, "context");
    INTERN(str_source_traceback, "source_traceback");
    INTERN(str_handle_signals, "_handle_signal_bytes");
    INTERN(str_log_slow, "_log_slow_callback");
    INTERN(str_slow_duration, "slow_callback_duration");
    INTERN(str_detach, "detach");
    INTERN(str_fileno, "fileno");
    INTERN(str_done, "done");
    INTERN(str_cancelled, "cancelled");
    INTERN(str_set_result, "set_result");
    INTERN(str_set_exception, "set_exception");
    if ((st->loop->kw_loop = Py_BuildValue("(s)", "loop")) == NULL ||
        (st->loop->Future = tc_import_attr("asyncio", "Future")) == NULL ||
        (st->loop->CancelledError = tc_import_attr("asyncio", "CancelledError")) == NULL) {
        return -1;
    }
    if (tc_add_type(module, &loop_spec, NULL, &st->loop->Loop_type) < 0) {
        return -1;
    }
    if (tc_handle_types_init(module, st) < 0) {
        return -1;
    }
    if (PyModule_AddFunctions(module, loop_methods) < 0) {
        return -1;
    }
#ifdef TC_TEST_API
    if (tc_loop_test_exec(module, st) < 0) {
        return -1;
    }
#endif
    st->loop->fn_set_result_unless_cancelled =
        PyObject_GetAttrString(module, "_set_result_unless_cancelled");
    return st->loop->fn_set_result_unless_cancelled == NULL ? -1 : 0;
}

int
tc_loop_traverse(struct tc_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->loop->Loop_type);
    Py_VISIT(st->loop->Handle_type);
    Py_VISIT(st->loop->TimerHandle_type);
    Py_VISIT(st->loop->format_cb_source);
    Py_VISIT(st->loop->Future);
    Py_VISIT(st->loop->CancelledError);
    Py_VISIT(st->loop->fn_set_result_unless_cancelled);
    return 0;
}

void
tc_loop_clear(struct tc_state *st)
{
    tc_handle_freelist_clear(st);
    Py_CLEAR(st->loop->Loop_type);
    Py_CLEAR(st->loop->Handle_type);
    Py_CLEAR(st->loop->TimerHandle_type);
    Py_CLEAR(st->loop->format_cb_source);
    Py_CLEAR(st->loop->str_call_exception_handler);
    Py_CLEAR(st->loop->str_message);
    Py_CLEAR(st->loop->str_exception);
    Py_CLEAR(st->loop->str_handle);
    Py_CLEAR(st->loop->str_context);
    Py_CLEAR(st->loop->str_source_traceback);
    Py_CLEAR(st->loop->str_handle_signals);
    Py_CLEAR(st->loop->str_log_slow);
    Py_CLEAR(st->loop->str_slow_duration);
    Py_CLEAR(st->loop->str_detach);
    Py_CLEAR(st->loop->str_fileno);
    Py_CLEAR(st->loop->Future);
    Py_CLEAR(st->loop->CancelledError);
    Py_CLEAR(st->loop->kw_loop);
    Py_CLEAR(st->loop->str_done);
    Py_CLEAR(st->loop->str_cancelled);
    Py_CLEAR(st->loop->str_set_result);
    Py_CLEAR(st->loop->str_set_exception);
    Py_CLEAR(st->loop->fn_set_result_unless_cancelled);
    tc_uvio_readbuf_free(st->loop);
}
