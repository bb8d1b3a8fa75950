/* http component: llhttp glue, Tornado's request grammar, response writer, server.
 *
 * This file links llhttp (llhttp_version(); the test build's _llhttp_selftest()
 * and _llhttp_verdict() are in test_api.c) and registers the component; the
 * request grammar is parser.c (see parser.h for why it is not llhttp's), the
 * response framing response.c, its Python side http_py.c, the server
 * server.c + server_py.c (HTTPServerConnection) and connection.c
 * (HTTPConnection), the client's response parser client.c, strict mode's
 * judge for Python connections judge_py.c, the test build's wrappers
 * test_api.c.
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

static PyMethodDef http_methods[] = {
    {"llhttp_version", llhttp_version, METH_NOARGS, "Version of the llhttp compiled in."},
    {NULL, NULL, 0, NULL},
};

int
tc_http_exec(PyObject *module, struct tc_state *st)
{
    st->http->web = st->web;
    if (PyModule_AddFunctions(module, http_methods) < 0) {
        return -1;
    }
#ifdef TC_TEST_API
    if (tc_http_test_exec(module, st) < 0) {
        return -1;
    }
#endif
    if (tc_http_client_exec(module, st) < 0) {
        return -1;
    }
    if (tc_http_judge_exec(module, st) < 0) {
        return -1;
    }
    return tc_http_server_exec(module, st);
}

int
tc_http_traverse(struct tc_state *st, visitproc visit, void *arg)
{
#ifdef TC_TEST_API
    Py_VISIT(st->http->RequestParserType);
    Py_VISIT(st->http->ResponseWriterType);
#endif
    Py_VISIT(st->http->JudgeType);
    int r = tc_http_client_traverse(st, visit, arg);
    if (r != 0) {
        return r;
    }
    return tc_http_server_traverse(st, visit, arg);
}

void
tc_http_clear(struct tc_state *st)
{
#ifdef TC_TEST_API
    Py_CLEAR(st->http->RequestParserType);
    Py_CLEAR(st->http->ResponseWriterType);
#endif
    Py_CLEAR(st->http->JudgeType);
    tc_http_client_clear(st);
    tc_http_server_clear(st);
}
