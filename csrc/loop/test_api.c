/* loop component, test build only (TORNADO_C_TEST=1, see setup.py): entry
 * points for the tests.
 *
 *   _core._uv_selftest(): libuv runs one timer on a private uv_loop_t (True
 *       if it fired once); the loop is closed before it returns.
 *
 * tc_loop_exec calls tc_loop_test_exec (loop/internal.h) in the test build.
 */
#include "internal.h"

static void
selftest_timer_cb(uv_timer_t *timer)
{
    int *fired = (int *)timer->data;
    *fired += 1;
}

/* Initialise a private uv_loop_t, fire one timer on it, close it. */
static PyObject *
uv_selftest(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    uv_loop_t loop;
    uv_timer_t timer; /* owned by `loop`; closed before the loop is closed */
    int fired = 0;
    int rc = uv_loop_init(&loop);
    if (rc < 0) {
        PyErr_Format(PyExc_OSError, "uv_loop_init: %s", uv_strerror(rc));
        return NULL;
    }
    uv_timer_init(&loop, &timer);
    timer.data = &fired;
    uv_timer_start(&timer, selftest_timer_cb, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    if (rc < 0) {
        PyErr_Format(PyExc_RuntimeError, "uv_loop_close: %s", uv_strerror(rc));
        return NULL;
    }
    return PyBool_FromLong(fired == 1);
}

static PyMethodDef loop_test_methods[] = {
    {"_uv_selftest", uv_selftest, METH_NOARGS, "Run one timer on a private uv loop; True if it fired."},
    {NULL, NULL, 0, NULL},
};

int
tc_loop_test_exec(PyObject *module, struct tc_state *st)
{
    (void)st;
    return PyModule_AddFunctions(module, loop_test_methods);
}
