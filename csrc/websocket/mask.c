/* WebSocket masking (RFC 6455 section 5.3): out[i] = in[i] ^ mask[i % 4].
 *
 * The key is widened to a machine word (and to a 16-byte SSE2 register on
 * x86-64, picked once at module exec).  A
 * head loop brings `dst` to alignment, the body works on whole vectors with
 * unaligned loads, and a tail loop finishes; the key is rotated by the head
 * length so byte i always meets mask[i % 4].
 */
#include "websocket/websocket.h"
#include "state.h"

#include "state.h"

#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TC_WS_X86 1
#endif

typedef void (*mask_body_fn)(uint32_t key, const uint8_t *src, uint8_t *dst,
                             size_t len);

/* Rotate a 4-byte key (in memory order) so that it starts at byte `shift`. */
static inline uint32_t
key_rotate(const uint8_t mask[4], size_t shift)
{
    uint8_t k[4];
    for (int i = 0; i < 4; i++) {
        k[i] = mask[(shift + i) & 3];
    }
    uint32_t key;
    memcpy(&key, k, 4);
    return key;
}

static void
mask_body_word(uint32_t key, const uint8_t *src, uint8_t *dst, size_t len)
{
    uint64_t k64 = ((uint64_t)key << 32) | key;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= k64;
        memcpy(dst + i, &w, 8);
    }
    const uint8_t *kb = (const uint8_t *)&key;
    for (; i < len; i++) {
        dst[i] = src[i] ^ kb[i & 3];
    }
}

#ifdef TC_WS_X86
static void
mask_body_sse2(uint32_t key, const uint8_t *src, uint8_t *dst, size_t len)
{
    __m128i k = _mm_set1_epi32((int)key);
    size_t i = 0;
    for (; i + 64 <= len; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
        _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, k));
        _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, k));
        _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, k));
    }
    for (; i + 16 <= len; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
    }
    mask_body_word(key, src + i, dst + i, len - i); /* i % 4 == 0: key unchanged */
}

#endif

/* Chosen once in tc_ws_exec(); a plain function pointer that never changes
 * after that is the same on every interpreter, so it is not module state. */
static mask_body_fn mask_body = mask_body_word;
static const char *mask_impl = "word";

void
tc_ws_mask(const uint8_t mask[4], const uint8_t *src, uint8_t *dst, size_t len)
{
    if (len < 16) {
        for (size_t i = 0; i < len; i++) {
            dst[i] = src[i] ^ mask[i & 3];
        }
        return;
    }
    /* Head: bring dst to an 8-byte boundary so stores do not split lines. */
    size_t head = (size_t)(-(uintptr_t)dst) & 7;
    for (size_t i = 0; i < head; i++) {
        dst[i] = src[i] ^ mask[i & 3];
    }
    mask_body(key_rotate(mask, head), src + head, dst + head, len - head);
}

/* Parse and check the 4-byte mask argument (CVE-2026-49854 guard: upstream's
 * C speedup read 4 bytes from whatever it was given). */
static int
get_mask(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (view->len != 4) {
        PyErr_Format(PyExc_ValueError,
                     "websocket mask must be exactly 4 bytes, got %zd", view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* websocket_mask(mask, data) -> bytes: upstream's signature. */
static PyObject *
ws_websocket_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_buffer mask = {0}, data = {0};
    PyObject *out = NULL;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "websocket_mask() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    /* Fast path: bytes in, bytes out, no buffer-protocol round trips (most
     * frames are small, so the call overhead is what counts). */
    if (PyBytes_CheckExact(args[0]) && PyBytes_CheckExact(args[1])) {
        if (PyBytes_GET_SIZE(args[0]) != 4) {
            PyErr_Format(PyExc_ValueError,
                         "websocket mask must be exactly 4 bytes, got %zd",
                         PyBytes_GET_SIZE(args[0]));
            return NULL;
        }
        Py_ssize_t n = PyBytes_GET_SIZE(args[1]);
        out = PyBytes_FromStringAndSize(NULL, n);
        if (out == NULL) {
            return NULL;
        }
        tc_ws_mask((const uint8_t *)PyBytes_AS_STRING(args[0]),
                   (const uint8_t *)PyBytes_AS_STRING(args[1]),
                   (uint8_t *)PyBytes_AS_STRING(out), (size_t)n);
        return out;
    }
    if (get_mask(args[0], &mask) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0) {
        goto fail;
    }
    out = PyBytes_FromStringAndSize(NULL, data.len);
    if (out == NULL) {
        goto fail;
    }
    tc_ws_mask(mask.buf, data.buf, (uint8_t *)PyBytes_AS_STRING(out), (size_t)data.len);
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return out;
fail:
    if (data.obj != NULL) {
        PyBuffer_Release(&data);
    }
    PyBuffer_Release(&mask);
    return NULL;
}

/* websocket_mask_into(mask, buffer) -> None: mask a writable buffer in place. */
static PyObject *
ws_websocket_mask_into(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_buffer mask = {0}, data = {0};
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "websocket_mask_into() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (get_mask(args[0], &mask) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &data, PyBUF_WRITABLE) < 0) {
        if (PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Format(PyExc_TypeError,
                         "websocket_mask_into() needs a writable bytes-like object, not %.100s",
                         Py_TYPE(args[1])->tp_name);
        }
        PyBuffer_Release(&mask);
        return NULL;
    }
    tc_ws_mask(mask.buf, data.buf, data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    Py_RETURN_NONE;
}

static PyObject *
ws_mask_impl(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    return PyUnicode_FromString(mask_impl);
}

static PyMethodDef ws_methods[] = {
    {"websocket_mask", (PyCFunction)(void (*)(void))ws_websocket_mask, METH_FASTCALL,
     "websocket_mask(mask, data) -> bytes\n\nXOR data with the 4-byte mask, repeated."},
    {"websocket_mask_into", (PyCFunction)(void (*)(void))ws_websocket_mask_into, METH_FASTCALL,
     "websocket_mask_into(mask, buffer) -> None\n\nMask a writable buffer in place."},
    {"websocket_mask_impl", ws_mask_impl, METH_NOARGS,
     "Name of the mask kernel chosen for this CPU (word, sse2)."},
    {NULL, NULL, 0, NULL},
};

int
tc_ws_exec(PyObject *module, struct tc_state *st)
{
#ifdef TC_WS_X86
    /* SSE2 is part of x86-64.  An AVX2 kernel was measured slower here: on
     * the benchmark VM each call paid ~110 ns entering 256-bit state, and it
     * lost even at 64 KiB (1.82 us vs 1.56 us), so it is not used. */
    mask_body = mask_body_sse2;
    mask_impl = "sse2";
#endif
    if (PyModule_AddFunctions(module, ws_methods) < 0) {
        return -1;
    }
    if (tc_ws_reader_exec(module, st) < 0) {
        return -1;
    }
    if (tc_ws_frame_exec(module) < 0) {
        return -1;
    }
    return tc_ws_deflate_exec(module, st);
}

int
tc_ws_traverse(struct tc_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->ws->Reader_type);
    Py_VISIT(st->ws->Deflater_type);
    Py_VISIT(st->ws->Inflater_type);
    Py_VISIT(st->ws->bc_msg);
    Py_VISIT(st->ws->bc_result);
    return 0;
}

void
tc_ws_clear(struct tc_state *st)
{
    Py_CLEAR(st->ws->Reader_type);
    Py_CLEAR(st->ws->bc_msg);
    Py_CLEAR(st->ws->bc_result);
    tc_ws_deflate_clear(st);
}
