/* loop component: timers.
 *
 * The loop's TimerHandles (call_at / call_later, and tc_loop_call_later for
 * C callers) wait in a binary min-heap of strong references ordered by
 * (when, seq): equal deadlines keep the order they were scheduled in, as
 * asyncio's heapq of (when, seq) does.  Deadlines are on the loop's clock
 * (tc_loop_time: uv_hrtime, never libuv's millisecond clock), so a timer is
 * never early.
 *
 * A cancelled timer stays in the heap (TimerHandle.cancel only counts it in
 * timer_cancelled) and is dropped when it reaches the top, or all at once
 * when cancelled timers are the majority of a heap of more than 100, as
 * asyncio does.  run_once (loop.c) calls tc_loop_timers_prune before it
 * polls and tc_loop_timers_due after; how long the poll may block is
 * poll.c's business (it reads heap[0]).
 */
#include "internal.h"

#include <math.h>

/* ---------------------------------------------------------------------- */
/* timer heap, ordered by (when, seq); cancelled timers are removed lazily  */

static inline int
timer_lt(tc_timer *a, tc_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void
heap_sift_up(tc_loop *self, Py_ssize_t i)
{
    tc_timer **h = self->heap;
    tc_timer *t = h[i];
    while (i > 0) {
        Py_ssize_t p = (i - 1) / 2;
        if (!timer_lt(t, h[p])) {
            break;
        }
        h[i] = h[p];
        i = p;
    }
    h[i] = t;
}

static void
heap_sift_down(tc_loop *self, Py_ssize_t i)
{
    tc_timer **h = self->heap;
    Py_ssize_t n = self->heap_len;
    tc_timer *t = h[i];
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= n) {
            break;
        }
        if (c + 1 < n && timer_lt(h[c + 1], h[c])) {
            c++;
        }
        if (!timer_lt(h[c], t)) {
            break;
        }
        h[i] = h[c];
        i = c;
    }
    h[i] = t;
}

static int
heap_push(tc_loop *self, tc_timer *t) /* takes a new reference */
{
    if (self->heap_len == self->heap_cap) {
        Py_ssize_t ncap = self->heap_cap ? self->heap_cap * 2 : 64;
        tc_timer **nh = PyMem_Realloc(self->heap, ncap * sizeof(tc_timer *));
        if (nh == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->heap = nh;
        self->heap_cap = ncap;
    }
    Py_INCREF(t);
    t->seq = self->timer_seq++;
    t->scheduled = 1;
    self->heap[self->heap_len++] = t;
    heap_sift_up(self, self->heap_len - 1);
    return 0;
}

static tc_timer *
heap_pop(tc_loop *self) /* the reference moves to the caller */
{
    tc_timer *top = self->heap[0];
    self->heap_len--;
    if (self->heap_len > 0) {
        self->heap[0] = self->heap[self->heap_len];
        heap_sift_down(self, 0);
    }
    top->scheduled = 0;
    if (top->h.cancelled) {
        self->timer_cancelled--;
    }
    return top;
}

/* Drop every cancelled timer from the heap (when they are the majority). */
static void
heap_compact(tc_loop *self)
{
    Py_ssize_t n = self->heap_len, j = 0, ndrop = 0;
    tc_timer **drop = PyMem_Malloc(self->timer_cancelled * sizeof(tc_timer *) + 1);
    if (drop == NULL) {
        return; /* lazy removal will get them anyway */
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        tc_timer *t = self->heap[i];
        if (t->h.cancelled && ndrop < self->timer_cancelled) {
            t->scheduled = 0;
            drop[ndrop++] = t;
        }
        else {
            self->heap[j++] = t;
        }
    }
    self->heap_len = j;
    self->timer_cancelled -= ndrop;
    for (Py_ssize_t i = j / 2; i-- > 0;) {
        heap_sift_down(self, i);
    }
    /* the heap is consistent before any decref can run Python code */
    for (Py_ssize_t i = 0; i < ndrop; i++) {
        tc_handle_release((PyObject *)drop[i]);
    }
    PyMem_Free(drop);
}

/* Before the poll: drop the cancelled timers at the top of the heap (and
 * every cancelled one when they are the majority), so heap[0] is the next
 * timer that will really run. */
void
tc_loop_timers_prune(tc_loop *self)
{
    if (self->heap_len > 100 && self->timer_cancelled * 2 > self->heap_len) {
        heap_compact(self);
    }
    while (self->heap_len > 0 && self->heap[0]->h.cancelled) {
        tc_timer *t = heap_pop(self);
        tc_handle_release((PyObject *)t);
    }
}

/* After the poll: move every timer due at `now` to the due queue (behind
 * the poll's I/O callbacks, see run_once). */
int
tc_loop_timers_due(tc_loop *self, double now)
{
    while (self->heap_len > 0 && self->heap[0]->when <= now) {
        tc_timer *t = heap_pop(self);
        if (t->h.cancelled) {
            tc_handle_release((PyObject *)t);
        }
        else if (tc_loop_due_push(self, (PyObject *)t) < 0) { /* steals t */
            return -1;
        }
    }
    return 0;
}

/* Drop every timer (the loop is closing or being cleared). */
void
tc_loop_timers_drop(tc_loop *self)
{
    while (self->heap_len > 0) {
        tc_timer *t = heap_pop(self);
        tc_handle_release((PyObject *)t);
    }
    self->timer_cancelled = 0;
}

/* ---------------------------------------------------------------------- */
/* scheduling                                                              */

/* A TimerHandle due at `when`, in the heap: what call_at/call_later do once
 * their arguments are parsed.  `when` is not NaN. */
static PyObject *
schedule_at(tc_loop *self, double when, PyObject *callback, PyObject *const *args,
            Py_ssize_t nargs, PyObject *context)
{
    tc_timer *t;
    if (tc_loop_check_closed(self) < 0) {
        return NULL;
    }
    if (self->debug && tc_loop_check_thread(self) < 0) {
        return NULL;
    }
    t = (tc_timer *)tc_loop_new_handle(self, self->ls->TimerHandle_type, callback, args,
                                       nargs, context, "call_at");
    if (t == NULL) {
        return NULL;
    }
    t->when = when;
    if (heap_push(self, t) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

static int
check_not_nan(double when, const char *fname)
{
    if (isnan(when)) {
        /* asyncio would fail later, inside the loop; refuse it here */
        PyErr_Format(PyExc_ValueError, "%s(): the time must not be NaN", fname);
        return -1;
    }
    return 0;
}

/* call_at / call_later after the time argument: (callback, *args, context=) */
static PyObject *
schedule_timer(tc_loop *self, double when, PyObject *const *args,
               Py_ssize_t nargs, PyObject *kwnames, const char *fname)
{
    PyObject *context;
    if (check_not_nan(when, fname) < 0 ||
        tc_loop_parse_context(args, nargs, kwnames, fname, &context) < 0) {
        return NULL;
    }
    return schedule_at(self, when, args[0], args + 1, nargs - 1, context);
}

PyObject *
tc_loop_call_later(tc_loop *loop, double delay, PyObject *callback,
                   PyObject *const *args, Py_ssize_t nargs, PyObject *context)
{
    double when = tc_loop_time(loop) + delay;
    if (check_not_nan(when, "call_later") < 0) {
        return NULL;
    }
    return schedule_at(loop, when, callback, args, nargs, context);
}

PyObject *
tc_loop_meth_call_later(tc_loop *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double delay;
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "call_later() missing required positional arguments: 'delay' and 'callback'");
        return NULL;
    }
    if (args[0] == Py_None) {
        PyErr_SetString(PyExc_TypeError, "delay must not be None");
        return NULL;
    }
    delay = PyFloat_AsDouble(args[0]);
    if (delay == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    return schedule_timer(self, tc_loop_time(self) + delay, args + 1, nargs - 1, kwnames,
                          "call_later");
}

PyObject *
tc_loop_meth_call_at(tc_loop *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double when;
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "call_at() missing required positional arguments: 'when' and 'callback'");
        return NULL;
    }
    if (args[0] == Py_None) {
        PyErr_SetString(PyExc_TypeError, "when cannot be None");
        return NULL;
    }
    when = PyFloat_AsDouble(args[0]);
    if (when == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    return schedule_timer(self, when, args + 1, nargs - 1, kwnames, "call_at");
}

PyObject *
tc_loop_meth_time(tc_loop *self, PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(tc_loop_time(self));
}
