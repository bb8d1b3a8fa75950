/* http component: the Python side of the response writer (parser.h), one
 * path for every Python object that writes a response with it -- the C
 * server's HTTPConnection (connection.c) and, in the test build, the
 * HTTPResponseWriter wrapper (test_api.c):
 *
 *   tc_http_py_write_headers_args()  write_headers' arguments
 *   tc_http_py_write_headers()       Python start line, headers, chunk ->
 *                                    checks, tc_http_write_headers(), bytes
 *   tc_http_py_raise()               writer error -> Python exception
 *
 * See http.h for the contract.
 */
#include "common.h"
#include "state.h"
#include "http/http.h"
#include "web/web.h"

static PyObject *
latin1(const char *s, size_t n)
{
    return PyUnicode_DecodeLatin1(s, (Py_ssize_t)n, NULL);
}

int
tc_http_py_raise(tc_http_writer *w, tc_http_werr e, PyObject *output_error)
{
    if (e == TC_HTTP_WERR_NOMEM) {
        PyErr_NoMemory();
    } else if (e == TC_HTTP_WERR_VALUE || e == TC_HTTP_WERR_OUTPUT) {
        PyObject *m = latin1(w->error_msg, w->error_len);
        if (m != NULL) {
            PyErr_SetObject(e == TC_HTTP_WERR_VALUE ? PyExc_ValueError : output_error, m);
            Py_DECREF(m);
        }
    }
    return -1;
}

static int
set_header_str(PyObject *headers, const char *name, const char *value)
{
    PyObject *k = PyUnicode_FromString(name);
    PyObject *v = PyUnicode_FromString(value);
    int r = (k && v) ? PyObject_SetItem(headers, k, v) : -1;
    Py_XDECREF(k);
    Py_XDECREF(v);
    return r;
}

/* headers["Connection"] / ["Transfer-Encoding"] as upstream assigns them */
static int
set_response_headers(const tc_http_writer *w, PyObject *headers)
{
    const char *ver = w->req_version;
    size_t vl = w->req_version_len;
    if (vl == 8 && memcmp(ver, "HTTP/1.1", 8) == 0 && w->disconnect_on_finish) {
        if (set_header_str(headers, "Connection", "close") < 0) return -1;
    }
    if (vl == 8 && memcmp(ver, "HTTP/1.0", 8) == 0 && w->req_connection_keep_alive) {
        if (set_header_str(headers, "Connection", "Keep-Alive") < 0) return -1;
    }
    if (w->chunking) {
        if (set_header_str(headers, "Transfer-Encoding", "chunked") < 0) return -1;
    }
    return 0;
}

/* New list of the (name, value) pairs of `headers` in get_all() order. */
static PyObject *
header_items(const tc_http_py_refs *refs, PyObject *headers)
{
    if (refs->HTTPHeaders == NULL || !Py_IS_TYPE(headers, (PyTypeObject *)refs->HTTPHeaders)) {
        PyObject *ga = PyObject_CallMethod(headers, "get_all", NULL);
        if (ga == NULL) {
            return NULL;
        }
        PyObject *items = PySequence_List(ga);
        Py_DECREF(ga);
        return items;
    }
    PyObject *as_list = PyObject_GetAttr(headers, refs->s_as_list);
    if (as_list == NULL) {
        return NULL;
    }
    PyObject *items = PyList_New(0);
    if (items == NULL) {
        goto fail;
    }
    PyObject *k, *v; /* borrowed */
    Py_ssize_t pos = 0;
    while (PyDict_Next(as_list, &pos, &k, &v)) {
        if (!PyList_Check(v)) {
            continue;
        }
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(v); j++) {
            PyObject *pair = PyTuple_Pack(2, k, PyList_GET_ITEM(v, j));
            if (pair == NULL || PyList_Append(items, pair) < 0) {
                Py_XDECREF(pair);
                Py_CLEAR(items);
                goto fail;
            }
            Py_DECREF(pair);
        }
    }
fail:
    Py_DECREF(as_list);
    return items;
}

int
tc_http_py_write_headers_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                              PyObject **start_line, PyObject **headers, PyObject **chunk)
{
    if (nargs < 2 || nargs > 3 || (kwnames && PyTuple_GET_SIZE(kwnames) > (3 - nargs))) {
        PyErr_SetString(PyExc_TypeError, "write_headers(start_line, headers, chunk=None)");
        return -1;
    }
    *start_line = args[0];
    *headers = args[1];
    *chunk = Py_None;
    if (nargs == 3) {
        *chunk = args[2];
    } else if (kwnames && PyTuple_GET_SIZE(kwnames) == 1) {
        *chunk = args[nargs];
    }
    return 0;
}


/* Replaces the UnicodeEncodeError set for one part of a header with the
 * error upstream raises: HTTP1Connection builds the whole line
 * native_str(name) + ": " + native_str(value) and encodes it to latin-1, so
 * the message's position (and the exception's object, start and end) count
 * from the start of that line -- or, when the value is bytes that are not
 * UTF-8, native_str(value) fails first with its UnicodeDecodeError.  0 with
 * that UnicodeError set; -1 with another exception (e.g. MemoryError). */
static int
line_encode_error(PyObject *name, PyObject *value)
{
    PyObject *parts[2] = {NULL, NULL}, *line = NULL, *b = NULL;
    PyObject *src[2] = {name, value};
    int ret = -1;
    PyErr_Clear();
    for (int k = 0; k < 2; k++) {
        parts[k] = PyUnicode_Check(src[k])
                       ? Py_NewRef(src[k])
                       : PyUnicode_FromEncodedObject(src[k], "utf-8", "strict");
        if (parts[k] == NULL) {
            goto done;
        }
    }
    line = PyUnicode_FromFormat("%U: %U", parts[0], parts[1]);
    if (line == NULL) {
        goto done;
    }
    b = PyUnicode_AsLatin1String(line);
    if (b != NULL) { /* cannot happen: one of the parts did not encode */
        PyErr_SetString(PyExc_SystemError, "header line encoded after its part did not");
        goto done;
    }
done:
    if (b == NULL && PyErr_ExceptionMatches(PyExc_UnicodeError)) {
        ret = 0;
    }
    Py_XDECREF(parts[0]);
    Py_XDECREF(parts[1]);
    Py_XDECREF(line);
    Py_XDECREF(b);
    return ret;
}

int
tc_http_py_write_headers(tc_http_writer *w, const tc_http_py_refs *refs,
                         PyObject *start_line, PyObject *headers, PyObject *chunk,
                         tc_http_buf *out)
{
    int ret = -1;
    PyObject *code_o = NULL, *reason = NULL, *reason_b = NULL;
    PyObject *keep = NULL, *items = NULL;
    tc_http_header *hdrs = NULL;
    Py_buffer cview = {0};
    int have_cview = 0;
    /* the first encoding error, raised if the writer reaches its line */
    PyObject *saved_t = NULL, *saved_v = NULL, *saved_tb = NULL;

    code_o = PySequence_GetItem(start_line, 1);
    reason = code_o ? PySequence_GetItem(start_line, 2) : NULL;
    if (reason == NULL) {
        goto fail;
    }
    long code = PyLong_AsLong(code_o);
    if (code == -1 && PyErr_Occurred()) {
        goto fail;
    }
    if (!PyUnicode_Check(reason)) {
        PyObject *s = PyObject_Str(reason);
        if (s == NULL) {
            goto fail;
        }
        Py_SETREF(reason, s);
    }
    reason_b = PyUnicode_AsUTF8String(reason);
    if (reason_b == NULL) {
        goto fail;
    }
    /* keeps alive every object the spans in hdrs point into */
    keep = PyList_New(0);
    if (keep == NULL) {
        goto fail;
    }
    /* C headers (web.h) are read in place, anything else as a list of pairs */
    int direct = refs->web != NULL && tc_web_headers_exact(refs->web, headers);
    tc_web_pos pos = {0, 0};
    Py_ssize_t n = 0;
    if (direct) {
        PyObject *a, *b; /* borrowed */
        while (tc_web_headers_next(headers, &pos, &a, &b)) {
            n++;
        }
        pos.entry = pos.k = 0;
    } else {
        items = header_items(refs, headers);
        if (items == NULL) {
            goto fail;
        }
        n = PyList_GET_SIZE(items);
    }
    hdrs = PyMem_Calloc((size_t)n + 1, sizeof(*hdrs));
    if (hdrs == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name, *value;
        if (direct) {
            /* nothing below runs Python code, so the headers stay as counted */
            if (!tc_web_headers_next(headers, &pos, &name, &value)) {
                n = i;
                break;
            }
            Py_INCREF(name);
            Py_INCREF(value);
        } else {
            PyObject *pair = PyList_GET_ITEM(items, i); /* borrowed */
            name = PySequence_GetItem(pair, 0);
            value = name ? PySequence_GetItem(pair, 1) : NULL;
            if (value == NULL) {
                Py_XDECREF(name);
                goto fail;
            }
        }
        int ok = 1;
        PyObject *parts[2] = {name, value};
        tc_http_span *spans[2] = {&hdrs[i].name, &hdrs[i].value};
        for (int k = 0; k < 2; k++) {
            PyObject *s = parts[k];
            if (PyUnicode_Check(s) && PyUnicode_IS_ASCII(s)) {
                Py_ssize_t ln;
                spans[k]->p = PyUnicode_AsUTF8AndSize(s, &ln);
                spans[k]->len = (size_t)ln;
                if (spans[k]->p == NULL) { ok = -1; break; }
                if (PyList_Append(keep, s) < 0) { ok = -1; break; }
                continue;
            }
            PyObject *b = NULL;
            if (PyUnicode_Check(s)) {
                b = PyUnicode_AsLatin1String(s);
            } else if (PyBytes_Check(s)) {
                /* native_str(bytes) decodes UTF-8, then latin-1 encodes */
                PyObject *u = PyUnicode_FromEncodedObject(s, "utf-8", "strict");
                b = u ? PyUnicode_AsLatin1String(u) : NULL;
                Py_XDECREF(u);
            } else {
                PyErr_Format(PyExc_TypeError, "Expected bytes, unicode, or None; got %R",
                             (PyObject *)Py_TYPE(s));
            }
            if (b == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeError)) { ok = -1; break; }
                if (saved_t == NULL) {
                    if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError) &&
                        line_encode_error(name, value) < 0) { /* not a UnicodeError */
                        ok = -1;
                        break;
                    }
                    PyErr_Fetch(&saved_t, &saved_v, &saved_tb);
                } else {
                    PyErr_Clear();
                }
                /* a NULL span: "could not be encoded" (parser.h) */
                spans[k]->p = NULL;
                if (k == 0) { hdrs[i].value.p = NULL; ok = 0; }
                break;
            }
            spans[k]->p = PyBytes_AS_STRING(b);
            spans[k]->len = (size_t)PyBytes_GET_SIZE(b);
            int ar = PyList_Append(keep, b);
            Py_DECREF(b);
            if (ar < 0) { ok = -1; break; }
        }
        Py_DECREF(name);
        Py_DECREF(value);
        if (ok < 0) {
            goto fail;
        }
    }
    if (chunk != Py_None) {
        if (PyObject_GetBuffer(chunk, &cview, PyBUF_SIMPLE) < 0) {
            goto fail;
        }
        have_cview = 1;
    }
    tc_http_werr e = tc_http_write_headers(w, (int)code, PyBytes_AS_STRING(reason_b),
                                           (size_t)PyBytes_GET_SIZE(reason_b), hdrs, (size_t)n,
                                           have_cview ? cview.buf : NULL,
                                           have_cview ? (size_t)cview.len : 0, out);
    if (e == TC_HTTP_WERR_ENCODE) {
        if (saved_t != NULL) {
            PyErr_Restore(saved_t, saved_v, saved_tb); /* steals all three */
            saved_t = saved_v = saved_tb = NULL;
        } else {
            PyErr_SetString(PyExc_UnicodeEncodeError, "header not latin-1");
        }
        goto fail;
    }
    if (e != TC_HTTP_WOK) {
        tc_http_py_raise(w, e, refs->HTTPOutputError);
        ret = 1;
        goto fail;
    }
    if (set_response_headers(w, headers) < 0) {
        goto fail;
    }
    ret = 0;
fail:
    Py_XDECREF(saved_t);
    Py_XDECREF(saved_v);
    Py_XDECREF(saved_tb);
    if (have_cview) {
        PyBuffer_Release(&cview);
    }
    PyMem_Free(hdrs);
    Py_XDECREF(items);
    Py_XDECREF(keep);
    Py_XDECREF(code_o);
    Py_XDECREF(reason);
    Py_XDECREF(reason_b);
    return ret;
}
