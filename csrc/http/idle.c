/* http component: the idle (header) timeout of the server's connections,
 * one list and one timer per (loop, timeout) instead of one timer per
 * connection (issue 15, memory per connection).
 *
 * A connection waits for the next request head for at most its
 * idle_connection_timeout (upstream: gen.with_timeout around
 * _read_message's header read, then a quiet close).  Every connection of
 * one server on one loop has the same timeout, and a wait starts at the
 * loop's time, which never goes back: so when the connections waiting for a
 * head are kept in the order their waits started, their deadlines are in
 * order too, and one timer for the first deadline serves them all.  A
 * connection is appended when its wait starts and unlinked when a head
 * arrives, when it closes or is detached (all O(1): the links are in the
 * sconn).  When the timer fires it closes every connection whose deadline
 * has come and arms itself for the next one; it is cancelled when a
 * connection goes away and leaves the list empty, so a server without
 * connections holds no timer.
 *
 * Per connection that is two pointers in the sconn instead of a
 * TimerHandle, the bound method it calls and that method's Context (248 B).
 *
 * Ownership.  _core._HTTPIdleList is a small hidden Python type: each linked
 * sconn holds a strong reference to its list (sc->idle, taken at the first
 * wait, kept for the connection's life), the list holds its loop and its
 * TimerHandle (whose callback is the list's bound _fire: a cycle broken
 * when the timer fires or is cancelled), and borrows the linked sconns: a
 * linked sconn is serving and holds itself until _closed(), which unlinks
 * it (as detach() and dealloc do).  The module state remembers up to
 * TC_HTTP_IDLE_CACHE lists (borrowed) so that connections share them; a
 * list takes itself out of that cache when it is freed.
 */
#include "http/internal.h"

struct tc_http_idle {
    PyObject_HEAD
    tc_http_state *hs;        /* borrowed: the type holds the module */
    tc_loop *loop;            /* strong */
    PyObject *timer;          /* strong TimerHandle or NULL */
    double timeout;           /* seconds, >= 0 */
    sconn *head, *tail;       /* borrowed: waiting connections, oldest first */
};

static PyObject *idle_fire(tc_http_idle *il, PyObject *Py_UNUSED(ignored));

/* Arm the timer for the first deadline unless it is armed.  0, or -1 with
 * an exception set. */
static int
idle_arm(tc_http_idle *il)
{
    if (il->timer != NULL || il->head == NULL) {
        return 0;
    }
    double left = il->head->head_wait_start + il->timeout - tc_loop_time(il->loop);
    PyObject *cb = PyObject_GetAttrString((PyObject *)il, "_fire");
    if (cb == NULL) {
        return -1;
    }
    il->timer = tc_loop_call_later(il->loop, left > 0 ? left : 0, cb, NULL, 0, NULL);
    Py_DECREF(cb);
    return il->timer == NULL ? -1 : 0;
}

static void
idle_unlink_from(tc_http_idle *il, sconn *sc)
{
    if (sc->idle_prev != NULL) {
        sc->idle_prev->idle_next = sc->idle_next;
    } else {
        il->head = sc->idle_next;
    }
    if (sc->idle_next != NULL) {
        sc->idle_next->idle_prev = sc->idle_prev;
    } else {
        il->tail = sc->idle_prev;
    }
    sc->idle_prev = sc->idle_next = NULL;
    sc->idle_linked = 0;
}

TC_INTERNAL void
tc_http_idle_unlink(sconn *sc, int leaving)
{
    tc_http_idle *il = sc->idle;
    if (il == NULL) {
        return;
    }
    if (sc->idle_linked) {
        idle_unlink_from(il, sc);
    }
    /* A head that arrives leaves the timer armed (a keep-alive connection
     * re-enters the list at its next wait: no timer per request); when it
     * fires with nothing due it arms for the new first deadline, or not at
     * all.  A connection that goes away cancels it when nothing waits any
     * more, so a server without idle connections holds no timer (and no
     * list <-> timer cycle). */
    if (leaving && il->head == NULL) {
        tc_http_cancel_timer(&il->timer);
    }
}

/* The list of (loop, timeout), shared through the state's cache; new
 * reference, or NULL with an exception set. */
static tc_http_idle *
idle_list_for(tc_http_state *hs, tc_loop *loop, double timeout)
{
    int free_slot = -1;
    for (int i = 0; i < TC_HTTP_IDLE_CACHE; i++) {
        tc_http_idle *il = hs->idle_cache[i];
        if (il != NULL && tc_loop_is_closed(il->loop)) {
            /* its loop is closed (connections left on it keep it): make
             * room for the lists of live loops */
            il = hs->idle_cache[i] = NULL;
        }
        if (il == NULL) {
            free_slot = free_slot < 0 ? i : free_slot;
        } else if (il->loop == loop && il->timeout == timeout) {
            Py_INCREF(il);
            return il;
        }
    }
    tc_http_idle *il = PyObject_GC_New(tc_http_idle, hs->IdleListType);
    if (il == NULL) {
        return NULL;
    }
    Py_INCREF(hs->IdleListType); /* a heap type's instances hold it */
    il->hs = hs;
    il->loop = (tc_loop *)Py_NewRef((PyObject *)loop);
    il->timer = NULL;
    il->timeout = timeout;
    il->head = il->tail = NULL;
    PyObject_GC_Track(il);
    if (free_slot >= 0) {
        hs->idle_cache[free_slot] = il; /* borrowed: dealloc removes it */
    }
    return il;
}

TC_INTERNAL int
tc_http_idle_start(sconn *sc)
{
    if (sc->idle == NULL) {
        sc->idle = idle_list_for(sc->hs, sc->loop, sc->idle_timeout);
        if (sc->idle == NULL) {
            return -1;
        }
    }
    tc_http_idle *il = sc->idle;
    tc_http_idle_unlink(sc, 0);
    sc->idle_prev = il->tail;
    sc->idle_next = NULL;
    if (il->tail != NULL) {
        il->tail->idle_next = sc;
    } else {
        il->head = sc;
    }
    il->tail = sc;
    sc->idle_linked = 1;
    return idle_arm(il);
}

static PyObject *
idle_fire(tc_http_idle *il, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(il);
    Py_CLEAR(il->timer);
    double now = tc_loop_time(il->loop);
    /* the same margin the per-connection timer had: a deadline less than
     * 1 ms away counts as come */
    while (il->head != NULL && il->head->head_wait_start + il->timeout - now <= 0.001) {
        sconn *sc = il->head;
        idle_unlink_from(il, sc);
        Py_INCREF(sc);
        /* upstream: TimeoutError from with_timeout -> self.close(), quietly */
        tc_http_sc_idle_expired(sc);
        Py_DECREF(sc);
    }
    int r = idle_arm(il);
    Py_DECREF(il);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static int
idle_traverse(tc_http_idle *il, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(il));
    Py_VISIT(il->loop);
    Py_VISIT(il->timer);
    return 0;
}

static int
idle_clear(tc_http_idle *il)
{
    Py_CLEAR(il->timer);
    return 0;
}

static void
idle_dealloc(tc_http_idle *il)
{
    PyTypeObject *tp = Py_TYPE(il);
    PyObject_GC_UnTrack(il);
    for (int i = 0; i < TC_HTTP_IDLE_CACHE; i++) {
        if (il->hs->idle_cache[i] == il) {
            il->hs->idle_cache[i] = NULL;
        }
    }
    /* no sconn is linked: each holds a reference while it is */
    if (il->timer != NULL) {
        tc_loop_handle_cancel(il->timer);
    }
    idle_clear(il);
    Py_CLEAR(il->loop);
    PyObject_GC_Del(il);
    Py_DECREF(tp);
}

static PyMethodDef idle_methods[] = {
    {"_fire", (PyCFunction)idle_fire, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot idle_slots[] = {
    {Py_tp_dealloc, idle_dealloc},
    {Py_tp_traverse, idle_traverse},
    {Py_tp_clear, idle_clear},
    {Py_tp_methods, idle_methods},
    {0, NULL},
};

static PyType_Spec idle_spec = {
    .name = "tornado_c._core._HTTPIdleList",
    .basicsize = sizeof(tc_http_idle),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = idle_slots,
};

TC_INTERNAL int
tc_http_idle_exec(PyObject *module, tc_http_state *hs)
{
    return tc_add_type(module, &idle_spec, NULL, &hs->IdleListType);
}
