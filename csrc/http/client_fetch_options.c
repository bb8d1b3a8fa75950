/* Which fetches the C fetch (client_fetch.c) takes, and their options:
 * what _RequestProxy gives for each of the request's options (the
 * request's attribute unless None, else the client's default), and the URL
 * as urllib.parse.urlsplit and tornado's split_host_and_port read it, for
 * the URLs this path takes. */
#include <arpa/inet.h>
#include <string.h>

#include "http/client_fetch.h"

/* -------------------------------------------------------------- the URL */

/* host is an IPv4 address exactly as inet_ntop writes it */
static int
dotted_quad(const char *p, size_t n, struct in_addr *out)
{
    unsigned parts = 0, val = 0, digits = 0;
    uint32_t a = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '.') {
            if (digits == 0 || val > 255) {
                return 0;
            }
            a = (a << 8) | val;
            parts++;
            val = digits = 0;
            continue;
        }
        if (p[i] < '0' || p[i] > '9' || (digits == 1 && val == 0)) {
            return 0; /* not a digit, or a leading zero */
        }
        val = val * 10 + (unsigned)(p[i] - '0');
        if (++digits > 3) {
            return 0;
        }
    }
    if (parts != 4) {
        return 0;
    }
    out->s_addr = htonl(a);
    return 1;
}

/* Parse `url` as urlsplit and split_host_and_port would, for the URLs this
 * path takes: "http://" + a dotted quad [":" port] + path [ "?" query ],
 * printable ASCII without '#', '@', '[' or ']'.  1 (f->addr, f->netloc,
 * f->path set), 0 not such a URL, -1 with an exception set. */
static int
parse_url(cfetch *f, PyObject *url)
{
    Py_ssize_t n;
    const char *u;
    if (!PyUnicode_CheckExact(url) || !PyUnicode_IS_ASCII(url)) {
        return 0;
    }
    u = PyUnicode_AsUTF8AndSize(url, &n);
    if (u == NULL) {
        return -1;
    }
    if (n < 8 || memcmp(u, "http://", 7) != 0) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c >= 0x7f || c == '#' || c == '[' || c == ']' || c == '\\') {
            return 0;
        }
    }
    const char *nl = u + 7, *end = u + n, *q = nl;
    while (q < end && *q != '/' && *q != '?') {
        if (*q == '@') {
            return 0;
        }
        q++;
    }
    size_t nl_len = (size_t)(q - nl);
    const char *colon = memchr(nl, ':', nl_len);
    size_t host_len = colon ? (size_t)(colon - nl) : nl_len;
    unsigned long port = 80;
    if (colon != NULL) {
        size_t pl = nl_len - host_len - 1;
        if (pl == 0 || pl > 5) {
            return 0;
        }
        port = 0;
        for (size_t i = 0; i < pl; i++) {
            if (colon[1 + i] < '0' || colon[1 + i] > '9') {
                return 0;
            }
            port = port * 10 + (unsigned long)(colon[1 + i] - '0');
        }
        if (port == 0 || port > 65535) {
            return 0; /* upstream's errors for these come from its own path */
        }
    }
    memset(&f->addr, 0, sizeof(f->addr));
    if (!dotted_quad(nl, host_len, &f->addr.sin_addr)) {
        return 0;
    }
    f->addr.sin_family = AF_INET;
    f->addr.sin_port = htons((uint16_t)port);
    /* (parsed.path or "/") + ("?" + parsed.query if parsed.query else "") */
    const char *qm = memchr(q, '?', (size_t)(end - q));
    const char *path_end = qm ? qm : end;
    int has_query = qm != NULL && qm + 1 < end;
    size_t plen = (size_t)(path_end - q);
    tc_http_buf b = {0};
    if ((plen ? tc_http_buf_append(&b, q, plen) : tc_http_buf_append(&b, "/", 1)) < 0 ||
        (has_query && tc_http_buf_append(&b, qm, (size_t)(end - qm)) < 0)) {
        tc_http_buf_free(&b);
        PyErr_NoMemory();
        return -1;
    }
    f->path = PyUnicode_FromStringAndSize(b.data, (Py_ssize_t)b.len);
    tc_http_buf_free(&b);
    f->netloc = PyUnicode_FromStringAndSize(nl, (Py_ssize_t)nl_len);
    if (f->path == NULL || f->netloc == NULL) {
        return -1;
    }
    return 1;
}

/* ------------------------------------------------------- the options */

/* What _RequestProxy.__getattr__(name) gives: the request's attribute
 * unless None, else the default.  Borrowed; NULL with *missing = 1 for an
 * attribute the request does not have (not for this path), NULL with an
 * exception set on error. */
static PyObject *
opt(PyObject *d, PyObject *defaults, PyObject *name, int *missing)
{
    PyObject *v = PyDict_GetItemWithError(d, name);
    if (v == NULL) {
        if (!PyErr_Occurred()) {
            *missing = 1;
        }
        return NULL;
    }
    if (v == Py_None && defaults != Py_None) {
        PyObject *dv = PyDict_GetItemWithError(defaults, name);
        if (dv == NULL) {
            return PyErr_Occurred() ? NULL : Py_None;
        }
        return dv;
    }
    return v;
}

static int
is_number_or_none(PyObject *v)
{
    return v == Py_None || PyFloat_CheckExact(v) || PyLong_CheckExact(v);
}

static const char *const supported_methods[] = {"GET",    "HEAD",  "POST",   "PUT",
                                                "DELETE", "PATCH", "OPTIONS"};

/* 1 the options are this path's (f filled), 0 not, -1 error */
int
tc_http_fetch_read_options(cfetch *f, PyObject *d, PyObject *defaults)
{
    static const int must_be_false[] = {
        N_body_producer,  N_expect_100_continue, N_network_interface, N_proxy_host,
        N_proxy_port,     N_proxy_username,      N_proxy_password,    N_proxy_auth_mode,
        N_allow_nonstandard_methods,
    };
    static const int must_be_none[] = {N_header_callback, N_streaming_callback, N_auth_username,
                                       N_body_producer};
    int missing = 0, r;
    PyObject *v;
#define OPT(id) opt(d, defaults, f->kit->names[N_##id], &missing)
    for (size_t i = 0; i < sizeof(must_be_false) / sizeof(must_be_false[0]); i++) {
        v = opt(d, defaults, f->kit->names[must_be_false[i]], &missing);
        if (v == NULL) {
            return missing ? 0 : -1;
        }
        if ((r = PyObject_IsTrue(v)) != 0) {
            return r < 0 ? -1 : 0;
        }
    }
    for (size_t i = 0; i < sizeof(must_be_none) / sizeof(must_be_none[0]); i++) {
        v = opt(d, defaults, f->kit->names[must_be_none[i]], &missing);
        if (v != Py_None) {
            return v == NULL && !missing ? -1 : 0;
        }
    }
    /* the method: one upstream supports, as an exact str */
    v = OPT(method);
    if (v == NULL) {
        return missing ? 0 : -1;
    }
    if (!PyUnicode_CheckExact(v)) {
        return 0;
    }
    int known = 0;
    for (size_t i = 0; i < sizeof(supported_methods) / sizeof(supported_methods[0]); i++) {
        if (PyUnicode_CompareWithASCIIString(v, supported_methods[i]) == 0) {
            known = 1;
            break;
        }
    }
    if (!known) {
        return 0;
    }
    f->method = Py_NewRef(v);
    /* the body upstream expects for the method (else its ValueError) */
    v = PyDict_GetItemWithError(d, NAME(f, u_body));
    if (v == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (v == NULL || v == Py_None) {
        v = defaults != Py_None ? PyDict_GetItemWithError(defaults, NAME(f, body)) : NULL;
        if (v == NULL && PyErr_Occurred()) {
            return -1;
        }
        if (v == NULL) {
            v = Py_None;
        }
    }
    if (v != Py_None && !PyBytes_CheckExact(v)) {
        return 0;
    }
    int body_expected = PyUnicode_CompareWithASCIIString(f->method, "POST") == 0 ||
                        PyUnicode_CompareWithASCIIString(f->method, "PATCH") == 0 ||
                        PyUnicode_CompareWithASCIIString(f->method, "PUT") == 0;
    if (body_expected != (v != Py_None)) {
        return 0;
    }
    f->body = Py_NewRef(v);
    /* the headers object (the property reads _headers) */
    v = PyDict_GetItemWithError(d, NAME(f, u_headers));
    if (v == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (v == NULL || v == Py_None) {
        return 0;
    }
    f->headers = Py_NewRef(v);
    if ((v = OPT(user_agent)) == NULL) {
        return missing ? 0 : -1;
    }
    f->user_agent = Py_NewRef(v);
    if ((v = OPT(decompress_response)) == NULL) {
        return missing ? 0 : -1;
    }
    if ((r = PyObject_IsTrue(v)) < 0) {
        return -1;
    }
    f->decompress = (char)r;
    if ((v = OPT(connect_timeout)) == NULL) {
        return missing ? 0 : -1;
    }
    if (!is_number_or_none(v)) {
        return 0;
    }
    f->connect_timeout = Py_NewRef(v);
    if ((v = OPT(request_timeout)) == NULL) {
        return missing ? 0 : -1;
    }
    if (!is_number_or_none(v)) {
        return 0;
    }
    f->request_timeout = Py_NewRef(v);
    if ((v = OPT(follow_redirects)) == NULL) {
        return missing ? 0 : -1;
    }
    if ((r = PyObject_IsTrue(v)) < 0) {
        return -1;
    }
    if (r) {
        if ((v = OPT(max_redirects)) == NULL) {
            return missing ? 0 : -1;
        }
        if (!PyLong_CheckExact(v)) {
            return 0; /* upstream asserts it is set */
        }
        f->max_redirects = Py_NewRef(v);
    }
    if ((v = OPT(url)) == NULL) {
        return missing ? 0 : -1;
    }
#undef OPT
    f->url = Py_NewRef(v);
    return parse_url(f, v);
}

