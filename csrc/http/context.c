/* http component: the connection's _HTTPRequestContext, built without a
 * socket object (issue 15, memory per connection).
 *
 * Upstream's tornado.httpserver._HTTPRequestContext.__init__ reads
 * stream.socket.family to learn the address family.  Our IOStream creates
 * its `socket` attribute lazily (a socket.socket on the fd, stream_py.c),
 * so that one read costs every connection a socket object it otherwise
 * never needs (88 B, plus 146 B of enum lookups that tracemalloc shows per
 * connection).  When the class and its __init__ are upstream's own, this
 * file makes the instance as that __init__ would -- the same attributes, in
 * the same order, with the same values -- taking the family from the fd
 * (getsockopt SO_DOMAIN, which is what socket.socket(fileno=fd).family
 * reports) and converting it as the socket module does (AddressFamily, or
 * the int when the enum has no member).  The stream's `socket` is still
 * there for whoever asks for it.  Anything else (a patched or subclassed
 * context, a family the fd cannot tell) calls the class as before.
 *
 * The protocol is the given one or "http", as upstream's __init__ decides
 * for a plain IOStream; for a TLS stream (ssl_options) tornado_c/httpserver.py
 * passes "https" when HTTPServer.protocol is not set, upstream's answer for
 * an SSLIOStream.
 */
#include "http/internal.h"
#include "web/web.h"

#include <sys/socket.h>

/* upstream's __init__ (borrowed from the class, or NULL when the class's
 * __init__ is not upstream's); looked up once, compared at each use */
static int
context_is_upstream(tc_http_state *hs, PyTypeObject *cls)
{
    if (hs->ctx_checked == 0) {
        hs->ctx_checked = 1;
        PyObject *mod = PyImport_ImportModule("tornado.httpserver");
        PyObject *init = _PyType_Lookup(cls, hs->s_init); /* borrowed */
        PyObject *f = mod != NULL && init != NULL
                          ? tc_web_upstream_function(init, mod, "_HTTPRequestContext.__init__")
                          : NULL;
        Py_XDECREF(mod);
        PyErr_Clear();
        hs->ctx_init = Py_XNewRef(f);
        hs->AddressFamily = tc_import_attr("socket", "AddressFamily");
        PyErr_Clear();
    }
    return hs->ctx_init != NULL && hs->AddressFamily != NULL && Py_IS_TYPE(cls, &PyType_Type) &&
           cls->tp_new == PyBaseObject_Type.tp_new &&
           _PyType_Lookup(cls, hs->s_init) == hs->ctx_init;
}

/* socket.AddressFamily(fam), or the int if it has no such member (what
 * socket.socket.family returns); new reference */
static PyObject *
address_family(tc_http_state *hs, int fam)
{
    PyObject *n = PyLong_FromLong(fam);
    if (n == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallOneArg(hs->AddressFamily, n);
    if (r == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        return n;
    }
    Py_DECREF(n);
    return r;
}

TC_INTERNAL PyObject *
tc_http_new_context(tc_http_state *hs, PyObject *stream, int fd, PyObject *address,
                    PyObject *protocol, PyObject *trusted_downstream)
{
    PyObject *cls = hs->RequestContext;
    int fam = -1;
#ifdef SO_DOMAIN
    socklen_t flen = sizeof(fam);
    int known = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &fam, &flen) == 0;
#else
    int known = 0; /* no way to ask the fd: upstream's __init__ asks the socket */
    (void)fd;
#endif
    if (!known || !PyType_Check(cls) || !context_is_upstream(hs, (PyTypeObject *)cls)) {
        return PyObject_CallFunctionObjArgs(cls, stream, address, protocol, trusted_downstream,
                                           NULL);
    }
    PyObject *ctx = NULL, *names[7], *values[7] = {NULL};
    names[0] = hs->s_address;
    names[1] = hs->s_address_family;
    names[2] = hs->s_remote_ip;
    names[3] = hs->s_protocol;
    names[4] = hs->s_orig_remote_ip;
    names[5] = hs->s_orig_protocol;
    names[6] = hs->s_trusted_downstream;
    int truthy;

    values[0] = Py_NewRef(address);
    if ((values[1] = address_family(hs, fam)) == NULL) {
        goto fail;
    }
    /* an IP for AF_INET / AF_INET6, else upstream's fake address */
    if ((fam == AF_INET || fam == AF_INET6) && address != Py_None) {
        values[2] = PySequence_GetItem(address, 0);
    } else {
        values[2] = PyUnicode_FromString("0.0.0.0");
    }
    if (values[2] == NULL || (truthy = PyObject_IsTrue(protocol)) < 0) {
        goto fail;
    }
    values[3] = truthy ? Py_NewRef(protocol) : PyUnicode_InternFromString("http");
    if (values[3] == NULL || (truthy = PyObject_IsTrue(trusted_downstream)) < 0) {
        goto fail;
    }
    values[4] = Py_NewRef(values[2]);
    values[5] = Py_NewRef(values[3]);
    /* set(trusted_downstream or []) */
    if ((values[6] = PySet_New(truthy ? trusted_downstream : NULL)) == NULL) {
        goto fail;
    }
    ctx = ((PyTypeObject *)cls)->tp_new((PyTypeObject *)cls, hs->ctx_empty_tuple, NULL);
    if (ctx == NULL) {
        goto fail;
    }
    for (int i = 0; i < 7; i++) {
        if (PyObject_SetAttr(ctx, names[i], values[i]) < 0) {
            Py_CLEAR(ctx);
            goto fail;
        }
    }
fail:
    for (int i = 0; i < 7; i++) {
        Py_XDECREF(values[i]);
    }
    return ctx;
}

TC_INTERNAL int
tc_http_context_exec(tc_http_state *hs)
{
    struct {
        PyObject **field;
        const char *text;
    } names[] = {
        {&hs->s_init, "__init__"},
        {&hs->s_address, "address"},
        {&hs->s_address_family, "address_family"},
        {&hs->s_remote_ip, "remote_ip"},
        {&hs->s_protocol, "protocol"},
        {&hs->s_orig_remote_ip, "_orig_remote_ip"},
        {&hs->s_orig_protocol, "_orig_protocol"},
        {&hs->s_trusted_downstream, "trusted_downstream"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((*names[i].field = PyUnicode_InternFromString(names[i].text)) == NULL) {
            return -1;
        }
    }
    if ((hs->ctx_empty_tuple = PyTuple_New(0)) == NULL) {
        return -1;
    }
    return 0;
}

TC_INTERNAL int
tc_http_context_traverse(tc_http_state *hs, visitproc visit, void *arg)
{
    Py_VISIT(hs->ctx_init);
    Py_VISIT(hs->AddressFamily);
    return 0;
}

TC_INTERNAL void
tc_http_context_clear(tc_http_state *hs)
{
    hs->ctx_checked = 0;
    Py_CLEAR(hs->ctx_init);
    Py_CLEAR(hs->AddressFamily);
    Py_CLEAR(hs->ctx_empty_tuple);
    Py_CLEAR(hs->s_init);
    Py_CLEAR(hs->s_address);
    Py_CLEAR(hs->s_address_family);
    Py_CLEAR(hs->s_remote_ip);
    Py_CLEAR(hs->s_protocol);
    Py_CLEAR(hs->s_orig_remote_ip);
    Py_CLEAR(hs->s_orig_protocol);
    Py_CLEAR(hs->s_trusted_downstream);
}
