/* The web component's part for tornado.gen: the @gen.coroutine wrapper and
 * its Runner in C (gen.c; the design and the differences from upstream are
 * at the top of gen.c).  Included by web.h: its state is a member of
 * tc_web_state; nothing in it is for other components.
 */
#ifndef TC_WEB_GEN_H
#define TC_WEB_GEN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct tc_web_gen_state {
    PyTypeObject *CoroutineType;   /* _core._GenCoroutine, the wrapper */
    PyTypeObject *RunnerType;      /* _core._GenRunner */
    /* set by _gen_setup (tornado_c/gen.py); all strong, NULL before it */
    PyObject *Future;              /* tornado.concurrent.Future (asyncio.Future) */
    PyObject *Generator;           /* collections.abc.Generator */
    PyObject *Return;              /* tornado.gen.Return */
    PyObject *BadYieldError;       /* tornado.gen.BadYieldError */
    PyObject *CancelledError;      /* asyncio.CancelledError */
    PyObject *moment;              /* tornado.gen.moment */
    PyObject *null_future;         /* tornado.gen._null_future */
    PyObject *gen_globals;         /* tornado.gen's module dict */
    PyObject *convert_yielded;     /* upstream's singledispatch convert_yielded */
    PyObject *cy_registry;         /* its .registry (a mappingproxy) */
    PyObject *value_from_stop;     /* tornado.gen._value_from_stopiteration */
    PyObject *set_exc;             /* tornado.concurrent.future_set_exception_unless_cancelled */
    PyObject *IOLoop;              /* tornado.ioloop.IOLoop */
    /* interned names, made in exec */
    PyObject *s_done, *s_result, *s_send, *s_throw, *s_cancel, *s_cancelled,
        *s_set_result, *s_add_done_callback, *s_add_future, *s_add_callback,
        *s_current, *s_convert_yielded;
} tc_web_gen_state;

#endif /* TC_WEB_GEN_H */
