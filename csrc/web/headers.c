/* web component: _core.HTTPHeaders, the C base of tornado_c.httputil.HTTPHeaders.
 *
 * web.h has the design (storage, identity with upstream's class, setup) and
 * the contract other components use; the storage itself (entries, index,
 * character classes, names) is headers_store.c.  This file follows Tornado 6.6.1's
 * tornado.httputil.HTTPHeaders method by method; where upstream's method
 * calls another overridable method (add -> __contains__/__setitem__,
 * __init__ -> update, parse -> cls()/parse_line, copy/__str__ -> get_all),
 * an instance of a subclass goes through that method too, and an instance of
 * exactly tornado_c.httputil.HTTPHeaders ("exact" below) takes the direct C
 * path, which gives the same result.
 *
 * Re-entrancy.  Allocating a GC-tracked object (a list, a tuple) may run the
 * garbage collector, and with it finalizers that could touch these headers;
 * so is dropping a reference to a value.  No pointer into the entry array is
 * kept across such a call: entries are found again (or re-checked) after
 * it, and references are dropped after the storage is consistent.
 */
#include "web/internal.h"

#include <string.h>

/* iter(headers): the names, as iter(upstream._as_list) */
typedef struct {
    PyObject_HEAD
    hdrs *h;              /* strong; NULL once exhausted */
    Py_ssize_t ei;        /* next entry slot */
    Py_ssize_t used;      /* h->used when created; -1 after a size change */
} keyiter;

/* headers.get_all(): (name, value) pairs, as upstream's generator over
 * _as_list.items() and each name's list of values */
typedef struct {
    PyObject_HEAD
    hdrs *h;              /* strong; NULL once exhausted */
    PyObject *name;       /* strong or NULL: the current entry's name */
    PyObject *vals;       /* strong or NULL: the current entry's list of values */
    Py_ssize_t ei;        /* next entry slot */
    Py_ssize_t k;         /* next index in vals */
    Py_ssize_t used;      /* h->used at the first next() */
    char started;
} alliter;

#define EXACT(h) ((PyObject *)Py_TYPE(h) == (h)->ws->Headers)

/* ------------------------------------------------------------ helpers */

static tc_web_state *
ws_of_type(PyTypeObject *t)
{
    for (; t != NULL; t = t->tp_base) {
        if (PyType_HasFeature(t, Py_TPFLAGS_HEAPTYPE) &&
            ((PyHeapTypeObject *)t)->ht_module != NULL) {
            return tc_get_state(((PyHeapTypeObject *)t)->ht_module)->web;
        }
    }
    PyErr_SetString(PyExc_TypeError, "not a subclass of _core.HTTPHeaders");
    return NULL;
}

static int ensure_setup(tc_web_state *ws);

/* Every entry point starts here (NEED_WS): the instance's pointer to the
 * state, found from its type the first time -- an instance made by
 * object.__new__ (protocol 0 and 1 pickles load that way) has none yet.
 * NULL with an exception set if tornado_c.httputil cannot be set up. */
static tc_web_state *
hd_ws(hdrs *h)
{
    if (h->ws == NULL || h->ws->Headers == NULL) {
        tc_web_state *ws = ws_of_type(Py_TYPE(h));
        if (ws == NULL || ensure_setup(ws) < 0) {
            return NULL;
        }
        h->ws = ws;
    }
    return h->ws;
}

#define NEED_WS(h, err)          \
    do {                         \
        if (hd_ws(h) == NULL) {  \
            return err;          \
        }                        \
    } while (0)

/* Binds a vectorcall's arguments: names[0..npos) by position or keyword,
 * names[npos..n) by keyword only; out[i] borrowed or NULL when not given.
 * 0, or -1 when the call does not fit them (no exception set: the caller
 * lets upstream's function raise its own TypeError). */
static int
bind(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *const *names,
     int npos, int n, PyObject **out)
{
    if (nargs > npos) {
        return -1;
    }
    for (int i = 0; i < n; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t j = 0; j < nkw; j++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, j);
        int i = 0;
        while (i < n && PyUnicode_CompareWithASCIIString(kw, names[i]) != 0) {
            i++;
        }
        if (i == n || out[i] != NULL) {
            return -1;
        }
        out[i] = args[nargs + j];
    }
    return 0;
}

/* A call that did not fit: upstream's function `meth` (looked up on its
 * class) gets the same arguments, and raises the TypeError upstream's
 * users see. */
static PyObject *
upstream_call(tc_web_state *ws, const char *meth, PyObject *self, PyObject *const *args,
              Py_ssize_t nargs, PyObject *kwnames)
{
    /* an interned name: a fresh str would churn the type attribute cache */
    PyObject *name = PyUnicode_InternFromString(meth), *f;
    if (name == NULL) {
        return NULL;
    }
    f = PyObject_GetAttr(ws->UpstreamHeaders, name);
    Py_DECREF(name);
    if (f == NULL) {
        return NULL;
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject **a = PyMem_Malloc((size_t)(nargs + nkw + 1) * sizeof(PyObject *));
    if (a == NULL) {
        Py_DECREF(f);
        return PyErr_NoMemory();
    }
    a[0] = self;
    memcpy(a + 1, args, (size_t)(nargs + nkw) * sizeof(PyObject *));
    PyObject *r = PyObject_Vectorcall(f, a, (size_t)nargs + 1, kwnames);
    PyMem_Free(a);
    Py_DECREF(f);
    return r;
}

static int
input_error(tc_web_state *ws, const char *fmt, PyObject *arg)
{
    PyObject *msg = arg ? PyUnicode_FromFormat(fmt, arg) : PyUnicode_FromString(fmt);
    if (msg != NULL) {
        PyErr_SetObject(ws->HTTPInputError, msg);
        Py_DECREF(msg);
    }
    return -1;
}

/* `name, value = line.split(":", 1)` failing in parse_line: upstream raises
 * HTTPInputError inside `except ValueError`, which becomes its context. */
static int
no_colon_error(tc_web_state *ws)
{
    PyObject *t, *v, *tb, *t2, *v2, *tb2;
    PyErr_SetString(PyExc_ValueError, "not enough values to unpack (expected 2, got 1)");
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    input_error(ws, "no colon in header line", NULL);
    PyErr_Fetch(&t2, &v2, &tb2);
    PyErr_NormalizeException(&t2, &v2, &tb2);
    if (v2 != NULL && v != NULL) {
        PyException_SetContext(v2, v); /* steals v */
        v = NULL;
    }
    PyErr_Restore(t2, v2, tb2);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    return -1;
}

/* `a, b = item` (new references): 0, or -1 with the interpreter's error. */
static int
unpack2(PyObject *item, PyObject **a, PyObject **b)
{
    if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) {
        *a = Py_NewRef(PyTuple_GET_ITEM(item, 0));
        *b = Py_NewRef(PyTuple_GET_ITEM(item, 1));
        return 0;
    }
    PyObject *it = PyObject_GetIter(item), *x[3] = {NULL, NULL, NULL};
    int n = 0;
    if (it == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError, "cannot unpack non-iterable %.200s object",
                         Py_TYPE(item)->tp_name);
        }
        return -1;
    }
    while (n < 3 && (x[n] = PyIter_Next(it)) != NULL) {
        n++;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        goto fail;
    }
    if (n < 2) {
        PyErr_Format(PyExc_ValueError, "not enough values to unpack (expected 2, got %d)", n);
        goto fail;
    }
    if (n == 3) {
        PyErr_SetString(PyExc_ValueError, "too many values to unpack (expected 2)");
        goto fail;
    }
    *a = x[0];
    *b = x[1];
    return 0;
fail:
    for (int i = 0; i < n; i++) {
        Py_DECREF(x[i]);
    }
    return -1;
}

/* ------------------------------------------------------------ add */

/* add()'s checks: new reference to the normalized name, or NULL with
 * upstream's error.  Exact strs are checked here; anything else (bytes
 * values, str subclasses, wrong types) by tornado_c.httputil._check_add,
 * which runs upstream's own expressions. */
static PyObject *
check_add(tc_web_state *ws, PyObject *name, PyObject *value, int chars_are_bytes)
{
    if (PyUnicode_CheckExact(name) && PyUnicode_CheckExact(value)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(name), vn = PyUnicode_GET_LENGTH(value);
        int vk = PyUnicode_KIND(value);
        const void *vd = PyUnicode_DATA(value);
        if (!tc_web_hd_token_ok(PyUnicode_KIND(name), PyUnicode_DATA(name), 0, n)) {
            input_error(ws, "Invalid header name %R", name);
            return NULL;
        }
        if (chars_are_bytes ? !tc_web_hd_value_ok(vk, vd, 0, vn)
                            : !tc_web_hd_value_ok_unicode(vk, vd, 0, vn)) {
            input_error(ws, "Invalid header value %R", value);
            return NULL;
        }
        return tc_web_hd_normalize_range(name, 0, n);
    }
    PyObject *r = PyObject_CallFunction(ws->check_add, "OOO", name, value,
                                        chars_are_bytes ? Py_True : Py_False);
    if (r != NULL && !PyUnicode_CheckExact(r)) {
        PyErr_SetString(PyExc_TypeError, "_check_add() must return a str");
        Py_CLEAR(r);
    }
    return r;
}

/* upstream's add() after its checks, on any instance */
static int
add_checked(hdrs *h, PyObject *norm, PyObject *value)
{
    if (EXACT(h)) {
        return tc_web_hd_add_normalized(h, norm, value);
    }
    /* a subclass: `if norm_name in self` and `self[norm_name] = value` go
     * through its methods */
    int c = PySequence_Contains((PyObject *)h, norm);
    if (c < 0) {
        return -1;
    }
    if (!c) {
        return PyObject_SetItem((PyObject *)h, norm, value);
    }
    Py_hash_t hash = PyObject_Hash(norm);
    Py_ssize_t slot;
    if (hash == -1) {
        return -1;
    }
    if (tc_web_hd_find(h, norm, hash, &slot) < 0) {
        /* upstream: self._as_list[norm_name] raises */
        PyErr_SetObject(PyExc_KeyError, norm);
        return -1;
    }
    return tc_web_hd_add_normalized(h, norm, value);
}

static int
add_impl(hdrs *h, PyObject *name, PyObject *value, int chars_are_bytes)
{
    PyObject *norm = check_add(h->ws, name, value, chars_are_bytes);
    if (norm == NULL) {
        return -1;
    }
    int r = add_checked(h, norm, value);
    Py_DECREF(norm);
    return r;
}

/* add() on `h` as its class dispatches it: the C path for an exact
 * instance, its add method for a subclass's.  `flag` is the caller's
 * _chars_are_bytes object (NULL: not given). */
static int
dispatch_add(hdrs *h, PyObject *name, PyObject *value, PyObject *flag)
{
    if (EXACT(h)) {
        int cab = 1;
        if (flag != NULL && (cab = PyObject_IsTrue(flag)) < 0) {
            return -1;
        }
        return add_impl(h, name, value, cab);
    }
    PyObject *args[4] = {(PyObject *)h, name, value, flag};
    PyObject *kw = NULL;
    if (flag != NULL && (kw = PyTuple_Pack(1, h->ws->s_chars_are_bytes)) == NULL) {
        return -1;
    }
    PyObject *r = PyObject_VectorcallMethod(h->ws->s_add, args,
                                            3 | PY_VECTORCALL_ARGUMENTS_OFFSET, kw);
    Py_XDECREF(kw);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* ------------------------------------------------------------ parse_line */

/* parse_line(line[b:e]) for an exact str `line`; `flag` as dispatch_add. */
static int
parse_line_range(hdrs *h, PyObject *line, Py_ssize_t b, Py_ssize_t e, PyObject *flag,
                 int cab)
{
    tc_web_state *ws = h->ws;
    int kind = PyUnicode_KIND(line);
    const void *data = PyUnicode_DATA(line);
    /* re.search(r"\r?\n$", line): the leftmost match; `$` matches at the end
     * and before a newline that ends the string, so a match starts at one of
     * the last three characters */
    for (Py_ssize_t p = e - 3 > b ? e - 3 : b; p < e; p++) {
        Py_ssize_t q = p;
        if (PyUnicode_READ(kind, data, q) == '\r') {
            q++;
        }
        if (q < e && PyUnicode_READ(kind, data, q) == '\n') {
            q++;
            if (q == e || (q == e - 1 && PyUnicode_READ(kind, data, e - 1) == '\n')) {
                e = p;
                break;
            }
        }
    }
    if (e == b) {
        return 0;
    }
    Py_UCS4 c0 = PyUnicode_READ(kind, data, b);
    if (c0 == ' ' || c0 == '\t') {
        return input_error(ws, "header line cannot start with whitespace, folding not supported",
                           NULL);
    }
    Py_ssize_t colon = b;
    while (colon < e && PyUnicode_READ(kind, data, colon) != ':') {
        colon++;
    }
    if (colon == e) {
        return no_colon_error(ws);
    }
    Py_ssize_t vb = colon + 1, ve = e;
    while (vb < ve && ((c0 = PyUnicode_READ(kind, data, vb)) == ' ' || c0 == '\t')) {
        vb++;
    }
    while (ve > vb && ((c0 = PyUnicode_READ(kind, data, ve - 1)) == ' ' || c0 == '\t')) {
        ve--;
    }
    if (EXACT(h)) {
        /* add() without making the name a str unless it is new or bad */
        if (!tc_web_hd_token_ok(kind, data, b, colon)) {
            PyObject *name = PyUnicode_Substring(line, b, colon);
            if (name != NULL) {
                input_error(ws, "Invalid header name %R", name);
                Py_DECREF(name);
            }
            return -1;
        }
        PyObject *value = PyUnicode_Substring(line, vb, ve);
        if (value == NULL) {
            return -1;
        }
        int ok = cab ? tc_web_hd_value_ok(kind, data, vb, ve)
                     : tc_web_hd_value_ok_unicode(kind, data, vb, ve);
        if (!ok) {
            input_error(ws, "Invalid header value %R", value);
            Py_DECREF(value);
            return -1;
        }
        PyObject *norm = tc_web_hd_normalize_range(line, b, colon);
        int r = norm ? tc_web_hd_add_normalized(h, norm, value) : -1;
        Py_XDECREF(norm);
        Py_DECREF(value);
        return r;
    }
    PyObject *name = PyUnicode_Substring(line, b, colon);
    PyObject *value = name ? PyUnicode_Substring(line, vb, ve) : NULL;
    /* upstream's parse_line passes _chars_are_bytes on (True by default) */
    int r = value ? dispatch_add(h, name, value, flag ? flag : Py_True) : -1;
    Py_XDECREF(name);
    Py_XDECREF(value);
    return r;
}

/* ------------------------------------------------------------ type: construction */

static hdrs *
headers_alloc(tc_web_state *ws, PyTypeObject *type)
{
    hdrs *h = (hdrs *)type->tp_alloc(type, 0);
    if (h != NULL) {
        h->ws = ws; /* the rest is zero: empty */
    }
    return h;
}

PyObject *
tc_web_headers_new(tc_web_state *ws)
{
    if (ws->Headers == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tornado_c.httputil is not set up");
        return NULL;
    }
    return (PyObject *)headers_alloc(ws, (PyTypeObject *)ws->Headers);
}

/* Imports tornado_c.httputil if it has not registered its class yet. */
static int
ensure_setup(tc_web_state *ws)
{
    if (ws->Headers != NULL) {
        return 0;
    }
    PyObject *m = PyImport_ImportModule("tornado_c.httputil");
    Py_XDECREF(m);
    if (m == NULL) {
        return -1;
    }
    if (ws->Headers == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tornado_c.httputil did not set up HTTPHeaders");
        return -1;
    }
    return 0;
}

/* 1 if `o` is an HTTPHeaders of either implementation: upstream's
 * isinstance(o, HTTPHeaders) with the module's name, which is ours or
 * upstream's and accepts both. */
static int
is_headers(tc_web_state *ws, PyObject *o)
{
    if (PyObject_TypeCheck(o, ws->HeadersType)) {
        return 1;
    }
    if (PyDict_CheckExact(o) || PyList_CheckExact(o) || PyTuple_CheckExact(o)) {
        return 0;
    }
    return PyObject_IsInstance(o, ws->UpstreamHeaders);
}

/* The copy constructor's loop: for k, v in src.get_all(): h.add(k, v) */
static int
copy_pairs(hdrs *h, PyObject *src)
{
    PyObject *it = NULL, *item = NULL, *k = NULL, *v = NULL;
    Py_ssize_t ei = 0, vi = 0;
    int src_c = (PyObject *)Py_TYPE(src) == h->ws->Headers;
    int r = -1;
    if (!src_c) {
        PyObject *ga = PyObject_CallMethodNoArgs(src, h->ws->s_get_all);
        if (ga == NULL) {
            return -1;
        }
        it = PyObject_GetIter(ga);
        Py_DECREF(ga);
        if (it == NULL) {
            return -1;
        }
    }
    for (;;) {
        if (src_c) {
            if (!tc_web_hd_next_pair((hdrs *)src, &ei, &vi, &k, &v)) {
                break;
            }
        } else {
            item = PyIter_Next(it);
            if (item == NULL) {
                if (PyErr_Occurred()) {
                    goto done;
                }
                break;
            }
            if (unpack2(item, &k, &v) < 0) {
                goto done;
            }
            Py_CLEAR(item);
        }
        if (dispatch_add(h, k, v, NULL) < 0) {
            goto done;
        }
        Py_CLEAR(k);
        Py_CLEAR(v);
    }
    r = 0;
done:
    Py_XDECREF(it);
    Py_XDECREF(item);
    Py_XDECREF(k);
    Py_XDECREF(v);
    return r;
}

/* self.update(mapping) for an exact dict: for key in d: self[key] = d[key] */
static int
update_from_dict(hdrs *h, PyObject *d)
{
    Py_ssize_t pos = 0, size = PyDict_GET_SIZE(d);
    PyObject *k, *v; /* borrowed from the dict, then held */
    while (PyDict_Next(d, &pos, &k, &v)) {
        Py_INCREF(k);
        Py_INCREF(v);
        PyObject *norm = tc_web_hd_normalize(h->ws, k);
        int r = norm ? tc_web_hd_set_normalized(h, norm, v) : -1;
        Py_XDECREF(norm);
        Py_DECREF(k);
        Py_DECREF(v);
        if (r < 0) {
            return -1;
        }
        if (PyDict_GET_SIZE(d) != size) {
            PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
            return -1;
        }
    }
    return 0;
}

static int
hd_init(hdrs *self, PyObject *args, PyObject *kwds)
{
    NEED_WS(self, -1);
    tc_web_state *ws = self->ws;
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    if (Py_TYPE(self) == ws->HeadersType) {
        PyErr_SetString(PyExc_TypeError, "cannot create '_core.HTTPHeaders' instances: "
                                         "use tornado_c.httputil.HTTPHeaders");
        return -1;
    }
    Py_ssize_t nkw = kwds ? PyDict_GET_SIZE(kwds) : 0;
    tc_web_hd_clear_storage(self);
    if (nargs == 1 && nkw == 0) {
        PyObject *a = PyTuple_GET_ITEM(args, 0);
        int is = is_headers(ws, a);
        if (is < 0) {
            return -1;
        }
        if (is) {
            return copy_pairs(self, a);
        }
        if (PyDict_CheckExact(a) && EXACT(self)) {
            return update_from_dict(self, a);
        }
    } else if (nargs == 0 && nkw == 0 && EXACT(self)) {
        return 0; /* update() with nothing */
    }
    /* MutableMapping.update (or a subclass's update) with the same arguments */
    PyObject *meth = PyObject_GetAttr((PyObject *)self, ws->s_update);
    if (meth == NULL) {
        return -1;
    }
    PyObject *r = PyObject_Call(meth, args, kwds);
    Py_DECREF(meth);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

static int
hd_traverse(hdrs *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    for (Py_ssize_t i = 0; i < self->nentries; i++) {
        hentry *e = &self->entries[i];
        Py_VISIT(e->name);
        Py_VISIT(e->value);
        Py_VISIT(e->list);
        Py_VISIT(e->joined);
    }
    return 0;
}

static int
hd_clear(hdrs *self)
{
    tc_web_hd_clear_storage(self);
    return 0;
}

static void
hd_dealloc(hdrs *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    tc_web_hd_clear_storage(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* ------------------------------------------------------------ mapping protocol */

static Py_ssize_t
hd_len(hdrs *self)
{
    return self->used;
}

static PyObject *
hd_getitem(hdrs *self, PyObject *key)
{
    NEED_WS(self, NULL);
    PyObject *norm = tc_web_hd_normalize(self->ws, key), *r = NULL;
    Py_ssize_t slot, ix;
    if (norm == NULL) {
        return NULL;
    }
    Py_hash_t hash = PyObject_Hash(norm);
    if (hash != -1) {
        if ((ix = tc_web_hd_find(self, norm, hash, &slot)) < 0) {
            PyErr_SetObject(PyExc_KeyError, norm);
        } else {
            r = tc_web_hd_entry_combined(self, ix);
        }
    }
    Py_DECREF(norm);
    return r;
}

static int
hd_setitem(hdrs *self, PyObject *key, PyObject *value)
{
    NEED_WS(self, -1);
    PyObject *norm = tc_web_hd_normalize(self->ws, key);
    int r = -1;
    Py_ssize_t slot, ix;
    if (norm == NULL) {
        return -1;
    }
    if (value != NULL) {
        r = tc_web_hd_set_normalized(self, norm, value);
    } else {
        Py_hash_t hash = PyObject_Hash(norm);
        if (hash != -1) {
            if ((ix = tc_web_hd_find(self, norm, hash, &slot)) < 0) {
                PyErr_SetObject(PyExc_KeyError, norm);
            } else {
                tc_web_hd_remove_entry(self, ix, slot);
                r = 0;
            }
        }
    }
    Py_DECREF(norm);
    return r;
}

static int
hd_contains(hdrs *self, PyObject *key)
{
    NEED_WS(self, -1);
    Py_ssize_t slot;
    if (!PyUnicode_Check(key)) {
        return 0;
    }
    PyObject *norm = tc_web_hd_normalize(self->ws, key);
    if (norm == NULL) {
        return -1;
    }
    Py_hash_t hash = PyObject_Hash(norm);
    int r = hash == -1 ? -1 : tc_web_hd_find(self, norm, hash, &slot) >= 0;
    Py_DECREF(norm);
    return r;
}

static PyObject *
hd_iter(hdrs *self)
{
    NEED_WS(self, NULL);
    keyiter *it = PyObject_GC_New(keyiter, self->ws->KeyIterType);
    if (it == NULL) {
        return NULL;
    }
    it->h = (hdrs *)Py_NewRef(self);
    it->ei = 0;
    it->used = self->used;
    PyObject_GC_Track(it);
    return (PyObject *)it;
}

/* ------------------------------------------------------------ methods */

static PyObject *
hd_add(hdrs *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    NEED_WS(self, NULL);
    static const char *const names[] = {"name", "value", "_chars_are_bytes"};
    PyObject *a[3];
    int cab = 1;
    if (bind(args, nargs, kwnames, names, 2, 3, a) < 0 || a[0] == NULL || a[1] == NULL) {
        return upstream_call(self->ws, "add", (PyObject *)self, args, nargs, kwnames);
    }
    if (a[2] != NULL && (cab = PyObject_IsTrue(a[2])) < 0) {
        return NULL;
    }
    if (add_impl(self, a[0], a[1], cab) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
hd_get_list(hdrs *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    NEED_WS(self, NULL);
    static const char *const names[] = {"name"};
    PyObject *a[1];
    Py_ssize_t slot, ix;
    if (bind(args, nargs, kwnames, names, 1, 1, a) < 0 || a[0] == NULL) {
        return upstream_call(self->ws, "get_list", (PyObject *)self, args, nargs, kwnames);
    }
    PyObject *norm = tc_web_hd_normalize(self->ws, a[0]), *r = NULL;
    if (norm == NULL) {
        return NULL;
    }
    Py_hash_t hash = PyObject_Hash(norm);
    if (hash != -1) {
        if ((ix = tc_web_hd_find(self, norm, hash, &slot)) < 0) {
            r = PyList_New(0);
        } else {
            r = Py_XNewRef(tc_web_hd_entry_list(self, ix));
        }
    }
    Py_DECREF(norm);
    return r;
}

static PyObject *
hd_get_all(hdrs *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    NEED_WS(self, NULL);
    if (nargs != 0 || kwnames != NULL) {
        return upstream_call(self->ws, "get_all", (PyObject *)self, args, nargs, kwnames);
    }
    alliter *it = PyObject_GC_New(alliter, self->ws->AllIterType);
    if (it == NULL) {
        return NULL;
    }
    it->h = (hdrs *)Py_NewRef(self);
    it->name = it->vals = NULL;
    it->ei = it->k = 0;
    it->used = 0;
    it->started = 0;
    PyObject_GC_Track(it);
    return (PyObject *)it;
}

static PyObject *
hd_get(hdrs *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    NEED_WS(self, NULL);
    static const char *const names[] = {"key", "default"};
    PyObject *a[2];
    Py_ssize_t slot, ix;
    if (bind(args, nargs, kwnames, names, 2, 2, a) < 0 || a[0] == NULL) {
        return upstream_call(self->ws, "get", (PyObject *)self, args, nargs, kwnames);
    }
    PyObject *dflt = a[1] ? a[1] : Py_None, *r = NULL;
    if (!EXACT(self)) {
        /* Mapping.get: try: return self[key] except KeyError: return default */
        r = PyObject_GetItem((PyObject *)self, a[0]);
        if (r == NULL && PyErr_ExceptionMatches(PyExc_KeyError)) {
            PyErr_Clear();
            r = Py_NewRef(dflt);
        }
        return r;
    }
    PyObject *norm = tc_web_hd_normalize(self->ws, a[0]);
    if (norm == NULL) {
        return NULL;
    }
    Py_hash_t hash = PyObject_Hash(norm);
    if (hash != -1) {
        ix = tc_web_hd_find(self, norm, hash, &slot);
        r = ix < 0 ? Py_NewRef(dflt) : tc_web_hd_entry_combined(self, ix);
    }
    Py_DECREF(norm);
    return r;
}

static PyObject *
hd_parse_line(hdrs *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    NEED_WS(self, NULL);
    static const char *const names[] = {"line", "_chars_are_bytes"};
    PyObject *a[2];
    int cab = 1;
    if (bind(args, nargs, kwnames, names, 1, 2, a) < 0 || a[0] == NULL ||
        !PyUnicode_CheckExact(a[0])) {
        /* upstream's own code for anything but a str (its errors), and for
         * calls that do not fit */
        return upstream_call(self->ws, "parse_line", (PyObject *)self, args, nargs, kwnames);
    }
    if (a[1] != NULL && (cab = PyObject_IsTrue(a[1])) < 0) {
        return NULL;
    }
    if (parse_line_range(self, a[0], 0, PyUnicode_GET_LENGTH(a[0]), a[1], cab) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
hd_parse(PyObject *cls, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"headers", "_chars_are_bytes"};
    PyObject *a[2];
    int cab = 1;
    tc_web_state *ws = ws_of_type((PyTypeObject *)cls);
    if (ws == NULL || ensure_setup(ws) < 0) {
        return NULL;
    }
    if (cls != ws->Headers || bind(args, nargs, kwnames, names, 1, 2, a) < 0 ||
        a[0] == NULL || !PyUnicode_CheckExact(a[0])) {
        /* upstream's parse with this cls: cls() and its parse_line */
        Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
        PyObject **v = PyMem_Malloc((size_t)(nargs + nkw + 1) * sizeof(PyObject *));
        if (v == NULL) {
            return PyErr_NoMemory();
        }
        v[0] = cls;
        memcpy(v + 1, args, (size_t)(nargs + nkw) * sizeof(PyObject *));
        PyObject *r = PyObject_Vectorcall(ws->up_parse, v, (size_t)nargs + 1, kwnames);
        PyMem_Free(v);
        return r;
    }
    if (a[1] != NULL && (cab = PyObject_IsTrue(a[1])) < 0) {
        return NULL;
    }
    PyObject *text = a[0];
    hdrs *h = headers_alloc(ws, (PyTypeObject *)cls);
    if (h == NULL) {
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), start = 0;
    for (;;) {
        Py_ssize_t lf = start;
        while (lf < n && PyUnicode_READ(kind, data, lf) != '\n') {
            lf++;
        }
        Py_ssize_t end = lf < n ? lf + 1 : n;
        if (parse_line_range(h, text, start, end, a[1], cab) < 0) {
            Py_DECREF(h);
            return NULL;
        }
        if (lf >= n) {
            break;
        }
        start = lf + 1;
    }
    return (PyObject *)h;
}

static PyObject *
hd_copy(hdrs *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    NEED_WS(self, NULL);
    if (nargs != 0 || kwnames != NULL) {
        return upstream_call(self->ws, "copy", (PyObject *)self, args, nargs, kwnames);
    }
    PyObject *h = tc_web_headers_new(self->ws);
    if (h != NULL && copy_pairs((hdrs *)h, (PyObject *)self) < 0) {
        Py_CLEAR(h);
    }
    return h;
}

/* f"{name}: {value}\n" for each pair of get_all() */
static PyObject *
hd_str(hdrs *self)
{
    NEED_WS(self, NULL);
    tc_web_state *ws = self->ws;
    PyObject *parts = PyList_New(0), *it = NULL, *k = NULL, *v = NULL, *r = NULL;
    Py_ssize_t ei = 0, vi = 0;
    int exact = EXACT(self);
    if (parts == NULL) {
        return NULL;
    }
    if (!exact) {
        PyObject *ga = PyObject_CallMethodNoArgs((PyObject *)self, ws->s_get_all);
        if (ga == NULL) {
            goto done;
        }
        it = PyObject_GetIter(ga);
        Py_DECREF(ga);
        if (it == NULL) {
            goto done;
        }
    }
    for (;;) {
        if (exact) {
            if (!tc_web_hd_next_pair(self, &ei, &vi, &k, &v)) {
                break;
            }
        } else {
            PyObject *item = PyIter_Next(it);
            if (item == NULL) {
                if (PyErr_Occurred()) {
                    goto done;
                }
                break;
            }
            int u = unpack2(item, &k, &v);
            Py_DECREF(item);
            if (u < 0) {
                goto done;
            }
        }
        PyObject *f[4] = {PyObject_Format(k, NULL), ws->s_colon_space, NULL, ws->s_newline};
        f[2] = f[0] ? PyObject_Format(v, NULL) : NULL;
        int ok = f[2] != NULL && PyList_Append(parts, f[0]) == 0 &&
                 PyList_Append(parts, f[1]) == 0 && PyList_Append(parts, f[2]) == 0 &&
                 PyList_Append(parts, f[3]) == 0;
        Py_XDECREF(f[0]);
        Py_XDECREF(f[2]);
        Py_CLEAR(k);
        Py_CLEAR(v);
        if (!ok) {
            goto done;
        }
    }
    r = PyUnicode_Join(ws->s_empty, parts);
done:
    Py_XDECREF(k);
    Py_XDECREF(v);
    Py_XDECREF(it);
    Py_DECREF(parts);
    return r;
}

static PyObject *
hd_unicode(hdrs *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    NEED_WS(self, NULL);
    if (nargs != 0 || kwnames != NULL) {
        return upstream_call(self->ws, "__unicode__", (PyObject *)self, args, nargs, kwnames);
    }
    return PyObject_Str((PyObject *)self);
}

/* Pickling: (cls, (), state) with upstream's state, its instance __dict__:
 * {"_as_list": {name: [values]}, "_combined_cache": {name: combined}} (plus
 * any attribute set on the instance).  cls, for an exact instance, is
 * upstream's class when tornado.httputil.HTTPHeaders is still bound to it:
 * the pickle names tornado.httputil.HTTPHeaders and loads as
 * cls() + the state, upstream's object where tornado_c is off or absent, C
 * headers where the web switch is on (calling upstream's class gives them).
 * Not copyreg.__newobj__: pickle insists that its class is the object's.
 * copy.deepcopy keeps the class (tornado_c.httputil's __deepcopy__). */
static PyObject *
hd_reduce_ex(hdrs *self, PyObject *Py_UNUSED(protocol))
{
    NEED_WS(self, NULL);
    tc_web_state *ws = self->ws;
    PyObject *cls = Py_NewRef((PyObject *)Py_TYPE(self));
    PyObject *state = NULL, *as_list = NULL, *cache = NULL, *r = NULL, *d;
    if (EXACT(self) && ws->httputil_module != NULL) {
        PyObject *cur = PyObject_GetAttr(ws->httputil_module, ws->s_HTTPHeaders);
        if (cur == NULL) {
            PyErr_Clear();
        } else if (cur == ws->Headers || cur == ws->UpstreamHeaders) {
            Py_SETREF(cls, cur);
        } else {
            Py_DECREF(cur);
        }
    }
    d = PyObject_GetAttr((PyObject *)self, ws->s_dict);
    if (d == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            goto done;
        }
        PyErr_Clear();
        state = PyDict_New();
    } else {
        state = PyDict_Check(d) ? PyDict_Copy(d) : PyDict_New();
        Py_DECREF(d);
    }
    as_list = PyDict_New();
    cache = PyDict_New();
    if (state == NULL || as_list == NULL || cache == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < self->nentries; i++) {
        hentry *e = &self->entries[i];
        if (e->name == NULL) {
            continue;
        }
        /* held: the allocations below may run Python code */
        PyObject *name = Py_NewRef(e->name), *list = Py_XNewRef(e->list);
        PyObject *value = Py_XNewRef(e->value), *joined = Py_XNewRef(e->joined);
        PyObject *vals = list ? PyList_GetSlice(list, 0, PyList_GET_SIZE(list))
                              : PyList_New(1);
        PyObject *cached = list ? joined : value;
        int ok = vals != NULL;
        if (ok && !list) {
            PyList_SET_ITEM(vals, 0, Py_NewRef(value));
        }
        ok = ok && PyDict_SetItem(as_list, name, vals) == 0 &&
             (cached == NULL || PyDict_SetItem(cache, name, cached) == 0);
        Py_DECREF(name);
        Py_XDECREF(list);
        Py_XDECREF(value);
        Py_XDECREF(joined);
        Py_XDECREF(vals);
        if (!ok) {
            goto done;
        }
    }
    if (PyDict_SetItem(state, ws->s_as_list, as_list) < 0 ||
        PyDict_SetItem(state, ws->s_combined_cache, cache) < 0) {
        goto done;
    }
    r = Py_BuildValue("O()O", cls, state);
done:
    Py_DECREF(cls);
    Py_XDECREF(state);
    Py_XDECREF(as_list);
    Py_XDECREF(cache);
    return r;
}

/* The state of hd_reduce_ex or of an upstream pickle: _as_list's lists
 * become the entries' lists (shared, as upstream's __dict__.update shares
 * them), _combined_cache their cached values; other keys are attributes. */
static PyObject *
hd_setstate(hdrs *self, PyObject *state)
{
    NEED_WS(self, NULL);
    tc_web_state *ws = self->ws;
    PyObject *items = NULL, *as_list = NULL, *cache = NULL;
    if (!PyDict_Check(state)) {
        PyErr_Format(PyExc_TypeError, "HTTPHeaders state must be a dict, not %.200s",
                     Py_TYPE(state)->tp_name);
        return NULL;
    }
    items = PyDict_Items(state);
    if (items == NULL) {
        return NULL;
    }
    tc_web_hd_clear_storage(self);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *kv = PyList_GET_ITEM(items, i), *k = PyTuple_GET_ITEM(kv, 0);
        PyObject *v = PyTuple_GET_ITEM(kv, 1);
        if (PyUnicode_Check(k) && PyUnicode_Compare(k, ws->s_as_list) == 0) {
            Py_XSETREF(as_list, Py_NewRef(v));
        } else if (PyUnicode_Check(k) && PyUnicode_Compare(k, ws->s_combined_cache) == 0) {
            Py_XSETREF(cache, Py_NewRef(v));
        } else if (PyObject_SetAttr((PyObject *)self, k, v) < 0) {
            goto fail;
        }
    }
    Py_CLEAR(items);
    if (as_list == NULL) {
        Py_XDECREF(cache);
        Py_RETURN_NONE;
    }
    if (!PyDict_Check(as_list) || (cache != NULL && !PyDict_Check(cache))) {
        PyErr_SetString(PyExc_TypeError, "HTTPHeaders state: _as_list and _combined_cache "
                                         "must be dicts");
        goto fail;
    }
    items = PyDict_Items(as_list);
    if (items == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *kv = PyList_GET_ITEM(items, i), *k = PyTuple_GET_ITEM(kv, 0);
        PyObject *v = PyTuple_GET_ITEM(kv, 1), *j = NULL;
        Py_ssize_t slot;
        if (!PyUnicode_CheckExact(k) || !PyList_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "HTTPHeaders state: _as_list must map str "
                                             "names to lists");
            goto fail;
        }
        Py_hash_t hash = PyObject_Hash(k);
        if (hash == -1) {
            goto fail;
        }
        if (cache != NULL && (j = PyDict_GetItemWithError(cache, k)) == NULL &&
            PyErr_Occurred()) {
            goto fail;
        }
        if (tc_web_hd_find(self, k, hash, &slot) >= 0) {
            continue; /* cannot happen: they were dict keys */
        }
        if (tc_web_hd_append_entry(self, k, hash, NULL, v, j) < 0) {
            goto fail;
        }
    }
    Py_DECREF(items);
    Py_DECREF(as_list);
    Py_XDECREF(cache);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(items);
    Py_XDECREF(as_list);
    Py_XDECREF(cache);
    return NULL;
}

#define FN(f) ((PyCFunction)(void (*)(void))(f))
#define FK (METH_FASTCALL | METH_KEYWORDS)

static PyMethodDef hd_methods[] = {
    {"add", FN(hd_add), FK, "Adds a new value for the given header name."},
    {"get_list", FN(hd_get_list), FK, "All values of the given header, as a list."},
    {"get_all", FN(hd_get_all), FK,
     "An iterator of every (name, value) pair; a name with several values\n"
     "comes once per value."},
    {"parse_line", FN(hd_parse_line), FK, "Adds the header of one 'Name: value' line."},
    {"parse", FN(hd_parse), FK | METH_CLASS, "New headers from HTTP header text."},
    {"copy", FN(hd_copy), FK, "A copy of these headers (values re-checked as add() does)."},
    {"__copy__", FN(hd_copy), FK, NULL},
    {"get", FN(hd_get), FK, "D.get(k[,d]) -> D[k] if k in D, else d.  d defaults to None."},
    {"__unicode__", FN(hd_unicode), FK, NULL},
    {"__reduce_ex__", FN(hd_reduce_ex), METH_O, NULL},
    {"__setstate__", FN(hd_setstate), METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot hd_slots[] = {
    {Py_tp_doc, "C base of tornado_c.httputil.HTTPHeaders (not instantiable itself)."},
    {Py_tp_init, hd_init},
    {Py_tp_dealloc, hd_dealloc},
    {Py_tp_traverse, hd_traverse},
    {Py_tp_clear, hd_clear},
    {Py_tp_iter, hd_iter},
    {Py_tp_str, hd_str},
    {Py_tp_methods, hd_methods},
    {Py_mp_length, hd_len},
    {Py_mp_subscript, hd_getitem},
    {Py_mp_ass_subscript, hd_setitem},
    {Py_sq_contains, hd_contains},
    {0, NULL},
};

static PyType_Spec hd_spec = {
    .name = "tornado_c._core.HTTPHeaders",
    .basicsize = sizeof(hdrs),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = hd_slots,
};

/* ------------------------------------------------------------ iterators */

static int
keyiter_traverse(keyiter *it, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(it));
    Py_VISIT(it->h);
    return 0;
}

static int
keyiter_clear(keyiter *it)
{
    Py_CLEAR(it->h);
    return 0;
}

static void
keyiter_dealloc(keyiter *it)
{
    PyTypeObject *tp = Py_TYPE(it);
    PyObject_GC_UnTrack(it);
    keyiter_clear(it);
    PyObject_GC_Del(it);
    Py_DECREF(tp);
}

/* as iter(dict): RuntimeError once the size changed */
static PyObject *
keyiter_next(keyiter *it)
{
    hdrs *h = it->h;
    if (h == NULL) {
        return NULL;
    }
    if (it->used != h->used) {
        PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
        it->used = -1; /* keeps failing, as a dict iterator does */
        return NULL;
    }
    while (it->ei < h->nentries) {
        PyObject *name = h->entries[it->ei++].name;
        if (name != NULL) {
            return Py_NewRef(name);
        }
    }
    Py_CLEAR(it->h);
    return NULL;
}

static PyType_Slot keyiter_slots[] = {
    {Py_tp_dealloc, keyiter_dealloc},
    {Py_tp_traverse, keyiter_traverse},
    {Py_tp_clear, keyiter_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, keyiter_next},
    {0, NULL},
};

static PyType_Spec keyiter_spec = {
    .name = "tornado_c._core.HTTPHeadersKeyIterator",
    .basicsize = sizeof(keyiter),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = keyiter_slots,
};

static int
alliter_traverse(alliter *it, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(it));
    Py_VISIT(it->h);
    Py_VISIT(it->name);
    Py_VISIT(it->vals);
    return 0;
}

static int
alliter_clear(alliter *it)
{
    Py_CLEAR(it->h);
    Py_CLEAR(it->name);
    Py_CLEAR(it->vals);
    return 0;
}

static void
alliter_dealloc(alliter *it)
{
    PyTypeObject *tp = Py_TYPE(it);
    PyObject_GC_UnTrack(it);
    alliter_clear(it);
    PyObject_GC_Del(it);
    Py_DECREF(tp);
}

/* upstream's generator:
 *     for name, values in self._as_list.items():
 *         for value in values:
 *             yield (name, value)
 * the dict iteration starts at the first next() and fails once the number
 * of names changed; each name's list is taken when its turn comes (and
 * iterated live, as a list iterator does). */
static PyObject *
alliter_next(alliter *it)
{
    hdrs *h = it->h;
    if (h == NULL) {
        return NULL;
    }
    if (!it->started) {
        it->started = 1;
        it->used = h->used;
    }
    for (;;) {
        if (it->vals != NULL) {
            if (it->k < PyList_GET_SIZE(it->vals)) {
                PyObject *v = Py_NewRef(PyList_GET_ITEM(it->vals, it->k));
                it->k++;
                PyObject *pair = PyTuple_Pack(2, it->name, v);
                Py_DECREF(v);
                return pair;
            }
            Py_CLEAR(it->vals);
            Py_CLEAR(it->name);
        }
        if (it->used != h->used) {
            PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
            alliter_clear(it);
            return NULL;
        }
        while (it->ei < h->nentries && h->entries[it->ei].name == NULL) {
            it->ei++;
        }
        if (it->ei >= h->nentries) {
            alliter_clear(it);
            return NULL;
        }
        Py_ssize_t ix = it->ei++;
        PyObject *name = Py_NewRef(h->entries[ix].name);
        PyObject *list = tc_web_hd_entry_list(h, ix); /* borrowed */
        if (list == NULL) {
            Py_DECREF(name);
            alliter_clear(it);
            return NULL;
        }
        it->name = name;
        it->vals = Py_NewRef(list);
        it->k = 0;
    }
}

static PyType_Slot alliter_slots[] = {
    {Py_tp_dealloc, alliter_dealloc},
    {Py_tp_traverse, alliter_traverse},
    {Py_tp_clear, alliter_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, alliter_next},
    {0, NULL},
};

static PyType_Spec alliter_spec = {
    .name = "tornado_c._core.HTTPHeadersAllIterator",
    .basicsize = sizeof(alliter),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = alliter_slots,
};


int
tc_web_headers_exec(PyObject *module, struct tc_state *st)
{
    tc_web_state *ws = st->web;
    if (tc_add_type(module, &hd_spec, NULL, &ws->HeadersType) < 0) {
        return -1;
    }
    ws->KeyIterType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &keyiter_spec, NULL);
    if (ws->KeyIterType == NULL) {
        return -1;
    }
    ws->AllIterType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &alliter_spec, NULL);
    if (ws->AllIterType == NULL) {
        return -1;
    }
    return 0;
}
