"""CPython's own asyncio tests for streams, servers and socket transports, run
on the tornado_c loop (the interpreter's test package must be installed).

Tests that mock asyncio's private internals are skipped here with the
reason; everything else must pass.
"""

import asyncio
import inspect
import unittest

import pytest

try:
    from test.test_asyncio import test_buffered_proto, test_events, test_server, test_streams
    from test.test_asyncio import utils as test_utils
except ImportError:  # pragma: no cover - interpreter built without its tests
    pytest.skip("CPython's test.test_asyncio is not installed", allow_module_level=True)

import tornado_c.loop
from tornado_c.loop import EventLoop

SERVER_ATTACH = ("counts connections with the stdlib Server's private _attach()/_detach(), "
                 "not with real connections (3.12's version of the test)")
MOCKS = "mocks asyncio.base_events internals (socket module, _start_serving)"


def _skip(reason):
    def method(self):
        self.skipTest(reason)

    return method


class TCEventLoopTests(test_events.UnixEventLoopTestsMixin, test_utils.TestCase):
    def create_event_loop(self):
        return EventLoop()

    test_create_server_multiple_hosts_ipv4 = _skip(MOCKS)
    test_create_server_multiple_hosts_ipv6 = _skip(MOCKS)
    # loop-core tests (not transports): counted _run_once calls, sock_recv
    # cancellation timing
    test_timeout_rounding = _skip("loop core internals (_run_once count)")
    test_prompt_cancellation = _skip("calls the stdlib loop's private _stop_serving() at the end")


class TCStreamTests(test_streams.StreamTests):
    def setUp(self):
        test_utils.TestCase.setUp(self)
        self.loop = EventLoop()
        self.set_event_loop(self.loop)



# SelectorStartServerTests: BaseStartServer's tests and the Unix server one
class TCStartServerTests(test_server.SelectorStartServerTests):
    def new_loop(self):
        return EventLoop()


class _AsyncOnOurLoop:
    """For IsolatedAsyncioTestCase classes: the test's asyncio.Runner creates
    its loop from the policy, ours for the duration of the test."""

    def run(self, result=None):
        asyncio.set_event_loop_policy(tornado_c.loop.EventLoopPolicy())
        try:
            return super().run(result)
        finally:
            asyncio.set_event_loop_policy(None)

    async def asyncSetUp(self):
        self.assertIsInstance(asyncio.get_running_loop(), EventLoop)
        await super().asyncSetUp()


if hasattr(test_server, "TestServer2"):  # 3.12+: Server.wait_closed, close_clients
    class TCServer2Tests(_AsyncOnOurLoop, test_server.TestServer2):
        pass

    # 3.12.1's versions of these two call the stdlib Server's private methods;
    # later ones (3.13) open real connections and run here
    for _name in ("test_wait_closed_basic", "test_wait_closed_race"):
        if "._attach()" in inspect.getsource(getattr(test_server.TestServer2, _name)):
            setattr(TCServer2Tests, _name, _skip(SERVER_ATTACH))
    del _name

if hasattr(test_server, "UnixServerCleanupTests"):  # 3.13+: the socket file's removal
    class TCUnixServerCleanupTests(_AsyncOnOurLoop, test_server.UnixServerCleanupTests):
        pass


class TCBufferedProtoTests(test_buffered_proto.BaseTestBufferedProtocol, unittest.TestCase):
    def new_loop(self):
        return EventLoop()

