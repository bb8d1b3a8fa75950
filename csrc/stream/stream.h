/* stream component contract (see DEVELOPERS notes in the README).
 * Other components include only this header.
 */
#ifndef TC_STREAM_H
#define TC_STREAM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

struct tc_state;

typedef struct tc_stream_state {
    int unused_; /* filled in as the component grows */
} tc_stream_state;

int tc_stream_exec(PyObject *module, struct tc_state *st);
int tc_stream_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_stream_clear(struct tc_state *st);

#endif /* TC_STREAM_H */
