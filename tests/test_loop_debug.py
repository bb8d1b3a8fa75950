"""Debug build (TORNADO_C_DEBUG=1): every libuv handle the loop opens is
closed again.  Skipped on a release build: this file builds nothing."""
import asyncio
import gc
import socket

import pytest

from tornado_c import _core

pytestmark = pytest.mark.skipif(not _core.DEBUG_BUILD, reason="not a TC_DEBUG build")


def counts():
    gc.collect()
    return _core._debug_counts()


def test_handles_return_to_zero_after_close():
    from tornado_c.loop import EventLoop

    base = counts()
    loops = [EventLoop() for _ in range(3)]
    assert counts()["handles"] > base["handles"]
    a, b = socket.socketpair()
    for lp in loops:
        lp.add_reader(a.fileno(), lambda: None)
        lp.call_later(10, print)
        lp.call_soon(lp.stop)
        lp.run_forever()
        lp.run_until_complete(asyncio.sleep(0.001))
    for lp in loops:
        lp.close()
    a.close()
    b.close()
    assert counts() == base


def test_handles_return_to_zero_without_close():
    from tornado_c.loop import EventLoop

    base = counts()
    lp = EventLoop()
    lp.call_soon(lp.stop)
    lp.run_forever()
    with pytest.warns(ResourceWarning):
        del lp
        gc.collect()
    assert counts() == base
