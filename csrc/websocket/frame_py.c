/* Python face of the frame parser/serialiser (private _core functions used
 * by tornado_c/websocket.py's WebSocketProtocol13 subclass).
 *
 *   _ws_parse_frame(buf, pos, flags, frag_len, max_size)  (frame at buf[pos])
 *       -> int > 0   bytes from pos the next step needs (buf holds fewer)
 *       -> -1        ABORT (upstream aborts without a close frame)
 *       -> -2        TOO_BIG (upstream: close(1009, ...), then abort)
 *       -> (first_byte, payload: bytes, frame_len)  a whole frame; payload
 *          is unmasked on the way from buf into the new bytes object (one
 *          pass: the payload has to become a bytes object for on_message
 *          anyway, so unmasking in buf and then copying would touch it
 *          twice).  buf is not changed; the next frame starts at
 *          pos + frame_len.
 *   _ws_parse_frame(buf, pos, flags, frag_len, max_size, more)
 *       the same for a frame whose header is whole in buf[pos:] and whose
 *       payload ends in `more`, which must complete it exactly (what
 *       read_bytes(rest) gave): the payload is unmasked from both pieces
 *       straight into the new bytes object, without joining them first.
 *   _ws_build_frame(first_byte, data, mask) -> bytes: header + payload,
 *       masked with a fresh random key (getrandom) when mask is true.
 *   _ws_build_message(message, binary, mask) -> (frame, payload_len): a
 *       whole FIN text (str, UTF-8 encoded straight into the frame) or
 *       binary/bytes data frame in one allocation.  Unmasked frames of an
 *       exact str or bytes message are remembered (the last one, up to
 *       TC_WS_BROADCAST_MAX bytes): the same message object with the same
 *       binary flag gets the same (frame, payload_len) back, so a
 *       broadcast encodes and copies it once, and every connection's
 *       stream references that one bytes object when it cannot write it
 *       at once.  Never for masked frames (a fresh key per frame), nor
 *       for mutable or subclassed messages.
 *   _ws_decode_text(data) -> str, or None if data is not valid UTF-8.
 *   _ws_utf8_feed(state, data) -> new state (tc_ws_utf8_feed; -1 = bad).
 */
#include "websocket/websocket.h"

#include "common.h"
#include "state.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int
tc_ws_random_key(uint8_t key[4])
{
    for (;;) {
        ssize_t r = getrandom(key, 4, 0);
        if (r == 4) {
            return 0;
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
        } else {
            PyErr_SetString(PyExc_OSError, "getrandom() returned too few bytes");
        }
        return -1;
    }
}

/* A new bytes object holding the header for (first, len) and room for the
 * payload; *payload points at that room, *key at the mask key (or NULL). */
static PyObject *
new_frame(uint8_t first, size_t len, int mask, uint8_t **payload, const uint8_t **key)
{
    uint8_t hdr[TC_WS_MAX_HEADER], k[4];
    if (mask && tc_ws_random_key(k) < 0) {
        return NULL;
    }
    size_t hl = tc_ws_build_header(hdr, first, len, mask ? k : NULL);
    if (len > (size_t)PY_SSIZE_T_MAX - hl) {
        PyErr_NoMemory();
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(hl + len));
    if (out == NULL) {
        return NULL;
    }
    uint8_t *p = (uint8_t *)PyBytes_AS_STRING(out);
    memcpy(p, hdr, hl);
    *payload = p + hl;
    *key = mask ? p + hl - 4 : NULL;
    return out;
}

static PyObject *
build_from(uint8_t first, const uint8_t *data, size_t len, int mask)
{
    uint8_t *payload;
    const uint8_t *key;
    PyObject *out = new_frame(first, len, mask, &payload, &key);
    if (out == NULL) {
        return NULL;
    }
    if (key != NULL) {
        tc_ws_mask(key, data, payload, len);
    } else if (len) {
        memcpy(payload, data, len);
    }
    return out;
}

/* Copy (unmasking if f->masked) n bytes of payload that start `off` bytes
 * into the payload, from src to dst. */
static void
unmask_part(const tc_ws_frame *f, size_t off, const uint8_t *src, uint8_t *dst, size_t n)
{
    if (!f->masked) {
        if (n) {
            memcpy(dst, src, n);
        }
        return;
    }
    uint8_t key[4];
    for (int i = 0; i < 4; i++) {
        key[i] = f->mask[(off + (size_t)i) & 3];
    }
    tc_ws_mask(key, src, dst, n);
}

/* The frame of *f whose header ends at `payload1` with len1 payload bytes
 * there, and the rest (len2 = f->length - len1) at payload2. */
static PyObject *
frame_tuple(const tc_ws_frame *f, const uint8_t *payload1, size_t len1,
            const uint8_t *payload2)
{
    size_t n = (size_t)f->length;
    PyObject *payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (payload == NULL) {
        return NULL;
    }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(payload);
    unmask_part(f, 0, payload1, dst, len1);
    unmask_part(f, len1, payload2, dst + len1, n - len1);
    /* Py_BuildValue's N steals payload */
    return Py_BuildValue("(iNn)", (int)f->first, payload, (Py_ssize_t)(f->header_len + n));
}

static PyObject *
ws_parse_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_buffer view = {0}, more = {0};
    PyObject *out = NULL;
    if (nargs != 5 && nargs != 6) {
        PyErr_Format(PyExc_TypeError, "_ws_parse_frame() takes 5 or 6 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    unsigned long flags = PyLong_AsUnsignedLong(args[2]);
    if (flags == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    unsigned long long frag_len = PyLong_AsUnsignedLongLong(args[3]);
    if (frag_len == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    unsigned long long max_size = PyLong_AsUnsignedLongLong(args[4]);
    if (max_size == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (pos < 0 || pos > view.len) {
        PyErr_Format(PyExc_ValueError, "_ws_parse_frame(): pos %zd outside the buffer (%zd bytes)",
                     pos, view.len);
        PyBuffer_Release(&view);
        return NULL;
    }
    tc_ws_frame f = {0}; /* header_len stays 0 until the header is whole */
    uint64_t need = 0;
    const uint8_t *buf = (const uint8_t *)view.buf + pos;
    size_t len1 = (size_t)(view.len - pos);
    int r = tc_ws_parse(buf, len1, (unsigned)flags, frag_len, max_size, &f, &need);
    if (nargs == 6) {
        if (PyObject_GetBuffer(args[5], &more, PyBUF_SIMPLE) < 0) {
            goto done;
        }
        /* NEED past the header (so f is filled) and `more` is the rest */
        if (r != TC_WS_NEED || f.header_len == 0 || need - len1 != (uint64_t)more.len) {
            PyErr_SetString(PyExc_ValueError,
                             "_ws_parse_frame(): `more` must complete a frame whose header is in buf");
            goto done;
        }
        out = frame_tuple(&f, buf + f.header_len, len1 - f.header_len, more.buf);
        goto done;
    }
    switch (r) {
    case TC_WS_NEED:
        out = PyLong_FromUnsignedLongLong(need);
        break;
    case TC_WS_ABORT:
        out = PyLong_FromLong(-1);
        break;
    case TC_WS_TOO_BIG:
        out = PyLong_FromLong(-2);
        break;
    default:
        /* FRAME: header_len + length <= len1, so both fit a size_t */
        out = frame_tuple(&f, buf + f.header_len, (size_t)f.length, NULL);
        break;
    }
done:
    if (more.obj != NULL) {
        PyBuffer_Release(&more);
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *
ws_build_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_buffer view = {0};
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "_ws_build_frame() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    long first = PyLong_AsLong(args[0]);
    if (first == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (first < 0 || first > 255) {
        PyErr_SetString(PyExc_ValueError, "first frame byte must be in 0..255");
        return NULL;
    }
    int mask = PyObject_IsTrue(args[2]);
    if (mask < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *out = build_from((uint8_t)first, view.buf, (size_t)view.len, mask);
    PyBuffer_Release(&view);
    return out;
}

int
tc_ws_message_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, int *binary,
                   int *mask, const char **data, Py_ssize_t *len)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "%s() takes 3 arguments (%zd given)", fname, nargs);
        return -1;
    }
    *binary = PyObject_IsTrue(args[1]);
    *mask = *binary < 0 ? -1 : PyObject_IsTrue(args[2]);
    if (*binary < 0 || *mask < 0) {
        return -1;
    }
    PyObject *msg = args[0]; /* borrowed */
    if (PyUnicode_Check(msg)) {
        /* the str's cached UTF-8 (an ASCII str's own bytes): no copy */
        *data = PyUnicode_AsUTF8AndSize(msg, len);
        return *data == NULL ? -1 : 0;
    }
    if (PyBytes_Check(msg)) {
        *data = PyBytes_AS_STRING(msg);
        *len = PyBytes_GET_SIZE(msg);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "Expected bytes or str; got %.100s", Py_TYPE(msg)->tp_name);
    return -1;
}

static PyObject *
ws_build_message(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int binary, mask;
    const char *data;
    Py_ssize_t len;
    PyObject *msg = nargs > 0 ? args[0] : NULL; /* borrowed */
    /* broadcast: the same immutable message again, unmasked (server
     * frames are the same for every connection): the frame built last
     * time.  The cache holds msg, so its identity cannot be reused. */
    tc_ws_state *ws = tc_get_state(module)->ws;
    if (nargs == 3 && ws->bc_msg == msg && ws->bc_result != NULL) {
        binary = PyObject_IsTrue(args[1]);
        mask = binary < 0 ? -1 : PyObject_IsTrue(args[2]);
        if (binary < 0 || mask < 0) {
            return NULL;
        }
        if (!mask && ws->bc_binary == binary) {
            return Py_NewRef(ws->bc_result);
        }
    }
    if (tc_ws_message_args("_ws_build_message", args, nargs, &binary, &mask, &data, &len) < 0) {
        return NULL;
    }
    int cacheable = !mask && (PyUnicode_CheckExact(msg) || PyBytes_CheckExact(msg));
    uint8_t first = TC_WS_FIN | (binary ? 0x2 : 0x1);
    PyObject *frame = build_from(first, (const uint8_t *)data, (size_t)len, mask);
    if (frame == NULL) {
        return NULL;
    }
    /* (frame, len) filled directly: Py_BuildValue's format parsing cost
     * some 900 instructions per message */
    PyObject *result = PyTuple_New(2);
    PyObject *n = result != NULL ? PyLong_FromSsize_t(len) : NULL;
    if (n == NULL) {
        Py_XDECREF(result);
        Py_DECREF(frame);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, frame); /* steals frame */
    PyTuple_SET_ITEM(result, 1, n);     /* steals n */
    if (cacheable && (size_t)len <= TC_WS_BROADCAST_MAX) {
        /* the previous entry goes (after the new one is in place: its
         * message's dealloc could run anything) */
        PyObject *old_msg = ws->bc_msg, *old_result = ws->bc_result;
        ws->bc_msg = Py_NewRef(msg);
        ws->bc_result = Py_NewRef(result);
        ws->bc_binary = binary;
        Py_XDECREF(old_msg);
        Py_XDECREF(old_result);
    }
    return result;
}

PyObject *
tc_ws_decode_utf8(const uint8_t *p, size_t n)
{
    int ascii = 1;
    uint32_t st = tc_ws_utf8_feed(0, p, n, &ascii);
    if (st != 0) {
        return Py_NewRef(Py_None);
    }
    if (ascii) {
        PyObject *out = PyUnicode_New((Py_ssize_t)n, 127);
        if (out != NULL && n) {
            memcpy(PyUnicode_DATA(out), p, n);
        }
        return out;
    }
    /* validated: CPython's decoder builds the str (cannot fail on valid
     * UTF-8 except for memory) */
    return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "strict");
}

/* _ws_frame_header(first_byte, length) -> bytes: the unmasked header alone
 * (the payload is written after it by the caller). */
static PyObject *
ws_frame_header(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "_ws_frame_header() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    long first = PyLong_AsLong(args[0]);
    if (first == -1 && PyErr_Occurred()) {
        return NULL;
    }
    unsigned long long len = PyLong_AsUnsignedLongLong(args[1]);
    if (len == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (first < 0 || first > 255) {
        PyErr_SetString(PyExc_ValueError, "first frame byte must be in 0..255");
        return NULL;
    }
    uint8_t hdr[TC_WS_MAX_HEADER];
    size_t hl = tc_ws_build_header(hdr, (uint8_t)first, len, NULL);
    return PyBytes_FromStringAndSize((const char *)hdr, (Py_ssize_t)hl);
}

static PyObject *
ws_decode_text(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_buffer view = {0};
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *out = tc_ws_decode_utf8(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return out;
}

static PyObject *
ws_utf8_feed(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_buffer view = {0};
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "_ws_utf8_feed() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    long long state = PyLong_AsLongLong(args[0]);
    if (state == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (state < -1 || state > 0xFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "bad UTF-8 state");
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    uint32_t st = tc_ws_utf8_feed(state < 0 ? TC_WS_UTF8_BAD : (uint32_t)state, view.buf,
                                  (size_t)view.len, NULL);
    PyBuffer_Release(&view);
    return PyLong_FromLongLong(st == TC_WS_UTF8_BAD ? -1 : (long long)st);
}

static PyMethodDef frame_methods[] = {
    {"_ws_parse_frame", (PyCFunction)(void (*)(void))ws_parse_frame, METH_FASTCALL,
     "_ws_parse_frame(buf, pos, flags, frag_len, max_size[, more]): parse one frame at buf[pos]."},
    {"_ws_build_frame", (PyCFunction)(void (*)(void))ws_build_frame, METH_FASTCALL,
     "_ws_build_frame(first_byte, data, mask) -> bytes"},
    {"_ws_build_message", (PyCFunction)(void (*)(void))ws_build_message, METH_FASTCALL,
     "_ws_build_message(message, binary, mask) -> (frame, payload_len)"},
    {"_ws_frame_header", (PyCFunction)(void (*)(void))ws_frame_header, METH_FASTCALL,
     "_ws_frame_header(first_byte, length) -> bytes (unmasked header)"},
    {"_ws_decode_text", ws_decode_text, METH_O,
     "_ws_decode_text(data) -> str, or None if not valid UTF-8"},
    {"_ws_utf8_feed", (PyCFunction)(void (*)(void))ws_utf8_feed, METH_FASTCALL,
     "_ws_utf8_feed(state, data) -> state (0: complete, -1: invalid)"},
    {NULL, NULL, 0, NULL},
};

int
tc_ws_frame_exec(PyObject *module)
{
    if (PyModule_AddIntConstant(module, "_WS_PARSE_RSV1_OK", TC_WS_PARSE_RSV1_OK) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, frame_methods);
}
