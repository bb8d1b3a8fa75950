/* Private declarations shared by the files of the loop component (loop.c,
 * timer.c, poll.c, handle.c, the test build's test_api.c; see the top of
 * loop.c for who does what).
 * Other components use loop.h. */
#ifndef TC_LOOP_INTERNAL_H
#define TC_LOOP_INTERNAL_H

#include "common.h"
#include "state.h"
#include "loop/loop.h"

/* asyncio.Handle: a callback scheduled on the loop. */
typedef struct tc_handle {
    PyObject_HEAD
    tc_loop *loop;          /* strong */
    PyObject *callback;     /* strong; NULL once cancelled */
    PyObject *args;         /* strong tuple; NULL once cancelled */
    PyObject *context;      /* strong contextvars.Context */
    PyObject *repr;         /* strong or NULL: repr frozen at cancel (debug) */
    PyObject *source_tb;    /* strong or NULL: creation traceback (debug) */
    char cancelled;
} tc_handle;

/* asyncio.TimerHandle */
typedef struct tc_timer {
    tc_handle h;
    double when;
    unsigned long long seq; /* FIFO order among equal deadlines */
    char scheduled;         /* in the loop's heap */
} tc_timer;

/* What a file descriptor registered with add_reader/add_writer holds. */
struct tc_fdslot {
    tc_handle *reader;      /* strong or NULL */
    tc_handle *writer;      /* strong or NULL */
};

/* The loop drops its reference to a handle it had queued.  Handles start
 * untracked by the GC (most are referenced only by the loop's queues, which
 * the loop's own traverse does not need to see through); one that someone
 * else still holds when it leaves the queues becomes tracked, so cycles
 * through it stay collectable. */
static inline void
tc_handle_release(PyObject *h)
{
    if (Py_REFCNT(h) > 1 && !PyObject_GC_IsTracked(h)) {
        PyObject_GC_Track(h);
    }
    Py_DECREF(h);
}

/* 0 if the loop is open, else -1 with RuntimeError('Event loop is closed'). */
static inline int
tc_loop_check_closed(tc_loop *self)
{
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

/* handle.c */
TC_INTERNAL int tc_handle_types_init(PyObject *module, struct tc_state *st);
TC_INTERNAL tc_handle *tc_handle_new(tc_loop *loop, PyTypeObject *type, PyObject *callback,
                                     PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *context);
TC_INTERNAL void tc_handle_cancel(tc_handle *h);
TC_INTERNAL int tc_handle_traverse(tc_handle *h, visitproc visit, void *arg);
TC_INTERNAL void tc_handle_freelist_clear(struct tc_state *st);
/* Run the handle's callback in its context.  0 on success or on an exception
 * handed to the exception handler; -1 with SystemExit/KeyboardInterrupt (or
 * a failure of the exception handler itself) set. */
TC_INTERNAL int tc_handle_run(tc_handle *h);

/* loop.c */
TC_INTERNAL int tc_loop_stash_exception(tc_loop *loop);
TC_INTERNAL int tc_loop_check_thread(tc_loop *loop);
/* Append to the ready queue; steals `h` (also on failure: -1, MemoryError). */
TC_INTERNAL int tc_loop_ready_push(tc_loop *self, PyObject *h);
/* The same for the due queue (what the poll in progress made due: see
 * run_once in loop.c). */
TC_INTERNAL int tc_loop_due_push(tc_loop *self, PyObject *h);
/* A new Handle (or TimerHandle: `type`) for `callback`; in debug mode
 * `method` names the scheduling call for asyncio's callback checks (NULL:
 * no check) and the creation traceback is recorded.  New reference or NULL
 * with an exception set. */
TC_INTERNAL tc_handle *tc_loop_new_handle(tc_loop *loop, PyTypeObject *type,
                                          PyObject *callback, PyObject *const *args,
                                          Py_ssize_t nargs, PyObject *context,
                                          const char *method);
/* The context= keyword of a FASTCALL|KEYWORDS scheduling call (borrowed,
 * NULL when absent or None).  0, or -1 with TypeError set. */
TC_INTERNAL int tc_loop_parse_context(PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames, const char *fname,
                                      PyObject **context);

/* timer.c */
TC_INTERNAL void tc_loop_timers_prune(tc_loop *self);
TC_INTERNAL int tc_loop_timers_due(tc_loop *self, double now);
TC_INTERNAL void tc_loop_timers_drop(tc_loop *self);
/* Loop methods call_later, call_at, time */
TC_INTERNAL PyObject *tc_loop_meth_call_later(tc_loop *self, PyObject *const *args,
                                              size_t nargsf, PyObject *kwnames);
TC_INTERNAL PyObject *tc_loop_meth_call_at(tc_loop *self, PyObject *const *args,
                                           size_t nargsf, PyObject *kwnames);
TC_INTERNAL PyObject *tc_loop_meth_time(tc_loop *self, PyObject *ignored);

/* poll.c */
/* run_once's wait for I/O and timers: 0, or -1 with an exception set. */
TC_INTERNAL int tc_loop_poll(tc_loop *self);
/* The callbacks of the prepare and iopoll handles loop_new creates. */
TC_INTERNAL void tc_loop_prepare_cb(uv_prepare_t *p);
TC_INTERNAL void tc_loop_iopoll_cb(uv_poll_t *p, int status, int events);
TC_INTERNAL void tc_loop_fds_drop(tc_loop *self);
/* Loop methods add_reader, add_writer, remove_reader, remove_writer */
TC_INTERNAL PyObject *tc_loop_meth_add_reader(tc_loop *self, PyObject *const *args,
                                              Py_ssize_t nargs);
TC_INTERNAL PyObject *tc_loop_meth_add_writer(tc_loop *self, PyObject *const *args,
                                              Py_ssize_t nargs);
TC_INTERNAL PyObject *tc_loop_meth_remove_reader(tc_loop *self, PyObject *fd);
TC_INTERNAL PyObject *tc_loop_meth_remove_writer(tc_loop *self, PyObject *fd);

#ifdef TC_TEST_API
/* Test build only (test_api.c): the loop's test entry points
 * (_uv_selftest); called by tc_loop_exec. */
TC_INTERNAL int tc_loop_test_exec(PyObject *module, struct tc_state *st);
#endif

#endif
