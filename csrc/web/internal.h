/* Private header of the C HTTPHeaders: the instance layout and the storage
 * its two files share.  Only csrc/web/ includes it; other components use
 * web.h.
 *
 *   headers_store.c  what holds the pairs and checks them: upstream's
 *                    character classes (_ABNF field-name / field-value, the
 *                    forbidden characters), name normalization, the entry
 *                    array and its index, and the contract the C server
 *                    uses to fill and read headers from the parser's spans
 *                    (tc_web_headers_append_parsed / tc_web_headers_next).
 *   headers.c        the Python type _core.HTTPHeaders over that storage:
 *                    construction, the mapping protocol, upstream's methods
 *                    (add, get_list, get_all, parse_line, parse, copy,
 *                    __str__, pickling), its iterators and the exec.
 *
 * The storage functions below are TC_INTERNAL (common.h).  None of them
 * keeps a pointer into the entry array across a call that may run Python
 * code (see the re-entrancy note at the top of headers.c).
 */
#ifndef TC_WEB_INTERNAL_H
#define TC_WEB_INTERNAL_H

#include "common.h"
#include "state.h"
#include "web/web.h"

#include <stdint.h>

#define SMALL 8        /* up to this many entry slots: no index, a scan */
#define IX_EMPTY (-1)
#define IX_DUMMY (-2)
#define MAX_ENTRIES ((Py_ssize_t)(INT32_MAX / 4))

typedef struct {
    PyObject *name;   /* strong: the normalized name (an exact str); NULL: a hole */
    Py_hash_t hash;   /* hash(name) */
    PyObject *value;  /* strong: the only value while list is NULL, else NULL */
    PyObject *list;   /* strong: upstream's _as_list[name] once there is more than
                       * one value or get_list() handed it out; else NULL */
    PyObject *joined; /* strong or NULL: upstream's _combined_cache[name] while list
                       * is set (with list NULL the cached value is value itself) */
} hentry;

typedef struct {
    PyObject_HEAD
    tc_web_state *ws;     /* borrowed: instances keep their type, which keeps the module */
    hentry *entries;      /* PyMem: slots [0, nentries) in order, holes where name is NULL */
    int32_t *index;       /* PyMem: index_mask + 1 slots holding an entry number,
                           * IX_EMPTY or IX_DUMMY; NULL while capacity <= SMALL */
    Py_ssize_t nentries;  /* slots in use, holes included */
    Py_ssize_t capacity;  /* slots allocated */
    Py_ssize_t used;      /* live entries: len(headers) */
    size_t index_mask;
} hdrs;

/* ---- headers_store.c: character classes and names (s[b:e] of a str's
 * kind/data) */

/* _ABNF.field_name.fullmatch(s[b:e]) */
TC_INTERNAL int tc_web_hd_token_ok(int kind, const void *data, Py_ssize_t b, Py_ssize_t e);
/* _ABNF.field_value.fullmatch(s[b:e]) */
TC_INTERNAL int tc_web_hd_value_ok(int kind, const void *data, Py_ssize_t b, Py_ssize_t e);
/* not _FORBIDDEN_HEADER_CHARS_RE.search(s[b:e]) */
TC_INTERNAL int tc_web_hd_value_ok_unicode(int kind, const void *data, Py_ssize_t b,
                                           Py_ssize_t e);
/* New references: the normalized form of ASCII s[b:e]; _normalize_header(name). */
TC_INTERNAL PyObject *tc_web_hd_normalize_range(PyObject *s, Py_ssize_t b, Py_ssize_t e);
TC_INTERNAL PyObject *tc_web_hd_normalize(tc_web_state *ws, PyObject *name);

/* ---- headers_store.c: the entries (names already normalized) */

/* The entry number of `name`, or -1; *slot its index slot (-1: no index). */
TC_INTERNAL Py_ssize_t tc_web_hd_find(hdrs *h, PyObject *name, Py_hash_t hash,
                                      Py_ssize_t *slot);
/* References taken (name, value or list, joined or NULL); -1: MemoryError. */
TC_INTERNAL int tc_web_hd_append_entry(hdrs *h, PyObject *name, Py_hash_t hash,
                                       PyObject *value, PyObject *list, PyObject *joined);
TC_INTERNAL void tc_web_hd_remove_entry(hdrs *h, Py_ssize_t ix, Py_ssize_t slot);
TC_INTERNAL void tc_web_hd_clear_storage(hdrs *h);
/* __setitem__ and add() of a checked, normalized name; 0 or -1. */
TC_INTERNAL int tc_web_hd_set_normalized(hdrs *h, PyObject *name, PyObject *value);
TC_INTERNAL int tc_web_hd_add_normalized(hdrs *h, PyObject *name, PyObject *value);
/* New references: entry ix's live list of values (made on demand), and
 * upstream's __getitem__ of it; NULL with an exception set. */
TC_INTERNAL PyObject *tc_web_hd_entry_list(hdrs *h, Py_ssize_t ix);
TC_INTERNAL PyObject *tc_web_hd_entry_combined(hdrs *h, Py_ssize_t ix);
/* The next (name, value) from slot *ei, value *k: new references and 1, or
 * 0 at the end. */
TC_INTERNAL int tc_web_hd_next_pair(hdrs *h, Py_ssize_t *ei, Py_ssize_t *k, PyObject **name,
                                    PyObject **value);

#endif /* TC_WEB_INTERNAL_H */
