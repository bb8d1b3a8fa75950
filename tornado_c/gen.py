"""tornado_c.gen: the public names of ``tornado.gen``, with ``coroutine`` in C.

``coroutine`` is the C wrapper and runner (csrc/web/gen.c): same semantics
as upstream's (synchronous first step, Return/StopIteration values,
exceptions, ``moment``, lists/dicts through ``multi``, other yielded values
through ``tornado.gen.convert_yielded`` as it is at the time, each step in
the contextvars context copied when the coroutine is called).  Every other
name is upstream's object itself.

While the ``web`` component is on, ``tornado.gen.coroutine`` is this
function (tornado_c/_switch.py patches it when tornado.gen is imported),
so functions decorated afterwards -- application modules imported after
``tornado_c.install()``, ``tornado.testing.gen_test``, tornado.locks and
tornado.queues (which decorate at call time) -- get the C runner.  A module
that ran ``from tornado.gen import coroutine`` before the switch keeps the
function it bound, and functions decorated before stay upstream's.
"""

import asyncio as _asyncio
import collections.abc as _abc
import functools as _functools

import tornado.concurrent as _concurrent
import tornado.gen as _gen
import tornado.ioloop as _ioloop

from tornado_c import _core
from tornado_c._reexport import reexport as _reexport

_upstream_coroutine = _gen.coroutine
_set_up_with = None


def _setup(module=_gen):
    """Hand the C runner the upstream objects it uses (again after a reload
    of tornado.gen)."""
    global _set_up_with
    _core._gen_setup(
        _concurrent.Future,
        _abc.Generator,
        module.Return,
        module.BadYieldError,
        _asyncio.CancelledError,
        module.moment,
        module._null_future,
        vars(module),
        module.convert_yielded,
        module._value_from_stopiteration,
        _concurrent.future_set_exception_unless_cancelled,
        _ioloop.IOLoop,
    )
    _set_up_with = module.Return


_setup()


def coroutine(func):
    """Decorator for asynchronous generators (``tornado.gen.coroutine``),
    run by the C runner."""
    wrapper = _core._GenCoroutine(func)
    _functools.update_wrapper(wrapper, func)
    wrapper.__wrapped__ = func
    wrapper.__tornado_coroutine__ = True
    return wrapper


# Named as upstream's: while the switch has it in tornado.gen, introspection
# (upstream's API snapshot test among others) sees the function it replaces.
coroutine.__doc__ = _upstream_coroutine.__doc__ or coroutine.__doc__
coroutine.__module__ = _upstream_coroutine.__module__
coroutine.__qualname__ = _upstream_coroutine.__qualname__

_upstream = _reexport(globals(), "tornado.gen")
