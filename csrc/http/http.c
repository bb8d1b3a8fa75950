/* http component: llhttp glue, Tornado's request grammar, response writer, server.
 *
 * This file links llhttp and proves it works (llhttp_version(),
 * _llhttp_selftest()); the request grammar is parser.c (see parser.h for
 * why it is not llhttp's), the response framing response.c, the Python
 * wrappers http_py.c; the server is server.c.
 */
#include "state.h"
#include "http/http.h"

#include <llhttp.h>

static PyObject *
llhttp_version(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    return PyUnicode_FromFormat("%d.%d.%d", LLHTTP_VERSION_MAJOR,
                                LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
}

static int
selftest_on_complete(llhttp_t *parser)
{
    *(int *)parser->data += 1;
    return 0;
}

/* Parse one small request with a fresh llhttp parser; True if it completed. */
static PyObject *
llhttp_selftest(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    llhttp_settings_t settings;
    llhttp_t parser;
    int done = 0;
    llhttp_settings_init(&settings);
    settings.on_message_complete = selftest_on_complete;
    llhttp_init(&parser, HTTP_REQUEST, &settings);
    parser.data = &done;
    llhttp_errno_t err = llhttp_execute(&parser, req, sizeof(req) - 1);
    if (err != HPE_OK) {
        PyErr_Format(PyExc_RuntimeError, "llhttp: %s", llhttp_errno_name(err));
        return NULL;
    }
    return PyBool_FromLong(done == 1);
}

/* _llhttp_verdict(data): what this llhttp, in its default settings, makes of
 * one request: "HPE_OK" when it parsed a complete message, else the errno
 * name (HPE_INVALID_METHOD, ...).  For tests that check why llhttp is not
 * the request parser (see parser.h). */
static PyObject *
llhttp_verdict(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_buffer view;
    llhttp_settings_t settings;
    llhttp_t parser;
    int done = 0;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    llhttp_settings_init(&settings);
    settings.on_message_complete = selftest_on_complete;
    llhttp_init(&parser, HTTP_REQUEST, &settings);
    parser.data = &done;
    llhttp_errno_t err = llhttp_execute(&parser, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (err == HPE_OK && done == 0) {
        return PyUnicode_FromString("incomplete");
    }
    return PyUnicode_FromString(llhttp_errno_name(err));
}

static PyMethodDef http_methods[] = {
    {"_llhttp_verdict", llhttp_verdict, METH_O,
     "What llhttp (default settings) makes of one request: 'HPE_OK' or an errno name."},
    {"llhttp_version", llhttp_version, METH_NOARGS, "Version of the llhttp compiled in."},
    {"_llhttp_selftest", llhttp_selftest, METH_NOARGS, "Parse one request with llhttp; True if it completed."},
    {NULL, NULL, 0, NULL},
};

int
tc_http_exec(PyObject *module, struct tc_state *st)
{
    if (PyModule_AddFunctions(module, http_methods) < 0) {
        return -1;
    }
    if (tc_http_py_exec(module, st) < 0) {
        return -1;
    }
    return tc_http_server_exec(module, st);
}

int
tc_http_traverse(struct tc_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->http->RequestParserType);
    Py_VISIT(st->http->ResponseWriterType);
    return tc_http_server_traverse(st, visit, arg);
}

void
tc_http_clear(struct tc_state *st)
{
    Py_CLEAR(st->http->RequestParserType);
    Py_CLEAR(st->http->ResponseWriterType);
    tc_http_server_clear(st);
}
