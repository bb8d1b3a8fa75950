/* stream component: IOStream on libuv streams (lands with the IOStream issue). */
#include "state.h"

int
tc_stream_exec(PyObject *module, struct tc_state *st)
{
    (void)module;
    (void)st;
    return 0;
}

int
tc_stream_traverse(struct tc_state *st, visitproc visit, void *arg)
{
    (void)st;
    (void)visit;
    (void)arg;
    return 0;
}

void
tc_stream_clear(struct tc_state *st)
{
    (void)st;
}
