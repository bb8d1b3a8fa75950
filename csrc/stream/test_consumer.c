/* stream component, test build only (TORNADO_C_TEST=1, see setup.py): a
 * C consumer exposed as _core._test_stream_consumer(stream, log) so that
 * tests can drive the consumer API (stream.h) from Python, and
 * _core._test_stream_from_fd(loop, fd, max_buffer_size, read_chunk_size).
 * It uses nothing but stream.h, as any other consumer would.
 *
 * The consumer splits its input into lines (b"\n") and appends
 * ("data", line) to `log`; some lines are commands it carries out from
 * inside on_data:
 *   b"pause"      tc_stream_pause_reading() and stop at this line
 *   b"close"      tc_stream_close() from inside on_data
 *   b"detach"     tc_stream_set_consumer(NULL): the rest stays buffered
 *   b"echo X"     tc_stream_write(b"X\n") (one write)
 *   b"big N"      tc_stream_write_obj(b"x" * N)
 * A line without its b"\n" stays in the stream's buffer.  on_drain appends
 * ("drain",), on_close appends ("close", error). */
#include "common.h"
#include "state.h"
#include "loop/loop.h"
#include "stream/stream.h"

#include <unistd.h>

typedef struct {
    PyObject_HEAD
    tc_stream *stream;      /* strong while attached */
    PyObject *log;          /* strong list */
} tconsumer;

static void
tcons_log(tconsumer *c, PyObject *item)
{
    if (item == NULL) {
        return;
    }
    if (PyList_Append(c->log, item) < 0) {
        /* left set: the stream reports it to the loop */
    }
    Py_DECREF(item);
}

static void tcons_on_data(void *ctx, tc_stream *s);
static void tcons_on_drain(void *ctx, tc_stream *s);
static void tcons_on_close(void *ctx, tc_stream *s, PyObject *error);

static const tc_stream_consumer tcons_cb = {
    .on_data = tcons_on_data,
    .on_drain = tcons_on_drain,
    .on_close = tcons_on_close,
};

static void
tcons_detach(tconsumer *c)
{
    tc_stream *s = c->stream;
    if (s == NULL) {
        return;
    }
    c->stream = NULL;
    if (tc_stream_consumer_is(s, &tcons_cb, c)) {
        tc_stream_set_consumer(s, NULL, NULL);
    }
    Py_DECREF(s);
}

static void
tcons_on_data(void *ctx, tc_stream *s)
{
    tconsumer *c = (tconsumer *)ctx;
    Py_INCREF(c);
    for (;;) {
        size_t len, n;
        const char *data = tc_stream_peek(s, &len);
        const char *nl = memchr(data, '\n', len);
        PyObject *line;
        if (nl == NULL) {
            break;
        }
        n = (size_t)(nl - data);
        line = PyBytes_FromStringAndSize(data, (Py_ssize_t)n);
        if (line == NULL) {
            break;
        }
        tc_stream_consume(s, n + 1);
        tcons_log(c, Py_BuildValue("(sO)", "data", line));
        if (n == 5 && memcmp(PyBytes_AS_STRING(line), "pause", 5) == 0) {
            Py_DECREF(line);
            tc_stream_pause_reading(s);
            break;
        }
        if (n == 5 && memcmp(PyBytes_AS_STRING(line), "close", 5) == 0) {
            Py_DECREF(line);
            tc_stream_close(s, NULL);
            break;
        }
        if (n == 6 && memcmp(PyBytes_AS_STRING(line), "detach", 6) == 0) {
            Py_DECREF(line);
            tcons_log(c, Py_BuildValue("(s)", "detached"));
            tcons_detach(c);
            break;
        }
        if (n >= 5 && memcmp(PyBytes_AS_STRING(line), "echo ", 5) == 0) {
            /* one write (two small ones would meet Nagle + delayed ACK) */
            PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n - 5 + 1));
            int rc = -1;
            if (out != NULL) {
                memcpy(PyBytes_AS_STRING(out), PyBytes_AS_STRING(line) + 5, n - 5);
                PyBytes_AS_STRING(out)[n - 5] = '\n';
                rc = tc_stream_write(s, PyBytes_AS_STRING(out), n - 5 + 1);
                Py_DECREF(out);
            }
            Py_DECREF(line);
            if (rc < 0) {
                break;
            }
            continue;
        }
        if (n >= 4 && memcmp(PyBytes_AS_STRING(line), "big ", 4) == 0) {
            long k = strtol(PyBytes_AS_STRING(line) + 4, NULL, 10);
            PyObject *big = PyBytes_FromStringAndSize(NULL, k > 0 ? k : 0);
            Py_DECREF(line);
            if (big == NULL) {
                break;
            }
            memset(PyBytes_AS_STRING(big), 'x', (size_t)PyBytes_GET_SIZE(big));
            if (tc_stream_write_obj(s, big) < 0) {
                Py_DECREF(big);
                break;
            }
            Py_DECREF(big);
            tcons_log(c, Py_BuildValue("(sn)", "pending", (Py_ssize_t)tc_stream_write_pending(s)));
            continue;
        }
        Py_DECREF(line);
        if (tc_stream_closed(s) || c->stream == NULL) {
            break;
        }
    }
    Py_DECREF(c);
}

static void
tcons_on_drain(void *ctx, tc_stream *s)
{
    tconsumer *c = (tconsumer *)ctx;
    tcons_log(c, Py_BuildValue("(sn)", "drain", (Py_ssize_t)tc_stream_write_pending(s)));
}

static void
tcons_on_close(void *ctx, tc_stream *s, PyObject *error)
{
    tconsumer *c = (tconsumer *)ctx;
    tc_stream *mine = c->stream;
    (void)s;
    tcons_log(c, Py_BuildValue("(sO)", "close", error ? error : Py_None));
    c->stream = NULL; /* the stream already cleared its consumer */
    Py_XDECREF(mine);
}

static PyObject *
tcons_resume(tconsumer *c, PyObject *Py_UNUSED(ignored))
{
    if (c->stream != NULL) {
        tc_stream_resume_reading(c->stream);
    }
    Py_RETURN_NONE;
}

static PyObject *
tcons_pause(tconsumer *c, PyObject *Py_UNUSED(ignored))
{
    if (c->stream != NULL) {
        tc_stream_pause_reading(c->stream);
    }
    Py_RETURN_NONE;
}

static PyObject *
tcons_detach_py(tconsumer *c, PyObject *Py_UNUSED(ignored))
{
    tcons_detach(c);
    Py_RETURN_NONE;
}

static PyObject *
tcons_write(tconsumer *c, PyObject *data)
{
    if (c->stream == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "consumer not attached");
        return NULL;
    }
    if (tc_stream_write_obj(c->stream, data) < 0) {
        return NULL;
    }
    return PyLong_FromSize_t(tc_stream_write_pending(c->stream));
}

static PyObject *
tcons_close(tconsumer *c, PyObject *Py_UNUSED(ignored))
{
    if (c->stream != NULL) {
        tc_stream *s = c->stream;
        Py_INCREF(s);
        tc_stream_close(s, NULL);
        Py_DECREF(s);
    }
    Py_RETURN_NONE;
}

static PyObject *
tcons_peek(tconsumer *c, PyObject *Py_UNUSED(ignored))
{
    size_t len;
    const char *d;
    if (c->stream == NULL) {
        Py_RETURN_NONE;
    }
    d = tc_stream_peek(c->stream, &len);
    return PyBytes_FromStringAndSize(d, (Py_ssize_t)len);
}

static PyObject *
tcons_attached(tconsumer *c, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(c->stream != NULL);
}

static int
tcons_traverse(tconsumer *c, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(c));
    Py_VISIT(c->stream);
    Py_VISIT(c->log);
    return 0;
}

static int
tcons_clear(tconsumer *c)
{
    tcons_detach(c);
    Py_CLEAR(c->log);
    return 0;
}

static void
tcons_dealloc(tconsumer *c)
{
    PyTypeObject *tp = Py_TYPE(c);
    PyObject_GC_UnTrack(c);
    tcons_clear(c);
    tp->tp_free((PyObject *)c);
    Py_DECREF(tp);
}

static PyMethodDef tcons_methods[] = {
    {"resume", (PyCFunction)tcons_resume, METH_NOARGS, NULL},
    {"pause", (PyCFunction)tcons_pause, METH_NOARGS, NULL},
    {"detach", (PyCFunction)tcons_detach_py, METH_NOARGS, NULL},
    {"write", (PyCFunction)tcons_write, METH_O, NULL},
    {"close", (PyCFunction)tcons_close, METH_NOARGS, NULL},
    {"peek", (PyCFunction)tcons_peek, METH_NOARGS, NULL},
    {"attached", (PyCFunction)tcons_attached, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot tcons_slots[] = {
    {Py_tp_dealloc, tcons_dealloc},
    {Py_tp_traverse, tcons_traverse},
    {Py_tp_clear, tcons_clear},
    {Py_tp_methods, tcons_methods},
    {0, NULL},
};

static PyType_Spec tconsumer_spec = {
    .name = "tornado_c._core.TestStreamConsumer",
    .basicsize = sizeof(tconsumer),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = tcons_slots,
};

static PyObject *
fn_test_consumer(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_state *st = tc_get_state(module);
    tconsumer *c;
    if (nargs != 2 || !tc_stream_check(st, args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_test_stream_consumer(stream, log: list)");
        return NULL;
    }
    if (tc_stream_loop((tc_stream *)args[0]) == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "stream is not initialised");
        return NULL;
    }
    c = PyObject_GC_New(tconsumer, st->stream->TestConsumer_type);
    if (c == NULL) {
        return NULL;
    }
    c->stream = (tc_stream *)Py_NewRef(args[0]);
    c->log = Py_NewRef(args[1]);
    PyObject_GC_Track(c);
    tc_stream_set_consumer(c->stream, &tcons_cb, c);
    return (PyObject *)c;
}

static PyObject *
fn_test_from_fd(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    /* _test_stream_from_fd(loop, fd, max_buffer_size, read_chunk_size):
     * tc_stream_from_fd() with the default type, for tests.  On failure the
     * fd is still the caller's (closed here, as a test has no use for it). */
    tc_state *st = tc_get_state(module);
    long fd;
    Py_ssize_t mbs, rcs;
    tc_stream *s;
    if (nargs != 4 || !tc_loop_check(st, args[0])) {
        PyErr_SetString(PyExc_TypeError, "_test_stream_from_fd(loop, fd, max_buffer_size, read_chunk_size)");
        return NULL;
    }
    fd = PyLong_AsLong(args[1]);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    mbs = PyLong_AsSsize_t(args[2]);
    rcs = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    s = tc_stream_from_fd(st, (tc_loop *)args[0], (int)fd, NULL, mbs, rcs);
    if (s == NULL) {
        if (fd >= 0 && fd < (1 << 20)) {
            close((int)fd);
        }
        return NULL;
    }
    return (PyObject *)s;
}

static PyMethodDef test_functions[] = {
    {"_test_stream_consumer", (PyCFunction)(void (*)(void))fn_test_consumer, METH_FASTCALL,
     "_test_stream_consumer(stream, log): attach a test-only C consumer (see tests)."},
    {"_test_stream_from_fd", (PyCFunction)(void (*)(void))fn_test_from_fd, METH_FASTCALL,
     "_test_stream_from_fd(loop, fd, max_buffer_size, read_chunk_size): tc_stream_from_fd()."},
    {NULL, NULL, 0, NULL},
};

int
tc_stream_test_exec(PyObject *module, struct tc_state *st)
{
    if (tc_add_type(module, &tconsumer_spec, NULL, &st->stream->TestConsumer_type) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, test_functions);
}
