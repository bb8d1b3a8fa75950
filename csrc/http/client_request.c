/* _core.http_client_request(): the bytes of a client request, built in C
 * for tornado_c/simple_httpclient.py (HTTP1ClientConnection.write_request).
 *
 *   http_client_request(method, path, headers, body) -> bytes | None
 *
 * What upstream's client-mode HTTP1Connection writes for write_headers()
 * followed by write(body) and finish() when the request is not chunked
 * (tornado 6.6.1): the line "<method> <path> HTTP/1.1", one line
 * "<name>: <value>" per pair of headers.get_all(), each ended by CRLF, an
 * empty line, then the body (None or a bytes-like object).  The caller
 * sends it with one stream write.
 *
 * None means "not here": a line upstream would refuse or would build
 * differently (a name or value that is not a str, a character outside
 * latin-1, CR or LF anywhere, a method or path that is not a str).  The
 * caller then writes with upstream's write_headers(), which raises the
 * exact error (UnicodeEncodeError, ValueError("Illegal characters ...")) or
 * handles the bytes values, so no message is reproduced here.
 *
 * Headers: the web component's C HTTPHeaders are read in place
 * (tc_web_headers_next); upstream's HTTPHeaders and anything else through
 * get_all().
 */
#include "http/internal.h"
#include "web/web.h"

/* Appends n bytes of a line; 1 done, 0 they hold CR or LF (upstream
 * refuses the line), -1 with MemoryError set. */
static int
put_line_part(tc_http_buf *b, const char *p, Py_ssize_t n)
{
    if (n > 0 && (memchr(p, '\r', (size_t)n) != NULL || memchr(p, '\n', (size_t)n) != NULL)) {
        return 0;
    }
    if (tc_http_buf_append(b, p, (size_t)n) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 1;
}

/* Appends the latin-1 bytes of `s`; 1 done, 0 not latin-1 / has CR or LF
 * (or is not a str), -1 with an exception set. */
static int
put_latin1(tc_http_buf *b, PyObject *s)
{
    if (!PyUnicode_Check(s)) {
        return 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    if (kind != PyUnicode_1BYTE_KIND) {
        return 0;
    }
    return put_line_part(b, (const char *)PyUnicode_1BYTE_DATA(s), n);
}

/* Appends "name: value\r\n"; same returns as put_latin1. */
static int
put_header(tc_http_buf *b, PyObject *name, PyObject *value)
{
    int r = put_latin1(b, name);
    if (r != 1) {
        return r;
    }
    if (tc_http_buf_append(b, ": ", 2) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    r = put_latin1(b, value);
    if (r != 1) {
        return r;
    }
    if (tc_http_buf_append(b, "\r\n", 2) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 1;
}

/* The request line: utf8(f"{method} {path} HTTP/1.1"), no CR/LF. */
static int
put_utf8(tc_http_buf *b, PyObject *s)
{
    if (!PyUnicode_Check(s)) {
        return 0;
    }
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(s, &n);
    if (p == NULL) {
        /* lone surrogates: upstream's utf8() raises; let it */
        PyErr_Clear();
        return 0;
    }
    return put_line_part(b, p, n);
}

PyObject *
tc_http_client_request_bytes(tc_state *st, PyObject *method, PyObject *path, PyObject *headers,
                             PyObject *body_obj)
{
    tc_http_buf b = {0};
    PyObject *items = NULL, *result = NULL;
    Py_buffer body = {0};
    int have_body = 0, r;
    if (body_obj != Py_None) {
        if (PyObject_GetBuffer(body_obj, &body, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        have_body = 1;
    }
    if ((r = put_utf8(&b, method)) != 1) {
        goto done;
    }
    if (tc_http_buf_append(&b, " ", 1) < 0) {
        goto nomem;
    }
    if ((r = put_utf8(&b, path)) != 1) {
        goto done;
    }
    if (tc_http_buf_append(&b, " HTTP/1.1\r\n", 11) < 0) {
        goto nomem;
    }
    if (st->web != NULL && tc_web_headers_exact(st->web, headers)) {
        tc_web_pos pos = {0, 0};
        PyObject *name, *value; /* borrowed */
        while (tc_web_headers_next(headers, &pos, &name, &value)) {
            if ((r = put_header(&b, name, value)) != 1) {
                goto done;
            }
        }
    }
    else {
        PyObject *ga = PyObject_CallMethod(headers, "get_all", NULL);
        if (ga == NULL) {
            goto fail;
        }
        items = PySequence_Fast(ga, "get_all() must give pairs");
        Py_DECREF(ga);
        if (items == NULL) {
            goto fail;
        }
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(items); i++) {
            PyObject *pair = PySequence_Fast_GET_ITEM(items, i); /* borrowed */
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                r = 0;
                goto done;
            }
            if ((r = put_header(&b, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1))) != 1) {
                goto done;
            }
        }
    }
    if (tc_http_buf_append(&b, "\r\n", 2) < 0) {
        goto nomem;
    }
    if (have_body && body.len > 0 && tc_http_buf_append(&b, body.buf, (size_t)body.len) < 0) {
        goto nomem;
    }
    r = 1;
done:
    if (r == 1) {
        result = PyBytes_FromStringAndSize(b.data, (Py_ssize_t)b.len);
    }
    else if (r == 0) {
        result = Py_NewRef(Py_None);
    }
    goto fail;
nomem:
    PyErr_NoMemory();
fail:
    Py_XDECREF(items);
    if (have_body) {
        PyBuffer_Release(&body);
    }
    tc_http_buf_free(&b);
    return result;
}

static PyObject *
http_client_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "http_client_request(method, path, headers, body)");
        return NULL;
    }
    return tc_http_client_request_bytes(PyModule_GetState(module), args[0], args[1], args[2],
                                        args[3]);
}

static PyMethodDef client_request_functions[] = {
    {"http_client_request", (PyCFunction)(void (*)(void))http_client_request, METH_FASTCALL,
     "http_client_request(method, path, headers, body) -> the request's bytes, or None "
     "when upstream's write_headers must write it."},
    {NULL, NULL, 0, NULL},
};

int
tc_http_client_request_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, client_request_functions);
}
