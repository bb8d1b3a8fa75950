/* http component contract (see DEVELOPERS notes in the README).
 * Other components include only this header.
 */
#ifndef TC_HTTP_H
#define TC_HTTP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

struct tc_state;

typedef struct tc_http_state {
    int unused_; /* filled in as the component grows */
} tc_http_state;

int tc_http_exec(PyObject *module, struct tc_state *st);
int tc_http_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_http_clear(struct tc_state *st);

#endif /* TC_HTTP_H */
