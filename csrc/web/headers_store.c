/* web component: the storage of the C HTTPHeaders (see web/internal.h).
 *
 * Upstream's character classes and _normalize_header for ASCII names, the
 * array of entries in upstream's dict order with its open-addressing index
 * (web.h describes the layout), and the two contract functions through
 * which the C HTTP server fills request headers from the parser's spans and
 * reads response headers back.  The Python type over it is headers.c.
 */
#include "web/internal.h"

#include <string.h>

/* ------------------------------------------------------------ character classes */

/* RFC 9110 tchar */
static int
is_tchar(Py_UCS4 c)
{
    if (c >= 128) {
        return 0;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return 1;
    }
    return c != 0 && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL;
}

/* upstream's _ABNF.field_vchar: VCHAR or obs-text */
static inline int
is_field_vchar(Py_UCS4 c)
{
    return (c >= 0x21 && c <= 0x7E) || (c >= 0x80 && c <= 0xFF);
}

/* _FORBIDDEN_HEADER_CHARS_RE: controls other than HT, and DEL */
static inline int
is_forbidden(Py_UCS4 c)
{
    return (c <= 0x1F && c != 0x09) || c == 0x7F;
}

/* _ABNF.field_name.fullmatch(s[b:e]) */
int
tc_web_hd_token_ok(int kind, const void *data, Py_ssize_t b, Py_ssize_t e)
{
    if (b >= e) {
        return 0;
    }
    for (Py_ssize_t i = b; i < e; i++) {
        if (!is_tchar(PyUnicode_READ(kind, data, i))) {
            return 0;
        }
    }
    return 1;
}

/* _ABNF.field_value.fullmatch(s[b:e]): empty, or field-vchars with spaces and
 * tabs only between them */
int
tc_web_hd_value_ok(int kind, const void *data, Py_ssize_t b, Py_ssize_t e)
{
    if (b >= e) {
        return 1;
    }
    if (!is_field_vchar(PyUnicode_READ(kind, data, b)) ||
        !is_field_vchar(PyUnicode_READ(kind, data, e - 1))) {
        return 0;
    }
    for (Py_ssize_t i = b + 1; i < e - 1; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (!is_field_vchar(c) && c != ' ' && c != '\t') {
            return 0;
        }
    }
    return 1;
}

/* not _FORBIDDEN_HEADER_CHARS_RE.search(s[b:e]) */
int
tc_web_hd_value_ok_unicode(int kind, const void *data, Py_ssize_t b, Py_ssize_t e)
{
    for (Py_ssize_t i = b; i < e; i++) {
        if (is_forbidden(PyUnicode_READ(kind, data, i))) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------ names */

/* Http-Header-Case of ASCII s[b:e] (any kind) into dst: upstream's
 * "-".join(w.capitalize() for w in name.split("-")), which for ASCII upper-
 * cases the first character of each dash-separated word and lower-cases the
 * rest. */
static void
normalize_into(int kind, const void *data, Py_ssize_t b, Py_ssize_t e, Py_UCS1 *dst)
{
    int first = 1;
    for (Py_ssize_t i = b; i < e; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '-') {
            first = 1;
        } else if (first) {
            if (c >= 'a' && c <= 'z') {
                c -= 32;
            }
            first = 0;
        } else if (c >= 'A' && c <= 'Z') {
            c += 32;
        }
        *dst++ = (Py_UCS1)c;
    }
}

/* 1 if ASCII s[0:n) is already in Http-Header-Case. */
static int
is_normal(const Py_UCS1 *s, Py_ssize_t n)
{
    int first = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS1 c = s[i];
        if (c == '-') {
            first = 1;
        } else if (first) {
            if (c >= 'a' && c <= 'z') {
                return 0;
            }
            first = 0;
        } else if (c >= 'A' && c <= 'Z') {
            return 0;
        }
    }
    return 1;
}

/* New reference: the normalized form of ASCII line[b:e] (an exact str). */
PyObject *
tc_web_hd_normalize_range(PyObject *s, Py_ssize_t b, Py_ssize_t e)
{
    if (b == 0 && e == PyUnicode_GET_LENGTH(s) && PyUnicode_CheckExact(s) &&
        PyUnicode_IS_ASCII(s) && is_normal(PyUnicode_1BYTE_DATA(s), e)) {
        return Py_NewRef(s);
    }
    PyObject *r = PyUnicode_New(e - b, 127);
    if (r == NULL) {
        return NULL;
    }
    normalize_into(PyUnicode_KIND(s), PyUnicode_DATA(s), b, e, PyUnicode_1BYTE_DATA(r));
    return r;
}

/* New reference: _normalize_header(name).  An exact ASCII str is done here;
 * anything else goes to upstream's function (str.capitalize's Unicode rules,
 * and its errors for what is not a str). */
PyObject *
tc_web_hd_normalize(tc_web_state *ws, PyObject *name)
{
    if (PyUnicode_CheckExact(name) && PyUnicode_IS_ASCII(name)) {
        return tc_web_hd_normalize_range(name, 0, PyUnicode_GET_LENGTH(name));
    }
    PyObject *r = PyObject_CallOneArg(ws->normalize, name);
    if (r != NULL && !PyUnicode_CheckExact(r)) {
        PyErr_Format(PyExc_TypeError, "_normalize_header() returned %.200s, not str",
                     Py_TYPE(r)->tp_name);
        Py_CLEAR(r);
    }
    return r;
}

static inline int
str_eq(PyObject *a, PyObject *b)
{
    if (a == b) {
        return 1;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(a);
    int kind = PyUnicode_KIND(a);
    return n == PyUnicode_GET_LENGTH(b) && kind == (int)PyUnicode_KIND(b) &&
           memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n * (size_t)kind) == 0;
}

/* ------------------------------------------------------------ storage */

/* The entry number of normalized `name`, or -1.  *slot: its index slot (-1
 * while there is no index). */
Py_ssize_t
tc_web_hd_find(hdrs *h, PyObject *name, Py_hash_t hash, Py_ssize_t *slot)
{
    *slot = -1;
    if (h->index == NULL) {
        for (Py_ssize_t i = 0; i < h->nentries; i++) {
            hentry *e = &h->entries[i];
            if (e->name != NULL && e->hash == hash && str_eq(e->name, name)) {
                return i;
            }
        }
        return -1;
    }
    size_t mask = h->index_mask, perturb = (size_t)hash, i = (size_t)hash & mask;
    for (;;) {
        int32_t ix = h->index[i];
        if (ix == IX_EMPTY) {
            return -1;
        }
        if (ix >= 0) {
            hentry *e = &h->entries[ix];
            if (e->hash == hash && str_eq(e->name, name)) {
                *slot = (Py_ssize_t)i;
                return ix;
            }
        }
        perturb >>= 5;
        i = (i * 5 + perturb + 1) & mask;
    }
}

static void
index_insert(hdrs *h, Py_hash_t hash, Py_ssize_t ix)
{
    size_t mask = h->index_mask, perturb = (size_t)hash, i = (size_t)hash & mask;
    while (h->index[i] >= 0) {
        perturb >>= 5;
        i = (i * 5 + perturb + 1) & mask;
    }
    h->index[i] = (int32_t)ix;
}

/* Compact the live entries into a new array of `cap` slots and rebuild the
 * index.  PyMem only: runs no Python code.  0, or -1 with MemoryError. */
static int
rebuild(hdrs *h, Py_ssize_t cap)
{
    hentry *ents = PyMem_Malloc((size_t)cap * sizeof(hentry));
    int32_t *index = NULL;
    size_t size = 0;
    if (ents == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (cap > SMALL) {
        size = 16;
        while (size < (size_t)cap + (size_t)cap / 2) {
            size <<= 1;
        }
        index = PyMem_Malloc(size * sizeof(int32_t));
        if (index == NULL) {
            PyMem_Free(ents);
            PyErr_NoMemory();
            return -1;
        }
        memset(index, 0xff, size * sizeof(int32_t)); /* IX_EMPTY */
    }
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < h->nentries; i++) {
        if (h->entries[i].name != NULL) {
            ents[n++] = h->entries[i];
        }
    }
    PyMem_Free(h->entries);
    PyMem_Free(h->index);
    h->entries = ents;
    h->index = index;
    h->index_mask = size ? size - 1 : 0;
    h->capacity = cap;
    h->nentries = n;
    if (index != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            index_insert(h, ents[i].hash, i);
        }
    }
    return 0;
}

/* A new entry (references taken: name and value or list, joined may be
 * NULL).  PyMem only.  0, or -1 with MemoryError. */
int
tc_web_hd_append_entry(hdrs *h, PyObject *name, Py_hash_t hash, PyObject *value, PyObject *list,
             PyObject *joined)
{
    if (h->nentries == h->capacity) {
        Py_ssize_t cap = h->used * 2 > SMALL ? h->used * 2 : SMALL;
        if (cap > MAX_ENTRIES) {
            PyErr_NoMemory();
            return -1;
        }
        if (rebuild(h, cap) < 0) {
            return -1;
        }
    }
    Py_ssize_t ix = h->nentries++;
    hentry *e = &h->entries[ix];
    e->name = Py_NewRef(name);
    e->hash = hash;
    e->value = Py_XNewRef(value);
    e->list = Py_XNewRef(list);
    e->joined = Py_XNewRef(joined);
    if (h->index != NULL) {
        index_insert(h, hash, ix);
    }
    h->used++;
    return 0;
}

void
tc_web_hd_remove_entry(hdrs *h, Py_ssize_t ix, Py_ssize_t slot)
{
    hentry *e = &h->entries[ix];
    PyObject *name = e->name, *value = e->value, *list = e->list, *joined = e->joined;
    e->name = e->value = e->list = e->joined = NULL;
    if (slot >= 0) {
        h->index[slot] = IX_DUMMY;
    }
    h->used--;
    while (h->nentries > 0 && h->entries[h->nentries - 1].name == NULL) {
        h->nentries--; /* a trailing hole is free again (no index slot names it) */
    }
    Py_DECREF(name);
    Py_XDECREF(value);
    Py_XDECREF(list);
    Py_XDECREF(joined);
}

/* Empty the headers; the old storage's references are dropped last. */
void
tc_web_hd_clear_storage(hdrs *h)
{
    hentry *ents = h->entries;
    Py_ssize_t n = h->nentries;
    PyMem_Free(h->index);
    h->entries = NULL;
    h->index = NULL;
    h->nentries = h->capacity = h->used = 0;
    h->index_mask = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(ents[i].name);
        Py_XDECREF(ents[i].value);
        Py_XDECREF(ents[i].list);
        Py_XDECREF(ents[i].joined);
    }
    PyMem_Free(ents);
}

/* __setitem__ on the entry of normalized `name`: its values become [value]. */
int
tc_web_hd_set_normalized(hdrs *h, PyObject *name, PyObject *value)
{
    Py_hash_t hash = PyObject_Hash(name);
    Py_ssize_t slot;
    if (hash == -1) {
        return -1;
    }
    Py_ssize_t ix = tc_web_hd_find(h, name, hash, &slot);
    if (ix < 0) {
        return tc_web_hd_append_entry(h, name, hash, value, NULL, NULL);
    }
    hentry *e = &h->entries[ix];
    PyObject *ov = e->value, *ol = e->list, *oj = e->joined;
    e->value = Py_NewRef(value);
    e->list = e->joined = NULL;
    Py_XDECREF(ov);
    Py_XDECREF(ol);
    Py_XDECREF(oj);
    return 0;
}

/* add() once the name is checked and normalized: one more value for an
 * existing name (its cached combined value dropped), else a new entry. */
int
tc_web_hd_add_normalized(hdrs *h, PyObject *name, PyObject *value)
{
    Py_hash_t hash = PyObject_Hash(name);
    PyObject *newlist = NULL;
    Py_ssize_t slot;
    if (hash == -1) {
        return -1;
    }
    for (;;) {
        Py_ssize_t ix = tc_web_hd_find(h, name, hash, &slot);
        if (ix < 0) {
            Py_XDECREF(newlist);
            return tc_web_hd_append_entry(h, name, hash, value, NULL, NULL);
        }
        hentry *e = &h->entries[ix];
        if (e->list != NULL) {
            PyObject *oj = e->joined;
            e->joined = NULL;
            int r = PyList_Append(e->list, value); /* PyMem only */
            Py_XDECREF(newlist);
            Py_XDECREF(oj);
            return r;
        }
        if (newlist == NULL) {
            newlist = PyList_New(2); /* may run the GC: find the entry again */
            if (newlist == NULL) {
                return -1;
            }
            continue;
        }
        PyList_SET_ITEM(newlist, 0, e->value); /* the entry's reference moves */
        PyList_SET_ITEM(newlist, 1, Py_NewRef(value));
        e->value = NULL;
        e->list = newlist;
        return 0;
    }
}

/* Borrowed: the list of values of entry ix, made (and kept) if the entry
 * had a single value; that value stays its cached combined value, as
 * upstream's cache holds it.  NULL with an exception set; the entry may
 * have changed meanwhile (the caller checks). */
PyObject *
tc_web_hd_entry_list(hdrs *h, Py_ssize_t ix)
{
    if (h->entries[ix].list != NULL) {
        return h->entries[ix].list;
    }
    PyObject *l = PyList_New(1); /* may run the GC */
    if (l == NULL) {
        return NULL;
    }
    if (ix >= h->nentries || h->entries[ix].name == NULL) {
        Py_DECREF(l);
        PyErr_SetString(PyExc_RuntimeError, "HTTPHeaders changed during the operation");
        return NULL;
    }
    hentry *e = &h->entries[ix];
    if (e->list != NULL) {
        Py_DECREF(l);
        return e->list;
    }
    e->joined = Py_NewRef(e->value);
    PyList_SET_ITEM(l, 0, e->value); /* the entry's reference moves */
    e->value = NULL;
    e->list = l;
    return l;
}

/* New reference: upstream's __getitem__ of entry ix. */
PyObject *
tc_web_hd_entry_combined(hdrs *h, Py_ssize_t ix)
{
    hentry *e = &h->entries[ix];
    if (e->list == NULL) {
        return Py_NewRef(e->value);
    }
    if (e->joined != NULL) {
        return Py_NewRef(e->joined);
    }
    PyObject *list = Py_NewRef(e->list);
    /* str.join: no Python code runs, and no GC-tracked object is made */
    PyObject *j = PyUnicode_Join(h->ws->s_comma, list);
    if (j != NULL && ix < h->nentries && h->entries[ix].list == list &&
        h->entries[ix].joined == NULL) {
        h->entries[ix].joined = Py_NewRef(j);
    }
    Py_DECREF(list);
    return j;
}

/* The next pair from entry slot *ei, value index *k (new references), 1; 0
 * at the end.  Reads the storage afresh each time, so Python code may run
 * between calls. */
int
tc_web_hd_next_pair(hdrs *h, Py_ssize_t *ei, Py_ssize_t *k, PyObject **name, PyObject **value)
{
    while (*ei < h->nentries) {
        hentry *e = &h->entries[*ei];
        if (e->name != NULL) {
            if (e->list != NULL) {
                if (*k < PyList_GET_SIZE(e->list)) {
                    *name = Py_NewRef(e->name);
                    *value = Py_NewRef(PyList_GET_ITEM(e->list, *k));
                    (*k)++;
                    return 1;
                }
            } else if (*k == 0) {
                *name = Py_NewRef(e->name);
                *value = Py_NewRef(e->value);
                *k = 1;
                return 1;
            }
        }
        (*ei)++;
        *k = 0;
    }
    return 0;
}

/* ------------------------------------------------------------ contract */

int
tc_web_headers_append_parsed(PyObject *o, const char *name, size_t nlen, const char *value,
                             size_t vlen)
{
    hdrs *h = (hdrs *)o;
    PyObject *norm = NULL, *v = NULL;
    int ascii = 1;
    for (size_t i = 0; i < nlen; i++) {
        ascii &= (unsigned char)name[i] < 128;
    }
    if (ascii) {
        norm = PyUnicode_New((Py_ssize_t)nlen, 127);
        if (norm != NULL) {
            normalize_into(PyUnicode_1BYTE_KIND, name, 0, (Py_ssize_t)nlen,
                           PyUnicode_1BYTE_DATA(norm));
        }
    } else { /* not a token: the parser never gives one; still upstream's result */
        PyObject *raw = PyUnicode_DecodeLatin1(name, (Py_ssize_t)nlen, NULL);
        norm = raw ? tc_web_hd_normalize(h->ws, raw) : NULL;
        Py_XDECREF(raw);
    }
    v = norm ? PyUnicode_DecodeLatin1(value, (Py_ssize_t)vlen, NULL) : NULL;
    int r = v ? tc_web_hd_add_normalized(h, norm, v) : -1;
    Py_XDECREF(norm);
    Py_XDECREF(v);
    return r;
}

int
tc_web_headers_next(PyObject *o, tc_web_pos *pos, PyObject **name, PyObject **value)
{
    hdrs *h = (hdrs *)o;
    while (pos->entry < h->nentries) {
        hentry *e = &h->entries[pos->entry];
        if (e->name != NULL) {
            if (e->list != NULL) {
                if (pos->k < PyList_GET_SIZE(e->list)) {
                    *name = e->name;
                    *value = PyList_GET_ITEM(e->list, pos->k);
                    pos->k++;
                    return 1;
                }
            } else if (pos->k == 0) {
                *name = e->name;
                *value = e->value;
                pos->k = 1;
                return 1;
            }
        }
        pos->entry++;
        pos->k = 0;
    }
    return 0;
}
