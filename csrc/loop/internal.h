/* Private declarations shared by the files of the loop component. */
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

/* handle.c */
int tc_handle_types_init(PyObject *module, struct tc_state *st);
tc_handle *tc_handle_new(tc_loop *loop, PyTypeObject *type, PyObject *callback,
                         PyObject *const *args, Py_ssize_t nargs,
                         PyObject *context);
void tc_handle_cancel(tc_handle *h);
int tc_handle_traverse(tc_handle *h, visitproc visit, void *arg);
void tc_handle_freelist_clear(struct tc_state *st);
/* Run the handle's callback in its context.  0 on success or on an exception
 * handed to the exception handler; -1 with SystemExit/KeyboardInterrupt (or
 * a failure of the exception handler itself) set. */
int tc_handle_run(tc_handle *h);

/* loop.c */
int tc_loop_stash_exception(tc_loop *loop);
int tc_loop_check_thread(tc_loop *loop);

#endif
