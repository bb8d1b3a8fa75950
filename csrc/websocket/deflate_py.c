/* Python face of permessage-deflate (deflate.h): the objects
 * tornado_c/websocket.py's protocol uses in place of upstream's
 * _PerMessageDeflateCompressor / _PerMessageDeflateDecompressor.
 *
 *   _ws_deflater(persistent, wbits, level, mem_level) -> Deflater
 *       upstream's compressor after its checks (the Python side makes them:
 *       wbits 8..15, the options' defaults).  persistent (context takeover):
 *       one zlib stream for the connection, created here (so a bad level or
 *       mem_level raises here, as zlib.compressobj does in upstream's
 *       __init__); otherwise a fresh stream per message, created and ended
 *       around it (upstream makes a new compressobj per message: the same
 *       bytes, and no 256 KiB of zlib state kept between messages).
 *     .compress(data) -> bytes: upstream's compress(), tail stripped.
 *     .frame(message, binary, mask) -> (frame, payload_len): message an
 *       exact str (UTF-8) or bytes; one FIN text/binary frame with RSV1 and
 *       the compressed payload (masked with a fresh key when mask), built
 *       in one allocation.
 *   _ws_inflater(persistent, wbits, max_size, too_big) -> Inflater
 *       upstream's decompressor; max_size an int >= 0 (0: no limit, as
 *       zlib's max_length); too_big the exception class raised when the
 *       output would pass max_size (upstream's _DecompressTooLargeError).
 *     .decompress(data) -> bytes: upstream's decompress().
 *     .message(data, text) -> str (text, UTF-8 checked in C), bytes, or None
 *       (text that is not valid UTF-8); raises too_big.  .last_size: the
 *       decompressed size of the last message (upstream's
 *       _message_bytes_in counts it).
 * zlib errors are reported as CPython's zlib module does (ValueError
 * "Invalid initialization option", MemoryError, zlib.error "Error -3 while
 * decompressing data: ...").
 */
#include "websocket/websocket.h"

#include "common.h"
#include "state.h"

#include <string.h>

typedef struct {
    PyObject_HEAD
    PyObject *module; /* strong: its state holds the shared scratch buffer */
    z_stream z;
    int ready; /* z initialised */
    int persistent, wbits, level, mem_level;
} Deflater;

typedef struct {
    PyObject_HEAD
    PyObject *module;  /* strong, as above */
    PyObject *too_big; /* strong: the exception class */
    z_stream z;
    int ready;
    int persistent, wbits;
    size_t max;
    Py_ssize_t last_size;
} Inflater;

static tc_ws_state *
ws_of(PyObject *module)
{
    return tc_get_state(module)->ws;
}

/* After a message: a scratch buffer grown past TC_WS_SCRATCH_KEEP goes. */
static void
scratch_done(tc_ws_state *ws)
{
    ws->scratch.len = 0;
    if (ws->scratch.cap > TC_WS_SCRATCH_KEEP) {
        tc_ws_buf_free(&ws->scratch);
    }
}

/* zlib.error(msg) as CPython's zlib module words it. */
static void
zlib_error(z_stream *z, int err, const char *what)
{
    PyObject *cls = tc_import_attr("zlib", "error");
    if (cls == NULL) {
        return;
    }
    const char *why = z->msg;
    if (why == NULL) {
        why = err == Z_BUF_ERROR      ? "incomplete or truncated stream"
              : err == Z_STREAM_ERROR ? "inconsistent stream state"
              : err == Z_DATA_ERROR   ? "invalid input data"
                                      : "library version mismatch";
    }
    PyErr_Format(cls, "Error %d %s: %.200s", err, what, why);
    Py_DECREF(cls);
}

static int
init_error(z_stream *z, int err, const char *obj)
{
    if (err == Z_MEM_ERROR) {
        PyErr_Format(PyExc_MemoryError, "Can't allocate memory for %s object", obj);
    } else if (err == Z_STREAM_ERROR) {
        PyErr_SetString(PyExc_ValueError, "Invalid initialization option");
    } else {
        zlib_error(z, err, strcmp(obj, "compression") == 0 ? "while creating compression object"
                                                            : "while creating decompression object");
    }
    return -1;
}

static int
deflater_start(Deflater *d)
{
    if (d->ready) {
        return 0;
    }
    memset(&d->z, 0, sizeof(d->z));
    int err = deflateInit2(&d->z, d->level, Z_DEFLATED, -d->wbits, d->mem_level,
                           Z_DEFAULT_STRATEGY);
    if (err != Z_OK) {
        return init_error(&d->z, err, "compression");
    }
    d->ready = 1;
    return 0;
}

/* The end of a message: a stream without context takeover goes. */
static void
deflater_end_message(Deflater *d)
{
    if (!d->persistent && d->ready) {
        deflateEnd(&d->z);
        d->ready = 0;
    }
}

/* Compress into the scratch buffer (from offset 0): 0, or -1 with an
 * exception set. */
static int
deflate_into_scratch(Deflater *d, tc_ws_state *ws, const uint8_t *data, size_t len)
{
    int zerr = 0;
    if (deflater_start(d) < 0) {
        return -1;
    }
    ws->scratch.len = 0;
    int r = tc_ws_deflate_msg(&d->z, data, len, &ws->scratch, &zerr);
    deflater_end_message(d);
    if (r == TC_WS_Z_NOMEM) {
        scratch_done(ws);
        PyErr_NoMemory();
        return -1;
    }
    if (r != TC_WS_Z_OK) {
        scratch_done(ws);
        zlib_error(&d->z, zerr, "while compressing data");
        return -1;
    }
    return 0;
}

static PyObject *
deflater_compress(Deflater *d, PyObject *arg)
{
    tc_ws_state *ws = ws_of(d->module);
    Py_buffer view = {0};
    PyObject *out = NULL;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (deflate_into_scratch(d, ws, view.buf, (size_t)view.len) == 0) {
        out = PyBytes_FromStringAndSize((const char *)ws->scratch.p, (Py_ssize_t)ws->scratch.len);
        scratch_done(ws);
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *
deflater_frame(Deflater *d, PyObject *const *args, Py_ssize_t nargs)
{
    int binary, mask;
    const char *data;
    Py_ssize_t len;
    if (tc_ws_message_args("frame", args, nargs, &binary, &mask, &data, &len) < 0) {
        return NULL;
    }
    uint8_t key[4];
    if (mask && tc_ws_random_key(key) < 0) {
        return NULL;
    }
    tc_ws_state *ws = ws_of(d->module);
    if (deflate_into_scratch(d, ws, (const uint8_t *)data, (size_t)len) < 0) {
        return NULL;
    }
    size_t plen = ws->scratch.len;
    uint8_t hdr[TC_WS_MAX_HEADER];
    uint8_t first = TC_WS_FIN | TC_WS_RSV1 | (binary ? 0x2 : 0x1);
    size_t hl = tc_ws_build_header(hdr, first, plen, mask ? key : NULL);
    PyObject *frame = NULL;
    if (plen <= (size_t)PY_SSIZE_T_MAX - hl) {
        frame = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(hl + plen));
    } else {
        PyErr_NoMemory();
    }
    if (frame != NULL) {
        uint8_t *p = (uint8_t *)PyBytes_AS_STRING(frame);
        memcpy(p, hdr, hl);
        if (mask) {
            tc_ws_mask(key, ws->scratch.p, p + hl, plen);
        } else if (plen) {
            memcpy(p + hl, ws->scratch.p, plen);
        }
    }
    scratch_done(ws);
    if (frame == NULL) {
        return NULL;
    }
    return Py_BuildValue("(Nn)", frame, len); /* N steals frame */
}

static int
deflater_traverse(Deflater *d, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(d));
    Py_VISIT(d->module);
    return 0;
}

static int
deflater_clear(Deflater *d)
{
    Py_CLEAR(d->module);
    return 0;
}

static void
deflater_dealloc(Deflater *d)
{
    PyTypeObject *tp = Py_TYPE(d);
    PyObject_GC_UnTrack(d);
    deflater_clear(d);
    if (d->ready) {
        deflateEnd(&d->z);
        d->ready = 0;
    }
    tp->tp_free((PyObject *)d);
    Py_DECREF(tp);
}

static PyMethodDef deflater_methods[] = {
    {"compress", (PyCFunction)deflater_compress, METH_O,
     "compress(data) -> bytes: one message, without the 00 00 ff ff tail"},
    {"frame", (PyCFunction)(void (*)(void))deflater_frame, METH_FASTCALL,
     "frame(message, binary, mask) -> (frame, payload_len)"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot deflater_slots[] = {
    {Py_tp_dealloc, deflater_dealloc},
    {Py_tp_traverse, deflater_traverse},
    {Py_tp_clear, deflater_clear},
    {Py_tp_methods, deflater_methods},
    {Py_tp_doc, "permessage-deflate compressor (zlib); made by _ws_deflater()"},
    {0, NULL},
};

static PyType_Spec deflater_spec = {
    .name = "tornado_c._core._WsDeflater",
    .basicsize = sizeof(Deflater),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = deflater_slots,
};

/* ------------------------------------------------------------ inflater */

static int
inflater_start(Inflater *f)
{
    if (f->ready) {
        return 0;
    }
    memset(&f->z, 0, sizeof(f->z));
    int err = inflateInit2(&f->z, -f->wbits);
    if (err != Z_OK) {
        return init_error(&f->z, err, "decompression");
    }
    f->ready = 1;
    return 0;
}

/* Decompress into the scratch buffer: 0, or -1 with an exception set
 * (too_big for a message past max). */
static int
inflate_into_scratch(Inflater *f, tc_ws_state *ws, PyObject *data_obj)
{
    Py_buffer view = {0};
    int zerr = 0;
    if (PyObject_GetBuffer(data_obj, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (inflater_start(f) < 0) {
        PyBuffer_Release(&view);
        return -1;
    }
    ws->scratch.len = 0;
    int r = tc_ws_inflate_msg(&f->z, view.buf, (size_t)view.len, f->max, &ws->scratch, &zerr);
    PyBuffer_Release(&view);
    if (r == TC_WS_Z_ERROR) {
        zlib_error(&f->z, zerr, "while decompressing data");
    }
    if (!f->persistent && f->ready) {
        inflateEnd(&f->z);
        f->ready = 0;
    }
    if (r == TC_WS_Z_OK) {
        return 0;
    }
    scratch_done(ws);
    if (r == TC_WS_Z_NOMEM) {
        PyErr_NoMemory();
    } else if (r == TC_WS_Z_TOO_BIG) {
        PyErr_SetNone(f->too_big);
    }
    return -1;
}

static PyObject *
inflater_decompress(Inflater *f, PyObject *arg)
{
    tc_ws_state *ws = ws_of(f->module);
    if (inflate_into_scratch(f, ws, arg) < 0) {
        return NULL;
    }
    PyObject *out =
        PyBytes_FromStringAndSize((const char *)ws->scratch.p, (Py_ssize_t)ws->scratch.len);
    scratch_done(ws);
    return out;
}

static PyObject *
inflater_message(Inflater *f, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "message() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    int text = PyObject_IsTrue(args[1]);
    if (text < 0) {
        return NULL;
    }
    tc_ws_state *ws = ws_of(f->module);
    if (inflate_into_scratch(f, ws, args[0]) < 0) {
        return NULL;
    }
    PyObject *out;
    f->last_size = (Py_ssize_t)ws->scratch.len;
    if (text) {
        out = tc_ws_decode_utf8(ws->scratch.p, ws->scratch.len);
    } else {
        out = PyBytes_FromStringAndSize((const char *)ws->scratch.p, (Py_ssize_t)ws->scratch.len);
    }
    scratch_done(ws);
    return out;
}

static PyObject *
inflater_get_last_size(Inflater *f, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(f->last_size);
}

static int
inflater_traverse(Inflater *f, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(f));
    Py_VISIT(f->module);
    Py_VISIT(f->too_big);
    return 0;
}

static int
inflater_clear(Inflater *f)
{
    Py_CLEAR(f->module);
    Py_CLEAR(f->too_big);
    return 0;
}

static void
inflater_dealloc(Inflater *f)
{
    PyTypeObject *tp = Py_TYPE(f);
    PyObject_GC_UnTrack(f);
    inflater_clear(f);
    if (f->ready) {
        inflateEnd(&f->z);
        f->ready = 0;
    }
    tp->tp_free((PyObject *)f);
    Py_DECREF(tp);
}

static PyMethodDef inflater_methods[] = {
    {"decompress", (PyCFunction)inflater_decompress, METH_O,
     "decompress(data) -> bytes: one message (the 00 00 ff ff tail added)"},
    {"message", (PyCFunction)(void (*)(void))inflater_message, METH_FASTCALL,
     "message(data, text) -> str, bytes, or None (text not valid UTF-8)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef inflater_getset[] = {
    {"last_size", (getter)inflater_get_last_size, NULL,
     "decompressed bytes of the last message()", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot inflater_slots[] = {
    {Py_tp_dealloc, inflater_dealloc},
    {Py_tp_traverse, inflater_traverse},
    {Py_tp_clear, inflater_clear},
    {Py_tp_methods, inflater_methods},
    {Py_tp_getset, inflater_getset},
    {Py_tp_doc, "permessage-deflate decompressor (zlib); made by _ws_inflater()"},
    {0, NULL},
};

static PyType_Spec inflater_spec = {
    .name = "tornado_c._core._WsInflater",
    .basicsize = sizeof(Inflater),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = inflater_slots,
};

/* ----------------------------------------------------------- factories */

/* An int argument in [lo, hi] (the Python side passes exact ints). */
static int
int_arg(PyObject *o, const char *name, long lo, long hi, int *out)
{
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s out of range: %ld", name, v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static PyObject *
ws_deflater(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_ws_state *ws = ws_of(module);
    int persistent, wbits, level, mem_level;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "_ws_deflater() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    persistent = PyObject_IsTrue(args[0]);
    if (persistent < 0 || int_arg(args[1], "wbits", 8, 15, &wbits) < 0 ||
        int_arg(args[2], "level", INT_MIN, INT_MAX, &level) < 0 ||
        int_arg(args[3], "mem_level", INT_MIN, INT_MAX, &mem_level) < 0) {
        return NULL;
    }
    Deflater *d = PyObject_GC_New(Deflater, ws->Deflater_type);
    if (d == NULL) {
        return NULL;
    }
    d->module = Py_NewRef(module);
    d->ready = 0;
    d->persistent = persistent;
    d->wbits = wbits;
    d->level = level;
    d->mem_level = mem_level;
    PyObject_GC_Track(d);
    /* with context takeover the stream exists from the start (upstream's
     * __init__ makes its compressobj there: a bad option raises now) */
    if (persistent && deflater_start(d) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return (PyObject *)d;
}

static PyObject *
ws_inflater(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tc_ws_state *ws = ws_of(module);
    int persistent, wbits;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "_ws_inflater() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    persistent = PyObject_IsTrue(args[0]);
    if (persistent < 0 || int_arg(args[1], "wbits", 8, 15, &wbits) < 0) {
        return NULL;
    }
    size_t max = PyLong_AsSize_t(args[2]);
    if (max == (size_t)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!PyExceptionClass_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "_ws_inflater(): too_big must be an exception class");
        return NULL;
    }
    Inflater *f = PyObject_GC_New(Inflater, ws->Inflater_type);
    if (f == NULL) {
        return NULL;
    }
    f->module = Py_NewRef(module);
    f->too_big = Py_NewRef(args[3]);
    f->ready = 0;
    f->persistent = persistent;
    f->wbits = wbits;
    f->max = max;
    f->last_size = 0;
    PyObject_GC_Track(f);
    if (persistent && inflater_start(f) < 0) {
        Py_DECREF(f);
        return NULL;
    }
    return (PyObject *)f;
}

static PyMethodDef deflate_functions[] = {
    {"_ws_deflater", (PyCFunction)(void (*)(void))ws_deflater, METH_FASTCALL,
     "_ws_deflater(persistent, wbits, level, mem_level) -> permessage-deflate compressor"},
    {"_ws_inflater", (PyCFunction)(void (*)(void))ws_inflater, METH_FASTCALL,
     "_ws_inflater(persistent, wbits, max_size, too_big) -> permessage-deflate decompressor"},
    {NULL, NULL, 0, NULL},
};

int
tc_ws_deflate_exec(PyObject *module, struct tc_state *st)
{
    if (tc_add_type(module, &deflater_spec, NULL, &st->ws->Deflater_type) < 0 ||
        tc_add_type(module, &inflater_spec, NULL, &st->ws->Inflater_type) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, deflate_functions);
}

void
tc_ws_deflate_clear(struct tc_state *st)
{
    Py_CLEAR(st->ws->Deflater_type);
    Py_CLEAR(st->ws->Inflater_type);
    tc_ws_buf_free(&st->ws->scratch);
}
