/* loop component contract: the asyncio event loop on libuv.
 *
 * Other components (stream, http, websocket) include only this header.  What
 * they may rely on:
 *
 *   - A tc_loop is the C object behind tornado_c.loop.EventLoop (the Python
 *     class subclasses the heap type st->loop->Loop_type).  tc_loop_check()
 *     tells whether an object is one.  Its fields after the public ones are
 *     the loop's own: other components use the inline queries
 *     (tc_loop_is_closed, tc_loop_in_other_thread, tc_loop_time,
 *     tc_loop_read_buffer), which cost what reading the field did.
 *   - loop->uv is the uv_loop_t, owned by the tc_loop: allocated when the
 *     object is created, uv_loop_close()d and freed only when every handle on
 *     it has gone through its close callback (EventLoop.close() / dealloc).
 *     loop->uv stays valid (never NULL) for the whole life of the object,
 *     also after close(); but a closed loop never runs again, so check
 *     tc_loop_is_closed() before creating handles, and close handles with
 *     tc_loop_close_handle(): on a closed loop it runs the close callback
 *     right away.
 *   - The loop releases the GIL only while it blocks in the poll (libuv's,
 *     or its own epoll_wait, see loop/poll.c).  EVERY
 *     libuv callback that may touch Python objects must start with
 *     TC_LOOP_ENTER(loop) (re-takes the GIL if it was released); nothing else
 *     about the GIL is needed.
 *   - An exception raised by Python code called from a libuv callback is never
 *     dropped: tc_loop_report_exception() hands it to the loop's exception
 *     handler (as asyncio does) and clears it.
 *   - tc_loop_call_soon() schedules a Python callable exactly as
 *     loop.call_soon() does (same ordering, same contextvars handling);
 *     tc_loop_call_later() as loop.call_later() does (same TimerHandle, same
 *     deadline rules on the loop's clock, tc_loop_time()), and
 *     tc_loop_handle_cancel() cancels either.  These are for tornado_c
 *     loops only: code that may run on another asyncio loop calls that
 *     loop's Python methods.
 *   - Futures: tc_loop_create_future() and tc_loop_future_set_result() /
 *     _set_exception() are the extension's one set of asyncio.Future
 *     helpers; they return errors, the caller reports them (above) or
 *     raises them.
 *   - Handles of other components must stay referenced (no uv_unref): the
 *     loop uses libuv's count of active handles to know whether libuv has
 *     anything to poll besides the loop's own handles.
 *   - Handle bookkeeping: in a debug or test build (TC_COUNT_HANDLES,
 *     uvio.h) every uv handle or
 *     request a component creates is counted with TC_LOOP_HANDLE_OPENED /
 *     TC_LOOP_HANDLE_CLOSED (the latter in its close callback) on the loop
 *     it belongs to; the counts are exposed to tests as
 *     tornado_c._core._debug_counts().
 *   - Connected uv streams (handles, write queue, shared read buffer, libuv
 *     error mapping): the shared plumbing of loop/uvio.h, included here.
 *     The shared read buffer is the loop component's, allocated in its exec
 *     (which module.c runs first), so it exists before any stream.
 */
#ifndef TC_LOOP_H
#define TC_LOOP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <uv.h>

#include "loop/uvio.h"

struct tc_state;

typedef struct tc_loop_state {
    PyTypeObject *Loop_type;        /* tornado_c._core.Loop (base of EventLoop) */
    /* the loop component adds its other types and interned names here */
    PyTypeObject *Handle_type;      /* tornado_c._core.Handle */
    PyTypeObject *TimerHandle_type; /* tornado_c._core.TimerHandle */
    PyObject *str_call_exception_handler;
    PyObject *str_message;
    PyObject *str_exception;
    PyObject *str_handle;
    PyObject *str_context;
    PyObject *str_source_traceback;
    PyObject *str_handle_signals;   /* EventLoop._handle_signal_bytes */
    PyObject *str_log_slow;         /* EventLoop._log_slow_callback */
    PyObject *str_slow_duration;    /* slow_callback_duration */
    PyObject *str_detach;           /* socket.detach (uvio.c) */
    PyObject *str_fileno;           /* socket.fileno (uvio.c) */
    /* futures (tc_loop_create_future and friends) */
    PyObject *Future;               /* asyncio.Future */
    PyObject *CancelledError;       /* asyncio.CancelledError */
    PyObject *kw_loop;              /* ("loop",): Future(loop=...) kwnames */
    PyObject *str_done, *str_cancelled, *str_set_result, *str_set_exception;
    PyObject *fn_set_result_unless_cancelled; /* _core._set_result_unless_cancelled */
    PyObject *format_cb_source;     /* asyncio.format_helpers._format_callback_source, lazy */
    struct tc_handle *free_handles[256]; /* freelist of dead Handles (memory only) */
    int nfree_handles;
    char *readbuf;                  /* shared read buffer, see uvio.h (posix_memalign;
                                     * allocated by tc_loop_exec, freed by
                                     * tc_loop_clear) */
#ifdef TC_COUNT_HANDLES
    Py_ssize_t live_handles;        /* uv handles opened and not yet closed */
    Py_ssize_t live_requests;       /* uv requests started and not yet completed */
#endif
} tc_loop_state;

/* A FIFO of strong references (capacity a power of two); the loop's own. */
typedef struct tc_loop_ring {
    PyObject **buf;
    Py_ssize_t head, len, cap;
} tc_loop_ring;

typedef struct tc_loop {
    PyObject_HEAD
    uv_loop_t *uv;                  /* owned, see above */
    tc_loop_state *ls;              /* borrowed: the loop component's part of the
                                     * module state (the type holds the module) */
    PyThreadState *released;        /* non-NULL while the GIL is released */
    /* private fields of the loop component follow; other components must
     * not touch them */
    tc_loop_ring ready;             /* callbacks to run (call_soon) */
    tc_loop_ring due;               /* what the poll in progress made due: the
                                     * readers/writers of ready fds, transports'
                                     * held-back I/O, then the expired timers;
                                     * run_once splices it in behind the
                                     * callbacks ready before the poll */
    struct tc_timer **heap;         /* min-heap of strong TimerHandle refs */
    Py_ssize_t heap_len, heap_cap;
    Py_ssize_t timer_cancelled;     /* cancelled timers still in the heap */
    unsigned long long timer_seq;
    double poll_deadline;           /* earliest timer when the poll started */
    uv_timer_t *uvtimer;            /* wakes the poll at the next deadline */
    uv_async_t *async;              /* call_soon_threadsafe wakeups */
    uv_prepare_t *prepare;          /* releases the GIL just before the poll */
    uv_poll_t *iopoll;              /* watches epfd (add_reader/add_writer) */
    uv_poll_t *sigpoll;             /* watches the signal wakeup socket */
    int epfd;                       /* private epoll set of reader/writer fds */
    int sigfd;                      /* signal wakeup socket (not owned) or -1 */
    struct tc_fdslot *fds;          /* indexed by fd */
    Py_ssize_t fds_cap, fds_count;
    PyObject *exc_type, *exc_value, *exc_tb; /* to raise from run_forever */
    unsigned long thread_id;
    char running, stopping, closed, debug, block_in_poll, draining;
    char own_poll;                  /* blocking in epoll on epfd, see poll.c */
    char in_poll;                   /* inside tc_loop_poll (run_once) */
    char hold_io;                   /* in the poll, callbacks were ready before
                                     * it: see tc_loop_hold_io() */
    char uv_dirty;                  /* our handles changed since the last uv_run */
    struct tc_loop_deferred *deferred; /* tc_loop_defer() entries (strong objs) */
    Py_ssize_t deferred_len, deferred_cap;
    PyObject *live;                 /* strong or NULL: the set loop._tc_live()
                                     * gives (the same set for the loop's life),
                                     * kept by tc_uvio_conn_take at its first call */
    PyObject *module;               /* strong: the module whose state `ls` points
                                     * into, released last in dealloc (see
                                     * tc_module_from_subtype in common.h) */
} tc_loop;

/* Re-take the GIL if the loop released it around the poll. */
#define TC_LOOP_ENTER(loop)                                  \
    do {                                                     \
        if ((loop)->released != NULL) {                      \
            PyThreadState *ts_ = (loop)->released;           \
            (loop)->released = NULL;                         \
            PyEval_RestoreThread(ts_);                       \
        }                                                    \
    } while (0)

/* Debug-build bookkeeping of a handle or request on `loop` (a tc_loop *). */
#ifdef TC_COUNT_HANDLES
#define TC_LOOP_HANDLE_OPENED(loop) ((loop)->ls->live_handles++)
#define TC_LOOP_HANDLE_CLOSED(loop) ((loop)->ls->live_handles--)
#define TC_LOOP_REQUEST_STARTED(loop) ((loop)->ls->live_requests++)
#define TC_LOOP_REQUEST_DONE(loop) ((loop)->ls->live_requests--)
#else
#define TC_LOOP_HANDLE_OPENED(loop) ((void)0)
#define TC_LOOP_HANDLE_CLOSED(loop) ((void)0)
#define TC_LOOP_REQUEST_STARTED(loop) ((void)0)
#define TC_LOOP_REQUEST_DONE(loop) ((void)0)
#endif

/* ------------------------------------------------------------ queries */
/* Inline: they read the loop's private fields for other components, which
 * use these instead of the fields. */

/* 1 once the loop was closed (it never runs again), else 0. */
static inline int
tc_loop_is_closed(const tc_loop *loop)
{
    return loop->closed;
}

/* 1 if the loop is running in a thread other than the caller's (its libuv
 * handles are that thread's: hand the work over with
 * call_soon_threadsafe), else 0. */
static inline int
tc_loop_in_other_thread(const tc_loop *loop)
{
    return loop->running && loop->thread_id != PyThread_get_thread_ident();
}

/* The loop's clock, loop.time(): seconds of the monotonic clock
 * (uv_hrtime, CLOCK_MONOTONIC).  Every timer's deadline is on it. */
static inline double
tc_loop_time(const tc_loop *loop)
{
    (void)loop;
    return (double)uv_hrtime() / 1e9;
}

/* The shared read buffer (TC_UVIO_READ_BUF_SIZE bytes, see uvio.h) a read
 * callback on `loop` may fill between its alloc_cb and the end of its
 * read_cb.  Valid from the module's exec on. */
static inline char *
tc_loop_read_buffer(const tc_loop *loop)
{
    return loop->ls->readbuf;
}

/* The order of I/O callbacks.  asyncio delivers what a poll found after
 * every callback that was already queued when the poll started, and what
 * those I/O callbacks queue runs after the timers that poll made due.
 * Transports call their protocols from libuv callbacks, inside the poll:
 *   - when tc_loop_hold_io() is 1 (callbacks were ready before the poll),
 *     they must not call the protocol there but queue the call with
 *     tc_loop_call_io() (keeping their own events in order);
 *   - otherwise they call it at once; the loop runs what it queues (with
 *     call_soon) after the readers and timers of the same poll.
 * tc_loop_hold_io() is 0 outside the poll. */
static inline int
tc_loop_hold_io(const tc_loop *loop)
{
    return loop->hold_io;
}

/* 1 if `obj` is a tc_loop (or a subclass instance), else 0.  Never fails. */
int tc_loop_check(struct tc_state *st, PyObject *obj);

/* Hand the current exception to loop.call_exception_handler() with
 * {'message': message, 'exception': exc, **extra} and clear it.  `extra` is a
 * borrowed dict or NULL. */
void tc_loop_report_exception(tc_loop *loop, const char *message, PyObject *extra);

/* loop.call_soon(callback, *args, context=context): returns a new reference to
 * the Handle, or NULL with an exception set.  `args` are borrowed;
 * `context` is borrowed or NULL for the current context. */
PyObject *tc_loop_call_soon(tc_loop *loop, PyObject *callback,
                            PyObject *const *args, Py_ssize_t nargs,
                            PyObject *context);

/* tc_loop_call_soon() for an I/O event found in the poll in progress: the
 * callback runs where asyncio runs the poll's I/O callbacks (behind the
 * callbacks ready before the poll, in the order of the events, ahead of the
 * timers the poll made due).  Outside the poll it is tc_loop_call_soon().
 * Returns 0, or -1 with an exception set (no Handle is returned: nobody
 * cancels these). */
int tc_loop_call_io(tc_loop *loop, PyObject *callback, PyObject *const *args,
                    Py_ssize_t nargs);

/* loop.call_later(delay, callback, *args, context=context), the C way: the
 * same TimerHandle, due at tc_loop_time() + delay, in the same order among
 * the loop's timers (deadline, then FIFO), with the same checks (closed
 * loop: RuntimeError; NaN delay: ValueError; debug mode: thread and
 * callback checks).  Returns a new reference to the TimerHandle, or NULL
 * with an exception set.  `args` and `context` as for tc_loop_call_soon(). */
PyObject *tc_loop_call_later(tc_loop *loop, double delay, PyObject *callback,
                             PyObject *const *args, Py_ssize_t nargs,
                             PyObject *context);

/* handle.cancel() of a Handle or TimerHandle from tc_loop_call_soon(),
 * tc_loop_call_later() or their Python methods (borrowed).  Never fails;
 * cancelling twice is harmless. */
void tc_loop_handle_cancel(PyObject *handle);

/* ------------------------------------------------------------ futures */
/* The one set of asyncio.Future helpers of the extension (the transports'
 * connect waiters, the IOStream's read/write/connect futures, the HTTP
 * server's write and close futures).  Errors are returned (-1 with the
 * exception set), never swallowed: a caller running from a libuv callback
 * hands them to tc_loop_report_exception(), a Python method raises them.
 * `loop` is the loop the future belongs to (the interned names are in its
 * state). */

/* New reference to a pending asyncio.Future(loop=loop) -- what
 * EventLoop.create_future() returns -- or NULL with an exception set. */
PyObject *tc_loop_create_future(tc_loop *loop);

/* When the helpers below resolve the future:
 *   TC_FUTURE_NEW               always: the caller made it and nobody else
 *                               has seen it yet;
 *   TC_FUTURE_UNLESS_CANCELLED  unless fut.cancelled() (asyncio's
 *                               futures._set_result_unless_cancelled,
 *                               tornado's future_set_result_unless_cancelled:
 *                               a future someone else resolved raises
 *                               InvalidStateError);
 *   TC_FUTURE_UNLESS_DONE       unless fut.done(). */
typedef enum {
    TC_FUTURE_NEW,
    TC_FUTURE_UNLESS_CANCELLED,
    TC_FUTURE_UNLESS_DONE,
} tc_future_guard;

/* fut.set_result(value) under `guard` (both borrowed).  0 (also when the
 * guard skipped it), or -1 with an exception set. */
int tc_loop_future_set_result(tc_loop *loop, PyObject *fut, PyObject *value,
                              tc_future_guard guard);

/* fut.set_exception(exc) under `guard` (both borrowed); then, if
 * `retrieve`, fut.exception() whether or not this call set it, so that
 * asyncio never logs "exception was never retrieved" (a cancelled future's
 * CancelledError is ignored), as tornado's IOStream._signal_closed does.
 * 0, or -1 with an exception set. */
int tc_loop_future_set_exception(tc_loop *loop, PyObject *fut, PyObject *exc,
                                 tc_future_guard guard, int retrieve);

/* uv_close(handle, close_cb) (ignored if already closing); if the loop has
 * been closed, libuv is run at once (without blocking) so close_cb runs. */
void tc_loop_close_handle(tc_loop *loop, uv_handle_t *handle, uv_close_cb close_cb);

/* Output batching.  tc_loop_defer(loop, fn, obj) has the loop call fn(obj)
 * once, after the ready callbacks of the current iteration and before the
 * next poll (which does not block while calls are due; calls deferred from
 * inside fn run one iteration later).  A component buffers its small writes
 * and sends them all from there: the kernel then takes a whole iteration's
 * responses back to back, and Python code runs between polls undisturbed.
 *   - The loop holds a strong reference to obj until fn has run (or until
 *     the loop is cleared: then fn is not called).  close() runs the calls
 *     that are still due before it releases libuv.
 *   - fn runs with the GIL held and no exception set; it must return with
 *     none set (report errors with tc_loop_report_exception()).
 *   - Each call runs fn once: callers keep their own "already deferred" flag.
 * Returns 0, or -1 with MemoryError set. */
typedef void (*tc_loop_deferred_fn)(PyObject *obj);
int tc_loop_defer(tc_loop *loop, tc_loop_deferred_fn fn, PyObject *obj);

int tc_loop_exec(PyObject *module, struct tc_state *st);
int tc_loop_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_loop_clear(struct tc_state *st);

#endif /* TC_LOOP_H */
