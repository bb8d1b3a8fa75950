/* The WebSocket frame reader: a C consumer (stream.h) on the C IOStream
 * that takes frames straight out of the stream's input.
 *
 * Why: upstream (and our Python-level reader before this) gets each frame
 * through IOStream.read_bytes(): the stream copies the socket's bytes into
 * its buffer, read_bytes copies them into a bytes object, unmasking makes a
 * third copy.  For a 64 KiB message those passes were most of the cost, and
 * a message bigger than the stream's read chunk made the buffer grow while
 * the payload trickled in.  Here the reader sees the bytes where the read
 * put them (the loop's shared read buffer, peek_shared), and unmasks each
 * payload piece as it arrives straight into the bytes object on_message
 * will get: one pass over the payload, no buffer growth (the stream's
 * buffer holds at most a partial header between reads), linear in the
 * message size however it is split.
 *
 * The Python side (tornado_c/websocket.py, _CWebSocketProtocol13) keeps
 * upstream's control flow: it asks for frames with reader.read(callback,
 * context) and handles them one by one (fragmentation rules, control
 * frames, UTF-8, on_message, back-pressure, the yield threshold), as
 * before.  read() returns the next whole frame, oldest first, as
 *     (first_byte, payload: bytes (unmasked), frame_len)
 * or, once the frames parsed before it were handed out, an int verdict
 * (-1 ABORT, -2 TOO_BIG: close 1009, -3 the frame is bigger than the
 * stream's max_buffer_size: upstream's IOStream fails with "Reached maximum
 * read buffer size") -- or, when there is no whole frame yet, the callback
 * itself: the reader keeps it and later has the loop call
 * callback(item) (loop.call_soon(callback, item, context=context), where
 * an awaited Future would have woken its Task) with such a frame or
 * verdict, None once the stream closed (upstream's StreamClosedError from
 * read_bytes), or an exception object (MemoryError) to raise.  One frame
 * per call, not a list of them: the common case is one frame per wake-up,
 * and a list around it cost an allocation and a loop in Python per
 * message.
 *
 * Memory while idle (docs/memory.md): a callback rather than a Future
 * lets the Python side wait without a coroutine or a Future per
 * connection; between messages the reader holds the callback, its context
 * and nothing else (the queue of parsed frames is freed once empty).
 *
 * Back-pressure: the stream keeps reading while Python handles the last
 * frame handed out (upstream's IOStream, too, keeps reading into an empty
 * buffer with no read pending), and a big frame keeps filling; while whole
 * frames wait that nobody asked for yet, the stream is paused until the
 * read() that takes the last of them, so at most the frames of one read
 * wait beyond the one Python works on (an on_message coroutine that takes
 * its time holds the peer back through TCP, as upstream).  Not toggling the
 * socket's polling for every message saves two epoll_ctl calls per echo.
 *
 * max_message_size: tc_ws_parse needs the size of the unfinished
 * fragmented message; the reader tracks it itself from the frames it
 * parsed (a data frame without FIN starts one, continuations add to it,
 * FIN ends it), the sum upstream computes from its fragment buffer.  When
 * a frame breaks the fragmentation rules, Python aborts at that frame and
 * ignores the rest of the batch, so what the reader assumed after it never
 * matters.  After a close frame or a verdict the reader parses nothing
 * more (upstream stops reading there).
 *
 * A frame's payload object is allocated when its header is whole (up to
 * max_message_size, already checked): the memory is reserved at once but
 * its pages are only touched as the bytes arrive.
 *
 * Ownership: the reader holds a strong reference to its stream while
 * attached; the stream does not own the reader (ctx is borrowed), the
 * reader detaches itself in detach()/tp_clear/tp_dealloc.  The protocol
 * object holds the reader; the reader holds the protocol's callback while
 * it waits (a cycle the protocol breaks by detach(), the GC otherwise).
 */
#include "common.h"
#include "state.h"
#include "loop/loop.h"
#include "stream/stream.h"
#include "websocket/websocket.h"

#include <string.h>

typedef struct {
    uint8_t first;
    PyObject *payload; /* strong bytes */
    size_t frame_len;
} ready_frame;

typedef struct {
    PyObject_HEAD
    tc_stream *stream;   /* strong while attached, NULL after */
    PyObject *waiter;    /* strong callback read() registered, or NULL */
    PyObject *context;   /* strong contextvars.Context to call it in, or
                          * NULL (the current one); set with waiter */
    PyObject *payload;   /* strong bytes being filled, or NULL */
    tc_ws_frame f;       /* header of the frame being filled */
    size_t filled;       /* payload bytes in `payload` so far */
    ready_frame *ready;  /* PyMem array: parsed frames, [head, nready) not
                          * handed out yet */
    size_t head, nready, cap;
    uint64_t max_size, max_buffer, frag_len;
    unsigned flags;
    int verdict;         /* 0, or the verdict not handed out yet */
    char frag;           /* inside a fragmented message */
    char stopped;        /* a close frame or a verdict: parse no more */
    char closed;         /* the stream closed (on_close) */
    char reported;       /* verdict handed out */
    char paused;         /* we paused the stream (frames nobody asked for yet) */
} wsreader;

static void reader_on_data(void *ctx, tc_stream *s);
static void reader_on_close(void *ctx, tc_stream *s, PyObject *error);

static const tc_stream_consumer reader_cb = {
    .on_data = reader_on_data,
    .on_drain = NULL,
    .on_close = reader_on_close,
    .peek_shared = 1,
};

/* dst = src unmasked; `off`: how far into the payload src starts. */
static void
unmask_to(const tc_ws_frame *f, size_t off, const uint8_t *src, uint8_t *dst, size_t n)
{
    if (!f->masked) {
        memcpy(dst, src, n);
        return;
    }
    uint8_t key[4];
    for (int i = 0; i < 4; i++) {
        key[i] = f->mask[(off + (size_t)i) & 3];
    }
    tc_ws_mask(key, src, dst, n);
}

/* The frame in r->f with its payload r->payload is whole: queue it.
 * 0, or -1 with MemoryError set. */
static int
frame_done(wsreader *r)
{
    uint8_t first = r->f.first, opcode = first & TC_WS_OPCODE_MASK;
    if (r->nready == r->cap && r->head > 0) {
        /* room at the front: the frames handed out left it */
        memmove(r->ready, r->ready + r->head, (r->nready - r->head) * sizeof(*r->ready));
        r->nready -= r->head;
        r->head = 0;
    }
    if (r->nready == r->cap) {
        size_t ncap = r->cap ? 2 * r->cap : 8;
        ready_frame *n = PyMem_Realloc(r->ready, ncap * sizeof(*n));
        if (n == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->ready = n;
        r->cap = ncap;
    }
    ready_frame *q = &r->ready[r->nready++];
    q->first = first;
    q->payload = r->payload; /* the reference moves to the queue */
    q->frame_len = r->f.header_len + (size_t)r->f.length;
    r->payload = NULL;
    r->filled = 0;
    /* the unfinished fragmented message, as upstream's buffer would hold it */
    if (opcode == 0x1 || opcode == 0x2) {
        if (!(first & TC_WS_FIN)) {
            r->frag = 1;
            r->frag_len = r->f.length;
        }
    } else if (opcode == 0x0 && r->frag) {
        r->frag_len += r->f.length;
        if (first & TC_WS_FIN) {
            r->frag = 0;
            r->frag_len = 0;
        }
    } else if (opcode == 0x8) {
        r->stopped = 1; /* upstream reads nothing after a close frame */
    }
    return 0;
}

/* Take whole frames and payload pieces from the stream's input (no Python
 * code runs: only bytes objects are made).  0, or -1 with an exception. */
static int
parse_input(wsreader *r, tc_stream *s)
{
    while (!r->stopped) {
        size_t len;
        const uint8_t *p = (const uint8_t *)tc_stream_peek(s, &len);
        if (r->payload != NULL) {
            /* filling a payload: take what is there of it */
            size_t want = (size_t)r->f.length - r->filled;
            size_t n = len < want ? len : want;
            if (n == 0) {
                return 0;
            }
            unmask_to(&r->f, r->filled, p,
                      (uint8_t *)PyBytes_AS_STRING(r->payload) + r->filled, n);
            tc_stream_consume(s, n);
            r->filled += n;
            if (r->filled < (size_t)r->f.length) {
                return 0;
            }
            if (frame_done(r) < 0) {
                return -1;
            }
            continue;
        }
        if (len == 0) {
            return 0;
        }
        uint64_t need = 0;
        memset(&r->f, 0, sizeof(r->f)); /* header_len 0 until the header is whole */
        int v = tc_ws_parse(p, len, r->flags, r->frag ? r->frag_len : 0, r->max_size, &r->f,
                            &need);
        if (v == TC_WS_ABORT || v == TC_WS_TOO_BIG) {
            r->verdict = v == TC_WS_ABORT ? -1 : -2;
            r->stopped = 1;
            return 0;
        }
        if (v == TC_WS_NEED && r->f.header_len == 0) {
            return 0; /* the header is not whole yet */
        }
        /* the header is whole (and the length within max_message_size) */
        if (r->f.header_len + r->f.length > r->max_buffer) {
            /* upstream's read_bytes(length) would overflow the stream's
             * buffer: "Reached maximum read buffer size" */
            r->verdict = -3;
            r->stopped = 1;
            return 0;
        }
        size_t plen = (size_t)r->f.length;
        PyObject *payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)plen);
        if (payload == NULL) {
            return -1;
        }
        size_t have = len - r->f.header_len;
        if (have > plen) {
            have = plen;
        }
        if (have) {
            unmask_to(&r->f, 0, p + r->f.header_len, (uint8_t *)PyBytes_AS_STRING(payload), have);
        }
        tc_stream_consume(s, r->f.header_len + have);
        r->payload = payload;
        r->filled = have;
        if (have < plen) {
            return 0;
        }
        if (frame_done(r) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
has_output(wsreader *r)
{
    return r->head < r->nready || (r->verdict != 0 && !r->reported);
}

/* What read() hands out next (has_output() is true): the oldest frame as
 * a new (first, payload, frame_len) tuple, or the verdict once no frame is
 * left.  NULL with an exception. */
static PyObject *
take_one(wsreader *r)
{
    if (r->head == r->nready) {
        r->reported = 1;
        return PyLong_FromLong(r->verdict);
    }
    ready_frame *q = &r->ready[r->head];
    PyObject *t = PyTuple_New(3);
    PyObject *len = t != NULL ? PyLong_FromSize_t(q->frame_len) : NULL;
    if (len == NULL) {
        Py_XDECREF(t);
        return NULL; /* the frame stays queued */
    }
    PyTuple_SET_ITEM(t, 0, PyLong_FromLong(q->first)); /* a small int: cannot fail */
    PyTuple_SET_ITEM(t, 1, q->payload); /* the queue's reference moves to t */
    PyTuple_SET_ITEM(t, 2, len);        /* steals len */
    q->payload = NULL;
    if (++r->head == r->nready) {
        r->head = r->nready = 0;
    }
    return t;
}

static void
reader_detach(wsreader *r)
{
    tc_stream *s = r->stream;
    if (s == NULL) {
        return;
    }
    r->stream = NULL;
    if (tc_stream_consumer_is(s, &reader_cb, r)) {
        tc_stream_set_consumer(s, NULL, NULL);
    }
    Py_DECREF(s);
}

/* Have the loop call the waiting callback with `value` (borrowed; a
 * frame tuple, a verdict, None, or an exception object): call_soon, as a
 * Future resolved here would schedule its awaiting Task.  The waiter is
 * cleared first (the callback may call read() again). */
static void
wake(wsreader *r, tc_stream *s, PyObject *value)
{
    PyObject *cb = r->waiter, *ctx = r->context;
    if (cb == NULL) {
        return;
    }
    r->waiter = NULL;
    r->context = NULL;
    PyObject *h = tc_loop_call_soon(tc_stream_loop(s), cb, &value, 1, ctx);
    if (h == NULL) {
        tc_loop_report_exception(tc_stream_loop(s), "waking the WebSocket reader failed", NULL);
    }
    Py_XDECREF(h);
    Py_DECREF(cb);
    Py_XDECREF(ctx);
}

/* The queue of parsed frames is empty: give its memory back (an idle
 * connection keeps none). */
static void
release_queue(wsreader *r)
{
    if (r->head == r->nready && r->ready != NULL) {
        PyMem_Free(r->ready);
        r->ready = NULL;
        r->head = r->nready = r->cap = 0;
    }
}

static void
reader_on_data(void *ctx, tc_stream *s)
{
    wsreader *r = (wsreader *)ctx;
    Py_INCREF(r);
    Py_INCREF(s);
    int rc = parse_input(r, s);
    if ((rc == 0 && has_output(r) && r->waiter == NULL) || r->stopped) {
        /* frames nobody asked for yet (or the end): read nothing more
         * until the next read() */
        if (!r->paused) {
            r->paused = 1;
            tc_stream_pause_reading(s);
        }
    }
    if (rc < 0 || (has_output(r) && r->waiter != NULL)) {
        /* Python runs from here on: nothing may stay in the shared buffer */
        PyObject *exc = rc < 0 ? tc_uvio_fetch_exception() : NULL;
        if (tc_stream_own_input(s) < 0) {
            PyObject *e = tc_uvio_fetch_exception();
            if (exc == NULL) {
                exc = e;
            } else {
                Py_XDECREF(e);
            }
        }
        if (r->waiter != NULL) {
            if (exc != NULL) {
                wake(r, s, exc); /* the callback raises it */
            } else {
                PyObject *item = take_one(r);
                if (item == NULL) {
                    /* the callback gets the error (MemoryError) */
                    PyObject *e = tc_uvio_fetch_exception();
                    wake(r, s, e != NULL ? e : Py_None);
                    Py_XDECREF(e);
                } else {
                    wake(r, s, item);
                    Py_DECREF(item);
                }
            }
            if (has_output(r) && !r->paused && r->stream != NULL) {
                /* more frames than the one handed out: they wait for the
                 * next read() */
                r->paused = 1;
                tc_stream_pause_reading(s);
            }
        } else if (exc != NULL) {
            /* the stream reports it */
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        }
        Py_XDECREF(exc);
    }
    Py_DECREF(s);
    Py_DECREF(r);
}

static void
reader_on_close(void *ctx, tc_stream *s, PyObject *error)
{
    wsreader *r = (wsreader *)ctx;
    tc_stream *mine = r->stream;
    (void)error;
    Py_INCREF(r);
    r->closed = 1;
    r->stream = NULL; /* the stream already cleared its consumer */
    Py_CLEAR(r->payload); /* a frame cut short: upstream's read_bytes fails */
    wake(r, s, Py_None);
    Py_XDECREF(mine);
    Py_DECREF(r);
}

/* Undo the pause of on_data: the stream reads (and offers what it holds,
 * from the loop) again. */
static void
resume(wsreader *r)
{
    if (r->paused && r->stream != NULL && !r->stopped && !r->closed) {
        r->paused = 0;
        tc_stream_resume_reading(r->stream);
    }
}

/* read(callback, context): the next frame (or verdict), None once the
 * stream is closed and everything parsed was handed out, or `callback`
 * when nothing is ready: it is called later with the item. */
static PyObject *
reader_read(wsreader *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyCallable_Check(args[0]) ||
        (args[1] != Py_None && !PyContext_CheckExact(args[1]))) {
        PyErr_SetString(PyExc_TypeError,
                        "read(callback, context): a callable and a Context or None");
        return NULL;
    }
    if (r->waiter != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "WebSocket reader: a read() is already pending");
        return NULL;
    }
    tc_stream *s = r->stream;
    if (!has_output(r) && s != NULL && !r->closed) {
        Py_INCREF(s);
        int rc = parse_input(r, s); /* the input is the stream's own here */
        Py_DECREF(s);
        if (rc < 0) {
            return NULL;
        }
    }
    if (has_output(r)) {
        PyObject *item = take_one(r);
        if (item != NULL && !has_output(r)) {
            resume(r); /* the last waiting frame is taken */
        }
        return item;
    }
    if (r->closed || s == NULL || r->stopped) {
        Py_RETURN_NONE;
    }
    release_queue(r);
    r->waiter = Py_NewRef(args[0]);
    r->context = args[1] == Py_None ? NULL : Py_NewRef(args[1]);
    resume(r);
    return Py_NewRef(args[0]);
}

/* read_soon(callback, context): read(), but what is ready now is not
 * returned: the loop calls callback(item) (call_soon, in `context`), as it
 * calls a callback that waited.  True once that is arranged (the item
 * scheduled, or the callback waiting for one); False, with nothing taken,
 * once the stream is gone (the caller schedules its own step).  The
 * protocol's yield after _YIELD_THRESHOLD bytes (upstream's
 * asyncio.sleep(0) and then the next read): the next frame is handled
 * after the loop's other callbacks either way, and the reader neither
 * pauses the stream for a frame that arrives meanwhile (nobody would have
 * asked for it yet) nor asks Python for the running loop. */
static PyObject *
reader_read_soon(wsreader *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (r->stream == NULL || r->closed) {
        Py_RETURN_FALSE;
    }
    tc_stream *s = (tc_stream *)Py_NewRef(r->stream); /* keeps its loop alive */
    PyObject *res = NULL, *item = reader_read(r, args, nargs);
    if (item == NULL) {
        goto done;
    }
    if (item != args[0]) {
        /* an item ready now: the callback gets it from the loop */
        PyObject *ctx = args[1] == Py_None ? NULL : args[1];
        PyObject *h = tc_loop_call_soon(tc_stream_loop(s), args[0], &item, 1, ctx);
        if (h == NULL) {
            goto done;
        }
        Py_DECREF(h);
    }
    /* else the callback waits (r->waiter) */
    res = Py_NewRef(Py_True);
done:
    Py_XDECREF(item);
    Py_DECREF(s);
    return res;
}

static PyObject *
reader_detach_py(wsreader *r, PyObject *Py_UNUSED(ignored))
{
    reader_detach(r);
    Py_CLEAR(r->payload);
    /* the callback is never called now: drop it (and the cycle through
     * the protocol it is bound to) */
    Py_CLEAR(r->waiter);
    Py_CLEAR(r->context);
    Py_RETURN_NONE;
}

static void
clear_ready(wsreader *r)
{
    for (size_t i = r->head; i < r->nready; i++) {
        Py_CLEAR(r->ready[i].payload);
    }
    r->head = r->nready = 0;
}

static int
reader_traverse(wsreader *r, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(r));
    Py_VISIT(r->stream);
    Py_VISIT(r->waiter);
    Py_VISIT(r->context);
    return 0;
}

static int
reader_clear(wsreader *r)
{
    reader_detach(r);
    Py_CLEAR(r->waiter);
    Py_CLEAR(r->context);
    Py_CLEAR(r->payload);
    clear_ready(r);
    return 0;
}

static void
reader_dealloc(wsreader *r)
{
    PyTypeObject *tp = Py_TYPE(r);
    PyObject_GC_UnTrack(r);
    reader_clear(r);
    PyMem_Free(r->ready);
    tp->tp_free((PyObject *)r);
    Py_DECREF(tp);
}

static PyMethodDef reader_methods[] = {
    {"read", (PyCFunction)(void (*)(void))reader_read, METH_FASTCALL,
     "read(callback, context) -> (first_byte, payload, frame_len), an int verdict, None, or "
     "callback (called later with one of those or an exception)"},
    {"read_soon", (PyCFunction)(void (*)(void))reader_read_soon, METH_FASTCALL,
     "read_soon(callback, context) -> True (callback called by the loop with the next item) "
     "or False (the stream is gone; nothing taken)"},
    {"detach", (PyCFunction)reader_detach_py, METH_NOARGS,
     "detach(): give the stream back (what is buffered stays there)"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot reader_slots[] = {
    {Py_tp_dealloc, reader_dealloc},
    {Py_tp_traverse, reader_traverse},
    {Py_tp_clear, reader_clear},
    {Py_tp_methods, reader_methods},
    {0, NULL},
};

static PyType_Spec reader_spec = {
    .name = "tornado_c._core.WSReader",
    .basicsize = sizeof(wsreader),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = reader_slots,
};

static int
get_u64(PyObject *o, uint64_t *out)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    *out = v;
    return 0;
}

/* _ws_reader(stream, flags, max_message_size, max_buffer_size) -> WSReader,
 * or None when `stream` is not a C IOStream (the caller reads the Python
 * way).  The reader becomes the stream's consumer, paused until read(). */
static PyObject *
fn_ws_reader(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_state *st = tc_get_state(module);
    uint64_t flags, max_size, max_buffer;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "_ws_reader(stream, flags, max_message_size, max_buffer_size)");
        return NULL;
    }
    if (get_u64(args[1], &flags) < 0 || get_u64(args[2], &max_size) < 0 ||
        get_u64(args[3], &max_buffer) < 0) {
        return NULL;
    }
    if (!tc_stream_check(st, args[0]) || tc_stream_loop((tc_stream *)args[0]) == NULL) {
        Py_RETURN_NONE;
    }
    tc_stream *s = (tc_stream *)args[0];
    if (tc_stream_closed(s)) {
        Py_RETURN_NONE; /* upstream's read_bytes raises StreamClosedError */
    }
    wsreader *r = PyObject_GC_New(wsreader, st->ws->Reader_type);
    if (r == NULL) {
        return NULL;
    }
    r->stream = (tc_stream *)Py_NewRef(s);
    r->waiter = NULL;
    r->context = NULL;
    r->payload = NULL;
    memset(&r->f, 0, sizeof(r->f));
    r->filled = 0;
    r->ready = NULL;
    r->head = r->nready = r->cap = 0;
    r->max_size = max_size;
    r->max_buffer = max_buffer;
    r->frag_len = 0;
    r->flags = (unsigned)flags;
    r->verdict = 0;
    r->frag = r->stopped = r->closed = r->reported = 0;
    r->paused = 1;
    PyObject_GC_Track(r);
    tc_stream_set_consumer(s, &reader_cb, r);
    tc_stream_pause_reading(s); /* until the first read() */
    return (PyObject *)r;
}

/* _ws_current_context(): the Context the caller runs in -- the object
 * itself, not a copy (Python only offers copies).  Called inside the
 * handler's Task, it is that Task's Context: upstream awaits its frame
 * loop there, so on_message runs in it and what it sets is seen by the Task
 * afterwards.  Callbacks may run in it while the Task waits (asyncio
 * schedules the Task's own steps the same way). */
static PyObject *
fn_ws_current_context(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    PyThreadState *ts = PyThreadState_Get();
    (void)module;
    if (ts->context == NULL) {
        /* no Context entered on this thread yet: copying creates it */
        PyObject *c = PyContext_CopyCurrent();
        if (c == NULL) {
            return NULL;
        }
        Py_DECREF(c);
        if (ts->context == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "_ws_current_context(): no current Context");
            return NULL;
        }
    }
    return Py_NewRef(ts->context);
}

static PyMethodDef reader_functions[] = {
    {"_ws_reader", (PyCFunction)(void (*)(void))fn_ws_reader, METH_FASTCALL,
     "_ws_reader(stream, flags, max_message_size, max_buffer_size) -> WSReader or None"},
    {"_ws_current_context", fn_ws_current_context, METH_NOARGS,
     "_ws_current_context() -> the Context the caller runs in (not a copy)"},
    {NULL, NULL, 0, NULL},
};

int
tc_ws_reader_exec(PyObject *module, struct tc_state *st)
{
    if (tc_add_type(module, &reader_spec, NULL, &st->ws->Reader_type) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, reader_functions);
}
