/* loop component: waiting for I/O.
 *
 * Readers and writers (add_reader/add_writer) live in a private epoll set
 * whose fd is watched by one uv_poll_t.  libuv's own fd watchers defer their
 * epoll_ctl calls to the next poll and abort() the process if the fd was
 * closed meanwhile; with our own set, registration errors are raised at once
 * (as asyncio's EpollSelector does) and a closed fd simply drops out of the
 * set, so a reused fd number never sees stale events.
 *
 * Two ways to wait, chosen at every iteration (tc_loop_poll, called by
 * run_once in loop.c):
 *
 *  - libuv mode (whenever another component has libuv handles or requests):
 *    uv_run() blocks in libuv's epoll, in which our fd set (epfd) is one
 *    more fd (the iopoll handle); the prepare handle releases the GIL.
 *  - own-poll mode (libuv has nothing but our own handles, the case of
 *    add_reader-based I/O such as Tornado's IOStream): we block in epoll on
 *    epfd, which then holds libuv's backend fd, and run libuv (no wait) only
 *    when that fd is readable (threadsafe wakeups, signals) or libuv has
 *    pending work.  One epoll_wait per iteration instead of two.
 *
 * libuv applies watcher changes (epoll_ctl) only inside uv_run, so own-poll
 * mode is used only after uv_run has run since our own handles changed
 * (uv_dirty), and only while libuv counts no active handle but our async
 * handle (other components' handles must stay referenced).
 *
 * Either way the wait ends by the earliest timer's deadline (timer.c keeps
 * heap[0] the next live timer), rounded up to whole milliseconds: a timer
 * is checked against the loop's clock afterwards, so it never fires early.
 * loop_new (loop.c) creates epfd and the handles used here.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <sys/epoll.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* the private epoll set                                                   */

/* Hand the reader/writer of a ready fd to the due queue (run_once). */
static void
fd_ready(tc_loop *self, int fd, int readable, int writable);

#define TC_BACKEND_MARK (-1) /* epoll data of libuv's backend fd in our set */

/* Wait up to timeout_ms (-1: forever) for our fds and queue their
 * readers/writers.  Returns 1 if libuv's backend fd (own-poll mode) is
 * readable.  The GIL is released only if the wait may block. */
static int
epoll_dispatch(tc_loop *self, int timeout_ms)
{
    struct epoll_event evs[128];
    int n, backend = 0;
    if (self->epfd < 0) {
        return 0;
    }
    if (timeout_ms != 0) {
        PyThreadState *ts = PyEval_SaveThread();
        n = epoll_wait(self->epfd, evs, 128, timeout_ms);
        PyEval_RestoreThread(ts);
    }
    else {
        n = epoll_wait(self->epfd, evs, 128, 0);
    }
    /* EINTR: a signal; its wakeup byte makes the backend fd readable */
    for (int i = 0; i < n; i++) {
        uint32_t ev = evs[i].events;
        if (evs[i].data.fd == TC_BACKEND_MARK) {
            backend = 1;
            continue;
        }
        /* like asyncio's EpollSelector: an error or hangup wakes both sides */
        fd_ready(self, evs[i].data.fd, (ev & ~(uint32_t)EPOLLOUT) != 0,
                 (ev & ~(uint32_t)EPOLLIN) != 0);
    }
    return backend;
}

void
tc_loop_iopoll_cb(uv_poll_t *p, int status, int events)
{
    tc_loop *loop = (tc_loop *)p->loop->data;
    (void)status;
    (void)events;
    TC_LOOP_ENTER(loop);
    epoll_dispatch(loop, 0);
}

/* ---------------------------------------------------------------------- */
/* readers and writers                                                     */

static void
fd_ready(tc_loop *self, int fd, int readable, int writable)
{
    struct tc_fdslot *slot;
    if (fd < 0 || fd >= self->fds_cap) {
        return;
    }
    slot = &self->fds[fd];
    if (readable && slot->reader != NULL) {
        Py_INCREF(slot->reader);
        if (tc_loop_due_push(self, (PyObject *)slot->reader) < 0) {
            tc_loop_report_exception(self, "Could not schedule a reader", NULL);
        }
    }
    if (writable && slot->writer != NULL) {
        Py_INCREF(slot->writer);
        if (tc_loop_due_push(self, (PyObject *)slot->writer) < 0) {
            tc_loop_report_exception(self, "Could not schedule a writer", NULL);
        }
    }
}

static int
fd_from_object(PyObject *obj)
{
    int fd = PyObject_AsFileDescriptor(obj);
    if (fd < 0 && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %d", fd);
    }
    return fd;
}

static int
epoll_set(tc_loop *self, int fd, uint32_t oldmask, uint32_t newmask)
{
    struct epoll_event ev;
    int r;
    memset(&ev, 0, sizeof(ev));
    ev.events = newmask;
    ev.data.fd = fd;
    if (newmask == 0) {
        /* a closed fd already left the set: nothing to report (as asyncio) */
        epoll_ctl(self->epfd, EPOLL_CTL_DEL, fd, &ev);
        return 0;
    }
    if (oldmask == 0) {
        r = epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &ev);
        if (r < 0 && errno == EEXIST) {
            r = epoll_ctl(self->epfd, EPOLL_CTL_MOD, fd, &ev);
        }
    }
    else {
        r = epoll_ctl(self->epfd, EPOLL_CTL_MOD, fd, &ev);
        if (r < 0 && errno == ENOENT) {
            /* the fd was closed (and maybe reused) since it was added */
            r = epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &ev);
        }
    }
    if (r < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static uint32_t
slot_mask(struct tc_fdslot *slot)
{
    return (slot->reader ? EPOLLIN : 0) | (slot->writer ? EPOLLOUT : 0);
}

static PyObject *
add_io(tc_loop *self, PyObject *const *args, Py_ssize_t nargs, int writer,
       const char *fname)
{
    int fd;
    tc_handle *h, *old;
    struct tc_fdslot *slot;
    uint32_t oldmask, newmask;
    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError, "%s() missing required positional arguments: 'fd' and 'callback'", fname);
        return NULL;
    }
    fd = fd_from_object(args[0]);
    if (fd < 0 || tc_loop_check_closed(self) < 0) {
        return NULL;
    }
    if (fd >= self->fds_cap) {
        Py_ssize_t ncap = self->fds_cap ? self->fds_cap : 64;
        while (ncap <= fd) {
            ncap *= 2;
        }
        struct tc_fdslot *nf = PyMem_Realloc(self->fds, ncap * sizeof(*nf));
        if (nf == NULL) {
            return PyErr_NoMemory();
        }
        memset(nf + self->fds_cap, 0, (ncap - self->fds_cap) * sizeof(*nf));
        self->fds = nf;
        self->fds_cap = ncap;
    }
    h = tc_loop_new_handle(self, self->ls->Handle_type, args[1], args + 2, nargs - 2, NULL,
                           NULL);
    if (h == NULL) {
        return NULL;
    }
    slot = &self->fds[fd];
    oldmask = slot_mask(slot);
    newmask = oldmask | (writer ? EPOLLOUT : EPOLLIN);
    /* always tell the kernel: the fd may have been closed and reused */
    if (epoll_set(self, fd, oldmask, newmask) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    if (oldmask == 0) {
        self->fds_count++;
    }
    if (writer) {
        old = slot->writer;
        slot->writer = h; /* stolen */
    }
    else {
        old = slot->reader;
        slot->reader = h; /* stolen */
    }
    if (old != NULL) {
        tc_handle_cancel(old);
        tc_handle_release((PyObject *)old);
    }
    Py_RETURN_NONE;
}

static PyObject *
remove_io(tc_loop *self, PyObject *fdobj, int writer)
{
    int fd = fd_from_object(fdobj);
    struct tc_fdslot *slot;
    tc_handle *old;
    uint32_t oldmask;
    if (fd < 0) {
        return NULL;
    }
    if (self->closed || fd >= self->fds_cap) {
        Py_RETURN_FALSE;
    }
    slot = &self->fds[fd];
    old = writer ? slot->writer : slot->reader;
    if (old == NULL) {
        Py_RETURN_FALSE;
    }
    oldmask = slot_mask(slot);
    if (writer) {
        slot->writer = NULL;
    }
    else {
        slot->reader = NULL;
    }
    if (epoll_set(self, fd, oldmask, slot_mask(slot)) < 0) {
        PyErr_Clear(); /* the fd is gone; nothing is watched any more */
    }
    if (slot_mask(slot) == 0) {
        self->fds_count--;
    }
    tc_handle_cancel(old);
    tc_handle_release((PyObject *)old);
    Py_RETURN_TRUE;
}

PyObject *
tc_loop_meth_add_reader(tc_loop *self, PyObject *const *args, Py_ssize_t nargs)
{
    return add_io(self, args, nargs, 0, "add_reader");
}

PyObject *
tc_loop_meth_add_writer(tc_loop *self, PyObject *const *args, Py_ssize_t nargs)
{
    return add_io(self, args, nargs, 1, "add_writer");
}

PyObject *
tc_loop_meth_remove_reader(tc_loop *self, PyObject *fd)
{
    return remove_io(self, fd, 0);
}

PyObject *
tc_loop_meth_remove_writer(tc_loop *self, PyObject *fd)
{
    return remove_io(self, fd, 1);
}

/* Drop every reader and writer (the loop is closing or being cleared). */
void
tc_loop_fds_drop(tc_loop *self)
{
    for (Py_ssize_t fd = 0; fd < self->fds_cap; fd++) {
        tc_handle *r = self->fds[fd].reader, *w = self->fds[fd].writer;
        self->fds[fd].reader = self->fds[fd].writer = NULL;
        if (r != NULL) {
            tc_handle_release((PyObject *)r);
        }
        if (w != NULL) {
            tc_handle_release((PyObject *)w);
        }
    }
    self->fds_count = 0;
}

/* ---------------------------------------------------------------------- */
/* waiting                                                                 */

/* libuv runs the prepare handle just before it polls: in libuv mode, release
 * the GIL for a poll that may block, unless there is work to do now. */
void
tc_loop_prepare_cb(uv_prepare_t *p)
{
    tc_loop *loop = (tc_loop *)p->loop->data;
    if (!loop->block_in_poll) {
        return;
    }
    /* Callbacks that libuv ran before the poll (pending write completions of
     * other components, ...) may have queued work or an earlier timer: the
     * poll must not block then (uv_stop makes its timeout 0). */
    if (loop->ready.len > 0 || loop->due.len > 0 || loop->deferred_len > 0 || loop->stopping ||
        loop->exc_type != NULL || (loop->heap_len > 0 && loop->heap[0]->when < loop->poll_deadline)) {
        uv_stop(p->loop);
        return;
    }
    if (loop->released == NULL) {
        loop->released = PyEval_SaveThread();
    }
}

/* The deadline timer may expire in uv_run's timer phase, before the poll
 * (the OS may preempt us between computing the timeout and uv_run); then
 * nothing would bound the poll, so make it non-blocking. */
static void
deadline_timer_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static int
libuv_idle(tc_loop *self)
{
    return !self->uv_dirty && self->uv->active_handles <= 1 &&
           self->uv->active_reqs.count == 0;
}

static void
enter_own_poll(tc_loop *self)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = TC_BACKEND_MARK;
    if (self->epfd < 0 || self->iopoll == NULL) {
        return;
    }
    /* first take epfd out of libuv's set (uv_poll_stop does it at once):
     * epoll sets must not contain each other */
    uv_poll_stop(self->iopoll);
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, uv_backend_fd(self->uv), &ev) < 0) {
        uv_poll_start(self->iopoll, UV_READABLE, tc_loop_iopoll_cb);
        self->uv_dirty = 1;
        return;
    }
    uv_timer_stop(self->uvtimer);
    self->own_poll = 1;
}

static void
leave_own_poll(tc_loop *self)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    epoll_ctl(self->epfd, EPOLL_CTL_DEL, uv_backend_fd(self->uv), &ev);
    /* libuv adds epfd back to its set in the uv_run that follows */
    uv_poll_start(self->iopoll, UV_READABLE, tc_loop_iopoll_cb);
    self->own_poll = 0;
}

/* The poll timeout for our own work in ms (-1: none), rounded up: a timer is
 * checked against uv_hrtime afterwards, so it never fires early. */
static int
own_timeout_ms(tc_loop *self)
{
    double dt, ms;
    if (self->ready.len > 0 || self->due.len > 0 || self->deferred_len > 0 || self->stopping) {
        return 0;
    }
    if (self->heap_len == 0) {
        return -1;
    }
    dt = self->heap[0]->when - tc_loop_time(self);
    if (dt <= 0) {
        return 0;
    }
    ms = ceil(dt * 1e3);
    return ms <= 86400000.0 ? (int)ms : 86400000; /* a day at most (and NaN) */
}

static int
own_poll_once(tc_loop *self)
{
    int timeout = own_timeout_ms(self);
    int uvt = uv_backend_timeout(self->uv);
    if (uvt == 0) {
        /* closing handles or pending callbacks in libuv */
        uv_run(self->uv, UV_RUN_NOWAIT);
        TC_LOOP_ENTER(self);
        if (self->exc_type != NULL) {
            return 0;
        }
        timeout = own_timeout_ms(self);
    }
    else if (uvt > 0 && (timeout < 0 || uvt < timeout)) {
        timeout = uvt;
    }
    if (epoll_dispatch(self, timeout)) {
        uv_run(self->uv, UV_RUN_NOWAIT);
        TC_LOOP_ENTER(self);
    }
    else {
        /* keep uv_now() current for components that start libuv timers */
        uv_update_time(self->uv);
    }
    return 0;
}

static void
libuv_poll_once(tc_loop *self)
{
    uv_run_mode mode = UV_RUN_NOWAIT;
    self->poll_deadline = HUGE_VAL;
    if (self->ready.len == 0 && self->deferred_len == 0 && !self->stopping) {
        mode = UV_RUN_ONCE;
        if (self->heap_len > 0) {
            double dt = self->heap[0]->when - tc_loop_time(self);
            self->poll_deadline = self->heap[0]->when;
            if (dt <= 0) {
                mode = UV_RUN_NOWAIT;
            }
            else {
                /* libuv counts whole milliseconds: round up, then re-check
                 * against uv_hrtime, so a timer is never early */
                double ms = ceil(dt * 1e3);
                uint64_t ims = ms <= 1e12 ? (uint64_t)ms : (uint64_t)1e12; /* and NaN */
                uv_update_time(self->uv);
                uv_timer_start(self->uvtimer, deadline_timer_cb, ims, 0);
            }
        }
        else {
            uv_timer_stop(self->uvtimer);
        }
    }
    self->block_in_poll = (mode == UV_RUN_ONCE);
    uv_run(self->uv, mode);
    TC_LOOP_ENTER(self);
    self->block_in_poll = 0;
    self->uv_dirty = 0;
}

/* run_once's wait: choose the mode (see the top of this file), then poll.
 * 0, or -1 with an exception set. */
int
tc_loop_poll(tc_loop *self)
{
    if (libuv_idle(self)) {
        if (!self->own_poll) {
            enter_own_poll(self);
        }
    }
    else if (self->own_poll) {
        leave_own_poll(self);
    }
    if (self->own_poll) {
        if (own_poll_once(self) < 0) {
            return -1;
        }
    }
    else {
        libuv_poll_once(self);
    }
    return 0;
}
