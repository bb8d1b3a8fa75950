/* Helpers every component may use: type registration, imports, finding the
 * module state from a type.
 *
 * This unit depends on nothing of ours (it includes Python.h only), so any
 * file can include it without pulling in another component's contract.  The
 * module state itself is declared in state.h; here it is only named
 * (struct tc_state).  Future helpers are not here: they need the loop (to
 * report errors to its exception handler), so they are part of the loop's
 * contract (loop/loop.h).
 */
#ifndef TC_COMMON_H
#define TC_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

struct tc_state;

/* Functions that only the files of one component share (declared in its
 * private header: loop/internal.h, loop/transport.h, stream/internal.h,
 * http/internal.h) are declared TC_INTERNAL: hidden from the extension's
 * dynamic symbol table, so a call from another file of the component is a
 * direct call (no PLT jump) and the compiler may still inline one in its
 * own file, as when it was static there.  (loop/uvio.h, which includes
 * nothing of ours, does the same with TC_UVIO_API.) */
#define TC_INTERNAL __attribute__((visibility("hidden")))

/* Borrowed: the state of the module object `module`. */
static inline struct tc_state *
tc_get_state(PyObject *module)
{
    return (struct tc_state *)PyModule_GetState(module);
}

/* Borrowed: the state of the module that defined `type` (a heap type of
 * ours), or NULL with an exception set. */
struct tc_state *tc_state_from_type(PyTypeObject *type);

/* Borrowed: the state for `type`, a heap type of ours or a Python subclass of
 * one (the first type along tp_base that our module defined).  NULL with
 * TypeError("not a subclass of <what>") if there is none. */
struct tc_state *tc_state_from_subtype(PyTypeObject *type, const char *what);

/* Borrowed: the module object behind tc_state_from_subtype()'s state (same
 * lookup, same error).  An object that keeps a pointer into the state past
 * the point where its type could let go of the module (a garbage collection
 * at interpreter exit clears the heap types' module references before it
 * deallocates the objects of the same cycle) holds a strong reference to it. */
PyObject *tc_module_from_subtype(PyTypeObject *type, const char *what);

/* New reference to `mod`.`attr` (imports the module), or NULL with an
 * exception set. */
PyObject *tc_import_attr(const char *mod, const char *attr);

/* Add a heap type built from `spec` (and `base`, borrowed, may be NULL) to
 * `module` under the last dotted part of spec->name; store a new reference
 * in *out (the caller's module state owns it).  0, or -1 with an exception
 * set (*out untouched). */
int tc_add_type(PyObject *module, PyType_Spec *spec, PyObject *base,
                PyTypeObject **out);

/* Interned strings a component keeps in its state, listed once: a table of
 * {offsetof(state struct, field), text} ending with {0, NULL}.  The
 * component's exec interns them all (tc_intern_all: 0, or -1 with an
 * exception set) and its clear drops them all (tc_clear_all); the fields are
 * PyObject * (strong).  TC_INTERN_NAME(type, field, text) writes one row. */
typedef struct tc_intern_spec {
    size_t offset;
    const char *text;
} tc_intern_spec;

#define TC_INTERN_NAME(type, field, text) {offsetof(type, field), (text)}

int tc_intern_all(void *state, const tc_intern_spec *specs);
void tc_clear_all(void *state, const tc_intern_spec *specs);

#endif /* TC_COMMON_H */
