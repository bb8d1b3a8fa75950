"""CPython's own asyncio tests for streams, servers and socket transports, run
on the tornado_c loop (the interpreter's test package must be installed).

Tests that mock asyncio's private internals (or race in a way the README
lists under the C loop's known differences) are
skipped here with the reason; everything else must pass.
"""

import unittest

import pytest

try:
    from test.test_asyncio import test_buffered_proto, test_events, test_server, test_streams
    from test.test_asyncio import utils as test_utils
except ImportError:  # pragma: no cover - interpreter built without its tests
    pytest.skip("CPython's test.test_asyncio is not installed", allow_module_level=True)

from tornado_c.loop import EventLoop

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
    # Flaky on the C loop (about 1 run in 3): the test server answers and
    # closes at once, and the test reads the TLS transport's extra info after
    # run_until_complete() returned, when the C loop may already have read the
    # close (stream transports read in the poll phase, ahead of callbacks that
    # were already queued; asyncio queues the read behind them -- README,
    # "Known differences of the C loop").
    test_create_ssl_unix_connection = _skip(
        "races the server's close: stream transports read in the poll phase (README)")
    # loop-core tests (not transports): counted _run_once calls, sock_recv
    # cancellation timing
    test_timeout_rounding = _skip("loop core internals (_run_once count)")
    test_prompt_cancellation = _skip("calls the stdlib loop's private _stop_serving() at the end")


class TCStreamTests(test_streams.StreamTests):
    def setUp(self):
        test_utils.TestCase.setUp(self)
        self.loop = EventLoop()
        self.set_event_loop(self.loop)



class TCStartServerTests(test_server.BaseStartServer, unittest.TestCase):
    def new_loop(self):
        return EventLoop()


class TCBufferedProtoTests(test_buffered_proto.BaseTestBufferedProtocol, unittest.TestCase):
    def new_loop(self):
        return EventLoop()

